#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cluster.sh: a one-node Kubernetes cluster on loopback, from the real servers built by
# tests/servers/build.sh, for the end-to-end tests and the demo (docs/cluster.md).
#
#   cluster.sh start DIR     start etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
#                            a registry (docker-registry), containerd and the kubelet; wait until
#                            the node is Ready; write DIR/env (source it: KUBECONFIG, REGISTRY...)
#   cluster.sh stop DIR      stop everything started under DIR (pods, containers, servers)
#   cluster.sh push DIR OCI-LAYOUT NAME:TAG   copy an image into the cluster's registry
#
# Everything listens on 127.0.0.1 on ports picked free at start; all state is under DIR (certs,
# etcd data, logs in DIR/logs/). Needs root (the kubelet and containerd manage namespaces,
# mounts and cgroups). Pods that must reach servers on the host's loopback (OpenBao, the webhook)
# use hostNetwork; the others get a bridge network (CNI) in their own network namespaces.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { sed -n '3,14p' "$0" >&2; exit 64; }
mkdir -p "$D"
D=$(cd "$D" && pwd)
NODE=ct-node

log() { echo "[cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

. "$here/ports.sh"
free_ports() { ct_free_ports "$@"; }

wait_for() { # SECONDS WHAT CMD...: polls CMD every 0.2 s
    local limit=$1 what=$2 i=0
    shift 2
    while ! "$@" > /dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge $((limit * 5)) ]; then
            log "$what did not come up within ${limit} s"
            return 1
        fi
        sleep 0.2
    done
}

spawn() { # NAME CMD...: starts a server in the background, its pid in DIR/pids/NAME
    local name=$1
    shift
    mkdir -p "$D/pids" "$D/logs"
    setsid "$@" > "$D/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$D/pids/$name"
}

kubeconfig() { # FILE USER CERT KEY
    cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ct
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $D/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $3
    client-key: $4
contexts:
- name: ct
  context: {cluster: ct, user: $2}
current-context: ct
EOF
}

