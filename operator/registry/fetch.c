/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/fetch.c: one lookup on the wire: requests with redirects by hand, the 401
 * challenge flow, digests verified, manifests resolved to the config.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/registry/internal.h"

uint64_t registry_mono_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void registry_set_err(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;
        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (char *p = err; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
}

unsigned registry_session_left_ms(const struct registry_session *s) {
        uint64_t now = registry_mono_usec();
        return now >= s->deadline ? 0 : (unsigned) MAX((s->deadline - now) / 1000u, 1u);
}

void registry_session_set_auth(struct registry_session *s, char *auth) {
        secmem_free(s->auth);
        s->auth = auth;
}

/* Replaces *b with s[0..n). */
static int buf_set(struct buf *b, const char *s, size_t n) {
        buf_reset(b);
        return buf_append(b, s, n);
}

/* Splits an absolute URL into its origin ("https://host[:port]"), path and query (the fragment
 * dropped). */
static int split_url(const char *url, char *origin, size_t osz, struct buf *path,
                     struct buf *query) {
        size_t n = strcspn(url, "#");
        const char *p;
        if (strncmp(url, "https://", 8) == 0)
                p = url + 8;
        else if (strncmp(url, "http://", 7) == 0)
                p = url + 7;
        else
                return -EINVAL;
        size_t hn = strcspn(p, "/?#");
        if (hn == 0 || memchr(p, '@', hn))
                return -EINVAL; /* no user info in URLs we follow */
        if (copy_str(origin, osz, url, (size_t) (p - url) + hn) < 0)
                return -E2BIG;
        const char *rest = p + hn, *end = url + n;
        size_t pl = strcspn(rest, "?#");
        if (rest + pl > end)
                pl = (size_t) (end - rest);
        int r = pl == 0 ? buf_set(path, "/", 1) : buf_set(path, rest, pl);
        if (r >= 0)
                buf_reset(query);
        if (r >= 0 && rest[pl] == '?')
                r = buf_append(query, rest + pl + 1, (size_t) (end - rest - pl - 1));
        return r;
}

/* One GET, following redirects by hand. The Authorization header goes only to the origin it was
 * meant for. A redirect target may be as long as common/http keeps a Location (pre-signed blob
 * URLs run to several KiB). */
static int http_get(struct registry_session *s, const char *origin0, const char *path0,
                    const char *query0, const char *accept, const char *auth, size_t max_body,
                    struct http_response *ret, struct http_result *res) {
        _cleanup_buf_ struct buf path = BUF_INIT(HTTP_MAX_LOCATION, 0);
        _cleanup_buf_ struct buf query = BUF_INIT(HTTP_MAX_LOCATION, 0);
        char origin[REGISTRY_ORIGIN_MAX];
        const char *auth_origin = origin0;
        int r;

        if (copy_str(origin, sizeof(origin), origin0, strlen(origin0)) < 0 ||
            buf_set(&path, path0, strlen(path0)) < 0 ||
            buf_set(&query, query0 ? query0 : "", query0 ? strlen(query0) : 0) < 0)
                return -E2BIG;
        for (int hop = 0;; hop++) {
                _cleanup_http_client_ struct http_client *c = NULL;
                struct http_header h[2];
                size_t nh = 0;
                unsigned left = registry_session_left_ms(s);

                if (left == 0) {
                        *res = (struct http_result){.error = -ETIMEDOUT};
                        return -ETIMEDOUT;
                }
                struct http_options ho = {
                        .base_url = origin,
                        .allow_http = s->tried_http, /* only once it is known not to speak TLS */
                        .ca_pem = s->r->ca_pem,
                        .ca_pem_len = s->r->ca_pem_len,
                        .connect_timeout_ms = MIN(left, HTTP_CONNECT_TIMEOUT_MS_DEFAULT),
                        .request_timeout_ms = left,
                        .deadline_ms = left,
                        .max_body = max_body,
                        .max_attempts = 3,
                        .user_agent = USER_AGENT,
                };
                if (strncmp(origin, "http://", 7) == 0)
                        ho.ca_pem = NULL, ho.ca_pem_len = 0;
                r = http_client_new(&ho, &c);
                if (r < 0) {
                        *res = (struct http_result){.error = r};
                        return r;
                }
                if (accept)
                        h[nh++] = (struct http_header){.name = "Accept", .value = accept};
                if (auth && strcmp(origin, auth_origin) == 0)
                        h[nh++] = (struct http_header){
                                .name = "Authorization", .value = auth, .secret = true};
                struct http_request rq = {
                        .method = HTTP_GET,
                        .path = buf_cstr(&path),
                        .query = query.len ? buf_cstr(&query) : NULL,
                        .headers = h,
                        .n_headers = nh,
                };
                _cleanup_http_response_ struct http_response resp = {};
                r = http_request(c, &rq, &resp, res);
                if (r < 0)
                        return r;
                bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                                resp.status == 307 || resp.status == 308;
                if (!redirect) {
                        *ret = resp;
                        resp = (struct http_response){};
                        return 0;
                }
                const char *loc = buf_cstr(&resp.location);
                if (hop >= MAX_REDIRECTS || !loc[0] || resp.location_overflow)
                        return -ELOOP; /* too many, none, or over HTTP_MAX_LOCATION */
                if (loc[0] == '/' && loc[1] != '/') {
                        size_t pl = strcspn(loc, "?#");
                        r = buf_set(&path, loc, pl);
                        if (r >= 0)
                                buf_reset(&query);
                        if (r >= 0 && loc[pl] == '?')
                                r = buf_append(&query, loc + pl + 1, strcspn(loc + pl + 1, "#"));
                        if (r < 0)
                                return -E2BIG;
                } else if (split_url(loc, origin, sizeof(origin), &path, &query) < 0)
                        return -ELOOP;
        }
}

const char *registry_errno_text(int r) {
        switch (r) {
        case -ETIMEDOUT:
                return "timed out";
        case -ECONNREFUSED:
                return "connection refused";
        case -EHOSTUNREACH:
                return "host name not resolved";
        case -ECONNRESET:
                return "connection reset";
        case -EPROTO:
                return "TLS handshake or certificate verification failed";
        case -EBADMSG:
                return "malformed HTTP response";
        case -E2BIG:
                return "response too large";
        case -ELOOP:
                return "too many or unusable redirects";
        case -ENOMEM:
                return "out of memory";
        default:
                return "request failed";
        }
}

static int transport_error(struct registry_session *s, int r, const char *what,
                           const struct http_result *res) {
        if (r == -ETIMEDOUT)
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s did not answer within %u ms while reading %s of %s/%s: %s "
                        "(or check that the registry is reachable from the operator)",
                        s->ref->host, s->r->timeout_ms, what, s->ref->domain, s->ref->path,
                        FIX_HINT);
        else if (r == -EPROTO)
                registry_set_err(s->err, s->errlen,
                                 "TLS with registry %s failed (%s%s%s): trust its CA or %s",
                                 s->ref->host, registry_errno_text(r),
                                 res->error_text[0] ? ": " : "", res->error_text, FIX_HINT);
        else
                registry_set_err(s->err, s->errlen,
                                 "cannot read %s of %s/%s from registry %s (%s%s%s): %s", what,
                                 s->ref->domain, s->ref->path, s->ref->host, registry_errno_text(r),
                                 res->error_text[0] ? ": " : "", res->error_text, FIX_HINT);
        return r;
}

