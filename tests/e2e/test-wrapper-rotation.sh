#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: rotation cases from the hostile review of cloudtaser-wrapper (issue 11), musl and
# ASan builds, against the stand-in vault:
#   - a revoked token: the next rotation check gets 403, logs in again at once and delivers the
#     change (it waited for the renewal timer, an hour here, before);
#   - a field deleted from a secret whose fields are all exported (KV v1 and KV v2) is rotated
#     out: the restarted workload no longer has the variable;
#   - a value over the kernel's 128 KiB limit for one environment string: with env delivery the
#     wrapper exits 65 naming the field and suggesting memfd delivery (not 126 from a failed
#     execve); memfd delivery takes it; arriving by a restart rotation, it stops nothing: the old
#     workload keeps running and the cause is logged;
#   - signal rotation through the memfd: a reader following the header's seqlock protocol, in a
#     tight loop over four rotations of 50-80 KB values, only ever sees whole planted values;
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup

# revoke_role ROLE: revokes every token issued to ROLE (through the root token)
revoke_role() {
    local acc
    for acc in $(standin_control GET /_standin/tokens | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tokens"]:
    if (t.get("meta") or {}).get("role") == sys.argv[1]:
        print(t["accessor"])' "$1"); do
        curl -sS --fail --cacert "$STANDIN_CA" -H "X-Vault-Token: $STANDIN_ROOT_TOKEN" -X POST \
            --data "{\"accessor\":\"$acc\"}" "$STANDIN_ADDR/v1/auth/token/revoke-accessor" > /dev/null || return 1
    done
}

# plant_big PATH FIELD BYTES [CHAR]: a secret with one value of BYTES times CHAR (x) (through a
# file: one argument of that size is over the same kernel limit for curl)
plant_big() {
    /usr/bin/python3 -c 'import json, sys; print(json.dumps({"path": sys.argv[1], "data": {sys.argv[2]: sys.argv[4] * int(sys.argv[3])}}))' \
        "$1" "$2" "$3" "${4:-x}" > "$work/big.json"
    curl -sS --fail -X POST -H 'Content-Type: application/json' --data-binary "@$work/big.json" \
        "$STANDIN_CONTROL/_standin/secret" > /dev/null
}

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- a revoked token: log in again at the first refused check
    name=$f-revoked
    v2="after-revoke-$(rand_hex 8)"
    plant secret/app/rev-$f '{"password":"before"}'
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/rev-$f CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_DELIVERY=memfd CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s -- \
        "$WL" memfd-on-signal PGPASSWORD signals 60
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        revoke_role demo
        ok $? "$f: revoked the wrapper's token"
        plant secret/app/rev-$f "{\"password\":\"$v2\"}"
        wait_grep "$work/$name.out" "^memfd PGPASSWORD sha256=$(sha "$v2") len=${#v2}\$" 10 "$wpid"
        ok $? "$f: after a revoked token, the next check logs in again and delivers the change" || show $name
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ]
        ok $? "$f: SIGTERM ends it with 143" || show $name
    else
        ok 1 "$f: the workload started (revoked token)" || show $name
    fi

    # --- a deleted field is rotated out (every field exported: no CLOUDTASER_ENV_MAP)
    for mount in kv secret; do
        name=$f-removed-$mount
        plant $mount/app/multi-$f '{"keep":"k","gone":"g"}'
        wstart $name CLOUDTASER_SECRET_PATHS=$mount/app/multi-$f CLOUDTASER_ROTATION=restart \
            CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_ROTATION_GRACE=2s -- "$WL" env-keys signals 60
        if wait_grep "$work/$name.out" '^ready$' 30 "$wpid" && grep -q '^env-keys.* GONE' "$work/$name.out"; then
            plant $mount/app/multi-$f '{"keep":"k"}'
            for ((i = 0; i < 200; i++)); do
                [ "$(grep -c '^env-keys' "$work/$name.out")" -ge 2 ] && break
                sleep 0.05
            done
            last=$(grep '^env-keys' "$work/$name.out" | tail -1)
            [ "$(grep -c '^env-keys' "$work/$name.out")" -ge 2 ] && [[ $last != *GONE* ]] && [[ $last == *KEEP* ]]
            ok $? "$f: $mount: a field deleted from the secret is rotated out (restart without GONE)" || show $name
            kill -TERM "$wpid"
            wwait "$wpid" 20
        else
            ok 1 "$f: $mount: the workload started with both fields" || show $name
        fi
    done

    # --- a value over 128 KiB with env delivery
    plant_big secret/app/big-$f blob 140000
    name=$f-big-env
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/big-$f CLOUDTASER_ENV_MAP=blob=BLOB -- "$WL" touch "$work/ran-$name"
    [ $rc -eq 65 ] && grep -q "field 'blob' of secret/app/big-$f is 140000 bytes.*CLOUDTASER_DELIVERY=memfd" "$work/$name.err" &&
        [ ! -e "$work/ran-$name" ]
    ok $? "$f: a 140000-byte value with env delivery: exit 65 naming the field and memfd delivery" || show $name
    name=$f-big-memfd
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/big-$f CLOUDTASER_ENV_MAP=blob=BLOB CLOUDTASER_DELIVERY=memfd -- \
        "$WL" memfd-hash BLOB
    [ $rc -eq 0 ] && grep -q '^memfd BLOB sha256=.* len=140000$' "$work/$name.out"
    ok $? "$f: the same value with memfd delivery reaches the workload" || show $name

    # --- the same value arriving by a restart rotation stops nothing
    name=$f-big-restart
    plant secret/app/bigrot-$f '{"blob":"small"}'
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/bigrot-$f CLOUDTASER_ENV_MAP=blob=BLOB CLOUDTASER_ROTATION=restart \
        CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_ROTATION_GRACE=2s -- "$WL" signals 60
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        plant_big secret/app/bigrot-$f blob 140000
        wait_grep "$work/$name.err" "field 'blob' of secret/app/bigrot-$f is 140000 bytes" 10 "$wpid"
        logged=$?
        sleep 2
        [ $logged -eq 0 ] && kill -0 "$wpid" 2>/dev/null && ! grep -q '^signal TERM' "$work/$name.out" &&
            [ "$(grep -c '^ready$' "$work/$name.out")" = 1 ]
        ok $? "$f: an oversized value by rotation: logged, the old workload keeps running, nothing stopped" || show $name
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ]
        ok $? "$f: SIGTERM ends it with 143" || show $name
    else
        ok 1 "$f: the workload started (oversized rotation)" || show $name
    fi

    # --- memfd rotation: consistent snapshots only
    name=$f-torn
    hashes=()
    plant_big secret/app/torn-$f blob 50000 a
    hashes+=("$(head -c 50000 /dev/zero | tr '\0' a | sha256sum | cut -d' ' -f1) len=50000")
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/torn-$f CLOUDTASER_ENV_MAP=blob=BLOB CLOUDTASER_DELIVERY=memfd \
        CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s -- "$WL" say watching memfd-watch 9 BLOB
    if wait_grep "$work/$name.out" '^memfd-seen' 30 "$wpid"; then
        for spec in 80000:b 60000:c 70000:d; do
            n=${spec%%:*} c=${spec#*:}
            plant_big secret/app/torn-$f blob "$n" "$c"
            hashes+=("$(head -c "$n" /dev/zero | tr '\0' "$c" | sha256sum | cut -d' ' -f1) len=$n")
            wait_grep "$work/$name.out" "^memfd-seen BLOB sha256=${hashes[-1]}\$" 8 "$wpid"
        done
        wwait "$wpid" 20
        bad=0
        while read -r _ _ h l; do
            seen=${h#sha256=}" $l" hit=0
            for x in "${hashes[@]}"; do [ "$seen" = "$x" ] && hit=1; done
            [ $hit = 1 ] || { bad=$((bad + 1)); diag "not a planted value: $seen"; }
        done < <(grep '^memfd-seen' "$work/$name.out")
        [ $rc -eq 0 ] && [ $bad = 0 ] && [ "$(grep -c '^memfd-seen' "$work/$name.out")" = 4 ]
        ok $? "$f: memfd rotation: four values, each seen whole, never a torn one ($(grep '^memfd-watch' "$work/$name.out"))" || show $name
    else
        ok 1 "$f: the workload started (memfd watch)" || show $name
    fi
done
tap_done
