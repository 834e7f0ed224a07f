/* SPDX-License-Identifier: Apache-2.0 */
/* vault: see vault.h for the contract and docs/protocol-vault.md for the wire protocol. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault.h"

#define CAS_MISMATCH "check-and-set parameter did not match the current version"

struct vault_client {
        struct http_client *http;
        char *token; /* secmem, NULL when none */
        /* When the token was obtained by this client's own login (http clock), 0 for a token
         * set from outside: only a fresh login's token gets the short 403 retry. */
        uint64_t login_usec;
        bool unix_socket;
        /* The vault's own addresses as origins ("https://host:port"): [0] is addr, then
         * peer_addrs. A 307 is followed, with the token, only to one of these. */
        char origins[1 + VAULT_MAX_PEER_ADDRS][HTTP_ORIGIN_MAX];
        size_t n_origins;
};

/* Request flags. */
enum {
        REQ_TOKEN = 1 << 0,        /* authenticated: send X-Vault-Token */
        REQ_NO_FRESH_403 = 1 << 1, /* a 403 stands even just after a login (revoke-self) */
};

static const struct json_limits response_limits = {
        .max_input = VAULT_RESPONSE_MAX,
        .max_depth = 64,
        .max_nodes = 200000,
};

/* --- small helpers ------------------------------------------------------------------------ */

/* Copies s into dst (size n), keeping printable ASCII only, truncating. */
static void copy_printable(char *dst, size_t n, const char *s) {
        size_t o = 0;
        for (; s && *s && o + 1 < n; s++) {
                unsigned char ch = (unsigned char) *s;
                dst[o++] = ch >= 0x20 && ch < 0x7f      ? (char) ch
                           : (ch == '\n' || ch == '\t') ? ' '
                                                        : '?';
        }
        dst[o] = '\0';
}

static void copy_json_string(char *dst, size_t n, const struct json_value *obj, const char *key) {
        const char *s = NULL;
        if (json_get_string(obj, key, &s) < 0)
                s = "";
        copy_printable(dst, n, s);
}

/* Joins the string elements of array `a` with ", " into dst; returns the element count. */
static size_t join_strings(char *dst, size_t n, const struct json_value *a) {
        size_t count = 0, o = 0;
        dst[0] = '\0';
        JSON_FOREACH(e, a) {
                const char *s;
                if (json_string(e, &s) < 0)
                        continue;
                count++;
                int w = snprintf(dst + o, n - o, "%s%s", o ? "," : "", s);
                if (w < 0 || (size_t) w >= n - o) {
                        dst[o] = '\0';
                        break;
                }
                o += (size_t) w;
        }
        copy_printable(dst, n, dst);
        return count;
}

static void set_error(struct vault_error *err, int r, long status, const char *path,
                      const char *message) {
        if (!err)
                return;
        err->error = r;
        err->status = status;
        if (path)
                copy_printable(err->path, sizeof(err->path), path);
        copy_printable(err->message, sizeof(err->message), message ? message : "");
}

static bool path_char_ok(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("-_./@+=:,~", ch));
}

bool vault_path_valid(const char *p) {
        size_t n = p ? strnlen(p, VAULT_PATH_MAX) : 0;
        if (n == 0 || n >= VAULT_PATH_MAX || p[0] == '/')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!path_char_ok(p[i]))
                        return false;
        for (const char *seg = p; seg;) {
                const char *slash = strchr(seg, '/');
                size_t len = slash ? (size_t) (slash - seg) : strlen(seg);
                if ((len == 0 && slash) || (len == 1 && seg[0] == '.') ||
                    (len == 2 && seg[0] == '.' && seg[1] == '.'))
                        return false;
                seg = slash ? slash + 1 : NULL;
        }
        return true;
}

int vault_client_new(const struct vault_options *o, struct vault_client **ret) {
        _cleanup_(vault_client_freep) struct vault_client *c = NULL;
        struct http_header hdrs[2];
        size_t nh = 0;
        int r;

        if (!o || !o->addr || !ret)
                return -EINVAL;
        hdrs[nh++] = (struct http_header){.name = "X-Vault-Request", .value = "true"};
        if (o->namespace_ && o->namespace_[0]) {
                if (strlen(o->namespace_) >= VAULT_PATH_MAX)
                        return -EINVAL;
                for (const char *s = o->namespace_; *s; s++)
                        if (!path_char_ok(*s))
                                return -EINVAL;
                hdrs[nh++] =
                        (struct http_header){.name = "X-Vault-Namespace", .value = o->namespace_};
        }

        struct http_options ho = {
                .base_url = o->addr,
                .allow_http = o->allow_http,
                .ca_file = o->ca_file,
                .ca_pem = o->ca_pem,
                .ca_pem_len = o->ca_pem_len,
                .insecure_skip_verify = o->insecure_skip_verify,
                .client_cert_pem = o->client_cert_pem,
                .client_cert_pem_len = o->client_cert_pem_len,
                .client_key_pem = o->client_key_pem,
                .client_key_pem_len = o->client_key_pem_len,
                .unix_socket = o->unix_socket,
                .connect_timeout_ms = o->connect_timeout_ms,
                .request_timeout_ms = o->request_timeout_ms,
                .deadline_ms = o->deadline_ms,
                .max_body = VAULT_RESPONSE_MAX,
                .max_attempts = o->max_attempts,
                .backoff_base_ms = o->backoff_base_ms,
                .backoff_max_ms = o->backoff_max_ms,
                .headers = hdrs,
                .n_headers = nh,
                .user_agent = o->user_agent ? o->user_agent : "cloudtaser/" CLOUDTASER_VERSION,
                .hooks = o->hooks,
        };

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = http_client_new(&ho, &c->http);
        if (r < 0)
                return r;
        c->unix_socket = o->unix_socket != NULL;
        r = http_url_origin(o->addr, c->origins[0], sizeof(c->origins[0]));
        if (r < 0)
                return -EINVAL;
        c->n_origins = 1;
        for (const char *a = o->peer_addrs; a && *a;) {
                size_t n = strcspn(a, ", \t\n");
                char one[HTTP_ORIGIN_MAX * 2];
                if (n > 0) {
                        if (c->n_origins >= ELEMENTSOF(c->origins) || n >= sizeof(one))
                                return -EINVAL;
                        memcpy(one, a, n);
                        one[n] = '\0';
                        r = http_url_origin(one, c->origins[c->n_origins], HTTP_ORIGIN_MAX);
                        if (r < 0)
                                return -EINVAL;
                        c->n_origins++;
                }
                a += n;
                a += strspn(a, ", \t\n");
        }
        *ret = TAKE_PTR(c);
        return 0;
}

