#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Stand-in kube-apiserver for cloudtaser's tests (standard library only).

Behaviour follows tests/fixtures/CONTRACT.md Part B; see tests/standin/README-kube.md for the
configuration schema, the control API and the list of what is and is not modelled.
"""

import argparse
import base64
import binascii
import copy
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

MAX_BODY = 3 << 20  # the real apiserver's limit for a request body (3 MiB)
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
EVENT_LOG_MAX = 10000
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml", "application/strategic-merge-patch+json"]
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


# ---------------------------------------------------------------------------------------------
# resource table


# SHA-256 DigestInfo prefix of an RSASSA-PKCS1-v1_5 signature (RFC 8017 section 9.2)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class RS256Signer:
    """The service-account signing key: RSA 2048, RS256, as the real kube-apiserver's
    --service-account-signing-key-file (the real OpenBao refuses HS256 JWTs before any
    TokenReview). The key comes from the openssl CLI; signing is plain modular arithmetic."""

    def __init__(self):
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                             capture_output=True, check=True).stdout
        text = subprocess.run(["openssl", "pkey", "-noout", "-text"], input=key,
                              capture_output=True, check=True).stdout.decode()
        der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=key,
                             capture_output=True, check=True).stdout
        self.n = self._field(text, "modulus")
        self.d = self._field(text, "privateExponent")
        self.e = 65537
        self.size = (self.n.bit_length() + 7) // 8
        # kid as the real API server computes it: base64url(SHA-256(PKIX DER of the public key))
        self.kid = b64url(hashlib.sha256(der).digest())

    @staticmethod
    def _field(text, name):
        m = re.search(r"^%s:\s*\n((?:\s+[0-9a-f:]+\n)+)" % name, text, re.M)
        return int(re.sub(r"[^0-9a-f]", "", m.group(1)), 16)

    def _em(self, msg):
        t = SHA256_DIGEST_INFO + hashlib.sha256(msg).digest()
        return int.from_bytes(b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t, "big")

    def sign(self, msg):
        return pow(self._em(msg), self.d, self.n).to_bytes(self.size, "big")

    def verify(self, msg, sig):
        return len(sig) == self.size and pow(int.from_bytes(sig, "big"), self.e, self.n) == self._em(msg)

class Res:
    def __init__(self, group, version, plural, singular, kind, namespaced, short=(), verbs=None,
                 generation=False, categories=(), status=False, delete_returns_object=False,
                 create_on_update=False):
        self.group, self.version, self.plural, self.singular = group, version, plural, singular
        self.kind, self.namespaced, self.short = kind, namespaced, list(short)
        self.verbs = verbs or ALL_VERBS
        self.generation = generation
        self.categories = list(categories)
        self.status = status
        self.delete_returns_object = delete_returns_object
        self.create_on_update = create_on_update

    @property
    def gv(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):
        """schema.GroupResource.String(): `pods`, `deployments.apps`."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural


RESOURCES = [
    Res("", "v1", "namespaces", "namespace", "Namespace", False, ["ns"], status=True,
        delete_returns_object=True),
    Res("", "v1", "pods", "pod", "Pod", True, ["po"], categories=["all"], status=True,
        delete_returns_object=True, generation=True),  # 1.37: pods have metadata.generation
    Res("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ["sa"]),
    Res("", "v1", "secrets", "secret", "Secret", True),
    Res("", "v1", "configmaps", "configmap", "ConfigMap", True, ["cm"]),
    Res("", "v1", "events", "event", "Event", True, ["ev"]),
    Res("apps", "v1", "deployments", "deployment", "Deployment", True, ["deploy"],
        generation=True, categories=["all"], status=True),
    Res("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ["sts"],
        generation=True, categories=["all"], status=True),
    Res("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ["ds"], generation=True,
        categories=["all"], status=True),
    Res("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, create_on_update=True),
    Res("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", False, generation=True,
        categories=["api-extensions"]),
    Res("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", False,
        verbs=["create"]),
]
BY_GVR = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.gv, r.kind): r for r in RESOURCES}
GROUP_ORDER = []
for _r in RESOURCES:
    if _r.group and _r.group not in GROUP_ORDER:
        GROUP_ORDER.append(_r.group)

# strategic-merge-patch keys of the list fields in the built-in types we model
# (the patchMergeKey struct tags of k8s.io/api); other lists are replaced whole.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "env": "name", "ports": "containerPort", "imagePullSecrets": "name", "webhooks": "name",
    "ownerReferences": "uid", "conditions": "type", "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
    "schedulingGates": "name", "secrets": "name",
}
MERGE_PRIMITIVE_LISTS = {"finalizers"}


# ---------------------------------------------------------------------------------------------
# small helpers

def now_rfc3339(t=None):
    return datetime.datetime.fromtimestamp(t if t is not None else time.time(),
                                           datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_rfc3339(t=None):
    dt = datetime.datetime.fromtimestamp(t if t is not None else time.time(), datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rand_suffix(n=5):
    return "".join(secrets.choice(NAME_CHARS) for _ in range(n))


class KubeError(Exception):
    """A metav1.Status failure (CONTRACT B8)."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message}
        if self.reason:
            s["reason"] = self.reason
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def _details(res, name=None, kind=None):
    d = {}
    if name:
        d["name"] = name
    if res is not None and res.group:
        d["group"] = res.group
    d["kind"] = kind or (res.plural if res is not None else "")
    return d


def not_found(res, name):
    return KubeError(404, "NotFound", '%s "%s" not found' % (res.qualified, name), _details(res, name))


def already_exists(res, name):
    return KubeError(409, "AlreadyExists", '%s "%s" already exists' % (res.qualified, name),
                     _details(res, name))


def conflict(res, name):
    return KubeError(409, "Conflict",
                     'Operation cannot be fulfilled on %s "%s": the object has been modified; please '
                     'apply your changes to the latest version and try again' % (res.qualified, name),
                     _details(res, name))


def bad_request(msg):
    return KubeError(400, "BadRequest", msg)


def invalid(res, name, causes):
    """NewInvalid: details.kind is the Kind, causes from the field errors."""
    msgs = ["%s: %s" % (c["field"], c["message"]) for c in causes]
    if len(msgs) == 1:
        text = msgs[0]
    else:
        text = "[" + ", ".join(msgs) + "]"
    d = {"name": name or ""}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.kind
    d["causes"] = causes
    return KubeError(422, "Invalid", '%s "%s" is invalid: %s' % (res.kind, name or "", text), d)


def internal_error(msg):
    return KubeError(500, "InternalError", "Internal error occurred: %s" % msg,
                     {"causes": [{"message": msg}]})


def path_not_found():
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed():
    return KubeError(405, "MethodNotAllowed",
                     "the server does not allow this method on the requested resource", {})


def unsupported_media(types):
    return KubeError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: " + ", ".join(types))


DNS1123_SUB = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_causes(name, label=False):
    rx = DNS1123_LABEL if label else DNS1123_SUB
    if rx.match(name) and len(name) <= (63 if label else 253):
        return []
    if label:
        msg = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
               "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
               "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    else:
        msg = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
               "'-' or '.', and must start and end with an alphanumeric character (e.g. "
               "'example.com', regex used for validation is "
               "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return [{"reason": "FieldValueInvalid",
             "message": 'Invalid value: "%s": %s' % (name, msg), "field": "metadata.name"}]


# ---------------------------------------------------------------------------------------------
# label selectors

def parse_label_selector(s):
    """Query-string selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) -> requirements."""
    reqs = []
    if not s:
        return reqs
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        p = p.strip()
        if not p:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = re.fullmatch(r"([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)", p)
        if m:
            vals = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append((m.group(1), "In" if m.group(2) == "in" else "NotIn", vals))
            continue
        m = re.fullmatch(r"([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)", p)
        if m:
            reqs.append((m.group(1), "NotIn" if m.group(2) == "!=" else "In", [m.group(3)]))
            continue
        m = re.fullmatch(r"(!?)\s*([A-Za-z0-9._/-]+)", p)
        if m:
            reqs.append((m.group(2), "DoesNotExist" if m.group(1) else "Exists", []))
            continue
        raise bad_request("unable to parse requirement: %s" % p)
    return reqs


def selector_object_reqs(sel):
    """metav1.LabelSelector -> requirements; None selector matches nothing, {} everything."""
    reqs = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, "In", [v]))
    for e in sel.get("matchExpressions") or []:
        reqs.append((e.get("key"), e.get("operator"), list(e.get("values") or [])))
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        if op == "In":
            if key not in labels or labels[key] not in vals:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in vals:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            return False
    return True


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


def parse_field_selector(s):
    reqs = []
    for p in (s or "").split(","):
        p = p.strip()
        if not p:
            continue
        m = re.fullmatch(r"([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)", p)
        if not m:
            raise bad_request('invalid selector: \'%s\'; can\'t understand \'%s\'' % (s, p))
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    for path, eq, val in reqs:
        if (field_value(obj, path) == val) != eq:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# patches

class PatchError(Exception):
    pass


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError('invalid JSON pointer "%s"' % path)
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _container(doc, toks, op, path):
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise PatchError('%s operation does not apply: doc is missing path: "%s": missing value'
                             % (op, path))
    return cur


def json_patch(doc, ops):
    """RFC 6902 with gopkg.in/evanphx/json-patch.v4 semantics (as the apiserver uses them)."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for o in ops:
        if not isinstance(o, dict):
            raise PatchError("invalid operation")
        op = o.get("op")
        path = o.get("path")
        if not isinstance(path, str):
            raise PatchError("%s operation missing path" % op)
        if op in ("add", "replace", "test") and "value" not in o:
            raise PatchError("%s operation missing value" % op)
        if op in ("move", "copy"):
            src = o.get("from")
            if not isinstance(src, str):
                raise PatchError("%s operation missing from" % op)
            stoks = _ptr(src)
            if not stoks:
                raise PatchError("%s from the root is not supported" % op)
            sc = _container(doc, stoks, op, src)
            val = _get(sc, stoks[-1], op, src)
            val = copy.deepcopy(val)
            if op == "move":
                _remove(sc, stoks[-1], op, src)
            doc = _add(doc, _ptr(path), val, op, path)
            continue
        toks = _ptr(path)
        if op == "add":
            doc = _add(doc, toks, copy.deepcopy(o["value"]), op, path)
        elif op == "remove":
            if not toks:
                raise PatchError("remove operation does not apply: doc is missing path")
            _remove(_container(doc, toks, op, path), toks[-1], op, path)
        elif op == "replace":
            if not toks:
                doc = copy.deepcopy(o["value"])
                continue
            c = _container(doc, toks, op, path)
            _get(c, toks[-1], op, path)
            if isinstance(c, list):
                c[int(toks[-1])] = copy.deepcopy(o["value"])
            else:
                c[toks[-1]] = copy.deepcopy(o["value"])
        elif op == "test":
            cur = doc
            if toks:
                cur = _get(_container(doc, toks, op, path), toks[-1], op, path)
            if cur != o["value"]:
                raise PatchError('testing value %s failed: test failed' % path)
        else:
            raise PatchError("Unexpected kind: %s" % op)
    return doc


def _get(c, key, op, path):
    if isinstance(c, dict):
        if key not in c:
            raise PatchError('%s operation does not apply: doc is missing key: %s: missing value'
                             % (op, path))
        return c[key]
    if isinstance(c, list):
        if not key.isdigit() or int(key) >= len(c):
            raise PatchError("Unable to access invalid index: %s: invalid index referenced" % key)
        return c[int(key)]
    raise PatchError('%s operation does not apply: doc is missing path: "%s": missing value' % (op, path))


def _remove(c, key, op, path):
    _get(c, key, op, path)
    if isinstance(c, list):
        del c[int(key)]
    else:
        del c[key]


def _add(doc, toks, val, op, path):
    if not toks:
        return val
    c = _container(doc, toks, op, path)
    key = toks[-1]
    if isinstance(c, dict):
        c[key] = val
    elif isinstance(c, list):
        if key == "-":
            c.append(val)
        elif key.isdigit() and int(key) <= len(c):
            c.insert(int(key), val)
        else:
            raise PatchError("Unable to access invalid index: %s: invalid index referenced" % key)
    else:
        raise PatchError('%s operation does not apply: doc is missing path: "%s": missing value' % (op, path))
    return doc


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(orig, patch):
    """Strategic merge patch for the built-in types we model (merge keys in MERGE_KEYS)."""
    if not isinstance(patch, dict):
        raise PatchError("unable to find api field in struct for the patch")
    if not isinstance(orig, dict):
        orig = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = copy.deepcopy(orig)
    retain = patch.get("$retainKeys")
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in (v or [])]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, MERGE_KEYS[k])
        elif isinstance(v, list) and k in MERGE_PRIMITIVE_LISTS and isinstance(out.get(k), list):
            out[k] = out[k] + [x for x in v if x not in out[k]]
        elif isinstance(v, list) and k in MERGE_KEYS:
            out[k] = [strategic_merge({}, x) if isinstance(x, dict) else x for x in v
                      if not (isinstance(x, dict) and x.get("$patch") in ("delete", "replace"))]
        else:
            out[k] = copy.deepcopy(v)
    for f, order in orders.items():
        key = MERGE_KEYS.get(f)
        if isinstance(out.get(f), list) and isinstance(order, list):
            out[f] = _reorder(out[f], order, key)
    if isinstance(retain, list):
        for k in list(out):
            if k not in retain:
                del out[k]
    return out


