/* SPDX-License-Identifier: Apache-2.0 */
/* cli/source-common: the vault flags, exit statuses, diff and reconcile helpers of the
 * vault-side commands (cli/source.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/source.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault-sys.h"

int source_vault_option(struct source_vault *v, int opt, char *arg) {
        int r;
        switch (opt) {
        case SOURCE_OPT_ADDR:
                v->addr = arg;
                return 1;
        case SOURCE_OPT_TOKEN: {
                size_t n = strlen(arg);
                if (n == 0 || n > VAULT_TOKEN_MAX)
                        return log_error_errno(-EINVAL, "--token: empty or too long");
                secmem_free(v->token);
                v->token = NULL;
                r = secmem_strndup(arg, n, &v->token);
                if (r < 0)
                        return log_error_errno(r, "Failed to keep the token: %m");
                /* Gone from /proc/<pid>/cmdline from now on (not before: see cli/source.h). */
                explicit_bzero(arg, n);
                return 1;
        }
        case SOURCE_OPT_TOKEN_FILE:
                v->token_file = arg;
                return 1;
        case SOURCE_OPT_NAMESPACE:
                v->namespace_ = arg;
                return 1;
        case SOURCE_OPT_CA_CERT:
                v->ca_cert = arg;
                return 1;
        case SOURCE_OPT_SKIP_VERIFY:
                v->tls_skip_verify = true;
                return 1;
        case SOURCE_OPT_ALLOW_HTTP:
                v->allow_http = true;
                return 1;
        default:
                return 0;
        }
}

int source_parse_flags(int argc, char **argv, const struct option *opts, struct source_vault *v,
                       int (*handle)(int opt, char *arg, void *userdata), void *userdata,
                       int n_args, char ***ret_args) {
        int r, opt;

        optind = 0; /* a full reset, also of glibc's and musl's internal state */
        while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
                if (opt == '?' || opt == ':')
                        return -EINVAL; /* getopt said why */
                r = source_vault_option(v, opt, optarg);
                if (r == 0)
                        r = handle ? handle(opt, optarg, userdata) : -EINVAL;
                if (r < 0)
                        return -EINVAL;
        }
        if (argc - optind != n_args && n_args == 0)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
        if (argc - optind != n_args)
                return log_error_errno(-EINVAL, "Give %d argument%s", n_args,
                                       n_args == 1 ? " (the plan file)" : "s");
        if (ret_args)
                *ret_args = argv + optind;
        return 0;
}

static const char *env2(const char *a, const char *b) {
        const char *s = getenv(a);
        if (s && s[0])
                return s;
        s = getenv(b);
        return s && s[0] ? s : NULL;
}

static int read_token(struct source_vault *v) {
        _cleanup_buf_ struct buf b = BUF_INIT(VAULT_TOKEN_MAX + 2, BUF_SECURE);
        const char *env;
        int r;

        if (v->token)
                return 0;
        if (v->token_file) {
                r = buf_read_file(&b, v->token_file);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the token file '%s': %m",
                                               v->token_file);
                buf_rstrip(&b);
                if (b.len == 0)
                        return log_error_errno(-EINVAL, "The token file '%s' is empty",
                                               v->token_file);
                return secmem_strndup(buf_cstr(&b), b.len, &v->token);
        }
        env = env2("VAULT_TOKEN", "BAO_TOKEN");
        if (!env)
                return log_error_errno(-ENOKEY, "No vault token: give --token-file F, or set "
                                                "VAULT_TOKEN or BAO_TOKEN");
        return secmem_strndup(env, strlen(env), &v->token);
}

