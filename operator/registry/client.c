/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/client.c: the client (trust anchors, cache, counters) and registry_lookup().
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "operator/registry/internal.h"

static const char *const ca_bundle_paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, our images */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
        "/etc/ssl/ca-bundle.pem",             /* openSUSE */
        "/etc/ssl/cert.pem",                  /* Alpine, BSDs */
};

static void fclosep_(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

static int read_whole_file(const char *path, struct buf *out) {
        _cleanup_(fclosep_) FILE *f = NULL;
        char chunk[8192];
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        for (;;) {
                size_t n = fread(chunk, 1, sizeof(chunk), f);
                if (n > 0) {
                        int r = buf_append(out, chunk, n);
                        if (r < 0)
                                return r;
                }
                if (n < sizeof(chunk)) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        return buf_append_byte(out, '\n');
}

static void insecure_free(struct registry_client *r) {
        for (size_t i = 0; i < r->n_insecure; i++)
                free(r->insecure[i]);
        free(r->insecure);
        r->insecure = NULL;
        r->n_insecure = 0;
}

static int copy_insecure(const struct registry_options *o, struct registry_client *r) {
        if (o->n_insecure == 0)
                return 0;
        if (!o->insecure || o->n_insecure > REGISTRY_MAX_INSECURE)
                return -EINVAL;
        for (size_t i = 0; i < o->n_insecure; i++)
                if (!o->insecure[i] || strlen(o->insecure[i]) > REGISTRY_NAME_MAX ||
                    !registry_domain_valid(o->insecure[i], strlen(o->insecure[i])))
                        return -EINVAL;
        r->insecure = calloc(o->n_insecure, sizeof(*r->insecure));
        if (!r->insecure)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_insecure; i++) {
                r->insecure[i] = strdup(o->insecure[i]);
                if (!r->insecure[i]) {
                        r->n_insecure = i;
                        insecure_free(r);
                        return -ENOMEM;
                }
        }
        r->n_insecure = o->n_insecure;
        return 0;
}

bool registry_is_insecure(const struct registry_client *r, const struct registry_ref *ref) {
        for (size_t i = 0; i < r->n_insecure; i++)
                if (strcasecmp(r->insecure[i], ref->domain) == 0 ||
                    strcasecmp(r->insecure[i], ref->host) == 0)
                        return true;
        return false;
}

int registry_client_new(const struct registry_options *o, struct registry_client **ret) {
        _cleanup_buf_ struct buf ca = BUF_INIT(16u * 1024 * 1024, 0);
        struct registry_client *r;
        int q;

        if (!o || !ret)
                return -EINVAL;
        if (o->cache_entries > MAX_CACHE_ENTRIES)
                return -EINVAL;
        /* The system bundle (the first that exists), plus the extra file. */
        for (size_t i = 0; i < ELEMENTSOF(ca_bundle_paths); i++) {
                q = read_whole_file(ca_bundle_paths[i], &ca);
                if (q == 0)
                        break;
                if (q != -ENOENT)
                        return q;
        }
        if (o->ca_file) {
                q = read_whole_file(o->ca_file, &ca);
                if (q < 0)
                        return q;
        }
        if (ca.len == 0)
                return -ENOENT; /* no trust anchors at all */

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        q = copy_insecure(o, r);
        if (q < 0) {
                free(r);
                return q;
        }
        r->timeout_ms = o->timeout_ms ?: DEFAULT_TIMEOUT_MS;
        r->tag_ttl_s = o->tag_ttl_s ?: DEFAULT_TAG_TTL_S;
        r->n_cache = o->cache_entries ?: DEFAULT_CACHE_ENTRIES;
        r->hooks = o->hooks;
        r->cache = calloc(r->n_cache, sizeof(*r->cache));
        q = r->cache ? buf_steal(&ca, &r->ca_pem, &r->ca_pem_len) : -ENOMEM;
        if (q >= 0 && getrandom(r->salt, sizeof(r->salt), 0) != (ssize_t) sizeof(r->salt))
                q = -EIO;
        if (q >= 0)
                q = registry_cloud_env_load(r, o->env);
        if (q >= 0 && pthread_mutex_init(&r->lock, NULL) != 0)
                q = -ENOMEM;
        if (q >= 0 && pthread_cond_init(&r->flight_done, NULL) != 0) {
                pthread_mutex_destroy(&r->lock);
                q = -ENOMEM;
        }
        if (q < 0) {
                registry_cloud_env_done(r);
                free(r->cache);
                free(r->ca_pem);
                insecure_free(r);
                free(r);
                return q;
        }
        *ret = r;
        return 0;
}

struct registry_client *registry_client_free(struct registry_client *r) {
        if (!r)
                return NULL;
        registry_cache_done(r);
        registry_cloud_env_done(r);
        free(r->ca_pem);
        insecure_free(r);
        explicit_bzero(r->salt, sizeof(r->salt));
        for (size_t i = 0; i < ELEMENTSOF(r->flights); i++)
                registry_image_config_done(&r->flights[i].cfg);
        pthread_cond_destroy(&r->flight_done);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

void registry_get_stats(const struct registry_client *r, struct registry_stats *ret) {
        struct registry_client *m = (struct registry_client *) r; /* the lock is not state */
        if (!r || !ret)
                return;
        pthread_mutex_lock(&m->lock);
        *ret = r->stats;
        pthread_mutex_unlock(&m->lock);
}

/* Cache keys: "<domain>/<path>{:tag|@digest}|<platform>|<scope>", scope "-" for results read
 * without credentials, else registry_credential_scope(). */
void registry_credential_scope(const struct registry_client *r, const struct registry_ref *ref,
                               const char *user_pass, char out[33]) {
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        sha256_init(&c);
        sha256_update(&c, r->salt, sizeof(r->salt));
        sha256_update(&c, ref->host, strlen(ref->host) + 1);
        sha256_update(&c, user_pass, strlen(user_pass));
        sha256_final(&c, d);
        sha256_to_hex(d, hex);
        explicit_bzero(d, sizeof(d));
        memcpy(out, hex, 32);
        out[32] = '\0';
}

static void cache_key(const struct registry_ref *ref, bool by_digest, const char *digest,
                      const char *pstr, const char *scope, char *out, size_t sz) {
        (void) snprintf(out, sz, "%s/%s%s%s|%s|%s", ref->domain, ref->path, by_digest ? "@" : ":",
                        by_digest ? digest : ref->tag, pstr, scope);
}

/* Coalescing: the flight of a reference, platform and credential set (their scopes, salted). */
static void flight_key(const struct registry_ref *ref, const char *pstr, char (*scopes)[33],
                       size_t n_scopes, char out[SHA256_HEX_SIZE]) {
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        char key[2048];
        cache_key(ref, ref->digest[0], ref->digest, pstr, "", key, sizeof(key));
        sha256_init(&c);
        sha256_update(&c, key, strlen(key) + 1);
        for (size_t i = 0; i < n_scopes; i++)
                sha256_update(&c, scopes[i], strlen(scopes[i]) + 1);
        sha256_final(&c, d);
        sha256_to_hex(d, out);
}

static void flight_clear(struct registry_flight *f) {
        registry_image_config_done(&f->cfg);
        *f = (struct registry_flight){};
}

/*
 * Joins the flight of key when one is in the air: waits for its result (at most the lookup's
 * own bound past the leader's) and returns it (a copy in *ret, the error in err). Otherwise
 * -EAGAIN: the caller leads, and publishes into *ret_lead (NULL when the table is full: no
 * coalescing then).
 */
static int flight_join(struct registry_client *r, const char *key,
                       struct registry_flight **ret_lead, struct registry_image_config *ret,
                       char *err, size_t errlen) {
        struct registry_flight *f = NULL, *free_slot = NULL;
        int q;

        *ret_lead = NULL;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < ELEMENTSOF(r->flights); i++) {
                if (!r->flights[i].key[0]) {
                        if (!free_slot)
                                free_slot = &r->flights[i];
                } else if (strcmp(r->flights[i].key, key) == 0) {
                        f = &r->flights[i];
                        break;
                }
        }
        if (!f) {
                if (free_slot) {
                        memcpy(free_slot->key, key, SHA256_HEX_SIZE);
                        *ret_lead = free_slot;
                }
                pthread_mutex_unlock(&r->lock);
                return -EAGAIN;
        }
        f->waiters++;
        r->stats.coalesced++;
        struct timespec until;
        (void) clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t) (2 * r->timeout_ms / 1000u + 1u);
        while (!f->done)
                if (pthread_cond_timedwait(&r->flight_done, &r->lock, &until) == ETIMEDOUT)
                        break;
        if (f->done) {
                q = f->q;
                if (q == 0)
                        q = registry_image_config_copy(&f->cfg, ret);
                registry_set_err(err, errlen, "%s", f->err);
        } else {
                q = -ETIMEDOUT;
                registry_set_err(
                        err, errlen,
                        "another lookup of the same image did not finish in time; " FIX_HINT);
        }
        f->waiters--;
        if (f->done && f->waiters == 0)
                flight_clear(f);
        pthread_mutex_unlock(&r->lock);
        return q;
}

