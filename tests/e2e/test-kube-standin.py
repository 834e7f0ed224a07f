#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The stand-in kube-apiserver answers like the real one.

1. The real kubectl (v1.32) drives it: version, get -o json, apply (create, unchanged, configured),
   annotate, rollout restart (the strategic-merge PATCH of CONTRACT B5, generation +1), create
   secret (protobuf body) / get -o jsonpath / delete, create token (protobuf TokenRequest), patch
   of a MutatingWebhookConfiguration caBundle in the three forms of the kubectl capture.
2. Direct HTTP checks of Status bodies (CONTRACT B8, fixture shapes), Conflict on a stale lease
   PUT (B4), TokenReview (B3.1), watch, selectors, paging.
3. Mutating admission with real HTTPS webhooks run by this test: a JSONPatch that adds a label,
   a denial, a webhook that is down (failurePolicy Fail and Ignore), a slow one (timeoutSeconds),
   objectSelector / namespaceSelector, service clientConfig with certificate name checks, dryRun,
   reinvocation; the AdmissionReview sent is checked field by field against CONTRACT B1.

--target real: the same checks against a real kube-apiserver 1.37 (a private control plane,
tests/standin/realkube.py); the checks that need the stand-in's control API (stats, TokenReview
table, webhook-call log, service addresses) or its bash library run against the stand-in alone.
"""

import base64
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.environ.get("CLOUDTASER_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(TOP, "tests/standin"))
from kubestandin import KubeStandin  # noqa: E402

REAL = "--target=real" in sys.argv or sys.argv[-2:] == ["--target", "real"]
if REAL:
    if os.geteuid() != 0:
        print("1..0 # SKIP the real servers' tests run as root (as test-real-*)")
        sys.exit(0)
    from realkube import RealKube  # noqa: E402

FIX = os.path.join(TOP, "tests", "fixtures", "k8s")
n = 0
failed = 0


def ok(cond, name, diag=None):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond and diag is not None:
        for line in str(diag).splitlines()[:40]:
            print("# " + line)
    return cond


def fixture(name):
    with open(os.path.join(FIX, name)) as f:
        return json.load(f)


def same_shape(a, b):
    """Same keys at every level and the same JSON types."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same_shape(a[k], b[k]) for k in a)
    return type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)))


# ---------------------------------------------------------------------------------------------
# a tiny HTTPS admission webhook

class Hook:
    def __init__(self, tmp):
        self.tmp = tmp
        self.reviews = []
        self.lock = threading.Lock()
        self.ca, cert, key = make_webhook_pki(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    hook.reviews.append({"path": self.path, "headers": dict(self.headers),
                                         "review": body})
                req = body["request"]
                path = self.path.split("?")[0]
                resp = {"uid": req["uid"], "allowed": True}
                if path == "/add-label":
                    labels = (req["object"].get("metadata") or {}).get("labels")
                    ops = [{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}]
                    if labels is None:
                        ops = [{"op": "add", "path": "/metadata/labels", "value": {"injected": "yes"}}]
                    resp.update(patchType="JSONPatch",
                                patch=base64.b64encode(json.dumps(ops).encode()).decode(),
                                warnings=["label added"], auditAnnotations={"k": "v"})
                elif path == "/add-annotation":
                    ann = (req["object"].get("metadata") or {}).get("annotations")
                    ops = [{"op": "add", "path": "/metadata/annotations/example.com~1seen",
                            "value": "1"}]
                    if ann is None:
                        ops = [{"op": "add", "path": "/metadata/annotations",
                                "value": {"example.com/seen": "1"}}]
                    resp.update(patchType="JSONPatch",
                                patch=base64.b64encode(json.dumps(ops).encode()).decode())
                elif path == "/bad-patch":
                    ops = [{"op": "add", "path": "/metadata/nosuchparent/x", "value": "1"}]
                    resp.update(patchType="JSONPatch",
                                patch=base64.b64encode(json.dumps(ops).encode()).decode())
                elif path == "/deny":
                    resp = {"uid": req["uid"], "allowed": False,
                            "status": {"code": 403, "reason": "Forbidden", "message": "no secrets for you"}}
                elif path == "/wrong-uid":
                    resp["uid"] = "not-the-uid"
                elif path == "/slow":
                    time.sleep(20)  # far beyond the 1 s timeoutSeconds of the test below
                out = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": resp}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                s, a = self.socket.accept()
                return ctx.wrap_socket(s, server_side=True), a

            def handle_error(self, *a):
                pass

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            out, self.reviews = self.reviews, []
        return out

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def make_webhook_pki(d):
    """A CA and a serving cert for hook.webhooks.svc and 127.0.0.1 (openssl CLI)."""
    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
    ca, cakey = os.path.join(d, "hook-ca.pem"), os.path.join(d, "hook-ca-key.pem")
    cert, key = os.path.join(d, "hook.pem"), os.path.join(d, "hook-key.pem")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", cakey, "-out", ca, "-days", "2", "-subj", "/CN=hook test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    csr = os.path.join(d, "hook.csr")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=hook.webhooks.svc")
    ext = os.path.join(d, "hook.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:hook.webhooks.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-out", cert,
        "-days", "2", "-extfile", ext)
    return ca, cert, key


def mwc(name, hooks):
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": hooks}


def wh(name, url=None, ca=None, service=None, **kw):
    cc = {}
    if url:
        cc["url"] = url
    if service:
        cc["service"] = service
    if ca:
        with open(ca, "rb") as f:
            cc["caBundle"] = base64.b64encode(f.read()).decode()
    h = {"name": name, "clientConfig": cc,
         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                    "resources": ["pods"]}],
         "sideEffects": "None", "admissionReviewVersions": ["v1"]}
    h.update(kw)
    return h


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "p1", "labels": {"app": "demo"}},
       "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "1"]}]}}


