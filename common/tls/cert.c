/* SPDX-License-Identifier: Apache-2.0 */
/* tls/cert.c: certificate reader (inspection) and certificates as values. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/tls/internal.h"
#include "common/tls/wolf.h"

/* ---- certificate / CSR reader ------------------------------------------------------------ */

/* wolfSSL's own parser as a gate: the bytes must satisfy it too. */
int tls_wolf_parse(const uint8_t *der, size_t len, int type, int verify, void *cm) {
        DecodedCert *dc;
        int r;

        if (len > TLS_MAX_DER)
                return -E2BIG;
        dc = malloc(sizeof(*dc));
        if (!dc)
                return -ENOMEM;
        wc_InitDecodedCert(dc, der, (word32) len, NULL);
        r = wc_ParseCert(dc, type, verify, cm);
        wc_FreeDecodedCert(dc);
        free(dc);
        return r;
}

void tls_cert_info_clear(struct tls_cert_info *i) {
        free(i->subject_cn);
        free(i->subject_o);
        free(i->issuer_cn);
        tls_names_done(&i->san);
        *i = (struct tls_cert_info){};
}

void tls_cert_info_done(struct tls_cert_info *i) {
        if (i)
                tls_cert_info_clear(i);
}

int tls_parse_extensions(struct der exts, struct tls_cert_info *info, struct cert_view *v) {
        struct der seq, seen[MAX_EXTENSIONS];
        size_t n_seen = 0;
        int r;

        r = tls_der_expect(&exts, T_SEQ, &seq, NULL);
        if (r < 0 || exts.n != 0 || seq.n == 0)
                return -EBADMSG;
        while (seq.n > 0) {
                struct der ext, oid, crit, val;
                bool critical = false;
                r = tls_der_expect(&seq, T_SEQ, &ext, NULL);
                if (r < 0)
                        return r;
                r = tls_der_expect(&ext, T_OID, &oid, NULL);
                if (r < 0)
                        return r;
                if (tls_der_peek(&ext, T_BOOLEAN)) {
                        r = tls_der_expect(&ext, T_BOOLEAN, &crit, NULL);
                        if (r < 0 || crit.n != 1 || (crit.p[0] != 0 && crit.p[0] != 0xff))
                                return -EBADMSG;
                        critical = crit.p[0] != 0;
                }
                r = tls_der_expect(&ext, T_OCTET_STRING, &val, NULL);
                if (r < 0 || ext.n != 0)
                        return -EBADMSG;
                if (n_seen >= MAX_EXTENSIONS)
                        return -E2BIG;
                for (size_t i = 0; i < n_seen; i++)
                        if (tls_der_eq(seen[i], oid.p, oid.n))
                                return -EBADMSG; /* duplicate extension */
                seen[n_seen++] = oid;
                (void) critical;

                if (DER_EQ(oid, OID_BC)) {
                        struct der bc;
                        r = tls_der_expect(&val, T_SEQ, &bc, NULL);
                        if (r < 0 || val.n != 0)
                                return -EBADMSG;
                        if (tls_der_peek(&bc, T_BOOLEAN)) {
                                struct der b;
                                r = tls_der_expect(&bc, T_BOOLEAN, &b, NULL);
                                if (r < 0 || b.n != 1)
                                        return -EBADMSG;
                                info->is_ca = b.p[0] != 0;
                        }
                        if (tls_der_peek(&bc, T_INTEGER)) {
                                struct der pl;
                                r = tls_der_expect(&bc, T_INTEGER, &pl, NULL);
                                if (r < 0 || pl.n < 1 || pl.n > 2 || (pl.p[0] & 0x80))
                                        return -EBADMSG;
                                info->path_len = pl.n == 1 ? pl.p[0] : pl.p[0] << 8 | pl.p[1];
                        }
                        if (bc.n != 0)
                                return -EBADMSG;
                } else if (DER_EQ(oid, OID_KU)) {
                        struct der bits;
                        r = tls_der_expect(&val, T_BIT_STRING, &bits, NULL);
                        if (r < 0 || val.n != 0 || bits.n < 1 || bits.n > 3 || bits.p[0] > 7)
                                return -EBADMSG;
                        unsigned ku = 0;
                        for (size_t i = 1; i < bits.n; i++)
                                for (unsigned b = 0; b < 8; b++)
                                        if (bits.p[i] & (0x80u >> b))
                                                ku |= 1u << ((i - 1) * 8 + b);
                        info->has_key_usage = true;
                        info->key_usage = ku;
                } else if (DER_EQ(oid, OID_EKU)) {
                        struct der list;
                        r = tls_der_expect(&val, T_SEQ, &list, NULL);
                        if (r < 0 || val.n != 0 || list.n == 0)
                                return -EBADMSG;
                        while (list.n > 0) {
                                struct der p;
                                r = tls_der_expect(&list, T_OID, &p, NULL);
                                if (r < 0)
                                        return r;
                                if (DER_EQ(p, OID_SERVER_AUTH))
                                        info->ext_key_usage |= TLS_USAGE_SERVER;
                                else if (DER_EQ(p, OID_CLIENT_AUTH))
                                        info->ext_key_usage |= TLS_USAGE_CLIENT;
                        }
                        info->has_ext_key_usage = true;
                } else if (DER_EQ(oid, OID_SAN)) {
                        r = tls_parse_san(val, &info->san);
                        if (r < 0)
                                return r;
                } else if (DER_EQ(oid, OID_SKI)) {
                        struct der ski;
                        r = tls_der_expect(&val, T_OCTET_STRING, &ski, NULL);
                        if (r < 0 || val.n != 0 || ski.n == 0 || ski.n > 64)
                                return -EBADMSG;
                        v->ski = ski;
                }
        }
        return 0;
}

