#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cloudtaser-broker --pod-tokens on the real kube-apiserver and OpenBao (docs/protocol-broker.md
# "Per-pod tokens"), with the token role and policy of deploy/openbao/ as they are shipped. The
# brokers' own vault identity here reads its records and nothing else (no tenant path), so every
# secret served can only have come through a session's child token.
#   - a session writes the policy cloudtaser-broker-pod-<exp>-<id> (read on exactly the pod's
#     path) and mints an orphan child token with it alone (default + that policy, not renewable,
#     TTL within the session); sys/capabilities-accessor: it reads its path, not another pod's,
#     not another namespace's;
#   - the reads work (/v1/secrets, /v1/versions); a second replica serving the session mints its
#     own token for the same policy;
#   - renewal revokes the old session's token; the session's expiry revokes its token and, after
#     the grace, deletes its policy; stopping a broker revokes its tokens; a left-over policy of
#     an expired session (a broker that died) is swept at start, an unexpired one is kept;
#   - no value and no token in any log.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/broker-setup.sh"

# --- the vault side, from deploy/openbao/ ---------------------------------------------------------
bao kv put -mount=secret "$ns/other" password=another-pods > /dev/null
past=$(( $(date +%s) - 3600 )) && future=$(( $(date +%s) + 3600 ))
left=cloudtaser-broker-pod-$past-$(head -c16 /dev/urandom | xxd -p -c32)
live=cloudtaser-broker-pod-$future-$(head -c16 /dev/urandom | xxd -p -c32)
bao_policy "$left" 'path "secret/data/x/left" { capabilities = ["read"] }' &&
    bao_policy "$live" 'path "secret/data/x/live" { capabilities = ["read"] }'
ok $? "a left-over policy of an expired session, and one of a session still running elsewhere"
bao write auth/token/roles/cloudtaser-broker-pod "@$top/deploy/openbao/cloudtaser-broker-pod-token-role.json" > /dev/null &&
    bao policy write "$T-pod-tokens" "$top/deploy/openbao/cloudtaser-broker-pod-tokens.hcl" > /dev/null &&
    bao_policy "$T-records" "path \"secret/data/$prefix/*\" { capabilities = [\"read\"] }" &&
    bao write "auth/kubernetes/role/$T-pbroker" bound_service_account_names=broker \
        bound_service_account_namespaces="$ns" token_policies="$T-records,$T-pod-tokens" ttl=10m > /dev/null
ok $? "the token role and policy of deploy/openbao/, a broker role without any tenant path"

start_broker P --vault-role "$T-pbroker" --pod-tokens && portP=$port && pidP=${pids[-1]} &&
    start_broker Q --vault-role "$T-pbroker" --pod-tokens && portQ=$port
ok $? "brokers P and Q with --pod-tokens" || tail -n 5 "$work/P.log" | sed 's/^/# /'
! bao policy read "$left" > /dev/null 2>&1 && bao policy read "$live" > /dev/null 2>&1 &&
    grep -q "policy(ies) deleted" "$work/P.log"
ok $? "swept at start: the expired left-over deleted, the other kept"
bao policy delete "$live" > /dev/null

req_at() { # PORT API CERT TOKEN BODY
    curl -sS --cacert "$d/ca.crt" -o "$work/r.json" -w '%{http_code}' --cert "$3" --key "$work/pod.key" \
        -H "Authorization: Bearer $4" --data-binary "$5" "https://127.0.0.1:$1$2"
}
paths="{\"paths\":[\"secret/data/$ns/db\"]}"
code=$(session app "$portP" "$work/s1.json")
jq -r .certificate "$work/s1.json" > "$work/s1.crt"
tok=$(jq -r .token "$work/s1.json")
line=$(grep "pod token for a session of $ns/app: policy" "$work/P.log" | tail -n 1)
pol=$(sed -n 's/.*policy \([^ ]*\) accessor.*/\1/p' <<< "$line")
acc=$(sed -n 's/.* accessor \(.*\)$/\1/p' <<< "$line")
[ "$code" = 200 ] && [ -n "$pol" ] && [ -n "$acc" ]
ok $? "a session from P: its policy $pol and token accessor logged" || { diag "code $code"; tail -n 5 "$work/P.log" | sed 's/^/# /'; }
bao policy read "$pol" > "$work/pol.txt" 2>&1
[ "$(grep -c '^path ' "$work/pol.txt")" = 1 ] && grep -q "^path \"secret/data/$ns/db\" {" "$work/pol.txt" &&
    [ "$(grep -o '"[a-z]*"' <<< "$(grep capabilities "$work/pol.txt")")" = '"read"' ]
