/* SPDX-License-Identifier: Apache-2.0 */
/* tls/issue.c: issuing certificates, creating and parsing CSRs. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/tls/internal.h"
#include "common/tls/wolf.h"

/* ---- generation -------------------------------------------------------------------------- */

static int put_name(struct buf *b, const char *cn, const char *o) {
        DERBUF(rdns);
        const struct {
                const uint8_t *oid;
                size_t n;
                const char *v;
        } attrs[] = {{OID_O, sizeof(OID_O), o}, {OID_CN, sizeof(OID_CN), cn}};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                if (!attrs[i].v)
                        continue;
                DERBUF(atv);
                DERBUF(set);
                if ((r = tls_der_put_oid(&atv, attrs[i].oid, attrs[i].n)) < 0 ||
                    (r = tls_der_put(&atv, T_UTF8, attrs[i].v, strlen(attrs[i].v))) < 0 ||
                    (r = tls_der_wrap(&set, T_SEQ, &atv)) < 0 ||
                    (r = tls_der_wrap(&rdns, T_SET, &set)) < 0)
                        return r;
        }
        return tls_der_wrap(b, T_SEQ, &rdns);
}

static bool subject_text_valid(const char *s, bool required) {
        if (!s)
                return !required;
        return tls_text_valid((const uint8_t *) s, strlen(s), 64);
}

/* Appends the SAN extension value (GeneralNames) for san; nothing when it is empty. */
static int put_san_value(struct buf *b, const struct tls_san *san, bool *ret_any) {
        DERBUF(names);
        int r;

        *ret_any = false;
        if (!san)
                return 0;
        if (san->n_dns > TLS_MAX_SANS || san->n_ip > TLS_MAX_SANS || san->n_uri > TLS_MAX_SANS)
                return -E2BIG;
        if ((san->n_dns && !san->dns) || (san->n_ip && !san->ip) || (san->n_uri && !san->uri))
                return -EINVAL;
        for (size_t i = 0; i < san->n_dns; i++) {
                if (!san->dns[i] || !tls_dns_name_valid(san->dns[i]))
                        return -EINVAL;
                if ((r = tls_der_put(&names, 0x82, san->dns[i], strlen(san->dns[i]))) < 0)
                        return r;
        }
        for (size_t i = 0; i < san->n_ip; i++) {
                uint8_t a[16];
                size_t n;
                if (!san->ip[i])
                        return -EINVAL;
                if (inet_pton(AF_INET, san->ip[i], a) == 1)
                        n = 4;
                else if (inet_pton(AF_INET6, san->ip[i], a) == 1)
                        n = 16;
                else
                        return -EINVAL;
                if ((r = tls_der_put(&names, 0x87, a, n)) < 0)
                        return r;
        }
        for (size_t i = 0; i < san->n_uri; i++) {
                if (!san->uri[i] || !tls_uri_valid(san->uri[i]))
                        return -EINVAL;
                if ((r = tls_der_put(&names, 0x86, san->uri[i], strlen(san->uri[i]))) < 0)
                        return r;
        }
        if (names.len == 0)
                return 0;
        *ret_any = true;
        return tls_der_wrap(b, T_SEQ, &names);
}

static int put_ext(struct buf *exts, const uint8_t *oid, size_t oidlen, bool critical,
                   const struct buf *value) {
        static const uint8_t crit[] = {T_BOOLEAN, 1, 0xff};
        DERBUF(ext);
        int r;
        if ((r = tls_der_put_oid(&ext, oid, oidlen)) < 0 ||
            (critical && (r = buf_append(&ext, crit, sizeof(crit))) < 0) ||
            (r = tls_der_wrap(&ext, T_OCTET_STRING, value)) < 0)
                return r;
        return tls_der_wrap(exts, T_SEQ, &ext);
}

