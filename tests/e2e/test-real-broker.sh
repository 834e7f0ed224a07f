#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real servers: cloudtaser-broker on the host against the real kube-apiserver
# (TokenReview with the audience, pods by name and UID) and OpenBao (its own Kubernetes-auth
# login, the records broker-tls/-auth/-token, the pods' secrets). The client is openssl + curl,
# an implementation independent of ours: the annotation MAC is computed with `openssl kdf` and
# `openssl dgst -hmac` from the protocol page's formula, the CSR by `openssl req`.
#   - a pod admitted for broker mode gets a session from replica A and reads its secret through
#     replica B after A is killed (any replica accepts another's session);
#   - a connection without the client certificate: 401 (curl and openssl s_client); a forged
#     token: 401; a token with another session's certificate: 401; an expired session: refused;
#   - a path outside the session: 403; a pod whose annotations name another namespace's path
#     (with a valid MAC): 403; edited annotations (MAC mismatch): 403; a JWT for another
#     audience: 401.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/broker-setup.sh"

code=$(session app "$portA" "$work/s1.json")
[ "$code" = 200 ] && jq -r .certificate "$work/s1.json" > "$work/pod.crt" &&
    tok=$(jq -r .token "$work/s1.json") && [ -n "$tok" ] &&
    openssl verify -CAfile <(jq -r .ca "$work/s1.json") "$work/pod.crt" > /dev/null &&
    openssl x509 -in "$work/pod.crt" -noout -ext subjectAltName | grep -q "URI:spiffe://cloudtaser/ns/$ns/pod/app/uid/"
ok $? "session from broker A: a client certificate (openssl verify, SPIFFE URI SAN) and a token" ||
    { diag "code $code"; sed 's/^/# /' "$work/s1.json" "$work/A.log" | tail -20; }

read_secrets() { # PORT PATHS-JSON [curl args]
    local port=$1 paths=$2; shift 2
    curl -sS --cacert "$d/ca.crt" -o "$work/r.json" -w '%{http_code}' "$@" \
        --data-binary "{\"paths\":$paths}" "https://127.0.0.1:$port/v1/secrets"
}
kill "$pidA"
code=$(read_secrets "$portB" "[\"secret/data/$ns/db\"]" --cert "$work/pod.crt" --key "$work/pod.key" \
    -H "Authorization: Bearer $tok")
[ "$code" = 200 ] && [ "$(jq -r ".secrets[\"secret/data/$ns/db\"].data.password" "$work/r.json")" = "$value" ]
ok $? "broker A killed: broker B accepts A's session and returns the secret" ||
    { diag "code $code"; sed 's/^/# /' "$work/r.json" "$work/B.log" | tail -20; }
! grep -q "$value" "$work/A.log" "$work/B.log"
ok $? "the value is in no broker log"
grep -q "audit .*path=/v1/secrets ns=$ns pod=app sa=app paths=secret/data/$ns/db status=200" "$work/B.log"
ok $? "one audit line names pod, namespace, service account, path and outcome"

code=$(curl -sS --cacert "$d/ca.crt" -o "$work/v.json" -w '%{http_code}' --cert "$work/pod.crt" \
    --key "$work/pod.key" -H "Authorization: Bearer $tok" --data-binary "{\"paths\":[\"secret/data/$ns/db\"]}" \
    "https://127.0.0.1:$portB/v1/versions")
[ "$code" = 200 ] && [ "$(jq -r ".versions[\"secret/data/$ns/db\"]" "$work/v.json")" = 1 ]
ok $? "versions for rotation polling"

code=$(read_secrets "$portB" "[\"secret/data/$ns/db\"]" -H "Authorization: Bearer $tok")
[ "$code" = 401 ]
ok $? "no client certificate after the session: 401 ($code)"
req="POST /v1/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $tok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
printf "$req" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$portB" -CAfile "$d/ca.crt" \
    2> /dev/null | head -1 | grep -q "^HTTP/1.1 401"
ok $? "the same with openssl s_client: 401"
forged=${tok%?????}$( [ "${tok: -5:1}" = A ] && echo B || echo A )${tok: -4}
code=$(read_secrets "$portB" "[\"secret/data/$ns/db\"]" --cert "$work/pod.crt" --key "$work/pod.key" \
    -H "Authorization: Bearer $forged")
[ "$code" = 401 ]
ok $? "a forged token: 401 ($code)"
code=$(read_secrets "$portB" "[\"secret/data/$T-other/db\"]" --cert "$work/pod.crt" --key "$work/pod.key" \
    -H "Authorization: Bearer $tok")
[ "$code" = 403 ] && ! grep -q not-yours "$work/r.json"
ok $? "another namespace's path, not in the session: 403 ($code)"

code=$(session greedy "$portB" "$work/s2.json")
[ "$code" = 403 ] && grep -q "outside the namespace prefix" "$work/s2.json"
ok $? "a pod whose annotations name another namespace's path: 403 at the session ($code)"
code=$(session edited "$portB" "$work/s3.json")
[ "$code" = 403 ] && grep -q "annotation MAC mismatch" "$work/s3.json"
ok $? "edited annotations: 403, MAC mismatch ($code)"
code=$(session app "$portB" "$work/s4.json" https://kubernetes.default.svc.cluster.local)
[ "$code" = 401 ]
ok $? "a JWT for another audience: 401 ($code)"

# A second session (new certificate): its token with the first certificate is refused.
code=$(session app "$portB" "$work/s5.json")
tok2=$(jq -r .token "$work/s5.json")
code=$(read_secrets "$portB" "[\"secret/data/$ns/db\"]" --cert "$work/pod.crt" --key "$work/pod.key" \
    -H "Authorization: Bearer $tok2")
[ "$code" = 401 ]
ok $? "a token used with another session's certificate: 401 ($code)"

# An expired session: broker C issues 2-second sessions.
start_broker C --session-ttl 2 && portC=$port
code=$(session app "$portC" "$work/s6.json")
jq -r .certificate "$work/s6.json" > "$work/pod6.crt"
tok6=$(jq -r .token "$work/s6.json")
sleep 3
code=$(read_secrets "$portC" "[\"secret/data/$ns/db\"]" --cert "$work/pod6.crt" --key "$work/pod.key" \
    -H "Authorization: Bearer $tok6" 2> /dev/null)
[ "$code" != 200 ] && ! grep -q "$value" "$work/r.json" 2> /dev/null
ok $? "an expired session is refused ($code)"
tap_done
