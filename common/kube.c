/* SPDX-License-Identifier: Apache-2.0 */
/* kube: see kube.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/yaml.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define EXEC_INFO                                                                            \
        "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"spec\":{" \
        "\"interactive\":false}}"

extern char **environ; /* the plugin inherits the process environment */

struct kube_config {
        char *server;
        char *ca_pem; /* public */
        size_t ca_len;
        bool insecure;
        char *token; /* secmem */
        char *token_file;
        char *cert_pem;
        size_t cert_len;
        char *key_pem; /* secmem */
        size_t key_len;
        char *ns;
        char *context;
        char **exec_argv; /* NULL-terminated; NULL: no plugin */
        char **exec_env;  /* "NAME=value", NULL-terminated */
        char *exec_api;
};

struct kube_client {
        struct kube_config *c;
        struct kube_options o;
        pthread_mutex_t lock;
        pthread_cond_t freed;
        struct http_client *pool[KUBE_MAX_CONNECTIONS];
        bool busy[KUBE_MAX_CONNECTIONS];
        pthread_mutex_t exec_lock; /* one plugin run at a time; guards the fields below */
        char *exec_token;          /* secmem, NULL: none yet */
        int64_t exec_expiry;       /* unix seconds, 0: none */
};

/* --- errors -------------------------------------------------------------------------------- */

static void printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        *s = '?';
}

_printf_(4, 5) static int fail(struct kube_error *e, int r, long code, const char *fmt, ...) {
        if (e) {
                va_list ap;
                *e = (struct kube_error){.code = code};
                va_start(ap, fmt);
                (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
                printable(e->message);
        }
        return r;
}

int kube_status_decode(long status, const char *body, size_t len, struct kube_error *ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_limits lim = {.max_input = 256 * 1024, .max_depth = 16};
        const char *reason = "", *msg = NULL;
        int64_t code = 0;
        struct kube_error e = {.code = status};

        if (body && len > 0 && json_parse(body, len, 0, &lim, &d) >= 0) {
                const char *kind = NULL;
                if (json_get_string(json_doc_root(d), "kind", &kind) >= 0 &&
                    strcmp(kind, "Status") == 0) {
                        (void) json_get_string(json_doc_root(d), "reason", &reason);
                        (void) json_get_string(json_doc_root(d), "message", &msg);
                        if (json_get_int64(json_doc_root(d), "code", &code) >= 0 && code >= 100 &&
                            code <= 599)
                                e.code = (long) code;
                }
        }
        (void) snprintf(e.reason, sizeof(e.reason), "%s", reason);
        printable(e.reason);
        (void) snprintf(e.message, sizeof(e.message), "%s",
                        msg && *msg ? msg : "the API server sent no Status message");
        printable(e.message);
        if (ret)
                *ret = e;
        switch (e.code) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 409:
                return strcmp(e.reason, "AlreadyExists") == 0 ? -EEXIST : -ESTALE;
        case 410:
                return -ETIME;
        case 400:
        case 422:
                return -EINVAL;
        case 429:
        case 503:
                return -EAGAIN;
        default:
                return -EPROTO;
        }
}

bool kube_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && c != '-' && c != '.')
                        return false;
                if ((i == 0 || i == n - 1) && !alnum)
                        return false;
        }
        return true;
}

/* --- configuration ------------------------------------------------------------------------- */

static char **strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
        return NULL;
}

struct kube_config *kube_config_free(struct kube_config *c) {
        if (!c)
                return NULL;
        free(c->server);
        free(c->ca_pem);
        secmem_free(c->token);
        free(c->token_file);
        free(c->cert_pem);
        secmem_free(c->key_pem);
        free(c->ns);
        free(c->context);
        strv_free(c->exec_argv);
        strv_free(c->exec_env);
        free(c->exec_api);
        free(c);
        return NULL;
}

const char *kube_config_server(const struct kube_config *c) {
        return c ? c->server : NULL;
}

const char *kube_config_namespace(const struct kube_config *c) {
        return c && c->ns ? c->ns : "default";
}

const char *kube_config_context(const struct kube_config *c) {
        return c && c->context ? c->context : "";
}

const char *kube_config_ca(const struct kube_config *c, size_t *ret_len) {
        if (!c || !c->ca_pem)
                return NULL;
        if (ret_len)
                *ret_len = c->ca_len;
        return c->ca_pem;
}

static int dup_to(char **dst, const char *s) {
        char *p = strdup(s);
        if (!p)
                return -ENOMEM;
        free(*dst);
        *dst = p;
        return 0;
}

/* Reads a public file (CA, certificate) into malloc()ed *ret. */
static int read_public(const char *path, char **ret, size_t *ret_len) {
        _cleanup_buf_ struct buf b = BUF_INIT(KUBE_MAX_FILE, 0);
        int r = buf_read_file(&b, path);
        if (r < 0)
                return r;
        if (b.len == 0)
                return -ENODATA;
        return buf_steal(&b, ret, ret_len);
}

static int read_secret(const char *path, char **ret, size_t *ret_len) {
        _cleanup_buf_ struct buf b = BUF_INIT(KUBE_MAX_FILE, BUF_SECURE);
        int r = buf_read_file(&b, path);
        if (r < 0)
                return r;
        if (b.len == 0)
                return -ENODATA;
        r = secmem_strndup(b.data, b.len, ret);
        if (r >= 0)
                *ret_len = b.len;
        return r;
}

