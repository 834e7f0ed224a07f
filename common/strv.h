/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strv: NULL-terminated vectors of strings the vector owns (an argv, a list of names), the one
 * implementation for every program (systemd's strv.h, reduced to what we use).
 *
 * A vector is `char **`; NULL is an empty vector everywhere a vector is read. Its owner declares
 * it with _cleanup_strv_free_ and hands it on with TAKE_PTR(). Appending is bounded: the caller
 * keeps the count beside the vector (so an append is O(1) in what it reads) and gives the most
 * strings it accepts; past that an append is -E2BIG and leaves the vector as it was. Not for
 * secrets (the strings live on the ordinary heap and are not wiped).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/macro.h"

/* Frees every string and the vector. Accepts NULL. Returns NULL. */
char **strv_free(char **v);
static inline void strv_freep(char ***v) {
        *v = strv_free(*v);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* The number of strings of v (0 for NULL). */
size_t strv_length(char *const *v);

/* An allocated empty vector ({NULL}), for an owner that must hand on a vector rather than NULL.
 * -ENOMEM. */
int strv_new(char ***ret);

/* Appends a copy of s (strv_extendn: of its first n bytes, stopping at a NUL) to *v, which holds
 * *n strings: *v may be NULL (empty); *n is incremented. -E2BIG when *n >= max (nothing
 * changed), -ENOMEM (nothing changed). */
int strv_extend(char ***v, size_t *n, size_t max, const char *s);
int strv_extendn(char ***v, size_t *n, size_t max, const char *s, size_t len);

/* A copy of the first n strings of v (all of them when n is STRV_ALL; v NULL: an empty vector)
 * into *ret, always allocated. -ENOMEM. */
#define STRV_ALL ((size_t) -1)
int strv_copy(char *const *v, size_t n, char ***ret);

/* Whether v holds a string equal to s. */
bool strv_contains(char *const *v, const char *s);
