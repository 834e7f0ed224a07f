/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/cache.c: the lookup cache (by manifest digest, and by tag for tag_ttl_s; LRU
 * eviction, byte budget).
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/macro.h"
#include "operator/registry/internal.h"

uint64_t registry_hook_now(const struct registry_client *r) {
        return r->hooks.now_usec ? r->hooks.now_usec(r->hooks.userdata) : registry_mono_usec();
}

static size_t strv_bytes(char *const *v, size_t n) {
        size_t b = 0;
        for (size_t i = 0; v && i < n; i++)
                b += strlen(v[i]) + 1;
        return b;
}

static void cache_entry_clear(struct registry_client *r, struct cache_entry *e) {
        r->cache_bytes -= e->bytes;
        free(e->key);
        registry_image_config_done(&e->cfg);
        *e = (struct cache_entry){};
}

int registry_cache_get(struct registry_client *r, const char *key,
                       struct registry_image_config *ret) {
        int q = -ENOENT;
        pthread_mutex_lock(&r->lock);
        uint64_t now = registry_hook_now(r);
        for (size_t i = 0; i < r->n_cache; i++) {
                struct cache_entry *e = &r->cache[i];
                if (!e->key || strcmp(e->key, key) != 0)
                        continue;
                if (e->expires_usec && now >= e->expires_usec) {
                        cache_entry_clear(r, e);
                        break;
                }
                q = registry_image_config_copy(&e->cfg, ret);
                if (q == 0)
                        e->last_used = ++r->tick;
                break;
        }
        pthread_mutex_unlock(&r->lock);
        return q;
}

int registry_cache_put(struct registry_client *r, const char *key, bool ttl,
                       const struct registry_image_config *c) {
        struct registry_image_config copy;
        _cleanup_free_ char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        size_t bytes = strlen(key) + 1 + strv_bytes(c->entrypoint, c->n_entrypoint) +
                       strv_bytes(c->cmd, c->n_cmd);
        if (bytes > CACHE_MAX_BYTES / 4)
                return -E2BIG; /* not cached: registry_decode_config never makes one this big */
        int q = registry_image_config_copy(c, &copy);
        if (q < 0)
                return q;

        pthread_mutex_lock(&r->lock);
        uint64_t now = registry_hook_now(r);
        struct cache_entry *slot = NULL;
        for (size_t i = 0; i < r->n_cache && !slot; i++)
                if (r->cache[i].key && strcmp(r->cache[i].key, key) == 0)
                        slot = &r->cache[i];
        for (size_t i = 0; i < r->n_cache && !slot; i++)
                if (!r->cache[i].key)
                        slot = &r->cache[i];
        if (!slot) {
                /* expired entries first, then the least recently used */
                for (size_t i = 0; i < r->n_cache; i++) {
                        struct cache_entry *e = &r->cache[i];
                        if (e->expires_usec && now >= e->expires_usec) {
                                slot = e;
                                break;
                        }
                        if (!slot || e->last_used < slot->last_used)
                                slot = e;
                }
        }
        cache_entry_clear(r, slot);
        /* The byte budget: the least recently used others go until the new entry fits. */
        while (r->cache_bytes + bytes > CACHE_MAX_BYTES) {
                struct cache_entry *lru = NULL;
                for (size_t i = 0; i < r->n_cache; i++)
                        if (r->cache[i].key && (!lru || r->cache[i].last_used < lru->last_used))
                                lru = &r->cache[i];
                if (!lru)
                        break;
                cache_entry_clear(r, lru);
        }
        slot->key = TAKE_PTR(k);
        slot->bytes = bytes;
        r->cache_bytes += bytes;
        slot->cfg = copy;
        slot->expires_usec = ttl ? now + (uint64_t) r->tag_ttl_s * 1000000u : 0;
        if (ttl && slot->expires_usec == 0)
                slot->expires_usec = 1;
        slot->last_used = ++r->tick;
        pthread_mutex_unlock(&r->lock);
        return 0;
}

void registry_cache_done(struct registry_client *r) {
        for (size_t i = 0; i < r->n_cache; i++)
                cache_entry_clear(r, &r->cache[i]);
        free(r->cache);
        r->cache = NULL;
        r->n_cache = 0;
}
