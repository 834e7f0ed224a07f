/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for broker/keyring, on an injected clock: the rotation rules of
 * docs/protocol-broker.md "Rotation".
 *   - broker-token rotated: new sessions under the new keys; a session issued just before is
 *     still accepted until the overlap ends (and then refused, although it has not expired); a
 *     second rotation within the overlap drops the oldest generation; the annotation MAC of a
 *     pod admitted before stays valid (the annotation key does not depend on broker-token);
 *   - broker-auth rotated: the sessions issued before are refused at once, and so is the MAC
 *     of a pod admitted before (the webhook keeps only the newest key), a pod admitted under the
 *     new key is accepted; the previous generation's secure memory is released;
 *   - a replica that has not loaded the new records yet answers -EKEYREJECTED (the cue to
 *     re-read) for another replica's new session, and accepts it once it has; the re-read rate
 *     limit; a failed update keeps the current generation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/keyring.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "tests/tap.h"

#define T0 1764760000
#define TTL 900
#define OVERLAP 900

static uint8_t auth1[32] = {1}, auth2[32] = {2}, inst1[32] = {3}, inst2[32] = {4}, inst3[32] = {5};
static struct tls_key *pod_key;
static struct buf csr;

static struct json_doc *pod_doc(const uint8_t auth[32]) {
        uint8_t key[32];
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1], b[4096];
        struct json_doc *d = NULL;
        if (brokerproto_annotation_key(auth, 32, key) < 0 ||
            brokerproto_annotation_mac(key, "team-a", "app", "secret/data/team-a/db", "", mac) < 0)
                abort();
        snprintf(b, sizeof(b),
                 "{\"metadata\":{\"name\":\"app-1\",\"namespace\":\"team-a\",\"uid\":\"uid-1\","
                 "\"annotations\":{\"cloudtaser.io/vault-auth-method\":\"broker\","
                 "\"cloudtaser.io/secret-paths\":\"secret/data/team-a/db\","
                 "\"cloudtaser.io/broker-mac\":\"%s\"}},\"spec\":{\"serviceAccountName\":\"app\"}}",
                 mac);
        if (json_parse(b, strlen(b), 0, NULL, &d) < 0)
                abort();
        return d;
}

static const struct authority_caller caller = {
        .ns = "team-a", .sa = "app", .pod = "app-1", .uid = "uid-1"};

/* A session issued by the keyring's current generation, admitted with the MAC under
 * mac_auth. */
struct sess {
        struct tls_cert cert;
        char authz[BROKERPROTO_MAX_TOKEN + 16];
};
static int issue(const struct keyring *k, const uint8_t mac_auth[32], int64_t now,
                 struct sess *ret) {
        _cleanup_json_doc_ struct json_doc *p = pod_doc(mac_auth);
        _cleanup_(brokerproto_session_done) struct brokerproto_session s = {};
        _cleanup_buf_ struct buf pem = BUF_INIT(16384, 0);
        _cleanup_buf_ struct buf tok = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
        int r = authority_check_pod(keyring_current(k), &caller, json_doc_root(p), &s, NULL, 0);
        if (r < 0)
                return r;
        r = authority_issue(keyring_current(k), &s, csr.data, csr.len, now, TTL, &pem, &tok);
        if (r >= 0)
                r = tls_cert_decode_pem(pem.data, pem.len, &ret->cert);
        if (r >= 0)
                (void) snprintf(ret->authz, sizeof(ret->authz), "Bearer %s", tok.data);
        return r;
}

static int use(const struct keyring *k, const struct sess *s, int64_t now) {
        struct brokerproto_session got = {};
        char reason[AUTHORITY_REASON_MAX];
        int r = keyring_authenticate(k, &s->cert, s->authz, now, &got, reason, sizeof(reason));
        brokerproto_session_done(&got);
        return r;
}

static int check_mac(const struct keyring *k, const uint8_t mac_auth[32]) {
        _cleanup_json_doc_ struct json_doc *p = pod_doc(mac_auth);
        struct brokerproto_session s = {};
        int r = authority_check_pod(keyring_current(k), &caller, json_doc_root(p), &s, NULL, 0);
        brokerproto_session_done(&s);
        return r;
}

static size_t secmem_regions(void) {
        struct secmem_report rep;
        secmem_report(&rep);
        return rep.regions;
}

