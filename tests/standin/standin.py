# SPDX-License-Identifier: Apache-2.0
"""Python harness for the stand-in Vault (used by tests/e2e/test-standin-*.py).

    with Standin(config) as v:                 # config: dict (see README.md) or None
        status, headers, body = v.req("GET", "secret/data/x", token=v.root_token)
        v.control("POST", "/_standin/clock", {"advance_seconds": 60})

Each instance has a private temp dir (test PKI from mkcerts.sh unless `pki` names an existing
one, config, ready file, audit log) removed by stop(). Ports are chosen by the kernel.
"""

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


class Harness:
    """A keep-alive HTTPS connection to a server (stand-in or real; needs self.port, self.ssl) and
    the context manager; req() speaks the Vault API (KubeStandin has its own)."""
    _conn = None
    real = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def conn(self, fresh=False):
        if fresh or self._conn is None:
            if self._conn is not None:
                self._conn.close()
            self._conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl, timeout=20)
        return self._conn

    def req(self, method, path, body=None, token=None, headers=None, raw_body=None, fresh=False,
            retry=True):
        """One request on a keep-alive connection; returns (status, headers, parsed JSON or None).
        A keep-alive connection the server closed is retried once on a new one unless retry=False."""
        h = dict(headers or {})
        if token is not None:
            h["X-Vault-Token"] = token
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        url = path if path.startswith("/") else "/v1/" + path
        for attempt in (0, 1):
            c = self.conn(fresh=fresh or attempt == 1)
            try:
                c.request(method, url, body=data, headers=h)
                r = c.getresponse()
                payload = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt or not retry:
                    self._conn = None
                    raise
        obj = json.loads(payload) if payload.strip() else None
        self.last_raw = payload
        return r.status, r.headers, obj


class Standin(Harness):
    def __init__(self, config=None, pki=None, ready_timeout=60.0):
        self.dir = tempfile.mkdtemp(prefix="standin.")
        self.proc = None
        try:
            self._start(config, pki, ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, config, pki, ready_timeout):
        if pki is None:
            pki = os.path.join(self.dir, "pki")
            subprocess.run(["bash", os.path.join(HERE, "mkcerts.sh"), pki], check=True)
        self.pki = pki
        self.ca = os.path.join(pki, "ca.pem")
        cfg = dict(config or {})
        self.root_token = cfg.setdefault("root_token", "hvs.root" + secrets.token_hex(12))
        cfg_path = os.path.join(self.dir, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.audit = os.path.join(self.dir, "audit.log")
        ready = os.path.join(self.dir, "ready.json")
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "vault.py"), "--config", cfg_path,
             "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0",
             "--tls-cert", os.path.join(pki, "server.pem"),
             "--tls-key", os.path.join(pki, "server-key.pem"),
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

    def seal(self):
        self.control("POST", "/_standin/seal")

    def unseal(self):
        self.control("POST", "/_standin/unseal")

    def jwt(self, namespace, service_account, **kw):
        d = dict(kw, namespace=namespace, service_account=service_account)
        return self.control("POST", "/_standin/jwt", d)["jwt"]

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
        if self.dir and os.environ.get("STANDIN_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
