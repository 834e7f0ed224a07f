/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-gen: run at build time, never shipped. Writes the seccomp programs of
 * common/sandbox-rules.h, made by libseccomp (common/sandbox-build.c), as a C table for
 * common/sandbox-seccomp.c: one program per profile (supervisor, signer) and default action
 * (EPERM, kill). It is compiled with the compiler and flags of the build the table is for, so
 * the rules' #ifdefs and the native architecture are that build's.
 *
 * The signer's program compares with its own pid, known only when it runs: the program is made
 * twice with two different stand-in pids, and the instructions where the two differ (only in
 * their constant) are listed for the loader to patch with getpid().
 *
 * Usage: sandbox-gen OUTPUT.h. Exit status 0, or 1 with nothing written.
 */
#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/sandbox-build.h"

#define PID_A 0x1234567u
#define PID_B 0x2345678u

static const char *const profile_names[] = {"supervisor", "signer"};
static const char *const action_names[] = {"eperm", "kill"};

static int emit(FILE *f, enum sandbox_profile p, bool kill) {
        _cleanup_free_ struct sock_filter *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        unsigned rules = 0, rules_b = 0;
        int r = sandbox_build_program(p, kill, PID_A, &a, &na, &rules);
        if (r >= 0)
                r = sandbox_build_program(p, kill, PID_B, &b, &nb, &rules_b);
        if (r < 0)
                return r;
        if (na != nb || rules != rules_b)
                return -EPROTO;
        const char *name = profile_names[p], *act = action_names[kill];
        size_t n_pid = 0;
        (void) fprintf(f, "static const struct sock_filter sandbox_gen_%s_%s[%zu] = {\n", name, act,
                       na);
        for (size_t i = 0; i < na; i++) {
                bool pid_here = a[i].k == PID_A && b[i].k == PID_B;
                if (a[i].code != b[i].code || a[i].jt != b[i].jt || a[i].jf != b[i].jf ||
                    (a[i].k != b[i].k && !pid_here))
                        return -EPROTO;
                n_pid += pid_here;
                (void) fprintf(f, "        {0x%04x, %u, %u, 0x%08x},\n", a[i].code, a[i].jt,
                               a[i].jf, pid_here ? 0u : a[i].k);
        }
        (void) fprintf(f, "};\nstatic const uint16_t sandbox_gen_%s_%s_pid[%zu] = {", name, act,
                       n_pid + 1);
        for (size_t i = 0; i < na; i++)
                if (a[i].k == PID_A && b[i].k == PID_B)
                        (void) fprintf(f, "%zu, ", i);
        /* The last entry is never an index: arrays of size 0 are not C. */
        (void) fprintf(f, "UINT16_MAX};\n#define SANDBOX_GEN_%s_%s_RULES %uu\n\n",
                       p == SANDBOX_PROFILE_SUPERVISOR ? "SUPERVISOR" : "SIGNER",
                       kill ? "KILL" : "EPERM", rules);
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 2)
                return 2;
        size_t len = strlen(argv[1]);
        _cleanup_free_ char *tmp = malloc(len + 5);
        if (!tmp)
                return 1;
        memcpy(tmp, argv[1], len);
        memcpy(tmp + len, ".tmp", 5);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return 1;
        (void) fprintf(f, "/* Generated at build time by common/sandbox-gen.c from "
                          "common/sandbox-rules.h with libseccomp: do not edit. */\n\n");
        int r = 0;
        for (int p = SANDBOX_PROFILE_SUPERVISOR; r >= 0 && p <= SANDBOX_PROFILE_SIGNER; p++)
                for (int k = 0; r >= 0 && k <= 1; k++)
                        r = emit(f, (enum sandbox_profile) p, k);
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r < 0 || rename(tmp, argv[1]) < 0) {
                (void) unlink(tmp);
                return 1;
        }
        return 0;
}
