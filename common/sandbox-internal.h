/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-internal.h: code shared by the two sandbox backends (sandbox-seccomp.c and
 * sandbox-null.c). Not a public header: only those two files include it.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sandbox.h"

/* /proc/self/status is ~1.5 KiB; bigger is not read. Two pages of stack: with
 * -fstack-clash-protection every page of the buffer is touched (faulted in) on entry. */
#define SANDBOX_STATUS_MAX 8192

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

/*
 * Landlock (no library: three system calls, the same numbers on every architecture of the
 * unified table). Defined here rather than taken from <linux/landlock.h>, which older kernel
 * headers (the musl toolchain's) lack.
 */
#define SANDBOX_LANDLOCK_CREATE_RULESET 444
#define SANDBOX_LANDLOCK_ADD_RULE 445
#define SANDBOX_LANDLOCK_RESTRICT_SELF 446
#define SANDBOX_LANDLOCK_VERSION (1u << 0)
#define SANDBOX_LANDLOCK_RULE_PATH_BENEATH 1
#define SANDBOX_LANDLOCK_READ_FILE (1ull << 2)

struct sandbox_landlock_ruleset_attr {
        uint64_t handled_access_fs;
};

struct sandbox_landlock_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));

/* Every filesystem right of a Landlock ABI version: v1 has bits 0-12 (execute, write, read,
 * read_dir, remove and make_*), v2 adds refer (13), v3 truncate (14), v5 ioctl_dev (15). */
static inline uint64_t sandbox_landlock_fs_rights(long abi) {
        uint64_t all = (1ull << 13) - 1;
        if (abi >= 2)
                all |= 1ull << 13;
        if (abi >= 3)
                all |= 1ull << 14;
        if (abi >= 5)
                all |= 1ull << 15;
        return all;
}

static inline int sandbox_landlock_read_only(const char *const *paths, size_t n) {
        long abi = syscall(SANDBOX_LANDLOCK_CREATE_RULESET, NULL, 0, SANDBOX_LANDLOCK_VERSION);
        if (abi < 0)
                return errno == ENOSYS || errno == EOPNOTSUPP ? -EOPNOTSUPP : negative_errno();
        struct sandbox_landlock_ruleset_attr attr = {.handled_access_fs =
                                                             sandbox_landlock_fs_rights(abi)};
        _cleanup_close_ int ruleset =
                (int) syscall(SANDBOX_LANDLOCK_CREATE_RULESET, &attr, sizeof(attr), 0);
        if (ruleset < 0)
                return negative_errno();
        for (size_t i = 0; i < n; i++) {
                /* O_PATH: a handle on the file for the rule, not an open of its contents. */
                _cleanup_close_ int fd = open(paths[i], O_PATH | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                struct sandbox_landlock_path_beneath_attr rule = {
                        .allowed_access = SANDBOX_LANDLOCK_READ_FILE, .parent_fd = fd};
                if (syscall(SANDBOX_LANDLOCK_ADD_RULE, ruleset, SANDBOX_LANDLOCK_RULE_PATH_BENEATH,
                            &rule, 0) < 0)
                        return negative_errno();
        }
        /* Needs NO_NEW_PRIVS (or CAP_SYS_ADMIN); the caller has set it. */
        if (syscall(SANDBOX_LANDLOCK_RESTRICT_SELF, ruleset, 0) < 0)
                return negative_errno();
        return 0;
}
