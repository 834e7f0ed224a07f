# SPDX-License-Identifier: Apache-2.0
# broker-lib.sh: the setup shared by tests/e2e/test-real-broker.sh and tests/bench-broker.sh,
# sourced after real-lib.sh's real_setup --cluster with $ns (the pods' namespace, with service
# accounts app and broker) and $BROKER set. It writes the records as the operator does
# (broker-tls from openssl, broker-auth, broker-token) under secret/$T/system, the pods' secrets,
# the broker's role and read-only policy, starts brokers A and B, creates the pods (app: admitted;
# greedy: another namespace's path with a valid MAC; edited: annotations edited after admission,
# the MAC computed with openssl from docs/protocol-broker.md; make_pod NAME PATHS MAC-PATHS
# [ENV-MAP] makes more), and defines start_broker NAME
# [ARGS] (sets $port) and session POD PORT OUT [AUDIENCE] (prints the HTTP status).
# BROKER_SAN_EXTRA (e.g. IP:198.18.0.1): more subjectAltNames for the brokers' server certificate.
: "${ns:?}" "${BROKER:?}" "${work:?}"
pids=()
stop_brokers() { local p; for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done; wait 2> /dev/null; }
trap 'stop_brokers; real_cleanup' EXIT

# --- the records, as the operator writes them (docs/operator.md "Credentials") --------------
d=$work/pki
mkdir -p "$d"
openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2> /dev/null &&
    openssl req -x509 -new -key "$d/ca.key" -subj /CN=test-ca -days 2 -out "$d/ca.crt" 2> /dev/null &&
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/server.key" 2> /dev/null &&
    openssl req -new -key "$d/server.key" -subj /CN=cloudtaser-broker -out "$d/server.csr" 2> /dev/null &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1%s\nextendedKeyUsage=serverAuth\n' \
        "${BROKER_SAN_EXTRA:+,$BROKER_SAN_EXTRA}" > "$d/ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext" -out "$d/server.crt" 2> /dev/null
ok $? "broker-tls material"
auth_hex=$(head -c32 /dev/urandom | xxd -p -c64)
inst_hex=$(head -c32 /dev/urandom | xxd -p -c64)
b64() { xxd -r -p <<< "$1" | base64 -w0; }
prefix=$T/system
bao kv put -mount=secret "$prefix/broker-auth" key="$(b64 "$auth_hex")" > /dev/null &&
    bao kv put -mount=secret "$prefix/broker-token" token="$(b64 "$inst_hex")" > /dev/null &&
    bao kv put -mount=secret "$prefix/broker-tls" server.crt=@"$d/server.crt" \
        server.key=@"$d/server.key" ca.crt=@"$d/ca.crt" > /dev/null
ok $? "records written under secret/$prefix"
value="v-$(rand_hex 12)"
bao kv put -mount=secret "$ns/db" password="$value" > /dev/null &&
    bao kv put -mount=secret "$T-other/db" password=not-yours > /dev/null
ok $? "the pod's secret and another namespace's"
bao_policy "$T-broker" "path \"secret/data/$prefix/*\" { capabilities = [\"read\"] }
path \"secret/data/$ns/*\" { capabilities = [\"read\"] }
path \"secret/data/$T-other/*\" { capabilities = [\"read\"] }"
bao write "auth/kubernetes/role/$T-broker" bound_service_account_names=broker \
    bound_service_account_namespaces="$ns" policies="$T-broker" ttl=10m > /dev/null
ok $? "the broker's role and read-only policy"
kube_token "$ns" broker > "$work/broker.jwt"

start_broker() { # NAME [ARGS]
    local name=$1; shift
    "$BROKER" --listen 127.0.0.1:0 --vault-addr "$BAO_ADDR" --vault-ca-file "$work/ca.pem" \
        --vault-role "$T-broker" --vault-jwt-file "$work/broker.jwt" --records-prefix "secret/$prefix" \
        --kubeconfig "$KUBECONFIG" --reload-interval 1 "$@" > "$work/$name.log" 2>&1 &
    pids+=($!)
    local i
    for i in $(seq 200); do
        port=$(sed -n 's/.*serving on .* (port \([0-9]*\)).*/\1/p' "$work/$name.log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}
start_broker A --session-ttl 600 && portA=$port && pidA=${pids[-1]} &&
    start_broker B && portB=$port
ok $? "two brokers serving (A on $portA, B on $portB)" || sed 's/^/# /' "$work"/A.log "$work"/B.log

# --- the pod ---------------------------------------------------------------------------------
ann_key=$(ann_mac_key "$auth_hex")
make_pod() { # NAME PATHS MAC-PATHS [ENV-MAP]
    kubectl -n "$ns" apply -f - > /dev/null << YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  annotations:
    cloudtaser.io/vault-auth-method: broker
    cloudtaser.io/secret-paths: "$2"
    cloudtaser.io/env-map: "${4:-}"
    cloudtaser.io/broker-mac: "v1:$(mac_of "$ns" app "$3" "${4:-}")"
spec:
  serviceAccountName: app
  nodeSelector: {cloudtaser.io/never: "scheduled"}
  containers: [{name: c, image: "busybox:never-pulled"}]
YAML
}
make_pod app "secret/data/$ns/db" "secret/data/$ns/db" &&
    make_pod greedy "secret/data/$T-other/db" "secret/data/$T-other/db" &&
    make_pod edited "secret/data/$ns/db" "secret/data/$ns/db"
ok $? "pods created (admitted for broker mode, MAC from openssl)"
kubectl -n "$ns" annotate pod edited --overwrite \
    "cloudtaser.io/secret-paths=secret/data/$ns/db,secret/data/$T-other/db" > /dev/null

openssl ecparam -name prime256v1 -genkey -noout -out "$work/pod.key" 2> /dev/null &&
    openssl req -new -key "$work/pod.key" -subj /CN=app -out "$work/pod.csr" 2> /dev/null
session() { # POD PORT OUT [AUDIENCE]
    local jwt
    jwt=$(kubectl -n "$ns" create token app --duration=10m --audience="${4:-cloudtaser-broker}" \
        --bound-object-kind Pod --bound-object-name "$1") || return 1
    jq -n --arg jwt "$jwt" --rawfile csr "$work/pod.csr" '{jwt: $jwt, csr: $csr}' > "$work/req.json"
    curl -sS --cacert "$d/ca.crt" -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$work/req.json" "https://127.0.0.1:$2/v1/session"
}
