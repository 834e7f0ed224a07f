#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make fuzz: runs every libFuzzer target for FUZZ_SECONDS (default 60) each, FUZZ_JOBS (default 1)
# at a time, each on its working corpus (O/fuzz/corpus/NAME, seeded from tests/fuzz/corpus/NAME),
# then prints one line per target: executions, executions per second, coverage (edges) and
# features at the end, and new corpus entries. A crash, leak, timeout or out-of-memory of any
# target fails the run and names the input libFuzzer saved (O/fuzz/artifacts/NAME/): add it to
# tests/fuzz/corpus/NAME with its fix.
# usage: tests/fuzz-run.sh O TOP NAME...
set -u
out=$1 top=$2
shift 2
secs=${FUZZ_SECONDS:-60} jobs=${FUZZ_JOBS:-1}
mkdir -p "$out/fuzz/logs"
run_one() {
    local f=$1 out=$2 top=$3 secs=$4
    mkdir -p "$out/fuzz/corpus/$f" "$out/fuzz/artifacts/$f"
    "$out/fuzz/fuzz-$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/fuzz/artifacts/$f/" \
        "$out/fuzz/corpus/$f" "$top/tests/fuzz/corpus/$f" > "$out/fuzz/logs/$f.log" 2>&1
    echo $? > "$out/fuzz/logs/$f.rc"
}
export -f run_one
echo "fuzzing $# targets for ${secs}s each, $jobs at a time (logs: $out/fuzz/logs/)"
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$out" "$top" "$secs"
fail=0
printf '%-22s %12s %9s %8s %8s %8s %s\n' target execs exec/s cov ft corpus result
for f in "$@"; do
    log=$out/fuzz/logs/$f.log rc=$(cat "$out/fuzz/logs/$f.rc" 2> /dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<< "$last")
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (rc $rc): $(grep -m1 -E 'ERROR: |SUMMARY: |Test unit written' "$log" | cut -c1-120)"
        fail=1
    fi
    printf '%-22s %12s %9s %8s %8s %8s %s\n' "$f" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
exit $fail
