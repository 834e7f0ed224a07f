#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: a pod without a command, whose image is in a private registry (the real Debian
# docker-registry, TLS + htpasswd, the image pushed by skopeo), created with the real kubectl
# through the stand-in kube-apiserver. The operator reads the pod's imagePullSecret through the
# API, looks the image's ENTRYPOINT and CMD up in the registry, and wraps them; without the
# secret the pod is refused with the fix in the message. A second pod of the image with the
# secret is answered from the cache on the webhook's loop; another tenant's pod naming the image
# (with a secret of the same name, another password) is not. The registry password is a canary.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/kube.sh"

for tool in kubectl docker-registry skopeo; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP $tool is not installed (deps/setup.sh installs it)"; exit 0; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-op-registry.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    kube_stop
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The registry.
bash "$top/tests/standin/mkcerts.sh" "$work/pki" >/dev/null || { echo "Bail out! mkcerts"; exit 1; }
mkdir -p "$work/certs.d" && cp "$work/pki/ca.pem" "$work/certs.d/ca.crt"
user=ct-puller
password="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
/usr/bin/python3 -W ignore::DeprecationWarning -c 'import crypt, sys
print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)))' \
    "$user" "$password" > "$work/htpasswd" || { echo "Bail out! htpasswd"; exit 1; }
rport=$(free_port)
mkdir -p "$work/storage"
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: "127.0.0.1:$rport", secret: "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')", tls: {certificate: $work/pki/server.pem, key: $work/pki/server-key.pem}}
auth: {htpasswd: {realm: cloudtaser-test, path: $work/htpasswd}}
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do curl -s -o /dev/null --cacert "$work/pki/ca.pem" "https://127.0.0.1:$rport/v2/" && break; sleep 0.1; done
registry=127.0.0.1:$rport
printf 'payload\n' > "$work/payload"
/usr/bin/python3 "$top/images/build-image.py" --out "$work/img" --ref v1 --epoch 0 \
    --file "$work/payload:/payload" --entrypoint '["/app","--serve"]' --cmd '["--port","8080"]' --arch amd64 >/dev/null &&
    skopeo copy -q --dest-cert-dir "$work/certs.d" --dest-creds "$user:$password" \
        "oci:$work/img:v1" "docker://$registry/team/app:v1" > "$work/push.log" 2>&1
ok $? "an image with ENTRYPOINT and CMD is pushed to a private registry (TLS + htpasswd)" || sed 's/^/# /' "$work/push.log"

# The API server and the operator.
kube_start > "$work/kube.log" 2>&1 || { echo "Bail out! stand-in kube-apiserver"; cat "$work/kube.log"; exit 1; }
printf '%s' "$KUBE_TOKEN" > "$work/kube-token"
kubectl create secret docker-registry regcred --docker-server="$registry" --docker-username="$user" \
    --docker-password="$password" > "$work/secret.log" 2>&1
ok $? "kubectl creates the image pull secret" || sed 's/^/# /' "$work/secret.log"
wport=$(free_port); hport=$(free_port); mport=$(free_port)
"$top/build/musl/bin/cloudtaser-operator" --init-image registry.example/cloudtaser/wrapper:test \
    --secret-backend ephemeral --webhook-config-name= --webhook-host localhost,127.0.0.1 \
    --vault-address https://vault.example:8200 --webhook-port "$wport" --webhook-bind-address 127.0.0.1 \
    --health-probe-bind-address "127.0.0.1:$hport" --metrics-bind-address "127.0.0.1:$mport" \
    --ca-bundle-out "$work/ca-op.pem" --registry-ca-file "$work/pki/ca.pem" \
    --kube-server "$KUBE_ADDR" --kube-ca-file "$KUBE_CA" --kube-token-file "$work/kube-token" \
    > "$work/op.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
