/* SPDX-License-Identifier: Apache-2.0 */
/* cli/plan: the migration plan file (see plan.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/plan.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/macro.h"
#include "common/yaml.h"

#define PLAN_MAX_NODES 4000000u
#define PLAN_MAX_DEPTH 16u

static const char *const kinds[_PLAN_KIND_MAX] = {
        [PLAN_DEPLOYMENT] = "Deployment",
        [PLAN_STATEFULSET] = "StatefulSet",
        [PLAN_DAEMONSET] = "DaemonSet",
};
static const char *const statuses[_PLAN_STATUS_MAX] = {
        [PLAN_PENDING] = "pending",
        [PLAN_MIGRATED] = "migrated",
        [PLAN_SKIPPED] = "skipped",
        [PLAN_FAILED] = "failed",
};

const char *plan_kind_to_string(enum plan_kind k) {
        return (unsigned) k < _PLAN_KIND_MAX ? kinds[k] : NULL;
}
int plan_kind_from_string(const char *s, enum plan_kind *ret) {
        for (unsigned i = 0; s && i < _PLAN_KIND_MAX; i++)
                if (strcmp(s, kinds[i]) == 0) {
                        *ret = (enum plan_kind) i;
                        return 0;
                }
        return -EINVAL;
}
const char *plan_status_to_string(enum plan_status s) {
        return (unsigned) s < _PLAN_STATUS_MAX ? statuses[s] : NULL;
}
int plan_status_from_string(const char *s, enum plan_status *ret) {
        for (unsigned i = 0; s && i < _PLAN_STATUS_MAX; i++)
                if (strcmp(s, statuses[i]) == 0) {
                        *ret = (enum plan_status) i;
                        return 0;
                }
        return -EINVAL;
}

/* --- freeing and comparing ------------------------------------------------------------------ */

static void secret_done(struct plan_secret *s) {
        for (size_t i = 0; i < s->n_fields; i++) {
                free(s->fields[i].field);
                free(s->fields[i].env);
        }
        free(s->fields);
        free(s->source);
        free(s->vault_path);
}

void plan_workload_done(struct plan_workload *w) {
        for (size_t i = 0; i < w->n_secrets; i++)
                secret_done(&w->secrets[i]);
        free(w->secrets);
        free(w->name);
        free(w->service_account);
        free(w->reason);
        free(w->note);
        *w = (struct plan_workload){};
}

struct plan *plan_free(struct plan *p) {
        if (!p)
                return NULL;
        for (size_t t = 0; t < p->n_tenants; t++) {
                struct plan_tenant *tn = &p->tenants[t];
                for (size_t w = 0; w < tn->n_workloads; w++)
                        plan_workload_done(&tn->workloads[w]);
                free(tn->workloads);
                free(tn->name);
                free(tn->namespace_);
        }
        free(p->tenants);
        free(p->name);
        free(p->cluster);
        free(p->created_at);
        free(p->created_by);
        free(p);
        return NULL;
}

static bool str_eq(const char *a, const char *b) {
        /* An empty optional string is none (plan.h). */
        if (a && !*a)
                a = NULL;
        if (b && !*b)
                b = NULL;
        return a && b ? strcmp(a, b) == 0 : a == b;
}

static bool workload_equal(const struct plan_workload *a, const struct plan_workload *b) {
        if (a->kind != b->kind || !str_eq(a->name, b->name) ||
            !str_eq(a->service_account, b->service_account) || a->replicas != b->replicas ||
            a->status != b->status || !str_eq(a->reason, b->reason) || !str_eq(a->note, b->note) ||
            a->n_secrets != b->n_secrets)
                return false;
        for (size_t i = 0; i < a->n_secrets; i++) {
                const struct plan_secret *x = &a->secrets[i], *y = &b->secrets[i];
                if (!str_eq(x->source, y->source) || !str_eq(x->vault_path, y->vault_path) ||
                    x->n_fields != y->n_fields)
                        return false;
                for (size_t f = 0; f < x->n_fields; f++)
                        if (!str_eq(x->fields[f].field, y->fields[f].field) ||
                            !str_eq(x->fields[f].env, y->fields[f].env))
                                return false;
        }
        return true;
}

bool plan_equal(const struct plan *a, const struct plan *b) {
        if (!a || !b)
                return a == b;
        if (!str_eq(a->name, b->name) || !str_eq(a->cluster, b->cluster) ||
            !str_eq(a->created_at, b->created_at) || !str_eq(a->created_by, b->created_by) ||
            a->n_tenants != b->n_tenants)
                return false;
        for (size_t t = 0; t < a->n_tenants; t++) {
                const struct plan_tenant *x = &a->tenants[t], *y = &b->tenants[t];
                if (!str_eq(x->name, y->name) || !str_eq(x->namespace_, y->namespace_) ||
                    x->n_workloads != y->n_workloads)
                        return false;
                for (size_t w = 0; w < x->n_workloads; w++)
                        if (!workload_equal(&x->workloads[w], &y->workloads[w]))
                                return false;
        }
        return true;
}

/* --- string rules (shared by the reader and the writer) ------------------------------------- */

