#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers, the sealed token mode (issue 15): a pod on the real cluster
# (kubelet, containerd, runc) whose wrapper has token auth and no token starts sealed; the
# operator's unsealer (operator/unsealer, run by tests/tools/ct-unsealer with the operator's
# OpenBao policy deploy/openbao/cloudtaser-operator-unsealer.hcl and the token role
# deploy/openbao/cloudtaser-pod-token-role.json) gives it a per-pod, response-wrapped child token
# over mutual TLS, and the workload gets its canary:
#   - sealed: alive, {"sealed": true}, not Ready (readinessProbe /v1/ready), the workload not
#     started; unseal attempts without the operator's certificate are refused (curl and
#     `openssl s_client`: no certificate 401, another CA's certificate no handshake, a
#     serverAuth-only or wrongly named certificate 403), and it stays sealed;
#   - unsealed by the unsealer: Ready, the canary's hash in the workload's log; the child token is
#     an orphan whose one policy reads exactly the pod's path (sys/capabilities-accessor: another
#     pod's path and another namespace's are denied); a second unseal is 409;
#   - pods the unsealer refuses (a path outside the namespace with a valid MAC; annotations
#     edited after admission) stay sealed and get no policy; a wrapping token an interceptor
#     unwrapped first is refused by the wrapper's unwrap at OpenBao (422);
#   - pod deleted: its token revoked and its policy deleted; a left-over policy (the pod deleted
#     while no unsealer ran) is swept when the unsealer starts;
#   - another installation's sealed pod (its label value, its MAC) beside them is never touched:
#     not listed, not asked, no policy; its left-over policy survives this unsealer's sweep;
#   - the canary is in no log.
# The webhook's label and annotations (cloudtaser.io/sealed: <installation id>,
# cloudtaser.io/broker-mac) are written here as the webhook writes them (the MAC and the id
# computed with openssl from broker-auth and broker-token, as broker-lib.sh does). The unsealer
# selects its own installation's label value and policy prefix, so this test and
# test-real-sealed-operator.sh (another installation) run side by side under make check.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"
real_setup --cluster
. "$top/tests/cluster/pod-lib.sh"
ns=$T-sealed
unpid=
cleanup_sealed() {
    [ -n "$unpid" ] && kill "$unpid" 2> /dev/null && wait "$unpid" 2> /dev/null
    kubectl delete clusterrolebinding,clusterrole "$ns-unsealer" --ignore-not-found > /dev/null 2>&1
    kubectl delete namespace "$ns" --wait=false > /dev/null 2>&1
    [ -n "${other_inst:-}" ] && bao policy delete "cloudtaser-pod-$other_inst-0000-theirs" > /dev/null 2>&1
    real_cleanup
}
trap cleanup_sealed EXIT

ct_push_images e2e
ok $? "our images built and pushed to the cluster's registry" || sed 's/^/# /' "$work/images.log"

# --- OpenBao: the pods' secrets, the token role and the unsealer's policy from deploy/openbao/
secret="canary-$(rand_hex 16)"
other="canary-$(rand_hex 16)"
bao kv put -mount=secret "$ns/db" password="$secret" > /dev/null &&
    bao kv put -mount=secret "$ns/other" password="$other" > /dev/null &&
    bao kv put -mount=secret "$T-elsewhere/db" password="$other" > /dev/null &&
    bao write auth/token/roles/cloudtaser-pod "@$top/deploy/openbao/cloudtaser-pod-token-role.json" > /dev/null &&
    bao policy write "$T-unsealer" "$top/deploy/openbao/cloudtaser-operator-unsealer.hcl" > /dev/null &&
    bao token create -policy="$T-unsealer" -ttl=1h -field=token > "$work/unsealer.token"
ok $? "OpenBao: secrets, the token role and the unsealer's policy as deploy/openbao/ gives them"

# --- the operator's client certificate (broker-tls), another CA's, wrong ones
d=$work/pki
mkdir -p "$d"
cert() { # NAME CA CN EKU
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/$1.key" 2> /dev/null &&
        openssl req -new -key "$d/$1.key" -subj "/CN=$3" -out "$d/$1.csr" 2> /dev/null &&
        printf 'extendedKeyUsage=%s\nsubjectAltName=DNS:%s\n' "$4" "$3" > "$d/$1.ext" &&
        openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" -CAcreateserial \
            -days 1 -extfile "$d/$1.ext" -out "$d/$1.crt" 2> /dev/null
}
ca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/$1.key" 2> /dev/null &&
        openssl req -x509 -new -key "$d/$1.key" -subj "/CN=$1" -days 2 -out "$d/$1.crt" 2> /dev/null
}
ca ca && ca otherca && cert client ca cloudtaser-operator clientAuth &&
    cert foreign otherca cloudtaser-operator clientAuth && cert server ca cloudtaser-operator serverAuth &&
    cert wrongname ca someone-else clientAuth
