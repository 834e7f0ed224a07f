/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/internal.h: what the files of operator/registry/ share, and the pure parts
 * (no network) exposed for the unit tests and the fuzz target. Not an interface for other
 * modules: use operator/registry.h.
 *
 * The files: reference.c (image references), challenge.c (WWW-Authenticate), keyring.c (pull
 * secret credentials), manifest.c (platforms, manifests, configs), cache.c, fetch.c (one lookup on
 * the wire), client.c (the client and registry_lookup()).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/http.h"
#include "common/macro.h"
#include "common/sha256.h"
#include "operator/registry.h"

#define REGISTRY_NAME_MAX 255        /* domain + "/" + path, as distribution/reference */
#define REGISTRY_TAG_MAX 128         /* [\w][\w.-]{0,127} */
#define REGISTRY_MAX_CREDENTIALS 8   /* credentials tried for one registry */
#define REGISTRY_MAX_CHALLENGES 8    /* challenges in one 401 (all WWW-Authenticate fields) */
#define REGISTRY_ORIGIN_MAX 1024     /* "https://host[:port]" of a registry or a redirect */
#define REGISTRY_CREDENTIAL_MAX 4096 /* bytes of "user:password" */
#define REGISTRY_MAX_ARGS 4096       /* elements of Entrypoint / Cmd */
#define REGISTRY_MANIFEST_MAX (4u * 1024 * 1024) /* manifest and index bodies */
#define REGISTRY_CONFIG_MAX (8u * 1024 * 1024)   /* image config blobs */
#define REGISTRY_DOCKERCONFIG_MAX (1024u * 1024) /* one .dockerconfigjson */

/* A parsed, normalised image reference (distribution/reference's ParseNormalizedNamed plus the
 * kubelet's default tag). All strings are NUL-terminated and validated. */
struct registry_ref {
        char domain[REGISTRY_NAME_MAX + 1]; /* as named: "docker.io", "localhost:5000" */
        char host[REGISTRY_NAME_MAX + 1];   /* where the API is: "registry-1.docker.io" */
        char path[REGISTRY_NAME_MAX + 1];   /* "library/nginx" */
        char tag[REGISTRY_TAG_MAX + 1];     /* "latest" when neither tag nor digest was given */
        char digest[80];                    /* "sha256:<64 lower-case hex>", "" when none */
};

/* Parses s. -EINVAL with *ret_why (static text, optional) when s is not a reference Kubernetes
 * would pull; -EPROTONOSUPPORT for a digest algorithm other than sha256. */
int registry_parse_reference(const char *s, struct registry_ref *ret, const char **ret_why);

enum registry_auth_scheme {
        REGISTRY_AUTH_BASIC = 1,
        REGISTRY_AUTH_BEARER,
};

/* One WWW-Authenticate challenge (RFC 7235). When a header holds several, Bearer is preferred,
 * then Basic; others are ignored. Parameter names are case-insensitive, values token or
 * quoted-string. */
struct registry_challenge {
        enum registry_auth_scheme scheme;
        char realm[2048];
        char service[512];
        char scope[2048]; /* several "repository:...:pull" scopes fit */
};

/* header: one challenge list, as common/http joins every WWW-Authenticate field of a response
 * (at most REGISTRY_MAX_CHALLENGES challenges, HTTP_MAX_CHALLENGE bytes a value). The first
 * Bearer challenge is taken, else the first Basic one. -EBADMSG malformed, -E2BIG a value longer
 * than its field or more challenges, -EPROTONOSUPPORT no Basic or Bearer challenge, -EINVAL a
 * Bearer challenge without a realm. */
int registry_parse_challenge(const char *header, struct registry_challenge *ret);

/* Credentials for one image, in the order the kubelet tries them. */
struct registry_credential {
        char *user_pass;                 /* secmem, "user:password" */
        char key[REGISTRY_NAME_MAX + 1]; /* the normalised config key that matched (not secret) */
};
struct registry_credentials {
        struct registry_credential c[REGISTRY_MAX_CREDENTIALS];
        size_t n;
        size_t skipped; /* configs that were not valid JSON / entries that could not be decoded */
};

