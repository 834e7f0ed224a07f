/* SPDX-License-Identifier: Apache-2.0 */
/* http: see http.h for the contract. The only module that includes libcurl. */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/transport.h"

#define MAX_URL (2 * HTTP_MAX_LOCATION) /* a redirect target, and then some */
#define MAX_HEADER_NAME 256

struct owned_header {
        char *name;  /* malloc */
        char *value; /* secmem when secret, else malloc */
        bool secret;
};

struct http_client {
        CURL *curl;
        char *base_url;
        bool allow_http;
        char *ca_file;
        char *ca_pem;
        size_t ca_pem_len;
        char *cert_pem; /* secmem */
        size_t cert_pem_len;
        char *key_pem; /* secmem */
        size_t key_pem_len;
        bool insecure;
        char *unix_socket;
        char *proxy;
        char *user_agent;
        unsigned connect_timeout_ms, request_timeout_ms, deadline_ms;
        unsigned max_attempts, backoff_base_ms, backoff_max_ms;
        size_t max_body;
        struct owned_header headers[HTTP_MAX_HEADERS];
        size_t n_headers;
        struct http_hooks hooks;
        uint64_t rng;
        unsigned connects;
        /* The current transfer's host when it is an IP address (tls_ctx_verify_ip() borrows it
         * for the handshakes of that transfer). */
        bool peer_is_ip;
        struct tls_ip peer_ip;
        char errbuf[CURL_ERROR_SIZE];
};

/* Per-attempt transfer state handed to the curl callbacks. */
struct xfer {
        struct http_response *resp;
        const struct http_request *req;
        CURL *curl;
        int stream_error; /* on_body's negative return */
        bool too_big;
        bool oom;
        bool cancelled;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

/* libcurl's memory. For every request curl takes and frees a 16 KiB receive buffer and a 64 KiB
 * send buffer (curl 7.88, multi_done()); musl's allocator serves each from a single-slot group
 * that it maps and unmaps at once, so every request paid 4 system calls and ~22 page faults
 * for them (the wrapper's start-up makes three requests: docs/benchmarks.md). Blocks of at
 * least BLOCK_CACHE_MIN bytes that curl frees are kept, up to BLOCK_CACHE_SLOTS of them, and
 * given back to curl for the next request of that size. Each block carries its size in a
 * 16-byte header (keeps malloc's alignment). Nothing else in the process sees these blocks;
 * what they hold is what curl's own free() would have left in the heap. */
#define BLOCK_CACHE_MIN (16u * 1024u)
#define BLOCK_CACHE_SLOTS 4
#define BLOCK_HDR 16u

static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static void *block_cache[BLOCK_CACHE_SLOTS]; /* headers of free blocks */

static size_t block_size(const void *h) {
        size_t n;
        memcpy(&n, h, sizeof(n));
        return n;
}

static void *block_user(void *h, size_t n) {
        memcpy(h, &n, sizeof(n));
        return (char *) h + BLOCK_HDR;
}

static void *curl_malloc_cb(size_t n) {
        if (n > SIZE_MAX - BLOCK_HDR)
                return NULL;
        if (n >= BLOCK_CACHE_MIN) {
                void *h = NULL;
                pthread_mutex_lock(&block_lock);
                for (size_t i = 0; i < BLOCK_CACHE_SLOTS && !h; i++)
                        if (block_cache[i] && block_size(block_cache[i]) == n) {
                                h = block_cache[i];
                                block_cache[i] = NULL;
                        }
                pthread_mutex_unlock(&block_lock);
                if (h)
                        return block_user(h, n);
        }
        void *h = malloc(n + BLOCK_HDR);
        return h ? block_user(h, n) : NULL;
}

static void curl_free_cb(void *p) {
        if (!p)
                return;
        void *h = (char *) p - BLOCK_HDR;
        if (block_size(h) >= BLOCK_CACHE_MIN) {
                pthread_mutex_lock(&block_lock);
                for (size_t i = 0; i < BLOCK_CACHE_SLOTS && h; i++)
                        if (!block_cache[i]) {
                                block_cache[i] = h;
                                h = NULL;
                        }
                pthread_mutex_unlock(&block_lock);
        }
        free(h);
}

static void *curl_realloc_cb(void *p, size_t n) {
        if (!p)
                return curl_malloc_cb(n);
        if (n > SIZE_MAX - BLOCK_HDR)
                return NULL;
        void *h = realloc((char *) p - BLOCK_HDR, n + BLOCK_HDR);
        return h ? block_user(h, n) : NULL;
}

static void *curl_calloc_cb(size_t nmemb, size_t size) {
        if (size && nmemb > SIZE_MAX / size)
                return NULL;
        void *p = curl_malloc_cb(nmemb * size);
        if (p)
                memset(p, 0, nmemb * size);
        return p;
}

static char *curl_strdup_cb(const char *s) {
        size_t n = strlen(s) + 1;
        char *p = curl_malloc_cb(n);
        if (p)
                memcpy(p, s, n);
        return p;
}

static void global_init(void) {
        global_result = curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc_cb, curl_free_cb,
                                             curl_realloc_cb, curl_strdup_cb, curl_calloc_cb);
}

