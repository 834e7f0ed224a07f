#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole plan-file workflow of `cloudtaser`, in order, on the real cluster and OpenBao, each
# side reached on its own (the plan file is the only thing that crosses):
#   target discover  ->  source apply-plan  ->  source verify-plan  ->  target protect --yes
# A Deployment reads a Kubernetes Secret through env secretKeyRef; its value is also in OpenBao at
# the path discover proposes. After protect the workload runs on the real kubelet with the value
# from OpenBao (the hash in its log), the Secret reference is gone from the Deployment, the plan
# says migrated, and the value is in no plan, output or log. The commands' own tests are
# test-real-cli-discover.sh, test-real-cli-source.sh and test-real-cli-protect.sh.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin flow
ct=$top/build/asan/bin/cloudtaser

ct_push_images e2e
ok $? "our images pushed to the cluster's registry" || sed 's/^/# /' "$work/images.log"

secret="canary-$(rand_hex 16)"
ct_tenant_ns "$ns" && ct_operator_account "$ns" &&
    kubectl -n "$ns" create secret generic db --from-literal=password="$secret" > /dev/null &&
    bao kv put -mount=secret "flow-$T/$ns/db" password="$secret" > /dev/null
ok $? "namespace $ns, the Secret db, and its value in OpenBao at secret/data/flow-$T/$ns/db"
ct_start_operator e2e --registry-insecure "$CT_REGISTRY"
ok $? "the operator is ready" || sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "the webhook registered" || sed 's/^/# /' "$work/mwc-$T-inject.out"

ct_deployment -g 2 web "$ns" 'command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]' \
    'env:' '- {name: PGPASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}' |
    kubectl apply -f - > "$work/apply.out" 2>&1
ok $? "a Deployment reading the Secret through secretKeyRef" || sed 's/^/# /' "$work/apply.out"
kubectl -n "$ns" rollout status deployment/web --timeout=120s > /dev/null 2>&1
ok $? "it runs, uninjected"

# --- the cluster side: discover --------------------------------------------------------------
"$ct" target discover -n "$ns" --cluster "flow-$T" -o "$work/plan.yaml" > "$work/out.discover" 2>&1
ok $? "target discover wrote the plan" || sed 's/^/# /' "$work/out.discover"
python3 - "$work/plan.yaml" "$ns" "$T" > "$work/plan.check" 2>&1 <<'EOF'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
ns, t = sys.argv[2], sys.argv[3]
w = p["tenants"][0]["workloads"][0]
s = w["secrets"][0]
ok = (p["apiVersion"] == "cloudtaser.io/v1" and p["tenants"][0]["namespace"] == ns
      and w["kind"] == "Deployment" and w["name"] == "web" and w["status"] == "pending"
      and w.get("serviceAccount") == "app"
      and s["vaultPath"] == "secret/data/flow-%s/%s/db" % (t, ns) and s["fields"] == {"password": "PGPASSWORD"})
print("ok" if ok else "unexpected plan: %r" % p)
sys.exit(0 if ok else 1)
EOF
ok $? "the plan: web, its service account, secret/data/flow-$T/$ns/db, password -> PGPASSWORD" ||
    sed 's/^/# /' "$work/plan.check"

# --- the vault side: apply-plan, verify-plan ---------------------------------------------------
vopts=(--openbao-addr "$BAO_ADDR" --ca-cert "$BAO_CACERT")
"$ct" source apply-plan "$work/plan.yaml" "${vopts[@]}" > "$work/out.apply-plan" 2>&1
ok $? "source apply-plan: the tenant's policy and role" || sed 's/^/# /' "$work/out.apply-plan"
bao read -field=bound_service_account_names "auth/kubernetes/role/cloudtaser-tenant-$ns" 2> /dev/null | grep -q app
ok $? "  the role cloudtaser-tenant-$ns is bound to the workload's service account"
"$ct" source verify-plan "$work/plan.yaml" "${vopts[@]}" --as-workload > "$work/out.verify" 2>&1
ok $? "source verify-plan --as-workload: every field there, the policy grants exactly the plan" ||
    sed 's/^/# /' "$work/out.verify"

# --- the cluster side again: protect -------------------------------------------------------------
"$ct" target protect --plan "$work/plan.yaml" --yes --timeout 3m > "$work/out.protect" 2>&1
ok $? "target protect --yes" || sed 's/^/# /' "$work/out.protect"
grep -q "status: migrated" "$work/plan.yaml"
ok $? "  the plan says migrated"
kubectl -n "$ns" get deployment web -o json | python3 -c '
import json, sys
t = json.load(sys.stdin)["spec"]["template"]
env = t["spec"]["containers"][0].get("env", [])
sys.exit(0 if t["metadata"]["annotations"].get("cloudtaser.io/inject") == "true" and not any("valueFrom" in e for e in env) else 1)'
ok $? "  the Deployment is annotated and no longer reads the Secret"
found=
for i in $(seq 300); do
    p=$(kubectl -n "$ns" get pod -l app=web -o json 2> /dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["metadata"].get("annotations", {}).get("cloudtaser.io/injected") == "true" and p["status"].get("phase") == "Running":
        print(p["metadata"]["name"]); break')
    if [ -n "$p" ] && ct_pod_log "$ns" "$p" app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"; then
        found=$p
        break
    fi
    sleep 0.2
done
ok "$([ -n "$found" ]; echo $?)" "  the new pod runs on the real kubelet with the value from OpenBao (its hash)"
grep -rqF -- "$secret" "$work"/plan.yaml "$work"/out.* "$work/operator.log" 2> /dev/null
ok "$([ $? -ne 0 ]; echo $?)" "the value is in no plan, no output of the CLI and no operator log"

tap_done