/* The first error of a registry error body ({"errors":[{"code":..,"message":..}]}), printable. */
static void registry_error_code(const struct buf *body, char *out, size_t outsz) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_limits lim = {.max_input = 64 * 1024, .max_depth = 8};
        const struct json_value *errs = NULL;
        const char *code = NULL;
        out[0] = '\0';
        if (body->len == 0 || json_parse(body->data, body->len, 0, &lim, &doc) < 0)
                return;
        if (json_get_array(json_doc_root(doc), "errors", &errs) < 0)
                return;
        if (json_get_string(json_array_at(errs, 0), "code", &code) == 0)
                (void) snprintf(out, outsz, " %.60s", code);
}

static int status_error(struct registry_session *s, const char *what,
                        const struct http_response *resp) {
        char code[64];
        registry_error_code(&resp->body, code, sizeof(code));
        if (resp->status == 404)
                registry_set_err(
                        s->err, s->errlen,
                        "%s of %s/%s not found on registry %s (HTTP 404%s): check the image name "
                        "and tag, or %s",
                        what, s->ref->domain, s->ref->path, s->ref->host, code, FIX_HINT);
        else if (resp->status == 403)
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s denied access to %s/%s (HTTP 403%s): give the pull secret's "
                        "account access, or %s",
                        s->ref->host, s->ref->domain, s->ref->path, code, FIX_HINT);
        else if (resp->status == 429)
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s rate-limited the lookup of %s/%s (HTTP 429%s): add an "
                        "imagePullSecret (authenticated pulls get higher limits), or %s",
                        s->ref->host, s->ref->domain, s->ref->path, code, FIX_HINT);
        else
                registry_set_err(s->err, s->errlen,
                                 "registry %s answered HTTP %ld%s for %s of %s/%s: %s",
                                 s->ref->host, resp->status, code, what, s->ref->domain,
                                 s->ref->path, FIX_HINT);
        return resp->status == 404 ? -ENOENT : resp->status == 403 ? -EACCES : -EPROTO;
}

