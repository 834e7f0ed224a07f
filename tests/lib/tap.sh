# SPDX-License-Identifier: Apache-2.0
# tap.sh: TAP helpers for shell end-to-end tests. Source it; end the script with `tap_done`.
#   ok COND-EXIT-STATUS "name"     e.g.  ok $? "login works"  or  check "name" cmd args...
#   check "name" cmd args...        runs the command, passes when it exits 0
#   check_fails "name" cmd args...  passes when it exits non-zero
#   skip "why"                      one skipped test
_tap_n=0
_tap_failed=0

ok() {
    local status=$1; shift
    _tap_n=$((_tap_n + 1))
    if [ "$status" -eq 0 ]; then
        echo "ok $_tap_n - $*"
    else
        echo "not ok $_tap_n - $*"
        _tap_failed=$((_tap_failed + 1))
    fi
    return "$status"
}

check() {
    local name=$1; shift
    "$@"
    ok $? "$name"
}

check_fails() {
    local name=$1; shift
    if "$@"; then ok 1 "$name"; else ok 0 "$name"; fi
}

skip() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - # SKIP $*"
}

diag() {
    printf '%s\n' "$@" | sed 's/^/# /'
}

tap_done() {
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ] && [ "$_tap_n" -gt 0 ]
}
