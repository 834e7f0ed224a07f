#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: common/vault (through tests/tools/ct-vault) against the stand-in vault over TLS.
# Each scenario runs twice: with the released static musl build and with the ASan+UBSan build.
# A canary secret value is planted through the stand-in's control API and must never appear in
# anything the client printed, logged or caused to be written (the stand-in's audit log included).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/ct-e2e.XXXXXX")
cleanup() { standin_stop; rm -rf "$work"; }
trap cleanup EXIT

standin_start "$top/tests/standin/demo.json" || { echo "Bail out! stand-in vault did not start"; exit 1; }
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
standin_control POST /_standin/secret \
    "{\"path\":\"secret/app/db\",\"data\":{\"username\":\"app\",\"password\":\"$canary\"}}" >/dev/null ||
    { echo "Bail out! cannot plant the canary"; exit 1; }
standin_jwt demo app vault > "$work/jwt" || { echo "Bail out! no JWT"; exit 1; }
standin_jwt demo intruder vault > "$work/jwt-intruder"

export VAULT_ADDR=$STANDIN_ADDR VAULT_CACERT=$STANDIN_CA VAULT_AUTH_ROLE=demo
export CLOUDTASER_SA_TOKEN_PATH=$work/jwt
unset VAULT_SKIP_VERIFY VAULT_NAMESPACE VAULT_TOKEN VAULT_AUTH_METHOD VAULT_AUTH_MOUNT_PATH CLOUDTASER_VAULT_CA_PEM

n=0
run() { # run NAME BIN STEPS... -> output in $work/NAME.out (stdout+stderr)
    local name=$1 bin=$2; shift 2
    n=$((n + 1))
    "$bin" "$@" > "$work/$name.out" 2>&1
}

