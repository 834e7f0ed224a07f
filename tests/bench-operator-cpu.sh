#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CPU per admission review, ours and the Go webhook floor of ../shared/bench, side by side: the
# same review body (tests/fixtures with the injection annotations, as side-by-side.sh makes it),
# both servers pinned to CPU 0, wrk (32 keep-alive TLS connections) on CPU 1, runs alternating
# A B A B. Each run's figure is the server's own user + system time (/proc/PID/stat) over the
# run divided by the reviews it answered, so it holds on a loaded machine, where reviews per
# second measure the scheduler (and wrk) as much as the server. Prints one line per pair and,
# last, "cpu per review: ours X us, go floor Y us, ratio go/ours R (median of N pairs)": R is the
# throughput ratio ours/go the two would have on one dedicated core.
#   BENCH_PAIRS=5 BENCH_SECONDS=5 tests/bench-operator-cpu.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
op=$top/build/musl/bin/cloudtaser-operator
floor=${BENCH_GO_FLOOR:-$top/../shared/bench/go-webhook-floor}
[ -d "$floor" ] || floor=/work/shared/bench/go-webhook-floor
pairs=${BENCH_PAIRS:-5}
secs=${BENCH_SECONDS:-5}
export PATH=$PATH:/usr/local/go/bin
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
(cd "$floor" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$dir/go-webhook" .)
/usr/bin/python3 - "$top/tests/fixtures/k8s/admissionreview-v1-pod-create-request.json" > "$dir/review.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pod = r["request"]["object"]
pod["metadata"].setdefault("annotations", {}).update({
    "cloudtaser.io/inject": "true", "cloudtaser.io/vault-role": "app",
    "cloudtaser.io/secret-paths": "secret/data/app/db,secret/data/app/api",
    "cloudtaser.io/env-map": "password=PGPASSWORD,username=PGUSER;api_key=API_KEY"})
for c in pod["spec"]["containers"]:
    c.setdefault("command", ["/app", "--serve"])
print(json.dumps(r))
PY
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(freeport); p2=$(freeport)
taskset -c 0 "$op" --init-image registry.example/cloudtaser/init:bench --vault-address https://vault.example:8200 \
    --secret-backend ephemeral --webhook-config-name= --webhook-host localhost,127.0.0.1 \
    --webhook-port "$p1" --webhook-bind-address 127.0.0.1 --workers 1 --health-probe-bind-address 127.0.0.1:0 \
    --metrics-bind-address 127.0.0.1:0 --ca-bundle-out "$dir/opca.pem" --log-level warning 2>"$dir/op.log" &
ours=$!; pids+=("$ours")
GOMAXPROCS=1 taskset -c 0 "$dir/go-webhook" "$p2" "$dir/goca.pem" &
go=$!; pids+=("$go")
for _ in $(seq 200); do [ -s "$dir/opca.pem" ] && [ -s "$dir/goca.pem" ] && break; sleep 0.05; done; sleep 0.3
cat > "$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/review.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run PID PORT -> microseconds of the server's CPU per review
run() {
    local t0 t1 n
    t0=$(ticks "$1")
    n=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$dir/post.lua" "https://127.0.0.1:$2/mutate-v1-pod" | awk '/requests in/ {print $1}')
    t1=$(ticks "$1")
    awk -v t="$((t1 - t0))" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
}
a=(); b=()
for i in $(seq "$pairs"); do
    x=$(run "$ours" "$p1"); y=$(run "$go" "$p2")
    a+=("$x"); b+=("$y")
    echo "pair $i: ours $x us, go floor $y us per review"
done
/usr/bin/python3 -c 'import statistics,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print("cpu per review: ours %.1f us, go floor %.1f us, ratio go/ours %.2f (median of %d pairs; load average %s)" % (statistics.median(a), statistics.median(b), statistics.median(y/x for x,y in zip(a,b)), len(a), open("/proc/loadavg").read().split()[0]))' "${a[*]}" "${b[*]}"
