/* SPDX-License-Identifier: Apache-2.0 */
/* cli/protect: `cloudtaser target protect` (see protect.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/plan.h"
#include "cli/protect.h"
#include "cli/source-plan.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"

#define ANN_INJECT INJECTION_ANNOTATION_PREFIX "inject"

static int say(char *reason, size_t size, const char *fmt, ...) _printf_(3, 4);
static int say(char *reason, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (reason && size)
                (void) vsnprintf(reason, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* --- the annotations ------------------------------------------------------------------------ */

static bool entry_lists_all(const struct plan_secret *x) {
        return x->n_fields == 0;
}

int protect_annotations(const struct plan_workload *w, char **ret_paths, char **ret_env_map,
                        char *reason, size_t reason_size) {
        _cleanup_buf_ struct buf paths = BUF_INIT(INJECTION_MAX_LIST, 0);
        _cleanup_buf_ struct buf map = BUF_INIT(INJECTION_MAX_LIST, 0);
        size_t n_paths = 0;
        bool any_map = false;
        int r = 0;

        if (w->n_secrets == 0)
                return say(reason, reason_size, "the plan lists no secret for it");
        for (size_t i = 0; i < w->n_secrets && r >= 0; i++) {
                const char *p = w->secrets[i].vault_path;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = strcmp(w->secrets[j].vault_path, p) == 0;
                if (seen)
                        continue;
                /* One group per distinct path: the fields of every entry with that path. */
                bool all = false;
                _cleanup_buf_ struct buf g = BUF_INIT(INJECTION_MAX_LIST, 0);
                for (size_t j = i; j < w->n_secrets && r >= 0; j++) {
                        const struct plan_secret *x = &w->secrets[j];
                        if (strcmp(x->vault_path, p) != 0)
                                continue;
                        all = all || entry_lists_all(x);
                        for (size_t f = 0; f < x->n_fields && r >= 0; f++) {
                                if (strpbrk(x->fields[f].field, ",;=$") ||
                                    strpbrk(x->fields[f].env, ",;=$"))
                                        return say(reason, reason_size,
                                                   "field '%s' -> '%s' cannot be written in "
                                                   "an env map",
                                                   x->fields[f].field, x->fields[f].env);
                                r = buf_printf(&g, "%s%s=%s", g.len ? "," : "", x->fields[f].field,
                                               x->fields[f].env);
                        }
                }
                if (r < 0)
                        break;
                if (strpbrk(p, ",$"))
                        return say(reason, reason_size,
                                   "vault path '%s' cannot be written in "
                                   "secret-paths",
                                   p);
                r = buf_printf(&paths, "%s%s", n_paths ? "," : "", p);
                if (r >= 0 && n_paths)
                        r = buf_append_byte(&map, ';');
                /* An entry without fields (an envFrom whose keys were not known) takes every
                 * field of the path: an empty group. */
                if (r >= 0 && !all && g.len) {
                        r = buf_append(&map, g.data, g.len);
                        any_map = true;
                }
                n_paths++;
        }
        if (r < 0)
                return r == -E2BIG ? say(reason, reason_size, "the annotations are too long") : r;

        struct injection_secret *specs = NULL;
        size_t n = 0;
        struct injection_error e = {};
        char msg[INJECTION_REASON_MAX + 64];
        r = injection_parse_secret_paths(buf_cstr(&paths), &specs, &n, &e);
        if (r >= 0 && any_map)
                r = injection_parse_env_map(buf_cstr(&map), specs, n, &e);
        injection_secrets_free(specs, n);
        if (r == -EINVAL)
                return say(reason, reason_size, "%s",
                           injection_error_format(&e, true, msg, sizeof(msg)));
        if (r < 0)
                return r;

        _cleanup_free_ char *ps = strdup(buf_cstr(&paths));
        _cleanup_free_ char *ms = strdup(any_map ? buf_cstr(&map) : "");
        if (!ps || !ms)
                return -ENOMEM;
        *ret_paths = TAKE_PTR(ps);
        *ret_env_map = TAKE_PTR(ms);
        return 0;
}

/* --- the patch ------------------------------------------------------------------------------ */

struct lookup {
        const char *const *names;
        const char *const *values;
        size_t n;
};

static const char *lookup_get(const char *name, void *userdata) {
        const struct lookup *l = userdata;
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->names[i], name) == 0)
                        return l->values[i];
        return NULL;
}

/* The webhook's own check of the annotations it will read (injection_settings_read()). */
static int check_settings(const char *addr, const char *role, const char *paths, const char *map,
                          char *reason, size_t reason_size) {
        const char *names[] = {injection_variables[INJECTION_ROW_VAULT_ADDR].name,
                               injection_variables[INJECTION_ROW_AUTH_ROLE].name,
                               injection_variables[INJECTION_ROW_SECRET_PATHS].name,
                               injection_variables[INJECTION_ROW_ENV_MAP].name};
        const char *values[] = {addr, role, paths, map && *map ? map : NULL};
        struct lookup l = {names, values, ELEMENTSOF(names)};
        struct injection_settings st;
        struct injection_error e = {};
        char msg[INJECTION_REASON_MAX + 64];
        int r = injection_settings_read(lookup_get, &l, &st, &e);
        if (r == -EINVAL)
                return say(reason, reason_size, "%s",
                           injection_error_format(&e, true, msg, sizeof(msg)));
        if (r < 0)
                return r;
        injection_settings_done(&st);
        return 0;
}

