/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/secmem. Each scenario that changes process-wide state (the mechanism,
 * RLIMIT_MEMLOCK, the abort on corruption) runs in a forked child so the cases stay independent. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/secmem.h"
#include "tests/tap.h"

/* Runs fn in a child; returns its wait status. */
static int in_child(int (*fn)(void)) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                /* The child must not print TAP lines: its result is its exit status. */
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void) dup2(fd, STDOUT_FILENO);
                _exit(fn());
        }
        int st = 0;
        (void) waitpid(pid, &st, 0);
        return st;
}

/* Reads VmLck (kB) of this process from /proc/self/status. */
static long vm_locked_kb(void) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        long kb = -1;
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmLck:", 6) == 0) {
                        char *end;
                        errno = 0;
                        kb = strtol(line + 6, &end, 10);
                        if (errno)
                                kb = -1;
                }
        fclose(f);
        return kb;
}

/* True when /proc/self/smaps marks the mapping containing p with flag (e.g. "dd", "dc"). */
static bool smaps_has_flag(const void *p, const char *flag) {
        FILE *f = fopen("/proc/self/smaps", "re");
        char line[512];
        bool inside = false, found = false;
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
                        inside = (uintptr_t) p >= lo && (uintptr_t) p < hi;
                        continue;
                }
                if (inside && strncmp(line, "VmFlags:", 8) == 0) {
                        char needle[8];
                        (void) snprintf(needle, sizeof(needle), " %s", flag);
                        found = strstr(line, needle) != NULL;
                        break;
                }
        }
        fclose(f);
        return found;
}

static void test_basic(void) {
        void *p = NULL;
        struct secmem_report rep;

        is_int(secmem_alloc(0, &p), -EINVAL, "alloc(0) is -EINVAL");
        is_int(secmem_alloc(SECMEM_MAX_ALLOC + 1, &p), -E2BIG, "alloc over the limit is -E2BIG");
        ok(p == NULL, "failed alloc leaves *ret untouched");

        is_int(secmem_alloc(100, &p), 0, "alloc(100)");
        ok(p && ((uintptr_t) p % 16) == 0, "result is 16-byte aligned");
        bool zero = true;
        for (size_t i = 0; i < 100; i++)
                zero = zero && ((uint8_t *) p)[i] == 0;
        ok(zero, "memory is zeroed");
        memset(p, 0xAB, 100);
        is_int((long long) secmem_size(p), 100, "secmem_size reports the requested size");
        ok(smaps_has_flag(p, "dd"), "region is MADV_DONTDUMP (VmFlags dd)");
        ok(smaps_has_flag(p, "dc"), "region is MADV_DONTFORK (VmFlags dc)");

        secmem_report(&rep);
        is_int((long long) rep.regions, 1, "report counts one live region");
        diag("mechanism: %s (memfd_secret error %d, mlock error %d)",
             secmem_mechanism_to_string(rep.mechanism), rep.memfd_secret_error, rep.mlock_error);
        if (rep.mechanism != SECMEM_NONE) {
                ok(rep.bytes_locked >= 100, "bytes_locked covers the region");
                ok(vm_locked_kb() > 0, "VmLck is non-zero while a locked region lives");
        } else
                skip(2, "no locking available on this machine");
        secmem_free(p);
        secmem_report(&rep);
        is_int((long long) rep.regions, 0, "free releases the region");
        is_int((long long) rep.bytes_locked, 0, "and its locked bytes");
        secmem_free(NULL);
        ok(true, "secmem_free(NULL) is accepted");

        char *s = NULL;
        is_int(secmem_strndup("canary-secret-value", 6, &s), 0, "strndup");
        is_str(s, "canary", "strndup copies at most n bytes");
        secmem_free(s);
        is_int(secmem_strndup("abc", SIZE_MAX, &s), 0, "strndup with SIZE_MAX stops at the NUL");
        is_str(s, "abc", "strndup content");
        secmem_free(s);
}

/* The sanitizer build installs its own SIGSEGV handler; the guard tests want the plain fault. */
static void default_segv(void) {
        (void) signal(SIGSEGV, SIG_DFL);
        (void) signal(SIGBUS, SIG_DFL);
}

static int child_guard_after(void) {
        uint8_t *p;
        default_segv();
        if (secmem_alloc(10, (void **) &p) < 0)
                return 2;
        size_t ps = (size_t) sysconf(_SC_PAGESIZE);
        /* The data pages end at the next page boundary; the byte after is the guard page. */
        uint8_t *end = (uint8_t *) (((uintptr_t) p + ps) & ~(ps - 1));
        end[0] = 1; /* must fault */
        return 0;
}

