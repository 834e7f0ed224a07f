/* SPDX-License-Identifier: Apache-2.0 */
/* operator/podspec: see podspec.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/jsonpatch.h"
#include "operator/podspec.h"

bool podspec_absent(const struct json_value *v) {
        return !v || json_type(v) == JSON_NULL;
}

/* Deep equality; object members compared by key whatever their order (the API server
 * re-serialises objects in its own field order). Recursion is bounded by the documents' depth. */
bool podspec_json_equal(const struct json_value *a, const struct json_value *b) {
        enum json_type t = json_type(a);
        const char *sa, *sb;
        double da, db;

        if (t != json_type(b))
                return false;
        switch (t) {
        case JSON_NULL:
        case JSON_TRUE:
        case JSON_FALSE:
                return true;
        case JSON_NUMBER:
                return json_double(a, &da) == 0 && json_double(b, &db) == 0 && da == db;
        case JSON_STRING:
                return json_string(a, &sa) == 0 && json_string(b, &sb) == 0 && strcmp(sa, sb) == 0;
        case JSON_ARRAY: {
                const struct json_value *x = json_first_child(a), *y = json_first_child(b);
                for (; x && y; x = json_next(x), y = json_next(y))
                        if (!podspec_json_equal(x, y))
                                return false;
                return !x && !y;
        }
        case JSON_OBJECT: {
                size_t na = 0, nb = json_count(b);
                JSON_FOREACH(x, a) {
                        na++;
                        if (!podspec_json_equal(x, json_get(b, json_key(x))))
                                return false;
                }
                return na == nb;
        }
        default:
                return false;
        }
}

void podspec_strv_done(struct podspec_strv *s) {
        for (size_t i = 0; s->owned && s->v && i < s->n; i++)
                free((char *) s->v[i]);
        free(s->v);
        *s = (struct podspec_strv){};
}

/* The strings of an array; -EBADMSG when v is not an array of strings. *ret borrows from v. */
int podspec_strv_from_json(const struct json_value *v, struct podspec_strv *ret) {
        const char **a;
        size_t n = 0, count = json_count(v);

        if (json_type(v) != JSON_ARRAY)
                return -EBADMSG;
        a = calloc(count + 1, sizeof(char *));
        if (!a)
                return -ENOMEM;
        JSON_FOREACH(e, v) {
                if (json_string(e, &a[n]) < 0) {
                        free(a);
                        return -EBADMSG;
                }
                n++;
        }
        *ret = (struct podspec_strv){.v = a, .n = n};
        return 0;
}

/* Strings from the image config or the cloudtaser.io/command annotation, which Kubernetes never
 * expands, moved into the pod spec, where it expands $(VAR) and turns "$$" into "$": every '$'
 * is doubled so that the workload gets them exactly as the image has them. */
int podspec_strv_from_c_escaped(char *const *v, size_t n, struct podspec_strv *ret) {
        struct podspec_strv s = {.owned = true};

        s.v = calloc(n + 1, sizeof(char *));
        if (!s.v)
                return -ENOMEM;
        for (; s.n < n; s.n++) {
                size_t len = strlen(v[s.n]), dollars = 0;
                for (const char *c = v[s.n]; *c; c++)
                        dollars += *c == '$';
                char *e = malloc(len + dollars + 1), *w = e;
                if (!e) {
                        podspec_strv_done(&s);
                        return -ENOMEM;
                }
                for (const char *c = v[s.n]; *c; c++) {
                        *w++ = *c;
                        if (*c == '$')
                                *w++ = '$';
                }
                *w = '\0';
                s.v[s.n] = e;
        }
        *ret = s;
        return 0;
}

bool podspec_strv_equal_json(const struct podspec_strv *s, const struct json_value *v) {
        size_t i = 0;
        const char *e;

        if (json_type(v) != JSON_ARRAY)
                return false;
        JSON_FOREACH(x, v) {
                if (i >= s->n || json_string(x, &e) < 0 || strcmp(e, s->v[i]) != 0)
                        return false;
                i++;
        }
        return i == s->n;
}

int podspec_add_strv(struct json_doc *d, struct json_value *obj, const char *key,
                     const char *const *prefix, size_t n_prefix, const struct podspec_strv *s) {
        struct json_value *a;
        int r = json_add_array(d, obj, key, &a);
        for (size_t i = 0; r >= 0 && i < n_prefix; i++)
                r = json_add_string(d, a, NULL, prefix[i]);
        for (size_t i = 0; r >= 0 && i < s->n; i++)
                r = json_add_string(d, a, NULL, s->v[i]);
        return r;
}

/* Index of the first element of array arr whose "name" is name, or -1. */
ssize_t podspec_find_named(const struct json_value *arr, const char *name) {
        ssize_t i = 0;
        const char *n;

        JSON_FOREACH(e, arr) {
                if (json_get_string(e, "name", &n) == 0 && strcmp(n, name) == 0)
                        return i;
                i++;
        }
        return -1;
}