/* A JSON pointer token: '~' -> "~0", '/' -> "~1". */
static int append_token(struct buf *b, const char *s) {
        int r = 0;
        for (; *s && r >= 0; s++)
                r = *s == '~'   ? buf_append_str(b, "~0")
                    : *s == '/' ? buf_append_str(b, "~1")
                                : buf_append_byte(b, (uint8_t) *s);
        return r;
}

struct ops {
        struct json_doc *doc;
        struct json_value *array;
        /* The record (PROTECT_ROLLBACK_ANNOTATION): the undo of the pod spec's changes, then of
         * the template metadata's, in the order they are applied. */
        struct json_value *undo_spec, *undo_meta;
};

static int op(struct ops *o, const char *name, const char *path, const char *svalue,
              const struct json_value *value, struct json_value **ret) {
        struct json_value *x;
        int r = json_add_object(o->doc, o->array, NULL, &x);
        if (r >= 0)
                r = json_add_string(o->doc, x, "op", name);
        if (r >= 0)
                r = json_add_string(o->doc, x, "path", path);
        if (r >= 0 && svalue)
                r = json_add_string(o->doc, x, "value", svalue);
        if (r >= 0 && value)
                r = json_add_copy(o->doc, x, "value", value);
        if (r >= 0 && ret)
                *ret = x;
        return r;
}

/* Sets map member key under base ("/spec/template/metadata/annotations"), which exists, and
 * records its undo: the earlier value put back, or the member removed. before: the map as read,
 * NULL when the patch creates it (its undo removes the whole map). */
static int op_set(struct ops *o, const char *base, const struct json_value *before, const char *key,
                  const char *value) {
        _cleanup_buf_ struct buf p = BUF_INIT(1024, 0);
        int r = buf_printf(&p, "%s/", base);
        if (r >= 0)
                r = append_token(&p, key);
        if (r >= 0)
                r = op(o, "add", buf_cstr(&p), value, NULL, NULL);
        if (r < 0 || !before)
                return r;
        const struct json_value *old = json_get(before, key);
        struct ops u = {.doc = o->doc, .array = o->undo_meta};
        return old ? op(&u, "replace", buf_cstr(&p), NULL, old, NULL)
                   : op(&u, "remove", buf_cstr(&p), NULL, NULL, NULL);
}

/* The plan entry that maps env entry (name <- secretKeyRef secret/key), if any. */
static bool env_mapped(const struct plan_workload *w, const char *name, const char *secret,
                       const char *key) {
        for (size_t i = 0; i < w->n_secrets; i++) {
                const struct plan_secret *x = &w->secrets[i];
                if (strncmp(x->source, "secretKeyRef:", 13) != 0 ||
                    strcmp(x->source + 13, secret) != 0)
                        continue;
                for (size_t f = 0; f < x->n_fields; f++)
                        if (strcmp(x->fields[f].field, key) == 0 &&
                            strcmp(x->fields[f].env, name) == 0)
                                return true;
        }
        return false;
}

static bool env_from_listed(const struct plan_workload *w, const char *secret, const char *prefix) {
        for (size_t i = 0; i < w->n_secrets; i++) {
                const char *s = w->secrets[i].source;
                size_t n = strlen(secret);
                if (strncmp(s, "envFrom:", 8) != 0 || strncmp(s + 8, secret, n) != 0)
                        continue;
                const char *rest = s + 8 + n;
                if (*prefix ? strncmp(rest, ":prefix=", 8) == 0 && strcmp(rest + 8, prefix) == 0
                            : *rest == '\0')
                        return true;
        }
        return false;
}

static bool ref_hit(const struct plan_workload *w, bool env, const struct json_value *e) {
        const char *name = NULL, *secret = NULL, *key = NULL, *prefix = "";
        if (env) {
                const struct json_value *ref = json_get_path(e, "valueFrom.secretKeyRef");
                return ref && json_get_string(e, "name", &name) == 0 &&
                       json_get_string(ref, "name", &secret) == 0 &&
                       json_get_string(ref, "key", &key) == 0 && env_mapped(w, name, secret, key);
        }
        const struct json_value *ref = json_get(e, "secretRef");
        (void) json_get_string(e, "prefix", &prefix);
        return ref && json_get_string(ref, "name", &secret) == 0 &&
               env_from_listed(w, secret, prefix);
}

/* The path of a container's list (k < 0) or of its entry k. */
static int ref_path(char *buf, size_t size, const char *list, size_t c, const char *field,
                    ssize_t k) {
        int l = k < 0 ? snprintf(buf, size, "/spec/template/spec/%s/%zu/%s", list, c, field)
                      : snprintf(buf, size, "/spec/template/spec/%s/%zu/%s/%zd", list, c, field, k);
        return l < 0 || (size_t) l >= size ? -E2BIG : 0;
}

