/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for operator/handlers' webhook with the lookup pool (issue 11, item 12): a real
 * common/httpd server with handlers_webhook on 127.0.0.1:0, a registry that accepts and never
 * answers. A pod with a command, or whose image is cached, is answered on the loop while a
 * lookup hangs; a review that needs a lookup is parked and denied at its deadline saying the
 * lookup was late; a namespace over its share of the queue, and a review over the bodies'
 * budget, are denied at once saying the lookups are busy. An image cached only under a pull
 * secret's credential is answered on the loop for the pods that hold it, and only for them.
 * Waits are on counters with generous
 * bounds; the only timing is the parked review's deadline, which the test waits for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/macro.h"
#include "operator/handlers.h"
#include "operator/registry/internal.h"
#include "tests/tap.h"

static uint64_t mono_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int tcp_listen(int *ret_port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &al) < 0) {
                if (fd >= 0)
                        (void) close(fd);
                return -1;
        }
        *ret_port = ntohs(a.sin_port);
        return fd;
}

static int tcp_connect(int port) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t) port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                (void) close(fd);
                return -1;
        }
        return fd;
}

/* Sends one review (Connection: close) of a pod in ns with one container and spec_extra (spec
 * fields and a comma, or ""); the connection's fd (read_answer() reads the answer), or -1. */
static int send_review_spec(int port, const char *ns, const char *spec_extra,
                            const char *container) {
        static unsigned n;
        char body[2048], req[4096];
        int len = snprintf(
                body, sizeof(body),
                "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                "\"request\":{\"uid\":\"u%u\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                "\"kind\":\"Pod\"},\"namespace\":\"%s\",\"operation\":\"CREATE\",\"dryRun\":true,"
                "\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%u\","
                "\"namespace\":\"%s\",\"annotations\":{\"cloudtaser.io/inject\":\"true\","
                "\"cloudtaser.io/vault-role\":\"app\","
                "\"cloudtaser.io/secret-paths\":\"secret/data/app/db\"}},"
                "\"spec\":{%s\"containers\":[%s]}}}}",
                n, ns, n, ns, spec_extra, container);
        n++;
        int rl = snprintf(req, sizeof(req),
                          "POST /mutate-v1-pod HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                          len, body);
        int fd = tcp_connect(port);
        if (fd >= 0 && send(fd, req, (size_t) rl, MSG_NOSIGNAL) != rl) {
                (void) close(fd);
                return -1;
        }
        return fd;
}

static int send_review(int port, const char *ns, const char *container) {
        return send_review_spec(port, ns, "", container);
}

/* Reads an answer until EOF (at most timeout_ms); closes fd. */
static void read_answer(int fd, char *out, size_t max, unsigned timeout_ms) {
        size_t got = 0;
        uint64_t t0 = mono_ms();
        out[0] = '\0';
        while (fd >= 0 && got < max - 1) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                uint64_t el = mono_ms() - t0;
                if (el >= timeout_ms || poll(&p, 1, (int) (timeout_ms - el)) <= 0)
                        break;
                ssize_t r = recv(fd, out + got, max - 1 - got, 0);
                if (r <= 0)
                        break;
                got += (size_t) r;
                out[got] = '\0';
        }
        if (fd >= 0)
                (void) close(fd);
}

/* Waits (30 s) until the server's counters reach: parked now, deadline answers. */
static bool wait_parked(struct httpd *h, uint64_t active, uint64_t timeouts) {
        uint64_t t0 = mono_ms();
        for (;;) {
                struct httpd_stats st;
                httpd_get_stats(h, &st);
                if (st.deferred_active == active && st.deferred_timeouts == timeouts)
                        return true;
                if (mono_ms() - t0 > 30000)
                        return false;
                (void) usleep(5000);
        }
}

static bool wait_pool(struct lookuppool *p, unsigned queued, unsigned running) {
        uint64_t t0 = mono_ms();
        for (;;) {
                struct lookuppool_stats st;
                lookuppool_get_stats(p, &st);
                if (st.queued == queued && st.running == running)
                        return true;
                if (mono_ms() - t0 > 30000)
                        return false;
                (void) usleep(5000);
        }
}

