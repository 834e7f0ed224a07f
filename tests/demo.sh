#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: the vault client end to end against the stand-in vault over TLS, narrated.
# (The wrapper demo joins it when the wrapper lands.)
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

say "Checking that the secret value went nowhere but the client's locked memory"
if grep -rqF "$canary" "$work" "$STANDIN_AUDIT"; then
    echo "FAIL: the canary value was found in the output or the audit log" >&2
    exit 1
fi
echo "canary not found in the client's output, its logs, or the vault's audit log: OK"
