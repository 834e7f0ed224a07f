#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cloudtaser target protect` on the real cluster and OpenBao, with the real operator registered
# as the cluster's mutating webhook and pods on the real kubelet (the wrapper image):
#   - --yes: a Deployment reading a Kubernetes Secret through env secretKeyRef restarts with the
#     value from OpenBao (its hash in the new pod's log), the Secret reference is gone from the
#     Deployment, the annotations are there, the plan says migrated (the comment kept);
#   - killed with SIGKILL during the second workload's rollout, then run again: both migrated,
#     the first not patched again, the plan valid;
#   - a vault role that does not exist: the wrapper fails closed, the rollout does not finish,
#     the pod template is restored as it was and the workload is recorded failed with the reason;
#   - the same, killed with SIGKILL right after its patch: the patch carried the rollback record
#     (on the Deployment, no secret value in it), so the resumed run, whose rollout does not
#     finish either, puts the pod template back as it was and removes the record;
#   - interactive, through a pseudo-terminal: y then n records migrated then skipped;
#   - without --yes and with stdin not a terminal: refused, the plan untouched.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin prot
ct=$top/build/asan/bin/cloudtaser

ct_push_images e2e
ok $? "our images pushed to the cluster's registry" || sed 's/^/# /' "$work/images.log"

secret="canary-$(rand_hex 16)"
role=cloudtaser-tenant-$ns
bao kv put -mount=secret "$T/db" password="$secret" > /dev/null &&
    bao_policy "$role" "path \"secret/data/$T/*\" { capabilities = [\"read\"] }" &&
    bao write "auth/kubernetes/role/$role" bound_service_account_names=app \
        bound_service_account_namespaces="$ns" policies="$role" ttl=10m > /dev/null
ok $? "OpenBao: the secret, the tenant's policy and role ($role)"

ct_tenant_ns "$ns" && ct_operator_account "$ns" &&
    kubectl -n "$ns" create secret generic db --from-literal=password="$secret" > /dev/null
ok $? "namespace $ns, its service accounts and the Kubernetes Secret db"

ct_start_operator e2e --registry-insecure "$CT_REGISTRY"
ok $? "the operator is ready" || sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "the webhook registered" || sed 's/^/# /' "$work/mwc-$T-inject.out"

