/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-workload: the workload the wrapper's end-to-end tests start. It runs the commands given as
 * arguments, in order, and reports on stdout (line-buffered), one line per fact. It never prints
 * a secret value: only SHA-256 hashes and lengths, so a test can compare them with what it
 * planted in the vault.
 *
 *   --version              print the version and exit
 *   --ignore-term          (before the commands) SIGTERM received by `signals` is printed, not
 *                          fatal
 *   env-hash NAME          "env NAME sha256=<hex> len=<n>" or "env NAME missing"
 *   env-keys               "env-keys NAME NAME..." (sorted names of its environment, no values)
 *   memfd-hash NAME        the record NAME of CLOUDTASER_SECRET_FD, read with fstat + mmap (the
 *                          fd may be a memfd_secret file, which read(2) cannot read):
 *                          "memfd NAME sha256=<hex> len=<n>" or "memfd NAME missing"
 *   memfd-keys             "memfd-keys NAME NAME..." (sorted record names)
 *   memfd-watch SECONDS NAME  consistent snapshots (the header's seqlock) in a loop: prints
 *                          "memfd-seen NAME sha256=<hex> len=<n>" at each new value of NAME,
 *                          then "memfd-watch snapshots=N retries=M" (SIGUSR1 ignored meanwhile)
 *   memfd-info             "memfd fd=N size=S target=<readlink of /proc/self/fd/N>"
 *   fds                    "fds 0 1 2 ..." (its open descriptors, to spot leaked ones)
 *   stdio                  "stdio 0=<target> 1=<target> 2=<target>" (readlink, or "closed")
 *   proc-status            "status NoNewPrivs=.. Seccomp=.. CapEff=.. CapBnd=.. dumpable=.."
 *   print-pid              "pid N ppid M"
 *   become UID             drop to UID (gid UID, no supplementary groups) as gosu/su-exec do
 *                          before their exec; needs root. Prints "uid N"
 *   signals SECONDS        catch the catchable signals, print "ready", then "signal NAME" for
 *                          each one received, for up to SECONDS, then "signals timeout" and go
 *                          on. SIGTERM ends the process by SIGTERM (status 143) after printing,
 *                          unless --ignore-term was given.
 *   memfd-on-signal NAME   from then on, `signals` prints the memfd-hash line of NAME after each
 *                          signal (to see a rotation through the memfd)
 *   orphans N              double-forks N grandchildren that outlive it (they sleep 0.5 s and
 *                          exit 0, with stdio on /dev/null); prints "orphan PID" for each
 *   sleep SECONDS          (fractions allowed)
 *   touch PATH             create PATH (a marker that the workload ran)
 *   wait-file PATH         wait until PATH exists (at most 60 s; exit 2 on timeout)
 *   say TEXT               print TEXT
 *   check-canary VALUE     "canary absent" or "canary present" (then exit 1) if VALUE is a
 *                          substring of any entry of environ or of /proc/self/environ
 *   exit CODE              exit with CODE
 *   kill-self SIGNAME      die by that signal (default disposition)
 *
 * Exit status: 0 after the last command; 2 on a usage error or a failed command.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sha256.h"

extern char **environ;

/* ---- helpers ---- */

static bool ignore_term;
static const char *memfd_on_signal;

static int parse_seconds(const char *s, double *ret) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !(d >= 0) || d > 3600)
                return -EINVAL;
        *ret = d;
        return 0;
}

