/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/leader against the stand-in kube-apiserver (tests/standin/
 * kube_apiserver.py: Leases, resourceVersion conflicts, injected faults) through common/kube, with
 * a fake monotonic clock shared by the candidates: the test moves time, and waits (on events,
 * with a generous real deadline) until every candidate's thread is idle again, so nothing depends
 * on the machine's speed. Covered: the options refused; acquire on a missing Lease; renewals (the
 * MicroTime fields, acquireTime kept); a standby that never takes over a renewed Lease; takeover
 * only a lease duration after the record last changed on the candidate's own clock (a renewTime
 * in the past does not matter, an out-of-band renewal restarts the wait), leaseTransitions; a
 * 409 on the leader's renewal (someone else wrote the Lease) makes it step down at once; an
 * injected 409 on a candidate's takeover loses cleanly; two candidates racing for one Lease,
 * exactly one wins; renewals failing make the leader step down at the renew deadline, before
 * the lease duration, with one warning for the whole run of failures; is_leader false at the
 * deadline while a request hangs; the all-fields Lease fixture (its own leaseDurationSeconds
 * waited, its metadata kept by a takeover); release on stop (a standby takes over at its next
 * retry), no write by a stopping standby; a stop that does not wait for the retry period. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "operator/leader.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

#define SETTLE_TIMEOUT_S 60           /* real seconds to wait for the candidates' threads */
#define WALL0_USEC 1764760171123456LL /* 2025-12-03T11:09:31.123456Z */
#define LEASES "/apis/coordination.k8s.io/v1/namespaces/default/leases"

/* --- the fake clock ------------------------------------------------------------------------- */

struct fclock {
        pthread_mutex_t m;
        pthread_cond_t c;
        uint64_t now;
};

static struct fclock fc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1000000};

struct cand {
        const char *id;
        struct leader *l;
        bool waiting, woken;
        uint64_t deadline;
        char events[32][LEADER_IDENTITY_MAX + 8]; /* "started", "stopped", "new:X" */
        unsigned n_events;
};

static uint64_t hook_now(void *u) {
        (void) u;
        (void) pthread_mutex_lock(&fc.m);
        uint64_t n = fc.now;
        (void) pthread_mutex_unlock(&fc.m);
        return n;
}

static int64_t hook_wall(void *u) {
        return WALL0_USEC + (int64_t) (hook_now(u) - 1000000) * 1000;
}

static void hook_wait(void *u, uint64_t deadline) {
        struct cand *c = u;
        (void) pthread_mutex_lock(&fc.m);
        c->waiting = true;
        c->deadline = deadline;
        (void) pthread_cond_broadcast(&fc.c);
        while (fc.now < deadline && !c->woken)
                (void) pthread_cond_wait(&fc.c, &fc.m);
        c->waiting = false;
        c->woken = false;
        (void) pthread_mutex_unlock(&fc.m);
}

static void hook_wake(void *u) {
        struct cand *c = u;
        (void) pthread_mutex_lock(&fc.m);
        c->woken = true;
        (void) pthread_cond_broadcast(&fc.c);
        (void) pthread_mutex_unlock(&fc.m);
}

static void event(struct cand *c, const char *what) {
        (void) pthread_mutex_lock(&fc.m);
        if (c->n_events < ELEMENTSOF(c->events))
                (void) snprintf(c->events[c->n_events++], sizeof(c->events[0]), "%s", what);
        (void) pthread_cond_broadcast(&fc.c);
        (void) pthread_mutex_unlock(&fc.m);
}
static void on_started(void *u) {
        event(u, "started");
}
static void on_stopped(void *u) {
        event(u, "stopped");
}
static void on_new(const char *id, void *u) {
        char s[LEADER_IDENTITY_MAX + 8];
        (void) snprintf(s, sizeof(s), "new:%s", id);
        event(u, s);
}

