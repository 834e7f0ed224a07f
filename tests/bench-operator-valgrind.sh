#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The operator under valgrind (memcheck, a plain glibc build): N admission reviews over TLS
# keep-alive, then SIGTERM; prints what leaked (must be nothing) and the heap still in use at
# exit after N and after 3N reviews (equal: no growth with the number of reviews).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
op=$top/build/plain/bin/cloudtaser-operator
load=$top/build/musl/bin/ct-load
n=${VALGRIND_REVIEWS:-2000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 0; }
/usr/bin/python3 - "$top/tests/fixtures/k8s/admissionreview-v1-pod-create-request.json" > "$dir/review.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pod = r["request"]["object"]
pod["metadata"].setdefault("annotations", {}).update({"cloudtaser.io/inject": "true",
    "cloudtaser.io/vault-role": "app", "cloudtaser.io/secret-paths": "secret/data/app/db"})
for c in pod["spec"]["containers"]:
    c.setdefault("command", ["/app"])
print(json.dumps(r))
PY
run() { # run REVIEWS -> prints "definitely indirectly in-use-at-exit" from valgrind's summary
    local reviews=$1 port
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -f "$dir/ca.pem"
    valgrind --leak-check=full --errors-for-leak-kinds=definite --log-file="$dir/vg-$reviews.log" \
        "$op" --init-image r.example/w:1 --vault-address https://v.example:8200 --webhook-port "$port" \
            --secret-backend ephemeral --webhook-config-name= --webhook-host localhost,127.0.0.1 \
        --webhook-bind-address 127.0.0.1 --workers 1 --health-probe-bind-address 127.0.0.1:0 \
        --metrics-bind-address 127.0.0.1:0 --ca-bundle-out "$dir/ca.pem" --log-level warning 2>/dev/null &
    local pid=$!
    for _ in $(seq 300); do [ -s "$dir/ca.pem" ] && curl -s -o /dev/null --cacert "$dir/ca.pem" "https://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    "$load" --url "https://127.0.0.1:$port/mutate-v1-pod" --ca "$dir/ca.pem" --body "$dir/review.json" \
        --rate 200 --seconds "$(awk -v n="$reviews" 'BEGIN { print n / 200 }')" --threads 2 > "$dir/load-$reviews.txt"
    kill -TERM "$pid"
    wait "$pid" || true
    local def ind use errs
    def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$dir/vg-$reviews.log" | tr -d ,)
    ind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$dir/vg-$reviews.log" | tr -d ,)
    use=$(sed -n 's/.*in use at exit: \([0-9,]*\) bytes.*/\1/p' "$dir/vg-$reviews.log" | tr -d ,)
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$dir/vg-$reviews.log" | tr -d ,)
    local heap
    heap=$(sed -n 's/.*total heap usage: \(.*\)$/\1/p' "$dir/vg-$reviews.log")
    [ -n "$heap" ] || { echo "valgrind did not report (see its log)"; sed 's/^/  /' "$dir/vg-$reviews.log" | tail -20; return 1; }
    echo "valgrind, $(head -1 "$dir/load-$reviews.txt" | cut -d' ' -f2) reviews: definitely lost ${def:-0} B, indirectly lost ${ind:-0} B, in use at exit ${use:-0} B, memcheck errors ${errs:-?} (heap: $heap)"
}
echo "== cloudtaser-operator under valgrind memcheck"
run "$n"
run $((3 * n))
