/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for common/brokerproto: key derivation is deterministic (two "replicas" agree) and
 * separates installations; a token round-trips and binds every field; altered, forged, expired,
 * future, other-installation and malformed tokens are refused with the documented errors; the
 * annotation MAC detects any edit; request and response parsers enforce their shapes and limits;
 * the derived session CA key is the same on every replica.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/macro.h"
#include "common/tls/cert.h"
#include "tests/tap.h"

static const uint8_t AUTH[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t INST[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
                                 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
                                 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

static char *paths_ab[] = {"secret/data/team-a/db", "secret/data/team-a/api"};

static struct brokerproto_session sample(void) {
        struct brokerproto_session s = {
                .ns = "team-a",
                .pod = "app-7d9f",
                .uid = "0b8e6f0e-1111-2222-3333-444455556666",
                .sa = "default",
                .paths = paths_ab,
                .n_paths = 2,
                .iat = 1000000,
                .exp = 1000900,
        };
        memset(s.cert_sha256, 0x42, sizeof(s.cert_sha256));
        return s;
}

static int issue(const struct brokerproto_keys *k, const struct brokerproto_session *s,
                 struct buf *out) {
        buf_reset(out);
        return brokerproto_token_issue(k, s, out);
}

int main(void) {
        struct brokerproto_keys *k1 = NULL, *k2 = NULL, *other = NULL;
        uint8_t inst2[32];
        memcpy(inst2, INST, 32);
        inst2[0] ^= 1;

        is_int(brokerproto_keys_new(AUTH, 32, INST, 32, &k1), 0, "keys for replica 1");
        is_int(brokerproto_keys_new(AUTH, 32, INST, 32, &k2), 0, "keys for replica 2");
        is_int(brokerproto_keys_new(AUTH, 32, inst2, 32, &other), 0,
               "keys of another installation");
        is_int(brokerproto_keys_new(AUTH, 31, INST, 32, &k2), -EINVAL,
               "a short broker-auth refused");
        ok(memcmp(k1->session_mac, k2->session_mac, 32) == 0 &&
                   strcmp(k1->installation, k2->installation) == 0,
           "two replicas derive the same keys");
        ok(memcmp(k1->session_mac, other->session_mac, 32) != 0 &&
                   strcmp(k1->installation, other->installation) != 0,
           "another installation derives other keys");
        ok(memcmp(k1->session_mac, k1->annotation, 32) != 0, "session and annotation keys differ");
        ok(strlen(k1->installation) == 16, "installation id is 16 hex digits");
        {
                char id[BROKERPROTO_INSTALLATION_SIZE] = "unchanged";
                is_int(brokerproto_installation_id(INST, 32, id), 0,
                       "the installation id from broker-token alone");
                is_str(id, k1->installation, "  the keys' installation id");
                /* openssl dgst -sha256 -mac HMAC -macopt hexkey:a0a1..bf, its first 16 digits
                 * (what tests/e2e/test-real-sealed.sh computes for its sealed pods' label) */
                is_str(id, "593d1d91fc1324ac", "  HMAC(broker-token, info), 8 bytes in hex");
                is_int(brokerproto_installation_id(INST, 31, id), -EINVAL,
                       "  a short broker-token refused");
                is_str(id, "593d1d91fc1324ac", "  and the output left alone");
        }

        _cleanup_buf_ struct buf tok = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
        _cleanup_buf_ struct buf plain = BUF_INIT(BROKERPROTO_MAX_TOKEN, 0);
        struct brokerproto_session s = sample();
        is_int(brokerproto_token_issue(k1, &s, &plain), -EINVAL, "a non-secure output refused");
        is_int(issue(k1, &s, &tok), 0, "issue a token");
        ok(strncmp(buf_cstr(&tok), "ctbs1.", 6) == 0, "token has the v1 prefix");
        {
                struct brokerproto_session got = {};
                is_int(brokerproto_token_verify(k2, tok.data, tok.len, 1000100, &got), 0,
                       "replica 2 accepts a token issued by replica 1");
                is_str(got.ns, "team-a", "namespace bound");
                is_str(got.pod, "app-7d9f", "pod bound");
                is_str(got.uid, s.uid, "UID bound");
                is_str(got.sa, "default", "service account bound");
                ok(got.n_paths == 2 && brokerproto_session_allows(&got, paths_ab[0]) &&
                           brokerproto_session_allows(&got, paths_ab[1]),
                   "both paths allowed");
                ok(!brokerproto_session_allows(&got, "secret/data/team-b/db") &&
                           !brokerproto_session_allows(&got, "secret/data/team-a"),
                   "other paths and prefixes not allowed");
                ok(got.iat == s.iat && got.exp == s.exp &&
                           memcmp(got.cert_sha256, s.cert_sha256, 32) == 0,
                   "times and certificate key bound");
                is_str(got.installation, k1->installation, "installation bound");
                brokerproto_session_done(&got);
        }
        struct brokerproto_session got = {};
        is_int(brokerproto_token_verify(other, tok.data, tok.len, 1000100, &got), -EPERM,
               "another installation refuses it");
        is_int(brokerproto_token_verify(k1, tok.data, tok.len, 1000900, &got), -EKEYEXPIRED,
               "refused at exp");
        is_int(brokerproto_token_verify(k1, tok.data, tok.len, 1000000 - 31, &got), -EKEYEXPIRED,
               "refused when issued in the future beyond the skew");
        is_int(brokerproto_token_verify(k1, tok.data, tok.len, 1000000 - 30, &got), 0,
               "accepted within the skew");
        brokerproto_session_done(&got);
        /* Flip every byte of the token in turn: never accepted. */
        {
                bool all = true;
                _cleanup_free_ char *copy = malloc(tok.len);
                for (size_t i = 0; i < tok.len; i++) {
                        memcpy(copy, tok.data, tok.len);
                        copy[i] ^= 0x01;
                        int r = brokerproto_token_verify(k1, copy, tok.len, 1000100, &got);
                        if (r == 0) {
                                all = false;
                                brokerproto_session_done(&got);
                        }
                }
                ok(all, "no single-bit change of a token is accepted");
                is_int(brokerproto_token_verify(k1, tok.data, tok.len - 1, 1000100, &got) < 0, 1,
                       "a truncated token refused");
        }
        /* A forged token: a payload naming another pod with the MAC of the real one. */
        {
                struct brokerproto_session f = sample();
                f.ns = "team-b";
                _cleanup_buf_ struct buf ft = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
                is_int(issue(other, &f, &ft), 0, "a token of another key");
                const char *dot_real = strrchr(tok.data, '.'), *dot_f = strrchr(ft.data, '.');
                _cleanup_buf_ struct buf forged = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
                (void) buf_append(&forged, ft.data, (size_t) (dot_f - ft.data));
                (void) buf_append_str(&forged, dot_real);
                is_int(brokerproto_token_verify(k1, forged.data, forged.len, 1000100, &got), -EPERM,
                       "a payload with another token's MAC is refused");
        }
        static const char *bad[] = {
                "",         "ctbs1.",          "ctbs1..",        "ctbs2.e30=.AAAA",
                "Bearer x", "ctbs1.e30=.AAAA", "ctbs1.!!!!.AAAA"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ok(brokerproto_token_verify(k1, bad[i], strlen(bad[i]), 1000100, &got) == -EBADMSG,
                   "malformed token %zu refused as -EBADMSG", i);
        /* Invalid sessions are not issued. */
        {
                struct brokerproto_session b = sample();
                b.exp = b.iat + BROKERPROTO_SESSION_TTL_MAX + 1;
                is_int(issue(k1, &b, &tok), -EINVAL, "a TTL over the maximum refused");
                b = sample();
                b.n_paths = 0;
                is_int(issue(k1, &b, &tok), -EINVAL, "no paths refused");
                b = sample();
                char *dots[] = {"secret/data/../x"};
                b.paths = dots;
                b.n_paths = 1;
                is_int(issue(k1, &b, &tok), -EINVAL, "a '..' path refused");
                b = sample();
                b.ns = "team a";
                is_int(issue(k1, &b, &tok), -EINVAL, "a name with a space refused");
        }

        /* Annotation MAC. */
        {
                char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
                uint8_t key[32];
                is_int(brokerproto_annotation_key(AUTH, 32, key), 0,
                       "annotation key from broker-auth");
                ok(memcmp(key, k1->annotation, 32) == 0, "the operator's key is the broker's");
                is_int(brokerproto_annotation_mac(key, "team-a", "default", "secret/data/team-a/db",
                                                  "password=DB_PASSWORD", mac),
                       0, "annotation MAC");
                ok(strncmp(mac, "v1:", 3) == 0 && strlen(mac) == BROKERPROTO_ANNOTATION_MAC_LEN,
                   "MAC format v1:<64 hex>");
                is_int(brokerproto_annotation_mac_check(key, "team-a", "default",
                                                        "secret/data/team-a/db",
                                                        "password=DB_PASSWORD", mac),
                       0, "the same annotations verify");
                is_int(brokerproto_annotation_mac_check(key, "team-a", "default",
                                                        "secret/data/team-b/db",
                                                        "password=DB_PASSWORD", mac),
                       -EPERM, "an edited path is refused");
                is_int(brokerproto_annotation_mac_check(key, "team-a", "default",
                                                        "secret/data/team-a/db", "password=OTHER",
                                                        mac),
                       -EPERM, "an edited env map is refused");
                is_int(brokerproto_annotation_mac_check(key, "team-b", "default",
                                                        "secret/data/team-a/db",
                                                        "password=DB_PASSWORD", mac),
                       -EPERM, "another namespace is refused");
                is_int(brokerproto_annotation_mac_check(key, "team-a", "defaul",
                                                        "tsecret/data/team-a/db",
                                                        "password=DB_PASSWORD", mac),
                       -EPERM, "moving a byte between fields is refused");
                is_int(brokerproto_annotation_mac_check(key, "team-a", "default",
                                                        "secret/data/team-a/db",
                                                        "password=DB_PASSWORD", "v1:00"),
                       -EPERM, "a short MAC is refused");
        }

        /* Requests. */
        {
                struct brokerproto_session_request r = {};
                const char *b = "{\"jwt\":\"eyJ.x.y\",\"csr\":\"-----BEGIN\"}";
                is_int(brokerproto_session_request_parse(b, strlen(b), false, &r), 0,
                       "session request");
                is_str(r.jwt, "eyJ.x.y", "jwt");
                is_str(r.csr, "-----BEGIN", "csr");
                brokerproto_session_request_done(&r);
                b = "{\"csr\":\"x\"}";
                is_int(brokerproto_session_request_parse(b, strlen(b), true, &r), 0,
                       "renew request");
                ok(r.jwt == NULL, "no jwt in a renewal");
                brokerproto_session_request_done(&r);
                static const char *badreq[] = {"{\"jwt\":\"a\"}",
                                               "{\"csr\":\"x\"}",
                                               "{\"jwt\":\"a\",\"csr\":\"x\",\"extra\":1}",
                                               "{\"jwt\":1,\"csr\":\"x\"}",
                                               "[]",
                                               "{",
                                               "{\"jwt\":\"a\\n\",\"csr\":\"x\"}"};
                for (size_t i = 0; i < ELEMENTSOF(badreq); i++)
                        is_int(brokerproto_session_request_parse(badreq[i], strlen(badreq[i]),
                                                                 false, &r),
                               -EBADMSG, "bad session request %zu", i);
                _cleanup_free_ char *big = malloc(BROKERPROTO_MAX_BODY + 2);
                memset(big, ' ', BROKERPROTO_MAX_BODY + 1);
                is_int(brokerproto_session_request_parse(big, BROKERPROTO_MAX_BODY + 1, false, &r),
                       -E2BIG, "a body over the limit");
        }
        {
                struct brokerproto_paths_request p = {};
                const char *b = "{\"paths\":[\"secret/data/a/b\",\"secret/data/a/c\"]}";
                is_int(brokerproto_paths_request_parse(b, strlen(b), &p), 0, "paths request");
                ok(p.n_paths == 2 && strcmp(p.paths[1], "secret/data/a/c") == 0, "two paths");
                brokerproto_paths_request_done(&p);
                static const char *badp[] = {"{\"paths\":[]}",
                                             "{\"paths\":[\"a/../b\"]}",
                                             "{\"paths\":[\"a\",\"a\"]}",
                                             "{\"paths\":\"a\"}",
                                             "{\"paths\":[1]}",
                                             "{}"};
                for (size_t i = 0; i < ELEMENTSOF(badp); i++)
                        is_int(brokerproto_paths_request_parse(badp[i], strlen(badp[i]), &p),
                               -EBADMSG, "bad paths request %zu", i);
                _cleanup_buf_ struct buf many = BUF_INIT(BROKERPROTO_MAX_BODY, 0);
                (void) buf_append_str(&many, "{\"paths\":[");
                for (int i = 0; i <= BROKERPROTO_MAX_PATHS; i++)
                        (void) buf_printf(&many, "%s\"p/%d\"", i ? "," : "", i);
                (void) buf_append_str(&many, "]}");
                is_int(brokerproto_paths_request_parse(many.data, many.len, &p), -EBADMSG,
                       "more than BROKERPROTO_MAX_PATHS paths");
        }
        /* Responses. */
        {
                struct brokerproto_session_response r = {};
                const char *b =
                        "{\"certificate\":\"C\",\"ca\":\"A\",\"token\":\"T\",\"expires_at\":5}";
                is_int(brokerproto_session_response_parse(b, strlen(b), &r), 0, "session response");
                ok(r.expires_at == 5 && strcmp(r.token, "T") == 0, "fields");
                brokerproto_session_response_done(&r);
                b = "{\"certificate\":\"C\",\"ca\":\"A\",\"token\":\"T\\u0000x\",\"expires_at\":5}";
                is_int(brokerproto_session_response_parse(b, strlen(b), &r), -EBADMSG,
                       "a NUL inside the token refused");
                struct brokerproto_secrets_response sr = {};
                b = "{\"secrets\":{\"secret/data/a/"
                    "b\":{\"data\":{\"k\":\"v\"},\"metadata\":{\"version\":3}}}}";
                is_int(brokerproto_secrets_response_parse(b, strlen(b), false, &sr), 0,
                       "secrets response");
                ok(json_count(sr.secrets) == 1, "one path");
                brokerproto_secrets_response_done(&sr);
                b = "{\"versions\":{\"secret/data/a/b\":3}}";
                is_int(brokerproto_secrets_response_parse(b, strlen(b), true, &sr), 0,
                       "versions response");
                brokerproto_secrets_response_done(&sr);
                b = "{\"versions\":{\"secret/data/a/b\":\"3\"}}";
                is_int(brokerproto_secrets_response_parse(b, strlen(b), true, &sr), -EBADMSG,
                       "a non-integer version refused");
        }
        /* Bearer header. */
        is_str(brokerproto_bearer("Bearer abc"), "abc", "bearer token extracted");
        ok(brokerproto_bearer("Basic abc") == NULL && brokerproto_bearer("Bearer ") == NULL &&
                   brokerproto_bearer(NULL) == NULL,
           "other schemes, empty and missing refused");

        /* The session CA key is the same on both replicas. */
        {
                uint8_t s1[32], s2[32];
                brokerproto_session_ca_seed(k1, 0, s1);
                brokerproto_session_ca_seed(k2, 0, s2);
                ok(memcmp(s1, s2, 32) == 0, "same CA seed on both replicas");
                brokerproto_session_ca_seed(k1, 1, s2);
                ok(memcmp(s1, s2, 32) != 0, "the next candidate differs");
                _cleanup_tls_key_ struct tls_key *a = NULL, *b = NULL;
                is_int(tls_key_from_p256_scalar(s1, &a), 0, "P-256 key from the seed");
                is_int(tls_key_from_p256_scalar(s1, &b), 0, "again");
                _cleanup_buf_ struct buf pa = BUF_INIT(4096, 0), pb = BUF_INIT(4096, 0);
                ok(tls_key_public_der(a, &pa) == 0 && tls_key_public_der(b, &pb) == 0 &&
                           pa.len == pb.len && memcmp(pa.data, pb.data, pa.len) == 0,
                   "the same public key both times");
                uint8_t zero[32] = {}, big[32];
                memset(big, 0xff, 32);
                is_int(tls_key_from_p256_scalar(zero, &a), -EINVAL, "scalar 0 refused");
                is_int(tls_key_from_p256_scalar(big, &a), -EINVAL, "scalar >= n refused");
                /* The derived key signs a CSR that verifies. */
                _cleanup_buf_ struct buf csr = BUF_INIT(8192, 0);
                is_int(tls_csr_create(a, "x", NULL, NULL, &csr), 0, "derived key signs a CSR");
                _cleanup_tls_csr_info_ struct tls_csr_info ci = {};
                is_int(tls_csr_parse_pem(csr.data, csr.len, &ci), 0, "whose signature verifies");
        }
        /* Namespace confinement, shared by the broker and the operator's unsealer. */
        {
                char prefix[BROKERPROTO_MAX_PATH], tiny[8];
                is_int(brokerproto_tenant_prefix(NULL, "ns1", prefix, sizeof(prefix)), 0,
                       "tenant prefix, default template");
                is_str(prefix, "secret/data/ns1/", "  secret/data/ns1/");
                is_int(brokerproto_tenant_prefix("kv/data/t-{namespace}/app/", "a", prefix,
                                                 sizeof(prefix)),
                       0, "a template with the namespace inside");
                is_str(prefix, "kv/data/t-a/app/", "  kv/data/t-a/app/");
                is_int(brokerproto_tenant_prefix("shared/", "a", prefix, sizeof(prefix)), 0,
                       "a template without {namespace}");
                is_str(prefix, "shared/", "  the same for every namespace");
                is_int(brokerproto_tenant_prefix(NULL, "", prefix, sizeof(prefix)), -EINVAL,
                       "an empty namespace: -EINVAL");
                is_int(brokerproto_tenant_prefix(NULL, "ns1", tiny, sizeof(tiny)), -E2BIG,
                       "a prefix that does not fit: -E2BIG");
                is_int(brokerproto_path_confined("secret/data/ns1/", "secret/data/ns1/app"), 0,
                       "a path of the namespace: confined");
                is_int(brokerproto_path_confined("secret/data/ns1/", "secret/data/ns10/app"),
                       -EPERM, "another namespace sharing the first letters: -EPERM");
                is_int(brokerproto_path_confined("secret/data/ns1/", "secret/data/ns1"), -EPERM,
                       "the prefix without its slash: -EPERM");
                is_int(brokerproto_path_confined("", "secret/data/ns1/app"), -EPERM,
                       "an empty prefix confines nothing in: -EPERM");
        }
        brokerproto_keys_free(k1);
        brokerproto_keys_free(k2);
        brokerproto_keys_free(other);
        return tap_done();
}
