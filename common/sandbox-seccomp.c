/* SPDX-License-Identifier: Apache-2.0 */
/* The seccomp sandbox backend (libseccomp). The contract and the reasons for each group of the
 * allow-list are in common/sandbox.h and docs/sandbox.md. */
#include "common/sandbox.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "common/sandbox-internal.h"

/* Not in musl's <sys/prctl.h>; glibc names anonymous mappings with it (Linux 5.17). */
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

static unsigned installed_rules;
static bool installed_kill;

static void seccomp_releasep(scmp_filter_ctx *p) {
        if (*p)
                seccomp_release(*p);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)

/*
 * Always allowed, without argument checks. Grouped as in docs/sandbox.md. A name the native
 * architecture does not have (open, poll, pipe, ... on aarch64) is skipped; a name libseccomp
 * does not know at all is a bug in this table and fails the whole filter (-EINVAL).
 */
static const char *const allow_plain[] = {
        /* I/O on descriptors we already hold: logs to stderr, signalfd/timerfd reads, sockets,
         * the secrets memfd, CA and configuration files opened read-only. */
        "read",
        "readv",
        "pread64",
        "write",
        "writev",
        "close",
        "close_range",
        "dup",
        "dup2",
        "dup3",
        "lseek",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "access",
        "faccessat",
        "faccessat2",
        /* Memory: malloc, thread stacks, secure memory (common/secmem), the secrets memfd. */
        "brk",
        "munmap",
        "mremap",
        "madvise",
        "mlock",
        "mlock2",
        "munlock",
        "memfd_secret",
        "memfd_create",
        "ftruncate",
        /* Network (libcurl, wolfSSL, the resolver): sockets are created by the checked socket
         * rule below; these act on them. No bind/listen: a listening socket is made before the
         * filter (the sealed mode's unseal server, wrapper/unseal.h), which accept4 serves. */
        "accept4",
        "connect",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "shutdown",
        "getsockopt",
        "setsockopt",
        "getsockname",
        "getpeername",
        "pipe",
        "pipe2",
        "eventfd2",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        /* Threads (libcurl's threaded resolver), created by the checked clone rule below. */
        "futex",
        "set_robust_list",
        "rseq",
        "set_tid_address",
        "sched_yield",
        "sched_getaffinity",
        "exit",
        "exit_group",
        /* Signals: the signalfd loop, forwarding to the workload, raise/abort. */
        "rt_sigprocmask",
        "rt_sigaction",
        "rt_sigreturn",
        "signalfd",
        "signalfd4",
        "kill",
        "tgkill",
        "tkill",
        "restart_syscall",
        /* Time: timers of the loop (token renewal, polling), backoff sleeps. */
        "clock_gettime",
        "clock_getres",
        "gettimeofday",
        "time",
        "clock_nanosleep",
        "nanosleep",
        "timerfd_create",
        "timerfd_settime",
        "timerfd_gettime",
        /* Children and identity: reaping, pids, ids (read-only), capget for caps_report(). */
        "wait4",
        "waitid",
        "getpid",
        "getppid",
        "gettid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getresuid",
        "getresgid",
        "getgroups",
        "capget",
        "uname",
        "sysinfo",
        "getrandom",
        "getrlimit",
#ifdef CLOUDTASER_ASAN
        /* Sanitizer run time only, never in the released build: ASan gives every new thread an
         * alternate signal stack (sigaltstack) and CHECK-fails without it. That is the only
         * addition test-sandbox needs under ASan; an ASan report under the filter cannot fork
         * the external symbolizer and prints raw addresses. */
        "sigaltstack",
#endif
};

/* Resolves a syscall name for the native architecture: >= 0, or -ENOENT when the architecture
 * does not have it (skip), or -EINVAL when libseccomp does not know the name (a table bug). */
static int resolve(const char *name) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return -EINVAL;
        return nr < 0 ? -ENOENT : nr;
}

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_args,
               const struct scmp_arg_cmp *args, unsigned *count) {
        int nr = resolve(name);
        if (nr == -ENOENT)
                return 0;
        if (nr < 0)
                return nr;
        int r = seccomp_rule_add_array(ctx, action, nr, n_args, args);
        if (r < 0)
                return r;
        (*count)++;
        return 0;
}

/* Argument comparisons with every field named (libseccomp's SCMP_A* macros leave datum_b out,
 * which -Wmissing-field-initializers rejects). */
