/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/metrics: outcomes and latencies counted, and their Prometheus text. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "operator/metrics.h"
#include "tests/tap.h"

static bool has_line(const struct buf *b, const char *line) {
        const char *s = buf_cstr(b);
        size_t n = strlen(line);
        for (const char *p = strstr(s, line); p; p = strstr(p + 1, line))
                if ((p == s || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

int main(void) {
        struct operator_metrics m = {};
        struct httpd_stats hs = {.connections_accepted = 7,
                                 .tls_handshake_failures = 2,
                                 .deferred = 9,
                                 .deferred_active = 4,
                                 .deferred_timeouts = 3};
        struct registry_stats rs = {.lookups = 5, .cache_hits = 3, .errors = 1, .coalesced = 6};
        _cleanup_buf_ struct buf b = BUF_INIT(64 * 1024, 0);

        metrics_count_review(&m, METRICS_INJECTED, 300);      /* 0.3 ms: first bucket */
        metrics_count_review(&m, METRICS_INJECTED, 2000);     /* 2 ms: le 0.0025 */
        metrics_count_review(&m, METRICS_DENIED, 7000000);    /* 7 s: +Inf only */
        metrics_count_review(&m, METRICS_SKIPPED, 1000);      /* exactly 1 ms: le 0.001 */
        metrics_count_review(&m, METRICS_BAD_REQUEST, 40000); /* 40 ms: le 0.05 */
        metrics_count_review(&m, METRICS_ERROR, 10);
        metrics_count_failure(&m); /* no latency */
        is_int(metrics_render(&m, &hs, &rs, &b), 0, "rendered");

        static const char *const want[] = {
                "cloudtaser_admission_requests_total{outcome=\"injected\"} 2",
                "cloudtaser_admission_requests_total{outcome=\"skipped\"} 1",
                "cloudtaser_admission_requests_total{outcome=\"denied\"} 1",
                "cloudtaser_admission_requests_total{outcome=\"error\"} 2",
                "cloudtaser_admission_requests_total{outcome=\"bad_request\"} 1",
                "cloudtaser_injections_total 2",
                "cloudtaser_admission_duration_seconds_bucket{le=\"0.0005\"} 2",
                "cloudtaser_admission_duration_seconds_bucket{le=\"0.001\"} 3",
                "cloudtaser_admission_duration_seconds_bucket{le=\"0.0025\"} 4",
                "cloudtaser_admission_duration_seconds_bucket{le=\"0.05\"} 5",
                "cloudtaser_admission_duration_seconds_bucket{le=\"5\"} 5",
                "cloudtaser_admission_duration_seconds_bucket{le=\"+Inf\"} 6",
                "cloudtaser_admission_duration_seconds_sum 7.043310",
                "cloudtaser_admission_duration_seconds_count 6",
                "cloudtaser_registry_lookups_total 5",
                "cloudtaser_registry_cache_hits_total 3",
                "cloudtaser_registry_errors_total 1",
                "cloudtaser_webhook_connections_total 7",
                "cloudtaser_webhook_tls_handshake_failures_total 2",
                "cloudtaser_registry_lookups_coalesced_total 6",
                "cloudtaser_webhook_reviews_parked_total 9",
                "cloudtaser_webhook_reviews_parked 4",
                "cloudtaser_webhook_reviews_late_total 3",
                "# TYPE cloudtaser_webhook_reviews_parked gauge",
                "# TYPE cloudtaser_admission_duration_seconds histogram",
                "# HELP cloudtaser_admission_requests_total Admission reviews by outcome.",
                "# TYPE cloudtaser_injections_total counter",
                "# HELP cloudtaser_registry_errors_total Lookups that failed.",
                "# TYPE cloudtaser_webhook_tls_handshake_failures_total counter",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                ok(has_line(&b, want[i]), "line: %s", want[i]);
        if (tap_failed)
                diag("rendered:\n%s", buf_cstr(&b));

        /* Every metric has one HELP and one TYPE line, before its samples. */
        size_t helps = 0, types = 0;
        for (const char *p = strstr(buf_cstr(&b), "# HELP "); p; p = strstr(p + 1, "# HELP "))
                helps++;
        for (const char *p = strstr(buf_cstr(&b), "# TYPE "); p; p = strstr(p + 1, "# TYPE "))
                types++;
        ok(helps == 12 && types == 12, "12 metrics, each with HELP and TYPE (%zu, %zu)", helps,
           types);

        /* An outcome out of range counts as an error. */
        struct operator_metrics m2 = {};
        metrics_count_review(&m2, (enum metrics_outcome) 99, 10);
        _cleanup_buf_ struct buf b2 = BUF_INIT(64 * 1024, 0);
        ok(metrics_render(&m2, &hs, &rs, &b2) == 0 &&
                   has_line(&b2, "cloudtaser_admission_requests_total{outcome=\"error\"} 1"),
           "an unknown outcome is counted as an error");

        struct buf tiny = BUF_INIT(64, 0);
        is_int(metrics_render(&m, &hs, &rs, &tiny), -E2BIG, "a buffer too small is -E2BIG");
        buf_done(&tiny);
        return tap_done();
}
