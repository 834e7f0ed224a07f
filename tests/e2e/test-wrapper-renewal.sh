#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper keeps its vault token alive and its secrets in locked memory,
# against the stand-in vault over TLS (tests/e2e/wrapper-vault.json: demo.json plus short-TTL
# roles, one per build so the runs can share one stand-in at the same time), musl and ASan builds.
#   - token renewal: with token_ttl 6s over a ~10 s run, renew-self succeeds before the token
#     expires; with token_ttl 4s and token_max_ttl 7s (renewal cannot extend it past 7 s) the
#     wrapper logs in again; in both, the rotation polls (every 1 s) are never refused, so the token
#     never expired. All from the stand-in's audit log (request paths, status codes, the role in
#     the token's metadata);
#   - locked memory: VmLck of the wrapper is non-zero and the protection line says memfd_secret or
#     mlock; run as a non-root user (setpriv) with RLIMIT_MEMLOCK 0 the fallback still delivers
#     the secrets (env and memfd), the memfd is an ordinary sealed memfd, and the protection line
#     says memory=none; with the current hard limit, memory is locked again.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup "$top/tests/e2e/wrapper-vault.json"
P=CLOUDTASER_SECRET_PATHS=secret/app/db
M=CLOUDTASER_ENV_MAP=password=PGPASSWORD
val="value-$(rand_hex 8)"
plant secret/app/db "{\"password\":\"$val\"}" || { echo "Bail out! cannot plant"; exit 1; }

# audit_summary ROLE: facts about the requests made with tokens of ROLE, one "key value" a line;
# "denied" counts every 401/403 of the whole run (a refused request may carry no token metadata).
audit_summary() {
    /usr/bin/python3 - "$STANDIN_AUDIT" "$1" <<'PY'
import json, sys
from datetime import datetime
role = sys.argv[2]
renew_ok = renew_failed = logins = denied = reads = lookups = 0
first_login = first_renew = None
def ts(s):
    return datetime.fromisoformat(s).timestamp()  # Python 3.11: "Z" and 1-6 fraction digits
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("type") != "response":
        continue
    path = e["request"]["path"]
    status = e["response"].get("status_code")
    if status in (401, 403):
        denied += 1
        print("denied_path", path, status, e.get("error", ""))
    meta = ((e.get("auth") or {}).get("metadata") or ((e["response"].get("auth") or {}).get("metadata")) or {})
    if meta.get("role") != role:
        continue
    t = ts(e["time"])
    if path.endswith("/login") and status == 200:
        logins += 1
        first_login = first_login or t
    elif path == "auth/token/renew-self":
        if status == 200:
            renew_ok += 1
            first_renew = first_renew or t
        else:
            renew_failed += 1
    elif path.startswith("secret/") and status == 200:
        reads += 1
    elif path == "auth/token/lookup-self":
        lookups += 1
print("logins", logins)
print("lookups", lookups)
print("renew_ok", renew_ok)
print("renew_failed", renew_failed)
print("reads", reads)
print("denied", denied)
print("first_renew_after_ms", int((first_renew - first_login) * 1000) if first_login and first_renew else -1)
PY
}

# --- token renewal: every build and role at the same time (~10 s in all)
declare -A rpid
for f in $(wl_flavours); do
    wl_use "$f" || continue
    for role in short capped; do
        wstart $f-renew-$role $P "$M" VAULT_AUTH_ROLE=$role-$f CLOUDTASER_ROTATION=restart \
            CLOUDTASER_ROTATION_INTERVAL=1s -- "$WL" print-pid sleep 10 exit 0
        rpid[$f-$role]=$wpid
    done
done
for f in $(wl_flavours); do
    [ -x "$top/build/$f/bin/cloudtaser-wrapper" ] || continue
    for role in short capped; do
        name=$f-renew-$role
        wwait "${rpid[$f-$role]}" 40
        summary=$(audit_summary $role-$f)
        get() { sed -n "s/^$1 //p" <<< "$summary"; }
        [ $rc -eq 0 ] && [ "$(grep -c '^pid ' "$work/$name.out")" = 1 ]
        ok $? "$f: role $role-$f: the workload ran once and exited 0" || show $name
        if [ $role = short ]; then
            first=$(get first_renew_after_ms)
            [ "$(get renew_ok)" -ge 1 ] && [ "$first" -ge 0 ] && [ "$first" -lt 6000 ] && [ "$(get logins)" = 1 ]
            ok $? "$f: token_ttl 6s: renew-self before expiry (first after $first ms, $(get renew_ok) renewals, $(get logins) login)" ||
                { show $name; diag "$summary"; }
        else
            [ "$(get logins)" -ge 2 ]
            ok $? "$f: token_ttl 4s, max_ttl 7s: a fresh login when renewal can no longer extend the token ($(get logins) logins, $(get renew_ok) renewals)" ||
                { show $name; diag "$summary"; }
        fi
        # The renewal schedule of a token from a kubernetes login comes from the login's lease:
        # no lookup-self (one more request at every start, before).
        [ "$(get lookups)" = 0 ]
        ok $? "$f: role $role-$f: no lookup-self after the login ($(get lookups))" || diag "$summary"
        [ "$(get denied)" = 0 ] && [ "$(get reads)" -ge 5 ]
        ok $? "$f: role $role-$f: the token never expired: $(get reads) polls over 10 s, none refused" ||
            { show $name; diag "$summary"; }
    done