static int child_guard_before(void) {
        uint8_t *p;
        default_segv();
        if (secmem_alloc(10, (void **) &p) < 0)
                return 2;
        size_t ps = (size_t) sysconf(_SC_PAGESIZE);
        uint8_t *start = (uint8_t *) ((uintptr_t) p & ~(ps - 1));
        start[-1] = 1; /* must fault */
        return 0;
}

static int child_canary(void) {
        uint8_t *p;
        if (secmem_alloc(10, (void **) &p) < 0)
                return 2;
        p[10] = 0x55;   /* one byte past the end: hits the canary */
        secmem_free(p); /* must abort */
        return 0;
}

static int child_bad_pointer(void) {
        static char stack_thing[32] __attribute__((aligned(16)));
        secmem_free(stack_thing); /* not ours: must abort */
        return 0;
}

static void test_guards(void) {
        int st = in_child(child_guard_after);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "writing past the data pages faults");
        st = in_child(child_guard_before);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "writing before the data pages faults");
        st = in_child(child_canary);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "an overwritten canary aborts on free");
        st = in_child(child_bad_pointer);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "freeing a foreign pointer aborts");
}

/* True when an address lies in a mapping of /proc/self/maps. */
static bool is_mapped(const void *p) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[512];
        bool found = false;
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
                        found = (uintptr_t) p >= lo && (uintptr_t) p < hi;
        }
        fclose(f);
        return found;
}

static bool all_zero(const void *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (((const uint8_t *) p)[i] != 0)
                        return false;
        return true;
}

static void test_arena_reuse(void) {
        struct secmem_report before, after;
        uint8_t *p = NULL, *q = NULL;

        is_int(secmem_alloc(100, (void **) &p), 0, "arena: alloc(100)");
        memset(p, 0xAB, 100);
        secmem_report(&before);
        ok(before.arena_chunks >= 1 && before.arena_bytes >= before.arena_chunks * 4096,
           "arena: the allocation lives in a chunk (%zu chunks, %zu bytes)", before.arena_chunks,
           before.arena_bytes);
        secmem_free(p);
        is_int(secmem_alloc(100, (void **) &q), 0, "arena: alloc(100) again");
        ok(q == p, "arena: the freed slot is reused by the next allocation of its size");
        ok(all_zero(q, 100), "arena: a reused slot is wiped (zero)");
        /* The whole slot, the user's bytes' neighbourhood included, is zero. */
        ok(all_zero(q + 100 + 16, 4096 - 32 - 100 - 16), "arena: the rest of the slot is zero");
        secmem_report(&after);
        is_int((long long) after.arena_chunks, (long long) before.arena_chunks,
               "arena: no new chunk for a reused slot");
        secmem_free(q);

        /* Another size does not take a slot of a different size. */
        uint8_t *big = NULL;
        is_int(secmem_alloc(6000, (void **) &big), 0, "arena: alloc(6000)");
        ok(big != p, "arena: a two-page allocation gets a two-page slot");
        ok(all_zero(big, 6000), "arena: a new slot is zero");
        secmem_free(big);
}

static void test_arena_growth(void) {
        enum { N = 3 * SECMEM_CHUNK_PAGES };
        static uint8_t *ptrs[N];
        struct secmem_report before, during, after;
        bool distinct = true, intact = true;

        secmem_report(&before);
        for (size_t i = 0; i < N; i++)
                if (secmem_alloc(64, (void **) &ptrs[i]) < 0) {
                        ok(false, "growth: alloc %zu", i);
                        return;
                }
        for (size_t i = 0; i < N; i++)
                memset(ptrs[i], (int) (i & 0xff), 64);
        for (size_t i = 0; i < N; i++) {
                for (size_t k = 0; k < 64; k++)
                        intact = intact && ptrs[i][k] == (uint8_t) (i & 0xff);
                distinct = distinct && (i == 0 || ptrs[i] != ptrs[i - 1]);
        }
        secmem_report(&during);
        ok(distinct && intact, "growth: %d one-page slots, each its own, none overwritten", N);
        ok(during.arena_chunks > before.arena_chunks,
           "growth: the arena grew by whole chunks (%zu -> %zu)", before.arena_chunks,
           during.arena_chunks);
        ok(during.arena_bytes % (SECMEM_CHUNK_PAGES * 4096u) == 0,
           "growth: chunks are %d pages each", SECMEM_CHUNK_PAGES);
        for (size_t i = 0; i < N; i++)
                secmem_free(ptrs[i]);
        secmem_report(&after);
        is_int((long long) after.regions, (long long) before.regions, "growth: all released");
        is_int((long long) after.arena_chunks, (long long) during.arena_chunks,
               "growth: the chunks stay mapped for the next allocations");
        ok(is_mapped(ptrs[0]) && is_mapped(ptrs[N - 1]), "growth: freed slots stay mapped");
        /* Taken again: the same slots, no new chunk. */
        for (size_t i = 0; i < N; i++)
                if (secmem_alloc(64, (void **) &ptrs[i]) < 0)
                        break;
        secmem_report(&during);
        is_int((long long) during.arena_chunks, (long long) after.arena_chunks,
               "growth: freed slots serve the same number again without a new chunk");
        for (size_t i = 0; i < N; i++)
                secmem_free(ptrs[i]);
}

