/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser-operator: the mutating admission webhook (docs/operator.md).
 *
 *   webhook   HTTPS on --webhook-port (default 9443), POST /mutate-v1-pod, N event loops
 *   health    plain HTTP on --health-probe-bind-address (default :8081): /healthz, /readyz
 *   metrics   plain HTTP on --metrics-bind-address (default :8080): /metrics (Prometheus text)
 *
 * The serving certificate is the operator's own (operator/keeper: kept in vault by default,
 * created at the first install, rotated in memory, its CA in a separate signer process), or
 * --tls-cert-file/--tls-key-file. The health server starts first, so /readyz says what the
 * operator waits for (vault, the leader) before the webhook serves.
 *
 * Entrypoint lookups for containers without a command read the image config from its registry
 * (operator/registry), authenticated with the pod's and its service account's image pull secrets,
 * read through the Kubernetes API (common/kube): in-cluster, or from --kubeconfig, or from
 * --kube-server, --kube-ca-file and --kube-token-file.
 *
 * This file is the wiring only: the flags are operator/flags.c, the servers' handlers and the
 * entrypoint lookup operator/handlers.c, the counters and /metrics operator/metrics.c, the
 * operator's own credentials operator/keeper.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/exit-status.h"
#include "common/httpd.h"
#include "common/injection.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "operator/admission.h"
#include "operator/annotations.h"
#include "operator/flags.h"
#include "operator/handlers.h"
#include "operator/keeper.h"
#include "operator/registry.h"
#include "operator/signer.h"
#include "operator/unsealer.h"

#define MAX_FILE (1024u * 1024u)
#define MAX_ALLOWED 64

/* The Kubernetes API client: --kubeconfig, --kube-server, in-cluster, $KUBECONFIG (or
 * ~/.kube/config), in that order. No API at all is not an error (pull secrets are then not used);
 * a configuration given and unusable is. */
static int setup_kube(const struct operator_flags *f, struct kube_client **ret) {
        struct kube_config *c = NULL;
        struct kube_error e = {};
        int r;

        if (f->kubeconfig || f->kube_context) {
                struct kube_load_options lo = {.paths = f->kubeconfig, .context = f->kube_context};
                r = kube_config_load(&lo, &c, &e);
                if (r < 0)
                        return log_error_errno(r, "--kubeconfig: %s", e.message);
        } else if (f->kube_server) {
                r = kube_config_new(f->kube_server, f->kube_ca_file, f->kube_token_file, &c, &e);
                if (r < 0)
                        return log_error_errno(r, "--kube-server: %s", e.message);
        } else if (kube_config_incluster(NULL, &c, &e) < 0) {
                struct kube_error e2 = {};
                if (kube_config_load(NULL, &c, &e2) < 0) {
                        log_notice("%s: image pull secrets will not be used for entrypoint "
                                   "lookups",
                                   e.message);
                        *ret = NULL;
                        return 0;
                }
        }
        r = kube_client_new(&c, NULL, ret);
        if (r < 0) {
                log_error_errno(r, "Kubernetes API client for %s: %m", kube_config_server(c));
                kube_config_free(c);
                return r;
        }
        return 0;
}

static void *loop_main(void *arg) {
        int r = httpd_run(arg);
        if (r < 0)
                log_error_errno(r, "server loop ended: %m");
        return NULL;
}

/* Waits ms for a stopping signal: -ECANCELED when one came (keeper_bootstrap's wait). */
static int wait_for_signal(void *userdata, unsigned ms) {
        const sigset_t *mask = userdata;
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};
        int sig = sigtimedwait(mask, NULL, &ts);
        if (sig > 0) {
                log_info("received signal %d while starting: stopping", sig);
                return -ECANCELED;
        }
        return 0;
}

static void not_ready(void *userdata, char *buf, size_t n) {
        if (userdata)
                keeper_why(userdata, buf, n);
}

/* This replica's name among the candidates: the pod's name (or the host's) and a random suffix,
 * so that a restarted process is a new candidate. */
