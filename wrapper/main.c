/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser-wrapper: the container's entrypoint. Fetches secrets into locked memory, starts the
 * workload with them, then stays as its supervisor (PID 1 or a subreaper): forwards signals,
 * reaps, passes the exit status through, renews its vault token and rotates secrets.
 * The contract (environment, exit codes, logs) is docs/wrapper.md.
 *
 * Process model and the kernel rules it relies on:
 *  - Every catchable asynchronous signal is blocked from the start and read from a signalfd, so
 *    none is lost between start-up and the workload's start, and PID 1's special treatment
 *    (signals with default action are dropped for it) does not matter. Synchronous fault signals
 *    (SEGV, BUS, FPE, ILL, TRAP, SYS) stay unblocked: blocking them is undefined.
 *  - The workload is started with posix_spawn (clone(CLONE_VM|CLONE_VFORK) + execve): it gets an
 *    empty signal mask and default dispositions, and returns once execve has succeeded or failed,
 *    so the environment block holding the secrets is wiped right after it returns.
 *  - Zombies: every SIGCHLD drains waitpid(-1, WNOHANG), so orphans re-parented to us (as PID 1,
 *    or as a PR_SET_CHILD_SUBREAPER otherwise) are reaped too. We exit when the workload exits.
 *  - The network is the vault agent's (wrapper/agent.h; in broker mode its client of
 *    cloudtaser-broker, wrapper/broker.h, instead of the vault client), a thread of its own: the
 *    start-up fetch while this thread waits on the signalfd (a terminating signal abandons it),
 *    then renewal and rotation checks. This thread never waits on a vault call.
 *  - After the start, the supervisor drops privileges (capabilities, NO_NEW_PRIVS, seccomp)
 *    which the already running workload does not inherit. With rotation by restart the
 *    supervisor must start new workloads, which would inherit a seccomp filter and
 *    NO_NEW_PRIVS, so those two stay off then (and the protection line says so).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h> /* CAP_* (kernel UAPI; libcap stays in common/caps.c) */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/exit-status.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/sandbox.h"
#include "common/secmem.h"
#include "common/vault.h"
#include "wrapper/agent.h"
#include "wrapper/broker.h"
#include "wrapper/child.h"
#include "wrapper/config.h"
#include "wrapper/secrets.h"
#include "wrapper/timer.h"
#include "wrapper/unseal.h"

extern char **environ;

struct supervisor {
        struct wrapper_config *cfg;
        struct agent *agent;
        int sigfd, grace_tfd;
        int memfd;
        bool memfd_secret;
        pid_t child;
        pid_t group; /* the workload's process group (its pid), which outlives it until empty */
        bool restarting;
        const struct secret_set *next; /* the agent's offer, waiting for the restart */
        bool memfd_stuck;              /* last memfd update failed: log only the first failure */
        unsigned restarts;
};

/* The agent's thread may still be inside a vault call when the process exits: what it uses
 * stays reachable from here (and is never freed under it). */
static struct agent agent;

static const char *env_lookup(const char *name, void *userdata) {
        return getenv(name);
}

/* The signals we take over: everything catchable but the synchronous faults. */
static void supervised_signals(sigset_t *set) {
        (void) sigfillset(set);
        (void) sigdelset(set, SIGSEGV);
        (void) sigdelset(set, SIGBUS);
        (void) sigdelset(set, SIGFPE);
        (void) sigdelset(set, SIGILL);
        (void) sigdelset(set, SIGTRAP);
        (void) sigdelset(set, SIGSYS);
        (void) sigdelset(set, SIGKILL);
        (void) sigdelset(set, SIGSTOP);
}

/* Takes VAULT_TOKEN into secmem and overwrites its value in our own environment block, so that
 * /proc/<pid>/environ (which reads the original block) no longer shows it. */
static int take_token(struct vault_client *c) {
        int r = -ENOENT;
        for (char **e = environ; e && *e; e++) {
                if (strncmp(*e, "VAULT_TOKEN=", 12) != 0)
                        continue;
                char *v = *e + 12;
                size_t n = strlen(v);
                if (r == -ENOENT) /* the first one counts, as getenv() would take it */
                        r = n ? vault_set_token(c, v, n) : -EINVAL;
                explicit_bzero(v, n); /* every copy goes, duplicates included */
        }
        return r;
}

