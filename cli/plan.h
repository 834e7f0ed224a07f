/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/plan: the migration plan file (docs/cli.md#plan-file), CloudTaser's format:
 *
 *   apiVersion: cloudtaser.io/v1        # exactly; anything else is refused
 *   kind: MigrationPlan
 *   metadata: {name, cluster, createdAt (RFC 3339), createdBy}
 *   tenants:
 *   - name, namespace
 *     workloads:
 *     - kind (Deployment|StatefulSet|DaemonSet), name, [serviceAccount], replicas,
 *       status (pending|migrated|skipped|failed), [reason], [note]
 *       secrets:
 *       - source (the original secret reference), vaultPath, fields: {<field>: <ENV_VAR>}
 *
 * Read through common/yaml (the only libyaml user). Validation errors name the line and column
 * of the offending node. Written atomically (a temporary file in the same directory, fsync,
 * rename, fsync of the directory): a reader never sees a half-written plan, even after SIGKILL.
 * A status update rewrites only the bytes of that workload's status (and reason) in the text as
 * it is on disk, so comments, order and formatting a reviewer added survive. A plan never holds
 * a secret value: only references, paths, field names and variable names.
 *
 * Limits: PLAN_MAX_BYTES of text, PLAN_MAX_TENANTS, PLAN_MAX_WORKLOADS per tenant,
 * PLAN_MAX_SECRETS per workload, PLAN_MAX_FIELDS per secret, PLAN_MAX_STRING bytes per string.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PLAN_API_VERSION "cloudtaser.io/v1"
#define PLAN_KIND "MigrationPlan"
#define PLAN_MAX_BYTES (16u * 1024u * 1024u)
#define PLAN_MAX_TENANTS 10000u
#define PLAN_MAX_WORKLOADS 10000u
#define PLAN_MAX_SECRETS 256u
#define PLAN_MAX_FIELDS 256u
#define PLAN_MAX_STRING 4096u

enum plan_kind { PLAN_DEPLOYMENT, PLAN_STATEFULSET, PLAN_DAEMONSET, _PLAN_KIND_MAX };
enum plan_status { PLAN_PENDING, PLAN_MIGRATED, PLAN_SKIPPED, PLAN_FAILED, _PLAN_STATUS_MAX };

/* "Deployment"... and "pending"...; the parsers return -EINVAL for anything else. */
const char *plan_kind_to_string(enum plan_kind k);
int plan_kind_from_string(const char *s, enum plan_kind *ret);
const char *plan_status_to_string(enum plan_status s);
int plan_status_from_string(const char *s, enum plan_status *ret);

struct plan_field {
        char *field; /* the key in the vault secret */
        char *env;   /* the environment variable the workload reads */
};

struct plan_secret {
        char *source;     /* "secretKeyRef:db/password", "envFrom:db", "volume:db:/etc/db"... */
        char *vault_path; /* "secret/data/<cluster>/<namespace>/<secret>" */
        struct plan_field *fields;
        size_t n_fields;
};

struct plan_workload {
        enum plan_kind kind;
        char *name;
        /* The pod template's serviceAccountName ("serviceAccount" in the file; optional): the
         * account the tenant's vault role is bound to (source apply-plan). NULL: "default". */
        char *service_account;
        int64_t replicas;
        enum plan_status status;
        char *reason; /* why failed or skipped; NULL when none */
        char *note;   /* what a person must do (a volume the workload must stop reading); NULL */
        struct plan_secret *secrets;
        size_t n_secrets;
};

struct plan_tenant {
        char *name;
        char *namespace_;
        struct plan_workload *workloads;
        size_t n_workloads;
};

struct plan {
        char *name, *cluster, *created_at, *created_by;
        struct plan_tenant *tenants;
        size_t n_tenants;
};

/* Why a plan did not parse: line and column are 1-based (0 when not known); message is one line,
 * printable ASCII, naming the field by its path and what is wrong with it:
 * "tenants[0].workloads[2].kind: 'Deploy' is not Deployment, StatefulSet or DaemonSet". A program
 * prints it as "<file>:<line>:<column>: <message>".
 *
 * What is checked, beyond the shape: apiVersion and kind exactly; no unknown field (a typo in the
 * approval artifact is an error, not a silently ignored line); strings valid UTF-8 without
 * control characters, at most PLAN_MAX_STRING bytes; namespaces and workload names DNS-1123; one
 * tenant per namespace, one workload per kind and name in a tenant; replicas >= 0; createdAt
 * RFC 3339; a vaultPath is a relative path of plain segments (no "", "." or "..", no glob or
 * policy syntax: * + { } [ ] " ' \ # whitespace), as the vault policies are written from it; a
 * field is a Secret key ([-._a-zA-Z0-9]+), an environment variable name has no '='. An empty
 * reason or note ("" or null) is none. */
struct plan_error {
        unsigned line, column;
        char message[256];
};

/* Parses a plan from text. -EBADMSG (not YAML, a missing or ill-typed field, a wrong apiVersion
 * or kind: err says what and where), -E2BIG (over a limit), -ENOMEM. *ret: caller-owned. */
int plan_parse(const char *text, size_t len, struct plan **ret, struct plan_error *err);
/* plan_parse() of a file; -errno reading it. */
int plan_load(const char *path, struct plan **ret, struct plan_error *err);
/* Frees. Accepts NULL. Returns NULL. */
struct plan *plan_free(struct plan *p);
/* Frees the members of one workload (its strings and secrets) and zeroes it, for a workload
 * built apart from a plan. */
void plan_workload_done(struct plan_workload *w);

/* Whether s may be a plan's vaultPath (the rules above). */
bool plan_vault_path_valid(const char *s);

/* Appends p as plan text (commented YAML, the format above, the strings quoted where a YAML
 * reader could take them for something else) to out. -EINVAL when p would not pass plan_parse()
 * (a string with a control character, an invalid name...), -E2BIG, -ENOMEM. */
int plan_format(const struct plan *p, struct buf *out);

/* Writes p as a new plan file at path (mode 0644, or the mode of the file it replaces),
 * atomically. -EINVAL (see plan_format), -errno. */
int plan_save(const struct plan *p, const char *path);

/* Whether a and b hold the same plan (every field, in order). */
bool plan_equal(const struct plan *a, const struct plan *b);

/* Sets the status (and reason: NULL or "" removes it; cleaned as by plan_set_status_text) of one
 * workload, in memory and in the file at path, atomically, editing the file's own text in place
 * (comments survive). The file must still be the plan p was loaded from (-ESTALE if that workload
 * is not where it was). -errno. */
int plan_set_status(struct plan *p, const char *path, size_t tenant, size_t workload,
                    enum plan_status status, const char *reason);

/* The text edit of plan_set_status(): text (a valid plan) with workload `workload` of tenant
 * `tenant` set to status and reason, appended to out. Only the status scalar changes, and the
 * reason's scalar (replaced, or a "reason:" line inserted after the status line, or the reason
 * line removed); every other byte is kept. Where the layout does not allow that (a block scalar,
 * a multi-line value) the plan is written anew by plan_format() and the comments are lost. The
 * result is checked to parse as the same plan with only that status and reason changed.
 * A reason's control characters (a multi-line error message) become spaces, and it is cut to
 * PLAN_MAX_STRING bytes. -EBADMSG (text is not a valid plan: err says why), -ERANGE (no such
 * tenant or workload), -EINVAL (a reason that is not UTF-8), -E2BIG, -ENOMEM. */
int plan_set_status_text(const char *text, size_t len, size_t tenant, size_t workload,
                         enum plan_status status, const char *reason, struct buf *out,
                         struct plan_error *err);

static inline void plan_freep(struct plan **p) {
        plan_free(*p);
}
#define _cleanup_plan_ __attribute__((cleanup(plan_freep)))
