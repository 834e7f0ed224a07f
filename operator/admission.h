/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/admission: the mutating webhook's decision, as a pure function of an AdmissionReview
 * (admission.k8s.io/v1) and the operator's settings: which pods are injected, the JSON patch
 * that injects them, and the denials. No network and no server here: the image lookup is the
 * caller's callback. The injection contract is docs/operator.md.
 *
 * Untrusted input: the body is parsed under limits (ADMISSION_MAX_BODY bytes, JSON depth and node
 * count), every annotation is checked (operator/annotations.h), the environment written into each
 * wrapped container is read back with the injection contract's own reader (common/injection.h)
 * and denied when the wrapper would refuse it, and no input makes it crash: a
 * review it cannot act on gets allowed:false with a message saying why and how to fix it.
 * Nothing secret is written into the pod: the patch carries addresses, paths and names only.
 *
 * admission_review() keeps no state between calls: concurrent calls are fine as long as the
 * lookup callback is thread-safe. Each call allocates only for itself (the request's document,
 * the patch, the response's document), from an arena (common/arena.h) where it can: the
 * server's per-request arena with admission_review_arena(), so that a review costs the heap
 * almost nothing.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "operator/modes.h"
#include "operator/registry.h"

#define ADMISSION_MAX_BODY (8u * 1024u * 1024u) /* an AdmissionReview body, bytes */
#define ADMISSION_MAX_PULL_SECRETS 32u          /* imagePullSecrets passed to the lookup */
/* containers + initContainers of one pod, not counting the operator's own init container (so
 * that a pod at the limit, once injected, is not denied on reinvocation) */
#define ADMISSION_MAX_CONTAINERS 256u

/* The names the mutation uses are the pod layout of common/injection.h (INJECTION_VOLUME,
 * INJECTION_MOUNT_PATH, INJECTION_WRAPPER_PATH, INJECTION_INIT_CONTAINER, ...). */

/* Resolves the image's ENTRYPOINT/CMD for a container that has no command. pull_secret_names are
 * the pod's imagePullSecrets (the ServiceAccount admission plugin has already copied the service
 * account's into the pod before webhooks run). Returns 0 with
 * *ret filled (released by admission with registry_image_config_done()), or a negative errno with
 * err holding one line saying why. */
typedef int (*admission_lookup_fn)(void *userdata, const char *namespace_, const char *image,
                                   const char *const *pull_secret_names, size_t n_names,
                                   struct registry_image_config *ret, char *err, size_t errlen);

/* The Pod Security Standard a namespace enforces (its pod-security.kubernetes.io/enforce label;
 * none is privileged). */
enum admission_pod_security {
        ADMISSION_PSS_PRIVILEGED = 0,
        ADMISSION_PSS_BASELINE,
        ADMISSION_PSS_RESTRICTED,
};
/* Tells the level namespace_ enforces: 0 with *ret, or a negative errno (unknown). */
typedef int (*admission_pod_security_fn)(void *userdata, const char *namespace_,
                                         enum admission_pod_security *ret);

struct admission_config {                     /* operator-level settings (flags) */
        const char *init_image;               /* --init-image / CLOUDTASER_INIT_IMAGE */
        const char *default_vault_address;    /* --vault-address */
        const char *default_vault_ca_pem;     /* content of --vault-ca-file, inline into
                                                 CLOUDTASER_VAULT_CA_PEM */
        const char *default_auth_path;        /* --vault-auth-path */
        const char *default_vault_peer_addrs; /* --vault-peer-addresses: the other nodes of the
                                                 --vault-address vault */
        const char *const *allowed_vault_addresses; /* compared in canonical form */
        size_t n_allowed;                           /* empty = any */
        bool allow_plain_http; /* --allow-plain-http-vault: http:// vault addresses admitted */
        admission_lookup_fn lookup;
        void *lookup_userdata;
        /* Bounds on the entrypoint lookups of one review, so that one pod cannot hold an event
         * loop past the API server's webhook timeout: no new lookup starts once lookup_budget_ms
         * have passed since the review began (0: 6000), and at most max_lookups distinct images
         * are looked up (0: 16). Beyond either, the pod is denied with a message saying so. */
        unsigned lookup_budget_ms;
        unsigned max_lookups;
        /* The clock lookup_budget_ms is measured on, in milliseconds from any fixed origin
         * (NULL: CLOCK_MONOTONIC). Tests pass a fake clock that their lookup function advances,
         * so the budget is checked without depending on the machine's speed. */
        uint64_t (*clock_ms)(void *userdata);
        void *clock_userdata;
        /* Pod Security: baseline and restricted refuse any added capability but a few, IPC_LOCK
         * among the refused, so in namespaces that enforce them (or whose level cannot be read)
         * the mutation adds no IPC_LOCK, with a warning: the pod starts, and the wrapper keeps its
         * secrets in memfd_secret or locked memory within RLIMIT_MEMLOCK and says so in its
         * protection line. NULL: IPC_LOCK is always added. */
        admission_pod_security_fn pod_security;
        void *pod_security_userdata;
        /* Broker mode and sealed token mode (operator/modes.h): the broker's address, whether
         * the operator unseals pods, and its credentials' annotation MAC and broker CA. Zero:
         * no broker, no unsealing. */
        struct modes_config modes;
};

/* Takes the AdmissionReview request body (untrusted), writes the AdmissionReview response JSON to
 * out. Returns 0 when a response was produced (allowed or not), -EBADMSG when the body is not an
 * AdmissionReview at all (the server answers 400), -ENOMEM, -E2BIG. *ret_outcome (optional):
 * "injected", "skipped", "denied", "error" for metrics (a static string; set on failure too, to
 * "error"). "injected" means a patch was returned; an already injected pod is "skipped".
 * -E2BIG: the body is over ADMISSION_MAX_BODY, or the response does not fit out's maximum (out
 * is then unchanged). */
int admission_review(const struct admission_config *c, const char *body, size_t len,
                     struct buf *out, const char **ret_outcome);

/* The same with the review's memory taken from arena (the request's: httpd_request.arena) while
 * its budget lasts, then from the heap; the result is the same whatever the arena's budget. What
 * it takes from the arena stays there until the arena is reset (a review holds no secret: the
 * arena's ARENA_WIPE is the caller's choice). admission_review() runs it in an arena of its own
 * of at most ADMISSION_ARENA_MAX bytes. */
#define ADMISSION_ARENA_MAX (64u * 1024u * 1024u)
struct arena;
int admission_review_arena(const struct admission_config *c, struct arena *arena, const char *body,
                           size_t len, struct buf *out, const char **ret_outcome);
