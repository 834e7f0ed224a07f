/* SPDX-License-Identifier: Apache-2.0 */
/* buf: see buf.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"

#define BUF_MIN_CAP 64

void buf_init(struct buf *b, size_t max, unsigned flags) {
        *b = BUF_INIT(max, flags);
}

static void storage_free(const struct buf *b, char *p) {
        if (!p)
                return;
        if (b->flags & BUF_SECURE)
                secmem_free(p); /* wipes */
        else
                free(p);
}

int buf_reserve(struct buf *b, size_t extra) {
        if (b->max == 0 || b->len > b->max || extra > b->max - b->len)
                return -E2BIG;
        size_t need = b->len + extra;
        if (b->data && need <= b->cap)
                return 0;

        /* Grow geometrically, never past max. */
        size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        cap = MIN(cap, b->max);
        if (cap < need)
                cap = need;
        /* Secure storage comes in whole pages: use all the room they have (secmem_fit). */
        if (b->flags & BUF_SECURE)
                cap = MAX(MIN(secmem_fit(cap + 1) - 1, b->max), cap);

        char *p;
        if (b->flags & BUF_SECURE) {
                int r = secmem_alloc(cap + 1, (void **) &p);
                if (r < 0)
                        return r;
        } else {
                p = malloc(cap + 1);
                if (!p)
                        return -ENOMEM;
        }
        if (b->data)
                memcpy(p, b->data, b->len);
        p[b->len] = '\0';
        storage_free(b, b->data);
        b->data = p;
        b->cap = cap;
        return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
        int r = buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_append_str(struct buf *b, const char *s) {
        return buf_append(b, s, strlen(s));
}

int buf_append_byte(struct buf *b, uint8_t c) {
        return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
        va_list aq;
        int r;

        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        r = buf_reserve(b, (size_t) n);
        if (r < 0)
                return r;
        /* vsnprintf writes the terminating NUL into the reserved extra byte. */
        if (vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap) != n)
                return -EINVAL;
        b->len += (size_t) n;
        return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *buf_cstr(const struct buf *b) {
        return b->data ? b->data : "";
}

int buf_read_file(struct buf *b, const char *path) {
        size_t before = b->len;
        int r = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        /* Secure storage grows from one page (a service account token fits: one slot, not the
         * two a 4 KiB first step and its regrowth took); the rest reads 4 KiB at a time. */
        size_t step = (b->flags & BUF_SECURE) ? 1024 : 4096;
        for (;;) {
                /* Read into the room there is; then room for at least one byte more than the
                 * maximum allows, to see "too large". */
                r = b->data && b->cap > b->len ? 0 : buf_reserve(b, MIN(step, b->max - b->len));
                if (r < 0)
                        break;
                if (b->len == b->max) {
                        char probe;
                        ssize_t n = read(fd, &probe, 1);
                        r = n > 0 ? -E2BIG : n < 0 ? negative_errno() : 0;
                        break;
                }
                ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        break;
                }
                if (n == 0)
                        break;
                b->len += (size_t) n;
                b->data[b->len] = '\0';
        }
        (void) close(fd);
        if (r < 0 && b->data) {
                if (b->flags & BUF_SECURE)
                        explicit_bzero(b->data + before, b->len - before);
                b->len = before;
                b->data[before] = '\0';
        }
        return r;
}

void buf_rstrip(struct buf *b) {
        while (b->len > 0 && strchr(" \t\r\n", b->data[b->len - 1]))
                b->data[--b->len] = '\0';
}

void buf_consume(struct buf *b, size_t n) {
        if (!b->data)
                return;
        if (n >= b->len) {
                buf_reset(b);
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        if (b->flags & BUF_SECURE)
                explicit_bzero(b->data + b->len - n, n);
        b->len -= n;
        b->data[b->len] = '\0';
}

void buf_truncate(struct buf *b, size_t len) {
        if (!b->data)
                return;
        if (len < b->len) {
                explicit_bzero(b->data + len, b->len - len);
                b->len = len;
        }
        b->data[b->len] = '\0';
}

void buf_commit(struct buf *b, size_t n) {
        if (n == 0)
                return;
        if (!b->data || n > b->cap - b->len)
                abort(); /* written past the reserved room */
        b->len += n;
        b->data[b->len] = '\0';
}

void buf_reset(struct buf *b) {
        if (b->data) {
                if (b->flags & BUF_SECURE)
                        explicit_bzero(b->data, b->len);
                b->data[0] = '\0';
        }
        b->len = 0;
}

void buf_done(struct buf *b) {
        if (b->data && (b->flags & BUF_SECURE))
                explicit_bzero(b->data, b->len);
        storage_free(b, b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

int buf_steal(struct buf *b, char **ret, size_t *ret_len) {
        if (!b->data) {
                int r = buf_reserve(b, 0);
                if (r < 0)
                        return r;
        }
        *ret = b->data;
        if (ret_len)
                *ret_len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        return 0;
}