/* The events so far, space-separated. */
static const char *events(struct cand *c) {
        static char out[2048];
        size_t o = 0;
        out[0] = '\0';
        (void) pthread_mutex_lock(&fc.m);
        for (unsigned i = 0; i < c->n_events && o < sizeof(out); i++)
                o += (size_t) snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "",
                                       c->events[i]);
        (void) pthread_mutex_unlock(&fc.m);
        return out;
}

/* Waits until every running candidate waits for a time still to come. */
static bool settle(struct cand **cs, size_t n) {
        struct timespec until;
        (void) clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SETTLE_TIMEOUT_S;
        bool idle = false;
        (void) pthread_mutex_lock(&fc.m);
        for (;;) {
                idle = true;
                for (size_t i = 0; i < n; i++)
                        if (cs[i] && cs[i]->l && !(cs[i]->waiting && cs[i]->deadline > fc.now))
                                idle = false;
                if (idle || pthread_cond_timedwait(&fc.c, &fc.m, &until) == ETIMEDOUT)
                        break;
        }
        (void) pthread_mutex_unlock(&fc.m);
        if (!idle)
                diag("the candidates did not settle within %d s", SETTLE_TIMEOUT_S);
        return idle;
}

/* The MicroTime the candidates write at fake time `at`. */
static const char *wall_at(uint64_t at) {
        static char out[64];
        int64_t us = WALL0_USEC + (int64_t) (at - 1000000) * 1000;
        time_t s = (time_t) (us / 1000000);
        struct tm tm;
        char date[32] = "";
        if (gmtime_r(&s, &tm))
                (void) strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        (void) snprintf(out, sizeof(out), "%s.%06dZ", date, (int) (us % 1000000));
        return out;
}

static bool advance(uint64_t ms, struct cand **cs, size_t n) {
        (void) pthread_mutex_lock(&fc.m);
        fc.now += ms;
        (void) pthread_cond_broadcast(&fc.c);
        (void) pthread_mutex_unlock(&fc.m);
        return settle(cs, n);
}

static struct kube_client *kc; /* the candidates' client */
static struct kube_client *tk; /* the test's own ("kubectl") */
static struct standin *si;

static int start(struct cand *c, const char *lease, struct leader_options *base) {
        struct leader_options o = base ? *base : (struct leader_options){0};
        o.namespace_ = "default";
        o.name = lease;
        o.identity = c->id;
        o.callbacks = (struct leader_callbacks){on_started, on_stopped, on_new, c};
        if (!base)
                o.hooks = (struct leader_hooks){hook_now, hook_wall, hook_wait, hook_wake, c};
        return leader_start(kc, &o, &c->l);
}

static int stop(struct cand *c) {
        int r = leader_stop(c->l);
        c->l = leader_free(c->l);
        return r;
}

/* --- the Lease as the test sees it ---------------------------------------------------------- */

struct lease {
        char holder[300], acquire[64], renew[64], rv[64];
        int64_t duration, transitions;
        bool exists;
};

static struct lease get_lease(const char *name) {
        struct lease ls = {.duration = -1, .transitions = -1};
        char path[512];
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct kube_error e;
        (void) snprintf(path, sizeof(path), LEASES "/%s", name);
        if (kube_get(tk, path, &d, &e) < 0)
                return ls;
        ls.exists = true;
        const struct json_value *spec = json_get(json_doc_root(d), "spec");
        const char *s;
        if (json_get_string(spec, "holderIdentity", &s) == 0)
                (void) snprintf(ls.holder, sizeof(ls.holder), "%s", s);
        if (json_get_string(spec, "acquireTime", &s) == 0)
                (void) snprintf(ls.acquire, sizeof(ls.acquire), "%s", s);
        if (json_get_string(spec, "renewTime", &s) == 0)
                (void) snprintf(ls.renew, sizeof(ls.renew), "%s", s);
        if (json_get_string(json_get(json_doc_root(d), "metadata"), "resourceVersion", &s) == 0)
                (void) snprintf(ls.rv, sizeof(ls.rv), "%s", s);
        (void) json_get_int64(spec, "leaseDurationSeconds", &ls.duration);
        (void) json_get_int64(spec, "leaseTransitions", &ls.transitions);
        return ls;
}

