#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The install manifests (deploy/, docs/install.md) on the real servers:
#   - every manifest (base, the default install, overlays ha and fallback) validated by the real
#     API server (kubectl apply --dry-run=server), `kubectl apply -f deploy/base/` too (that the
#     plain files and the kustomize build are the same objects: tests/e2e/test-deploy.sh);
#   - the OpenBao policy and role of deploy/openbao/ on the real OpenBao: the operator's projected
#     token (audience vault) logs in and may write its own prefix, nothing else;
#   - `kubectl apply -k` of the test overlay (tests/e2e/install/: deploy/base plus what the test
#     cluster needs) installs the operator; its pod becomes Ready on the real kubelet (probes);
#     the base's pod template passes Pod Security restricted (the PodSecurity admission);
#   - a labelled pod in a test namespace is admitted through the Service and the registered
#     MutatingWebhookConfiguration (the API server resolves the Service's endpoint), injected,
#     and Running with its secret from OpenBao; with no replica left, failurePolicy Fail refuses it;
#   - no Secret of ours (vault backend); the least-privilege RBAC with kubectl auth can-i;
#   - `kubectl delete -k` removes everything.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin inst
sys=cloudtaser-system
sa=system:serviceaccount:$sys:cloudtaser-operator
rns=$T-restricted
real_gone_ns+=("$rns")
ov=$work/overlay
real_at_exit() { # what the install made
    kubectl delete -k "$ov" --ignore-not-found --wait=false > /dev/null 2>&1
    kubectl delete -f "$top/deploy/overlays/fallback/secret-rbac.yaml" --ignore-not-found > /dev/null 2>&1
    bao kv metadata delete -mount=secret "cloudtaser/system/$T-probe" > /dev/null 2>&1
}

# --- the images, by digest (deploy/set-images.sh) ------------------------------------------------
imgs=$work/images
IMAGE_TAG=e2e "$top/images/build-images.sh" --out "$imgs" --bin "$top/build/musl/bin" --test --no-archive \
    cloudtaser-operator cloudtaser-wrapper ct-workload > "$work/images.log" 2>&1 &&
    for i in cloudtaser-operator cloudtaser-wrapper ct-workload; do
        IMAGE_TAG=e2e "$top/tests/cluster/cluster.sh" push "$CT_CLUSTER" "$imgs/$i" "$i:e2e" || exit 1
    done >> "$work/images.log" 2>&1
ok $? "the operator's, the init container's and the workload's images pushed to the cluster's registry" ||
    sed 's/^/# /' "$work/images.log"

# --- every manifest validated by the real API server ---------------------------------------------
# Before the install only the namespace: a server-side dry run of the namespaced objects needs it
# to exist, so they are validated after the install (below).
kubectl apply --dry-run=server -f "$top/deploy/base/00-namespace.yaml" > "$work/dry-ns.out" 2>&1
ok $? "the API server validates deploy/base/00-namespace.yaml" || sed 's/^/# /' "$work/dry-ns.out"
out=$(kubectl apply --dry-run=client -f "$top/deploy/base/" 2>&1)
[ $? -eq 0 ] && [ "$(grep -c 'created (dry run)' <<< "$out")" -eq 11 ]
ok $? "kubectl apply -f deploy/base/ (client dry run): its 11 objects" || diag "$out"

# --- OpenBao: the policy and role of deploy/openbao/ ---------------------------------------------
pol=$T-cloudtaser-operator
# The commands of docs/install.md, under this test's names (the role's policy renamed with it).
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["token_policies"]=[sys.argv[2]]; print(json.dumps(r))' \
    "$top/deploy/openbao/cloudtaser-operator-role.json" "$pol" > "$work/role.json" &&
    bao policy write "$pol" "$top/deploy/openbao/cloudtaser-operator.hcl" > "$work/bao-policy.out" 2>&1 &&
    bao write "auth/kubernetes/role/$pol" "@$work/role.json" >> "$work/bao-policy.out" 2>&1 &&
    [ "$(bao read -field=audience "auth/kubernetes/role/$pol" 2>> "$work/bao-policy.out")" = vault ]
ok $? "OpenBao takes deploy/openbao/cloudtaser-operator.hcl and cloudtaser-operator-role.json" ||
    sed 's/^/# /' "$work/bao-policy.out"

