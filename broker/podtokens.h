/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broker/podtokens: per-session child tokens for the broker's reads (--pod-tokens,
 * docs/protocol-broker.md "Per-pod tokens"), so that even the broker's own reads are scoped to
 * the pod a session belongs to.
 *
 * For a session (a session token, identified by hex of the first 16 bytes of its SHA-256) it
 *   1. writes the ACL policy PODTOKENS_POLICY_PREFIX "<exp>-<id>": read on exactly the
 *      session's paths and nothing else (vault_sys_policy_read_paths(), the vocabulary of the
 *      operator's unsealer), its comments naming the pod and the expiry;
 *   2. creates a child token with that one policy through the token role (orphan, TTL = the
 *      session's time left, so it never outlives the session; deploy/openbao/
 *      cloudtaser-broker-pod-token-role.json), kept in secmem in a table of at most
 *      PODTOKENS_MAX sessions (the one expiring first is revoked to make room);
 *   3. hands it out for the session's reads.
 * Any replica may serve a session another issued: a replica that has no token for it mints
 * its own the same way (the policy text is the same, written again). Revocation: the token is
 * revoked (revoke-self with the token itself, so the broker needs no revoke-accessor
 * capability) when the session is renewed (podtokens_end()), when it expires
 * (podtokens_sweep()), and at shutdown (podtokens_revoke_all()). The policy stays until the
 * session's expiry (other replicas' tokens may use it), plus PODTOKENS_GRACE for clock skew;
 * podtokens_sweep() deletes every expired one (the expiry is in the name: one LIST, no reads),
 * so left-overs of a broker that died are swept at the next start; its tokens die by their TTL.
 *
 * The vault calls go through struct podtokens_ops (podtokens_vault_ops() is the real one), so
 * that the unit tests run without a vault and on an injected clock. Not thread-safe: the caller
 * serialises. Tokens never reach a log or an error; the audit line may name the policy and the
 * accessor (not secrets).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/vault.h"

#define PODTOKENS_POLICY_PREFIX "cloudtaser-broker-pod-"
#define PODTOKENS_ROLE_DEFAULT "cloudtaser-broker-pod"
/* Sessions with a token held, per replica. Each token is one secmem region (one page): a
 * quarter of the process's SECMEM_MAX_REGIONS. Beyond, the session that expires first loses
 * its token (revoked) and gets a new one at its next read. */
#define PODTOKENS_MAX 1024
#define PODTOKENS_ID_SIZE 33                   /* 32 hex digits and a NUL */
#define PODTOKENS_POLICY_MAX 80                /* prefix, expiry, '-', id, NUL */
#define PODTOKENS_GRACE BROKERPROTO_CLOCK_SKEW /* seconds a policy outlives its session */

struct podtokens_ops {
        void *userdata;
        int (*policy_write)(void *userdata, const char *name, const char *text);
        int (*policy_delete)(void *userdata, const char *name);
        /* The names starting with prefix (a common/strv vector: strv_free()). */
        int (*policy_list)(void *userdata, const char *prefix, char ***ret_names, size_t *ret_n);
        /* The new token into *ret_token (secmem), its accessor into ret_accessor. */
        int (*token_create)(void *userdata, const char *role, const struct vault_child_token *t,
                            char **ret_token, char *ret_accessor, size_t accessor_size);
        /* Revokes the token itself (revoke-self); -ENOENT counts as done. */
        int (*token_revoke)(void *userdata, const char *token);
};

/* The real calls: policies and token creation with `admin` (the broker's own identity),
 * revoke-self with `reader` (its token is replaced). *v and both clients must outlive the
 * table. */
struct podtokens_vault {
        struct vault_client *admin, *reader;
};
void podtokens_vault_ops(struct podtokens_vault *v, struct podtokens_ops *ret);

struct podtokens;
/* role: the token role (NULL: PODTOKENS_ROLE_DEFAULT); ops copied. */
int podtokens_new(const struct podtokens_ops *ops, const char *role, struct podtokens **ret);
/* Wipes the tokens held (without revoking them: podtokens_revoke_all() first). NULL ok. */
struct podtokens *podtokens_free(struct podtokens *p);

/* The session id of a session token (its text). */
void podtokens_session_id(const char *token, size_t len, char ret[PODTOKENS_ID_SIZE]);
/* PODTOKENS_POLICY_PREFIX "<exp>-<id>" into ret. */
void podtokens_policy_name(int64_t exp, const char *id, char ret[PODTOKENS_POLICY_MAX]);
/* The policy text for a session (appended to out): comments, then read on its paths. */
int podtokens_policy_text(const struct brokerproto_session *s, struct buf *out);
/* The expiry a policy name states; -EINVAL when it is not one of ours. */
int podtokens_policy_expiry(const char *name, int64_t *ret);

struct podtokens_grant {
        const char *token; /* borrowed: valid until the next call on the table */
        char policy[PODTOKENS_POLICY_MAX];
        char accessor[VAULT_ACCESSOR_MAX];
        bool minted; /* true when made by this call (else: held already) */
};
/* The token of session `id` (s: what the token states) at unix time now: the one held, or a
 * new one (policy written, token created). -EKEYEXPIRED for a session that has ended; the
 * ops' errors. */
int podtokens_get(struct podtokens *p, const struct brokerproto_session *s, const char *id,
                  int64_t now, struct podtokens_grant *ret);
/* The session was replaced (renewed): this replica's token for it is revoked. 1 when one was
 * held, 0 when not. */
int podtokens_end(struct podtokens *p, const char *id);
/* Revokes the tokens of sessions that have expired, and deletes every policy of ours whose
 * session expired more than PODTOKENS_GRACE ago (this replica's, another's, a dead one's).
 * *ret_revoked / *ret_deleted (optional) count. 0, or the listing's error (the revocations are
 * done). */
int podtokens_sweep(struct podtokens *p, int64_t now, size_t *ret_revoked, size_t *ret_deleted);
/* Revokes every token held (shutdown; a broker-auth rotation ended every session). Returns the
 * number revoked. */
size_t podtokens_revoke_all(struct podtokens *p);
/* Tokens held. */
size_t podtokens_count(const struct podtokens *p);
