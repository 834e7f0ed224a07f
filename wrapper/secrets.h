/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/secrets: reads every configured path from vault and maps fields to variable names.
 *
 * The result is a `struct secret_set`: "NAME=VALUE\0" records in one secmem buffer (the format of
 * both the child's environment and the memfd), plus the KV version seen for each path (for the
 * rotation poll). Nothing here logs; failures come back as -errno plus a `struct error_report`
 * (common/error-report.h) whose message names the path or the field and never a value, and whose
 * status is the one the wrapper exits with (EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_NOPERM).
 * Whether a failure is worth retrying until the startup deadline is a function of its cause:
 * vault_error_is_transient(), broker_error_is_transient() in broker mode. The values come from the
 * vault (secrets_fetch) or from cloudtaser-broker (secrets_fetch_broker); both map fields to
 * variables with one code.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error-report.h"
#include "common/vault.h"
#include "wrapper/broker.h"
#include "wrapper/config.h"

#define SECRETS_MAX_BYTES (16u * 1024u * 1024u) /* all records together */

struct secret_set {
        struct buf records;                    /* BUF_SECURE: NAME=VALUE\0 ... */
        size_t n;                              /* records */
        int64_t versions[CONFIG_MAX_PATHS];    /* KV v2 version read per path, 0 for v1 */
        size_t path_records[CONFIG_MAX_PATHS]; /* records each path mapped to */
        /* n_paths resolved paths (malloc, not secret), kept across secret_set_clear() so that a
         * retry does not resolve the mounts again. A pointer rather than an array of
         * CONFIG_MAX_PATHS (2 KiB each): the set lives on stacks and in struct agent, and a
         * 128 KiB member was zeroed and copied at every start (65 page faults of ~250). */
        struct vault_kv_path *paths;
        size_t n_paths;
};

/* Logs in when the client has no token (kubernetes: reads the service account token file),
 * then resolves and reads every path of cfg, then maps. *ret is initialised by the call and must
 * be released with secret_set_done() (also on failure). Returns 1 when this call logged in, and
 * then, when ret_login is not NULL, the login's lease in *ret_login (so that the caller need
 * not ask vault about the new token); 0 when it used the client's token; or -errno. */
int secrets_fetch(struct vault_client *c, const struct wrapper_config *cfg, struct secret_set *ret,
                  struct vault_auth *ret_login, struct error_report *err);

/* Logs in (again) with the kubernetes method, re-reading the token file. */
int secrets_login(struct vault_client *c, const struct wrapper_config *cfg, struct vault_auth *ret,
                  struct error_report *err);

/* Whether any KV v2 path's current version differs from `s` (metadata only), or, for KV v1
 * paths, whether a fresh read gives different records: a record changed or added, or one gone
 * (a field deleted from the secret). 1 changed, 0 unchanged, -errno. */
int secrets_changed(struct vault_client *c, const struct wrapper_config *cfg,
                    const struct secret_set *s, struct error_report *err);

/* Broker mode (docs/protocol-broker.md): the same as secrets_fetch() and secrets_changed(), with
 * the values read through cloudtaser-broker (wrapper/broker.h) and mapped by the same code. One
 * request carries every path; rotation asks POST /v1/versions (no value crosses) and, for KV v1
 * paths (version 0), reads and compares the records. Exit codes: 77 for a refusal (403, a
 * second 401, an unreadable token file), 65 a missing secret or field, 64 a request the broker
 * calls malformed, 69 unavailable (transient: 502, 429, connection errors). The message names
 * the paths asked and the broker's reason, never a value. */
int secrets_fetch_broker(struct broker_client *b, const struct wrapper_config *cfg,
                         struct secret_set *ret, struct error_report *err);
int secrets_changed_broker(struct broker_client *b, const struct wrapper_config *cfg,
                           const struct secret_set *s, struct error_report *err);

/* secret_set_done() releases everything (the records wiped); secret_set_clear() only the
 * records, keeping the resolved paths for the next fetch into the same set. */
void secret_set_done(struct secret_set *s);
void secret_set_clear(struct secret_set *s);

/* Returns the record "NAME=VALUE" for NAME, or NULL. */
const char *secret_set_get(const struct secret_set *s, const char *name);
