#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The broker's figures, printed: sessions per second (TokenReview + pod lookup + CSR signing +
# token, against the real API server) and secret reads per second (mTLS + token + an OpenBao KV
# v2 read) with one event loop pinned to CPU 0 and the load generator (ct-load, open loop, over
# keep-alive) on the others, the latency distribution of each, and the broker's resident memory
# after both. The per-pod rate limit is raised for the run (--rate/--burst). Run by hand or by
# `make bench`; it starts its own cluster and OpenBao (tests/e2e/real-lib.sh) unless shared.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/e2e/real-lib.sh"
BROKER=$top/build/musl/bin/cloudtaser-broker
load=$top/build/musl/bin/ct-load
SECONDS_EACH=${BENCH_SECONDS:-5}
real_setup --cluster
ns=$T-apps
real_ns "$ns" > /dev/null || exit 1
kubectl -n "$ns" create serviceaccount app > /dev/null
kubectl -n "$ns" create serviceaccount broker > /dev/null
. "$top/tests/e2e/broker-lib.sh" > "$work/setup.tap"
pin=(); pin_load=()
if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then
    pin=(taskset -c 0); pin_load=(taskset -c 1-$(($(nproc) - 1)))
fi
start_broker_pinned() {
    "${pin[@]}" "$BROKER" --listen 127.0.0.1:0 --vault-addr "$BAO_ADDR" --vault-ca-file "$work/ca.pem" \
        --vault-role "$T-broker" --vault-jwt-file "$work/broker.jwt" --records-prefix "secret/$prefix" \
        --kubeconfig "$KUBECONFIG" --rate 100000 --burst 100000 > "$work/bench.log" 2>&1 &
    pids+=($!)
    benchpid=$!
    local i
    for i in $(seq 200); do
        port=$(sed -n 's/.*serving on .* (port \([0-9]*\)).*/\1/p' "$work/bench.log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}
start_broker_pinned || { echo "the bench broker did not start"; exit 1; }
code=$(session app "$port" "$work/s.json")
[ "$code" = 200 ] || { echo "no session ($code)"; exit 1; }
jq -r .certificate "$work/s.json" > "$work/pod.crt"
tok=$(jq -r .token "$work/s.json")
printf '{"paths":["secret/data/%s/db"]}' "$ns" > "$work/read.json"

echo "cloudtaser-broker, one event loop on one core ($(nproc) CPUs on this machine):"
echo "sessions (POST /v1/session: TokenReview, pod lookup, CSR signed, token):"
"${pin_load[@]}" "$load" --url "https://127.0.0.1:$port/v1/session" --ca "$d/ca.crt" \
    --body "$work/req.json" --rate "${BENCH_SESSION_RATE:-50}" --seconds "$SECONDS_EACH" --threads 4 |
    sed 's/^/  /'
echo "secret reads (POST /v1/secrets: mTLS, token, one KV v2 read):"
"${pin_load[@]}" "$load" --url "https://127.0.0.1:$port/v1/secrets" --ca "$d/ca.crt" \
    --body "$work/read.json" --cert "$work/pod.crt" --key "$work/pod.key" \
    --header "Authorization: Bearer $tok" --rate "${BENCH_READ_RATE:-50}" \
    --seconds "$SECONDS_EACH" --threads 4 | sed 's/^/  /'
echo "resident memory of the broker: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$benchpid/status")" \
    "(peak $(awk '/^VmHWM/ {print $2, $3}' "/proc/$benchpid/status"))"
