/* SPDX-License-Identifier: Apache-2.0 */
/* operator/handlers: see handlers.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "operator/admission.h"
#include "operator/handlers.h"
#include "operator/metrics.h"
#include "operator/registry.h"

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int handlers_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                    size_t n_names, struct registry_image_config *ret, char *err, size_t errlen) {
        struct operator_state *st = userdata;
        _cleanup_buf_ struct buf configs = BUF_INIT(4u * 1024u * 1024u, BUF_SECURE);
        const char *docs[32];
        size_t offsets[32], n_docs = 0;
        int r;

        /* The pull secrets' contents, read with the operator's own identity. */
        for (size_t i = 0; st->kube && i < n_names && n_docs < ELEMENTSOF(docs); i++) {
                struct kube_error e = {};
                size_t before = configs.len;
                r = kube_get_pull_secret(st->kube, ns, names[i], &configs, &e);
                if (r < 0) {
                        log_warning(
                                "image pull secret %s/%s unusable for the entrypoint lookup: %s",
                                ns, names[i], e.message);
                        continue;
                }
                if (buf_append_byte(&configs, 0) < 0)
                        break;
                offsets[n_docs++] = before;
        }
        for (size_t i = 0; i < n_docs; i++)
                docs[i] = configs.data + offsets[i];

        /* registry_lookup is thread-safe (its cache has its own lock) and does its network I/O
         * without holding it: loops do not wait for each other's lookups. */
        r = registry_lookup(st->registry, image, "linux", st->node_arch, docs, n_docs, ret, err,
                            errlen);
        return r;
}

int handlers_pod_security(void *userdata, const char *ns, enum admission_pod_security *ret) {
        struct operator_state *st = userdata;
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        struct kube_error e = {};
        char path[128];
        const char *level = NULL;
        int r;

        if (!st->kube)
                return -ENOTCONN;
        /* The namespace comes from the API server's review; a DNS label is all it can be. */
        size_t n = strlen(ns);
        if (n == 0 || n > 63 || strspn(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
                return -EINVAL;
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
        r = kube_get(st->kube, path, &doc, &e);
        if (r < 0) {
                log_warning("cannot read namespace %s for its Pod Security level: %s", ns,
                            e.message);
                return r;
        }
        const struct json_value *labels =
                json_get(json_get(json_doc_root(doc), "metadata"), "labels");
        (void) json_get_string(labels, "pod-security.kubernetes.io/enforce", &level);
        if (!level || strcmp(level, "privileged") == 0)
                *ret = ADMISSION_PSS_PRIVILEGED;
        else if (strcmp(level, "baseline") == 0)
                *ret = ADMISSION_PSS_BASELINE;
        else /* restricted, or a level this version does not know: the strictest */
                *ret = ADMISSION_PSS_RESTRICTED;
        return 0;
}

int handlers_webhook(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        struct operator_state *st = userdata;
        const char *outcome = "error";
        int r;

        if (strcmp(req->path, "/mutate-v1-pod") != 0)
                return httpd_response_set(resp, 404, "text/plain; charset=utf-8", "not found\n");
        if (strcmp(req->method, "POST") != 0) {
                (void) httpd_response_add_header(resp, "Allow", "POST");
                return httpd_response_set(resp, 405, "text/plain; charset=utf-8", "use POST\n");
        }
        uint64_t t0 = req->start_usec ? req->start_usec : now_usec();
        r = admission_review_arena(&st->adm, req->arena, req->body, req->body_len, &resp->body,
                                   &outcome);
        if (r == -EBADMSG) {
                buf_reset(&resp->body);
                metrics_count_review(&st->m, METRICS_BAD_REQUEST, now_usec() - t0);
                return httpd_response_set(
                        resp, 400, "text/plain; charset=utf-8",
                        "the request body is not an admission.k8s.io/v1 AdmissionReview\n");
        }
        if (r < 0) {
                metrics_count_failure(&st->m);
                log_error_errno(r, "admission review failed: %m");
                return r;
        }
        resp->status = 200;
        resp->content_type = "application/json";
        enum metrics_outcome o = strcmp(outcome, "injected") == 0  ? METRICS_INJECTED
                                 : strcmp(outcome, "skipped") == 0 ? METRICS_SKIPPED
                                 : strcmp(outcome, "denied") == 0  ? METRICS_DENIED
                                                                   : METRICS_ERROR;
        metrics_count_review(&st->m, o, now_usec() - t0);
        return 0;
}

static int not_ready(struct operator_state *st, struct httpd_response *resp) {
        char why[600] = "";
        if (st->not_ready)
                st->not_ready(st->not_ready_userdata, why, sizeof(why));
        resp->status = 503;
        resp->content_type = "text/plain; charset=utf-8";
        return buf_printf(&resp->body, "webhook not serving yet%s%s\n", why[0] ? ": " : "", why);
}

int handlers_health(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        struct operator_state *st = userdata;
        if (strcmp(req->path, "/healthz") == 0)
                return httpd_response_set(resp, 200, "text/plain; charset=utf-8", "ok\n");
        if (strcmp(req->path, "/readyz") == 0)
                return atomic_load(&st->ready)
                               ? httpd_response_set(resp, 200, "text/plain; charset=utf-8",
                                                    st->adm.n_allowed
                                                            ? "ok\n"
                                                            : "ok (warning: no "
                                                              "--allowed-vault-addresses: pods may "
                                                              "name any vault address)\n")
                               : not_ready(st, resp);
        return httpd_response_set(resp, 404, "text/plain; charset=utf-8", "not found\n");
}

int handlers_metrics(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        struct operator_state *st = userdata;
        struct httpd_stats hs = {};
        struct registry_stats rs = {};

        if (strcmp(req->path, "/metrics") != 0)
                return httpd_response_set(resp, 404, "text/plain; charset=utf-8", "not found\n");
        if (st->webhook)
                httpd_get_stats(st->webhook, &hs);
        registry_get_stats(st->registry, &rs);
        int r = metrics_render(&st->m, &hs, &rs, &resp->body);
        if (r < 0)
                return r;
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return 0;
}