/* Collects the credentials of the dockerconfigjsons that apply to ref, as the kubelet's keyring
 * does: keys normalised (scheme dropped, "/v1/" and "/v2/" meaning the host), matched as globs
 * per host label with equal ports and the key's path a prefix of the image's, most specific key
 * first; then, for Docker Hub images, "index.docker.io" entries. Malformed configs and entries are
 * skipped (counted). -ENOMEM. *ret must be released with registry_credentials_done(). */
int registry_match_credentials(const char *const *configs, size_t n_configs,
                               const struct registry_ref *ref, struct registry_credentials *ret);
void registry_credentials_done(struct registry_credentials *c);

/* kubelet's URLsMatchStr(glob, target) on schemeless "host[:port][/path]" strings. */
bool registry_url_glob_match(const char *glob, const char *target);

/* A normalised platform (containerd's platforms.Normalize): "x86_64" is amd64, "aarch64" arm64
 * with variant v8, "arm" defaults to v7, "armhf" is arm/v7, "armel" arm/v6. arch may carry the
 * variant ("arm/v7"). -EINVAL for empty or over-long names. */
struct registry_platform {
        char os[32];
        char arch[32];
        char variant[16];
};
int registry_platform_normalize(const char *os, const char *arch, struct registry_platform *ret);

struct registry_descriptor {
        char media_type[128];
        char digest[80];
        int64_t size; /* -1 when absent */
};

enum registry_manifest_kind {
        REGISTRY_MANIFEST_IMAGE = 1,
        REGISTRY_MANIFEST_INDEX,
};

/* Decodes a manifest body (content_type: the response's Content-Type, may be "" or NULL). For an
 * image manifest, *ret_desc is its config descriptor; for an index (OCI index or Docker manifest
 * list), the entry for platform p: an exact match, else for arm a lower compatible variant, else
 * an entry without a platform. Returns 0, or -ENOENT when the index has nothing for p (available,
 * if given, then lists what it has, "linux/amd64, linux/arm64/v8"), -EPROTONOSUPPORT for schema 1,
 * -EMEDIUMTYPE when the config is not a container image config, -EBADMSG malformed, -E2BIG. why
 * (optional) is a static explanation. */
int registry_decode_manifest(const char *body, size_t len, const char *content_type,
                             const struct registry_platform *p,
                             enum registry_manifest_kind *ret_kind,
                             struct registry_descriptor *ret_desc, char *available, size_t availlen,
                             const char **why);

/* Reads config.Entrypoint and config.Cmd of an image config blob (each absent, null or an array
 * of strings). ret->digest is left empty. -EBADMSG, -E2BIG, -ENOMEM. */
int registry_decode_config(const char *body, size_t len, struct registry_image_config *ret);

/* "sha256:<hex>" of n bytes. */
void registry_digest(const void *p, size_t n, char ret[80]);

/* Deep copy. -ENOMEM. */
int registry_image_config_copy(const struct registry_image_config *src,
                               struct registry_image_config *ret);

/* The cache, keyed by an opaque string. Entries put with ttl (tag references) expire after the
 * client's tag_ttl_s on its hook clock; the others stay until evicted (least recently used
 * first) when cache_entries are in use. get: 0 and a copy, or -ENOENT. */
int registry_cache_get(struct registry_client *r, const char *key,
                       struct registry_image_config *ret);
int registry_cache_put(struct registry_client *r, const char *key, bool ttl,
                       const struct registry_image_config *c);
/* The scope of cache keys for results read with the credential user_pass ("user:password") at
 * ref's host: 32 hex digits of SHA-256(the client's random salt, host, user:pass) and a NUL
 * (client.c). */
void registry_credential_scope(const struct registry_client *r, const struct registry_ref *ref,
                               const char *user_pass, char out[33]);

/* --- cloud credential providers (cloud.c) -------------------------------------------------- */

enum registry_cloud_kind {
        REGISTRY_CLOUD_NONE = 0,
        REGISTRY_CLOUD_ECR,
        REGISTRY_CLOUD_GCP,
        REGISTRY_CLOUD_ACR,
};