done

# --- locked memory
hard_kib=$(ulimit -H -l)
for f in $(wl_flavours); do
    wl_use "$f" || continue
    name=$f-vmlck
    wstart $name $P "$M" -- "$WL" print-pid wait-file "$work/go-$name"
    if wait_grep "$work/$name.out" '^pid ' 30 "$wpid"; then
        vmlck=$(awk '/^VmLck:/ {print $2}' "/proc/$wpid/status")
        [ "${vmlck:-0}" -gt 0 ]
        ok $? "$f: VmLck of the wrapper is non-zero (${vmlck} kB)"
        # The protection line is logged after the workload has started (the supervisor hardens
        # itself first): wait for it rather than race the workload's first line.
        wait_grep "$work/$name.err" 'protection:' 30 "$wpid"
        mem=$(grep -o 'memory=[a-z_]*' "$work/$name.err")
        [ "$mem" = memory=memfd_secret ] || [ "$mem" = memory=mlock ]
        ok $? "$f: as root the protection line reports locked memory ($mem)"
    else
        ok 1 "$f: vmlck: the workload started" || show $name
    fi
    touch "$work/go-$name"
    wwait "$wpid" 20

    # non-root (nobody, through setpriv) with RLIMIT_MEMLOCK 0, then with the current hard limit
    if [ "$(id -u)" != 0 ] || [ ! -x /usr/bin/setpriv ] || [ ! -x /usr/bin/prlimit ]; then
        skip "$f: non-root RLIMIT_MEMLOCK fallback: needs root, setpriv and prlimit"
        continue
    fi
    limits=0
    if [ "$hard_kib" = unlimited ]; then limits+=" 67108864"; elif [ "$hard_kib" -ge 1024 ]; then limits+=" $((hard_kib * 1024))"; fi
    for limit in $limits; do
        name=$f-nonroot-$limit
        WL_PREFIX=(/usr/bin/prlimit "--memlock=$limit:$limit" /usr/bin/setpriv --reuid=65534 --regid=65534
            --clear-groups --inh-caps=-all)
        wstart $name $P "$M" CLOUDTASER_DELIVERY=both -- "$WL" print-pid env-hash PGPASSWORD memfd-hash PGPASSWORD \
            memfd-info wait-file "$work/go-$name"
        WL_PREFIX=()
        vmlck=-1
        if wait_grep "$work/$name.out" '^memfd fd' 30 "$wpid"; then
            # env execs prlimit, which execs setpriv, which execs the wrapper: the same pid
            vmlck=$(awk '/^VmLck:/ {print $2}' "/proc/$wpid/status")
        fi
        touch "$work/go-$name"
        wwait "$wpid" 20
        mem=$(grep -o 'memory=[a-z_]*' "$work/$name.err")
        h=$(sha "$val")
        grep -q "^env PGPASSWORD sha256=$h" "$work/$name.out" && grep -q "^memfd PGPASSWORD sha256=$h" "$work/$name.out" &&
            [ $rc -eq 0 ]
        ok $? "$f: non-root, RLIMIT_MEMLOCK $limit: the secrets are delivered (env and memfd)" || show $name
        if [ "$limit" = 0 ] && [ $f = asan ]; then
            # ASan intercepts mlock() and returns 0 without locking anything, so the ASan build
            # believes it got mlock (VmLck stays 0): only the musl build can show the fallback.
            skip "$f: non-root, RLIMIT_MEMLOCK 0: ASan's mlock() interceptor reports success (got '$mem', VmLck $vmlck kB)"
            grep -q '^memfd .*target=/memfd:' "$work/$name.out"
            ok $? "$f: non-root, RLIMIT_MEMLOCK 0: the memfd falls back from memfd_secret to a memfd" ||
                diag "$(grep '^memfd fd' "$work/$name.out")"
        elif [ "$limit" = 0 ]; then
            [ "$mem" = memory=none ] && [ "$vmlck" = 0 ]
            ok $? "$f: non-root, RLIMIT_MEMLOCK 0: the protection line says memory=none (got '$mem', VmLck $vmlck kB)" || show $name
            grep -q 'unlock\|could not be locked\|not locked\|swap' "$work/$name.err"
            ok $? "$f: non-root, RLIMIT_MEMLOCK 0: and warns about it" || show $name
            grep -q '^memfd .*target=/memfd:' "$work/$name.out"
            ok $? "$f: non-root, RLIMIT_MEMLOCK 0: the memfd falls back from memfd_secret to a memfd" ||
                diag "$(grep '^memfd fd' "$work/$name.out")"
        else
            { [ "$mem" = memory=mlock ] || [ "$mem" = memory=memfd_secret ]; } && [ "$vmlck" -gt 0 ]
            ok $? "$f: non-root, RLIMIT_MEMLOCK $((limit / 1024)) KiB: locked memory ($mem, VmLck $vmlck kB)" || show $name
        fi
    done
done

if grep -rqaF -- "$val" "$work" "$STANDIN_AUDIT"; then
    ok 1 "the planted value appears in no output, log, file or the audit log"
    grep -rlaF -- "$val" "$work" "$STANDIN_AUDIT" | sed 's/^/# found in /'
else
    ok 0 "the planted value appears in no output, log, file or the audit log"
fi
tap_done
