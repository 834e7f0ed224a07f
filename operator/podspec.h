/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/podspec: the pod spec's JSON as the admission logic reads and builds it: absent values,
 * deep equality (members in any order, as the API server re-serialises them), string vectors
 * from JSON arrays, named members of arrays, JSON-pointer paths, and the objects the mutation adds
 * (the init container, the in-memory volume, the read-only mount, an env entry). Pure: no I/O,
 * no logging; -errno (-ENOMEM, -EINVAL, -E2BIG for a path over JSONPATCH_PATH_MAX).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"

/* A list of borrowed strings. */
struct podspec_strv {
        const char **v;
        size_t n;
        bool owned; /* the strings too (escaped copies) */
};

typedef int (*podspec_build_fn)(struct json_doc *d, struct json_value *o, const void *arg);

/* Missing or null. */
bool podspec_absent(const struct json_value *v);
bool podspec_json_equal(const struct json_value *a, const struct json_value *b);
void podspec_strv_done(struct podspec_strv *s);
int podspec_strv_from_json(const struct json_value *v, struct podspec_strv *ret);
int podspec_strv_from_c_escaped(char *const *v, size_t n, struct podspec_strv *ret);
bool podspec_strv_equal_json(const struct podspec_strv *s, const struct json_value *v);
int podspec_add_strv(struct json_doc *d, struct json_value *obj, const char *key,
                     const char *const *prefix, size_t n_prefix, const struct podspec_strv *s);
ssize_t podspec_find_named(const struct json_value *arr, const char *name);
/* A JSON pointer from a format, into p (bounded by its maximum). */
int podspec_pathf(struct buf *p, const char *fmt, ...) _printf_(2, 3);
/* The objects the mutation adds, built into o. */
int podspec_build_init_container(struct json_doc *d, struct json_value *o, const char *image);
int podspec_build_volume(struct json_doc *d, struct json_value *o);
int podspec_build_mount(struct json_doc *d, struct json_value *o);
int podspec_build_env(struct json_doc *d, struct json_value *o, const char *name,
                      const char *value);
int podspec_desired_value(podspec_build_fn fn, const void *arg, struct json_doc **ret);
int podspec_build_init_fn(struct json_doc *d, struct json_value *o, const void *arg);
int podspec_build_volume_fn(struct json_doc *d, struct json_value *o, const void *arg);
int podspec_build_mount_fn(struct json_doc *d, struct json_value *o, const void *arg);
