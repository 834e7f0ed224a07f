/* SPDX-License-Identifier: Apache-2.0 */
/* operator/vaultsession: see vaultsession.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/macro.h"
#include "operator/vaultsession.h"

struct vaultsession {
        struct vault_client *client;
        pthread_mutex_t client_lock; /* held while the client is in use */
        pthread_mutex_t state_lock;  /* the fields below */
        pthread_cond_t state_cond;   /* state changes, stop, relogin */
        char *addr, *jwt_path, *role, *mount, *probe_path, *sa_namespace, *sa_name;
        unsigned backoff_min_ms, backoff_max_ms;
        struct vaultsession_clock clock;
        pthread_t thread;
        bool started;

        bool logged_in, stopping, relogin;
        uint64_t expires_at_ms; /* 0: no expiry */
        uint64_t last_login_ms;
        struct vaultsession_status st;
};

static uint64_t default_now_ms(void *userdata) {
        struct timespec ts;
        (void) userdata;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static uint64_t now_ms(struct vaultsession *s) {
        return s->clock.now_ms ? s->clock.now_ms(s->clock.userdata) : default_now_ms(NULL);
}

static void deadline_in(struct timespec *ts, uint64_t ms) {
        (void) clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += (time_t) (ms / 1000);
        ts->tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* Waits ms or until stopped / asked to log in again. */
static void session_sleep(struct vaultsession *s, uint64_t ms) {
        if (s->clock.sleep_ms) {
                s->clock.sleep_ms(s->clock.userdata, ms);
                return;
        }
        struct timespec ts;
        deadline_in(&ts, ms);
        pthread_mutex_lock(&s->state_lock);
        while (!s->stopping && !s->relogin &&
               pthread_cond_timedwait(&s->state_cond, &s->state_lock, &ts) == 0)
                ;
        pthread_mutex_unlock(&s->state_lock);
}

static uint64_t jitter(uint64_t max) {
        uint64_t x = 0;
        if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t) sizeof(x))
                x = default_now_ms(NULL) * UINT64_C(6364136223846793005);
        return max ? x % (max + 1) : 0;
}

/* ---- the log text of a failure ---- */

static bool has(const struct vault_error *e, const char *needle) {
        return e && strstr(e->message, needle) != NULL;
}

static bool is_login_path(const struct vault_error *e) {
        size_t l = e ? strlen(e->path) : 0;
        return l >= 6 && strcmp(e->path + l - 6, "/login") == 0;
}

