/* SPDX-License-Identifier: Apache-2.0 */
/* cli/source: `cloudtaser source install` and `cloudtaser source configure` (docs/cli.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/source.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault-sys.h"

/* Parses a decimal in [lo, hi]. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

static const char install_warning[] =
        "These unseal keys and this root token are shown ONCE and are not stored anywhere.\n"
        "Store them now, apart from each other: in an HSM, on paper in separate safes, or in an\n"
        "external KMS. Never in a Kubernetes Secret, a file in a repository or a chat.\n"
        "Revoke the root token once the vault is configured (bao token revoke -self).\n";

/* The keys and token as text, straight from secmem into a secure buffer. */
static int format_keys(const struct vault_init_keys *k, unsigned threshold, struct buf *out) {
        int r = buf_printf(out, "\n");
        for (size_t i = 0; r >= 0 && i < k->n_keys; i++) {
                r = buf_printf(out, "Unseal key %zu: ", i + 1);
                if (r >= 0)
                        r = buf_append_str(out, k->keys[i]);
                if (r >= 0)
                        r = buf_append_str(out, "\n");
        }
        if (r >= 0)
                r = buf_append_str(out, "\nRoot token: ");
        if (r >= 0)
                r = buf_append_str(out, k->root_token);
        if (r >= 0)
                r = buf_printf(out, "\n\n%zu key shares, %u needed to unseal.\n%s", k->n_keys,
                               threshold, install_warning);
        return r;
}

enum { OPT_SHARES = SOURCE_OPT_FIRST_FREE, OPT_THRESHOLD, OPT_NONTERM, OPT_FILE, OPT_FORCE };

struct install_args {
        unsigned shares, threshold;
        bool nonterm, force;
        const char *file;
};

static int install_flag(int opt, char *arg, void *userdata) {
        struct install_args *a = userdata;
        switch (opt) {
        case OPT_SHARES:
        case OPT_THRESHOLD:
                if (parse_uint(arg, 1, VAULT_SYS_MAX_SHARES,
                               opt == OPT_SHARES ? &a->shares : &a->threshold) < 0)
                        return log_error_errno(-EINVAL, "--key-%s: 1..%u",
                                               opt == OPT_SHARES ? "shares" : "threshold",
                                               VAULT_SYS_MAX_SHARES);
                return 0;
        case OPT_NONTERM:
                a->nonterm = true;
                return 0;
        case OPT_FILE:
                a->file = arg;
                return 0;
        case OPT_FORCE:
                a->force = true;
                return 0;
        default:
                return log_error_errno(-EINVAL, "Unknown flag");
        }
}

static void unlink_keys(const char *file) {
        if (file)
                (void) unlink(file);
}

