#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers, the whole path: cloudtaser-operator registered in a real
# MutatingWebhookConfiguration (caBundle from --ca-bundle-out); `kubectl apply` of an annotated
# Deployment; the real controller-manager creates the pod; the real kube-apiserver calls our
# webhook over TLS and applies our patch; the real kubelet, with containerd and runc, pulls our
# images from the cluster's registry, runs the init container (which copies the wrapper into the
# in-memory volume) and the wrapped workload, which logs in to OpenBao with the pod's projected
# service-account token (real TokenReview) and gets its secret. `kubectl get pod` shows Running.
#   - the workload's log has the secret's hash, never its value; no Kubernetes object holds it;
#   - an image without `command`: the operator reads its entrypoint from the cluster's registry;
#   - `kubectl apply --dry-run=server`: the webhook answers, nothing is stored;
#   - a second webhook beside ours, with reinvocation: the pod still starts, injected once;
#   - the webhook down: failurePolicy Fail refuses the pod, Ignore admits it uninjected.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin shop
real_gone_mwcs+=("$T-second")

ct_push_images e2e
ok $? "our images built without a daemon and pushed to the cluster's registry" || sed 's/^/# /' "$work/images.log"

secret="canary-$(rand_hex 16)"
bao kv put -mount=secret "$T/db" password="$secret" > /dev/null &&
    bao_policy "$T-db" "path \"secret/data/$T/db\" { capabilities = [\"read\"] }" &&
    bao write "auth/kubernetes/role/$T-app" bound_service_account_names=app \
        bound_service_account_namespaces="$ns" policies="$T-db" ttl=10m > /dev/null
ok $? "OpenBao: secret, policy and Kubernetes auth role"

ct_tenant_ns "$ns" && ct_operator_account "$ns"
ok $? "namespace $ns, service accounts, the operator's RBAC and token"

ct_start_operator e2e --registry-insecure "$CT_REGISTRY"
ok $? "the operator is ready" || sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "MutatingWebhookConfiguration registered with the operator's CA" || sed 's/^/# /' "$work/mwc-$T-inject.out"

run_cmd='command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]'
deployment() {
    ct_deployment -a vault-role="$T-app" -a secret-paths="secret/data/$T/db" -a env-map=password=PGPASSWORD \
        "$1" "$ns" "${2:-$run_cmd}"
}
pod_of() { ct_pod_of "$ns" "$1"; }
wait_running() { ct_wait_running "$ns" "$1" "$2"; }
pod_log() { ct_pod_log "$ns" "$1" "$2"; }

deployment web | kubectl apply -f - > "$work/apply-web.out" 2>&1
ok $? "kubectl apply of an annotated Deployment" || sed 's/^/# /' "$work/apply-web.out"
wait_running web 120
ok $? "the pod is Running (controller-manager, scheduler, webhook, kubelet, containerd, runc)" ||
    { kubectl -n "$ns" describe pods > "$work/describe.txt" 2>&1; tail -n 40 "$work/describe.txt" | sed 's/^/# /'; }
p=$(pod_of web)
kubectl -n "$ns" get pod "$p" -o json > "$work/web-pod.json"
python3 - "$work/web-pod.json" > "$work/web-pod.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
s = p["spec"]
c = s["containers"][0]
ok = (p["metadata"]["annotations"].get("cloudtaser.io/injected") == "true"
      and s["initContainers"][0]["name"] == "cloudtaser-init"
      and c["command"][:2] == ["/cloudtaser/wrapper", "--"]
      and p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0)
print("injected" if ok else "not injected: " + json.dumps(s)[:2000])
sys.exit(0 if ok else 1)
EOF
ok $? "the stored pod is injected, and its init container exited 0" || sed 's/^/# /' "$work/web-pod.check"
for i in $(seq 100); do pod_log "$p" app | grep -q workload-ready && break; sleep 0.2; done
pod_log "$p" app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"
ok $? "the workload has its secret from OpenBao (its hash in the pod's log)" || { pod_log "$p" app; pod_log "$p" cloudtaser-init; } | sed 's/^/# /'

# --- kubectl debug: an ephemeral container may not mount the wrapper's volume (it could replace
# the wrapper the app container runs at its next restart); one without that mount is added.
eph() { # NAME MOUNTS-JSON
    kubectl -n "$ns" patch pod "$p" --subresource=ephemeralcontainers --type=strategic \
        -p "{\"spec\":{\"ephemeralContainers\":[{\"name\":\"$1\",\"image\":\"$CT_REGISTRY/ct-workload:e2e\",\"command\":[\"/ct-workload\",\"say\",\"debug\"],\"volumeMounts\":$2}]}}" 2>&1
}
out=$(eph dbg1 '[{"name":"cloudtaser-bin","mountPath":"/w"}]')
[ $? -ne 0 ] && grep -q 'may not mount it' <<< "$out"
ok $? "an ephemeral container mounting the wrapper's volume is refused by the webhook" || diag "$out"
out=$(eph dbg2 '[]')
ok $? "an ephemeral container without that mount is added (kubectl debug still works)" || diag "$out"

# --- an image without command: the entrypoint comes from the registry
deployment noentry 'args: ["env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]' | kubectl apply -f - > "$work/apply-noentry.out" 2>&1
wait_running noentry 120
p2=$(pod_of noentry)
for i in $(seq 100); do pod_log "$p2" app | grep -q workload-ready && break; sleep 0.2; done
pod_log "$p2" app | grep -q "env PGPASSWORD sha256=$(sha "$secret")" &&
    [ "$(kubectl -n "$ns" get pod "$p2" -o 'jsonpath={.spec.containers[0].command}')" = '["/cloudtaser/wrapper","--","/ct-workload"]' ]