/* What a registry host says about its provider. */
struct registry_cloud_target {
        enum registry_cloud_kind kind;
        char name[REGISTRY_NAME_MAX + 1]; /* the host without the port */
        /* ECR: */
        char account[13];
        char region[64];
        const char *suffix; /* "amazonaws.com", "amazonaws.com.cn", ... (static) */
        bool fips;
        /* ACR: the sovereign cloud's defaults (static) */
        const char *authority; /* "https://login.microsoftonline.com" */
        const char *scope;     /* "https://management.azure.com/.default" */
};

/* The provider of a registry host ("host[:port]"; the port is ignored), as the kubelet's
 * credential providers match them: ECR "<12 digits>.dkr.ecr[-fips].<region>.amazonaws.com" (and
 * ".amazonaws.com.cn", "dkr-ecr", the other AWS partitions), GCP "gcr.io", "*.gcr.io",
 * "*-docker.pkg.dev", "container.cloud.google.com", ACR "*.azurecr.io|cn|us|de". ret (optional)
 * is written only for a match. */
enum registry_cloud_kind registry_cloud_match(const char *host, struct registry_cloud_target *ret);

/* The words of a denial for a registry of kind k, completed by the registry's name ("give the
 * operator an IRSA role ... allowed to pull from"); NULL for REGISTRY_CLOUD_NONE. */
const char *registry_cloud_hint(enum registry_cloud_kind k);

/* The STS and ECR API endpoints for target t (ECR): AWS_ENDPOINT_URL_STS / _ECR, else
 * AWS_ENDPOINT_URL, else STS in AWS_REGION / AWS_DEFAULT_REGION / the registry's region (global
 * sts.amazonaws.com with AWS_STS_REGIONAL_ENDPOINTS=legacy in the aws partition), ECR in the
 * registry's region; "-fips" hosts for FIPS registries. -EINVAL for an override that is not an
 * https URL, a malformed region, or a result that does not fit. */
int registry_cloud_endpoints(const struct registry_client *r, const struct registry_cloud_target *t,
                             char *sts, size_t stslen, char *ecr, size_t ecrlen);

/* A temporary or static AWS key pair, every field in secmem (session_token NULL for static keys
 * without one). */
struct registry_aws_keys {
        char *key_id;
        char *secret;
        char *session_token;
};
void registry_aws_keys_done(struct registry_aws_keys *k);

/* An STS AssumeRoleWithWebIdentity answer (XML, at most TOKEN_BODY_MAX bytes): the Credentials
 * of the AssumeRoleWithWebIdentityResult and their Expiration (ISO 8601 UTC, unix seconds).
 * -EACCES for an ErrorResponse (code: its Code when it is a plain identifier, else ""),
 * -EBADMSG malformed (missing fields, nested markup in a value, unknown entities, controls or
 * spaces in a value), -E2BIG a value over its limit. */
int registry_sts_parse(const char *body, size_t n, struct registry_aws_keys *ret,
                       int64_t *ret_expires_unix, char *code, size_t codelen);

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" as unix seconds. -EBADMSG. */
int registry_parse_iso8601(const char *s, size_t n, int64_t *ret);

/* An ECR GetAuthorizationToken answer: authorizationData[0].authorizationToken (base64 of
 * "AWS:<password>") decoded into a secmem "user:password", and expiresAt (epoch seconds, a JSON
 * number). -EBADMSG, -E2BIG. */
int registry_ecr_parse(const char *body, size_t n, char **ret_user_pass, int64_t *ret_expires_unix);

/* An OAuth 2.0 token answer (the GCE metadata server, AAD, ACR's oauth2/exchange): the string
 * field (secmem) and, when ret_expires_in is given, expires_in seconds (0 when absent).
 * -EACCES for an {"error": ...} answer (code as for registry_sts_parse), -EBADMSG. */
int registry_oauth_parse(const char *body, size_t n, const char *field, char **ret_token,
                         int64_t *ret_expires_in, char *code, size_t codelen);

/* How long a credential that expires at expires_unix is used from now_unix: until
 * REGISTRY_CLOUD_MARGIN_S before its expiry (half its lifetime when that is shorter); 0 for one
 * already expired (used once, never cached). */
#define REGISTRY_CLOUD_MARGIN_S 300u
uint64_t registry_cloud_lifetime_usec(int64_t expires_unix, int64_t now_unix);

