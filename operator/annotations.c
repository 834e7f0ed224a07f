/* SPDX-License-Identifier: Apache-2.0 */
/* operator/annotations: see annotations.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/injection.h"
#include "common/macro.h"
#include "common/strv.h"
#include "operator/annotations.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                (void) vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool dns_label_valid(const char *s, size_t n) {
        if (n == 0 || n > ANNOTATION_CONTAINER_NAME_MAX)
                return false;
        if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

int annotation_parse_command(const char *s, char ***ret_argv, size_t *ret_n, char *err,
                             size_t errlen) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_limits lim = {
                .max_input = ANNOTATION_VALUE_MAX,
                .max_depth = 2,
                .max_nodes = ANNOTATION_COMMAND_MAX_ARGS + 1,
        };
        _cleanup_strv_free_ char **argv = NULL;
        size_t n = 0;
        int r;

        if (!s)
                return -EINVAL;
        r = json_parse(s, strlen(s), 0, &lim, &doc);
        if (r == -ENOMEM)
                return r;
        if (r == -E2BIG)
                return fail(err, errlen,
                            "cloudtaser.io/command is too long (at most %u arguments, %u bytes)",
                            ANNOTATION_COMMAND_MAX_ARGS, ANNOTATION_VALUE_MAX);
        if (r < 0)
                return fail(err, errlen,
                            "cloudtaser.io/command must be a JSON array of strings, e.g. "
                            "[\"/app\",\"--port\",\"8080\"]");
        const struct json_value *root = json_doc_root(doc);
        if (json_type(root) != JSON_ARRAY)
                return fail(err, errlen,
                            "cloudtaser.io/command must be a JSON array of strings, e.g. "
                            "[\"/app\",\"--port\",\"8080\"]");
        size_t count = json_count(root);
        if (count == 0)
                return fail(err, errlen, "cloudtaser.io/command is an empty array");
        if (count > ANNOTATION_COMMAND_MAX_ARGS)
                return fail(err, errlen, "cloudtaser.io/command has more than %u arguments",
                            ANNOTATION_COMMAND_MAX_ARGS);
        JSON_FOREACH(e, root) {
                const char *a;
                if (json_string(e, &a) < 0) {
                        return fail(err, errlen,
                                    "cloudtaser.io/command: argument %zu is not a string", n + 1);
                }
                size_t len = strlen(a);
                if (len > ANNOTATION_COMMAND_ARG_MAX) {
                        return fail(err, errlen,
                                    "cloudtaser.io/command: argument %zu is longer than %u bytes",
                                    n + 1, ANNOTATION_COMMAND_ARG_MAX);
                }
                if (n == 0 && len == 0) {
                        return fail(err, errlen, "cloudtaser.io/command: the program is empty");
                }
                for (size_t i = 0; i < len; i++)
                        if (((unsigned char) a[i] < 0x20 && a[i] != '\t' && a[i] != '\n') ||
                            a[i] == 0x7f) {
                                return fail(err, errlen,
                                            "cloudtaser.io/command: argument %zu holds a control "
                                            "character",
                                            n + 1);
                        }
                r = strv_extend(&argv, &n, count, a);
                if (r < 0)
                        return r;
        }
        *ret_argv = TAKE_PTR(argv);
        *ret_n = n;
        return 0;
}

int annotation_parse_containers(const char *s, char ***ret_names, size_t *ret_n, char *err,
                                size_t errlen) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0;

        if (!s)
                return -EINVAL;
        if (strlen(s) > ANNOTATION_VALUE_MAX)
                return fail(err, errlen, "cloudtaser.io/containers is longer than %u bytes",
                            ANNOTATION_VALUE_MAX);
        for (const char *p = s;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                while (len > 0 && (*p == ' ' || *p == '\t')) {
                        p++;
                        len--;
                }
                while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if (len == 0 && !comma && n > 0)
                        break; /* a trailing comma */
                if (!dns_label_valid(p, len)) {
                        if (len == 0)
                                return fail(err, errlen,
                                            "cloudtaser.io/containers has an empty entry (#%zu); "
                                            "give container names separated by commas",
                                            n + 1);
                        return fail(err, errlen,
                                    "cloudtaser.io/containers: entry #%zu is not a container name "
                                    "(lower-case letters, digits and '-', at most %d bytes)",
                                    n + 1, ANNOTATION_CONTAINER_NAME_MAX);
                }
                bool dup = false;
                for (size_t i = 0; i < n && !dup; i++)
                        dup = strlen(names[i]) == len && memcmp(names[i], p, len) == 0;
                int r = dup ? 0 : strv_extendn(&names, &n, ANNOTATION_MAX_CONTAINERS, p, len);
                if (r == -E2BIG)
                        return fail(err, errlen,
                                    "cloudtaser.io/containers names more than %u containers",
                                    ANNOTATION_MAX_CONTAINERS);
                if (r < 0)
                        return r;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret_names = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