int source_vault_open(struct source_vault *v, bool need_token, struct vault_client **ret) {
        _cleanup_vault_client_ struct vault_client *c = NULL;
        int r;

        if (!v->addr)
                v->addr = env2("VAULT_ADDR", "BAO_ADDR");
        if (!v->addr)
                return log_error_errno(-EINVAL, "No vault address: give --openbao-addr URL, or "
                                                "set VAULT_ADDR or BAO_ADDR");
        if (!v->ca_cert)
                v->ca_cert = env2("VAULT_CACERT", "BAO_CACERT");
        if (!v->namespace_)
                v->namespace_ = env2("VAULT_NAMESPACE", "BAO_NAMESPACE");
        if (strncmp(v->addr, "http://", 7) == 0 && !v->allow_http)
                return log_error_errno(-EINVAL,
                                       "The vault address '%s' is plain http: use "
                                       "https://, or --allow-http",
                                       v->addr);
        if (v->tls_skip_verify)
                log_warning("TLS verification of the vault's certificate is off "
                            "(--tls-skip-verify): anyone on the path can read the token");
        struct vault_options o = {
                .addr = v->addr,
                .allow_http = v->allow_http,
                .ca_file = v->ca_cert,
                .insecure_skip_verify = v->tls_skip_verify,
                .namespace_ = v->namespace_,
                .deadline_ms = 30000,
        };
        r = vault_client_new(&o, &c);
        if (r < 0)
                return log_error_errno(r, "Invalid vault settings (address '%s'%s%s): %m", v->addr,
                                       v->ca_cert ? ", CA " : "", v->ca_cert ? v->ca_cert : "");
        if (need_token) {
                r = read_token(v);
                if (r < 0)
                        return r;
                r = vault_set_token(c, v->token, strlen(v->token));
                if (r < 0)
                        return log_error_errno(r,
                                               "The vault token is not valid (%zu bytes, "
                                               "printable ASCII expected)",
                                               strlen(v->token));
        }
        *ret = TAKE_PTR(c);
        return 0;
}

void source_vault_done(struct source_vault *v) {
        secmem_free(v->token);
        v->token = NULL;
}

int source_exit_status(int r) {
        switch (r) {
        case 0:
                return EX_OK;
        case -EACCES:
        case -EPERM:
                return EX_NOPERM;
        case -EINVAL:
                return EX_USAGE;
        case -ENOKEY:
                return EX_NOPERM;
        case -EBADMSG:
        case -EOPNOTSUPP:
        case -EMEDIUMTYPE:
        case -EREMOTE:
                return EX_PROTOCOL;
        case -ENOMEM:
                return EX_OSERR;
        case -ENOENT:
                return EX_DATAERR;
        default:
                return EX_UNAVAILABLE;
        }
}

const char *source_message(const char *message, int r) {
        return message && message[0] ? message : strerror(r < 0 ? -r : r);
}

int source_vault_fail(int r, const struct vault_error *e, const char *what) {
        if (e && e->message[0])
                log_error_errno(r, "%s: %s (%s%s%ld)", what, e->message, e->path[0] ? e->path : "",
                                e->path[0] ? ", HTTP " : "HTTP ", e->status);
        else
                log_error_errno(r, "%s: %s", what, vault_strerror(r));
        return source_exit_status(r);
}

/* --- diff --------------------------------------------------------------------------------- */

#define DIFF_MAX_CELLS (4u * 1024u * 1024u)

struct lines {
        char **l;
        size_t n;
};

static void lines_done(struct lines *x) {
        free(x->l);
        x->l = NULL;
        x->n = 0;
}

/* Splits a copy of text into lines (the copy is the storage, owned by the caller). */
static int split(char *text, struct lines *ret) {
        size_t n = 0, cap = 0;
        char **l = NULL;
        for (char *p = text; p && *p;) {
                char *nl = strchr(p, '\n');
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **m = realloc(l, cap * sizeof(*l));
                        if (!m) {
                                free(l);
                                return -ENOMEM;
                        }
                        l = m;
                }
                l[n++] = p;
                if (!nl)
                        break;
                *nl = '\0';
                p = nl + 1;
        }
        *ret = (struct lines){.l = l, .n = n};
        return 0;
}