static int put_key_usage(struct buf *exts, unsigned ku_byte) {
        DERBUF(v);
        uint8_t bits[2] = {(uint8_t) __builtin_ctz(ku_byte), (uint8_t) ku_byte};
        int r = tls_der_put(&v, T_BIT_STRING, bits, sizeof(bits));
        if (r < 0)
                return r;
        return put_ext(exts, OID_KU, sizeof(OID_KU), true, &v);
}

static int put_basic_constraints(struct buf *exts, bool ca, int path_len) {
        DERBUF(seq);
        DERBUF(v);
        static const uint8_t true_[] = {T_BOOLEAN, 1, 0xff};
        int r;
        if (ca) {
                if ((r = buf_append(&seq, true_, sizeof(true_))) < 0)
                        return r;
                if (path_len >= 0) {
                        uint8_t pl[2] = {(uint8_t) (path_len >> 8), (uint8_t) path_len};
                        bool two = path_len > 127;
                        if ((r = tls_der_put(&seq, T_INTEGER, two ? pl : pl + 1, two ? 2 : 1)) < 0)
                                return r;
                }
        }
        if ((r = tls_der_wrap(&v, T_SEQ, &seq)) < 0)
                return r;
        return put_ext(exts, OID_BC, sizeof(OID_BC), true, &v);
}

static int put_key_ids(struct buf *exts, struct der ski, struct der aki) {
        int r;
        if (ski.n) {
                DERBUF(v);
                if ((r = tls_der_put(&v, T_OCTET_STRING, ski.p, ski.n)) < 0 ||
                    (r = put_ext(exts, OID_SKI, sizeof(OID_SKI), false, &v)) < 0)
                        return r;
        }
        if (aki.n) {
                DERBUF(inner);
                DERBUF(v);
                if ((r = tls_der_put(&inner, 0x80, aki.p, aki.n)) < 0 ||
                    (r = tls_der_wrap(&v, T_SEQ, &inner)) < 0 ||
                    (r = put_ext(exts, OID_AKI, sizeof(OID_AKI), false, &v)) < 0)
                        return r;
        }
        return 0;
}

/* Signature algorithm for a signing key: wolfSSL's constant and the AlgorithmIdentifier. */
static int sig_alg(const struct tls_key *k, int *ret_ctc, struct buf *alg) {
        DERBUF(inner);
        int r;
        switch (k->type) {
        case TLS_KEY_EC_P256:
                *ret_ctc = CTC_SHA256wECDSA;
                r = tls_der_put_oid(&inner, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256));
                break;
        case TLS_KEY_EC_P384:
                *ret_ctc = CTC_SHA384wECDSA;
                r = tls_der_put_oid(&inner, OID_ECDSA_SHA384, sizeof(OID_ECDSA_SHA384));
                break;
        case TLS_KEY_RSA:
                *ret_ctc = CTC_SHA256wRSA;
                r = tls_der_put_oid(&inner, OID_RSA_SHA256, sizeof(OID_RSA_SHA256));
                if (r == 0)
                        r = tls_der_put(&inner, T_NULL, NULL, 0);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return tls_der_wrap(alg, T_SEQ, &inner);
}

/* Signs a TBSCertificate / CertificationRequestInfo (a complete SEQUENCE TLV) with k. */
static int sign_tbs(const struct tls_key *k, int ctc, const struct buf *tbs, struct tls_cert *ret) {
        WC_RNG rng;
        size_t cap = tbs->len + MAX_SIG_OVERHEAD;
        uint8_t *out;
        int n;

        if (tbs->len > TLS_MAX_DER - MAX_SIG_OVERHEAD)
                return -E2BIG;
        out = malloc(cap);
        if (!out)
                return -ENOMEM;
        memcpy(out, tbs->data, tbs->len);
        if (wc_InitRng(&rng) != 0) {
                free(out);
                return -EIO;
        }
        n = wc_SignCert_ex((int) tbs->len, ctc, out, (word32) cap, tls_key_wc_type(k),
                           tls_key_ptr(k), &rng);
        (void) wc_FreeRng(&rng);
        if (n <= 0) {
                free(out);
                return n == MEMORY_E ? -ENOMEM : -EIO;
        }
        *ret = (struct tls_cert){out, (size_t) n};
        return 0;
}

/* SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1). */
static int key_id(const uint8_t *spki, size_t len, uint8_t id[20]) {
        enum tls_key_type t;
        struct der bits;
        int r = tls_parse_spki((struct der){spki, len}, &t, &bits);
        if (r < 0)
                return r;
        return wc_ShaHash(bits.p, (word32) bits.n, id) == 0 ? 0 : -EIO;
}

static int random_serial(struct buf *b) {
        uint8_t s[17] = {0};
        WC_RNG rng;
        int r;

        if (wc_InitRng(&rng) != 0)
                return -EIO;
        do
                r = wc_RNG_GenerateBlock(&rng, s + 1, 16);
        while (r == 0 && s[1] == 0);
        (void) wc_FreeRng(&rng);
        if (r != 0)
                return -EIO;
        /* 128 random bits as a positive INTEGER: a 0x00 sign byte when the top bit is set. */
        bool sign = s[1] & 0x80;
        return tls_der_put(b, T_INTEGER, sign ? s : s + 1, sign ? 17 : 16);
}

static int check_params(const struct tls_cert_params *p, bool ca) {
        if (!p || !subject_text_valid(p->common_name, true) ||
            !subject_text_valid(p->organization, false))
                return -EINVAL;
        if (p->not_before < 0 || p->not_after <= p->not_before || p->not_after > MAX_UNIX_TIME ||
            (int64_t) p->backdate > p->not_before)
                return -EINVAL;
        if (!ca && (p->usage == 0 || (p->usage & ~(TLS_USAGE_SERVER | TLS_USAGE_CLIENT))))
                return -EINVAL;
        if (ca && p->path_len > 255)
                return -EINVAL;
        return 0;
}

/* TBSCertificate head: version, serial, signature, issuer, validity, subject, spki. */
static int put_tbs_head(struct buf *tbs, const struct buf *alg, const struct der issuer,
                        const struct tls_cert_params *p, const uint8_t *spki, size_t spki_len) {
        static const uint8_t v3[] = {T_CTX0, 3, T_INTEGER, 1, 2};
        DERBUF(validity);
        int r;
        if ((r = buf_append(tbs, v3, sizeof(v3))) < 0 || (r = random_serial(tbs)) < 0 ||
            (r = buf_append(tbs, alg->data, alg->len)) < 0)
                return r;
        if (issuer.n)
                r = buf_append(tbs, issuer.p, issuer.n);
        else
                r = put_name(tbs, p->common_name, p->organization);
        if (r < 0)
                return r;
        if ((r = tls_der_put_time(&validity, p->not_before - (int64_t) p->backdate)) < 0 ||
            (r = tls_der_put_time(&validity, p->not_after)) < 0 ||
            (r = tls_der_wrap(tbs, T_SEQ, &validity)) < 0 ||
            (r = put_name(tbs, p->common_name, p->organization)) < 0)
                return r;
        return buf_append(tbs, spki, spki_len);
}

static int finish_tbs(const struct tls_key *signer, int ctc, struct buf *body,
                      const struct buf *exts, struct tls_cert *ret) {
        DERBUF(seq);
        DERBUF(tbs);
        int r;
        if (exts->len) {
                if ((r = tls_der_wrap(&seq, T_SEQ, exts)) < 0 ||
                    (r = tls_der_wrap(body, T_CTX3, &seq)) < 0)
                        return r;
        }
        if ((r = tls_der_wrap(&tbs, T_SEQ, body)) < 0)
                return r;
        return sign_tbs(signer, ctc, &tbs, ret);
}

