/* SPDX-License-Identifier: Apache-2.0 */
/* operator/jsonpatch: see jsonpatch.h. */
#include <errno.h>
#include <string.h>

#include "operator/jsonpatch.h"

int jsonpatch_init(struct jsonpatch *p, struct arena *arena, size_t max_bytes) {
        struct json_doc *d = NULL;
        struct json_value *ops = NULL;
        int r;

        if (!p)
                return -EINVAL;
        r = json_doc_new_arena(arena, 0, max_bytes ? max_bytes : 4u * 1024u * 1024u, &d);
        if (r < 0)
                return r;
        r = json_add_array(d, json_doc_root(d), "ops", &ops);
        if (r < 0) {
                json_doc_free(d);
                return r;
        }
        *p = (struct jsonpatch){.doc = d, .ops = ops};
        return 0;
}

void jsonpatch_done(struct jsonpatch *p) {
        if (!p)
                return;
        json_doc_free(p->doc);
        *p = (struct jsonpatch){};
}

static const char *op_name(enum jsonpatch_op op) {
        switch (op) {
        case JSONPATCH_ADD:
                return "add";
        case JSONPATCH_REPLACE:
                return "replace";
        case JSONPATCH_TEST:
                return "test";
        }
        return NULL;
}

int jsonpatch_op(struct jsonpatch *p, enum jsonpatch_op op, const char *path,
                 struct json_value **ret_op) {
        struct json_value *o = NULL;
        const char *name = op_name(op);
        int r;

        if (!p || !p->doc || !path || !name)
                return -EINVAL;
        if ((path[0] && path[0] != '/') || strlen(path) > JSONPATCH_PATH_MAX)
                return -EINVAL;
        if (p->n_ops >= JSONPATCH_MAX_OPS)
                return -E2BIG;
        r = json_add_object(p->doc, p->ops, NULL, &o);
        if (r < 0)
                return r;
        /* A failure below leaves an incomplete operation: the caller drops the whole patch. */
        r = json_add_string(p->doc, o, "op", name);
        if (r < 0)
                return r;
        r = json_add_string(p->doc, o, "path", path);
        if (r < 0)
                return r;
        p->n_ops++;
        if (ret_op)
                *ret_op = o;
        return 0;
}

int jsonpatch_op_copy(struct jsonpatch *p, enum jsonpatch_op op, const char *path,
                      const struct json_value *v) {
        struct json_value *o;
        int r = jsonpatch_op(p, op, path, &o);
        if (r < 0)
                return r;
        return json_add_copy(p->doc, o, "value", v);
}

int jsonpatch_op_string(struct jsonpatch *p, enum jsonpatch_op op, const char *path,
                        const char *s) {
        struct json_value *o;
        int r = jsonpatch_op(p, op, path, &o);
        if (r < 0)
                return r;
        return json_add_string(p->doc, o, "value", s);
}

int jsonpatch_path_push(struct buf *out, const char *segment) {
        size_t old;
        int r;

        if (!out || !segment)
                return -EINVAL;
        old = out->len;
        r = buf_append_byte(out, '/');
        for (const char *c = segment; r >= 0 && *c; c++) {
                if (*c == '~')
                        r = buf_append(out, "~0", 2);
                else if (*c == '/')
                        r = buf_append(out, "~1", 2);
                else
                        r = buf_append_byte(out, (uint8_t) *c);
        }
        if (r < 0)
                buf_truncate(out, old); /* leave out as it was */
        return r;
}

int jsonpatch_print(const struct jsonpatch *p, struct buf *out) {
        if (!p || !p->ops || !out)
                return -EINVAL;
        return json_print(p->ops, out);
}
