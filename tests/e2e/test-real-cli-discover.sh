#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cloudtaser target discover` on the real kube-apiserver: two namespaces with every shape of
# Secret use (secretKeyRef, envFrom with a prefix, secret and projected volumes, init
# containers), a Vault Agent and a Bank-Vaults workload, one already injected, one using no
# Secret, and one in kube-public; listed with a page size of 2 (the real limit/continue across
# kinds and namespaces).
#   - the plan lists exactly what tests/fixtures/cli/discover-expected.yaml says (createdAt,
#     createdBy and the per-run namespace prefix masked);
#   - kube-public is skipped, the injected and the Secret-free workloads are absent;
#   - a canary Secret value appears nowhere: not in the plan, stdout or stderr;
#   - the lists asked for in JSON (--api-encoding json) give the same plan as in protobuf;
#   - -o json: the summary on stdout, machine-readable;
#   - as a service account that may list workloads but not read Secrets: the plan is still
#     written, the envFrom entry has a note;
#   - a kubeconfig that does not exist: exit 78 (EX_CONFIG).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster
. "$top/tests/cluster/pod-lib.sh"
ct=$top/build/asan/bin/cloudtaser
a=$T-a
b=$T-b
cleanup_discover() {
    kubectl delete namespace "$a" "$b" --wait=false > /dev/null 2>&1
    kubectl -n kube-public delete deployment "$T-sys" --ignore-not-found > /dev/null 2>&1
    real_cleanup
}
trap cleanup_discover EXIT

canary="canary-$(rand_hex 16)"
real_ns "$a" && real_ns "$b" &&
    kubectl -n "$a" create secret generic db --from-literal=password="$canary" \
        --from-literal=user="u-$canary" > /dev/null &&
    kubectl -n "$a" create secret generic api-keys --from-literal=token="$canary" \
        --from-literal=id=x > /dev/null &&
    kubectl -n "$a" create secret generic tls --from-literal=tls.crt="$canary" \
        --from-literal=tls.key="$canary" > /dev/null
ok $? "namespaces $a and $b, Secrets holding a canary value"