static void *loop_main(void *h) {
        (void) httpd_run(h);
        return NULL;
}

/* The state both tests start from: the admission with handlers_lookup, parked reviews answered
 * at deadline_ms. */
static void state_init(struct operator_state *st, unsigned deadline_ms) {
        st->adm = (struct admission_config){.init_image = "registry.example/cloudtaser/init:1",
                                            .default_vault_address = "https://vault.example:8200",
                                            .lookup = handlers_lookup,
                                            .lookup_userdata = st};
        st->node_arch = "amd64";
        st->lookup_deadline_ms = deadline_ms;
}

/* The webhook on 127.0.0.1:0, its loop on a thread: true when it serves. */
static bool serve(struct operator_state *st, struct httpd **h, pthread_t *loop) {
        if (httpd_new(&(struct httpd_options){.address = "127.0.0.1:0",
                                              .handler = handlers_webhook,
                                              .userdata = st,
                                              .stop_timeout_ms = 2000},
                      h) < 0)
                return false;
        if (pthread_create(loop, NULL, loop_main, *h) != 0) {
                *h = httpd_free(*h);
                return false;
        }
        st->webhook = *h;
        return true;
}

#define COMMAND_POD "{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/app\"]}"

static uint64_t fake_now = 1000000;
static uint64_t fake_clock(void *u) {
        (void) u;
        return fake_now;
}

/*
 * The loop's cache-only pass with the pod's own pull secrets (issue 11, item 12): an image whose
 * result is cached only under a pull secret's credential is answered on the loop for a pod
 * whose imagePullSecrets hold that credential (as a worker last read them), and for no other:
 * the same secret name in another tenant's namespace (holding another password), a namespace
 * whose secret was never read, the pod without the secret or naming another one, the secret
 * past its TTL: all go to the pool, whose lookup (a registry that refuses connections) fails,
 * so none of them sees the cached entrypoint.
 */