static void log_protection(const struct supervisor *s) {
        struct secmem_report m;
        struct sandbox_report sb = {};
        struct caps_report cr = {};
        char caps[256] = "", mech[64];

        secmem_report(&m);
        if (m.mechanism == SECMEM_NONE)
                log_warning("secrets are in memory that could not be locked (no CAP_IPC_LOCK and "
                            "RLIMIT_MEMLOCK too low): they may be swapped out");
        /* The rest is one notice line: below that level, do not read the capability sets
         * (/proc/thread-self/status and libcap) only to drop the line. */
        if (s->cfg->env.log_level < LOG_NOTICE)
                return;
        (void) sandbox_report(&sb);
        if (caps_report(&cr) >= 0) {
                size_t o = 0;
                for (unsigned i = 0; i <= cr.last_cap && i < 64; i++)
                        if (cr.effective & (UINT64_C(1) << i)) {
                                int w = snprintf(caps + o, sizeof(caps) - o, "%s%s", o ? "," : "",
                                                 caps_name((int) i));
                                if (w < 0 || (size_t) w >= sizeof(caps) - o)
                                        break;
                                o += (size_t) w;
                        }
                if (!caps[0])
                        (void) snprintf(caps, sizeof(caps), "none");
        } else
                (void) snprintf(caps, sizeof(caps), "unknown");
        (void) snprintf(mech, sizeof(mech), "%s", secmem_mechanism_to_string(m.mechanism));
        const char *fields[] = {
                "memory",
                mech,
                "dumpable",
                m.dumpable_off ? "off" : "ON",
                "core_limit",
                m.core_limit_zero ? "0" : "not-0",
                "seccomp",
                sb.seccomp_mode == 2 ? "on" : "off",
                "no_new_privs",
                sb.no_new_privs ? "on" : "off",
                "capabilities",
                caps,
                "bounding_set",
                caps_bounding_state_to_string(cr.bounding_state),
                "delivery",
                s->cfg->env.delivery == DELIVERY_ENV ? "env"
                : s->cfg->env.delivery == DELIVERY_MEMFD
                        ? (s->memfd_secret ? "memfd_secret" : "memfd")
                        : (s->memfd_secret ? "env+memfd_secret" : "env+memfd"),
                NULL,
        };
        log_event(LOG_NOTICE, 0, fields, "protection:");
        if (s->cfg->env.rotation == ROTATION_RESTART)
                log_notice("seccomp and no_new_privs stay off for the supervisor: rotation=restart "
                           "must start new workloads, which would inherit them");
}

#ifdef CLOUDTASER_ASAN
/* LeakSanitizer's end-of-process check stops the world with ptrace from a clone()d task, which
 * the supervisor's seccomp filter refuses: run the check now, before the filter, instead (it then
 * skips the one at exit). The sanitizer build is for tests; the released build has no LSan. */
void __lsan_do_leak_check(void);
#endif

/* Whether the workload may end up under another uid than ours: it started with our capabilities,
 * so with CAP_SETUID it can switch (gosu, su-exec, setpriv, postgres' own entrypoint). kill(2)
 * to a process of another uid needs CAP_KILL, without which every forwarded signal would fail
 * with EPERM. Read before the drop, from our permitted set (what the workload inherited). */
static bool workload_may_change_uid(void) {
        struct caps_report cr = {};
        if (caps_report(&cr) < 0)
                return true; /* unknown: keep CAP_KILL, it is dropped anyway if not permitted */
        return cr.permitted & (UINT64_C(1) << CAP_SETUID);
}

static void harden_supervisor(struct supervisor *s) {
        int keep[2] = {CAP_IPC_LOCK}, r;
        size_t n_keep = 1;
        bool restart = s->cfg->env.rotation == ROTATION_RESTART;

        if (workload_may_change_uid())
                keep[n_keep++] = CAP_KILL;
        /* A root workload started later gets its capabilities from the bounding set: keep it
         * when we may start one again. */
        r = caps_drop_except(keep, n_keep, restart ? 0 : CAPS_DROP_BOUNDING);
        if (r < 0)
                log_warning_errno(r, "Could not drop capabilities: %m");
        if (restart)
                return;
#ifdef CLOUDTASER_ASAN
        __lsan_do_leak_check();
#endif
        r = sandbox_no_new_privs();
        if (r < 0)
                log_warning_errno(r, "Could not set no_new_privs: %m");
        else if (sandbox_is_supported()) {
                r = sandbox_apply_supervisor_filter(0);
                if (r < 0)
                        log_warning_errno(r, "Could not install the seccomp filter: %m");
        }
}

