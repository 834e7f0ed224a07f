#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Stand-in Vault/OpenBao server for cloudtaser's tests (standard library only).

Behaviour follows tests/fixtures/CONTRACT.md Part A; see tests/standin/README.md for
the configuration schema, the control API and the list of what is and is not modelled.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

MAX_BODY = 32 << 20
REQUEST_LOG_MAX = 2000
SYS_DEFAULT_TTL = 2764800
SYS_MAX_TTL = 2764800
JWT_LEEWAY = 60
VERSION = "1.15.6"
OPENBAO_VERSION = "2.4.0"  # the flavour "openbao" answers as this release (tests/servers/openbao)
# OpenBao 2.4's builtin auth methods (helper/builtinplugins/registry.go): no github, aws, gcp...
OPENBAO_AUTH_PLUGINS = ("approle", "cert", "jwt", "kerberos", "kubernetes", "ldap", "oidc", "radius", "userpass")
B62 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

ROOT_PATHS_SYS = ("sys/auth/", "sys/seal", "sys/audit", "sys/remount", "sys/rotate",
                  "sys/leases/lookup/", "sys/leases/revoke-prefix/", "sys/leases/revoke-force/",
                  "sys/raw", "sys/config/")
VALID_CAPS = {"create", "read", "update", "delete", "list", "sudo", "deny", "patch", "subscribe",
              "root"}

DEFAULT_POLICY = """
# Allow tokens to look up their own properties
path "auth/token/lookup-self" { capabilities = ["read"] }
# Allow tokens to renew themselves
path "auth/token/renew-self" { capabilities = ["update"] }
# Allow tokens to revoke themselves
path "auth/token/revoke-self" { capabilities = ["update"] }
# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" { capabilities = ["update"] }
# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
# Allow a token to renew a lease via lease_id in the request body
path "sys/renew" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
# Allow looking up lease properties
path "sys/leases/lookup" { capabilities = ["update"] }
# Allow a token to manage its own cubbyhole
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
# Allow general purpose tools
path "sys/tools/hash" { capabilities = ["update"] }
path "sys/tools/hash/*" { capabilities = ["update"] }
"""


# ---------------------------------------------------------------------------------------------
# small helpers

def pem_has_key(text):
    """A PEM block (certificate or public key) whose body is base64: OpenBao's check of each
    pem_keys entry, without parsing the key itself."""
    m = re.search(r"-----BEGIN (CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|EC PUBLIC KEY)-----\s*(.*?)\s*-----END \1-----",
                  text, re.S)
    if not m:
        return False
    try:
        return len(base64.b64decode("".join(m.group(2).split()), validate=True)) > 0
    except (binascii.Error, ValueError):
        return False


def multierr(*msgs):
    n = len(msgs)
    return "%d error%s occurred:\n\t%s\n\n" % (n, "" if n == 1 else "s",
                                               "\n\t".join("* " + m for m in msgs))


class VaultError(Exception):
    def __init__(self, status, errors, data=None, headers=None):
        super().__init__(status, errors)
        self.status = status
        self.errors = errors
        self.data = data
        self.headers = headers or {}


def err400(msg):
    return VaultError(400, [msg])


def unsupported_path():
    return VaultError(404, [multierr("unsupported path")])


def unsupported_op():
    return VaultError(405, [multierr("unsupported operation")])


def rand62(n):
    return "".join(secrets.choice(B62) for _ in range(n))


def new_token_id(st):
    return ("s." if st.flavor == "openbao" else "hvs.") + rand62(24)


def rfc3339(t):
    if t is None:
        return None
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    frac = ("%09d" % (dt.microsecond * 1000)).rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600,
              "d": 86400}


def parse_duration(v):
    """Vault's parseutil.ParseDurationSecond: integer seconds or a Go duration ("1h30m")."""
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise ValueError("invalid duration")
    if isinstance(v, (int, float)):
        return int(v)
    if not isinstance(v, str):
        raise ValueError("invalid duration")
    s = v.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    pos, total = 0, 0.0
    if not s:
        raise ValueError("invalid duration")
    for m in _DUR_RE.finditer(s):
        if m.start() != pos:
            raise ValueError("time: invalid duration %r" % v)
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError("time: invalid duration %r" % v)
    return int(total)