ok $? "the policy: read on exactly the pod's path" || sed 's/^/# /' "$work/pol.txt"
bao write -format=json auth/token/lookup-accessor accessor="$acc" > "$work/lookup.json" 2>&1
python3 - "$work/lookup.json" "$pol" "$(jq -r .expires_at "$work/s1.json")" <<'EOF'
import json, sys, time
d = json.load(open(sys.argv[1]))["data"]
ok = d["orphan"] and sorted(d["policies"]) == sorted(["default", sys.argv[2]]) and \
    not d["renewable"] and 0 < d["ttl"] <= int(sys.argv[3]) - time.time() + 5
sys.exit(0 if ok else 1)
EOF
ok $? "the child token: an orphan, its one policy (and default), not renewable, TTL within the session" ||
    sed 's/^/# /' "$work/lookup.json"
caps() { bao write -field=capabilities sys/capabilities-accessor accessor="$1" paths="$2" 2>&1; }
[ "$(caps "$acc" "secret/data/$ns/db")" = '[read]' ] && [ "$(caps "$acc" "secret/data/$ns/other")" = '[deny]' ] &&
    [ "$(caps "$acc" "secret/data/$T-other/db")" = '[deny]' ] && [ "$(caps "$acc" "secret/data/$prefix/broker-auth")" = '[deny]' ]
ok $? "it reads its path; not another pod's, another namespace's, or the broker's records" ||
    diag "$(caps "$acc" "secret/data/$ns/db") $(caps "$acc" "secret/data/$ns/other") $(caps "$acc" "secret/data/$T-other/db")"

code=$(req_at "$portP" /v1/secrets "$work/s1.crt" "$tok" "$paths")
[ "$code" = 200 ] && [ "$(jq -r ".secrets[\"secret/data/$ns/db\"].data.password" "$work/r.json")" = "$value" ]
ok $? "the read through P works, with the session's token only ($code)" || sed 's/^/# /' "$work/r.json"
code=$(req_at "$portP" /v1/versions "$work/s1.crt" "$tok" "$paths")
[ "$code" = 200 ] && [ "$(jq -r ".versions[\"secret/data/$ns/db\"]" "$work/r.json")" = 1 ]
ok $? "and versions ($code)"
code=$(req_at "$portQ" /v1/secrets "$work/s1.crt" "$tok" "$paths")
qline=$(grep "pod token for a session of $ns/app: policy $pol accessor" "$work/Q.log" | tail -n 1)
qacc=${qline##* accessor }
[ "$code" = 200 ] && [ -n "$qacc" ] && [ "$qacc" != "$acc" ] && [ "$(caps "$qacc" "secret/data/$ns/other")" = '[deny]' ]
ok $? "Q serves P's session with a token of its own for the same policy ($code)" || tail -n 5 "$work/Q.log" | sed 's/^/# /'

# --- renewal, expiry, stop --------------------------------------------------------------------------
jq -n --rawfile csr "$work/pod.csr" '{csr: $csr}' > "$work/renew.json"
code=$(req_at "$portP" /v1/session/renew "$work/s1.crt" "$tok" @"$work/renew.json")
alive() { bao write auth/token/lookup-accessor accessor="$1" > /dev/null 2>&1; }
[ "$code" = 200 ] && ! alive "$acc" && alive "$qacc"
ok $? "renewed at P: P's token of the old session revoked (Q's lives until the session's end)" || diag "code $code"
jq -r .certificate "$work/r.json" > "$work/s2.crt"
tok2=$(jq -r .token "$work/r.json")
code=$(req_at "$portP" /v1/secrets "$work/s2.crt" "$tok2" "$paths")
[ "$code" = 200 ]
ok $? "the renewed session reads ($code)"
acc2=$(grep "pod token for a session of $ns/app: policy" "$work/P.log" | tail -n 1 | sed 's/.* accessor //')

start_broker S --vault-role "$T-pbroker" --pod-tokens --session-ttl 4 && portS=$port
code=$(session app "$portS" "$work/s3.json")
sline=$(grep "pod token for a session of $ns/app: policy" "$work/S.log" | tail -n 1)
spol=$(sed -n 's/.*policy \([^ ]*\) accessor.*/\1/p' <<< "$sline")
sacc=${sline##* accessor }
[ "$code" = 200 ] && alive "$sacc"
ok $? "broker S issues a 4 s session with its token" || diag "code $code"
ct_wait_for 60 grep -q "expired sessions: 1 token(s) revoked" "$work/S.log" && ! alive "$sacc"
ok $? "the session expired: S revoked its token" || tail -n 5 "$work/S.log" | sed 's/^/# /'
ct_wait_for 120 bash -c "! bao policy read '$spol'"
ok $? "and its policy deleted after the grace"

kill "$pidP" && wait "$pidP" 2> /dev/null
! alive "$acc2" && grep -q "stopping: 1 per-session token(s) revoked" "$work/P.log"
ok $? "P stopped: its tokens are revoked" || tail -n 3 "$work/P.log" | sed 's/^/# /'

! grep -q -e "$value" -e "$tok" -e "$tok2" "$work"/[PQS].log
ok $? "no value and no session token in any broker log"
tap_done
