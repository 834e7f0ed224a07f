/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena: a bounded bump allocator for everything one request needs (h2o's per-request pool).
 * Allocations are never freed one by one: arena_reset() drops them all at once, at the end of
 * the request, and keeps its blocks (up to ARENA_KEEP_MAX bytes of them) for the next request,
 * so a steady server calls neither malloc() nor the kernel per request: the pages stay mapped
 * and in place. Blocks grow geometrically (each new one at least as large as all before it), so
 * a request of n bytes takes O(log n) blocks. The budget (bytes handed out) is set at creation and
 * can be moved with arena_set_budget(); an allocation over it fails (NULL), which a server answers
 * as "too large".
 *
 * ARENA_WIPE: the bytes handed out are zeroed (explicit_bzero) on reset and before a block is
 * freed, for arenas that hold request bodies or copies of them (tokens, keys in transit).
 *
 * Not thread-safe: one arena belongs to one request on one thread. The struct may be embedded
 * (its fields are private to arena.c). NULL arenas are accepted everywhere (allocation fails).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum {
        ARENA_WIPE = 1u << 0, /* zero used bytes on reset and free */
};

struct arena_block;

/* Bytes of blocks kept across arena_reset(): a request that needed more gives the rest back. */
#define ARENA_KEEP_MAX (256u * 1024u)

struct arena {
        struct arena_block *head; /* blocks in the order they were made; the first one always
                                   * survives a reset */
        struct arena_block *cur;  /* the block allocations come from (NULL: head) */
        size_t total, max;        /* bytes handed out, budget */
        unsigned flags;
};

/* An empty arena with a budget of max bytes (ARENA_* flags). Allocates nothing yet. */
void arena_init(struct arena *a, size_t max, unsigned flags);

/* Drops every allocation (wiping them with ARENA_WIPE) and keeps the blocks for reuse: the first
 * always, the following ones while their sizes add up to at most ARENA_KEEP_MAX; the others are
 * freed. The budget stays as it was. */
void arena_reset(struct arena *a);

/* arena_reset() and frees the last block. The arena may be initialised again. */
void arena_done(struct arena *a);

/* n bytes (n == 0 counts as 1), aligned for any type, not zeroed, valid until the next reset.
 * NULL when the budget is exhausted or memory is short. */
void *arena_alloc(struct arena *a, size_t n);

/* Copies of s (NULL for NULL) / of its first n bytes, NUL-terminated. NULL as arena_alloc(). */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* Bytes handed out since the last reset. */
size_t arena_used(const struct arena *a);

/* Bytes of the blocks the arena holds (allocated or not): what it costs in memory. */
size_t arena_capacity(const struct arena *a);

/* Sets the budget to arena_used() + n: exactly n more bytes may be handed out. */
void arena_set_budget(struct arena *a, size_t n);
