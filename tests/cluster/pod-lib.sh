# SPDX-License-Identifier: Apache-2.0
# pod-lib.sh: the steps from our binaries to a running, injected pod on the cluster of
# cluster.sh, shared by the end-to-end tests (tests/e2e/test-real-pod.sh) and the demo.
# Source it with the cluster's env loaded (CT_CLUSTER, CT_REGISTRY, CT_API, CT_CA, KUBECONFIG),
# OpenBao's (BAO_ADDR, BAO_CACERT), `top`, and a work folder in `work`.
#
#   ct_push_images TAG [IMAGE...]  our images (wrapper/init, ct-workload, and the IMAGEs named,
#                                  e.g. cloudtaser-broker), built without a daemon, into the
#                                  cluster's registry; their digests in $work/images/NAME.digest
#   ct_tenant_ns NS                a fresh namespace our webhook serves (labelled ct-e2e=$T) with
#                                  the service account app the pods run as
#   ct_operator_account NS         a service account for the operator, allowed to read secrets and
#                                  service accounts (pull secrets) and namespaces (their Pod
#                                  Security level); its token in $work/operator.jwt
#   ct_start_operator TAG [FLAG...]  the operator on the host, webhook on a free loopback port
#                                  ($CT_WEBHOOK_PORT, health $CT_HEALTH_PORT); waits for /readyz;
#                                  its pid in $ct_oppid, its log $work/operator.log, its CA
#                                  $work/webhook-ca.pem
#   ct_stop_operator
#   ct_register NAME FAILURE-POLICY SELECTOR-LABEL   a MutatingWebhookConfiguration for our webhook,
#                                  namespaces labelled ct-e2e=SELECTOR-LABEL, pods labelled
#                                  cloudtaser.io/inject=true
#   ct_workload KIND NAME NS [REPLICAS]   the head of an apps/v1 workload (stdout) down to its
#                                  selector (its pods' label app: NAME); the spec's other fields
#                                  (template: ...) follow, two spaces in
#   ct_deployment [-a KEY=VALUE]... [-g GRACE] [-s SPEC-LINE] NAME NS CONTAINER-LINE...
#                                  a Deployment (stdout) of one ct-workload pod (service account
#                                  app, host network, grace GRACE s, default 5), its container app
#                                  with CONTAINER-LINEs (command:, env: ...); with -a, injected:
#                                  the annotations cloudtaser.io/inject "true" and each
#                                  cloudtaser.io/KEY VALUE, and the label cloudtaser.io/inject;
#                                  SPEC-LINE: one more field of the Deployment's spec
#   ct_wait_running NS APP SECONDS ct_pod_of NS APP   ct_pod_log NS POD CONTAINER
#   ct_wait_for SECONDS COMMAND... polls COMMAND (quiet) every 0.2 s until it succeeds, for at most
#                                  SECONDS of wall-clock time (a loaded machine makes kubectl slow)
: "${top:?}" "${work:?}"

. "$top/tests/cluster/ports.sh"

ct_push_images() {
    local tag=$1 imgs=$work/images i
    shift
    IMAGE_TAG=$tag "$top/images/build-images.sh" --out "$imgs" --bin "$top/build/musl/bin" --test --no-archive \
        cloudtaser-wrapper ct-workload "$@" > "$work/images.log" 2>&1 || return 1
    for i in cloudtaser-wrapper ct-workload "$@"; do
        IMAGE_TAG=$tag "$top/tests/cluster/cluster.sh" push "$CT_CLUSTER" "$imgs/$i" "$i:$tag" >> "$work/images.log" 2>&1 ||
            return 1
    done
}

ct_tenant_ns() {
    real_ns "$1" && kubectl label namespace "$1" "ct-e2e=$T" > /dev/null &&
        kubectl -n "$1" create serviceaccount app > /dev/null
}

# The operator's service account in namespace $1 (RBAC for pull secrets and namespaces), its
# token, and its own vault login (a Kubernetes auth role and a policy on its records, under the
# test's prefix $T/system: what `cloudtaser source configure` writes for a real install).
CT_OP_NS=
ct_operator_account() {
    CT_OP_NS=$1
    kubectl -n "$1" create serviceaccount operator > /dev/null &&
        kubectl create clusterrole "$1-operator" --verb=get --resource=secrets,serviceaccounts,namespaces > /dev/null &&
        kubectl create clusterrolebinding "$1-operator" --clusterrole="$1-operator" --serviceaccount="$1:operator" > /dev/null &&
        kubectl -n "$1" create token operator --duration=1h > "$work/operator.jwt" &&
        bao_policy "$T-operator" "path \"secret/data/$T/system/*\" { capabilities = [\"create\", \"read\", \"update\"] }
path \"secret/metadata/$T/system/*\" { capabilities = [\"read\"] }" &&
        bao write "auth/kubernetes/role/$T-operator" bound_service_account_names=operator \
            bound_service_account_namespaces="$1" policies="$T-operator" ttl=10m > /dev/null
}

