#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: the wrapper and the vault client end to end against the stand-in vault over TLS,
# narrated.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/standin/standin.sh"
bin=$top/build/musl/bin/ct-vault
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-demo.XXXXXX")
trap 'standin_stop; rm -rf "$work"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting the stand-in vault (TLS, KV v1 + v2, Kubernetes auth, ACL policies, audit log)"
standin_start "$top/tests/standin/demo.json"
echo "vault at $STANDIN_ADDR, CA $STANDIN_CA"

say "Planting a secret whose value is a canary (through the stand-in's control API, never a file)"
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
standin_control POST /_standin/secret \
    "{\"path\":\"secret/app/db\",\"data\":{\"username\":\"app\",\"password\":\"$canary\"}}" >/dev/null
echo "secret/app/db now holds a password of ${#canary} bytes"

say "Minting a service account token for demo/app (what the kubelet projects into a pod)"
standin_jwt demo app vault > "$work/token"
echo "JWT of $(wc -c < "$work/token") bytes at $work/token"

say "The client: $(file -b "$bin" | cut -d, -f1-3), $(stat -c %s "$bin") bytes"
export VAULT_ADDR=$STANDIN_ADDR VAULT_CACERT=$STANDIN_CA VAULT_AUTH_ROLE=demo
export CLOUDTASER_SA_TOKEN_PATH=$work/token
set -x
"$bin" login resolve:secret/app/db read:secret/app/db metadata:secret/app/db read:secret/app/api \
    read:kv/app/legacy lookup renew revoke 2>&1 | tee "$work/client.out"
{ set +x; } 2>/dev/null

say "A service account the role does not allow is refused, and the log line says why"
standin_jwt demo intruder vault > "$work/intruder"
CLOUDTASER_SA_TOKEN_PATH=$work/intruder "$bin" login 2>&1 | tee -a "$work/client.out" || true

say "A vault that answers 503 twice is retried with backoff and jitter"
standin_control POST /_standin/fault '{"match":"/v1/secret/data/app/db","kind":"status","status":503,"count":2}' >/dev/null
"$bin" login read:secret/app/db 2>&1 | tee -a "$work/client.out"

say "What the vault's audit log recorded for the read (values HMAC'd, as Vault's file audit device does)"
grep '"path":"secret/data/app/db"' "$STANDIN_AUDIT" | grep '"type":"response"' | tail -1 | cut -c1-400
echo

say "The wrapper: a workload started by cloudtaser-wrapper with its secret in its environment"
wrapper=$top/build/musl/bin/cloudtaser-wrapper
workload=$top/build/musl/bin/ct-workload
echo "$(basename "$wrapper"): $(stat -c %s "$wrapper") bytes, $(file -b "$wrapper" | cut -d, -f1-2)"
export CLOUDTASER_SECRET_PATHS=secret/app/db CLOUDTASER_ENV_MAP="password=PGPASSWORD,username=PGUSER"
expected=$(printf '%s' "$canary" | sha256sum | cut -d' ' -f1)
echo "the workload prints a SHA-256 of PGPASSWORD; the value planted in vault hashes to $expected"
set -x
"$wrapper" -- "$workload" env-hash PGPASSWORD env-hash PGUSER print-pid wait-file "$work/go" \
    > "$work/wrapper.out" 2> "$work/wrapper.err" &
{ set +x; } 2>/dev/null
wpid=$!
for _ in $(seq 100); do grep -q "^pid" "$work/wrapper.out" 2>/dev/null && break; sleep 0.05; done
cat "$work/wrapper.out"
echo "while it runs, the wrapper (pid $wpid):"
echo "  /proc/$wpid/environ holds the canary: $(tr '\0' '\n' < /proc/$wpid/environ | grep -cF "$canary" || true) times"
echo "  $(grep -E '^(VmLck|VmRSS)' /proc/$wpid/status | tr -s ' \t' ' ' | paste -sd, -)"
touch "$work/go"
wait "$wpid" || true
echo "its log:"
sed 's/^/  /' "$work/wrapper.err"
grep -q "sha256=$expected" "$work/wrapper.out" || { echo "FAIL: the workload did not get the secret" >&2; exit 1; }
echo "the workload's hash matches: it has its secret"

say "A workload asking for a field that is not there never starts (exit 65), and says why"
set +e
CLOUDTASER_ENV_MAP="pasword=PGPASSWORD" "$wrapper" -- "$workload" exit 0 2>&1 | sed 's/^/  /'
rc=${PIPESTATUS[0]}
set -e
echo "exit code: $rc"

say "Checking that the secret value went nowhere but locked memory"
if grep -rqF "$canary" "$work" "$STANDIN_AUDIT"; then
    echo "FAIL: the canary value was found in an output, a log, a file or the audit log" >&2
    exit 1
fi
echo "canary not found in any output, log or file written during the demo, nor in the vault's audit log: OK"
