#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-init (docs/init.md), the released musl build and the ASan+UBSan build.
#   - installs the wrapper into a tmpfs directory: mode 0555, the built-in digest, no temporary
#     file left; a second run rewrites nothing (same inode, same mtime); a different file or a
#     writable mode is replaced;
#   - refuses (77) a symlink destination, a symlinked destination directory, a directory or FIFO
#     at the destination, a directory not on a tmpfs (unless --allow-any-fs), and touches nothing;
#   - a source that is not the wrapper it was built with (65), a missing, empty, symlinked or
#     non-regular source (66), a destination directory it cannot open or write (73), bad usage
#     (64); each failure is one "error:" line and leaves no temporary file;
#   - runs as an unprivileged uid with no capability at all.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"

WRAPPER=$top/build/musl/bin/cloudtaser-wrapper
want=$(sha256sum "$WRAPPER" 2>/dev/null | cut -c1-64)
[ -n "$want" ] || { echo "Bail out! $WRAPPER is not built (make all)"; exit 1; }

# A tmpfs directory: /dev/shm when it is one, else a tmpfs mounted in a private mount namespace.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    shm=$(mktemp -d /dev/shm/ct-init-e2e.XXXXXX)
elif [ "$(id -u)" = 0 ] && [ -z "${CT_INIT_NS:-}" ]; then
    CT_INIT_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
elif [ -n "${CT_INIT_NS:-}" ]; then
    shm=$(mktemp -d) && mount -t tmpfs -o mode=0700 ct-init "$shm" || { echo "Bail out! cannot mount a tmpfs"; exit 1; }
else
    echo "1..0 # SKIP no tmpfs: /dev/shm is not one and not root to mount one"
    exit 0
fi
disk=$(mktemp -d "${TMPDIR:-/tmp}/ct-init-e2e.XXXXXX")
cleanup() { rm -rf "$shm" "$disk"; }
trap cleanup EXIT
chmod 755 "$shm" "$disk"
cp "$WRAPPER" "$disk/wrapper" && chmod 755 "$disk/wrapper"
SRC=$disk/wrapper

# run NAME INIT ARGS... : stdout+stderr in $disk/NAME.log, status in $rc (bounded: a FIFO must not
# block it).
run() {
    local name=$1; shift
    timeout -k 2 20 "$@" > "$disk/$name.log" 2>&1
    rc=$?
}
show() { sed 's/^/#   /' "$disk/$1.log"; }
one_error_line() { # the log is exactly one line, an error, matching $2
    [ "$(wc -l < "$disk/$1.log")" -eq 1 ] && grep -q "cloudtaser-init\[[0-9]*\]: error: .*$2" "$disk/$1.log"
}
no_temp() { # no ".NAME.xxxxxx" temporary left in $1
    [ -z "$(find "$1" -maxdepth 1 -name '.*.*' -print -quit)" ]
}

