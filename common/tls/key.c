/* SPDX-License-Identifier: Apache-2.0 */
/* tls/key.c: private and public keys. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/internal.h"
#include "common/tls/wolf.h"

const char *tls_key_type_to_string(enum tls_key_type t) {
        switch (t) {
        case TLS_KEY_NONE:
                return "none";
        case TLS_KEY_EC_P256:
                return "ec-p256";
        case TLS_KEY_EC_P384:
                return "ec-p384";
        case TLS_KEY_RSA:
                return "rsa";
        default:
                return "other";
        }
}

/* ---- keys -------------------------------------------------------------------------------- */

static int key_alloc(struct tls_key **ret) {
        struct tls_key *k;
        int r = secmem_alloc(sizeof(*k), (void **) &k);
        if (r < 0)
                return r;
        *ret = k;
        return 0;
}

/* A key holding an initialised (empty) ecc_key, typed P-256 so that tls_key_free() frees the
 * ecc_key; the caller sets the real type once it is known. */
static int key_alloc_ecc(struct tls_key **ret) {
        struct tls_key *k = NULL;
        int r = key_alloc(&k);
        if (r < 0)
                return r;
        if (wc_ecc_init_ex(&k->u.ecc, NULL, INVALID_DEVID) != 0) {
                secmem_free(k);
                return -EIO;
        }
        k->type = TLS_KEY_EC_P256;
        *ret = k;
        return 0;
}

struct tls_key *tls_key_free(struct tls_key *k) {
        if (!k)
                return NULL;
        if (k->type == TLS_KEY_EC_P256 || k->type == TLS_KEY_EC_P384)
                (void) wc_ecc_free(&k->u.ecc);
        else if (k->type == TLS_KEY_RSA)
                (void) wc_FreeRsaKey(&k->u.rsa);
        secmem_free(k);
        return NULL;
}

enum tls_key_type tls_key_get_type(const struct tls_key *k) {
        return k ? k->type : TLS_KEY_NONE;
}

/* wolfCrypt takes non-const key pointers even for read-only operations. */
void *tls_key_ptr(const struct tls_key *k) {
        return k->type == TLS_KEY_RSA ? (void *) &k->u.rsa : (void *) &k->u.ecc;
}

int tls_key_wc_type(const struct tls_key *k) {
        return k->type == TLS_KEY_RSA ? RSA_TYPE : ECC_TYPE;
}

int tls_key_generate(struct tls_key **ret) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        WC_RNG rng;
        int r;

        if (!ret)
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        r = key_alloc_ecc(&k);
        if (r < 0)
                return r;
        if (wc_InitRng(&rng) != 0)
                return -EIO;
        r = wc_ecc_make_key_ex(&rng, 32, &k->u.ecc, ECC_SECP256R1);
        (void) wc_FreeRng(&rng);
        if (r != 0)
                return r == MEMORY_E ? -ENOMEM : -EIO;
        *ret = TAKE_PTR(k);
        return 0;
}

int tls_key_from_p256_scalar(const uint8_t scalar[32], struct tls_key **ret) {
        /* The order n of P-256 (SEC 2): a valid scalar is 1..n-1. */
        static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                          0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        uint8_t zero = 0;
        int r;

        if (!scalar || !ret)
                return -EINVAL;
        for (size_t i = 0; i < 32; i++)
                zero |= scalar[i];
        if (zero == 0 || memcmp(scalar, order, 32) >= 0)
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        r = key_alloc_ecc(&k);
        if (r < 0)
                return r;
        if (wc_ecc_import_private_key_ex(scalar, 32, NULL, 0, &k->u.ecc, ECC_SECP256R1) != 0 ||
            wc_ecc_make_pub(&k->u.ecc, NULL) != 0 || wc_ecc_check_key(&k->u.ecc) != 0)
                return -EIO;
        *ret = TAKE_PTR(k);
        return 0;
}

/* Imports an EC key from SEC1 or PKCS#8 DER. */
static int key_import_ecc(const uint8_t *der, size_t len, struct tls_key **ret) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        word32 idx = 0;
        int r;

        r = key_alloc_ecc(&k);
        if (r < 0)
                return r;
        if (wc_EccPrivateKeyDecode(der, &idx, &k->u.ecc, (word32) len) != 0 || idx != len)
                return -EBADMSG;
        if (!k->u.ecc.dp)
                return -EBADMSG;
        if (k->u.ecc.dp->id == ECC_SECP256R1)
                k->type = TLS_KEY_EC_P256;
        else if (k->u.ecc.dp->id == ECC_SECP384R1)
                k->type = TLS_KEY_EC_P384;
        else
                return -ENOTSUP;
        if (k->u.ecc.type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(&k->u.ecc, NULL) != 0)
                return -EBADMSG;
        if (wc_ecc_check_key(&k->u.ecc) != 0)
                return -EBADMSG;
        *ret = TAKE_PTR(k);
        return 0;
}

