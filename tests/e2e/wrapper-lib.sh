# SPDX-License-Identifier: Apache-2.0
# wrapper-lib.sh: shared pieces of the cloudtaser-wrapper end-to-end tests (test-wrapper-*.sh).
# Source it after tests/lib/tap.sh and tests/standin/standin.sh, then call wl_setup [CONFIG.json].
#
# The wrapper always runs under `env -i` with an exact environment: WL_BASE (a small PATH/HOME/
# LANG plus the vault settings) and the VAR=VALUE arguments of the call, so what reaches the
# workload can be compared name by name. ct-workload (the musl build: it is the wrapper that is
# under test) is the workload.
#
#   wl_setup [CONFIG]      work dir ($work), stand-in vault, service-account JWT, WL_BASE, cleanup
#   wl_flavours            "musl asan" (WL_FLAVOURS overrides)
#   wl_use FLAVOUR         sets W (the wrapper); fails (and says so as a TAP failure) if not built
#   wrun NAME [VAR=VAL | -VAR]... [WRAPPER ARGS...]
#                          runs the wrapper in the foreground (bounded by `timeout`): stdout in
#                          $work/NAME.out, stderr in $work/NAME.err, exit status in $rc.
#                          -VAR removes VAR from WL_BASE.
#   wstart NAME [VAR=VAL | -VAR]... [WRAPPER ARGS...]
#                          the same in the background: $wpid is the wrapper's pid (env execs it)
#   wwait PID [SECONDS]    waits for a background wrapper (default 30 s, then SIGKILL); sets $rc
#   wait_grep FILE REGEX [SECONDS [PID]]   polls until a line matches (default 20 s); gives up
#                          early when PID (the wrapper) is gone
#   show NAME              the run's stdout and stderr as TAP diagnostics
#   plant PATH JSON-DATA   a new secret version through the control API

: "${top:?}"
WL=$top/build/musl/bin/ct-workload
WL_ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
WL_UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
_wl_bg=()
WL_PREFIX=() # a command the wrapper runs under (unshare, setpriv), after env -i

wl_cleanup() {
    local p
    for p in "${_wl_bg[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    standin_stop
    [ -n "${work:-}" ] && [ -z "${WL_KEEP:-}" ] && rm -rf "$work"
    return 0
}

wl_setup() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/ct-wrapper-e2e.XXXXXX") || exit 1
    chmod 755 "$work"
    # Close what the harness left open (bash keeps its script on 255), so that the descriptors a
    # workload sees are exactly the ones a test chose to pass.
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && [ "$fd" != 255 ] && eval "exec $fd>&-" 2>/dev/null
    done
    mkdir -p "$work/home"
    trap wl_cleanup EXIT
    if [ ! -x "$WL" ]; then
        echo "Bail out! $WL is not built (make tests)"
        exit 1
    fi
    standin_start "${1:-$top/tests/standin/demo.json}" || { echo "Bail out! stand-in vault did not start"; exit 1; }
    cp "$STANDIN_CA" "$work/ca.pem" && chmod 644 "$work/ca.pem"
    standin_jwt demo app vault > "$work/jwt" || { echo "Bail out! no JWT"; exit 1; }
    chmod 644 "$work/jwt"
    WL_BASE=(PATH=/usr/local/bin:/usr/bin:/bin "HOME=$work/home" LANG=C.UTF-8
        "ASAN_OPTIONS=$WL_ASAN_OPTIONS" "UBSAN_OPTIONS=$WL_UBSAN_OPTIONS"
        "VAULT_ADDR=$STANDIN_ADDR" "VAULT_CACERT=$work/ca.pem" VAULT_AUTH_ROLE=demo
        "CLOUDTASER_SA_TOKEN_PATH=$work/jwt" CLOUDTASER_STARTUP_TIMEOUT=20s)
}

wl_flavours() {
    echo "${WL_FLAVOURS:-musl asan}"
}

wl_use() {
    W=$top/build/$1/bin/cloudtaser-wrapper
    if [ ! -x "$W" ]; then
        ok 1 "$1: $W is built"
        return 1
    fi
    return 0
}

# Builds the env -i argument list into _wl_env and leaves the wrapper args in _wl_args.
_wl_cmd() {
    local a v drop=() keep
    _wl_env=()
    _wl_args=()
    while [ $# -gt 0 ]; do
        case $1 in
        -[A-Za-z_]*) drop+=("${1#-}") ;;
        [A-Za-z_]*=*) ;;
        *) break ;;
        esac
        [[ $1 == *=* ]] && _wl_extra+=("$1")
        shift
    done
    _wl_args=("$@")
    for v in "${WL_BASE[@]}"; do
        keep=1
        for a in "${drop[@]}"; do
            [ "${v%%=*}" = "$a" ] && keep=0
        done
        [ $keep = 1 ] && _wl_env+=("$v")
    done
    _wl_env+=("${_wl_extra[@]}")
}

wrun() {
    local name=$1; shift
    _wl_extra=()
    _wl_cmd "$@"
    timeout -k 5 "${WL_RUN_TIMEOUT:-45}" env -i "${_wl_env[@]}" "${WL_PREFIX[@]}" "$W" "${_wl_args[@]}" \
        > "$work/$name.out" 2> "$work/$name.err" < /dev/null
    rc=$?
}

wstart() {
    local name=$1; shift
    _wl_extra=()
    _wl_cmd "$@"
    env -i "${_wl_env[@]}" "${WL_PREFIX[@]}" "$W" "${_wl_args[@]}" > "$work/$name.out" 2> "$work/$name.err" < /dev/null &
    wpid=$!
    _wl_bg+=("$wpid")
}

wwait() {
    local pid=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        diag "pid $pid still running after ${secs}s: killed"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
}

wait_grep() {
    local file=$1 re=$2 secs=${3:-20} pid=${4:-} i
    for ((i = 0; i < secs * 20; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -Eq -- "$re" "$file" 2>/dev/null
            return
        fi
        sleep 0.05
    done
    return 1
}

show() {
    local f
    for f in "$work/$1.out" "$work/$1.err"; do
        [ -e "$f" ] || continue
        echo "# --- ${f##*/}"
        head -40 "$f" | sed 's/^/#   /'
    done
}

plant() {
    standin_control POST /_standin/secret "{\"path\":\"$1\",\"data\":$2}" > /dev/null
}

sha() {
    printf %s "$1" | sha256sum | cut -d' ' -f1
}

rand_hex() {
    od -An -N"${1:-8}" -tx1 /dev/urandom | tr -d ' \n'
}
