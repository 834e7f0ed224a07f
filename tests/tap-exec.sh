#!/usr/bin/env bash
# How `prove` runs each item of the suite (see run-all.sh).
top=$(cd "$(dirname "$0")/.." && pwd)
# No test may hang the suite: each item gets a bound (CHECK_TIMEOUT seconds), after which it is
# killed and counts as failed (prove reports the missing plan).
limit=${CHECK_TIMEOUT:-600}
case "$1" in
*/replay-*)
    # A fuzz target's corpus replay: one TAP test per target.
    name=${1##*/replay-}
    if out=$(timeout -k 10 "$limit" "$1" "$top/tests/fuzz/corpus/$name" 2>&1); then
        echo "ok 1 - fuzz corpus $name: ${out##*$'\n'}"
    else
        echo "not ok 1 - fuzz corpus $name"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
    echo "1..1"
    ;;
*.py) exec timeout -k 10 "$limit" /usr/bin/python3 "$1" ;;
*.sh) exec timeout -k 10 "$limit" bash "$1" ;;
*) exec timeout -k 10 "$limit" "$1" ;;
esac
