/* SPDX-License-Identifier: Apache-2.0 */
/* base64: see base64.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/base64.h"
#include "common/macro.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Each quantum goes from registers straight into out: no temporary on the stack holds the bits
 * of what is encoded (a credential, a key), so nothing needs wiping per quantum. */
static inline char *quantum(char *o, const uint8_t *in) {
        uint32_t v = (uint32_t) in[0] << 16 | (uint32_t) in[1] << 8 | in[2];
        o[0] = alphabet[v >> 18];
        o[1] = alphabet[(v >> 12) & 63];
        o[2] = alphabet[(v >> 6) & 63];
        o[3] = alphabet[v & 63];
        return o + 4;
}

/* All of in (n bytes) at o, the last quantum padded; returns the end. */
static char *encode(char *o, const uint8_t *in, size_t n) {
        size_t i = 0;
        for (; n - i >= 3; i += 3)
                o = quantum(o, in + i);
        if (i < n) {
                uint32_t v = (uint32_t) in[i] << 16 | (n - i > 1 ? (uint32_t) in[i + 1] << 8 : 0);
                o[0] = alphabet[v >> 18];
                o[1] = alphabet[(v >> 12) & 63];
                o[2] = n - i > 1 ? alphabet[(v >> 6) & 63] : '=';
                o[3] = '=';
                o += 4;
        }
        return o;
}

int base64_encode_lines(struct buf *out, const void *p, size_t n, size_t line) {
        const uint8_t *in = p;
        size_t chars = (n + 2) / 3 * 4, lines = line ? (chars + line - 1) / line : 0;
        int r = buf_reserve(out, chars + lines);
        if (r < 0)
                return r;
        char *o = out->data + out->len, *start = o;
        if (!line)
                o = encode(o, in, n);
        else {
                /* Encoded behind the room the line breaks need, then moved forward line by
                 * line (the text only moves towards the front), so the line breaks cost no
                 * per-character test. */
                const char *src = o + lines;
                (void) encode(o + lines, in, n);
                for (size_t left = chars; left > 0;) {
                        size_t take = MIN(left, line);
                        memmove(o, src, take);
                        o[take] = '\n';
                        o += take + 1;
                        src += take;
                        left -= take;
                }
        }
        buf_commit(out, (size_t) (o - start));
        return 0;
}

int base64_encode(struct buf *out, const void *p, size_t n) {
        return base64_encode_lines(out, p, n, 0);
}

static int value_of(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(struct buf *out, const char *s, size_t n, bool lenient) {
        size_t before = out->len;
        uint32_t acc = 0;
        unsigned quad = 0, pad = 0;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                char c = s[i];
                if (lenient && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
                        continue;
                if (c == '=') {
                        /* Padding only in the last two positions of the last quantum. */
                        if (quad < 2) {
                                r = -EBADMSG;
                                break;
                        }
                        pad++;
                        quad++;
                        acc <<= 6;
                } else {
                        int v = value_of(c);
                        if (v < 0 || pad > 0) {
                                r = -EBADMSG;
                                break;
                        }
                        acc = (acc << 6) | (uint32_t) v;
                        quad++;
                }
                if (quad == 4) {
                        /* The bits padding leaves over must be zero (canonical encoding). */
                        if ((pad == 1 && (acc & 0xff)) || (pad == 2 && (acc & 0xffff))) {
                                r = -EBADMSG;
                                break;
                        }
                        uint8_t b[3] = {(uint8_t) (acc >> 16), (uint8_t) (acc >> 8), (uint8_t) acc};
                        r = buf_append(out, b, 3 - pad);
                        explicit_bzero(b, sizeof(b));
                        acc = 0;
                        quad = 0;
                        if (pad)
                                pad = 3; /* nothing may follow a padded quantum */
                }
        }
        explicit_bzero(&acc, sizeof(acc));
        if (r >= 0 && quad != 0)
                r = -EBADMSG;
        if (r < 0) {
                buf_truncate(out, before);
                return r;
        }
        return 0;
}
