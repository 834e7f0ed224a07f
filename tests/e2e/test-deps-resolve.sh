#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deps/resolve.sh and the cache key of deps/deps.mk: a pin that Debian's archive no longer has is
# replaced by the newest revision of the same upstream release, loudly, and the cache key follows
# the version actually built. Resolution only (no download, no build): it takes about a second.
#   1. against the real apt index: a pin moved to a revision Debian never publishes (+deb12u0)
#   2. against a stand-in apt-cache with a fixed archive: every rule (revision order, epochs,
#      another upstream never substituted, unknown packages, the memo and when it is refreshed)
#   3. through make: the key of a substituted pin is the key of the substitute pinned directly
#   4. deps/build.sh: the warning framed in the build log; a stale key refused before any build
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
resolve=$top/deps/resolve.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. the real archive ----------------------------------------------------------------------
real=$(apt-cache showsrc curl 2>/dev/null | awk '/^Package:/ { p = $2 } /^Version:/ && p == "curl" { print $2 }')
pin=$(awk '$1 == "curl" { print $2 }' "$top/deps/versions")
if [ -z "$real" ] || [ -z "$pin" ]; then
    skip "apt knows no curl source package (no deb-src line: make setup adds it)"
else
    # The newest archive revision of the pinned upstream release, computed here independently.
    up=${pin%-*}
    want=""
    for v in $real; do
        [ "${v%-*}" = "$up" ] || continue
        if [ -z "$want" ] || dpkg --compare-versions "$v" gt "$want"; then want=$v; fi
    done
    gone="${pin%+deb12u*}+deb12u0" # Debian numbers stable updates from +deb12u1
    sed "s/^curl .*/curl $gone/" "$top/deps/versions" > "$work/versions.real"
    out=$("$resolve" "$work/versions.real" 2> "$work/real.err")
    rc=$?
    got=$(awk '$1 == "curl" { print $2 }' <<< "$out")
    [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]
    ok $? "real archive: curl pinned at $gone (not in the archive) builds $want, the newest $up-* (got '$got', rc $rc)"
    grep -q "WARNING: deps: curl $gone .*no longer in the archive; building $want instead" "$work/real.err"
    ok $? "and it says so on stderr" || sed 's/^/# /' "$work/real.err"
    others_in=$(grep -v '^curl ' "$work/versions.real" | awk '!/^[[:space:]]*(#|$)/ { print $1 }' | sort)
    others_out=$(grep -v '^curl ' <<< "$out" | awk '{ print $1 }' | sort)
    [ "$others_in" = "$others_out" ] && [ "$(grep -c 'WARNING: deps: curl ' "$work/real.err")" = 1 ]
    ok $? "every other pin is printed, and curl is warned about once"
fi

# --- 2. a stand-in archive --------------------------------------------------------------------
cat > "$work/apt-cache" <<'EOF'
#!/bin/sh
# A fixed archive, in `apt-cache showsrc` form; every call is counted.
echo call >> "${0%/*}/calls"
[ "$1" = showsrc ] || exit 100
cat <<'SRC'
Package: curl
Binary: curl, libcurl4
Version: 7.88.1-10+deb12u5

Package: curl
Version: 7.88.1-10+deb12u15

Package: curl
Version: 8.0.0-1

Package: libcap2
Version: 1:2.66-4+deb12u3

Package: libcap2
Version: 2.66-9

Package: libyaml
Version: 0.2.5-1

Package: cjson-doc
Version: 9.9.9-1

Package: cjson
Version: 1.7.15-1+deb12u4
SRC
EOF
chmod +x "$work/apt-cache"
export DEPS_APT_CACHE="$work/apt-cache"
cat > "$work/versions" <<'EOF'
# a comment line, and a blank one

curl       7.88.1-10+deb12u1
libcap2    1:2.66-4+deb12u1
libyaml    0.2.5-1
cjson      1.7.15-1+deb12u4
nosuchpkg  1.0-1
EOF
out=$("$resolve" "$work/versions" 2> "$work/err")
rc=$?
[ $rc -eq 0 ]
ok $? "stand-in: every pin resolves (rc $rc)"
grep -qx 'curl 7.88.1-10+deb12u15' <<< "$out"
ok $? "a gone revision becomes the newest of its upstream in Debian's order (u15, not u5), never another upstream (8.0.0)"
grep -qx 'libcap2 1:2.66-4+deb12u3' <<< "$out"
ok $? "the epoch is part of the upstream release (1:2.66-4+deb12u3, not 2.66-9)"
grep -qx 'libyaml 0.2.5-1' <<< "$out" && grep -qx 'cjson 1.7.15-1+deb12u4' <<< "$out"
ok $? "a pin still in the archive is kept (an equally named binary-package entry does not count)"
grep -qx 'nosuchpkg 1.0-1' <<< "$out"
ok $? "a package apt does not know keeps its pin (apt-get source will say why)"
[ "$(awk '{ print $1 }' <<< "$out" | paste -sd' ')" = "curl libcap2 libyaml cjson nosuchpkg" ]
ok $? "one line per pin, in the file's order, comments skipped"
[ "$(grep -c '^WARNING: deps: ' "$work/err")" = 2 ] &&
    grep -q 'curl 7.88.1-10+deb12u1 .*building 7.88.1-10+deb12u15 instead.*UNTESTED' "$work/err" &&
    grep -q 'libcap2 1:2.66-4+deb12u1 .*building 1:2.66-4+deb12u3 instead' "$work/err"
