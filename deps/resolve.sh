#!/usr/bin/env bash
# Resolves the pinned dependency versions (deps/versions) against what apt can fetch today.
#
#   deps/resolve.sh [--cache FILE] [VERSIONS_FILE]
#
# Prints one line "<source package> <version to build>" per pin, in the order of the file.
#
# deps/versions names the exact Debian versions we tested. Debian's archive keeps only the newest
# version of a stable release, so the day a security update of a pinned package reaches bookworm
# the pinned version can no longer be downloaded and a fresh machine could not build at all. Then
# this script picks the newest version apt offers of the SAME upstream release (same epoch and
# upstream version, any Debian revision: 7.88.1-10+deb12u5 -> 7.88.1-10+deb12u15) and says so
# loudly on stderr. A different upstream release is never substituted: that needs a human, a new
# pin and the tests.
#
# The cache key of the built dependencies (deps/deps.mk) is computed from this output, so the
# cache always names the versions actually built.
#
# Exit status: 0 when every package resolves (the pin, or a substitute); 1 when apt knows a
# package but offers no version of its pinned upstream release (its pin is printed unchanged and
# `apt-get source` will fail), 2 on a usage or file error. When apt knows nothing about a package
# (no deb-src line yet: `make setup` adds it) the pin is printed unchanged and the status is 0.
#
# --cache FILE remembers the answer (apt-cache takes about a second) until deps/versions, this
# script or apt's source indices change.
# DEPS_APT_CACHE names the apt-cache program (the tests substitute a stand-in).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=""
if [ "${1:-}" = "--cache" ]; then
    cache=${2:?usage: resolve.sh [--cache FILE] [VERSIONS_FILE]}
    shift 2
fi
versions=${1:-$here/versions}
[ -r "$versions" ] || { echo "deps: cannot read $versions" >&2; exit 2; }
apt_cache=${DEPS_APT_CACHE:-apt-cache}
lists=${DEPS_APT_LISTS:-/var/lib/apt/lists}

# What the answer depends on: the pins, this script, the apt program and its source indices.
stamp() {
    {
        cat "$versions" "$0"
        echo "$apt_cache"
        stat -c '%n %s %Y' "$lists" "$lists"/*Sources* 2>/dev/null || true
    } | sha256sum | cut -c1-64
}

if [ -n "$cache" ]; then
    s=$(stamp)
    if [ -f "$cache" ] && [ "$(head -n1 "$cache")" = "# $s" ]; then
        tail -n +2 "$cache" | grep -v '^#' || true
        # The warnings are part of the answer: repeat them on every call.
        { tail -n +2 "$cache" | sed -n 's/^# warn //p'; } >&2
        exit "$(sed -n 's/^# status //p' "$cache")"
    fi
fi

# All source versions apt knows, one "<package> <version>" line each (one apt-cache call).
mapfile -t pkgs < <(awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$versions")
[ ${#pkgs[@]} -gt 0 ] || { echo "deps: no pins in $versions" >&2; exit 2; }
known=$("$apt_cache" showsrc "${pkgs[@]}" 2>/dev/null |
    awk '/^Package:/ { p = $2 } /^Version:/ { print p, $2 }' | sort -u) || true

upstream_of() { # epoch:upstream without the Debian revision
    local v=$1
    case "$v" in *-*) echo "${v%-*}" ;; *) echo "$v" ;; esac
}

status=0
out=""
warns=()
while read -r pkg pin rest; do
    case "$pkg" in '' | '#'*) continue ;; esac
    [ -n "$pin" ] || { echo "deps: $versions: no version for $pkg" >&2; exit 2; }
    have=$(awk -v p="$pkg" '$1 == p { print $2 }' <<< "$known")
    pick=$pin
    if [ -z "$have" ]; then
        : # apt does not know the package (no deb-src yet): keep the pin, apt-get source will say why
    elif grep -qxF -- "$pin" <<< "$have"; then
        : # the tested version is still in the archive
    else
        up=$(upstream_of "$pin")
        best=""
        while read -r v; do
            [ "$(upstream_of "$v")" = "$up" ] || continue
            if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
        done <<< "$have"
        if [ -n "$best" ]; then
            pick=$best
            warns+=("WARNING: deps: $pkg $pin (the tested pin in deps/versions) is no longer in the archive; building $best instead, the newest Debian revision of the same upstream release ${up#*:}. It is UNTESTED: run make check and update deps/versions.")
        else
            status=1
            warns+=("ERROR: deps: $pkg $pin is not in the archive and apt offers no other revision of upstream ${up#*:} (it has: $(paste -sd' ' <<< "$have")). Pin a new version in deps/versions.")
        fi
    fi
    out+="$pkg $pick"$'\n'
done < "$versions"

printf '%s' "$out"
for w in "${warns[@]}"; do echo "$w" >&2; done
if [ -n "$cache" ]; then
    tmp="$cache.tmp.$$"
    mkdir -p "$(dirname "$cache")"
    {
        echo "# $s"
        echo "# status $status"
        for w in "${warns[@]}"; do echo "# warn $w"; done
        printf '%s' "$out"
    } > "$tmp" && mv -f "$tmp" "$cache"
fi
exit $status
