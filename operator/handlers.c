/* SPDX-License-Identifier: Apache-2.0 */
/* operator/handlers: see handlers.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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

#define MAX_DOCS 32

/* The pod's pull secrets' contents into configs (NUL-terminated, each), pointed at by docs:
 * read through the API with the operator's own identity and kept in st->pull_secrets for the
 * loop (fresh), or only from there (!fresh: the loop, which does no I/O). */
static size_t pull_secrets(struct operator_state *st, const char *ns, const char *const *names,
                           size_t n_names, bool fresh, struct buf *configs,
                           const char *docs[static MAX_DOCS]) {
        size_t offsets[MAX_DOCS], n_docs = 0;
        int r;

        for (size_t i = 0; i < n_names && n_docs < MAX_DOCS; i++) {
                size_t before = configs->len;
                if (!fresh) {
                        if (pullsecrets_get(st->pull_secrets, ns, names[i], configs) == 0)
                                offsets[n_docs++] = before;
                        continue;
                }
                if (!st->kube)
                        break;
                struct kube_error e = {};
                r = kube_get_pull_secret(st->kube, ns, names[i], configs, &e);
                if (r < 0) {
                        pullsecrets_drop(st->pull_secrets, ns, names[i]);
                        log_warning(
                                "image pull secret %s/%s unusable for the entrypoint lookup: %s",
                                ns, names[i], e.message);
                        continue;
                }
                (void) pullsecrets_put(st->pull_secrets, ns, names[i], configs->data + before,
                                       configs->len - before); /* too big: the pool, next time */
                if (buf_append_byte(configs, 0) < 0)
                        break;
                offsets[n_docs++] = before;
        }
        for (size_t i = 0; i < n_docs; i++)
                docs[i] = configs->data + offsets[i];
        return n_docs;
}

int handlers_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                    size_t n_names, struct registry_image_config *ret, char *err, size_t errlen) {
        struct operator_state *st = userdata;
        _cleanup_buf_ struct buf configs = BUF_INIT(4u * 1024u * 1024u, BUF_SECURE);
        const char *docs[MAX_DOCS];
        size_t n_docs = pull_secrets(st, ns, names, n_names, true, &configs, docs);

        /* registry_lookup is thread-safe (its cache has its own lock) and does its network I/O
         * without holding it: loops do not wait for each other's lookups. */
        return registry_lookup(st->registry, image, "linux", st->node_arch, docs, n_docs, ret, err,
                               errlen);
}

/* ---- reviews that need a lookup: on the pool, never on the loop ---------------------------- */

#define LOOKUP_DEADLINE_MS 9000u               /* under the API server's 10 s webhook timeout */
#define LOOKUP_BYTES_MAX (32u * 1024u * 1024u) /* bodies of the reviews parked at once */

/* The loop's pass over a review: the registry's cache only. A miss marks the review for the
 * pool, and the lookup fails with `why` (so this pass's answer is the review's fallback). */
struct probe {
        struct operator_state *st;
        const char *why;
        bool missed;
        char ns[LOOKUPPOOL_CLIENT_MAX + 1];
};

static int probe_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                        size_t n_names, struct registry_image_config *ret, char *err,
                        size_t errlen) {
        struct probe *p = userdata;
        int r;

        /* The pod's own pull secrets, as a worker last read them: a result cached under one of
         * their credentials is answered here too (operator/pullsecrets.h says why that cannot
         * answer for a pod that lacks the credential). */
        _cleanup_buf_ struct buf configs = BUF_INIT(4u * 1024u * 1024u, BUF_SECURE);
        const char *docs[MAX_DOCS];
        size_t n_docs = pull_secrets(p->st, ns, names, n_names, false, &configs, docs);
        r = registry_lookup_cached(p->st->registry, image, "linux", p->st->node_arch, docs, n_docs,
                                   ret, err, errlen);
        if (r != -EWOULDBLOCK)
                return r; /* a cached result, or an error no lookup would change */
        p->missed = true;
        (void) snprintf(p->ns, sizeof(p->ns), "%s", ns);
        (void) snprintf(err, errlen, "%s", p->why);
        return -ETIMEDOUT;
}

static enum metrics_outcome outcome_metric(const char *outcome) {
        return strcmp(outcome, "injected") == 0  ? METRICS_INJECTED
               : strcmp(outcome, "skipped") == 0 ? METRICS_SKIPPED
               : strcmp(outcome, "denied") == 0  ? METRICS_DENIED
                                                 : METRICS_ERROR;
}

struct review_job {
        struct operator_state *st;
        struct httpd_deferred *d;
        uint64_t t0;
        size_t max_out;
        size_t len;
        char body[]; /* len bytes and a NUL */
};

static void review_job_freep(struct review_job **j) {
        if (!*j)
                return;
        atomic_fetch_sub(&(*j)->st->lookup_bytes, (*j)->len);
        free(*j);
}

