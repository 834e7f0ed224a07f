/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/vaultsession: the failure texts (table), and the session thread
 * against the stand-in vault with a test clock that holds the thread in every sleep until the
 * test lets it go, so each step (attempt, backoff, renewal, login) is checked one at a time and
 * nothing depends on the machine's speed. The same contracts on the real OpenBao:
 * tests/e2e/test-real-credstore.sh. */
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
#include "common/log.h"
#include "common/macro.h"
#include "operator/vaultsession.h"
#include "tests/lib/standin.h"
#include "tests/lib/testfile.h"
#include "tests/tap.h"

/* ---- the failure texts ---- */

static void test_explain(void) {
        static const struct {
                int r;
                long status;
                const char *path, *message;
                const char *want[3];
        } cases[] = {
                {-EINVAL,
                 400,
                 "auth/kubernetes/login",
                 "invalid role name \"cloudtaser-operator\"",
                 {"the role 'cloudtaser-operator' does not exist at auth/kubernetes",
                  "fix: create it with `bao write auth/kubernetes/role/cloudtaser-operator "
                  "bound_service_account_names=cloudtaser-operator "
                  "bound_service_account_namespaces=cloudtaser-system",
                  "(status 400, path auth/kubernetes/login)"}},
                {-EACCES,
                 403,
                 "auth/kubernetes/login",
                 "service account name not authorized",
                 {"is not bound to this service account", "bound_service_account_names", NULL}},
                {-EACCES,
                 403,
                 "auth/kubernetes/login",
                 "namespace not authorized",
                 {"is not bound to this service account", NULL, NULL}},
                {-EACCES,
                 403,
                 "auth/kubernetes/login",
                 "permission denied",
                 {"the login was refused", "bao read auth/kubernetes/config", NULL}},
                {-ENOENT,
                 404,
                 "auth/kubernetes/login",
                 "no handler for route",
                 {"no Kubernetes auth method at auth/kubernetes",
                  "bao auth enable -path=kubernetes kubernetes", NULL}},
                {-EACCES,
                 403,
                 "sys/internal/ui/mounts/secret/cloudtaser/system",
                 "preflight capability check returned 403",
                 {"permission denied", "bao policy write cloudtaser-operator",
                  "token_policies=cloudtaser-operator"}},
                {-EACCES,
                 403,
                 "secret/data/cloudtaser/system/webhook-tls",
                 "1 error occurred:  * permission denied  ",
                 {"the policy is missing", NULL, NULL}},
                {-EAGAIN,
                 503,
                 "auth/kubernetes/login",
                 "Vault is sealed",
                 {"vault is sealed: Vault is sealed", "fix: unseal it (`bao operator unseal`)",
                  NULL}},
                {-EAGAIN,
                 412,
                 "auth/kubernetes/login",
                 "required index state not present",
                 {"not available", "--vault-peer-addresses", NULL}},
                {-ECONNREFUSED,
                 0,
                 "auth/kubernetes/login",
                 "Couldn't connect to server",
                 {"vault at https://vault.example:8200 is unreachable (connection refused)",
                  "fix: check the address", NULL}},
                {-EPROTO,
                 0,
                 "auth/kubernetes/login",
                 "SSL peer certificate or SSH remote key was not OK",
                 {"TLS with https://vault.example:8200 failed", "--vault-ca-file", NULL}},
                {-EREMOTE,
                 307,
                 "auth/kubernetes/login",
                 "redirect to https://other:8200 not followed",
                 {"redirected", "--vault-peer-addresses", NULL}},
        };
        struct vaultsession_context ctx = {.addr = "https://vault.example:8200"};
        char buf[VAULTSESSION_CAUSE_MAX];
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct vault_error e = {.error = cases[i].r, .status = cases[i].status};
                (void) snprintf(e.path, sizeof(e.path), "%s", cases[i].path);
                (void) snprintf(e.message, sizeof(e.message), "%s", cases[i].message);
                vaultsession_explain(&ctx, cases[i].r, &e, buf, sizeof(buf));
                bool all = true;
                for (size_t j = 0; j < 3; j++)
                        if (cases[i].want[j] && !strstr(buf, cases[i].want[j]))
                                all = false;
                ok(all && strchr(buf, '\n') == NULL, "explain %s %ld: %s", cases[i].path,
                   cases[i].status, buf);
        }
        vaultsession_explain(&ctx, -ENOENT, NULL, buf, sizeof(buf));
        ok(strstr(buf, "cannot read the service-account token "
                       "/var/run/secrets/kubernetes.io/serviceaccount/token: No such file") &&
                   strstr(buf, "automountServiceAccountToken"),
           "a JWT file that is missing: %s", buf);
        vaultsession_explain(&ctx, -ENODATA, NULL, buf, sizeof(buf));
        ok(strstr(buf, "empty file") != NULL, "an empty JWT file: %s", buf);
        struct vaultsession_context named = {
                .mount = "auth/k8s-prod/", .role = "op", .sa_namespace = "ops", .sa_name = "ct"};
        struct vault_error e = {.error = -EINVAL, .status = 400};
        (void) snprintf(e.path, sizeof(e.path), "auth/k8s-prod/login");
        (void) snprintf(e.message, sizeof(e.message), "invalid role name \"op\"");
        vaultsession_explain(&named, -EINVAL, &e, buf, sizeof(buf));
        ok(strstr(buf, "`bao write auth/k8s-prod/role/op bound_service_account_names=ct "
                       "bound_service_account_namespaces=ops") != NULL,
           "the fix names the mount (without auth/ and '/'), role, namespace and account: %s", buf);
        char small[16];
        vaultsession_explain(&named, -EINVAL, &e, small, sizeof(small));
        ok(strlen(small) == sizeof(small) - 1, "a short buffer gets a cut, terminated text");
}

