/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c: a plain main() that feeds files to a libFuzzer target, so `make check` replays every
 * committed corpus under ASan/UBSan without libFuzzer. Arguments are files or directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

static int replay_file(const char *path, unsigned *count) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size > 16 * 1024 * 1024) {
                close(fd);
                return -EFBIG;
        }
        size_t n = (size_t) st.st_size;
        uint8_t *data = malloc(n ? n : 1);
        if (!data) {
                close(fd);
                return -ENOMEM;
        }
        size_t got = 0;
        while (got < n) {
                ssize_t r = read(fd, data + got, n - got);
                if (r <= 0)
                        break;
                got += (size_t) r;
        }
        close(fd);
        (void) LLVMFuzzerTestOneInput(data, got);
        free(data);
        (*count)++;
        return 0;
}

static int replay(const char *path, unsigned *count) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return replay_file(path, count);
        DIR *d = opendir(path);
        if (!d)
                return -errno;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char p[4096];
                if ((size_t) snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= sizeof p)
                        continue;
                r = replay(p, count);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        for (int i = 1; i < argc; i++) {
                int r = replay(argv[i], &count);
                if (r < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        printf("replayed %u inputs\n", count);
        return count > 0 ? 0 : 1;
}
