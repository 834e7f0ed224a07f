/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/broker: the wrapper's client of cloudtaser-broker (broker mode,
 * `cloudtaser.io/vault-auth-method: broker`; the protocol is docs/protocol-broker.md and
 * common/brokerproto.h). Built on common/http, common/tls and common/brokerproto.
 *
 * A session: the client holds one P-256 key pair, generated in secure memory when the client is
 * created and never exported but into the TLS layer's secure copy. broker_session_open() reads
 * the projected service account token (the file is read again for every new session: the
 * kubelet rotates it), sends it with a CSR for that key to POST /v1/session over TLS (the broker
 * verified against CLOUDTASER_BROKER_CA_PEM, no client certificate), and keeps the answer: the
 * client certificate and the session token (secmem). Every later request is mutual TLS with that
 * certificate plus `Authorization: Bearer <token>`; a renewal (POST /v1/session/renew, a CSR for
 * the same key) replaces both.
 *
 * Refusals, as the protocol page says:
 *   401 (no valid session, token or certificate: expired, another replica's keys rotated): the
 *       reads below open a new session once and ask again; a second 401, or a 401 for the JWT
 *       itself, is -EKEYREJECTED;
 *   403 (a path outside the session, the pod not admitted, edited annotations): -EACCES, never
 *       retried;
 *   404 -ENOENT (no such secret), 400 -EINVAL, 413 -E2BIG, 429 -EBUSY, 5xx (502: the vault or
 *   the API server failed) -EIO; transport errors as common/http returns them
 *   (-ECONNREFUSED, -ETIMEDOUT, -ECONNRESET, -EPROTO for TLS failures...); a 2xx answer that is
 *   not what the protocol says -EBADMSG. common/http already retries connection errors, 429 and
 *   5xx within the client's deadline; broker_error_is_transient() says what the caller should
 *   retry beyond that.
 *
 * Secrets: the JWT, the session token, the private key and every response body live in secmem
 * and are wiped on release. Nothing here logs; a struct broker_error carries the status, the API
 * path and the broker's own error text (printable ASCII, bounded; the broker never puts a value,
 * token or key in it), never a byte of a JWT, token, key or value.
 *
 * Not thread-safe: one thread at a time (the wrapper's agent thread).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/brokerproto.h"
#include "common/http.h"
#include "common/json.h"
#include "common/vault.h"

#define BROKER_ERROR_TEXT_MAX 256

struct broker_options {
        const char *addr; /* "https://cloudtaser-broker.NS.svc:8443" (CLOUDTASER_BROKER_ADDRESS) */
        const char *ca_pem; /* CLOUDTASER_BROKER_CA_PEM: verifies the broker's server certificate */
        const char *
                token_path; /* the projected service account token (CLOUDTASER_BROKER_TOKEN_PATH) */
        unsigned connect_timeout_ms, request_timeout_ms, deadline_ms, max_attempts;
        /* unix seconds (default time()): session lifetimes are measured against it */
        int64_t (*now_unix)(void *userdata);
        struct http_hooks hooks; /* for tests; now_unix gets hooks.userdata */
};

struct broker_error {
        int error;                           /* the -errno returned, 0 on success */
        long status;                         /* HTTP status of the answer, 0 when there was none */
        char path[32];                       /* the API path involved ("/v1/secrets") */
        char message[BROKER_ERROR_TEXT_MAX]; /* the broker's "error" text or the transport's */
};

struct broker_client;

/* Creates a client and its key pair (secmem). Does not contact the broker. -EINVAL for a missing
 * address, CA or token path, or options common/http refuses; -ENOMEM, -EIO. */
int broker_client_new(const struct broker_options *o, struct broker_client **ret);
struct broker_client *broker_client_free(struct broker_client *c); /* wipes; accepts NULL */

/* Changes the time limits of later requests, as http_client_set_limits() (0 keeps a value):
 * generous for the start-up fetch, short once the workload runs. Also applies to the clients a
 * later session or renewal creates. */
int broker_client_set_limits(struct broker_client *c, unsigned request_timeout_ms,
                             unsigned deadline_ms, unsigned max_attempts);

/* POST /v1/session with the JWT read from the token file now and a CSR for the client's key.
 * On success the session replaces any previous one. -ENOENT/-EACCES/... when the token file
 * cannot be read (err->path is then "token file"), -ENODATA when it is empty; the broker's
 * refusals as above (-EKEYREJECTED: the JWT was refused). */
int broker_session_open(struct broker_client *c, struct broker_error *err);

/* POST /v1/session/renew over the session (a CSR for the same key): a new certificate and
 * token. Opens a new session instead when there is none or the broker answers 401. */
int broker_session_renew(struct broker_client *c, struct broker_error *err);

bool broker_has_session(const struct broker_client *c);
/* The current session's lifetime as it was when issued (expires_at minus the time of receipt,
 * at least 1), in seconds; 0 without a session. For the renewal timer (about 2/3 of it). */
int64_t broker_session_lifetime(const struct broker_client *c);
/* Drops the session (certificate, token, mTLS client): the next request opens a new one. */
void broker_session_close(struct broker_client *c);

/* POST /v1/secrets for paths[0..n-1] (1..BROKERPROTO_MAX_PATHS): ret[i] gets each path's secret
 * decoded by the vault client's own decoder (common/vault's vault_decode_kv, KV v2 shape: the
 * broker answers the `data` object of each path's KV v2 read), version included (0 for KV v1).
 * Opens a session when there is none; a 401 opens a new one and asks once more. ret[] is written
 * only on success (each vault_secret_free()); -EBADMSG when a path is missing in the answer. */
int broker_read(struct broker_client *c, const char *const *paths, size_t n,
                struct vault_secret **ret, struct broker_error *err);

/* POST /v1/versions: ret[i] gets the current KV v2 version of paths[i] (0 for KV v1), same rules
 * as broker_read(). No value crosses. */
int broker_versions(struct broker_client *c, const char *const *paths, size_t n, int64_t *ret,
                    struct broker_error *err);

/* Whether an error is worth retrying later (connection problems, timeouts, 429, 5xx). */
bool broker_error_is_transient(int r);

/* ---- pure decoders, exposed for tests and fuzzing ---- */

/* An error answer (status >= 300) into err; returns the -errno of the table above. */
int broker_decode_error(long status, const char *body, size_t len, const char *api_path,
                        struct broker_error *err);
/* One path's entry of a secrets answer ({"data": {...}, "metadata": {"version": N}}) into a new
 * secret, through vault_decode_kv(). -EBADMSG, -ENOENT (data null: a deleted version), -E2BIG. */
int broker_decode_secret(const struct json_value *entry, struct vault_secret **ret);

static inline void broker_client_freep(struct broker_client **c) {
        broker_client_free(*c);
}
#define _cleanup_broker_client_ __attribute__((cleanup(broker_client_freep)))