static int need_credentials_error(struct registry_session *s) {
        enum registry_cloud_kind kind = registry_cloud_match(s->ref->host, NULL);
        const char *hint = registry_cloud_hint(kind);
        if (s->cloud_used)
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s refused the operator's own credentials for %s: %s it, "
                        "add imagePullSecrets, or %s",
                        s->ref->host, s->ref->path, hint, FIX_HINT);
        else if (s->creds->n == 0 && hint)
                registry_set_err(s->err, s->errlen,
                                 "registry %s requires credentials for %s%s%s%s: add "
                                 "imagePullSecrets, %s it, or %s",
                                 s->ref->host, s->ref->path, s->cloud_err[0] ? " (" : "",
                                 s->cloud_err, s->cloud_err[0] ? ")" : "", hint, FIX_HINT);
        else if (s->creds->n == 0)
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s requires credentials for %s/%s: add an imagePullSecret for "
                        "%s or %s",
                        s->ref->host, s->ref->domain, s->ref->path, s->ref->domain, FIX_HINT);
        else
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s refused the credentials of the imagePullSecrets for %s/%s "
                        "(%zu tried%s%s): fix the pull secret or %s",
                        s->ref->host, s->ref->domain, s->ref->path, s->creds->n,
                        s->cloud_err[0] ? "; " : "", s->cloud_err, FIX_HINT);
        return -EACCES;
}

/* "Basic base64(user:pass)" in secmem. */
static int basic_header(const char *user_pass, char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(2 * REGISTRY_CREDENTIAL_MAX, BUF_SECURE);
        int r = buf_append_str(&b, "Basic ");
        if (r >= 0)
                r = base64_encode(&b, user_pass, strlen(user_pass));
        if (r < 0)
                return r;
        return secmem_strndup(b.data, b.len, ret);
}

/* GET realm?service=..&scope=.. (with the credential's basic auth if any): "Bearer <token>".
 * -EACCES when the token endpoint refused. */
