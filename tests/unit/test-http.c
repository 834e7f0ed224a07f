/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/http: pure helpers, option validation, and the transport against the
 * stand-in vault over TLS (keep-alive, trust, retries with backoff and Retry-After under a
 * deadline, faults, limits). Sleeps go through the test hooks: recorded, not slept. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/httpd.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

static void test_retry_after(void) {
        uint64_t s = 0;
        ok(http_parse_retry_after("5", 0, &s) == 0 && s == 5, "Retry-After: 5");
        ok(http_parse_retry_after("  10 ", 0, &s) == 0 && s == 10, "Retry-After with spaces");
        ok(http_parse_retry_after("99999999999999999999", 0, &s) == 0 && s == 86400,
           "huge delta is capped at a day");
        is_int(http_parse_retry_after("abc", 0, &s), -EINVAL, "garbage is -EINVAL");
        is_int(http_parse_retry_after("5s", 0, &s), -EINVAL, "a unit is not a delta");
        is_int(http_parse_retry_after("", 0, &s), -EINVAL, "empty is -EINVAL");
        /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
        ok(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30, &s) == 0 &&
                   s == 30,
           "an HTTP-date 30 s ahead");
        ok(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 30, &s) == 0 &&
                   s == 0,
           "an HTTP-date in the past is 0");
}

static void test_escape(void) {
        _cleanup_buf_ struct buf b = BUF_INIT(64, 0);
        is_int(http_append_escaped(&b, "a b/c?d=é~", true), 0, "escape with slash kept");
        is_str(buf_cstr(&b), "a%20b/c%3Fd%3D%C3%A9~", "escaped text");
        buf_reset(&b);
        is_int(http_append_escaped(&b, "x/y", false), 0, "escape slash");
        is_str(buf_cstr(&b), "x%2Fy", "slash escaped");
        _cleanup_buf_ struct buf small = BUF_INIT(5, 0);
        (void) buf_append_str(&small, "ab");
        is_int(http_append_escaped(&small, "    ", true), -E2BIG, "over max is -E2BIG");
        is_str(buf_cstr(&small), "ab", "and leaves the buffer unchanged");
}

static void test_retryable(void) {
        static const struct {
                long status;
                bool retry;
        } cases[] = {{200, false}, {204, false}, {400, false}, {403, false},
                     {404, false}, {429, true},  {500, true},  {501, false},
                     {502, true},  {503, true},  {504, true},  {599, true}};
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ok(http_status_is_retryable(cases[i].status) == cases[i].retry,
                   "status %ld retryable: %s", cases[i].status, cases[i].retry ? "yes" : "no");
}

static void test_options(void) {
        struct http_client *c = NULL;
        const char pem[] = "-----BEGIN CERTIFICATE-----\n";
        static const struct http_header crlf = {.name = "X-A", .value = "a\r\nb: c"};
        static const struct http_header badname = {.name = "X A", .value = "v"};
        struct {
                const char *name;
                struct http_options o;
        } cases[] = {
                {"no base url", {.insecure_skip_verify = true}},
                {"plain http without allow_http",
                 {.base_url = "http://x", .insecure_skip_verify = true}},
                {"unknown scheme", {.base_url = "ftp://x", .insecure_skip_verify = true}},
                {"https without any CA", {.base_url = "https://x"}},
                {"two CA sources",
                 {.base_url = "https://x", .ca_file = "/x", .ca_pem = pem, .ca_pem_len = 5}},
                {"empty inline CA", {.base_url = "https://x", .ca_pem = pem, .ca_pem_len = 0}},
                {"client cert without key",
                 {.base_url = "https://x",
                  .insecure_skip_verify = true,
                  .client_cert_pem = pem,
                  .client_cert_pem_len = 5}},
                {"max_body over the limit",
                 {.base_url = "https://x",
                  .insecure_skip_verify = true,
                  .max_body = HTTP_MAX_BODY_LIMIT + 1}},
                {"header with CR LF",
                 {.base_url = "https://x",
                  .insecure_skip_verify = true,
                  .headers = &crlf,
                  .n_headers = 1}},
                {"header name with a space",
                 {.base_url = "https://x",
                  .insecure_skip_verify = true,
                  .headers = &badname,
                  .n_headers = 1}},
                {"no host", {.base_url = "https://", .insecure_skip_verify = true}},
                {"url with a space", {.base_url = "https://a b", .insecure_skip_verify = true}},
                {"url with a fragment", {.base_url = "https://a#b", .insecure_skip_verify = true}},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                is_int(http_client_new(&cases[i].o, &c), -EINVAL, "options rejected: %s",
                       cases[i].name);
        ok(c == NULL, "nothing returned for rejected options");
        struct http_options good = {.base_url = "http://127.0.0.1:1/", .allow_http = true};
        is_int(http_client_new(&good, &c), 0, "plain http accepted with allow_http");
        c = http_client_free(c);
}

/* A fake clock: real time plus whatever the client "slept". */
struct fake_time {
        uint64_t slept_usec;
        unsigned sleeps;
        uint64_t last_sleep;
};

static uint64_t fake_now(void *userdata) {
        struct fake_time *t = userdata;
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u + t->slept_usec;
}

static void fake_sleep(void *userdata, uint64_t usec) {
        struct fake_time *t = userdata;
        t->slept_usec += usec;
        t->sleeps++;
        t->last_sleep = usec;
}

static char *read_text(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        static char data[1 << 16];
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, data, sizeof(data) - 1);
        close(fd);
        if (n <= 0)
                return NULL;
        data[n] = '\0';
        *ret_len = (size_t) n;
        return data;
}

