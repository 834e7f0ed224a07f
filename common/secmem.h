/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secmem: the secure allocator for secrets, tokens and private keys.
 *
 * Every allocation has its own data pages between two guard pages: [guard][data pages][guard],
 * where the data pages are the fewest that hold a 32-byte header, the user's bytes and a canary.
 * The data pages come from memfd_secret(2) when the kernel offers it (the pages are then removed
 * from the kernel's direct map: not even root can read them through /proc/<pid>/mem), else from
 * anonymous memory locked with mlock(2). Either way they are marked MADV_DONTDUMP and
 * MADV_DONTFORK (a forked child does not inherit them and starts with an empty allocator; see
 * the wrapper), a canary sits right after the user's bytes and is checked on free, and the bytes
 * are wiped with explicit_bzero on free and, through secmem_wipe_all(), on every exit path the
 * program installs.
 *
 * The arena: allocations of up to SECMEM_SLOT_MAX_PAGES data pages are slots of one per-process
 * arena, a few chunks of SECMEM_CHUNK_PAGES pages each, each chunk one memfd_secret mapping (or
 * one anonymous mapping) made once and never unmapped before exit. A chunk is PROT_NONE but for
 * the slots carved from it, one after the other with one PROT_NONE page between neighbours (the
 * guard after a slot is the guard before the next). A freed slot is wiped and kept, still locked,
 * for the next allocation of the same number of pages, which takes it without a system call.
 * Carving a slot is an mprotect and a populate; a chunk is a memfd_secret, ftruncate, mmap and
 * two madvise; so a process's secure memory costs a handful of system calls instead of eight per
 * allocation, and each page is taken out of the direct map (a TLB shootdown on every CPU) once.
 * Larger allocations, and any the arena cannot serve (SECMEM_MAX_CHUNKS chunks in use), get a
 * mapping of their own with the same layout, unmapped on free. A memfd_secret chunk is charged
 * to RLIMIT_MEMLOCK in full when it is mapped: when the limit refuses it, smaller chunks are
 * tried, down to the one slot needed, then locked anonymous pages, then plain ones.
 *
 * When locking is not permitted (no CAP_IPC_LOCK and a low RLIMIT_MEMLOCK) the allocator still
 * works with plain anonymous pages (still guarded, DONTDUMP and wiped) and reports the mechanism
 * as SECMEM_NONE so the program can say so. Nothing here logs; callers read secmem_report().
 *
 * Thread-safe. Limits: at most SECMEM_MAX_REGIONS live allocations (-ENOSPC beyond), each at most
 * SECMEM_MAX_ALLOC bytes (-E2BIG beyond).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SECMEM_MAX_REGIONS 4096
#define SECMEM_MAX_ALLOC (64u * 1024u * 1024u)
#define SECMEM_CHUNK_PAGES 64    /* pages of address space per arena chunk (256 KiB) */
#define SECMEM_SLOT_MAX_PAGES 16 /* data pages of the largest arena slot; larger: own mapping */
#define SECMEM_MAX_CHUNKS 64     /* chunks per process; beyond, allocations get own mappings */

enum secmem_mechanism {
        SECMEM_NONE = 0,     /* plain anonymous pages: guarded, DONTDUMP, wiped, but not locked */
        SECMEM_MLOCK,        /* anonymous pages locked with mlock(2) */
        SECMEM_MEMFD_SECRET, /* memfd_secret(2): locked and out of the kernel direct map */
};

/* Flags for secmem_init(), mostly for tests. */
enum {
        SECMEM_NO_MEMFD_SECRET = 1u << 0, /* never try memfd_secret(2) */
        SECMEM_NO_MLOCK = 1u << 1,        /* never try mlock(2) (simulates the fallback) */
};

struct secmem_report {
        enum secmem_mechanism mechanism; /* what allocations get now */
        int memfd_secret_error;          /* -errno of the memfd_secret probe, 0 when it worked */
        int mlock_error;                 /* -errno of the first failed mlock, 0 if none */
        bool dumpable_off;               /* PR_SET_DUMPABLE is 0 (set by secmem_harden_process) */
        bool core_limit_zero;            /* RLIMIT_CORE is 0 (set by secmem_harden_process) */
        size_t regions;                  /* live allocations */
        size_t bytes_locked;             /* data pages of live allocations that are locked */
        size_t arena_chunks;             /* chunks of the arena (never unmapped before exit) */
        size_t arena_bytes;              /* their address space: live and free slots, guards */
};

/* Chooses the mechanism (probing memfd_secret by mapping the arena's first chunk, then mlock).
 * Optional: the first secmem_alloc() calls it with flags 0. Calling it again after allocations
 * exist returns -EBUSY; with other flags and none alive, the arena is unmapped and made anew. */
int secmem_init(unsigned flags);

/* Process-wide hardening: PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 (soft and hard). Returns 0 or the
 * first -errno; each step is attempted regardless and recorded in the report. */
int secmem_harden_process(void);

/* Allocates n (1..SECMEM_MAX_ALLOC) zeroed bytes. 0 and *ret set on success; -ENOMEM, -E2BIG,
 * -EINVAL (n == 0), -ENOSPC (too many regions). The result is aligned to 16 bytes. */
int secmem_alloc(size_t n, void **ret);

/* Wipes and releases an allocation. NULL is accepted. A pointer that secmem did not return, or a
 * canary that was overwritten (the caller wrote past its size), aborts the process after wiping
 * every region: that is memory corruption in a process holding secrets. */
void secmem_free(void *p);

/* The largest size m >= n whose allocation takes the same data pages as one of n bytes (n when
 * n is 0 or over SECMEM_MAX_ALLOC). A growing buffer that asks for secmem_fit(n) gets all the
 * room of the pages it pays for: each new page is a page fault, and with memfd_secret one that
 * takes the page out of the kernel's direct map with a TLB shootdown on every CPU. */
size_t secmem_fit(size_t n);

/* The usable size of an allocation (the n it was created with). */
size_t secmem_size(const void *p);

/* Copies the first n bytes of s (stopping at a NUL) into a new NUL-terminated secure string. */
int secmem_strndup(const char *s, size_t n, char **ret);

/* Wipes every live region (without unmapping). For exit paths and fatal-signal handlers: it is
 * async-signal-safe. Register it with atexit() in programs that hold secrets. */
void secmem_wipe_all(void);

/* Fills *ret with the current state. */
void secmem_report(struct secmem_report *ret);

/* "memfd_secret", "mlock" or "none". */
const char *secmem_mechanism_to_string(enum secmem_mechanism m);

/* Cleanup helpers. */
static inline void secmem_freep(void *p) {
        secmem_free(*(void **) p);
}
#define _cleanup_secmem_ __attribute__((cleanup(secmem_freep)))
