#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper's exit codes, against the stand-in vault over TLS, musl and ASan.
#   64 configuration error, 65 a mapped field or a secret missing, 69 vault unreachable within the
#   startup timeout (closed port, sealed), 77 login or read denied, 126 command not executable,
#   127 command not found: none of these may start the workload (it would create a marker file),
#   and the error line names the variable, path, field or cause.
#   The workload's exit code passes through (0, 3, 255), a death by signal gives 128+signal.
#   A NUL byte in a field the pod does not map does not matter (KV v2 and v1); in a mapped field
#   it is 65 naming the field (the secret was unreadable, 69, before).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup

canary="CANARY-$(rand_hex 12)"
plant secret/app/db "{\"username\":\"app\",\"password\":\"$canary\"}" &&
    plant secret/app/clash "{\"db-host\":\"one\",\"db_host\":\"two\"}" &&
    plant secret/app/nul '{"password":"fine","blob":"a\u0000b"}' &&
    plant kv/app/nul '{"password":"fine","blob":"a\u0000b"}' ||
    { echo "Bail out! cannot plant the secrets"; exit 1; }
standin_jwt demo intruder vault > "$work/jwt-intruder" && chmod 644 "$work/jwt-intruder"
: > "$work/not-executable"
chmod 644 "$work/not-executable"
mkdir -p "$work/a-directory"

PATHS=CLOUDTASER_SECRET_PATHS=secret/app/db

# expect_fail CODE REGEX NAME [VAR=VAL | -VAR]... : runs the wrapper with the marker workload and
# checks the exit code, that the workload never ran, and that stderr has a line matching REGEX.
expect_fail() {
    local code=$1 re=$2 what=$3; shift 3
    local name=$f-$((++case_n))
    rm -f "$work/ran"
    local start
    start=$(date +%s%N)
    wrun $name "$@" -- "$WL" touch "$work/ran" say started
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    local failed=0
    if [ $rc -ne "$code" ]; then
        diag "exit $rc, want $code"
        failed=1
    fi
    if [ -e "$work/ran" ] || [ -s "$work/$name.out" ]; then
        diag "the workload was started"
        failed=1
    fi
    if ! grep -Eiq -- "$re" "$work/$name.err"; then
        diag "no line matching /$re/ on stderr"
        failed=1
    fi
    ok $failed "$f: exit $code, workload not started, cause named: $what" || show $name
}

