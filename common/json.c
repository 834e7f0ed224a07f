/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c: the parser, the tree, the builders and the printer. The contract is in json.h; this
 * file explains how it is kept. No third-party code: the tree is ours (struct json_value), so a
 * parse writes each value once, straight into the document's memory.
 *
 * Memory. Every block of a document (a value, a key, a string) carries a header (owner, size,
 * nesting level) in front of it:
 *   - JSON_SECURE documents bump-allocate from chunks of secmem owned by the document. free() of
 *     a block wipes it (and gives it back when it was the last one, which is what a number's
 *     temporary copy does); the chunks are wiped and unmapped by json_doc_free().
 *   - other documents malloc() each block and explicit_bzero() it on free.
 *   - documents of json_parse_arena() / json_doc_new_arena() take their blocks from the caller's
 *     arena (common/arena.h) while its budget lasts and from the heap after that; free() of an
 *     arena block only uncounts it (the arena frees, and with ARENA_WIPE wipes, it at its
 *     reset), and freeing the document walks the tree only when some block went to the heap.
 * All count bytes against the document's bound; going past it makes the allocation fail and the
 * operation return -E2BIG. The owner in the header lets the builders refuse a container that
 * belongs to another document, and the level keeps every tree at most JSON_MAX_DEPTH_LIMIT
 * deep, which bounds the recursion here.
 *
 * Parsing. One pass of recursive descent (depth bounded by limits.max_depth before each
 * descent) checks the grammar of RFC 8259 exactly as json.h lists it and builds the tree as it
 * goes: each value is appended to its parent as soon as it is made, so a parse that fails part
 * way leaves a tree json_doc_free() releases. A string is scanned once to find its end and
 * check it (UTF-8, escapes, surrogate pairs), then copied, or decoded when it had escapes, into
 * a block of exactly its size. The memory bound of a parse follows from its input: every value
 * takes at least one byte of it (parse_bound()).
 *
 * Output. json_print() measures the text, reserves it in the caller's buffer and writes it
 * there directly, so the text exists in one place only, and a full buffer is left unchanged.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"

#define JSON_DOC_BYTES_DEFAULT (1024u * 1024u)
#define ALLOC_MAGIC 0x4a534f4eu /* "JSON" */
#define ALLOC_ALIGN 16u
#define SECURE_FIRST_CHUNK 4096u
#define SECURE_MAX_CHUNKS 64u
#define SAFE_INT_LIMIT 9007199254740992.0 /* 2^53: integers strictly below are exact */
#define NUMBER_COPY_MAX 64u               /* a number's text up to this is copied on the stack */

struct alloc_hdr {
        struct json_doc *owner;
        size_t size; /* bytes requested */
        uint32_t magic;
        uint32_t level;    /* values only: containers enclosing this value (root: 0) */
        uint32_t in_arena; /* a block of the caller's arena (json_parse_arena()) */
        uint32_t reserved;
};
_Static_assert(sizeof(struct alloc_hdr) % ALLOC_ALIGN == 0, "header keeps alignment");

struct json_value {
        enum json_type type;
        struct json_value *next; /* the next sibling, in document order */
        char *key;               /* a member of an object: its key */
        union {
                struct { /* arrays and objects */
                        struct json_value *child, *last;
                        size_t count;
                };
                struct { /* strings: NUL-terminated, len bytes (NULs included, JSON_ALLOW_NUL) */
                        char *str;
                        size_t len;
                };
                double num;
        };
};

struct secure_chunk {
        unsigned char *base;
        size_t size;
};

struct json_doc {
        unsigned flags;
        struct json_value *root;
        size_t bound; /* bytes this document may take */
        size_t used;  /* secure: sum of chunk sizes; heap: live blocks including headers */
        int alloc_error;
        /* json_parse_arena() / json_doc_new_arena() only */
        struct arena *arena;
        size_t heap_blocks; /* live blocks that did not fit the arena */
        bool self_in_arena; /* this struct is in the arena too */
        /* JSON_SECURE only */
        struct secure_chunk chunks[SECURE_MAX_CHUNKS];
        size_t n_chunks;
        size_t top; /* bytes used in the last chunk */
        size_t next_chunk;
        struct alloc_hdr *last; /* most recent block, for giving it back on free */
};

static size_t align_up(size_t n) {
        return (n + (ALLOC_ALIGN - 1)) & ~(size_t) (ALLOC_ALIGN - 1);
}

static struct alloc_hdr *hdr_of(const void *p) {
        return (struct alloc_hdr *) ((uintptr_t) p - sizeof(struct alloc_hdr));
}

static void *secure_alloc(struct json_doc *d, size_t size) {
        size_t need = sizeof(struct alloc_hdr) + align_up(size);
        unsigned char *p;

        if (d->n_chunks > 0 && need <= d->chunks[d->n_chunks - 1].size - d->top) {
                p = d->chunks[d->n_chunks - 1].base + d->top;
                d->top += need;
        } else {
                size_t remaining = d->bound - d->used;
                size_t sz = MIN(MAX(need, d->next_chunk), remaining);
                void *base;

                sz = MIN(sz, (size_t) SECMEM_MAX_ALLOC);
                if (need > sz || d->n_chunks >= SECURE_MAX_CHUNKS) {
                        d->alloc_error = -E2BIG;
                        return NULL;
                }
                if (secmem_alloc(sz, &base) < 0) {
                        d->alloc_error = -ENOMEM;
                        return NULL;
                }
                d->chunks[d->n_chunks++] = (struct secure_chunk){.base = base, .size = sz};
                d->used += sz;
                d->next_chunk = sz <= SIZE_MAX / 2 ? sz * 2 : sz;
                p = base;
                d->top = need;
        }
        struct alloc_hdr *h = (struct alloc_hdr *) p;
        *h = (struct alloc_hdr){.owner = d, .size = size, .magic = ALLOC_MAGIC};
        d->last = h;
        return h + 1;
}

