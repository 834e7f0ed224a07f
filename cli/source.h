/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/source: what the vault-side commands share (docs/cli.md#source-commands): the vault
 * connection flags, the exit status of a failed call, the unified-style diff of --dry-run, and
 * the names of what the CLI creates in the vault. source.c holds `source install` and `source
 * configure`, source-plan.c `source apply-plan` and `source verify-plan`, connect.c `target
 * connect`.
 *
 * The token: --token T, --token-file F, else VAULT_TOKEN, else BAO_TOKEN. It is copied into
 * secmem at once and the argv copy of --token is overwritten, but until then it is visible in
 * ps: prefer the environment or --token-file. It is never printed, logged or passed on.
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/vault.h"

#define SOURCE_OPERATOR_NAME "cloudtaser-operator" /* policy, role and service account */
#define SOURCE_SYSTEM_NAMESPACE "cloudtaser-system"
#define SOURCE_TENANT_PREFIX "cloudtaser-tenant-" /* + namespace: a tenant's policy and role */
#define SOURCE_DEFAULT_AUDIENCE "https://kubernetes.default.svc.cluster.local"
#define SOURCE_DEFAULT_AUTH_MOUNT "kubernetes"

struct source_vault {
        const char *addr;       /* --openbao-addr, VAULT_ADDR, BAO_ADDR */
        const char *token_file; /* --token-file */
        char *token;            /* secmem: --token, else read at source_vault_open() */
        const char *namespace_; /* --namespace, VAULT_NAMESPACE, BAO_NAMESPACE */
        const char *ca_cert;    /* --ca-cert, VAULT_CACERT, BAO_CACERT */
        bool tls_skip_verify;   /* --tls-skip-verify (logged) */
        bool allow_http;        /* --allow-http */
};

enum {
        SOURCE_OPT_ADDR = 0x1000,
        SOURCE_OPT_TOKEN,
        SOURCE_OPT_TOKEN_FILE,
        SOURCE_OPT_NAMESPACE,
        SOURCE_OPT_CA_CERT,
        SOURCE_OPT_SKIP_VERIFY,
        SOURCE_OPT_ALLOW_HTTP,
        SOURCE_OPT_FIRST_FREE, /* a command's own options start here */
};

#define SOURCE_VAULT_LONGOPTS                                                     \
        {"openbao-addr", required_argument, NULL, SOURCE_OPT_ADDR},               \
                {"token", required_argument, NULL, SOURCE_OPT_TOKEN},             \
                {"token-file", required_argument, NULL, SOURCE_OPT_TOKEN_FILE},   \
                {"namespace", required_argument, NULL, SOURCE_OPT_NAMESPACE},     \
                {"ca-cert", required_argument, NULL, SOURCE_OPT_CA_CERT},         \
                {"tls-skip-verify", no_argument, NULL, SOURCE_OPT_SKIP_VERIFY}, { \
                "allow-http", no_argument, NULL, SOURCE_OPT_ALLOW_HTTP            \
        }

#define SOURCE_VAULT_USAGE                                                                       \
        "  --openbao-addr URL    the vault (else VAULT_ADDR, BAO_ADDR)\n"                        \
        "  --token-file F        a file holding the vault token (else VAULT_TOKEN, BAO_TOKEN)\n" \
        "  --token T             the token itself: visible in ps, prefer the environment\n"      \
        "  --namespace NS        a vault namespace (X-Vault-Namespace)\n"                        \
        "  --ca-cert F           the vault's CA bundle (else VAULT_CACERT, BAO_CACERT)\n"        \
        "  --tls-skip-verify     do not verify the vault's certificate (logged; tests only)\n"   \
        "  --allow-http          allow an http:// vault address\n"

/* Handles one of the flags above: 1 handled, 0 not one of them, -errno (logged). arg is the
 * argv string: --token's is overwritten once copied. */
int source_vault_option(struct source_vault *v, int opt, char *arg);
/* Parses the flags of a command with getopt_long(): the vault flags above go to v, the command's
 * own to handle(opt, arg, userdata) (0 taken, -errno refused: it logs why). Then exactly
 * n_args positional arguments must be left: *ret_args (optional) points at them. 0, or
 * -EINVAL (logged). */
int source_parse_flags(int argc, char **argv, const struct option *opts, struct source_vault *v,
                       int (*handle)(int opt, char *arg, void *userdata), void *userdata,
                       int n_args, char ***ret_args);
/* A client for v: resolves the environment, reads the token when need_token (-ENOKEY logged
 * when there is none). Logs its errors. */
int source_vault_open(struct source_vault *v, bool need_token, struct vault_client **ret);
/* Wipes the token. */
void source_vault_done(struct source_vault *v);

/* The exit status (common/exit-status.h) of a failed call (-errno): EX_NOPERM for -EACCES,
 * EX_UNAVAILABLE for the transport and the server's state, EX_PROTOCOL for answers we do not
 * understand... */
int source_exit_status(int r);
/* message when it is not empty, else the text of errno -r (for the "%s" of a log line whose
 * error report may be empty). */
const char *source_message(const char *message, int r);
/* Logs "what: <vault's message>" for a failed vault call and returns source_exit_status(r). */
int source_vault_fail(int r, const struct vault_error *e, const char *what);

/* Prints a unified-style diff of two texts (lines) on f under "--- label (vault)" / "+++ label
 * (wanted)"; current NULL: a new object (all lines added). Prints nothing and returns 0 when the
 * texts are equal, else returns 1. -ENOMEM. */
int source_diff_print(FILE *f, const char *label, const char *current, const char *wanted);

/* A Kubernetes auth role as the CLI writes it (auth/<mount>/role/<name>). */
struct source_role {
        const char *const *service_accounts; /* bound_service_account_names */
        size_t n_service_accounts;
        const char *namespace_; /* bound_service_account_namespaces: just this one */
        const char *audience;
        const char *policy; /* token_policies: just this one */
};
/* Makes the role be what r says: reads it, renders both as text (one "key = value" line each,
 * lists sorted), and writes only when they differ. dry_run: prints the diff on stdout and writes
 * nothing. Returns 1 when it changed (or would change), 0 when it is as wanted, -errno (logged). */
int source_role_apply(struct vault_client *c, const char *mount, const char *name,
                      const struct source_role *r, bool dry_run);
/* The same for an ACL policy's text. */
int source_policy_apply(struct vault_client *c, const char *name, const char *text, bool dry_run);
