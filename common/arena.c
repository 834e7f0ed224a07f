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
        struct arena_block *b, *next;

        if (!a || !a->head)
                return;
        b = a->head;
        for (struct arena_block *x = b->next; x; x = next) {
                next = x->next;
                block_wipe(a, x);
                free(x);
        }
        block_wipe(a, b);
        b->next = NULL;
        a->total = 0;
}

void arena_done(struct arena *a) {
        if (!a)
                return;
        arena_reset(a);
        free(a->head);
        a->head = NULL;
}

void *arena_alloc(struct arena *a, size_t n) {
        const size_t align = sizeof(max_align_t);
        struct arena_block *b;
        size_t need;

        if (!a)
                return NULL;
        if (n == 0)
                n = 1;
        if (n > a->max || a->total > a->max - n)
                return NULL;
        need = (n + align - 1) / align * align;
        for (b = a->head; b; b = b->next)
                if (b->size - b->used >= need)
                        break;
        if (!b) {
                size_t size = MAX((size_t) ARENA_BLOCK, need);
                b = malloc(sizeof(*b) + size);
                if (!b)
                        return NULL;
                b->size = size;
                b->used = 0;
                if (a->head) {
                        b->next = a->head->next;
                        a->head->next = b;
                } else {
                        b->next = NULL;
                        a->head = b;
                }
        }
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

void arena_set_budget(struct arena *a, size_t n) {
        if (a)
                a->max = a->total > SIZE_MAX - n ? SIZE_MAX : a->total + n;
}