static int control(struct standin *s, const char *method, const char *path, const char *body) {
        int status = 0;
        int r = standin_control(s, method, path, body, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}

static int get(struct http_client *c, const char *path, bool no_retry, struct http_response *resp,
               struct http_result *res) {
        struct http_request req = {.method = HTTP_GET, .path = path, .no_retry = no_retry};
        return http_request(c, &req, resp, res);
}

static void test_transport(struct standin *s) {
        struct fake_time ft = {};
        struct http_options o = {
                .base_url = s->addr,
                .ca_file = s->ca_path,
                .backoff_base_ms = 200,
                .backoff_max_ms = 2000,
                .hooks = {.now_usec = fake_now, .sleep_usec = fake_sleep, .userdata = &ft},
        };
        _cleanup_http_client_ struct http_client *c = NULL;
        struct http_result res;
        int r;

        is_int(http_client_new(&o, &c), 0, "client with a CA file");
        if (!c)
                return;
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 200, "GET sys/health is 200 (%d, %ld)", r, resp.status);
                ok(strncmp(resp.content_type, "application/json", 16) == 0, "content type kept");
                ok(resp.body.len > 0 && (resp.body.flags & BUF_SECURE) &&
                           secmem_size(resp.body.data) > 0,
                   "body is in a secure buffer");
                is_int(res.attempts, 1, "one attempt");
        }
        for (int i = 0; i < 3; i++) {
                _cleanup_http_response_ struct http_response resp = {};
                (void) get(c, "/v1/sys/health", false, &resp, &res);
        }
        is_int(http_client_connects(c), 1, "four requests over one kept-alive connection");

        /* Two 503s, then the answer: three attempts, two backoff sleeps. */
        is_int(control(s, "POST", "/_standin/fault",
                       "{\"match\":\"/v1/sys/"
                       "health\",\"kind\":\"status\",\"status\":503,\"count\":2}"),
               0, "fault: two 503s");
        ft = (struct fake_time){};
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 200 && res.attempts == 3 && ft.sleeps == 2,
                   "503 twice is retried to success (attempts %u, sleeps %u)", res.attempts,
                   ft.sleeps);
                ok(res.slept_usec == ft.slept_usec && ft.slept_usec <= (200 + 400) * 1000,
                   "full-jitter backoff stays under base*2^n (%llu us)",
                   (unsigned long long) ft.slept_usec);
        }

        /* 429 with Retry-After: 7 -> at least 7 s of (fake) sleep. */
        (void) control(s, "POST", "/_standin/fault",
                       "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":429,"
                       "\"retry_after\":\"7\",\"count\":1}");
        ft = (struct fake_time){};
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 200 && ft.sleeps == 1 && ft.last_sleep >= 7000000,
                   "429 honours Retry-After (slept %llu us)", (unsigned long long) ft.last_sleep);
        }

        /* A dropped connection is retried on a new connection. */
        (void) control(s, "POST", "/_standin/fault",
                       "{\"match\":\"/v1/sys/health\",\"kind\":\"drop\",\"count\":1}");
        unsigned before = http_client_connects(c);
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                /* libcurl itself reconnects once when a reused connection turns out dead, so this
                 * may take one or two attempts of ours; either way a new connection is made. */
                ok(r == 0 && resp.status == 200 && res.attempts <= 2,
                   "a dropped connection is retried (%d, %ld, %u attempts)", r, resp.status,
                   res.attempts);
                ok(http_client_connects(c) > before, "on a new connection");
        }

        /* no_retry: one attempt, the 503 is returned. */
        (void) control(
                s, "POST", "/_standin/fault",
                "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":503,\"count\":1}");
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", true, &resp, &res);
                ok(r == 0 && resp.status == 503 && res.attempts == 1, "no_retry makes one attempt");
        }

        /* 4xx and 501 are not retried. */
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/secret/data/nothing", false, &resp, &res);
                ok(r == 0 && resp.status == 403 && res.attempts == 1, "403 is not retried");
        }
        (void) control(
                s, "POST", "/_standin/fault",
                "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":501,\"count\":1}");
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 501 && res.attempts == 1, "501 is not retried");
        }

        /* A vault that stays sealed: attempts stop at max_attempts, the last answer stands. */
        (void) control(s, "POST", "/_standin/fault",
                       "{\"match\":\"/v1/sys/health\",\"kind\":\"sealed\",\"count\":-1}");
        ft = (struct fake_time){};
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 503 && res.attempts == HTTP_MAX_ATTEMPTS_DEFAULT,
                   "retries stop after max_attempts (%u) with the last answer", res.attempts);
                ok(strstr(buf_cstr(&resp.body), "Vault is sealed") != NULL, "its body is returned");
        }
        (void) control(s, "DELETE", "/_standin/fault", NULL);

        /* Headers as real registries send them: a Location of several KiB (a pre-signed blob
         * URL) is kept whole, one over HTTP_MAX_LOCATION is dropped and flagged, never cut; every
         * WWW-Authenticate field is kept, in order, joined into one challenge list. */
        {
                _cleanup_buf_ struct buf fault = BUF_INIT(64 * 1024, 0);
                _cleanup_buf_ struct buf loc = BUF_INIT(HTTP_MAX_LOCATION + 16, 0);
                (void) buf_append_str(&loc, "https://bucket.s3.example/blob?X-Amz-Security-Token=");
                while (loc.len < 6000)
                        (void) buf_append_byte(&loc, 'T');
                (void) buf_printf(&fault,
                                  "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":"
                                  "307,\"headers\":[[\"Location\",\"%s\"]]}",
                                  buf_cstr(&loc));
                (void) control(s, "POST", "/_standin/fault", buf_cstr(&fault));
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 307 && !resp.location_overflow &&
                           strcmp(buf_cstr(&resp.location), buf_cstr(&loc)) == 0,
                   "a 6000-byte Location is kept whole (%zu bytes)", resp.location.len);
                http_response_done(&resp);

                while (loc.len <= HTTP_MAX_LOCATION)
                        (void) buf_append_byte(&loc, 'T');
                buf_reset(&fault);
                (void) buf_printf(&fault,
                                  "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":"
                                  "307,\"headers\":[[\"Location\",\"%s\"]]}",
                                  buf_cstr(&loc));
                (void) control(s, "POST", "/_standin/fault", buf_cstr(&fault));
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 307 && resp.location_overflow && resp.location.len == 0,
                   "a Location over HTTP_MAX_LOCATION is dropped and flagged, not truncated");
                http_response_done(&resp);

                char pad[1001];
                memset(pad, 'p', sizeof(pad) - 1);
                pad[sizeof(pad) - 1] = '\0';
                buf_reset(&fault);
                (void) buf_printf(&fault,
                                  "{\"match\":\"/v1/sys/health\",\"kind\":\"status\",\"status\":"
                                  "401,\"headers\":[[\"WWW-Authenticate\",\"Bearer "
                                  "realm=\\\"https://auth.example/token\\\",x=\\\"%s\\\"\"],"
                                  "[\"WWW-Authenticate\",\"Negotiate\"],"
                                  "[\"WWW-Authenticate\",\"Basic realm=\\\"r\\\"\"]]}",
                                  pad);
                (void) control(s, "POST", "/_standin/fault", buf_cstr(&fault));
                r = get(c, "/v1/sys/health", false, &resp, &res);
                const char *wa = buf_cstr(&resp.www_authenticate);
                const char *tail = "\", Negotiate, Basic realm=\"r\"";
                ok(r == 0 && resp.status == 401 && resp.n_challenges == 3 &&
                           !resp.challenge_overflow &&
                           strncmp(wa, "Bearer realm=\"https://auth.example/token\",x=\"", 45) ==
                                   0 &&
                           strstr(wa, pad) && strlen(wa) > 45 &&
                           strcmp(wa + strlen(wa) - strlen(tail), tail) == 0,
                   "three WWW-Authenticate fields, one over 1 KiB, are all kept in order (%zu "
                   "bytes)",
                   resp.www_authenticate.len);
                http_response_done(&resp);

                buf_reset(&fault);
                (void) buf_append_str(&fault, "{\"match\":\"/v1/sys/health\",\"kind\":\"status\","
                                              "\"status\":401,\"headers\":[");
                for (int i = 0; i <= HTTP_MAX_CHALLENGE_FIELDS; i++)
                        (void) buf_printf(&fault, "%s[\"WWW-Authenticate\",\"Basic realm=r%d\"]",
                                          i ? "," : "", i);
                (void) buf_append_str(&fault, "]}");
                (void) control(s, "POST", "/_standin/fault", buf_cstr(&fault));
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && resp.status == 401 && resp.challenge_overflow &&
                           resp.www_authenticate.len == 0,
                   "more than HTTP_MAX_CHALLENGE_FIELDS challenges are flagged, none half kept");
                (void) control(s, "DELETE", "/_standin/fault", NULL);
        }

        /* Body limit. */
        {
                struct http_options small = o;
                small.max_body = 64;
                _cleanup_http_client_ struct http_client *c2 = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(http_client_new(&small, &c2), 0, "client with a 64-byte body limit");
                r = c2 ? get(c2, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == -E2BIG && res.attempts == 1 && strstr(res.error_text, "exceeds"),
                   "a larger body is -E2BIG, not retried (%d)", r);
        }

        /* Invalid request fields. */
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_header bad = {.name = "X-Vault-Token", .value = "a\nb", .secret = true};
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/sys/health",
                                           .headers = &bad,
                                           .n_headers = 1};
                is_int(http_request(c, &req, &resp, &res), -EINVAL,
                       "a header value with LF is refused");
                req = (struct http_request){.method = HTTP_GET, .path = "v1/no-slash"};
                is_int(http_request(c, &req, &resp, &res), -EINVAL,
                       "a path without '/' is refused");
                req = (struct http_request){.method = HTTP_GET, .path = "/v1/a b"};
                is_int(http_request(c, &req, &resp, &res), -EINVAL,
                       "a path with a space is refused");
                /* SigV4: "aws:amz:<region>:<service>" and a key pair, or nothing is sent. */
                static const struct {
                        const char *scope, *id, *secret;
                } bad_sig[] = {
                        {"aws:amz:us-east-1", "AKID", "s"},
                        {"aws:amz:us-east-1:ecr:x", "AKID", "s"},
                        {"aws:amz::ecr", "AKID", "s"},
                        {"aws:amz:US-EAST-1:ecr", "AKID", "s"},
                        {"aws:amz:us-east-1:ecr", NULL, "s"},
                        {"aws:amz:us-east-1:ecr", "AK:ID", "s"},
                        {"aws:amz:us-east-1:ecr", "AKID", ""},
                        {"aws:amz:us-east-1:ecr", "AKID", "s\r\nX: y"},
                };
                for (size_t i = 0; i < ELEMENTSOF(bad_sig); i++) {
                        req = (struct http_request){.method = HTTP_POST,
                                                    .path = "/",
                                                    .aws_sigv4 = bad_sig[i].scope,
                                                    .aws_access_key_id = bad_sig[i].id,
                                                    .aws_secret_access_key = bad_sig[i].secret};
                        is_int(http_request(c, &req, &resp, &res), -EINVAL,
                               "SigV4 %s with key id %s: refused before sending", bad_sig[i].scope,
                               bad_sig[i].id ? bad_sig[i].id : "(none)");
                }
        }
        /* LIST and POST reach the server with their verbs (the stand-in answers as Vault). */
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_header tok = {
                        .name = "X-Vault-Token", .value = s->root_token, .secret = true};
                struct http_request req = {.method = HTTP_LIST,
                                           .path = "/v1/secret/metadata/",
                                           .headers = &tok,
                                           .n_headers = 1};
                r = http_request(c, &req, &resp, &res);
                ok(r == 0 && (resp.status == 200 || resp.status == 404), "LIST verb (%ld)",
                   resp.status);
                http_response_done(&resp);
                _cleanup_buf_ struct buf body = BUF_INIT(256, BUF_SECURE);
                (void) buf_append_str(&body, "{\"data\":{\"k\":\"v\"}}");
                req = (struct http_request){.method = HTTP_POST,
                                            .path = "/v1/secret/data/http-test",
                                            .body = &body,
                                            .headers = &tok,
                                            .n_headers = 1};
                r = http_request(c, &req, &resp, &res);
                ok(r == 0 && resp.status == 200 && strstr(buf_cstr(&resp.body), "\"version\""),
                   "POST with a JSON body from a secure buffer (%d, %ld)", r, resp.status);
                if (resp.status != 200)
                        diag("body: %s", buf_cstr(&resp.body));
        }
}

