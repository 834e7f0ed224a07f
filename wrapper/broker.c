/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/broker: see broker.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "common/tls/cert.h"
#include "wrapper/broker.h"

#define CSR_CN "cloudtaser-wrapper" /* the broker names the pod in the SAN it signs */

struct broker_client {
        char *addr, *ca_pem, *token_path;
        size_t ca_len;
        unsigned connect_timeout_ms, request_timeout_ms, deadline_ms, max_attempts;
        int64_t (*now_unix)(void *userdata);
        struct http_hooks hooks;
        struct tls_key *key;      /* secmem */
        struct http_client *tls;  /* /v1/session: server verified, no client certificate */
        struct http_client *mtls; /* the session's: its certificate and key */
        struct buf bearer;        /* BUF_SECURE: "Bearer <session token>" */
        int64_t lifetime;
};

static void set_error(struct broker_error *err, int r, long status, const char *path,
                      const char *msg) {
        if (!err)
                return;
        *err = (struct broker_error){.error = r, .status = status};
        (void) snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
        /* Printable ASCII only, whatever the source. */
        size_t o = 0;
        for (const char *p = msg ? msg : ""; *p && o + 1 < sizeof(err->message); p++)
                err->message[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        err->message[o] = '\0';
}

static int64_t now_unix(const struct broker_client *c) {
        return c->now_unix ? c->now_unix(c->hooks.userdata) : (int64_t) time(NULL);
}

bool broker_error_is_transient(int r) {
        /* The vault client's list (connection errors, timeouts, 429, 5xx), and a network that
         * has no route to the broker yet (a pod's network still being set up). */
        return vault_error_is_transient(r) || r == -ENETUNREACH;
}

int broker_decode_error(long status, const char *body, size_t len, const char *api_path,
                        struct broker_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const char *text = NULL;
        int r;

        switch (status) {
        case 400:
                r = -EINVAL;
                break;
        case 401:
                r = -EKEYREJECTED;
                break;
        case 403:
                r = -EACCES;
                break;
        case 404:
                r = -ENOENT;
                break;
        case 413:
                r = -E2BIG;
                break;
        case 429:
                r = -EBUSY;
                break;
        default:
                r = status >= 500 && status <= 599 ? -EIO : -EPROTO;
        }
        /* The broker's {"error": "..."}; anything else (a proxy's page) is not quoted. */
        if (body && len > 0 && len <= 64 * 1024 &&
            json_parse(body, len, 0, &(struct json_limits){.max_input = 64 * 1024}, &d) >= 0)
                (void) json_get_string(json_doc_root(d), "error", &text);
        set_error(err, r, status, api_path, text);
        if (err && !text)
                (void) snprintf(err->message, sizeof(err->message), "status %ld", status);
        return r;
}

int broker_decode_secret(const struct json_value *entry, struct vault_secret **ret) {
        _cleanup_buf_ struct buf wrapped = BUF_INIT(BROKERPROTO_MAX_RESPONSE + 16, BUF_SECURE);
        int r;

        if (!entry || !ret || json_type(entry) != JSON_OBJECT)
                return -EBADMSG;
        /* The entry is the `data` object of a KV v2 read: wrapped as the vault answers it, it
         * goes through the vault client's own decoder, so both sources map alike. */
        r = buf_append_str(&wrapped, "{\"data\":");
        if (r >= 0)
                r = json_print(entry, &wrapped);
        if (r >= 0)
                r = buf_append_byte(&wrapped, '}');
        if (r < 0)
                return r;
        return vault_decode_kv(wrapped.data, wrapped.len, VAULT_KV_V2, ret);
}

static int new_http(const struct broker_client *c, const struct buf *cert, const struct buf *key,
                    struct http_client **ret) {
        struct http_options o = {
                .base_url = c->addr,
                .ca_pem = c->ca_pem,
                .ca_pem_len = c->ca_len,
                .client_cert_pem = cert ? cert->data : NULL,
                .client_cert_pem_len = cert ? cert->len : 0,
                .client_key_pem = key ? key->data : NULL,
                .client_key_pem_len = key ? key->len : 0,
                .connect_timeout_ms = c->connect_timeout_ms,
                .request_timeout_ms = c->request_timeout_ms,
                .deadline_ms = c->deadline_ms,
                .max_attempts = c->max_attempts,
                .max_body = BROKERPROTO_MAX_RESPONSE,
                .user_agent = "cloudtaser-wrapper/" CLOUDTASER_VERSION,
                .hooks = c->hooks,
        };
        return http_client_new(&o, ret);
}

int broker_client_new(const struct broker_options *o, struct broker_client **ret) {
        struct broker_client *c;
        int r;

        if (!o || !ret || !o->addr || !o->ca_pem || !*o->ca_pem || !o->token_path ||
            !*o->token_path)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        buf_init(&c->bearer, BROKERPROTO_MAX_TOKEN + sizeof(BROKERPROTO_AUTH_SCHEME), BUF_SECURE);
        c->addr = strdup(o->addr);
        c->ca_pem = strdup(o->ca_pem);
        c->token_path = strdup(o->token_path);
        if (!c->addr || !c->ca_pem || !c->token_path) {
                broker_client_free(c);
                return -ENOMEM;
        }
        c->ca_len = strlen(c->ca_pem);
        c->connect_timeout_ms = o->connect_timeout_ms;
        c->request_timeout_ms = o->request_timeout_ms;
        c->deadline_ms = o->deadline_ms;
        c->max_attempts = o->max_attempts;
        c->now_unix = o->now_unix;
        c->hooks = o->hooks;
        r = new_http(c, NULL, NULL, &c->tls);
        if (r >= 0)
                r = tls_key_generate(&c->key);
        if (r < 0) {
                broker_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void broker_session_close(struct broker_client *c) {
        if (!c)
                return;
        c->mtls = http_client_free(c->mtls);
        buf_done(&c->bearer);
        c->lifetime = 0;
}

struct broker_client *broker_client_free(struct broker_client *c) {
        if (!c)
                return NULL;
        broker_session_close(c);
        http_client_free(c->tls);
        tls_key_free(c->key);
        free(c->addr);
        free(c->ca_pem);
        free(c->token_path);
        free(c);
        return NULL;
}

int broker_client_set_limits(struct broker_client *c, unsigned request_timeout_ms,
                             unsigned deadline_ms, unsigned max_attempts) {
        if (!c)
                return -EINVAL;
        if (request_timeout_ms)
                c->request_timeout_ms = request_timeout_ms;
        if (deadline_ms)
                c->deadline_ms = deadline_ms;
        if (max_attempts)
                c->max_attempts = max_attempts;
        int r = http_client_set_limits(c->tls, request_timeout_ms, deadline_ms, max_attempts);
        if (r >= 0 && c->mtls)
                r = http_client_set_limits(c->mtls, request_timeout_ms, deadline_ms, max_attempts);
        return r;
}

bool broker_has_session(const struct broker_client *c) {
        return c && c->mtls;
}

int64_t broker_session_lifetime(const struct broker_client *c) {
        return c && c->mtls ? c->lifetime : 0;
}

/* POSTs body to api; 0 with *ret for a 200 answer, else the refusal's -errno. */
static int post(struct broker_client *c, struct http_client *h, const char *api,
                const struct buf *body, bool with_token, struct http_response *ret,
                struct broker_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        struct http_result res = {};
        struct http_header auth = {
                .name = "Authorization", .value = buf_cstr(&c->bearer), .secret = true};
        struct http_request req = {
                .method = HTTP_POST,
                .path = api,
                .body = body,
                .headers = with_token ? &auth : NULL,
                .n_headers = with_token ? 1 : 0,
        };
        int r = http_request(h, &req, &resp, &res);
        if (r < 0) {
                set_error(err, r, res.status, api, res.error_text[0] ? res.error_text : NULL);
                if (err && !res.error_text[0])
                        (void) snprintf(err->message, sizeof(err->message), "%s", strerror(-r));
                return r;
        }
        if (resp.status != 200)
                return broker_decode_error(resp.status, resp.body.data, resp.body.len, api, err);
        *ret = resp;
        resp = (struct http_response){}; /* moved */
        set_error(err, 0, 200, api, NULL);
        return 0;
}

/* The CSR for our key, as a JSON string member of a new secure document's root. */
static int body_with_csr(const struct broker_client *c, const struct buf *jwt, struct buf *out) {
        _cleanup_buf_ struct buf csr = BUF_INIT(BROKERPROTO_MAX_CSR, 0);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int r = tls_csr_create(c->key, CSR_CN, NULL, NULL, &csr);
        if (r < 0)
                return r;
        r = json_doc_new(JSON_SECURE, 2 * BROKERPROTO_MAX_BODY, &d);
        if (r < 0)
                return r;
        if (jwt && (r = json_add_string(d, json_doc_root(d), "jwt", buf_cstr(jwt))) < 0)
                return r;
        r = json_add_string(d, json_doc_root(d), "csr", buf_cstr(&csr));
        if (r < 0)
                return r;
        return json_print(json_doc_root(d), out);
}

/* Takes a session answer: checks the certificate is for our key, then builds the mTLS client
 * and the Authorization value. The previous session stays until all of that succeeded. */
static int install_session(struct broker_client *c, const struct http_response *resp,
                           const char *api, struct broker_error *err) {
        _cleanup_(brokerproto_session_response_done) struct brokerproto_session_response s = {};
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        _cleanup_buf_ struct buf key = BUF_INIT(TLS_MAX_DER, BUF_SECURE);
        _cleanup_buf_ struct buf cert_pem = BUF_INIT(TLS_MAX_PEM, 0);
        _cleanup_buf_ struct buf bearer = BUF_INIT(c->bearer.max, BUF_SECURE);
        struct http_client *h = NULL;
        int r;

        r = brokerproto_session_response_parse(resp->body.data, resp->body.len, &s);
        if (r < 0)
                return set_error(err, r, resp->status, api, "malformed session answer"), r;
        r = tls_cert_decode_pem(s.certificate, strlen(s.certificate), &cert);
        if (r >= 0)
                r = tls_cert_inspect(&cert, &info);
        if (r < 0)
                return set_error(err, -EBADMSG, resp->status, api, "malformed client certificate"),
                       -EBADMSG;
        if (tls_key_matches_cert(c->key, cert.der, cert.len) != 1)
                return set_error(err, -EBADMSG, resp->status, api,
                                 "the client certificate is not for our key"),
                       -EBADMSG;
        if ((r = buf_append_str(&cert_pem, s.certificate)) < 0 ||
            (r = tls_key_export_pem(c->key, &key)) < 0 ||
            (r = buf_append_str(&bearer, BROKERPROTO_AUTH_SCHEME)) < 0 ||
            (r = buf_append_str(&bearer, s.token)) < 0)
                return set_error(err, r, resp->status, api, "cannot keep the session"), r;
        r = new_http(c, &cert_pem, &key, &h);
        if (r < 0)
                return set_error(err, r, resp->status, api, "cannot set up mutual TLS"), r;
        broker_session_close(c);
        c->mtls = h;
        c->bearer = bearer;
        bearer = (struct buf){}; /* moved */
        /* The lifetime as the broker counts it (expires_at on its clock); a clock that
         * disagrees by more than the session falls back to the certificate's span. */
        int64_t life = s.expires_at - now_unix(c), span = info.not_after - info.not_before;
        if (life <= 0 || life > span)
                life = span;
        c->lifetime = MAX(life, (int64_t) 1);
        return 0;
}

int broker_session_open(struct broker_client *c, struct broker_error *err) {
        _cleanup_buf_ struct buf jwt = BUF_INIT(BROKERPROTO_MAX_JWT, BUF_SECURE);
        _cleanup_buf_ struct buf body = BUF_INIT(BROKERPROTO_MAX_BODY, BUF_SECURE);
        _cleanup_http_response_ struct http_response resp = {};
        int r;

        if (!c)
                return -EINVAL;
        /* Read at every new session: the kubelet replaces the projected token before it
         * expires. */
        r = buf_read_file(&jwt, c->token_path);
        buf_rstrip(&jwt);
        if (r >= 0 && jwt.len == 0)
                r = -ENODATA;
        if (r < 0)
                return set_error(err, r, 0, "token file",
                                 r == -ENODATA ? "empty file" : strerror(-r)),
                       r;
        r = body_with_csr(c, &jwt, &body);
        if (r < 0)
                return set_error(err, r, 0, BROKERPROTO_PATH_SESSION, "cannot build the request"),
                       r;
        r = post(c, c->tls, BROKERPROTO_PATH_SESSION, &body, false, &resp, err);
        if (r < 0)
                return r;
        return install_session(c, &resp, BROKERPROTO_PATH_SESSION, err);
}

int broker_session_renew(struct broker_client *c, struct broker_error *err) {
        _cleanup_buf_ struct buf body = BUF_INIT(BROKERPROTO_MAX_BODY, BUF_SECURE);
        _cleanup_http_response_ struct http_response resp = {};
        int r;

        if (!c)
                return -EINVAL;
        if (!c->mtls)
                return broker_session_open(c, err);
        r = body_with_csr(c, NULL, &body);
        if (r < 0)
                return set_error(err, r, 0, BROKERPROTO_PATH_RENEW, "cannot build the request"), r;
        r = post(c, c->mtls, BROKERPROTO_PATH_RENEW, &body, true, &resp, err);
        if (r == -EKEYREJECTED) { /* the session is gone (expired, keys rotated): a new one */
                broker_session_close(c);
                return broker_session_open(c, err);
        }
        if (r < 0)
                return r;
        return install_session(c, &resp, BROKERPROTO_PATH_RENEW, err);
}

static int paths_body(const char *const *paths, size_t n, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *arr;
        int r;
        if (n == 0 || n > BROKERPROTO_MAX_PATHS)
                return -EINVAL;
        r = json_doc_new(0, 2 * BROKERPROTO_MAX_BODY, &d);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "paths", &arr);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = json_add_string(d, arr, NULL, paths[i]);
        if (r >= 0)
                r = json_print(json_doc_root(d), out);
        return r;
}

/* A request under the session: opens one when there is none; a 401 opens a new one and asks
 * once more (the session expired, or the broker's keys were rotated). */
static int session_post(struct broker_client *c, const char *api, const struct buf *body,
                        struct http_response *ret, struct broker_error *err) {
        bool fresh = false;
        int r;
        if (!c->mtls) {
                r = broker_session_open(c, err);
                if (r < 0)
                        return r;
                fresh = true;
        }
        r = post(c, c->mtls, api, body, true, ret, err);
        if (r != -EKEYREJECTED || fresh)
                return r;
        broker_session_close(c);
        r = broker_session_open(c, err);
        if (r < 0)
                return r;
        return post(c, c->mtls, api, body, true, ret, err);
}

static int paths_request(struct broker_client *c, const char *api, const char *const *paths,
                         size_t n, bool versions, struct http_response *resp,
                         struct brokerproto_secrets_response *ret, struct broker_error *err) {
        _cleanup_buf_ struct buf body = BUF_INIT(BROKERPROTO_MAX_BODY, 0);
        int r;
        if (!c || !paths || !ret)
                return -EINVAL;
        r = paths_body(paths, n, &body);
        if (r < 0)
                return set_error(err, r, 0, api, "invalid paths"), r;
        r = session_post(c, api, &body, resp, err);
        if (r < 0)
                return r;
        r = brokerproto_secrets_response_parse(resp->body.data, resp->body.len, versions, ret);
        if (r < 0)
                return set_error(err, r, resp->status, api, "malformed answer"), r;
        return 0;
}

int broker_read(struct broker_client *c, const char *const *paths, size_t n,
                struct vault_secret **ret, struct broker_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_(brokerproto_secrets_response_done) struct brokerproto_secrets_response s = {};
        struct vault_secret *got[BROKERPROTO_MAX_PATHS] = {};
        int r = paths_request(c, BROKERPROTO_PATH_SECRETS, paths, n, false, &resp, &s, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = broker_decode_secret(json_get(s.secrets, paths[i]), &got[i]);
                if (r < 0)
                        set_error(err, r == -ENOENT ? r : -EBADMSG, 200, BROKERPROTO_PATH_SECRETS,
                                  r == -ENOENT ? "secret version has no data (deleted)"
                                               : "a path is missing or malformed in the answer");
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        vault_secret_free(got[i]);
                return r == -ENOENT ? r : -EBADMSG;
        }
        memcpy(ret, got, n * sizeof(*ret));
        return 0;
}

int broker_versions(struct broker_client *c, const char *const *paths, size_t n, int64_t *ret,
                    struct broker_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_(brokerproto_secrets_response_done) struct brokerproto_secrets_response s = {};
        int64_t got[BROKERPROTO_MAX_PATHS];
        int r = paths_request(c, BROKERPROTO_PATH_VERSIONS, paths, n, true, &resp, &s, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (json_int64(json_get(s.secrets, paths[i]), &got[i]) < 0)
                        return set_error(err, -EBADMSG, 200, BROKERPROTO_PATH_VERSIONS,
                                         "a path is missing in the answer"),
                               -EBADMSG;
        memcpy(ret, got, n * sizeof(*ret));
        return 0;
}
