/* SPDX-License-Identifier: Apache-2.0 */
/*
 * install: puts a verified copy of a file (the wrapper binary) into a directory, atomically.
 *
 *   1. The destination directory is opened with O_NOFOLLOW|O_DIRECTORY (its last component must
 *      not be a symlink; the components above it belong to the image and the runtime) and, unless
 *      allow_any_fs, must be on a tmpfs (the pod's emptyDir with medium Memory).
 *   2. The source is opened with O_NOFOLLOW, must be a regular file of 1 byte to max_size bytes,
 *      is read whole and must hash to `digest` before anything is written.
 *   3. An existing destination that is a symlink or not a regular file is refused. A regular file
 *      with the same content and mode 0555 is left alone (result.already); anything else is
 *      replaced.
 *   4. A temporary file ".<name>.<random>" in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW|
 *      O_CLOEXEC, mode 0600) gets the bytes; write, fsync, fchmod 0555, and its content is read
 *      back and hashed; then renameat over the name and fsync of the directory.
 *   5. The name is opened again (O_NOFOLLOW): it must be the inode just written, mode 0555, and
 *      hash to `digest`; if not, the name is removed so nothing unverified stays executable.
 * Any failure removes the temporary file. All paths are resolved once; every later step works
 * on the directory's file descriptor.
 *
 * Returns 0 on success (ret filled), or a negative errno with `err` describing the failed step
 * (err is written only on failure). Needs no capability: only write access to the directory.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/sha256.h"

#define INSTALL_MAX_SIZE_DEFAULT (UINT64_C(64) << 20)

struct install_options {
        const char *source;      /* the file to copy */
        const char *destination; /* the name to create: DIR/NAME */
        uint8_t digest[SHA256_DIGEST_SIZE];
        bool allow_any_fs; /* skip the tmpfs check of DIR */
        uint64_t max_size; /* 0 = INSTALL_MAX_SIZE_DEFAULT */
};

struct install_result {
        bool already;      /* an identical file was there; nothing was written */
        uint64_t size;     /* bytes of the file */
        uint64_t write_ns; /* time spent creating, writing, syncing and renaming (0 if already) */
};

enum install_failure {
        INSTALL_FAIL_USAGE = 1, /* bad options (empty name, trailing '/') */
        INSTALL_FAIL_SOURCE,    /* the source cannot be opened, is not a regular file, too big */
        INSTALL_FAIL_REFUSED,   /* destination or its directory is a symlink, not a regular
                                   file / directory, or the directory is not on a tmpfs */
        INSTALL_FAIL_CREATE,    /* the directory cannot be opened or the file not created */
        INSTALL_FAIL_IO,        /* write, fsync, fchmod, rename, read-back failed */
        INSTALL_FAIL_DIGEST,    /* the source or the written copy does not hash to the digest */
};

struct install_error {
        enum install_failure failure;
        const char *step;    /* static text: what was being done, e.g. "fsync the directory" */
        char path[PATH_MAX]; /* the path concerned (source, directory or destination) */
        /* INSTALL_FAIL_REFUSED for a directory not on tmpfs: its filesystem magic */
        long fs_type;
        /* INSTALL_FAIL_DIGEST: the digest found */
        uint8_t found[SHA256_DIGEST_SIZE];
};

int install_file(const struct install_options *o, struct install_error *err,
                 struct install_result *ret);