static void test_pull_secret_credentials(void) {
        struct operator_state st = {};
        struct httpd *h = NULL;
        pthread_t loop;
        char out[16384], image[160], key[400], alice[256], guess[256], container[256];
        int rport = 0, lfd = tcp_listen(&rport);

        if (lfd >= 0)
                (void) close(lfd); /* nobody listens there: lookups fail at once */
        state_init(&st, 30000);
        if (!ok(lfd >= 0 &&
                        registry_client_new(&(struct registry_options){.timeout_ms = 30000},
                                            &st.registry) == 0 &&
                        pullsecrets_new(
                                &(struct pullsecrets_options){.ttl_s = 60, .now_usec = fake_clock},
                                &st.pull_secrets) == 0 &&
                        lookuppool_new(&(struct lookuppool_options){.workers = 1, .max_jobs = 8},
                                       &st.lookups) == 0 &&
                        serve(&st, &h, &loop),
                "pull secrets: a registry that refuses, the pull secrets' cache, a pool, the "
                "webhook"))
                return;
        int port = httpd_port(h);

        /* The result of a worker's lookup with alice's credential, and what the workers read:
         * team-a's regcred holds it; team-b has a secret of the same name with a guess. */
        struct registry_ref ref;
        char scope[33];
        (void) snprintf(image, sizeof(image), "127.0.0.1:%d/team-a/private", rport);
        (void) registry_parse_reference(image, &ref, NULL);
        registry_credential_scope(st.registry, &ref, "alice:s3cret", scope);
        (void) snprintf(key, sizeof(key), "%s:latest|linux/amd64|%s", image, scope);
        char *ep[] = {"/private-entry", NULL}, *cmd[] = {NULL};
        struct registry_image_config priv = {.entrypoint = ep, .n_entrypoint = 1, .cmd = cmd};
        (void) registry_cache_put(st.registry, key, true, &priv);
        (void) snprintf(alice, sizeof(alice),
                        "{\"auths\":{\"127.0.0.1:%d\":{\"username\":\"alice\","
                        "\"password\":\"s3cret\"}}}",
                        rport);
        (void) snprintf(guess, sizeof(guess),
                        "{\"auths\":{\"127.0.0.1:%d\":{\"username\":\"alice\","
                        "\"password\":\"guess\"}}}",
                        rport);
        (void) pullsecrets_put(st.pull_secrets, "team-a", "regcred", alice, strlen(alice));
        (void) pullsecrets_put(st.pull_secrets, "team-b", "regcred", guess, strlen(guess));
        (void) snprintf(container, sizeof(container), "{\"name\":\"app\",\"image\":\"%s\"}", image);

        static const struct {
                const char *ns, *spec, *what;
                bool on_loop;
                uint64_t advance_s; /* the test clock, before the review */
        } cases[] = {
                {"team-a", "\"imagePullSecrets\":[{\"name\":\"regcred\"}],",
                 "a pod whose pull secret holds the credential: from the cache, on the loop", true,
                 0},
                {"team-a", "\"imagePullSecrets\":[{\"name\":\"x\"},{\"name\":\"regcred\"}],",
                 "also as its second pull secret", true, 0},
                {"team-b", "\"imagePullSecrets\":[{\"name\":\"regcred\"}],",
                 "another tenant's secret of the same name (another password): the pool", false, 0},
                {"team-c", "\"imagePullSecrets\":[{\"name\":\"regcred\"}],",
                 "a namespace whose secret no worker read: the pool", false, 0},
                {"team-a", "", "team-a's pod without the pull secret: the pool", false, 0},
                {"team-a", "\"imagePullSecrets\":[{\"name\":\"other\"}],",
                 "team-a's pod naming another secret: the pool", false, 0},
                {"team-a", "\"imagePullSecrets\":[{\"name\":\"regcred\"}],",
                 "the pull secret read past its TTL: the pool", false, 61},
        };
        uint64_t parked = 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                fake_now += cases[i].advance_s * 1000000u;
                read_answer(send_review_spec(port, cases[i].ns, cases[i].spec, container), out,
                            sizeof(out), 40000);
                struct httpd_stats hs;
                httpd_get_stats(h, &hs);
                bool cached = strstr(out, "\"allowed\":true") && strstr(out, "\"patch\"");
                if (!cases[i].on_loop)
                        parked++;
                ok(hs.deferred == parked && cached == cases[i].on_loop &&
                           (cached || strstr(out, "\"allowed\":false")),
                   "%s (%llu parked)", cases[i].what, (unsigned long long) hs.deferred);
        }

        httpd_stop(h);
        (void) pthread_join(loop, NULL);
        st.webhook = NULL;
        st.lookups = lookuppool_free(st.lookups);
        st.pull_secrets = pullsecrets_free(st.pull_secrets);
        h = httpd_free(h);
        st.registry = registry_client_free(st.registry);
}

