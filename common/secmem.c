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

/* Each allocation's data pages start with this header; the user's bytes follow it. */
struct header {
        uint64_t magic;
        uint32_t index; /* slot in regions[] */
        uint32_t mechanism;
        size_t size; /* the user's n */
        uint64_t pad;
};
_Static_assert(sizeof(struct header) == 32, "header keeps 16-byte alignment");

/* A free arena slot's first bytes (the rest of the slot is wiped): the link of its free list. */
struct free_node {
        uint64_t magic; /* FREE_MAGIC ^ its own address */
        uint32_t pages;
        uint32_t mechanism;
        struct free_node *next;
};

#ifdef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE_ MADV_POPULATE_WRITE
#else
#define MADV_POPULATE_WRITE_ 23
#endif

#define MAGIC UINT64_C(0x6374736563726574)      /* "ctsecret" */
#define FREE_MAGIC UINT64_C(0x6374667265656564) /* "ctfreeed" */
#define CANARY_LEN 16

struct region {
        uint8_t *data; /* the data pages; NULL when the entry is unused */
        size_t data_len;
        bool arena; /* a slot of a chunk (kept on free) or its own mapping (unmapped on free) */
        struct header *hdr;
};

/* A chunk: one mapping, PROT_NONE but for the slots carved in it. Layout:
 * [guard][slot 1][guard][slot 2][guard]...[not yet carved]. Each slot is made readable and
 * writable once, when it is carved; the pages between stay PROT_NONE and are never touched,
 * so they cost neither memory nor a direct-map removal. */
struct chunk {
        uint8_t *base;
        size_t len;
        size_t used; /* bytes carved from base, the leading guard included */
        enum secmem_mechanism mechanism;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct region regions[SECMEM_MAX_REGIONS];
static struct chunk chunks[SECMEM_MAX_CHUNKS];
static struct free_node *free_lists[SECMEM_SLOT_MAX_PAGES + 1]; /* by page count */
static size_t n_chunks, chunk_pages = SECMEM_CHUNK_PAGES;
static size_t n_live, high_water;
static bool initialised, atfork_registered;
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

/* Never in a core dump; never in a child created by fork() (the wrapper starts the workload
 * with a CLONE_VM spawn, which shares rather than copies). */
static void exclude(void *p, size_t len) {
        (void) madvise(p, len, MADV_DONTDUMP);
        (void) madvise(p, len, MADV_DONTFORK);
}

/* secretmem pages are locked by the kernel (VM_LOCKED, charged to RLIMIT_MEMLOCK) but faulted
 * in lazily, and a fault that finds the limit exhausted is a SIGBUS. Populate them now so a
 * shortfall is an error here. (mlock() on such a mapping fails with ENOMEM on recent kernels,
 * so it cannot serve for this.) Kernels before 5.14 lack MADV_POPULATE_WRITE (EINVAL): the
 * pages are then faulted in on first use; some kernels answer EINVAL for secretmem too. */
static bool no_populate; /* the kernel answered EINVAL once: do not ask again */

static int populate(void *p, size_t len) {
        if (no_populate || madvise(p, len, MADV_POPULATE_WRITE_) >= 0)
                return 0;
        if (errno != EINVAL)
                return negative_errno();
        no_populate = true;
        return 0;
}

/* A new memfd_secret mapping of len bytes with protection prot, at `at` (MAP_FIXED) or
 * anywhere. The descriptor is closed at once: the mapping keeps the memory, and a program that
 * closes every descriptor (the CA signer) keeps its arena. */
static void *map_secret(void *at, size_t len, int prot, int *ret_error) {
        _cleanup_close_ int fd = (int) syscall(SYS_memfd_secret, (unsigned) O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t) len) < 0) {
                *ret_error = negative_errno();
                return NULL;
        }
        void *p = mmap(at, len, prot, MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
        if (p == MAP_FAILED) {
                *ret_error = negative_errno();
                return NULL;
        }
        return p;
}

