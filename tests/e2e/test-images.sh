#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The images (images/build-images.sh, docs/images.md), built without a container daemon:
#   - reproducible: two builds from copies of the binaries with other mtimes, modes and umask give
#     byte-identical OCI layouts and docker-archive tarballs; another SOURCE_DATE_EPOCH gives
#     another digest (so it is really used), and every timestamp in the image is that epoch;
#   - cloudtaser-wrapper: FROM scratch, exactly /cloudtaser-init and /cloudtaser-wrapper (root-owned,
#     0555, the released binaries' bytes), entrypoint ["/cloudtaser-init"], user 65532:65532, the
#     OCI labels source/revision/version, no Cmd, no shell; the init inside carries the digest of
#     the wrapper beside it;
#   - readable by independent tools: skopeo inspects the layout and the archive, umoci lists it;
#     the docker-archive has the RepoTags `docker load` uses, the same config (image ID) and the
#     layer whose digest is the config's diff_id.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"

command -v skopeo > /dev/null || { echo "1..0 # SKIP skopeo is not installed"; exit 0; }
for b in cloudtaser-init cloudtaser-wrapper ct-workload ct-pause; do
    [ -x "$top/build/musl/bin/$b" ] || { echo "Bail out! build/musl/bin/$b is not built"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-images.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

export SOURCE_DATE_EPOCH=1700000000 VERSION=9.8.7-test IMAGE_REVISION=0123456789abcdef0123456789abcdef01234567 \
    IMAGE_SOURCE=https://example.invalid/cloudtaser IMAGE_TAG=9.8.7-test IMAGE_PREFIX=registry.invalid/ct/
# Two copies of the binaries that differ in everything but their bytes.
for x in a b; do
    mkdir -p "$work/bin-$x"
    cp "$top"/build/musl/bin/{cloudtaser-init,cloudtaser-wrapper,ct-workload,ct-pause} "$work/bin-$x/"
done
chmod 700 "$work"/bin-a/*
chmod 755 "$work"/bin-b/*
touch -d @1 "$work"/bin-a/*
touch -d '2031-01-01' "$work"/bin-b/*
(umask 077 && "$top/images/build-images.sh" --out "$work/a" --bin "$work/bin-a" --test > "$work/a.log" 2>&1)
ra=$?
sleep 1.1 # a later wall clock, too
(umask 022 && "$top/images/build-images.sh" --out "$work/b" --bin "$work/bin-b" --test > "$work/b.log" 2>&1)
rb=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ]
ok $? "images/build-images.sh builds twice" || { sed 's/^/# /' "$work/a.log" "$work/b.log"; }

sums() { (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum); }
[ -n "$(sums "$work/a")" ] && [ "$(sums "$work/a")" = "$(sums "$work/b")" ]
ok $? "same inputs, byte-identical results: OCI layouts, docker-archives and digests (other mtimes, modes, umask, time)" ||
    diff <(sums "$work/a") <(sums "$work/b") | sed 's/^/# /'
diag "cloudtaser-wrapper manifest $(cat "$work/a/cloudtaser-wrapper.digest")"
(SOURCE_DATE_EPOCH=1700000001 "$top/images/build-images.sh" --out "$work/c" --bin "$work/bin-b" --no-archive cloudtaser-wrapper > /dev/null 2>&1)
[ -s "$work/c/cloudtaser-wrapper.digest" ] && [ "$(cat "$work/c/cloudtaser-wrapper.digest")" != "$(cat "$work/a/cloudtaser-wrapper.digest")" ]
ok $? "another SOURCE_DATE_EPOCH gives another digest"

# inspect LAYOUT: prints facts about the image, one per line, for the checks below.
inspect() {
    /usr/bin/python3 - "$1" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
d = sys.argv[1]
path = lambda dg: os.path.join(d, "blobs", "sha256", dg.split(":", 1)[1])
def blob(dg):
    data = open(path(dg), "rb").read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == dg, f"blob {dg} does not match its digest"
    return data
idx = json.load(open(os.path.join(d, "index.json")))
print("layout", open(os.path.join(d, "oci-layout")).read())
print("ref", idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])
man = json.loads(blob(idx["manifests"][0]["digest"]))
cfg = json.loads(blob(man["config"]["digest"]))
print("mediatypes", man["mediaType"], man["config"]["mediaType"], *[l["mediaType"] for l in man["layers"]])
print("config-digest", man["config"]["digest"])
c = cfg["config"]
print("user", c.get("User"))
print("entrypoint", json.dumps(c.get("Entrypoint")))
print("cmd", json.dumps(c.get("Cmd")))
print("env", json.dumps(c.get("Env")))
for k in ("source", "revision", "version"):
    print(f"label {k}", c.get("Labels", {}).get(f"org.opencontainers.image.{k}"))
print("created", cfg["created"], *[h["created"] for h in cfg["history"]])
print("platform", cfg["os"], cfg["architecture"])
for l in man["layers"]:
    raw = gzip.decompress(blob(l["digest"]))
    print("diff_id", "sha256:" + hashlib.sha256(raw).hexdigest() in cfg["rootfs"]["diff_ids"])
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        for m in t.getmembers():
            print("entry", m.name, "reg" if m.isreg() else "other", oct(m.mode), f"{m.uid}:{m.gid}",
                  f"'{m.uname}':'{m.gname}'", m.mtime,
                  hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isreg() else "-")
PY
}
info=$(inspect "$work/a/cloudtaser-wrapper" 2>&1)
ok $? "the layout is well-formed: every blob matches its digest" || diag "$info"
fact() { sed -n "s/^$1 //p" <<< "$info"; }
sha_of() { sha256sum < "$top/build/musl/bin/$1" | cut -c1-64; }
[ "$(fact layout)" = '{"imageLayoutVersion":"1.0.0"}' ] && [ "$(fact ref)" = 9.8.7-test ] &&
    [ "$(fact mediatypes)" = "application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.config.v1+json application/vnd.oci.image.layer.v1.tar+gzip" ]
ok $? "OCI image layout 1.0.0, tagged IMAGE_TAG, OCI media types" || diag "$info"
[ "$(fact entry)" = "cloudtaser-init reg 0o555 0:0 '':'' 1700000000 $(sha_of cloudtaser-init)
cloudtaser-wrapper reg 0o555 0:0 '':'' 1700000000 $(sha_of cloudtaser-wrapper)" ] && [ "$(fact diff_id)" = True ]
ok $? "FROM scratch: exactly /cloudtaser-init and /cloudtaser-wrapper, the released bytes, 0555 root:root, mtime = SOURCE_DATE_EPOCH" ||
    diag "$(fact entry)"
[ "$(fact user)" = 65532:65532 ] && [ "$(fact entrypoint)" = '["/cloudtaser-init"]' ] && [ "$(fact cmd)" = null ] && [ "$(fact env)" = null ]
ok $? "entrypoint [\"/cloudtaser-init\"], user 65532:65532, no Cmd, no Env" || diag "$info"
[ "$(fact 'label source')" = https://example.invalid/cloudtaser ] && [ "$(fact 'label revision')" = "$IMAGE_REVISION" ] &&
    [ "$(fact 'label version')" = 9.8.7-test ]
ok $? "OCI labels org.opencontainers.image.source, .revision, .version" || diag "$info"
[ "$(fact created)" = "2023-11-14T22:13:20Z 2023-11-14T22:13:20Z" ] && [ "$(fact platform)" = "linux amd64" ]
ok $? "created (config and history) is SOURCE_DATE_EPOCH" || diag "$(fact created)"
winfo=$(inspect "$work/a/ct-workload")
[ "$(sed -n 's/^entry //p' <<< "$winfo" | cut -d' ' -f1-5)" = "ct-workload reg 0o555 0:0 '':''" ] &&
    [ "$(sed -n 's/^entrypoint //p' <<< "$winfo")" = '["/ct-workload"]' ]
ok $? "the test workload image: one static program, its entrypoint" || diag "$winfo"

# The init in the image carries the digest of the wrapper beside it.
mkdir -p "$work/x" && tar -xzf "$(ls -S "$work"/a/cloudtaser-wrapper/blobs/sha256/* | head -1)" -C "$work/x"
v=$("$work/x/cloudtaser-init" --version 2>&1)
[ "${v##*wrapper-sha256=}" = "$(sha256sum < "$work/x/cloudtaser-wrapper" | cut -c1-64)" ]
ok $? "the image's cloudtaser-init is built for the image's cloudtaser-wrapper (digest)" || diag "$v"

# Independent readers.
s=$(skopeo --insecure-policy inspect --config "oci:$work/a/cloudtaser-wrapper:9.8.7-test" 2>&1)
grep -q '"org.opencontainers.image.revision": "0123456789abcdef' <<< "$s" && grep -q '"User": "65532:65532"' <<< "$s"
ok $? "skopeo reads the OCI layout" || diag "$s"
umoci ls --layout "$work/a/cloudtaser-wrapper" 2> /dev/null | grep -qx 9.8.7-test
ok $? "umoci lists the tag"
mkdir -p "$work/arch" && tar -xf "$work/a/cloudtaser-wrapper.tar" -C "$work/arch"
m=$(cat "$work/arch/manifest.json" 2> /dev/null)
/usr/bin/python3 - "$work/arch" "$(fact config-digest)" <<'PY'
import hashlib, json, os, sys
d, cfg = sys.argv[1:3]
m = json.load(open(os.path.join(d, "manifest.json")))
assert len(m) == 1, m
assert m[0]["RepoTags"] == ["registry.invalid/ct/cloudtaser-wrapper:9.8.7-test"], m[0]["RepoTags"]
conf = open(os.path.join(d, m[0]["Config"]), "rb").read()
assert "sha256:" + hashlib.sha256(conf).hexdigest() == cfg, "config differs from the OCI one"
diff_ids = json.loads(conf)["rootfs"]["diff_ids"]
layers = ["sha256:" + hashlib.sha256(open(os.path.join(d, l), "rb").read()).hexdigest() for l in m[0]["Layers"]]
assert layers == diff_ids, (layers, diff_ids)
PY
ok $? "docker-archive: RepoTags IMAGE_PREFIX+name:tag, the same config (image ID), the layers are the diff_ids" || diag "$m"
s=$(skopeo --insecure-policy inspect "docker-archive:$work/a/cloudtaser-wrapper.tar" 2>&1)
grep -q '"Architecture": "amd64"' <<< "$s"
ok $? "skopeo reads the docker-archive" || diag "$s"
tap_done
