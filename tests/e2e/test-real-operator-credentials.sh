#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: the operator's own credentials (issue 13), with replicas of
# cloudtaser-operator run on the host against the real kube-apiserver and OpenBao.
#   - first install: the operator logs in to OpenBao with its service-account JWT (Kubernetes
#     auth), writes webhook-tls, broker-tls, broker-auth and broker-token under its prefix, and
#     no Kubernetes Secret of ours exists; the certificate verifies with `openssl verify`;
#   - three replicas started together produce one set of credentials (version 1 only), and
#     serve the same certificate; the leader patches the caBundle of the named
#     MutatingWebhookConfiguration, and the real API server calls the webhook with it;
#   - a restart serves the same CA;
#   - rotation with a short threshold: the certificate changes while clients (curl, openssl
#     s_client, the API server) keep calling, with zero failed handshakes;
#   - the leader killed (SIGKILL): another replica takes the Lease within the lease duration and a retry (Lease times),
#     and pods keep being admitted;
#   - vault unreachable at start: not ready, one log line per attempt, /readyz says why; ready
#     once it is there;
#   - the fallback backend creates exactly one Secret, cloudtaser-operator-certs, and an Event.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin op
real_gone_roles+=("$ns-operator-mwc")
real_gone_ns+=("$T-apps")
prefix=$T/system
op=$top/build/musl/bin/cloudtaser-operator
pids=()
real_at_exit() { # the operators this test starts itself
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
}

# The operator's RBAC as deploy/ grants it (a namespace's worth), its token, and its vault role
# and policy (what `cloudtaser source configure` writes, under this test's prefix).
real_ns "$ns" && real_ns "$T-apps" && kubectl label namespace "$T-apps" "ct-e2e=$T" > /dev/null &&
    kubectl -n "$ns" create serviceaccount operator > /dev/null &&
    kubectl create clusterrole "$ns-operator" --verb=get,list,watch --resource=pods,serviceaccounts,namespaces > /dev/null &&
    kubectl create clusterrolebinding "$ns-operator" --clusterrole="$ns-operator" --serviceaccount="$ns:operator" > /dev/null &&
    kubectl -n "$ns" create role operator-lease --verb=get,update --resource=leases --resource-name=cloudtaser-operator-leader > /dev/null &&
    kubectl -n "$ns" create role operator-lease-create --verb=create --resource=leases > /dev/null &&
    kubectl -n "$ns" create role operator-events --verb=create,patch --resource=events > /dev/null &&
    kubectl -n "$ns" create rolebinding operator-lease --role=operator-lease --serviceaccount="$ns:operator" > /dev/null &&
    kubectl -n "$ns" create rolebinding operator-lease-create --role=operator-lease-create --serviceaccount="$ns:operator" > /dev/null &&
    kubectl -n "$ns" create rolebinding operator-events --role=operator-events --serviceaccount="$ns:operator" > /dev/null &&
    kubectl create clusterrole "$ns-operator-mwc" --verb=get,patch --resource=mutatingwebhookconfigurations --resource-name="$T-inject" > /dev/null &&
    kubectl create clusterrolebinding "$ns-operator-mwc" --clusterrole="$ns-operator-mwc" --serviceaccount="$ns:operator" > /dev/null &&
    kubectl -n "$ns" create token operator --duration=1h > "$work/operator.jwt"
ok $? "namespace, the operator's service account, least-privilege RBAC and token"

bao_policy "$T-operator" "path \"secret/data/$prefix/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }
path \"secret/metadata/$prefix/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }" &&
    bao write "auth/kubernetes/role/$T-operator" bound_service_account_names=operator \
        bound_service_account_namespaces="$ns" policies="$T-operator" ttl=10m > /dev/null
ok $? "OpenBao: the operator's policy and Kubernetes auth role"

# The webhook registration, with no caBundle yet: the leader fills it in.
kubectl apply -f - > "$work/mwc.out" 2>&1 <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $T-inject}
webhooks:
- name: inject.cloudtaser.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  namespaceSelector: {matchLabels: {ct-e2e: "$T"}}
  objectSelector: {matchLabels: {cloudtaser.io/inject: "true"}}
  clientConfig: {url: "https://127.0.0.1:9/mutate-v1-pod"}
  rules:
  - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}
