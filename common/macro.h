/* SPDX-License-Identifier: Apache-2.0 */
/*
 * macro.h: ownership helpers used across cloudtaser (the systemd style).
 *
 * Every resource has one owner. A local that owns something is declared with a cleanup attribute
 * (`_cleanup_free_ char *s = NULL;`), and ownership moves out with TAKE_PTR()/TAKE_FD().
 * Destructors accept NULL / -1 so that early returns are always safe.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Move ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _take_p = (p); \
                (p) = NULL;                  \
                _take_p;                     \
        })
#define TAKE_FD(fd)                  \
        ({                           \
                int _take_fd = (fd); \
                (fd) = -EBADF;       \
                _take_fd;            \
        })

/* Defines `static inline void funcp(type *p)` calling func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno and accepts -1; returns -EBADF so it can reset the variable. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* errno as a negative return value, never 0 even if errno was not set. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
