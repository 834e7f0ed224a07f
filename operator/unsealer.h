/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/unsealer: delivers to each sealed pod (the sealed token mode, docs/wrapper.md) a child
 * token of its own, scoped to that pod's admitted paths (docs/operator.md, "The unsealer").
 *
 * On the leader only (is_leader) it lists the pods labelled
 * cloudtaser.io/sealed=<its installation id> (the value operator/modes writes: the installation
 * id of broker-token, deps.installation) in all namespaces, or in options.namespace_, and then
 * watches them (common/kube's kube_watch() from the list's resourceVersion, bookmarks on): a pod
 * is served as soon as the list or the watch shows it Running with an IP, and cleaned up as soon
 * as it is deleted. The watch ends, and the list is made again, every interval_ms (the safety
 * net), on 410 Gone (the resourceVersion expired: at once), after an error (UNSEALER_RETRY_MS
 * later), and when the leadership is lost; a pod waiting for a retry bounds the watch's
 * timeoutSeconds, so that it is retried on time. Serving a running pod with an IP that it has
 * not served yet:
 *   1. checks the pod's annotations: vault-auth-method token, the broker-mac annotation (the MAC
 *      of namespace, service account, secret-paths and env-map under the broker-auth annotation
 *      key, brokerproto_annotation_mac_check: only the webhook can have written it), and the
 *      namespace confinement (every path below the tenant prefix, brokerproto_path_confined); a
 *      refused pod is never adopted nor cleaned up (another installation's token is not ours);
 *   2. asks the pod's wrapper GET https://<podIP>:<port>/v1/status (port: the container's
 *      CLOUDTASER_UNSEAL_LISTEN, else INJECTION_UNSEAL_PORT); an unsealed pod is adopted (the
 *      operator restarted, or another leader served it);
 *   3. writes the policy UNSEALER_POLICY_PREFIX<installation id>-<pod uid> (read on exactly
 *      the pod's paths, and for KV v2 paths their metadata, for the wrapper's version polling);
 *   4. creates a child token through the token role (orphan, allowed_policies_glob
 *      cloudtaser-pod-*: the operator needs no policy of the pods' own) with response wrapping,
 *      and records the new token's accessor in a comment of the policy;
 *   5. POSTs {"token": <wrapping token>, "wrapped": true} to /v1/unseal over mutual TLS with the
 *      operator's client certificate (broker-tls client.crt/client.key). The wrapper unwraps it
 *      at the vault: a wrapping token somebody else unwrapped first fails there, loudly.
 * A pod that fails a step is retried with backoff (1 s doubling up to 60 s, at most
 * max_attempts; a refused check is final: its annotations do not change). When a pod is gone
 * (deleted, finished, or no longer listed), its token is revoked by accessor (from memory, or
 * from the policy's comment) and its policy deleted. When it becomes the leader, it first sweeps
 * its installation's policies (UNSEALER_POLICY_PREFIX<installation id>-) whose pod it no longer
 * lists. Pods and policies of another installation (another label value, another name prefix)
 * are never read, adopted, revoked or deleted.
 *
 * The wrapper's server certificate is self-signed (nobody can verify it): the connection is
 * encrypted but not authenticated, which is why only a wrapped token is sent
 * (docs/threat-model.md).
 *
 * Logging: one line per pod outcome (unsealed, adopted, refused and why, failed and retrying,
 * given up, cleaned up) and per swept policy; never a token or a wrapping token.
 * Threads: unsealer_start() runs the loop on a thread of its own; the callbacks are called from
 * it. unsealer_tick() is one pass and unsealer_watch() one watch, for tests (not while the
 * thread runs).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/vault.h"

#define UNSEALER_LABEL "cloudtaser.io/sealed"
#define UNSEALER_ROLE_DEFAULT "cloudtaser-pod"
#define UNSEALER_POLICY_PREFIX "cloudtaser-pod-"
#define UNSEALER_INTERVAL_MS_DEFAULT 60000u /* the relist under the watch */
#define UNSEALER_WRAP_TTL_DEFAULT 60u       /* seconds the wrapping token lives */
#define UNSEALER_MAX_ATTEMPTS_DEFAULT 8u
#define UNSEALER_MAX_PODS 4096u /* sealed pods kept track of */
#define UNSEALER_REASON_MAX 256u
#define UNSEALER_RETRY_MS 2000u /* after a failed list or watch */

/* What the unsealer borrows, wired by the caller (operator/main.c: operator/keeper and its vault
 * session). Each returns 0 or -errno (-EAGAIN: not available yet; the pass is skipped). */
struct unsealer_deps {
        bool (*is_leader)(void *userdata); /* NULL: always */
        /* The annotation key derived from broker-auth (brokerproto_annotation_key()). */
        int (*annotation_key)(void *userdata, uint8_t ret[BROKERPROTO_KEY_SIZE]);
        /* The installation id of broker-token (brokerproto_installation_id()): the label value
         * selected and the policies' name prefix. */
        int (*installation)(void *userdata, char ret[BROKERPROTO_INSTALLATION_SIZE]);
        /* The operator's client certificate and key from broker-tls, appended as PEM (ret_key is
         * BUF_SECURE). */
        int (*client_pair)(void *userdata, struct buf *ret_cert, struct buf *ret_key);
        /* The operator's vault client, lent for a few calls, and given back. */
        int (*vault_borrow)(void *userdata, struct vault_client **ret);
        void (*vault_return)(void *userdata);
        void *userdata;
};

struct unsealer_options {
        struct kube_client *kube; /* borrowed, thread-safe; outlives the unsealer */
        struct unsealer_deps deps;
        const char *namespace_;      /* the one namespace watched; NULL: all of them */
        const char *tenant;          /* the confinement template; NULL: the broker's default */
        const char *token_role;      /* NULL: UNSEALER_ROLE_DEFAULT */
        unsigned interval_ms;        /* the relist; 0: UNSEALER_INTERVAL_MS_DEFAULT */
        unsigned wrap_ttl_s;         /* 0: UNSEALER_WRAP_TTL_DEFAULT */
        unsigned max_attempts;       /* 0: UNSEALER_MAX_ATTEMPTS_DEFAULT */
        unsigned request_timeout_ms; /* the pod's endpoint, per request; 0: 5000 */
        uint64_t (*now_ms)(void *userdata); /* monotonic; NULL: CLOCK_MONOTONIC */
};

struct unsealer;

int unsealer_new(const struct unsealer_options *o, struct unsealer **ret);
/* Starts the loop's thread. 0 or -errno. */
int unsealer_start(struct unsealer *u);
/* One pass (list, serve, clean up; the sweep first after becoming the leader), which also
 * keeps the list's resourceVersion for the watch. 0, or the -errno that ended the pass early
 * (the pod list, a dependency not available). */
int unsealer_tick(struct unsealer *u);
/* One watch from the last pass's (or event's) resourceVersion, until relist_at (now_ms's clock)
 * or the earliest retry due; events are handled as they come (as the thread does; tests call
 * it between ticks, not while the thread runs). 0 the server ended it; -ESTALE no pass to
 * resume from; -ETIME 410 (the next pass lists again); kube_watch()'s other errors. */
int unsealer_watch(struct unsealer *u, uint64_t relist_at);
/* Counters, for tests and metrics. */
struct unsealer_stats {
        uint64_t unsealed, adopted, refused, failures, given_up, cleaned, swept;
};
void unsealer_get_stats(struct unsealer *u, struct unsealer_stats *ret);
/* Stops the thread (waits for the pass under way) and frees. Accepts NULL. Returns NULL. */
struct unsealer *unsealer_free(struct unsealer *u);

/* ---- the pure parts (unit-tested) ------------------------------------------------------- */

struct unsealer_pod {
        const char *ns, *name, *uid, *sa, *ip;      /* borrowed from the pod object; sa "default" */
        const char *method, *paths, *env_map, *mac; /* annotations, NULL when absent */
        bool running;                               /* status.phase Running */
        bool deleting;                              /* metadata.deletionTimestamp set */
        unsigned port;                              /* the unseal port */
};
/* Reads a v1 Pod object. -EBADMSG when name, namespace or uid is missing or malformed. */
int unsealer_pod_parse(const struct json_value *pod, struct unsealer_pod *ret);

/* The checks of step 2. 0 and the parsed paths (*ret_specs: injection_secrets_free()), or
 * -EPERM with the reason (no secret in it). */
struct injection_secret;
int unsealer_pod_check(const struct unsealer_pod *p, const uint8_t key[BROKERPROTO_KEY_SIZE],
                       const char *tenant, struct injection_secret **ret_specs, size_t *ret_n,
                       char *reason, size_t reason_size);

/* The pod's policy text (step 3), with "# accessor: <a>" when accessor is not NULL. */
int unsealer_policy_text(const struct unsealer_pod *p, const struct injection_secret *specs,
                         size_t n, const char *accessor, struct buf *out);
/* The accessor recorded in a policy text: 0, -ENOENT when there is none. */
int unsealer_policy_accessor(const char *text, char *ret, size_t size);