def _merge_list(orig, patch, key):
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = copy.deepcopy(orig)
    for el in patch:
        if not isinstance(el, dict):
            out.append(copy.deepcopy(el))
            continue
        kv = el.get(key)
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == kv), None)
        if el.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(strategic_merge({}, el))
        else:
            out[idx] = strategic_merge(out[idx], el)
    return out


def _reorder(items, order, key):
    if key is None:
        return items
    want = [o.get(key) if isinstance(o, dict) else o for o in order]
    first = [x for w in want for x in items if isinstance(x, dict) and x.get(key) == w]
    rest = [x for x in items if not (isinstance(x, dict) and x.get(key) in want)]
    return first + rest


# ---------------------------------------------------------------------------------------------
# defaults (what the apiserver's defaulting and the built-in admission plugins add)

def default_container(c):
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        img = c.get("image") or ""
        tag = img.rsplit("/", 1)[-1]
        latest = "@" not in img and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec):
    for f in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(f) or []:
            if isinstance(c, dict):
                default_container(c)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccountName") and "serviceAccount" not in spec:
        spec["serviceAccount"] = spec["serviceAccountName"]


def apply_defaults(res, obj):
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if res.kind == "Pod" and spec is not None:
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    elif res.kind in ("Deployment", "StatefulSet", "DaemonSet") and spec is not None:
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            tpl.setdefault("metadata", {})
            if isinstance(tpl.get("spec"), dict):
                default_pod_spec(tpl["spec"])
        spec.setdefault("revisionHistoryLimit", 10)
        if res.kind == "Deployment":
            spec.setdefault("replicas", 1)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
            spec.setdefault("progressDeadlineSeconds", 600)
        elif res.kind == "StatefulSet":
            spec.setdefault("replicas", 1)
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("persistentVolumeClaimRetentionPolicy",
                            {"whenDeleted": "Retain", "whenScaled": "Retain"})
        else:
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate":
                                               {"maxUnavailable": 1, "maxSurge": 0}})
        obj.setdefault("status", {})
    elif res.kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        obj["metadata"].setdefault("labels", {})
        if obj["metadata"].get("name"):
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif res.kind == "Secret":
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.setdefault("data", {})
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        if not obj.get("type"):
            obj["type"] = "Opaque"
    elif res.kind == "MutatingWebhookConfiguration":
        for w in obj.get("webhooks") or []:
            if not isinstance(w, dict):
                continue
            w.setdefault("failurePolicy", "Fail")
            w.setdefault("matchPolicy", "Equivalent")
            w.setdefault("namespaceSelector", {})
            w.setdefault("objectSelector", {})
            w.setdefault("timeoutSeconds", 10)
            w.setdefault("reinvocationPolicy", "Never")
            cc = w.get("clientConfig") or {}
            if isinstance(cc.get("service"), dict):
                cc["service"].setdefault("port", 443)
            for r in w.get("rules") or []:
                if isinstance(r, dict):
                    r.setdefault("scope", "*")


def validate(res, obj, name):
    causes = []
    if res.kind == "Pod":
        causes += _validate_pod_spec(obj.get("spec"), "spec")
    elif res.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec = obj.get("spec") or {}
        sel = spec.get("selector")
        tpl = spec.get("template") or {}
        if not isinstance(sel, dict):
            causes.append({"reason": "FieldValueRequired", "message": "Required value",
                           "field": "spec.selector"})
        elif not labels_match(selector_object_reqs(sel), (tpl.get("metadata") or {}).get("labels")):
            causes.append({"reason": "FieldValueInvalid",
                           "message": "Invalid value: %s: `selector` does not match template `labels`"
                           % json.dumps((tpl.get("metadata") or {}).get("labels") or {}),
                           "field": "spec.template.metadata.labels"})
        causes += _validate_pod_spec(tpl.get("spec"), "spec.template.spec")
    elif res.kind == "MutatingWebhookConfiguration":
        seen = set()
        for i, w in enumerate(obj.get("webhooks") or []):
            f = "webhooks[%d]" % i
            if not w.get("name"):
                causes.append({"reason": "FieldValueRequired", "message": "Required value",
                               "field": f + ".name"})
            elif w["name"] in seen:
                causes.append({"reason": "FieldValueDuplicate",
                               "message": 'Duplicate value: "%s"' % w["name"], "field": f + ".name"})
            seen.add(w.get("name"))
            if w.get("sideEffects") not in ("None", "NoneOnDryRun"):
                causes.append({"reason": "FieldValueNotSupported" if w.get("sideEffects") else
                               "FieldValueRequired",
                               "message": 'Unsupported value: "%s": supported values: "None", '
                               '"NoneOnDryRun"' % w.get("sideEffects") if w.get("sideEffects")
                               else "Required value", "field": f + ".sideEffects"})
            if not w.get("admissionReviewVersions"):
                causes.append({"reason": "FieldValueRequired", "message": "Required value",
                               "field": f + ".admissionReviewVersions"})
            cc = w.get("clientConfig") or {}
            if bool(cc.get("url")) == bool(cc.get("service")):
                causes.append({"reason": "FieldValueRequired",
                               "message": "Required value: exactly one of url or service is required",
                               "field": f + ".clientConfig"})
            elif cc.get("url") and not str(cc["url"]).startswith("https://"):
                causes.append({"reason": "FieldValueInvalid",
                               "message": 'Invalid value: "%s": \'https\' is the only allowed URL scheme'
                               % cc["url"], "field": f + ".clientConfig.url"})
            ts = w.get("timeoutSeconds")
            if not isinstance(ts, int) or not 1 <= ts <= 30:
                causes.append({"reason": "FieldValueInvalid",
                               "message": "Invalid value: %s: the timeout value must be between 1 and 30 "
                               "seconds" % ts, "field": f + ".timeoutSeconds"})
    if causes:
        raise invalid(res, name, causes)


def _validate_pod_spec(spec, prefix):
    causes = []
    if not isinstance(spec, dict):
        return [{"reason": "FieldValueRequired", "message": "Required value", "field": prefix}]
    if not spec.get("containers"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value",
                       "field": prefix + ".containers"})
    names = set()
    for f in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(f) or []):
            cp = "%s.%s[%d]" % (prefix, f, i)
            if not isinstance(c, dict) or not c.get("name"):
                causes.append({"reason": "FieldValueRequired", "message": "Required value",
                               "field": cp + ".name"})
                continue
            if c["name"] in names:
                causes.append({"reason": "FieldValueDuplicate",
                               "message": 'Duplicate value: "%s"' % c["name"], "field": cp + ".name"})
            names.add(c["name"])
            if not c.get("image"):
                causes.append({"reason": "FieldValueRequired", "message": "Required value",
                               "field": cp + ".image"})
    vnames = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") if isinstance(v, dict) else None
        if n in vnames:
            causes.append({"reason": "FieldValueDuplicate", "message": 'Duplicate value: "%s"' % n,
                           "field": "%s.volumes[%d].name" % (prefix, i)})
        vnames.add(n)
    for f in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(f) or []):
            if not isinstance(c, dict):
                continue
            for j, m in enumerate(c.get("volumeMounts") or []):
                if isinstance(m, dict) and m.get("name") not in vnames:
                    causes.append({"reason": "FieldValueNotFound",
                                   "message": 'Not found: "%s"' % m.get("name"),
                                   "field": "%s.%s[%d].volumeMounts[%d].name" % (prefix, f, i, j)})
    return causes


# ---------------------------------------------------------------------------------------------
# state

