#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The webhook's figures, printed (run by `make bench`): admission reviews per second on one core
# (one event loop pinned to CPU 0, the load generator on the other CPU), the latency distribution
# at a fixed 1,000 reviews per second (open loop, ct-load), and resident memory after 100,000
# and 200,000 reviews (growth shows a leak). A realistic pod: the recorded AdmissionReview from
# tests/fixtures with the injection annotations and a command, over TLS keep-alive.
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
r1=$(rss)
"${pin_load[@]}" "$load" --url "https://127.0.0.1:$wport/mutate-v1-pod" --ca "$dir/ca.pem" --body "$dir/review.json" \
    --rate 1000 --seconds 10 --threads 4 | sed 's/^/at 1,000 reviews\/s (open loop): /'
"${pin_load[@]}" wrk -t1 -c32 -d10s -s "$dir/post.lua" "https://127.0.0.1:$wport/mutate-v1-pod" > "$dir/wrk2.txt"
total2=$(awk '/requests in/ {print $1}' "$dir/wrk2.txt")
r2=$(rss)
echo "resident memory: ${r1} kB after $total reviews, ${r2} kB after $((total + 10000 + total2)) reviews"
for i in 1 2 3; do "${pin_load[@]}" wrk -t1 -c32 -d8s -s "$dir/post.lua" "https://127.0.0.1:$wport/mutate-v1-pod" > "$dir/wrk3.txt"; echo "  +$(awk '/requests in/ {print $1}' "$dir/wrk3.txt") reviews: $(rss) kB"; done