struct vault_client *vault_client_free(struct vault_client *c) {
        if (!c)
                return NULL;
        http_client_free(c->http);
        secmem_free(c->token);
        free(c);
        return NULL;
}

int vault_client_set_limits(struct vault_client *c, unsigned request_timeout_ms,
                            unsigned deadline_ms, unsigned max_attempts) {
        return c ? http_client_set_limits(c->http, request_timeout_ms, deadline_ms, max_attempts)
                 : -EINVAL;
}

int vault_set_token(struct vault_client *c, const char *token, size_t len) {
        char *t;
        int r;

        if (!c || !token || len == 0 || len > VAULT_TOKEN_MAX)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) token[i] <= 0x20 || (unsigned char) token[i] >= 0x7f)
                        return -EINVAL;
        r = secmem_alloc(len + 1, (void **) &t);
        if (r < 0)
                return r;
        memcpy(t, token, len);
        t[len] = '\0';
        secmem_free(c->token);
        c->token = t;
        c->login_usec = 0; /* a token from outside: no fresh-login grace */
        return 0;
}

void vault_clear_token(struct vault_client *c) {
        if (!c)
                return;
        secmem_free(c->token);
        c->token = NULL;
        c->login_usec = 0;
}

bool vault_has_token(const struct vault_client *c) {
        return c && c->token;
}

/* --- errors ------------------------------------------------------------------------------- */

static int status_to_errno(long status, const char *message) {
        switch (status) {
        case 400:
                return strstr(message, CAS_MISMATCH) ? -ESTALE : -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 405:
                return -EOPNOTSUPP;
        case 412: /* "required index state not present": a standby not caught up yet */
        case 503:
                return -EAGAIN;
        case 413:
                return -E2BIG;
        case 429:
                return -EBUSY;
        default:
                return status >= 500 ? -EIO : status >= 300 && status <= 399 ? -EREMOTE : -EPROTO;
        }
}

void vault_decode_error(long status, const char *body, size_t len, const char *path,
                        struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char msg[VAULT_ERROR_TEXT_MAX] = "";
        size_t o = 0;

        if (!err)
                return;
        if (body && len > 0 && json_parse(body, len, JSON_SECURE, &response_limits, &d) >= 0) {
                const struct json_value *root = json_doc_root(d), *errors;
                if (json_get_array(root, "errors", &errors) >= 0)
                        JSON_FOREACH(e, errors) {
                                const char *s;
                                if (json_string(e, &s) < 0)
                                        continue;
                                int w = snprintf(msg + o, sizeof(msg) - o, "%s%s", o ? "; " : "",
                                                 s);
                                if (w < 0 || (size_t) w >= sizeof(msg) - o) {
                                        o = strlen(msg);
                                        break;
                                }
                                o += (size_t) w;
                        }
                /* A deleted or destroyed KV v2 version: 404 whose body still carries metadata. */
                const struct json_value *md = json_get_path(root, "data.metadata");
                const char *dt = NULL;
                bool destroyed = false;
                int64_t version = 0;
                (void) json_get_int64(md, "version", &version);
                if (status == 404 && json_get_bool(md, "destroyed", &destroyed) >= 0 && destroyed)
                        (void) snprintf(msg, sizeof(msg), "version %" PRId64 " was destroyed",
                                        version);
                else if (status == 404 && json_get_string(md, "deletion_time", &dt) >= 0 && dt[0])
                        (void) snprintf(msg, sizeof(msg),
                                        "version %" PRId64 " was deleted at %.40s", version, dt);
        } else if (len > 0)
                (void) snprintf(msg, sizeof(msg), "unexpected non-JSON error body (%zu bytes)",
                                len);
        if (!msg[0] && status == 404)
                (void) snprintf(msg, sizeof(msg), "not found");
        set_error(err, status_to_errno(status, msg), status, path, msg);
}

bool vault_error_is_transient(int r) {
        switch (r) {
        case -ECONNREFUSED:
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
        case -ECONNRESET:
        case -EAGAIN:
        case -EBUSY:
        case -EIO:
                return true;
        default:
                return false;
        }
}

const char *vault_strerror(int r) {
        switch (r) {
        case 0:
                return "success";
        case -EACCES:
                return "permission denied";
        case -ENOENT:
                return "not found";
        case -EINVAL:
                return "invalid request";
        case -ESTALE:
                return "check-and-set mismatch";
        case -EAGAIN:
                return "vault sealed or unavailable";
        case -EREMOTE:
                return "redirect not followed";
        case -EBUSY:
                return "rate limited";
        case -EIO:
                return "vault server error";
        case -EBADMSG:
                return "malformed vault response";
        case -EPROTO:
                return "TLS or protocol error";
        case -ECONNREFUSED:
                return "connection refused";
        case -EHOSTUNREACH:
                return "host unreachable or unknown";
        case -ETIMEDOUT:
                return "timed out";
        case -ECONNRESET:
                return "connection reset";
        case -E2BIG:
                return "too large";
        case -EOPNOTSUPP:
                return "not supported";
        case -ENOMEM:
                return "out of memory";
        case -ENOKEY:
                return "no vault token";
        case -EMEDIUMTYPE:
                return "not a key/value mount";
        default:
                return "error";
        }
}

/* --- requests ----------------------------------------------------------------------------- */

static bool is_own_origin(const struct vault_client *c, const char *origin) {
        for (size_t i = 0; i < c->n_origins; i++)
                if (strcmp(c->origins[i], origin) == 0)
                        return true;
        return false;
}

/* The URL a 3xx answer leads to, when it may be followed: 307/308 only (method and body are
 * kept), an absolute Location (or a path, on the same origin) with the scheme of addr, on one of
 * the vault's own addresses, not through a unix socket. Else -EREMOTE with the reason in err. */
