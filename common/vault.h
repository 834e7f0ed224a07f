/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vault: a client for the Vault / OpenBao HTTP API (v1), built on common/http and common/json.
 * The wire protocol as we use it is described in docs/protocol-vault.md.
 *
 * What it covers: Kubernetes auth login (any mount path), token auth, KV v2 read (latest or a
 * version), KV v1 read, KV version detection through sys/internal/ui/mounts/<path> (as the
 * official CLI does it), KV v2 write with check-and-set, KV v2 metadata read, token
 * lookup-self / renew-self / revoke-self, the X-Vault-Namespace header, and generic JSON
 * requests to any other endpoint (vault_request_json: common/vault-sys builds the sys/ calls on
 * it).
 *
 * Secrets: the client token, every response body and every decoded secret value live in secmem
 * (locked, not dumpable, wiped on release). Nothing here logs. Errors are returned as -errno plus,
 * when the caller passes one, a `struct vault_error` with the HTTP status, Vault's own error text
 * (printable ASCII, bounded; Vault never echoes a token or a secret value in it) and the path.
 *
 * errno mapping of Vault answers:
 *   400 -EINVAL (but "check-and-set parameter did not match the current version" -> -ESTALE)
 *   403 -EACCES (denied, bad/expired token, TokenReview failure)   404 -ENOENT (no such secret,
 *   version deleted or destroyed: see vault_error.message)   405 -EOPNOTSUPP   413 -E2BIG
 *   412 -EAGAIN (a standby without the index state, after the retries below)
 *   429 -EBUSY   500 / 502 / other 5xx -EIO   503 -EAGAIN (sealed, standby, namespace locked)
 *   3xx -EREMOTE (a redirect not followed, or a second one: vault_error.message says why)
 *   a 2xx body that is not what the API documents -EBADMSG;
 *   transport errors as common/http returns them (-ECONNREFUSED, -ETIMEDOUT, -EPROTO for TLS...).
 * vault_error_is_transient() tells the caller which are worth retrying at a higher level (the
 * http layer already retries connection errors, 429 and 5xx briefly within its deadline).
 *
 * What a Vault / OpenBao cluster answers while it catches up, handled inside every call, all
 * within the call's one deadline (deadline_ms, see vault_client_set_limits; each retry sleeps
 * the http backoff, at least VAULT_RETRY_MIN_MS, and is skipped when it would end past it):
 *   - 412 "required index state not present" (a Vault Enterprise performance standby): retried
 *     up to VAULT_RETRY_412_MAX times, as the official Go client does, on every request;
 *   - 403 within VAULT_FRESH_LOGIN_MS of this client's own successful login (an OpenBao 2.5+
 *     standby that has not seen the new token yet): retried up to VAULT_RETRY_403_MAX times,
 *     on authenticated requests except revoke-self. A token set with vault_set_token (given
 *     from outside) never gets this grace: nothing says it is new, and a refused VAULT_TOKEN
 *     must be reported at once. A 403 that lasts is -EACCES;
 *   - 307 / 308 from a standby that cannot forward: followed once, same method and body, to
 *     the Location only when its origin (scheme, host, port) is one of the vault's own
 *     addresses: the origin of `addr` or of one of `peer_addrs`, same scheme as `addr`; the
 *     same trust anchors, client certificate and headers (X-Vault-Token, X-Vault-Namespace)
 *     go there. Any other redirect (other 3xx, another origin or scheme, a second hop, through
 *     a unix socket) is not followed: -EREMOTE, the request's body and token never leave for
 *     an address that was not configured.
 *
 * A client is not thread-safe; use one per thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/json.h"

#define VAULT_PATH_MAX 512                      /* a logical path ("secret/data/app/db") */
#define VAULT_TOKEN_MAX 4096                    /* a client token */
#define VAULT_ACCESSOR_MAX 128                  /* a token accessor, with its NUL */
#define VAULT_JWT_MAX (64u * 1024u)             /* a service account JWT */
#define VAULT_MAX_FIELDS 256                    /* fields in one secret */
#define VAULT_FIELD_NAME_MAX 256                /* bytes of one field name */
#define VAULT_RESPONSE_MAX (4u * 1024u * 1024u) /* response body */
#define VAULT_ERROR_TEXT_MAX 256
#define VAULT_MAX_PEER_ADDRS 8
#define VAULT_RETRY_412_MAX 4     /* retries of a 412 in one call */
#define VAULT_RETRY_403_MAX 4     /* retries of a 403 just after a login, in one call */
#define VAULT_FRESH_LOGIN_MS 2000 /* how long after a login a 403 may be retried */
#define VAULT_RETRY_MIN_MS 50     /* least sleep before such a retry */

