/* SPDX-License-Identifier: Apache-2.0 */
/* jsonpatch-apply.c: see jsonpatch-apply.h. Each operation rebuilds the document with the one
 * change (simple, O(size) per operation: test code). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "tests/lib/jsonpatch-apply.h"

#define MAX_SEGMENTS 64
#define DOC_MAX (64u * 1024u * 1024u)

enum op {
        OP_ADD,
        OP_REMOVE,
        OP_REPLACE,
        OP_TEST,
};

struct pointer {
        char *segs[MAX_SEGMENTS];
        size_t n;
};

static void pointer_done(struct pointer *p) {
        for (size_t i = 0; i < p->n; i++)
                free(p->segs[i]);
        p->n = 0;
}

static int pointer_parse(const char *s, struct pointer *ret) {
        struct pointer p = {};

        if (s[0] != '/')
                return s[0] ? -EBADMSG : -ENOTSUP;
        while (*s == '/') {
                const char *end = strchr(s + 1, '/');
                size_t len = end ? (size_t) (end - s - 1) : strlen(s + 1);
                char *seg = malloc(len + 1), *w = seg;
                if (!seg || p.n >= MAX_SEGMENTS) {
                        free(seg);
                        pointer_done(&p);
                        return seg ? -E2BIG : -ENOMEM;
                }
                for (size_t i = 0; i < len; i++) {
                        char c = s[1 + i];
                        if (c == '~') {
                                char e = i + 1 < len ? s[2 + i] : '\0';
                                if (e != '0' && e != '1') {
                                        free(seg);
                                        pointer_done(&p);
                                        return -EBADMSG;
                                }
                                c = e == '0' ? '~' : '/';
                                i++;
                        }
                        *w++ = c;
                }
                *w = '\0';
                p.segs[p.n++] = seg;
                s += 1 + len;
        }
        *ret = p;
        return 0;
}

/* An array index: "0" or [1-9][0-9]*, at most 9 digits. -1 for "-", -2 when invalid. */
static long parse_index(const char *s) {
        long v = 0;
        size_t n = strlen(s);

        if (strcmp(s, "-") == 0)
                return -1;
        if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
                return -2;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -2;
                v = v * 10 + (*s - '0');
        }
        return v;
}

static bool equal(const struct json_value *a, const struct json_value *b) {
        enum json_type t = json_type(a);
        const char *sa, *sb;
        double da, db;

        if (t != json_type(b))
                return false;
        switch (t) {
        case JSON_NUMBER:
                return json_double(a, &da) == 0 && json_double(b, &db) == 0 && da == db;
        case JSON_STRING:
                return json_string(a, &sa) == 0 && json_string(b, &sb) == 0 && strcmp(sa, sb) == 0;
        case JSON_ARRAY: {
                const struct json_value *x = json_first_child(a), *y = json_first_child(b);
                for (; x && y; x = json_next(x), y = json_next(y))
                        if (!equal(x, y))
                                return false;
                return !x && !y;
        }
        case JSON_OBJECT: {
                size_t n = 0;
                JSON_FOREACH(x, a) {
                        n++;
                        if (!equal(x, json_get(b, json_key(x))))
                                return false;
                }
                return n == json_count(b);
        }
        default:
                return true;
        }
}

struct ctx {
        struct json_doc *dst;
        enum op op;
        const struct json_value *value;
};

static int rebuild(struct ctx *c, struct json_value *dst, const struct json_value *src,
                   char *const *segs, size_t n);

/* Adds to dst (key, or appended when dst is an array) a copy of child, rebuilt along segs when
 * n > 0. */
static int put(struct ctx *c, struct json_value *dst, const char *key,
               const struct json_value *child, char *const *segs, size_t n) {
        struct json_value *sub;
        int r;

        if (n == 0)
                return json_add_copy(c->dst, dst, key, child);
        if (json_type(child) == JSON_OBJECT)
                r = json_add_object(c->dst, dst, key, &sub);
        else if (json_type(child) == JSON_ARRAY)
                r = json_add_array(c->dst, dst, key, &sub);
        else
                return -ENOENT; /* a path through a scalar */
        if (r < 0)
                return r;
        return rebuild(c, sub, child, segs, n);
}

/* dst is an empty container of src's type; copies src into it with the operation applied at
 * segs (n >= 1, relative to src). */