plain() { # NAME [SPEC-LINE]: a Deployment reading the Secret through env secretKeyRef
    ct_deployment -g 2 -s "${2:-}" "$1" "$ns" \
        'command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]' \
        'env:' '- {name: KEEP, value: "1"}' '- {name: PGPASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}'
}
plan() { # FILE NAME... : a plan for Deployments NAME...
    local f=$1 n
    shift
    {
        printf 'apiVersion: cloudtaser.io/v1\nkind: MigrationPlan\n'
        printf 'metadata: {name: t, cluster: c, createdAt: "2026-01-01T00:00:00Z", createdBy: test}\n'
        printf 'tenants:\n- name: %s\n  namespace: %s\n  workloads:\n' "$ns" "$ns"
        for n in "$@"; do
            printf '  - kind: Deployment\n    name: %s\n    replicas: 1\n    status: pending  # reviewed\n' "$n"
            printf '    secrets:\n    - source: secretKeyRef:db\n      vaultPath: secret/data/%s/db\n' "$T"
            printf '      fields: {password: PGPASSWORD}\n'
        done
    } > "$f"
}
status_of() { # FILE NAME
    awk -v n="$2" '$0 ~ "name: "n"$" {f=1} f && /status:/ {print $2; exit}' "$1"
}
ready_hash() { # NAME: the running pod of NAME logged the secret's hash
    local i p
    for i in $(seq 300); do
        p=$(kubectl -n "$ns" get pod -l "app=$1" -o json 2> /dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["metadata"].get("annotations", {}).get("cloudtaser.io/injected") == "true" and p["status"].get("phase") == "Running":
        print(p["metadata"]["name"]); break')
        if [ -n "$p" ] && ct_pod_log "$ns" "$p" app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}
deploy_check() { # NAME: the Deployment's template has the annotations and no secretKeyRef
    kubectl -n "$ns" get deployment "$1" -o json | python3 -c '
import json, sys
t = json.load(sys.stdin)["spec"]["template"]
a = t["metadata"].get("annotations", {})
env = t["spec"]["containers"][0].get("env", [])
ok = (a.get("cloudtaser.io/inject") == "true" and t["metadata"]["labels"].get("cloudtaser.io/inject") == "true"
      and a.get("cloudtaser.io/secret-paths") == sys.argv[1] and a.get("cloudtaser.io/env-map") == "password=PGPASSWORD"
      and a.get("cloudtaser.io/vault-role") == sys.argv[2]
      and env == [{"name": "KEEP", "value": "1"}])
print("ok" if ok else json.dumps(t)[:1500])
sys.exit(0 if ok else 1)' "secret/data/$T/db" "$role"
}

kill_once_patched() { # NAME PID: SIGKILL PID once Deployment NAME carries the patch; killed=1 if so
    local i
    killed=0
    for i in $(seq 1500); do
        if [ "$(kubectl -n "$ns" get deployment "$1" -o 'jsonpath={.spec.template.metadata.annotations.cloudtaser\.io/inject}' 2> /dev/null)" = true ]; then
            kill -KILL "$2" 2> /dev/null && killed=1
            break
        fi
        kill -0 "$2" 2> /dev/null || break
        sleep 0.2
    done
    wait "$2" 2> /dev/null
}

# --- --yes
plain web | kubectl apply -f - > "$work/apply-web.out" 2>&1 && ct_wait_running "$ns" web 120
ok $? "a Deployment reading the Secret through secretKeyRef runs" || sed 's/^/# /' "$work/apply-web.out"
plan "$work/p1.yaml" web
"$ct" target protect --plan "$work/p1.yaml" --yes --vault-address "$BAO_ADDR" --timeout 3m < /dev/null > "$work/p1.out" 2> "$work/p1.err"
rc=$?
[ $rc = 0 ] && [ "$(status_of "$work/p1.yaml" web)" = migrated ] && grep -q "# reviewed" "$work/p1.yaml"
ok $? "protect --yes: exit 0, the plan says migrated (its comment kept)" || diag "rc=$rc" "$(cat "$work/p1.out" "$work/p1.err" "$work/p1.yaml")"
ready_hash web
ok $? "the workload restarted on the real kubelet with its secret from OpenBao (its hash in the log)" || diag "$(kubectl -n "$ns" get pods -o wide 2>&1)"
out=$(deploy_check web)
ok $? "the Deployment carries the annotations and the label; the secretKeyRef is gone, KEEP stays" || diag "$out"
rec=$(kubectl -n "$ns" get deployment web -o 'jsonpath={.metadata.annotations.cloudtaser\.io/protect-rollback}')
[ -n "$rec" ] && ! printf '%s' "$rec" | grep -qF "$secret"
ok $? "the rollback record is on the Deployment (its own metadata), without the secret's value" || diag "$rec"
! grep -qF "$secret" "$work/p1.yaml" "$work/p1.out" "$work/p1.err"
ok $? "the secret's value is not in the plan nor in protect's output"

# --- refused without --yes when stdin is not a terminal
cp "$work/p1.yaml" "$work/p1.before"
"$ct" target protect --plan "$work/p1.yaml" < /dev/null > /dev/null 2> "$work/noyes.err"
rc=$?
[ $rc = 64 ] && cmp -s "$work/p1.yaml" "$work/p1.before" && grep -q -- "--yes" "$work/noyes.err"
ok $? "without --yes or --interactive and stdin not a terminal: refused (64), the plan untouched" || diag "rc=$rc"

# --- SIGKILL mid-way, then resumed
plain k1 | kubectl apply -f - > /dev/null 2>&1 && plain k2 | kubectl apply -f - > /dev/null 2>&1 &&
    ct_wait_running "$ns" k1 120 && ct_wait_running "$ns" k2 120
ok $? "two more Deployments run"
plan "$work/p2.yaml" k1 k2
"$ct" target protect --plan "$work/p2.yaml" --yes --timeout 3m < /dev/null > "$work/p2a.out" 2> "$work/p2a.err" &
kill_once_patched k2 $!
[ $killed = 1 ] && [ "$(status_of "$work/p2.yaml" k1)" = migrated ] && [ "$(status_of "$work/p2.yaml" k2)" = pending ]
ok $? "killed with SIGKILL during k2's rollout: k1 recorded migrated, k2 still pending" || diag "killed=$killed" "$(cat "$work/p2.yaml" "$work/p2a.out")"
"$ct" target protect --plan "$work/p2.yaml" --yes --timeout 3m < /dev/null > "$work/p2b.out" 2> "$work/p2b.err"
rc=$?
[ $rc = 0 ] && [ "$(status_of "$work/p2.yaml" k1)" = migrated ] && [ "$(status_of "$work/p2.yaml" k2)" = migrated ] &&
    ! grep -q "k1" "$work/p2b.out" && grep -q "k2: migrated" "$work/p2b.out"
ok $? "resumed: the plan still parses, k2 is waited for and recorded, k1 is not touched again" || diag "rc=$rc" "$(cat "$work/p2b.out" "$work/p2b.err" "$work/p2.yaml")"
ready_hash k2 && [ "$(kubectl -n "$ns" get deployment k2 -o 'jsonpath={.metadata.generation}')" = 2 ]
ok $? "k2 runs with its secret from OpenBao, patched once (generation 2)"

# --- a rollout that cannot finish: rolled back, failed. The wrapper retries its login until its
# startup timeout (60 s), Running meanwhile: minReadySeconds (Kubernetes' "ready for that long")
# keeps a pod that then exits from counting as available.
plain bad "minReadySeconds: 90" | kubectl apply -f - > /dev/null 2>&1 && ct_wait_running "$ns" bad 120
ok $? "a Deployment to fail"
kubectl -n "$ns" get deployment bad -o 'jsonpath={.spec.template}' > "$work/bad-before.json"
plan "$work/p3.yaml" bad
"$ct" target protect --plan "$work/p3.yaml" --yes --vault-role "no-such-role-$T" --timeout 100s < /dev/null > "$work/p3.out" 2> "$work/p3.err"
rc=$?
[ $rc = 69 ] && [ "$(status_of "$work/p3.yaml" bad)" = failed ] &&
    grep -q "reason: .*did not become ready.*rolled back" "$work/p3.yaml"
ok $? "a vault role that does not exist: exit 69, recorded failed with the reason" || diag "rc=$rc" "$(cat "$work/p3.out" "$work/p3.err" "$work/p3.yaml")"
kubectl -n "$ns" get deployment bad -o 'jsonpath={.spec.template}' > "$work/bad-after.json"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a==b else 1)' "$work/bad-before.json" "$work/bad-after.json"
ok $? "the pod template is restored as it was read (the secretKeyRef back, no annotation)" || diag "$(cat "$work/bad-after.json")"