/* A logical path: 1..VAULT_PATH_MAX-1 bytes of [A-Za-z0-9-_./@+=:,~], no leading '/', no empty,
 * "." or ".." segment (a trailing '/' is allowed). The one rule for every path this module sends
 * and for the injection contract's secret paths and namespace (common/injection.h). */
bool vault_path_valid(const char *p);

struct vault_options {
        const char
                *addr; /* "https://vault.example:8200" (VAULT_ADDR); http:// only with allow_http */
        bool allow_http;
        const char *ca_file; /* VAULT_CACERT */
        const char *ca_pem;  /* CLOUDTASER_VAULT_CA_PEM (one of ca_file / ca_pem) */
        size_t ca_pem_len;
        bool insecure_skip_verify;   /* VAULT_SKIP_VERIFY: the caller must log that it is set */
        const char *namespace_;      /* X-Vault-Namespace, NULL or "" for none */
        const char *client_cert_pem; /* optional mTLS (the broker) */
        size_t client_cert_pem_len;
        const char *client_key_pem;
        size_t client_key_pem_len;
        const char *unix_socket;
        unsigned connect_timeout_ms, request_timeout_ms, deadline_ms, max_attempts;
        unsigned backoff_base_ms, backoff_max_ms;
        const char *user_agent;
        /* The other addresses of the same vault (each node's api_addr, e.g. for a 307 from a
         * standby behind a load balancer to the active node): base URLs separated by commas or
         * white space, at most VAULT_MAX_PEER_ADDRS; NULL for none. Only their origins matter. */
        const char *peer_addrs;
        struct http_hooks hooks;
};

/* What went wrong, for one clear log line. Caller-owned, always filled by calls that take it. */
struct vault_error {
        int error;   /* the -errno the call returned, 0 on success */
        long status; /* HTTP status of the final answer, 0 when there was none */
        unsigned attempts;
        char path[VAULT_PATH_MAX];          /* the API path involved (no query) */
        char message[VAULT_ERROR_TEXT_MAX]; /* Vault's errors[] joined by "; ", or the
                                             * transport's text; "" when none */
};

/* The auth block of a login or renewal (the token itself stays inside the client). */
struct vault_auth {
        int64_t lease_duration; /* seconds; 0 = no expiry (root-like) */
        bool renewable;
        char accessor[128];
        char entity_id[64];
        size_t n_policies;
        char policies[512]; /* comma-separated, truncated to fit */
};

struct vault_token_info {
        int64_t ttl; /* seconds left, 0 = never expires */
        int64_t creation_ttl;
        int64_t explicit_max_ttl;
        bool renewable;
        char accessor[128];
        char display_name[128];
        char path[VAULT_PATH_MAX]; /* e.g. auth/kubernetes/login */
        char type[16];             /* "service" / "batch" */
        size_t n_policies;
        char policies[512];
};

enum vault_kv_version {
        VAULT_KV_UNKNOWN = 0,
        VAULT_KV_V1 = 1,
        VAULT_KV_V2 = 2,
};

/* A logical secret path split according to its mount. */
struct vault_kv_path {
        enum vault_kv_version version;
        char mount[VAULT_PATH_MAX];         /* "secret/" (with trailing '/') */
        char relative[VAULT_PATH_MAX];      /* "app/db" */
        char data_path[VAULT_PATH_MAX];     /* v2: "secret/data/app/db"; v1: "secret/app/db" */
        char metadata_path[VAULT_PATH_MAX]; /* v2: "secret/metadata/app/db"; v1: "" */
};

enum vault_value_type {
        VAULT_VALUE_STRING = 0, /* the JSON string's bytes */
        VAULT_VALUE_JSON,       /* any other JSON value, as compact JSON text (42, true, {"a":1}) */
};

struct vault_field {
        const char *name;  /* NUL-terminated */
        const char *value; /* value_len bytes (NUL bytes included, from "\u0000"), then a NUL */
        size_t value_len;
        enum vault_value_type type;
};

/* One read secret: all names and values in one secmem block. vault_secret_free() wipes. */
struct vault_secret {
        size_t n_fields;
        struct vault_field *fields; /* sorted by name */
        int64_t version;            /* KV v2 version, 0 for v1 */
        char created_time[48];      /* KV v2 metadata.created_time, "" for v1 */
        void *storage_;             /* internal */
};

struct vault_kv_metadata {
        int64_t current_version;
        int64_t oldest_version;
        int64_t max_versions;
        bool cas_required;
        char created_time[48];
        char updated_time[48];
        bool current_deleted; /* the current version has a deletion_time */
        bool current_destroyed;
};

struct vault_client;

