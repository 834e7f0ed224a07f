/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/protect: `cloudtaser target protect` (docs/cli.md#target-protect). For each pending
 * workload of a plan: one JSON patch (RFC 6902) of the workload that
 *   - tests /metadata/resourceVersion (a workload changed since it was read makes the patch fail,
 *     so a concurrent edit is never overwritten and never has the wrong entry removed),
 *   - adds the pod template's label cloudtaser.io/inject: "true" (the webhook's objectSelector)
 *     and its annotations cloudtaser.io/inject, vault-address (when given), vault-role,
 *     secret-paths and env-map, in the formats common/injection parses (checked with its
 *     parsers before anything is sent),
 *   - removes the Secret references the plan replaces: env[] entries whose
 *     valueFrom.secretKeyRef the plan maps ("secretKeyRef:<secret>", field <key> -> <name>) and
 *     envFrom[] secretRef entries the plan lists ("envFrom:<secret>[:prefix=<P>]"), in
 *     containers and init containers; each remove is preceded by a test of the whole entry.
 *     Volumes are left alone (discover leaves those workloads with a note to act on).
 *   - records how to undo all of the above in the workload's PROTECT_ROLLBACK_ANNOTATION.
 * Then the rollout is judged from the object (protect_rollout_judge) until done or the timeout;
 * a rollout that does not finish is rolled back from that record (with a test of
 * /metadata/generation: a spec changed by someone else in between is not overwritten), by this
 * run or by the next one when this one was killed, and the workload recorded failed. A migrated
 * workload keeps its record (removing it would change the workload again: a Deployment's
 * generation counts its annotations); it applies only until the workload next changes.
 *
 * The building and the judgement are pure (no I/O), for the tests.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli/plan.h"
#include "common/buf.h"
#include "common/json.h"

#define PROTECT_DEFAULT_TIMEOUT_MS (5u * 60u * 1000u)

/* The annotation values of one workload: secret-paths (the plan's distinct vault paths in plan
 * order, comma-separated) and env-map (per path, "field=ENV" pairs, ';' between paths; a path
 * with an entry that lists no field gets an empty group: every field, upper-cased). Both checked
 * with injection_parse_secret_paths() and injection_parse_env_map(). *ret_*: caller frees.
 * -EINVAL (the plan gives what the wrapper would refuse: reason says what), -E2BIG, -ENOMEM. */
int protect_annotations(const struct plan_workload *w, char **ret_paths, char **ret_env_map,
                        char *reason, size_t reason_size);

struct protect_settings {
        const char *vault_address; /* NULL: the operator's default */
        const char *vault_role;    /* required */
};

/* The JSON patch for workload obj (an apps/v1 object as the API serves it) appended to out.
 * *ret_removed: how many Secret references it removes. -EINVAL with reason (no pod template,
 * no resourceVersion or generation, an invalid address or role, invalid annotations, a rollback
 * record over PROTECT_MAX_ROLLBACK), -E2BIG, -ENOMEM. The patch ends with the rollback record
 * (PROTECT_ROLLBACK_ANNOTATION, below) on the workload's metadata. */
int protect_build_patch(const struct json_value *obj, const struct plan_workload *w,
                        const struct protect_settings *s, struct buf *out, size_t *ret_removed,
                        char *reason, size_t reason_size);

/* The record of how to undo a protect patch. The patch itself writes it, in the same atomic
 * request, into this annotation of the workload's own metadata (not its pod template: it starts no
 * rollout), so a run killed at any instant after the patch can still roll it back. Its value is
 * JSON, {"generation": G, "ops": [...]}: G the generation the patch gives the workload (the one
 * read + 1: the API server increments it by one per update that changes the spec, or for a
 * Deployment its annotations), ops the RFC 6902 operations
 * that put back exactly what the patch changed: each pod template label and annotation it set
 * (replaced with its earlier value, or removed; a map it created removed whole) and each Secret
 * reference it removed (added back at its index; a list it emptied added back whole). It holds the
 * names of Secrets, keys and variables and the earlier values of cloudtaser.io/ annotations: no
 * secret value. At most PROTECT_MAX_ROLLBACK bytes (else the patch is refused, -EINVAL). */
#define PROTECT_ROLLBACK_ANNOTATION "cloudtaser.io/protect-rollback"
#define PROTECT_MAX_ROLLBACK (64u * 1024u)

/* The rollback, from the record on obj (the workload as the API serves it after the protect
 * patch), appended to out: a JSON patch that tests /metadata/generation against the record's (a
 * spec that anyone changed since the protect patch is not overwritten: the API server refuses the
 * whole patch), then the record's operations, then removes the record. -ENOENT when obj carries
 * no record (patched by hand, or by a version that kept none); -EINVAL with reason for a record
 * that is not one (not JSON, no generation, an operation other than add, remove and replace, a
 * path outside /spec/template/): it is cluster data, and is applied only within the pod
 * template; -E2BIG, -ENOMEM. out is unchanged on failure. */
int protect_build_rollback(const struct json_value *obj, struct buf *out, char *reason,
                           size_t reason_size);

/* Whether obj's pod template already carries cloudtaser.io/inject: "true" (a run interrupted
 * after its patch: only the rollout is left to wait for). */
bool protect_already_patched(const struct json_value *obj);

enum protect_rollout {
        PROTECT_ROLLOUT_PROGRESSING,
        PROTECT_ROLLOUT_DONE,
        PROTECT_ROLLOUT_FAILED, /* the controller gave up (ProgressDeadlineExceeded) */
};

/* The rollout of obj (kind k): done when status.observedGeneration >= metadata.generation and,
 * for a Deployment or StatefulSet, status.replicas, updatedReplicas and availableReplicas all
 * equal spec.replicas (default 1: no old pod left), for a DaemonSet updatedNumberScheduled and
 * numberAvailable equal desiredNumberScheduled and no pod is misscheduled. 0 replicas is done at
 * once (once observed). summary: a line saying where it stands ("updated 1/2, available 0/2"). */
enum protect_rollout protect_rollout_judge(enum plan_kind k, const struct json_value *obj,
                                           char *summary, size_t summary_size);