# --- install with kubectl apply -k ---------------------------------------------------------------
read -r wport hport mport <<< "$(ct_free_ports 3)"
api_host=${CT_API#https://}
api_port=${api_host##*:}
api_host=${api_host%:*}
mkdir -p "$ov"
cp "$BAO_CACERT" "$ov/ca.crt"
sed -e "s#@DEPLOY@#$(realpath --relative-to="$ov" "$top/deploy")#" -e "s#@VAULT_ADDRESS@#$BAO_ADDR#g" \
    -e "s#@WEBHOOK_PORT@#$wport#g" -e "s#@HEALTH_PORT@#$hport#g" -e "s#@METRICS_PORT@#$mport#g" \
    -e "s#@API_HOST@#$api_host#g" -e "s#@API_PORT@#$api_port#g" -e "s#@NS_LABEL@#$T#g" \
    -e "s#@VAULT_ROLE@#$pol#g" \
    "$top/tests/e2e/install/kustomization.yaml.in" > "$ov/kustomization.yaml"
"$top/deploy/set-images.sh" --digests "$imgs" "$CT_REGISTRY" "$ov" > "$work/set-images.out" 2>&1 &&
    kubectl kustomize "$ov" > "$work/overlay.yaml" 2> "$work/set-images.out" &&
    grep -qF "image: $CT_REGISTRY/cloudtaser-operator@$(cat "$imgs/cloudtaser-operator.digest")" "$work/overlay.yaml" &&
    grep -qF "init-image: $CT_REGISTRY/cloudtaser-wrapper@$(cat "$imgs/cloudtaser-wrapper.digest")" "$work/overlay.yaml"
ok $? "deploy/set-images.sh points the test overlay at the pushed images by digest" || sed 's/^/# /' "$work/set-images.out"

kubectl apply -k "$ov" > "$work/apply.out" 2>&1
ok $? "kubectl apply -k of the test overlay" || sed 's/^/# /' "$work/apply.out"
kubectl -n "$sys" rollout status deployment/cloudtaser-operator --timeout=120s > "$work/rollout.out" 2>&1
ok $? "the operator's pod becomes Ready on the real kubelet (readiness probe /readyz)" ||
    { kubectl -n "$sys" describe pods 2>&1 | tail -n 40; cat "$CT_CLUSTER"/pod-logs/"$sys"_*/operator/*.log 2> /dev/null | tail -n 20; } | sed 's/^/# /'
op_pod=$(kubectl -n "$sys" get pod -l app.kubernetes.io/name=cloudtaser-operator -o 'jsonpath={.items[0].metadata.name}')
kubectl -n "$sys" get pod "$op_pod" -o json > "$work/op-pod.json"
python3 - "$work/op-pod.json" > "$work/op-pod.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
s = p["spec"]
c = s["containers"][0]
sc = c["securityContext"]
cs = p["status"]["containerStatuses"][0]
bad = []
def want(cond, what):
    if not cond:
        bad.append(what)
want(s["securityContext"].get("runAsNonRoot") is True and s["securityContext"].get("runAsUser") == 65532, "pod runs as 65532, non-root")
want(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
want(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
want(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
want(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
want(s.get("automountServiceAccountToken") is False, "no default token mount")
srcs = {v["name"]: v for v in s["volumes"]}
kt = srcs["kube-api-access"]["projected"]["sources"][0]["serviceAccountToken"]
vt = srcs["vault-token"]["projected"]["sources"][0]["serviceAccountToken"]
want(kt.get("audience") in (None, "") and vt.get("audience") == "vault", "projected tokens: API server's, and audience vault")
want(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", "probes")
want(cs["ready"] is True and cs["restartCount"] == 0, "ready, never restarted")
want(c["image"].split("@")[1].startswith("sha256:"), "image by digest")
print("; ".join(bad) if bad else "hardened")
sys.exit(1 if bad else 0)
EOF
ok $? "the running pod: non-root, read-only root, no capabilities, seccomp, projected tokens, probes, image by digest" ||
    sed 's/^/# /' "$work/op-pod.check"

# The operator (the leader) patches the caBundle itself, with the CA it keeps in OpenBao.
for i in $(seq 100); do
    kubectl get mutatingwebhookconfiguration cloudtaser-operator-webhook \
        -o 'jsonpath={.webhooks[0].clientConfig.caBundle}' 2> /dev/null | base64 -d > "$work/cabundle.pem" 2> /dev/null
    [ -s "$work/cabundle.pem" ] && break
    sleep 0.2
done
bao kv get -mount=secret -field=ca.crt cloudtaser/system/webhook-tls > "$work/vault-ca.pem" 2> "$work/cabundle.out" &&
    cmp -s "$work/cabundle.pem" "$work/vault-ca.pem" &&
    openssl s_client -connect "127.0.0.1:$wport" -servername cloudtaser-operator-webhook.cloudtaser-system.svc \
        -verify_hostname cloudtaser-operator-webhook.cloudtaser-system.svc -CAfile "$work/cabundle.pem" \
        -verify_return_error < /dev/null >> "$work/cabundle.out" 2>&1
ok $? "the operator set the webhook's caBundle to its CA in OpenBao, which verifies what it serves" ||
    tail -n 5 "$work/cabundle.out" | sed 's/^/# /'

# --- a labelled pod, admitted through the Service ------------------------------------------------
secret="canary-$(rand_hex 16)"
bao kv put -mount=secret "$T/db" password="$secret" > /dev/null &&
    bao_policy "$T-db" "path \"secret/data/$T/db\" { capabilities = [\"read\"] }" &&
    bao write "auth/kubernetes/role/$T-app" bound_service_account_names=app \
        bound_service_account_namespaces="$ns" policies="$T-db" ttl=10m > /dev/null &&
    ct_tenant_ns "$ns"
ok $? "a test namespace, its service account, and its secret, policy and role in OpenBao"
pod_yaml() { # NAME
    cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $ns
  labels: {cloudtaser.io/inject: "true"}
  annotations:
    cloudtaser.io/inject: "true"
    cloudtaser.io/vault-role: $T-app
    cloudtaser.io/secret-paths: secret/data/$T/db
    cloudtaser.io/env-map: password=PGPASSWORD
spec:
  serviceAccountName: app
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: $CT_REGISTRY/ct-workload:e2e
    command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]
EOF
}
metric() { curl -sf "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
before=$(metric 'cloudtaser_admission_requests_total{outcome="injected"}')
pod_yaml web | kubectl apply -f - > "$work/apply-web.out" 2>&1
ok $? "kubectl apply of a labelled pod in the test namespace" || sed 's/^/# /' "$work/apply-web.out"
kubectl -n "$ns" get pod web -o json > "$work/web.json" 2>&1
python3 - "$work/web.json" > "$work/web.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
s = p["spec"]
ok = (p["metadata"]["annotations"].get("cloudtaser.io/injected") == "true"
      and s["initContainers"][0]["name"] == "cloudtaser-init"
      and "/cloudtaser-wrapper@sha256:" in s["initContainers"][0]["image"]
      and s["containers"][0]["command"][:2] == ["/cloudtaser/wrapper", "--"])
print("injected" if ok else "not injected: " + json.dumps(s)[:2000])
sys.exit(0 if ok else 1)
EOF
ok $? "the stored pod is injected: init container cloudtaser-init from the image by digest, wrapped command" ||
    sed 's/^/# /' "$work/web.check"
after=$(metric 'cloudtaser_admission_requests_total{outcome="injected"}')
[ -n "$after" ] && [ "${after%.*}" -gt "${before:-0}" ] &&
    [ "$(kubectl get mutatingwebhookconfiguration cloudtaser-operator-webhook -o 'jsonpath={.webhooks[0].clientConfig.service.name}:{.webhooks[0].clientConfig.service.port}:{.webhooks[0].clientConfig.url}')" = "cloudtaser-operator-webhook:443:" ]
ok $? "the installed operator made that patch, called through the Service (no url in the registration)" ||
    diag "injected before=$before after=$after"
for i in $(seq 600); do
    ct_pod_log "$ns" web app | grep -q workload-ready && break
    sleep 0.2
done
ct_pod_log "$ns" web app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"
ok $? "the pod runs, wrapped, with its secret from OpenBao (the operator's --vault-ca-file from a ConfigMap)" ||
    { kubectl -n "$ns" describe pod web | tail -n 20; ct_pod_log "$ns" web app; ct_pod_log "$ns" web cloudtaser-init; } | sed 's/^/# /'

# --- nothing of ours in Secrets --------------------------------------------------------------------
kubectl get secrets -A -o json > "$work/secrets.json" 2>&1
# Other tests share the cluster (two run the fallback backend: a cloudtaser-operator-certs Secret,
# labelled part-of cloudtaser, in their own namespaces): ours is in cloudtaser-system or the
# test's namespace, or holds the canary.
python3 - "$work/secrets.json" "$secret" "$ns" > "$work/secrets.check" 2>&1 <<'EOF'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
ours = [i["metadata"]["namespace"] + "/" + i["metadata"]["name"] for i in items
        if i["metadata"]["namespace"] in ("cloudtaser-system", sys.argv[3]) or sys.argv[2] in json.dumps(i)]
print("ours: " + ", ".join(ours) if ours else "none")
sys.exit(1 if ours else 0)
EOF
ok $? "kubectl get secrets -A: not one Secret of ours" || sed 's/^/# /' "$work/secrets.check"

# --- least privilege ---------------------------------------------------------------------------------
can() { # yes|no VERB RESOURCE [FLAGS...]
    local want=$1 got
    shift
    got=$(kubectl auth can-i --as="$sa" "$@" 2> /dev/null)
    [ "$got" = "$want" ] || { diag "can-i $* as the operator: $got, want $want"; return 1; }
}
can yes patch mutatingwebhookconfigurations/cloudtaser-operator-webhook &&
    can yes get mutatingwebhookconfigurations/cloudtaser-operator-webhook &&
    can no patch mutatingwebhookconfigurations/another-webhook &&
    can no list mutatingwebhookconfigurations &&
    can no create mutatingwebhookconfigurations &&
    can no patch validatingwebhookconfigurations/cloudtaser-operator-webhook
ok $? "RBAC: the operator may get and patch its own MutatingWebhookConfiguration, no other"
can no list secrets -A && can no watch secrets -A && can no list secrets -n "$sys" &&
    can no create secrets -n "$sys" && can no update secrets/cloudtaser-operator-certs -n "$sys" &&
    can yes get secrets -n "$ns"
ok $? "RBAC (vault backend): no Secret listed, watched, created or written; get by name only (pull secrets)"
can yes get namespaces && can no list namespaces && can no patch namespaces &&
    can no list pods -A && can no create pods -n "$ns" && can yes create events -n "$ns" &&
    can no delete events -n "$ns"
ok $? "RBAC: namespaces get (Pod Security level), events create; nothing more on pods, namespaces or events"
can yes get leases/cloudtaser-operator-leader -n "$sys" && can yes update leases/cloudtaser-operator-leader -n "$sys" &&
    can yes create leases -n "$sys" && can no update leases/another-lease -n "$sys" &&
    can no update leases/cloudtaser-operator-leader -n "$ns" && can no delete leases/cloudtaser-operator-leader -n "$sys"
ok $? "RBAC: the named Lease in cloudtaser-system only (get, update; create)"
kubectl apply -f "$top/deploy/overlays/fallback/secret-rbac.yaml" > "$work/fallback-rbac.out" 2>&1 &&
    can yes get secrets/cloudtaser-operator-certs -n "$sys" && can yes update secrets/cloudtaser-operator-certs -n "$sys" &&
    can yes create secrets -n "$sys" && can no update secrets/another -n "$sys" && can no delete secrets/cloudtaser-operator-certs -n "$sys" &&
    can no list secrets -n "$sys" && can no update secrets/cloudtaser-operator-certs -n "$ns"
ok $? "RBAC of the fallback overlay: its one Secret in cloudtaser-system, by name (create aside), not listed" ||
    sed 's/^/# /' "$work/fallback-rbac.out"
kubectl delete -f "$top/deploy/overlays/fallback/secret-rbac.yaml" > /dev/null 2>&1

# --- every manifest, server-side --------------------------------------------------------------------
for m in "-f $top/deploy/base/" "-k $top/deploy" "-k $top/deploy/overlays/ha" "-k $top/deploy/overlays/fallback"; do
    # shellcheck disable=SC2086
    out=$(kubectl apply --dry-run=server $m 2>&1)
    ok $? "the real API server validates kubectl apply ${m/$top\//}" || diag "$out"
done
kubectl kustomize "$top/deploy/overlays/ha" > "$work/ha.yaml" && kubectl kustomize "$top/deploy/overlays/fallback" > "$work/fallback.yaml"
grep -q '^  replicas: 3$' "$work/ha.yaml" && grep -q -- '- --leader-elect$' "$work/ha.yaml" &&
    grep -q -- '- --secret-backend=kubernetes$' "$work/fallback.yaml" && ! grep -q -- '--secret-backend=vault' "$work/fallback.yaml" &&
    grep -q 'cloudtaser-operator-certs' "$work/fallback.yaml" && ! grep -q 'cloudtaser-operator-certs' "$work/overlay.yaml"
ok $? "overlays: ha has 3 replicas with --leader-elect; fallback the kubernetes backend and its Secret's RBAC, the default neither"

# --- OpenBao: the operator's own token, through the role ----------------------------------------
jwt=$(kube_token "$sys" cloudtaser-operator vault)
vtok=$(bao write -field=token "auth/kubernetes/login" role="$pol" jwt="$jwt" 2> "$work/login.err")
[ -n "$vtok" ]
ok $? "the operator's service account (audience vault) logs in through the role" || sed 's/^/# /' "$work/login.err"
as_op() { BAO_TOKEN=$vtok bao "$@"; }
as_op kv put -mount=secret "cloudtaser/system/$T-probe" k=v > /dev/null 2>&1 &&
    [ "$(as_op kv get -mount=secret -field=k "cloudtaser/system/$T-probe" 2> /dev/null)" = v ] &&
    as_op kv metadata get -mount=secret "cloudtaser/system/$T-probe" > /dev/null 2>&1 &&
    as_op kv metadata delete -mount=secret "cloudtaser/system/$T-probe" > /dev/null 2>&1
ok $? "its policy: create, read and delete under secret/cloudtaser/system/"
! as_op kv get -mount=secret "$T/db" > /dev/null 2>&1 && ! as_op kv put -mount=secret "$T/other" k=v > /dev/null 2>&1 &&
    ! as_op kv list -mount=secret cloudtaser/system > /dev/null 2>&1
ok $? "its policy: no pod's secret, nothing outside its prefix, no listing"
! bao write -field=token "auth/kubernetes/login" role="$pol" jwt="$(kube_token "$sys" cloudtaser-operator)" > /dev/null 2>&1 &&
    ! bao write -field=token "auth/kubernetes/login" role="$pol" jwt="$(kube_token "$ns" app vault)" > /dev/null 2>&1
ok $? "the role refuses a token for the API server's audience, and another service account's"
bao delete "auth/kubernetes/role/$pol" > /dev/null 2>&1
bao policy delete "$pol" > /dev/null 2>&1

# --- the base's pod passes Pod Security restricted, as its namespace enforces ------------------
# (The test overlay relaxes that namespace for hostNetwork: here the base's own pod template, as
# a Pod, in a namespace enforcing restricted, with the API server's PodSecurity admission.)
real_ns "$rns" && kubectl label namespace "$rns" pod-security.kubernetes.io/enforce=restricted > /dev/null &&
    python3 - "$top/deploy" "$rns" > "$work/restricted-pod.json" 2> "$work/restricted.out" <<'EOF'
import json, sys, yaml, subprocess
docs = yaml.safe_load_all(subprocess.run(["kubectl", "kustomize", sys.argv[1]], check=True, capture_output=True, text=True).stdout)
d = next(d for d in docs if d and d["kind"] == "Deployment")
spec = d["spec"]["template"]["spec"]
spec["serviceAccountName"] = "default"
print(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": sys.argv[2]}, "spec": spec}))
EOF
out=$(kubectl apply --dry-run=server -f "$work/restricted-pod.json" 2>&1)
[ $? -eq 0 ] && ! grep -qi 'violate' <<< "$out"
ok $? "the base's operator pod is admitted where Pod Security restricted is enforced" || diag "$out" "$(cat "$work/restricted.out")"
kubectl delete namespace "$rns" --wait=false > /dev/null 2>&1

# --- failurePolicy Fail through the Service: no replica, no pod ----------------------------------
kubectl -n "$sys" scale deployment/cloudtaser-operator --replicas=0 > /dev/null &&
    kubectl -n "$sys" wait --for=delete pod/"$op_pod" --timeout=60s > /dev/null 2>&1
out=$(pod_yaml refused | kubectl apply -f - 2>&1)
[ $? -ne 0 ] && ! kubectl -n "$ns" get pod refused > /dev/null 2>&1 && grep -q 'inject.cloudtaser.io' <<< "$out"
ok $? "no replica serving: failurePolicy Fail refuses the labelled pod" || diag "$out"
out=$(kubectl -n "$ns" run unlabelled --image="$CT_REGISTRY/ct-workload:e2e" --restart=Never --dry-run=server -o name 2>&1)
ok $? "... and an unlabelled pod is not sent to the webhook at all" || diag "$out"

# --- kubectl delete -k ---------------------------------------------------------------------------
kubectl -n "$ns" delete pod web --wait=false > /dev/null 2>&1
kubectl delete -k "$ov" --wait=true --timeout=120s > "$work/delete.out" 2>&1
ok $? "kubectl delete -k of the test overlay" || sed 's/^/# /' "$work/delete.out"
left=$(kubectl get namespace/$sys clusterrole/cloudtaser-operator clusterrolebinding/cloudtaser-operator \
    mutatingwebhookconfiguration/cloudtaser-operator-webhook --ignore-not-found -o name 2>&1)
[ -z "$left" ]
ok $? "nothing is left: namespace, cluster role and binding, webhook registration" || diag "$left"

tap_done
