# SPDX-License-Identifier: Apache-2.0
# broker-setup.sh: the prologue of the broker's tests on the real servers (test-real-broker*.sh),
# sourced with $top set: the test libraries, the cluster and OpenBao (real_setup --cluster),
# pod-lib.sh (ct_wait_for), the namespace $ns with the service accounts app and broker, then
# broker-lib.sh (the records, brokers A and B, the pods). $BROKER: the musl build.
. "$top/tests/e2e/real-lib.sh"

BROKER=$top/build/musl/bin/cloudtaser-broker
[ -x "$BROKER" ] || { echo "Bail out! $BROKER not built"; exit 1; }
real_setup --cluster
. "$top/tests/cluster/pod-lib.sh"
ns=$T-apps
real_ns "$ns" || { echo "Bail out! namespace $ns"; exit 1; }
kubectl -n "$ns" create serviceaccount app > /dev/null
kubectl -n "$ns" create serviceaccount broker > /dev/null
. "$top/tests/e2e/broker-lib.sh"
