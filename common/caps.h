/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caps: dropping Linux capabilities (the only module that includes libcap's <sys/capability.h>).
 *
 * The supervisor (cloudtaser-wrapper after it has started the workload) keeps only the
 * capabilities its loop still uses: CAP_IPC_LOCK (mlock of secure memory beyond RLIMIT_MEMLOCK)
 * and, only when the workload runs under another uid, CAP_KILL (forwarding signals to it).
 * Everything else goes, in one call, in a fixed order, each step checked:
 *
 *   1. bounding set: every capability not in `keep` that is still in the bounding set (read once
 *      from /proc/thread-self/status) is dropped from it with PR_CAPBSET_DROP, but only
 *      when `flags` has CAPS_DROP_BOUNDING and CAP_SETPCAP is in our effective set (the kernel
 *      refuses PR_CAPBSET_DROP otherwise). Without the flag, or without CAP_SETPCAP, the bounding
 *      set is left alone and caps_report() says which of the two happened;
 *   2. ambient set: cleared (PR_CAP_AMBIENT_CLEAR_ALL);
 *   3. capset(2): effective = permitted = keep ∩ (current permitted); inheritable = empty. A
 *      capability that is not already permitted is never gained (the kernel would refuse it),
 *      it is silently left out. Inheritable is emptied rather than set to `keep`: it only matters
 *      across execve(2), which the hardened supervisor no longer does (and with ambient cleared it
 *      could pass nothing on anyway).
 *
 * The bounding set and restarting workloads (rotation by restart)
 * ---------------------------------------------------------------
 * The bounding set limits what ANY later execve(2) in this process or its future children can
 * obtain; effective/permitted only limit this process. For a workload that runs as uid 0, the
 * kernel recomputes capabilities at execve: permitted' = inheritable | bounding (root's file
 * capability sets count as full, unless SECBIT_NOROOT), so a root workload started by a
 * supervisor that has dropped its own effective/permitted sets still receives every capability
 * of the bounding set, which is what it would have received without cloudtaser. Therefore:
 *   - a supervisor that will never start another workload (secrets refreshed in place, or a
 *     restart handled by the container runtime) passes CAPS_DROP_BOUNDING;
 *   - a supervisor that must later start new workloads itself (rotation by restart) must NOT
 *     pass it (the restarted workload would silently lose capabilities), may still drop its own
 *     effective/permitted sets with this function, and must not set PR_SET_NO_NEW_PRIVS or a
 *     seccomp filter either (see common/sandbox.h: NO_NEW_PRIVS limits the capabilities gained at
 *     execve to the caller's permitted set, and a filter is inherited and forbids execve).
 * A non-root workload receives capabilities only through file capabilities or the ambient set,
 * and this function clears the supervisor's ambient set: start such workloads before dropping.
 *
 * uid/gid changes (setresuid/setresgid, keep-caps) are not done here: the supervisor keeps the
 * uid it was started with. Not thread-safe (process-wide state; call before starting threads or
 * while only one thread runs). Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for caps_drop_except(). */
enum {
        CAPS_DROP_BOUNDING = 1u << 0, /* also drop everything not kept from the bounding set */
};

/* What caps_drop_except() did with the bounding set (the most recent call in this process). */
enum caps_bounding_state {
        CAPS_BOUNDING_UNTOUCHED = 0,   /* caps_drop_except() not called yet */
        CAPS_BOUNDING_KEPT,            /* called without CAPS_DROP_BOUNDING: left as it was */
        CAPS_BOUNDING_KEPT_NO_SETPCAP, /* CAPS_DROP_BOUNDING asked, but no CAP_SETPCAP: left */
        CAPS_BOUNDING_DROPPED,         /* every capability not kept was dropped from it */
};

struct caps_report {
        /* Bit n set = capability n is in the set (the kernel knows at most 64). */
        uint64_t bounding, effective, permitted, inheritable, ambient;
        unsigned n_bounding, n_effective, n_permitted; /* number of bits set */
        unsigned last_cap;                             /* highest capability the kernel knows */
        enum caps_bounding_state bounding_state;
};

/*
 * Drops every capability except those in keep[0..n_keep) (CAP_* values), as described above.
 * Returns 0, or:
 *   -EINVAL  unknown flags, keep == NULL with n_keep > 0, or a value outside 0..last_cap;
 *   -errno   of the first step that failed (-EPERM from the kernel, -ENOMEM from libcap). The
 *            steps before it have taken effect (they only ever remove capabilities), the ones
 *            after it have not: a caller treats any failure as fatal.
 */
int caps_drop_except(const int *keep, size_t n_keep, unsigned flags);

/* Reads the current sets of the calling thread: capget(2), and the bounding and ambient sets from
 * /proc/thread-self/status (one read; without /proc, PR_CAPBSET_READ and PR_CAP_AMBIENT_IS_SET
 * for each capability). 0 and *ret filled, or -errno (*ret untouched). */
int caps_report(struct caps_report *ret);

/* The kernel's name of a capability ("CAP_IPC_LOCK"), or NULL for a value this module does not
 * know (negative or above CAP_CHECKPOINT_RESTORE = 40). */
const char *caps_name(int cap);

/* "untouched", "kept", "kept-no-setpcap" or "dropped". */
const char *caps_bounding_state_to_string(enum caps_bounding_state s);
