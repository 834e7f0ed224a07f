#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper delivers secrets to its workload (tests/tools/ct-workload), against
# the stand-in vault over TLS, with the static musl build and the ASan+UBSan build.
#   - env delivery: mapped fields under their names, an unmapped path's fields upper-cased with
#     non [A-Z0-9_] turned to '_'; KV v2, KV v1 and a KV v2 data path given as is;
#   - memfd delivery: the secrets are in the inherited fd (read with fstat + mmap), not in environ;
#     "both": in the two;
#   - the child's environment is exactly the wrapper's minus CLOUDTASER_* / VAULT_* plus secrets;
#   - token auth, CLOUDTASER_ORIGINAL_CMD (JSON array and plain string), `--` winning over it;
#   - a canary secret value and the vault token are absent from /proc/<wrapper>/environ while the
#     workload runs, from every output and log, from the stand-in's audit log and from every file
#     written under the test's directory. Values are compared through SHA-256 only.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup

canary="CANARY-$(rand_hex 12)"
user="user-$(rand_hex 4)"
v1val="v1-$(rand_hex 8)"
apikey="key-$(rand_hex 8)"
cfg_a="a-$(rand_hex 6)" cfg_b="b-$(rand_hex 6)" cfg_c="c-$(rand_hex 6)"
plant secret/app/db "{\"username\":\"$user\",\"password\":\"$canary\"}" &&
    plant kv/app/v1 "{\"v1secret\":\"$v1val\"}" &&
    plant secret/app/api "{\"api_key\":\"$apikey\",\"port\":8443}" &&
    plant secret/app/cfg "{\"api-token\":\"$cfg_a\",\"db.host\":\"$cfg_b\",\"mixedCase\":\"$cfg_c\"}" ||
    { echo "Bail out! cannot plant the secrets"; exit 1; }

# A token for token auth, with the app's policy (created with the root token; never written to disk).
vtoken=$(curl -sS --cacert "$STANDIN_CA" -H "X-Vault-Token: $STANDIN_ROOT_TOKEN" \
    --data '{"policies":["app-read"],"ttl":"1h"}' "$STANDIN_ADDR/v1/auth/token/create" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])')
[ -n "$vtoken" ] || { echo "Bail out! cannot create a token"; exit 1; }

PATHS="secret/app/db,kv/app/v1,secret/data/app/api,secret/app/cfg"
MAP="password=PGPASSWORD,username=PGUSER;v1secret=V1_SECRET;api_key=API_KEY"
P_DB=CLOUDTASER_SECRET_PATHS=secret/app/db
SECRET_NAMES="PGPASSWORD PGUSER V1_SECRET API_KEY API_TOKEN DB_HOST MIXEDCASE"
# Variables that must reach the child untouched, and wrapper variables that must not.
EXTRA=(FOO=bar VAULTX=1 XCLOUDTASER_Y=2 MY_VAULT_TOKEN=not-a-secret CLOUDTASER_UNKNOWN=3 VAULT_FORMAT=json)

declare -A want_hash=([PGPASSWORD]=$(sha "$canary") [PGUSER]=$(sha "$user") [V1_SECRET]=$(sha "$v1val")
    [API_KEY]=$(sha "$apikey") [API_TOKEN]=$(sha "$cfg_a") [DB_HOST]=$(sha "$cfg_b") [MIXEDCASE]=$(sha "$cfg_c"))

# The child's expected variable names: what the wrapper got, minus its own, plus $1 (names).
expected_keys() {
    { for v in "${WL_BASE[@]}" "${EXTRA[@]}"; do echo "${v%%=*}"; done | grep -Ev '^(VAULT_|CLOUDTASER_)'
        for k in $1; do echo "$k"; done; } | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//'
}

# hashes_ok SOURCE(env|memfd) NAME... : each NAME's line in $out carries the planted value's hash.
hashes_ok() {
    local src=$1 k bad=0; shift
    for k in "$@"; do
        grep -qx "$src $k sha256=${want_hash[$k]} len=[0-9]*" "$out" || { diag "$src $k: wrong or missing"; bad=1; }
    done
    return $bad
}

hash_cmds() { # workload arguments printing every secret's hash from $1 (env|memfd)
    local k
    for k in $SECRET_NAMES; do printf '%s\n' "$1-hash" "$k"; done
}

