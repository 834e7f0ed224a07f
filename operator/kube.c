/* SPDX-License-Identifier: Apache-2.0 */
/* operator/kube: see kube.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/kube.h"

#define KUBE_MAX_BODY (1024u * 1024u)
#define KUBE_MAX_TOKEN (64u * 1024u)

struct kube_client {
        struct http_client *http;
        char *token_file;
};

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
        if (err && errlen) {
                va_list ap;
                va_start(ap, fmt);
                (void) vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return 0;
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

int kube_options_incluster(struct kube_options *o, char *err, size_t errlen) {
        static char server[300];
        const char *host = getenv("KUBERNETES_SERVICE_HOST"),
                   *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host || !port || !*port) {
                (void) fail(err, errlen,
                            "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                            "are not set");
                return -ENOENT;
        }
        /* net.JoinHostPort: IPv6 literals get brackets. */
        (void) snprintf(server, sizeof(server),
                        strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        *o = (struct kube_options){.server = server,
                                   .ca_file = KUBE_SA_DIR "/ca.crt",
                                   .token_file = KUBE_SA_DIR "/token"};
        return 0;
}

int kube_client_new(const struct kube_options *o, struct kube_client **ret) {
        _cleanup_free_ struct kube_client *k = calloc(1, sizeof(*k));
        int r;
        if (!k)
                return -ENOMEM;
        struct http_options ho = {
                .base_url = o->server,
                .ca_file = o->ca_file,
                .deadline_ms = o->timeout_ms ? o->timeout_ms : 3000,
                .request_timeout_ms = o->timeout_ms ? o->timeout_ms : 3000,
                .connect_timeout_ms = 2000,
                .max_body = KUBE_MAX_BODY,
                .max_attempts = 2,
                .hooks = o->hooks,
        };
        r = http_client_new(&ho, &k->http);
        if (r < 0)
                return r;
        k->token_file = o->token_file ? strdup(o->token_file) : NULL;
        if (o->token_file && !k->token_file) {
                http_client_free(k->http);
                return -ENOMEM;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

struct kube_client *kube_client_free(struct kube_client *k) {
        if (!k)
                return NULL;
        http_client_free(k->http);
        free(k->token_file);
        free(k);
        return NULL;
}

/* GET path; parses a 200 body; maps the Status of other answers to an errno and a message. */
static int get_json(struct kube_client *k, const char *path, struct json_doc **ret, char *err,
                    size_t errlen) {
        _cleanup_buf_ struct buf auth = BUF_INIT(KUBE_MAX_TOKEN + 16, BUF_SECURE);
        _cleanup_buf_ struct buf token = BUF_INIT(KUBE_MAX_TOKEN, BUF_SECURE);
        _cleanup_http_response_ struct http_response resp = {};
        struct http_header h[2];
        size_t nh = 0;
        struct http_result res = {};
        int r;

        h[nh++] = (struct http_header){.name = "Accept", .value = "application/json"};
        if (k->token_file) {
                r = buf_read_file(&token, k->token_file);
                buf_rstrip(&token);
                if (r >= 0 && token.len == 0)
                        r = -ENODATA;
                if (r < 0) {
                        (void) fail(err, errlen, "cannot read the service account token %s",
                                    k->token_file);
                        return r;
                }
                r = buf_printf(&auth, "Bearer %s", buf_cstr(&token));
                if (r < 0)
                        return r;
                h[nh++] = (struct http_header){
                        .name = "Authorization", .value = buf_cstr(&auth), .secret = true};
        }
        struct http_request req = {.method = HTTP_GET, .path = path, .headers = h, .n_headers = nh};
        r = http_request(k->http, &req, &resp, &res);
        if (r < 0) {
                (void) fail(err, errlen, "Kubernetes API unreachable: %s", res.error_text);
                return r;
        }
        if (resp.status == 200)
                return json_parse(resp.body.data, resp.body.len, JSON_SECURE, NULL, ret) < 0
                               ? -EBADMSG
                               : 0;

        _cleanup_json_doc_ struct json_doc *d = NULL;
        const char *msg = NULL;
        if (json_parse(resp.body.data, resp.body.len, 0, NULL, &d) >= 0)
                (void) json_get_string(json_doc_root(d), "message", &msg);
        (void) fail(err, errlen, "Kubernetes API answered %ld: %.200s", resp.status,
                    msg ? msg : "(no message)");
        switch (resp.status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        default:
                return -EIO;
        }
}

int kube_get_pull_secret(struct kube_client *k, const char *ns, const char *name, struct buf *out,
                         char *err, size_t errlen) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char path[600];
        const char *type, *b64;
        int r;

        if (!kube_name_valid(ns) || !kube_name_valid(name)) {
                (void) fail(err, errlen, "invalid namespace or secret name");
                return -EINVAL;
        }
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
        r = get_json(k, path, &d, err, errlen);
        if (r < 0)
                return r;
        const struct json_value *root = json_doc_root(d), *data;
        if (json_get_string(root, "type", &type) < 0 || json_get_object(root, "data", &data) < 0) {
                (void) fail(err, errlen, "secret %s/%s has no type or data", ns, name);
                return -EBADMSG;
        }
        bool legacy = strcmp(type, "kubernetes.io/dockercfg") == 0;
        if (!legacy && strcmp(type, "kubernetes.io/dockerconfigjson") != 0) {
                (void) fail(err, errlen,
                            "secret %s/%s is of type %.64s, not kubernetes.io/dockerconfigjson", ns,
                            name, type);
                return -EMEDIUMTYPE;
        }
        if (json_get_string(data, legacy ? ".dockercfg" : ".dockerconfigjson", &b64) < 0) {
                (void) fail(err, errlen, "secret %s/%s has no %s key", ns, name,
                            legacy ? ".dockercfg" : ".dockerconfigjson");
                return -EBADMSG;
        }
        size_t before = out->len;
        if (legacy) {
                r = buf_append_str(out, "{\"auths\":");
                if (r < 0)
                        return r;
        }
        r = base64_decode(out, b64, strlen(b64), true);
        if (r >= 0 && legacy)
                r = buf_append_byte(out, '}');
        if (r < 0) {
                out->len = before;
                if (out->data)
                        out->data[before] = '\0';
                (void) fail(err, errlen, "secret %s/%s does not hold valid base64", ns, name);
                return r == -E2BIG ? r : -EBADMSG;
        }
        return 0;
}

int kube_get_sa_pull_secrets(struct kube_client *k, const char *ns, const char *sa,
                             char ***ret_names, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char path[600];
        const struct json_value *list;
        int r;

        if (!kube_name_valid(ns) || !kube_name_valid(sa)) {
                (void) fail(err, errlen, "invalid namespace or service account name");
                return -EINVAL;
        }
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, sa);
        r = get_json(k, path, &d, err, errlen);
        if (r < 0)
                return r;
        size_t n = 0;
        char **names = calloc(65, sizeof(char *));
        if (!names)
                return -ENOMEM;
        if (json_get_array(json_doc_root(d), "imagePullSecrets", &list) >= 0)
                JSON_FOREACH(e, list) {
                        const char *name;
                        if (n >= 64 || json_get_string(e, "name", &name) < 0 ||
                            !kube_name_valid(name))
                                continue;
                        if (!(names[n++] = strdup(name))) {
                                for (size_t i = 0; i < n; i++)
                                        free(names[i]);
                                free(names);
                                return -ENOMEM;
                        }
                }
        *ret_names = names;
        *ret_n = n;
        return 0;
}