/* On a pool worker: the review with real lookups, answered through the parked request. */
static void review_job_run(void *arg, bool cancelled) {
        _cleanup_(review_job_freep) struct review_job *j = arg;
        _cleanup_buf_ struct buf out = BUF_INIT(j->max_out, 0);
        static const char bare500[] = "500 Internal Server Error\n";
        const char *outcome = "error";
        int r;

        if (cancelled || httpd_deferred_cancelled(j->d)) {
                httpd_deferred_drop(j->d); /* nobody waits, or the operator stops */
                return;
        }
        r = admission_review(&j->st->adm, j->body, j->len, &out, &outcome);
        if (r < 0) {
                metrics_count_failure(&j->st->m);
                log_error_errno(r, "admission review failed: %m");
                (void) httpd_deferred_complete(j->d, 500, NULL, bare500, sizeof(bare500) - 1);
                return;
        }
        metrics_count_review(&j->st->m, outcome_metric(outcome), now_usec() - j->t0);
        r = httpd_deferred_complete(j->d, 200, "application/json", out.data, out.len);
        if (r == -ECANCELED)
                log_warning("an entrypoint lookup finished after the review's %u ms: the pod was "
                            "denied for it",
                            j->st->lookup_deadline_ms ? j->st->lookup_deadline_ms
                                                      : LOOKUP_DEADLINE_MS);
}

/*
 * The review on the loop. Without a pool: admission_review() with handlers_lookup. With one: a
 * pass with the cache only; when it missed, the review is parked with that pass's answer as
 * its fallback and queued (*ret_parked), or, when the pool refuses it, answered at once with a
 * denial saying so.
 */
static int review(struct operator_state *st, const struct httpd_request *req,
                  struct httpd_response *resp, uint64_t t0, const char **ret_outcome,
                  bool *ret_parked) {
        unsigned deadline = st->lookup_deadline_ms ? st->lookup_deadline_ms : LOOKUP_DEADLINE_MS;
        char why[200];
        struct probe p = {.st = st, .why = why};
        struct admission_config c;
        struct review_job *j;
        int r;

        *ret_parked = false;
        if (!st->lookups)
                return admission_review_arena(&st->adm, req->arena, req->body, req->body_len,
                                              &resp->body, ret_outcome);
        c = st->adm;
        c.lookup = probe_lookup;
        c.lookup_userdata = &p;
        (void) snprintf(why, sizeof(why),
                        "the registry lookup did not finish within the webhook's %u ms", deadline);
        r = admission_review_arena(&c, req->arena, req->body, req->body_len, &resp->body,
                                   ret_outcome);
        if (r < 0 || !p.missed)
                return r;

        /* The copies of parked reviews' bodies share one budget (a review may be 3 MiB). */
        size_t len = req->body_len;
        bool parked = false;
        j = NULL;
        if (atomic_fetch_add(&st->lookup_bytes, len) + len >
            (st->lookup_bytes_max ? st->lookup_bytes_max : LOOKUP_BYTES_MAX))
                r = -EBUSY;
        else if (!(j = malloc(sizeof(*j) + len + 1)))
                r = -ENOMEM;
        else {
                *j = (struct review_job){.st = st, .t0 = t0, .max_out = resp->body.max, .len = len};
                memcpy(j->body, req->body, len);
                j->body[len] = '\0';
                r = httpd_defer(resp, deadline, &j->d);
                parked = r >= 0;
                if (r >= 0)
                        r = lookuppool_submit(st->lookups, p.ns, review_job_run, j);
        }
        *ret_parked = true; /* resp is final either way: the handler only returns it */
        if (r >= 0) {
                resp->status = 200;
                resp->content_type = "application/json";
                return 0;
        }
        /* Refused: the denial says why, now (a parked request gets it at once, through its
         * fallback). */
        if (parked)
                httpd_deferred_drop(j->d);
        free(j);
        atomic_fetch_sub(&st->lookup_bytes, len);
        if (r == -ENOMEM) {
                metrics_count_failure(&st->m);
                if (!parked)
                        return r; /* a bare 500 */
                buf_reset(&resp->body);
                resp->status = 500;
                resp->content_type = NULL;
                return 0;
        }
        (void) snprintf(why, sizeof(why), "%s; retry later",
                        r == -EUSERS ? "the operator is busy with other entrypoint lookups of "
                                       "this namespace"
                                     : "the operator's entrypoint lookups are all busy");
        buf_reset(&resp->body);
        p.missed = false;
        r = admission_review(&c, req->body, req->body_len, &resp->body, ret_outcome);
        if (r < 0) {
                metrics_count_failure(&st->m);
                if (!parked)
                        return r;
                buf_reset(&resp->body); /* the fallback is then a bare 500 */
                resp->status = 500;
                resp->content_type = NULL;
                return 0;
        }
        metrics_count_review(&st->m, outcome_metric(*ret_outcome), now_usec() - t0);
        resp->status = 200;
        resp->content_type = "application/json";
        return 0;
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
        bool parked;
        r = review(st, req, resp, t0, &outcome, &parked);
        if (parked)
                return 0; /* answered by a lookup worker, or with its fallback */
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
        metrics_count_review(&st->m, outcome_metric(outcome), now_usec() - t0);
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
