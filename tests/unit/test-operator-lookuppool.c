/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for operator/lookuppool: the bounds (max_jobs, a client's share), the order a worker
 * takes jobs in (the client with the fewest running first), every job called exactly once, and
 * the stop (running jobs finish, queued ones are called cancelled). Jobs wait on gates the test
 * opens, so nothing depends on the machine's speed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "operator/lookuppool.h"
#include "tests/tap.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

struct job {
        const char *name;
        bool gate_open;
        int calls, cancelled_calls;
};

static char order[256];

static void run(void *arg, bool cancelled) {
        struct job *j = arg;
        (void) pthread_mutex_lock(&lock);
        if (cancelled)
                j->cancelled_calls++;
        else {
                j->calls++;
                (void) snprintf(order + strlen(order), sizeof(order) - strlen(order), "%s ",
                                j->name);
                (void) pthread_cond_broadcast(&changed);
                while (!j->gate_open)
                        (void) pthread_cond_wait(&changed, &lock);
        }
        (void) pthread_cond_broadcast(&changed);
        (void) pthread_mutex_unlock(&lock);
}

static void open_gate(struct job *j) {
        (void) pthread_mutex_lock(&lock);
        j->gate_open = true;
        (void) pthread_cond_broadcast(&changed);
        (void) pthread_mutex_unlock(&lock);
}

/* Waits (generously, 30 s) until the pool's gauges are as given. */
static bool wait_gauges(struct lookuppool *p, unsigned queued, unsigned running) {
        for (int i = 0; i < 6000; i++) {
                struct lookuppool_stats st;
                lookuppool_get_stats(p, &st);
                if (st.queued == queued && st.running == running)
                        return true;
                (void) usleep(5000);
        }
        return false;
}

static void test_bounds(void) {
        struct lookuppool *p = NULL;
        struct lookuppool_options o = {.workers = 1, .max_jobs = 6, .max_per_client = 3};
        struct job a[4] = {{.name = "a0"}, {.name = "a1"}, {.name = "a2"}, {.name = "a3"}},
                   b[4] = {{.name = "b0"}, {.name = "b1"}, {.name = "b2"}, {.name = "b3"}};
        struct lookuppool_stats st;

        ok(lookuppool_new(&(struct lookuppool_options){.workers = LOOKUPPOOL_MAX_WORKERS + 1},
                          &p) == -EINVAL &&
                   lookuppool_new(&(struct lookuppool_options){.max_jobs = LOOKUPPOOL_MAX_JOBS + 1},
                                  &p) == -EINVAL,
           "options over the bounds: -EINVAL");
        if (!ok(lookuppool_new(&o, &p) == 0, "a pool: 1 worker, 6 jobs, 3 per client"))
                return;
        ok(lookuppool_submit(p, "ns-a", NULL, NULL) == -EINVAL, "no function: -EINVAL");
        for (int i = 0; i < 3; i++)
                ok(lookuppool_submit(p, "ns-a", run, &a[i]) == 0, "client a: job %d accepted", i);
        ok(wait_gauges(p, 2, 1), "one runs, two wait");
        ok(lookuppool_submit(p, "ns-a", run, &a[3]) == -EUSERS,
           "client a at its share (running included): -EUSERS");
        for (int i = 0; i < 3; i++)
                ok(lookuppool_submit(p, "ns-b", run, &b[i]) == 0,
                   "client b is not held by a's share: job %d accepted", i);
        ok(lookuppool_submit(p, "ns-c", run, &b[3]) == -EBUSY, "the pool is full: -EBUSY");
        lookuppool_get_stats(p, &st);
        ok(st.submitted == 6 && st.rejected == 2 && st.rejected_per_client == 1,
           "counted: 6 submitted, 2 rejected, 1 for the client's share");
        open_gate(&a[0]);
        /* The freed worker: b has no job running, a has none either now: the oldest, a1. Then
         * b0 before a2? Both clients run nothing between jobs: oldest first: a1 a2 b0 b1 b2. */
        for (int i = 1; i < 3; i++)
                open_gate(&a[i]);
        for (int i = 0; i < 3; i++)
                open_gate(&b[i]);
        ok(wait_gauges(p, 0, 0), "all done");
        p = lookuppool_free(p);
        bool once = true;
        for (int i = 0; i < 3; i++)
                once = once && a[i].calls == 1 && b[i].calls == 1 && a[i].cancelled_calls == 0;
        ok(once && a[3].calls == 0 && b[3].calls == 0,
           "every accepted job ran exactly once, the refused never");
}

/* Two workers: while a's first job runs, a free worker takes b's job before a's older ones. */
static void test_fairness(void) {
        struct lookuppool *p = NULL;
        struct job g = {.name = "g"}, a0 = {.name = "a0"}, a1 = {.name = "a1"}, a2 = {.name = "a2"},
                   b1 = {.name = "b1"};

        if (!ok(lookuppool_new(&(struct lookuppool_options){.workers = 2, .max_jobs = 16}, &p) == 0,
                "a pool: 2 workers"))
                return;
        order[0] = '\0';
        ok(lookuppool_submit(p, "ns-g", run, &g) == 0 &&
                   lookuppool_submit(p, "ns-a", run, &a0) == 0 && wait_gauges(p, 0, 2),
           "g and a0 occupy both workers");
        ok(lookuppool_submit(p, "ns-a", run, &a1) == 0 &&
                   lookuppool_submit(p, "ns-a", run, &a2) == 0 &&
                   lookuppool_submit(p, "ns-b", run, &b1) == 0 && wait_gauges(p, 3, 2),
           "a1, a2 then b1 wait");
        open_gate(&g);
        ok(wait_gauges(p, 2, 2), "g done: the free worker took one");
        (void) pthread_mutex_lock(&lock);
        bool b_first = strcmp(order, "g a0 b1 ") == 0 || strcmp(order, "a0 g b1 ") == 0;
        (void) pthread_mutex_unlock(&lock);
        ok(b_first, "b1 (its client runs nothing) before a's older jobs (a runs a0): %s", order);
        open_gate(&b1);
        ok(wait_gauges(p, 1, 2), "then a1");
        open_gate(&a1);
        open_gate(&a2);
        open_gate(&a0);
        ok(wait_gauges(p, 0, 0), "all done");
        p = lookuppool_free(p);
}

/* Freeing: the running job finishes (free waits for it), the queued are called cancelled. */
struct free_arg {
        struct lookuppool *p;
        bool done;
};

static void *free_main(void *arg) {
        struct free_arg *f = arg;
        f->p = lookuppool_free(f->p);
        (void) pthread_mutex_lock(&lock);
        f->done = true;
        (void) pthread_cond_broadcast(&changed);
        (void) pthread_mutex_unlock(&lock);
        return NULL;
}

static void test_free(void) {
        struct lookuppool *p = NULL;
        struct job r = {.name = "r"}, q[3] = {{.name = "q0"}, {.name = "q1"}, {.name = "q2"}};
        pthread_t t;

        if (!ok(lookuppool_new(&(struct lookuppool_options){.workers = 1}, &p) == 0,
                "a pool: 1 worker"))
                return;
        ok(lookuppool_submit(p, "x", run, &r) == 0 && wait_gauges(p, 0, 1), "one job runs");
        for (int i = 0; i < 3; i++)
                (void) lookuppool_submit(p, "y", run, &q[i]);
        ok(wait_gauges(p, 3, 1), "three wait");
        struct free_arg f = {.p = p};
        (void) pthread_create(&t, NULL, free_main, &f);
        (void) usleep(50000);
        (void) pthread_mutex_lock(&lock);
        bool waited = !f.done;
        (void) pthread_mutex_unlock(&lock);
        ok(waited, "lookuppool_free() waits for the running job");
        open_gate(&r);
        (void) pthread_join(t, NULL);
        bool cancelled = true;
        for (int i = 0; i < 3; i++)
                cancelled = cancelled && q[i].cancelled_calls == 1 && q[i].calls == 0;
        ok(f.done && r.calls == 1 && r.cancelled_calls == 0 && cancelled,
           "the running job finished, the queued were each called once, cancelled");
        ok(lookuppool_free(NULL) == NULL, "free(NULL)");
}

int main(void) {
        test_bounds();
        test_fairness();
        test_free();
        return tap_done();
}
