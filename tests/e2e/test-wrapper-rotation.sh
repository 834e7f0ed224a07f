#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: rotation cases from the hostile review of cloudtaser-wrapper (issue 11), musl and
# ASan builds, against the stand-in vault:
#   - a revoked token: the next rotation check gets 403, logs in again at once and delivers the
#     change (it waited for the renewal timer, an hour here, before);
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup

# revoke_role ROLE: revokes every token issued to ROLE (through the root token)
revoke_role() {
    local acc
    for acc in $(standin_control GET /_standin/tokens | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tokens"]:
    if (t.get("meta") or {}).get("role") == sys.argv[1]:
        print(t["accessor"])' "$1"); do
        curl -sS --fail --cacert "$STANDIN_CA" -H "X-Vault-Token: $STANDIN_ROOT_TOKEN" -X POST \
            --data "{\"accessor\":\"$acc\"}" "$STANDIN_ADDR/v1/auth/token/revoke-accessor" > /dev/null || return 1
    done
}

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- a revoked token: log in again at the first refused check
    name=$f-revoked
    v2="after-revoke-$(rand_hex 8)"
    plant secret/app/rev-$f '{"password":"before"}'
    wstart $name CLOUDTASER_SECRET_PATHS=secret/app/rev-$f CLOUDTASER_ENV_MAP=password=PGPASSWORD \
        CLOUDTASER_DELIVERY=memfd CLOUDTASER_ROTATION=signal:USR1 CLOUDTASER_ROTATION_INTERVAL=1s -- \
        "$WL" memfd-on-signal PGPASSWORD signals 60
    if wait_grep "$work/$name.out" '^ready$' 30 "$wpid"; then
        revoke_role demo
        ok $? "$f: revoked the wrapper's token"
        plant secret/app/rev-$f "{\"password\":\"$v2\"}"
        wait_grep "$work/$name.out" "^memfd PGPASSWORD sha256=$(sha "$v2") len=${#v2}\$" 10 "$wpid"
        ok $? "$f: after a revoked token, the next check logs in again and delivers the change" || show $name
        kill -TERM "$wpid"
        wwait "$wpid" 20
        [ $rc -eq 143 ]
        ok $? "$f: SIGTERM ends it with 143" || show $name
    else
        ok 1 "$f: the workload started (revoked token)" || show $name
    fi
done
tap_done