static uint64_t default_now_usec(void *userdata) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void default_sleep_usec(void *userdata, uint64_t usec) {
        struct timespec ts = {.tv_sec = (time_t) (usec / 1000000u),
                              .tv_nsec = (long) (usec % 1000000u) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t now_usec(const struct http_client *c) {
        return c->hooks.now_usec(c->hooks.userdata);
}

/* splitmix64: only for jitter, seeded from getrandom(). */
static uint64_t next_random(struct http_client *c) {
        uint64_t z = (c->rng += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static bool is_token_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool header_name_valid(const char *s) {
        size_t n = 0;
        if (!s)
                return false;
        for (; s[n]; n++)
                if (!is_token_char(s[n]) || n >= MAX_HEADER_NAME)
                        return false;
        return n > 0;
}

static bool header_value_valid(const char *s) {
        if (!s)
                return false;
        for (size_t n = 0; s[n]; n++) {
                unsigned char ch = (unsigned char) s[n];
                if ((ch < 0x20 && ch != '\t') || ch == 0x7f || n >= HTTP_MAX_HEADER_LINE)
                        return false;
        }
        return true;
}

/* Printable ASCII except space ranges given; for URLs pieces. */
static bool url_part_valid(const char *s, const char *forbidden) {
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch <= 0x20 || ch >= 0x7f || strchr(forbidden, ch))
                        return false;
        }
        return true;
}

static void owned_header_clear(struct owned_header *h) {
        free(h->name);
        if (h->secret)
                secmem_free(h->value);
        else
                free(h->value);
        *h = (struct owned_header){};
}

struct http_client *http_client_free(struct http_client *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->base_url);
        free(c->ca_file);
        free(c->ca_pem);
        secmem_free(c->cert_pem);
        secmem_free(c->key_pem);
        free(c->unix_socket);
        free(c->proxy);
        free(c->user_agent);
        for (size_t i = 0; i < c->n_headers; i++)
                owned_header_clear(&c->headers[i]);
        free(c);
        return NULL;
}

static int dup_opt(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int secure_copy(const char *p, size_t n, char **ret) {
        char *q;
        int r = secmem_alloc(n + 1, (void **) &q);
        if (r < 0)
                return r;
        memcpy(q, p, n);
        q[n] = '\0';
        *ret = q;
        return 0;
}

int http_client_new(const struct http_options *o, struct http_client **ret) {
        _cleanup_(http_client_freep) struct http_client *c = NULL;
        size_t n;
        int r;

        if (!o || !o->base_url || !ret)
                return -EINVAL;

        (void) pthread_once(&global_once, global_init);
        if (global_result != CURLE_OK)
                return -EIO;

        bool https = strncasecmp(o->base_url, "https://", 8) == 0;
        bool http = strncasecmp(o->base_url, "http://", 7) == 0;
        if (!https && !(http && o->allow_http))
                return -EINVAL;
        n = strlen(o->base_url);
        if (n > MAX_URL / 2 || !url_part_valid(o->base_url, "?#"))
                return -EINVAL;
        if (!!o->ca_file + !!o->ca_pem > 1)
                return -EINVAL;
        if (https && !o->ca_file && !o->ca_pem && !o->insecure_skip_verify)
                return -EINVAL;
        if (o->ca_pem && o->ca_pem_len == 0)
                return -EINVAL;
        if (!!o->client_cert_pem != !!o->client_key_pem)
                return -EINVAL;
        if (o->client_cert_pem && (o->client_cert_pem_len == 0 || o->client_key_pem_len == 0))
                return -EINVAL;
        if (o->max_body > HTTP_MAX_BODY_LIMIT)
                return -EINVAL;
        if (o->n_headers > HTTP_MAX_HEADERS || (o->n_headers > 0 && !o->headers))
                return -EINVAL;
        for (size_t i = 0; i < o->n_headers; i++)
                if (!header_name_valid(o->headers[i].name) ||
                    !header_value_valid(o->headers[i].value))
                        return -EINVAL;
        if (o->user_agent && !header_value_valid(o->user_agent))
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        c->base_url = strndup(o->base_url, n);
        if (!c->base_url)
                return -ENOMEM;
        while (n > 0 && c->base_url[n - 1] == '/')
                c->base_url[--n] = '\0';
        if (n <= (https ? 8u : 7u))
                return -EINVAL; /* no host */

        c->allow_http = o->allow_http;
        c->insecure = o->insecure_skip_verify;
        r = dup_opt(o->ca_file, &c->ca_file);
        if (r < 0)
                return r;
        r = dup_opt(o->unix_socket, &c->unix_socket);
        if (r < 0)
                return r;
        r = dup_opt(o->proxy, &c->proxy);
        if (r < 0)
                return r;
        r = dup_opt(o->user_agent ? o->user_agent : "cloudtaser", &c->user_agent);
        if (r < 0)
                return r;
        if (o->ca_pem) {
                c->ca_pem = malloc(o->ca_pem_len + 1);
                if (!c->ca_pem)
                        return -ENOMEM;
                memcpy(c->ca_pem, o->ca_pem, o->ca_pem_len);
                c->ca_pem[o->ca_pem_len] = '\0';
                c->ca_pem_len = o->ca_pem_len;
        }
        if (o->client_cert_pem) {
                r = secure_copy(o->client_cert_pem, o->client_cert_pem_len, &c->cert_pem);
                if (r < 0)
                        return r;
                c->cert_pem_len = o->client_cert_pem_len;
                r = secure_copy(o->client_key_pem, o->client_key_pem_len, &c->key_pem);
                if (r < 0)
                        return r;
                c->key_pem_len = o->client_key_pem_len;
        }
        for (size_t i = 0; i < o->n_headers; i++) {
                struct owned_header *h = &c->headers[i];
                h->secret = o->headers[i].secret;
                h->name = strdup(o->headers[i].name);
                c->n_headers = i + 1;
                if (!h->name)
                        return -ENOMEM;
                if (h->secret)
                        r = secmem_strndup(o->headers[i].value, SIZE_MAX, &h->value);
                else
                        r = dup_opt(o->headers[i].value, &h->value);
                if (r < 0)
                        return r;
        }

        c->connect_timeout_ms = o->connect_timeout_ms ?: HTTP_CONNECT_TIMEOUT_MS_DEFAULT;
        c->request_timeout_ms = o->request_timeout_ms ?: HTTP_REQUEST_TIMEOUT_MS_DEFAULT;
        c->deadline_ms = o->deadline_ms ?: HTTP_DEADLINE_MS_DEFAULT;
        c->max_attempts = o->max_attempts ?: HTTP_MAX_ATTEMPTS_DEFAULT;
        c->backoff_base_ms = o->backoff_base_ms ?: HTTP_BACKOFF_BASE_MS_DEFAULT;
        c->backoff_max_ms = o->backoff_max_ms ?: HTTP_BACKOFF_MAX_MS_DEFAULT;
        c->max_body = o->max_body ?: HTTP_MAX_BODY_DEFAULT;
        c->hooks = o->hooks;
        if (!c->hooks.now_usec)
                c->hooks.now_usec = default_now_usec;
        if (!c->hooks.sleep_usec)
                c->hooks.sleep_usec = default_sleep_usec;
        if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != (ssize_t) sizeof(c->rng))
                c->rng = default_now_usec(NULL) ^ (uint64_t) (uintptr_t) c;

        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

int http_client_set_limits(struct http_client *c, unsigned request_timeout_ms, unsigned deadline_ms,
                           unsigned max_attempts) {
        if (!c)
                return -EINVAL;
        if (request_timeout_ms)
                c->request_timeout_ms = request_timeout_ms;
        if (deadline_ms)
                c->deadline_ms = deadline_ms;
        if (max_attempts)
                c->max_attempts = max_attempts;
        return 0;
}

unsigned http_client_connects(const struct http_client *c) {
        return c ? c->connects : 0;
}

void http_response_done(struct http_response *r) {
        if (!r)
                return;
        buf_done(&r->body);
        buf_done(&r->location);
        buf_done(&r->www_authenticate);
        r->status = 0;
        r->content_type[0] = r->retry_after[0] = '\0';
        r->location_overflow = r->challenge_overflow = false;
}

bool http_status_is_retryable(long status) {
        return status == 429 || (status >= 500 && status <= 599 && status != 501);
}

int http_parse_retry_after(const char *value, int64_t now_unix, uint64_t *ret_seconds) {
        const uint64_t cap = 86400;
        uint64_t v = 0;
        size_t i = 0;

        if (!value || !ret_seconds)
                return -EINVAL;
        while (value[i] == ' ' || value[i] == '\t')
                i++;
        if (value[i] >= '0' && value[i] <= '9') {
                for (; value[i] >= '0' && value[i] <= '9'; i++)
                        if (v <= cap)
                                v = v * 10 + (uint64_t) (value[i] - '0');
                while (value[i] == ' ' || value[i] == '\t')
                        i++;
                if (value[i] != '\0')
                        return -EINVAL;
                *ret_seconds = MIN(v, cap);
                return 0;
        }
        time_t t = curl_getdate(value + i, NULL);
        if (t == (time_t) -1)
                return -EINVAL;
        int64_t d = (int64_t) t - now_unix;
        *ret_seconds = d <= 0 ? 0 : MIN((uint64_t) d, cap);
        return 0;
}

int http_append_escaped(struct buf *b, const char *s, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        size_t before = b->len;
        int r = 0;

        for (; *s && r >= 0; s++) {
                unsigned char ch = (unsigned char) *s;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
                    (keep_slash && ch == '/'))
                        r = buf_append_byte(b, ch);
                else {
                        char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
                        r = buf_append(b, esc, sizeof(esc));
                }
        }
        if (r < 0)
                buf_truncate(b, before); /* leave the buffer as it was */
        return r;
}

/* --- curl callbacks ---------------------------------------------------------------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct xfer *x = userdata;
        size_t n = size * nmemb;
        int r;
        if (x->req->on_body) {
                /* The body comes after the status line and headers: the status is known. */
                long status = 0;
                (void) curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
                if (status >= 200 && status < 300) {
                        r = x->req->on_body(x->req->on_body_userdata, ptr, n);
                        if (r < 0) {
                                x->stream_error = r;
                                return 0; /* CURLE_WRITE_ERROR */
                        }
                        return n;
                }
        }
        r = buf_append(&x->resp->body, ptr, n);
        if (r == -E2BIG) {
                x->too_big = true;
                return 0;
        }
        if (r < 0) {
                x->oom = true;
                return 0;
        }
        return n;
}