#define ARG_EQ(n, v)            \
        ((struct scmp_arg_cmp){ \
                .arg = (n), .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t) (v), .datum_b = 0})
#define ARG_MASKED_EQ(n, m, v)                                \
        ((struct scmp_arg_cmp){.arg = (n),                    \
                               .op = SCMP_CMP_MASKED_EQ,      \
                               .datum_a = (scmp_datum_t) (m), \
                               .datum_b = (scmp_datum_t) (v)})

#define ALLOW_IF(ctx, name, count, ...)                                                          \
        add(ctx, SCMP_ACT_ALLOW, name, ELEMENTSOF(((const struct scmp_arg_cmp[]){__VA_ARGS__})), \
            (const struct scmp_arg_cmp[]){__VA_ARGS__}, count)

/* The open flags that would create, truncate or open for writing. */
#define OPEN_WRITE_FLAGS ((scmp_datum_t) (O_ACCMODE | O_CREAT | O_TRUNC))

/* clone: CLONE_THREAD set (a thread of this process, never a new process) and no namespace
 * flag. The flags are the first argument on both x86_64 and aarch64 (the CLONE_BACKWARDS
 * variants only swap the later tid/tls arguments). */
#define CLONE_CHECKED_FLAGS                                                            \
        ((scmp_datum_t) (CLONE_THREAD | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | \
                         CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET))

static int add_checked(scmp_filter_ctx ctx, unsigned *count) {
        int r;

        r = ALLOW_IF(ctx, "clone", count,
                     ARG_MASKED_EQ(0, CLONE_CHECKED_FLAGS, (scmp_datum_t) CLONE_THREAD));
        if (r < 0)
                return r;
        /* clone3 takes its flags in a struct in memory, which a filter cannot inspect. ENOSYS
         * (not EPERM, and not a kill even with SANDBOX_KILL_ON_VIOLATION) makes glibc fall back
         * to clone, which is checked above; musl only uses clone. */
        r = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, count);
        if (r < 0)
                return r;

        r = ALLOW_IF(ctx, "openat", count, ARG_MASKED_EQ(2, OPEN_WRITE_FLAGS, 0));
        if (r >= 0)
                r = ALLOW_IF(ctx, "open", count, ARG_MASKED_EQ(1, OPEN_WRITE_FLAGS, 0));
        if (r < 0)
                return r;

        static const int domains[] = {AF_UNIX, AF_INET, AF_INET6};
        for (size_t i = 0; i < ELEMENTSOF(domains); i++) {
                r = ALLOW_IF(ctx, "socket", count, ARG_EQ(0, (scmp_datum_t) domains[i]));
                if (r < 0)
                        return r;
        }
#ifdef __GLIBC__
        /* glibc's getaddrinfo asks the kernel for the local addresses (RFC 3484 sorting) over
         * rtnetlink: socket + bind + sendto/recvmsg. musl does not. */
        r = ALLOW_IF(ctx, "socket", count, ARG_EQ(0, (scmp_datum_t) AF_NETLINK),
                     ARG_EQ(2, (scmp_datum_t) NETLINK_ROUTE));
        if (r >= 0)
                r = add(ctx, SCMP_ACT_ALLOW, "bind", 0, NULL, count);
        if (r < 0)
                return r;
#endif
        r = ALLOW_IF(ctx, "socketpair", count, ARG_EQ(0, (scmp_datum_t) AF_UNIX));
        if (r < 0)
                return r;

#ifdef __GLIBC__
        /* glibc may dlopen NSS modules (getaddrinfo with an nsswitch.conf naming them). */
        r = add(ctx, SCMP_ACT_ALLOW, "mmap", 0, NULL, count);
        if (r >= 0)
                r = add(ctx, SCMP_ACT_ALLOW, "mprotect", 0, NULL, count);
#else
        /* Static musl: nothing is ever loaded, so no new executable mapping (W^X). */
        r = ALLOW_IF(ctx, "mmap", count, ARG_MASKED_EQ(2, (scmp_datum_t) PROT_EXEC, 0));
        if (r >= 0)
                r = ALLOW_IF(ctx, "mprotect", count, ARG_MASKED_EQ(2, (scmp_datum_t) PROT_EXEC, 0));
