#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The vault side of the cloudtaser CLI on the real OpenBao and API server (docs/cli.md):
#   - source install on a private, uninitialised OpenBao: refused when stdout is not a terminal
#     (the vault left untouched), then through a pseudo-terminal: the unseal keys and the root
#     token printed exactly once, the vault unsealed;
#   - source configure twice: the second run and a --dry-run change and print nothing;
#   - target connect: the reviewer account and binding in the cluster, auth/kubernetes/config in
#     the vault; then a service-account JWT from the cluster logs in;
#   - source apply-plan --dry-run (a diff, nothing written), apply-plan (twice: a no-op);
#   - source verify-plan: a missing field found (table and -o json), then all present;
#     --as-workload: the role reads exactly the plan's paths; a hand-written over-broad policy is
#     found; apply-plan's diff shows it and apply-plan undoes it;
#   - a canary token given with --token is gone from /proc/<pid>/cmdline while the CLI runs, and
#     the token never appears in any output or log of the CLI.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster --own-bao 1 --uninit
CLI=$top/build/asan/bin/cloudtaser
[ -x "$CLI" ] || CLI=$top/build/musl/bin/cloudtaser
ns=$T-shop
# The reviewer gets names of this test's own (the defaults, cloudtaser-system and
# cloudtaser-token-reviewer, belong to the tests that install the operator on the shared cluster).
rev_ns=$T-system rev=$T-reviewer
REV=(--reviewer-namespace "$rev_ns" --reviewer "$rev")
cleanup_cli_test() {
    kubectl delete clusterrolebinding "$rev" --ignore-not-found > /dev/null 2>&1
    kubectl delete namespace "$ns" "$rev_ns" --wait=false > /dev/null 2>&1
    real_cleanup
}
trap cleanup_cli_test EXIT
export VAULT_ADDR=$BAO_ADDR VAULT_CACERT=$BAO_CACERT
unset VAULT_TOKEN BAO_TOKEN
health() { curl -s --cacert "$BAO_CACERT" "$BAO_ADDR/v1/sys/seal-status"; }
# Every output of the CLI goes to $work/out.* (grepped for the root token at the end).
cli() { "$CLI" "$@"; }

# --- install ------------------------------------------------------------------------------
cli source install > "$work/out.install-pipe" 2>&1
ok $(($? == 64 ? 0 : 1)) "install with stdout on a pipe: refused (EX_USAGE)"
health | grep -q '"initialized":false'
ok $? "  and the vault is still uninitialised" || health | sed 's/^/# /'

script -qec "$CLI source install --key-shares 3 --key-threshold 2" /dev/null \
    > "$work/install.tty" 2> "$work/out.install-err"
ok $? "install in a pseudo-terminal" || sed 's/^/# /' "$work/install.tty" "$work/out.install-err"
tr -d '\r' < "$work/install.tty" > "$work/install.txt"
[ "$(grep -c '^Unseal key [0-9]*: ' "$work/install.txt")" = 3 ] &&
    [ "$(grep -c '^Root token: ' "$work/install.txt")" = 1 ] &&
    grep -q 'HSM' "$work/install.txt" && grep -q 'Never in a Kubernetes Secret' "$work/install.txt"
ok $? "  the 3 unseal keys and the root token, once each, with the warning"
health | grep -q '"sealed":false'
ok $? "  the vault is unsealed" || health | sed 's/^/# /'
root=$(sed -n 's/^Root token: //p' "$work/install.txt")
printf '%s\n' "$root" > "$work/root-token" && chmod 600 "$work/root-token"
key1=$(sed -n 's/^Unseal key 1: //p' "$work/install.txt")
BAO_TOKEN=$root bao token lookup > /dev/null 2>&1
ok $? "  the root token printed works"
cli source install --force-output-to-non-terminal > "$work/out.install-again" 2>&1
ok $(($? == 78 ? 0 : 1)) "install again: refused (EX_CONFIG), already initialised"
! grep -q 'Unseal key' "$work/out.install-again"
ok $? "  and prints no key"
cli source install --output-file "$work/keys" > "$work/out.install-file" 2>&1
ok $(($? == 64 ? 0 : 1)) "install --output-file without --force: refused"
export BAO_TOKEN=$root # for bao() below: the tests' own checks

