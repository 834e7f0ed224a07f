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

/* The same, with a '\n' after every `line` characters and at the end (PEM uses 64); line 0 is
 * base64_encode(). */
int base64_encode_lines(struct buf *out, const void *p, size_t n, size_t line);

/* Appends the decoding of n characters. -EBADMSG for a character outside the alphabet, bad
 * padding, a length that is not a multiple of 4 (after skipping whitespace when lenient), or
 * non-canonical trailing bits ("Zh==": RFC 4648 section 3.5; so decoding then encoding gives the
 * input back); -E2BIG; out unchanged (and what was appended wiped) on failure. Bits of the input
 * held on the stack meanwhile are wiped too: the input may be a key or a credential. */
int base64_decode(struct buf *out, const char *s, size_t n, bool lenient);
