/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/discover-pb: a workload list in the Kubernetes protobuf encoding
 * ("application/vnd.kubernetes.protobuf": the "k8s\0" magic, a runtime.Unknown envelope, then
 * an apps/v1 DeploymentList, StatefulSetList or DaemonSetList), turned into the JSON tree that
 * discover_scan() reads, holding only what it reads. The API server encodes protobuf several
 * times faster than JSON and a quarter of the bytes (docs/benchmarks.md): discover asks for it,
 * and falls back to JSON for a page this module refuses.
 *
 * The result, per list: {"metadata": {"continue"}, "items": [...]}, and per item
 *   metadata: name, namespace
 *   spec: replicas, template: {metadata: {annotations}, spec: {serviceAccountName, volumes,
 *         initContainers, containers}}
 *   container: env [{name, valueFrom: {secretKeyRef: {name, key}}, value}], envFrom [{prefix,
 *              secretRef: {name}}], volumeMounts [{name, mountPath}]
 *   volume: name, secret: {secretName, items [{key}]},
 *           projected: {sources [{secret: {name, items [{key}]}}]}
 * An env value is kept only when it is a Bank-Vaults reference ("vault:..." or ">>vault:..."),
 * the only values discover looks at: the literal values of a workload (which may be secrets) are
 * never copied. Everything else is skipped unread. The field numbers are those of k8s.io/api's
 * generated.proto, checked against the real kube-apiserver by the end-to-end test (the plan from
 * protobuf and from JSON are the same).
 */
#pragma once

#include <stddef.h>

#include "cli/plan.h"
#include "common/json.h"

/* Decodes list (len bytes) of kind k into a new JSON_SECURE document (*ret, caller-owned).
 * -EBADMSG for anything that is not such a list (not the magic, another kind, a truncated varint
 * or length, a wire type that does not match the field, a non-repeated field given twice, a
 * string that is not UTF-8 or holds a NUL), -E2BIG over the document's memory bound (64 bytes per
 * input byte, at most 64 MiB), -ENOMEM. */
int discover_pb_list(const void *list, size_t len, enum plan_kind k, struct json_doc **ret);
