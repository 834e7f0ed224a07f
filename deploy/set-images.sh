#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# set-images.sh: point the install manifests at images by digest (docs/install.md#images).
#
#   deploy/set-images.sh [--digests DIR] REGISTRY [KUSTOMIZATION-DIR]
#
# Reads the manifest digests `make images` wrote (DIR/<name>.digest, default build/images) of
# cloudtaser-operator and cloudtaser-wrapper and writes, between the "# BEGIN set-images.sh" and
# "# END set-images.sh" lines of the kustomization in KUSTOMIZATION-DIR (default deploy/base/,
# whose kustomization is base/Kustomization), an `images:` list naming REGISTRY/<name> at that
# digest. For deploy/base/ it also rewrites the references in deploy/base/*.yaml, so `kubectl
# apply -f deploy/base/` installs the same images as `kubectl apply -k deploy/`; for an overlay
# only its kustomization changes. Push the images to REGISTRY first (the digest does not change
# on the way: skopeo copy oci:build/images/NAME:TAG docker://REGISTRY/NAME:TAG).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
digests=$here/../build/images
usage() { sed -n '3,14p' "$0" >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
    --digests) [ $# -ge 2 ] || usage; digests=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "set-images: unknown option $1" >&2; exit 64 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
registry=${1%/}
dir=${2:-$here/base}
[[ $registry =~ ^[A-Za-z0-9._:-]+(/[a-z0-9._-]+)*$ ]] || { echo "set-images: not a registry: $registry" >&2; exit 64; }
k=$dir/kustomization.yaml
[ -f "$k" ] || k=$dir/Kustomization
[ -f "$k" ] || { echo "set-images: no $k" >&2; exit 66; }
grep -q '^# BEGIN set-images.sh$' "$k" && grep -q '^# END set-images.sh$' "$k" ||
    { echo "set-images: $k has no '# BEGIN set-images.sh' / '# END set-images.sh' lines" >&2; exit 65; }

# For deploy/ itself the base is rewritten too, and the entries then name the new references.
self=0
[ "$(cd "$dir" && pwd -P)" = "$(cd "$here/base" && pwd -P)" ] && self=1
block=$(mktemp)
trap 'rm -f "$block"' EXIT
echo "images:" > "$block"
rewrite=()
for name in cloudtaser-operator cloudtaser-wrapper; do
    f=$digests/$name.digest
    [ -f "$f" ] || { echo "set-images: no $f (run make images)" >&2; exit 66; }
    digest=$(tr -d '\n' < "$f")
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "set-images: $f does not hold a sha256 digest" >&2; exit 65; }
    # The name the base uses now: kustomize matches `images:` entries on it.
    current=$(grep -hoE "[^ \"']*/$name@sha256:[0-9a-f]{64}" "$here"/base/*.yaml | head -n 1)
    [ -n "$current" ] || { echo "set-images: deploy/base/ has no reference to $name" >&2; exit 65; }
    current=${current%@*}
    match=$current
    [ $self = 1 ] && match=$registry/$name
    printf -- '- name: %s\n  newName: %s\n  digest: %s\n' "$match" "$registry/$name" "$digest" >> "$block"
    rewrite+=("s#${current//./\\.}@sha256:[0-9a-f]\{64\}#$registry/$name@$digest#g")
done

if [ $self = 1 ]; then
    for e in "${rewrite[@]}"; do
        sed -i "$e" "$here"/base/*.yaml
    done
fi

awk -v blockfile="$block" '
    /^# BEGIN set-images.sh$/ { print; while ((getline l < blockfile) > 0) print l; skip = 1; next }
    /^# END set-images.sh$/ { skip = 0 }
    !skip { print }' "$k" > "$k.new"
mv "$k.new" "$k"
echo "set-images: $k: $(grep -c '^  digest: ' "$block") images from $registry"
