/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/credstore: where the operator's own credentials live (docs/operator.md, "Credentials
 * in vault" and "Fallback backend"). Named records of named string fields, under one prefix,
 * in one of two backends:
 *
 *   CREDSTORE_VAULT (the default, --secret-backend=vault): one KV v2 secret per record,
 *     <mount>/data/<prefix>/<record> (mount "secret", prefix "cloudtaser/system" by default),
 *     through the operator's vault session (operator/vaultsession). A record's version is its
 *     KV v2 version. The mount is looked up once (sys/internal/ui/mounts) and must be KV v2
 *     (-EMEDIUMTYPE otherwise). A 403 asks the session to log in again (vaultsession_relogin:
 *     the token may have been revoked) and is still returned.
 *   CREDSTORE_KUBERNETES (the fallback, --secret-backend=kubernetes or
 *     CLOUDTASER_SECRET_BACKEND=kubernetes): every record in ONE Secret, default name
 *     `cloudtaser-operator-certs`, in the operator's namespace, data keys "<record>.<field>"
 *     (base64, as the API wants). A record's version is the Secret's resourceVersion: an update
 *     of any record changes the version of all of them (an update with an older one is -ESTALE
 *     even if this record did not change: read again and retry). The caller logs
 *     credstore_weakened_warning() at every start with this backend and posts the Event
 *     (credstore_post_weakened_event). No other Secret is ever created.
 *
 * Records (names: 1..CREDSTORE_RECORD_MAX-1 bytes of [A-Za-z0-9_-], a valid vault path segment
 * and, with the '.' that follows, a valid Secret data key prefix) and the fields the operator
 * uses (names: 1..CREDSTORE_FIELD_MAX-1 bytes of [A-Za-z0-9._-]):
 *   webhook-tls    tls.crt, tls.key, ca.crt, ca.key       (PEM)
 *   broker-tls     server.crt, server.key, client.crt, client.key, ca.crt   (PEM)
 *   broker-auth    key     (32 random bytes, base64)
 *   broker-token   token   (32 random bytes, base64)
 *   enrollment     (read if present, never required)
 * Values are strings without NUL bytes (at most CREDSTORE_VALUE_MAX bytes each,
 * CREDSTORE_MAX_FIELDS per record).
 *
 * Operations, identical in both backends:
 *   read    the record's fields and version; -ENOENT when it is absent;
 *   create  only when absent (vault: check-and-set cas=0; kubernetes: the record's keys absent,
 *           the Secret created or updated at its resourceVersion): -EEXIST when it exists (another
 *           replica won the race: read what it wrote);
 *   update  only when the version is still the one read (vault: cas=<version>; kubernetes: the
 *           Secret's resourceVersion): -ESTALE when it changed (or the record is gone).
 * Other errors: -EACCES (the policy, or RBAC), -EAGAIN (vault session not ready, sealed, 503,
 * 429), -EINVAL (bad names, a value with a NUL), -EBADMSG (a record whose stored form is not
 * what this module writes: a non-string vault field, bad base64), -E2BIG, transport errors.
 *
 * Secrets: every value read or written lives in secmem (records, request bodies, responses) and
 * is wiped when released; errors name records, fields, paths, statuses and the servers' texts,
 * never a value. Nothing here logs. A store is safe to use from several threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/kube.h"
#include "common/vault.h"
#include "operator/vaultsession.h"

#define CREDSTORE_DEFAULT_MOUNT "secret"
#define CREDSTORE_DEFAULT_PREFIX "cloudtaser/system"
#define CREDSTORE_DEFAULT_SECRET "cloudtaser-operator-certs"
#define CREDSTORE_RECORD_MAX 64
#define CREDSTORE_FIELD_MAX 128
#define CREDSTORE_MAX_FIELDS 32
#define CREDSTORE_VALUE_MAX (256u * 1024u)
#define CREDSTORE_UPDATE_RETRIES 8 /* kubernetes: conflicts with writes of OTHER records */

enum credstore_backend {
        CREDSTORE_VAULT = 0,
        CREDSTORE_KUBERNETES,
};

/* "vault" | "kubernetes" -> 0, else -EINVAL. */
int credstore_backend_from_string(const char *s, enum credstore_backend *ret);
const char *credstore_backend_to_string(enum credstore_backend b);

/* Why a call failed, for one log line: "<op> of record '<record>' at <path>: <message> (status
 * <status>, <reason>)". Caller-owned, filled by every call that takes it (error 0 on success).
 * Printable ASCII, never a secret value. */
struct credstore_error {
        int error;                 /* the -errno returned */
        long status;               /* HTTP status of the final answer, 0 when there was none */
        char path[VAULT_PATH_MAX]; /* vault logical path, or the Kubernetes API path */
        char reason[64];           /* the Kubernetes Status reason, or vault_strerror() */
        char message[512];         /* the server's text, or what went wrong before any request */
};

/* A record's version: opaque to the caller, handed back to credstore_update(). */
struct credstore_version {
        int64_t kv;  /* vault: KV v2 version (>= 1) */
        char rv[64]; /* kubernetes: the Secret's metadata.resourceVersion */
};
bool credstore_version_equal(const struct credstore_version *a, const struct credstore_version *b);

struct credstore_field {
        const char *name;  /* NUL-terminated */
        const char *value; /* value_len bytes, then a NUL (in records read) */
        size_t value_len;
};

/* A record read: every name and value in one secmem block, wiped by credstore_record_free(). */
struct credstore_record {
        size_t n_fields;
        struct credstore_field *fields; /* sorted by name */
        struct credstore_version version;
        void *storage_; /* internal */
};
struct credstore_record *credstore_record_free(struct credstore_record *r); /* accepts NULL */
/* The field called name, or NULL. */
const struct credstore_field *credstore_record_get(const struct credstore_record *r,
                                                   const char *name);

struct credstore_options {
        enum credstore_backend backend;
        /* vault: the session (borrowed: must outlive the store), the KV v2 mount and prefix
         * (NULL: the defaults; "a/b" without leading or trailing '/'). */
        struct vaultsession *session;
        const char *mount, *prefix;
        /* kubernetes: the client (borrowed), the operator's namespace, the Secret's name (NULL:
         * CREDSTORE_DEFAULT_SECRET). */
        struct kube_client *kube;
        const char *namespace_;
        const char *secret_name;
};

struct credstore;

/* -EINVAL (no session / client for the backend, invalid mount, prefix, namespace or name),
 * -ENOMEM. Makes no request. */
int credstore_open(const struct credstore_options *o, struct credstore **ret);
struct credstore *credstore_free(struct credstore *s); /* accepts NULL; returns NULL */
enum credstore_backend credstore_backend(const struct credstore *s);

/* Where a record lives, for log lines: "secret/data/cloudtaser/system/webhook-tls" or
 * "<namespace>/cloudtaser-operator-certs (keys webhook-tls.*)". */
const char *credstore_location(const struct credstore *s, const char *record, char *buf, size_t n);

int credstore_read(struct credstore *s, const char *record, struct credstore_record **ret,
                   struct credstore_error *err);
/* ret_version (optional) gets the version written. */
int credstore_create(struct credstore *s, const char *record, const struct credstore_field *fields,
                     size_t n_fields, struct credstore_version *ret_version,
                     struct credstore_error *err);
int credstore_update(struct credstore *s, const char *record, const struct credstore_field *fields,
                     size_t n_fields, const struct credstore_version *expected,
                     struct credstore_version *ret_version, struct credstore_error *err);

/* The line the caller logs (warning) at every start with the kubernetes backend. */
const char *credstore_weakened_warning(void);

/* The object an Event is about: the operator's Pod (api_version "v1", kind "Pod") or its
 * Deployment ("apps/v1", "Deployment"), in namespace_ (uid optional, NULL when unknown). */
struct credstore_object_ref {
        const char *api_version, *kind, *name, *namespace_, *uid;
};

/* Creates a core/v1 Event in namespace_ (type Warning, reason WeakenedSecurityModel, source and
 * reportingComponent cloudtaser-operator, reportingInstance `instance` (NULL: the object's
 * name), count 1, first/lastTimestamp now) about `involved`, saying that the operator's own
 * credentials are in a Kubernetes Secret and the security model is weakened. -EINVAL for bad
 * names, kube_create()'s errors. */
int credstore_post_weakened_event(struct kube_client *k, const char *namespace_,
                                  const struct credstore_object_ref *involved, const char *instance,
                                  struct credstore_error *err);

static inline void credstore_freep(struct credstore **s) {
        credstore_free(*s);
}
#define _cleanup_credstore_ __attribute__((cleanup(credstore_freep)))
static inline void credstore_record_freep(struct credstore_record **r) {
        credstore_record_free(*r);
}
#define _cleanup_credstore_record_ __attribute__((cleanup(credstore_record_freep)))
