#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers, the broker mode as installed (issue 15): the webhook admits a
# broker-mode pod, the real kubelet runs it, and its wrapper reads its secret through
# cloudtaser-broker running from its image as a pod, with the credentials the operator itself
# wrote into OpenBao. Nothing hand-made between the two halves.
#   - the real cloudtaser-operator (on the host, as in test-real-modes.sh) writes broker-tls,
#     broker-auth and broker-token under its prefix; with --broker-address https://<node>:<port>
#     and --broker-host <node> (this cluster has no DNS: the Service's name leads nowhere),
#     broker-tls's server certificate names the node's address as an iPAddress SAN;
#   - deploy/openbao/cloudtaser-broker.hcl and cloudtaser-broker-role.json on OpenBao (under this
#     test's names): the broker's projected token (audience vault) logs in, reads its three
#     records and nothing else of the operator's (webhook-tls, with the CA key, is denied);
#   - deploy/broker/ (kubectl kustomize, then only what this cluster needs: the test's names,
#     one replica on the host network on a free port, the API server's own address, the test
#     OpenBao's CA) with the cloudtaser-broker image pushed to the cluster's registry by digest:
#     its pod becomes Ready on the real kubelet (tcp probes), logs in to OpenBao as service
#     account cloudtaser-broker and serves broker-tls (openssl verifies the node's address);
#   - `kubectl apply` of a Deployment with cloudtaser.io/vault-auth-method: broker: the webhook
#     injects it (the projected token of audience cloudtaser-broker, the broker's address and
#     broker-tls's CA, cloudtaser.io/broker-mac); the pod runs on the real kubelet with its
#     canary from OpenBao through the broker (the wrapper verifies the broker by the IP SAN);
#     the broker's audit lines name the pod;
#   - a Deployment whose pods ask for another namespace's path: admitted (its MAC is valid), but
#     refused by the broker at the session (namespace confinement); the workload never starts
#     (fail closed), exit 77 in the pod's status and the refusal in its log;
#   - the operator restarted with one more --broker-host name: broker-tls is issued again with
#     exactly the new set, and the broker's pod swaps it in without a restart (its reload
#     interval shortened to 2 s): openssl verifies the new name;
#   - neither canary in any log (operator, broker, pods) nor in any Kubernetes object of the
#     test's namespaces.
# The broker's pod uses the host network (OpenBao and the API server listen on the host's
# loopback) on a port picked free, so it runs beside other tests on the shared cluster.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster
. "$top/tests/cluster/pod-lib.sh"
ns=$T-bpod    # the operator's and the broker's namespace
apps=$T-bapps # the workloads'
other=$T-bother
cleanup_broker_pod() {
    ct_stop_operator
    kubectl delete mutatingwebhookconfiguration "$T-inject" --ignore-not-found > /dev/null 2>&1
    kubectl delete clusterrolebinding,clusterrole "$ns-operator" "$ns-cloudtaser-broker" --ignore-not-found > /dev/null 2>&1
    kubectl delete namespace "$ns" "$apps" --ignore-not-found --wait=false > /dev/null 2>&1
    real_cleanup
}
trap cleanup_broker_pod EXIT

# --- the images: the init container's, the workload's, the broker's ------------------------------
ct_push_images e2e cloudtaser-broker
ok $? "the init container's, the workload's and the broker's images pushed to the cluster's registry" ||
    sed 's/^/# /' "$work/images.log"

# The node's address: where host-network pods listen, and what the pods' wrappers dial.
node_ip=$(kubectl get nodes -o 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}')
read -r bport <<< "$(ct_free_ports 1)"
baddr=https://$node_ip:$bport
[ -n "$node_ip" ] && [ -n "$bport" ]
ok $? "the broker's address: $baddr (the node's InternalIP, a free port)"

# --- the operator ----------------------------------------------------------------------------------
real_ns "$ns" && real_ns "$apps" && kubectl label namespace "$apps" "ct-e2e=$T" > /dev/null &&
    kubectl -n "$apps" create serviceaccount app > /dev/null && ct_operator_account "$ns"
ok $? "namespaces $ns and $apps, the app's service account, the operator's RBAC, token and vault role"
ct_start_operator e2e --broker-address "$baddr" --broker-host "$node_ip"
ok $? "the operator is ready with --broker-address $baddr --broker-host $node_ip" ||
    sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "MutatingWebhookConfiguration registered" || sed 's/^/# /' "$work/mwc-$T-inject.out"

