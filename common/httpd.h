/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: a small HTTP/1.1 server (HTTPS through common/tls, or plain HTTP for health and
 * metrics) for the operator's webhook and the broker. One epoll event loop per thread; requests
 * are parsed by http-parser (Node's parser, Debian's http-parser package; only httpd.c includes
 * it) and answered by one synchronous handler callback. See docs/httpd.md.
 *
 * What the server guarantees to the handler: a complete, well-formed request (method, target,
 * headers, whole body) within the limits below; HTTP/1.0 and 1.1 only; for HTTP/1.1 exactly one
 * Host header; never both Content-Length and Transfer-Encoding; bodies are de-chunked.
 * What it guarantees to clients: every response carries Content-Length (except 204/304, which
 * have no body) and a Date; keep-alive and pipelining (requests are answered in order, one at a
 * time); `Expect: 100-continue` is honoured; limits are answered with a clear status and text and
 * the connection is then closed: 400 malformed, 413 body over the limit, 414 request-target over
 * the limit, 431 header section over the limit, 417 unknown Expect, 505 HTTP version, 405 CONNECT.
 * Slow clients are dropped at timeouts (read gap, whole request, idle keep-alive, write
 * progress) without delaying anybody else.
 *
 * Conventions: 0 / a count on success, -errno on failure; common/ never logs: failures are
 * counted in struct httpd_stats.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"

struct tls_server;
struct tls_conn;
struct httpd;
struct httpd_parser;
struct httpd_arena;

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

/* ---- requests and responses -------------------------------------------------------------- */

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

        struct httpd_arena *arena; /* for the handler's own allocations, see httpd_arena_alloc() */
};

/* First header named `name` (case-insensitive), or NULL. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/* Allocates n bytes (aligned for any type, not zeroed) freed when the request ends. NULL when the
 * arena's budget (limits.max_arena) is exhausted or memory is short. */
void *httpd_arena_alloc(struct httpd_arena *a, size_t n);
char *httpd_arena_strdup(struct httpd_arena *a, const char *s);

/*
 * The response a handler fills. The server initialises it before each call: status 200, no
 * content type, empty body (bounded by limits.max_response_body: buf_* appends past it fail with
 * -E2BIG), no extra headers, close false.
 */
struct httpd_response {
        int status;               /* 200..599 (anything else becomes 500) */
        const char *content_type; /* a static string or one from the request arena; NULL:
                                   * "text/plain; charset=utf-8" when the body is not empty */
        struct buf body;
        bool close; /* send `Connection: close` and close after this response */

        /* private to httpd.c */
        struct httpd_arena *arena;
        struct httpd_header headers[HTTPD_MAX_RESPONSE_HEADERS];
        size_t n_headers;
};

/*
 * Adds a header to the response (both strings copied into the request arena). -EINVAL for a name
 * that is not an RFC 9110 token, a value with CR, LF, NUL or other control characters (HTAB
 * allowed), or a header the server owns (Content-Length, Transfer-Encoding, Connection, Date,
 * Content-Type: use resp->content_type); -E2BIG past HTTPD_MAX_RESPONSE_HEADERS; -ENOMEM.
 */
int httpd_response_add_header(struct httpd_response *resp, const char *name, const char *value);

/* Convenience: status, content type (static or arena) and a copy of the NUL-terminated body. */
int httpd_response_set(struct httpd_response *resp, int status, const char *content_type,
                       const char *body);

/* "OK", "Not Found", ...; "Unknown" for codes without a phrase here. */
const char *httpd_status_reason(int status);

/*
 * The handler. Called on the loop's thread, once per request, in order. Return 0 to send resp;
 * a negative errno sends a bare 500 (counted in handler_errors). With several loops (httpd_run()
 * on several threads) it runs concurrently and must be thread-safe. It should not block for long:
 * the loop serves nobody else meanwhile.
 */
typedef int (*httpd_handler_t)(void *userdata, const struct httpd_request *req,
                               struct httpd_response *resp);

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