int source_diff_print(FILE *f, const char *label, const char *current, const char *wanted) {
        _cleanup_free_ char *a_text = NULL, *b_text = NULL;
        _cleanup_free_ uint32_t *t = NULL;
        _cleanup_(lines_done) struct lines a = {}, b = {};
        int r;

        if (current && strcmp(current, wanted) == 0)
                return 0;
        a_text = strdup(current ? current : "");
        b_text = strdup(wanted);
        if (!a_text || !b_text)
                return -ENOMEM;
        r = split(a_text, &a);
        if (r >= 0)
                r = split(b_text, &b);
        if (r < 0)
                return r;
        fprintf(f, "--- %s (%s)\n+++ %s (wanted)\n@@ -%zu,%zu +%zu,%zu @@\n", label,
                current ? "vault" : "absent", label, a.n ? (size_t) 1 : 0, a.n,
                b.n ? (size_t) 1 : 0, b.n);
        size_t w = b.n + 1;
        if ((a.n + 1) * w <= DIFF_MAX_CELLS)
                t = calloc((a.n + 1) * w, sizeof(*t));
        if (!t) {
                /* Too large for the table (or no memory): all old lines out, all new ones in. */
                for (size_t i = 0; i < a.n; i++)
                        fprintf(f, "-%s\n", a.l[i]);
                for (size_t j = 0; j < b.n; j++)
                        fprintf(f, "+%s\n", b.l[j]);
                return 1;
        }
        /* t[i][j]: length of the longest common subsequence of a[i..] and b[j..]. */
        for (size_t i = a.n; i-- > 0;)
                for (size_t j = b.n; j-- > 0;)
                        t[i * w + j] = strcmp(a.l[i], b.l[j]) == 0
                                               ? t[(i + 1) * w + j + 1] + 1
                                               : MAX(t[(i + 1) * w + j], t[i * w + j + 1]);
        size_t i = 0, j = 0;
        while (i < a.n || j < b.n) {
                if (i < a.n && j < b.n && strcmp(a.l[i], b.l[j]) == 0) {
                        fprintf(f, " %s\n", a.l[i]);
                        i++, j++;
                } else if (j < b.n && (i == a.n || t[i * w + j + 1] >= t[(i + 1) * w + j]))
                        fprintf(f, "+%s\n", b.l[j++]);
                else
                        fprintf(f, "-%s\n", a.l[i++]);
        }
        return 1;
}

/* --- reconciling policies and roles -------------------------------------------------------- */

int source_policy_apply(struct vault_client *c, const char *name, const char *text, bool dry_run) {
        _cleanup_free_ char *cur = NULL;
        struct vault_error e;
        char label[256];
        int r;

        r = vault_sys_policy_read(c, name, &cur, &e);
        if (r < 0 && r != -ENOENT) {
                (void) source_vault_fail(r, &e, "Failed to read a policy");
                return r;
        }
        if (cur && strcmp(cur, text) == 0) {
                log_info("Policy '%s' is up to date", name);
                return 0;
        }
        if (dry_run) {
                (void) snprintf(label, sizeof(label), "policy %s", name);
                r = source_diff_print(stdout, label, cur, text);
                return r < 0 ? log_error_errno(r, "Failed to print a diff: %m") : 1;
        }
        r = vault_sys_policy_write(c, name, text, &e);
        if (r < 0) {
                (void) source_vault_fail(r, &e, "Failed to write a policy");
                return r;
        }
        printf("%s policy %s\n", cur ? "updated" : "created", name);
        return 1;
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Appends `key = ["a", "b"]` (sorted, unique) to out. */
static int render_list(struct buf *out, const char *key, const char **v, size_t n) {
        int r;
        qsort(v, n, sizeof(*v), str_cmp);
        r = buf_printf(out, "%s = [", key);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
                        continue;
                r = buf_append_str(out, i ? ", " : "");
                if (r >= 0)
                        r = json_append_quoted(out, v[i]);
        }
        return r < 0 ? r : buf_append_str(out, "]\n");
}

#define ROLE_MAX_LIST 4096u