ok $? "each substitution is warned about, naming the pin and the substitute" || sed 's/^/# /' "$work/err"

printf 'curl 7.87.0-2\n' > "$work/versions.other"
out=$("$resolve" "$work/versions.other" 2> "$work/err.other")
rc=$?
[ $rc -eq 1 ] && [ "$out" = "curl 7.87.0-2" ] &&
    grep -q 'ERROR: deps: curl 7.87.0-2 is not in the archive and apt offers no other revision of upstream 7.87.0' "$work/err.other"
ok $? "no revision of the pinned upstream: the pin is printed unchanged, an error, exit 1 (rc $rc)" ||
    sed 's/^/# /' "$work/err.other"

# The memo: a second call does not ask apt again, and repeats the answer and its warnings.
memo=$work/memo
rm -f "$work/calls"
a=$("$resolve" --cache "$memo" "$work/versions" 2> "$work/e1")
b=$("$resolve" --cache "$memo" "$work/versions" 2> "$work/e2")
[ "$(wc -l < "$work/calls")" = 1 ] && [ "$a" = "$b" ] && cmp -s "$work/e1" "$work/e2" && [ -s "$work/e2" ]
ok $? "the memo answers the second call without apt-cache, warnings included ($(wc -l < "$work/calls") calls)"
"$resolve" --cache "$memo" "$work/versions.other" > /dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < "$work/calls")" = 2 ]
ok $? "another pin file is resolved afresh, exit status included (rc $rc)"
sed -i 's/^libyaml .*/libyaml 0.2.5-2/' "$work/versions"
c=$("$resolve" --cache "$memo" "$work/versions" 2> /dev/null)
[ "$(wc -l < "$work/calls")" = 3 ] && grep -qx 'libyaml 0.2.5-1' <<< "$c"
ok $? "an edited pin file is resolved afresh (libyaml 0.2.5-2 -> 0.2.5-1)"
mkdir -p "$work/lists"
export DEPS_APT_LISTS="$work/lists"
"$resolve" --cache "$memo" "$work/versions" > /dev/null 2>&1
n=$(wc -l < "$work/calls")
echo new > "$work/lists/deb.debian.org_debian_dists_bookworm_main_source_Sources"
"$resolve" --cache "$memo" "$work/versions" > /dev/null 2>&1
[ "$(wc -l < "$work/calls")" = $((n + 1)) ]
ok $? "an apt-get update (new Sources index) refreshes the memo"
unset DEPS_APT_LISTS

# --- 3. the cache key through make --------------------------------------------------------------
key() { # VERSIONS_FILE -> "<key> <resolved list>"
    make -s --no-print-directory -C "$top" print-deps-key DEPS_VERSIONS="$1" \
        DEPS_RESOLVE_CACHE="$work/make-memo" 2> "$work/make.err"
}
printf 'curl 7.88.1-10+deb12u1\nlibyaml 0.2.5-1\n' > "$work/v-gone"
printf 'curl 7.88.1-10+deb12u15\nlibyaml 0.2.5-1\n' > "$work/v-new"
printf 'curl 7.88.1-10+deb12u5\nlibyaml 0.2.5-1\n' > "$work/v-old"
k_gone=$(key "$work/v-gone")
warned=$(grep -c 'WARNING: deps: curl 7.88.1-10+deb12u1' "$work/make.err")
k_new=$(key "$work/v-new")
k_old=$(key "$work/v-old")
[ -n "$k_gone" ] && [ "$k_gone" = "$k_new" ] && [ "${k_gone#* }" = "curl 7.88.1-10+deb12u15 libyaml 0.2.5-1" ]
ok $? "make keys the cache on the resolved versions: a gone pin shares the cache of its substitute ('$k_gone')"
[ "${k_old%% *}" != "${k_new%% *}" ]
ok $? "and another version that is in the archive gets its own cache ('${k_old%% *}')"
[ "$warned" -ge 1 ]
ok $? "make prints the substitution warning"

# --- 4. the build log: the substitution framed, and a key computed from other versions refused --
# (build.sh stops at its version check, before it downloads or builds anything)
out=$(DEPS_VERSIONS="$work/v-gone" DEPS_RESOLVED="curl 7.88.1-10+deb12u1 libyaml 0.2.5-1" \
    "$top/deps/build.sh" glibc "$work/prefix/glibc" 2>&1)
rc=$?
grep -q '^!!!!!!!!' <<< "$out" && grep -q '^!! WARNING: deps: curl 7.88.1-10+deb12u1 .*building 7.88.1-10+deb12u15 instead' <<< "$out"
ok $? "deps/build.sh frames the substitution warning in the build log" || diag "$out"
[ $rc -ne 0 ] && grep -q "apt now resolves the pins to 'curl 7.88.1-10+deb12u15 libyaml 0.2.5-1', not to 'curl 7.88.1-10+deb12u1 libyaml 0.2.5-1'" <<< "$out" &&
    [ ! -e "$work/prefix/glibc/lib" ]
ok $? "and refuses to build when apt answers otherwise than the cache key was computed from (rc $rc)" || diag "$out"

tap_done
