#!/usr/bin/env bash
# Builds the real servers the tests and the demo run against, from their own Go modules, pinned in
# tests/servers/<name>/go.{mod,sum}, into a cache outside the tree:
#   $CACHE/cloudtaser/servers/<name>-<key>/bin/...   key = hash of go.mod, go.sum and this script
# A server already in the cache is not built again. Each build goes to a temporary folder renamed
# when complete, under a lock, so an interrupted or concurrent build never looks finished.
#
#   tests/servers/build.sh [openbao] [etcd] [kube] [peers]    (default: openbao etcd kube)
#   tests/servers/build.sh --dir NAME                         print the cache folder of NAME
#
# Go: /usr/local/go/bin/go or any go >= 1.26 on PATH; otherwise the toolchain module is fetched
# from the Go module proxy into the cache first (tests/servers/toolchain.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cloudtaser/servers

key_of() {
    cat "$here/$1/go.mod" "$here/$1/go.sum" "$here/build.sh" | sha256sum | cut -c1-16
}
dir_of() { echo "$cache/$1-$(key_of "$1")"; }

if [ "${1:-}" = "--dir" ]; then
    dir_of "$2"
    exit 0
fi

export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
GO=$("$here/toolchain.sh")
export PATH=$(dirname "$GO"):$PATH
# Three modules are served by the module proxy while the checksum database behind it answers 404
# for them (two go-kms-wrapping wrappers OpenBao imports, and Bank-Vaults' secret-init): their
# hashes are pinned in the committed go.sum files, which the go command checks on every build.
export GONOSUMDB=github.com/openbao/go-kms-wrapping/wrappers/static/v2,github.com/openbao/go-kms-wrapping/wrappers/transit/v2,github.com/bank-vaults/secret-init

build_openbao() { # $1 = output bin folder
    local v=2.4.0 commit=f9407a27fbee45f62ba521bba2bf1e2360c61031
    go build -trimpath -ldflags "-s -w -X github.com/openbao/openbao/version.fullVersion=$v -X github.com/openbao/openbao/version.GitCommit=$commit" \
        -o "$1/bao" github.com/openbao/openbao
}

build_etcd() {
    go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3
}

build_kube() {
    local v=v1.37.2 minor=37 ldf="-s -w" p date
    date=$(date -u -d "@$(stat -c %Y "$here/kube/go.sum")" +%Y-%m-%dT%H:%M:%SZ)
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldf="$ldf -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    go build -trimpath -ldflags "$ldf" -o "$1/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet
}

build_peers() {
    go build -trimpath -ldflags "-s -w" -o "$1/secret-init" github.com/bank-vaults/secret-init
}

build_one() {
    local name=$1 dir tmp start
    dir=$(dir_of "$name")
    [ -f "$dir/.built" ] && return 0
    mkdir -p "$cache"
    exec 9>"$cache/.lock-$name"
    flock 9
    if [ ! -f "$dir/.built" ]; then
        start=$(date +%s)
        echo "[servers] building $name from tests/servers/$name/go.mod (first time only; see README)" >&2
        tmp="$dir.tmp"
        rm -rf "$tmp" && mkdir -p "$tmp/bin"
        (cd "$here/$name" && "build_$name" "$tmp/bin") > "$tmp/build.log" 2>&1 || {
            echo "[servers] $name: build failed, log in $tmp/build.log:" >&2
            tail -n 20 "$tmp/build.log" >&2
            exit 1
        }
        rm -rf "$dir" && mv "$tmp" "$dir" && touch "$dir/.built"
        echo "[servers] $name built in $(($(date +%s) - start)) s: $(ls "$dir/bin" | tr '\n' ' ')" >&2
    fi
    exec 9>&-
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(openbao etcd kube)
for n in "${names[@]}"; do
    [ -f "$here/$n/go.mod" ] || { echo "[servers] no such server: $n" >&2; exit 2; }
    build_one "$n"
done
