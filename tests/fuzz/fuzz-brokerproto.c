/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the broker protocol's parsers (common/brokerproto.h; untrusted: every request body
 * and token comes from a pod, every response from the network). The first byte picks the parser:
 * 0 session token, 1 session request, 2 renew request, 3 paths request, 4 session response,
 * 5 secrets response, 6 versions response, 7 Authorization header. Properties: a token is never
 * accepted without its MAC (a fixed key: random input cannot carry a valid MAC, so acceptance is a
 * failure; a token issued here for the input's fields is verified instead); an accepted request
 * has its fields within limits (paths valid, distinct, at most BROKERPROTO_MAX_PATHS); an accepted
 * response has the documented shape. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/brokerproto.h"
#include "common/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct brokerproto_keys *keys(void) {
        static struct brokerproto_keys *k;
        static const uint8_t a[32] = {7}, i[32] = {9};
        if (!k && brokerproto_keys_new(a, 32, i, 32, &k) < 0)
                abort();
        return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *s = (const char *) data + 1;
        size_t n = size - 1;
        switch (data[0] % 8) {
        case 0: {
                struct brokerproto_session ss = {};
                if (brokerproto_token_verify(keys(), s, n, 1000, &ss) == 0)
                        abort(); /* no valid MAC in random input */
                break;
        }
        case 1:
        case 2: {
                struct brokerproto_session_request r = {};
                if (brokerproto_session_request_parse(s, n, data[0] % 8 == 2, &r) == 0) {
                        if (!r.csr || !*r.csr || strlen(r.csr) > BROKERPROTO_MAX_CSR)
                                abort();
                        if ((data[0] % 8 == 2) != (r.jwt == NULL))
                                abort();
                        if (r.jwt && (!*r.jwt || strlen(r.jwt) > BROKERPROTO_MAX_JWT))
                                abort();
                        brokerproto_session_request_done(&r);
                }
                break;
        }
        case 3: {
                struct brokerproto_paths_request p = {};
                if (brokerproto_paths_request_parse(s, n, &p) == 0) {
                        if (p.n_paths == 0 || p.n_paths > BROKERPROTO_MAX_PATHS)
                                abort();
                        for (size_t i = 0; i < p.n_paths; i++) {
                                if (!vault_path_valid(p.paths[i]) ||
                                    strlen(p.paths[i]) >= BROKERPROTO_MAX_PATH)
                                        abort();
                                for (size_t j = 0; j < i; j++)
                                        if (strcmp(p.paths[i], p.paths[j]) == 0)
                                                abort();
                        }
                        /* A session naming exactly these paths round-trips through a token. */
                        struct brokerproto_session in = {.ns = "ns",
                                                         .pod = "p",
                                                         .uid = "u",
                                                         .sa = "sa",
                                                         .paths = (char **) p.paths,
                                                         .n_paths = p.n_paths,
                                                         .iat = 900,
                                                         .exp = 1500};
                        struct buf tok = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
                        int r = brokerproto_token_issue(keys(), &in, &tok);
                        if (r == 0) {
                                struct brokerproto_session out = {};
                                if (brokerproto_token_verify(keys(), tok.data, tok.len, 1000,
                                                             &out) != 0 ||
                                    out.n_paths != p.n_paths)
                                        abort();
                                for (size_t i = 0; i < p.n_paths; i++)
                                        if (!brokerproto_session_allows(&out, p.paths[i]))
                                                abort();
                                brokerproto_session_done(&out);
                        } else if (r != -E2BIG)
                                abort();
                        buf_done(&tok);
                        brokerproto_paths_request_done(&p);
                }
                break;
        }
        case 4: {
                struct brokerproto_session_response r = {};
                if (brokerproto_session_response_parse(s, n, &r) == 0) {
                        if (!*r.token || !*r.certificate || !*r.ca ||
                            strlen(r.token) > BROKERPROTO_MAX_TOKEN)
                                abort();
                        brokerproto_session_response_done(&r);
                }
                break;
        }
        case 5:
        case 6: {
                bool versions = data[0] % 8 == 6;
                struct brokerproto_secrets_response r = {};
                if (brokerproto_secrets_response_parse(s, n, versions, &r) == 0) {
                        if (json_type(r.secrets) != JSON_OBJECT ||
                            json_count(r.secrets) > BROKERPROTO_MAX_PATHS)
                                abort();
                        JSON_FOREACH(e, r.secrets)
                        if (!vault_path_valid(json_key(e)) ||
                            (versions ? json_type(e) != JSON_NUMBER
                                      : json_type(json_get(e, "data")) != JSON_OBJECT))
                                abort();
                        brokerproto_secrets_response_done(&r);
                }
                break;
        }
        case 7: {
                char *h = malloc(n + 1);
                if (!h)
                        abort();
                memcpy(h, s, n);
                h[n] = '\0';
                const char *t = brokerproto_bearer(h);
                if (t && (!*t || t < h || t > h + strlen(h)))
                        abort();
                free(h);
                break;
        }
        }
        return 0;
}
