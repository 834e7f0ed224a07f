/* SPDX-License-Identifier: Apache-2.0 */
/* tls/der.c: DER reader and writer, ASN.1 times; no wolfSSL. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */
#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/tls/internal.h"

/* ---- DER reader -------------------------------------------------------------------------- */

/* Reads one TLV (single-byte tags, definite minimal lengths). *ret_whole covers the TLV. */
int tls_der_get(struct der *d, uint8_t *ret_tag, struct der *ret_val, struct der *ret_whole) {
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

int tls_der_expect(struct der *d, uint8_t tag, struct der *ret_val, struct der *ret_whole) {
        uint8_t t;
        struct der save = *d;
        int r = tls_der_get(d, &t, ret_val, ret_whole);
        if (r < 0)
                return r;
        if (t != tag) {
                *d = save;
                return -EBADMSG;
        }
        return 0;
}

bool tls_der_peek(const struct der *d, uint8_t tag) {
        return d->n > 0 && d->p[0] == tag;
}

bool tls_der_eq(struct der v, const uint8_t *p, size_t n) {
        return v.n == n && memcmp(v.p, p, n) == 0;
}

/* ---- time -------------------------------------------------------------------------------- */

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
int tls_parse_time(uint8_t tag, struct der v, int64_t *ret) {
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

int tls_der_put(struct buf *b, uint8_t tag, const void *p, size_t n) {
        int r = der_put_hdr(b, tag, n);
        if (r < 0)
                return r;
        return n ? buf_append(b, p, n) : 0;
}

int tls_der_wrap(struct buf *b, uint8_t tag, const struct buf *inner) {
        return tls_der_put(b, tag, inner->data, inner->len);
}

int tls_der_put_oid(struct buf *b, const uint8_t *oid, size_t n) {
        return tls_der_put(b, T_OID, oid, n);
}

static void put_digits(char *s, unsigned v, size_t n) {
        while (n-- > 0) {
                s[n] = (char) ('0' + v % 10);
                v /= 10;
        }
}

/* t in [0, MAX_UNIX_TIME]: UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280). */
int tls_der_put_time(struct buf *b, int64_t t) {
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
        return tls_der_put(b, utc ? T_UTCTIME : T_GENTIME, s, o + 11);
}
