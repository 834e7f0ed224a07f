# SPDX-License-Identifier: Apache-2.0
"""Python harness for the stand-in kube-apiserver (tests/standin/kube_apiserver.py).

    with KubeStandin(config) as k:             # config: dict (see README-kube.md) or None
        status, headers, body = k.req("GET", "/api/v1/namespaces/default/pods")
        k.control("POST", "/_standin/services", {...})
        rc, out, err = k.kubectl("get", "pods", "-o", "json")

Each instance has a private temp dir (test PKI from mkcerts.sh, config, ready file, audit log,
kubeconfig, kubectl discovery cache) removed by stop(). Ports are chosen by the kernel.
"""

import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")

from standin import Harness  # noqa: E402


class KubeStandin(Harness):
    real = False  # tests/standin/realkube.py: the same interface on a real kube-apiserver
    def __init__(self, config=None, ready_timeout=60.0):
        self.dir = tempfile.mkdtemp(prefix="kube-standin.")
        self.proc = None
        try:
            self._start(config, ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, config, ready_timeout):
        pki = os.path.join(self.dir, "pki")
        subprocess.run(["bash", os.path.join(HERE, "mkcerts.sh"), pki], check=True)
        self.ca = os.path.join(pki, "ca.pem")
        cfg = dict(config or {})
        if not cfg.get("users"):
            cfg["users"] = {"admin": {"token": "kube-admin-" + secrets.token_hex(16),
                                      "groups": ["system:masters"]}}
        first = next(iter(cfg["users"].values()))
        self.token = first if isinstance(first, str) else first["token"]
        cfg_path = os.path.join(self.dir, "config.json")
        with open(os.open(cfg_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump(cfg, f)
        self.audit = os.path.join(self.dir, "audit.log")
        ready = os.path.join(self.dir, "ready.json")
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "kube_apiserver.py"), "--config", cfg_path,
             "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0",
             "--tls-cert", os.path.join(pki, "server.pem"),
             "--tls-key", os.path.join(pki, "server-key.pem"), "--ca-cert", self.ca,
             "--ready-file", ready, "--audit-log", self.audit],
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + ready_timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("stand-in exited early: %s" % open(self.stderr.name).read())
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in not ready after %.0fs" % ready_timeout)
            time.sleep(0.02)
        with open(ready) as f:
            info = json.load(f)
        self.addr = info["addr"]
        self.control_addr = info["control_addr"]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.control_port = int(self.control_addr.rsplit(":", 1)[1])
        self.ssl = ssl.create_default_context(cafile=self.ca)
        self._conn = None
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.write_kubeconfig(self.kubeconfig, self.token)

    def write_kubeconfig(self, path, token, namespace="default"):
        with open(self.ca, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        text = ("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n"
                "    server: %s\n  name: standin\ncontexts:\n- context:\n    cluster: standin\n"
                "    namespace: %s\n    user: admin\n  name: standin\ncurrent-context: standin\n"
                "kind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    token: %s\n"
                % (ca, self.addr, namespace, token))
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)

    def kubectl(self, *args, stdin=None, timeout=30):
        """Runs the real kubectl against the stand-in; returns (rc, stdout, stderr)."""
        env = dict(os.environ, KUBECONFIG=self.kubeconfig,
                   KUBECACHEDIR=os.path.join(self.dir, "kubectl-cache"), HOME=self.dir)
        p = subprocess.run([KUBECTL] + list(args), input=stdin, capture_output=True, text=True,
                           env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def req(self, method, path, body=None, token=None, headers=None, raw_body=None,
            content_type="application/json"):
        """One request on a keep-alive connection with the admin token (token="" sends none);
        returns (status, headers, parsed JSON or None)."""
        h = {"Accept": "application/json"}
        h.update(headers or {})
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", content_type)
        for attempt in (0, 1):
            c = self.conn(fresh=attempt == 1)
            try:
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                payload = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    self._conn = None
                    raise
        self.last_raw = payload
        try:
            obj = json.loads(payload) if payload.strip() else None
        except ValueError:
            obj = None
        return r.status, r.headers, obj

    def control(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=20)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            obj = json.loads(r.read() or b"null")
            if r.status != 200:
                raise RuntimeError("control %s %s -> %d %s" % (method, path, r.status, obj))
            return obj
        finally:
            c.close()

    def stop(self):
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "stderr", None):
            self.stderr.close()
        if self.dir and os.environ.get("KUBE_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