static int key_import_rsa(const uint8_t *der, size_t len, struct tls_key **ret) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        word32 idx = 0;
        int r;

        r = key_alloc(&k);
        if (r < 0)
                return r;
        if (wc_InitRsaKey_ex(&k->u.rsa, NULL, INVALID_DEVID) != 0) {
                secmem_free(TAKE_PTR(k));
                return -EIO;
        }
        k->type = TLS_KEY_RSA;
        if (wc_RsaPrivateKeyDecode(der, &idx, &k->u.rsa, (word32) len) != 0 || idx != len)
                return -EBADMSG;
        r = wc_RsaEncryptSize(&k->u.rsa);
        if (r < 256 || r > 512)
                return -ENOTSUP; /* 2048..4096 bits */
        *ret = TAKE_PTR(k);
        return 0;
}

/* PKCS#8 PrivateKeyInfo: which algorithm is inside. */
static int pkcs8_key_type(const uint8_t *der, size_t len, bool *ret_ec) {
        struct der d = {der, len}, seq, ver, alg, oid;
        if (tls_der_expect(&d, T_SEQ, &seq, NULL) < 0 || d.n != 0 ||
            tls_der_expect(&seq, T_INTEGER, &ver, NULL) < 0 ||
            tls_der_expect(&seq, T_SEQ, &alg, NULL) < 0 ||
            tls_der_expect(&alg, T_OID, &oid, NULL) < 0)
                return -EBADMSG;
        if (DER_EQ(oid, OID_EC_PUBLIC_KEY))
                *ret_ec = true;
        else if (DER_EQ(oid, OID_RSA))
                *ret_ec = false;
        else
                return -ENOTSUP;
        return 0;
}

int tls_key_import_pem(const char *pem, size_t len, struct tls_key **ret) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        char label[TLS_MAX_PEM_LABEL + 1];
        size_t pos = 0;
        int r;

        if (!ret)
                return -EINVAL;
        r = tls_pem_input_begin(pem, len);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_buf_ struct buf der = BUF_INIT(TLS_MAX_DER, BUF_SECURE);
                r = tls_pem_next(pem, len, &pos, label, &der);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (strcmp(label, "EC PARAMETERS") == 0)
                        continue;
                if (k)
                        return -EBADMSG; /* a second key */
                const uint8_t *p = (const uint8_t *) der.data;
                if (strcmp(label, "EC PRIVATE KEY") == 0)
                        r = key_import_ecc(p, der.len, &k);
                else if (strcmp(label, "RSA PRIVATE KEY") == 0)
                        r = key_import_rsa(p, der.len, &k);
                else if (strcmp(label, "PRIVATE KEY") == 0) {
                        bool ec;
                        r = pkcs8_key_type(p, der.len, &ec);
                        if (r == 0)
                                r = ec ? key_import_ecc(p, der.len, &k)
                                       : key_import_rsa(p, der.len, &k);
                } else if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0)
                        r = -ENOTSUP;
                else
                        r = -EBADMSG;
                if (r < 0)
                        return r;
        }
        if (!k)
                return -EBADMSG;
        *ret = TAKE_PTR(k);
        return 0;
}

int tls_key_export_pem(const struct tls_key *k, struct buf *out) {
        uint8_t *der = NULL;
        int r, n;

        if (!k || !out || !(out->flags & BUF_SECURE) || k->type == TLS_KEY_NONE)
                return -EINVAL;
        r = secmem_alloc(KEY_DER_MAX, (void **) &der);
        if (r < 0)
                return r;
        if (k->type == TLS_KEY_RSA)
                n = wc_RsaKeyToDer((RsaKey *) tls_key_ptr(k), der, KEY_DER_MAX);
        else
                n = wc_EccKeyToDer((ecc_key *) tls_key_ptr(k), der, KEY_DER_MAX);
        if (n <= 0)
                r = -EIO;
        else
                r = tls_pem_write(out,
                                  k->type == TLS_KEY_RSA ? "RSA PRIVATE KEY" : "EC PRIVATE KEY",
                                  der, (size_t) n);
        secmem_free(der);
        return r;
}

