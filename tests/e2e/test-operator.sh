#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-operator as a mutating webhook registered with the stand-in
# kube-apiserver, driven by the real kubectl. Pods created through the API server come back
# mutated (or refused) exactly as a cluster would store them. Both builds of the operator.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/kube.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/ct-operator-e2e.XXXXXX")
oppid=
cleanup() {
    [ -n "$oppid" ] && kill "$oppid" 2>/dev/null && wait "$oppid" 2>/dev/null
    kube_stop
    rm -rf "$work"
}
trap cleanup EXIT

command -v kubectl >/dev/null || { echo "1..0 # SKIP kubectl is not installed"; exit 0; }
kube_start > "$work/kube.log" 2>&1 || { echo "Bail out! stand-in kube-apiserver did not start"; cat "$work/kube.log"; exit 1; }
printf '%s' "$KUBE_TOKEN" > "$work/kube-token"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pod() { # pod NAME ANNOTATIONS-JSON CONTAINER-JSON -> a Pod manifest on stdout
    cat <<POD
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1","namespace":"default","annotations":$2},
 "spec":{"containers":[$3]}}
POD
}
inject='"cloudtaser.io/inject":"true","cloudtaser.io/vault-role":"app","cloudtaser.io/secret-paths":"secret/data/app/db","cloudtaser.io/env-map":"password=PGPASSWORD"'

