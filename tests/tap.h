/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tap.h: a tiny TAP producer for the unit tests (header-only; `prove` reads the output).
 *
 *   ok(cond, "name %d", i);          is_int(got, want, "name");   is_str(got, want, "name");
 *   skip(n, "why");                  diag("text");                return tap_done();
 *
 * The plan ("1..N") is printed at the end; tap_done() returns the exit code (non-zero when any
 * test failed or none ran), so a test executable can never pass by doing nothing.
 */
#pragma once

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned tap_count, tap_failed;

__attribute__((format(printf, 2, 3))) static inline bool ok(bool cond, const char *fmt, ...) {
        va_list ap;
        tap_count++;
        if (!cond)
                tap_failed++;
        printf("%sok %u - ", cond ? "" : "not ", tap_count);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        return cond;
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...) {
        va_list ap;
        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

#define is_int(got, want, ...)                                                                 \
        ({                                                                                     \
                long long _g = (long long) (got), _w = (long long) (want);                     \
                bool _r = ok(_g == _w, __VA_ARGS__);                                           \
                if (!_r)                                                                       \
                        diag("  got %lld, expected %lld (%s:%d)", _g, _w, __FILE__, __LINE__); \
                _r;                                                                            \
        })

#define is_str(got, want, ...)                                                        \
        ({                                                                            \
                const char *_g = (got), *_w = (want);                                 \
                bool _r = ok(_g && _w ? strcmp(_g, _w) == 0 : _g == _w, __VA_ARGS__); \
                if (!_r)                                                              \
                        diag("  got '%s', expected '%s' (%s:%d)", _g ? _g : "(null)", \
                             _w ? _w : "(null)", __FILE__, __LINE__);                 \
                _r;                                                                   \
        })

static inline void skip(unsigned n, const char *why) {
        for (unsigned i = 0; i < n; i++)
                printf("ok %u - # SKIP %s\n", ++tap_count, why);
        fflush(stdout);
}

static inline int tap_done(void) {
        printf("1..%u\n", tap_count);
        if (tap_failed)
                printf("# %u of %u tests failed\n", tap_failed, tap_count);
        fflush(stdout);
        return tap_failed == 0 && tap_count > 0 ? 0 : 1;
}
