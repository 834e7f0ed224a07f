#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: cloudtaser-wrapper against a private OpenBao that is sealed,
# unsealed and whose token is revoked under it, logging in through the Kubernetes auth method
# of the shared cluster. Musl and ASan builds.
#   - sealed for the whole startup timeout: exit 69, saying the vault is sealed, workload not
#     started;
#   - sealed at the start, unsealed two seconds later: retried, the workload starts;
#   - the running wrapper's token revoked, then a new version written: the rotation check's 403
#     makes it log in again at once, and the new version is delivered.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster --own-bao 1
ns=$T-faults
real_ns "$ns" && kubectl -n "$ns" create serviceaccount app > /dev/null
val="f-$(rand_hex 12)"
bao kv put -mount=secret app/db password="$val" > /dev/null &&
    bao_policy read 'path "secret/data/app/*" { capabilities = ["read"] }' &&
    bao write auth/kubernetes/role/app bound_service_account_names=app \
        bound_service_account_namespaces="$ns" policies=read ttl=10m > /dev/null &&
    kube_token "$ns" app > "$work/app.jwt" && chmod 644 "$work/app.jwt"
ok $? "a private OpenBao with Kubernetes auth against the cluster"
K=(VAULT_AUTH_ROLE=app "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" CLOUDTASER_SECRET_PATHS=secret/data/app/db
    CLOUDTASER_ENV_MAP=password=PGPASSWORD)

for f in $(wl_flavours); do
    wl_use "$f" || continue
    "$top/tests/cluster/openbao.sh" seal "$BAO_DIR" > /dev/null 2>&1
    wrun "$f-sealed" "${K[@]}" CLOUDTASER_STARTUP_TIMEOUT=3s -- "$WL" say started
    [ $rc -eq 69 ] && ! grep -q started "$work/$f-sealed.out" && grep -qi 'seal' "$work/$f-sealed.err"
    ok $? "$f: sealed for the whole startup timeout: exit 69, the log says sealed" || show "$f-sealed"

    wstart "$f-unseal" "${K[@]}" CLOUDTASER_STARTUP_TIMEOUT=60s -- "$WL" env-hash PGPASSWORD
    pid=$wpid
    sleep 2
    "$top/tests/cluster/openbao.sh" unseal "$BAO_DIR" > "$work/unseal.log" 2>&1
    wwait "$pid" 60
    [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$val") len=${#val}" "$work/$f-unseal.out"
    ok $? "$f: sealed at the start, unsealed 2 s later: retried, the workload starts" || show "$f-unseal"
done

for f in $(wl_flavours); do
    wl_use "$f" || continue
    bao kv put -mount=secret "app/rot-$f" password=one > /dev/null
    wstart "$f-revoke" VAULT_AUTH_ROLE=app "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/app/rot-$f" CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s -- "$WL" env-hash PGPASSWORD sleep 60
    pid=$wpid
    wait_grep "$work/$f-revoke.out" "sha256=$(sha one)" 20 "$pid"
    ok $? "$f: running" || show "$f-revoke"
    # Every token of the role: revoke them all by their accessors.
    for a in $(bao list -format=json auth/token/accessors | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))'); do
        pol=$(bao token lookup -format=json -accessor "$a" 2> /dev/null | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["data"].get("policies") or []))' 2> /dev/null)
        case ",$pol," in *,read,*) bao token revoke -accessor "$a" > /dev/null ;; esac
    done
    bao kv put -mount=secret "app/rot-$f" password=two > /dev/null
    wait_grep "$work/$f-revoke.out" "sha256=$(sha two)" 20 "$pid"
    ok $? "$f: its token revoked, the next check logs in again and the new version is delivered" || show "$f-revoke"
    kill -TERM "$pid" 2> /dev/null
    wwait "$pid" 10
done
! grep -rqF "$val" "$work"/*.out "$work"/*.err
ok $? "no secret value in any output or log"

tap_done
