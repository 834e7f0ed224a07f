#!/usr/bin/env bash
# The whole test suite, as `make check` runs it (after `make all tests`): every item below is one
# TAP producer, and one `prove` run executes them all and ends with its pass/fail summary.
#   lint                  tests/lint.sh (banned functions, O_CLOEXEC, module boundaries, format)
#   released binaries     tests/check-binaries.sh (static, PIE, RELRO, stack protector, stripped)
#   unit tests            build/musl/tests/unit/test-*  and the same under ASan+UBSan (build/asan)
#   fuzz corpora          build/asan/tests/fuzz/replay-* over tests/fuzz/corpus/*
#   end-to-end            tests/e2e/test-*.{sh,py}; test-real-*.sh on the real servers (OpenBao and a
#                         Kubernetes cluster with a real kubelet), started once below
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export CLOUDTASER_TOP="$top"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

items=(tests/lint.sh tests/check-binaries.sh)
for t in build/musl/tests/unit/test-* build/asan/tests/unit/test-* build/asan/tests/fuzz/replay-*; do
    case $t in *.o | *.d | *.debug) continue ;; esac
    [ -x "$t" ] && items+=("$t")
done
for t in tests/e2e/test-*; do
    [ -e "$t" ] && items+=("$t")
done

# The real servers the test-real-*.sh tests share: one Kubernetes cluster (tests/cluster/cluster.sh)
# and one OpenBao with Kubernetes auth against it (tests/cluster/openbao.sh), started once here and
# stopped at the end. Tests that seal, restart or fault OpenBao start a private one.
real=
stop_real() {
    [ -n "$real" ] || return 0
    "$top/tests/cluster/openbao.sh" stop "$real" > /dev/null 2>&1 || true
    "$top/tests/cluster/cluster.sh" stop "$real" > /dev/null 2>&1 || true
    [ -n "${CT_KEEP_REAL:-}" ] || rm -rf "$real"
}
trap stop_real EXIT
if [ "$(id -u)" -eq 0 ] && [ -z "${CT_NO_REAL:-}" ]; then
    real=$(mktemp -d "${TMPDIR:-/tmp}/ct-real.XXXXXX")
    echo "real servers: starting the cluster and OpenBao in $real (logs in $real/logs)" >&2
    start=$(date +%s)
    if "$top/tests/cluster/cluster.sh" start "$real" 2> "$real/start.log" &&
        "$top/tests/cluster/openbao.sh" start "$real" 1 2>> "$real/start.log" &&
        "$top/tests/cluster/openbao.sh" k8s-auth "$real" "$real" 2>> "$real/start.log"; then
        export CT_REAL_DIR=$real
        grep -E '^\[(cluster|openbao)\] ' "$real/start.log" | grep -v 'building' >&2 || true
        echo "real servers: up in $(($(date +%s) - start)) s" >&2
    else
        echo "real servers: FAILED to start; the test-real-*.sh tests will try on their own:" >&2
        tail -n 30 "$real/start.log" >&2
    fi
fi

jobs=${CHECK_JOBS:-$(nproc)}
prove --exec "$top/tests/tap-exec.sh" --jobs "$jobs" --timer "${items[@]}"
