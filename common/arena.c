/* SPDX-License-Identifier: Apache-2.0 */
/* arena: see arena.h for the contract. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/macro.h"

#define ARENA_BLOCK 4096u

struct arena_block {
        struct arena_block *next;
        size_t size, used;
        max_align_t data[];
};

void arena_init(struct arena *a, size_t max, unsigned flags) {
        *a = (struct arena){.max = max, .flags = flags};
}

static void block_wipe(const struct arena *a, struct arena_block *b) {
        if ((a->flags & ARENA_WIPE) && b->used > 0)
                explicit_bzero(b->data, b->used);
        b->used = 0;
}

void arena_reset(struct arena *a) {
        struct arena_block *b, *next, **link;
        size_t kept = 0;

        if (!a || !a->head)
                return;
        for (link = &a->head; (b = *link);) {
                block_wipe(a, b);
                if (b == a->head || kept + b->size <= ARENA_KEEP_MAX) {
                        kept += b->size;
                        link = &b->next;
                        continue;
                }
                next = b->next;
                free(b);
                *link = next;
        }
        a->cur = NULL;
        a->total = 0;
}

void arena_done(struct arena *a) {
        if (!a)
                return;
        arena_reset(a);
        for (struct arena_block *b = a->head, *next; b; b = next) {
                next = b->next;
                free(b);
        }
        a->head = a->cur = NULL;
}

void *arena_alloc(struct arena *a, size_t n) {
        const size_t align = sizeof(max_align_t);
        struct arena_block *b, *last = NULL;
        size_t need, made = 0;

        if (!a)
                return NULL;
        if (n == 0)
                n = 1;
        if (n > a->max || a->total > a->max - n)
                return NULL;
        need = (n + align - 1) / align * align;
        /* The current block, then the next kept ones; the tail of a block left behind is not
         * used again before the reset (at most half of the memory, blocks doubling). */
        for (b = a->cur ? a->cur : a->head; b; last = b, b = b->next)
                if (b->size - b->used >= need)
                        break;
        if (!b) {
                for (struct arena_block *x = a->head; x; x = x->next)
                        made += x->size;
                size_t size = MAX(MAX((size_t) ARENA_BLOCK, need), made);
                b = malloc(sizeof(*b) + size);
                if (!b)
                        return NULL;
                b->size = size;
                b->used = 0;
                b->next = NULL;
                if (last)
                        last->next = b;
                else
                        a->head = b;
        }
        a->cur = b;
        void *p = (char *) b->data + b->used;
        b->used += need;
        a->total += n;
        return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n) {
        char *d = s ? arena_alloc(a, n + 1) : NULL;
        if (!d)
                return NULL;
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

char *arena_strdup(struct arena *a, const char *s) {
        return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

size_t arena_used(const struct arena *a) {
        return a ? a->total : 0;
}

size_t arena_capacity(const struct arena *a) {
        size_t n = 0;
        for (const struct arena_block *b = a ? a->head : NULL; b; b = b->next)
                n += b->size;
        return n;
}

void arena_set_budget(struct arena *a, size_t n) {
        if (a)
                a->max = a->total > SIZE_MAX - n ? SIZE_MAX : a->total + n;
}
