#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: the operator's own vault session and credential store
# (operator/vaultsession, operator/credstore) through tests/tools/ct-credstore, against a private
# OpenBao whose Kubernetes auth reviews real service-account JWTs on the real API server.
#   - vault backend: the role and the policy of docs/operator.md (secret/data and
#     secret/metadata under cloudtaser/system only); login with a JWT from the TokenRequest API;
#     two processes create the same record with cas=0 at once: exactly one wins, the other
#     reads the winner's value; an update at a stale version is refused; nothing of ours in
#     `kubectl get secrets -A`;
#   - a missing role, a role without the policy, the wrong CA: not ready, each attempt's line
#     names the cause and the fix;
#   - sealed at the start, then unsealed; stopped at the start, then started: the tool retries
#     and becomes ready, one log line per attempt naming the cause;
#   - kubernetes backend (a service account with a Role limited to its Secret and Events):
#     exactly one Secret, keys <record>.<field>, create races and stale updates as above, the
#     WeakenedSecurityModel Event;
#   - a canary planted in a record never appears in any output or log.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster --own-bao 1
. "$top/tests/e2e/credstore-lib.sh"
canary="canary-$(rand_hex 12)"
ns=$T-op
real_ns "$ns" && kubectl -n "$ns" create serviceaccount cloudtaser-operator > /dev/null &&
    bao_policy cloudtaser-operator '
path "secret/data/cloudtaser/system/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/cloudtaser/system/*" {
  capabilities = ["read"]
}' &&
    bao write auth/kubernetes/role/cloudtaser-operator bound_service_account_names=cloudtaser-operator \
        bound_service_account_namespaces="$ns" token_policies=cloudtaser-operator token_ttl=1h > /dev/null &&
    bao write auth/kubernetes/role/"$T-nopolicy" bound_service_account_names=cloudtaser-operator \
        bound_service_account_namespaces="$ns" token_ttl=1h > /dev/null &&
    kube_token "$ns" cloudtaser-operator > "$work/op.jwt" && chmod 644 "$work/op.jwt"
ok $? "a private OpenBao: the operator's role and policy, a JWT from the API server"

CT=$top/build/musl/bin/ct-credstore
CTV=(--vault-addr "$BAO_ADDR" --vault-ca "$work/ca.pem" --jwt "$work/op.jwt")
for f in musl asan; do
    CT=$top/build/$f/bin/ct-credstore
    ct "$f-ready" "" -- "${CTV[@]}" ready
    [ $rc -eq 0 ] && grep -qx ready "$work/$f-ready.out" && grep -q "logged in to vault at $BAO_ADDR (auth/kubernetes, role 'cloudtaser-operator')" "$work/$f-ready.err"
    ok $? "$f: logged in with the service account's JWT through the real TokenReview" || show "$f-ready"
done
CT=$top/build/musl/bin/ct-credstore

# Two processes create the same record at once.
a="A-$canary" b="B-$canary"
ctbg race-a "token=$a" -- "${CTV[@]}" create broker-token
pa=$bgpid
ctbg race-b "token=$b" -- "${CTV[@]}" create broker-token
pb=$bgpid
wwait "$pa" 60
ra=$rc
wwait "$pb" 60
rb=$rc
if [ $ra -eq 0 ]; then win=$a lose=race-b; else win=$b lose=race-a; fi
{ [ $ra -eq 0 ] && [ $rb -eq 3 ]; } || { [ $ra -eq 3 ] && [ $rb -eq 0 ]; }
ok $? "two concurrent creates (cas=0): exactly one wins ($ra, $rb)" || { show race-a; show race-b; }
grep -qx 'exists' "$work/$lose.out" && grep -qx "field token sha256=$(sha "$win") len=${#win}" "$work/$lose.out"
ok $? "the loser gets -EEXIST and reads the winner's value" || show "$lose"
[ "$(bao kv get -format=json -mount=secret cloudtaser/system/broker-token | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["metadata"]["version"], d["data"]["token"] == sys.argv[1])' "$win")" = "1 True" ]
ok $? "vault holds version 1 with the winner's value at secret/data/cloudtaser/system/broker-token"

key="-----BEGIN PRIVATE KEY-----$canary-----END PRIVATE KEY-----"
ct create "tls.crt=cert-1
tls.key=$key
ca.crt=ca-1
ca.key=cakey-$canary
" -- "${CTV[@]}" create webhook-tls
[ $rc -eq 0 ] && grep -qx 'created version 1' "$work/create.out"
ok $? "create webhook-tls: version 1" || show create
ct read "" -- "${CTV[@]}" read webhook-tls
[ $rc -eq 0 ] && grep -qx 'version 1' "$work/read.out" && [ "$(grep -c '^field ' "$work/read.out")" -eq 4 ] &&
    grep -qx "field tls.key sha256=$(sha "$key") len=${#key}" "$work/read.out"
