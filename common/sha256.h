/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sha256: SHA-256 (FIPS 180-4) for cloudtaser-init, which verifies the wrapper it installs
 * against the digest built into it. A plain, portable implementation with no dependency: the
 * init binary links no TLS library (common/tls is the only wolfSSL user and the init container
 * needs none of it).
 *
 * Usage:
 *   struct sha256_ctx c;
 *   sha256_init(&c);
 *   sha256_update(&c, data, len);        any number of times, any lengths (0 included)
 *   sha256_final(&c, digest);            32 bytes; the context is wiped and must be re-initialised
 *
 * Not constant-time with respect to the data's length (it hashes public binaries, not secrets).
 * Inputs up to 2^61 - 1 bytes (the length field is 64 bits of bit count); longer input is not
 * supported and not checked, which cannot happen with the file sizes init accepts.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1) /* with the terminating NUL */

struct sha256_ctx {
        uint32_t h[8];
        uint64_t length; /* bytes hashed so far */
        uint8_t block[64];
        size_t fill; /* bytes in block */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t ret[SHA256_DIGEST_SIZE]);

/* One-shot digest of a buffer. */
void sha256_buffer(const void *data, size_t len, uint8_t ret[SHA256_DIGEST_SIZE]);

/* Lower-case hex of a digest, NUL-terminated. */
void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char ret[SHA256_HEX_SIZE]);

/* Parses exactly 64 hex digits (either case) into a digest. Returns 0, or -EINVAL (the output is
 * then untouched). */
int sha256_from_hex(const char *hex, uint8_t ret[SHA256_DIGEST_SIZE]);
