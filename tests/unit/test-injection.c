/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/injection, table-driven: the table itself, the enums and their string
 * forms, the list parsers and their limits, the reader's rows and the rules between them, and
 * which row each refusal names. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/injection.h"
#include "common/macro.h"
#include "common/strv.h"
#include "common/vault.h"
#include "tests/tap.h"

/* --- the table -------------------------------------------------------------------------------- */

static void test_table(void) {
        bool unique = true, prefixed = true, sane = true, found = true;

        for (size_t i = 0; i < INJECTION_N_VARIABLES; i++) {
                const struct injection_variable *v = &injection_variables[i];
                prefixed = prefixed && injection_is_wrapper_variable(v->name) &&
                           injection_env_name_valid(v->name, strlen(v->name)) &&
                           (!v->annotation || strncmp(v->annotation, INJECTION_ANNOTATION_PREFIX,
                                                      strlen(INJECTION_ANNOTATION_PREFIX)) == 0);
                sane = sane && v->parse && v->max > 0 &&
                       (v->setter == INJECTION_SET_OPERATOR || !v->annotation);
                found = found && injection_variable_by_name(v->name) == v &&
                        (!v->annotation || injection_variable_by_annotation(v->annotation) == v);
                for (size_t j = i + 1; j < INJECTION_N_VARIABLES; j++) {
                        const struct injection_variable *w = &injection_variables[j];
                        unique = unique && strcmp(v->name, w->name) != 0 &&
                                 (!v->annotation || !w->annotation ||
                                  strcmp(v->annotation, w->annotation) != 0);
                }
        }
        ok(unique, "each variable and each annotation has one row");
        ok(prefixed, "every row is a wrapper variable; every annotation is cloudtaser.io/");
        ok(sane, "every row has a parser and a limit; only operator rows have an annotation");
        ok(found, "every row is found by its name and by its annotation");
        ok(!injection_variable_by_name("VAULT_ADDRESS") && !injection_variable_by_name(NULL) &&
                   !injection_variable_by_annotation("cloudtaser.io/inject") &&
                   !injection_variable_by_annotation("vault-role"),
           "no row for other names");

        static const struct {
                const char *name, *annotation;
                enum injection_setter setter;
        } rows[] = {
                {"VAULT_ADDR", "cloudtaser.io/vault-address", INJECTION_SET_OPERATOR},
                {"VAULT_AUTH_METHOD", "cloudtaser.io/vault-auth-method", INJECTION_SET_OPERATOR},
                {"VAULT_AUTH_ROLE", "cloudtaser.io/vault-role", INJECTION_SET_OPERATOR},
                {"VAULT_AUTH_MOUNT_PATH", "cloudtaser.io/vault-auth-path", INJECTION_SET_OPERATOR},
                {"VAULT_NAMESPACE", "cloudtaser.io/vault-namespace", INJECTION_SET_OPERATOR},
                {"VAULT_SKIP_VERIFY", "cloudtaser.io/vault-skip-verify", INJECTION_SET_OPERATOR},
                {"CLOUDTASER_SECRET_PATHS", "cloudtaser.io/secret-paths", INJECTION_SET_OPERATOR},
                {"CLOUDTASER_ENV_MAP", "cloudtaser.io/env-map", INJECTION_SET_OPERATOR},
                {"CLOUDTASER_DELIVERY", "cloudtaser.io/delivery", INJECTION_SET_OPERATOR},
                {"CLOUDTASER_ROTATION", "cloudtaser.io/rotation", INJECTION_SET_OPERATOR},
                {"CLOUDTASER_VAULT_CA_PEM", NULL, INJECTION_SET_OPERATOR},
                {"CLOUDTASER_VAULT_PEER_ADDRESSES", NULL, INJECTION_SET_OPERATOR},
                {"CLOUDTASER_ORIGINAL_CMD", NULL, INJECTION_SET_OPERATOR},
                {"VAULT_TOKEN", NULL, INJECTION_SET_POD},
                {"CLOUDTASER_LOG_FORMAT", NULL, INJECTION_SET_POD},
                {"CLOUDTASER_LOG_LEVEL", NULL, INJECTION_SET_POD},
                {"VAULT_CACERT", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_SA_TOKEN_PATH", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_STARTUP_TIMEOUT", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_ROTATION_INTERVAL", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_ROTATION_GRACE", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_BROKER_ADDRESS", NULL, INJECTION_SET_OPERATOR},
                {"CLOUDTASER_BROKER_CA_PEM", NULL, INJECTION_SET_OPERATOR},
                {"CLOUDTASER_BROKER_TOKEN_PATH", NULL, INJECTION_SET_NEVER},
                {"CLOUDTASER_UNSEAL_CA_PEM", NULL, INJECTION_SET_OPERATOR},
                {"CLOUDTASER_UNSEAL_LISTEN", NULL, INJECTION_SET_NEVER},
        };
        is_int(ELEMENTSOF(rows), INJECTION_N_VARIABLES, "the expected rows are all the rows");
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const struct injection_variable *v = injection_variable_by_name(rows[i].name);
                ok(v && v->setter == rows[i].setter &&
                           (rows[i].annotation ? v->annotation && strcmp(v->annotation,
                                                                         rows[i].annotation) == 0
                                               : !v->annotation),
                   "row %s: set by %d, annotation %s", rows[i].name, rows[i].setter,
                   rows[i].annotation ? rows[i].annotation : "none");
        }
        is_str(injection_variables[INJECTION_N_VARIABLES - 1].name, "CLOUDTASER_ORIGINAL_CMD",
               "the command is the last row (the operator writes it last)");
        static const struct {
                enum injection_row row;
                const char *name;
        } ids[] = {
                {INJECTION_ROW_VAULT_ADDR, "VAULT_ADDR"},
                {INJECTION_ROW_AUTH_METHOD, "VAULT_AUTH_METHOD"},
                {INJECTION_ROW_AUTH_MOUNT_PATH, "VAULT_AUTH_MOUNT_PATH"},
                {INJECTION_ROW_TOKEN, "VAULT_TOKEN"},
                {INJECTION_ROW_CA_PEM, "CLOUDTASER_VAULT_CA_PEM"},
                {INJECTION_ROW_SKIP_VERIFY, "VAULT_SKIP_VERIFY"},
                {INJECTION_ROW_SECRET_PATHS, "CLOUDTASER_SECRET_PATHS"},
                {INJECTION_ROW_ENV_MAP, "CLOUDTASER_ENV_MAP"},
                {INJECTION_ROW_ORIGINAL_CMD, "CLOUDTASER_ORIGINAL_CMD"},
        };
        bool ids_ok = _INJECTION_ROW_MAX == INJECTION_N_VARIABLES;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                ids_ok = ids_ok && strcmp(injection_variables[ids[i].row].name, ids[i].name) == 0;
        ok(ids_ok, "the row ids name their rows");
}

