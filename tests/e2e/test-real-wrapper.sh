#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: cloudtaser-wrapper against OpenBao (built from its Go module,
# raft storage, TLS), logging in through the Kubernetes auth method, whose TokenReview the real
# kube-apiserver answers, with service-account JWTs from the TokenRequest API (the API server's
# audience, as a pod's projected token has). Musl and ASan builds.
#   - KV v2 and KV v1 (the mount's version found through sys/internal/ui/mounts), token and
#     Kubernetes auth;
#   - a policy that does not cover the path: 77; a role bound to another service account: 77;
#     a missing field: 65; a JWT for another audience: 77;
#   - a namespace (VAULT_NAMESPACE): login and reads inside it, its secret not visible outside;
#   - renewal: a token with a 3 s TTL is renewed while the workload runs, and one at its max TTL
#     is replaced by a fresh login; rotation=restart delivers a new version.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster
ns=$T-apps
real_ns "$ns" || { echo "Bail out! namespace $ns"; exit 1; }
kubectl -n "$ns" create serviceaccount app > /dev/null
kubectl -n "$ns" create serviceaccount other > /dev/null

v2="v2-$(rand_hex 12)"
v1="v1-$(rand_hex 12)"
bao kv put -mount=secret "$T/db" password="$v2" username=app > /dev/null &&
    bao write "kv/$T/cfg" api_key="$v1" > /dev/null
ok $? "secrets written to OpenBao (KV v2 at secret/, KV v1 at kv/)"
bao_policy "$T-read" "path \"secret/data/$T/*\" { capabilities = [\"read\"] }
path \"kv/$T/*\" { capabilities = [\"read\"] }"
bao_policy "$T-none" "path \"secret/data/$T/nothing\" { capabilities = [\"read\"] }"
bao write "auth/kubernetes/role/$T-app" bound_service_account_names=app \
    bound_service_account_namespaces="$ns" policies="$T-read" ttl=10m > /dev/null &&
    bao write "auth/kubernetes/role/$T-deny" bound_service_account_names=app \
        bound_service_account_namespaces="$ns" policies="$T-none" ttl=10m > /dev/null
# A role that names the audience its JWTs must carry (the API server's, as a pod's projected
# token has). Without one, OpenBao sends the JWT's own audience in its TokenReview, so a token
# minted for any audience logs in: roles should set it.
bao write "auth/kubernetes/role/$T-audience" bound_service_account_names=app \
    bound_service_account_namespaces="$ns" policies="$T-read" ttl=10m \
    audience=https://kubernetes.default.svc.cluster.local > /dev/null
ok $? "Kubernetes auth roles written"

kube_token "$ns" app > "$work/app.jwt" && kube_token "$ns" other > "$work/other.jwt" &&
    kube_token "$ns" app not-the-api-server > "$work/aud.jwt"