int tls_cert_create_ca(const struct tls_key *key, const struct tls_cert_params *p,
                       struct tls_cert *ret) {
        DERBUF(spki);
        DERBUF(alg);
        DERBUF(body);
        DERBUF(exts);
        uint8_t id[20];
        int ctc, r;

        if (!key || !ret || key->type == TLS_KEY_NONE)
                return -EINVAL;
        r = check_params(p, true);
        if (r < 0)
                return r;
        r = tls_init();
        if (r < 0)
                return r;
        if ((r = tls_key_public_der(key, &spki)) < 0 ||
            (r = key_id((const uint8_t *) spki.data, spki.len, id)) < 0 ||
            (r = sig_alg(key, &ctc, &alg)) < 0)
                return r;
        r = put_tbs_head(&body, &alg, (struct der){}, p, (const uint8_t *) spki.data, spki.len);
        if (r < 0)
                return r;
        bool any;
        DERBUF(san);
        struct der idd = {id, sizeof(id)};
        if ((r = put_basic_constraints(&exts, true, p->path_len)) < 0 ||
            (r = put_key_usage(&exts, 0x06)) < 0 || /* keyCertSign, cRLSign */
            (r = put_key_ids(&exts, idd, idd)) < 0 || (r = put_san_value(&san, &p->san, &any)) < 0)
                return r;
        if (any && (r = put_ext(&exts, OID_SAN, sizeof(OID_SAN), false, &san)) < 0)
                return r;
        return finish_tbs(key, ctc, &body, &exts, ret);
}

int tls_cert_issue(const struct tls_key *ca_key, const struct tls_cert *ca, const uint8_t *spki,
                   size_t spki_len, const struct tls_cert_params *p, struct tls_cert *ret) {
        _cleanup_tls_cert_info_ struct tls_cert_info ca_info = {};
        struct cert_view ca_view;
        DERBUF(subject_spki);
        DERBUF(alg);
        DERBUF(body);
        DERBUF(exts);
        uint8_t id[20];
        int ctc, r;

        if (!ca_key || !ca || !ca->der || !spki || spki_len == 0 || !ret ||
            ca_key->type == TLS_KEY_NONE)
                return -EINVAL;
        r = check_params(p, false);
        if (r < 0)
                return r;
        if (spki_len > TLS_MAX_DER)
                return -E2BIG;
        r = tls_inspect_der(ca->der, ca->len, &ca_info, &ca_view);
        if (r < 0)
                return r;
        if (!ca_info.is_ca ||
            (ca_info.has_key_usage && !(ca_info.key_usage & TLS_KU_KEY_CERT_SIGN)))
                return -EINVAL;
        r = tls_key_matches_spki(ca_key, ca_view.spki);
        if (r < 0)
                return r;
        if (r == 0)
                return -EINVAL;
        r = tls_spki_canonical(spki, spki_len, &subject_spki, NULL);
        if (r < 0)
                return r;
        if ((r = key_id((const uint8_t *) subject_spki.data, subject_spki.len, id)) < 0 ||
            (r = sig_alg(ca_key, &ctc, &alg)) < 0)
                return r;
        r = put_tbs_head(&body, &alg, ca_view.subject, p, (const uint8_t *) subject_spki.data,
                         subject_spki.len);
        if (r < 0)
                return r;

        DERBUF(eku_list);
        DERBUF(eku);
        DERBUF(san);
        bool any;
        r = 0;
        if (p->usage & TLS_USAGE_SERVER)
                r = tls_der_put_oid(&eku_list, OID_SERVER_AUTH, sizeof(OID_SERVER_AUTH));
        if (r == 0 && (p->usage & TLS_USAGE_CLIENT))
                r = tls_der_put_oid(&eku_list, OID_CLIENT_AUTH, sizeof(OID_CLIENT_AUTH));
        if (r < 0)
                return r;
        if ((r = put_basic_constraints(&exts, false, -1)) < 0 ||
            (r = put_key_usage(&exts, p->key_encipherment ? 0xa0 : 0x80)) < 0 ||
            (r = tls_der_wrap(&eku, T_SEQ, &eku_list)) < 0 ||
            (r = put_ext(&exts, OID_EKU, sizeof(OID_EKU), false, &eku)) < 0 ||
            (r = put_san_value(&san, &p->san, &any)) < 0)
                return r;
        if (any && (r = put_ext(&exts, OID_SAN, sizeof(OID_SAN), false, &san)) < 0)
                return r;
        /* AKI only when the CA has an SKI: wolfSSL finds issuers by AKI == SKI. */
        r = put_key_ids(&exts, (struct der){id, sizeof(id)}, ca_view.ski);
        if (r < 0)
                return r;
        return finish_tbs(ca_key, ctc, &body, &exts, ret);
}

