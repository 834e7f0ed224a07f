# SPDX-License-Identifier: Apache-2.0
# kube.sh: bash helpers to run the stand-in kube-apiserver (tests/standin/kube_apiserver.py) from
# shell e2e tests. Source it, then:
#
#   trap kube_stop EXIT               # or call kube_stop from your own cleanup
#   kube_start [CONFIG.json]          # default config: one user "admin" with a random token
#   kubectl get pods -A               # KUBECONFIG points at the stand-in
#   kube_control POST /_standin/tokenreview '{"token": "x", "user": {"username": "u"}}'
#
# kube_start sets KUBE_ADDR (https://127.0.0.1:PORT), KUBE_CA, KUBE_TOKEN (the admin user's
# token), KUBE_CONTROL (http://127.0.0.1:PORT), KUBE_AUDIT (audit log), KUBE_DIR (private temp
# dir), KUBE_PID and exports KUBECACHEDIR (kubectl's discovery cache, under KUBE_DIR) and KUBECONFIG (KUBE_DIR/kubeconfig: cluster "standin" with the CA
# embedded, user "admin" with the token, context "standin" with namespace "default").
# A config without "users" gets {"admin": {"token": <random>, "groups": ["system:masters"]}};
# with "users", KUBE_TOKEN is the first user's token. The test PKI comes from mkcerts.sh (server
# cert for localhost / 127.0.0.1 / ::1). Everything lives under KUBE_DIR, which kube_stop removes
# (set KUBE_KEEP=1 to keep it for debugging).

_kube_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

kube_start() {
    local config=${1:-}
    KUBE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kube-standin.XXXXXX") || return 1
    bash "$_kube_lib_dir/mkcerts.sh" "$KUBE_DIR/pki" || { echo "kube: mkcerts failed" >&2; return 1; }
    /usr/bin/python3 - "$config" "$KUBE_DIR/config.json" <<'PY' || return 1
import json, os, secrets, sys
src, dst = sys.argv[1:3]
cfg = json.load(open(src)) if src else {}
if not cfg.get("users"):
    cfg["users"] = {"admin": {"token": "kube-admin-" + secrets.token_hex(16),
                              "groups": ["system:masters"]}}
first = next(iter(cfg["users"].values()))
tok = first if isinstance(first, str) else first["token"]
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(cfg, f)
fd = os.open(dst + ".token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write(tok)
PY
    KUBE_TOKEN=$(cat "$KUBE_DIR/config.json.token"); rm -f "$KUBE_DIR/config.json.token"
    KUBE_CA=$KUBE_DIR/pki/ca.pem
    KUBE_AUDIT=$KUBE_DIR/audit.log
    /usr/bin/python3 "$_kube_lib_dir/kube_apiserver.py" --config "$KUBE_DIR/config.json" \
        --listen 127.0.0.1:0 --control-listen 127.0.0.1:0 \
        --tls-cert "$KUBE_DIR/pki/server.pem" --tls-key "$KUBE_DIR/pki/server-key.pem" \
        --ca-cert "$KUBE_CA" --ready-file "$KUBE_DIR/ready.json" --audit-log "$KUBE_AUDIT" \
        2> "$KUBE_DIR/stderr.log" &
    KUBE_PID=$!
    local i
    # A generous deadline: on a loaded machine (make check beside other builds) the Python
    # server's start has been seen to take over 10 s.
    for ((i = 0; i < 1200; i++)); do
        [ -s "$KUBE_DIR/ready.json" ] && break
        if ! kill -0 "$KUBE_PID" 2>/dev/null; then
            echo "kube: kube_apiserver.py exited early:" >&2; cat "$KUBE_DIR/stderr.log" >&2
            return 1
        fi
        sleep 0.05
    done
    if [ ! -s "$KUBE_DIR/ready.json" ]; then
        echo "kube: no ready file after 60s" >&2
        kube_stop
        return 1
    fi
    KUBE_ADDR=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$KUBE_DIR/ready.json")
    KUBE_CONTROL=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_addr"])' "$KUBE_DIR/ready.json")
    KUBECONFIG=$KUBE_DIR/kubeconfig
    KUBECACHEDIR=$KUBE_DIR/kubectl-cache  # kubectl's discovery cache, not ~/.kube/cache
    kube_write_kubeconfig "$KUBECONFIG" "$KUBE_TOKEN" || return 1
    export KUBE_ADDR KUBE_CA KUBE_TOKEN KUBE_CONTROL KUBE_AUDIT KUBE_DIR KUBE_PID KUBECONFIG \
        KUBECACHEDIR
}

# kube_write_kubeconfig FILE TOKEN [NAMESPACE]: a kubeconfig for the running stand-in (mode 0600),
# in the layout kubectl itself writes (tests/fixtures/k8s/kubeconfig-kubectl-generated.yaml).
kube_write_kubeconfig() {
    local file=$1 token=$2 ns=${3:-default}
    (
        umask 077
        cat > "$file" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 < "$KUBE_CA")
    server: $KUBE_ADDR
  name: standin
contexts:
- context:
    cluster: standin
    namespace: $ns
    user: admin
  name: standin
current-context: standin
kind: Config
preferences: {}
users:
- name: admin
  user:
    token: $token
EOF
    )
}

# kube_control METHOD PATH [JSON]: prints the JSON reply; fails on a non-2xx status.
kube_control() {
    local method=$1 path=$2 body=${3:-}
    if [ -n "$body" ]; then
        curl -sS --fail-with-body -X "$method" -H 'Content-Type: application/json' \
            --data-binary "$body" "$KUBE_CONTROL$path"
    else
        curl -sS --fail-with-body -X "$method" "$KUBE_CONTROL$path"
    fi
}

# kube_curl [curl args...] PATH: a request to the API with the admin token; PATH is appended to
# KUBE_ADDR. Prints the body; the HTTP status is in the last line when called with -w.
kube_curl() {
    local path=${*: -1}
    curl -sS --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_TOKEN" "${@:1:$#-1}" "$KUBE_ADDR$path"
}

# kube_stop: SIGTERM, wait up to 5s, then SIGKILL; removes KUBE_DIR. Safe to call twice.
kube_stop() {
    local i
    if [ -n "${KUBE_PID:-}" ] && kill -0 "$KUBE_PID" 2>/dev/null; then
        kill -TERM "$KUBE_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$KUBE_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$KUBE_PID" 2>/dev/null && kill -KILL "$KUBE_PID" 2>/dev/null
        wait "$KUBE_PID" 2>/dev/null
    fi
    KUBE_PID=
    if [ -n "${KUBE_DIR:-}" ] && [ -z "${KUBE_KEEP:-}" ]; then
        rm -rf "$KUBE_DIR"
    fi
    KUBE_DIR=
    return 0
}