static int start_child(struct supervisor *s, const struct secret_set *set) {
        struct child_env env = {};
        bool with_env = s->cfg->env.delivery != DELIVERY_MEMFD;
        int r;

        if (s->cfg->env.delivery != DELIVERY_ENV) {
                if (s->memfd >= 0)
                        s->memfd = safe_close(s->memfd);
                r = child_memfd_create(set, s->cfg->env.rotation == ROTATION_SIGNAL, &s->memfd,
                                       &s->memfd_secret);
                if (r < 0)
                        return log_error_errno(r, "Could not create the secrets memfd: %m");
        }
        r = child_env_build(environ, set, with_env, s->memfd, &env);
        if (r < 0)
                return log_error_errno(r, "Could not build the workload's environment: %m");
        pid_t pid = child_spawn(s->cfg->argv, &env, s->memfd);
        child_env_done(&env); /* execve is done: wipe the block now */
        if (s->memfd >= 0 && s->cfg->env.rotation != ROTATION_SIGNAL)
                s->memfd = safe_close(s->memfd); /* the child has its copy */
        if (pid < 0) {
                log_error_errno((int) pid, "Could not execute '%s': %m", s->cfg->argv[0]);
                return pid == -ENOENT ? -EXIT_NOT_FOUND : -EXIT_CANNOT_EXECUTE;
        }
        s->child = pid;
        s->group = pid;
        log_info("started '%s' as pid %d with %zu secret%s", s->cfg->argv[0], (int) pid, set->n,
                 set->n == 1 ? "" : "s");
        return 0;
}

static int exit_status_of(int st) {
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return EXIT_SIGNAL(WTERMSIG(st));
        return EX_SOFTWARE;
}

static bool is_terminating(int sig) {
        return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGHUP;
}

/* Before the workload exists: reads EVERY pending signal and returns the first terminating one,
 * or 0. signalfd hands out the lowest-numbered pending signal first, so reading only one would
 * let a SIGUSR1 or SIGPIPE hide a SIGTERM queued beside it. The others have nobody to go to. */
static int startup_signals(int sigfd) {
        struct signalfd_siginfo si;
        int term = 0;
        while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                if (!term && is_terminating((int) si.ssi_signo))
                        term = (int) si.ssi_signo;
        return term;
}

/* Waits for the agent's start-up fetch or a terminating signal, whichever comes first. Returns
 * 0 and the set, -(exit code) of a failed fetch, or -(128 + signal): then the agent's thread may
 * still be inside a vault call and is abandoned. */
static int wait_for_fetch(struct supervisor *s, struct secret_set *ret) {
        struct pollfd p[2] = {
                {.fd = s->sigfd, .events = POLLIN},
                {.fd = agent_fd(s->agent), .events = POLLIN},
        };
        for (;;) {
                int sig = startup_signals(s->sigfd);
                if (sig) {
                        log_notice("received SIG%s before the workload started: exiting",
                                   config_signal_name(sig));
                        return -EXIT_SIGNAL(sig);
                }
                if (agent_fetch_done(s->agent))
                        return agent_fetch_finish(s->agent, ret);
                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR)
                        return log_error_errno(errno, "poll failed: %m"), -EX_SOFTWARE;
        }
}

/* ---- sealed token mode (wrapper/unseal.h) ---- */

/* On the unseal server's thread, before it serves: capabilities are per thread, and this one
 * parses untrusted input before the supervisor drops its own (after the start). Keep
 * CAP_IPC_LOCK for secmem; the bounding set is the supervisor's business. */
static void unseal_thread_init(void *userdata) {
        int keep[1] = {CAP_IPC_LOCK};
        int r = caps_drop_except(keep, 1, 0);
        if (r < 0)
                log_warning_errno(r, "Could not drop the unseal server's capabilities: %m");
}

/* The operator's token, on the unseal server's thread, while this thread waits in
 * wait_for_unseal() and nothing else uses the vault client: set as the client's token, or
 * (wrapped) unwrapped at the vault first. After a 0 the agent takes the client over. */
