/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/child: see child.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/secmem.h"
#include "wrapper/child.h"

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* A memfd_secret file can be sized only once (ftruncate again is EINVAL), so it is created with
 * room to grow (for rotation by signal) and the records are followed by zeros. */
static size_t secret_fd_capacity(size_t n, bool writable) {
        size_t page = 4096, want = writable ? MAX(2 * n, (size_t) 16384) : MAX(n, (size_t) 1);
        want += CHILD_MEMFD_HEADER;
        return (want + page - 1) / page * page;
}

/*
 * Publishes the records under the header's generation counter, a seqlock shared with the
 * workload through the mapping (the kernel's seqcount, across processes):
 *   generation + 1 (odd: being rewritten), release fence, records and length, zeros after them,
 *   then generation + 2 (even) with release semantics.
 * A reader that saw the same even generation before and after its copy (acquire on the first
 * load, an acquire fence before the second) has one consistent set; else it copies again. The
 * supervisor never waits for readers, and a reader never blocks the supervisor.
 */
static int fill_secret_fd(int fd, const struct secret_set *s, size_t cap) {
        size_t n = s->records.len;
        if (cap < CHILD_MEMFD_HEADER || n > cap - CHILD_MEMFD_HEADER)
                return -E2BIG;
        char *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        uint64_t *gen = (uint64_t *) (void *) (p + 8), *len = (uint64_t *) (void *) (p + 16);
        uint64_t g = __atomic_load_n(gen, __ATOMIC_RELAXED);
        if (g & 1)
                g++; /* an update that never finished (cannot happen: one writer) */
        memcpy(p, CHILD_MEMFD_MAGIC, 8);
        __atomic_store_n(gen, g + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(len, (uint64_t) n, __ATOMIC_RELAXED);
        if (n)
                memcpy(p + CHILD_MEMFD_HEADER, s->records.data, n);
        /* No trace of longer old values. */
        explicit_bzero(p + CHILD_MEMFD_HEADER + n, cap - CHILD_MEMFD_HEADER - n);
        __atomic_store_n(gen, g + 2, __ATOMIC_RELEASE);
        (void) munmap(p, cap);
        return 0;
}

/* Sizes and fills a new memfd; seals it unless it is a memfd_secret file. */
static int memfd_prepare(int fd, bool secret, const struct secret_set *s, size_t cap,
                         bool writable) {
        /* Sized once, filled through a mapping, rewritten in place on rotation: a reader's
         * mapping never loses its pages (no truncation, no SIGBUS). */
        int r = ftruncate(fd, (off_t) cap) < 0 ? negative_errno() : fill_secret_fd(fd, s, cap);
        if (r >= 0 && !secret) {
                unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
                if (!writable)
                        seals |= F_SEAL_WRITE;
                if (fcntl(fd, F_ADD_SEALS, seals) < 0)
                        r = negative_errno();
        }
        return r;
}

int child_memfd_create(const struct secret_set *s, bool writable, int *ret_fd, bool *ret_secret) {
        size_t cap = secret_fd_capacity(s->records.len, writable);
        int fd = (int) syscall(SYS_memfd_secret, (unsigned) O_CLOEXEC);
        if (fd >= 0) {
                if (memfd_prepare(fd, true, s, cap, writable) >= 0) {
                        *ret_fd = fd;
                        *ret_secret = true;
                        return 0;
                }
                /* Typically RLIMIT_MEMLOCK (secretmem pages are locked): a sealed memfd then. */
                (void) close(fd);
        }
        fd = memfd_create("cloudtaser-secrets", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        int r = memfd_prepare(fd, false, s, cap, writable);
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        *ret_fd = fd;
        *ret_secret = false;
        return 0;
}

int child_memfd_update(int fd, bool is_secret, const struct secret_set *s) {
        struct stat st;
        (void) is_secret;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        return fill_secret_fd(fd, s, (size_t) st.st_size);
}

/* Whether the records hold a variable named by the first n bytes of name. */
static bool records_have(const struct secret_set *s, const char *name, size_t n) {
        for (size_t off = 0; off < s->records.len;) {
                const char *rec = s->records.data + off;
                if (strncmp(rec, name, n) == 0 && rec[n] == '=')
                        return true;
                off += strlen(rec) + 1;
        }
        return false;
}

/* An inherited variable the workload must not get: the wrapper's own, and (with env delivery)
 * one a secret replaces: getenv() returns the first match, so a leftover PGPASSWORD=changeme
 * from the pod spec would hide the secret. */
static bool drop_inherited(const char *e, const struct secret_set *s, bool with_secrets) {
        const char *eq = strchr(e, '=');
        if (!eq || config_is_wrapper_variable(e))
                return true;
        return with_secrets && records_have(s, e, (size_t) (eq - e));
}

int child_env_build(char *const *environ_, const struct secret_set *s, bool with_secrets, int memfd,
                    struct child_env *ret) {
        size_t n = 0, bytes = 0;
        char fdvar[48] = "";

        if (memfd >= 0)
                (void) snprintf(fdvar, sizeof(fdvar), "CLOUDTASER_SECRET_FD=%d", memfd);
        for (char *const *e = environ_; e && *e; e++)
                if (!drop_inherited(*e, s, with_secrets)) {
                        n++;
                        bytes += strlen(*e) + 1;
                }
        if (with_secrets) {
                n += s->n;
                bytes += s->records.len;
        }
        if (fdvar[0]) {
                n++;
                bytes += strlen(fdvar) + 1;
        }

        char **envp;
        size_t arr = (n + 1) * sizeof(char *);
        int r = secmem_alloc(arr + bytes + 1, (void **) &envp);
        if (r < 0)
                return r;
        char *o = (char *) envp + arr;
        size_t i = 0;
        for (char *const *e = environ_; e && *e; e++)
                if (!drop_inherited(*e, s, with_secrets)) {
                        size_t l = strlen(*e) + 1;
                        memcpy(o, *e, l);
                        envp[i++] = o;
                        o += l;
                }
        if (with_secrets)
                for (size_t off = 0; off < s->records.len;) {
                        const char *rec = s->records.data + off;
                        size_t l = strlen(rec) + 1;
                        memcpy(o, rec, l);
                        envp[i++] = o;
                        o += l;
                        off += l;
                }
        if (fdvar[0]) {
                size_t l = strlen(fdvar) + 1;
                memcpy(o, fdvar, l);
                envp[i++] = o;
        }
        envp[i] = NULL;
        *ret = (struct child_env){.envp = envp, .n = i};
        return 0;
}

void child_env_done(struct child_env *e) {
        if (!e)
                return;
        secmem_free(e->envp);
        *e = (struct child_env){};
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Marks every descriptor above stderr close-on-exec: what the wrapper inherited from its parent
 * and what libcurl opened without SOCK_CLOEXEC (its sockets and resolver socketpair) must not
 * reach the workload. close_range(2) does it in one call (Linux 5.11); else walk /proc/self/fd. */
static void cloexec_all_above_stderr(void) {
        if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
                return;
        for (int fd = 3; fd < 65536; fd++) {
                int fl = fcntl(fd, F_GETFD);
                if (fl >= 0 && !(fl & FD_CLOEXEC))
                        (void) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
}

/* With a terminal on stdin whose foreground group is ours (an interactive pod), the workload's
 * new group must become the foreground one, or its first read of the terminal stops it with
 * SIGTTIN (shells do the same for each job). The child cannot do it itself (posix_spawn runs no
 * code of ours in it), so it is done here, after the exec: SIGTTOU is blocked in the supervisor,
 * so tcsetpgrp() works; a workload that read the terminal in between was stopped, and SIGCONT
 * lets it go on. */
static void hand_over_terminal(pid_t pid) {
        if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
                return;
        if (tcsetpgrp(STDIN_FILENO, pid) == 0)
                (void) kill(-pid, SIGCONT);
}

pid_t child_spawn(char *const *argv, const struct child_env *env, int memfd) {
        posix_spawnattr_t attr;
        posix_spawn_file_actions_t fa;
        sigset_t empty, all;
        pid_t pid = -1;
        int r;

        (void) sigemptyset(&empty);
        (void) sigfillset(&all);
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                (void) posix_spawnattr_destroy(&attr);
                return -r;
        }
        /* The supervisor blocks every signal (it reads them from a signalfd) and may ignore some:
         * the workload starts with an empty mask and every disposition at its default. */
        r = posix_spawnattr_setsigmask(&attr, &empty);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        /* A process group of its own (setpgid(0, 0) in the child before execve): whatever the
         * workload starts (a `sh -c` entrypoint's children, a forking server) stays in it, so a
         * restart can stop the whole tree with kill(-pgid). Not setsid(): that would take the
         * controlling terminal of an interactive pod away from it. */
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                            POSIX_SPAWN_SETPGROUP);
        /* The memfd is close-on-exec everywhere except across this one spawn (the supervisor
         * starts nothing else, so no other exec can inherit it in between). posix_spawn's
         * adddup2(fd, fd) would do the same in the child, but older C libraries ignore it. */
        cloexec_all_above_stderr();
        if (r == 0 && memfd >= 0 && fcntl(memfd, F_SETFD, 0) < 0)
                r = errno;
        if (r == 0)
                r = strchr(argv[0], '/') ? posix_spawn(&pid, argv[0], &fa, &attr, argv, env->envp)
                                         : posix_spawnp(&pid, argv[0], &fa, &attr, argv, env->envp);
        if (memfd >= 0)
                (void) fcntl(memfd, F_SETFD, FD_CLOEXEC);
        if (r == 0)
                hand_over_terminal(pid);
        (void) posix_spawn_file_actions_destroy(&fa);
        (void) posix_spawnattr_destroy(&attr);
        return r == 0 ? pid : -r;
}
