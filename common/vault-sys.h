/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vault-sys: the administrative endpoints of Vault / OpenBao that the CLI uses (docs/cli.md),
 * built on vault_request_json() of common/vault: initialisation and unsealing (sys/init,
 * sys/unseal, sys/seal-status), secrets engines and auth methods (sys/mounts, sys/auth), ACL
 * policies (sys/policies/acl) and the capabilities of the client's own token on a path
 * (sys/capabilities-self). Errors as common/vault.h documents them (-errno plus the optional
 * struct vault_error). Nothing here logs.
 *
 * Secrets: the unseal keys and the root token sys/init returns live in secmem only (struct
 * vault_init_keys, wiped by vault_init_keys_free()); the response body they came in is wiped too.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/vault.h"

#define VAULT_SYS_MAX_SHARES 255u       /* Shamir shares (the server's own limit) */
#define VAULT_SYS_MAX_POLICY (1u << 20) /* bytes of one ACL policy read back */
#define VAULT_SYS_MAX_POLICIES 65536u   /* names in one policy list */

struct vault_seal_status {
        bool initialized;
        bool sealed;
        int64_t shares;    /* "n" */
        int64_t threshold; /* "t" */
        int64_t progress;  /* unseal keys given so far */
};

/* GET sys/seal-status (no token needed). */
int vault_sys_seal_status(struct vault_client *c, struct vault_seal_status *ret,
                          struct vault_error *err);

/* What sys/init returned: n_keys base64 unseal keys and the root token, each a NUL-terminated
 * string in its own secmem allocation. */
struct vault_init_keys {
        size_t n_keys;
        char **keys;
        char *root_token;
};

/* PUT sys/init {secret_shares, secret_threshold} (no token needed). 1 <= threshold <= shares <=
 * VAULT_SYS_MAX_SHARES, else -EINVAL (no request). -EINVAL with the server's text in err when it
 * is already initialised; -EBADMSG when the answer lacks keys or token. *ret: caller-owned. */
int vault_sys_init(struct vault_client *c, unsigned shares, unsigned threshold,
                   struct vault_init_keys **ret, struct vault_error *err);
/* Wipes and frees. Accepts NULL. Returns NULL. */
struct vault_init_keys *vault_init_keys_free(struct vault_init_keys *k);

/* PUT sys/unseal {key} (no token needed); *ret (optional): the seal status after it. */
int vault_sys_unseal(struct vault_client *c, const char *key, struct vault_seal_status *ret,
                     struct vault_error *err);

/* A secrets engine (auth = false, sys/mounts) or auth method (auth = true, sys/auth). */
struct vault_mount_info {
        char type[64];      /* "kv", "kubernetes"... */
        char kv_version[8]; /* options.version ("2"), "" when none */
        char accessor[128];
};

/* Looks up the mount at path ("secret" or "secret/") in the GET sys/mounts or sys/auth table.
 * -ENOENT when there is none. */
int vault_sys_mount_get(struct vault_client *c, bool auth, const char *path,
                        struct vault_mount_info *ret, struct vault_error *err);
/* POST sys/mounts/<path> or sys/auth/<path> {type, options.version when kv_version != NULL}. */
int vault_sys_mount_enable(struct vault_client *c, bool auth, const char *path, const char *type,
                           const char *kv_version, struct vault_error *err);

/* GET sys/policies/acl/<name>: *ret gets the policy text (malloc'd, caller frees; policies are
 * not secrets). -ENOENT when there is none, -E2BIG past VAULT_SYS_MAX_POLICY. */
int vault_sys_policy_read(struct vault_client *c, const char *name, char **ret,
                          struct vault_error *err);
/* PUT sys/policies/acl/<name> {policy}. */
int vault_sys_policy_write(struct vault_client *c, const char *name, const char *text,
                           struct vault_error *err);

/* DELETE sys/policies/acl/<name> (deleting one that does not exist succeeds). */
int vault_sys_policy_delete(struct vault_client *c, const char *name, struct vault_error *err);
/* LIST sys/policies/acl: the names starting with prefix (NULL: all), at most
 * VAULT_SYS_MAX_POLICIES (-E2BIG). *ret_names: a common/strv vector of *ret_n names (NULL when
 * none), caller-owned (strv_free()). */
int vault_sys_policy_list(struct vault_client *c, const char *prefix, char ***ret_names,
                          size_t *ret_n, struct vault_error *err);

/* The text of an ACL policy that grants "read" on exactly `paths` and nothing else: first one
 * "# <comment>" line per comment (names, an expiry, an accessor: never a secret), then one path
 * block per path; with kv_metadata, for a KV v2 path (<mount>/data/<key>) also read on
 * <mount>/metadata/<key> (for version polling). Appended to out. -EINVAL for a path that is not
 * vault_path_valid() or holds '"', '*', '+', '\\' or a newline (the policy never globs), or a
 * comment with a newline; out is then as it was. Shared by the operator's unsealer (its
 * per-pod policies) and the broker (its per-session policies). */
int vault_sys_policy_read_paths(const char *const *comments, size_t n_comments,
                                const char *const *paths, size_t n, bool kv_metadata,
                                struct buf *out);
/* The value of the line "# <key>: <value>" of a policy text (as written above) into ret (size
 * bytes). -ENOENT when there is none, or it is empty or does not fit. */
int vault_sys_policy_comment(const char *text, const char *key, char *ret, size_t size);

/* Capabilities, as a bit set. */
enum {
        VAULT_CAP_DENY = 1u << 0,
        VAULT_CAP_READ = 1u << 1,
        VAULT_CAP_LIST = 1u << 2,
        VAULT_CAP_CREATE = 1u << 3,
        VAULT_CAP_UPDATE = 1u << 4,
        VAULT_CAP_PATCH = 1u << 5,
        VAULT_CAP_DELETE = 1u << 6,
        VAULT_CAP_SUDO = 1u << 7,
        VAULT_CAP_ROOT = 1u << 8,
        VAULT_CAP_OTHER = 1u << 9, /* a name this module does not know */
};
/* "deny", "read"... -> the bit, 0 for an unknown name. */
unsigned vault_cap_from_string(const char *s);
/* The bits as "read,list" into dst (size n); "deny" for 0. Returns dst. */
char *vault_caps_to_string(unsigned caps, char *dst, size_t n);

/* POST sys/capabilities-self {paths: [path]}: what the client's token may do on path. */
int vault_sys_capabilities_self(struct vault_client *c, const char *path, unsigned *ret,
                                struct vault_error *err);

static inline void vault_init_keys_freep(struct vault_init_keys **k) {
        vault_init_keys_free(*k);
}
#define _cleanup_vault_init_keys_ __attribute__((cleanup(vault_init_keys_freep)))
