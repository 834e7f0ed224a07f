/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube: a Kubernetes API client over common/http, for the operator (pull secrets, leader
 * election), the CLI and the broker.
 *
 * Configuration, either
 *   - in-cluster (client-go's InClusterConfig): KUBERNETES_SERVICE_HOST and _PORT, the service
 *     account's token, ca.crt and namespace under KUBE_SA_DIR (a directory the caller may
 *     override, for tests). The token FILE is re-read for every request: the kubelet rotates the
 *     projected token in place;
 *   - or a kubeconfig (kubectl's rules): the files of $KUBECONFIG (':'-separated; the first file
 *     that names a cluster, user or context wins, as does the first current-context), else
 *     ~/.kube/config; the context given or current-context; for the cluster server,
 *     certificate-authority(-data), insecure-skip-tls-verify (refused unless the caller allows it
 *     explicitly); for the user token, tokenFile (re-read per request), client-certificate(-data)
 *     and client-key(-data), or an exec credential plugin (client.authentication.k8s.io/v1 or
 *     v1beta1 ExecCredential): the command run without a shell (argv: command then args; a
 *     relative command with a '/' is relative to its kubeconfig's directory), stdin /dev/null,
 *     stderr inherited, the process environment plus the plugin's env and KUBERNETES_EXEC_INFO,
 *     bounded in time (KUBE_EXEC_TIMEOUT_MS, then SIGKILL) and output (KUBE_EXEC_MAX_OUTPUT).
 *     Its status.token is used until status.expirationTimestamp (re-run from then on; without an
 *     expiry until the API server answers 401, then once more). Paths in a kubeconfig are
 *     relative to its directory. Basic auth (username/password) and auth-provider are refused.
 *
 * Requests: GET, CREATE (POST), UPDATE (PUT), PATCH (merge, strategic merge or JSON patch) on an
 * API path ("/api/v1/namespaces/ns/secrets/x"), and WATCH (a stream of events, kube_watch()). A
 * 2xx body is returned parsed; any other answer is decoded from its Status object into struct
 * kube_error and mapped to an errno:
 *   -EACCES 401/403, -ENOENT 404, -ESTALE 409 Conflict (the object's resourceVersion changed:
 *   read it again and retry), -EEXIST 409 AlreadyExists, -ETIME 410 Gone / Expired (a watch's
 *   resourceVersion is too old: list again), -EINVAL 400/422 (BadRequest, Invalid), -EAGAIN 429
 *   and 503 (TooManyRequests, ServiceUnavailable: retry later), -EPROTO other statuses, and the
 *   transport errors of common/http.
 *
 * Threads: a struct kube_client is safe to use from several threads at once. It holds up to
 * KUBE_MAX_CONNECTIONS http clients (each one keep-alive connection), lent to one request at a
 * time (a watch holds one for as long as it lasts); a request finding all of them busy waits for
 * one. The exec plugin's token is shared under
 * the client's lock (one plugin run at a time).
 *
 * Secrets: tokens, private keys, and response bodies are kept in secmem. Nothing here logs; the
 * error report never holds a token (it names files, contexts, statuses and the server's message).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_MAX_BODY (4u * 1024u * 1024u)   /* a response body */
#define KUBE_MAX_TOKEN (64u * 1024u)         /* a bearer token */
#define KUBE_MAX_FILE (1024u * 1024u)        /* a kubeconfig, CA, certificate or key file */
#define KUBE_MAX_KUBECONFIGS 16              /* files in $KUBECONFIG */
#define KUBE_MAX_CONNECTIONS 4               /* http clients of one kube client */
#define KUBE_EXEC_TIMEOUT_MS 10000u          /* an exec plugin run */
#define KUBE_EXEC_MAX_OUTPUT (1024u * 1024u) /* an exec plugin's stdout */
#define KUBE_EXEC_MAX_ARGS 64
#define KUBE_WATCH_MAX_EVENT (1024u * 1024u) /* one event (one line of a watch), by default */
#define KUBE_WATCH_TIMEOUT_S_DEFAULT 300u    /* timeoutSeconds of a watch, by default */
#define KUBE_WATCH_TIMEOUT_S_MAX 3600u
#define KUBE_RV_MAX 64 /* a resourceVersion, its NUL included */

/* Why a call failed: printable ASCII only, fixed size, never a secret. code: the HTTP status
 * (0 when there was no answer); reason: the Status reason ("NotFound", "Conflict"...) or "";
 * message: one line for a person (the server's message, or what went wrong before it). */
struct kube_error {
        long code;
        char reason[64];
        char message[512];
};

struct kube_config;

/* In-cluster configuration. sa_dir: NULL for KUBE_SA_DIR. -ENOENT (not in a cluster: the
 * variables are not set, or the directory has no token), -errno reading ca.crt. */
int kube_config_incluster(const char *sa_dir, struct kube_config **ret, struct kube_error *err);

/* An explicit configuration: server ("https://..."), a CA bundle file (NULL: the server is not
 * trusted, -EINVAL) and a bearer token file re-read per request (NULL: none). -EINVAL, -errno
 * reading the CA. */
int kube_config_new(const char *server, const char *ca_file, const char *token_file,
                    struct kube_config **ret, struct kube_error *err);

struct kube_load_options {
        const char *paths;   /* ':'-separated kubeconfig files; NULL: $KUBECONFIG, else
                              * $HOME/.kube/config */
        const char *context; /* NULL: current-context */
        bool allow_insecure; /* accept insecure-skip-tls-verify: true (else -EPERM) */
};

/* Reads a kubeconfig. -ENOENT (no file, no such context, cluster or user), -EBADMSG (malformed,
 * a field of the wrong type), -EPERM (insecure-skip-tls-verify not allowed), -EPROTONOSUPPORT
 * (basic auth, auth-provider, an exec apiVersion other than v1/v1beta1), -E2BIG, -ENOMEM. */
int kube_config_load(const struct kube_load_options *o, struct kube_config **ret,
                     struct kube_error *err);

/* Frees (wiping the secrets). Accepts NULL. Returns NULL. */
struct kube_config *kube_config_free(struct kube_config *c);

/* The API server URL, the namespace (the context's, the service account's, else "default"), and
 * the context's name ("" in-cluster). Borrowed from c. */
const char *kube_config_server(const struct kube_config *c);
const char *kube_config_namespace(const struct kube_config *c);
const char *kube_config_context(const struct kube_config *c);
/* The CA bundle the API server is verified with (PEM, *ret_len bytes), or NULL (none: the
 * system's, or insecure). Borrowed from c. */
const char *kube_config_ca(const struct kube_config *c, size_t *ret_len);

struct kube_options {
        unsigned timeout_ms;     /* per request, all attempts included; default 5000 */
        struct http_hooks hooks; /* common/http's clock and sleep (tests) */
        /* Wall clock for exec credential expiry, seconds since the epoch; default time(). */
        int64_t (*now_unix)(void *userdata);
        void *userdata;
};

struct kube_client;

/* A client for config (which it takes: the caller's pointer is cleared on success). o may be
 * NULL. -EINVAL, -ENOMEM, the errors of http_client_new(). */
int kube_client_new(struct kube_config **config, const struct kube_options *o,
                    struct kube_client **ret);
/* Frees the client and its configuration. Accepts NULL. Returns NULL. */
struct kube_client *kube_client_free(struct kube_client *k);

enum kube_patch_type {
        KUBE_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
        KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
        KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
};

/* path: an absolute API path, with an optional "?query". body: JSON (any buffer; secrets in a
 * BUF_SECURE one). *ret (may be NULL when the body is not wanted): the parsed 2xx response in
 * secmem, caller-owned. err (optional) is filled on failure. Return values: see the top. */
int kube_get(struct kube_client *k, const char *path, struct json_doc **ret,
             struct kube_error *err);
/* A GET answered in another media type (accept: "application/vnd.kubernetes.protobuf"): the body
 * of a 2xx answer as it came, appended to out (out's maximum applies, -E2BIG; give a BUF_SECURE
 * buffer when it may hold a secret). Other answers as kube_get() (a Status the server wrote in
 * that media type is not decoded: err says only the status). -EINVAL for a NULL accept or out. */
int kube_get_raw(struct kube_client *k, const char *path, const char *accept, struct buf *out,
                 struct kube_error *err);
int kube_create(struct kube_client *k, const char *path, const struct buf *body,
                struct json_doc **ret, struct kube_error *err);
int kube_update(struct kube_client *k, const char *path, const struct buf *body,
                struct json_doc **ret, struct kube_error *err);
int kube_patch(struct kube_client *k, const char *path, enum kube_patch_type type,
               const struct buf *body, struct json_doc **ret, struct kube_error *err);

/* The ".dockerconfigjson" of a kubernetes.io/dockerconfigjson Secret (a legacy
 * kubernetes.io/dockercfg is converted to the {"auths":{...}} form), base64-decoded, appended to
 * out (give a BUF_SECURE buffer; out is unchanged on failure). -EINVAL (invalid names),
 * -EMEDIUMTYPE (another type), -EBADMSG, and kube_get()'s errors. */
int kube_get_pull_secret(struct kube_client *k, const char *namespace_, const char *name,
                         struct buf *out, struct kube_error *err);

/* A service-account token from the TokenRequest API (POST
 * /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token): audience NULL for the API server's
 * default, expiration_s >= 600 (the server's minimum; 0: 600). *ret_token: the JWT in secmem,
 * caller-owned (secmem_free); *ret_len its length. -EINVAL (invalid names), -EBADMSG (no
 * status.token), and kube_create()'s errors. */
int kube_token_request(struct kube_client *k, const char *namespace_, const char *service_account,
                       const char *audience, int64_t expiration_s, char **ret_token,
                       size_t *ret_len, struct kube_error *err);

/* ---- watches ------------------------------------------------------------------------------ */

enum kube_event_type {
        KUBE_EVENT_ADDED,
        KUBE_EVENT_MODIFIED,
        KUBE_EVENT_DELETED,
        KUBE_EVENT_BOOKMARK, /* only a resourceVersion to resume from (allowWatchBookmarks) */
};

/* One event: object (borrowed for the callback's duration: copy what is kept) is a JSON object;
 * resource_version is its metadata.resourceVersion: 1..KUBE_RV_MAX-1 bytes of [A-Za-z0-9._-]
 * (resume a watch from the last one seen). */
struct kube_event {
        enum kube_event_type type;
        const struct json_value *object;
        const char *resource_version;
};

/* The callback: 0 to go on, a negative errno to stop the watch (returned by it). */
typedef int (*kube_event_fn)(void *userdata, const struct kube_event *ev);

/* The stream parser of a watch's body (exposed for its fuzz target and tests; kube_watch() uses
 * it): a sequence of JSON event objects, one per line ({"type": "ADDED" | "MODIFIED" |
 * "DELETED" | "BOOKMARK" | "ERROR", "object": {...}}), fed in pieces split anywhere. Empty lines
 * are skipped. Each complete line is parsed and handed to fn; an ERROR event's object is a
 * Status, decoded as kube_status_decode() does (410 Expired / Gone: -ETIME) into err and
 * returned. A line over max_line bytes (0: KUBE_WATCH_MAX_EVENT) is -E2BIG before it is
 * complete; a line that is not such an event (malformed JSON, an unknown type, no object, no or
 * a malformed metadata.resourceVersion) is -EBADMSG. Once an error is returned, every later feed
 * returns it again. The pending bytes live in secmem and are wiped. */
struct kube_watch_parser;
int kube_watch_parser_new(size_t max_line, kube_event_fn fn, void *userdata,
                          struct kube_watch_parser **ret);
/* 0, or the first error (see above; fn's own negative return included). err optional. */
int kube_watch_parser_feed(struct kube_watch_parser *p, const void *data, size_t len,
                           struct kube_error *err);
/* Bytes of an incomplete last line (a stream that ends with some is cut short). */
size_t kube_watch_parser_pending(const struct kube_watch_parser *p);
struct kube_watch_parser *kube_watch_parser_free(struct kube_watch_parser *p); /* NULL ok */

struct kube_watch_options {
        /* Where to start: a resourceVersion from a list or a previous event; NULL or "": the
         * current state first, as ADDED events, then the changes. */
        const char *resource_version;
        unsigned timeout_s; /* timeoutSeconds: the server ends the watch then; 0: default, at
                             * most KUBE_WATCH_TIMEOUT_S_MAX */
        size_t max_event;   /* 0: KUBE_WATCH_MAX_EVENT */
        bool bookmarks;     /* allowWatchBookmarks=true */
        kube_event_fn on_event;
        /* Polled about once a second (NULL: never): true ends the watch with -ECANCELED. */
        bool (*cancelled)(void *userdata);
        void *userdata; /* of both */
};

/* Watches a collection: path is its list path ("/api/v1/pods", "/api/v1/namespaces/ns/pods")
 * with an optional query ("?labelSelector=..."), to which watch=1, resourceVersion,
 * timeoutSeconds and allowWatchBookmarks are added. Events go to o->on_event as they arrive, on
 * the caller's thread. Returns 0 when the server ended the watch (its timeout: resume from the
 * last resourceVersion seen), -ETIME (410: the resourceVersion is too old, list again), the
 * callback's error, -ECANCELED, -E2BIG / -EBADMSG (an event over the limit or malformed; a body
 * cut in the middle of an event: -ECONNRESET), the status errors above (the watch was refused:
 * 401, 403, 404...), and the transport errors; the client side gives up timeout_s + 30 s after
 * the start (-ETIMEDOUT). -EINVAL for a bad path, resourceVersion or options. */
int kube_watch(struct kube_client *k, const char *path, const struct kube_watch_options *o,
               struct kube_error *err);

static inline void kube_watch_parser_freep(struct kube_watch_parser **p) {
        kube_watch_parser_free(*p);
}

/* Whether s is a valid DNS-1123 subdomain (namespace, secret and service account names). */
bool kube_name_valid(const char *s);

/* Decodes a non-2xx answer: status and body (a Status object, or anything) into *ret. Exposed
 * for the tests; kube_get() and the others call it. Returns the errno (see the top). */
int kube_status_decode(long status, const char *body, size_t len, struct kube_error *ret);

static inline void kube_config_freep(struct kube_config **c) {
        kube_config_free(*c);
}
static inline void kube_client_freep(struct kube_client **k) {
        kube_client_free(*k);
}
