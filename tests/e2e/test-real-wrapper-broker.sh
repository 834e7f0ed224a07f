#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: cloudtaser-wrapper in broker mode (VAULT_AUTH_METHOD=broker, no
# VAULT_ADDR) through the real cloudtaser-broker (on the host, against the real kube-apiserver's
# TokenReview and pods and OpenBao) to OpenBao. The pods are real API objects annotated as the
# webhook admits them, the broker MAC computed with openssl from docs/protocol-broker.md
# (broker-lib.sh); the wrapper's JWT is a TokenRequest token of audience cloudtaser-broker bound
# to its pod, as the projected volume gives it. Musl and ASan builds.
#   - delivery of a canary, env and memfd; the canary in no log (wrapper, workload, brokers);
#   - a path outside the session: 77, the line names the path;
#   - rotation through /v1/versions (memfd, signal: the agent under the supervisor's seccomp
#     filter) while the session (6 s) is renewed (/v1/session/renew);
#   - a broker replica killed between the session and the read: a relay stands for Service
#     cloudtaser-broker (each new connection to the first replica that accepts, as a Service once
#     the dead endpoint is gone) and kills replica K when the wrapper's second connection (the
#     mutual-TLS read) arrives; replica B serves the read with K's session;
#   - after the session, a connection without the client certificate is refused (curl and
#     openssl s_client);
#   - no broker reachable within the start-up timeout: 69; SIGTERM while the broker never
#     answers: 143 at once;
#   - the wrapper in a network namespace whose only link is a veth to the broker's relay (no
#     route to OpenBao, which it cannot reach: checked) gets its secret through the broker.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

BROKER=$top/build/musl/bin/cloudtaser-broker
RELAY=$top/tests/e2e/broker-relay.py
[ -x "$BROKER" ] || { echo "Bail out! $BROKER not built"; exit 1; }
real_setup --cluster
ns=$T-apps
real_ns "$ns" || { echo "Bail out! namespace $ns"; exit 1; }
kubectl -n "$ns" create serviceaccount app > /dev/null
kubectl -n "$ns" create serviceaccount broker > /dev/null
# The veth pair of the network-namespace case: the host's end is in the brokers' certificate.
net=198.18.$((RANDOM % 250))
host_ip=$net.1 ns_ip=$net.2 netns=ct$T
BROKER_SAN_EXTRA=IP:$host_ip
. "$top/tests/e2e/broker-lib.sh"
relays=()
cleanup() {
    local p
    for p in "${relays[@]}"; do kill "$p" 2> /dev/null; done
    ip netns del "$netns" 2> /dev/null
    stop_brokers
    real_cleanup
}
trap cleanup EXIT

start_relay() { # NAME ADDR BACKEND-PORT... [--kill-before N PID]: sets $rport
    local name=$1 addr=$2 i
    shift 2
    python3 "$RELAY" "$addr" 0 "$work/$name.port" "$@" 2> "$work/$name.log" &
    relays+=($!)
    for i in $(seq 100); do
        [ -s "$work/$name.port" ] && rport=$(cat "$work/$name.port") && return 0
        sleep 0.1
    done
    return 1
}

pod_jwt() { # POD: the projected token the webhook's volume gives the pod
    kubectl -n "$ns" create token app --duration=10m --audience=cloudtaser-broker \
        --bound-object-kind Pod --bound-object-name "$1" > "$work/$1.jwt" && chmod 644 "$work/$1.jwt"
}
rot1="r1-$(rand_hex 12)"
bao kv put -mount=secret "$ns/rot" password="$rot1" > /dev/null &&
    make_pod wapp "secret/data/$ns/db" "secret/data/$ns/db" password=DB_PASSWORD && pod_jwt wapp &&
    make_pod wrot "secret/data/$ns/rot" "secret/data/$ns/rot" password=DB_PASSWORD && pod_jwt wrot
ok $? "the wrapper's pods (admitted for broker mode, env-map in the MAC) and their bound tokens"

BM=(VAULT_AUTH_METHOD=broker -VAULT_ADDR -VAULT_CACERT "CLOUDTASER_BROKER_CA_PEM=$(cat "$d/ca.crt")"
    CLOUDTASER_ENV_MAP=password=DB_PASSWORD)
APP=("CLOUDTASER_BROKER_TOKEN_PATH=$work/wapp.jwt" "CLOUDTASER_SECRET_PATHS=secret/data/$ns/db")
at() { echo "CLOUDTASER_BROKER_ADDRESS=https://$1"; }

