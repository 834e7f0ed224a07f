/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: a small HTTPS client over libcurl's easy interface (the only module that includes curl).
 *
 * One `struct http_client` talks to one base URL and keeps one CURL handle, so consecutive
 * requests reuse the TLS connection (keep-alive). A client is NOT thread-safe: use it from one
 * thread at a time (one client per thread is fine).
 *
 * Transport policy, always applied:
 *   - only the "https" scheme (plus "http" when http_options.allow_http is set);
 *   - TLS peer and host name verification on unless insecure_skip_verify (the caller logs that);
 *     the CA bundle is ALWAYS given explicitly (a file, or an in-memory PEM installed through the
 *     SSL_CTX callback and tls_ctx_load_ca_pem()): libcurl here has no built-in default bundle,
 *     and a client without any CA and without insecure_skip_verify is refused with -EINVAL;
 *   - TLS 1.2 minimum: the wolfSSL build has no older protocol compiled in (deps/build.sh
 *     --disable-oldtls --disable-tlsv10), and curl's wolfSSL backend would pin EXACTLY 1.2 if we
 *     asked for CURL_SSLVERSION_TLSv1_2, so the default "1.2 or 1.3" negotiation is used;
 *   - redirects are never followed here: a 3xx is returned as is, with its Location header; a
 *     caller that follows one (common/vault, for a Vault standby's 307) re-sends the request with
 *     http_request.url, which must keep the client's scheme and uses the client's trust anchors,
 *     client certificate and headers;
 *   - no signals (CURLOPT_NOSIGNAL), TCP keep-alive, no "Expect: 100-continue".
 *
 * Retries (http_request): up to max_attempts attempts, all under the overall deadline, on
 *   - connection errors: refused, name resolution, timeouts, reset/dropped, empty reply;
 *   - HTTP 429 and 5xx except 501.
 * Never on TLS failures (-EPROTO: a wrong CA does not become a retry storm), 4xx other than 429,
 * -E2BIG, or when http_request.no_retry is set. Between attempts the client sleeps with
 * exponential backoff and FULL jitter: random(0, min(backoff_max, backoff_base * 2^n)) for the
 * n-th retry (n from 0), but at least the server's Retry-After (delta seconds or HTTP-date) when
 * present. When the next sleep would end past the deadline, retrying stops and the last outcome
 * is returned. Each attempt's total timeout is min(request_timeout, time left to the deadline).
 *
 * Secrets: response bodies are stored in BUF_SECURE buffers (they may hold secrets). Header
 * values marked `secret` (e.g. X-Vault-Token) are assembled in secmem and handed to curl by
 * pointer, never through curl_slist_append (which would strdup them into the heap); curl still
 * copies them into its internal send buffer for the duration of the request (libcurl frees that
 * buffer without wiping: a known limit). The error text never contains a header value: it is
 * built from curl's error buffer, filtered to printable ASCII, and discarded in favour of the
 * generic curl message if it contains any secret header value.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Limits. */
#define HTTP_MAX_HEADERS 32                       /* extra headers per client + per request */
#define HTTP_MAX_HEADER_LINE 16384                /* one "Name: value" line we send */
#define HTTP_MAX_BODY_DEFAULT (1024u * 1024u)     /* response body, when max_body is 0 */
#define HTTP_MAX_BODY_LIMIT (64u * 1024u * 1024u) /* upper bound accepted for max_body */
#define HTTP_ERROR_TEXT_MAX 256
#define HTTP_ORIGIN_MAX 320         /* "https://" + a 253-byte host (or [IPv6]) + ":65535" */
#define HTTP_MAX_LOCATION 8192      /* Location: pre-signed blob URLs (ECR through S3) run to KiB */
#define HTTP_MAX_CHALLENGE 4096     /* one WWW-Authenticate field */
#define HTTP_MAX_CHALLENGE_FIELDS 8 /* WWW-Authenticate fields of one response */

/* Defaults used when the corresponding option is 0. */
#define HTTP_CONNECT_TIMEOUT_MS_DEFAULT 5000u
#define HTTP_REQUEST_TIMEOUT_MS_DEFAULT 30000u
#define HTTP_DEADLINE_MS_DEFAULT 60000u
#define HTTP_MAX_ATTEMPTS_DEFAULT 4u
#define HTTP_BACKOFF_BASE_MS_DEFAULT 100u
#define HTTP_BACKOFF_MAX_MS_DEFAULT 5000u

struct http_header {
        const char *name;  /* token characters only, no ':' */
        const char *value; /* no CR/LF/NUL */
        bool secret;       /* value is a secret: kept in secmem, checked out of error texts */
};

/* Test hooks (all optional). Times in microseconds on a monotonic clock. */
struct http_hooks {
        uint64_t (*now_usec)(void *userdata);              /* default: CLOCK_MONOTONIC */
        void (*sleep_usec)(void *userdata, uint64_t usec); /* default: nanosleep */
        void *userdata;
};

struct http_options {
        /* "https://host[:port][/prefix]" ("http://" only with allow_http). Required. A trailing
         * '/' is dropped; request paths are appended to it. */
        const char *base_url;
        bool allow_http;

        /* Trust: exactly one of ca_file / ca_pem, unless insecure_skip_verify (or plain http).
         * ca_pem is copied (it is public, kept in ordinary memory). */
        const char *ca_file;
        const char *ca_pem;
        size_t ca_pem_len;
        bool insecure_skip_verify; /* disables peer AND host verification; the caller logs it */

        /* Optional client certificate (mTLS), both PEM, in memory; copied into secmem (the key
         * is secret) and installed on each new TLS context through tls_ctx_use_client_cert_pem. */
        const char *client_cert_pem;
        size_t client_cert_pem_len;
        const char *client_key_pem;
        size_t client_key_pem_len;

        /* Connect through this unix socket instead of TCP (the URL still names the host for the
         * Host header and TLS). */
        const char *unix_socket;

        /* Proxy URL, or NULL for a direct connection: the environment (https_proxy, ...) is
         * always ignored, so traffic to Vault never silently goes through a proxy. */
        const char *proxy;

        unsigned connect_timeout_ms; /* per connection attempt */
        unsigned request_timeout_ms; /* per attempt, whole transfer */
        unsigned deadline_ms;        /* overall, all attempts and sleeps included */
        size_t max_body;             /* response body limit (1..HTTP_MAX_BODY_LIMIT) */

        unsigned max_attempts; /* total attempts including the first; 1 disables retries */
        unsigned backoff_base_ms;
        unsigned backoff_max_ms;

        /* Sent with every request (copied). At most HTTP_MAX_HEADERS together with the request's.
         */
        const struct http_header *headers;
        size_t n_headers;
        const char *user_agent; /* default "cloudtaser" */

        struct http_hooks hooks;
};

enum http_method {
        HTTP_GET,
        HTTP_POST,
        HTTP_PUT,
        HTTP_PATCH,
        HTTP_DELETE,
        HTTP_LIST, /* Vault's LIST verb */
        HTTP_HEAD,
        _HTTP_METHOD_MAX,
};

struct http_request {
        enum http_method method;
        const char *path;         /* begins with '/', already percent-encoded; no spaces/controls */
        const char *query;        /* without '?', already encoded; NULL for none */
        const struct buf *body;   /* NULL for none; secrets belong in a BUF_SECURE buffer */
        const char *content_type; /* default "application/json" when there is a body */
        const struct http_header *headers;
        size_t n_headers;
        bool no_retry; /* exactly one attempt */
        /* An absolute URL used instead of base_url + path + query (a redirect being followed):
         * same scheme as base_url, no fragment, at most 8 KiB; path and query are then ignored.
         * Not allowed on a client with a unix_socket (-EINVAL). NULL: the usual URL. */
        const char *url;
        /* Overall deadline of this request on the client's clock (http_client_now_usec), 0 for
         * now + deadline_ms: lets a caller that makes several requests keep one deadline. */
        uint64_t deadline_usec;
        /* AWS Signature Version 4 (libcurl's CURLOPT_AWS_SIGV4), NULL for none: the request is
         * signed with the access key pair for "aws:amz:<region>:<service>" (at most 64 bytes a
         * part). Every header of the request (the client's, the request's, Content-Type) is
         * signed, with Host and the X-Amz-Date curl adds; a temporary credential's session token
         * goes in as an "X-Amz-Security-Token" header marked secret. The signature covers the
         * method, the path and query as given (already canonical: callers send POST to "/"),
         * and the SHA-256 of the body. "Expect:" is not sent on signed requests (a header named
         * in SignedHeaders must be sent). -EINVAL when a key or the scope is missing or
         * malformed. The secret key is also a secret for the error text; libcurl copies it (and
         * the key id) into its heap for the request without wiping it: the limit named above.
         * The libcurl build must not be configured --disable-crypto-auth (deps/build.sh). */
        const char *aws_sigv4;
        const char *aws_access_key_id;
        const char *aws_secret_access_key;
        /* A streamed answer (a Kubernetes watch), NULL for none: the body of a 2xx answer is
         * handed to on_body as it arrives, in pieces of any size and split anywhere, and not kept
         * (the response's body stays empty; max_body does not apply: on_body bounds what it
         * keeps). The body of any other answer is kept as usual. A negative return from on_body
         * ends the transfer, and http_request() returns it. A streamed request is made once
         * (no_retry implied), and lasts at most stream_timeout_ms (0: the client's
         * request_timeout_ms) in place of the client's timeout and deadline. */
        int (*on_body)(void *userdata, const void *data, size_t len);
        void *on_body_userdata;
        unsigned stream_timeout_ms;
        /* Polled while the transfer is under way (about once a second, also while the server is
         * silent), NULL for never: true ends the transfer, and http_request() returns
         * -ECANCELED. */
        bool (*cancelled)(void *userdata);
        void *cancelled_userdata;
};

/* A received response. Release with http_response_done(). */
struct http_response {
        long status;
        struct buf body; /* BUF_SECURE, bounded by the client's max_body */
        /* Selected headers of the final response, truncated to fit, "" when absent. */
        char content_type[128];
        char retry_after[64];
        /* Location, never truncated: a value over HTTP_MAX_LOCATION bytes leaves it empty and sets
         * location_overflow. Read with buf_cstr() ("" when absent). */
        struct buf location;
        /* Every WWW-Authenticate field in order, joined with ", " (the fields form one list of
         * challenges, RFC 9110 11.6.1), never truncated: a field over HTTP_MAX_CHALLENGE bytes or
         * more than HTTP_MAX_CHALLENGE_FIELDS fields leave it empty and set challenge_overflow. */
        struct buf www_authenticate;
        unsigned n_challenges; /* WWW-Authenticate fields kept */
        bool location_overflow;
        bool challenge_overflow;
};

/* What happened, for error reporting. Caller-owned; always filled by http_request(). */
struct http_result {
        long status;         /* status of the last attempt's response, 0 if it got none */
        int error;           /* -errno of the last attempt's failure, 0 if it got a response */
        int curl_code;       /* CURLcode of the last attempt (0 = CURLE_OK) */
        unsigned attempts;   /* attempts made (>= 1 once a request was tried) */
        unsigned connects;   /* new connections opened over all attempts */
        uint64_t slept_usec; /* total backoff sleep */
        char error_text[HTTP_ERROR_TEXT_MAX]; /* short, printable, never a header value; "" if none
                                               */
};

struct http_client;

/* Creates a client. -EINVAL for bad options (scheme not allowed, no CA while verifying, both CA
 * sources, max_body out of range, too many or malformed headers), -ENOMEM, -EIO when libcurl
 * cannot be initialised. *ret is owned by the caller: http_client_free(). */
int http_client_new(const struct http_options *opts, struct http_client **ret);

/* Frees the client (wipes the secure copies). Accepts NULL. Returns NULL. */
struct http_client *http_client_free(struct http_client *c);

/*
 * Performs a request, retrying as described above. Returns:
 *   0        a response was received (ANY status, including 4xx/5xx after retries ran out);
 *            *ret is initialised and owned by the caller (http_response_done()).
 *   -E2BIG   the response body exceeded max_body (never retried);
 *   -EINVAL  bad request fields (path not starting with '/', control characters, bad headers);
 *   -ECANCELED the request's cancelled() said so; on_body's own negative return;
 *   -ECONNREFUSED, -EHOSTUNREACH (name resolution), -ETIMEDOUT (also when the deadline passed
 *            before any response), -ECONNRESET (reset, dropped, empty reply), -EPROTO (TLS
 *            failure: handshake, verification, CA), -EBADMSG (malformed HTTP), -ENOMEM, -EIO.
 * *ret is written only on success. *result (optional) is always filled.
 */
int http_request(struct http_client *c, const struct http_request *req, struct http_response *ret,
                 struct http_result *result);

/* Releases the body (wiping it). Accepts a zeroed or already released response. */
void http_response_done(struct http_response *r);

/* Whether a status would be retried (429, 5xx except 501). */
bool http_status_is_retryable(long status);

/* Parses a Retry-After value (delta seconds or IMF-fixdate/RFC 850/asctime date) into seconds
 * from `now_unix`, clamped to [0, 86400]. -EINVAL when unparsable. */
int http_parse_retry_after(const char *value, int64_t now_unix, uint64_t *ret_seconds);

/* Appends s to b percent-encoding everything except unreserved characters (RFC 3986
 * ALPHA / DIGIT / "-" / "." / "_" / "~") and, when keep_slash, '/'. -E2BIG, -ENOMEM. */
int http_append_escaped(struct buf *b, const char *s, bool keep_slash);

/* Whether the server at origin ("https://host[:port]", port 443 by default) speaks plain HTTP
 * where TLS was expected: connects over TCP (no proxy; at most timeout_ms in all), sends the
 * start of a TLS handshake record followed by an empty line, and reads the first five bytes of
 * the reply. 1 when they are "HTTP/" (a plain-HTTP server refusing a malformed request); 0 for
 * anything else: a TLS server (an alert, a close), no connection, no answer in time. A failed
 * certificate verification is thus never a 1: a TLS server answers TLS. -EINVAL for a malformed
 * origin, -ENOMEM, -EIO. For a caller's HTTP fallback (the operator's insecure registries), which
 * must only be taken when the peer does not speak TLS. */
int http_probe_plain_http(const char *origin, unsigned timeout_ms);

/* Changes the time limits and attempts of later requests (0 keeps a value): e.g. generous for a
 * program's start, short once it must stay responsive. -EINVAL for a NULL client. */
int http_client_set_limits(struct http_client *c, unsigned request_timeout_ms, unsigned deadline_ms,
                           unsigned max_attempts);

/* Number of new connections the client's handle opened in its lifetime (keep-alive checks). */
unsigned http_client_connects(const struct http_client *c);

/* The client's monotonic clock (the now_usec hook, else CLOCK_MONOTONIC), in microseconds. */
uint64_t http_client_now_usec(const struct http_client *c);
/* now + the client's deadline_ms: the deadline_usec a request started now would get. */
uint64_t http_client_deadline_usec(const struct http_client *c);

/* Sleeps the backoff before retry number `retry` (0 for the first retry) with the same policy as
 * http_request's own retries (full jitter: random(0, min(backoff_max, backoff_base * 2^retry))),
 * but at least min_usec, through the sleep hook. -ETIMEDOUT without sleeping when the sleep
 * would end at or past deadline_usec. For callers that retry on answers this module does not
 * retry by itself (Vault's 412, a 403 just after a login). */
int http_client_backoff(struct http_client *c, unsigned retry, uint64_t min_usec,
                        uint64_t deadline_usec);

/* The origin of an absolute http(s) URL, normalised for comparison: "scheme://host:port" with
 * scheme and host in lower case and the default port (443, 80) made explicit; IPv6 hosts stay in
 * brackets. -EINVAL for a relative URL, another scheme, user information ("user@host"), an
 * empty or malformed host or port; -E2BIG when it does not fit in size (HTTP_ORIGIN_MAX fits
 * every valid origin). ret is written only on success. */
int http_url_origin(const char *url, char *ret, size_t size);

static inline void http_client_freep(struct http_client **c) {
        http_client_free(*c);
}
#define _cleanup_http_client_ __attribute__((cleanup(http_client_freep)))
static inline void http_response_donep(struct http_response *r) {
        http_response_done(r);
}
#define _cleanup_http_response_ __attribute__((cleanup(http_response_donep)))
