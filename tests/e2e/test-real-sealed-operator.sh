#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers, the sealed token mode (issue 15) as installed: the real
# cloudtaser-operator binary with --unseal-pods (deploy/overlays/sealed) is both the webhook and
# the unsealer (operator/main.c: keeper_unsealer_deps, its leader, the annotation key and
# broker-tls client pair from its own credentials in OpenBao, its vault session). Its vault role
# has deploy/openbao/cloudtaser-operator-unsealer.hcl too, the token role
# deploy/openbao/cloudtaser-pod-token-role.json exists, its service account may list/watch pods
# (as deploy/overlays/sealed/unsealer-rbac.yaml gives it).
#   - a Deployment with cloudtaser.io/vault-auth-method: token and no VAULT_TOKEN is admitted by
#     the webhook on the real API server (label cloudtaser.io/sealed: the installation id of the
#     operator's broker-token, the broker-mac, the readinessProbe on 8199) and runs on the real
#     kubelet; its wrapper starts sealed;
#   - the operator's unsealer unseals it (one line in the operator's log, the wrapper's unseal
#     wrapped) from its watch of the real API server: the operator relists only every 10 minutes
#     (--unseal-interval 10m) and its first list, at its start, found no pod, so the pod is
#     served from the watch's events, promptly (the time from Running to unsealed is reported); the workload gets its canary from OpenBao (its hash in the pod's log); the pod
#     becomes Ready; the token is an orphan with the pod's policy only;
#   - the operator restarted: its new unsealer adopts the unsealed pod (policy and token kept);
#   - the pod deleted: its token revoked (the accessor from the policy's comment) and its policy
#     deleted, one line for it, from the watch's DELETED event (no relist in between);
#   - the canary in no log (the operator's, the pod's).
# The pod uses the host network (OpenBao listens on the host's loopback) and the webhook's fixed
# unseal port 8199 (it writes no CLOUDTASER_UNSEAL_LISTEN): no other test runs a webhook-admitted
# sealed pod on the host network, so one pod at a time listens there. The operator's unsealer
# selects its own installation's label value and policy prefix: test-real-sealed.sh (another
# installation, its own unsealer) runs beside it under make check.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"
real_test_begin sealedop
real_gone_roles+=("$ns-operator-unsealer")

ct_push_images e2e
ok $? "our images built and pushed to the cluster's registry" || sed 's/^/# /' "$work/images.log"

# --- OpenBao: the pod's secret, the token role, the unsealer's policy on the operator's role
secret="canary-$(rand_hex 16)"
ct_tenant_ns "$ns" && ct_operator_account "$ns"
ok $? "namespace $ns, service accounts, the operator's RBAC, token and vault role"
bao kv put -mount=secret "$ns/db" password="$secret" > /dev/null &&
    bao write auth/token/roles/cloudtaser-pod "@$top/deploy/openbao/cloudtaser-pod-token-role.json" > /dev/null &&
    bao policy write "$T-unsealer" "$top/deploy/openbao/cloudtaser-operator-unsealer.hcl" > /dev/null &&
    bao write "auth/kubernetes/role/$T-operator" bound_service_account_names=operator \
        bound_service_account_namespaces="$ns" policies="$T-operator,$T-unsealer" ttl=10m > /dev/null
ok $? "OpenBao: the secret, the token role, the unsealer's policy given to the operator's role"
kubectl create clusterrole "$ns-operator-unsealer" --verb=list,watch --resource=pods > /dev/null &&
    kubectl create clusterrolebinding "$ns-operator-unsealer" --clusterrole="$ns-operator-unsealer" \
        --serviceaccount="$ns:operator" > /dev/null
ok $? "the operator's service account may list and watch pods (deploy/overlays/sealed)"