def pod(name=None, labels=None, generate=None):
    p = json.loads(json.dumps(POD))
    if generate:
        del p["metadata"]["name"]
        p["metadata"]["generateName"] = generate
    elif name:
        p["metadata"]["name"] = name
    if labels is not None:
        p["metadata"]["labels"] = labels
    return p


# ---------------------------------------------------------------------------------------------

def test_kubectl(k):
    rc, out, err = k.kubectl("version", "-o", "json")
    ok(rc == 0 and json.loads(out)["serverVersion"]["gitVersion"] == ("v1.37.2" if k.real else "v1.32.4"),
       "kubectl version", err)
    for what in ("pods", "deployments"):
        rc, out, err = k.kubectl("get", what, "-A", "-o", "json")
        ok(rc == 0 and json.loads(out)["kind"] == "List" and json.loads(out)["items"] == [],
           "kubectl get %s -A -o json (empty)" % what, err)
    rc, out, err = k.kubectl("get", "namespaces", "-o", "name")
    ok(rc == 0 and "namespace/kube-system" in out.split(), "kubectl get namespaces", err)

    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                                          "ports": [{"containerPort": 80}]}]}}}}
    path = os.path.join(k.dir, "dep.json")
    with open(path, "w") as f:
        json.dump(dep, f)
    rc, out, err = k.kubectl("apply", "-f", path)
    ok(rc == 0 and out.strip() == "deployment.apps/web created", "kubectl apply creates", out + err)
    st, _, d1 = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    ok(st == 200 and d1["metadata"]["generation"] == 1 and d1["spec"]["strategy"]["type"] == "RollingUpdate"
       and "kubectl.kubernetes.io/last-applied-configuration" in d1["metadata"]["annotations"]
       and d1["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent",
       "stored deployment: generation 1, defaults, last-applied annotation", d1)
    rc, out, err = k.kubectl("apply", "-f", path)
    st, _, d2 = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    ok(rc == 0 and out.strip() == "deployment.apps/web unchanged"
       and d2["metadata"]["resourceVersion"] == d1["metadata"]["resourceVersion"],
       "kubectl apply again: unchanged, same resourceVersion", out + err)
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    with open(path, "w") as f:
        json.dump(dep, f)
    rc, out, err = k.kubectl("apply", "-f", path)
    st, _, d3 = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    c = d3["spec"]["template"]["spec"]["containers"]
    ok(rc == 0 and out.strip() == "deployment.apps/web configured" and d3["metadata"]["generation"] == 2
       and len(c) == 1 and c[0]["image"] == "nginx:1.26" and c[0]["ports"][0]["containerPort"] == 80,
       "kubectl apply changed image: configured, strategic merge by container name, generation 2",
       out + err + json.dumps(d3))

    rc, out, err = k.kubectl("annotate", "deployment", "web", "example.com/protected=true")
    st, _, d4 = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    # a Deployment's annotations are copied to its ReplicaSets: changing them bumps the generation
    # (apps deployment strategy PrepareForUpdate), as a real kube-apiserver does
    ok(rc == 0 and d4["metadata"]["annotations"].get("example.com/protected") == "true"
       and d4["metadata"]["generation"] == 3, "kubectl annotate (merge patch; a Deployment's generation +1)",
       out + err + json.dumps(d4["metadata"]))
    rc, out, err = k.kubectl("rollout", "restart", "deployment/web")
    st, _, d5 = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    ra = (d5["spec"]["template"]["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt", "")
    ok(rc == 0 and out.strip() == "deployment.apps/web restarted" and d5["metadata"]["generation"] == 4
       and len(ra) == 20 and ra.endswith("Z") and d5["metadata"]["annotations"].get("example.com/protected") == "true",
       "kubectl rollout restart: template annotation restartedAt, generation 4", out + err)
    if not k.real:  # the stand-in's request counts
        stats = k.control("GET", "/_standin/stats")["requests"]
        ok(stats.get("PATCH /apis/apps/v1/namespaces/default/deployments/web 200", 0) >= 3,
           "apply/annotate/restart arrived as PATCHes", stats)

    rc, out, err = k.kubectl("create", "secret", "generic", "s1", "--from-literal=password=hunter2",
                             "--from-literal=user=bob")
    ok(rc == 0 and out.strip() == "secret/s1 created", "kubectl create secret generic (protobuf body)", err)
    rc, out, err = k.kubectl("get", "secret", "s1", "-o", "jsonpath={.data.password}")
    ok(rc == 0 and base64.b64decode(out) == b"hunter2", "kubectl get secret -o jsonpath", out + err)
    st, _, s1 = k.req("GET", "/api/v1/namespaces/default/secrets/s1")
    ok(s1.get("type") == "Opaque" and set(s1["data"]) == {"password", "user"}, "secret type and keys", s1)
    rc, out, err = k.kubectl("delete", "secret", "s1")
    ok(rc == 0 and out.strip() == 'secret "s1" deleted', "kubectl delete secret", out + err)
    rc, out, err = k.kubectl("get", "secret", "s1")
    ok(rc == 1 and 'Error from server (NotFound): secrets "s1" not found' in err,
       "kubectl get of a deleted secret: NotFound", err)
    rc, out, err = k.kubectl("create", "configmap", "c1", "--from-literal=a=b")
    st, _, cm = k.req("GET", "/api/v1/namespaces/default/configmaps/c1")
    ok(rc == 0 and cm.get("data") == {"a": "b"}, "kubectl create configmap", err)

    rc, out, err = k.kubectl("create", "token", "default", "--audience=vault", "--duration=15m")
    tok = out.strip()
    ok(rc == 0 and tok.count(".") == 2, "kubectl create token (protobuf TokenRequest)", err)
    if tok.count(".") == 2:
        claims = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
        ok(claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 900
           and claims["sub"] == "system:serviceaccount:default:default",
           "token claims: audience, 15 min, subject", claims)
        header = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
        ok(header.get("alg") == "RS256" and len(header.get("kid", "")) == 43,
           "token signed RS256 with a kid, as a real kube-apiserver signs (a real OpenBao refuses HS256)", header)
        head, sig = tok.rsplit(".", 1)
        bad = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        st, _, tr = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                          {"spec": {"token": bad, "audiences": ["vault"]}})
        ok(st == 201 and "authenticated" not in tr["status"] and tr["status"]["user"] == {},
           "TokenReview of the token with a changed signature: not authenticated", tr)
        st, _, tr = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "spec": {"token": tok, "audiences": ["vault"]}})
        u = tr["status"].get("user", {})
        ok(st == 201 and tr["status"].get("authenticated") is True
           and u.get("username") == "system:serviceaccount:default:default"
           and u.get("groups") == ["system:serviceaccounts", "system:serviceaccounts:default",
                                   "system:authenticated"]
           and tr["status"]["audiences"] == ["vault"] and set(tr["metadata"]) == {"managedFields"}
           and tr["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:audiences": {}, "f:token": {}}}
           and u.get("uid") and u.get("extra", {}).get("authentication.kubernetes.io/credential-id")
           == ["JTI=" + claims["jti"]],
           "TokenReview of the minted token: 201, authenticated, SA user with uid and credential id, "
           "metadata only managedFields (1.37; B3.1 showed creationTimestamp null)", tr)
        st, _, tr = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                          {"spec": {"token": tok, "audiences": ["coffre"]}})
        ok(st == 201 and "authenticated" not in tr["status"] and tr["status"]["user"] == {}
           and "token audiences" in tr["status"]["error"], "TokenReview audience mismatch: 201 with error", tr)

    # caBundle patches exactly as in the kubectl capture (CONTRACT B2)
    m = mwc("inj", [wh("inj.example.com", url="https://127.0.0.1:1/x"),
                    wh("other.example.com", url="https://127.0.0.1:1/y")])
    for w in m["webhooks"]:
        w["clientConfig"]["caBundle"] = "Zm9v"
        w["objectSelector"] = {"matchLabels": {"never": "matches"}}
    with open(os.path.join(k.dir, "mwc.json"), "w") as f:
        json.dump(m, f)
    rc, out, err = k.kubectl("apply", "-f", os.path.join(k.dir, "mwc.json"))
    ok(rc == 0, "kubectl apply MutatingWebhookConfiguration", err)
    rc, out, err = k.kubectl("patch", "mutatingwebhookconfiguration", "inj", "--type=json",
                             "-p", '[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":"YmFy"}]')
    st, _, m1 = k.req("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inj")
    ok(rc == 0 and m1["webhooks"][0]["clientConfig"]["caBundle"] == "YmFy"
       and m1["webhooks"][1]["clientConfig"]["caBundle"] == "Zm9v" and m1["metadata"]["generation"] == 2,
       "kubectl patch --type=json caBundle", err)
    rc, out, err = k.kubectl("patch", "mutatingwebhookconfiguration", "inj", "-p",
                             '{"webhooks":[{"name":"other.example.com","clientConfig":{"caBundle":"YmF6"}}]}')
    st, _, m2 = k.req("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inj")
    ok(rc == 0 and [w["name"] for w in m2["webhooks"]] == ["inj.example.com", "other.example.com"]
       and m2["webhooks"][1]["clientConfig"] == {"url": "https://127.0.0.1:1/y", "caBundle": "YmF6"}
       and m2["webhooks"][0]["clientConfig"]["caBundle"] == "YmFy",
       "kubectl patch strategic merge: webhook matched by name, others kept", m2)
    rc, out, err = k.kubectl("delete", "mutatingwebhookconfiguration", "inj")
    ok(rc == 0, "kubectl delete mutatingwebhookconfiguration", err)

    rc, out, err = k.kubectl("delete", "deployment", "web")
    ok(rc == 0 and out.strip() == 'deployment.apps "web" deleted', "kubectl delete deployment", out + err)


