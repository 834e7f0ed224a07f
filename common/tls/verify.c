/* SPDX-License-Identifier: Apache-2.0 */
/* tls/verify.c: chain verification. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <stdlib.h>

#include "common/macro.h"
#include "common/tls/internal.h"
#include "common/tls/wolf.h"

/* ---- verification ------------------------------------------------------------------------ */

void tls_wolf_ctx_freep(WOLFSSL_CTX **c) {
        if (*c)
                wolfSSL_CTX_free(*c);
}

static bool valid_at(const struct tls_cert_info *i, int64_t at) {
        return at >= i->not_before && at <= i->not_after;
}

/* One verification attempt; only_valid restricts anchors and intermediates to those valid at
 * `at`. Returns 0 when chain[0] verifies, -EPERM when not. */
static int verify_once(const struct tls_cert *anchors, const struct tls_cert_info *ainfo,
                       size_t n_anchors, const struct tls_cert *chain,
                       const struct tls_cert_info *cinfo, size_t n_chain, int64_t at,
                       bool only_valid) {
        _cleanup_(tls_wolf_ctx_freep) WOLFSSL_CTX *ctx = NULL;
        bool added[TLS_MAX_BUNDLE_CERTS] = {};
        size_t loaded = 0;
        int r;

        ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < n_anchors; i++) {
                if (only_valid && !valid_at(&ainfo[i], at))
                        continue;
                if (wolfSSL_CTX_load_verify_buffer_ex(
                            ctx, anchors[i].der, (long) anchors[i].len, WOLFSSL_FILETYPE_ASN1, 0,
                            WOLFSSL_LOAD_FLAG_DATE_ERR_OKAY) == WOLFSSL_SUCCESS)
                        loaded++;
        }
        if (loaded == 0)
                return -EPERM;
        WOLFSSL_CERT_MANAGER *cm = wolfSSL_CTX_GetCertManager(ctx);
        if (!cm)
                return -EIO;

        /* Intermediates: add every one that verifies against what is trusted so far, until no
         * more can be added (any order, at most n passes). */
        for (bool progress = true; progress;) {
                progress = false;
                for (size_t i = 1; i < n_chain; i++) {
                        if (added[i] || (only_valid && !valid_at(&cinfo[i], at)))
                                continue;
                        /* wolfSSL adds whatever we load as a CA (user-loaded anchors are not
                         * checked), so only real CAs may become issuers here. */
                        if (!cinfo[i].is_ca || (cinfo[i].has_key_usage &&
                                                !(cinfo[i].key_usage & TLS_KU_KEY_CERT_SIGN)))
                                continue;
                        r = tls_wolf_parse(chain[i].der, chain[i].len, CERT_TYPE, VERIFY_SKIP_DATE,
                                           cm);
                        if (r != 0)
                                continue;
                        if (wolfSSL_CTX_load_verify_buffer_ex(
                                    ctx, chain[i].der, (long) chain[i].len, WOLFSSL_FILETYPE_ASN1,
                                    0, WOLFSSL_LOAD_FLAG_DATE_ERR_OKAY) != WOLFSSL_SUCCESS)
                                continue; /* not a CA */
                        added[i] = progress = true;
                }
        }
        if (only_valid && !valid_at(&cinfo[0], at))
                return -EPERM;
        r = tls_wolf_parse(chain[0].der, chain[0].len, CERT_TYPE, VERIFY_SKIP_DATE, cm);
        if (r == MEMORY_E)
                return -ENOMEM;
        return r == 0 ? 0 : -EPERM;
}

static void infos_free(struct tls_cert_info *infos, size_t n) {
        if (!infos)
                return;
        for (size_t i = 0; i < n; i++)
                tls_cert_info_clear(&infos[i]);
        free(infos);
}

static int inspect_all(const struct tls_cert *certs, size_t n, struct tls_cert_info **ret) {
        struct tls_cert_info *infos = calloc(n, sizeof(*infos));
        if (!infos)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = certs[i].der ? tls_inspect_der(certs[i].der, certs[i].len, &infos[i], NULL)
                                     : -EINVAL;
                if (r < 0) {
                        infos_free(infos, n);
                        return r;
                }
        }
        *ret = infos;
        return 0;
}

int tls_verify_certs(const struct tls_cert *anchors, size_t n_anchors, const struct tls_cert *chain,
                     size_t n_chain, int64_t at, unsigned usage) {
        struct tls_cert_info *ainfo = NULL, *cinfo = NULL;
        int r;

        if (!anchors || !chain || n_anchors == 0 || n_chain == 0)
                return -EINVAL;
        if (n_anchors > TLS_MAX_CA_CERTS || n_chain > TLS_MAX_BUNDLE_CERTS)
                return -E2BIG;
        r = tls_init();
        if (r < 0)
                return r;
        r = inspect_all(anchors, n_anchors, &ainfo);
        if (r < 0)
                return r;
        r = inspect_all(chain, n_chain, &cinfo);
        if (r < 0)
                goto out;
        if (usage && cinfo[0].has_ext_key_usage && (cinfo[0].ext_key_usage & usage) != usage) {
                r = -EPERM;
                goto out;
        }
        r = verify_once(anchors, ainfo, n_anchors, chain, cinfo, n_chain, at, true);
        if (r == -EPERM) {
                /* Trusted when dates are ignored? Then it is a validity problem. */
                int r2 = verify_once(anchors, ainfo, n_anchors, chain, cinfo, n_chain, at, false);
                r = r2 == 0 ? -EKEYEXPIRED : r2;
        }
out:
        infos_free(ainfo, n_anchors);
        infos_free(cinfo, n_chain);
        return r;
}

int tls_verify_pem(const char *ca_pem, size_t ca_len, const char *chain_pem, size_t chain_len,
                   int64_t at, unsigned usage) {
        struct tls_cert *anchors = NULL, *chain = NULL;
        size_t na = 0, nc = 0;
        int r;

        r = tls_decode_certs(ca_pem, ca_len, TLS_MAX_CA_CERTS, &anchors, &na);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = tls_decode_certs(chain_pem, chain_len, TLS_MAX_BUNDLE_CERTS, &chain, &nc);
        if (r == -ETOOMANYREFS)
                r = -E2BIG;
        if (r == 0)
                r = tls_verify_certs(anchors, na, chain, nc, at, usage);
        tls_cert_array_free(anchors, na);
        tls_cert_array_free(chain, nc);
        return r;
}
