/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/agent: see agent.h. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "wrapper/agent.h"
#include "wrapper/timer.h"

static void notify(struct agent *a) {
        uint64_t one = 1;
        (void) !write(a->event_fd, &one, sizeof(one));
}

static void drain(struct agent *a) {
        uint64_t n;
        (void) !read(a->event_fd, &n, sizeof(n));
}

int agent_init(struct agent *a, const struct wrapper_config *cfg, struct vault_client *vault) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (stop < 0) {
                int r = negative_errno();
                (void) close(fd);
                return r;
        }
        int r = pthread_mutex_init(&a->lock, NULL);
        if (r != 0) {
                (void) close(fd);
                (void) close(stop);
                return -r;
        }
        a->stop_fd = stop;
        a->stack = NULL;
        a->stack_len = 0;
        a->cfg = cfg;
        a->vault = vault;
        a->event_fd = fd;
        a->renew_tfd = a->rotate_tfd = -1;
        a->box = AGENT_BOX_EMPTY;
        return 0;
}

void agent_use_broker(struct agent *a, struct broker_client *broker) {
        a->broker = broker;
}

/* Where the values come from: the vault, or cloudtaser-broker in broker mode. */
static const char *source_name(const struct agent *a) {
        return a->broker ? "broker" : "vault";
}

/* Whether a failed fetch is worth retrying until the startup deadline. */
static bool transient(const struct agent *a, int cause) {
        return a->broker ? broker_error_is_transient(cause) : vault_error_is_transient(cause);
}

/* 1 when the fetch logged in (*ret_login then holds the lease when not NULL), 0, or -errno. */
static int fetch(struct agent *a, struct secret_set *ret, struct vault_auth *ret_login,
                 struct error_report *err) {
        return a->broker ? secrets_fetch_broker(a->broker, a->cfg, ret, err)
                         : secrets_fetch(a->vault, a->cfg, ret, ret_login, err);
}

int agent_fd(const struct agent *a) {
        return a->event_fd;
}

/* musl gives a new thread 128 KiB of stack; the vault calls (libcurl, wolfSSL's handshake) need
 * more: the main thread's 8 MiB is what this code ran on before it had a thread. Only touched
 * pages are used. The start-up fetch and then the renewal thread run on one stack, mapped once
 * (below it a PROT_NONE guard): the second thread finds its pages already faulted in, and the
 * first one's join unmaps nothing (musl maps and unmaps a stack it allocates itself: with its
 * touched pages, ~6 % of a start's CPU went to those munmaps and faults). Never two at once:
 * the fetch thread is joined before agent_run(). */
#define AGENT_STACK_SIZE (8u * 1024u * 1024u)
#define AGENT_STACK_GUARD (64u * 1024u)

static int stack_map(struct agent *a) {
        if (a->stack)
                return 0;
        size_t len = AGENT_STACK_SIZE + AGENT_STACK_GUARD;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        if (mprotect(p, AGENT_STACK_GUARD, PROT_NONE) < 0) {
                int r = negative_errno();
                (void) munmap(p, len);
                return r;
        }
        a->stack = p;
        a->stack_len = len;
        return 0;
}

static int start_thread(struct agent *a, void *(*fn)(void *) ) {
        if (a->thread_started)
                return -EBUSY;
        int r = stack_map(a);
        if (r < 0)
                return r;
        pthread_attr_t attr;
        r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        r = pthread_attr_setstack(&attr, (uint8_t *) a->stack + AGENT_STACK_GUARD,
                                  AGENT_STACK_SIZE);
        if (r == 0)
                r = pthread_create(&a->thread, &attr, fn, a);
        (void) pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        a->thread_started = true;
        return 0;
}

/* ---- phase 1: the start-up fetch ---- */

static int fetch_with_retries(struct agent *a, uint64_t deadline) {
        struct error_report err = {};
        unsigned attempt = 0;
        for (;;) {
                struct vault_auth login = {};
                uint64_t t0 = timer_now_ms();
                int r = fetch(a, &a->fetched, &login, &err);
                if (r > 0 && !a->have_ti) {
                        /* A fresh login's lease is the new token's TTL: the renewal schedule
                         * needs no lookup-self (counted from before the login: never late). */
                        a->ti = (struct vault_token_info){.ttl = login.lease_duration,
                                                          .creation_ttl = login.lease_duration,
                                                          .renewable = login.renewable};
                        a->ti_at_ms = t0;
                        a->have_ti = true;
                }
                if (r >= 0)
                        return 0;
                secret_set_clear(&a->fetched); /* the resolved paths are kept for the retry */
                if (!transient(a, err.cause)) {
                        log_error("%s", err.message);
                        return -err.status;
                }
                uint64_t t = timer_now_ms();
                if (t >= deadline) {
                        log_error("%s not available within the startup timeout (%" PRIu64
                                  " ms): %s",
                                  source_name(a), a->cfg->env.startup_timeout_ms, err.message);
                        return -EX_UNAVAILABLE;
                }
                uint64_t cap = MIN((uint64_t) 5000, (uint64_t) 250 << MIN(attempt, 10u));
                uint64_t wait = MIN(timer_jitter(cap) + 50, deadline - t);
                log_warning("%s not ready (%s); retrying in %" PRIu64 " ms", source_name(a),
                            err.message, wait);
                /* A plain sleep: signals are the supervisor's, which abandons this thread. */
                (void) poll(NULL, 0, (int) wait);
                attempt++;
        }
}

