#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper against a misbehaving, changing vault (the stand-in over TLS,
# tests/standin/demo.json), musl and ASan builds.
#   - retries: a vault failing its first requests (503 x3, dropped connections, a reset, sealed
#     answers, 429 with Retry-After, sealed for 2 s) is survived and the workload then starts;
#   - rotation=restart (interval 1s, the minimum): exactly one restart per change, the second run
#     sees the new value; no restart while nothing changed; no restart (and no log flood) while
#     the vault is sealed: the wrapper keeps running on the old values and says so;
#   - rotation=signal:USR1 with memfd delivery: the workload gets SIGUSR1 once per change and its
#     memfd (read again with fstat + mmap) holds the new value; no restart.
# Faults and the seal are global to the stand-in, so retries run one build after the other, while
# the rotation runs of both builds go side by side, each on its own secret path.
# Token renewal and locked memory: test-wrapper-renewal.sh.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup
val1="first-$(rand_hex 8)"
plant secret/app/db "{\"password\":\"$val1\"}" || { echo "Bail out! cannot plant"; exit 1; }
P=CLOUDTASER_SECRET_PATHS=secret/app/db
M=CLOUDTASER_ENV_MAP=password=PGPASSWORD
planted=("$val1")

nlines() { local n; n=$(grep -c -- "${2:-.}" "$1" 2>/dev/null); echo "${n:-0}"; }
flavours=()
for f in $(wl_flavours); do
    wl_use "$f" && flavours+=("$f")
done

