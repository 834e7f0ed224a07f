#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper's PID 1 duties, musl and ASan builds, against the stand-in vault.
#   - every forwarded signal sent to the wrapper reaches the workload ("signal NAME" lines);
#     SIGTERM to the wrapper -> the workload dies by SIGTERM -> the wrapper exits 143; a workload
#     that ignores SIGTERM keeps the wrapper running until it exits by itself;
#   - orphans re-parented to the wrapper (a subreaper when it is not PID 1) are reaped: no zombie
#     is left and the orphans' pids are gone while the wrapper still runs;
#   - the same as a real PID 1 in a new PID namespace (unshare, when it works here): signals from
#     the parent namespace, orphans, exit code pass-through.
# Synchronous and terminal-control signals (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS, TTIN, TTOU)
# are not sent: PID-1 programs (tini, catatonit) do not forward them either.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup
P=CLOUDTASER_SECRET_PATHS=secret/app/db
FORWARDED="HUP INT QUIT USR1 USR2 WINCH CONT ALRM PIPE URG PWR XCPU XFSZ VTALRM PROF IO TSTP"

# ppid_of PID: the parent of PID from /proc (empty when gone).
ppid_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    set -- $stat
    echo "$2"
}
state_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    echo "${stat%% *}"
}

# send_all PID NAME: sends every forwarded signal to PID, one at a time, each time waiting for the
# workload's "signal X" line in $work/NAME.out. Prints the names that never arrived.
send_all() {
    local pid=$1 name=$2 s lost=""
    for s in $FORWARDED; do
        kill -s "$s" "$pid" 2>/dev/null || { lost+=" $s(kill failed)"; continue; }
        wait_grep "$work/$name.out" "^signal $s\$" 30 "$pid" || lost+=" $s"
    done
    echo "$lost"
}

unshare_ok=0
if [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
    unshare_ok=1
fi

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- every forwarded signal, then SIGTERM
    name=$f-signals
    wstart $name $P -- "$WL" signals 40
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        lost=$(send_all "$wpid" $name)
        [ -z "$lost" ]
        ok $? "$f: every forwarded signal sent to the wrapper reaches the workload" || diag "lost:$lost"
        kill -0 "$wpid" 2>/dev/null
        ok $? "$f: the wrapper survives them all (SIGTSTP, SIGINT, SIGQUIT... only forwarded)"
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ] && grep -qx "signal TERM" "$work/$name.out"
        ok $? "$f: SIGTERM to the wrapper: the workload gets it and dies, the wrapper exits 143" || show $name
    else
        ok 1 "$f: the workload started (signals)" || show $name
    fi
    ! grep -Eq 'signal (TTIN|TTOU|CHLD)' "$work/$name.out"
    ok $? "$f: the workload got nothing it was not sent"

    # --- the workload ignores SIGTERM: the wrapper keeps running until the workload exits
    name=$f-ignoreterm
    wstart $name $P -- "$WL" --ignore-term signals 4 say bye exit 5
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        kill -TERM "$wpid"
        wait_grep "$work/$name.out" '^signal TERM$' 30 "$wpid"
        sleep 0.5
        kill -0 "$wpid" 2>/dev/null
        ok $? "$f: after forwarding SIGTERM to a workload that ignores it, the wrapper still runs"
        wwait "$wpid" 20
        [ $rc -eq 5 ] && grep -qx bye "$work/$name.out"
        ok $? "$f: and exits with the workload's own code later (5)" || show $name
    else
        ok 1 "$f: the workload started (ignore-term)" || show $name
    fi

    # --- orphans: re-parented to the wrapper (subreaper) and reaped while it runs
    name=$f-orphans
    wstart $name $P -- "$WL" orphans 3 print-pid wait-file "$work/go-$name" zombies
    if wait_grep "$work/$name.out" '^pid ' 30 "$wpid"; then
        orphans=$(sed -n 's/^orphan //p' "$work/$name.out")
        seen=0 wrong=""
        for o in $orphans; do
            pp=$(ppid_of "$o") || continue
            seen=$((seen + 1))
            [ "$pp" = "$wpid" ] || wrong+=" $o(ppid $pp)"
        done
        [ -z "$wrong" ] && [ -n "$orphans" ]
        ok $? "$f: the orphans were re-parented to the wrapper (checked $seen of 3 alive)" || diag "wrong:$wrong"
        gone=0
        for ((i = 0; i < 600; i++)); do
            left=""
            for o in $orphans; do [ -e "/proc/$o" ] && left+=" $o($(state_of "$o"))"; done
            [ -z "$left" ] && { gone=1; break; }
            sleep 0.05
        done
        [ $gone = 1 ] && kill -0 "$wpid" 2>/dev/null
        ok $? "$f: the orphans exited and were reaped while the wrapper runs (no zombie left)" || diag "left:$left"
        touch "$work/go-$name"
        wwait "$wpid" 20
        [ $rc -eq 0 ] && grep -qx "zombies 0" "$work/$name.out"
        ok $? "$f: the workload saw no unreaped sibling; the wrapper exits 0" || show $name
    else
        ok 1 "$f: the workload started (orphans)" || show $name
    fi

    # --- a real PID 1 in a new PID namespace
    if [ $unshare_ok = 0 ]; then
        skip "$f: PID 1 in a new PID namespace: unshare --pid --fork --mount-proc does not work here"
        continue
    fi
    WL_PREFIX=(/usr/bin/unshare --pid --fork --mount-proc)
    name=$f-ns-exit
    wrun $name $P -- "$WL" print-pid orphans 3 sleep 1.5 zombies exit 7
    [ $rc -eq 7 ] && grep -qx "pid [0-9]* ppid 1" "$work/$name.out" && grep -qx "zombies 0" "$work/$name.out" &&
        [ "$(grep -c '^orphan ' "$work/$name.out")" = 3 ]
    ok $? "$f: as PID 1: the workload's parent is PID 1, orphans reaped, exit code 7 passed through" || show $name

    name=$f-ns-signals
    wstart $name $P -- "$WL" signals 40
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        # $wpid is unshare; the wrapper (PID 1 inside) is its only child.
        w1=$(cat "/proc/$wpid/task/$wpid/children" 2>/dev/null | tr -d ' ')
        lost=$(send_all "$w1" $name)
        [ -n "$w1" ] && [ -z "$lost" ]
        ok $? "$f: as PID 1: every forwarded signal from the parent namespace reaches the workload" || diag "lost:$lost"
        kill -TERM "$w1"
        wwait "$wpid" 20
        [ $rc -eq 143 ] && grep -qx "signal TERM" "$work/$name.out"
        ok $? "$f: as PID 1: SIGTERM -> the workload dies by it -> exit 143" || show $name
    else
        ok 1 "$f: as PID 1: the workload started" || show $name
    fi
    WL_PREFIX=()
done
tap_done