def test_http(k):
    st, _, b = k.req("GET", "/api/v1/namespaces/default/pods/grafana")
    ok(st == 404 and b == fixture("status-v1-notfound-404.json"),
       "404 Status body equals the api-conventions fixture (B8)", b)
    st, _, b = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    ok(st == 404 and b["message"] == 'deployments.apps "nope" not found'
       and b["details"] == {"name": "nope", "group": "apps", "kind": "deployments"},
       "404 for a grouped resource: resource.group in message, details.group", b)
    st, _, b = k.req("GET", "/api/v1/namespaces/default/pods", token="wrong")
    ok(st == 401 and b == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401},
       "401 Status for a bad token", b)
    st, _, b = k.req("GET", "/api/v1/pods", token="")
    ok(st == 403 and b["message"] == 'pods is forbidden: User "system:anonymous" cannot list resource "pods" '
       'in API group "" at the cluster scope' and b["details"] == {"kind": "pods"},
       "no credentials: the anonymous user, 403 Forbidden from RBAC", b)
    st, _, b = k.req("GET", "/apis/apps/v1/namespaces/default/deployments/x", token="")
    ok(st == 403 and b["message"] == 'deployments.apps "x" is forbidden: User "system:anonymous" cannot get '
       'resource "deployments" in API group "apps" in the namespace "default"'
       and b["details"] == {"name": "x", "group": "apps", "kind": "deployments"},
       "anonymous get in a namespace: 403 with name and group", b)
    if not k.real:  # the real server answers protobuf; the stand-in only speaks JSON
        st, _, b = k.req("GET", "/api/v1/pods", headers={"Accept": "application/vnd.kubernetes.protobuf"})
        ok(st == 406 and b["reason"] == "NotAcceptable", "protobuf-only Accept: 406 NotAcceptable", b)
        st, h, b = k.req("GET", "/api/v1/pods", headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"})
        ok(st == 200 and h["Content-Type"] == "application/json" and b["kind"] == "PodList",
           "protobuf-or-JSON Accept: JSON reply", b)
    st, _, b = k.req("GET", "/api/v1/foos")
    ok(st == 404 and b["message"] == "the server could not find the requested resource" and b["details"] == {},
       "unknown resource: 404 Status", b)

    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "my-lock", "namespace": "default"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                      "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z",
                      "leaseTransitions": 0}}
    base = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    rv0 = k.req("GET", base)[2]["metadata"]["resourceVersion"]
    st, _, l1 = k.req("POST", base, lease)
    ok(st == 201 and l1["metadata"]["resourceVersion"] and l1["metadata"]["uid"]
       and l1["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z", "create lease: 201", l1)
    st, _, b = k.req("POST", base, lease)
    ok(st == 409 and b == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": 'leases.coordination.k8s.io "my-lock" already exists',
                           "reason": "AlreadyExists",
                           "details": {"name": "my-lock", "group": "coordination.k8s.io", "kind": "leases"},
                           "code": 409}, "second create: 409 AlreadyExists", b)
    l1["spec"]["holderIdentity"] = "b"
    st, _, l2 = k.req("PUT", base + "/my-lock", l1)
    ok(st == 200 and int(l2["metadata"]["resourceVersion"]) > int(l1["metadata"]["resourceVersion"]),
       "PUT with current resourceVersion: 200, resourceVersion bumped", l2)
    l1["spec"]["holderIdentity"] = "c"
    st, _, b = k.req("PUT", base + "/my-lock", l1)
    ok(st == 409 and b == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": 'Operation cannot be fulfilled on leases.coordination.k8s.io "my-lock": '
                                      'the object has been modified; please apply your changes to the latest '
                                      'version and try again',
                           "reason": "Conflict",
                           "details": {"name": "my-lock", "group": "coordination.k8s.io", "kind": "leases"},
                           "code": 409}, "stale PUT: 409 Conflict exactly as CONTRACT B4", b)
    ok(same_shape({k2: v for k2, v in b.items() if k2 != "details"},
                  {k2: v for k2, v in fixture("allfields-core.v1.Status.json").items()
                   if k2 not in ("details",)} | {"metadata": {}}),
       "Status keys are those of the all-fields fixture", b)
    st, _, b = k.req("PUT", base + "/other", dict(lease, metadata={"name": "other", "namespace": "default"}))
    ok(st == 201, "PUT of a missing lease creates it (lease AllowCreateOnUpdate)", b)
    st, _, b = k.req("PUT", "/api/v1/namespaces/default/configmaps/missing",
                     {"metadata": {"name": "missing"}, "data": {}})
    ok(st == 404, "PUT of a missing configmap: 404", b)

    # json-patch / merge-patch / strategic merge on a configmap and a pod
    cmb = "/api/v1/namespaces/default/configmaps"
    k.req("POST", cmb, {"metadata": {"name": "p", "labels": {"a": "1"}}, "data": {"x": "1", "y": "2"}})
    st, _, b = k.req("PATCH", cmb + "/p", [{"op": "test", "path": "/data/x", "value": "1"},
                                           {"op": "remove", "path": "/data/y"},
                                           {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "c"}}],
                     content_type="application/json-patch+json")
    ok(st == 200 and b["data"] == {"x": "1"} and b["metadata"]["annotations"] == {"a/b": "c"},
       "JSON patch (test, remove, add)", b)
    st, _, b = k.req("PATCH", cmb + "/p", [{"op": "add", "path": "/metadata/labels2/x", "value": "1"}],
                     content_type="application/json-patch+json")
    ok(st == 422 and b["reason"] == "Invalid", "JSON patch add under a missing parent: 422", b)
    st, _, b = k.req("PATCH", cmb + "/p", {"data": {"x": None, "z": "3"}},
                     content_type="application/merge-patch+json")
    ok(st == 200 and b["data"] == {"z": "3"}, "merge patch (null deletes)", b)
    st, _, b = k.req("PATCH", cmb + "/p", {"metadata": {"resourceVersion": "1"}, "data": {"q": "1"}},
                     content_type="application/merge-patch+json")
    ok(st == 409 and b["reason"] == "Conflict", "patch carrying a stale resourceVersion: 409", b)
    st, _, b = k.req("PATCH", cmb + "/p", {"data": {}}, content_type="application/apply-patch+yaml")
    if k.real:  # the real server applies (a field manager is required); the stand-in does not model it
        ok(st == 422 and b["reason"] == "Invalid" and "fieldManager: Required value" in b["message"],
           "server-side apply without a field manager: 422", b)
    else:
        ok(st == 415 and b["reason"] == "UnsupportedMediaType", "server-side apply: 415 (not modelled)", b)

    # list: selectors, paging
    for i in range(3):
        k.req("POST", cmb, {"metadata": {"name": "l%d" % i, "labels": {"tier": "t%d" % (i % 2)}}})
    st, _, b = k.req("GET", cmb + "?labelSelector=tier%3Dt0")
    ok(st == 200 and [o["metadata"]["name"] for o in b["items"]] == ["l0", "l2"]
       and "kind" not in b["items"][0] and b["kind"] == "ConfigMapList" and b["metadata"]["resourceVersion"],
       "list with labelSelector; items carry no kind (B0)", b)
    st, _, b = k.req("GET", cmb + "?labelSelector=tier+in+(t1),!nope")
    ok(st == 200 and [o["metadata"]["name"] for o in b["items"]] == ["l1"], "set-based selector", b)
    st, _, b = k.req("GET", cmb + "?limit=2")
    ok(st == 200 and len(b["items"]) == 2 and b["metadata"].get("continue"), "limit gives continue", b)
    st, _, b2 = k.req("GET", cmb + "?limit=2&continue=" + b["metadata"]["continue"])
    ok(st == 200 and b2["items"][0]["metadata"]["name"] != b["items"][-1]["metadata"]["name"],
       "continue gives the next page", b2)

    # finalizers hold a deleted object until they are removed
    st, _, b = k.req("POST", cmb, {"metadata": {"name": "fin", "finalizers": ["example.com/x"]}})
    st, _, b = k.req("DELETE", cmb + "/fin")
    st2, _, b2 = k.req("GET", cmb + "/fin")
    ok(st == 200 and st2 == 200 and b2["metadata"].get("deletionTimestamp"),
       "delete with finalizers: object kept with deletionTimestamp", b2)
    st, _, b = k.req("PATCH", cmb + "/fin", {"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")
    st2, _, b2 = k.req("GET", cmb + "/fin")
    ok(st == 200 and st2 == 404, "removing the last finalizer deletes it", (st, b, st2))

    # namespace required; generateName
    st, _, b = k.req("POST", "/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "x"}})
    ok(st == 404 and b["message"] == 'namespaces "nope" not found', "create in a missing namespace: 404", b)
    st, _, b = k.req("POST", cmb, {"metadata": {"generateName": "gen-"}})
    ok(st == 201 and b["metadata"]["name"].startswith("gen-") and len(b["metadata"]["name"]) == 9,
       "generateName", b)
    st, _, b = k.req("POST", cmb, {"metadata": {"name": "Bad_Name"}})
    ok(st == 422 and b["reason"] == "Invalid" and b["details"]["kind"] == "ConfigMap"
       and b["details"]["causes"][0]["field"] == "metadata.name", "invalid name: 422 with causes", b)

    # watch: a stream of JSON events
    st, _, pl = k.req("GET", cmb)
    rv = pl["metadata"]["resourceVersion"]
    got = []

    def watcher():
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", k.port, context=k.ssl, timeout=10)
        c.request("GET", cmb + "?watch=1&resourceVersion=%s&timeoutSeconds=3" % rv,
                  headers={"Authorization": "Bearer " + k.token})
        r = c.getresponse()
        for line in r:
            if line.strip():
                got.append(json.loads(line))
            if len(got) >= 3:
                break
        c.close()
    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(0.3)
    k.req("POST", cmb, {"metadata": {"name": "w"}, "data": {"a": "1"}})
    k.req("PATCH", cmb + "/w", {"data": {"a": "2"}}, content_type="application/merge-patch+json")
    st, _, b = k.req("DELETE", cmb + "/w")
    t.join(10)
    ok([e["type"] for e in got] == ["ADDED", "MODIFIED", "DELETED"]
       and got[1]["object"]["data"] == {"a": "2"} and got[0]["object"]["kind"] == "ConfigMap",
       "watch from a resourceVersion: ADDED, MODIFIED, DELETED", got)
    ok(st == 200 and b["status"] == "Success" and b["details"]["name"] == "w" and b["details"]["uid"],
       "delete of a configmap answers a Success Status", b)
    st, _, b = k.req("GET", base + "?watch=1&resourceVersion=%s&timeoutSeconds=1" % rv0)
    evs = [json.loads(x) for x in k.last_raw.splitlines() if x.strip()]
    ok(st == 200 and [(e["type"], e["object"]["metadata"]["name"]) for e in evs]
       == [("ADDED", "my-lock"), ("MODIFIED", "my-lock"), ("ADDED", "other")]
       and evs[1]["object"]["spec"]["holderIdentity"] == "b",
       "lease watch replayed from an earlier resourceVersion, ends at timeoutSeconds", evs)
    st, _, b = k.req("GET", base + "?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dother")
    evs = [json.loads(x) for x in k.last_raw.splitlines() if x.strip()]
    ok(st == 200 and [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "other")],
       "watch without resourceVersion: synthetic ADDED for current objects, fieldSelector", evs)

    if not k.real:  # the stand-in's TokenReview table
        # TokenReview table from the control API
        k.control("POST", "/_standin/tokenreview", {"token": "opaque-1", "user": {"username": "alice", "groups": ["g"]},
                                                    "audiences": ["vault"]})
        k.control("POST", "/_standin/tokenreview", {"token": "opaque-2", "authenticated": False,
                                                    "error": "[invalid bearer token, service account token has expired]"})
        st, _, b = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "opaque-1"}})
        ok(st == 201 and b["status"]["authenticated"] and b["status"]["user"]["username"] == "alice",
           "TokenReview from the control table", b)
        st, _, b = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "opaque-2"}})
        ok(st == 201 and b["status"] == {"user": {}, "error": "[invalid bearer token, service account token has expired]"},
           "TokenReview failure shape (B3.1)", b)
    st, _, b = k.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {}})
    ok(st == 400 and b["reason"] == "BadRequest", "TokenReview without a token: 400", b)
    st, _, b = k.req("GET", "/apis/authentication.k8s.io/v1/tokenreviews")
    ok(st == 405 and b["reason"] == "MethodNotAllowed", "GET tokenreviews: 405", b)


