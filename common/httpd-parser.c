/* SPDX-License-Identifier: Apache-2.0 */
/* httpd-parser: see httpd-parser.h for the contract and docs/httpd.md. The only module that
 * includes http-parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/httpd-parser.h"
#include "common/macro.h"

/* ---- header syntax ------------------------------------------------------------------------ */

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool httpd_token_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!is_tchar((unsigned char) *s))
                        return false;
        return true;
}

/* Field value: visible ASCII, obs-text, SP, HTAB; nothing else (no CR, LF, NUL, DEL). */
bool httpd_field_value_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f))
                        continue;
                return false;
        }
        return true;
}

const char *httpd_request_header(const struct httpd_request *req, const char *name) {
        if (!req || !name)
                return NULL;
        for (size_t i = 0; i < req->n_headers; i++)
                if (strcasecmp(req->headers[i].name, name) == 0)
                        return req->headers[i].value;
        return NULL;
}

/* ---- parser ---------------------------------------------------------------------------- */

enum hdr_state { HDR_NONE, HDR_FIELD, HDR_VALUE };

struct httpd_parser {
        http_parser hp;
        http_parser_settings settings;
        struct httpd_limits limits;
        struct arena arena;

        struct buf url;  /* request-target */
        struct buf head; /* "name\0value\0" pairs */
        struct buf body; /* de-chunked body */
        unsigned n_headers;
        size_t header_content; /* bytes of names + values */
        enum hdr_state hdr;
        size_t head_raw; /* raw bytes consumed before the end of the head */
        bool in_request, headers_done, want_continue, continue_sent, complete;
        int error_status;
        const char *error_message;
        struct httpd_request req;
};

static int fail(struct httpd_parser *p, int status, const char *message) {
        if (!p->error_status) {
                p->error_status = status;
                p->error_message = message;
        }
        return 1; /* non-zero: http-parser stops with HPE_CB_* */
}

static int on_message_begin(http_parser *hp) {
        struct httpd_parser *p = hp->data;
        p->in_request = true;
        return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len) {
        struct httpd_parser *p = hp->data;
        if (buf_append(&p->url, at, len) < 0)
                return fail(p, 414, "request-target too long");
        return 0;
}