int main(void) {
        struct keyring *a = NULL, *b = NULL;
        struct sess s1 = {}, s2 = {}, s3 = {}, s4 = {}, s5 = {};

        csr = BUF_INIT(8192, 0);
        if (tls_key_generate(&pod_key) < 0 ||
            tls_csr_create(pod_key, "app-1", NULL, NULL, &csr) < 0)
                return diag("no pod key"), 1;
        is_int(keyring_new(NULL, &a), 0, "replica A");
        is_int(keyring_new(NULL, &b), 0, "replica B");
        ok(keyring_current(a) == NULL, "nothing before the first load");
        is_int(keyring_update(a, auth1, 32, inst1, 32, T0, OVERLAP), KEYRING_NEW_AUTH,
               "first load");
        is_int(keyring_update(a, auth1, 32, inst1, 32, T0 + 1, OVERLAP), KEYRING_SAME,
               "the same records again: nothing changes");
        is_int(keyring_update(b, auth1, 32, inst1, 32, T0, OVERLAP), KEYRING_NEW_AUTH, "B loads");
        is_int(keyring_update(a, auth1, 31, inst2, 32, T0 + 1, OVERLAP), -EINVAL,
               "a record of the wrong size is refused");
        ok(!keyring_has_previous(a, T0 + 1), "  and nothing was swapped");

        /* --- broker-token rotation ---------------------------------------------------------- */
        is_int(issue(a, auth1, T0 + 10, &s1), 0, "session 1 from A, before the rotation");
        is_int(use(b, &s1, T0 + 11), 0, "B accepts it");
        is_int(keyring_update(a, auth1, 32, inst2, 32, T0 + 20, OVERLAP), KEYRING_NEW_TOKEN,
               "broker-token rotated at A");
        is_int(use(a, &s1, T0 + 21), 0, "A still accepts session 1 (overlap)");
        is_int(issue(a, auth1, T0 + 22, &s2), 0,
               "session 2 from A under the new keys; the MAC of a pod admitted before is valid");
        is_int(use(b, &s2, T0 + 23), -EKEYREJECTED,
               "B has not loaded the new record: -EKEYREJECTED, the cue to re-read");
        is_int(keyring_update(b, auth1, 32, inst2, 32, T0 + 24, OVERLAP), KEYRING_NEW_TOKEN,
               "B re-reads");
        is_int(use(b, &s2, T0 + 25), 0, "B accepts A's new session");
        is_int(use(b, &s1, T0 + 25), 0, "and A's old one");
        is_int(use(a, &s1, T0 + 20 + OVERLAP - 1), -EACCES,
               "session 1 ends at its own expiry within the overlap");
        {
                /* A longer-lived session under the previous keys: refused when the overlap ends. */
                struct keyring *c = NULL;
                struct sess sl = {};
                is_int(keyring_new(NULL, &c), 0, "replica C");
                (void) keyring_update(c, auth1, 32, inst1, 32, T0, OVERLAP);
                is_int(issue(c, auth1, T0 + 100, &sl), 0, "session from C just before");
                is_int(keyring_update(c, auth1, 32, inst2, 32, T0 + 101, 300), KEYRING_NEW_TOKEN,
                       "broker-token rotated at C, overlap 300 s");
                is_int(use(c, &sl, T0 + 400), 0, "accepted within the overlap");
                is_int(use(c, &sl, T0 + 401), -EKEYREJECTED,
                       "refused once the overlap ends, though not expired yet");
                ok(!keyring_has_previous(c, T0 + 401), "the previous generation is gone");
                size_t held = secmem_regions();
                keyring_tick(c, T0 + 400);
                ok(secmem_regions() == held, "a tick within the overlap keeps it");
                keyring_tick(c, T0 + 401);
                ok(secmem_regions() < held, "a tick after it wipes its keys (%zu -> %zu)", held,
                   secmem_regions());
                tls_cert_done(&sl.cert);
                keyring_free(c);
        }
        is_int(keyring_update(a, auth1, 32, inst3, 32, T0 + 30, OVERLAP), KEYRING_NEW_TOKEN,
               "a second broker-token rotation within the overlap");
        is_int(use(a, &s1, T0 + 31), -EKEYREJECTED, "drops the oldest generation");
        is_int(use(a, &s2, T0 + 31), 0, "the one just before stays");

        /* --- broker-auth rotation ----------------------------------------------------------- */
        is_int(issue(a, auth1, T0 + 40, &s3), 0, "session 3 just before the broker-auth rotation");
        size_t before = secmem_regions();
        is_int(keyring_update(a, auth2, 32, inst3, 32, T0 + 50, OVERLAP), KEYRING_NEW_AUTH,
               "broker-auth rotated");
        ok(!keyring_has_previous(a, T0 + 50), "no previous generation is kept");
        ok(secmem_regions() < before, "the old keys' secure memory is released (%zu -> %zu)",
           before, secmem_regions());
        is_int(use(a, &s3, T0 + 51), -EKEYREJECTED, "session 3 is refused at once");
        is_int(use(a, &s2, T0 + 51), -EKEYREJECTED, "and so is every older one");
        is_int(check_mac(a, auth1), -EKEYREJECTED,
               "a pod admitted under the old broker-auth is refused (403), as the webhook does");
        is_int(issue(a, auth1, T0 + 52, &s4), -EKEYREJECTED, "  no session for it");
        is_int(issue(a, auth2, T0 + 52, &s4), 0, "a pod admitted under the new key gets one");
        is_int(use(b, &s4, T0 + 53), -EKEYREJECTED, "B (still the old keys): the cue to re-read");
        is_int(keyring_update(b, auth2, 32, inst3, 32, T0 + 54, OVERLAP), KEYRING_NEW_AUTH,
               "B re-reads");
        is_int(use(b, &s4, T0 + 55), 0, "B accepts A's session under the new broker-auth");
        is_int(issue(b, auth2, T0 + 56, &s5), 0, "B issues one");
        is_int(use(a, &s5, T0 + 57), 0, "A accepts B's");
        is_int(use(b, &s1, T0 + 57), -EKEYREJECTED, "B refuses the old sessions too");

        /* --- the re-read rate limit --------------------------------------------------------- */
        keyring_loaded(a, 10000);
        ok(!keyring_refresh_due(a, 11999, 2000), "a miss 2 s after a load: no re-read yet");
        ok(keyring_refresh_due(a, 12000, 2000), "at 2 s: re-read");
        ok(!keyring_refresh_due(a, 12001, 2000), "not again at once");
        ok(keyring_refresh_due(b, 5, 2000), "a keyring never re-read: due");

        struct sess *all[] = {&s1, &s2, &s3, &s4, &s5};
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                tls_cert_done(&all[i]->cert);
        keyring_free(a);
        keyring_free(b);
        tls_key_free(pod_key);
        buf_done(&csr);
        return tap_done();
}
