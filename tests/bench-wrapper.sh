#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The wrapper's figures (issue: size, start-up CPU and wall time, supervisor memory), printed.
# The vault is nginx serving fixed Vault answers over TLS on loopback (tests/lib/nginx-vault.sh),
# so the time measured is the wrapper's, not a slow stand-in's. Run by `make bench`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
wrapper=$top/build/musl/bin/cloudtaser-wrapper
workload=$top/build/musl/bin/ct-workload
spawn=$top/build/musl/bin/ct-spawn
runs=${BENCH_RUNS:-200}
dir=$(mktemp -d)
. "$top/tests/lib/nginx-vault.sh"
cleanup() { nginx_vault_stop "$dir"; rm -rf "$dir"; }
trap cleanup EXIT

nginx_vault_start "$dir"
echo "header" > "$dir/jwt"

export VAULT_ADDR=$NGINX_VAULT_ADDR VAULT_CACERT=$NGINX_VAULT_CA VAULT_AUTH_ROLE=app
export CLOUDTASER_SA_TOKEN_PATH=$dir/jwt CLOUDTASER_LOG_LEVEL=error
export CLOUDTASER_SECRET_PATHS=secret/data/app/db,secret/data/app/api
export CLOUDTASER_ENV_MAP="password=PGPASSWORD;username=APP_USER"

echo "== cloudtaser-wrapper"
printf 'size of the stripped static wrapper: %d bytes (%d KiB)\n' "$(stat -c %s "$wrapper")" $(( $(stat -c %s "$wrapper") / 1024 ))
deps=$(make -s -C "$top" --no-print-directory print-deps-musl 2>/dev/null || true)
if [ -n "$deps" ] && [ -d "$deps/lib" ]; then
    echo "its symbols by the library that defines them:"
    /usr/bin/python3 "$top/tests/size-by-lib.py" "$wrapper.debug" "$top"/build/musl/lib{common,wrapper}.a \
        "$top/build/musl/wrapper/main.o" "$deps"/lib/*.a /usr/lib/*-linux-musl/libc.a | sed 's/^/    /'
fi
"$wrapper" -- "$workload" env-hash PGPASSWORD exit 0 | grep -q "len=20" || { echo "wrapper did not deliver the secret" >&2; exit 1; }

measure() { # measure LABEL CMD... -> per-run wall and CPU (user+sys of the children)
    local label=$1; shift
    local out
    out=$( { TIMEFORMAT='%R %U %S'; time for ((i = 0; i < runs; i++)); do "$@" >/dev/null; done; } 2>&1 )
    awk -v l="$label" -v n="$runs" -v t="$out" 'BEGIN { split(t, a, " ");
        printf "%-58s wall %7.3f ms   cpu (user+sys) %7.3f ms   per run, %d runs\n", l, a[1] * 1000 / n, (a[2] + a[3]) * 1000 / n, n }'
}
measure "floor: static posix_spawn + wait of the workload" "$spawn" "$workload" exit 0
measure "wrapper: TLS login + 2 resolves + 2 KV reads + spawn" "$wrapper" -- "$workload" exit 0

# System calls and page faults of one start (the kernel side of the start-up CPU).
if command -v strace >/dev/null; then
    strace -f -c -o "$dir/calls" "$wrapper" -- "$workload" exit 0 >/dev/null
    # columns: % time, seconds, usecs/call, calls, [errors,] syscall
    awk '$NF == "total" { t = $4 } $NF ~ /^(memfd_secret|ftruncate|munmap|mmap|prctl|madvise|mprotect)$/ { d = d " " $NF " " $4 }
         END { printf "system calls of one start (strace -f -c): %d, of which%s\n", t, d }' "$dir/calls"
fi
if command -v perf >/dev/null && perf stat -e page-faults true >/dev/null 2>&1; then
    perf stat -x, -e page-faults -r 20 "$wrapper" -- "$workload" exit 0 2>&1 >/dev/null |
        awk -F, '/page-faults/ { printf "page faults of one start (perf stat, wrapper and workload, 20 runs): %d\n", $1 }'
fi

# Resident memory of the supervisor once the workload runs.
"$wrapper" -- "$workload" sleep 2 >/dev/null &
wpid=$!
sleep 1
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$wpid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$wpid/status")
lck=$(awk '/^VmLck/ {print $2}' "/proc/$wpid/status")
wait "$wpid" || true
echo "supervisor after the workload started: VmRSS ${rss} kB, peak VmHWM ${hwm} kB, VmLck ${lck} kB"

# Instructions of one start (login, mount lookup, KV read, exec), counted by callgrind: unlike CPU
# time they do not move with the load of a shared machine. Same inputs as the side-by-side figures
# (one secret path); the Go floor of ../shared/bench is counted beside ours when it and go exist.
# Both are given a workload that does not exist, so each process ends right after its execve
# attempt and callgrind writes its count at the exit (it writes nothing for a process that
# execs). Valgrind does not survive the clone(CLONE_VM|CLONE_VFORK) child of musl's posix_spawn
# (it dies inside valgrind at the execve): the count is the wrapper's own process, which is the
# whole start but for that child's execve. Go's async preemption signals trip callgrind, hence
# GODEBUG=asyncpreemptoff=1 (the count is all of the Go process's threads).
if command -v valgrind >/dev/null; then
    cg_run() { # cg_run TAG CMD... -> instructions of the process CMD, up to its exit
        local tag=$1 pid; shift
        CLOUDTASER_SECRET_PATHS=secret/data/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD GODEBUG=asyncpreemptoff=1 \
            valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$tag.%p" "$@" >/dev/null 2>"$dir/cg.$tag.log" &
        pid=$!
        wait "$pid" || true
        awk '/^totals:/ { print $2; found = 1 } END { exit !found }' "$dir/cg.$tag.$pid" 2>/dev/null ||
            { echo "callgrind of $1 wrote no count:" >&2; grep -v '^==' "$dir/cg.$tag.log" | tail -5 >&2; return 1; }
    }
    ours=$(cg_run ours "$wrapper" -- "$dir/no-such-workload")
    floor_src=${CLOUDTASER_GO_FLOOR:-$top/../shared/bench/go-wrapper-floor}
    gobin=$(PATH=$PATH:/usr/local/go/bin command -v go || true)
    if [ -d "$floor_src" ] && [ -n "$gobin" ] &&
        (cd "$floor_src" && CGO_ENABLED=0 GOFLAGS=-mod=mod "$gobin" build -trimpath -ldflags='-s -w' -o "$dir/go-wrapper" .) 2>/dev/null; then
        floor=$(cg_run go "$dir/go-wrapper" "$dir/no-such-workload")
        awk -v a="$ours" -v b="$floor" 'BEGIN { printf "instructions of one start (callgrind): ours %d, go floor %d, ratio ours/go %.3f\n", a, b, a / b }'
    else
        echo "instructions of one start (callgrind): ours $ours (no Go floor: set CLOUDTASER_GO_FLOOR to ../shared/bench/go-wrapper-floor)"
    fi
fi