static int redirect_target(const struct vault_client *c, const struct http_response *resp,
                           char *ret, size_t size, struct vault_error *err) {
        char origin[HTTP_ORIGIN_MAX], why[VAULT_ERROR_TEXT_MAX];
        const char *loc = buf_cstr(&resp->location), *reason = NULL;
        size_t sl = strcspn(c->origins[0], ":");

        if (!loc[0]) {
                set_error(err, -EREMOTE, resp->status, NULL, "redirect without a Location");
                return -EREMOTE;
        }
        if (resp->location_overflow) {
                set_error(err, -EREMOTE, resp->status, NULL, "redirect Location too long");
                return -EREMOTE;
        }
        if (loc[0] == '/' && loc[1] != '/') {
                (void) snprintf(origin, sizeof(origin), "%s", c->origins[0]);
                int w = snprintf(ret, size, "%s%s", origin, loc);
                if (w < 0 || (size_t) w >= size) {
                        set_error(err, -EREMOTE, resp->status, NULL, "redirect Location too long");
                        return -EREMOTE;
                }
        } else if (http_url_origin(loc, origin, sizeof(origin)) < 0) {
                set_error(err, -EREMOTE, resp->status, NULL,
                          "redirect to a Location that is not an http(s) URL");
                return -EREMOTE;
        } else
                (void) snprintf(ret, size, "%s", loc);

        if (resp->status != 307 && resp->status != 308)
                reason = "only 307 and 308 are followed";
        else if (strncmp(origin, c->origins[0], sl + 3) != 0)
                reason = "it would change the scheme";
        else if (!is_own_origin(c, origin))
                reason = c->n_origins > 1 ? "not VAULT_ADDR nor one of the peer addresses"
                                          : "not the address in VAULT_ADDR";
        else if (c->unix_socket)
                reason = "the client talks through a unix socket";
        if (reason) {
                (void) snprintf(why, sizeof(why), "redirect to %.*s not followed: %s",
                                (int) (sizeof(why) / 2), origin, reason);
                set_error(err, -EREMOTE, resp->status, NULL, why);
                return -EREMOTE;
        }
        return 0;
}

/* One try of a request: sends it, and follows one redirect. 0 with a response of any status
 * other than a redirect in *resp, or -errno with err filled. */
static int perform(struct vault_client *c, const struct http_request *req,
                   struct http_response *resp, unsigned *attempts, struct vault_error *err) {
        struct http_result res = {};
        char target[HTTP_MAX_LOCATION + HTTP_ORIGIN_MAX];
        char origin[HTTP_ORIGIN_MAX], msg[VAULT_ERROR_TEXT_MAX];
        int r;

        r = http_request(c->http, req, resp, &res);
        *attempts += res.attempts;
        if (r < 0) {
                set_error(err, r, res.status, NULL, res.error_text);
                return r;
        }
        if (resp->status < 300 || resp->status > 399)
                return 0;
        r = redirect_target(c, resp, target, sizeof(target), err);
        http_response_done(resp);
        if (r < 0)
                return r;

        struct http_request again = *req;
        again.url = target;
        if (http_url_origin(target, origin, sizeof(origin)) < 0)
                (void) snprintf(origin, sizeof(origin), "%s", c->origins[0]);
        res = (struct http_result){};
        r = http_request(c->http, &again, resp, &res);
        *attempts += res.attempts;
        if (r < 0) {
                (void) snprintf(msg, sizeof(msg), "after a redirect to %.*s: %.*s",
                                (int) (sizeof(msg) / 2), origin, (int) (sizeof(msg) / 2 - 24),
                                r == -EINVAL ? "the Location holds characters not allowed"
                                             : res.error_text);
                r = r == -EINVAL ? -EREMOTE : r;
                set_error(err, r, res.status, NULL, msg);
                return r;
        }
        if (resp->status >= 300 && resp->status <= 399) {
                (void) snprintf(msg, sizeof(msg),
                                "%.*s answered %ld again: only one redirect is followed",
                                (int) (sizeof(msg) / 2), origin, resp->status);
                set_error(err, -EREMOTE, resp->status, NULL, msg);
                http_response_done(resp);
                return -EREMOTE;
        }
        return 0;
}

/* Whether a 403 may be the fresh token not having reached this node yet. */
static bool fresh_login(const struct vault_client *c, int flags) {
        if (!(flags & REQ_TOKEN) || (flags & REQ_NO_FRESH_403) || c->login_usec == 0)
                return false;
        uint64_t now = http_client_now_usec(c->http);
        return now < c->login_usec + (uint64_t) VAULT_FRESH_LOGIN_MS * 1000u;
}

/* Performs METHOD /v1/<logical> and returns 0 with the 2xx response in *resp, else fills err.
 * Retries, within one deadline, what a Vault cluster answers while it catches up: 412 (a
 * performance standby without the index state) and a 403 just after a login. */
static int request_with(struct vault_client *c, enum http_method method, const char *logical,
                        const char *query, const struct buf *body, int flags,
                        const struct http_header *extra, struct http_response *resp,
                        struct vault_error *err);
static int request(struct vault_client *c, enum http_method method, const char *logical,
                   const char *query, const struct buf *body, int flags, struct http_response *resp,
                   struct vault_error *err) {
        return request_with(c, method, logical, query, body, flags, NULL, resp, err);
}

/* request() with one more header (extra, optional): the wrapping token of an unwrap (sent
 * instead of the client's, flags without REQ_TOKEN), or X-Vault-Wrap-TTL. */
static int request_with(struct vault_client *c, enum http_method method, const char *logical,
                        const char *query, const struct buf *body, int flags,
                        const struct http_header *extra, struct http_response *resp,
                        struct vault_error *err) {
        _cleanup_buf_ struct buf url = BUF_INIT(VAULT_PATH_MAX * 3 + 8, 0);
        struct http_header h[2];
        size_t nh = 0;
        unsigned attempts = 0, n412 = 0, n403 = 0;
        int r;

        if (err) {
                *err = (struct vault_error){};
                copy_printable(err->path, sizeof(err->path), logical);
        }
        if (!vault_path_valid(logical)) {
                set_error(err, -EINVAL, 0, NULL, "invalid vault path");
                return -EINVAL;
        }
        r = buf_append_str(&url, "/v1/");
        if (r >= 0)
                r = http_append_escaped(&url, logical, true);
        if (r < 0) {
                set_error(err, r, 0, NULL, "invalid vault path");
                return r;
        }
        if (flags & REQ_TOKEN) {
                if (!c->token) {
                        set_error(err, -ENOKEY, 0, NULL, "no vault token");
                        return -ENOKEY;
                }
                h[nh++] = (struct http_header){
                        .name = "X-Vault-Token", .value = c->token, .secret = true};
        }
        if (extra)
                h[nh++] = *extra;
        struct http_request req = {
                .method = method,
                .path = buf_cstr(&url),
                .query = query,
                .body = body,
                .headers = h,
                .n_headers = nh,
                .deadline_usec = http_client_deadline_usec(c->http),
        };
        for (;;) {
                r = perform(c, &req, resp, &attempts, err);
                if (err)
                        err->attempts = attempts;
                if (r < 0)
                        return r;
                if (resp->status >= 200 && resp->status < 300)
                        return 0;
                unsigned retry = UINT_MAX;
                if (resp->status == 412 && n412 < VAULT_RETRY_412_MAX)
                        retry = n412++;
                else if (resp->status == 403 && n403 < VAULT_RETRY_403_MAX && fresh_login(c, flags))
                        retry = n403++;
                if (retry == UINT_MAX ||
                    http_client_backoff(c->http, retry, (uint64_t) VAULT_RETRY_MIN_MS * 1000u,
                                        req.deadline_usec) < 0)
                        break;
                http_response_done(resp);
        }
        if (err) {
                vault_decode_error(resp->status, resp->body.data, resp->body.len, NULL, err);
                r = err->error;
        } else
                r = status_to_errno(resp->status, "");
        http_response_done(resp);
        return r;
}