ok $? "certificates: the operator's client certificate, another CA's, serverAuth only, another name"

auth_hex=$(rand_hex 32)
token_hex=$(rand_hex 32)
printf '%s' "$auth_hex" > "$work/broker-auth.hex"
printf '%s' "$token_hex" > "$work/broker-token.hex"
inst=$(installation_id "$token_hex")
other_inst=$(installation_id "$(rand_hex 32)")
ann_key=$(ann_mac_key "$auth_hex")
mac() { # NS SA PATHS ENV-MAP [ANNOTATION-KEY]
    local ann_key=${5:-$ann_key}
    printf 'v1:%s' "$(mac_of "$1" "$2" "$3" "$4")"
}
other_key=$(ann_mac_key "$(rand_hex 32)")

# --- Kubernetes: the namespace, the unsealer's RBAC (pods list/watch, as deploy/overlays/sealed/ gives it)
real_ns "$ns" && kubectl -n "$ns" create serviceaccount app > /dev/null &&
    kubectl -n "$ns" create serviceaccount unsealer > /dev/null &&
    kubectl create clusterrole "$ns-unsealer" --verb=list,watch --resource=pods > /dev/null &&
    kubectl create clusterrolebinding "$ns-unsealer" --clusterrole="$ns-unsealer" --serviceaccount="$ns:unsealer" > /dev/null &&
    kubectl -n "$ns" create token unsealer --duration=1h > "$work/unsealer.jwt"
ok $? "namespace $ns, service accounts, the unsealer's RBAC and token"

# A sealed pod as the webhook makes it (label, annotations and MAC, the wrapper's environment, the
# readiness probe), on the host network (OpenBao listens on the host's loopback).
sealed_pod() { # NAME PORT PATHS [MAC [LABEL]]
    local m=${4:-$(mac "$ns" app "$3" password=PGPASSWORD)} l=${5:-$inst}
    cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $ns
  labels: {app: $1, cloudtaser.io/sealed: "$l"}
  annotations:
    cloudtaser.io/vault-auth-method: token
    cloudtaser.io/secret-paths: $3
    cloudtaser.io/env-map: password=PGPASSWORD
    cloudtaser.io/broker-mac: "$m"
spec:
  serviceAccountName: app
  hostNetwork: true
  terminationGracePeriodSeconds: 5
  volumes: [{name: cloudtaser-bin, emptyDir: {medium: Memory, sizeLimit: 8Mi}}]
  initContainers:
  - name: cloudtaser-init
    image: $CT_REGISTRY/cloudtaser-wrapper:e2e
    command: [/cloudtaser-init]
    args: [--dest, /cloudtaser/wrapper]
    volumeMounts: [{name: cloudtaser-bin, mountPath: /cloudtaser}]
  containers:
  - name: app
    image: $CT_REGISTRY/ct-workload:e2e
    command: [/cloudtaser/wrapper, --, /ct-workload, env-hash, PGPASSWORD, say, workload-ready, sleep, "600"]
    volumeMounts: [{name: cloudtaser-bin, mountPath: /cloudtaser, readOnly: true}]
    readinessProbe:
      httpGet: {path: /v1/ready, port: $2, scheme: HTTPS}
      periodSeconds: 1
      failureThreshold: 1
    env:
    - {name: VAULT_ADDR, value: "$BAO_ADDR"}
    - name: CLOUDTASER_VAULT_CA_PEM
      value: |
$(sed 's/^/        /' "$BAO_CACERT")
    - {name: VAULT_AUTH_METHOD, value: token}
    - name: CLOUDTASER_UNSEAL_CA_PEM
      value: |
$(sed 's/^/        /' "$d/ca.crt")
    - {name: CLOUDTASER_UNSEAL_LISTEN, value: ":$2"}
    - {name: CLOUDTASER_SECRET_PATHS, value: "$3"}
    - {name: CLOUDTASER_ENV_MAP, value: password=PGPASSWORD}
EOF
}
read -r p1 p2 p3 p4 p5 <<< "$(ct_free_ports 5)"
uid_of() { kubectl -n "$ns" get pod "$1" -o 'jsonpath={.metadata.uid}'; }
ip_of() { kubectl -n "$ns" get pod "$1" -o 'jsonpath={.status.podIP}'; }
ready_of() { kubectl -n "$ns" get pod "$1" -o 'jsonpath={.status.containerStatuses[0].ready}'; }
is_running() { [ "$(kubectl -n "$ns" get pod "$1" -o 'jsonpath={.status.phase}')" = Running ]; }
is_ready() { [ "$(ready_of "$1")" = true ]; }
logged() { ct_pod_log "$ns" "$1" app | grep -q "$2"; }

