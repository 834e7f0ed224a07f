#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: what the hostile review of cloudtaser-wrapper as PID 1 found (issue 11), musl and
# ASan builds, against the stand-in vault:
#   - started with stdin and stderr closed, the workload gets /dev/null there (not the wrapper's
#     signalfd or libcurl's socketpair), and the wrapper's own log does not go into a socket;
#   - a workload that drops to another uid (as gosu/su-exec entrypoints do) still gets the
#     forwarded signals: the supervisor keeps CAP_KILL when the workload could change its uid;
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup
P=CLOUDTASER_SECRET_PATHS=secret/app/db
plant secret/app/db '{"password":"pw-'"$(rand_hex 8)"'"}' || { echo "Bail out! cannot plant"; exit 1; }

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
done
tap_done
