/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of wrapper/unseal, the sealed mode's server, over real TLS on 127.0.0.1 with
 * certificates made here: GET /v1/status and /v1/ready to anyone, before and after; every refusal
 * of POST /v1/unseal (no client certificate, one from another CA, the wrong name, a serverAuth-only
 * certificate, an oversized or malformed body, the accept callback's own refusal, a second
 * unseal), each of which leaves the wrapper sealed and the callback uncalled; and the unseal that
 * works (the callback gets the token and the wrapped flag, the eventfd becomes readable).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/injection.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "tests/tap.h"
#include "wrapper/unseal.h"

struct pem {
        struct buf cert, key;
};

static void pem_done(struct pem *p) {
        buf_done(&p->cert);
        buf_done(&p->key);
}

struct ca {
        struct tls_key *key;
        struct tls_cert cert;
        struct buf pem;
};

static int64_t now(void) {
        return (int64_t) time(NULL);
}

static int make_ca(struct ca *ca, const char *cn) {
        struct tls_cert_params p = {.common_name = cn,
                                    .not_before = now(),
                                    .not_after = now() + 86400,
                                    .backdate = 3600,
                                    .path_len = -1};
        ca->pem = BUF_INIT(16384, 0);
        if (tls_key_generate(&ca->key) < 0 || tls_cert_create_ca(ca->key, &p, &ca->cert) < 0)
                return -1;
        return tls_cert_encode_pem(&ca->cert, &ca->pem);
}

static void ca_done(struct ca *ca) {
        tls_key_free(ca->key);
        tls_cert_done(&ca->cert);
        buf_done(&ca->pem);
}

static int make_leaf(const struct ca *ca, const char *cn, const char *dns, unsigned usage,
                     struct pem *ret) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        _cleanup_tls_cert_ struct tls_cert c = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        const char *names[] = {dns};
        struct tls_cert_params p = {.common_name = cn,
                                    .san = {.dns = names, .n_dns = dns ? 1 : 0},
                                    .not_before = now(),
                                    .not_after = now() + 86400,
                                    .backdate = 3600,
                                    .usage = usage,
                                    .path_len = -1};
        ret->cert = BUF_INIT(16384, 0);
        ret->key = BUF_INIT(16384, BUF_SECURE);
        if (tls_key_generate(&k) < 0 || tls_key_public_der(k, &spki) < 0 ||
            tls_cert_issue(ca->key, &ca->cert, (const uint8_t *) spki.data, spki.len, &p, &c) < 0)
                return -1;
        if (tls_cert_encode_pem(&c, &ret->cert) < 0 || tls_key_export_pem(k, &ret->key) < 0)
                return -1;
        return 0;
}

/* What the accept callback saw. */
static unsigned calls;
static char got_token[64];
static bool got_wrapped;
static int next_answer; /* what it returns */

static int accept_cb(void *userdata, const char *token, size_t len, bool wrapped, char *reason,
                     size_t reason_size) {
        calls++;
        (void) snprintf(got_token, sizeof(got_token), "%.*s", (int) len, token);
        got_wrapped = wrapped;
        if (next_answer)
                (void) snprintf(reason, reason_size, "the vault refused the wrapping token");
        return next_answer;
}

static int port;

/* One request; returns the status (0: no answer, e.g. a refused handshake) and the body. */
static long request(const struct pem *client, enum http_method m, const char *path,
                    const char *body, size_t body_len, char *ret_body, size_t ret_size) {
        struct http_client *c = NULL;
        char url[64];
        (void) snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
        struct http_options o = {
                .base_url = url,
                .insecure_skip_verify = true, /* the server's certificate is self-signed */
                .client_cert_pem = client ? buf_cstr(&client->cert) : NULL,
                .client_cert_pem_len = client ? client->cert.len : 0,
                .client_key_pem = client ? buf_cstr(&client->key) : NULL,
                .client_key_pem_len = client ? client->key.len : 0,
                .max_attempts = 1,
                .deadline_ms = 20000,
                .request_timeout_ms = 20000,
        };
        if (http_client_new(&o, &c) < 0)
                return -1;
        _cleanup_buf_ struct buf b = BUF_INIT(UNSEAL_MAX_BODY * 4, BUF_SECURE);
        if (body)
                (void) buf_append(&b, body, body_len);
        struct http_request req = {
                .method = m, .path = path, .body = body ? &b : NULL, .no_retry = true};
        struct http_response resp = {};
        struct http_result res = {};
        long st = 0;
        if (http_request(c, &req, &resp, &res) >= 0)
                st = resp.status;
        if (ret_body)
                (void) snprintf(ret_body, ret_size, "%s", st ? buf_cstr(&resp.body) : "");
        http_response_done(&resp);
        http_client_free(c);
        return st;
}