static int unseal_accept(void *userdata, const char *token, size_t len, bool wrapped, char *reason,
                         size_t reason_size) {
        struct vault_client *vault = userdata;
        struct vault_error e = {};
        int r;

        if (!wrapped) {
                r = vault_set_token(vault, token, len);
                if (r < 0) {
                        (void) snprintf(reason, reason_size, "not a valid vault token");
                        return 400;
                }
                return 0;
        }
        r = vault_unwrap_token(vault, token, len, NULL, &e);
        if (r >= 0)
                return 0;
        log_error("Could not unwrap the unseal token at the vault: %s",
                  e.message[0] ? e.message : vault_strerror(r));
        if (vault_error_is_transient(r)) {
                (void) snprintf(reason, reason_size, "the vault is not available: try again");
                return 503;
        }
        (void) snprintf(reason, reason_size,
                        "the vault refused the wrapping token (used already, expired, or not "
                        "one): it may have been intercepted");
        return 422;
}

/* Sealed: serves wrapper/unseal.h and waits, without the start-up timeout, for an unseal or a
 * terminating signal. 0 once unsealed (the client has its token, the server keeps running in
 * *ret), -(exit code), or -(128 + signal): then the server's thread may be inside a vault call
 * and is abandoned (the caller leaves with _exit()). */
static int wait_for_unseal(struct supervisor *s, struct vault_client *vault, struct unseal **ret) {
        struct unseal *u = NULL;
        struct unseal_options o = {
                .listen = s->cfg->env.unseal_listen,
                .client_ca_pem = s->cfg->env.unseal_ca_pem,
                .client_ca_len = strlen(s->cfg->env.unseal_ca_pem),
                .client_name = INJECTION_UNSEAL_CLIENT_NAME,
                .accept = unseal_accept,
                .thread_init = unseal_thread_init,
                .userdata = vault,
        };
        int r = unseal_new(&o, &u);
        if (r == -EBADMSG)
                return log_error("configuration error: CLOUDTASER_UNSEAL_CA_PEM holds no "
                                 "certificate"),
                       -EX_USAGE;
        if (r < 0)
                return log_error_errno(r, "Could not serve the unseal endpoint on %s: %m",
                                       o.listen),
                       r == -EINVAL ? -EX_USAGE : -EX_UNAVAILABLE;
        r = unseal_start(u);
        if (r < 0) {
                unseal_free(u);
                return log_error_errno(r, "Could not start the unseal server: %m"), -EX_SOFTWARE;
        }
        *ret = u; /* from now on it may be inside a vault call: never freed on a signal */
        log_notice("sealed: waiting for the operator's token on %s (port %d; GET /v1/status, "
                   "POST /v1/unseal over mutual TLS); no start-up timeout while sealed",
                   o.listen, unseal_port(u));
        struct pollfd p[2] = {
                {.fd = s->sigfd, .events = POLLIN},
                {.fd = unseal_fd(u), .events = POLLIN},
        };
        for (;;) {
                int sig = startup_signals(s->sigfd);
                if (sig) {
                        log_notice("received SIG%s while sealed: exiting", config_signal_name(sig));
                        return -EXIT_SIGNAL(sig);
                }
                if (!unseal_sealed(u))
                        return 0;
                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR)
                        return log_error_errno(errno, "poll failed: %m"), -EX_SOFTWARE;
        }
}

/* Whether any process is left in the workload's group (zombies count until reaped; EPERM means
 * a member we may not signal, which is still a member). */
static bool group_alive(pid_t group) {
        return group > 0 && (kill(-group, 0) == 0 || errno == EPERM);
}

/* A restart stops the whole tree the workload started, not only the workload: whatever it forked
 * (a shell entrypoint's children, a forking server's workers) would otherwise be re-parented to
 * us and keep running with the old values beside the new workload. Members that left the group
 * themselves (setsid, setpgid) are out of reach, as they would be for the container runtime. */
static void signal_group(struct supervisor *s, int sig) {
        if (s->group > 0 && kill(-s->group, sig) < 0 && errno != ESRCH)
                log_warning_errno(errno, "Could not send SIG%s to process group %d: %m",
                                  config_signal_name(sig), (int) s->group);
        if (s->child > 0 && s->child != s->group)
                (void) kill(s->child, sig);
}

/* During a restart, once the old workload was reaped: start the new one when its whole process
 * group is gone. 0 (started, or still waiting), or the exit code's negative. */
static int restart_when_group_gone(struct supervisor *s) {
        if (!s->restarting || s->child > 0)
                return 0;
        if (group_alive(s->group)) {
                log_debug("waiting for the rest of process group %d", (int) s->group);
                return 0;
        }
        timer_disarm(s->grace_tfd);
        s->restarting = false;
        s->group = 0;
        s->restarts++;
        int r = start_child(s, s->next);
        s->next = NULL;
        agent_settle(s->agent, r >= 0);
        return r;
}

