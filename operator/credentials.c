/* SPDX-License-Identifier: Apache-2.0 */
/* operator/credentials: see credentials.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "operator/credentials.h"
#include "operator/webhookconfig.h"

#define MAX_NAME 254
#define MAX_HOSTS (MATERIAL_SERVICE_NAMES + MATERIAL_MAX_HOSTS)

/* ---- records ------------------------------------------------------------------------------ */

const struct buf *credentials_record_get(const struct credentials_record *r, const char *name) {
        for (size_t i = 0; r && i < r->n; i++)
                if (strcmp(r->f[i].name, name) == 0)
                        return &r->f[i].value;
        return NULL;
}

int credentials_record_set(struct credentials_record *r, const char *name, const char *value,
                           size_t len) {
        if (!r || !name || !*name || (!value && len))
                return -EINVAL;
        if (strlen(name) >= CREDENTIALS_FIELD_NAME || len > CREDENTIALS_MAX_VALUE)
                return -E2BIG;
        struct buf *b = (struct buf *) credentials_record_get(r, name);
        if (!b) {
                if (r->n >= CREDENTIALS_MAX_FIELDS)
                        return -E2BIG;
                b = &r->f[r->n].value;
                buf_init(b, CREDENTIALS_MAX_VALUE, BUF_SECURE);
                (void) snprintf(r->f[r->n].name, CREDENTIALS_FIELD_NAME, "%s", name);
                r->n++;
        }
        buf_reset(b);
        return buf_append(b, value, len);
}

void credentials_record_done(struct credentials_record *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                buf_done(&r->f[i].value);
        *r = (struct credentials_record){};
}

static int record_copy(struct credentials_record *dst, const struct credentials_record *src) {
        struct credentials_record t = {.version = src->version};
        for (size_t i = 0; i < src->n; i++) {
                int r = credentials_record_set(&t, src->f[i].name, src->f[i].value.data,
                                               src->f[i].value.len);
                if (r < 0) {
                        credentials_record_done(&t);
                        return r;
                }
        }
        credentials_record_done(dst);
        *dst = t;
        return 0;
}

/* Whether what is served from a and b is the same: the webhook's pair and the CA bundle. */
static bool served_same(const struct credentials_record *a, const struct credentials_record *b) {
        static const char *const fields[] = {"tls.crt", "tls.key", "ca.crt"};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct buf *x = credentials_record_get(a, fields[i]),
                                 *y = credentials_record_get(b, fields[i]);
                if (!x || !y || x->len != y->len || memcmp(x->data, y->data, x->len) != 0)
                        return false;
        }
        return true;
}

/* What this process keeps of webhook-tls: the pair it serves and the CA bundle. The CA's key is
 * the signer's; the copy read with the record is wiped with it. */
static int served_copy(struct credentials_record *dst, const struct credentials_record *src) {
        static const char *const fields[] = {"tls.crt", "tls.key", "ca.crt"};
        struct credentials_record t = {.version = src->version};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct buf *v = credentials_record_get(src, fields[i]);
                int r = v ? credentials_record_set(&t, fields[i], v->data, v->len) : -EBADMSG;
                if (r < 0) {
                        credentials_record_done(&t);
                        return r;
                }
        }
        credentials_record_done(dst);
        *dst = t;
        return 0;
}

static void record_donep(struct credentials_record *r) {
        credentials_record_done(r);
}
#define _cleanup_record_ __attribute__((cleanup(record_donep)))

/* ---- the manager -------------------------------------------------------------------------- */

struct credentials {
        struct credentials_options o;
        char service[MAX_NAME], namespace_[MAX_NAME], broker_service[MAX_NAME];
        char webhook_config[MAX_NAME];
        char hosts_buf[MAX_HOSTS][MAX_NAME];
        const char *hosts[MAX_HOSTS]; /* the webhook leaf's SANs: the Service's names, extras */
        size_t n_hosts;
        char broker_hosts_buf[MAX_HOSTS][MAX_NAME];
        const char *broker_hosts[MAX_HOSTS]; /* broker-tls's server SANs: the Service, extras */
        size_t n_broker_hosts;