EOF
ok $? "MutatingWebhookConfiguration $T-inject registered without a caBundle" || sed 's/^/# /' "$work/mwc.out"

# start N EXTRA-ARGS...: replica N on its own ports (webhook, health, metrics in ports-N).
start() {
    local n=$1 wp hp mp
    shift
    read -r wp hp mp <<< "$(ct_free_ports 3)"
    echo "$wp $hp $mp" > "$work/ports-$n"
    "$op" --init-image "$CT_REGISTRY/cloudtaser-wrapper:e2e" \
        --vault-address "$BAO_ADDR" --allowed-vault-addresses "$BAO_ADDR" --vault-ca-file "$BAO_CACERT" \
        --vault-role "$T-operator" --vault-jwt-file "$work/operator.jwt" \
        --secret-prefix "$prefix" --namespace "$ns" --webhook-config-name "$T-inject" \
        --webhook-port "$wp" --webhook-bind-address 127.0.0.1 --webhook-host 127.0.0.1 \
        --health-probe-bind-address "127.0.0.1:$hp" --metrics-bind-address "127.0.0.1:$mp" \
        --kube-server "$CT_API" --kube-ca-file "$CT_CA" --kube-token-file "$work/operator.jwt" \
        "$@" > "$work/operator-$n.log" 2>&1 &
    pids[$n]=$!
}
ready() { # N [TRIES]
    local hp i
    hp=$(cut -d' ' -f2 "$work/ports-$1")
    for i in $(seq "${2:-400}"); do
        curl -sf "http://127.0.0.1:$hp/readyz" > /dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
stop() { kill "${pids[$1]}" 2> /dev/null; wait "${pids[$1]}" 2> /dev/null; unset "pids[$1]"; }
wport() { cut -d' ' -f1 "$work/ports-$1"; }
# The fingerprint of the certificate replica N serves.
served() {
    openssl s_client -connect "127.0.0.1:$(wport "$1")" -servername localhost < /dev/null 2> /dev/null |
        openssl x509 -noout -fingerprint -sha256 2> /dev/null
}
kvget() { bao kv get -mount=secret -field="$2" "$prefix/$1"; }
point_webhook() { # at replica N
    kubectl patch mutatingwebhookconfiguration "$T-inject" --type=json \
        -p "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/url\",\"value\":\"https://127.0.0.1:$(wport "$1")/mutate-v1-pod\"}]" > /dev/null
}
admitted() { # NAME: a labelled pod, server-side dry run, injected?
    kubectl -n "$T-apps" apply --dry-run=server -o json -f - 2> "$work/admit.err" <<EOF | grep -q '"cloudtaser-init"'
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {cloudtaser.io/inject: "true"}
  annotations:
    cloudtaser.io/inject: "true"
    cloudtaser.io/vault-address: "$BAO_ADDR"
    cloudtaser.io/vault-role: app
    cloudtaser.io/secret-paths: "secret/data/$T/db"
spec:
  containers: [{name: app, image: "$CT_REGISTRY/ct-workload:e2e", command: [/ct-workload, sleep, "1"]}]
EOF
}
lease_holder() { kubectl -n "$ns" get lease cloudtaser-operator-leader -o 'jsonpath={.spec.holderIdentity}' 2> /dev/null; }

# --- first install: three replicas at once, with leader election ---------------------------
for n in 1 2 3; do
    start "$n" --leader-elect --leader-elect-lease-duration 6s --leader-elect-renew-deadline 4s \
        --leader-elect-retry-period 1s --cert-check-interval 1s
done
all=0
for n in 1 2 3; do ready "$n" || all=1; done
ok $all "three replicas started together are all ready" ||
    for n in 1 2 3; do tail -n 15 "$work/operator-$n.log" | sed "s/^/# $n: /"; done
v=$(bao kv metadata get -mount=secret -format=json "$prefix/webhook-tls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["current_version"])')
is "$v" 1 "one set of credentials: webhook-tls is at version 1"
missing=
for rec in webhook-tls broker-tls broker-auth broker-token; do
    bao kv get -mount=secret "$prefix/$rec" > /dev/null 2>&1 || missing="$missing $rec"
done
is "$missing" "" "every record written to OpenBao under $prefix"
f1=$(served 1) f2=$(served 2) f3=$(served 3)
ok "$([ -n "$f1" ] && [ "$f1" = "$f2" ] && [ "$f2" = "$f3" ]; echo $?)" "the three replicas serve the same certificate"
kvget webhook-tls ca.crt > "$work/ca.crt" && kvget webhook-tls tls.crt > "$work/tls.crt" &&
    openssl verify -purpose sslserver -CAfile "$work/ca.crt" "$work/tls.crt" > "$work/verify.out" 2>&1
ok $? "openssl verify: the served certificate chains to the CA in OpenBao" || sed 's/^/# /' "$work/verify.out"
openssl x509 -in "$work/tls.crt" -noout -ext subjectAltName 2> /dev/null | grep -q "DNS:cloudtaser-operator-webhook.$ns.svc"
ok $? "its SANs name the Service (<service>.<namespace>.svc)"
kvget broker-tls client.crt > "$work/client.crt" &&
    openssl verify -purpose sslclient -CAfile "$work/ca.crt" "$work/client.crt" > "$work/verify2.out" 2>&1
ok $? "broker-tls: the client certificate chains to the same CA" || sed 's/^/# /' "$work/verify2.out"
# Other tests share the cluster (one of them runs the fallback backend in its own namespace):
# what is ours is in this test's namespaces or names its prefix.
ours=$(kubectl get secrets -A -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
t, ns = sys.argv[1], sys.argv[2]
print(" ".join(i["metadata"]["namespace"] + "/" + i["metadata"]["name"] for i in items
               if i["metadata"]["namespace"] in (ns, t + "-apps") or t in i["metadata"]["name"]))' "$T" "$ns")
is "$ours" "" "kubectl get secrets -A: nothing of ours"
key=$(kvget webhook-tls tls.key | sed -n 2p)
grep -rqF -- "$key" "$work"/operator-*.log
ok "$([ $? -ne 0 ] && [ -n "$key" ]; echo $?)" "the private key never reaches a log"

# caBundle patched by the leader.
want=$(base64 -w0 < "$work/ca.crt")
for i in $(seq 100); do
    got=$(kubectl get mutatingwebhookconfiguration "$T-inject" -o 'jsonpath={.webhooks[0].clientConfig.caBundle}')
    [ "$got" = "$want" ] && break
    sleep 0.1
done
is "$got" "$want" "the leader patched caBundle with the CA from OpenBao"
holder=$(lease_holder)
ok "$([ -n "$holder" ]; echo $?)" "Lease cloudtaser-operator-leader held by '$holder'"
leader=
for n in 1 2 3; do grep -q "this replica leads" "$work/operator-$n.log" && leader="$leader$n"; done
is "${#leader}" 1 "exactly one replica says it leads ($leader)"
other=1
[ "$leader" = 1 ] && other=2
point_webhook "$other"
admitted p1
ok $? "the real API server calls the webhook with that caBundle: a pod is admitted and injected" || sed 's/^/# /' "$work/admit.err"

# --- restart: the same CA ----------------------------------------------------------------
for n in 1 2 3; do stop "$n"; done
start 1 --cert-check-interval 1s
ready 1
ok $? "a restarted operator is ready" || tail -n 20 "$work/operator-1.log" | sed 's/^/# /'
is "$(served 1)" "$f1" "and serves the same certificate, from OpenBao"
v=$(bao kv metadata get -mount=secret -format=json "$prefix/webhook-tls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["current_version"])')
is "$v" 1 "it wrote nothing"

# --- rotation under load -----------------------------------------------------------------
stop 1
# A leaf is due when less than --cert-renew-before is left: a year less 4 s makes it due 4 s
# after it was issued, so it rotates every few seconds while clients call.
start 1 --cert-check-interval 1s --cert-renew-before 31535996s
ready 1
point_webhook 1
fails=0 calls=0 seen=()
end=$((SECONDS + 14))
while [ $SECONDS -lt $end ]; do
    curl -sS --cacert "$work/ca.crt" --resolve "cloudtaser-operator-webhook.$ns.svc:$(wport 1):127.0.0.1" \
        -o /dev/null -w '%{http_code}\n' -X POST -d '{}' \
        "https://cloudtaser-operator-webhook.$ns.svc:$(wport 1)/mutate-v1-pod" >> "$work/curl.codes" 2>> "$work/curl.err" || fails=$((fails + 1))
    openssl s_client -connect "127.0.0.1:$(wport 1)" -CAfile "$work/ca.crt" -verify_return_error < /dev/null > "$work/sc.out" 2>&1 ||
        { fails=$((fails + 1)); cp "$work/sc.out" "$work/sc.failed"; }
    seen+=("$(openssl x509 -noout -serial -in "$work/sc.out" 2> /dev/null)")
    admitted "r$calls" || { fails=$((fails + 1)); cp "$work/admit.err" "$work/admit.failed"; }
    calls=$((calls + 1))
done
distinct=$(printf '%s\n' "${seen[@]}" | sort -u | grep -c serial)
ok "$([ "$distinct" -ge 2 ]; echo $?)" "the certificate rotated while serving ($distinct certificates in $calls rounds)"
is "$fails" 0 "zero failed handshakes or admissions (curl, openssl s_client, the API server)" ||
    { sed 's/^/# /' "$work/curl.err" | tail -n 5; tail -n 5 "$work/sc.failed" 2> /dev/null | sed 's/^/# /'; }
grep -q "serving the webhook certificate of webhook-tls version" "$work/operator-1.log"
ok $? "each rotation is logged with its version"
v=$(bao kv metadata get -mount=secret -format=json "$prefix/webhook-tls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["current_version"])')
ok "$([ "$v" -ge 2 ]; echo $?)" "each rotation written to OpenBao (version $v)"
stop 1

# --- leader killed: takeover within the lease duration -----------------------------------
for n in 1 2 3; do
    start "$n" --leader-elect --leader-elect-lease-duration 6s --leader-elect-renew-deadline 4s \
        --leader-elect-retry-period 1s --cert-check-interval 1s
    ready "$n"
done
for i in $(seq 100); do
    h=$(lease_holder)
    leader=
    for n in 1 2 3; do [ -n "$h" ] && grep -qF "this replica leads ($h)" "$work/operator-$n.log" 2> /dev/null && leader=$n; done
    [ -n "$leader" ] && break
    sleep 0.1
done
ok "$([ -n "$leader" ]; echo $?)" "the leader is replica $leader"
other=1
[ "$leader" = 1 ] && other=2
point_webhook "$other"
holder_killed=$h
# The takeover is measured on the Lease's own times (the killed leader's last renewTime read just
# before the kill, the new holder's acquireTime), not on this loop's wall clock: each turn makes
# two kubectl calls, which take seconds on a loaded machine. client-go semantics: a candidate
# takes the Lease once renewTime + lease duration has passed on its clock, at its next retry
# (1 s, jitter 1.2): within 6 + 1.2 s of the last renewal; the renewTime read here is at most a
# retry period older than the last one, and 3 s are left for scheduling.
lease_ms() { # FIELD -> milliseconds since the epoch of the Lease's MicroTime field
    local t
    t=$(kubectl -n "$ns" get lease cloudtaser-operator-leader -o "jsonpath={.spec.$1}" 2> /dev/null) &&
        [ -n "$t" ] && date -u -d "$t" +%s%3N
}
renewed_ms=$(lease_ms renewTime)
kill -KILL "${pids[$leader]}"
wait "${pids[$leader]}" 2> /dev/null
unset "pids[$leader]"
t0=$SECONDS
new=
admit_fail=0
while [ $((SECONDS - t0)) -lt 90 ]; do
    admitted "k$SECONDS" || admit_fail=$((admit_fail + 1))
    h=$(lease_holder)
    if [ -n "$h" ] && [ "$h" != "$holder_killed" ]; then new=$h; break; fi
    sleep 0.5
done
acquired_ms=$(lease_ms acquireTime)
took_ms=$((${acquired_ms:-0} - ${renewed_ms:-0}))
ok "$([ -n "$new" ] && [ -n "$renewed_ms" ] && [ -n "$acquired_ms" ] && [ "$took_ms" -ge 0 ] &&
    [ "$took_ms" -le 11000 ]; echo $?)" \
    "another replica took the Lease ${took_ms} ms after the killed leader's last renewal seen (lease 6 s, retry 1 s)"
is "$admit_fail" 0 "pods kept being admitted meanwhile"
for n in 1 2 3; do [ -n "${pids[$n]:-}" ] && stop "$n"; done

# --- vault not there at start, then there ---------------------------------------------------
# The operator is pointed at a port where nothing listens yet; later a TCP relay to OpenBao
# opens there (the same certificate: it names 127.0.0.1).
read -r relay_port <<< "$(ct_free_ports 1)"
bao_port=${BAO_ADDR##*:}
start 6 --vault-address "https://127.0.0.1:$relay_port" --allowed-vault-addresses "https://127.0.0.1:$relay_port" \
    --cert-check-interval 1s
sleep 3
hp=$(cut -d' ' -f2 "$work/ports-6")
why=$(curl -s "http://127.0.0.1:$hp/readyz")
ok "$(case $why in *"not logged in to vault"*) echo 0 ;; *) echo 1 ;; esac)" "vault down: not ready, and /readyz says why" || diag "$why"
n=$(grep -c "127.0.0.1:$relay_port" "$work/operator-6.log")
ok "$([ "$n" -ge 2 ]; echo $?)" "one log line per attempt, naming the vault ($n so far)" || tail -n 5 "$work/operator-6.log" | sed 's/^/# /'
python3 - "$relay_port" "$bao_port" > "$work/relay.log" 2>&1 <<'PY' &
import socket, sys, threading
lp, tp = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lp))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", tp))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
relay=$!
ready 6 800
ok $? "vault up: the operator logs in, loads its credentials and becomes ready" || tail -n 10 "$work/operator-6.log" | sed 's/^/# /'
is "$(served 6)" "$(kvget webhook-tls tls.crt | openssl x509 -noout -fingerprint -sha256)" \
    "and serves the installation's current certificate, from OpenBao"
stop 6
kill "$relay" 2> /dev/null

# --- the fallback: exactly one Secret --------------------------------------------------------
kubectl -n "$ns" create role operator-secret --verb=get,update --resource=secrets --resource-name=cloudtaser-operator-certs > /dev/null &&
    kubectl -n "$ns" create role operator-secret-create --verb=create --resource=secrets > /dev/null &&
    kubectl -n "$ns" create rolebinding operator-secret --role=operator-secret --serviceaccount="$ns:operator" > /dev/null &&
    kubectl -n "$ns" create rolebinding operator-secret-create --role=operator-secret-create --serviceaccount="$ns:operator" > /dev/null
start 4 --secret-backend kubernetes --cert-check-interval 1s
ready 4
ok $? "the fallback backend: ready" || tail -n 20 "$work/operator-4.log" | sed 's/^/# /'
is "$(kubectl -n "$ns" get secrets -o 'jsonpath={.items[*].metadata.name}')" "cloudtaser-operator-certs" \
    "it created exactly one Secret, cloudtaser-operator-certs"
grep -qi "warn.*weaken\|weaken.*warn" "$work/operator-4.log"
ok $? "with a warning that the security model is weakened"
kubectl -n "$ns" get events -o json | grep -q WeakenedSecurityModel
ok $? "and a Kubernetes Event"
stop 4
start 5 --secret-backend kubernetes --cert-check-interval 1s
ready 5
kubectl -n "$ns" get secret cloudtaser-operator-certs -o 'jsonpath={.data.webhook-tls\.ca\.crt}' | base64 -d > "$work/fb-ca.crt"
openssl s_client -connect "127.0.0.1:$(wport 5)" -CAfile "$work/fb-ca.crt" -verify_return_error < /dev/null > "$work/fb.out" 2>&1
ok $? "a restart on the fallback serves a certificate of the stored CA"
stop 5

tap_done