static int fetch_token(struct registry_session *s, const struct registry_challenge *ch,
                       const char *user_pass, char **ret) {
        char origin[REGISTRY_ORIGIN_MAX];
        _cleanup_buf_ struct buf path = BUF_INIT(HTTP_MAX_CHALLENGE, 0);
        _cleanup_buf_ struct buf q = BUF_INIT(3 * HTTP_MAX_CHALLENGE, 0);
        _cleanup_secmem_ char *basic = NULL;
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_buf_ struct buf hdr = BUF_INIT(TOKEN_MAX + 16, BUF_SECURE);
        struct http_result res = {};
        const char *token = NULL;
        int r;

        if (split_url(ch->realm, origin, sizeof(origin), &path, &q) < 0 ||
            (strncmp(origin, "http://", 7) == 0 && !s->tried_http)) {
                registry_set_err(s->err, s->errlen,
                                 "registry %s names a token endpoint that is not an https URL: %s",
                                 s->ref->host, FIX_HINT);
                return -EPROTO;
        }
        r = 0;
        if (ch->service[0]) {
                r = buf_append_str(&q, q.len ? "&service=" : "service=");
                if (r >= 0)
                        r = http_append_escaped(&q, ch->service, false);
        }
        if (r >= 0)
                r = buf_append_str(&q, q.len ? "&scope=" : "scope=");
        if (r >= 0 && ch->scope[0])
                r = http_append_escaped(&q, ch->scope, false);
        else if (r >= 0) {
                r = buf_append_str(&q, "repository%3A");
                if (r >= 0)
                        r = http_append_escaped(&q, s->ref->path, false);
                if (r >= 0)
                        r = buf_append_str(&q, "%3Apull");
        }
        if (r < 0)
                return transport_error(s, r, "the token", &res);
        if (user_pass) {
                r = basic_header(user_pass, &basic);
                if (r < 0)
                        return r;
        }
        r = http_get(s, origin, buf_cstr(&path), buf_cstr(&q), "application/json", basic,
                     TOKEN_BODY_MAX, &resp, &res);
        if (r < 0)
                return transport_error(s, r, "a token", &res);
        if (resp.status == 401 || resp.status == 403)
                return -EACCES;
        if (resp.status != 200) {
                registry_set_err(s->err, s->errlen,
                                 "the token endpoint of registry %s answered HTTP %ld: %s",
                                 s->ref->host, resp.status, FIX_HINT);
                return -EPROTO;
        }
        const struct json_limits lim = {.max_input = TOKEN_BODY_MAX, .max_depth = 8};
        r = json_parse(resp.body.data ? resp.body.data : "", resp.body.len, JSON_SECURE, &lim,
                       &doc);
        if (r >= 0 && json_get_string(json_doc_root(doc), "token", &token) < 0)
                (void) json_get_string(json_doc_root(doc), "access_token", &token);
        bool valid = r >= 0 && token && token[0] && strlen(token) <= TOKEN_MAX;
        for (const char *t = token; valid && *t; t++)
                valid = (unsigned char) *t > 0x20 && (unsigned char) *t < 0x7f;
        if (!valid) {
                registry_set_err(s->err, s->errlen,
                                 "the token endpoint of registry %s sent no usable token: %s",
                                 s->ref->host, FIX_HINT);
                return -EPROTO;
        }
        r = buf_append_str(&hdr, "Bearer ");
        if (r >= 0)
                r = buf_append_str(&hdr, token);
        if (r < 0)
                return r;
        return secmem_strndup(hdr.data, hdr.len, ret);
}