ct_start_operator e2e --unseal-pods --unseal-interval 10m --unseal-namespace "$ns"
ok $? "the operator is ready with --unseal-pods" || sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "MutatingWebhookConfiguration registered" || sed 's/^/# /' "$work/mwc-$T-inject.out"
ct_wait_for 60 grep -q "unsealer: watching the sealed pods (listed again every 600 s)" "$work/operator.log"
ok $? "the operator's unsealer listed (no pod yet) and watches, relisting every 10 minutes" || grep unsealer "$work/operator.log" | sed 's/^/# /'

ct_deployment -a vault-auth-method=token -a secret-paths="secret/data/$ns/db" -a env-map=password=PGPASSWORD web "$ns" \
    'command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]' |
    kubectl apply -f - > "$work/apply.out" 2>&1
ok $? "a token-mode Deployment without VAULT_TOKEN is admitted by the webhook" || sed 's/^/# /' "$work/apply.out"

ct_wait_running "$ns" web 120
ok $? "its pod is Running on the real kubelet" ||
    { kubectl -n "$ns" describe pods; tail -n 20 "$work/operator.log"; } 2>&1 | tail -n 40 | sed 's/^/# /'
p=$(ct_pod_of "$ns" web)
# The installation id of the operator's broker-token (common/brokerproto.h), with openssl.
inst=$(installation_id "$(bao kv get -mount=secret -field=token "$T/system/broker-token" | base64 -d | xxd -p -c64)")
kubectl -n "$ns" get pod "$p" -o json > "$work/pod.json"
python3 - "$work/pod.json" "$inst" > "$work/pod.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
app = [c for c in p["spec"]["containers"] if c["name"] == "app"][0]
env = {e["name"]: e.get("value", "") for e in app.get("env", [])}
g = app.get("readinessProbe", {}).get("httpGet", {})
fail = []
if p["metadata"].get("labels", {}).get("cloudtaser.io/sealed") != sys.argv[2]: fail.append("label %r, not %r" % (p["metadata"].get("labels", {}).get("cloudtaser.io/sealed"), sys.argv[2]))
if not p["metadata"].get("annotations", {}).get("cloudtaser.io/broker-mac", "").startswith("v1:"): fail.append("mac")
if "BEGIN CERTIFICATE" not in env.get("CLOUDTASER_UNSEAL_CA_PEM", ""): fail.append("unseal CA")
if env.get("VAULT_AUTH_METHOD") != "token" or env.get("VAULT_TOKEN"): fail.append("auth %r" % env.get("VAULT_AUTH_METHOD"))
if env.get("CLOUDTASER_UNSEAL_LISTEN", ""): fail.append("unseal listen %r" % env["CLOUDTASER_UNSEAL_LISTEN"])
if (g.get("path"), g.get("port"), g.get("scheme")) != ("/v1/ready", 8199, "HTTPS"): fail.append("probe %r" % g)
print("; ".join(fail) if fail else "sealed pod as expected")
sys.exit(1 if fail else 0)
EOF
ok $? "the stored pod is sealed as the webhook writes it (label: the installation id $inst, MAC, unseal CA, probe on 8199, no token, no unseal listen address)" ||
    sed 's/^/# /' "$work/pod.check"

logged() { ct_pod_log "$ns" "$p" app | grep -q "$1"; }
is_ready() { [ "$(kubectl -n "$ns" get pod "$p" -o 'jsonpath={.status.containerStatuses[0].ready}')" = true ]; }
running_at=$(date +%s)
ct_wait_for 90 grep -q "unsealer: pod $ns/$p unsealed" "$work/operator.log"
ok $? "unsealed from the watch (no relist in 10 minutes; the first list found no pod), $(($(date +%s) - running_at)) s after Running was seen" ||
    grep unsealer "$work/operator.log" | tail -n 10 | sed 's/^/# /'
ct_wait_for 90 logged workload-ready && ct_wait_for 60 is_ready
ok $? "the operator's unsealer unsealed it: the workload started, the pod is Ready" ||
    { tail -n 20 "$work/operator.log"; ct_pod_log "$ns" "$p" app | tail -n 20; } | sed 's/^/# /'
