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
 * printable ASCII. */
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

/* Writes p as a new plan file at path, atomically. -errno. */
int plan_save(const struct plan *p, const char *path);

/* Sets the status (and reason: NULL removes it) of one workload, in memory and in the file at
 * path, atomically, editing the file's own text in place (comments survive). The file must still
 * be the plan p was loaded from (-ESTALE if that workload is not where it was). -errno. */
int plan_set_status(struct plan *p, const char *path, size_t tenant, size_t workload,
                    enum plan_status status, const char *reason);