#endif
        if (r < 0)
                return r;

        /* prctl: queries, thread/mapping names, and changes towards less privilege only. */
        static const int prctl_any[] = {PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP,
                                        PR_CAPBSET_READ, PR_GET_NAME,         PR_SET_NAME,
                                        PR_GET_KEEPCAPS, PR_GET_SECUREBITS,   PR_SET_VMA};
        for (size_t i = 0; i < ELEMENTSOF(prctl_any); i++) {
                r = ALLOW_IF(ctx, "prctl", count, ARG_EQ(0, (scmp_datum_t) prctl_any[i]));
                if (r < 0)
                        return r;
        }
        r = ALLOW_IF(ctx, "prctl", count, ARG_EQ(0, (scmp_datum_t) PR_SET_DUMPABLE), ARG_EQ(1, 0));
        if (r >= 0)
                r = ALLOW_IF(ctx, "prctl", count, ARG_EQ(0, (scmp_datum_t) PR_SET_NO_NEW_PRIVS),
                             ARG_EQ(1, 1));
        if (r >= 0)
                r = ALLOW_IF(ctx, "prctl", count, ARG_EQ(0, (scmp_datum_t) PR_CAP_AMBIENT),
                             ARG_EQ(1, (scmp_datum_t) PR_CAP_AMBIENT_IS_SET));
        if (r < 0)
                return r;

        /* prlimit64: reading only (new limit NULL); setrlimit is not listed. */
        r = ALLOW_IF(ctx, "prlimit64", count, ARG_EQ(2, 0));
        if (r < 0)
                return r;

        static const int fcntl_cmds[] = {F_GETFD,         F_SETFD,     F_GETFL,    F_SETFL,
                                         F_DUPFD_CLOEXEC, F_ADD_SEALS, F_GET_SEALS};
        for (size_t i = 0; i < ELEMENTSOF(fcntl_cmds); i++) {
                r = ALLOW_IF(ctx, "fcntl", count, ARG_EQ(1, (scmp_datum_t) fcntl_cmds[i]));
                if (r < 0)
                        return r;
        }

        /* ioctl: isatty() (TCGETS in glibc, TIOCGWINSZ in musl, also musl's stdio on stdout),
         * non-blocking mode and pending bytes on sockets. */
        static const unsigned long ioctls[] = {TCGETS, TIOCGWINSZ, FIONBIO, FIONREAD};
        for (size_t i = 0; i < ELEMENTSOF(ioctls); i++) {
                r = ALLOW_IF(ctx, "ioctl", count,
                             ARG_MASKED_EQ(1, 0xffffffffu, (scmp_datum_t) ioctls[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The attributes every filter of this module has. */
static int set_attributes(scmp_filter_ctx ctx, uint32_t deny) {
        int r;

        /* NO_NEW_PRIVS is the caller's explicit step (sandbox_no_new_privs()), not a side effect;
         * TSYNC puts every thread under the filter; a foreign ABI gets the same answer as an
         * unlisted call; API_SYSRAWRC returns the kernel's errno instead of -ECANCELED. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
        return r < 0 ? r : 0;
}

static int build_supervisor(scmp_filter_ctx ctx, unsigned *count) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(allow_plain); i++) {
                r = add(ctx, SCMP_ACT_ALLOW, allow_plain[i], 0, NULL, count);
                if (r < 0)
                        return r;
        }
        return add_checked(ctx, count);
}

int sandbox_no_new_privs(void) {
        return sandbox_set_no_new_privs();
}

bool sandbox_is_supported(void) {
        if (seccomp_arch_native() == 0 || seccomp_api_get() < 2)
                return false;
        /* With filter support the kernel rejects the NULL program with EFAULT; without it, the
         * mode itself is EINVAL. Nothing is installed either way. */
        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
                return false;
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) < 0 && errno == EFAULT;
}

/*
 * The CA signer's allow-list (operator/signer.h): one socket it already holds (fd 3), memory,
 * getrandom, and leaving. See common/sandbox.h for each entry.
 */
#define SIGNER_SOCKET_FD 3

static const char *const signer_plain[] = {
        /* Memory: the heap (wolfCrypt and the TLS module allocate), common/secmem. */
        "brk",
        "munmap",
        "mremap",
        "madvise",
        "mlock",
        "munlock",
        "memfd_secret",
        "ftruncate",
        "close",
        "futex",
        /* Random bytes for serial numbers and signatures. */
        "getrandom",
        /* Leaving, and abort() on a secmem canary failure. */
        "exit",
        "exit_group",
        "rt_sigprocmask",
        "rt_sigaction",
        "rt_sigreturn",
        "getpid",
        "gettid",
        "clock_gettime",
#ifdef CLOUDTASER_ASAN
        /* Sanitizer run time only (see the supervisor's list). */
        "sigaltstack",
        "sched_yield",
        "readlink",
        "readlinkat",
#endif
};

static int build_signer(scmp_filter_ctx ctx, unsigned *count) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(signer_plain); i++) {
                r = add(ctx, SCMP_ACT_ALLOW, signer_plain[i], 0, NULL, count);
                if (r < 0)
                        return r;
        }
        static const char *const on_socket[] = {"write", "recvfrom", "sendto", "recvmsg",
                                                "sendmsg"};
        for (size_t i = 0; i < ELEMENTSOF(on_socket); i++) {
                r = ALLOW_IF(ctx, on_socket[i], count, ARG_EQ(0, SIGNER_SOCKET_FD));
                if (r < 0)
                        return r;
        }
        /* wolfCrypt seeds its DRBG from /dev/urandom (this wolfSSL build has no getrandom
         * seed): open read-only, read, close. Which file is Landlock's business (the signer
         * restricts itself to /dev/urandom with sandbox_restrict_files()); a filter cannot read
         * the path. read is allowed on any fd: the process holds only 0-3 and that one. */
        r = ALLOW_IF(ctx, "openat", count, ARG_MASKED_EQ(2, OPEN_WRITE_FLAGS, 0));
        if (r >= 0)
                r = ALLOW_IF(ctx, "open", count, ARG_MASKED_EQ(1, OPEN_WRITE_FLAGS, 0));
        if (r >= 0)
                r = add(ctx, SCMP_ACT_ALLOW, "read", 0, NULL, count);
        /* abort(): a signal to itself only. */
        if (r >= 0)
                r = ALLOW_IF(ctx, "tgkill", count, ARG_EQ(0, (scmp_datum_t) getpid()));
        /* No new executable mapping, whatever the C library. */
        if (r >= 0)
                r = ALLOW_IF(ctx, "mmap", count, ARG_MASKED_EQ(2, (scmp_datum_t) PROT_EXEC, 0));
        if (r >= 0)
                r = ALLOW_IF(ctx, "mprotect", count, ARG_MASKED_EQ(2, (scmp_datum_t) PROT_EXEC, 0));
#ifdef CLOUDTASER_ASAN
        /* The sanitizers' reports (the released signer never writes to stderr). */
        if (r >= 0)
                r = ALLOW_IF(ctx, "write", count, ARG_EQ(0, STDERR_FILENO));
        if (r >= 0)
                r = ALLOW_IF(ctx, "writev", count, ARG_EQ(0, STDERR_FILENO));
#endif
        return r;
}

static int apply(unsigned flags, int (*builder)(scmp_filter_ctx, unsigned *)) {
        unsigned count = 0;
        int r;

        if (flags & ~(unsigned) SANDBOX_KILL_ON_VIOLATION)
                return -EINVAL;
        r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
        if (r < 0)
                return negative_errno();
        if (r != 1)
                return -EACCES;
        if (!sandbox_is_supported())
                return -EOPNOTSUPP;

        uint32_t deny =
                (flags & SANDBOX_KILL_ON_VIOLATION) ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO(EPERM);
        _cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(deny);
        if (!ctx)
                return -ENOMEM;
        r = set_attributes(ctx, deny);
        if (r < 0)
                return r;
        r = builder(ctx, &count);
        if (r < 0)
                return r;
        r = seccomp_load(ctx);
        if (r < 0)
                return r;
        installed_rules = count;
        installed_kill = flags & SANDBOX_KILL_ON_VIOLATION;
        return 0;
}

int sandbox_apply_supervisor_filter(unsigned flags) {
        return apply(flags, build_supervisor);
}

int sandbox_apply_signer_filter(unsigned flags) {
        return apply(flags, build_signer);
}

int sandbox_restrict_files(const char *const *paths, size_t n) {
        if (n && !paths)
                return -EINVAL;
        return sandbox_landlock_read_only(paths, n);
}

int sandbox_report(struct sandbox_report *ret) {
        struct sandbox_report rep = {
                .backend = "seccomp",
                .rules = installed_rules,
                .kill_on_violation = installed_kill,
        };
        int r = sandbox_read_status(&rep);
        if (r < 0)
                return r;
        *ret = rep;
        return 0;
}
