/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election through a coordination.k8s.io/v1 Lease (the contract is in leader.h). */
#include "operator/leader.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/sha256.h"

#define LEASES_PATH "/apis/coordination.k8s.io/v1/namespaces/%s/leases"
#define MICROTIME_SIZE 32 /* "2026-12-03T11:09:31.123456Z" */

/* What the Lease says, as client-go's LeaderElectionRecord. */
struct record {
        const char *holder; /* "" when none; borrowed from the document */
        int64_t duration_s;
        int64_t transitions;
        const char *acquire_time; /* "" when none */
};

struct leader {
        struct kube_client *k;
        char *namespace_, *name, *identity;
        char *item_path, *collection_path;
        uint64_t lease_ms, renew_ms, retry_ms;
        struct leader_callbacks cb;
        struct leader_hooks hooks;

        pthread_t thread;
        bool running;
        pthread_mutex_t lock; /* the default wait */
        pthread_cond_t cond;
        bool woken;

        atomic_bool stop;
        atomic_bool leading;
        _Atomic uint64_t valid_until; /* monotonic ms: is_leader until then */

        /* Owned by the election thread. */
        struct json_doc *lease; /* the object last read or written: metadata for the next write */
        uint8_t observed_fp[SHA256_DIGEST_SIZE];
        bool observed;
        uint64_t observed_at; /* when the record last changed, on our clock */
        int64_t observed_duration_s;
        char holder[LEADER_IDENTITY_MAX + 1];   /* holder of the record observed (cut) */
        bool holder_is_us;                      /* compared in full */
        char reported[LEADER_IDENTITY_MAX + 1]; /* last one given to on_new_leader */
        int64_t transitions;                    /* of the record observed */
        char acquire_time[MICROTIME_SIZE];      /* ours, while we hold it */
        int last_error;                         /* of the current run of failures, or 0 */
        char last_message[sizeof(((struct kube_error *) 0)->message)];
};

static uint64_t mono_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static uint64_t now_ms(const struct leader *l) {
        return l->hooks.now_ms ? l->hooks.now_ms(l->hooks.userdata) : mono_ms();
}

static void format_microtime(const struct leader *l, char ret[MICROTIME_SIZE]) {
        int64_t us;
        if (l->hooks.wall_usec)
                us = l->hooks.wall_usec(l->hooks.userdata);
        else {
                struct timespec ts;
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                us = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        }
        time_t s = (time_t) (us / 1000000);
        struct tm tm;
        char date[24] = "1970-01-01T00:00:00";
        if (us >= 0 && gmtime_r(&s, &tm))
                (void) strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        (void) snprintf(ret, MICROTIME_SIZE, "%s.%06" PRId64 "Z", date, us >= 0 ? us % 1000000 : 0);
}

/* The default wait: a condition variable on CLOCK_MONOTONIC, woken by leader_stop(). */
static void wait_until(struct leader *l, uint64_t deadline) {
        if (l->hooks.wait_until) {
                while (!atomic_load(&l->stop) && now_ms(l) < deadline)
                        l->hooks.wait_until(l->hooks.userdata, deadline);
                return;
        }
        (void) pthread_mutex_lock(&l->lock);
        for (;;) {
                uint64_t now = now_ms(l);
                if (l->woken || atomic_load(&l->stop) || now >= deadline)
                        break;
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t ns = (uint64_t) ts.tv_nsec + (deadline - now) % 1000u * 1000000u;
                ts.tv_sec += (time_t) ((deadline - now) / 1000u + ns / 1000000000u);
                ts.tv_nsec = (long) (ns % 1000000000u);
                (void) pthread_cond_timedwait(&l->cond, &l->lock, &ts);
        }
        l->woken = false;
        (void) pthread_mutex_unlock(&l->lock);
}

