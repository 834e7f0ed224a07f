#!/usr/bin/env bash
# How `prove` runs each item of the suite (see run-all.sh).
top=$(cd "$(dirname "$0")/.." && pwd)
case "$1" in
*/replay-*)
    # A fuzz target's corpus replay: one TAP test per target.
    name=${1##*/replay-}
    if out=$("$1" "$top/tests/fuzz/corpus/$name" 2>&1); then
        echo "ok 1 - fuzz corpus $name: ${out##*$'\n'}"
    else
        echo "not ok 1 - fuzz corpus $name"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
    echo "1..1"
    ;;
*.py) exec /usr/bin/python3 "$1" ;;
*.sh) exec bash "$1" ;;
*) exec "$1" ;;
esac