/* Loads the providers' variables from env (NULL: the process environment). -ENOMEM. */
int registry_cloud_env_load(struct registry_client *r, const char *const *env);
/* Frees them and the credential cache. */
void registry_cloud_env_done(struct registry_client *r);

struct registry_session;
/* The registry credential ("user:password", secmem) of the operator's identity for the session's
 * registry, from the cache or the provider's exchanges. -ENOENT when the registry has no
 * provider or the provider is not configured, -EACCES when an endpoint refused, other -errno on
 * transport or malformed answers; then s->cloud_err says what happened (never a value). */
int registry_cloud_credential(struct registry_session *s, char **ret);
/* Drops the cached credential of host (the registry refused it). */
void registry_cloud_forget(struct registry_client *r, const char *host);

enum cloud_env_var {
        CLOUD_AWS_ROLE_ARN,
        CLOUD_AWS_WEB_IDENTITY_TOKEN_FILE,
        CLOUD_AWS_ROLE_SESSION_NAME,
        CLOUD_AWS_REGION,
        CLOUD_AWS_DEFAULT_REGION,
        CLOUD_AWS_STS_REGIONAL_ENDPOINTS,
        CLOUD_AWS_ENDPOINT_URL,
        CLOUD_AWS_ENDPOINT_URL_STS,
        CLOUD_AWS_ENDPOINT_URL_ECR,
        CLOUD_AWS_ACCESS_KEY_ID,
        CLOUD_AWS_SECRET_ACCESS_KEY,
        CLOUD_AWS_SESSION_TOKEN,
        CLOUD_GCE_METADATA_HOST,
        CLOUD_AZURE_CLIENT_ID,
        CLOUD_AZURE_TENANT_ID,
        CLOUD_AZURE_FEDERATED_TOKEN_FILE,
        CLOUD_AZURE_AUTHORITY_HOST,
        _CLOUD_ENV_MAX,
};

struct cloud_cache_entry {
        char host[REGISTRY_NAME_MAX + 1]; /* "host[:port]" as the reference names it */
        char *user_pass;                  /* secmem, NULL: free */
        uint64_t expires_usec;            /* hook clock */
};
#define REGISTRY_CLOUD_CACHE 16

/* --- shared by the files of operator/registry/ ---------------------------------------------- */

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_TAG_TTL_S 300u
#define DEFAULT_CACHE_ENTRIES 1024u
#define MAX_CACHE_ENTRIES 1000000u
/* The cache's byte budget: the strings (keys, Entrypoint and Cmd) of all entries together. An
 * entry holds at most INJECTION_MAX_LIST bytes of strings (registry_decode_config refuses more). */
#define CACHE_MAX_BYTES (16u * 1024u * 1024u)
#define MAX_REDIRECTS 4
#define MAX_INDEX_DEPTH 2 /* an index may name an index, once */
#define TOKEN_BODY_MAX (256u * 1024)
#define TOKEN_MAX 12288 /* fits one header line with "Authorization: Bearer " */
#define FIX_HINT "set the container's command or the cloudtaser.io/command annotation"
#define USER_AGENT "cloudtaser-operator"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define ACCEPT_MANIFESTS \
        MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

struct cache_entry {
        char *key;             /* NULL: free slot */
        uint64_t expires_usec; /* 0: never */
        uint64_t last_used;
        size_t bytes; /* counted in the client's cache_bytes */
        struct registry_image_config cfg;
};

/* A lookup in flight that later identical ones wait for instead of asking the registry again
 * (client.c): same reference, platform and set of credentials. Under the client's lock. */
#define REGISTRY_MAX_FLIGHTS 64
struct registry_flight {
        char key[SHA256_HEX_SIZE]; /* "": free */
        unsigned waiters;          /* followers not yet gone */
        bool done;
        int q;
        struct registry_image_config cfg; /* the leader's result, copied to each follower */
        char err[512];
};

struct registry_client {
        char **insecure; /* registry_options.insecure, copied */
        size_t n_insecure;
        unsigned timeout_ms;
        unsigned tag_ttl_s;
        char *ca_pem; /* system bundle + the extra CA file (public data) */
        size_t ca_pem_len;
        struct http_hooks hooks;
        uint8_t salt[32]; /* keys the credential scopes of cache entries */

