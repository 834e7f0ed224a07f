/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/sandbox. Filters are irreversible, so every scenario runs in a forked
 * child that sends its results back over a pipe (the parent prints the TAP lines and checks how
 * the child ended). The stand-in vault is started in the parent, before any filter.
 *
 *   - refused calls: each is first made unfiltered in the parent with arguments chosen so that
 *     it fails harmlessly with something other than EPERM (or succeeds harmlessly), then made
 *     under the filter, where it must fail with EPERM;
 *   - the supervisor loop in miniature under SANDBOX_KILL_ON_VIOLATION, in the real order (spawn
 *     the workload, drop capabilities, NO_NEW_PRIVS, filter): HTTPS through common/http to the
 *     stand-in with "localhost" resolved by libcurl's threaded resolver on fresh connections,
 *     secure memory, a log line, a sealed memfd, signalfd + timerfd + epoll, forwarding a signal
 *     and reaping the workload, which itself must not be filtered. A missing syscall kills the
 *     child with SIGSYS, which fails the test.
 *
 * Built against the null backend (common/sandbox-null.c linked before libcommon.a) and run with
 * CLOUDTASER_EXPECT_NULL_SANDBOX=1, the same executable checks that that backend installs nothing
 * and says so; without that variable a null backend is a failure. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/http.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/sandbox-build.h"
#include "common/sandbox.h"
#include "common/secmem.h"
#include "tests/lib/standin.h"
#include "tests/lib/tap-child.h"
#include "tests/tap.h"

#ifndef CAP_IPC_LOCK
#define CAP_IPC_LOCK 14
#endif
#ifndef CAP_KILL
#define CAP_KILL 5
#endif

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447 /* same number on x86_64 and aarch64 */
#endif

extern char **environ;

/* --- results from a forked child -------------------------------------------------------------- */

/* A decimal "Key:" value of /proc/self/status, read independently of the module. */
static long status_value(const char *key) {
        char text[8192];
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        text[n] = '\0';
        size_t klen = strlen(key);
        for (char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
                        errno = 0;
                        long v = strtol(p + klen + 1, NULL, 10);
                        return errno ? -1 : v;
                }
        return -1;
}

/* --- calls the filter must refuse ------------------------------------------------------------- */

static char dummy[16];
static char *const no_argv[] = {(char *) "x", NULL};

struct refused {
        const char *name;
        long nr;
        long a[6];
};