static void *fetch_main(void *userdata) {
        struct agent *a = userdata;
        int r = 0;

        /* A token given to us is checked first, so that a refused token says so rather than
         * showing up as a denied path. */
        if (a->cfg->env.auth == AUTH_TOKEN) {
                struct vault_error e = {};
                r = vault_token_lookup_self(a->vault, &a->ti, &e);
                a->have_ti = r >= 0; /* reused for the renewal schedule */
                if (r == -EACCES) {
                        log_error("VAULT_TOKEN was refused by vault (invalid, expired or revoked): "
                                  "%s",
                                  e.message[0] ? e.message : vault_strerror(r));
                        r = -EX_NOPERM;
                } else
                        r = 0;
        }
        /* Authenticate, read, map, validate. Nothing starts without secrets. */
        if (r >= 0)
                r = fetch_with_retries(a, timer_now_ms() + a->cfg->env.startup_timeout_ms);
        a->fetch_result = r;
        notify(a);
        return NULL;
}

int agent_fetch_start(struct agent *a) {
        return start_thread(a, fetch_main);
}

bool agent_fetch_done(struct agent *a) {
        uint64_t n;
        return read(a->event_fd, &n, sizeof(n)) == (ssize_t) sizeof(n);
}

int agent_fetch_finish(struct agent *a, struct secret_set *ret) {
        (void) pthread_join(a->thread, NULL);
        a->thread_started = false;
        if (a->fetch_result < 0)
                return a->fetch_result;
        *ret = a->fetched;
        a->fetched = (struct secret_set){}; /* moved: one owner */
        return 0;
}

/* ---- phase 2: renewal ---- */

static void schedule_renewal(struct agent *a, int64_t lease) {
        a->lease = lease;
        if (lease <= 0) {
                timer_disarm(a->renew_tfd);
                return;
        }
        /* About two thirds of the lease, a little jitter so replicas do not renew in step. */
        uint64_t ms = (uint64_t) lease * 1000u * 2 / 3;
        ms -= timer_jitter(ms / 10);
        (void) timer_arm(a->renew_tfd, MAX(ms, (uint64_t) 500));
}

/* Retries a failed renewal or login with backoff (5 s doubling up to 5 min), logging the first
 * failure of a run and then every tenth, not every attempt. */
static void renew_retry_later(struct agent *a, const char *what) {
        unsigned n = a->renew_failures++;
        if (n == 0 || n % 10 == 0)
                log_warning("%s; retrying with backoff (attempt %u), the workload keeps its values",
                            what, n + 1);
        uint64_t ms = MIN((uint64_t) 300000, (uint64_t) 5000 << MIN(n, 6u));
        (void) timer_arm(a->renew_tfd, ms / 2 + timer_jitter(ms / 2));
}

/* A fresh kubernetes login; on success the renewal is scheduled from its lease. */
static int relogin(struct agent *a, const char *why, struct error_report *fe) {
        struct vault_auth auth = {};
        /* The current token stays until a login succeeds: a transient failure of both must not
         * throw away a token that is still valid. */
        int r = secrets_login(a->vault, a->cfg, &auth, fe);
        if (r < 0)
                return r;
        log_info("%s: logged in again, lease %" PRId64 " s", why, auth.lease_duration);
        a->renew_failures = 0;
        a->login_lease = auth.lease_duration;
        schedule_renewal(a, auth.lease_duration);
        return 0;
}

/* Broker mode: a new certificate and session token at about 2/3 of the session's life (a 401
 * opens a new session instead, broker_session_renew()). On failure the session runs on: reads
 * that meet its end open a new one themselves. */
static void renew_broker_session(struct agent *a) {
        struct broker_error e = {};
        char why[600];
        int r = broker_session_renew(a->broker, &e);
        if (r >= 0) {
                if (a->renew_failures)
                        log_info("broker session renewed again after %u failed attempts",
                                 a->renew_failures);
                a->renew_failures = 0;
                log_debug("broker session renewed: %" PRId64 " s",
                          broker_session_lifetime(a->broker));
                schedule_renewal(a, broker_session_lifetime(a->broker));
                return;
        }
        (void) snprintf(why, sizeof(why), "broker session renewal failed: %s (%s, status %ld)",
                        e.message[0] ? e.message : strerror(-r), e.path, e.status);
        renew_retry_later(a, why);
}

