#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: the webhook's broker mode and sealed token mode
# (operator/modes, docs/operator.md "Broker mode and sealed token mode"). cloudtaser-operator
# runs on the host with its credentials in the real OpenBao (it writes broker-auth and
# broker-tls there), registered in a real MutatingWebhookConfiguration; pods are created through
# the real kube-apiserver, which applies our patch, re-decodes and defaults the pod and stores it.
# Nothing is scheduled (a node selector no node has): what is checked is the stored pod.
#   - broker mode: the projected service-account token volume (audience cloudtaser-broker,
#     600 s, file token) mounted read-only in the wrapped container only, CLOUDTASER_BROKER_ADDRESS
#     and CLOUDTASER_BROKER_CA_PEM (= broker-tls ca.crt in OpenBao), no VAULT_ADDR value, and
#     cloudtaser.io/broker-mac: the pod author's forged value replaced by the MAC that
#     `openssl kdf`/`dgst` compute from broker-auth (an independent implementation of
#     docs/protocol-broker.md "The annotation MAC");
#   - broker mode with cloudtaser.io/vault-address: refused, saying so;
#   - sealed token mode: CLOUDTASER_UNSEAL_CA_PEM (= broker-tls ca.crt), the label
#     cloudtaser.io/sealed=<installation id>, the readinessProbe https :8199/v1/ready (defaulted by the API
#     server), the MAC;
#   - the operator restarted with --unseal-pods=false: the same token pod is refused ("nothing
#     delivers the token").
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_test_begin modes

ct_tenant_ns "$ns" && ct_operator_account "$ns"
ok $? "namespace $ns, service accounts, the operator's RBAC, token and vault role"

ct_start_operator e2e --unseal-pods
ok $? "the operator is ready (its credentials written to OpenBao)" || sed 's/^/# /' "$work/operator.log"
ct_register "$T-inject" Fail "$T"
ok $? "MutatingWebhookConfiguration registered" || sed 's/^/# /' "$work/mwc-$T-inject.out"

