/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testfile: small file helpers for the C tests.
 *
 * test_write_text(): writes the NUL-terminated text to path (created or truncated, mode for a new
 * file, O_CLOEXEC), the whole of it or -EIO; 0 or -errno.
 */
#pragma once

#include <sys/types.h>

int test_write_text(const char *path, const char *text, mode_t mode);
