/* SPDX-License-Identifier: Apache-2.0 */
/* The rules of common/sandbox-rules.h made into seccomp programs with libseccomp (see
 * common/sandbox-build.h). */
#include "common/sandbox-build.h"

#include <errno.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sandbox-rules.h"

#define PROGRAM_MAX (4096 * sizeof(struct sock_filter)) /* BPF_MAXINSNS */

static void seccomp_releasep(scmp_filter_ctx *p) {
        if (*p)
                seccomp_release(*p);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)

static int add(scmp_filter_ctx ctx, const struct sandbox_rule *rule, uint32_t own_pid,
               unsigned *count) {
        int nr = seccomp_syscall_resolve_name(rule->name);
        if (nr == __NR_SCMP_ERROR)
                return -EINVAL;
        if (nr < 0)
                return 0; /* not on this architecture */
        struct scmp_arg_cmp args[ELEMENTSOF(rule->args)] = {};
        for (unsigned i = 0; i < rule->n_args && i < ELEMENTSOF(args); i++) {
                const struct sandbox_cmp *c = &rule->args[i];
                uint64_t v = c->value == SANDBOX_OWN_PID ? own_pid : c->value;
                if (c->op == SANDBOX_CMP_EQ)
                        args[i] = (struct scmp_arg_cmp){
                                .arg = c->arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
                else
                        args[i] = (struct scmp_arg_cmp){.arg = c->arg,
                                                        .op = SCMP_CMP_MASKED_EQ,
                                                        .datum_a = c->mask,
                                                        .datum_b = v};
        }
        uint32_t action =
                rule->action == SANDBOX_RULE_ENOSYS ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW;
        int r = seccomp_rule_add_array(ctx, action, nr, MIN(rule->n_args, 2u), args);
        if (r < 0)
                return r;
        (*count)++;
        return 0;
}

int sandbox_build_program(enum sandbox_profile profile, bool kill, uint32_t own_pid,
                          struct sock_filter **ret, size_t *ret_len, unsigned *ret_rules) {
        const struct sandbox_rule *rules; /* the profile's own, after the base */
        size_t n_rules;
        unsigned count = 0;
        int r;

        if (profile == SANDBOX_PROFILE_SUPERVISOR) {
                rules = sandbox_supervisor_rules;
                n_rules = ELEMENTSOF(sandbox_supervisor_rules);
        } else if (profile == SANDBOX_PROFILE_SIGNER) {
                rules = sandbox_signer_rules;
                n_rules = ELEMENTSOF(sandbox_signer_rules);
        } else
                return -EINVAL;

        uint32_t deny = kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO(EPERM);
        _cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(deny);
        if (!ctx)
                return -ENOMEM;
        /* The attributes that shape the program: a foreign ABI gets the deny action. (NNP and
         * TSYNC are how the program is loaded, common/sandbox-seccomp.c does that.) */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(sandbox_base_rules) + n_rules; i++) {
                size_t nb = ELEMENTSOF(sandbox_base_rules);
                r = add(ctx, i < nb ? &sandbox_base_rules[i] : &rules[i - nb], own_pid, &count);
                if (r < 0)
                        return r;
        }

        /* seccomp_export_bpf() writes to a descriptor: a memfd, read back whole. */
        _cleanup_close_ int fd = memfd_create("sandbox-bpf", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0)
                return negative_errno();
        if (size == 0 || (size_t) size > PROGRAM_MAX || size % sizeof(struct sock_filter) != 0)
                return -EBADMSG;
        _cleanup_free_ struct sock_filter *prog = malloc((size_t) size);
        if (!prog)
                return -ENOMEM;
        ssize_t n = pread(fd, prog, (size_t) size, 0);
        if (n != size)
                return n < 0 ? negative_errno() : -EIO;
        *ret = TAKE_PTR(prog);
        *ret_len = (size_t) size / sizeof(struct sock_filter);
        *ret_rules = count;
        return 0;
}
