/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/base64: RFC 4648 vectors, strictness, limits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/macro.h"
#include "tests/tap.h"

int main(void) {
        static const struct {
                const char *plain, *enc;
        } v[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"foob", "Zm9vYg=="},
                 {"fooba", "Zm9vYmE="},
                 {"foobar", "Zm9vYmFy"},
                 {"user:pa55:word", "dXNlcjpwYTU1OndvcmQ="}};
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_buf_ struct buf e = BUF_INIT(64, 0), d = BUF_INIT(64, 0);
                is_int(base64_encode(&e, v[i].plain, strlen(v[i].plain)), 0, "encode '%s'",
                       v[i].plain);
                is_str(buf_cstr(&e), v[i].enc, "encoding of '%s'", v[i].plain);
                is_int(base64_decode(&d, v[i].enc, strlen(v[i].enc), false), 0, "decode '%s'",
                       v[i].enc);
                ok(d.len == strlen(v[i].plain) && memcmp(buf_cstr(&d), v[i].plain, d.len) == 0,
                   "round trip '%s'", v[i].plain);
        }
        static const char *bad[] = {"Zg",        "Zg=",   "Z===", "Zm9v!", "Zg==Zg==", "=Zg=",
                                    "Zm9vYmFy=", "Zm 9v", "Zh==", "Zm9=",  "Zm9wYh=="};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_buf_ struct buf d = BUF_INIT(64, 0);
                (void) buf_append_str(&d, "keep");
                is_int(base64_decode(&d, bad[i], strlen(bad[i]), false), -EBADMSG,
                       "strict: '%s' rejected", bad[i]);
                is_str(buf_cstr(&d), "keep", "and the buffer is unchanged");
        }
        {
                _cleanup_buf_ struct buf d = BUF_INIT(64, 0);
                is_int(base64_decode(&d, "Zm9v\nYmFy\r\n", 11, true), 0,
                       "lenient skips line breaks");
                is_str(buf_cstr(&d), "foobar", "lenient result");
        }
        {
                _cleanup_buf_ struct buf e = BUF_INIT(7, 0);
                is_int(base64_encode(&e, "foobar", 6), -E2BIG, "encode over the limit");
                ok(e.len == 0, "nothing appended");
        }
        {
                _cleanup_buf_ struct buf e = BUF_INIT(256, 0);
                static const char text[] = "0123456789012345678901234567890123456789012345678";
                is_int(base64_encode_lines(&e, text, 49, 64), 0, "encode in 64-column lines");
                ok(e.len == 70 && e.data[64] == '\n' && e.data[69] == '\n' &&
                           strchr(e.data, '\n') == e.data + 64,
                   "a line break after 64 characters and at the end");
                _cleanup_buf_ struct buf d = BUF_INIT(256, 0);
                ok(base64_decode(&d, e.data, e.len, true) == 0 && d.len == 49 &&
                           memcmp(d.data, text, 49) == 0,
                   "the wrapped text decodes back");
        }
        {
                /* Several lines, the last one partial, a line length that is not a multiple of
                 * four (the reference from Python's base64 module). */
                unsigned char bytes[200];
                for (int i = 0; i < 200; i++)
                        bytes[i] = (unsigned char) i;
                _cleanup_buf_ struct buf e = BUF_INIT(512, 0);
                is_int(base64_encode_lines(&e, bytes, sizeof(bytes), 76), 0,
                       "encode 200 bytes in 76-column lines");
                is_str(buf_cstr(&e),
                       "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc"
                       "4\n"
                       "OTo7PD0+"
                       "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\n"
                       "cnN0dXZ3eHl6e3x9fn+"
                       "AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq\n"
                       "q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsc=\n",
                       "four lines, each break in place");
                _cleanup_buf_ struct buf s = BUF_INIT(512, 0);
                ok(buf_append_str(&s, "x") == 0 && base64_encode_lines(&s, "ab", 2, 3) == 0 &&
                           strcmp(buf_cstr(&s), "xYWI\n=\n") == 0,
                   "appended after what the buffer held; a line shorter than a quantum");
        }
        /* Every byte value round trips. */
        unsigned char all[256];
        for (int i = 0; i < 256; i++)
                all[i] = (unsigned char) i;
        _cleanup_buf_ struct buf e = BUF_INIT(1024, 0), d = BUF_INIT(1024, BUF_SECURE);
        ok(base64_encode(&e, all, 256) == 0 && base64_decode(&d, e.data, e.len, false) == 0 &&
                   d.len == 256 && memcmp(d.data, all, 256) == 0,
           "all 256 byte values round trip (into a secure buffer)");
        return tap_done();
}