/* ---- a clock that holds the session thread in each sleep ---- */

struct tclock {
        pthread_mutex_t m;
        pthread_cond_t c;
        uint64_t now;
        unsigned sleeps, released;
        uint64_t last_ms;
        bool stop;
};

static uint64_t t_now(void *u) {
        struct tclock *t = u;
        pthread_mutex_lock(&t->m);
        uint64_t x = t->now;
        pthread_mutex_unlock(&t->m);
        return x;
}

static void t_sleep(void *u, uint64_t ms) {
        struct tclock *t = u;
        pthread_mutex_lock(&t->m);
        unsigned me = ++t->sleeps;
        t->last_ms = ms;
        pthread_cond_broadcast(&t->c);
        while (!t->stop && t->released < me)
                pthread_cond_wait(&t->c, &t->m);
        t->now += ms;
        pthread_mutex_unlock(&t->m);
}

static void t_init(struct tclock *t) {
        *t = (struct tclock){.now = 5000000};
        (void) pthread_mutex_init(&t->m, NULL);
        (void) pthread_cond_init(&t->c, NULL);
}

/* Waits (real time, a generous 60 s) until the thread sleeps for the n-th time: its ms, or 0. */
static uint64_t t_wait(struct tclock *t, unsigned n) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 60;
        pthread_mutex_lock(&t->m);
        while (t->sleeps < n && pthread_cond_timedwait(&t->c, &t->m, &ts) == 0)
                ;
        uint64_t ms = t->sleeps >= n ? t->last_ms : 0;
        pthread_mutex_unlock(&t->m);
        return ms;
}

/* Lets the current sleep end and waits for the next one. */
static uint64_t t_step(struct tclock *t) {
        pthread_mutex_lock(&t->m);
        unsigned n = ++t->released;
        pthread_cond_broadcast(&t->c);
        pthread_mutex_unlock(&t->m);
        return t_wait(t, n + 1);
}

static void t_advance(struct tclock *t, uint64_t ms) {
        pthread_mutex_lock(&t->m);
        t->now += ms;
        pthread_mutex_unlock(&t->m);
}

static void t_stop(struct tclock *t) {
        pthread_mutex_lock(&t->m);
        t->stop = true;
        pthread_cond_broadcast(&t->c);
        pthread_mutex_unlock(&t->m);
}

/* ---- the session against the stand-in ---- */

