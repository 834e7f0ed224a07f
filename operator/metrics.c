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
        switch (o) {
        case METRICS_INJECTED:
                atomic_fetch_add(&m->outcome_injected, 1);
                break;
        case METRICS_SKIPPED:
                atomic_fetch_add(&m->outcome_skipped, 1);
                break;
        case METRICS_DENIED:
                atomic_fetch_add(&m->outcome_denied, 1);
                break;
        case METRICS_BAD_REQUEST:
                atomic_fetch_add(&m->outcome_bad_request, 1);
                break;
        case METRICS_ERROR:
        default:
                atomic_fetch_add(&m->outcome_error, 1);
                break;
        }
        observe(m, usec);
}

void metrics_count_failure(struct operator_metrics *m) {
        atomic_fetch_add(&m->outcome_error, 1);
}

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
        P("# HELP cloudtaser_admission_requests_total Admission reviews by outcome.\n");
        P("# TYPE cloudtaser_admission_requests_total counter\n");
        P("cloudtaser_admission_requests_total{outcome=\"injected\"} %" PRIu64 "\n",
          atomic_load(&m->outcome_injected));
        P("cloudtaser_admission_requests_total{outcome=\"skipped\"} %" PRIu64 "\n",
          atomic_load(&m->outcome_skipped));
        P("cloudtaser_admission_requests_total{outcome=\"denied\"} %" PRIu64 "\n",
          atomic_load(&m->outcome_denied));
        P("cloudtaser_admission_requests_total{outcome=\"error\"} %" PRIu64 "\n",
          atomic_load(&m->outcome_error));
        P("cloudtaser_admission_requests_total{outcome=\"bad_request\"} %" PRIu64 "\n",
          atomic_load(&m->outcome_bad_request));
        P("# HELP cloudtaser_injections_total Pods mutated to run through the wrapper.\n");
        P("# TYPE cloudtaser_injections_total counter\n");
        P("cloudtaser_injections_total %" PRIu64 "\n", atomic_load(&m->outcome_injected));
        P("# HELP cloudtaser_admission_duration_seconds Time to answer an admission review.\n");
        P("# TYPE cloudtaser_admission_duration_seconds histogram\n");
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
        P("# HELP cloudtaser_registry_lookups_total Image config lookups for entrypoints.\n");
        P("# TYPE cloudtaser_registry_lookups_total counter\n");
        P("cloudtaser_registry_lookups_total %" PRIu64 "\n", rs.lookups);
        P("# HELP cloudtaser_registry_cache_hits_total Lookups answered from the cache.\n");
        P("# TYPE cloudtaser_registry_cache_hits_total counter\n");
        P("cloudtaser_registry_cache_hits_total %" PRIu64 "\n", rs.cache_hits);
        P("# HELP cloudtaser_registry_errors_total Lookups that failed.\n");
        P("# TYPE cloudtaser_registry_errors_total counter\n");
        P("cloudtaser_registry_errors_total %" PRIu64 "\n", rs.errors);
        P("# HELP cloudtaser_registry_lookups_coalesced_total Lookups that waited for the same one "
          "in flight.\n");
        P("# TYPE cloudtaser_registry_lookups_coalesced_total counter\n");
        P("cloudtaser_registry_lookups_coalesced_total %" PRIu64 "\n", rs.coalesced);
        P("# HELP cloudtaser_webhook_reviews_parked_total Reviews answered off the event loop "
          "(a registry lookup).\n");
        P("# TYPE cloudtaser_webhook_reviews_parked_total counter\n");
        P("cloudtaser_webhook_reviews_parked_total %" PRIu64 "\n", hs.deferred);
        P("# HELP cloudtaser_webhook_reviews_parked Reviews waiting for a registry lookup now.\n");
        P("# TYPE cloudtaser_webhook_reviews_parked gauge\n");
        P("cloudtaser_webhook_reviews_parked %" PRIu64 "\n", hs.deferred_active);
        P("# HELP cloudtaser_webhook_reviews_late_total Parked reviews denied at the deadline "
          "(the lookup was late).\n");
        P("# TYPE cloudtaser_webhook_reviews_late_total counter\n");
        P("cloudtaser_webhook_reviews_late_total %" PRIu64 "\n", hs.deferred_timeouts);
        P("# HELP cloudtaser_webhook_connections_total TLS connections accepted by the webhook.\n");
        P("# TYPE cloudtaser_webhook_connections_total counter\n");
        P("cloudtaser_webhook_connections_total %" PRIu64 "\n", hs.connections_accepted);
        P("# HELP cloudtaser_webhook_tls_handshake_failures_total Failed TLS handshakes.\n");
        P("# TYPE cloudtaser_webhook_tls_handshake_failures_total counter\n");
        P("cloudtaser_webhook_tls_handshake_failures_total %" PRIu64 "\n",
          hs.tls_handshake_failures);
#undef P
        return r;
}