/* A changed set offered by the agent: rewrite the memfd and signal, or start a restart. */
static void apply_rotation(struct supervisor *s, const struct secret_set *next) {
        if (s->cfg->env.rotation == ROTATION_SIGNAL) {
                if (s->memfd >= 0) {
                        int r = child_memfd_update(s->memfd, s->memfd_secret, next);
                        if (r < 0) {
                                /* Logged once per failing change, not at every poll. */
                                if (!s->memfd_stuck)
                                        log_error_errno(r,
                                                        "Could not update the secrets memfd%s: %m",
                                                        r == -E2BIG ? " (the secrets outgrew its "
                                                                      "room; a restart is needed)"
                                                                    : "");
                                s->memfd_stuck = true;
                                agent_settle(s->agent, false);
                                return;
                        }
                        s->memfd_stuck = false;
                }
                log_notice("secrets changed: sending SIG%s to pid %d%s",
                           config_signal_name(s->cfg->env.rotation_signal), (int) s->child,
                           s->memfd >= 0 ? " (memfd updated)"
                                         : " (its environment keeps the old values)");
                if (s->child > 0)
                        (void) kill(s->child, s->cfg->env.rotation_signal);
                agent_settle(s->agent, true);
                return;
        }
        s->next = next;
        s->restarting = true;
        log_notice("secrets changed: restarting pid %d and its process group (SIGTERM, then "
                   "SIGKILL after %" PRIu64 " ms)",
                   (int) s->child, s->cfg->env.rotation_grace_ms);
        signal_group(s, SIGTERM);
        (void) timer_arm(s->grace_tfd, s->cfg->env.rotation_grace_ms);
}

/* Reaps every child that has exited. Returns the workload's exit code when it exited and is not
 * being restarted, else -1. */
static int reap(struct supervisor *s) {
        int result = -1;
        for (;;) {
                int st;
                pid_t pid = waitpid(-1, &st, WNOHANG);
                if (pid <= 0)
                        break;
                if (pid != s->child) {
                        log_debug("reaped orphan %d (status %d)", (int) pid, exit_status_of(st));
                        continue;
                }
                s->child = 0;
                if (s->restarting)
                        continue; /* restarted below, once its group is gone */
                result = exit_status_of(st);
                if (WIFSIGNALED(st))
                        log_info("workload %d killed by SIG%s", (int) pid,
                                 config_signal_name(WTERMSIG(st)));
                else
                        log_info("workload %d exited with status %d", (int) pid, result);
        }
        if (result < 0) {
                int r = restart_when_group_gone(s);
                if (r < 0)
                        result = r == -EXIT_NOT_FOUND || r == -EXIT_CANNOT_EXECUTE ? -r
                                                                                   : EX_SOFTWARE;
        }
        return result;
}