static int rebuild(struct ctx *c, struct json_value *dst, const struct json_value *src,
                   char *const *segs, size_t n) {
        const char *seg = segs[0];
        bool last = n == 1;
        int r;

        if (json_type(src) == JSON_OBJECT) {
                const struct json_value *target = NULL;
                JSON_FOREACH(m, src)
                if (strcmp(json_key(m), seg) == 0) {
                        target = m;
                        break;
                }
                if (!target && (!last || c->op != OP_ADD))
                        return -ENOENT;
                if (last && c->op == OP_TEST && !equal(target, c->value))
                        return -ECANCELED;
                JSON_FOREACH(m, src) {
                        if (m != target)
                                r = json_add_copy(c->dst, dst, json_key(m), m);
                        else if (!last)
                                r = put(c, dst, json_key(m), m, segs + 1, n - 1);
                        else if (c->op == OP_REMOVE)
                                r = 0;
                        else if (c->op == OP_TEST)
                                r = json_add_copy(c->dst, dst, json_key(m), m);
                        else
                                r = json_add_copy(c->dst, dst, json_key(m), c->value);
                        if (r < 0)
                                return r;
                }
                if (!target)
                        return json_add_copy(c->dst, dst, seg, c->value);
                return 0;
        }
        if (json_type(src) != JSON_ARRAY)
                return -ENOENT;

        long len = (long) json_count(src), idx = parse_index(seg);
        if (idx == -2)
                return -EBADMSG;
        if (idx == -1) {
                if (!last || c->op != OP_ADD)
                        return -ERANGE;
                idx = len;
        }
        if (idx > len || (idx == len && !(last && c->op == OP_ADD)))
                return -ERANGE;
        long i = 0;
        const struct json_value *target = json_array_at(src, (size_t) idx);
        if (last && c->op == OP_TEST && !equal(target, c->value))
                return -ECANCELED;
        JSON_FOREACH(e, src) {
                if (i == idx) {
                        if (!last)
                                r = put(c, dst, NULL, e, segs + 1, n - 1);
                        else if (c->op == OP_ADD) {
                                r = json_add_copy(c->dst, dst, NULL, c->value);
                                if (r >= 0)
                                        r = json_add_copy(c->dst, dst, NULL, e);
                        } else if (c->op == OP_REPLACE)
                                r = json_add_copy(c->dst, dst, NULL, c->value);
                        else if (c->op == OP_TEST)
                                r = json_add_copy(c->dst, dst, NULL, e);
                        else
                                r = 0;
                } else
                        r = json_add_copy(c->dst, dst, NULL, e);
                if (r < 0)
                        return r;
                i++;
        }
        if (idx == len) /* add at the end */
                return json_add_copy(c->dst, dst, NULL, c->value);
        return 0;
}

static int apply_one(const char *text, size_t len, const struct json_value *op,
                     struct buf *result) {
        static const struct json_limits lim = {.max_input = DOC_MAX, .max_nodes = 2000000};
        _cleanup_json_doc_ struct json_doc *src = NULL, *dst = NULL;
        struct pointer p = {};
        const char *name, *path;
        struct ctx c = {};
        int r;

        if (json_get_string(op, "op", &name) < 0 || json_get_string(op, "path", &path) < 0)
                return -EBADMSG;
        if (strcmp(name, "add") == 0)
                c.op = OP_ADD;
        else if (strcmp(name, "remove") == 0)
                c.op = OP_REMOVE;
        else if (strcmp(name, "replace") == 0)
                c.op = OP_REPLACE;
        else if (strcmp(name, "test") == 0)
                c.op = OP_TEST;
        else if (strcmp(name, "move") == 0 || strcmp(name, "copy") == 0)
                return -ENOTSUP;
        else
                return -EBADMSG;
        c.value = json_get(op, "value");
        if (c.op != OP_REMOVE && !c.value)
                return -EBADMSG;
        r = pointer_parse(path, &p);
        if (r < 0)
                return r;
        r = json_parse(text, len, 0, &lim, &src);
        if (r >= 0 && json_type(json_doc_root(src)) != JSON_OBJECT)
                r = -EBADMSG;
        if (r >= 0)
                r = json_doc_new(0, DOC_MAX, &dst);
        if (r >= 0) {
                c.dst = dst;
                r = rebuild(&c, json_doc_root(dst), json_doc_root(src), p.segs, p.n);
        }
        pointer_done(&p);
        if (r >= 0) {
                buf_reset(result);
                r = json_print(json_doc_root(dst), result);
        }
        return r;
}

int test_jsonpatch_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
                         struct buf *out) {
        _cleanup_json_doc_ struct json_doc *pd = NULL;
        _cleanup_buf_ struct buf cur = BUF_INIT(DOC_MAX, 0), next = BUF_INIT(DOC_MAX, 0);
        int r;

        r = json_parse(patch, patch_len, 0, NULL, &pd);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (json_type(json_doc_root(pd)) != JSON_ARRAY)
                return -EBADMSG;
        r = buf_append(&cur, doc, doc_len);
        if (r < 0)
                return r;
        JSON_FOREACH(op, json_doc_root(pd)) {
                r = apply_one(cur.data ? cur.data : "", cur.len, op, &next);
                if (r < 0)
                        return r;
                struct buf t = cur;
                cur = next;
                next = t;
        }
        if (json_count(json_doc_root(pd)) == 0) {
                /* Still check that the document parses. */
                _cleanup_json_doc_ struct json_doc *d = NULL;
                r = json_parse(doc, doc_len, 0, NULL, &d);
                if (r < 0)
                        return r == -ENOMEM ? r : -EBADMSG;
        }
        return buf_append(out, cur.data ? cur.data : "", cur.len);
}