static void test_arena_large(void) {
        struct secmem_report before, during, after;
        size_t n = (SECMEM_SLOT_MAX_PAGES + 4) * 4096u;
        uint8_t *p = NULL;

        secmem_report(&before);
        is_int(secmem_alloc(n, (void **) &p), 0, "large: alloc(%zu)", n);
        secmem_report(&during);
        is_int((long long) during.arena_bytes, (long long) before.arena_bytes,
               "large: over SECMEM_SLOT_MAX_PAGES pages it is not in the arena");
        ok(all_zero(p, n), "large: zeroed");
        memset(p, 0x5A, n);
        ok(smaps_has_flag(p, "dd") && smaps_has_flag(p, "dc"), "large: DONTDUMP and DONTFORK");
        if (during.mechanism != SECMEM_NONE)
                ok(during.bytes_locked >= before.bytes_locked + n, "large: locked");
        else
                skip(1, "no locking available on this machine");
        secmem_free(p);
        secmem_report(&after);
        ok(!is_mapped(p), "large: its own mapping is unmapped on free");
        is_int((long long) after.bytes_locked, (long long) before.bytes_locked,
               "large: its locked bytes are released");
}

static int child_large_guard_after(void) {
        uint8_t *p;
        size_t n = (SECMEM_SLOT_MAX_PAGES + 1) * 4096u;
        default_segv();
        if (secmem_alloc(n, (void **) &p) < 0)
                return 2;
        size_t ps = (size_t) sysconf(_SC_PAGESIZE);
        uint8_t *end = (uint8_t *) (((uintptr_t) p + n + 16 + ps - 1) & ~(ps - 1));
        end[0] = 1; /* must fault */
        return 0;
}

/* The slot after a full chunk's last slot: the guard of the chunk's end. */
static int child_guard_second_chunk(void) {
        uint8_t *p = NULL;
        default_segv();
        for (int i = 0; i < SECMEM_CHUNK_PAGES; i++)
                if (secmem_alloc(10, (void **) &p) < 0)
                        return 2;
        size_t ps = (size_t) sysconf(_SC_PAGESIZE);
        uint8_t *start = (uint8_t *) ((uintptr_t) p & ~(ps - 1));
        start[-1] = 1; /* must fault */
        return 0;
}

/* A write to a freed slot (its free-list link) is caught at the next allocation. */
static int child_use_after_free(void) {
        uint8_t *p;
        if (secmem_alloc(10, (void **) &p) < 0)
                return 2;
        secmem_free(p);
        memset(p - 32, 0x41, 32);              /* the link lives where the header was */
        (void) secmem_alloc(10, (void **) &p); /* must abort */
        return 0;
}

/* fork(): the child has none of the parent's secure pages (MADV_DONTFORK); it must allocate
 * afresh instead of taking the parent's free slots, which are not mapped in it. */
static int child_after_fork(void) {
        uint8_t *p;
        struct secmem_report rep;
        secmem_report(&rep);
        if (rep.regions != 0)
                return 3;
        for (int i = 0; i < 8; i++) {
                if (secmem_alloc(100, (void **) &p) < 0)
                        return 4;
                memset(p, 'c', 100);
                secmem_free(p);
        }
        return 0;
}

static void test_arena_guards_and_fork(void) {
        int st = in_child(child_large_guard_after);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "large: writing past its pages faults");
        st = in_child(child_guard_second_chunk);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
           "a slot of a later chunk has its guard page before it too");
        st = in_child(child_use_after_free);
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
           "a write to a freed slot aborts at the next allocation");

        uint8_t *keep = NULL, *freed = NULL;
        is_int(secmem_alloc(100, (void **) &keep), 0, "fork: the parent holds a slot");
        is_int(secmem_alloc(100, (void **) &freed), 0, "fork: and frees another");
        secmem_free(freed);
        st = in_child(child_after_fork);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "fork: the child starts with an empty allocator and allocates (status %d)", st);
        secmem_free(keep);
}

