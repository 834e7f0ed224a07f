/* SPDX-License-Identifier: Apache-2.0 */
/* secmem: see secmem.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/secmem.h"

/* memfd_secret(2) has the same number on every architecture that has it (the unified table). */
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* Each region's data pages start with this header; the user's bytes follow it. */
struct header {
        uint64_t magic;
        uint32_t index; /* slot in regions[] */
        uint32_t mechanism;
        size_t size; /* the user's n */
        uint64_t pad;
};
_Static_assert(sizeof(struct header) == 32, "header keeps 16-byte alignment");

#ifdef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE_ MADV_POPULATE_WRITE
#else
#define MADV_POPULATE_WRITE_ 23
#endif

#define MAGIC UINT64_C(0x6374736563726574) /* "ctsecret" */
#define CANARY_LEN 16

struct region {
        void *map; /* whole mapping including both guard pages; NULL when the slot is free */
        size_t map_len;
        struct header *hdr;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct region regions[SECMEM_MAX_REGIONS];
static size_t n_live, high_water;
static bool initialised;
static unsigned init_flags;
static enum secmem_mechanism selected = SECMEM_NONE, weakest_used = SECMEM_MEMFD_SECRET;
static bool any_used;
static int memfd_secret_error = -ENOSYS, mlock_error;
static bool dumpable_off, core_limit_zero;
static size_t bytes_locked;
static uint8_t canary_key[CANARY_LEN];
static size_t page_size;

static size_t round_up(size_t n, size_t to) {
        return (n + to - 1) / to * to;
}

static void canary_for(const struct header *h, uint8_t out[CANARY_LEN]) {
        uintptr_t a = (uintptr_t) h;
        for (size_t i = 0; i < CANARY_LEN; i++)
                out[i] = canary_key[i] ^ (uint8_t) (a >> ((i % sizeof(a)) * 8)) ^ (uint8_t) i;
}

static uint8_t *user_of(struct header *h) {
        return (uint8_t *) (h + 1);
}

/* Maps `len` bytes of memfd_secret memory at `at` (MAP_FIXED over our PROT_NONE reservation). */
static int map_secret(void *at, size_t len) {
        int fd = (int) syscall(SYS_memfd_secret, (unsigned) O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (ftruncate(fd, (off_t) len) < 0) {
                int r = negative_errno();
                (void) close(fd);
                return r;
        }
        void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        int r = p == MAP_FAILED ? negative_errno() : 0;
        (void) close(fd); /* the mapping keeps the memory */
        if (r < 0)
                return r;
        /* secretmem pages are locked by the kernel (VM_LOCKED, charged to RLIMIT_MEMLOCK) but
         * faulted in lazily, and a fault that finds the limit exhausted is a SIGBUS. Populate
         * them now so a shortfall is an error here. (mlock() on such a mapping fails with ENOMEM
         * on recent kernels, so it cannot serve for this.) Kernels before 5.14 lack
         * MADV_POPULATE_WRITE (EINVAL): the pages are then faulted in on first use. */
        if (madvise(p, len, MADV_POPULATE_WRITE_) < 0 && errno != EINVAL)
                return negative_errno();
        return 0;
}

static int probe_memfd_secret(void) {
        void *p = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        int r = map_secret(p, page_size);
        if (r >= 0)
                ((volatile uint8_t *) p)[0] = 1;
        (void) munmap(p, page_size);
        return r;
}

static int probe_mlock(void) {
        void *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        int r = mlock(p, page_size) < 0 ? negative_errno() : 0;
        if (r < 0)
                mlock_error = r;
        (void) munmap(p, page_size);
        return r;
}

static int init_locked(unsigned flags) {
        if (initialised)
                return 0;
        long ps = sysconf(_SC_PAGESIZE);
        page_size = ps > 0 ? (size_t) ps : 4096;
        if (getrandom(canary_key, sizeof(canary_key), 0) != (ssize_t) sizeof(canary_key))
                return -EIO;
        init_flags = flags;
        if (flags & SECMEM_NO_MEMFD_SECRET)
                memfd_secret_error = -EPERM;
        else
                memfd_secret_error = probe_memfd_secret();
        if (memfd_secret_error >= 0)
                selected = SECMEM_MEMFD_SECRET;
        else if (!(flags & SECMEM_NO_MLOCK) && probe_mlock() >= 0)
                selected = SECMEM_MLOCK;
        else
                selected = SECMEM_NONE;
        initialised = true;
        return 0;
}

int secmem_init(unsigned flags) {
        pthread_mutex_lock(&lock);
        int r = initialised && n_live > 0 ? -EBUSY : 0;
        if (r >= 0) {
                initialised = initialised && flags == init_flags;
                r = init_locked(flags);
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int secmem_harden_process(void) {
        int r = 0;
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                r = negative_errno();
        else
                dumpable_off = true;
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_CORE, &rl) < 0) {
                if (r == 0)
                        r = negative_errno();
        } else
                core_limit_zero = true;
        return r;
}

static void note_used(enum secmem_mechanism m) {
        if (!any_used || m < weakest_used)
                weakest_used = m;
        any_used = true;
}

/* Backs the data pages at `data` with the best mechanism available; returns which. */
static enum secmem_mechanism back_pages(uint8_t *data, size_t len) {
        if (selected == SECMEM_MEMFD_SECRET) {
                int r = map_secret(data, len);
                if (r >= 0)
                        return SECMEM_MEMFD_SECRET;
                /* Typically RLIMIT_MEMLOCK: put back an anonymous mapping and go on below. */
                if (mmap(data, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                         -1, 0) == MAP_FAILED)
                        return (enum secmem_mechanism) - 1;
                if (memfd_secret_error == 0)
                        memfd_secret_error = r;
        } else if (mprotect(data, len, PROT_READ | PROT_WRITE) < 0)
                return (enum secmem_mechanism) - 1;

        if (selected == SECMEM_MLOCK || selected == SECMEM_MEMFD_SECRET) {
                if (mlock(data, len) >= 0)
                        return SECMEM_MLOCK;
                if (mlock_error == 0)
                        mlock_error = negative_errno();
        }
        return SECMEM_NONE;
}

int secmem_alloc(size_t n, void **ret) {
        int r;

        if (!ret || n == 0)
                return -EINVAL;
        if (n > SECMEM_MAX_ALLOC)
                return -E2BIG;

        pthread_mutex_lock(&lock);
        r = init_locked(0);
        if (r < 0)
                goto out;
        if (n_live >= SECMEM_MAX_REGIONS) {
                r = -ENOSPC;
                goto out;
        }
        size_t slot = 0;
        while (regions[slot].map)
                slot++;

        size_t data_len = round_up(sizeof(struct header) + n + CANARY_LEN, page_size);
        size_t map_len = data_len + 2 * page_size;
        uint8_t *map =
                mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) {
                r = -ENOMEM;
                goto out;
        }
        uint8_t *data = map + page_size;
        enum secmem_mechanism m = back_pages(data, data_len);
        if ((int) m < 0) {
                (void) munmap(map, map_len);
                r = -ENOMEM;
                goto out;
        }
        /* Never in a core dump; never in a child created by fork() (the wrapper starts the
         * workload with a CLONE_VM spawn, which shares rather than copies). */
        (void) madvise(data, data_len, MADV_DONTDUMP);
        (void) madvise(data, data_len, MADV_DONTFORK);

        struct header *h = (struct header *) data;
        memset(data, 0, data_len);
        *h = (struct header){.magic = MAGIC, .index = (uint32_t) slot, .mechanism = m, .size = n};
        uint8_t canary[CANARY_LEN];
        canary_for(h, canary);
        memcpy(user_of(h) + n, canary, CANARY_LEN);

        regions[slot] = (struct region){.map = map, .map_len = map_len, .hdr = h};
        n_live++;
        if (slot + 1 > high_water)
                high_water = slot + 1;
        if (m != SECMEM_NONE)
                bytes_locked += data_len;
        note_used(m);
        *ret = user_of(h);
        r = 0;
out:
        pthread_mutex_unlock(&lock);
        return r;
}

static struct header *header_of(const void *p) {
        return (struct header *) ((uintptr_t) p - sizeof(struct header));
}

/* Returns the slot of p, or -1 if p is not a live allocation. Called with the lock held. */
static ssize_t find_slot(const void *p) {
        if (!p || ((uintptr_t) p % 16) != 0)
                return -1;
        /* Look the pointer up in the table before touching the memory it points to. */
        for (size_t i = 0; i < high_water; i++)
                if (regions[i].map && (const void *) user_of(regions[i].hdr) == p)
                        return (ssize_t) i;
        return -1;
}

_noreturn_ static void corrupted(void) {
        secmem_wipe_all();
        abort();
}

void secmem_free(void *p) {
        if (!p)
                return;
        pthread_mutex_lock(&lock);
        ssize_t slot = find_slot(p);
        if (slot < 0) {
                pthread_mutex_unlock(&lock);
                corrupted();
        }
        struct region *reg = &regions[slot];
        struct header *h = reg->hdr;
        uint8_t canary[CANARY_LEN];
        canary_for(h, canary);
        if (h->magic != MAGIC || h->index != (uint32_t) slot ||
            memcmp(user_of(h) + h->size, canary, CANARY_LEN) != 0) {
                pthread_mutex_unlock(&lock);
                corrupted();
        }
        size_t data_len = reg->map_len - 2 * page_size;
        if (h->mechanism != SECMEM_NONE)
                bytes_locked -= data_len;
        explicit_bzero(h, data_len);
        (void) munmap(reg->map, reg->map_len);
        *reg = (struct region){};
        n_live--;
        pthread_mutex_unlock(&lock);
}

size_t secmem_size(const void *p) {
        size_t n = 0;
        pthread_mutex_lock(&lock);
        if (find_slot(p) >= 0)
                n = header_of(p)->size;
        pthread_mutex_unlock(&lock);
        return n;
}

int secmem_strndup(const char *s, size_t n, char **ret) {
        char *p;
        int r;

        if (!s || !ret)
                return -EINVAL;
        n = strnlen(s, n);
        if (n >= SECMEM_MAX_ALLOC)
                return -E2BIG;
        r = secmem_alloc(n + 1, (void **) &p);
        if (r < 0)
                return r;
        memcpy(p, s, n);
        p[n] = '\0';
        *ret = p;
        return 0;
}

/* Async-signal-safe: no lock (a handler may interrupt a holder), only plain loads and stores. */
void secmem_wipe_all(void) {
        for (size_t i = 0; i < SECMEM_MAX_REGIONS; i++) {
                struct region *reg = &regions[i];
                if (reg->map && reg->hdr)
                        explicit_bzero(user_of(reg->hdr), reg->hdr->size);
        }
}

void secmem_report(struct secmem_report *ret) {
        pthread_mutex_lock(&lock);
        (void) init_locked(0);
        enum secmem_mechanism m = selected;
        /* Report what allocations really got: a later fallback downgrades the report. */
        if (any_used && weakest_used < m)
                m = weakest_used;
        *ret = (struct secmem_report){
                .mechanism = m,
                .memfd_secret_error = memfd_secret_error < 0 ? memfd_secret_error : 0,
                .mlock_error = mlock_error,
                .dumpable_off = dumpable_off,
                .core_limit_zero = core_limit_zero,
                .regions = n_live,
                .bytes_locked = bytes_locked,
        };
        pthread_mutex_unlock(&lock);
}

const char *secmem_mechanism_to_string(enum secmem_mechanism m) {
        switch (m) {
        case SECMEM_MEMFD_SECRET:
                return "memfd_secret";
        case SECMEM_MLOCK:
                return "mlock";
        default:
                return "none";
        }
}