static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
        struct xfer *x = userdata;
        (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
        if (x->req->cancelled(x->req->cancelled_userdata)) {
                x->cancelled = true;
                return 1; /* CURLE_ABORTED_BY_CALLBACK */
        }
        return 0;
}

/* A header value (after the colon) without its surrounding blanks and line end. */
static const char *trim_value(const char *v, size_t *n) {
        while (*n > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                (*n)--;
        }
        while (*n > 0 &&
               (v[*n - 1] == '\r' || v[*n - 1] == '\n' || v[*n - 1] == ' ' || v[*n - 1] == '\t'))
                (*n)--;
        return v;
}

/* Copies a header value, trimmed, printable ASCII only, truncated to the field. */
static void copy_header_value(char *dst, size_t dstsz, const char *v, size_t n) {
        size_t o = 0;
        v = trim_value(v, &n);
        for (size_t i = 0; i < n && o + 1 < dstsz; i++) {
                unsigned char ch = (unsigned char) v[i];
                dst[o++] = (ch >= 0x20 && ch < 0x7f) ? (char) ch : '?';
        }
        dst[o] = '\0';
}

static void headers_reset(struct http_response *r) {
        r->content_type[0] = r->retry_after[0] = '\0';
        buf_reset(&r->location);
        buf_reset(&r->www_authenticate);
        r->location_overflow = r->challenge_overflow = false;
        r->n_challenges = 0;
}