prefix=$T/system
bao kv get -mount=secret -field=ca.crt "$prefix/broker-tls" > "$work/broker-ca.pem" &&
    auth_hex=$(bao kv get -mount=secret -field=key "$prefix/broker-auth" | base64 -d | xxd -p -c64) &&
    token_hex=$(bao kv get -mount=secret -field=token "$prefix/broker-token" | base64 -d | xxd -p -c64) &&
    [ ${#auth_hex} -eq 64 ] && [ ${#token_hex} -eq 64 ]
ok $? "broker-tls ca.crt, broker-auth and broker-token (32 bytes each) read from OpenBao" || diag "auth '${auth_hex:-}'"
inst=$(installation_id "$token_hex")
ann_key=$(ann_mac_key "$auth_hex")

pod() { # NAME METHOD EXTRA-ANNOTATION-LINES
    cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $ns
  labels: {cloudtaser.io/inject: "true"}
  annotations:
    cloudtaser.io/inject: "true"
    cloudtaser.io/vault-auth-method: $2
    cloudtaser.io/secret-paths: secret/data/$ns/db
    cloudtaser.io/env-map: password=PGPASSWORD
    cloudtaser.io/containers: app
$3
spec:
  serviceAccountName: app
  nodeSelector: {cloudtaser.io/never: "scheduled"}
  containers:
  - {name: app, image: "busybox:never-pulled", command: ["/app"]}
  - {name: side, image: "busybox:never-pulled", command: ["/side"]}
EOF
}

# --- broker mode -------------------------------------------------------------------------------
pod broker broker '    cloudtaser.io/broker-mac: "v1:0000000000000000000000000000000000000000000000000000000000000000"' |
    kubectl apply -f - > "$work/apply-broker.out" 2>&1
ok $? "a broker-mode pod is created through the webhook" || sed 's/^/# /' "$work/apply-broker.out"
kubectl -n "$ns" get pod broker -o json > "$work/broker.json"
python3 - "$work/broker.json" "$work/broker-ca.pem" "https://cloudtaser-broker.$ns.svc:8443" > "$work/broker.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1])); ca = open(sys.argv[2]).read(); addr = sys.argv[3]
s = p["spec"]
vol = [v for v in s["volumes"] if v["name"] == "cloudtaser-broker-token"]
app = [c for c in s["containers"] if c["name"] == "app"][0]
side = [c for c in s["containers"] if c["name"] == "side"][0]
env = {e["name"]: e.get("value", "") for e in app.get("env", [])}
m = [x for x in app.get("volumeMounts", []) if x["name"] == "cloudtaser-broker-token"]
fail = []
if len(vol) != 1: fail.append("volume %r" % vol)
else:
    src = vol[0]["projected"]["sources"]
    t = src[0]["serviceAccountToken"]
    if len(src) != 1 or t != {"audience": "cloudtaser-broker", "expirationSeconds": 600, "path": "token"}:
        fail.append("token source %r" % src)
if len(m) != 1 or m[0]["mountPath"] != "/var/run/secrets/cloudtaser.io/broker" or not m[0].get("readOnly"):
    fail.append("mount %r" % m)
if any(x["name"] == "cloudtaser-broker-token" for x in side.get("volumeMounts", [])) or side.get("env"):
    fail.append("the container not wrapped got the token or the env")
if env.get("CLOUDTASER_BROKER_ADDRESS") != addr: fail.append("address %r" % env.get("CLOUDTASER_BROKER_ADDRESS"))
if env.get("CLOUDTASER_BROKER_CA_PEM") != ca: fail.append("CA differs from broker-tls ca.crt")
if env.get("VAULT_ADDR", "") != "": fail.append("VAULT_ADDR %r" % env.get("VAULT_ADDR"))
if env.get("VAULT_AUTH_METHOD") != "broker": fail.append("auth %r" % env.get("VAULT_AUTH_METHOD"))
if "cloudtaser.io/sealed" in p["metadata"].get("labels", {}): fail.append("sealed label")
print("; ".join(fail) if fail else "broker pod as expected")
sys.exit(1 if fail else 0)
EOF
ok $? "the stored pod has the projected token (600 s, audience cloudtaser-broker) read-only in the wrapped container only, the broker's address and broker-tls CA, no VAULT_ADDR" ||
    sed 's/^/# /' "$work/broker.check"
got=$(kubectl -n "$ns" get pod broker -o 'jsonpath={.metadata.annotations.cloudtaser\.io/broker-mac}')
is "$got" "v1:$(mac_of "$ns" app "secret/data/$ns/db" password=PGPASSWORD)" \
    "cloudtaser.io/broker-mac: the forged value replaced by the MAC openssl computes from broker-auth"

out=$(pod broker-addr broker '    cloudtaser.io/vault-address: "https://vault.example:8200"' | kubectl apply -f - 2>&1)
[ $? -ne 0 ] && grep -q 'vault-address is not used in broker mode' <<< "$out"
ok $? "broker mode with cloudtaser.io/vault-address is refused, saying so" || diag "$out"

# --- sealed token mode -------------------------------------------------------------------------
pod sealed token '' | kubectl apply -f - > "$work/apply-sealed.out" 2>&1
ok $? "a token-mode pod without VAULT_TOKEN is created (sealed)" || sed 's/^/# /' "$work/apply-sealed.out"
kubectl -n "$ns" get pod sealed -o json > "$work/sealed.json"
python3 - "$work/sealed.json" "$work/broker-ca.pem" "$inst" > "$work/sealed.check" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1])); ca = open(sys.argv[2]).read()
app = [c for c in p["spec"]["containers"] if c["name"] == "app"][0]
side = [c for c in p["spec"]["containers"] if c["name"] == "side"][0]
env = {e["name"]: e.get("value", "") for e in app.get("env", [])}
g = app.get("readinessProbe", {}).get("httpGet", {})
fail = []
if p["metadata"].get("labels", {}).get("cloudtaser.io/sealed") != sys.argv[3]: fail.append("label")
if env.get("CLOUDTASER_UNSEAL_CA_PEM") != ca: fail.append("unseal CA differs from broker-tls ca.crt")
if (g.get("path"), g.get("port"), g.get("scheme")) != ("/v1/ready", 8199, "HTTPS"): fail.append("probe %r" % app.get("readinessProbe"))
if "periodSeconds" not in app.get("readinessProbe", {}): fail.append("probe not defaulted by the API server")
if side.get("readinessProbe"): fail.append("the container not wrapped got a probe")
print("; ".join(fail) if fail else "sealed pod as expected")
sys.exit(1 if fail else 0)
EOF
ok $? "the stored pod has CLOUDTASER_UNSEAL_CA_PEM (broker-tls CA), the label cloudtaser.io/sealed=<the installation id of broker-token> and the readinessProbe https :8199/v1/ready" ||
    sed 's/^/# /' "$work/sealed.check"
got=$(kubectl -n "$ns" get pod sealed -o 'jsonpath={.metadata.annotations.cloudtaser\.io/broker-mac}')
is "$got" "v1:$(mac_of "$ns" app "secret/data/$ns/db" password=PGPASSWORD)" "the sealed pod carries the MAC too"
got=$(kubectl -n "$ns" get pods -l "cloudtaser.io/sealed=$inst" -o 'jsonpath={.items[*].metadata.name}')
is "$got" "sealed" "the label selector the unsealer watches (its installation id) finds the sealed pod, only it"

# --- unsealing off -----------------------------------------------------------------------------
ct_stop_operator
ct_start_operator e2e --unseal-pods=false && ct_register "$T-inject" Fail "$T"
ok $? "the operator restarted with --unseal-pods=false (on a new port, registered again)" || sed 's/^/# /' "$work/operator.log"
out=$(pod sealed-off token '' | kubectl apply -f - 2>&1)
[ $? -ne 0 ] && grep -q 'nothing delivers the token' <<< "$out" && grep -q -- '--unseal-pods=false' <<< "$out"
ok $? "with unsealing off, a token pod without VAULT_TOKEN is refused: no way to receive a token" || diag "$out"
! kubectl -n "$ns" get pod sealed-off > /dev/null 2>&1
ok $? "and not stored"

tap_done
