/* SPDX-License-Identifier: Apache-2.0 */
/* The seccomp sandbox backend. The allow-lists are common/sandbox-rules.h; the contract and the
 * reasons for each group are in common/sandbox.h and docs/sandbox.md. The programs were made at
 * build time by libseccomp (common/sandbox-gen.c writes them into sandbox-filters.h, a table in
 * the build directory): this file only loads them, so no binary contains libseccomp. */
#include "common/sandbox.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>

#include "common/sandbox-internal.h"
/* Generated: sandbox_gen_<profile>_<eperm|kill>[], their pid slots and rule counts. */
#include "sandbox-filters.h"

static unsigned installed_rules;
static bool installed_kill;

int sandbox_no_new_privs(void) {
        return sandbox_set_no_new_privs();
}

bool sandbox_is_supported(void) {
        /* With filter support the kernel rejects the NULL program with EFAULT; without it, the
         * mode itself is EINVAL. The same through seccomp(2) with TSYNC (Linux 3.17, what
         * libseccomp's API level 2 stood for). Nothing is installed either way. */
        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
                return false;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) >= 0 || errno != EFAULT)
                return false;
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, NULL) < 0 &&
               errno == EFAULT;
}

struct program {
        const struct sock_filter *insns;
        size_t len;
        const uint16_t *pid_at; /* instructions whose constant is our pid; UINT16_MAX ends it */
        unsigned rules;
};

#define PROGRAM(name, act, n_rules)                                            \
        {                                                                      \
                .insns = sandbox_gen_##name##_##act,                           \
                .len = ELEMENTSOF(sandbox_gen_##name##_##act),                 \
                .pid_at = sandbox_gen_##name##_##act##_pid, .rules = (n_rules) \
        }

/* [profile][0: EPERM, 1: SANDBOX_KILL_ON_VIOLATION] */
static const struct program programs[2][2] = {
        [SANDBOX_PROFILE_SUPERVISOR] = {PROGRAM(supervisor, eperm,
                                                SANDBOX_GEN_SUPERVISOR_EPERM_RULES),
                                        PROGRAM(supervisor, kill,
                                                SANDBOX_GEN_SUPERVISOR_KILL_RULES)},
        [SANDBOX_PROFILE_SIGNER] = {PROGRAM(signer, eperm, SANDBOX_GEN_SIGNER_EPERM_RULES),
                                    PROGRAM(signer, kill, SANDBOX_GEN_SIGNER_KILL_RULES)},
};

/* A copy of the program for this process: the signer's own pid filled in. */
static int program_for(enum sandbox_profile profile, unsigned flags, struct sock_filter **ret,
                       const struct program **ret_p) {
        if ((unsigned) profile >= ELEMENTSOF(programs) ||
            (flags & ~(unsigned) SANDBOX_KILL_ON_VIOLATION))
                return -EINVAL;
        const struct program *p = &programs[profile][!!(flags & SANDBOX_KILL_ON_VIOLATION)];
        struct sock_filter *copy = malloc(p->len * sizeof(*copy));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, p->insns, p->len * sizeof(*copy));
        for (const uint16_t *at = p->pid_at; *at != UINT16_MAX; at++)
                copy[*at].k = (uint32_t) getpid();
        *ret = copy;
        *ret_p = p;
        return 0;
}

int sandbox_program(enum sandbox_profile profile, unsigned flags, struct sock_filter **ret,
                    size_t *ret_len) {
        const struct program *p;
        int r = program_for(profile, flags, ret, &p);
        if (r < 0)
                return r;
        *ret_len = p->len;
        return 0;
}

static int apply(unsigned flags, enum sandbox_profile profile) {
        int r;

        if (flags & ~(unsigned) SANDBOX_KILL_ON_VIOLATION)
                return -EINVAL;
        r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
        if (r < 0)
                return negative_errno();
        if (r != 1)
                return -EACCES;
        if (!sandbox_is_supported())
                return -EOPNOTSUPP;

        _cleanup_free_ struct sock_filter *insns = NULL;
        const struct program *p;
        r = program_for(profile, flags, &insns, &p);
        if (r < 0)
                return r;
        /* NO_NEW_PRIVS is the caller's explicit step (sandbox_no_new_privs()), not a side effect
         * of loading; TSYNC puts every thread under the filter. A thread the kernel cannot
         * synchronise makes it answer with that thread's id, and nothing is installed: -ESRCH,
         * as libseccomp said. */
        struct sock_fprog prog = {.len = (unsigned short) p->len, .filter = insns};
        long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
        if (rc < 0)
                return negative_errno();
        if (rc > 0)
                return -ESRCH;
        installed_rules = p->rules;
        installed_kill = flags & SANDBOX_KILL_ON_VIOLATION;
        return 0;
}

int sandbox_apply_supervisor_filter(unsigned flags) {
        return apply(flags, SANDBOX_PROFILE_SUPERVISOR);
}

int sandbox_apply_signer_filter(unsigned flags) {
        return apply(flags, SANDBOX_PROFILE_SIGNER);
}

int sandbox_restrict_files(const char *const *paths, size_t n) {
        if (n && !paths)
                return -EINVAL;
        return sandbox_landlock_read_only(paths, n);
}

int sandbox_report(struct sandbox_report *ret) {
        struct sandbox_report rep = {
                .backend = "seccomp",
                .rules = installed_rules,
                .kill_on_violation = installed_kill,
        };
        int r = sandbox_read_status(&rep);
        if (r < 0)
                return r;
        *ret = rep;
        return 0;
}