for f in ${INIT_FLAVOURS:-musl asan}; do
    I=$top/build/$f/bin/cloudtaser-init
    if [ ! -x "$I" ]; then
        ok 1 "$f: $I is built"
        continue
    fi
    d=$shm/$f
    mkdir -p "$d" && chmod 777 "$d"

    run $f-version "$I" --version
    [ $rc -eq 0 ] && grep -qx "cloudtaser-init .* wrapper-sha256=$want" "$disk/$f-version.log"
    ok $? "$f: --version names the digest of the wrapper it was built with" || show $f-version

    # --- install, then idempotence
    run $f-install "$I" --source "$SRC" --dest "$d/wrapper"
    [ $rc -eq 0 ] && [ "$(sha256sum < "$d/wrapper" | cut -c1-64)" = "$want" ] &&
        [ "$(stat -c %a "$d/wrapper")" = 555 ] && [ -f "$d/wrapper" ] && [ ! -L "$d/wrapper" ]
    ok $? "$f: installs the wrapper (exit 0, regular file, mode 0555, the wrapper's SHA-256)" || show $f-install
    grep -q "installed $d/wrapper from $SRC: [0-9]* bytes, sha256 $want verified, copy [0-9.]* ms" "$disk/$f-install.log"
    ok $? "$f: says what it installed, with the digest and the copy time" || show $f-install
    no_temp "$d" && [ "$(ls -A "$d")" = wrapper ]
    ok $? "$f: leaves no temporary file" || diag "$(ls -A "$d")"
    "$d/wrapper" --version > /dev/null 2>&1
    ok $? "$f: the installed wrapper runs"
    before=$(stat -c '%i %Y.%y' "$d/wrapper")
    sleep 0.01
    run $f-again "$I" --source "$SRC" --dest "$d/wrapper"
    [ $rc -eq 0 ] && grep -q "already installed.*nothing written" "$disk/$f-again.log" &&
        [ "$(stat -c '%i %Y.%y' "$d/wrapper")" = "$before" ]
    ok $? "$f: a second run finds it identical and rewrites nothing (same inode and mtime)" || show $f-again

    # --- replaced: other content; same content but writable
    rm -f "$d/wrapper" && echo "old wrapper" > "$d/wrapper" && chmod 755 "$d/wrapper"
    run $f-replace "$I" --source "$SRC" --dest "$d/wrapper"
    [ $rc -eq 0 ] && [ "$(sha256sum < "$d/wrapper" | cut -c1-64)" = "$want" ] && [ "$(stat -c %a "$d/wrapper")" = 555 ]
    ok $? "$f: a different file at the destination is replaced" || show $f-replace
    chmod 755 "$d/wrapper"
    run $f-mode "$I" --source "$SRC" --dest "$d/wrapper"
    [ $rc -eq 0 ] && [ "$(stat -c %a "$d/wrapper")" = 555 ] && grep -q installed "$disk/$f-mode.log"
    ok $? "$f: the same content with a writable mode (0755) is replaced by a 0555 copy" || show $f-mode

    # --- refusals (77): nothing is followed or written
    echo "keep me" > "$disk/$f-target"
    ln -sfn "$disk/$f-target" "$d/link"
    run $f-symlink "$I" --source "$SRC" --dest "$d/link"
    [ $rc -eq 77 ] && one_error_line $f-symlink "the destination is a symlink" &&
        [ "$(cat "$disk/$f-target")" = "keep me" ] && [ -L "$d/link" ]
    ok $? "$f: a symlink destination is refused (77), its target untouched" || show $f-symlink
    mkdir -p "$disk/$f-otherdir" && chmod 777 "$disk/$f-otherdir"
    ln -sfn "$shm" "$d/dirlink"
    run $f-dirlink "$I" --source "$SRC" --dest "$d/dirlink/wrapper"
    [ $rc -eq 77 ] && one_error_line $f-dirlink "the destination directory is a symlink" && [ ! -e "$shm/wrapper" ]
    ok $? "$f: a destination directory that is a symlink is refused (77)" || show $f-dirlink
    mkdir -p "$d/adir"
    run $f-isdir "$I" --source "$SRC" --dest "$d/adir"
    [ $rc -eq 77 ] && one_error_line $f-isdir "not a regular file" && [ -d "$d/adir" ]
    ok $? "$f: a directory at the destination is refused (77)" || show $f-isdir
    mkfifo "$d/fifo"
    run $f-fifo "$I" --source "$SRC" --dest "$d/fifo"
    [ $rc -eq 77 ] && one_error_line $f-fifo "not a regular file" && [ -p "$d/fifo" ]
    ok $? "$f: a FIFO at the destination is refused (77) without blocking" || show $f-fifo
    run $f-notdir "$I" --source "$SRC" --dest "$d/wrapper/x"
    [ $rc -eq 77 ] && one_error_line $f-notdir "not a directory"
    ok $? "$f: a destination directory that is a file is refused (77)" || show $f-notdir
    mkdir -p "$disk/$f-ondisk" && chmod 777 "$disk/$f-ondisk"
    if [ "$(stat -f -c %T "$disk")" != tmpfs ]; then
        run $f-disk "$I" --source "$SRC" --dest "$disk/$f-ondisk/wrapper"
        [ $rc -eq 77 ] && one_error_line $f-disk "not on a tmpfs (filesystem type 0x[0-9a-f]*).*--allow-any-fs" &&
            [ -z "$(ls -A "$disk/$f-ondisk")" ]
        ok $? "$f: a directory not on a tmpfs is refused (77), nothing written" || show $f-disk
        run $f-anyfs "$I" --allow-any-fs --source "$SRC" --dest "$disk/$f-ondisk/wrapper"
        [ $rc -eq 0 ] && [ "$(sha256sum < "$disk/$f-ondisk/wrapper" | cut -c1-64)" = "$want" ]
        ok $? "$f: --allow-any-fs installs there" || show $f-anyfs
    else
        skip "$f: $disk is a tmpfs: the not-tmpfs refusal cannot be shown"
    fi

    # --- sources (65, 66)
    cp "$SRC" "$disk/$f-bad" && printf 'X' | dd of="$disk/$f-bad" bs=1 seek=1000 conv=notrunc status=none
    badsum=$(sha256sum < "$disk/$f-bad" | cut -c1-64)
    run $f-digest "$I" --source "$disk/$f-bad" --dest "$d/new"
    [ $rc -eq 65 ] && one_error_line $f-digest "not the wrapper this init was built with (found sha256 $badsum, expected $want)" &&
        [ ! -e "$d/new" ] && no_temp "$d"
    ok $? "$f: a source with one byte changed: 65, nothing written, both digests named" || show $f-digest
    run $f-digest2 "$I" --source "$disk/$f-bad" --dest "$d/wrapper"
    [ $rc -eq 65 ] && [ "$(sha256sum < "$d/wrapper" | cut -c1-64)" = "$want" ]
    ok $? "$f: ... and an installed wrapper is left as it was" || show $f-digest2
    run $f-nosrc "$I" --source "$disk/none" --dest "$d/new"
    [ $rc -eq 66 ] && one_error_line $f-nosrc "Failed to open the source '$disk/none': No such file"
    ok $? "$f: a missing source: 66" || show $f-nosrc
    ln -sfn "$SRC" "$disk/$f-srclink"
    run $f-srclink "$I" --source "$disk/$f-srclink" --dest "$d/new"
    [ $rc -eq 66 ] && [ ! -e "$d/new" ]
    ok $? "$f: a symlinked source is not followed: 66" || show $f-srclink
    : > "$disk/$f-empty"
    run $f-emptysrc "$I" --source "$disk/$f-empty" --dest "$d/new"
    [ $rc -eq 66 ]
    ok $? "$f: an empty source: 66" || show $f-emptysrc
    run $f-dirsrc "$I" --source "$disk" --dest "$d/new"
    [ $rc -eq 66 ] && [ ! -e "$d/new" ]
    ok $? "$f: a directory as the source: 66" || show $f-dirsrc
    no_temp "$d"
    ok $? "$f: no failure left a temporary file" || diag "$(ls -A "$d")"

    # --- the destination directory (73)
    run $f-nodir "$I" --source "$SRC" --dest "$d/missing/wrapper"
    [ $rc -eq 73 ] && one_error_line $f-nodir "Failed to open the destination directory"
    ok $? "$f: a missing destination directory: 73" || show $f-nodir

    # --- usage (64)
    run $f-usage "$I" --bogus
    [ $rc -eq 64 ] && grep -q "error: usage error" "$disk/$f-usage.log"
    ok $? "$f: an unknown option: 64" || show $f-usage
    run $f-extra "$I" --dest "$d/wrapper" extra
    [ $rc -eq 64 ]
    ok $? "$f: an unexpected argument: 64" || show $f-extra
    run $f-slash "$I" --source "$SRC" --dest "$d/"
    [ $rc -eq 64 ]
    ok $? "$f: a destination without a file name: 64" || show $f-slash

    # --- any uid, no capability (what the init container runs with)
    if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
        asuser=(setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs)
        u=$shm/$f-user
        mkdir -p "$u" && chmod 777 "$u"
        run $f-uid "${asuser[@]}" "$I" --source "$SRC" --dest "$u/wrapper"
        [ $rc -eq 0 ] && [ "$(stat -c '%u %a' "$u/wrapper")" = "65532 555" ] &&
            [ "$(sha256sum < "$u/wrapper" | cut -c1-64)" = "$want" ]
        ok $? "$f: as uid 65532 with no capability (bounding set empty, no_new_privs)" || show $f-uid
        "${asuser[@]}" grep -q '^CapEff:.*0000000000000000' /proc/self/status
        ok $? "$f: (control) that setpriv leaves no effective capability"
        mkdir -p "$shm/$f-rootonly" && chmod 755 "$shm/$f-rootonly"
        run $f-perm "${asuser[@]}" "$I" --source "$SRC" --dest "$shm/$f-rootonly/wrapper"
        [ $rc -eq 73 ] && one_error_line $f-perm "Failed to create a temporary file in .*Permission denied" &&
            [ -z "$(ls -A "$shm/$f-rootonly")" ]
        ok $? "$f: a directory it may not write: 73, nothing written" || show $f-perm
    else
        skip "$f: not root: cannot switch to uid 65532"
        skip "$f: not root"
        skip "$f: not root"
    fi
done
tap_done