/* The value of a header line (after the colon), trimmed; NULL when a byte is not printable ASCII
 * (such a Location or challenge is unusable, and is dropped rather than altered). */
static const char *trimmed_value(const char *v, size_t n, size_t *ret_n) {
        v = trim_value(v, &n);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) v[i] < 0x20 || (unsigned char) v[i] >= 0x7f)
                        if (v[i] != '\t')
                                return NULL;
        *ret_n = n;
        return v;
}

static void keep_location(struct http_response *r, const char *v, size_t n) {
        size_t vn = 0;
        const char *p = trimmed_value(v, n, &vn);
        buf_reset(&r->location);
        if (!p || vn > HTTP_MAX_LOCATION || buf_append(&r->location, p, vn) < 0) {
                buf_reset(&r->location);
                r->location_overflow = true;
        }
}

static void keep_challenge(struct http_response *r, const char *v, size_t n) {
        size_t vn = 0;
        const char *p = trimmed_value(v, n, &vn);
        if (r->challenge_overflow || (p && vn == 0))
                return;
        if (!p || vn > HTTP_MAX_CHALLENGE || r->n_challenges >= HTTP_MAX_CHALLENGE_FIELDS) {
                buf_reset(&r->www_authenticate);
                r->challenge_overflow = true;
                return;
        }
        int q = 0;
        if (r->www_authenticate.len > 0)
                q = buf_append(&r->www_authenticate, ", ", 2);
        if (q >= 0)
                q = buf_append(&r->www_authenticate, p, vn);
        if (q < 0) {
                buf_reset(&r->www_authenticate);
                r->challenge_overflow = true;
                return;
        }
        r->n_challenges++;
}

static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata) {
        struct xfer *x = userdata;
        struct http_response *r = x->resp;
        size_t n = size * nitems;
        static const struct {
                const char *name;
                size_t off, sz;
        } wanted[] = {
                {"content-type", offsetof(struct http_response, content_type),
                 sizeof(r->content_type)},
                {"retry-after", offsetof(struct http_response, retry_after),
                 sizeof(r->retry_after)},
        };

        /* A new status line (after 1xx, or a new response): forget the previous headers. */
        if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
                headers_reset(r);
                return n;
        }
        const char *colon = memchr(ptr, ':', n);
        if (!colon)
                return n;
        size_t namelen = (size_t) (colon - ptr);
        const char *v = colon + 1;
        size_t vn = n - namelen - 1;
        if (namelen == 8 && strncasecmp(ptr, "location", 8) == 0)
                keep_location(r, v, vn);
        else if (namelen == 16 && strncasecmp(ptr, "www-authenticate", 16) == 0)
                keep_challenge(r, v, vn);
        else
                for (size_t i = 0; i < ELEMENTSOF(wanted); i++)
                        if (strlen(wanted[i].name) == namelen &&
                            strncasecmp(ptr, wanted[i].name, namelen) == 0)
                                copy_header_value((char *) r + wanted[i].off, wanted[i].sz, v, vn);
        return n;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *userp) {
        struct http_client *c = userp;
        /* A server named by its IP address: an iPAddress SAN, compared as bytes (see
         * tls_ctx_verify_ip(): wolfSSL's check, which curl asks for, is weaker there). */
        if (c->peer_is_ip && tls_ctx_verify_ip(sslctx, &c->peer_ip) < 0)
                return CURLE_SSL_CERTPROBLEM;
        if (c->ca_pem && tls_ctx_load_ca_pem(sslctx, c->ca_pem, c->ca_pem_len) < 0)
                return CURLE_SSL_CACERT_BADFILE;
        if (c->cert_pem && tls_ctx_use_client_cert_pem(sslctx, c->cert_pem, c->cert_pem_len,
                                                       c->key_pem, c->key_pem_len) < 0)
                return CURLE_SSL_CERTPROBLEM;
        return CURLE_OK;
}

/* --- requests ---------------------------------------------------------------------------- */

/* Full jitter: random(0, min(backoff_max, backoff_base * 2^retry)). */
static uint64_t backoff_usec(struct http_client *c, unsigned retry) {
        uint64_t cap_ms = c->backoff_base_ms;
        for (unsigned i = 0; i < retry && cap_ms < c->backoff_max_ms; i++)
                cap_ms *= 2;
        cap_ms = MIN(cap_ms, (uint64_t) c->backoff_max_ms);
        return next_random(c) % (cap_ms * 1000u + 1);
}

uint64_t http_client_now_usec(const struct http_client *c) {
        return c ? now_usec(c) : default_now_usec(NULL);
}

