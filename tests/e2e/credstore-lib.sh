# SPDX-License-Identifier: Apache-2.0
# credstore-lib.sh: running tests/tools/ct-credstore in the test-real-credstore*.sh tests. Source it
# after real-lib.sh; $CT is the tool, $KC (a kubeconfig) and $BACKEND are passed when set.
#
#   ct NAME INPUT -- ARGS...     runs the tool with INPUT on stdin; $work/NAME.{out,err}, $rc
#   ctbg NAME INPUT -- ARGS...   the same in the background: $bgpid (wwait it)
#   attempts FILE CAUSE          the failed login attempts in FILE are numbered 1..N (N >= 2), one
#                                line each, every one naming CAUSE ("" for any cause)
: "${work:?}"

_ct_env() {
    _ct=(env -i PATH=/usr/bin:/bin "HOME=$work/home" "ASAN_OPTIONS=$WL_ASAN_OPTIONS"
        "UBSAN_OPTIONS=$WL_UBSAN_OPTIONS" ${KC:+"KUBECONFIG=$KC"}
        ${BACKEND:+"CLOUDTASER_SECRET_BACKEND=$BACKEND"} "$CT")
}

ct() {
    local name=$1 input=$2
    shift 3
    _ct_env
    printf '%s' "$input" | timeout -k 5 120 "${_ct[@]}" "$@" > "$work/$name.out" 2> "$work/$name.err"
    rc=$?
}

ctbg() {
    local name=$1 input=$2
    shift 3
    _ct_env
    printf '%s' "$input" | timeout -k 5 120 "${_ct[@]}" "$@" > "$work/$name.out" 2> "$work/$name.err" &
    bgpid=$!
}

attempts() {
    local n i
    n=$(grep -c 'vault login attempt [0-9]* failed: ' "$1")
    [ "$n" -ge 2 ] || return 1
    [ "$(grep 'vault login attempt [0-9]* failed: ' "$1" | grep -c -- "$2")" -eq "$n" ] || return 1
    for i in $(seq "$n"); do
        [ "$(grep -c "vault login attempt $i failed: " "$1")" -eq 1 ] || return 1
    done
}
