/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd-parser: HTTP/1.x requests from bytes (pure: bytes in, requests out; no sockets, no
 * clock). Used by the server (common/httpd.h) and the fuzzer (tests/fuzz/fuzz-httpd.c). The only
 * module that includes http-parser (Node's parser, Debian's http-parser package).
 *
 * What it guarantees: a complete, well-formed request (method, target, headers, whole body)
 * within the limits below; HTTP/1.0 and 1.1 only; for HTTP/1.1 exactly one Host header; never
 * both Content-Length and Transfer-Encoding; bodies are de-chunked; header values are trimmed and
 * contain no control characters but HTAB. Over a limit or malformed, the parser stops with the
 * status to answer (400, 405, 413, 414, 417, 431, 505) and a static one-line explanation.
 *
 * Memory: every string of a request lives in the parser's arena (common/arena.h, ARENA_WIPE),
 * bounded by the head limits; the arena then gives the handler exactly limits.max_arena more
 * bytes, and is reset (wiped) by httpd_parser_next(). The body is a bounded buffer of at most
 * limits.max_body bytes. Not thread-safe: one parser per connection.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct tls_conn;
struct httpd_parser;

/* ---- limits ------------------------------------------------------------------------------ */

struct httpd_limits {
        size_t max_request_line;  /* request-target bytes (414 over it); default 8 KiB */
        size_t max_header_bytes;  /* header names + values (431 over it); default 16 KiB. The
                                   * raw head (request line + header section) may not exceed
                                   * max_request_line + max_header_bytes either (431). */
        unsigned max_headers;     /* header fields (431 over it); default 64 */
        size_t max_body;          /* request body after de-chunking (413 over it); default 1 MiB */
        size_t max_response_body; /* what a handler may put in resp->body; default 8 MiB */
        size_t max_arena;         /* per-request arena for the handler; default 1 MiB */
};

#define HTTPD_DEFAULT_MAX_REQUEST_LINE (8u * 1024u)
#define HTTPD_DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define HTTPD_DEFAULT_MAX_HEADERS 64u
#define HTTPD_DEFAULT_MAX_BODY (1024u * 1024u)
#define HTTPD_DEFAULT_MAX_RESPONSE_BODY (8u * 1024u * 1024u)
#define HTTPD_DEFAULT_MAX_ARENA (1024u * 1024u)
#define HTTPD_MAX_RESPONSE_HEADERS 32u /* extra headers a handler may add */

/* Upper bounds accepted for the limits above (-EINVAL beyond). */
#define HTTPD_LIMIT_MAX_REQUEST_LINE (64u * 1024u)
#define HTTPD_LIMIT_MAX_HEADER_BYTES (256u * 1024u)
#define HTTPD_LIMIT_MAX_HEADERS 1024u
#define HTTPD_LIMIT_MAX_BODY (256u * 1024u * 1024u)

/* Replaces zero fields by the defaults. 0, or -EINVAL when a field is over its HTTPD_LIMIT_*
 * bound. */
int httpd_limits_normalize(struct httpd_limits *l);

/* ---- requests ------------------------------------------------------------------------ */

struct httpd_header {
        const char *name;  /* as received (case kept), NUL-terminated */
        const char *value; /* leading and trailing blanks removed, NUL-terminated */
};

/* A complete request. Every pointer is valid until the handler returns (request arena). */
struct httpd_request {
        const char *method; /* "GET", "POST", ... (http-parser's list; others are 400) */
        const char *target; /* the raw request-target ("/a/b?x=1") */
        const char *path;   /* target up to '?', not percent-decoded */
        const char *query;  /* after '?', "" when none */
        const struct httpd_header *headers;
        size_t n_headers;
        const char *body; /* body_len bytes (de-chunked), followed by a NUL; "" when none */
        size_t body_len;
        unsigned version_minor; /* HTTP/1.<version_minor>: 0 or 1 */
        bool keep_alive;        /* the client asked to keep the connection open */

        /* Filled by the server (zero / "" from httpd_parser_request()). */
        uint64_t start_usec;     /* CLOCK_MONOTONIC when the request's first byte arrived */
        const char *remote;      /* peer address "1.2.3.4:5678" / "[::1]:5678" */
        const char *tls_version; /* "TLSv1.3", "TLSv1.2", "" for plain HTTP */
        const char *alpn;        /* negotiated ALPN protocol or "" */
        uint64_t tls_generation; /* certificate generation the connection serves (0 plain) */
        struct tls_conn *tls;    /* the connection (tls_conn_peer_cert() for mTLS), NULL plain */

        struct arena *arena; /* for the handler's own allocations (common/arena.h): freed, and
                              * wiped, when the request ends; limits.max_arena bytes */
};

/* First header named `name` (case-insensitive), or NULL. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/* RFC 9110 syntax, shared with the response side: a token (header names, non-empty) and a field
 * value (visible ASCII, obs-text, SP, HTAB; no CR, LF, NUL, DEL). */
bool httpd_token_valid(const char *s);
bool httpd_field_value_valid(const char *s, size_t n);

/* ---- the parser layer (pure: bytes in, requests out; used by the server and the fuzzer) ---- */

enum {
        HTTPD_PARSE_MORE = 0,     /* every byte given was consumed; feed more */
        HTTPD_PARSE_CONTINUE = 1, /* head complete with `Expect: 100-continue`: send
                                   * "HTTP/1.1 100 Continue", then keep feeding */
        HTTPD_PARSE_REQUEST = 2,  /* a complete request: httpd_parser_request() */
        HTTPD_PARSE_ERROR = 3,    /* a bad request: httpd_parser_error(); the parser is dead */
};

/* limits: NULL or zero fields take the defaults. -EINVAL limits over the HTTPD_LIMIT_* bounds. */
int httpd_parser_new(const struct httpd_limits *limits, struct httpd_parser **ret);
struct httpd_parser *httpd_parser_free(struct httpd_parser *p);

/*
 * Feeds len (> 0) bytes. *ret_consumed says how many were used; the rest belongs to the next
 * call (pipelined requests: after HTTPD_PARSE_REQUEST, call httpd_parser_next() and feed the
 * rest). While a request is pending (before httpd_parser_next()) and after an error, nothing is
 * consumed and the same result is returned. -EINVAL.
 */
int httpd_parser_feed(struct httpd_parser *p, const void *data, size_t len, size_t *ret_consumed);

/* The pending request (after HTTPD_PARSE_REQUEST), or NULL. Valid until httpd_parser_next(). */
const struct httpd_request *httpd_parser_request(const struct httpd_parser *p);

/* After HTTPD_PARSE_ERROR: the status to answer (400, 405, 413, 414, 417, 431, 505) and a
 * one-line static explanation. Returns 0 when there is no error. */
int httpd_parser_error(const struct httpd_parser *p, const char **ret_message);

/* True when bytes of a request that is not yet complete have been consumed. */
bool httpd_parser_in_request(const struct httpd_parser *p);

/* Releases the pending request and its arena and readies the parser for the next one. */
void httpd_parser_next(struct httpd_parser *p);

static inline void httpd_parser_freep(struct httpd_parser **p) {
        httpd_parser_free(*p);
}
#define _cleanup_httpd_parser_ __attribute__((cleanup(httpd_parser_freep)))
