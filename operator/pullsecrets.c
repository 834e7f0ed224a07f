/* SPDX-License-Identifier: Apache-2.0 */
/* operator/pullsecrets: see pullsecrets.h. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "common/secmem.h"
#include "operator/pullsecrets.h"

#define NS_MAX 63 /* a DNS-1123 label */

struct entry {
        char ns[NS_MAX + 1];
        char name[PULLSECRETS_NAME_MAX + 1];
        char *data; /* secmem, len bytes; NULL: a free slot */
        size_t len;
        uint64_t expires_usec;
        uint64_t last_used;
};

struct pullsecrets {
        struct pullsecrets_options o;
        pthread_mutex_t lock;
        struct entry *e; /* o.max_entries */
        uint64_t tick;
};

static uint64_t now(const struct pullsecrets *p) {
        if (p->o.now_usec)
                return p->o.now_usec(p->o.userdata);
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void entry_clear(struct entry *e) {
        secmem_free(e->data); /* wipes */
        *e = (struct entry){};
}

static bool names_ok(const char *ns, const char *name) {
        return ns && name && ns[0] && name[0] && strlen(ns) <= NS_MAX &&
               strlen(name) <= PULLSECRETS_NAME_MAX;
}

/* (lock held) */
static struct entry *find(struct pullsecrets *p, const char *ns, const char *name) {
        for (unsigned i = 0; i < p->o.max_entries; i++) {
                struct entry *e = &p->e[i];
                if (e->data && strcmp(e->ns, ns) == 0 && strcmp(e->name, name) == 0)
                        return e;
        }
        return NULL;
}

int pullsecrets_new(const struct pullsecrets_options *o, struct pullsecrets **ret) {
        struct pullsecrets_options d = o ? *o : (struct pullsecrets_options){};
        if (d.ttl_s == 0)
                d.ttl_s = 60;
        if (d.max_entries == 0)
                d.max_entries = 256;
        if (d.max_entries > PULLSECRETS_MAX_ENTRIES || !ret)
                return -EINVAL;
        _cleanup_free_ struct pullsecrets *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->e = calloc(d.max_entries, sizeof(*p->e));
        if (!p->e)
                return -ENOMEM;
        p->o = d;
        (void) pthread_mutex_init(&p->lock, NULL);
        *ret = TAKE_PTR(p);
        return 0;
}

struct pullsecrets *pullsecrets_free(struct pullsecrets *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->o.max_entries; i++)
                entry_clear(&p->e[i]);
        free(p->e);
        (void) pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

int pullsecrets_put(struct pullsecrets *p, const char *ns, const char *name, const char *data,
                    size_t len) {
        char *copy = NULL;
        int r;

        if (!p || !names_ok(ns, name) || !data)
                return -EINVAL;
        if (len > PULLSECRETS_MAX_BYTES) {
                pullsecrets_drop(p, ns, name); /* what was kept is no longer what the secret is */
                return -E2BIG;
        }
        r = secmem_alloc(len + 1, (void **) &copy);
        if (r < 0)
                return r;
        memcpy(copy, data, len);

        (void) pthread_mutex_lock(&p->lock);
        uint64_t t = now(p);
        struct entry *slot = find(p, ns, name);
        for (unsigned i = 0; i < p->o.max_entries && !slot; i++)
                if (!p->e[i].data)
                        slot = &p->e[i];
        for (unsigned i = 0; i < p->o.max_entries && !slot; i++)
                if (p->e[i].expires_usec <= t)
                        slot = &p->e[i];
        if (!slot) {
                slot = &p->e[0];
                for (unsigned i = 1; i < p->o.max_entries; i++)
                        if (p->e[i].last_used < slot->last_used)
                                slot = &p->e[i];
        }
        entry_clear(slot);
        memcpy(slot->ns, ns, strlen(ns) + 1);
        memcpy(slot->name, name, strlen(name) + 1);
        slot->data = copy;
        slot->len = len;
        slot->expires_usec = t + (uint64_t) p->o.ttl_s * 1000000u;
        slot->last_used = ++p->tick;
        (void) pthread_mutex_unlock(&p->lock);
        return 0;
}

void pullsecrets_drop(struct pullsecrets *p, const char *ns, const char *name) {
        if (!p || !names_ok(ns, name))
                return;
        (void) pthread_mutex_lock(&p->lock);
        struct entry *e = find(p, ns, name);
        if (e)
                entry_clear(e);
        (void) pthread_mutex_unlock(&p->lock);
}

int pullsecrets_get(struct pullsecrets *p, const char *ns, const char *name, struct buf *out) {
        int r = -ENOENT;

        if (!p || !names_ok(ns, name) || !out)
                return -ENOENT;
        (void) pthread_mutex_lock(&p->lock);
        struct entry *e = find(p, ns, name);
        if (e && now(p) >= e->expires_usec)
                entry_clear(e);
        else if (e) {
                size_t before = out->len;
                r = buf_append(out, e->data, e->len);
                if (r >= 0)
                        r = buf_append_byte(out, 0);
                if (r < 0)
                        out->len = before;
                else
                        e->last_used = ++p->tick;
        }
        (void) pthread_mutex_unlock(&p->lock);
        return r < 0 ? r : 0;
}

size_t pullsecrets_count(struct pullsecrets *p) {
        size_t n = 0;
        if (!p)
                return 0;
        (void) pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->o.max_entries; i++)
                n += p->e[i].data != NULL;
        (void) pthread_mutex_unlock(&p->lock);
        return n;
}