static int header_bytes(struct httpd_parser *p, const char *at, size_t len) {
        if (p->headers_done)
                return 0; /* chunked trailers: bounded by http-parser, otherwise ignored */
        p->header_content += len;
        if (p->header_content > p->limits.max_header_bytes || buf_append(&p->head, at, len) < 0)
                return fail(p, 431, "request header fields too large");
        return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
        struct httpd_parser *p = hp->data;
        if (!p->headers_done && p->hdr != HDR_FIELD) {
                if (p->hdr == HDR_VALUE && buf_append_byte(&p->head, 0) < 0)
                        return fail(p, 431, "request header fields too large");
                if (++p->n_headers > p->limits.max_headers)
                        return fail(p, 431, "too many request header fields");
                p->hdr = HDR_FIELD;
        }
        return header_bytes(p, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
        struct httpd_parser *p = hp->data;
        if (!p->headers_done && p->hdr != HDR_VALUE) {
                if (buf_append_byte(&p->head, 0) < 0)
                        return fail(p, 431, "request header fields too large");
                p->hdr = HDR_VALUE;
        }
        return header_bytes(p, at, len);
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* Builds req.headers from the "name\0value\0" buffer, validating the values. */
static int build_headers(struct httpd_parser *p) {
        struct httpd_header *h;
        const char *s, *end;

        if (p->hdr == HDR_VALUE && buf_append_byte(&p->head, 0) < 0)
                return fail(p, 431, "request header fields too large");
        h = arena_alloc(&p->arena, sizeof(*h) * MAX(p->n_headers, 1u));
        if (!h)
                return fail(p, 431, "request header fields too large");
        s = p->head.data;
        end = s ? s + p->head.len : NULL;
        for (unsigned i = 0; i < p->n_headers; i++) {
                /* buf keeps a NUL after the data, so strlen() never runs past `end`; a pair that
                 * does not end inside the buffer is malformed. */
                size_t nl, vl;
                const char *v, *next;
                if (!s || s >= end)
                        return fail(p, 400, "malformed header field");
                nl = strlen(s);
                v = s + nl + 1;
                if (nl == 0 || v > end)
                        return fail(p, 400, "malformed header field");
                vl = strlen(v);
                next = v + vl + 1;
                if (next > end)
                        return fail(p, 400, "malformed header field");
                while (vl > 0 && is_blank(v[vl - 1]))
                        vl--;
                while (vl > 0 && is_blank(*v)) {
                        v++;
                        vl--;
                }
                if (!httpd_field_value_valid(v, vl))
                        return fail(p, 400, "invalid character in a header field value");
                h[i].name = s;
                h[i].value = arena_strndup(&p->arena, v, vl);
                if (!h[i].value)
                        return fail(p, 431, "request header fields too large");
                s = next;
        }
        if (s != end)
                return fail(p, 400, "malformed header field");
        p->req.headers = h;
        p->req.n_headers = p->n_headers;
        return 0;
}

static int on_headers_complete(http_parser *hp) {
        struct httpd_parser *p = hp->data;
        const char *expect;
        unsigned hosts = 0;
        bool cl = false, te = false;

        if (build_headers(p) != 0)
                return -1;
        p->headers_done = true;
        if (hp->http_major != 1 || hp->http_minor > 1)
                return fail(p, 505, "only HTTP/1.0 and HTTP/1.1 are supported"), -1;
        if (hp->method == HTTP_CONNECT)
                return fail(p, 405, "CONNECT is not supported"), -1;
        for (size_t i = 0; i < p->req.n_headers; i++) {
                const char *n = p->req.headers[i].name;
                if (strcasecmp(n, "Host") == 0)
                        hosts++;
                else if (strcasecmp(n, "Content-Length") == 0)
                        cl = true;
                else if (strcasecmp(n, "Transfer-Encoding") == 0)
                        te = true;
        }
        if (hp->http_minor == 1 && hosts != 1)
                return fail(p, 400, "an HTTP/1.1 request needs exactly one Host header"), -1;
        if (hosts > 1)
                return fail(p, 400, "more than one Host header"), -1;
        if (cl && te)
                return fail(p, 400, "both Content-Length and Transfer-Encoding"), -1;
        if (te && hp->http_minor == 0)
                return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request"), -1;
        if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->limits.max_body)
                return fail(p, 413, "request body too large"), -1;
        expect = httpd_request_header(&p->req, "Expect");
        if (expect) {
                if (strcasecmp(expect, "100-continue") != 0)
                        return fail(p, 417, "unsupported Expect"), -1;
                p->want_continue = hp->http_minor == 1;
        }
        http_parser_pause(hp, 1); /* the caller sees the complete head */
        return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
        struct httpd_parser *p = hp->data;
        if (buf_append(&p->body, at, len) < 0)
                return fail(p, 413, "request body too large");
        return 0;
}

static int on_message_complete(http_parser *hp) {
        struct httpd_parser *p = hp->data;
        const char *q;

        p->complete = true;
        p->req.method = http_method_str((enum http_method) hp->method);
        p->req.target = arena_strndup(&p->arena, buf_cstr(&p->url), p->url.len);
        if (!p->req.target)
                return fail(p, 414, "request-target too long");
        if (memchr(p->url.data ? p->url.data : "", 0, p->url.len))
                return fail(p, 400, "malformed request-target");
        q = strchr(p->req.target, '?');
        p->req.path = q ? arena_strndup(&p->arena, p->req.target, (size_t) (q - p->req.target))
                        : p->req.target;
        p->req.query = q ? q + 1 : "";
        if (!p->req.path)
                return fail(p, 414, "request-target too long");
        p->req.body = buf_cstr(&p->body);
        p->req.body_len = p->body.len;
        p->req.version_minor = hp->http_minor;
        /* Upgrades are not supported: answer normally, then close (the client may already be
         * speaking the other protocol). */
        p->req.keep_alive = http_should_keep_alive(hp) != 0 && !hp->upgrade &&
                            !httpd_request_header(&p->req, "Upgrade");
        p->req.arena = &p->arena;
        p->req.remote = p->req.tls_version = p->req.alpn = "";
        /* From here on the arena is the handler's: exactly max_arena more bytes. */
        arena_set_budget(&p->arena, p->limits.max_arena);
        http_parser_pause(hp, 1); /* one request at a time (pipelining) */
        return 0;
}

static void limits_fill(struct httpd_limits *l) {
        if (!l->max_request_line)
                l->max_request_line = HTTPD_DEFAULT_MAX_REQUEST_LINE;
        if (!l->max_header_bytes)
                l->max_header_bytes = HTTPD_DEFAULT_MAX_HEADER_BYTES;
        if (!l->max_headers)
                l->max_headers = HTTPD_DEFAULT_MAX_HEADERS;
        if (!l->max_body)
                l->max_body = HTTPD_DEFAULT_MAX_BODY;
        if (!l->max_response_body)
                l->max_response_body = HTTPD_DEFAULT_MAX_RESPONSE_BODY;
        if (!l->max_arena)
                l->max_arena = HTTPD_DEFAULT_MAX_ARENA;
}

static bool limits_valid(const struct httpd_limits *l) {
        return l->max_request_line <= HTTPD_LIMIT_MAX_REQUEST_LINE &&
               l->max_header_bytes <= HTTPD_LIMIT_MAX_HEADER_BYTES &&
               l->max_headers <= HTTPD_LIMIT_MAX_HEADERS && l->max_body <= HTTPD_LIMIT_MAX_BODY &&
               l->max_response_body <= HTTPD_LIMIT_MAX_BODY && l->max_arena <= HTTPD_LIMIT_MAX_BODY;
}

int httpd_limits_normalize(struct httpd_limits *l) {
        if (!l)
                return -EINVAL;
        limits_fill(l);
        return limits_valid(l) ? 0 : -EINVAL;
}

/* Arena budget for the request's own strings (bounded by the head limits). */
static size_t head_arena_budget(const struct httpd_limits *l) {
        return 2 * (l->max_request_line + l->max_header_bytes) +
               (size_t) l->max_headers * (sizeof(struct httpd_header) + 2 * sizeof(max_align_t));
}

static void parser_reset(struct httpd_parser *p) {
        arena_reset(&p->arena);
        arena_set_budget(&p->arena, head_arena_budget(&p->limits));
        buf_reset(&p->url);
        buf_reset(&p->head);
        /* Keep a modest body buffer around; give big ones back. */
        if (p->body.cap > 64u * 1024u)
                buf_done(&p->body);
        else
                buf_reset(&p->body);
        p->n_headers = 0;
        p->header_content = 0;
        p->hdr = HDR_NONE;
        p->head_raw = 0;
        p->in_request = p->headers_done = p->want_continue = p->continue_sent = p->complete = false;
        p->req = (struct httpd_request){0};
}

int httpd_parser_new(const struct httpd_limits *limits, struct httpd_parser **ret) {
        struct httpd_parser *p;
        struct httpd_limits l = limits ? *limits : (struct httpd_limits){0};

        if (!ret)
                return -EINVAL;
        if (httpd_limits_normalize(&l) < 0)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->limits = l;
        arena_init(&p->arena, head_arena_budget(&l), ARENA_WIPE);
        buf_init(&p->url, l.max_request_line, 0);
        buf_init(&p->head, l.max_header_bytes + 2u * l.max_headers, 0);
        buf_init(&p->body, l.max_body, 0);
        http_parser_settings_init(&p->settings);
        p->settings.on_message_begin = on_message_begin;
        p->settings.on_url = on_url;
        p->settings.on_header_field = on_header_field;
        p->settings.on_header_value = on_header_value;
        p->settings.on_headers_complete = on_headers_complete;
        p->settings.on_body = on_body;
        p->settings.on_message_complete = on_message_complete;
        http_parser_init(&p->hp, HTTP_REQUEST);
        p->hp.data = p;
        *ret = p;
        return 0;
}

struct httpd_parser *httpd_parser_free(struct httpd_parser *p) {
        if (!p)
                return NULL;
        arena_done(&p->arena);
        buf_done(&p->url);
        buf_done(&p->head);
        buf_done(&p->body);
        free(p);
        return NULL;
}

static const char *parse_error_message(enum http_errno e) {
        switch (e) {
        case HPE_INVALID_METHOD:
                return "unknown method";
        case HPE_INVALID_VERSION:
                return "invalid HTTP version";
        case HPE_INVALID_URL:
                return "invalid request-target";
        case HPE_INVALID_HEADER_TOKEN:
                return "invalid character in a header field";
        case HPE_INVALID_CONTENT_LENGTH:
        case HPE_UNEXPECTED_CONTENT_LENGTH:
                return "invalid Content-Length";
        case HPE_INVALID_TRANSFER_ENCODING:
                return "invalid Transfer-Encoding";
        case HPE_INVALID_CHUNK_SIZE:
                return "invalid chunk size";
        case HPE_HEADER_OVERFLOW:
                return "request header fields too large";
        default:
                return "malformed request";
        }
}

int httpd_parser_feed(struct httpd_parser *p, const void *data, size_t len, size_t *ret_consumed) {
        const char *d = data;
        size_t used = 0, head_limit;

        if (!p || !data || len == 0 || !ret_consumed)
                return -EINVAL;
        if (p->error_status) {
                *ret_consumed = 0;
                return HTTPD_PARSE_ERROR;
        }
        if (p->complete) {
                *ret_consumed = 0;
                return HTTPD_PARSE_REQUEST;
        }
        head_limit = p->limits.max_request_line + p->limits.max_header_bytes;
        while (used < len) {
                /* While in the head, give the parser at most one byte past the head limit, so
                 * the limit is found at the same byte however the stream is split. */
                bool in_head = !p->headers_done;
                size_t give = len - used;
                if (in_head)
                        give = MIN(give, head_limit + 1 - p->head_raw);
                size_t n = http_parser_execute(&p->hp, &p->settings, d + used, give);
                enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);

                used += n;
                if (in_head)
                        p->head_raw += n; /* exact: the parser pauses at the end of the head */
                if (e != HPE_OK && e != HPE_PAUSED) {
                        if (!p->error_status) {
                                p->error_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
                                p->error_message = parse_error_message(e);
                        }
                        *ret_consumed = used;
                        return HTTPD_PARSE_ERROR;
                }
                if (in_head && p->head_raw > head_limit) {
                        (void) fail(p, 431, "request head too large");
                        *ret_consumed = used;
                        return HTTPD_PARSE_ERROR;
                }
                if (e == HPE_PAUSED) {
                        http_parser_pause(&p->hp, 0);
                        if (p->complete) {
                                *ret_consumed = used;
                                return HTTPD_PARSE_REQUEST;
                        }
                        if (p->want_continue && !p->continue_sent) {
                                p->continue_sent = true;
                                *ret_consumed = used;
                                return HTTPD_PARSE_CONTINUE;
                        }
                        continue; /* head done: go on with the body */
                }
                if (n == 0)
                        break; /* no progress without an error: defensive */
        }
        *ret_consumed = used;
        return HTTPD_PARSE_MORE;
}

const struct httpd_request *httpd_parser_request(const struct httpd_parser *p) {
        return p && p->complete && !p->error_status ? &p->req : NULL;
}

int httpd_parser_error(const struct httpd_parser *p, const char **ret_message) {
        if (!p || !p->error_status)
                return 0;
        if (ret_message)
                *ret_message = p->error_message;
        return p->error_status;
}

bool httpd_parser_in_request(const struct httpd_parser *p) {
        return p && p->in_request && !p->complete;
}

void httpd_parser_next(struct httpd_parser *p) {
        if (p && !p->error_status)
                parser_reset(p);
}
