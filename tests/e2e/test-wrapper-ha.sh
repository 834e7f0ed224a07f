#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper against what the nodes of a highly available vault answer (the
# stand-in's HA knobs, docs/protocol-vault.md "High availability"), musl and ASan builds:
#   - 412 "required index state not present" x3 after the login (a Vault Enterprise performance
#     standby): retried, the workload starts with its secret;
#   - 403 x2 on the mount lookup after the login (an OpenBao 2.5+ standby the new token has not
#     reached): retried, the workload starts; a 403 that lasts still ends in 77, the denial
#     logged, the workload never started;
#   - 307 on the login to VAULT_ADDR's own address: followed (method, body), the workload starts; a 307
#     to another address (the stand-in's second listener): exit 69 with "redirect ... not
#     followed" in the log, not a TLS error, and nothing sent to that address;
#   - VAULT_NAMESPACE=team-a: login, mount lookup and read inside the namespace (its own auth
#     mount, policy and secret), every request carrying X-Vault-Namespace.
# The knobs are global to the stand-in, so the runs go one after the other.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

cfg=$(mktemp "${TMPDIR:-/tmp}/ct-ha-config.XXXXXX.json") || exit 1
role='{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["demo"], "token_ttl": "1h", "token_policies": '
read_policy='path \"secret/data/app/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/app/*\" { capabilities = [\"read\"] }\n'
cat > "$cfg" <<JSON
{
  "namespaces": ["team-a"],
  "mounts": [{"path": "secret", "type": "kv", "options": {"version": "2"}},
             {"path": "secret", "type": "kv", "options": {"version": "2"}, "namespace": "team-a"}],
  "auth": [{"path": "kubernetes", "type": "kubernetes", "roles": {"demo": $role ["app-read"]}}},
           {"path": "kubernetes", "type": "kubernetes", "namespace": "team-a",
            "roles": {"demo": $role ["team-read"]}}}],
  "policies": {"app-read": "$read_policy"},
  "namespace_policies": {"team-a": {"team-read": "$read_policy"}},
  "secrets": [{"path": "secret/app/db", "data": {"password": "root-value"}},
              {"path": "secret/app/db", "namespace": "team-a", "data": {"password": "team-a-value"}}]
}
JSON
wl_setup "$cfg"
rm -f "$cfg"
P=CLOUDTASER_SECRET_PATHS=secret/app/db
M=CLOUDTASER_ENV_MAP=password=PGPASSWORD
second=$(standin_control POST /_standin/listener '{}' | sed -n 's/.*"addr": "\([^"]*\)".*/\1/p')
[ -n "$second" ] || { echo "Bail out! no second stand-in listener"; exit 1; }

started_with() { grep -qx "env PGPASSWORD sha256=$(sha "$1") len=${#1}" "$work/$2.out"; }
ha() { standin_control POST /_standin/ha "$1" > /dev/null; }

for f in $(wl_flavours); do
    wl_use "$f" || continue

    ha '{"reset": true, "index_412": 3}'
    wrun $f-412 $P "$M" -- "$WL" env-hash PGPASSWORD
    [ $rc -eq 0 ] && started_with root-value $f-412
    ok $? "$f: 412 x3 after the login (performance standby): retried, the workload started" || show $f-412

    ha '{"reset": true, "mount_403": 2}'
    wrun $f-403 $P "$M" -- "$WL" env-hash PGPASSWORD
    [ $rc -eq 0 ] && started_with root-value $f-403
    ok $? "$f: 403 x2 on the mount lookup just after the login: retried, the workload started" || show $f-403

    ha '{"reset": true, "mount_403": -1}'
    wrun $f-403-lasting $P "$M" -- "$WL" env-hash PGPASSWORD
    [ $rc -eq 77 ] && grep -q "permission denied" "$work/$f-403-lasting.err" && ! [ -s "$work/$f-403-lasting.out" ]
    ok $? "$f: a lasting 403 still ends in 77 within the startup timeout, the workload not started (rc $rc)" ||
        show $f-403-lasting

    ha '{"reset": true, "redirect": {"to": 0, "count": 1}}'
    standin_control DELETE /_standin/requests > /dev/null
    wrun $f-307 $P "$M" -- "$WL" env-hash PGPASSWORD
    log=$(standin_control GET /_standin/requests)
    [ $rc -eq 0 ] && started_with root-value $f-307 &&
        grep -q '"method": "POST", "path": "/v1/auth/kubernetes/login", "status": 307' <<< "$log" &&
        grep -q '"method": "POST", "path": "/v1/auth/kubernetes/login", "status": 200' <<< "$log"
    ok $? "$f: 307 on the login to VAULT_ADDR itself: the POST followed with its body, the workload started" ||
        { show $f-307; diag "$log"; }

    ha '{"reset": true, "redirect": {"to": 1, "count": -1}}'
    standin_control DELETE /_standin/requests > /dev/null
    wrun $f-307-elsewhere $P "$M" -- "$WL" env-hash PGPASSWORD
    log=$(standin_control GET /_standin/requests)
    [ $rc -eq 69 ] && grep -q "redirect to ${second} not followed: not the address in VAULT_ADDR" "$work/$f-307-elsewhere.err" &&
        ! grep -qi "tls" "$work/$f-307-elsewhere.err" && ! grep -q '"listener": 1' <<< "$log"
    ok $? "$f: 307 to another address: 69, logged as a redirect not followed (not TLS), nothing sent there (rc $rc)" ||
        show $f-307-elsewhere
    ha '{"reset": true}'

    standin_control DELETE /_standin/requests > /dev/null
    wrun $f-ns $P "$M" VAULT_NAMESPACE=team-a -- "$WL" env-hash PGPASSWORD
    log=$(standin_control GET /_standin/requests)
    total=$(grep -o '"listener"' <<< "$log" | wc -l)
    inns=$(grep -o '"namespace": "team-a"' <<< "$log" | wc -l)
    [ $rc -eq 0 ] && started_with team-a-value $f-ns && [ "$total" -ge 3 ] && [ "$total" = "$inns" ] &&
        grep -q '"path": "/v1/auth/kubernetes/login", "status": 200, "namespace": "team-a"' <<< "$log" &&
        grep -q '"path": "/v1/sys/internal/ui/mounts/secret/app/db", "status": 200, "namespace": "team-a"' <<< "$log" &&
        grep -q '"path": "/v1/secret/data/app/db", "status": 200, "namespace": "team-a"' <<< "$log"
    ok $? "$f: VAULT_NAMESPACE=team-a: the namespace's own login, policy and secret; all $total requests carried the header ($inns)" ||
        { show $f-ns; diag "$log"; }
done
tap_done
