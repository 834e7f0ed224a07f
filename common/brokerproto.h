/* SPDX-License-Identifier: Apache-2.0 */
/*
 * brokerproto: the wire contract between the wrapper (broker mode) and cloudtaser-broker, and
 * between the operator's webhook and the broker (the annotation MAC). One table both sides read;
 * docs/protocol-broker.md describes the same thing for people.
 *
 * Keys. Everything is derived with HKDF-SHA256 (common/hmac.h) from the two records of the
 * operator's credential store (docs/operator.md "Credentials"):
 *   - broker-auth (32 random bytes, shared by every replica, never given to a wrapper) and
 *   - broker-token (32 random bytes, the installation's identity).
 *   session MAC key   = HKDF(ikm=broker-auth, salt=broker-token,
 * info="cloudtaser/broker/session/v1") session CA seed   = HKDF(ikm=broker-auth, salt=broker-token,
 *                            info="cloudtaser/broker/session-ca/v1" || counter byte)
 *   annotation key    = HKDF(ikm=broker-auth, salt=none, info="cloudtaser/broker/annotation/v1")
 *   installation id   = hex of the first 8 bytes of
 *                       HMAC(broker-token, "cloudtaser/broker/installation/v1")
 * so every replica derives the same keys (a session issued by one is accepted by another) and
 * a token issued by another installation (other broker-token) fails its MAC.
 *
 * Session token (text, at most BROKERPROTO_MAX_TOKEN bytes):
 *   "ctbs1." base64(payload) "." base64(HMAC-SHA256(session MAC key, "ctbs1." base64(payload)))
 * payload: compact JSON {"v":1,"inst":..,"ns":..,"pod":..,"uid":..,"sa":..,"paths":[..],
 * "iat":..,"exp":..,"crt":<hex SHA-256 of the client certificate (DER) issued with the token>}.
 * The MAC is checked (constant time) before a byte of the payload is decoded.
 *
 * Conventions: 0 on success, -errno on failure, out-parameters written only on success. Nothing
 * here logs; no error carries a key or token byte. Keys live in secmem (the caller allocates
 * struct brokerproto_keys with secmem_alloc or uses brokerproto_keys_new()).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/json.h"

#define BROKERPROTO_KEY_SIZE 32
#define BROKERPROTO_MAX_BODY (256u * 1024u)           /* a request body */
#define BROKERPROTO_MAX_RESPONSE (4u * 1024u * 1024u) /* a response body (secret values) */
#define BROKERPROTO_MAX_JWT 16384                     /* a service account token */
#define BROKERPROTO_MAX_CSR 8192                      /* a CSR PEM */
#define BROKERPROTO_MAX_TOKEN 16384                   /* a session token */
#define BROKERPROTO_MAX_PATHS 64         /* paths in one session / request (= injection) */
#define BROKERPROTO_MAX_PATH 512         /* bytes of one path (= VAULT_PATH_MAX) */
#define BROKERPROTO_MAX_NAME 253         /* a namespace, pod or service account name */
#define BROKERPROTO_MAX_UID 64           /* a pod UID */
#define BROKERPROTO_INSTALLATION_SIZE 17 /* 16 hex digits and a NUL */
#define BROKERPROTO_TOKEN_PREFIX "ctbs1."
#define BROKERPROTO_SESSION_TTL_DEFAULT 900 /* seconds */
#define BROKERPROTO_SESSION_TTL_MAX 3600
#define BROKERPROTO_CLOCK_SKEW 30 /* seconds a token's iat may be in the future */

/* The pod annotation carrying the admission MAC, and its value prefix. */
#define BROKERPROTO_ANNOTATION_MAC "cloudtaser.io/broker-mac"
#define BROKERPROTO_ANNOTATION_MAC_PREFIX "v1:"
#define BROKERPROTO_ANNOTATION_MAC_LEN (3 + 64) /* "v1:" + 64 hex digits */
/* The audience of the projected service account token the wrapper presents. */
#define BROKERPROTO_AUDIENCE "cloudtaser-broker"

/* The URL paths of the API. */
#define BROKERPROTO_PATH_SESSION "/v1/session"
#define BROKERPROTO_PATH_RENEW "/v1/session/renew"
#define BROKERPROTO_PATH_SECRETS "/v1/secrets"
#define BROKERPROTO_PATH_VERSIONS "/v1/versions"
/* Session tokens travel in `Authorization: Bearer <token>`. */
#define BROKERPROTO_AUTH_SCHEME "Bearer "