/* After a 401: the next way to authenticate, or the error. */
static int authenticate(struct registry_session *s, const struct http_response *resp) {
        struct registry_challenge ch;
        int r = resp->challenge_overflow
                        ? -E2BIG
                        : registry_parse_challenge(buf_cstr(&resp->www_authenticate), &ch);
        if (r < 0) {
                if (s->auth || s->creds->n > 0)
                        return need_credentials_error(s);
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s answered 401 without a usable WWW-Authenticate challenge "
                        "for %s/%s: %s",
                        s->ref->host, s->ref->domain, s->ref->path, FIX_HINT);
                return -EACCES;
        }
        if (s->creds->n == 0 && ch.scheme == REGISTRY_AUTH_BEARER && !s->anonymous_token &&
            !s->cloud_tried) {
                /* Anonymous: one bearer token, without credentials. */
                char *auth = NULL;
                s->anonymous_token = true;
                r = fetch_token(s, &ch, NULL, &auth);
                if (r >= 0) {
                        registry_session_set_auth(s, auth);
                        return 0;
                }
                if (r != -EACCES)
                        return r;
        }
        while (s->next_cred < s->creds->n) {
                size_t i = s->next_cred++;
                char *auth = NULL;
                if (ch.scheme == REGISTRY_AUTH_BASIC)
                        r = basic_header(s->creds->c[i].user_pass, &auth);
                else
                        r = fetch_token(s, &ch, s->creds->c[i].user_pass, &auth);
                if (r == -EACCES)
                        continue; /* the token endpoint refused this credential */
                if (r < 0)
                        return r;
                registry_session_set_auth(s, auth);
                s->cred_used = (int) i;
                return 0;
        }
        if (s->cloud_used) /* the registry refused what the provider gave: not kept */
                registry_cloud_forget(s->r, s->ref->host);
        if (!s->cloud_tried && !s->tried_http &&
            registry_cloud_match(s->ref->host, NULL) != REGISTRY_CLOUD_NONE) {
                /* A cloud registry: what the operator's own identity may read. Never over the
                 * plain-HTTP fallback of an insecure registry: the credential reads every
                 * repository the identity may read. */
                _cleanup_secmem_ char *up = NULL;
                char *auth = NULL;
                s->cloud_tried = true;
                r = registry_cloud_credential(s, &up);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0) {
                        if (ch.scheme == REGISTRY_AUTH_BASIC)
                                r = basic_header(up, &auth);
                        else
                                r = fetch_token(s, &ch, up, &auth);
                        if (r == -EACCES) {
                                registry_cloud_forget(s->r, s->ref->host);
                                s->cloud_used = true; /* for the message */
                                return need_credentials_error(s);
                        }
                        if (r < 0)
                                return r;
                        registry_session_set_auth(s, auth);
                        s->cloud_used = true;
                        s->cred_used = -1;
                        return 0;
                }
        }
        return need_credentials_error(s);
}