static void renew(struct agent *a) {
        struct vault_auth auth = {};
        struct vault_error e = {};
        char why[600];
        if (a->broker) {
                renew_broker_session(a);
                return;
        }
        int r = vault_token_renew_self(a->vault, 0, &auth, &e);
        /* A renewal capped by the token's maximum TTL comes back shorter each time; below a
         * third of the lease it was issued with (or at 0), log in afresh instead. */
        if (r >= 0 && auth.lease_duration > 0 && auth.lease_duration * 3 >= a->login_lease) {
                if (a->renew_failures)
                        log_info("token renewed again after %u failed attempts", a->renew_failures);
                a->renew_failures = 0;
                log_debug("token renewed: lease %" PRId64 " s", auth.lease_duration);
                schedule_renewal(a, auth.lease_duration);
                return;
        }
        if (r < 0)
                (void) snprintf(why, sizeof(why), "token renewal failed: %s (status %ld)",
                                e.message[0] ? e.message : vault_strerror(r), e.status);
        else
                (void) snprintf(why, sizeof(why),
                                "token near its maximum TTL (lease %" PRId64 " s)",
                                auth.lease_duration);
        if (a->cfg->env.auth == AUTH_KUBERNETES) {
                struct error_report fe = {};
                if (relogin(a, why, &fe) >= 0)
                        return;
                size_t l = strlen(why);
                (void) snprintf(why + l, sizeof(why) - l, "; login failed: %.200s", fe.message);
        }
        renew_retry_later(a, why);
}

/* ---- phase 2: rotation ---- */

/* Settles the box from the agent's side. False while the supervisor holds an offer. */
static bool box_collect(struct agent *a) {
        bool idle = true;
        pthread_mutex_lock(&a->lock);
        switch (a->box) {
        case AGENT_BOX_APPLIED:
                secret_set_done(&a->known);
                a->known = a->offered;
                a->offered = (struct secret_set){}; /* moved */
                a->box = AGENT_BOX_EMPTY;
                break;
        case AGENT_BOX_REFUSED:
                secret_set_done(&a->offered);
                a->box = AGENT_BOX_EMPTY;
                break;
        case AGENT_BOX_OFFERED:
        case AGENT_BOX_TAKEN:
                idle = false;
                break;
        case AGENT_BOX_EMPTY:
                break;
        }
        pthread_mutex_unlock(&a->lock);
        return idle;
}

/* A check refused with 403 most likely means our token was revoked (incident response revokes
 * tokens and changes secrets together): log in again at once rather than keep using the dead
 * token until the renewal timer, which may be weeks away. Bounded: one login per refused check,
 * and none within RELOGIN_MIN_INTERVAL_MS of the last one (a path the policy really denies must
 * not turn every poll into a login). Token auth cannot log in again: nothing to do. */
#define RELOGIN_MIN_INTERVAL_MS 30000u

static bool relogin_after_refusal(struct agent *a, int r) {
        if (r != -EACCES || a->cfg->env.auth != AUTH_KUBERNETES)
                return false;
        uint64_t now = timer_now_ms();
        if (now < a->relogin_not_before_ms)
                return false;
        a->relogin_not_before_ms = now + RELOGIN_MIN_INTERVAL_MS;
        struct error_report fe = {};
        if (relogin(a, "a rotation check was refused (403, token revoked?)", &fe) >= 0)
                return true;
        log_warning("a rotation check was refused (403) and logging in again failed: %s",
                    fe.message);
        return false;
}

/* Whether the secrets changed, and if so the new set in *next: 1, 0 unchanged, or -errno. */
static int check_once(struct agent *a, struct secret_set *next, struct error_report *err) {
        int r = a->broker ? secrets_changed_broker(a->broker, a->cfg, &a->known, err)
                          : secrets_changed(a->vault, a->cfg, &a->known, err);
        if (r <= 0)
                return r;
        r = fetch(a, next, NULL, err);
        return r < 0 ? r : 1;
}

