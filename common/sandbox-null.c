/* SPDX-License-Identifier: Apache-2.0 */
/* The null sandbox backend: NO_NEW_PRIVS works, a seccomp filter is never installed, and every
 * function says so (see common/sandbox.h). Not part of libcommon.a; linked explicitly instead of
 * sandbox-seccomp.c by builds and tests without libseccomp. */
#include "common/sandbox.h"

#include "common/sandbox-internal.h"

int sandbox_no_new_privs(void) {
        return sandbox_set_no_new_privs();
}

bool sandbox_is_supported(void) {
        return false;
}

int sandbox_apply_supervisor_filter(unsigned flags) {
        if (flags & ~(unsigned) SANDBOX_KILL_ON_VIOLATION)
                return -EINVAL;
        return -EOPNOTSUPP;
}

int sandbox_apply_signer_filter(unsigned flags) {
        return sandbox_apply_supervisor_filter(flags);
}

int sandbox_restrict_files(const char *const *paths, size_t n) {
        if (n && !paths)
                return -EINVAL;
        return sandbox_landlock_read_only(paths, n);
}

int sandbox_report(struct sandbox_report *ret) {
        struct sandbox_report rep = {.backend = "null"};
        int r = sandbox_read_status(&rep);
        if (r < 0)
                return r;
        *ret = rep;
        return 0;
}

int sandbox_program(enum sandbox_profile profile, unsigned flags, struct sock_filter **ret,
                    size_t *ret_len) {
        if ((unsigned) profile > SANDBOX_PROFILE_SIGNER ||
            (flags & ~(unsigned) SANDBOX_KILL_ON_VIOLATION))
                return -EINVAL;
        return -EOPNOTSUPP;
}