def test_webhooks(k, tmp):
    hook = Hook(tmp)
    _settle["hook"] = hook
    try:
        _test_webhooks(k, hook)
    finally:
        _settle["hook"] = None
        hook.stop()


def create_pod(k, p, ns="default", query=""):
    return k.req("POST", "/api/v1/namespaces/%s/pods%s" % (ns, query), p)


MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
_settle = {"hook": None, "n": 0}


def settle(k):
    """A real kube-apiserver applies a webhook configuration change once its informer has seen
    it, a moment later (the stand-in at once). Barrier: replace a sentinel configuration that
    sorts first and send dry-run pods it selects until the webhook sees the new one; the informer
    delivers changes in order, so every earlier change is in effect as well."""
    hook = _settle["hook"]
    if not k.real or hook is None:
        return
    _settle["n"] += 1
    n = str(_settle["n"])
    k.req("DELETE", MWC + "/0-sentinel")
    st, _, b = k.req("POST", MWC, mwc("0-sentinel", [wh("sentinel.example.com", url="https://127.0.0.1:%d/sentinel"
                                                        % hook.port, ca=hook.ca, failurePolicy="Ignore",
                                                        objectSelector={"matchLabels": {"ct-sentinel": n}})]))
    assert st == 201, b
    end = time.monotonic() + 60
    while time.monotonic() < end:
        create_pod(k, pod(generate="sentinel-", labels={"ct-sentinel": n}), query="?dryRun=All")
        if any(r["path"].startswith("/sentinel") and
               r["review"]["request"]["object"]["metadata"]["labels"].get("ct-sentinel") == n for r in hook.take()):
            return
        time.sleep(0.1)
    raise RuntimeError("webhook configurations not in effect 60 s after the change")