static const char config[] =
        "{\"namespaces\":[\"team-a\",\"team-b\"],"
        "\"mounts\":[{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}},"
        "{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"},\"namespace\":"
        "\"team-a\"},"
        "{\"path\":\"kv\",\"type\":\"kv\",\"options\":{\"version\":\"1\"}}],"
        "\"auth\":[{\"path\":\"kubernetes\",\"type\":\"kubernetes\",\"roles\":{"
        "\"cloudtaser-operator\":{\"bound_service_account_names\":[\"cloudtaser-operator\"],"
        "\"bound_service_account_namespaces\":[\"cloudtaser-system\"],"
        "\"token_policies\":[\"op\"],\"token_ttl\":60,\"token_max_ttl\":90},"
        "\"nopolicy\":{\"bound_service_account_names\":[\"cloudtaser-operator\"],"
        "\"bound_service_account_namespaces\":[\"cloudtaser-system\"],\"token_ttl\":60}}},"
        "{\"path\":\"kubernetes\",\"namespace\":\"team-a\",\"type\":\"kubernetes\",\"roles\":{"
        "\"cloudtaser-operator\":{\"bound_service_account_names\":[\"cloudtaser-operator\"],"
        "\"bound_service_account_namespaces\":[\"cloudtaser-system\"],"
        "\"token_policies\":[\"ns-op\"],\"token_ttl\":60}}}],"
        "\"namespace_policies\":{\"team-a\":{\"ns-op\":\"path "
        "\\\"secret/data/cloudtaser/system/*\\\" { capabilities = [\\\"read\\\"] }\"}},"
        "\"policies\":{\"op\":\"path \\\"secret/data/cloudtaser/system/*\\\" { capabilities = "
        "[\\\"create\\\", \\\"read\\\", \\\"update\\\"] }\\npath \\\"kv/cloudtaser/*\\\" { "
        "capabilities = [\\\"read\\\"] }\\npath \\\"secret/metadata/cloudtaser/system/*\\\" { "
        "capabilities = [\\\"read\\\"] }\\n\"}}";

struct env {
        struct standin *s;
        char jwt_path[512], other_jwt[8192], good_jwt[8192];
        char log_path[512];
        int log_fd;
        char *addr2;
};

struct vault_client_check {
        int r;
        struct vault_token_info ti;
        struct vault_error e;
};

/* The log written so far (then emptied). */
static char *take_log(struct env *v) {
        struct buf b = BUF_INIT(1 << 20, 0);
        char *p = NULL;
        size_t n = 0;
        (void) buf_read_file(&b, v->log_path);
        if (buf_steal(&b, &p, &n) < 0)
                p = NULL;
        if (ftruncate(v->log_fd, 0) < 0)
                diag("cannot truncate the log");
        (void) lseek(v->log_fd, 0, SEEK_SET);
        return p;
}

