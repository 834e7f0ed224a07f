/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for broker/authority: TokenReview answers (audience, service account, bound pod),
 * the pod checks (pod identity, broker mode, annotation MAC, namespace confinement), the session
 * (client certificate from the CSR, token bound to it), and later requests: a session issued by
 * one replica is accepted by another, and requests without a certificate, with another
 * certificate, with a certificate of another CA, with a forged or expired token, or from another
 * installation are 401.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authority.h"
#include "common/macro.h"
#include "tests/tap.h"

static const uint8_t AUTH[32] = {0x11, 0x22, 0x33};
static const uint8_t INST[32] = {0x44, 0x55, 0x66};
#define NOW 1764760000

static struct json_doc *parse(const char *s) {
        struct json_doc *d = NULL;
        if (json_parse(s, strlen(s), 0, NULL, &d) < 0)
                abort();
        return d;
}

static struct json_doc *review(const char *aud, const char *user, const char *pod,
                               const char *uid) {
        char b[2048];
        snprintf(
                b, sizeof(b),
                "{\"status\":{\"authenticated\":true,\"audiences\":[\"%s\"],\"user\":{"
                "\"username\":\"%s\",\"extra\":{\"authentication.kubernetes.io/pod-name\":[\"%s\"],"
                "\"authentication.kubernetes.io/pod-uid\":[\"%s\"]}}}}",
                aud, user, pod, uid);
        return parse(b);
}

static struct json_doc *pod(const char *ns, const char *method, const char *paths,
                            const char *mac_paths) {
        uint8_t key[32];
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1], b[4096];
        if (brokerproto_annotation_key(AUTH, 32, key) < 0 ||
            brokerproto_annotation_mac(key, ns, "app-sa", mac_paths, "", mac) < 0)
                abort();
        snprintf(b, sizeof(b),
                 "{\"metadata\":{\"name\":\"app-1\",\"namespace\":\"%s\",\"uid\":\"uid-1\","
                 "\"annotations\":{\"cloudtaser.io/vault-auth-method\":\"%s\","
                 "\"cloudtaser.io/secret-paths\":\"%s\",\"cloudtaser.io/broker-mac\":\"%s\"}},"
                 "\"spec\":{\"serviceAccountName\":\"app-sa\"}}",
                 ns, method, paths, mac);
        return parse(b);
}

