/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hmac: HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869) on common/sha256, for the broker's
 * session tokens and annotation MACs (docs/protocol-broker.md). No third-party library: the
 * operator, the broker and the tests derive the same keys from `broker-auth` with the same code.
 *
 * Every intermediate state that depends on the key (the padded key blocks, the SHA-256 contexts,
 * the PRK) is wiped before returning. Keys of any length (longer than 64 bytes are hashed first,
 * as RFC 2104 says). Not constant-time in the data's length (lengths are public here); the MAC
 * comparison is hmac_equal(), which is.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HMAC_SHA256_SIZE 32
#define HKDF_SHA256_MAX_OUT (255u * HMAC_SHA256_SIZE)

/* Incremental HMAC: hmac_sha256_init(), any number of _update(), then _final() (which wipes the
 * context). */
struct hmac_sha256_ctx {
        uint8_t opad_key[64];
        uint8_t inner[112]; /* a struct sha256_ctx, kept opaque here */
};
void hmac_sha256_init(struct hmac_sha256_ctx *c, const void *key, size_t key_len);
void hmac_sha256_update(struct hmac_sha256_ctx *c, const void *data, size_t len);
void hmac_sha256_final(struct hmac_sha256_ctx *c, uint8_t ret[HMAC_SHA256_SIZE]);

/* One-shot HMAC-SHA256 of data under key. */
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t ret[HMAC_SHA256_SIZE]);

/* HKDF-SHA256 (extract then expand): out_len (1..HKDF_SHA256_MAX_OUT) bytes into ret from the
 * input key material, an optional salt (NULL/0: a block of zeros, as RFC 5869 says) and info.
 * -EINVAL for a bad length or a NULL ikm/ret. */
int hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                const void *info, size_t info_len, void *ret, size_t out_len);

/* Constant-time comparison of two n-byte strings (the time depends only on n). */
bool hmac_equal(const void *a, const void *b, size_t n);