static void hex(const uint8_t *p, size_t n, char *out) {
        static const char h[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = h[p[i] >> 4];
                out[2 * i + 1] = h[p[i] & 15];
        }
        out[2 * n] = '\0';
}

/* Full structural read of a certificate. info must be zeroed; on failure it is cleared. */
static int parse_cert(const uint8_t *der, size_t len, struct tls_cert_info *info,
                      struct cert_view *v) {
        struct der d = {der, len}, cert, tbs, tmp, serial, validity, alg;
        uint8_t tag;
        int r;

        *v = (struct cert_view){};
        info->path_len = -1;
        if (len == 0)
                return -EBADMSG;
        if (len > TLS_MAX_DER)
                return -E2BIG;
        r = tls_der_expect(&d, T_SEQ, &cert, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        r = tls_der_expect(&cert, T_SEQ, &tbs, NULL);
        if (r < 0)
                return r;
        r = tls_der_expect(&cert, T_SEQ, &alg, NULL);
        if (r < 0)
                return r;
        r = tls_der_expect(&cert, T_BIT_STRING, &tmp, NULL);
        if (r < 0 || cert.n != 0)
                return -EBADMSG;

        if (tls_der_peek(&tbs, T_CTX0)) {
                struct der ver, vi;
                r = tls_der_expect(&tbs, T_CTX0, &ver, NULL);
                if (r < 0)
                        return r;
                r = tls_der_expect(&ver, T_INTEGER, &vi, NULL);
                if (r < 0 || ver.n != 0 || vi.n != 1 || vi.p[0] > 2)
                        return -EBADMSG;
        }
        r = tls_der_expect(&tbs, T_INTEGER, &serial, NULL);
        if (r < 0)
                return r;
        if (serial.n == 0 || serial.n > TLS_MAX_SERIAL + 1 ||
            (serial.n > 1 && serial.p[0] == 0 && !(serial.p[1] & 0x80)))
                return -EBADMSG;
        struct der ser = serial;
        if (ser.n > 1 && ser.p[0] == 0) {
                ser.p++;
                ser.n--;
        }
        if (ser.n > TLS_MAX_SERIAL)
                return -EBADMSG;
        hex(ser.p, ser.n, info->serial_hex);

        r = tls_der_expect(&tbs, T_SEQ, &tmp, NULL); /* signature algorithm */
        if (r < 0)
                return r;
        struct der issuer, subject;
        r = tls_der_expect(&tbs, T_SEQ, &issuer, &v->issuer);
        if (r < 0)
                return r;
        r = tls_der_expect(&tbs, T_SEQ, &validity, NULL);
        if (r < 0)
                return r;
        r = tls_der_expect(&tbs, T_SEQ, &subject, &v->subject);
        if (r < 0)
                return r;
        r = tls_der_expect(&tbs, T_SEQ, NULL, &v->spki);
        if (r < 0)
                return r;

        struct der t;
        r = tls_der_get(&validity, &tag, &t, NULL);
        if (r < 0 || tls_parse_time(tag, t, &info->not_before) < 0)
                return -EBADMSG;
        r = tls_der_get(&validity, &tag, &t, NULL);
        if (r < 0 || tls_parse_time(tag, t, &info->not_after) < 0 || validity.n != 0)
                return -EBADMSG;

        char *unused_o = NULL;
        r = tls_parse_name(issuer, &info->issuer_cn, &unused_o);
        free(unused_o);
        if (r < 0)
                return r;
        r = tls_parse_name(subject, &info->subject_cn, &info->subject_o);
        if (r < 0)
                return r;
        info->self_issued = tls_der_eq(v->issuer, v->subject.p, v->subject.n);

        r = tls_parse_spki(v->spki, &info->key_type, NULL);
        if (r < 0)
                return r;

        /* issuerUniqueID [1], subjectUniqueID [2] (IMPLICIT BIT STRINGs), extensions [3] */
        if (tbs.n > 0 && tbs.p[0] == 0x81)
                if ((r = tls_der_get(&tbs, NULL, NULL, NULL)) < 0)
                        return r;
        if (tbs.n > 0 && tbs.p[0] == 0x82)
                if ((r = tls_der_get(&tbs, NULL, NULL, NULL)) < 0)
                        return r;
        if (tls_der_peek(&tbs, T_CTX3)) {
                struct der exts;
                r = tls_der_expect(&tbs, T_CTX3, &exts, NULL);
                if (r < 0)
                        return r;
                r = tls_parse_extensions(exts, info, v);
                if (r < 0)
                        return r;
        }
        if (tbs.n != 0)
                return -EBADMSG;

        if (wc_Sha256Hash(der, (word32) len, info->sha256) != 0)
                return -EIO;
        hex(info->sha256, sizeof(info->sha256), info->sha256_hex);
        return 0;
}

int tls_inspect_der(const uint8_t *der, size_t len, struct tls_cert_info *ret,
                    struct cert_view *ret_view) {
        struct tls_cert_info info = {};
        struct cert_view view;
        int r;

        r = tls_init();
        if (r < 0)
                return r;
        if (len > TLS_MAX_DER)
                return -E2BIG;
        r = tls_wolf_parse(der, len, CERT_TYPE, NO_VERIFY, NULL);
        if (r == -ENOMEM || r == MEMORY_E)
                return -ENOMEM;
        if (r != 0 && r != ASN_CRIT_EXT_E) /* unknown critical extensions: verification fails */
                return -EBADMSG;
        r = parse_cert(der, len, &info, &view);
        if (r < 0) {
                tls_cert_info_clear(&info);
                return r;
        }
        if (ret)
                *ret = info;
        else
                tls_cert_info_clear(&info);
        if (ret_view)
                *ret_view = view;
        return 0;
}

int tls_cert_inspect(const struct tls_cert *c, struct tls_cert_info *ret) {
        if (!c || !c->der || !ret)
                return -EINVAL;
        return tls_inspect_der(c->der, c->len, ret, NULL);
}

int64_t tls_cert_seconds_left(const struct tls_cert_info *i, int64_t now) {
        return i->not_after - now;
}

bool tls_cert_needs_renewal(const struct tls_cert_info *i, int64_t now, unsigned percent) {
        if (now < i->not_before || now >= i->not_after)
                return true;
        if (percent > 100)
                percent = 100;
        /* Both factors are below 2^38 (times are bounded to year 9999), so no overflow. */
        int64_t lifetime = i->not_after - i->not_before, left = i->not_after - now;
        return left * 100 < lifetime * (int64_t) percent;
}

/* ---- certificates as values -------------------------------------------------------------- */

void tls_cert_done(struct tls_cert *c) {
        if (!c)
                return;
        free(c->der);
        *c = (struct tls_cert){};
}

void tls_cert_array_free(struct tls_cert *certs, size_t n) {
        if (!certs)
                return;
        for (size_t i = 0; i < n; i++)
                tls_cert_done(&certs[i]);
        free(certs);
}

static int cert_from_buf(const struct buf *b, struct tls_cert *ret) {
        uint8_t *p = malloc(b->len);
        if (!p)
                return -ENOMEM;
        memcpy(p, b->data, b->len);
        *ret = (struct tls_cert){p, b->len};
        return 0;
}

/* Decodes up to max "CERTIFICATE" blocks; every block must be one (and parse). */
int tls_decode_certs(const char *pem, size_t len, size_t max, struct tls_cert **ret_certs,
                     size_t *ret_n) {
        struct tls_cert *certs = NULL;
        size_t n = 0, pos = 0;
        char label[TLS_MAX_PEM_LABEL + 1];
        int r;

        r = tls_check_pem_input(pem, len);
        if (r < 0)
                return r;
        certs = calloc(max, sizeof(*certs));
        if (!certs)
                return -ENOMEM;
        for (;;) {
                DERBUF(der);
                r = tls_pem_next(pem, len, &pos, label, &der);
                if (r <= 0)
                        break;
                if (strcmp(label, "CERTIFICATE") != 0) {
                        r = -EBADMSG;
                        break;
                }
                if (n >= max) {
                        r = -ETOOMANYREFS; /* mapped by the callers */
                        break;
                }
                r = tls_inspect_der((const uint8_t *) der.data, der.len, NULL, NULL);
                if (r < 0)
                        break;
                r = cert_from_buf(&der, &certs[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r == 0 && n == 0)
                r = -EBADMSG;
        if (r < 0) {
                tls_cert_array_free(certs, n);
                return r == -ENOTSUP ? -EBADMSG : r;
        }
        *ret_certs = certs;
        *ret_n = n;
        return 0;
}

int tls_cert_decode_pem(const char *pem, size_t len, struct tls_cert *ret) {
        struct tls_cert *certs;
        size_t n;
        int r;

        if (!ret)
                return -EINVAL;
        r = tls_decode_certs(pem, len, 1, &certs, &n);
        if (r == -ETOOMANYREFS)
                return -EBADMSG; /* a second block */
        if (r < 0)
                return r;
        *ret = certs[0];
        free(certs);
        return 0;
}

int tls_cert_decode_bundle(const char *pem, size_t len, struct tls_cert **ret_certs,
                           size_t *ret_n) {
        if (!ret_certs || !ret_n)
                return -EINVAL;
        int r = tls_decode_certs(pem, len, TLS_MAX_BUNDLE_CERTS, ret_certs, ret_n);
        return r == -ETOOMANYREFS ? -E2BIG : r;
}

int tls_cert_encode_pem(const struct tls_cert *c, struct buf *out) {
        if (!c || !c->der || c->len == 0 || !out)
                return -EINVAL;
        return tls_pem_write(out, "CERTIFICATE", c->der, c->len);
}