static void test_trust(struct standin *s) {
        size_t n = 0;
        char *ca = read_text(s->ca_path, &n);
        struct http_result res;
        int r;

        {
                struct http_options o = {.base_url = s->addr, .ca_pem = ca, .ca_pem_len = n};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(ca ? http_client_new(&o, &c) : -ENOENT, 0, "client with an inline CA");
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == 0 && resp.status == 200, "an inline CA verifies the server (%d)", r);
        }
        {
                /* A trust anchor that did not sign the server (the stand-in's client certificate):
                 * a TLS failure, never retried. */
                struct http_options o = {.base_url = s->addr, .ca_file = s->client_cert_path};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(http_client_new(&o, &c), 0, "client with a wrong CA file");
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == -EPROTO && res.attempts == 1,
                   "untrusted server: -EPROTO after one attempt (%d, %u)", r, res.attempts);
                ok(res.error_text[0] != '\0', "with an error text (%s)", res.error_text);
        }
        {
                /* The right CA but the wrong name: connect to "localhost" works (SAN), a
                 * name not in the certificate does not. */
                char url[256];
                const char *port = strrchr(s->addr, ':');
                (void) snprintf(url, sizeof(url), "https://localhost%s", port);
                struct http_options o = {.base_url = url, .ca_file = s->ca_path};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(http_client_new(&o, &c), 0, "client for localhost");
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == 0 && resp.status == 200, "host name in the SAN verifies (%d)", r);
        }
        {
                struct http_options o = {.base_url = s->addr, .insecure_skip_verify = true};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(http_client_new(&o, &c), 0, "client without verification");
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == 0 && resp.status == 200, "insecure_skip_verify connects without a CA");
        }
        {
                struct fake_time ft = {};
                struct http_options o = {
                        .base_url = "https://127.0.0.1:1",
                        .ca_file = s->ca_path,
                        .hooks = {.now_usec = fake_now, .sleep_usec = fake_sleep, .userdata = &ft}};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                is_int(http_client_new(&o, &c), 0, "client for a closed port");
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                ok(r == -ECONNREFUSED && res.attempts == HTTP_MAX_ATTEMPTS_DEFAULT,
                   "connection refused is retried, then reported (%d, %u)", r, res.attempts);
        }
        {
                /* Deadline: a server that stalls 20 s per answer, request timeout 300 ms, deadline
                 * 1 s. The client gives up after about a second; the bound below is generous (a
                 * loaded machine passes) and still far from the 20 s a missing timeout takes. */
                struct http_options o = {.base_url = s->addr,
                                         .ca_file = s->ca_path,
                                         .request_timeout_ms = 300,
                                         .deadline_ms = 1000,
                                         .backoff_base_ms = 10};
                _cleanup_http_client_ struct http_client *c = NULL;
                _cleanup_http_response_ struct http_response resp = {};
                (void) control(s, "POST", "/_standin/fault",
                               "{\"match\":\"/v1/sys/"
                               "health\",\"kind\":\"delay\",\"delay_ms\":20000,\"count\":-1}");
                is_int(http_client_new(&o, &c), 0, "client with a 1 s deadline");
                struct timespec a, b;
                (void) clock_gettime(CLOCK_MONOTONIC, &a);
                r = c ? get(c, "/v1/sys/health", false, &resp, &res) : -EINVAL;
                (void) clock_gettime(CLOCK_MONOTONIC, &b);
                long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
                ok(r == -ETIMEDOUT && ms < 10000,
                   "a stalled server times out within the deadline (%d, %ld ms)", r, ms);
                (void) control(s, "DELETE", "/_standin/fault", NULL);
        }
}

