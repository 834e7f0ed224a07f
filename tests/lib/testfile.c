/* SPDX-License-Identifier: Apache-2.0 */
/* tests/lib/testfile: see testfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "tests/lib/testfile.h"

int test_write_text(const char *path, const char *text, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t len = strlen(text), off = 0;
        if (fd < 0)
                return negative_errno();
        while (off < len) {
                ssize_t w = write(fd, text + off, len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? negative_errno() : -EIO;
                off += (size_t) w;
        }
        return 0;
}