static struct refused refused[] = {
        {"execve", SYS_execve, {(long) "/nonexistent/cloudtaser", (long) no_argv, 0}},
        {"execveat", SYS_execveat, {-1, (long) "/nonexistent/cloudtaser", (long) no_argv, 0, 0}},
        {"ptrace", SYS_ptrace, {PTRACE_PEEKDATA, 0x7ffffffe, 0, 0}},
        {"process_vm_readv", SYS_process_vm_readv, {0x7ffffffe, 0, 0, 0, 0, 0}},
        {"mount", SYS_mount, {(long) "none", (long) "/nonexistent", 1, 0, 0}},
        {"umount2", SYS_umount2, {(long) "/nonexistent", 0xffff}},
        {"setns", SYS_setns, {-1, 0}},
        {"unshare", SYS_unshare, {1}},
        {"bpf", SYS_bpf, {-1, 0, 0}},
        {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
        {"kexec_load", SYS_kexec_load, {0, 0, 0, (long) 0xdead0000}},
        {"init_module", SYS_init_module, {0, 0, 0}},
        {"finit_module", SYS_finit_module, {-1, (long) "", 0}},
        {"delete_module", SYS_delete_module, {(long) "cloudtaser_none", O_NONBLOCK}},
        {"keyctl", SYS_keyctl, {-1, 0, 0, 0, 0}},
        {"add_key", SYS_add_key, {0, 0, 0, 0, 0}},
        {"userfaultfd", SYS_userfaultfd, {~0L}},
        {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
        {"personality", SYS_personality, {0xffffffffL}},
        {"chroot", SYS_chroot, {(long) "/nonexistent"}},
        {"pivot_root", SYS_pivot_root, {(long) "/nonexistent", (long) "/nonexistent"}},
        {"setresuid", SYS_setresuid, {-1, -1, -1}},
        {"setresgid", SYS_setresgid, {-1, -1, -1}},
        {"setuid", SYS_setuid, {0}},
        {"capset", SYS_capset, {0, 0}},
        {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
        {"seccomp", SYS_seccomp, {-1, 0, 0}},
        /* CLONE_THREAD without CLONE_SIGHAND is EINVAL unfiltered; the filter refuses any
         * namespace flag first. (A real fork is tested separately.) */
        {"clone with CLONE_NEWNET", SYS_clone, {CLONE_THREAD | CLONE_NEWNET, 0, 0, 0, 0}},
};

/* The unfiltered result of each (0 = succeeded), filled by the parent before any filter. */
static int control_errno[ELEMENTSOF(refused)];

static int call_refused(const struct refused *c) {
        errno = 0;
        long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        if (r >= 0) {
                if (c->nr == SYS_userfaultfd || c->nr == SYS_perf_event_open)
                        (void) close((int) r);
                return 0;
        }
        return errno;
}

/* --- scenarios -------------------------------------------------------------------------------- */

static struct standin *vault;
static bool memfd_secret_available;

static void *thread_main(void *arg) {
        *(int *) arg = 42;
        return arg;
}

static void check_filtered_basics(bool kill_mode) {
        struct sandbox_report rep = {};
        int r = sandbox_report(&rep);
        c_ok(r == 0 && rep.no_new_privs && rep.seccomp_mode == 2 && rep.seccomp_filters >= 1 &&
                     rep.rules > 20 && rep.kill_on_violation == kill_mode,
             "report: nnp %d, seccomp %d, filters %d, %u rules, kill %d (%d)", rep.no_new_privs,
             rep.seccomp_mode, rep.seccomp_filters, rep.rules, rep.kill_on_violation, r);
        c_ok(status_value("Seccomp") == 2 && status_value("NoNewPrivs") == 1,
             "/proc/self/status: Seccomp: 2, NoNewPrivs: 1");

        int value = 0;
        pthread_t t;
        void *res = NULL;
        r = pthread_create(&t, NULL, thread_main, &value);
        if (r == 0)
                r = pthread_join(t, &res);
        c_ok(r == 0 && value == 42 && res == &value, "a thread can be created and joined (%s)",
             strerror(r));
}

static void t_filter_eperm(void) {
        c_ok(sandbox_no_new_privs() == 0, "sandbox_no_new_privs");
        int r = sandbox_apply_supervisor_filter(0);
        if (!c_ok(r == 0, "sandbox_apply_supervisor_filter(0) = %d", r))
                return;
        check_filtered_basics(false);

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                if (control_errno[i] == EPERM) {
                        c_skip("%s: EPERM even unfiltered here, the filter cannot be told apart",
                               refused[i].name);
                        continue;
                }
                int e = call_refused(&refused[i]);
                c_ok(e == EPERM, "%s is refused with EPERM (unfiltered: %s; now: %s)",
                     refused[i].name, strerror(control_errno[i]), strerror(e));
        }

        errno = 0;
        r = execve("/bin/true", no_argv, environ);
        c_ok(r < 0 && errno == EPERM, "execve(/bin/true) fails with EPERM (%s)", strerror(errno));
        errno = 0;
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        c_ok(pid < 0 && errno == EPERM, "fork() fails with EPERM (%d, %s)", (int) pid,
             strerror(errno));
        errno = 0;
        long l = syscall(SYS_clone3, dummy, sizeof(dummy));
        c_ok(l < 0 && errno == ENOSYS, "clone3 fails with ENOSYS (libc falls back to clone)");

        errno = 0;
        int fd = open("/tmp/cloudtaser-sandbox-must-not-exist", O_WRONLY | O_CREAT | O_CLOEXEC,
                      0600);
        c_ok(fd < 0 && errno == EPERM, "open for writing fails with EPERM (%s)", strerror(errno));
        fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
        c_ok(fd >= 0, "open read-only works (%s)", fd >= 0 ? "ok" : strerror(errno));
        fd = safe_close(fd);

        errno = 0;
        fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        c_ok(fd < 0 && errno == EPERM, "socket(AF_PACKET) fails with EPERM (%s)", strerror(errno));
        fd = safe_close(fd);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        c_ok(fd >= 0, "socket(AF_INET6) works");
        fd = safe_close(fd);

        errno = 0;
        /* The raw syscall: musl's mmap() turns EPERM into ENOMEM for anonymous mappings. */
        void *p = (void *) syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#ifdef __GLIBC__
        c_ok(p != MAP_FAILED, "glibc build: mmap(PROT_EXEC) allowed (NSS modules)");
#else
        c_ok(p == MAP_FAILED && errno == EPERM, "mmap(PROT_EXEC) fails with EPERM (%s)",
             strerror(errno));
#endif
        if (p != MAP_FAILED)
                (void) munmap(p, 4096);

        c_ok(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "prctl(PR_SET_DUMPABLE, 0) allowed");
        errno = 0;
        r = prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        c_ok(r < 0 && errno == EPERM, "prctl(PR_SET_DUMPABLE, 1) fails with EPERM");
        errno = 0;
        r = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        c_ok(r < 0 && errno == EPERM, "prctl(PR_SET_CHILD_SUBREAPER) fails with EPERM");
        struct rlimit rl;
        errno = 0;
        r = getrlimit(RLIMIT_NOFILE, &rl);
        c_ok(r == 0, "getrlimit works");
        r = setrlimit(RLIMIT_NOFILE, &rl);
        c_ok(r < 0 && errno == EPERM, "setrlimit fails with EPERM");
        errno = 0;
        r = fcntl(2, F_SETLK, &(struct flock){.l_type = F_RDLCK});
        c_ok(r < 0 && errno == EPERM, "fcntl(F_SETLK) fails with EPERM");
}

/* One GET /v1/sys/health over a fresh client; returns the number of connections it opened. */
static void https_get(const char *base, const char *what) {
        struct http_options o = {.base_url = base, .ca_file = vault->ca_path, .max_attempts = 1};
        _cleanup_http_client_ struct http_client *c = NULL;
        int r = http_client_new(&o, &c);
        if (!c_ok(r == 0, "%s: http_client_new (%d)", what, r))
                return;
        for (int i = 0; i < 2; i++) {
                _cleanup_http_response_ struct http_response resp = {};
                struct http_result res = {};
                struct http_request req = {.method = HTTP_GET, .path = "/v1/sys/health"};
                r = http_request(c, &req, &resp, &res);
                c_ok(r == 0 && resp.status == 200,
                     "%s: request %d: GET /v1/sys/health is 200 (%d, %ld, curl %d: %s)", what,
                     i + 1, r, resp.status, res.curl_code, res.error_text);
        }
        c_ok(http_client_connects(c) == 1, "%s: one new TLS connection, then kept alive (%u)", what,
             http_client_connects(c));
}

static void check_secmem_log_memfd(void) {
        _cleanup_secmem_ char *s = NULL;
        int r = secmem_alloc(4096, (void **) &s);
        struct secmem_report sr = {};
        secmem_report(&sr);
        enum secmem_mechanism want = memfd_secret_available ? SECMEM_MEMFD_SECRET : SECMEM_MLOCK;
        c_ok(r == 0 && sr.mechanism == want, "secmem_alloc works, mechanism %s (want %s, %d)",
             secmem_mechanism_to_string(sr.mechanism), secmem_mechanism_to_string(want), r);
        if (s) {
                memset(s, 'x', 4095);
                c_ok(s[4094] == 'x', "secure memory is writable");
        }

        int p[2];
        char line[LOG_LINE_MAX];
        if (pipe2(p, O_CLOEXEC) == 0) {
                log_setup("test-sandbox", LOG_FORMAT_TEXT, LOG_INFO);
                log_set_fd(p[1]);
                log_event(LOG_NOTICE, 0, NULL, "hello from the filtered supervisor");
                log_set_fd(2);
                ssize_t n = read(p[0], line, sizeof(line) - 1);
                line[n > 0 ? n : 0] = '\0';
                c_ok(n > 0 && strstr(line, "hello from the filtered supervisor"),
                     "a log line is written (%zd bytes)", n);
                close(p[0]);
                close(p[1]);
        } else
                c_ok(false, "pipe2 for the log line: %s", strerror(errno));

        /* The secrets memfd: create, fill, shrink, seal, read back. */
        char buf[16] = {};
        int fd = memfd_create("cloudtaser-secrets", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        bool good = fd >= 0 && write(fd, "secret=value\n", 13) == 13 && ftruncate(fd, 12) == 0 &&
                    lseek(fd, 0, SEEK_SET) == 0 &&
                    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0 &&
                    read(fd, buf, sizeof(buf)) == 12 && memcmp(buf, "secret=value", 12) == 0 &&
                    fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
        c_ok(good, "a sealed memfd is created and refreshed (%s)", good ? "ok" : strerror(errno));
        (void) safe_close(fd);
}

/* The supervisor loop in miniature, in the wrapper's real order. */
static void t_supervisor_kill_mode(void) {
        int in[2];
        sigset_t mask;
        pid_t pid = 0;
        int r;

        /* 1. The workload, started before any hardening: it waits for a line on stdin, then
         *    exits 0 only if it is NOT under a seccomp filter. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        if (pipe2(in, O_CLOEXEC) < 0)
                return (void) c_ok(false, "pipe2: %s", strerror(errno));
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none;
        sigemptyset(&none);
        (void) posix_spawn_file_actions_init(&fa);
        (void) posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        (void) posix_spawnattr_init(&attr);
        (void) posix_spawnattr_setsigmask(&attr, &none);
        (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        char *const argv[] = {(char *) "sh", (char *) "-c",
                              (char *) "read x && grep -q '^Seccomp:[[:space:]]*0$' "
                                       "/proc/self/status",
                              NULL};
        r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
        (void) posix_spawn_file_actions_destroy(&fa);
        (void) posix_spawnattr_destroy(&attr);
        close(in[0]);
        if (!c_ok(r == 0, "workload spawned (%s)", strerror(r)))
                return;

        /* 2. Harden: capabilities, NO_NEW_PRIVS, filter (kill on violation). */
        static const int keep[] = {CAP_IPC_LOCK, CAP_KILL};
        r = caps_drop_except(keep, ELEMENTSOF(keep), CAPS_DROP_BOUNDING);
        c_ok(r == 0, "caps_drop_except({CAP_IPC_LOCK, CAP_KILL}, CAPS_DROP_BOUNDING) (%d)", r);
        c_ok(sandbox_no_new_privs() == 0, "sandbox_no_new_privs");
        r = sandbox_apply_supervisor_filter(SANDBOX_KILL_ON_VIOLATION);
        if (!c_ok(r == 0, "sandbox_apply_supervisor_filter(KILL_ON_VIOLATION) = %d", r))
                return;
        check_filtered_basics(true);
        struct caps_report cr = {};
        r = caps_report(&cr);
        c_ok(r == 0 && cr.n_effective == 2 && cr.n_bounding == 2,
             "caps_report works under the filter (%d, eff %u, bnd %u)", r, cr.n_effective,
             cr.n_bounding);

        /* 3. What the loop does. */
        char base[256];
        const char *port = strrchr(vault->addr, ':');
        (void) snprintf(base, sizeof(base), "https://localhost%s", port ? port : "");
        https_get(base, "localhost (threaded resolver)");
        https_get(vault->addr, "127.0.0.1");
        check_secmem_log_memfd();

        unsigned char rnd[16];
        c_ok(getrandom(rnd, sizeof(rnd), 0) == (ssize_t) sizeof(rnd), "getrandom works");

        int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        int efd = epoll_create1(EPOLL_CLOEXEC);
        struct itimerspec its = {.it_value = {.tv_nsec = 10 * 1000 * 1000}};
        struct epoll_event ev = {.events = EPOLLIN};
        bool good = sfd >= 0 && tfd >= 0 && efd >= 0 && timerfd_settime(tfd, 0, &its, NULL) == 0;
        ev.data.fd = sfd;
        good = good && epoll_ctl(efd, EPOLL_CTL_ADD, sfd, &ev) == 0;
        ev.data.fd = tfd;
        good = good && epoll_ctl(efd, EPOLL_CTL_ADD, tfd, &ev) == 0;
        c_ok(good, "signalfd, timerfd and epoll set up (%s)", good ? "ok" : strerror(errno));

        uint64_t ticks = 0;
        good = epoll_wait(efd, &ev, 1, 5000) == 1 && ev.data.fd == tfd &&
               read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks >= 1;
        c_ok(good, "the timer fires through epoll");
        struct itimerspec cur;
        c_ok(timerfd_gettime(tfd, &cur) == 0, "timerfd_gettime works");

        c_ok(kill(pid, 0) == 0, "the workload can be signalled");
        c_ok(write(in[1], "go\n", 3) == 3, "the workload is released");
        close(in[1]);

        /* Reap like PID 1: wait for SIGCHLD on the signalfd, then waitpid(-1, WNOHANG). */
        int status = -1;
        pid_t got = 0;
        for (int i = 0; i < 50 && got == 0; i++) {
                struct signalfd_siginfo si;
                if (epoll_wait(efd, &ev, 1, 200) == 1 && ev.data.fd == sfd)
                        (void) !read(sfd, &si, sizeof(si));
                got = waitpid(-1, &status, WNOHANG);
        }
        c_ok(got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "the workload is reaped and was not under the filter (pid %d, status 0x%x)", (int) got,
             (unsigned) status);
        (void) safe_close(efd);
        (void) safe_close(tfd);
        (void) safe_close(sfd);
}

static void t_filter_without_nnp(void) {
        int r = sandbox_apply_supervisor_filter(0);
        c_ok(r == -EACCES, "without NO_NEW_PRIVS the filter is refused with -EACCES (%d)", r);
        c_ok(status_value("Seccomp") == 0, "and nothing was installed");
}

static void t_null_backend(void) {
        c_ok(!sandbox_is_supported(), "not supported");
        c_ok(sandbox_no_new_privs() == 0 && status_value("NoNewPrivs") == 1,
             "NO_NEW_PRIVS still works");
        int r = sandbox_apply_supervisor_filter(0);
        c_ok(r == -EOPNOTSUPP, "apply says -EOPNOTSUPP (%d)", r);
        struct sandbox_report rep = {};
        r = sandbox_report(&rep);
        c_ok(r == 0 && strcmp(rep.backend, "null") == 0 && rep.rules == 0 &&
                     rep.seccomp_mode == status_value("Seccomp") && rep.no_new_privs,
             "report (%d, %s, seccomp %d)", r, rep.backend, rep.seccomp_mode);
        c_ok(status_value("Seccomp") == 0, "no filter installed");
        r = sandbox_apply_signer_filter(0);
        c_ok(r == -EOPNOTSUPP, "signer filter: -EOPNOTSUPP (%d)", r);
        struct sock_filter *prog = NULL;
        size_t n = 0;
        r = sandbox_program(SANDBOX_PROFILE_SUPERVISOR, 0, &prog, &n);
        c_ok(r == -EOPNOTSUPP && !prog, "no program either: -EOPNOTSUPP (%d)", r);
}

/* The signer's allow-list (operator/signer.h) in EPERM mode: what it needs works, everything
 * else of the supervisor's list is refused (sockets, processes, writes to other fds, prctl). */
static void t_signer_filter(void) {
        /* The results pipe becomes fd 3, the one fd the filter lets us write to (else the
         * results after the filter would be lost). */
        if (!c_ok(tap_child_fd == 3 || dup2(tap_child_fd, 3) == 3, "the results pipe on fd 3"))
                return;
        tap_child_fd = 3;
        int fds[2];
        if (!c_ok(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0, "socketpair"))
                return;
        int pipefd[2];
        c_ok(pipe2(pipefd, O_CLOEXEC) == 0, "a pipe (an fd that is not the socket)");
        c_ok(sandbox_no_new_privs() == 0, "NO_NEW_PRIVS");
        int r = sandbox_apply_signer_filter(0);
        if (!c_ok(r == 0, "signer filter installed (%d)", r))
                return;
        c_ok(status_value("Seccomp") == 2, "Seccomp: 2");
        c_ok(send(3, "x", 1, MSG_NOSIGNAL) < 0 && errno == ENOTSOCK,
             "send on fd 3 passes the filter (the kernel answers: a pipe is not a socket)");
        char c;
        c_ok(send(fds[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPERM, "send on another fd: EPERM");
        c_ok(recv(fds[1], &c, 1, 0) < 0 && errno == EPERM, "recv on another fd: EPERM");
        c_ok(write(pipefd[1], "x", 1) < 0 && errno == EPERM, "write to another fd: EPERM");
        void *p = NULL;
        c_ok(secmem_alloc(100, &p) == 0, "secure memory");
        secmem_free(p);
        uint8_t rnd[16];
        c_ok(getrandom(rnd, sizeof(rnd), 0) == sizeof(rnd), "getrandom");
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        c_ok(fd >= 0, "open read-only (wolfCrypt's seed)");
        c_ok(fd < 0 || read(fd, rnd, sizeof(rnd)) == sizeof(rnd), "read it");
        (void) safe_close(fd);
        c_ok(open("/dev/null", O_WRONLY | O_CLOEXEC) < 0 && errno == EPERM,
             "open for writing: EPERM");
        c_ok(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) < 0 && errno == EPERM, "socket: EPERM");
        c_ok(fork() < 0 && errno == EPERM, "fork: EPERM");
        c_ok(prctl(PR_SET_NAME, "x", 0, 0, 0) < 0 && errno == EPERM, "prctl: EPERM");
        errno = 0;
        void *x = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        /* musl's mmap() reports an anonymous mapping's EPERM as ENOMEM. */
        c_ok(x == MAP_FAILED && (errno == EPERM || errno == ENOMEM),
             "an executable mapping is refused (errno %d)", errno);
        c_ok(kill(getppid(), 0) < 0 && errno == EPERM, "kill: EPERM");
}

/* Landlock: only the listed file, only for reading. */
static void t_restrict_files(void) {
        c_ok(sandbox_no_new_privs() == 0, "NO_NEW_PRIVS");
        static const char *const readable[] = {"/dev/urandom"};
        int r = sandbox_restrict_files(readable, 1);
        if (r == -EOPNOTSUPP) {
                c_skip("no Landlock in this kernel");
                return;
        }
        if (!c_ok(r == 0, "restricted to /dev/urandom (%d)", r))
                return;
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        c_ok(fd >= 0, "/dev/urandom opens read-only");
        (void) safe_close(fd);
        c_ok(open("/dev/urandom", O_WRONLY | O_CLOEXEC) < 0 && errno == EACCES,
             "not for writing (EACCES)");
        c_ok(open("/proc/self/status", O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES,
             "another file: EACCES");
        c_ok(open("/tmp/ct-landlock-test", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) < 0 &&
                     errno == EACCES,
             "no file can be created (EACCES)");
}

/* The generated table (what sandbox_apply_*_filter loads) is what libseccomp makes of
 * common/sandbox-rules.h for this build, instruction for instruction, the signer's pid included. */
static void test_table_is_libseccomp(void) {
        static const struct {
                enum sandbox_profile profile;
                unsigned flags;
                const char *what;
        } cases[] = {
                {SANDBOX_PROFILE_SUPERVISOR, 0, "supervisor, EPERM"},
                {SANDBOX_PROFILE_SUPERVISOR, SANDBOX_KILL_ON_VIOLATION, "supervisor, kill"},
                {SANDBOX_PROFILE_SIGNER, 0, "signer, EPERM"},
                {SANDBOX_PROFILE_SIGNER, SANDBOX_KILL_ON_VIOLATION, "signer, kill"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ struct sock_filter *table = NULL, *lib = NULL;
                size_t n_table = 0, n_lib = 0;
                unsigned rules = 0;
                int r1 = sandbox_program(cases[i].profile, cases[i].flags, &table, &n_table);
                int r2 = sandbox_build_program(cases[i].profile,
                                               cases[i].flags & SANDBOX_KILL_ON_VIOLATION,
                                               (uint32_t) getpid(), &lib, &n_lib, &rules);
                ok(r1 == 0 && r2 == 0 && n_table == n_lib && n_lib > 10 && rules > 10 &&
                           memcmp(table, lib, n_lib * sizeof(*lib)) == 0,
                   "%s: the built-in program equals libseccomp's (%d, %d; %zu and %zu "
                   "instructions, %u rules)",
                   cases[i].what, r1, r2, n_table, n_lib, rules);
        }
        /* The check above can fail: a program with another pid differs. */
        _cleanup_free_ struct sock_filter *table = NULL, *other = NULL;
        size_t n_table = 0, n_other = 0;
        unsigned rules = 0;
        int r1 = sandbox_program(SANDBOX_PROFILE_SIGNER, 0, &table, &n_table);
        int r2 = sandbox_build_program(SANDBOX_PROFILE_SIGNER, false, (uint32_t) getpid() + 1,
                                       &other, &n_other, &rules);
        ok(r1 == 0 && r2 == 0 && n_table == n_other &&
                   memcmp(table, other, n_other * sizeof(*other)) != 0,
           "control: the signer's program for another pid differs");
        is_int(sandbox_program(SANDBOX_PROFILE_SIGNER + 1, 0, &table, &n_table), -EINVAL,
               "unknown profile is -EINVAL");
}

int main(void) {
        struct sandbox_report rep = {};
        int r = sandbox_report(&rep);
        ok(r == 0 && !rep.no_new_privs && rep.rules == 0, "report before anything (%d, %s)", r,
           rep.backend);
        is_int(sandbox_apply_supervisor_filter(1u << 9), -EINVAL, "unknown flag is -EINVAL");
        if (r == 0 && strcmp(rep.backend, "null") == 0) {
                /* Only a deliberate null-backend build may take this path: otherwise the seccomp
                 * tests would silently not run (sandbox-null.c must stay out of libcommon.a). */
                ok(getenv("CLOUDTASER_EXPECT_NULL_SANDBOX") != NULL,
                   "the null backend is linked on purpose (CLOUDTASER_EXPECT_NULL_SANDBOX set)");
                run_child("null backend", t_null_backend);
                return tap_done();
        }
        test_table_is_libseccomp();
        if (!sandbox_is_supported()) {
                skip(1, "seccomp filters are not available here");
                return tap_done();
        }
        if (rep.seccomp_mode != 0) {
                skip(1, "already under a seccomp filter (container runtime profile?)");
                return tap_done();
        }
        run_child("no NO_NEW_PRIVS", t_filter_without_nnp);

        /* Unfiltered results of the refused calls. */
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                control_errno[i] = call_refused(&refused[i]);

        int fd = (int) syscall(SYS_memfd_secret, 0);
        memfd_secret_available = fd >= 0;
        (void) safe_close(fd);

        r = standin_start(NULL, &vault);
        if (!ok(r == 0, "stand-in vault started (%d)", r))
                return tap_done();

        run_child("filter (EPERM)", t_filter_eperm);
        run_child("signer filter (EPERM)", t_signer_filter);
        run_child("Landlock read-only files", t_restrict_files);
        if (geteuid() == 0)
                run_child("supervisor (KILL_ON_VIOLATION)", t_supervisor_kill_mode);
        else
                skip(1, "the supervisor scenario drops capabilities: needs root");
        standin_stop(vault);
        return tap_done();
}