sealed_pod web "$p1" "secret/data/$ns/db" | kubectl apply -f - > "$work/apply.out" 2>&1 &&
    ct_wait_for 120 is_running web && ct_wait_for 120 logged web 'sealed: waiting'
ok $? "a sealed pod is Running, its wrapper waiting for a token" ||
    { kubectl -n "$ns" describe pod web; ct_pod_log "$ns" web app; } 2>&1 | tail -n 40 | sed 's/^/# /'
ip=$(ip_of web)
url=https://$ip:$p1
st=$(curl -sk --max-time 30 "$url/v1/status")
[ "$st" = '{"sealed": true}' ]
ok $? "GET /v1/status to anyone: {\"sealed\": true}" || diag "$st"
sleep 3
[ "$(ready_of web)" = false ] && [ "$(curl -sk --max-time 30 -o /dev/null -w '%{http_code}' "$url/v1/ready")" = 503 ] &&
    ! logged web workload-ready
ok $? "sealed: not Ready (the probe gets 503), the workload not started"

# --- unseal attempts without the operator's certificate
code() { curl -sk --max-time 30 -o "$work/curl.out" -w '%{http_code}' -X POST -d '{"token": "s.forged"}' "$@" "$url/v1/unseal"; }
[ "$(code)" = 401 ] && grep -q 'client certificate is required' "$work/curl.out"
ok $? "curl without a client certificate: 401"
c=$(code --cert "$d/foreign.crt" --key "$d/foreign.key")
[ "$c" = 000 ]
ok $? "curl with another CA's certificate: no handshake" || diag "status $c"
[ "$(code --cert "$d/wrongname.crt" --key "$d/wrongname.key")" = 403 ]
ok $? "curl with another name: 403"
c=$(code --cert "$d/server.crt" --key "$d/server.key")
[ "$c" = 403 ] || [ "$c" = 000 ]
ok $? "curl with a serverAuth-only certificate: refused ($c)"
req=$'POST /v1/unseal HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\nConnection: close\r\n\r\n{"token": "s.forged"}\n'
out=$(printf '%s' "$req" | timeout 20 openssl s_client -quiet -connect "$ip:$p1" 2>&1)
grep -q '^HTTP/1.1 401' <<< "$out"
ok $? "openssl s_client without a client certificate: 401" || diag "$out"
out=$(printf '%s' "$req" | timeout 20 openssl s_client -quiet -connect "$ip:$p1" -cert "$d/foreign.crt" -key "$d/foreign.key" 2>&1)
! grep -q '^HTTP/1.1' <<< "$out"
ok $? "openssl s_client with another CA's certificate: no answer" || diag "$out"
out=$(printf '%s' "$req" | timeout 20 openssl s_client -quiet -connect "$ip:$p1" -cert "$d/wrongname.crt" -key "$d/wrongname.key" 2>&1)
grep -q '^HTTP/1.1 403' <<< "$out"
ok $? "openssl s_client with another name: 403" || diag "$out"
[ "$(curl -sk --max-time 30 "$url/v1/status")" = '{"sealed": true}' ] && ! logged web workload-ready
ok $? "after all of them: still sealed, nothing started"

# --- pods the unsealer must refuse
sealed_pod greedy "$p2" "secret/data/$ns/db,secret/data/$T-elsewhere/db" | kubectl apply -f - > /dev/null 2>&1 &&
    sealed_pod edited "$p3" "secret/data/$ns/other" "$(mac "$ns" app "secret/data/$ns/db" password=PGPASSWORD)" |
    kubectl apply -f - > /dev/null 2>&1 && ct_wait_for 120 is_running greedy && ct_wait_for 120 is_running edited
ok $? "two more sealed pods: one asking for another namespace's path (valid MAC), one edited after admission"
sealed_pod theirs "$p5" "secret/data/$ns/db" "$(mac "$ns" app "secret/data/$ns/db" password=PGPASSWORD "$other_key")" "$other_inst" |
    kubectl apply -f - > /dev/null 2>&1 && ct_wait_for 120 is_running theirs && ct_wait_for 120 logged theirs 'sealed: waiting'
