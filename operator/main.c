/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser-operator: the mutating admission webhook (docs/operator.md).
 *
 *   webhook   HTTPS on --webhook-port (default 9443), POST /mutate-v1-pod, N event loops
 *   health    plain HTTP on --health-probe-bind-address (default :8081): /healthz, /readyz
 *   metrics   plain HTTP on --metrics-bind-address (default :8080): /metrics (Prometheus text)
 *
 * The serving certificate comes from --tls-cert-file/--tls-key-file, or is generated at start
 * (an in-memory CA and a leaf for --webhook-host names; --ca-bundle-out writes the CA for the
 * MutatingWebhookConfiguration's caBundle). It is held by a swappable TLS context, so the
 * certificate rotation of the next step replaces it without a restart.
 *
 * Entrypoint lookups for containers without a command read the image config from its registry
 * (operator/registry), authenticated with the pod's and its service account's image pull secrets,
 * read through the Kubernetes API (common/kube): in-cluster, or from --kubeconfig, or from
 * --kube-server, --kube-ca-file and --kube-token-file.
 *
 * This file is the flags and the wiring only: the servers' handlers and the entrypoint lookup are
 * operator/handlers.c, the counters and /metrics operator/metrics.c, the generated serving
 * certificate operator/certs.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
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
#include "operator/certs.h"
#include "operator/handlers.h"
#include "operator/registry.h"

#define MAX_FILE (1024u * 1024u)
#define MAX_LOOPS 16
#define MAX_ALLOWED 64

struct flags {
        unsigned webhook_port;
        const char *webhook_bind;
        const char *health_addr, *metrics_addr;
        const char *tls_cert_file, *tls_key_file, *ca_bundle_out;
        const char *webhook_hosts; /* comma list of DNS names / IPs for the generated certificate */
        const char *init_image, *vault_address, *vault_ca_file, *vault_auth_path, *allowed;
        const char *vault_peer_addrs;
        bool allow_plain_http_vault; /* --allow-plain-http-vault */
        const char *registry_ca_file;
        const char *client_ca_file;
        const char *registry_insecure; /* comma list of host[:port] */
        const char *kube_server, *kube_ca_file, *kube_token_file;
        const char *kubeconfig, *kube_context;
        unsigned loops;
        const char *log_format, *log_level;
};

/* --- flags ------------------------------------------------------------------------------ */

static void usage(FILE *f) {
        fprintf(f,
                "usage: cloudtaser-operator [flags]\n"
                "  --webhook-port N                  HTTPS port of the webhook (9443)\n"
                "  --webhook-bind-address HOST       address to bind the webhook on (all)\n"
                "  --health-probe-bind-address ADDR  /healthz and /readyz (:8081)\n"
                "  --metrics-bind-address ADDR       /metrics (:8080)\n"
                "  --tls-cert-file F --tls-key-file F  serving certificate (else generated)\n"
                "  --webhook-host NAMES              names/IPs for the generated certificate\n"
                "  --ca-bundle-out F                 write the generated CA (for caBundle)\n"
                "  --init-image IMAGE                the cloudtaser-init image (or "
                "CLOUDTASER_INIT_IMAGE)\n"
                "  --vault-address URL               default VAULT_ADDR for pods\n"
                "  --vault-ca-file F                 CA bundle given to wrappers inline\n"
                "  --vault-auth-path PATH            default VAULT_AUTH_MOUNT_PATH\n"
                "  --allow-plain-http-vault          admit http:// vault addresses (refused "
                "otherwise)\n"
                "  --vault-peer-addresses URLS       the other nodes of --vault-address (each "
                "api_addr), where a standby's 307 may lead\n"
                "  --allowed-vault-addresses LIST    comma list; pods may use only these\n"
                "  --registry-ca-file F              extra CA for registries\n"
                "  --client-ca-file F                require client certificates signed by this CA "
                "(the API\n"
                "                                    server's webhook client certificate)\n"
                "  --registry-insecure LIST          comma list of registries (host[:port]) that "
                "may\n"
                "                                    fall back to plain HTTP when they do not "
                "speak TLS\n"
                "  --kubeconfig FILES [--kube-context NAME]  the Kubernetes API from a "
                "kubeconfig\n"
                "  --kube-server URL --kube-ca-file F --kube-token-file F  ... or these\n"
                "                                    (default: in-cluster, else $KUBECONFIG)\n"
                "  --workers N                       webhook event loops (2)\n"
                "  --log-format text|json --log-level LEVEL\n"
                "  --version\n");
}

static int parse_flags(int argc, char **argv, struct flags *f) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = NULL;
                char name[64];
                const char *eq = strchr(a, '=');
                if (strncmp(a, "--", 2) != 0)
                        return log_error("unexpected argument '%s'", a), -EINVAL;
                size_t nl = eq ? (size_t) (eq - a) : strlen(a);
                if (nl >= sizeof(name))
                        return log_error("unknown flag '%.40s'", a), -EINVAL;
                memcpy(name, a, nl);
                name[nl] = '\0';
                if (strcmp(name, "--registry-insecure-http") == 0)
                        return log_error("--registry-insecure-http is gone: name the registries "
                                         "that may use plain HTTP with "
                                         "--registry-insecure=host[:port],..."),
                               -EINVAL;
                if (strcmp(name, "--allow-plain-http-vault") == 0 && !eq) {
                        f->allow_plain_http_vault = true;
                        continue;
                }
                if (eq)
                        v = eq + 1;
                else if (i + 1 < argc)
                        v = argv[++i];
                else
                        return log_error("flag %s needs a value", name), -EINVAL;
                if (strcmp(name, "--webhook-port") == 0) {
                        char *end;
                        errno = 0;
                        long p = strtol(v, &end, 10);
                        if (errno || *end || p < 1 || p > 65535)
                                return log_error("--webhook-port must be 1..65535"), -EINVAL;
                        f->webhook_port = (unsigned) p;
                } else if (strcmp(name, "--workers") == 0) {
                        char *end;
                        errno = 0;
                        long p = strtol(v, &end, 10);
                        if (errno || *end || p < 1 || p > MAX_LOOPS)
                                return log_error("--workers must be 1..%d", MAX_LOOPS), -EINVAL;
                        f->loops = (unsigned) p;
                }
#define S(flag, field) else if (strcmp(name, flag) == 0) f->field = v;
                S("--webhook-bind-address", webhook_bind)
                S("--health-probe-bind-address", health_addr)
                S("--metrics-bind-address", metrics_addr)
                S("--tls-cert-file", tls_cert_file)
                S("--tls-key-file", tls_key_file)
                S("--ca-bundle-out", ca_bundle_out)
                S("--webhook-host", webhook_hosts)
                S("--init-image", init_image)
                S("--vault-address", vault_address)
                S("--vault-ca-file", vault_ca_file)
                S("--vault-auth-path", vault_auth_path)
                S("--vault-peer-addresses", vault_peer_addrs)
                S("--allowed-vault-addresses", allowed)
                S("--registry-ca-file", registry_ca_file)
                S("--registry-insecure", registry_insecure)
                S("--client-ca-file", client_ca_file)
                S("--kube-server", kube_server)
                S("--kube-ca-file", kube_ca_file)
                S("--kube-token-file", kube_token_file)
                S("--kubeconfig", kubeconfig)
                S("--kube-context", kube_context)
                S("--log-format", log_format)
                S("--log-level", log_level)
#undef S
                else return log_error("unknown flag '%s' (see --help)", name), -EINVAL;
        }
        return 0;
}