int kube_config_incluster(const char *sa_dir, struct kube_config **ret, struct kube_error *err) {
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        const char *host = getenv("KUBERNETES_SERVICE_HOST"),
                   *port = getenv("KUBERNETES_SERVICE_PORT");
        char path[PATH_MAX], server[300];
        int r;

        if (!ret)
                return -EINVAL;
        sa_dir = sa_dir ? sa_dir : KUBE_SA_DIR;
        if (!host || !*host || !port || !*port)
                return fail(err, -ENOENT, 0,
                            "not in a cluster: KUBERNETES_SERVICE_HOST and "
                            "KUBERNETES_SERVICE_PORT are not set");
        if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 || strlen(host) > 253 ||
            strpbrk(host, "/@?# []"))
                return fail(err, -EINVAL, 0, "KUBERNETES_SERVICE_HOST or _PORT is malformed");
        /* net.JoinHostPort: IPv6 literals get brackets. */
        (void) snprintf(server, sizeof(server),
                        strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (dup_to(&c->server, server) < 0)
                return -ENOMEM;
        if ((size_t) snprintf(path, sizeof(path), "%s/token", sa_dir) >= sizeof(path))
                return -ENAMETOOLONG;
        if (access(path, R_OK) < 0)
                return fail(err, -ENOENT, 0, "no service account token at %.200s", path);
        if (dup_to(&c->token_file, path) < 0)
                return -ENOMEM;
        (void) snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
        r = read_public(path, &c->ca_pem, &c->ca_len);
        if (r < 0)
                return fail(err, r, 0, "cannot read the cluster CA %.200s: %s", path, strerror(-r));
        (void) snprintf(path, sizeof(path), "%s/namespace", sa_dir);
        _cleanup_buf_ struct buf ns = BUF_INIT(256, 0);
        if (buf_read_file(&ns, path) >= 0) {
                buf_rstrip(&ns);
                if (kube_name_valid(buf_cstr(&ns)) && dup_to(&c->ns, buf_cstr(&ns)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int kube_config_new(const char *server, const char *ca_file, const char *token_file,
                    struct kube_config **ret, struct kube_error *err) {
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        int r;
        if (!server || strncmp(server, "https://", 8) != 0 || !ca_file || !ret)
                return fail(err, -EINVAL, 0, "the API server needs an https:// URL and a CA file");
        c = calloc(1, sizeof(*c));
        if (!c || dup_to(&c->server, server) < 0 ||
            (token_file && dup_to(&c->token_file, token_file) < 0))
                return -ENOMEM;
        r = read_public(ca_file, &c->ca_pem, &c->ca_len);
        if (r < 0)
                return fail(err, r, 0, "cannot read the CA file %.200s: %s", ca_file, strerror(-r));
        *ret = TAKE_PTR(c);
        return 0;
}

/* --- kubeconfig ---------------------------------------------------------------------------- */

struct kc_files {
        struct json_doc *doc[KUBE_MAX_KUBECONFIGS];
        char *dir[KUBE_MAX_KUBECONFIGS];
        char *path[KUBE_MAX_KUBECONFIGS];
        size_t n;
};

static void kc_files_done(struct kc_files *f) {
        for (size_t i = 0; i < f->n; i++) {
                json_doc_free(f->doc[i]);
                free(f->dir[i]);
                free(f->path[i]);
        }
        f->n = 0;
}

static int kc_read(struct kc_files *f, const char *path, struct kube_error *err) {
        _cleanup_buf_ struct buf b = BUF_INIT(KUBE_MAX_FILE, BUF_SECURE);
        struct json_doc *d = NULL;
        int r = buf_read_file(&b, path);
        if (r == -ENOENT)
                return 0; /* kubectl skips missing files of $KUBECONFIG */
        if (r < 0)
                return fail(err, r, 0, "cannot read kubeconfig %.200s: %s", path, strerror(-r));
        if (f->n >= KUBE_MAX_KUBECONFIGS)
                return fail(err, -E2BIG, 0, "more than %d kubeconfig files", KUBE_MAX_KUBECONFIGS);
        r = yaml_parse(b.data ? b.data : "", b.len, JSON_SECURE, NULL, &d);
        if (r < 0)
                return fail(err, r, 0, "kubeconfig %.200s is not valid YAML (%s)", path,
                            strerror(-r));
        const char *slash = strrchr(path, '/');
        f->doc[f->n] = d;
        f->path[f->n] = strdup(path);
        f->dir[f->n] =
                slash ? strndup(path, (size_t) (slash - path) + (slash == path)) : strdup(".");
        f->n++;
        if (!f->path[f->n - 1] || !f->dir[f->n - 1])
                return -ENOMEM;
        return 0;
}

/* The first entry called name in section ("clusters", "users", "contexts") of any file, and
 * its inner object (section minus the 's'). */
static const struct json_value *kc_find(const struct kc_files *f, const char *section,
                                        const char *inner, const char *name, size_t *ret_file) {
        for (size_t i = 0; i < f->n; i++) {
                const struct json_value *list = NULL;
                if (json_get_array(json_doc_root(f->doc[i]), section, &list) < 0)
                        continue;
                JSON_FOREACH(e, list) {
                        const char *n = NULL;
                        const struct json_value *v = NULL;
                        if (json_get_string(e, "name", &n) >= 0 && strcmp(n, name) == 0 &&
                            json_get_object(e, inner, &v) >= 0) {
                                *ret_file = i;
                                return v;
                        }
                }
        }
        return NULL;
}

/* A string member, "" or absent as NULL; -EBADMSG when present with another type. */
static int opt_string(const struct json_value *o, const char *key, const char **ret) {
        const struct json_value *v = json_get(o, key);
        *ret = NULL;
        if (!v || json_type(v) == JSON_NULL)
                return 0;
        if (json_string(v, ret) < 0)
                return -EBADMSG;
        if (!**ret)
                *ret = NULL;
        return 0;
}

static int resolve_path(const char *dir, const char *p, char *out, size_t outsz) {
        int n = p[0] == '/' ? snprintf(out, outsz, "%s", p) : snprintf(out, outsz, "%s/%s", dir, p);
        return n < 0 || (size_t) n >= outsz ? -ENAMETOOLONG : 0;
}

/* base64 data (public) into malloc()ed memory, or (secret) into secmem. */
static int decode_data(const char *b64, bool secret, char **ret, size_t *ret_len) {
        _cleanup_buf_ struct buf b = BUF_INIT(KUBE_MAX_FILE, secret ? BUF_SECURE : 0);
        int r = base64_decode(&b, b64, strlen(b64), true);
        if (r < 0)
                return r == -E2BIG ? r : -EBADMSG;
        if (b.len == 0)
                return -EBADMSG;
        if (!secret)
                return buf_steal(&b, ret, ret_len);
        r = secmem_strndup(b.data, b.len, ret);
        if (r >= 0)
                *ret_len = b.len;
        return r;
}

static int kc_cluster(struct kube_config *c, const struct json_value *cl, const char *dir,
                      bool allow_insecure, const char *name, struct kube_error *err) {
        const char *server, *ca_data, *ca_file;
        char path[PATH_MAX];
        bool insecure = false;
        int r;

        if (opt_string(cl, "server", &server) < 0 ||
            opt_string(cl, "certificate-authority-data", &ca_data) < 0 ||
            opt_string(cl, "certificate-authority", &ca_file) < 0 ||
            (json_get(cl, "insecure-skip-tls-verify") &&
             json_get_bool(cl, "insecure-skip-tls-verify", &insecure) < 0))
                return fail(err, -EBADMSG, 0, "cluster %.100s: a field has the wrong type", name);
        if (!server || (strncmp(server, "https://", 8) != 0))
                return fail(err, server ? -EPROTONOSUPPORT : -EBADMSG, 0,
                            "cluster %.100s: the server must be an https:// URL", name);
        if (dup_to(&c->server, server) < 0)
                return -ENOMEM;
        if (insecure && !allow_insecure)
                return fail(err, -EPERM, 0,
                            "cluster %.100s sets insecure-skip-tls-verify: refused (the API "
                            "server's identity would not be checked)",
                            name);
        c->insecure = insecure;
        if (ca_data) {
                r = decode_data(ca_data, false, &c->ca_pem, &c->ca_len);
                if (r < 0)
                        return fail(err, r, 0,
                                    "cluster %.100s: certificate-authority-data is not base64",
                                    name);
        } else if (ca_file) {
                r = resolve_path(dir, ca_file, path, sizeof(path));
                if (r >= 0)
                        r = read_public(path, &c->ca_pem, &c->ca_len);
                if (r < 0)
                        return fail(err, r, 0, "cluster %.100s: cannot read %.200s: %s", name,
                                    ca_file, strerror(-r));
        }
        return 0;
}

static int kc_strv(const struct json_value *arr, const char *first, char ***ret) {
        size_t n = json_count(arr), i = 0;
        if (n + 2 > KUBE_EXEC_MAX_ARGS)
                return -E2BIG;
        char **v = calloc(n + 2, sizeof(char *));
        if (!v)
                return -ENOMEM;
        if (first && !(v[i++] = strdup(first)))
                return strv_free(v), -ENOMEM;
        JSON_FOREACH(e, arr) {
                const char *s;
                if (json_string(e, &s) < 0)
                        return strv_free(v), -EBADMSG;
                if (!(v[i++] = strdup(s)))
                        return strv_free(v), -ENOMEM;
        }
        *ret = v;
        return 0;
}

static int kc_exec(struct kube_config *c, const struct json_value *ex, const char *dir,
                   const char *name, struct kube_error *err) {
        const char *api, *cmd;
        const struct json_value *args = json_get(ex, "args"), *env = json_get(ex, "env");
        char path[PATH_MAX];
        int r;

        if (opt_string(ex, "apiVersion", &api) < 0 || opt_string(ex, "command", &cmd) < 0 || !cmd ||
            (args && json_type(args) != JSON_ARRAY && json_type(args) != JSON_NULL) ||
            (env && json_type(env) != JSON_ARRAY && json_type(env) != JSON_NULL))
                return fail(err, -EBADMSG, 0, "user %.100s: exec needs a command", name);
        if (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
                     strcmp(api, "client.authentication.k8s.io/v1beta1") != 0))
                return fail(err, -EPROTONOSUPPORT, 0,
                            "user %.100s: exec apiVersion %.80s is not supported (use "
                            "client.authentication.k8s.io/v1)",
                            name, api ? api : "(none)");
        /* client-go: a relative command with a separator is relative to the kubeconfig. */
        if (strchr(cmd, '/') && cmd[0] != '/') {
                r = resolve_path(dir, cmd, path, sizeof(path));
                if (r < 0)
                        return r;
                cmd = path;
        }
        if (dup_to(&c->exec_api, api) < 0)
                return -ENOMEM;
        if (args && json_type(args) == JSON_ARRAY)
                r = kc_strv(args, cmd, &c->exec_argv);
        else {
                c->exec_argv = calloc(2, sizeof(char *));
                r = c->exec_argv && (c->exec_argv[0] = strdup(cmd)) ? 0 : -ENOMEM;
        }
        if (r < 0)
                return fail(err, r, 0, "user %.100s: exec args must be strings", name);
        size_t n = env && json_type(env) == JSON_ARRAY ? json_count(env) : 0;
        if (n > KUBE_EXEC_MAX_ARGS)
                return -E2BIG;
        c->exec_env = calloc(n + 1, sizeof(char *));
        if (!c->exec_env)
                return -ENOMEM;
        size_t i = 0;
        for (const struct json_value *e = n ? json_first_child(env) : NULL; e; e = json_next(e)) {
                const char *k, *v;
                if (json_get_string(e, "name", &k) < 0 || json_get_string(e, "value", &v) < 0 ||
                    !*k || strchr(k, '='))
                        return fail(err, -EBADMSG, 0, "user %.100s: exec env needs name and value",
                                    name);
                size_t len = strlen(k) + strlen(v) + 2;
                if (!(c->exec_env[i] = malloc(len)))
                        return -ENOMEM;
                (void) snprintf(c->exec_env[i++], len, "%s=%s", k, v);
        }
        return 0;
}

static int kc_user(struct kube_config *c, const struct json_value *u, const char *dir,
                   const char *name, struct kube_error *err) {
        const char *token, *token_file, *cert, *cert_data, *key, *key_data, *user, *pass;
        const struct json_value *ex = json_get(u, "exec");
        char path[PATH_MAX];
        int r;

        if (opt_string(u, "token", &token) < 0 || opt_string(u, "tokenFile", &token_file) < 0 ||
            opt_string(u, "client-certificate", &cert) < 0 ||
            opt_string(u, "client-certificate-data", &cert_data) < 0 ||
            opt_string(u, "client-key", &key) < 0 ||
            opt_string(u, "client-key-data", &key_data) < 0 ||
            opt_string(u, "username", &user) < 0 || opt_string(u, "password", &pass) < 0 ||
            (ex && json_type(ex) != JSON_OBJECT && json_type(ex) != JSON_NULL))
                return fail(err, -EBADMSG, 0, "user %.100s: a field has the wrong type", name);
        if (user || pass || json_get(u, "auth-provider"))
                return fail(err, -EPROTONOSUPPORT, 0,
                            "user %.100s: basic auth and auth-provider are not supported (use a "
                            "token, a client certificate or an exec plugin)",
                            name);
        if (token && (r = secmem_strndup(token, strlen(token), &c->token)) < 0)
                return r;
        if (token_file) {
                r = resolve_path(dir, token_file, path, sizeof(path));
                if (r < 0 || dup_to(&c->token_file, path) < 0)
                        return r < 0 ? r : -ENOMEM;
        }
        if (cert_data)
                r = decode_data(cert_data, false, &c->cert_pem, &c->cert_len);
        else if (cert && (r = resolve_path(dir, cert, path, sizeof(path))) >= 0)
                r = read_public(path, &c->cert_pem, &c->cert_len);
        else
                r = 0;
        if (r < 0)
                return fail(err, r, 0, "user %.100s: cannot read its client certificate: %s", name,
                            strerror(-r));
        if (key_data)
                r = decode_data(key_data, true, &c->key_pem, &c->key_len);
        else if (key && (r = resolve_path(dir, key, path, sizeof(path))) >= 0)
                r = read_secret(path, &c->key_pem, &c->key_len);
        else
                r = 0;
        if (r < 0)
                return fail(err, r, 0, "user %.100s: cannot read its client key: %s", name,
                            strerror(-r));
        if (!c->cert_pem != !c->key_pem)
                return fail(err, -EBADMSG, 0,
                            "user %.100s: a client certificate needs its key, and the reverse",
                            name);
        if (ex && json_type(ex) == JSON_OBJECT)
                return kc_exec(c, ex, dir, name, err);
        return 0;
}

int kube_config_load(const struct kube_load_options *o, struct kube_config **ret,
                     struct kube_error *err) {
        _cleanup_(kube_config_freep) struct kube_config *c = NULL;
        _cleanup_(kc_files_done) struct kc_files f = {};
        const struct kube_load_options none = {};
        char home_cfg[PATH_MAX];
        const char *ctx_name = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        o = o ? o : &none;
        const char *paths = o->paths ? o->paths : getenv("KUBECONFIG");
        if (!paths || !*paths) {
                const char *home = getenv("HOME");
                if (!home || !*home)
                        return fail(err, -ENOENT, 0,
                                    "no kubeconfig: neither KUBECONFIG nor HOME "
                                    "is set");
                if ((size_t) snprintf(home_cfg, sizeof(home_cfg), "%s/.kube/config", home) >=
                    sizeof(home_cfg))
                        return -ENAMETOOLONG;
                paths = home_cfg;
        }
        _cleanup_free_ char *list = strdup(paths);
        if (!list)
                return -ENOMEM;
        for (char *save = NULL, *p = strtok_r(list, ":", &save); p;
             p = strtok_r(NULL, ":", &save)) {
                r = kc_read(&f, p, err);
                if (r < 0)
                        return r;
        }
        if (f.n == 0)
                return fail(err, -ENOENT, 0, "no kubeconfig file found (%.200s)", paths);

        ctx_name = o->context;
        for (size_t i = 0; !ctx_name && i < f.n; i++)
                if (opt_string(json_doc_root(f.doc[i]), "current-context", &ctx_name) < 0)
                        return fail(err, -EBADMSG, 0, "current-context is not a string");
        if (!ctx_name)
                return fail(err, -ENOENT, 0, "no context: the kubeconfig has no current-context");
        size_t fi = 0, ci = 0, ui = 0;
        const struct json_value *ctx = kc_find(&f, "contexts", "context", ctx_name, &fi);
        if (!ctx)
                return fail(err, -ENOENT, 0, "context %.100s is not in the kubeconfig", ctx_name);
        const char *cluster_name, *user_name, *ns;
        if (opt_string(ctx, "cluster", &cluster_name) < 0 ||
            opt_string(ctx, "user", &user_name) < 0 || opt_string(ctx, "namespace", &ns) < 0 ||
            !cluster_name)
                return fail(err, -EBADMSG, 0, "context %.100s names no cluster", ctx_name);
        const struct json_value *cl = kc_find(&f, "clusters", "cluster", cluster_name, &ci);
        if (!cl)
                return fail(err, -ENOENT, 0,
                            "cluster %.100s of context %.100s is not in the "
                            "kubeconfig",
                            cluster_name, ctx_name);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (dup_to(&c->context, ctx_name) < 0 || (ns && dup_to(&c->ns, ns) < 0))
                return -ENOMEM;
        r = kc_cluster(c, cl, f.dir[ci], o->allow_insecure, cluster_name, err);
        if (r < 0)
                return r;
        if (user_name) {
                const struct json_value *u = kc_find(&f, "users", "user", user_name, &ui);
                if (!u)
                        return fail(err, -ENOENT, 0,
                                    "user %.100s of context %.100s is not in the "
                                    "kubeconfig",
                                    user_name, ctx_name);
                r = kc_user(c, u, f.dir[ui], user_name, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* --- the client ---------------------------------------------------------------------------- */

static int new_http(const struct kube_client *k, struct http_client **ret) {
        const struct kube_config *c = k->c;
        struct http_options ho = {
                .base_url = c->server,
                .ca_pem = c->ca_pem,
                .ca_pem_len = c->ca_len,
                .insecure_skip_verify = c->insecure,
                .client_cert_pem = c->cert_pem,
                .client_cert_pem_len = c->cert_len,
                .client_key_pem = c->key_pem,
                .client_key_pem_len = c->key_len,
                .connect_timeout_ms = MIN(k->o.timeout_ms, 2000u),
                .request_timeout_ms = k->o.timeout_ms,
                .deadline_ms = k->o.timeout_ms,
                .max_body = KUBE_MAX_BODY,
                .max_attempts = 2,
                .user_agent = "cloudtaser",
                .hooks = k->o.hooks,
        };
        return http_client_new(&ho, ret);
}

int kube_client_new(struct kube_config **config, const struct kube_options *o,
                    struct kube_client **ret) {
        if (!config || !*config || !ret)
                return -EINVAL;
        struct kube_client *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->o = o ? *o : (struct kube_options){};
        k->o.timeout_ms = k->o.timeout_ms ?: DEFAULT_TIMEOUT_MS;
        if (pthread_mutex_init(&k->lock, NULL) != 0) {
                free(k);
                return -ENOMEM;
        }
        if (pthread_cond_init(&k->freed, NULL) != 0 ||
            pthread_mutex_init(&k->exec_lock, NULL) != 0) {
                pthread_mutex_destroy(&k->lock);
                free(k);
                return -ENOMEM;
        }
        /* One http client now: the options are checked before the caller goes on. */
        k->c = *config;
        int r = new_http(k, &k->pool[0]);
        if (r < 0) {
                k->c = NULL;
                kube_client_free(k);
                return r;
        }
        *config = NULL;
        *ret = k;
        return 0;
}

struct kube_client *kube_client_free(struct kube_client *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < KUBE_MAX_CONNECTIONS; i++)
                http_client_free(k->pool[i]);
        secmem_free(k->exec_token);
        kube_config_free(k->c);
        pthread_cond_destroy(&k->freed);
        pthread_mutex_destroy(&k->exec_lock);
        pthread_mutex_destroy(&k->lock);
        free(k);
        return NULL;
}

/* Lends a free http client (created on first use), waiting while all are busy. */
static int borrow(struct kube_client *k, size_t *ret) {
        pthread_mutex_lock(&k->lock);
        for (;;) {
                for (size_t i = 0; i < KUBE_MAX_CONNECTIONS; i++) {
                        if (k->busy[i])
                                continue;
                        if (!k->pool[i]) {
                                int r = new_http(k, &k->pool[i]);
                                if (r < 0) {
                                        pthread_mutex_unlock(&k->lock);
                                        return r;
                                }
                        }
                        k->busy[i] = true;
                        pthread_mutex_unlock(&k->lock);
                        *ret = i;
                        return 0;
                }
                (void) pthread_cond_wait(&k->freed, &k->lock);
        }
}

static void give_back(struct kube_client *k, size_t i) {
        pthread_mutex_lock(&k->lock);
        k->busy[i] = false;
        pthread_cond_signal(&k->freed);
        pthread_mutex_unlock(&k->lock);
}

static int64_t now_unix(const struct kube_client *k) {
        return k->o.now_unix ? k->o.now_unix(k->o.userdata) : (int64_t) time(NULL);
}

/* "2018-03-05T17:30:20-08:00" / "...Z" / with fractional seconds, to unix seconds. */
static int parse_rfc3339(const char *s, int64_t *ret) {
        int y, mo, d, h, mi, sec, n = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
                return -EBADMSG;
        const char *p = s + n;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        int64_t off = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int oh, om, m = 0;
                if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
                        return -EBADMSG;
                off = (int64_t) (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
                p += 6;
        } else
                return -EBADMSG;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
                return -EBADMSG;
        /* days from civil (Howard Hinnant's algorithm) */
        int64_t yy = y - (mo <= 2);
        int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
        int64_t yoe = yy - era * 400;
        int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        int64_t days = era * 146097 + doe - 719468;
        *ret = days * 86400 + h * 3600 + mi * 60 + sec - off;
        return 0;
}

/* Runs the exec plugin and reads its ExecCredential. Called with exec_lock held. */
static int run_exec(struct kube_client *k, struct kube_error *err) {
        const struct kube_config *c = k->c;
        _cleanup_buf_ struct buf out = BUF_INIT(KUBE_EXEC_MAX_OUTPUT, BUF_SECURE);
        _cleanup_free_ char **envp = NULL;
        char info[256];
        size_t ne = 0, nc = 0;
        int pfd[2], status = 0, r;

        while (environ && environ[ne])
                ne++;
        while (c->exec_env[nc])
                nc++;
        envp = calloc(ne + nc + 2, sizeof(char *));
        if (!envp)
                return -ENOMEM;
        size_t j = 0;
        for (size_t i = 0; i < ne; i++)
                if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0)
                        envp[j++] = environ[i];
        for (size_t i = 0; i < nc; i++)
                envp[j++] = c->exec_env[i];
        (void) snprintf(info, sizeof(info), EXEC_INFO, c->exec_api);
        envp[j++] = info;
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return negative_errno();
        /* posix_spawn, no shell: stdin /dev/null, stdout the pipe (dup2 clears its close-on-exec),
         * stderr inherited, an empty signal mask and default dispositions for the child. */
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t sa;
        sigset_t none, all;
        pid_t pid = 0;
        (void) sigemptyset(&none);
        (void) sigfillset(&all);
        r = -posix_spawn_file_actions_init(&fa);
        if (r < 0) {
                (void) close(pfd[0]);
                (void) close(pfd[1]);
                return r;
        }
        r = -posix_spawnattr_init(&sa);
        if (r == 0)
                r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = -posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        if (r == 0)
                r = -posix_spawnattr_setsigmask(&sa, &none);
        if (r == 0)
                r = -posix_spawnattr_setsigdefault(&sa, &all);
        if (r == 0)
                r = -posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = -posix_spawnp(&pid, c->exec_argv[0], &fa, &sa, c->exec_argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&sa);
        if (r < 0) {
                (void) close(pfd[0]);
                (void) close(pfd[1]);
                return fail(err, r, 0, "cannot run the exec plugin %.100s: %s", c->exec_argv[0],
                            strerror(-r));
        }
        (void) close(pfd[1]);
        struct timespec t0;
        (void) clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t deadline = (int64_t) t0.tv_sec * 1000 + t0.tv_nsec / 1000000 + KUBE_EXEC_TIMEOUT_MS;
        for (;;) {
                struct timespec t;
                (void) clock_gettime(CLOCK_MONOTONIC, &t);
                int64_t left = deadline - ((int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000);
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd p = {.fd = pfd[0], .events = POLLIN};
                int n = poll(&p, 1, (int) left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? negative_errno() : -ETIMEDOUT;
                        break;
                }
                char chunk[4096];
                ssize_t got = read(pfd[0], chunk, sizeof(chunk));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0) {
                        r = got < 0 ? negative_errno() : 0;
                        break;
                }
                r = buf_append(&out, chunk, (size_t) got);
                explicit_bzero(chunk, sizeof(chunk));
                if (r < 0)
                        break;
        }
        (void) close(pfd[0]);
        if (r < 0)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return fail(err, r, 0, "exec plugin %.100s: %s", c->exec_argv[0],
                            r == -ETIMEDOUT ? "did not finish in time" : "output too large");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail(err, -EACCES, 0, "exec plugin %.100s failed (%s %d)", c->exec_argv[0],
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));

        _cleanup_json_doc_ struct json_doc *d = NULL;
        const char *api, *kind, *token = NULL, *exp = NULL;
        const struct json_value *st = NULL;
        if (json_parse(out.data ? out.data : "", out.len, JSON_SECURE, NULL, &d) < 0 ||
            json_get_string(json_doc_root(d), "apiVersion", &api) < 0 ||
            json_get_string(json_doc_root(d), "kind", &kind) < 0 ||
            strcmp(kind, "ExecCredential") != 0 || strcmp(api, c->exec_api) != 0 ||
            json_get_object(json_doc_root(d), "status", &st) < 0)
                return fail(err, -EBADMSG, 0,
                            "exec plugin %.100s did not print an ExecCredential of %.80s",
                            c->exec_argv[0], c->exec_api);
        if (opt_string(st, "token", &token) < 0 || !token || strlen(token) > KUBE_MAX_TOKEN)
                return fail(err, -EPROTONOSUPPORT, 0,
                            "exec plugin %.100s gave no status.token (client certificates from "
                            "plugins are not supported)",
                            c->exec_argv[0]);
        for (const char *t = token; *t; t++)
                if ((unsigned char) *t <= 0x20 || (unsigned char) *t >= 0x7f)
                        return fail(err, -EBADMSG, 0, "exec plugin %.100s: a malformed token",
                                    c->exec_argv[0]);
        int64_t expiry = 0;
        if (opt_string(st, "expirationTimestamp", &exp) < 0 ||
            (exp && parse_rfc3339(exp, &expiry) < 0))
                return fail(err, -EBADMSG, 0,
                            "exec plugin %.100s: status.expirationTimestamp is not RFC 3339",
                            c->exec_argv[0]);
        char *copy = NULL;
        r = secmem_strndup(token, strlen(token), &copy);
        if (r < 0)
                return r;
        secmem_free(k->exec_token);
        k->exec_token = copy;
        k->exec_expiry = expiry ? expiry : 0;
        return 0;
}

/* The Authorization header value ("Bearer ..."), into secure auth; nothing for client
 * certificates alone. force_exec: run the plugin even if its token has not expired. */
static int authorization(struct kube_client *k, bool force_exec, struct buf *auth,
                         struct kube_error *err) {
        const struct kube_config *c = k->c;
        int r;
        if (c->exec_argv) {
                pthread_mutex_lock(&k->exec_lock);
                r = 0;
                if (force_exec || !k->exec_token ||
                    (k->exec_expiry && now_unix(k) >= k->exec_expiry))
                        r = run_exec(k, err);
                if (r >= 0)
                        r = buf_printf(auth, "Bearer %s", k->exec_token);
                pthread_mutex_unlock(&k->exec_lock);
                return r;
        }
        if (c->token_file) {
                _cleanup_buf_ struct buf token = BUF_INIT(KUBE_MAX_TOKEN, BUF_SECURE);
                r = buf_read_file(&token, c->token_file);
                buf_rstrip(&token);
                if (r >= 0 && token.len == 0)
                        r = -ENODATA;
                if (r < 0)
                        return fail(err, r, 0, "cannot read the token file %.200s: %s",
                                    c->token_file, strerror(-r));
                return buf_printf(auth, "Bearer %s", buf_cstr(&token));
        }
        if (c->token)
                return buf_printf(auth, "Bearer %s", c->token);
        return 0;
}

/* A streamed answer (a watch): its body goes to on_body, as common/http's http_request. why: the
 * reason on_body gives for its failures (copied into the caller's error). */
struct stream {
        int (*on_body)(void *userdata, const void *data, size_t len);
        void *userdata;
        unsigned timeout_ms;
        bool (*cancelled)(void *userdata);
        void *cancelled_userdata;
        const struct kube_error *why;
};

static int request_as(struct kube_client *k, enum http_method m, const char *path,
                      const char *accept, const char *content_type, const struct buf *body,
                      struct json_doc **ret, struct buf *ret_raw, const struct stream *st,
                      struct kube_error *err) {
        if (!k || !path || path[0] != '/')
                return -EINVAL;
        const char *q = strchr(path, '?');
        _cleanup_free_ char *p = q ? strndup(path, (size_t) (q - path)) : NULL;
        if (q && !p)
                return -ENOMEM;
        for (int attempt = 0;; attempt++) {
                _cleanup_buf_ struct buf auth = BUF_INIT(KUBE_MAX_TOKEN + 16, BUF_SECURE);
                _cleanup_http_response_ struct http_response resp = {};
                struct http_result res = {};
                struct http_header h[2];
                size_t nh = 0, slot;

                int r = authorization(k, attempt > 0, &auth, err);
                if (r < 0)
                        return r;
                h[nh++] = (struct http_header){.name = "Accept", .value = accept};
                if (auth.len)
                        h[nh++] = (struct http_header){
                                .name = "Authorization", .value = buf_cstr(&auth), .secret = true};
                struct http_request req = {.method = m,
                                           .path = p ? p : path,
                                           .query = q ? q + 1 : NULL,
                                           .body = body,
                                           .content_type = content_type,
                                           .headers = h,
                                           .n_headers = nh};
                if (st) {
                        req.on_body = st->on_body;
                        req.on_body_userdata = st->userdata;
                        req.stream_timeout_ms = st->timeout_ms;
                        req.cancelled = st->cancelled;
                        req.cancelled_userdata = st->cancelled_userdata;
                }
                r = borrow(k, &slot);
                if (r < 0)
                        return fail(err, r, 0, "cannot set up a connection to %.200s",
                                    k->c->server);
                r = http_request(k->pool[slot], &req, &resp, &res);
                give_back(k, slot);
                if (r < 0 && st && st->why->message[0]) {
                        if (err)
                                *err = *st->why; /* the stream's parser or its callback */
                        return r;
                }
                if (r == -ECANCELED)
                        return fail(err, r, 0, "the request to %.200s was cancelled", k->c->server);
                if (r < 0)
                        return fail(err, r, 0, "the Kubernetes API at %.200s is unreachable: %s",
                                    k->c->server,
                                    res.error_text[0] ? res.error_text : strerror(-r));
                /* An exec token the server no longer takes: run the plugin once more. */
                if (resp.status == 401 && k->c->exec_argv && attempt == 0)
                        continue;
                if (resp.status >= 200 && resp.status < 300) {
                        if (st)
                                return 0; /* the body went to on_body */
                        if (ret_raw)
                                return buf_append(ret_raw, resp.body.data ? resp.body.data : "",
                                                  resp.body.len);
                        if (!ret)
                                return 0;
                        const struct json_limits lim = {.max_input = KUBE_MAX_BODY};
                        r = json_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                                       JSON_SECURE, &lim, ret);
                        return r < 0 ? fail(err, -EBADMSG, resp.status,
                                            "the API server's answer is not JSON")
                                     : 0;
                }
                struct kube_error e;
                r = kube_status_decode(resp.status, resp.body.data, resp.body.len, &e);
                if (err)
                        *err = e;
                return r;
        }
}

static int request(struct kube_client *k, enum http_method m, const char *path,
                   const char *content_type, const struct buf *body, struct json_doc **ret,
                   struct kube_error *err) {
        return request_as(k, m, path, "application/json", content_type, body, ret, NULL, NULL, err);
}

int kube_get_raw(struct kube_client *k, const char *path, const char *accept, struct buf *out,
                 struct kube_error *err) {
        if (!accept || !out)
                return -EINVAL;
        return request_as(k, HTTP_GET, path, accept, NULL, NULL, NULL, out, NULL, err);
}

int kube_get(struct kube_client *k, const char *path, struct json_doc **ret,
             struct kube_error *err) {
        return request(k, HTTP_GET, path, NULL, NULL, ret, err);
}

int kube_create(struct kube_client *k, const char *path, const struct buf *body,
                struct json_doc **ret, struct kube_error *err) {
        return body ? request(k, HTTP_POST, path, "application/json", body, ret, err) : -EINVAL;
}

int kube_update(struct kube_client *k, const char *path, const struct buf *body,
                struct json_doc **ret, struct kube_error *err) {
        return body ? request(k, HTTP_PUT, path, "application/json", body, ret, err) : -EINVAL;
}

int kube_patch(struct kube_client *k, const char *path, enum kube_patch_type type,
               const struct buf *body, struct json_doc **ret, struct kube_error *err) {
        static const char *const ct[] = {
                [KUBE_PATCH_MERGE] = "application/merge-patch+json",
                [KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
                [KUBE_PATCH_JSON] = "application/json-patch+json",
        };
        if (!body || (unsigned) type >= ELEMENTSOF(ct))
                return -EINVAL;
        return request(k, HTTP_PATCH, path, ct[type], body, ret, err);
}

/* --- pull secrets -------------------------------------------------------------------------- */

int kube_get_pull_secret(struct kube_client *k, const char *ns, const char *name, struct buf *out,
                         struct kube_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char path[600];
        const char *type, *b64;
        int r;

        if (!kube_name_valid(ns) || !kube_name_valid(name))
                return fail(err, -EINVAL, 0, "invalid namespace or secret name");
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
        r = kube_get(k, path, &d, err);
        if (r < 0)
                return r;
        const struct json_value *root = json_doc_root(d), *data;
        if (json_get_string(root, "type", &type) < 0 || json_get_object(root, "data", &data) < 0)
                return fail(err, -EBADMSG, 200, "secret %s/%s has no type or data", ns, name);
        bool legacy = strcmp(type, "kubernetes.io/dockercfg") == 0;
        if (!legacy && strcmp(type, "kubernetes.io/dockerconfigjson") != 0)
                return fail(err, -EMEDIUMTYPE, 200,
                            "secret %s/%s is of type %.64s, not kubernetes.io/dockerconfigjson", ns,
                            name, type);
        if (json_get_string(data, legacy ? ".dockercfg" : ".dockerconfigjson", &b64) < 0)
                return fail(err, -EBADMSG, 200, "secret %s/%s has no %s key", ns, name,
                            legacy ? ".dockercfg" : ".dockerconfigjson");
        _cleanup_buf_ struct buf dec = BUF_INIT(out->max, BUF_SECURE);
        r = legacy ? buf_append_str(&dec, "{\"auths\":") : 0;
        if (r >= 0)
                r = base64_decode(&dec, b64, strlen(b64), true);
        if (r >= 0 && legacy)
                r = buf_append_byte(&dec, '}');
        if (r >= 0)
                r = buf_append(out, dec.data, dec.len);
        if (r < 0)
                return fail(err, r == -E2BIG ? r : -EBADMSG, 200,
                            "secret %s/%s does not hold valid base64", ns, name);
        return 0;
}

int kube_token_request(struct kube_client *k, const char *namespace_, const char *service_account,
                       const char *audience, int64_t expiration_s, char **ret_token,
                       size_t *ret_len, struct kube_error *err) {
        _cleanup_json_doc_ struct json_doc *req = NULL, *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(8192, 0);
        char path[512];
        struct json_value *spec, *auds;
        const char *tok;
        char *t;
        int r;

        if (!k || !kube_name_valid(namespace_) || !kube_name_valid(service_account) || !ret_token ||
            expiration_s < 0 || expiration_s > 86400 * 365)
                return -EINVAL;
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token",
                        namespace_, service_account);
        r = json_doc_new(0, 16384, &req);
        if (r >= 0)
                r = json_add_string(req, json_doc_root(req), "apiVersion",
                                    "authentication.k8s.io/v1");
        if (r >= 0)
                r = json_add_string(req, json_doc_root(req), "kind", "TokenRequest");
        if (r >= 0)
                r = json_add_object(req, json_doc_root(req), "spec", &spec);
        if (r >= 0)
                r = json_add_int64(req, spec, "expirationSeconds",
                                   expiration_s > 0 ? expiration_s : 600);
        if (r >= 0 && audience && audience[0]) {
                r = json_add_array(req, spec, "audiences", &auds);
                if (r >= 0)
                        r = json_add_string(req, auds, NULL, audience);
        }
        if (r >= 0)
                r = json_print(json_doc_root(req), &body);
        if (r < 0)
                return r;
        r = kube_create(k, path, &body, &d, err);
        if (r < 0)
                return r;
        if (json_get_string(json_get(json_doc_root(d), "status"), "token", &tok) < 0 || !tok[0] ||
            strlen(tok) > KUBE_MAX_TOKEN) {
                if (err)
                        *err = (struct kube_error){.code = 201};
                if (err)
                        (void) snprintf(err->message, sizeof(err->message),
                                        "the TokenRequest answer has no token");
                return -EBADMSG;
        }
        size_t n = strlen(tok);
        r = secmem_strndup(tok, n, &t);
        if (r < 0)
                return r;
        *ret_token = t;
        if (ret_len)
                *ret_len = n;
        return 0;
}

/* --- watches ------------------------------------------------------------------------------- */

struct kube_watch_parser {
        kube_event_fn fn;
        void *userdata;
        struct buf line; /* BUF_SECURE, bounded by max_line */
        int error;       /* sticky */
        struct kube_error err;
};

int kube_watch_parser_new(size_t max_line, kube_event_fn fn, void *userdata,
                          struct kube_watch_parser **ret) {
        if (!fn || !ret || max_line > KUBE_MAX_BODY)
                return -EINVAL;
        struct kube_watch_parser *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fn = fn;
        p->userdata = userdata;
        p->line = BUF_INIT(max_line ? max_line : KUBE_WATCH_MAX_EVENT, BUF_SECURE);
        *ret = p;
        return 0;
}

struct kube_watch_parser *kube_watch_parser_free(struct kube_watch_parser *p) {
        if (!p)
                return NULL;
        buf_done(&p->line);
        free(p);
        return NULL;
}

size_t kube_watch_parser_pending(const struct kube_watch_parser *p) {
        return p ? p->line.len : 0;
}

static bool rv_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n >= KUBE_RV_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

/* One complete line (without its '\n'). */
static int watch_line(struct kube_watch_parser *p, const char *s, size_t n) {
        static const char *const types[] = {
                [KUBE_EVENT_ADDED] = "ADDED",
                [KUBE_EVENT_MODIFIED] = "MODIFIED",
                [KUBE_EVENT_DELETED] = "DELETED",
                [KUBE_EVENT_BOOKMARK] = "BOOKMARK",
        };
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_limits lim = {.max_input = p->line.max, .max_depth = 64};
        const struct json_value *obj = NULL;
        const char *type = NULL, *rv = NULL;

        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        if (n == 0)
                return 0;
        if (json_parse(s, n, JSON_SECURE, &lim, &d) < 0 ||
            json_get_string(json_doc_root(d), "type", &type) < 0 ||
            json_get_object(json_doc_root(d), "object", &obj) < 0)
                return fail(&p->err, -EBADMSG, 200, "a watch event that is not {type, object}");
        if (strcmp(type, "ERROR") == 0) {
                /* The object is a Status: decode it as an answer's. */
                _cleanup_buf_ struct buf st = BUF_INIT(64 * 1024, BUF_SECURE);
                if (json_print(obj, &st) < 0)
                        return fail(&p->err, -EBADMSG, 200, "a watch ERROR event over 64 KiB");
                return kube_status_decode(500, st.data, st.len, &p->err);
        }
        for (size_t t = 0; t < ELEMENTSOF(types); t++) {
                if (strcmp(type, types[t]) != 0)
                        continue;
                if (json_get_string(json_get(obj, "metadata"), "resourceVersion", &rv) < 0 ||
                    !rv_valid(rv))
                        return fail(&p->err, -EBADMSG, 200,
                                    "a watch event without a valid metadata.resourceVersion");
                struct kube_event ev = {
                        .type = (enum kube_event_type) t, .object = obj, .resource_version = rv};
                int r = p->fn(p->userdata, &ev);
                return r < 0 ? fail(&p->err, r, 200, "the watch was stopped by its caller") : 0;
        }
        return fail(&p->err, -EBADMSG, 200, "a watch event of unknown type %.32s", type);
}

int kube_watch_parser_feed(struct kube_watch_parser *p, const void *data, size_t len,
                           struct kube_error *err) {
        const char *s = data;
        int r = 0;
        if (!p || (!data && len))
                return -EINVAL;
        while (p->error >= 0 && len > 0) {
                const char *nl = memchr(s, '\n', len);
                size_t take = nl ? (size_t) (nl - s) : len;
                if (p->line.len + take > p->line.max) {
                        p->error = fail(&p->err, -E2BIG, 200, "a watch event over %zu bytes",
                                        p->line.max);
                        break;
                }
                if (!nl) {
                        p->error = buf_append(&p->line, s, take) < 0 ? -ENOMEM : 0;
                        break;
                }
                if (p->line.len == 0)
                        r = watch_line(p, s, take); /* the whole line in this piece */
                else if ((r = buf_append(&p->line, s, take)) >= 0)
                        r = watch_line(p, p->line.data, p->line.len);
                buf_reset(&p->line);
                p->error = r < 0 ? r : 0;
                s += take + 1;
                len -= take + 1;
        }
        if (p->error < 0 && err)
                *err = p->err;
        return p->error;
}

struct watch_stream {
        struct kube_watch_parser *p;
        struct kube_error *err;
};

static int watch_body(void *userdata, const void *data, size_t len) {
        struct watch_stream *w = userdata;
        return kube_watch_parser_feed(w->p, data, len, w->err);
}

int kube_watch(struct kube_client *k, const char *path, const struct kube_watch_options *o,
               struct kube_error *err) {
        _cleanup_(kube_watch_parser_freep) struct kube_watch_parser *p = NULL;
        _cleanup_buf_ struct buf url = BUF_INIT(8192, 0);
        unsigned timeout = o && o->timeout_s ? o->timeout_s : KUBE_WATCH_TIMEOUT_S_DEFAULT;
        const char *rv = o && o->resource_version ? o->resource_version : "";
        int r;

        if (!k || !path || path[0] != '/' || !o || !o->on_event ||
            timeout > KUBE_WATCH_TIMEOUT_S_MAX || (rv[0] && !rv_valid(rv)) ||
            o->max_event > KUBE_MAX_BODY)
                return fail(err, -EINVAL, 0, "invalid watch options");
        const char *q = strchr(path, '?');
        r = buf_printf(&url, "%s%swatch=1&timeoutSeconds=%u%s", path,
                       !q     ? "?"
                       : q[1] ? "&"
                              : "",
                       timeout, o->bookmarks ? "&allowWatchBookmarks=true" : "");
        if (r >= 0 && rv[0])
                r = buf_printf(&url, "&resourceVersion=%s", rv); /* rv_valid: nothing to escape */
        if (r < 0)
                return r;
        if ((r = kube_watch_parser_new(o->max_event, o->on_event, o->userdata, &p)) < 0)
                return r;
        struct kube_error why = {};
        struct watch_stream w = {.p = p, .err = &why};
        struct stream st = {.on_body = watch_body,
                            .userdata = &w,
                            .timeout_ms = (timeout + 30) * 1000u,
                            .cancelled = o->cancelled,
                            .cancelled_userdata = o->userdata,
                            .why = &why};
        r = request_as(k, HTTP_GET, buf_cstr(&url), "application/json", NULL, NULL, NULL, NULL, &st,
                       err);
        if (r < 0)
                return r;
        if (kube_watch_parser_pending(p) > 0)
                return fail(err, -ECONNRESET, 200,
                            "the watch of %.200s ended in the middle of an event", path);
        return 0;
}
