/* SPDX-License-Identifier: Apache-2.0 */
/* tls: see tls.h for the contract. The only module that includes wolfSSL. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls.h"

/* wolfSSL after our headers: its wolfmath.h defines MIN/MAX only when they are not defined.
 *
 * ABI: wolfSSL's configure detects __uint128_t into its private config.h (HAVE___UINT128_T),
 * which the library is compiled with, but the installed options.h does not carry it. Without it
 * the headers pick 32-bit big-number digits while the library uses 64-bit ones, and ecc_key /
 * RsaKey / sp_int come out smaller than the library writes (an overflow of every key struct we
 * allocate). Define it the way configure found it; tls_init() also checks the sizes at run time
 * (abi_check) so a mismatch fails with -EIO instead of corrupting memory. */
#if defined(__SIZEOF_INT128__) && !defined(HAVE___UINT128_T)
#define HAVE___UINT128_T 1
#endif
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#define MAX_RDNS 64
#define MAX_EXTENSIONS 64
#define MAX_SIG_OVERHEAD 1024 /* signature algorithm + signature + outer SEQUENCE */
#define KEY_DER_MAX 8192      /* a private key DER (RSA 4096 is ~2.4 KiB) */

/* ---- library init ------------------------------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -EIO;

/* The library initialises exactly sizeof(struct) bytes of its own view of a key struct: place a
 * key in a larger buffer filled with a pattern and check that nothing past our sizeof changed. */
static bool abi_check(void) {
        enum { SLACK = 512 };
        size_t n = MAX(sizeof(RsaKey), sizeof(ecc_key)) + SLACK;
        uint8_t *p = malloc(n);
        bool good = true;

        if (!p)
                return false;
        memset(p, 0xa5, n);
        if (wc_InitRsaKey_ex((RsaKey *) p, NULL, INVALID_DEVID) != 0)
                good = false;
        else
                (void) wc_FreeRsaKey((RsaKey *) p);
        for (size_t i = sizeof(RsaKey); good && i < n; i++)
                good = p[i] == 0xa5;
        memset(p, 0xa5, n);
        if (good && wc_ecc_init_ex((ecc_key *) p, NULL, INVALID_DEVID) != 0)
                good = false;
        else if (good)
                (void) wc_ecc_free((ecc_key *) p);
        for (size_t i = sizeof(ecc_key); good && i < n; i++)
                good = p[i] == 0xa5;
        free(p);
        return good;
}

static void do_init(void) {
        if (wolfSSL_Init() != WOLFSSL_SUCCESS || !abi_check())
                init_result = -EIO;
        else
                init_result = 0;
}

static int tls_init(void) {
        (void) pthread_once(&init_once, do_init);
        return init_result;
}

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

/* ---- buffers ----------------------------------------------------------------------------- */

/* Drops whatever was appended to b since `before` (wiping secure bytes). */
static void buf_rollback(struct buf *b, size_t before) {
        if (!b->data || b->len <= before)
                return;
        explicit_bzero(b->data + before, b->len - before);
        b->len = before;
        b->data[before] = '\0';
}

/* ---- PEM ----------------------------------------------------------------------------------- */

/* The DER of a PEM body (strict base64 of common/base64, line breaks skipped): not empty, at most
 * TLS_MAX_DER. out is left as it was on error. */
static int pem_body_decode(const char *src, size_t n, struct buf *out) {
        size_t before = out->len;
        int r = base64_decode(out, src, n, true);
        if (r < 0)
                return r;
        if (out->len == before || out->len - before > TLS_MAX_DER) {
                r = out->len == before ? -EBADMSG : -E2BIG;
                buf_rollback(out, before);
        }
        return r;
}

/* Appends a PEM block (64-column lines). On error out is left as it was. */
static int pem_write(struct buf *out, const char *label, const uint8_t *der, size_t len) {
        size_t before = out->len;
        int r;

        if (len == 0 || len > TLS_MAX_DER)
                return -EINVAL;
        r = buf_printf(out, "-----BEGIN %s-----\n", label);
        if (r < 0)
                return r;
        r = base64_encode_lines(out, der, len, 64);
        if (r < 0) {
                buf_rollback(out, before);
                return r;
        }
        r = buf_printf(out, "-----END %s-----\n", label);
        if (r < 0)
                buf_rollback(out, before);
        return r;
}

static bool at_line_start(const char *p, size_t pos) {
        return pos == 0 || p[pos - 1] == '\n';
}

/* Finds "needle" at a line start in p[from, n). Returns its offset or n. */
static size_t find_line(const char *p, size_t n, size_t from, const char *needle) {
        size_t m = strlen(needle);
        for (size_t i = from; i + m <= n; i++) {
                const char *hit = memmem(p + i, n - i, needle, m);
                if (!hit)
                        return n;
                i = (size_t) (hit - p);
                if (at_line_start(p, i))
                        return i;
        }
        return n;
}

static bool label_valid(const char *s, size_t n) {
        if (n == 0 || n > TLS_MAX_PEM_LABEL || s[0] == ' ' || s[n - 1] == ' ')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == ' '))
                        return false;
        return true;
}

/* Reads "-----<word> LABEL-----" at p[pos]; the rest of the line must be blank. On success
 * *ret_label/len point into p and *ret_next is the offset after the line. */
static int pem_marker(const char *p, size_t n, size_t pos, const char *word, const char **ret_label,
                      size_t *ret_len, size_t *ret_next) {
        size_t wl = strlen(word);
        if (n - pos < 5 + wl + 1 || memcmp(p + pos, "-----", 5) != 0 ||
            memcmp(p + pos + 5, word, wl) != 0 || p[pos + 5 + wl] != ' ')
                return -EBADMSG;
        size_t s = pos + 5 + wl + 1, e = s;
        while (e < n && p[e] != '-' && p[e] != '\n' && e - s <= TLS_MAX_PEM_LABEL)
                e++;
        if (e + 5 > n || memcmp(p + e, "-----", 5) != 0 || !label_valid(p + s, e - s))
                return -EBADMSG;
        size_t i = e + 5;
        while (i < n && p[i] != '\n') {
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
                        return -EBADMSG;
                i++;
        }
        *ret_label = p + s;
        *ret_len = e - s;
        *ret_next = i < n ? i + 1 : n;
        return 0;
}

/*
 * Reads the next PEM block from p[*pos, n). Text outside blocks is ignored. The label is copied
 * into label[] (NUL-terminated) and the DER appended to der. Returns 1 for a block, 0 when no
 * block is left, -EBADMSG for a broken block (bad marker, missing or different END, bad
 * base64), -ENOTSUP for RFC 1421 headers (encrypted keys), -E2BIG.
 */
static int pem_next(const char *p, size_t n, size_t *pos, char label[TLS_MAX_PEM_LABEL + 1],
                    struct buf *der) {
        const char *l, *el;
        size_t ll, ell, body, endpos, next;
        int r;

        size_t begin = find_line(p, n, *pos, "-----BEGIN ");
        if (begin >= n) {
                *pos = n;
                return 0;
        }
        r = pem_marker(p, n, begin, "BEGIN", &l, &ll, &body);
        if (r < 0)
                return r;
        endpos = find_line(p, n, body, "-----END ");
        if (endpos >= n)
                return -EBADMSG; /* truncated */
        /* A BEGIN inside the body means the previous block was not closed. */
        if (find_line(p, endpos, body, "-----BEGIN ") < endpos)
                return -EBADMSG;
        r = pem_marker(p, n, endpos, "END", &el, &ell, &next);
        if (r < 0)
                return r;
        if (ll != ell || memcmp(l, el, ll) != 0)
                return -EBADMSG;
        if (memchr(p + body, ':', endpos - body))
                return -ENOTSUP; /* "Proc-Type: 4,ENCRYPTED" and friends */
        r = pem_body_decode(p + body, endpos - body, der);
        if (r < 0)
                return r;
        memcpy(label, l, ll);
        label[ll] = '\0';
        *pos = next;
        return 1;
}

