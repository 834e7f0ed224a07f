/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/handlers: what the operator's three servers answer, and the state they share.
 *
 *   handlers_webhook  POST /mutate-v1-pod: an AdmissionReview (operator/admission), counted in
 *                     the metrics; 404 for other paths, 405 for other methods, 400 for a body
 *                     that is not an AdmissionReview
 *   handlers_health   /healthz (200 while the process serves), /readyz (200 once the webhook
 *                     serves, 503 before, saying why (e.g. the vault login's last failure),
 *                     and while stopping)
 *   handlers_metrics  /metrics, the Prometheus text of operator/metrics
 *
 * Each is an httpd handler (common/httpd.h) whose userdata is the struct operator_state; they
 * run on several event loops at once and only read the state, but for the atomics.
 * handlers_lookup is the admission's entrypoint lookup (admission_config.lookup): the pod's pull
 * secrets read through the Kubernetes API with the operator's identity, then the registry.
 * With st->lookups, handlers_webhook first reviews on the loop with the registry's cache only
 * (registry_lookup_cached(), with the pod's pull secrets as a worker last read them:
 * st->pull_secrets, operator/pullsecrets.h); a review that needs a real lookup is parked and re-run
 * on a pool worker with handlers_lookup; its fallback, sent at lookup_deadline_ms, is the pod's
 * denial saying that the lookup did not finish in time. The pool's client is the review's
 * namespace: one tenant holds at most its share of the queue; a refused review is denied at
 * once saying the lookups are busy ("How lookups run" in docs/operator.md).
 * handlers_pod_security is admission_config.pod_security: the namespace's
 * pod-security.kubernetes.io/enforce label, read through the API (RBAC: get namespaces).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/httpd.h"
#include "common/kube.h"
#include "operator/admission.h"
#include "operator/lookuppool.h"
#include "operator/metrics.h"
#include "operator/pullsecrets.h"
#include "operator/registry.h"

struct operator_state {
        struct admission_config adm;
        struct registry_client *registry;
        struct kube_client *kube; /* NULL: no Kubernetes API (pull secrets unused) */
        const char *node_arch;
        /* Reviews that need a registry lookup run on this pool, never on an event loop: the
         * loop answers from the cache or parks the review (httpd_defer()) and a worker answers
         * it. NULL: lookups run on the loop (tests of the handlers alone). */
        struct lookuppool *lookups;
        /* The pull secrets the workers last read, for the loop's cache-only pass (NULL: that
         * pass finds only results read without credentials). */
        struct pullsecrets *pull_secrets;
        unsigned lookup_deadline_ms; /* a parked review's answer from its start; 0: 9000 */
        size_t lookup_bytes_max;     /* their budget; 0: 32 MiB */
        _Atomic size_t lookup_bytes; /* the parked reviews' copied bodies (handlers.c) */
        struct operator_metrics m;
        struct httpd *_Atomic webhook; /* NULL until it serves (main sets it, metrics read it) */
        struct httpd *health, *metrics_srv;
        atomic_bool ready;
        /* Why not ready yet (for /readyz): writes one line into buf; NULL: none known. */
        void (*not_ready)(void *userdata, char *buf, size_t n);
        void *not_ready_userdata;
};

int handlers_webhook(void *userdata, const struct httpd_request *req, struct httpd_response *resp);
int handlers_health(void *userdata, const struct httpd_request *req, struct httpd_response *resp);
int handlers_metrics(void *userdata, const struct httpd_request *req, struct httpd_response *resp);

/* admission_config.lookup with userdata the struct operator_state. */
int handlers_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                    size_t n_names, struct registry_image_config *ret, char *err, size_t errlen);
int handlers_pod_security(void *userdata, const char *ns, enum admission_pod_security *ret);