static void forget_arena(void) {
        memset(chunks, 0, sizeof(chunks));
        memset(free_lists, 0, sizeof(free_lists));
        n_chunks = 0;
        chunk_pages = SECMEM_CHUNK_PAGES;
}

/* fork(): the child has none of the parent's secure pages (MADV_DONTFORK), so it starts with
 * an empty table and arena, as if nothing had been allocated. posix_spawn's CLONE_VM child
 * runs no fork handler and shares the parent's memory. The prepare handler takes the lock so
 * that no other thread is half-way through an allocation at the fork. */
static void atfork_prepare(void) {
        pthread_mutex_lock(&lock);
}
static void atfork_parent(void) {
        pthread_mutex_unlock(&lock);
}
static void atfork_child(void) {
        memset(regions, 0, sizeof(regions));
        forget_arena();
        n_live = high_water = bytes_locked = 0;
        pthread_mutex_unlock(&lock);
}

/* Maps a chunk of pages pages (PROT_NONE) with the selected mechanism, falling back from
 * memfd_secret to anonymous pages (RLIMIT_MEMLOCK is charged for the whole memfd_secret mapping
 * when it is made, so a smaller chunk is tried before giving it up). */
static struct chunk *new_chunk(size_t pages) {
        if (n_chunks >= SECMEM_MAX_CHUNKS)
                return NULL;
        struct chunk *c = &chunks[n_chunks];
        if (selected == SECMEM_MEMFD_SECRET) {
                for (size_t n = MAX(pages, chunk_pages); n >= pages; n /= 2) {
                        int r = 0;
                        void *p = map_secret(NULL, n * page_size, PROT_NONE, &r);
                        if (p) {
                                *c = (struct chunk){.base = p,
                                                    .len = n * page_size,
                                                    .mechanism = SECMEM_MEMFD_SECRET};
                                break;
                        }
                        if (memfd_secret_error == 0)
                                memfd_secret_error = r;
                        chunk_pages = MAX(n / 2, 1); /* the next chunk asks for less */
                }
        }
        if (!c->base) {
                size_t n = MAX(pages, SECMEM_CHUNK_PAGES);
                void *p = mmap(NULL, n * page_size, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED)
                        return NULL;
                *c = (struct chunk){.base = p,
                                    .len = n * page_size,
                                    .mechanism =
                                            selected == SECMEM_NONE ? SECMEM_NONE : SECMEM_MLOCK};
        }
        exclude(c->base, c->len);
        c->used = page_size; /* the leading guard */
        n_chunks++;
        return c;
}

/* Makes a carved slot usable: readable and writable, locked. Returns the mechanism it got, or
 * -1 when it cannot be used at all. */
static int open_slot(uint8_t *data, size_t len, enum secmem_mechanism m) {
        if (mprotect(data, len, PROT_READ | PROT_WRITE) < 0)
                return -1;
        if (m == SECMEM_MEMFD_SECRET)
                return populate(data, len) < 0 ? -1 : SECMEM_MEMFD_SECRET;
        if (m == SECMEM_MLOCK) {
                if (mlock(data, len) >= 0)
                        return SECMEM_MLOCK;
                if (mlock_error == 0)
                        mlock_error = negative_errno();
        }
        return SECMEM_NONE;
}

static bool in_arena(const void *p) {
        for (size_t i = 0; i < n_chunks; i++)
                if ((const uint8_t *) p >= chunks[i].base &&
                    (const uint8_t *) p < chunks[i].base + chunks[i].len)
                        return true;
        return false;
}

_noreturn_ static void corrupted(void) {
        secmem_wipe_all();
        abort();
}

/* A slot of exactly `pages` data pages: a freed one (already wiped), else a new one carved from
 * the last chunk or from a new chunk. NULL when the arena cannot serve it. */
