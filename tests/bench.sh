#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: prints measured figures (sizes and latencies). Not a test: nothing here passes or
# fails on a number; quote the output with the command that produced it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/standin/standin.sh"
bin=$top/build/musl/bin/ct-vault
runs=${BENCH_RUNS:-20}
trap standin_stop EXIT

echo "== sizes"
for b in "$top"/build/musl/bin/*; do
    [[ $b == *.debug ]] && continue
    printf '%-28s %8d bytes (stripped, static-pie)\n' "${b##*/}" "$(stat -c %s "$b")"
done
deps=$(make -s -C "$top" --no-print-directory print-deps-musl 2>/dev/null || true)
if [ -n "$deps" ] && [ -d "$deps/lib" ]; then
    for a in "$deps"/lib/*.a; do
        printf '%-28s %8d bytes (static archive)\n' "${a##*/}" "$(stat -c %s "$a")"
    done
fi

echo "== vault client latency against the stand-in vault (TLS 1.3 on loopback; the stand-in is"
echo "   Python, so these figures bound the client from above)"
standin_start "$top/tests/standin/demo.json" >/dev/null
jwt=$(mktemp); standin_jwt demo app vault > "$jwt"
export VAULT_ADDR=$STANDIN_ADDR VAULT_CACERT=$STANDIN_CA VAULT_AUTH_ROLE=demo CLOUDTASER_SA_TOKEN_PATH=$jwt
ms() { echo $((($2 - $1) / 1000000)); }
t0=$(date +%s%N)
for ((i = 0; i < runs; i++)); do "$bin" login read:secret/app/db >/dev/null; done
t1=$(date +%s%N)
printf 'process start + TLS handshake + login + resolve + read: %d ms per run (%d runs)\n' \
    $(( $(ms "$t0" "$t1") / runs )) "$runs"
steps=()
for ((i = 0; i < 100; i++)); do steps+=(read:secret/app/db); done
t0=$(date +%s%N)
"$bin" login "${steps[@]}" >/dev/null
t1=$(date +%s%N)
printf 'login + 100 x (resolve + read) over one kept-alive connection: %d ms (%d us per read)\n' \
    "$(ms "$t0" "$t1")" $(( ($(ms "$t0" "$t1") * 1000) / 100 ))
conns=$(standin_control GET /_standin/stats | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("connections", d.get("connections_accepted", "?")))')
echo "connections accepted by the stand-in over the whole benchmark: $conns"
rm -f "$jwt"

if [ -d "$top/build/images" ]; then
    echo
    bash "$top/tests/bench-images.sh"
fi