/* ---- CSRs -------------------------------------------------------------------------------- */

int tls_csr_create(const struct tls_key *k, const char *cn, const char *org,
                   const struct tls_san *san, struct buf *out) {
        static const uint8_t v0[] = {T_INTEGER, 1, 0};
        _cleanup_tls_cert_ struct tls_cert csr = {};
        DERBUF(spki);
        DERBUF(body);
        DERBUF(alg);
        DERBUF(sanv);
        DERBUF(attrs);
        DERBUF(tbs);
        bool any;
        int ctc, r;

        if (!k || !out || k->type == TLS_KEY_NONE || !subject_text_valid(cn, true) ||
            !subject_text_valid(org, false))
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        if ((r = tls_key_public_der(k, &spki)) < 0 || (r = sig_alg(k, &ctc, &alg)) < 0 ||
            (r = put_san_value(&sanv, san, &any)) < 0)
                return r;
        if ((r = buf_append(&body, v0, sizeof(v0))) < 0 || (r = put_name(&body, cn, org)) < 0 ||
            (r = buf_append(&body, spki.data, spki.len)) < 0)
                return r;
        if (any) {
                DERBUF(exts);
                DERBUF(extseq);
                DERBUF(set);
                DERBUF(attr);
                if ((r = put_ext(&exts, OID_SAN, sizeof(OID_SAN), false, &sanv)) < 0 ||
                    (r = tls_der_wrap(&extseq, T_SEQ, &exts)) < 0 ||
                    (r = tls_der_wrap(&set, T_SET, &extseq)) < 0 ||
                    (r = tls_der_put_oid(&attr, OID_EXT_REQ, sizeof(OID_EXT_REQ))) < 0 ||
                    (r = buf_append(&attr, set.data, set.len)) < 0 ||
                    (r = tls_der_wrap(&attrs, T_SEQ, &attr)) < 0)
                        return r;
        }
        if ((r = tls_der_wrap(&body, T_CTX0, &attrs)) < 0 ||
            (r = tls_der_wrap(&tbs, T_SEQ, &body)) < 0 || (r = sign_tbs(k, ctc, &tbs, &csr)) < 0)
                return r;
        return tls_pem_write(out, "CERTIFICATE REQUEST", csr.der, csr.len);
}

void tls_csr_info_done(struct tls_csr_info *i) {
        if (!i)
                return;
        free(i->subject_cn);
        free(i->subject_o);
        tls_names_done(&i->san);
        free(i->spki);
        *i = (struct tls_csr_info){};
}

