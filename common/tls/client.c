/* SPDX-License-Identifier: Apache-2.0 */
/* tls/client.c: client contexts: curl's two TLS hooks. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/internal.h"
#include "common/tls/transport.h"
#include "common/tls/wolf.h"

/* tls_ctx_verify_ip() decides the name check in the verify callback of the peer's leaf: wolfSSL
 * must call it for a leaf that verified, not only on errors. */
#ifndef WOLFSSL_ALWAYS_VERIFY_CB
#error "the wolfSSL build must define WOLFSSL_ALWAYS_VERIFY_CB (deps/build.sh: --enable-opensslextra)"
#endif

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

/* ---- a server named by its IP address ---------------------------------------------------- */

int tls_ip_parse(const char *host, struct tls_ip *ret) {
        char text[INET6_ADDRSTRLEN + 2];
        struct tls_ip ip = {};
        size_t n;

        if (!host || !ret)
                return -EINVAL;
        n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
                host++;
                n -= 2;
        }
        if (n == 0 || n >= sizeof(text))
                return -EINVAL;
        memcpy(text, host, n);
        text[n] = '\0';
        if (inet_pton(AF_INET, text, ip.addr) == 1)
                ip.family = AF_INET;
        else if (inet_pton(AF_INET6, text, ip.addr) == 1)
                ip.family = AF_INET6;
        else
                return -EINVAL;
        *ret = ip;
        return 0;
}

/* Whether one of the leaf's iPAddress SANs is ip (as bytes; our own certificate reader). */
static bool leaf_names_ip(const uint8_t *der, size_t len, const struct tls_ip *ip) {
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        if (tls_inspect_der(der, len, &info, NULL) < 0)
                return false;
        for (size_t i = 0; i < info.san.n_ip; i++) {
                struct tls_ip got;
                if (tls_ip_parse(info.san.ip[i], &got) == 0 && got.family == ip->family &&
                    memcmp(got.addr, ip->addr, ip->family == AF_INET ? 4 : 16) == 0)
                        return true;
        }
        return false;
}

static int verify_ip_cb(int preverify, WOLFSSL_X509_STORE_CTX *store) {
        const struct tls_ip *ip = store ? store->userCtx : NULL;
        if (!ip)
                return 0;
        if (wolfSSL_X509_STORE_CTX_get_error_depth(store) != 0)
                return preverify; /* the chain: wolfSSL's verdict */
        int e = wolfSSL_X509_STORE_CTX_get_error(store);
        /* The leaf: only wolfSSL's own name check may be overridden, nothing else. */
        if (!preverify && e != DOMAIN_NAME_MISMATCH && e != IPADDR_MISMATCH)
                return 0;
        WOLFSSL_X509 *leaf = wolfSSL_X509_STORE_CTX_get_current_cert(store);
        int n = 0;
        const unsigned char *der = leaf ? wolfSSL_X509_get_der(leaf, &n) : NULL;
        return der && n > 0 && leaf_names_ip(der, (size_t) n, ip) ? 1 : 0;
}

int tls_ctx_verify_ip(void *ctx, const struct tls_ip *ip) {
        if (!ctx || !ip || (ip->family != AF_INET && ip->family != AF_INET6))
                return -EINVAL;
        wolfSSL_CTX_set_verify((WOLFSSL_CTX *) ctx, WOLFSSL_VERIFY_PEER, verify_ip_cb);
        wolfSSL_CTX_SetCertCbCtx((WOLFSSL_CTX *) ctx, (void *) ip);
        return 0;
}