kubectl apply -f - > "$work/mwc.log" 2>&1 <<MWC
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration","metadata":{"name":"cloudtaser"},
 "webhooks":[{"name":"inject.cloudtaser.io","admissionReviewVersions":["v1"],"sideEffects":"None","failurePolicy":"Fail",
   "timeoutSeconds":10,"clientConfig":{"url":"https://127.0.0.1:$wport/mutate-v1-pod","caBundle":"$(base64 -w0 < "$work/ca-op.pem")"},
   "rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]}]}
MWC
ok $? "the webhook is registered" || sed 's/^/# /' "$work/mwc.log"

annotations='"cloudtaser.io/inject":"true","cloudtaser.io/vault-role":"app","cloudtaser.io/secret-paths":"secret/data/app/db"'
mkpod() { # mkpod NAME CONTAINER-EXTRA PULLSECRETS
    echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\",\"annotations\":{$annotations}},
      \"spec\":{$3\"containers\":[{\"name\":\"app\",\"image\":\"$registry/team/app:v1\"$2}]}}"
}
mkpod noargs "" '"imagePullSecrets":[{"name":"regcred"}],' | kubectl apply -f - > "$work/p1.log" 2>&1
cmd=$(kubectl get pod noargs -o jsonpath='{.spec.containers[0].command}|{.spec.containers[0].args}' 2>&1)
[ "$cmd" = '["/cloudtaser/wrapper","--","/app","--serve"]|["--port","8080"]' ]
ok $? "no command: the image's ENTRYPOINT is wrapped and its CMD becomes args ($cmd)" || sed 's/^/# /' "$work/p1.log" "$work/op.log"

mkpod withargs ',"args":["--debug"]' '"imagePullSecrets":[{"name":"regcred"}],' | kubectl apply -f - > "$work/p2.log" 2>&1
cmd=$(kubectl get pod withargs -o jsonpath='{.spec.containers[0].command}|{.spec.containers[0].args}' 2>&1)
[ "$cmd" = '["/cloudtaser/wrapper","--","/app","--serve"]|["--debug"]' ]
ok $? "args only: ENTRYPOINT wrapped, the pod's args kept, the image's CMD ignored ($cmd)" || sed 's/^/# /' "$work/p2.log"

# The second review of the image with the same pull secret is answered from the cache on the
# webhook's loop (issue 11, item 12: the loop finds results cached under the pod's own pull
# secrets' credentials), not parked for the lookup pool: one review parked so far.
parked_total() { curl -s "http://127.0.0.1:$mport/metrics" | awk '/^cloudtaser_webhook_reviews_parked_total/ {print $2}'; }
parked=$(parked_total)
[ "$parked" = 1 ]
ok $? "the same image with the same pull secret again: from the cache on the loop, not parked ($parked parked)"

# Another tenant names the private image, with a secret of the same name in their own namespace
# holding a guessed password: no answer from the cache (parked for a real lookup), refused.
kubectl create namespace other > "$work/ns.log" 2>&1 &&
    kubectl -n other create secret docker-registry regcred --docker-server="$registry" \
        --docker-username="$user" --docker-password="guess-$password" >> "$work/ns.log" 2>&1
ok $? "another namespace with a pull secret of the same name (another password)" || sed 's/^/# /' "$work/ns.log"
mkpod thief "" '"imagePullSecrets":[{"name":"regcred"}],' | kubectl -n other apply -f - > "$work/p4.log" 2>&1
rc=$?
parked=$(parked_total)
[ $rc -ne 0 ] && grep -q "denied the request" "$work/p4.log" && grep -q "refused the credentials" "$work/p4.log" && [ "$parked" = 2 ]
ok $? "its pod is not answered from the other tenant's cached result: parked, looked up, refused ($parked parked)" || sed 's/^/# /' "$work/p4.log"

mkpod nosecret "" "" | kubectl apply -f - > "$work/p3.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "denied the request" "$work/p3.log" && grep -q "imagePullSecret\|credentials" "$work/p3.log" &&
    grep -q "cloudtaser.io/command" "$work/p3.log"
ok $? "without the pull secret the pod is refused, saying why and how to fix it" || sed 's/^/# /' "$work/p3.log"

curl -s "http://127.0.0.1:$mport/metrics" > "$work/metrics.txt"
lookups=$(awk '/^cloudtaser_registry_lookups_total/ {print $2}' "$work/metrics.txt")
hits=$(awk '/^cloudtaser_registry_cache_hits_total/ {print $2}' "$work/metrics.txt")
[ "${lookups:-0}" -ge 4 ] && [ "${hits:-0}" -ge 1 ]
ok $? "metrics: $lookups registry lookups, $hits answered from the cache"

kubectl get pods -o json > "$work/pods.json" 2>&1
if grep -rqF "$password" "$work/op.log" "$work/pods.json" "$work"/p*.log "$KUBE_AUDIT" 2>/dev/null; then
    ok 1 "the registry password appears in no log, no stored pod and no API audit record"
else
    ok 0 "the registry password appears in no log, no stored pod and no API audit record"
fi
tap_done
