#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper against a misbehaving, changing vault (the stand-in over TLS,
# tests/e2e/wrapper-vault.json = demo.json plus short-TTL roles), musl and ASan builds.
#   - retries: a vault failing its first requests (503 x3, dropped connections, 429 with
#     Retry-After, sealed for a while) is survived and the workload then starts;
#   - rotation=restart: exactly one restart per change, the second run sees the new value; no
#     restart when nothing changed; no restart loop while the vault is sealed (keeps running, logs);
#   - rotation=signal:USR1 with memfd delivery: the workload gets SIGUSR1, its memfd the new value;
#   - token renewal: renew-self before expiry (token_ttl 6s over ~10s; a max_ttl-capped role needs a
#     fresh login), never a request refused for an expired token (from the stand-in's audit log);
#   - locked memory: VmLck of the wrapper is non-zero; with RLIMIT_MEMLOCK 0 as a non-root user the
#     fallback works and the protection line says so.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup "$top/tests/e2e/wrapper-vault.json"
P=CLOUDTASER_SECRET_PATHS=secret/app/db
M=CLOUDTASER_ENV_MAP=password=PGPASSWORD
val1="first-$(rand_hex 8)"
plant secret/app/db "{\"password\":\"$val1\"}" || { echo "Bail out! cannot plant"; exit 1; }

nlines() { local n; n=$(grep -c -- "${2:-.}" "$1" 2>/dev/null); echo "${n:-0}"; }

