# SPDX-License-Identifier: Apache-2.0
# real-lib.sh: shared pieces of the end-to-end tests on the real servers (test-real-*.sh): OpenBao
# and the Kubernetes cluster of tests/cluster/. Source it with `top` set: it sources
# tests/lib/tap.sh, tests/standin/standin.sh and tests/e2e/wrapper-lib.sh itself.
#
#   real_setup [--cluster] [--own-bao NODES]
#       work dir ($work), WL_BASE for wrun/wstart (wrapper-lib.sh) pointing at OpenBao, cleanup.
#       The shared servers come from $CT_REAL_DIR (started once per `make check` by
#       tests/run-all.sh); a test run on its own starts what it needs under $work and stops it at
#       exit. --cluster: the test needs the Kubernetes cluster too. --own-bao N: a private OpenBao
#       of N raft nodes for tests that seal, restart or fault it (never the shared one).
#       --uninit (with --own-bao 1): that OpenBao is left uninitialised (BAO_TOKEN empty; no
#       Kubernetes auth configured), for `cloudtaser source install`.
#   bao ARGS...            the bao CLI as the root token, against $BAO_ADDR
#   bao_policy NAME HCL    writes an ACL policy
#   kube_token NS SA [AUD] a service-account JWT from the TokenRequest API (10 min), as a pod gets
#   real_ns NAME           a fresh namespace (with its default service account ready)
#   is GOT WANT NAME       a TAP check that GOT is WANT (both said when not)
#   ann_mac_key AUTH_HEX   the annotation MAC's key (hex) from broker-auth's key, with openssl kdf
#   mac_of NS SA PATHS ENVMAP   a pod's annotation MAC (hex) under $ann_key, with openssl dgst:
#                          docs/protocol-broker.md "The annotation MAC", computed independently
#                          of our code
#   installation_id TOKEN_HEX   the installation id (16 hex digits) from broker-token's key:
#                          the sealed label's value and the unsealer's policy prefix
#                          (common/brokerproto.h), with openssl dgst
#   real_test_begin SUFFIX the start of a test of the operator on the cluster: real_setup
#                          --cluster, tests/cluster/pod-lib.sh, ns=$T-SUFFIX, and at exit: the
#                          function real_at_exit if the test defines one, ct_stop_operator, the
#                          MutatingWebhookConfigurations of real_gone_mwcs ($T-inject), the
#                          ClusterRoles and bindings of real_gone_roles ($ns-operator) and the
#                          namespaces of real_gone_ns ($ns) deleted, then real_cleanup. A test
#                          appends what more it makes to those arrays.
: "${top:?}"
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

_real_own=()
real_cleanup() {
    local d
    for d in "${_real_own[@]}"; do
        case $d in
        bao:*) "$top/tests/cluster/openbao.sh" stop "${d#bao:}" > /dev/null 2>&1 ;;
        cluster:*) "$top/tests/cluster/cluster.sh" stop "${d#cluster:}" > /dev/null 2>&1 ;;
        esac
    done
    wl_cleanup
}

