/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broker/keyring: the generations of the broker's session keys across a rotation of broker-auth
 * and broker-token (docs/protocol-broker.md "Rotation"). No I/O: the caller reads the records and
 * passes the clock.
 *
 * It holds the current struct authority (the keys derived from the records, the session CA) and,
 * after a broker-token rotation, the previous one:
 *   - broker-token changed, broker-auth the same: the new authority issues every new session;
 *     the previous one still authenticates the sessions it issued until their own expiry, and
 *     is dropped (wiped) `overlap_s` after the change (the longest session a replica issues).
 *     A second broker-token rotation within that time drops the oldest at once.
 *   - broker-auth changed: the previous generation is dropped (wiped) at once: every session
 *     issued under the old broker-auth ends (401), as the admission's annotation key does (the
 *     operator keeps only the newest, operator/credentials.c), so a leaked broker-auth stops
 *     minting sessions the moment it is replaced.
 * The annotation MAC is only ever checked with the current authority's key (the webhook and the
 * operator's unsealer use only the newest key too).
 *
 * Secrets: every key is in the authorities' secmem; the keyring keeps only SHA-256 digests of the
 * two records (to see which of them changed). Not thread-safe: the caller serialises.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "broker/authority.h"

struct keyring;

int keyring_new(const char *tenant, struct keyring **ret); /* tenant: authority_new()'s */
struct keyring *keyring_free(struct keyring *k);           /* wipes; accepts NULL */

enum {
        KEYRING_SAME = 0,      /* the records are the ones in use */
        KEYRING_NEW_TOKEN = 1, /* broker-token changed: the previous generation kept */
        KEYRING_NEW_AUTH = 2,  /* broker-auth changed (the first load too): no previous */
};

/* Installs the records' bytes (each BROKERPROTO_KEY_SIZE) read at unix time `now`: derives a new
 * authority when they differ from the current one and swaps it in (the old one kept or wiped as
 * above). Returns KEYRING_*, or -errno from authority_new() (the current generation stays). */
int keyring_update(struct keyring *k, const void *auth, size_t auth_len, const void *install,
                   size_t install_len, int64_t now, int64_t overlap_s);

/* Wipes the previous generation once its overlap has ended (keyring_update() does it too). */
void keyring_tick(struct keyring *k, int64_t now);

/* The authority that issues sessions and checks pods; NULL before the first update. */
const struct authority *keyring_current(const struct keyring *k);
/* Whether a previous generation still authenticates at `now`. */
bool keyring_has_previous(const struct keyring *k, int64_t now);

/* authority_authenticate() with the current generation, then with the previous one (while it
 * is kept). -EKEYREJECTED (a 401) when the certificate and token belong to neither generation:
 * possibly keys this replica has not loaded yet, which is the caller's cue to re-read the
 * records (see keyring_refresh_due()). Other errors as authority_authenticate(). */
int keyring_authenticate(const struct keyring *k, const struct tls_cert *peer,
                         const char *authorization, int64_t now, struct brokerproto_session *ret,
                         char *reason, size_t reason_size);

/* The rate limit of re-reads a miss asks for: true (and the time recorded) when the last
 * re-read was at least `min_ms` before `now_ms` (monotonic milliseconds). keyring_loaded()
 * records a re-read made for another reason (the periodic one). */
bool keyring_refresh_due(struct keyring *k, uint64_t now_ms, uint64_t min_ms);
void keyring_loaded(struct keyring *k, uint64_t now_ms);