enum { THREADS = 4, ROUNDS = 2000 };

static void *thread_main(void *arg) {
        uintptr_t id = (uintptr_t) arg;
        uint32_t x = (uint32_t) id * 2654435761u + 1;
        uint8_t *held[8] = {};
        size_t sizes[8] = {};
        for (int round = 0; round < ROUNDS; round++) {
                x = x * 1103515245u + 12345u;
                size_t k = (x >> 8) % 8;
                if (held[k]) {
                        for (size_t i = 0; i < sizes[k]; i++)
                                if (held[k][i] != (uint8_t) (id + k))
                                        return (void *) 1;
                        secmem_free(held[k]);
                        held[k] = NULL;
                        continue;
                }
                sizes[k] = 1 + (x >> 12) % 9000; /* one to three pages */
                if (secmem_alloc(sizes[k], (void **) &held[k]) < 0)
                        return (void *) 2;
                if (!all_zero(held[k], sizes[k]))
                        return (void *) 3;
                memset(held[k], (int) (uint8_t) (id + k), sizes[k]);
        }
        for (size_t k = 0; k < 8; k++)
                secmem_free(held[k]);
        return NULL;
}

static void test_arena_threads(void) {
        struct secmem_report before, after;
        pthread_t t[THREADS];
        bool good = true;

        secmem_report(&before);
        for (uintptr_t i = 0; i < THREADS; i++)
                good = good && pthread_create(&t[i], NULL, thread_main, (void *) (i + 1)) == 0;
        for (size_t i = 0; i < THREADS; i++) {
                void *res = (void *) 9;
                (void) pthread_join(t[i], &res);
                good = good && res == NULL;
        }
        ok(good,
           "threads: %d threads allocating and freeing: every block zero when taken and "
           "intact until freed",
           THREADS);
        secmem_report(&after);
        is_int((long long) after.regions, (long long) before.regions, "threads: all released");
        is_int((long long) after.bytes_locked, (long long) before.bytes_locked,
               "threads: locked bytes back where they were");
}

static int child_no_memlock(void) {
        /* Simulate an unprivileged container: no CAP_IPC_LOCK effect and RLIMIT_MEMLOCK 0. */
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
                return 10;
        if (geteuid() == 0) {
                /* root bypasses RLIMIT_MEMLOCK through CAP_IPC_LOCK: drop it from the
                 * effective set by becoming another user is not possible here, so ask
                 * secmem to behave as if mlock were refused. */
                if (secmem_init(SECMEM_NO_MEMFD_SECRET | SECMEM_NO_MLOCK) < 0)
                        return 11;
        }
        char *p;
        if (secmem_alloc(4000, (void **) &p) < 0)
                return 12;
        memset(p, 'x', 4000);
        struct secmem_report rep;
        secmem_report(&rep);
        if (rep.mechanism != SECMEM_NONE)
                return 13;
        if (rep.bytes_locked != 0)
                return 14;
        secmem_free(p);
        return 0;
}

static int child_no_memfd_secret(void) {
        if (secmem_init(SECMEM_NO_MEMFD_SECRET) < 0)
                return 10;
        char *p;
        if (secmem_alloc(64, (void **) &p) < 0)
                return 11;
        struct secmem_report rep;
        secmem_report(&rep);
        /* mlock works for root or with enough RLIMIT_MEMLOCK. */
        if (rep.mechanism != SECMEM_MLOCK && rep.mechanism != SECMEM_NONE)
                return 12;
        if (rep.mechanism == SECMEM_MLOCK && rep.bytes_locked == 0)
                return 13;
        secmem_free(p);
        return rep.mechanism == SECMEM_MLOCK ? 0 : 20;
}

static int child_init_busy(void) {
        char *p;
        if (secmem_alloc(8, (void **) &p) < 0)
                return 10;
        if (secmem_init(SECMEM_NO_MLOCK) != -EBUSY)
                return 11;
        secmem_free(p);
        return 0;
}

