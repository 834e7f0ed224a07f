/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/source-plan: the tenants' vault policies and roles from a plan (source apply-plan), and
 * the proof that the vault matches it (source verify-plan). See docs/cli.md#source-commands.
 *
 * Names: a tenant's policy and role are both SOURCE_TENANT_PREFIX<namespace>
 * ("cloudtaser-tenant-shop"): `target protect` writes that name into the vault-role annotation.
 * Workloads with status skipped do not count; a workload without serviceAccount runs as
 * "default".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/plan.h"
#include "common/buf.h"
#include "common/kube.h"
#include "common/vault.h"

struct source_plan_options {
        bool dry_run;           /* apply: print the diff, change nothing */
        const char *auth_mount; /* "kubernetes" */
        const char *audience;   /* the roles' audience (never empty) */
        /* verify --as-workload: a fresh client (no token) for one login. */
        int (*open_client)(void *userdata, struct vault_client **ret);
        void *userdata;
};

/* The tenant's vault paths (of the workloads not skipped), sorted, unique, borrowed from t in
 * a malloc'd array (*ret, free()). -EINVAL for a path that is not valid. */
int source_tenant_paths(const struct plan_tenant *t, const char ***ret, size_t *ret_n);
/* The same for its service accounts ("default" for a workload without one). */
int source_tenant_service_accounts(const struct plan_tenant *t, const char ***ret, size_t *ret_n);
/* SOURCE_TENANT_PREFIX<namespace> into dst. -EINVAL for an invalid namespace. */
int source_tenant_name(const struct plan_tenant *t, char *dst, size_t n);
/* The tenant's policy text, appended to out (each path's mount is asked: KV v1 or v2). */
int source_tenant_policy(struct vault_client *c, const struct plan_tenant *t, struct buf *out);

/* Makes each tenant's policy and role what the plan says (only what differs is written).
 * Returns the number of objects changed (or that would change), or -errno (logged). */
int source_apply_plan(struct vault_client *c, const struct plan *p,
                      const struct source_plan_options *o);

enum source_check_kind { SOURCE_CHECK_FIELD, SOURCE_CHECK_ACCESS };
enum source_check_status {
        SOURCE_CHECK_OK,
        SOURCE_CHECK_MISSING_FIELD, /* the secret lacks a mapped field */
        SOURCE_CHECK_MISSING_PATH,  /* no secret at the path */
        SOURCE_CHECK_DENIED,        /* the role cannot read a plan path (or cannot log in) */
        SOURCE_CHECK_TOO_MUCH,      /* the role may do more than read, or reach a path outside */
        SOURCE_CHECK_ERROR,
};
const char *source_check_status_to_string(enum source_check_status s);

struct source_check {
        enum source_check_kind kind;
        const char *ns;      /* borrowed from the plan */
        const char *subject; /* FIELD: the field name; ACCESS: the service account */
        char *path;          /* the vault path checked (ACCESS: also the probes outside) */
        char *detail;        /* ACCESS: "read (expected read)"; FIELD: the vault's message */
        enum source_check_status status;
};

struct source_report {
        struct source_check *checks;
        size_t n_checks, cap, n_failed;
};
struct source_report *source_report_free(struct source_report *r);
static inline void source_report_freep(struct source_report **r) {
        source_report_free(*r);
}

/* Checks every mapped field of every path (field names only: the values are wiped unread) and,
 * with k (--as-workload), logs in as each tenant role with a TokenRequest JWT of each of its
 * service accounts and asks sys/capabilities-self: read exactly on the plan's paths, nothing on
 * the probes just outside them (a sibling, the parent, a child, a name with the path as prefix,
 * the mount's top level). *ret: the report (valid while p is). -errno (logged) when it could not
 * check; a failed check is in the report, not an error. */
int source_verify_plan(struct vault_client *c, struct kube_client *k, const struct plan *p,
                       const struct source_plan_options *o, struct source_report **ret);
/* The report as a table, or as JSON ({ok, fields[], access[], failed[]}). */
int source_report_print(const struct source_report *rep, bool json, FILE *f);
