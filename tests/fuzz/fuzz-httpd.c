/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for common/httpd's parser layer: arbitrary bytes are fed as a request stream, in
 * pieces whose sizes come from the first input byte (so the same stream is also split
 * differently), pipelining through httpd_parser_next(). Besides "no crash", it aborts when a
 * property fails:
 *   - the parser never consumes more than it was given, and MORE means everything was consumed;
 *   - a request is complete and well-formed: method/target/path/query are NUL-terminated and
 *     within the limits, path + query rebuild the target, the headers are within the count and
 *     byte limits with token names and values free of CR/LF/NUL, the body within max_body,
 *     HTTP/1.1 requests carry exactly one Host header;
 *   - an error is one of the documented statuses with a message, is sticky, and consumes nothing
 *     more;
 *   - the same stream fed in one piece and in small pieces gives the same requests and the same
 *     final error (when a size limit ends one of them, the other may end in another error).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/httpd-parser.h"
#include "common/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
        do {                     \
                if (!(cond))     \
                        abort(); \
        } while (0)

static const struct httpd_limits limits = {.max_request_line = 256,
                                           .max_header_bytes = 512,
                                           .max_headers = 8,
                                           .max_body = 1024,
                                           .max_arena = 4096};

static bool token(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", c)))
                        return false;
        }
        return true;
}

static void check_request(const struct httpd_request *q) {
        size_t tl = strlen(q->target), hb = 0;
        unsigned hosts = 0;

        CHECK(q->method && token(q->method));
        CHECK(tl > 0 && tl <= limits.max_request_line);
        CHECK(strncmp(q->target, q->path, strlen(q->path)) == 0);
        if (q->query[0] || strchr(q->target, '?'))
                CHECK(q->target[strlen(q->path)] == '?' &&
                      strcmp(q->target + strlen(q->path) + 1, q->query) == 0);
        else
                CHECK(strcmp(q->path, q->target) == 0);
        CHECK(q->n_headers <= limits.max_headers);
        for (size_t i = 0; i < q->n_headers; i++) {
                const char *v = q->headers[i].value;
                CHECK(token(q->headers[i].name));
                CHECK(!strpbrk(v, "\r\n"));
                hb += strlen(q->headers[i].name) + strlen(v);
                if (strcasecmp(q->headers[i].name, "Host") == 0)
                        hosts++;
                CHECK(httpd_request_header(q, q->headers[i].name) != NULL);
        }
        CHECK(hb <= limits.max_header_bytes);
        CHECK(q->version_minor <= 1);
        if (q->version_minor == 1)
                CHECK(hosts == 1);
        CHECK(q->body_len <= limits.max_body && q->body && q->body[q->body_len] == '\0');
        /* the handler's arena: exactly max_arena */
        size_t got = 0;
        while (arena_alloc(q->arena, 512))
                got += 512;
        CHECK(got <= limits.max_arena && got + 512 > limits.max_arena);
}

/* Runs the stream; writes a trace of outcomes ('R' + path length, or 'E' + status) to t. */
static void run(const uint8_t *data, size_t size, size_t step, struct buf *t) {
        _cleanup_httpd_parser_ struct httpd_parser *p = NULL;
        size_t off = 0;

        CHECK(httpd_parser_new(&limits, &p) == 0);
        while (off < size) {
                size_t n = step ? MIN(step, size - off) : size - off, used = 0;
                int r = httpd_parser_feed(p, data + off, n, &used);
                CHECK(r >= 0 && used <= n);
                off += used;
                if (r == HTTPD_PARSE_MORE)
                        CHECK(used == n);
                else if (r == HTTPD_PARSE_REQUEST) {
                        const struct httpd_request *q = httpd_parser_request(p);
                        CHECK(q);
                        check_request(q);
                        CHECK(buf_printf(t, "R%zu,%zu;", strlen(q->target), q->body_len) >= 0);
                        httpd_parser_next(p);
                } else if (r == HTTPD_PARSE_ERROR) {
                        const char *msg = NULL;
                        int st = httpd_parser_error(p, &msg);
                        CHECK(st == 400 || st == 405 || st == 413 || st == 414 || st == 417 ||
                              st == 431 || st == 505);
                        CHECK(msg && *msg && !httpd_parser_request(p));
                        if (off < size) {
                                size_t u2 = 1;
                                CHECK(httpd_parser_feed(p, data + off, size - off, &u2) ==
                                              HTTPD_PARSE_ERROR &&
                                      u2 == 0);
                        }
                        CHECK(buf_printf(t, "E%d;", st) >= 0);
                        return;
                } else
                        CHECK(r == HTTPD_PARSE_CONTINUE);
        }
}

static bool is_limit(const char *e) {
        return strcmp(e, "E413;") == 0 || strcmp(e, "E414;") == 0 || strcmp(e, "E431;") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_buf_ struct buf a = BUF_INIT(1u << 20, 0), b = BUF_INIT(1u << 20, 0);
        size_t step;

        if (size < 1 || size > 64 * 1024)
                return 0;
        step = data[0] % 17 + 1;
        run(data + 1, size - 1, 0, &a);
        run(data + 1, size - 1, step, &b);
        /* Splitting never changes which requests parse. It may change which error ends the
         * stream when one of them is a size limit (a limit is checked as data arrives, while
         * the parser may find a bad byte further on in a bigger piece): then only the requests
         * before it and the fact that it ended in an error must agree. */
        const char *ea = strrchr(buf_cstr(&a), 'E'), *eb = strrchr(buf_cstr(&b), 'E');
        CHECK(!ea == !eb);
        if (ea && eb && strcmp(ea, eb) != 0) {
                CHECK(is_limit(ea) || is_limit(eb));
                CHECK((size_t) (ea - a.data) == (size_t) (eb - b.data) &&
                      memcmp(a.data, b.data, (size_t) (ea - a.data)) == 0);
        } else
                CHECK(strcmp(buf_cstr(&a), buf_cstr(&b)) == 0);
        return 0;
}
