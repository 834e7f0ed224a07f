#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: cloudtaser-wrapper in the sealed token mode (docs/wrapper.md), against the stand-in
# vault over TLS, musl and ASan:
#   - sealed: alive past the start-up timeout, nothing of the workload started, status
#     {"sealed": true}, ready 503; SIGTERM ends it at once with 143, the workload never ran;
#   - an intercepted wrapping token (unwrapped by somebody else first): 422, still sealed; then a
#     fresh wrapped token unseals it: the workload starts with its secret, ready 200, and a second
#     unseal is 409;
#   - a plain token ("wrapped" absent) works too; a token the vault refuses is exit 77;
#   - no token in any log.
# The same path on the real cluster and OpenBao, with the operator's unsealer: test-real-sealed.sh.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"
. "$top/tests/cluster/ports.sh"

wl_setup
canary="CANARY-$(rand_hex 12)"
plant secret/app/db "{\"username\":\"app\",\"password\":\"$canary\"}" || { echo "Bail out! cannot plant"; exit 1; }

d=$work/pki
mkdir -p "$d"
openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2> /dev/null &&
    openssl req -x509 -new -key "$d/ca.key" -subj /CN=unseal-ca -days 2 -out "$d/ca.crt" 2> /dev/null &&
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/op.key" 2> /dev/null &&
    openssl req -new -key "$d/op.key" -subj /CN=cloudtaser-operator -out "$d/op.csr" 2> /dev/null &&
    printf 'extendedKeyUsage=clientAuth\n' > "$d/op.ext" &&
    openssl x509 -req -in "$d/op.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
        -extfile "$d/op.ext" -out "$d/op.crt" 2> /dev/null ||
    { echo "Bail out! openssl"; exit 1; }

