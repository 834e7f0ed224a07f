/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/pullsecrets: the contents of the imagePullSecrets the entrypoint lookups last read,
 * by namespace and name, for the webhook's event loop (issue 11, item 12). The loop never reads
 * a secret through the API (that is network I/O), yet an image whose result the registry cached
 * under a pull secret's credential only (operator/registry.h: the credential's salted scope is
 * part of the key) must be answered there and then, not queued on the lookup pool: the loop
 * takes the pod's own pull secrets from here, as a pool worker last read them, and gives them
 * to registry_lookup_cached(). See "How lookups run" in docs/operator.md.
 *
 * Isolation: an entry is found only by the review's namespace (the API server's, not the pod
 * author's) and a name the pod lists in imagePullSecrets. A pod never gets the contents of a
 * secret of another namespace, nor of one it does not name, so a result cached under a
 * credential answers only for the pods that hold that credential, as the kubelet would pull
 * with it; a pod that only knows another tenant's image reference still needs a real lookup,
 * which fails without the credential.
 *
 * Freshness: an entry is kept ttl_s from its read (default 60, on the clock of o->now_usec); a
 * worker's next read replaces it; a read that fails (the secret deleted, or no longer readable)
 * drops it (pullsecrets_drop()). So a deleted or changed secret goes on answering from the loop
 * at most ttl_s.
 *
 * Limits: max_entries (default 256, at most PULLSECRETS_MAX_ENTRIES), the least recently used
 * replaced first; a secret over PULLSECRETS_MAX_BYTES is not kept (its pods are looked up on the
 * pool, as before). Contents live in secmem and are wiped when dropped, replaced or expired.
 * Nothing here logs. Thread-safe (one lock; no I/O under it).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PULLSECRETS_MAX_ENTRIES 4096
#define PULLSECRETS_MAX_BYTES (64u * 1024u) /* one secret's .dockerconfigjson */
#define PULLSECRETS_NAME_MAX 253            /* a DNS-1123 subdomain */

struct pullsecrets_options {
        unsigned ttl_s;       /* default 60 */
        unsigned max_entries; /* default 256; 1..PULLSECRETS_MAX_ENTRIES */
        /* The clock (microseconds, monotonic); NULL: CLOCK_MONOTONIC. */
        uint64_t (*now_usec)(void *userdata);
        void *userdata;
};

struct pullsecrets;

/* -EINVAL options over the bounds, -ENOMEM. */
int pullsecrets_new(const struct pullsecrets_options *o, struct pullsecrets **ret);
/* Wipes and frees every entry. Accepts NULL. Returns NULL. */
struct pullsecrets *pullsecrets_free(struct pullsecrets *p);

/* Keeps len bytes of data (a secret's .dockerconfigjson, decoded) as ns/name, replacing what was
 * there. -EINVAL (empty or over-long names, NULL data), -E2BIG over PULLSECRETS_MAX_BYTES (an
 * older entry of ns/name is dropped then too), -ENOMEM. */
int pullsecrets_put(struct pullsecrets *p, const char *ns, const char *name, const char *data,
                    size_t len);
/* Forgets ns/name (its read failed). */
void pullsecrets_drop(struct pullsecrets *p, const char *ns, const char *name);

/* Appends the kept contents of ns/name and a NUL to out (give a BUF_SECURE buffer): 0;
 * -ENOENT none kept, or expired (then wiped); buf_append()'s errors (out unchanged). */
int pullsecrets_get(struct pullsecrets *p, const char *ns, const char *name, struct buf *out);

/* Entries kept now (for tests and metrics). */
size_t pullsecrets_count(struct pullsecrets *p);

static inline void pullsecrets_freep(struct pullsecrets **p) {
        pullsecrets_free(*p);
}
#define _cleanup_pullsecrets_ __attribute__((cleanup(pullsecrets_freep)))