static void make_identity(char *out, size_t n) {
        char host[256] = "operator";
        const char *pod = getenv("POD_NAME");
        uint8_t rnd[4] = {};
        if (!pod || !*pod) {
                if (gethostname(host, sizeof(host) - 1) < 0)
                        (void) snprintf(host, sizeof(host), "operator");
                pod = host;
        }
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                rnd[0] = (uint8_t) getpid();
        (void) snprintf(out, n, "%.200s_%02x%02x%02x%02x", pod, rnd[0], rnd[1], rnd[2], rnd[3]);
}

int main(int argc, char **argv) {
        static struct operator_state st = {};
        struct operator_flags f;
        _cleanup_buf_ struct buf cert = BUF_INIT(MAX_FILE, 0), key = BUF_INIT(MAX_FILE, BUF_SECURE),
                                 vault_ca = BUF_INIT(MAX_FILE, 0);
        const char *allowed[MAX_ALLOWED];
        char allowed_copy[4096];
        struct tls_server *tls = NULL;
        struct signer *signer = NULL;
        struct keeper *keeper = NULL;
        int r;

        log_setup("cloudtaser-operator", LOG_FORMAT_TEXT, LOG_INFO);
        operator_flags_init(&f);
        r = operator_flags_parse(argc, argv, &f);
        if (r != 0)
                return r > 0 ? EX_OK : EXIT_INVALIDARGUMENT;
        enum log_format lf = LOG_FORMAT_TEXT;
        enum log_level ll = LOG_INFO;
        if ((f.log_format && log_format_from_string(f.log_format, &lf) < 0) ||
            (f.log_level && log_level_from_string(f.log_level, &ll) < 0))
                return log_error("bad --log-format or --log-level"), EXIT_INVALIDARGUMENT;
        log_setup("cloudtaser-operator", lf, ll);
        (void) secmem_harden_process();

        /* The CA signer first, while this process has one thread: a fork copies only the calling
         * thread, and the signer must not inherit another thread's locks. It gets its CA once
         * the records are read. */
        if (!f.tls_cert_file) {
                r = signer_start(NULL, NULL, 0, 0, &signer);
                if (r < 0)
                        return log_error_errno(r, "Cannot start the CA signer process: %m"),
                               EXIT_FAILURE;
                log_info("CA signer: process %d holds the CA key", (int) signer_pid(signer));
        }

        /* Operator-level defaults for the injection. */
        st.adm.init_image = f.init_image ? f.init_image : getenv("CLOUDTASER_INIT_IMAGE");
        if (!st.adm.init_image || !*st.adm.init_image)
                return log_error("--init-image (or CLOUDTASER_INIT_IMAGE) is required"),
                       EXIT_INVALIDARGUMENT;
        st.adm.default_vault_address = f.vault_address;
        st.adm.default_auth_path = f.vault_auth_path;
        if (f.vault_peer_addrs) {
                /* The same row parser the wrapper reads CLOUDTASER_VAULT_PEER_ADDRESSES with. */
                struct injection_settings tmp = {};
                struct injection_error ie = {};
                char msg[INJECTION_REASON_MAX + 64];
                if (injection_variables[INJECTION_ROW_PEER_ADDRS].parse(f.vault_peer_addrs, &tmp,
                                                                        &ie) < 0)
                        return log_error("--vault-peer-addresses: %s",
                                         injection_error_format(&ie, false, msg, sizeof(msg))),
                               EXIT_INVALIDARGUMENT;
                st.adm.default_vault_peer_addrs = f.vault_peer_addrs;
        }
        if (f.vault_ca_file) {
                r = buf_read_file(&vault_ca, f.vault_ca_file);
                if (r < 0)
                        return log_error_errno(r, "Cannot read --vault-ca-file %s: %m",
                                               f.vault_ca_file),
                               EXIT_INVALIDARGUMENT;
                st.adm.default_vault_ca_pem = buf_cstr(&vault_ca);
        }
        if (f.allowed) {
                /* Refuse a list that would not protect: empty, cut short, over the limit, or with
                 * an entry that is not an address (an empty list would allow every address). */
                size_t n = 0;
                if ((size_t) snprintf(allowed_copy, sizeof(allowed_copy), "%s", f.allowed) >=
                    sizeof(allowed_copy))
                        return log_error("--allowed-vault-addresses is longer than %zu bytes",
                                         sizeof(allowed_copy) - 1),
                               EXIT_INVALIDARGUMENT;
                for (char *save = NULL, *t = strtok_r(allowed_copy, ",", &save); t;
                     t = strtok_r(NULL, ",", &save)) {
                        char canon[512], why[256];
                        if (n >= MAX_ALLOWED)
                                return log_error(
                                               "--allowed-vault-addresses has more than %d entries",
                                               MAX_ALLOWED),
                                       EXIT_INVALIDARGUMENT;
                        if (annotation_vault_address_canon(t, canon, sizeof(canon), why,
                                                           sizeof(why)) < 0)
                                return log_error("--allowed-vault-addresses: %s", why),
                                       EXIT_INVALIDARGUMENT;
                        allowed[n++] = t;
                }
                if (n == 0)
                        return log_error("--allowed-vault-addresses is given but names no address"),
                               EXIT_INVALIDARGUMENT;
                st.adm.allowed_vault_addresses = allowed;
                st.adm.n_allowed = n;
        } else
                log_warning("no --allowed-vault-addresses: pods may send their service-account "
                            "token to any vault address they name; set the list (the manifests "
                            "do)");
        st.adm.allow_plain_http = f.allow_plain_http_vault;
        if (f.allow_plain_http_vault)
                log_warning("--allow-plain-http-vault: pods may use http:// vault addresses, "
                            "over which their tokens and secrets travel unencrypted");
        st.adm.lookup = handlers_lookup;
        st.adm.lookup_userdata = &st;
        st.adm.pod_security = handlers_pod_security;
        st.adm.pod_security_userdata = &st;
#if defined(__aarch64__)
        st.node_arch = "arm64";
#else
        st.node_arch = "amd64";
#endif

        /* One lookup at most 3 s, a review's lookups at most 6 s: with the last lookup started
         * inside the budget, a review ends within about 9 s, under the API server's 10 s default
         * webhook timeout. */
        struct registry_options ro = {.ca_file = f.registry_ca_file, .timeout_ms = 3000};
        const char *insecure[REGISTRY_MAX_INSECURE];
        char insecure_copy[4096];
        if (f.registry_insecure) {
                if ((size_t) snprintf(insecure_copy, sizeof(insecure_copy), "%s",
                                      f.registry_insecure) >= sizeof(insecure_copy))
                        return log_error("--registry-insecure is longer than %zu bytes",
                                         sizeof(insecure_copy) - 1),
                               EXIT_INVALIDARGUMENT;
                for (char *save = NULL, *t = strtok_r(insecure_copy, ",", &save); t;
                     t = strtok_r(NULL, ",", &save)) {
                        if (ro.n_insecure >= REGISTRY_MAX_INSECURE)
                                return log_error("--registry-insecure has more than %d entries",
                                                 REGISTRY_MAX_INSECURE),
                                       EXIT_INVALIDARGUMENT;
                        insecure[ro.n_insecure++] = t;
                }
                if (ro.n_insecure == 0)
                        return log_error("--registry-insecure is given but names no registry"),
                               EXIT_INVALIDARGUMENT;
                ro.insecure = insecure;
        }
        st.adm.lookup_budget_ms = 6000;
        st.adm.max_lookups = 16;
        r = registry_client_new(&ro, &st.registry);
        if (r == -EINVAL && ro.n_insecure > 0)
                return log_error("--registry-insecure: an entry is not a registry host[:port] "
                                 "(\"registry.local:5000\")"),
                       EXIT_INVALIDARGUMENT;
        if (r < 0)
                return log_error_errno(r, "Cannot set up the registry client: %m"), EXIT_FAILURE;
        for (size_t i = 0; i < ro.n_insecure; i++)
                log_warning("registry %s may be reached over plain HTTP when it does not speak TLS "
                            "(--registry-insecure)",
                            insecure[i]);

        r = setup_kube(&f, &st.kube);
        if (r < 0)
                return EXIT_INVALIDARGUMENT;

        /* Signals: SIGTERM/SIGINT stop gracefully; SIGPIPE is ignored (closed peers). Blocked
         * before any thread starts, so that every thread inherits the mask. */
        sigset_t mask;
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) pthread_sigmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        /* The reviews that need a registry lookup run there, never on an event loop. */
        struct lookuppool_options lo = {.workers = f.lookup_workers, .max_jobs = f.lookup_jobs};
        r = lookuppool_new(&lo, &st.lookups);
        if (r < 0)
                return log_error_errno(r, "Cannot start the registry lookup threads: %m"),
                       EXIT_FAILURE;
        /* The pull secrets the workers read, for the loop's cache-only pass. */
        r = pullsecrets_new(NULL, &st.pull_secrets);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the pull secrets' cache: %m"),
                       EXIT_FAILURE;

        /* Probes and metrics first (tiny limits: they take no bodies): /readyz says what the
         * operator waits for. */
        pthread_t threads[OPERATOR_MAX_LOOPS + 2];
        size_t nt = 0;
        struct httpd_options ho = {.address = f.health_addr,
                                   .handler = handlers_health,
                                   .userdata = &st,
                                   .limits = {.max_body = 1024},
                                   .max_connections = 16};
        r = httpd_new(&ho, &st.health);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for health probes: %m",
                                       f.health_addr),
                       EXIT_FAILURE;
        struct httpd_options mo = {.address = f.metrics_addr,
                                   .handler = handlers_metrics,
                                   .userdata = &st,
                                   .limits = {.max_body = 1024},
                                   .max_connections = 16};
        r = httpd_new(&mo, &st.metrics_srv);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for metrics: %m", f.metrics_addr),
                       EXIT_FAILURE;

        /* The serving certificate: given, or the operator's own (kept, rotated). */
        if (f.tls_cert_file) {
                if ((r = buf_read_file(&cert, f.tls_cert_file)) < 0 ||
                    (r = buf_read_file(&key, f.tls_key_file)) < 0)
                        return log_error_errno(r, "Cannot read the serving certificate or key: %m"),
                               EXIT_INVALIDARGUMENT;
                /* No credential store: broker and sealed pods are denied, saying so. */
                st.adm.modes = (struct modes_config){.broker_address = f.broker_address,
                                                     .unseal_pods = f.unseal_pods};
        } else {
                char identity[300];
                make_identity(identity, sizeof(identity));
                r = keeper_new(&f, st.kube, signer, identity, &keeper);
                if (r < 0)
                        return r == -EINVAL ? EXIT_INVALIDARGUMENT : EXIT_FAILURE;
                st.not_ready = not_ready;
                st.not_ready_userdata = keeper;
                if (keeper_modes_config(keeper, &st.adm.modes) < 0)
                        return EXIT_INVALIDARGUMENT;
        }
        if (pthread_create(&threads[nt], NULL, loop_main, st.health) == 0)
                nt++;
        if (pthread_create(&threads[nt], NULL, loop_main, st.metrics_srv) == 0)
                nt++;
        if (keeper) {
                r = keeper_bootstrap(keeper, wait_for_signal, &mask);
                if (r >= 0)
                        r = keeper_webhook_pair(keeper, &cert, &key);
                if (r < 0) {
                        httpd_stop(st.health);
                        httpd_stop(st.metrics_srv);
                        for (size_t i = 0; i < nt; i++)
                                (void) pthread_join(threads[i], NULL);
                        keeper_free(keeper);
                        signer_free(signer);
                        return r == -ECANCELED ? EX_OK : EXIT_FAILURE;
                }
        }

        _cleanup_buf_ struct buf client_ca = BUF_INIT(MAX_FILE, 0);
        struct tls_server_options to = {.cert_pem = cert.data,
                                        .cert_len = cert.len,
                                        .key_pem = key.data,
                                        .key_len = key.len};
        if (f.client_ca_file) {
                /* Only the API server (its webhook client certificate) may call the webhook. */
                r = buf_read_file(&client_ca, f.client_ca_file);
                if (r < 0)
                        return log_error_errno(r, "Cannot read --client-ca-file %s: %m",
                                               f.client_ca_file),
                               EXIT_INVALIDARGUMENT;
                to.client_auth = TLS_CLIENT_AUTH_REQUIRE;
                to.client_ca_pem = client_ca.data;
                to.client_ca_len = client_ca.len;
        } else
                log_notice("no --client-ca-file: anyone who can reach the webhook port can submit "
                           "reviews; restrict it with a NetworkPolicy");
        r = tls_server_new(&to, &tls);
        if (r < 0)
                return log_error_errno(r, "Invalid serving certificate or key: %m"),
                       EXIT_INVALIDARGUMENT;
        buf_done(&key);

        char webhook_addr[300];
        (void) snprintf(webhook_addr, sizeof(webhook_addr), "%s:%u",
                        f.webhook_bind ? f.webhook_bind : "", f.webhook_port);
        struct httpd *webhook = NULL;
        struct httpd_options wo = {.address = webhook_addr,
                                   .tls = tls,
                                   .handler = handlers_webhook,
                                   .userdata = &st,
                                   .limits = {.max_body = 3u * 1024u * 1024u},
                                   .max_connections = 256};
        r = httpd_new(&wo, &webhook);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for the webhook: %m", webhook_addr),
                       EXIT_FAILURE;
        st.webhook = webhook;
        for (unsigned i = 0; i < f.loops; i++)
                if (pthread_create(&threads[nt], NULL, loop_main, webhook) == 0)
                        nt++;
        if (keeper && (r = keeper_start(keeper, tls)) < 0)
                return log_error_errno(r, "Cannot start the certificate rotation: %m"),
                       EXIT_FAILURE;
        /* The sealed token mode's unsealer (on the leader), with --unseal-pods. */
        struct unsealer *unsealer = NULL;
        if (f.unseal_pods) {
                struct unsealer_options uo = {.kube = st.kube,
                                              .tenant = f.unseal_tenant_prefix,
                                              .token_role = f.unseal_token_role,
                                              .namespace_ = f.unseal_namespace,
                                              .interval_ms = (unsigned) f.unseal_interval_ms};
                if (!keeper || !st.kube || (r = keeper_unsealer_deps(keeper, &uo.deps)) < 0)
                        return log_error("--unseal-pods needs the vault backend for the "
                                         "operator's credentials and the Kubernetes API (the "
                                         "unsealer mints each sealed pod's token in vault)"),
                               EXIT_INVALIDARGUMENT;
                if ((r = unsealer_new(&uo, &unsealer)) < 0 || (r = unsealer_start(unsealer)) < 0)
                        return log_error_errno(r, "Cannot start the unsealer: %m"), EXIT_FAILURE;
        }
        atomic_store(&st.ready, true);
        log_info("serving: webhook https://%s/mutate-v1-pod (port %d, %u loops), health %s (port "
                 "%d), metrics %s (port %d)",
                 webhook_addr, httpd_port(webhook), f.loops, f.health_addr, httpd_port(st.health),
                 f.metrics_addr, httpd_port(st.metrics_srv));

        int sig = 0;
        (void) sigwait(&mask, &sig);
        log_info("received signal %d: stopping", sig);
        atomic_store(&st.ready, false);
        bool failed = keeper_failed(keeper);
        unsealer = unsealer_free(unsealer); /* it borrows the keeper's session and credentials */
        /* The Lease first, so that a standby takes over while this replica drains. */
        keeper = keeper_free(keeper);
        httpd_stop(webhook);
        httpd_stop(st.health);
        httpd_stop(st.metrics_srv);
        for (size_t i = 0; i < nt; i++)
                (void) pthread_join(threads[i], NULL);
        st.webhook = NULL;
        st.lookups = lookuppool_free(st.lookups); /* before the server its jobs complete into */
        st.pull_secrets = pullsecrets_free(st.pull_secrets); /* after the workers */
        httpd_free(webhook);
        httpd_free(st.health);
        httpd_free(st.metrics_srv);
        tls_server_free(tls);
        signer_free(signer);
        kube_client_free(st.kube);
        registry_client_free(st.registry);
        return failed ? EXIT_FAILURE : EX_OK;
}
