/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/flags: defaults, every kind of value, refusals, and the usage text
 * naming every flag the parser takes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "operator/flags.h"
#include "tests/tap.h"

static int parse(struct operator_flags *f, const char *const *args) {
        char *argv[32] = {"cloudtaser-operator"};
        int argc = 1;
        for (; args[argc - 1]; argc++)
                argv[argc] = (char *) args[argc - 1];
        operator_flags_init(f);
        return operator_flags_parse(argc, argv, f);
}

int main(void) {
        struct operator_flags f;
        log_set_fd(-1);

        /* The environment the parser reads is set by pointing environ at a test array (the
         * program itself never changes its environment). */
        char **saved = environ;
        static char *none[] = {NULL}, *fallback[] = {"CLOUDTASER_SECRET_BACKEND=kubernetes", NULL};
        environ = none;
        is_int(parse(&f, (const char *const[]){NULL}), 0, "no flags");
        is_str(f.secret_backend, "vault", "vault is the default backend");
        is_int((int) f.webhook_port, 9443, "webhook port 9443");
        ok(f.cert_check_interval_ms == 3600000u && f.cert_renew_before_ms == 720ull * 3600000u,
           "check every hour, renew 30 days before");
        ok(f.lease_duration_ms == 15000 && f.renew_deadline_ms == 10000 &&
                   f.retry_period_ms == 2000 && !f.leader_elect,
           "election defaults 15 s / 10 s / 2 s, off");
        ok(f.lookup_workers == 4 && f.lookup_jobs == 64,
           "lookup pool defaults: 4 threads, 64 jobs");
        is_int(parse(&f, (const char *const[]){"--registry-lookup-workers", "8",
                                               "--registry-lookup-queue=256", NULL}),
               0, "lookup pool flags");
        ok(f.lookup_workers == 8 && f.lookup_jobs == 256, "8 threads, 256 jobs");

        is_int(parse(&f, (const char *const[]){"--leader-elect", "--leader-elect-lease-duration",
                                               "6s", "--leader-elect-renew-deadline=4s",
                                               "--leader-elect-retry-period", "1s",
                                               "--cert-check-interval", "2m",
                                               "--cert-renew-before=31535996s", NULL}),
               0, "election and certificate flags");
        ok(f.leader_elect && f.lease_duration_ms == 6000 && f.renew_deadline_ms == 4000 &&
                   f.retry_period_ms == 1000,
           "durations read");
        ok(f.cert_check_interval_ms == 120000 && f.cert_renew_before_ms == 31535996000ull,
           "2m and seconds");
        ok(!f.unseal_pods && !f.unseal_token_role && !f.unseal_tenant_prefix &&
                   !f.unseal_namespace && f.unseal_interval_ms == 60000,
           "the unsealer: off, all namespaces, relisting every 60 s under its watch when on");
        is_int(parse(&f, (const char *const[]){"--unseal-pods", "--unseal-token-role", "pods",
                                               "--unseal-tenant-prefix=kv/data/{namespace}/",
                                               "--unseal-interval", "5s", "--unseal-namespace",
                                               "shop", NULL}),
               0, "the unsealer's flags");
        ok(f.unseal_pods && strcmp(f.unseal_token_role, "pods") == 0 &&
                   strcmp(f.unseal_tenant_prefix, "kv/data/{namespace}/") == 0 &&
                   f.unseal_interval_ms == 5000 && strcmp(f.unseal_namespace, "shop") == 0,
           "  read");
        is_int(parse(&f, (const char *const[]){"--leader-elect=false", NULL}), 0, "=false");
        ok(!f.leader_elect, "--leader-elect=false");
        is_int(parse(&f, (const char *const[]){"--secret-backend", "kubernetes", "--namespace",
                                               "ops", "--webhook-config-name=", NULL}),
               0, "backend, namespace, empty config name");
        ok(strcmp(f.secret_backend, "kubernetes") == 0 && strcmp(f.namespace_, "ops") == 0 &&
                   f.webhook_config_name && !*f.webhook_config_name,
           "values kept");
        environ = fallback;
        is_int(parse(&f, (const char *const[]){NULL}), 0, "backend from the environment");
        is_str(f.secret_backend, "kubernetes", "CLOUDTASER_SECRET_BACKEND=kubernetes");
        is_int(parse(&f, (const char *const[]){"--secret-backend", "vault", NULL}), 0,
               "the flag wins over the environment");
        is_str(f.secret_backend, "vault", "vault");
        environ = saved;

        /* Broker and sealed token mode. */
        is_int(parse(&f, (const char *const[]){NULL}), 0, "defaults");
        ok(!f.unseal_pods && !f.broker_address,
           "unsealing off by default (it needs the overlay's RBAC and vault policy); the broker "
           "address derived (NULL)");
        is_int(parse(&f, (const char *const[]){"--unseal-pods=true", "--broker-address",
                                               "https://broker.ops.svc:8443", NULL}),
               0, "--unseal-pods=true --broker-address");
        ok(f.unseal_pods && strcmp(f.broker_address, "https://broker.ops.svc:8443") == 0,
           "both taken");

        static const char *const bad[][4] = {
                {"--broker-address", "http://broker.ops.svc:8443", NULL},
                {"--broker-address", "https://user@broker", NULL},
                {"--broker-address", "", NULL},
                {"--secret-backend", "etcd", NULL},
                {"--webhook-port", "0", NULL},
                {"--webhook-port", "65536", NULL},
                {"--webhook-port", "12x", NULL},
                {"--workers", "17", NULL},
                {"--registry-lookup-workers", "0", NULL},
                {"--registry-lookup-workers", "65", NULL},
                {"--registry-lookup-queue", "257", NULL},
                {"--cert-check-interval", "soon", NULL},
                {"--cert-check-interval", "0", NULL},
                {"--cert-renew-before", "8761h", NULL},
                {"--leader-elect", "--leader-elect-renew-deadline", "20s", NULL},
                {"--leader-elect=maybe", NULL},
                {"--tls-cert-file", "a.pem", NULL},
                {"--registry-insecure-http", NULL},
                {"--no-such-flag", NULL},
                {"positional", NULL},
                {"--vault-role", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(parse(&f, bad[i]), -EINVAL, "refused: %s %s", bad[i][0],
                       bad[i][1] ? bad[i][1] : "");

        /* The usage names every flag (so --help cannot miss one). */
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        operator_flags_usage(m);
        (void) fclose(m);
        static const char *const names[] = {"--secret-backend",
                                            "--vault-role",
                                            "--vault-auth-mount",
                                            "--vault-namespace",
                                            "--vault-jwt-file",
                                            "--secret-mount",
                                            "--secret-prefix",
                                            "--namespace",
                                            "--service-name",
                                            "--webhook-config-name",
                                            "--cert-check-interval",
                                            "--cert-renew-before",
                                            "--leader-elect ",
                                            "--leader-elect-lease-duration",
                                            "--leader-elect-renew-deadline",
                                            "--leader-elect-retry-period",
                                            "--leader-elect-resource-name",
                                            "--leader-elect-resource-namespace",
                                            "--allowed-vault-addresses",
                                            "--registry-insecure",
                                            "--registry-lookup-workers",
                                            "--registry-lookup-queue",
                                            "--kubeconfig",
                                            "--broker-address",
                                            "--unseal-pods"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ok(text && strstr(text, names[i]) != NULL, "usage names %s", names[i]);
        free(text);
        return tap_done();
}
