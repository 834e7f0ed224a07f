/* SPDX-License-Identifier: Apache-2.0 */
#include "init/install.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define FILE_MODE 0555

/* Records the failure in err (the caller's) and returns -|error|. */
static int fail(struct install_error *err, enum install_failure f, int error, const char *step,
                const char *path) {
        err->failure = f;
        err->step = step;
        (void) snprintf(err->path, sizeof(err->path), "%s", path);
        return error > 0 ? -error : error < 0 ? error : -EIO;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Hashes exactly `size` bytes of fd from offset 0; a file of another length is -EBADMSG. */
static int hash_fd(int fd, uint64_t size, uint8_t ret[SHA256_DIGEST_SIZE]) {
        struct sha256_ctx c;
        uint8_t buf[64 * 1024];
        uint64_t off = 0;

        sha256_init(&c);
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), (off_t) off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                off += (uint64_t) n;
                if (off > size)
                        return -EBADMSG;
                sha256_update(&c, buf, (size_t) n);
        }
        if (off != size)
                return -EBADMSG;
        sha256_final(&c, ret);
        return 0;
}

/* Reads the whole source (a regular file of 1..max bytes) into a new buffer. */
static int read_source(const char *path, uint64_t max, struct install_error *err,
                       uint8_t **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t got = 0;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fail(err, INSTALL_FAIL_SOURCE, errno, "open the source", path);
        if (fstat(fd, &st) < 0)
                return fail(err, INSTALL_FAIL_SOURCE, errno, "stat the source", path);
        if (!S_ISREG(st.st_mode))
                return fail(err, INSTALL_FAIL_SOURCE, EINVAL, "use the source (not a regular file)",
                            path);
        if (st.st_size <= 0 || (uint64_t) st.st_size > max)
                return fail(err, INSTALL_FAIL_SOURCE, st.st_size <= 0 ? EINVAL : EFBIG,
                            "use the source (empty or over the size limit)", path);
        data = malloc((size_t) st.st_size);
        if (!data)
                return fail(err, INSTALL_FAIL_SOURCE, ENOMEM, "read the source", path);
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, data + got, (size_t) st.st_size - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return fail(err, INSTALL_FAIL_SOURCE, errno, "read the source", path);
                }
                if (n == 0)
                        return fail(err, INSTALL_FAIL_SOURCE, EIO,
                                    "read the source (it shrank while being read)", path);
                got += (size_t) n;
        }
        *ret_size = got;
        *ret_data = TAKE_PTR(data);
        return 0;
}

/*
 * Looks at what is at NAME now. Returns 1 when it is a regular file with the wanted content and
 * mode, 0 when it is absent or a regular file to be replaced, or a refusal.
 */
static int check_existing(int dirfd, const char *name, const struct install_options *o, size_t size,
                          struct install_error *err) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        uint8_t found[SHA256_DIGEST_SIZE];

        /* Looked at without opening first: a device node or FIFO planted under the name is never
         * opened. */
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return fail(err, INSTALL_FAIL_IO, errno, "stat the existing destination",
                            o->destination);
        }
        if (S_ISLNK(st.st_mode))
                return fail(err, INSTALL_FAIL_REFUSED, ELOOP, "the destination is a symlink",
                            o->destination);
        if (!S_ISREG(st.st_mode))
                return fail(err, INSTALL_FAIL_REFUSED, EEXIST,
                            "the destination exists and is not a regular file", o->destination);
        if ((st.st_mode & 07777) != FILE_MODE || (uint64_t) st.st_size != size)
                return 0;
        /* O_NOFOLLOW|O_NONBLOCK: should the name change under us, no symlink is followed and no
         * FIFO blocks; an unreadable file is simply replaced. */
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || hash_fd(fd, size, found) < 0)
                return 0;
        return memcmp(found, o->digest, sizeof(found)) == 0;
}

struct tmpfile {
        int dirfd;
        int fd;
        char name[NAME_MAX + 1];
};

/* Removes the temporary file unless it was renamed (name emptied). */
static void tmpfile_done(struct tmpfile *t) {
        if (t->name[0])
                (void) unlinkat(t->dirfd, t->name, 0);
        t->name[0] = '\0';
        t->fd = safe_close(t->fd);
}

