/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the tls module's PEM and DER readers: certificate bundles, private keys, CSRs
 * and public keys. Besides "no crash", it checks properties and aborts when one fails:
 *   - a decoded certificate re-encodes to PEM, decodes back to the same DER, and re-encodes to
 *     the same text; both decodes inspect to the same fields; fields respect the limits;
 *   - single-certificate and bundle decoding agree;
 *   - an imported private key exports (into a secure buffer), re-imports, and exports the same
 *     PEM and the same public key;
 *   - a parsed CSR's names and key respect the limits, and its public key is accepted by the
 *     public-key decoder.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/tls/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
        do {                     \
                if (!(cond))     \
                        abort(); \
        } while (0)

static void check_names(const struct tls_names *n) {
        CHECK(n->n_dns <= TLS_MAX_SANS && n->n_ip <= TLS_MAX_SANS && n->n_uri <= TLS_MAX_SANS);
        for (size_t i = 0; i < n->n_dns; i++)
                CHECK(n->dns[i] && strlen(n->dns[i]) > 0 && strlen(n->dns[i]) <= 253);
        for (size_t i = 0; i < n->n_uri; i++)
                CHECK(n->uri[i] && strlen(n->uri[i]) > 0 && strlen(n->uri[i]) <= TLS_MAX_URI);
        for (size_t i = 0; i < n->n_ip; i++) {
                uint8_t a[16];
                CHECK(inet_pton(strchr(n->ip[i], ':') ? AF_INET6 : AF_INET, n->ip[i], a) == 1);
        }
}

static bool names_equal(const struct tls_names *a, const struct tls_names *b) {
        if (a->n_dns != b->n_dns || a->n_ip != b->n_ip || a->n_uri != b->n_uri ||
            a->n_other != b->n_other)
                return false;
        for (size_t i = 0; i < a->n_dns; i++)
                if (strcmp(a->dns[i], b->dns[i]) != 0)
                        return false;
        for (size_t i = 0; i < a->n_ip; i++)
                if (strcmp(a->ip[i], b->ip[i]) != 0)
                        return false;
        for (size_t i = 0; i < a->n_uri; i++)
                if (strcmp(a->uri[i], b->uri[i]) != 0)
                        return false;
        return true;
}

static void check_cert(const struct tls_cert *c) {
        _cleanup_buf_ struct buf pem = BUF_INIT(1u << 20, 0), pem2 = BUF_INIT(1u << 20, 0);
        _cleanup_tls_cert_ struct tls_cert again = {};
        _cleanup_tls_cert_info_ struct tls_cert_info a = {}, b = {};

        CHECK(c->der && c->len > 0 && c->len <= TLS_MAX_DER);
        CHECK(tls_cert_encode_pem(c, &pem) == 0);
        CHECK(tls_cert_decode_pem(pem.data, pem.len, &again) == 0);
        CHECK(again.len == c->len && memcmp(again.der, c->der, c->len) == 0);
        CHECK(tls_cert_encode_pem(&again, &pem2) == 0);
        CHECK(pem.len == pem2.len && memcmp(pem.data, pem2.data, pem.len) == 0);

        /* decode already inspected the certificate: inspection cannot fail now */
        CHECK(tls_cert_inspect(c, &a) == 0);
        CHECK(tls_cert_inspect(&again, &b) == 0);
        CHECK(strcmp(a.sha256_hex, b.sha256_hex) == 0 && strlen(a.sha256_hex) == 64);
        CHECK(strcmp(a.serial_hex, b.serial_hex) == 0 && strlen(a.serial_hex) > 0);
        CHECK(strcmp(a.subject_cn, b.subject_cn) == 0 && strcmp(a.issuer_cn, b.issuer_cn) == 0);
        CHECK(strlen(a.subject_cn) <= TLS_MAX_NAME && strlen(a.issuer_cn) <= TLS_MAX_NAME);
        CHECK(a.not_before == b.not_before && a.not_after == b.not_after);
        CHECK(a.not_before >= -62167219200 && a.not_after <= 253402300799); /* years 0..9999 */
        CHECK(a.is_ca == b.is_ca && a.key_type == b.key_type && a.key_usage == b.key_usage);
        CHECK(names_equal(&a.san, &b.san));
        check_names(&a.san);
        (void) tls_cert_needs_renewal(&a, 0, 33);
}

static void check_key(const char *pem, size_t size) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL, *k2 = NULL;
        _cleanup_buf_ struct buf out = BUF_INIT(1u << 16, BUF_SECURE),
                                 out2 = BUF_INIT(1u << 16, BUF_SECURE);
        _cleanup_buf_ struct buf pub = BUF_INIT(1u << 16, 0), pub2 = BUF_INIT(1u << 16, 0);

        if (tls_key_import_pem(pem, size, &k) < 0)
                return;
        CHECK(tls_key_get_type(k) != TLS_KEY_NONE && tls_key_get_type(k) != TLS_KEY_OTHER);
        CHECK(tls_key_export_pem(k, &out) == 0);
        CHECK(tls_key_import_pem(out.data, out.len, &k2) == 0);
        CHECK(tls_key_export_pem(k2, &out2) == 0);
        CHECK(out.len == out2.len && memcmp(out.data, out2.data, out.len) == 0);
        CHECK(tls_key_public_pem(k, &pub) == 0 && tls_key_public_pem(k2, &pub2) == 0);
        CHECK(pub.len == pub2.len && memcmp(pub.data, pub2.data, pub.len) == 0);
}

static void check_csr(const char *pem, size_t size) {
        _cleanup_tls_csr_info_ struct tls_csr_info ci = {};
        if (tls_csr_parse_pem(pem, size, &ci) < 0)
                return;
        CHECK(ci.spki && ci.spki_len > 0 && ci.spki_len <= TLS_MAX_DER);
        CHECK(ci.key_type != TLS_KEY_NONE && ci.key_type != TLS_KEY_OTHER);
        CHECK(ci.subject_cn && strlen(ci.subject_cn) <= TLS_MAX_NAME);
        check_names(&ci.san);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *pem = (const char *) data;
        struct tls_cert *certs = NULL;
        size_t n = 0;

        if (size > 256 * 1024)
                return 0;

        int rb = tls_cert_decode_bundle(pem, size, &certs, &n);
        if (rb == 0) {
                CHECK(n >= 1 && n <= TLS_MAX_BUNDLE_CERTS);
                for (size_t i = 0; i < n; i++)
                        check_cert(&certs[i]);
                tls_cert_array_free(certs, n);
        } else
                CHECK(rb == -EBADMSG || rb == -E2BIG || rb == -EINVAL || rb == -ENOMEM);

        struct tls_cert one = {};
        int r1 = tls_cert_decode_pem(pem, size, &one);
        if (r1 == 0) {
                CHECK(rb == 0 && n == 1); /* one certificate: the bundle decoder agrees */
                check_cert(&one);
                tls_cert_done(&one);
        } else
                CHECK(one.der == NULL);

        check_key(pem, size);
        check_csr(pem, size);

        _cleanup_buf_ struct buf spki = BUF_INIT(1u << 16, 0);
        if (tls_public_key_pem_to_der(pem, size, &spki) == 0)
                CHECK(spki.len > 0);
        return 0;
}