/* --- enums ------------------------------------------------------------------------------------ */

static void test_enums(void) {
        static const char *const auths[] = {"kubernetes", "token", "broker"};
        static const char *const deliveries[] = {"env", "memfd", "both"};
        for (size_t i = 0; i < ELEMENTSOF(auths); i++) {
                enum injection_auth_method m;
                ok(injection_auth_method_from_string(auths[i], &m) == 0 &&
                           strcmp(injection_auth_method_to_string(m), auths[i]) == 0,
                   "auth method %s round-trips", auths[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(deliveries); i++) {
                enum injection_delivery d;
                ok(injection_delivery_from_string(deliveries[i], &d) == 0 &&
                           strcmp(injection_delivery_to_string(d), deliveries[i]) == 0,
                   "delivery %s round-trips", deliveries[i]);
        }
        enum injection_auth_method m = INJECTION_AUTH_TOKEN;
        enum injection_delivery d = INJECTION_DELIVERY_BOTH;
        ok(injection_auth_method_from_string("Kubernetes", &m) == -EINVAL &&
                   m == INJECTION_AUTH_TOKEN && injection_auth_method_from_string(NULL, &m) < 0,
           "auth method: exact lower case only, out-parameter untouched on failure");
        ok(injection_delivery_from_string("file", &d) == -EINVAL && d == INJECTION_DELIVERY_BOTH,
           "delivery: unknown refused");
        ok(!injection_auth_method_to_string(_INJECTION_AUTH_MAX) &&
                   !injection_delivery_to_string(_INJECTION_DELIVERY_MAX) &&
                   !injection_rotation_to_string(_INJECTION_ROTATION_MAX),
           "out of range: NULL");

        static const struct {
                const char *in;
                int rc;
                enum injection_rotation want;
                int sig;
        } rot[] = {
                {"none", 0, INJECTION_ROTATION_NONE, 0},
                {"restart", 0, INJECTION_ROTATION_RESTART, 0},
                {"signal:HUP", 0, INJECTION_ROTATION_SIGNAL, SIGHUP},
                {"signal:sigusr1", 0, INJECTION_ROTATION_SIGNAL, SIGUSR1},
                {"signal:KILL", -EINVAL, 0, 0},
                {"signal:STOP", -EINVAL, 0, 0},
                {"signal:NOPE", -EINVAL, 0, 0},
                {"signal:", -EINVAL, 0, 0},
                {"signal:HUPHUPHUPHUPHUPHUPHUP", -EINVAL, 0, 0},
                {"Restart", -EINVAL, 0, 0},
                {"", -EINVAL, 0, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(rot); i++) {
                enum injection_rotation r = _INJECTION_ROTATION_MAX;
                int sig = -1;
                int k = injection_rotation_from_string(rot[i].in, &r, &sig);
                ok(k == rot[i].rc && (k < 0 ? r == _INJECTION_ROTATION_MAX && sig == -1
                                            : r == rot[i].want && sig == rot[i].sig),
                   "rotation '%s': %d", rot[i].in, k);
        }
        is_str(injection_rotation_to_string(INJECTION_ROTATION_SIGNAL), "signal",
               "rotation string form");
}

/* --- scalars (moved from test-wrapper-config) ------------------------------------------------- */

static void test_scalars(void) {
        char name[INJECTION_MAX_NAME + 2];
        ok(injection_field_to_env("api-key.v2", name, sizeof(name)) == 0 &&
                   strcmp(name, "API_KEY_V2") == 0,
           "field to env name: %s", name);
        ok(injection_field_to_env("2fa", name, sizeof(name)) == 0 && strcmp(name, "_2FA") == 0,
           "a leading digit gets an underscore: %s", name);
        is_int(injection_field_to_env("", name, sizeof(name)), -EINVAL, "empty field");
        char big[INJECTION_MAX_NAME + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        is_int(injection_field_to_env(big, name, sizeof(name)), -E2BIG, "a field over the limit");
        ok(injection_is_wrapper_variable("VAULT_ADDR=x") &&
                   injection_is_wrapper_variable("CLOUDTASER_X") &&
                   !injection_is_wrapper_variable("VAULTED=1") &&
                   !injection_is_wrapper_variable("PATH=/bin"),
           "wrapper variables are recognised by prefix");
        ok(injection_env_name_valid("_A1", 3) && !injection_env_name_valid("1A", 2) &&
                   !injection_env_name_valid("A-B", 3) && !injection_env_name_valid("", 0),
           "variable names");
        uint64_t ms;
        ok(injection_parse_duration_ms("90", &ms) == 0 && ms == 90000, "plain seconds");
        ok(injection_parse_duration_ms("250ms", &ms) == 0 && ms == 250, "milliseconds");
        ok(injection_parse_duration_ms("2h", &ms) == 0 && ms == 7200000, "hours");
        is_int(injection_parse_duration_ms("-1s", &ms), -EINVAL, "negative");
        is_int(injection_parse_duration_ms("1d", &ms), -EINVAL, "unknown unit");
        is_int(injection_parse_duration_ms("99999999999s", &ms), -ERANGE, "too large");
        int sig;
        ok(injection_parse_signal("SIGHUP", &sig) == 0 && sig == SIGHUP, "SIGHUP");
        ok(injection_parse_signal("usr2", &sig) == 0 && sig == SIGUSR2, "usr2");
        is_int(injection_parse_signal("SIGNOPE", &sig), -EINVAL, "unknown signal");
        is_str(injection_signal_name(SIGTERM), "TERM", "signal name");
        is_str(injection_signal_name(0), "?", "no name for 0");
}

/* --- list parsers ----------------------------------------------------------------------------- */

static void test_secret_paths(void) {
        static const struct {
                const char *in;
                size_t n;           /* 0: refused */
                const char *joined; /* paths joined by '|', or a substring of the refusal */
        } t[] = {
                {"secret/data/app/db", 1, "secret/data/app/db"},
                {" secret/a , /kv/b,//c/d/ ", 3, "secret/a|kv/b|c/d/"},
                {"a@b+c=d:e~f-g_h.i", 1, "a@b+c=d:e~f-g_h.i"},
                {"secret/.hidden/x", 1, "secret/.hidden/x"},
                {"secret/./web", 0, "path #1 has a segment not allowed in a vault path"},
                {"secret//data/web", 0, "path #1 has a segment not allowed in a vault path"},
                {"a,secret/.", 0, "path #2 has a segment not allowed"},
                {".", 0, "segment not allowed"},
                {"a/../b", 0, "character not allowed in a vault path (offset 2)"},
                {"..", 0, "character not allowed in a vault path"},
                {"a b", 0, "character not allowed in a vault path (offset 1)"},
                {"a$b", 0, "character not allowed"},
                {"a,,b", 0, "an empty entry (#2)"},
                {"/", 0, "an empty entry (#1)"},
                {"", 0, " is empty"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct injection_secret *specs = NULL;
                size_t n = 0;
                struct injection_error err = {};
                char joined[512] = "", text[512] = "";
                int r = injection_parse_secret_paths(t[i].in, &specs, &n, &err);
                if (t[i].n) {
                        bool valid = true;
                        for (size_t j = 0; r == 0 && j < n; j++) {
                                size_t l = strlen(joined);
                                (void) snprintf(joined + l, sizeof(joined) - l, "%s%s",
                                                j ? "|" : "", specs[j].path);
                                valid = valid && vault_path_valid(specs[j].path) &&
                                        specs[j].all_fields && !specs[j].maps;
                        }
                        ok(r == 0 && n == t[i].n && valid && strcmp(joined, t[i].joined) == 0,
                           "paths #%zu: %s", i, joined);
                        injection_secrets_free(specs, n);
                } else {
                        (void) injection_error_format(&err, false, text, sizeof(text));
                        ok(r == -EINVAL && err.variable &&
                                   strcmp(err.variable->name, "CLOUDTASER_SECRET_PATHS") == 0 &&
                                   strstr(text, t[i].joined) && !specs,
                           "paths #%zu refused: %s", i, text);
                }
        }

        /* Limits. */
        struct injection_secret *specs = NULL;
        size_t n = 0;
        struct injection_error err = {};
        char *big = malloc(INJECTION_MAX_LIST + 2);
        if (!big)
                abort();
        memset(big, 'a', INJECTION_MAX_LIST + 1);
        big[INJECTION_MAX_LIST + 1] = '\0';
        ok(injection_parse_secret_paths(big, &specs, &n, &err) == -EINVAL &&
                   strstr(err.reason, "longer than"),
           "an oversized path list");
        big[VAULT_PATH_MAX] = '\0';
        ok(injection_parse_secret_paths(big, &specs, &n, &err) == -EINVAL &&
                   strstr(err.reason, "path #1 is longer than"),
           "an oversized path");
        free(big);
        char many[INJECTION_MAX_PATHS * 2 + 8];
        size_t o = 0;
        for (int i = 0; i <= INJECTION_MAX_PATHS; i++) {
                if (i)
                        many[o++] = ',';
                many[o++] = 'a';
        }
        many[o] = '\0';
        ok(injection_parse_secret_paths(many, &specs, &n, &err) == -EINVAL &&
                   strstr(err.reason, "more than 64 paths"),
           "more than INJECTION_MAX_PATHS paths");
        many[o - 2] = '\0';
        ok(injection_parse_secret_paths(many, &specs, &n, &err) == 0 && n == INJECTION_MAX_PATHS,
           "exactly INJECTION_MAX_PATHS paths");
        injection_secrets_free(specs, n);
}

static void test_env_map(void) {
        static const struct {
                const char *paths, *map;
                const char *want; /* "path:field=ENV ..." or a substring of the refusal */
                bool accepted;
        } t[] = {
                {"a,b", "password=PW, user = U;key=K", "0:password=PW 0:user=U 1:key=K", true},
                {"a,b,c", ";x=X", "1:x=X", true},
                {"a", "", "", true},
                {"a", "a=X;b=Y", "more groups (2) than there are secret paths (1)", false},
                {"a", "password", "without '='", false},
                {"a", "a=9X", "'9X' is not a valid environment variable name", false},
                {"a", "a=X-Y", "not a valid environment variable name", false},
                {"a", "=X", "empty or oversized field name", false},
                {"a,b", "a=X;b=X", "maps two secrets to X", false},
                {"a", "a=VAULT_TOKEN", "VAULT_TOKEN is reserved for the wrapper", false},
                {"a", "a=CLOUDTASER_X", "reserved for the wrapper", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct injection_secret *specs = NULL;
                size_t n = 0;
                struct injection_error err = {};
                char got[512] = "", text[512] = "";
                if (injection_parse_secret_paths(t[i].paths, &specs, &n, &err) < 0)
                        abort();
                int r = injection_parse_env_map(t[i].map, specs, n, &err);
                for (size_t p = 0; r == 0 && p < n; p++)
                        for (size_t j = 0; j < specs[p].n_maps; j++) {
                                size_t l = strlen(got);
                                (void) snprintf(got + l, sizeof(got) - l, "%s%zu:%s=%s",
                                                l ? " " : "", p, specs[p].maps[j].field,
                                                specs[p].maps[j].env);
                        }
                if (t[i].accepted)
                        ok(r == 0 && strcmp(got, t[i].want) == 0, "env map #%zu: %s", i, got);
                else {
                        (void) injection_error_format(&err, true, text, sizeof(text));
                        ok(r == -EINVAL && strstr(text, t[i].want) &&
                                   strncmp(text, "cloudtaser.io/env-map", 21) == 0,
                           "env map #%zu refused: %s", i, text);
                }
                injection_secrets_free(specs, n);
        }
}

static void test_command(void) {
        static const struct {
                const char *in;
                size_t argc; /* 0: refused */
                const char *last_or_reason;
        } t[] = {
                {"  /bin/app  -x\t y ", 3, "y"},
                {"[\"/app\",\"a b\"]", 2, "a b"},
                {" \n[\"/app\"]", 1, "/app"},
                {"[]", 0, "CLOUDTASER_ORIGINAL_CMD is empty"},
                {"[\"\"]", 0, "is empty"},
                {"   ", 0, "is empty"},
                {"[\"a\", 1]", 0, "must be a JSON array of at most 4096 strings"},
                {"[\"a\"", 0, "is not a valid JSON array of strings"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char **argv = NULL, text[512] = "";
                size_t argc = 0;
                struct injection_error err = {};
                int r = injection_parse_command(t[i].in, &argv, &argc, &err);
                if (t[i].argc)
                        ok(r == 0 && argc == t[i].argc && !argv[argc] &&
                                   strcmp(argv[argc - 1], t[i].last_or_reason) == 0,
                           "command #%zu: %zu arguments", i, argc);
                else {
                        (void) injection_error_format(&err, false, text, sizeof(text));
                        ok(r == -EINVAL && !argv && strstr(text, t[i].last_or_reason),
                           "command #%zu refused: %s", i, text);
                }
                (void) strv_free(argv);
        }
}

/* --- the reader ------------------------------------------------------------------------------- */

static const char *lookup(const char *name, void *userdata) {
        const char *const *kv = userdata;
        for (size_t i = 0; kv[i]; i += 2)
                if (strcmp(kv[i], name) == 0)
                        return kv[i + 1];
        return NULL;
}

#define BASE "VAULT_ADDR", "https://v", "VAULT_AUTH_ROLE", "app", "CLOUDTASER_SECRET_PATHS", "a/b"

static void test_reader(void) {
        static const struct {
                const char *const kv[16];
                const char *row;    /* the row refused, NULL: accepted */
                const char *reason; /* a substring of the refusal as an operator prints it */
        } t[] = {
                {{BASE, NULL}, NULL, NULL},
                {{BASE, "VAULT_AUTH_METHOD", "token", "VAULT_TOKEN", "t", NULL}, NULL, NULL},
                {{BASE, "VAULT_NAMESPACE", "admin/team-a/", NULL}, NULL, NULL},
                {{BASE, "VAULT_AUTH_MOUNT_PATH", "k8s-prod", NULL}, NULL, NULL},
                {{BASE, "VAULT_SKIP_VERIFY", "", NULL}, NULL, NULL},
                {{BASE, "VAULT_AUTH_METHOD", "broker", NULL},
                 "CLOUDTASER_BROKER_ADDRESS",
                 "CLOUDTASER_BROKER_ADDRESS is required for broker auth"},
                {{BASE, "VAULT_AUTH_METHOD", "broker", "CLOUDTASER_BROKER_ADDRESS",
                  "https://b:8443", NULL},
                 "CLOUDTASER_BROKER_CA_PEM",
                 "CLOUDTASER_BROKER_CA_PEM is required for broker auth"},
                {{"VAULT_AUTH_METHOD", "broker", "CLOUDTASER_BROKER_ADDRESS", "https://b:8443",
                  "CLOUDTASER_BROKER_CA_PEM", "pem", "CLOUDTASER_SECRET_PATHS", "a/b", NULL},
                 NULL,
                 NULL},
                {{BASE, "VAULT_AUTH_METHOD", "broker", "CLOUDTASER_BROKER_ADDRESS", "http://b:8443",
                  NULL},
                 "CLOUDTASER_BROKER_ADDRESS",
                 "must be an https:// URL"},
                {{BASE, "CLOUDTASER_BROKER_ADDRESS", "https://u@b:8443", NULL},
                 "CLOUDTASER_BROKER_ADDRESS",
                 "has user info"},
                {{BASE, "VAULT_AUTH_METHOD", "token", "CLOUDTASER_UNSEAL_CA_PEM", "pem", NULL},
                 NULL,
                 NULL},
                {{BASE, "CLOUDTASER_UNSEAL_LISTEN", "127.0.0.1:18199", NULL}, NULL, NULL},
                {{BASE, "CLOUDTASER_UNSEAL_LISTEN", "[::1]:8199", NULL}, NULL, NULL},
                {{BASE, "CLOUDTASER_UNSEAL_LISTEN", "8199", NULL},
                 "CLOUDTASER_UNSEAL_LISTEN",
                 "must be HOST:PORT or :PORT"},
                {{BASE, "CLOUDTASER_UNSEAL_LISTEN", ":70000", NULL},
                 "CLOUDTASER_UNSEAL_LISTEN",
                 "a port from 1 to 65535"},
                {{BASE, "CLOUDTASER_UNSEAL_LISTEN", "a/b:80", NULL},
                 "CLOUDTASER_UNSEAL_LISTEN",
                 "not a name or an address"},
                {{BASE, "VAULT_AUTH_METHOD", "ldap", NULL},
                 "VAULT_AUTH_METHOD",
                 "cloudtaser.io/vault-auth-method must be kubernetes, token or broker"},
                {{BASE, "VAULT_AUTH_METHOD", "token", NULL},
                 "VAULT_AUTH_METHOD",
                 "cloudtaser.io/vault-auth-method is token, but nothing delivers the token"},
                {{BASE, "VAULT_AUTH_METHOD", "token", "VAULT_TOKEN", "", NULL},
                 "VAULT_AUTH_METHOD",
                 "VAULT_TOKEN is required for token auth"},
                {{"VAULT_ADDR", "https://v", "CLOUDTASER_SECRET_PATHS", "a", NULL},
                 "VAULT_AUTH_ROLE",
                 "cloudtaser.io/vault-role is required for kubernetes auth"},
                {{BASE, "VAULT_AUTH_ROLE", "a b", NULL},
                 "VAULT_AUTH_ROLE",
                 "cloudtaser.io/vault-role must be 1 to 128 letters"},
                {{BASE, "VAULT_AUTH_MOUNT_PATH", "auth/../sys", NULL},
                 "VAULT_AUTH_MOUNT_PATH",
                 "cloudtaser.io/vault-auth-path must be a mount path"},
                {{BASE, "VAULT_AUTH_MOUNT_PATH", "/auth/k8s", NULL},
                 "VAULT_AUTH_MOUNT_PATH",
                 "must be a mount path"},
                {{BASE, "VAULT_NAMESPACE", "a/./b", NULL},
                 "VAULT_NAMESPACE",
                 "cloudtaser.io/vault-namespace must be a vault namespace"},
                {{BASE, "VAULT_NAMESPACE", "a b", NULL}, "VAULT_NAMESPACE", "must be a vault"},
                {{BASE, "CLOUDTASER_VAULT_PEER_ADDRESSES", "https://v-0:8200, https://v-1:8200",
                  NULL},
                 NULL,
                 NULL},
                {{BASE, "CLOUDTASER_VAULT_PEER_ADDRESSES", "https://a,ftp://b", NULL},
                 "CLOUDTASER_VAULT_PEER_ADDRESSES",
                 ": entry #2 is not an https://"},
                {{BASE, "CLOUDTASER_VAULT_PEER_ADDRESSES", "https://u@evil", NULL},
                 "CLOUDTASER_VAULT_PEER_ADDRESSES",
                 ": entry #1 has user info"},
                {{BASE, "CLOUDTASER_VAULT_PEER_ADDRESSES", " , ", NULL},
                 "CLOUDTASER_VAULT_PEER_ADDRESSES",
                 " names no address"},
                {{BASE, "CLOUDTASER_VAULT_PEER_ADDRESSES",
                  "https://1,https://2,https://3,https://4,https://5,https://6,https://7,https://8,"
                  "https://9",
                  NULL},
                 "CLOUDTASER_VAULT_PEER_ADDRESSES",
                 ": more than 8 addresses"},
                {{BASE, "CLOUDTASER_SECRET_PATHS", "secret/./web", NULL},
                 "CLOUDTASER_SECRET_PATHS",
                 "cloudtaser.io/secret-paths: path #1 has a segment not allowed"},
                {{BASE, "CLOUDTASER_ROTATION", "signal:KILL", NULL},
                 "CLOUDTASER_ROTATION",
                 "cloudtaser.io/rotation must be none, restart or signal:NAME: unknown or "
                 "unusable"},
                {{BASE, "CLOUDTASER_DELIVERY", "file", NULL},
                 "CLOUDTASER_DELIVERY",
                 "cloudtaser.io/delivery must be env, memfd or both"},
                {{BASE, "CLOUDTASER_ENV_MAP", "a=B", "CLOUDTASER_SECRET_PATHS", "", NULL},
                 "CLOUDTASER_ENV_MAP",
                 "cloudtaser.io/env-map is set but CLOUDTASER_SECRET_PATHS is not"},
                {{BASE, "CLOUDTASER_LOG_LEVEL", "loud", NULL},
                 "CLOUDTASER_LOG_LEVEL",
                 "CLOUDTASER_LOG_LEVEL must be error, warning, notice, info or debug"},
                {{BASE, "VAULT_CACERT", "/a", "CLOUDTASER_VAULT_CA_PEM", "x", NULL},
                 "VAULT_CACERT",
                 "only one of"},
                {{BASE, "VAULT_ADDR", "vault:8200", NULL},
                 "VAULT_ADDR",
                 "cloudtaser.io/vault-address must start with https://"},
                {{BASE, "CLOUDTASER_ROTATION_GRACE", "soon", NULL},
                 "CLOUDTASER_ROTATION_GRACE",
                 "CLOUDTASER_ROTATION_GRACE must be a duration"},
                {{BASE, "VAULT_SKIP_VERIFY", "maybe", NULL},
                 "VAULT_SKIP_VERIFY",
                 "cloudtaser.io/vault-skip-verify must be true or false"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct injection_settings s;
                struct injection_error err = {};
                char text[512] = "";
                /* The table's lookup needs the last of duplicates: later pairs override BASE. */
                const char *kv[32];
                size_t n = 0;
                for (size_t j = 0; t[i].kv[j]; j += 2) {
                        size_t k;
                        for (k = 0; k < n && strcmp(kv[k], t[i].kv[j]) != 0; k += 2)
                                ;
                        kv[k] = t[i].kv[j];
                        kv[k + 1] = t[i].kv[j + 1];
                        if (k == n)
                                n += 2;
                }
                kv[n] = NULL;
                int r = injection_settings_parse(lookup, kv, &s, &err);
                if (!t[i].row) {
                        ok(r == 0, "settings #%zu accepted (%s)", i, err.reason);
                        if (r == 0)
                                injection_settings_done(&s);
                        continue;
                }
                (void) injection_error_format(&err, true, text, sizeof(text));
                ok(r == -EINVAL && err.variable && strcmp(err.variable->name, t[i].row) == 0 &&
                           strstr(text, t[i].reason),
                   "settings #%zu refused on %s: %s", i, t[i].row, text);
        }

        /* Every row's limit. */
        char *big = malloc(INJECTION_MAX_LIST + 2);
        if (!big)
                abort();
        memset(big, 'a', INJECTION_MAX_LIST + 1);
        big[INJECTION_MAX_LIST + 1] = '\0';
        bool limited = true;
        for (size_t i = 0; i < INJECTION_N_VARIABLES; i++) {
                const struct injection_variable *v = &injection_variables[i];
                if (v->max > INJECTION_MAX_LIST)
                        continue;
                const char *kv[] = {v->name, big, NULL};
                struct injection_settings s;
                struct injection_error err = {};
                big[v->max + 1] = '\0';
                int r = injection_settings_read(lookup, (void *) kv, &s, &err);
                limited = limited && r == -EINVAL && err.variable == v &&
                          strstr(err.reason, "is longer than");
                big[v->max + 1] = 'a';
                big[INJECTION_MAX_LIST + 1] = '\0';
                if (r == 0)
                        injection_settings_done(&s);
        }
        ok(limited, "every row refuses a value one byte over its limit");
        free(big);

        /* Defaults, and what the values become. */
        static const char *const full[] = {
                BASE,    "VAULT_SKIP_VERIFY",       "yes",         "CLOUDTASER_DELIVERY",
                "memfd", "CLOUDTASER_ROTATION",     "signal:USR2", "CLOUDTASER_ENV_MAP",
                "f=F",   "CLOUDTASER_ORIGINAL_CMD", "[\"/a\"]",    NULL};
        struct injection_settings s;
        struct injection_error err = {};
        if (!ok(injection_settings_parse(lookup, (void *) full, &s, &err) == 0, "full settings"))
                return;
        ok(s.auth == INJECTION_AUTH_KUBERNETES && strcmp(s.auth_mount, "auth/kubernetes") == 0 &&
                   s.skip_verify && s.delivery == INJECTION_DELIVERY_MEMFD &&
                   s.rotation == INJECTION_ROTATION_SIGNAL && s.rotation_signal == SIGUSR2 &&
                   s.n_secrets == 1 && s.secrets[0].n_maps == 1 && !s.secrets[0].all_fields &&
                   strcmp(s.original_cmd, "[\"/a\"]") == 0 && s.startup_timeout_ms == 60000 &&
                   !s.has_token && !s.namespace_ && !s.broker_addr && !s.unseal_ca_pem &&
                   strcmp(s.broker_token_path, INJECTION_BROKER_TOKEN_PATH) == 0 &&
                   strcmp(s.unseal_listen, ":8199") == 0 && !injection_settings_sealed(&s),
           "values and defaults");
        injection_settings_done(&s);
        injection_settings_done(&s);

        /* Sealed token mode: token auth, no VAULT_TOKEN, an unseal CA. */
        static const char *const sealed[] = {
                BASE, "VAULT_AUTH_METHOD", "token", "CLOUDTASER_UNSEAL_CA_PEM", "pem", NULL};
        static const char *const unsealed[] = {
                BASE, "VAULT_AUTH_METHOD",        "token", "VAULT_TOKEN",
                "t",  "CLOUDTASER_UNSEAL_CA_PEM", "pem",   NULL};
        if (ok(injection_settings_parse(lookup, (void *) sealed, &s, &err) == 0, "sealed settings"))
                ok(injection_settings_sealed(&s) && strcmp(s.unseal_ca_pem, "pem") == 0,
                   "token auth without VAULT_TOKEN but an unseal CA starts sealed");
        injection_settings_done(&s);
        if (ok(injection_settings_parse(lookup, (void *) unsealed, &s, &err) == 0, "token given"))
                ok(!injection_settings_sealed(&s), "a VAULT_TOKEN given: not sealed");
        injection_settings_done(&s);

        /* The reader alone requires nothing; the check requires. */
        static const char *const none[] = {NULL};
        ok(injection_settings_read(lookup, (void *) none, &s, &err) == 0, "read: nothing needed");
        ok(injection_settings_check(&s, &err) == -EINVAL && err.variable &&
                   strcmp(err.variable->name, "VAULT_ADDR") == 0,
           "check: VAULT_ADDR first");
        injection_settings_done(&s);

        struct injection_error noone = {.reason = " is odd"};
        char text[64];
        is_str(injection_error_format(&noone, true, text, sizeof(text)), "configuration is odd",
               "a reason without a row");
        struct injection_error ctl = {.variable = injection_variable_by_name("VAULT_ADDR"),
                                      .reason = " bad\n\x1b"};
        is_str(injection_error_format(&ctl, false, text, sizeof(text)), "VAULT_ADDR bad??",
               "formatted reasons are printable");
}

int main(void) {
        test_table();
        test_enums();
        test_scalars();
        test_secret_paths();
        test_env_map();
        test_command();
        test_reader();
        return tap_done();
}