def put_mwc(k, m):
    k.req("DELETE", MWC + "/" + m["metadata"]["name"])
    st, _, b = k.req("POST", MWC, m)
    assert st == 201, b
    settle(k)


def del_mwc(k, name):
    k.req("DELETE", MWC + "/" + name)
    settle(k)


def _test_webhooks(k, hook):
    url = "https://127.0.0.1:%d" % hook.port
    put_mwc(k, mwc("label", [wh("label.example.com", url=url + "/add-label", ca=hook.ca)]))
    st, h, b = create_pod(k, pod(generate="web-7d4b9c8f5-"))
    revs = hook.take()
    ok(st == 201 and b["metadata"]["labels"] == {"app": "demo", "injected": "yes"}
       and b["metadata"]["name"].startswith("web-7d4b9c8f5-"),
       "JSONPatch from the webhook applied to the created pod", b)
    st, _, stored = k.req("GET", "/api/v1/namespaces/default/pods/" + b["metadata"]["name"])
    ok(stored["metadata"]["labels"].get("injected") == "yes", "the mutated pod is what is stored", stored)
    ok(h.get("Warning") == '299 - "label added"', "webhook warnings become Warning headers", dict(h))
    ok(len(revs) == 1, "webhook called once", revs)
    if revs:
        r = revs[0]
        ar = r["review"]
        rq = ar["request"]
        ok(ar["apiVersion"] == "admission.k8s.io/v1" and ar["kind"] == "AdmissionReview"
           and r["path"] == "/add-label?timeout=10s" and r["headers"].get("Content-Type") == "application/json",
           "POST <path>?timeout=10s, AdmissionReview v1, JSON (B1)", r)
        ok(rq["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
           and rq["resource"] == {"group": "", "version": "v1", "resource": "pods"}
           and rq["requestKind"] == rq["kind"] and rq["requestResource"] == rq["resource"],
           "kind, resource, requestKind, requestResource", rq)
        ok("name" not in rq and rq["namespace"] == "default" and rq["operation"] == "CREATE"
           and rq["object"]["metadata"]["generateName"] == "web-7d4b9c8f5-"
           and "name" not in rq["object"]["metadata"],
           "generateName pod: no request.name, no object.metadata.name", rq)
        ok(rq["oldObject"] is None and rq["dryRun"] is False
           and rq["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
           and len(rq["uid"]) == 36, "oldObject null, dryRun false, CreateOptions, uid", rq)
        ok(rq["userInfo"]["username"] == "admin" and "system:authenticated" in rq["userInfo"]["groups"],
           "userInfo of the caller", rq["userInfo"])
        spec = rq["object"]["spec"]
        ok(any(v["name"].startswith("kube-api-access-") for v in spec.get("volumes", []))
           and spec["serviceAccountName"] == "default" and spec["dnsPolicy"] == "ClusterFirst"
           and spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
           and rq["object"]["kind"] == "Pod" and "creationTimestamp" not in rq["object"]["metadata"],
           "object as the webhook sees it: defaulted, SA token volume, no uid yet", rq["object"])
        ok(same_shape({x: rq[x] for x in rq if x not in ("object", "userInfo")},
                      {x: v for x, v in fixture("admissionreview-v1-pod-create-request.json")["request"].items()
                       if x not in ("object", "userInfo", "name")}),
           "request keys and types as the real GKE capture (minus name)", rq)
    audit = [json.loads(line) for line in open(k.audit)]
    ok(any((e.get("annotations") or {}).get("label.example.com/k") == "v" for e in audit),
       "auditAnnotations prefixed with the webhook name in the audit log", audit[-1])

    st, _, b = create_pod(k, pod("named"), query="?dryRun=All")
    revs = hook.take()
    st2, _, _ = k.req("GET", "/api/v1/namespaces/default/pods/named")
    ok(st == 201 and b["metadata"]["labels"].get("injected") == "yes" and st2 == 404
       and revs and revs[0]["review"]["request"]["dryRun"] is True
       and revs[0]["review"]["request"]["name"] == "named",
       "dryRun=All: webhook told dryRun, object not stored", (st, st2, revs[:1]))

    # objectSelector / namespaceSelector
    put_mwc(k, mwc("label", [wh("label.example.com", url=url + "/add-label", ca=hook.ca,
                                objectSelector={"matchLabels": {"inject": "true"}},
                                namespaceSelector={"matchExpressions": [{"key": "team", "operator": "In",
                                                                         "values": ["a"]}]})]))
    k.req("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a", "labels": {"team": "a"}}})
    # the controller-manager gives a new namespace its "default" ServiceAccount a moment later; a
    # pod created before that is refused (error looking up service account): wait, as clients must
    end = time.monotonic() + 60
    while k.req("GET", "/api/v1/namespaces/team-a/serviceaccounts/default")[0] != 200 and time.monotonic() < end:
        time.sleep(0.1)
    st, _, b = create_pod(k, pod("sel1", labels={"inject": "true"}))
    ok(st == 201 and "injected" not in b["metadata"]["labels"] and not hook.take(),
       "namespaceSelector not matching: webhook not called", b)
    st, _, b = create_pod(k, pod("sel2", labels={"inject": "false"}), ns="team-a")
    ok(st == 201 and not hook.take(), "objectSelector not matching: webhook not called", b)
    st, _, b = create_pod(k, pod("sel3", labels={"inject": "true"}), ns="team-a")
    ok(st == 201 and b["metadata"]["labels"].get("injected") == "yes" and len(hook.take()) == 1,
       "both selectors matching: webhook called and patch applied", b)

    # denial
    put_mwc(k, mwc("label", [wh("deny.example.com", url=url + "/deny", ca=hook.ca)]))
    st, _, b = create_pod(k, pod("denied"))
    ok(st == 403 and b == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": 'admission webhook "deny.example.com" denied the request: no secrets for you',
                           "reason": "Forbidden", "code": 403},
       "denial: the webhook's status with the apiserver's message prefix", b)
    hook.take()
    rc, out, err = k.kubectl("run", "denied2", "--image=busybox:1.36", "--restart=Never")
    ok(rc == 1 and 'admission webhook "deny.example.com" denied the request: no secrets for you' in err,
       "kubectl sees the denial", err)
    hook.take()

    # webhook down / wrong CA / bad responses / timeout
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    put_mwc(k, mwc("label", [wh("down.example.com", url="https://127.0.0.1:%d/m" % dead, ca=hook.ca,
                                timeoutSeconds=2)]))
    st, _, b = create_pod(k, pod("down1"))
    want = ('Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: '
            'Post "https://127.0.0.1:%d/m?timeout=2s": dial tcp 127.0.0.1:%d: connect: connection refused'
            % (dead, dead))
    ok(st == 500 and b["reason"] == "InternalError" and b["message"] == want
       and b["details"]["causes"][0]["message"] == want[len("Internal error occurred: "):],
       "webhook down, failurePolicy Fail: 500 InternalError 'failed calling webhook'", b)
    put_mwc(k, mwc("label", [wh("down.example.com", url="https://127.0.0.1:%d/m" % dead, ca=hook.ca,
                                failurePolicy="Ignore")]))
    st, _, b = create_pod(k, pod("down2"))
    ok(st == 201 and b["metadata"]["labels"] == {"app": "demo"}, "webhook down, failurePolicy Ignore: created unmodified", b)
    if not k.real:  # the stand-in's call log
        calls = k.control("GET", "/_standin/webhook-calls")["calls"]
        ok(calls[-1]["outcome"] == "failed-open" and calls[-1]["webhook"] == "down.example.com",
           "control API records the failed-open call", calls[-1])

    put_mwc(k, mwc("label", [wh("ca.example.com", url=url + "/add-label", ca=k.ca)]))
    st, _, b = create_pod(k, pod("badca"))
    ok(st == 500 and "x509: certificate signed by unknown authority" in b["message"] and not hook.take(),
       "caBundle that does not sign the webhook's certificate: call fails", b)
    put_mwc(k, mwc("label", [wh("uid.example.com", url=url + "/wrong-uid", ca=hook.ca)]))
    st, _, b = create_pod(k, pod("baduid"))
    hook.take()
    ok(st == 500 and "received invalid webhook response: expected response.uid=" in b["message"],
       "response.uid mismatch rejected (VerifyAdmissionResponse)", b)
    put_mwc(k, mwc("label", [wh("bad.example.com", url=url + "/bad-patch", ca=hook.ca, failurePolicy="Ignore")]))
    st, _, b = create_pod(k, pod("badpatch"))
    hook.take()
    ok(st == 500 and b["reason"] == "InternalError" and "doc is missing path" in b["message"],
       "patch that does not apply: 500 even with failurePolicy Ignore (as the dispatcher)", b)
    put_mwc(k, mwc("label", [wh("slow.example.com", url=url + "/slow", ca=hook.ca, timeoutSeconds=1)]))
    t0 = time.monotonic()
    st, _, b = create_pod(k, pod("slow"))
    took = time.monotonic() - t0
    hook.take()
    ok(st == 500 and b["message"].endswith('Post "%s/slow?timeout=1s": context deadline exceeded' % url)
       and took < 12, "timeoutSeconds honoured: context deadline exceeded (%.1fs)" % took, b)

    if not k.real:  # service addresses from the stand-in's control API (a real Service's endpoints cannot be loopback)
        # service clientConfig: certificate verified for <svc>.<ns>.svc
        put_mwc(k, mwc("label", [wh("svc.example.com", ca=hook.ca,
                                    service={"namespace": "webhooks", "name": "hook", "path": "/add-label",
                                             "port": 8443})]))
        k.control("POST", "/_standin/services", {"namespace": "webhooks", "name": "hook",
                                                 "address": "127.0.0.1:%d" % hook.port})
        st, _, b = create_pod(k, pod("svc1"))
        revs = hook.take()
        ok(st == 201 and b["metadata"]["labels"].get("injected") == "yes" and len(revs) == 1,
           "service clientConfig mapped to the webhook; cert valid for hook.webhooks.svc", b)
        put_mwc(k, mwc("label", [wh("svc.example.com", ca=hook.ca,
                                    service={"namespace": "other", "name": "hook", "path": "/add-label"})]))
        k.control("POST", "/_standin/services", {"namespace": "other", "name": "hook",
                                                 "address": "127.0.0.1:%d" % hook.port})
        st, _, b = create_pod(k, pod("svc2"))
        ok(st == 500 and "x509: certificate is not valid for hook.other.svc" in b["message"] and not hook.take(),
           "certificate without the service name (hook.other.svc) refused", b)

    # reinvocation: label (IfNeeded) runs first, annotation changes the object after it
    put_mwc(k, mwc("label", [wh("a-label.example.com", url=url + "/add-label", ca=hook.ca,
                                reinvocationPolicy="IfNeeded"),
                             wh("b-annot.example.com", url=url + "/add-annotation", ca=hook.ca)]))
    st, _, b = create_pod(k, pod("reinv"))
    paths = [r["path"].split("?")[0] for r in hook.take()]
    ok(st == 201 and paths == ["/add-label", "/add-annotation", "/add-label"]
       and b["metadata"]["annotations"] == {"example.com/seen": "1"} and b["metadata"]["labels"]["injected"] == "yes",
       "reinvocationPolicy IfNeeded: reinvoked once after a later mutation", (paths, st, b))
    # UPDATE: oldObject and UpdateOptions; the patch applies to the new object
    upd = wh("upd.example.com", url=url + "/add-annotation", ca=hook.ca)
    upd["rules"][0]["operations"] = ["UPDATE"]
    put_mwc(k, mwc("label", [upd]))
    rc, out, err = k.kubectl("label", "pod", "plain0", "x=y") if create_pod(k, pod("plain0"))[0] == 201 else (1, "", "")
    revs = hook.take()
    st, _, b = k.req("GET", "/api/v1/namespaces/default/pods/plain0")
    rq = revs[0]["review"]["request"] if len(revs) == 1 else {}
    ok(rc == 0 and rq.get("operation") == "UPDATE" and rq["oldObject"]["metadata"]["labels"] == {"app": "demo"}
       and rq["object"]["metadata"]["labels"] == {"app": "demo", "x": "y"}
       and rq["options"]["kind"] == "UpdateOptions" and rq["options"].get("fieldManager") == "kubectl-label"
       and b["metadata"]["annotations"] == {"example.com/seen": "1"},
       "UPDATE webhook (kubectl label): oldObject, UpdateOptions, patch applied", (err, revs))
    del_mwc(k, "label")
    st, _, b = create_pod(k, pod("plain"))
    ok(st == 201 and not hook.take() and b["metadata"]["uid"] and b["status"]["phase"] == "Pending",
       "no configuration: no call", b)
    got = []

    def pod_watch():
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", k.port, context=k.ssl, timeout=10)
        c.request("GET", "/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dwatched&timeoutSeconds=5",
                  headers={"Authorization": "Bearer " + k.token})
        for line in c.getresponse():
            if line.strip():
                got.append(json.loads(line))
            if len(got) >= 3:
                break
        c.close()
    t = threading.Thread(target=pod_watch)
    t.start()
    time.sleep(0.3)
    create_pod(k, pod("watched", labels={"app": "watched"}))
    rc, out, err = k.kubectl("delete", "pod", "watched")
    t.join(10)
    ok(rc == 0 and out.strip() == 'pod "watched" deleted'
       and [(e["type"], e["object"]["metadata"]["name"]) for e in got]
       == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
       and got[1]["object"]["metadata"].get("deletionGracePeriodSeconds") == 0
       and got[1]["object"]["metadata"]["generation"] == 2,
       "pod watch with labelSelector sees the create, the deletionTimestamp update and the delete", (out, err, got))
    rc, out, err = k.kubectl("get", "pods", "-A", "-o", "json")
    names = sorted(p["metadata"]["name"] for p in json.loads(out)["items"]) if rc == 0 else []
    ok("plain" in names and "reinv" in names and "denied" not in names and "down1" not in names,
       "kubectl get pods -A -o json lists exactly the admitted pods", names)


