#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: operator/registry's cloud credential providers (through tests/tools/ct-registry)
# against stand-ins of the real token endpoints (tests/standin/cloud.py: AWS STS + ECR with SigV4
# verified, the GCE metadata server, AAD + ACR's oauth2/exchange and oauth2/token), in front of a
# real docker-registry (TLS + htpasswd, the image pushed by skopeo) whose credentials the client
# never learns: the front accepts only what each provider yields. The registry names are the
# clouds' own (123456789012.dkr.ecr.us-east-1.amazonaws.com, us-docker.pkg.dev,
# ctregistry.azurecr.io), resolved to loopback by an /etc/hosts bind-mounted in a private mount
# namespace (unshare -m), so the providers are chosen by host as in production; the token
# endpoints are moved with the SDKs' own variables (AWS_ENDPOINT_URL_STS/_ECR, GCE_METADATA_HOST,
# AZURE_AUTHORITY_HOST) and trusted through ct-registry's --ca (the operator's --registry-ca-file).
# Every issued value carries a canary that must appear in no output.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
bindir=${CT_REGISTRY_BINDIR:-$top/build}

for tool in docker-registry skopeo openssl unshare curl; do
    if ! command -v $tool > /dev/null; then
        skip "$tool is not installed (deps/setup.sh installs it)"
        tap_done
        exit
    fi
done
if ! unshare -m true 2> /dev/null; then
    skip "no private mount namespace here (unshare -m): the cloud registry names cannot be resolved to loopback"
    tap_done
    exit
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ct-cloud.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT
[ "${CT_KEEP_WORK:-}" ] && trap - EXIT
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
explain() { local f; for f in "$@"; do [ -f "$f" ] && sed 's/^/# /' "$f"; done; }

ecr=123456789012.dkr.ecr.us-east-1.amazonaws.com
gcp=us-docker.pkg.dev
acr=ctregistry.azurecr.io
canary="CANARY$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# --- PKI: one CA, one server certificate for loopback and the three registry names ----------------
mkdir -p "$work/pki" "$work/certs.d"
(
    cd "$work/pki" && umask 077 &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem &&
        openssl req -x509 -new -key ca-key.pem -sha256 -days 2 -subj "/CN=cloudtaser cloud test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.pem &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server-key.pem &&
        openssl req -new -key server-key.pem -subj "/CN=localhost" -out server.csr &&
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:$ecr,DNS:$gcp,DNS:$acr" > server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem && chmod 0644 ca.pem server.pem
) > "$work/pki.log" 2>&1 || { echo "Bail out! PKI"; explain "$work/pki.log"; exit 1; }
ca=$work/pki/ca.pem
cp "$ca" "$work/certs.d/ca.crt"

# --- the backend: a real docker-registry with htpasswd; only the stand-in front knows the user -----
buser=ct-backend
bpass="$canary-backend"
/usr/bin/python3 -W ignore::DeprecationWarning -c 'import crypt, sys
print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)))' \
    "$buser" "$bpass" > "$work/htpasswd" || { echo "Bail out! htpasswd"; exit 1; }
bport=$(free_port)
mkdir -p "$work/storage"
cat > "$work/registry.yml" << YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: "127.0.0.1:$bport", secret: "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')", tls: {certificate: $work/pki/server.pem, key: $work/pki/server-key.pem}}
auth: {htpasswd: {realm: cloudtaser-test, path: $work/htpasswd}}
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -s -o /dev/null --cacert "$ca" "https://127.0.0.1:$bport/v2/" && break; sleep 0.1; done
printf 'payload\n' > "$work/payload"
/usr/bin/python3 "$top/images/build-image.py" --out "$work/img" --ref v1 --epoch 0 \
    --file "$work/payload:/payload" --entrypoint '["/app","--serve"]' --cmd '["--port","8080"]' --arch amd64 > /dev/null &&
    skopeo copy -q --dest-cert-dir "$work/certs.d" --dest-creds "$buser:$bpass" \
        "oci:$work/img:v1" "docker://127.0.0.1:$bport/team/app:v1" > "$work/push.log" 2>&1
