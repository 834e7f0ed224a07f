/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/credentials: the operator's own credentials, from first install to rotation
 * (docs/operator.md, "Credentials").
 *
 * The records of operator/material.h live in a store (operator/credstore: vault KV v2 by
 * default, one Kubernetes Secret in the fallback), reached through struct credentials_store.
 *
 *   bootstrap  read every record; one that is missing is generated and created with
 *              check-and-set 0 (two replicas starting together cannot both win: the loser, told
 *              -EEXIST, reads what the winner wrote). With leader election only the leader
 *              creates; the others wait for the records to appear.
 *   serve      the webhook's certificate and key go to the TLS server from memory
 *              (tls_server_set_cert_pem(): new handshakes get the new pair at once, open
 *              connections keep theirs); the CA certificate and key go to the signer.
 *   caBundle   the leader patches the MutatingWebhookConfiguration's caBundle at start and
 *              whenever the CA bundle changes (operator/webhookconfig).
 *   rotation   credentials_tick() (every --cert-check-interval) re-reads the records: a new
 *              version written by the leader is loaded and served (standbys follow). The
 *              leader replaces a leaf within renew_before of its expiry (or invalid, or not
 *              naming the Service) with one signed by the same CA, written with check-and-set
 *              on the version read. A CA within renew_before (at least a leaf's lifetime) of
 *              its own expiry is rotated in two steps: first the bundle becomes new + old CA
 *              (and is published in caBundle) while the old leaf is still served; at a later
 *              tick, once the published caBundle holds the new CA, the leaf is re-issued by the
 *              new CA.
 *
 * The CA's key: this process keeps only the webhook's pair and the CA bundle; the key goes to
 * the signer (struct credentials_signer) and the copy read with the record (from the store, to
 * write it back) is wiped with the record at the end of each step. Known limit: the key passes
 * through this process's memory for that while, since the store (vault) holds it.
 *
 * Values are secrets: held in BUF_SECURE buffers, wiped, never logged; the log lines (the
 * caller's log callback) name records, versions, expiry dates and errors only.
 *
 * For the webhook's broker and sealed token modes (operator/modes.h) this process also keeps,
 * from each successful read, the annotation key derived from broker-auth (in secmem, with
 * brokerproto_annotation_key(); broker-auth itself is wiped with the record) and the public CA
 * bundle of broker-tls. Both follow rotation: a new version read replaces them.
 *
 * Threads: credentials_tick(), credentials_bootstrap() and the getters may be called from
 * different threads; one lock serialises them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/kube.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "operator/material.h"

#define CREDENTIALS_MAX_FIELDS 8
#define CREDENTIALS_FIELD_NAME 32
#define CREDENTIALS_MAX_VALUE (256u * 1024u)

/* A record's version as its store gives it (opaque: handed back to update): a number (KV v2's
 * version) and/or a text (a Kubernetes resourceVersion). */
struct credentials_version {
        int64_t n;
        char tag[64];
};

/* One record: named values (BUF_SECURE) and the store's version of it. */
struct credentials_record {
        size_t n;
        struct {
                char name[CREDENTIALS_FIELD_NAME];
                struct buf value;
        } f[CREDENTIALS_MAX_FIELDS];
        struct credentials_version version;
};

/* The value of a field, NULL when absent. */
const struct buf *credentials_record_get(const struct credentials_record *r, const char *name);
/* Sets a field (copied into secure memory). -E2BIG (too many fields, too long), -EINVAL. */
int credentials_record_set(struct credentials_record *r, const char *name, const char *value,
                           size_t len);
/* Wipes and empties. Safe to call twice. */
void credentials_record_done(struct credentials_record *r);

/* Where the records are kept. read: fills *ret (empty on entry) with the fields and the version,
 * -ENOENT when the record does not exist. create: check-and-set 0, -EEXIST when it exists.
 * update: check-and-set on version, -ESTALE when the stored version is another. Any other
 * -errno is a failure of the store (logged by the caller's log callback, retried later). */
struct credentials_store {
        int (*read)(void *userdata, const char *record, struct credentials_record *ret);
        int (*create)(void *userdata, const char *record, const struct credentials_record *r);
        int (*update)(void *userdata, const char *record, const struct credentials_record *r,
                      const struct credentials_version *version);
        void *userdata;
};

/* Who holds the CA key: load_ca gives it the CA (certificate bundle, key), issue signs leaves
 * (operator/signer in the operator; an in-process issuer in tests). */
struct credentials_signer {
        int (*load_ca)(void *userdata, const char *cert_pem, size_t cert_len, const char *key_pem,
                       size_t key_len);
        int (*issue)(void *userdata, const uint8_t *spki, size_t spki_len,
                     const struct tls_cert_params *p, struct tls_cert *ret);
        void *userdata;
};

enum credentials_log_level { CREDENTIALS_LOG_INFO, CREDENTIALS_LOG_WARNING, CREDENTIALS_LOG_ERROR };

struct credentials_options {
        struct credentials_store store;
        struct credentials_signer signer;
        const char *service;            /* the webhook's Service, "cloudtaser-operator-webhook" */
        const char *namespace_;         /* the operator's namespace, "cloudtaser-system" */
        const char *broker_service;     /* "cloudtaser-broker" */
        const char *const *extra_hosts; /* more SANs of the webhook's leaf (DNS names or IPs) */
        size_t n_extra_hosts;
        /* More SANs of broker-tls's server leaf (DNS names or IPs, at most MATERIAL_MAX_HOSTS),
         * beside the broker Service's names: the leaf names exactly that set, and is issued
         * again when the set changes (--broker-host). */
        const char *const *broker_extra_hosts;
        size_t n_broker_extra_hosts;
        int64_t renew_before_s; /* default 30 days */
        /* The MutatingWebhookConfiguration whose caBundle the leader keeps; NULL or kube NULL:
         * none (the caller publishes the CA itself). */
        struct kube_client *kube;
        const char *webhook_config;
        /* Keep broker-tls's client certificate and key (the operator's, for the sealed mode's
         * unsealer: credentials_client_pair()); false: only its public CA is kept. */
        bool keep_client_pair;
        /* Whether this replica may write (the leader, or every replica without election). */
        bool (*may_write)(void *userdata);
        /* Wall clock (unix seconds); NULL: time(). */
        int64_t (*now)(void *userdata);
        /* One line per event (never a value). NULL: silent. */
        void (*log)(void *userdata, enum credentials_log_level level, int error, const char *msg);
        void *userdata;
};

struct credentials;

/* Copies the options (the strings too). -EINVAL (no store, no signer, invalid names), -ENOMEM. */
int credentials_new(const struct credentials_options *o, struct credentials **ret);
/* Wipes and frees. Accepts NULL. Returns NULL. */
struct credentials *credentials_free(struct credentials *c);

/* One attempt at loading (and, when this replica may write, creating) every record. 0 when the
 * webhook's pair is loaded and valid; -EAGAIN when a record is missing and this replica may not
 * create it (wait for the leader); the store's errors. The caller retries with backoff. */
int credentials_bootstrap(struct credentials *c);

/* The rotation step (see the top). 0, or the first error (the state served stays the last
 * good one). */
int credentials_tick(struct credentials *c);

/* From now on, a new webhook pair is installed in s (tls_server_set_cert_pem()). NULL: none. */
void credentials_set_server(struct credentials *c, struct tls_server *s);

/* Copies of what is served: the webhook's certificate (PEM) and key (PEM, into a BUF_SECURE
 * buffer), the CA bundle (PEM). -ENODATA before a successful bootstrap. */
int credentials_webhook_pair(struct credentials *c, struct buf *ret_cert, struct buf *ret_key);
int credentials_ca_bundle(struct credentials *c, struct buf *ret);
/* The version (its number) of webhook-tls in use (0 before bootstrap), and not_after of its
 * leaf. */
int64_t credentials_webhook_version(struct credentials *c);
int64_t credentials_webhook_not_after(struct credentials *c);

/* brokerproto_annotation_mac() under the annotation key of the broker-auth record last read
 * (env_map NULL: ""). -ENODATA before broker-auth was read; -EINVAL. The key never leaves. */
int credentials_annotation_mac(struct credentials *c, const char *ns, const char *sa,
                               const char *paths, const char *env_map,
                               char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]);
/* Appends the CA bundle (PEM, public) of the broker-tls record last read to ret. -ENODATA
 * before broker-tls was read. */
int credentials_broker_ca(struct credentials *c, struct buf *ret);
/* The installation id (brokerproto_installation_id()) of the broker-token record last read: the
 * value of the sealed pods' label that the webhook writes and the unsealer selects (public).
 * -ENODATA before broker-token was read; -EINVAL. */
int credentials_installation(struct credentials *c, char ret[BROKERPROTO_INSTALLATION_SIZE]);
/* The annotation key itself, for the unsealer's check of a pod's MAC (the caller wipes it).
 * -ENODATA before broker-auth was read. */
int credentials_annotation_key(struct credentials *c, uint8_t ret[BROKERPROTO_KEY_SIZE]);
/* Appends broker-tls's client certificate (PEM) to ret_cert and its key (PEM) to ret_key (a
 * BUF_SECURE buffer: -EINVAL otherwise): the operator's client identity towards the sealed pods'
 * wrappers. -ENODATA before broker-tls was read or without keep_client_pair. */
int credentials_client_pair(struct credentials *c, struct buf *ret_cert, struct buf *ret_key);
