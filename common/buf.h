/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf: a bounded, growable byte buffer. Every buffer has a mandatory maximum set at creation;
 * appending past it fails with -E2BIG and leaves the buffer as it was. All untrusted bytes
 * (HTTP bodies, files, annotations) go through one of these.
 *
 * A buffer created with BUF_SECURE keeps its bytes in secmem (locked, guarded, not dumpable);
 * growing it copies into a new secure region and wipes the old one, and buf_done()/buf_reset()
 * wipe. Use it for anything that may hold a secret or a token.
 *
 * The data is always followed by a NUL byte that is not counted in len, so buf_cstr() is free.
 * A `struct buf` is owned by whoever declared it; declare with _cleanup_buf_. Only buf.c writes
 * `len` and the trailing NUL: others read the fields, and write through buf_truncate() and
 * buf_commit().
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        BUF_SECURE = 1u << 0, /* storage in secmem, wiped on every release */
};

struct buf {
        char *data;     /* NULL until the first append; data[len] == '\0' when not NULL */
        size_t len;     /* bytes used */
        size_t cap;     /* bytes allocated (excluding the trailing NUL) */
        size_t max;     /* hard limit on len */
        unsigned flags; /* BUF_* */
};

#define BUF_INIT(maximum, fl) ((struct buf){.max = (maximum), .flags = (fl)})

/* Initialises an empty buffer. max must be > 0. */
void buf_init(struct buf *b, size_t max, unsigned flags);

/* Makes room for `extra` more bytes. -E2BIG when len + extra > max, -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Append bytes / a string / one byte. -E2BIG over the maximum (buffer unchanged), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_byte(struct buf *b, uint8_t c);

/* Formatted append. Never use with secret arguments on a non-secure buffer. -E2BIG, -ENOMEM,
 * -EINVAL on a format error. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The contents as a NUL-terminated string ("" for an empty buffer). Valid until the next
 * modification. Bytes may contain NULs; use len for binary data. */
const char *buf_cstr(const struct buf *b);

/* Appends the whole content of the file at path (opened O_RDONLY | O_CLOEXEC | O_NOCTTY), within
 * the buffer's maximum: -E2BIG when the file is larger, -errno of open/read; on failure the
 * buffer is as it was (appended bytes of a secure buffer wiped). For service account tokens, CA
 * bundles, certificates: give a BUF_SECURE buffer for anything secret. */
int buf_read_file(struct buf *b, const char *path);

/* Removes trailing spaces, tabs, CR and LF (a token file's final newline). */
void buf_rstrip(struct buf *b);

/* Drops the first n bytes (n > len drops everything). */
void buf_consume(struct buf *b, size_t n);

/* Shortens the buffer to its first len bytes (len >= b->len keeps the content and only writes the
 * trailing NUL again: for a producer that wrote into the spare room and then failed): the dropped
 * bytes are wiped, in every buffer (a failed append of a secret taken back leaves nothing behind),
 * and the trailing NUL moves. For taking back what a failed step appended: remember b->len before
 * it, truncate to that on failure. */
void buf_truncate(struct buf *b, size_t len);

/* Counts n bytes the caller wrote at b->data + b->len, into room made by buf_reserve(b, extra)
 * with n <= extra, as appended, and terminates them. A write past that room has already
 * corrupted memory: n > b->cap - b->len aborts. For producers that write in place (a read(2),
 * an encoder that sized its output first). */
void buf_commit(struct buf *b, size_t n);

/* Empties the buffer, keeping its storage; secure buffers are wiped. */
void buf_reset(struct buf *b);

/* Releases the storage (wiping secure buffers) and leaves an empty buffer with the same max and
 * flags. Safe to call twice. */
void buf_done(struct buf *b);

/* Hands the storage to the caller: *ret is a NUL-terminated block of *ret_len bytes to be freed
 * with free() (or secmem_free() for BUF_SECURE buffers); the buffer is left empty. An empty
 * buffer yields an allocated "" so *ret is never NULL on success. */
int buf_steal(struct buf *b, char **ret, size_t *ret_len);

static inline void buf_donep(struct buf *b) {
        buf_done(b);
}
#define _cleanup_buf_ __attribute__((cleanup(buf_donep)))