ct_pod_log "$ns" "$p" app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"
ok $? "the workload has its canary from OpenBao (its hash in the pod's log)" || ct_pod_log "$ns" "$p" app | tail -n 20 | sed 's/^/# /'
grep -q "unsealer: pod $ns/$p unsealed with a wrapped child token" "$work/operator.log" &&
    logged 'sealed: waiting' && logged 'unsealed by .* (a wrapped token)'
ok $? "one line each: the operator's unsealer, the wrapper sealed then unsealed (wrapped)" ||
    { grep unsealer "$work/operator.log"; ct_pod_log "$ns" "$p" app | tail -n 10; } | sed 's/^/# /'

ip=$(kubectl -n "$ns" get pod "$p" -o 'jsonpath={.status.podIP}')
st=$(curl -sk --max-time 10 "https://$ip:8199/v1/status")
[ "$st" = '{"sealed": false}' ]
ok $? "GET https://<pod IP>:8199/v1/status (the webhook's fixed port): {\"sealed\": false}" || diag "$st"

uid=$(kubectl -n "$ns" get pod "$p" -o 'jsonpath={.metadata.uid}')
pol=cloudtaser-pod-$inst-$uid
bao policy read "$pol" > "$work/pol.txt" 2>&1
acc=$(sed -n 's/^# accessor: //p' "$work/pol.txt")
[ -n "$acc" ] && [ "$(grep -c '^path ' "$work/pol.txt")" = 2 ] && grep -q "^path \"secret/data/$ns/db\"" "$work/pol.txt"
ok $? "policy $pol: the pod's path and its metadata, the token's accessor" || sed 's/^/# /' "$work/pol.txt"
bao write -format=json auth/token/lookup-accessor accessor="$acc" > "$work/lookup.json" 2>&1
python3 - "$work/lookup.json" "$pol" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
sys.exit(0 if d["orphan"] and sorted(d["policies"]) == sorted(["default", sys.argv[2]]) else 1)
EOF
ok $? "the child token: an orphan with its pod's policy only" || sed 's/^/# /' "$work/lookup.json"

# --- the operator restarted: the new leader adopts the unsealed pod (it keeps no state: the
# accessor is in the policy's comment), and cleans it up when it goes
ct_stop_operator
ct_start_operator e2e --unseal-pods --unseal-interval 10m --unseal-namespace "$ns" &&
    ct_wait_for 60 grep -q "unsealer: pod $ns/$p is unsealed already: adopted" "$work/operator.log"
ok $? "the operator restarted: its new unsealer adopts the unsealed pod" || grep unsealer "$work/operator.log" | tail -n 10 | sed 's/^/# /'
bao policy read "$pol" > /dev/null 2>&1 && bao write auth/token/lookup-accessor accessor="$acc" > /dev/null 2>&1 && is_ready
ok $? "  the pod's policy and token kept, the pod still Ready"

# --- pod deleted (the Deployment with it): token revoked, policy deleted
kubectl -n "$ns" delete deployment web --wait=true --timeout=60s > /dev/null 2>&1
kubectl -n "$ns" wait --for=delete "pod/$p" --timeout=60s > /dev/null 2>&1
gone() { ! bao policy read "$pol" > /dev/null 2>&1; }
ct_wait_for 30 gone && ! bao write auth/token/lookup-accessor accessor="$acc" > /dev/null 2>&1
ok $? "pod deleted: its policy is gone and its token revoked" || grep unsealer "$work/operator.log" | tail -n 10 | sed 's/^/# /'
ct_wait_for 10 grep -q "unsealer: pod $ns/$p gone: token revoked, policy deleted" "$work/operator.log"
ok $? "  one line for it in the operator's log (from the watch's DELETED event: the next relist is minutes away)"

# --- the canary in no log
! grep -rqF -e "$secret" "$work"/*.log "$CT_CLUSTER"/pod-logs/"$ns"_* 2> /dev/null
ok $? "no canary in any log (the operator's, the pod's)"

tap_done
