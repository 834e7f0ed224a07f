/* SPDX-License-Identifier: Apache-2.0 */
/* operator/material: see material.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/kube.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/material.h"

static bool dns_label(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

int material_service_names(const char *service, const char *namespace_,
                           char out[MATERIAL_SERVICE_NAMES][254],
                           const char *names[MATERIAL_SERVICE_NAMES]) {
        if (!service || !namespace_ || !dns_label(service) || !dns_label(namespace_))
                return -EINVAL;
        static const char *const suffix[MATERIAL_SERVICE_NAMES] = {"", "", ".svc",
                                                                   ".svc.cluster.local"};
        for (size_t i = 0; i < MATERIAL_SERVICE_NAMES; i++) {
                int n = snprintf(out[i], 254, "%s%s%s%s", service, i ? "." : "",
                                 i ? namespace_ : "", suffix[i]);
                if (n < 0 || n > 253)
                        return -EINVAL;
                names[i] = out[i];
        }
        return 0;
}

int material_ca_generate(const char *common_name, int64_t now, struct buf *ret_cert_pem,
                         struct buf *ret_key_pem) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {};
        _cleanup_buf_ struct buf cert = BUF_INIT(TLS_MAX_PEM, 0),
                                 pem = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        int r;

        if (!common_name || now < 0 || !ret_cert_pem || !ret_key_pem ||
            !(ret_key_pem->flags & BUF_SECURE))
                return -EINVAL;
        struct tls_cert_params p = {.common_name = common_name,
                                    .not_before = now,
                                    .not_after = now + MATERIAL_CA_LIFETIME_S,
                                    .backdate = MATERIAL_BACKDATE_S,
                                    .path_len = 0};
        if ((r = tls_key_generate(&key)) < 0 || (r = tls_cert_create_ca(key, &p, &ca)) < 0 ||
            (r = tls_cert_encode_pem(&ca, &cert)) < 0 || (r = tls_key_export_pem(key, &pem)) < 0)
                return r;
        /* Room in both first, so that both appends succeed or neither buffer changes. */
        if ((r = buf_reserve(ret_key_pem, pem.len)) < 0 ||
            (r = buf_reserve(ret_cert_pem, cert.len)) < 0)
                return r;
        (void) buf_append(ret_key_pem, pem.data, pem.len);
        (void) buf_append(ret_cert_pem, cert.data, cert.len);
        return 0;
}

struct material_local_issuer {
        struct tls_key *key;
        struct tls_cert ca;
};

struct material_local_issuer *material_local_issuer_free(struct material_local_issuer *l) {
        if (!l)
                return NULL;
        tls_key_free(l->key);
        tls_cert_done(&l->ca);
        free(l);
        return NULL;
}