/* Writes the Lease as another client would (rv "" creates it). */
static int put_lease(const char *name, const char *rv, const char *holder, const char *renew,
                     int transitions) {
        char path[512];
        _cleanup_buf_ struct buf body = BUF_INIT(4096, 0);
        struct kube_error e;
        (void) buf_printf(&body,
                          "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                          "\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"%s%s%s},"
                          "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":15,"
                          "\"acquireTime\":\"2001-01-01T00:00:00.000000Z\",\"renewTime\":\"%s\","
                          "\"leaseTransitions\":%d}}",
                          name, rv[0] ? ",\"resourceVersion\":\"" : "", rv, rv[0] ? "\"" : "",
                          holder, renew, transitions);
        int r;
        if (rv[0]) {
                (void) snprintf(path, sizeof(path), LEASES "/%s", name);
                r = kube_update(tk, path, &body, NULL, &e);
        } else
                r = kube_create(tk, LEASES, &body, NULL, &e);
        if (r < 0)
                diag("writing the Lease %s: %d %s", name, r, e.message);
        return r;
}

static long stat_requests(const char *key) {
        char *body = NULL;
        int status = 0;
        long n = 0;
        if (standin_control(si, "GET", "/_standin/stats", NULL, &status, &body) == 0 &&
            status == 200) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                int64_t v;
                if (json_parse(body, strlen(body), 0, NULL, &d) == 0 &&
                    json_get_int64(json_get(json_doc_root(d), "requests"), key, &v) == 0)
                        n = (long) v;
        }
        free(body);
        return n;
}

/* Waits until the stand-in counted at least `want` such requests (it counts a request just after
 * answering it). */
static bool wait_stat(const char *key, long want) {
        for (int i = 0; i < SETTLE_TIMEOUT_S * 20; i++) {
                if (stat_requests(key) >= want)
                        return true;
                (void) usleep(50000);
        }
        return false;
}

