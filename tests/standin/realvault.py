# SPDX-License-Identifier: Apache-2.0
"""The same Python harness as standin.py, but for a real OpenBao (tests/cluster/openbao.sh), so one
contract test runs against both (tests/e2e/test-standin-*.py --target real).

    with RealVault(config) as v:          # config: the stand-in's JSON config (README.md), applied
        v.req("GET", "secret/data/x", token=v.root_token)   # through the API of the real server
        v.jwt("default", "app", audience="vault")           # a JWT from the TokenRequest API

The OpenBao server is private (one raft node under a temp dir, stopped by stop()): the contract
tests rewrite mounts, auth config and policies, seal and unseal it, so they never share one.
The Kubernetes auth method needs an API server for its TokenReview calls and the JWTs: the real
cluster of $CT_REAL_DIR/env (tests/run-all.sh) when there is one, else the stand-in
kube-apiserver (kubestandin.py), which only signs and reviews the tokens here.
`real_or_skip()` prints the TAP skip plan and exits when not root (the real servers' tests run as
root, as every test-real-*).
"""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from standin import Harness

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
OPENBAO_SH = os.path.join(TOP, "tests", "cluster", "openbao.sh")
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


def real_or_skip():
    if os.geteuid() != 0:
        print("1..0 # SKIP the real servers' tests run as root (as test-real-*)")
        sys.exit(0)


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v.strip('"')
    return env


def bail(msg, log=None):
    print("Bail out! " + msg, flush=True)
    if log and os.path.exists(log):
        with open(log) as f:
            for line in f.read().splitlines()[-40:]:
                print("# " + line)
    sys.exit(1)