int tls_key_public_der(const struct tls_key *k, struct buf *out) {
        uint8_t der[2048];
        int n;

        if (!k || !out || k->type == TLS_KEY_NONE)
                return -EINVAL;
        if (k->type == TLS_KEY_RSA)
                n = wc_RsaKeyToPublicDer((RsaKey *) tls_key_ptr(k), der, sizeof(der));
        else
                n = wc_EccPublicKeyToDer((ecc_key *) tls_key_ptr(k), der, sizeof(der), 1);
        if (n <= 0)
                return -EIO;
        return buf_append(out, der, (size_t) n);
}

int tls_key_public_pem(const struct tls_key *k, struct buf *out) {
        DERBUF(der);
        int r = tls_key_public_der(k, &der);
        if (r < 0)
                return r;
        return tls_pem_write(out, "PUBLIC KEY", (const uint8_t *) der.data, der.len);
}

/* Decodes SubjectPublicKeyInfo with wolfCrypt, checks the key, appends the canonical DER. */
int tls_spki_canonical(const uint8_t *der, size_t len, struct buf *out,
                       enum tls_key_type *ret_type) {
        enum tls_key_type t;
        uint8_t canon[2048];
        word32 idx = 0;
        int r, n = -1;

        r = tls_parse_spki((struct der){der, len}, &t, NULL);
        if (r < 0)
                return r;
        if (t == TLS_KEY_EC_P256 || t == TLS_KEY_EC_P384) {
                ecc_key key;
                if (wc_ecc_init_ex(&key, NULL, INVALID_DEVID) != 0)
                        return -EIO;
                if (wc_EccPublicKeyDecode(der, &idx, &key, (word32) len) == 0 && idx == len &&
                    wc_ecc_check_key(&key) == 0 &&
                    key.dp->id == (t == TLS_KEY_EC_P256 ? ECC_SECP256R1 : ECC_SECP384R1))
                        n = wc_EccPublicKeyToDer(&key, canon, sizeof(canon), 1);
                (void) wc_ecc_free(&key);
        } else if (t == TLS_KEY_RSA) {
                RsaKey key;
                if (wc_InitRsaKey_ex(&key, NULL, INVALID_DEVID) != 0)
                        return -EIO;
                if (wc_RsaPublicKeyDecode(der, &idx, &key, (word32) len) == 0 && idx == len) {
                        int sz = wc_RsaEncryptSize(&key);
                        if (sz < 256 || sz > 512)
                                n = -2;
                        else
                                n = wc_RsaKeyToPublicDer(&key, canon, sizeof(canon));
                }
                (void) wc_FreeRsaKey(&key);
                if (n == -2)
                        return -ENOTSUP;
        } else
                return -ENOTSUP;
        if (n <= 0)
                return -EBADMSG;
        r = buf_append(out, canon, (size_t) n);
        if (r < 0)
                return r;
        if (ret_type)
                *ret_type = t;
        return 0;
}

int tls_public_key_pem_to_der(const char *pem, size_t len, struct buf *out) {
        char label[TLS_MAX_PEM_LABEL + 1];
        size_t pos = 0;
        DERBUF(der);
        int r;

        if (!out)
                return -EINVAL;
        r = tls_pem_input_begin(pem, len);
        if (r < 0)
                return r;
        r = tls_pem_next(pem, len, &pos, label, &der);
        if (r < 0)
                return r == -ENOTSUP ? -EBADMSG : r;
        if (r == 0 || strcmp(label, "PUBLIC KEY") != 0)
                return -EBADMSG;
        DERBUF(extra);
        char l2[TLS_MAX_PEM_LABEL + 1];
        if (tls_pem_next(pem, len, &pos, l2, &extra) != 0)
                return -EBADMSG;
        return tls_spki_canonical((const uint8_t *) der.data, der.len, out, NULL);
}

int tls_key_matches_spki(const struct tls_key *k, struct der spki) {
        DERBUF(mine);
        int r = tls_key_public_der(k, &mine);
        if (r < 0)
                return r;
        /* Compare canonical encodings (the certificate's may carry explicit parameters). */
        DERBUF(theirs);
        r = tls_spki_canonical(spki.p, spki.n, &theirs, NULL);
        if (r == -ENOTSUP)
                return 0;
        if (r < 0)
                return r;
        return mine.len == theirs.len && memcmp(mine.data, theirs.data, mine.len) == 0;
}

int tls_key_matches_cert(const struct tls_key *k, const uint8_t *der, size_t len) {
        struct cert_view v;
        int r;

        if (!k || !der)
                return -EINVAL;
        r = tls_inspect_der(der, len, NULL, &v);
        if (r < 0)
                return r;
        return tls_key_matches_spki(k, v.spki);
}
