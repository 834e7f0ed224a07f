/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox: PR_SET_NO_NEW_PRIVS, the seccomp allow-lists of the supervisor and of the CA signer,
 * and Landlock read-only files.
 *
 * Two backends behind this header (conventions: one library, one module):
 *   common/sandbox-seccomp.c  the real one: loads seccomp programs made at build time from the
 *                             rules of common/sandbox-rules.h by libseccomp (common/sandbox-gen.c
 *                             through common/sandbox-build.c, the only files including
 *                             <seccomp.h>; docs/sandbox.md), so no binary contains libseccomp;
 *   common/sandbox-null.c     installs nothing and says so (sandbox_is_supported() is false,
 *                             sandbox_apply_supervisor_filter() returns -EOPNOTSUPP), for builds
 *                             and tests without seccomp. Never linked into libcommon.a.
 *
 * Order (conventions, rule 14): caps_drop_except() (common/caps.h), then sandbox_no_new_privs(),
 * then sandbox_apply_supervisor_filter() last. All three are irreversible for the process.
 *
 * Who gets filtered: only the supervisor. A seccomp filter is inherited by every child created
 * afterwards (fork, clone, posix_spawn) and survives execve(2), so the supervisor installs it
 * AFTER posix_spawn() has started the workload; the workload never runs under it. For the same
 * reason there is deliberately no "allow spawning" option: musl's posix_spawn() is
 * clone(CLONE_VM|CLONE_VFORK) + execve() in the child, and a child started after the filter would
 * run the workload under the supervisor's allow-list, which both breaks the workload and gives
 * the supervisor nothing. A supervisor that must start workloads again later (rotation by
 * restart) does not install the filter or NO_NEW_PRIVS at all (see common/caps.h for the
 * capability side of that caveat).
 *
 * The allow-list (docs/sandbox.md explains each group) is exactly what the supervisor loop needs:
 * signalfd/timerfd/epoll, reaping (wait4/waitid), signalling (kill/tgkill), secure memory
 * (mmap/mprotect/madvise/mlock/memfd_secret), memfd_create+seals for the secrets memfd, logging
 * with write(2), and HTTPS through common/http (libcurl + wolfSSL + libcurl's threaded resolver:
 * sockets, poll, threads, futexes, read-only opens of CA files, /etc/hosts, /etc/resolv.conf).
 * Arguments are checked where a syscall would otherwise be too broad:
 *   clone     only with CLONE_THREAD and no CLONE_NEW* flag: threads, never processes;
 *   clone3    fails with ENOSYS (its flags live in memory a filter cannot read; the C libraries
 *             then fall back to clone, which is checked);
 *   open(at)  read-only: no O_WRONLY/O_RDWR/O_CREAT/O_TRUNC (nothing in the loop writes a file);
 *   socket    AF_UNIX, AF_INET, AF_INET6 (glibc builds: also AF_NETLINK/NETLINK_ROUTE, which
 *             glibc's getaddrinfo uses to sort addresses);
 *   mmap/mprotect  never PROT_EXEC in musl builds (static, nothing is ever loaded); glibc builds
 *             may dlopen NSS modules, so PROT_EXEC stays allowed there;
 *   prctl     only PR_GET_* queries, PR_SET_NAME, PR_SET_VMA, PR_SET_DUMPABLE 0 and
 *             PR_SET_NO_NEW_PRIVS 1 (changes towards less privilege only);
 *   prlimit64 only reading (new limit NULL); fcntl only F_GETFD/F_SETFD/F_GETFL/F_SETFL/
 *             F_DUPFD_CLOEXEC/F_ADD_SEALS/F_GET_SEALS; ioctl only TIOCGWINSZ/TCGETS (isatty),
 *             FIONREAD/FIONBIO.
 * Refused explicitly by not being listed: execve/execveat, fork/vfork and clone without
 * CLONE_THREAD, ptrace, process_vm_readv/writev, mount/umount2/fsopen family, setns/unshare,
 * bpf, perf_event_open, kexec_*, init/finit/delete_module, keyctl/add_key/request_key,
 * userfaultfd, io_uring_*, personality, chroot/pivot_root, the setuid/setgid family, capset,
 * open_by_handle_at, seccomp itself, and everything else.
 *
 * A refused call fails with EPERM (SCMP_ACT_ERRNO): the supervisor is PID 1 of the container,
 * and killing it on a forgotten syscall would take the workload down with it. Tests pass
 * SANDBOX_KILL_ON_VIOLATION (SCMP_ACT_KILL_PROCESS, the process dies with SIGSYS) to prove that
 * nothing the loop needs is missing. Calls from a foreign ABI (i386 or x32 on x86_64, arm32 on
 * aarch64) get the same default action. The filter covers every thread (SECCOMP_FILTER_FLAG_TSYNC).
 *
 * Sanitizer builds (CLOUDTASER_ASAN, defined by build/asan): ASan gives every new thread an
 * alternate signal stack, so sigaltstack is added under #ifdef CLOUDTASER_ASAN, never in the
 * released build. (Its other needs, madvise, sched_getaffinity, read-only opens of /proc/self/
 * files, are in the list anyway; readlink of /proc/self/exe happens at start-up, before the
 * filter.) LeakSanitizer's exit check (clone without CLONE_THREAD + ptrace) and the external
 * symbolizer (fork + exec) cannot run under the filter: a sanitizer build of a filtered process
 * leaves with _exit(), and an ASan report under the filter shows raw addresses.
 *
 * Architectures: x86_64 and aarch64 (syscalls are named through libseccomp at build time, for the
 * architecture of the build; a name that does not
 * exist on the native architecture, such as open or poll on aarch64, is skipped). Nothing here
 * logs. Not thread-safe with respect to itself (call once, from the supervisor's main thread).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The two allow-lists (common/sandbox-rules.h). */
enum sandbox_profile {
        SANDBOX_PROFILE_SUPERVISOR = 0,
        SANDBOX_PROFILE_SIGNER,
};

/* Flags for sandbox_apply_supervisor_filter(). */
enum {
        SANDBOX_KILL_ON_VIOLATION = 1u << 0, /* tests only: SIGSYS instead of EPERM */
};

struct sandbox_report {
        const char *backend;    /* "seccomp" or "null" */
        bool no_new_privs;      /* "NoNewPrivs:" of /proc/self/status is 1 */
        int seccomp_mode;       /* "Seccomp:" of /proc/self/status: 0 none, 1 strict, 2 filter */
        int seccomp_filters;    /* "Seccomp_filters:" (-1 when the kernel does not show it) */
        unsigned rules;         /* rules this process installed through this module (0 if none) */
        bool kill_on_violation; /* the installed filter kills instead of returning EPERM */
};

/* prctl(PR_SET_NO_NEW_PRIVS, 1). 0 or -errno. Irreversible; inherited by children. */
int sandbox_no_new_privs(void);

/* Whether this backend can install a filter here: libseccomp knows the native architecture and
 * the kernel has SECCOMP_MODE_FILTER. Always false for the null backend. */
bool sandbox_is_supported(void);

/*
 * Installs the supervisor's allow-list on every thread of the process. NO_NEW_PRIVS must be set
 * first (sandbox_no_new_privs()). Returns 0, or:
 *   -EINVAL      unknown flags;
 *   -EACCES      NO_NEW_PRIVS is not set (nothing installed);
 *   -EOPNOTSUPP  null backend, or seccomp not available (nothing installed);
 *   -ENOMEM, -errno from the kernel (e.g. -ESRCH: a thread could not be
 *                synchronised). Nothing is installed when building the filter fails.
 */
int sandbox_apply_supervisor_filter(unsigned flags);

/*
 * Installs the CA signer's allow-list (operator/signer.h) on the calling process: far smaller
 * than the supervisor's, since the signer only answers requests on one socket that it already
 * holds, with memory from secmem and the heap (docs/sandbox.md, "The CA signer's profile"):
 *   socket    write/recvfrom/sendto/recvmsg/sendmsg only on fd 3 (the signer's socket);
 *   seed      open/openat read-only, read, close: wolfCrypt seeds its DRBG from /dev/urandom
 *             (which file is restricted by sandbox_restrict_files(), a filter cannot see paths);
 *   memory    brk, mmap and mprotect without PROT_EXEC, munmap, mremap, madvise, mlock, munlock,
 *             memfd_secret + ftruncate (common/secmem), futex;
 *   getrandom;
 *   leaving   exit, exit_group, and what abort() needs (rt_sigprocmask, rt_sigaction,
 *             rt_sigreturn, getpid, gettid, tgkill on its own pid); clock_gettime.
 * Nothing else: no socket, no fork/clone, no exec, no ptrace, no prctl, no kill. Same flags and
 * errors as sandbox_apply_supervisor_filter(). Under CLOUDTASER_ASAN the sanitizer run time's
 * needs are added (write/writev on fd 2 for its reports, sigaltstack, sched_yield, readlink),
 * never in the released build.
 */
int sandbox_apply_signer_filter(unsigned flags);

/*
 * Landlock: from now on this process (and its future children) may open only the files in
 * paths[0..n), and only for reading; it can create, remove, rename, truncate or execute nothing
 * anywhere in the filesystem (already open descriptors are unaffected). NO_NEW_PRIVS must be set
 * first. Irreversible. Both backends do it (it needs no library). Returns 0, -EOPNOTSUPP when the
 * kernel has no Landlock (nothing restricted: the caller decides), -ENOENT for a missing path,
 * -EPERM without NO_NEW_PRIVS, -errno. Used by the CA signer for wolfCrypt's /dev/urandom.
 */
int sandbox_restrict_files(const char *const *paths, size_t n);

/* The program sandbox_apply_*_filter(flags) would install in this process (the signer's with
 * getpid() in it), for tests and inspection: *ret is malloc'ed (free()), *ret_len instructions.
 * 0, -EINVAL (unknown profile or flags), -ENOMEM, -EOPNOTSUPP for the null backend. */
struct sock_filter;
int sandbox_program(enum sandbox_profile profile, unsigned flags, struct sock_filter **ret,
                    size_t *ret_len);

/* Fills *ret from /proc/self/status and this module's own record. 0, or -errno (*ret untouched)
 * when /proc/self/status cannot be read or lacks the NoNewPrivs/Seccomp lines. Works under the
 * filter (it opens read-only). */
int sandbox_report(struct sandbox_report *ret);