        pthread_mutex_t lock; /* cache and stats */
        struct cache_entry *cache;
        size_t n_cache;
        size_t cache_bytes; /* sum of the entries' bytes, at most CACHE_MAX_BYTES */
        uint64_t tick;
        struct registry_stats stats;
        char *cloud_env[_CLOUD_ENV_MAX]; /* the providers' variables; secmem for secrets */
        struct cloud_cache_entry cloud_cache[REGISTRY_CLOUD_CACHE]; /* under lock */
        struct registry_flight flights[REGISTRY_MAX_FLIGHTS];       /* under lock */
        pthread_cond_t flight_done; /* with lock: a flight has its result */
};

/* One lookup in flight (fetch.c), created by registry_lookup(). */
struct registry_session {
        struct registry_client *r;
        const struct registry_ref *ref;
        const struct registry_credentials *creds;
        uint64_t deadline;                 /* CLOCK_MONOTONIC usec */
        char base[REGISTRY_NAME_MAX + 16]; /* "https://host[:port]" of the registry */
        bool insecure;                     /* the registry is named in registry_options.insecure */
        bool tried_http;      /* the plain-HTTP fallback was taken: it does not speak TLS */
        char *auth;           /* secmem: "Bearer ..." / "Basic ...", NULL = none */
        size_t next_cred;     /* next credential to try */
        bool anonymous_token; /* auth holds a token obtained without credentials */
        int cred_used;        /* index of the credential auth came from, -1 none */
        bool cloud_tried;     /* the operator's cloud identity was asked (once a lookup) */
        bool cloud_used;      /* auth came from it */
        char cloud_err[200];  /* why it gave nothing, "" when it did or was not asked */
        char *err;
        size_t errlen;
};

/* CLOCK_MONOTONIC in microseconds (lookup deadlines; the cache uses the hook clock). */
uint64_t registry_mono_usec(void);
/* The hooks' clock (registry_options.hooks.now_usec, else registry_mono_usec()): cache TTLs and
 * the cloud credentials' expiry. */
uint64_t registry_hook_now(const struct registry_client *r);
/* Milliseconds left to the session's deadline, 0 once past it. */
unsigned registry_session_left_ms(const struct registry_session *s);
/* A transport failure (-errno of common/http) in words: "timed out", "connection refused"... */
const char *registry_errno_text(int r);

/* err: one printable line. Whatever the arguments held, control bytes become '?'. */
_printf_(3, 4) void registry_set_err(char *err, size_t errlen, const char *fmt, ...);

/* Whether s[0..n) is a registry domain as references name it: host (DNS labels, or an IPv6
 * literal in brackets) and an optional port. */
bool registry_domain_valid(const char *s, size_t n);

/* s[0..n) as a digest: sha256 with 64 lower-case hex digits. -EINVAL, -EPROTONOSUPPORT for
 * another (well-formed) algorithm. */
int registry_digest_check(const char *s, size_t n);

/* "os/arch[/variant]". */
void registry_platform_string(const struct registry_platform *p, char *out, size_t sz);

/* Fetches the manifest (and index) of s->ref for plat and decodes its config into *ret;
 * ret->digest is the manifest the config came from, top_digest the digest the reference resolved
 * to. Errors are explained in s->err. */
int registry_resolve(struct registry_session *s, const struct registry_platform *plat,
                     struct registry_image_config *ret, char top_digest[80]);

/* Whether ref's registry is named in the client's insecure list. */
bool registry_is_insecure(const struct registry_client *r, const struct registry_ref *ref);

/* Releases every cache entry and the table (registry_client_free()). */
void registry_cache_done(struct registry_client *r);

/* Drops the session's Authorization value (wiped). */
void registry_session_set_auth(struct registry_session *s, char *auth);

/* Copies s into dst[size]; -E2BIG (dst untouched) when it does not fit. */
static inline int copy_str(char *dst, size_t size, const char *s, size_t n) {
        if (n >= size)
                return -E2BIG;
        memcpy(dst, s, n);
        dst[n] = '\0';
        return 0;
}

static inline bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static inline bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static inline bool is_word(char c) {
        return is_alnum(c) || c == '_';
}

static inline bool is_hex_lower(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
