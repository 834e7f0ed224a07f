/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-registry: drives operator/registry end to end, for the tests. Looks up each IMAGE in turn
 * with one client (so the second lookup of an image shows the cache), and prints one JSON line
 * per image:
 *
 *   {"image":"...","entrypoint":[...],"cmd":[...],"digest":"sha256:...","ms":12}
 *   {"image":"...","error":"<the one-line error the webhook would give>","ms":1500}
 *
 * then {"stats":{"lookups":N,"cache_hits":N,"errors":N}}.
 *
 *   ct-registry [--ca FILE] [--config DOCKERCONFIGJSON-FILE]... [--timeout MS] [--ttl S]
 *               [--insecure HOST[:PORT]]... [--platform OS/ARCH[/VARIANT]] IMAGE...
 *               [--platform ...] IMAGE...
 *
 * --insecure names a registry that may fall back to plain HTTP (registry_options.insecure).
 *
 * --platform applies to the images after it (default linux/amd64). --advance S moves the
 * client's clock (the hooks: cache TTLs, cloud credential expiry) S seconds forward for the
 * images after it. The cloud providers' variables come from the environment (registry.h). Exit
 * status 0 when every lookup succeeded, 1 when one failed, 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/registry.h"

#define MAX_CONFIGS 8

static int read_secure(const char *path, struct buf *out) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char chunk[4096];
        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                int r = buf_append(out, chunk, (size_t) n);
                explicit_bzero(chunk, sizeof(chunk));
                if (r < 0)
                        return r;
        }
        return 0;
}

static uint64_t clock_offset_usec;

