#!/usr/bin/env bash
# Installs what building and testing cloudtaser needs on Debian 12 (bookworm), and makes sure apt
# can fetch source packages (deb-src). Called by `make` the first time; safe to run again.
set -euo pipefail

packages=(
    # build: compilers, musl, autotools for the Debian source packages, dpkg-source
    build-essential musl-tools autoconf automake libtool pkg-config dpkg-dev gperf patch xz-utils
    # sanitizer build, fuzzers and lint
    clang-14 libclang-rt-14-dev llvm-14 clang-format
    # tests: TAP runner, the stand-in vault (Debian's python3) and its real client, TLS checks
    perl python3 python3-hvac openssl curl ca-certificates file
    # containers without a Docker daemon (images, the runc pod test) and a real registry
    runc umoci skopeo docker-registry
    # benchmarks: a fast TLS server with fixed vault answers, an HTTP load generator (make bench)
    nginx-light wrk
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

has_deb_src() {
    grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

if [ ${#missing[@]} -eq 0 ] && has_deb_src; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "cloudtaser setup: these Debian packages are missing: ${missing[*]:-(none)}" >&2
    has_deb_src || echo "cloudtaser setup: apt has no deb-src source (needed by 'apt-get source')" >&2
    echo "cloudtaser setup: run 'make setup' as root, or install them with apt-get, then retry." >&2
    exit 1
fi

if ! has_deb_src; then
    echo "cloudtaser setup: adding deb-src entries to the apt sources" >&2
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
    fi
    if ! has_deb_src && [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/cloudtaser-deb-src.list
    fi
    has_deb_src || { echo "cloudtaser setup: could not add deb-src lines; add them by hand" >&2; exit 1; }
    need_update=1
fi

if [ -n "${need_update:-}" ] || [ ${#missing[@]} -gt 0 ]; then
    echo "cloudtaser setup: apt-get update" >&2
    apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "cloudtaser setup: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
