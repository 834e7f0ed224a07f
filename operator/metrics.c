/* SPDX-License-Identifier: Apache-2.0 */
/* operator/metrics: see metrics.h. */
#include <inttypes.h>
#include <stdatomic.h>

#include "common/buf.h"
#include "common/macro.h"
#include "operator/metrics.h"

/* Latency histogram buckets (seconds), Prometheus style. */
static const double latency_buckets[METRICS_N_BUCKETS] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

static void observe(struct operator_metrics *m, uint64_t usec) {
        double s = (double) usec / 1e6;
        size_t i = 0;
        while (i < METRICS_N_BUCKETS && s > latency_buckets[i])
                i++;
        atomic_fetch_add(&m->latency_bucket[i], 1);
        atomic_fetch_add(&m->latency_sum_usec, usec);
        atomic_fetch_add(&m->latency_count, 1);
}

void metrics_count_review(struct operator_metrics *m, enum metrics_outcome o, uint64_t usec) {
        if ((unsigned) o >= METRICS_N_OUTCOMES)
                o = METRICS_ERROR;
        atomic_fetch_add(&m->outcome[o], 1);
        observe(m, usec);
}

void metrics_count_failure(struct operator_metrics *m) {
        atomic_fetch_add(&m->outcome[METRICS_ERROR], 1);
}

static const char *const outcome_names[METRICS_N_OUTCOMES] = {
        [METRICS_INJECTED] = "injected",       [METRICS_SKIPPED] = "skipped",
        [METRICS_DENIED] = "denied",           [METRICS_ERROR] = "error",
        [METRICS_BAD_REQUEST] = "bad_request",
};

/* A metric of one unlabelled sample. */
struct sample {
        const char *name, *type, *help;
        uint64_t value;
};

int metrics_render(const struct operator_metrics *cm, const struct httpd_stats *chs,
                   const struct registry_stats *crs, struct buf *b) {
        /* atomic_load takes a pointer to non-const in C11 */
        struct operator_metrics *m = (struct operator_metrics *) cm;
        const struct httpd_stats hs = *chs;
        const struct registry_stats rs = *crs;
        int r = 0;

#define P(...)                                          \
        do {                                            \
                if (r >= 0)                             \
                        r = buf_printf(b, __VA_ARGS__); \
        } while (0)
#define HEAD(name, type, help) P("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)
        HEAD("cloudtaser_admission_requests_total", "counter", "Admission reviews by outcome.");
        for (size_t i = 0; i < METRICS_N_OUTCOMES; i++)
                P("cloudtaser_admission_requests_total{outcome=\"%s\"} %" PRIu64 "\n",
                  outcome_names[i], atomic_load(&m->outcome[i]));

        HEAD("cloudtaser_admission_duration_seconds", "histogram",
             "Time to answer an admission review.");
        uint64_t cum = 0;
        for (size_t i = 0; i < METRICS_N_BUCKETS; i++) {
                cum += atomic_load(&m->latency_bucket[i]);
                P("cloudtaser_admission_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                  latency_buckets[i], cum);
        }
        cum += atomic_load(&m->latency_bucket[METRICS_N_BUCKETS]);
        P("cloudtaser_admission_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
        P("cloudtaser_admission_duration_seconds_sum %.6f\n",
          (double) atomic_load(&m->latency_sum_usec) / 1e6);
        P("cloudtaser_admission_duration_seconds_count %" PRIu64 "\n",
          atomic_load(&m->latency_count));

        const struct sample samples[] = {
                {"cloudtaser_injections_total", "counter",
                 "Pods mutated to run through the wrapper.",
                 atomic_load(&m->outcome[METRICS_INJECTED])},
                {"cloudtaser_registry_lookups_total", "counter",
                 "Image config lookups for entrypoints.", rs.lookups},
                {"cloudtaser_registry_cache_hits_total", "counter",
                 "Lookups answered from the cache.", rs.cache_hits},
                {"cloudtaser_registry_errors_total", "counter", "Lookups that failed.", rs.errors},
                {"cloudtaser_registry_lookups_coalesced_total", "counter",
                 "Lookups that waited for the same one in flight.", rs.coalesced},
                {"cloudtaser_webhook_reviews_parked_total", "counter",
                 "Reviews answered off the event loop (a registry lookup).", hs.deferred},
                {"cloudtaser_webhook_reviews_parked", "gauge",
                 "Reviews waiting for a registry lookup now.", hs.deferred_active},
                {"cloudtaser_webhook_reviews_late_total", "counter",
                 "Parked reviews denied at the deadline (the lookup was late).",
                 hs.deferred_timeouts},
                {"cloudtaser_webhook_connections_total", "counter",
                 "TLS connections accepted by the webhook.", hs.connections_accepted},
                {"cloudtaser_webhook_tls_handshake_failures_total", "counter",
                 "Failed TLS handshakes.", hs.tls_handshake_failures},
        };
        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                HEAD(samples[i].name, samples[i].type, samples[i].help);
                P("%s %" PRIu64 "\n", samples[i].name, samples[i].value);
        }
#undef HEAD
#undef P
        return r;
}