prefix=$T/system
has_records() {
    bao kv get -mount=secret -field=server.crt "$prefix/broker-tls" > "$work/server.crt" 2> /dev/null &&
        bao kv get -mount=secret -field=ca.crt "$prefix/broker-tls" > "$work/broker-ca.pem" 2> /dev/null &&
        bao kv get -mount=secret -field=key "$prefix/broker-auth" > /dev/null 2>&1 &&
        bao kv get -mount=secret -field=token "$prefix/broker-token" > /dev/null 2>&1
}
ct_wait_for 60 has_records
ok $? "the operator wrote broker-tls, broker-auth and broker-token under secret/$prefix"
sans=$(openssl x509 -in "$work/server.crt" -noout -ext subjectAltName 2>&1)
grep -q "IP Address:$node_ip\(,\|$\)" <<< "$sans" && grep -q "DNS:cloudtaser-broker.$ns.svc\(,\|$\)" <<< "$sans" &&
    ! grep -q "DNS:$node_ip" <<< "$sans"
ok $? "broker-tls's server certificate: the Service's names, and $node_ip as an iPAddress SAN (--broker-host)" ||
    diag "$sans"

# --- OpenBao: the broker's policy and role from deploy/openbao/ ----------------------------------
secret="canary-$(rand_hex 16)"
theirs="theirs-$(rand_hex 16)"
bao kv put -mount=secret "$apps/db" password="$secret" > /dev/null &&
    bao kv put -mount=secret "$other/db" password="$theirs" > /dev/null
ok $? "the app's canary and another namespace's secret in OpenBao"
sed "s#secret/data/cloudtaser/system/#secret/data/$prefix/#g" "$top/deploy/openbao/cloudtaser-broker.hcl" > "$work/broker.hcl" &&
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["token_policies"]=[sys.argv[2]]; r["bound_service_account_namespaces"]=[sys.argv[3]]; print(json.dumps(r))' \
        "$top/deploy/openbao/cloudtaser-broker-role.json" "$T-broker" "$ns" > "$work/broker-role.json" &&
    bao policy write "$T-broker" "$work/broker.hcl" > "$work/broker-policy.out" 2>&1 &&
    bao write "auth/kubernetes/role/$T-broker" "@$work/broker-role.json" >> "$work/broker-policy.out" 2>&1
ok $? "OpenBao takes deploy/openbao/cloudtaser-broker.hcl and cloudtaser-broker-role.json (under this test's names)" ||
    sed 's/^/# /' "$work/broker-policy.out"