class RealVault(Harness):
    real = True

    def __init__(self, config=None, pki=None):
        self.dir = tempfile.mkdtemp(prefix="realvault.")
        os.chmod(self.dir, 0o755)
        self.kube = None
        self.bao_dir = None
        self.created = []           # namespaces and service accounts we made (deleted by stop())
        try:
            self._start(config or {})
        except BaseException:
            self.stop()
            raise

    # --- the servers
    def _start(self, cfg):
        self.bao_dir = os.path.join(self.dir, "bao")
        log = os.path.join(self.dir, "bao.log")
        with open(log, "w") as f:
            if subprocess.run(["bash", OPENBAO_SH, "start", self.bao_dir, "1"], stdout=f, stderr=f).returncode:
                bail("OpenBao did not start", log)
        env = read_env(os.path.join(self.bao_dir, "bao-env"))
        self.addr = env["BAO_ADDR"]
        self.ca = env["BAO_CACERT"]
        self.root_token = env["BAO_TOKEN"]
        self.bao = env["BAO"]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.ssl = ssl.create_default_context(cafile=self.ca)
        with open(os.path.join(self.bao_dir, "openbao", "unseal-key")) as f:
            self.unseal_keys = [f.read().strip()]
        self.pki = None
        shared = os.environ.get("CT_REAL_DIR")
        if shared and os.path.exists(os.path.join(shared, "env")):
            kenv = read_env(os.path.join(shared, "env"))
            self.kubeconfig = kenv["KUBECONFIG"]
            self.kube_api = kenv["CT_API"]
            with open(kenv["CT_CA"]) as f:
                self.kube_ca = f.read()
            self.kube_kind = "the real kube-apiserver"
            rc, out, err = self.kubectl("-n", "kube-system", "create", "serviceaccount", "openbao-reviewer")
            self.kubectl("create", "clusterrolebinding", "openbao-reviewer", "--clusterrole=system:auth-delegator",
                         "--serviceaccount=kube-system:openbao-reviewer")
            rc, out, err = self.kubectl("-n", "kube-system", "create", "token", "openbao-reviewer", "--duration=24h")
            if rc:
                bail("no reviewer token from the cluster: " + err)
            self.reviewer_jwt = out.strip()
        else:
            from kubestandin import KubeStandin
            self.kube = KubeStandin()
            self.kubeconfig = self.kube.kubeconfig
            self.kube_api = self.kube.addr
            with open(self.kube.ca) as f:
                self.kube_ca = f.read()
            self.kube_kind = "the stand-in kube-apiserver"
            self.reviewer_jwt = self.kube.token
        print("# %s; TokenReview and service-account JWTs from %s" % (self.version(), self.kube_kind), flush=True)
        self.ns_map = {}
        self.apply(cfg)

    def version(self):
        p = subprocess.run([self.bao, "version"], capture_output=True, text=True)
        return p.stdout.strip().splitlines()[0] if p.stdout else "OpenBao"

    def kubectl(self, *args):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.dir,
                   KUBECACHEDIR=os.path.join(self.dir, "kubectl-cache"))
        p = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=env, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def must(self, method, path, body=None, ns=None, ok=(200, 204)):
        h = {"X-Vault-Namespace": ns} if ns else None
        s, _, b = self.req(method, path, body, token=self.root_token, headers=h)
        if s not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, path, s, b))
        return b

    # --- the stand-in's config, through the real API
    def apply(self, cfg):
        kv_version = {}
        for ns in cfg.get("namespaces", []):
            self.must("POST", "sys/namespaces/" + ns)
        for m in cfg.get("mounts", []):
            ns = m.get("namespace")
            t = m.get("type", "kv")
            ver = {"kv-v2": "2", "kv-v1": "1"}.get(t, (m.get("options") or {}).get("version", "1"))
            kv_version[(ns, m["path"])] = ver
            if ns and (None, "ns:" + ns) not in kv_version:
                self.must("POST", "sys/namespaces/" + ns, ok=(200, 204, 400))
                kv_version[(None, "ns:" + ns)] = True
            s = self.req("GET", "sys/mounts/" + m["path"], token=self.root_token,
                         headers={"X-Vault-Namespace": ns} if ns else None)[0]
            if s != 200:
                self.must("POST", "sys/mounts/" + m["path"], {"type": "kv", "options": {"version": ver}}, ns=ns)
        for a in cfg.get("auth", []):
            self.must("POST", "sys/auth/" + a["path"], {"type": a.get("type", "kubernetes")})
            self.configure_kubernetes(a["path"])
            for name, role in (a.get("roles") or {}).items():
                self.must("POST", "auth/%s/role/%s" % (a["path"], name), role)
        for name, hcl in (cfg.get("policies") or {}).items():
            self.must("PUT", "sys/policies/acl/" + name, {"policy": hcl})
        for sec in cfg.get("secrets", []):
            ns = sec.get("namespace")
            mount, rest = sec["path"].split("/", 1)
            versions = sec.get("versions") or [sec["data"]]
            if kv_version.get((ns, mount)) == "2":
                for d in versions:
                    self.must("POST", "%s/data/%s" % (mount, rest), {"data": d}, ns=ns)
            else:
                self.must("POST", sec["path"], versions[-1], ns=ns)

    def configure_kubernetes(self, mount="kubernetes"):
        self.must("POST", "auth/%s/config" % mount,
                  {"kubernetes_host": self.kube_api, "kubernetes_ca_cert": self.kube_ca,
                   "token_reviewer_jwt": self.reviewer_jwt, "disable_local_ca_jwt": True})

    # --- service-account JWTs from the TokenRequest API
    def _namespace(self, ns):
        rc, _, _ = self.kubectl("get", "namespace", ns)
        if rc:
            rc, _, err = self.kubectl("create", "namespace", ns)
            if rc and "already exists" not in err:
                raise RuntimeError("kubectl create namespace %s: %s" % (ns, err))
            self.created.append(("namespace", ns))

    def jwt(self, namespace, service_account, audience=None, ttl=None, bad_signature=False):
        self._namespace(namespace)
        rc, _, err = self.kubectl("-n", namespace, "create", "serviceaccount", service_account)
        if rc and "already exists" not in err:
            raise RuntimeError("kubectl create serviceaccount: " + err)
        if not rc:
            self.created.append(("serviceaccount", namespace, service_account))
        args = ["-n", namespace, "create", "token", service_account, "--duration=%ds" % max(ttl or 600, 600)]
        if audience:
            args.append("--audience=" + audience)
        rc, out, err = self.kubectl(*args)
        if rc:
            raise RuntimeError("kubectl create token: " + err)
        tok = out.strip()
        if bad_signature:
            head, sig = tok.rsplit(".", 1)
            tok = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        return tok

    def same(self):
        """This server again, as a context manager that leaves it running."""
        return _Borrowed(self)

    def uninitialised(self):
        """A second OpenBao, never initialised (for the sys/init and unseal replays)."""
        return _Uninitialised(self)

    def delete_serviceaccount(self, namespace, name):
        rc, _, err = self.kubectl("-n", namespace, "delete", "serviceaccount", name)
        if rc:
            raise RuntimeError("kubectl delete serviceaccount: " + err)
        self.created = [o for o in self.created if o != ("serviceaccount", namespace, name)]

    def control(self, method, path, body=None):
        raise RuntimeError("no control API on a real server (%s %s): a stand-in-only check ran" % (method, path))

    def seal(self):
        self.must("PUT", "sys/seal")

    def unseal(self):
        for k in self.unseal_keys:
            self.must("PUT", "sys/unseal", {"key": k})
        self.wait_active()

    def wait_active(self, deadline_s=60.0):
        """Unsealed is not yet active: raft elects the node leader again (polled, generous)."""
        end = time.monotonic() + deadline_s
        while self.req("GET", "sys/health", fresh=True)[0] != 200:
            if time.monotonic() > end:
                raise RuntimeError("OpenBao not active %.0f s after the unseal" % deadline_s)
            time.sleep(0.1)

    def stop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.bao_dir:
            subprocess.run(["bash", OPENBAO_SH, "stop", self.bao_dir], capture_output=True)
            self.bao_dir = None
        for obj in reversed(self.created) if self.kube is None else []:
            if obj[0] == "namespace":
                self.kubectl("delete", "namespace", obj[1], "--wait=false")
            elif ("namespace", obj[1]) not in self.created:
                self.kubectl("-n", obj[1], "delete", "serviceaccount", obj[2], "--wait=false")
        if self.kube is not None:
            self.kube.stop()
            self.kube = None
        if self.dir and os.environ.get("STANDIN_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


class _Borrowed:
    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v

    def __exit__(self, *exc):
        pass


class _Uninitialised(Harness):
    """`bao server` on raft storage with the TLS key of the first server, not initialised."""

    real = True

    def __init__(self, v):
        self.dir = os.path.join(v.dir, "uninit")
        os.makedirs(os.path.join(self.dir, "raft"))
        b = os.path.join(v.bao_dir, "openbao")
        ports = []
        socks = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
        for s in socks:
            s.close()
        self.port = ports[0]
        conf = os.path.join(self.dir, "config.hcl")
        with open(conf, "w") as f:
            f.write('storage "raft" {\n  path = "%s/raft"\n  node_id = "uninit"\n}\n'
                    'listener "tcp" {\n  address = "127.0.0.1:%d"\n  cluster_address = "127.0.0.1:%d"\n'
                    '  tls_cert_file = "%s/server.crt"\n  tls_key_file = "%s/server.key"\n}\n'
                    'api_addr = "https://127.0.0.1:%d"\ncluster_addr = "https://127.0.0.1:%d"\n'
                    'ui = false\nlog_level = "warn"\n' % (self.dir, ports[0], ports[1], b, b, ports[0], ports[1]))
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([v.bao, "server", "-config=" + conf], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.ssl = v.ssl
        end = time.monotonic() + 60
        while True:
            try:
                self.req("GET", "sys/health", fresh=True)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    self.stop()
                    bail("the uninitialised OpenBao did not listen", os.path.join(self.dir, "server.log"))
                time.sleep(0.1)

    wait_active = RealVault.wait_active

    def stop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
