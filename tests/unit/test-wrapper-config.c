/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for wrapper/config: every variable, every error, table-driven (the contract's
 * pieces, the list parsers and the table itself, are tests/unit/test-injection.c). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "tests/tap.h"
#include "wrapper/config.h"

struct env {
        const char *const *kv; /* NAME, VALUE, ..., NULL */
};

static const char *lookup(const char *name, void *userdata) {
        const struct env *e = userdata;
        for (size_t i = 0; e->kv[i]; i += 2)
                if (strcmp(e->kv[i], name) == 0)
                        return e->kv[i + 1];
        return NULL;
}

#define BASE                                                                                     \
        "VAULT_ADDR", "https://vault:8200", "VAULT_AUTH_ROLE", "app", "CLOUDTASER_SECRET_PATHS", \
                "secret/data/app/db"

static int parse(const char *const *kv, int argc, char *const *argv, struct wrapper_config *c,
                 struct error_report *err) {
        struct env e = {kv};
        return config_parse(lookup, &e, argc, argv, c, err);
}

static void test_defaults(void) {
        static const char *const kv[] = {BASE, NULL};
        char *argv[] = {"w", "--", "/bin/app", "x", NULL};
        struct wrapper_config c;
        struct error_report err = {};
        is_int(parse(kv, 4, argv, &c, &err), 0, "minimal configuration parses");
        is_str(c.env.auth_mount, "auth/kubernetes", "default auth mount");
        is_str(c.env.sa_token_path, "/var/run/secrets/kubernetes.io/serviceaccount/token",
               "default token path");
        ok(c.env.auth == AUTH_KUBERNETES && c.env.delivery == DELIVERY_ENV &&
                   c.env.rotation == ROTATION_NONE,
           "default auth, delivery, rotation");
        ok(c.env.startup_timeout_ms == 60000 && c.env.rotation_interval_ms == 60000,
           "default timeouts");
        ok(c.argc == 2 && strcmp(c.argv[0], "/bin/app") == 0 && strcmp(c.argv[1], "x") == 0 &&
                   c.argv[2] == NULL,
           "command after --");
        ok(c.env.n_secrets == 1 && c.env.secrets[0].all_fields, "one path, all fields");
        config_done(&c);

        char *argv2[] = {"w", "/bin/app", NULL};
        ok(parse(kv, 2, argv2, &c, &err) == 0 && c.argc == 1, "command without --");
        config_done(&c);
}

static void test_full(void) {
        static const char *const kv[] = {"VAULT_ADDR",
                                         "https://vault:8200",
                                         "VAULT_AUTH_METHOD",
                                         "token",
                                         "VAULT_TOKEN",
                                         "t",
                                         "VAULT_AUTH_MOUNT_PATH",
                                         "auth/k8s-prod",
                                         "VAULT_CACERT",
                                         "/ca.pem",
                                         "VAULT_NAMESPACE",
                                         "team-a",
                                         "VAULT_SKIP_VERIFY",
                                         "false",
                                         "CLOUDTASER_SECRET_PATHS",
                                         " secret/data/app/db , kv/app/legacy,/secret/x",
                                         "CLOUDTASER_ENV_MAP",
                                         "password=PGPASSWORD, username = PGUSER;;api_key=API_KEY",
                                         "CLOUDTASER_DELIVERY",
                                         "both",
                                         "CLOUDTASER_STARTUP_TIMEOUT",
                                         "2m",
                                         "CLOUDTASER_ROTATION",
                                         "signal:USR1",
                                         "CLOUDTASER_ROTATION_INTERVAL",
                                         "1500ms",
                                         "CLOUDTASER_ROTATION_GRACE",
                                         "3s",
                                         "CLOUDTASER_LOG_FORMAT",
                                         "json",
                                         "CLOUDTASER_LOG_LEVEL",
                                         "debug",
                                         "CLOUDTASER_ORIGINAL_CMD",
                                         "[\"/app\",\"a b\"]",
                                         NULL};
        char *argv[] = {"w", NULL};
        struct wrapper_config c;
        struct error_report err = {};
        is_int(parse(kv, 1, argv, &c, &err), 0, "full configuration parses (%s)", err.message);
        ok(c.env.auth == AUTH_TOKEN && c.env.has_token, "token auth");
        is_str(c.env.namespace_, "team-a", "namespace");
        ok(c.env.delivery == DELIVERY_BOTH && c.env.rotation == ROTATION_SIGNAL &&
                   c.env.rotation_signal == SIGUSR1,
           "delivery both, rotation signal:USR1");
        ok(c.env.startup_timeout_ms == 120000 && c.env.rotation_interval_ms == 1500 &&
                   c.env.rotation_grace_ms == 3000,
           "durations");
        ok(c.env.log_format == LOG_FORMAT_JSON && c.env.log_level == LOG_DEBUG, "log settings");
        ok(c.env.n_secrets == 3, "three paths");
        is_str(c.env.secrets[0].path, "secret/data/app/db", "path trimmed");
        is_str(c.env.secrets[2].path, "secret/x", "leading slash dropped");
        ok(!c.env.secrets[0].all_fields && c.env.secrets[0].n_maps == 2 &&
                   strcmp(c.env.secrets[0].maps[1].field, "username") == 0 &&
                   strcmp(c.env.secrets[0].maps[1].env, "PGUSER") == 0,
           "group 1 mapped, spaces trimmed");
        ok(c.env.secrets[1].all_fields, "an empty group exports every field");
        ok(c.env.secrets[2].n_maps == 1 && strcmp(c.env.secrets[2].maps[0].env, "API_KEY") == 0,
           "group 3");
        ok(c.argc == 2 && strcmp(c.argv[1], "a b") == 0, "CLOUDTASER_ORIGINAL_CMD as a JSON array");
        config_done(&c);
}

