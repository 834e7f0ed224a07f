#!/usr/bin/env bash
# The whole test suite, as `make check` runs it (after `make all tests`): every item below is one
# TAP producer, and one `prove` run executes them all and ends with its pass/fail summary.
#   lint                  tests/lint.sh (banned functions, O_CLOEXEC, module boundaries, format)
#   released binaries     tests/check-binaries.sh (static, PIE, RELRO, stack protector, stripped)
#   unit tests            build/musl/tests/unit/test-*  and the same under ASan+UBSan (build/asan)
#   fuzz corpora          build/asan/tests/fuzz/replay-* over tests/fuzz/corpus/*
#   end-to-end            tests/e2e/test-*.{sh,py}
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

jobs=${CHECK_JOBS:-$(nproc)}
exec prove --exec "$top/tests/tap-exec.sh" --jobs "$jobs" --timer "${items[@]}"