# --- killed with SIGKILL right after its patch, then resumed with a rollout that cannot finish:
# the record the patch wrote on the Deployment is what the resumed run rolls back from.
plain kb "minReadySeconds: 90" | kubectl apply -f - > /dev/null 2>&1 && ct_wait_running "$ns" kb 120
ok $? "a Deployment to patch, kill and roll back"
kubectl -n "$ns" get deployment kb -o 'jsonpath={.spec.template}' > "$work/kb-before.json"
plan "$work/p5.yaml" kb
"$ct" target protect --plan "$work/p5.yaml" --yes --vault-role "no-such-role-$T" --timeout 3m < /dev/null > "$work/p5a.out" 2> "$work/p5a.err" &
kill_once_patched kb $!
rec=$(kubectl -n "$ns" get deployment kb -o 'jsonpath={.metadata.annotations.cloudtaser\.io/protect-rollback}')
[ $killed = 1 ] && [ "$(status_of "$work/p5.yaml" kb)" = pending ] && [ -n "$rec" ] &&
    printf '%s' "$rec" | python3 -c '
import json, sys
r = json.load(sys.stdin)
adds = [o["value"] for o in r["ops"] if o["op"] == "add" and o["path"].startswith("/spec/template/spec/containers/0/env")]
want = {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
sys.exit(0 if r["generation"] >= 2 and any(a == want or a == [want] for a in adds) else 1)' &&
    ! printf '%s' "$rec" | grep -qF "$secret"
ok $? "killed with SIGKILL after its patch: still pending; the rollback record on the Deployment (the removed reference, no secret value)" || diag "killed=$killed" "$rec" "$(cat "$work/p5.yaml")"
"$ct" target protect --plan "$work/p5.yaml" --yes --timeout 20s < /dev/null > "$work/p5b.out" 2> "$work/p5b.err"
rc=$?
[ $rc = 69 ] && [ "$(status_of "$work/p5.yaml" kb)" = failed ] &&
    grep -q "reason: .*did not become ready.*rolled back (from the record of an interrupted run)" "$work/p5.yaml"
ok $? "resumed, its rollout does not finish: exit 69, recorded failed, rolled back from the record" || diag "rc=$rc" "$(cat "$work/p5b.out" "$work/p5b.err" "$work/p5.yaml")"
kubectl -n "$ns" get deployment kb -o 'jsonpath={.spec.template}' > "$work/kb-after.json"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a==b else 1)' "$work/kb-before.json" "$work/kb-after.json" &&
    [ -z "$(kubectl -n "$ns" get deployment kb -o 'jsonpath={.metadata.annotations.cloudtaser\.io/protect-rollback}')" ]
