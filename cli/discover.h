/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/discover: `cloudtaser target discover` (docs/cli.md#target-discover). Lists the
 * Deployments, StatefulSets and DaemonSets of a cluster and proposes a migration plan
 * (cli/plan.h) for each one that uses a Kubernetes Secret or another injector.
 *
 * The scan of one workload is separate from the API calls, for the tests. What it finds, in
 * containers and init containers alike:
 *   - env[].valueFrom.secretKeyRef        "secretKeyRef:<secret>", fields {<key>: <ENV>}
 *   - envFrom[].secretRef (with prefix)   "envFrom:<secret>" or "envFrom:<secret>:prefix=<P>",
 *                                          fields {<key>: <P><key>} for every key of the Secret
 *                                          (its key NAMES, through secret_keys); a Secret whose
 *                                          keys cannot be read is listed with no field and a note
 *   - secret volumes                      "volume:<secret>:<mountPath>"
 *   - projected secret sources            "projected:<secret>:<mountPath>"
 *                                          fields {<key>: <KEY_AS_ENV>} (the items, else every
 * key); a note: the workload must read the environment or the memfd instead of the files
 *   - Vault Agent Injector annotations    "vault-agent:<name>" for each
 *     (vault.hashicorp.com/agent-inject-secret-<name>: <path>), the fields its template reads
 *     (.Data.data.<field>), a note naming the role
 *   - Bank-Vaults                          "bank-vaults:<path>" for env values
 *     vault:<path>#<field>[#<version>] (fields {<field>: <ENV>}) and
 *     vault.security.banzaicloud.io/vault-env-from-path paths, a note naming the role
 * The same Secret used in several places is one entry (one vault path); a key mapped to two
 * variables makes a second entry. A Secret's own vault path comes from a template: "<cluster>",
 * "<namespace>" and "<secret>" are replaced (DISCOVER_PATH_TEMPLATE by default); another
 * injector's path is kept as it is, so its migration needs no new vault secret.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli/plan.h"
#include "common/json.h"

#define DISCOVER_PATH_TEMPLATE "secret/data/<cluster>/<namespace>/<secret>"
#define DISCOVER_PAGE_LIMIT 250 /* objects per list request (limit/continue), --page-size */

struct discover_config {
        const char *cluster;       /* <cluster> in the template */
        const char *path_template; /* NULL: DISCOVER_PATH_TEMPLATE */
        /* The key names of Secret name in namespace_, as a common/strv vector the callee
         * allocates (the caller frees it: strv_free()). -EACCES when the caller may
         * not read Secrets, -ENOENT when there is no such Secret. NULL: never known. */
        int (*secret_keys)(void *userdata, const char *namespace_, const char *name, char ***ret);
        void *userdata;
};

/* Namespaces discover never scans. */
bool discover_namespace_skipped(const char *namespace_);

/* The vault path of a Secret: template with <cluster>, <namespace> and <secret> replaced.
 * -EINVAL when the result is not a valid plan vault path, -ENOMEM. *ret: caller frees. */
int discover_vault_path(const char *template_, const char *cluster, const char *namespace_,
                        const char *secret, char **ret);

/* Scans one workload (a Deployment, StatefulSet or DaemonSet object as the API serves it).
 * Returns 1 and fills *ret (caller-owned members: free with the plan it joins, or
 * plan_workload_done()) when it uses a Secret or another injector; 0 when there is nothing
 * to migrate, or its pod template already has cloudtaser.io/inject: "true" (*skipped_injected
 * says which; may be NULL); -EINVAL (not a workload object, a bad path template), -ENOMEM. */
int discover_scan(const struct json_value *obj, enum plan_kind kind, const char *namespace_,
                  const struct discover_config *c, struct plan_workload *ret,
                  bool *skipped_injected);