real_setup() {
    local need_cluster=0 own_nodes=0 uninit=
    while [ $# -gt 0 ]; do
        case $1 in
        --cluster) need_cluster=1 ;;
        --own-bao) own_nodes=$2; shift ;;
        --uninit) uninit=1 ;;
        esac
        shift
    done
    work=$(mktemp -d "${TMPDIR:-/tmp}/ct-real-e2e.XXXXXX") || exit 1
    chmod 755 "$work"
    mkdir -p "$work/home"
    trap real_cleanup EXIT
    if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP the real servers' tests run as root (the kubelet, containerd)"
        exit 0
    fi
    local shared=${CT_REAL_DIR:-}
    if [ $need_cluster = 1 ]; then
        if [ -n "$shared" ] && [ -f "$shared/env" ]; then
            . "$shared/env"
        else
            _real_own+=("cluster:$work/cluster")
            "$top/tests/cluster/cluster.sh" start "$work/cluster" > "$work/cluster.log" 2>&1 ||
                { echo "Bail out! the test cluster did not start"; sed 's/^/# /' "$work/cluster.log" | tail -n 40; exit 1; }
            . "$work/cluster/env"
        fi
    fi
    if [ "$own_nodes" -gt 0 ]; then
        _real_own+=("bao:$work/bao")
        CT_BAO_UNINIT=$uninit "$top/tests/cluster/openbao.sh" start "$work/bao" "$own_nodes" > "$work/bao.log" 2>&1 ||
            { echo "Bail out! OpenBao did not start"; sed 's/^/# /' "$work/bao.log" | tail -n 40; exit 1; }
        . "$work/bao/bao-env"
        BAO_DIR=$work/bao
    elif [ -n "$shared" ] && [ -f "$shared/bao-env" ]; then
        . "$shared/bao-env"
        BAO_DIR=$shared
    else
        _real_own+=("bao:$work/bao")
        "$top/tests/cluster/openbao.sh" start "$work/bao" 1 > "$work/bao.log" 2>&1 ||
            { echo "Bail out! OpenBao did not start"; sed 's/^/# /' "$work/bao.log" | tail -n 40; exit 1; }
        . "$work/bao/bao-env"
        BAO_DIR=$work/bao
    fi
    if [ $need_cluster = 1 ] && [ -z "$uninit" ] && ! bao auth list -format=json 2> /dev/null | grep -q '"kubernetes/"'; then
        "$top/tests/cluster/openbao.sh" k8s-auth "$BAO_DIR" "$CT_CLUSTER" > "$work/k8s-auth.log" 2>&1 ||
            { echo "Bail out! OpenBao's Kubernetes auth could not be configured"; sed 's/^/# /' "$work/k8s-auth.log"; exit 1; }
    fi
    cp "$BAO_CACERT" "$work/ca.pem" && chmod 644 "$work/ca.pem"
    WL_BASE=(PATH=/usr/local/bin:/usr/bin:/bin "HOME=$work/home" LANG=C.UTF-8
        "ASAN_OPTIONS=$WL_ASAN_OPTIONS" "UBSAN_OPTIONS=$WL_UBSAN_OPTIONS"
        "VAULT_ADDR=$BAO_ADDR" "VAULT_CACERT=$work/ca.pem" CLOUDTASER_STARTUP_TIMEOUT=20s)
    # A per-test prefix keeps paths, policies and roles of tests running side by side apart.
    T=t$(rand_hex 4)
}

bao() {
    "$BAO" "$@"
}

bao_policy() {
    printf '%s\n' "$2" | bao policy write "$1" - > /dev/null
}

kube_token() { # NS SA [AUDIENCE]
    if [ -n "${3:-}" ]; then
        kubectl -n "$1" create token "$2" --duration=10m --audience="$3"
    else
        kubectl -n "$1" create token "$2" --duration=10m
    fi
}

is() { # GOT WANT NAME
    [ "$1" = "$2" ]
    ok $? "$3" || diag "got '$1'" "want '$2'"
}

ann_mac_key() {
    openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:"$1" \
        -kdfopt info:cloudtaser/broker/annotation/v1 HKDF | tr -d ':' | tr 'A-F' 'a-f'
}

mac_of() { # NS SA PATHS ENVMAP
    printf 'cloudtaser/broker/annotation/v1\0%s\0%s\0%s\0%s' "$1" "$2" "$3" "$4" |
        openssl dgst -sha256 -mac HMAC -macopt hexkey:"$ann_key" -r | cut -d' ' -f1
}

installation_id() { # TOKEN_HEX
    printf 'cloudtaser/broker/installation/v1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$1" -r | cut -c1-16
}

real_ns() {
    kubectl create namespace "$1" > /dev/null || return 1
    local i
    for i in $(seq 100); do
        kubectl -n "$1" get serviceaccount default > /dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

real_test_begin() {
    real_setup --cluster
    . "$top/tests/cluster/pod-lib.sh"
    ns=$T-$1
    real_gone_mwcs=("$T-inject")
    real_gone_roles=("$ns-operator")
    real_gone_ns=("$ns")
    trap _real_test_end EXIT
}

_real_test_end() {
    declare -F real_at_exit > /dev/null && real_at_exit
    ct_stop_operator
    kubectl delete mutatingwebhookconfiguration "${real_gone_mwcs[@]}" --ignore-not-found > /dev/null 2>&1
    kubectl delete clusterrolebinding,clusterrole "${real_gone_roles[@]}" --ignore-not-found > /dev/null 2>&1
    kubectl delete namespace "${real_gone_ns[@]}" --ignore-not-found --wait=false > /dev/null 2>&1
    real_cleanup
}
