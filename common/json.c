/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c: the cJSON wrapper. The contract is in json.h; this file explains how it is kept.
 *
 * Memory. cJSON's allocator hooks are process-global, so they are installed once (pthread_once)
 * and consult a thread-local "current document". Every call into cJSON that may allocate runs
 * between doc_enter() and the cleanup that restores the previous pointer; with no current
 * document the hooks refuse to allocate, so cJSON can never allocate outside a document.
 * Every allocation carries a header (owner, size, nesting level) in front of it:
 *   - JSON_SECURE documents bump-allocate from chunks of secmem owned by the document. free() of
 *     a block wipes it (and gives it back when it was the last one, which is what cJSON's
 *     temporary number buffers do); the chunks are wiped and unmapped by json_doc_free().
 *   - other documents malloc() each block and explicit_bzero() it on free.
 *   - documents of json_parse_arena() / json_doc_new_arena() take their blocks from the caller's
 *     arena (common/arena.h) while its budget lasts and from the heap after that; free() of an
 *     arena block only uncounts it (the arena frees, and with ARENA_WIPE wipes, it at its
 *     reset), and freeing the document walks the tree only when some block went to the heap.
 * All count bytes against the document's bound; going past it makes the hook return NULL and
 * the operation fail with -E2BIG. The owner in the header lets the builders refuse a container
 * that belongs to another document, and the level keeps every tree at most
 * JSON_MAX_DEPTH_LIMIT deep, which bounds the recursion here and in cJSON.
 *
 * Parsing. A linear pre-scan enforces the limits and what cJSON is lax about (raw control
 * characters, invalid UTF-8, "\u0000", number grammar, whitespace) before cJSON sees the input;
 * it also counts values and strings, from which the parse's memory bound is computed (an upper
 * bound of what cJSON allocates, see parse_bound()).
 *
 * Output. json_print() does not use cJSON's printer (which grows its buffer by copying, leaving
 * abandoned copies behind in the arena): it measures the text, reserves it in the caller's buffer
 * and writes it there directly, so the text exists in one place only, and a full buffer is left
 * unchanged.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

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

struct alloc_hdr {
        struct json_doc *owner;
        size_t size; /* bytes requested */
        uint32_t magic;
        uint32_t level;    /* nodes only: containers enclosing this value (root: 0) */
        uint32_t in_arena; /* a block of the caller's arena (json_parse_arena()) */
        uint32_t reserved;
};
_Static_assert(sizeof(struct alloc_hdr) % ALLOC_ALIGN == 0, "header keeps alignment");

struct secure_chunk {
        unsigned char *base;
        size_t size;
};