/* The leader's result, for the followers; the last one out frees the flight. */
static void flight_publish(struct registry_client *r, struct registry_flight *f, int q,
                           const struct registry_image_config *cfg, const char *err) {
        if (!f)
                return;
        pthread_mutex_lock(&r->lock);
        f->done = true;
        f->q = q;
        if (q == 0 && registry_image_config_copy(cfg, &f->cfg) < 0)
                f->q = -ENOMEM;
        registry_set_err(f->err, sizeof(f->err), "%s", err ? err : "");
        pthread_cond_broadcast(&r->flight_done);
        if (f->waiters == 0)
                flight_clear(f);
        pthread_mutex_unlock(&r->lock);
}

static int do_lookup(struct registry_client *r, const char *image, const char *os, const char *arch,
                     const char *const *configs, size_t n_configs, bool cached_only,
                     struct registry_image_config *ret, char *err, size_t errlen, bool *ret_hit) {
        _cleanup_(registry_credentials_done) struct registry_credentials creds = {};
        struct registry_image_config cfg = {};
        struct registry_ref ref;
        struct registry_platform plat;
        char pstr[80], key[2048], top_digest[80] = "", scopes[2 + REGISTRY_MAX_CREDENTIALS][33];
        const char *why = NULL;
        int q;

        q = registry_parse_reference(image, &ref, &why);
        if (q < 0) {
                registry_set_err(err, errlen,
                                 "invalid image reference \"%.200s\": %s: fix the image",
                                 image ? image : "", why ? why : "invalid");
                return q;
        }
        q = registry_platform_normalize(os, arch, &plat);
        if (q < 0) {
                registry_set_err(err, errlen, "invalid node platform \"%.32s/%.32s\"", os ? os : "",
                                 arch ? arch : "");
                return q;
        }
        registry_platform_string(&plat, pstr, sizeof(pstr));
        /* Matching the credentials is no I/O: the cache-only pass does it too, so that results
         * read with one of the pod's own credentials are found there. */
        q = registry_match_credentials(configs, n_configs, &ref, &creds);
        if (q < 0 && cached_only)
                return -EWOULDBLOCK; /* registry_lookup() says why */
        if (q < 0) {
                registry_set_err(err, errlen, "cannot read the imagePullSecrets: %s", strerror(-q));
                return q;
        }

        /* The cache: results read anonymously, then those read with one of our credentials,
         * then (cloud registries) those read with the operator's own identity. */
        memcpy(scopes[0], "-", 2);
        for (size_t i = 0; i < creds.n; i++)
                registry_credential_scope(r, &ref, creds.c[i].user_pass, scopes[1 + i]);
        memcpy(scopes[1 + creds.n], "cloud", 6);
        size_t n_scopes = 1 + creds.n + (registry_cloud_match(ref.host, NULL) ? 1 : 0);
        for (size_t i = 0; i < n_scopes; i++) {
                cache_key(&ref, ref.digest[0], ref.digest, pstr, scopes[i], key, sizeof(key));
                if (registry_cache_get(r, key, ret) == 0) {
                        *ret_hit = true;
                        return 0;
                }
        }
        if (cached_only)
                return -EWOULDBLOCK;

        /* The same lookup already in the air: its result, not a second request. */
        struct registry_flight *lead;
        char fkey[SHA256_HEX_SIZE];
        flight_key(&ref, pstr, scopes, n_scopes, fkey);
        q = flight_join(r, fkey, &lead, ret, err, errlen);
        if (q != -EAGAIN)
                return q;

        struct registry_session s = {
                .r = r,
                .ref = &ref,
                .creds = &creds,
                .deadline = registry_mono_usec() + (uint64_t) r->timeout_ms * 1000u,
                .cred_used = -1,
                .insecure = registry_is_insecure(r, &ref),
                .err = err,
                .errlen = errlen,
        };
        (void) snprintf(s.base, sizeof(s.base), "https://%s", ref.host);
        q = registry_resolve(&s, &plat, &cfg, top_digest);
        registry_session_set_auth(&s, NULL);
        flight_publish(r, lead, q < 0 ? q : 0, &cfg, err);
        if (q < 0) {
                registry_image_config_done(&cfg);
                return q;
        }
        const char *scope = s.cloud_used       ? "cloud"
                            : s.cred_used >= 0 ? scopes[1 + s.cred_used]
                                               : scopes[0];
        cache_key(&ref, true, top_digest, pstr, scope, key, sizeof(key));
        (void) registry_cache_put(r, key, false, &cfg); /* a full cache only costs a lookup */
        if (!ref.digest[0]) {
                cache_key(&ref, false, NULL, pstr, scope, key, sizeof(key));
                (void) registry_cache_put(r, key, true, &cfg);
        }
        *ret = cfg;
        return 0;
}