/* ---- the server ------------------------------------------------------------------------ */

struct httpd_options {
        const char *address;    /* "host:port": ":8081" (all addresses, IPv6 dual-stack or
                                 * IPv4), "127.0.0.1:0", "[::1]:9443", "localhost:8080";
                                 * port 0 picks a free port (httpd_port()) */
        struct tls_server *tls; /* borrowed (must outlive the server); NULL: plain HTTP */
        httpd_handler_t handler;
        void *userdata;
        struct httpd_limits limits;     /* zero fields: defaults */
        unsigned max_connections;       /* open connections over all loops; default 256 */
        unsigned max_requests_per_conn; /* then `Connection: close`; default 1000 */
        uint32_t read_timeout_ms;       /* longest silence inside a request or the TLS
                                         * handshake; default 10 s */
        uint32_t request_timeout_ms;    /* a whole request from its first byte (a new
                                         * connection: from accept, handshake included);
                                         * default 30 s */
        uint32_t idle_timeout_ms;       /* keep-alive wait for the next request; 60 s */
        uint32_t write_timeout_ms;      /* longest stall while writing a response; 10 s */
        uint32_t stop_timeout_ms;       /* graceful stop: time left to requests in flight;
                                         * default 5 s */
        int backlog;                    /* listen() backlog; default 512 */
};

/* Counters (monotonic unless said otherwise), over all loops. */
struct httpd_stats {
        uint64_t connections_accepted;
        uint64_t connections_rejected; /* over max_connections: closed right after accept */
        uint64_t connections_active;   /* gauge */
        uint64_t tls_handshake_failures;
        uint64_t timeouts;      /* connections dropped by a timeout (any kind) */
        uint64_t requests;      /* complete requests handed to the handler */
        uint64_t responses[6];  /* by status class: [1] 1xx (100 Continue) ... [5] 5xx */
        uint64_t client_errors; /* requests refused by the server itself (400/413/414/...) */
        uint64_t handler_errors;
        uint64_t bytes_in, bytes_out; /* on the sockets (TLS records included) */
};

/*
 * Validates the options, binds and listens (SO_REUSEADDR, CLOEXEC, non-blocking). -EINVAL bad
 * options or address, -EADDRINUSE, other -errno from socket()/bind()/listen(). The options are
 * copied (the tls server is borrowed). *ret: httpd_free().
 */
int httpd_new(const struct httpd_options *o, struct httpd **ret);

/* Stops (if running loops remain, call only after they returned) and frees. Accepts NULL. */
struct httpd *httpd_free(struct httpd *h);

/* The bound port (useful with port 0). */
int httpd_port(const struct httpd *h);

/*
 * Runs one event loop on the calling thread until httpd_stop(). May be called from several
 * threads at once: each runs its own epoll loop and they share the listening socket
 * (EPOLLEXCLUSIVE). Returns 0 after a graceful stop (new connections refused, idle ones closed,
 * requests in flight answered with `Connection: close` within stop_timeout_ms), -errno when the
 * loop cannot run (epoll_create, -ENOMEM).
 */
int httpd_run(struct httpd *h);

/* Asks every loop to stop gracefully. Thread-safe and async-signal-safe. */
void httpd_stop(struct httpd *h);

void httpd_get_stats(const struct httpd *h, struct httpd_stats *ret);

/*
 * Parses a listen address (see httpd_options.address) without any name lookup ("localhost" is
 * 127.0.0.1). ":port" yields the IPv6 wildcard (httpd_new() falls back to IPv4 without IPv6).
 * -EINVAL.
 */
int httpd_parse_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);

static inline void httpd_parser_freep(struct httpd_parser **p) {
        httpd_parser_free(*p);
}
#define _cleanup_httpd_parser_ __attribute__((cleanup(httpd_parser_freep)))
static inline void httpd_freep(struct httpd **h) {
        httpd_free(*h);
}
#define _cleanup_httpd_ __attribute__((cleanup(httpd_freep)))
