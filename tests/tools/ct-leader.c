/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-leader: runs operator/leader's election from the command line, for the end-to-end tests on
 * the real API server (tests/e2e/test-real-leader.sh). Prints one line per transition on stdout,
 * each with the wall-clock time in milliseconds since the epoch:
 *
 *   1764760171123 started ID          this candidate leads (on_started_leading)
 *   1764760171123 new-leader HOLDER   the Lease's holder changed (on_new_leader)
 *   1764760171123 stopped ID          it stopped leading (on_stopped_leading)
 *   1764760171123 exit ID 0           after SIGTERM/SIGINT: leader_stop()'s result (0: released
 *                                     or nothing to release)
 *
 * and operator/leader's log lines on stderr.
 *
 *   ct-leader --namespace NS --identity ID [--name LEASE] [--lease-duration D]
 *             [--renew-deadline D] [--retry-period D]
 *             (--kube-server URL --kube-ca-file F --kube-token-file F | [--kubeconfig FILES]
 *              [--context NAME])
 *
 * Durations as the operator's --leader-elect-* flags take them (injection_parse_duration_ms():
 * "15s", "2000ms", "15"), defaults operator/leader's.
 *
 * Exit status 0 after a signal, 1 when the election cannot start, 2 for bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/injection.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/leader.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *what, const char *who, const char *extra) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) pthread_mutex_lock(&out_lock);
        printf("%" PRId64 " %s %s%s%s\n", (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, what,
               who, extra ? " " : "", extra ? extra : "");
        (void) fflush(stdout);
        (void) pthread_mutex_unlock(&out_lock);
}

static void on_started(void *u) {
        say("started", u, NULL);
}
static void on_stopped(void *u) {
        say("stopped", u, NULL);
}
static void on_new(const char *id, void *u) {
        (void) u;
        say("new-leader", id, NULL);
}

static void usage(void) {
        fprintf(stderr, "usage: ct-leader --namespace NS --identity ID [--name LEASE] "
                        "[--lease-duration D] [--renew-deadline D] [--retry-period D] "
                        "(--kube-server URL --kube-ca-file F --kube-token-file F | "
                        "[--kubeconfig FILES] [--context NAME])\n");
}

static int parse_ms(const char *s, unsigned *ret) {
        uint64_t v;
        int r = injection_parse_duration_ms(s, &v);
        if (r < 0)
                return r;
        if (v == 0 || v > 86400000u)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char **argv) {
        struct leader_options o = {};
        const char *server = NULL, *ca = NULL, *token = NULL, *kubeconfig = NULL, *context = NULL;
        struct kube_config *c = NULL;
        struct kube_client *k = NULL;
        struct leader *l = NULL;
        struct kube_error e = {};
        int r;

        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("ct-leader %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        (void) atexit(secmem_wipe_all);
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v) {
                        usage();
                        return 2;
                }
                i++;
                if (strcmp(a, "--namespace") == 0)
                        o.namespace_ = v;
                else if (strcmp(a, "--identity") == 0)
                        o.identity = v;
                else if (strcmp(a, "--name") == 0)
                        o.name = v;
                else if (strcmp(a, "--kube-server") == 0)
                        server = v;
                else if (strcmp(a, "--kube-ca-file") == 0)
                        ca = v;
                else if (strcmp(a, "--kube-token-file") == 0)
                        token = v;
                else if (strcmp(a, "--kubeconfig") == 0)
                        kubeconfig = v;
                else if (strcmp(a, "--context") == 0)
                        context = v;
                else if ((strcmp(a, "--lease-duration") == 0 &&
                          parse_ms(v, &o.lease_duration_ms) == 0) ||
                         (strcmp(a, "--renew-deadline") == 0 &&
                          parse_ms(v, &o.renew_deadline_ms) == 0) ||
                         (strcmp(a, "--retry-period") == 0 && parse_ms(v, &o.retry_period_ms) == 0))
                        continue;
                else {
                        usage();
                        return 2;
                }
        }
        if (!o.namespace_ || !o.identity || (server && (!ca || !token))) {
                usage();
                return 2;
        }
        log_setup("ct-leader", LOG_FORMAT_TEXT, LOG_INFO);

        if (server)
                r = kube_config_new(server, ca, token, &c, &e);
        else {
                struct kube_load_options lo = {.paths = kubeconfig, .context = context};
                r = kube_config_load(&lo, &c, &e);
        }
        if (r >= 0)
                r = kube_client_new(&c, NULL, &k);
        kube_config_free(c);
        if (r < 0) {
                log_error_errno(r, "Cannot configure the Kubernetes client: %s (%m)", e.message);
                return 1;
        }

        /* The signals are taken with sigwait() by this thread: blocked before the election
         * thread starts, so it inherits the mask and never receives them. */
        sigset_t set;
        (void) sigemptyset(&set);
        (void) sigaddset(&set, SIGTERM);
        (void) sigaddset(&set, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &set, NULL);

        o.callbacks =
                (struct leader_callbacks){on_started, on_stopped, on_new, (void *) o.identity};
        r = leader_start(k, &o, &l);
        if (r < 0) {
                kube_client_free(k);
                log_error_errno(r, "Cannot start the election: %m");
                return r == -EINVAL ? 2 : 1;
        }
        int sig = 0;
        (void) sigwait(&set, &sig);
        r = leader_stop(l);
        char rc[16];
        (void) snprintf(rc, sizeof(rc), "%d", r);
        say("exit", o.identity, rc);
        leader_free(l);
        kube_client_free(k);
        return 0;
}