def go_duration(secs):
    """Go's time.Duration.String() for whole/fractional seconds."""
    if secs == 0:
        return "0s"
    neg = secs < 0
    secs = abs(secs)
    h = int(secs // 3600)
    m = int((secs - h * 3600) // 60)
    s = secs - h * 3600 - m * 60
    ss = ("%.9f" % s).rstrip("0").rstrip(".")
    out = ""
    if h:
        out = "%dh%dm%ss" % (h, m, ss)
    elif m:
        out = "%dm%ss" % (m, ss)
    else:
        out = "%ss" % ss
    return ("-" if neg else "") + out


def human_duration(secs):
    s = go_duration(secs)
    if s.endswith("m0s"):
        s = s[:-2]
    i = s.find("h0m")
    if i > 0:
        s = s[:i + 1] + s[i + 3:]
    return s


def parse_bool(v):
    """Go strconv.ParseBool."""
    if isinstance(v, bool):
        return v
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("invalid bool")


def to_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    try:
        return parse_bool(str(v))
    except ValueError:
        raise err400("invalid boolean value %r" % v)


def str_list(v):
    """TypeCommaStringSlice."""
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(str_list(x) if isinstance(x, str) else [str(x)])
        return out
    return [str(v)]


def glob_match(pattern, s):
    """go-glob (used by strutil.StrListContainsGlob): '*' matches any run of characters."""
    if pattern == "*":
        return True
    parts = pattern.split("*")
    if len(parts) == 1:
        return s == pattern
    if not s.startswith(parts[0]):
        return False
    pos = len(parts[0])
    for p in parts[1:-1]:
        i = s.find(p, pos)
        if i < 0:
            return False
        pos = i + len(p)
    return s.endswith(parts[-1]) and len(s) - len(parts[-1]) >= pos


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---------------------------------------------------------------------------------------------
# ACL policies

def _strip_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_policy(text):
    """Returns {pattern: set(caps)}. Accepts HCL, JSON, and base64 of either."""
    if not isinstance(text, str):
        raise ValueError("policy must be a string")
    raw = text
    if "path" not in raw and raw.strip():
        try:
            raw = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pass
    rules = {}

    def add(pat, caps, legacy):
        caps = set(caps)
        if legacy is not None:
            caps |= {"read": {"read", "list"},
                     "write": {"create", "read", "update", "delete", "list"},
                     "deny": {"deny"},
                     "sudo": {"create", "read", "update", "delete", "list", "sudo"}}.get(legacy, set())
            if legacy not in ("read", "write", "deny", "sudo"):
                raise ValueError('path "%s": invalid policy "%s"' % (pat, legacy))
        for c in caps:
            if c not in VALID_CAPS:
                raise ValueError('path "%s": invalid capability "%s"' % (pat, c))
        if pat.startswith("/"):
            pat = pat[1:]
        if "*" in pat[:-1]:
            raise ValueError('path "%s": invalid use of wildcards (\'*\' is only allowed at the end)' % pat)
        rules.setdefault(pat, set()).update(caps)

    s = raw.strip()
    if s.startswith("{"):
        try:
            doc = json.loads(s)
        except ValueError as e:
            raise ValueError("invalid JSON: %s" % e)
        paths = doc.get("path", {}) if isinstance(doc, dict) else {}
        if isinstance(paths, dict):
            for pat, body in paths.items():
                body = body or {}
                add(pat, body.get("capabilities", []), body.get("policy"))
        return rules
    s = _strip_comments(raw)
    i, n = 0, len(s)
    head = re.compile(r'\s*path\s+"((?:[^"\\]|\\.)*)"\s*=?\s*\{')
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            break
        m = head.match(s, i)
        if not m:
            line = s.count("\n", 0, i) + 1
            raise ValueError("At %d:1: expected: path \"<glob>\" { ... }" % line)
        depth, j = 1, m.end()
        while j < n and depth:
            if s[j] == '"':
                j += 1
                while j < n and s[j] != '"':
                    j += 2 if s[j] == "\\" else 1
            elif s[j] == "{":
                depth += 1
            elif s[j] == "}":
                depth -= 1
            j += 1
        if depth:
            raise ValueError("At %d:1: unterminated block" % (s.count("\n", 0, i) + 1))
        body = s[m.end():j - 1]
        cm = re.search(r'(?<![\w.])capabilities\s*=\s*\[([^\]]*)\]', body)
        caps = re.findall(r'"([^"]*)"', cm.group(1)) if cm else []
        pm = re.search(r'(?<![\w.])policy\s*=\s*"([^"]*)"', body)
        add(m.group(1), caps, pm.group(1) if pm else None)
        i = j
    return rules


def _pat_match(pat, path):
    glob = pat.endswith("*")
    p = pat[:-1] if glob else pat
    if "+" not in p:
        return path.startswith(p) if glob else path == p
    ps, xs = p.split("/"), path.split("/")
    if not glob:
        return len(ps) == len(xs) and all(a == "+" or a == b for a, b in zip(ps, xs))
    if len(xs) < len(ps):
        return False
    for i, a in enumerate(ps):
        b = xs[i]
        if i == len(ps) - 1:
            return a == "+" or b.startswith(a)
        if a != "+" and a != b:
            return False
    return True


def _pat_priority(pat):
    """Vault's priority matching: larger tuple = higher priority."""
    w = [i for i, c in enumerate(pat) if c in "+*"]
    first = w[0] if w else len(pat)
    return (first, 0 if pat.endswith("*") else 1, -pat.count("+"), len(pat), pat)


class ACL:
    def __init__(self, policy_rules, root=False):
        self.root = root
        self.rules = {}
        for rules in policy_rules:
            for pat, caps in rules.items():
                self.rules.setdefault(pat, set()).update(caps)
        for pat, caps in self.rules.items():
            if "deny" in caps:
                self.rules[pat] = {"deny"}

    def caps(self, path):
        if self.root:
            return {"root"}
        exact = self.rules.get(path)
        if exact is not None and "*" not in path and "+" not in path:
            return set(exact)
        best = None
        for pat in self.rules:
            if ("*" in pat or "+" in pat) and _pat_match(pat, path):
                if best is None or _pat_priority(pat) > _pat_priority(best):
                    best = pat
        return set(self.rules[best]) if best else set()

    def allowed(self, path, op, sudo=False):
        if self.root:
            return True
        c = self.caps(path)
        if "deny" in c or op not in c:
            return False
        return not sudo or "sudo" in c

    def has_mount_access(self, mount_path):
        if self.root:
            return True
        for pat, caps in self.rules.items():
            if not caps or caps == {"deny"}:
                continue
            p = pat[:-1] if pat.endswith("*") else pat
            if "+" in p:
                ps, ms = p.split("/"), mount_path.rstrip("/").split("/")
                if all(a == "+" or a == b or (k == len(ps) - 1 and b.startswith(a))
                       for k, (a, b) in enumerate(zip(ps, ms))):
                    return True
                continue
            if p.startswith(mount_path) or (pat.endswith("*") and mount_path.startswith(p)):
                return True
        return False


# ---------------------------------------------------------------------------------------------
# state

class Token:
    def __init__(self, **kw):
        self.id = kw["id"]
        self.accessor = kw.get("accessor") or rand62(24)
        self.policies = kw["policies"]
        self.meta = kw.get("meta")
        self.display_name = kw.get("display_name", "token")
        self.path = kw.get("path", "auth/token/create")
        self.creation_time = kw["now"]
        self.issue_time = kw["now"]
        self.ttl = kw.get("ttl", 0)
        self.expire_at = None if self.ttl == 0 else kw["now"] + self.ttl
        self.explicit_max_ttl = kw.get("explicit_max_ttl", 0)
        self.max_ttl = kw.get("max_ttl", SYS_MAX_TTL)
        self.period = kw.get("period", 0)
        self.renewable = kw.get("renewable", self.ttl != 0)
        self.orphan = kw.get("orphan", True)
        self.parent = kw.get("parent")
        self.entity_id = kw.get("entity_id", "")
        self.role = kw.get("role")  # (auth mount path, role name) for kubernetes logins
        self.last_renewal = None
        self.ns = kw.get("ns", "")
        # HA faults armed at login (POST /_standin/ha): answers this node gives while the token
        # "has not reached it" yet; -1 = forever
        self.pending_412 = 0
        self.pending_mount_403 = 0

    def remaining(self, now):
        return 0 if self.expire_at is None else max(0, int(round(self.expire_at - now)))

    def auth_block(self, now, lease=None):
        pol = [p for p in self.policies]
        return {"client_token": self.id, "accessor": self.accessor, "policies": pol,
                "token_policies": pol, "metadata": self.meta or None,
                "lease_duration": self.remaining(now) if lease is None else lease,
                "renewable": self.renewable, "entity_id": self.entity_id,
                "token_type": "service", "orphan": self.orphan, "mfa_requirement": None,
                "num_uses": 0}


def new_mount(path, mtype, options=None, description="", config=None, local=False):
    prefix = {"kv": "kv", "cubbyhole": "cubbyhole", "system": "system", "identity": "identity",
              "kubernetes": "auth_kubernetes", "token": "auth_token"}.get(mtype, mtype)
    cfg = {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0}
    if config:
        for k in ("default_lease_ttl", "max_lease_ttl"):
            if k in config:
                cfg[k] = parse_duration(config[k])
        if "force_no_cache" in config:
            cfg["force_no_cache"] = bool(config["force_no_cache"])
    return {"path": path, "type": mtype, "options": options, "description": description,
            "config": cfg, "local": local, "accessor": "%s_%s" % (prefix, secrets.token_hex(4)),
            "uuid": str(uuid.uuid4()), "seal_wrap": False, "external_entropy_access": False,
            "listing_visibility": "", "kv1": {}, "kv2": {},
            "kv2cfg": {"max_versions": 0, "cas_required": False, "delete_version_after": 0},
            "roles": {}, "k8s_config": {}}


def kv_version(m):
    if m["type"] != "kv":
        return None
    return 2 if (m["options"] or {}).get("version") == "2" else 1


class State:
    def __init__(self, cfg, audit_path):
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.flavor = cfg.get("flavor", "vault")
        seal = cfg.get("seal", {})
        self.initialized = bool(seal.get("initialized", True))
        self.sealed = bool(seal.get("sealed", False)) or not self.initialized
        self.shares = int(seal.get("shares", 1))
        self.threshold = int(seal.get("threshold", 1))
        self.unseal_keys = [bytes.fromhex(k) for k in seal.get("keys", [])]
        if self.initialized and not self.unseal_keys:
            self.unseal_keys = [secrets.token_bytes(33) for _ in range(self.shares)]
        self.unseal_progress = []
        self.unseal_nonce = ""
        self.standby = False
        self.perf_standby = False
        self.dr_secondary = False
        self.cluster_name = "vault-cluster-%s" % secrets.token_hex(4)
        self.cluster_id = str(uuid.uuid4())
        self.tokens = {}
        self.accessors = {}
        self.token_roles = {}  # auth/token/roles/<name>
        self.wrapped = {}      # wrapping token -> (expire_at, the wrapped response object)
        self.policies = {"default": DEFAULT_POLICY.strip() + "\n"}
        self.policy_meta = {"default": {"version": 1, "modified": time.time()}}
        self.namespaces = {""}
        self.mounts = {"": {}}
        self.auth_mounts = {}
        self.cluster_key = cfg.get("cluster", {}).get("jwt_key") or secrets.token_hex(32)
        self.cluster_issuer = cfg.get("cluster", {}).get(
            "issuer", "https://kubernetes.default.svc.cluster.local")
        self.review_deny = []
        self.review_fail_all = False
        self.faults = []
        self.ha = {"index_412": 0, "mount_403": 0, "redirect": None}
        self.request_log = []
        self.listeners = []  # URL of each API listener, index 0 = --listen
        self.ns_auth_mounts = {}
        self.ns_policies = {}
        self.stats = {"requests": {}, "connections": 0, "logins": {"ok": 0, "failed": 0}}
        self.audit_key = secrets.token_bytes(32)
        self.audit_file = open(audit_path, "a", encoding="utf-8") if audit_path else None
        self.audit_lock = threading.Lock()

        for ns in cfg.get("namespaces", []):
            self.add_namespace(ns.strip("/"))
        self.mounts[""]["sys/"] = new_mount("sys/", "system", None, "system endpoints used for control, policy and debugging")
        self.mounts[""]["cubbyhole/"] = new_mount("cubbyhole/", "cubbyhole", None, "per-token private secret storage", local=True)
        self.mounts[""]["identity/"] = new_mount("identity/", "identity", None, "identity store")
        self.auth_mounts["token/"] = new_mount("token/", "token", None, "token based credentials")
        for m in cfg.get("mounts", [{"path": "secret", "type": "kv", "options": {"version": "2"}}]):
            ns = m.get("namespace", "").strip("/")
            self.add_namespace(ns)
            mtype, opts = m.get("type", "kv"), m.get("options")
            if mtype in ("kv-v1", "kv-v2"):
                opts = dict(opts or {}, version=mtype[-1])
                mtype = "kv"
            if mtype == "kv":
                opts = {"version": str((opts or {}).get("version", "1"))}
            ent = new_mount(m["path"].strip("/") + "/", mtype, opts, m.get("description", ""), m.get("config"))
            for k in ("max_versions", "cas_required", "delete_version_after"):
                if k in m:
                    ent["kv2cfg"][k] = parse_duration(m[k]) if k == "delete_version_after" else m[k]
            ent["listing_visibility"] = m.get("listing_visibility", "")
            self.mounts[ns][ent["path"]] = ent
        for a in cfg.get("auth", [{"path": "kubernetes", "type": "kubernetes", "roles": {}}]):
            ans = a.get("namespace", "").strip("/")
            self.add_namespace(ans)
            ent = new_mount(a["path"].strip("/") + "/", a.get("type", "kubernetes"), None, a.get("description", ""))
            for name, r in (a.get("roles") or {}).items():
                ent["roles"][name] = normalize_role(r)
            ent["k8s_config"] = dict(a.get("config") or {})
            self.auth_table(ans)[ent["path"]] = ent
        for name, text in (cfg.get("policies") or {}).items():
            self.policies[name] = text
            self.policy_meta[name] = {"version": 1, "modified": time.time()}
            parse_policy(text)
        for ns, pols in (cfg.get("namespace_policies") or {}).items():
            self.add_namespace(ns.strip("/"))
            for name, text in pols.items():
                parse_policy(text)
                self.policy_table(ns.strip("/"))[name] = text
        if self.initialized:
            rt = cfg.get("root_token") or ("hvs." + rand62(24))
            self.root_token = rt
            self.add_token(Token(id=rt, policies=["root"], now=self.now(), display_name="root",
                                 path="auth/token/root", ttl=0, renewable=False))
        else:
            self.root_token = None
        for s in cfg.get("secrets", []):
            self.seed_secret(s)

    def add_namespace(self, ns):
        if ns and ns not in self.namespaces:
            self.namespaces.add(ns)
            self.mounts[ns] = {}
            self.mounts[ns]["sys/"] = new_mount("sys/", "system", None, "system endpoints")
            self.ns_auth_mounts[ns] = {"token/": new_mount("token/", "token", None, "token based credentials")}
            self.ns_policies[ns] = {"default": DEFAULT_POLICY.strip() + "\n"}

    def auth_table(self, ns):
        """Auth mounts of a namespace: each namespace has its own (and its own token/)."""
        return self.auth_mounts if not ns else self.ns_auth_mounts[ns]

    def policy_table(self, ns):
        return self.policies if not ns else self.ns_policies[ns]

    @staticmethod
    def ns_within(outer, inner):
        """Whether namespace inner is outer or below it (a token works there)."""
        return not outer or inner == outer or inner.startswith(outer + "/")

    def acl_rel(self, tok, full):
        """A full path as the token's policies see it: relative to the token's namespace."""
        if tok is not None and tok.ns and (full == tok.ns or full.startswith(tok.ns + "/")):
            return full[len(tok.ns) + 1:]
        return full

    def now(self):
        return time.time() + self.clock_offset

    def version(self):
        return OPENBAO_VERSION if self.flavor == "openbao" else VERSION

    def add_token(self, t):
        self.tokens[t.id] = t
        self.accessors[t.accessor] = t

    def drop_token(self, t):
        self.tokens.pop(t.id, None)
        self.accessors.pop(t.accessor, None)
        for c in [c for c in self.tokens.values() if c.parent == t.accessor]:
            self.drop_token(c)

    def valid_token(self, tid):
        t = self.tokens.get(tid)
        if t is None:
            return None
        if t.expire_at is not None and t.expire_at <= self.now():
            self.drop_token(t)
            return None
        if t.parent and self.accessors.get(t.parent) is None:
            self.drop_token(t)
            return None
        if t.parent and self.valid_token(self.accessors[t.parent].id) is None:
            self.drop_token(t)
            return None
        return t

    def sweep_tokens(self):
        for t in list(self.tokens.values()):
            self.valid_token(t.id)

    def acl_for(self, tok):
        if "root" in tok.policies:
            return ACL([], root=True)
        rules = []
        table = self.policy_table(tok.ns)
        for p in tok.policies:
            if p in table:
                try:
                    rules.append(parse_policy(table[p]))
                except ValueError:
                    pass
        return ACL(rules)

    def find_mount(self, ns, rel):
        best = None
        for p, m in self.mounts.get(ns, {}).items():
            if (rel.startswith(p) or rel + "/" == p) and (best is None or len(p) > len(best["path"])):
                best = m
        return best

    def split_ns(self, full):
        """Longest namespace prefix of a path (OpenBao path-prefix namespaces)."""
        best = ""
        for ns in self.namespaces:
            if ns and (full == ns or full.startswith(ns + "/")) and len(ns) > len(best):
                best = ns
        return best, full[len(best) + 1:] if best else full

    # kv helpers used by config seeding and the control API
    def seed_secret(self, s):
        ns = s.get("namespace", "").strip("/")
        path = s["path"].strip("/")
        m = self.find_mount(ns, path)
        if m is None or m["type"] != "kv":
            raise ValueError("secret %r is not under a kv mount" % path)
        key = path[len(m["path"]):]
        if kv_version(m) == 1:
            if s.get("delete"):
                m["kv1"].pop(key, None)
            else:
                m["kv1"][key] = s["data"]
            return
        if s.get("delete"):
            m["kv2"].pop(key, None)
            return
        versions = s.get("versions") or [s.get("data", {})]
        for d in versions:
            kv2_put(self, m, key, d, None)
        meta = m["kv2"][key]
        if "custom_metadata" in s:
            meta["custom_metadata"] = s["custom_metadata"]
        now = self.now()
        for v in s.get("deleted", []):
            meta["versions"][v]["deletion_time"] = now
        for v in s.get("destroyed", []):
            meta["versions"][v]["destroyed"] = True
            meta["versions"][v]["data"] = None

    def audit_hash(self, s):
        return "hmac-sha256:" + hmac.new(self.audit_key, s.encode(), hashlib.sha256).hexdigest()


def normalize_role(r):
    names = str_list(r.get("bound_service_account_names"))
    nss = str_list(r.get("bound_service_account_namespaces"))
    if not names:
        raise err400('"bound_service_account_names" can not be empty')
    if not nss and not r.get("bound_service_account_namespace_selector"):
        raise err400('"bound_service_account_namespaces" can not be empty')
    for lst in (names, nss):
        if len(lst) > 1 and "*" in lst:
            raise err400('can not mix "*" with values')
    try:
        ttl = parse_duration(r.get("token_ttl", r.get("ttl", 0)))
        max_ttl = parse_duration(r.get("token_max_ttl", r.get("max_ttl", 0)))
        period = parse_duration(r.get("token_period", r.get("period", 0)))
        emax = parse_duration(r.get("token_explicit_max_ttl", 0))
    except ValueError as e:
        raise err400(str(e))
    if max_ttl and ttl > max_ttl:
        raise err400("token ttl should not be greater than token max ttl")
    pol = str_list(r.get("token_policies", r.get("policies")))
    return {"bound_service_account_names": names, "bound_service_account_namespaces": nss,
            "audience": r.get("audience", "") or "", "alias_name_source": r.get("alias_name_source", "serviceaccount_uid"),
            "token_policies": pol, "token_ttl": ttl, "token_max_ttl": max_ttl, "token_period": period,
            "token_explicit_max_ttl": emax, "token_no_default_policy": bool(r.get("token_no_default_policy", False)),
            "token_type": r.get("token_type", "default"), "token_num_uses": int(r.get("token_num_uses", 0)),
            "token_bound_cidrs": str_list(r.get("token_bound_cidrs")),
            "bound_service_account_namespace_selector": r.get("bound_service_account_namespace_selector", "") or "",
            "deprecated_set": [k for k in ("policies", "ttl", "max_ttl", "period")
                               if k in r and "token_" + k not in r] + list(r.get("deprecated_set") or [])}


def sanitize_policies(pols, add_default=True):
    out = set(p.strip().lower() for p in pols if p.strip())
    if "root" in out:
        return ["root"]
    if add_default:
        out.add("default")
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# kv v2

def kv2_eff_max(st, m, meta):
    mv = meta.get("max_versions") or m["kv2cfg"].get("max_versions") or 0
    return mv if mv > 0 else 10


def kv2_new_meta(now):
    return {"versions": {}, "current_version": 0, "oldest_version": 0, "created_time": now,
            "updated_time": now, "max_versions": 0, "cas_required": False,
            "delete_version_after": 0, "custom_metadata": None}


def kv2_put(st, m, key, data, cas):
    now = st.now()
    meta = m["kv2"].get(key)
    cas_required = m["kv2cfg"].get("cas_required") or (meta and meta["cas_required"])
    if cas is None and cas_required:
        raise err400("check-and-set parameter required for this call")
    if cas is not None:
        cur = meta["current_version"] if meta else 0
        if cas != cur:
            raise err400("check-and-set parameter did not match the current version")
    if meta is None:
        meta = m["kv2"][key] = kv2_new_meta(now)
    v = meta["current_version"] + 1
    dva = meta["delete_version_after"] or m["kv2cfg"].get("delete_version_after") or 0
    meta["versions"][v] = {"data": data, "created_time": now,
                           "deletion_time": (now + dva) if dva else None, "destroyed": False}
    meta["current_version"] = v
    meta["updated_time"] = now
    mx = kv2_eff_max(st, m, meta)
    while len(meta["versions"]) > mx:
        del meta["versions"][min(meta["versions"])]
        meta["oldest_version"] = min(meta["versions"])
    return v


def kv2_vmeta(st, meta, v, with_version=True):
    ent = meta["versions"][v]
    out = {"created_time": rfc3339(ent["created_time"]),
           "custom_metadata": meta["custom_metadata"],
           "deletion_time": rfc3339(ent["deletion_time"]) if ent["deletion_time"] else "",
           "destroyed": ent["destroyed"]}
    if with_version:
        out["version"] = v
    return out


def kv2_deleted(st, ent):
    return ent["deletion_time"] is not None and ent["deletion_time"] <= st.now()


def list_children(keys, prefix):
    out = set()
    for k in keys:
        if k.startswith(prefix):
            rest = k[len(prefix):]
            if not rest:
                continue
            i = rest.find("/")
            out.add(rest if i < 0 else rest[:i + 1])
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# HTTP server

class Request:
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-vault"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("vault-standin: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        st = self.server.state
        with st.lock:
            st.stats["connections"] += 1

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            pass

    def finish(self):
        try:
            super().finish()
        except (ConnectionError, ssl.SSLError, OSError, ValueError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_HEAD = do_PATCH = lambda self: self.handle_any()

    def __getattr__(self, name):
        # any other method (OPTIONS, FOO...) gets Vault's 405 instead of http.server's HTML 501
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    # ---- low-level I/O
    def send(self, status, obj=None, headers=None, raw=None):
        body = b""
        if raw is not None:
            body = raw
        elif obj is not None:
            body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        for k, v in (headers.items() if isinstance(headers, dict) else headers or ()):
            self.send_header(k, str(v))
        if self.close_connection:
            self.send_header("Connection", "close")
        if getattr(self, "_stat_path", None) is not None:
            # what each answered request carried (never a token value): GET /_standin/requests;
            # logged before the reply leaves, so a client that got it finds it there
            st = self.server.state
            ent = {"listener": getattr(self.server, "index", 0), "method": self.command,
                   "path": self._stat_path, "status": status,
                   "namespace": self.headers.get("X-Vault-Namespace"),
                   "token": bool(self.headers.get("X-Vault-Token"))}
            with st.lock:
                st.request_log.append(ent)
                del st.request_log[:-REQUEST_LOG_MAX]
        self.end_headers()
        if status != 204 and self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()
        self._status = status

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if not cl:
            return b""
        n = int(cl)
        if n < 0:
            raise ValueError("bad content-length")
        if n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def handle_any(self):
        self._status = 0
        try:
            self._handle_any()
        except (ConnectionError, ssl.SSLError, BrokenPipeError):
            self.close_connection = True
        except Exception:  # never a traceback to the client
            traceback.print_exc(file=sys.stderr)
            try:
                self.send(500, {"errors": ["internal error"]})
            except Exception:
                self.close_connection = True
        finally:
            st = self.server.state
            if getattr(self, "_stat_path", None) is not None:
                k = "%s %s %d" % (self.command, self._stat_path, self._status)
                with st.lock:
                    st.stats["requests"][k] = st.stats["requests"].get(k, 0) + 1

    def _handle_any(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self._stat_path = path
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self.send(400, {"errors": ["error parsing JSON"]})
        if body is None:
            self.close_connection = True
            return self.send(413, {"errors": ["error parsing JSON"]})
        if not path.startswith("/v1/"):
            return self.send(404, {"errors": []})
        if self.apply_redirect(url):
            return
        if self.apply_faults(path[4:]):
            return
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        req = Request()
        req.method = self.command
        req.query = {k: v[0] for k, v in query.items()}
        req.raw_path = path[4:]
        req.remote = self.client_address
        req.body = body
        req.headers = self.headers
        # sys/health and friends are raw HTTP handlers (no envelope, no token, not audited)
        p = req.raw_path.strip("/")
        raw = {"sys/health": self.sys_health, "sys/seal-status": self.sys_seal_status,
               "sys/init": self.sys_init, "sys/unseal": self.sys_unseal}
        hdr_ns = (self.headers.get("X-Vault-Namespace") or "").strip("/")
        if p in raw and not hdr_ns:
            try:
                data = self.parse_data(req) if self.command in ("PUT", "POST") else {}
                with st.lock:
                    status, obj = raw[p](req, data)
            except VaultError as e:
                status, obj = e.status, {"errors": e.errors}
            return self.send(status, obj)
        try:
            data = self.parse_data(req)
        except VaultError as e:
            return self.send(e.status, {"errors": e.errors})
        with st.lock:
            status, obj, headers = self.logical(req, data, hdr_ns)
        self.send(status, obj, headers)

    def parse_data(self, req):
        data = {}
        if req.body and req.body.strip():
            ct = (self.headers.get("Content-Type") or "").lower()
            first = req.body.lstrip()[:1]
            if ct.startswith("application/x-www-form-urlencoded") and first not in (b"{", b"["):
                data = {k: v[0] if len(v) == 1 else v for k, v in
                        urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()}
            else:
                try:
                    data = json.loads(req.body)
                except ValueError:
                    raise VaultError(400, ["error parsing JSON"])
                if data is None:
                    data = {}
                if not isinstance(data, dict):
                    raise VaultError(400, ["error parsing JSON"])
        if self.command in ("GET", "DELETE", "HEAD"):
            for k, v in req.query.items():
                if k != "list":
                    data.setdefault(k, v)
        return data

    # ---- HA: a standby that cannot forward answers 307 to the active node
    def apply_redirect(self, url):
        st = self.server.state
        with st.lock:
            r = st.ha.get("redirect")
            if not r or getattr(self.server, "index", 0) not in r.get("on", [0]):
                return False
            if r["count"] > 0:
                r["count"] -= 1
                if r["count"] == 0:
                    st.ha["redirect"] = None
            r["hits"] = r.get("hits", 0) + 1
            to = r["to"]
            base = st.listeners[to] if isinstance(to, int) else str(to).rstrip("/")
        loc = base + url.path + ("?" + url.query if url.query else "")
        self.send(int(r.get("status", 307)), None, {"Location": loc}, raw=b"")
        return True

    # ---- faults
    def apply_faults(self, rel):
        st = self.server.state
        full = "/v1/" + rel
        with st.lock:
            hit = None
            for f in st.faults:
                if f.get("method") and f["method"].upper() != self.command:
                    continue
                if "regex" in f:
                    if not re.search(f["regex"], full):
                        continue
                else:
                    m = f.get("match", "")
                    if not (full.startswith(m) if m.startswith("/") else rel.startswith(m)):
                        continue
                hit = f
                break
            if hit is None:
                return False
            if hit["count"] > 0:
                hit["count"] -= 1
                if hit["count"] == 0:
                    st.faults.remove(hit)
            hit["hits"] = hit.get("hits", 0) + 1
        kind = hit.get("kind", "status")
        if kind == "delay":
            time.sleep(hit.get("delay_ms", 1000) / 1000.0)
            return False
        if kind in ("drop", "reset"):
            self.close_connection = True
            self._status = 0
            try:
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        headers = []
        if hit.get("retry_after") is not None:
            headers.append(("Retry-After", hit["retry_after"]))
        headers += [(k, v) for k, v in hit.get("headers", [])]  # [[name, value], ...], repeats kept
        if kind == "sealed":
            self.send(503, {"errors": ["Vault is sealed"]}, headers)
            return True
        status = int(hit.get("status", 500))
        b = hit.get("body")
        if b is None:
            self.send(status, None if status == 204 else {"errors": []}, headers)
        elif isinstance(b, str):
            self.send(status, headers=headers, raw=b.encode())
        else:
            self.send(status, b, headers)
        return True

    # ---- raw sys handlers
    def seal_status(self):
        st = self.server.state
        out = {"type": "shamir", "initialized": st.initialized, "sealed": st.sealed,
               "t": st.threshold if st.initialized else 0, "n": st.shares if st.initialized else 0,
               "progress": len(st.unseal_progress), "nonce": st.unseal_nonce, "version": st.version(),
               "build_date": "" if st.flavor == "openbao" else "2024-01-01T00:00:00Z",
               "migration": False}
        if not st.sealed:
            out["cluster_name"] = st.cluster_name
            out["cluster_id"] = st.cluster_id
        out["recovery_seal"] = False
        out["storage_type"] = "inmem"
        return out

    def sys_seal_status(self, req, data):
        if req.method not in ("GET", "HEAD"):
            raise unsupported_op()
        return 200, self.seal_status()

    def sys_health(self, req, data):
        st = self.server.state
        if req.method not in ("GET", "HEAD"):
            raise unsupported_op()
        q = req.query
        codes = {}
        for name, dflt in (("activecode", 200), ("standbycode", 429), ("drsecondarycode", 472),
                           ("performancestandbycode", 473), ("sealedcode", 503),
                           ("uninitcode", 501)):
            codes[name] = dflt
            if name in q:
                try:
                    codes[name] = int(q[name])
                except ValueError:
                    raise VaultError(400, ["bad code for '%s': %s" % (name, q[name])])
        oks = {}
        for name in ("standbyok", "perfstandbyok"):
            try:
                oks[name] = parse_bool(q[name]) if name in q and q[name] != "" else (name in q)
            except ValueError:
                raise VaultError(400, ["bad value for '%s': %s" % (name, q[name])])
        if not st.initialized:
            code = codes["uninitcode"]
        elif st.sealed:
            code = codes["sealedcode"]
        elif st.dr_secondary:
            code = codes["drsecondarycode"]
        elif st.perf_standby and not oks["perfstandbyok"]:
            code = codes["performancestandbycode"]
        elif st.standby and not st.perf_standby and not oks["standbyok"]:
            code = codes["standbycode"]
        else:
            code = codes["activecode"]
        body = {"initialized": st.initialized, "sealed": st.sealed,
                "standby": st.sealed or st.standby or st.perf_standby}
        body["performance_standby"] = st.perf_standby
        body.update({"replication_performance_mode": "disabled",
                     "replication_dr_mode": "secondary" if st.dr_secondary else "disabled",
                     "server_time_utc": int(st.now()), "version": st.version()})
        if st.initialized and not st.sealed:
            body["cluster_name"] = st.cluster_name
            body["cluster_id"] = st.cluster_id
        return code, body

    def sys_init(self, req, data):
        st = self.server.state
        if req.method in ("GET", "HEAD"):
            return 200, {"initialized": st.initialized}
        if req.method not in ("PUT", "POST"):
            raise unsupported_op()
        if st.initialized:
            raise err400("Vault is already initialized")
        try:
            n = int(data.get("secret_shares", 0))
            t = int(data.get("secret_threshold", 0))
        except (TypeError, ValueError):
            raise err400("error parsing JSON")
        if n < 1:
            raise err400("invalid seal configuration: shares must be at least one")
        if t < 1:
            raise err400("invalid seal configuration: threshold must be at least one")
        if t > n:
            raise err400("invalid seal configuration: threshold must not exceed the number of shares")
        if n > 1 and t == 1:
            raise err400("invalid seal configuration: threshold must be greater than one for multiple shares")
        st.shares, st.threshold = n, t
        st.unseal_keys = [secrets.token_bytes(33) for _ in range(n)]
        st.initialized, st.sealed = True, True
        rt = new_token_id(st)
        st.root_token = rt
        st.add_token(Token(id=rt, policies=["root"], now=st.now(), display_name="root",
                           path="auth/token/root", ttl=0, renewable=False))
        return 200, {"keys": [k.hex() for k in st.unseal_keys],
                     "keys_base64": [base64.b64encode(k).decode() for k in st.unseal_keys],
                     "root_token": rt}

    def sys_unseal(self, req, data):
        st = self.server.state
        if req.method not in ("PUT", "POST"):
            raise unsupported_op()
        if not st.initialized:
            raise err400("Vault is not initialized")
        if to_bool(data.get("reset")):
            if not st.sealed:
                raise err400("vault is unsealed")
            st.unseal_progress, st.unseal_nonce = [], ""
            return 200, self.unseal_reply()
        key = data.get("key")
        if not key:
            raise err400("'key' must be specified in request body as JSON, or 'reset' set to true")
        if not st.sealed:
            return 200, self.unseal_reply()
        try:
            kb = bytes.fromhex(key)
        except (ValueError, TypeError):
            try:
                kb = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise err400("'key' must be a valid hex or base64 string")
        if kb not in st.unseal_progress:
            st.unseal_progress.append(kb)
            st.unseal_nonce = st.unseal_nonce or str(uuid.uuid4())
        if len(st.unseal_progress) >= st.threshold:
            good = all(k in st.unseal_keys for k in st.unseal_progress)
            st.unseal_progress, st.unseal_nonce = [], ""
            if not good:
                raise err400("failed to decrypt keys from storage: cipher: message authentication failed")
            st.sealed = False
        return 200, self.unseal_reply()

    def unseal_reply(self):
        s = self.seal_status()
        return s

    # ---- logical requests
    def logical(self, req, data, hdr_ns):
        st = self.server.state
        rel_in = req.raw_path.lstrip("/")
        full = (hdr_ns + "/" + rel_in) if hdr_ns else rel_in
        if hdr_ns and hdr_ns not in st.namespaces:
            text = 'no handler for route "%s". route entry not found.' % full
            return 404, {"errors": [multierr(text) if st.flavor != "openbao" else text]}, None
        method = req.method
        op = {"GET": "read", "HEAD": "read", "POST": "update", "PUT": "update", "DELETE": "delete",
              "LIST": "list", "PATCH": "patch"}.get(method)
        if op is None:
            return 405, {"errors": [multierr("unsupported operation")]}, None
        if "list" in req.query and method in ("GET", "HEAD"):
            try:
                if parse_bool(req.query["list"]):
                    op = "list"
            except ValueError:
                return 400, {"errors": []}, None
        if op == "list" and not full.endswith("/"):
            full += "/"
        if st.sealed:
            return 503, {"errors": ["Vault is sealed"]}, None
        ns, rel = st.split_ns(full)
        token_str = req.headers.get("X-Vault-Token")
        if not token_str:
            authz = req.headers.get("Authorization") or ""
            if authz[:7].lower() == "bearer ":
                token_str = authz[7:].strip()
        ctx = {"req": req, "data": data, "op": op, "ns": ns, "rel": rel, "full": full,
               "token": None, "mount": None, "mount_type": "", "warnings": None}
        rid = str(uuid.uuid4())
        ctx["rid"] = rid
        tok = st.valid_token(token_str) if token_str else None
        if tok is not None and not st.ns_within(tok.ns, ns):
            tok = None  # a namespace's token is not valid above it (or beside it)
        ctx["token"] = tok
        if tok is not None and tok.pending_412:
            tok.pending_412 -= 1 if tok.pending_412 > 0 else 0
            return 412, {"errors": ["required index state not present"]}, None
        if tok is not None and tok.pending_mount_403 and rel.startswith("sys/internal/ui/mounts/"):
            tok.pending_mount_403 -= 1 if tok.pending_mount_403 > 0 else 0
            return 403, {"errors": [multierr("permission denied", "invalid token")
                                    if st.flavor != "openbao" else multierr("permission denied")]}, None
        resp_status, resp_obj, headers, err = 200, None, None, None
        try:
            route = self.route(ctx)
            unauth = route.get("unauth", False)
            if not unauth:
                if not token_str:
                    raise VaultError(403, [multierr("permission denied") if st.flavor != "openbao" else "permission denied"])
                if tok is None:
                    raise VaultError(403, [multierr("permission denied", "invalid token")
                                           if st.flavor != "openbao" else "permission denied"])
                if route.get("exists") is not None and ctx["op"] == "update":
                    ctx["op"] = "update" if route["exists"]() else "create"
                acl_path = st.acl_rel(tok, full if not route.get("acl_path") else route["acl_path"])
                acl = st.acl_for(tok)
                if not acl.allowed(acl_path, ctx["op"], route.get("sudo", False)):
                    raise VaultError(403, [multierr("permission denied")])
            self.audit("request", ctx, None, None)
            resp_status, resp_obj = route["fn"](ctx)
            wrap_ttl = req.headers.get("X-Vault-Wrap-TTL")
            if wrap_ttl and resp_status == 200 and isinstance(resp_obj, dict):
                resp_obj = self.wrap_response(ctx, resp_obj, wrap_ttl)
        except VaultError as e:
            err = e
            resp_status = e.status
            resp_obj = {"errors": e.errors}
            if e.data is not None:
                resp_obj["data"] = e.data
            headers = e.headers
            if "_audited" not in ctx:
                self.audit("request", ctx, None, e)
        self.audit("response", ctx, (resp_status, resp_obj), err)
        return resp_status, resp_obj, headers

    # ---- response wrapping: the answer stays in the vault, a single-use token stands for it
    def wrap_response(self, ctx, obj, wrap_ttl):
        st = self.server.state
        try:
            ttl = parse_duration(wrap_ttl)
        except ValueError:
            raise VaultError(400, ["invalid wrap TTL"])
        if ttl <= 0:
            raise VaultError(400, ["invalid wrap TTL"])
        tid = new_token_id(st)
        now = st.now()
        st.wrapped[tid] = (now + ttl, obj)
        auth = obj.get("auth") or {}
        info = {"token": tid, "accessor": rand62(24), "ttl": int(ttl),
                "creation_time": rfc3339(now), "creation_path": ctx["full"].rstrip("/")}
        if auth.get("accessor"):
            info["wrapped_accessor"] = auth["accessor"]
        return {"request_id": ctx["rid"], "lease_id": "", "renewable": False, "lease_duration": 0,
                "data": None, "wrap_info": info, "warnings": None, "auth": None}

    def sys_unwrap(self, c):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        tid = c["req"].headers.get("X-Vault-Token") or ""
        ent = st.wrapped.pop(tid, None)  # single use: gone whether it works or not
        if ent is None or ent[0] < st.now():
            raise VaultError(400, ["wrapping token is not valid or does not exist"])
        return 200, ent[1]

    def env(self, ctx, data=None, auth=None, lease_duration=0, top=False, renewable=False):
        out = {"request_id": ctx["rid"], "lease_id": "", "renewable": renewable,
               "lease_duration": lease_duration, "data": data, "wrap_info": None,
               "warnings": ctx["warnings"], "auth": auth, "mount_type": ctx["mount_type"]}
        if self.server.state.flavor == "openbao":
            del out["mount_type"]
        if top and isinstance(data, dict):
            res = dict(data)
            res.update(out)
            return res
        return out

    # ---- routing
    def route(self, ctx):
        st = self.server.state
        rel, ns = ctx["rel"], ctx["ns"]
        if rel.startswith("sys/") or rel == "sys":
            ctx["mount_type"] = "system"
            ctx["mount"] = st.mounts[ns]["sys/"]
            return self.route_sys(ctx)
        if rel.startswith("auth/"):
            best = None
            for p, m in st.auth_table(ns).items():
                if (rel + "/").startswith("auth/" + p) and (best is None or len(p) > len(best["path"])):
                    best = m
            if best is None:
                return {"fn": self.no_route(ctx)}
            ctx["mount"] = best
            ctx["mount_type"] = best["type"]
            sub = rel[len("auth/" + best["path"]):]
            if best["type"] == "token":
                return self.route_token(ctx, sub)
            if best["type"] == "kubernetes":
                return self.route_k8s(ctx, best, sub)
            return {"fn": _raise(unsupported_path)}
        m = st.find_mount(ns, rel)
        if m is None or m["type"] in ("identity",):
            return {"fn": self.no_route(ctx)}
        ctx["mount"] = m
        ctx["mount_type"] = m["type"]
        sub = rel[len(m["path"]):] if rel.startswith(m["path"]) else ""
        if m["type"] == "cubbyhole":
            return self.route_kv1(ctx, m, sub, cubby=True)
        if kv_version(m) == 2:
            return self.route_kv2(ctx, m, sub)
        if kv_version(m) == 1:
            return self.route_kv1(ctx, m, sub)
        return {"fn": _raise(unsupported_path)}

    def no_route(self, ctx):
        def fn(c):
            text = 'no handler for route "%s". route entry not found.' % c["full"].rstrip("/")
            raise VaultError(404, [multierr(text) if self.server.state.flavor != "openbao" else text])
        return fn

    # ---- kv v1 / cubbyhole
    def route_kv1(self, ctx, m, key, cubby=False):
        st = self.server.state
        store = m["kv1"]
        if cubby:
            tok = ctx["token"]
            key = (tok.accessor if tok else "-") + "/" + key
        if key.endswith(".") or (key.endswith("/") and ctx["op"] != "list" and not cubby):
            return {"fn": _raise(unsupported_path)}

        def fn(c):
            op = c["op"]
            if op == "read":
                if key not in store:
                    return 404, {"errors": []}
                d = store[key]
                lease = SYS_DEFAULT_TTL
                if not cubby and "ttl" in d:
                    try:
                        lease = parse_duration(d["ttl"])
                    except ValueError:
                        pass
                return 200, self.env(c, dict(d), lease_duration=0 if cubby else lease)
            if op == "list":
                keys = list_children(store.keys(), key if key.endswith("/") or key == "" else key + "/")
                if cubby:
                    keys = list_children(store.keys(), key)
                if not keys:
                    return 404, {"errors": []}
                return 200, self.env(c, {"keys": keys})
            if op in ("create", "update"):
                if not c["data"]:
                    raise err400("missing data fields")
                if not cubby and "ttl" in c["data"]:
                    try:
                        parse_duration(c["data"]["ttl"])
                    except ValueError:
                        raise err400('failed to parse TTL "%s"' % c["data"]["ttl"])
                store[key] = c["data"]
                return 204, None
            if op == "delete":
                store.pop(key, None)
                return 204, None
            raise unsupported_op()
        return {"fn": fn, "exists": lambda: key in store}

    # ---- kv v2
    def route_kv2(self, ctx, m, sub):
        st = self.server.state
        head, sep, key = sub.partition("/")
        if head == "config" and not key:
            return {"fn": lambda c: self.kv2_config(c, m)}
        if st.flavor == "openbao":
            # OpenBao's kv plugin (pathInvalid): the bare root of a versioned path, or any path
            # that is not one, is a 404 with the envelope and a warning; "data/" alone is a key
            # of its own (404 {"errors": []}).
            if head in ("data", "metadata", "delete", "undelete", "destroy") and not sep and ctx["op"] != "list":
                return {"fn": lambda c: self.kv2_invalid(c, True)}
            if head not in ("data", "metadata", "delete", "undelete", "destroy", "subkeys") or (head == "subkeys" and not sep):
                return {"fn": lambda c: self.kv2_invalid(c, False)}
            if ctx["op"] != "list" and not key:
                return {"fn": lambda c: (404, {"errors": []})}
        if head not in ("data", "metadata", "delete", "undelete", "destroy", "subkeys") or key.endswith("."):
            return {"fn": _raise(unsupported_path)}
        if ctx["op"] == "list" and head == "metadata":
            key = key.rstrip("/") + "/" if key.strip("/") else ""
        elif ctx["op"] == "list":
            return {"fn": _raise(unsupported_op)}
        if ctx["op"] != "list" and not key:
            return {"fn": _raise(unsupported_path)}
        exists = lambda: key in m["kv2"]
        fn = {"data": self.kv2_data, "metadata": self.kv2_metadata, "delete": self.kv2_versions_op,
              "undelete": self.kv2_versions_op, "destroy": self.kv2_versions_op,
              "subkeys": self.kv2_subkeys}[head]
        return {"fn": lambda c: fn(c, m, key, head),
                "exists": exists if head in ("data", "metadata") else None}

    def kv2_invalid(self, c, root):
        if root:
            c["warnings"] = ["Non-listing operations on the root of a K/V v2 mount are not supported."]
        else:
            sub = {"create": "put", "update": "put", "patch": "patch", "read": "get", "list": "list",
                   "delete": "delete"}.get(c["op"], c["op"])
            c["warnings"] = ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate "
                             "API endpoints to use. If using the OpenBao CLI, use 'bao kv %s' for this operation." % sub]
        return 404, self.env(c, None)

    def kv2_config(self, c, m):
        cfg = m["kv2cfg"]
        if c["op"] == "read":
            d = {"cas_required": bool(cfg["cas_required"]),
                 "delete_version_after": go_duration(cfg["delete_version_after"]),
                 "max_versions": cfg["max_versions"]}
            if self.server.state.flavor == "openbao":
                d["metadata_cas_required"] = False
            return 200, self.env(c, d)
        if c["op"] in ("create", "update"):
            d = c["data"]
            try:
                if "max_versions" in d:
                    cfg["max_versions"] = int(d["max_versions"])
                if "cas_required" in d:
                    cfg["cas_required"] = to_bool(d["cas_required"])
                if "delete_version_after" in d:
                    cfg["delete_version_after"] = parse_duration(d["delete_version_after"])
            except (TypeError, ValueError) as e:
                raise err400(str(e))
            return 204, None
        raise unsupported_op()

    def kv2_data(self, c, m, key, head):
        st = self.server.state
        op = c["op"]
        meta = m["kv2"].get(key)
        if op == "read":
            try:
                v = int(c["data"].get("version", 0) or 0)
            except (TypeError, ValueError):
                raise err400("error parsing version")
            if meta is None:
                return 404, {"errors": []}
            if v == 0:
                v = meta["current_version"]
            if v not in meta["versions"]:
                return 404, {"errors": []}
            ent = meta["versions"][v]
            vm = kv2_vmeta(st, meta, v)
            if ent["destroyed"] or kv2_deleted(st, ent):
                return 404, self.env(c, {"data": None, "metadata": vm})
            return 200, self.env(c, {"data": ent["data"], "metadata": vm})
        if op in ("create", "update", "patch"):
            d = c["data"]
            opts = d.get("options") or {}
            if not isinstance(opts, dict):
                raise err400("error parsing options")
            cas = None
            if "cas" in opts:
                cv = opts["cas"]
                if isinstance(cv, bool) or not (isinstance(cv, int) or (isinstance(cv, str) and cv.isdigit()) or (isinstance(cv, float) and cv.is_integer())):
                    raise err400("error parsing check-and-set parameter")
                cas = int(cv)
            if "data" not in d or d["data"] is None:
                raise err400("no data provided")
            if not isinstance(d["data"], dict):
                raise err400("no data provided")
            newdata = d["data"]
            if op == "patch":
                ct = (c["req"].headers.get("Content-Type") or "").lower()
                if not ct.startswith("application/merge-patch+json"):
                    raise VaultError(415, ["PATCH requires Content-Type of application/merge-patch+json, got \"%s\"" % ct])
                if meta is None or meta["current_version"] not in meta["versions"]:
                    return 404, {"errors": []}
                cur = meta["versions"][meta["current_version"]]
                if cur["destroyed"] or kv2_deleted(st, cur):
                    return 404, {"errors": []}
                merged = json.loads(json.dumps(cur["data"]))
                merge_patch(merged, newdata)
                newdata = merged
            v = kv2_put(st, m, key, newdata, cas)
            return 200, self.env(c, kv2_vmeta(st, m["kv2"][key], v))
        if op == "delete":
            if meta and meta["current_version"] in meta["versions"]:
                ent = meta["versions"][meta["current_version"]]
                if not ent["destroyed"] and not kv2_deleted(st, ent):
                    ent["deletion_time"] = st.now()
            return 204, None
        raise unsupported_op()

    def kv2_metadata(self, c, m, key, head):
        st = self.server.state
        op = c["op"]
        meta = m["kv2"].get(key)
        if op == "list":
            keys = list_children(m["kv2"].keys(), key)
            if not keys:
                return 404, {"errors": []}
            return 200, self.env(c, {"keys": keys})
        if op == "read":
            if meta is None:
                return 404, {"errors": []}
            vers = {str(v): kv2_vmeta(st, meta, v, with_version=False) for v in sorted(meta["versions"])}
            for v in vers.values():
                v.pop("custom_metadata")
            return 200, self.env(c, {
                "cas_required": meta["cas_required"], "created_time": rfc3339(meta["created_time"]),
                "current_version": meta["current_version"], "custom_metadata": meta["custom_metadata"],
                "delete_version_after": go_duration(meta["delete_version_after"]),
                "max_versions": meta["max_versions"], "oldest_version": meta["oldest_version"],
                "updated_time": rfc3339(meta["updated_time"]), "versions": vers,
                **({"current_metadata_version": meta.get("metadata_version", 0),
                    "metadata_cas_required": False} if st.flavor == "openbao" else {})})
        if op in ("create", "update", "patch"):
            d = c["data"]
            if meta is None:
                meta = kv2_new_meta(st.now())
            try:
                if "max_versions" in d:
                    meta["max_versions"] = int(d["max_versions"])
                if "cas_required" in d:
                    meta["cas_required"] = to_bool(d["cas_required"])
                if "delete_version_after" in d:
                    meta["delete_version_after"] = parse_duration(d["delete_version_after"])
            except (TypeError, ValueError) as e:
                raise err400(str(e))
            if "custom_metadata" in d:
                cm = d["custom_metadata"]
                if cm is not None and (not isinstance(cm, dict) or not all(isinstance(x, str) for x in cm.values())):
                    raise err400("custom_metadata values must be strings")
                if op == "patch" and cm is not None:
                    cur = dict(meta["custom_metadata"] or {})
                    cur.update(cm)
                    cm = cur
                meta["custom_metadata"] = cm or None
            meta["updated_time"] = st.now()
            meta["metadata_version"] = meta.get("metadata_version", 0) + 1
            m["kv2"][key] = meta
            return 204, None
        if op == "delete":
            m["kv2"].pop(key, None)
            return 204, None
        raise unsupported_op()

    def kv2_versions_op(self, c, m, key, head):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        vs = c["data"].get("versions")
        if isinstance(vs, (int, str)):
            vs = [vs]
        try:
            vs = [int(x) for x in (vs or [])]
        except (TypeError, ValueError):
            raise err400("error parsing versions")
        if not vs:
            raise err400("no version number provided" if st.flavor != "openbao" else "No version number provided")
        meta = m["kv2"].get(key)
        if meta is None:
            return 204, None
        for v in vs:
            ent = meta["versions"].get(v)
            if ent is None:
                continue
            if head == "delete":
                if not ent["destroyed"] and not kv2_deleted(st, ent):
                    ent["deletion_time"] = st.now()
            elif head == "undelete":
                if not ent["destroyed"]:
                    ent["deletion_time"] = None
            else:
                ent["destroyed"] = True
                ent["data"] = None
        return 204, None

    def kv2_subkeys(self, c, m, key, head):
        st = self.server.state
        if c["op"] != "read":
            raise unsupported_op()
        meta = m["kv2"].get(key)
        if meta is None or meta["current_version"] not in meta["versions"]:
            return 404, {"errors": []}
        ent = meta["versions"][meta["current_version"]]
        vm = kv2_vmeta(st, meta, meta["current_version"])
        if ent["destroyed"] or kv2_deleted(st, ent):
            return 404, self.env(c, {"subkeys": None, "metadata": vm})

        def sk(d):
            return {k: (sk(v) if isinstance(v, dict) else None) for k, v in d.items()}
        return 200, self.env(c, {"subkeys": sk(ent["data"]), "metadata": vm})

    # ---- sys
    def mount_info(self, m, ui=False):
        out = {"accessor": m["accessor"], "config": dict(m["config"]), "description": m["description"],
               "external_entropy_access": False, "local": m["local"], "options": m["options"]}
        if m["type"] == "token" or m["type"] == "kubernetes":
            out["config"]["token_type"] = "default-service"
        if self.server.state.flavor == "openbao":
            out["plugin_version"] = ""
            out["running_plugin_version"] = "v%s+builtin.bao" % OPENBAO_VERSION
            out["running_sha256"] = ""
            if m["type"] not in ("system", "cubbyhole", "identity", "token"):
                out["deprecation_status"] = "supported"
            if ui:
                out["path"] = m["path"]
        elif not ui:
            out["plugin_version"] = ""
            out["running_plugin_version"] = "v%s+builtin.vault" % VERSION if m["type"] in ("system", "cubbyhole", "identity", "token") else "v0.0.0+builtin"
            out["running_sha256"] = ""
        else:
            out["path"] = m["path"]
        out["seal_wrap"] = m["seal_wrap"]
        out["type"] = m["type"]
        out["uuid"] = m["uuid"]
        return out

    def route_sys(self, ctx):
        st = self.server.state
        rel, ns = ctx["rel"], ctx["ns"]
        parts = rel.split("/")
        op = ctx["op"]
        root_ns = ns == ""
        R = lambda fn, **kw: dict(fn=fn, **kw)

        if rel.startswith("sys/internal/ui/mounts"):
            sub = rel[len("sys/internal/ui/mounts"):].strip("/")
            return R(lambda c: self.sys_ui_mounts(c, sub), unauth=True)
        if rel.rstrip("/") in ("sys/mounts", "sys/auth") or rel.startswith("sys/mounts/") or rel.startswith("sys/auth/"):
            kind = parts[1]
            sub = "/".join(parts[2:]).strip("/")
            if kind == "auth" and not root_ns:
                return R(self.no_route(ctx))
            tune = False
            if sub.endswith("/tune") or sub == "tune":
                tune, sub = True, sub[:-len("tune")].rstrip("/")
            return R(lambda c: self.sys_mounts(c, kind, sub, tune), sudo=(kind == "auth" and bool(sub)))
        if rel.startswith("sys/policies/acl") or rel.rstrip("/") in ("sys/policy",) or rel.startswith("sys/policy/"):
            if not root_ns:
                return R(self.no_route(ctx))
            legacy = rel.startswith("sys/policy")
            name = (rel[len("sys/policy"):] if legacy else rel[len("sys/policies/acl"):]).strip("/")
            return R(lambda c: self.sys_policy(c, name, legacy),
                     exists=(lambda: name in st.policies) if name else None)
        if rel.rstrip("/") == "sys/wrapping/unwrap":
            return R(self.sys_unwrap, unauth=True)
        if rel.rstrip("/") in ("sys/capabilities-self", "sys/capabilities"):
            return R(lambda c: self.sys_caps(c, rel.rstrip("/").endswith("self")))
        if rel == "sys/seal" and root_ns:
            return R(self.sys_seal_logical, sudo=True)
        if rel.startswith("sys/audit-hash/") and root_ns:
            return R(lambda c: (200, self.env(c, {"hash": st.audit_hash(str(c["data"].get("input", "")))}, top=True)))
        return R(_raise(unsupported_path))

    def sys_seal_logical(self, c):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        st.sealed = True
        st.unseal_progress = []
        return 204, None

    def sys_ui_mounts(self, c, sub):
        st = self.server.state
        tok = c["token"]
        ns = c["ns"]
        if c["op"] != "read":
            raise unsupported_op()
        if not sub:
            acl = st.acl_for(tok) if tok else None
            sec, auth = {}, {}
            for p, m in st.mounts[ns].items():
                if m["type"] == "system":
                    continue
                if (acl and acl.has_mount_access(st.acl_rel(tok, (ns + "/" if ns else "") + p))) or m["listing_visibility"] == "unauth":
                    sec[p] = self.mount_info(m, ui=True)
            if not ns:
                for p, m in st.auth_mounts.items():
                    if acl and acl.has_mount_access("auth/" + p):
                        auth[p] = self.mount_info(m, ui=True)
            return 200, self.env(c, {"auth": auth, "secret": sec})
        path = sub.rstrip("/") + "/"
        errmsg = "preflight capability check returned 403, please ensure client's policies grant access to path \"%s\"" % path
        denied = VaultError(403, [errmsg])
        if tok is None:
            raise denied
        if path.startswith("auth/"):
            m = None
            for p, am in st.auth_table(ns).items():
                if path.startswith("auth/" + p) and (m is None or len(p) > len(m["path"])):
                    m = am
            full_mount = m and (ns + "/" if ns else "") + "auth/" + m["path"]
        else:
            m = st.find_mount(ns, path)
            full_mount = m and ((ns + "/" if ns else "") + m["path"])
        if m is None or m["type"] == "identity":
            raise denied
        if not st.acl_for(tok).has_mount_access(st.acl_rel(tok, full_mount)):
            raise denied
        return 200, self.env(c, self.mount_info(m, ui=True))

    def sys_mounts(self, c, kind, sub, tune):
        st = self.server.state
        table = st.auth_mounts if kind == "auth" else st.mounts[c["ns"]]
        op = c["op"]
        if not sub:
            if op != "read":
                raise unsupported_op()
            return 200, self.env(c, {p: self.mount_info(m) for p, m in sorted(table.items())}, top=True)
        path = sub + "/"
        if tune:
            m = table.get(path)
            if m is None:
                raise err400("cannot fetch sysview for path \"%s\"" % path)
            if op == "read":
                cfg = m["config"]
                d = {"default_lease_ttl": cfg["default_lease_ttl"] or SYS_DEFAULT_TTL,
                     "max_lease_ttl": cfg["max_lease_ttl"] or SYS_MAX_TTL,
                     "force_no_cache": cfg["force_no_cache"], "description": m["description"]}
                if m["options"]:
                    d["options"] = m["options"]
                return 200, self.env(c, d, top=True)
            d = c["data"]
            try:
                for k in ("default_lease_ttl", "max_lease_ttl"):
                    if k in d:
                        m["config"][k] = parse_duration(d[k])
            except ValueError as e:
                raise err400(str(e))
            if "listing_visibility" in d:
                m["listing_visibility"] = d["listing_visibility"]
            if "description" in d:
                m["description"] = d["description"]
            if isinstance(d.get("options"), dict) and m["type"] == "kv" and "version" in d["options"]:
                if str(d["options"]["version"]) == "1" and kv_version(m) == 2:
                    raise err400("cannot downgrade mount from versioned to non-versioned")
                m["options"] = {"version": str(d["options"]["version"])}
            return 204, None
        if op == "read":
            m = table.get(path)
            if m is None:
                raise err400("No secret engine mount at %s" % path if kind == "mounts" else "No auth engine at %s" % path)
            return 200, self.env(c, self.mount_info(m), top=True)
        if op in ("create", "update"):
            d = c["data"]
            mtype = d.get("type", "")
            if not mtype:
                raise err400("backend type must be specified as a string")
            opts = d.get("options")
            if opts is not None and not isinstance(opts, dict):
                raise err400("error parsing options")
            if kind == "mounts":
                if mtype in ("kv-v1", "kv-v2"):
                    opts = dict(opts or {}, version=mtype[-1])
                    mtype = "kv"
                if mtype not in ("kv", "cubbyhole"):
                    raise err400("plugin not found in the catalog: %s" % mtype)
                if mtype == "kv":
                    given = opts is not None and "version" in opts
                    opts = {"version": str((opts or {}).get("version", "1"))}
                    if opts["version"] not in ("1", "2"):
                        raise err400("invalid version %s" % opts["version"])
                    if st.flavor == "openbao" and not given:
                        opts = {}  # stored as sent: a KV v1 mount whose options say nothing
            if kind == "auth" and st.flavor == "openbao" and mtype not in OPENBAO_AUTH_PLUGINS:
                raise err400("plugin not found in the catalog: %s" % mtype)
            for p in table:
                if path.startswith(p) or p.startswith(path):
                    raise err400("path is already in use at %s" % p)
            if kind == "mounts" and (path.startswith("sys/") or path.startswith("auth/")):
                raise err400("cannot mount under a protected path: %s" % path)
            try:
                ent = new_mount(path, mtype, opts if kind == "mounts" else None, d.get("description", ""),
                                d.get("config") if isinstance(d.get("config"), dict) else None)
            except ValueError as e:
                raise err400(str(e))
            table[path] = ent
            return 204, None
        if op == "delete":
            if path in ("sys/", "cubbyhole/", "identity/", "token/"):
                raise err400("cannot unmount \"%s\"" % path)
            if path not in table:
                return 204, None
            del table[path]
            if kind == "auth":
                for t in [t for t in st.tokens.values() if t.path.startswith("auth/" + path)]:
                    st.drop_token(t)
            return 204, None
        raise unsupported_op()

    def sys_policy(self, c, name, legacy):
        st = self.server.state
        op = c["op"]
        if not name:
            if legacy and op == "read":
                names = sorted(st.policies) + ["root"]
                return 200, self.env(c, {"keys": sorted(names), "policies": sorted(names)}, top=True)
            if op == "list":
                return 200, self.env(c, {"keys": sorted(list(st.policies) + ["root"])}, top=legacy)
            raise unsupported_op()
        name = name.lower()
        if op == "read":
            if name == "root":
                text = ""
            elif name not in st.policies:
                if legacy:
                    return 404, {"errors": []}
                return 404, {"errors": []}
            else:
                text = st.policies[name]
            if legacy:
                return 200, self.env(c, {"name": name, "rules": text}, top=True)
            pm = st.policy_meta.get(name, {"version": 1, "modified": st.now()})
            d = {"name": name, "policy": text}
            if st.flavor == "openbao":
                d.update({"modified": rfc3339(pm["modified"]), "version": pm["version"], "cas_required": False})
            return 200, self.env(c, d)
        if op in ("create", "update"):
            text = c["data"].get("policy", c["data"].get("rules"))
            if name == "root":
                raise err400('cannot update "root" policy')
            if not isinstance(text, str) or text == "":
                raise err400("'policy' parameter not supplied or empty")
            try:
                parse_policy(text)
            except ValueError as e:
                raise err400("failed to parse policy: %s" % e)
            st.policies[name] = text
            pm = st.policy_meta.get(name)
            st.policy_meta[name] = {"version": (pm["version"] + 1) if pm else 1, "modified": st.now()}
            return 204, None
        if op == "delete":
            if name == "default" and st.flavor == "openbao":
                raise err400("cannot delete default policy")
            if name in ("root", "default"):
                raise err400('cannot delete "%s" policy' % name)
            st.policies.pop(name, None)
            st.policy_meta.pop(name, None)
            return 204, None
        raise unsupported_op()

    def sys_caps(self, c, selfish):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        d = c["data"]
        paths = str_list(d.get("paths", d.get("path")))
        if not paths:
            raise err400("paths must be supplied")
        tok = c["token"]
        if not selfish:
            t = st.valid_token(d.get("token", ""))
            if t is None:
                raise err400("invalid token")
            tok = t
        acl = st.acl_for(tok)
        out = {}
        for p in paths:
            caps = acl.caps(p.lstrip("/"))
            out[p] = ["root"] if acl.root else (sorted(caps) if caps and "deny" not in caps else ["deny"])
        if len(paths) == 1:
            out["capabilities"] = out[paths[0]]
        return 200, self.env(c, out, top=True)

    # ---- token store
    def route_token(self, ctx, sub):
        st = self.server.state
        sub = sub.strip("/")
        fns = {"lookup-self": self.tok_lookup_self, "renew-self": self.tok_renew_self,
               "revoke-self": self.tok_revoke_self, "create": self.tok_create,
               "create-orphan": self.tok_create, "lookup": self.tok_lookup,
               "lookup-accessor": self.tok_lookup, "revoke": self.tok_revoke,
               "revoke-accessor": self.tok_revoke, "renew": self.tok_renew}
        if sub.startswith("create/"):
            role = sub[len("create/"):]
            return {"fn": lambda c: self.tok_create_role(c, role)}
        if sub.startswith("roles/") or sub == "roles":
            name = sub[len("roles/"):] if sub.startswith("roles/") else ""
            return {"fn": lambda c: self.tok_role(c, name),
                    "exists": (lambda: name in st.token_roles) if name else None}
        fn = fns.get(sub)
        if fn is None:
            return {"fn": _raise(unsupported_path)}
        return {"fn": lambda c: fn(c, sub), "sudo": sub in ("create-orphan",)}

    def lookup_data(self, t):
        st = self.server.state
        now = st.now()
        d = {"accessor": t.accessor, "creation_time": int(t.creation_time),
             "creation_ttl": t.ttl, "display_name": t.display_name, "entity_id": t.entity_id,
             "expire_time": rfc3339(t.expire_at) if t.expire_at else None,
             "explicit_max_ttl": t.explicit_max_ttl, "id": t.id}
        d["issue_time"] = rfc3339(t.issue_time)
        if t.last_renewal is not None:
            d["last_renewal"] = rfc3339(t.last_renewal)
            d["last_renewal_time"] = int(t.last_renewal)
        d.update({"meta": t.meta or None, "num_uses": 0, "orphan": t.orphan, "path": t.path,
                  "policies": list(t.policies), "renewable": t.renewable,
                  "ttl": t.remaining(now), "type": "service"})
        if t.period:
            d["period"] = t.period
        return d

    def tok_lookup_self(self, c, sub):
        if c["op"] not in ("read", "create", "update"):
            raise unsupported_op()
        return 200, self.env(c, self.lookup_data(c["token"]))

    def _target(self, c, sub):
        st = self.server.state
        d = c["data"]
        if sub.endswith("accessor"):
            acc = d.get("accessor", "")
            t = st.accessors.get(acc)
            if t is None or st.valid_token(t.id) is None:
                raise err400("invalid accessor")
            return t
        t = st.valid_token(d.get("token", "")) if d.get("token") else None
        if t is None:
            raise err400("bad token")
        return t

    def tok_lookup(self, c, sub):
        if c["op"] not in ("create", "update", "read"):
            raise unsupported_op()
        t = self._target(c, sub)
        d = self.lookup_data(t)
        if sub.endswith("accessor"):
            d["id"] = ""
        return 200, self.env(c, d)

    def tok_revoke(self, c, sub):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        st.drop_token(self._target(c, sub))
        return 204, None

    def tok_revoke_self(self, c, sub):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        st.drop_token(c["token"])
        return 204, None

    def do_renew(self, c, t):
        st = self.server.state
        now = st.now()
        try:
            inc = parse_duration(c["data"].get("increment", 0))
        except ValueError:
            raise err400("invalid increment")
        if t.ttl == 0 and t.expire_at is None:
            raise err400("invalid lease ID")
        if not t.renewable:
            raise err400("lease is not renewable")
        backend_ttl, backend_max, period = t.ttl, t.max_ttl, t.period
        if t.role:
            am = st.auth_table(t.ns).get(t.role[0])
            role = am and am["roles"].get(t.role[1])
            if role is None:
                raise err400("role %s does not exist during renewal" % t.role[1])
            backend_ttl, backend_max, period = role["token_ttl"], role["token_max_ttl"], role["token_period"]
        warnings = []
        max_ttl = SYS_MAX_TTL
        if backend_max and backend_max < max_ttl:
            max_ttl = backend_max
        if t.explicit_max_ttl and t.explicit_max_ttl < max_ttl:
            max_ttl = t.explicit_max_ttl
        if period:
            ttl = period
            if t.explicit_max_ttl:
                left = t.issue_time + t.explicit_max_ttl - now
                if left < ttl:
                    ttl = left
        else:
            ttl = inc if inc > 0 else (backend_ttl if backend_ttl > 0 else SYS_DEFAULT_TTL)
            left = t.issue_time + max_ttl - now
            if left <= 0:
                raise err400("past the max TTL, cannot renew")
            if left - ttl < 0:
                warnings.append('TTL of "%s" exceeded the effective max_ttl of "%s"; TTL value is capped accordingly'
                                % (human_duration(ttl), human_duration(round(left, 6))))
                ttl = left
        ttl = int(ttl)
        if ttl <= 0:
            raise err400("past the max TTL, cannot renew")
        t.expire_at = now + ttl
        t.last_renewal = now
        c["warnings"] = warnings or None
        return 200, self.env(c, None, auth=t.auth_block(now, lease=ttl))

    def tok_renew_self(self, c, sub):
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        return self.do_renew(c, c["token"])

    def tok_renew(self, c, sub):
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        return self.do_renew(c, self._target(c, sub))

    def tok_role(self, c, name):
        st = self.server.state
        op = c["op"]
        if not name:
            if op != "list":
                raise unsupported_op()
            return 200, self.env(c, {"keys": sorted(st.token_roles)})
        if op == "read":
            r = st.token_roles.get(name)
            if r is None:
                return 404, {"errors": []}
            return 200, self.env(c, dict(r, name=name))
        if op in ("create", "update"):
            d = c["data"]
            st.token_roles[name] = {
                "orphan": to_bool(d.get("orphan"), False),
                "allowed_policies": str_list(d.get("allowed_policies")),
                "allowed_policies_glob": str_list(d.get("allowed_policies_glob")),
                "token_explicit_max_ttl": parse_duration(d.get("token_explicit_max_ttl", 0)),
                "renewable": to_bool(d.get("renewable"), True)}
            return 204, None
        if op == "delete":
            st.token_roles.pop(name, None)
            return 204, None
        raise unsupported_op()

    def tok_create_role(self, c, name):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        role = st.token_roles.get(name)
        if role is None:
            raise err400("unknown role %s" % name)
        d = c["data"]
        pols = [p for p in sanitize_policies(str_list(d.get("policies")), add_default=False)]
        for p in pols:
            if p in role["allowed_policies"]:
                continue
            if any(glob_match(g, p) for g in role["allowed_policies_glob"]):
                continue
            raise err400("token policies (%s) must be subset of the role's allowed policies" % p)
        pols = sanitize_policies(pols, add_default=True)
        try:
            ttl = parse_duration(d.get("ttl", 0)) or SYS_DEFAULT_TTL
        except ValueError as e:
            raise err400(str(e))
        emax = role["token_explicit_max_ttl"]
        if emax and ttl > emax:
            ttl = emax
        parent = c["token"]
        orphan = role["orphan"]
        meta = d.get("meta") or None
        dn = "token" + ("-" + d["display_name"] if d.get("display_name") else "")
        t = Token(id=new_token_id(st), policies=pols, now=st.now(), display_name=dn,
                  path="auth/token/create/" + name, ttl=ttl, explicit_max_ttl=emax,
                  renewable=role["renewable"], orphan=orphan,
                  parent=None if orphan else parent.accessor, meta=meta)
        st.add_token(t)
        return 200, self.env(c, None, auth=t.auth_block(st.now()))

    def tok_create(self, c, sub):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        parent = c["token"]
        d = c["data"]
        is_root = "root" in parent.policies
        req_pols = str_list(d.get("policies"))
        no_default = to_bool(d.get("no_default_policy"))
        if req_pols:
            pols = sanitize_policies(req_pols, add_default=not no_default)
            if not is_root:
                for p in pols:
                    if p != "default" and p not in parent.policies:
                        raise err400("child policies must be subset of parent")
        else:
            pols = [p for p in parent.policies if not (no_default and p == "default")]
        try:
            ttl = parse_duration(d.get("ttl", 0))
            emax = parse_duration(d.get("explicit_max_ttl", 0))
            period = parse_duration(d.get("period", 0))
        except ValueError as e:
            raise err400(str(e))
        if period and not is_root:
            raise err400("root or sudo privileges required to create periodic token")
        if "root" in pols:
            ttl = ttl or 0
        else:
            ttl = ttl or period or SYS_DEFAULT_TTL
            if emax and ttl > emax:
                ttl = emax
        orphan = sub == "create-orphan" or (to_bool(d.get("no_parent")) and is_root)
        meta = d.get("meta") or None
        if meta is not None and (not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())):
            raise err400("meta must be a map of strings")
        dn = "token" + ("-" + d["display_name"] if d.get("display_name") else "")
        tid = d.get("id") if (is_root and d.get("id")) else new_token_id(st)
        if tid in st.tokens:
            raise err400("cannot create a token with a duplicate ID")
        t = Token(id=tid, policies=pols, now=st.now(), display_name=dn, path="auth/token/" + sub,
                  ttl=ttl, explicit_max_ttl=emax, period=period,
                  renewable=to_bool(d.get("renewable"), True) and ttl != 0, orphan=orphan,
                  parent=None if orphan else parent.accessor, meta=meta)
        st.add_token(t)
        warns = ['Policy "%s" does not exist' % p for p in pols if p not in st.policies and p != "root"]
        c["warnings"] = warns or None
        return 200, self.env(c, None, auth=t.auth_block(st.now()))

    # ---- kubernetes auth
    def route_k8s(self, ctx, m, sub):
        sub = sub.strip("/")
        if sub == "login":
            return {"fn": lambda c: self.k8s_login(c, m), "unauth": True}
        if sub == "config":
            return {"fn": lambda c: self.k8s_config(c, m)}
        if sub == "role" or sub.startswith("role/"):
            name = sub[5:]
            return {"fn": lambda c: self.k8s_role(c, m, name), "exists": lambda: name in m["roles"]}
        return {"fn": _raise(unsupported_path)}

    def k8s_config(self, c, m):
        op = c["op"]
        if op == "read":
            cfg = m["k8s_config"]
            return 200, self.env(c, {"kubernetes_host": cfg.get("kubernetes_host", ""),
                                     "kubernetes_ca_cert": cfg.get("kubernetes_ca_cert", ""),
                                     "pem_keys": str_list(cfg.get("pem_keys")) if False else cfg.get("pem_keys", []),
                                     "issuer": cfg.get("issuer", ""),
                                     "disable_iss_validation": cfg.get("disable_iss_validation", True),
                                     "disable_local_ca_jwt": cfg.get("disable_local_ca_jwt", False)})
        if op in ("create", "update"):
            d = c["data"]
            if not d.get("kubernetes_host"):
                raise err400("no host provided")
            if any(not pem_has_key(k) for k in str_list(d.get("pem_keys"))):
                raise err400("data does not contain any valid public keys")
            m["k8s_config"] = {k: v for k, v in d.items()}
            return 204, None
        raise unsupported_op()

    def k8s_role(self, c, m, name):
        op = c["op"]
        if op == "list":
            if not m["roles"]:
                return 404, {"errors": []}
            return 200, self.env(c, {"keys": sorted(m["roles"])})
        if not name:
            raise unsupported_path()
        if op == "read":
            r = m["roles"].get(name)
            if r is None:
                return 404, {"errors": []}
            d = {"alias_name_source": r["alias_name_source"],
                 "bound_service_account_names": r["bound_service_account_names"],
                 "bound_service_account_namespace_selector": r.get("bound_service_account_namespace_selector", ""),
                 "bound_service_account_namespaces": r["bound_service_account_namespaces"],
                 "token_bound_cidrs": r["token_bound_cidrs"],
                 "token_explicit_max_ttl": r["token_explicit_max_ttl"], "token_max_ttl": r["token_max_ttl"],
                 "token_no_default_policy": r["token_no_default_policy"],
                 "token_num_uses": r["token_num_uses"], "token_period": r["token_period"],
                 "token_policies": r["token_policies"], "token_strictly_bind_ip": False,
                 "token_ttl": r["token_ttl"], "token_type": r["token_type"]}
            if r["audience"]:
                d["audience"] = r["audience"]
            for old, new in (("policies", "token_policies"), ("ttl", "token_ttl"), ("max_ttl", "token_max_ttl"),
                             ("period", "token_period")):
                if old in r.get("deprecated_set", ()) and d[new]:
                    d[old] = d[new]
            return 200, self.env(c, d)
        if op in ("create", "update"):
            d = dict(c["data"])
            if op == "update" and name in m["roles"]:
                cur = m["roles"][name]
                merged = dict(cur)
                merged.update(d)
                d = merged
            m["roles"][name] = normalize_role(d)
            return 204, None
        if op == "delete":
            m["roles"].pop(name, None)
            return 204, None
        raise unsupported_op()

    def k8s_login(self, c, m):
        st = self.server.state
        if c["op"] not in ("create", "update"):
            raise unsupported_op()
        d = c["data"]
        try:
            ok = self._k8s_login(c, m, d)
            st.stats["logins"]["ok"] += 1
            return ok
        except VaultError:
            st.stats["logins"]["failed"] += 1
            raise

    def _k8s_login(self, c, m, d):
        st = self.server.state
        role_name, jwt = d.get("role") or "", d.get("jwt") or ""
        if not role_name:
            raise err400("missing role")
        if not jwt:
            raise err400("missing jwt")
        role = m["roles"].get(role_name)
        if role is None:
            raise err400('invalid role name "%s"' % role_name)
        parts = jwt.split(".") if isinstance(jwt, str) else []
        if len(parts) != 3:
            raise VaultError(403, ["go-jose/go-jose: compact JWS format must have three parts"])
        try:
            header = json.loads(b64url_dec(parts[0]))
            claims = json.loads(b64url_dec(parts[1]))
            if not isinstance(claims, dict) or not isinstance(header, dict):
                raise ValueError
        except (ValueError, binascii.Error):
            raise VaultError(403, ["go-jose/go-jose: illegal base64 data at input byte 0"])
        kio = claims.get("kubernetes.io") or {}
        sa = (kio.get("serviceaccount") or {}) if isinstance(kio, dict) else {}
        sa_name = sa.get("name") or claims.get("kubernetes.io/serviceaccount/service-account.name", "")
        sa_uid = sa.get("uid") or claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
        sa_ns = (kio.get("namespace") if isinstance(kio, dict) else None) or claims.get("kubernetes.io/serviceaccount/namespace", "")
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else (aud or [])
        if role["audience"] and role["audience"] not in aud:
            raise VaultError(403, ["invalid audience (aud) claim: audience claim does not match any expected audience"])
        if not any(glob_match(p, sa_name) for p in role["bound_service_account_names"]):
            raise VaultError(403, ["service account name not authorized"])
        if not any(glob_match(p, sa_ns) for p in role["bound_service_account_namespaces"]):
            raise VaultError(403, ["namespace not authorized"])
        # TokenReview stand-in: the "apiserver" checks signature, expiry, revocation, audiences.
        if not self.token_review(jwt, header, claims, [role["audience"]] if role["audience"] else aud):
            raise VaultError(403, ["permission denied"])
        if claims.get("sub") != "system:serviceaccount:%s:%s" % (sa_ns, sa_name):
            raise VaultError(403, ["permission denied"])
        now = st.now()
        pols = sanitize_policies(role["token_policies"], add_default=not role["token_no_default_policy"])
        ttl = role["token_ttl"] or role["token_period"] or SYS_DEFAULT_TTL
        max_ttl = role["token_max_ttl"] or SYS_MAX_TTL
        if role["token_explicit_max_ttl"]:
            max_ttl = min(max_ttl, role["token_explicit_max_ttl"])
        ttl = min(ttl, max_ttl)
        meta = {"role": role_name, "service_account_name": sa_name,
                "service_account_namespace": sa_ns,
                "service_account_secret_name": claims.get("kubernetes.io/serviceaccount/secret.name", ""),
                "service_account_uid": sa_uid}
        t = Token(id=new_token_id(st), policies=pols, now=now, meta=meta,
                  display_name="%s-%s-%s" % (m["path"].rstrip("/"), sa_ns, sa_name),
                  path="auth/%slogin" % m["path"], ttl=ttl, max_ttl=max_ttl,
                  explicit_max_ttl=role["token_explicit_max_ttl"], period=role["token_period"],
                  renewable=True, orphan=True, entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "entity:" + sa_uid)),
                  role=(m["path"], role_name), ns=c["ns"])
        t.pending_412 = int(st.ha.get("index_412") or 0)
        t.pending_mount_403 = int(st.ha.get("mount_403") or 0)
        st.add_token(t)
        return 200, self.env(c, None, auth=t.auth_block(now))

    def token_review(self, jwt, header, claims, audiences):
        st = self.server.state
        if st.review_fail_all:
            return False
        if header.get("alg") != "HS256":
            return False
        signing_input = (jwt.rsplit(".", 1)[0]).encode()
        want = hmac.new(st.cluster_key.encode(), signing_input, hashlib.sha256).digest()
        try:
            got = b64url_dec(jwt.rsplit(".", 1)[1])
        except (binascii.Error, ValueError):
            return False
        if not hmac.compare_digest(want, got):
            return False
        now = st.now()
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or now > exp + JWT_LEEWAY):
            return False
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf - JWT_LEEWAY):
            return False
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else (aud or [])
        if audiences and not set(audiences) & set(aud):
            return False
        kio = claims.get("kubernetes.io") or {}
        sa = kio.get("serviceaccount") or {}
        for rule in st.review_deny:
            if rule.get("sub") and re.fullmatch(rule["sub"], claims.get("sub", "")):
                return False
            if rule.get("uid") and rule["uid"] == sa.get("uid"):
                return False
            if rule.get("jti") and rule["jti"] == claims.get("jti"):
                return False
        return True

    # ---- audit
    def audit(self, kind, ctx, resp, err):
        st = self.server.state
        if kind == "request":
            ctx["_audited"] = True
        if st.audit_file is None:
            return
        H = st.audit_hash

        def hv(v):
            if isinstance(v, str):
                return H(v)
            if isinstance(v, list):
                return [hv(x) for x in v]
            if isinstance(v, dict):
                return {k: hv(x) for k, x in v.items()}
            return v
        tok = ctx["token"]
        auth = {}
        if tok is not None:
            auth = {"client_token": H(tok.id), "accessor": H(tok.accessor),
                    "display_name": tok.display_name, "policies": list(tok.policies),
                    "token_policies": list(tok.policies), "metadata": tok.meta,
                    "entity_id": tok.entity_id, "token_type": "service",
                    "token_ttl": tok.ttl, "token_issue_time": rfc3339(tok.issue_time)}
        req = ctx["req"]
        token_str = req.headers.get("X-Vault-Token") or ""
        m = ctx.get("mount")
        rq = {"id": ctx["rid"], "operation": ctx["op"],
              "mount_point": ("auth/" + m["path"]) if m and m["type"] in ("token", "kubernetes") else (m["path"] if m else ""),
              "mount_type": ctx["mount_type"], "mount_accessor": m["accessor"] if m else "",
              "client_token": H(token_str) if token_str else "",
              "client_token_accessor": H(tok.accessor) if tok else "",
              "namespace": {"id": "root"} if not ctx["ns"] else {"id": ctx["ns"], "path": ctx["ns"] + "/"},
              "path": ctx["full"], "data": hv(ctx["data"]) if ctx["data"] else None,
              "remote_address": req.remote[0], "remote_port": req.remote[1]}
        if ctx["req"].headers.get("Authorization") and not token_str:
            rq["client_token"] = H(ctx["req"].headers["Authorization"][7:].strip())
        entry = {"time": rfc3339(time.time()), "type": kind, "auth": auth, "request": rq}
        if kind == "response":
            status, obj = resp
            r = {"mount_point": rq["mount_point"], "mount_type": rq["mount_type"],
                 "mount_accessor": rq["mount_accessor"], "status_code": status}
            if isinstance(obj, dict) and "errors" not in obj:
                if obj.get("auth"):
                    a = dict(obj["auth"])
                    a["client_token"] = H(a["client_token"])
                    a["accessor"] = H(a["accessor"])
                    r["auth"] = a
                if obj.get("data") is not None:
                    r["data"] = hv(obj["data"])
                if obj.get("warnings"):
                    r["warnings"] = obj["warnings"]
            entry["response"] = r
        if err is not None:
            entry["error"] = "; ".join(err.errors) if err.errors else "status %d" % err.status
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with st.audit_lock:
            st.audit_file.write(line)
            st.audit_file.flush()


