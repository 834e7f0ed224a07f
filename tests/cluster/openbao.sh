#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# openbao.sh: a real OpenBao server (or a raft cluster of several) on loopback, built by
# tests/servers/build.sh, for the end-to-end tests and the demo (docs/cluster.md).
#
#   openbao.sh start DIR [NODES]   start NODES (default 1) OpenBao servers with raft storage and
#                                  TLS listeners, `operator init` (one key share) and unseal each,
#                                  enable KV v2 at secret/ and KV v1 at kv/; write DIR/bao-env
#                                  (BAO_ADDR, BAO_CACERT, BAO_TOKEN=root token, BAO_ADDRS)
#                                  CT_BAO_UNINIT=1: one node, started but left uninitialised
#                                  (for `cloudtaser source install`; BAO_TOKEN is empty)
#   openbao.sh k8s-auth DIR CLUSTER-DIR
#                                  enable the Kubernetes auth method against the cluster started by
#                                  tests/cluster/cluster.sh in CLUSTER-DIR: a reviewer service
#                                  account bound to system:auth-delegator, its JWT from the
#                                  TokenRequest API
#   openbao.sh stop DIR            stop the servers
#   openbao.sh restart-node DIR N  stop node N, start it again and unseal it (a restart under load)
#   openbao.sh seal DIR / unseal DIR    seal or unseal node 1
#
# The unseal key and root token are test material for a throw-away server, kept under DIR (0600).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { sed -n '3,23p' "$0" >&2; exit 64; }
mkdir -p "$D"
D=$(cd "$D" && pwd)
B=$D/openbao

log() { echo "[openbao] $*" >&2; }
die() { log "error: $*"; exit 1; }

. "$here/ports.sh"
free_ports() { ct_free_ports "$@"; }

bao_bin() {
    "$top/tests/servers/build.sh" openbao
    BAO=$("$top/tests/servers/build.sh" --dir openbao)/bin/bao
}

node_bao() { # N ARGS...: the bao CLI against node N
    local n=$1
    shift
    BAO_ADDR="https://127.0.0.1:$(cat "$B/node$n/port")" BAO_CACERT="$B/ca.crt" \
        BAO_TOKEN="$(cat "$B/root-token" 2> /dev/null || true)" "$BAO" "$@"
}

pki() {
    mkdir -p "$B"
    (
        cd "$B"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
            -days 3 -subj /CN=cloudtaser-test-openbao-ca 2> /dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
            -subj /CN=openbao 2> /dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
            -extfile server.ext -out server.crt 2> /dev/null
        rm -f server.csr server.ext
        chmod 600 ca.key server.key
    )
}

# CT_BAO_UNREACHABLE_CLUSTER_ADDR=1: node 1 advertises a cluster address where nothing listens.
# Raft still works (the leader connects to its followers), but a standby cannot forward requests
# to it and answers 307 to the active node's API address instead, as a standby that cannot
# forward does in production.
cluster_addr_of() { # N PORT
    if [ "$1" = 1 ] && [ -n "${CT_BAO_UNREACHABLE_CLUSTER_ADDR:-}" ]; then
        echo "https://127.0.0.1:$(free_ports 1)"
    else
        echo "https://127.0.0.1:$2"
    fi
}

node_config() { # N PORT CLUSTER_PORT
    local n=$1 dir=$B/node$1
    mkdir -p "$dir/raft"
    echo "$2" > "$dir/port"
    {
        cat <<EOF
storage "raft" {
  path    = "$dir/raft"
  node_id = "bao-$n"
EOF
        if [ "$n" -gt 1 ]; then
            cat <<EOF
  retry_join {
    leader_api_addr     = "https://127.0.0.1:$(cat "$B/node1/port")"
    leader_ca_cert_file = "$B/ca.crt"
  }
EOF
        fi
        cat <<EOF
}
listener "tcp" {
  address         = "127.0.0.1:$2"
  cluster_address = "127.0.0.1:$3"
  tls_cert_file   = "$B/server.crt"
  tls_key_file    = "$B/server.key"
}
api_addr     = "https://127.0.0.1:$2"
cluster_addr = "$(cluster_addr_of "$n" "$3")"
ui           = false
log_level    = "warn"
EOF
    } > "$dir/config.hcl"
}

spawn_node() { # N
    local dir=$B/node$1
    setsid "$BAO" server -config="$dir/config.hcl" > "$dir/server.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    local i
    for i in $(seq 150); do
        curl -s --cacert "$B/ca.crt" -o /dev/null "https://127.0.0.1:$(cat "$dir/port")/v1/sys/health" && return 0
        sleep 0.2
    done
    tail -n 20 "$dir/server.log" >&2
    die "node $1 did not listen"
}

unseal_node() { # N
    local i
    node_bao "$1" operator unseal "$(cat "$B/unseal-key")" > /dev/null
    for i in $(seq 150); do
        # 200 active, 429 standby, 473 performance standby: all unsealed.
        case $(curl -s --cacert "$B/ca.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$(cat "$B/node$1/port")/v1/sys/health") in
        200 | 429 | 473) return 0 ;;
        esac
        sleep 0.2
    done
    die "node $1 did not unseal"
}