int cli_source_install(int argc, char **argv) {
        static const struct option opts[] = {
                SOURCE_VAULT_LONGOPTS,
                {"key-shares", required_argument, NULL, OPT_SHARES},
                {"key-threshold", required_argument, NULL, OPT_THRESHOLD},
                {"force-output-to-non-terminal", no_argument, NULL, OPT_NONTERM},
                {"output-file", required_argument, NULL, OPT_FILE},
                {"force", no_argument, NULL, OPT_FORCE},
                {},
        };
        _cleanup_(source_vault_done) struct source_vault v = {};
        _cleanup_vault_client_ struct vault_client *c = NULL;
        _cleanup_vault_init_keys_ struct vault_init_keys *keys = NULL;
        _cleanup_buf_ struct buf text = BUF_INIT(1u << 20, BUF_SECURE);
        _cleanup_close_ int fd = -EBADF;
        struct install_args a = {.shares = 5, .threshold = 3};
        struct vault_seal_status st;
        struct vault_error e;
        int r;

        if (source_parse_flags(argc, argv, opts, &v, install_flag, &a, 0, NULL) < 0)
                return EX_USAGE;
        unsigned shares = a.shares, threshold = a.threshold;
        bool nonterm = a.nonterm, force = a.force;
        const char *file = a.file;
        if (threshold > shares || (shares > 1 && threshold < 2))
                return log_error("--key-threshold %u with --key-shares %u: the threshold must be "
                                 "at most the shares, and at least 2 when there are several",
                                 threshold, shares),
                       EX_USAGE;

        /* Where the keys go is settled before the vault is initialised: they exist once. */
        if (file) {
                if (!force)
                        return log_error("Refusing to write the unseal keys and root token to "
                                         "'%s' without --force: a file is a copy that outlives "
                                         "this terminal",
                                         file),
                               EX_USAGE;
                fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return log_error_errno(-errno,
                                               "Failed to create '%s' (it must not exist): %m",
                                               file),
                               EX_CANTCREAT;
        } else if (!isatty(STDOUT_FILENO) && !nonterm)
                return log_error("Refusing to print the unseal keys and root token: stdout is not "
                                 "a terminal (a pipe or a file keeps a copy). Run it in a "
                                 "terminal, or give --force-output-to-non-terminal"),
                       EX_USAGE;

        /* Until sys/init has answered, a failure leaves no (empty) key file behind. */
        if (source_vault_open(&v, false, &c) < 0)
                return unlink_keys(file), EX_USAGE;
        r = vault_sys_seal_status(c, &st, &e);
        if (r < 0)
                return unlink_keys(file),
                       source_vault_fail(r, &e, "Failed to read the vault's seal status");
        if (st.initialized) {
                unlink_keys(file);
                return log_error("The vault at %s is already initialised: nothing done", v.addr),
                       EX_CONFIG;
        }
        r = vault_sys_init(c, shares, threshold, &keys, &e);
        if (r < 0) {
                unlink_keys(file);
                return source_vault_fail(r, &e, "Failed to initialise the vault");
        }
        /* Shown before unsealing: should the unseal fail, the keys are not lost. */
        r = format_keys(keys, threshold, &text);
        if (r >= 0)
                r = write_all(fd >= 0 ? fd : STDOUT_FILENO, text.data, text.len);
        if (r >= 0 && fd >= 0)
                r = fsync(fd) < 0 ? -errno : 0;
        if (r < 0)
                return log_error_errno(r, "Failed to output the unseal keys (the vault IS "
                                          "initialised; the keys are lost): %m"),
                       EX_IOERR;
        buf_done(&text);
        if (fd >= 0)
                log_notice("The unseal keys and root token are in '%s' (mode 0600)", file);

        for (size_t i = 0; i < threshold; i++) {
                r = vault_sys_unseal(c, keys->keys[i], &st, &e);
                if (r < 0)
                        return source_vault_fail(r, &e,
                                                 "Failed to unseal the vault (unseal it "
                                                 "with the keys above)");
        }
        keys = vault_init_keys_free(keys);
        if (st.sealed)
                return log_error("The vault is still sealed after %u keys", threshold), EX_PROTOCOL;
        log_notice("The vault at %s is initialised and unsealed", v.addr);
        return EX_OK;
}

/* --- configure ---------------------------------------------------------------------------- */

static const char operator_policy[] =
        "# Managed by cloudtaser source configure: the operator's own secrets.\n"
        "path \"secret/data/cloudtaser/system/*\" {\n"
        "  capabilities = [\"create\", \"read\", \"update\", \"delete\"]\n"
        "}\n"
        "path \"secret/metadata/cloudtaser/system/*\" {\n"
        "  capabilities = [\"create\", \"read\", \"update\", \"delete\"]\n"
        "}\n";