/* Valid UTF-8 (no overlongs, no surrogates), no C0 control character and no DEL. */
static bool text_ok(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = strlen(s);
        if (n > PLAN_MAX_STRING)
                return false;
        for (size_t i = 0; i < n;) {
                unsigned c = p[i];
                if (c < 0x20 || c == 0x7f)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                unsigned len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
                if (!len || c > 0xf4 || i + len > n)
                        return false;
                uint32_t cp = c & (0x3fu >> (len - 1));
                for (unsigned k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

static bool field_name_ok(const char *s) {
        if (!*s || strlen(s) > 253)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
               strlen(s);
}

static bool env_name_ok(const char *s) {
        return *s && !strchr(s, '=') && text_ok(s);
}

bool plan_vault_path_valid(const char *s) {
        if (!s || !*s || !text_ok(s) || strpbrk(s, "*+{}[]\"'\\# \t"))
                return false;
        for (const char *seg = s;;) {
                const char *slash = strchr(seg, '/');
                size_t n = slash ? (size_t) (slash - seg) : strlen(seg);
                if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && memcmp(seg, "..", 2) == 0))
                        return false;
                if (!slash)
                        return true;
                seg = slash + 1;
        }
}

static bool digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* RFC 3339 date-time: 2026-12-03T11:00:00(.frac)?(Z|+hh:mm|-hh:mm). */
static bool rfc3339_ok(const char *s) {
        size_t n = strlen(s), i = 19;
        if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
            !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
            s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
                return false;
        int mon = (s[5] - '0') * 10 + s[6] - '0', day = (s[8] - '0') * 10 + s[9] - '0',
            h = (s[11] - '0') * 10 + s[12] - '0', mi = (s[14] - '0') * 10 + s[15] - '0',
            sec = (s[17] - '0') * 10 + s[18] - '0';
        if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60)
                return false;
        if (s[i] == '.') {
                size_t f = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == f)
                        return false;
        }
        if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
                return true;
        return i + 6 == n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) &&
               s[i + 3] == ':' && digits(s + i + 4, 2);
}

/* --- reading --------------------------------------------------------------------------------- */

struct reader {
        const char *text;
        const struct yaml_map *map;
        struct plan_error *err;
        char path[192]; /* "tenants[0].workloads[3]" */
};

