/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/jsonpatch: builds an RFC 6902 JSON patch (the array of operations an AdmissionReview
 * response carries, base64-encoded) and escapes path segments as RFC 6901 requires ("~" is "~0",
 * "/" is "~1": "/metadata/annotations/cloudtaser.io~1injected").
 *
 * The builder does not see the document it patches: the caller makes sure every "add" has an
 * existing parent (Kubernetes applies patches with evanphx/json-patch v4, where an add under a
 * missing parent fails), e.g. adds "/spec/initContainers" as an array before adding into it, and
 * orders operations so that each path is valid after the ones before it have been applied.
 *
 * Memory is bounded by max_bytes at init (-E2BIG beyond); at most JSONPATCH_MAX_OPS operations.
 */
#pragma once

#include <stddef.h>

#include "common/buf.h"
#include "common/json.h"

#define JSONPATCH_MAX_OPS 4096u
#define JSONPATCH_PATH_MAX 1024u /* bytes of one path */

enum jsonpatch_op {
        JSONPATCH_ADD,
        JSONPATCH_REPLACE,
        JSONPATCH_TEST,
};

struct jsonpatch {
        struct json_doc *doc;   /* owns every operation */
        struct json_value *ops; /* the array */
        size_t n_ops;
};

/* An empty patch. max_bytes bounds its memory (0: 4 MiB). arena: where its memory comes from
 * (json_doc_new_arena(): the patch must then be released before the arena is reset), NULL for
 * the heap. -ENOMEM, -E2BIG. */
struct arena;
int jsonpatch_init(struct jsonpatch *p, struct arena *arena, size_t max_bytes);
/* Frees the patch; safe on a zeroed or released one. */
void jsonpatch_done(struct jsonpatch *p);

/* Appends {"op": op, "path": path} and returns it through ret_op (borrowed) for the caller to add
 * the "value" member with json_add_*(p->doc, op, "value", ...). path must be a JSON pointer: ""
 * or starting with '/', at most JSONPATCH_PATH_MAX bytes (-EINVAL otherwise). -E2BIG past
 * JSONPATCH_MAX_OPS or the memory bound, -ENOMEM. */
int jsonpatch_op(struct jsonpatch *p, enum jsonpatch_op op, const char *path,
                 struct json_value **ret_op);

/* The same with the value given: a deep copy of v / a string. */
int jsonpatch_op_copy(struct jsonpatch *p, enum jsonpatch_op op, const char *path,
                      const struct json_value *v);
int jsonpatch_op_string(struct jsonpatch *p, enum jsonpatch_op op, const char *path, const char *s);

/* Appends '/' and the RFC 6901 escaping of segment to out. -E2BIG, -ENOMEM, -EINVAL. */
int jsonpatch_path_push(struct buf *out, const char *segment);

/* Appends the patch's JSON text (an array, "[]" when empty) to out. -E2BIG, -ENOMEM. */
int jsonpatch_print(const struct jsonpatch *p, struct buf *out);

static inline void jsonpatch_donep(struct jsonpatch *p) {
        jsonpatch_done(p);
}
#define _cleanup_jsonpatch_ __attribute__((cleanup(jsonpatch_donep)))
