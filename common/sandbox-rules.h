/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-rules.h: the allow-lists of the supervisor and of the CA signer, the one place they are
 * written (common/sandbox.h and docs/sandbox.md explain each group). Data only: included by
 * common/sandbox-build.c, which turns them into a seccomp program with libseccomp. That happens
 * at build time (common/sandbox-gen.c writes the programs into a C table that
 * common/sandbox-seccomp.c loads), and in test-sandbox, which checks that the table is what
 * libseccomp makes of these rules. The #ifdefs are those of the build the table is made for: the
 * generator is compiled with that build's compiler and flags.
 */
#pragma once

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

/* Not in musl's <sys/prctl.h>; glibc names anonymous mappings with it (Linux 5.17). */
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

enum sandbox_rule_action {
        SANDBOX_RULE_ALLOW = 0,
        SANDBOX_RULE_ENOSYS, /* fails with ENOSYS, whatever the filter's default action */
};

enum sandbox_cmp_op {
        SANDBOX_CMP_EQ = 1,    /* arg == value */
        SANDBOX_CMP_MASKED_EQ, /* (arg & mask) == value */
};

/* A value standing for the pid of the process that installs the filter (the signer's tgkill). */
#define SANDBOX_OWN_PID UINT64_C(0xfffffffffffffff1)

struct sandbox_cmp {
        unsigned arg;
        enum sandbox_cmp_op op;
        uint64_t mask;
        uint64_t value;
};

/* One rule: a syscall by libseccomp's name, an action, up to two argument comparisons (all must
 * hold). A name the native architecture does not have (open, poll, pipe, ... on aarch64) is
 * skipped; a name libseccomp does not know at all is a bug in this table and fails the build. */
struct sandbox_rule {
        const char *name;
        enum sandbox_rule_action action;
        unsigned n_args;
        struct sandbox_cmp args[2];
};

#define SR_PLAIN(n) \
        { .name = (n) }
#define SR_IF(n, a)                                     \
        {                                               \
                .name = (n), .n_args = 1, .args = { a } \
        }
#define SR_IF2(n, a, b)                                    \
        {                                                  \
                .name = (n), .n_args = 2, .args = { a, b } \
        }
#define SR_EQ(i, v) \
        { .arg = (i), .op = SANDBOX_CMP_EQ, .value = (uint64_t) (v) }
#define SR_MASKED(i, m, v) \
        { .arg = (i), .op = SANDBOX_CMP_MASKED_EQ, .mask = (uint64_t) (m), .value = (uint64_t) (v) }

/* The open flags that would create, truncate or open for writing. */
#define SR_OPEN_WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC)

/* clone: CLONE_THREAD set (a thread of this process, never a new process) and no namespace
 * flag. The flags are the first argument on both x86_64 and aarch64 (the CLONE_BACKWARDS
 * variants only swap the later tid/tls arguments). */