uint64_t http_client_deadline_usec(const struct http_client *c) {
        return c ? now_usec(c) + (uint64_t) c->deadline_ms * 1000u : 0;
}

int http_client_backoff(struct http_client *c, unsigned retry, uint64_t min_usec,
                        uint64_t deadline_usec) {
        if (!c)
                return -EINVAL;
        uint64_t sleep_us = backoff_usec(c, retry); /* once: MAX() evaluates twice */
        sleep_us = MAX(sleep_us, min_usec);
        if (now_usec(c) + sleep_us >= deadline_usec)
                return -ETIMEDOUT;
        c->hooks.sleep_usec(c->hooks.userdata, sleep_us);
        return 0;
}

static char ascii_lower(char ch) {
        return ch >= 'A' && ch <= 'Z' ? (char) (ch - 'A' + 'a') : ch;
}

int http_url_origin(const char *url, char *ret, size_t size) {
        const char *p, *host, *port = NULL;
        size_t hl, pl = 0;
        bool https;
        unsigned long pv = 0;

        if (!url || !ret)
                return -EINVAL;
        if (strncasecmp(url, "https://", 8) == 0)
                https = true;
        else if (strncasecmp(url, "http://", 7) == 0)
                https = false;
        else
                return -EINVAL;
        host = url + (https ? 8 : 7);
        size_t al = strcspn(host, "/?#");
        if (memchr(host, '@', al))
                return -EINVAL; /* user information: never accepted */
        if (host[0] == '[') {
                const char *end = memchr(host, ']', al);
                if (!end || end == host + 1)
                        return -EINVAL;
                hl = (size_t) (end - host) + 1;
                for (p = host + 1; p < end; p++)
                        if (!strchr("0123456789abcdefABCDEF:.", *p))
                                return -EINVAL;
        } else {
                hl = strcspn(host, ":/?#");
                if (hl == 0 || hl > 253)
                        return -EINVAL;
                for (p = host; p < host + hl; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
                                return -EINVAL;
        }
        if (hl < al) {
                if (host[hl] != ':')
                        return -EINVAL;
                port = host + hl + 1;
                pl = al - hl - 1;
                if (pl > 5)
                        return -EINVAL;
                for (size_t i = 0; i < pl; i++) {
                        if (port[i] < '0' || port[i] > '9')
                                return -EINVAL;
                        pv = pv * 10 + (unsigned long) (port[i] - '0');
                }
                if (pl > 0 && (pv == 0 || pv > 65535))
                        return -EINVAL;
        }
        if (pl == 0)
                pv = https ? 443 : 80;
        char out[HTTP_ORIGIN_MAX];
        int w = snprintf(out, sizeof(out), "%s://%.*s:%lu", https ? "https" : "http", (int) hl,
                         host, pv);
        if (w < 0 || (size_t) w >= sizeof(out) || (size_t) w >= size)
                return -E2BIG;
        for (char *q = out; *q; q++)
                *q = ascii_lower(*q);
        memcpy(ret, out, (size_t) w + 1);
        return 0;
}

static int curl_code_to_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_USE_SSL_FAILED:
                return -EPROTO;
        case CURLE_FILESIZE_EXCEEDED:
                return -E2BIG;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_BAD_CONTENT_ENCODING:
                return -EBADMSG;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        default:
                return -EIO;
        }
}

static bool errno_is_retryable(int r) {
        return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -ECONNRESET;
}

/* Fills result->error_text from curl's error buffer, keeping printable ASCII only, and never
 * letting a secret header value through. */
static void set_error_text(struct http_client *c, const struct http_request *req, CURLcode cc,
                           const struct xfer *x, struct http_result *res) {
        char *t = res->error_text;
        size_t o = 0;

        if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
                (void) snprintf(t, HTTP_ERROR_TEXT_MAX, "response body exceeds %zu bytes",
                                c->max_body);
                return;
        }
        c->errbuf[sizeof(c->errbuf) - 1] = '\0';
        const char *src = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
        for (size_t i = 0; src[i] && o + 1 < HTTP_ERROR_TEXT_MAX; i++) {
                unsigned char ch = (unsigned char) src[i];
                if (ch == '\n' || ch == '\r')
                        continue;
                t[o++] = (ch >= 0x20 && ch < 0x7f) ? (char) ch : '?';
        }
        t[o] = '\0';

        bool leak = false;
        for (size_t i = 0; i < c->n_headers; i++)
                if (c->headers[i].secret && c->headers[i].value[0] &&
                    strstr(t, c->headers[i].value))
                        leak = true;
        for (size_t i = 0; i < req->n_headers; i++)
                if (req->headers[i].secret && req->headers[i].value[0] &&
                    strstr(t, req->headers[i].value))
                        leak = true;
        if (req->aws_secret_access_key && req->aws_secret_access_key[0] &&
            strstr(t, req->aws_secret_access_key))
                leak = true;
        if (leak)
                (void) snprintf(t, HTTP_ERROR_TEXT_MAX, "%s", curl_easy_strerror(cc));
}

/* Header lines for one request: all lines live NUL-separated in one secure buffer, and the
 * slist nodes point into it (never curl_slist_append, which would copy into the heap). */
struct header_set {
        struct buf lines;
        struct curl_slist nodes[HTTP_MAX_HEADERS + 4];
        size_t offsets[HTTP_MAX_HEADERS + 4];
        size_t n;
};