# --- configure ----------------------------------------------------------------------------
T_OPTS=(--token-file "$work/root-token")
cli source configure "${T_OPTS[@]}" > "$work/out.configure1" 2> "$work/out.configure1-err"
ok $? "configure" || sed 's/^/# /' "$work/out.configure1-err"
grep -q 'enabled secrets engine secret/ (kv v2)' "$work/out.configure1" &&
    grep -q 'enabled auth method kubernetes/' "$work/out.configure1" &&
    grep -q 'created policy cloudtaser-operator' "$work/out.configure1" &&
    grep -q 'created role auth/kubernetes/role/cloudtaser-operator' "$work/out.configure1"
ok $? "  KV v2, the Kubernetes auth method, the operator's policy and role" || sed 's/^/# /' "$work/out.configure1"
bao read -format=json auth/kubernetes/role/cloudtaser-operator > "$work/role.json" 2>&1 &&
    python3 - "$work/role.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert d["bound_service_account_names"] == ["cloudtaser-operator"], d
assert d["bound_service_account_namespaces"] == ["cloudtaser-system"], d
assert d["audience"], d
assert d["token_policies"] == ["cloudtaser-operator"], d
EOF
ok $? "  the role: one service account, one namespace, an audience"
bao policy read cloudtaser-operator | grep -q 'secret/metadata/cloudtaser/system/\*'
ok $? "  the policy covers data and metadata of secret/*/cloudtaser/system/*"
cli source configure "${T_OPTS[@]}" > "$work/out.configure2" 2>&1
ok $? "configure again"
! grep -qE '^(enabled|created|updated)' "$work/out.configure2"
ok $? "  changes nothing" || sed 's/^/# /' "$work/out.configure2"
cli source configure "${T_OPTS[@]}" --dry-run > "$work/out.configure3" 2> /dev/null
ok $? "configure --dry-run"
[ ! -s "$work/out.configure3" ]
ok $? "  shows nothing to do" || sed 's/^/# /' "$work/out.configure3"

# --- connect ------------------------------------------------------------------------------
cli target connect "${T_OPTS[@]}" "${REV[@]}" --kubeconfig "$KUBECONFIG" > "$work/out.connect1" 2> "$work/out.connect1-err"
ok $? "target connect" || sed 's/^/# /' "$work/out.connect1-err"
kubectl -n "$rev_ns" get serviceaccount "$rev" > /dev/null 2>&1 &&
    [ "$(kubectl get clusterrolebinding "$rev" -o jsonpath='{.roleRef.name}')" = system:auth-delegator ]
ok $? "  the reviewer service account, bound to system:auth-delegator"
bao read -format=json auth/kubernetes/config > "$work/config.json" &&
    python3 - "$work/config.json" "$CT_API" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert d["kubernetes_host"] == sys.argv[2], d
assert "BEGIN CERTIFICATE" in d["kubernetes_ca_cert"], d
assert d["token_reviewer_jwt_set"] is True, d
EOF
ok $? "  auth/kubernetes/config: this API server, its CA, a reviewer token"
cli target connect "${T_OPTS[@]}" "${REV[@]}" --kubeconfig "$KUBECONFIG" > "$work/out.connect2" 2>&1
ok $? "target connect again (idempotent)"
! grep -q '^created' "$work/out.connect2"
ok $? "  creates nothing in the cluster"

real_ns "$ns" && kubectl -n "$ns" create serviceaccount app > /dev/null
bao write auth/kubernetes/role/$T-probe bound_service_account_names=default \
    bound_service_account_namespaces="$ns" audience=https://kubernetes.default.svc.cluster.local \
    policies=default ttl=5m > /dev/null
kube_token "$ns" default > "$work/sa.jwt"
python3 - "$work/sa.jwt" "$T-probe" > "$work/login.json" <<'EOF'
import json, sys
print(json.dumps({"role": sys.argv[2], "jwt": open(sys.argv[1]).read().strip()}))
EOF
curl -s --cacert "$BAO_CACERT" -X POST --data @"$work/login.json" "$BAO_ADDR/v1/auth/kubernetes/login" |
    grep -q '"client_token"'
ok $? "  a service-account JWT of the cluster logs in (the vault's TokenReview works)"

