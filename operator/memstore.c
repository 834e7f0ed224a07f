/* SPDX-License-Identifier: Apache-2.0 */
/* operator/memstore: see memstore.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operator/memstore.h"

struct memstore {
        struct {
                char name[32];
                struct credentials_record rec;
        } r[MEMSTORE_MAX_RECORDS];
        size_t n;
};

int memstore_new(struct memstore **ret) {
        if (!ret)
                return -EINVAL;
        *ret = calloc(1, sizeof(struct memstore));
        return *ret ? 0 : -ENOMEM;
}

struct memstore *memstore_free(struct memstore *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                credentials_record_done(&m->r[i].rec);
        free(m);
        return NULL;
}

struct credentials_record *memstore_find(struct memstore *m, const char *name) {
        for (size_t i = 0; m && i < m->n; i++)
                if (strcmp(m->r[i].name, name) == 0)
                        return &m->r[i].rec;
        return NULL;
}

size_t memstore_count(const struct memstore *m) {
        return m ? m->n : 0;
}

/* dst (empty) gets src's fields and version. */
static int copy(struct credentials_record *dst, const struct credentials_record *src) {
        for (size_t i = 0; i < src->n; i++) {
                int r = credentials_record_set(dst, src->f[i].name, src->f[i].value.data,
                                               src->f[i].value.len);
                if (r < 0) {
                        credentials_record_done(dst);
                        return r;
                }
        }
        dst->version = src->version;
        return 0;
}

static int mem_read(void *ud, const char *name, struct credentials_record *ret) {
        struct credentials_record *r = memstore_find(ud, name);
        return r ? copy(ret, r) : -ENOENT;
}

static int mem_create(void *ud, const char *name, const struct credentials_record *rec) {
        struct memstore *m = ud;
        if (memstore_find(m, name))
                return -EEXIST;
        if (m->n >= MEMSTORE_MAX_RECORDS || strlen(name) >= sizeof(m->r[0].name))
                return -ENOSPC;
        struct credentials_record *r = &m->r[m->n].rec;
        int e = copy(r, rec);
        if (e < 0)
                return e;
        (void) snprintf(m->r[m->n].name, sizeof(m->r[0].name), "%s", name);
        r->version = (struct credentials_version){.n = 1};
        m->n++;
        return 0;
}

static int mem_update(void *ud, const char *name, const struct credentials_record *rec,
                      const struct credentials_version *version) {
        struct credentials_record *r = memstore_find(ud, name), next = {};
        if (!r)
                return -ENOENT;
        if (r->version.n != version->n)
                return -ESTALE;
        int e = copy(&next, rec);
        if (e < 0)
                return e;
        next.version = (struct credentials_version){.n = version->n + 1};
        credentials_record_done(r);
        *r = next;
        return 0;
}

struct credentials_store memstore_ops(struct memstore *m) {
        return (struct credentials_store){
                .read = mem_read, .create = mem_create, .update = mem_update, .userdata = m};
}