static int parse_body(const struct http_response *resp, struct json_doc **ret) {
        if (resp->body.len == 0)
                return -EBADMSG;
        return json_parse(resp->body.data, resp->body.len, JSON_SECURE, &response_limits, ret);
}

/* --- auth --------------------------------------------------------------------------------- */

int vault_decode_auth(const char *body, size_t len, struct vault_auth *ret, char **ret_token) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *auth, *pol;
        const char *token;
        struct vault_auth a = {};
        int r;

        r = json_parse(body, len, JSON_SECURE, &response_limits, &d);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (json_get_object(json_doc_root(d), "auth", &auth) < 0)
                return -EBADMSG;
        r = json_get_string(auth, "client_token", &token);
        if (r < 0 || !token[0] || strlen(token) > VAULT_TOKEN_MAX)
                return -EBADMSG;
        for (const char *s = token; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f)
                        return -EBADMSG;
        r = json_get_int64(auth, "lease_duration", &a.lease_duration);
        if ((r < 0 && r != -ENOENT) || a.lease_duration < 0)
                return -EBADMSG;
        r = json_get_bool(auth, "renewable", &a.renewable);
        if (r < 0 && r != -ENOENT)
                return -EBADMSG;
        copy_json_string(a.accessor, sizeof(a.accessor), auth, "accessor");
        copy_json_string(a.entity_id, sizeof(a.entity_id), auth, "entity_id");
        if (json_get_array(auth, "policies", &pol) >= 0 ||
            json_get_array(auth, "token_policies", &pol) >= 0)
                a.n_policies = join_strings(a.policies, sizeof(a.policies), pol);

        if (ret_token) {
                r = secmem_strndup(token, VAULT_TOKEN_MAX, ret_token);
                if (r < 0)
                        return r;
        }
        if (ret)
                *ret = a;
        return 0;
}

/* Adopts the token of a login/renewal answer. */
static int take_auth(struct vault_client *c, const struct http_response *resp,
                     struct vault_auth *ret_auth, struct vault_error *err) {
        char *token = NULL;
        struct vault_auth a;
        int r = vault_decode_auth(resp->body.data, resp->body.len, &a, &token);
        if (r < 0) {
                set_error(err, r, resp->status, NULL, "malformed auth response");
                return r;
        }
        secmem_free(c->token);
        c->token = token;
        if (ret_auth)
                *ret_auth = a;
        return 0;
}

int vault_login_kubernetes(struct vault_client *c, const char *mount, const char *role,
                           const char *jwt, size_t jwt_len, struct vault_auth *ret_auth,
                           struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_JWT_MAX + 4096, BUF_SECURE);
        _cleanup_http_response_ struct http_response resp = {};
        char path[VAULT_PATH_MAX];
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !mount || !role || !role[0] || !jwt || jwt_len == 0) {
                set_error(err, -EINVAL, 0, mount, "missing mount, role or token");
                return -EINVAL;
        }
        if (jwt_len > VAULT_JWT_MAX) {
                set_error(err, -E2BIG, 0, mount, "service account token too large");
                return -E2BIG;
        }
        while (mount[0] == '/')
                mount++;
        size_t ml = strlen(mount);
        while (ml > 0 && mount[ml - 1] == '/')
                ml--;
        bool has_prefix = ml >= 5 && strncmp(mount, "auth/", 5) == 0;
        int w = snprintf(path, sizeof(path), "%s%.*s/login", has_prefix ? "" : "auth/", (int) ml,
                         mount);
        if (w < 0 || (size_t) w >= sizeof(path) || ml == 0 || (has_prefix && ml == 5)) {
                set_error(err, -EINVAL, 0, mount, "invalid auth mount path");
                return -EINVAL;
        }

        r = json_doc_new(JSON_SECURE, VAULT_JWT_MAX * 2 + 8192, &d);
        if (r >= 0)
                r = json_add_string(d, json_doc_root(d), "role", role);
        if (r >= 0)
                r = json_add_stringn(d, json_doc_root(d), "jwt", jwt, jwt_len);
        if (r >= 0)
                r = json_print(json_doc_root(d), &body);
        if (r < 0) {
                set_error(err, r, 0, path, "cannot build the login request");
                return r;
        }
        d = json_doc_free(d);

        r = request(c, HTTP_POST, path, NULL, &body, 0, &resp, err);
        if (r < 0)
                return r;
        r = take_auth(c, &resp, ret_auth, err);
        if (r >= 0) {
                uint64_t now = http_client_now_usec(c->http);
                c->login_usec = now > 0 ? now : 1; /* 0 means "not from a login" */
        }
        return r;
}