for f in $(wl_flavours); do
    wl_use "$f" || continue
    case_n=0

    # 64: configuration errors
    expect_fail 64 'VAULT_ADDR' "VAULT_ADDR missing" -VAULT_ADDR $PATHS
    expect_fail 64 'VAULT_ADDR' "VAULT_ADDR without a scheme" VAULT_ADDR=127.0.0.1:8200 $PATHS
    expect_fail 64 'CLOUDTASER_DELIVERY' "CLOUDTASER_DELIVERY=carrier-pigeon" CLOUDTASER_DELIVERY=carrier-pigeon $PATHS
    expect_fail 64 'CLOUDTASER_ENV_MAP' "CLOUDTASER_ENV_MAP entry without '='" "CLOUDTASER_ENV_MAP=password" $PATHS
    expect_fail 64 'CLOUDTASER_ENV_MAP|1BAD' "CLOUDTASER_ENV_MAP with an invalid variable name" \
        "CLOUDTASER_ENV_MAP=password=1BAD" $PATHS
    expect_fail 64 'CLOUDTASER_ENV_MAP|groups|paths' "CLOUDTASER_ENV_MAP with more groups than paths" \
        "CLOUDTASER_ENV_MAP=password=A;username=B" $PATHS
    expect_fail 64 'SAME_NAME' "two secrets mapped to the same name" \
        CLOUDTASER_SECRET_PATHS=secret/app/db,secret/app/api "CLOUDTASER_ENV_MAP=password=SAME_NAME;api_key=SAME_NAME"
    expect_fail 64 'DB_HOST' "two fields of an unmapped path upper-cased to the same name (db-host, db_host)" \
        CLOUDTASER_SECRET_PATHS=secret/app/clash
    expect_fail 64 'VAULT_AUTH_METHOD' "VAULT_AUTH_METHOD=ldap" VAULT_AUTH_METHOD=ldap $PATHS
    expect_fail 64 'VAULT_AUTH_ROLE' "kubernetes auth without VAULT_AUTH_ROLE" -VAULT_AUTH_ROLE $PATHS
    expect_fail 64 'VAULT_TOKEN' "token auth without VAULT_TOKEN" VAULT_AUTH_METHOD=token $PATHS
    expect_fail 64 'CLOUDTASER_STARTUP_TIMEOUT' "CLOUDTASER_STARTUP_TIMEOUT=forever" CLOUDTASER_STARTUP_TIMEOUT=forever $PATHS
    expect_fail 64 'CLOUDTASER_ROTATION' "CLOUDTASER_ROTATION=sometimes" CLOUDTASER_ROTATION=sometimes $PATHS
    expect_fail 64 'CLOUDTASER_ROTATION' "CLOUDTASER_ROTATION=signal:NOPE" CLOUDTASER_ROTATION=signal:NOPE $PATHS
    expect_fail 64 'CLOUDTASER_SECRET_PATHS' "an empty path in CLOUDTASER_SECRET_PATHS" \
        CLOUDTASER_SECRET_PATHS=secret/app/db,,kv/app/legacy
    expect_fail 64 'CLOUDTASER_SECRET_PATHS' "a '.' segment in a secret path (the contract's vault path rule)" \
        CLOUDTASER_SECRET_PATHS=secret/./app/db
    expect_fail 64 'CLOUDTASER_SECRET_PATHS' "an empty segment in a secret path" \
        CLOUDTASER_SECRET_PATHS=secret//app/db
    expect_fail 64 'CLOUDTASER_BROKER_ADDRESS is required' "VAULT_AUTH_METHOD=broker without a broker address" VAULT_AUTH_METHOD=broker $PATHS
    expect_fail 64 'VAULT_AUTH_METHOD is broker, which this wrapper does not serve yet' "VAULT_AUTH_METHOD=broker (no broker client in this version)" \
        VAULT_AUTH_METHOD=broker CLOUDTASER_BROKER_ADDRESS=https://broker.example:8443 CLOUDTASER_BROKER_CA_PEM=ca $PATHS
    expect_fail 64 'VAULT_NAMESPACE' "a VAULT_NAMESPACE that is not a vault path" VAULT_NAMESPACE=a/../b $PATHS
    expect_fail 64 'VAULT_CACERT|CA' "a CA file that does not exist" "VAULT_CACERT=$work/no-such-ca.pem" $PATHS
    # no command at all: neither -- nor CLOUDTASER_ORIGINAL_CMD
    name=$f-nocmd
    wrun $name $PATHS
    [ $rc -eq 64 ] && grep -Eiq 'command|CLOUDTASER_ORIGINAL_CMD' "$work/$name.err"
    ok $? "$f: exit 64 and the cause named: no command" || show $name
    name=$f-badcmd
    wrun $name $PATHS 'CLOUDTASER_ORIGINAL_CMD=["unterminated'
    [ $rc -eq 64 ] && grep -q 'CLOUDTASER_ORIGINAL_CMD' "$work/$name.err"
    ok $? "$f: exit 64: CLOUDTASER_ORIGINAL_CMD that looks like JSON but is not" || show $name

    # 65: a mapped field missing, a path that does not exist
    expect_fail 65 'nosuchfield.*secret/app/db|secret/app/db.*nosuchfield' "mapped field missing (field and path named)" \
        $PATHS "CLOUDTASER_ENV_MAP=password=PGPASSWORD,nosuchfield=X"
    expect_fail 65 'secret/app/nothing' "a KV v2 secret that does not exist" \
        CLOUDTASER_SECRET_PATHS=secret/app/db,secret/app/nothing
    expect_fail 65 'kv/app/nothing' "a KV v1 secret that does not exist" CLOUDTASER_SECRET_PATHS=kv/app/nothing
    for mount in secret kv; do
        expect_fail 65 "field 'blob' of $mount/app/nul holds a NUL byte" "$mount: a mapped field with a NUL byte" \
            CLOUDTASER_SECRET_PATHS=$mount/app/nul CLOUDTASER_ENV_MAP=blob=BLOB
        name=$f-nul-unmapped-$mount
        wrun $name CLOUDTASER_SECRET_PATHS=$mount/app/nul CLOUDTASER_ENV_MAP=password=PGPASSWORD -- "$WL" env-hash PGPASSWORD
        [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha fine) len=4" "$work/$name.out"
        ok $? "$f: $mount: a NUL byte in a field the pod does not map does not matter" || show $name
    done

    # 69: unreachable within the startup timeout
    expect_fail 69 'refused|unreachable|127\.0\.0\.1:1' "connection refused (closed port), timeout 2s" \
        VAULT_ADDR=https://127.0.0.1:1 CLOUDTASER_STARTUP_TIMEOUT=2s $PATHS
    [ $elapsed_ms -ge 1500 ] && [ $elapsed_ms -le 15000 ]
    ok $? "$f: it retried for about the startup timeout (${elapsed_ms} ms for 2s)"
    standin_control POST /_standin/seal > /dev/null
    expect_fail 69 'sealed' "sealed for longer than the timeout (3s)" CLOUDTASER_STARTUP_TIMEOUT=3s $PATHS
    [ $elapsed_ms -ge 2500 ] && [ $elapsed_ms -le 16000 ]
    ok $? "$f: it retried the sealed vault for about the startup timeout (${elapsed_ms} ms for 3s)"
    standin_control POST /_standin/unseal > /dev/null

    # 77: denied
    expect_fail 77 'denied|403|intruder|not authorized' "a service account not bound to the role" \
        "CLOUDTASER_SA_TOKEN_PATH=$work/jwt-intruder" $PATHS
    expect_fail 77 'denied|403|other' "a role that does not allow this service account" VAULT_AUTH_ROLE=other $PATHS
    expect_fail 77 'secret/(data/)?other/x' "policy denies the path (path named)" \
        CLOUDTASER_SECRET_PATHS=secret/app/db,secret/other/x
    expect_fail 77 'denied|403|token' "an invalid vault token" VAULT_AUTH_METHOD=token \
        "VAULT_TOKEN=hvs.not-a-valid-token-$(rand_hex 4)" $PATHS

    # 126 / 127: the workload cannot be executed (secrets were read fine)
    for c in "126:$work/not-executable:a file without the execute bit" "126:$work/a-directory:a directory" \
        "127:$work/no-such-program:a path that does not exist" "127:ct-no-such-program-$$:a name not in PATH"; do
        code=${c%%:*} rest=${c#*:}
        prog=${rest%%:*} what=${rest#*:}
        name=$f-exec$code-$((++case_n))
        wrun $name $PATHS -- "$prog" arg
        [ $rc -eq "$code" ] && grep -q "${prog##*/}" "$work/$name.err"
        ok $? "$f: exit $code and the command named: $what" || show $name
    done

    # pass-through of the workload's exit status
    for c in 0 3 255; do
        wrun $f-exit$c $PATHS -- "$WL" say running exit $c
        [ $rc -eq $c ] && grep -qx running "$work/$f-exit$c.out"
        ok $? "$f: the workload's exit code $c is the wrapper's" || show $f-exit$c
    done
    for c in TERM:143 KILL:137 INT:130 SEGV:139; do
        sig=${c%:*} code=${c#*:}
        wrun $f-sig$sig $PATHS -- "$WL" kill-self $sig
        [ $rc -eq $code ]
        ok $? "$f: a workload killed by SIG$sig gives $code" || show $f-sig$sig
    done
done

if grep -rqaF -- "$canary" "$work" "$STANDIN_AUDIT"; then
    ok 1 "the canary value appears in no output, log, file or the audit log"
    grep -rlaF -- "$canary" "$work" "$STANDIN_AUDIT" | sed 's/^/# found in /'
else
    ok 0 "the canary value appears in no output, log, file or the audit log"
fi
tap_done