for flavour in musl asan; do
    bin=$top/build/$flavour/bin/ct-vault
    if [ ! -x "$bin" ]; then
        ok 1 "$flavour: $bin is built"
        continue
    fi
    f=$flavour

    run $f-full "$bin" login resolve:secret/app/db read:secret/app/db metadata:secret/app/db \
        lookup renew read:kv/app/legacy read:secret/data/app/api revoke
    ok $? "$f: login, resolve, read v2 and v1, metadata, lookup, renew, revoke" || sed 's/^/# /' "$work/$f-full.out"
    grep -q "login: kubernetes auth at auth/kubernetes as role 'demo': token lease 3600s, renewable yes, policies \[.*app-read.*\]" "$work/$f-full.out"
    ok $? "$f: login reports lease, renewability and policies"
    grep -q "resolve secret/app/db: KV v2, mount secret/, data path secret/data/app/db, metadata path secret/metadata/app/db" "$work/$f-full.out"
    ok $? "$f: KV version detected through sys/internal/ui/mounts"
    grep -q "read secret/app/db (KV v2, version 3): 2 fields: password ([0-9]* bytes) username (3 bytes)" "$work/$f-full.out"
    ok $? "$f: KV v2 read gives the latest version's fields (names and lengths only)"
    grep -q "read kv/app/legacy (KV v1): 1 field: user (6 bytes)" "$work/$f-full.out"
    ok $? "$f: KV v1 read"
    grep -q "read secret/data/app/api (KV v2, version 1): 3 fields: api_key (14 bytes) port (4 bytes, JSON) tls (16 bytes, JSON)" "$work/$f-full.out"
    ok $? "$f: a data path given as is, non-string values as JSON"
    grep -q "metadata secret/app/db: current version 3" "$work/$f-full.out"
    ok $? "$f: metadata current version"
    accessor=$(sed -n 's/^login: .*accessor \(.*\)$/\1/p' "$work/$f-full.out")
    tokens=$(standin_control GET /_standin/tokens)
    grep -q "revoke-self: token revoked" "$work/$f-full.out" && [ -n "$accessor" ] &&
        ! grep -qF "$accessor" <<< "$tokens"
    ok $? "$f: revoke-self really revoked the token at the server"

    run $f-old "$bin" login read:secret/app/old@1 expect-fail:read:secret/app/old@2 expect-fail:read:secret/app/nothing
    ok $? "$f: version 1 readable, deleted version 2 and a missing secret fail" || sed 's/^/# /' "$work/$f-old.out"
    grep -q "version 2 was deleted at" "$work/$f-old.out"
    ok $? "$f: a deleted version is reported as such"

    run $f-forbidden "$bin" login read:secret/other/x
    [ $? -eq 1 ] && grep -q "read failed: .*permission denied.*path=secret/data/other/x status=403" "$work/$f-forbidden.out"
    ok $? "$f: a path outside the policy is denied with path and status" || sed 's/^/# /' "$work/$f-forbidden.out"

    CLOUDTASER_SA_TOKEN_PATH=$work/jwt-intruder run $f-intruder "$bin" login
    [ $? -eq 1 ] && grep -q "login failed: .*status=403" "$work/$f-intruder.out"
    ok $? "$f: a service account not bound to the role cannot log in (403)" || sed 's/^/# /' "$work/$f-intruder.out"

    VAULT_AUTH_ROLE=nosuchrole run $f-role "$bin" login
    [ $? -eq 1 ] && grep -q "login failed: .*status=400" "$work/$f-role.out"
    ok $? "$f: an unknown role is a 400" || sed 's/^/# /' "$work/$f-role.out"

    VAULT_AUTH_MOUNT_PATH=k8s-prod run $f-mount "$bin" login lookup
    ok $? "$f: kubernetes auth at a custom mount path" || sed 's/^/# /' "$work/$f-mount.out"
    grep -q "path auth/k8s-prod/login" "$work/$f-mount.out"
    ok $? "$f: the token comes from that mount"

    VAULT_AUTH_METHOD=token VAULT_TOKEN=$STANDIN_ROOT_TOKEN run $f-token "$bin" login lookup read:secret/other/x
    ok $? "$f: token auth" || sed 's/^/# /' "$work/$f-token.out"

    CLOUDTASER_VAULT_CA_PEM=$(cat "$STANDIN_CA") VAULT_CACERT= run $f-inline "$bin" login read:secret/app/db
    ok $? "$f: CA given inline (CLOUDTASER_VAULT_CA_PEM)" || sed 's/^/# /' "$work/$f-inline.out"

    # TLS: a CA that did not sign the server is a TLS error, never retried.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" \
        -out "$work/other-ca.pem" -subj /CN=other -days 1 2>/dev/null
    VAULT_CACERT=$work/other-ca.pem run $f-badca "$bin" login
    [ $? -eq 1 ] && grep -q "reason=\"TLS or protocol error\"" "$work/$f-badca.out"
    ok $? "$f: an untrusted server certificate is refused" || sed 's/^/# /' "$work/$f-badca.out"
    VAULT_CACERT= run $f-noca "$bin" login
    [ $? -eq 1 ]
    ok $? "$f: no CA and no skip-verify is a configuration error"
    VAULT_CACERT= VAULT_SKIP_VERIFY=true run $f-skip "$bin" login
    [ $? -eq 0 ] && grep -q "VAULT_SKIP_VERIFY is set" "$work/$f-skip.out"
    ok $? "$f: VAULT_SKIP_VERIFY works and says so loudly" || sed 's/^/# /' "$work/$f-skip.out"

    # Transient faults are retried by the client: two 503s, then a 429 with Retry-After.
    standin_control POST /_standin/fault '{"match":"/v1/secret/data/app/db","kind":"status","status":503,"count":2}' >/dev/null
    run $f-retry "$bin" login read:secret/app/db
    ok $? "$f: two 503 answers are retried transparently" || sed 's/^/# /' "$work/$f-retry.out"
    standin_control POST /_standin/fault '{"match":"/v1/secret/data/app/db","kind":"status","status":429,"retry_after":"1","count":1}' >/dev/null
    start=$(date +%s%N)
    run $f-429 "$bin" login read:secret/app/db
    rc=$?
    elapsed=$((($(date +%s%N) - start) / 1000000))
    [ $rc -eq 0 ] && [ $elapsed -ge 1000 ]
    ok $? "$f: a 429 is retried after its Retry-After (${elapsed} ms)" || sed 's/^/# /' "$work/$f-429.out"
    standin_control POST /_standin/fault '{"match":"/v1/secret/data/app/db","kind":"drop","count":1}' >/dev/null
    run $f-drop "$bin" login read:secret/app/db
    ok $? "$f: a dropped connection is retried" || sed 's/^/# /' "$work/$f-drop.out"
    standin_control DELETE /_standin/fault >/dev/null

    # Sealed: every attempt gets 503 "Vault is sealed"; the client gives up with that reason.
    standin_control POST /_standin/seal >/dev/null
    run $f-sealed "$bin" expect-fail:login
    ok $? "$f: a sealed vault fails the login" || sed 's/^/# /' "$work/$f-sealed.out"
    grep -q "Vault is sealed" "$work/$f-sealed.out" && grep -q "vault sealed or unavailable" "$work/$f-sealed.out"
    ok $? "$f: and the reason is given" || sed 's/^/# /' "$work/$f-sealed.out"
    standin_control POST /_standin/unseal >/dev/null

    # Nothing refused: connection refused is reported as such.
    VAULT_ADDR=https://127.0.0.1:1 run $f-refused "$bin" login
    [ $? -eq 1 ] && grep -q "connection refused" "$work/$f-refused.out"
    ok $? "$f: an unreachable vault is reported" || sed 's/^/# /' "$work/$f-refused.out"
done

# The canary never appears in anything the client printed or logged, nor in the audit log.
if grep -rqF "$canary" "$work" "$STANDIN_AUDIT"; then
    ok 1 "the canary secret value appears nowhere in outputs, logs or the audit log"
    grep -rlF "$canary" "$work" "$STANDIN_AUDIT" | sed 's/^/# found in /'
else
    ok 0 "the canary secret value appears nowhere in outputs, logs or the audit log"
fi
jwt=$(cat "$work/jwt")
if grep -rqF "$jwt" "$work"/*.out "$STANDIN_AUDIT"; then
    ok 1 "the service account token appears nowhere in outputs or the audit log"
else
    ok 0 "the service account token appears nowhere in outputs or the audit log"
fi
[ -s "$STANDIN_AUDIT" ]
ok $? "the audit log was written (so the grep above means something)"
tap_done