ok $? "an image with ENTRYPOINT and CMD is pushed to the backend registry (TLS + htpasswd)" || explain "$work/push.log"

# --- the stand-ins ----------------------------------------------------------------------------------
aport=$(free_port)
mport=$(free_port)
rport=$(free_port)
hport=$(free_port)
jwtkey=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
static_secret="$canary-static-secret"
/usr/bin/python3 "$top/tests/standin/cloud.py" serve --cert "$work/pki/server.pem" --key "$work/pki/server-key.pem" \
    --ca "$ca" --backend "https://127.0.0.1:$bport" --backend-user "$buser" --backend-password "$bpass" \
    --jwt-key "$jwtkey" --canary "$canary" --ready-file "$work/ready" --api-port "$aport" \
    --metadata-port "$mport" --registry-port "$rport" --plain-registry-port "$hport" --ttl 3600 --static-key "AKIASTATICTEST:$static_secret" \
    --ecr-name "$ecr" --gcp-name "$gcp" --acr-name "$acr" > "$work/standin.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -f "$work/ready" ] && break; sleep 0.1; done
[ -f "$work/ready" ] || { echo "Bail out! cloud.py did not start"; explain "$work/standin.log"; exit 1; }

jwt() { /usr/bin/python3 "$top/tests/standin/cloud.py" jwt --jwt-key "${2:-$jwtkey}" --aud "$1"; }
jwt sts.amazonaws.com > "$work/aws-token"
jwt api://AzureADTokenExchange > "$work/azure-token"
jwt wrong-audience > "$work/aws-token-wrong-aud"
jwt api://wrong > "$work/azure-token-wrong-aud"
jwt sts.amazonaws.com not-the-issuers-key > "$work/aws-token-bad-sig"
printf '127.0.0.1 localhost %s %s %s\n' "$ecr" "$gcp" "$acr" > "$work/hosts"

counts() { curl -s --cacert "$ca" "https://localhost:$aport/_counts"; }
count() { counts | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

aws_base=(AWS_ROLE_ARN=arn:aws:iam::123456789012:role/cloudtaser-operator AWS_REGION=us-east-1
    AWS_ENDPOINT_URL_STS="https://localhost:$aport" AWS_ENDPOINT_URL_ECR="https://localhost:$aport")
aws_env=("${aws_base[@]}" AWS_WEB_IDENTITY_TOKEN_FILE="$work/aws-token")
gcp_env=(GCE_METADATA_HOST="127.0.0.1:$mport")
azure_base=(AZURE_CLIENT_ID=1b6b5d84-0c9b-4a4a-8c2f-1f0c6a3c2e11 AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47
    AZURE_AUTHORITY_HOST="https://localhost:$aport/")
azure_env=("${azure_base[@]}" AZURE_FEDERATED_TOKEN_FILE="$work/azure-token")

# run OUT FLAVOUR ENV... -- ARGS...: ct-registry with exactly ENV (nothing inherited), in a mount
# namespace whose /etc/hosts names the registries.
n=0
run() {
    local out=$1 flavour=$2; shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    unshare -m /bin/sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$work/hosts" \
        env -i PATH=/usr/bin:/bin "${envs[@]}" "$bindir/$flavour/bin/ct-registry" --ca "$ca" --timeout 20000 "$@" \
        > "$work/$out.out" 2> "$work/$out.err"
}
# field FILE LINE KEY: one key of the LINE-th JSON line
field() {
    /usr/bin/python3 -c 'import json, sys
l = open(sys.argv[1]).read().splitlines()
v = json.loads(l[int(sys.argv[2]) - 1]).get(sys.argv[3]) if len(l) >= int(sys.argv[2]) else None
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))' "$@"
}
want_entry='["/app","--serve"]'

