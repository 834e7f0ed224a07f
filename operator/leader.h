/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/leader: leader election among the operator's replicas through a coordination.k8s.io/v1
 * Lease, with client-go's semantics (k8s.io/client-go/tools/leaderelection, LeaseLock), so that
 * the replicas can share one Lease with any other client of that protocol.
 *
 * The Lease (LEADER_DEFAULT_NAME unless named) in the given namespace carries
 *   spec.holderIdentity        the leader's identity ("" after a release)
 *   spec.leaseDurationSeconds  how long the others wait after the record last changed
 *   spec.acquireTime           when the holder acquired it (MicroTime: RFC 3339, 6 fraction
 *   spec.renewTime             digits, "Z"); when it last renewed
 *   spec.leaseTransitions      +1 at every change of holder
 * and every write is conditional on metadata.resourceVersion (PUT of the object last read:
 * a concurrent writer makes it 409 Conflict, and the loser reads again).
 *
 * The election, run by a thread of its own (leader_start()), every retry period:
 *   - a candidate reads the Lease. It acquires it (creates it, or updates it with itself as
 *     holder) when it does not exist, when it holds it already, when its holder is "" (released),
 *     or when the record has not changed for leaseDurationSeconds (the record's, not ours) as
 *     measured on the candidate's OWN monotonic clock from the moment it first saw that record:
 *     wall clocks of different nodes are never compared (renewTime is informative). A new
 *     candidate therefore waits a full lease duration before taking over from a dead leader.
 *     Taking over from another holder increments leaseTransitions and sets acquireTime.
 *   - the leader renews: it updates renewTime, first with the object it wrote last (no read),
 *     then, on 409, after reading it again. If the Lease turns out held by someone else, it steps
 *     down at once. If it cannot renew for renew_deadline_ms, counted from the START of its last
 *     successful write, it steps down then. Any other replica counts the lease duration from the
 *     moment it saw that write, which is later, and lease_duration_ms > renew_deadline_ms: so the
 *     leader has stopped before any other may start (leader_is_leader() turns false at the
 *     deadline even while a request is in flight; the callback follows when the thread is back,
 *     within the kube client's request timeout).
 *   - a replica that stepped down stays a candidate (it does not exit): it may lead again.
 *   - leader_stop() of the leader releases the Lease (holderIdentity "", leaseDurationSeconds 1,
 *     client-go's ReleaseOnCancel), so a standby takes over at its next retry.
 * There is no jitter on the retry period (client-go adds up to 1.2 of it): conflicts between
 * candidates are resolved by resourceVersion, and an unjittered period keeps the takeover bound
 * at one lease duration plus one retry period.
 *
 * Logging (operator/ may log; common/log): one line per transition only: became the leader,
 * stopped leading (and why), a new leader observed, the lease released; and one warning per run
 * of failing requests (the first error, or when the error changes), never one per retry.
 *
 * Threads: the callbacks run on the election thread, without any lock held, and should return
 * quickly (the thread renews when they return). leader_is_leader() may be called from any
 * thread. The kube client is shared with the caller (it is thread-safe) and must outlive the
 * elector.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/kube.h"

#define LEADER_DEFAULT_NAME "cloudtaser-operator-leader"
#define LEADER_DEFAULT_LEASE_DURATION_MS 15000u
#define LEADER_DEFAULT_RENEW_DEADLINE_MS 10000u
#define LEADER_DEFAULT_RETRY_PERIOD_MS 2000u
#define LEADER_IDENTITY_MAX 253u /* bytes of an identity (ours, or a holder's we report) */

struct leader_callbacks {
        void (*on_started_leading)(void *userdata);
        /* After is_leader turned false (and, on stop, after the release). */
        void (*on_stopped_leading)(void *userdata);
        /* The holder seen in the Lease changed to a non-empty identity (ours included). identity
         * is borrowed for the call; a longer holder than LEADER_IDENTITY_MAX is cut. */
        void (*on_new_leader)(const char *identity, void *userdata);
        void *userdata;
};

/* Test hooks (all optional, but wait_until and wake go together). Times in milliseconds. */
struct leader_hooks {
        uint64_t (*now_ms)(void *userdata);   /* monotonic; default CLOCK_MONOTONIC */
        int64_t (*wall_usec)(void *userdata); /* microseconds since the epoch, for acquireTime and
                                               * renewTime; default CLOCK_REALTIME */
        /* Returns when now_ms() >= deadline_ms or when woken (it may return early: the caller
         * loops). Default: a condition variable on CLOCK_MONOTONIC. */
        void (*wait_until)(void *userdata, uint64_t deadline_ms);
        /* Makes the wait_until in progress return, or the next one if none is (called by
         * leader_stop()). */
        void (*wake)(void *userdata);
        void *userdata;
};

struct leader_options {
        const char *namespace_; /* required, a DNS-1123 name */
        const char *name;       /* NULL: LEADER_DEFAULT_NAME */
        /* Required: this replica's identity, unique among the candidates (the pod name and a
         * random suffix, so a restarted pod is a new candidate). Printable ASCII, 1 to
         * LEADER_IDENTITY_MAX bytes. */
        const char *identity;
        /* 0: the defaults. lease_duration_ms > renew_deadline_ms > retry_period_ms > 0, and the
         * lease duration a whole number of seconds (leaseDurationSeconds); else -EINVAL. */
        unsigned lease_duration_ms, renew_deadline_ms, retry_period_ms;
        struct leader_callbacks callbacks;
        struct leader_hooks hooks;
};

struct leader;

/* Starts the election thread. The strings of o are copied. The first attempt happens at once.
 * -EINVAL (see leader_options), -ENOMEM, -errno of pthread_create(). */
int leader_start(struct kube_client *k, const struct leader_options *o, struct leader **ret);

/* Whether this replica leads now: it acquired or renewed the Lease less than renew_deadline_ms
 * ago and has not stepped down. Lock-free (two atomic loads and the clock); false for NULL. */
bool leader_is_leader(const struct leader *l);

/* Stops the thread (call it from one thread, never from a callback: it joins the election
 * thread): when leading, is_leader turns false, the Lease is released, and
 * on_stopped_leading is called; then the thread is joined. Returns 0, or the release's error
 * (-ESTALE: the Lease had changed, it was not ours any more; kube_update()'s others), which the
 * caller may log. A second call returns 0. */
int leader_stop(struct leader *l);

/* Stops (as leader_stop()) and frees. Accepts NULL. Returns NULL. */
struct leader *leader_free(struct leader *l);

static inline void leader_freep(struct leader **l) {
        leader_free(*l);
}
#define _cleanup_leader_ __attribute__((cleanup(leader_freep)))
