/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/buf. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "tests/tap.h"

static void test_bounds(unsigned flags, const char *kind) {
        _cleanup_buf_ struct buf b = BUF_INIT(10, flags);

        is_str(buf_cstr(&b), "", "%s: empty buffer reads as \"\"", kind);
        is_int(buf_append_str(&b, "0123456789"), 0, "%s: append exactly max", kind);
        is_int((long long) b.len, 10, "%s: len is 10", kind);
        is_int(buf_append_byte(&b, 'x'), -E2BIG, "%s: one byte over max is -E2BIG", kind);
        is_str(buf_cstr(&b), "0123456789", "%s: a failed append leaves the buffer unchanged", kind);
        buf_consume(&b, 4);
        is_str(buf_cstr(&b), "456789", "%s: consume drops the front", kind);
        is_int(buf_printf(&b, "%d%s", 12, "34"), 0, "%s: printf fits", kind);
        is_str(buf_cstr(&b), "4567891234", "%s: printf appended", kind);
        is_int(buf_printf(&b, "%s", "y"), -E2BIG, "%s: printf over max is -E2BIG", kind);
        is_int((long long) b.len, 10, "%s: len unchanged after failed printf", kind);
        buf_consume(&b, 100);
        is_int((long long) b.len, 0, "%s: consume past len empties", kind);
        buf_reset(&b);
        is_int(buf_append(&b, "a\0b", 3), 0, "%s: binary append", kind);
        ok(b.len == 3 && memcmp(b.data, "a\0b", 3) == 0 && b.data[3] == '\0',
           "%s: binary content kept and NUL-terminated", kind);
        is_int(buf_reserve(&b, 8), -E2BIG, "%s: reserve past max is -E2BIG", kind);
        is_int(buf_reserve(&b, 7), 0, "%s: reserve up to max", kind);
        buf_done(&b);
        ok(b.data == NULL && b.len == 0 && b.max == 10, "%s: done keeps max and flags", kind);
        buf_done(&b);
        ok(true, "%s: done twice is safe", kind);
}

static void test_growth(void) {
        _cleanup_buf_ struct buf b = BUF_INIT(1000 * 1000, 0);
        char chunk[1000];
        memset(chunk, 'z', sizeof(chunk));
        int r = 0;
        for (int i = 0; i < 1000 && r >= 0; i++)
                r = buf_append(&b, chunk, sizeof(chunk));
        is_int(r, 0, "grows to its 1 MB maximum in steps");
        ok(b.cap <= b.max, "capacity never exceeds max");
        is_int(buf_append(&b, chunk, 1000), -E2BIG, "the 1001st kB is refused");
}

static void test_secure(void) {
        struct secmem_report before, during, after;
        secmem_report(&before);
        {
                _cleanup_buf_ struct buf b = BUF_INIT(1u << 16, BUF_SECURE);
                is_int(buf_append_str(&b, "canary-value"), 0, "secure append");
                secmem_report(&during);
                is_int((long long) during.regions, (long long) before.regions + 1,
                       "a secure buffer lives in one secmem region");
                is_int((long long) secmem_size(b.data), (long long) b.cap + 1,
                       "its storage is the secmem allocation");
                is_int((long long) b.cap + 1, (long long) secmem_fit(13),
                       "and all the room of its pages is capacity");
                for (int i = 0; i < 200; i++)
                        (void) buf_append_str(&b, "0123456789");
                secmem_report(&during);
                is_int((long long) during.regions, (long long) before.regions + 1,
                       "growing moves to a new region and frees the old one");
                char *stolen;
                size_t n;
                is_int(buf_steal(&b, &stolen, &n), 0, "steal");
                ok(n == 2012 && strncmp(stolen, "canary-value", 12) == 0, "stolen bytes");
                ok(b.data == NULL && b.len == 0, "buffer empty after steal");
                secmem_free(stolen);
        }
        secmem_report(&after);
        is_int((long long) after.regions, (long long) before.regions, "no secure region leaked");

        _cleanup_buf_ struct buf e = BUF_INIT(4, 0);
        char *s;
        is_int(buf_steal(&e, &s, NULL), 0, "steal from an empty buffer");
        is_str(s, "", "gives an allocated empty string");
        free(s);
}

