/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/config: see config.h. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/vault.h"
#include "wrapper/config.h"

_printf_(2, 3) static int fail(struct config_error *err, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                (void) vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static const struct {
        const char *name;
        int sig;
} signals[] = {
        {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
        {"USR2", SIGUSR2},     {"TERM", SIGTERM}, {"WINCH", SIGWINCH}, {"CONT", SIGCONT},
        {"ALRM", SIGALRM},     {"PIPE", SIGPIPE}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
        {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
        {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"IO", SIGIO},       {"PWR", SIGPWR},
        {"SYS", SIGSYS},       {"KILL", SIGKILL}, {"STOP", SIGSTOP},   {"ABRT", SIGABRT},
};

int config_parse_signal(const char *name, int *ret) {
        if (!name)
                return -EINVAL;
        if (strncasecmp(name, "SIG", 3) == 0)
                name += 3;
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                if (strcasecmp(name, signals[i].name) == 0) {
                        *ret = signals[i].sig;
                        return 0;
                }
        return -EINVAL;
}

const char *config_signal_name(int sig) {
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                if (signals[i].sig == sig)
                        return signals[i].name;
        return "?";
}

int config_parse_duration_ms(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0;

        if (!s)
                return -EINVAL;
        while (s[i] == ' ')
                i++;
        if (s[i] < '0' || s[i] > '9')
                return -EINVAL;
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
                if (v > UINT64_C(1000000000))
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        const char *unit = s + i;
        uint64_t mult;
        if (!*unit || strcmp(unit, "s") == 0)
                mult = 1000;
        else if (strcmp(unit, "ms") == 0)
                mult = 1;
        else if (strcmp(unit, "m") == 0)
                mult = 60000;
        else if (strcmp(unit, "h") == 0)
                mult = 3600000;
        else
                return -EINVAL;
        *ret = v * mult;
        return 0;
}

bool config_env_name_valid(const char *s, size_t n) {
        if (n == 0 || n > CONFIG_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                        return false;
        }
        return true;
}

bool config_is_wrapper_variable(const char *s) {
        return strncmp(s, "CLOUDTASER_", 11) == 0 || strncmp(s, "VAULT_", 6) == 0;
}

int config_field_to_env(const char *field, char *buf, size_t size) {
        size_t o = 0, n = strlen(field);
        if (n == 0)
                return -EINVAL;
        bool digit = field[0] >= '0' && field[0] <= '9';
        if (n + digit + 1 > size || n + digit > CONFIG_MAX_NAME)
                return -E2BIG;
        if (digit)
                buf[o++] = '_';
        for (size_t i = 0; i < n; i++) {
                char ch = field[i];
                if (ch >= 'a' && ch <= 'z')
                        ch = (char) (ch - 'a' + 'A');
                else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
                        ch = '_';
                buf[o++] = ch;
        }
        buf[o] = '\0';
        return 0;
}

static void specs_free(struct secret_spec *specs, size_t n) {
        for (size_t i = 0; specs && i < n; i++) {
                free(specs[i].path);
                for (size_t j = 0; j < specs[i].n_maps; j++) {
                        free(specs[i].maps[j].field);
                        free(specs[i].maps[j].env);
                }
                free(specs[i].maps);
        }
        free(specs);
}

/* Trims spaces and tabs from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n) {
        while (*n > 0 && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
                (*n)--;
}

static bool vault_path_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("-_./@+=:~", ch));
}

int config_parse_paths(const char *s, struct secret_spec **ret, size_t *ret_n,
                       struct config_error *err) {
        struct secret_spec *specs = NULL;
        size_t n = 0;

        if (!s || !*s)
                return fail(err, "CLOUDTASER_SECRET_PATHS is empty");
        if (strlen(s) > CONFIG_MAX_LIST)
                return fail(err, "CLOUDTASER_SECRET_PATHS is longer than %d bytes",
                            CONFIG_MAX_LIST);
        specs = calloc(CONFIG_MAX_PATHS, sizeof(*specs));
        if (!specs)
                return -ENOMEM;
        for (const char *p = s;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                const char *q = p;
                trim(&q, &len);
                while (len > 0 && q[0] == '/') { /* "/secret/x" is accepted as "secret/x" */
                        q++;
                        len--;
                }
                if (len == 0) {
                        specs_free(specs, n);
                        return fail(err, "CLOUDTASER_SECRET_PATHS has an empty entry (#%zu)",
                                    n + 1);
                }
                if (n >= CONFIG_MAX_PATHS) {
                        specs_free(specs, n);
                        return fail(err, "CLOUDTASER_SECRET_PATHS has more than %d paths",
                                    CONFIG_MAX_PATHS);
                }
                if (len >= VAULT_PATH_MAX) {
                        specs_free(specs, n);
                        return fail(err, "secret path #%zu is longer than %d bytes", n + 1,
                                    VAULT_PATH_MAX - 1);
                }
                for (size_t i = 0; i < len; i++)
                        if (!vault_path_char(q[i]) ||
                            (q[i] == '.' && i + 1 < len && q[i + 1] == '.')) {
                                specs_free(specs, n);
                                return fail(err,
                                            "secret path #%zu has a character not allowed in a "
                                            "vault path (offset %zu)",
                                            n + 1, i);
                        }
                specs[n].path = strndup(q, len);
                specs[n].all_fields = true;
                if (!specs[n].path) {
                        specs_free(specs, n);
                        return -ENOMEM;
                }
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret = specs;
        *ret_n = n;
        return 0;
}

int config_parse_env_map(const char *s, struct secret_spec *specs, size_t n_specs,
                         struct config_error *err) {
        size_t group = 0, total = 0;

        if (!s || !*s)
                return 0;
        if (strlen(s) > CONFIG_MAX_LIST)
                return fail(err, "CLOUDTASER_ENV_MAP is longer than %d bytes", CONFIG_MAX_LIST);
        for (const char *g = s;; group++) {
                const char *semi = strchr(g, ';');
                size_t glen = semi ? (size_t) (semi - g) : strlen(g);
                if (group >= n_specs)
                        return fail(err,
                                    "CLOUDTASER_ENV_MAP has more groups (%zu) than there are "
                                    "secret paths (%zu)",
                                    group + 1, n_specs);
                struct secret_spec *sp = &specs[group];
                const char *gq = g;
                size_t gl = glen;
                trim(&gq, &gl);
                if (gl > 0) {
                        sp->all_fields = false;
                        for (const char *m = gq; m < gq + gl;) {
                                const char *comma = memchr(m, ',', (size_t) (gq + gl - m));
                                size_t mlen = comma ? (size_t) (comma - m) : (size_t) (gq + gl - m);
                                const char *mq = m;
                                size_t ml = mlen;
                                trim(&mq, &ml);
                                const char *eq = memchr(mq, '=', ml);
                                if (ml == 0 || !eq)
                                        return fail(err,
                                                    "CLOUDTASER_ENV_MAP group %zu: expected "
                                                    "field=ENV, got an entry without '='",
                                                    group + 1);
                                const char *f = mq, *e = eq + 1;
                                size_t fl = (size_t) (eq - mq), el = (size_t) (mq + ml - e);
                                trim(&f, &fl);
                                trim(&e, &el);
                                if (fl == 0 || fl > CONFIG_MAX_NAME * 2)
                                        return fail(err,
                                                    "CLOUDTASER_ENV_MAP group %zu: empty or "
                                                    "oversized field name",
                                                    group + 1);
                                if (!config_env_name_valid(e, el)) {
                                        /* Quote the name printable-only: it is untrusted. */
                                        char shown[65];
                                        size_t k = 0;
                                        for (; k < el && k < 64; k++)
                                                shown[k] = e[k] > 0x20 && e[k] < 0x7f ? e[k] : '?';
                                        shown[k] = '\0';
                                        return fail(err,
                                                    "CLOUDTASER_ENV_MAP group %zu: '%s' is not a "
                                                    "valid environment variable name",
                                                    group + 1, shown);
                                }
                                char ename[CONFIG_MAX_NAME + 1];
                                memcpy(ename, e, el);
                                ename[el] = '\0';
                                if (config_is_wrapper_variable(ename))
                                        return fail(err,
                                                    "CLOUDTASER_ENV_MAP group %zu: %.*s is "
                                                    "reserved for the wrapper",
                                                    group + 1, (int) MIN(el, 64), e);
                                if (++total > CONFIG_MAX_MAPPINGS)
                                        return fail(err,
                                                    "CLOUDTASER_ENV_MAP has more than %d mappings",
                                                    CONFIG_MAX_MAPPINGS);
                                struct mapping *nm =
                                        realloc(sp->maps, (sp->n_maps + 1) * sizeof(*nm));
                                if (!nm)
                                        return -ENOMEM;
                                sp->maps = nm;
                                nm[sp->n_maps] = (struct mapping){.field = strndup(f, fl),
                                                                  .env = strndup(e, el)};
                                sp->n_maps++;
                                if (!nm[sp->n_maps - 1].field || !nm[sp->n_maps - 1].env)
                                        return -ENOMEM;
                                if (!comma)
                                        break;
                                m = comma + 1;
                        }
                }
                if (!semi)
                        break;
                g = semi + 1;
        }
        /* Two mappings to one name is a configuration error (detected again, with the fields
         * of unmapped paths, once the secrets are read). */
        for (size_t a = 0; a < n_specs; a++)
                for (size_t i = 0; i < specs[a].n_maps; i++)
                        for (size_t b = a; b < n_specs; b++)
                                for (size_t j = (b == a ? i + 1 : 0); j < specs[b].n_maps; j++)
                                        if (strcmp(specs[a].maps[i].env, specs[b].maps[j].env) == 0)
                                                return fail(
                                                        err,
                                                        "CLOUDTASER_ENV_MAP maps two secrets to %s",
                                                        specs[a].maps[i].env);
        return 0;
}

static void argv_free(char **argv, size_t argc) {
        for (size_t i = 0; argv && i < argc; i++)
                free(argv[i]);
        free(argv);
}

int config_parse_command(const char *s, char ***ret_argv, size_t *ret_argc,
                         struct config_error *err) {
        char **argv = NULL;
        size_t argc = 0;
        int r;

        if (!s)
                return fail(err, "no command");
        while (*s == ' ' || *s == '\t' || *s == '\n')
                s++;
        if (strlen(s) > CONFIG_MAX_LIST)
                return fail(err, "CLOUDTASER_ORIGINAL_CMD is longer than %d bytes",
                            CONFIG_MAX_LIST);
        argv = calloc(CONFIG_MAX_ARGS + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        if (*s == '[') {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                r = json_parse(s, strlen(s), 0, NULL, &d);
                if (r < 0 || json_type(json_doc_root(d)) != JSON_ARRAY) {
                        free(argv);
                        return fail(err,
                                    "CLOUDTASER_ORIGINAL_CMD is not a valid JSON array of strings");
                }
                JSON_FOREACH(e, json_doc_root(d)) {
                        const char *a;
                        if (json_string(e, &a) < 0 || argc >= CONFIG_MAX_ARGS) {
                                argv_free(argv, argc);
                                return fail(err,
                                            "CLOUDTASER_ORIGINAL_CMD must be a JSON array of at "
                                            "most %d strings",
                                            CONFIG_MAX_ARGS);
                        }
                        if (!(argv[argc++] = strdup(a))) {
                                argv_free(argv, argc);
                                return -ENOMEM;
                        }
                }
        } else {
                /* Plain words separated by whitespace: no quoting, no shell. */
                for (const char *p = s; *p;) {
                        size_t n = strcspn(p, " \t\n");
                        if (n > 0) {
                                if (argc >= CONFIG_MAX_ARGS) {
                                        argv_free(argv, argc);
                                        return fail(
                                                err,
                                                "CLOUDTASER_ORIGINAL_CMD has more than %d words",
                                                CONFIG_MAX_ARGS);
                                }
                                if (!(argv[argc++] = strndup(p, n))) {
                                        argv_free(argv, argc);
                                        return -ENOMEM;
                                }
                        }
                        p += n;
                        p += strspn(p, " \t\n");
                }
        }
        if (argc == 0 || !argv[0][0]) {
                argv_free(argv, argc);
                return fail(err, "CLOUDTASER_ORIGINAL_CMD is empty");
        }
        *ret_argv = argv;
        *ret_argc = argc;
        return 0;
}

static bool parse_bool(const char *s, bool *ret) {
        if (!s || !*s) {
                *ret = false;
                return true;
        }
        if (strcasecmp(s, "1") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0)
                *ret = true;
        else if (strcasecmp(s, "0") == 0 || strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0)
                *ret = false;
        else
                return false;
        return true;
}

static const char *nonempty(const char *s) {
        return s && *s ? s : NULL;
}

int config_parse(const char *(*getenv_fn)(const char *name, void *userdata), void *userdata,
                 int argc, char *const *argv, struct wrapper_config *ret,
                 struct config_error *err) {
        struct wrapper_config c = {
                .auth_mount = "auth/kubernetes",
                .sa_token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token",
                .startup_timeout_ms = 60000,
                .log_format = LOG_FORMAT_TEXT,
                .log_level = LOG_INFO,
                .rotation_interval_ms = 60000,
                .rotation_grace_ms = 10000,
        };
        const char *v;
        int r;

#define GET(name) nonempty(getenv_fn(name, userdata))
        if ((v = GET("CLOUDTASER_LOG_FORMAT")) && log_format_from_string(v, &c.log_format) < 0)
                return fail(err, "CLOUDTASER_LOG_FORMAT must be text or json");
        if ((v = GET("CLOUDTASER_LOG_LEVEL")) && log_level_from_string(v, &c.log_level) < 0)
                return fail(err,
                            "CLOUDTASER_LOG_LEVEL must be error, warning, notice, info or debug");

        c.vault_addr = GET("VAULT_ADDR");
        if (!c.vault_addr)
                return fail(err, "VAULT_ADDR is required");
        if (strncmp(c.vault_addr, "https://", 8) != 0 && strncmp(c.vault_addr, "http://", 7) != 0)
                return fail(err, "VAULT_ADDR must start with https:// (or http://)");
        v = GET("VAULT_AUTH_METHOD");
        if (!v || strcmp(v, "kubernetes") == 0)
                c.auth = AUTH_KUBERNETES;
        else if (strcmp(v, "token") == 0)
                c.auth = AUTH_TOKEN;
        else if (strcmp(v, "broker") == 0)
                return fail(err, "VAULT_AUTH_METHOD=broker is not available in this version");
        else
                return fail(err, "VAULT_AUTH_METHOD must be kubernetes, token or broker");
        c.role = GET("VAULT_AUTH_ROLE");
        if (c.auth == AUTH_KUBERNETES && !c.role)
                return fail(err, "VAULT_AUTH_ROLE is required for kubernetes auth");
        if ((v = GET("VAULT_AUTH_MOUNT_PATH")))
                c.auth_mount = v;
        c.has_token = GET("VAULT_TOKEN") != NULL;
        if (c.auth == AUTH_TOKEN && !c.has_token)
                return fail(err, "VAULT_TOKEN is required for token auth");
        c.ca_file = GET("VAULT_CACERT");
        c.ca_pem = GET("CLOUDTASER_VAULT_CA_PEM");
        if (c.ca_file && c.ca_pem)
                return fail(err, "set only one of VAULT_CACERT and CLOUDTASER_VAULT_CA_PEM");
        if (!parse_bool(getenv_fn("VAULT_SKIP_VERIFY", userdata), &c.skip_verify))
                return fail(err, "VAULT_SKIP_VERIFY must be true or false");
        c.namespace_ = GET("VAULT_NAMESPACE");
        if ((v = GET("CLOUDTASER_SA_TOKEN_PATH")))
                c.sa_token_path = v;

        if ((v = GET("CLOUDTASER_DELIVERY"))) {
                if (strcmp(v, "env") == 0)
                        c.delivery = DELIVERY_ENV;
                else if (strcmp(v, "memfd") == 0)
                        c.delivery = DELIVERY_MEMFD;
                else if (strcmp(v, "both") == 0)
                        c.delivery = DELIVERY_BOTH;
                else
                        return fail(err, "CLOUDTASER_DELIVERY must be env, memfd or both");
        }
        if ((v = GET("CLOUDTASER_STARTUP_TIMEOUT")) &&
            (config_parse_duration_ms(v, &c.startup_timeout_ms) < 0 || c.startup_timeout_ms == 0))
                return fail(err,
                            "CLOUDTASER_STARTUP_TIMEOUT must be a positive duration (60s, 2m)");
        if ((v = GET("CLOUDTASER_ROTATION"))) {
                if (strcmp(v, "none") == 0)
                        c.rotation = ROTATION_NONE;
                else if (strcmp(v, "restart") == 0)
                        c.rotation = ROTATION_RESTART;
                else if (strncmp(v, "signal:", 7) == 0) {
                        c.rotation = ROTATION_SIGNAL;
                        if (config_parse_signal(v + 7, &c.rotation_signal) < 0 ||
                            c.rotation_signal == SIGKILL || c.rotation_signal == SIGSTOP)
                                return fail(
                                        err,
                                        "CLOUDTASER_ROTATION: unknown or unusable signal '%.16s'",
                                        v + 7);
                } else
                        return fail(err,
                                    "CLOUDTASER_ROTATION must be none, restart or signal:NAME");
        }
        if ((v = GET("CLOUDTASER_ROTATION_INTERVAL")) &&
            (config_parse_duration_ms(v, &c.rotation_interval_ms) < 0 ||
             c.rotation_interval_ms < 1000))
                return fail(err, "CLOUDTASER_ROTATION_INTERVAL must be a duration of at least 1s");
        if ((v = GET("CLOUDTASER_ROTATION_GRACE")) &&
            config_parse_duration_ms(v, &c.rotation_grace_ms) < 0)
                return fail(err, "CLOUDTASER_ROTATION_GRACE must be a duration");

        r = config_parse_paths(GET("CLOUDTASER_SECRET_PATHS"), &c.secrets, &c.n_secrets, err);
        if (r < 0)
                return r;
        r = config_parse_env_map(GET("CLOUDTASER_ENV_MAP"), c.secrets, c.n_secrets, err);
        if (r < 0) {
                specs_free(c.secrets, c.n_secrets);
                return r;
        }

        /* The command: after "--", else the arguments, else CLOUDTASER_ORIGINAL_CMD. */
        int first = 1;
        if (argc > 1 && strcmp(argv[1], "--") == 0)
                first = 2;
        if (argc > first) {
                if ((size_t) (argc - first) > CONFIG_MAX_ARGS) {
                        specs_free(c.secrets, c.n_secrets);
                        return fail(err, "more than %d arguments", CONFIG_MAX_ARGS);
                }
                c.argv = (char **) argv + first;
                c.argc = (size_t) (argc - first);
        } else if ((v = GET("CLOUDTASER_ORIGINAL_CMD"))) {
                r = config_parse_command(v, &c.argv, &c.argc, err);
                if (r < 0) {
                        specs_free(c.secrets, c.n_secrets);
                        return r;
                }
                c.argv_owned = true;
        } else {
                specs_free(c.secrets, c.n_secrets);
                return fail(err, "no command: give it after '--' or in CLOUDTASER_ORIGINAL_CMD");
        }
#undef GET
        *ret = c;
        return 0;
}

void config_done(struct wrapper_config *c) {
        if (!c)
                return;
        specs_free(c->secrets, c->n_secrets);
        if (c->argv_owned)
                argv_free(c->argv, c->argc);
        *c = (struct wrapper_config){};
}
