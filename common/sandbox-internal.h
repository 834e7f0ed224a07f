/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-internal.h: code shared by the two sandbox backends (sandbox-seccomp.c and
 * sandbox-null.c). Not a public header: only those two files include it.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sandbox.h"

#define SANDBOX_STATUS_MAX 32768 /* /proc/self/status is ~1.5 KiB; bigger is not read */

static inline int sandbox_set_no_new_privs(void) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();
        return 0;
}

/* The value of "key:\t<number>" in the status text, or -ENOENT / -EBADMSG. */
static inline int sandbox_status_field(const char *text, const char *key, long *ret) {
        size_t klen = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, klen) != 0 || p[klen] != ':')
                        continue;
                char *end = NULL;
                errno = 0;
                long v = strtol(p + klen + 1, &end, 10);
                if (errno != 0 || end == p + klen + 1 || (*end != '\n' && *end != '\0'))
                        return -EBADMSG;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

/* Fills the /proc/self/status part of a report. */
static inline int sandbox_read_status(struct sandbox_report *rep) {
        char text[SANDBOX_STATUS_MAX];
        size_t len = 0;
        long nnp = 0, mode = 0, filters = -1;
        int r;

        _cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = read(fd, text + len, sizeof(text) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == sizeof(text) - 1)
                        return -E2BIG;
        }
        text[len] = '\0';

        r = sandbox_status_field(text, "NoNewPrivs", &nnp);
        if (r < 0)
                return r;
        r = sandbox_status_field(text, "Seccomp", &mode);
        if (r < 0)
                return r;
        r = sandbox_status_field(text, "Seccomp_filters", &filters);
        if (r < 0 && r != -ENOENT)
                return r;
        rep->no_new_privs = nnp == 1;
        rep->seccomp_mode = (int) mode;
        rep->seccomp_filters = (int) filters;
        return 0;
}
