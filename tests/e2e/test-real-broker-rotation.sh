#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The broker follows the rotation of broker-tls, broker-auth and broker-token without a restart
# (docs/protocol-broker.md "Rotation"), on the real kube-apiserver and OpenBao, the records
# rotated by writing new KV v2 versions as an operator would. Broker A re-reads every second;
# broker L every hour (it lags, as a replica that has not reached its next re-read does, and
# must learn of a rotation from the sessions it is shown). The client is openssl + curl, the
# forgeries are made with `openssl kdf`/`dgst` from the protocol page's formulas.
#   - broker-tls: a new server certificate is served on new connections;
#   - broker-token: a session issued before still works (the overlap), a new session works, and
#     each replica accepts the other's, before and after;
#   - broker-auth: sessions issued before are refused (401), a pod admitted under the old key
#     is refused (403), a pod admitted under the new key gets a session that both replicas
#     accept, a token forged under the old key is refused while the same forgery under the new
#     key is accepted (which proves the forgery itself right); no value in any log.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/broker-setup.sh"
start_broker L --reload-interval 3600 && portL=$port
ok $? "broker L (re-reads every hour) serving on $portL"

# session POD PORT NAME: a session into $work/NAME.{json,crt}, its token in $tok_NAME.
open_session() {
    local code
    code=$(session "$1" "$2" "$work/$3.json") || return 1
    [ "$code" = 200 ] || { diag "session $1 at $2: $code $(cat "$work/$3.json")"; return 1; }
    jq -r .certificate "$work/$3.json" > "$work/$3.crt" && printf -v "tok_$3" '%s' "$(jq -r .token "$work/$3.json")"
}
read_with() { # PORT NAME [TOKEN]: the status of a secrets read with session NAME's certificate
    local tv="tok_$2"
    curl -sS --cacert "$d/ca.crt" -o "$work/r.json" -w '%{http_code}' --cert "$work/$2.crt" \
        --key "$work/pod.key" -H "Authorization: Bearer ${3:-${!tv}}" \
        --data-binary "{\"paths\":[\"secret/data/$ns/db\"]}" "https://127.0.0.1:$1/v1/secrets"
}
reads_ok() { [ "$(read_with "$@")" = 200 ] && [ "$(jq -r ".secrets[\"secret/data/$ns/db\"].data.password" "$work/r.json")" = "$value" ]; }
served_serial() {
    openssl s_client -connect "127.0.0.1:$1" -CAfile "$d/ca.crt" < /dev/null 2> /dev/null |
        openssl x509 -noout -serial 2> /dev/null | cut -d= -f2
}
logged() { grep -q "$2" "$work/$1.log"; }
# forge NAME AUTH-HEX INST-HEX: session NAME's token with exp moved 60 s later, MACed with the
# session MAC key derived from AUTH-HEX and INST-HEX.
forge() {
    local tv="tok_$1" body payload mackey mac
    body=${!tv#ctbs1.}
    payload=$(base64 -d <<< "${body%%.*}" | jq -c '.exp += 60' | base64 -w0)
    mackey=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:"$2" -kdfopt hexsalt:"$3" \
        -kdfopt info:cloudtaser/broker/session/v1 HKDF | tr -d ':' | tr 'A-F' 'a-f')
    mac=$(printf '%s' "ctbs1.$payload" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$mackey" -binary | base64 -w0)
    printf 'ctbs1.%s.%s' "$payload" "$mac"
}

open_session app "$portL" s1 && reads_ok "$portA" s1 && reads_ok "$portL" s1
ok $? "before any rotation: L's session reads through A and L"

# --- broker-tls -------------------------------------------------------------------------------
old_serial=$(served_serial "$portA")
openssl req -new -key "$d/server.key" -subj /CN=cloudtaser-broker -out "$d/server2.csr" 2> /dev/null &&
    openssl x509 -req -in "$d/server2.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext" -out "$d/server2.crt" 2> /dev/null &&
    bao kv put -mount=secret "$prefix/broker-tls" server.crt=@"$d/server2.crt" \
        server.key=@"$d/server.key" ca.crt=@"$d/ca.crt" > /dev/null
ok $? "broker-tls version 2 written (a new server certificate)"
new_serial=$(openssl x509 -in "$d/server2.crt" -noout -serial | cut -d= -f2)
ct_wait_for 60 logged A "broker-tls rotated (version 2)" && [ "$(served_serial "$portA")" = "$new_serial" ] &&
    [ "$new_serial" != "$old_serial" ]
ok $? "A serves the new certificate on new connections, not restarted (serial $old_serial -> $new_serial)" ||
    { diag "served $(served_serial "$portA")"; tail -n 5 "$work/A.log" | sed 's/^/# /'; }
kill -0 "$pidA" && reads_ok "$portA" s1
ok $? "  the session from before still reads through A"

# --- broker-token -----------------------------------------------------------------------------
inst2_hex=$(head -c32 /dev/urandom | xxd -p -c64)
bao kv put -mount=secret "$prefix/broker-token" token="$(b64 "$inst2_hex")" > /dev/null
ok $? "broker-token version 2 written"
ct_wait_for 60 logged A "broker-token rotated (version 2)"
ok $? "A loaded it" || tail -n 5 "$work/A.log" | sed 's/^/# /'
reads_ok "$portA" s1
ok $? "a session issued just before the rotation still reads through A (overlap)" || sed 's/^/# /' "$work/r.json"
open_session app "$portA" s2 && reads_ok "$portA" s2
ok $? "a new session from A works after the rotation"
reads_ok "$portL" s2 && logged L "broker-token rotated (version 2)"
ok $? "L, not yet due to re-read, accepts it: the unknown key made it re-read the records" ||
    { sed 's/^/# /' "$work/r.json"; tail -n 5 "$work/L.log" | sed 's/^/# /'; }
reads_ok "$portL" s1 && open_session app "$portL" s3 && reads_ok "$portA" s3
ok $? "L still accepts the session from before; A accepts L's new session"

# --- broker-auth ------------------------------------------------------------------------------
old_auth_hex=$auth_hex
[ "$(read_with "$portA" s3 "$(forge s3 "$old_auth_hex" "$inst2_hex")")" = 200 ]
ok $? "the forger is right: a re-MACed token under the keys in service is accepted"
auth_hex=$(head -c32 /dev/urandom | xxd -p -c64)
bao kv put -mount=secret "$prefix/broker-auth" key="$(b64 "$auth_hex")" > /dev/null
ok $? "broker-auth version 2 written"
ct_wait_for 60 logged A "broker-auth rotated (version 2)"
ok $? "A loaded it" || tail -n 5 "$work/A.log" | sed 's/^/# /'
code=$(read_with "$portA" s3)
[ "$code" = 401 ]
ok $? "a session issued before the broker-auth rotation is refused: 401 ($code)"
code=$(session app "$portA" "$work/s-old.json")
[ "$code" = 403 ] && grep -q "annotation MAC mismatch" "$work/s-old.json"
ok $? "a pod admitted under the old broker-auth: 403 ($code)"
ann_key=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:"$auth_hex" \
    -kdfopt info:cloudtaser/broker/annotation/v1 HKDF | tr -d ':' | tr 'A-F' 'a-f')
make_pod app2 "secret/data/$ns/db" "secret/data/$ns/db"
ok $? "pod app2 admitted under the new key"
open_session app2 "$portL" s4 && logged L "broker-auth rotated (version 2)" && reads_ok "$portL" s4 &&
    reads_ok "$portA" s4
ok $? "a session for it from L (re-read on the unknown MAC) reads through L and A" ||
    tail -n 5 "$work/L.log" | sed 's/^/# /'
open_session app2 "$portA" s5 && reads_ok "$portL" s5
ok $? "A's session reads through L"
code=$(read_with "$portA" s5 "$(forge s5 "$old_auth_hex" "$inst2_hex")")
[ "$code" = 401 ] && grep -q 'status=401 reason="session token forged' "$work/A.log"
ok $? "a token forged under the old broker-auth: 401, as forged ($code)"
[ "$(read_with "$portA" s5 "$(forge s5 "$auth_hex" "$inst2_hex")")" = 200 ]
ok $? "the same forgery under the new key is accepted (the refusal is the key's)"
! grep -q "$value" "$work/A.log" "$work/L.log" && kill -0 "$pidA"
ok $? "A was never restarted; the value is in no broker log"
tap_done
