/* SPDX-License-Identifier: Apache-2.0 */
/* operator/credstore: see credstore.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/credstore.h"

struct credstore {
        enum credstore_backend backend;
        struct vaultsession *session;
        struct kube_client *kube;
        char mount[128];  /* "secret" */
        char prefix[256]; /* "cloudtaser/system" */
        char namespace_[64];
        char secret_name[254];
        pthread_mutex_t lock; /* base, resolved */
        bool resolved;
        struct vault_kv_path base;
};

/* ---- names, errors, versions ---- */

static bool name_chars(const char *s, size_t max, bool dots) {
        size_t n = 0;
        if (!s || !*s)
                return false;
        for (; s[n]; n++) {
                char c = s[n];
                if (n + 1 >= max)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || (dots && c == '.')))
                        return false;
        }
        return true;
}

static bool record_valid(const char *r) {
        return name_chars(r, CREDSTORE_RECORD_MAX, false);
}

static bool field_valid(const char *f) {
        return name_chars(f, CREDSTORE_FIELD_MAX, true) && strcmp(f, ".") != 0 &&
               strcmp(f, "..") != 0;
}

_printf_(4, 5) static int fail(struct credstore_error *err, int r, const char *path,
                               const char *fmt, ...) {
        if (err) {
                va_list ap;
                *err = (struct credstore_error){.error = r};
                (void) snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
                (void) snprintf(err->reason, sizeof(err->reason), "%s", vault_strerror(r));
                va_start(ap, fmt);
                (void) vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

static int from_vault(struct credstore_error *err, int r, const struct vault_error *e) {
        if (err) {
                *err = (struct credstore_error){.error = r, .status = e->status};
                (void) snprintf(err->path, sizeof(err->path), "%s", e->path);
                (void) snprintf(err->reason, sizeof(err->reason), "%s", vault_strerror(r));
                (void) snprintf(err->message, sizeof(err->message), "%s",
                                e->message[0] ? e->message : vault_strerror(r));
        }
        return r;
}

static int from_kube(struct credstore_error *err, int r, const char *path,
                     const struct kube_error *e) {
        if (err) {
                *err = (struct credstore_error){.error = r, .status = e->code};
                (void) snprintf(err->path, sizeof(err->path), "%s", path);
                (void) snprintf(err->reason, sizeof(err->reason), "%s", e->reason);
                (void) snprintf(err->message, sizeof(err->message), "%s", e->message);
        }
        return r;
}

static void ok_err(struct credstore_error *err) {
        if (err)
                *err = (struct credstore_error){};
}

bool credstore_version_equal(const struct credstore_version *a, const struct credstore_version *b) {
        return a->kv == b->kv && strcmp(a->rv, b->rv) == 0;
}

int credstore_backend_from_string(const char *s, enum credstore_backend *ret) {
        if (s && strcmp(s, "vault") == 0)
                *ret = CREDSTORE_VAULT;
        else if (s && strcmp(s, "kubernetes") == 0)
                *ret = CREDSTORE_KUBERNETES;
        else
                return -EINVAL;
        return 0;
}

const char *credstore_backend_to_string(enum credstore_backend b) {
        return b == CREDSTORE_KUBERNETES ? "kubernetes" : "vault";
}

const char *credstore_weakened_warning(void) {
        return "--secret-backend=kubernetes: the operator's own credentials (webhook TLS key, "
               "broker keys and tokens) are kept in the Kubernetes Secret " CREDSTORE_DEFAULT_SECRET
               ", readable by anyone who may read Secrets in this namespace and from etcd: the "
               "security model is weakened; use --secret-backend=vault";
}

/* ---- records ---- */

struct rec_builder {
        size_t n;
        const char *names[CREDSTORE_MAX_FIELDS];
        const char *values[CREDSTORE_MAX_FIELDS];
        size_t lens[CREDSTORE_MAX_FIELDS];
};

static int field_cmp(const void *a, const void *b) {
        return strcmp(((const struct credstore_field *) a)->name,
                      ((const struct credstore_field *) b)->name);
}

/* One secmem block: the field array, then each name and value with its NUL. */
static int rec_build(const struct rec_builder *b, const struct credstore_version *v,
                     struct credstore_record **ret) {
        size_t total = b->n * sizeof(struct credstore_field);
        for (size_t i = 0; i < b->n; i++)
                total += strlen(b->names[i]) + 1 + b->lens[i] + 1;
        struct credstore_record *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        int k = secmem_alloc(MAX(total, (size_t) 1), &r->storage_);
        if (k < 0) {
                free(r);
                return k;
        }
        r->fields = r->storage_;
        char *p = (char *) r->storage_ + b->n * sizeof(struct credstore_field);
        for (size_t i = 0; i < b->n; i++) {
                size_t nl = strlen(b->names[i]);
                memcpy(p, b->names[i], nl + 1);
                r->fields[i].name = p;
                p += nl + 1;
                memcpy(p, b->values[i], b->lens[i]);
                p[b->lens[i]] = '\0';
                r->fields[i].value = p;
                r->fields[i].value_len = b->lens[i];
                p += b->lens[i] + 1;
        }
        r->n_fields = b->n;
        if (b->n > 1)
                qsort(r->fields, b->n, sizeof(*r->fields), field_cmp);
        r->version = *v;
        *ret = r;
        return 0;
}

struct credstore_record *credstore_record_free(struct credstore_record *r) {
        if (!r)
                return NULL;
        secmem_free(r->storage_);
        free(r);
        return NULL;
}

const struct credstore_field *credstore_record_get(const struct credstore_record *r,
                                                   const char *name) {
        for (size_t i = 0; r && name && i < r->n_fields; i++)
                if (strcmp(r->fields[i].name, name) == 0)
                        return &r->fields[i];
        return NULL;
}

static int check_fields(const char *record, const struct credstore_field *f, size_t n,
                        struct credstore_error *err) {
        if (!record_valid(record))
                return fail(err, -EINVAL, NULL, "invalid record name");
        if (n == 0 || n > CREDSTORE_MAX_FIELDS)
                return fail(err, -EINVAL, NULL, "record '%s': %zu fields (1..%u)", record, n,
                            CREDSTORE_MAX_FIELDS);
        for (size_t i = 0; i < n; i++) {
                if (!field_valid(f[i].name))
                        return fail(err, -EINVAL, NULL, "record '%s': invalid field name", record);
                if (!f[i].value || f[i].value_len > CREDSTORE_VALUE_MAX)
                        return fail(err, -E2BIG, NULL,
                                    "record '%s': field '%s' has no value or is over %u bytes",
                                    record, f[i].name, CREDSTORE_VALUE_MAX);
                if (memchr(f[i].value, '\0', f[i].value_len))
                        return fail(err, -EINVAL, NULL, "record '%s': field '%s' holds a NUL byte",
                                    record, f[i].name);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(f[i].name, f[j].name) == 0)
                                return fail(err, -EINVAL, NULL,
                                            "record '%s': field '%s' given twice", record,
                                            f[i].name);
        }
        return 0;
}

/* ---- open ---- */

static bool prefix_valid(const char *p) {
        size_t l = p ? strlen(p) : 0;
        return l > 0 && vault_path_valid(p) && p[l - 1] != '/';
}

int credstore_open(const struct credstore_options *o, struct credstore **ret) {
        if (!o || !ret)
                return -EINVAL;
        const char *mount = o->mount ? o->mount : CREDSTORE_DEFAULT_MOUNT;
        const char *prefix = o->prefix ? o->prefix : CREDSTORE_DEFAULT_PREFIX;
        const char *name = o->secret_name ? o->secret_name : CREDSTORE_DEFAULT_SECRET;
        if (o->backend == CREDSTORE_VAULT) {
                if (!o->session || !prefix_valid(mount) || !prefix_valid(prefix) ||
                    strlen(mount) >= 128 || strlen(prefix) >= 256)
                        return -EINVAL;
        } else if (o->backend == CREDSTORE_KUBERNETES) {
                if (!o->kube || !o->namespace_ || !kube_name_valid(o->namespace_) ||
                    strlen(o->namespace_) >= 64 || !kube_name_valid(name))
                        return -EINVAL;
        } else
                return -EINVAL;
        struct credstore *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (pthread_mutex_init(&s->lock, NULL) != 0) {
                free(s);
                return -ENOMEM;
        }
        s->backend = o->backend;
        s->session = o->session;
        s->kube = o->kube;
        (void) snprintf(s->mount, sizeof(s->mount), "%s", mount);
        (void) snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
        (void) snprintf(s->namespace_, sizeof(s->namespace_), "%s",
                        o->namespace_ ? o->namespace_ : "");
        (void) snprintf(s->secret_name, sizeof(s->secret_name), "%s", name);
        *ret = s;
        return 0;
}

struct credstore *credstore_free(struct credstore *s) {
        if (!s)
                return NULL;
        (void) pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

enum credstore_backend credstore_backend(const struct credstore *s) {
        return s->backend;
}

const char *credstore_location(const struct credstore *s, const char *record, char *buf, size_t n) {
        if (s->backend == CREDSTORE_VAULT)
                (void) snprintf(buf, n, "%s/data/%s/%s", s->mount, s->prefix, record);
        else
                (void) snprintf(buf, n, "%s/%s (keys %s.*)", s->namespace_, s->secret_name, record);
        return buf;
}

/* ---- vault ---- */

static int vault_borrow(struct credstore *s, struct vault_client **ret,
                        struct credstore_error *err) {
        int r = vaultsession_borrow(s->session, ret);
        if (r < 0) {
                struct vaultsession_status st;
                vaultsession_status(s->session, &st);
                return fail(err, r, NULL, "the vault session is not ready: %s",
                            st.last_cause[0] ? st.last_cause : "not logged in yet");
        }
        return 0;
}

/* The record's KV path; the mount is looked up once. Called with the client borrowed. */
static int vault_path(struct credstore *s, struct vault_client *c, const char *record,
                      struct vault_kv_path *ret, struct credstore_error *err) {
        char full[VAULT_PATH_MAX];
        struct vault_error e = {};
        int r = 0;

        pthread_mutex_lock(&s->lock);
        if (!s->resolved) {
                (void) snprintf(full, sizeof(full), "%s/%s", s->mount, s->prefix);
                r = vault_kv_resolve(c, full, &s->base, &e);
                if (r >= 0 && s->base.version != VAULT_KV_V2)
                        r = -EMEDIUMTYPE;
                s->resolved = r >= 0;
        }
        pthread_mutex_unlock(&s->lock);
        if (r == -EMEDIUMTYPE)
                return fail(err, r, s->mount, "the mount %s/ is not KV version 2", s->mount);
        if (r < 0)
                return from_vault(err, r, &e);
        (void) snprintf(full, sizeof(full), "%s/%s/%.63s", s->mount, s->prefix, record);
        r = vault_kv_path_from_mount(&s->base, full, ret);
        if (r < 0)
                return fail(err, r, full, "not a path under the mount %s", s->base.mount);
        return 0;
}

static int vault_done(struct credstore *s, int r) {
        vaultsession_return(s->session);
        if (r == -EACCES)
                (void) vaultsession_relogin(s->session);
        return r;
}

static int store_vault_read(struct credstore *s, const char *record, struct credstore_record **ret,
                            struct credstore_error *err) {
        _cleanup_vault_secret_ struct vault_secret *sec = NULL;
        struct vault_client *c;
        struct vault_kv_path p;
        struct vault_error e = {};
        int r = vault_borrow(s, &c, err);
        if (r < 0)
                return r;
        r = vault_path(s, c, record, &p, err);
        if (r >= 0) {
                r = vault_kv_read(c, &p, 0, &sec, &e);
                if (r < 0)
                        (void) from_vault(err, r, &e);
        }
        r = vault_done(s, r);
        if (r < 0)
                return r;

        struct rec_builder b = {};
        if (sec->n_fields == 0 || sec->n_fields > CREDSTORE_MAX_FIELDS)
                return fail(err, -EBADMSG, p.data_path, "record '%s' has %zu fields (1..%u)",
                            record, sec->n_fields, CREDSTORE_MAX_FIELDS);
        for (size_t i = 0; i < sec->n_fields; i++) {
                const struct vault_field *f = &sec->fields[i];
                if (f->type != VAULT_VALUE_STRING || !field_valid(f->name) ||
                    memchr(f->value, '\0', f->value_len))
                        return fail(err, -EBADMSG, p.data_path,
                                    "record '%s': a field that is not a string of this store "
                                    "(field %zu)",
                                    record, i);
                b.names[b.n] = f->name;
                b.values[b.n] = f->value;
                b.lens[b.n++] = f->value_len;
        }
        struct credstore_version v = {.kv = sec->version};
        r = rec_build(&b, &v, ret);
        if (r < 0)
                return fail(err, r, p.data_path, "out of memory");
        ok_err(err);
        return 0;
}

static int store_vault_write(struct credstore *s, const char *record,
                             const struct credstore_field *f, size_t n,
                             const struct credstore_version *expected,
                             struct credstore_version *ret_version, struct credstore_error *err) {
        struct vault_field vf[CREDSTORE_MAX_FIELDS];
        struct vault_client *c;
        struct vault_kv_path p;
        struct vault_error e = {};
        int64_t version = 0;

        for (size_t i = 0; i < n; i++)
                vf[i] = (struct vault_field){
                        .name = f[i].name, .value = f[i].value, .value_len = f[i].value_len};
        int r = vault_borrow(s, &c, err);
        if (r < 0)
                return r;
        r = vault_path(s, c, record, &p, err);
        if (r < 0)
                return vault_done(s, r);
        if (expected) {
                r = vault_kv_write(c, &p, vf, n, expected->kv, &version, &e);
        } else {
                r = vault_kv_write(c, &p, vf, n, 0, &version, &e);
                if (r == -ESTALE) {
                        /* cas=0 fails when any version exists, also one deleted or destroyed:
                         * such a record reads as absent, so it may be written over. */
                        struct vault_kv_metadata m = {};
                        struct vault_error me = {};
                        if (vault_kv_metadata(c, &p, &m, &me) >= 0 &&
                            (m.current_deleted || m.current_destroyed) && m.current_version > 0)
                                r = vault_kv_write(c, &p, vf, n, m.current_version, &version, &e);
                }
                if (r == -ESTALE)
                        r = -EEXIST;
        }
        if (r < 0)
                (void) from_vault(err, r, &e);
        r = vault_done(s, r);
        if (r < 0) {
                if (r == -EEXIST && err)
                        (void) snprintf(err->message, sizeof(err->message),
                                        "record '%s' exists already (another replica wrote it)",
                                        record);
                return r;
        }
        if (ret_version)
                *ret_version = (struct credstore_version){.kv = version};
        ok_err(err);
        return 0;
}

/* ---- kubernetes ---- */

#define KSECRET_DOC_MAX (2u * KUBE_MAX_BODY)

static void secret_path(const struct credstore *s, bool collection, char *buf, size_t n) {
        if (collection)
                (void) snprintf(buf, n, "/api/v1/namespaces/%s/secrets", s->namespace_);
        else
                (void) snprintf(buf, n, "/api/v1/namespaces/%s/secrets/%s", s->namespace_,
                                s->secret_name);
}

static bool key_in_record(const char *key, const char *record, const char **ret_field) {
        size_t rl = strlen(record);
        if (strncmp(key, record, rl) != 0 || key[rl] != '.' || key[rl + 1] == '\0')
                return false;
        if (ret_field)
                *ret_field = key + rl + 1;
        return true;
}

static int secret_rv(const struct json_doc *d, const char *path, struct credstore_version *ret,
                     struct credstore_error *err) {
        const char *rv = NULL;
        if (json_get_string(json_get(json_doc_root((struct json_doc *) d), "metadata"),
                            "resourceVersion", &rv) < 0 ||
            !*rv || strlen(rv) >= sizeof(ret->rv))
                return fail(err, -EBADMSG, path, "the Secret has no usable resourceVersion");
        *ret = (struct credstore_version){};
        (void) snprintf(ret->rv, sizeof(ret->rv), "%s", rv);
        return 0;
}

static int kube_read(struct credstore *s, const char *record, struct credstore_record **ret,
                     struct credstore_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf values =
                BUF_INIT((size_t) CREDSTORE_MAX_FIELDS * (CREDSTORE_VALUE_MAX + 1), BUF_SECURE);
        struct kube_error ke = {};
        char path[512];
        size_t offs[CREDSTORE_MAX_FIELDS];
        struct rec_builder b = {};
        struct credstore_version v;

        secret_path(s, false, path, sizeof(path));
        int r = kube_get(s->kube, path, &d, &ke);
        if (r == -ENOENT)
                return fail(err, r, path, "record '%s' is absent (no Secret %s/%s)", record,
                            s->namespace_, s->secret_name);
        if (r < 0)
                return from_kube(err, r, path, &ke);
        r = secret_rv(d, path, &v, err);
        if (r < 0)
                return r;
        const struct json_value *data = json_get(json_doc_root(d), "data");
        JSON_FOREACH(kv, data) {
                const char *field, *enc;
                if (!key_in_record(json_key(kv), record, &field))
                        continue;
                if (b.n >= CREDSTORE_MAX_FIELDS || !field_valid(field) || json_string(kv, &enc) < 0)
                        return fail(err, -EBADMSG, path,
                                    "record '%s': a data key that is not a field of this store",
                                    record);
                offs[b.n] = values.len;
                r = base64_decode(&values, enc, strlen(enc), false);
                if (r >= 0 && memchr(values.data + offs[b.n], '\0', values.len - offs[b.n]))
                        r = -EBADMSG;
                if (r >= 0)
                        r = buf_append_byte(&values, 0);
                if (r < 0)
                        return fail(err, r == -E2BIG ? r : -EBADMSG, path,
                                    "record '%s': field '%s' is not valid base64 text of this "
                                    "store",
                                    record, field);
                b.names[b.n] = field;
                b.lens[b.n] = values.len - offs[b.n] - 1;
                b.n++;
        }
        if (b.n == 0)
                return fail(err, -ENOENT, path, "record '%s' is absent from the Secret %s/%s",
                            record, s->namespace_, s->secret_name);
        for (size_t i = 0; i < b.n; i++)
                b.values[i] = values.data + offs[i];
        r = rec_build(&b, &v, ret);
        if (r < 0)
                return fail(err, r, path, "out of memory");
        ok_err(err);
        return 0;
}

/* The Secret to send: `old` (NULL: a new one) with the record's keys replaced by f. */
static int build_secret(const struct credstore *s, const struct json_doc *old, const char *record,
                        const struct credstore_field *f, size_t n, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf enc = BUF_INIT(CREDSTORE_VALUE_MAX * 2, BUF_SECURE);
        struct json_value *root, *meta, *labels, *data;
        int r = json_doc_new(JSON_SECURE, KSECRET_DOC_MAX, &d);
        if (r < 0)
                return r;
        root = json_doc_root(d);
        r = json_add_string(d, root, "apiVersion", "v1");
        if (r >= 0)
                r = json_add_string(d, root, "kind", "Secret");
        if (r < 0)
                return r;
        const struct json_value *oroot = old ? json_doc_root((struct json_doc *) old) : NULL;
        if (oroot) {
                r = json_add_copy(d, root, "metadata", json_get(oroot, "metadata"));
                if (r >= 0)
                        r = json_add_copy(d, root, "type", json_get(oroot, "type"));
        } else {
                r = json_add_object(d, root, "metadata", &meta);
                if (r >= 0)
                        r = json_add_string(d, meta, "name", s->secret_name);
                if (r >= 0)
                        r = json_add_string(d, meta, "namespace", s->namespace_);
                if (r >= 0)
                        r = json_add_object(d, meta, "labels", &labels);
                if (r >= 0)
                        r = json_add_string(d, labels, "app.kubernetes.io/managed-by",
                                            "cloudtaser-operator");
                if (r >= 0)
                        r = json_add_string(d, root, "type", "Opaque");
        }
        if (r >= 0)
                r = json_add_object(d, root, "data", &data);
        if (r < 0)
                return r;
        JSON_FOREACH(kv, oroot ? json_get(oroot, "data") : NULL) {
                if (key_in_record(json_key(kv), record, NULL))
                        continue;
                r = json_add_copy(d, data, json_key(kv), kv);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                char key[CREDSTORE_RECORD_MAX + CREDSTORE_FIELD_MAX + 2];
                (void) snprintf(key, sizeof(key), "%s.%s", record, f[i].name);
                buf_reset(&enc);
                r = base64_encode(&enc, f[i].value, f[i].value_len);
                if (r >= 0)
                        r = json_add_stringn(d, data, key, enc.data ? enc.data : "", enc.len);
                if (r < 0)
                        return r;
        }
        return json_print(root, out);
}

static bool record_present(const struct json_doc *d, const char *record) {
        JSON_FOREACH(kv, json_get(json_doc_root((struct json_doc *) d), "data"))
        if (key_in_record(json_key(kv), record, NULL))
                return true;
        return false;
}

static int kube_write(struct credstore *s, const char *record, const struct credstore_field *f,
                      size_t n, const struct credstore_version *expected,
                      struct credstore_version *ret_version, struct credstore_error *err) {
        char path[512], coll[512];
        secret_path(s, false, path, sizeof(path));
        secret_path(s, true, coll, sizeof(coll));

        for (unsigned attempt = 0; attempt < CREDSTORE_UPDATE_RETRIES; attempt++) {
                _cleanup_json_doc_ struct json_doc *d = NULL, *out = NULL;
                _cleanup_buf_ struct buf body = BUF_INIT(KUBE_MAX_BODY, BUF_SECURE);
                struct kube_error ke = {};
                struct credstore_version cur;
                int r = kube_get(s->kube, path, &d, &ke);
                if (r == -ENOENT) {
                        if (expected)
                                return fail(err, -ESTALE, path,
                                            "record '%s' changed: the Secret %s/%s is gone", record,
                                            s->namespace_, s->secret_name);
                        r = build_secret(s, NULL, record, f, n, &body);
                        if (r < 0)
                                return fail(err, r, path, "cannot build the Secret");
                        r = kube_create(s->kube, coll, &body, &out, &ke);
                        if (r == -EEXIST)
                                continue; /* created meanwhile (another record, or this one) */
                        if (r < 0)
                                return from_kube(err, r, coll, &ke);
                } else if (r < 0) {
                        return from_kube(err, r, path, &ke);
                } else {
                        r = secret_rv(d, path, &cur, err);
                        if (r < 0)
                                return r;
                        bool present = record_present(d, record);
                        if (!expected && present)
                                return fail(err, -EEXIST, path,
                                            "record '%s' exists already (another replica wrote "
                                            "it)",
                                            record);
                        if (expected && (!present || strcmp(cur.rv, expected->rv) != 0))
                                return fail(err, -ESTALE, path,
                                            "record '%s' changed: the Secret is at "
                                            "resourceVersion %s, not %s",
                                            record, cur.rv, expected->rv);
                        r = build_secret(s, d, record, f, n, &body);
                        if (r < 0)
                                return fail(err, r, path, "cannot build the Secret");
                        r = kube_update(s->kube, path, &body, &out, &ke);
                        if (r == -ESTALE && !expected)
                                continue; /* another record was written meanwhile: look again */
                        if (r < 0)
                                return from_kube(err, r, path, &ke);
                }
                r = secret_rv(out, path, &cur, err);
                if (r < 0)
                        return r;
                if (ret_version)
                        *ret_version = cur;
                ok_err(err);
                return 0;
        }
        return fail(err, -EAGAIN, path, "the Secret kept changing under %u attempts",
                    CREDSTORE_UPDATE_RETRIES);
}

/* ---- the operations ---- */

int credstore_read(struct credstore *s, const char *record, struct credstore_record **ret,
                   struct credstore_error *err) {
        if (!s || !ret || !record_valid(record))
                return fail(err, -EINVAL, NULL, "invalid record name");
        if (s->backend == CREDSTORE_VAULT)
                return store_vault_read(s, record, ret, err);
        return kube_read(s, record, ret, err);
}

int credstore_create(struct credstore *s, const char *record, const struct credstore_field *fields,
                     size_t n_fields, struct credstore_version *ret_version,
                     struct credstore_error *err) {
        int r = s ? check_fields(record, fields, n_fields, err) : -EINVAL;
        if (r < 0)
                return r;
        if (s->backend == CREDSTORE_VAULT)
                return store_vault_write(s, record, fields, n_fields, NULL, ret_version, err);
        return kube_write(s, record, fields, n_fields, NULL, ret_version, err);
}

int credstore_update(struct credstore *s, const char *record, const struct credstore_field *fields,
                     size_t n_fields, const struct credstore_version *expected,
                     struct credstore_version *ret_version, struct credstore_error *err) {
        int r = s && expected ? check_fields(record, fields, n_fields, err) : -EINVAL;
        if (r < 0)
                return r;
        if (s->backend == CREDSTORE_VAULT) {
                if (expected->kv < 1)
                        return fail(err, -EINVAL, NULL, "record '%s': no vault version to update",
                                    record);
                return store_vault_write(s, record, fields, n_fields, expected, ret_version, err);
        }
        if (!expected->rv[0])
                return fail(err, -EINVAL, NULL, "record '%s': no resourceVersion to update",
                            record);
        return kube_write(s, record, fields, n_fields, expected, ret_version, err);
}

/* ---- the Event ---- */

static void rfc3339_now(char *buf, size_t n) {
        time_t t = time(NULL);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, n, "1970-01-01T00:00:00Z");
}

int credstore_post_weakened_event(struct kube_client *k, const char *namespace_,
                                  const struct credstore_object_ref *io, const char *instance,
                                  struct credstore_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(16384, 0);
        struct json_value *root, *meta, *obj, *src;
        struct kube_error ke = {};
        char path[512], now[32], msg[600];

        if (!k || !io || !namespace_ || !kube_name_valid(namespace_) || !io->name ||
            !kube_name_valid(io->name) || !io->kind || !io->api_version ||
            (io->namespace_ && !kube_name_valid(io->namespace_)))
                return fail(err, -EINVAL, NULL, "invalid namespace or involved object");
        rfc3339_now(now, sizeof(now));
        (void) snprintf(msg, sizeof(msg),
                        "cloudtaser-operator keeps its own credentials (webhook TLS key, broker "
                        "keys and tokens) in the Secret %s/%s (--secret-backend=kubernetes): "
                        "anyone who can read Secrets there, or etcd, can read them. The security "
                        "model is weakened; use --secret-backend=vault.",
                        namespace_, CREDSTORE_DEFAULT_SECRET);
        int r = json_doc_new(0, 16384, &d);
        if (r < 0)
                return fail(err, r, NULL, "out of memory");
        root = json_doc_root(d);
        r = json_add_string(d, root, "apiVersion", "v1");
        if (r >= 0)
                r = json_add_string(d, root, "kind", "Event");
        if (r >= 0)
                r = json_add_object(d, root, "metadata", &meta);
        if (r >= 0)
                r = json_add_string(d, meta, "generateName", "cloudtaser-operator.");
        if (r >= 0)
                r = json_add_string(d, meta, "namespace", namespace_);
        if (r >= 0)
                r = json_add_object(d, root, "involvedObject", &obj);
        if (r >= 0)
                r = json_add_string(d, obj, "apiVersion", io->api_version);
        if (r >= 0)
                r = json_add_string(d, obj, "kind", io->kind);
        if (r >= 0)
                r = json_add_string(d, obj, "name", io->name);
        if (r >= 0)
                r = json_add_string(d, obj, "namespace",
                                    io->namespace_ ? io->namespace_ : namespace_);
        if (r >= 0 && io->uid)
                r = json_add_string(d, obj, "uid", io->uid);
        if (r >= 0)
                r = json_add_string(d, root, "type", "Warning");
        if (r >= 0)
                r = json_add_string(d, root, "reason", "WeakenedSecurityModel");
        if (r >= 0)
                r = json_add_string(d, root, "message", msg);
        if (r >= 0)
                r = json_add_object(d, root, "source", &src);
        if (r >= 0)
                r = json_add_string(d, src, "component", "cloudtaser-operator");
        if (r >= 0)
                r = json_add_string(d, root, "reportingComponent", "cloudtaser-operator");
        if (r >= 0)
                r = json_add_string(d, root, "reportingInstance", instance ? instance : io->name);
        if (r >= 0)
                r = json_add_string(d, root, "firstTimestamp", now);
        if (r >= 0)
                r = json_add_string(d, root, "lastTimestamp", now);
        if (r >= 0)
                r = json_add_int64(d, root, "count", 1);
        if (r >= 0)
                r = json_print(root, &body);
        if (r < 0)
                return fail(err, r, NULL, "cannot build the Event");
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", namespace_);
        r = kube_create(k, path, &body, NULL, &ke);
        if (r < 0)
                return from_kube(err, r, path, &ke);
        ok_err(err);
        return 0;
}