/* Creates a client. -EINVAL for bad options (see http_client_new; namespace with control chars;
 * a peer address that is not an http(s) URL, or more than VAULT_MAX_PEER_ADDRS), -ENOMEM. Does
 * not contact Vault. */
int vault_client_new(const struct vault_options *o, struct vault_client **ret);
struct vault_client *vault_client_free(struct vault_client *c); /* wipes; accepts NULL */

/* Changes the time limits of later calls (see http_client_set_limits; 0 keeps a value). */
int vault_client_set_limits(struct vault_client *c, unsigned request_timeout_ms,
                            unsigned deadline_ms, unsigned max_attempts);

/* Sets (copies into secmem) / clears the client token. -EINVAL for an empty token, one over
 * VAULT_TOKEN_MAX or with characters outside printable ASCII. A token set here is "from outside":
 * no 403 grace (see above). */
int vault_set_token(struct vault_client *c, const char *token, size_t len);
void vault_clear_token(struct vault_client *c);
bool vault_has_token(const struct vault_client *c);

/* POST <mount>/login {"role","jwt"}. mount is "auth/kubernetes" or "kubernetes" (the "auth/"
 * prefix is added when missing). On success the returned client_token becomes the client's
 * token and *ret_auth (optional) describes it; for VAULT_FRESH_LOGIN_MS a 403 with it is
 * retried (see above). */
int vault_login_kubernetes(struct vault_client *c, const char *mount, const char *role,
                           const char *jwt, size_t jwt_len, struct vault_auth *ret_auth,
                           struct vault_error *err);

int vault_token_lookup_self(struct vault_client *c, struct vault_token_info *ret,
                            struct vault_error *err);
/* increment_s 0 = the server's default. */
int vault_token_renew_self(struct vault_client *c, int64_t increment_s, struct vault_auth *ret,
                           struct vault_error *err);
/* Revokes the token and clears it from the client (also when Vault says it was already invalid:
 * 403 then counts as success). */
int vault_token_revoke_self(struct vault_client *c, struct vault_error *err);

/* Splits a logical path using GET sys/internal/ui/mounts/<path>. A v2 path given with its
 * "data/" segment ("secret/data/app/db") and the same without it resolve alike. 404 from the
 * endpoint (old servers) means v1. */
int vault_kv_resolve(struct vault_client *c, const char *path, struct vault_kv_path *ret,
                     struct vault_error *err);

/* Splits `path` with the mount of an already resolved path (no request): -ENOENT when `path` is
 * not under known->mount, -EINVAL for a path that is the mount itself or invalid. Lets a caller
 * with several paths under one mount ask sys/internal/ui/mounts once. */
int vault_kv_path_from_mount(const struct vault_kv_path *known, const char *path,
                             struct vault_kv_path *ret);

/* Reads a secret. `p` from vault_kv_resolve(); version 0 = latest (ignored for v1). A v2
 * version that was deleted or destroyed is -ENOENT with the reason in err->message. */
int vault_kv_read(struct vault_client *c, const struct vault_kv_path *p, int64_t version,
                  struct vault_secret **ret, struct vault_error *err);

/* Writes a secret (string values). v2: cas < 0 means no check-and-set, else cas must equal the
 * current version (0: the secret must not exist); *ret_version (optional) gets the new version.
 * v1: cas must be < 0. */
int vault_kv_write(struct vault_client *c, const struct vault_kv_path *p,
                   const struct vault_field *fields, size_t n_fields, int64_t cas,
                   int64_t *ret_version, struct vault_error *err);

/* KV v2 metadata (-EOPNOTSUPP for a v1 path). */
int vault_kv_metadata(struct vault_client *c, const struct vault_kv_path *p,
                      struct vault_kv_metadata *ret, struct vault_error *err);

struct vault_secret *vault_secret_free(struct vault_secret *s); /* wipes; accepts NULL */
/* The field called name, or NULL. */
const struct vault_field *vault_secret_get(const struct vault_secret *s, const char *name);

/* Generic requests, for the endpoints without a dedicated call here (sys/...,
 * auth/<mount>/role/..., see also common/vault-sys.h): METHOD /v1/<path> with an optional JSON body
 * (a BUF_SECURE buffer when it carries a secret), the client token sent when `authenticated`. *ret
 * (optional) gets the parsed 2xx answer (JSON_SECURE, caller-owned), NULL when the answer has no
 * body (204). Errors as above; -EBADMSG for a 2xx body that is not JSON. vault_logical_read() is
 * GET, vault_logical_write() POST, both authenticated. */
int vault_request_json(struct vault_client *c, enum http_method method, const char *path,
                       const struct buf *body, bool authenticated, struct json_doc **ret,
                       struct vault_error *err);