/* Enables the mount when missing; refuses one of another type. 1 changed, 0 as wanted. */
static int ensure_mount(struct vault_client *c, bool auth, const char *path, const char *type,
                        const char *kv_version, bool dry_run) {
        struct vault_mount_info m;
        struct vault_error e;
        const char *what = auth ? "auth method" : "secrets engine";
        int r = vault_sys_mount_get(c, auth, path, &m, &e);
        if (r >= 0) {
                if (strcmp(m.type, type) != 0 ||
                    (kv_version && strcmp(m.kv_version, kv_version) != 0))
                        return log_error_errno(-EMEDIUMTYPE,
                                               "The %s at %s/ is %s%s%s, not %s%s%s: change it "
                                               "by hand",
                                               what, path, m.type, m.kv_version[0] ? " v" : "",
                                               m.kv_version, type, kv_version ? " v" : "",
                                               kv_version ? kv_version : "");
                log_info("The %s %s/ (%s) is there", what, path, type);
                return 0;
        }
        if (r != -ENOENT) {
                (void) source_vault_fail(r, &e, "Failed to list the mounts");
                return r;
        }
        if (dry_run) {
                printf("+ enable %s %s/ (%s%s%s)\n", what, path, type, kv_version ? " v" : "",
                       kv_version ? kv_version : "");
                return 1;
        }
        r = vault_sys_mount_enable(c, auth, path, type, kv_version, &e);
        if (r < 0) {
                (void) source_vault_fail(r, &e, "Failed to enable a mount");
                return r;
        }
        printf("enabled %s %s/ (%s%s%s)\n", what, path, type, kv_version ? " v" : "",
               kv_version ? kv_version : "");
        return 1;
}

enum { OPT_DRY = SOURCE_OPT_FIRST_FREE, OPT_MOUNT, OPT_AUDIENCE };

struct configure_args {
        const char *mount, *audience;
        bool dry_run;
};

static int configure_flag(int opt, char *arg, void *userdata) {
        struct configure_args *a = userdata;
        switch (opt) {
        case OPT_DRY:
                a->dry_run = true;
                return 0;
        case OPT_MOUNT:
                a->mount = arg;
                return 0;
        case OPT_AUDIENCE:
                a->audience = arg;
                return 0;
        default:
                return log_error_errno(-EINVAL, "Unknown flag");
        }
}

int cli_source_configure(int argc, char **argv) {
        static const struct option opts[] = {
                SOURCE_VAULT_LONGOPTS,
                {"dry-run", no_argument, NULL, OPT_DRY},
                {"auth-mount", required_argument, NULL, OPT_MOUNT},
                {"audience", required_argument, NULL, OPT_AUDIENCE},
                {},
        };
        _cleanup_(source_vault_done) struct source_vault v = {};
        _cleanup_vault_client_ struct vault_client *c = NULL;
        struct configure_args a = {.mount = SOURCE_DEFAULT_AUTH_MOUNT,
                                   .audience = SOURCE_DEFAULT_AUDIENCE};
        int r, changes = 0;

        if (source_parse_flags(argc, argv, opts, &v, configure_flag, &a, 0, NULL) < 0)
                return EX_USAGE;
        const char *mount = a.mount, *audience = a.audience;
        bool dry_run = a.dry_run;
        if (!audience[0])
                return log_error("--audience must not be empty: a role without one accepts "
                                 "tokens issued for any audience"),
                       EX_USAGE;
        if (source_vault_open(&v, true, &c) < 0)
                return EX_USAGE;

        bool auth_missing = false;
        r = ensure_mount(c, false, "secret", "kv", "2", dry_run);
        if (r >= 0) {
                changes += r;
                r = ensure_mount(c, true, mount, "kubernetes", NULL, dry_run);
                auth_missing = dry_run && r > 0;
        }
        if (r >= 0) {
                changes += r;
                r = source_policy_apply(c, SOURCE_OPERATOR_NAME, operator_policy, dry_run);
        }
        if (r >= 0) {
                changes += r;
                static const char *const sa[] = {SOURCE_OPERATOR_NAME};
                struct source_role role = {
                        .service_accounts = sa,
                        .n_service_accounts = 1,
                        .namespace_ = SOURCE_SYSTEM_NAMESPACE,
                        .audience = audience,
                        .policy = SOURCE_OPERATOR_NAME,
                };
                if (auth_missing) {
                        /* Nothing to read under a mount that does not exist yet. */
                        printf("+ role auth/%s/role/%s\n", mount, SOURCE_OPERATOR_NAME);
                        r = 1;
                } else
                        r = source_role_apply(c, mount, SOURCE_OPERATOR_NAME, &role, dry_run);
        }
        if (r < 0)
                return source_exit_status(r);
        changes += r;
        log_info("%d change%s%s", changes, changes == 1 ? "" : "s",
                 dry_run ? " would be made (dry run)" : "");
        return EX_OK;
}