static int parse_csr(const uint8_t *der, size_t len, struct tls_csr_info *info) {
        struct der d = {der, len}, csr, cri, ver, subject, spki, attrs, tmp;
        int r;

        r = tls_der_expect(&d, T_SEQ, &csr, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        if ((r = tls_der_expect(&csr, T_SEQ, &cri, NULL)) < 0 ||
            (r = tls_der_expect(&csr, T_SEQ, &tmp, NULL)) < 0 ||
            (r = tls_der_expect(&csr, T_BIT_STRING, &tmp, NULL)) < 0 || csr.n != 0)
                return -EBADMSG;
        if ((r = tls_der_expect(&cri, T_INTEGER, &ver, NULL)) < 0 || ver.n != 1 || ver.p[0] != 0 ||
            (r = tls_der_expect(&cri, T_SEQ, &subject, NULL)) < 0 ||
            (r = tls_der_expect(&cri, T_SEQ, NULL, &spki)) < 0 ||
            (r = tls_der_expect(&cri, T_CTX0, &attrs, NULL)) < 0 || cri.n != 0)
                return -EBADMSG;
        r = tls_parse_name(subject, &info->subject_cn, &info->subject_o);
        if (r < 0)
                return r;
        r = tls_parse_spki(spki, &info->key_type, NULL);
        if (r < 0)
                return r;
        bool seen_ext_req = false;
        unsigned n_attrs = 0;
        while (attrs.n > 0) {
                struct der attr, oid, set;
                if (++n_attrs > MAX_EXTENSIONS)
                        return -E2BIG;
                if ((r = tls_der_expect(&attrs, T_SEQ, &attr, NULL)) < 0 ||
                    (r = tls_der_expect(&attr, T_OID, &oid, NULL)) < 0 ||
                    (r = tls_der_expect(&attr, T_SET, &set, NULL)) < 0 || attr.n != 0)
                        return -EBADMSG;
                if (!DER_EQ(oid, OID_EXT_REQ))
                        continue;
                if (seen_ext_req)
                        return -EBADMSG;
                seen_ext_req = true;
                struct der exts;
                if ((r = tls_der_expect(&set, T_SEQ, NULL, &exts)) < 0 || set.n != 0)
                        return -EBADMSG;
                struct tls_cert_info tmpinfo = {};
                struct cert_view v = {};
                r = tls_parse_extensions(exts, &tmpinfo, &v);
                info->san = tmpinfo.san;
                tmpinfo.san = (struct tls_names){};
                tls_cert_info_clear(&tmpinfo);
                if (r < 0)
                        return r;
        }
        info->spki = malloc(spki.n);
        if (!info->spki)
                return -ENOMEM;
        memcpy(info->spki, spki.p, spki.n);
        info->spki_len = spki.n;
        return 0;
}

int tls_csr_parse_pem(const char *pem, size_t len, struct tls_csr_info *ret) {
        char label[TLS_MAX_PEM_LABEL + 1];
        struct tls_csr_info info = {};
        size_t pos = 0;
        DERBUF(der);
        int r;

        if (!ret)
                return -EINVAL;
        r = tls_pem_input_begin(pem, len);
        if (r < 0)
                return r;
        r = tls_pem_next(pem, len, &pos, label, &der);
        if (r < 0)
                return r == -ENOTSUP ? -EBADMSG : r;
        if (r == 0 || (strcmp(label, "CERTIFICATE REQUEST") != 0 &&
                       strcmp(label, "NEW CERTIFICATE REQUEST") != 0))
                return -EBADMSG;
        DERBUF(extra);
        char l2[TLS_MAX_PEM_LABEL + 1];
        if (tls_pem_next(pem, len, &pos, l2, &extra) != 0)
                return -EBADMSG;
        /* wolfSSL parses the request and checks its self-signature. */
        r = tls_wolf_parse((const uint8_t *) der.data, der.len, CERTREQ_TYPE, VERIFY, NULL);
        if (r == MEMORY_E)
                return -ENOMEM;
        if (r != 0)
                return -EBADMSG;
        r = parse_csr((const uint8_t *) der.data, der.len, &info);
        if (r < 0) {
                tls_csr_info_done(&info);
                return r;
        }
        if (info.key_type == TLS_KEY_OTHER) {
                tls_csr_info_done(&info);
                return -ENOTSUP;
        }
        *ret = info;
        return 0;
}
