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
#include "operator/metrics.h"
#include "operator/registry.h"

struct operator_state {
        struct admission_config adm;
        struct registry_client *registry;
        struct kube_client *kube; /* NULL: no Kubernetes API (pull secrets unused) */
        const char *node_arch;
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