static int fault(const char *json) {
        int status = 0;
        int r = standin_control(si, "POST", "/_standin/fault", json, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}
static void clear_faults(void) {
        (void) standin_control(si, "DELETE", "/_standin/fault", NULL, NULL, NULL);
}

/* --- the log ------------------------------------------------------------------------------- */

static char log_path[4096];

static long log_size(void) {
        struct stat st;
        return stat(log_path, &st) == 0 ? (long) st.st_size : 0;
}

/* Lines of the log after byte `since` that contain s. */
static int log_count(long since, const char *s) {
        _cleanup_buf_ struct buf b = BUF_INIT(1 << 20, 0);
        if (buf_read_file(&b, log_path) < 0)
                return -1;
        int n = 0;
        const char *p = buf_cstr(&b) + MIN((size_t) since, b.len);
        for (const char *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
                nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                char line[LOG_LINE_MAX + 1];
                (void) snprintf(line, sizeof(line), "%.*s", (int) MIN(len, (size_t) LOG_LINE_MAX),
                                p);
                if (strstr(line, s))
                        n++;
                if (!nl)
                        break;
        }
        return n;
}

/* --- the tests ----------------------------------------------------------------------------- */

static void test_options(void) {
        char long_id[LEADER_IDENTITY_MAX + 2];
        memset(long_id, 'a', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = '\0';
        static const struct leader_hooks half = {.wait_until = hook_wait};
        const struct {
                const char *ns, *name, *id;
                unsigned lease, renew, retry;
                bool half_hooks;
        } bad[] = {
                {NULL, NULL, "a", 0, 0, 0, false},
                {"Bad_NS", NULL, "a", 0, 0, 0, false},
                {"default", "no/slash", "a", 0, 0, 0, false},
                {"default", NULL, NULL, 0, 0, 0, false},
                {"default", NULL, "", 0, 0, 0, false},
                {"default", NULL, "a\nb", 0, 0, 0, false},
                {"default", NULL, long_id, 0, 0, 0, false},
                {"default", NULL, "a", 1500, 1000, 500, false},
                {"default", NULL, "a", 10000, 10000, 0, false},
                {"default", NULL, "a", 0, 0, 10000, false},
                {"default", NULL, "a", 0, 3000, 3000, false},
                {"default", NULL, "a", 0, 0, 0, true},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct leader_options o = {.namespace_ = bad[i].ns,
                                           .name = bad[i].name,
                                           .identity = bad[i].id,
                                           .lease_duration_ms = bad[i].lease,
                                           .renew_deadline_ms = bad[i].renew,
                                           .retry_period_ms = bad[i].retry};
                if (bad[i].half_hooks)
                        o.hooks = half;
                struct leader *l = NULL;
                is_int(leader_start(kc, &o, &l), -EINVAL, "options case %zu refused", i);
                leader_free(l);
        }
        ok(!leader_is_leader(NULL), "leader_is_leader(NULL) is false");
        is_int(leader_stop(NULL), 0, "leader_stop(NULL) is 0");
}

static void test_acquire_renew_release(void) {
        struct cand a = {.id = "pod-a-1x2y"}, b = {.id = "pod-b-3z4w"};
        struct cand *cs[] = {&a, &b};
        int r = start(&a, "basic", NULL);
        ok(r == 0 && settle(cs, 2), "A starts (%d)", r);
        struct lease ls = get_lease("basic");
        is_str(events(&a), "started new:pod-a-1x2y", "A acquires the missing Lease at once");
        ok(leader_is_leader(a.l), "A is the leader");
        ok(ls.exists && strcmp(ls.holder, "pod-a-1x2y") == 0 && ls.duration == 15 &&
                   ls.transitions == 0,
           "the Lease: holderIdentity A, leaseDurationSeconds 15, leaseTransitions 0 (%s %lld "
           "%lld)",
           ls.holder, (long long) ls.duration, (long long) ls.transitions);
        ok(strcmp(ls.acquire, "2025-12-03T11:09:31.123456Z") == 0 &&
                   strcmp(ls.renew, ls.acquire) == 0,
           "acquireTime = renewTime, MicroTime with 6 digits (%s %s)", ls.acquire, ls.renew);

        r = start(&b, "basic", NULL);
        ok(r == 0 && settle(cs, 2), "B starts (%d)", r);
        is_str(events(&b), "new:pod-a-1x2y", "B sees A as the leader, and does not lead");
        ok(!leader_is_leader(b.l), "B is not the leader");

        char rv[64];
        (void) snprintf(rv, sizeof(rv), "%s", ls.rv);
        /* Reads of the Lease fail meanwhile: the leader renews with the object it wrote. */
        ok(fault("{\"match\":\"" LEASES "/basic\",\"method\":\"GET\",\"status\":500,"
                 "\"count\":0}") == 0,
           "reads of the Lease fail for the next renewal");
        ok(advance(2000, cs, 2), "2 s later");
        clear_faults();
        ls = get_lease("basic");
        ok(strcmp(ls.renew, "2025-12-03T11:09:33.123456Z") == 0 &&
                   strcmp(ls.acquire, "2025-12-03T11:09:31.123456Z") == 0 &&
                   strcmp(ls.rv, rv) != 0 && ls.transitions == 0,
           "A renewed without reading the Lease: renewTime +2 s, acquireTime kept, a new "
           "resourceVersion (%s %s %s)",
           ls.renew, ls.acquire, ls.rv);
        bool held = true;
        for (int i = 0; i < 8; i++)
                held = advance(2000, cs, 2) && held && leader_is_leader(a.l) &&
                       !leader_is_leader(b.l);
        ok(held, "for 16 s more (past the lease duration), A renews and B stays a standby");
        is_str(events(&a), "started new:pod-a-1x2y", "no new event for A");
        is_str(events(&b), "new:pod-a-1x2y", "no new event for B");

        r = stop(&a);
        ls = get_lease("basic");
        is_int(r, 0, "A stops: the release succeeded");
        is_str(events(&a), "started new:pod-a-1x2y stopped", "A stopped leading");
        ok(strcmp(ls.holder, "") == 0 && ls.duration == 1 && ls.transitions == 0,
           "released: holderIdentity \"\", leaseDurationSeconds 1, transitions kept (%s %lld %lld)",
           ls.holder, (long long) ls.duration, (long long) ls.transitions);
        ok(advance(2000, cs, 2), "one retry period later");
        ls = get_lease("basic");
        is_str(events(&b), "new:pod-a-1x2y started new:pod-b-3z4w",
               "B took over at its next retry");
        ok(strcmp(ls.holder, "pod-b-3z4w") == 0 && ls.transitions == 1 &&
                   strcmp(ls.acquire, "2025-12-03T11:09:51.123456Z") == 0 && ls.duration == 15,
           "the Lease: holder B, leaseTransitions 1, acquireTime now (%s %lld %s)", ls.holder,
           (long long) ls.transitions, ls.acquire);
        is_int(stop(&b), 0, "B stops");
}

static void test_expiry(void) {
        struct cand c = {.id = "pod-c"};
        struct cand *cs[] = {&c};
        ok(put_lease("expiry", "", "ghost", "2001-01-01T00:00:00.000000Z", 4) == 0,
           "a Lease held by a dead leader whose renewTime is 25 years old");
        uint64_t t0 = hook_now(NULL);
        int r = start(&c, "expiry", NULL);
        ok(r == 0 && settle(cs, 1), "C starts (%d)", r);
        bool standby = true;
        for (int i = 0; i < 7; i++)
                standby = advance(2000, cs, 1) && standby && !leader_is_leader(c.l);
        struct lease ls = get_lease("expiry");
        ok(standby && strcmp(ls.holder, "ghost") == 0,
           "for 14 s C does not take over: the lease duration counts from when C saw the record, "
           "whatever its renewTime says");
        ok(put_lease("expiry", ls.rv, "ghost", "2001-01-01T00:00:14.000000Z", 4) == 0,
           "the holder renews (out of band)");
        for (int i = 0; i < 8; i++)
                standby = advance(2000, cs, 1) && standby && !leader_is_leader(c.l);
        ok(standby, "30 s after C's first look, 14 s after the renewal it saw: still no takeover");
        ok(advance(2000, cs, 1) && leader_is_leader(c.l),
           "16 s after the renewal it saw, C takes over");
        ls = get_lease("expiry");
        ok(strcmp(ls.holder, "pod-c") == 0 && ls.transitions == 5 &&
                   strcmp(ls.acquire, wall_at(t0 + 32000)) == 0,
           "holder C, leaseTransitions 4 -> 5, acquireTime now (%s %lld %s)", ls.holder,
           (long long) ls.transitions, ls.acquire);
        is_str(events(&c), "new:ghost started new:pod-c", "C's events");
        is_int(stop(&c), 0, "C stops");
}

static void test_conflicts(void) {
        struct cand a = {.id = "pod-a"};
        struct cand *one[] = {&a};
        long since = log_size();
        int r = start(&a, "conflict", NULL);
        ok(r == 0 && settle(one, 1) && leader_is_leader(a.l), "A leads (%d)", r);
        struct lease ls = get_lease("conflict");
        ok(put_lease("conflict", ls.rv, "intruder", "2025-12-03T11:09:32.000000Z", 1) == 0,
           "another client writes the Lease with itself as the holder");
        long conflicts = stat_requests("PUT " LEASES "/conflict 409");
        ok(advance(2000, one, 1), "2 s later");
        ok(wait_stat("PUT " LEASES "/conflict 409", conflicts + 1),
           "A's renewal of the object it wrote got 409 Conflict");
        ok(!leader_is_leader(a.l), "A stepped down at once");
        is_str(events(&a), "started new:pod-a stopped new:intruder",
               "A: stopped leading, the intruder observed");
        ls = get_lease("conflict");
        is_str(ls.holder, "intruder", "A did not overwrite the Lease");
        is_int(log_count(since, "stopped leading"), 1, "one log line for the loss");
        is_int(log_count(since, "the leader is now intruder"), 1, "one for the new leader");
        is_int(stop(&a), 0, "A stops (not leading: nothing to release)");
        is_str(get_lease("conflict").holder, "intruder", "and the Lease is still the intruder's");

        /* A candidate's takeover that loses to another writer: an injected 409. */
        struct cand b = {.id = "pod-b"};
        struct cand *bs[] = {&b};
        ok(put_lease("race", "", "", "2025-12-03T11:09:32.000000Z", 2) == 0, "a released Lease");
        ok(fault("{\"match\":\"" LEASES "/race\",\"method\":\"PUT\",\"status\":409,\"message\":"
                 "\"Operation cannot be fulfilled on leases.coordination.k8s.io \\\"race\\\": "
                 "the object has been modified; please apply your changes to the latest version "
                 "and try again\",\"count\":1}") == 0,
           "the next PUT of it answers 409 Conflict");
        since = log_size();
        r = start(&b, "race", NULL);
        ok(r == 0 && settle(bs, 1), "B starts (%d)", r);
        ok(!leader_is_leader(b.l) && strcmp(events(&b), "") == 0,
           "B lost the race cleanly: not leading, no callback (%s)", events(&b));
        is_int(log_count(since, "Leader election"), 0, "a lost race is not logged");
        ok(advance(2000, bs, 1) && leader_is_leader(b.l), "at its next retry, B acquires");
        is_int(get_lease("race").transitions, 3, "leaseTransitions 2 -> 3");
        is_int(stop(&b), 0, "B stops");

        /* Two candidates racing for the same expired Lease: exactly one wins, once. */
        struct cand c = {.id = "pod-c"}, d = {.id = "pod-d"};
        struct cand *cd[] = {&c, &d};
        ok(put_lease("two", "", "ghost", "2025-12-03T11:09:32.000000Z", 7) == 0,
           "a Lease of a dead holder");
        ok(start(&c, "two", NULL) == 0 && start(&d, "two", NULL) == 0 && settle(cd, 2),
           "C and D start together");
        for (int i = 0; i < 9; i++)
                (void) advance(2000, cd, 2);
        bool cl = leader_is_leader(c.l), dl = leader_is_leader(d.l);
        ls = get_lease("two");
        struct cand *w = cl ? &c : &d, *loser = cl ? &d : &c;
        ok(cl != dl && strcmp(ls.holder, w->id) == 0, "exactly one leads (%s), and holds the Lease",
           w->id);
        is_int(ls.transitions, 8, "leaseTransitions 7 -> 8: one takeover");
        char want[128];
        (void) snprintf(want, sizeof(want), "new:ghost new:%s", w->id);
        is_str(events(loser), want, "the other sees it as the new leader");
        is_int(stop(loser), 0, "the standby stops");
        is_str(get_lease("two").rv, ls.rv, "a standby's stop writes nothing");
        is_int(stop(w), 0, "the leader stops");
}

static void test_renew_failure(void) {
        struct cand a = {.id = "pod-a"};
        struct cand *one[] = {&a};
        int r = start(&a, "fail", NULL);
        ok(r == 0 && settle(one, 1) && leader_is_leader(a.l), "A leads (%d)", r);
        long since = log_size();
        ok(fault("{\"match\":\"" LEASES "/fail\",\"status\":500,\"count\":0}") == 0,
           "every request for the Lease fails (500)");
        bool leads = true;
        for (int i = 0; i < 4; i++)
                leads = advance(2000, one, 1) && leads && leader_is_leader(a.l);
        ok(leads, "for 8 s of failed renewals, A still leads");
        ok(advance(2000, one, 1) && !leader_is_leader(a.l),
           "10 s after its last renewal (the renew deadline, 5 s before the lease could expire "
           "for anyone else), A has stepped down");
        is_str(events(&a), "started new:pod-a stopped", "on_stopped_leading was called");
        for (int i = 0; i < 3; i++)
                (void) advance(2000, one, 1);
        is_int(log_count(since, "warning: Leader election: the Lease default/fail"), 1,
               "eight failed attempts, one warning");
        is_int(log_count(since, "stopped leading"), 1, "and one line for the loss");
        clear_faults();
        ok(advance(2000, one, 1) && leader_is_leader(a.l),
           "the API server back, A (still the holder of record) leads again");
        is_int(get_lease("fail").transitions, 0, "no transition: the holder never changed");
        is_int(log_count(since, "can be read and written again"), 1, "the recovery logged once");

        /* A renewal that hangs: is_leader turns false at the deadline without waiting for it. */
        ok(fault("{\"match\":\"" LEASES "/fail\",\"method\":\"PUT\",\"kind\":\"delay\","
                 "\"delay_ms\":3000,\"count\":1}") == 0,
           "the next renewal hangs for 3 s (real time)");
        (void) pthread_mutex_lock(&fc.m);
        fc.now += 2000;
        (void) pthread_cond_broadcast(&fc.c);
        fc.now += 10000;
        (void) pthread_mutex_unlock(&fc.m);
        ok(!leader_is_leader(a.l),
           "12 s after the last renewal, during the hanging one: not leader");
        ok(settle(one, 1), "the thread is back");
        is_int(stop(&a), 0, "A stops");
}

/* A Lease with every field set (kubernetes/api testdata, tests/fixtures/k8s): its own
 * leaseDurationSeconds (2) is what a candidate waits, and a takeover keeps its metadata. */
static void test_fixture(void) {
        char path[4096];
        const char *top = getenv("CLOUDTASER_TOP");
        (void) snprintf(path, sizeof(path),
                        "%s/tests/fixtures/k8s/allfields-coordination.k8s.io.v1.Lease.json",
                        top ? top : ".");
        _cleanup_buf_ struct buf text = BUF_INIT(1 << 20, 0), obj = BUF_INIT(1 << 20, 0);
        _cleanup_json_doc_ struct json_doc *fx = NULL, *d = NULL;
        struct json_value *meta = NULL;
        int r = buf_read_file(&text, path);
        if (r >= 0)
                r = json_parse(text.data, text.len, 0, NULL, &fx);
        if (r >= 0)
                r = json_doc_new(0, 0, &d);
        const struct json_value *fm = fx ? json_get(json_doc_root(fx), "metadata") : NULL;
        struct json_value *root = d ? json_doc_root(d) : NULL;
        if (r >= 0)
                r = json_add_string(d, root, "apiVersion", "coordination.k8s.io/v1");
        if (r >= 0)
                r = json_add_string(d, root, "kind", "Lease");
        if (r >= 0)
                r = json_add_object(d, root, "metadata", &meta);
        if (r >= 0)
                r = json_add_string(d, meta, "name", "fixture");
        if (r >= 0)
                r = json_add_string(d, meta, "namespace", "default");
        static const char *const keep[] = {"labels", "annotations", "ownerReferences"};
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(keep); i++)
                r = json_add_copy(d, meta, keep[i], json_get(fm, keep[i]));
        if (r >= 0)
                r = json_add_copy(d, root, "spec", json_get(json_doc_root(fx), "spec"));
        if (r >= 0)
                r = json_print(root, &obj);
        int status = 0;
        if (r >= 0)
                r = standin_control(si, "POST", "/_standin/objects", buf_cstr(&obj), &status, NULL);
        ok(r == 0 && status == 200, "the fixture Lease stored (%d %d)", r, status);

        struct cand c = {.id = "pod-f"};
        struct cand *cs[] = {&c};
        r = start(&c, "fixture", NULL);
        ok(r == 0 && settle(cs, 1) && !leader_is_leader(c.l), "C sees holderIdentityValue (%d)", r);
        ok(advance(2000, cs, 1) && leader_is_leader(c.l),
           "2 s later, the record's leaseDurationSeconds, C takes over (its own is 15 s)");
        _cleanup_json_doc_ struct json_doc *got = NULL;
        struct kube_error e;
        const char *label = NULL, *ann = NULL, *owner = NULL;
        int64_t transitions = -1, duration = -1;
        r = kube_get(tk, LEASES "/fixture", &got, &e);
        const struct json_value *gm = got ? json_get(json_doc_root(got), "metadata") : NULL;
        const struct json_value *gs = got ? json_get(json_doc_root(got), "spec") : NULL;
        (void) json_get_string(json_get(gm, "labels"), "labelsKey", &label);
        (void) json_get_string(json_get(gm, "annotations"), "annotationsKey", &ann);
        (void) json_get_string(json_array_at(json_get(gm, "ownerReferences"), 0), "uid", &owner);
        (void) json_get_int64(gs, "leaseTransitions", &transitions);
        (void) json_get_int64(gs, "leaseDurationSeconds", &duration);
        ok(r == 0 && label && strcmp(label, "labelsValue") == 0 && ann &&
                   strcmp(ann, "annotationsValue") == 0 && owner && strcmp(owner, "uidValue") == 0,
           "labels, annotations and ownerReferences kept");
        ok(transitions == 6 && duration == 15, "leaseTransitions 5 -> 6, leaseDurationSeconds 15");
        is_str(events(&c), "new:holderIdentityValue started new:pod-f", "C's events");
        is_int(stop(&c), 0, "C stops");
}

/* With the real clock and a retry period of 15 minutes: the stop wakes the thread. */
static void test_real_clock(void) {
        struct cand a = {.id = "pod-real"};
        struct leader_options o = {.lease_duration_ms = 3600000,
                                   .renew_deadline_ms = 1800000,
                                   .retry_period_ms = 900000};
        int r = start(&a, "real", &o);
        struct timespec until;
        (void) clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SETTLE_TIMEOUT_S;
        (void) pthread_mutex_lock(&fc.m);
        while (r == 0 && a.n_events < 2 &&
               pthread_cond_timedwait(&fc.c, &fc.m, &until) != ETIMEDOUT)
                ;
        (void) pthread_mutex_unlock(&fc.m);
        ok(r == 0 && leader_is_leader(a.l), "real clock: A leads (%d, %s)", r, events(&a));
        is_int(stop(&a), 0, "the stop returns without waiting for the 15-minute retry period");
        struct lease ls = get_lease("real");
        ok(strcmp(ls.holder, "") == 0 && ls.duration == 1 && ls.renew[19] == '.' &&
                   strlen(ls.renew) == 27,
           "and released the Lease (%s %lld %s)", ls.holder, (long long) ls.duration, ls.renew);
}

static struct kube_client *client(void) {
        struct kube_client *k = NULL;
        return standin_kube_client(si, &k) < 0 ? NULL : k;
}

int main(void) {
        int r = standin_start_kube(NULL, &si);
        if (r < 0) {
                ok(false, "the stand-in kube-apiserver starts (%d)", r);
                return tap_done();
        }
        kc = client();
        tk = client();
        (void) snprintf(log_path, sizeof(log_path), "%s/leader.log", si->dir);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        log_setup("test-operator-leader", LOG_FORMAT_TEXT, LOG_INFO);
        log_set_fd(fd);
        if (kc && tk && fd >= 0) {
                test_options();
                test_acquire_renew_release();
                test_expiry();
                test_conflicts();
                test_renew_failure();
                test_fixture();
                test_real_clock();
        } else
                ok(false, "kube clients and the log file");
        log_set_fd(2);
        if (fd >= 0)
                (void) close(fd);
        kube_client_free(kc);
        kube_client_free(tk);
        standin_stop(si);
        return tap_done();
}