/* The role's text from its JSON (read back) or from r. */
static int render_role_json(const struct json_value *data, struct buf *out) {
        static const char *const lists[] = {"bound_service_account_names",
                                            "bound_service_account_namespaces"};
        const char *v[ROLE_MAX_LIST];
        const char *s;
        int r = 0;

        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(lists); k++) {
                size_t n = 0;
                const struct json_value *a = json_get(data, lists[k]);
                JSON_FOREACH(e, a)
                if (n < ROLE_MAX_LIST && json_string(e, &s) >= 0)
                        v[n++] = s;
                r = render_list(out, lists[k], v, n);
        }
        if (r < 0)
                return r;
        r = buf_append_str(out, "audience = ");
        if (r >= 0)
                r = json_append_quoted(out, json_get_string(data, "audience", &s) >= 0 ? s : "");
        if (r >= 0)
                r = buf_append_str(out, "\n");
        size_t n = 0;
        JSON_FOREACH(e, json_get(data, "token_policies"))
        if (n < ROLE_MAX_LIST && json_string(e, &s) >= 0)
                v[n++] = s;
        return r < 0 ? r : render_list(out, "token_policies", v, n);
}

static int role_json(const struct source_role *role, struct json_doc **ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *a;
        int r = json_doc_new(0, 4u * 1024u * 1024u, &d);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "bound_service_account_names", &a);
        for (size_t i = 0; r >= 0 && i < role->n_service_accounts; i++)
                r = json_add_string(d, a, NULL, role->service_accounts[i]);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "bound_service_account_namespaces", &a);
        if (r >= 0)
                r = json_add_string(d, a, NULL, role->namespace_);
        if (r >= 0)
                r = json_add_string(d, json_doc_root(d), "audience", role->audience);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "token_policies", &a);
        if (r >= 0)
                r = json_add_string(d, a, NULL, role->policy);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int source_role_apply(struct vault_client *c, const char *mount, const char *name,
                      const struct source_role *role, bool dry_run) {
        _cleanup_json_doc_ struct json_doc *cur = NULL, *want = NULL;
        _cleanup_buf_ struct buf cur_text = BUF_INIT(1u << 20, 0),
                                 want_text = BUF_INIT(1u << 20, 0);
        _cleanup_buf_ struct buf body = BUF_INIT(4u << 20, 0);
        struct vault_error e;
        char path[VAULT_PATH_MAX], label[VAULT_PATH_MAX + 8];
        int r;

        if (role->n_service_accounts == 0 || role->n_service_accounts > ROLE_MAX_LIST)
                return log_error_errno(-E2BIG, "Role '%s': %zu service accounts (1..%u)", name,
                                       role->n_service_accounts, ROLE_MAX_LIST);
        int w = snprintf(path, sizeof(path), "auth/%s/role/%s", mount, name);
        if (w < 0 || (size_t) w >= sizeof(path) || !vault_path_valid(path))
                return log_error_errno(-EINVAL, "Invalid role path 'auth/%s/role/%s'", mount, name);
        r = vault_logical_read(c, path, &cur, &e);
        if (r < 0 && r != -ENOENT) {
                (void) source_vault_fail(r, &e, "Failed to read a role");
                return r;
        }
        r = role_json(role, &want);
        if (r >= 0)
                r = render_role_json(json_doc_root(want), &want_text);
        if (r >= 0 && cur)
                r = render_role_json(json_get(json_doc_root(cur), "data"), &cur_text);
        if (r < 0)
                return log_error_errno(r, "Failed to build role '%s': %m", name);
        if (cur && strcmp(buf_cstr(&cur_text), buf_cstr(&want_text)) == 0) {
                log_info("Role '%s' is up to date", path);
                return 0;
        }
        if (dry_run) {
                (void) snprintf(label, sizeof(label), "role %s", path);
                r = source_diff_print(stdout, label, cur ? buf_cstr(&cur_text) : NULL,
                                      buf_cstr(&want_text));
                return r < 0 ? log_error_errno(r, "Failed to print a diff: %m") : 1;
        }
        r = json_print(json_doc_root(want), &body);
        if (r < 0)
                return log_error_errno(r, "Failed to build role '%s': %m", name);
        r = vault_logical_write(c, path, &body, NULL, &e);
        if (r < 0) {
                (void) source_vault_fail(r, &e, "Failed to write a role");
                return r;
        }
        printf("%s role %s\n", cur ? "updated" : "created", path);
        return 1;
}
