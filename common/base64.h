/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64: RFC 4648 base64 (standard alphabet, padded), for Kubernetes Secret data, JSON patches in
 * AdmissionReviews, registry credentials. Decoding is strict: only the alphabet, correct padding,
 * no whitespace except that decode_lenient skips ASCII whitespace (PEM-like line breaks).
 * Output goes to a caller's bounded buffer (BUF_SECURE for credentials).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Appends the encoding of n bytes. -E2BIG (out unchanged), -ENOMEM. */
int base64_encode(struct buf *out, const void *p, size_t n);

/* Appends the decoding of n characters. -EBADMSG for a character outside the alphabet, bad
 * padding or a length that is not a multiple of 4 (after skipping whitespace when lenient);
 * -E2BIG; out unchanged on failure. */
int base64_decode(struct buf *out, const char *s, size_t n, bool lenient);