static uint8_t *arena_take(size_t pages, enum secmem_mechanism *ret_m) {
        struct free_node *f = free_lists[pages];
        if (f) {
                /* The link was written by secmem_free; a caller writing to freed memory is
                 * corruption, caught here before the link is followed. */
                if (f->magic != (FREE_MAGIC ^ (uintptr_t) f) || f->pages != pages ||
                    (f->next && !in_arena(f->next)))
                        corrupted();
                free_lists[pages] = f->next;
                *ret_m = (enum secmem_mechanism) f->mechanism;
                explicit_bzero(f, sizeof(*f));
                return (uint8_t *) f;
        }
        size_t need = (pages + 1) * page_size; /* the slot and its trailing guard */
        struct chunk *c = n_chunks ? &chunks[n_chunks - 1] : NULL;
        if (!c || c->len - c->used < need) {
                c = new_chunk(pages + 2);
                if (!c)
                        return NULL;
        }
        uint8_t *data = c->base + c->used;
        int m = open_slot(data, pages * page_size, c->mechanism);
        if (m < 0) {
                c->used = c->len; /* nothing more from this chunk */
                return NULL;
        }
        c->used += need;
        *ret_m = (enum secmem_mechanism) m;
        return data;
}

static void arena_give_back(uint8_t *data, size_t len, enum secmem_mechanism m) {
        struct free_node *f = (struct free_node *) data;
        size_t pages = len / page_size;
        *f = (struct free_node){.magic = FREE_MAGIC ^ (uintptr_t) f,
                                .pages = (uint32_t) pages,
                                .mechanism = m,
                                .next = free_lists[pages]};
        free_lists[pages] = f;
}

/* An allocation of its own: [guard][data][guard], unmapped on free. For allocations larger than
 * an arena slot, and when the arena cannot serve one (out of chunks, a failed populate). */
static uint8_t *own_mapping(size_t data_len, enum secmem_mechanism *ret_m) {
        size_t map_len = data_len + 2 * page_size;
        uint8_t *map =
                mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED)
                return NULL;
        uint8_t *data = map + page_size;
        enum secmem_mechanism m = SECMEM_NONE;
        int r = 0;
        if (selected == SECMEM_MEMFD_SECRET) {
                if (map_secret(data, data_len, PROT_READ | PROT_WRITE, &r) &&
                    (r = populate(data, data_len)) >= 0)
                        m = SECMEM_MEMFD_SECRET;
                else {
                        if (memfd_secret_error == 0)
                                memfd_secret_error = r;
                        /* Typically RLIMIT_MEMLOCK: put back an anonymous mapping. */
                        if (mmap(data, data_len, PROT_NONE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                                 0) == MAP_FAILED) {
                                (void) munmap(map, map_len);
                                return NULL;
                        }
                }
        }
        if (m != SECMEM_MEMFD_SECRET) {
                int got = open_slot(data, data_len,
                                    selected == SECMEM_NONE ? SECMEM_NONE : SECMEM_MLOCK);
                if (got < 0) {
                        (void) munmap(map, map_len);
                        return NULL;
                }
                m = (enum secmem_mechanism) got;
        }
        exclude(data, data_len);
        *ret_m = m;
        return data;
}