ok $? "the pod template is back as it was before the killed run's patch (the secretKeyRef back), the record gone" || diag "$(cat "$work/kb-after.json")"

# --- interactive through a pseudo-terminal: y, then n
plain i1 | kubectl apply -f - > /dev/null 2>&1 && plain i2 | kubectl apply -f - > /dev/null 2>&1 &&
    ct_wait_running "$ns" i1 120 && ct_wait_running "$ns" i2 120
ok $? "two Deployments for the interactive run"
plan "$work/p4.yaml" i1 i2
python3 - "$ct" "$work/p4.yaml" > "$work/p4.out" 2>&1 <<'EOF'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "target", "protect", "--plan", sys.argv[2], "--interactive", "--timeout", "3m"])
out = b""
answers = [b"y\n", b"n\n"]
deadline = time.time() + 400
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 1)
    if not r:
        continue
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
    if answers and out.count(b"[y/N/q]") > 2 - len(answers):
        os.write(fd, answers.pop(0))
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
EOF
rc=$?
[ $rc = 0 ] && [ "$(status_of "$work/p4.yaml" i1)" = migrated ] && [ "$(status_of "$work/p4.yaml" i2)" = skipped ] &&
    grep -q "secretKeyRef:db -> secret/data/$T/db" "$work/p4.out" && grep -q "password -> \$PGPASSWORD" "$work/p4.out"
ok $? "interactive on a pseudo-terminal: the mapping shown, y then n: migrated then skipped" || diag "rc=$rc" "$(cat "$work/p4.out" "$work/p4.yaml")"
[ -z "$(kubectl -n "$ns" get deployment i2 -o 'jsonpath={.spec.template.metadata.annotations}')" ]
ok $? "the declined workload is not patched"

tap_done