static int parse_int(const char *s, long min, long max, long *ret) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static double now_seconds(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_seconds(double d) {
        struct timespec ts = {.tv_sec = (time_t) d,
                              .tv_nsec = (long) ((d - (double) (time_t) d) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void print_hash(const char *source, const char *name, const void *value, size_t len) {
        uint8_t digest[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        sha256_buffer(value, len, digest);
        sha256_to_hex(digest, hex);
        printf("%s %s sha256=%s len=%zu\n", source, name, hex, len);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Prints "LABEL" then the sorted names (the part before '=') of the n entries. */
static int print_sorted_names(const char *label, const char **entries, size_t n) {
        qsort(entries, n, sizeof(entries[0]), cmp_str);
        fputs(label, stdout);
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(entries[i], '=');
                size_t len = eq ? (size_t) (eq - entries[i]) : strlen(entries[i]);
                printf(" %.*s", (int) len, entries[i]);
        }
        putchar('\n');
        return 0;
}

/* ---- the secret fd ---- */

struct secret_map {
        int fd;
        size_t file_size;
        const char *data; /* a consistent copy of the records (malloc) */
        size_t size;
        uint64_t generation;
        unsigned retries; /* copies thrown away because the generation moved */
};

static void secret_map_done(struct secret_map *m) {
        free((void *) m->data);
        m->data = NULL;
}

/* The reader side of the memfd's seqlock (docs/wrapper.md): copy the records between two loads
 * of the same even generation. */
static int snapshot(const char *base, size_t file_size, struct secret_map *m) {
        const uint64_t *gen = (const uint64_t *) (const void *) (base + 8);
        const uint64_t *len = (const uint64_t *) (const void *) (base + 16);
        char *copy = malloc(file_size);
        if (!copy)
                return -ENOMEM;
        for (unsigned tries = 0;; tries++) {
                uint64_t g1 = __atomic_load_n(gen, __ATOMIC_ACQUIRE);
                uint64_t n = __atomic_load_n(len, __ATOMIC_RELAXED);
                if (!(g1 & 1) && n <= file_size - 64) {
                        memcpy(copy, base + 64, n);
                        __atomic_thread_fence(__ATOMIC_ACQUIRE);
                        if (__atomic_load_n(gen, __ATOMIC_RELAXED) == g1) {
                                m->data = copy;
                                m->size = n;
                                m->generation = g1;
                                m->retries += tries;
                                return 0;
                        }
                }
                if (tries > 1000000) {
                        free(copy);
                        return -EBUSY;
                }
                (void) sched_yield();
        }
}

static int secret_map_open(struct secret_map *ret) {
        const char *s = getenv("CLOUDTASER_SECRET_FD");
        long fd;
        struct stat st;
        if (!s) {
                printf("memfd unavailable: CLOUDTASER_SECRET_FD is not set\n");
                return -ENOENT;
        }
        if (parse_int(s, 0, 1 << 20, &fd) < 0) {
                printf("memfd unavailable: CLOUDTASER_SECRET_FD is not a number\n");
                return -EINVAL;
        }
        if (fstat((int) fd, &st) < 0) {
                printf("memfd unavailable: fstat(%ld): %s\n", fd, strerror(errno));
                return -errno;
        }
        *ret = (struct secret_map){.fd = (int) fd, .file_size = (size_t) st.st_size};
        if (ret->file_size < 64) {
                printf("memfd unavailable: %zu bytes, no header\n", ret->file_size);
                return -EBADMSG;
        }
        void *p = mmap(NULL, ret->file_size, PROT_READ, MAP_SHARED, (int) fd, 0);
        if (p == MAP_FAILED) {
                printf("memfd unavailable: mmap(%ld, %zu): %s\n", fd, ret->file_size,
                       strerror(errno));
                return -errno;
        }
        int r = memcmp(p, "CTSECv1", 8) == 0 ? snapshot(p, ret->file_size, ret) : -EBADMSG;
        (void) munmap(p, ret->file_size);
        if (r == -EBADMSG)
                printf("memfd unavailable: no cloudtaser header\n");
        return r;
}

/* Iterates over the KEY=VALUE\0 records; empty records (zero padding) are skipped. */
static const char *secret_next(const struct secret_map *m, size_t *off, size_t *ret_len) {
        while (*off < m->size) {
                const char *rec = m->data + *off;
                const char *nul = memchr(rec, '\0', m->size - *off);
                size_t len = nul ? (size_t) (nul - rec) : m->size - *off;
                *off += len + 1;
                if (len > 0) {
                        *ret_len = len;
                        return rec;
                }
        }
        return NULL;
}

static int cmd_memfd_hash(const char *name) {
        struct secret_map m;
        size_t off = 0, len, nlen = strlen(name);
        const char *rec;
        int r = secret_map_open(&m);
        if (r < 0)
                return r;
        while ((rec = secret_next(&m, &off, &len))) {
                if (len > nlen && memcmp(rec, name, nlen) == 0 && rec[nlen] == '=') {
                        print_hash("memfd", name, rec + nlen + 1, len - nlen - 1);
                        secret_map_done(&m);
                        return 0;
                }
        }
        printf("memfd %s missing\n", name);
        secret_map_done(&m);
        return 0;
}

/* Takes consistent snapshots of the memfd for `seconds`, printing "memfd-seen NAME sha256=<hex>
 * len=<n>" whenever NAME's value differs from the last one printed, then "memfd-watch
 * snapshots=N retries=M" (copies thrown away because a rotation moved the generation). */
static int cmd_memfd_watch(double seconds, const char *name) {
        char last[SHA256_HEX_SIZE + 32] = "";
        double deadline = now_seconds() + seconds;
        size_t nlen = strlen(name);
        unsigned long snapshots = 0, retries = 0;
        struct sigaction ign = {.sa_handler = SIG_IGN};
        (void) sigaction(SIGUSR1, &ign, NULL); /* the rotation signal: the loop notices anyway */
        while (now_seconds() < deadline) {
                struct secret_map m;
                size_t off = 0, len;
                const char *rec;
                int r = secret_map_open(&m);
                if (r < 0)
                        return r;
                snapshots++;
                retries += m.retries;
                while ((rec = secret_next(&m, &off, &len)))
                        if (len > nlen && memcmp(rec, name, nlen) == 0 && rec[nlen] == '=') {
                                uint8_t digest[SHA256_DIGEST_SIZE];
                                char hex[SHA256_HEX_SIZE], line[sizeof(last)];
                                sha256_buffer(rec + nlen + 1, len - nlen - 1, digest);
                                sha256_to_hex(digest, hex);
                                (void) snprintf(line, sizeof(line), "%s len=%zu", hex,
                                                len - nlen - 1);
                                if (strcmp(line, last) != 0) {
                                        printf("memfd-seen %s sha256=%s\n", name, line);
                                        memcpy(last, line, sizeof(last));
                                }
                                break;
                        }
                secret_map_done(&m);
        }
        printf("memfd-watch snapshots=%lu retries=%lu\n", snapshots, retries);
        return 0;
}

static int cmd_memfd_keys(void) {
        struct secret_map m;
        size_t off = 0, len, n = 0;
        const char *entries[1024], *rec;
        static char names[1024][256];
        int r = secret_map_open(&m);
        if (r < 0)
                return r;
        while ((rec = secret_next(&m, &off, &len)) && n < ELEMENTSOF(entries)) {
                const char *eq = memchr(rec, '=', len);
                size_t klen = MIN(eq ? (size_t) (eq - rec) : len, sizeof(names[0]) - 1);
                memcpy(names[n], rec, klen);
                names[n][klen] = '\0';
                entries[n] = names[n];
                n++;
        }
        secret_map_done(&m);
        return print_sorted_names("memfd-keys", entries, n);
}

static int cmd_memfd_info(void) {
        struct secret_map m;
        char link[64], target[256];
        int r = secret_map_open(&m);
        if (r < 0)
                return r;
        (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", m.fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        int flags = fcntl(m.fd, F_GETFD);
        printf("memfd fd=%d size=%zu target=%s cloexec=%s\n", m.fd, m.file_size, target,
               flags >= 0 && (flags & FD_CLOEXEC) ? "yes" : "no");
        secret_map_done(&m);
        return 0;
}

/* ---- environment ---- */

static int cmd_env_hash(const char *name) {
        const char *v = getenv(name);
        if (!v)
                printf("env %s missing\n", name);
        else
                print_hash("env", name, v, strlen(v));
        return 0;
}

static int cmd_env_keys(void) {
        size_t n = 0;
        while (environ && environ[n])
                n++;
        const char **entries = calloc(n + 1, sizeof(char *));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                entries[i] = environ[i];
        print_sorted_names("env-keys", entries, n);
        free(entries);
        return 0;
}

static int cmd_check_canary(const char *value) {
        bool found = false;
        for (size_t i = 0; environ && environ[i]; i++)
                if (strstr(environ[i], value))
                        found = true;
        /* The kernel's copy of the initial environment, as others see it. */
        int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                static char block[1 << 20];
                size_t len = 0;
                ssize_t n;
                while (len < sizeof(block) - 1 &&
                       (n = read(fd, block + len, sizeof(block) - 1 - len)) > 0)
                        len += (size_t) n;
                (void) close(fd);
                if (memmem(block, len, value, strlen(value)))
                        found = true;
        }
        printf("canary %s\n", found ? "present" : "absent");
        if (found) {
                (void) fflush(stdout);
                exit(1);
        }
        return 0;
}

static int cmd_fds(void) {
        fputs("fds", stdout);
        for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        printf(" %d", fd);
        putchar('\n');
        return 0;
}

/* "stdio 0=<target> 1=<target> 2=<target>" (readlink of /proc/self/fd/N, "closed" if none). */
static int cmd_stdio(void) {
        fputs("stdio", stdout);
        for (int fd = 0; fd <= 2; fd++) {
                char link[64], target[256];
                (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                printf(" %d=%s", fd, n > 0 ? target : "closed");
        }
        putchar('\n');
        return 0;
}

static int cmd_become(long uid) {
        if (setgroups(0, NULL) < 0 || setresgid((gid_t) uid, (gid_t) uid, (gid_t) uid) < 0 ||
            setresuid((uid_t) uid, (uid_t) uid, (uid_t) uid) < 0)
                return -errno;
        printf("uid %d\n", (int) getuid());
        return 0;
}

static int cmd_proc_status(void) {
        static const char *const keys[] = {"NoNewPrivs:", "Seccomp:", "CapEff:", "CapBnd:"};
        char line[512];
        FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return -errno;
        fputs("status", stdout);
        while (fgets(line, sizeof(line), f)) {
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        size_t kl = strlen(keys[i]);
                        if (strncmp(line, keys[i], kl) != 0)
                                continue;
                        const char *v = line + kl + strspn(line + kl, " \t");
                        printf(" %.*s=%.*s", (int) kl - 1, line, (int) strcspn(v, "\n"), v);
                }
        }
        (void) fclose(f);
        printf(" dumpable=%d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
        return 0;
}

/* ---- signals ---- */

static const struct {
        int sig;
        const char *name;
} signals_caught[] = {
        {SIGTERM, "TERM"}, {SIGINT, "INT"},   {SIGHUP, "HUP"},       {SIGQUIT, "QUIT"},
        {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"}, {SIGWINCH, "WINCH"},   {SIGCONT, "CONT"},
        {SIGALRM, "ALRM"}, {SIGPIPE, "PIPE"}, {SIGPWR, "PWR"},       {SIGURG, "URG"},
        {SIGTSTP, "TSTP"}, {SIGTTIN, "TTIN"}, {SIGTTOU, "TTOU"},     {SIGVTALRM, "VTALRM"},
        {SIGPROF, "PROF"}, {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"},     {SIGSYS, "SYS"},
        {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"}, {SIGSTKFLT, "STKFLT"}, {SIGIO, "IO"},
};

static const char *signal_name(int sig) {
        for (size_t i = 0; i < ELEMENTSOF(signals_caught); i++)
                if (signals_caught[i].sig == sig)
                        return signals_caught[i].name;
        return NULL;
}

static int signal_from_name(const char *name) {
        if (strncmp(name, "SIG", 3) == 0)
                name += 3;
        if (strcmp(name, "KILL") == 0)
                return SIGKILL;
        if (strcmp(name, "SEGV") == 0)
                return SIGSEGV;
        for (size_t i = 0; i < ELEMENTSOF(signals_caught); i++)
                if (strcmp(signals_caught[i].name, name) == 0)
                        return signals_caught[i].sig;
        long n;
        if (parse_int(name, 1, 64, &n) == 0)
                return (int) n;
        return -EINVAL;
}

static void noop_handler(int sig) {
        (void) sig;
}

_noreturn_ static void die_by_signal(int sig) {
        sigset_t set;
        struct sigaction sa = {.sa_handler = SIG_DFL};
        (void) fflush(stdout);
        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
        (void) raise(sig);
        /* Not reached for a fatal signal; for one whose default is to ignore, mimic the shell. */
        exit(128 + sig);
}

/*
 * The signals are blocked and collected with sigtimedwait(), so nothing runs in a signal
 * handler. A no-op handler is installed as well: a blocked signal is never discarded, but this
 * also keeps signals whose default action is "ignore" (WINCH, URG, CONT) from being dropped if
 * the mask is ever changed.
 */
static int cmd_signals(double seconds) {
        sigset_t set;
        struct sigaction sa = {.sa_handler = noop_handler};
        sigemptyset(&set);
        for (size_t i = 0; i < ELEMENTSOF(signals_caught); i++) {
                sigaddset(&set, signals_caught[i].sig);
                (void) sigaction(signals_caught[i].sig, &sa, NULL);
        }
        (void) sigprocmask(SIG_BLOCK, &set, NULL);
        printf("ready\n");
        double deadline = now_seconds() + seconds;
        for (;;) {
                double left = deadline - now_seconds();
                if (left <= 0)
                        break;
                struct timespec ts = {.tv_sec = (time_t) left,
                                      .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9)};
                int sig = sigtimedwait(&set, NULL, &ts);
                if (sig < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                const char *name = signal_name(sig);
                if (name)
                        printf("signal %s\n", name);
                else
                        printf("signal %d\n", sig);
                if (memfd_on_signal)
                        (void) cmd_memfd_hash(memfd_on_signal);
                if (sig == SIGTERM && !ignore_term)
                        die_by_signal(SIGTERM);
        }
        printf("signals timeout\n");
        (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
        return 0;
}

/* ---- processes ---- */

static int cmd_orphans(long n) {
        for (long i = 0; i < n; i++) {
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0)
                        return -errno;
                (void) fflush(stdout);
                pid_t child = fork();
                if (child < 0)
                        return -errno;
                if (child == 0) {
                        pid_t grandchild = fork();
                        if (grandchild == 0) {
                                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                                if (null >= 0) {
                                        (void) dup2(null, STDIN_FILENO);
                                        (void) dup2(null, STDOUT_FILENO);
                                        (void) dup2(null, STDERR_FILENO);
                                }
                                sleep_seconds(0.5);
                                _exit(0);
                        }
                        (void) !write(p[1], &grandchild, sizeof(grandchild));
                        _exit(grandchild > 0 ? 0 : 1);
                }
                (void) close(p[1]);
                pid_t grandchild = -1;
                ssize_t got = read(p[0], &grandchild, sizeof(grandchild));
                (void) close(p[0]);
                int status;
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
                if (got != (ssize_t) sizeof(grandchild) || grandchild <= 0)
                        return -ECHILD;
                printf("orphan %d\n", (int) grandchild);
        }
        return 0;
}

static int cmd_zombies(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;
        pid_t parent = getppid();
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char path[300], buf[512];
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t len = read(fd, buf, sizeof(buf) - 1);
                (void) close(fd);
                if (len <= 0)
                        continue;
                buf[len] = '\0';
                /* "pid (comm) S ppid ...": comm may hold spaces and parentheses; use the last ')'.
                 */
                const char *p = strrchr(buf, ')');
                char state;
                int ppid;
                if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' &&
                    ppid == (int) parent) {
                        printf("zombie %s\n", de->d_name);
                        n++;
                }
        }
        (void) closedir(d);
        printf("zombies %d\n", n);
        return 0;
}

static int cmd_wait_file(const char *path) {
        double deadline = now_seconds() + 60;
        while (access(path, F_OK) < 0) {
                if (now_seconds() > deadline) {
                        printf("wait-file %s: timeout\n", path);
                        return -ETIMEDOUT;
                }
                sleep_seconds(0.02);
        }
        return 0;
}

static int cmd_touch(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        (void) close(fd);
        return 0;
}

/* ---- main ---- */

static int usage(const char *why) {
        fprintf(stderr, "ct-workload: %s (see the comment at the top of ct-workload.c)\n", why);
        return 2;
}

int main(int argc, char **argv) {
        (void) setvbuf(stdout, NULL, _IOLBF, 0);
        int i = 1;
        for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
                if (strcmp(argv[i], "--version") == 0) {
                        printf("ct-workload %s\n", CLOUDTASER_VERSION);
                        return 0;
                } else if (strcmp(argv[i], "--ignore-term") == 0)
                        ignore_term = true;
                else
                        return usage("unknown option");
        }
        for (; i < argc; i++) {
                const char *cmd = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
                double d;
                long v;
                int r = 0;
                if (strcmp(cmd, "env-keys") == 0)
                        r = cmd_env_keys();
                else if (strcmp(cmd, "memfd-keys") == 0)
                        r = cmd_memfd_keys();
                else if (strcmp(cmd, "memfd-info") == 0)
                        r = cmd_memfd_info();
                else if (strcmp(cmd, "fds") == 0)
                        r = cmd_fds();
                else if (strcmp(cmd, "stdio") == 0)
                        r = cmd_stdio();
                else if (strcmp(cmd, "proc-status") == 0)
                        r = cmd_proc_status();
                else if (strcmp(cmd, "zombies") == 0)
                        r = cmd_zombies();
                else if (strcmp(cmd, "print-pid") == 0)
                        printf("pid %d ppid %d\n", (int) getpid(), (int) getppid());
                else if (!arg)
                        return usage("unknown command or missing argument");
                else {
                        i++;
                        if (strcmp(cmd, "env-hash") == 0)
                                r = cmd_env_hash(arg);
                        else if (strcmp(cmd, "memfd-hash") == 0)
                                r = cmd_memfd_hash(arg);
                        else if (strcmp(cmd, "memfd-on-signal") == 0)
                                memfd_on_signal = arg;
                        else if (strcmp(cmd, "check-canary") == 0)
                                r = cmd_check_canary(arg);
                        else if (strcmp(cmd, "wait-file") == 0)
                                r = cmd_wait_file(arg);
                        else if (strcmp(cmd, "touch") == 0)
                                r = cmd_touch(arg);
                        else if (strcmp(cmd, "say") == 0)
                                printf("%s\n", arg);
                        else if (strcmp(cmd, "memfd-watch") == 0) {
                                if (i + 1 >= argc || parse_seconds(arg, &d) < 0)
                                        return usage("memfd-watch SECONDS NAME");
                                r = cmd_memfd_watch(d, argv[++i]);
                        } else if (strcmp(cmd, "signals") == 0)
                                r = parse_seconds(arg, &d) < 0 ? -EINVAL : cmd_signals(d);
                        else if (strcmp(cmd, "sleep") == 0) {
                                if (parse_seconds(arg, &d) < 0)
                                        return usage("bad duration");
                                sleep_seconds(d);
                        } else if (strcmp(cmd, "become") == 0)
                                r = parse_int(arg, 1, 65535, &v) < 0 ? -EINVAL : cmd_become(v);
                        else if (strcmp(cmd, "orphans") == 0)
                                r = parse_int(arg, 0, 64, &v) < 0 ? -EINVAL : cmd_orphans(v);
                        else if (strcmp(cmd, "exit") == 0) {
                                if (parse_int(arg, 0, 255, &v) < 0)
                                        return usage("bad exit code");
                                (void) fflush(stdout);
                                exit((int) v);
                        } else if (strcmp(cmd, "kill-self") == 0) {
                                int sig = signal_from_name(arg);
                                if (sig < 0)
                                        return usage("unknown signal");
                                die_by_signal(sig);
                        } else
                                return usage("unknown command");
                }
                if (r < 0) {
                        printf("%s failed: %s\n", cmd, strerror(-r));
                        return 2;
                }
        }
        return 0;
}
