#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: the whole path on real servers, narrated. A Kubernetes cluster on loopback (etcd,
# kube-apiserver, controller-manager, scheduler, a real kubelet with containerd and runc) and
# OpenBao start; the operator is installed as a mutating webhook; a secret is written to OpenBao;
# an annotated Deployment is applied with kubectl; the webhook injects its pod, the kubelet runs
# it, and the workload shows that it has its secret (a hash, never the value). At the end, a check
# proves the canary value is in no log, no file the demo wrote, no Kubernetes object and no etcd
# key. Needs root (the kubelet). DEMO_KEEP=1 leaves everything running and prints how to use it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-demo.XXXXXX")
chmod 755 "$work"
C=$work/cluster
finish() {
    if [ -n "${DEMO_KEEP:-}" ]; then
        echo "left running: source $C/env $C/bao-env; kubectl get pods -A; stop with:"
        echo "  $top/tests/cluster/openbao.sh stop $C; $top/tests/cluster/cluster.sh stop $C"
        return
    fi
    [ -n "${ct_oppid:-}" ] && kill "$ct_oppid" 2> /dev/null
    "$top/tests/cluster/openbao.sh" stop "$C" > /dev/null 2>&1 || true
    "$top/tests/cluster/cluster.sh" stop "$C" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap finish EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (the kubelet and containerd)" >&2; exit 1; }

say "Starting the control plane, a registry, containerd and a real kubelet, on 127.0.0.1"
"$top/tests/cluster/cluster.sh" start "$C" 2>&1 | sed 's/^/  /'
. "$C/env"
kubectl get nodes -o wide | sed 's/^/  /'

say "Starting OpenBao (raft storage, TLS), initialised and unsealed, with Kubernetes auth against this API server"
"$top/tests/cluster/openbao.sh" start "$C" 1 2>&1 | sed 's/^/  /'
"$top/tests/cluster/openbao.sh" k8s-auth "$C" "$C" 2>&1 | sed 's/^/  /'
. "$C/bao-env"
bao() { "$BAO" "$@"; }
bao_policy() { printf '%s\n' "$2" | bao policy write "$1" - > /dev/null; }
T=demo

say "Installing the operator: our images into the cluster's registry, the webhook registered"
. "$top/tests/cluster/pod-lib.sh"
CT_TAG=demo
ct_push_images demo
echo "  images: $(ls "$work/images" | grep -v '\.digest$' | tr '\n' ' ')(OCI layouts, no container daemon)"
kubectl create namespace shop > /dev/null
kubectl label namespace shop ct-e2e=demo > /dev/null
kubectl -n shop create serviceaccount app > /dev/null
ct_operator_account shop
echo "  the operator logs in to OpenBao itself (role demo-operator) and keeps its CA there:"
ct_start_operator demo --registry-insecure "$CT_REGISTRY"
ct_register cloudtaser-operator-webhook Fail demo
echo "  $("$top/build/musl/bin/cloudtaser-operator" --version 2>&1 | head -n 1) serving https://127.0.0.1:$CT_WEBHOOK_PORT/mutate-v1-pod"
kubectl get mutatingwebhookconfigurations | sed 's/^/  /'
echo "  its own credentials, in OpenBao only: $(bao kv list -format=json -mount=secret demo/system | tr -d '\n ')"

say "Writing the secret to OpenBao: a canary password, and a policy and role for shop/app"
canary="CANARY-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf %s "$canary" | bao kv put -mount=secret shop/db username=shop password=- > /dev/null
printf 'path "secret/data/shop/db" { capabilities = ["read"] }\n' | bao policy write shop-db - > /dev/null
bao write auth/kubernetes/role/shop bound_service_account_names=app bound_service_account_namespaces=shop \
    policies=shop-db ttl=15m > /dev/null
expected=$(printf '%s' "$canary" | sha256sum | cut -d' ' -f1)
echo "  secret/shop/db holds a password of ${#canary} bytes, whose SHA-256 is $expected"

say "kubectl apply of an annotated Deployment (no Secret, no sidecar)"
ct_deployment -a vault-role=shop -a secret-paths=secret/data/shop/db -a env-map="password=PGPASSWORD,username=PGUSER" \
    web shop 'command: ["/ct-workload", "env-hash", "PGPASSWORD", "env-hash", "PGUSER", "say", "serving", "sleep", "3600"]' \
    > "$work/web.yaml"
sed -n '/annotations:/,/spec:/p' "$work/web.yaml" | sed '$d;s/^/  /'
kubectl apply -f "$work/web.yaml" | sed 's/^/  /'
ct_wait_running shop web 180 || { kubectl -n shop describe pods | tail -n 30; exit 1; }
pod=$(ct_pod_of shop web)

say "The webhook injected the pod; the kubelet ran the init container and the wrapped workload"
kubectl -n shop get pod "$pod" -o wide | sed 's/^/  /'
kubectl -n shop get pod "$pod" -o jsonpath='  init container: {.spec.initContainers[0].name} ({.spec.initContainers[0].image}), exit {.status.initContainerStatuses[0].state.terminated.exitCode}{"\n"}  app command: {.spec.containers[0].command}{"\n"}  volume: cloudtaser-bin (emptyDir, medium {.spec.volumes[?(@.name=="cloudtaser-bin")].emptyDir.medium}, sizeLimit {.spec.volumes[?(@.name=="cloudtaser-bin")].emptyDir.sizeLimit}){"\n"}'
for _ in $(seq 100); do ct_pod_log shop "$pod" app | grep -q serving && break; sleep 0.2; done

say "What the workload says (its log, through the kubelet): hashes, never values"
ct_pod_log shop "$pod" app | sed -E 's/^[^ ]+ [a-z]+ [A-Z] //; s/^/  /'
ct_pod_log shop "$pod" app | grep -q "env PGPASSWORD sha256=$expected" ||
    { echo "FAIL: the workload did not get its secret" >&2; exit 1; }
echo "  the hash matches the canary's: the workload has its secret"

say "Checking that the canary is nowhere else"
kubectl get all,secrets,configmaps,events,serviceaccounts,mutatingwebhookconfigurations -A -o yaml > "$work/objects.yaml"
curl -sf "$CT_ETCD/v3/kv/range" -d '{"key":"AA==","range_end":"AA=="}' |
    python3 -c 'import base64,json,sys; d=json.load(sys.stdin); kv=d.get("kvs",[]); sys.stdout.buffer.write(b"\n".join(base64.b64decode(k["key"])+b" "+base64.b64decode(k.get("value","")) for k in kv)); print(len(kv), file=sys.stderr)' \
    > "$work/etcd.dump" 2> "$work/etcd.count"
found=0
check() { # WHAT FILES...
    local what=$1
    shift
    if grep -rqaF -- "$canary" "$@" 2> /dev/null; then
        echo "  FOUND in $what"
        found=1
    else
        echo "  not in $what"
    fi
}
check "any Kubernetes object (kubectl get ... -A -o yaml: $(grep -c '^  kind:' "$work/objects.yaml") objects)" "$work/objects.yaml"
check "any etcd key or value ($(cat "$work/etcd.count") keys)" "$work/etcd.dump"
check "etcd's data files" "$C/etcd"
check "the logs of etcd, the API server, the controller-manager, the scheduler, containerd, the kubelet" "$C/logs"
check "the operator's log" "$work/operator.log"
check "the init container's log" "$C"/pod-logs/shop_"$pod"_*/cloudtaser-init
check "the wrapper's log lines" <(ct_pod_log shop "$pod" app | grep cloudtaser-wrapper)
check "OpenBao's logs and files other than its encrypted storage" "$C"/openbao/node*/server.log
check "any other file this demo wrote" "$work"
[ $found = 0 ] || { echo "FAIL: the canary leaked" >&2; exit 1; }
echo "  the canary is only in OpenBao and in the workload's memory: OK"