static void test_origin(void) {
        static const struct {
                const char *url, *origin; /* NULL: -EINVAL */
        } cases[] = {
                {"https://vault.example:8200/v1/x?y=1", "https://vault.example:8200"},
                {"HTTPS://Vault.Example/v1/x", "https://vault.example:443"},
                {"http://10.0.0.1", "http://10.0.0.1:80"},
                {"https://127.0.0.1:8200", "https://127.0.0.1:8200"},
                {"https://[::1]:8200/v1", "https://[::1]:8200"},
                {"https://[FE80::1]", "https://[fe80::1]:443"},
                {"https://h:/x", "https://h:443"},
                {"https://h?x", "https://h:443"},
                {"ftp://h", NULL},
                {"//h/x", NULL},
                {"/v1/x", NULL},
                {"https://", NULL},
                {"https://user@h", NULL},
                {"https://user:pw@h:8200/", NULL},
                {"https://h:0", NULL},
                {"https://h:65536", NULL},
                {"https://h:123456", NULL},
                {"https://h:8x", NULL},
                {"https://h x", NULL},
                {"https://[::1", NULL},
                {"https://[]", NULL},
                {"https://[g::1]", NULL},
                {"https://h%2e", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char o[HTTP_ORIGIN_MAX] = "untouched";
                int r = http_url_origin(cases[i].url, o, sizeof(o));
                if (cases[i].origin)
                        ok(r == 0 && strcmp(o, cases[i].origin) == 0, "origin of %s: %s",
                           cases[i].url, o);
                else
                        ok(r == -EINVAL && strcmp(o, "untouched") == 0, "no origin: %s (%d)",
                           cases[i].url, r);
        }
        char small[16];
        is_int(http_url_origin("https://vault.example:8200", small, sizeof(small)), -E2BIG,
               "origin larger than the buffer: -E2BIG");
}

/* http_request.url (a redirect being followed) and one deadline over several requests. */
static void test_url(struct standin *s) {
        struct fake_time ft = {};
        struct http_options o = {
                .base_url = s->addr,
                .ca_file = s->ca_path,
                .hooks = {.now_usec = fake_now, .sleep_usec = fake_sleep, .userdata = &ft},
        };
        _cleanup_http_client_ struct http_client *c = NULL;
        struct http_result res;
        char url[512];
        int r;

        is_int(http_client_new(&o, &c), 0, "client");
        if (!c)
                return;
        (void) snprintf(url, sizeof(url), "%s/v1/sys/health?standbyok=true", s->addr);
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_request req = {.method = HTTP_GET, .url = url};
                r = http_request(c, &req, &resp, &res);
                ok(r == 0 && resp.status == 200, "an absolute url replaces base + path (%d %ld)", r,
                   resp.status);
        }
        static const char *const bad[] = {"http://127.0.0.1:1/v1/sys/health", "/v1/sys/health",
                                          "https://127.0.0.1:1/a b", "https://127.0.0.1:1/#x"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_request req = {.method = HTTP_GET, .url = bad[i]};
                is_int(http_request(c, &req, &resp, &res), -EINVAL, "url refused: %s", bad[i]);
        }

        /* A 503 asking for 3 s: the client's own deadline (60 s) would wait and retry, a request
         * deadline 2 s away does not (the sleep would end past it): one attempt, the answer
         * stands. */
        is_int(control(s, "POST", "/_standin/fault",
                       "{\"match\":\"/v1/sys/health\",\"status\":503,\"retry_after\":\"3\","
                       "\"count\":3}"),
               0, "fault: three 503s with Retry-After 3");
        ft = (struct fake_time){};
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/sys/health",
                                           .deadline_usec = http_client_now_usec(c) + 2000000u};
                r = http_request(c, &req, &resp, &res);
                ok(r == 0 && resp.status == 503 && res.attempts == 1 && ft.sleeps == 0,
                   "deadline_usec bounds the retries (%d %ld, %u attempts, %u sleeps)", r,
                   resp.status, res.attempts, ft.sleeps);
        }
        {
                _cleanup_http_response_ struct http_response resp = {};
                r = get(c, "/v1/sys/health", false, &resp, &res);
                ok(r == 0 && res.attempts >= 2 && ft.slept_usec >= 3000000u,
                   "without it the client's deadline lets it wait and retry (%u attempts)",
                   res.attempts);
        }
        (void) control(s, "DELETE", "/_standin/fault", NULL);

        uint64_t d = http_client_deadline_usec(c);
        ok(d >= http_client_now_usec(c) + (uint64_t) HTTP_DEADLINE_MS_DEFAULT * 1000u - 1000000u,
           "deadline_usec: now + deadline_ms");
        ft = (struct fake_time){};
        is_int(http_client_backoff(c, 0, 30000, d), 0, "backoff before the deadline sleeps");
        ok(ft.sleeps == 1 && ft.last_sleep >= 30000 &&
                   ft.last_sleep <= (uint64_t) HTTP_BACKOFF_BASE_MS_DEFAULT * 1000u,
           "at least min_usec, at most the first backoff cap (%llu us)",
           (unsigned long long) ft.last_sleep);
        is_int(http_client_backoff(c, 3, 1000, http_client_now_usec(c) + 500), -ETIMEDOUT,
               "a backoff past the deadline does not sleep");
        is_int(ft.sleeps, 1, "(no sleep)");
}