static void secure_free(struct json_doc *d, struct alloc_hdr *h) {
        explicit_bzero(h + 1, h->size);
        if (h == d->last) {
                d->top -= sizeof(struct alloc_hdr) + align_up(h->size);
                explicit_bzero(h, sizeof *h);
                d->last = NULL;
        }
}

static void *heap_alloc(struct json_doc *d, size_t size) {
        struct alloc_hdr *h;

        if (size > SIZE_MAX - sizeof(*h) || size + sizeof(*h) > d->bound - d->used) {
                d->alloc_error = -E2BIG;
                return NULL;
        }
        h = malloc(sizeof(*h) + size);
        if (!h) {
                d->alloc_error = -ENOMEM;
                return NULL;
        }
        *h = (struct alloc_hdr){.owner = d, .size = size, .magic = ALLOC_MAGIC};
        d->used += sizeof(*h) + size;
        return h + 1;
}

static void heap_free(struct json_doc *d, struct alloc_hdr *h) {
        d->used -= sizeof(*h) + h->size;
        if (h->in_arena) { /* the arena frees (and, with ARENA_WIPE, wipes) it at its reset */
                h->magic = 0;
                return;
        }
        explicit_bzero(h, sizeof(*h) + h->size);
        free(h);
        d->heap_blocks--;
}

/* From the caller's arena while its budget lasts, then from the heap: either way counted
 * against the document's bound. */
static void *doc_arena_alloc(struct json_doc *d, size_t size) {
        struct alloc_hdr *h;

        if (size > SIZE_MAX - sizeof(*h) || size + sizeof(*h) > d->bound - d->used) {
                d->alloc_error = -E2BIG;
                return NULL;
        }
        h = arena_alloc(d->arena, sizeof(*h) + size);
        if (!h) {
                void *p = heap_alloc(d, size);
                if (p)
                        d->heap_blocks++;
                return p;
        }
        *h = (struct alloc_hdr){.owner = d, .size = size, .magic = ALLOC_MAGIC, .in_arena = 1};
        d->used += sizeof(*h) + size;
        return h + 1;
}

static void *doc_alloc(struct json_doc *d, size_t size) {
        if (size == 0)
                size = 1;
        if (d->flags & JSON_SECURE)
                return secure_alloc(d, size);
        return d->arena ? doc_arena_alloc(d, size) : heap_alloc(d, size);
}

static void block_free(void *p) {
        if (!p)
                return;
        struct alloc_hdr *h = hdr_of(p);
        /* Not one of ours: memory corruption in a process that may hold secrets. */
        if (h->magic != ALLOC_MAGIC || !h->owner)
                abort();
        if (h->owner->flags & JSON_SECURE)
                secure_free(h->owner, h);
        else
                heap_free(h->owner, h);
}

static int doc_error(const struct json_doc *d) {
        return d->alloc_error < 0 ? d->alloc_error : -ENOMEM;
}

static bool is_container(const struct json_value *v) {
        return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT);
}

/* A value of type t at nesting level `level`, not yet attached. */
static struct json_value *value_new(struct json_doc *d, enum json_type t, uint32_t level) {
        struct json_value *v = doc_alloc(d, sizeof(*v));
        if (!v)
                return NULL;
        *v = (struct json_value){.type = t};
        hdr_of(v)->level = level;
        return v;
}

/* Frees v, its key and string and all its children. Recursion is bounded by the depth limit. */
static void value_free(struct json_value *v) {
        if (!v)
                return;
        if (is_container(v))
                for (struct json_value *c = v->child, *next; c; c = next) {
                        next = c->next;
                        value_free(c);
                }
        else if (v->type == JSON_STRING)
                block_free(v->str);
        block_free(v->key);
        block_free(v);
}

static void append(struct json_value *parent, struct json_value *v) {
        if (parent->last)
                parent->last->next = v;
        else
                parent->child = v;
        parent->last = v;
        parent->count++;
}

static char *copy_text(struct json_doc *d, const char *s, size_t n) {
        char *copy = doc_alloc(d, n + 1);
        if (!copy)
                return NULL;
        memcpy(copy, s, n);
        copy[n] = '\0';
        return copy;
}

static int doc_create(struct arena *a, unsigned flags, size_t bound, size_t first_chunk,
                      struct json_doc **ret) {
        struct json_doc *d;
        bool in_arena;

        if (a && (flags & JSON_SECURE))
                return -EINVAL; /* an arena is ordinary memory */
        d = arena_alloc(a, sizeof(*d));
        in_arena = d;
        if (d)
                *d = (struct json_doc){0};
        else if (!(d = calloc(1, sizeof(*d))))
                return -ENOMEM;
        d->arena = a;
        d->self_in_arena = in_arena;
        d->flags = flags;
        d->bound = bound;
        d->next_chunk = first_chunk;
        *ret = d;
        return 0;
}

struct json_doc *json_doc_free(struct json_doc *d) {
        if (!d)
                return NULL;
        if (d->flags & JSON_SECURE) {
                /* No need to walk the tree: the chunks hold all of it and are wiped on release. */
                for (size_t i = 0; i < d->n_chunks; i++)
                        secmem_free(d->chunks[i].base);
        } else if (d->root && (!d->arena || d->heap_blocks > 0))
                value_free(d->root); /* an arena document: only for the blocks on the heap */
        bool self_in_arena = d->self_in_arena;
        explicit_bzero(d, sizeof(*d));
        if (!self_in_arena)
                free(d);
        return NULL;
}

