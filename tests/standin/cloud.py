#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Stand-ins of the cloud token endpoints behind EKS, GKE and AKS image pulls, and of the three
registries' authentication in front of a real docker-registry (standard library only).

  --api-port (HTTPS): AWS STS (POST /, query API form, Action=AssumeRoleWithWebIdentity: XML),
      ECR (POST /, JSON 1.1, X-Amz-Target ...GetAuthorizationToken, SigV4 verified),
      AAD (POST /{tenant}/oauth2/v2.0/token, client_credentials + jwt-bearer assertion),
      GET /_counts (what was issued, for the tests).
  --metadata-port (plain HTTP, as the real one): the GCE metadata server's
      /computeMetadata/v1/instance/service-accounts/default/token (Metadata-Flavor: Google).
  --registry-port (HTTPS): the registries, chosen by the Host header:
      --ecr-name: Basic challenge, accepts "AWS:<a password ECR issued>";
      --gcp-name: Bearer challenge, GET /v2/token with Basic "oauth2accesstoken:<a token the
          metadata server issued>", then the Bearer token;
      --acr-name: POST /oauth2/exchange (grant_type=access_token, service, tenant, access_token of
          AAD) for a refresh token, GET /oauth2/token with Basic "<null GUID>:<refresh token>",
          then the Bearer token;
      the /v2/ requests it accepts are forwarded to --backend (the real docker-registry, with
      --backend-user:--backend-password, which the client never learns).

What a real endpoint verifies and we can check is checked: the SigV4 signature (recomputed here
from the request, as AWS does: canonical request, string to sign, derived key), the signed
headers, the date scope, the session token of temporary keys; the web identity JWT (HS256 with
--jwt-key, standing in for the OIDC issuer's key) and its audience ("sts.amazonaws.com" for STS,
"api://AzureADTokenExchange" for AAD) and expiry; the form encodings and content types; the
Metadata-Flavor header; the ACR exchange's service and tenant. Answers are in the services' own
formats. Issued values carry --canary so the tests can look for them in logs.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

MAX_BODY = 1 << 20
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

lock = threading.Lock()
counts = {"sts": 0, "ecr": 0, "gce": 0, "aad": 0, "exchange": 0, "registry_token": 0,
          "refused": 0}