static int header_set_add(struct header_set *hs, const char *name, const char *value) {
        int r;
        if (hs->n >= ELEMENTSOF(hs->nodes))
                return -E2BIG;
        if (strlen(name) + strlen(value) + 2 > HTTP_MAX_HEADER_LINE)
                return -E2BIG;
        hs->offsets[hs->n] = hs->lines.len;
        r = buf_append_str(&hs->lines, name);
        if (r >= 0)
                r = buf_append_str(&hs->lines, value[0] ? ": " : ":");
        if (r >= 0)
                r = buf_append_str(&hs->lines, value);
        if (r >= 0)
                r = buf_append_byte(&hs->lines, 0);
        if (r < 0)
                return r;
        hs->n++;
        return 0;
}

static void header_set_done(struct header_set *hs) {
        buf_done(&hs->lines);
}

static struct curl_slist *header_set_finish(struct header_set *hs) {
        if (hs->n == 0)
                return NULL;
        for (size_t i = 0; i < hs->n; i++) {
                hs->nodes[i].data = hs->lines.data + hs->offsets[i];
                hs->nodes[i].next = i + 1 < hs->n ? &hs->nodes[i + 1] : NULL;
        }
        return &hs->nodes[0];
}

static int build_headers(struct http_client *c, const struct http_request *req,
                         struct header_set *hs) {
        int r;
        for (size_t i = 0; i < c->n_headers; i++) {
                r = header_set_add(hs, c->headers[i].name, c->headers[i].value);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < req->n_headers; i++) {
                r = header_set_add(hs, req->headers[i].name, req->headers[i].value);
                if (r < 0)
                        return r;
        }
        if (req->body) {
                r = header_set_add(hs, "Content-Type",
                                   req->content_type ? req->content_type : "application/json");
                if (r < 0)
                        return r;
        }
        /* curl would send "Expect: 100-continue" for large bodies: one round trip less. A SigV4
         * signature covers every header in the list, sent or not: none there. */
        if (req->aws_sigv4)
                return 0;
        return header_set_add(hs, "Expect", "");
}

static bool is_lower_alnum_dash(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/* "aws:amz:<region>:<service>" (curl reads each part with %64[^:]), and a key pair of printable
 * ASCII without ':' in the key id (curl joins them as "user:password"). */
static bool aws_sigv4_valid(const struct http_request *req) {
        const char *s = req->aws_sigv4;
        size_t parts = 0;
        while (parts < 4) {
                size_t n = strcspn(s, ":");
                if (n == 0 || n > 64)
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!is_lower_alnum_dash(s[i]))
                                return false;
                parts++;
                s += n;
                if (*s == '\0')
                        break;
                s++;
        }
        if (parts != 4 || *s != '\0')
                return false;
        return req->aws_access_key_id && req->aws_access_key_id[0] &&
               !strchr(req->aws_access_key_id, ':') && header_value_valid(req->aws_access_key_id) &&
               req->aws_secret_access_key && req->aws_secret_access_key[0] &&
               header_value_valid(req->aws_secret_access_key);
}

/* The scheme of url ("https"), from its start to "://"; 0 when there is none. */
static size_t scheme_len(const char *url) {
        const char *sep = strstr(url, "://");
        return sep ? (size_t) (sep - url) : 0;
}

static int validate_request(const struct http_client *c, const struct http_request *req) {
        if (!req || (unsigned) req->method >= _HTTP_METHOD_MAX)
                return -EINVAL;
        if (req->url) {
                /* A redirect target: same scheme as the base (never an https -> http downgrade),
                 * and never through a unix socket, which leads to one fixed server. */
                size_t sl = scheme_len(req->url), bl = scheme_len(c->base_url);
                if (c->unix_socket || sl == 0 || sl != bl ||
                    strncasecmp(req->url, c->base_url, sl) != 0 ||
                    strnlen(req->url, MAX_URL) >= MAX_URL || !url_part_valid(req->url, "#"))
                        return -EINVAL;
        } else {
                if (!req->path || req->path[0] != '/' || !url_part_valid(req->path, "?#"))
                        return -EINVAL;
                if (req->query && !url_part_valid(req->query, "#"))
                        return -EINVAL;
        }
        if (req->n_headers > HTTP_MAX_HEADERS || (req->n_headers > 0 && !req->headers) ||
            c->n_headers + req->n_headers > HTTP_MAX_HEADERS)
                return -EINVAL;
        for (size_t i = 0; i < req->n_headers; i++)
                if (!header_name_valid(req->headers[i].name) ||
                    !header_value_valid(req->headers[i].value))
                        return -EINVAL;
        if (req->content_type && !header_value_valid(req->content_type))
                return -EINVAL;
        if (req->method == HTTP_HEAD && req->body)
                return -EINVAL;
        if (req->aws_sigv4 && !aws_sigv4_valid(req))
                return -EINVAL;
        return 0;
}

/* The host of url when it is an IP address literal, as curl's own URL parser reads it (which
 * also decides where curl connects). -EINVAL for a DNS name or a URL curl does not parse. */
static int url_ip(const char *url, struct tls_ip *ret) {
        CURLU *u = curl_url();
        char *host = NULL;
        int r = -EINVAL;
        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
                r = tls_ip_parse(host, ret);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

#define SETOPT(opt, val)                                             \
        do {                                                         \
                if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK) \
                        return -EIO;                                 \
        } while (0)