static int failv(struct reader *rd, const struct json_value *at, bool at_key, int r,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static int failv(struct reader *rd, const struct json_value *at, bool at_key, int r,
                 const char *fmt, va_list ap) {
        if (!rd->err)
                return r;
        const struct yaml_node_info *i = yaml_map_find(rd->map, at);
        *rd->err = (struct plan_error){};
        if (i) {
                rd->err->line = at_key ? i->key.line : i->start.line;
                rd->err->column = at_key ? i->key.column : i->start.column;
        }
        char *m = rd->err->message;
        size_t size = sizeof(rd->err->message), n = strlen(rd->path);
        if (n && n + 2 < size) {
                memcpy(m, rd->path, n);
                memcpy(m + n, ": ", 3);
                n += 2;
        } else
                n = 0;
        (void) vsnprintf(m + n, size - n, fmt, ap);
        for (char *c = rd->err->message; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
                        *c = '?';
        return r;
}

static int fail(struct reader *rd, const struct json_value *at, int r, const char *fmt, ...)
        _printf_(4, 5);
static int fail(struct reader *rd, const struct json_value *at, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        r = failv(rd, at, false, r, fmt, ap);
        va_end(ap);
        return r;
}

static int fail_key(struct reader *rd, const struct json_value *at, int r, const char *fmt, ...)
        _printf_(4, 5);
static int fail_key(struct reader *rd, const struct json_value *at, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        r = failv(rd, at, true, r, fmt, ap);
        va_end(ap);
        return r;
}

/* Appends ".key" or "[i]" to the path for the duration of a nested read; returns the old end. */
static size_t path_push(struct reader *rd, const char *key, size_t index) {
        size_t n = strlen(rd->path);
        if (key)
                (void) snprintf(rd->path + n, sizeof(rd->path) - n, "%s%s", n ? "." : "", key);
        else
                (void) snprintf(rd->path + n, sizeof(rd->path) - n, "[%zu]", index);
        return n;
}
static void path_pop(struct reader *rd, size_t n) {
        rd->path[n] = '\0';
}

/* The members obj may have; any other is an error at its key. */
static int check_keys(struct reader *rd, const struct json_value *obj, const char *const *allowed) {
        JSON_FOREACH(c, obj) {
                const char *k = json_key(c);
                bool found = false;
                for (const char *const *a = allowed; *a && !found; a++)
                        found = strcmp(*a, k) == 0;
                if (!found) {
                        size_t n = path_push(rd, k, 0);
                        int r = fail_key(rd, c, -EBADMSG, "unknown field");
                        path_pop(rd, n);
                        return r;
                }
        }
        return 0;
}

/* n bytes of the text (which need not end with a NUL) as a string. */
static char *dup_range(const char *s, size_t n) {
        char *d = malloc(n + 1);
        if (d) {
                memcpy(d, s, n);
                d[n] = '\0';
        }
        return d;
}

/* A string member. Plain scalars YAML would type as numbers or booleans are taken as their text
 * ("true", "123": a name may be that). *ret: NULL when absent, null or "" and !required. */
static int get_string(struct reader *rd, const struct json_value *obj, const char *key,
                      bool required, char **ret) {
        const struct json_value *v = json_get(obj, key);
        const char *s = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t n = path_push(rd, key, 0);
        int r = 0;

        switch (json_type(v)) {
        case JSON_STRING:
                (void) json_string(v, &s);
                break;
        case JSON_NUMBER:
        case JSON_TRUE:
        case JSON_FALSE: {
                const struct yaml_node_info *i = yaml_map_find(rd->map, v);
                if (i && i->style == YAML_STYLE_PLAIN && i->end.offset > i->start.offset &&
                    i->end.offset - i->start.offset <= PLAN_MAX_STRING)
                        copy = dup_range(rd->text + i->start.offset,
                                         i->end.offset - i->start.offset);
                else
                        r = fail(rd, v, -EBADMSG, "is not a string");
                if (r >= 0 && !copy)
                        r = -ENOMEM;
                s = copy;
                break;
        }
        case JSON_INVALID:
        case JSON_NULL:
                break;
        default:
                r = fail(rd, v, -EBADMSG, "is a %s, not a string",
                         json_type(v) == JSON_ARRAY ? "sequence" : "mapping");
        }
        if (r >= 0 && s && !text_ok(s))
                r = fail(rd, v, strlen(s) > PLAN_MAX_STRING ? -E2BIG : -EBADMSG,
                         strlen(s) > PLAN_MAX_STRING ? "is longer than %u bytes"
                                                     : "holds a control character or invalid "
                                                       "UTF-8 (limit %u bytes)",
                         PLAN_MAX_STRING);
        if (r >= 0 && (!s || !*s)) {
                if (required)
                        r = fail(rd, v ? v : obj, -EBADMSG,
                                 v ? "is empty" : "is missing (in the mapping here)");
                else {
                        path_pop(rd, n);
                        *ret = NULL;
                        return 0;
                }
        }
        if (r >= 0) {
                char *d = copy ? TAKE_PTR(copy) : strdup(s);
                if (!d)
                        r = -ENOMEM;
                else
                        *ret = d;
        }
        path_pop(rd, n);
        return r;
}

/* A sequence member (absent or null: none, when !required); *ret_n its length, bounded. */
static int get_seq(struct reader *rd, const struct json_value *obj, const char *key, bool required,
                   size_t max, const struct json_value **ret, size_t *ret_n) {
        const struct json_value *v = json_get(obj, key);
        size_t n = path_push(rd, key, 0);
        int r = 0;
        if (json_type(v) == JSON_ARRAY) {
                if (json_count(v) > max)
                        r = fail(rd, v, -E2BIG, "more than %zu entries", max);
                else {
                        *ret = v;
                        *ret_n = json_count(v);
                }
        } else if (!v || json_type(v) == JSON_NULL) {
                if (required)
                        r = fail(rd, v ? v : obj, -EBADMSG, "is missing (in the mapping here)");
                else {
                        *ret = NULL;
                        *ret_n = 0;
                }
        } else
                r = fail(rd, v, -EBADMSG, "is not a sequence");
        path_pop(rd, n);
        return r;
}

static int need_mapping(struct reader *rd, const struct json_value *v) {
        if (json_type(v) != JSON_OBJECT)
                return fail(rd, v, -EBADMSG, "is not a mapping");
        return 0;
}

static int read_fields(struct reader *rd, const struct json_value *obj, struct plan_secret *s) {
        const struct json_value *v = json_get(obj, "fields");
        size_t n = path_push(rd, "fields", 0);
        int r = 0;

        if (!v || json_type(v) == JSON_NULL)
                goto done; /* none: an envFrom whose keys could not be read */
        if (json_type(v) != JSON_OBJECT) {
                r = fail(rd, v, -EBADMSG, "is not a mapping of field: VARIABLE");
                goto done;
        }
        if (json_count(v) > PLAN_MAX_FIELDS) {
                r = fail(rd, v, -E2BIG, "more than %u fields", PLAN_MAX_FIELDS);
                goto done;
        }
        s->fields = calloc(MAX(json_count(v), 1u), sizeof(*s->fields));
        if (!s->fields) {
                r = -ENOMEM;
                goto done;
        }
        JSON_FOREACH(c, v) {
                const char *k = json_key(c);
                struct plan_field *f = &s->fields[s->n_fields];
                size_t m = path_push(rd, k, 0);
                if (!field_name_ok(k))
                        r = fail_key(rd, c, -EBADMSG,
                                     "'%.64s' is not a Secret key ([-._a-zA-Z0-9]+)", k);
                path_pop(rd, m);
                if (r >= 0)
                        r = get_string(rd, v, k, true, &f->env);
                if (r >= 0 && !env_name_ok(f->env)) {
                        m = path_push(rd, k, 0);
                        r = fail(rd, c, -EBADMSG, "'%.64s' is not a variable name (it has '=')",
                                 f->env);
                        path_pop(rd, m);
                }
                if (r >= 0)
                        f->field = strdup(k);
                if (r >= 0 && !f->field)
                        r = -ENOMEM;
                s->n_fields++; /* freed by secret_done() even when half-filled */
                if (r < 0)
                        break;
        }
done:
        path_pop(rd, n);
        return r;
}

static int read_secret(struct reader *rd, const struct json_value *v, struct plan_secret *s) {
        static const char *const keys[] = {"source", "vaultPath", "fields", NULL};
        int r = need_mapping(rd, v);
        if (r >= 0)
                r = check_keys(rd, v, keys);
        if (r >= 0)
                r = get_string(rd, v, "source", true, &s->source);
        if (r >= 0)
                r = get_string(rd, v, "vaultPath", true, &s->vault_path);
        if (r >= 0 && !plan_vault_path_valid(s->vault_path)) {
                size_t n = path_push(rd, "vaultPath", 0);
                r = fail(rd, json_get(v, "vaultPath"), -EBADMSG,
                         "'%.64s' is not a vault path (plain segments, no glob or policy syntax)",
                         s->vault_path);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = read_fields(rd, v, s);
        return r;
}

static int read_workload(struct reader *rd, const struct json_value *v, struct plan_workload *w) {
        static const char *const keys[] = {"kind",   "name", "serviceAccount", "replicas", "status",
                                           "reason", "note", "secrets",        NULL};
        _cleanup_free_ char *kind = NULL, *status = NULL;
        const struct json_value *secrets = NULL, *rep;
        size_t n_secrets = 0, n;
        int r = need_mapping(rd, v);

        if (r >= 0)
                r = check_keys(rd, v, keys);
        if (r >= 0)
                r = get_string(rd, v, "kind", true, &kind);
        if (r >= 0 && plan_kind_from_string(kind, &w->kind) < 0) {
                n = path_push(rd, "kind", 0);
                r = fail(rd, json_get(v, "kind"), -EBADMSG,
                         "'%.64s' is not Deployment, StatefulSet or DaemonSet", kind);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_string(rd, v, "name", true, &w->name);
        if (r >= 0 && !kube_name_valid(w->name)) {
                n = path_push(rd, "name", 0);
                r = fail(rd, json_get(v, "name"), -EBADMSG, "'%.64s' is not a valid name", w->name);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_string(rd, v, "serviceAccount", false, &w->service_account);
        if (r >= 0 && w->service_account && !kube_name_valid(w->service_account)) {
                n = path_push(rd, "serviceAccount", 0);
                r = fail(rd, json_get(v, "serviceAccount"), -EBADMSG,
                         "'%.64s' is not a valid service account name", w->service_account);
                path_pop(rd, n);
        }
        rep = json_get(v, "replicas");
        if (r >= 0 && rep && json_type(rep) != JSON_NULL &&
            (json_int64(rep, &w->replicas) < 0 || w->replicas < 0 || w->replicas > INT32_MAX)) {
                n = path_push(rd, "replicas", 0);
                r = fail(rd, rep, -EBADMSG, "is not a number of replicas (0 to 2147483647)");
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_string(rd, v, "status", true, &status);
        if (r >= 0 && plan_status_from_string(status, &w->status) < 0) {
                n = path_push(rd, "status", 0);
                r = fail(rd, json_get(v, "status"), -EBADMSG,
                         "'%.64s' is not pending, migrated, skipped or failed", status);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_string(rd, v, "reason", false, &w->reason);
        if (r >= 0)
                r = get_string(rd, v, "note", false, &w->note);
        if (r >= 0)
                r = get_seq(rd, v, "secrets", false, PLAN_MAX_SECRETS, &secrets, &n_secrets);
        if (r >= 0 && n_secrets) {
                w->secrets = calloc(n_secrets, sizeof(*w->secrets));
                if (!w->secrets)
                        return -ENOMEM;
        }
        size_t i = 0;
        JSON_FOREACH(c, secrets) {
                if (r < 0)
                        break;
                size_t m = path_push(rd, "secrets", 0);
                path_push(rd, NULL, i++);
                r = read_secret(rd, c, &w->secrets[w->n_secrets++]);
                path_pop(rd, m);
        }
        return r;
}

static int read_tenant(struct reader *rd, const struct json_value *v, struct plan_tenant *t) {
        static const char *const keys[] = {"name", "namespace", "workloads", NULL};
        const struct json_value *wl = NULL;
        size_t n_wl = 0, n;
        int r = need_mapping(rd, v);

        if (r >= 0)
                r = check_keys(rd, v, keys);
        if (r >= 0)
                r = get_string(rd, v, "name", true, &t->name);
        if (r >= 0)
                r = get_string(rd, v, "namespace", true, &t->namespace_);
        if (r >= 0 && (!kube_name_valid(t->namespace_) || strlen(t->namespace_) > 63 ||
                       strchr(t->namespace_, '.'))) {
                n = path_push(rd, "namespace", 0);
                r = fail(rd, json_get(v, "namespace"), -EBADMSG,
                         "'%.64s' is not a valid namespace name", t->namespace_);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_seq(rd, v, "workloads", true, PLAN_MAX_WORKLOADS, &wl, &n_wl);
        if (r >= 0 && n_wl) {
                t->workloads = calloc(n_wl, sizeof(*t->workloads));
                if (!t->workloads)
                        return -ENOMEM;
        }
        size_t i = 0;
        JSON_FOREACH(c, wl) {
                if (r < 0)
                        break;
                size_t m = path_push(rd, "workloads", 0);
                path_push(rd, NULL, i++);
                struct plan_workload *w = &t->workloads[t->n_workloads++];
                r = read_workload(rd, c, w);
                for (size_t j = 0; r >= 0 && j + 1 < t->n_workloads; j++)
                        if (t->workloads[j].kind == w->kind &&
                            strcmp(t->workloads[j].name, w->name) == 0)
                                r = fail(rd, c, -EBADMSG, "%s '%.64s' is already in this tenant",
                                         kinds[w->kind], w->name);
                path_pop(rd, m);
        }
        return r;
}

static int read_plan(struct reader *rd, const struct json_value *root, struct plan *p) {
        static const char *const keys[] = {"apiVersion", "kind", "metadata", "tenants", NULL};
        static const char *const mkeys[] = {"name", "cluster", "createdAt", "createdBy", NULL};
        _cleanup_free_ char *api = NULL, *kind = NULL;
        const struct json_value *meta, *tenants = NULL;
        size_t n_tenants = 0, n;
        int r = check_keys(rd, root, keys);

        if (r >= 0)
                r = get_string(rd, root, "apiVersion", true, &api);
        if (r >= 0 && strcmp(api, PLAN_API_VERSION) != 0) {
                n = path_push(rd, "apiVersion", 0);
                r = fail(rd, json_get(root, "apiVersion"), -EBADMSG, "'%.64s' is not %s", api,
                         PLAN_API_VERSION);
                path_pop(rd, n);
        }
        if (r >= 0)
                r = get_string(rd, root, "kind", true, &kind);
        if (r >= 0 && strcmp(kind, PLAN_KIND) != 0) {
                n = path_push(rd, "kind", 0);
                r = fail(rd, json_get(root, "kind"), -EBADMSG, "'%.64s' is not %s", kind,
                         PLAN_KIND);
                path_pop(rd, n);
        }
        if (r < 0)
                return r;
        meta = json_get(root, "metadata");
        n = path_push(rd, "metadata", 0);
        if (!meta)
                r = fail(rd, root, -EBADMSG, "is missing (in the mapping here)");
        else
                r = need_mapping(rd, meta);
        if (r >= 0)
                r = check_keys(rd, meta, mkeys);
        if (r >= 0)
                r = get_string(rd, meta, "name", true, &p->name);
        if (r >= 0)
                r = get_string(rd, meta, "cluster", true, &p->cluster);
        if (r >= 0)
                r = get_string(rd, meta, "createdAt", false, &p->created_at);
        if (r >= 0 && p->created_at && !rfc3339_ok(p->created_at)) {
                size_t m = path_push(rd, "createdAt", 0);
                r = fail(rd, json_get(meta, "createdAt"), -EBADMSG,
                         "'%.64s' is not an RFC 3339 time (2026-12-03T11:00:00Z)", p->created_at);
                path_pop(rd, m);
        }
        if (r >= 0)
                r = get_string(rd, meta, "createdBy", false, &p->created_by);
        path_pop(rd, n);
        if (r >= 0)
                r = get_seq(rd, root, "tenants", true, PLAN_MAX_TENANTS, &tenants, &n_tenants);
        if (r >= 0 && n_tenants) {
                p->tenants = calloc(n_tenants, sizeof(*p->tenants));
                if (!p->tenants)
                        return -ENOMEM;
        }
        size_t i = 0;
        JSON_FOREACH(c, tenants) {
                if (r < 0)
                        break;
                n = path_push(rd, "tenants", 0);
                path_push(rd, NULL, i++);
                struct plan_tenant *t = &p->tenants[p->n_tenants++];
                r = read_tenant(rd, c, t);
                for (size_t j = 0; r >= 0 && j + 1 < p->n_tenants; j++)
                        if (strcmp(p->tenants[j].namespace_, t->namespace_) == 0)
                                r = fail(rd, c, -EBADMSG,
                                         "namespace '%.64s' is already tenants[%zu]", t->namespace_,
                                         j);
                path_pop(rd, n);
        }
        return r;
}

/* positions: parse with the positions of the nodes (yaml_parse_map), which error messages and
 * the plain scalars YAML types as numbers or booleans need; without them (for text plan_format
 * wrote, which quotes every such scalar) the parse is a good deal cheaper. */
static int parse_text(const char *text, size_t len, bool positions, struct plan **ret,
                      struct json_doc **ret_doc, struct yaml_map **ret_map,
                      struct plan_error *err) {
        const struct json_limits lim = {.max_input = PLAN_MAX_BYTES,
                                        .max_depth = PLAN_MAX_DEPTH,
                                        .max_nodes = PLAN_MAX_NODES};
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_yaml_map_ struct yaml_map *map = NULL;
        _cleanup_plan_ struct plan *p = NULL;
        struct yaml_error ye;
        int r;

        if (err)
                *err = (struct plan_error){};
        if (!text || !ret)
                return -EINVAL;
        ye = (struct yaml_error){};
        r = positions ? yaml_parse_map(text, len, 0, &lim, &doc, &map, &ye)
                      : yaml_parse(text, len, 0, &lim, &doc);
        if (r < 0) {
                if (err) {
                        err->line = ye.line;
                        err->column = ye.column;
                        (void) snprintf(err->message, sizeof(err->message), "%s", ye.message);
                }
                return r == -ELOOP ? -EBADMSG : r;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        struct reader rd = {.text = text, .map = map, .err = err};
        r = read_plan(&rd, json_doc_root(doc), p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        if (ret_doc)
                *ret_doc = TAKE_PTR(doc);
        if (ret_map)
                *ret_map = TAKE_PTR(map);
        return 0;
}

static int parse_with_map(const char *text, size_t len, struct plan **ret,
                          struct json_doc **ret_doc, struct yaml_map **ret_map,
                          struct plan_error *err) {
        return parse_text(text, len, true, ret, ret_doc, ret_map, err);
}

int plan_parse(const char *text, size_t len, struct plan **ret, struct plan_error *err) {
        return parse_with_map(text, len, ret, NULL, NULL, err);
}

static int read_text(const char *path, struct buf *b) {
        return buf_read_file(b, path);
}

int plan_load(const char *path, struct plan **ret, struct plan_error *err) {
        _cleanup_buf_ struct buf b = BUF_INIT(PLAN_MAX_BYTES, 0);
        if (err)
                *err = (struct plan_error){};
        int r = read_text(path, &b);
        if (r < 0) {
                if (err)
                        (void) snprintf(err->message, sizeof(err->message), "cannot read: %s",
                                        strerror(-r));
                return r;
        }
        return plan_parse(buf_cstr(&b), b.len, ret, err);
}

/* --- writing --------------------------------------------------------------------------------- */

/* Whether s may be written plain: words any YAML reader (1.1 or 1.2) takes as the string they
 * are. Everything else is double-quoted. */
static bool plain_ok(const char *s) {
        static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off",
                                               "null", "y",     "n",   "~",  NULL};
        if (!*s || strlen(s) > 200)
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_' ||
              s[0] == '/'))
                return false;
        size_t n = strlen(s);
        if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@:") !=
                    n ||
            s[n - 1] == ':')
                return false;
        for (const char *const *r = reserved; *r; r++)
                if (strcasecmp(s, *r) == 0)
                        return false;
        return true;
}

static int put_string(struct buf *out, const char *s) {
        if (!text_ok(s))
                return -EINVAL;
        if (plain_ok(s))
                return buf_append_str(out, s);
        int r = buf_append_byte(out, '"');
        for (const char *c = s; r >= 0 && *c; c++) {
                if (*c == '"' || *c == '\\')
                        r = buf_append_byte(out, '\\');
                if (r >= 0)
                        r = buf_append_byte(out, (uint8_t) *c);
        }
        return r < 0 ? r : buf_append_byte(out, '"');
}

static int put_member(struct buf *out, unsigned indent, const char *key, const char *value) {
        int r = buf_printf(out, "%*s%s: ", (int) indent, "", key);
        if (r >= 0)
                r = put_string(out, value);
        return r < 0 ? r : buf_append_byte(out, '\n');
}

static const char HEADER[] =
        "# cloudtaser migration plan (docs/cli.md#plan-file). It holds no secret value: only\n"
        "# references to Kubernetes Secrets, the vault paths that replace them, and which field\n"
        "# of each goes to which environment variable. Review and edit it (vaultPath, fields);\n"
        "# `cloudtaser source apply-plan` writes the vault policies from it, `cloudtaser target\n"
        "# protect` migrates each pending workload and records its status here.\n";

static int format_workload(struct buf *out, const struct plan_workload *w) {
        int r = buf_printf(out, "  - kind: %s\n", plan_kind_to_string(w->kind));
        if (r >= 0)
                r = put_member(out, 4, "name", w->name);
        if (r >= 0 && w->service_account && *w->service_account)
                r = put_member(out, 4, "serviceAccount", w->service_account);
        if (r >= 0)
                r = buf_printf(out, "    replicas: %" PRId64 "\n", w->replicas);
        if (r >= 0)
                r = buf_printf(out, "    status: %s\n", plan_status_to_string(w->status));
        if (r >= 0 && w->reason && *w->reason)
                r = put_member(out, 4, "reason", w->reason);
        if (r >= 0 && w->note && *w->note)
                r = put_member(out, 4, "note", w->note);
        if (r >= 0 && !w->n_secrets)
                r = buf_append_str(out, "    secrets: []\n");
        else if (r >= 0)
                r = buf_append_str(out, "    secrets:\n");
        for (size_t i = 0; r >= 0 && i < w->n_secrets; i++) {
                const struct plan_secret *s = &w->secrets[i];
                r = put_member(out, 4, "- source", s->source);
                if (r >= 0)
                        r = put_member(out, 6, "vaultPath", s->vault_path);
                if (r >= 0)
                        r = buf_append_str(out,
                                           s->n_fields ? "      fields:\n" : "      fields: {}\n");
                for (size_t f = 0; r >= 0 && f < s->n_fields; f++) {
                        if (!field_name_ok(s->fields[f].field) || !env_name_ok(s->fields[f].env))
                                return -EINVAL;
                        r = buf_append_str(out, "        ");
                        if (r >= 0)
                                r = put_string(out, s->fields[f].field);
                        if (r >= 0)
                                r = buf_append_str(out, ": ");
                        if (r >= 0)
                                r = put_string(out, s->fields[f].env);
                        if (r >= 0)
                                r = buf_append_byte(out, '\n');
                }
        }
        return r;
}

static int format_plan(const struct plan *p, struct buf *out) {
        int r = buf_append_str(out, HEADER);
        if (r >= 0)
                r = buf_printf(out, "apiVersion: %s\nkind: %s\nmetadata:\n", PLAN_API_VERSION,
                               PLAN_KIND);
        if (r >= 0)
                r = put_member(out, 2, "name", p->name ? p->name : "");
        if (r >= 0)
                r = put_member(out, 2, "cluster", p->cluster ? p->cluster : "");
        if (r >= 0 && p->created_at)
                r = put_member(out, 2, "createdAt", p->created_at);
        if (r >= 0 && p->created_by)
                r = put_member(out, 2, "createdBy", p->created_by);
        if (r >= 0)
                r = buf_append_str(out, "# One tenant per namespace; each workload's status is "
                                        "pending, migrated, skipped or failed.\n");
        if (r >= 0)
                r = buf_append_str(out, p->n_tenants ? "tenants:\n" : "tenants: []\n");
        for (size_t t = 0; r >= 0 && t < p->n_tenants; t++) {
                const struct plan_tenant *tn = &p->tenants[t];
                r = put_member(out, 0, "- name", tn->name);
                if (r >= 0)
                        r = put_member(out, 2, "namespace", tn->namespace_);
                if (r >= 0)
                        r = buf_append_str(out, tn->n_workloads ? "  workloads:\n"
                                                                : "  workloads: []\n");
                for (size_t w = 0; r >= 0 && w < tn->n_workloads; w++)
                        r = format_workload(out, &tn->workloads[w]);
        }
        return r;
}

int plan_format(const struct plan *p, struct buf *out) {
        if (!p || !out)
                return -EINVAL;
        size_t before = out->len;
        int r = format_plan(p, out);
        _cleanup_plan_ struct plan *back = NULL;
        /* What is written must read back as the same plan (the rules of plan_parse apply to
         * what a program builds, too). */
        if (r >= 0 && (parse_text(out->data + before, out->len - before, false, &back, NULL, NULL,
                                  NULL) < 0 ||
                       !plan_equal(p, back)))
                r = -EINVAL;
        if (r < 0)
                buf_truncate(out, before);
        return r;
}

/* Replaces path with the n bytes at data: a temporary file in the same directory, written and
 * fsync'ed, renamed over path, then the directory fsync'ed, so that after a crash at any instant
 * path holds either the old or the new text, whole. */
static int write_atomic(const char *path, const char *data, size_t n) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
        mode_t mode = 0644;
        struct stat st;
        int r;

        if (!*base)
                return -EISDIR;
        dir = slash ? strndup(path, (size_t) (slash - path) + (slash == path)) : strdup(".");
        if (!dir || asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        if (stat(path, &st) == 0)
                mode = st.st_mode & 07777;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < n;) {
                ssize_t w = write(fd, data + done, n - done);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        r = w < 0 ? -errno : -EIO;
                        goto fail;
                }
                done += (size_t) w;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        fd = safe_close(fd);
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}

int plan_save(const struct plan *p, const char *path) {
        _cleanup_buf_ struct buf out = BUF_INIT(PLAN_MAX_BYTES, 0);
        if (!path)
                return -EINVAL;
        int r = plan_format(p, &out);
        return r < 0 ? r : write_atomic(path, out.data, out.len);
}

/* --- editing a status in place --------------------------------------------------------------- */

struct edit {
        size_t from, to; /* replace [from, to) */
        char text[PLAN_MAX_STRING * 2 + 64];
};

static bool one_line(const struct yaml_node_info *i) {
        return i && (i->style == YAML_STYLE_PLAIN || i->style == YAML_STYLE_QUOTED) &&
               i->start.line == i->end.line;
}

static int quoted(const char *s, char *out, size_t size) {
        struct buf b = BUF_INIT(size - 1, 0);
        int r = put_string(&b, s);
        if (r >= 0)
                (void) snprintf(out, size, "%s", buf_cstr(&b));
        buf_done(&b);
        return r;
}

/* The edits that turn the workload w (the value at wv) into status/reason, in text order; -EAGAIN
 * when the layout does not allow an edit in place. */
static int plan_edits(const char *text, size_t len, const struct yaml_map *map,
                      const struct json_value *wv, enum plan_status status, const char *reason,
                      struct edit *e, size_t *ret_n) {
        const struct yaml_node_info *wi = yaml_map_find(map, wv),
                                    *si = yaml_map_find(map, json_get(wv, "status")),
                                    *ri = yaml_map_find(map, json_get(wv, "reason"));
        size_t n = 0;

        if (!wi || !one_line(si))
                return -EAGAIN;
        e[n] = (struct edit){.from = si->start.offset, .to = si->end.offset};
        (void) snprintf(e[n].text, sizeof(e[n].text), "%s", plan_status_to_string(status));
        n++;
        if (ri && !one_line(ri) &&
            !(ri->style == YAML_STYLE_PLAIN && ri->end.offset == ri->start.offset))
                return -EAGAIN;
        if (reason && *reason) {
                char q[sizeof(e->text) - 64];
                int r = quoted(reason, q, sizeof(q));
                if (r < 0)
                        return r;
                if (ri && ri->end.offset > ri->start.offset) {
                        e[n] = (struct edit){.from = ri->start.offset, .to = ri->end.offset};
                        (void) snprintf(e[n].text, sizeof(e[n].text), "%s", q);
                } else if (ri) {
                        /* "reason:" with an empty value: the value goes after the colon. */
                        const char *colon =
                                memchr(text + ri->key.offset, ':', len - ri->key.offset);
                        if (!colon)
                                return -EAGAIN;
                        size_t at = (size_t) (colon - text) + 1;
                        e[n] = (struct edit){.from = at, .to = at};
                        (void) snprintf(e[n].text, sizeof(e[n].text), " %s", q);
                } else if (wi->style == YAML_STYLE_FLOW) {
                        e[n] = (struct edit){.from = si->end.offset, .to = si->end.offset};
                        (void) snprintf(e[n].text, sizeof(e[n].text), ", reason: %s", q);
                } else {
                        /* A line after the status line, indented as the status key. */
                        const char *nl = memchr(text + si->end.offset, '\n', len - si->end.offset);
                        size_t at = nl ? (size_t) (nl - text) + 1 : len;
                        e[n] = (struct edit){.from = at, .to = at};
                        (void) snprintf(e[n].text, sizeof(e[n].text), "%s%*sreason: %s%s",
                                        nl ? "" : "\n", (int) (si->key.column - 1), "", q,
                                        nl ? "\n" : "");
                }
                n++;
        } else if (ri) {
                /* Remove the reason: its whole line when it is alone on it, else make it "". */
                size_t ls = ri->key.offset - (ri->key.column - 1);
                bool alone = wi->style == YAML_STYLE_BLOCK && ri->key.column >= 1 &&
                             ri->key.offset >= ri->key.column - 1;
                for (size_t k = ls; alone && k < ri->key.offset; k++)
                        alone = text[k] == ' ';
                if (alone) {
                        const char *nl = memchr(text + ri->end.offset, '\n', len - ri->end.offset);
                        e[n] = (struct edit){.from = ls, .to = nl ? (size_t) (nl - text) + 1 : len};
                        e[n].text[0] = '\0';
                } else if (ri->end.offset > ri->start.offset) {
                        e[n] = (struct edit){.from = ri->start.offset, .to = ri->end.offset};
                        (void) snprintf(e[n].text, sizeof(e[n].text), "\"\"");
                } else
                        n--; /* already empty */
                n++;
        }
        if (n == 2 && e[1].from < e[0].to) {
                if (e[0].from < e[1].to)
                        return -EAGAIN; /* overlapping: cannot happen with distinct nodes */
                struct edit t = e[0];
                e[0] = e[1];
                e[1] = t;
        }
        *ret_n = n;
        return 0;
}

/* A reason as the plan can hold it: control characters (a multi-line error) become spaces, and
 * it is cut to PLAN_MAX_STRING bytes at a character boundary. *ret: NULL for none (NULL or "");
 * -EINVAL for invalid UTF-8. */
static int reason_clean(const char *in, char **ret) {
        if (!in || !*in) {
                *ret = NULL;
                return 0;
        }
        size_t n = strlen(in);
        if (n > PLAN_MAX_STRING) {
                n = PLAN_MAX_STRING;
                while (n > 0 && ((unsigned char) in[n] & 0xc0) == 0x80)
                        n--;
        }
        char *c = strndup(in, n);
        if (!c)
                return -ENOMEM;
        for (char *p = c; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        if (!text_ok(c)) {
                free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

int plan_set_status_text(const char *text, size_t len, size_t tenant, size_t workload,
                         enum plan_status status, const char *reason, struct buf *out,
                         struct plan_error *err) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_yaml_map_ struct yaml_map *map = NULL;
        _cleanup_plan_ struct plan *p = NULL, *back = NULL;
        _cleanup_free_ struct edit *e = NULL;
        _cleanup_free_ char *clean = NULL;
        size_t n = 0, before = out ? out->len : 0;
        int r;

        if (!out || (unsigned) status >= _PLAN_STATUS_MAX)
                return -EINVAL;
        r = reason_clean(reason, &clean);
        if (r < 0)
                return r;
        reason = clean;
        r = parse_with_map(text, len, &p, &doc, &map, err);
        if (r < 0)
                return r == -E2BIG ? r : -EBADMSG;
        if (tenant >= p->n_tenants || workload >= p->tenants[tenant].n_workloads)
                return -ERANGE;
        struct plan_workload *w = &p->tenants[tenant].workloads[workload];
        w->status = status;
        free(w->reason);
        w->reason = reason && *reason ? strdup(reason) : NULL;
        if (reason && *reason && !w->reason)
                return -ENOMEM;

        const struct json_value *tv = json_array_at(json_get(json_doc_root(doc), "tenants"),
                                                    tenant),
                                *wv = json_array_at(json_get(tv, "workloads"), workload);
        e = calloc(2, sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = plan_edits(text, len, map, wv, status, reason, e, &n);
        if (r >= 0) {
                size_t at = 0;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        r = buf_append(out, text + at, e[i].from - at);
                        if (r >= 0)
                                r = buf_append_str(out, e[i].text);
                        at = e[i].to;
                }
                if (r >= 0)
                        r = buf_append(out, text + at, len - at);
                if (r >= 0 && (plan_parse(out->data + before, out->len - before, &back, NULL) < 0 ||
                               !plan_equal(p, back)))
                        r = -EAGAIN;
                if (r < 0)
                        buf_truncate(out, before);
        }
        if (r == -EAGAIN) /* the layout does not allow an edit in place: the plan anew */
                r = plan_format(p, out);
        return r;
}

int plan_set_status(struct plan *p, const char *path, size_t tenant, size_t workload,
                    enum plan_status status, const char *reason) {
        _cleanup_buf_ struct buf text = BUF_INIT(PLAN_MAX_BYTES, 0),
                                 out = BUF_INIT(PLAN_MAX_BYTES + PLAN_MAX_STRING * 2 + 64, 0);
        _cleanup_plan_ struct plan *now = NULL;
        _cleanup_free_ char *copy = NULL;
        int r;

        if (!p || !path || tenant >= p->n_tenants || workload >= p->tenants[tenant].n_workloads)
                return -EINVAL;
        r = reason_clean(reason, &copy);
        if (r < 0)
                return r;
        r = read_text(path, &text);
        if (r < 0)
                return r;
        /* The file must still hold this workload where p has it (a reviewer may have edited
         * the file since; its other edits are kept). */
        r = plan_parse(buf_cstr(&text), text.len, &now, NULL);
        if (r < 0)
                return r;
        const struct plan_tenant *pt = &p->tenants[tenant];
        const struct plan_workload *pw = &pt->workloads[workload];
        if (tenant >= now->n_tenants || workload >= now->tenants[tenant].n_workloads ||
            strcmp(now->tenants[tenant].namespace_, pt->namespace_) != 0 ||
            now->tenants[tenant].workloads[workload].kind != pw->kind ||
            strcmp(now->tenants[tenant].workloads[workload].name, pw->name) != 0)
                return -ESTALE;
        r = plan_set_status_text(buf_cstr(&text), text.len, tenant, workload, status, reason, &out,
                                 NULL);
        if (r < 0)
                return r;
        r = write_atomic(path, out.data, out.len);
        if (r < 0)
                return r;
        struct plan_workload *w = &p->tenants[tenant].workloads[workload];
        w->status = status;
        free(w->reason);
        w->reason = TAKE_PTR(copy);
        return 0;
}