aws_keys = {}        # access key id -> {"secret":..., "token": session token or None}
ecr_passwords = set()
gce_tokens = set()
aad_tokens = set()
acr_refresh = set()
bearer_tokens = {}   # registry bearer token -> registry name
args = None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mkjwt(key, claims):
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url(json.dumps(claims).encode())
    sig = hmac.new(key.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


def verify_jwt(token, audience):
    """The checks an OIDC relying party makes: signature, audience, expiry. Returns the claims or
    raises ValueError with the reason."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    want = hmac.new(args.jwt_key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, b64url_decode(parts[2])):
        raise ValueError("bad signature")
    claims = json.loads(b64url_decode(parts[1]))
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise ValueError("wrong audience")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time():
        raise ValueError("expired")
    return claims


def issue(prefix):
    return f"{prefix}-{args.canary}-{secrets.token_hex(12)}"


def amz_date(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def sigv4_check(method, path, query, headers, body, service, region):
    """Recomputes AWS Signature Version 4 from the request and compares. Returns the access key id
    or raises ValueError(code)."""
    auth = headers.get("Authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        raise ValueError("IncompleteSignatureException")
    key_id, date, reg, svc, signed, signature = m.groups()
    if key_id not in aws_keys:
        raise ValueError("UnrecognizedClientException")
    stamp = headers.get("X-Amz-Date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", stamp) or stamp[:8] != date:
        raise ValueError("IncompleteSignatureException")
    t = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs(t.timestamp() - time.time()) > 900:
        raise ValueError("InvalidSignatureException")  # "Signature expired"
    if reg != region or svc != service:
        raise ValueError("InvalidSignatureException")
    names = signed.split(";")
    if names != sorted(names) or "host" not in names or "x-amz-date" not in names:
        raise ValueError("InvalidSignatureException")
    k = aws_keys[key_id]
    if k["token"] is not None:
        if headers.get("X-Amz-Security-Token") != k["token"]:
            raise ValueError("UnrecognizedClientException")
    canon_headers = ""
    for n in names:
        v = headers.get(n)
        if v is None:
            raise ValueError("InvalidSignatureException")  # a signed header that was not sent
        canon_headers += n + ":" + " ".join(v.strip().split()) + "\n"
    q = "&".join(sorted(query.split("&"))) if query else ""
    creq = "\n".join([method, path, q, canon_headers, signed, hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{reg}/{svc}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(creq.encode()).hexdigest()])
    kd = hmac.new(("AWS4" + k["secret"]).encode(), date.encode(), hashlib.sha256).digest()
    for part in (reg, svc, "aws4_request"):
        kd = hmac.new(kd, part.encode(), hashlib.sha256).digest()
    want = hmac.new(kd, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, signature):
        raise ValueError("InvalidSignatureException")
    return key_id


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A malformed request line (a TLS record sent to the plain port) is answered with a status
    # line, as docker-registry (Go's net/http) does, not in the HTTP/0.9 style.
    default_request_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # the request line only: never a header or a body
        sys.stderr.write("%s %s\n" % (self.server.kind, fmt % a))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("too large")
        return self.rfile.read(n)

    def send(self, status, body, ctype="application/json", extra=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refused(self):
        with lock:
            counts["refused"] += 1

    def form(self, raw):
        if self.headers.get("Content-Type", "").split(";")[0].strip() != \
                "application/x-www-form-urlencoded":
            raise ValueError("content type")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(), strict_parsing=True,
                                                           keep_blank_values=True).items()}

    # --- the API port: STS, ECR, AAD ---------------------------------------------------------
    def api(self):
        path = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if self.command == "GET" and path.path == "/_counts":
            with lock:
                return self.send(200, dict(counts))
        if self.command != "POST":
            return self.send(405, {"message": "method"})
        if path.path == "/" and self.headers.get("X-Amz-Target"):
            return self.ecr(path, raw)
        if path.path == "/":
            return self.sts(raw)
        m = re.fullmatch(r"/([A-Za-z0-9.-]+)/oauth2/v2\.0/token", path.path)
        if m:
            return self.aad(m.group(1), raw)
        return self.send(404, {"message": "not found"})

    def sts_error(self, status, code, message):
        self.refused()
        self.send(status, f"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>{code}</Code>
    <Message>{message}</Message>
  </Error>
  <RequestId>{secrets.token_hex(16)}</RequestId>
</ErrorResponse>
""", "text/xml")

    def sts(self, raw):
        try:
            f = self.form(raw)
        except ValueError:
            return self.sts_error(400, "InvalidAction", "Could not parse the request")
        if f.get("Action") != "AssumeRoleWithWebIdentity" or f.get("Version") != "2011-06-15":
            return self.sts_error(400, "InvalidAction", "Could not find operation")
        for p in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not f.get(p):
                return self.sts_error(400, "MissingParameter", f"{p} is missing")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", f["RoleSessionName"]):
            return self.sts_error(400, "ValidationError", "RoleSessionName")
        if f["RoleArn"] != args.role_arn:
            return self.sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        try:
            claims = verify_jwt(f["WebIdentityToken"], "sts.amazonaws.com")
        except ValueError as e:
            return self.sts_error(400, "InvalidIdentityToken", str(e))
        key_id = "ASIA" + secrets.token_hex(8).upper()
        secret = issue("sts-secret")
        token = issue("sts-session")
        exp = time.gmtime(time.time() + args.ttl)
        with lock:
            aws_keys[key_id] = {"secret": secret, "token": token}
            counts["sts"] += 1
        sess = f["RoleSessionName"]
        self.send(200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{claims.get("sub", "")}</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>{args.role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")}/{sess}</Arn>
      <AssumedRoleId>AROA{secrets.token_hex(8).upper()}:{sess}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{token}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{time.strftime("%Y-%m-%dT%H:%M:%SZ", exp)}</Expiration>
      <AccessKeyId>{key_id}</AccessKeyId>
    </Credentials>
    <Provider>{claims.get("iss", "")}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{secrets.token_hex(16)}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
""", "text/xml")

    def ecr_error(self, status, typ, message):
        self.refused()
        self.send(status, {"__type": typ, "message": message}, "application/x-amz-json-1.1")

    def ecr(self, path, raw):
        if self.headers.get("X-Amz-Target") != ECR_TARGET:
            return self.ecr_error(400, "UnknownOperationException", "unknown operation")
        if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            return self.ecr_error(400, "SerializationException", "content type")
        try:
            sigv4_check("POST", path.path, path.query, self.headers, raw, "ecr", args.region)
        except ValueError as e:
            return self.ecr_error(400 if str(e) != "UnrecognizedClientException" else 403, str(e),
                                  "The request signature we calculated does not match the signature you provided.")
        try:
            if not isinstance(json.loads(raw or b"null"), dict):
                raise ValueError
        except ValueError:
            return self.ecr_error(400, "SerializationException", "body")
        password = issue("ecr-password")
        with lock:
            ecr_passwords.add(password)
            counts["ecr"] += 1
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        self.send(200, {"authorizationData": [{
            "authorizationToken": token,
            "expiresAt": time.time() + args.ttl,
            "proxyEndpoint": f"https://{args.ecr_name}"}]}, "application/x-amz-json-1.1")

    def aad_error(self, status, error, description):
        self.refused()
        self.send(status, {"error": error, "error_description": description,
                           "error_codes": [700211], "trace_id": secrets.token_hex(8)})

    def aad(self, tenant, raw):
        try:
            f = self.form(raw)
        except ValueError:
            return self.aad_error(400, "invalid_request", "AADSTS900144: the request body must contain a form")
        if tenant != args.tenant:
            return self.aad_error(400, "invalid_request", "AADSTS90002: Tenant not found")
        if f.get("grant_type") != "client_credentials":
            return self.aad_error(400, "unsupported_grant_type", "grant_type")
        if f.get("client_id") != args.client_id:
            return self.aad_error(400, "unauthorized_client", "AADSTS700016: application not found")
        if f.get("scope") != "https://management.azure.com/.default":
            return self.aad_error(400, "invalid_scope", "AADSTS70011: scope")
        if f.get("client_assertion_type") != JWT_BEARER:
            return self.aad_error(400, "invalid_request", "client_assertion_type")
        try:
            verify_jwt(f.get("client_assertion", ""), "api://AzureADTokenExchange")
        except ValueError as e:
            return self.aad_error(401, "invalid_client", f"AADSTS700211: {e}")
        token = issue("aad-access")
        with lock:
            aad_tokens.add(token)
            counts["aad"] += 1
        self.send(200, {"token_type": "Bearer", "expires_in": args.ttl, "ext_expires_in": args.ttl,
                        "access_token": token})

    # --- the metadata port -------------------------------------------------------------------
    def metadata(self):
        path = urllib.parse.urlsplit(self.path).path
        self.body()
        if self.headers.get("Metadata-Flavor") != "Google" or self.headers.get("X-Forwarded-For"):
            self.refused()
            return self.send(403, "Missing Metadata-Flavor:Google header.\n", "text/html",
                             [("Metadata-Flavor", "Google")])
        if self.command != "GET" or path != "/computeMetadata/v1/instance/service-accounts/default/token":
            return self.send(404, "Not Found\n", "text/html", [("Metadata-Flavor", "Google")])
        token = issue("ya29.gce")
        with lock:
            gce_tokens.add(token)
            counts["gce"] += 1
        self.send(200, {"access_token": token, "expires_in": args.ttl, "token_type": "Bearer"},
                  "application/json", [("Metadata-Flavor", "Google")])

    # --- the registry port -------------------------------------------------------------------
    def basic(self):
        a = self.headers.get("Authorization", "")
        if not a.startswith("Basic "):
            return None, None
        try:
            u, _, p = base64.b64decode(a[6:], validate=True).decode().partition(":")
        except ValueError:
            return None, None
        return u, p

    def registry(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        origin = f"{'https' if self.server.tls else 'http'}://{self.headers.get('Host')}"
        if host == args.acr_name and url.path == "/oauth2/exchange" and self.command == "POST":
            try:
                f = self.form(raw)
            except ValueError:
                return self.send(400, {"errors": [{"code": "BAD_REQUEST", "message": "form"}]})
            if (f.get("grant_type") != "access_token" or f.get("service") != args.acr_name or
                    f.get("tenant") != args.tenant or f.get("access_token") not in aad_tokens):
                self.refused()
                return self.send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "exchange refused"}]})
            rt = issue("acr-refresh")
            with lock:
                acr_refresh.add(rt)
                counts["exchange"] += 1
            return self.send(200, {"refresh_token": rt})
        token_path = {args.acr_name: "/oauth2/token", args.gcp_name: "/v2/token"}.get(host)
        if token_path and url.path == token_path and self.command == "GET":
            q = dict(urllib.parse.parse_qsl(url.query))
            u, p = self.basic()
            ok = (host == args.acr_name and u == NULL_GUID and p in acr_refresh) or \
                 (host == args.gcp_name and u == "oauth2accesstoken" and p in gce_tokens)
            if not ok or q.get("service") != host or not q.get("scope", "").startswith("repository:"):
                self.refused()
                return self.send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
            t = issue("registry-bearer")
            with lock:
                bearer_tokens[t] = host
                counts["registry_token"] += 1
            return self.send(200, {"access_token": t, "token": t} if host == args.gcp_name else {"access_token": t})
        if not url.path.startswith("/v2/"):
            return self.send(404, {"errors": [{"code": "NOT_FOUND"}]})
        a = self.headers.get("Authorization", "")
        if host == args.ecr_name:
            u, p = self.basic()
            allowed = u == "AWS" and p in ecr_passwords
            challenge = f'Basic realm="{origin}/",service="ecr.amazonaws.com"'
        elif host in (args.gcp_name, args.acr_name):
            # A repository the identity may not read ("/denied"): the token is issued, as ACR and
            # Artifact Registry do, but does not grant the pull.
            allowed = a.startswith("Bearer ") and bearer_tokens.get(a[7:]) == host and \
                not url.path.startswith("/v2/team/denied/")
            scope = f'repository:{url.path[4:].split("/manifests/")[0].split("/blobs/")[0]}:pull'
            challenge = f'Bearer realm="{origin}{token_path}",service="{host}",scope="{scope}"'
        else:
            return self.send(404, {"errors": [{"code": "NAME_UNKNOWN"}]})
        if not allowed:
            if a:
                self.refused()
            return self.send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                             "application/json", [("WWW-Authenticate", challenge),
                                                  ("Docker-Distribution-Api-Version", "registry/2.0")])
        return self.forward()

    def forward(self):
        b = urllib.parse.urlsplit(args.backend)
        ctx = ssl.create_default_context(cafile=args.ca)
        c = http.client.HTTPSConnection(b.hostname, b.port, context=ctx, timeout=30)
        cred = base64.b64encode(f"{args.backend_user}:{args.backend_password}".encode()).decode()
        hdrs = {"Authorization": "Basic " + cred}
        if self.headers.get("Accept"):
            hdrs["Accept"] = self.headers["Accept"]
        c.request(self.command, self.path, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        extra = [(k, v) for k, v in r.getheaders()
                 if k.lower() in ("docker-content-digest", "location", "docker-distribution-api-version")]
        self.send(r.status, data, r.getheader("Content-Type", "application/octet-stream"), extra)
        c.close()

    def dispatch(self):
        try:
            {"api": self.api, "metadata": self.metadata, "registry": self.registry}[self.server.kind]()
        except ValueError:
            self.send(400, {"message": "bad request"})

    do_GET = do_POST = do_HEAD = do_PUT = dispatch


def serve(kind, port, tls):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.kind = kind
    srv.tls = tls
    srv.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def main():
    global args
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("jwt", help="mint a web identity token signed with --jwt-key")
    j.add_argument("--jwt-key", required=True)
    j.add_argument("--aud", required=True)
    j.add_argument("--sub", default="system:serviceaccount:cloudtaser-system:cloudtaser-operator")
    j.add_argument("--iss", default="https://oidc.standin.example")
    j.add_argument("--ttl", type=int, default=3600)
    s = sub.add_parser("serve")
    for a in ("--cert", "--key", "--ca", "--backend", "--backend-user", "--backend-password",
              "--jwt-key", "--canary", "--ready-file"):
        s.add_argument(a, required=True)
    s.add_argument("--api-port", type=int, required=True)
    s.add_argument("--metadata-port", type=int, required=True)
    s.add_argument("--registry-port", type=int, required=True)
    s.add_argument("--plain-registry-port", type=int, default=0,
                   help="the registries over plain HTTP too (an insecure registry's fallback)")
    s.add_argument("--ttl", type=int, default=3600)
    s.add_argument("--region", default="us-east-1")
    s.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/cloudtaser-operator")
    s.add_argument("--static-key", default="", help="ID:SECRET of a long-term key pair")
    s.add_argument("--tenant", default="72f988bf-86f1-41af-91ab-2d7cd011db47")
    s.add_argument("--client-id", default="1b6b5d84-0c9b-4a4a-8c2f-1f0c6a3c2e11")
    s.add_argument("--ecr-name", default="123456789012.dkr.ecr.us-east-1.amazonaws.com")
    s.add_argument("--gcp-name", default="us-docker.pkg.dev")
    s.add_argument("--acr-name", default="ctregistry.azurecr.io")
    args = p.parse_args()
    if args.cmd == "jwt":
        now = int(time.time())
        print(mkjwt(args.jwt_key, {"iss": args.iss, "sub": args.sub, "aud": args.aud,
                                   "iat": now, "exp": now + args.ttl}))
        return
    if args.static_key:
        kid, _, sec = args.static_key.partition(":")
        aws_keys[kid] = {"secret": sec, "token": None}
    serve("api", args.api_port, True)
    serve("metadata", args.metadata_port, False)
    serve("registry", args.registry_port, True)
    if args.plain_registry_port:
        serve("registry", args.plain_registry_port, False)
    with open(args.ready_file + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(args.ready_file + ".tmp", args.ready_file)
    threading.Event().wait()


if __name__ == "__main__":
    main()
