/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/arena: budget, alignment, reset keeps the blocks (bounded), ARENA_WIPE. */
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/macro.h"
#include "tests/tap.h"

static void test_budget(void) {
        struct arena a;

        arena_init(&a, 100, 0);
        ok(arena_alloc(&a, 60) != NULL, "60 of 100 bytes");
        ok(arena_alloc(&a, 41) == NULL, "41 more is over the budget");
        ok(arena_alloc(&a, 40) != NULL, "exactly the budget");
        ok(arena_alloc(&a, 0) == NULL, "a zero-byte allocation counts as one byte");
        is_int((int) arena_used(&a), 100, "used counts bytes handed out");
        arena_set_budget(&a, 10);
        ok(arena_alloc(&a, 10) != NULL && arena_alloc(&a, 1) == NULL,
           "set_budget allows exactly n more");
        ok(arena_alloc(&a, SIZE_MAX) == NULL, "SIZE_MAX fails without overflow");
        arena_set_budget(&a, SIZE_MAX);
        ok(arena_alloc(&a, 1) != NULL, "a SIZE_MAX budget saturates");
        arena_reset(&a);
        is_int((int) arena_used(&a), 0, "reset empties");
        arena_done(&a);
        ok(arena_alloc(NULL, 1) == NULL && arena_strdup(NULL, "x") == NULL && arena_used(NULL) == 0,
           "NULL arena");
        arena_reset(NULL);
        arena_done(NULL);
}

static void test_blocks(void) {
        struct arena a;
        void *first, *p[64];
        bool aligned = true, distinct = true;

        arena_init(&a, 1u << 20, 0);
        first = arena_alloc(&a, 8);
        for (size_t i = 0; i < ELEMENTSOF(p); i++) {
                p[i] = arena_alloc(&a, 100 + i);
                aligned = aligned && p[i] && (uintptr_t) p[i] % _Alignof(max_align_t) == 0;
                memset(p[i], (int) i, 100 + i);
        }
        ok(aligned, "every allocation is aligned for any type");
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                for (size_t k = 0; k < 100 + i; k++)
                        distinct = distinct && ((unsigned char *) p[i])[k] == (unsigned char) i;
        ok(distinct, "allocations do not overlap (over several blocks)");
        ok(arena_alloc(&a, 100000) != NULL, "an allocation bigger than a block");
        arena_reset(&a);
        ok(arena_alloc(&a, 8) == first, "reset keeps the first block and reuses it");
        char *s = arena_strndup(&a, "abcdef", 3);
        is_str(s, "abc", "strndup copies n bytes and terminates");
        is_str(arena_strdup(&a, "xyz"), "xyz", "strdup");
        arena_done(&a);
}

/* A request's worth of small allocations, as a server makes them; returns their addresses'
 * sum so two rounds can be compared. */
static uintptr_t one_request(struct arena *a, size_t n) {
        uintptr_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                char *p = arena_alloc(a, 40 + i % 200);
                if (!p)
                        return 0;
                p[0] = 1;
                sum += (uintptr_t) p;
        }
        return sum;
}

static void test_keep(void) {
        struct arena a;

        arena_init(&a, 1u << 24, 0);
        uintptr_t first = one_request(&a, 1000); /* about 140 KiB */
        size_t cap = arena_capacity(&a);
        ok(first != 0 && cap >= arena_used(&a), "capacity covers what was handed out");
        ok(cap < 3 * arena_used(&a), "blocks grow geometrically: at most 3x the bytes used (%zu)",
           cap);
        arena_reset(&a);
        is_int((int) arena_capacity(&a), (int) cap,
               "reset keeps every block (under the keep bound)");
        ok(one_request(&a, 1000) == first,
           "the same request again gets the same memory: no new block");
        is_int((int) arena_capacity(&a), (int) cap, "and the arena did not grow");
        arena_reset(&a);
        ok(arena_alloc(&a, 4u << 20) != NULL, "a 4 MiB request");
        arena_reset(&a);
        ok(arena_capacity(&a) <= ARENA_KEEP_MAX, "after it, at most ARENA_KEEP_MAX is kept (%zu)",
           arena_capacity(&a));
        ok(one_request(&a, 10) != 0, "and the arena still serves");
        arena_done(&a);
        is_int((int) arena_capacity(&a), 0, "done frees every block");
}

static void test_wipe(void) {
        for (unsigned wipe = 0; wipe < 2; wipe++) {
                struct arena a;
                arena_init(&a, 4096, wipe ? ARENA_WIPE : 0);
                char *s = arena_alloc(&a, 32);
                memcpy(s, "token-0123456789abcdef", 23);
                arena_reset(&a);
                char *t = arena_alloc(&a, 32);
                ok(t == s, "the same bytes come back after reset (%s)", wipe ? "wipe" : "no wipe");
                if (wipe) {
                        static const char zero[32];
                        ok(memcmp(t, zero, sizeof(zero)) == 0, "ARENA_WIPE zeroed them");
                } else
                        ok(memcmp(t, "token-", 6) == 0,
                           "without ARENA_WIPE they are left as they were (the test sees a wipe)");
                arena_done(&a);
        }
}

int main(void) {
        test_budget();
        test_blocks();
        test_keep();
        test_wipe();
        return tap_done();
}