# --- retries at startup, one build at a time
for f in "${flavours[@]}"; do
    W=$top/build/$f/bin/cloudtaser-wrapper
    for fault in '{"match":"/v1/","kind":"status","status":503,"count":3}:three 503 answers' \
        '{"match":"/v1/","kind":"drop","count":2}:two dropped connections' \
        '{"match":"/v1/","kind":"reset","count":1}:a connection reset' \
        '{"match":"/v1/","kind":"sealed","count":2}:two sealed answers' \
        '{"match":"/v1/","kind":"status","status":429,"retry_after":"1","count":1}:a 429 with Retry-After 1'; do
        json=${fault%%\}:*}\} what=${fault#*\}:}
        standin_control DELETE /_standin/fault > /dev/null
        standin_control POST /_standin/fault "$json" > /dev/null
        name=$f-retry-$(echo "$what" | tr -c 'a-zA-Z0-9\n' - | cut -c1-20)
        start=$(date +%s%N)
        wrun $name $P "$M" CLOUDTASER_STARTUP_TIMEOUT=20s -- "$WL" env-hash PGPASSWORD
        elapsed=$((($(date +%s%N) - start) / 1000000))
        left=$(standin_control GET /_standin/fault)
        [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$val1") len=${#val1}" "$work/$name.out" &&
            grep -q '"faults": \[\]' <<< "$left"
        ok $? "$f: retried through $what; the workload started with its secret (${elapsed} ms)" ||
            { show $name; diag "faults left: $left"; }
        if [[ $what == *Retry-After* ]]; then
            [ $elapsed -ge 950 ]
            ok $? "$f: the Retry-After of 1s was honoured (${elapsed} ms)"
        fi
    done
    standin_control DELETE /_standin/fault > /dev/null
    # sealed at start, unsealed 2 s later: the wrapper waits and then starts the workload
    standin_control POST /_standin/seal > /dev/null
    name=$f-retry-unseal
    wstart $name $P "$M" CLOUDTASER_STARTUP_TIMEOUT=20s -- "$WL" env-hash PGPASSWORD
    sleep 2
    sealed_started=$(nlines "$work/$name.out")
    standin_control POST /_standin/unseal > /dev/null
    wwait "$wpid" 30
    [ "$sealed_started" = 0 ] && [ $rc -eq 0 ] && grep -q "env PGPASSWORD sha256=$(sha "$val1")" "$work/$name.out"
    ok $? "$f: a vault sealed at start and unsealed 2 s later: the workload starts only then" || show $name
done

# running NAME PID: the wrapper is still running (a diagnostic otherwise)
running() {
    kill -0 "$2" 2>/dev/null && return 0
    diag "$1: the wrapper exited"
    return 1
}
# wait_count FILE REGEX N SECONDS: until at least N lines match
wait_count() {
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        [ "$(nlines "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.05
    done
    return 1
}

# --- rotation=restart, every build side by side, each on secret/app/rot-<build>
declare -A pid_of new_of
for f in "${flavours[@]}"; do
    W=$top/build/$f/bin/cloudtaser-wrapper
    plant secret/app/rot-$f "{\"password\":\"$val1\"}"
    wstart $f-restart CLOUDTASER_SECRET_PATHS=secret/app/rot-$f "$M" CLOUDTASER_ROTATION=restart \
        CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_ROTATION_GRACE=2s -- "$WL" print-pid env-hash PGPASSWORD signals 60
    pid_of[$f]=$wpid
done
started=()
for f in "${flavours[@]}"; do
    if wait_grep "$work/$f-restart.out" '^ready$' 30 "${pid_of[$f]}" && running $f "${pid_of[$f]}"; then
        started+=("$f")
    else
        ok 1 "$f: restart: the workload started" || show $f-restart
    fi
done
sleep 2.5
for f in "${started[@]}"; do
    [ "$(nlines "$work/$f-restart.out" '^ready$')" = 1 ]
    ok $? "$f: restart: no restart while nothing changed (2.5 s at a 1 s interval)" || show $f-restart
    new_of[$f]="second-$(rand_hex 8)"
    planted+=("${new_of[$f]}")
    plant secret/app/rot-$f "{\"password\":\"${new_of[$f]}\"}"
done
for f in "${started[@]}"; do
    wait_count "$work/$f-restart.out" '^ready$' 2 60
done
sleep 2.5
for f in "${started[@]}"; do
    name=$f-restart
    [ "$(nlines "$work/$name.out" '^ready$')" = 2 ] && [ "$(nlines "$work/$name.out" '^pid ')" = 2 ]
    ok $? "$f: restart: one change, exactly one restart (two runs in all)" || show $name
    grep -q '^signal TERM$' "$work/$name.out"
    ok $? "$f: restart: the old workload was stopped with SIGTERM"
    last_hash=$(grep '^env PGPASSWORD' "$work/$name.out" | tail -1)
    v=${new_of[$f]}
    [ "$last_hash" = "env PGPASSWORD sha256=$(sha "$v") len=${#v}" ]
    ok $? "$f: restart: the second run sees the new value" || diag "$last_hash"
done
# sealed: keep running on the old values, log it, never restart
declare -A errs_before
for f in "${started[@]}"; do errs_before[$f]=$(nlines "$work/$f-restart.err"); done
standin_control POST /_standin/seal > /dev/null
# Wait for each wrapper to notice (an event, however slow the machine), then give it 3 s of polls.
for f in "${started[@]}"; do
    for ((i = 0; i < 600; i++)); do
        tail -n +$((errs_before[$f] + 1)) "$work/$f-restart.err" | grep -qi 'seal' && break
        sleep 0.05
    done
done
sleep 3
for f in "${started[@]}"; do
    name=$f-restart
    [ "$(nlines "$work/$name.out" '^ready$')" = 2 ] && running $f "${pid_of[$f]}"
    ok $? "$f: restart: a sealed vault causes no restart; the wrapper keeps running" || show $name
    tail -n +$((errs_before[$f] + 1)) "$work/$name.err" | grep -qi 'seal'
    ok $? "$f: restart: and logs that the vault is sealed" || show $name
    logged=$(tail -n +$((errs_before[$f] + 1)) "$work/$name.err" | wc -l)
    [ "$logged" -le 2 ]
    ok $? "$f: restart: without flooding the log ($logged lines in 3 s of polls)" || show $name
done
standin_control POST /_standin/unseal > /dev/null
sleep 2
for f in "${started[@]}"; do
    name=$f-restart
    [ "$(nlines "$work/$name.out" '^ready$')" = 2 ]
    ok $? "$f: restart: no restart after the unseal either (nothing changed meanwhile)" || show $name
    kill -TERM "${pid_of[$f]}"
    wwait "${pid_of[$f]}" 20
    [ $rc -eq 143 ]
    ok $? "$f: restart: SIGTERM ends it with 143" || show $name
done

# --- rotation=signal:USR1 with memfd delivery, side by side on secret/app/sig-<build>
started=()
for f in "${flavours[@]}"; do
    W=$top/build/$f/bin/cloudtaser-wrapper
    plant secret/app/sig-$f "{\"password\":\"$val1\"}"
    wstart $f-sigrot CLOUDTASER_SECRET_PATHS=secret/app/sig-$f "$M" CLOUDTASER_DELIVERY=memfd \
        CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s \
        -- "$WL" memfd-on-signal PGPASSWORD memfd-hash PGPASSWORD signals 60
    pid_of[$f]=$wpid
done
for f in "${flavours[@]}"; do
    if wait_grep "$work/$f-sigrot.out" '^ready$' 30 "${pid_of[$f]}" && running $f "${pid_of[$f]}"; then
        started+=("$f")
    else
        ok 1 "$f: signal rotation: the workload started" || show $f-sigrot
    fi
done
sleep 2
for f in "${started[@]}"; do
    ! grep -q '^signal' "$work/$f-sigrot.out"
    ok $? "$f: signal rotation: no signal while nothing changed" || show $f-sigrot
    new_of[$f]="third-$(rand_hex 8)"
    planted+=("${new_of[$f]}")
    plant secret/app/sig-$f "{\"password\":\"${new_of[$f]}\"}"
done
for f in "${started[@]}"; do
    v=${new_of[$f]}
    wait_grep "$work/$f-sigrot.out" "^memfd PGPASSWORD sha256=$(sha "$v") len=${#v}\$" 60
done
sleep 2
for f in "${started[@]}"; do
    name=$f-sigrot v=${new_of[$f]}
    grep -qx "memfd PGPASSWORD sha256=$(sha "$v") len=${#v}" "$work/$name.out" && grep -qx 'signal USR1' "$work/$name.out"
    ok $? "$f: signal rotation: the workload gets SIGUSR1 and its memfd holds the new value" || show $name
    [ "$(nlines "$work/$name.out" '^signal USR1$')" = 1 ] && [ "$(nlines "$work/$name.out" '^ready$')" = 1 ]
    ok $? "$f: signal rotation: one signal for one change, never a restart" || show $name
    err_lines=$(nlines "$work/$name.err")
    [ "$err_lines" -le 6 ]
    ok $? "$f: signal rotation: a few log lines, no flood ($err_lines)" || show $name
    kill -TERM "${pid_of[$f]}"
    wwait "${pid_of[$f]}" 20
    [ $rc -eq 143 ]
    ok $? "$f: signal rotation: SIGTERM ends it with 143" || show $name
done

# the planted values never leave the workload
leaks=""
for v in "${planted[@]}"; do
    grep -rlaF -- "$v" "$work" "$STANDIN_AUDIT" && leaks+=" $v"
done > "$work/leaks.txt"
[ -z "$leaks" ]
ok $? "no planted value appears in any output, log, file or the audit log" || sed 's/^/# found in /' "$work/leaks.txt"
rm -f "$work/leaks.txt"
tap_done