int material_local_issuer_new(const char *ca_cert_pem, size_t cert_len, const char *ca_key_pem,
                              size_t key_len, struct material_local_issuer **ret) {
        struct tls_cert *certs = NULL;
        size_t n = 0;
        int r;

        if (!ca_cert_pem || !ca_key_pem || !ret)
                return -EINVAL;
        struct material_local_issuer *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = tls_key_import_pem(ca_key_pem, key_len, &l->key);
        if (r >= 0)
                r = tls_cert_decode_bundle(ca_cert_pem, cert_len, &certs, &n);
        if (r >= 0) {
                l->ca = certs[0];
                certs[0] = (struct tls_cert){};
                tls_cert_array_free(certs, n);
                r = tls_key_matches_cert(l->key, l->ca.der, l->ca.len);
                if (r == 0)
                        r = -EPERM;
        }
        if (r < 0) {
                material_local_issuer_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static int local_issue(void *userdata, const uint8_t *spki, size_t spki_len,
                       const struct tls_cert_params *p, struct tls_cert *ret) {
        struct material_local_issuer *l = userdata;
        return tls_cert_issue(l->key, &l->ca, spki, spki_len, p, ret);
}

struct material_issuer material_local_issuer(struct material_local_issuer *l) {
        return (struct material_issuer){.issue = local_issue, .userdata = l};
}

int material_leaf_generate(const struct material_issuer *issuer, const char *cn,
                           const struct tls_san *san, unsigned usage, int64_t now,
                           int64_t lifetime_s, int64_t ca_not_after, struct buf *ret_cert_pem,
                           struct buf *ret_key_pem) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        _cleanup_tls_cert_ struct tls_cert leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0), cert = BUF_INIT(TLS_MAX_PEM, 0),
                                 pem = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        int r;

        if (!issuer || !issuer->issue || !cn || !san || !usage || lifetime_s <= 0 || now < 0 ||
            !ret_cert_pem || !ret_key_pem || !(ret_key_pem->flags & BUF_SECURE))
                return -EINVAL;
        int64_t not_after = now + lifetime_s;
        if (not_after > ca_not_after)
                not_after = ca_not_after;
        if (not_after <= now)
                return -EKEYEXPIRED; /* the CA itself has run out */
        struct tls_cert_params p = {.common_name = cn,
                                    .san = *san,
                                    .not_before = now,
                                    .not_after = not_after,
                                    .backdate = MATERIAL_BACKDATE_S,
                                    .usage = usage,
                                    .path_len = -1};
        if ((r = tls_key_generate(&key)) < 0 || (r = tls_key_public_der(key, &spki)) < 0 ||
            (r = issuer->issue(issuer->userdata, (const uint8_t *) spki.data, spki.len, &p,
                               &leaf)) < 0)
                return r;
        /* The issuer is another process: check that what came back is for our key. */
        r = tls_key_matches_cert(key, leaf.der, leaf.len);
        if (r <= 0)
                return r < 0 ? r : -EPROTO;
        if ((r = tls_cert_encode_pem(&leaf, &cert)) < 0 || (r = tls_key_export_pem(key, &pem)) < 0)
                return r;
        /* Room in both first, so that both appends succeed or neither buffer changes. */
        if ((r = buf_reserve(ret_key_pem, pem.len)) < 0 ||
            (r = buf_reserve(ret_cert_pem, cert.len)) < 0)
                return r;
        (void) buf_append(ret_key_pem, pem.data, pem.len);
        (void) buf_append(ret_cert_pem, cert.data, cert.len);
        return 0;
}

int material_random_base64(size_t n, struct buf *ret) {
        uint8_t *p;
        int r;

        if (!ret || !(ret->flags & BUF_SECURE) || n == 0 || n > 1024)
                return -EINVAL;
        r = secmem_alloc(n, (void **) &p);
        if (r < 0)
                return r;
        for (size_t got = 0; got < n;) {
                ssize_t k = getrandom(p + got, n - got, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = negative_errno();
                        secmem_free(p);
                        return r;
                }
                got += (size_t) k;
        }
        r = base64_encode(ret, p, n);
        secmem_free(p);
        return r;
}

int material_cert_validity(const char *pem, size_t len, int64_t *ret_not_before,
                           int64_t *ret_not_after) {
        struct tls_cert *certs = NULL;
        size_t n = 0;
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        int r;

        if (!pem)
                return -EINVAL;
        r = tls_cert_decode_bundle(pem, len, &certs, &n);
        if (r < 0)
                return r;
        r = tls_cert_inspect(&certs[0], &info);
        tls_cert_array_free(certs, n);
        if (r < 0)
                return r;
        if (ret_not_before)
                *ret_not_before = info.not_before;
        if (ret_not_after)
                *ret_not_after = info.not_after;
        return 0;
}

bool material_renewal_due(int64_t not_after, int64_t now, int64_t renew_before) {
        return not_after - now < renew_before;
}

int material_check_leaf(const char *ca_pem, size_t ca_len, const char *cert_pem, size_t cert_len,
                        const char *key_pem, size_t key_len, int64_t now, unsigned usage) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        struct tls_cert *certs = NULL;
        size_t n = 0;
        int r;

        if (!ca_pem || !cert_pem || !key_pem)
                return -EINVAL;
        r = tls_key_import_pem(key_pem, key_len, &key);
        if (r < 0)
                return r;
        r = tls_cert_decode_bundle(cert_pem, cert_len, &certs, &n);
        if (r < 0)
                return r;
        r = tls_key_matches_cert(key, certs[0].der, certs[0].len);
        if (r == 1)
                r = tls_verify_pem(ca_pem, ca_len, cert_pem, cert_len, now, usage);
        else if (r == 0)
                r = -EPERM;
        tls_cert_array_free(certs, n);
        return r;
}