# audit_summary FROM_LINE: facts about the audit log after line FROM_LINE, one "key value" a line.
audit_summary() {
    /usr/bin/python3 - "$STANDIN_AUDIT" "$1" <<'PY'
import json, sys
from datetime import datetime
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
renew_ok = logins = denied = reads = 0
first_login = first_renew = None
def ts(s):
    return datetime.fromisoformat(s).timestamp()  # Python 3.11: "Z" and 1-6 fraction digits
for l in lines:
    e = json.loads(l)
    if e.get("type") != "response":
        continue
    path = e["request"]["path"]
    status = e["response"].get("status_code")
    t = ts(e["time"])
    if path.endswith("/login") and status == 200:
        logins += 1
        first_login = first_login or t
    elif path == "auth/token/renew-self" and status == 200:
        renew_ok += 1
        first_renew = first_renew or t
    elif path.startswith("secret/") and status == 200:
        reads += 1
    if status in (401, 403):
        denied += 1
        print("denied_path", path, status, e.get("error", ""))
print("logins", logins)
print("renew_ok", renew_ok)
print("reads", reads)
print("denied", denied)
print("first_renew_after_ms", int((first_renew - first_login) * 1000) if first_login and first_renew else -1)
PY
}

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- retries at startup
    for fault in '{"match":"/v1/","kind":"status","status":503,"count":3}:three 503 answers' \
        '{"match":"/v1/","kind":"drop","count":2}:two dropped connections' \
        '{"match":"/v1/","kind":"reset","count":1}:a connection reset' \
        '{"match":"/v1/","kind":"sealed","count":2}:two sealed answers' \
        '{"match":"/v1/","kind":"status","status":429,"retry_after":"2","count":1}:a 429 with Retry-After 2'; do
        json=${fault%%\}:*}\} what=${fault#*\}:}
        standin_control DELETE /_standin/fault > /dev/null
        standin_control POST /_standin/fault "$json" > /dev/null
        name=$f-retry-$(echo "$what" | tr -c 'a-zA-Z0-9\n' - | cut -c1-20)
        start=$(date +%s%N)
        wrun $name $P "$M" CLOUDTASER_STARTUP_TIMEOUT=20s -- "$WL" env-hash PGPASSWORD
        elapsed=$((($(date +%s%N) - start) / 1000000))
        left=$(standin_control GET /_standin/fault)
        [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$val1") len=${#val1}" "$work/$name.out" &&
            ! grep -q '"count": *[1-9]' <<< "$left"
        ok $? "$f: retried through $what; the workload started with its secret (${elapsed} ms)" ||
            { show $name; diag "faults left: $left"; }
        if [[ $what == *Retry-After* ]]; then
            [ $elapsed -ge 1900 ]
            ok $? "$f: the Retry-After of 2s was honoured (${elapsed} ms)"
        fi
    done
    standin_control DELETE /_standin/fault > /dev/null
    # sealed at start, unsealed 2s later: the wrapper waits and then starts the workload
    standin_control POST /_standin/seal > /dev/null
    name=$f-retry-unseal
    wstart $name $P "$M" CLOUDTASER_STARTUP_TIMEOUT=20s -- "$WL" env-hash PGPASSWORD
    sleep 2
    sealed_started=$(nlines "$work/$name.out")
    standin_control POST /_standin/unseal > /dev/null
    wwait "$wpid" 30
    [ "$sealed_started" = 0 ] && [ $rc -eq 0 ] && grep -q "env PGPASSWORD sha256=$(sha "$val1")" "$work/$name.out"
    ok $? "$f: a vault sealed at start and unsealed 2s later: the workload starts only then" || show $name

    # --- rotation=restart
    name=$f-restart
    plant secret/app/db "{\"password\":\"$val1\"}"
    wstart $name $P "$M" CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_ROTATION_GRACE=2s \
        -- "$WL" print-pid env-hash PGPASSWORD signals 60
    if wait_grep "$work/$name.out" '^ready$' 30; then
        sleep 3.5
        [ "$(nlines "$work/$name.out" '^ready$')" = 1 ]
        ok $? "$f: restart: no restart while nothing changed (3.5 s at a 1 s interval)" || show $name
        val2="second-$(rand_hex 8)"
        plant secret/app/db "{\"password\":\"$val2\"}"
        for ((i = 0; i < 300; i++)); do
            [ "$(nlines "$work/$name.out" '^ready$')" -ge 2 ] && break
            sleep 0.05
        done
        sleep 3.5
        [ "$(nlines "$work/$name.out" '^ready$')" = 2 ] && [ "$(nlines "$work/$name.out" '^pid ')" = 2 ]
        ok $? "$f: restart: one change, exactly one restart (two runs in all)" || show $name
        grep -q '^signal TERM$' "$work/$name.out"
        ok $? "$f: restart: the old workload was stopped with SIGTERM"
        last_hash=$(grep '^env PGPASSWORD' "$work/$name.out" | tail -1)
        [ "$last_hash" = "env PGPASSWORD sha256=$(sha "$val2") len=${#val2}" ]
        ok $? "$f: restart: the second run sees the new value" || diag "$last_hash"
        # sealed: keeps running on the old values, logs, never restarts
        errs_before=$(nlines "$work/$name.err")
        standin_control POST /_standin/seal > /dev/null
        sleep 4
        [ "$(nlines "$work/$name.out" '^ready$')" = 2 ] && kill -0 "$wpid" 2>/dev/null
        ok $? "$f: restart: a sealed vault causes no restart; the wrapper keeps running" || show $name
        [ "$(nlines "$work/$name.err")" -gt "$errs_before" ] && tail -n +$((errs_before + 1)) "$work/$name.err" | grep -qi 'seal'
        ok $? "$f: restart: and logs that the vault is sealed" || show $name
        logged=$(tail -n +$((errs_before + 1)) "$work/$name.err" | wc -l)
        [ "$logged" -le 12 ]
        ok $? "$f: restart: without flooding the log ($logged lines in 4 s)"
        standin_control POST /_standin/unseal > /dev/null
        sleep 2.5
        [ "$(nlines "$work/$name.out" '^ready$')" = 2 ]
        ok $? "$f: restart: no restart after the unseal either (nothing changed meanwhile)" || show $name
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ]
        ok $? "$f: restart: SIGTERM ends it with 143" || show $name
    else
        ok 1 "$f: restart: the workload started" || show $name
    fi

    # --- rotation=signal:USR1 with memfd delivery
    name=$f-sigrot
    plant secret/app/db "{\"password\":\"$val1\"}"
    wstart $name $P "$M" CLOUDTASER_DELIVERY=memfd CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s \
        -- "$WL" memfd-on-signal PGPASSWORD memfd-hash PGPASSWORD signals 60
    if wait_grep "$work/$name.out" '^ready$' 30; then
        sleep 2.5
        ! grep -q '^signal' "$work/$name.out"
        ok $? "$f: signal rotation: no signal while nothing changed" || show $name
        val3="third-$(rand_hex 8)"
        plant secret/app/db "{\"password\":\"$val3\"}"
        wait_grep "$work/$name.out" "^memfd PGPASSWORD sha256=$(sha "$val3") len=${#val3}\$" 15 &&
            grep -qx 'signal USR1' "$work/$name.out"
        ok $? "$f: signal rotation: the workload gets SIGUSR1 and its memfd holds the new value" || show $name
        sleep 2.5
        [ "$(nlines "$work/$name.out" '^signal USR1$')" = 1 ] && [ "$(nlines "$work/$name.out" '^ready$')" = 1 ]
        ok $? "$f: signal rotation: one signal per change, never a restart" || show $name
        kill -TERM "$wpid"
        wwait "$wpid" 20
    else
        ok 1 "$f: signal rotation: the workload started" || show $name
    fi

    # --- token renewal (role "short": token_ttl 6s): ~10 s of running with rotation polls every 1s
    for role in short capped; do
        name=$f-renew-$role
        from=$(nlines "$STANDIN_AUDIT")
        wstart $name $P "$M" VAULT_AUTH_ROLE=$role CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s \
            -- "$WL" print-pid sleep 10 exit 0
        wwait "$wpid" 40
        summary=$(audit_summary "$from")
        get() { sed -n "s/^$1 //p" <<< "$summary"; }
        if [ $role = short ]; then
            [ $rc -eq 0 ] && [ "$(get renew_ok)" -ge 1 ] && [ "$(get first_renew_after_ms)" -ge 0 ] &&
                [ "$(get first_renew_after_ms)" -lt 6000 ]
            ok $? "$f: token_ttl 6s: renew-self succeeded before expiry (first after $(get first_renew_after_ms) ms, $(get renew_ok) renewals)" ||
                { show $name; diag "$summary"; }
        else
            [ $rc -eq 0 ] && [ "$(get logins)" -ge 2 ]
            ok $? "$f: token_ttl 4s, max_ttl 7s: a fresh login once renewal can no longer extend the token ($(get logins) logins)" ||
                { show $name; diag "$summary"; }
        fi
        [ "$(get denied)" = 0 ] && [ "$(get reads)" -ge 5 ]
        ok $? "$f: role $role: the token never expired: $(get reads) polls over 10 s, none refused" ||
            diag "$summary"
    done

    # --- locked memory
    name=$f-vmlck
    wstart $name $P "$M" -- "$WL" print-pid wait-file "$work/go-$name"
    if wait_grep "$work/$name.out" '^pid ' 30; then
        vmlck=$(awk '/^VmLck:/ {print $2}' "/proc/$wpid/status")
        [ "${vmlck:-0}" -gt 0 ]
        ok $? "$f: VmLck of the wrapper is non-zero (${vmlck} kB)"
        mem=$(grep -o 'memory=[a-z_]*' "$work/$name.err")
        [ "$mem" = memory=memfd_secret ] || [ "$mem" = memory=mlock ]
        ok $? "$f: as root the protection line reports locked memory ($mem)"
    else
        ok 1 "$f: vmlck: the workload started" || show $name
    fi
    touch "$work/go-$name"
    wwait "$wpid" 20

    # non-root (setpriv, nobody) with RLIMIT_MEMLOCK 0: no mlock, no memfd_secret; it still works
    if [ "$(id -u)" = 0 ] && [ -x /usr/bin/setpriv ] && [ -x /usr/bin/prlimit ]; then
        for limit in 0 67108864; do
            name=$f-nonroot-$limit
            WL_PREFIX=(/usr/bin/prlimit --memlock=$limit:$limit /usr/bin/setpriv --reuid=65534 --regid=65534
                --clear-groups --inh-caps=-all)
            wstart $name $P "$M" CLOUDTASER_DELIVERY=both -- "$WL" print-pid env-hash PGPASSWORD memfd-hash PGPASSWORD \
                memfd-info wait-file "$work/go-$name"
            WL_PREFIX=()
            vmlck=-1
            if wait_grep "$work/$name.out" '^pid ' 30 && wait_grep "$work/$name.out" '^memfd fd' 10; then
                # env execs prlimit, which execs setpriv, which execs the wrapper: same pid
                vmlck=$(awk '/^VmLck:/ {print $2}' "/proc/$wpid/status")
            fi
            touch "$work/go-$name"
            wwait "$wpid" 20
            mem=$(grep -o 'memory=[a-z_]*' "$work/$name.err")
            h=$(sha "$val1")
            plant_ok=1
            grep -q "^env PGPASSWORD sha256=$h" "$work/$name.out" && grep -q "^memfd PGPASSWORD sha256=$h" "$work/$name.out" &&
                [ $rc -eq 0 ] && plant_ok=0
            if [ $limit = 0 ]; then
                ok $plant_ok "$f: non-root, RLIMIT_MEMLOCK 0: secrets still delivered (env and memfd)" || show $name
                [ "$mem" = memory=none ] && [ "$vmlck" = 0 ]
                ok $? "$f: non-root, RLIMIT_MEMLOCK 0: the protection line says memory=none (got '$mem', VmLck $vmlck kB)" || show $name
                grep -q 'memfd .*target=/memfd:' "$work/$name.out"
                ok $? "$f: non-root, RLIMIT_MEMLOCK 0: the memfd falls back from memfd_secret to a sealed memfd" ||
                    diag "$(grep '^memfd fd' "$work/$name.out")"
            else
                ok $plant_ok "$f: non-root, RLIMIT_MEMLOCK 64 MiB: secrets delivered" || show $name
                { [ "$mem" = memory=mlock ] || [ "$mem" = memory=memfd_secret ]; } && [ "$vmlck" -gt 0 ]
                ok $? "$f: non-root, RLIMIT_MEMLOCK 64 MiB: locked memory ($mem, VmLck $vmlck kB)" || show $name
            fi
        done
    else
        skip "$f: non-root RLIMIT_MEMLOCK fallback: needs root, setpriv and prlimit"
    fi
done

# the planted values never leave the workload
for v in "$val1" "${val2:-}" "${val3:-}"; do
    [ -n "$v" ] || continue
    if grep -rqaF -- "$v" "$work" "$STANDIN_AUDIT"; then
        ok 1 "a planted value appears in no output, log, file or the audit log"
        grep -rlaF -- "$v" "$work" "$STANDIN_AUDIT" | sed 's/^/# found in /'
    else
        ok 0 "a planted value appears in no output, log, file or the audit log"
    fi
done
tap_done