static bool host_char(char c) {
        return is_alnum(c) || c == '.' || c == '-';
}

int annotation_vault_address_canon(const char *s, char *out, size_t outlen, char *err,
                                   size_t errlen) {
        static const char bad[] =
                "cloudtaser.io/vault-address must be a URL like https://vault.example:8200";
        const char *scheme, *p;
        size_t len;

        if (!s || !out)
                return -EINVAL;
        len = strlen(s);
        if (len > ANNOTATION_ADDRESS_MAX)
                return fail(err, errlen, "cloudtaser.io/vault-address is longer than %u bytes",
                            ANNOTATION_ADDRESS_MAX);
        if (strncasecmp(s, "https://", 8) == 0) {
                scheme = "https";
                p = s + 8;
        } else if (strncasecmp(s, "http://", 7) == 0) {
                scheme = "http";
                p = s + 7;
        } else
                return fail(err, errlen, "%s (the scheme must be https:// or http://)", bad);

        /* host */
        const char *host = p, *host_end;
        if (*p == '[') {
                p++;
                while (*p && (is_alnum(*p) || *p == ':' || *p == '.'))
                        p++;
                if (*p != ']' || p == host + 1)
                        return fail(err, errlen, "%s (a bracketed IPv6 host is malformed)", bad);
                p++;
        } else {
                while (host_char(*p))
                        p++;
                if (p == host)
                        return fail(err, errlen, "%s (the host is missing)", bad);
                if (*host == '.' || *host == '-' || p[-1] == '-')
                        return fail(err, errlen, "%s (the host is malformed)", bad);
        }
        host_end = p;
        /* port */
        unsigned long port = 0;
        if (*p == ':') {
                p++;
                const char *digits = p;
                while (*p >= '0' && *p <= '9' && p - digits < 6) {
                        port = port * 10 + (unsigned long) (*p - '0');
                        p++;
                }
                if (p == digits || port == 0 || port > 65535)
                        return fail(err, errlen, "%s (the port must be 1 to 65535)", bad);
        }
        /* path */
        const char *path = p;
        if (*p && *p != '/')
                return fail(err, errlen,
                            "%s (no user name, query or fragment; only a host, a port and a "
                            "path)",
                            bad);
        for (; *p; p++)
                if (!is_alnum(*p) && !strchr("/._~-", *p))
                        return fail(err, errlen,
                                    "%s (the path may only hold letters, digits and /._~-)", bad);
        size_t path_len = (size_t) (p - path);
        while (path_len > 0 && path[path_len - 1] == '/')
                path_len--;

        bool default_port = port == 0 || (strcmp(scheme, "https") == 0 && port == 443) ||
                            (strcmp(scheme, "http") == 0 && port == 80);
        char portbuf[8] = "";
        if (!default_port)
                (void) snprintf(portbuf, sizeof(portbuf), ":%lu", port);
        size_t host_len = (size_t) (host_end - host);
        size_t need = strlen(scheme) + 3 + host_len + strlen(portbuf) + path_len + 1;
        if (need > outlen)
                return -E2BIG;
        int w = snprintf(out, outlen, "%s://%.*s%s%.*s", scheme, (int) host_len, host, portbuf,
                         (int) path_len, path);
        if (w < 0 || (size_t) w >= outlen)
                return -E2BIG;
        for (char *c = out + strlen(scheme) + 3; c < out + strlen(scheme) + 3 + host_len; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        return 0;
}

/* The operator's own keys; every other key of the contract is a row of common/injection. */
enum key {
        K_INJECT,
        K_CONTAINERS,
        K_COMMAND,
        K_INJECTED,
        K_BROKER_MAC, /* written by the operator (operator/modes), never read from the pod */
        _K_MAX,
};

static const char *const key_names[_K_MAX] = {
        [K_INJECT] = "inject",     [K_CONTAINERS] = "containers", [K_COMMAND] = "command",
        [K_INJECTED] = "injected", [K_BROKER_MAC] = "broker-mac",
};

static void record_unknown(struct annotations *a, const char *key) {
        if (a->n_unknown < ANNOTATION_MAX_UNKNOWN)
                a->unknown[a->n_unknown] = key;
        a->n_unknown++;
}

static size_t row_index(const struct injection_variable *v) {
        return (size_t) (v - injection_variables);
}

/* The annotations as the environment the contract's reader sees: each row's annotation value.
 * VAULT_ADDR is left out: the annotation is checked (and canonicalised) by
 * annotation_vault_address_canon(), and admission runs the canonical form through the whole
 * contract with the rest of the environment it writes. */
static const char *annotation_lookup(const char *name, void *userdata) {
        const struct annotations *a = userdata;
        const struct injection_variable *v = injection_variable_by_name(name);

        if (!v || !v->annotation || v == &injection_variables[INJECTION_ROW_VAULT_ADDR])
                return NULL;
        return a->value[row_index(v)];
}

static int parse(const struct json_value *annotations, struct annotations *ret, char *err,
                 size_t errlen) {
        const char *values[_K_MAX] = {};
        const size_t plen = strlen(ANNOTATION_PREFIX);
        struct injection_settings settings;
        struct injection_error ie = {};
        int r;

        *ret = (struct annotations){};
        if (!annotations || json_type(annotations) == JSON_NULL)
                return 0;
        if (json_type(annotations) != JSON_OBJECT)
                return fail(err, errlen, "metadata.annotations is not an object");

        /* cloudtaser.io/inject first: a pod that does not opt in is left alone whatever its
         * other cloudtaser.io/ annotations hold (docs/operator.md). */
        JSON_FOREACH(m, annotations) {
                const char *key = json_key(m), *v;
                if (!key || strncmp(key, ANNOTATION_PREFIX, plen) != 0 ||
                    strcmp(key + plen, key_names[K_INJECT]) != 0)
                        continue;
                if (json_string(m, &v) < 0)
                        return fail(err, errlen, "annotation %s%s is not a string",
                                    ANNOTATION_PREFIX, key_names[K_INJECT]);
                if (values[K_INJECT])
                        return fail(err, errlen, "annotation %s%s is given twice",
                                    ANNOTATION_PREFIX, key_names[K_INJECT]);
                values[K_INJECT] = v;
        }
        if (!values[K_INJECT] || strcmp(values[K_INJECT], "false") == 0)
                return 0;
        if (strcmp(values[K_INJECT], "true") != 0)
                return fail(err, errlen,
                            "cloudtaser.io/inject must be \"true\" (inject) or \"false\"");
        values[K_INJECT] = NULL;

        JSON_FOREACH(m, annotations) {
                const char *key = json_key(m), *v;
                const char **slot = NULL;
                if (!key || strncmp(key, ANNOTATION_PREFIX, plen) != 0)
                        continue;
                const struct injection_variable *row = injection_variable_by_annotation(key);
                if (row)
                        slot = &ret->value[row_index(row)];
                for (size_t k = 0; !slot && k < _K_MAX; k++)
                        if (strcmp(key + plen, key_names[k]) == 0)
                                slot = &values[k];
                if (!slot) {
                        record_unknown(ret, key);
                        continue;
                }
                if (json_string(m, &v) < 0)
                        return fail(err, errlen, "annotation %s is not a string", key);
                if (*slot)
                        return fail(err, errlen, "annotation %s is given twice", key);
                if (strlen(v) > ANNOTATION_VALUE_MAX)
                        return fail(err, errlen, "annotation %s is longer than %u bytes", key,
                                    ANNOTATION_VALUE_MAX);
                *slot = v;
        }

        /* An empty value is no value, as the wrapper reads its environment. */
        for (size_t i = 0; i < INJECTION_N_VARIABLES; i++)
                if (ret->value[i] && !ret->value[i][0])
                        ret->value[i] = NULL;

        const struct injection_variable *paths = &injection_variables[INJECTION_ROW_SECRET_PATHS],
                                        *map = &injection_variables[INJECTION_ROW_ENV_MAP];
        ret->vault_address = ret->value[INJECTION_ROW_VAULT_ADDR];
        ret->secret_paths = ret->value[INJECTION_ROW_SECRET_PATHS];
        if (ret->vault_address) {
                char canon[ANNOTATION_ADDRESS_MAX + 8];
                r = annotation_vault_address_canon(ret->vault_address, canon, sizeof(canon), err,
                                                   errlen);
                if (r < 0) {
                        annotations_done(ret);
                        return r == -E2BIG ? -EINVAL : r;
                }
        }
        /* Both become env values, where Kubernetes expands $(VAR) and turns $$ into $: the
         * wrapper would read another value than the one checked here. Vault paths and variable
         * names never need a '$' (nor does any other row's value: their parsers refuse it). */
        for (const struct injection_variable *v = paths; v; v = v == paths ? map : NULL)
                if (ret->value[row_index(v)] && strchr(ret->value[row_index(v)], '$')) {
                        annotations_done(ret);
                        return fail(err, errlen,
                                    "%s must not contain '$' (Kubernetes would expand it in the "
                                    "wrapper's environment)",
                                    v->annotation);
                }
        if (ret->value[row_index(map)] && !ret->secret_paths) {
                annotations_done(ret);
                return fail(err, errlen,
                            "cloudtaser.io/env-map is set but cloudtaser.io/secret-paths is not");
        }
        if (!ret->secret_paths) {
                annotations_done(ret);
                return fail(err, errlen,
                            "cloudtaser.io/secret-paths is required: the vault paths to read, "
                            "e.g. secret/data/app/db");
        }
        /* Every row's value through the row's parser, as the wrapper will read it. */
        r = injection_settings_read(annotation_lookup, ret, &settings, &ie);
        if (r == -ENOMEM) {
                annotations_done(ret);
                return r;
        }
        if (r < 0) {
                char text[INJECTION_REASON_MAX + 64];
                annotations_done(ret);
                return fail(err, errlen, "%s",
                            injection_error_format(&ie, true, text, sizeof(text)));
        }
        injection_settings_done(&settings);

        if (values[K_CONTAINERS]) {
                r = annotation_parse_containers(values[K_CONTAINERS], &ret->containers,
                                                &ret->n_containers, err, errlen);
                if (r < 0) {
                        annotations_done(ret);
                        return r;
                }
        }
        if (values[K_COMMAND]) {
                r = annotation_parse_command(values[K_COMMAND], &ret->command, &ret->n_command, err,
                                             errlen);
                if (r < 0) {
                        annotations_done(ret);
                        return r;
                }
        }
        ret->inject = true;
        return 0;
}

int annotations_parse(const struct json_value *annotations, struct annotations *ret, char *err,
                      size_t errlen) {
        int r = parse(annotations, ret, err, errlen);
        if (r < 0)
                annotations_done(ret); /* empty after a failure, as the header says */
        return r;
}

void annotations_done(struct annotations *a) {
        if (!a)
                return;
        (void) strv_free(a->containers);
        (void) strv_free(a->command);
        *a = (struct annotations){};
}
