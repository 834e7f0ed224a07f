#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image sizes, for the note: bench-images.sh [DIR] (default build/images, after `make images`).
# Per image: compressed = what a registry stores and a node pulls (the gzip layer, config and
# manifest blobs), uncompressed = the layer tar (what is unpacked on the node), and the
# docker-archive tarball's size.
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/images}
shopt -s nullglob
n=0
for idx in "$dir"/*/index.json; do
    d=${idx%/index.json}
    /usr/bin/python3 - "$d" <<'PY' || exit 1
import json, os, sys
d = sys.argv[1]
blob = lambda dg: os.path.join(d, "blobs", "sha256", dg.split(":", 1)[1])
idx = json.load(open(os.path.join(d, "index.json")))
m = idx["manifests"][0]
man = json.load(open(blob(m["digest"])))
cfg = json.load(open(blob(man["config"]["digest"])))
layers = sum(l["size"] for l in man["layers"])
compressed = layers + man["config"]["size"] + m["size"]
import gzip
uncompressed = sum(len(gzip.decompress(open(blob(l["digest"]), "rb").read())) for l in man["layers"])
name = os.path.basename(d)
tar = os.path.join(os.path.dirname(d), name + ".tar")
arch = os.path.getsize(tar) if os.path.exists(tar) else 0
print(f"image {name}: compressed {compressed} B ({compressed / 1024:.0f} KiB), "
      f"uncompressed {uncompressed} B ({uncompressed / 1024:.0f} KiB), "
      f"docker-archive {arch} B, {len(man['layers'])} layer(s), manifest {m['digest'][:19]}...")
PY
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "bench-images: no image under $dir (make images)" >&2; exit 1; }