static void test_read_file(void) {
        char dir[] = "/tmp/test-buf.XXXXXX", path[64];
        if (!mkdtemp(dir)) {
                ok(false, "mkdtemp");
                return;
        }
        (void) snprintf(path, sizeof(path), "%s/f", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ok(fd >= 0 && write(fd, "token-value\n\n", 13) == 13, "write a token file");
        if (fd >= 0)
                close(fd);
        {
                _cleanup_buf_ struct buf b = BUF_INIT(64, BUF_SECURE);
                is_int(buf_read_file(&b, path), 0, "read a file");
                ok(b.len == 13, "whole content");
                buf_rstrip(&b);
                is_str(buf_cstr(&b), "token-value", "rstrip drops the trailing newlines");
        }
        {
                /* A token file read into secure storage takes one page and one allocation: the
                 * first step fits a page, the read goes on into the room left, nothing regrows. */
                _cleanup_buf_ struct buf b = BUF_INIT(1u << 16, BUF_SECURE);
                is_int(buf_read_file(&b, path), 0, "read a file into a large secure buffer");
                is_int((long long) b.cap + 1, (long long) secmem_fit(1),
                       "a small file takes one page of secure storage, all of it usable");
        }
        {
                _cleanup_buf_ struct buf b = BUF_INIT(13, 0);
                is_int(buf_read_file(&b, path), 0, "a file exactly at the maximum fits");
        }
        {
                _cleanup_buf_ struct buf b = BUF_INIT(12, 0);
                (void) buf_append_str(&b, "x");
                is_int(buf_read_file(&b, path), -E2BIG, "a larger file is -E2BIG");
                is_str(buf_cstr(&b), "x", "and the buffer is as it was");
        }
        {
                _cleanup_buf_ struct buf b = BUF_INIT(64, 0);
                char missing[80];
                (void) snprintf(missing, sizeof(missing), "%s/none", dir);
                is_int(buf_read_file(&b, missing), -ENOENT, "a missing file is -ENOENT");
        }
        (void) unlink(path);
        (void) rmdir(dir);
}

/* buf_truncate() takes back a failed step's bytes, wiped; buf_commit() counts bytes written in
 * place; an over-long commit aborts (in a child: it is the process's end). */
static void test_truncate_commit(unsigned flags, const char *kind) {
        _cleanup_buf_ struct buf b = BUF_INIT(64, flags);
        is_int(buf_append_str(&b, "keep:secret"), 0, "%s: append", kind);
        char *data = b.data;
        buf_truncate(&b, 5);
        ok(b.len == 5 && strcmp(buf_cstr(&b), "keep:") == 0, "%s: truncated to 5 bytes", kind);
        ok(b.data == data && memcmp(data + 5, "\0\0\0\0\0\0", 6) == 0,
           "%s: the dropped bytes wiped, the storage kept", kind);
        buf_truncate(&b, 30);
        ok(b.len == 5 && strcmp(buf_cstr(&b), "keep:") == 0, "%s: a longer length changes nothing",
           kind);
        is_int(buf_reserve(&b, 4), 0, "%s: reserve 4", kind);
        memcpy(b.data + b.len, "xy", 2); /* a producer wrote into the spare room, then failed */
        buf_truncate(&b, b.len);
        ok(b.len == 5 && strcmp(buf_cstr(&b), "keep:") == 0,
           "%s: truncating to its own length terminates it again", kind);
        struct buf empty = BUF_INIT(8, flags);
        buf_truncate(&empty, 0);
        ok(empty.len == 0 && !empty.data, "%s: an empty buffer stays empty", kind);

        is_int(buf_reserve(&b, 4), 0, "%s: reserve 4", kind);
        memcpy(b.data + b.len, "abcd", 4);
        buf_commit(&b, 3);
        ok(b.len == 8 && strcmp(buf_cstr(&b), "keep:abc") == 0,
           "%s: commit 3 of the 4 written: counted and terminated", kind);
        buf_commit(&b, 0);
        is_int(b.len, 8, "%s: commit 0 changes nothing", kind);

        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                buf_commit(&b, b.cap - b.len + 1);
                _exit(0);
        }
        int st = 0;
        ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
           "%s: a commit past the reserved room aborts", kind);
}

int main(void) {
        test_truncate_commit(0, "heap");
        test_truncate_commit(BUF_SECURE, "secure");
        test_read_file();
        test_bounds(0, "heap");
        test_bounds(BUF_SECURE, "secure");
        test_growth();
        test_secure();
        return tap_done();
}