for f in musl asan; do
    [ -x "$bindir/$f/bin/ct-registry" ] || { skip "$f: $bindir/$f/bin/ct-registry is not built"; continue; }

    # --- ECR through IRSA: STS AssumeRoleWithWebIdentity, then GetAuthorizationToken signed -----
    s0=$(count sts) e0=$(count ecr)
    run ecr-$f $f "${aws_env[@]}" -- "$ecr:$rport/team/app:v1" "$ecr:$rport/team/app:v1" \
        --advance 3000 "$ecr:$rport/team/app:v1" --advance 400 "$ecr:$rport/team/app:v1"
    rc=$?
    [ $rc -eq 0 ] && [ "$(field "$work/ecr-$f.out" 1 entrypoint)" = "$want_entry" ] &&
        [ "$(field "$work/ecr-$f.out" 1 cmd)" = '["--port","8080"]' ]
    ok $? "$f: ECR via IRSA: the ENTRYPOINT and CMD are read through the operator's role" || explain "$work/ecr-$f.out" "$work/ecr-$f.err"
    [ $(($(count sts) - s0)) -eq 2 ] && [ $(($(count ecr) - e0)) -eq 2 ]
    ok $? "$f: ECR: one exchange, kept while valid (3000 s later: the cache, then the same credential), renewed 5 min before its 1 h expiry: 2 STS + 2 ECR calls ($(counts))" || explain "$work/ecr-$f.out"
    grep -q '"cloud_credentials":2' "$work/ecr-$f.out" && grep -q '"cache_hits":1' "$work/ecr-$f.out"
    ok $? "$f: ECR: the second lookup is a cache hit, two credentials in all ($(tail -1 "$work/ecr-$f.out"))"

    s0=$(count sts)
    run ecr-static-$f $f AWS_ACCESS_KEY_ID=AKIASTATICTEST AWS_SECRET_ACCESS_KEY="$static_secret" \
        AWS_ENDPOINT_URL_ECR="https://localhost:$aport" -- "$ecr:$rport/team/app:v1"
    [ $? -eq 0 ] && [ "$(field "$work/ecr-static-$f.out" 1 entrypoint)" = "$want_entry" ] && [ "$(count sts)" -eq "$s0" ]
    ok $? "$f: ECR with static AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: signed without STS" || explain "$work/ecr-static-$f.out" "$work/ecr-static-$f.err"

    run ecr-badsig-$f $f AWS_ACCESS_KEY_ID=AKIASTATICTEST AWS_SECRET_ACCESS_KEY=not-the-secret \
        AWS_ENDPOINT_URL_ECR="https://localhost:$aport" -- "$ecr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'InvalidSignatureException' "$work/ecr-badsig-$f.out" &&
        grep -q 'IRSA role' "$work/ecr-badsig-$f.out"
    ok $? "$f: ECR: a signature with the wrong secret is refused (InvalidSignatureException, recomputed by the stand-in), the error says what to give the operator" || explain "$work/ecr-badsig-$f.out"

    run ecr-aud-$f $f "${aws_base[@]}" AWS_WEB_IDENTITY_TOKEN_FILE="$work/aws-token-wrong-aud" -- "$ecr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'InvalidIdentityToken' "$work/ecr-aud-$f.out"
    ok $? "$f: ECR: a web identity token for another audience is refused by STS (InvalidIdentityToken)" || explain "$work/ecr-aud-$f.out"

    run ecr-jwtsig-$f $f "${aws_base[@]}" AWS_WEB_IDENTITY_TOKEN_FILE="$work/aws-token-bad-sig" -- "$ecr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'InvalidIdentityToken' "$work/ecr-jwtsig-$f.out"
    ok $? "$f: ECR: a web identity token not signed by the issuer is refused by STS" || explain "$work/ecr-jwtsig-$f.out"

    run ecr-none-$f $f -- "$ecr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'requires credentials' "$work/ecr-none-$f.out" &&
        grep -q 'no AWS identity' "$work/ecr-none-$f.out" && grep -q 'imagePullSecrets' "$work/ecr-none-$f.out" &&
        grep -q 'IRSA role (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) allowed to pull from' "$work/ecr-none-$f.out" &&
        grep -q 'cloudtaser.io/command' "$work/ecr-none-$f.out"
    ok $? "$f: ECR without any identity: refused, saying what to set (pull secret, IRSA role, or command)" || explain "$work/ecr-none-$f.out"

    e0=$(count ecr)
    run ecr-insecure-$f $f "${aws_env[@]}" -- --insecure "$ecr:$hport" "$ecr:$hport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'requires credentials' "$work/ecr-insecure-$f.out" && [ "$(count ecr)" -eq "$e0" ]
    ok $? "$f: ECR named insecure and answering plain HTTP: the operator's credential is not fetched, not sent" || explain "$work/ecr-insecure-$f.out"

    run ecr-http-$f $f "${aws_env[@]}" AWS_ENDPOINT_URL_STS="http://localhost:$aport" -- "$ecr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'https:// endpoints only' "$work/ecr-http-$f.out"
    ok $? "$f: ECR: a plain-http STS endpoint is not used" || explain "$work/ecr-http-$f.out"

    # --- GCP: the metadata server's token, then the registry's token flow -----------------------
    g0=$(count gce)
    run gcp-$f $f "${gcp_env[@]}" -- "$gcp:$rport/team/app:v1" --advance 3301 "$gcp:$rport/team/app:v1"
    [ $? -eq 0 ] && [ "$(field "$work/gcp-$f.out" 1 entrypoint)" = "$want_entry" ] &&
        [ "$(field "$work/gcp-$f.out" 2 entrypoint)" = "$want_entry" ]
    ok $? "$f: GCP Artifact Registry via the metadata server: the ENTRYPOINT is read" || explain "$work/gcp-$f.out" "$work/gcp-$f.err"
    [ $(($(count gce) - g0)) -eq 2 ]
    ok $? "$f: GCP: the access token is renewed 5 min before its expiry (2 metadata calls)" || explain "$work/gcp-$f.out"

    run gcp-none-$f $f GCE_METADATA_HOST=127.0.0.1:1 -- "$gcp:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'GKE workload identity' "$work/gcp-none-$f.out" && grep -q 'GCE metadata server' "$work/gcp-none-$f.out"
    ok $? "$f: GCP without a metadata server: refused, saying what to set" || explain "$work/gcp-none-$f.out"

    # --- ACR: AAD token from the federated token, oauth2/exchange, the registry's token flow -------
    a0=$(count aad) x0=$(count exchange)
    run acr-$f $f "${azure_env[@]}" -- "$acr:$rport/team/app:v1" --advance 3301 "$acr:$rport/team/app:v1"
    [ $? -eq 0 ] && [ "$(field "$work/acr-$f.out" 1 entrypoint)" = "$want_entry" ] &&
        [ "$(field "$work/acr-$f.out" 2 entrypoint)" = "$want_entry" ]
    ok $? "$f: ACR via Azure workload identity: the ENTRYPOINT is read" || explain "$work/acr-$f.out" "$work/acr-$f.err"
    [ $(($(count aad) - a0)) -eq 2 ] && [ $(($(count exchange) - x0)) -eq 2 ]
    ok $? "$f: ACR: renewed before expiry (2 AAD tokens, 2 exchanges)" || explain "$work/acr-$f.out"

    x0=$(count exchange)
    run acr-denied-$f $f "${azure_env[@]}" -- "$acr:$rport/team/denied:v1" "$acr:$rport/team/app:v1"
    [ "$(field "$work/acr-denied-$f.out" 2 entrypoint)" = "$want_entry" ] &&
        grep -q "refused the operator's own credentials for team/denied" "$work/acr-denied-$f.out" &&
        grep -q 'AcrPull on it' "$work/acr-denied-$f.out" && [ $(($(count exchange) - x0)) -eq 2 ]
    ok $? "$f: ACR: a repository the identity may not read is refused naming the role to grant; the refused credential is dropped (a new exchange for the next image)" || explain "$work/acr-denied-$f.out"

    run acr-aud-$f $f "${azure_base[@]}" AZURE_FEDERATED_TOKEN_FILE="$work/azure-token-wrong-aud" -- "$acr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'invalid_client' "$work/acr-aud-$f.out" && grep -q 'AcrPull' "$work/acr-aud-$f.out"
    ok $? "$f: ACR: a federated token for another audience is refused by AAD (invalid_client)" || explain "$work/acr-aud-$f.out"

    run acr-none-$f $f -- "$acr:$rport/team/app:v1"
    [ $? -ne 0 ] && grep -q 'no Azure workload identity' "$work/acr-none-$f.out" &&
        grep -q 'Azure workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE) with AcrPull on' "$work/acr-none-$f.out"
    ok $? "$f: ACR without an identity: refused, saying what to set" || explain "$work/acr-none-$f.out"

    # --- trust: the stand-ins' CA is needed ------------------------------------------------------------
    unshare -m /bin/sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$work/hosts" \
        env -i PATH=/usr/bin:/bin "${aws_env[@]}" "$bindir/$f/bin/ct-registry" --timeout 20000 \
        "$ecr:$rport/team/app:v1" > "$work/notrust-$f.out" 2>&1
    [ $? -ne 0 ] && grep -q 'TLS' "$work/notrust-$f.out"
    ok $? "$f: without the CA the TLS verification fails (no credential is sent anywhere)" || explain "$work/notrust-$f.out"
