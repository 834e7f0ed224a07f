/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/child: builds what the workload gets and starts it.
 *
 * The environment block (pointer array and strings) is built in secmem: the wrapper's original
 * environment minus every CLOUDTASER_* and VAULT_* variable, plus the secrets (env delivery), plus
 * CLOUDTASER_SECRET_FD=<n> (memfd delivery). It is released (wiped) by the caller right after
 * child_spawn() returned, which is after the child's execve() succeeded: posix_spawn() in musl and
 * glibc runs the child with clone(CLONE_VM|CLONE_VFORK) and reports an execve failure back through
 * a close-on-exec pipe, so its return means "exec done or failed". Because the child shares the
 * parent's memory until execve, the secmem pages (MADV_DONTFORK) are readable by it and never
 * copied into a forked address space.
 *
 * The memfd (memfd delivery) starts with a 64-byte header: CHILD_MEMFD_MAGIC (8 bytes), the
 * generation (uint64, native byte order, at offset 8; even when consistent, odd while rewritten)
 * and the length of the records in use (uint64 at offset 16), then the same NAME=VALUE\0 records
 * from offset CHILD_MEMFD_HEADER, then zeros. The generation is a seqlock: a reader copies the
 * records between two loads of an even generation and copies again when they differ (the
 * protocol, with reader code, is in docs/wrapper.md). It is a memfd_secret(2) file when the kernel
 * has it (read it with mmap(2): read(2) is not supported there; such a file can be sized once only,
 * so with rotation by signal it is created with room to grow and zero-padded), else a memfd sealed
 * against shrinking and growing (and writing, unless rotation by signal will rewrite it).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "wrapper/config.h"
#include "wrapper/secrets.h"

#define CHILD_MEMFD_MAGIC "CTSECv1\0"
#define CHILD_MEMFD_HEADER 64u

struct child_env {
        char **envp; /* secmem: pointers then strings */
        size_t n;
};

/* memfd with the records; *ret_secret tells whether it is a memfd_secret file. The fd is
 * close-on-exec; child_spawn() hands it to the child under the same number. */
int child_memfd_create(const struct secret_set *s, bool writable, int *ret_fd, bool *ret_secret);
/* Publishes new records in an existing memfd (rotation by signal): one generation later, never
 * seen half written by a reader that follows the protocol. */
int child_memfd_update(int fd, bool is_secret, const struct secret_set *s);

int child_env_build(char *const *environ_, const struct secret_set *s, bool with_secrets, int memfd,
                    struct child_env *ret);
void child_env_done(struct child_env *e);

/* Starts argv[0] (looked up in PATH when it has no '/') with envp, default signal dispositions
 * and an empty signal mask, and memfd (>= 0) inherited under its own number, as the leader of a
 * new process group (pgid = pid; it becomes the terminal's foreground group when the wrapper had
 * a terminal on stdin in the foreground). Returns the pid, or
 * -errno of the failed execve (-ENOENT: exit 127; -EACCES/-ENOEXEC...: exit 126). */
pid_t child_spawn(char *const *argv, const struct child_env *env, int memfd);