struct brokerproto_keys {
        uint8_t session_mac[BROKERPROTO_KEY_SIZE];
        uint8_t annotation[BROKERPROTO_KEY_SIZE];
        uint8_t auth[BROKERPROTO_KEY_SIZE];    /* broker-auth itself (for the CA seed) */
        uint8_t install[BROKERPROTO_KEY_SIZE]; /* broker-token itself */
        char installation[BROKERPROTO_INSTALLATION_SIZE];
};

/* Derives every key from broker-auth and broker-token (each exactly BROKERPROTO_KEY_SIZE bytes:
 * -EINVAL otherwise) into a new secmem block. *ret: brokerproto_keys_free(). -ENOMEM. */
int brokerproto_keys_new(const void *auth, size_t auth_len, const void *install, size_t install_len,
                         struct brokerproto_keys **ret);
struct brokerproto_keys *brokerproto_keys_free(struct brokerproto_keys *k); /* wipes; NULL ok */

/* The installation id (16 lower-case hex digits, see the top) from broker-token alone: the same
 * as brokerproto_keys.installation. Not a secret (it names the installation: the value of the
 * sealed pods' label, operator/modes.h). -EINVAL unless install_len == BROKERPROTO_KEY_SIZE. */
int brokerproto_installation_id(const void *install, size_t install_len,
                                char ret[BROKERPROTO_INSTALLATION_SIZE]);

/* The session CA's private scalar candidate number `counter` (0, 1, ...): the broker takes the
 * first that is a valid P-256 scalar (tls_key_from_p256_scalar()). */
void brokerproto_session_ca_seed(const struct brokerproto_keys *k, uint8_t counter,
                                 uint8_t ret[BROKERPROTO_KEY_SIZE]);

/* ---- the annotation MAC (operator writes, broker checks) -------------------------------- */

/* The annotation key from broker-auth alone (the operator holds no broker-token copy for it).
 * Same as brokerproto_keys.annotation. -EINVAL unless auth_len == BROKERPROTO_KEY_SIZE. */
int brokerproto_annotation_key(const void *auth, size_t auth_len,
                               uint8_t ret[BROKERPROTO_KEY_SIZE]);

/* "v1:" + hex HMAC(annotation key, "cloudtaser/broker/annotation/v1\0" ns "\0" sa "\0"
 * secret-paths "\0" env-map) into ret (BROKERPROTO_ANNOTATION_MAC_LEN + 1 bytes). The strings
 * are the annotation values exactly as admitted (env_map "" when absent). -EINVAL for NULLs. */
int brokerproto_annotation_mac(const uint8_t key[BROKERPROTO_KEY_SIZE], const char *ns,
                               const char *sa, const char *paths, const char *env_map,
                               char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]);
/* 0 when `value` is the MAC of those strings (constant-time comparison), -EPERM when not or
 * malformed. */
int brokerproto_annotation_mac_check(const uint8_t key[BROKERPROTO_KEY_SIZE], const char *ns,
                                     const char *sa, const char *paths, const char *env_map,
                                     const char *value);

/* ---- namespace confinement (the broker's sessions and the operator's unsealer) ----------- */

/* The default template: a namespace reads only below its own tenant prefix. */
#define BROKERPROTO_TENANT_DEFAULT "secret/data/{namespace}/"

/* The template (NULL: BROKERPROTO_TENANT_DEFAULT) with its first "{namespace}" replaced by ns,
 * into ret (size bytes). -EINVAL an empty template or namespace, -E2BIG when it does not fit. */
int brokerproto_tenant_prefix(const char *tenant, const char *ns, char *ret, size_t size);

/* 0 when the logical path (as injection_parse_secret_paths() gives it) is below prefix (a plain
 * prefix comparison: such paths have no "." or ".." segment), -EPERM when not. */
int brokerproto_path_confined(const char *prefix, const char *path);

/* ---- session tokens ---------------------------------------------------------------------- */

/* What a session token states. Strings are heap copies owned by the struct
 * (brokerproto_session_done()); paths[] are logical vault paths ("secret/data/ns/app"). */
struct brokerproto_session {
        char installation[BROKERPROTO_INSTALLATION_SIZE];
        char *ns, *pod, *uid, *sa;
        char **paths;
        size_t n_paths;
        int64_t iat, exp;                          /* unix seconds */
        uint8_t cert_sha256[BROKERPROTO_KEY_SIZE]; /* SHA-256 of the client certificate (DER) */
};
void brokerproto_session_done(struct brokerproto_session *s);

/* True when `path` is one of the session's paths (exact match). */
bool brokerproto_session_allows(const struct brokerproto_session *s, const char *path);

