/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-build.h: the seccomp programs of common/sandbox-rules.h made with libseccomp. Not a
 * public header: used by the build-time generator (common/sandbox-gen.c) and by test-sandbox
 * (which checks the generated table against it). No program links it: the programs load the
 * generated table (common/sandbox-seccomp.c), so libseccomp is in no binary.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sandbox.h"

struct sock_filter;

/*
 * The program of a profile for the native architecture, as libseccomp's seccomp_export_bpf()
 * writes it: default action EPERM, or SIGSYS for the whole process when kill is true (foreign
 * ABIs get the same); the signer's own pid is own_pid. *ret is malloc'ed (free()), *ret_len its
 * instructions, *ret_rules the rules added (names the architecture lacks are skipped). 0, or
 * -EINVAL (a name libseccomp does not know), -ENOMEM, -errno of libseccomp.
 */
int sandbox_build_program(enum sandbox_profile profile, bool kill, uint32_t own_pid,
                          struct sock_filter **ret, size_t *ret_len, unsigned *ret_rules);