ok $? "read it back: four fields, version 1" || show read
ct update "tls.crt=cert-2
tls.key=$key
" -- "${CTV[@]}" update webhook-tls 1
[ $rc -eq 0 ] && grep -qx 'updated version 2' "$work/update.out"
ok $? "update at version 1: version 2" || show update
ct stale "tls.crt=cert-3
" -- "${CTV[@]}" update webhook-tls 1
[ $rc -eq 4 ] && grep -qx stale "$work/stale.out" && grep -q 'check-and-set' "$work/stale.err"
ok $? "update at the stale version 1: refused (-ESTALE)" || show stale
ct outside "" -- "${CTV[@]}" --prefix elsewhere/system --wait 5 read webhook-tls
{ [ $rc -eq 5 ] || [ $rc -eq 1 ]; } && grep -q 'permission denied' "$work/outside.err"
ok $? "a prefix outside the policy: permission denied ($rc)" || show outside
kubectl get secrets -A -o name > "$work/secrets-vault.txt" &&
    ! grep -q 'cloudtaser' "$work/secrets-vault.txt" &&
    [ -z "$(kubectl get secrets -A -l app.kubernetes.io/managed-by=cloudtaser-operator -o name)" ]
ok $? "vault backend: kubectl get secrets -A shows nothing of ours"

# Refused logins: each attempt says what to do.
ct norole "" -- "${CTV[@]}" --role "$T-nope" --wait 4 ready
[ $rc -eq 5 ] && attempts "$work/norole.err" "the role '$T-nope' does not exist" &&
    grep -q "fix: create it with \`bao write auth/kubernetes/role/$T-nope " "$work/norole.err"
ok $? "a missing role: not ready, every attempt's line names the fix" || show norole
ct nopolicy "" -- "${CTV[@]}" --role "$T-nopolicy" --wait 4 ready
[ $rc -eq 5 ] && attempts "$work/nopolicy.err" "permission denied" &&
    grep -q 'bao policy write cloudtaser-operator' "$work/nopolicy.err"
ok $? "a role without the policy: not ready, the line names the policy to write" || show nopolicy

ct badca "" -- --vault-addr "$BAO_ADDR" --vault-ca "$CT_CA" --jwt "$work/op.jwt" --wait 4 ready
[ $rc -eq 5 ] && attempts "$work/badca.err" "TLS with $BAO_ADDR failed" && grep -q -- '--vault-ca-file' "$work/badca.err"
ok $? "a CA that did not sign vault's certificate: not ready, each line says TLS failed and names the fix" || show badca

# Sealed at the start, then unsealed.
"$top/tests/cluster/openbao.sh" seal "$BAO_DIR" > /dev/null 2>&1
ctbg sealed "" -- "${CTV[@]}" --wait 110 ready
pid=$bgpid
wait_grep "$work/sealed.err" 'vault login attempt 2 failed' 30 "$pid"
# The attempts made while it is sealed say so; once unsealed, the single raft node elects itself
# before it answers, and an attempt in that moment names what the vault said then.
cp "$work/sealed.err" "$work/sealed-before.err"
"$top/tests/cluster/openbao.sh" unseal "$BAO_DIR" > "$work/unseal.log" 2>&1
wwait "$pid" 115
[ $rc -eq 0 ] && grep -qx ready "$work/sealed.out" && attempts "$work/sealed-before.err" 'vault is sealed' &&
    attempts "$work/sealed.err" ''
ok $? "sealed at the start: retried, one line per attempt saying sealed, then ready" || show sealed

# Stopped at the start, then started.
kill -TERM "$(cat "$BAO_DIR/openbao/node1/pid")" 2> /dev/null
for _ in $(seq 100); do kill -0 "$(cat "$BAO_DIR/openbao/node1/pid")" 2> /dev/null || break; sleep 0.1; done
ctbg stopped "" -- "${CTV[@]}" --wait 110 read webhook-tls
pid=$bgpid
wait_grep "$work/stopped.err" 'vault login attempt 2 failed' 30 "$pid"
# The attempts made while it is down say unreachable; while the node starts again it is sealed,
# then elects itself, and those attempts name what the vault said then.
cp "$work/stopped.err" "$work/stopped-before.err"
"$top/tests/cluster/openbao.sh" restart-node "$BAO_DIR" 1 > "$work/restart.log" 2>&1
wwait "$pid" 115
[ $rc -eq 0 ] && grep -qx 'version 2' "$work/stopped.out" &&
    attempts "$work/stopped-before.err" 'is unreachable (connection refused)' && attempts "$work/stopped.err" '' &&
    grep -q 'vault login attempt 2 failed: vault at .* is unreachable (connection refused)' "$work/stopped.err"
ok $? "stopped at the start: retried, one line per attempt saying unreachable, then read" || show stopped