struct json_value *json_doc_root(struct json_doc *d) {
        return d ? d->root : NULL;
}

/* --- UTF-8 ------------------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7), 0 if ill-formed. */
static size_t utf8_sequence(const unsigned char *p, size_t avail) {
        unsigned char c = p[0];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        if (avail < len)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return len;
}

/* Eight bytes at a time (SWAR): whether any of the eight bytes in w is zero / below 0x20 / one
 * of the two that a string literal cannot hold as themselves; ASCII-only. Exact as existence
 * tests, which is all they are used for: a hit falls back to the byte loops. */
#define BYTES_ONES 0x0101010101010101ull
#define BYTES_HIGHS 0x8080808080808080ull
static inline uint64_t load8(const unsigned char *p) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        return w;
}
static inline uint64_t has_zero_byte(uint64_t v) {
        return (v - BYTES_ONES) & ~v & BYTES_HIGHS;
}
/* A byte that is '"', '\', a control character (NUL included) or not ASCII. */
static inline bool has_special_byte(uint64_t w) {
        return (has_zero_byte(w ^ (BYTES_ONES * '"')) | has_zero_byte(w ^ (BYTES_ONES * '\\')) |
                ((w - BYTES_ONES * 0x20) & ~w) | w) &
               BYTES_HIGHS;
}

static bool utf8_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < n;) {
                if (n - i >= 8 && !(load8(p + i) & BYTES_HIGHS)) {
                        i += 8;
                        continue;
                }
                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t l = utf8_sequence(p + i, n - i);
                if (l == 0)
                        return false;
                i += l;
        }
        return true;
}

/* --- parsing ---------------------------------------------------------------------------------- */

/* Bytes that stand for themselves in a string literal: printable ASCII (DEL included) but '"'
 * and '\'. Everything else is the end, an escape, a control character or UTF-8. */
static const unsigned char plain_byte[256] = {
        [0x20 ... 0x21] = 1,
        [0x23 ... 0x5b] = 1,
        [0x5d ... 0x7f] = 1,
};

struct parser {
        const unsigned char *p, *end;
        struct json_doc *d;
        size_t nodes, max_nodes;
        unsigned max_depth;
        bool allow_nul;
};

static bool is_ws(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

static void skip_ws(struct parser *ps) {
        while (ps->p < ps->end && is_ws(*ps->p))
                ps->p++;
}

static int hex4(const unsigned char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (size_t i = 0; i < 4; i++) {
                unsigned char c = s[i];
                uint32_t x;
                if (c >= '0' && c <= '9')
                        x = c - '0';
                else if (c >= 'a' && c <= 'f')
                        x = c - 'a' + 10u;
                else if (c >= 'A' && c <= 'F')
                        x = c - 'A' + 10u;
                else
                        return -EBADMSG;
                v = v << 4 | x;
        }
        *ret = v;
        return 0;
}

/* The escape at s (a backslash; the literal's bytes end before end): the code point it stands
 * for and its length. A UTF-16 surrogate must be a high one followed by an escaped low one. */
static int escape_at(const unsigned char *s, const unsigned char *end, uint32_t *ret_cp,
                     size_t *ret_len) {
        static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
        uint32_t hi, lo;

        if (end - s < 2)
                return -EBADMSG;
        if (s[1] != 'u') {
                for (size_t i = 0; i < sizeof(simple) - 1; i += 2)
                        if (s[1] == (unsigned char) simple[i]) {
                                *ret_cp = (unsigned char) simple[i + 1];
                                *ret_len = 2;
                                return 0;
                        }
                return -EBADMSG;
        }
        if (end - s < 6 || hex4(s + 2, &hi) < 0 || (hi >= 0xdc00 && hi <= 0xdfff))
                return -EBADMSG;
        if (hi < 0xd800 || hi > 0xdbff) {
                *ret_cp = hi;
                *ret_len = 6;
                return 0;
        }
        if (end - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) < 0 || lo < 0xdc00 ||
            lo > 0xdfff)
                return -EBADMSG;
        *ret_cp = 0x10000u + ((hi - 0xd800u) << 10) + (lo - 0xdc00u);
        *ret_len = 12;
        return 0;
}

