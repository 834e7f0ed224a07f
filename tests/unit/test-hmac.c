/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/hmac: RFC 4231 HMAC-SHA256 vectors (short, long and hashed keys; a
 * truncated-output case is just a prefix), incremental == one-shot, RFC 5869 HKDF vectors (cases
 * 1-3), argument checks, and the constant-time comparison. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmac.h"
#include "common/macro.h"
#include "tests/tap.h"

static size_t unhex(const char *h, uint8_t *out) {
        size_t n = strlen(h) / 2;
        for (size_t i = 0; i < n; i++) {
                unsigned v;
                (void) sscanf(h + 2 * i, "%2x", &v);
                out[i] = (uint8_t) v;
        }
        return n;
}

static void tohex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int main(void) {
        static const struct {
                const char *key, *data, *mac;
        } v[] = {
                /* RFC 4231 test cases 1, 2, 3, 4, 6, 7 */
                {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
                 "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
                {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
                 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
                 "dddddddddddddddddddddddd",
                 "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
                {"0102030405060708090a0b0c0d0e0f10111213141516171819",
                 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
                 "cdcdcdcdcdcdcdcdcdcdcdcd",
                 "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579"
                 "202d2048617368204b6579204669727374",
                 "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c"
                 "6f636b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d"
                 "73697a6520646174612e20546865206b6579206e6565647320746f20626520686173686564"
                 "206265666f7265206265696e6720757365642062792074686520484d414320616c676f7269"
                 "74686d2e",
                 "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                uint8_t key[256], data[256], mac[32], inc[32];
                char hex[65];
                size_t kl = unhex(v[i].key, key), dl = unhex(v[i].data, data);
                hmac_sha256(key, kl, data, dl, mac);
                tohex(mac, 32, hex);
                is_str(hex, v[i].mac, "RFC 4231 vector %zu", i);
                struct hmac_sha256_ctx c;
                hmac_sha256_init(&c, key, kl);
                for (size_t j = 0; j < dl; j++)
                        hmac_sha256_update(&c, data + j, 1);
                hmac_sha256_final(&c, inc);
                ok(memcmp(mac, inc, 32) == 0, "byte-by-byte update gives the same MAC (%zu)", i);
        }

        static const struct {
                const char *ikm, *salt, *info, *okm;
        } h[] = {
                {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
                 "f0f1f2f3f4f5f6f7f8f9",
                 "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887"
                 "185865"},
                {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425"
                 "262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c"
                 "4d4e4f",
                 "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586"
                 "8788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacad"
                 "aeaf",
                 "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6"
                 "d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfd"
                 "feff",
                 "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac782"
                 "7271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3"
                 "434f1d87"},
                {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
                 "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b6"
                 "1a96c8"},
        };
        for (size_t i = 0; i < ELEMENTSOF(h); i++) {
                uint8_t ikm[128], salt[128], info[128], okm[128];
                char hex[257];
                size_t il = unhex(h[i].ikm, ikm), sl = unhex(h[i].salt, salt),
                       nl = unhex(h[i].info, info), ol = strlen(h[i].okm) / 2;
                is_int(hkdf_sha256(ikm, il, sl ? salt : NULL, sl, info, nl, okm, ol), 0,
                       "HKDF case %zu", i + 1);
                tohex(okm, ol, hex);
                is_str(hex, h[i].okm, "RFC 5869 case %zu output", i + 1);
        }
        uint8_t out[32];
        is_int(hkdf_sha256("k", 1, NULL, 0, NULL, 0, out, 0), -EINVAL, "HKDF: zero length");
        is_int(hkdf_sha256("k", 1, NULL, 0, NULL, 0, out, HKDF_SHA256_MAX_OUT + 1), -EINVAL,
               "HKDF: over 255 blocks");
        is_int(hkdf_sha256("k", 1, NULL, 0, NULL, 0, NULL, 32), -EINVAL, "HKDF: NULL output");

        ok(hmac_equal("abcd", "abcd", 4), "equal strings compare equal");
        ok(!hmac_equal("abcd", "abce", 4), "last byte differs");
        ok(!hmac_equal("xbcd", "abcd", 4), "first byte differs");
        ok(hmac_equal("a", "b", 0), "empty strings are equal");
        return tap_done();
}