int main(void) {
        struct authority *a1 = NULL, *a2 = NULL, *other = NULL;
        uint8_t inst2[32] = {0x99};
        char reason[AUTHORITY_REASON_MAX];

        is_int(authority_new(AUTH, 32, INST, 32, NULL, &a1), 0, "replica 1");
        is_int(authority_new(AUTH, 32, INST, 32, NULL, &a2), 0, "replica 2");
        is_int(authority_new(AUTH, 32, inst2, 32, NULL, &other), 0, "another installation");

        /* TokenReview. */
        struct authority_caller c = {};
        {
                _cleanup_json_doc_ struct json_doc *d =
                        review("cloudtaser-broker", "system:serviceaccount:team-a:app-sa", "app-1",
                               "uid-1");
                is_int(authority_caller_from_review(json_doc_root(d), &c, reason, sizeof(reason)),
                       0, "a bound service account token");
                ok(strcmp(c.ns, "team-a") == 0 && strcmp(c.sa, "app-sa") == 0 &&
                           strcmp(c.pod, "app-1") == 0 && strcmp(c.uid, "uid-1") == 0,
                   "caller fields");
                struct authority_caller x;
                _cleanup_json_doc_ struct json_doc *w =
                        review("https://kubernetes.default.svc",
                               "system:serviceaccount:team-a:app-sa", "app-1", "uid-1");
                is_int(authority_caller_from_review(json_doc_root(w), &x, reason, sizeof(reason)),
                       -EACCES, "wrong audience refused");
                is_str(reason, "token audience is not cloudtaser-broker",
                       "reason names the audience");
                _cleanup_json_doc_ struct json_doc *u =
                        review("cloudtaser-broker", "alice", "app-1", "uid-1");
                is_int(authority_caller_from_review(json_doc_root(u), &x, reason, sizeof(reason)),
                       -EACCES, "a user that is not a service account refused");
                _cleanup_json_doc_ struct json_doc *n =
                        parse("{\"status\":{\"authenticated\":false}}");
                is_int(authority_caller_from_review(json_doc_root(n), &x, reason, sizeof(reason)),
                       -EACCES, "unauthenticated refused");
                _cleanup_buf_ struct buf body = BUF_INIT(65536, BUF_SECURE);
                is_int(authority_review_request("eyJ.a.b", &body), 0, "TokenReview body");
                ok(strstr(body.data, "\"audiences\":[\"cloudtaser-broker\"]") &&
                           strstr(body.data, "\"token\":\"eyJ.a.b\""),
                   "asks for the broker audience");
        }

        /* Pod checks. */
        struct brokerproto_session s = {};
        {
                _cleanup_json_doc_ struct json_doc *p =
                        pod("team-a", "broker", "secret/data/team-a/db", "secret/data/team-a/db");
                is_int(authority_check_pod(a1, &c, json_doc_root(p), &s, reason, sizeof(reason)), 0,
                       "an admitted broker pod");
                ok(s.n_paths == 1 && strcmp(s.paths[0], "secret/data/team-a/db") == 0,
                   "its session paths");
                struct brokerproto_session t = {};
                _cleanup_json_doc_ struct json_doc *edited =
                        pod("team-a", "broker", "secret/data/team-a/db,secret/data/team-a/other",
                            "secret/data/team-a/db");
                is_int(authority_check_pod(a1, &c, json_doc_root(edited), &t, reason,
                                           sizeof(reason)),
                       -EKEYREJECTED, "edited annotations refused (403)");
                is_str(reason, "annotation MAC mismatch", "reason");
                _cleanup_json_doc_ struct json_doc *foreign =
                        pod("team-a", "broker", "secret/data/team-b/db", "secret/data/team-b/db");
                is_int(authority_check_pod(a1, &c, json_doc_root(foreign), &t, reason,
                                           sizeof(reason)),
                       -EPERM, "another namespace's path refused (even with a valid MAC)");
                ok(strstr(reason, "outside the namespace prefix 'secret/data/team-a/'") != NULL,
                   "reason names the prefix");
                _cleanup_json_doc_ struct json_doc *k8s = pod(
                        "team-a", "kubernetes", "secret/data/team-a/db", "secret/data/team-a/db");
                is_int(authority_check_pod(a1, &c, json_doc_root(k8s), &t, reason, sizeof(reason)),
                       -EPERM, "a pod not in broker mode refused");
                struct authority_caller c2 = c;
                snprintf(c2.uid, sizeof(c2.uid), "uid-2");
                _cleanup_json_doc_ struct json_doc *p2 =
                        pod("team-a", "broker", "secret/data/team-a/db", "secret/data/team-a/db");
                is_int(authority_check_pod(a1, &c2, json_doc_root(p2), &t, reason, sizeof(reason)),
                       -EACCES, "a pod with another UID (recreated under the same name) refused");
        }

        /* Session. */
        _cleanup_tls_key_ struct tls_key *k = NULL;
        _cleanup_buf_ struct buf csr = BUF_INIT(8192, 0);
        is_int(tls_key_generate(&k), 0, "pod key");
        is_int(tls_csr_create(k, "app-1", NULL, NULL, &csr), 0, "pod CSR");
        _cleanup_buf_ struct buf cert_pem = BUF_INIT(16384, 0);
        _cleanup_buf_ struct buf token = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
        is_int(authority_issue(a1, &s, csr.data, csr.len, NOW, 900, &cert_pem, &token), 0,
               "session issued");
        _cleanup_tls_cert_ struct tls_cert cert = {};
        is_int(tls_cert_decode_pem(cert_pem.data, cert_pem.len, &cert), 0, "certificate decodes");
        {
                _cleanup_tls_cert_info_ struct tls_cert_info info = {};
                is_int(tls_cert_inspect(&cert, &info), 0, "inspect");
                ok(info.san.n_uri == 1 &&
                           strcmp(info.san.uri[0],
                                  "spiffe://cloudtaser/ns/team-a/pod/app-1/uid/uid-1") == 0,
                   "identity in the URI SAN");
                ok(info.ext_key_usage == TLS_USAGE_CLIENT && !info.is_ca, "a client certificate");
                ok(info.not_after == NOW + 900, "lives as long as the session");
                is_int(tls_key_matches_cert(k, cert.der, cert.len), 1, "for the pod's key");
                is_int(tls_verify_pem(authority_ca_pem(a2), strlen(authority_ca_pem(a2)),
                                      cert_pem.data, cert_pem.len, NOW + 1, TLS_USAGE_CLIENT),
                       0, "replica 2's session CA verifies replica 1's certificate");
        }
        char authz[BROKERPROTO_MAX_TOKEN + 16];
        snprintf(authz, sizeof(authz), "Bearer %s", token.data);
        struct brokerproto_session got = {};
        is_int(authority_authenticate(a2, &cert, authz, NOW + 10, &got, reason, sizeof(reason)), 0,
               "replica 2 accepts replica 1's session");
        ok(brokerproto_session_allows(&got, "secret/data/team-a/db"), "with its path");
        brokerproto_session_done(&got);
        is_int(authority_authenticate(a1, NULL, authz, NOW + 10, &got, reason, sizeof(reason)),
               -EACCES, "no client certificate: 401");
        is_str(reason, "no client certificate", "reason");
        is_int(authority_authenticate(a1, &cert, NULL, NOW + 10, &got, reason, sizeof(reason)),
               -EACCES, "no token: 401");
        is_int(authority_authenticate(a1, &cert, authz, NOW + 900, &got, reason, sizeof(reason)),
               -EACCES, "expired session: 401");
        is_int(authority_authenticate(other, &cert, authz, NOW + 10, &got, reason, sizeof(reason)),
               -EKEYREJECTED, "another installation: 401");
        {
                char forged[sizeof(authz)];
                memcpy(forged, authz, sizeof(authz));
                forged[strlen(forged) - 5] ^= 1;
                is_int(authority_authenticate(a1, &cert, forged, NOW + 10, &got, reason,
                                              sizeof(reason)),
                       -EKEYREJECTED, "forged token: 401");
        }
        /* A second session of the same pod: its token does not go with the first certificate. */
        {
                struct brokerproto_session s2 = {};
                _cleanup_json_doc_ struct json_doc *p =
                        pod("team-a", "broker", "secret/data/team-a/db", "secret/data/team-a/db");
                is_int(authority_check_pod(a1, &c, json_doc_root(p), &s2, reason, sizeof(reason)),
                       0, "second session");
                _cleanup_buf_ struct buf pem2 = BUF_INIT(16384, 0);
                _cleanup_buf_ struct buf tok2 = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
                is_int(authority_issue(a1, &s2, csr.data, csr.len, NOW + 1, 900, &pem2, &tok2), 0,
                       "issued");
                char a2h[BROKERPROTO_MAX_TOKEN + 16];
                snprintf(a2h, sizeof(a2h), "Bearer %s", tok2.data);
                is_int(authority_authenticate(a1, &cert, a2h, NOW + 10, &got, reason,
                                              sizeof(reason)),
                       -EACCES, "a token with another session's certificate: 401");
                is_str(reason, "session token issued with another certificate", "reason");
                brokerproto_session_done(&s2);
        }
        /* A certificate from another CA. */
        {
                struct brokerproto_session s3 = {};
                _cleanup_json_doc_ struct json_doc *p =
                        pod("team-a", "broker", "secret/data/team-a/db", "secret/data/team-a/db");
                (void) authority_check_pod(a1, &c, json_doc_root(p), &s3, reason, sizeof(reason));
                _cleanup_buf_ struct buf pem3 = BUF_INIT(16384, 0);
                _cleanup_buf_ struct buf tok3 = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
                is_int(authority_issue(other, &s3, csr.data, csr.len, NOW, 900, &pem3, &tok3), 0,
                       "a session of another installation");
                _cleanup_tls_cert_ struct tls_cert c3 = {};
                (void) tls_cert_decode_pem(pem3.data, pem3.len, &c3);
                is_int(authority_authenticate(a1, &c3, authz, NOW + 10, &got, reason,
                                              sizeof(reason)),
                       -EKEYREJECTED, "its certificate is refused by our CA: 401");
                brokerproto_session_done(&s3);
        }
        is_int(authority_issue(a1, &s, "junk", 4, NOW, 900, &cert_pem, &token), -EBADMSG,
               "a bad CSR");
        brokerproto_session_done(&s);
        authority_free(a1);
        authority_free(a2);
        authority_free(other);
        return tap_done();
}