static void test_errors(void) {
        static const struct {
                const char *const kv[24];
                const char *reason;
        } cases[] = {
                {{"VAULT_AUTH_ROLE", "a", "CLOUDTASER_SECRET_PATHS", "x/y", NULL},
                 "VAULT_ADDR is required"},
                {{"VAULT_ADDR", "vault:8200", "VAULT_AUTH_ROLE", "a", "CLOUDTASER_SECRET_PATHS",
                  "x/y", NULL},
                 "must start with https://"},
                {{"VAULT_ADDR", "https://v", "CLOUDTASER_SECRET_PATHS", "x/y", NULL},
                 "VAULT_AUTH_ROLE is required"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_METHOD", "token",
                  "CLOUDTASER_SECRET_PATHS", "x/y", NULL},
                 "VAULT_TOKEN is required"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_METHOD", "ldap", NULL},
                 "VAULT_AUTH_METHOD must be"},
                {{BASE, "CLOUDTASER_DELIVERY", "file", NULL}, "CLOUDTASER_DELIVERY must be"},
                {{BASE, "CLOUDTASER_ROTATION", "signal:NOPE", NULL}, "unknown or unusable signal"},
                {{BASE, "CLOUDTASER_ROTATION", "signal:KILL", NULL}, "unknown or unusable signal"},
                {{BASE, "CLOUDTASER_ROTATION", "sometimes", NULL}, "CLOUDTASER_ROTATION must be"},
                {{BASE, "CLOUDTASER_ROTATION_INTERVAL", "10ms", NULL}, "at least 1s"},
                {{BASE, "CLOUDTASER_STARTUP_TIMEOUT", "soon", NULL},
                 "CLOUDTASER_STARTUP_TIMEOUT must be"},
                {{BASE, "CLOUDTASER_STARTUP_TIMEOUT", "0", NULL},
                 "CLOUDTASER_STARTUP_TIMEOUT must be"},
                {{BASE, "CLOUDTASER_LOG_FORMAT", "xml", NULL}, "CLOUDTASER_LOG_FORMAT"},
                {{BASE, "VAULT_SKIP_VERIFY", "maybe", NULL}, "VAULT_SKIP_VERIFY must be"},
                {{BASE, "VAULT_CACERT", "/a", "CLOUDTASER_VAULT_CA_PEM", "x", NULL}, "only one of"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_ROLE", "a", NULL},
                 "CLOUDTASER_SECRET_PATHS is empty"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_ROLE", "a", "CLOUDTASER_SECRET_PATHS",
                  "a,,b", NULL},
                 "empty entry (#2)"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_ROLE", "a", "CLOUDTASER_SECRET_PATHS",
                  "a/../b", NULL},
                 "not allowed in a vault path"},
                {{"VAULT_ADDR", "https://v", "VAULT_AUTH_ROLE", "a", "CLOUDTASER_SECRET_PATHS",
                  "a b", NULL},
                 "not allowed in a vault path"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=X;b=Y", NULL},
                 "more groups (2) than there are secret paths (1)"},
                {{BASE, "CLOUDTASER_ENV_MAP", "password", NULL}, "without '='"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=9X", NULL},
                 "not a valid environment variable name"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=X-Y", NULL},
                 "not a valid environment variable name"},
                {{BASE, "CLOUDTASER_ENV_MAP", "=X", NULL}, "empty or oversized field name"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=X,b=X", NULL}, "maps two secrets to X"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=VAULT_TOKEN", NULL}, "reserved for the wrapper"},
                {{BASE, NULL}, "no command"},
                {{BASE, "CLOUDTASER_ORIGINAL_CMD", "[\"a\", 1]", NULL}, "JSON array of at most"},
                {{BASE, "CLOUDTASER_ORIGINAL_CMD", "[]", NULL}, "is empty"},
                {{BASE, "CLOUDTASER_ORIGINAL_CMD", "[\"a\"", NULL}, "not a valid JSON array"},
        };
        char *argv[] = {"w", NULL};
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct wrapper_config c;
                struct error_report err = {};
                int r = parse(cases[i].kv, 1, argv, &c, &err);
                ok(r == -EINVAL && strstr(err.message, cases[i].reason) != NULL,
                   "error case %zu: '%s'", i, err.message);
                if (r == 0)
                        config_done(&c);
        }
}