int vault_token_lookup_self(struct vault_client *c, struct vault_token_info *ret,
                            struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *data, *pol;
        struct vault_token_info t = {};
        int r;

        r = request(c, HTTP_GET, "auth/token/lookup-self", NULL, NULL, REQ_TOKEN, &resp, err);
        if (r < 0)
                return r;
        r = parse_body(&resp, &d);
        if (r >= 0)
                r = json_get_object(json_doc_root(d), "data", &data) < 0 ? -EBADMSG : 0;
        if (r >= 0) {
                int q = json_get_int64(data, "ttl", &t.ttl);
                if ((q < 0 && q != -ENOENT) || t.ttl < 0)
                        r = -EBADMSG;
        }
        if (r < 0) {
                set_error(err, r == -ENOMEM ? r : -EBADMSG, resp.status, NULL,
                          "malformed lookup-self response");
                return r == -ENOMEM ? r : -EBADMSG;
        }
        (void) json_get_int64(data, "creation_ttl", &t.creation_ttl);
        (void) json_get_int64(data, "explicit_max_ttl", &t.explicit_max_ttl);
        (void) json_get_bool(data, "renewable", &t.renewable);
        copy_json_string(t.accessor, sizeof(t.accessor), data, "accessor");
        copy_json_string(t.display_name, sizeof(t.display_name), data, "display_name");
        copy_json_string(t.path, sizeof(t.path), data, "path");
        copy_json_string(t.type, sizeof(t.type), data, "type");
        if (json_get_array(data, "policies", &pol) >= 0)
                t.n_policies = join_strings(t.policies, sizeof(t.policies), pol);
        *ret = t;
        return 0;
}

int vault_token_renew_self(struct vault_client *c, int64_t increment_s, struct vault_auth *ret,
                           struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_buf_ struct buf body = BUF_INIT(128, 0);
        int r;

        if (increment_s < 0)
                return -EINVAL;
        r = increment_s > 0 ? buf_printf(&body, "{\"increment\":%" PRId64 "}", increment_s)
                            : buf_append_str(&body, "{}");
        if (r < 0)
                return r;
        r = request(c, HTTP_POST, "auth/token/renew-self", NULL, &body, REQ_TOKEN, &resp, err);
        if (r < 0)
                return r;
        return take_auth(c, &resp, ret, err);
}

int vault_token_revoke_self(struct vault_client *c, struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        int r = request(c, HTTP_POST, "auth/token/revoke-self", NULL, NULL,
                        REQ_TOKEN | REQ_NO_FRESH_403, &resp, err);
        if (r == -EACCES) {
                /* Already expired or revoked: the goal is reached. */
                r = 0;
                if (err)
                        *err = (struct vault_error){};
        }
        if (r >= 0)
                vault_clear_token(c);
        return r;
}

/* --- response wrapping and child tokens (the operator's unsealer, the sealed wrapper) ------ */

static bool token_chars_ok(const char *s, size_t n) {
        if (n == 0 || n > VAULT_TOKEN_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

int vault_decode_wrap_info(const char *body, size_t len, char **ret_token, char *ret_accessor,
                           size_t accessor_size) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *wi;
        const char *token, *acc = "";
        int r;

        r = json_parse(body, len, JSON_SECURE, &response_limits, &d);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (json_get_object(json_doc_root(d), "wrap_info", &wi) < 0 ||
            json_get_string(wi, "token", &token) < 0 || !token_chars_ok(token, strlen(token)))
                return -EBADMSG;
        (void) json_get_string(wi, "wrapped_accessor", &acc);
        if (ret_accessor) {
                if (!acc[0] || strlen(acc) >= accessor_size)
                        return -EBADMSG;
                copy_printable(ret_accessor, accessor_size, acc);
        }
        return ret_token ? secmem_strndup(token, VAULT_TOKEN_MAX, ret_token) : 0;
}

/* The body of auth/token/create/<role> for t, and its path. */
static int child_request(const char *role, const struct vault_child_token *t, struct buf *body,
                         char *path, size_t path_size, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *pols, *meta;
        int r;

        if (!role || !t || !t->policy || t->ttl_s < 0 || !role[0] || strchr(role, '/') ||
            !vault_path_valid(role)) {
                set_error(err, -EINVAL, 0, "auth/token/create", "invalid arguments");
                return -EINVAL;
        }
        (void) snprintf(path, path_size, "auth/token/create/%s", role);
        r = json_doc_new(0, 32768, &d);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "policies", &pols);
        if (r >= 0)
                r = json_add_string(d, pols, NULL, t->policy);
        if (r >= 0 && t->ttl_s > 0)
                r = json_add_int64(d, json_doc_root(d), "ttl", t->ttl_s);
        if (r >= 0 && t->display_name)
                r = json_add_string(d, json_doc_root(d), "display_name", t->display_name);
        if (r >= 0 && t->n_meta > 0) {
                r = json_add_object(d, json_doc_root(d), "meta", &meta);
                for (size_t i = 0; r >= 0 && i < t->n_meta; i++)
                        r = json_add_string(d, meta, t->meta[i][0], t->meta[i][1]);
        }
        if (r >= 0)
                r = json_print(json_doc_root(d), body);
        if (r < 0)
                set_error(err, r, 0, path, "cannot build the request");
        return r;
}

int vault_token_create_wrapped(struct vault_client *c, const char *role,
                               const struct vault_child_token *t, unsigned wrap_ttl_s,
                               char **ret_wrapping_token, char *ret_accessor, size_t accessor_size,
                               struct vault_error *err) {
        _cleanup_buf_ struct buf body = BUF_INIT(16384, 0);
        _cleanup_http_response_ struct http_response resp = {};
        char path[VAULT_PATH_MAX], wrap[24];
        char *token = NULL;
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !ret_wrapping_token || !ret_accessor || wrap_ttl_s == 0) {
                set_error(err, -EINVAL, 0, "auth/token/create", "invalid arguments");
                return -EINVAL;
        }
        r = child_request(role, t, &body, path, sizeof(path), err);
        if (r < 0)
                return r;
        (void) snprintf(wrap, sizeof(wrap), "%us", wrap_ttl_s);
        struct http_header h = {.name = "X-Vault-Wrap-TTL", .value = wrap};
        r = request_with(c, HTTP_POST, path, NULL, &body, REQ_TOKEN, &h, &resp, err);
        if (r < 0)
                return r;
        char acc[VAULT_ACCESSOR_MAX];
        r = vault_decode_wrap_info(resp.body.data, resp.body.len, &token, acc, sizeof(acc));
        if (r < 0) {
                set_error(err, r, resp.status, NULL, "the answer is not a wrapped token");
                return r;
        }
        if (strlen(acc) >= accessor_size) {
                secmem_free(token);
                set_error(err, -E2BIG, resp.status, NULL, "accessor too long");
                return -E2BIG;
        }
        memcpy(ret_accessor, acc, strlen(acc) + 1);
        *ret_wrapping_token = token;
        return 0;
}