def _raise(make):
    def fn(c):
        raise make()
    return fn


def merge_patch(target, patch):
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = v


# ---------------------------------------------------------------------------------------------
# control API (plain HTTP, 127.0.0.1 only)

class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-control"
    sys_version = ""
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("vault-standin control: %s\n" % (fmt % args))

    def reply(self, status, obj):
        body = b"" if obj is None else (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_any(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.close_connection = True
                return self.reply(413, {"error": "body too large"})
            raw = self.rfile.read(n) if n else b""
            data = json.loads(raw) if raw.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as e:
            return self.reply(400, {"error": "bad JSON: %s" % e})
        try:
            st = self.server.state
            with st.lock:
                status, obj = self.dispatch(st, urllib.parse.urlsplit(self.path).path.rstrip("/"), data)
        except (KeyError, ValueError, TypeError, VaultError) as e:
            status, obj = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            status, obj = 500, {"error": str(e)}
        self.reply(status, obj)

    do_GET = do_POST = do_PUT = do_DELETE = do_any

    def dispatch(self, st, path, d):
        M = self.command
        if path == "/_standin/fault" and M == "POST":
            f = dict(d)
            if "match" not in f and "regex" not in f:
                raise ValueError("fault needs match or regex")
            if "regex" in f:
                re.compile(f["regex"])
            if f.get("kind", "status") not in ("status", "delay", "drop", "reset", "sealed"):
                raise ValueError("unknown fault kind")
            f["count"] = int(f.get("count", 1))
            f["id"] = len(st.faults) + 1 + sum(1 for _ in st.faults)
            st.faults.append(f)
            return 200, {"id": f["id"], "faults": len(st.faults)}
        if path == "/_standin/fault" and M == "DELETE":
            st.faults.clear()
            return 200, {"faults": 0}
        if path == "/_standin/fault" and M == "GET":
            return 200, {"faults": st.faults}
        if path == "/_standin/clock" and M == "POST":
            st.clock_offset += float(d.get("advance_seconds", 0))
            return 200, {"now": st.now(), "offset": st.clock_offset}
        if path == "/_standin/clock" and M == "GET":
            return 200, {"now": st.now(), "offset": st.clock_offset}
        if path == "/_standin/seal" and M == "POST":
            st.sealed = True
            st.unseal_progress = []
            return 200, {"sealed": True}
        if path == "/_standin/unseal" and M == "POST":
            if not st.initialized:
                raise ValueError("not initialised")
            st.sealed = False
            st.unseal_progress = []
            return 200, {"sealed": False}
        if path == "/_standin/unseal-keys" and M == "GET":
            return 200, {"keys": [k.hex() for k in st.unseal_keys], "threshold": st.threshold}
        if path == "/_standin/health" and M == "POST":
            st.standby = bool(d.get("standby", False))
            st.perf_standby = bool(d.get("performance_standby", False))
            st.dr_secondary = bool(d.get("dr_secondary", False))
            return 200, {"standby": st.standby, "performance_standby": st.perf_standby,
                         "dr_secondary": st.dr_secondary}
        if path == "/_standin/tokenreview" and M == "POST":
            if d.get("reset"):
                st.review_deny, st.review_fail_all = [], False
            if "fail_all" in d:
                st.review_fail_all = bool(d["fail_all"])
            for k, field in (("deny_sub", "sub"), ("deny_uid", "uid"), ("deny_jti", "jti")):
                if d.get(k):
                    if field == "sub":
                        re.compile(d[k])
                    st.review_deny.append({field: d[k]})
            return 200, {"deny": st.review_deny, "fail_all": st.review_fail_all}
        if path == "/_standin/jwt" and M == "POST":
            return 200, {"jwt": mint_jwt(st, d)}
        if path == "/_standin/secret" and M == "POST":
            st.seed_secret(d)
            return 200, {"ok": True}
        if path == "/_standin/stats" and M == "GET":
            st.sweep_tokens()
            out = json.loads(json.dumps(st.stats))
            out["tokens_live"] = len(st.tokens)
            out["faults"] = len(st.faults)
            return 200, out
        if path == "/_standin/tokens" and M == "GET":
            st.sweep_tokens()
            now = st.now()
            return 200, {"tokens": [{"accessor": t.accessor, "ttl": t.remaining(now),
                                     "policies": t.policies, "path": t.path,
                                     "display_name": t.display_name, "renewable": t.renewable,
                                     "meta": t.meta} for t in st.tokens.values()]}
        if path == "/_standin/ha" and M == "POST":
            if d.get("reset"):
                st.ha = {"index_412": 0, "mount_403": 0, "redirect": None}
            for k in ("index_412", "mount_403"):
                if k in d:
                    st.ha[k] = int(d[k])
            if "redirect" in d:
                r = d["redirect"]
                if r is not None:
                    r = dict(r)
                    to = r.get("to", 1)
                    if isinstance(to, int) and not 0 <= to < len(st.listeners):
                        raise ValueError("no listener %d (POST /_standin/listener first)" % to)
                    r["count"] = int(r.get("count", 1))
                    r["on"] = [int(i) for i in r.get("on", [0])]
                st.ha["redirect"] = r
            return 200, st.ha
        if path == "/_standin/ha" and M == "GET":
            return 200, st.ha
        if path == "/_standin/listener" and M == "POST":
            srv = start_listener(st, ("127.0.0.1", 0))
            return 200, {"index": srv.index, "addr": st.listeners[srv.index]}
        if path == "/_standin/requests" and M == "GET":
            return 200, {"requests": list(st.request_log)}
        if path == "/_standin/requests" and M == "DELETE":
            st.request_log.clear()
            return 200, {"requests": []}
        if path == "/_standin/audit-hash" and M == "POST":
            return 200, {"hash": st.audit_hash(str(d["input"]))}
        return 404, {"error": "unknown control endpoint %s %s" % (M, path)}


def mint_jwt(st, d):
    now = int(st.now())
    ns = d["namespace"]
    sa = d["service_account"]
    aud = d.get("audience", "https://kubernetes.default.svc.cluster.local")
    aud = [aud] if isinstance(aud, str) else list(aud)
    uid = d.get("uid") or str(uuid.uuid5(uuid.NAMESPACE_URL, "sa:%s/%s" % (ns, sa)))
    iat = int(d.get("iat", now))
    ttl = int(d.get("ttl", 3600))
    claims = {"aud": aud, "exp": int(d.get("exp", iat + ttl)), "iat": iat,
              "iss": st.cluster_issuer,
              "kubernetes.io": {"namespace": ns,
                                "pod": {"name": d.get("pod", "%s-0" % sa),
                                        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "pod:%s/%s" % (ns, sa)))},
                                "serviceaccount": {"name": sa, "uid": uid}},
              "nbf": iat, "sub": "system:serviceaccount:%s:%s" % (ns, sa)}
    if d.get("jti"):
        claims["jti"] = d["jti"]
    header = {"alg": "HS256", "kid": "standin", "typ": "JWT"}
    si = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    key = st.cluster_key if not d.get("bad_signature") else st.cluster_key + "-wrong"
    sig = hmac.new(key.encode(), si.encode(), hashlib.sha256).digest()
    return si + "." + b64url(sig)