/* Sealed token mode: token auth without VAULT_TOKEN but with CLOUDTASER_UNSEAL_CA_PEM is served
 * (it was refused before the unseal server existed); broker mode still is not. */
static void test_sealed(void) {
        static const char *const kv[] = {"VAULT_ADDR",
                                         "https://vault:8200",
                                         "VAULT_AUTH_METHOD",
                                         "token",
                                         "CLOUDTASER_UNSEAL_CA_PEM",
                                         "-----BEGIN CERTIFICATE-----",
                                         "CLOUDTASER_SECRET_PATHS",
                                         "secret/data/app/db",
                                         NULL};
        static const char *const listen[] = {"VAULT_ADDR",
                                             "https://vault:8200",
                                             "VAULT_AUTH_METHOD",
                                             "token",
                                             "CLOUDTASER_UNSEAL_CA_PEM",
                                             "pem",
                                             "CLOUDTASER_UNSEAL_LISTEN",
                                             "127.0.0.1:9199",
                                             "CLOUDTASER_SECRET_PATHS",
                                             "secret/data/app/db",
                                             NULL};
        char *argv[] = {"w", "--", "/bin/app", NULL};
        struct wrapper_config c;
        struct error_report err = {};
        is_int(parse(kv, 3, argv, &c, &err), 0, "sealed token mode parses");
        ok(c.sealed && c.env.auth == AUTH_TOKEN && !c.env.has_token,
           "  sealed, token auth, no token");
        ok(c.env.unseal_ca_pem && strstr(c.env.unseal_ca_pem, "BEGIN") && c.env.unseal_listen &&
                   strcmp(c.env.unseal_listen, ":8199") == 0,
           "  the CA, and the listen address :8199 by default");
        config_done(&c);
        is_int(parse(listen, 3, argv, &c, &err), 0, "CLOUDTASER_UNSEAL_LISTEN");
        ok(c.sealed && strcmp(c.env.unseal_listen, "127.0.0.1:9199") == 0, "  taken");
        config_done(&c);
        static const char *const broker[] = {"VAULT_AUTH_METHOD",
                                             "broker",
                                             "CLOUDTASER_BROKER_ADDRESS",
                                             "https://broker:8443",
                                             "CLOUDTASER_BROKER_CA_PEM",
                                             "pem",
                                             "CLOUDTASER_SECRET_PATHS",
                                             "secret/data/app/db",
                                             NULL};
        is_int(parse(broker, 3, argv, &c, &err), 0, "broker mode parses");
        ok(!c.sealed && c.env.broker_addr && strcmp(c.env.broker_addr, "https://broker:8443") == 0,
           "  broker mode is not sealed; its address taken");
        config_done(&c);
}

int main(void) {
        test_defaults();
        test_sealed();
        test_full();
        test_errors();
        return tap_done();
}