static int tmpfile_create(int dirfd, const char *base, struct tmpfile *t) {
        for (int attempt = 0; attempt < 8; attempt++) {
                uint8_t rnd[6];
                char hex[13];
                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                        return errno > 0 ? -errno : -EIO;
                for (unsigned i = 0; i < sizeof(rnd); i++)
                        (void) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
                int n = snprintf(t->name, sizeof(t->name), ".%s.%s", base, hex);
                if (n < 0 || (size_t) n >= sizeof(t->name)) {
                        t->name[0] = '\0';
                        return -ENAMETOOLONG;
                }
                t->fd = openat(dirfd, t->name,
                               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (t->fd >= 0)
                        return 0;
                int e = errno;
                t->name[0] = '\0';
                if (e != EEXIST)
                        return -e;
        }
        return -EEXIST;
}

int install_file(const struct install_options *o, struct install_error *err,
                 struct install_result *ret) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_close_ int vfd = -EBADF;
        _cleanup_(tmpfile_done) struct tmpfile t = {.dirfd = -EBADF, .fd = -EBADF};
        uint64_t max = o->max_size ? o->max_size : INSTALL_MAX_SIZE_DEFAULT;
        uint8_t found[SHA256_DIGEST_SIZE] = {};
        struct stat st, vst;
        struct statfs sfs;
        size_t size = 0;
        const char *base;
        int r;

        /* DIR/NAME: NAME must be a plain name; DIR defaults to the working directory. */
        if (!o->source || !o->source[0] || !o->destination || !o->destination[0])
                return fail(err, INSTALL_FAIL_USAGE, EINVAL, "parse the paths", "");
        base = strrchr(o->destination, '/');
        dir = base ? strndup(o->destination, (size_t) (base - o->destination)) : strdup(".");
        if (!dir)
                return fail(err, INSTALL_FAIL_USAGE, ENOMEM, "parse the destination",
                            o->destination);
        if (base && !dir[0]) {
                free(dir);
                dir = strdup("/");
                if (!dir)
                        return fail(err, INSTALL_FAIL_USAGE, ENOMEM, "parse the destination",
                                    o->destination);
        }
        base = base ? base + 1 : o->destination;
        if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
            strlen(base) > NAME_MAX - 16)
                return fail(err, INSTALL_FAIL_USAGE, EINVAL,
                            "parse the destination (it must end with a file name)", o->destination);

        /* 1. The directory: not a symlink itself, and in memory. */
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0) {
                int e = errno;
                struct stat lst;
                if (e == ELOOP || (e == ENOTDIR && lstat(dir, &lst) == 0 && S_ISLNK(lst.st_mode)))
                        return fail(err, INSTALL_FAIL_REFUSED, ELOOP,
                                    "the destination directory is a symlink", dir);
                if (e == ENOTDIR)
                        return fail(err, INSTALL_FAIL_REFUSED, ENOTDIR,
                                    "the destination directory is not a directory", dir);
                return fail(err, INSTALL_FAIL_CREATE, e, "open the destination directory", dir);
        }
        if (fstatfs(dirfd, &sfs) < 0)
                return fail(err, INSTALL_FAIL_CREATE, errno, "statfs the destination directory",
                            dir);
        if (!o->allow_any_fs && (unsigned long) sfs.f_type != (unsigned long) TMPFS_MAGIC) {
                r = fail(err, INSTALL_FAIL_REFUSED, EXDEV,
                         "the destination directory is not on a tmpfs", dir);
                err->fs_type = (long) sfs.f_type;
                return r;
        }

        /* 2. The source, checked before anything is written. */
        r = read_source(o->source, max, err, &data, &size);
        if (r < 0)
                return r;
        sha256_buffer(data, size, found);
        if (memcmp(found, o->digest, sizeof(found)) != 0) {
                r = fail(err, INSTALL_FAIL_DIGEST, EBADMSG,
                         "the source is not the wrapper this init was built with", o->source);
                memcpy(err->found, found, sizeof(found));
                return r;
        }

        /* 3. Already there? */
        r = check_existing(dirfd, base, o, size, err);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret = (struct install_result){.already = true, .size = size};
                return 0;
        }

        /* 4. Temporary file, written, synced, made read-only, read back, renamed. */
        uint64_t t0 = now_ns();
        t.dirfd = dirfd;
        r = tmpfile_create(dirfd, base, &t);
        if (r < 0)
                return fail(err, INSTALL_FAIL_CREATE, r, "create a temporary file in", dir);
        r = write_all(t.fd, data, size);
        if (r < 0)
                return fail(err, INSTALL_FAIL_IO, r, "write the temporary file in", dir);
        if (fsync(t.fd) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "fsync the temporary file in", dir);
        if (fchmod(t.fd, FILE_MODE) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "chmod the temporary file in", dir);
        r = hash_fd(t.fd, size, found);
        if (r < 0)
                return fail(err, INSTALL_FAIL_IO, r, "read back the temporary file in", dir);
        if (memcmp(found, o->digest, sizeof(found)) != 0) {
                r = fail(err, INSTALL_FAIL_DIGEST, EBADMSG,
                         "the temporary file read back differs from what was written", dir);
                memcpy(err->found, found, sizeof(found));
                return r;
        }
        if (fstat(t.fd, &st) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "stat the temporary file in", dir);
        if (renameat(dirfd, t.name, dirfd, base) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "rename the temporary file to",
                            o->destination);
        t.name[0] = '\0'; /* renamed: nothing to remove any more */
        if (fsync(dirfd) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "fsync the destination directory", dir);
        uint64_t t1 = now_ns();

        /* 5. The name as others will open it: our inode, read-only, the right bytes. */
        vfd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (vfd < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "open the installed file", o->destination);
        if (fstat(vfd, &vst) < 0)
                return fail(err, INSTALL_FAIL_IO, errno, "stat the installed file", o->destination);
        memset(found, 0, sizeof(found));
        r = hash_fd(vfd, size, found);
        if (vst.st_dev != st.st_dev || vst.st_ino != st.st_ino ||
            (vst.st_mode & 07777) != FILE_MODE || r < 0 ||
            memcmp(found, o->digest, sizeof(found)) != 0) {
                (void) unlinkat(dirfd, base, 0);
                r = fail(err, INSTALL_FAIL_DIGEST, EBADMSG,
                         "the installed file was replaced or altered after the rename (the "
                         "name was removed)",
                         o->destination);
                memcpy(err->found, found, sizeof(found));
                return r;
        }

        *ret = (struct install_result){.size = size, .write_ns = t1 - t0};
        return 0;
}