/* The removals of one container (index c of list), highest index first so that each index
 * still names the entry it tested; their undo adds the entries back lowest index first, or the
 * whole list when the patch empties it (the API server then stores no list at all). */
static int remove_refs(struct ops *o, const struct plan_workload *w, const char *list, size_t c,
                       const struct json_value *container, size_t *removed) {
        static const char *const fields[] = {"env", "envFrom"};
        struct ops u = {.doc = o->doc, .array = o->undo_spec};
        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                const struct json_value *arr = json_get(container, fields[f]);
                size_t n = json_count(arr), hits = 0;
                char path[256];
                int r;
                for (size_t k = n; k-- > 0;) {
                        const struct json_value *e = json_array_at(arr, k);
                        if (!ref_hit(w, f == 0, e))
                                continue;
                        r = ref_path(path, sizeof(path), list, c, fields[f], (ssize_t) k);
                        if (r >= 0)
                                r = op(o, "test", path, NULL, e, NULL);
                        if (r >= 0)
                                r = op(o, "remove", path, NULL, NULL, NULL);
                        if (r < 0)
                                return r;
                        hits++;
                }
                *removed += hits;
                if (hits == n && n > 0) {
                        r = ref_path(path, sizeof(path), list, c, fields[f], -1);
                        if (r >= 0)
                                r = op(&u, "add", path, NULL, arr, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t k = 0; hits && k < n; k++) {
                        const struct json_value *e = json_array_at(arr, k);
                        if (!ref_hit(w, f == 0, e))
                                continue;
                        r = ref_path(path, sizeof(path), list, c, fields[f], (ssize_t) k);
                        if (r >= 0)
                                r = op(&u, "add", path, NULL, e, NULL);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The record (see PROTECT_ROLLBACK_ANNOTATION) of the undo operations o collected, as text. */
static int record_text(struct ops *o, int64_t generation, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *rec = NULL;
        struct json_value *ops;
        int r = json_doc_new(0, 4u * PROTECT_MAX_ROLLBACK + 65536u, &rec);
        if (r >= 0)
                r = json_add_int64(rec, json_doc_root(rec), "generation", generation);
        if (r >= 0)
                r = json_add_array(rec, json_doc_root(rec), "ops", &ops);
        JSON_FOREACH(x, o->undo_spec) {
                if (r >= 0)
                        r = json_add_copy(rec, ops, NULL, x);
        }
        JSON_FOREACH(x, o->undo_meta) {
                if (r >= 0)
                        r = json_add_copy(rec, ops, NULL, x);
        }
        if (r >= 0)
                r = json_print(json_doc_root(rec), out);
        return r;
}

int protect_build_patch(const struct json_value *obj, const struct plan_workload *w,
                        const struct protect_settings *s, struct buf *out, size_t *ret_removed,
                        char *reason, size_t reason_size) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_free_ char *paths = NULL, *map = NULL;
        _cleanup_buf_ struct buf rec = BUF_INIT(PROTECT_MAX_ROLLBACK, 0);
        const struct json_value *tmpl = json_get_path(obj, "spec.template");
        const struct json_value *tmeta = json_get(tmpl, "metadata");
        const struct json_value *spec = json_get(tmpl, "spec");
        const struct json_value *meta = json_get(obj, "metadata");
        const char *rv = NULL;
        int64_t generation = 0;
        size_t removed = 0;
        int r;

        if (!tmpl || !spec)
                return say(reason, reason_size, "the object has no pod template");
        if (json_get_string(meta, "resourceVersion", &rv) < 0 || !*rv)
                return say(reason, reason_size, "the object has no resourceVersion");
        if (json_get_int64(meta, "generation", &generation) < 0 || generation < 1 ||
            generation >= INT64_C(1) << 52)
                return say(reason, reason_size, "the object has no generation");
        if (!s->vault_role || !*s->vault_role)
                return say(reason, reason_size, "no vault role");
        r = protect_annotations(w, &paths, &map, reason, reason_size);
        if (r < 0)
                return r;
        r = check_settings(s->vault_address, s->vault_role, paths, map, reason, reason_size);
        if (r < 0)
                return r;

        r = json_doc_new(0, 16u * 1024u * 1024u, &doc);
        if (r < 0)
                return r;
        struct ops o = {.doc = doc};
        struct json_value *root = json_doc_root(doc);
        r = json_add_array(doc, root, "ops", &o.array);
        if (r >= 0)
                r = json_add_array(doc, root, "undo-spec", &o.undo_spec);
        if (r >= 0)
                r = json_add_array(doc, root, "undo-meta", &o.undo_meta);
        if (r >= 0)
                r = op(&o, "test", "/metadata/resourceVersion", rv, NULL, NULL);

        struct json_value *x;
        if (r >= 0 && !tmeta) {
                r = op(&o, "add", "/spec/template/metadata", NULL, NULL, &x);
                if (r >= 0)
                        r = json_add_object(doc, x, "value", NULL);
        }
        static const char *const maps[] = {"labels", "annotations"};
        for (size_t m = 0; m < ELEMENTSOF(maps) && r >= 0; m++)
                if (!json_get(tmeta, maps[m])) {
                        char p[64];
                        (void) snprintf(p, sizeof(p), "/spec/template/metadata/%s", maps[m]);
                        r = op(&o, "add", p, NULL, NULL, &x);
                        if (r >= 0)
                                r = json_add_object(doc, x, "value", NULL);
                }
        const char *lb = "/spec/template/metadata/labels",
                   *an = "/spec/template/metadata/annotations";
        const struct json_value *labels = json_get(tmeta, "labels"),
                                *anns = json_get(tmeta, "annotations");
        if (r >= 0)
                r = op_set(&o, lb, labels, ANN_INJECT, "true");
        if (r >= 0)
                r = op_set(&o, an, anns, ANN_INJECT, "true");
        if (r >= 0 && s->vault_address)
                r = op_set(&o, an, anns, injection_variables[INJECTION_ROW_VAULT_ADDR].annotation,
                           s->vault_address);
        if (r >= 0)
                r = op_set(&o, an, anns, injection_variables[INJECTION_ROW_AUTH_ROLE].annotation,
                           s->vault_role);
        if (r >= 0)
                r = op_set(&o, an, anns, injection_variables[INJECTION_ROW_SECRET_PATHS].annotation,
                           paths);
        const struct json_value *old_map =
                json_get(anns, injection_variables[INJECTION_ROW_ENV_MAP].annotation);
        if (r >= 0 && *map)
                r = op_set(&o, an, anns, injection_variables[INJECTION_ROW_ENV_MAP].annotation,
                           map);
        else if (r >= 0 && old_map) {
                /* A stale env-map of an earlier attempt would remap the new paths. */
                _cleanup_buf_ struct buf p = BUF_INIT(1024, 0);
                struct ops u = {.doc = doc, .array = o.undo_meta};
                r = buf_printf(&p, "%s/", an);
                if (r >= 0)
                        r = append_token(&p, injection_variables[INJECTION_ROW_ENV_MAP].annotation);
                if (r >= 0)
                        r = op(&o, "remove", buf_cstr(&p), NULL, NULL, NULL);
                if (r >= 0)
                        r = op(&u, "add", buf_cstr(&p), NULL, old_map, NULL);
        }
        /* The maps and the metadata the patch created go last, whole. */
        struct ops u = {.doc = doc, .array = o.undo_meta};
        if (r >= 0 && !tmeta)
                r = op(&u, "remove", "/spec/template/metadata", NULL, NULL, NULL);
        for (size_t m = 0; m < ELEMENTSOF(maps) && r >= 0 && tmeta; m++)
                if (!json_get(tmeta, maps[m])) {
                        char p[64];
                        (void) snprintf(p, sizeof(p), "/spec/template/metadata/%s", maps[m]);
                        r = op(&u, "remove", p, NULL, NULL, NULL);
                }

        static const char *const lists[] = {"initContainers", "containers"};
        for (size_t l = 0; l < ELEMENTSOF(lists) && r >= 0; l++) {
                size_t c = 0;
                JSON_FOREACH(container, json_get(spec, lists[l])) {
                        r = remove_refs(&o, w, lists[l], c++, container, &removed);
                        if (r < 0)
                                break;
                }
        }

        /* The record, in the same patch: on the workload's metadata, which starts no rollout. */
        if (r >= 0) {
                r = record_text(&o, generation + 1, &rec);
                if (r == -E2BIG)
                        return say(reason, reason_size,
                                   "the record of its rollback would be over %u bytes",
                                   PROTECT_MAX_ROLLBACK);
        }
        if (r >= 0 && !json_get(meta, "annotations")) {
                r = op(&o, "add", "/metadata/annotations", NULL, NULL, &x);
                if (r >= 0)
                        r = json_add_object(doc, x, "value", NULL);
        }
        if (r >= 0)
                r = op_set(&o, "/metadata/annotations", NULL, PROTECT_ROLLBACK_ANNOTATION,
                           buf_cstr(&rec));
        if (r >= 0)
                r = json_print(o.array, out);
        if (r == -E2BIG)
                return say(reason, reason_size, "the patch is too large");
        if (r < 0)
                return r;
        if (ret_removed)
                *ret_removed = removed;
        return 0;
}

static bool rollback_path_ok(const char *path) {
        return strncmp(path, "/spec/template/", 15) == 0 && path[15] != '\0';
}

int protect_build_rollback(const struct json_value *obj, struct buf *out, char *reason,
                           size_t reason_size) {
        _cleanup_json_doc_ struct json_doc *rec = NULL, *doc = NULL;
        const char *text = NULL;
        int64_t generation = 0;
        struct json_value *x;

        if (json_get_string(json_get_path(obj, "metadata.annotations"), PROTECT_ROLLBACK_ANNOTATION,
                            &text) < 0)
                return -ENOENT;
        struct json_limits lim = {
                .max_input = PROTECT_MAX_ROLLBACK, .max_depth = 64, .max_nodes = 20000};
        int r = json_parse(text, strlen(text), 0, &lim, &rec);
        if (r < 0)
                return say(reason, reason_size, "its rollback record is not JSON");
        const struct json_value *ops = json_get(json_doc_root(rec), "ops");
        if (json_get_int64(json_doc_root(rec), "generation", &generation) < 0 || generation < 1 ||
            json_type(ops) != JSON_ARRAY)
                return say(reason, reason_size,
                           "its rollback record has no generation or operations");
        JSON_FOREACH(o, ops) {
                const char *name = NULL, *path = NULL;
                if (json_get_string(o, "op", &name) < 0 || json_get_string(o, "path", &path) < 0 ||
                    !rollback_path_ok(path) ||
                    !(strcmp(name, "remove") == 0 ||
                      ((strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) &&
                       json_get(o, "value"))))
                        return say(reason, reason_size,
                                   "its rollback record holds an operation other than add, "
                                   "remove or replace within /spec/template/");
        }

        r = json_doc_new(0, 4u * PROTECT_MAX_ROLLBACK + 65536u, &doc);
        if (r < 0)
                return r;
        struct ops o = {.doc = doc};
        r = json_add_array(doc, json_doc_root(doc), "ops", &o.array);
        if (r >= 0)
                r = op(&o, "test", "/metadata/generation", NULL, NULL, &x);
        if (r >= 0)
                r = json_add_int64(doc, x, "value", generation);
        JSON_FOREACH(y, ops) {
                if (r >= 0)
                        r = json_add_copy(doc, o.array, NULL, y);
        }
        if (r >= 0)
                r = op(&o, "remove", "/metadata/annotations/cloudtaser.io~1protect-rollback", NULL,
                       NULL, NULL);
        if (r >= 0)
                r = json_print(o.array, out);
        return r;
}

bool protect_already_patched(const struct json_value *obj) {
        const char *v = NULL;
        return json_get_string(json_get_path(obj, "spec.template.metadata.annotations"), ANN_INJECT,
                               &v) == 0 &&
               strcmp(v, "true") == 0;
}

/* --- the rollout ---------------------------------------------------------------------------- */

static int64_t num(const struct json_value *o, const char *key, int64_t dflt) {
        int64_t v;
        return json_get_int64(o, key, &v) == 0 ? v : dflt;
}

enum protect_rollout protect_rollout_judge(enum plan_kind k, const struct json_value *obj,
                                           char *summary, size_t summary_size) {
        const struct json_value *st = json_get(obj, "status");
        int64_t gen = num(json_get(obj, "metadata"), "generation", 0);
        int64_t observed = num(st, "observedGeneration", 0);

        if (summary && summary_size)
                summary[0] = '\0';
        if (observed < gen) {
                (void) snprintf(summary, summary_size,
                                "the controller has not seen the change yet (generation %" PRId64
                                ", observed %" PRId64 ")",
                                gen, observed);
                return PROTECT_ROLLOUT_PROGRESSING;
        }
        if (k == PLAN_DAEMONSET) {
                int64_t want = num(st, "desiredNumberScheduled", 0),
                        upd = num(st, "updatedNumberScheduled", 0),
                        avail = num(st, "numberAvailable", 0),
                        mis = num(st, "numberMisscheduled", 0),
                        cur = num(st, "currentNumberScheduled", 0);
                (void) snprintf(summary, summary_size,
                                "updated %" PRId64 "/%" PRId64 ", available %" PRId64 "/%" PRId64,
                                upd, want, avail, want);
                return want == 0 || (upd == want && avail == want && cur == want && mis == 0)
                               ? PROTECT_ROLLOUT_DONE
                               : PROTECT_ROLLOUT_PROGRESSING;
        }
        int64_t want = num(json_get(obj, "spec"), "replicas", 1), have = num(st, "replicas", 0),
                upd = num(st, "updatedReplicas", 0), avail = num(st, "availableReplicas", 0);
        if (k == PLAN_DEPLOYMENT)
                JSON_FOREACH(c, json_get(st, "conditions")) {
                        const char *type = NULL, *reason = NULL;
                        if (json_get_string(c, "type", &type) == 0 &&
                            strcmp(type, "Progressing") == 0 &&
                            json_get_string(c, "reason", &reason) == 0 &&
                            strcmp(reason, "ProgressDeadlineExceeded") == 0) {
                                (void) snprintf(summary, summary_size,
                                                "the Deployment's progress deadline passed "
                                                "(updated %" PRId64 "/%" PRId64
                                                ", available %" PRId64 "/%" PRId64 ")",
                                                upd, want, avail, want);
                                return PROTECT_ROLLOUT_FAILED;
                        }
                }
        (void) snprintf(summary, summary_size,
                        "updated %" PRId64 "/%" PRId64 ", available %" PRId64 "/%" PRId64
                        ", pods %" PRId64,
                        upd, want, avail, want, have);
        if (want == 0)
                return have == 0 ? PROTECT_ROLLOUT_DONE : PROTECT_ROLLOUT_PROGRESSING;
        return have == want && upd == want && avail == want ? PROTECT_ROLLOUT_DONE
                                                            : PROTECT_ROLLOUT_PROGRESSING;
}

/* --- the command ---------------------------------------------------------------------------- */

static const char *const resources[_PLAN_KIND_MAX] = {"deployments", "statefulsets", "daemonsets"};

struct run {
        struct kube_client *k;
        struct plan *p;
        const char *plan_path;
        const char *vault_address, *vault_role;
        uint64_t timeout_ms;
        FILE *tty;     /* interactive: the terminal asked; NULL with --yes */
        FILE *show;    /* where the mapping goes (the tty, stderr when a terminal) or NULL */
        bool progress; /* stderr is a terminal */
        size_t migrated, skipped, failed;
};

static uint64_t now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int object_path(const struct plan_tenant *t, const struct plan_workload *w, char *buf,
                       size_t size) {
        int n = snprintf(buf, size, "/apis/apps/v1/namespaces/%s/%s/%s", t->namespace_,
                         resources[w->kind], w->name);
        return n < 0 || (size_t) n >= size ? -E2BIG : 0;
}

static void show_mapping(FILE *f, const struct plan_tenant *t, const struct plan_workload *w) {
        fprintf(f, "%s %s/%s (replicas %" PRId64 "):\n", plan_kind_to_string(w->kind),
                t->namespace_, w->name, w->replicas);
        for (size_t i = 0; i < w->n_secrets; i++) {
                const struct plan_secret *x = &w->secrets[i];
                fprintf(f, "  %s -> %s\n", x->source, x->vault_path);
                if (x->n_fields == 0)
                        fprintf(f, "      (every field, upper-cased)\n");
                for (size_t k = 0; k < x->n_fields; k++)
                        fprintf(f, "      %s -> $%s\n", x->fields[k].field, x->fields[k].env);
        }
        if (w->note)
                fprintf(f, "  note: %s\n", w->note);
        fflush(f);
}

/* 'y', 'n' or 'q' from the terminal; 'q' at end of input. */
static int ask(FILE *tty) {
        char line[64];
        fputs("migrate it? [y/N/q] ", tty);
        fflush(tty);
        if (!fgets(line, sizeof(line), tty))
                return 'q';
        char c = line[0];
        return c == 'y' || c == 'Y' ? 'y' : c == 'q' || c == 'Q' ? 'q' : 'n';
}

static int record(struct run *u, size_t ti, size_t wi, enum plan_status st, const char *reason) {
        const struct plan_tenant *t = &u->p->tenants[ti];
        const struct plan_workload *w = &t->workloads[wi];
        char kind[16], ns[256], name[256];
        (void) snprintf(kind, sizeof(kind), "%s", plan_kind_to_string(w->kind));
        (void) snprintf(ns, sizeof(ns), "%s", t->namespace_);
        (void) snprintf(name, sizeof(name), "%s", w->name);
        int r = plan_set_status(u->p, u->plan_path, ti, wi, st, reason);
        if (r < 0)
                return log_error_errno(r, "Failed to record %s %s/%s as %s in %s: %m", kind, ns,
                                       name, plan_status_to_string(st), u->plan_path);
        printf("%s %s/%s: %s%s%s\n", kind, ns, name, plan_status_to_string(st), reason ? ": " : "",
               reason ? reason : "");
        fflush(stdout);
        if (st == PLAN_MIGRATED)
                u->migrated++;
        else if (st == PLAN_SKIPPED)
                u->skipped++;
        else if (st == PLAN_FAILED)
                u->failed++;
        return 0;
}

/* Waits for the rollout: 1 done, 0 not within the timeout or the controller gave up (summary
 * says where it stood), -errno. */
static int wait_rollout(struct run *u, const char *path, enum plan_kind kind, const char *what,
                        char *summary, size_t size) {
        uint64_t deadline = now_ms() + u->timeout_ms;
        for (;;) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                struct kube_error e = {};
                int r = kube_get(u->k, path, &d, &e);
                if (r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -ECONNRESET) {
                        (void) snprintf(summary, size, "the API server did not answer: %.200s",
                                        e.message);
                } else if (r < 0) {
                        (void) snprintf(summary, size, "reading it failed: %.200s", e.message);
                        return r;
                } else {
                        enum protect_rollout j =
                                protect_rollout_judge(kind, json_doc_root(d), summary, size);
                        if (j == PROTECT_ROLLOUT_DONE) {
                                if (u->progress)
                                        fprintf(stderr, "\r\033[K");
                                return 1;
                        }
                        if (j == PROTECT_ROLLOUT_FAILED)
                                return 0;
                }
                if (u->progress)
                        fprintf(stderr, "\r\033[Kprotect: waiting for %s: %s", what, summary);
                if (now_ms() >= deadline) {
                        if (u->progress)
                                fprintf(stderr, "\r\033[K");
                        return 0;
                }
                (void) usleep(1000u * 1000u);
        }
}

static int protect_one(struct run *u, size_t ti, size_t wi) {
        const struct plan_tenant *t = &u->p->tenants[ti];
        const struct plan_workload *w = &t->workloads[wi];
        char path[1024], what[600], role[256], reason[2048], summary[640];
        int r;

        (void) snprintf(what, sizeof(what), "%s %s/%s", plan_kind_to_string(w->kind), t->namespace_,
                        w->name);
        r = object_path(t, w, path, sizeof(path));
        if (r < 0)
                return record(u, ti, wi, PLAN_FAILED, "its API path is too long");
        if (u->vault_role)
                (void) snprintf(role, sizeof(role), "%s", u->vault_role);
        else if (source_tenant_name(t, role, sizeof(role)) < 0)
                return record(u, ti, wi, PLAN_FAILED, "no vault role for its namespace");

        if (u->show)
                show_mapping(u->show, t, w);
        if (u->tty) {
                int a = ask(u->tty);
                if (a == 'q')
                        return 1;
                if (a == 'n')
                        return record(u, ti, wi, PLAN_SKIPPED, "declined at the prompt");
        }

        for (unsigned attempt = 0;; attempt++) {
                _cleanup_json_doc_ struct json_doc *cur = NULL, *after = NULL;
                struct kube_error e = {};
                r = kube_get(u->k, path, &cur, &e);
                if (r == -ENOENT)
                        return record(u, ti, wi, PLAN_FAILED, "no such workload in the cluster");
                if (r < 0) {
                        log_error_errno(r, "Failed to read %s: %s (%m)", what, e.message);
                        return r; /* still pending: the next run tries again */
                }
                const struct json_value *obj = json_doc_root(cur);
                bool resumed = protect_already_patched(obj);
                if (!resumed) {
                        _cleanup_buf_ struct buf patch = BUF_INIT(16u * 1024u * 1024u, 0);
                        struct protect_settings s = {.vault_address = u->vault_address,
                                                     .vault_role = role};
                        size_t removed = 0;
                        reason[0] = '\0';
                        r = protect_build_patch(obj, w, &s, &patch, &removed, reason,
                                                sizeof(reason));
                        if (r == -EINVAL)
                                return record(u, ti, wi, PLAN_FAILED, reason);
                        if (r < 0)
                                return log_error_errno(r, "Failed to build the patch of %s: %m",
                                                       what);
                        e = (struct kube_error){};
                        r = kube_patch(u->k, path, KUBE_PATCH_JSON, &patch, &after, &e);
                        if ((r == -EINVAL || r == -ESTALE || r == -EPROTO) && attempt == 0 &&
                            e.code != 0) {
                                /* A test failed: the workload changed since it was read. */
                                log_warning("%s changed while it was patched (%s): reading it "
                                            "again",
                                            what, e.message);
                                continue;
                        }
                        if (r < 0) {
                                (void) snprintf(reason, sizeof(reason), "the patch was refused: %s",
                                                e.message);
                                return record(u, ti, wi, PLAN_FAILED, reason);
                        }
                        obj = json_doc_root(after); /* with the rollback record */
                        if (u->progress)
                                fprintf(stderr,
                                        "protect: patched %s (%zu Secret reference%s "
                                        "removed)\n",
                                        what, removed, removed == 1 ? "" : "s");
                }
                r = wait_rollout(u, path, w->kind, what, summary, sizeof(summary));
                if (r < 0) {
                        log_error_errno(r, "Failed to follow the rollout of %s: %s (%m)", what,
                                        summary);
                        return r;
                }
                /* The record stays on a migrated workload: removing it would be a change
                 * of its own (a Deployment's generation counts its annotations), and it
                 * applies only until the workload next changes (its generation test). */
                if (r > 0)
                        return record(u, ti, wi, PLAN_MIGRATED, NULL);
                _cleanup_buf_ struct buf back = BUF_INIT(16u * 1024u * 1024u, 0);
                char why[512] = "";
                r = protect_build_rollback(obj, &back, why, sizeof(why));
                if (r == -ENOENT) {
                        (void) snprintf(reason, sizeof(reason),
                                        "the new pods did not become ready (%s); not rolled "
                                        "back: it carries no rollback record (patched by hand "
                                        "or by an earlier version)",
                                        summary);
                        return record(u, ti, wi, PLAN_FAILED, reason);
                }
                e = (struct kube_error){};
                if (r >= 0)
                        r = kube_patch(u->k, path, KUBE_PATCH_JSON, &back, NULL, &e);
                if (r < 0)
                        (void) snprintf(reason, sizeof(reason),
                                        "the new pods did not become ready (%s); the rollback "
                                        "failed: %.200s",
                                        summary,
                                        why[0]         ? why
                                        : e.message[0] ? e.message
                                                       : strerror(-r));
                else
                        (void) snprintf(reason, sizeof(reason),
                                        "the new pods did not become ready (%s): rolled back%s",
                                        summary,
                                        resumed ? " (from the record of an interrupted run)" : "");
                return record(u, ti, wi, PLAN_FAILED, reason);
        }
}

int cli_target_protect(int argc, char **argv) {
        static const struct option opts[] = {
                {"plan", required_argument, NULL, 'p'},
                {"interactive", no_argument, NULL, 'i'},
                {"yes", no_argument, NULL, 'y'},
                {"vault-address", required_argument, NULL, 'a'},
                {"vault-role", required_argument, NULL, 'r'},
                {"kubeconfig", required_argument, NULL, 'k'},
                {"context", required_argument, NULL, 'c'},
                {"timeout", required_argument, NULL, 't'},
                {},
        };
        const char *plan_path = NULL, *kubeconfig = NULL, *context = NULL;
        struct run u = {.timeout_ms = PROTECT_DEFAULT_TIMEOUT_MS};
        bool interactive = false, yes = false;
        int o, r;

        optind = 1;
        opterr = 0;
        while ((o = getopt_long(argc, argv, "+", opts, NULL)) >= 0) {
                switch (o) {
                case 'p':
                        plan_path = optarg;
                        break;
                case 'i':
                        interactive = true;
                        break;
                case 'y':
                        yes = true;
                        break;
                case 'a':
                        u.vault_address = optarg;
                        break;
                case 'r':
                        u.vault_role = optarg;
                        break;
                case 'k':
                        kubeconfig = optarg;
                        break;
                case 'c':
                        context = optarg;
                        break;
                case 't':
                        if (injection_parse_duration_ms(optarg, &u.timeout_ms) < 0 ||
                            u.timeout_ms == 0) {
                                fprintf(stderr,
                                        "cloudtaser target protect: --timeout '%s' is "
                                        "not a duration (90, 30s, 5m)\n",
                                        optarg);
                                return EX_USAGE;
                        }
                        break;
                default:
                        return cli_flag_error("target protect", argv);
                }
        }
        if (cli_no_arguments("target protect", argc, argv) != EX_OK)
                return EX_USAGE;
        if (!plan_path) {
                fprintf(stderr, "cloudtaser target protect: --plan FILE is required\n");
                return EX_USAGE;
        }
        if (interactive && yes) {
                fprintf(stderr, "cloudtaser target protect: --interactive and --yes exclude "
                                "each other\n");
                return EX_USAGE;
        }
        if (!interactive && !yes) {
                if (!isatty(STDIN_FILENO)) {
                        fprintf(stderr, "cloudtaser target protect: stdin is not a terminal: "
                                        "give --yes (or --interactive)\n");
                        return EX_USAGE;
                }
                interactive = true;
        }

        struct plan_error pe = {};
        r = plan_load(plan_path, &u.p, &pe);
        if (r == -EBADMSG) {
                fprintf(stderr, "%s:%u:%u: %s\n", plan_path, pe.line, pe.column, pe.message);
                return EX_DATAERR;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read the plan %s: %m", plan_path);
                return r == -E2BIG ? EX_DATAERR : EX_NOINPUT;
        }
        u.plan_path = plan_path;

        if (interactive) {
                int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
                u.tty = fd >= 0 ? fdopen(fd, "r+") : NULL;
                if (!u.tty) {
                        if (fd >= 0)
                                close(fd);
                        log_error_errno(-errno, "Failed to open the terminal for the questions: "
                                                "%m");
                        plan_free(u.p);
                        return EX_USAGE;
                }
                u.show = u.tty;
        } else if (isatty(STDERR_FILENO))
                u.show = stderr;
        u.progress = isatty(STDERR_FILENO);

        struct kube_load_options lo = {.paths = kubeconfig, .context = context};
        struct kube_config *kc = NULL;
        struct kube_error ke = {};
        int ret = EX_OK;
        r = kube_config_load(&lo, &kc, &ke);
        if (r < 0) {
                log_error_errno(r, "Failed to read the kubeconfig: %s (%m)", ke.message);
                ret = EX_CONFIG;
                goto out;
        }
        r = kube_client_new(&kc, NULL, &u.k);
        kube_config_free(kc);
        if (r < 0) {
                log_error_errno(r, "Failed to create the Kubernetes client: %m");
                ret = EX_SOFTWARE;
                goto out;
        }

        bool quit = false;
        for (size_t ti = 0; ti < u.p->n_tenants && !quit; ti++)
                for (size_t wi = 0; wi < u.p->tenants[ti].n_workloads && !quit; wi++) {
                        if (u.p->tenants[ti].workloads[wi].status != PLAN_PENDING)
                                continue;
                        r = protect_one(&u, ti, wi);
                        if (r > 0)
                                quit = true;
                        else if (r < 0) {
                                ret = r == -ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
                                goto out;
                        }
                }
        printf("protect: %zu migrated, %zu skipped, %zu failed%s\n", u.migrated, u.skipped,
               u.failed, quit ? " (stopped at the prompt)" : "");
        if (u.failed)
                ret = EX_UNAVAILABLE;
out:
        if (u.tty)
                fclose(u.tty);
        kube_client_free(u.k);
        plan_free(u.p);
        return ret;
}