ok $? "a container without command: the entrypoint is read from the cluster's registry" ||
    { kubectl -n "$ns" get pod "$p2" -o 'jsonpath={.spec.containers[0].command}'; echo; pod_log "$p2" app; } | sed 's/^/# /'

# --- --dry-run=server: the webhook runs, nothing is stored
cat > "$work/dry.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: dry
  namespace: $ns
  labels: {cloudtaser.io/inject: "true"}
  annotations: {cloudtaser.io/inject: "true", cloudtaser.io/vault-role: $T-app, cloudtaser.io/secret-paths: secret/data/$T/db}
spec:
  serviceAccountName: app
  containers: [{name: app, image: "$CT_REGISTRY/ct-workload:e2e", command: ["/ct-workload"]}]
EOF
out=$(kubectl apply --dry-run=server -f "$work/dry.yaml" -o 'jsonpath={.spec.containers[0].command}' 2>&1)
[ "$out" = '["/cloudtaser/wrapper","--","/ct-workload"]' ] && ! kubectl -n "$ns" get pod dry > /dev/null 2>&1
ok $? "kubectl apply --dry-run=server: the answer is injected, nothing is stored" || diag "$out"

# --- Pod Security: namespaces that enforce baseline and restricted admit the injected pod (the
# webhook adds no IPC_LOCK there, and says so); the API server's PodSecurity check runs on
# --dry-run=server too. A restricted pod must be restricted itself; our init container is.
for level in baseline restricted; do
    pns=$T-pss-$level
    real_ns "$pns" && kubectl label namespace "$pns" "ct-e2e=$T" "pod-security.kubernetes.io/enforce=$level" > /dev/null &&
        kubectl -n "$pns" create serviceaccount app > /dev/null
    sed "s/__NS__/$pns/; s|__ROLE__|$T-app|; s|__PATH__|secret/data/$T/db|; s|__IMAGE__|$CT_REGISTRY/ct-workload:e2e|" > "$work/pss-$level.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: pss
  namespace: __NS__
  labels: {cloudtaser.io/inject: "true"}
  annotations: {cloudtaser.io/inject: "true", cloudtaser.io/vault-role: __ROLE__, cloudtaser.io/secret-paths: __PATH__}
spec:
  serviceAccountName: app
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: "__IMAGE__"
    command: ["/ct-workload"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
EOF
    out=$(kubectl apply --dry-run=server -f "$work/pss-$level.yaml" -o 'jsonpath={.spec.containers[0].command} {.spec.containers[0].securityContext.capabilities.add}' 2> "$work/pss-$level.err")
    [ "$out" = '["/cloudtaser/wrapper","--","/ct-workload"] ' ]
    ok $? "a namespace enforcing Pod Security $level admits the injected pod, without IPC_LOCK" || diag "$out" "$(cat "$work/pss-$level.err")"
    grep -q "enforces Pod Security $level" "$work/pss-$level.err"
    ok $? "kubectl prints the webhook's warning for $level" || diag "$(cat "$work/pss-$level.err")"
    kubectl delete namespace "$pns" --wait=false > /dev/null 2>&1
done

# --- a second webhook beside ours, reinvocation IfNeeded: it adds an env var, ours runs again
ct_register "$T-second" Fail "$T"
ok $? "a second registration of the webhook (reinvocation beside another webhook)"
deployment twice | kubectl apply -f - > "$work/apply-twice.out" 2>&1
wait_running twice 120
p3=$(pod_of twice)
n=$(kubectl -n "$ns" get pod "$p3" -o json | python3 -c 'import json,sys; s=json.load(sys.stdin)["spec"]; print(sum(1 for c in s["initContainers"] if c["name"]=="cloudtaser-init"), sum(1 for v in s["volumes"] if v["name"]=="cloudtaser-bin"))')
[ "$n" = "1 1" ]
ok $? "called twice (two registrations), the pod is injected exactly once and Running" || diag "init/volumes: $n"
kubectl delete mutatingwebhookconfiguration "$T-second" > /dev/null

# --- the webhook down: Fail refuses, Ignore admits uninjected
ct_stop_operator
out=$(kubectl apply -f "$work/dry.yaml" 2>&1)
[ $? -ne 0 ] && ! kubectl -n "$ns" get pod dry > /dev/null 2>&1
ok $? "webhook down, failurePolicy Fail: the pod is refused" || diag "$out"
ct_register "$T-inject" Ignore "$T"
out=$(kubectl apply -f "$work/dry.yaml" 2>&1)
[ $? -eq 0 ] && [ "$(kubectl -n "$ns" get pod dry -o 'jsonpath={.spec.containers[0].command}')" = '["/ct-workload"]' ]
ok $? "webhook down, failurePolicy Ignore: the pod is admitted, not injected" || diag "$out"
kubectl -n "$ns" delete pod dry --wait=false > /dev/null 2>&1

# --- the canary is nowhere in the cluster's objects, in the operator's log or in etcd
kubectl get all,secrets,configmaps,events,serviceaccounts -A -o yaml > "$work/objects.yaml" 2>&1
! grep -qF "$secret" "$work/objects.yaml" "$work/operator.log"
ok $? "the secret's value is in no Kubernetes object and not in the operator's log"
! grep -rqaF "$secret" "$CT_CLUSTER/etcd" "$CT_CLUSTER/pod-logs" "$CT_CLUSTER/logs"
ok $? "the secret's value is in no etcd file, no pod log and no server log"

tap_done