static int setup_transfer(struct http_client *c, const struct http_request *req, const char *url,
                          struct curl_slist *hdrs, struct xfer *x, uint64_t timeout_ms) {
        static const char *const custom[_HTTP_METHOD_MAX] = {
                [HTTP_PUT] = "PUT",
                [HTTP_PATCH] = "PATCH",
                [HTTP_DELETE] = "DELETE",
                [HTTP_LIST] = "LIST",
        };

        /* Reset keeps live connections, the TLS session cache and the DNS cache. */
        curl_easy_reset(c->curl);
        c->errbuf[0] = '\0';
        SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
        SETOPT(CURLOPT_URL, url);
        SETOPT(CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        SETOPT(CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_DEFAULT);
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_PROXY, c->proxy ? c->proxy : "");
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms);
        SETOPT(CURLOPT_TIMEOUT_MS, (long) MAX(timeout_ms, 1));
        /* A stream has no size: on_body bounds what it keeps (0: no limit). */
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) (req->on_body ? 0 : c->max_body));
        SETOPT(CURLOPT_USERAGENT, c->user_agent);
        /* Always explicit: this libcurl has no default bundle, so NULL means "no file CA". */
        SETOPT(CURLOPT_CAINFO, c->ca_file);
        /* No CA directory either; curl's wolfSSL backend answers CURLE_NOT_BUILT_IN to any
         * CAPATH (the build has none by default), so this one result is deliberately ignored. */
        (void) curl_easy_setopt(c->curl, CURLOPT_CAPATH, (char *) NULL);
        SETOPT(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
        c->peer_is_ip = !c->insecure && url_ip(url, &c->peer_ip) == 0;
        if (c->ca_pem || c->cert_pem || c->peer_is_ip) {
                SETOPT(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
                SETOPT(CURLOPT_SSL_CTX_DATA, c);
        }
        if (c->unix_socket)
                SETOPT(CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
        SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(CURLOPT_WRITEDATA, x);
        SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(CURLOPT_HEADERDATA, x);
        if (req->cancelled) {
                SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
                SETOPT(CURLOPT_XFERINFODATA, x);
                SETOPT(CURLOPT_NOPROGRESS, 0L);
        }
        SETOPT(CURLOPT_HTTPHEADER, hdrs);

        switch (req->method) {
        case HTTP_GET:
                SETOPT(CURLOPT_HTTPGET, 1L);
                break;
        case HTTP_HEAD:
                SETOPT(CURLOPT_NOBODY, 1L);
                break;
        case HTTP_POST:
                SETOPT(CURLOPT_POST, 1L);
                break;
        default:
                SETOPT(CURLOPT_CUSTOMREQUEST, custom[req->method]);
                break;
        }
        if (req->aws_sigv4) {
                /* curl signs in Curl_http_output_auth, after the Host header is set: the signed
                 * "host" is the Host sent (with a non-default port). */
                SETOPT(CURLOPT_AWS_SIGV4, req->aws_sigv4);
                SETOPT(CURLOPT_USERNAME, req->aws_access_key_id);
                SETOPT(CURLOPT_PASSWORD, req->aws_secret_access_key);
        }
        if (req->body || req->method == HTTP_POST) {
                /* Not COPYPOSTFIELDS: curl reads straight from our (possibly secure) buffer. */
                SETOPT(CURLOPT_POSTFIELDS, req->body && req->body->data ? req->body->data : "");
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (req->body ? req->body->len : 0));
        }
        return 0;
}

static void response_reset(struct http_response *r) {
        buf_reset(&r->body);
        headers_reset(r);
        r->status = 0;
}

int http_request(struct http_client *c, const struct http_request *req, struct http_response *ret,
                 struct http_result *result) {
        _cleanup_buf_ struct buf url = BUF_INIT(MAX_URL, 0);
        _cleanup_(header_set_done) struct header_set hs = {
                .lines = BUF_INIT(HTTP_MAX_HEADER_LINE * 4, BUF_SECURE)};
        struct http_result res = {};
        struct http_response resp = {};
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = validate_request(c, req);
        if (r < 0)
                goto finish;

        if (req->url)
                r = buf_append_str(&url, req->url);
        else {
                r = buf_append_str(&url, c->base_url);
                if (r >= 0)
                        r = buf_append_str(&url, req->path);
                if (r >= 0 && req->query && req->query[0])
                        r = buf_printf(&url, "?%s", req->query);
        }
        if (r < 0)
                goto finish;

        r = build_headers(c, req, &hs);
        if (r < 0)
                goto finish;
        struct curl_slist *hdrs = header_set_finish(&hs);

        resp.body = BUF_INIT(c->max_body, BUF_SECURE);
        resp.location = BUF_INIT(HTTP_MAX_LOCATION, 0);
        resp.www_authenticate = BUF_INIT(HTTP_MAX_CHALLENGE_FIELDS * (HTTP_MAX_CHALLENGE + 2), 0);
        struct xfer x = {.resp = &resp, .req = req, .curl = c->curl};
        unsigned stream_ms =
                req->stream_timeout_ms ? req->stream_timeout_ms : c->request_timeout_ms;
        uint64_t deadline = req->on_body         ? now_usec(c) + (uint64_t) stream_ms * 1000u
                            : req->deadline_usec ? req->deadline_usec
                                                 : http_client_deadline_usec(c);
        unsigned max_attempts = req->no_retry || req->on_body ? 1 : c->max_attempts;

        for (unsigned attempt = 0;; attempt++) {
                uint64_t t = now_usec(c);
                uint64_t left_ms = t < deadline ? (deadline - t + 999) / 1000 : 0;

                if (attempt > 0 && left_ms == 0)
                        break;
                response_reset(&resp);
                x.too_big = x.oom = x.cancelled = false;
                x.stream_error = 0;
                r = setup_transfer(
                        c, req, buf_cstr(&url), hdrs, &x,
                        MIN((uint64_t) (req->on_body ? stream_ms : c->request_timeout_ms),
                            MAX(left_ms, 1)));
                if (r < 0)
                        break;

                CURLcode cc = curl_easy_perform(c->curl);
                long nconn = 0;
                res.attempts++;
                res.curl_code = (int) cc;
                if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK &&
                    nconn > 0) {
                        res.connects += (unsigned) nconn;
                        c->connects += (unsigned) nconn;
                }

                bool retry;
                if (cc == CURLE_OK) {
                        long status = 0;
                        (void) curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
                        resp.status = status;
                        res.status = status;
                        res.error = 0;
                        res.error_text[0] = '\0';
                        r = 0;
                        retry = http_status_is_retryable(status);
                } else {
                        r = x.too_big        ? -E2BIG
                            : x.oom          ? -ENOMEM
                            : x.stream_error ? x.stream_error
                            : x.cancelled    ? -ECANCELED
                                             : curl_code_to_errno(cc);
                        res.status = 0;
                        res.error = r;
                        set_error_text(c, req, cc, &x, &res);
                        retry = errno_is_retryable(r);
                }
                if (!retry || attempt + 1 >= max_attempts)
                        break;

                uint64_t sleep_us = backoff_usec(c, attempt);
                uint64_t ra;
                if (r == 0 && resp.retry_after[0] &&
                    http_parse_retry_after(resp.retry_after, (int64_t) time(NULL), &ra) >= 0)
                        sleep_us = MAX(sleep_us, ra * 1000000u);
                if (now_usec(c) + sleep_us >= deadline)
                        break; /* the last outcome stands */
                c->hooks.sleep_usec(c->hooks.userdata, sleep_us);
                res.slept_usec += sleep_us;
        }
        if (r == 0) {
                *ret = resp;
                resp = (struct http_response){};
        }
finish:
        http_response_done(&resp);
        if (result)
                *result = res;
        return r;
}

