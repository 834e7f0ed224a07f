/* SPDX-License-Identifier: Apache-2.0 */
/* tls/name.c: names, SANs and SubjectPublicKeyInfo in DER; no wolfSSL. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/tls/internal.h"

/* ---- names and SANs ---------------------------------------------------------------------- */

bool tls_text_valid(const uint8_t *p, size_t n, size_t max) {
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return false;
        return true;
}

static int dup_text(struct der v, size_t max, char **ret) {
        if (!tls_text_valid(v.p, v.n, max))
                return v.n > max ? -E2BIG : -EBADMSG;
        char *s = strndup((const char *) v.p, v.n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool tls_dns_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '*' || c == '_'))
                        return false;
        }
        return true;
}

bool tls_uri_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > TLS_MAX_URI || !strchr(s, ':'))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

void tls_names_done(struct tls_names *n) {
        char **lists[] = {n->dns, n->ip, n->uri};
        size_t counts[] = {n->n_dns, n->n_ip, n->n_uri};
        for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                for (size_t i = 0; lists[l] && i < counts[l]; i++)
                        free(lists[l][i]);
                free(lists[l]);
        }
        *n = (struct tls_names){};
}

static int names_add(char ***list, size_t *count, char *s) {
        if (*count >= TLS_MAX_SANS) {
                free(s);
                return -E2BIG;
        }
        if (!*list) {
                *list = calloc(TLS_MAX_SANS, sizeof(char *));
                if (!*list) {
                        free(s);
                        return -ENOMEM;
                }
        }
        (*list)[(*count)++] = s;
        return 0;
}

/* GeneralNames (the SAN extension's value). */
int tls_parse_san(struct der v, struct tls_names *names) {
        struct der seq;
        int r;

        r = tls_der_expect(&v, T_SEQ, &seq, NULL);
        if (r < 0 || v.n != 0 || seq.n == 0)
                return -EBADMSG;
        while (seq.n > 0) {
                uint8_t tag;
                struct der gn;
                char *s = NULL;
                r = tls_der_get(&seq, &tag, &gn, NULL);
                if (r < 0)
                        return r;
                switch (tag) {
                case 0x82: /* dNSName */
                        r = dup_text(gn, 253, &s);
                        if (r < 0)
                                return r;
                        r = names_add(&names->dns, &names->n_dns, s);
                        break;
                case 0x86: /* uniformResourceIdentifier */
                        r = dup_text(gn, TLS_MAX_URI, &s);
                        if (r < 0)
                                return r;
                        r = names_add(&names->uri, &names->n_uri, s);
                        break;
                case 0x87: { /* iPAddress */
                        char text[INET6_ADDRSTRLEN];
                        if (gn.n != 4 && gn.n != 16)
                                return -EBADMSG;
                        if (!inet_ntop(gn.n == 4 ? AF_INET : AF_INET6, gn.p, text, sizeof(text)))
                                return -EBADMSG;
                        s = strdup(text);
                        if (!s)
                                return -ENOMEM;
                        r = names_add(&names->ip, &names->n_ip, s);
                        break;
                }
                default:
                        if (++names->n_other > TLS_MAX_SANS)
                                return -E2BIG;
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Name ::= SEQUENCE OF SET OF { OID, value }: picks the first CN and O. */
int tls_parse_name(struct der name, char **ret_cn, char **ret_o) {
        _cleanup_free_ char *cn = NULL, *o = NULL;
        unsigned rdns = 0;
        int r;

        while (name.n > 0) {
                struct der set;
                r = tls_der_expect(&name, T_SET, &set, NULL);
                if (r < 0)
                        return r;
                if (++rdns > MAX_RDNS)
                        return -E2BIG;
                if (set.n == 0)
                        return -EBADMSG;
                while (set.n > 0) {
                        struct der atv, oid, val;
                        uint8_t tag;
                        r = tls_der_expect(&set, T_SEQ, &atv, NULL);
                        if (r < 0)
                                return r;
                        r = tls_der_expect(&atv, T_OID, &oid, NULL);
                        if (r < 0)
                                return r;
                        r = tls_der_get(&atv, &tag, &val, NULL);
                        if (r < 0 || atv.n != 0)
                                return -EBADMSG;
                        char **dst = DER_EQ(oid, OID_CN) ? &cn : DER_EQ(oid, OID_O) ? &o : NULL;
                        if (!dst || *dst)
                                continue;
                        if (tag != T_UTF8 && tag != T_PRINTABLE && tag != T_IA5 && tag != T_T61)
                                return -EBADMSG;
                        r = dup_text(val, TLS_MAX_NAME, dst);
                        if (r < 0)
                                return r;
                }
        }
        if (!cn && !(cn = strdup("")))
                return -ENOMEM;
        if (!o && !(o = strdup("")))
                return -ENOMEM;
        *ret_cn = TAKE_PTR(cn);
        *ret_o = TAKE_PTR(o);
        return 0;
}

/* SubjectPublicKeyInfo: key type, and the BIT STRING's key bytes. */
int tls_parse_spki(struct der spki_whole, enum tls_key_type *ret_type, struct der *ret_bits) {
        struct der d = spki_whole, spki, alg, oid, bits;
        int r;

        r = tls_der_expect(&d, T_SEQ, &spki, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        r = tls_der_expect(&spki, T_SEQ, &alg, NULL);
        if (r < 0)
                return r;
        r = tls_der_expect(&alg, T_OID, &oid, NULL);
        if (r < 0)
                return r;
        r = tls_der_expect(&spki, T_BIT_STRING, &bits, NULL);
        if (r < 0 || spki.n != 0 || bits.n < 2 || bits.p[0] != 0)
                return -EBADMSG;
        enum tls_key_type t = TLS_KEY_OTHER;
        if (DER_EQ(oid, OID_EC_PUBLIC_KEY)) {
                struct der curve;
                if (tls_der_expect(&alg, T_OID, &curve, NULL) == 0 && alg.n == 0) {
                        if (DER_EQ(curve, OID_P256))
                                t = TLS_KEY_EC_P256;
                        else if (DER_EQ(curve, OID_P384))
                                t = TLS_KEY_EC_P384;
                }
        } else if (DER_EQ(oid, OID_RSA))
                t = TLS_KEY_RSA;
        *ret_type = t;
        if (ret_bits)
                *ret_bits = (struct der){bits.p + 1, bits.n - 1};
        return 0;
}