done

# The stand-ins check what the real endpoints check.
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/computeMetadata/v1/instance/service-accounts/default/token")
[ "$st" = 403 ]
ok $? "the metadata stand-in refuses a request without Metadata-Flavor: Google (HTTP $st), as the real one"
st=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken' \
    -H 'Content-Type: application/x-amz-json-1.1' --aws-sigv4 "aws:amz:us-east-1:ecr" --user "AKIASTATICTEST:$static_secret" \
    -d '{}' "https://localhost:$aport/" 2> /dev/null)
case $st in
    200) ok 0 "the ECR stand-in accepts curl's own SigV4 signature (an independent signer)" ;;
    000) skip "this curl has no --aws-sigv4" ;;
    *) ok 1 "the ECR stand-in accepts curl's own SigV4 signature (HTTP $st)" ;;
esac
boto=
for py in /usr/bin/python3 python3; do "$py" -c 'import botocore' 2> /dev/null && { boto=$py; break; }; done
if [ "$boto" ]; then
    "$boto" - "$aport" "$ca" "$static_secret" > "$work/boto.log" 2>&1 << 'PY'
import json, ssl, sys, urllib.error, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
port, ca, secret = sys.argv[1:4]
url = f"https://localhost:{port}/"
req = AWSRequest("POST", url, data=b"{}", headers={
    "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
    "Content-Type": "application/x-amz-json-1.1"})