/* --- is it plain HTTP? ------------------------------------------------------------------- */

static void curl_easy_cleanupp(CURL **h) {
        if (*h)
                curl_easy_cleanup(*h);
}

/* Waits until the connection is readable/writable or the deadline passes. */
static int wait_socket(curl_socket_t fd, short events, uint64_t deadline) {
        for (;;) {
                uint64_t now = default_now_usec(NULL);
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = fd, .events = events};
                int n = poll(&p, 1, (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX));
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

int http_probe_plain_http(const char *origin, unsigned timeout_ms) {
        /* A TLS record header (handshake, TLS 1.0 record version, 4 bytes) whose body is an empty
         * line: a TLS server answers with an alert or closes, a plain-HTTP server reads a
         * malformed request line and answers "HTTP/1.x 400". */
        static const char probe[] = "\x16\x03\x01\x00\x04\r\n\r\n";
        _cleanup_buf_ struct buf url = BUF_INIT(MAX_URL, 0);
        _cleanup_(curl_easy_cleanupp) CURL *h = NULL;
        char reply[5];
        size_t sent = 0, got = 0;
        curl_socket_t fd = CURL_SOCKET_BAD;

        if (!origin || strncmp(origin, "https://", 8) != 0 || timeout_ms == 0)
                return -EINVAL;
        const char *hp = origin + 8;
        size_t n = strcspn(hp, "/?#");
        const char *bracket = memchr(hp, ']', n);
        const char *after = bracket ? bracket + 1 : hp;
        bool has_port = memchr(after, ':', n - (size_t) (after - hp)) != NULL;
        if (n == 0 || memchr(hp, '@', n) || !url_part_valid(hp, ""))
                return -EINVAL;
        int r = buf_printf(&url, "http://%.*s%s/", (int) n, hp, has_port ? "" : ":443");
        if (r < 0)
                return r;
        (void) pthread_once(&global_once, global_init);
        if (global_result != CURLE_OK)
                return -EIO;
        h = curl_easy_init();
        if (!h)
                return -ENOMEM;
        uint64_t deadline = default_now_usec(NULL) + (uint64_t) timeout_ms * 1000u;
        if (curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&url)) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms) != CURLE_OK)
                return -EIO;
        if (curl_easy_perform(h) != CURLE_OK ||
            curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
                return 0; /* nothing to talk to: not a plain-HTTP server */
        while (sent < sizeof(probe) - 1) {
                size_t k = 0;
                CURLcode cc = curl_easy_send(h, probe + sent, sizeof(probe) - 1 - sent, &k);
                if (cc == CURLE_AGAIN) {
                        if (wait_socket(fd, POLLOUT, deadline) < 0)
                                return 0;
                        continue;
                }
                if (cc != CURLE_OK)
                        return 0;
                sent += k;
        }
        while (got < sizeof(reply)) {
                size_t k = 0;
                CURLcode cc = curl_easy_recv(h, reply + got, sizeof(reply) - got, &k);
                if (cc == CURLE_AGAIN) {
                        if (wait_socket(fd, POLLIN, deadline) < 0)
                                return 0;
                        continue;
                }
                if (cc != CURLE_OK || k == 0)
                        return 0; /* closed, or reset: a TLS server refusing our record */
                got += k;
        }
        return memcmp(reply, "HTTP/", 5) == 0;
}