static size_t utf8_put(unsigned char *o, uint32_t cp) {
        if (cp < 0x80) {
                o[0] = (unsigned char) cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (unsigned char) (0xc0 | cp >> 6);
                o[1] = (unsigned char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (unsigned char) (0xe0 | cp >> 12);
                o[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
                o[2] = (unsigned char) (0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (unsigned char) (0xf0 | cp >> 18);
        o[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
        o[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        o[3] = (unsigned char) (0x80 | (cp & 0x3f));
        return 4;
}

/* The string literal whose opening quote is at ps->p: checked to its end (UTF-8, escapes, no
 * raw control character; "\u0000" only in a value and only with JSON_ALLOW_NUL: keys stay C
 * strings), then copied, or decoded when it holds escapes, into a block of its own. */
static int parse_string(struct parser *ps, bool key, char **ret, size_t *ret_len) {
        const unsigned char *start = ps->p + 1, *s = start, *end = ps->end;
        bool escaped = false;
        uint32_t cp;
        size_t n;
        int r;

        for (;;) {
                while (end - s >= 8 && !has_special_byte(load8(s)))
                        s += 8;
                while (s < end && plain_byte[*s])
                        s++;
                if (s >= end)
                        return -EBADMSG; /* unterminated */
                if (*s == '"')
                        break;
                if (*s == '\\') {
                        if ((r = escape_at(s, end, &cp, &n)) < 0)
                                return r;
                        if (cp == 0 && (key || !ps->allow_nul))
                                return -EBADMSG;
                        escaped = true;
                        s += n;
                        continue;
                }
                if (*s < 0x20)
                        return -EBADMSG; /* raw control character (NUL included) */
                n = utf8_sequence(s, (size_t) (end - s));
                if (n == 0)
                        return -EBADMSG;
                s += n;
        }

        size_t raw = (size_t) (s - start), len = raw;
        char *out = doc_alloc(ps->d, raw + 1);
        if (!out)
                return doc_error(ps->d);
        if (!escaped)
                memcpy(out, start, raw);
        else {
                /* Every escape was checked above; none decodes to more bytes than it takes. */
                unsigned char *o = (unsigned char *) out;
                for (const unsigned char *q = start; q < s;) {
                        if (*q != '\\') {
                                *o++ = *q++;
                                continue;
                        }
                        (void) escape_at(q, s, &cp, &n);
                        o += utf8_put(o, cp);
                        q += n;
                }
                len = (size_t) (o - (unsigned char *) out);
        }
        out[len] = '\0';
        ps->p = s + 1;
        *ret = out;
        *ret_len = len;
        return 0;
}

/* A number, RFC 8259 grammar exactly ("01", "1.", "-.5", "+1" are not numbers), that fits a
 * double (1e999 is not accepted). */
static int parse_number(struct parser *ps, double *ret) {
        const unsigned char *s = ps->p, *q = s, *end = ps->end;
        char stack[NUMBER_COPY_MAX], *copy = stack;

        if (q < end && *q == '-')
                q++;
        if (q < end && *q == '0')
                q++;
        else if (q < end && *q >= '1' && *q <= '9')
                while (q < end && is_digit(*q))
                        q++;
        else
                return -EBADMSG;
        if (q < end && *q == '.') {
                if (++q >= end || !is_digit(*q))
                        return -EBADMSG;
                while (q < end && is_digit(*q))
                        q++;
        }
        if (q < end && (*q == 'e' || *q == 'E')) {
                q++;
                if (q < end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= end || !is_digit(*q))
                        return -EBADMSG;
                while (q < end && is_digit(*q))
                        q++;
        }
        /* strtod() wants a C string: a copy, on the stack when short (wiped after a secure
         * parse), else a block of the document given back at once. */
        size_t n = (size_t) (q - s);
        if (n >= sizeof(stack) && !(copy = doc_alloc(ps->d, n + 1)))
                return doc_error(ps->d);
        memcpy(copy, s, n);
        copy[n] = '\0';
        /* The grammar is checked: strtod() reads all of it. ERANGE is not looked at: an
         * underflow reads as (nearly) zero, an overflow as infinity, refused below. */
        errno = 0;
        double x = strtod(copy, NULL);
        if (copy != stack)
                block_free(copy);
        else if (ps->d->flags & JSON_SECURE)
                explicit_bzero(stack, n);
        if (!__builtin_isfinite(x))
                return -EBADMSG;
        ps->p = q;
        *ret = x;
        return 0;
}

static int parse_literal(struct parser *ps, const char *word, size_t n) {
        if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
                return -EBADMSG;
        ps->p += n;
        return 0;
}

static int parse_value(struct parser *ps, struct json_value *parent, char *key, uint32_t level);

static int parse_array(struct parser *ps, struct json_value *a, uint32_t level) {
        int r;

        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                return 0;
        }
        for (;;) {
                if ((r = parse_value(ps, a, NULL, level + 1)) < 0)
                        return r;
                skip_ws(ps);
                if (ps->p >= ps->end)
                        return -EBADMSG;
                if (*ps->p++ == ']')
                        return 0;
                if (ps->p[-1] != ',')
                        return -EBADMSG;
                skip_ws(ps);
        }
}

static int parse_object(struct parser *ps, struct json_value *o, uint32_t level) {
        int r;

        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                return 0;
        }
        for (;;) {
                char *key;
                size_t len;
                if (ps->p >= ps->end || *ps->p != '"')
                        return -EBADMSG;
                if ((r = parse_string(ps, true, &key, &len)) < 0)
                        return r;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') {
                        block_free(key);
                        return -EBADMSG;
                }
                ps->p++;
                skip_ws(ps);
                if ((r = parse_value(ps, o, key, level + 1)) < 0)
                        return r;
                skip_ws(ps);
                if (ps->p >= ps->end)
                        return -EBADMSG;
                if (*ps->p++ == '}')
                        return 0;
                if (ps->p[-1] != ',')
                        return -EBADMSG;
                skip_ws(ps);
        }
}

/* The value at ps->p, made at `level`, appended to parent (the root when parent is NULL) before
 * its contents are read, with key (a block of the document, which it then owns; freed here on
 * failure before it is attached). */
static int parse_value(struct parser *ps, struct json_value *parent, char *key, uint32_t level) {
        enum json_type t;
        struct json_value *v;
        int r = 0;

        if (ps->p >= ps->end) {
                block_free(key);
                return -EBADMSG;
        }
        switch (*ps->p) {
        case '{':
                t = JSON_OBJECT;
                break;
        case '[':
                t = JSON_ARRAY;
                break;
        case '"':
                t = JSON_STRING;
                break;
        case 't':
                t = JSON_TRUE;
                break;
        case 'f':
                t = JSON_FALSE;
                break;
        case 'n':
                t = JSON_NULL;
                break;
        default:
                t = JSON_NUMBER;
                if (*ps->p != '-' && !is_digit(*ps->p))
                        r = -EBADMSG;
                break;
        }
        if (r == 0 && (t == JSON_OBJECT || t == JSON_ARRAY) && level + 1 > ps->max_depth)
                r = -ELOOP;
        if (r == 0 && ++ps->nodes > ps->max_nodes)
                r = -E2BIG;
        if (r == 0 && !(v = value_new(ps->d, t, level)))
                r = doc_error(ps->d);
        if (r < 0) {
                block_free(key);
                return r;
        }
        v->key = key;
        if (parent)
                append(parent, v);
        else
                ps->d->root = v;

        switch (t) {
        case JSON_OBJECT:
                return parse_object(ps, v, level);
        case JSON_ARRAY:
                return parse_array(ps, v, level);
        case JSON_STRING:
                return parse_string(ps, false, &v->str, &v->len);
        case JSON_TRUE:
                return parse_literal(ps, "true", 4);
        case JSON_FALSE:
                return parse_literal(ps, "false", 5);
        case JSON_NULL:
                return parse_literal(ps, "null", 4);
        default:
                return parse_number(ps, &v->num);
        }
}

/* The most a parse of n bytes can take: every value takes at least one byte of input, and
 * makes at most three blocks (itself, its key, its string); the strings' bytes and their NULs
 * are at most the input's (each literal has two quotes); one number's temporary copy. Enforced
 * like a built document's bound, and never reached by a parse. */
static int parse_bound(size_t n, size_t max_nodes, size_t *ret) {
        const size_t per_block = sizeof(struct alloc_hdr) + ALLOC_ALIGN;
        size_t nodes = MIN(n, max_nodes), b, v;

        if (__builtin_mul_overflow(nodes, 3 * per_block + sizeof(struct json_value), &b) ||
            __builtin_add_overflow(b, 2 * n + 1 + per_block, &v))
                return -E2BIG;
        *ret = v;
        return 0;
}

int json_parse_arena(struct arena *a, const char *s, size_t n, unsigned flags,
                     const struct json_limits *limits, struct json_doc **ret) {
        struct json_limits l = limits ? *limits : (struct json_limits){0};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        size_t bound;
        int r;

        if ((!s && n > 0) || !ret || (flags & ~(unsigned) (JSON_SECURE | JSON_ALLOW_NUL)))
                return -EINVAL;
        if (l.max_input == 0)
                l.max_input = JSON_MAX_INPUT_DEFAULT;
        if (l.max_depth == 0)
                l.max_depth = JSON_MAX_DEPTH_DEFAULT;
        if (l.max_nodes == 0)
                l.max_nodes = JSON_MAX_NODES_DEFAULT;
        if (l.max_input > JSON_MAX_INPUT_LIMIT || l.max_depth > JSON_MAX_DEPTH_LIMIT)
                return -EINVAL;

        if (n > l.max_input)
                return -E2BIG;
        if (n == 0)
                return -EBADMSG;
        r = parse_bound(n, l.max_nodes, &bound);
        if (r < 0)
                return r;
        /* A secure parse starts with a chunk of about what a typical document of n bytes takes
         * and doubles from there (secure_alloc()). */
        r = doc_create(a, flags & JSON_SECURE, bound, MIN(bound, 3 * n + SECURE_FIRST_CHUNK), &d);
        if (r < 0)
                return r;
        struct parser ps = {
                .p = (const unsigned char *) s,
                .end = (const unsigned char *) s + n,
                .d = d,
                .max_nodes = l.max_nodes,
                .max_depth = l.max_depth,
                .allow_nul = flags & JSON_ALLOW_NUL,
        };
        skip_ws(&ps);
        r = parse_value(&ps, NULL, NULL, 0);
        if (r < 0)
                return r;
        skip_ws(&ps);
        if (ps.p != ps.end)
                return -EBADMSG; /* nothing but whitespace after the value */
        *ret = TAKE_PTR(d);
        return 0;
}

int json_parse(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
               struct json_doc **ret) {
        return json_parse_arena(NULL, s, n, flags, limits, ret);
}

int json_doc_new_arena(struct arena *a, unsigned flags, size_t max_bytes, struct json_doc **ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int r;

        if (!ret || (flags & ~(unsigned) JSON_SECURE))
                return -EINVAL;
        if (max_bytes == 0)
                max_bytes = JSON_DOC_BYTES_DEFAULT;
        r = doc_create(a, flags, max_bytes, SECURE_FIRST_CHUNK, &d);
        if (r < 0)
                return r;
        d->root = value_new(d, JSON_OBJECT, 0);
        if (!d->root)
                return doc_error(d);
        *ret = TAKE_PTR(d);
        return 0;
}

int json_doc_new(unsigned flags, size_t max_bytes, struct json_doc **ret) {
        return json_doc_new_arena(NULL, flags, max_bytes, ret);
}

/* --- reading ---------------------------------------------------------------------------------- */

enum json_type json_type(const struct json_value *v) {
        return v ? v->type : JSON_INVALID;
}

const char *json_type_to_string(enum json_type t) {
        static const char *const names[] = {
                [JSON_INVALID] = "invalid", [JSON_NULL] = "null",     [JSON_FALSE] = "false",
                [JSON_TRUE] = "true",       [JSON_NUMBER] = "number", [JSON_STRING] = "string",
                [JSON_ARRAY] = "array",     [JSON_OBJECT] = "object",
        };
        if ((unsigned) t >= ELEMENTSOF(names))
                return "invalid";
        return names[t];
}

static const struct json_value *member(const struct json_value *o, const char *key, size_t keylen) {
        if (!o || o->type != JSON_OBJECT || !key)
                return NULL;
        for (const struct json_value *c = o->child; c; c = c->next)
                if (c->key[0] == key[0] && strncmp(c->key, key, keylen) == 0 &&
                    c->key[keylen] == '\0')
                        return c;
        return NULL;
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
        return key ? member(v, key, strlen(key)) : NULL;
}

const struct json_value *json_get_path(const struct json_value *v, const char *path) {
        const struct json_value *c = v;

        if (!path)
                return NULL;
        for (;;) {
                const char *dot = strchr(path, '.');
                size_t len = dot ? (size_t) (dot - path) : strlen(path);
                c = member(c, path, len);
                if (!c || !dot)
                        return c;
                path = dot + 1;
        }
}

int json_string(const struct json_value *v, const char **ret) {
        if (!v)
                return -ENOENT;
        if (v->type != JSON_STRING)
                return -EBADMSG;
        if (ret)
                *ret = v->str;
        return 0;
}

int json_int64(const struct json_value *v, int64_t *ret) {
        if (!v)
                return -ENOENT;
        if (v->type != JSON_NUMBER)
                return -EBADMSG;
        double x = v->num;
        /* Above 2^53 a double no longer tells which integer the text held. */
        if (!(x > -SAFE_INT_LIMIT && x < SAFE_INT_LIMIT))
                return -EBADMSG;
        int64_t i = (int64_t) x;
        if ((double) i != x)
                return -EBADMSG;
        if (ret)
                *ret = i;
        return 0;
}

int json_double(const struct json_value *v, double *ret) {
        if (!v)
                return -ENOENT;
        if (v->type != JSON_NUMBER)
                return -EBADMSG;
        if (ret)
                *ret = v->num;
        return 0;
}

int json_bool(const struct json_value *v, bool *ret) {
        if (!v)
                return -ENOENT;
        if (v->type != JSON_TRUE && v->type != JSON_FALSE)
                return -EBADMSG;
        if (ret)
                *ret = v->type == JSON_TRUE;
        return 0;
}

static int get_member(const struct json_value *obj, const char *key,
                      const struct json_value **ret) {
        const struct json_value *v;

        if (!key)
                return -EINVAL;
        v = json_get(obj, key);
        if (!v || json_type(v) == JSON_NULL)
                return -ENOENT;
        *ret = v;
        return 0;
}

int json_get_string(const struct json_value *obj, const char *key, const char **ret) {
        const struct json_value *v;
        int r = get_member(obj, key, &v);
        return r < 0 ? r : json_string(v, ret);
}

int json_get_int64(const struct json_value *obj, const char *key, int64_t *ret) {
        const struct json_value *v;
        int r = get_member(obj, key, &v);
        return r < 0 ? r : json_int64(v, ret);
}

int json_get_bool(const struct json_value *obj, const char *key, bool *ret) {
        const struct json_value *v;
        int r = get_member(obj, key, &v);
        return r < 0 ? r : json_bool(v, ret);
}

static int get_container(const struct json_value *obj, const char *key, enum json_type want,
                         const struct json_value **ret) {
        const struct json_value *v;
        int r = get_member(obj, key, &v);
        if (r < 0)
                return r;
        if (json_type(v) != want)
                return -EBADMSG;
        if (ret)
                *ret = v;
        return 0;
}

int json_get_object(const struct json_value *obj, const char *key, const struct json_value **ret) {
        return get_container(obj, key, JSON_OBJECT, ret);
}

int json_get_array(const struct json_value *obj, const char *key, const struct json_value **ret) {
        return get_container(obj, key, JSON_ARRAY, ret);
}

size_t json_string_len(const struct json_value *v) {
        return v && v->type == JSON_STRING ? v->len : 0;
}

size_t json_count(const struct json_value *v) {
        return is_container(v) ? v->count : 0;
}

const struct json_value *json_first_child(const struct json_value *v) {
        return is_container(v) ? v->child : NULL;
}

const struct json_value *json_next(const struct json_value *v) {
        return v ? v->next : NULL;
}

const char *json_key(const struct json_value *v) {
        return v ? v->key : NULL;
}

const struct json_value *json_array_at(const struct json_value *v, size_t i) {
        if (!v || v->type != JSON_ARRAY || i >= v->count)
                return NULL;
        const struct json_value *c = v->child;
        while (i-- > 0)
                c = c->next;
        return c;
}

/* --- building --------------------------------------------------------------------------------- */

/* Nesting of a value: 0 for scalars, 1 + the deepest child for containers. */
static unsigned nesting(const struct json_value *v) {
        unsigned deepest = 0;

        if (!is_container(v))
                return 0;
        for (const struct json_value *c = v->child; c; c = c->next) {
                unsigned n = nesting(c);
                deepest = MAX(deepest, n);
        }
        return deepest + 1;
}

/* Checks that obj is a container of d that accepts key (object) or no key (array). */
static int check_parent(struct json_doc *d, struct json_value *obj, const char *key,
                        struct json_value **ret) {
        struct json_value *p = obj;

        if (!d || !p)
                return -EINVAL;
        if (hdr_of(p)->magic != ALLOC_MAGIC || hdr_of(p)->owner != d)
                return -EINVAL;
        if (p->type == JSON_OBJECT) {
                if (!key || !utf8_valid(key, strlen(key)))
                        return -EINVAL;
        } else if (p->type == JSON_ARRAY) {
                if (key)
                        return -EINVAL;
        } else
                return -EINVAL;
        *ret = p;
        return 0;
}

/* Adds item (made in d at the parent's level + 1) to parent with a copy of key; frees it on
 * failure. */
static int attach(struct json_doc *d, struct json_value *parent, const char *key,
                  struct json_value *item) {
        if (key && !(item->key = copy_text(d, key, strlen(key)))) {
                value_free(item);
                return doc_error(d);
        }
        append(parent, item);
        return 0;
}

static int add_string(struct json_doc *d, struct json_value *obj, const char *key, const char *s,
                      size_t n) {
        struct json_value *parent, *item;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if (!s || n == SIZE_MAX || memchr(s, 0, n) || !utf8_valid(s, n))
                return -EINVAL;
        item = value_new(d, JSON_STRING, hdr_of(parent)->level + 1);
        if (!item)
                return doc_error(d);
        item->str = copy_text(d, s, n);
        if (!item->str) {
                value_free(item);
                return doc_error(d);
        }
        item->len = n;
        return attach(d, parent, key, item);
}

int json_add_string(struct json_doc *d, struct json_value *obj, const char *key, const char *s) {
        if (!s)
                return -EINVAL;
        return add_string(d, obj, key, s, strlen(s));
}

int json_add_stringn(struct json_doc *d, struct json_value *obj, const char *key, const char *s,
                     size_t n) {
        if (!s && n > 0)
                return -EINVAL;
        return add_string(d, obj, key, s ? s : "", n);
}

static int add_new(struct json_doc *d, struct json_value *obj, const char *key, enum json_type t,
                   double x, struct json_value **ret) {
        struct json_value *parent, *item;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if ((t == JSON_OBJECT || t == JSON_ARRAY) &&
            hdr_of(parent)->level + 2 > JSON_MAX_DEPTH_LIMIT)
                return -ELOOP;
        item = value_new(d, t, hdr_of(parent)->level + 1);
        if (!item)
                return doc_error(d);
        if (t == JSON_NUMBER)
                item->num = x;
        r = attach(d, parent, key, item);
        if (r < 0)
                return r;
        if (ret)
                *ret = item;
        return 0;
}

int json_add_int64(struct json_doc *d, struct json_value *obj, const char *key, int64_t x) {
        if (x <= -(int64_t) SAFE_INT_LIMIT || x >= (int64_t) SAFE_INT_LIMIT)
                return -ERANGE;
        return add_new(d, obj, key, JSON_NUMBER, (double) x, NULL);
}

int json_add_bool(struct json_doc *d, struct json_value *obj, const char *key, bool b) {
        return add_new(d, obj, key, b ? JSON_TRUE : JSON_FALSE, 0, NULL);
}

int json_add_null(struct json_doc *d, struct json_value *obj, const char *key) {
        return add_new(d, obj, key, JSON_NULL, 0, NULL);
}

int json_add_object(struct json_doc *d, struct json_value *obj, const char *key,
                    struct json_value **ret) {
        return add_new(d, obj, key, JSON_OBJECT, 0, ret);
}

int json_add_array(struct json_doc *d, struct json_value *obj, const char *key,
                   struct json_value **ret) {
        return add_new(d, obj, key, JSON_ARRAY, 0, ret);
}

/* A deep copy of v in d at `level` (its members' keys copied; v's own key only with_key), not
 * attached; NULL when d is full (d->alloc_error says why). */
static struct json_value *copy_tree(struct json_doc *d, const struct json_value *v, uint32_t level,
                                    bool with_key) {
        struct json_value *c = value_new(d, v->type, level);

        if (!c)
                return NULL;
        if (v->type == JSON_NUMBER)
                c->num = v->num;
        if ((with_key && v->key && !(c->key = copy_text(d, v->key, strlen(v->key)))) ||
            (v->type == JSON_STRING && !(c->str = copy_text(d, v->str, v->len)))) {
                value_free(c);
                return NULL;
        }
        if (v->type == JSON_STRING)
                c->len = v->len;
        for (const struct json_value *x = json_first_child(v); x; x = x->next) {
                struct json_value *cx = copy_tree(d, x, level + 1, true);
                if (!cx) {
                        value_free(c);
                        return NULL;
                }
                append(c, cx);
        }
        return c;
}

int json_add_copy(struct json_doc *d, struct json_value *obj, const char *key,
                  const struct json_value *v) {
        struct json_value *parent, *copy;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if (!v || json_type(v) == JSON_INVALID)
                return -EINVAL;
        if (hdr_of(parent)->level + 1 + nesting(v) > JSON_MAX_DEPTH_LIMIT)
                return -ELOOP;
        copy = copy_tree(d, v, hdr_of(parent)->level + 1, false);
        if (!copy)
                return doc_error(d);
        return attach(d, parent, key, copy);
}

/* --- output ----------------------------------------------------------------------------------- */

/* Writes at p while the text fits the `room` bytes there, and counts it either way: one pass
 * writes the text when the room suffices, and measures it when not (nothing is written past
 * the room, and once it has run out nothing more is written at all). */
struct emitter {
        char *p;
        size_t len, room;
};

static inline void emit(struct emitter *e, const void *s, size_t n) {
        if (n == 0)
                return;
        if (e->len + n <= e->room)
                memcpy(e->p + e->len, s, n);
        else
                e->room = 0;
        e->len += n;
}

/* The escape of a byte that cannot appear as itself in a JSON string literal. */
static void emit_escape(struct emitter *e, unsigned char c) {
        static const char hex[] = "0123456789abcdef";
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};

        switch (c) {
        case '"':
        case '\\':
                esc[1] = (char) c;
                break;
        case '\b':
                esc[1] = 'b';
                break;
        case '\f':
                esc[1] = 'f';
                break;
        case '\n':
                esc[1] = 'n';
                break;
        case '\r':
                esc[1] = 'r';
                break;
        case '\t':
                esc[1] = 't';
                break;
        default:
                emit(e, esc, 6);
                return;
        }
        emit(e, esc, 2);
}

/* Bytes that print as themselves: all but control characters, '"' and '\' (UTF-8 and DEL as
 * they are). */
static const unsigned char prints_as_is[256] = {
        [0x20 ... 0x21] = 1,
        [0x23 ... 0x5b] = 1,
        [0x5d ... 0xff] = 1,
};

/* s (n bytes and a NUL) up to its first NUL. Runs of bytes that stand for themselves are
 * emitted whole; only the rare others one by one. */
static void emit_quoted(struct emitter *e, const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s, *end = p + n;

        emit(e, "\"", 1);
        for (;;) {
                const unsigned char *run = p;
                /* Eight at a time while none is special (bytes from 0x80 are, here, only
                 * because has_special_byte() tests for the parser; the byte loop takes them). */
                while (end - p >= 8 && !has_special_byte(load8(p)))
                        p += 8;
                while (prints_as_is[*p])
                        p++;
                emit(e, run, (size_t) (p - run));
                if (*p == '\0')
                        break;
                emit_escape(e, *p++);
        }
        emit(e, "\"", 1);
}

/* Integers print as integers; other numbers with the fewest digits (15..17) that read back as
 * the same double, so printing what was parsed from printed text gives the same text again. */
static void emit_number(struct emitter *e, double x) {
        char tmp[40];
        int len;

        if (!__builtin_isfinite(x)) {
                emit(e, "null", 4); /* unreachable: parsing and building reject them */
                return;
        }
        if (x >= -9223372036854775808.0 && x < 9223372036854775808.0 && x == (double) (int64_t) x)
                len = snprintf(tmp, sizeof(tmp), "%" PRId64, (int64_t) x);
        else
                for (int prec = 15;; prec++) {
                        len = snprintf(tmp, sizeof(tmp), "%.*g", prec, x);
                        if (prec >= 17)
                                break;
                        errno = 0;
                        if (strtod(tmp, NULL) == x)
                                break;
                }
        if (len <= 0 || (size_t) len >= sizeof(tmp)) {
                emit(e, "null", 4); /* cannot happen with these formats */
                return;
        }
        emit(e, tmp, (size_t) len);
}

static void emit_value(struct emitter *e, const struct json_value *v) {
        switch (v->type) {
        case JSON_FALSE:
                emit(e, "false", 5);
                break;
        case JSON_TRUE:
                emit(e, "true", 4);
                break;
        case JSON_NUMBER:
                emit_number(e, v->num);
                break;
        case JSON_STRING:
                emit_quoted(e, v->str, v->len);
                break;
        case JSON_ARRAY:
                emit(e, "[", 1);
                for (const struct json_value *c = v->child; c; c = c->next) {
                        if (c != v->child)
                                emit(e, ",", 1);
                        emit_value(e, c);
                }
                emit(e, "]", 1);
                break;
        case JSON_OBJECT:
                emit(e, "{", 1);
                for (const struct json_value *c = v->child; c; c = c->next) {
                        if (c != v->child)
                                emit(e, ",", 1);
                        emit_quoted(e, c->key, strlen(c->key));
                        emit(e, ":", 1);
                        emit_value(e, c);
                }
                emit(e, "}", 1);
                break;
        default: /* JSON_NULL; nothing else is ever made */
                emit(e, "null", 4);
                break;
        }
}

/* One pass into out's spare room (an ordinary buffer gets some first), which is all when the
 * text fits; else the pass has measured it, and the text is reserved and written again. Nothing
 * is appended when it does not fit, and the text is never held anywhere but in out's storage. */
static void emit_text(struct emitter *e, const struct json_value *v, const char *quote) {
        if (v)
                emit_value(e, v);
        else
                emit_quoted(e, quote, strlen(quote));
}

static int print_to(struct buf *out, const struct json_value *v, const char *quote) {
        struct emitter e = {0};
        int r;

        if (!(out->flags & BUF_SECURE) && (!out->data || out->cap - out->len < 512))
                (void) buf_reserve(out, MIN(out->max - MIN(out->len, out->max), (size_t) 4096));
        if (out->data && out->cap > out->len)
                e = (struct emitter){.p = out->data + out->len, .room = out->cap - out->len};
        emit_text(&e, v, quote);
        if (e.len > e.room) {
                size_t len = e.len;
                r = buf_reserve(out, len);
                if (r < 0) {
                        /* the first pass may have written over the trailing NUL */
                        buf_truncate(out, out->len);
                        return r;
                }
                e = (struct emitter){.p = out->data + out->len, .room = len};
                emit_text(&e, v, quote);
                if (e.len != len || e.room != len)
                        abort(); /* the two passes disagree: a bug */
        }
        buf_commit(out, e.len);
        return 0;
}

int json_print(const struct json_value *v, struct buf *out) {
        if (!v || !out || json_type(v) == JSON_INVALID)
                return -EINVAL;
        return print_to(out, v, NULL);
}

int json_append_quoted(struct buf *out, const char *s) {
        if (!out || !s)
                return -EINVAL;
        return print_to(out, NULL, s);
}

int json_append_string(struct buf *out, const char *s) {
        if (!out || !s || !utf8_valid(s, strlen(s)))
                return -EINVAL;
        return print_to(out, NULL, s);
}