static void rotation_check(struct agent *a) {
        struct error_report err = {};
        struct secret_set next = {};
        (void) timer_arm(a->rotate_tfd, a->cfg->env.rotation_interval_ms);
        if (!box_collect(a))
                return; /* a restart or an update is under way with the last change */
        int r = check_once(a, &next, &err);
        if (r < 0 && relogin_after_refusal(a, r)) {
                secret_set_done(&next);
                next = (struct secret_set){};
                err = (struct error_report){};
                r = check_once(a, &next, &err);
        }
        if (r == 0) {
                if (a->vault_down)
                        log_info("%s reachable again; secrets unchanged", source_name(a));
                a->vault_down = false;
                return;
        }
        if (r < 0) {
                secret_set_done(&next);
                if (!a->vault_down)
                        log_warning("cannot check the secrets for rotation, keeping the current "
                                    "values: %s",
                                    err.message);
                a->vault_down = true;
                return;
        }
        a->vault_down = false;
        /* Same records (e.g. a new version with identical values): nothing to do. */
        if (next.records.len == a->known.records.len &&
            memcmp(next.records.data, a->known.records.data, next.records.len) == 0) {
                memcpy(a->known.versions, next.versions, sizeof(next.versions));
                secret_set_done(&next);
                return;
        }
        pthread_mutex_lock(&a->lock);
        a->offered = next; /* moved into the box */
        a->box = AGENT_BOX_OFFERED;
        pthread_mutex_unlock(&a->lock);
        notify(a);
}

const struct secret_set *agent_take_offer(struct agent *a) {
        const struct secret_set *set = NULL;
        drain(a);
        pthread_mutex_lock(&a->lock);
        if (a->box == AGENT_BOX_OFFERED) {
                a->box = AGENT_BOX_TAKEN;
                set = &a->offered;
        }
        pthread_mutex_unlock(&a->lock);
        return set;
}

void agent_settle(struct agent *a, bool applied) {
        pthread_mutex_lock(&a->lock);
        if (a->box == AGENT_BOX_TAKEN)
                a->box = applied ? AGENT_BOX_APPLIED : AGENT_BOX_REFUSED;
        pthread_mutex_unlock(&a->lock);
}

static void *run_main(void *userdata) {
        struct agent *a = userdata;
        struct vault_error ve = {};

        /* The token's lease, for renewal; in broker mode the session's life. */
        if (a->broker)
                schedule_renewal(a, broker_session_lifetime(a->broker));
        else if (a->have_ti || vault_token_lookup_self(a->vault, &a->ti, &ve) >= 0) {
                int64_t ttl = a->ti.ttl;
                if (ttl > 0 && a->ti_at_ms) {
                        int64_t spent = (int64_t) ((timer_now_ms() - a->ti_at_ms) / 1000u);
                        ttl = MAX(ttl - spent, (int64_t) 1);
                }
                a->login_lease = a->ti.creation_ttl > 0 ? a->ti.creation_ttl : a->ti.ttl;
                if (ttl > 0)
                        schedule_renewal(a, ttl);
        } else {
                log_warning("token lookup failed (%s): trying a renewal in 10 s",
                            ve.message[0] ? ve.message : vault_strerror(ve.error));
                (void) timer_arm(a->renew_tfd, 10000);
        }
        if (a->have_known)
                (void) timer_arm(a->rotate_tfd, a->cfg->env.rotation_interval_ms);

        struct pollfd p[3] = {
                {.fd = a->renew_tfd, .events = POLLIN},
                {.fd = a->rotate_tfd, .events = POLLIN},
                {.fd = a->stop_fd, .events = POLLIN},
        };
        while (!(p[2].revents & POLLIN)) {
                int n = poll(p, ELEMENTSOF(p), -1);
                if (n < 0) {
                        if (errno != EINTR)
                                log_error_errno(errno, "poll failed: %m");
                        continue;
                }
                if ((p[0].revents & POLLIN) && timer_ack(a->renew_tfd))
                        renew(a);
                if ((p[1].revents & POLLIN) && timer_ack(a->rotate_tfd))
                        rotation_check(a);
        }
        return NULL;
}

int agent_stop(struct agent *a, unsigned timeout_ms) {
        if (!a->thread_started)
                return 0;
        uint64_t one = 1;
        (void) !write(a->stop_fd, &one, sizeof(one));
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t) (timeout_ms / 1000);
        ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        int r = pthread_timedjoin_np(a->thread, NULL, &ts);
        if (r != 0)
                return -r;
        a->thread_started = false;
        return 0;
}

void agent_done(struct agent *a) {
        if (a->thread_started)
                return; /* still running: nothing it uses may go */
        secret_set_done(&a->known);
        secret_set_done(&a->offered);
        secret_set_done(&a->fetched);
        a->event_fd = safe_close(a->event_fd);
        a->stop_fd = safe_close(a->stop_fd);
        a->renew_tfd = safe_close(a->renew_tfd);
        a->rotate_tfd = safe_close(a->rotate_tfd);
        (void) pthread_mutex_destroy(&a->lock);
        if (a->stack)
                (void) munmap(a->stack, a->stack_len);
        a->stack = NULL;
}

int agent_run(struct agent *a, struct secret_set *known) {
        a->renew_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        a->rotate_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (a->renew_tfd < 0 || a->rotate_tfd < 0)
                return negative_errno();
        if (known) {
                a->known = *known;
                *known = (struct secret_set){}; /* moved: one owner */
                a->have_known = true;
        }
        return start_thread(a, run_main);
}
