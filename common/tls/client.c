/* SPDX-License-Identifier: Apache-2.0 */
/* tls/client.c: client contexts: curl's two TLS hooks. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/internal.h"
#include "common/tls/transport.h"
#include "common/tls/wolf.h"

/* ---- TLS contexts ------------------------------------------------------------------------ */

int tls_client_ctx_new(void **ret) {
        WOLFSSL_CTX *ctx;
        int r;

        if (!ret)
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
        if (!ctx)
                return -ENOMEM;
        *ret = ctx;
        return 0;
}

void tls_ctx_free(void *ctx) {
        if (ctx)
                wolfSSL_CTX_free((WOLFSSL_CTX *) ctx);
}

int tls_ctx_load_ca_pem(void *ctx, const char *pem, size_t len) {
        char label[TLS_MAX_PEM_LABEL + 1];
        size_t pos = 0, blocks = 0;
        int added = 0, r;

        if (!ctx)
                return -EINVAL;
        r = tls_pem_input_begin(pem, len);
        if (r < 0)
                return r;
        for (;;) {
                DERBUF(der);
                r = tls_pem_next(pem, len, &pos, label, &der);
                if (r < 0)
                        return r == -ENOTSUP ? -EBADMSG : r;
                if (r == 0)
                        break;
                if (++blocks > TLS_MAX_CA_CERTS)
                        return -E2BIG;
                if (strcmp(label, "CERTIFICATE") != 0)
                        continue;
                if (tls_inspect_der((const uint8_t *) der.data, der.len, NULL, NULL) < 0)
                        continue;
                if (wolfSSL_CTX_load_verify_buffer((WOLFSSL_CTX *) ctx,
                                                   (const unsigned char *) der.data, (long) der.len,
                                                   WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS)
                        added++;
        }
        return added > 0 ? added : -EBADMSG;
}

/* Hands the chain (our canonical PEM re-encoding) and the key (DER in secmem) to wolfSSL. */
int tls_ctx_install(WOLFSSL_CTX *ctx, const struct tls_cert *certs, size_t n,
                    const struct tls_key *key) {
        _cleanup_buf_ struct buf chain = BUF_INIT(TLS_MAX_PEM, 0);
        uint8_t *der = NULL;
        int r = 0, dn;

        for (size_t i = 0; i < n && r >= 0; i++)
                r = tls_cert_encode_pem(&certs[i], &chain);
        if (r < 0)
                return r;
        r = secmem_alloc(KEY_DER_MAX, (void **) &der);
        if (r < 0)
                return r;
        if (key->type == TLS_KEY_RSA)
                dn = wc_RsaKeyToDer((RsaKey *) tls_key_ptr(key), der, KEY_DER_MAX);
        else
                dn = wc_EccKeyToDer((ecc_key *) tls_key_ptr(key), der, KEY_DER_MAX);
        if (dn <= 0)
                r = -EIO;
        else if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *) chain.data,
                                                          (long) chain.len) != WOLFSSL_SUCCESS)
                r = -EBADMSG;
        else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, der, dn, WOLFSSL_FILETYPE_ASN1) !=
                 WOLFSSL_SUCCESS)
                r = -EBADMSG;
        else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
                r = -EBADMSG;
        secmem_free(der);
        return r;
}

int tls_ctx_use_client_cert_pem(void *ctx, const char *cert_pem, size_t cert_len,
                                const char *key_pem, size_t key_len) {
        _cleanup_(tls_key_freep) struct tls_key *key = NULL;
        struct tls_cert *certs = NULL;
        struct cert_view v;
        size_t n = 0;
        int r;

        if (!ctx)
                return -EINVAL;
        r = tls_key_import_pem(key_pem, key_len, &key);
        if (r < 0)
                return r == -ENOTSUP ? -EBADMSG : r;
        r = tls_decode_certs(cert_pem, cert_len, TLS_MAX_BUNDLE_CERTS, &certs, &n);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = tls_inspect_der(certs[0].der, certs[0].len, NULL, &v);
        if (r == 0)
                r = tls_key_matches_spki(key, v.spki);
        if (r == 0)
                r = -EBADMSG; /* the key is not the leaf's: leave the context untouched */
        else if (r > 0)
                r = tls_ctx_install((WOLFSSL_CTX *) ctx, certs, n, key);
        tls_cert_array_free(certs, n);
        return r;
}
