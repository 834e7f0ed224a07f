/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: a small HTTP/1.1 server (HTTPS through common/tls, or plain HTTP for health and
 * metrics) for the operator's webhook and the broker. One epoll event loop per thread; requests
 * are parsed by common/httpd-parser.h (which states what a request handed to the handler
 * guarantees), allocated from a per-request arena (common/arena.h) and answered by one
 * synchronous handler callback, or later from another thread (httpd_defer()). See docs/httpd.md.
 *
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

#include "common/arena.h"
#include "common/buf.h"
#include "common/httpd-parser.h"

struct tls_server;
struct tls_conn;
struct httpd;

/* ---- responses (requests, limits and the parser: common/httpd-parser.h) ------------------ */

/* The request's arena (common/arena.h), under the names handlers used before it was a module. */
static inline void *httpd_arena_alloc(struct arena *a, size_t n) {
        return arena_alloc(a, n);
}
static inline char *httpd_arena_strdup(struct arena *a, const char *s) {
        return arena_strdup(a, s);
}

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
        void *owner; /* the connection, during the handler call only (httpd_defer()) */
        struct arena *arena;
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
 * the loop serves nobody else meanwhile (a handler that must wait: httpd_defer() below).
 */
typedef int (*httpd_handler_t)(void *userdata, const struct httpd_request *req,
                               struct httpd_response *resp);

/* ---- deferred responses (see "Deferred responses" in docs/httpd.md) -------------------- */

/*
 * A request whose answer comes later, from another thread, while its loop goes on serving
 * everybody else (the operator's registry lookups). Ownership: the handle has two owners, the
 * server (until the request is answered, times out or its connection goes) and the completer
 * (until it calls httpd_deferred_complete() or httpd_deferred_drop(), exactly once). Every
 * completer handle must be released before httpd_free() (stop the loops, then finish or drop
 * the work that holds handles, then free the server).
 */
struct httpd_deferred;

/*
 * Parks the request being handled: call it from the handler, which then returns 0. resp, as the
 * handler leaves it, is the FALLBACK answer: sent when deadline_ms (counted from the request's
 * start_usec) passes before the completion, or when the server stops; a parked request is also
 * answered with it by httpd_deferred_drop(). While parked, the connection reads nothing (a
 * pipelined request waits); its client closing it (EOF, reset) cancels the request. The request
 * (req, its body and arena) is valid only during the handler call: copy what the completer
 * needs. -EINVAL outside a handler call or when the request is already parked; *ret: the
 * completer's handle.
 */
int httpd_defer(struct httpd_response *resp, uint32_t deadline_ms, struct httpd_deferred **ret);

/*
 * From any thread, once: the answer (status 200..599, content_type a static string or NULL as
 * in httpd_response, body copied, at most limits.max_response_body bytes) is handed to the
 * request's loop, which sends it. Releases the completer's handle. 0 when the request was still
 * parked; -ECANCELED when it is gone (timed out, client gone, server stopped: nothing is sent);
 * -EINVAL bad status or content type, -E2BIG body over the limit, -ENOMEM (the request is then
 * answered with a bare 500).
 */
int httpd_deferred_complete(struct httpd_deferred *d, int status, const char *content_type,
                            const void *body, size_t len);

/* From any thread, once, instead of httpd_deferred_complete(): gives up; a request still
 * parked is answered with its fallback now. Accepts NULL. */
void httpd_deferred_drop(struct httpd_deferred *d);

/* True once nobody waits for the answer any more (timed out, client gone, server stopped):
 * the completer may skip its work (and still calls httpd_deferred_drop()). Thread-safe. */
bool httpd_deferred_cancelled(const struct httpd_deferred *d);

/* ---- the server ------------------------------------------------------------------------ */

struct httpd_options {
        const char *address;    /* "host:port": ":8081" (all addresses, IPv6 dual-stack or
                                 * IPv4), "127.0.0.1:0", "[::1]:9443", "localhost:8080";
                                 * port 0 picks a free port (httpd_port()) */
        struct tls_server *tls; /* borrowed (must outlive the server); NULL: plain HTTP */
        httpd_handler_t handler;
        void *userdata;
        struct httpd_limits limits; /* zero fields: defaults */
        /* Connection slots (see "Connection admission" in docs/httpd.md). A TLS connection takes
         * a handshake slot at accept() and an established slot only once its handshake is
         * complete, so clients that connect and never handshake cannot take the slots of
         * those that do (the API server). A connection over a limit is closed at once and
         * counted in connections_rejected. */
        unsigned max_connections;            /* established connections over all loops (plain
                                              * HTTP: every connection); default 256 */
        unsigned max_handshakes;             /* TLS connections still in their handshake, over
                                              * all loops (a pool apart from max_connections);
                                              * default 64 */
        unsigned max_connections_per_client; /* established connections from one client
                                              * address; default 3/4 of max_connections, so a
                                              * quarter always stays for everybody else */
        unsigned max_handshakes_per_client;  /* a client address's share of the handshake pool;
                                              * default max_handshakes / 4 (at least 1). While
                                              * the pool has room a client may take more (a
                                              * burst of new connections); when it is full, a
                                              * client at its share is refused and a client
                                              * under it takes the slot of the oldest handshake
                                              * of the client most over its share */
        uint32_t handshake_timeout_ms;       /* a TLS handshake not complete this long after
                                              * accept() is closed; default 3 s */
        unsigned max_requests_per_conn;      /* then `Connection: close`; default 1000 */
        uint32_t read_timeout_ms;            /* longest silence inside a request or the TLS
                                              * handshake; default 10 s */
        uint32_t request_timeout_ms;         /* a whole request from its first byte (a new
                                              * connection: from accept, handshake included);
                                              * default 30 s */
        uint32_t idle_timeout_ms;            /* keep-alive wait for the next request; 60 s */
        uint32_t write_timeout_ms;           /* longest stall while writing a response; 10 s */
        uint32_t stop_timeout_ms;            /* graceful stop: time left to requests in flight;
                                              * default 5 s */
        int backlog;                         /* listen() backlog; default 512 */
};

/* Counters (monotonic unless said otherwise), over all loops. */
struct httpd_stats {
        uint64_t connections_accepted;
        uint64_t connections_rejected; /* over a slot limit (any of the four): closed right after
                                        * accept, or right after the handshake */
        uint64_t connections_rejected_per_client; /* of those, over a per-client limit */
        uint64_t connections_active;      /* gauge: open connections (handshaking included) */
        uint64_t connections_handshaking; /* gauge: TLS connections still in the handshake */
        uint64_t handshake_timeouts;      /* closed at handshake_timeout_ms (also in timeouts) */
        uint64_t handshakes_evicted;      /* handshakes closed to make room for another client */
        uint64_t tls_handshake_failures;
        uint64_t timeouts;      /* connections dropped by a timeout (any kind) */
        uint64_t requests;      /* complete requests handed to the handler */
        uint64_t responses[6];  /* by status class: [1] 1xx (100 Continue) ... [5] 5xx */
        uint64_t client_errors; /* requests refused by the server itself (400/413/414/...) */
        uint64_t handler_errors;
        uint64_t bytes_in, bytes_out; /* on the sockets (TLS records included) */
        uint64_t deferred;            /* requests parked with httpd_defer() */
        uint64_t deferred_active;     /* gauge: parked now */
        uint64_t deferred_timeouts;   /* answered with their fallback at the deadline */
        uint64_t deferred_cancelled;  /* their client went away while parked */
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

static inline void httpd_freep(struct httpd **h) {
        httpd_free(*h);
}
#define _cleanup_httpd_ __attribute__((cleanup(httpd_freep)))