int vault_token_create(struct vault_client *c, const char *role, const struct vault_child_token *t,
                       char **ret_token, struct vault_auth *ret_auth, struct vault_error *err) {
        _cleanup_buf_ struct buf body = BUF_INIT(16384, 0);
        _cleanup_http_response_ struct http_response resp = {};
        char path[VAULT_PATH_MAX];
        struct vault_auth a;
        char *token = NULL;
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !ret_token) {
                set_error(err, -EINVAL, 0, "auth/token/create", "invalid arguments");
                return -EINVAL;
        }
        r = child_request(role, t, &body, path, sizeof(path), err);
        if (r < 0)
                return r;
        r = request(c, HTTP_POST, path, NULL, &body, REQ_TOKEN, &resp, err);
        if (r < 0)
                return r;
        r = vault_decode_auth(resp.body.data, resp.body.len, &a, &token);
        if (r < 0) {
                set_error(err, r, resp.status, NULL, "the answer carries no token");
                return r;
        }
        *ret_token = token;
        if (ret_auth)
                *ret_auth = a;
        return 0;
}

int vault_unwrap_token(struct vault_client *c, const char *wrapping_token, size_t len,
                       struct vault_auth *ret_auth, struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_secmem_ char *wt = NULL;
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !wrapping_token || !token_chars_ok(wrapping_token, len)) {
                set_error(err, -EINVAL, 0, "sys/wrapping/unwrap", "invalid wrapping token");
                return -EINVAL;
        }
        r = secmem_strndup(wrapping_token, len, &wt);
        if (r < 0)
                return r;
        struct http_header h = {.name = "X-Vault-Token", .value = wt, .secret = true};
        r = request_with(c, HTTP_POST, "sys/wrapping/unwrap", NULL, NULL, REQ_NO_FRESH_403, &h,
                         &resp, err);
        if (r < 0)
                return r;
        return take_auth(c, &resp, ret_auth, err);
}

int vault_token_revoke_accessor(struct vault_client *c, const char *accessor,
                                struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_ACCESSOR_MAX + 32, 0);
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !accessor || !token_chars_ok(accessor, strlen(accessor)) ||
            strlen(accessor) >= VAULT_ACCESSOR_MAX || strchr(accessor, '"') ||
            strchr(accessor, '\\')) {
                set_error(err, -EINVAL, 0, "auth/token/revoke-accessor", "invalid accessor");
                return -EINVAL;
        }
        r = buf_printf(&body, "{\"accessor\":\"%s\"}", accessor);
        if (r < 0)
                return r;
        r = request(c, HTTP_POST, "auth/token/revoke-accessor", NULL, &body, REQ_TOKEN, &resp, err);
        /* Vault answers 400 "invalid accessor" for a token that is gone (expired, revoked). */
        if (r < 0 && err && err->status == 400 && strstr(err->message, "invalid accessor"))
                return -ENOENT;
        return r;
}

/* --- KV ----------------------------------------------------------------------------------- */

static int fill_kv_path(struct vault_kv_path *p, enum vault_kv_version v, const char *mount,
                        const char *relative) {
        struct vault_kv_path k = {.version = v};
        size_t ml = strlen(mount);
        int w;

        if (ml == 0 || mount[ml - 1] != '/' || !relative[0])
                return -EINVAL;
        if (v == VAULT_KV_V2 && strncmp(relative, "data/", 5) == 0)
                relative += 5; /* "secret/data/app" names the same secret as "secret/app" */
        if (!relative[0])
                return -EINVAL;
        copy_printable(k.mount, sizeof(k.mount), mount);
        copy_printable(k.relative, sizeof(k.relative), relative);
        if (v == VAULT_KV_V2) {
                w = snprintf(k.data_path, sizeof(k.data_path), "%sdata/%s", mount, relative);
                if (w < 0 || (size_t) w >= sizeof(k.data_path))
                        return -E2BIG;
                w = snprintf(k.metadata_path, sizeof(k.metadata_path), "%smetadata/%s", mount,
                             relative);
                if (w < 0 || (size_t) w >= sizeof(k.metadata_path))
                        return -E2BIG;
        } else {
                w = snprintf(k.data_path, sizeof(k.data_path), "%s%s", mount, relative);
                if (w < 0 || (size_t) w >= sizeof(k.data_path))
                        return -E2BIG;
        }
        if (!vault_path_valid(k.data_path))
                return -EINVAL;
        *p = k;
        return 0;
}

int vault_decode_mount(const char *body, size_t len, const char *path, struct vault_kv_path *ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *data, *opts;
        const char *mount, *type, *version = NULL;
        enum vault_kv_version v = VAULT_KV_V1;
        int r;

        if (!vault_path_valid(path))
                return -EINVAL;
        r = json_parse(body, len, JSON_SECURE, &response_limits, &d);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (json_get_object(json_doc_root(d), "data", &data) < 0 ||
            json_get_string(data, "path", &mount) < 0 || json_get_string(data, "type", &type) < 0)
                return -EBADMSG;
        if (strcmp(type, "kv") != 0 && strcmp(type, "generic") != 0 &&
            strcmp(type, "cubbyhole") != 0)
                return -EMEDIUMTYPE; /* a mount that does not hold key/value secrets */
        r = json_get_object(data, "options", &opts);
        if (r >= 0) {
                r = json_get_string(opts, "version", &version);
                if (r < 0 && r != -ENOENT)
                        return -EBADMSG;
                if (version && strcmp(version, "2") == 0)
                        v = VAULT_KV_V2;
        } else if (r != -ENOENT)
                return -EBADMSG;

        size_t ml = strlen(mount);
        if (ml == 0 || ml >= VAULT_PATH_MAX || mount[ml - 1] != '/' ||
            strncmp(path, mount, ml) != 0)
                return -EBADMSG; /* the mount Vault names does not contain the path asked */
        return fill_kv_path(ret, v, mount, path + ml);
}

int vault_kv_path_from_mount(const struct vault_kv_path *known, const char *path,
                             struct vault_kv_path *ret) {
        size_t ml;
        if (!known || !path || !ret || !vault_path_valid(path))
                return -EINVAL;
        ml = strlen(known->mount);
        if (ml == 0 || strncmp(path, known->mount, ml) != 0)
                return -ENOENT;
        return fill_kv_path(ret, known->version, known->mount, path + ml);
}