for flavour in musl asan; do
    f=$flavour
    op=$top/build/$flavour/bin/cloudtaser-operator
    if [ ! -x "$op" ]; then
        ok 1 "$f: $op is built"
        continue
    fi
    wport=$(free_port); hport=$(free_port); mport=$(free_port)
    "$op" --init-image registry.example/cloudtaser/wrapper:test --secret-backend ephemeral \
        --webhook-config-name= --webhook-host localhost,127.0.0.1 \
        --vault-address https://vault.example:8200 \
        --allowed-vault-addresses https://vault.example:8200,https://vault.other:8200 \
        --webhook-port "$wport" --webhook-bind-address 127.0.0.1 \
        --health-probe-bind-address "127.0.0.1:$hport" --metrics-bind-address "127.0.0.1:$mport" \
        --ca-bundle-out "$work/ca-$f.pem" \
        --kube-server "$KUBE_ADDR" --kube-ca-file "$KUBE_CA" --kube-token-file "$work/kube-token" \
        > "$work/op-$f.log" 2>&1 &
    oppid=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
    curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null
    ok $? "$f: the operator is healthy and ready" || sed 's/^/# /' "$work/op-$f.log"

    cab=$(base64 -w0 < "$work/ca-$f.pem")
    kubectl apply -f - > "$work/mwc-$f.out" 2>&1 <<MWC
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration",
 "metadata":{"name":"cloudtaser"},
 "webhooks":[{"name":"inject.cloudtaser.io","admissionReviewVersions":["v1"],"sideEffects":"None",
   "failurePolicy":"Fail","timeoutSeconds":10,"reinvocationPolicy":"IfNeeded",
   "clientConfig":{"url":"https://127.0.0.1:$wport/mutate-v1-pod","caBundle":"$cab"},
   "rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]}]}
MWC
    ok $? "$f: MutatingWebhookConfiguration registered with the operator's generated CA" || sed 's/^/# /' "$work/mwc-$f.out"

    # 1. An annotated pod with a command is injected.
    pod "app-$f" "{$inject}" '{"name":"app","image":"registry.example/app:1","command":["/app","--serve"],"args":["-v"],"env":[{"name":"KEEP","value":"me"}]}' |
        kubectl apply -f - > "$work/p1-$f.out" 2>&1
    ok $? "$f: kubectl apply of an annotated pod succeeds" || sed 's/^/# /' "$work/p1-$f.out"
    kubectl get pod "app-$f" -o json > "$work/p1-$f.json" 2>&1
    /usr/bin/python3 - "$work/p1-$f.json" > "$work/p1-$f.check" 2>&1 <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
s = p["spec"]
c = s["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
init = s["initContainers"][0]
vols = {v["name"]: v for v in s["volumes"]}
checks = [
    ("init container first, from the operator's image", init["name"] == "cloudtaser-init" and init["image"] == "registry.example/cloudtaser/wrapper:test"),
    ("init container is locked down", init["securityContext"]["runAsNonRoot"] and init["securityContext"]["readOnlyRootFilesystem"] and init["securityContext"]["capabilities"]["drop"] == ["ALL"] and init["securityContext"]["allowPrivilegeEscalation"] is False),
    ("in-memory volume", vols["cloudtaser-bin"]["emptyDir"]["medium"] == "Memory"),
    ("command rewritten", c["command"] == ["/cloudtaser/wrapper", "--", "/app", "--serve"] and c["args"] == ["-v"]),
    ("CLOUDTASER_ORIGINAL_CMD", json.loads(env["CLOUDTASER_ORIGINAL_CMD"]) == ["/app", "--serve", "-v"]),
    ("wrapper environment", env["VAULT_ADDR"] == "https://vault.example:8200" and env["VAULT_AUTH_ROLE"] == "app" and env["CLOUDTASER_SECRET_PATHS"] == "secret/data/app/db" and env["CLOUDTASER_ENV_MAP"] == "password=PGPASSWORD"),
    ("the user's own variables kept", env.get("KEEP") == "me"),
    ("volume mounted read-only at /cloudtaser", any(m["name"] == "cloudtaser-bin" and m["mountPath"] == "/cloudtaser" and m.get("readOnly") for m in c["volumeMounts"])),
    ("IPC_LOCK added", "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]),
]
for name, good in checks:
    print(("ok" if good else "FAIL") + " " + name)
PY
    grep -q FAIL "$work/p1-$f.check" || [ ! -s "$work/p1-$f.check" ]
    [ $? -ne 0 ] || ! grep -q "^ok" "$work/p1-$f.check"
    if grep -q "^FAIL\|Traceback" "$work/p1-$f.check" || ! grep -q "^ok" "$work/p1-$f.check"; then
        ok 1 "$f: the stored pod is mutated as specified"; sed 's/^/# /' "$work/p1-$f.check"
    else
        ok 0 "$f: the stored pod is mutated as specified ($(grep -c '^ok' "$work/p1-$f.check") checks)"
    fi

    # 2. A pod without the annotation is stored unchanged.
    pod "plain-$f" '{}' '{"name":"app","image":"registry.example/app:1","command":["/app"]}' | kubectl apply -f - >/dev/null 2>&1
    out=$(kubectl get pod "plain-$f" -o jsonpath='{.spec.initContainers}{.spec.containers[0].command}' 2>&1)
    [ "$out" = '["/app"]' ]
    ok $? "$f: a pod without cloudtaser.io/inject is not touched ($out)"

    # 3. A vault address outside the allow-list is refused, and kubectl says why.
    pod "evil-$f" "{$inject,\"cloudtaser.io/vault-address\":\"https://attacker.example:8200\"}" '{"name":"app","image":"registry.example/app:1","command":["/app"]}' |
        kubectl apply -f - > "$work/p3-$f.out" 2>&1
    rc=$?
    [ $rc -ne 0 ] && grep -q 'admission webhook "inject.cloudtaser.io" denied the request' "$work/p3-$f.out" && grep -qi "allow" "$work/p3-$f.out"
    ok $? "$f: a vault address outside the allow-list is refused" || sed 's/^/# /' "$work/p3-$f.out"
    kubectl get pod "evil-$f" >/dev/null 2>&1
    [ $? -ne 0 ]
    ok $? "$f: and the pod was not stored"

    # 4. No command and a registry that cannot be reached: refused with the fix in the message.
    pod "nocmd-$f" "{$inject}" '{"name":"app","image":"127.0.0.1:1/team/app:v1"}' | kubectl apply -f - > "$work/p4-$f.out" 2>&1
    rc=$?
    [ $rc -ne 0 ] && grep -q "cloudtaser.io/command" "$work/p4-$f.out"
    ok $? "$f: an entrypoint that cannot be looked up refuses the pod and names the fix" || sed 's/^/# /' "$work/p4-$f.out"

    # 5. No command, but the cloudtaser.io/command annotation: injected with it.
    pod "annot-$f" "{$inject,\"cloudtaser.io/command\":\"[\\\"/bin/server\\\",\\\"--port\\\",\\\"80\\\"]\"}" '{"name":"app","image":"127.0.0.1:1/team/app:v1"}' |
        kubectl apply -f - > "$work/p5-$f.out" 2>&1
    out=$(kubectl get pod "annot-$f" -o jsonpath='{.spec.containers[0].command}' 2>&1)
    [ "$out" = '["/cloudtaser/wrapper","--","/bin/server","--port","80"]' ]
    ok $? "$f: the cloudtaser.io/command annotation gives the entrypoint ($out)" || sed 's/^/# /' "$work/p5-$f.out"

    # 6. A pod from a controller (generateName, no name) is injected too.
    sed "s/\"name\":\"gen-$f\"/\"generateName\":\"gen-$f-\"/" <(pod "gen-$f" "{$inject}" '{"name":"app","image":"registry.example/app:1","command":["/app"]}') |
        kubectl create -f - > "$work/p6-$f.out" 2>&1
    name=$(sed -n 's#^pod/\([^ ]*\) created#\1#p' "$work/p6-$f.out")
    [ -n "$name" ] && [ "$(kubectl get pod "$name" -o jsonpath='{.spec.initContainers[0].name}' 2>&1)" = cloudtaser-init ]
    ok $? "$f: a generateName pod ($name) is injected" || sed 's/^/# /' "$work/p6-$f.out"

    # 7. What the API server sent and got: a real AdmissionReview answered with a JSONPatch.
    calls=$(kube_control GET /_standin/webhook-calls 2>/dev/null)
    /usr/bin/python3 -c 'import json,sys
d=json.loads(sys.stdin.read()); calls=d.get("calls", d) if isinstance(d, dict) else d
ok=[c for c in calls if isinstance(c, dict) and "JSONPatch" in json.dumps(c)]
sys.exit(0 if ok else 1)' <<< "$calls"
    ok $? "$f: the API server received JSONPatch responses from the operator"

    # 8. A body that is not an AdmissionReview is a 400; a GET is a 405.
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca-$f.pem" -H 'Content-Type: application/json' \
        --data '{"kind":"Pod"}' "https://127.0.0.1:$wport/mutate-v1-pod")
    [ "$code" = 400 ]
    ok $? "$f: a body that is not an AdmissionReview gets 400 ($code)"
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca-$f.pem" "https://127.0.0.1:$wport/mutate-v1-pod")
    [ "$code" = 405 ]
    ok $? "$f: GET gets 405 ($code)"

    # 9. Metrics count what happened.
    curl -s "http://127.0.0.1:$mport/metrics" > "$work/metrics-$f.txt"
    inj=$(awk '/^cloudtaser_injections_total/ {print $2}' "$work/metrics-$f.txt")
    den=$(awk -F'} ' '/outcome="denied"/ {print $2}' "$work/metrics-$f.txt")
    [ "${inj:-0}" -ge 3 ] && [ "${den:-0}" -ge 2 ] && grep -q '^cloudtaser_admission_duration_seconds_count' "$work/metrics-$f.txt"
    ok $? "$f: metrics: $inj injections, $den denials, latency histogram" || sed 's/^/# /' "$work/metrics-$f.txt"

    # 10. SIGTERM stops it cleanly.
    kill -TERM "$oppid"
    wait "$oppid"
    rc=$?
    oppid=
    [ $rc -eq 0 ]
    ok $? "$f: SIGTERM stops the operator with status 0 ($rc)" || sed 's/^/# /' "$work/op-$f.log"
    kubectl delete mutatingwebhookconfiguration cloudtaser >/dev/null 2>&1
    kubectl delete pods --all >/dev/null 2>&1
done
tap_done