# ---------------------------------------------------------------------------------------------
# servers and main

def parse_listen(s):
    host, _, port = s.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def make_server(handler, addr, state, verbose, ctx=None):
    host, port = addr
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

        def get_request(self):
            sock, a = self.socket.accept()
            sock.settimeout(60)
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, a

        def handle_error(self, request, client_address):
            if verbose:
                traceback.print_exc(file=sys.stderr)

    srv = Server((host, port), handler)
    srv.state = state
    srv.verbose = verbose
    return srv


def start_listener(state, addr):
    """One more API listener on the same state (another "node" of the cluster)."""
    srv = make_server(Handler, addr, state, state.verbose, state.tls_ctx)
    srv.index = len(state.listeners)
    state.listeners.append(url_for("https" if state.tls_ctx else "http", srv))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def url_for(scheme, srv):
    host, port = srv.server_address[:2]
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d" % (scheme, host, port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="cloudtaser stand-in Vault/OpenBao server")
    ap.add_argument("--config")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--control-listen")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="request (optional) client certificates signed by this CA")
    ap.add_argument("--ready-file")
    ap.add_argument("--audit-log")
    ap.add_argument("--root-token-file", help="file holding the root token (overrides the config)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    cfg = {}
    if a.config:
        with open(a.config, encoding="utf-8") as f:
            cfg = json.load(f)
    if a.root_token_file:
        with open(a.root_token_file, encoding="utf-8") as f:
            cfg["root_token"] = f.read().strip()
    state = State(cfg, a.audit_log)
    ctx = None
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.tls_client_ca:
            ctx.load_verify_locations(a.tls_client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    state.tls_ctx, state.verbose = ctx, a.verbose
    srv = make_server(Handler, parse_listen(a.listen), state, a.verbose, ctx)
    srv.index = 0
    state.listeners.append(url_for("https" if ctx else "http", srv))
    threads = [threading.Thread(target=srv.serve_forever, daemon=True)]
    ready = {"addr": state.listeners[0], "pid": os.getpid()}
    if a.control_listen:
        csrv = make_server(ControlHandler, parse_listen(a.control_listen), state, a.verbose)
        threads.append(threading.Thread(target=csrv.serve_forever, daemon=True))
        ready["control_addr"] = url_for("http", csrv)
    for t in threads:
        t.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if a.ready_file:
        tmp = a.ready_file + ".tmp.%d" % os.getpid()
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(ready, f)
        os.rename(tmp, a.ready_file)
    else:
        print(json.dumps(ready), flush=True)
    while not stop.wait(3600):
        pass
    if state.audit_file:
        with state.audit_lock:
            state.audit_file.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