for f in $(wl_flavours); do
    wl_use "$f" || continue
    wrun "$f-env" "${BM[@]}" "${APP[@]}" "$(at "127.0.0.1:$portB")" -- "$WL" env-hash DB_PASSWORD env-keys
    [ $rc -eq 0 ] && grep -qx "env DB_PASSWORD sha256=$(sha "$value") len=${#value}" "$work/$f-env.out" &&
        ! grep -q 'VAULT_ADDR\|CLOUDTASER_BROKER' "$work/$f-env.out"
    ok $? "$f: env delivery through the broker (no vault address in the pod)" || show "$f-env"

    wrun "$f-memfd" "${BM[@]}" "${APP[@]}" "$(at "127.0.0.1:$portB")" CLOUDTASER_DELIVERY=memfd \
        -- "$WL" memfd-hash DB_PASSWORD env-hash DB_PASSWORD
    [ $rc -eq 0 ] && grep -qx "memfd DB_PASSWORD sha256=$(sha "$value") len=${#value}" "$work/$f-memfd.out" &&
        grep -qx "env DB_PASSWORD missing" "$work/$f-memfd.out"
    ok $? "$f: memfd delivery through the broker" || show "$f-memfd"

    wrun "$f-outside" "${BM[@]}" "CLOUDTASER_BROKER_TOKEN_PATH=$work/wapp.jwt" "$(at "127.0.0.1:$portB")" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$ns/db,secret/data/$T-other/db" -- "$WL" env-keys
    [ $rc -eq 77 ] && grep -q "secret/data/$T-other/db.*not in the session.*status 403" "$work/$f-outside.err" &&
        ! grep -q "not-yours" "$work/$f-outside.out" "$work/$f-outside.err" &&
        [ "$(grep -c 'audit .*path=/v1/secrets .*pod=wapp .*status=403' "$work/B.log")" -ge 1 ]
    ok $? "$f: a path outside the session: 77, the line names it, not retried" || show "$f-outside"

    # A replica killed between the session and the read (see the header).
    start_broker "K$f" && portK=$port && pidK=${pids[-1]} &&
        start_relay "relay-$f" 127.0.0.1 "$portK" "$portB" --kill-before 2 "$pidK"
    ok $? "$f: replica K$f and the relay (K, then B)" || continue
    wrun "$f-failover" "${BM[@]}" "${APP[@]}" "$(at "127.0.0.1:$rport")" -- "$WL" env-hash DB_PASSWORD
    [ $rc -eq 0 ] && grep -qx "env DB_PASSWORD sha256=$(sha "$value") len=${#value}" "$work/$f-failover.out" &&
        grep -q "audit .*path=/v1/session .*pod=wapp .*status=200" "$work/K$f.log" &&
        grep -q "conn 2: killing $pidK" "$work/relay-$f.log" && grep -q "conn 2 -> $portB" "$work/relay-$f.log" &&
        ! grep -q "path=/v1/secrets" "$work/K$f.log"
    ok $? "$f: replica K killed after the session: B serves the read with K's session" ||
        { show "$f-failover"; sed 's/^/# /' "$work/relay-$f.log"; tail -5 "$work/K$f.log" | sed 's/^/# /'; }

    # Rotation through /v1/versions, on 6-second sessions renewed meanwhile.
    start_broker "R$f" --session-ttl 6 && portR=$port
    bao kv put -mount=secret "$ns/rot" password="$rot1" > /dev/null
    wstart "$f-rot" "${BM[@]}" "CLOUDTASER_BROKER_TOKEN_PATH=$work/wrot.jwt" "$(at "127.0.0.1:$portR")" \
        "CLOUDTASER_SECRET_PATHS=secret/data/$ns/rot" CLOUDTASER_DELIVERY=memfd CLOUDTASER_ROTATION=signal:USR1 \
        CLOUDTASER_ROTATION_INTERVAL=1s CLOUDTASER_LOG_LEVEL=debug -- \
        "$WL" memfd-hash DB_PASSWORD memfd-on-signal DB_PASSWORD signals 60
    pid=$wpid
    wait_grep "$work/$f-rot.out" "sha256=$(sha "$rot1")" 20 "$pid" &&
        wait_grep "$work/$f-rot.err" "protection: .*seccomp=on" 10 "$pid"
    ok $? "$f: started with the first version (memfd, rotation by signal: the supervisor under seccomp)" || show "$f-rot"
    # Past one renewal (at about 4 s) before the change.
    wait_grep "$work/R$f.log" "audit .*path=/v1/session/renew .*pod=wrot .*status=200" 20 "$pid"
    ok $? "$f: the 6 s session is renewed (/v1/session/renew)" || { show "$f-rot"; tail -5 "$work/R$f.log" | sed 's/^/# /'; }
    rot2="r2-$(rand_hex 12)"
    bao kv put -mount=secret "$ns/rot" password="$rot2" > /dev/null
    wait_grep "$work/$f-rot.out" "sha256=$(sha "$rot2")" 20 "$pid" &&
        grep -q "audit .*path=/v1/versions .*pod=wrot .*status=200" "$work/R$f.log"
    ok $? "$f: a new version found through /v1/versions and delivered" || { show "$f-rot"; tail -5 "$work/R$f.log" | sed 's/^/# /'; }
    kill -TERM "$pid" 2> /dev/null
    wwait "$pid" 10
    ! grep -q "$rot1\|$rot2" "$work/$f-rot.err" "$work/$f-rot.out" "$work/R$f.log"
    ok $? "$f: no rotated value in any log"

    wrun "$f-down" "${BM[@]}" "${APP[@]}" "$(at "127.0.0.1:1")" CLOUDTASER_STARTUP_TIMEOUT=3s -- "$WL" env-keys
    [ $rc -eq 69 ] && grep -q "broker not available within the startup timeout" "$work/$f-down.err"
    ok $? "$f: no broker within the start-up timeout: 69 ($rc)" || show "$f-down"

    # A terminating signal while the fetch waits on a broker that never answers: 143 at once.
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); conns = []
while True: conns.append(s.accept())' "$work/hole-$f.port" &
    relays+=($!)
    wait_grep "$work/hole-$f.port" . 10
    wstart "$f-hole" "${BM[@]}" "${APP[@]}" "$(at "127.0.0.1:$(cat "$work/hole-$f.port")")" -- "$WL" env-keys
    pid=$wpid
    sleep 1
    kill -TERM "$pid"
    wwait "$pid" 10
    [ $rc -eq 143 ] && [ ! -s "$work/$f-hole.out" ]
    ok $? "$f: SIGTERM during the fetch from a broker that never answers: 143 ($rc), nothing started" || show "$f-hole"