ct_oppid=
ct_start_operator() {
    local tag=$1 i
    shift
    read -r CT_WEBHOOK_PORT CT_HEALTH_PORT CT_METRICS_PORT <<< "$(ct_free_ports 3)"
    "$top/build/musl/bin/cloudtaser-operator" --init-image "$CT_REGISTRY/cloudtaser-wrapper:$tag" \
        --vault-address "$BAO_ADDR" --allowed-vault-addresses "$BAO_ADDR" --vault-ca-file "$BAO_CACERT" \
        --webhook-port "$CT_WEBHOOK_PORT" --webhook-bind-address 127.0.0.1 --webhook-host 127.0.0.1 \
        --health-probe-bind-address "127.0.0.1:$CT_HEALTH_PORT" --metrics-bind-address "127.0.0.1:$CT_METRICS_PORT" \
        --ca-bundle-out "$work/webhook-ca.pem" --webhook-config-name= \
        --vault-role "$T-operator" --vault-jwt-file "$work/operator.jwt" --secret-prefix "$T/system" \
        --namespace "$CT_OP_NS" \
        --kube-server "$CT_API" --kube-ca-file "$CT_CA" --kube-token-file "$work/operator.jwt" \
        "$@" >> "$work/operator.log" 2>&1 &
    ct_oppid=$!
    for i in $(seq 600); do
        curl -sf "http://127.0.0.1:$CT_HEALTH_PORT/readyz" > /dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

ct_stop_operator() {
    [ -n "$ct_oppid" ] && kill "$ct_oppid" 2> /dev/null && wait "$ct_oppid" 2> /dev/null
    ct_oppid=
}

ct_register() {
    kubectl apply -f - > "$work/mwc-$1.out" 2>&1 <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $1}
webhooks:
- name: inject.cloudtaser.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: $2
  timeoutSeconds: 10
  reinvocationPolicy: IfNeeded
  clientConfig:
    url: https://127.0.0.1:$CT_WEBHOOK_PORT/mutate-v1-pod
    caBundle: $(base64 -w0 < "$work/webhook-ca.pem")
  namespaceSelector: {matchLabels: {ct-e2e: "$3"}}
  objectSelector: {matchLabels: {cloudtaser.io/inject: "true"}}
  rules:
  - {operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"]}
  - {operations: ["UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods/ephemeralcontainers"]}
EOF
}

ct_workload() { # KIND NAME NS [REPLICAS]
    printf 'apiVersion: apps/v1\nkind: %s\nmetadata: {name: %s, namespace: %s}\nspec:\n' "$1" "$2" "$3"
    [ -n "${4:-}" ] && printf '  replicas: %s\n' "$4"
    printf '  selector: {matchLabels: {app: %s}}\n' "$2"
}

ct_deployment() { # [-a KEY=VALUE]... [-g GRACE] [-s SPEC-LINE] NAME NS CONTAINER-LINE...
    local ann=() grace=5 spec= a l
    while [ $# -gt 0 ]; do
        case $1 in
        -a) ann+=("$2") ;;
        -g) grace=$2 ;;
        -s) spec=$2 ;;
        *) break ;;
        esac
        shift 2
    done
    ct_workload Deployment "$1" "$2" 1
    [ -n "$spec" ] && printf '  %s\n' "$spec"
    printf '  template:\n    metadata:\n'
    if [ ${#ann[@]} -gt 0 ]; then
        printf '      labels: {app: %s, cloudtaser.io/inject: "true"}\n' "$1"
        printf '      annotations:\n        cloudtaser.io/inject: "true"\n'
        for a in "${ann[@]}"; do printf '        cloudtaser.io/%s: "%s"\n' "${a%%=*}" "${a#*=}"; done
    else
        printf '      labels: {app: %s}\n' "$1"
    fi
    printf '    spec:\n      serviceAccountName: app\n      hostNetwork: true\n'
    printf '      terminationGracePeriodSeconds: %s\n      containers:\n      - name: app\n' "$grace"
    printf '        image: %s/ct-workload:%s\n' "$CT_REGISTRY" "${CT_TAG:-e2e}"
    shift 2
    for l in "$@"; do printf '        %s\n' "$l"; done
}

ct_pod_of() { kubectl -n "$1" get pod -l "app=$2" -o 'jsonpath={.items[0].metadata.name}' 2> /dev/null; }

ct_wait_running() {
    local i p
    for i in $(seq $(($3 * 5))); do
        p=$(ct_pod_of "$1" "$2")
        [ -n "$p" ] && [ "$(kubectl -n "$1" get pod "$p" -o 'jsonpath={.status.phase}' 2> /dev/null)" = Running ] && return 0
        sleep 0.2
    done
    return 1
}

ct_wait_for() {
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        "${@:2}" > /dev/null 2>&1 && return 0
        sleep 0.2
    done
    "${@:2}" > /dev/null 2>&1
}

ct_pod_log() { cat "$CT_CLUSTER"/pod-logs/"$1_$2_"*/"$3"/*.log 2> /dev/null; }
