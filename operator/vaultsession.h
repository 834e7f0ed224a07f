/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/vaultsession: the operator's own vault login (docs/operator.md, "Credentials in
 * vault").
 *
 * The operator logs in through the Kubernetes auth method with its projected service-account
 * JWT (a file, re-read at every login: the kubelet rotates it), role `cloudtaser-operator` and
 * mount `kubernetes` by default, in an optional vault namespace (X-Vault-Namespace, the
 * vault_options' namespace_). The token lives in the vault client (secmem); this module never
 * sees its bytes. A session thread:
 *   - logs in, retrying with backoff (backoff_min_ms doubling up to backoff_max_ms, default 1 s
 *     to 30 s) while vault is unreachable, sealed, or refuses the login; after a login it
 *     checks, when probe_path is set, that the token may reach it (the mount lookup
 *     sys/internal/ui/mounts/<probe_path>: a 403 there means the policy is missing). Every
 *     failed attempt is ONE log line (warning) naming the cause and, for the common ones, the
 *     fix (see vaultsession_explain). The session is never ready before a login (and probe)
 *     succeeded, and it never falls back to anything else;
 *   - renews the token at about 2/3 of its lease (less up to a tenth of jitter, at least 500 ms
 *     later), and logs in again instead when the renewal fails, when the token is not renewable,
 *     or when a renewal capped by the token's max TTL comes back under a third of the lease the
 *     login gave; those logins retry with the same backoff. A token whose lease ran out while
 *     logging in failed makes the session not ready until a login succeeds again;
 *   - what HA vaults answer while they catch up (412, a fresh token's 403, a 307 from a standby
 *     to one of the configured addresses) is retried or followed inside common/vault's calls
 *     (see vault.h); a lasting 412 or a 503 is one more failed attempt here.
 *
 * Threads: the client is lent to one borrower at a time (vaultsession_borrow/_return); the
 * session thread takes the same lock for its login and renewal calls, so a borrower may wait for
 * one of them (bounded by the vault client's deadline). Everything else is safe from any thread.
 *
 * Nothing here logs a token, the JWT or a secret value: log lines name the address, mount, role,
 * paths, HTTP statuses and vault's own error text (which never echoes a token).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/vault.h"

#define VAULTSESSION_DEFAULT_ROLE "cloudtaser-operator"
#define VAULTSESSION_DEFAULT_MOUNT "kubernetes"
#define VAULTSESSION_DEFAULT_JWT_PATH "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define VAULTSESSION_BACKOFF_MIN_MS 1000u
#define VAULTSESSION_BACKOFF_MAX_MS 30000u
#define VAULTSESSION_RELOGIN_MIN_INTERVAL_MS 30000u /* see vaultsession_relogin */
#define VAULTSESSION_CAUSE_MAX 768

/* The session thread's time, for tests. now_ms: a monotonic clock in milliseconds. sleep_ms:
 * waits ms (the thread calls it with no lock held); the default wakes early for
 * vaultsession_stop() and vaultsession_relogin(); a hook must return soon after stop, and the
 * thread re-checks its flags when it returns. Either may be NULL for the default. */
struct vaultsession_clock {
        uint64_t (*now_ms)(void *userdata);
        void (*sleep_ms)(void *userdata, uint64_t ms);
        void *userdata;
};

struct vaultsession_options {
        const struct vault_options *vault; /* address, CA, namespace_, peer_addrs, hooks */
        const char *jwt_path;              /* NULL: VAULTSESSION_DEFAULT_JWT_PATH */
        const char *role;                  /* NULL: VAULTSESSION_DEFAULT_ROLE */
        const char *mount;                 /* NULL: VAULTSESSION_DEFAULT_MOUNT ("auth/" optional) */
        /* A KV path the token must reach for the session to be ready (the credstore's prefix,
         * "secret/cloudtaser/system"); NULL: none. */
        const char *probe_path;
        /* For the hints only (the role to create binds them): the operator's namespace and
         * service account; NULL: "cloudtaser-system" and the role's name. */
        const char *sa_namespace, *sa_name;
        unsigned backoff_min_ms, backoff_max_ms; /* 0: the defaults */
        struct vaultsession_clock clock;
};

struct vaultsession;

/* Creates the session (copies the options, creates the vault client; -EINVAL for bad options as
 * vault_client_new says, or an invalid role / mount / probe path; -ENOMEM). Does not contact
 * vault and starts no thread. */
int vaultsession_new(const struct vaultsession_options *o, struct vaultsession **ret);

/* Starts the session thread (logins from now on). -EALREADY when started, -errno of
 * pthread_create. */
int vaultsession_start(struct vaultsession *s);

/* Stops the thread (waits for a login or renewal under way: at most the vault client's deadline)
 * and frees everything, wiping the token (it is not revoked: another replica's restart must not
 * depend on it, and it expires). Accepts NULL; returns NULL. */
struct vaultsession *vaultsession_free(struct vaultsession *s);

/* Whether a login (and the probe) succeeded and the token's lease has not run out. */
bool vaultsession_ready(struct vaultsession *s);

/* Waits until ready: 0, -ETIMEDOUT after timeout_ms (real time: for programs and tests that
 * wait for the event with a generous deadline), -ECANCELED once stopping. */
int vaultsession_wait_ready(struct vaultsession *s, unsigned timeout_ms);

struct vaultsession_status {
        bool ready;
        unsigned failures; /* failed attempts in a row (0 after a success) */
        uint64_t logins;   /* successful logins so far */
        uint64_t renewals; /* successful renewals so far */
        int64_t lease_s;   /* the token's lease as last given, 0 = no expiry */
        bool renewable;    /* the token is renewable */
        int last_error;    /* -errno of the last failure, 0 if none */
        char last_cause[VAULTSESSION_CAUSE_MAX]; /* its log text (vaultsession_explain), or "" */
};
void vaultsession_status(struct vaultsession *s, struct vaultsession_status *ret);

/* Lends the vault client: 0 and *ret, the caller then holds the session's client lock and must
 * call vaultsession_return() (from the same thread) when done; -EAGAIN when not ready (nothing
 * held). The token must not be changed or cleared by the borrower. */
int vaultsession_borrow(struct vaultsession *s, struct vault_client **ret);
void vaultsession_return(struct vaultsession *s);

/* Asks the thread to log in again now (after a 403 that suggests the token was revoked). At most
 * one such login per VAULTSESSION_RELOGIN_MIN_INTERVAL_MS of the last login: a path the policy
 * really denies must not turn every request into a login. Returns true when one was asked. */
bool vaultsession_relogin(struct vaultsession *s);

/* What to say about a failure, for the log line: "<cause>: <vault's text> (status N, path P);
 * fix: <what to do>" with a fix for the common causes: the role missing (`bao write
 * auth/<mount>/role/<role> ...`), the service account or namespace not bound to the role, the
 * JWT refused by the TokenReview, no Kubernetes auth method at the mount, the policy missing
 * (a 403 on the probe path or a KV path: `bao policy write ...`), vault sealed, unreachable, TLS
 * verification failed, and (e NULL: the error r came from reading the file) the JWT file
 * unreadable or empty. ctx gives the names used (any may be NULL).
 * Writes at most n bytes (NUL-terminated, cut if longer) and returns buf. Pure: no I/O. */
struct vaultsession_context {
        const char *addr, *mount, *role, *jwt_path, *sa_namespace, *sa_name;
};
const char *vaultsession_explain(const struct vaultsession_context *ctx, int r,
                                 const struct vault_error *e, char *buf, size_t n);

static inline void vaultsession_freep(struct vaultsession **s) {
        vaultsession_free(*s);
}
#define _cleanup_vaultsession_ __attribute__((cleanup(vaultsession_freep)))