int vault_logical_read(struct vault_client *c, const char *path, struct json_doc **ret,
                       struct vault_error *err);
int vault_logical_write(struct vault_client *c, const char *path, const struct buf *body,
                        struct json_doc **ret, struct vault_error *err);

/*
 * Child tokens and response wrapping (docs/protocol-vault.md, "Sealed token mode").
 *
 * vault_token_create_wrapped(): POST auth/token/create/<role> {policies: [t->policy], ttl,
 * display_name, meta} with `X-Vault-Wrap-TTL: <wrap_ttl_s>s`: the vault keeps the new token and
 * answers a single-use wrapping token instead (wrap_info.token, into *ret_wrapping_token, secmem,
 * caller frees with secmem_free()) and the new token's accessor (wrap_info.wrapped_accessor, into
 * ret_accessor, accessor_size bytes, at most VAULT_ACCESSOR_MAX). The role decides orphan and
 * which policies are allowed. -EINVAL bad arguments (no request), -EBADMSG an answer without
 * wrap_info, else as above.
 *
 * vault_unwrap_token(): POST sys/wrapping/unwrap with the wrapping token (not the client's) and
 * adopts the token inside as the client's (as a login does; *ret_auth optional). A wrapping token
 * works once: -EACCES (or -EINVAL with the vault's text) when it was used already, expired or is
 * not one, which is how an intercepted token shows.
 *
 * vault_token_create(): the same request without wrapping, for a caller that uses the new token
 * itself (the broker's per-session tokens): the token into *ret_token (secmem, secmem_free()),
 * its auth block (accessor, policies, lease) into *ret_auth (optional). -EBADMSG an answer
 * without auth.client_token.
 *
 * vault_token_revoke_accessor(): POST auth/token/revoke-accessor {accessor}; -ENOENT when the
 * vault does not know it (already revoked or expired).
 */
struct vault_child_token {
        const char *policy;       /* the one policy of the new token (required) */
        int64_t ttl_s;            /* 0: the role's */
        const char *display_name; /* optional */
        const char *(*meta)[2];   /* optional {key, value} pairs (not secrets) */
        size_t n_meta;
};
int vault_token_create_wrapped(struct vault_client *c, const char *role,
                               const struct vault_child_token *t, unsigned wrap_ttl_s,
                               char **ret_wrapping_token, char *ret_accessor, size_t accessor_size,
                               struct vault_error *err);
int vault_token_create(struct vault_client *c, const char *role, const struct vault_child_token *t,
                       char **ret_token, struct vault_auth *ret_auth, struct vault_error *err);
int vault_unwrap_token(struct vault_client *c, const char *wrapping_token, size_t len,
                       struct vault_auth *ret_auth, struct vault_error *err);
int vault_token_revoke_accessor(struct vault_client *c, const char *accessor,
                                struct vault_error *err);

/* Whether an error is worth retrying later (connection problems, timeouts, 429, 5xx, sealed). */
bool vault_error_is_transient(int r);

/* A short name for an errno as this module uses it ("permission denied", "not found",
 * "sealed or unavailable", ...), for log lines. */
const char *vault_strerror(int r);

/*
 * Pure decoders, exposed for tests and fuzzing. They take a body as received (untrusted) and
 * never touch the network. Returns as above (-EBADMSG for a body that is not what the API says).
 */
/* Error body of a >= 400 answer into err (status, errno, message). Never fails. */
void vault_decode_error(long status, const char *body, size_t len, const char *path,
                        struct vault_error *err);
/* Login / renewal answer: *ret_token (optional) gets the client token in secmem. */
int vault_decode_auth(const char *body, size_t len, struct vault_auth *ret, char **ret_token);
/* A wrapped answer: wrap_info.token into *ret_token (secmem, optional) and, when ret_accessor is
 * given, wrap_info.wrapped_accessor (required then). */
int vault_decode_wrap_info(const char *body, size_t len, char **ret_token, char *ret_accessor,
                           size_t accessor_size);
/* A KV read answer of the given version into a new secret. */
int vault_decode_kv(const char *body, size_t len, enum vault_kv_version v,
                    struct vault_secret **ret);
/* sys/internal/ui/mounts answer + the path asked into a vault_kv_path. */
int vault_decode_mount(const char *body, size_t len, const char *path, struct vault_kv_path *ret);

static inline void vault_client_freep(struct vault_client **c) {
        vault_client_free(*c);
}
#define _cleanup_vault_client_ __attribute__((cleanup(vault_client_freep)))
static inline void vault_secret_freep(struct vault_secret **s) {
        vault_secret_free(*s);
}
#define _cleanup_vault_secret_ __attribute__((cleanup(vault_secret_freep)))