/* The Kubernetes API client: --kubeconfig, --kube-server, in-cluster, $KUBECONFIG (or
 * ~/.kube/config), in that order. No API at all is not an error (pull secrets are then not used);
 * a configuration given and unusable is. */
static int setup_kube(const struct flags *f, struct kube_client **ret) {
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

int main(int argc, char **argv) {
        static struct operator_state st = {};
        struct flags f = {.webhook_port = 9443,
                          .health_addr = ":8081",
                          .metrics_addr = ":8080",
                          .webhook_hosts = "localhost,127.0.0.1",
                          .loops = 2};
        _cleanup_buf_ struct buf cert = BUF_INIT(MAX_FILE, 0), key = BUF_INIT(MAX_FILE, BUF_SECURE),
                                 ca = BUF_INIT(MAX_FILE, 0), vault_ca = BUF_INIT(MAX_FILE, 0);
        const char *allowed[MAX_ALLOWED];
        char allowed_copy[4096];
        struct tls_server *tls = NULL;
        int r;

        log_setup("cloudtaser-operator", LOG_FORMAT_TEXT, LOG_INFO);
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("cloudtaser-operator %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        if (argc == 2 && strcmp(argv[1], "--help") == 0) {
                usage(stdout);
                return 0;
        }
        if (parse_flags(argc, argv, &f) < 0)
                return 2;
        enum log_format lf = LOG_FORMAT_TEXT;
        enum log_level ll = LOG_INFO;
        if ((f.log_format && log_format_from_string(f.log_format, &lf) < 0) ||
            (f.log_level && log_level_from_string(f.log_level, &ll) < 0))
                return log_error("bad --log-format or --log-level"), 2;
        log_setup("cloudtaser-operator", lf, ll);
        (void) secmem_harden_process();

        /* Operator-level defaults for the injection. */
        st.adm.init_image = f.init_image ? f.init_image : getenv("CLOUDTASER_INIT_IMAGE");
        if (!st.adm.init_image || !*st.adm.init_image)
                return log_error("--init-image (or CLOUDTASER_INIT_IMAGE) is required"), 2;
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
                               2;
                st.adm.default_vault_peer_addrs = f.vault_peer_addrs;
        }
        if (f.vault_ca_file) {
                r = buf_read_file(&vault_ca, f.vault_ca_file);
                if (r < 0)
                        return log_error_errno(r, "Cannot read --vault-ca-file %s: %m",
                                               f.vault_ca_file),
                               2;
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
                               2;
                for (char *save = NULL, *t = strtok_r(allowed_copy, ",", &save); t;
                     t = strtok_r(NULL, ",", &save)) {
                        char canon[512], why[256];
                        if (n >= MAX_ALLOWED)
                                return log_error(
                                               "--allowed-vault-addresses has more than %d entries",
                                               MAX_ALLOWED),
                                       2;
                        if (annotation_vault_address_canon(t, canon, sizeof(canon), why,
                                                           sizeof(why)) < 0)
                                return log_error("--allowed-vault-addresses: %s", why), 2;
                        allowed[n++] = t;
                }
                if (n == 0)
                        return log_error("--allowed-vault-addresses is given but names no address"),
                               2;
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
                               2;
                for (char *save = NULL, *t = strtok_r(insecure_copy, ",", &save); t;
                     t = strtok_r(NULL, ",", &save)) {
                        if (ro.n_insecure >= REGISTRY_MAX_INSECURE)
                                return log_error("--registry-insecure has more than %d entries",
                                                 REGISTRY_MAX_INSECURE),
                                       2;
                        insecure[ro.n_insecure++] = t;
                }
                if (ro.n_insecure == 0)
                        return log_error("--registry-insecure is given but names no registry"), 2;
                ro.insecure = insecure;
        }
        st.adm.lookup_budget_ms = 6000;
        st.adm.max_lookups = 16;
        r = registry_client_new(&ro, &st.registry);
        if (r == -EINVAL && ro.n_insecure > 0)
                return log_error("--registry-insecure: an entry is not a registry host[:port] "
                                 "(\"registry.local:5000\")"),
                       2;
        if (r < 0)
                return log_error_errno(r, "Cannot set up the registry client: %m"), 1;
        for (size_t i = 0; i < ro.n_insecure; i++)
                log_warning("registry %s may be reached over plain HTTP when it does not speak TLS "
                            "(--registry-insecure)",
                            insecure[i]);

        r = setup_kube(&f, &st.kube);
        if (r < 0)
                return 2;

        /* The serving certificate. */
        if (f.tls_cert_file || f.tls_key_file) {
                if (!f.tls_cert_file || !f.tls_key_file)
                        return log_error("give both --tls-cert-file and --tls-key-file"), 2;
                if ((r = buf_read_file(&cert, f.tls_cert_file)) < 0 ||
                    (r = buf_read_file(&key, f.tls_key_file)) < 0)
                        return log_error_errno(r, "Cannot read the serving certificate or key: %m"),
                               2;
        } else {
                r = certs_generate_serving(f.webhook_hosts, &cert, &key, &ca);
                if (r < 0)
                        return log_error_errno(r, "Cannot generate a serving certificate: %m"), 1;
                log_info("generated a serving certificate for %s", f.webhook_hosts);
                if (f.ca_bundle_out) {
                        r = certs_write_file_atomic(f.ca_bundle_out, ca.data, ca.len);
                        if (r < 0)
                                return log_error_errno(r, "Cannot write --ca-bundle-out %s: %m",
                                                       f.ca_bundle_out),
                                       1;
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
                               2;
                to.client_auth = TLS_CLIENT_AUTH_REQUIRE;
                to.client_ca_pem = client_ca.data;
                to.client_ca_len = client_ca.len;
        } else
                log_notice("no --client-ca-file: anyone who can reach the webhook port can submit "
                           "reviews; restrict it with a NetworkPolicy");
        r = tls_server_new(&to, &tls);
        if (r < 0)
                return log_error_errno(r, "Invalid serving certificate or key: %m"), 2;
        buf_done(&key);

        /* Signals: SIGTERM/SIGINT stop gracefully; SIGPIPE is ignored (closed peers). */
        sigset_t mask;
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) pthread_sigmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        char webhook_addr[300];
        (void) snprintf(webhook_addr, sizeof(webhook_addr), "%s:%u",
                        f.webhook_bind ? f.webhook_bind : "", f.webhook_port);
        struct httpd_options wo = {.address = webhook_addr,
                                   .tls = tls,
                                   .handler = handlers_webhook,
                                   .userdata = &st,
                                   .limits = {.max_body = 3u * 1024u * 1024u},
                                   .max_connections = 256};
        r = httpd_new(&wo, &st.webhook);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for the webhook: %m", webhook_addr),
                       1;
        /* Probes and metrics take no bodies: tiny limits. */
        struct httpd_options ho = {.address = f.health_addr,
                                   .handler = handlers_health,
                                   .userdata = &st,
                                   .limits = {.max_body = 1024},
                                   .max_connections = 16};
        r = httpd_new(&ho, &st.health);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for health probes: %m",
                                       f.health_addr),
                       1;
        struct httpd_options mo = {.address = f.metrics_addr,
                                   .handler = handlers_metrics,
                                   .userdata = &st,
                                   .limits = {.max_body = 1024},
                                   .max_connections = 16};
        r = httpd_new(&mo, &st.metrics_srv);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s for metrics: %m", f.metrics_addr), 1;

        pthread_t threads[MAX_LOOPS + 2];
        size_t nt = 0;
        for (unsigned i = 0; i < f.loops; i++)
                if (pthread_create(&threads[nt], NULL, loop_main, st.webhook) == 0)
                        nt++;
        if (pthread_create(&threads[nt], NULL, loop_main, st.health) == 0)
                nt++;
        if (pthread_create(&threads[nt], NULL, loop_main, st.metrics_srv) == 0)
                nt++;
        atomic_store(&st.ready, true);
        log_info("serving: webhook https://%s/mutate-v1-pod (port %d, %u loops), health %s (port "
                 "%d), metrics %s (port %d)",
                 webhook_addr, httpd_port(st.webhook), f.loops, f.health_addr,
                 httpd_port(st.health), f.metrics_addr, httpd_port(st.metrics_srv));

        int sig = 0;
        (void) sigwait(&mask, &sig);
        log_info("received signal %d: stopping", sig);
        atomic_store(&st.ready, false);
        httpd_stop(st.webhook);
        httpd_stop(st.health);
        httpd_stop(st.metrics_srv);
        for (size_t i = 0; i < nt; i++)
                (void) pthread_join(threads[i], NULL);
        httpd_free(st.webhook);
        httpd_free(st.health);
        httpd_free(st.metrics_srv);
        tls_server_free(tls);
        kube_client_free(st.kube);
        registry_client_free(st.registry);
        return 0;
}
