/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls/internal.h: what the files of the TLS module share and nobody else may use. No wolfSSL
 * here (the DER, PEM and name readers are plain C); the wolfSSL side is in common/tls/wolf.h.
 * Conventions as in common/tls/cert.h: 0 / a count or -errno, out-parameters written on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/tls/cert.h"

#define MAX_RDNS 64
#define MAX_EXTENSIONS 64
#define MAX_SIG_OVERHEAD 1024 /* signature algorithm + signature + outer SEQUENCE */
#define KEY_DER_MAX 8192      /* a private key DER (RSA 4096 is ~2.4 KiB) */

/* A view into DER bytes (borrowed). */
struct der {
        const uint8_t *p;
        size_t n;
};

enum {
        T_BOOLEAN = 0x01,
        T_INTEGER = 0x02,
        T_BIT_STRING = 0x03,
        T_OCTET_STRING = 0x04,
        T_NULL = 0x05,
        T_OID = 0x06,
        T_UTF8 = 0x0c,
        T_PRINTABLE = 0x13,
        T_T61 = 0x14,
        T_IA5 = 0x16,
        T_UTCTIME = 0x17,
        T_GENTIME = 0x18,
        T_BMP = 0x1e,
        T_SEQ = 0x30,
        T_SET = 0x31,
        T_CTX0 = 0xa0,
        T_CTX3 = 0xa3,
};

#define DER_EQ(v, arr) tls_der_eq((v), (arr), sizeof(arr))

/* OID contents. */
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_O[] = {0x55, 0x04, 0x0a};
static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t OID_ECDSA_SHA384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t OID_RSA_SHA256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const uint8_t OID_EXT_REQ[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BC[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_EKU[] = {0x55, 0x1d, 0x25};
static const uint8_t OID_SERVER_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t OID_CLIENT_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

#define MAX_UNIX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

#define DERBUF(name) _cleanup_buf_ struct buf name = BUF_INIT(TLS_MAX_DER, 0)

/* Pointers into a certificate's DER, kept alongside the info. */
struct cert_view {
        struct der issuer;  /* whole Name TLV */
        struct der subject; /* whole Name TLV */
        struct der spki;    /* whole SubjectPublicKeyInfo TLV */
        struct der ski;     /* subjectKeyIdentifier value (n == 0 when absent) */
};

/* ---- PEM (pem.c), DER (der.c), names and keys in DER (name.c) ------------------------------ */

/* pem.c */
int tls_pem_write(struct buf *out, const char *label, const uint8_t *der, size_t len);
int tls_pem_next(const char *p, size_t n, size_t *pos, char label[TLS_MAX_PEM_LABEL + 1],
                 struct buf *der);
int tls_check_pem_input(const char *pem, size_t len);

/* der.c */
int tls_der_get(struct der *d, uint8_t *ret_tag, struct der *ret_val, struct der *ret_whole);
int tls_der_expect(struct der *d, uint8_t tag, struct der *ret_val, struct der *ret_whole);
bool tls_der_peek(const struct der *d, uint8_t tag);
bool tls_der_eq(struct der v, const uint8_t *p, size_t n);
int tls_parse_time(uint8_t tag, struct der v, int64_t *ret);
int tls_der_put(struct buf *b, uint8_t tag, const void *p, size_t n);
int tls_der_wrap(struct buf *b, uint8_t tag, const struct buf *inner);
int tls_der_put_oid(struct buf *b, const uint8_t *oid, size_t n);
int tls_der_put_time(struct buf *b, int64_t t);

/* name.c */
bool tls_text_valid(const uint8_t *p, size_t n, size_t max);
bool tls_dns_name_valid(const char *s);
bool tls_uri_valid(const char *s);
void tls_names_done(struct tls_names *n);
int tls_parse_san(struct der v, struct tls_names *names);
int tls_parse_name(struct der name, char **ret_cn, char **ret_o);
int tls_parse_spki(struct der spki_whole, enum tls_key_type *ret_type, struct der *ret_bits);

/* cert.c */
void tls_cert_info_clear(struct tls_cert_info *i);
int tls_parse_extensions(struct der exts, struct tls_cert_info *info, struct cert_view *v);
int tls_inspect_der(const uint8_t *der, size_t len, struct tls_cert_info *ret,
                    struct cert_view *ret_view);
int tls_decode_certs(const char *pem, size_t len, size_t max, struct tls_cert **ret_certs,
                     size_t *ret_n);

/* key.c */
int tls_spki_canonical(const uint8_t *der, size_t len, struct buf *out,
                       enum tls_key_type *ret_type);
int tls_key_matches_spki(const struct tls_key *k, struct der spki);
