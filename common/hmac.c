/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "common/hmac.h"
#include "common/sha256.h"

_Static_assert(sizeof(((struct hmac_sha256_ctx *) 0)->inner) >= sizeof(struct sha256_ctx),
               "hmac_sha256_ctx.inner too small");

static struct sha256_ctx *inner_ctx(struct hmac_sha256_ctx *c) {
        return (struct sha256_ctx *) (void *) c->inner;
}

void hmac_sha256_init(struct hmac_sha256_ctx *c, const void *key, size_t key_len) {
        uint8_t k[64] = {}, ipad[64];

        if (key_len > sizeof(k))
                sha256_buffer(key, key_len, k);
        else if (key_len > 0)
                memcpy(k, key, key_len);
        for (size_t i = 0; i < sizeof(k); i++) {
                ipad[i] = k[i] ^ 0x36;
                c->opad_key[i] = k[i] ^ 0x5c;
        }
        sha256_init(inner_ctx(c));
        sha256_update(inner_ctx(c), ipad, sizeof(ipad));
        explicit_bzero(k, sizeof(k));
        explicit_bzero(ipad, sizeof(ipad));
}

void hmac_sha256_update(struct hmac_sha256_ctx *c, const void *data, size_t len) {
        sha256_update(inner_ctx(c), data, len);
}

void hmac_sha256_final(struct hmac_sha256_ctx *c, uint8_t ret[HMAC_SHA256_SIZE]) {
        uint8_t ih[SHA256_DIGEST_SIZE];
        struct sha256_ctx o;

        sha256_final(inner_ctx(c), ih);
        sha256_init(&o);
        sha256_update(&o, c->opad_key, sizeof(c->opad_key));
        sha256_update(&o, ih, sizeof(ih));
        sha256_final(&o, ret);
        explicit_bzero(ih, sizeof(ih));
        explicit_bzero(&o, sizeof(o));
        explicit_bzero(c, sizeof(*c));
}

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t ret[HMAC_SHA256_SIZE]) {
        struct hmac_sha256_ctx c;

        hmac_sha256_init(&c, key, key_len);
        hmac_sha256_update(&c, data, len);
        hmac_sha256_final(&c, ret);
}

int hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                const void *info, size_t info_len, void *ret, size_t out_len) {
        static const uint8_t zeros[HMAC_SHA256_SIZE] = {};
        uint8_t prk[HMAC_SHA256_SIZE], t[HMAC_SHA256_SIZE];
        struct hmac_sha256_ctx c;
        uint8_t *out = ret;

        if ((!ikm && ikm_len) || !ret || out_len == 0 || out_len > HKDF_SHA256_MAX_OUT ||
            (!info && info_len))
                return -EINVAL;
        if (!salt || salt_len == 0) {
                salt = zeros;
                salt_len = sizeof(zeros);
        }
        hmac_sha256(salt, salt_len, ikm, ikm_len, prk);
        for (size_t done = 0, i = 1; done < out_len; i++) {
                uint8_t ctr = (uint8_t) i;
                hmac_sha256_init(&c, prk, sizeof(prk));
                if (i > 1)
                        hmac_sha256_update(&c, t, sizeof(t));
                if (info_len)
                        hmac_sha256_update(&c, info, info_len);
                hmac_sha256_update(&c, &ctr, 1);
                hmac_sha256_final(&c, t);
                size_t n = out_len - done < sizeof(t) ? out_len - done : sizeof(t);
                memcpy(out + done, t, n);
                done += n;
        }
        explicit_bzero(prk, sizeof(prk));
        explicit_bzero(t, sizeof(t));
        return 0;
}

bool hmac_equal(const void *a, const void *b, size_t n) {
        const volatile uint8_t *x = a, *y = b;
        uint8_t d = 0;

        for (size_t i = 0; i < n; i++)
                d |= x[i] ^ y[i];
        return d == 0;
}