/* A plain-HTTP server of one connection: reads what comes, answers 400 as Go's net/http does
 * to a request line it cannot parse. */
static void *plain_server(void *arg) {
        int lfd = *(int *) arg;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
                char b[64];
                (void) read(fd, b, sizeof(b));
                static const char reply[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
                (void) write(fd, reply, sizeof(reply) - 1);
                (void) close(fd);
        }
        return NULL;
}

/* Streamed bodies (on_body) and cancellation: a 2xx body goes to the callback and not into the
 * response; a non-2xx body is kept; the callback's error and a cancellation end the transfer. */
struct sink {
        size_t bytes, calls;
        int fail_with;
        unsigned polls;
};

static int sink_body(void *userdata, const void *data, size_t len) {
        struct sink *k = userdata;
        (void) data;
        k->bytes += len;
        k->calls++;
        return k->fail_with;
}

static bool sink_cancel(void *userdata) {
        struct sink *k = userdata;
        return ++k->polls > 0;
}

static void test_stream(struct standin *s) {
        struct http_options o = {.base_url = s->addr, .ca_file = s->ca_path, .max_body = 16};
        _cleanup_http_client_ struct http_client *c = NULL;
        struct http_result res;
        if (!ok(http_client_new(&o, &c) == 0, "stream: a client whose max_body is 16"))
                return;
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct sink k = {};
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/sys/health",
                                           .on_body = sink_body,
                                           .on_body_userdata = &k};
                int r = http_request(c, &req, &resp, &res);
                ok(r == 0 && resp.status == 200 && k.bytes > 16 && resp.body.len == 0,
                   "stream: a 2xx body (%zu bytes, over max_body) goes to on_body, not into the "
                   "response (%d)",
                   k.bytes, r);
        }
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct sink k = {};
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/nothing/here",
                                           .on_body = sink_body,
                                           .on_body_userdata = &k};
                (void) control(s, "POST", "/_standin/fault",
                               "{\"match\":\"/v1/nothing\",\"status\":404,\"body\":\"{}\"}");
                int r = http_request(c, &req, &resp, &res);
                ok(r == 0 && resp.status == 404 && k.calls == 0 && resp.body.len == 2,
                   "stream: a 404's body is kept, not streamed (%d %ld)", r, resp.status);
                (void) control(s, "DELETE", "/_standin/fault", NULL);
        }
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct sink k = {.fail_with = -EPIPE};
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/sys/health",
                                           .on_body = sink_body,
                                           .on_body_userdata = &k};
                int r = http_request(c, &req, &resp, &res);
                ok(r == -EPIPE && k.calls == 1 && res.attempts == 1,
                   "stream: on_body's error ends the transfer, returned, not retried (%d)", r);
        }
        {
                _cleanup_http_response_ struct http_response resp = {};
                struct sink k = {};
                (void) control(s, "POST", "/_standin/fault",
                               "{\"match\":\"/v1/sys/health\",\"kind\":\"delay\",\"delay_ms\":"
                               "3000}");
                struct http_request req = {.method = HTTP_GET,
                                           .path = "/v1/sys/health",
                                           .on_body = sink_body,
                                           .on_body_userdata = &k,
                                           .cancelled = sink_cancel,
                                           .cancelled_userdata = &k};
                int r = http_request(c, &req, &resp, &res);
                ok(r == -ECANCELED && k.polls > 0 && k.calls == 0,
                   "stream: cancelled while the server is silent: -ECANCELED (%d)", r);
                (void) control(s, "DELETE", "/_standin/fault", NULL);
        }
}