const char *vaultsession_explain(const struct vaultsession_context *ctx, int r,
                                 const struct vault_error *e, char *buf, size_t n) {
        const char *addr = ctx && ctx->addr ? ctx->addr : "the vault address";
        const char *mount = ctx && ctx->mount ? ctx->mount : VAULTSESSION_DEFAULT_MOUNT;
        const char *role = ctx && ctx->role ? ctx->role : VAULTSESSION_DEFAULT_ROLE;
        const char *ns = ctx && ctx->sa_namespace ? ctx->sa_namespace : "cloudtaser-system";
        const char *sa = ctx && ctx->sa_name ? ctx->sa_name : role;
        const char *jwt = ctx && ctx->jwt_path ? ctx->jwt_path : VAULTSESSION_DEFAULT_JWT_PATH;
        char fix[512] = "", cause[256];
        if (strncmp(mount, "auth/", 5) == 0)
                mount += 5;
        size_t ml = strlen(mount);
        while (ml > 0 && mount[ml - 1] == '/')
                ml--;
        int m = (int) MIN(ml, (size_t) 128);

        if (n == 0)
                return buf;
        if (!e) {
                (void) snprintf(buf, n,
                                "cannot read the service-account token %s: %s; fix: mount the "
                                "projected service-account token (automountServiceAccountToken: "
                                "true) or name the file with --vault-jwt-file",
                                jwt, r == -ENODATA ? "empty file" : strerror(-r));
                return buf;
        }
        if (r == -EINVAL && is_login_path(e) && has(e, "invalid role name")) {
                (void) snprintf(cause, sizeof(cause), "the role '%s' does not exist at auth/%.*s",
                                role, m, mount);
                (void) snprintf(fix, sizeof(fix),
                                "create it with `bao write auth/%.*s/role/%s "
                                "bound_service_account_names=%s "
                                "bound_service_account_namespaces=%s "
                                "token_policies=cloudtaser-operator token_ttl=1h` "
                                "(docs/operator.md)",
                                m, mount, role, sa, ns);
        } else if (r == -EACCES && is_login_path(e) &&
                   (has(e, "service account name not authorized") ||
                    has(e, "namespace not authorized"))) {
                (void) snprintf(cause, sizeof(cause),
                                "the role '%s' is not bound to this service account", role);
                (void) snprintf(fix, sizeof(fix),
                                "bind it with `bao write auth/%.*s/role/%s "
                                "bound_service_account_names=%s "
                                "bound_service_account_namespaces=%s ...`",
                                m, mount, role, sa, ns);
        } else if (r == -EACCES && is_login_path(e)) {
                (void) snprintf(cause, sizeof(cause), "the login was refused");
                (void) snprintf(fix, sizeof(fix),
                                "check the auth method's config (`bao read auth/%.*s/config`: "
                                "kubernetes_host, kubernetes_ca_cert, a reviewer allowed to create "
                                "TokenReviews), the role's audience, and that the service account "
                                "still exists",
                                m, mount);
        } else if ((r == -ENOENT || r == -EOPNOTSUPP) && is_login_path(e)) {
                (void) snprintf(cause, sizeof(cause), "no Kubernetes auth method at auth/%.*s", m,
                                mount);
                (void) snprintf(fix, sizeof(fix),
                                "enable it with `bao auth enable -path=%.*s kubernetes` and "
                                "configure it (`bao write auth/%.*s/config kubernetes_host=...`)",
                                m, mount, m, mount);
        } else if (r == -EACCES) {
                (void) snprintf(cause, sizeof(cause), "permission denied");
                (void) snprintf(fix, sizeof(fix),
                                "the policy is missing or too narrow: write it with `bao policy "
                                "write cloudtaser-operator cloudtaser-operator.hcl` (the HCL is in "
                                "docs/operator.md) and list it in the role's token_policies "
                                "(`bao write auth/%.*s/role/%s token_policies=cloudtaser-operator "
                                "...`)",
                                m, mount, role);
        } else if (r == -EAGAIN && has(e, "sealed")) {
                (void) snprintf(cause, sizeof(cause), "vault is sealed");
                (void) snprintf(fix, sizeof(fix), "unseal it (`bao operator unseal`)");
        } else if (r == -EAGAIN) {
                (void) snprintf(cause, sizeof(cause), "vault is not available (standby or busy)");
                (void) snprintf(fix, sizeof(fix),
                                "wait for an active node, or list the nodes' addresses with "
                                "--vault-peer-addresses");
        } else if (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ||
                   r == -ECONNRESET) {
                (void) snprintf(cause, sizeof(cause), "vault at %s is unreachable (%s)", addr,
                                vault_strerror(r));
                (void) snprintf(fix, sizeof(fix),
                                "check the address, that vault runs, and that network policies "
                                "let the operator reach it");
        } else if (r == -EPROTO) {
                (void) snprintf(cause, sizeof(cause),
                                "TLS with %s failed (certificate verification or handshake)", addr);
                (void) snprintf(fix, sizeof(fix),
                                "give the CA that signed vault's certificate (--vault-ca-file) and "
                                "check that the certificate names the host of the address");
        } else if (r == -EREMOTE) {
                (void) snprintf(cause, sizeof(cause), "vault redirected elsewhere");
                (void) snprintf(fix, sizeof(fix),
                                "list the other nodes' addresses with --vault-peer-addresses");
        } else if (r == -EMEDIUMTYPE) {
                (void) snprintf(cause, sizeof(cause), "the mount is not KV version 2");
                (void) snprintf(fix, sizeof(fix),
                                "enable KV v2 there (`bao secrets enable "
                                "-path=secret kv-v2`) or choose another mount");
        } else {
                (void) snprintf(cause, sizeof(cause), "%s", vault_strerror(r));
        }

        if (e->status || e->message[0])
                (void) snprintf(buf, n, "%s: %s (status %ld, path %s)%s%s", cause,
                                e->message[0] ? e->message : vault_strerror(r), e->status,
                                e->path[0] ? e->path : "-", fix[0] ? "; fix: " : "", fix);
        else
                (void) snprintf(buf, n, "%s%s%s", cause, fix[0] ? "; fix: " : "", fix);
        return buf;
}

