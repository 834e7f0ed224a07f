#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/ without a cluster (docs/install.md): kubectl's built-in kustomize builds the default
# install and both overlays; the plain files of deploy/base/ are the same objects as the build;
# deploy/set-images.sh, on a copy of deploy/, rewrites the base's files and its Kustomization to
# the same digests (so -f and -k stay the same), writes only an overlay's kustomization when given
# one, and refuses a bad digest, a missing digest file and a kustomization without its markers.
# On the real API server: tests/e2e/test-real-install.sh.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
command -v kubectl > /dev/null || { echo "1..0 # SKIP no kubectl"; exit 0; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-deploy.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# same BUILD.yaml FILE...: the objects of a kustomize build and of plain files, field for field.
same() {
    python3 - "$@" <<'EOF'
import sys, yaml
def objs(paths):
    out = {}
    for p in paths:
        for d in yaml.safe_load_all(open(p)):
            if d:
                out[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = d
    return out
k, f = objs(sys.argv[1:2]), objs(sys.argv[2:])
diff = [str(key) for key in sorted(set(k) | set(f), key=str) if k.get(key) != f.get(key)]
print("differ: " + ", ".join(diff) if diff else "same")
sys.exit(1 if diff or len(k) != 11 else 0)
EOF
}

for d in deploy deploy/overlays/ha deploy/overlays/fallback deploy/overlays/sealed; do
    kubectl kustomize "$top/$d" > "$work/$(basename "$d").yaml" 2> "$work/err"
    ok $? "kubectl kustomize $d" || sed 's/^/# /' "$work/err"
done
out=$(same "$work/deploy.yaml" "$top"/deploy/base/*.yaml)
ok $? "kubectl kustomize deploy/ gives the plain files of deploy/base/, field for field" || diag "$out"

# The committed references: by digest, the same in the Kustomization and in the files.
grep -qE 'image: [^ ]+/cloudtaser-operator@sha256:[0-9a-f]{64}$' "$top/deploy/base/40-deployment.yaml" &&
    grep -qE 'init-image: "[^ ]+/cloudtaser-wrapper@sha256:[0-9a-f]{64}"$' "$top/deploy/base/30-configmap.yaml" &&
    [ "$(grep -c '^  digest: sha256:' "$top/deploy/base/Kustomization")" -eq 2 ]
ok $? "the operator's and the init container's images are referenced by digest"

# set-images.sh on a copy of deploy/ (it is run from there, as deploy/set-images.sh).
cp -r "$top/deploy" "$work/deploy"
mkdir -p "$work/digests"
d1=sha256:$(printf a%.0s {1..64})
d2=sha256:$(printf b%.0s {1..64})
echo "$d1" > "$work/digests/cloudtaser-operator.digest"
echo "$d2" > "$work/digests/cloudtaser-wrapper.digest"
"$work/deploy/set-images.sh" --digests "$work/digests" registry.test:5000/team > "$work/set.out" 2>&1 &&
    grep -qF "image: registry.test:5000/team/cloudtaser-operator@$d1" "$work/deploy/base/40-deployment.yaml" &&
    grep -qF "init-image: \"registry.test:5000/team/cloudtaser-wrapper@$d2\"" "$work/deploy/base/30-configmap.yaml" &&
    kubectl kustomize "$work/deploy" > "$work/set.yaml" 2>> "$work/set.out" &&
    same "$work/set.yaml" "$work"/deploy/base/*.yaml >> "$work/set.out" &&
    ! grep -q 'ghcr.io' "$work/set.yaml"
ok $? "set-images.sh REGISTRY: the base's files and its Kustomization name the new images, -f and -k the same" ||
    sed 's/^/# /' "$work/set.out"
# Again, to another registry: the base's names it matches on have changed with the first run.
echo "$d2" > "$work/digests/cloudtaser-operator.digest"
"$work/deploy/set-images.sh" --digests "$work/digests" other.test > "$work/set2.out" 2>&1 &&
    kubectl kustomize "$work/deploy" > "$work/set2.yaml" 2>> "$work/set2.out" &&
    same "$work/set2.yaml" "$work"/deploy/base/*.yaml >> "$work/set2.out" &&
    grep -qF "image: other.test/cloudtaser-operator@$d2" "$work/set2.yaml" && ! grep -q 'registry.test' "$work/set2.yaml"
ok $? "set-images.sh a second time, to another registry and digest" || sed 's/^/# /' "$work/set2.out"

# An overlay: only its kustomization changes; its build has the new images.
mkdir -p "$work/ov"
printf 'resources:\n- ../deploy/overlays/ha\n# BEGIN set-images.sh\n# END set-images.sh\n' > "$work/ov/kustomization.yaml"
cp -r "$work/deploy/base" "$work/base-before"
"$work/deploy/set-images.sh" --digests "$work/digests" 127.0.0.1:5000 "$work/ov" > "$work/ov.out" 2>&1 &&
    kubectl kustomize "$work/ov" > "$work/ov.yaml" 2>> "$work/ov.out" &&
    grep -qF "image: 127.0.0.1:5000/cloudtaser-operator@$d2" "$work/ov.yaml" &&
    grep -qF "init-image: 127.0.0.1:5000/cloudtaser-wrapper@$d2" "$work/ov.yaml" &&
    grep -q -- '- --leader-elect$' "$work/ov.yaml" && diff -r "$work/base-before" "$work/deploy/base" >> "$work/ov.out"
ok $? "set-images.sh REGISTRY OVERLAY: the overlay's images set, deploy/base/ unchanged" || sed 's/^/# /' "$work/ov.out"

# Refusals, each leaving the kustomization as it was.
cp "$work/ov/kustomization.yaml" "$work/ov-before.yaml"
echo "sha256:xyz" > "$work/digests/cloudtaser-wrapper.digest"
"$work/deploy/set-images.sh" --digests "$work/digests" reg.test "$work/ov" > "$work/bad.out" 2>&1
r=$?
[ $r -eq 65 ] && grep -q 'does not hold a sha256 digest' "$work/bad.out" && cmp -s "$work/ov-before.yaml" "$work/ov/kustomization.yaml"
ok $? "a malformed digest file is refused (65), nothing written" || diag "rc=$r $(cat "$work/bad.out")"
rm "$work/digests/cloudtaser-wrapper.digest"
"$work/deploy/set-images.sh" --digests "$work/digests" reg.test "$work/ov" > "$work/bad.out" 2>&1
r=$?
[ $r -eq 66 ] && grep -q 'run make images' "$work/bad.out" && cmp -s "$work/ov-before.yaml" "$work/ov/kustomization.yaml"
ok $? "a missing digest file is refused (66), nothing written" || diag "rc=$r $(cat "$work/bad.out")"
echo "$d1" > "$work/digests/cloudtaser-wrapper.digest"
printf 'resources:\n- ../deploy\n' > "$work/ov/kustomization.yaml"
"$work/deploy/set-images.sh" --digests "$work/digests" reg.test "$work/ov" > "$work/bad.out" 2>&1
r=$?
[ $r -eq 65 ] && grep -q 'has no' "$work/bad.out"
ok $? "a kustomization without the BEGIN/END lines is refused (65)" || diag "rc=$r $(cat "$work/bad.out")"
"$work/deploy/set-images.sh" --digests "$work/digests" 'bad registry' > "$work/bad.out" 2>&1
r=$?
[ $r -eq 64 ]
ok $? "a malformed registry is refused (64)" || diag "rc=$r $(cat "$work/bad.out")"

# What the overlays change, and nothing of the fallback in the default.
grep -q '^  replicas: 3$' "$work/ha.yaml" && grep -q -- '- --leader-elect$' "$work/ha.yaml" &&
    grep -q 'whenUnsatisfiable: DoNotSchedule' "$work/ha.yaml" && ! grep -q -- '--leader-elect' "$work/deploy.yaml"
ok $? "overlays/ha: 3 replicas, --leader-elect, the node spread enforced"
grep -q -- '- --secret-backend=kubernetes$' "$work/fallback.yaml" && ! grep -q -- '--secret-backend=vault' "$work/fallback.yaml" &&
    grep -q 'cloudtaser-operator-certs' "$work/fallback.yaml" && ! grep -q 'cloudtaser-operator-certs' "$work/deploy.yaml" &&
    grep -q -- '- --secret-backend=vault$' "$work/deploy.yaml"
ok $? "overlays/fallback: the kubernetes backend and the RBAC of its one Secret; the default has neither"
python3 - "$work/sealed.yaml" "$work/deploy.yaml" <<'EOF' > "$work/sealed.check" 2>&1
import sys, yaml
def rules(f):
    out = []
    for d in yaml.safe_load_all(open(f)):
        if d and d["kind"] == "ClusterRole":
            out += [(r.get("resources"), r.get("verbs")) for r in d["rules"] if "pods" in r.get("resources", [])]
    return out
s, base = rules(sys.argv[1]), rules(sys.argv[2])
ok = s == [(["pods"], ["list", "watch"])] and base == []
print("ok" if ok else "sealed %r, default %r" % (s, base))
sys.exit(0 if ok else 1)
EOF
ok $? "overlays/sealed: pods list and watch for the unsealer, nothing else on pods; the default has none" ||
    sed 's/^/# /' "$work/sealed.check"
grep -q -- '- --unseal-pods$' "$work/sealed.yaml" && ! grep -q -- '--unseal-pods' "$work/deploy.yaml"
ok $? "overlays/sealed: --unseal-pods (admission and the unsealer); the default has it off"

tap_done