SigV4Auth(Credentials("AKIASTATICTEST", secret), "ecr", "us-east-1").add_auth(req)
ctx = ssl.create_default_context(cafile=ca)
r = urllib.request.urlopen(urllib.request.Request(url, data=b"{}", headers=dict(req.headers), method="POST"),
                           context=ctx)
print(r.status, list(json.load(r)["authorizationData"][0]))
try:  # the same signature over another body
    urllib.request.urlopen(urllib.request.Request(url, data=b"{ }", headers=dict(req.headers), method="POST"),
                           context=ctx)
    sys.exit("a tampered body was accepted")
except urllib.error.HTTPError as e:
    body = json.load(e)
    assert e.code == 400 and body["__type"] == "InvalidSignatureException", (e.code, body)
    print("tampered:", e.code, body["__type"])
PY
    ok $? "the ECR stand-in accepts botocore's SigV4 (AWS's own signer), and refuses it over a changed body" || explain "$work/boto.log"
else
    skip "botocore is not installed"
fi

if grep -rqF "$canary" "$work"/*.out "$work"/*.err "$work/standin.log" "$work/registry.log"; then
    ok 1 "no issued token, key, password or refresh token (canary $canary) appears in any output or log"
    grep -rlF "$canary" "$work"/*.out "$work"/*.err "$work/standin.log" | sed 's/^/# /'
else
    ok 0 "no issued token, key, password or refresh token (canary) appears in any output or log"
fi
tap_done