static int child_many_regions(void) {
        static void *ptrs[SECMEM_MAX_REGIONS];
        int r = 0;
        size_t n = 0;
        if (secmem_init(SECMEM_NO_MEMFD_SECRET | SECMEM_NO_MLOCK) < 0)
                return 9;
        for (; n < SECMEM_MAX_REGIONS; n++)
                if ((r = secmem_alloc(1, &ptrs[n])) < 0) {
                        fprintf(stderr, "alloc %zu: %s\n", n, strerror(-r));
                        return 10;
                }
        if (secmem_alloc(1, &(void *){NULL}) != -ENOSPC)
                return 11;
        for (size_t i = 0; i < n; i++)
                secmem_free(ptrs[i]);
        return 0;
}

static void test_fallbacks(void) {
        int st = in_child(child_no_memlock);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "without mlock the allocator still works and reports 'none' (exit %d)",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        st = in_child(child_no_memfd_secret);
        ok(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 20),
           "without memfd_secret it falls back to mlock (exit %d)",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        st = in_child(child_init_busy);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "secmem_init after allocations is -EBUSY");
        st = in_child(child_many_regions);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "region limit gives -ENOSPC (exit %d)",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int child_wipe_highest(void) {
        char *a, *b, *c;
        if (secmem_alloc(32, (void **) &a) < 0 || secmem_alloc(32, (void **) &b) < 0 ||
            secmem_alloc(32, (void **) &c) < 0)
                return 2;
        secmem_free(a);
        secmem_free(b);
        memcpy(c, "canary-0123456789", 17);
        secmem_wipe_all();
        return all_zero(c, 32) ? 0 : 3;
}

static void test_wipe_all_and_harden(void) {
        char *p;
        is_int(secmem_alloc(32, (void **) &p), 0, "alloc for wipe_all");
        memcpy(p, "canary-0123456789", 17);
        secmem_wipe_all();
        bool zero = true;
        for (size_t i = 0; i < 32; i++)
                zero = zero && p[i] == 0;
        ok(zero, "secmem_wipe_all zeroes live regions");
        secmem_free(p);

        /* The live region in the highest slot used is wiped too (the walk stops there); in a
         * child, whose table starts empty after fork. */
        int st = in_child(child_wipe_highest);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "secmem_wipe_all reaches the highest slot in use (status %d)", st);

        is_int(secmem_harden_process(), 0, "harden_process");
        struct secmem_report rep;
        secmem_report(&rep);
        ok(rep.dumpable_off && prctl(PR_GET_DUMPABLE) == 0, "process is not dumpable");
        struct rlimit rl;
        ok(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0 &&
                   rep.core_limit_zero,
           "RLIMIT_CORE is 0");
}

static void test_fit(void) {
        size_t pg = (size_t) sysconf(_SC_PAGESIZE), over = 48; /* header 32, canary 16 */
        is_int((long long) secmem_fit(0), 0, "fit(0) is 0");
        is_int((long long) secmem_fit(1), (long long) (pg - over), "fit(1) fills one page");
        is_int((long long) secmem_fit(pg - over), (long long) (pg - over), "a full page stays");
        is_int((long long) secmem_fit(pg - over + 1), (long long) (2 * pg - over),
               "one byte more is two pages");
        is_int((long long) secmem_fit(SECMEM_MAX_ALLOC), (long long) SECMEM_MAX_ALLOC,
               "never past SECMEM_MAX_ALLOC");
        is_int((long long) secmem_fit(SECMEM_MAX_ALLOC + 1), (long long) SECMEM_MAX_ALLOC + 1,
               "an impossible size is returned as is");
        /* An allocation of fit(n) is as many pages as one of n: writing its last byte is fine. */
        void *p = NULL;
        is_int(secmem_alloc(secmem_fit(100), &p), 0, "allocate fit(100)");
        if (p) {
                ((char *) p)[secmem_fit(100) - 1] = 'x';
                secmem_free(p); /* checks the canary right after */
        }
        ok(true, "the last byte of a fitted allocation is usable, its canary intact");
}

static void test_strings(void) {
        is_str(secmem_mechanism_to_string(SECMEM_MEMFD_SECRET), "memfd_secret", "name memfd");
        is_str(secmem_mechanism_to_string(SECMEM_MLOCK), "mlock", "name mlock");
        is_str(secmem_mechanism_to_string(SECMEM_NONE), "none", "name none");
}

int main(void) {
        test_basic();
        test_guards();
        test_arena_reuse();
        test_arena_growth();
        test_arena_large();
        test_arena_guards_and_fork();
        test_arena_threads();
        test_fallbacks();
        test_strings();
        test_fit();
        test_wipe_all_and_harden(); /* last: makes the process non-dumpable */
        return tap_done();
}