#define SR_CLONE_CHECKED_FLAGS                                                        \
        (CLONE_THREAD | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
         CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* The base: what both profiles allow, the supervisor and the CA signer (common/sandbox-build.c
 * adds it to each profile's own list below). */
static const struct sandbox_rule sandbox_base_rules[] = {
        /* Memory: malloc, the heap (wolfCrypt and the TLS module allocate), secure memory
         * (common/secmem). */
        SR_PLAIN("brk"),
        SR_PLAIN("munmap"),
        SR_PLAIN("mremap"),
        SR_PLAIN("madvise"),
        SR_PLAIN("mlock"),
        SR_PLAIN("munlock"),
        SR_PLAIN("memfd_secret"),
        SR_PLAIN("ftruncate"),
        SR_PLAIN("futex"),
        /* Files opened read-only (CA and configuration files; the signer's /dev/urandom), read,
         * closed. */
        SR_IF("openat", SR_MASKED(2, SR_OPEN_WRITE_FLAGS, 0)),
        SR_IF("open", SR_MASKED(1, SR_OPEN_WRITE_FLAGS, 0)),
        SR_PLAIN("read"),
        SR_PLAIN("close"),
        /* Random bytes (the signer's serial numbers and signatures, TLS). */
        SR_PLAIN("getrandom"),
        /* Leaving, signals (and abort() on a secmem canary failure), ids, time. */
        SR_PLAIN("exit"),
        SR_PLAIN("exit_group"),
        SR_PLAIN("rt_sigprocmask"),
        SR_PLAIN("rt_sigaction"),
        SR_PLAIN("rt_sigreturn"),
        SR_PLAIN("getpid"),
        SR_PLAIN("gettid"),
        SR_PLAIN("clock_gettime"),
#ifdef CLOUDTASER_ASAN
        /* Sanitizer run time only, never in the released build: ASan gives every new thread an
         * alternate signal stack (sigaltstack) and CHECK-fails without it. That is the only
         * addition test-sandbox needs under ASan in the supervisor; an ASan report under the
         * filter cannot fork the external symbolizer and prints raw addresses. */
        SR_PLAIN("sigaltstack"),
#endif
};

/* The supervisor's own, beyond the base. */
static const struct sandbox_rule sandbox_supervisor_rules[] = {
        /* Always allowed, without argument checks. */
        /* I/O on descriptors we already hold: logs to stderr, signalfd/timerfd reads, sockets,
         * the secrets memfd, CA and configuration files opened read-only. */
        SR_PLAIN("readv"),
        SR_PLAIN("pread64"),
        SR_PLAIN("write"),
        SR_PLAIN("writev"),
        SR_PLAIN("close_range"),
        SR_PLAIN("dup"),
        SR_PLAIN("dup2"),
        SR_PLAIN("dup3"),
        SR_PLAIN("lseek"),
        SR_PLAIN("fstat"),
        SR_PLAIN("newfstatat"),
        SR_PLAIN("stat"),
        SR_PLAIN("lstat"),
        SR_PLAIN("statx"),
        SR_PLAIN("access"),
        SR_PLAIN("faccessat"),
        SR_PLAIN("faccessat2"),
        /* Memory (beyond the base): thread stacks, the secrets memfd. */
        SR_PLAIN("mlock2"),
        SR_PLAIN("memfd_create"),
        /* Network (libcurl, wolfSSL, the resolver): sockets are created by the checked socket
         * rule below; these act on them. No bind/listen: a listening socket is made before the
         * filter (the sealed mode's unseal server, wrapper/unseal.h), which accept4 serves. */
        SR_PLAIN("accept4"),
        SR_PLAIN("connect"),
        SR_PLAIN("sendto"),
        SR_PLAIN("recvfrom"),
        SR_PLAIN("sendmsg"),
        SR_PLAIN("recvmsg"),
        SR_PLAIN("sendmmsg"),
        SR_PLAIN("recvmmsg"),
        SR_PLAIN("shutdown"),
        SR_PLAIN("getsockopt"),
        SR_PLAIN("setsockopt"),
        SR_PLAIN("getsockname"),
        SR_PLAIN("getpeername"),
        SR_PLAIN("pipe"),
        SR_PLAIN("pipe2"),
        SR_PLAIN("eventfd2"),
        SR_PLAIN("poll"),
        SR_PLAIN("ppoll"),
        SR_PLAIN("select"),
        SR_PLAIN("pselect6"),
        SR_PLAIN("epoll_create1"),
        SR_PLAIN("epoll_ctl"),
        SR_PLAIN("epoll_wait"),
        SR_PLAIN("epoll_pwait"),
        SR_PLAIN("epoll_pwait2"),
        /* Threads (libcurl's threaded resolver), created by the checked clone rule below. */
        SR_PLAIN("set_robust_list"),
        SR_PLAIN("rseq"),
        SR_PLAIN("set_tid_address"),
        SR_PLAIN("sched_yield"),
        SR_PLAIN("sched_getaffinity"),
        /* Signals: the signalfd loop, forwarding to the workload, raise/abort. */
        SR_PLAIN("signalfd"),
        SR_PLAIN("signalfd4"),
        SR_PLAIN("kill"),
        SR_PLAIN("tgkill"),
        SR_PLAIN("tkill"),
        SR_PLAIN("restart_syscall"),
        /* Time: timers of the loop (token renewal, polling), backoff sleeps. */
        SR_PLAIN("clock_getres"),
        SR_PLAIN("gettimeofday"),
        SR_PLAIN("time"),
        SR_PLAIN("clock_nanosleep"),
        SR_PLAIN("nanosleep"),
        SR_PLAIN("timerfd_create"),
        SR_PLAIN("timerfd_settime"),
        SR_PLAIN("timerfd_gettime"),
        /* Children and identity: reaping, pids, ids (read-only), capget for caps_report(). */
        SR_PLAIN("wait4"),
        SR_PLAIN("waitid"),
        SR_PLAIN("getppid"),
        SR_PLAIN("getuid"),
        SR_PLAIN("geteuid"),
        SR_PLAIN("getgid"),
        SR_PLAIN("getegid"),
        SR_PLAIN("getresuid"),
        SR_PLAIN("getresgid"),
        SR_PLAIN("getgroups"),
        SR_PLAIN("capget"),
        SR_PLAIN("uname"),
        SR_PLAIN("sysinfo"),
        SR_PLAIN("getrlimit"),

        /* With argument checks. */
        SR_IF("clone", SR_MASKED(0, SR_CLONE_CHECKED_FLAGS, CLONE_THREAD)),
        /* clone3 takes its flags in a struct in memory, which a filter cannot inspect. ENOSYS
         * (not EPERM, and not a kill even with SANDBOX_KILL_ON_VIOLATION) makes glibc fall back
         * to clone, which is checked above; musl only uses clone. */
        {.name = "clone3", .action = SANDBOX_RULE_ENOSYS},
        SR_IF("socket", SR_EQ(0, AF_UNIX)),
        SR_IF("socket", SR_EQ(0, AF_INET)),
        SR_IF("socket", SR_EQ(0, AF_INET6)),
#ifdef __GLIBC__
        /* glibc's getaddrinfo asks the kernel for the local addresses (RFC 3484 sorting) over
         * rtnetlink: socket + bind + sendto/recvmsg. musl does not. */
        SR_IF2("socket", SR_EQ(0, AF_NETLINK), SR_EQ(2, NETLINK_ROUTE)),
        SR_PLAIN("bind"),
#endif
        SR_IF("socketpair", SR_EQ(0, AF_UNIX)),
#ifdef __GLIBC__
        /* glibc may dlopen NSS modules (getaddrinfo with an nsswitch.conf naming them). */
        SR_PLAIN("mmap"),
        SR_PLAIN("mprotect"),
#else
        /* Static musl: nothing is ever loaded, so no new executable mapping (W^X). */
        SR_IF("mmap", SR_MASKED(2, PROT_EXEC, 0)),
        SR_IF("mprotect", SR_MASKED(2, PROT_EXEC, 0)),
#endif
        /* prctl: queries, thread/mapping names, and changes towards less privilege only. */
        SR_IF("prctl", SR_EQ(0, PR_GET_DUMPABLE)),
        SR_IF("prctl", SR_EQ(0, PR_GET_NO_NEW_PRIVS)),
        SR_IF("prctl", SR_EQ(0, PR_GET_SECCOMP)),
        SR_IF("prctl", SR_EQ(0, PR_CAPBSET_READ)),
        SR_IF("prctl", SR_EQ(0, PR_GET_NAME)),
        SR_IF("prctl", SR_EQ(0, PR_SET_NAME)),
        SR_IF("prctl", SR_EQ(0, PR_GET_KEEPCAPS)),
        SR_IF("prctl", SR_EQ(0, PR_GET_SECUREBITS)),
        SR_IF("prctl", SR_EQ(0, PR_SET_VMA)),
        SR_IF2("prctl", SR_EQ(0, PR_SET_DUMPABLE), SR_EQ(1, 0)),
        SR_IF2("prctl", SR_EQ(0, PR_SET_NO_NEW_PRIVS), SR_EQ(1, 1)),
        SR_IF2("prctl", SR_EQ(0, PR_CAP_AMBIENT), SR_EQ(1, PR_CAP_AMBIENT_IS_SET)),
        /* prlimit64: reading only (new limit NULL); setrlimit is not listed. */
        SR_IF("prlimit64", SR_EQ(2, 0)),
        SR_IF("fcntl", SR_EQ(1, F_GETFD)),
        SR_IF("fcntl", SR_EQ(1, F_SETFD)),
        SR_IF("fcntl", SR_EQ(1, F_GETFL)),
        SR_IF("fcntl", SR_EQ(1, F_SETFL)),
        SR_IF("fcntl", SR_EQ(1, F_DUPFD_CLOEXEC)),
        SR_IF("fcntl", SR_EQ(1, F_ADD_SEALS)),
        SR_IF("fcntl", SR_EQ(1, F_GET_SEALS)),
        /* ioctl: isatty() (TCGETS in glibc, TIOCGWINSZ in musl, also musl's stdio on stdout),
         * non-blocking mode and pending bytes on sockets. */
        SR_IF("ioctl", SR_MASKED(1, 0xffffffffu, TCGETS)),
        SR_IF("ioctl", SR_MASKED(1, 0xffffffffu, TIOCGWINSZ)),
        SR_IF("ioctl", SR_MASKED(1, 0xffffffffu, FIONBIO)),
        SR_IF("ioctl", SR_MASKED(1, 0xffffffffu, FIONREAD)),
};

/* The CA signer's own, beyond the base (operator/signer.h): one socket it already holds (fd 3),
 * and no new executable mapping. See common/sandbox.h for each entry. */
#define SANDBOX_SIGNER_SOCKET_FD 3

static const struct sandbox_rule sandbox_signer_rules[] = {
#ifdef CLOUDTASER_ASAN
        /* Sanitizer run time only. */
        SR_PLAIN("sched_yield"),
        SR_PLAIN("readlink"),
        SR_PLAIN("readlinkat"),
#endif
        SR_IF("write", SR_EQ(0, SANDBOX_SIGNER_SOCKET_FD)),
        SR_IF("recvfrom", SR_EQ(0, SANDBOX_SIGNER_SOCKET_FD)),
        SR_IF("sendto", SR_EQ(0, SANDBOX_SIGNER_SOCKET_FD)),
        SR_IF("recvmsg", SR_EQ(0, SANDBOX_SIGNER_SOCKET_FD)),
        SR_IF("sendmsg", SR_EQ(0, SANDBOX_SIGNER_SOCKET_FD)),
        /* wolfCrypt seeds its DRBG from /dev/urandom (this wolfSSL build has no getrandom
         * seed): the base's read-only open, read and close. Which file is Landlock's business
         * (the signer restricts itself to /dev/urandom with sandbox_restrict_files()); a filter
         * cannot read the path. read is allowed on any fd: the process holds only 0-3 and that
         * one. */
        /* abort(): a signal to itself only. */
        SR_IF("tgkill", SR_EQ(0, SANDBOX_OWN_PID)),
        /* No new executable mapping, whatever the C library. */
        SR_IF("mmap", SR_MASKED(2, PROT_EXEC, 0)),
        SR_IF("mprotect", SR_MASKED(2, PROT_EXEC, 0)),
#ifdef CLOUDTASER_ASAN
        /* The sanitizers' reports (the released signer never writes to stderr). */
        SR_IF("write", SR_EQ(0, 2)),
        SR_IF("writev", SR_EQ(0, 2)),
#endif
};