int main(void) {
        struct operator_state st = {};
        struct httpd *h = NULL;
        pthread_t loop;
        char out[16384], image[160];
        int rport = 0, lfd;

        log_set_fd(-1);
        lfd = tcp_listen(&rport);
        state_init(&st, 400);
        if (!ok(lfd >= 0 &&
                        registry_client_new(&(struct registry_options){.timeout_ms = 60000},
                                            &st.registry) == 0 &&
                        lookuppool_new(&(struct lookuppool_options){.workers = 1,
                                                                    .max_jobs = 4,
                                                                    .max_per_client = 2},
                                       &st.lookups) == 0 &&
                        serve(&st, &h, &loop),
                "a silent registry, a pool (1 thread, 4 jobs, 2 per namespace), the webhook"))
                return tap_done();
        int port = httpd_port(h);

        read_answer(send_review(port, "v", COMMAND_POD), out, sizeof(out), 20000);
        struct httpd_stats hs;
        httpd_get_stats(h, &hs);
        ok(strstr(out, "\"allowed\":true") && strstr(out, "\"patch\"") && hs.deferred == 0,
           "a pod with a command is answered on the loop, not parked");

        /* A lookup that hangs: parked; the worker waits on the registry. */
        char slow[256];
        (void) snprintf(image, sizeof(image), "127.0.0.1:%d/team/app:v1", rport);
        (void) snprintf(slow, sizeof(slow), "{\"name\":\"app\",\"image\":\"%s\"}", image);
        uint64_t t0 = mono_ms();
        int a1 = send_review(port, "a", slow);
        struct pollfd pa = {.fd = lfd, .events = POLLIN};
        ok(a1 >= 0 && wait_parked(h, 1, 0) && poll(&pa, 1, 30000) == 1,
           "a pod without a command: parked, its lookup at the registry");
        read_answer(send_review(port, "v", COMMAND_POD), out, sizeof(out), 20000);
        ok(strstr(out, "\"allowed\":true") != NULL,
           "meanwhile a pod with a command is answered at once");
        struct registry_image_config cached = {};
        char *ep[] = {"/cached-entry", NULL}, *cmd[] = {NULL}, key[300];
        cached = (struct registry_image_config){.entrypoint = ep, .n_entrypoint = 1, .cmd = cmd};
        (void) snprintf(key, sizeof(key), "127.0.0.1:%d/team/cached:latest|linux/amd64|-", rport);
        (void) registry_cache_put(st.registry, key, true, &cached);
        char hit[256];
        (void) snprintf(hit, sizeof(hit),
                        "{\"name\":\"app\",\"image\":\"127.0.0.1:%d/team/cached\"}", rport);
        read_answer(send_review(port, "v", hit), out, sizeof(out), 20000);
        httpd_get_stats(h, &hs);
        ok(strstr(out, "\"allowed\":true") && strstr(out, "\"patch\"") && hs.deferred == 1,
           "and one whose image is cached, from the cache, on the loop");

        read_answer(a1, out, sizeof(out), 30000);
        ok(strstr(out, "HTTP/1.1 200") && strstr(out, "\"allowed\":false") &&
                   strstr(out, "did not finish within the webhook's 400 ms") &&
                   strstr(out, "cloudtaser.io/command") && mono_ms() - t0 >= 400 &&
                   wait_parked(h, 0, 1),
           "at its deadline the parked review is denied: the lookup was late");

        /* The namespace's share: its first job still runs (the registry never answers), the
         * second waits, the third is refused at once. */
        int a2 = send_review(port, "a", slow);
        ok(wait_pool(st.lookups, 1, 1), "a second review of namespace a waits in the queue");
        read_answer(send_review(port, "a", slow), out, sizeof(out), 20000);
        ok(strstr(out, "\"allowed\":false") &&
                   strstr(out, "busy with other entrypoint lookups of this namespace"),
           "a third of namespace a is denied at once: its share");
        int b1 = send_review(port, "b", slow);
        ok(wait_pool(st.lookups, 2, 1), "namespace b is not held by a's share");

        /* The bodies' budget: full, the next is refused (busy). */
        st.lookup_bytes_max = atomic_load(&st.lookup_bytes);
        read_answer(send_review(port, "c", slow), out, sizeof(out), 20000);
        ok(strstr(out, "\"allowed\":false") && strstr(out, "lookups are all busy"),
           "past the parked bodies' budget a review is denied at once (busy)");
        st.lookup_bytes_max = 0;

        read_answer(a2, out, sizeof(out), 30000);
        read_answer(b1, out, sizeof(out), 30000);
        ok(strstr(out, "did not finish") != NULL && wait_parked(h, 0, 3),
           "the queued ones get their deadline's denial too");

        /* The end: the registry goes (the running lookup fails, the next ones are refused),
         * the loop stops, the pool finishes, then the server is freed. */
        (void) close(lfd);
        httpd_stop(h);
        (void) pthread_join(loop, NULL);
        st.webhook = NULL;
        st.lookups = lookuppool_free(st.lookups);
        ok(atomic_load(&st.lookup_bytes) == 0, "every parked body released");
        h = httpd_free(h);
        st.registry = registry_client_free(st.registry);

        test_pull_secret_credentials();
        return tap_done();
}