/* Handles every pending signal. Returns the exit code when the workload is gone, else -1. */
static int handle_signals(struct supervisor *s) {
        struct signalfd_siginfo si;
        while (read(s->sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                int sig = (int) si.ssi_signo;
                if (sig == SIGCHLD) {
                        int code = reap(s);
                        if (code >= 0)
                                return code;
                        continue;
                }
                /* A SIGPIPE we raised ourselves (a log write to a closed pipe) is ours, not the
                 * workload's. */
                if (sig == SIGPIPE && (pid_t) si.ssi_pid == getpid())
                        continue;
                /* Told to stop while a rotation restart is under way: stop, do not start the
                 * workload again. */
                if (s->restarting && (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)) {
                        log_notice("SIG%s during a rotation restart: not restarting",
                                   config_signal_name(sig));
                        s->restarting = false;
                        s->next = NULL;
                        agent_settle(s->agent, false);
                        timer_disarm(s->grace_tfd);
                        if (s->child <= 0) {
                                /* The workload is gone already, only the rest of its group
                                 * was awaited: pass the signal on to them and leave. */
                                signal_group(s, sig);
                                return EXIT_SIGNAL(sig);
                        }
                }
                if (s->child > 0) {
                        log_debug("forwarding SIG%s to %d", config_signal_name(sig),
                                  (int) s->child);
                        if (kill(s->child, sig) < 0 && errno != ESRCH)
                                log_warning_errno(errno, "Could not forward SIG%s: %m",
                                                  config_signal_name(sig));
                }
        }
        return -1;
}

/* The supervisor's loop: signals, reaping and the restart grace timer, plus the agent's offers.
 * Nothing here waits on the network: that is the agent's thread. */
static int supervise(struct supervisor *s) {
        struct pollfd p[3] = {
                {.fd = s->sigfd, .events = POLLIN},
                {.fd = s->grace_tfd, .events = POLLIN},
                {.fd = agent_fd(s->agent), .events = POLLIN},
        };
        for (;;) {
                int n = poll(p, ELEMENTSOF(p), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "poll failed: %m");
                        continue; /* never exit while the workload runs */
                }
                if (p[0].revents & POLLIN) {
                        int code = handle_signals(s);
                        if (code >= 0)
                                return code;
                }
                /* Only a real expiry, and only while the old workload is being stopped: the
                 * timer may have fired in the same round as the SIGCHLD that started the new
                 * one (reap() disarmed it then). */
                if ((p[1].revents & POLLIN) && timer_ack(s->grace_tfd) && s->restarting &&
                    (s->child > 0 || group_alive(s->group))) {
                        log_warning("pid %d or its process group did not stop within the grace "
                                    "period: SIGKILL",
                                    (int) s->group);
                        signal_group(s, SIGKILL);
                        /* Members that are not our children die without a SIGCHLD for us:
                         * look again in a second. */
                        (void) timer_arm(s->grace_tfd, 1000);
                } else if ((p[1].revents & POLLIN) && s->restarting) {
                        int code = restart_when_group_gone(s);
                        if (code < 0)
                                return code == -EXIT_NOT_FOUND || code == -EXIT_CANNOT_EXECUTE
                                               ? -code
                                               : EX_SOFTWARE;
                }
                if (p[2].revents & POLLIN) {
                        const struct secret_set *next = agent_take_offer(s->agent);
                        if (next)
                                apply_rotation(s, next);
                }
        }
}

/* A descriptor among 0-2 that we were started without would be taken by the next open(): the
 * signalfd, libcurl's socketpair, and the workload would inherit that as its stdout or stderr
 * (and our log lines would go into an internal socket). Put /dev/null there first of all. The
 * descriptor stays inheritable, as stdin/stdout/stderr are. */
static int ensure_stdio(void) {
        for (int fd = 0; fd <= 2; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                int n = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (n < 0)
                        return negative_errno();
                if (n != fd) { /* cannot happen: fd is the lowest free one */
                        (void) close(n);
                        return -EBADF;
                }
                if (fcntl(fd, F_SETFD, 0) < 0)
                        return negative_errno();
        }
        return 0;
}

/* The vault client from the configuration (every mode but broker). 0, or the exit code. */
static int open_vault(const struct wrapper_config *cfg, struct vault_client **ret) {
        struct vault_client *vault = NULL;
        int r;

        struct vault_options vo = {
                .addr = cfg->env.vault_addr,
                .allow_http = strncmp(cfg->env.vault_addr, "http://", 7) == 0,
                .ca_file = cfg->env.ca_file,
                .ca_pem = cfg->env.ca_pem,
                .ca_pem_len = cfg->env.ca_pem ? strlen(cfg->env.ca_pem) : 0,
                .insecure_skip_verify = cfg->env.skip_verify,
                .namespace_ = cfg->env.namespace_,
                .peer_addrs = cfg->env.peer_addrs,
                .connect_timeout_ms = 5000,
                .request_timeout_ms = 30000,
                .deadline_ms = (unsigned) MIN(cfg->env.startup_timeout_ms, (uint64_t) 60000),
        };
        if (vo.allow_http)
                log_warning("VAULT_ADDR uses plain http: tokens and secrets cross the network "
                            "unencrypted");
        if (cfg->env.skip_verify)
                log_warning(
                        "VAULT_SKIP_VERIFY is set: the vault server's certificate is NOT verified");
        if (cfg->env.ca_file && access(cfg->env.ca_file, R_OK) < 0) {
                log_error_errno(errno, "configuration error: VAULT_CACERT %s cannot be read: %m",
                                cfg->env.ca_file);
                return EX_USAGE;
        }
        if (!cfg->env.ca_file && !cfg->env.ca_pem && !cfg->env.skip_verify && !vo.allow_http) {
                /* No explicit trust: use the system bundle if the image has one. */
                static const char *bundles[] = {"/etc/ssl/certs/ca-certificates.crt",
                                                "/etc/pki/tls/certs/ca-bundle.crt",
                                                "/etc/ssl/cert.pem"};
                for (size_t i = 0; i < ELEMENTSOF(bundles) && !vo.ca_file; i++)
                        if (access(bundles[i], R_OK) == 0)
                                vo.ca_file = bundles[i];
                if (!vo.ca_file) {
                        log_error("configuration error: no CA to verify the vault with: set "
                                  "VAULT_CACERT or CLOUDTASER_VAULT_CA_PEM");
                        return EX_USAGE;
                }
        }
        r = vault_client_new(&vo, &vault);
        if (r < 0) {
                log_error_errno(r, "configuration error: invalid vault client settings "
                                   "(VAULT_ADDR, CA, namespace): %m");
                return EX_USAGE;
        }
        if (cfg->env.has_token) {
                r = take_token(vault);
                if (r < 0 && cfg->env.auth == AUTH_TOKEN) {
                        log_error("configuration error: VAULT_TOKEN is not a valid token");
                        vault_client_free(vault);
                        return EX_USAGE;
                }
                if (cfg->env.auth != AUTH_TOKEN)
                        vault_clear_token(vault); /* kubernetes auth: log in, ignore it */
        }
        *ret = vault;
        return 0;
}

