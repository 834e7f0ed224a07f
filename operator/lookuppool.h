/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/lookuppool: the threads that run the reviews which need a registry lookup, so that
 * the webhook's event loops never wait on a registry (issue 11, item 12). The loop parks such a
 * review (common/httpd.h, httpd_defer()) and submits it here; a worker runs it and completes the
 * parked request. See "How lookups run" in docs/operator.md.
 *
 * Limits: `workers` threads; at most `max_jobs` jobs queued or running; one client (the
 * operator passes the review's namespace) at most `max_per_client` of them, so one tenant's slow
 * lookups cannot fill the queue. A worker takes the queued job whose client has the fewest jobs
 * running, the oldest among equals: a client with many queued jobs does not starve the others of
 * workers.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define LOOKUPPOOL_MAX_WORKERS 64
#define LOOKUPPOOL_MAX_JOBS 256
#define LOOKUPPOOL_CLIENT_MAX 127 /* bytes of a client key compared; longer ones are cut */

struct lookuppool_options {
        unsigned workers;        /* default 4; 1..LOOKUPPOOL_MAX_WORKERS */
        unsigned max_jobs;       /* queued + running; default 64; 1..LOOKUPPOOL_MAX_JOBS */
        unsigned max_per_client; /* a client's share of max_jobs; default max_jobs / 4 (>= 1) */
};

/* A job: called exactly once, on a worker (cancelled false), or, for a job still queued when
 * the pool is freed, on the thread calling lookuppool_free() with cancelled true (release what
 * arg holds, complete nothing slow). */
typedef void (*lookuppool_fn)(void *arg, bool cancelled);

struct lookuppool;

/* Starts the workers. -EINVAL options over the bounds, -ENOMEM, -errno from pthread_create(). */
int lookuppool_new(const struct lookuppool_options *o, struct lookuppool **ret);

/* Stops: no new job starts; running jobs finish (the caller waits for them); queued ones are
 * called with cancelled true. Accepts NULL. Returns NULL. */
struct lookuppool *lookuppool_free(struct lookuppool *p);

/* Queues fn(arg) for client. 0: fn will be called exactly once. -EBUSY the pool holds max_jobs,
 * -EUSERS client holds its share, -ESHUTDOWN the pool is stopping, -EINVAL: fn is then never
 * called (arg stays the caller's). Thread-safe. */
int lookuppool_submit(struct lookuppool *p, const char *client, lookuppool_fn fn, void *arg);

struct lookuppool_stats {
        uint64_t submitted, completed, cancelled;
        uint64_t rejected, rejected_per_client; /* -EBUSY and -EUSERS (the latter also in
                                                 * rejected) */
        unsigned queued, running;               /* gauges */
};
void lookuppool_get_stats(struct lookuppool *p, struct lookuppool_stats *ret);

static inline void lookuppool_freep(struct lookuppool **p) {
        lookuppool_free(*p);
}
#define _cleanup_lookuppool_ __attribute__((cleanup(lookuppool_freep)))