pki() {
    local p=$D/pki
    mkdir -p "$p"
    cd "$p"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
        -days 3 -subj /CN=cloudtaser-test-cluster-ca 2> /dev/null
    openssl genrsa -out sa.key 2048 2> /dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2> /dev/null
    leaf() { # NAME SUBJECT [SAN]
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2> /dev/null
        if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\n' "$3" > "$1.ext"; else : > "$1.ext"; fi
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile "$1.ext" -out "$1.crt" 2> /dev/null
        rm -f "$1.csr" "$1.ext"
    }
    leaf apiserver /CN=kube-apiserver \
        "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    leaf admin "/O=system:masters/CN=cluster-admin"
    leaf kcm /CN=system:kube-controller-manager
    leaf scheduler /CN=system:kube-scheduler
    leaf kubelet "/O=system:nodes/CN=system:node:$NODE"
    leaf kubelet-serving "/CN=$NODE" "IP:127.0.0.1,DNS:$NODE,DNS:localhost"
    leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    chmod 600 ./*.key
    cd - > /dev/null
}

containerd_config() {
    mkdir -p "$D/containerd/certs.d/127.0.0.1:$REG_PORT" "$D/cni/net.d"
    cat > "$D/containerd/certs.d/127.0.0.1:$REG_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REG_PORT"
[host."http://127.0.0.1:$REG_PORT"]
  capabilities = ["pull", "resolve"]
EOF
    cat > "$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
[grpc]
  address = "$D/containerd/containerd.sock"
[ttrpc]
  address = "$D/containerd/containerd.sock.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "127.0.0.1:$REG_PORT/ct-pause:1"
  enable_selinux = false
  # The sandbox we run in withholds CAP_SYS_RESOURCE: an OOM score below containerd's own (the
  # kubelet asks -998 for pod sandboxes) cannot be set, and runc's create would fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${CT_SNAPSHOTTER:-overlayfs}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$D/containerd/certs.d"
EOF
    # A bridge for pods without hostNetwork. The addresses live in the pods' own network
    # namespaces and on the bridge this cluster creates; nothing is routed off the machine.
    cat > "$D/cni/net.d/10-ct.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ct",
  "plugins": [
    {"type": "bridge", "bridge": "ct0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]],
              "dataDir": "$D/cni/ipam"}},
    {"type": "loopback"}
  ]
}
EOF
}

kubelet_config() {
    mkdir -p "$D/kubelet"
    cat > "$D/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $D/pki/kubelet-serving.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $D/pki/ca.crt}
authorization: {mode: Webhook}
# This machine's kernel mounts cgroup v1 (with a cgroup2 hierarchy beside it).
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
# Without CAP_SYS_RESOURCE (see containerd_config) the kubelet cannot lower its own OOM score.
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$D/containerd/containerd.sock
staticPodPath: ""
clusterDomain: cluster.local
clusterDNS: []
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
maxPods: 50
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
registerNode: true
podCIDR: 10.244.0.0/24
# Container logs are read from here (nothing connects to the kubelet's port: the node address
# cannot be loopback, so the API server's calls to the kubelet, kubectl logs/exec, are not used).
podLogsDir: $D/pod-logs
EOF
}

start() {
    [ "$(id -u)" -eq 0 ] || die "the kubelet and containerd need root"
    local bin
    "$top/tests/servers/build.sh" etcd kube
    bin=$("$top/tests/servers/build.sh" --dir kube)/bin
    ETCD=$("$top/tests/servers/build.sh" --dir etcd)/bin/etcd
    read -r ETCD_PORT ETCD_PEER API_PORT REG_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT <<< "$(free_ports 6)"
    rm -rf "$D"/{pki,etcd,logs,pids,containerd,kubelet,cni,registry}
    pki

    log "etcd $("$ETCD" --version | head -n 1 | awk '{print $3}') on 127.0.0.1:$ETCD_PORT"
    mkdir -p "$D/etcd"
    spawn etcd "$ETCD" --name ct --data-dir "$D/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster "ct=http://127.0.0.1:$ETCD_PEER" --unsafe-no-fsync --log-level warn
    wait_for 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

    log "$("$bin/kube-apiserver" --version) on 127.0.0.1:$API_PORT"
    # --enable-aggregator-routing: this cluster has no kube-proxy, so no cluster IP is reachable;
    # with it the API server calls a webhook's Service at one of its endpoints (EndpointSlices)
    # rather than at the cluster IP, as tests/e2e/test-real-install.sh needs (docs/cluster.md).
    spawn kube-apiserver "$bin/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
        --tls-cert-file="$D/pki/apiserver.crt" --tls-private-key-file="$D/pki/apiserver.key" \
        --client-ca-file="$D/pki/ca.crt" \
        --kubelet-client-certificate="$D/pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$D/pki/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$D/pki/ca.crt" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --authorization-mode=Node,RBAC \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$D/pki/sa.pub" --service-account-signing-key-file="$D/pki/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --endpoint-reconciler-type=none \
        --enable-aggregator-routing=true \
        --allow-privileged=true \
        --profiling=false --v=1
    wait_for 90 kube-apiserver curl -sf --cacert "$D/pki/ca.crt" "https://127.0.0.1:$API_PORT/readyz"

    kubeconfig "$D/admin.kubeconfig" cluster-admin "$D/pki/admin.crt" "$D/pki/admin.key"
    kubeconfig "$D/kcm.kubeconfig" system:kube-controller-manager "$D/pki/kcm.crt" "$D/pki/kcm.key"
    kubeconfig "$D/scheduler.kubeconfig" system:kube-scheduler "$D/pki/scheduler.crt" "$D/pki/scheduler.key"
    kubeconfig "$D/kubelet.kubeconfig" "system:node:$NODE" "$D/pki/kubelet.crt" "$D/pki/kubelet.key"

    spawn kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$D/kcm.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
        --use-service-account-credentials=true \
        --controllers=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,replicaset-controller,deployment-controller,statefulset-controller,daemonset-controller,job-controller,endpointslice-controller,node-lifecycle-controller,pod-garbage-collector-controller,disruption-controller,ttl-controller \
        --service-account-private-key-file="$D/pki/sa.key" --root-ca-file="$D/pki/ca.crt" \
        --service-cluster-ip-range=10.0.0.0/24 --cluster-cidr=10.244.0.0/16 --allocate-node-cidrs=false \
        --concurrent-deployment-syncs=2 --v=1
    spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig="$D/scheduler.kubeconfig" \
        --authentication-kubeconfig="$D/scheduler.kubeconfig" --authorization-kubeconfig="$D/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --v=1

    log "docker-registry on 127.0.0.1:$REG_PORT"
    mkdir -p "$D/registry/data"
    cat > "$D/registry/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $D/registry/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$REG_PORT}
EOF
    spawn registry docker-registry serve "$D/registry/config.yml"
    wait_for 30 registry curl -sf "http://127.0.0.1:$REG_PORT/v2/"
    IMAGE_TAG=1 "$top/images/build-images.sh" --out "$D/images" --bin "$top/build/musl/bin" --test --no-archive ct-pause > /dev/null
    IMAGE_TAG=1 push_image "$D/images/ct-pause" ct-pause:1

    containerd_config
    log "containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
    spawn containerd containerd --config "$D/containerd/config.toml"
    wait_for 30 containerd test -S "$D/containerd/containerd.sock"

    kubelet_config
    log "$("$bin/kubelet" --version | sed 's/Kubernetes/kubelet/') on 127.0.0.1:$KUBELET_PORT"
    spawn kubelet "$bin/kubelet" --config="$D/kubelet/config.yaml" --kubeconfig="$D/kubelet.kubeconfig" \
        --root-dir="$D/kubelet/root" --cert-dir="$D/kubelet/pki" \
        --hostname-override="$NODE" --v=1

    cat > "$D/env" <<EOF
export KUBECONFIG=$D/admin.kubeconfig
export CT_CLUSTER=$D
export CT_API=https://127.0.0.1:$API_PORT
export CT_ETCD=http://127.0.0.1:$ETCD_PORT
export CT_CA=$D/pki/ca.crt
export CT_REGISTRY=127.0.0.1:$REG_PORT
export CT_NODE=$NODE
EOF
    export KUBECONFIG=$D/admin.kubeconfig
    if ! wait_for 120 "node $NODE" node_ready; then
        kubectl get nodes -o wide >&2 || true
        tail -n 30 "$D/logs/kubelet.log" >&2
        die "the kubelet did not register a Ready node (logs in $D/logs)"
    fi
    wait_for 60 "default service account" kubectl -n default get serviceaccount default
    log "cluster up: KUBECONFIG=$D/admin.kubeconfig (source $D/env)"
}

node_ready() {
    [ "$(kubectl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2> /dev/null)" = True ]
}

push_image() { # OCI-LAYOUT NAME:TAG (the layout's tag is $IMAGE_TAG)
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
        "oci:$1:${IMAGE_TAG:-latest}" "docker://127.0.0.1:$REG_PORT/$2"
}

stop() {
    local name pid
    # The kubelet first (so it does not restart what we stop), then every container, then the rest.
    for name in kubelet kube-scheduler kube-controller-manager; do
        stop_one "$name"
    done
    if [ -S "$D/containerd/containerd.sock" ]; then
        local ctr=(ctr --address "$D/containerd/containerd.sock" --namespace k8s.io)
        for t in $("${ctr[@]}" tasks list -q 2> /dev/null); do
            "${ctr[@]}" tasks kill -s SIGKILL "$t" > /dev/null 2>&1 || true
        done
        sleep 0.5
        for t in $("${ctr[@]}" tasks list -q 2> /dev/null); do
            "${ctr[@]}" tasks delete -f "$t" > /dev/null 2>&1 || true
        done
    fi
    for name in containerd registry kube-apiserver etcd; do
        stop_one "$name"
    done
    # containerd-shim processes of this cluster, and mounts left under DIR.
    pkill -KILL -f "containerd-shim-runc-v2 .*-address $D/containerd" 2> /dev/null || true
    grep -o " $D/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
    ip link del ct0 2> /dev/null || true
}

stop_one() {
    local f=$D/pids/$1 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2> /dev/null || true
    rm -f "$f"
}

case $cmd in
start) start ;;
stop) stop ;;
push)
    # shellcheck disable=SC1091
    . "$D/env"
    REG_PORT=${CT_REGISTRY##*:}
    push_image "$3" "$4"
    ;;
*) die "unknown command $cmd" ;;
esac