# --- apply-plan ---------------------------------------------------------------------------
cat > "$work/plan.yaml" <<EOF
apiVersion: cloudtaser.io/v1
kind: MigrationPlan
metadata:
  name: e2e
  cluster: c1
  createdAt: "2026-12-03T10:00:00Z"
  createdBy: test-real-cli-source
tenants:
# the shop team
- name: shop
  namespace: $ns
  workloads:
  - kind: Deployment
    name: web
    serviceAccount: app
    replicas: 1
    status: pending
    secrets:
    - source: "secretKeyRef:db/password"
      vaultPath: secret/data/c1/$ns/db
      fields: {password: PGPASSWORD, user: PGUSER}
    - source: "secretKeyRef:api/key"
      vaultPath: secret/data/c1/$ns/api
      fields: {key: API_KEY}
EOF
canary="canary-$(rand_hex 12)"
bao kv put -mount=secret "c1/$ns/db" password="$canary" user=app > /dev/null &&
    bao kv put -mount=secret "c1/$ns/api" other="$canary" > /dev/null
ok $? "secrets in the vault (api lacks its field 'key')"
pol=cloudtaser-tenant-$ns
cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" --dry-run > "$work/out.apply-dry" 2> "$work/out.apply-dry-err"
ok $? "apply-plan --dry-run" || sed 's/^/# /' "$work/out.apply-dry-err"
grep -q "^+++ policy $pol (wanted)" "$work/out.apply-dry" &&
    grep -q "^+path \"secret/data/c1/$ns/db\" {" "$work/out.apply-dry" &&
    grep -q "^+path \"secret/metadata/c1/$ns/api\" {" "$work/out.apply-dry" &&
    grep -q "^+bound_service_account_names = \[\"app\"\]" "$work/out.apply-dry" &&
    grep -q "^+bound_service_account_namespaces = \[\"$ns\"\]" "$work/out.apply-dry"
ok $? "  a diff: the policy's data and metadata paths, the role" || sed 's/^/# /' "$work/out.apply-dry"
! bao policy read "$pol" > /dev/null 2>&1
ok $? "  and nothing is written"
cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" > "$work/out.apply1" 2> "$work/out.apply1-err"
ok $? "apply-plan" || sed 's/^/# /' "$work/out.apply1-err"
grep -q "created policy $pol" "$work/out.apply1" && grep -q "created role auth/kubernetes/role/$pol" "$work/out.apply1"
ok $? "  the tenant's policy and role"
[ "$(bao policy read "$pol" | grep -c 'capabilities = \["read"\]')" = 4 ] && ! bao policy read "$pol" | grep -q '\*'
ok $? "  the policy: read on 4 paths, no glob"
cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" > "$work/out.apply2" 2>&1 &&
    cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" --dry-run > "$work/out.apply3" 2> /dev/null
ok $? "apply-plan and --dry-run again"
! grep -qE '^(created|updated)' "$work/out.apply2" && [ ! -s "$work/out.apply3" ]
ok $? "  no change, an empty diff"

# --- verify-plan --------------------------------------------------------------------------
cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" > "$work/out.verify1" 2> "$work/out.verify1-err"
ok $(($? == 65 ? 0 : 1)) "verify-plan with a missing field: EX_DATAERR"
grep -qE "secret/data/c1/$ns/api +key +missing field" "$work/out.verify1" &&
    grep -qE "secret/data/c1/$ns/db +password +ok" "$work/out.verify1" &&
    grep -q "missing field: $ns secret/data/c1/$ns/api key" "$work/out.verify1-err"
ok $? "  the table and the error list name it" || sed 's/^/# /' "$work/out.verify1" "$work/out.verify1-err"
cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" -o json > "$work/out.verify-json" 2> /dev/null
python3 - "$work/out.verify-json" "$ns" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False, d
assert d["failed"] == [{"namespace": sys.argv[2], "path": "secret/data/c1/%s/api" % sys.argv[2],
                        "field": "key", "status": "missing field"}], d
assert len(d["fields"]) == 3, d
EOF
ok $? "  -o json: ok false, the one failure"
! grep -q "$canary" "$work"/out.verify*
ok $? "  no secret value is printed"
bao kv patch -mount=secret "c1/$ns/api" key=k > /dev/null
cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" > "$work/out.verify2" 2>&1
ok $? "verify-plan once the field is there: EX_OK" || sed 's/^/# /' "$work/out.verify2"

cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" --as-workload --kubeconfig "$KUBECONFIG" \
    > "$work/out.verify3" 2> "$work/out.verify3-err"
ok $? "verify-plan --as-workload: the role reads exactly the plan's paths" ||
    sed 's/^/# /' "$work/out.verify3" "$work/out.verify3-err"
grep -qE "app +secret/data/c1/$ns/db +ok +read" "$work/out.verify3" &&
    grep -qE "app +secret/data/c1/$ns/cloudtaser-verify-probe +ok +deny" "$work/out.verify3"
ok $? "  it logged in as the service account: read on the path, nothing on its sibling" ||
    sed 's/^/# /' "$work/out.verify3"

bao_policy "$pol" "path \"secret/data/c1/$ns/*\" { capabilities = [\"read\"] }
path \"secret/metadata/c1/$ns/*\" { capabilities = [\"read\", \"list\"] }"
cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" --as-workload --kubeconfig "$KUBECONFIG" \
    > "$work/out.verify4" 2> "$work/out.verify4-err"
ok $(($? == 65 ? 0 : 1)) "an over-broad policy written by hand: verify-plan --as-workload fails"
grep -qE "secret/data/c1/$ns/cloudtaser-verify-probe +grants too much +read" "$work/out.verify4" &&
    grep -qE "secret/metadata/c1/$ns/db +grants too much +read,list" "$work/out.verify4"
ok $? "  it names the sibling it reaches and the extra capability" || sed 's/^/# /' "$work/out.verify4"
cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" --dry-run > "$work/out.apply4" 2> /dev/null
grep -q "^-path \"secret/data/c1/$ns/\*\"" "$work/out.apply4" && grep -q "^+path \"secret/data/c1/$ns/db\" {" "$work/out.apply4"
ok $? "  apply-plan --dry-run shows the hand edit going" || sed 's/^/# /' "$work/out.apply4"
cli source apply-plan "$work/plan.yaml" "${T_OPTS[@]}" > "$work/out.apply5" 2>&1 &&
    cli source verify-plan "$work/plan.yaml" "${T_OPTS[@]}" --as-workload --kubeconfig "$KUBECONFIG" > "$work/out.verify5" 2>&1
ok $? "  apply-plan undoes it: verify-plan --as-workload passes again" || sed 's/^/# /' "$work/out.verify5"

# --- the token ----------------------------------------------------------------------------
# A vault address that accepts and never answers: the CLI waits in its first request, with the
# token already parsed.
tok_canary="s.canary$(rand_hex 12)"
python3 - "$work/hang.port" <<'EOF' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
end = time.time() + 60
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except OSError:
        pass
EOF
hang=$!
for _ in $(seq 100); do [ -f "$work/hang.port" ] && break; sleep 0.1; done
"$CLI" source configure --openbao-addr "https://127.0.0.1:$(cat "$work/hang.port")" --token "$tok_canary" \
    > "$work/out.hang" 2>&1 &
cli_pid=$!
seen=1
for _ in $(seq 100); do
    if [ -r "/proc/$cli_pid/cmdline" ] && tr '\0' ' ' < "/proc/$cli_pid/cmdline" | grep -q -- '--token'; then
        sleep 0.5 # the token is wiped right after the flags are parsed, before any request
        tr '\0' ' ' < "/proc/$cli_pid/cmdline" > "$work/cmdline"
        seen=0
        break
    fi
    sleep 0.05
done
ok $seen "the CLI runs with --token on its command line"
! grep -q "$tok_canary" "$work/cmdline"
ok $? "  and the token is gone from /proc/<pid>/cmdline" || sed 's/^/# /' "$work/cmdline"
kill "$cli_pid" "$hang" 2> /dev/null
wait "$cli_pid" "$hang" 2> /dev/null
! grep -q "$tok_canary" "$work/out.hang"
ok $? "  nor in its output"
! grep -lF "$root" "$work"/out.* > "$work/leaks"
ok $? "the root token is in no output or log of the CLI (but the install's terminal)" || sed 's/^/# /' "$work/leaks"

tap_done