static void count_lookup(struct registry_client *r, bool hit, int q) {
        pthread_mutex_lock(&r->lock);
        r->stats.lookups++;
        if (hit)
                r->stats.cache_hits++;
        if (q < 0)
                r->stats.errors++;
        pthread_mutex_unlock(&r->lock);
}

int registry_lookup(struct registry_client *r, const char *image, const char *os, const char *arch,
                    const char *const *dockerconfigjsons, size_t n_configs,
                    struct registry_image_config *ret, char *err, size_t errlen) {
        bool hit = false;
        int q;

        if (err && errlen)
                err[0] = '\0';
        if (!r || !image || !ret) {
                registry_set_err(err, errlen, "registry lookup: invalid arguments");
                return -EINVAL;
        }
        q = do_lookup(r, image, os, arch, dockerconfigjsons, n_configs, false, ret, err, errlen,
                      &hit);
        count_lookup(r, hit, q);
        return q;
}

int registry_lookup_cached(struct registry_client *r, const char *image, const char *os,
                           const char *arch, const char *const *dockerconfigjsons, size_t n_configs,
                           struct registry_image_config *ret, char *err, size_t errlen) {
        bool hit = false;
        int q;

        if (err && errlen)
                err[0] = '\0';
        if (!r || !image || !ret) {
                registry_set_err(err, errlen, "registry lookup: invalid arguments");
                return -EINVAL;
        }
        q = do_lookup(r, image, os, arch, dockerconfigjsons, n_configs, true, ret, err, errlen,
                      &hit);
        if (q != -EWOULDBLOCK) /* a miss: registry_lookup() counts it */
                count_lookup(r, hit, q);
        return q;
}
