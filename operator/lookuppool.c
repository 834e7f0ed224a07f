/* SPDX-License-Identifier: Apache-2.0 */
/* operator/lookuppool: see lookuppool.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "operator/lookuppool.h"

enum job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING };

struct job {
        enum job_state state;
        uint64_t seq; /* submission order */
        char client[LOOKUPPOOL_CLIENT_MAX + 1];
        lookuppool_fn fn;
        void *arg;
};

struct lookuppool {
        struct lookuppool_options o;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stopping;
        struct job *jobs; /* o.max_jobs slots */
        uint64_t seq;
        unsigned queued, running;
        uint64_t submitted, completed, cancelled, rejected, rejected_per_client;
        pthread_t *threads;
        unsigned n_threads;
};

/* Jobs of client in the state (JOB_FREE: queued or running). (lock held) */
static unsigned client_jobs(const struct lookuppool *p, const char *client, enum job_state state) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->o.max_jobs; i++) {
                const struct job *j = &p->jobs[i];
                if (j->state != JOB_FREE && (state == JOB_FREE || j->state == state) &&
                    strcmp(j->client, client) == 0)
                        n++;
        }
        return n;
}

/* The next job: the queued one whose client runs the fewest, the oldest among equals. (lock
 * held, queued > 0) */
static struct job *pick(struct lookuppool *p) {
        struct job *best = NULL;
        unsigned best_running = 0;
        for (unsigned i = 0; i < p->o.max_jobs; i++) {
                struct job *j = &p->jobs[i];
                if (j->state != JOB_QUEUED)
                        continue;
                unsigned running = client_jobs(p, j->client, JOB_RUNNING);
                if (!best || running < best_running ||
                    (running == best_running && j->seq < best->seq)) {
                        best = j;
                        best_running = running;
                }
        }
        return best;
}

static void *worker_main(void *arg) {
        struct lookuppool *p = arg;

        (void) pthread_mutex_lock(&p->lock);
        for (;;) {
                while (!p->stopping && p->queued == 0)
                        (void) pthread_cond_wait(&p->wake, &p->lock);
                if (p->stopping)
                        break;
                struct job *j = pick(p);
                j->state = JOB_RUNNING;
                p->queued--;
                p->running++;
                lookuppool_fn fn = j->fn;
                void *a = j->arg;
                (void) pthread_mutex_unlock(&p->lock);
                fn(a, false);
                (void) pthread_mutex_lock(&p->lock);
                *j = (struct job){};
                p->running--;
                p->completed++;
        }
        (void) pthread_mutex_unlock(&p->lock);
        return NULL;
}

int lookuppool_new(const struct lookuppool_options *o, struct lookuppool **ret) {
        struct lookuppool *p;

        if (!o || !ret || o->workers > LOOKUPPOOL_MAX_WORKERS || o->max_jobs > LOOKUPPOOL_MAX_JOBS)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->o = *o;
        if (!p->o.workers)
                p->o.workers = 4;
        if (!p->o.max_jobs)
                p->o.max_jobs = 64;
        if (!p->o.max_per_client)
                p->o.max_per_client = MAX(p->o.max_jobs / 4, 1u);
        p->o.max_per_client = MIN(p->o.max_per_client, p->o.max_jobs);
        p->jobs = calloc(p->o.max_jobs, sizeof(*p->jobs));
        p->threads = calloc(p->o.workers, sizeof(*p->threads));
        if (!p->jobs || !p->threads) {
                free(p->jobs);
                free(p->threads);
                free(p);
                return -ENOMEM;
        }
        if (pthread_mutex_init(&p->lock, NULL) != 0) {
                free(p->jobs);
                free(p->threads);
                free(p);
                return -ENOMEM;
        }
        if (pthread_cond_init(&p->wake, NULL) != 0) {
                (void) pthread_mutex_destroy(&p->lock);
                free(p->jobs);
                free(p->threads);
                free(p);
                return -ENOMEM;
        }
        for (; p->n_threads < p->o.workers; p->n_threads++) {
                int r = pthread_create(&p->threads[p->n_threads], NULL, worker_main, p);
                if (r != 0) {
                        lookuppool_free(p);
                        return -r;
                }
        }
        *ret = p;
        return 0;
}

struct lookuppool *lookuppool_free(struct lookuppool *p) {
        if (!p)
                return NULL;
        (void) pthread_mutex_lock(&p->lock);
        p->stopping = true;
        (void) pthread_cond_broadcast(&p->wake);
        (void) pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                (void) pthread_join(p->threads[i], NULL);
        /* No worker left: the queued jobs are called here, cancelled, oldest first. */
        for (;;) {
                struct job *j = NULL;
                for (unsigned i = 0; i < p->o.max_jobs; i++)
                        if (p->jobs[i].state == JOB_QUEUED && (!j || p->jobs[i].seq < j->seq))
                                j = &p->jobs[i];
                if (!j)
                        break;
                lookuppool_fn fn = j->fn;
                void *a = j->arg;
                *j = (struct job){};
                p->cancelled++;
                fn(a, true);
        }
        (void) pthread_cond_destroy(&p->wake);
        (void) pthread_mutex_destroy(&p->lock);
        free(p->jobs);
        free(p->threads);
        free(p);
        return NULL;
}

int lookuppool_submit(struct lookuppool *p, const char *client, lookuppool_fn fn, void *arg) {
        char key[LOOKUPPOOL_CLIENT_MAX + 1];
        int r = 0;

        if (!p || !client || !fn)
                return -EINVAL;
        (void) snprintf(key, sizeof(key), "%s", client); /* longer keys are cut */
        (void) pthread_mutex_lock(&p->lock);
        if (p->stopping)
                r = -ESHUTDOWN;
        else if (p->queued + p->running >= p->o.max_jobs)
                r = -EBUSY;
        else if (client_jobs(p, key, JOB_FREE) >= p->o.max_per_client)
                r = -EUSERS;
        if (r == 0) {
                struct job *j = NULL;
                for (unsigned i = 0; i < p->o.max_jobs && !j; i++)
                        if (p->jobs[i].state == JOB_FREE)
                                j = &p->jobs[i];
                *j = (struct job){.state = JOB_QUEUED, .seq = ++p->seq, .fn = fn, .arg = arg};
                memcpy(j->client, key, sizeof(key));
                p->queued++;
                p->submitted++;
                (void) pthread_cond_signal(&p->wake);
        } else if (r != -ESHUTDOWN) {
                p->rejected++;
                if (r == -EUSERS)
                        p->rejected_per_client++;
        }
        (void) pthread_mutex_unlock(&p->lock);
        return r;
}

void lookuppool_get_stats(struct lookuppool *p, struct lookuppool_stats *ret) {
        if (!p || !ret)
                return;
        (void) pthread_mutex_lock(&p->lock);
        *ret = (struct lookuppool_stats){.submitted = p->submitted,
                                         .completed = p->completed,
                                         .cancelled = p->cancelled,
                                         .rejected = p->rejected,
                                         .rejected_per_client = p->rejected_per_client,
                                         .queued = p->queued,
                                         .running = p->running};
        (void) pthread_mutex_unlock(&p->lock);
}
