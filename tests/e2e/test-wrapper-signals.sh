#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: what the hostile review of cloudtaser-wrapper as PID 1 found (issue 11), musl and
# ASan builds, against the stand-in vault:
#   - started with stdin and stderr closed, the workload gets /dev/null there (not the wrapper's
#     signalfd or libcurl's socketpair), and the wrapper's own log does not go into a socket;
#   - a workload that drops to another uid (as gosu/su-exec entrypoints do) still gets the
#     forwarded signals: the supervisor keeps CAP_KILL when the workload could change its uid;
#   - a SIGTERM during the start-up fetch ends the wrapper at once (143, well within 3 s) even
#     while the vault holds the request without answering; a SIGUSR1 pending beside a SIGTERM
#     does not hide it (the workload never starts);
#   - with rotation on and a vault that takes 6 s per answer, SIGTERM still reaches the workload
#     at once: checks of three paths run on the agent's thread, never on the supervisor's loop;
#   - rotation=restart stops the old workload's whole process group: a child of a `sh -c`
#     entrypoint that ignores SIGTERM gets it, is SIGKILLed after the grace period, and the new
#     workload starts only once it is gone;
# Faults are global to the stand-in: the runs go one after the other.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup
P=CLOUDTASER_SECRET_PATHS=secret/app/db
for p in db a b; do
    plant secret/app/$p '{"password":"pw-'"$(rand_hex 8)"'"}' || { echo "Bail out! cannot plant"; exit 1; }
done