static int check_pem_input(const char *pem, size_t len) {
        if (!pem || len == 0)
                return -EINVAL;
        if (len > TLS_MAX_PEM)
                return -E2BIG;
        return 0;
}

/* ---- DER reader -------------------------------------------------------------------------- */

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

/* Reads one TLV (single-byte tags, definite minimal lengths). *ret_whole covers the TLV. */
static int der_get(struct der *d, uint8_t *ret_tag, struct der *ret_val, struct der *ret_whole) {
        size_t hdr = 2, len;

        if (d->n < 2)
                return -EBADMSG;
        uint8_t tag = d->p[0];
        if ((tag & 0x1f) == 0x1f)
                return -EBADMSG;
        uint8_t l = d->p[1];
        if (l < 0x80)
                len = l;
        else {
                size_t k = l & 0x7f;
                if (k == 0 || k > 3 || d->n < 2 + k || d->p[2] == 0)
                        return -EBADMSG; /* indefinite, huge, or not minimal */
                len = 0;
                for (size_t i = 0; i < k; i++)
                        len = len << 8 | d->p[2 + i];
                if (len < 0x80)
                        return -EBADMSG;
                hdr += k;
        }
        if (len > d->n - hdr)
                return -EBADMSG;
        if (ret_tag)
                *ret_tag = tag;
        if (ret_val)
                *ret_val = (struct der){d->p + hdr, len};
        if (ret_whole)
                *ret_whole = (struct der){d->p, hdr + len};
        d->p += hdr + len;
        d->n -= hdr + len;
        return 0;
}

static int der_expect(struct der *d, uint8_t tag, struct der *ret_val, struct der *ret_whole) {
        uint8_t t;
        struct der save = *d;
        int r = der_get(d, &t, ret_val, ret_whole);
        if (r < 0)
                return r;
        if (t != tag) {
                *d = save;
                return -EBADMSG;
        }
        return 0;
}

static bool der_peek(const struct der *d, uint8_t tag) {
        return d->n > 0 && d->p[0] == tag;
}

static bool der_eq(struct der v, const uint8_t *p, size_t n) {
        return v.n == n && memcmp(v.p, p, n) == 0;
}
#define DER_EQ(v, arr) der_eq((v), (arr), sizeof(arr))

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

/* ---- time -------------------------------------------------------------------------------- */

#define MAX_UNIX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d) {
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned) (z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t y = (int64_t) yoe + era * 400;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        unsigned d = doy - (153 * mp + 2) / 5 + 1;
        unsigned m = mp < 10 ? mp + 3 : mp - 9;
        *ret_y = y + (m <= 2);
        *ret_m = m;
        *ret_d = d;
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const uint8_t *p, size_t n, unsigned *ret) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (unsigned) (p[i] - '0');
        }
        *ret = v;
        return 0;
}

/* UTCTime "YYMMDDHHMMSSZ" / GeneralizedTime "YYYYMMDDHHMMSSZ" (the DER forms). */
static int parse_time(uint8_t tag, struct der v, int64_t *ret) {
        static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        unsigned y, mo, d, h, mi, s;
        size_t yl;

        if (tag == T_UTCTIME && v.n == 13)
                yl = 2;
        else if (tag == T_GENTIME && v.n == 15)
                yl = 4;
        else
                return -EBADMSG;
        if (v.p[v.n - 1] != 'Z' || digits(v.p, yl, &y) < 0 || digits(v.p + yl, 2, &mo) < 0 ||
            digits(v.p + yl + 2, 2, &d) < 0 || digits(v.p + yl + 4, 2, &h) < 0 ||
            digits(v.p + yl + 6, 2, &mi) < 0 || digits(v.p + yl + 8, 2, &s) < 0)
                return -EBADMSG;
        if (yl == 2)
                y += y < 50 ? 2000 : 1900;
        if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
                return -EBADMSG;
        if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
                return -EBADMSG;
        *ret = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
        return 0;
}

/* ---- DER writer -------------------------------------------------------------------------- */

static int der_put_hdr(struct buf *b, uint8_t tag, size_t len) {
        uint8_t h[5];
        size_t n = 0;
        h[n++] = tag;
        if (len < 0x80)
                h[n++] = (uint8_t) len;
        else if (len <= 0xff) {
                h[n++] = 0x81;
                h[n++] = (uint8_t) len;
        } else if (len <= 0xffff) {
                h[n++] = 0x82;
                h[n++] = (uint8_t) (len >> 8);
                h[n++] = (uint8_t) len;
        } else if (len <= 0xffffff) {
                h[n++] = 0x83;
                h[n++] = (uint8_t) (len >> 16);
                h[n++] = (uint8_t) (len >> 8);
                h[n++] = (uint8_t) len;
        } else
                return -E2BIG;
        return buf_append(b, h, n);
}

static int der_put(struct buf *b, uint8_t tag, const void *p, size_t n) {
        int r = der_put_hdr(b, tag, n);
        if (r < 0)
                return r;
        return n ? buf_append(b, p, n) : 0;
}

static int der_wrap(struct buf *b, uint8_t tag, const struct buf *inner) {
        return der_put(b, tag, inner->data, inner->len);
}

#define DERBUF(name) _cleanup_buf_ struct buf name = BUF_INIT(TLS_MAX_DER, 0)

static int der_put_oid(struct buf *b, const uint8_t *oid, size_t n) {
        return der_put(b, T_OID, oid, n);
}

static void put_digits(char *s, unsigned v, size_t n) {
        while (n-- > 0) {
                s[n] = (char) ('0' + v % 10);
                v /= 10;
        }
}

/* t in [0, MAX_UNIX_TIME]: UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280). */
static int der_put_time(struct buf *b, int64_t t) {
        int64_t y;
        unsigned m, d;
        char s[15];
        size_t o = 0;

        civil_from_days(t / 86400, &y, &m, &d);
        unsigned rem = (unsigned) (t % 86400);
        bool utc = y >= 1950 && y < 2050;
        put_digits(s, (unsigned) (utc ? y % 100 : y), utc ? 2 : 4);
        o = utc ? 2 : 4;
        put_digits(s + o, m, 2);
        put_digits(s + o + 2, d, 2);
        put_digits(s + o + 4, rem / 3600, 2);
        put_digits(s + o + 6, rem / 60 % 60, 2);
        put_digits(s + o + 8, rem % 60, 2);
        s[o + 10] = 'Z';
        return der_put(b, utc ? T_UTCTIME : T_GENTIME, s, o + 11);
}

/* ---- names and SANs ---------------------------------------------------------------------- */

static bool text_valid(const uint8_t *p, size_t n, size_t max) {
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return false;
        return true;
}