ok $? "another installation's sealed pod beside them (label $other_inst, its MAC), waiting"
bao policy write "cloudtaser-pod-$other_inst-0000-theirs" - > /dev/null <<< 'path "secret/data/none" { capabilities = ["read"] }'
ok $? "  a left-over policy of that installation (its prefix, no pod)"

# --- the unsealer
# The unsealer with the operator's material: its vault token, broker-auth, broker-tls client pair.
start_unsealer() { # LOG
    "$top/build/musl/bin/ct-unsealer" --kube-server "$CT_API" --kube-ca-file "$CT_CA" --kube-token-file "$work/unsealer.jwt" \
        --vault-address "$BAO_ADDR" --vault-ca-file "$BAO_CACERT" --vault-token-file "$work/unsealer.token" \
        --broker-auth-hex-file "$work/broker-auth.hex" --broker-token-hex-file "$work/broker-token.hex" --client-cert "$d/client.crt" --client-key "$d/client.key" \
        --interval-ms 500 > "$1" 2>&1 &
    unpid=$!
}
start_unsealer "$work/unsealer.log"
ct_wait_for 120 logged web workload-ready && ct_wait_for 120 is_ready web
ok $? "the unsealer unsealed it: Ready, the workload started" || { tail -n 20 "$work/unsealer.log"; ct_pod_log "$ns" web app | tail -n 20; } | sed 's/^/# /'
ct_pod_log "$ns" web app | grep -q "env PGPASSWORD sha256=$(sha "$secret") len=${#secret}"
ok $? "the workload has its canary (its hash in the pod's log)" || ct_pod_log "$ns" web app | tail -n 20 | sed 's/^/# /'
grep -q "pod $ns/web unsealed with a wrapped child token" "$work/unsealer.log" && logged web 'unsealed by .* (a wrapped token)'
ok $? "one line each: the unsealer's outcome, the wrapper's unseal (wrapped)" || sed 's/^/# /' "$work/unsealer.log"
[ "$(curl -sk --max-time 30 "$url/v1/status")" = '{"sealed": false}' ]
ok $? "GET /v1/status: {\"sealed\": false}"
[ "$(code --cert "$d/client.crt" --key "$d/client.key")" = 409 ]
ok $? "a second unseal, even with the operator's certificate: 409"

uid=$(uid_of web)
pol=cloudtaser-pod-$inst-$uid
bao policy read "$pol" > "$work/pol.txt" 2>&1
acc=$(sed -n 's/^# accessor: //p' "$work/pol.txt")
[ -n "$acc" ] && [ "$(grep -c '^path ' "$work/pol.txt")" = 2 ] && grep -q "^path \"secret/data/$ns/db\"" "$work/pol.txt" &&
    grep -q "^path \"secret/metadata/$ns/db\"" "$work/pol.txt"
ok $? "policy $pol: exactly the pod's path and its metadata, the token's accessor" || sed 's/^/# /' "$work/pol.txt"
bao write -format=json auth/token/lookup-accessor accessor="$acc" > "$work/lookup.json" 2>&1
python3 - "$work/lookup.json" "$pol" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
sys.exit(0 if d["orphan"] and sorted(d["policies"]) == sorted(["default", sys.argv[2]]) and d["renewable"] else 1)
EOF
ok $? "the child token: an orphan, renewable, with its pod's policy only" || sed 's/^/# /' "$work/lookup.json"
caps() { bao write -field=capabilities sys/capabilities-accessor accessor="$acc" paths="$1" 2>&1; }
[ "$(caps "secret/data/$ns/db")" = '[read]' ] && [ "$(caps "secret/data/$ns/other")" = '[deny]' ] &&
    [ "$(caps "secret/data/$T-elsewhere/db")" = '[deny]' ]
ok $? "the child token reads its path, not another pod's, not another namespace's" ||
    diag "$(caps "secret/data/$ns/db") $(caps "secret/data/$ns/other") $(caps "secret/data/$T-elsewhere/db")"

ct_wait_for 120 grep -q "pod $ns/greedy refused: path 'secret/data/$T-elsewhere/db' outside the namespace prefix" "$work/unsealer.log" &&
    ct_wait_for 120 grep -q "pod $ns/edited refused: annotation MAC" "$work/unsealer.log"
