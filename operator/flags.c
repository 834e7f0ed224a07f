/* SPDX-License-Identifier: Apache-2.0 */
/* operator/flags: see flags.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/injection.h"
#include "common/log.h"
#include "common/macro.h"
#include "operator/flags.h"
#include "operator/lookuppool.h"

enum kind { STR, BOOL, PORT, LOOPS, LOOKUP_WORKERS, LOOKUP_JOBS, DURATION };

struct flag {
        const char *name;
        enum kind kind;
        size_t offset;
        const char *arg, *help;
};

#define F(n, k, field, a, h) \
        { n, k, offsetof(struct operator_flags, field), a, h }

static const struct flag flags[] = {
        F("--webhook-port", PORT, webhook_port, "N", "HTTPS port of the webhook (9443)"),
        F("--webhook-bind-address", STR, webhook_bind, "HOST",
          "address to bind the webhook on (all)"),
        F("--health-probe-bind-address", STR, health_addr, "ADDR", "/healthz and /readyz (:8081)"),
        F("--metrics-bind-address", STR, metrics_addr, "ADDR", "/metrics (:8080)"),
        F("--secret-backend", STR, secret_backend, "vault|kubernetes|ephemeral",
          "where the operator keeps its own credentials (vault; or\n"
          "CLOUDTASER_SECRET_BACKEND): kubernetes is one Secret (weakens the model),\n"
          "ephemeral a new CA at every start (tests, development)"),
        F("--vault-role", STR, vault_role, "ROLE",
          "the operator's Kubernetes auth role (cloudtaser-operator)"),
        F("--vault-auth-mount", STR, vault_auth_mount, "PATH",
          "its Kubernetes auth mount (kubernetes)"),
        F("--vault-namespace", STR, vault_namespace, "NS",
          "vault namespace of the operator's records"),
        F("--vault-jwt-file", STR, vault_jwt_file, "F",
          "its service-account token (the projected one in the pod)"),
        F("--secret-mount", STR, secret_mount, "PATH", "KV v2 mount of its records (secret)"),
        F("--secret-prefix", STR, secret_prefix, "PATH",
          "prefix of its records (cloudtaser/system)"),
        F("--namespace", STR, namespace_, "NS",
          "the operator's namespace (in-cluster: its own; else POD_NAMESPACE,\n"
          "else cloudtaser-system)"),
        F("--service-name", STR, service_name, "NAME",
          "the webhook's Service, named in its certificate (cloudtaser-operator-webhook)"),
        F("--webhook-config-name", STR, webhook_config_name, "NAME",
          "MutatingWebhookConfiguration whose caBundle the leader keeps\n"
          "(cloudtaser-operator-webhook; \"\" for none)"),
        F("--broker-service-name", STR, broker_service, "NAME",
          "the broker's Service (cloudtaser-broker)"),
        F("--broker-address", STR, broker_address, "URL",
          "CLOUDTASER_BROKER_ADDRESS for broker-mode pods\n"
          "(https://<--broker-service-name>.<--namespace>.svc:8443)"),
        F("--broker-host", STR, broker_hosts, "NAMES",
          "more DNS names/IPs for broker-tls's server certificate (comma\n"
          "list; issued again when the set changes): the names --broker-address\n"
          "uses where it is not the Service's"),
        F("--unseal-pods", BOOL, unseal_pods, NULL,
          "sealed token mode: admit token-mode pods without VAULT_TOKEN and\n"
          "give each a per-pod wrapped token (leader; vault backend; false)"),
        F("--cert-check-interval", DURATION, cert_check_interval_ms, "DURATION",
          "how often certificates are checked and re-read (1h)"),
        F("--cert-renew-before", DURATION, cert_renew_before_ms, "DURATION",
          "renew a certificate with less than this left (720h)"),
        F("--leader-elect", BOOL, leader_elect, NULL,
          "elect a leader through a Lease; only the leader writes"),
        F("--leader-elect-lease-duration", DURATION, lease_duration_ms, "DURATION", "(15s)"),
        F("--leader-elect-renew-deadline", DURATION, renew_deadline_ms, "DURATION", "(10s)"),
        F("--leader-elect-retry-period", DURATION, retry_period_ms, "DURATION", "(2s)"),
        F("--leader-elect-resource-name", STR, lease_name, "NAME", "(cloudtaser-operator-leader)"),
        F("--leader-elect-resource-namespace", STR, lease_namespace, "NS", "(--namespace)"),
        F("--unseal-token-role", STR, unseal_token_role, "ROLE",
          "the token role of the pods' tokens (cloudtaser-pod)"),
        F("--unseal-tenant-prefix", STR, unseal_tenant_prefix, "TEMPLATE",
          "namespace confinement of sealed pods' paths (secret/data/{namespace}/)"),
        F("--unseal-interval", DURATION, unseal_interval_ms, "DURATION",
          "how often the sealed pods are listed again under the watch (60s)"),
        F("--unseal-namespace", STR, unseal_namespace, "NS",
          "unseal the sealed pods of this namespace only (all namespaces)"),
        F("--tls-cert-file", STR, tls_cert_file, "F",
          "serve this certificate (with --tls-key-file) instead of the stored one"),
        F("--tls-key-file", STR, tls_key_file, "F", ""),
        F("--webhook-host", STR, webhook_hosts, "NAMES",
          "more names/IPs for the webhook's certificate (comma list)"),
        F("--ca-bundle-out", STR, ca_bundle_out, "F",
          "write the CA bundle (public) there at start and at each change"),
        F("--init-image", STR, init_image, "IMAGE",
          "the cloudtaser-init image (or CLOUDTASER_INIT_IMAGE)"),
        F("--vault-address", STR, vault_address, "URL",
          "the vault: the operator's own, and VAULT_ADDR for pods"),
        F("--vault-ca-file", STR, vault_ca_file, "F",
          "its CA bundle (also given to wrappers inline)"),
        F("--vault-auth-path", STR, vault_auth_path, "PATH",
          "default VAULT_AUTH_MOUNT_PATH for pods"),
        F("--allow-plain-http-vault", BOOL, allow_plain_http_vault, NULL,
          "admit http:// vault addresses (refused otherwise)"),
        F("--vault-peer-addresses", STR, vault_peer_addrs, "URLS",
          "the other nodes of --vault-address (each api_addr), where a\n"
          "standby's 307 may lead"),
        F("--allowed-vault-addresses", STR, allowed, "LIST", "comma list; pods may use only these"),
        F("--registry-ca-file", STR, registry_ca_file, "F", "extra CA for registries"),
        F("--client-ca-file", STR, client_ca_file, "F",
          "require client certificates signed by this CA (the API server's\n"
          "webhook client certificate)"),
        F("--registry-insecure", STR, registry_insecure, "LIST",
          "registries (host[:port]) that may fall back to plain HTTP when\n"
          "they do not speak TLS"),
        F("--registry-lookup-workers", LOOKUP_WORKERS, lookup_workers, "N",
          "threads for the reviews that need a registry lookup (4)"),
        F("--registry-lookup-queue", LOOKUP_JOBS, lookup_jobs, "N",
          "such reviews queued or running at once (64); one namespace\n"
          "at most a quarter of them"),
        F("--kubeconfig", STR, kubeconfig, "FILES", "the Kubernetes API from a kubeconfig"),
        F("--kube-context", STR, kube_context, "NAME", "its context"),
        F("--kube-server", STR, kube_server, "URL",
          "... or from these three (default: in-cluster, else $KUBECONFIG)"),
        F("--kube-ca-file", STR, kube_ca_file, "F", ""),
        F("--kube-token-file", STR, kube_token_file, "F", ""),
        F("--workers", LOOPS, loops, "N", "webhook event loops (2)"),
        F("--log-format", STR, log_format, "text|json", ""),
        F("--log-level", STR, log_level, "LEVEL", ""),
};

void operator_flags_init(struct operator_flags *f) {
        *f = (struct operator_flags){
                .webhook_port = 9443,
                .health_addr = ":8081",
                .metrics_addr = ":8080",
                .loops = 2,
                .lookup_workers = 4,
                .lookup_jobs = 64,
                .cert_check_interval_ms = 3600u * 1000u,
                .cert_renew_before_ms = 720ull * 3600u * 1000u,
                .lease_duration_ms = 15000,
                .renew_deadline_ms = 10000,
                .retry_period_ms = 2000,
                .unseal_interval_ms = 60000,
        };
}

void operator_flags_usage(FILE *out) {
        fprintf(out, "usage: cloudtaser-operator [flags]\n");
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                char left[96];
                (void) snprintf(left, sizeof(left), "%s%s%s", flags[i].name,
                                flags[i].arg ? " " : "", flags[i].arg ? flags[i].arg : "");
                fprintf(out, "  %-36s ", left);
                for (const char *p = flags[i].help; *p; p++) {
                        fputc(*p, out);
                        if (*p == '\n')
                                fprintf(out, "  %-36s ", "");
                }
                fputc('\n', out);
        }
        fprintf(out, "  %-36s \n  %-36s \n", "--help", "--version");
}

static const struct flag *find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (strcmp(flags[i].name, name) == 0)
                        return &flags[i];
        return NULL;
}

static int set(const struct flag *fl, const char *v, struct operator_flags *f) {
        char *p = (char *) f + fl->offset;
        char *end;
        long n;
        uint64_t ms;

        switch (fl->kind) {
        case STR:
                *(const char **) p = v;
                return 0;
        case BOOL:
                if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
                        return log_error("%s takes no value, or =true / =false", fl->name), -EINVAL;
                *(bool *) p = strcmp(v, "true") == 0;
                return 0;
        case PORT:
        case LOOPS:
        case LOOKUP_WORKERS:
        case LOOKUP_JOBS: {
                long max = fl->kind == PORT             ? 65535
                           : fl->kind == LOOPS          ? OPERATOR_MAX_LOOPS
                           : fl->kind == LOOKUP_WORKERS ? LOOKUPPOOL_MAX_WORKERS
                                                        : LOOKUPPOOL_MAX_JOBS;
                errno = 0;
                n = strtol(v, &end, 10);
                if (errno || end == v || *end || n < 1 || n > max)
                        return log_error("%s must be 1..%ld", fl->name, max), -EINVAL;
                *(unsigned *) p = (unsigned) n;
                return 0;
        }
        case DURATION:
                if (injection_parse_duration_ms(v, &ms) < 0 || ms == 0)
                        return log_error("%s: '%s' is not a duration (\"90s\", \"15m\", \"1h\")",
                                         fl->name, v),
                               -EINVAL;
                *(uint64_t *) p = ms;
                return 0;
        }
        return -EINVAL;
}

int operator_flags_parse(int argc, char **argv, struct operator_flags *f) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = NULL;
                char name[64];
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        operator_flags_usage(stdout);
                        return 1;
                }
                if (strcmp(a, "--version") == 0) {
                        printf("cloudtaser-operator %s\n", CLOUDTASER_VERSION);
                        return 1;
                }
                if (strncmp(a, "--", 2) != 0)
                        return log_error("unexpected argument '%s'", a), -EINVAL;
                const char *eq = strchr(a, '=');
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
                const struct flag *fl = find(name);
                if (!fl)
                        return log_error("unknown flag '%s' (see --help)", name), -EINVAL;
                if (eq)
                        v = eq + 1;
                else if (fl->kind == BOOL)
                        v = "true";
                else if (i + 1 < argc)
                        v = argv[++i];
                else
                        return log_error("flag %s needs a value", name), -EINVAL;
                int r = set(fl, v, f);
                if (r < 0)
                        return r;
        }
        if (!f->secret_backend) {
                const char *e = getenv("CLOUDTASER_SECRET_BACKEND");
                f->secret_backend = e && *e ? e : "vault";
        }
        if (strcmp(f->secret_backend, "vault") != 0 &&
            strcmp(f->secret_backend, "kubernetes") != 0 &&
            strcmp(f->secret_backend, "ephemeral") != 0)
                return log_error(
                               "--secret-backend must be vault, kubernetes or ephemeral, not '%s'",
                               f->secret_backend),
                       -EINVAL;
        if (f->broker_address) {
                struct injection_settings s = {};
                struct injection_error e = {};
                const struct injection_variable *row =
                        &injection_variables[INJECTION_ROW_BROKER_ADDR];
                char msg[INJECTION_REASON_MAX + 64];
                if (strlen(f->broker_address) > row->max ||
                    row->parse(f->broker_address, &s, &e) < 0)
                        return log_error("--broker-address: %s",
                                         e.variable ? injection_error_format(&e, false, msg,
                                                                             sizeof(msg))
                                                    : "too long"),
                               -EINVAL;
        }
        if (!!f->tls_cert_file != !!f->tls_key_file)
                return log_error("give both --tls-cert-file and --tls-key-file"), -EINVAL;
        if (f->leader_elect && !(f->lease_duration_ms > f->renew_deadline_ms &&
                                 f->renew_deadline_ms > f->retry_period_ms))
                return log_error("leader election needs lease duration > renew deadline > retry "
                                 "period"),
                       -EINVAL;
        if (f->cert_renew_before_ms >= 365ull * 86400u * 1000u + 1000u)
                return log_error("--cert-renew-before must be shorter than a certificate's "
                                 "lifetime (8760h)"),
                       -EINVAL;
        return 0;
}