# inspect_running NAME: the wrapper ($wpid) runs a workload that printed its pid and now waits for
# $work/go-NAME. Checks /proc of both, then lets the workload finish. Sets wrapper_env_clean,
# child_env_has_canary, ppid_ok.
inspect_running() {
    local name=$1 cpid ppid
    wrapper_env_clean=1 child_env_has_canary=unknown ppid_ok=1
    if ! wait_grep "$work/$name.out" '^pid [0-9]+ ppid [0-9]+$' 30 "$wpid"; then
        diag "$name: the workload did not start"
        wrapper_env_clean=0 ppid_ok=0
    else
        read -r cpid ppid < <(sed -n 's/^pid \([0-9]*\) ppid \([0-9]*\)$/\1 \2/p' "$work/$name.out")
        [ "$ppid" = "$wpid" ] || { diag "$name: workload's parent is $ppid, wrapper is $wpid"; ppid_ok=0; }
        if [ ! -r "/proc/$wpid/environ" ]; then
            wrapper_env_clean=0
        else
            for secret in "$canary" "$vtoken" "$user" "$v1val" "$apikey"; do
                if grep -qaF -- "$secret" "/proc/$wpid/environ" "/proc/$wpid/cmdline"; then
                    wrapper_env_clean=0
                    diag "$name: a secret value is in the wrapper's /proc/$wpid/environ or cmdline"
                fi
            done
        fi
        child_fds=$(cd "/proc/$cpid/fd" 2>/dev/null && for d in *; do echo "fd $d -> $(readlink "$d")"; done)
        if grep -qaF -- "$canary" "/proc/$cpid/environ"; then child_env_has_canary=yes; else child_env_has_canary=no; fi
    fi
    touch "$work/go-$name"
    wwait "$wpid" 40
}

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- env delivery, kubernetes auth, v2 + v1 + data path + unmapped path
    name=$f-env
    wstart $name CLOUDTASER_SECRET_PATHS=$PATHS "CLOUDTASER_ENV_MAP=$MAP" "${EXTRA[@]}" \
        -- "$WL" $(hash_cmds env) env-keys fds proc-status print-pid wait-file "$work/go-$name"
    inspect_running $name
    out=$work/$name.out
    [ $rc -eq 0 ]
    ok $? "$f: env delivery: the wrapper exits 0 with its workload" || show $name
    hashes_ok env PGPASSWORD PGUSER
    ok $? "$f: env: KV v2 fields mapped (password=PGPASSWORD, username=PGUSER) hold the planted values" || show $name
    hashes_ok env V1_SECRET
    ok $? "$f: env: a KV v1 field"
    hashes_ok env API_KEY && ! grep -qE '^env-keys( .*)? PORT( |$)' "$out"
    ok $? "$f: env: a KV v2 data path given as is; only the mapped field is exported"
    hashes_ok env API_TOKEN DB_HOST MIXEDCASE
    ok $? "$f: env: an unmapped path exports every field upper-cased (api-token, db.host, mixedCase)"
    got=$(sed -n 's/^env-keys //p' "$out")
    want=$(expected_keys "$SECRET_NAMES")
    [ "$got" = "$want" ]
    ok $? "$f: env: the child's environment is exactly the wrapper's minus CLOUDTASER_*/VAULT_* plus the secrets" ||
        diag "got:  $got" "want: $want"
    [ $ppid_ok = 1 ]
    ok $? "$f: the wrapper is the workload's parent"
    [ $wrapper_env_clean = 1 ]
    ok $? "$f: env: no secret value in /proc/<wrapper>/environ or cmdline while the workload runs"
    [ $child_env_has_canary = yes ]
    ok $? "$f: env: (control) the canary is in the workload's /proc/<pid>/environ, so the checks can see it"
    grep -q '^fds 0 1 2$' "$out"
    ok $? "$f: env: the workload gets only fds 0 1 2 (none of the wrapper's sockets, timers, signalfd)" ||
        diag "$(grep '^fds' "$out")" "$child_fds"
    grep -q '^status .*NoNewPrivs=0 Seccomp=0 ' "$out"
    ok $? "$f: the workload inherits neither NO_NEW_PRIVS nor the supervisor's seccomp filter" ||
        diag "$(grep '^status' "$out")"
    grep -q 'protection:' "$work/$name.err" &&
        grep 'protection:' "$work/$name.err" | grep -q 'memory=\(memfd_secret\|mlock\|none\).*' &&
        grep 'protection:' "$work/$name.err" | grep -q 'dumpable=off' &&
        grep 'protection:' "$work/$name.err" | grep -q 'core_limit=0' &&
        grep 'protection:' "$work/$name.err" | grep -q 'seccomp=\(on\|off\)' &&
        grep 'protection:' "$work/$name.err" | grep -q 'capabilities='
    ok $? "$f: one protection summary line (memory, dumpable, core_limit, seccomp, capabilities)" ||
        diag "$(grep 'protection' "$work/$name.err")"
    [ "$(grep -c 'protection:' "$work/$name.err")" -eq 1 ]
    ok $? "$f: the protection summary is logged once"

    # --- memfd delivery
    name=$f-memfd
    wstart $name CLOUDTASER_SECRET_PATHS=$PATHS "CLOUDTASER_ENV_MAP=$MAP" CLOUDTASER_DELIVERY=memfd "${EXTRA[@]}" \
        -- "$WL" $(hash_cmds env) $(hash_cmds memfd) env-keys memfd-keys memfd-info fds print-pid wait-file "$work/go-$name"
    inspect_running $name
    out=$work/$name.out
    [ $rc -eq 0 ]
    ok $? "$f: memfd delivery: exits 0" || show $name
    hashes_ok memfd $SECRET_NAMES
    ok $? "$f: memfd: every secret is in CLOUDTASER_SECRET_FD with the planted value" || show $name
    missing=$(for k in $SECRET_NAMES; do grep -qx "env $k missing" "$out" || echo "$k"; done)
    [ -z "$missing" ]
    ok $? "$f: memfd: no secret in the environment" || diag "in environ: $missing"
    [ $child_env_has_canary = no ]
    ok $? "$f: memfd: the canary is not in the workload's /proc/<pid>/environ"
    [ $wrapper_env_clean = 1 ]
    ok $? "$f: memfd: no secret value in /proc/<wrapper>/environ"
    got=$(sed -n 's/^env-keys //p' "$out")
    want=$(expected_keys CLOUDTASER_SECRET_FD)
    [ "$got" = "$want" ]
    ok $? "$f: memfd: the child's environment is the wrapper's minus its own plus CLOUDTASER_SECRET_FD only" ||
        diag "got:  $got" "want: $want"
    got=$(sed -n 's/^memfd-keys //p' "$out")
    want=$(echo $SECRET_NAMES | tr ' ' '\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ]
    ok $? "$f: memfd: holds exactly the secrets' records" || diag "got:  $got" "want: $want"
    fdn=$(sed -n 's/^memfd fd=\([0-9]*\) .*/\1/p' "$out")
    grep -q "^fds 0 1 2 $fdn\$" "$out" && grep -q '^memfd .* cloexec=no' "$out"
    ok $? "$f: memfd: the only extra fd is the secret fd ($fdn)" || diag "$(grep '^fds\|^memfd fd' "$out")" "$child_fds"
    diag "$f: $(grep '^memfd fd=' "$out")"

    # --- a descriptor the wrapper inherited without close-on-exec (fd 9) is not passed on
    name=$f-inheritedfd
    (exec 9< /dev/null; wrun $name $P_DB -- "$WL" fds; echo $rc > "$work/$name.rc")
    grep -qx 'fds 0 1 2' "$work/$name.out"
    ok $? "$f: an inherited descriptor (9) is closed before the workload starts" || show $name

    # --- both
    name=$f-both
    wrun $name CLOUDTASER_SECRET_PATHS=$PATHS "CLOUDTASER_ENV_MAP=$MAP" CLOUDTASER_DELIVERY=both \
        -- "$WL" $(hash_cmds env) $(hash_cmds memfd)
    out=$work/$name.out
    [ $rc -eq 0 ] && hashes_ok env $SECRET_NAMES && hashes_ok memfd $SECRET_NAMES
    ok $? "$f: both: every secret in the environment and in the memfd" || show $name

    # --- token auth: the token's value never stays in the wrapper's /proc/<pid>/environ
    name=$f-token
    wstart $name VAULT_AUTH_METHOD=token "VAULT_TOKEN=$vtoken" -VAULT_AUTH_ROLE -CLOUDTASER_SA_TOKEN_PATH \
        CLOUDTASER_SECRET_PATHS=secret/app/db,kv/app/v1 "CLOUDTASER_ENV_MAP=password=PGPASSWORD;v1secret=V1_SECRET" \
        -- "$WL" env-hash PGPASSWORD env-hash V1_SECRET env-hash VAULT_TOKEN print-pid wait-file "$work/go-$name"
    inspect_running $name
    out=$work/$name.out
    [ $rc -eq 0 ] && hashes_ok env PGPASSWORD V1_SECRET && grep -qx "env VAULT_TOKEN missing" "$out"
    ok $? "$f: token auth: secrets delivered, VAULT_TOKEN not passed on" || show $name
    [ $wrapper_env_clean = 1 ]
    ok $? "$f: token auth: neither the token nor a secret is in /proc/<wrapper>/environ while it runs"
    ! grep -qaF -- "$vtoken" "$work/$name.out" "$work/$name.err"
    ok $? "$f: token auth: the token is not in the outputs"

    # --- a variable the pod already sets under a secret's name does not hide the secret
    # (getenv() returns the first match: the inherited copy must be dropped, not kept first)
    name=$f-shadow
    wrun $name PGPASSWORD=changeme CLOUDTASER_SECRET_PATHS=secret/app/db "CLOUDTASER_ENV_MAP=password=PGPASSWORD" \
        -- "$WL" env-hash PGPASSWORD env-keys
    out=$work/$name.out
    [ $rc -eq 0 ] && hashes_ok env PGPASSWORD &&
        [ "$(grep '^env-keys' "$out" | tr ' ' '\n' | grep -cx PGPASSWORD)" -eq 1 ]
    ok $? "$f: an inherited PGPASSWORD=changeme is replaced by the secret, not left first" || show $name

    # --- CLOUDTASER_ORIGINAL_CMD
    name=$f-origjson
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/db "CLOUDTASER_ENV_MAP=password=PGPASSWORD" \
        "CLOUDTASER_ORIGINAL_CMD=[\"$WL\",\"env-hash\",\"PGPASSWORD\",\"say\",\"two words\",\"env-keys\"]"
    out=$work/$name.out
    [ $rc -eq 0 ] && hashes_ok env PGPASSWORD && grep -qx "two words" "$out" && ! grep -q "CLOUDTASER_ORIGINAL_CMD" "$out"
    ok $? "$f: CLOUDTASER_ORIGINAL_CMD as a JSON array (an argument with a space kept whole)" || show $name
    name=$f-origstr
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/db "CLOUDTASER_ENV_MAP=password=PGPASSWORD" \
        "CLOUDTASER_ORIGINAL_CMD=  $WL   env-hash	PGPASSWORD say plain "
    out=$work/$name.out
    [ $rc -eq 0 ] && hashes_ok env PGPASSWORD && grep -qx "plain" "$out"
    ok $? "$f: CLOUDTASER_ORIGINAL_CMD as a whitespace-separated string" || show $name
    name=$f-origdash
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/db "CLOUDTASER_ORIGINAL_CMD=[\"$WL\",\"say\",\"original\"]" \
        -- "$WL" say dashdash
    [ $rc -eq 0 ] && grep -qx dashdash "$work/$name.out" && ! grep -q original "$work/$name.out"
    ok $? "$f: a command after -- wins over CLOUDTASER_ORIGINAL_CMD" || show $name

    # --- JSON logs: every stderr line is one JSON object with time, level, msg
    name=$f-json
    wrun $name CLOUDTASER_SECRET_PATHS=secret/app/db CLOUDTASER_LOG_FORMAT=json CLOUDTASER_LOG_LEVEL=debug -- "$WL" say hi
    [ $rc -eq 0 ] && [ -s "$work/$name.err" ] && /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert {"time", "level", "msg"} <= d.keys(), line
' "$work/$name.err"
    ok $? "$f: CLOUDTASER_LOG_FORMAT=json: every log line is a JSON object" || show $name
done

# --- no secret anywhere: outputs, logs, files under the work dir, the stand-in's audit log
for secret in canary vtoken; do
    val=${!secret}
    if grep -rqaF -- "$val" "$work" "$STANDIN_AUDIT"; then
        ok 1 "the $secret value appears nowhere: outputs, logs, files under the work dir, audit log"
        grep -rlaF -- "$val" "$work" "$STANDIN_AUDIT" | sed 's/^/# found in /'
    else
        ok 0 "the $secret value appears nowhere: outputs, logs, files under the work dir, audit log"
    fi
done
jwt=$(cat "$work/jwt")
! grep -rqaF --exclude=jwt -- "$jwt" "$work" "$STANDIN_AUDIT"
ok $? "the service account token appears nowhere but in its own file"
[ -s "$STANDIN_AUDIT" ] && [ "$(find "$work" -type f | wc -l)" -gt 10 ]
ok $? "the audit log and the outputs exist (so the searches above mean something)"
tap_done
