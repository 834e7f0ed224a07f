#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A real Vault client (Debian's python3-hvac) drives the stand-in: every call's result checked.

--target real: the same session against a real OpenBao (tests/standin/realvault.py), so the
stand-in and the real server are held to the same client-visible behaviour; the few steps that
need the stand-in's clock or control API are replaced there by what the real server can do.
"""

import os
import sys

TOP = os.environ.get("CLOUDTASER_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(TOP, "tests/standin"))
from standin import Standin  # noqa: E402

REAL = "--target=real" in sys.argv or sys.argv[-2:] == ["--target", "real"]
if REAL:
    from realvault import RealVault, real_or_skip  # noqa: E402
    real_or_skip()

import hvac  # noqa: E402
import hvac.exceptions  # noqa: E402

n = 0
failed = 0


def ok(cond, name, diag=None):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond and diag is not None:
        for line in str(diag).splitlines():
            print("# " + line)
    return cond


def raises(exc, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except exc as e:
        return e
    except Exception as e:  # wrong exception type
        return ("wrong exception", type(e).__name__, e)
    return ("no exception", r)


CONFIG = {
    "mounts": [{"path": "secret", "type": "kv", "options": {"version": "2"}},
               {"path": "kv", "type": "kv", "options": {"version": "1"}}],
    "auth": [{"path": "k8s-prod", "type": "kubernetes", "roles": {
        "app": {"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["prod"],
                "token_policies": ["app"], "token_ttl": 300, "token_max_ttl": 900}}}],
    "policies": {"app": 'path "secret/data/app/*" { capabilities = ["read", "create", "update"] }\n'
                        'path "secret/metadata/app/*" { capabilities = ["read", "list"] }\n'},
}


def run(v):
    c = hvac.Client(url=v.addr, token=v.root_token, verify=v.ca)

    # sys
    ok(c.sys.is_initialized() is True, "sys.is_initialized")
    ok(c.sys.is_sealed() is False, "sys.is_sealed")
    h = c.sys.read_health_status(method="GET")
    ok(isinstance(h, dict) and h["initialized"] and not h["sealed"] and not h["standby"], "sys.read_health_status GET", h)
    r = c.sys.read_health_status(method="HEAD")
    ok(getattr(r, "status_code", None) == 200, "sys.read_health_status HEAD", r)
    ok(c.is_authenticated() is True, "root token authenticates (lookup-self)")

    # mounts and auth methods
    r = c.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    ok(getattr(r, "status_code", None) == 204, "sys.enable_secrets_engine kv v2 -> 204", r)
    m = c.sys.list_mounted_secrets_engines()
    ok(m["team/"]["options"]["version"] == "2" and m["data"]["secret/"]["type"] == "kv"
       and "kv/" in m, "sys.list_mounted_secrets_engines", sorted(m))
    e = raises(hvac.exceptions.InvalidRequest, c.sys.enable_secrets_engine, "kv", path="team")
    ok(isinstance(e, hvac.exceptions.InvalidRequest) and "path is already in use at team/" in str(e),
       "enable on a used path: InvalidRequest 'path is already in use'", e)
    ok(c.sys.retrieve_mount_option("team", "version") == "2", "sys.retrieve_mount_option")
    r = c.sys.enable_auth_method("kubernetes", path="kubernetes")
    ok(getattr(r, "status_code", None) == 204, "sys.enable_auth_method kubernetes", r)
    a = c.sys.list_auth_methods()
    ok(a["kubernetes/"]["type"] == "kubernetes" and a["data"]["k8s-prod/"]["type"] == "kubernetes"
       and "token/" in a, "sys.list_auth_methods", sorted(a))
    r = c.sys.disable_secrets_engine("team")
    ok(getattr(r, "status_code", None) == 204 and "team/" not in c.sys.list_mounted_secrets_engines(),
       "sys.disable_secrets_engine", r)

    # policies
    pol = 'path "kv/app/*" {\n  capabilities = ["read", "list"]\n}\n'
    r = c.sys.create_or_update_policy("kvapp", pol)
    ok(getattr(r, "status_code", None) == 204, "sys.create_or_update_policy", r)
    p = c.sys.read_policy("kvapp")
    ok(p["rules"] == pol and p["data"]["name"] == "kvapp", "sys.read_policy (legacy sys/policy)", p)
    lst = c.sys.list_policies()
    ok({"kvapp", "app", "default", "root"} <= set(lst["data"]["policies"]), "sys.list_policies", lst)
    acl = c.sys.read_acl_policy("kvapp") if hasattr(c.sys, "read_acl_policy") else None
    if acl is not None:
        ok(acl["data"]["policy"] == pol, "sys.read_acl_policy (sys/policies/acl)", acl)
    else:
        ok(c.adapter.get("/v1/sys/policies/acl/kvapp")["data"]["policy"] == pol, "GET sys/policies/acl via adapter")
    lacl = c.adapter.list("/v1/sys/policies/acl")
    ok("kvapp" in lacl["data"]["keys"], "LIST sys/policies/acl via adapter", lacl)
    e = raises(hvac.exceptions.InvalidRequest, c.sys.create_or_update_policy, "bad", 'path "x" { capabilities = ["fly"] }')
    ok(isinstance(e, hvac.exceptions.InvalidRequest) and "failed to parse policy" in str(e), "invalid policy rejected", e)
    r = c.sys.delete_policy("kvapp")
    ok(getattr(r, "status_code", None) == 204, "sys.delete_policy", r)
    e = raises(hvac.exceptions.InvalidPath, c.sys.read_policy, "kvapp")
    ok(isinstance(e, hvac.exceptions.InvalidPath), "deleted policy reads 404", e)

    # kv v1
    kv1 = c.secrets.kv.v1
    r = kv1.create_or_update_secret("app/cfg", {"user": "u", "pass": "p1"}, mount_point="kv")
    ok(getattr(r, "status_code", None) == 204, "kv.v1.create_or_update_secret (POST)", r)
    r = kv1.create_or_update_secret("app/cfg2", {"a": "b"}, method="PUT", mount_point="kv")
    ok(getattr(r, "status_code", None) == 204, "kv.v1.create_or_update_secret (PUT)", r)
    s = kv1.read_secret("app/cfg", mount_point="kv")
    ok(s["data"] == {"user": "u", "pass": "p1"} and s["lease_duration"] == 2764800, "kv.v1.read_secret", s)
    lst = kv1.list_secrets("app", mount_point="kv")
    ok(lst["data"]["keys"] == ["cfg", "cfg2"], "kv.v1.list_secrets", lst)
    r = kv1.delete_secret("app/cfg2", mount_point="kv")
    e = raises(hvac.exceptions.InvalidPath, kv1.read_secret, "app/cfg2", mount_point="kv")
    ok(getattr(r, "status_code", None) == 204 and isinstance(e, hvac.exceptions.InvalidPath),
       "kv.v1.delete_secret then InvalidPath", e)

    # kv v2
    kv2 = c.secrets.kv.v2
    r = kv2.configure(max_versions=5, mount_point="secret")
    ok(getattr(r, "status_code", None) == 204, "kv.v2.configure", r)
    cfg = kv2.read_configuration(mount_point="secret")
    ok(cfg["data"]["max_versions"] == 5 and cfg["data"]["cas_required"] is False, "kv.v2.read_configuration", cfg)
    w = kv2.create_or_update_secret("app/db", {"password": "one"}, cas=0, mount_point="secret")
    ok(w["data"]["version"] == 1 and w["data"]["destroyed"] is False, "kv.v2.create_or_update_secret cas=0", w)
    w = kv2.create_or_update_secret("app/db", {"password": "two"}, cas=1, mount_point="secret")
    ok(w["data"]["version"] == 2, "kv.v2 write with cas=1", w)
    e = raises(hvac.exceptions.InvalidRequest, kv2.create_or_update_secret, "app/db", {"password": "x"}, cas=1,
               mount_point="secret")
    ok(isinstance(e, hvac.exceptions.InvalidRequest) and
       "check-and-set parameter did not match the current version" in str(e), "kv.v2 cas mismatch", e)
    s = kv2.read_secret_version("app/db", mount_point="secret")
    ok(s["data"]["data"] == {"password": "two"} and s["data"]["metadata"]["version"] == 2, "kv.v2.read_secret_version latest", s)
    s = kv2.read_secret_version("app/db", version=1, mount_point="secret")
    ok(s["data"]["data"] == {"password": "one"}, "kv.v2.read_secret_version version=1", s)
    p = kv2.patch("app/db", {"user": "admin"}, mount_point="secret")
    s = kv2.read_secret_version("app/db", mount_point="secret")
    ok(p["data"]["version"] == 3 and s["data"]["data"] == {"password": "two", "user": "admin"}, "kv.v2.patch", (p, s))
    r = kv2.update_metadata("app/db", max_versions=3, cas_required=False, mount_point="secret")
    ok(getattr(r, "status_code", None) == 204, "kv.v2.update_metadata", r)
    # hvac 0.11 has no custom_metadata argument: the raw adapter sends the same request
    r = c.adapter.post("/v1/secret/metadata/app/db", json={"custom_metadata": {"owner": "team"}})
    ok(getattr(r, "status_code", None) == 204, "metadata write with custom_metadata", r)
    md = kv2.read_secret_metadata("app/db", mount_point="secret")
    ok(md["data"]["current_version"] == 3 and md["data"]["max_versions"] == 3
       and md["data"]["custom_metadata"] == {"owner": "team"} and sorted(md["data"]["versions"]) == ["1", "2", "3"],
       "kv.v2.read_secret_metadata", md)
    kv2.create_or_update_secret("app/other", {"a": "b"}, mount_point="secret")
    kv2.create_or_update_secret("app/sub/x", {"a": "b"}, mount_point="secret")
    lst = kv2.list_secrets("app", mount_point="secret")
    ok(lst["data"]["keys"] == ["db", "other", "sub/"], "kv.v2.list_secrets", lst)
    r = kv2.delete_secret_versions("app/db", [3], mount_point="secret")
    e = raises(hvac.exceptions.InvalidPath, kv2.read_secret_version, "app/db", mount_point="secret")
    ok(getattr(r, "status_code", None) == 204 and isinstance(e, hvac.exceptions.InvalidPath),
       "kv.v2.delete_secret_versions, then reading it is 404", e)
    r = kv2.undelete_secret_versions("app/db", [3], mount_point="secret")
    s = kv2.read_secret_version("app/db", mount_point="secret")
    ok(getattr(r, "status_code", None) == 204 and s["data"]["data"]["user"] == "admin", "kv.v2.undelete_secret_versions", s)
    r = kv2.destroy_secret_versions("app/db", [1], mount_point="secret")
    md = kv2.read_secret_metadata("app/db", mount_point="secret")
    ok(getattr(r, "status_code", None) == 204 and md["data"]["versions"]["1"]["destroyed"] is True,
       "kv.v2.destroy_secret_versions", md["data"]["versions"])
    r = kv2.delete_latest_version_of_secret("app/other", mount_point="secret")
    md = kv2.read_secret_metadata("app/other", mount_point="secret")
    ok(getattr(r, "status_code", None) == 204 and md["data"]["versions"]["1"]["deletion_time"] != "",
       "kv.v2.delete_latest_version_of_secret", md["data"]["versions"])
    r = kv2.delete_metadata_and_all_versions("app/other", mount_point="secret")
    e = raises(hvac.exceptions.InvalidPath, kv2.read_secret_metadata, "app/other", mount_point="secret")
    ok(getattr(r, "status_code", None) == 204 and isinstance(e, hvac.exceptions.InvalidPath),
       "kv.v2.delete_metadata_and_all_versions", e)

    # kubernetes login with a non-default mount point
    jwt = v.jwt("prod", "app")
    k = hvac.Client(url=v.addr, verify=v.ca)
    res = hvac.api.auth_methods.Kubernetes(k.adapter).login(role="app", jwt=jwt, mount_point="k8s-prod")
    ok(res["auth"]["policies"] == ["app", "default"] and res["auth"]["lease_duration"] == 300
       and res["auth"]["metadata"]["service_account_namespace"] == "prod" and k.token == res["auth"]["client_token"],
       "Kubernetes.login(role, jwt, mount_point) sets the client token", res["auth"])
    ok(k.is_authenticated(), "logged-in client is authenticated")
    s = k.secrets.kv.v2.read_secret_version("app/db", mount_point="secret")
    ok(s["data"]["data"]["user"] == "admin", "logged-in client reads what its policy allows", s)
    e = raises(hvac.exceptions.Forbidden, k.secrets.kv.v1.read_secret, "app/cfg", mount_point="kv")
    ok(isinstance(e, hvac.exceptions.Forbidden) and "permission denied" in str(e), "policy denies kv/: Forbidden", e)
    e = raises(hvac.exceptions.Forbidden, hvac.api.auth_methods.Kubernetes(hvac.Client(url=v.addr, verify=v.ca).adapter).login,
               role="app", jwt=v.jwt("dev", "app"), mount_point="k8s-prod")
    ok(isinstance(e, hvac.exceptions.Forbidden) and "namespace not authorized" in str(e), "login from an unbound namespace", e)
    e = raises(hvac.exceptions.InvalidRequest, hvac.api.auth_methods.Kubernetes(hvac.Client(url=v.addr, verify=v.ca).adapter).login,
               role="nope", jwt=jwt, mount_point="k8s-prod")
    ok(isinstance(e, hvac.exceptions.InvalidRequest) and 'invalid role name "nope"' in str(e), "login with unknown role", e)

    # token self-service
    t = k.auth.token
    me = t.lookup_self()
    ok(me["data"]["ttl"] <= 300 and me["data"]["path"] == "auth/k8s-prod/login" and me["data"]["policies"] == ["app", "default"]
       and me["data"]["meta"]["role"] == "app", "token.lookup_self", me["data"])
    if not v.real:
        v.control("POST", "/_standin/clock", {"advance_seconds": 100})
        me = t.lookup_self()
        ok(195 <= me["data"]["ttl"] <= 200, "lookup_self ttl follows the stand-in clock", me["data"]["ttl"])
    rn = t.renew_self(increment="10m")
    ok(rn["auth"]["lease_duration"] == 600 and rn["auth"]["client_token"] == k.token, "token.renew_self(increment=10m)", rn["auth"])
    if not v.real:
        v.control("POST", "/_standin/clock", {"advance_seconds": 500})
    rn = t.renew_self(increment="1h")
    # the real server's clock runs: the cap is what is left of the 900 s max TTL (a few s gone)
    cap = 300 if not v.real else 900
    ok(cap - 60 <= rn["auth"]["lease_duration"] <= cap and rn["warnings"] and "capped" in rn["warnings"][0],
       "renew_self past token_max_ttl is capped with a warning", rn)
    r = t.revoke_self()
    ok(getattr(r, "status_code", None) == 204, "token.revoke_self -> 204", r)
    e = raises(hvac.exceptions.Forbidden, t.lookup_self)
    ok(isinstance(e, hvac.exceptions.Forbidden), "after revoke_self: Forbidden", e)
    ok(k.is_authenticated() is False, "after revoke_self: not authenticated")

    # token create by root, used and looked up
    ct = c.auth.token.create(policies=["app"], ttl="1h", meta={"purpose": "test"})
    ok(ct["auth"]["policies"] == ["app", "default"] and ct["auth"]["lease_duration"] == 3600
       and ct["auth"]["metadata"] == {"purpose": "test"}, "token.create", ct["auth"])
    t2 = hvac.Client(url=v.addr, verify=v.ca, token=ct["auth"]["client_token"])
    ok(t2.auth.token.lookup_self()["data"]["meta"] == {"purpose": "test"}, "created token works")

    # sealing through the API, then unseal via the control API
    c.sys.seal()
    ok(c.sys.is_sealed() is True, "sys.seal -> sealed")
    e = raises(hvac.exceptions.VaultDown, kv2.read_secret_version, "app/db", mount_point="secret")
    ok(isinstance(e, hvac.exceptions.VaultDown) and "Vault is sealed" in str(e), "sealed: VaultDown 'Vault is sealed'", e)
    keys = v.unseal_keys if v.real else v.control("GET", "/_standin/unseal-keys")["keys"]
    st = c.sys.submit_unseal_keys(keys)
    ok(st["sealed"] is False and c.sys.is_sealed() is False, "sys.submit_unseal_keys unseals", st)


def main():
    try:
        with (RealVault if REAL else Standin)(CONFIG) as v:
            run(v)
    except Exception as e:
        import traceback
        ok(False, "hvac session raised %s: %s" % (type(e).__name__, e), traceback.format_exc())
    print("1..%d" % n)
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
