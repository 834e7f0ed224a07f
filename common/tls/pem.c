/* SPDX-License-Identifier: Apache-2.0 */
/* tls/pem.c: PEM armour (strict RFC 7468, bounded); no wolfSSL. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */
#include <errno.h>
#include <string.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/tls/internal.h"

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
                buf_truncate(out, before);
        }
        return r;
}

/* Appends a PEM block (64-column lines). On error out is left as it was. */
int tls_pem_write(struct buf *out, const char *label, const uint8_t *der, size_t len) {
        size_t before = out->len;
        int r;

        if (len == 0 || len > TLS_MAX_DER)
                return -EINVAL;
        r = buf_printf(out, "-----BEGIN %s-----\n", label);
        if (r < 0)
                return r;
        r = base64_encode_lines(out, der, len, 64);
        if (r < 0) {
                buf_truncate(out, before);
                return r;
        }
        r = buf_printf(out, "-----END %s-----\n", label);
        if (r < 0)
                buf_truncate(out, before);
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
int tls_pem_next(const char *p, size_t n, size_t *pos, char label[TLS_MAX_PEM_LABEL + 1],
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

int tls_check_pem_input(const char *pem, size_t len) {
        if (!pem || len == 0)
                return -EINVAL;
        if (len > TLS_MAX_PEM)
                return -E2BIG;
        return 0;
}
