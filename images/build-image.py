#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""build-image.py: writes a one-layer OCI image layout FROM scratch, reproducibly, without a
container daemon (docs/images.md). Standard library only.

    build-image.py --out DIR --ref TAG --epoch SECONDS \
        --file SRC:/DEST[:MODE] ... --entrypoint JSON [--cmd JSON] [--user UID:GID] \
        [--env NAME=VALUE ...] [--label KEY=VALUE ...] [--arch amd64]

Everything that goes into the image is fixed by the arguments and the files' bytes, never by
the build machine: tar entries in sorted order, owner 0:0 with empty owner names, the mode given
(default 0555 for files, 0755 for the parent directories it adds), mtime = --epoch (use
SOURCE_DATE_EPOCH); gzip with mtime 0 and no file name; JSON with sorted keys and no spaces; the
config's "created" and the history entry from --epoch. Same inputs, same bytes, same digests
(on the same zlib: the compressed blob depends on zlib's deflate; the config's diff_id, over the
uncompressed layer, does not).

DIR is replaced atomically (written to DIR.tmp-PID, then renamed). Prints the manifest digest.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import time

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def die(msg):
    print(f"build-image: error: {msg}", file=sys.stderr)
    sys.exit(1)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_file(spec):
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1].startswith("/"):
        die(f"--file {spec!r}: want SRC:/DEST[:MODE]")
    src, dest = parts[0], parts[1]
    mode = int(parts[2], 8) if len(parts) == 3 else 0o555
    name = os.path.normpath(dest).lstrip("/")
    if not name or name.startswith("..") or name == ".":
        die(f"--file {spec!r}: bad destination")
    if not os.path.isfile(src) or os.path.islink(src):
        die(f"--file {spec!r}: {src} is not a regular file")
    return name, src, mode


def layer_tar(files, epoch):
    """The uncompressed layer: parent directories, then files, all in sorted order."""
    dirs = set()
    for name, _, _ in files:
        parent = os.path.dirname(name)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    entries = [(d, None, 0o755) for d in dirs] + files
    entries.sort(key=lambda e: e[0])
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        die("two files with the same destination")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, src, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = mode
            if src is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                with open(src, "rb") as f:
                    data = f.read()
                info.type = tarfile.REGTYPE
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--ref", required=True, help="org.opencontainers.image.ref.name in index.json")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--file", action="append", default=[], required=True)
    p.add_argument("--entrypoint", required=True, help="JSON array")
    p.add_argument("--cmd", help="JSON array")
    p.add_argument("--user", default="65532:65532")
    p.add_argument("--workdir", default="/")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--arch", default="amd64")
    a = p.parse_args()

    if a.epoch < 0:
        die("--epoch must be >= 0")
    files = [parse_file(s) for s in a.file]
    try:
        entrypoint = json.loads(a.entrypoint)
        cmd = json.loads(a.cmd) if a.cmd else None
    except ValueError as e:
        die(f"--entrypoint/--cmd: {e}")
    for v in (entrypoint, cmd):
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            die("--entrypoint/--cmd must be JSON arrays of strings")
    labels = {}
    for kv in a.label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            die(f"--label {kv!r}: want KEY=VALUE")
        labels[k] = v
    for kv in a.env:
        if "=" not in kv:
            die(f"--env {kv!r}: want NAME=VALUE")

    tar = layer_tar(files, a.epoch)
    # mtime=0 and no file name in the gzip header (gzip.compress writes none): no build-time state.
    gz = gzip.compress(tar, compresslevel=9, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()

    created = rfc3339(a.epoch)
    config = {"User": a.user, "Entrypoint": entrypoint, "WorkingDir": a.workdir}
    if cmd is not None:
        config["Cmd"] = cmd
    if a.env:
        config["Env"] = a.env
    if labels:
        config["Labels"] = labels
    image_config = {
        "created": created,
        "architecture": a.arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "images/build-image.py: FROM scratch, "
                     + ", ".join("/" + n for n, _, _ in files)}],
    }
    config_blob = canonical_json(image_config)

    blobs = {}

    def blob(data, media_type, **extra):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        d = {"mediaType": media_type, "digest": digest, "size": len(data)}
        d.update(extra)
        return d

    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": blob(config_blob, MT_CONFIG),
        "layers": [blob(gz, MT_LAYER)],
    }
    if labels:
        manifest["annotations"] = {k: v for k, v in labels.items() if k.startswith("org.opencontainers.")}
    mdesc = blob(canonical_json(manifest), MT_MANIFEST,
                 annotations={"org.opencontainers.image.ref.name": a.ref},
                 platform={"architecture": a.arch, "os": "linux"})
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [mdesc]}

    out = os.path.abspath(a.out)
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "blobs", "sha256"))
    for digest, data in sorted(blobs.items()):
        with open(os.path.join(tmp, "blobs", "sha256", digest.split(":", 1)[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(tmp, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(tmp, "index.json"), "wb") as f:
        f.write(canonical_json(index))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(mdesc["digest"])


if __name__ == "__main__":
    main()
