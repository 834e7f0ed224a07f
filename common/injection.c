/* SPDX-License-Identifier: Apache-2.0 */
/* common/injection: see injection.h. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/strv.h"
#include "common/vault.h"

#define ROW(i) (&injection_variables[i])

_printf_(3, 4) static int fail(struct injection_error *err, const struct injection_variable *v,
                               const char *fmt, ...) {
        if (err) {
                va_list ap;
                err->variable = v;
                va_start(ap, fmt);
                (void) vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

char *injection_error_format(const struct injection_error *e, bool by_annotation, char *buf,
                             size_t size) {
        const char *subject = "configuration";

        if (size == 0)
                return buf;
        if (e && e->variable)
                subject = by_annotation && e->variable->annotation ? e->variable->annotation
                                                                   : e->variable->name;
        (void) snprintf(buf, size, "%s%s", subject, e ? e->reason : "");
        /* Printable only, whatever a reason quoted. */
        for (char *c = buf; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
        return buf;
}

/* --- enums ------------------------------------------------------------------------------------ */

static const char *const auth_names[_INJECTION_AUTH_MAX] = {
        [INJECTION_AUTH_KUBERNETES] = "kubernetes",
        [INJECTION_AUTH_TOKEN] = "token",
        [INJECTION_AUTH_BROKER] = "broker",
};
static const char *const delivery_names[_INJECTION_DELIVERY_MAX] = {
        [INJECTION_DELIVERY_ENV] = "env",
        [INJECTION_DELIVERY_MEMFD] = "memfd",
        [INJECTION_DELIVERY_BOTH] = "both",
};
static const char *const rotation_names[_INJECTION_ROTATION_MAX] = {
        [INJECTION_ROTATION_NONE] = "none",
        [INJECTION_ROTATION_RESTART] = "restart",
        [INJECTION_ROTATION_SIGNAL] = "signal",
};

