/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/strv: append within the bound, the vector unchanged past it, copies,
 * NULL as the empty vector, cleanup. */
#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/strv.h"
#include "tests/tap.h"

int main(void) {
        _cleanup_strv_free_ char **v = NULL;
        size_t n = 0;

        is_int(strv_length(NULL), 0, "NULL is the empty vector");
        ok(!strv_contains(NULL, "a"), "which contains nothing");
        is_int(strv_extend(&v, &n, 3, "/app"), 0, "append one");
        is_int(strv_extendn(&v, &n, 3, "--port=8080", 6), 0, "append a prefix");
        is_int(strv_extendn(&v, &n, 3, "a\0b", 3), 0, "append stops at a NUL");
        ok(n == 3 && strv_length(v) == 3 && v[3] == NULL, "three strings, NULL-terminated");
        ok(strcmp(v[0], "/app") == 0 && strcmp(v[1], "--port") == 0 && strcmp(v[2], "a") == 0,
           "the strings as given");
        char **before = v;
        is_int(strv_extend(&v, &n, 3, "more"), -E2BIG, "past the bound: -E2BIG");
        ok(v == before && n == 3 && strv_length(v) == 3, "and the vector unchanged");
        ok(strv_contains(v, "--port") && !strv_contains(v, "--por"), "contains compares whole");

        _cleanup_strv_free_ char **c = NULL, **c2 = NULL, **e = NULL, **nv = NULL;
        is_int(strv_copy(v, STRV_ALL, &c), 0, "copy all");
        ok(c != v && strv_length(c) == 3 && c[0] != v[0] && strcmp(c[2], "a") == 0, "a deep copy");
        is_int(strv_copy(v, 2, &c2), 0, "copy two");
        ok(strv_length(c2) == 2 && strcmp(c2[1], "--port") == 0, "the first two");
        is_int(strv_copy(NULL, STRV_ALL, &e), 0, "copy of NULL");
        ok(e && !e[0], "is an allocated empty vector");
        is_int(strv_new(&nv), 0, "strv_new");
        ok(nv && !nv[0], "an allocated empty vector");
        size_t k = 0;
        is_int(strv_extend(&nv, &k, 1, "x"), 0, "which takes appends");
        ok(!strv_free(NULL), "strv_free(NULL) is NULL");
        return tap_done();
}