/* ---- the session ---- */

static int dup_or(const char *s, const char *def, char **ret) {
        char *d = strdup(s && *s ? s : def);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int vaultsession_new(const struct vaultsession_options *o, struct vaultsession **ret) {
        if (!o || !o->vault || !ret)
                return -EINVAL;
        const char *role = o->role && *o->role ? o->role : VAULTSESSION_DEFAULT_ROLE;
        char mount[VAULT_PATH_MAX];
        /* "auth/kubernetes/" and "kubernetes" alike: the log lines and hints say auth/<mount>. */
        const char *m = o->mount && *o->mount ? o->mount : VAULTSESSION_DEFAULT_MOUNT;
        if (strncmp(m, "auth/", 5) == 0)
                m += 5;
        size_t ml = strnlen(m, sizeof(mount));
        while (ml > 0 && m[ml - 1] == '/')
                ml--;
        if (ml == 0 || ml >= sizeof(mount))
                return -EINVAL;
        memcpy(mount, m, ml);
        mount[ml] = '\0';
        if (!vault_path_valid(role) || strchr(role, '/') || !vault_path_valid(mount) ||
            (o->probe_path && !vault_path_valid(o->probe_path)))
                return -EINVAL;
        struct vaultsession *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int r = vault_client_new(o->vault, &s->client);
        if (r < 0) {
                free(s);
                return r;
        }
        if (pthread_mutex_init(&s->client_lock, NULL) != 0 ||
            pthread_mutex_init(&s->state_lock, NULL) != 0) {
                vault_client_free(s->client);
                free(s);
                return -ENOMEM;
        }
        pthread_condattr_t ca;
        (void) pthread_condattr_init(&ca);
        (void) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        (void) pthread_cond_init(&s->state_cond, &ca);
        (void) pthread_condattr_destroy(&ca);
        r = dup_or(o->vault->addr, "", &s->addr);
        if (r >= 0)
                r = dup_or(o->jwt_path, VAULTSESSION_DEFAULT_JWT_PATH, &s->jwt_path);
        if (r >= 0)
                r = dup_or(role, role, &s->role);
        if (r >= 0)
                r = dup_or(mount, mount, &s->mount);
        if (r >= 0 && o->probe_path)
                r = dup_or(o->probe_path, o->probe_path, &s->probe_path);
        if (r >= 0)
                r = dup_or(o->sa_namespace, "cloudtaser-system", &s->sa_namespace);
        if (r >= 0)
                r = dup_or(o->sa_name, role, &s->sa_name);
        if (r < 0) {
                vaultsession_free(s);
                return r;
        }
        s->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : VAULTSESSION_BACKOFF_MIN_MS;
        s->backoff_max_ms = MAX(o->backoff_max_ms ? o->backoff_max_ms : VAULTSESSION_BACKOFF_MAX_MS,
                                s->backoff_min_ms);
        s->clock = o->clock;
        *ret = s;
        return 0;
}

static void explain(struct vaultsession *s, int r, const struct vault_error *e, char *buf,
                    size_t n) {
        struct vaultsession_context ctx = {
                .addr = s->addr,
                .mount = s->mount,
                .role = s->role,
                .jwt_path = s->jwt_path,
                .sa_namespace = s->sa_namespace,
                .sa_name = s->sa_name,
        };
        (void) vaultsession_explain(&ctx, r, e, buf, n);
}

/* One login (and probe). On failure *cause holds the log text. */
static int login_once(struct vaultsession *s, struct vault_auth *auth, char *cause, size_t n) {
        _cleanup_buf_ struct buf jwt = BUF_INIT(VAULT_JWT_MAX, BUF_SECURE);
        struct vault_error e = {};
        int r = buf_read_file(&jwt, s->jwt_path);
        buf_rstrip(&jwt);
        if (r >= 0 && jwt.len == 0)
                r = -ENODATA;
        if (r < 0) {
                explain(s, r, NULL, cause, n);
                return r;
        }
        pthread_mutex_lock(&s->client_lock);
        r = vault_login_kubernetes(s->client, s->mount, s->role, jwt.data, jwt.len, auth, &e);
        if (r >= 0 && s->probe_path) {
                struct vault_kv_path p;
                r = vault_kv_resolve(s->client, s->probe_path, &p, &e);
                if (r >= 0 && p.version != VAULT_KV_V2) {
                        r = -EMEDIUMTYPE;
                        e = (struct vault_error){.error = r};
                        (void) snprintf(e.path, sizeof(e.path), "%s", p.mount);
                }
        }
        pthread_mutex_unlock(&s->client_lock);
        if (r < 0)
                explain(s, r, &e, cause, n);
        return r;
}

static bool stopping(struct vaultsession *s) {
        pthread_mutex_lock(&s->state_lock);
        bool x = s->stopping;
        pthread_mutex_unlock(&s->state_lock);
        return x;
}

/* When the next renewal (or login) is due after a lease: about 2/3 of it, with jitter. */
static uint64_t renew_delay_ms(int64_t lease_s) {
        uint64_t ms = (uint64_t) lease_s * 1000u * 2 / 3;
        ms -= jitter(ms / 10);
        return MAX(ms, (uint64_t) 500);
}

static void set_logged_in(struct vaultsession *s, const struct vault_auth *a, bool login) {
        uint64_t t = now_ms(s);
        pthread_mutex_lock(&s->state_lock);
        s->logged_in = true;
        s->expires_at_ms = a->lease_duration > 0 ? t + (uint64_t) a->lease_duration * 1000u : 0;
        s->st.failures = 0;
        s->st.last_error = 0;
        s->st.last_cause[0] = '\0';
        s->st.lease_s = a->lease_duration;
        if (login) {
                s->st.renewable = a->renewable;
                s->st.logins++;
                s->last_login_ms = t;
        } else
                s->st.renewals++;
        s->relogin = false;
        pthread_cond_broadcast(&s->state_cond);
        pthread_mutex_unlock(&s->state_lock);
}

/* Records a failed attempt; returns the wait before the next one. */
static uint64_t set_failed(struct vaultsession *s, int r, const char *cause, unsigned *attempt) {
        pthread_mutex_lock(&s->state_lock);
        unsigned k = s->st.failures++;
        *attempt = s->st.failures;
        s->st.last_error = r;
        (void) snprintf(s->st.last_cause, sizeof(s->st.last_cause), "%s", cause);
        pthread_cond_broadcast(&s->state_cond);
        pthread_mutex_unlock(&s->state_lock);
        uint64_t ms = (uint64_t) s->backoff_min_ms << MIN(k, 20u);
        return MIN(ms, (uint64_t) s->backoff_max_ms);
}

static void *session_main(void *userdata) {
        struct vaultsession *s = userdata;
        enum { DO_LOGIN, DO_RENEW } action = DO_LOGIN;
        int64_t login_lease = 0;
        char cause[VAULTSESSION_CAUSE_MAX];

        while (!stopping(s)) {
                struct vault_auth auth = {};
                uint64_t wait_ms;
                int r;

                pthread_mutex_lock(&s->state_lock);
                if (s->relogin)
                        action = DO_LOGIN;
                s->relogin = false;
                pthread_mutex_unlock(&s->state_lock);

                if (action == DO_RENEW) {
                        struct vault_error e = {};
                        pthread_mutex_lock(&s->client_lock);
                        r = vault_token_renew_self(s->client, 0, &auth, &e);
                        pthread_mutex_unlock(&s->client_lock);
                        if (r >= 0 && auth.lease_duration > 0 &&
                            auth.lease_duration * 3 >= login_lease) {
                                set_logged_in(s, &auth, false);
                                log_debug("vault token renewed: lease %" PRId64 " s",
                                          auth.lease_duration);
                                session_sleep(s, renew_delay_ms(auth.lease_duration));
                                continue;
                        }
                        if (r < 0) {
                                explain(s, r, &e, cause, sizeof(cause));
                                log_warning("vault token renewal failed: %s; logging in again",
                                            cause);
                        } else
                                log_info("vault token near its maximum TTL (lease %" PRId64
                                         " s); logging in again",
                                         auth.lease_duration);
                        action = DO_LOGIN;
                }

                r = login_once(s, &auth, cause, sizeof(cause));
                if (r >= 0) {
                        set_logged_in(s, &auth, true);
                        login_lease = auth.lease_duration;
                        log_info("logged in to vault at %s (auth/%s, role '%s'): lease %" PRId64
                                 " s, %s; ready",
                                 s->addr, s->mount, s->role, auth.lease_duration,
                                 auth.renewable ? "renewable" : "not renewable");
                        if (auth.lease_duration <= 0) {
                                session_sleep(s, UINT32_MAX); /* no expiry: until stop/relogin */
                                continue;
                        }
                        action = auth.renewable ? DO_RENEW : DO_LOGIN;
                        session_sleep(s, renew_delay_ms(auth.lease_duration));
                        continue;
                }
                unsigned attempt = 0;
                wait_ms = set_failed(s, r, cause, &attempt);
                log_warning("vault login attempt %u failed: %s; %s, retrying in %" PRIu64 " ms",
                            attempt, cause,
                            vaultsession_ready(s) ? "the current token stays in use" : "not ready",
                            wait_ms);
                session_sleep(s, wait_ms);
        }
        return NULL;
}

/* musl gives a new thread 128 KiB of stack; libcurl and wolfSSL's handshake need more (see
 * wrapper/agent.c). Only touched pages are used. */
#define SESSION_STACK_SIZE (8u * 1024u * 1024u)

int vaultsession_start(struct vaultsession *s) {
        if (s->started)
                return -EALREADY;
        pthread_attr_t attr;
        int r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        r = pthread_attr_setstacksize(&attr, SESSION_STACK_SIZE);
        if (r == 0)
                r = pthread_create(&s->thread, &attr, session_main, s);
        (void) pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        s->started = true;
        return 0;
}

struct vaultsession *vaultsession_free(struct vaultsession *s) {
        if (!s)
                return NULL;
        if (s->started) {
                pthread_mutex_lock(&s->state_lock);
                s->stopping = true;
                pthread_cond_broadcast(&s->state_cond);
                pthread_mutex_unlock(&s->state_lock);
                (void) pthread_join(s->thread, NULL);
        }
        vault_client_free(s->client);
        (void) pthread_mutex_destroy(&s->client_lock);
        (void) pthread_mutex_destroy(&s->state_lock);
        (void) pthread_cond_destroy(&s->state_cond);
        free(s->addr);
        free(s->jwt_path);
        free(s->role);
        free(s->mount);
        free(s->probe_path);
        free(s->sa_namespace);
        free(s->sa_name);
        free(s);
        return NULL;
}

static bool ready_locked(struct vaultsession *s) {
        return s->logged_in && (s->expires_at_ms == 0 || now_ms(s) < s->expires_at_ms);
}

bool vaultsession_ready(struct vaultsession *s) {
        pthread_mutex_lock(&s->state_lock);
        bool r = ready_locked(s);
        pthread_mutex_unlock(&s->state_lock);
        return r;
}

int vaultsession_wait_ready(struct vaultsession *s, unsigned timeout_ms) {
        struct timespec ts;
        int r = 0;
        deadline_in(&ts, timeout_ms);
        pthread_mutex_lock(&s->state_lock);
        while (!ready_locked(s) && !s->stopping && r == 0)
                r = pthread_cond_timedwait(&s->state_cond, &s->state_lock, &ts);
        bool ready = ready_locked(s), stop = s->stopping;
        pthread_mutex_unlock(&s->state_lock);
        return ready ? 0 : stop ? -ECANCELED : -ETIMEDOUT;
}

void vaultsession_status(struct vaultsession *s, struct vaultsession_status *ret) {
        pthread_mutex_lock(&s->state_lock);
        *ret = s->st;
        ret->ready = ready_locked(s);
        pthread_mutex_unlock(&s->state_lock);
}

int vaultsession_borrow(struct vaultsession *s, struct vault_client **ret) {
        if (!vaultsession_ready(s))
                return -EAGAIN;
        pthread_mutex_lock(&s->client_lock);
        *ret = s->client;
        return 0;
}

void vaultsession_return(struct vaultsession *s) {
        pthread_mutex_unlock(&s->client_lock);
}

bool vaultsession_relogin(struct vaultsession *s) {
        bool asked = false;
        pthread_mutex_lock(&s->state_lock);
        if (s->logged_in && now_ms(s) >= s->last_login_ms + VAULTSESSION_RELOGIN_MIN_INTERVAL_MS) {
                s->relogin = true;
                s->last_login_ms = now_ms(s); /* one per interval, even if this login fails */
                asked = true;
                pthread_cond_broadcast(&s->state_cond);
        }
        pthread_mutex_unlock(&s->state_lock);
        return asked;
}