int vault_kv_resolve(struct vault_client *c, const char *path, struct vault_kv_path *ret,
                     struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        char api[VAULT_PATH_MAX];
        int r;

        if (!vault_path_valid(path)) {
                set_error(err, -EINVAL, 0, path, "invalid vault path");
                return -EINVAL;
        }
        int w = snprintf(api, sizeof(api), "sys/internal/ui/mounts/%s", path);
        if (w < 0 || (size_t) w >= sizeof(api)) {
                set_error(err, -E2BIG, 0, path, "vault path too long");
                return -E2BIG;
        }
        r = request(c, HTTP_GET, api, NULL, NULL, REQ_TOKEN, &resp, err);
        if (r == -ENOENT) {
                /* Servers without the endpoint: the CLI then assumes KV v1 at the first segment. */
                const char *slash = strchr(path, '/');
                char mount[VAULT_PATH_MAX];
                if (!slash) {
                        set_error(err, -EINVAL, 0, path, "path names a mount, not a secret");
                        return -EINVAL;
                }
                (void) snprintf(mount, sizeof(mount), "%.*s", (int) (slash - path + 1), path);
                r = fill_kv_path(ret, VAULT_KV_V1, mount, slash + 1);
                set_error(err, r < 0 ? r : 0, 0, path, r < 0 ? "invalid vault path" : "");
                return r;
        }
        if (r < 0)
                return r;
        r = vault_decode_mount(resp.body.data, resp.body.len, path, ret);
        if (r < 0) {
                set_error(err, r, resp.status, path,
                          r == -EMEDIUMTYPE ? "not a key/value secrets mount"
                          : r == -EINVAL    ? "path names a mount, not a secret"
                                            : "malformed mount information");
                return r;
        }
        if (err)
                *err = (struct vault_error){.attempts = err->attempts};
        return 0;
}

static int field_cmp(const void *a, const void *b) {
        return strcmp(((const struct vault_field *) a)->name,
                      ((const struct vault_field *) b)->name);
}

int vault_decode_kv(const char *body, size_t len, enum vault_kv_version v,
                    struct vault_secret **ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf store = BUF_INIT(VAULT_RESPONSE_MAX * 2, BUF_SECURE);
        _cleanup_buf_ struct buf tmp = BUF_INIT(VAULT_RESPONSE_MAX, BUF_SECURE);
        _cleanup_(vault_secret_freep) struct vault_secret *s = NULL;
        const struct json_value *root, *data, *md = NULL;
        size_t offsets[VAULT_MAX_FIELDS][2];
        enum vault_value_type types[VAULT_MAX_FIELDS];
        size_t vlen[VAULT_MAX_FIELDS];
        size_t n = 0;
        int r;

        if (v != VAULT_KV_V1 && v != VAULT_KV_V2)
                return -EINVAL;
        /* A value may hold NUL bytes (value_len counts them): the caller decides, for the
         * fields it uses, whether that matters. */
        r = json_parse(body, len, JSON_SECURE | JSON_ALLOW_NUL, &response_limits, &d);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        root = json_doc_root(d);
        if (json_get_object(root, "data", &data) < 0)
                return -EBADMSG;
        if (v == VAULT_KV_V2) {
                md = json_get(data, "metadata");
                r = json_get_object(data, "data", &data);
                if (r == -ENOENT)
                        return -ENOENT; /* data: null, a deleted version */
                if (r < 0)
                        return -EBADMSG;
        }
        if (json_count(data) > VAULT_MAX_FIELDS)
                return -E2BIG;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (md && json_type(md) == JSON_OBJECT) {
                r = json_get_int64(md, "version", &s->version);
                if ((r < 0 && r != -ENOENT) || s->version < 0)
                        return -EBADMSG;
                copy_json_string(s->created_time, sizeof(s->created_time), md, "created_time");
        }

        JSON_FOREACH(f, data) {
                const char *name = json_key(f), *val;
                size_t nl = name ? strlen(name) : 0;
                if (!name || nl > VAULT_FIELD_NAME_MAX)
                        return -EBADMSG;
                offsets[n][0] = store.len;
                r = buf_append(&store, name, nl + 1);
                if (r < 0)
                        return r;
                offsets[n][1] = store.len;
                if (json_string(f, &val) >= 0) {
                        types[n] = VAULT_VALUE_STRING;
                        vlen[n] = json_string_len(f);
                        r = buf_append(&store, val, vlen[n] + 1);
                } else {
                        types[n] = VAULT_VALUE_JSON;
                        buf_reset(&tmp);
                        r = json_print(f, &tmp);
                        vlen[n] = tmp.len;
                        if (r >= 0)
                                r = buf_append(&store, buf_cstr(&tmp), tmp.len + 1);
                }
                if (r < 0)
                        return r;
                n++;
        }

        /* One secure block: the field array, then the names and values. */
        size_t arr = n * sizeof(struct vault_field);
        uint8_t *block;
        r = secmem_alloc(arr + store.len + 1, (void **) &block);
        if (r < 0)
                return r;
        s->storage_ = block;
        s->fields = (struct vault_field *) block;
        char *strings = (char *) block + arr;
        if (store.len)
                memcpy(strings, store.data, store.len);
        for (size_t i = 0; i < n; i++)
                s->fields[i] = (struct vault_field){.name = strings + offsets[i][0],
                                                    .value = strings + offsets[i][1],
                                                    .value_len = vlen[i],
                                                    .type = types[i]};
        s->n_fields = n;
        if (n > 1)
                qsort(s->fields, n, sizeof(*s->fields), field_cmp);
        *ret = TAKE_PTR(s);
        return 0;
}

struct vault_secret *vault_secret_free(struct vault_secret *s) {
        if (!s)
                return NULL;
        secmem_free(s->storage_);
        explicit_bzero(s, sizeof(*s));
        free(s);
        return NULL;
}

const struct vault_field *vault_secret_get(const struct vault_secret *s, const char *name) {
        if (!s || !name)
                return NULL;
        struct vault_field key = {.name = name};
        return bsearch(&key, s->fields, s->n_fields, sizeof(*s->fields), field_cmp);
}