static void test_probe(struct standin *s) {
        char origin[64];
        is_int(http_probe_plain_http("http://127.0.0.1:1", 1000), -EINVAL,
               "probe: an http:// origin is -EINVAL");
        is_int(http_probe_plain_http(s->addr, 5000), 0,
               "probe: a TLS server is not plain HTTP (it answers our record in TLS)");
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        pthread_t t;
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &sl) < 0 ||
            pthread_create(&t, NULL, plain_server, &lfd) != 0) {
                ok(false, "probe: a listener for the plain server");
                return;
        }
        (void) snprintf(origin, sizeof(origin), "https://127.0.0.1:%u", ntohs(sa.sin_port));
        is_int(http_probe_plain_http(origin, 30000), 1, "probe: a plain-HTTP server is one");
        (void) pthread_join(t, NULL);
        (void) close(lfd);
        is_int(http_probe_plain_http(origin, 5000), 0,
               "probe: nothing listening (the port closed) is not plain HTTP");
}

/* ---- a server named by its IP address (tls_ctx_verify_ip) --------------------------------- */

static int ok_handler(void *userdata, const struct httpd_request *req,
                      struct httpd_response *resp) {
        resp->status = 200;
        return buf_append_str(&resp->body, "ok");
}

static void *ip_loop(void *p) {
        (void) httpd_run(p);
        return NULL;
}