static int dup_text(struct der v, size_t max, char **ret) {
        if (!text_valid(v.p, v.n, max))
                return v.n > max ? -E2BIG : -EBADMSG;
        char *s = strndup((const char *) v.p, v.n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool dns_name_valid(const char *s) {
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

static bool uri_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > TLS_MAX_URI || !strchr(s, ':'))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

static void names_done(struct tls_names *n) {
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
static int parse_san(struct der v, struct tls_names *names) {
        struct der seq;
        int r;

        r = der_expect(&v, T_SEQ, &seq, NULL);
        if (r < 0 || v.n != 0 || seq.n == 0)
                return -EBADMSG;
        while (seq.n > 0) {
                uint8_t tag;
                struct der gn;
                char *s = NULL;
                r = der_get(&seq, &tag, &gn, NULL);
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
static int parse_name(struct der name, char **ret_cn, char **ret_o) {
        _cleanup_free_ char *cn = NULL, *o = NULL;
        unsigned rdns = 0;
        int r;

        while (name.n > 0) {
                struct der set;
                r = der_expect(&name, T_SET, &set, NULL);
                if (r < 0)
                        return r;
                if (++rdns > MAX_RDNS)
                        return -E2BIG;
                if (set.n == 0)
                        return -EBADMSG;
                while (set.n > 0) {
                        struct der atv, oid, val;
                        uint8_t tag;
                        r = der_expect(&set, T_SEQ, &atv, NULL);
                        if (r < 0)
                                return r;
                        r = der_expect(&atv, T_OID, &oid, NULL);
                        if (r < 0)
                                return r;
                        r = der_get(&atv, &tag, &val, NULL);
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
static int parse_spki(struct der spki_whole, enum tls_key_type *ret_type, struct der *ret_bits) {
        struct der d = spki_whole, spki, alg, oid, bits;
        int r;

        r = der_expect(&d, T_SEQ, &spki, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        r = der_expect(&spki, T_SEQ, &alg, NULL);
        if (r < 0)
                return r;
        r = der_expect(&alg, T_OID, &oid, NULL);
        if (r < 0)
                return r;
        r = der_expect(&spki, T_BIT_STRING, &bits, NULL);
        if (r < 0 || spki.n != 0 || bits.n < 2 || bits.p[0] != 0)
                return -EBADMSG;
        enum tls_key_type t = TLS_KEY_OTHER;
        if (DER_EQ(oid, OID_EC_PUBLIC_KEY)) {
                struct der curve;
                if (der_expect(&alg, T_OID, &curve, NULL) == 0 && alg.n == 0) {
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

/* ---- certificate / CSR reader ------------------------------------------------------------ */

/* Pointers into a certificate's DER, kept alongside the info. */
struct cert_view {
        struct der issuer;  /* whole Name TLV */
        struct der subject; /* whole Name TLV */
        struct der spki;    /* whole SubjectPublicKeyInfo TLV */
        struct der ski;     /* subjectKeyIdentifier value (n == 0 when absent) */
};

/* wolfSSL's own parser as a gate: the bytes must satisfy it too. */
static int wolf_parse(const uint8_t *der, size_t len, int type, int verify, void *cm) {
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

static void cert_info_clear(struct tls_cert_info *i) {
        free(i->subject_cn);
        free(i->subject_o);
        free(i->issuer_cn);
        names_done(&i->san);
        *i = (struct tls_cert_info){};
}

void tls_cert_info_done(struct tls_cert_info *i) {
        if (i)
                cert_info_clear(i);
}

static int parse_extensions(struct der exts, struct tls_cert_info *info, struct cert_view *v) {
        struct der seq, seen[MAX_EXTENSIONS];
        size_t n_seen = 0;
        int r;

        r = der_expect(&exts, T_SEQ, &seq, NULL);
        if (r < 0 || exts.n != 0 || seq.n == 0)
                return -EBADMSG;
        while (seq.n > 0) {
                struct der ext, oid, crit, val;
                bool critical = false;
                r = der_expect(&seq, T_SEQ, &ext, NULL);
                if (r < 0)
                        return r;
                r = der_expect(&ext, T_OID, &oid, NULL);
                if (r < 0)
                        return r;
                if (der_peek(&ext, T_BOOLEAN)) {
                        r = der_expect(&ext, T_BOOLEAN, &crit, NULL);
                        if (r < 0 || crit.n != 1 || (crit.p[0] != 0 && crit.p[0] != 0xff))
                                return -EBADMSG;
                        critical = crit.p[0] != 0;
                }
                r = der_expect(&ext, T_OCTET_STRING, &val, NULL);
                if (r < 0 || ext.n != 0)
                        return -EBADMSG;
                if (n_seen >= MAX_EXTENSIONS)
                        return -E2BIG;
                for (size_t i = 0; i < n_seen; i++)
                        if (der_eq(seen[i], oid.p, oid.n))
                                return -EBADMSG; /* duplicate extension */
                seen[n_seen++] = oid;
                (void) critical;

                if (DER_EQ(oid, OID_BC)) {
                        struct der bc;
                        r = der_expect(&val, T_SEQ, &bc, NULL);
                        if (r < 0 || val.n != 0)
                                return -EBADMSG;
                        if (der_peek(&bc, T_BOOLEAN)) {
                                struct der b;
                                r = der_expect(&bc, T_BOOLEAN, &b, NULL);
                                if (r < 0 || b.n != 1)
                                        return -EBADMSG;
                                info->is_ca = b.p[0] != 0;
                        }
                        if (der_peek(&bc, T_INTEGER)) {
                                struct der pl;
                                r = der_expect(&bc, T_INTEGER, &pl, NULL);
                                if (r < 0 || pl.n < 1 || pl.n > 2 || (pl.p[0] & 0x80))
                                        return -EBADMSG;
                                info->path_len = pl.n == 1 ? pl.p[0] : pl.p[0] << 8 | pl.p[1];
                        }
                        if (bc.n != 0)
                                return -EBADMSG;
                } else if (DER_EQ(oid, OID_KU)) {
                        struct der bits;
                        r = der_expect(&val, T_BIT_STRING, &bits, NULL);
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
                        r = der_expect(&val, T_SEQ, &list, NULL);
                        if (r < 0 || val.n != 0 || list.n == 0)
                                return -EBADMSG;
                        while (list.n > 0) {
                                struct der p;
                                r = der_expect(&list, T_OID, &p, NULL);
                                if (r < 0)
                                        return r;
                                if (DER_EQ(p, OID_SERVER_AUTH))
                                        info->ext_key_usage |= TLS_USAGE_SERVER;
                                else if (DER_EQ(p, OID_CLIENT_AUTH))
                                        info->ext_key_usage |= TLS_USAGE_CLIENT;
                        }
                        info->has_ext_key_usage = true;
                } else if (DER_EQ(oid, OID_SAN)) {
                        r = parse_san(val, &info->san);
                        if (r < 0)
                                return r;
                } else if (DER_EQ(oid, OID_SKI)) {
                        struct der ski;
                        r = der_expect(&val, T_OCTET_STRING, &ski, NULL);
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
        r = der_expect(&d, T_SEQ, &cert, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        r = der_expect(&cert, T_SEQ, &tbs, NULL);
        if (r < 0)
                return r;
        r = der_expect(&cert, T_SEQ, &alg, NULL);
        if (r < 0)
                return r;
        r = der_expect(&cert, T_BIT_STRING, &tmp, NULL);
        if (r < 0 || cert.n != 0)
                return -EBADMSG;

        if (der_peek(&tbs, T_CTX0)) {
                struct der ver, vi;
                r = der_expect(&tbs, T_CTX0, &ver, NULL);
                if (r < 0)
                        return r;
                r = der_expect(&ver, T_INTEGER, &vi, NULL);
                if (r < 0 || ver.n != 0 || vi.n != 1 || vi.p[0] > 2)
                        return -EBADMSG;
        }
        r = der_expect(&tbs, T_INTEGER, &serial, NULL);
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

        r = der_expect(&tbs, T_SEQ, &tmp, NULL); /* signature algorithm */
        if (r < 0)
                return r;
        struct der issuer, subject;
        r = der_expect(&tbs, T_SEQ, &issuer, &v->issuer);
        if (r < 0)
                return r;
        r = der_expect(&tbs, T_SEQ, &validity, NULL);
        if (r < 0)
                return r;
        r = der_expect(&tbs, T_SEQ, &subject, &v->subject);
        if (r < 0)
                return r;
        r = der_expect(&tbs, T_SEQ, NULL, &v->spki);
        if (r < 0)
                return r;

        struct der t;
        r = der_get(&validity, &tag, &t, NULL);
        if (r < 0 || parse_time(tag, t, &info->not_before) < 0)
                return -EBADMSG;
        r = der_get(&validity, &tag, &t, NULL);
        if (r < 0 || parse_time(tag, t, &info->not_after) < 0 || validity.n != 0)
                return -EBADMSG;

        char *unused_o = NULL;
        r = parse_name(issuer, &info->issuer_cn, &unused_o);
        free(unused_o);
        if (r < 0)
                return r;
        r = parse_name(subject, &info->subject_cn, &info->subject_o);
        if (r < 0)
                return r;
        info->self_issued = der_eq(v->issuer, v->subject.p, v->subject.n);

        r = parse_spki(v->spki, &info->key_type, NULL);
        if (r < 0)
                return r;

        /* issuerUniqueID [1], subjectUniqueID [2] (IMPLICIT BIT STRINGs), extensions [3] */
        if (tbs.n > 0 && tbs.p[0] == 0x81)
                if ((r = der_get(&tbs, NULL, NULL, NULL)) < 0)
                        return r;
        if (tbs.n > 0 && tbs.p[0] == 0x82)
                if ((r = der_get(&tbs, NULL, NULL, NULL)) < 0)
                        return r;
        if (der_peek(&tbs, T_CTX3)) {
                struct der exts;
                r = der_expect(&tbs, T_CTX3, &exts, NULL);
                if (r < 0)
                        return r;
                r = parse_extensions(exts, info, v);
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

static int inspect(const uint8_t *der, size_t len, struct tls_cert_info *ret,
                   struct cert_view *ret_view) {
        struct tls_cert_info info = {};
        struct cert_view view;
        int r;

        r = tls_init();
        if (r < 0)
                return r;
        if (len > TLS_MAX_DER)
                return -E2BIG;
        r = wolf_parse(der, len, CERT_TYPE, NO_VERIFY, NULL);
        if (r == -ENOMEM || r == MEMORY_E)
                return -ENOMEM;
        if (r != 0 && r != ASN_CRIT_EXT_E) /* unknown critical extensions: verification fails */
                return -EBADMSG;
        r = parse_cert(der, len, &info, &view);
        if (r < 0) {
                cert_info_clear(&info);
                return r;
        }
        if (ret)
                *ret = info;
        else
                cert_info_clear(&info);
        if (ret_view)
                *ret_view = view;
        return 0;
}

int tls_cert_inspect(const struct tls_cert *c, struct tls_cert_info *ret) {
        if (!c || !c->der || !ret)
                return -EINVAL;
        return inspect(c->der, c->len, ret, NULL);
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
static int decode_certs(const char *pem, size_t len, size_t max, struct tls_cert **ret_certs,
                        size_t *ret_n) {
        struct tls_cert *certs = NULL;
        size_t n = 0, pos = 0;
        char label[TLS_MAX_PEM_LABEL + 1];
        int r;

        r = check_pem_input(pem, len);
        if (r < 0)
                return r;
        certs = calloc(max, sizeof(*certs));
        if (!certs)
                return -ENOMEM;
        for (;;) {
                DERBUF(der);
                r = pem_next(pem, len, &pos, label, &der);
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
                r = inspect((const uint8_t *) der.data, der.len, NULL, NULL);
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
        r = decode_certs(pem, len, 1, &certs, &n);
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
        int r = decode_certs(pem, len, TLS_MAX_BUNDLE_CERTS, ret_certs, ret_n);
        return r == -ETOOMANYREFS ? -E2BIG : r;
}

int tls_cert_encode_pem(const struct tls_cert *c, struct buf *out) {
        if (!c || !c->der || c->len == 0 || !out)
                return -EINVAL;
        return pem_write(out, "CERTIFICATE", c->der, c->len);
}

/* ---- keys -------------------------------------------------------------------------------- */

struct tls_key {
        enum tls_key_type type;
        union {
                ecc_key ecc;
                RsaKey rsa;
        } u;
};

static int key_alloc(struct tls_key **ret) {
        struct tls_key *k;
        int r = secmem_alloc(sizeof(*k), (void **) &k);
        if (r < 0)
                return r;
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
static void *key_ptr(const struct tls_key *k) {
        return k->type == TLS_KEY_RSA ? (void *) &k->u.rsa : (void *) &k->u.ecc;
}

static int key_wc_type(const struct tls_key *k) {
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
        r = key_alloc(&k);
        if (r < 0)
                return r;
        if (wc_ecc_init_ex(&k->u.ecc, NULL, INVALID_DEVID) != 0) {
                secmem_free(TAKE_PTR(k));
                return -EIO;
        }
        k->type = TLS_KEY_EC_P256;
        if (wc_InitRng(&rng) != 0)
                return -EIO;
        r = wc_ecc_make_key_ex(&rng, 32, &k->u.ecc, ECC_SECP256R1);
        (void) wc_FreeRng(&rng);
        if (r != 0)
                return r == MEMORY_E ? -ENOMEM : -EIO;
        *ret = TAKE_PTR(k);
        return 0;
}

/* Imports an EC key from SEC1 or PKCS#8 DER. */
static int key_import_ecc(const uint8_t *der, size_t len, struct tls_key **ret) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        word32 idx = 0;
        int r;

        r = key_alloc(&k);
        if (r < 0)
                return r;
        if (wc_ecc_init_ex(&k->u.ecc, NULL, INVALID_DEVID) != 0) {
                secmem_free(TAKE_PTR(k));
                return -EIO;
        }
        k->type = TLS_KEY_EC_P256; /* so that tls_key_free() frees the ecc_key */
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
        if (der_expect(&d, T_SEQ, &seq, NULL) < 0 || d.n != 0 ||
            der_expect(&seq, T_INTEGER, &ver, NULL) < 0 ||
            der_expect(&seq, T_SEQ, &alg, NULL) < 0 || der_expect(&alg, T_OID, &oid, NULL) < 0)
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
        r = check_pem_input(pem, len);
        if (r < 0)
                return r;
        r = tls_init();
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_buf_ struct buf der = BUF_INIT(TLS_MAX_DER, BUF_SECURE);
                r = pem_next(pem, len, &pos, label, &der);
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
                n = wc_RsaKeyToDer((RsaKey *) key_ptr(k), der, KEY_DER_MAX);
        else
                n = wc_EccKeyToDer((ecc_key *) key_ptr(k), der, KEY_DER_MAX);
        if (n <= 0)
                r = -EIO;
        else
                r = pem_write(out, k->type == TLS_KEY_RSA ? "RSA PRIVATE KEY" : "EC PRIVATE KEY",
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
                n = wc_RsaKeyToPublicDer((RsaKey *) key_ptr(k), der, sizeof(der));
        else
                n = wc_EccPublicKeyToDer((ecc_key *) key_ptr(k), der, sizeof(der), 1);
        if (n <= 0)
                return -EIO;
        return buf_append(out, der, (size_t) n);
}

int tls_key_public_pem(const struct tls_key *k, struct buf *out) {
        DERBUF(der);
        int r = tls_key_public_der(k, &der);
        if (r < 0)
                return r;
        return pem_write(out, "PUBLIC KEY", (const uint8_t *) der.data, der.len);
}

/* Decodes SubjectPublicKeyInfo with wolfCrypt, checks the key, appends the canonical DER. */
static int spki_canonical(const uint8_t *der, size_t len, struct buf *out,
                          enum tls_key_type *ret_type) {
        enum tls_key_type t;
        uint8_t canon[2048];
        word32 idx = 0;
        int r, n = -1;

        r = parse_spki((struct der){der, len}, &t, NULL);
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
        r = check_pem_input(pem, len);
        if (r < 0)
                return r;
        r = tls_init();
        if (r < 0)
                return r;
        r = pem_next(pem, len, &pos, label, &der);
        if (r < 0)
                return r == -ENOTSUP ? -EBADMSG : r;
        if (r == 0 || strcmp(label, "PUBLIC KEY") != 0)
                return -EBADMSG;
        DERBUF(extra);
        char l2[TLS_MAX_PEM_LABEL + 1];
        if (pem_next(pem, len, &pos, l2, &extra) != 0)
                return -EBADMSG;
        return spki_canonical((const uint8_t *) der.data, der.len, out, NULL);
}

static int key_matches_spki(const struct tls_key *k, struct der spki) {
        DERBUF(mine);
        int r = tls_key_public_der(k, &mine);
        if (r < 0)
                return r;
        /* Compare canonical encodings (the certificate's may carry explicit parameters). */
        DERBUF(theirs);
        r = spki_canonical(spki.p, spki.n, &theirs, NULL);
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
        r = inspect(der, len, NULL, &v);
        if (r < 0)
                return r;
        return key_matches_spki(k, v.spki);
}

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
                if ((r = der_put_oid(&atv, attrs[i].oid, attrs[i].n)) < 0 ||
                    (r = der_put(&atv, T_UTF8, attrs[i].v, strlen(attrs[i].v))) < 0 ||
                    (r = der_wrap(&set, T_SEQ, &atv)) < 0 || (r = der_wrap(&rdns, T_SET, &set)) < 0)
                        return r;
        }
        return der_wrap(b, T_SEQ, &rdns);
}

static bool subject_text_valid(const char *s, bool required) {
        if (!s)
                return !required;
        return text_valid((const uint8_t *) s, strlen(s), 64);
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
                if (!san->dns[i] || !dns_name_valid(san->dns[i]))
                        return -EINVAL;
                if ((r = der_put(&names, 0x82, san->dns[i], strlen(san->dns[i]))) < 0)
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
                if ((r = der_put(&names, 0x87, a, n)) < 0)
                        return r;
        }
        for (size_t i = 0; i < san->n_uri; i++) {
                if (!san->uri[i] || !uri_valid(san->uri[i]))
                        return -EINVAL;
                if ((r = der_put(&names, 0x86, san->uri[i], strlen(san->uri[i]))) < 0)
                        return r;
        }
        if (names.len == 0)
                return 0;
        *ret_any = true;
        return der_wrap(b, T_SEQ, &names);
}

static int put_ext(struct buf *exts, const uint8_t *oid, size_t oidlen, bool critical,
                   const struct buf *value) {
        static const uint8_t crit[] = {T_BOOLEAN, 1, 0xff};
        DERBUF(ext);
        int r;
        if ((r = der_put_oid(&ext, oid, oidlen)) < 0 ||
            (critical && (r = buf_append(&ext, crit, sizeof(crit))) < 0) ||
            (r = der_wrap(&ext, T_OCTET_STRING, value)) < 0)
                return r;
        return der_wrap(exts, T_SEQ, &ext);
}

static int put_key_usage(struct buf *exts, unsigned ku_byte) {
        DERBUF(v);
        uint8_t bits[2] = {(uint8_t) __builtin_ctz(ku_byte), (uint8_t) ku_byte};
        int r = der_put(&v, T_BIT_STRING, bits, sizeof(bits));
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
                        if ((r = der_put(&seq, T_INTEGER, two ? pl : pl + 1, two ? 2 : 1)) < 0)
                                return r;
                }
        }
        if ((r = der_wrap(&v, T_SEQ, &seq)) < 0)
                return r;
        return put_ext(exts, OID_BC, sizeof(OID_BC), true, &v);
}

static int put_key_ids(struct buf *exts, struct der ski, struct der aki) {
        int r;
        if (ski.n) {
                DERBUF(v);
                if ((r = der_put(&v, T_OCTET_STRING, ski.p, ski.n)) < 0 ||
                    (r = put_ext(exts, OID_SKI, sizeof(OID_SKI), false, &v)) < 0)
                        return r;
        }
        if (aki.n) {
                DERBUF(inner);
                DERBUF(v);
                if ((r = der_put(&inner, 0x80, aki.p, aki.n)) < 0 ||
                    (r = der_wrap(&v, T_SEQ, &inner)) < 0 ||
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
                r = der_put_oid(&inner, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256));
                break;
        case TLS_KEY_EC_P384:
                *ret_ctc = CTC_SHA384wECDSA;
                r = der_put_oid(&inner, OID_ECDSA_SHA384, sizeof(OID_ECDSA_SHA384));
                break;
        case TLS_KEY_RSA:
                *ret_ctc = CTC_SHA256wRSA;
                r = der_put_oid(&inner, OID_RSA_SHA256, sizeof(OID_RSA_SHA256));
                if (r == 0)
                        r = der_put(&inner, T_NULL, NULL, 0);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return der_wrap(alg, T_SEQ, &inner);
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
        n = wc_SignCert_ex((int) tbs->len, ctc, out, (word32) cap, key_wc_type(k), key_ptr(k),
                           &rng);
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
        int r = parse_spki((struct der){spki, len}, &t, &bits);
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
        return der_put(b, T_INTEGER, sign ? s : s + 1, sign ? 17 : 16);
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
        if ((r = der_put_time(&validity, p->not_before - (int64_t) p->backdate)) < 0 ||
            (r = der_put_time(&validity, p->not_after)) < 0 ||
            (r = der_wrap(tbs, T_SEQ, &validity)) < 0 ||
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
                if ((r = der_wrap(&seq, T_SEQ, exts)) < 0 || (r = der_wrap(body, T_CTX3, &seq)) < 0)
                        return r;
        }
        if ((r = der_wrap(&tbs, T_SEQ, body)) < 0)
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
        r = inspect(ca->der, ca->len, &ca_info, &ca_view);
        if (r < 0)
                return r;
        if (!ca_info.is_ca ||
            (ca_info.has_key_usage && !(ca_info.key_usage & TLS_KU_KEY_CERT_SIGN)))
                return -EINVAL;
        r = key_matches_spki(ca_key, ca_view.spki);
        if (r < 0)
                return r;
        if (r == 0)
                return -EINVAL;
        r = spki_canonical(spki, spki_len, &subject_spki, NULL);
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
                r = der_put_oid(&eku_list, OID_SERVER_AUTH, sizeof(OID_SERVER_AUTH));
        if (r == 0 && (p->usage & TLS_USAGE_CLIENT))
                r = der_put_oid(&eku_list, OID_CLIENT_AUTH, sizeof(OID_CLIENT_AUTH));
        if (r < 0)
                return r;
        if ((r = put_basic_constraints(&exts, false, -1)) < 0 ||
            (r = put_key_usage(&exts, p->key_encipherment ? 0xa0 : 0x80)) < 0 ||
            (r = der_wrap(&eku, T_SEQ, &eku_list)) < 0 ||
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
                    (r = der_wrap(&extseq, T_SEQ, &exts)) < 0 ||
                    (r = der_wrap(&set, T_SET, &extseq)) < 0 ||
                    (r = der_put_oid(&attr, OID_EXT_REQ, sizeof(OID_EXT_REQ))) < 0 ||
                    (r = buf_append(&attr, set.data, set.len)) < 0 ||
                    (r = der_wrap(&attrs, T_SEQ, &attr)) < 0)
                        return r;
        }
        if ((r = der_wrap(&body, T_CTX0, &attrs)) < 0 || (r = der_wrap(&tbs, T_SEQ, &body)) < 0 ||
            (r = sign_tbs(k, ctc, &tbs, &csr)) < 0)
                return r;
        return pem_write(out, "CERTIFICATE REQUEST", csr.der, csr.len);
}

void tls_csr_info_done(struct tls_csr_info *i) {
        if (!i)
                return;
        free(i->subject_cn);
        free(i->subject_o);
        names_done(&i->san);
        free(i->spki);
        *i = (struct tls_csr_info){};
}

static int parse_csr(const uint8_t *der, size_t len, struct tls_csr_info *info) {
        struct der d = {der, len}, csr, cri, ver, subject, spki, attrs, tmp;
        int r;

        r = der_expect(&d, T_SEQ, &csr, NULL);
        if (r < 0 || d.n != 0)
                return -EBADMSG;
        if ((r = der_expect(&csr, T_SEQ, &cri, NULL)) < 0 ||
            (r = der_expect(&csr, T_SEQ, &tmp, NULL)) < 0 ||
            (r = der_expect(&csr, T_BIT_STRING, &tmp, NULL)) < 0 || csr.n != 0)
                return -EBADMSG;
        if ((r = der_expect(&cri, T_INTEGER, &ver, NULL)) < 0 || ver.n != 1 || ver.p[0] != 0 ||
            (r = der_expect(&cri, T_SEQ, &subject, NULL)) < 0 ||
            (r = der_expect(&cri, T_SEQ, NULL, &spki)) < 0 ||
            (r = der_expect(&cri, T_CTX0, &attrs, NULL)) < 0 || cri.n != 0)
                return -EBADMSG;
        r = parse_name(subject, &info->subject_cn, &info->subject_o);
        if (r < 0)
                return r;
        r = parse_spki(spki, &info->key_type, NULL);
        if (r < 0)
                return r;
        bool seen_ext_req = false;
        unsigned n_attrs = 0;
        while (attrs.n > 0) {
                struct der attr, oid, set;
                if (++n_attrs > MAX_EXTENSIONS)
                        return -E2BIG;
                if ((r = der_expect(&attrs, T_SEQ, &attr, NULL)) < 0 ||
                    (r = der_expect(&attr, T_OID, &oid, NULL)) < 0 ||
                    (r = der_expect(&attr, T_SET, &set, NULL)) < 0 || attr.n != 0)
                        return -EBADMSG;
                if (!DER_EQ(oid, OID_EXT_REQ))
                        continue;
                if (seen_ext_req)
                        return -EBADMSG;
                seen_ext_req = true;
                struct der exts;
                if ((r = der_expect(&set, T_SEQ, NULL, &exts)) < 0 || set.n != 0)
                        return -EBADMSG;
                struct tls_cert_info tmpinfo = {};
                struct cert_view v = {};
                r = parse_extensions(exts, &tmpinfo, &v);
                info->san = tmpinfo.san;
                tmpinfo.san = (struct tls_names){};
                cert_info_clear(&tmpinfo);
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
        r = check_pem_input(pem, len);
        if (r < 0)
                return r;
        r = tls_init();
        if (r < 0)
                return r;
        r = pem_next(pem, len, &pos, label, &der);
        if (r < 0)
                return r == -ENOTSUP ? -EBADMSG : r;
        if (r == 0 || (strcmp(label, "CERTIFICATE REQUEST") != 0 &&
                       strcmp(label, "NEW CERTIFICATE REQUEST") != 0))
                return -EBADMSG;
        DERBUF(extra);
        char l2[TLS_MAX_PEM_LABEL + 1];
        if (pem_next(pem, len, &pos, l2, &extra) != 0)
                return -EBADMSG;
        /* wolfSSL parses the request and checks its self-signature. */
        r = wolf_parse((const uint8_t *) der.data, der.len, CERTREQ_TYPE, VERIFY, NULL);
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

/* ---- verification ------------------------------------------------------------------------ */

static void ctx_freep(WOLFSSL_CTX **c) {
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
        _cleanup_(ctx_freep) WOLFSSL_CTX *ctx = NULL;
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
                        r = wolf_parse(chain[i].der, chain[i].len, CERT_TYPE, VERIFY_SKIP_DATE, cm);
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
        r = wolf_parse(chain[0].der, chain[0].len, CERT_TYPE, VERIFY_SKIP_DATE, cm);
        if (r == MEMORY_E)
                return -ENOMEM;
        return r == 0 ? 0 : -EPERM;
}

static void infos_free(struct tls_cert_info *infos, size_t n) {
        if (!infos)
                return;
        for (size_t i = 0; i < n; i++)
                cert_info_clear(&infos[i]);
        free(infos);
}

static int inspect_all(const struct tls_cert *certs, size_t n, struct tls_cert_info **ret) {
        struct tls_cert_info *infos = calloc(n, sizeof(*infos));
        if (!infos)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = certs[i].der ? inspect(certs[i].der, certs[i].len, &infos[i], NULL)
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

        r = decode_certs(ca_pem, ca_len, TLS_MAX_CA_CERTS, &anchors, &na);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = decode_certs(chain_pem, chain_len, TLS_MAX_BUNDLE_CERTS, &chain, &nc);
        if (r == -ETOOMANYREFS)
                r = -E2BIG;
        if (r == 0)
                r = tls_verify_certs(anchors, na, chain, nc, at, usage);
        tls_cert_array_free(anchors, na);
        tls_cert_array_free(chain, nc);
        return r;
}

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
        r = check_pem_input(pem, len);
        if (r < 0)
                return r;
        r = tls_init();
        if (r < 0)
                return r;
        for (;;) {
                DERBUF(der);
                r = pem_next(pem, len, &pos, label, &der);
                if (r < 0)
                        return r == -ENOTSUP ? -EBADMSG : r;
                if (r == 0)
                        break;
                if (++blocks > TLS_MAX_CA_CERTS)
                        return -E2BIG;
                if (strcmp(label, "CERTIFICATE") != 0)
                        continue;
                if (inspect((const uint8_t *) der.data, der.len, NULL, NULL) < 0)
                        continue;
                if (wolfSSL_CTX_load_verify_buffer((WOLFSSL_CTX *) ctx,
                                                   (const unsigned char *) der.data, (long) der.len,
                                                   WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS)
                        added++;
        }
        return added > 0 ? added : -EBADMSG;
}

/* Hands the chain (our canonical PEM re-encoding) and the key (DER in secmem) to wolfSSL. */
static int ctx_install(WOLFSSL_CTX *ctx, const struct tls_cert *certs, size_t n,
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
                dn = wc_RsaKeyToDer((RsaKey *) key_ptr(key), der, KEY_DER_MAX);
        else
                dn = wc_EccKeyToDer((ecc_key *) key_ptr(key), der, KEY_DER_MAX);
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
        r = decode_certs(cert_pem, cert_len, TLS_MAX_BUNDLE_CERTS, &certs, &n);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = inspect(certs[0].der, certs[0].len, NULL, &v);
        if (r == 0)
                r = key_matches_spki(key, v.spki);
        if (r == 0)
                r = -EBADMSG; /* the key is not the leaf's: leave the context untouched */
        else if (r > 0)
                r = ctx_install((WOLFSSL_CTX *) ctx, certs, n, key);
        tls_cert_array_free(certs, n);
        return r;
}

/* ---- TLS server ---------------------------------------------------------------------------- */

/* Forward-secret AEAD suites only; wolfSSL names. */
static const char server_ciphers[] =
        "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static char server_alpn[] = "http/1.1";

struct tls_server {
        pthread_mutex_t lock; /* guards ctx and generation */
        WOLFSSL_CTX *ctx;     /* current context; connections hold their own reference */
        uint64_t generation;
        enum tls_client_auth client_auth;
        char *client_ca_pem; /* kept to build the next context on a swap */
        size_t client_ca_len;
};

struct tls_conn {
        WOLFSSL *ssl;
        int fd;
        unsigned want;
        uint64_t generation;
        uint64_t bytes_in, bytes_out;
        char alpn[32];
};

/* wolfSSL I/O callbacks: recv()/send() on the connection's socket, MSG_NOSIGNAL so a peer that
 * went away is an error and not a SIGPIPE. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        struct tls_conn *c = ctx;
        ssize_t n = recv(c->fd, buf, (size_t) sz, 0);
        if (n > 0) {
                c->bytes_in += (uint64_t) n;
                return (int) n;
        }
        if (n == 0)
                return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WOLFSSL_CBIO_ERR_WANT_READ;
        if (errno == EINTR)
                return WOLFSSL_CBIO_ERR_ISR;
        if (errno == ECONNRESET)
                return WOLFSSL_CBIO_ERR_CONN_RST;
        return WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        struct tls_conn *c = ctx;
        ssize_t n = send(c->fd, buf, (size_t) sz, MSG_NOSIGNAL);
        if (n >= 0) {
                c->bytes_out += (uint64_t) n;
                return (int) n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WOLFSSL_CBIO_ERR_WANT_WRITE;
        if (errno == EINTR)
                return WOLFSSL_CBIO_ERR_ISR;
        if (errno == ECONNRESET)
                return WOLFSSL_CBIO_ERR_CONN_RST;
        if (errno == EPIPE)
                return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        return WOLFSSL_CBIO_ERR_GENERAL;
}

/* A complete server context for one certificate pair (nothing shared with the previous one). */
static int server_ctx_build(const struct tls_server *s, const char *cert_pem, size_t cert_len,
                            const char *key_pem, size_t key_len, WOLFSSL_CTX **ret) {
        _cleanup_(tls_key_freep) struct tls_key *key = NULL;
        _cleanup_(ctx_freep) WOLFSSL_CTX *ctx = NULL;
        struct tls_cert *certs = NULL;
        struct cert_view v;
        size_t n = 0;
        int r;

        if (!cert_pem || !key_pem || cert_len == 0 || key_len == 0)
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        r = tls_key_import_pem(key_pem, key_len, &key);
        if (r < 0)
                return r;
        r = decode_certs(cert_pem, cert_len, TLS_MAX_BUNDLE_CERTS, &certs, &n);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = inspect(certs[0].der, certs[0].len, NULL, &v);
        if (r == 0)
                r = key_matches_spki(key, v.spki);
        if (r == 0)
                r = -EBADMSG;
        if (r > 0) {
                ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
                r = ctx ? 0 : -ENOMEM;
        }
        if (r == 0 && wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
                r = -EIO;
        if (r == 0 && wolfSSL_CTX_set_cipher_list(ctx, server_ciphers) != WOLFSSL_SUCCESS)
                r = -EIO;
        if (r == 0)
                r = ctx_install(ctx, certs, n, key);
        tls_cert_array_free(certs, n);
        if (r < 0)
                return r;
        /* Every connection does a full handshake: no server-side session cache (and the build has
         * no session tickets), so a resumed session can never outlive a certificate swap. */
        (void) wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
        if (s->client_auth != TLS_CLIENT_AUTH_NONE) {
                r = tls_ctx_load_ca_pem(ctx, s->client_ca_pem, s->client_ca_len);
                if (r < 0)
                        return r;
                wolfSSL_CTX_set_verify(ctx,
                                       WOLFSSL_VERIFY_PEER |
                                               (s->client_auth == TLS_CLIENT_AUTH_REQUIRE
                                                        ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                        : 0),
                                       NULL);
        } else
                wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        wolfSSL_CTX_SetIORecv(ctx, io_recv);
        wolfSSL_CTX_SetIOSend(ctx, io_send);
        *ret = TAKE_PTR(ctx);
        return 0;
}

int tls_server_new(const struct tls_server_options *o, struct tls_server **ret) {
        struct tls_server *s;
        int r;

        if (!o || !ret)
                return -EINVAL;
        if (o->client_auth != TLS_CLIENT_AUTH_NONE && o->client_auth != TLS_CLIENT_AUTH_OPTIONAL &&
            o->client_auth != TLS_CLIENT_AUTH_REQUIRE)
                return -EINVAL;
        if (o->client_auth != TLS_CLIENT_AUTH_NONE && (!o->client_ca_pem || o->client_ca_len == 0))
                return -EINVAL;
        if (o->client_ca_len > TLS_MAX_PEM)
                return -E2BIG;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->client_auth = o->client_auth;
        if (s->client_auth != TLS_CLIENT_AUTH_NONE) {
                s->client_ca_pem = malloc(o->client_ca_len);
                if (!s->client_ca_pem) {
                        free(s);
                        return -ENOMEM;
                }
                memcpy(s->client_ca_pem, o->client_ca_pem, o->client_ca_len);
                s->client_ca_len = o->client_ca_len;
        }
        r = server_ctx_build(s, o->cert_pem, o->cert_len, o->key_pem, o->key_len, &s->ctx);
        if (r == 0 && pthread_mutex_init(&s->lock, NULL) != 0) {
                wolfSSL_CTX_free(s->ctx);
                r = -ENOMEM;
        }
        if (r < 0) {
                free(s->client_ca_pem);
                free(s);
                return r;
        }
        s->generation = 1;
        *ret = s;
        return 0;
}

struct tls_server *tls_server_free(struct tls_server *s) {
        if (!s)
                return NULL;
        if (s->ctx)
                wolfSSL_CTX_free(s->ctx); /* drops our reference; connections keep theirs */
        (void) pthread_mutex_destroy(&s->lock);
        free(s->client_ca_pem);
        free(s);
        return NULL;
}

int tls_server_set_cert_pem(struct tls_server *s, const char *cert_pem, size_t cert_len,
                            const char *key_pem, size_t key_len) {
        WOLFSSL_CTX *ctx = NULL, *old;
        uint64_t gen;
        int r;

        if (!s)
                return -EINVAL;
        r = server_ctx_build(s, cert_pem, cert_len, key_pem, key_len, &ctx);
        if (r < 0)
                return r;
        (void) pthread_mutex_lock(&s->lock);
        old = s->ctx;
        s->ctx = ctx;
        gen = ++s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        wolfSSL_CTX_free(old);
        return (int) MIN(gen, (uint64_t) INT32_MAX);
}

uint64_t tls_server_generation(struct tls_server *s) {
        uint64_t g;
        if (!s)
                return 0;
        (void) pthread_mutex_lock(&s->lock);
        g = s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        return g;
}

int tls_conn_new(struct tls_server *s, int fd, struct tls_conn **ret) {
        struct tls_conn *c;

        if (!s || fd < 0 || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = fd;
        /* wolfSSL_new() takes a reference on the context under the lock, so a concurrent swap
         * cannot free it underneath us; the connection keeps that context for its lifetime. */
        (void) pthread_mutex_lock(&s->lock);
        c->ssl = wolfSSL_new(s->ctx);
        c->generation = s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        if (!c->ssl) {
                free(c);
                return -ENOMEM;
        }
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
        if (wolfSSL_UseALPN(c->ssl, server_alpn, sizeof(server_alpn) - 1,
                            WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
                wolfSSL_free(c->ssl);
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

struct tls_conn *tls_conn_free(struct tls_conn *c) {
        if (!c)
                return NULL;
        wolfSSL_free(c->ssl);
        free(c);
        return NULL;
}

/* Maps the result of a wolfSSL I/O call (<= 0) to -EAGAIN (+ want bits), 0 for close_notify,
 * -ECONNRESET, -EPROTO. */
static int conn_error(struct tls_conn *c, int ret) {
        int e = wolfSSL_get_error(c->ssl, ret);
        c->want = 0;
        switch (e) {
        case WOLFSSL_ERROR_WANT_READ:
                c->want = TLS_WANT_READ;
                return -EAGAIN;
        case WOLFSSL_ERROR_WANT_WRITE:
                c->want = TLS_WANT_WRITE;
                return -EAGAIN;
        case WOLFSSL_ERROR_ZERO_RETURN:
                return 0;
        case SOCKET_PEER_CLOSED_E:
        case SOCKET_ERROR_E:
                return -ECONNRESET;
        case MEMORY_E:
                return -ENOMEM;
        default:
                return -EPROTO;
        }
}

int tls_conn_handshake(struct tls_conn *c) {
        int ret, r;

        if (!c)
                return -EINVAL;
        if (wolfSSL_is_init_finished(c->ssl))
                return 0;
        ret = wolfSSL_accept(c->ssl);
        if (ret == WOLFSSL_SUCCESS) {
                char *name = NULL;
                unsigned short len = 0;
                c->want = 0;
                if (wolfSSL_ALPN_GetProtocol(c->ssl, &name, &len) == WOLFSSL_SUCCESS && name &&
                    len < sizeof(c->alpn)) {
                        memcpy(c->alpn, name, len);
                        c->alpn[len] = '\0';
                }
                return 0;
        }
        r = conn_error(c, ret);
        return r == 0 ? -ECONNRESET : r;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t n) {
        int ret, r;

        if (!c || !buf || n == 0)
                return -EINVAL;
        r = tls_conn_handshake(c);
        if (r < 0)
                return r;
        ret = wolfSSL_read(c->ssl, buf, (int) MIN(n, (size_t) INT32_MAX));
        if (ret > 0) {
                c->want = 0;
                return ret;
        }
        return conn_error(c, ret);
}

size_t tls_conn_pending(struct tls_conn *c) {
        int n = c ? wolfSSL_pending(c->ssl) : 0;
        return n > 0 ? (size_t) n : 0;
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t n) {
        int ret, r;

        if (!c || !buf || n == 0)
                return -EINVAL;
        r = tls_conn_handshake(c);
        if (r < 0)
                return r;
        ret = wolfSSL_write(c->ssl, buf, (int) MIN(n, (size_t) 16384));
        if (ret > 0) {
                c->want = 0;
                return ret;
        }
        r = conn_error(c, ret);
        return r == 0 ? -ECONNRESET : r;
}

int tls_conn_shutdown(struct tls_conn *c) {
        int ret, r;

        if (!c)
                return -EINVAL;
        if (!wolfSSL_is_init_finished(c->ssl))
                return 0; /* nothing to close cleanly */
        ret = wolfSSL_shutdown(c->ssl);
        if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
                return 0;
        r = conn_error(c, ret);
        if (r == -EAGAIN)
                return r;
        return r == 0 ? 0 : (r == -EPROTO ? -EIO : r);
}

unsigned tls_conn_want(const struct tls_conn *c) {
        return c ? c->want : 0;
}

const char *tls_conn_version(struct tls_conn *c) {
        const char *v;
        if (!c || !wolfSSL_is_init_finished(c->ssl))
                return "";
        v = wolfSSL_get_version(c->ssl);
        return v ? v : "";
}

const char *tls_conn_alpn(struct tls_conn *c) {
        return c ? c->alpn : "";
}

uint64_t tls_conn_generation(const struct tls_conn *c) {
        return c ? c->generation : 0;
}

void tls_conn_bytes(const struct tls_conn *c, uint64_t *ret_in, uint64_t *ret_out) {
        if (ret_in)
                *ret_in = c ? c->bytes_in : 0;
        if (ret_out)
                *ret_out = c ? c->bytes_out : 0;
}

int tls_conn_peer_cert(struct tls_conn *c, struct tls_cert *ret) {
        WOLFSSL_X509 *x;
        const unsigned char *der;
        int len;
        uint8_t *copy;

        if (!c || !ret)
                return -EINVAL;
        if (!wolfSSL_is_init_finished(c->ssl))
                return -ENOENT;
        x = wolfSSL_get_peer_certificate(c->ssl);
        if (!x)
                return -ENOENT;
        der = wolfSSL_X509_get_der(x, &len);
        if (!der || len <= 0) {
                wolfSSL_X509_free(x);
                return -EIO;
        }
        copy = malloc((size_t) len);
        if (!copy) {
                wolfSSL_X509_free(x);
                return -ENOMEM;
        }
        memcpy(copy, der, (size_t) len);
        wolfSSL_X509_free(x);
        *ret = (struct tls_cert){.der = copy, .len = (size_t) len};
        return 0;
}
