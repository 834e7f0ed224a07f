#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on the real kube-apiserver: operator/leader's election (tests/tools/ct-leader, musl
# and ASan builds side by side) with the production timings (lease 15 s, renew deadline 10 s,
# retry 2 s), as a service account that may only get and update the named Lease and create
# leases in its namespace (the RBAC of the deploy/ manifests): that is enough, and less is not.
#   - three candidates started together: exactly one leads, the others see it; the Lease
#     (kubectl): holderIdentity, leaseDurationSeconds 15, leaseTransitions 0, MicroTime fields;
#   - the leader SIGKILLed: one standby takes over, no sooner than the lease duration after the
#     dead leader's last renewTime (no takeover before expiry), within the lease duration and two
#     retry periods of the kill; leaseTransitions 1;
#   - the new leader SIGTERMed: it releases the Lease (exit 0), the last standby takes over
#     within a retry period or two; leaseTransitions 2;
#   - an account without update on the Lease: never leads, and says why once (the API server's
#     Forbidden message), not once per retry.
# Time bounds on a loaded machine: each bound has a slack of several seconds for API latency.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/e2e/real-lib.sh"

real_setup --cluster
ns=$T-leader
lease=cloudtaser-operator-leader
LEASE_MS=15000 RETRY_MS=2000 # as given to ct-leader below, in the operator's duration syntax
declare -A pid
cleanup_leader_test() {
    local p
    for p in "${pid[@]}"; do kill -KILL "$p" 2> /dev/null; done
    wait 2> /dev/null
    kubectl delete namespace "$ns" --wait=false > /dev/null 2>&1
    real_cleanup
}
trap cleanup_leader_test EXIT

now_ms() { date +%s%3N; }

# wait_line FILE REGEX SECONDS: waits until a line of FILE matches.
wait_line() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -qE "$2" "$1" 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}

# cand ID FLAVOUR TOKEN-FILE: a candidate in the background, output in $work/ID.{out,err}.
cand() {
    env "ASAN_OPTIONS=$WL_ASAN_OPTIONS" "UBSAN_OPTIONS=$WL_UBSAN_OPTIONS" \
        "$top/build/$2/bin/ct-leader" --namespace "$ns" --name "$lease" --identity "$1" \
        --lease-duration 15s --renew-deadline 10000ms --retry-period 2 \
        --kube-server "$CT_API" --kube-ca-file "$CT_CA" --kube-token-file "$3" \
        > "$work/$1.out" 2> "$work/$1.err" &
    pid[$1]=$!
}

lease_field() { kubectl -n "$ns" get lease "$lease" -o "jsonpath={.spec.$1}"; }

# role NAME RULES: a Role with these rules, bound to the service account NAME.
role() {
    cat << EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: $1, namespace: $ns}
rules:
$2
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: $1, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: $1}
subjects: [{kind: ServiceAccount, name: $1, namespace: $ns}]
---
EOF
}
leases='apiGroups: [coordination.k8s.io], resources: [leases]'
real_ns "$ns" &&
    kubectl -n "$ns" create serviceaccount elector > /dev/null &&
    kubectl -n "$ns" create serviceaccount reader > /dev/null &&
    { role elector "- {$leases, verbs: [get, update], resourceNames: [$lease]}
- {$leases, verbs: [create]}"
        role reader "- {$leases, verbs: [get], resourceNames: [$lease]}"; } |
    kubectl apply -f - > "$work/rbac.out" 2>&1
ok $? "namespace $ns; service accounts elector (get/update the Lease, create leases) and reader (get it)" ||
    sed 's/^/# /' "$work/rbac.out"