static int parse_record(const struct json_value *lease, struct record *ret) {
        struct record rec = {.holder = "", .acquire_time = ""};
        const struct json_value *spec = NULL;
        int r = json_get_object(lease, "spec", &spec);
        if (r == -ENOENT)
                return *ret = rec, 0;
        if (r < 0)
                return r;
        static const char *const strings[] = {"holderIdentity", "acquireTime"};
        const char **string_out[] = {&rec.holder, &rec.acquire_time};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                r = json_get_string(spec, strings[i], string_out[i]);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        static const char *const ints[] = {"leaseDurationSeconds", "leaseTransitions"};
        int64_t *int_out[] = {&rec.duration_s, &rec.transitions};
        for (size_t i = 0; i < ELEMENTSOF(ints); i++) {
                r = json_get_int64(spec, ints[i], int_out[i]);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (rec.duration_s < 0 || rec.transitions < 0)
                return -EBADMSG;
        *ret = rec;
        return 0;
}

/* Takes *doc as the Lease last seen. When its record differs from the one observed before, it is
 * a new observation: the lease duration counts from now. */
static int observe(struct leader *l, struct json_doc **doc, uint64_t now) {
        struct record rec;
        const struct json_value *root = json_doc_root(*doc);
        int r = parse_record(root, &rec);
        if (r < 0)
                return r;
        _cleanup_buf_ struct buf spec = BUF_INIT(KUBE_MAX_BODY, BUF_SECURE);
        const struct json_value *v = json_get(root, "spec");
        if (v)
                r = json_print(v, &spec);
        if (r < 0)
                return r;
        uint8_t fp[SHA256_DIGEST_SIZE];
        sha256_buffer(spec.data ? spec.data : "", spec.len, fp);
        if (!l->observed || memcmp(fp, l->observed_fp, sizeof(fp)) != 0) {
                memcpy(l->observed_fp, fp, sizeof(fp));
                l->observed = true;
                l->observed_at = now;
        }
        l->observed_duration_s = rec.duration_s;
        l->transitions = rec.transitions;
        l->holder_is_us = strcmp(rec.holder, l->identity) == 0;
        (void) snprintf(l->holder, sizeof(l->holder), "%s", rec.holder);
        json_doc_free(l->lease);
        l->lease = TAKE_PTR(*doc);
        return 0;
}

static bool observed_valid(const struct leader *l, uint64_t now) {
        return l->observed_at + (uint64_t) l->observed_duration_s * 1000u > now;
}

/* The body of a create (metadata NULL) or an update (the metadata of the object last seen, as
 * is: its resourceVersion makes the write conditional; labels and annotations are kept). */
static int lease_body(const struct leader *l, const struct json_value *metadata, const char *holder,
                      int64_t duration_s, const char *acquire, const char *renew,
                      int64_t transitions, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *meta = NULL, *spec = NULL;
        int r = json_doc_new(0, KUBE_MAX_BODY, &d);
        if (r < 0)
                return r;
        struct json_value *root = json_doc_root(d);
        r = json_add_string(d, root, "apiVersion", "coordination.k8s.io/v1");
        if (r >= 0)
                r = json_add_string(d, root, "kind", "Lease");
        if (r >= 0 && metadata)
                r = json_add_copy(d, root, "metadata", metadata);
        else if (r >= 0) {
                r = json_add_object(d, root, "metadata", &meta);
                if (r >= 0)
                        r = json_add_string(d, meta, "name", l->name);
                if (r >= 0)
                        r = json_add_string(d, meta, "namespace", l->namespace_);
        }
        if (r >= 0)
                r = json_add_object(d, root, "spec", &spec);
        if (r >= 0)
                r = json_add_string(d, spec, "holderIdentity", holder);
        if (r >= 0)
                r = json_add_int64(d, spec, "leaseDurationSeconds", duration_s);
        if (r >= 0)
                r = json_add_string(d, spec, "acquireTime", acquire);
        if (r >= 0)
                r = json_add_string(d, spec, "renewTime", renew);
        if (r >= 0)
                r = json_add_int64(d, spec, "leaseTransitions", transitions);
        if (r >= 0)
                r = json_print(root, out);
        return r;
}

/* Writes the record (create when there is no object yet, else a conditional update) and takes
 * the answer as the Lease last seen. */
static int write_record(struct leader *l, const char *holder, int64_t duration_s,
                        const char *acquire, const char *renew, int64_t transitions, uint64_t now,
                        struct kube_error *e) {
        _cleanup_buf_ struct buf body = BUF_INIT(KUBE_MAX_BODY, 0);
        _cleanup_json_doc_ struct json_doc *answer = NULL;
        const struct json_value *metadata =
                l->lease ? json_get(json_doc_root(l->lease), "metadata") : NULL;
        int r = lease_body(l, metadata, holder, duration_s, acquire, renew, transitions, &body);
        if (r < 0)
                return r;
        if (metadata)
                r = kube_update(l->k, l->item_path, &body, &answer, e);
        else
                r = kube_create(l->k, l->collection_path, &body, &answer, e);
        if (r < 0)
                return r;
        r = observe(l, &answer, now);
        if (r < 0)
                (void) snprintf(e->message, sizeof(e->message), "the Lease written is malformed");
        return r;
}

/* One round, as client-go's tryAcquireOrRenew: 1 when we hold the Lease now, 0 when another
 * holder's lease is still valid, -ESTALE/-EEXIST when another writer came first, other -errno
 * when the API server could not be asked. */
static int try_acquire_or_renew(struct leader *l, uint64_t now, struct kube_error *e) {
        char ts[MICROTIME_SIZE];
        int64_t lease_s = (int64_t) (l->lease_ms / 1000u);
        bool leading = atomic_load(&l->leading);
        int r;

        format_microtime(l, ts);
        if (leading && l->lease && l->holder_is_us) {
                /* The fast path: the object we wrote last is most likely still current. */
                r = write_record(l, l->identity, lease_s, l->acquire_time, ts, l->transitions, now,
                                 e);
                if (r != -ESTALE)
                        return r < 0 ? r : 1;
        }

        _cleanup_json_doc_ struct json_doc *d = NULL;
        r = kube_get(l->k, l->item_path, &d, e);
        if (r == -ENOENT) {
                l->lease = json_doc_free(l->lease);
                r = write_record(l, l->identity, lease_s, ts, ts, 0, now, e);
                if (r < 0)
                        return r;
                (void) snprintf(l->acquire_time, sizeof(l->acquire_time), "%s", ts);
                return 1;
        }
        if (r < 0)
                return r;
        r = observe(l, &d, now);
        if (r < 0) {
                (void) snprintf(e->message, sizeof(e->message),
                                "the Lease's spec is malformed (a field of the wrong type)");
                return r;
        }
        if (l->holder[0] && !l->holder_is_us && observed_valid(l, now))
                return 0;

        /* Ours, released, or expired: take it. The holder stays (a renewal) or changes (a
         * transition); acquireTime is kept only while we lead without interruption. */
        bool ours = l->holder_is_us;
        char acquire[MICROTIME_SIZE];
        (void) snprintf(acquire, sizeof(acquire), "%s", ours && leading ? l->acquire_time : ts);
        r = write_record(l, l->identity, lease_s, acquire, ts,
                         ours ? l->transitions : l->transitions + 1, now, e);
        if (r < 0)
                return r;
        (void) snprintf(l->acquire_time, sizeof(l->acquire_time), "%s", acquire);
        return 1;
}

static void report_new_leader(struct leader *l) {
        if (!l->holder[0] || strcmp(l->holder, l->reported) == 0)
                return;
        (void) snprintf(l->reported, sizeof(l->reported), "%s", l->holder);
        if (!l->holder_is_us)
                log_info("Leader election: the leader is now %s (Lease %s/%s)", l->holder,
                         l->namespace_, l->name);
        if (l->cb.on_new_leader)
                l->cb.on_new_leader(l->reported, l->cb.userdata);
}

static void step_down(struct leader *l, const char *why) {
        atomic_store(&l->leading, false);
        atomic_store(&l->valid_until, 0);
        log_warning("Leader election: stopped leading (Lease %s/%s): %s", l->namespace_, l->name,
                    why);
        if (l->cb.on_stopped_leading)
                l->cb.on_stopped_leading(l->cb.userdata);
}

/* One warning per run of failures (and when the error changes), one line when it ends. */
static void note_result(struct leader *l, int r, const struct kube_error *e) {
        if (r >= 0 || r == -ESTALE || r == -EEXIST) {
                if (l->last_error != 0)
                        log_info("Leader election: the Lease %s/%s can be read and written again",
                                 l->namespace_, l->name);
                l->last_error = 0;
                return;
        }
        if (r == l->last_error && strcmp(e->message, l->last_message) == 0)
                return;
        l->last_error = r;
        (void) snprintf(l->last_message, sizeof(l->last_message), "%s", e->message);
        log_warning_errno(
                r, "Leader election: the Lease %s/%s: %s (%m); retrying every %" PRIu64 " ms",
                l->namespace_, l->name, e->message[0] ? e->message : "no answer", l->retry_ms);
}

static int release(struct leader *l) {
        char ts[MICROTIME_SIZE];
        struct kube_error e = {};
        format_microtime(l, ts);
        int r = write_record(l, "", 1, ts, ts, l->transitions, now_ms(l), &e);
        if (r < 0)
                return log_warning_errno(
                        r, "Leader election: could not release the Lease %s/%s: %s (%m)",
                        l->namespace_, l->name, e.message);
        log_info("Leader election: released the Lease %s/%s", l->namespace_, l->name);
        return 0;
}

static void *run(void *p) {
        struct leader *l = p;
        char why[LEADER_IDENTITY_MAX + 64];

        while (!atomic_load(&l->stop)) {
                uint64_t now = now_ms(l);
                if (atomic_load(&l->leading) && now >= atomic_load(&l->valid_until))
                        step_down(l, "the lease was not renewed within the renew deadline");

                struct kube_error e = {};
                int r = try_acquire_or_renew(l, now, &e);
                note_result(l, r, &e);
                if (r == 1) {
                        atomic_store(&l->valid_until, now + l->renew_ms);
                        if (!atomic_exchange(&l->leading, true)) {
                                log_info("Leader election: became the leader (Lease %s/%s, "
                                         "identity %s, transitions %" PRId64 ")",
                                         l->namespace_, l->name, l->identity, l->transitions);
                                if (l->cb.on_started_leading)
                                        l->cb.on_started_leading(l->cb.userdata);
                        }
                } else if (r == 0 && atomic_load(&l->leading)) {
                        (void) snprintf(why, sizeof(why), "the Lease is held by %s", l->holder);
                        step_down(l, why);
                }
                report_new_leader(l);

                uint64_t next = now + l->retry_ms;
                if (atomic_load(&l->leading))
                        next = MIN(next, atomic_load(&l->valid_until));
                wait_until(l, next);
        }

        int r = 0;
        bool was_leading = atomic_exchange(&l->leading, false);
        atomic_store(&l->valid_until, 0);
        if (l->lease && l->holder_is_us)
                r = release(l);
        if (was_leading) {
                log_info("Leader election: stopped leading (Lease %s/%s): stopping", l->namespace_,
                         l->name);
                if (l->cb.on_stopped_leading)
                        l->cb.on_stopped_leading(l->cb.userdata);
        }
        return (void *) (intptr_t) r;
}

static bool identity_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > LEADER_IDENTITY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

struct leader *leader_free(struct leader *l) {
        if (!l)
                return NULL;
        (void) leader_stop(l);
        json_doc_free(l->lease);
        (void) pthread_cond_destroy(&l->cond);
        (void) pthread_mutex_destroy(&l->lock);
        free(l->namespace_);
        free(l->name);
        free(l->identity);
        free(l->item_path);
        free(l->collection_path);
        free(l);
        return NULL;
}

int leader_start(struct kube_client *k, const struct leader_options *o, struct leader **ret) {
        if (!k || !o || !ret)
                return -EINVAL;
        const char *name = o->name ? o->name : LEADER_DEFAULT_NAME;
        uint64_t lease =
                o->lease_duration_ms ? o->lease_duration_ms : LEADER_DEFAULT_LEASE_DURATION_MS;
        uint64_t renew =
                o->renew_deadline_ms ? o->renew_deadline_ms : LEADER_DEFAULT_RENEW_DEADLINE_MS;
        uint64_t retry = o->retry_period_ms ? o->retry_period_ms : LEADER_DEFAULT_RETRY_PERIOD_MS;
        if (!o->namespace_ || !kube_name_valid(o->namespace_) || !kube_name_valid(name) ||
            !identity_valid(o->identity) || lease % 1000u != 0 || !(lease > renew) ||
            !(renew > retry) || !!o->hooks.wait_until != !!o->hooks.wake)
                return -EINVAL;

        _cleanup_(leader_freep) struct leader *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        pthread_condattr_t ca;
        if (pthread_condattr_init(&ca) != 0)
                return -ENOMEM;
        (void) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int r = pthread_cond_init(&l->cond, &ca);
        (void) pthread_condattr_destroy(&ca);
        if (r != 0 || pthread_mutex_init(&l->lock, NULL) != 0) {
                free(TAKE_PTR(l));
                return -ENOMEM;
        }
        l->k = k;
        l->lease_ms = lease;
        l->renew_ms = renew;
        l->retry_ms = retry;
        l->cb = o->callbacks;
        l->hooks = o->hooks;
        l->namespace_ = strdup(o->namespace_);
        l->name = strdup(name);
        l->identity = strdup(o->identity);
        if (!l->namespace_ || !l->name || !l->identity)
                return -ENOMEM;
        if (asprintf(&l->collection_path, LEASES_PATH, o->namespace_) < 0)
                return l->collection_path = NULL, -ENOMEM;
        if (asprintf(&l->item_path, LEASES_PATH "/%s", o->namespace_, name) < 0)
                return l->item_path = NULL, -ENOMEM;
        r = pthread_create(&l->thread, NULL, run, l);
        if (r != 0)
                return -r;
        l->running = true;
        *ret = TAKE_PTR(l);
        return 0;
}

bool leader_is_leader(const struct leader *l) {
        if (!l || !atomic_load(&l->leading))
                return false;
        return now_ms(l) < atomic_load(&l->valid_until);
}

int leader_stop(struct leader *l) {
        if (!l || !l->running)
                return 0;
        atomic_store(&l->stop, true);
        if (l->hooks.wake)
                l->hooks.wake(l->hooks.userdata);
        else {
                (void) pthread_mutex_lock(&l->lock);
                l->woken = true;
                (void) pthread_cond_signal(&l->cond);
                (void) pthread_mutex_unlock(&l->lock);
        }
        void *result = NULL;
        (void) pthread_join(l->thread, &result);
        l->running = false;
        return (int) (intptr_t) result;
}
