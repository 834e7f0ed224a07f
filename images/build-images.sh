#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-images.sh: the catalogue of cloudtaser's images, built without a container daemon
# (docs/images.md). `make images` runs it; tests run it into their own directories.
#
#   build-images.sh [--out DIR] [--bin DIR] [--test] [--no-archive] [NAME...]
#
#   --out DIR      where to write (default build/images): DIR/NAME/ is the OCI image layout (its
#                  index.json names the manifest TAG), DIR/NAME.tar the docker-archive that
#                  `docker load` and `kind load image-archive` take, DIR/NAME.digest the manifest
#                  digest
#   --bin DIR      where the static binaries are (default build/musl/bin)
#   --test         also the images the tests use (ct-workload); NAMEs pick images by name
#   --no-archive   OCI layouts only (no skopeo needed)
#
# Inputs (environment), all defaulted from git like the Makefile does; the same inputs give the
# same image digests:
#   SOURCE_DATE_EPOCH  timestamps in the images (default: the last commit's time, else 0)
#   VERSION            org.opencontainers.image.version (default: git describe --always --dirty)
#   IMAGE_REVISION     org.opencontainers.image.revision (default: git rev-parse HEAD)
#   IMAGE_SOURCE       org.opencontainers.image.source (default: the git remote "origin" as an
#                      https URL, else "unknown": set it when publishing)
#   IMAGE_TAG          the tag (default: VERSION, with characters a tag cannot hold turned to '-')
#   IMAGE_PREFIX       prepended to the name in the docker-archive reference (e.g.
#                      ghcr.io/example/); default none, giving NAME:TAG
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/images
bin=$top/build/musl/bin
test_images=0
archive=1
only=()
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=$2; shift ;;
    --bin) bin=$2; shift ;;
    --test) test_images=1 ;;
    --no-archive) archive=0 ;;
    -*) echo "build-images: unknown option $1" >&2; exit 64 ;;
    *) only+=("$1") ;;
    esac
    shift
done

git_() { git -C "$top" "$@" 2>/dev/null; }
: "${SOURCE_DATE_EPOCH:=$(git_ log -1 --format=%ct || echo 0)}"
: "${VERSION:=$(git_ describe --always --dirty || echo 0.0.0)}"
: "${IMAGE_REVISION:=$(git_ rev-parse HEAD || echo unknown)}"
if [ -z "${IMAGE_SOURCE:-}" ]; then
    IMAGE_SOURCE=$(git_ remote get-url origin || true)
    IMAGE_SOURCE=$(sed -E 's#^git@([^:]+):#https://\1/#; s#\.git$##' <<< "$IMAGE_SOURCE")
    : "${IMAGE_SOURCE:=unknown}"
fi
: "${IMAGE_TAG:=$(tr -c 'A-Za-z0-9_.\n-' '-' <<< "$VERSION" | cut -c1-128)}"
: "${IMAGE_PREFIX:=}"
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || { echo "build-images: SOURCE_DATE_EPOCH is not a number" >&2; exit 64; }

mkdir -p "$out"

# image NAME DESCRIPTION ENTRYPOINT-JSON FILE... : one image FROM scratch, user 65532:65532.
# FILE is SRC:/DEST[:MODE] (default mode 0555, owner root: the user can run it, not change it).
image() {
    local name=$1 desc=$2 entrypoint=$3; shift 3
    local args=() f
    if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then
        return 0
    fi
    for f in "$@"; do
        args+=(--file "$f")
    done
    echo "  IMAGE   $name:$IMAGE_TAG"
    /usr/bin/python3 "$top/images/build-image.py" --out "$out/$name" --ref "$IMAGE_TAG" \
        --epoch "$SOURCE_DATE_EPOCH" --entrypoint "$entrypoint" --user 65532:65532 \
        --label "org.opencontainers.image.title=$name" \
        --label "org.opencontainers.image.description=$desc" \
        --label "org.opencontainers.image.source=$IMAGE_SOURCE" \
        --label "org.opencontainers.image.revision=$IMAGE_REVISION" \
        --label "org.opencontainers.image.version=$VERSION" \
        --label "org.opencontainers.image.licenses=Apache-2.0" \
        "${args[@]}" > "$out/$name.digest"
    if [ $archive = 1 ]; then
        rm -f "$out/$name.tar"
        skopeo --insecure-policy copy --quiet "oci:$out/$name:$IMAGE_TAG" \
            "docker-archive:$out/$name.tar:$IMAGE_PREFIX$name:$IMAGE_TAG"
    fi
}

# --- released images ----------------------------------------------------------------------------
# The init container's image: the init binary is the entrypoint; it copies the wrapper next to it
# into the pod's shared volume (docs/init.md). No shell, no libc, no CA bundle: the wrapper runs in
# the workload's container and uses the workload's trust (or CLOUDTASER_VAULT_CA_PEM).
image cloudtaser-wrapper "cloudtaser init container: installs cloudtaser-wrapper into the pod" \
    '["/cloudtaser-init"]' \
    "$bin/cloudtaser-init:/cloudtaser-init" \
    "$bin/cloudtaser-wrapper:/cloudtaser-wrapper"

# The operator's image: the webhook makes outbound TLS calls (image registries, the Kubernetes
# API uses the service account's CA), so it carries Debian's CA bundle as a file (never a shell or
# a package manager). The bundle comes from the build machine's ca-certificates package: the
# image digest follows that package's version.
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ -x "$bin/cloudtaser-operator" ]; then
    image cloudtaser-operator "cloudtaser operator: the mutating admission webhook" \
        '["/cloudtaser-operator"]' \
        "$bin/cloudtaser-operator:/cloudtaser-operator" \
        "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:0444"
fi

if [ -x "$bin/cloudtaser-broker" ]; then
    image cloudtaser-broker "cloudtaser broker: secrets for pods that cannot reach the vault (mTLS)" \
        '["/cloudtaser-broker"]' \
        "$bin/cloudtaser-broker:/cloudtaser-broker" \
        "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:0444"
fi

# Later images follow the same pattern, one call each, as their binaries land:
#   image cloudtaser-cli      "..." '["/cloudtaser"]'          "$bin/cloudtaser:/cloudtaser" ...

# --- images for the tests -----------------------------------------------------------------------
if [ $test_images = 1 ]; then
    # A distroless-style workload: one static program, nothing else (tests/tools/ct-workload.c).
    image ct-workload "cloudtaser test workload (tests/tools/ct-workload.c)" \
        '["/ct-workload"]' \
        "$bin/ct-workload:/ct-workload"
    # The pod sandbox's process for the test cluster (tests/tools/ct-pause.c), in place of the
    # upstream pause image.
    image ct-pause "cloudtaser test cluster pod sandbox (tests/tools/ct-pause.c)" \
        '["/ct-pause"]' \
        "$bin/ct-pause:/ct-pause"
fi
