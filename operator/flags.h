/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/flags: cloudtaser-operator's command line (docs/operator.md, "Flags"). One table
 * holds every flag, its help line and where its value goes, so the usage text cannot drift from
 * what is parsed. Durations take Go's units where a Kubernetes user expects them ("90s", "15m",
 * "1h", "720h"; a bare number is seconds).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define OPERATOR_MAX_LOOPS 16

struct operator_flags {
        unsigned webhook_port;
        const char *webhook_bind;
        const char *health_addr, *metrics_addr;
        const char *tls_cert_file, *tls_key_file, *ca_bundle_out;
        const char *webhook_hosts; /* comma list of more names/IPs for the webhook certificate */
        const char *init_image, *vault_address, *vault_ca_file, *vault_auth_path, *allowed;
        const char *vault_peer_addrs;
        bool allow_plain_http_vault;
        const char *registry_ca_file;
        const char *client_ca_file;
        const char *registry_insecure; /* comma list of host[:port] */
        const char *kube_server, *kube_ca_file, *kube_token_file;
        const char *kubeconfig, *kube_context;
        unsigned loops;
        unsigned lookup_workers, lookup_jobs; /* operator/lookuppool */
        const char *log_format, *log_level;

        /* The operator's own credentials (issue 13). */
        const char *secret_backend; /* vault (default) | kubernetes | ephemeral */
        const char *vault_role, *vault_auth_mount, *vault_namespace, *vault_jwt_file;
        const char *secret_mount, *secret_prefix;
        const char *namespace_; /* the operator's namespace: Lease, fallback Secret, SANs */
        const char *service_name, *webhook_config_name, *broker_service;
        uint64_t cert_check_interval_ms, cert_renew_before_ms;
        bool leader_elect;
        uint64_t lease_duration_ms, renew_deadline_ms, retry_period_ms;
        const char *lease_name, *lease_namespace;

        /* Broker mode and sealed token mode (operator/modes.h). */
        const char *broker_address; /* NULL: https://<broker_service>.<namespace>.svc:8443 */
        const char *broker_hosts;   /* comma list of more names/IPs for broker-tls's server
                                     * certificate */
        bool unseal_pods;           /* sealed token mode: admission and the unsealer */
        /* The sealed token mode's unsealer (operator/unsealer.h, issue 15). */
        const char *unseal_token_role;    /* NULL: UNSEALER_ROLE_DEFAULT */
        const char *unseal_tenant_prefix; /* NULL: the broker's default */
        uint64_t unseal_interval_ms;      /* the relist under the watch; default 60 s */
        const char *unseal_namespace;     /* NULL: all namespaces */
};

/* The defaults. */
void operator_flags_init(struct operator_flags *f);

/* Parses argv (argv[0] skipped). "--flag value" and "--flag=value". Returns 0, 1 when --help or
 * --version was given and printed (exit 0), or -EINVAL after printing why on stderr (exit 2).
 * Backend from CLOUDTASER_SECRET_BACKEND when the flag is absent. */
int operator_flags_parse(int argc, char **argv, struct operator_flags *f);

void operator_flags_usage(FILE *out);
