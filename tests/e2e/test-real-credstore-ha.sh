#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: the operator's vault session and credential store
# (tests/tools/ct-credstore) through a standby of a three-node OpenBao raft cluster whose active
# node cannot be forwarded to, logging in with a real service-account JWT:
#   - with the active node among the peer addresses, the standby's 307s are followed: the
#     Kubernetes login, the mount lookup, a create (cas=0) and a read all succeed;
#   - without them: not ready, each attempt's line says the redirect was not followed and names
#     --vault-peer-addresses.
# 412 and a fresh token's 403 cannot be produced by OpenBao 2.4: they are tested against the
# stand-in (tests/unit/test-operator-vaultsession.c).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

CT_BAO_UNREACHABLE_CLUSTER_ADDR=1 real_setup --cluster --own-bao 3
unset CT_BAO_UNREACHABLE_CLUSTER_ADDR
. "$top/tests/e2e/credstore-lib.sh"
read -r -a addrs <<< "$BAO_ADDRS"
standby=${addrs[1]}
[ "$(curl -s --cacert "$BAO_CACERT" -o /dev/null -w '%{http_code}' "$standby/v1/sys/health")" = 429 ]
ok $? "node 2 ($standby) is a standby"

ns=$T-op
real_ns "$ns" && kubectl -n "$ns" create serviceaccount cloudtaser-operator > /dev/null &&
    bao_policy cloudtaser-operator '
path "secret/data/cloudtaser/system/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/cloudtaser/system/*" { capabilities = ["read"] }' &&
    bao write auth/kubernetes/role/cloudtaser-operator bound_service_account_names=cloudtaser-operator \
        bound_service_account_namespaces="$ns" token_policies=cloudtaser-operator token_ttl=1h > /dev/null &&
    kube_token "$ns" cloudtaser-operator > "$work/op.jwt" && chmod 644 "$work/op.jwt"
ok $? "the operator's role and policy on the active node, a JWT from the API server"
printf '{"role":"cloudtaser-operator","jwt":"%s"}' "$(cat "$work/op.jwt")" > "$work/login.json"
code=$(curl -s --cacert "$BAO_CACERT" -o /dev/null -w '%{http_code}' -X POST -d @"$work/login.json" \
    "$standby/v1/auth/kubernetes/login")
[ "$code" = 307 ]
ok $? "the standby answers the login with 307 (it cannot forward)" || diag "got $code"

peers=$(tr ' ' , <<< "$BAO_ADDRS")
CTV=(--vault-addr "$standby" --vault-ca "$work/ca.pem" --jwt "$work/op.jwt")
val="ha-$(rand_hex 12)"
for f in musl asan; do
    CT=$top/build/$f/bin/ct-credstore
    ct "$f-create" "token=$val-$f" -- "${CTV[@]}" --vault-peers "$peers" --prefix "cloudtaser/system" create "broker-token-$f"
    [ $rc -eq 0 ] && grep -qx 'created version 1' "$work/$f-create.out"
    ok $? "$f: through the standby, with the peers: login, mount lookup and create follow the 307s" || show "$f-create"
    ct "$f-read" "" -- "${CTV[@]}" --vault-peers "$peers" read "broker-token-$f"
    [ $rc -eq 0 ] && grep -qx "field token sha256=$(sha "$val-$f") len=$((${#val} + ${#f} + 1))" "$work/$f-read.out"
    ok $? "$f: and the read" || show "$f-read"
    ct "$f-nopeer" "" -- "${CTV[@]}" --wait 4 ready
    [ $rc -eq 5 ] && attempts "$work/$f-nopeer.err" 'vault redirected elsewhere' &&
        grep -q 'not followed' "$work/$f-nopeer.err" && grep -q -- '--vault-peer-addresses' "$work/$f-nopeer.err"
    ok $? "$f: without the peers: not ready, each attempt says the redirect was not followed and names the fix" || show "$f-nopeer"
done
! grep -rqF "$val" "$work"/*.out "$work"/*.err
ok $? "no value in any output or log"

tap_done