kube_token "$ns" elector > "$work/elector.jwt" && kube_token "$ns" reader > "$work/reader.jwt"
ok $? "their tokens"
as="--as=system:serviceaccount:$ns:elector"
[ "$(kubectl -n "$ns" auth can-i update "leases.coordination.k8s.io/$lease" "$as")" = yes ] &&
    [ "$(kubectl -n "$ns" auth can-i update leases.coordination.k8s.io/other "$as")" = no ] &&
    [ "$(kubectl -n "$ns" auth can-i list leases.coordination.k8s.io "$as")" = no ] &&
    [ "$(kubectl -n "$ns" auth can-i watch leases.coordination.k8s.io "$as")" = no ] &&
    [ "$(kubectl -n "$ns" auth can-i delete "leases.coordination.k8s.io/$lease" "$as")" = no ] &&
    [ "$(kubectl -n "$ns" auth can-i patch "leases.coordination.k8s.io/$lease" "$as")" = no ]
ok $? "the elector may update only that Lease, and may not list, watch, patch or delete leases"

# --- three candidates started together
cand a musl "$work/elector.jwt"
cand b asan "$work/elector.jwt"
cand c musl "$work/elector.jwt"
wait_line "$work/a.out" ' new-leader ' 60 && wait_line "$work/b.out" ' new-leader ' 60 &&
    wait_line "$work/c.out" ' new-leader ' 60
ok $? "three candidates (musl, ASan, musl) started together all see a leader" ||
    tail -n 5 "$work"/[abc].err | sed 's/^/# /'
sleep $((3 * RETRY_MS / 1000)) # three retry periods: a second leader would show by now
leaders=$(cat "$work"/[abc].out | awk '$2 == "started" {print $3}')
first=$leaders
all_see() {
    local x
    for x in a b c; do grep -q " new-leader $1\$" "$work/$x.out" || return 1; done
}
[ "$(printf '%s\n' "$leaders" | grep -c .)" = 1 ] && all_see "$first"
ok $? "exactly one of them leads ($first), and each sees it as the leader" ||
    for x in a b c; do diag "$x:" "$(cat "$work/$x.out")"; done
[ "$(lease_field holderIdentity)" = "$first" ] && [ "$(lease_field leaseTransitions)" = 0 ] &&
    [ "$(lease_field leaseDurationSeconds)" = 15 ]
ok $? "kubectl: holderIdentity $first, leaseTransitions 0, leaseDurationSeconds 15" ||
    kubectl -n "$ns" get lease "$lease" -o yaml | sed 's/^/# /'
micro='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$'
grep -qE "$micro" <<< "$(lease_field acquireTime)" && grep -qE "$micro" <<< "$(lease_field renewTime)"
ok $? "acquireTime and renewTime are MicroTime ($(lease_field renewTime))"
r1=$(lease_field renewTime)
sleep $((2 * RETRY_MS / 1000))
[ "$(lease_field renewTime)" != "$r1" ] && [ "$(lease_field holderIdentity)" = "$first" ]
ok $? "the leader renews (renewTime moved from $r1)"
[ "$(grep -c 'became the leader' "$work/$first.err")" = 1 ] &&
    ! grep -qi 'warning' "$work"/[abc].err
ok $? "one log line for the leader's transition, no warnings" || cat "$work"/[abc].err | sed 's/^/# /'

# --- SIGKILL of the leader: a takeover after the lease has expired
t_kill=$(now_ms)
kill -KILL "${pid[$first]}"
wait "${pid[$first]}" 2> /dev/null
unset "pid[$first]"
# The dead leader's last renewal, as the Lease records it (this machine's clock, as ct-leader's).
last=$(kubectl -n "$ns" get lease "$lease" -o 'jsonpath={.spec.holderIdentity} {.spec.renewTime}')
last_ms=$(date -u -d "${last#* }" +%s%3N 2> /dev/null)
[ "${last%% *}" = "$first" ] && [ -n "$last_ms" ]
ok $? "after the kill the Lease still names $first, last renewed at ${last#* }"
rest=()
for x in a b c; do [ "$x" != "$first" ] && rest+=("$x"); done
got=
for i in $(seq 600); do
    for x in "${rest[@]}"; do grep -q ' started ' "$work/$x.out" && got=$x; done
    [ -n "$got" ] && break
    sleep 0.1
