#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The webhook's figures, printed (run by `make bench`): admission reviews per second on one core
# (one event loop pinned to CPU 0, the load generator on the other CPU), the latency distribution
# at a fixed BENCH_RATE reviews per second (default 5,000; open loop, ct-load: latency counts
# from each request's scheduled start), and resident memory before and after BENCH_REVIEWS more
# reviews (default 200,000; issue 12 asks 1,000,000: growth shows a leak or a cache that keeps
# growing). A realistic pod: the recorded AdmissionReview from tests/fixtures with the injection
# annotations and a command, over TLS keep-alive.
#   BENCH_RATE=5000 BENCH_REVIEWS=1000000 tests/bench-operator.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
op=$top/build/musl/bin/cloudtaser-operator
load=$top/build/musl/bin/ct-load
dir=$(mktemp -d)
oppid=
cleanup() { [ -n "$oppid" ] && kill "$oppid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

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
wport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cpus=$(nproc)
pin_op=(); pin_load=()
if command -v taskset >/dev/null && [ "$cpus" -ge 2 ]; then pin_op=(taskset -c 0); pin_load=(taskset -c 1-$((cpus - 1))); fi
"${pin_op[@]}" "$op" --init-image registry.example/cloudtaser/wrapper:bench --vault-address https://vault.example:8200 \
    --secret-backend ephemeral --webhook-config-name= --webhook-host localhost,127.0.0.1 \
    --webhook-port "$wport" --webhook-bind-address 127.0.0.1 --workers 1 \
    --health-probe-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 \
    --ca-bundle-out "$dir/ca.pem" --log-level warning 2> "$dir/op.log" &
oppid=$!
for _ in $(seq 100); do [ -s "$dir/ca.pem" ] && curl -s -o /dev/null --cacert "$dir/ca.pem" "https://127.0.0.1:$wport/mutate-v1-pod" && break; sleep 0.05; done
curl -s --cacert "$dir/ca.pem" -H 'Content-Type: application/json' --data-binary @"$dir/review.json" \
    "https://127.0.0.1:$wport/mutate-v1-pod" | grep -q '"patchType":"JSONPatch"' || { echo "the operator did not inject" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$oppid/status"; }

echo "== cloudtaser-operator (webhook: one event loop on CPU 0; $(stat -c %s "$op") bytes stripped)"
echo "review body: $(stat -c %s "$dir/review.json") bytes (a recorded pod with the injection annotations)"
cat > "$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/review.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
"${pin_load[@]}" wrk -t1 -c32 -d10s --latency -s "$dir/post.lua" "https://127.0.0.1:$wport/mutate-v1-pod" > "$dir/wrk.txt"
rps=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt")
total=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
echo "throughput: $rps reviews/s on one core (wrk, 32 keep-alive TLS connections, 10 s, $total reviews)"
grep -E "^ +(50|99)%" "$dir/wrk.txt" | sed 's/^ */  closed-loop latency /'
rate=${BENCH_RATE:-5000}
reviews=${BENCH_REVIEWS:-200000}
"${pin_load[@]}" "$load" --url "https://127.0.0.1:$wport/mutate-v1-pod" --ca "$dir/ca.pem" --body "$dir/review.json" \
    --rate "$rate" --seconds 10 --threads 8 | sed "s/^/at $rate reviews\/s (open loop, 10 s): /"
r1=$(rss)
secs=$(( (reviews + rate - 1) / rate ))
"${pin_load[@]}" "$load" --url "https://127.0.0.1:$wport/mutate-v1-pod" --ca "$dir/ca.pem" --body "$dir/review.json" \
    --rate "$rate" --seconds "$secs" --threads 8 > "$dir/long.txt"
r2=$(rss)
sed "s/^/  $((rate * secs)) more reviews at $rate\/s: /" "$dir/long.txt"
echo "resident memory: ${r1} kB before, ${r2} kB after $((rate * secs)) more reviews (growth $((r2 - r1)) kB)"
