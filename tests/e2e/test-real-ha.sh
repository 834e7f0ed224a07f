#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: cloudtaser-wrapper against a three-node OpenBao raft cluster,
# pointed at a standby node. Musl and ASan builds.
#   - a standby that forwards: login and reads through it work;
#   - a standby that cannot forward (the active node advertises a cluster address where nothing
#     listens) answers 307 to the active node: the wrapper follows it when the active node is one
#     of CLOUDTASER_VAULT_PEER_ADDRESSES, and refuses to (69, said so) when it is not;
#   - a sealed standby and a restarted node: the wrapper retries and ends in the right exit code.
# 412 (Vault Enterprise performance standbys only) and the 403 of an OpenBao >= 2.5 standby
# serving reads before a fresh token reached it cannot be produced by OpenBao 2.4: those are
# tested against the stand-in (tests/e2e/test-wrapper-ha.sh).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

# The cluster whose active node cannot be forwarded to.
CT_BAO_UNREACHABLE_CLUSTER_ADDR=1 real_setup --own-bao 3
unset CT_BAO_UNREACHABLE_CLUSTER_ADDR
read -r -a addrs <<< "$BAO_ADDRS"
standby=${addrs[1]}
[ "$(curl -s --cacert "$BAO_CACERT" -o /dev/null -w '%{http_code}' "$standby/v1/sys/health")" = 429 ]
ok $? "node 2 ($standby) is a standby"

val="ha-$(rand_hex 12)"
bao kv put -mount=secret app/db password="$val" > /dev/null &&
    bao_policy read 'path "secret/data/app/*" { capabilities = ["read"] }' &&
    tok=$(bao token create -policy=read -ttl=10m -field=token)
ok $? "secret, policy and a token on the active node"

code=$(curl -s --cacert "$BAO_CACERT" -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $tok" "$standby/v1/secret/data/app/db")
[ "$code" = 307 ]
ok $? "the standby answers 307 (it cannot forward to the active node)" || diag "got $code"

peers=$(tr ' ' , <<< "$BAO_ADDRS")
for f in $(wl_flavours); do
    wl_use "$f" || continue
    wrun "$f-307" "VAULT_ADDR=$standby" "CLOUDTASER_VAULT_PEER_ADDRESSES=$peers" VAULT_AUTH_METHOD=token "VAULT_TOKEN=$tok" \
        CLOUDTASER_SECRET_PATHS=secret/data/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD -- "$WL" env-hash PGPASSWORD
    [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$val") len=${#val}" "$work/$f-307.out"
    ok $? "$f: through a standby that answers 307, the wrapper follows to the active node (a peer address)" || show "$f-307"
    wrun "$f-307-nopeer" "VAULT_ADDR=$standby" VAULT_AUTH_METHOD=token "VAULT_TOKEN=$tok" \
        CLOUDTASER_SECRET_PATHS=secret/data/app/db -- "$WL" say started
    [ $rc -eq 69 ] && ! grep -q started "$work/$f-307-nopeer.out" && grep -q 'not followed' "$work/$f-307-nopeer.err" &&
        ! grep -qi 'TLS' "$work/$f-307-nopeer.err"
    ok $? "$f: a 307 to an address that is not the vault's: not followed, exit 69, said so (not a TLS error)" || show "$f-307-nopeer"
    ! grep -qF "$val" "$work/$f-307.err" && ! grep -qF "$tok" "$work/$f-307.err"
    ok $? "$f: neither the value nor the token in the log"
done

"$top/tests/cluster/openbao.sh" stop "$BAO_DIR" > /dev/null 2>&1

# A cluster that forwards: the standby serves the wrapper without a redirect.
"$top/tests/cluster/openbao.sh" start "$work/bao2" 3 > "$work/bao2.log" 2>&1 ||
    { echo "Bail out! the second OpenBao cluster did not start"; exit 1; }
_real_own+=("bao:$work/bao2")
. "$work/bao2/bao-env"
read -r -a addrs <<< "$BAO_ADDRS"
standby=${addrs[2]}
cp "$BAO_CACERT" "$work/ca.pem"
bao kv put -mount=secret app/db password="$val" > /dev/null &&
    bao_policy read 'path "secret/data/app/*" { capabilities = ["read"] }' &&
    tok=$(bao token create -policy=read -ttl=10m -field=token)
ok $? "a second cluster, whose standbys forward"
for f in $(wl_flavours); do
    wl_use "$f" || continue
    wrun "$f-fwd" "VAULT_ADDR=$standby" VAULT_AUTH_METHOD=token "VAULT_TOKEN=$tok" \
        CLOUDTASER_SECRET_PATHS=secret/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD -- "$WL" env-hash PGPASSWORD
    [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$val") len=${#val}" "$work/$f-fwd.out"
    ok $? "$f: through a forwarding standby (mount lookup and read)" || show "$f-fwd"
done

# The active node restarts while a workload with rotation runs through a standby.
f=$(wl_flavours | awk '{print $1}')
if wl_use "$f"; then
    wstart "$f-restart" "VAULT_ADDR=$standby" VAULT_AUTH_METHOD=token "VAULT_TOKEN=$tok" \
        CLOUDTASER_SECRET_PATHS=secret/data/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s -- "$WL" env-hash PGPASSWORD sleep 60
    pid=$wpid
    wait_grep "$work/$f-restart.out" "sha256=$(sha "$val")" 20 "$pid"
    ok $? "$f: workload running through a standby" || show "$f-restart"
    "$top/tests/cluster/openbao.sh" restart-node "$work/bao2" 1 > "$work/restart.log" 2>&1
    ok $? "node 1 restarted and unsealed" || sed 's/^/# /' "$work/restart.log"
    new="ha2-$(rand_hex 12)"
    for i in $(seq 100); do
        for a in "${addrs[@]}"; do
            BAO_ADDR=$a "$BAO" kv put -mount=secret app/db password="$new" > /dev/null 2>&1 && break 2
        done
        sleep 0.2
    done
    wait_grep "$work/$f-restart.out" "sha256=$(sha "$new")" 40 "$pid"
    ok $? "$f: after the restart, a new version is delivered and the wrapper never exited" || show "$f-restart"
    kill -TERM "$pid" 2> /dev/null
    wwait "$pid" 10
fi

tap_done