/* Appends the token for s (installation taken from k, not from s) to out (BUF_SECURE:
 * -EINVAL otherwise). -EINVAL for an invalid field (empty or over-long names, no paths, more
 * than BROKERPROTO_MAX_PATHS, exp <= iat, exp - iat > BROKERPROTO_SESSION_TTL_MAX), -E2BIG. */
int brokerproto_token_issue(const struct brokerproto_keys *k, const struct brokerproto_session *s,
                            struct buf *out);

/* Verifies a token at unix time `now`: -EBADMSG not a token (prefix, armour, size over
 * BROKERPROTO_MAX_TOKEN); -EPERM wrong MAC (forged, altered, or another installation's) or a
 * payload that names another installation; -EKEYEXPIRED expired (now >= exp) or issued in the
 * future (iat > now + BROKERPROTO_CLOCK_SKEW); -EBADMSG a MACed payload that does not parse
 * (cannot happen with tokens we issued). */
int brokerproto_token_verify(const struct brokerproto_keys *k, const char *token, size_t len,
                             int64_t now, struct brokerproto_session *ret);

/* Extracts the token from an Authorization header value ("Bearer <token>"): a pointer into
 * value, or NULL when absent or malformed. */
const char *brokerproto_bearer(const char *value);

/* ---- requests ---------------------------------------------------------------------------- */
/* Every parser takes an untrusted body of at most BROKERPROTO_MAX_BODY bytes (-E2BIG beyond),
 * parses it as strict JSON into a JSON_SECURE document (it may carry a JWT), and checks the
 * fields: -EBADMSG for malformed JSON, a missing or mistyped field, an unknown field, or a value
 * over its limit. Borrowed strings point into the struct's document (brokerproto_*_done()). */

/* POST /v1/session: {"jwt": "<service account token>", "csr": "<PKCS#10 PEM>"}.
 * POST /v1/session/renew: {"csr": "<PEM>"} (jwt then NULL). */
struct brokerproto_session_request {
        const char *jwt; /* 1..BROKERPROTO_MAX_JWT printable ASCII; NULL for a renewal */
        const char *csr; /* 1..BROKERPROTO_MAX_CSR bytes */
        struct json_doc *doc_;
};
int brokerproto_session_request_parse(const char *body, size_t len, bool renew,
                                      struct brokerproto_session_request *ret);
void brokerproto_session_request_done(struct brokerproto_session_request *r);

/* POST /v1/secrets and /v1/versions: {"paths": ["secret/data/ns/app", ...]}: 1..MAX_PATHS
 * distinct paths, each 1..MAX_PATH-1 bytes and a valid vault path (vault_path_valid()). */
struct brokerproto_paths_request {
        const char *paths[BROKERPROTO_MAX_PATHS];
        size_t n_paths;
        struct json_doc *doc_;
};
int brokerproto_paths_request_parse(const char *body, size_t len,
                                    struct brokerproto_paths_request *ret);
void brokerproto_paths_request_done(struct brokerproto_paths_request *r);

/* ---- responses --------------------------------------------------------------------------- */
/* Session (and renewal) response: {"certificate": "<PEM leaf>", "ca": "<session CA PEM>",
 * "token": "<session token>", "expires_at": <unix>}. The wrapper's parser: */
struct brokerproto_session_response {
        const char *certificate, *ca, *token;
        int64_t expires_at;
        struct json_doc *doc_;
};
int brokerproto_session_response_parse(const char *body, size_t len,
                                       struct brokerproto_session_response *ret);
void brokerproto_session_response_done(struct brokerproto_session_response *r);

/* Secrets response: {"secrets": {"<path>": {"data": {"<field>": "<value>"|<json>},
 * "metadata": {"version": N}}}} (the `data` object of each path's KV v2 read, as the vault gave
 * it: the wrapper decodes it with the vault client's decoder). Versions response:
 * {"versions": {"<path>": N}}. The wrapper looks each path up in `secrets` (wrapper/broker.c): */
struct brokerproto_secrets_response {
        const struct json_value *secrets; /* object: path -> {"data","metadata"} */
        struct json_doc *doc_;
};
/* versions: true for a versions response (members are integers). -EBADMSG when malformed. */
int brokerproto_secrets_response_parse(const char *body, size_t len, bool versions,
                                       struct brokerproto_secrets_response *ret);
void brokerproto_secrets_response_done(struct brokerproto_secrets_response *r);

/* Error responses: {"error": "<text>"} with 400, 401 (no valid session, token or certificate),
 * 403 (path not allowed, pod not admitted for broker mode, MAC mismatch), 413, 429, 502. */
