/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/metrics: the operator's counters and their Prometheus text form (/metrics; the names
 * and meanings are listed in docs/operator.md). The counters are atomics: any thread updates
 * them, without a lock.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "operator/registry.h"

#define METRICS_N_BUCKETS 13 /* admission latency histogram buckets, +Inf not counted */

enum metrics_outcome {
        METRICS_INJECTED,
        METRICS_SKIPPED,
        METRICS_DENIED,
        METRICS_ERROR,
        METRICS_BAD_REQUEST,
        METRICS_N_OUTCOMES,
};

struct operator_metrics {
        _Atomic uint64_t outcome[METRICS_N_OUTCOMES];           /* by enum metrics_outcome */
        _Atomic uint64_t latency_bucket[METRICS_N_BUCKETS + 1]; /* last: +Inf */
        _Atomic uint64_t latency_sum_usec, latency_count;
};

/* Counts one answered admission review with its outcome, and usec, the time it took, in the
 * latency histogram. */
void metrics_count_review(struct operator_metrics *m, enum metrics_outcome o, uint64_t usec);

/* Counts a review that could not be answered (an internal failure: outcome "error", no
 * latency). */
void metrics_count_failure(struct operator_metrics *m);

/* Appends the Prometheus text exposition (version 0.0.4) of m, the webhook server's counters and
 * the registry client's to b. -E2BIG, -ENOMEM. */
int metrics_render(const struct operator_metrics *m, const struct httpd_stats *hs,
                   const struct registry_stats *rs, struct buf *b);