done

# After the session, a connection without the client certificate is refused.
code=$(session wapp "$portB" "$work/s.json")
tok=$(jq -r .token "$work/s.json")
[ "$code" = 200 ] &&
    [ "$(curl -sS --cacert "$d/ca.crt" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" \
        --data-binary "{\"paths\":[\"secret/data/$ns/db\"]}" "https://127.0.0.1:$portB/v1/secrets")" = 401 ]
ok $? "the pod's session token without its client certificate: 401 (curl)"
body="{\"paths\":[\"secret/data/$ns/db\"]}"
req="POST /v1/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $tok\r\nContent-Length: ${#body}\r\nConnection: close\r\n\r\n$body"
printf "$req" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$portB" -CAfile "$d/ca.crt" \
    2> /dev/null | head -1 | grep -q "^HTTP/1.1 401"
ok $? "the same with openssl s_client: 401"

# --- a network namespace with no route to the vault ---------------------------------------------
ip netns add "$netns" && ip link add "${netns}h" type veth peer name "${netns}n" &&
    ip link set "${netns}n" netns "$netns" && ip addr add "$host_ip/30" dev "${netns}h" &&
    ip link set "${netns}h" up && ip -n "$netns" addr add "$ns_ip/30" dev "${netns}n" &&
    ip -n "$netns" link set "${netns}n" up && ip -n "$netns" link set lo up &&
    start_relay relay-ns "$host_ip" "$portB"
ok $? "network namespace $netns: a veth to the host ($ns_ip -> $host_ip) and the broker's relay there"
! ip -n "$netns" route | grep -q default &&
    ! ip netns exec "$netns" curl -sS --max-time 3 --cacert "$work/ca.pem" "$BAO_ADDR/v1/sys/health" > /dev/null 2>&1 &&
    ip netns exec "$netns" curl -sS --max-time 3 --cacert "$d/ca.crt" -o /dev/null "https://$host_ip:$rport/healthz"
ok $? "from the namespace: no default route, OpenBao ($BAO_ADDR) unreachable, the broker reachable"
WL_PREFIX=(/usr/sbin/ip netns exec "$netns")
for f in $(wl_flavours); do
    wl_use "$f" || continue
    wrun "$f-netns" "${BM[@]}" "${APP[@]}" "$(at "$host_ip:$rport")" -- "$WL" env-hash DB_PASSWORD
    [ $rc -eq 0 ] && grep -qx "env DB_PASSWORD sha256=$(sha "$value") len=${#value}" "$work/$f-netns.out"
    ok $? "$f: in the namespace without a route to the vault, the secret arrives through the broker" || show "$f-netns"
done
WL_PREFIX=()

! grep -l "$value" "$work"/*.err "$work"/*.out "$work"/*.log 2> /dev/null
ok $? "the canary is in no log (wrappers, workloads, brokers, relays)"
tap_done