struct json_doc {
        unsigned flags;
        cJSON *root;
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

static _Thread_local struct json_doc *json_current;
static pthread_once_t json_hooks_once = PTHREAD_ONCE_INIT;

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

static void *hook_malloc(size_t size) {
        struct json_doc *d = json_current;

        /* cJSON outside doc_enter(): refuse rather than allocate memory nobody owns. */
        if (!d)
                return NULL;
        return doc_alloc(d, size);
}

static void hook_free(void *p) {
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

static void hooks_install(void) {
        cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
        cJSON_InitHooks(&hooks);
}

static void doc_leave(struct json_doc **saved) {
        json_current = *saved;
}

/* Makes d the document cJSON allocates from until the returned guard goes out of scope. */
static struct json_doc *doc_enter(struct json_doc *d) {
        struct json_doc *saved = json_current;

        (void) pthread_once(&json_hooks_once, hooks_install);
        d->alloc_error = 0;
        json_current = d;
        return saved;
}
#define DOC_SCOPE(d) _cleanup_(doc_leave) _unused_ struct json_doc *_saved_doc_ = doc_enter(d)

static int doc_error(const struct json_doc *d) {
        return d->alloc_error < 0 ? d->alloc_error : -ENOMEM;
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
        } else if (d->root && (!d->arena || d->heap_blocks > 0)) {
                /* An arena document walks its tree only for the blocks that went to the heap. */
                DOC_SCOPE(d);
                cJSON_Delete(d->root);
        }
        bool self_in_arena = d->self_in_arena;
        explicit_bzero(d, sizeof(*d));
        if (!self_in_arena)
                free(d);
        return NULL;
}

struct json_value *json_doc_root(struct json_doc *d) {
        return d ? (struct json_value *) d->root : NULL;
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

static bool utf8_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < n;) {
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

struct scan_result {
        size_t nodes;   /* values cJSON will create */
        size_t nuls;    /* "\u0000" escapes (only with JSON_ALLOW_NUL) */
        size_t strings; /* string literals (keys and values) */
        size_t longest_bareword;
};

static bool is_ws(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_hex(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

/* *i is just past the opening quote; on success just past the closing one. */
static int scan_string(const unsigned char *s, size_t n, bool allow_nul, size_t *nuls, size_t *i) {
        size_t p = *i;

        while (p < n) {
                unsigned char c = s[p];
                if (c == '"') {
                        *i = p + 1;
                        return 0;
                }
                if (c == '\\') {
                        if (n - p < 2)
                                return -EBADMSG;
                        switch (s[p + 1]) {
                        case '"':
                        case '\\':
                        case '/':
                        case 'b':
                        case 'f':
                        case 'n':
                        case 'r':
                        case 't':
                                p += 2;
                                break;
                        case 'u':
                                if (n - p < 6)
                                        return -EBADMSG;
                                for (size_t k = 2; k < 6; k++)
                                        if (!is_hex(s[p + k]))
                                                return -EBADMSG;
                                if (memcmp(s + p + 2, "0000", 4) == 0) {
                                        if (!allow_nul)
                                                return -EBADMSG; /* C strings cannot carry it */
                                        (*nuls)++;
                                }
                                p += 6;
                                break;
                        default:
                                return -EBADMSG;
                        }
                        continue;
                }
                if (c < 0x20)
                        return -EBADMSG; /* raw control character (NUL included) */
                if (c < 0x80) {
                        p++;
                        continue;
                }
                size_t l = utf8_sequence(s + p, n - p);
                if (l == 0)
                        return -EBADMSG;
                p += l;
        }
        return -EBADMSG; /* unterminated */
}

/* A run of bytes outside strings that is not structure or whitespace: a literal or a number
 * (RFC 8259 grammar exactly; cJSON alone would accept "01", "1.", "-.5"). */
static int check_bareword(const unsigned char *w, size_t len) {
        size_t i = 0;

        if ((len == 4 && memcmp(w, "true", 4) == 0) || (len == 5 && memcmp(w, "false", 5) == 0) ||
            (len == 4 && memcmp(w, "null", 4) == 0))
                return 0;
        if (i < len && w[i] == '-')
                i++;
        if (i >= len)
                return -EBADMSG;
        if (w[i] == '0')
                i++;
        else if (w[i] >= '1' && w[i] <= '9')
                while (i < len && is_digit(w[i]))
                        i++;
        else
                return -EBADMSG;
        if (i < len && w[i] == '.') {
                i++;
                if (i >= len || !is_digit(w[i]))
                        return -EBADMSG;
                while (i < len && is_digit(w[i]))
                        i++;
        }
        if (i < len && (w[i] == 'e' || w[i] == 'E')) {
                i++;
                if (i < len && (w[i] == '+' || w[i] == '-'))
                        i++;
                if (i >= len || !is_digit(w[i]))
                        return -EBADMSG;
                while (i < len && is_digit(w[i]))
                        i++;
        }
        return i == len ? 0 : -EBADMSG;
}

static bool is_delimiter(unsigned char c) {
        return is_ws(c) || c == '[' || c == ']' || c == '{' || c == '}' || c == ',' || c == ':' ||
               c == '"';
}

/* One pass over the input: depth, value count, strings, escapes, barewords. The structure itself
 * (commas, colons, keys) is left to cJSON. */
static int prescan(const unsigned char *s, size_t n, unsigned max_depth, bool allow_nul,
                   struct scan_result *ret) {
        size_t i = 0, commas = 0, nonempty = 0, strings = 0, longest = 0, nuls = 0;
        unsigned depth = 0;
        unsigned char opened = 0; /* the closer of a container the previous token opened */
        int r;

        while (i < n) {
                unsigned char c = s[i];

                if (is_ws(c)) {
                        i++;
                        continue;
                }
                if (opened && c != opened)
                        nonempty++;
                opened = 0;
                switch (c) {
                case '"':
                        strings++;
                        i++;
                        r = scan_string(s, n, allow_nul, &nuls, &i);
                        if (r < 0)
                                return r;
                        break;
                case '[':
                case '{':
                        if (++depth > max_depth)
                                return -ELOOP;
                        opened = c == '[' ? ']' : '}';
                        i++;
                        break;
                case ']':
                case '}':
                        if (depth == 0)
                                return -EBADMSG;
                        depth--;
                        i++;
                        break;
                case ',':
                        commas++;
                        i++;
                        break;
                case ':':
                        i++;
                        break;
                default: {
                        size_t start = i;
                        while (i < n && !is_delimiter(s[i]))
                                i++;
                        r = check_bareword(s + start, i - start);
                        if (r < 0)
                                return r;
                        longest = MAX(longest, i - start);
                        break;
                }
                }
        }
        if (depth != 0)
                return -EBADMSG;
        /* Every value is the root, the first element of a non-empty container, or follows a
         * comma. Exact for valid input; for invalid input cJSON stops before creating more. */
        *ret = (struct scan_result){.nodes = 1 + commas + nonempty,
                                    .nuls = nuls,
                                    .strings = strings,
                                    .longest_bareword = longest};
        return 0;
}

/* What cJSON 1.7.15 (Debian) allocates while parsing, at most: one node per value; one block per
 * string literal of at most the literal's length including its quotes (sum <= n); a temporary
 * copy of each number (a whole bareword, the pre-scan rejected every other kind) plus its NUL,
 * freed at once (the arena gives it back, the heap frees it) so only one is ever live. Each
 * block costs a header and alignment. Nodes are counted so that invalid input cannot make cJSON
 * create more before it fails, so a parse never runs into this bound. */
static int parse_bound(const struct scan_result *sc, size_t n, size_t *ret) {
        const size_t per_block = sizeof(struct alloc_hdr) + ALLOC_ALIGN;
        size_t blocks, b;

        if (__builtin_add_overflow(sc->nodes, sc->strings, &blocks) ||
            __builtin_add_overflow(blocks, 1, &blocks) ||
            __builtin_mul_overflow(blocks, per_block, &b) ||
            __builtin_add_overflow(b, sc->nodes * sizeof(cJSON), &b) ||
            __builtin_add_overflow(b, n, &b) ||
            __builtin_add_overflow(b, sc->longest_bareword + 1, &b))
                return -E2BIG;
        *ret = b;
        return 0;
}

/* Records each node's level and rejects numbers that overflowed to infinity. Recursion is
 * bounded by max_depth (the pre-scan ran first). */
/*
 * JSON_ALLOW_NUL: cJSON keeps strings as C strings, so each "\u0000" escape is replaced, in a
 * copy of the input, by NUL_MARK_LEN bytes 0xFF before cJSON sees it. The pre-scan has checked
 * that the input is valid UTF-8, in which 0xFF never occurs, so after the parse a run of them in
 * a decoded string can only be such a mark: it becomes one NUL byte again, and the string's real
 * length goes into the node's valueint (unused for strings; 0 means "strlen"), which
 * json_string_len() returns. A mark in a key is -EBADMSG: keys stay C strings.
 */
#define NUL_MARK_LEN 6 /* strlen("\\u0000"): the copy keeps the input's length */

static bool has_mark(const char *str) {
        return str && strchr(str, '\xff');
}

static int unmark_string(cJSON *v) {
        char *p = v->valuestring, *o = p;
        size_t len = strlen(p);
        for (size_t i = 0; i < len;) {
                if ((unsigned char) p[i] != 0xff) {
                        *o++ = p[i++];
                        continue;
                }
                if (len - i < NUL_MARK_LEN)
                        return -EBADMSG;
                for (size_t k = 0; k < NUL_MARK_LEN; k++)
                        if ((unsigned char) p[i + k] != 0xff)
                                return -EBADMSG;
                *o++ = '\0';
                i += NUL_MARK_LEN;
        }
        size_t real = (size_t) (o - p);
        explicit_bzero(o, len - real);
        if (real > INT_MAX)
                return -E2BIG;
        v->valueint = (int) real;
        return 0;
}

static int finish_tree(cJSON *v, uint32_t level, bool marks) {
        hdr_of(v)->level = level;
        if (cJSON_IsNumber(v) && !__builtin_isfinite(v->valuedouble))
                return -EBADMSG;
        if (marks && has_mark(v->string))
                return -EBADMSG;
        if (marks && cJSON_IsString(v) && has_mark(v->valuestring)) {
                int r = unmark_string(v);
                if (r < 0)
                        return r;
        }
        for (cJSON *c = v->child; c; c = c->next) {
                int r = finish_tree(c, level + 1, marks);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The input with each "\u0000" escape (inside a string: the pre-scan has checked the grammar)
 * replaced by NUL_MARK_LEN bytes 0xFF. Secure memory for a secure parse: it holds the values. */
struct marked_copy {
        char *data;
        size_t n;
        bool secure;
};

static void marked_freep(struct marked_copy *m) {
        if (!m->data)
                return;
        explicit_bzero(m->data, m->n);
        if (m->secure)
                secmem_free(m->data);
        else
                free(m->data);
}

static int mark_nuls(const char *s, size_t n, struct marked_copy *m) {
        void *p = NULL;
        if (m->secure) {
                int r = secmem_alloc(n, &p);
                if (r < 0)
                        return r;
        } else if (!(p = malloc(n)))
                return -ENOMEM;
        m->data = p;
        m->n = n;
        bool in_string = false;
        for (size_t i = 0; i < n;) {
                if (s[i] == '"')
                        in_string = !in_string;
                if (in_string && s[i] == '\\' && i + 1 < n) {
                        if (n - i >= NUL_MARK_LEN && memcmp(s + i, "\\u0000", NUL_MARK_LEN) == 0)
                                memset(m->data + i, 0xff, NUL_MARK_LEN);
                        else
                                memcpy(m->data + i, s + i, s[i + 1] == 'u' ? 6 : 2);
                        i += s[i + 1] == 'u' ? 6 : 2;
                        continue;
                }
                m->data[i] = s[i];
                i++;
        }
        return 0;
}

int json_parse_arena(struct arena *a, const char *s, size_t n, unsigned flags,
                     const struct json_limits *limits, struct json_doc **ret) {
        struct json_limits l = limits ? *limits : (struct json_limits){0};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct scan_result sc;
        const char *end = NULL;
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
        r = prescan((const unsigned char *) s, n, l.max_depth, flags & JSON_ALLOW_NUL, &sc);
        if (r < 0)
                return r;
        if (sc.nodes > l.max_nodes)
                return -E2BIG;
        r = parse_bound(&sc, n, &bound);
        if (r < 0)
                return r;

        /* A secure parse gets one chunk of the bound (split at SECMEM_MAX_ALLOC). */
        r = doc_create(a, flags & JSON_SECURE, bound, bound, &d);
        if (r < 0)
                return r;
        _cleanup_(marked_freep) struct marked_copy mc = {.secure = flags & JSON_SECURE};
        if (sc.nuls > 0) {
                r = mark_nuls(s, n, &mc);
                if (r < 0)
                        return r;
                s = mc.data;
        }
        {
                DOC_SCOPE(d);
                d->root = cJSON_ParseWithLengthOpts(s, n, &end, false);
                if (!d->root)
                        return d->alloc_error < 0 ? d->alloc_error : -EBADMSG;
        }
        /* Nothing but whitespace after the value. */
        if (!end || end < s || end > s + n)
                return -EBADMSG;
        for (; end < s + n; end++)
                if (!is_ws((unsigned char) *end))
                        return -EBADMSG;
        r = finish_tree(d->root, 0, sc.nuls > 0);
        if (r < 0)
                return r;
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
        {
                DOC_SCOPE(d);
                d->root = cJSON_CreateObject();
                if (!d->root)
                        return doc_error(d);
        }
        hdr_of(d->root)->level = 0;
        *ret = TAKE_PTR(d);
        return 0;
}

int json_doc_new(unsigned flags, size_t max_bytes, struct json_doc **ret) {
        return json_doc_new_arena(NULL, flags, max_bytes, ret);
}

/* --- reading ---------------------------------------------------------------------------------- */

static const cJSON *cj(const struct json_value *v) {
        return (const cJSON *) v;
}

static const struct json_value *jv(const cJSON *c) {
        return (const struct json_value *) c;
}

enum json_type json_type(const struct json_value *v) {
        if (!v)
                return JSON_INVALID;
        switch (cj(v)->type & 0xff) {
        case cJSON_NULL:
                return JSON_NULL;
        case cJSON_False:
                return JSON_FALSE;
        case cJSON_True:
                return JSON_TRUE;
        case cJSON_Number:
                return JSON_NUMBER;
        case cJSON_String:
                return JSON_STRING;
        case cJSON_Array:
                return JSON_ARRAY;
        case cJSON_Object:
                return JSON_OBJECT;
        default:
                return JSON_INVALID;
        }
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

static const cJSON *member(const cJSON *o, const char *key, size_t keylen) {
        if (!o || !cJSON_IsObject(o) || !key)
                return NULL;
        for (const cJSON *c = o->child; c; c = c->next)
                if (c->string && strncmp(c->string, key, keylen) == 0 && c->string[keylen] == '\0')
                        return c;
        return NULL;
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
        return key ? jv(member(cj(v), key, strlen(key))) : NULL;
}

const struct json_value *json_get_path(const struct json_value *v, const char *path) {
        const cJSON *c = cj(v);

        if (!path)
                return NULL;
        for (;;) {
                const char *dot = strchr(path, '.');
                size_t len = dot ? (size_t) (dot - path) : strlen(path);
                c = member(c, path, len);
                if (!c || !dot)
                        return jv(c);
                path = dot + 1;
        }
}

int json_string(const struct json_value *v, const char **ret) {
        if (!v)
                return -ENOENT;
        if (!cJSON_IsString(cj(v)) || !cj(v)->valuestring)
                return -EBADMSG;
        if (ret)
                *ret = cj(v)->valuestring;
        return 0;
}

int json_int64(const struct json_value *v, int64_t *ret) {
        if (!v)
                return -ENOENT;
        if (!cJSON_IsNumber(cj(v)))
                return -EBADMSG;
        double x = cj(v)->valuedouble;
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
        if (!cJSON_IsNumber(cj(v)))
                return -EBADMSG;
        if (ret)
                *ret = cj(v)->valuedouble;
        return 0;
}

int json_bool(const struct json_value *v, bool *ret) {
        if (!v)
                return -ENOENT;
        if (!cJSON_IsBool(cj(v)))
                return -EBADMSG;
        if (ret)
                *ret = cJSON_IsTrue(cj(v));
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
        if (!v || !cJSON_IsString(cj(v)) || !cj(v)->valuestring)
                return 0;
        /* A string that held "\u0000" (JSON_ALLOW_NUL): its real length, see finish_tree(). */
        return cj(v)->valueint > 0 ? (size_t) cj(v)->valueint : strlen(cj(v)->valuestring);
}

size_t json_count(const struct json_value *v) {
        size_t n = 0;

        for (const struct json_value *c = json_first_child(v); c; c = json_next(c))
                n++;
        return n;
}

const struct json_value *json_first_child(const struct json_value *v) {
        if (!v || !(cJSON_IsArray(cj(v)) || cJSON_IsObject(cj(v))))
                return NULL;
        return jv(cj(v)->child);
}

const struct json_value *json_next(const struct json_value *v) {
        return v ? jv(cj(v)->next) : NULL;
}

const char *json_key(const struct json_value *v) {
        return v ? cj(v)->string : NULL;
}

const struct json_value *json_array_at(const struct json_value *v, size_t i) {
        if (!v || !cJSON_IsArray(cj(v)))
                return NULL;
        for (const struct json_value *c = json_first_child(v); c; c = json_next(c))
                if (i-- == 0)
                        return c;
        return NULL;
}

/* --- building --------------------------------------------------------------------------------- */

/* Nesting of a value: 0 for scalars, 1 + the deepest child for containers. */
static unsigned nesting(const cJSON *v) {
        unsigned deepest = 0;

        if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
                return 0;
        for (const cJSON *c = v->child; c; c = c->next) {
                unsigned n = nesting(c);
                deepest = MAX(deepest, n);
        }
        return deepest + 1;
}

static void set_levels(cJSON *v, uint32_t level) {
        hdr_of(v)->level = level;
        for (cJSON *c = v->child; c; c = c->next)
                set_levels(c, level + 1);
}

/* Checks that obj is a container of d that accepts key (object) or no key (array). */
static int check_parent(struct json_doc *d, struct json_value *obj, const char *key, cJSON **ret) {
        cJSON *p = (cJSON *) obj;

        if (!d || !p)
                return -EINVAL;
        if (hdr_of(p)->magic != ALLOC_MAGIC || hdr_of(p)->owner != d)
                return -EINVAL;
        if (cJSON_IsObject(p)) {
                if (!key || !utf8_valid(key, strlen(key)))
                        return -EINVAL;
        } else if (cJSON_IsArray(p)) {
                if (key)
                        return -EINVAL;
        } else
                return -EINVAL;
        *ret = p;
        return 0;
}

/* Adds item (already allocated in d, within doc scope) to parent; deletes it on failure. */
static int attach(struct json_doc *d, cJSON *parent, const char *key, cJSON *item) {
        bool ok;

        if (!item)
                return doc_error(d);
        set_levels(item, hdr_of(parent)->level + 1);
        ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
        if (!ok) {
                cJSON_Delete(item);
                return doc_error(d);
        }
        return 0;
}

static int add_string(struct json_doc *d, struct json_value *obj, const char *key, const char *s,
                      size_t n) {
        cJSON *parent, *item;
        char *copy;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if (!s || n == SIZE_MAX || memchr(s, 0, n) || !utf8_valid(s, n))
                return -EINVAL;

        DOC_SCOPE(d);
        item = cJSON_CreateNull();
        if (!item)
                return doc_error(d);
        copy = doc_alloc(d, n + 1);
        if (!copy) {
                cJSON_Delete(item);
                return doc_error(d);
        }
        memcpy(copy, s, n);
        copy[n] = '\0';
        item->type = cJSON_String;
        item->valuestring = copy;
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

enum scalar_kind { SCALAR_NUMBER, SCALAR_BOOL, SCALAR_NULL, SCALAR_OBJECT, SCALAR_ARRAY };

static int add_new(struct json_doc *d, struct json_value *obj, const char *key,
                   enum scalar_kind kind, double x, struct json_value **ret) {
        cJSON *parent, *item = NULL;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if ((kind == SCALAR_OBJECT || kind == SCALAR_ARRAY) &&
            hdr_of(parent)->level + 2 > JSON_MAX_DEPTH_LIMIT)
                return -ELOOP;

        DOC_SCOPE(d);
        switch (kind) {
        case SCALAR_NUMBER:
                item = cJSON_CreateNumber(x);
                break;
        case SCALAR_BOOL:
                item = cJSON_CreateBool(x != 0);
                break;
        case SCALAR_NULL:
                item = cJSON_CreateNull();
                break;
        case SCALAR_OBJECT:
                item = cJSON_CreateObject();
                break;
        case SCALAR_ARRAY:
                item = cJSON_CreateArray();
                break;
        }
        r = attach(d, parent, key, item);
        if (r < 0)
                return r;
        if (ret)
                *ret = (struct json_value *) item;
        return 0;
}

int json_add_int64(struct json_doc *d, struct json_value *obj, const char *key, int64_t x) {
        if (x <= -(int64_t) SAFE_INT_LIMIT || x >= (int64_t) SAFE_INT_LIMIT)
                return -ERANGE;
        return add_new(d, obj, key, SCALAR_NUMBER, (double) x, NULL);
}

int json_add_bool(struct json_doc *d, struct json_value *obj, const char *key, bool b) {
        return add_new(d, obj, key, SCALAR_BOOL, b ? 1 : 0, NULL);
}

int json_add_null(struct json_doc *d, struct json_value *obj, const char *key) {
        return add_new(d, obj, key, SCALAR_NULL, 0, NULL);
}

int json_add_object(struct json_doc *d, struct json_value *obj, const char *key,
                    struct json_value **ret) {
        return add_new(d, obj, key, SCALAR_OBJECT, 0, ret);
}

int json_add_array(struct json_doc *d, struct json_value *obj, const char *key,
                   struct json_value **ret) {
        return add_new(d, obj, key, SCALAR_ARRAY, 0, ret);
}

int json_add_copy(struct json_doc *d, struct json_value *obj, const char *key,
                  const struct json_value *v) {
        cJSON *parent, *copy;
        int r;

        r = check_parent(d, obj, key, &parent);
        if (r < 0)
                return r;
        if (!v || json_type(v) == JSON_INVALID)
                return -EINVAL;
        if (hdr_of(parent)->level + 1 + nesting(cj(v)) > JSON_MAX_DEPTH_LIMIT)
                return -ELOOP;

        DOC_SCOPE(d);
        copy = cJSON_Duplicate(cj(v), true);
        if (!copy)
                return doc_error(d);
        /* Duplicate keeps the member's key; an array element has none. */
        if (!key && copy->string) {
                hook_free(copy->string);
                copy->string = NULL;
        }
        return attach(d, parent, key, copy);
}

/* --- output ----------------------------------------------------------------------------------- */

/* Writes at p when set, else only counts: the same code measures and then produces the text. */
struct emitter {
        char *p;
        size_t len;
};

static void emit(struct emitter *e, const void *s, size_t n) {
        if (e->p)
                memcpy(e->p + e->len, s, n);
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

/* Runs of bytes that stand for themselves are emitted whole; only the rare others one by one. */
static void emit_quoted(struct emitter *e, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        emit(e, "\"", 1);
        for (;;) {
                const unsigned char *run = p;
                while (*p >= 0x20 && *p != '"' && *p != '\\')
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

static void emit_value(struct emitter *e, const cJSON *v) {
        switch (v->type & 0xff) {
        case cJSON_False:
                emit(e, "false", 5);
                break;
        case cJSON_True:
                emit(e, "true", 4);
                break;
        case cJSON_Number:
                emit_number(e, v->valuedouble);
                break;
        case cJSON_String:
                emit_quoted(e, v->valuestring ? v->valuestring : "");
                break;
        case cJSON_Array:
                emit(e, "[", 1);
                for (const cJSON *c = v->child; c; c = c->next) {
                        if (c != v->child)
                                emit(e, ",", 1);
                        emit_value(e, c);
                }
                emit(e, "]", 1);
                break;
        case cJSON_Object:
                emit(e, "{", 1);
                for (const cJSON *c = v->child; c; c = c->next) {
                        if (c != v->child)
                                emit(e, ",", 1);
                        emit_quoted(e, c->string ? c->string : "");
                        emit(e, ":", 1);
                        emit_value(e, c);
                }
                emit(e, "}", 1);
                break;
        default: /* cJSON_NULL; nothing else is ever created */
                emit(e, "null", 4);
                break;
        }
}

/* Measures, reserves, then writes into out's storage: nothing is appended when it does not fit,
 * and the text is never held anywhere else. */
static int print_to(struct buf *out, const cJSON *v, const char *quote) {
        struct emitter e = {0};
        size_t len;
        int r;

        if (v)
                emit_value(&e, v);
        else
                emit_quoted(&e, quote);
        len = e.len;
        r = buf_reserve(out, len);
        if (r < 0)
                return r;
        e = (struct emitter){.p = out->data + out->len};
        if (v)
                emit_value(&e, v);
        else
                emit_quoted(&e, quote);
        if (e.len != len)
                abort(); /* the two passes disagree: a bug that has just overflowed out */
        buf_commit(out, len);
        return 0;
}

int json_print(const struct json_value *v, struct buf *out) {
        if (!v || !out || json_type(v) == JSON_INVALID)
                return -EINVAL;
        return print_to(out, cj(v), NULL);
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
