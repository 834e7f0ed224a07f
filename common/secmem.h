/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secmem: the secure allocator for secrets, tokens and private keys.
 *
 * Each allocation is its own mapping: [guard page][data pages][guard page]. The data pages come
 * from memfd_secret(2) when the kernel offers it (the pages are then removed from the kernel's
 * direct map: not even root can read them through /proc/<pid>/mem), else from an anonymous mmap
 * locked with mlock(2). Either way they are marked MADV_DONTDUMP and MADV_DONTFORK (a forked
 * workload does not inherit them; see the wrapper), a canary sits right after the user's bytes
 * and is checked on free, and the bytes are wiped with explicit_bzero on free and, through
 * secmem_wipe_all(), on every exit path the program installs.
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
        size_t bytes_locked;             /* bytes currently locked (mlock or memfd_secret) */
};

/* Chooses the mechanism (probing memfd_secret, then mlock). Optional: the first secmem_alloc()
 * calls it with flags 0. Calling it again after allocations exist returns -EBUSY. */
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
