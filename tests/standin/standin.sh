# SPDX-License-Identifier: Apache-2.0
# standin.sh: bash helpers to run the stand-in Vault (tests/standin/vault.py) from shell e2e tests
# and the demo. Source it, then:
#
#   trap standin_stop EXIT            # or call standin_stop from your own cleanup
#   standin_start [CONFIG.json]       # default config: kv v2 "secret", kv v1 "kv", k8s auth
#   curl --cacert "$STANDIN_CA" -H "X-Vault-Token: $STANDIN_ROOT_TOKEN" "$STANDIN_ADDR/v1/..."
#   standin_control POST /_standin/clock '{"advance_seconds": 60}'
#   jwt=$(standin_jwt default app vault)
#
# standin_start sets STANDIN_ADDR (https://127.0.0.1:PORT), STANDIN_CA, STANDIN_CLIENT_CERT,
# STANDIN_CLIENT_KEY, STANDIN_ROOT_TOKEN, STANDIN_CONTROL (http://127.0.0.1:PORT),
# STANDIN_AUDIT (audit log path), STANDIN_DIR (private temp dir), STANDIN_PID.
# A config without "root_token" gets a random one. Everything lives under STANDIN_DIR, which
# standin_stop removes (set STANDIN_KEEP=1 to keep it for debugging).

_standin_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

standin_start() {
    local config=${1:-}
    STANDIN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/standin.XXXXXX") || return 1
    bash "$_standin_lib_dir/mkcerts.sh" "$STANDIN_DIR/pki" || { echo "standin: mkcerts failed" >&2; return 1; }
    STANDIN_ROOT_TOKEN="hvs.root$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    /usr/bin/python3 - "$config" "$STANDIN_DIR/config.json" "$STANDIN_ROOT_TOKEN" <<'PY' || return 1
import json, sys
src, dst, tok = sys.argv[1:4]
cfg = json.load(open(src)) if src else {
    "mounts": [{"path": "secret", "type": "kv", "options": {"version": "2"}},
               {"path": "kv", "type": "kv", "options": {"version": "1"}}],
    "auth": [{"path": "kubernetes", "type": "kubernetes", "roles": {}}]}
cfg.setdefault("root_token", tok)
with open(dst, "w") as f:
    json.dump(cfg, f)
print(cfg["root_token"], file=open(dst + ".root", "w"))
PY
    STANDIN_ROOT_TOKEN=$(cat "$STANDIN_DIR/config.json.root"); rm -f "$STANDIN_DIR/config.json.root"
    STANDIN_CA=$STANDIN_DIR/pki/ca.pem
    STANDIN_CLIENT_CERT=$STANDIN_DIR/pki/client.pem
    STANDIN_CLIENT_KEY=$STANDIN_DIR/pki/client-key.pem
    STANDIN_AUDIT=$STANDIN_DIR/audit.log
    /usr/bin/python3 "$_standin_lib_dir/vault.py" --config "$STANDIN_DIR/config.json" \
        --listen 127.0.0.1:0 --control-listen 127.0.0.1:0 \
        --tls-cert "$STANDIN_DIR/pki/server.pem" --tls-key "$STANDIN_DIR/pki/server-key.pem" \
        --tls-client-ca "$STANDIN_CA" \
        --ready-file "$STANDIN_DIR/ready.json" --audit-log "$STANDIN_AUDIT" \
        2> "$STANDIN_DIR/stderr.log" &
    STANDIN_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s "$STANDIN_DIR/ready.json" ] && break
        if ! kill -0 "$STANDIN_PID" 2>/dev/null; then
            echo "standin: vault.py exited early:" >&2; cat "$STANDIN_DIR/stderr.log" >&2
            return 1
        fi
        sleep 0.05
    done
    if [ ! -s "$STANDIN_DIR/ready.json" ]; then
        echo "standin: no ready file after 10s" >&2
        standin_stop
        return 1
    fi
    STANDIN_ADDR=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$STANDIN_DIR/ready.json")
    STANDIN_CONTROL=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_addr"])' "$STANDIN_DIR/ready.json")
    export STANDIN_ADDR STANDIN_CA STANDIN_CLIENT_CERT STANDIN_CLIENT_KEY STANDIN_ROOT_TOKEN \
        STANDIN_CONTROL STANDIN_AUDIT STANDIN_DIR STANDIN_PID
}

# standin_control METHOD PATH [JSON]: prints the JSON reply; fails on a non-2xx status.
standin_control() {
    local method=$1 path=$2 body=${3:-}
    if [ -n "$body" ]; then
        curl -sS --fail-with-body -X "$method" -H 'Content-Type: application/json' \
            --data-binary "$body" "$STANDIN_CONTROL$path"
    else
        curl -sS --fail-with-body -X "$method" "$STANDIN_CONTROL$path"
    fi
}

# standin_jwt NAMESPACE SERVICE_ACCOUNT [AUDIENCE [TTL]]: a service-account JWT the stand-in accepts.
standin_jwt() {
    local body
    body=$(/usr/bin/python3 -c 'import json,sys
d={"namespace":sys.argv[1],"service_account":sys.argv[2]}
if len(sys.argv)>3 and sys.argv[3]: d["audience"]=sys.argv[3]
if len(sys.argv)>4 and sys.argv[4]: d["ttl"]=int(sys.argv[4])
print(json.dumps(d))' "$@") || return 1
    standin_control POST /_standin/jwt "$body" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["jwt"])'
}

# standin_stop: SIGTERM, wait up to 5s, then SIGKILL; removes STANDIN_DIR. Safe to call twice.
standin_stop() {
    local i
    if [ -n "${STANDIN_PID:-}" ] && kill -0 "$STANDIN_PID" 2>/dev/null; then
        kill -TERM "$STANDIN_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$STANDIN_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$STANDIN_PID" 2>/dev/null && kill -KILL "$STANDIN_PID" 2>/dev/null
        wait "$STANDIN_PID" 2>/dev/null
    fi
    STANDIN_PID=
    if [ -n "${STANDIN_DIR:-}" ] && [ -z "${STANDIN_KEEP:-}" ]; then
        rm -rf "$STANDIN_DIR"
    fi
    STANDIN_DIR=
    return 0
}