start() {
    local nodes=${1:-1} n ports
    bao_bin
    rm -rf "$B"
    pki
    read -r -a ports <<< "$(free_ports $((nodes * 2)))"
    for n in $(seq "$nodes"); do
        node_config "$n" "${ports[$(((n - 1) * 2))]}" "${ports[$(((n - 1) * 2 + 1))]}"
    done
    log "$("$BAO" version | head -n 1), $nodes node(s), raft storage, TLS on 127.0.0.1:$(cat "$B/node1/port")"
    spawn_node 1
    if [ -n "${CT_BAO_UNINIT:-}" ]; then
        printf 'export BAO_ADDR=https://127.0.0.1:%s\nexport BAO_CACERT=%s\nexport BAO_TOKEN=\nexport BAO_ADDRS=https://127.0.0.1:%s\nexport BAO=%s\n' \
            "$(cat "$B/node1/port")" "$B/ca.crt" "$(cat "$B/node1/port")" "$BAO" > "$D/bao-env"
        chmod 600 "$D/bao-env"
        log "up, uninitialised: source $D/bao-env"
        return 0
    fi
    node_bao 1 operator init -key-shares=1 -key-threshold=1 -format=json > "$B/init.json"
    chmod 600 "$B/init.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["unseal_keys_b64"][0]); open(sys.argv[3],"w").write(d["root_token"])' \
        "$B/init.json" "$B/unseal-key" "$B/root-token"
    chmod 600 "$B/unseal-key" "$B/root-token"
    unseal_node 1
    wait_active 1
    for n in $(seq 2 "$nodes"); do
        spawn_node "$n"
        unseal_node "$n"
    done
    node_bao 1 secrets enable -path=secret -version=2 kv > /dev/null
    node_bao 1 secrets enable -path=kv -version=1 kv > /dev/null
    local addrs=""
    for n in $(seq "$nodes"); do addrs="$addrs https://127.0.0.1:$(cat "$B/node$n/port")"; done
    cat > "$D/bao-env" <<EOF
export BAO_ADDR=https://127.0.0.1:$(cat "$B/node1/port")
export BAO_CACERT=$B/ca.crt
export BAO_TOKEN=$(cat "$B/root-token")
export BAO_ADDRS="${addrs# }"
export BAO=$BAO
EOF
    chmod 600 "$D/bao-env"
    if [ "$nodes" -gt 1 ]; then
        local i
        for i in $(seq 150); do
            [ "$(node_bao 1 operator raft list-peers -format=json 2> /dev/null |
                python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["config"]["servers"]))' 2> /dev/null)" = "$nodes" ] && break
            sleep 0.2
        done
    fi
    log "up: source $D/bao-env"
}

wait_active() {
    local i
    for i in $(seq 150); do
        [ "$(curl -s --cacert "$B/ca.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$(cat "$B/node$1/port")/v1/sys/health")" = 200 ] && return 0
        sleep 0.2
    done
    die "node $1 did not become active"
}

k8s_auth() { # CLUSTER-DIR
    local C=$1
    bao_bin
    # shellcheck disable=SC1091
    . "$C/env"
    kubectl apply -f - > /dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: openbao-reviewer, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: openbao-reviewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: openbao-reviewer, namespace: kube-system}]
EOF
    kubectl -n kube-system create token openbao-reviewer --duration=24h > "$B/reviewer.jwt"
    chmod 600 "$B/reviewer.jwt"
    node_bao 1 auth enable kubernetes > /dev/null
    node_bao 1 write auth/kubernetes/config kubernetes_host="$CT_API" \
        kubernetes_ca_cert=@"$CT_CA" token_reviewer_jwt=@"$B/reviewer.jwt" disable_local_ca_jwt=true > /dev/null
    log "kubernetes auth configured against $CT_API"
}

stop() {
    local p
    for p in "$B"/node*/pid; do
        [ -f "$p" ] || continue
        kill -TERM "$(cat "$p")" 2> /dev/null || true
    done
    for p in "$B"/node*/pid; do
        [ -f "$p" ] || continue
        for _ in $(seq 50); do kill -0 "$(cat "$p")" 2> /dev/null || break; sleep 0.1; done
        kill -KILL "$(cat "$p")" 2> /dev/null || true
        rm -f "$p"
    done
}

case $cmd in
start) start "${3:-1}" ;;
k8s-auth) k8s_auth "$3" ;;
stop) stop ;;
restart-node)
    bao_bin
    kill -TERM "$(cat "$B/node$3/pid")" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$B/node$3/pid")" 2> /dev/null || break; sleep 0.1; done
    spawn_node "$3"
    unseal_node "$3"
    ;;
seal) bao_bin; node_bao 1 operator seal > /dev/null ;;
unseal) bao_bin; unseal_node 1 ;;
*) die "unknown command $cmd" ;;
esac