/* Broker mode: the broker client (and its key pair) from the configuration. 0, or the exit
 * code. */
static int open_broker(const struct wrapper_config *cfg, struct broker_client **ret) {
        struct broker_options bo = {
                .addr = cfg->env.broker_addr,
                .ca_pem = cfg->env.broker_ca_pem,
                .token_path = cfg->env.broker_token_path,
                .connect_timeout_ms = 5000,
                .request_timeout_ms = 30000,
                .deadline_ms = (unsigned) MIN(cfg->env.startup_timeout_ms, (uint64_t) 60000),
        };
        int r = broker_client_new(&bo, ret);
        if (r < 0) {
                log_error_errno(r, "configuration error: invalid broker client settings "
                                   "(CLOUDTASER_BROKER_ADDRESS, CLOUDTASER_BROKER_CA_PEM): %m");
                return EX_USAGE;
        }
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "usage: cloudtaser-wrapper [--] COMMAND [ARG...]\n"
                   "Configured by VAULT_* and CLOUDTASER_* variables: see docs/wrapper.md.\n");
}

int main(int argc, char **argv) {
        /* Static: the agent's thread reads the configuration, and may outlive main() when a
         * terminating signal abandons it during the start-up fetch. */
        static struct wrapper_config cfg;
        struct error_report cerr = {};
        struct vault_client *vault = NULL;
        struct broker_client *broker = NULL; /* broker mode: instead of the vault client */
        struct secret_set secrets = {};
        struct supervisor s = {
                .cfg = &cfg, .agent = &agent, .sigfd = -1, .grace_tfd = -1, .memfd = -1};
        sigset_t mask;
        int r;

        if (ensure_stdio() < 0)
                return EX_SOFTWARE;
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("cloudtaser-wrapper %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        if (argc == 2 && strcmp(argv[1], "--help") == 0) {
                usage(stdout);
                return 0;
        }

        /* Signals first: nothing sent to us from now on is lost or acted on by default. */
        supervised_signals(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return EX_SOFTWARE;
        s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

        log_setup("cloudtaser-wrapper", LOG_FORMAT_TEXT, LOG_INFO);
        r = config_parse(env_lookup, NULL, argc, argv, &cfg, &cerr);
        if (r < 0) {
                enum log_format f = LOG_FORMAT_TEXT;
                (void) log_format_from_string(getenv("CLOUDTASER_LOG_FORMAT"), &f);
                log_setup("cloudtaser-wrapper", f, LOG_INFO);
                log_error("configuration error: %s", r == -ENOMEM ? "out of memory" : cerr.message);
                return EX_USAGE;
        }
        log_setup("cloudtaser-wrapper", cfg.env.log_format, cfg.env.log_level);
        if (s.sigfd < 0)
                return log_error_errno(errno, "signalfd failed: %m"), EX_SOFTWARE;

        (void) atexit(secmem_wipe_all);
        r = secmem_harden_process();
        if (r < 0)
                log_warning_errno(r,
                                  "Could not fully harden the process (dumpable/core limit): %m");
        if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                log_warning_errno(errno,
                                  "Could not become a subreaper; orphans will not be reaped: %m");

        r = cfg.env.auth == AUTH_BROKER ? open_broker(&cfg, &broker) : open_vault(&cfg, &vault);
        if (r > 0) {
                config_done(&cfg);
                return r;
        }

        /* Sealed: nothing starts, and the vault is not asked, until the operator's token came.
         * Static: its thread may outlive main() (see _exit() below). */
        static struct unseal *unseal;
        if (cfg.sealed) {
                r = wait_for_unseal(&s, vault, &unseal);
                if (r <= -EXIT_SIGNAL_BASE || (r < 0 && unseal))
                        _exit(-r);
                if (r < 0) {
                        vault_client_free(vault);
                        config_done(&cfg);
                        return -r;
                }
        }

        r = agent_init(&agent, &cfg, vault);
        if (r >= 0 && broker)
                agent_use_broker(&agent, broker);
        if (r >= 0)
                r = agent_fetch_start(&agent);
        if (r < 0) {
                log_error_errno(r, "Could not start the vault agent: %m");
                vault_client_free(vault);
                broker_client_free(broker);
                config_done(&cfg);
                return EX_SOFTWARE;
        }
        /* Before the fork: authenticate, read, map, validate (the agent's thread), while this
         * thread stays on the signalfd. Nothing starts without secrets. */
        r = wait_for_fetch(&s, &secrets);
        if (r <= -EXIT_SIGNAL_BASE)
                /* The agent's thread may be inside a request that never returns: leave now,
                 * without freeing or wiping what it uses (a crash under it would turn 143 into
                 * 139) and without exit handlers; the kernel clears the pages. */
                _exit(-r);
        if (r < 0) {
                unseal = unseal_free(unseal);
                agent_done(&agent);
                vault_client_free(vault);
                broker_client_free(broker);
                config_done(&cfg);
                return -r;
        }

        /* A terminating signal that arrived at the very end of the fetch: do not start at all. */
        int early = startup_signals(s.sigfd);
        if (early) {
                log_notice("received SIG%s before the workload started: exiting",
                           config_signal_name(early));
                unseal = unseal_free(unseal);
                secret_set_done(&secrets);
                agent_done(&agent);
                vault_client_free(vault);
                broker_client_free(broker);
                config_done(&cfg);
                return EXIT_SIGNAL(early);
        }

        r = start_child(&s, &secrets);
        if (r < 0) {
                unseal = unseal_free(unseal);
                secret_set_done(&secrets);
                agent_done(&agent);
                vault_client_free(vault);
                broker_client_free(broker);
                config_done(&cfg);
                return r == -EXIT_NOT_FOUND || r == -EXIT_CANNOT_EXECUTE ? -r : EX_SOFTWARE;
        }
        if (unseal)
                unseal_set_ready(unseal); /* the readinessProbe: unsealed and started */
        if (cfg.env.rotation == ROTATION_NONE)
                secret_set_done(&secrets); /* nothing will need them again */

        s.grace_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s.grace_tfd < 0)
                log_error_errno(errno, "timerfd_create failed, rotation by restart cannot stop "
                                       "the workload with SIGKILL: %m");

        /* From now on a vault call gets a few seconds, not the start-up budget: the agent must
         * notice a dead connection and retry in time for renewals. */
        if (vault)
                (void) vault_client_set_limits(vault, 5000, 8000, 2);
        else
                (void) broker_client_set_limits(broker, 5000, 8000, 2);

        /* Capabilities are per thread: drop them before the agent's thread exists, so that it
         * inherits the reduced set (the seccomp filter covers every thread anyway). */
        harden_supervisor(&s);
        r = agent_run(&agent, cfg.env.rotation != ROTATION_NONE ? &secrets : NULL);
        if (r < 0)
                log_error_errno(r, "Could not start the vault agent, renewal and rotation are "
                                   "off: %m");
        log_protection(&s);

        int code = supervise(&s);
        /* The workload is gone: exit now. The agent's thread is asked to end; if it is inside
         * a vault call, leave without freeing or wiping under it (see agent_stop()). */
        if (agent_stop(&agent, 500) < 0)
                _exit(code);
        unseal = unseal_free(unseal);
        agent_done(&agent);
        if (s.memfd >= 0)
                s.memfd = safe_close(s.memfd);
        vault_client_free(vault);
        broker_client_free(broker);
        config_done(&cfg);
        return code;
}