/* A leaf of the test CA with these names (PEM pair). */
static int make_leaf(const struct tls_key *ca_key, const struct tls_cert *ca, const char *cn,
                     const struct tls_san *san, struct buf *pem, struct buf *key) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        _cleanup_tls_cert_ struct tls_cert leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        int64_t now = time(NULL);
        struct tls_cert_params p = {.common_name = cn,
                                    .san = *san,
                                    .not_before = now - 60,
                                    .not_after = now + 3600,
                                    .usage = TLS_USAGE_SERVER};
        int r = tls_key_generate(&k);
        if (r >= 0)
                r = tls_key_public_der(k, &spki);
        if (r >= 0)
                r = tls_cert_issue(ca_key, ca, (const uint8_t *) spki.data, spki.len, &p, &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, pem);
        if (r >= 0)
                r = tls_key_export_pem(k, key);
        return r < 0 ? r : 0;
}

/* ... installed on the server. */
static int serve_leaf(struct tls_server *srv, const struct tls_key *ca_key,
                      const struct tls_cert *ca, const char *cn, const struct tls_san *san) {
        _cleanup_buf_ struct buf pem = BUF_INIT(65536, 0), key = BUF_INIT(65536, BUF_SECURE);
        int r = make_leaf(ca_key, ca, cn, san, &pem, &key);
        if (r >= 0)
                r = tls_server_set_cert_pem(srv, pem.data, pem.len, key.data, key.len);
        return r < 0 ? r : 0;
}

static int fetch(const char *url, const struct buf *ca, bool file_ca) {
        char path[] = "/tmp/ct-http-ca-XXXXXX";
        struct http_options o = {.base_url = url};
        _cleanup_http_client_ struct http_client *c = NULL;
        _cleanup_http_response_ struct http_response resp = {};
        struct http_result res;
        int fd = -1, r;
        if (file_ca) {
                fd = mkstemp(path);
                if (fd < 0 || write(fd, ca->data, ca->len) != (ssize_t) ca->len)
                        return -EIO;
                (void) close(fd);
                o.ca_file = path;
        } else {
                o.ca_pem = ca->data;
                o.ca_pem_len = ca->len;
        }
        o.max_attempts = 1;
        r = http_client_new(&o, &c);
        if (r >= 0)
                r = get(c, "/", true, &resp, &res);
        if (file_ca)
                (void) unlink(path);
        return r < 0 ? r : resp.status == 200 ? 0 : -EPROTO;
}

