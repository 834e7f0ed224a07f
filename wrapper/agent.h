/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/agent: everything the wrapper does on the network, on a thread of its own, so that the
 * supervisor's loop (signals, reaping, the restart grace timer) never waits on a vault call.
 *
 * Two phases, one thread each (never both at once):
 *   1. start-up (agent_fetch_start/agent_fetch_finish): checks a VAULT_TOKEN, logs in, reads and
 *      maps every path with retries until the start-up timeout. The supervisor waits on the
 *      signalfd and on agent_fd() together: a terminating signal ends the wrapper at once, and
 *      the thread, perhaps inside a request that never returns, is abandoned (the process exits
 *      around it with _exit(): wiping or freeing under a running thread would crash it).
 *   2. run time (agent_run): token renewal (about 2/3 of the lease, logins again near the
 *      maximum TTL or after a failure) and, with rotation, the periodic check. The thread owns
 *      the vault client, the renewal and rotation timers and the set it compares against.
 *      Started after the supervisor dropped its capabilities (they are per thread and a new
 *      thread inherits its creator's); the seccomp filter, installed with TSYNC, covers it.
 *
 * Rotation hand-over: a changed set is offered through a one-slot box; agent_fd() becomes
 * readable. The supervisor takes it (agent_take_offer), uses it (rewrites the memfd, or keeps it
 * for the whole restart) and settles it (agent_settle): applied, and the agent compares against it
 * from then on; or refused, and the agent finds the change again at its next check. While an
 * offer is out, checks are skipped: exactly one owner for each set at any time, and no set is
 * read by one thread while the other replaces it. Secrets stay in secure memory throughout
 * (threads share it; nothing crosses a pipe but a wake-up).
 *
 * The agent logs (one write(2) per line, safe from any thread). Exit codes are the wrapper's.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/exit-status.h"
#include "common/vault.h"
#include "wrapper/broker.h"
#include "wrapper/config.h"
#include "wrapper/secrets.h"

enum agent_box {
        AGENT_BOX_EMPTY,
        AGENT_BOX_OFFERED, /* a changed set waits for the supervisor */
        AGENT_BOX_TAKEN,   /* the supervisor is using it (memfd update, restart) */
        AGENT_BOX_APPLIED, /* the workload has it now: compare against it */
        AGENT_BOX_REFUSED, /* not delivered: drop it, the next check finds the change again */
};

struct agent {
        const struct wrapper_config *cfg;
        struct vault_client *vault;
        struct broker_client *broker; /* broker mode, else NULL */
        int event_fd; /* eventfd: readable when the thread has news for the supervisor */
        int stop_fd;  /* eventfd: the run-time thread ends at its next wait */
        pthread_t thread;
        bool thread_started;
        void *stack; /* mmap: the stack both threads run on, one after the other */
        size_t stack_len;
        /* phase 1: result */
        int fetch_result; /* 0, or -(exit code) */
        struct secret_set fetched;
        struct vault_token_info ti;
        bool have_ti;
        uint64_t ti_at_ms; /* when ti's ttl was counted from (a login's lease), 0: not adjusted */
        /* phase 2: the thread's own */
        int renew_tfd, rotate_tfd;
        struct secret_set known;
        bool have_known;
        int64_t lease, login_lease;
        unsigned renew_failures;
        bool vault_down;
        uint64_t relogin_not_before_ms;
        /* the box */
        pthread_mutex_t lock;
        enum agent_box box;
        struct secret_set offered;
};

/* Sets up *a (eventfd). 0 or -errno. */
int agent_init(struct agent *a, const struct wrapper_config *cfg, struct vault_client *vault);
/* Broker mode: the values come through cloudtaser-broker (wrapper/broker.h) instead of the
 * vault client, with the same retries, exit codes and rotation; renewal is the broker session's
 * (about 2/3 of its life). Call before agent_fetch_start(); the agent's thread then owns
 * `broker` as it owns the vault client. */
void agent_use_broker(struct agent *a, struct broker_client *broker);
/* The descriptor the supervisor polls (POLLIN). Reading it is done by the functions below. */
int agent_fd(const struct agent *a);

/* Phase 1: starts the start-up fetch on a thread. 0 or -errno (no thread). */
int agent_fetch_start(struct agent *a);
/* Whether the start-up fetch has ended (consumes the wake-up). */
bool agent_fetch_done(struct agent *a);
/* Joins the start-up thread (call once agent_fetch_done() said so). Returns 0 and moves the set
 * into *ret (caller owns it, secret_set_done()), or -(exit code) after logging the cause. */
int agent_fetch_finish(struct agent *a, struct secret_set *ret);

/* Phase 2: starts renewal and, when known != NULL (rotation on), the rotation checks against
 * *known, which moves into the agent. 0 or -errno. */
int agent_run(struct agent *a, struct secret_set *known);

/* Asks the run-time thread to end and waits for it up to timeout_ms. 0 (joined, or no thread),
 * or -ETIMEDOUT: it is inside a vault call; the caller then leaves with _exit() (a process's
 * memory goes back to the kernel, which clears pages before it reuses them) rather than free or
 * wipe memory under it. */
int agent_stop(struct agent *a, unsigned timeout_ms);
/* Releases (wipes) the agent's sets and descriptors; nothing while its thread runs. */
void agent_done(struct agent *a);

/* Consumes the wake-up; returns the offered set (owned by the agent, the supervisor may read it
 * until it settles), or NULL when there is none. */
const struct secret_set *agent_take_offer(struct agent *a);
/* Ends the use of the set agent_take_offer() returned. */
void agent_settle(struct agent *a, bool applied);
