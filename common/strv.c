/* SPDX-License-Identifier: Apache-2.0 */
/* strv: see strv.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"

char **strv_free(char **v) {
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
        return NULL;
}

size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

int strv_new(char ***ret) {
        char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

int strv_extendn(char ***v, size_t *n, size_t max, const char *s, size_t len) {
        if (*n >= max)
                return -E2BIG;
        char *c = strndup(s, len);
        if (!c)
                return -ENOMEM;
        char **w = reallocarray(*v, *n + 2, sizeof(char *));
        if (!w) {
                free(c);
                return -ENOMEM;
        }
        w[(*n)++] = c;
        w[*n] = NULL;
        *v = w;
        return 0;
}

int strv_extend(char ***v, size_t *n, size_t max, const char *s) {
        return strv_extendn(v, n, max, s, strlen(s));
}

int strv_copy(char *const *v, size_t n, char ***ret) {
        n = MIN(n, strv_length(v));
        _cleanup_strv_free_ char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(v[i])))
                        return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

bool strv_contains(char *const *v, const char *s) {
        for (char *const *p = v; p && *p; p++)
                if (strcmp(*p, s) == 0)
                        return true;
        return false;
}