        pthread_mutex_t lock;
        bool loaded;
        struct credentials_record webhook; /* as served */
        int64_t leaf_not_after;
        char signer_ca_sha[65]; /* what the signer holds (sha256 of ca.key's PEM, hex) */
        char published[65];     /* sha256 of the caBundle last published, "" when not yet */
        bool others_loaded;     /* broker-tls, broker-auth, broker-token exist */
        struct tls_server *server;
        /* For the admission's broker and sealed modes (operator/modes.h): the annotation key
         * derived from broker-auth (secmem; broker-auth itself is not kept) and the public CA
         * bundle of broker-tls, each as last read. */
        uint8_t *annotation_key;                          /* NULL until broker-auth was read */
        char installation[BROKERPROTO_INSTALLATION_SIZE]; /* "" until broker-token was read */
        struct buf broker_ca;                             /* empty until broker-tls was read */
        struct buf client_cert, client_key; /* broker-tls's client pair (keep_client_pair) */
};

static void logf_(struct credentials *c, enum credentials_log_level l, int error, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
static void logf_(struct credentials *c, enum credentials_log_level l, int error, const char *fmt,
                  ...) {
        char msg[512];
        va_list ap;
        if (!c->o.log)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        c->o.log(c->o.userdata, l, error, msg);
}

static int64_t now_(struct credentials *c) {
        return c->o.now ? c->o.now(c->o.userdata) : (int64_t) time(NULL);
}

static bool may_write(struct credentials *c) {
        return !c->o.may_write || c->o.may_write(c->o.userdata);
}

static int copy_name(char *dst, const char *src, const char *dflt) {
        const char *s = src && *src ? src : dflt;
        if (strlen(s) >= MAX_NAME)
                return -EINVAL;
        memcpy(dst, s, strlen(s) + 1);
        return 0;
}

int credentials_new(const struct credentials_options *o, struct credentials **ret) {
        char names[MATERIAL_SERVICE_NAMES][254];
        const char *np[MATERIAL_SERVICE_NAMES];
        int r;

        if (!o || !ret || !o->store.read || !o->store.create || !o->store.update ||
            !o->signer.load_ca || !o->signer.issue || o->n_extra_hosts > MATERIAL_MAX_HOSTS ||
            (o->n_extra_hosts && !o->extra_hosts) || o->n_broker_extra_hosts > MATERIAL_MAX_HOSTS ||
            (o->n_broker_extra_hosts && !o->broker_extra_hosts))
                return -EINVAL;
        struct credentials *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->o = *o;
        if (copy_name(c->service, o->service, "cloudtaser-operator-webhook") < 0 ||
            copy_name(c->namespace_, o->namespace_, "cloudtaser-system") < 0 ||
            copy_name(c->broker_service, o->broker_service, "cloudtaser-broker") < 0 ||
            copy_name(c->webhook_config, o->webhook_config, "cloudtaser-operator-webhook") < 0)
                goto invalid;
        if (material_service_names(c->service, c->namespace_, names, np) < 0)
                goto invalid;
        for (size_t i = 0; i < MATERIAL_SERVICE_NAMES; i++) {
                memcpy(c->hosts_buf[c->n_hosts], names[i], strlen(names[i]) + 1);
                c->n_hosts++;
        }
        for (size_t i = 0; i < o->n_extra_hosts; i++) {
                if (!o->extra_hosts[i] || !*o->extra_hosts[i] ||
                    strlen(o->extra_hosts[i]) >= MAX_NAME)
                        goto invalid;
                memcpy(c->hosts_buf[c->n_hosts], o->extra_hosts[i], strlen(o->extra_hosts[i]) + 1);
                c->n_hosts++;
        }
        for (size_t i = 0; i < c->n_hosts; i++)
                c->hosts[i] = c->hosts_buf[i];
        if (material_service_names(c->broker_service, c->namespace_, names, np) < 0)
                goto invalid;
        for (size_t i = 0; i < MATERIAL_SERVICE_NAMES; i++)
                memcpy(c->broker_hosts_buf[c->n_broker_hosts++], names[i], strlen(names[i]) + 1);
        for (size_t i = 0; i < o->n_broker_extra_hosts; i++) {
                const char *h = o->broker_extra_hosts[i];
                if (!material_host_valid(h) || strlen(h) >= MAX_NAME)
                        goto invalid;
                memcpy(c->broker_hosts_buf[c->n_broker_hosts++], h, strlen(h) + 1);
        }
        for (size_t i = 0; i < c->n_broker_hosts; i++)
                c->broker_hosts[i] = c->broker_hosts_buf[i];
        if (c->o.renew_before_s <= 0)
                c->o.renew_before_s = 30 * 86400LL;
        c->broker_ca = (struct buf) BUF_INIT(TLS_MAX_PEM, 0);
        c->client_cert = (struct buf) BUF_INIT(TLS_MAX_PEM, 0);
        c->client_key = (struct buf) BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        c->o.service = c->o.namespace_ = c->o.broker_service = c->o.webhook_config = NULL;
        c->o.extra_hosts = c->o.broker_extra_hosts = NULL;
        r = pthread_mutex_init(&c->lock, NULL);
        if (r != 0) {
                free(c);
                return -r;
        }
        *ret = c;
        return 0;
invalid:
        free(c);
        return -EINVAL;
}

struct credentials *credentials_free(struct credentials *c) {
        if (!c)
                return NULL;
        credentials_record_done(&c->webhook);
        secmem_free(c->annotation_key);
        buf_done(&c->broker_ca);
        buf_done(&c->client_cert);
        buf_done(&c->client_key);
        (void) pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

static void digest(const struct buf *b, char out[65]) {
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_buffer(b->data ? b->data : "", b->len, d);
        sha256_to_hex(d, out);
}

/* Splits IPs from DNS names for a tls_san. */
static void split_hosts(const char *const *hosts, size_t n, const char **dns, size_t *n_dns,
                        const char **ip, size_t *n_ip) {
        *n_dns = *n_ip = 0;
        for (size_t i = 0; i < n; i++) {
                struct in6_addr a6;
                struct in_addr a4;
                if (inet_pton(AF_INET, hosts[i], &a4) == 1 ||
                    inet_pton(AF_INET6, hosts[i], &a6) == 1)
                        ip[(*n_ip)++] = hosts[i];
                else
                        dns[(*n_dns)++] = hosts[i];
        }
}

/* A new leaf (names, usage) signed by the signer's CA, the first of bundle, into two fields. */
static int leaf_into(struct credentials *c, const char *const *hosts, size_t n_hosts,
                     const char *cn, unsigned usage, const struct buf *bundle,
                     const char *cert_field, const char *key_field,
                     struct credentials_record *rec) {
        _cleanup_buf_ struct buf cert = BUF_INIT(TLS_MAX_PEM, 0),
                                 key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        const char *dns[MAX_HOSTS], *ip[MAX_HOSTS];
        size_t nd = 0, ni = 0;
        int64_t ca_end = 0;
        int r;

        split_hosts(hosts, n_hosts, dns, &nd, ip, &ni);
        struct tls_san san = {.dns = dns, .n_dns = nd, .ip = ip, .n_ip = ni};
        struct material_issuer is = {.issue = c->o.signer.issue, .userdata = c->o.signer.userdata};
        if ((r = material_cert_validity(bundle->data, bundle->len, NULL, &ca_end)) < 0)
                return r;
        r = material_leaf_generate(&is, cn, &san, usage, now_(c), MATERIAL_LEAF_LIFETIME_S, ca_end,
                                   &cert, &key);
        if (r < 0)
                return r;
        if ((r = credentials_record_set(rec, cert_field, cert.data, cert.len)) < 0 ||
            (r = credentials_record_set(rec, key_field, key.data, key.len)) < 0)
                return r;
        return 0;
}

/* Gives the signer the record's CA, unless it holds it already. */
static int signer_load(struct credentials *c, const struct credentials_record *rec) {
        const struct buf *ca = credentials_record_get(rec, "ca.crt"),
                         *key = credentials_record_get(rec, "ca.key");
        char d[65];
        if (!ca || !key)
                return -EBADMSG;
        digest(key, d);
        if (strcmp(d, c->signer_ca_sha) == 0)
                return 0;
        int r = c->o.signer.load_ca(c->o.signer.userdata, ca->data, ca->len, key->data, key->len);
        if (r < 0)
                return r;
        memcpy(c->signer_ca_sha, d, sizeof(d));
        return 0;
}

/* A first webhook-tls: a new CA, and a leaf for the Service signed by it. */
static int webhook_new(struct credentials *c, struct credentials_record *rec) {
        _cleanup_buf_ struct buf ca = BUF_INIT(TLS_MAX_PEM, 0),
                                 key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        int r = material_ca_generate("cloudtaser-operator CA", now_(c), &ca, &key);
        if (r < 0 || (r = credentials_record_set(rec, "ca.crt", ca.data, ca.len)) < 0 ||
            (r = credentials_record_set(rec, "ca.key", key.data, key.len)) < 0 ||
            (r = signer_load(c, rec)) < 0)
                return r;
        return leaf_into(c, c->hosts, c->n_hosts, c->hosts[2], TLS_USAGE_SERVER, &ca, "tls.crt",
                         "tls.key", rec);
}

/* The CA rotation's first step: a new CA first in the bundle, the old ones (still valid) after
 * it; the leaf stays until the bundle is published. */
static int ca_rotate(struct credentials *c, struct credentials_record *rec) {
        _cleanup_buf_ struct buf ca = BUF_INIT(TLS_MAX_PEM, 0),
                                 key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE),
                                 bundle = BUF_INIT(TLS_MAX_PEM, 0);
        const struct buf *old = credentials_record_get(rec, "ca.crt");
        int64_t now = now_(c);
        int r = material_ca_generate("cloudtaser-operator CA", now, &ca, &key);
        if (r < 0 || (r = buf_append(&bundle, ca.data, ca.len)) < 0 ||
            (r = material_bundle_append_valid(old->data, old->len, now, &bundle)) < 0)
                return r;
        if ((r = credentials_record_set(rec, "ca.crt", bundle.data, bundle.len)) < 0 ||
            (r = credentials_record_set(rec, "ca.key", key.data, key.len)) < 0)
                return r;
        return 0;
}

enum webhook_action { KEEP, NEW_LEAF, NEW_CA, REGENERATE };

/* What the leader does with a webhook-tls record at now. *ret_leaf_ok: the leaf is valid. */
static enum webhook_action webhook_judge(struct credentials *c,
                                         const struct credentials_record *rec, bool published,
                                         bool *ret_leaf_ok) {
        const struct buf *ca = credentials_record_get(rec, "ca.crt"),
                         *cak = credentials_record_get(rec, "ca.key"),
                         *crt = credentials_record_get(rec, "tls.crt"),
                         *key = credentials_record_get(rec, "tls.key");
        _cleanup_buf_ struct buf first = BUF_INIT(TLS_MAX_PEM, 0);
        int64_t now = now_(c), ca_end = 0, leaf_end = 0;

        *ret_leaf_ok = false;
        if (!ca || !cak || !crt || !key || material_bundle_first(ca->data, ca->len, &first) < 0 ||
            material_cert_validity(first.data, first.len, NULL, &ca_end) < 0)
                return REGENERATE;
        bool valid = material_check_leaf(ca->data, ca->len, crt->data, crt->len, key->data,
                                         key->len, now, TLS_USAGE_SERVER) == 0;
        bool by_first = material_check_leaf(first.data, first.len, crt->data, crt->len, key->data,
                                            key->len, now, TLS_USAGE_SERVER) == 0;
        bool covers = material_leaf_covers(crt->data, crt->len, c->hosts, c->n_hosts) == 1;
        (void) material_cert_validity(crt->data, crt->len, NULL, &leaf_end);
        *ret_leaf_ok = valid;
        if (ca_end <= now)
                return REGENERATE; /* the CA is gone: nothing it signed is trusted */
        if (!valid)
                return NEW_LEAF; /* serve again first; the CA's turn comes at the next tick */
        /* A CA is replaced when a leaf it signs now would not last its lifetime plus the margin. */
        if (material_renewal_due(ca_end, now, MATERIAL_LEAF_LIFETIME_S + c->o.renew_before_s))
                return NEW_CA;
        if (!valid || !covers || material_renewal_due(leaf_end, now, c->o.renew_before_s))
                return NEW_LEAF;
        if (!by_first && published)
                return NEW_LEAF; /* the CA rotation's second step */
        return KEEP;
}

static int store_read(struct credentials *c, const char *name, struct credentials_record *rec) {
        credentials_record_done(rec);
        return c->o.store.read(c->o.store.userdata, name, rec);
}

/* Loads webhook-tls into rec, creating or renewing it when this replica may write. */
static int webhook_sync(struct credentials *c, struct credentials_record *rec) {
        int r;
        for (unsigned attempt = 0;; attempt++) {
                r = store_read(c, MATERIAL_WEBHOOK_TLS, rec);
                if (r == -ENOENT) {
                        if (!may_write(c))
                                return -EAGAIN;
                        struct credentials_record fresh _cleanup_record_ = {};
                        if ((r = webhook_new(c, &fresh)) < 0)
                                return r;
                        r = c->o.store.create(c->o.store.userdata, MATERIAL_WEBHOOK_TLS, &fresh);
                        if (r == 0)
                                logf_(c, CREDENTIALS_LOG_INFO, 0,
                                      "created %s: a new CA and the webhook's certificate",
                                      MATERIAL_WEBHOOK_TLS);
                        else if (r == -EEXIST)
                                logf_(c, CREDENTIALS_LOG_INFO, 0,
                                      "%s was created by another replica: reading it",
                                      MATERIAL_WEBHOOK_TLS);
                        else
                                return r;
                        if (attempt >= 3)
                                return -EAGAIN;
                        continue;
                }
                if (r < 0)
                        return r;
                if (!may_write(c))
                        break;
                bool leaf_ok = false, published = false;
                const struct buf *ca = credentials_record_get(rec, "ca.crt");
                if (ca) {
                        char d[65];
                        digest(ca, d);
                        published = strcmp(d, c->published) == 0;
                }
                enum webhook_action a = webhook_judge(c, rec, published, &leaf_ok);
                if (a == KEEP)
                        break;
                struct credentials_record next _cleanup_record_ = {};
                if ((r = record_copy(&next, rec)) < 0)
                        return r;
                const char *what = "";
                if (a == REGENERATE) {
                        credentials_record_done(&next);
                        r = webhook_new(c, &next);
                        what = "a new CA and certificate (the stored record was unusable)";
                } else if (a == NEW_CA) {
                        r = ca_rotate(c, &next);
                        what = "a new CA, published beside the old one";
                } else {
                        const struct buf *bundle = credentials_record_get(&next, "ca.crt");
                        r = signer_load(c, &next);
                        if (r >= 0)
                                r = leaf_into(c, c->hosts, c->n_hosts, c->hosts[2],
                                              TLS_USAGE_SERVER, bundle, "tls.crt", "tls.key",
                                              &next);
                        what = "a new webhook certificate";
                }
                if (r < 0)
                        return r;
                r = c->o.store.update(c->o.store.userdata, MATERIAL_WEBHOOK_TLS, &next,
                                      &rec->version);
                if (r == -ESTALE) {
                        logf_(c, CREDENTIALS_LOG_INFO, 0,
                              "%s changed under us (version %lld): reading it again",
                              MATERIAL_WEBHOOK_TLS, (long long) rec->version.n);
                        if (attempt >= 3)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                logf_(c, CREDENTIALS_LOG_INFO, 0, "%s: wrote %s (after version %lld)",
                      MATERIAL_WEBHOOK_TLS, what, (long long) rec->version.n);
                /* One change per tick: the CA rotation's second step waits for the bundle of the
                 * first to be published. Read back what was written, for its version. */
                return store_read(c, MATERIAL_WEBHOOK_TLS, rec);
        }
        return 0;
}

/* Installs rec as what is served, when it differs from what is. */
static int webhook_apply(struct credentials *c, const struct credentials_record *rec) {
        const struct buf *crt = credentials_record_get(rec, "tls.crt"),
                         *key = credentials_record_get(rec, "tls.key"),
                         *ca = credentials_record_get(rec, "ca.crt");
        int64_t leaf_end = 0;
        int r;

        if (!crt || !key || !ca)
                return -EBADMSG;
        if (c->loaded && served_same(rec, &c->webhook)) {
                c->webhook.version = rec->version;
                return 0;
        }
        r = material_check_leaf(ca->data, ca->len, crt->data, crt->len, key->data, key->len,
                                now_(c), TLS_USAGE_SERVER);
        if (r < 0)
                return r;
        (void) material_cert_validity(crt->data, crt->len, NULL, &leaf_end);
        if ((r = signer_load(c, rec)) < 0)
                return r;
        if (c->server &&
            (r = tls_server_set_cert_pem(c->server, crt->data, crt->len, key->data, key->len)) < 0)
                return r;
        if ((r = served_copy(&c->webhook, rec)) < 0)
                return r;
        c->loaded = true;
        c->leaf_not_after = leaf_end;
        char when[32] = "";
        struct tm tm;
        time_t t = (time_t) leaf_end;
        if (gmtime_r(&t, &tm))
                (void) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        logf_(c, CREDENTIALS_LOG_INFO, 0,
              "serving the webhook certificate of %s version %lld, valid until %s",
              MATERIAL_WEBHOOK_TLS, (long long) rec->version.n, when);
        return 0;
}

/* The leader's caBundle, when the bundle is not the one it published last. */
static int publish(struct credentials *c) {
        const struct buf *ca = credentials_record_get(&c->webhook, "ca.crt");
        struct kube_error e = {};
        bool changed = false;
        char d[65];

        if (!ca || !may_write(c))
                return 0;
        digest(ca, d);
        if (strcmp(d, c->published) == 0)
                return 0;
        if (!c->o.kube) {
                /* The caller publishes the bundle itself: served for one tick counts. */
                memcpy(c->published, d, sizeof(d));
                return 0;
        }
        int r = webhookconfig_set_ca_bundle(c->o.kube, c->webhook_config, ca->data, ca->len,
                                            &changed, &e);
        if (r < 0) {
                logf_(c, CREDENTIALS_LOG_ERROR, r,
                      "cannot set the caBundle of MutatingWebhookConfiguration %s: %s",
                      c->webhook_config, e.message);
                return r;
        }
        memcpy(c->published, d, sizeof(d));
        if (changed)
                logf_(c, CREDENTIALS_LOG_INFO, 0, "caBundle of MutatingWebhookConfiguration %s set",
                      c->webhook_config);
        return 0;
}

/* broker-auth and broker-token: 32 random bytes each, created once. The record as stored goes
 * to *ret (NULL: not wanted). */
static int random_record(struct credentials *c, const char *name, const char *field,
                         struct credentials_record *ret) {
        struct credentials_record rec _cleanup_record_ = {};
        _cleanup_buf_ struct buf v = BUF_INIT(256, BUF_SECURE);
        int r = store_read(c, name, &rec);
        if (r != -ENOENT) {
                if (r >= 0 && !credentials_record_get(&rec, field))
                        r = -EBADMSG;
                return r < 0 || !ret ? r : record_copy(ret, &rec);
        }
        if (!may_write(c))
                return -EAGAIN;
        if ((r = material_random_base64(MATERIAL_RANDOM_BYTES, &v)) < 0 ||
            (r = credentials_record_set(&rec, field, v.data, v.len)) < 0)
                return r;
        r = c->o.store.create(c->o.store.userdata, name, &rec);
        if (r == 0)
                logf_(c, CREDENTIALS_LOG_INFO, 0, "created %s", name);
        if (r == -EEXIST) /* another replica won: what it wrote is the record */
                r = store_read(c, name, &rec);
        return r < 0 || !ret ? r : record_copy(ret, &rec);
}

/* The annotation key from a broker-auth record (its "key": 32 bytes of base64). Only the derived
 * key is kept; the decoded broker-auth is wiped with its buffer. */
static int annotation_key_load(struct credentials *c, const struct credentials_record *rec) {
        const struct buf *v = credentials_record_get(rec, "key");
        _cleanup_buf_ struct buf auth = BUF_INIT(128, BUF_SECURE);
        uint8_t *key = NULL;
        int r;

        if (!v)
                return -EBADMSG;
        if ((r = base64_decode(&auth, v->data ? v->data : "", v->len, false)) < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (auth.len != BROKERPROTO_KEY_SIZE)
                return -EBADMSG;
        if ((r = secmem_alloc(BROKERPROTO_KEY_SIZE, (void **) &key)) < 0)
                return r;
        if ((r = brokerproto_annotation_key(auth.data, auth.len, key)) < 0) {
                secmem_free(key);
                return r;
        }
        secmem_free(c->annotation_key); /* the previous version's, wiped */
        c->annotation_key = key;
        return 0;
}

/* The installation id from a broker-token record (its "token": 32 bytes of base64); the decoded
 * token is wiped with its buffer. */
static int installation_load(struct credentials *c, const struct credentials_record *rec) {
        const struct buf *v = credentials_record_get(rec, "token");
        _cleanup_buf_ struct buf token = BUF_INIT(128, BUF_SECURE);
        int r;

        if (!v)
                return -EBADMSG;
        if ((r = base64_decode(&token, v->data ? v->data : "", v->len, false)) < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        return token.len == BROKERPROTO_KEY_SIZE
                       ? brokerproto_installation_id(token.data, token.len, c->installation)
                       : -EBADMSG;
}

/* The public CA bundle of a broker-tls record, kept for the admission; with keep_client_pair
 * also its client certificate and key, for the unsealer. */
static int broker_ca_keep(struct credentials *c, const struct credentials_record *rec) {
        const struct buf *ca = credentials_record_get(rec, "ca.crt");
        int r;
        if (!ca || ca->len == 0)
                return -EBADMSG;
        if (c->o.keep_client_pair) {
                const struct buf *cl = credentials_record_get(rec, "client.crt"),
                                 *clk = credentials_record_get(rec, "client.key");
                if (!cl || !clk || cl->len == 0 || clk->len == 0)
                        return -EBADMSG;
                buf_reset(&c->client_cert);
                buf_reset(&c->client_key);
                if ((r = buf_append(&c->client_cert, cl->data, cl->len)) < 0 ||
                    (r = buf_append(&c->client_key, clk->data, clk->len)) < 0) {
                        buf_reset(&c->client_cert);
                        buf_reset(&c->client_key);
                        return r;
                }
        }
        if (ca->len == c->broker_ca.len && memcmp(ca->data, c->broker_ca.data, ca->len) == 0)
                return 0;
        buf_reset(&c->broker_ca);
        return buf_append(&c->broker_ca, ca->data, ca->len);
}

/* broker-tls: the broker's server certificate, the operator's client certificate, the CA bundle;
 * created and renewed by the writer like webhook-tls, and issued again when the server
 * certificate's names are not exactly the broker's (its Service's and --broker-host's). */
static int broker_tls(struct credentials *c) {
        struct credentials_record rec _cleanup_record_ = {}, next _cleanup_record_ = {};
        const struct buf *bundle = credentials_record_get(&c->webhook, "ca.crt");
        _cleanup_buf_ struct buf first = BUF_INIT(TLS_MAX_PEM, 0);
        static const char *const client_names[] = {"cloudtaser-operator"};
        int64_t now = now_(c);

        int r = store_read(c, MATERIAL_BROKER_TLS, &rec);
        if (r < 0 && r != -ENOENT)
                return r;
        if (!may_write(c))
                return r == -ENOENT ? -EAGAIN : broker_ca_keep(c, &rec);
        if (!bundle || (r = material_bundle_first(bundle->data, bundle->len, &first)) < 0)
                return -ENODATA;
        bool exists = r != -ENOENT && rec.n > 0;
        const struct buf *s = credentials_record_get(&rec, "server.crt"),
                         *sk = credentials_record_get(&rec, "server.key"),
                         *cl = credentials_record_get(&rec, "client.crt"),
                         *clk = credentials_record_get(&rec, "client.key"),
                         *ca = credentials_record_get(&rec, "ca.crt");
        int64_t s_end = 0, c_end = 0;
        bool fine = exists && s && sk && cl && clk && ca && ca->len == bundle->len &&
                    memcmp(ca->data, bundle->data, ca->len) == 0 &&
                    material_check_leaf(first.data, first.len, s->data, s->len, sk->data, sk->len,
                                        now, TLS_USAGE_SERVER) == 0 &&
                    material_check_leaf(first.data, first.len, cl->data, cl->len, clk->data,
                                        clk->len, now, TLS_USAGE_CLIENT) == 0 &&
                    material_cert_validity(s->data, s->len, NULL, &s_end) == 0 &&
                    material_cert_validity(cl->data, cl->len, NULL, &c_end) == 0 &&
                    material_leaf_names_exactly(s->data, s->len, c->broker_hosts,
                                                c->n_broker_hosts) == 1 &&
                    !material_renewal_due(s_end, now, c->o.renew_before_s) &&
                    !material_renewal_due(c_end, now, c->o.renew_before_s);
        if (fine)
                return broker_ca_keep(c, &rec);
        /* The signer holds the CA of c->webhook: webhook_apply() gave it the record's key. */
        if ((r = leaf_into(c, c->broker_hosts, c->n_broker_hosts, c->broker_hosts[2],
                           TLS_USAGE_SERVER, &first, "server.crt", "server.key", &next)) < 0 ||
            (r = leaf_into(c, client_names, 1, client_names[0], TLS_USAGE_CLIENT, &first,
                           "client.crt", "client.key", &next)) < 0 ||
            (r = credentials_record_set(&next, "ca.crt", bundle->data, bundle->len)) < 0)
                return r;
        r = exists ? c->o.store.update(c->o.store.userdata, MATERIAL_BROKER_TLS, &next,
                                       &rec.version)
                   : c->o.store.create(c->o.store.userdata, MATERIAL_BROKER_TLS, &next);
        if (r == -EEXIST || r == -ESTALE)
                return 0; /* another writer: the next tick reads it */
        if (r == 0) {
                logf_(c, CREDENTIALS_LOG_INFO, 0, "%s %s", exists ? "renewed" : "created",
                      MATERIAL_BROKER_TLS);
                r = broker_ca_keep(c, &next);
        }
        return r;
}

static int sync_locked(struct credentials *c) {
        struct credentials_record rec _cleanup_record_ = {};
        int r = webhook_sync(c, &rec);
        if (r < 0)
                return r;
        if ((r = webhook_apply(c, &rec)) < 0)
                return r;
        int first_error = publish(c);
        static const char *const randoms[][2] = {{MATERIAL_BROKER_AUTH, "key"},
                                                 {MATERIAL_BROKER_TOKEN, "token"}};
        for (size_t i = 0; i < ELEMENTSOF(randoms); i++) {
                struct credentials_record rec_auth _cleanup_record_ = {};
                int k = random_record(c, randoms[i][0], randoms[i][1], &rec_auth);
                if (k >= 0)
                        k = i == 0 ? annotation_key_load(c, &rec_auth)
                                   : installation_load(c, &rec_auth);
                if (k < 0 && k != -EAGAIN) {
                        logf_(c, CREDENTIALS_LOG_ERROR, k, "cannot load or create %s",
                              randoms[i][0]);
                        if (first_error >= 0)
                                first_error = k;
                }
        }
        int k = broker_tls(c);
        if (k < 0 && k != -EAGAIN) {
                logf_(c, CREDENTIALS_LOG_ERROR, k, "cannot load or create %s", MATERIAL_BROKER_TLS);
                if (first_error >= 0)
                        first_error = k;
        }
        return first_error;
}

int credentials_bootstrap(struct credentials *c) {
        if (!c)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = sync_locked(c);
        /* Loaded is what the webhook needs; the rest is retried by the ticks. */
        if (r < 0 && c->loaded && r != -EAGAIN)
                r = 0;
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

int credentials_tick(struct credentials *c) {
        if (!c)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = sync_locked(c);
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

void credentials_set_server(struct credentials *c, struct tls_server *s) {
        (void) pthread_mutex_lock(&c->lock);
        c->server = s;
        (void) pthread_mutex_unlock(&c->lock);
}

static int copy_field(struct credentials *c, const char *name, struct buf *ret) {
        (void) pthread_mutex_lock(&c->lock);
        const struct buf *v = c->loaded ? credentials_record_get(&c->webhook, name) : NULL;
        int r = v ? buf_append(ret, v->data, v->len) : -ENODATA;
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

int credentials_webhook_pair(struct credentials *c, struct buf *ret_cert, struct buf *ret_key) {
        if (!c || !ret_cert || !ret_key || !(ret_key->flags & BUF_SECURE))
                return -EINVAL;
        int r = copy_field(c, "tls.crt", ret_cert);
        return r < 0 ? r : copy_field(c, "tls.key", ret_key);
}

int credentials_ca_bundle(struct credentials *c, struct buf *ret) {
        if (!c || !ret)
                return -EINVAL;
        return copy_field(c, "ca.crt", ret);
}

int64_t credentials_webhook_version(struct credentials *c) {
        (void) pthread_mutex_lock(&c->lock);
        int64_t v = c->loaded ? c->webhook.version.n : 0;
        (void) pthread_mutex_unlock(&c->lock);
        return v;
}

int64_t credentials_webhook_not_after(struct credentials *c) {
        (void) pthread_mutex_lock(&c->lock);
        int64_t v = c->loaded ? c->leaf_not_after : 0;
        (void) pthread_mutex_unlock(&c->lock);
        return v;
}

int credentials_annotation_mac(struct credentials *c, const char *ns, const char *sa,
                               const char *paths, const char *env_map,
                               char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        if (!c || !ret)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = c->annotation_key ? brokerproto_annotation_mac(c->annotation_key, ns, sa, paths,
                                                               env_map ? env_map : "", mac)
                                  : -ENODATA;
        (void) pthread_mutex_unlock(&c->lock);
        if (r < 0)
                return r;
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

int credentials_installation(struct credentials *c, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        if (!c || !ret)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = c->installation[0] ? 0 : -ENODATA;
        if (r == 0)
                memcpy(ret, c->installation, BROKERPROTO_INSTALLATION_SIZE);
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

int credentials_annotation_key(struct credentials *c, uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        if (!c || !ret)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = c->annotation_key ? 0 : -ENODATA;
        if (r == 0)
                memcpy(ret, c->annotation_key, BROKERPROTO_KEY_SIZE);
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

int credentials_client_pair(struct credentials *c, struct buf *ret_cert, struct buf *ret_key) {
        if (!c || !ret_cert || !ret_key || !(ret_key->flags & BUF_SECURE))
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = c->client_cert.len > 0 && c->client_key.len > 0 ? 0 : -ENODATA;
        size_t cl = ret_cert->len, kl = ret_key->len;
        if (r == 0 && ((r = buf_append(ret_cert, c->client_cert.data, c->client_cert.len)) < 0 ||
                       (r = buf_append(ret_key, c->client_key.data, c->client_key.len)) < 0)) {
                buf_truncate(ret_cert, cl);
                buf_truncate(ret_key, kl);
        }
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}

int credentials_broker_ca(struct credentials *c, struct buf *ret) {
        if (!c || !ret)
                return -EINVAL;
        (void) pthread_mutex_lock(&c->lock);
        int r = c->broker_ca.len > 0 ? buf_append(ret, c->broker_ca.data, c->broker_ca.len)
                                     : -ENODATA;
        (void) pthread_mutex_unlock(&c->lock);
        return r;
}