# The manifests' objects, with only what this cluster needs changed (see the header).
img="$CT_REGISTRY/cloudtaser-broker@$(cat "$work/images/cloudtaser-broker.digest")"
api_host=${CT_API#https://}
api_port=${api_host##*:}
api_host=${api_host%:*}
kubectl kustomize "$top/deploy/broker" > "$work/broker-base.yaml" 2> "$work/broker-manifests.out" &&
    python3 - "$work/broker-base.yaml" "$ns" "$T" "$img" "$node_ip" "$bport" "$api_host" "$api_port" \
        > "$work/broker.json" 2>> "$work/broker-manifests.out" <<'EOF'
import json, sys, yaml
src, ns, t, img, node_ip, port, api_host, api_port = sys.argv[1:]
items = []
for d in yaml.safe_load_all(open(src)):
    if not d:
        continue
    m = d["metadata"]
    if "namespace" in m:
        m["namespace"] = ns
    if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        m["name"] = ns + "-cloudtaser-broker"  # cluster-wide names: one per test
    if d["kind"] == "ClusterRoleBinding":
        d["roleRef"]["name"] = ns + "-cloudtaser-broker"
        for s in d["subjects"]:
            s["namespace"] = ns
    if d["kind"] == "Deployment":
        d["spec"]["replicas"] = 1  # one node: host-network replicas would share the port
        p = d["spec"]["template"]["spec"]
        p["hostNetwork"] = True
        p["dnsPolicy"] = "ClusterFirstWithHostNet"
        c = p["containers"][0]
        c["image"] = img
        repl = {"--listen": "--listen=%s:%s" % (node_ip, port),
                "--vault-role": "--vault-role=%s-broker" % t,
                "--records-prefix": "--records-prefix=secret/%s/system" % t,
                "--reload-interval": "--reload-interval=2"}
        c["args"] = [repl.get(a.split("=", 1)[0], a) for a in c["args"]]
        c["args"].append("--vault-ca-file=/etc/cloudtaser/vault-ca/ca.crt")
        c["ports"] = [{"name": "https", "containerPort": int(port), "protocol": "TCP"}]
        c["env"] += [{"name": "KUBERNETES_SERVICE_HOST", "value": api_host},
                     {"name": "KUBERNETES_SERVICE_PORT", "value": api_port}]
        c["volumeMounts"].append({"name": "vault-ca", "mountPath": "/etc/cloudtaser/vault-ca", "readOnly": True})
        p["volumes"].append({"name": "vault-ca", "configMap": {"name": "cloudtaser-broker-test-vault-ca"}})
    items.append(d)
kinds = sorted(d["kind"] for d in items)
if kinds != ["ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]:
    sys.exit("deploy/broker/ changed: %r" % kinds)
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
EOF
ok $? "deploy/broker/ rendered for this cluster" || sed 's/^/# /' "$work/broker-manifests.out"
kubectl -n "$ns" create configmap cloudtaser-operator --from-literal=vault-address="$BAO_ADDR" > /dev/null &&
    kubectl -n "$ns" create configmap cloudtaser-broker-test-vault-ca --from-file=ca.crt="$BAO_CACERT" > /dev/null &&
    kubectl apply -f "$work/broker.json" > "$work/broker-apply.out" 2>&1
ok $? "kubectl apply of the broker's objects (service account cloudtaser-broker, RBAC, Deployment, Service, PDB)" ||
    sed 's/^/# /' "$work/broker-apply.out"

# Its own login, as the pod makes it: the broker's records, nothing else of the operator's.
vtok=$(bao write -field=token auth/kubernetes/login role="$T-broker" jwt="$(kube_token "$ns" cloudtaser-broker vault)" 2> "$work/broker-login.err")
as_broker() { BAO_TOKEN=$vtok bao "$@"; }
[ -n "$vtok" ] && as_broker kv get -mount=secret -field=ca.crt "$prefix/broker-tls" > /dev/null 2>&1 &&
    as_broker kv get -mount=secret -field=key "$prefix/broker-auth" > /dev/null 2>&1 &&
    ! as_broker kv get -mount=secret "$prefix/webhook-tls" > /dev/null 2>&1 &&
    ! as_broker kv put -mount=secret "$prefix/broker-auth" key=x > /dev/null 2>&1 &&
    [ "$(as_broker kv get -mount=secret -field=password "$apps/db" 2> /dev/null)" = "$secret" ]
ok $? "the broker's role: its records read, webhook-tls (the CA key) denied, nothing written; the tenants' secrets read" ||
    sed 's/^/# /' "$work/broker-login.err"
! bao write -field=token auth/kubernetes/login role="$T-broker" jwt="$(kube_token "$ns" cloudtaser-broker)" > /dev/null 2>&1
ok $? "  and it refuses the broker's token for the API server's audience"

kubectl -n "$ns" rollout status deployment/cloudtaser-broker --timeout=180s > "$work/broker-rollout.out" 2>&1
ok $? "the broker's pod becomes Ready on the real kubelet (tcp probes on $bport)" ||
    { kubectl -n "$ns" describe pods 2>&1 | tail -n 30; cat "$CT_CLUSTER"/pod-logs/"$ns"_cloudtaser-broker-*/broker/*.log 2> /dev/null | tail -n 20; } | sed 's/^/# /'
bpod=$(kubectl -n "$ns" get pod -l app.kubernetes.io/name=cloudtaser-broker -o 'jsonpath={.items[0].metadata.name}')
blog() { ct_pod_log "$ns" "$bpod" broker; }
serving() { blog | grep -q "serving on $node_ip:$bport (port $bport)"; }
ct_wait_for 60 serving && [ "$(kubectl -n "$ns" get pod "$bpod" -o 'jsonpath={.spec.serviceAccountName}:{.spec.containers[0].image}')" = "cloudtaser-broker:$img" ]
ok $? "pod $bpod: service account cloudtaser-broker, the image by digest, serving on $node_ip:$bport" ||
    blog | tail -n 20 | sed 's/^/# /'
timeout 20 openssl s_client -connect "$node_ip:$bport" -CAfile "$work/broker-ca.pem" -verify_ip "$node_ip" \
    -verify_return_error < /dev/null > "$work/s_client.out" 2>&1 &&
    ! timeout 20 openssl s_client -connect "$node_ip:$bport" -CAfile "$work/broker-ca.pem" -verify_ip 198.51.100.7 \
        -verify_return_error < /dev/null > /dev/null 2>&1
ok $? "it serves the operator's broker-tls: openssl verifies it for $node_ip (and not for another address)" ||
    tail -n 5 "$work/s_client.out" | sed 's/^/# /'

# --- a broker-mode Deployment, admitted by the webhook -------------------------------------------
run_cmd='command: ["/ct-workload", "env-hash", "PGPASSWORD", "say", "workload-ready", "sleep", "600"]'
deployment() { ct_deployment -a vault-auth-method=broker -a secret-paths="$2" -a env-map=password=PGPASSWORD "$1" "$apps" "$run_cmd"; } # NAME PATHS
deployment web "secret/data/$apps/db" | kubectl apply -f - > "$work/apply-web.out" 2>&1
ok $? "kubectl apply of a Deployment with cloudtaser.io/vault-auth-method: broker" || sed 's/^/# /' "$work/apply-web.out"
ct_wait_running "$apps" web 120
ok $? "its pod is Running on the real kubelet" ||
    { kubectl -n "$apps" describe pods; tail -n 20 "$work/operator.log"; } 2>&1 | tail -n 40 | sed 's/^/# /'
p=$(ct_pod_of "$apps" web)
kubectl -n "$apps" get pod "$p" -o json > "$work/web.json"
python3 - "$work/web.json" "$work/broker-ca.pem" "$baddr" > "$work/web.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1])); ca = open(sys.argv[2]).read(); addr = sys.argv[3]
s = p["spec"]
app = [c for c in s["containers"] if c["name"] == "app"][0]
env = {e["name"]: e.get("value", "") for e in app.get("env", [])}
vol = [v for v in s["volumes"] if v["name"] == "cloudtaser-broker-token"]
fail = []
if len(vol) != 1 or vol[0]["projected"]["sources"][0]["serviceAccountToken"].get("audience") != "cloudtaser-broker":
    fail.append("projected token %r" % vol)
if app["command"][:2] != ["/cloudtaser/wrapper", "--"]: fail.append("not wrapped %r" % app["command"])
if env.get("VAULT_AUTH_METHOD") != "broker": fail.append("auth %r" % env.get("VAULT_AUTH_METHOD"))
if env.get("CLOUDTASER_BROKER_ADDRESS") != addr: fail.append("address %r" % env.get("CLOUDTASER_BROKER_ADDRESS"))
if env.get("CLOUDTASER_BROKER_CA_PEM") != ca: fail.append("CA differs from broker-tls ca.crt")
if env.get("VAULT_ADDR", ""): fail.append("VAULT_ADDR %r" % env["VAULT_ADDR"])
if not p["metadata"].get("annotations", {}).get("cloudtaser.io/broker-mac", "").startswith("v1:"): fail.append("mac")
print("; ".join(fail) if fail else "injected for broker mode")
sys.exit(1 if fail else 0)
EOF
ok $? "the stored pod: wrapped, the projected token (audience cloudtaser-broker), the broker's address and broker-tls's CA, the MAC, no VAULT_ADDR" ||
    sed 's/^/# /' "$work/web.check"
logged() { ct_pod_log "$apps" "$p" app | grep -q "$1"; }
ct_wait_for 120 logged workload-ready &&
    ct_pod_log "$apps" "$p" app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"
ok $? "the workload runs with its canary from OpenBao through the broker (its hash in the pod's log)" ||
    { ct_pod_log "$apps" "$p" app; blog; } 2>&1 | tail -n 30 | sed 's/^/# /'
blog | grep -q "audit .*path=/v1/session .*ns=$apps pod=$p sa=app .*status=200" &&
    blog | grep -q "audit .*path=/v1/secrets .*ns=$apps pod=$p sa=app paths=secret/data/$apps/db status=200"
ok $? "the broker's audit: the pod's session and its read, by namespace, pod and service account" ||
    blog | grep audit | tail -n 5 | sed 's/^/# /'

# --- another namespace's path: admitted, refused by the broker, the workload never starts --------
deployment greedy "secret/data/$other/db" | kubectl apply -f - > "$work/apply-greedy.out" 2>&1
ok $? "a Deployment whose pods ask for $other's path is admitted (its MAC is the webhook's)" ||
    sed 's/^/# /' "$work/apply-greedy.out"
g=
exited77() {
    g=$(ct_pod_of "$apps" greedy)
    [ -n "$g" ] && kubectl -n "$apps" get pod "$g" -o json 2> /dev/null | python3 -c '
import json, sys
st = json.load(sys.stdin).get("status", {}).get("containerStatuses", [])
codes = [s.get(k, {}).get("terminated", {}).get("exitCode") for s in st for k in ("state", "lastState")]
sys.exit(0 if 77 in codes else 1)'
}
ct_wait_for 120 exited77
ok $? "its container exits 77 (pod $g)" || kubectl -n "$apps" describe pods -l app=greedy 2>&1 | tail -n 20 | sed 's/^/# /'
glog=$(ct_pod_log "$apps" "$g" app)
grep -q "the broker at $baddr refused the session: .*outside the namespace prefix.* (status 403)" <<< "$glog" &&
    ! grep -q "workload-ready\|PGPASSWORD" <<< "$glog"
# (No "never Ready" snapshot: a container without a readiness probe counts as Ready for the moment
# its wrapper runs before it exits 77, so a snapshot of .ready races with the restarts.)
ok $? "  its log says why (refused at the session, 403, namespace prefix), the workload never ran" ||
    diag "$glog"
blog | grep -q "audit .*path=/v1/session .*ns=$apps pod=$g .*status=403" &&
    ! blog | grep -q "path=/v1/secrets .*pod=$g"
ok $? "  the broker's audit: the session refused (403), nothing read" || blog | grep audit | tail -n 5 | sed 's/^/# /'

# --- one more name: broker-tls issued again, swapped in by the running broker ---------------------
# (After the pods: the restarted operator listens on other ports than the registration names.)
version() { bao kv metadata get -mount=secret -format=json "$prefix/broker-tls" 2> /dev/null | jq -r .data.current_version; }
v1=$(version)
ct_stop_operator
ct_start_operator e2e --broker-address "$baddr" --broker-host "$node_ip,broker.$T.test"
reissued() { [ "$(version)" -gt "$v1" ]; }
ct_wait_for 60 reissued &&
    bao kv get -mount=secret -field=server.crt "$prefix/broker-tls" > "$work/server2.crt" &&
    sans=$(openssl x509 -in "$work/server2.crt" -noout -ext subjectAltName 2>&1) &&
    grep -q "DNS:broker.$T.test\(,\|$\)" <<< "$sans" && grep -q "IP Address:$node_ip\(,\|$\)" <<< "$sans" &&
    [ "$(grep -o 'DNS:\|IP Address:' <<< "$sans" | wc -l)" -eq 6 ]
ok $? "the operator restarted with --broker-host $node_ip,broker.$T.test: broker-tls issued again (version $v1 -> $(version)), naming exactly the six" ||
    { diag "${sans:-}"; grep broker-tls "$work/operator.log" | tail -n 3 | sed 's/^/# /'; }
swapped() { blog | grep -q "broker-tls rotated.*: serving generation"; }
ct_wait_for 60 swapped &&
    timeout 20 openssl s_client -connect "$node_ip:$bport" -CAfile "$work/broker-ca.pem" -verify_hostname "broker.$T.test" \
        -verify_return_error < /dev/null > "$work/s_client2.out" 2>&1
ok $? "the broker's pod swaps it in without a restart: openssl verifies broker.$T.test" ||
    { blog | tail -n 5; tail -n 5 "$work/s_client2.out"; } | sed 's/^/# /'
[ "$(kubectl -n "$ns" get pod "$bpod" -o 'jsonpath={.status.containerStatuses[0].restartCount}')" = 0 ]
ok $? "  (the broker's container never restarted)"

# --- no canary anywhere ----------------------------------------------------------------------------
! grep -rqF -e "$secret" -e "$theirs" "$work"/*.log "$work"/*.out "$CT_CLUSTER"/pod-logs/"$ns"_* \
    "$CT_CLUSTER"/pod-logs/"$apps"_* 2> /dev/null
ok $? "no canary in any log (the operator's, the broker's, the pods')"
kubectl get all,configmaps,secrets,events,serviceaccounts,leases -n "$ns" -o json > "$work/objects.json" 2>&1 &&
    kubectl get all,configmaps,secrets,events,serviceaccounts -n "$apps" -o json >> "$work/objects.json" 2>&1 &&
    [ -s "$work/objects.json" ] && ! grep -qF -e "$secret" -e "$theirs" "$work/objects.json"
ok $? "no canary in any Kubernetes object of $ns or $apps (pods, Deployments, ConfigMaps, Secrets, Events...)"

tap_done
