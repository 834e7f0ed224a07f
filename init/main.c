/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser-init: the init container's entrypoint. Installs the wrapper binary of its image into
 * the pod's shared in-memory volume, verified against the SHA-256 built into this binary
 * (init/digest.h), atomically and idempotently. See docs/init.md for the interface and exit
 * codes. Needs no capability and runs as any uid: only write access to the volume.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/exit-status.h" /* the statuses of docs/init.md */
#include "common/injection.h"
#include "common/log.h"
#include "common/sha256.h"
#include "init/digest.h"
#include "init/install.h"

#define DEFAULT_SOURCE "/cloudtaser-wrapper"
#define DEFAULT_DESTINATION INJECTION_WRAPPER_PATH /* the pod layout, common/injection.h */

static void usage(FILE *f) {
        fprintf(f,
                "usage: cloudtaser-init [--source PATH] [--dest PATH] [--allow-any-fs]\n"
                "       cloudtaser-init --version | --help\n"
                "Copies the wrapper (default %s) to the shared volume (default %s), verified\n"
                "against the SHA-256 built into this binary. See docs/init.md.\n",
                DEFAULT_SOURCE, DEFAULT_DESTINATION);
}

static int exit_code(enum install_failure f) {
        switch (f) {
        case INSTALL_FAIL_USAGE:
                return EX_USAGE;
        case INSTALL_FAIL_SOURCE:
                return EX_NOINPUT;
        case INSTALL_FAIL_REFUSED:
                return EX_NOPERM;
        case INSTALL_FAIL_CREATE:
                return EX_CANTCREAT;
        case INSTALL_FAIL_IO:
                return EX_IOERR;
        case INSTALL_FAIL_DIGEST:
                return EX_DATAERR;
        }
        return EX_SOFTWARE;
}

static double ms_since(const struct timespec *t0) {
        struct timespec t1;
        (void) clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double) (t1.tv_sec - t0->tv_sec) * 1e3 + (double) (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"source", required_argument, NULL, 's'},
                {"dest", required_argument, NULL, 'd'},
                {"destination", required_argument, NULL, 'd'},
                {"allow-any-fs", no_argument, NULL, 'A'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct install_options o = {.source = DEFAULT_SOURCE, .destination = DEFAULT_DESTINATION};
        struct install_result res;
        struct install_error err = {};
        enum log_format format = LOG_FORMAT_TEXT;
        char want_hex[SHA256_HEX_SIZE], found_hex[SHA256_HEX_SIZE];
        struct timespec t0;
        int c, r;

        (void) clock_gettime(CLOCK_MONOTONIC, &t0);
        (void) log_format_from_string(getenv("CLOUDTASER_LOG_FORMAT"), &format);
        log_setup("cloudtaser-init", format, LOG_INFO);

        opterr = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        o.source = optarg;
                        break;
                case 'd':
                        o.destination = optarg;
                        break;
                case 'A':
                        o.allow_any_fs = true;
                        break;
                case 'V':
                        printf("cloudtaser-init %s wrapper-sha256=%s\n", CLOUDTASER_VERSION,
                               init_wrapper_sha256);
                        return EX_OK;
                case 'h':
                        usage(stdout);
                        return EX_OK;
                default:
                        log_error("usage error: unknown option or missing argument: %s",
                                  argv[optind - 1 > 0 ? optind - 1 : 0]);
                        usage(stderr);
                        return EX_USAGE;
                }
        }
        if (optind < argc) {
                log_error("usage error: unexpected argument '%s'", argv[optind]);
                usage(stderr);
                return EX_USAGE;
        }
        if (sha256_from_hex(init_wrapper_sha256, o.digest) < 0) {
                log_error("internal error: the built-in wrapper digest is malformed");
                return EX_SOFTWARE;
        }
        sha256_to_hex(o.digest, want_hex);

        r = install_file(&o, &err, &res);
        if (r < 0) {
                if (err.failure == INSTALL_FAIL_DIGEST) {
                        sha256_to_hex(err.found, found_hex);
                        log_error("'%s': %s (found sha256 %s, expected %s)", err.path, err.step,
                                  found_hex, want_hex);
                } else if (err.failure == INSTALL_FAIL_REFUSED && r == -EXDEV)
                        log_error("Refusing '%s': %s (filesystem type 0x%lx); the destination "
                                  "must be the pod's in-memory emptyDir (--allow-any-fs "
                                  "overrides)",
                                  err.path, err.step, (unsigned long) err.fs_type);
                else if (err.failure == INSTALL_FAIL_REFUSED)
                        log_error("Refusing '%s': %s", err.path, err.step);
                else
                        log_error_errno(r, "Failed to %s '%s': %m", err.step, err.path);
                return exit_code(err.failure);
        }
        if (res.already)
                log_info("%s is already installed (identical, mode 0555, sha256 %s): nothing "
                         "written (%.3f ms)",
                         o.destination, want_hex, ms_since(&t0));
        else
                log_info("installed %s from %s: %llu bytes, sha256 %s verified, copy %.3f ms, "
                         "total %.3f ms",
                         o.destination, o.source, (unsigned long long) res.size, want_hex,
                         (double) res.write_ns / 1e6, ms_since(&t0));
        return EX_OK;
}