static long post(const struct pem *client, const char *body, char *ret_body, size_t ret_size) {
        return request(client, HTTP_POST, "/v1/unseal", body, strlen(body), ret_body, ret_size);
}

static bool readable(int fd) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, 0) == 1;
}

int main(void) {
        struct ca ca = {}, other = {};
        struct pem op = {}, foreign = {}, wrong_name = {}, server_only = {}, by_san = {};
        struct unseal *u = NULL;
        char body[512];

        /* A refused handshake: the client's TLS layer may write to the closed socket. */
        (void) signal(SIGPIPE, SIG_IGN);
        ok(make_ca(&ca, "unseal test CA") == 0 && make_ca(&other, "another CA") == 0, "two CAs");
        ok(make_leaf(&ca, INJECTION_UNSEAL_CLIENT_NAME, NULL, TLS_USAGE_CLIENT, &op) == 0 &&
                   make_leaf(&other, INJECTION_UNSEAL_CLIENT_NAME, NULL, TLS_USAGE_CLIENT,
                             &foreign) == 0 &&
                   make_leaf(&ca, "somebody-else", NULL, TLS_USAGE_CLIENT, &wrong_name) == 0 &&
                   make_leaf(&ca, INJECTION_UNSEAL_CLIENT_NAME, NULL, TLS_USAGE_SERVER,
                             &server_only) == 0 &&
                   make_leaf(&ca, "any", INJECTION_UNSEAL_CLIENT_NAME, TLS_USAGE_CLIENT, &by_san) ==
                           0,
           "client certificates: the operator's, another CA's, a wrong name, serverAuth only, "
           "the name as a DNS SAN");

        struct unseal_options o = {.listen = "127.0.0.1:0",
                                   .client_ca_pem = buf_cstr(&ca.pem),
                                   .client_ca_len = ca.pem.len,
                                   .client_name = INJECTION_UNSEAL_CLIENT_NAME,
                                   .accept = accept_cb};
        struct unseal_options bad = o;
        bad.client_ca_pem = "not a certificate";
        bad.client_ca_len = strlen(bad.client_ca_pem);
        ok(unseal_new(&bad, &u) < 0 && !u, "a CA bundle without a certificate is refused");
        bad = o;
        bad.client_name = "";
        is_int(unseal_new(&bad, &u), -EINVAL, "an empty client name is refused");
        bad = o;
        bad.listen = "no port";
        ok(unseal_new(&bad, &u) < 0, "a bad listen address is refused");

        is_int(unseal_new(&o, &u), 0, "server created");
        if (!u)
                return tap_done();
        is_int(unseal_start(u), 0, "server started");
        port = unseal_port(u);
        ok(port > 0, "bound to a port");
        ok(unseal_sealed(u) && !readable(unseal_fd(u)), "sealed at the start");

        is_int(request(NULL, HTTP_GET, "/v1/status", NULL, 0, body, sizeof(body)), 200,
               "GET /v1/status without a client certificate: 200");
        ok(strstr(body, "{\"sealed\": true}") != NULL, "  {\"sealed\": true}");
        is_int(request(NULL, HTTP_GET, "/v1/ready", NULL, 0, body, sizeof(body)), 503,
               "GET /v1/ready while sealed: 503");
        is_int(request(NULL, HTTP_GET, "/v1/unseal", NULL, 0, NULL, 0), 405, "GET /v1/unseal: 405");
        is_int(request(NULL, HTTP_GET, "/v1/other", NULL, 0, NULL, 0), 404, "another path: 404");

        /* Every refusal: the callback is not called, the wrapper stays sealed. */
        const char *good = "{\"token\": \"s.TESTTOKEN\"}";
        is_int(post(NULL, good, body, sizeof(body)), 401,
               "unseal without a client certificate: 401");
        ok(strstr(body, "client certificate is required") != NULL, "  says why");
        is_int(post(&foreign, good, NULL, 0), 0,
               "a certificate of another CA: the handshake fails, no answer");
        is_int(post(&wrong_name, good, body, sizeof(body)), 403, "another name: 403");
        ok(strstr(body, "not the operator's") != NULL, "  says why");
        long st = post(&server_only, good, body, sizeof(body));
        ok(st == 403 || st == 0, "a serverAuth-only certificate: refused (403 or no handshake)");
        char *big = malloc(UNSEAL_MAX_BODY + 2048);
        if (big) {
                memset(big, 'a', UNSEAL_MAX_BODY + 2047);
                memcpy(big, "{\"token\": \"", 11);
                big[UNSEAL_MAX_BODY + 2046] = '}';
                big[UNSEAL_MAX_BODY + 2045] = '"';
                big[UNSEAL_MAX_BODY + 2047] = '\0';
                is_int(post(&op, big, NULL, 0), 413, "a body over 8 KiB: 413");
                free(big);
        }
        static const char *const malformed[] = {
                "",
                "not json",
                "[\"s.x\"]",
                "{}",
                "{\"token\": 1}",
                "{\"token\": \"\"}",
                "{\"token\": \"with space\"}",
                "{\"token\": \"s.x\", \"wrapped\": \"yes\"}",
                "{\"token\": \"s.x\"",
                "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": 1}}}}, \"token\": \"s.x\"}",
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                is_int(post(&op, malformed[i], NULL, 0), 400, "malformed body %zu: 400", i);
        is_int(calls, 0, "the callback was not called for any of them");
        ok(unseal_sealed(u) && !readable(unseal_fd(u)), "still sealed");

        next_answer = 422;
        is_int(post(&op, "{\"token\": \"s.WRAPPED\", \"wrapped\": true}", body, sizeof(body)), 422,
               "the callback's refusal is the answer");
        ok(calls == 1 && got_wrapped && strcmp(got_token, "s.WRAPPED") == 0,
           "  it got the token and wrapped=true");
        ok(strstr(body, "refused the wrapping token") != NULL, "  with its reason");
        ok(unseal_sealed(u), "  still sealed after it");

        next_answer = 0;
        is_int(post(&by_san, good, body, sizeof(body)), 200,
               "the operator's name as a DNS SAN: unsealed (200)");
        ok(strstr(body, "{\"sealed\": false}") != NULL, "  {\"sealed\": false}");
        ok(calls == 2 && !got_wrapped && strcmp(got_token, "s.TESTTOKEN") == 0,
           "  the callback got the token, wrapped defaults to false");
        ok(!unseal_sealed(u) && readable(unseal_fd(u)), "  unsealed, the eventfd is readable");
        is_int(post(&op, good, body, sizeof(body)), 409, "a second unseal: 409");
        is_int(calls, 2, "  the callback was not called again");
        is_int(request(NULL, HTTP_GET, "/v1/status", NULL, 0, body, sizeof(body)), 200,
               "GET /v1/status: 200");
        ok(strstr(body, "{\"sealed\": false}") != NULL, "  {\"sealed\": false}");
        is_int(request(NULL, HTTP_GET, "/v1/ready", NULL, 0, body, sizeof(body)), 503,
               "GET /v1/ready before the workload started: 503");
        ok(strstr(body, "\"sealed\": false") != NULL, "  unsealed, not ready");
        unseal_set_ready(u);
        is_int(request(NULL, HTTP_GET, "/v1/ready", NULL, 0, NULL, 0), 200,
               "GET /v1/ready once started: 200");

        u = unseal_free(u);
        pem_done(&op);
        pem_done(&foreign);
        pem_done(&wrong_name);
        pem_done(&server_only);
        pem_done(&by_san);
        ca_done(&ca);
        ca_done(&other);
        return tap_done();
}