int vault_kv_read(struct vault_client *c, const struct vault_kv_path *p, int64_t version,
                  struct vault_secret **ret, struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        char query[32];
        int r;

        if (!c || !p || !ret || version < 0 ||
            (p->version != VAULT_KV_V1 && p->version != VAULT_KV_V2)) {
                set_error(err, -EINVAL, 0, p ? p->data_path : NULL, "invalid arguments");
                return -EINVAL;
        }
        if (p->version == VAULT_KV_V2 && version > 0)
                (void) snprintf(query, sizeof(query), "version=%" PRId64, version);
        else
                query[0] = '\0';
        r = request(c, HTTP_GET, p->data_path, query[0] ? query : NULL, NULL, REQ_TOKEN, &resp,
                    err);
        if (r < 0)
                return r;
        r = vault_decode_kv(resp.body.data, resp.body.len, p->version, ret);
        if (r < 0) {
                set_error(err, r, resp.status, NULL,
                          r == -ENOENT  ? "secret version has no data (deleted)"
                          : r == -E2BIG ? "secret has too many fields"
                                        : "malformed secret response");
                return r;
        }
        return 0;
}

int vault_kv_write(struct vault_client *c, const struct vault_kv_path *p,
                   const struct vault_field *fields, size_t n_fields, int64_t cas,
                   int64_t *ret_version, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_RESPONSE_MAX, BUF_SECURE);
        _cleanup_http_response_ struct http_response resp = {};
        struct json_value *data;
        int r;

        if (err)
                *err = (struct vault_error){};
        if (!c || !p || (n_fields > 0 && !fields) || n_fields > VAULT_MAX_FIELDS ||
            (p->version == VAULT_KV_V1 && cas >= 0) ||
            (p->version != VAULT_KV_V1 && p->version != VAULT_KV_V2)) {
                set_error(err, -EINVAL, 0, p ? p->data_path : NULL, "invalid arguments");
                return -EINVAL;
        }
        r = json_doc_new(JSON_SECURE, VAULT_RESPONSE_MAX * 2, &d);
        if (r < 0)
                return r;
        data = json_doc_root(d);
        if (p->version == VAULT_KV_V2) {
                if (cas >= 0) {
                        struct json_value *opts;
                        r = json_add_object(d, data, "options", &opts);
                        if (r >= 0)
                                r = json_add_int64(d, opts, "cas", cas);
                }
                if (r >= 0)
                        r = json_add_object(d, json_doc_root(d), "data", &data);
        }
        for (size_t i = 0; r >= 0 && i < n_fields; i++)
                r = json_add_stringn(d, data, fields[i].name, fields[i].value, fields[i].value_len);
        if (r >= 0)
                r = json_print(json_doc_root(d), &body);
        if (r < 0) {
                set_error(err, r, 0, p->data_path, "cannot build the write request");
                return r;
        }
        d = json_doc_free(d);

        r = request(c, HTTP_POST, p->data_path, NULL, &body, REQ_TOKEN, &resp, err);
        if (r < 0)
                return r;
        if (ret_version) {
                int64_t v = 0;
                if (p->version == VAULT_KV_V2) {
                        _cleanup_json_doc_ struct json_doc *rd = NULL;
                        r = parse_body(&resp, &rd);
                        if (r >= 0)
                                r = json_get_int64(json_get(json_doc_root(rd), "data"), "version",
                                                   &v);
                        if (r < 0) {
                                set_error(err, -EBADMSG, resp.status, NULL,
                                          "malformed write response");
                                return -EBADMSG;
                        }
                }
                *ret_version = v;
        }
        return 0;
}

int vault_kv_metadata(struct vault_client *c, const struct vault_kv_path *p,
                      struct vault_kv_metadata *ret, struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *data;
        struct vault_kv_metadata m = {};
        int r;

        if (!c || !p || !ret || p->version != VAULT_KV_V2) {
                set_error(err, -EOPNOTSUPP, 0, p ? p->data_path : NULL,
                          "metadata exists for KV v2 only");
                return -EOPNOTSUPP;
        }
        r = request(c, HTTP_GET, p->metadata_path, NULL, NULL, REQ_TOKEN, &resp, err);
        if (r < 0)
                return r;
        r = parse_body(&resp, &d);
        if (r >= 0 && json_get_object(json_doc_root(d), "data", &data) < 0)
                r = -EBADMSG;
        if (r >= 0 && json_get_int64(data, "current_version", &m.current_version) < 0)
                r = -EBADMSG;
        if (r < 0) {
                set_error(err, r == -ENOMEM ? r : -EBADMSG, resp.status, NULL,
                          "malformed metadata response");
                return r == -ENOMEM ? r : -EBADMSG;
        }
        (void) json_get_int64(data, "oldest_version", &m.oldest_version);
        (void) json_get_int64(data, "max_versions", &m.max_versions);
        (void) json_get_bool(data, "cas_required", &m.cas_required);
        copy_json_string(m.created_time, sizeof(m.created_time), data, "created_time");
        copy_json_string(m.updated_time, sizeof(m.updated_time), data, "updated_time");
        char key[24];
        (void) snprintf(key, sizeof(key), "%" PRId64, m.current_version);
        const struct json_value *cur = json_get(json_get(data, "versions"), key);
        const char *dt;
        if (json_get_string(cur, "deletion_time", &dt) >= 0 && dt[0])
                m.current_deleted = true;
        (void) json_get_bool(cur, "destroyed", &m.current_destroyed);
        *ret = m;
        return 0;
}

/* --- generic requests ---------------------------------------------------------------------- */

int vault_request_json(struct vault_client *c, enum http_method method, const char *path,
                       const struct buf *body, bool authenticated, struct json_doc **ret,
                       struct vault_error *err) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int r;

        if (!c || !path) {
                set_error(err, -EINVAL, 0, path, "invalid arguments");
                return -EINVAL;
        }
        r = request(c, method, path, NULL, body, authenticated ? REQ_TOKEN : 0, &resp, err);
        if (r < 0)
                return r;
        if (!ret)
                return 0;
        if (resp.body.len > 0) {
                r = parse_body(&resp, &d);
                if (r < 0) {
                        r = r == -ENOMEM ? r : -EBADMSG;
                        set_error(err, r, resp.status, NULL, "malformed response");
                        return r;
                }
        }
        *ret = TAKE_PTR(d);
        return 0;
}

int vault_logical_read(struct vault_client *c, const char *path, struct json_doc **ret,
                       struct vault_error *err) {
        return vault_request_json(c, HTTP_GET, path, NULL, true, ret, err);
}

int vault_logical_write(struct vault_client *c, const char *path, const struct buf *body,
                        struct json_doc **ret, struct vault_error *err) {
        return vault_request_json(c, HTTP_POST, path, body, true, ret, err);
}