static size_t count_str(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static int control(struct env *v, const char *method, const char *path, const char *body) {
        int status = 0;
        int r = standin_control(v->s, method, path, body, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}

static struct vaultsession *session(struct env *v, struct tclock *t, const char *role,
                                    const char *peers, const char *ns, struct vault_options *vo) {
        *vo = (struct vault_options){.addr = v->s->addr,
                                     .ca_file = v->s->ca_path,
                                     .peer_addrs = peers,
                                     .namespace_ = ns};
        struct vaultsession_options o = {
                .vault = vo,
                .jwt_path = v->jwt_path,
                .role = role,
                .probe_path = "secret/cloudtaser/system",
                .clock = {.now_ms = t_now, .sleep_ms = t_sleep, .userdata = t},
        };
        struct vaultsession *s = NULL;
        return vaultsession_new(&o, &s) < 0 ? NULL : s;
}

static void stop_session(struct tclock *t, struct vaultsession *s) {
        t_stop(t);
        vaultsession_free(s);
}

static bool within(uint64_t ms, uint64_t lo, uint64_t hi) {
        return ms >= lo && ms <= hi;
}

static void test_lifecycle(struct env *v) {
        struct tclock t;
        struct vault_options vo;
        struct vaultsession_status st;
        struct vault_client *c = NULL;
        char *log;
        t_init(&t);
        struct vaultsession *s = session(v, &t, NULL, NULL, NULL, &vo);
        ok(s != NULL, "a session with the default role and mount");
        if (!s)
                return;
        free(take_log(v));

        /* Sealed at the start: one line per attempt, 1 s doubling to 30 s, not ready. */
        is_int(control(v, "POST", "/_standin/seal", "{}"), 0, "stand-in: sealed");
        is_int(vaultsession_start(s), 0, "started");
        is_int(vaultsession_start(s), -EALREADY, "a second start is -EALREADY");
        static const uint64_t backoff[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
        uint64_t ms = t_wait(&t, 1);
        for (size_t i = 0; i < ELEMENTSOF(backoff); i++) {
                if (i > 0)
                        ms = t_step(&t);
                vaultsession_status(s, &st);
                ok(ms == backoff[i] && !st.ready && st.failures == i + 1 &&
                           st.last_error == -EAGAIN && strstr(st.last_cause, "vault is sealed") &&
                           strstr(st.last_cause, "unseal it"),
                   "sealed, attempt %zu: waits %llu ms, not ready (%s)", i + 1,
                   (unsigned long long) ms, st.last_cause);
        }
        ok(!vaultsession_ready(s) && vaultsession_borrow(s, &c) == -EAGAIN,
           "not ready: the client is not lent");
        is_int(vaultsession_wait_ready(s, 50), -ETIMEDOUT, "wait_ready times out meanwhile");
        log = take_log(v);
        bool each = log && count_str(log, "vault login attempt ") == ELEMENTSOF(backoff) &&
                    count_str(log, "vault is sealed") == ELEMENTSOF(backoff);
        for (size_t i = 0; i < ELEMENTSOF(backoff); i++) {
                char want[64];
                (void) snprintf(want, sizeof(want), "vault login attempt %zu failed: ", i + 1);
                each = each && count_str(log, want) == 1;
        }
        ok(each && count_str(log, "\n") == ELEMENTSOF(backoff),
           "exactly one log line per attempt, each naming the cause");
        free(log);

        /* Unsealed: the next attempt logs in; the renewal is due at about 2/3 of 60 s. */
        is_int(control(v, "POST", "/_standin/unseal", "{}"), 0, "stand-in: unsealed");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        ok(st.ready && st.logins == 1 && st.failures == 0 && st.lease_s == 60 && st.renewable &&
                   within(ms, 36000, 40000),
           "logged in: ready, renewal in %llu ms (2/3 of 60 s, less jitter)",
           (unsigned long long) ms);
        is_int(vaultsession_wait_ready(s, 1000), 0, "wait_ready returns at once");
        if (vaultsession_borrow(s, &c) == 0) {
                struct vault_token_info ti;
                struct vault_error e;
                ok(vault_token_lookup_self(c, &ti, &e) == 0 && strstr(ti.policies, "op"),
                   "the lent client has the operator's token (policies %s)", ti.policies);
                vaultsession_return(s);
        } else
                ok(false, "the client is lent once ready");
        log = take_log(v);
        ok(log && strstr(log, "logged in to vault at https://127.0.0.1:") &&
                   strstr(log, "role 'cloudtaser-operator'") && strstr(log, "ready"),
           "the login is logged");
        free(log);

        /* Renewal: 40 s later on the server the lease is capped at 90 - 40 = 50 s. */
        is_int(control(v, "POST", "/_standin/clock", "{\"advance_seconds\":40}"), 0, "+40 s");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        /* (The stand-in's clock also runs in real time: a second may have passed.) */
        ok(st.renewals == 1 && st.logins == 1 && st.lease_s >= 45 && st.lease_s <= 50 &&
                   within(ms, (uint64_t) st.lease_s * 600, (uint64_t) st.lease_s * 667),
           "renewed: lease %lld s, the next renewal in %llu ms", (long long) st.lease_s,
           (unsigned long long) ms);
        /* 80 s: the renewal gives 10 s, under a third of the 60 s of the login: log in again. */
        is_int(control(v, "POST", "/_standin/clock", "{\"advance_seconds\":40}"), 0, "+40 s");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        log = take_log(v);
        ok(st.logins == 2 && st.lease_s == 60 && within(ms, 36000, 40000) && log &&
                   strstr(log, "near its maximum TTL (lease ") &&
                   strstr(log, " s); logging in again"),
           "a renewal capped by the max TTL: logged in again (logins %llu)",
           (unsigned long long) st.logins);
        free(log);

        /* A failed renewal: log in again at once. (More 403s than the client's grace for a fresh
         * token retries: the stand-in's login was a moment ago in real time.) */
        is_int(control(v, "POST", "/_standin/fault",
                       "{\"match\":\"auth/token/renew-self\",\"status\":403,\"count\":10}"),
               0, "stand-in: 403s on renew-self");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        log = take_log(v);
        ok(st.logins == 3 && st.ready && log && strstr(log, "vault token renewal failed: ") &&
                   strstr(log, "logging in again") && !strstr(log, "login attempt"),
           "a refused renewal: logged in again, no failed attempt");
        free(log);
        (void) control(v, "DELETE", "/_standin/fault", NULL);

        /* HA: a fresh token's 412s and 403s are retried inside one attempt. */
        ok(!vaultsession_relogin(s), "no relogin asked within 30 s of a login");
        is_int(control(v, "POST", "/_standin/ha", "{\"index_412\":3}"), 0, "stand-in: 412 x 3");
        t_advance(&t, VAULTSESSION_RELOGIN_MIN_INTERVAL_MS);
        ok(vaultsession_relogin(s), "a relogin asked 30 s later");
        ok(!vaultsession_relogin(s), "and not a second one right after");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        ok(st.logins == 4 && st.failures == 0 && st.ready,
           "login and probe through three 412s: no failed attempt (logins %llu, %s)",
           (unsigned long long) st.logins, st.last_cause);
        is_int(control(v, "POST", "/_standin/ha", "{\"reset\":true,\"mount_403\":2}"), 0,
               "stand-in: a fresh token's 403 x 2");
        t_advance(&t, VAULTSESSION_RELOGIN_MIN_INTERVAL_MS);
        ok(vaultsession_relogin(s), "relogin");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        ok(st.logins == 5 && st.failures == 0 && st.ready,
           "the probe through two 403s of a fresh token: no failed attempt (%s)", st.last_cause);
        (void) control(v, "POST", "/_standin/ha", "{\"reset\":true}");

        /* The JWT is re-read at every login: another service account's is refused. */
        is_int(test_write_text(v->jwt_path, v->other_jwt, 0600), 0,
               "the JWT file now holds another account's");
        t_advance(&t, VAULTSESSION_RELOGIN_MIN_INTERVAL_MS);
        ok(vaultsession_relogin(s), "relogin");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        ok(ms == 1000 && st.failures == 1 &&
                   strstr(st.last_cause, "is not bound to this service account"),
           "the new file was read: refused (%s)", st.last_cause);
        is_int(test_write_text(v->jwt_path, v->good_jwt, 0600), 0, "the right JWT back");
        ms = t_step(&t);
        vaultsession_status(s, &st);
        ok(st.logins == 6 && st.failures == 0, "the next attempt logs in");
        free(take_log(v));

        /* Sealed while running: renewal and logins fail; not ready once the lease ran out. */
        is_int(control(v, "POST", "/_standin/seal", "{}"), 0, "stand-in: sealed");
        unsigned steps = 0;
        bool was_ready_first = false;
        for (; steps < 10; steps++) {
                ms = t_step(&t);
                if (steps == 0)
                        was_ready_first = vaultsession_ready(s);
                if (!vaultsession_ready(s))
                        break;
        }
        (void) ms;
        vaultsession_status(s, &st);
        ok(was_ready_first && !st.ready && st.failures >= 2 && st.last_error == -EAGAIN,
           "ready while the token lasts, not ready after (%u attempts)", st.failures);
        log = take_log(v);
        ok(log && strstr(log, "vault token renewal failed: vault is sealed") &&
                   count_str(log, "vault login attempt ") == st.failures,
           "the failed renewal and each attempt logged once");
        free(log);
        is_int(control(v, "POST", "/_standin/unseal", "{}"), 0, "stand-in: unsealed");
        ms = t_step(&t);
        ok(vaultsession_ready(s), "ready again after the next attempt");
        stop_session(&t, s);
}

static void test_failures(struct env *v) {
        static const struct {
                const char *role, *jwt, *want;
        } cases[] = {
                {"nope", NULL, "create it with `bao write auth/kubernetes/role/nope "},
                {"nopolicy", NULL, "bao policy write cloudtaser-operator"},
                {NULL, "/nonexistent/token", "cannot read the service-account token"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct tclock t;
                struct vault_options vo;
                struct vaultsession_status st;
                char saved[512];
                t_init(&t);
                (void) snprintf(saved, sizeof(saved), "%s", v->jwt_path);
                if (cases[i].jwt)
                        (void) snprintf(v->jwt_path, sizeof(v->jwt_path), "%s", cases[i].jwt);
                struct vaultsession *s = session(v, &t, cases[i].role, NULL, NULL, &vo);
                (void) snprintf(v->jwt_path, sizeof(v->jwt_path), "%s", saved);
                if (!s || vaultsession_start(s) < 0) {
                        ok(false, "session %zu", i);
                        vaultsession_free(s);
                        continue;
                }
                uint64_t ms = t_wait(&t, 1);
                ms = ms == 1000 ? t_step(&t) : 0;
                vaultsession_status(s, &st);
                char *log = take_log(v);
                ok(ms == 2000 && !st.ready && strstr(st.last_cause, cases[i].want) && log &&
                           count_str(log, cases[i].want) == 2,
                   "%s: not ready, retried, each line names the fix (%s)",
                   cases[i].role ? cases[i].role : cases[i].jwt, st.last_cause);
                free(log);
                stop_session(&t, s);
        }
}

/* A session's first attempt: its status then (and the session stopped). */
static bool first_attempt(struct env *v, const char *peers, const char *ns,
                          struct vaultsession_status *st, struct vault_client_check *check) {
        struct tclock t;
        struct vault_options vo;
        t_init(&t);
        struct vaultsession *s = session(v, &t, NULL, peers, ns, &vo);
        bool started = s && vaultsession_start(s) == 0 && t_wait(&t, 1) > 0;
        if (started) {
                vaultsession_status(s, st);
                struct vault_client *c = NULL;
                if (check && vaultsession_borrow(s, &c) == 0) {
                        check->r = vault_token_lookup_self(c, &check->ti, &check->e);
                        vaultsession_return(s);
                }
        }
        stop_session(&t, s);
        free(take_log(v));
        return started;
}

static void test_redirect(struct env *v) {
        struct vaultsession_status st = {};
        const char *knob = "{\"redirect\":{\"to\":1,\"count\":1}}";

        is_int(control(v, "POST", "/_standin/ha", knob), 0,
               "stand-in: one 307 to the second listener");
        ok(first_attempt(v, NULL, NULL, &st, NULL) && !st.ready && st.last_error == -EREMOTE &&
                   strstr(st.last_cause, "--vault-peer-addresses"),
           "a 307 to an address not configured: not followed, the fix named (%s)", st.last_cause);
        is_int(control(v, "POST", "/_standin/ha", knob), 0,
               "stand-in: one 307 to the second listener");
        ok(first_attempt(v, v->addr2, NULL, &st, NULL) && st.ready && st.logins == 1 &&
                   st.failures == 0,
           "with the listener as a peer address: logged in through the 307");
        (void) control(v, "POST", "/_standin/ha", "{\"reset\":true}");
}

/* X-Vault-Namespace: the login, the probe and the lent client are inside the namespace. */
static void test_namespace(struct env *v) {
        struct vaultsession_status st = {};
        struct vault_client_check check = {.r = -1};
        ok(first_attempt(v, NULL, "team-a", &st, &check) && st.ready && check.r == 0 &&
                   strstr(check.ti.policies, "ns-op") && !strstr(check.ti.policies, ",op"),
           "in the vault namespace team-a: logged in with its role and policies [%s]",
           check.ti.policies);
        ok(first_attempt(v, NULL, "team-b", &st, NULL) && !st.ready,
           "in a namespace without the auth method: not ready (%s)", st.last_cause);
}

int main(void) {
        struct env v = {.log_fd = -1};
        char *jwt = NULL, *body = NULL;
        int status = 0;

        test_explain();

        int r = standin_start(config, &v.s);
        if (r < 0) {
                ok(false, "stand-in vault starts (%d)", r);
                return tap_done();
        }
        (void) snprintf(v.jwt_path, sizeof(v.jwt_path), "%s/sa-token", v.s->dir);
        (void) snprintf(v.log_path, sizeof(v.log_path), "%s/operator.log", v.s->dir);
        r = standin_make_jwt(v.s, "cloudtaser-system", "cloudtaser-operator", NULL, 3600, &jwt);
        if (r >= 0) {
                (void) snprintf(v.good_jwt, sizeof(v.good_jwt), "%s\n", jwt);
                free(jwt);
                jwt = NULL;
                r = standin_make_jwt(v.s, "other", "intruder", NULL, 3600, &jwt);
        }
        if (r >= 0) {
                (void) snprintf(v.other_jwt, sizeof(v.other_jwt), "%s", jwt);
                free(jwt);
                r = test_write_text(v.jwt_path, v.good_jwt, 0600);
        }
        if (r >= 0)
                r = standin_control(v.s, "POST", "/_standin/listener", "{}", &status, &body);
        if (r >= 0)
                r = standin_json_str(body, "addr", &v.addr2);
        free(body);
        v.log_fd = open(v.log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok(r >= 0 && v.log_fd >= 0, "JWTs, a second listener, a log file");
        if (r >= 0 && v.log_fd >= 0) {
                log_setup("test-operator-vaultsession", LOG_FORMAT_TEXT, LOG_INFO);
                log_set_fd(v.log_fd);
                test_lifecycle(&v);
                test_failures(&v);
                test_redirect(&v);
                test_namespace(&v);
                log_set_fd(2);
        }
        if (v.log_fd >= 0)
                (void) close(v.log_fd);
        free(v.addr2);
        standin_stop(v.s);
        return tap_done();
}
