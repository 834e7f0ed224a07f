# SPDX-License-Identifier: Apache-2.0
"""The same Python harness as kubestandin.py, but for a real kube-apiserver, so one contract test
runs against both (tests/e2e/test-kube-standin.py --target real).

    with RealKube() as k:                       # etcd + kube-apiserver + kube-controller-manager
        k.req("GET", "/api/v1/namespaces")      # as the admin (a static bearer token)
        k.kubectl("get", "pods")

A private control plane (the binaries of tests/servers/build.sh, flags as tests/cluster/cluster.sh
without the kubelet), stopped by stop(): the contract tests register cluster-wide webhook
configurations, which must never reach the pods of the tests that share the cluster of
$CT_REAL_DIR. The controller-manager runs the service-account and namespace controllers (every
namespace gets its "default" ServiceAccount, as in a cluster).
"""

import http.client
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from kubestandin import KubeStandin

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(TOP, "tests", "servers", "build.sh")


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def server_dir(name):
    """The cache folder of a real server; builds it (under build.sh's lock) when missing."""
    subprocess.run(["bash", BUILD, name], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(["bash", BUILD, "--dir", name], check=True, capture_output=True,
                          text=True).stdout.strip()


class RealKube(KubeStandin):
    """KubeStandin's req(), kubectl() and write_kubeconfig() on a real control plane."""

    real = True

    def __init__(self, ready_timeout=120.0):
        self.dir = tempfile.mkdtemp(prefix="realkube.")
        os.chmod(self.dir, 0o755)
        self.procs = {}
        self._conn = None
        try:
            self._start(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _run(self, *cmd):
        subprocess.run(list(cmd), check=True, cwd=self.pki, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _pki(self):
        self.pki = os.path.join(self.dir, "pki")
        os.makedirs(self.pki)
        self._run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", "ca.key", "-out", "ca.crt", "-days", "3", "-subj", "/CN=cloudtaser-test-realkube-ca")
        self._run("openssl", "genrsa", "-out", "sa.key", "2048")
        self._run("openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for name, subj, san in (
                ("apiserver", "/CN=kube-apiserver", "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
                 "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"),
                ("kcm", "/CN=system:kube-controller-manager", None)):
            self._run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj)
            with open(os.path.join(self.pki, name + ".ext"), "w") as f:
                f.write("subjectAltName=%s\n" % san if san else "")
            self._run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                      "-CAcreateserial", "-days", "3", "-extfile", name + ".ext", "-out", name + ".crt")
        self.ca = os.path.join(self.pki, "ca.crt")

    def _spawn(self, name, *cmd):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        self.procs[name] = (subprocess.Popen(list(cmd), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                             start_new_session=True), log)

    def _wait(self, name, check, timeout):
        end = time.monotonic() + timeout
        while not check():
            p = self.procs[name][0]
            if p.poll() is not None or time.monotonic() > end:
                with open(os.path.join(self.dir, name + ".log")) as f:
                    tail = f.read()[-3000:]
                raise RuntimeError("%s did not come up (%s):\n%s" % (
                    name, "exited %s" % p.returncode if p.poll() is not None else "%.0f s" % timeout, tail))
            time.sleep(0.2)

    def _start(self, ready_timeout):
        kube = os.path.join(server_dir("kube"), "bin")
        etcd = os.path.join(server_dir("etcd"), "bin", "etcd")
        self._pki()
        etcd_port, etcd_peer, api_port = free_ports(3)
        self._spawn("etcd", etcd, "--name", "ct", "--data-dir", os.path.join(self.dir, "etcd"),
                    "--listen-client-urls", "http://127.0.0.1:%d" % etcd_port,
                    "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_port,
                    "--listen-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
                    "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
                    "--initial-cluster", "ct=http://127.0.0.1:%d" % etcd_peer, "--unsafe-no-fsync",
                    "--log-level", "warn")
        self._wait("etcd", lambda: self._http_ok("http", etcd_port, "/health"), 60)
        self.token = "ct-admin-" + secrets.token_hex(16)
        tokfile = os.path.join(self.dir, "tokens.csv")
        with open(os.open(tokfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write('%s,admin,admin-uid,"system:masters"\n' % self.token)
        p = self.pki
        policy = os.path.join(self.dir, "audit-policy.yaml")
        with open(policy, "w") as f:
            f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
        self.audit = os.path.join(self.dir, "audit.log")
        self._spawn("kube-apiserver", os.path.join(kube, "kube-apiserver"),
                    "--audit-policy-file=" + policy, "--audit-log-path=" + self.audit,
                    "--audit-log-format=json", "--audit-log-mode=blocking",
                    "--etcd-servers=http://127.0.0.1:%d" % etcd_port,
                    "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=%d" % api_port,
                    "--tls-cert-file=%s/apiserver.crt" % p, "--tls-private-key-file=%s/apiserver.key" % p,
                    "--client-ca-file=%s/ca.crt" % p, "--token-auth-file=" + tokfile,
                    "--authorization-mode=Node,RBAC",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file=%s/sa.pub" % p, "--service-account-signing-key-file=%s/sa.key" % p,
                    "--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none",
                    "--allow-privileged=true", "--profiling=false", "--v=1")
        self.port = api_port
        self.addr = "https://127.0.0.1:%d" % api_port
        self.ssl = ssl.create_default_context(cafile=self.ca)
        self._wait("kube-apiserver", lambda: self._http_ok("https", api_port, "/readyz"), ready_timeout)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.write_kubeconfig(self.kubeconfig, self.token)
        kcm = os.path.join(self.dir, "kcm.kubeconfig")
        with open(kcm, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: %s\n"
                    "    certificate-authority: %s\nusers:\n- name: kcm\n  user:\n"
                    "    client-certificate: %s/kcm.crt\n    client-key: %s/kcm.key\ncontexts:\n- name: real\n"
                    "  context: {cluster: real, user: kcm}\ncurrent-context: real\n" % (self.addr, self.ca, p, p))
        self._spawn("kube-controller-manager", os.path.join(kube, "kube-controller-manager"),
                    "--kubeconfig=" + kcm, "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
                    "--use-service-account-credentials=true",
                    "--controllers=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,"
                    "garbage-collector-controller,root-ca-certificate-publisher-controller",
                    "--service-account-private-key-file=%s/sa.key" % p, "--root-ca-file=%s/ca.crt" % p,
                    "--service-cluster-ip-range=10.0.0.0/24", "--v=1")
        self._wait("kube-controller-manager",
                   lambda: self.req("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200, 120)

    def _http_ok(self, scheme, port, path):
        try:
            if scheme == "https":
                c = http.client.HTTPSConnection("127.0.0.1", port, context=self.ssl, timeout=5)
                c.request("GET", path, headers={"Authorization": "Bearer " + self.token})
            else:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except OSError:
            return False

    def version(self):
        return self.req("GET", "/version")[2]["gitVersion"]

    def control(self, method, path, body=None):
        raise RuntimeError("no control API on a real server (%s %s): a stand-in-only check ran" % (method, path))

    def stop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name not in self.procs:
                continue
            p, log = self.procs.pop(name)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            log.close()
        if self.dir and os.environ.get("KUBE_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