class State:
    def __init__(self, cfg, audit_path):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 100
        self.store = {r: {} for r in RESOURCES}  # Res -> {(ns, name): obj}
        self.events = []  # (rv, Res, type, obj)
        self.users = {}  # token -> userInfo
        for name, u in (cfg.get("users") or {}).items():
            u = {"token": u} if isinstance(u, str) else dict(u)
            info = {"username": name,
                    "uid": u.get("uid") or str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + name)),
                    "groups": list(u.get("groups") or []) + ["system:authenticated"]}
            if u.get("extra"):
                info["extra"] = u["extra"]
            self.users[u["token"]] = info
        self.tokenreviews = {}
        for tok, ent in (cfg.get("tokenreviews") or {}).items():
            self.tokenreviews[tok] = ent
        self.services = dict(cfg.get("services") or {})
        cl = cfg.get("cluster") or {}
        self.cluster_key = cl.get("jwt_key") or secrets.token_hex(32)
        # With a shared "jwt_key" (paired with the Vault stand-in, which verifies the JWTs itself)
        # tokens are HS256; otherwise RS256 with a key of our own, as a real cluster signs them.
        self.signer = None if cl.get("jwt_key") else RS256Signer()
        self.issuer = cl.get("issuer") or DEFAULT_ISSUER
        self.version = {"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
                        "gitTreeState": "clean", "buildDate": "2025-04-22T16:02:27Z",
                        "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64"}
        self.version.update(cfg.get("version") or {})
        self.faults = []
        self.fault_seq = 0
        self.events_dropped = False
        self.webhook_calls = []
        self.stats = {"requests": {}, "connections": 0, "watches": 0}
        self.audit_lock = threading.Lock()
        self.audit_file = open(audit_path, "a", encoding="utf-8") if audit_path else None
        self.serving_addr = ""
        for ns in cfg.get("namespaces") or ["default", "kube-system", "kube-public", "kube-node-lease"]:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for obj in cfg.get("objects") or []:
            self.seed(obj)

    def next_rv(self):
        self.rv += 1
        return self.rv

    def res_for(self, obj):
        r = BY_KIND.get((obj.get("apiVersion"), obj.get("kind")))
        if r is None:
            raise ValueError("unknown apiVersion/kind %s/%s" % (obj.get("apiVersion"), obj.get("kind")))
        return r

    def seed(self, obj):
        """Store an object directly (config, control API): defaults, no admission."""
        with self.lock:
            res = self.res_for(obj)
            obj = copy.deepcopy(obj)
            md = obj.setdefault("metadata", {})
            ns = md.get("namespace", "default") if res.namespaced else ""
            if res.namespaced:
                md["namespace"] = ns
            if not md.get("name"):
                md["name"] = md.get("generateName", "obj-") + rand_suffix()
            apply_defaults(res, obj)
            old = self.store[res].get((ns, md["name"]))
            if old is not None:
                md["uid"] = old["metadata"]["uid"]
                md["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            self.put(res, obj, "MODIFIED" if old is not None else "ADDED")
            if res.kind == "Namespace" and old is None:
                self.ensure_ns_defaults(md["name"])
            return obj

    def ensure_ns_defaults(self, ns):
        """What the serviceaccount and root-ca-cert controllers do for a new namespace."""
        sa = BY_KIND[("v1", "ServiceAccount")]
        if (ns, "default") not in self.store[sa]:
            self.put(sa, {"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "default", "namespace": ns}}, "ADDED")
        cm = BY_KIND[("v1", "ConfigMap")]
        if (ns, "kube-root-ca.crt") not in self.store[cm]:
            self.put(cm, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                       "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                          "data": {"ca.crt": self.ca_pem}}, "ADDED")

    ca_pem = ""

    def put(self, res, obj, etype):
        """Store with a new resourceVersion and record the watch event. Caller holds the lock."""
        md = obj.setdefault("metadata", {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now_rfc3339())
        if res.generation:
            md.setdefault("generation", 1)
        md["resourceVersion"] = str(self.next_rv())
        md.pop("selfLink", None)
        obj = ordered(res, obj)
        self.store[res][(md.get("namespace", "") if res.namespaced else "", md["name"])] = obj
        self.record(res, etype, obj)
        return obj

    def record(self, res, etype, obj):
        self.events.append((int(obj["metadata"]["resourceVersion"]), res, etype, copy.deepcopy(obj)))
        if len(self.events) > EVENT_LOG_MAX:
            del self.events[:len(self.events) - EVENT_LOG_MAX]
            self.events_dropped = True
        self.cond.notify_all()

    def delete(self, res, key):
        obj = self.store[res].pop(key)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self.record(res, "DELETED", obj)
        if res.kind == "Namespace":
            for r in RESOURCES:
                if r.namespaced:
                    for k in [k for k in self.store[r] if k[0] == key[1]]:
                        self.delete(r, k)
        return obj

    def ns_labels(self, ns):
        o = self.store[BY_KIND[("v1", "Namespace")]].get(("", ns))
        return None if o is None else (o["metadata"].get("labels") or {})

    # --- tokens
    def mint_jwt(self, ns, sa, audiences=None, ttl=3600, pod=None, sa_uid=None, now=None):
        now = int(now if now is not None else time.time())
        aud = audiences or [API_AUDIENCE]
        saobj = self.store[BY_KIND[("v1", "ServiceAccount")]].get((ns, sa))
        uid = sa_uid or (saobj["metadata"]["uid"] if saobj else
                         str(uuid.uuid5(uuid.NAMESPACE_URL, "sa:%s/%s" % (ns, sa))))
        kio = {"namespace": ns, "serviceaccount": {"name": sa, "uid": uid}}
        if pod:
            kio["pod"] = pod
        claims = {"aud": list(aud), "exp": now + int(ttl), "iat": now, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": kio, "nbf": now,
                  "sub": "system:serviceaccount:%s:%s" % (ns, sa)}
        header = {"alg": "HS256", "kid": "standin", "typ": "JWT"}
        if self.signer:
            header = {"alg": "RS256", "kid": self.signer.kid}
        si = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        if self.signer:
            return si + "." + b64url(self.signer.sign(si.encode())), claims
        sig = hmac.new(self.cluster_key.encode(), si.encode(), hashlib.sha256).digest()
        return si + "." + b64url(sig), claims

    def review_token(self, token, audiences):
        """The authenticator chain behind TokenReview and request authentication.
        Returns (user or None, audiences, error text)."""
        want = list(audiences or [API_AUDIENCE])
        ent = self.tokenreviews.get(token)
        if ent is not None:
            if ent.get("error") or not ent.get("authenticated", True):
                return None, [], ent.get("error") or "[invalid bearer token]"
            return dict(ent.get("user") or {}), list(ent.get("audiences") or want), ""
        if token in self.users:
            return dict(self.users[token]), want, ""
        parts = token.split(".")
        if len(parts) != 3:
            return None, [], "[invalid bearer token, token lookup failed]"
        try:
            claims = json.loads(b64url_dec(parts[1]))
            sig = b64url_dec(parts[2])
        except (ValueError, TypeError):
            return None, [], "[invalid bearer token, token lookup failed]"
        if self.signer:
            good_sig = self.signer.verify((parts[0] + "." + parts[1]).encode(), sig)
        else:
            good = hmac.new(self.cluster_key.encode(), (parts[0] + "." + parts[1]).encode(),
                            hashlib.sha256).digest()
            good_sig = hmac.compare_digest(sig, good)
        if not isinstance(claims, dict) or not good_sig or \
                claims.get("iss") != self.issuer:
            return None, [], "[invalid bearer token, token lookup failed]"
        now = time.time()
        if int(claims.get("exp", 0)) + 60 < now:
            return None, [], "[invalid bearer token, service account token has expired]"
        if int(claims.get("nbf", 0)) - 60 > now:
            return None, [], "[invalid bearer token, service account token is not valid yet]"
        aud = claims.get("aud") or []
        aud = [aud] if isinstance(aud, str) else aud
        inter = [a for a in want if a in aud]
        if not inter:
            return None, [], ("[invalid bearer token, token audiences %s is invalid for the target "
                              "audiences %s]" % (json.dumps(aud, separators=(",", ":")).replace(",", " "),
                                                 json.dumps(want, separators=(",", ":")).replace(",", " ")))
        kio = claims.get("kubernetes.io") or {}
        ns = kio.get("namespace", "")
        sa = (kio.get("serviceaccount") or {})
        saobj = self.store[BY_KIND[("v1", "ServiceAccount")]].get((ns, sa.get("name")))
        if saobj is None or saobj["metadata"]["uid"] != sa.get("uid"):
            return None, [], ('[invalid bearer token, service account %s/%s has been deleted]' %
                              (ns, sa.get("name")))
        user = {"username": "system:serviceaccount:%s:%s" % (ns, sa.get("name")),
                "uid": sa.get("uid"),
                "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                           "system:authenticated"]}
        extra = {}
        if kio.get("pod"):
            extra["authentication.kubernetes.io/pod-name"] = [kio["pod"].get("name")]
            extra["authentication.kubernetes.io/pod-uid"] = [kio["pod"].get("uid")]
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = ["JTI=" + claims["jti"]]
        if extra:
            user["extra"] = extra
        return user, inter, ""


def ordered(res, obj):
    """kind, apiVersion, metadata, spec..., status last: the apiserver's field order."""
    out = {"kind": res.kind, "apiVersion": res.gv}
    if "metadata" in obj:
        out["metadata"] = obj["metadata"]
    for k, v in obj.items():
        if k not in ("kind", "apiVersion", "metadata", "status"):
            out[k] = v
    if "status" in obj:
        out["status"] = obj["status"]
    return out


def strip_kind(obj):
    o = dict(obj)
    o.pop("kind", None)
    o.pop("apiVersion", None)
    return o


# ---------------------------------------------------------------------------------------------
# mutating admission webhooks (K-apiserver mutating/dispatcher.go, request/admissionreview.go)

class CallError(Exception):
    """webhookutil.ErrCallingWebhook: subject to failurePolicy."""


class _WebhookConn(http.client.HTTPSConnection):
    """Connects to `addr` but verifies the certificate for `sni` (service DNS name)."""

    def __init__(self, addr, port, sni, context, timeout):
        super().__init__(addr, port, context=context, timeout=timeout)
        self._sni = sni
        self._ctx = context

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._ctx.wrap_socket(sock, server_hostname=self._sni)
        except BaseException:
            sock.close()
            raise


def rule_matches(rule, op, res, sub):
    ops = rule.get("operations") or []
    if "*" not in ops and op not in ops:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and res.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and res.version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and res.namespaced or scope == "Namespaced" and not res.namespaced:
        return False
    for r in rule.get("resources") or []:
        rr, _, rs = r.partition("/")
        if rr not in ("*", res.plural):
            continue
        if (rs == "" and sub == "") or rs == "*" or (rs == sub and rs):
            return True
    return False


def go_post_error(url, exc, addr):
    """Texts of net/http + crypto/tls errors as the apiserver prints them."""
    pre = 'Post "%s": ' % url
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return pre + "context deadline exceeded"
    if isinstance(exc, ssl.SSLCertVerificationError):
        msg = exc.verify_message or str(exc)
        if "Hostname mismatch" in msg or "IP address mismatch" in msg:
            return pre + "tls: failed to verify certificate: x509: certificate is not valid for " + \
                url.split("/")[2].rsplit(":", 1)[0]
        return pre + "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    if isinstance(exc, ssl.SSLError):
        return pre + "remote error: tls: " + (exc.reason or "handshake failure").lower().replace("_", " ")
    if isinstance(exc, ConnectionRefusedError):
        return pre + "dial tcp %s: connect: connection refused" % addr
    if isinstance(exc, socket.gaierror):
        return pre + "dial tcp: lookup %s: no such host" % url.split("/")[2].rsplit(":", 1)[0]
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected)):
        return pre + "EOF"
    return pre + str(exc)


class Admission:
    def __init__(self, state, op, res, sub, ns, name, obj, old, user, dry_run, options):
        self.st, self.op, self.res, self.sub = state, op, res, sub
        self.ns, self.name, self.obj, self.old = ns, name, obj, old
        self.user, self.dry_run, self.options = user, dry_run, options
        self.warnings = []
        self.audit_annotations = {}

    def hooks(self):
        with self.st.lock:
            cfgs = sorted(self.st.store[BY_KIND[("admissionregistration.k8s.io/v1",
                                                  "MutatingWebhookConfiguration")]].values(),
                          key=lambda o: o["metadata"]["name"])
            cfgs = copy.deepcopy(cfgs)
            nslabels = None
            if self.res.kind == "Namespace":
                nslabels = ((self.obj or self.old or {}).get("metadata") or {}).get("labels") or {}
            elif self.res.namespaced:
                nslabels = self.st.ns_labels(self.ns) or {}
        out = []
        for c in cfgs:
            for w in c.get("webhooks") or []:
                if not any(rule_matches(r, self.op, self.res, self.sub) for r in w.get("rules") or []):
                    continue
                if nslabels is not None and not labels_match(
                        selector_object_reqs(w.get("namespaceSelector") or {}), nslabels):
                    continue
                osel = selector_object_reqs(w.get("objectSelector") or {})
                objs = [o for o in (self.obj, self.old) if o is not None]
                if not any(labels_match(osel, (o.get("metadata") or {}).get("labels")) for o in objs):
                    continue
                out.append((c["metadata"]["name"], w))
        return out

    def run(self):
        """Returns the (possibly mutated) object; raises KubeError like the real dispatcher."""
        hooks = self.hooks()
        if not hooks:
            return self.obj
        reinvocable = set()
        changed_any = False
        last_out = {}
        for i, (cname, w) in enumerate(hooks):
            changed = self.call(cname, w, 0, i)
            if changed:
                changed_any = True
            last_out[w["name"]] = json.dumps(self.obj, sort_keys=True)
            if w.get("reinvocationPolicy") == "IfNeeded":
                reinvocable.add(w["name"])
        if changed_any and reinvocable and self.obj is not None:
            final = json.dumps(self.obj, sort_keys=True)
            for i, (cname, w) in enumerate(hooks):
                if w["name"] in reinvocable and last_out.get(w["name"]) != final:
                    self.call(cname, w, 1, i)
        return self.obj

    def review(self, uid):
        r = self.res
        req = {"uid": uid,
               "kind": {"group": r.group, "version": r.version, "kind": r.kind},
               "resource": {"group": r.group, "version": r.version, "resource": r.plural}}
        if self.sub:
            req["subResource"] = self.sub
        req["requestKind"] = dict(req["kind"])
        req["requestResource"] = dict(req["resource"])
        if self.sub:
            req["requestSubResource"] = self.sub
        if self.name:
            req["name"] = self.name
        if self.ns:
            req["namespace"] = self.ns
        req["operation"] = self.op
        req["userInfo"] = self.user
        req["object"] = self.obj
        req["oldObject"] = self.old
        req["dryRun"] = bool(self.dry_run)
        req["options"] = self.options
        return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": req}

    def target(self, w):
        cc = w.get("clientConfig") or {}
        if cc.get("url"):
            u = urllib.parse.urlsplit(cc["url"])
            host = u.hostname or ""
            port = u.port or 443
            path = u.path or "/"
            return cc["url"], host, port, host, path
        svc = cc.get("service") or {}
        sns, sname = svc.get("namespace", ""), svc.get("name", "")
        port = int(svc.get("port") or 443)
        path = svc.get("path") or "/"
        dns = "%s.%s.svc" % (sname, sns)
        url = "https://%s:%d%s" % (dns, port, path)
        with self.st.lock:
            addr = self.st.services.get("%s/%s:%d" % (sns, sname, port)) or \
                self.st.services.get("%s/%s" % (sns, sname))
        if addr:
            h, _, p = addr.rpartition(":")
            return url, h.strip("[]"), int(p), dns, path
        return url, dns, port, dns, path

    def call(self, cname, w, rnd, idx):
        name = w["name"]
        ignore = w.get("failurePolicy") == "Ignore"
        rec = {"configuration": cname, "webhook": name, "round": rnd, "index": idx,
               "operation": self.op, "resource": self.res.plural, "namespace": self.ns,
               "name": self.name, "time": micro_rfc3339()}
        t0 = time.monotonic()
        try:
            changed = self._call(w, rec)
            rec["outcome"] = "patched" if changed else "allowed"
            return changed
        except CallError as e:
            rec["error"] = "failed calling webhook %s: %s" % (json.dumps(name), e)
            if ignore:
                rec["outcome"] = "failed-open"
                self.audit_annotations["mutation.webhook.admission.k8s.io/failed-open-round_%d_index_%d"
                                       % (rnd, idx)] = name
                return False
            rec["outcome"] = "failed-closed"
            raise internal_error(rec["error"])
        except KubeError as e:
            rec["outcome"] = "denied" if e.reason != "InternalError" else "error"
            rec["error"] = e.message
            raise
        finally:
            rec["duration_ms"] = round((time.monotonic() - t0) * 1000, 3)
            with self.st.lock:
                self.st.webhook_calls.append(rec)
                del self.st.webhook_calls[:-1000]

    def _call(self, w, rec):
        name = w["name"]
        if self.dry_run and w.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise KubeError(400, "BadRequest",
                            'admission webhook "%s" does not support dry run' % name)
        if "v1" not in (w.get("admissionReviewVersions") or []):
            raise CallError("webhook does not accept known AdmissionReview versions")
        uid = str(uuid.uuid4())
        review = self.review(uid)
        url, host, port, sni, path = self.target(w)
        timeout = int(w.get("timeoutSeconds") or 10)
        full = "%s%stimeout=%ds" % (url, "&" if "?" in url else "?", timeout)
        rec["url"] = full
        rec["request"] = review
        cc = w.get("clientConfig") or {}
        try:
            if cc.get("caBundle"):
                pem = base64.b64decode(cc["caBundle"]).decode("ascii", "replace")
                ctx = ssl.create_default_context(cadata=pem)
            else:
                ctx = ssl.create_default_context()
        except (ValueError, ssl.SSLError) as e:
            raise CallError("failed to call webhook: could not get REST client: unable to load root "
                            "certificates: %s" % e)
        ctx.set_alpn_protocols(["http/1.1"])
        body = json.dumps(review).encode()
        qpath = path + ("&" if "?" in path else "?") + "timeout=%ds" % timeout
        conn = _WebhookConn(host, port, sni, ctx, timeout)
        try:
            conn.request("POST", qpath, body=body, headers={
                "Content-Type": "application/json", "Accept": "application/json, */*",
                "User-Agent": "kube-apiserver-admission"})
            resp = conn.getresponse()
            raw = resp.read(MAX_BODY + 1)
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            raise CallError("failed to call webhook: " + go_post_error(
                full, e, "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)))
        finally:
            conn.close()
        rec["http_status"] = status
        try:
            rec["response"] = json.loads(raw)
        except ValueError:
            rec["response"] = raw.decode("utf-8", "replace")
        if status != 200:
            text = raw.decode("utf-8", "replace").strip()
            resp_obj = rec["response"] if isinstance(rec["response"], dict) else {}
            if resp_obj.get("kind") == "Status" and resp_obj.get("message"):
                msg = resp_obj["message"]
            elif status >= 500:
                msg = 'an error on the server ("%s") has prevented the request from succeeding' % text
            else:
                msg = "the server responded with the status code %d but did not return more " \
                      "information" % status
            raise CallError("failed to call webhook: " + msg)
        ar = rec["response"]
        if not isinstance(ar, dict):
            raise CallError("failed to call webhook: couldn't get version/kind; json parse error: "
                            "invalid character looking for beginning of value")
        if ar.get("apiVersion") != "admission.k8s.io/v1" or ar.get("kind") != "AdmissionReview":
            raise CallError("received invalid webhook response: expected webhook response of "
                            "admission.k8s.io/v1, Kind=AdmissionReview, got %s, Kind=%s"
                            % (ar.get("apiVersion", ""), ar.get("kind", "")))
        r = ar.get("response")
        if not isinstance(r, dict):
            raise CallError("received invalid webhook response: webhook response was absent")
        if r.get("uid") != uid:
            raise CallError('received invalid webhook response: expected response.uid="%s", got "%s"'
                            % (uid, r.get("uid", "")))
        patch_b64, ptype = r.get("patch"), r.get("patchType")
        if patch_b64 and not ptype:
            raise CallError("received invalid webhook response: webhook returned response.patch but "
                            "not response.patchType")
        if ptype is not None and not patch_b64:
            raise CallError("received invalid webhook response: webhook returned response.patchType "
                            "but not response.patch")
        if ptype is not None and ptype != "JSONPatch":
            raise CallError("received invalid webhook response: webhook returned invalid "
                            "response.patchType of \"%s\"" % ptype)
        for k, v in (r.get("auditAnnotations") or {}).items():
            self.audit_annotations[name + "/" + k] = v
        for wtext in r.get("warnings") or []:
            self.warnings.append(str(wtext))
        if not r.get("allowed"):
            st = dict(r.get("status") or {})
            code = int(st.get("code") or 0)
            if code < 400:
                code = 400
            msg = st.get("message") or ""
            denied = 'admission webhook "%s" denied the request' % name
            if msg:
                msg = "%s: %s" % (denied, msg)
            elif st.get("reason"):
                msg = "%s: %s" % (denied, st["reason"])
            else:
                msg = denied + " without explanation"
            raise KubeError(code, st.get("reason", ""), msg, st.get("details"))
        if not patch_b64:
            return False
        try:
            ops = json.loads(base64.b64decode(patch_b64, validate=True))
            if not isinstance(ops, list):
                raise ValueError("not a list")
        except (ValueError, TypeError, binascii.Error) as e:
            raise CallError("received undecodable patch in webhook response: %s" % e)
        if not ops:
            return False
        if self.obj is None:
            raise internal_error('admission webhook "%s" attempted to modify the object, which is '
                                 'not supported for this operation' % name)
        rec["patch"] = ops
        try:
            patched = json_patch(self.obj, ops)
        except PatchError as e:
            raise internal_error(str(e))
        if not isinstance(patched, dict):
            raise internal_error("patched object is not an object")
        apply_defaults(self.res, patched)
        changed = json.dumps(patched, sort_keys=True) != json.dumps(self.obj, sort_keys=True)
        self.obj = patched
        return changed


# ---------------------------------------------------------------------------------------------
# protobuf (only what `kubectl create token` sends: a TokenRequest in the k8s envelope)

def _pb_fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated protobuf")
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append((fn, v))
    return out


def _varint(b, i):
    v, shift = 0, 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


# Field numbers from k8s.io/api generated.proto for the bodies kubectl's typed clients send as
# protobuf (`kubectl create secret|configmap|namespace|serviceaccount|token`). Fields not listed
# are ignored (gogo-protobuf also emits zero values such as an empty creationTimestamp).
PB_SCHEMAS = {
    "ObjectMeta": {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"),
                   11: ("labels", "map_s"), 12: ("annotations", "map_s"), 14: ("finalizers", "rep_s")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map_b"), 3: ("type", "s"),
               4: ("stringData", "map_s"), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map_s"), 3: ("binaryData", "map_b"),
                  4: ("immutable", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "rep_s")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "rep:ObjectReference"),
                       3: ("imagePullSecrets", "rep:LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                        5: ("apiVersion", "s"), 6: ("resourceVersion", "s"), 7: ("fieldPath", "s")},
    "LocalObjectReference": {1: ("name", "s")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: ("audiences", "rep_s"), 3: ("boundObjectRef", "BoundObjectReference"),
                         4: ("expirationSeconds", "int")},
    "BoundObjectReference": {1: ("kind", "s"), 2: ("apiVersion", "s"), 3: ("name", "s"), 4: ("uid", "s")},
}


def _pb_decode(msg, b):
    schema = PB_SCHEMAS[msg]
    out = {}
    for fn, v in _pb_fields(b):
        if fn not in schema:
            continue
        name, typ = schema[fn]
        if typ in ("s", "bool", "int") and not v:
            continue  # zero value: absent in JSON (omitempty)
        if typ == "s":
            out[name] = v.decode()
        elif typ == "bool":
            out[name] = bool(v)
        elif typ == "int":
            out[name] = v
        elif typ == "rep_s":
            out.setdefault(name, []).append(v.decode())
        elif typ in ("map_s", "map_b"):
            kv = dict(_pb_fields(v))
            val = kv.get(2, b"")
            out.setdefault(name, {})[kv.get(1, b"").decode()] = \
                val.decode() if typ == "map_s" else base64.b64encode(val).decode()
        elif typ.startswith("rep:"):
            out.setdefault(name, []).append(_pb_decode(typ[4:], v))
        else:
            out[name] = _pb_decode(typ, v)
    return out


def decode_pb_object(body, res):
    """A k8s protobuf body: magic "k8s\\0" + runtime.Unknown{typeMeta(1){apiVersion(1), kind(2)},
    raw(2)}, raw being the object's message. Raises ValueError for anything else."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("provided data does not appear to be a protobuf message, expected prefix "
                         "[107 56 115 0]")
    tm, raw = {}, b""
    for fn, v in _pb_fields(body[4:]):
        if fn == 1:
            tm = {k: x.decode() for k, x in _pb_fields(v)}
        elif fn == 2:
            raw = v
    kind = tm.get(2, "")
    if kind not in PB_SCHEMAS or kind in ("ObjectMeta",):
        raise ValueError("protobuf %s is not modelled" % (kind or "object"))
    obj = {"apiVersion": tm.get(1, ""), "kind": kind}
    obj.update(_pb_decode(kind, raw))
    return obj


# ---------------------------------------------------------------------------------------------
# HTTP server

def media_types(header):
    out = []
    for part in (header or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        params = {}
        for b in bits[1:]:
            k, _, v = b.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append((bits[0].lower(), params))
    return out


def accepts_json(header):
    if not header:
        return True
    for mt, params in media_types(header):
        if "as" in params:
            continue  # Table / PartialObjectMetadata / discovery forms: we only serve plain JSON
        if mt in ("application/json", "*/*", "application/*"):
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-kube-apiserver"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kube-standin: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        with self.server.state.lock:
            self.server.state.stats["connections"] += 1

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

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = \
        lambda self: self.handle_any()

    # ---- low-level I/O
    def send(self, status, obj=None, headers=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else (b"" if obj is None else (json.dumps(obj) + "\n").encode())
        self.send_response(status)
        self.send_header("Audit-Id", self._audit_id)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        for w in self._warnings:
            self.send_header("Warning", '299 - "%s"' % w.replace('"', '\\"'))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()
        self._status = status

    def send_error_status(self, e):
        self.send(e.code, e.status(), e.headers)

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
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError("bad content-length")
        if n > MAX_BODY:
            return None
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        self._status = 0
        self._audit_id = str(uuid.uuid4())
        self._warnings = []
        self._user = None
        self._objref = None
        self._annotations = {}
        self._t0 = time.time()
        try:
            self._handle_any()
        except KubeError as e:
            try:
                self.send_error_status(e)
            except OSError:
                self.close_connection = True
        except (ConnectionError, ssl.SSLError, BrokenPipeError):
            self.close_connection = True
        except Exception:  # never a traceback to the client
            traceback.print_exc(file=sys.stderr)
            try:
                self.send_error_status(internal_error("stand-in internal error"))
            except Exception:
                self.close_connection = True
        finally:
            self.audit()

    def _handle_any(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self._stat_path = path
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            raise bad_request("invalid request body")
        if body is None:
            self.close_connection = True
            raise KubeError(413, "RequestEntityTooLarge",
                            "the server has received too large of a request body", {})
        self.body = body
        if self.apply_faults(path):
            return
        if path in ("/healthz", "/livez", "/readyz"):
            return self.send(200, raw=b"ok", ctype="text/plain; charset=utf-8")
        if path == "/version":
            return self.send(200, st.version)
        # authentication (bearer tokens: static users, token-review table, minted SA tokens)
        auth = self.headers.get("Authorization") or ""
        user = None
        if auth[:7].lower() == "bearer ":
            with st.lock:
                user, _, _ = st.review_token(auth[7:].strip(), None)
        if user is None and not auth:
            raise anonymous_forbidden(self.command, path, self.query)
        if user is None:
            raise KubeError(401, "Unauthorized", "Unauthorized")
        self._user = user
        if not accepts_json(self.headers.get("Accept")):
            raise KubeError(406, "NotAcceptable",
                            "only the following media types are accepted: application/json")
        segs = [s for s in path.split("/") if s]
        if segs[:2] == ["openapi", "v3"] and self.command in ("GET", "HEAD"):
            doc = openapi_v3(segs[2:])
            if doc is not None:
                return self.send(200, doc)
        if not segs or segs[0] not in ("api", "apis"):
            return self.send(404, raw=b"404 page not found\n", ctype="text/plain; charset=utf-8")
        if segs[0] == "api":
            if len(segs) == 1:
                return self.discovery_get(self.api_versions())
            if segs[1] != "v1":
                raise path_not_found()
            group, version, rest = "", "v1", segs[2:]
        else:
            if len(segs) == 1:
                return self.discovery_get(self.api_group_list())
            group = segs[1]
            if group not in GROUP_ORDER:
                raise path_not_found()
            if len(segs) == 2:
                return self.discovery_get(self.api_group(group))
            version, rest = segs[2], segs[3:]
            if not any(r.group == group and r.version == version for r in RESOURCES):
                raise path_not_found()
        if not rest:
            return self.discovery_get(self.resource_list(group, version))
        return self.route_resource(group, version, rest)

    def discovery_get(self, obj):
        if self.command not in ("GET", "HEAD"):
            raise method_not_allowed()
        return self.send(200, obj)

    # ---- discovery
    def api_versions(self):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": self.server.state.serving_addr}]}

    def api_group(self, g):
        gv = {"groupVersion": "%s/v1" % g, "version": "v1"}
        return {"name": g, "versions": [gv], "preferredVersion": gv}

    def api_group_list(self):
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self.api_group(g) for g in GROUP_ORDER]}

    def resource_list(self, group, version):
        out = []
        for r in RESOURCES:
            if r.group != group or r.version != version:
                continue
            e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": r.verbs}
            if r.short:
                e["shortNames"] = r.short
            if r.categories:
                e["categories"] = r.categories
            e["storageVersionHash"] = b64url(hashlib.sha256(r.qualified.encode()).digest())[:11]
            out.append(e)
            if r.status:
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
            if r.kind == "ServiceAccount":
                out.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                            "verbs": ["create"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "%s/%s" % (group, version) if group else version, "resources": out}

    # ---- resource routing
    def route_resource(self, group, version, rest):
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_GVR and \
                BY_GVR[(group, version, rest[2])].namespaced:
            ns, rest = rest[1], rest[2:]
        res = BY_GVR.get((group, version, rest[0]))
        if res is None or len(rest) > 3 or (res.namespaced and not ns and len(rest) > 1):
            raise path_not_found()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        self._objref = {"resource": res.plural, "namespace": ns or None, "name": name or None,
                        "apiGroup": res.group or None, "apiVersion": res.version,
                        "subresource": sub or None}
        M = self.command
        if sub:
            if sub == "status" and res.status:
                if M == "GET":
                    return self.send(200, self.get_obj(res, ns, name))
                if M in ("PUT", "PATCH"):
                    return self.do_write(res, ns, name, status_only=True)
                raise method_not_allowed()
            if sub == "token" and res.kind == "ServiceAccount":
                if M == "POST":
                    return self.token_request(ns, name)
                raise method_not_allowed()
            raise path_not_found()
        if res.kind == "TokenReview":
            if M == "POST" and not name:
                return self.token_review()
            raise method_not_allowed()
        if not name:
            if M in ("GET", "HEAD"):
                if self.query.get("watch") in ("1", "true", "True"):
                    return self.watch(res, ns)
                return self.send(200, self.list_obj(res, ns))
            if M == "POST":
                return self.create(res, ns)
            if M == "DELETE":
                return self.delete_collection(res, ns)
            raise method_not_allowed()
        if M in ("GET", "HEAD"):
            if self.query.get("watch") in ("1", "true", "True"):
                self.query["fieldSelector"] = "metadata.name=" + name
                return self.watch(res, ns)
            return self.send(200, self.get_obj(res, ns, name))
        if M in ("PUT", "PATCH"):
            return self.do_write(res, ns, name)
        if M == "DELETE":
            return self.delete(res, ns, name)
        raise method_not_allowed()

    def get_obj(self, res, ns, name):
        st = self.server.state
        with st.lock:
            o = st.store[res].get((ns, name))
            if o is None:
                raise not_found(res, name)
            return copy.deepcopy(o)

    def selectors(self):
        return (parse_label_selector(self.query.get("labelSelector", "")),
                parse_field_selector(self.query.get("fieldSelector", "")))

    def matching(self, res, ns, lsel, fsel, obj):
        md = obj.get("metadata") or {}
        if ns and md.get("namespace") != ns:
            return False
        return labels_match(lsel, md.get("labels")) and fields_match(fsel, obj)

    def list_obj(self, res, ns):
        st = self.server.state
        lsel, fsel = self.selectors()
        try:
            limit = int(self.query.get("limit") or 0)
        except ValueError:
            raise bad_request("invalid limit")
        cont = self.query.get("continue") or ""
        start = None
        if cont:
            try:
                start = tuple(json.loads(b64url_dec(cont))["k"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: illegal base64 data at input byte 0")
        with st.lock:
            keys = sorted(k for k in st.store[res] if not ns or k[0] == ns)
            items = [copy.deepcopy(st.store[res][k]) for k in keys
                     if (start is None or k > start) and
                     self.matching(res, ns, lsel, fsel, st.store[res][k])]
            rv = str(st.rv)
        meta = {"resourceVersion": rv}
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = b64url(json.dumps({"k": [last.get("namespace", "") if res.namespaced
                                                         else "", last["name"]]}).encode())
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": meta,
                "items": [strip_kind(o) for o in items]}

    # ---- watch
    def watch(self, res, ns):
        st = self.server.state
        lsel, fsel = self.selectors()
        try:
            tmo = float(self.query.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("invalid timeoutSeconds")
        rv_s = self.query.get("resourceVersion") or ""
        self.send_response(200)
        self.send_header("Audit-Id", self._audit_id)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200
        with st.lock:
            st.stats["watches"] += 1

        def chunk(ev):
            data = (json.dumps(ev) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        deadline = time.monotonic() + tmo
        pending = []
        with st.lock:
            if rv_s in ("", "0"):
                cur = st.rv
                for k in sorted(st.store[res]):
                    o = st.store[res][k]
                    if self.matching(res, ns, lsel, fsel, o):
                        pending.append({"type": "ADDED", "object": copy.deepcopy(o)})
            else:
                try:
                    cur = int(rv_s)
                except ValueError:
                    cur = -1
                oldest = st.events[0][0] if st.events else st.rv + 1
                if cur < 0 or (cur + 1 < oldest and st.events_dropped):
                    pending.append({"type": "ERROR", "object": KubeError(
                        410, "Expired", "too old resource version: %s (%d)" % (rv_s, oldest - 1)).status()})
                    cur = None
        try:
            for ev in pending:
                chunk(ev)
            last = {}
            while cur is not None:
                with st.lock:
                    new = [e for e in st.events if e[0] > cur and e[1] is res]
                    if not new:
                        left = deadline - time.monotonic()
                        if left <= 0 or self.server.stopping:
                            break
                        st.cond.wait(min(left, 1.0))
                        new = [e for e in st.events if e[0] > cur and e[1] is res]
                    if st.events:
                        cur = max(cur, st.events[-1][0])
                out = []
                for _, _, etype, obj in new:
                    md = obj["metadata"]
                    k = (md.get("namespace", ""), md["name"])
                    now_m = self.matching(res, ns, lsel, fsel, obj)
                    was = last.get(k)
                    if etype == "MODIFIED" and not now_m:
                        if was:
                            out.append({"type": "DELETED", "object": obj})
                        last[k] = False
                        continue
                    if not now_m:
                        continue
                    if etype == "MODIFIED" and was is False:
                        etype = "ADDED"
                    last[k] = etype != "DELETED"
                    out.append({"type": etype, "object": obj})
                for ev in out:
                    chunk(ev)
                if time.monotonic() >= deadline:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            self.close_connection = True

    # ---- helpers for writes
    def parse_json_body(self, res=None):
        ct = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if ct == "application/vnd.kubernetes.protobuf" and self.command == "POST":
            try:
                return decode_pb_object(self.body, res)
            except (ValueError, UnicodeDecodeError, KeyError) as e:
                if "not modelled" in str(e):
                    raise unsupported_media(["application/json"])
                raise bad_request(str(e))
        if ct not in ("application/json", ""):
            raise unsupported_media(["application/json"])
        try:
            obj = json.loads(self.body or b"null")
        except ValueError as e:
            raise bad_request("couldn't get version/kind; json parse error: %s" % e)
        if not isinstance(obj, dict):
            raise bad_request("couldn't get version/kind; json parse error: json: cannot unmarshal "
                              "%s into Go value of type struct { APIVersion string "
                              "\"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                              "\"json:\\\"kind,omitempty\\\"\" }" % type(obj).__name__)
        return obj

    def dry_run(self):
        v = self.query.get("dryRun")
        if v is None:
            return False
        if v != "All":
            raise bad_request('Invalid dryRun value: "%s". Valid values: "All"' % v)
        return True

    def check_type(self, res, obj):
        if obj.get("apiVersion") and obj["apiVersion"] != res.gv:
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (obj["apiVersion"], res.gv))
        if obj.get("kind") and obj["kind"] != res.kind:
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                              % (obj["kind"], res.kind))

    def user_info(self):
        u = self._user or {}
        out = {"username": u.get("username", "")}
        if u.get("uid"):
            out["uid"] = u["uid"]
        out["groups"] = u.get("groups") or []
        if u.get("extra"):
            out["extra"] = u["extra"]
        return out

    def admit(self, op, res, sub, ns, name, obj, old, dry_run, opts_kind):
        opts = {"kind": opts_kind, "apiVersion": "meta.k8s.io/v1"}
        if dry_run:
            opts["dryRun"] = ["All"]
        if self.query.get("fieldManager"):
            opts["fieldManager"] = self.query["fieldManager"]
        a = Admission(self.server.state, op, res, sub, ns, name, obj, old, self.user_info(), dry_run, opts)
        try:
            return a.run()
        finally:
            self._warnings.extend(a.warnings)
            self._annotations.update(a.audit_annotations)

    def sa_admission(self, ns, pod):
        """The ServiceAccount admission plugin: default SA, token volume, mounts."""
        st = self.server.state
        spec = pod.setdefault("spec", {})
        sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = sa_name
        spec["serviceAccount"] = sa_name
        with st.lock:
            sa = st.store[BY_KIND[("v1", "ServiceAccount")]].get((ns, sa_name))
        if sa is None:
            raise KubeError(403, "Forbidden",
                            'pods "%s" is forbidden: error looking up service account %s/%s: '
                            'serviceaccount "%s" not found' % (pod["metadata"].get("name", ""), ns,
                                                              sa_name, sa_name),
                            {"name": pod["metadata"].get("name", ""), "kind": "pods"})
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa.get("automountServiceAccountToken", True)
        if not automount:
            return
        conts = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        if any(m.get("mountPath") == SA_MOUNT for c in conts for m in c.get("volumeMounts") or []):
            return
        vname = "kube-api-access-" + rand_suffix()
        spec.setdefault("volumes", []).append({"name": vname, "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                            "fieldPath": "metadata.namespace"}}]}}],
            "defaultMode": 420}})
        for c in conts:
            c.setdefault("volumeMounts", []).append({"name": vname, "readOnly": True, "mountPath": SA_MOUNT})
        tol = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tol):
                tol.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": 300})

    # ---- create
    def create(self, res, ns, obj=None, from_update=False):
        st = self.server.state
        if obj is None:
            obj = self.parse_json_body(res)
        self.check_type(res, obj)
        dry = self.dry_run()
        obj = copy.deepcopy(obj)
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
            md["namespace"] = ns
            with st.lock:
                if st.ns_labels(ns) is None:
                    raise not_found(BY_KIND[("v1", "Namespace")], ns)
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion") and not from_update:
            raise bad_request("resourceVersion should not be set on objects to be created")
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"):
            md.pop(k, None)
        if not md.get("name") and not md.get("generateName"):
            raise invalid(res, "", [{"reason": "FieldValueRequired",
                                     "message": "Required value: name or generateName is required",
                                     "field": "metadata.name"}])
        if md.get("name"):
            c = name_causes(md["name"], label=res.kind == "Namespace")
            if c:
                raise invalid(res, md["name"], c)
        obj = ordered(res, obj)
        obj["metadata"].pop("creationTimestamp", None)  # 1.37: a zero time is omitted, not null
        apply_defaults(res, obj)
        if res.kind == "Pod":
            self.sa_admission(ns, obj)
        obj = self.admit("CREATE", res, "", ns, md.get("name", ""), obj, None, dry, "CreateOptions")
        md = obj.setdefault("metadata", {})
        validate(res, obj, md.get("name") or md.get("generateName", ""))
        with st.lock:
            if not md.get("name"):
                for _ in range(10):
                    cand = md["generateName"] + rand_suffix()
                    if (ns, cand) not in st.store[res]:
                        md["name"] = cand
                        break
                else:
                    raise KubeError(500, "AlreadyExists", "generated name collision")
            elif (ns if res.namespaced else "", md["name"]) in st.store[res]:
                raise already_exists(res, md["name"])
            if self._objref:
                self._objref["name"] = md["name"]
            md["creationTimestamp"] = now_rfc3339()
            if dry:
                md.setdefault("uid", str(uuid.uuid4()))
                if res.generation:
                    md["generation"] = 1
                stored = ordered(res, obj)
            else:
                stored = st.put(res, obj, "ADDED")
                if res.kind == "Namespace":
                    st.ensure_ns_defaults(md["name"])
            out = copy.deepcopy(stored)
        return self.send(201, out)

    # ---- update / patch
    def do_write(self, res, ns, name, status_only=False):
        st = self.server.state
        dry = self.dry_run()
        if self.command == "PATCH":
            ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            allowed = [t for t in PATCH_TYPES if t != "application/apply-patch+yaml"]
            if ct not in allowed:
                raise unsupported_media(allowed)
            try:
                patch = json.loads(self.body or b"null")
            except ValueError as e:
                raise bad_request("error decoding patch: %s" % e)
        else:
            body = self.parse_json_body()
            self.check_type(res, body)
            bmd = body.get("metadata") or {}
            if bmd.get("name") and bmd["name"] != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                  % (bmd["name"], name))
            if res.namespaced and bmd.get("namespace") and bmd["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
        for attempt in range(5):
            with st.lock:
                cur = st.store[res].get((ns, name))
                if cur is None:
                    if self.command == "PUT" and res.create_on_update and not status_only:
                        break
                    raise not_found(res, name)
                cur = copy.deepcopy(cur)
            if self.command == "PATCH":
                new = self.apply_patch(res, name, cur, patch, ct)
            else:
                new = copy.deepcopy(body)
                if not (new.get("metadata") or {}).get("resourceVersion"):
                    new.setdefault("metadata", {})["resourceVersion"] = None
            nmd = new.setdefault("metadata", {}) if isinstance(new.get("metadata"), dict) else None
            if nmd is None:
                raise bad_request("metadata must be an object")
            want_rv = nmd.get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            if nmd.get("name", name) != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                  % (nmd.get("name"), name))
            new = self.merge_update(res, cur, new, status_only)
            if not status_only:
                new = self.admit("UPDATE", res, "", ns, name, new, strip_rv(cur), dry, "UpdateOptions")
                validate(res, new, name)
            with st.lock:
                latest = st.store[res].get((ns, name))
                if latest is None:
                    raise not_found(res, name)
                if latest["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                    if want_rv:
                        raise conflict(res, name)
                    continue  # unconditional write raced: redo on the latest object
                new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
                if canon(new) == canon(latest):
                    return self.send(200, copy.deepcopy(latest))
                if res.generation and not status_only and (
                        spec_of(new) != spec_of(latest) or
                        (res.kind == "Deployment" and new["metadata"].get("annotations") != latest["metadata"].get("annotations"))):
                    new["metadata"]["generation"] = int(latest["metadata"].get("generation", 1)) + 1
                if dry:
                    return self.send(200, ordered(res, new))
                md = new["metadata"]
                if md.get("deletionTimestamp") and not md.get("finalizers"):
                    st.store[res][(ns, name)] = ordered(res, new)
                    return self.send(200, st.delete(res, (ns, name)))
                return self.send(200, copy.deepcopy(st.put(res, new, "MODIFIED")))
        else:
            raise conflict(res, name)
        body.setdefault("metadata", {})["name"] = name
        return self.create(res, ns, body, from_update=True)

    def apply_patch(self, res, name, cur, patch, ct):
        try:
            if ct == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                try:
                    new = json_patch(cur, patch)
                except PatchError as e:
                    raise KubeError(422, "Invalid", "the server rejected our request due to an error in "
                                    "our request", {"causes": [{"reason": "UnexpectedServerResponse",
                                                                "message": str(e)}]})
            elif ct == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise bad_request("json: cannot unmarshal %s into Go value of type "
                                      "map[string]interface {}" % type(patch).__name__)
                new = merge_patch(cur, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("json: cannot unmarshal %s into Go value of type "
                                      "map[string]interface {}" % type(patch).__name__)
                new = strategic_merge(cur, patch)
        except PatchError as e:
            raise bad_request(str(e))
        if not isinstance(new, dict):
            raise bad_request("patched object is not a JSON object")
        return new

    def merge_update(self, res, cur, new, status_only):
        """What the registry keeps from the stored object on an update."""
        new = copy.deepcopy(new)
        new["kind"], new["apiVersion"] = res.kind, res.gv
        md = new["metadata"]
        cmd = cur["metadata"]
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                  "deletionGracePeriodSeconds"):
            if k in cmd:
                md[k] = cmd[k]
            else:
                md.pop(k, None)
        md["name"] = cmd["name"]
        if res.namespaced:
            md["namespace"] = cmd["namespace"]
        if status_only:
            out = copy.deepcopy(cur)
            if "status" in new:
                out["status"] = new["status"]
            return out
        if res.status and "status" in cur:
            new["status"] = copy.deepcopy(cur["status"])
        apply_defaults(res, new)
        return ordered(res, new)

    # ---- delete
    def delete(self, res, ns, name):
        st = self.server.state
        dry = self.dry_run()
        opts = {}
        if self.body and self.body.strip():
            try:
                opts = json.loads(self.body)
            except ValueError as e:
                raise bad_request("couldn't get version/kind; json parse error: %s" % e)
        cur = self.get_obj(res, ns, name)
        pre = (opts or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise KubeError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition '
                            'failed: UID in precondition: %s, UID in object meta: %s'
                            % (res.qualified, name, pre["uid"], cur["metadata"]["uid"]), _details(res, name))
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition '
                            'failed: ResourceVersion in precondition: %s, ResourceVersion in object '
                            'meta: %s' % (res.qualified, name, pre["resourceVersion"],
                                          cur["metadata"]["resourceVersion"]), _details(res, name))
        self.admit("DELETE", res, "", ns, name, None, cur, dry, "DeleteOptions")
        with st.lock:
            if (ns, name) not in st.store[res]:
                raise not_found(res, name)
            obj = st.store[res][(ns, name)]
            if dry:
                gone = copy.deepcopy(obj)
            elif obj["metadata"].get("finalizers"):
                obj = copy.deepcopy(obj)
                obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                obj["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                return self.send(200, copy.deepcopy(st.put(res, obj, "MODIFIED")))
            else:
                if res.kind == "Pod":
                    # an unbound pod goes at once, but as the real registry does it: first the
                    # update that sets deletionTimestamp (grace 0, generation +1), then the delete
                    obj = copy.deepcopy(obj)
                    obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                    obj["metadata"]["deletionGracePeriodSeconds"] = 0
                    obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
                    st.put(res, obj, "MODIFIED")
                gone = st.delete(res, (ns, name))
        if res.delete_returns_object:
            return self.send(200, gone)
        d = _details(res, name)
        d["uid"] = gone["metadata"]["uid"]
        return self.send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Success", "details": d})

    def delete_collection(self, res, ns):
        st = self.server.state
        lsel, fsel = self.selectors()
        dry = self.dry_run()
        with st.lock:
            keys = sorted(k for k, o in st.store[res].items()
                          if (not ns or k[0] == ns) and self.matching(res, ns, lsel, fsel, o))
            items = []
            for k in keys:
                items.append(strip_kind(copy.deepcopy(st.store[res][k]) if dry else st.delete(res, k)))
            rv = str(st.rv)
        return self.send(200, {"kind": res.kind + "List", "apiVersion": res.gv,
                               "metadata": {"resourceVersion": rv}, "items": items})

    # ---- authentication.k8s.io
    def token_review(self):
        st = self.server.state
        obj = self.parse_json_body()
        spec = obj.get("spec") or {}
        if not spec.get("token"):
            raise bad_request("token is required for TokenReview in authentication")
        with st.lock:
            user, auds, err = st.review_token(spec["token"], spec.get("audiences"))
        out_spec = {"token": spec["token"]}
        if spec.get("audiences"):
            out_spec["audiences"] = spec["audiences"]
        if user is not None:
            status = {"authenticated": True, "user": user, "audiences": auds}
        else:
            status = {"user": {}, "error": err}
        fields = {"f:spec": {"f:token": {}, **({"f:audiences": {}} if spec.get("audiences") else {})}}
        manager = (self.headers.get("User-Agent") or "unknown").split("/")[0] or "unknown"
        md = {"managedFields": [{"manager": manager, "operation": "Update",
                                 "apiVersion": "authentication.k8s.io/v1", "time": now_rfc3339(),
                                 "fieldsType": "FieldsV1", "fieldsV1": fields}]}
        return self.send(201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                               "metadata": md, "spec": out_spec, "status": status})

    def token_request(self, ns, name):
        st = self.server.state
        obj = self.parse_json_body()
        spec = dict(obj.get("spec") or {})
        exp = int(spec.get("expirationSeconds") or 3600)
        res = BY_KIND[("v1", "ServiceAccount")]
        if exp < 600:
            raise KubeError(422, "Invalid", 'TokenRequest.authentication.k8s.io "%s" is invalid: '
                            'spec.expirationSeconds: Invalid value: %d: may not specify a duration less '
                            'than 10 minutes' % (name, exp),
                            {"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                             "causes": [{"reason": "FieldValueInvalid",
                                         "message": "Invalid value: %d: may not specify a duration "
                                         "less than 10 minutes" % exp,
                                         "field": "spec.expirationSeconds"}]})
        pod = None
        ref = spec.get("boundObjectRef") or None
        with st.lock:
            sa = st.store[res].get((ns, name))
            if sa is None:
                raise not_found(res, name)
            if ref and ref.get("kind") == "Pod":
                p = st.store[BY_KIND[("v1", "Pod")]].get((ns, ref.get("name")))
                if p is None:
                    raise not_found(BY_KIND[("v1", "Pod")], ref.get("name"))
                pod = {"name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}
            auds = spec.get("audiences") or [API_AUDIENCE]
            tok, claims = st.mint_jwt(ns, name, auds, exp, pod=pod)
        spec["audiences"] = auds
        spec["expirationSeconds"] = exp
        spec.setdefault("boundObjectRef", None)
        return self.send(201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                               "metadata": {"name": name, "namespace": ns,
                                            "creationTimestamp": now_rfc3339(claims["iat"])},
                               "spec": spec,
                               "status": {"token": tok,
                                          "expirationTimestamp": now_rfc3339(claims["exp"])}})

    # ---- faults, audit
    def apply_faults(self, path):
        st = self.server.state
        with st.lock:
            hit = None
            for f in st.faults:
                if f.get("method") and f["method"].upper() != self.command:
                    continue
                if "regex" in f:
                    if not re.search(f["regex"], self.path):
                        continue
                elif not path.startswith(f.get("match", "")):
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
            try:
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        code = int(hit.get("status", 500))
        headers = {}
        if hit.get("retry_after") is not None:
            headers["Retry-After"] = hit["retry_after"]
        b = hit.get("body")
        if b is None:
            reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                       409: "Conflict", 410: "Expired", 429: "TooManyRequests",
                       500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
            msg = hit.get("message") or "injected fault"
            st_obj = KubeError(code, reasons.get(code, ""), msg, hit.get("details")).status()
            if hit.get("retry_after") is not None:
                st_obj.setdefault("details", {})["retryAfterSeconds"] = int(hit["retry_after"])
            self.send(code, st_obj, headers)
        elif isinstance(b, str):
            self.send(code, headers=headers, raw=b.encode())
        else:
            self.send(code, b, headers)
        return True

    def audit(self):
        st = self.server.state
        k = "%s %s %d" % (self.command, getattr(self, "_stat_path", "?"), self._status)
        with st.lock:
            st.stats["requests"][k] = st.stats["requests"].get(k, 0) + 1
        if not st.audit_file:
            return
        verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(self.command, self.command.lower())
        ref = self._objref
        if ref and not ref.get("name"):
            verb = {"get": "list", "delete": "deletecollection"}.get(verb, verb)
            if getattr(self, "query", {}).get("watch") in ("1", "true", "True"):
                verb = "watch"
        ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
              "auditID": self._audit_id, "stage": "ResponseComplete",
              "requestURI": self.path, "verb": verb,
              "user": self._user or {}, "sourceIPs": [self.client_address[0]],
              "userAgent": self.headers.get("User-Agent", "") if self.headers else ""}
        if ref:
            ev["objectRef"] = {k2: v for k2, v in ref.items() if v is not None}
        ev["responseStatus"] = {"metadata": {}, "code": self._status}
        ev["requestReceivedTimestamp"] = micro_rfc3339(self._t0)
        ev["stageTimestamp"] = micro_rfc3339()
        if self._annotations:
            ev["annotations"] = self._annotations
        with st.audit_lock:
            st.audit_file.write(json.dumps(ev, separators=(",", ":")) + "\n")
            st.audit_file.flush()


def openapi_v3(rest):
    """The OpenAPI v3 discovery kubectl needs to use server-side field validation: the root lists
    one document per group-version, each document has a PATCH operation per kind carrying
    x-kubernetes-group-version-kind and the fieldValidation parameter (kubectl's
    queryParamVerifierV3). No schemas: kubectl then builds strategic merge patches from its own
    compiled-in types, as it does when a cluster's OpenAPI lacks a kind."""
    gvs = []
    for r in RESOURCES:
        key = ("apis/%s/%s" % (r.group, r.version)) if r.group else "api/v1"
        if key not in gvs:
            gvs.append(key)
    if not rest:
        return {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (
            k, hashlib.sha512(k.encode()).hexdigest()[:128].upper())} for k in gvs}}
    key = "/".join(rest)
    if key not in gvs:
        return None
    paths = {}
    for r in RESOURCES:
        if (("apis/%s/%s" % (r.group, r.version)) if r.group else "api/v1") != key or \
                "patch" not in r.verbs:
            continue
        p = "/%s/%s%s/{name}" % (key, "namespaces/{namespace}/" if r.namespaced else "", r.plural)
        paths[p] = {"patch": {
            "description": "partially update the specified %s" % r.kind,
            "operationId": "patch%s" % r.kind,
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for n in ("dryRun", "fieldManager", "fieldValidation")] +
                          [{"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}}],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"},
            "paths": paths, "components": {"schemas": {}}}


def strip_rv(o):
    return copy.deepcopy(o)


def canon(o):
    o = copy.deepcopy(o)
    o.get("metadata", {}).pop("resourceVersion", None)
    return json.dumps(o, sort_keys=True)


def anonymous_forbidden(method, path, query):
    """What RBAC answers a request without credentials (the anonymous user, 403), as
    `<res> "<name>" is forbidden: User "system:anonymous" cannot <verb> resource ...`."""
    segs = [x for x in path.split("/") if x]
    who = 'User "system:anonymous" cannot'
    if segs[:2] == ["api", "v1"]:
        group, rest = "", segs[2:]
    elif segs[:1] == ["apis"] and len(segs) >= 3:
        group, rest = segs[1], segs[3:]
    else:
        return KubeError(403, "Forbidden", 'forbidden: %s get path "%s"' % (who, path), {})
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest:
        return KubeError(403, "Forbidden", 'forbidden: %s get path "%s"' % (who, path), {})
    res, name = rest[0], (rest[1] if len(rest) > 1 else "")
    if len(rest) > 2:
        res += "/" + rest[2]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if verb is None and method == "DELETE":
        verb = "delete" if name else "deletecollection"
    if verb is None:
        verb = "get" if name else ("watch" if query.get("watch") in ("1", "true", "True") else "list")
    where = ('in the namespace "%s"' % ns) if ns else "at the cluster scope"
    subject = ('%s "%s"' % (res.split("/")[0] + ("." + group if group else ""), name)) if name else \
        (res.split("/")[0] + ("." + group if group else ""))
    details = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = res.split("/")[0]
    return KubeError(403, "Forbidden", '%s is forbidden: %s %s resource "%s" in API group "%s" %s'
                     % (subject, who, verb, res, group, where), details)


def spec_of(o):
    if o.get("kind") == "MutatingWebhookConfiguration":
        return json.dumps(o.get("webhooks"), sort_keys=True)
    return json.dumps(o.get("spec"), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# control API (plain HTTP, 127.0.0.1 only)

class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-kube-control"
    sys_version = ""
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kube-standin control: %s\n" % (fmt % args))

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
            if n > 32 << 20:
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
            u = urllib.parse.urlsplit(self.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
            with st.lock:
                status, obj = self.dispatch(st, u.path.rstrip("/"), q, data)
        except (KeyError, ValueError, TypeError) as e:
            status, obj = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            status, obj = 500, {"error": str(e)}
        self.reply(status, obj)

    do_GET = do_POST = do_PUT = do_DELETE = do_any

    def dispatch(self, st, path, q, d):
        M = self.command
        if path == "/_standin/objects" and M == "GET":
            out = []
            for r in RESOURCES:
                if q.get("resource") and q["resource"] != r.plural:
                    continue
                for k in sorted(st.store[r]):
                    if q.get("namespace") and k[0] != q["namespace"]:
                        continue
                    if q.get("name") and k[1] != q["name"]:
                        continue
                    out.append(st.store[r][k])
            return 200, {"resourceVersion": str(st.rv), "objects": out}
        if path == "/_standin/objects" and M in ("POST", "PUT"):
            return 200, st.seed(d.get("object", d))
        if path == "/_standin/objects" and M == "DELETE":
            r = next(r for r in RESOURCES if r.plural == q["resource"])
            key = (q.get("namespace", "") if r.namespaced else "", q["name"])
            if key not in st.store[r]:
                return 404, {"error": "not found"}
            return 200, st.delete(r, key)
        if path == "/_standin/tokenreview" and M == "POST":
            if d.get("reset"):
                st.tokenreviews.clear()
            if d.get("token"):
                ent = {k: d[k] for k in ("authenticated", "user", "audiences", "error") if k in d}
                st.tokenreviews[d["token"]] = ent
            return 200, {"tokens": len(st.tokenreviews)}
        if path == "/_standin/tokenreview" and M == "GET":
            return 200, {"entries": [dict(v, token_sha256=hashlib.sha256(k.encode()).hexdigest())
                                     for k, v in st.tokenreviews.items()]}
        if path == "/_standin/users" and M == "POST":
            name = d["name"]
            st.users[d["token"]] = {"username": name,
                                    "uid": d.get("uid") or str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + name)),
                                    "groups": list(d.get("groups") or []) + ["system:authenticated"]}
            return 200, {"users": len(st.users)}
        if path == "/_standin/token" and M == "POST":
            tok, claims = st.mint_jwt(d["namespace"], d["service_account"], d.get("audiences"),
                                      int(d.get("ttl", 3600)), pod=d.get("pod"),
                                      now=d.get("iat"))
            return 200, {"token": tok, "claims": claims}
        if path == "/_standin/webhook-calls" and M == "GET":
            return 200, {"calls": st.webhook_calls}
        if path == "/_standin/webhook-calls" and M == "DELETE":
            st.webhook_calls.clear()
            return 200, {"calls": []}
        if path == "/_standin/services" and M == "POST":
            key = "%s/%s" % (d["namespace"], d["name"])
            if d.get("port"):
                key += ":%d" % int(d["port"])
            if d.get("address"):
                st.services[key] = d["address"]
            else:
                st.services.pop(key, None)
            return 200, {"services": st.services}
        if path == "/_standin/services" and M == "GET":
            return 200, {"services": st.services}
        if path == "/_standin/fault" and M == "POST":
            f = dict(d)
            if "match" not in f and "regex" not in f:
                raise ValueError("fault needs match or regex")
            if "regex" in f:
                re.compile(f["regex"])
            if f.get("kind", "status") not in ("status", "delay", "drop", "reset"):
                raise ValueError("unknown fault kind")
            f["count"] = int(f.get("count", 1))
            st.fault_seq += 1
            f["id"] = st.fault_seq
            st.faults.append(f)
            return 200, {"id": f["id"], "faults": len(st.faults)}
        if path == "/_standin/fault" and M == "DELETE":
            st.faults.clear()
            return 200, {"faults": 0}
        if path == "/_standin/fault" and M == "GET":
            return 200, {"faults": st.faults}
        if path == "/_standin/stats" and M == "GET":
            out = json.loads(json.dumps(st.stats))
            out["resourceVersion"] = st.rv
            out["webhook_calls"] = len(st.webhook_calls)
            return 200, out
        return 404, {"error": "unknown control endpoint %s %s" % (M, path)}


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
    srv.stopping = False
    return srv


def url_for(scheme, srv):
    host, port = srv.server_address[:2]
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d" % (scheme, host, port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="cloudtaser stand-in kube-apiserver")
    ap.add_argument("--config")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--control-listen")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--ca-cert", help="CA published in each namespace's kube-root-ca.crt ConfigMap")
    ap.add_argument("--ready-file")
    ap.add_argument("--audit-log")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    cfg = {}
    if a.config:
        with open(a.config, encoding="utf-8") as f:
            cfg = json.load(f)
    if a.ca_cert:
        with open(a.ca_cert, encoding="utf-8") as f:
            State.ca_pem = f.read()
    state = State(cfg, a.audit_log)
    ctx = None
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])  # no h2: Go clients fall back to HTTP/1.1
    srv = make_server(Handler, parse_listen(a.listen), state, a.verbose, ctx)
    state.serving_addr = url_for("https" if ctx else "http", srv).split("://", 1)[1]
    threads = [threading.Thread(target=srv.serve_forever, daemon=True)]
    ready = {"addr": url_for("https" if ctx else "http", srv), "pid": os.getpid()}
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
    srv.stopping = True
    if state.audit_file:
        with state.audit_lock:
            state.audit_file.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