static int init_locked(unsigned flags) {
        if (initialised)
                return 0;
        long ps = sysconf(_SC_PAGESIZE);
        page_size = ps > 0 ? (size_t) ps : 4096;
        if (getrandom(canary_key, sizeof(canary_key), 0) != (ssize_t) sizeof(canary_key))
                return -EIO;
        if (!atfork_registered) {
                int r = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
                if (r != 0)
                        return -r;
                atfork_registered = true;
        }
        /* A new mechanism: chunks of the old one go (secmem_init allows it only when nothing
         * lives in them). */
        for (size_t i = 0; i < n_chunks; i++)
                (void) munmap(chunks[i].base, chunks[i].len);
        forget_arena();
        init_flags = flags;
        memfd_secret_error = 0;
        mlock_error = 0;
        selected = SECMEM_MEMFD_SECRET;
        /* The probe of memfd_secret is the arena's first chunk. */
        if (flags & SECMEM_NO_MEMFD_SECRET)
                memfd_secret_error = -EPERM;
        else if (!new_chunk(3) || chunks[0].mechanism != SECMEM_MEMFD_SECRET) {
                for (size_t i = 0; i < n_chunks; i++)
                        (void) munmap(chunks[i].base, chunks[i].len);
                forget_arena();
                if (memfd_secret_error == 0)
                        memfd_secret_error = -ENOMEM;
        }
        if (memfd_secret_error < 0) {
                selected = SECMEM_MLOCK;
                void *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
                if (p == MAP_FAILED)
                        return negative_errno();
                if ((flags & SECMEM_NO_MLOCK) || mlock(p, page_size) < 0) {
                        if (!(flags & SECMEM_NO_MLOCK))
                                mlock_error = negative_errno();
                        selected = SECMEM_NONE;
                }
                (void) munmap(p, page_size);
        }
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
        while (regions[slot].data)
                slot++;

        size_t data_len = round_up(sizeof(struct header) + n + CANARY_LEN, page_size);
        size_t pages = data_len / page_size;
        enum secmem_mechanism m = SECMEM_NONE;
        uint8_t *data = pages <= SECMEM_SLOT_MAX_PAGES ? arena_take(pages, &m) : NULL;
        bool arena = data != NULL;
        if (!data)
                data = own_mapping(data_len, &m);
        if (!data) {
                r = -ENOMEM;
                goto out;
        }
        /* New pages are zero, a reused slot was wiped when it was freed. */
        struct header *h = (struct header *) data;
        *h = (struct header){.magic = MAGIC, .index = (uint32_t) slot, .mechanism = m, .size = n};
        uint8_t canary[CANARY_LEN];
        canary_for(h, canary);
        memcpy(user_of(h) + n, canary, CANARY_LEN);

        regions[slot] =
                (struct region){.data = data, .data_len = data_len, .arena = arena, .hdr = h};
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

size_t secmem_fit(size_t n) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t pg = ps > 0 ? (size_t) ps : 4096, over = sizeof(struct header) + CANARY_LEN;
        if (n == 0 || n > SECMEM_MAX_ALLOC)
                return n;
        return MIN(round_up(over + n, pg) - over, (size_t) SECMEM_MAX_ALLOC);
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
                if (regions[i].data && (const void *) user_of(regions[i].hdr) == p)
                        return (ssize_t) i;
        return -1;
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
        enum secmem_mechanism m = (enum secmem_mechanism) h->mechanism;
        if (m != SECMEM_NONE)
                bytes_locked -= reg->data_len;
        explicit_bzero(reg->data, reg->data_len);
        if (reg->arena)
                arena_give_back(reg->data, reg->data_len, m);
        else
                (void) munmap(reg->data - page_size, reg->data_len + 2 * page_size);
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

/* Async-signal-safe: no lock (a handler may interrupt a holder), only plain loads and stores.
 * Only up to the highest slot ever used: the rest of the table was never written, and reading it
 * would fault in 128 KiB of zero pages at every exit. */
void secmem_wipe_all(void) {
        size_t n = MIN(high_water, (size_t) SECMEM_MAX_REGIONS);
        for (size_t i = 0; i < n; i++) {
                struct region *reg = &regions[i];
                if (reg->data && reg->hdr)
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
        size_t arena_bytes = 0;
        for (size_t i = 0; i < n_chunks; i++)
                arena_bytes += chunks[i].len;
        *ret = (struct secmem_report){
                .mechanism = m,
                .memfd_secret_error = memfd_secret_error < 0 ? memfd_secret_error : 0,
                .mlock_error = mlock_error,
                .dumpable_off = dumpable_off,
                .core_limit_zero = core_limit_zero,
                .regions = n_live,
                .bytes_locked = bytes_locked,
                .arena_chunks = n_chunks,
                .arena_bytes = arena_bytes,
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