static int lookup_name(const char *const *names, size_t n, const char *s) {
        for (size_t i = 0; s && i < n; i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *injection_auth_method_to_string(enum injection_auth_method m) {
        return (unsigned) m < _INJECTION_AUTH_MAX ? auth_names[m] : NULL;
}

int injection_auth_method_from_string(const char *s, enum injection_auth_method *ret) {
        int i = lookup_name(auth_names, ELEMENTSOF(auth_names), s);
        if (i < 0)
                return i;
        *ret = (enum injection_auth_method) i;
        return 0;
}

const char *injection_delivery_to_string(enum injection_delivery d) {
        return (unsigned) d < _INJECTION_DELIVERY_MAX ? delivery_names[d] : NULL;
}

int injection_delivery_from_string(const char *s, enum injection_delivery *ret) {
        int i = lookup_name(delivery_names, ELEMENTSOF(delivery_names), s);
        if (i < 0)
                return i;
        *ret = (enum injection_delivery) i;
        return 0;
}

const char *injection_rotation_to_string(enum injection_rotation r) {
        return (unsigned) r < _INJECTION_ROTATION_MAX ? rotation_names[r] : NULL;
}

int injection_rotation_from_string(const char *s, enum injection_rotation *ret, int *ret_signal) {
        int sig;

        if (!s)
                return -EINVAL;
        if (strcmp(s, "none") == 0 || strcmp(s, "restart") == 0) {
                *ret = s[0] == 'n' ? INJECTION_ROTATION_NONE : INJECTION_ROTATION_RESTART;
                *ret_signal = 0;
                return 0;
        }
        if (strncmp(s, "signal:", 7) != 0 || strlen(s + 7) > INJECTION_SIGNAL_MAX ||
            injection_parse_signal(s + 7, &sig) < 0 || sig == SIGKILL || sig == SIGSTOP)
                return -EINVAL;
        *ret = INJECTION_ROTATION_SIGNAL;
        *ret_signal = sig;
        return 0;
}

/* --- scalars ---------------------------------------------------------------------------------- */

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

int injection_parse_signal(const char *name, int *ret) {
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

const char *injection_signal_name(int sig) {
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                if (signals[i].sig == sig)
                        return signals[i].name;
        return "?";
}

int injection_parse_duration_ms(const char *s, uint64_t *ret) {
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

bool injection_env_name_valid(const char *s, size_t n) {
        if (n == 0 || n > INJECTION_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                        return false;
        }
        return true;
}

bool injection_is_wrapper_variable(const char *s) {
        return strncmp(s, "CLOUDTASER_", 11) == 0 || strncmp(s, "VAULT_", 6) == 0;
}

int injection_field_to_env(const char *field, char *buf, size_t size) {
        size_t o = 0, n = strlen(field);
        if (n == 0)
                return -EINVAL;
        bool digit = field[0] >= '0' && field[0] <= '9';
        if (n + digit + 1 > size || n + digit > INJECTION_MAX_NAME)
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

/* --- lists ------------------------------------------------------------------------------------ */

void injection_secrets_free(struct injection_secret *specs, size_t n) {
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

static bool secret_path_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("-_./@+=:~", ch));
}

int injection_parse_secret_paths(const char *s, struct injection_secret **ret, size_t *ret_n,
                                 struct injection_error *err) {
        const struct injection_variable *row = ROW(INJECTION_ROW_SECRET_PATHS);
        struct injection_secret *specs = NULL;
        size_t n = 0;

        if (!s || !*s)
                return fail(err, row, " is empty");
        if (strlen(s) > INJECTION_MAX_LIST)
                return fail(err, row, " is longer than %d bytes", INJECTION_MAX_LIST);
        specs = calloc(INJECTION_MAX_PATHS, sizeof(*specs));
        if (!specs)
                return -ENOMEM;
        for (const char *p = s;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                const char *q = p;
                int r = 0;
                trim(&q, &len);
                while (len > 0 && q[0] == '/') { /* "/secret/x" is accepted as "secret/x" */
                        q++;
                        len--;
                }
                if (len == 0)
                        r = fail(err, row, ": an empty entry (#%zu)", n + 1);
                else if (n >= INJECTION_MAX_PATHS)
                        r = fail(err, row, " has more than %d paths", INJECTION_MAX_PATHS);
                else if (len >= VAULT_PATH_MAX)
                        r = fail(err, row, ": path #%zu is longer than %d bytes", n + 1,
                                 VAULT_PATH_MAX - 1);
                for (size_t i = 0; r == 0 && i < len; i++)
                        if (!secret_path_char(q[i]) ||
                            (q[i] == '.' && i + 1 < len && q[i + 1] == '.'))
                                r = fail(err, row,
                                         ": path #%zu has a character not allowed in a vault path "
                                         "(offset %zu)",
                                         n + 1, i);
                if (r == 0 && !(specs[n].path = strndup(q, len)))
                        r = -ENOMEM;
                if (r == 0 && !vault_path_valid(specs[n].path))
                        r = fail(err, row,
                                 ": path #%zu has a segment not allowed in a vault path (empty, "
                                 "'.' or '..')",
                                 n + 1);
                if (r < 0) {
                        /* specs is zeroed beyond n: entry n holds at most its path. */
                        injection_secrets_free(specs, MIN(n + 1, (size_t) INJECTION_MAX_PATHS));
                        return r;
                }
                specs[n].all_fields = true;
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret = specs;
        *ret_n = n;
        return 0;
}

int injection_parse_env_map(const char *s, struct injection_secret *specs, size_t n_specs,
                            struct injection_error *err) {
        const struct injection_variable *row = ROW(INJECTION_ROW_ENV_MAP);
        size_t group = 0, total = 0;

        if (!s || !*s)
                return 0;
        if (strlen(s) > INJECTION_MAX_LIST)
                return fail(err, row, " is longer than %d bytes", INJECTION_MAX_LIST);
        for (const char *g = s;; group++) {
                const char *semi = strchr(g, ';');
                size_t glen = semi ? (size_t) (semi - g) : strlen(g);
                if (group >= n_specs)
                        return fail(err, row,
                                    " has more groups (%zu) than there are secret paths (%zu)",
                                    group + 1, n_specs);
                struct injection_secret *sp = &specs[group];
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
                                        return fail(err, row,
                                                    ": group %zu: expected field=ENV, got an entry "
                                                    "without '='",
                                                    group + 1);
                                const char *f = mq, *e = eq + 1;
                                size_t fl = (size_t) (eq - mq), el = (size_t) (mq + ml - e);
                                trim(&f, &fl);
                                trim(&e, &el);
                                if (fl == 0 || fl > INJECTION_MAX_NAME * 2)
                                        return fail(err, row,
                                                    ": group %zu: empty or oversized field name",
                                                    group + 1);
                                if (!injection_env_name_valid(e, el)) {
                                        /* Quote the name printable-only: it is untrusted. */
                                        char shown[65];
                                        size_t k = 0;
                                        for (; k < el && k < 64; k++)
                                                shown[k] = e[k] > 0x20 && e[k] < 0x7f ? e[k] : '?';
                                        shown[k] = '\0';
                                        return fail(err, row,
                                                    ": group %zu: '%s' is not a valid environment "
                                                    "variable name",
                                                    group + 1, shown);
                                }
                                char ename[INJECTION_MAX_NAME + 1];
                                memcpy(ename, e, el);
                                ename[el] = '\0';
                                if (injection_is_wrapper_variable(ename))
                                        return fail(err, row,
                                                    ": group %zu: %s is reserved for the wrapper",
                                                    group + 1, ename);
                                if (++total > INJECTION_MAX_MAPPINGS)
                                        return fail(err, row, " has more than %d mappings",
                                                    INJECTION_MAX_MAPPINGS);
                                struct injection_mapping *nm =
                                        realloc(sp->maps, (sp->n_maps + 1) * sizeof(*nm));
                                if (!nm)
                                        return -ENOMEM;
                                sp->maps = nm;
                                nm[sp->n_maps] = (struct injection_mapping){.field = strndup(f, fl),
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
                                                return fail(err, row, " maps two secrets to %s",
                                                            specs[a].maps[i].env);
        return 0;
}

int injection_parse_command(const char *s, char ***ret_argv, size_t *ret_argc,
                            struct injection_error *err) {
        const struct injection_variable *row = ROW(INJECTION_ROW_ORIGINAL_CMD);
        _cleanup_strv_free_ char **argv = NULL;
        size_t argc = 0;
        int r;

        if (!s)
                return fail(err, row, " is not set: no command");
        while (*s == ' ' || *s == '\t' || *s == '\n')
                s++;
        if (strlen(s) > INJECTION_MAX_LIST)
                return fail(err, row, " is longer than %d bytes", INJECTION_MAX_LIST);
        if (*s == '[') {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                r = json_parse(s, strlen(s), 0, NULL, &d);
                if (r < 0 || json_type(json_doc_root(d)) != JSON_ARRAY)
                        return fail(err, row, " is not a valid JSON array of strings");
                JSON_FOREACH(e, json_doc_root(d)) {
                        const char *a;
                        r = json_string(e, &a) < 0
                                    ? -EINVAL
                                    : strv_extend(&argv, &argc, INJECTION_MAX_ARGS, a);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(err, row, " must be a JSON array of at most %d strings",
                                            INJECTION_MAX_ARGS);
                }
        } else {
                /* Plain words separated by whitespace: no quoting, no shell. */
                for (const char *p = s; *p;) {
                        size_t n = strcspn(p, " \t\n");
                        if (n > 0) {
                                r = strv_extendn(&argv, &argc, INJECTION_MAX_ARGS, p, n);
                                if (r == -E2BIG)
                                        return fail(err, row, " has more than %d words",
                                                    INJECTION_MAX_ARGS);
                                if (r < 0)
                                        return r;
                        }
                        p += n;
                        p += strspn(p, " \t\n");
                }
        }
        if (argc == 0 || !argv[0][0])
                return fail(err, row, " is empty");
        *ret_argv = TAKE_PTR(argv);
        *ret_argc = argc;
        return 0;
}

/* --- the rows' parsers ------------------------------------------------------------------------ */

static bool all_in(const char *s, const char *extra) {
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
                        return false;
        return true;
}

static int p_log_format(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (log_format_from_string(v, &s->log_format) < 0)
                return fail(err, ROW(INJECTION_ROW_LOG_FORMAT), " must be text or json");
        return 0;
}

static int p_log_level(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (log_level_from_string(v, &s->log_level) < 0)
                return fail(err, ROW(INJECTION_ROW_LOG_LEVEL),
                            " must be error, warning, notice, info or debug");
        return 0;
}

static int p_vault_addr(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
                return fail(err, ROW(INJECTION_ROW_VAULT_ADDR),
                            " must start with https:// (or http://)");
        s->vault_addr = v;
        return 0;
}

static int p_auth_method(const char *v, struct injection_settings *s, struct injection_error *err) {
        enum injection_auth_method m;
        if (injection_auth_method_from_string(v, &m) < 0)
                return fail(err, ROW(INJECTION_ROW_AUTH_METHOD),
                            " must be kubernetes, token or broker");
        s->auth = m;
        return 0;
}

static int p_auth_role(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (!all_in(v, "_.-"))
                return fail(err, ROW(INJECTION_ROW_AUTH_ROLE),
                            " must be 1 to %u letters, digits or _.-", INJECTION_ROLE_MAX);
        s->role = v;
        return 0;
}

static int p_auth_mount(const char *v, struct injection_settings *s, struct injection_error *err) {
        size_t len = strlen(v);
        if (!all_in(v, "_.-/") || v[0] == '/' || v[len - 1] == '/' || strstr(v, "//") ||
            strstr(v, ".."))
                return fail(err, ROW(INJECTION_ROW_AUTH_MOUNT_PATH),
                            " must be a mount path like auth/kubernetes (letters, digits, _.-/, at "
                            "most %u bytes)",
                            INJECTION_AUTH_PATH_MAX);
        s->auth_mount = v;
        return 0;
}

static int p_token(const char *v, struct injection_settings *s, struct injection_error *err) {
        s->has_token = true; /* the value is the caller's to take into locked memory */
        return 0;
}

static int p_cacert(const char *v, struct injection_settings *s, struct injection_error *err) {
        s->ca_file = v;
        return 0;
}

static int p_ca_pem(const char *v, struct injection_settings *s, struct injection_error *err) {
        s->ca_pem = v;
        return 0;
}

static int p_skip_verify(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
                s->skip_verify = true;
        else if (strcasecmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
                s->skip_verify = false;
        else
                return fail(err, ROW(INJECTION_ROW_SKIP_VERIFY), " must be true or false");
        return 0;
}

static int p_namespace(const char *v, struct injection_settings *s, struct injection_error *err) {
        /* Sent as X-Vault-Namespace and joined into paths: a vault path ("team-a",
         * "admin/team-a/"). */
        if (!vault_path_valid(v))
                return fail(err, ROW(INJECTION_ROW_NAMESPACE),
                            " must be a vault namespace like team-a or admin/team-a (letters, "
                            "digits and -_.@+=:~, no empty, '.' or '..' segment)");
        s->namespace_ = v;
        return 0;
}

/* The vault's other nodes (each one's api_addr), where a standby's 307 may lead: http(s) base
 * URLs separated by commas or white space, without user info, at most INJECTION_MAX_PEER_ADDRS.
 * common/vault checks each one's origin again when it creates the client. */
static int p_peer_addrs(const char *v, struct injection_settings *s, struct injection_error *err) {
        size_t n = 0;
        for (const char *p = v; *p;) {
                size_t len;
                p += strspn(p, ", \t\n");
                if (!*p)
                        break;
                len = strcspn(p, ", \t\n");
                bool https = len > 8 && strncmp(p, "https://", 8) == 0;
                bool http = len > 7 && strncmp(p, "http://", 7) == 0;
                if (!https && !http)
                        return fail(err, ROW(INJECTION_ROW_PEER_ADDRS),
                                    ": entry #%zu is not an https:// (or http://) URL", n + 1);
                for (size_t i = 0; i < len; i++)
                        if (p[i] == '@' || (unsigned char) p[i] <= 0x20 || p[i] == 0x7f)
                                return fail(err, ROW(INJECTION_ROW_PEER_ADDRS),
                                            ": entry #%zu has user info or a control character",
                                            n + 1);
                if (++n > INJECTION_MAX_PEER_ADDRS)
                        return fail(err, ROW(INJECTION_ROW_PEER_ADDRS), ": more than %d addresses",
                                    INJECTION_MAX_PEER_ADDRS);
                p += len;
        }
        if (n == 0)
                return fail(err, ROW(INJECTION_ROW_PEER_ADDRS), " names no address");
        s->peer_addrs = v;
        return 0;
}

static int p_sa_token_path(const char *v, struct injection_settings *s,
                           struct injection_error *err) {
        s->sa_token_path = v;
        return 0;
}

static int p_broker_addr(const char *v, struct injection_settings *s, struct injection_error *err) {
        /* The projected token goes there: https only, no user info, no control character. */
        if (strncmp(v, "https://", 8) != 0 || !v[8])
                return fail(
                        err, ROW(INJECTION_ROW_BROKER_ADDR),
                        " must be an https:// URL (https://cloudtaser-broker.NAMESPACE.svc:8443)");
        for (const char *p = v; *p; p++)
                if (*p == '@' || (unsigned char) *p <= 0x20 || *p == 0x7f)
                        return fail(err, ROW(INJECTION_ROW_BROKER_ADDR),
                                    " has user info or a control character");
        s->broker_addr = v;
        return 0;
}

static int p_broker_ca_pem(const char *v, struct injection_settings *s,
                           struct injection_error *err) {
        s->broker_ca_pem = v;
        return 0;
}

static int p_broker_token_path(const char *v, struct injection_settings *s,
                               struct injection_error *err) {
        s->broker_token_path = v;
        return 0;
}

static int p_unseal_ca_pem(const char *v, struct injection_settings *s,
                           struct injection_error *err) {
        s->unseal_ca_pem = v;
        return 0;
}

/* "[HOST]:PORT" or "HOST:PORT" or ":PORT": an address to listen on; PORT 1..65535. */
static int p_unseal_listen(const char *v, struct injection_settings *s,
                           struct injection_error *err) {
        const char *colon = strrchr(v, ':');
        char *end;
        unsigned long port;
        if (!colon || !colon[1] || colon[1] == '-' || colon[1] == '+')
                return fail(err, ROW(INJECTION_ROW_UNSEAL_LISTEN),
                            " must be HOST:PORT or :PORT (:8199)");
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || port == 0 || port > 65535)
                return fail(err, ROW(INJECTION_ROW_UNSEAL_LISTEN),
                            " must be HOST:PORT or :PORT with a port from 1 to 65535");
        for (const char *p = v; p < colon; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= 'A' && *p <= 'Z') || strchr(".-:[]", *p)))
                        return fail(err, ROW(INJECTION_ROW_UNSEAL_LISTEN),
                                    " has a host that is not a name or an address");
        s->unseal_listen = v;
        return 0;
}

static int p_secret_paths(const char *v, struct injection_settings *s,
                          struct injection_error *err) {
        return injection_parse_secret_paths(v, &s->secrets, &s->n_secrets, err);
}

static int p_env_map(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (s->n_secrets == 0)
                return fail(err, ROW(INJECTION_ROW_ENV_MAP),
                            " is set but CLOUDTASER_SECRET_PATHS is not");
        return injection_parse_env_map(v, s->secrets, s->n_secrets, err);
}

static int p_delivery(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (injection_delivery_from_string(v, &s->delivery) < 0)
                return fail(err, ROW(INJECTION_ROW_DELIVERY), " must be env, memfd or both");
        return 0;
}

static int p_startup_timeout(const char *v, struct injection_settings *s,
                             struct injection_error *err) {
        uint64_t ms;
        if (injection_parse_duration_ms(v, &ms) < 0 || ms == 0)
                return fail(err, ROW(INJECTION_ROW_STARTUP_TIMEOUT),
                            " must be a positive duration (60s, 2m)");
        s->startup_timeout_ms = ms;
        return 0;
}

static int p_rotation(const char *v, struct injection_settings *s, struct injection_error *err) {
        if (injection_rotation_from_string(v, &s->rotation, &s->rotation_signal) == 0)
                return 0;
        if (strncmp(v, "signal:", 7) == 0)
                return fail(err, ROW(INJECTION_ROW_ROTATION),
                            " must be none, restart or signal:NAME: unknown or unusable signal "
                            "(one the workload can catch, e.g. signal:HUP)");
        return fail(err, ROW(INJECTION_ROW_ROTATION),
                    " must be none, restart or signal:NAME (a signal the workload can catch, e.g. "
                    "signal:HUP)");
}

static int p_rotation_interval(const char *v, struct injection_settings *s,
                               struct injection_error *err) {
        uint64_t ms;
        if (injection_parse_duration_ms(v, &ms) < 0 || ms < 1000)
                return fail(err, ROW(INJECTION_ROW_ROTATION_INTERVAL),
                            " must be a duration of at least 1s");
        s->rotation_interval_ms = ms;
        return 0;
}

static int p_rotation_grace(const char *v, struct injection_settings *s,
                            struct injection_error *err) {
        if (injection_parse_duration_ms(v, &s->rotation_grace_ms) < 0)
                return fail(err, ROW(INJECTION_ROW_ROTATION_GRACE), " must be a duration");
        return 0;
}

static int p_original_cmd(const char *v, struct injection_settings *s,
                          struct injection_error *err) {
        /* Parsed only when the wrapper has no command in its arguments. */
        s->original_cmd = v;
        return 0;
}

#define P "cloudtaser.io/"
const struct injection_variable injection_variables[INJECTION_N_VARIABLES] = {
        [INJECTION_ROW_LOG_FORMAT] = {"CLOUDTASER_LOG_FORMAT", NULL, INJECTION_SET_POD, 16,
                                      p_log_format},
        [INJECTION_ROW_LOG_LEVEL] = {"CLOUDTASER_LOG_LEVEL", NULL, INJECTION_SET_POD, 16,
                                     p_log_level},
        [INJECTION_ROW_VAULT_ADDR] = {"VAULT_ADDR", P "vault-address", INJECTION_SET_OPERATOR,
                                      INJECTION_ADDRESS_MAX, p_vault_addr},
        [INJECTION_ROW_AUTH_METHOD] = {"VAULT_AUTH_METHOD", P "vault-auth-method",
                                       INJECTION_SET_OPERATOR, 16, p_auth_method},
        [INJECTION_ROW_AUTH_ROLE] = {"VAULT_AUTH_ROLE", P "vault-role", INJECTION_SET_OPERATOR,
                                     INJECTION_ROLE_MAX, p_auth_role},
        [INJECTION_ROW_AUTH_MOUNT_PATH] = {"VAULT_AUTH_MOUNT_PATH", P "vault-auth-path",
                                           INJECTION_SET_OPERATOR, INJECTION_AUTH_PATH_MAX,
                                           p_auth_mount},
        [INJECTION_ROW_TOKEN] = {"VAULT_TOKEN", NULL, INJECTION_SET_POD, INJECTION_MAX_LIST,
                                 p_token},
        [INJECTION_ROW_CACERT] = {"VAULT_CACERT", NULL, INJECTION_SET_NEVER,
                                  INJECTION_FILE_PATH_MAX, p_cacert},
        [INJECTION_ROW_CA_PEM] = {"CLOUDTASER_VAULT_CA_PEM", NULL, INJECTION_SET_OPERATOR,
                                  INJECTION_CA_PEM_MAX, p_ca_pem},
        [INJECTION_ROW_SKIP_VERIFY] = {"VAULT_SKIP_VERIFY", P "vault-skip-verify",
                                       INJECTION_SET_OPERATOR, 8, p_skip_verify},
        [INJECTION_ROW_NAMESPACE] = {"VAULT_NAMESPACE", P "vault-namespace", INJECTION_SET_OPERATOR,
                                     VAULT_PATH_MAX - 1, p_namespace},
        [INJECTION_ROW_PEER_ADDRS] = {"CLOUDTASER_VAULT_PEER_ADDRESSES", NULL,
                                      INJECTION_SET_OPERATOR, INJECTION_PEER_ADDRS_MAX,
                                      p_peer_addrs},
        [INJECTION_ROW_SA_TOKEN_PATH] = {"CLOUDTASER_SA_TOKEN_PATH", NULL, INJECTION_SET_NEVER,
                                         INJECTION_FILE_PATH_MAX, p_sa_token_path},
        [INJECTION_ROW_BROKER_ADDR] = {"CLOUDTASER_BROKER_ADDRESS", NULL, INJECTION_SET_OPERATOR,
                                       INJECTION_ADDRESS_MAX, p_broker_addr},
        [INJECTION_ROW_BROKER_CA_PEM] = {"CLOUDTASER_BROKER_CA_PEM", NULL, INJECTION_SET_OPERATOR,
                                         INJECTION_CA_PEM_MAX, p_broker_ca_pem},
        [INJECTION_ROW_BROKER_TOKEN_PATH] = {"CLOUDTASER_BROKER_TOKEN_PATH", NULL,
                                             INJECTION_SET_NEVER, INJECTION_FILE_PATH_MAX,
                                             p_broker_token_path},
        [INJECTION_ROW_UNSEAL_CA_PEM] = {"CLOUDTASER_UNSEAL_CA_PEM", NULL, INJECTION_SET_OPERATOR,
                                         INJECTION_CA_PEM_MAX, p_unseal_ca_pem},
        [INJECTION_ROW_UNSEAL_LISTEN] = {"CLOUDTASER_UNSEAL_LISTEN", NULL, INJECTION_SET_NEVER,
                                         INJECTION_LISTEN_MAX, p_unseal_listen},
        [INJECTION_ROW_SECRET_PATHS] = {"CLOUDTASER_SECRET_PATHS", P "secret-paths",
                                        INJECTION_SET_OPERATOR, INJECTION_MAX_LIST, p_secret_paths},
        [INJECTION_ROW_ENV_MAP] = {"CLOUDTASER_ENV_MAP", P "env-map", INJECTION_SET_OPERATOR,
                                   INJECTION_MAX_LIST, p_env_map},
        [INJECTION_ROW_DELIVERY] = {"CLOUDTASER_DELIVERY", P "delivery", INJECTION_SET_OPERATOR, 16,
                                    p_delivery},
        [INJECTION_ROW_STARTUP_TIMEOUT] = {"CLOUDTASER_STARTUP_TIMEOUT", NULL, INJECTION_SET_NEVER,
                                           32, p_startup_timeout},
        [INJECTION_ROW_ROTATION] = {"CLOUDTASER_ROTATION", P "rotation", INJECTION_SET_OPERATOR,
                                    7 + INJECTION_SIGNAL_MAX, p_rotation},
        [INJECTION_ROW_ROTATION_INTERVAL] = {"CLOUDTASER_ROTATION_INTERVAL", NULL,
                                             INJECTION_SET_NEVER, 32, p_rotation_interval},
        [INJECTION_ROW_ROTATION_GRACE] = {"CLOUDTASER_ROTATION_GRACE", NULL, INJECTION_SET_NEVER,
                                          32, p_rotation_grace},
        [INJECTION_ROW_ORIGINAL_CMD] = {"CLOUDTASER_ORIGINAL_CMD", NULL, INJECTION_SET_OPERATOR,
                                        INJECTION_MAX_LIST, p_original_cmd},
};
#undef P
_Static_assert(_INJECTION_ROW_MAX == INJECTION_N_VARIABLES,
               "INJECTION_N_VARIABLES is the table's size");

const struct injection_variable *injection_variable_by_name(const char *name) {
        for (size_t i = 0; name && i < _INJECTION_ROW_MAX; i++)
                if (strcmp(injection_variables[i].name, name) == 0)
                        return &injection_variables[i];
        return NULL;
}

const struct injection_variable *injection_variable_by_annotation(const char *key) {
        for (size_t i = 0; key && i < _INJECTION_ROW_MAX; i++)
                if (injection_variables[i].annotation &&
                    strcmp(injection_variables[i].annotation, key) == 0)
                        return &injection_variables[i];
        return NULL;
}

/* --- the reader ------------------------------------------------------------------------------- */

int injection_settings_read(injection_getenv_fn getenv_fn, void *userdata,
                            struct injection_settings *ret, struct injection_error *err) {
        struct injection_settings s = {
                .auth_mount = "auth/kubernetes",
                .sa_token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token",
                .broker_token_path = INJECTION_BROKER_TOKEN_PATH,
                .unseal_listen = ":8199",
                .startup_timeout_ms = 60000,
                .log_format = LOG_FORMAT_TEXT,
                .log_level = LOG_INFO,
                .rotation_interval_ms = 60000,
                .rotation_grace_ms = 10000,
        };

        for (size_t i = 0; i < _INJECTION_ROW_MAX; i++) {
                const struct injection_variable *row = &injection_variables[i];
                const char *v = getenv_fn(row->name, userdata);
                int r;
                if (!v || !*v)
                        continue;
                if (strlen(v) > row->max)
                        r = fail(err, row, " is longer than %zu bytes", row->max);
                else
                        r = row->parse(v, &s, err);
                if (r < 0) {
                        injection_settings_done(&s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

int injection_settings_check(const struct injection_settings *s, struct injection_error *err) {
        if (!s->vault_addr && s->auth != INJECTION_AUTH_BROKER)
                return fail(err, ROW(INJECTION_ROW_VAULT_ADDR), " is required");
        if (s->auth == INJECTION_AUTH_KUBERNETES && !s->role)
                return fail(err, ROW(INJECTION_ROW_AUTH_ROLE), " is required for kubernetes auth");
        if (s->auth == INJECTION_AUTH_TOKEN && !s->has_token && !s->unseal_ca_pem)
                return fail(err, ROW(INJECTION_ROW_AUTH_METHOD),
                            " is token, but nothing delivers the token: VAULT_TOKEN is required "
                            "for token auth (or CLOUDTASER_UNSEAL_CA_PEM, to start sealed and be "
                            "unsealed by the operator)");
        if (s->auth == INJECTION_AUTH_BROKER && !s->broker_addr)
                return fail(err, ROW(INJECTION_ROW_BROKER_ADDR), " is required for broker auth");
        if (s->auth == INJECTION_AUTH_BROKER && !s->broker_ca_pem)
                return fail(err, ROW(INJECTION_ROW_BROKER_CA_PEM), " is required for broker auth");
        if (s->ca_file && s->ca_pem)
                return fail(err, ROW(INJECTION_ROW_CACERT),
                            " and CLOUDTASER_VAULT_CA_PEM are both set: set only one of "
                            "VAULT_CACERT and CLOUDTASER_VAULT_CA_PEM");
        if (s->n_secrets == 0)
                return fail(err, ROW(INJECTION_ROW_SECRET_PATHS), " is empty");
        return 0;
}

int injection_settings_parse(injection_getenv_fn getenv_fn, void *userdata,
                             struct injection_settings *ret, struct injection_error *err) {
        struct injection_settings s;
        int r = injection_settings_read(getenv_fn, userdata, &s, err);
        if (r < 0)
                return r;
        r = injection_settings_check(&s, err);
        if (r < 0) {
                injection_settings_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

bool injection_settings_sealed(const struct injection_settings *s) {
        return s && s->auth == INJECTION_AUTH_TOKEN && !s->has_token && s->unseal_ca_pem;
}

void injection_settings_done(struct injection_settings *s) {
        if (!s)
                return;
        injection_secrets_free(s->secrets, s->n_secrets);
        *s = (struct injection_settings){};
}