# The fallback backend, with the least privilege it needs.
fb=$T-fb
real_ns "$fb" && kubectl -n "$fb" create serviceaccount cloudtaser-operator > /dev/null &&
    kubectl apply -f - > /dev/null <<EOF &&
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cloudtaser-operator-fallback, namespace: $fb}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [create]}
- {apiGroups: [""], resources: [secrets], resourceNames: [cloudtaser-operator-certs], verbs: [get, update]}
- {apiGroups: [""], resources: [events], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: cloudtaser-operator-fallback, namespace: $fb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cloudtaser-operator-fallback}
subjects: [{kind: ServiceAccount, name: cloudtaser-operator, namespace: $fb}]
EOF
    kube_token "$fb" cloudtaser-operator > "$work/fb.jwt" && chmod 644 "$work/fb.jwt" &&
    cat > "$work/fb.kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: op
clusters: [{name: c, cluster: {server: "$CT_API", certificate-authority: "$CT_CA"}}]
users: [{name: op, user: {tokenFile: "$work/fb.jwt"}}]
contexts: [{name: op, context: {cluster: c, user: op, namespace: $fb}}]
EOF
ok $? "the fallback: a namespace, the service account and its Role"
KC=$work/fb.kubeconfig BACKEND=kubernetes
ct k-create "tls.crt=cert-1
tls.key=$key
ca.crt=ca-1
ca.key=cakey-$canary
" -- --kube-namespace "$fb" create webhook-tls
rv1=$(sed -n 's/^created version //p' "$work/k-create.out")
[ $rc -eq 0 ] && [ -n "$rv1" ] && grep -q 'security model is weakened' "$work/k-create.err"
ok $? "kubernetes backend: create webhook-tls (rv $rv1), the warning logged" || show k-create
ctbg k-race-a "token=$a" -- --kube-namespace "$fb" create broker-token
pa=$bgpid
ctbg k-race-b "token=$b" -- --kube-namespace "$fb" create broker-token
pb=$bgpid
wwait "$pa" 60
ra=$rc
wwait "$pb" 60
rb=$rc
if [ $ra -eq 0 ]; then win=$a lose=k-race-b; else win=$b lose=k-race-a; fi
{ { [ $ra -eq 0 ] && [ $rb -eq 3 ]; } || { [ $ra -eq 3 ] && [ $rb -eq 0 ]; }; } &&
    grep -qx "field token sha256=$(sha "$win") len=${#win}" "$work/$lose.out"
ok $? "two concurrent creates: exactly one wins, the loser reads its value ($ra, $rb)" || { show k-race-a; show k-race-b; }
ct k-stale "tls.crt=x
" -- --kube-namespace "$fb" update webhook-tls "$rv1"
[ $rc -eq 4 ] && grep -qx stale "$work/k-stale.out"
ok $? "an update at the resourceVersion before the race: -ESTALE" || show k-stale
ct k-read "" -- --kube-namespace "$fb" read webhook-tls
rv=$(sed -n 's/^version //p' "$work/k-read.out")
ct k-update "tls.crt=cert-2
tls.key=$key
" -- --kube-namespace "$fb" update webhook-tls "$rv"
[ $rc -eq 0 ] && grep -q '^updated version ' "$work/k-update.out"
ok $? "an update at the current resourceVersion" || show k-update
ct k-event "" -- --kube-namespace "$fb" event Pod cloudtaser-operator-0
[ $rc -eq 0 ] && [ "$(kubectl -n "$fb" get events --field-selector reason=WeakenedSecurityModel -o jsonpath='{range .items[*]}{.type}/{.involvedObject.kind}/{.involvedObject.name}{"\n"}{end}')" = "Warning/Pod/cloudtaser-operator-0" ]
ok $? "the WeakenedSecurityModel Event (Warning, about the pod)" || show k-event
[ "$(kubectl -n "$fb" get secrets -o name)" = "secret/cloudtaser-operator-certs" ] &&
    [ "$(kubectl get secrets -A -l app.kubernetes.io/managed-by=cloudtaser-operator -o name)" = "secret/cloudtaser-operator-certs" ] &&
    [ "$(kubectl -n "$fb" get secret cloudtaser-operator-certs -o json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["data"])))')" = "broker-token.token webhook-tls.tls.crt webhook-tls.tls.key" ]
ok $? "exactly one Secret, with the keys <record>.<field>"
[ "$(kubectl -n "$fb" get secret cloudtaser-operator-certs -o jsonpath='{.data.webhook-tls\.tls\.key}' | base64 -d | sha256sum | cut -d' ' -f1)" = "$(sha "$key")" ]
ok $? "the values are the base64 of what was written"
unset KC BACKEND

! grep -rqF "$canary" "$work"/*.out "$work"/*.err "$BAO_DIR"/openbao/node*/server.log
ok $? "the canary never appears in any output or log"

tap_done