done
ok $([ -n "$got" ]; echo $?) "after the leader's SIGKILL, a standby takes over ($got)"
t_new=$(awk '$2 == "started" {print $1; exit}' "$work/$got.out" 2> /dev/null)
dt=$((${t_new:-0} - t_kill))
[ "$dt" -le $((LEASE_MS + 2 * RETRY_MS + 5000)) ]
ok $? "it took over ${dt} ms after the kill: within the lease duration and two retry periods (+5 s slack)"
# Not before the lease expired: the standby counts the lease duration from when it saw that last
# renewal, which is after its renewTime (100 ms for clock slewing between the two clocks).
de=$((${t_new:-0} - ${last_ms:-0}))
[ "$de" -ge $((LEASE_MS - 100)) ]
ok $? "and ${de} ms after the dead leader's last renewTime: not before the lease ($LEASE_MS ms) expired"
sleep $((RETRY_MS / 1000))
second=$got
other=${rest[0]}
[ "$other" = "$second" ] && other=${rest[1]}
! grep -q ' started ' "$work/$other.out" && grep -q " new-leader $second\$" "$work/$other.out"
ok $? "the other standby ($other) did not lead, and sees $second"
[ "$(lease_field holderIdentity)" = "$second" ] && [ "$(lease_field leaseTransitions)" = 1 ]
ok $? "kubectl: holderIdentity $second, leaseTransitions 1" ||
    kubectl -n "$ns" get lease "$lease" -o yaml | sed 's/^/# /'

# --- SIGTERM of the new leader: it releases, the last standby takes over at once
t_term=$(now_ms)
kill -TERM "${pid[$second]}"
wait "${pid[$second]}"
rc=$?
unset "pid[$second]"
[ $rc = 0 ] && grep -qE "^[0-9]+ stopped $second\$" "$work/$second.out" &&
    grep -qE "^[0-9]+ exit $second 0\$" "$work/$second.out" && grep -q 'released the Lease' "$work/$second.err"
ok $? "SIGTERM: $second stopped leading, released the Lease and exited 0" ||
    { cat "$work/$second.out"; tail -n 5 "$work/$second.err"; } | sed 's/^/# /'
wait_line "$work/$other.out" ' started ' 30
ok $? "the last standby ($other) takes over"
t_new=$(awk '$2 == "started" {print $1; exit}' "$work/$other.out")
dt=$((${t_new:-0} - t_term))
[ "$dt" -le $((2 * RETRY_MS + 3000)) ]
ok $? "within a retry period or two of the SIGTERM (${dt} ms; the lease duration is $LEASE_MS ms)"
[ "$(lease_field holderIdentity)" = "$other" ] && [ "$(lease_field leaseTransitions)" = 2 ]
ok $? "kubectl: holderIdentity $other, leaseTransitions 2"

# --- an account that may read the Lease but not update it
kill -TERM "${pid[$other]}"
wait "${pid[$other]}"
ok $? "$other stops (exit 0)"
unset "pid[$other]"
[ -z "$(lease_field holderIdentity)" ] && [ "$(lease_field leaseDurationSeconds)" = 1 ]
ok $? "kubectl: the Lease released (holderIdentity \"\", leaseDurationSeconds 1)"
cand r musl "$work/reader.jwt"
wait_line "$work/r.err" 'forbidden' 30
sleep $((3 * RETRY_MS / 1000))
! grep -q ' started ' "$work/r.out" && [ "$(grep -c 'warning' "$work/r.err")" = 1 ] &&
    grep -q 'cannot update resource .leases. in API group .coordination.k8s.io.' "$work/r.err"
ok $? "without update: never leads, and says why once (the API server's Forbidden message)" ||
    sed 's/^/# /' "$work/r.err"
[ -z "$(lease_field holderIdentity)" ]
ok $? "and the Lease is unchanged"
kill -TERM "${pid[r]}"
wait "${pid[r]}"
ok $? "it stops (exit 0)"
unset "pid[r]"

tap_done