/* An address literal's bytes (family, 16 bytes); false for anything else. */
static bool ip_bytes(const char *s, int *ret_family, uint8_t ret[16]) {
        memset(ret, 0, 16);
        if (inet_pton(AF_INET, s, ret) == 1)
                *ret_family = AF_INET;
        else if (inet_pton(AF_INET6, s, ret) == 1)
                *ret_family = AF_INET6;
        else
                return false;
        return true;
}

/* One SAN against one wanted host: addresses as bytes, DNS names without case. */
static bool same_host(const char *a, const char *b) {
        int fa, fb;
        uint8_t xa[16], xb[16];
        bool ia = ip_bytes(a, &fa, xa), ib = ip_bytes(b, &fb, xb);
        if (ia || ib)
                return ia && ib && fa == fb && memcmp(xa, xb, sizeof(xa)) == 0;
        return strcasecmp(a, b) == 0;
}

/* The names of a PEM bundle's first certificate. */
static int leaf_names(const char *cert_pem, size_t len, struct tls_cert_info *ret) {
        struct tls_cert *certs = NULL;
        size_t nc = 0;
        int r = tls_cert_decode_bundle(cert_pem, len, &certs, &nc);
        if (r < 0)
                return r;
        r = tls_cert_inspect(&certs[0], ret);
        tls_cert_array_free(certs, nc);
        return r;
}

static bool names_have(const struct tls_names *san, const char *name) {
        for (size_t j = 0; j < san->n_dns; j++)
                if (same_host(san->dns[j], name))
                        return true;
        for (size_t j = 0; j < san->n_ip; j++)
                if (same_host(san->ip[j], name))
                        return true;
        return false;
}

int material_leaf_covers(const char *cert_pem, size_t len, const char *const *names, size_t n) {
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        int r = leaf_names(cert_pem, len, &info);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!names_have(&info.san, names[i]))
                        return 0;
        return 1;
}

int material_leaf_names_exactly(const char *cert_pem, size_t len, const char *const *names,
                                size_t n) {
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        int r = material_leaf_covers(cert_pem, len, names, n);
        if (r <= 0)
                return r;
        if ((r = leaf_names(cert_pem, len, &info)) < 0)
                return r;
        /* Every wanted name is in the leaf (above), and every name of the leaf is wanted. */
        for (size_t k = 0; k < info.san.n_dns + info.san.n_ip; k++) {
                const char *have =
                        k < info.san.n_dns ? info.san.dns[k] : info.san.ip[k - info.san.n_dns];
                bool wanted = false;
                for (size_t i = 0; i < n && !wanted; i++)
                        wanted = same_host(have, names[i]);
                if (!wanted)
                        return 0;
        }
        return 1;
}

bool material_host_valid(const char *h) {
        int f;
        uint8_t b[16];
        if (!h || !*h)
                return false;
        if (ip_bytes(h, &f, b))
                return true;
        if (strlen(h) > 253)
                return false;
        const char *p = strncmp(h, "*.", 2) == 0 ? h + 2 : h;
        for (size_t label = 0;; p++) {
                if (*p == '.' || *p == '\0') {
                        if (label == 0 || label > 63)
                                return false;
                        if (*p == '\0')
                                return true;
                        label = 0;
                        continue;
                }
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                        return false;
                label++;
        }
}

int material_bundle_first(const char *pem, size_t len, struct buf *ret) {
        struct tls_cert *certs = NULL;
        size_t n = 0;
        if (!pem || !ret)
                return -EINVAL;
        int r = tls_cert_decode_bundle(pem, len, &certs, &n);
        if (r < 0)
                return r;
        r = tls_cert_encode_pem(&certs[0], ret);
        tls_cert_array_free(certs, n);
        return r;
}

int material_bundle_append_valid(const char *pem, size_t len, int64_t now, struct buf *ret) {
        _cleanup_buf_ struct buf out = BUF_INIT(TLS_MAX_PEM, 0);
        struct tls_cert *certs = NULL;
        size_t n = 0;
        if (!pem || !ret)
                return -EINVAL;
        int r = tls_cert_decode_bundle(pem, len, &certs, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_tls_cert_info_ struct tls_cert_info info = {};
                r = tls_cert_inspect(&certs[i], &info);
                if (r >= 0 && info.not_after > now)
                        r = tls_cert_encode_pem(&certs[i], &out);
        }
        tls_cert_array_free(certs, n);
        return r < 0 ? r : buf_append(ret, out.data, out.len);
}
