/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tap-child.h: TAP results from a forked child, for tests of irreversible process changes
 * (capabilities, seccomp, no_new_privs). Include after tests/tap.h (header-only, like it: the
 * TAP counters are per test executable).
 *
 *   static void scenario(void) { c_ok(cond, "..."); c_skip("why"); c_diag("..."); }
 *   run_child("name", scenario);   // each c_ok() becomes an ok() in the parent, then the
 *                                  // child's end is checked (exit 0; SIGSYS is explained)
 *
 * The child reports one record per line through a pipe and leaves with _exit(): nothing of the
 * parent's stdio or atexit handlers (or LeakSanitizer's exit check) runs twice.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/macro.h"
#include "tests/tap.h"

static int tap_child_fd = -1;

_printf_(2, 0) static inline void c_record(char kind, const char *fmt, va_list ap) {
        char line[512];
        line[0] = kind;
        int n = vsnprintf(line + 1, sizeof(line) - 2, fmt, ap);
        size_t len = 1 + (n < 0 ? 0 : MIN((size_t) n, sizeof(line) - 3));
        for (size_t i = 1; i < len; i++)
                if (line[i] == '\n')
                        line[i] = ' ';
        line[len++] = '\n';
        (void) !write(tap_child_fd, line, len);
}

_printf_(2, 3) static inline bool c_ok(bool cond, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        c_record(cond ? '1' : '0', fmt, ap);
        va_end(ap);
        return cond;
}

_printf_(1, 2) static inline void c_skip(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        c_record('s', fmt, ap);
        va_end(ap);
}

_printf_(1, 2) static inline void c_diag(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        c_record('#', fmt, ap);
        va_end(ap);
}

static inline void run_child(const char *name, void (*fn)(void)) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                ok(false, "%s: pipe: %s", name, strerror(errno));
                return;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
                ok(false, "%s: fork: %s", name, strerror(errno));
                close(p[0]);
                close(p[1]);
                return;
        }
        if (pid == 0) {
                close(p[0]);
                tap_child_fd = p[1];
                fn();
                _exit(0);
        }
        close(p[1]);
        static char buf[65536];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || (len += (size_t) n) == sizeof(buf) - 1)
                        break;
        }
        close(p[0]);
        buf[len] = '\0';
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
                *nl = '\0';
                if (line[0] == '#')
                        diag("%s: %s", name, line + 1);
                else if (line[0] == 's')
                        skip(1, line + 1);
                else
                        ok(line[0] == '1', "%s: %s", name, line + 1);
        }
        if (WIFSIGNALED(status))
                diag("%s: child killed by signal %d%s", name, WTERMSIG(status),
                     WTERMSIG(status) == SIGSYS ? " (SIGSYS: a syscall missing from the allow-list)"
                                                : "");
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child exited cleanly (status 0x%x)",
           name, (unsigned) status);
}