static void test_ip_names(void) {
        struct tls_ip ip;
        is_int(tls_ip_parse("198.18.0.1", &ip), 0, "tls_ip_parse: IPv4");
        ok(ip.family == AF_INET && ip.addr[0] == 198 && ip.addr[3] == 1, "  its bytes");
        is_int(tls_ip_parse("[fd00::1]", &ip), 0, "tls_ip_parse: IPv6 in brackets");
        ok(ip.family == AF_INET6 && ip.addr[0] == 0xfd && ip.addr[15] == 1, "  its bytes");
        static const char *const not_ip[] = {"",      "[]",           "broker.example",
                                             "127.1", "1.2.3.4.5",    "[1.2.3.4",
                                             "::1]",  "fe80::1%eth0", "[fd00::1]x"};
        for (size_t i = 0; i < ELEMENTSOF(not_ip); i++)
                is_int(tls_ip_parse(not_ip[i], &ip), -EINVAL, "tls_ip_parse: '%s' is no address",
                       not_ip[i]);

        _cleanup_tls_key_ struct tls_key *ca_key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {};
        _cleanup_buf_ struct buf ca_pem = BUF_INIT(65536, 0);
        int64_t now = time(NULL);
        struct tls_cert_params cp = {.common_name = "ip test CA",
                                     .not_before = now - 60,
                                     .not_after = now + 86400,
                                     .path_len = 0};
        const char *v4[] = {"127.0.0.1"}, *v6[] = {"::1"}, *other[] = {"127.0.0.2"},
                   *as_dns[] = {"127.0.0.1"}, *wild[] = {"*.0.0.1"}, *dns[] = {"localhost"};
        struct tls_san one = {.ip = v4, .n_ip = 1};
        if (!ok(tls_key_generate(&ca_key) == 0 && tls_cert_create_ca(ca_key, &cp, &ca) == 0 &&
                        tls_cert_encode_pem(&ca, &ca_pem) == 0,
                "ip: a test CA"))
                return;
        /* The server starts with a throw-away pair, replaced per case. */
        _cleanup_tls_server_ struct tls_server *tls = NULL;
        {
                _cleanup_buf_ struct buf pem = BUF_INIT(65536, 0),
                                         key = BUF_INIT(65536, BUF_SECURE);
                int r = make_leaf(ca_key, &ca, "x", &one, &pem, &key);
                struct tls_server_options to = {.cert_pem = pem.data,
                                                .cert_len = pem.len,
                                                .key_pem = key.data,
                                                .key_len = key.len};
                if (!ok(r >= 0 && tls_server_new(&to, &tls) == 0, "ip: a TLS server"))
                        return;
        }
        struct httpd *srv4 = NULL, *srv6 = NULL;
        pthread_t t4, t6;
        struct httpd_options ho = {.address = "127.0.0.1:0", .tls = tls, .handler = ok_handler};
        if (!ok(httpd_new(&ho, &srv4) == 0 && pthread_create(&t4, NULL, ip_loop, srv4) == 0,
                "ip: serving on 127.0.0.1"))
                return;
        ho.address = "[::1]:0";
        bool have6 = httpd_new(&ho, &srv6) == 0 && pthread_create(&t6, NULL, ip_loop, srv6) == 0;
        char u4[64], u6[64], ul[64];
        (void) snprintf(u4, sizeof(u4), "https://127.0.0.1:%d", httpd_port(srv4));
        (void) snprintf(ul, sizeof(ul), "https://localhost:%d", httpd_port(srv4));
        if (have6)
                (void) snprintf(u6, sizeof(u6), "https://[::1]:%d", httpd_port(srv6));

        const char *both[] = {"::1", "127.0.0.1"};
        const struct {
                const char *name, *cn;
                struct tls_san san;
                int v4, v6; /* the results for https://127.0.0.1 and https://[::1] */
        } cases[] = {
                {"an iPAddress SAN 127.0.0.1", "broker", {.ip = v4, .n_ip = 1}, 0, -EPROTO},
                {"an iPAddress SAN ::1", "broker", {.ip = v6, .n_ip = 1}, -EPROTO, 0},
                {"both, and a DNS name",
                 "broker",
                 {.dns = dns, .n_dns = 1, .ip = both, .n_ip = 2},
                 0,
                 0},
                {"another address only", "broker", {.ip = other, .n_ip = 1}, -EPROTO, -EPROTO},
                {"the address as a DNS SAN",
                 "broker",
                 {.dns = as_dns, .n_dns = 1},
                 -EPROTO,
                 -EPROTO},
                {"a wildcard DNS SAN *.0.0.1",
                 "broker",
                 {.dns = wild, .n_dns = 1},
                 -EPROTO,
                 -EPROTO},
                {"no SAN, the address as CN", "127.0.0.1", {}, -EPROTO, -EPROTO},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (!ok(serve_leaf(tls, ca_key, &ca, cases[i].cn, &cases[i].san) == 0,
                        "ip: serving %s", cases[i].name))
                        continue;
                for (int file = 0; file <= 1; file++) {
                        is_int(fetch(u4, &ca_pem, file), cases[i].v4, "https://127.0.0.1, %s (%s)",
                               cases[i].name, file ? "CA file" : "inline CA");
                        if (have6)
                                is_int(fetch(u6, &ca_pem, file), cases[i].v6,
                                       "https://[::1], %s (%s)", cases[i].name,
                                       file ? "CA file" : "inline CA");
                }
        }
        /* A DNS host is still checked by curl's rule: the name in a DNS SAN. */
        (void) serve_leaf(tls, ca_key, &ca, "broker", &(struct tls_san){.dns = dns, .n_dns = 1});
        is_int(fetch(ul, &ca_pem, false), 0, "https://localhost: a DNS SAN localhost");
        (void) serve_leaf(tls, ca_key, &ca, "broker", &one);
        is_int(fetch(ul, &ca_pem, false), -EPROTO,
               "https://localhost: refused with only the iPAddress SAN 127.0.0.1");
        if (!have6)
                diag("no IPv6 loopback here: the [::1] cases were skipped");

        httpd_stop(srv4);
        (void) pthread_join(t4, NULL);
        httpd_free(srv4);
        if (have6) {
                httpd_stop(srv6);
                (void) pthread_join(t6, NULL);
        }
        httpd_free(srv6);
}

int main(void) {
        struct standin *s = NULL;
        int r;

        test_retry_after();
        test_escape();
        test_retryable();
        test_options();
        test_origin();
        test_ip_names();

        r = standin_start(NULL, &s);
        if (r < 0) {
                ok(false, "stand-in vault starts (%d)", r);
                return tap_done();
        }
        test_transport(s);
        test_trust(s);
        test_url(s);
        test_stream(s);
        test_probe(s);
        standin_stop(s);
        return tap_done();
}
