#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/e2e/test-kube-standin.py against a real kube-apiserver 1.37 (a private etcd,
# kube-apiserver and kube-controller-manager: the checks register cluster-wide webhook
# configurations, which must never reach the shared cluster's pods): where the stand-in and the
# real server answer differently, the stand-in is fixed (tests/standin/README-kube.md).
exec /usr/bin/python3 "$(dirname "$0")/test-kube-standin.py" --target real