ok $? "service-account JWTs from the TokenRequest API"
chmod 644 "$work"/*.jwt

K=(VAULT_AUTH_ROLE=$T-app "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt")
for f in $(wl_flavours); do
    wl_use "$f" || continue
    wrun "$f-v2" "${K[@]}" "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        -- "$WL" env-hash PGPASSWORD env-hash username
    [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$v2") len=${#v2}" "$work/$f-v2.out" &&
        grep -qx "env username missing" "$work/$f-v2.out"
    ok $? "$f: KV v2 through Kubernetes auth: the workload has exactly the mapped field" || show "$f-v2"

    wrun "$f-v1" "${K[@]}" "CLOUDTASER_SECRET_PATHS=kv/$T/cfg" -- "$WL" env-hash API_KEY
    [ $rc -eq 0 ] && grep -qx "env API_KEY sha256=$(sha "$v1") len=${#v1}" "$work/$f-v1.out"
    ok $? "$f: KV v1 found through the mount lookup, every field exported" || show "$f-v1"

    wrun "$f-both" "${K[@]}" "CLOUDTASER_SECRET_PATHS=secret/$T/db,kv/$T/cfg" \
        "CLOUDTASER_ENV_MAP=password=PGPASSWORD;api_key=API_KEY" -- "$WL" env-hash PGPASSWORD env-hash API_KEY
    [ $rc -eq 0 ] && grep -qx "env PGPASSWORD sha256=$(sha "$v2") len=${#v2}" "$work/$f-both.out" &&
        grep -qx "env API_KEY sha256=$(sha "$v1") len=${#v1}" "$work/$f-both.out"
    ok $? "$f: a KV v2 path given without data/ and a KV v1 path in one start" || show "$f-both"

    wrun "$f-deny" VAULT_AUTH_ROLE=$T-deny "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" -- "$WL" say started
    [ $rc -eq 77 ] && ! grep -q started "$work/$f-deny.out" && grep -q "secret/data/$T/db" "$work/$f-deny.err"
    ok $? "$f: a policy that does not cover the path: exit 77 naming the path, workload not started" || show "$f-deny"

    wrun "$f-sa" VAULT_AUTH_ROLE=$T-app "CLOUDTASER_SA_TOKEN_PATH=$work/other.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" -- "$WL" say started
    [ $rc -eq 77 ] && ! grep -q started "$work/$f-sa.out"
    ok $? "$f: a service account the role is not bound to: login refused, exit 77" || show "$f-sa"

    wrun "$f-aud" VAULT_AUTH_ROLE=$T-audience "CLOUDTASER_SA_TOKEN_PATH=$work/aud.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" -- "$WL" say started
    [ $rc -eq 77 ] && ! grep -q started "$work/$f-aud.out"
    ok $? "$f: a JWT for another audience than the role's: the TokenReview fails, exit 77" || show "$f-aud"
    wrun "$f-aud-ok" VAULT_AUTH_ROLE=$T-audience "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" -- "$WL" say started
    [ $rc -eq 0 ] && grep -q started "$work/$f-aud-ok.out"
    ok $? "$f: the API server's audience, as a pod's token has, is accepted by that role" || show "$f-aud-ok"

    wrun "$f-field" "${K[@]}" "CLOUDTASER_SECRET_PATHS=secret/data/$T/db" CLOUDTASER_ENV_MAP=nope=NOPE \
        -- "$WL" say started
    [ $rc -eq 65 ] && grep -q "'nope'" "$work/$f-field.err"
    ok $? "$f: a missing field: exit 65 naming it" || show "$f-field"

    ! grep -rqF -e "$v2" -e "$v1" "$work"/$f-*.out "$work"/$f-*.err
    ok $? "$f: no secret value in any output or log"
done

# --- a namespace: its own KV mount and Kubernetes auth, nothing visible from the root namespace.
nsb=$T-ns
vn="ns-$(rand_hex 12)"
if bao namespace create "$nsb" > "$work/ns.out" 2>&1; then
    B=(env BAO_NAMESPACE="$nsb" "$BAO")
    "${B[@]}" secrets enable -path=secret -version=2 kv > /dev/null &&
        "${B[@]}" kv put -mount=secret app password="$vn" > /dev/null &&
        printf 'path "secret/data/app" { capabilities = ["read"] }\n' | "${B[@]}" policy write read - > /dev/null &&
        "${B[@]}" auth enable kubernetes > /dev/null &&
        "${B[@]}" write auth/kubernetes/config kubernetes_host="$CT_API" kubernetes_ca_cert=@"$CT_CA" \
            token_reviewer_jwt=@"$BAO_DIR/openbao/reviewer.jwt" disable_local_ca_jwt=true > /dev/null &&
        "${B[@]}" write auth/kubernetes/role/app bound_service_account_names=app \
            bound_service_account_namespaces="$ns" policies=read ttl=10m > /dev/null
    ok $? "namespace $nsb with its own KV and Kubernetes auth"
    for f in $(wl_flavours); do
        wl_use "$f" || continue
        wrun "$f-ns" VAULT_NAMESPACE="$nsb" VAULT_AUTH_ROLE=app "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
            CLOUDTASER_SECRET_PATHS=secret/app -- "$WL" env-hash PASSWORD
        [ $rc -eq 0 ] && grep -qx "env PASSWORD sha256=$(sha "$vn") len=${#vn}" "$work/$f-ns.out"
        ok $? "$f: VAULT_NAMESPACE: login, mount lookup and read inside the namespace" || show "$f-ns"
        wrun "$f-nsout" VAULT_AUTH_ROLE=$T-app "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
            CLOUDTASER_SECRET_PATHS=secret/data/app -- "$WL" say started
        [ $rc -ne 0 ] && ! grep -q started "$work/$f-nsout.out"
        ok $? "$f: the namespace's secret is not readable from the root namespace" || show "$f-nsout"
    done
else
    diag "$(cat "$work/ns.out")"
    skip "this OpenBao has no namespaces"
fi

# --- renewal and rotation while the workload runs
bao write "auth/kubernetes/role/$T-short" bound_service_account_names=app \
    bound_service_account_namespaces="$ns" policies="$T-read" token_ttl=3s token_max_ttl=8s > /dev/null
for f in $(wl_flavours); do
    wl_use "$f" || continue
    bao kv put -mount=secret "$T/rot-$f" password=one > /dev/null
    wstart "$f-renew" VAULT_AUTH_ROLE=$T-short "CLOUDTASER_SA_TOKEN_PATH=$work/app.jwt" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$T/rot-$f" CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_ROTATION=restart CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_LOG_LEVEL=debug \
        -- "$WL" env-hash PGPASSWORD sleep 30
    pid=$wpid
    wait_grep "$work/$f-renew.out" "sha256=$(sha one)" 20 "$pid"
    ok $? "$f: started with a 3 s token" || show "$f-renew"
    # 10 s: past the token's max TTL; the wrapper must have renewed and then logged in again.
    sleep 10
    bao kv put -mount=secret "$T/rot-$f" password=two > /dev/null
    wait_grep "$work/$f-renew.out" "sha256=$(sha two)" 20 "$pid"
    ok $? "$f: past the token's max TTL, a new version is still delivered (renewed, then a fresh login)" || show "$f-renew"
    grep -Eqi 'renew' "$work/$f-renew.err" && grep -Eqi 'log(ged|s)? in|login' "$work/$f-renew.err"
    ok $? "$f: the log shows the renewal and the fresh login" || show "$f-renew"
    kill -TERM "$pid" 2> /dev/null
    wwait "$pid" 10
done

tap_done