ms() { echo $(($(date +%s%N) / 1000000)); }
# fault_hit: waits (up to 20 s) until the stand-in has applied a fault at least once
fault_hit() {
    local i
    for ((i = 0; i < 400; i++)); do
        standin_control GET /_standin/fault | grep -q '"hits": [1-9]' && return 0
        sleep 0.05
    done
    return 1
}

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- descriptors 0-2 closed at start
    name=$f-stdio
    _wl_extra=()
    _wl_cmd $P
    timeout -k 5 30 env -i "${_wl_env[@]}" "$W" -- "$WL" stdio fds > "$work/$name.out" 2>&- <&-
    rc=$?
    [ $rc -eq 0 ] && grep -qx 'stdio 0=/dev/null 1=[^ ]* 2=/dev/null' "$work/$name.out" &&
        grep -qx 'fds 0 1 2' "$work/$name.out"
    ok $? "$f: started with stdin and stderr closed, the workload gets /dev/null on 0 and 2" || show $name

    # --- a workload that drops to another uid still receives the forwarded SIGTERM
    if [ "$(id -u)" = 0 ]; then
        name=$f-otheruid
        wstart $name $P -- "$WL" become 65534 signals 30
        if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
            kill -USR1 "$wpid"
            wait_grep "$work/$name.out" '^signal USR1$' 5 "$wpid"
            ok $? "$f: a workload under another uid receives a forwarded SIGUSR1" || show $name
            kill -TERM "$wpid"
            wait_grep "$work/$name.out" '^signal TERM$' 5 "$wpid"
            ok $? "$f: and the forwarded SIGTERM (within 5 s)" || show $name
            wwait "$wpid" 10
            [ $rc -eq 143 ] && grep -qx 'uid 65534' "$work/$name.out" &&
                grep 'protection:' "$work/$name.err" | grep -q 'capabilities=[^ ]*CAP_KILL'
            ok $? "$f: the wrapper exits 143; its protection line lists CAP_KILL" || show $name
        else
            ok 1 "$f: the workload started (other uid)" || show $name
        fi
    else
        skip "$f: a workload under another uid: needs root"
    fi

    # --- SIGTERM while the start-up request hangs
    standin_control DELETE /_standin/fault > /dev/null
    standin_control POST /_standin/fault '{"match":"/v1/","kind":"delay","delay_ms":60000,"count":1000}' > /dev/null
    name=$f-hang
    wstart $name $P -- "$WL" touch "$work/started-$name"
    if fault_hit; then
        t0=$(ms)
        kill -TERM "$wpid"
        wwait "$wpid" 20
        took=$(($(ms) - t0))
        [ $rc -eq 143 ] && [ $took -lt 3000 ] && [ ! -e "$work/started-$name" ]
        ok $? "$f: SIGTERM while vault holds the start-up request: exit 143 in ${took} ms, nothing started" || show $name
    else
        ok 1 "$f: the stand-in held the start-up request" || show $name
    fi
    standin_control DELETE /_standin/fault > /dev/null

    # --- SIGUSR1 and SIGTERM pending together during the fetch
    standin_control POST /_standin/fault '{"match":"/v1/","kind":"delay","delay_ms":1500,"count":2}' > /dev/null
    name=$f-pending
    wstart $name $P -- "$WL" touch "$work/started-$name"
    if fault_hit; then
        kill -USR1 "$wpid"
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ] && [ ! -e "$work/started-$name" ]
        ok $? "$f: SIGUSR1 and SIGTERM pending during the fetch: exit 143, the workload never starts" || show $name
    else
        ok 1 "$f: the stand-in delayed the start-up request" || show $name
    fi
    standin_control DELETE /_standin/fault > /dev/null

    # --- SIGTERM while rotation checks wait on a slow vault
    name=$f-slowcheck
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/db,secret/app/a,secret/app/b "CLOUDTASER_ENV_MAP=password=PW_DB;password=PW_A;password=PW_B" \
        CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s -- "$WL" signals 60
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        standin_control POST /_standin/fault '{"regex":"/v1/secret/(metadata|data)/","kind":"delay","delay_ms":6000,"count":1000}' > /dev/null
        if fault_hit; then
            t0=$(ms)
            kill -TERM "$wpid"
            wait_grep "$work/$name.out" '^signal TERM$' 10 "$wpid"
            took=$(($(ms) - t0))
            wwait "$wpid" 20
            [ $rc -eq 143 ] && [ $took -lt 2000 ]
            ok $? "$f: a rotation check waiting on a slow vault does not hold SIGTERM (${took} ms)" || show $name
        else
            ok 1 "$f: a rotation check reached the slow vault" || show $name
        fi
    else
        ok 1 "$f: the workload started (slow check)" || show $name
    fi
    standin_control DELETE /_standin/fault > /dev/null

    # --- a restart stops the old process tree, not only the workload
    name=$f-tree
    plant secret/app/tree-$f '{"password":"one"}'
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/tree-$f CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_ROTATION_GRACE=2s -- \
        /bin/sh -c '"$0" --ignore-term signals 120 >> "$1" & echo "tree $!"; exec "$0" print-pid signals 60' \
        "$WL" "$work/$name.tree"
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid" && wait_grep "$work/$name.tree" '^ready$' 10; then
        tree=$(sed -n 's/^tree //p' "$work/$name.out" | head -1)
        plant secret/app/tree-$f '{"password":"two"}'
        wait_grep "$work/$name.tree" '^signal TERM$' 10 "$wpid"
        ok $? "$f: restart: the old workload's child (same process group) gets SIGTERM too" || show $name
        # the second run's "pid" line: at that moment the old tree must be gone
        for ((i = 0; i < 300; i++)); do
            [ "$(grep -c '^pid ' "$work/$name.out")" -ge 2 ] && break
            sleep 0.05
        done
        alive_at_start=no
        [ -e "/proc/$tree" ] && [ "$(awk '{print $3}' "/proc/$tree/stat" 2>/dev/null)" != Z ] && alive_at_start=yes
        [ "$(grep -c '^pid ' "$work/$name.out")" -ge 2 ] && [ $alive_at_start = no ]
        ok $? "$f: restart: the new workload starts only once the old tree is gone (SIGKILL after the grace)" ||
            { show $name; diag "old child $tree alive at the new start: $alive_at_start"; }
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ]
        ok $? "$f: restart: SIGTERM ends it with 143" || show $name
    else
        ok 1 "$f: the workload started (process tree)" || show $name
    fi
done
tap_done