ok $? "refused: another namespace's path, and edited annotations (one line each)" || sed 's/^/# /' "$work/unsealer.log"
still=0
for pp in "greedy $p2" "edited $p3"; do
    set -- $pp
    [ "$(curl -sk --max-time 30 "https://$(ip_of "$1"):$2/v1/status")" = '{"sealed": true}' ] &&
        ! bao policy read "cloudtaser-pod-$inst-$(uid_of "$1")" > /dev/null 2>&1 && still=$((still + 1))
done
[ $still = 2 ]
ok $? "  both stay sealed, without a policy"
tuid=$(uid_of theirs)
[ "$(curl -sk --max-time 30 "https://$(ip_of theirs):$p5/v1/status")" = '{"sealed": true}' ] && ! logged theirs workload-ready &&
    ! grep -q "theirs" "$work/unseal"*.log && ! bao policy read "cloudtaser-pod-$inst-$tuid" > /dev/null 2>&1 &&
    ! bao policy read "cloudtaser-pod-$other_inst-$tuid" > /dev/null 2>&1
ok $? "the other installation's pod is left alone: still sealed, never named in the unsealer's log, no policy" || sed 's/^/# /' "$work/unsealer.log"

# --- an intercepted wrapping token (unwrapped by somebody else first) is detected by the wrapper
wt=$(bao token create -policy=default -ttl=10m -wrap-ttl=60s -field=wrapping_token 2> "$work/wrap.err") &&
    VAULT_TOKEN= BAO_TOKEN=$wt bao unwrap -format=json "$wt" > "$work/stolen.json" 2>> "$work/wrap.err" &&
    grep -q client_token "$work/stolen.json"
ok $? "OpenBao: a wrapping token, unwrapped by an interceptor" || sed 's/^/# /' "$work/wrap.err"
eurl=https://$(ip_of edited):$p3
c=$(curl -sk --max-time 20 -o "$work/curl.out" -w '%{http_code}' --cert "$d/client.crt" --key "$d/client.key"     -X POST -d "{\"token\": \"$wt\", \"wrapped\": true}" "$eurl/v1/unseal")
[ "$c" = 422 ] && grep -q 'may have been intercepted' "$work/curl.out" && [ "$(curl -sk --max-time 30 "$eurl/v1/status")" = '{"sealed": true}' ]
ok $? "the wrapper's unwrap of it fails at OpenBao: 422 (intercepted), still sealed" || diag "code $c $(cat "$work/curl.out")"

# --- pod deleted: token revoked, policy deleted
kubectl -n "$ns" delete pod web --wait=true --timeout=60s > /dev/null 2>&1
gone() { ! bao policy read "$pol" > /dev/null 2>&1; }
ct_wait_for 120 gone && ! bao write auth/token/lookup-accessor accessor="$acc" > /dev/null 2>&1
ok $? "pod deleted: its policy is gone and its token revoked" || sed 's/^/# /' "$work/unsealer.log" | tail -n 10
grep -q "pod $ns/web gone: token revoked, policy deleted" "$work/unsealer.log"
ok $? "  one line for it"

# --- a left-over: unsealed, then deleted while no unsealer runs; swept at the next start
sealed_pod late "$p4" "secret/data/$ns/db" | kubectl apply -f - > /dev/null 2>&1 && ct_wait_for 120 is_running late &&
    ct_wait_for 120 logged late workload-ready
ok $? "another sealed pod unsealed" || tail -n 5 "$work/unsealer.log" | sed 's/^/# /'
lpol=cloudtaser-pod-$inst-$(uid_of late)
lacc=$(bao policy read "$lpol" 2>/dev/null | sed -n 's/^# accessor: //p')
kill "$unpid" && wait "$unpid" 2> /dev/null
unpid=
kubectl -n "$ns" delete pod late --wait=true --timeout=60s > /dev/null 2>&1
bao policy read "$lpol" > /dev/null 2>&1
ok $? "the unsealer stopped, the pod deleted: its policy is left over"
start_unsealer "$work/unsealer2.log"
lgone() { ! bao policy read "$lpol" > /dev/null 2>&1; }
ct_wait_for 120 lgone && [ -n "$lacc" ] && ! bao write auth/token/lookup-accessor accessor="$lacc" > /dev/null 2>&1 &&
    grep -q "left-over policy $lpol (no such pod): token revoked, policy deleted" "$work/unsealer2.log"
ok $? "the next unsealer sweeps it: token revoked, policy deleted" || sed 's/^/# /' "$work/unsealer2.log"
bao policy read "cloudtaser-pod-$other_inst-0000-theirs" > /dev/null 2>&1 && ! grep -q "$other_inst" "$work/unsealer2.log"
ok $? "  the other installation's left-over policy is not its to sweep: kept" || sed 's/^/# /' "$work/unsealer2.log"

# --- the canary in no log
! grep -rqF -e "$secret" -e "$other" "$work"/*.log "$CT_CLUSTER"/pod-logs/"$ns"_* 2> /dev/null
ok $? "no canary in any log (the unsealer's, the pods')"

tap_done