/* GET on the registry, authenticating as challenged. *ret: a 200 response. */
static int registry_get(struct registry_session *s, const char *path, const char *accept,
                        size_t max_body, const char *what, struct http_response *ret) {
        for (unsigned round = 0; round < 2 * REGISTRY_MAX_CREDENTIALS + 4; round++) {
                struct http_response resp = {};
                struct http_result res = {};
                int r = http_get(s, s->base, path, NULL, accept, s->auth, max_body, &resp, &res);
                if (r < 0 && s->insecure && !s->tried_http && round == 0 &&
                    (r == -EPROTO || r == -ECONNRESET) &&
                    http_probe_plain_http(s->base, MAX(registry_session_left_ms(s), 1u)) == 1) {
                        /* containerd's HTTP fallback, for a registry named insecure that does
                         * not speak TLS at all: its peer answered our TLS record in plain HTTP.
                         * A failed verification (a TLS server, maybe a man in the middle) or
                         * any other handshake failure keeps the TLS error. */
                        s->tried_http = true;
                        (void) snprintf(s->base, sizeof(s->base), "http://%s", s->ref->host);
                        r = http_get(s, s->base, path, NULL, accept, s->auth, max_body, &resp,
                                     &res);
                }
                if (r < 0)
                        return transport_error(s, r, what, &res);
                if (resp.status == 200) {
                        *ret = resp;
                        return 0;
                }
                if (resp.status == 401) {
                        r = authenticate(s, &resp);
                        http_response_done(&resp);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = status_error(s, what, &resp);
                http_response_done(&resp);
                return r;
        }
        return need_credentials_error(s);
}

static int fetch_verified(struct registry_session *s, const char *kind, const char *ref_or_digest,
                          const char *want_digest, int64_t want_size, size_t max_body,
                          const char *accept, struct http_response *ret, char digest[80]) {
        char path[2 * REGISTRY_NAME_MAX + 128];
        (void) snprintf(path, sizeof(path), "/v2/%s/%s/%s", s->ref->path, kind, ref_or_digest);
        const char *what = strcmp(kind, "blobs") == 0 ? "the image config" : "the manifest";
        struct http_response resp = {};
        int r = registry_get(s, path, accept, max_body, what, &resp);
        if (r < 0)
                return r;
        registry_digest(resp.body.data ? resp.body.data : "", resp.body.len, digest);
        if ((want_digest && strcmp(digest, want_digest) != 0) ||
            (want_size >= 0 && (uint64_t) want_size != resp.body.len)) {
                http_response_done(&resp);
                registry_set_err(
                        s->err, s->errlen,
                        "registry %s sent %s of %s/%s whose digest or size does not match %s: %s",
                        s->ref->host, what, s->ref->domain, s->ref->path, want_digest, FIX_HINT);
                return -EBADMSG;
        }
        *ret = resp;
        return 0;
}

void registry_platform_string(const struct registry_platform *p, char *out, size_t sz) {
        (void) snprintf(out, sz, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

/* Fetches and decodes; ret->digest is the manifest the config came from. *top_digest: the
 * digest the reference resolved to. */
int registry_resolve(struct registry_session *s, const struct registry_platform *plat,
                     struct registry_image_config *ret, char top_digest[80]) {
        char digest[80], want[80] = "", pstr[80];
        const char *ref = s->ref->digest[0] ? s->ref->digest : s->ref->tag;
        int64_t want_size = -1;
        int r;

        registry_platform_string(plat, pstr, sizeof(pstr));
        if (s->ref->digest[0])
                memcpy(want, s->ref->digest, sizeof(want));
        for (int depth = 0;; depth++) {
                _cleanup_http_response_ struct http_response resp = {};
                struct registry_descriptor d;
                enum registry_manifest_kind kind;
                char available[512] = "";
                const char *why = NULL;

                r = fetch_verified(s, "manifests", ref, want[0] ? want : NULL, want_size,
                                   REGISTRY_MANIFEST_MAX, ACCEPT_MANIFESTS, &resp, digest);
                if (r < 0)
                        return r;
                if (depth == 0)
                        memcpy(top_digest, digest, 80);
                r = registry_decode_manifest(resp.body.data ? resp.body.data : "", resp.body.len,
                                             resp.content_type, plat, &kind, &d, available,
                                             sizeof(available), &why);
                if (r == -ENOENT) {
                        registry_set_err(
                                s->err, s->errlen,
                                "image %s/%s has no manifest for the platform %s (it has: %s): "
                                "%s",
                                s->ref->domain, s->ref->path, pstr,
                                available[0] ? available : "none", FIX_HINT);
                        return r;
                }
                if (r < 0) {
                        registry_set_err(s->err, s->errlen,
                                         "cannot use the manifest of %s/%s from %s: %s: %s",
                                         s->ref->domain, s->ref->path, s->ref->host,
                                         why ? why : "malformed", FIX_HINT);
                        return r;
                }
                if (kind == REGISTRY_MANIFEST_IMAGE) {
                        _cleanup_http_response_ struct http_response cresp = {};
                        char cdigest[80];
                        r = fetch_verified(s, "blobs", d.digest, d.digest, d.size,
                                           REGISTRY_CONFIG_MAX, NULL, &cresp, cdigest);
                        if (r < 0)
                                return r;
                        r = registry_decode_config(cresp.body.data ? cresp.body.data : "",
                                                   cresp.body.len, ret);
                        if (r < 0) {
                                registry_set_err(s->err, s->errlen,
                                                 "the image config of %s/%s is malformed (%s): %s",
                                                 s->ref->domain, s->ref->path,
                                                 r == -E2BIG
                                                         ? "its Entrypoint and Cmd have more than "
                                                           "4096 arguments or 64 KiB of text, more "
                                                           "than the wrapper takes"
                                                         : "invalid",
                                                 FIX_HINT);
                                return r;
                        }
                        memcpy(ret->digest, digest, sizeof(ret->digest));
                        return 0;
                }
                if (depth >= MAX_INDEX_DEPTH) {
                        registry_set_err(s->err, s->errlen,
                                         "image %s/%s nests indexes too deeply: %s", s->ref->domain,
                                         s->ref->path, FIX_HINT);
                        return -ELOOP;
                }
                memcpy(want, d.digest, sizeof(want));
                want_size = d.size;
                ref = want;
        }
}