# replicas 0 (and a DaemonSet that fits no node): nothing runs, the API server has the objects.
{
    ct_workload Deployment web "$a" 0
    cat <<EOF
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
      - name: migrate
        image: busybox
        env:
        - {name: DB_USER, valueFrom: {secretKeyRef: {name: db, key: user}}}
      containers:
      - name: web
        image: busybox
        env:
        - {name: PLAIN, value: x}
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
        envFrom:
        - {prefix: API_, secretRef: {name: api-keys}}
        volumeMounts:
        - {name: tls, mountPath: /etc/tls}
        - {name: bundle, mountPath: /etc/bundle}
      volumes:
      - {name: tls, secret: {secretName: tls}}
      - name: bundle
        projected:
          sources:
          - secret: {name: db, items: [{key: password, path: pw}]}
---
EOF
    ct_workload StatefulSet store "$a" 0
    cat <<EOF
  serviceName: store
  template:
    metadata: {labels: {app: store}}
    spec:
      containers:
      - name: store
        image: busybox
        env:
        - {name: STORE_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
---
EOF
    ct_workload DaemonSet agent "$a"
    cat <<EOF
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {ct-e2e-no-such-node: "true"}
      containers:
      - name: agent
        image: busybox
        envFrom:
        - secretRef: {name: db}
---
EOF
    ct_workload Deployment injected "$a" 0
    cat <<EOF
  template:
    metadata:
      labels: {app: injected}
      annotations: {cloudtaser.io/inject: "true"}
    spec:
      containers:
      - name: c
        image: busybox
        env:
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
---
EOF
    ct_workload Deployment plain "$a" 0
    cat <<EOF
  template:
    metadata: {labels: {app: plain}}
    spec:
      containers:
      - {name: c, image: busybox, env: [{name: A, value: b}]}
---
EOF
    ct_workload Deployment orders "$b" 0
    cat <<EOF
  template:
    metadata:
      labels: {app: orders}
      annotations:
        vault.hashicorp.com/agent-inject: "true"
        vault.hashicorp.com/role: orders
        vault.hashicorp.com/agent-inject-secret-db: secret/data/orders/db
        vault.hashicorp.com/agent-inject-template-db: |
          {{- with secret "secret/data/orders/db" -}}
          postgres://{{ .Data.data.username }}:{{ .Data.data.password }}@db/orders
          {{- end }}
    spec:
      containers:
      - {name: c, image: busybox}
---
EOF
    ct_workload Deployment billing "$b" 0
    cat <<EOF
  template:
    metadata:
      labels: {app: billing}
      annotations:
        vault.security.banzaicloud.io/vault-addr: https://vault:8200
        vault.security.banzaicloud.io/vault-role: billing
    spec:
      containers:
      - name: c
        image: busybox
        env:
        - {name: AWS_SECRET_ACCESS_KEY, value: "vault:secret/data/accounts/aws#AWS_SECRET_ACCESS_KEY"}
---
EOF
    ct_workload Deployment "$T-sys" kube-public 0
    cat <<EOF
  template:
    metadata: {labels: {app: $T-sys}}
    spec:
      containers:
      - name: c
        image: busybox
        env:
        - {name: X, valueFrom: {secretKeyRef: {name: db, key: password}}}
EOF
} | kubectl apply -f - > "$work/apply.log" 2>&1
ok $? "workloads applied (Deployments, a StatefulSet, a DaemonSet; kube-public too)" ||
    sed 's/^/# /' "$work/apply.log"

# The whole cluster, two objects per request: the plan's tenants of this test are compared.
"$ct" target discover -A --cluster e2e --page-size 2 -o "$work/plan.yaml" \
    > "$work/out" 2> "$work/err"
ok $? "discover -A exits 0" || sed 's/^/# /' "$work/err"
grep -q "^wrote $work/plan.yaml: " "$work/out"
ok $? "and says what it wrote" || sed 's/^/# /' "$work/out"
[ ! -s "$work/err" ]
ok $? "quiet on stderr when it is not a terminal" || sed 's/^/# /' "$work/err"

# This test's tenants, with the volatile fields masked and the prefix made constant.
ours() {
    awk -v a="$a" -v b="$b" '
        /^- name: / { keep = ($3 == a || $3 == b) }
        /^tenants:/ { print; inlist = 1; next }
        !inlist || keep { print }' "$1" |
        sed -e "s/$T-/T-/g" -e 's/^  createdAt: .*/  createdAt: MASKED/' \
            -e 's/^  createdBy: .*/  createdBy: MASKED/'
}
ours "$work/plan.yaml" > "$work/ours.yaml"
diff -u "$top/tests/fixtures/cli/discover-expected.yaml" "$work/ours.yaml" > "$work/diff"
ok $? "the plan lists exactly the expected Secret uses and injectors" || sed 's/^/# /' "$work/diff"
grep -q "^  createdAt: \"20[0-9-]*T[0-9:]*Z\"$" "$work/plan.yaml"
ok $? "createdAt is an RFC 3339 time"
! grep -q -e "$T-sys" -e 'namespace: kube-' "$work/plan.yaml"
ok $? "kube-public (and the other system namespaces) skipped"
! grep -q -e 'name: injected' -e 'name: plain' "$work/ours.yaml"
ok $? "the injected workload and the one without Secrets are not in the plan"
! grep -rqF "$canary" "$work/plan.yaml" "$work/out" "$work/err"
ok $? "the canary Secret value appears nowhere (plan, stdout, stderr)"

# The workload lists come in protobuf (cli/discover-pb); the same lists asked for in JSON give the
# same plan: the protobuf field numbers are the real API server's.
"$ct" target discover -A --cluster e2e --api-encoding json -o "$work/plan-json.yaml" \
    > "$work/out" 2> "$work/err"
ok $? "discover -A --api-encoding json exits 0" || sed 's/^/# /' "$work/err"
ours "$work/plan-json.yaml" > "$work/ours-json.yaml"
diff -u "$work/ours.yaml" "$work/ours-json.yaml" > "$work/diff-json"
ok $? "the plan from JSON lists is the plan from protobuf lists" || sed 's/^/# /' "$work/diff-json"

"$ct" target discover -n "$a" --cluster e2e -o json > "$work/summary.json" 2> "$work/err"
ok $? "-o json exits 0" || sed 's/^/# /' "$work/err"
python3 - "$work/summary.json" "$a" << 'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["cluster"] == "e2e", s
assert s["workloads"] == 3 and s["alreadyInjected"] == 1, s
assert [t["namespace"] for t in s["tenants"]] == [sys.argv[2]], s
assert s["tenants"][0]["workloads"] == 3 and s["withNotes"] == 1, s
EOF
ok $? "the JSON summary: one namespace, 3 workloads, 1 already injected, 1 with a note" ||
    sed 's/^/# /' "$work/summary.json"
! grep -qF "$canary" "$work/summary.json"
ok $? "no canary in the summary"

# A service account that may list workloads in $a but not read Secrets.
kubectl -n "$a" create serviceaccount lister > /dev/null &&
    kubectl -n "$a" create role lister --verb=list --resource=deployments.apps,statefulsets.apps,daemonsets.apps > /dev/null &&
    kubectl -n "$a" create rolebinding lister --role=lister --serviceaccount="$a:lister" > /dev/null
ok $? "a service account that lists workloads only"
token=$(kube_token "$a" lister)
cat > "$work/lister.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$CT_API", certificate-authority: "$CT_CA"}}]
users: [{name: u, user: {token: "$token"}}]
contexts: [{name: lister, context: {cluster: c, user: u, namespace: $a}}]
current-context: lister
EOF
"$ct" target discover --kubeconfig "$work/lister.kubeconfig" -o "$work/lister.yaml" \
    > "$work/out" 2> "$work/err"
ok $? "discover without the right to read Secrets still writes the plan" || sed 's/^/# /' "$work/err"
grep -q "envFrom Secret 'api-keys': its key names could not be read (forbidden)" "$work/lister.yaml" &&
    grep -q '^  cluster: lister$' "$work/lister.yaml" &&
    grep -q "^- name: $a$" "$work/lister.yaml"
ok $? "the envFrom entries say why they have no fields; the context's namespace and name" ||
    sed 's/^/# /' "$work/lister.yaml"
! grep -rqF -e "$canary" -e "$token" "$work/lister.yaml" "$work/out" "$work/err"
ok $? "neither the canary nor the token appears"

"$ct" target discover --kubeconfig "$work/none.kubeconfig" -o "$work/x.yaml" > /dev/null 2>&1
ok $(($? != 78)) "a kubeconfig that does not exist: exit 78 (EX_CONFIG)"
"$ct" target discover -n "$a" -A > /dev/null 2>&1
ok $(($? != 64)) "-n with --all-namespaces: exit 64 (EX_USAGE)"
[ ! -e "$work/x.yaml" ]
ok $? "and no plan written"

tap_done