def test_kube_sh(tmp):
    """tests/standin/kube.sh: start, kubectl through the generated kubeconfig, control, stop."""
    script = r"""
set -e
. "$1/tests/standin/kube.sh"
kube_start
dir=$KUBE_DIR pid=$KUBE_PID
kubectl get namespaces -o name
kube_control GET /_standin/stats | /usr/bin/python3 -c 'import json,sys; print("connections", json.load(sys.stdin)["connections"] > 0)'
kube_curl /api/v1/namespaces/default/pods/none | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["reason"])'
kube_stop
kill -0 "$pid" 2>/dev/null && echo "still running"
[ -e "$dir" ] && echo "dir left"
true
"""
    p = subprocess.run(["bash", "-c", script, "kube", TOP], capture_output=True, text=True, timeout=40,
                       env=dict(os.environ, HOME=tmp))
    ok(p.returncode == 0 and p.stdout.split() ==
       ["namespace/default", "namespace/kube-node-lease", "namespace/kube-public", "namespace/kube-system",
        "connections", "True", "NotFound"],
       "kube.sh: kube_start, kubectl via KUBECONFIG, kube_control, kube_curl, kube_stop cleans up",
       p.stdout + p.stderr)


def main():
    with tempfile.TemporaryDirectory(prefix="kube-test.") as tmp:
        with (RealKube() if REAL else KubeStandin()) as k:
            if k.real:
                print("# %s: a private etcd, kube-apiserver and kube-controller-manager" % k.version(), flush=True)
            for t in (test_kubectl, test_http):
                try:
                    t(k)
                except Exception as e:  # a crash is one failed test, not a hung suite
                    ok(False, "%s raised %r" % (t.__name__, e))
            try:
                test_webhooks(k, tmp)
            except Exception as e:
                ok(False, "test_webhooks raised %r" % e)
            if not k.real:  # the stand-in's bash library and its stderr
                try:
                    test_kube_sh(tmp)
                except Exception as e:
                    ok(False, "test_kube_sh raised %r" % e)
                err = open(os.path.join(k.dir, "stderr.log")).read()
                ok("Traceback" not in err, "no traceback in the stand-in's stderr", err)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