/* Builds a path with printf; the segments given are ours (no '~' or '/' to escape). */
int podspec_pathf(struct buf *p, const char *fmt, ...) {
        va_list ap;
        int r;

        buf_reset(p);
        va_start(ap, fmt);
        r = buf_vprintf(p, fmt, ap);
        va_end(ap);
        return r;
}

/* --- the desired objects ---------------------------------------------------------------------- */

int podspec_build_init_container(struct json_doc *d, struct json_value *o, const char *image) {
        struct json_value *a, *res, *req, *lim, *sc, *caps, *drop, *seccomp, *mounts, *m;
        int r;

        if ((r = json_add_string(d, o, "name", INJECTION_INIT_CONTAINER)) < 0 ||
            (r = json_add_string(d, o, "image", image)) < 0)
                return r;
        if ((r = json_add_array(d, o, "command", &a)) < 0 ||
            (r = json_add_string(d, a, NULL, INJECTION_INIT_COMMAND)) < 0)
                return r;
        if ((r = json_add_array(d, o, "args", &a)) < 0 ||
            (r = json_add_string(d, a, NULL, "--dest")) < 0 ||
            (r = json_add_string(d, a, NULL, INJECTION_WRAPPER_PATH)) < 0)
                return r;
        if ((r = json_add_object(d, o, "resources", &res)) < 0 ||
            (r = json_add_object(d, res, "requests", &req)) < 0 ||
            (r = json_add_string(d, req, "cpu", "10m")) < 0 ||
            (r = json_add_string(d, req, "memory", "16Mi")) < 0 ||
            (r = json_add_object(d, res, "limits", &lim)) < 0 ||
            (r = json_add_string(d, lim, "cpu", "100m")) < 0 ||
            (r = json_add_string(d, lim, "memory", "32Mi")) < 0)
                return r;
        if ((r = json_add_object(d, o, "securityContext", &sc)) < 0 ||
            (r = json_add_bool(d, sc, "runAsNonRoot", true)) < 0 ||
            (r = json_add_int64(d, sc, "runAsUser", 65532)) < 0 ||
            (r = json_add_int64(d, sc, "runAsGroup", 65532)) < 0 ||
            (r = json_add_bool(d, sc, "readOnlyRootFilesystem", true)) < 0 ||
            (r = json_add_bool(d, sc, "allowPrivilegeEscalation", false)) < 0 ||
            (r = json_add_bool(d, sc, "privileged", false)) < 0 ||
            (r = json_add_object(d, sc, "capabilities", &caps)) < 0 ||
            (r = json_add_array(d, caps, "drop", &drop)) < 0 ||
            (r = json_add_string(d, drop, NULL, "ALL")) < 0 ||
            (r = json_add_object(d, sc, "seccompProfile", &seccomp)) < 0 ||
            (r = json_add_string(d, seccomp, "type", "RuntimeDefault")) < 0)
                return r;
        if ((r = json_add_array(d, o, "volumeMounts", &mounts)) < 0 ||
            (r = json_add_object(d, mounts, NULL, &m)) < 0 ||
            (r = json_add_string(d, m, "name", INJECTION_VOLUME)) < 0 ||
            (r = json_add_string(d, m, "mountPath", INJECTION_MOUNT_PATH)) < 0)
                return r;
        return 0;
}

int podspec_build_volume(struct json_doc *d, struct json_value *o) {
        struct json_value *ed;
        int r;

        if ((r = json_add_string(d, o, "name", INJECTION_VOLUME)) < 0 ||
            (r = json_add_object(d, o, "emptyDir", &ed)) < 0 ||
            (r = json_add_string(d, ed, "medium", "Memory")) < 0 ||
            (r = json_add_string(d, ed, "sizeLimit", INJECTION_VOLUME_SIZE)) < 0)
                return r;
        return 0;
}

int podspec_build_mount(struct json_doc *d, struct json_value *o) {
        int r;

        if ((r = json_add_string(d, o, "name", INJECTION_VOLUME)) < 0 ||
            (r = json_add_string(d, o, "mountPath", INJECTION_MOUNT_PATH)) < 0 ||
            (r = json_add_bool(d, o, "readOnly", true)) < 0)
                return r;
        return 0;
}

int podspec_build_env(struct json_doc *d, struct json_value *o, const char *name,
                      const char *value) {
        int r;

        if ((r = json_add_string(d, o, "name", name)) < 0 ||
            (r = json_add_string(d, o, "value", value)) < 0)
                return r;
        return 0;
}

/* A document holding one desired object, to compare with what the pod has. */

int podspec_desired_value(podspec_build_fn fn, const void *arg, struct json_doc **ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int r = json_doc_new(0, 64 * 1024, &d);
        if (r < 0)
                return r;
        r = fn(d, json_doc_root(d), arg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int podspec_build_init_fn(struct json_doc *d, struct json_value *o, const void *arg) {
        return podspec_build_init_container(d, o, arg);
}
int podspec_build_volume_fn(struct json_doc *d, struct json_value *o, const void *arg) {
        return podspec_build_volume(d, o);
}
int podspec_build_mount_fn(struct json_doc *d, struct json_value *o, const void *arg) {
        return podspec_build_mount(d, o);
}