static uint64_t hook_now_usec(void *userdata) {
        struct timespec ts;
        (void) userdata;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u + clock_offset_usec;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int print_strv(struct buf *o, const char *name, char **v) {
        int r = buf_printf(o, ",\"%s\":[", name);
        for (size_t i = 0; r >= 0 && v && v[i]; i++) {
                if (i)
                        r = buf_append_byte(o, ',');
                if (r >= 0)
                        r = json_append_quoted(o, v[i]);
        }
        return r < 0 ? r : buf_append_byte(o, ']');
}

static void usage(void) {
        fprintf(stderr,
                "usage: ct-registry [--ca FILE] [--config FILE]... [--timeout MS] [--ttl S] "
                "[--insecure HOST[:PORT]]... [--platform OS/ARCH] [--advance S] IMAGE...\n");
}

int main(int argc, char **argv) {
        struct buf configs[MAX_CONFIGS];
        const char *config_ptrs[MAX_CONFIGS];
        const char *insecure[REGISTRY_MAX_INSECURE];
        size_t n_configs = 0;
        struct registry_options o = {};
        struct registry_client *rc = NULL;
        char os[32] = "linux", arch[48] = "amd64";
        bool failed = false, any = false;
        int i, r;

        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("ct-registry %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        (void) atexit(secmem_wipe_all);
        /* options first pass: everything but the images and --platform */
        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--ca") == 0 && i + 1 < argc)
                        o.ca_file = argv[++i];
                else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
                        if (n_configs >= MAX_CONFIGS) {
                                usage();
                                return 2;
                        }
                        configs[n_configs] = BUF_INIT(1024 * 1024, BUF_SECURE);
                        r = read_secure(argv[++i], &configs[n_configs]);
                        if (r < 0) {
                                fprintf(stderr, "ct-registry: cannot read %s: %s\n", argv[i],
                                        strerror(-r));
                                return 2;
                        }
                        config_ptrs[n_configs] = buf_cstr(&configs[n_configs]);
                        n_configs++;
                } else if ((strcmp(a, "--timeout") == 0 || strcmp(a, "--ttl") == 0) &&
                           i + 1 < argc) {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(argv[++i], &end, 10);
                        if (errno || *end || v == 0 || v > 3600000) {
                                usage();
                                return 2;
                        }
                        if (a[2] == 't' && a[3] == 'i')
                                o.timeout_ms = (unsigned) v;
                        else
                                o.tag_ttl_s = (unsigned) v;
                } else if (strcmp(a, "--insecure") == 0 && i + 1 < argc) {
                        if (o.n_insecure >= REGISTRY_MAX_INSECURE) {
                                usage();
                                return 2;
                        }
                        insecure[o.n_insecure++] = argv[++i];
                        o.insecure = insecure;
                } else if ((strcmp(a, "--platform") == 0 || strcmp(a, "--advance") == 0) &&
                           i + 1 < argc)
                        i++;
                else if (a[0] == '-') {
                        usage();
                        return 2;
                }
        }

        o.hooks.now_usec = hook_now_usec;
        r = registry_client_new(&o, &rc);
        if (r < 0) {
                fprintf(stderr, "ct-registry: cannot create the client: %s\n", strerror(-r));
                return 2;
        }
        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--ca") == 0 || strcmp(a, "--config") == 0 ||
                    strcmp(a, "--timeout") == 0 || strcmp(a, "--ttl") == 0 ||
                    strcmp(a, "--insecure") == 0) {
                        i++;
                        continue;
                }
                if (strcmp(a, "--advance") == 0) {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(argv[++i], &end, 10);
                        if (errno || *end || v > 86400u * 366) {
                                usage();
                                registry_client_free(rc);
                                return 2;
                        }
                        clock_offset_usec += (uint64_t) v * 1000000u;
                        continue;
                }
                if (strcmp(a, "--platform") == 0) {
                        const char *p = argv[++i], *slash = strchr(p, '/');
                        if (!slash || (size_t) (slash - p) >= sizeof(os) ||
                            strlen(slash + 1) >= sizeof(arch)) {
                                usage();
                                registry_client_free(rc);
                                return 2;
                        }
                        (void) snprintf(os, sizeof(os), "%.*s", (int) (slash - p), p);
                        (void) snprintf(arch, sizeof(arch), "%s", slash + 1);
                        continue;
                }
                struct registry_image_config c = {};
                struct buf out = BUF_INIT(1024 * 1024, 0);
                char err[1024];
                uint64_t t0 = now_ms();
                any = true;
                r = registry_lookup(rc, a, os, arch, config_ptrs, n_configs, &c, err, sizeof(err));
                uint64_t ms = now_ms() - t0;
                int q = buf_append_str(&out, "{\"image\":");
                if (q >= 0)
                        q = json_append_quoted(&out, a);
                if (r < 0) {
                        failed = true;
                        if (q >= 0)
                                q = buf_append_str(&out, ",\"error\":");
                        if (q >= 0)
                                q = json_append_quoted(&out, err);
                } else {
                        if (q >= 0)
                                q = print_strv(&out, "entrypoint", c.entrypoint);
                        if (q >= 0)
                                q = print_strv(&out, "cmd", c.cmd);
                        if (q >= 0)
                                q = buf_printf(&out, ",\"digest\":\"%s\"", c.digest);
                }
                if (q >= 0)
                        q = buf_printf(&out, ",\"ms\":%" PRIu64 "}", ms);
                if (q >= 0)
                        printf("%s\n", buf_cstr(&out));
                else
                        failed = true;
                buf_done(&out);
                registry_image_config_done(&c);
        }
        struct registry_stats st;
        registry_get_stats(rc, &st);
        /* cloud_credentials only when there were some: the other tests compare the line. */
        printf("{\"stats\":{\"lookups\":%" PRIu64 ",\"cache_hits\":%" PRIu64 ",\"errors\":%" PRIu64,
               st.lookups, st.cache_hits, st.errors);
        if (st.cloud_credentials)
                printf(",\"cloud_credentials\":%" PRIu64, st.cloud_credentials);
        printf("}}\n");
        registry_client_free(rc);
        for (size_t k = 0; k < n_configs; k++)
                buf_done(&configs[k]);
        if (!any) {
                usage();
                return 2;
        }
        return failed ? 1 : 0;
}