root() { # METHOD PATH [BODY] [HEADER]
    curl -sS --cacert "$STANDIN_CA" -X "$1" -H "X-Vault-Token: $STANDIN_ROOT_TOKEN" ${4:+-H "$4"} \
        ${3:+--data-binary "$3"} "$STANDIN_ADDR/v1/$2"
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
wrapped_token() {
    root POST auth/token/create '{"policies": ["app-read"], "ttl": "1h"}' 'X-Vault-Wrap-TTL: 60s' | field '["wrap_info"]["token"]'
}
plain_token() {
    root POST auth/token/create '{"policies": ["app-read"], "ttl": "1h"}' | field '["auth"]["client_token"]'
}

SEALED=(-VAULT_AUTH_ROLE VAULT_AUTH_METHOD=token "CLOUDTASER_UNSEAL_CA_PEM=$(cat "$d/ca.crt")"
    CLOUDTASER_SECRET_PATHS=secret/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD CLOUDTASER_STARTUP_TIMEOUT=1s)

for f in $(wl_flavours); do
    wl_use "$f" || continue
    read -r port <<< "$(ct_free_ports 1)"
    url=https://127.0.0.1:$port
    st() { curl -sk --max-time 10 "$url/v1/status"; }
    unseal() { # BODY -> status code, answer in $work/unseal.out
        curl -sk --max-time 20 -o "$work/unseal.out" -w '%{http_code}' --cert "$d/op.crt" --key "$d/op.key" \
            -X POST --data-binary "$1" "$url/v1/unseal"
    }

    rm -f "$work/ran"
    wstart "$f-term" "${SEALED[@]}" "CLOUDTASER_UNSEAL_LISTEN=127.0.0.1:$port" -- "$WL" touch "$work/ran" sleep 60
    wait_grep "$work/$f-term.err" 'sealed: waiting' 20 "$wpid"
    sleep 2 # longer than the start-up timeout
    kill -0 "$wpid" 2> /dev/null && [ "$(st)" = '{"sealed": true}' ] && [ ! -e "$work/ran" ] &&
        [ "$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "$url/v1/ready")" = 503 ]
    ok $? "$f: sealed past the start-up timeout, {\"sealed\": true}, ready 503, nothing started" || show "$f-term"
    t0=$(date +%s%N)
    kill -TERM "$wpid"
    wwait "$wpid" 10
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$rc" = 143 ] && [ "$ms" -lt 3000 ] && [ ! -e "$work/ran" ] && grep -q 'SIGTERM while sealed: exiting' "$work/$f-term.err"
    ok $? "$f: SIGTERM while sealed: 143 at once (${ms} ms), the workload never ran" || { diag "rc=$rc"; show "$f-term"; }

    read -r port <<< "$(ct_free_ports 1)"
    url=https://127.0.0.1:$port
    wstart "$f-run" "${SEALED[@]}" "CLOUDTASER_UNSEAL_LISTEN=127.0.0.1:$port" -- "$WL" env-hash PGPASSWORD say workload-ready sleep 60
    wait_grep "$work/$f-run.err" 'sealed: waiting' 20 "$wpid"
    stolen=$(wrapped_token)
    # Somebody got there first (with the wrapping token alone, as an interceptor would).
    curl -sS --cacert "$STANDIN_CA" -X POST -H "X-Vault-Token: $stolen" "$STANDIN_ADDR/v1/sys/wrapping/unwrap" > "$work/stolen.json"
    grep -q client_token "$work/stolen.json"
    ok $? "$f: the interceptor's unwrap works (once)"
    c=$(unseal "{\"token\": \"$stolen\", \"wrapped\": true}")
    [ "$c" = 422 ] && grep -q 'may have been intercepted' "$work/unseal.out" && [ "$(st)" = '{"sealed": true}' ]
    ok $? "$f: a wrapping token unwrapped by somebody else: 422, still sealed" || { diag "code $c $(cat "$work/unseal.out")"; show "$f-run"; }
    tok=$(wrapped_token)
    c=$(unseal "{\"token\": \"$tok\", \"wrapped\": true}")
    [ "$c" = 200 ] && wait_grep "$work/$f-run.out" workload-ready 20 "$wpid" &&
        grep -q "env PGPASSWORD sha256=$(sha "$canary") len=${#canary}" "$work/$f-run.out"
    ok $? "$f: a fresh wrapped token unseals it: the workload has its secret" || { diag "code $c"; show "$f-run"; }
    [ "$(st)" = '{"sealed": false}' ] && [ "$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "$url/v1/ready")" = 200 ] &&
        [ "$(unseal "{\"token\": \"$(wrapped_token)\", \"wrapped\": true}")" = 409 ]
    ok $? "$f: {\"sealed\": false}, ready 200, a second unseal 409"
    kill -TERM "$wpid"
    wwait "$wpid" 10
    ok $? "$f: stops on SIGTERM"
    ! grep -qF -e "$tok" -e "$stolen" -e "$canary" "$work/$f-run.err" "$work/$f-term.err"
    ok $? "$f: neither token nor secret in the wrapper's log"

    read -r port <<< "$(ct_free_ports 1)"
    url=https://127.0.0.1:$port
    wstart "$f-plain" "${SEALED[@]}" "CLOUDTASER_UNSEAL_LISTEN=127.0.0.1:$port" -- "$WL" env-hash PGPASSWORD say workload-ready sleep 60
    wait_grep "$work/$f-plain.err" 'sealed: waiting' 20 "$wpid"
    c=$(unseal "{\"token\": \"$(plain_token)\"}")
    [ "$c" = 200 ] && wait_grep "$work/$f-plain.out" workload-ready 20 "$wpid"
    ok $? "$f: a plain token (\"wrapped\" absent) unseals it too" || { diag "code $c"; show "$f-plain"; }
    kill -TERM "$wpid"
    wwait "$wpid" 10

    read -r port <<< "$(ct_free_ports 1)"
    url=https://127.0.0.1:$port
    rm -f "$work/ran"
    wstart "$f-bad" "${SEALED[@]}" "CLOUDTASER_UNSEAL_LISTEN=127.0.0.1:$port" -- "$WL" touch "$work/ran"
    wait_grep "$work/$f-bad.err" 'sealed: waiting' 20 "$wpid"
    c=$(unseal '{"token": "hvs.not-a-token-of-this-vault"}')
    wwait "$wpid" 20
    [ "$c" = 200 ] && [ "$rc" = 77 ] && [ ! -e "$work/ran" ]
    ok $? "$f: a token the vault refuses: exit 77 after the unseal, nothing started" || { diag "code $c rc $rc"; show "$f-bad"; }
done

tap_done
