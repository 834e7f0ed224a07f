/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-credstore: drives operator/vaultsession and operator/credstore from the command line, for
 * the end-to-end tests on the real servers (tests/e2e/test-real-credstore.sh).
 *
 *   ct-credstore [--backend vault|kubernetes] [--wait SECONDS] [--backoff-max MS]
 *                [--vault-addr URL] [--vault-ca FILE] [--jwt FILE] [--role ROLE]
 *                [--auth-mount MOUNT] [--vault-namespace NS] [--vault-peers URLS]
 *                [--kv-mount MOUNT] [--prefix P]
 *                [--kube-namespace NS] COMMAND [ARGS]
 *
 *   ready                  log in (retrying, one log line per failed attempt) and print "ready"
 *   read RECORD            print "version V" and one "field NAME sha256=HEX len=N" per field
 *   create RECORD          fields from stdin ("NAME=VALUE" lines); print "created version V",
 *                          or "exists" and then what `read` prints of the winner's record
 *   update RECORD VERSION  fields from stdin; print "updated version V" or "stale"
 *   event KIND NAME        the WeakenedSecurityModel Event about KIND (Pod | Deployment) NAME
 *
 * Defaults: the backend from $CLOUDTASER_SECRET_BACKEND, else vault; VAULT_ADDR, VAULT_CACERT;
 * the Kubernetes client from $KUBECONFIG; --wait 30. Values are read from stdin, never from
 * argv, and never printed: only their SHA-256 and length. Versions print as the KV version
 * (vault) or the Secret's resourceVersion (kubernetes). Exit status: 0 done, 1 failed, 2 bad
 * usage, 3 exists (create), 4 stale (update), 5 not ready within --wait.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "operator/credstore.h"

struct args {
        const char *backend, *vault_addr, *vault_ca, *jwt, *role, *auth_mount, *vault_ns;
        const char *kv_mount, *prefix, *kube_ns, *peers;
        unsigned wait_s, backoff_max_ms;
};

static int usage(void) {
        fprintf(stderr, "usage: ct-credstore [options] ready | read RECORD | create RECORD | "
                        "update RECORD VERSION | event KIND NAME (see the source)\n");
        return 2;
}

static void print_version(const char *what, const struct credstore_version *v) {
        if (v->rv[0])
                printf("%s%s\n", what, v->rv);
        else
                printf("%s%" PRId64 "\n", what, v->kv);
}

static void print_record(const struct credstore_record *r) {
        print_version("version ", &r->version);
        for (size_t i = 0; i < r->n_fields; i++) {
                uint8_t d[SHA256_DIGEST_SIZE];
                char hex[SHA256_HEX_SIZE];
                sha256_buffer(r->fields[i].value, r->fields[i].value_len, d);
                sha256_to_hex(d, hex);
                printf("field %s sha256=%s len=%zu\n", r->fields[i].name, hex,
                       r->fields[i].value_len);
        }
}

static int fail(const char *op, const char *record, const struct credstore_error *e) {
        log_error("%s of record '%s' failed at %s: %s (status %ld, %s)", op, record,
                  e->path[0] ? e->path : "-", e->message, e->status, e->reason);
        return e->error == -EEXIST ? 3 : e->error == -ESTALE ? 4 : 1;
}

/* "NAME=VALUE" lines from stdin into one secure buffer; fields point into it. */
static int read_fields(struct buf *in, struct credstore_field *f, size_t *n) {
        char chunk[4096];
        for (;;) {
                ssize_t k = read(0, chunk, sizeof(chunk));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                int r = buf_append(in, chunk, (size_t) k);
                explicit_bzero(chunk, sizeof(chunk));
                if (r < 0)
                        return r;
        }
        *n = 0;
        for (char *p = in->data, *end = in->data + in->len; p && p < end;) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                char *eol = nl ? nl : end;
                char *eq = memchr(p, '=', (size_t) (eol - p));
                if (eol > p) {
                        if (!eq || *n >= CREDSTORE_MAX_FIELDS)
                                return -EINVAL;
                        *eq = '\0';
                        *eol = '\0';
                        f[*n] = (struct credstore_field){
                                .name = p, .value = eq + 1, .value_len = (size_t) (eol - eq - 1)};
                        (*n)++;
                }
                p = eol + 1;
        }
        return *n > 0 ? 0 : -EINVAL;
}

int main(int argc, char **argv) {
        struct args a = {.wait_s = 30};
        int i = 1;

        log_setup("ct-credstore", LOG_FORMAT_TEXT, LOG_INFO);
        (void) atexit(secmem_wipe_all);
        a.backend = getenv("CLOUDTASER_SECRET_BACKEND");
        a.vault_addr = getenv("VAULT_ADDR");
        a.vault_ca = getenv("VAULT_CACERT");
        for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
                const char *o = argv[i], *v = argv[i + 1];
                char *end = NULL;
                if (strcmp(o, "--backend") == 0)
                        a.backend = v;
                else if (strcmp(o, "--vault-addr") == 0)
                        a.vault_addr = v;
                else if (strcmp(o, "--vault-ca") == 0)
                        a.vault_ca = v;
                else if (strcmp(o, "--jwt") == 0)
                        a.jwt = v;
                else if (strcmp(o, "--role") == 0)
                        a.role = v;
                else if (strcmp(o, "--auth-mount") == 0)
                        a.auth_mount = v;
                else if (strcmp(o, "--vault-namespace") == 0)
                        a.vault_ns = v;
                else if (strcmp(o, "--vault-peers") == 0)
                        a.peers = v;
                else if (strcmp(o, "--kv-mount") == 0)
                        a.kv_mount = v;
                else if (strcmp(o, "--prefix") == 0)
                        a.prefix = v;
                else if (strcmp(o, "--kube-namespace") == 0)
                        a.kube_ns = v;
                else if (strcmp(o, "--wait") == 0 || strcmp(o, "--backoff-max") == 0) {
                        errno = 0;
                        unsigned long x = strtoul(v, &end, 10);
                        if (errno || !end || *end || x > 3600000)
                                return usage();
                        if (o[2] == 'w')
                                a.wait_s = (unsigned) x;
                        else
                                a.backoff_max_ms = (unsigned) x;
                } else
                        return usage();
        }
        if (i >= argc)
                return usage();
        const char *cmd = argv[i++];
        enum credstore_backend backend = CREDSTORE_VAULT;
        if (a.backend && *a.backend && credstore_backend_from_string(a.backend, &backend) < 0)
                return usage();

        _cleanup_vaultsession_ struct vaultsession *session = NULL;
        struct kube_client *kube = NULL;
        struct credstore_options so = {.backend = backend};
        int r;
        if (backend == CREDSTORE_VAULT) {
                char probe[VAULT_PATH_MAX];
                (void) snprintf(probe, sizeof(probe), "%s/%s",
                                a.kv_mount ? a.kv_mount : CREDSTORE_DEFAULT_MOUNT,
                                a.prefix ? a.prefix : CREDSTORE_DEFAULT_PREFIX);
                struct vault_options vo = {.addr = a.vault_addr,
                                           .ca_file = a.vault_ca,
                                           .namespace_ = a.vault_ns,
                                           .peer_addrs = a.peers};
                struct vaultsession_options o = {
                        .vault = &vo,
                        .jwt_path = a.jwt,
                        .role = a.role,
                        .mount = a.auth_mount,
                        .probe_path = probe,
                        .backoff_max_ms = a.backoff_max_ms,
                };
                r = vaultsession_new(&o, &session);
                if (r < 0)
                        return log_error_errno(r, "bad vault options: %m"), 2;
                r = vaultsession_start(session);
                if (r < 0)
                        return log_error_errno(r, "cannot start the vault session: %m"), 1;
                r = vaultsession_wait_ready(session, a.wait_s * 1000u);
                if (r < 0) {
                        struct vaultsession_status st;
                        vaultsession_status(session, &st);
                        log_error("not ready within %u s after %u attempts: %s", a.wait_s,
                                  st.failures, st.last_cause);
                        return 5;
                }
                so.session = session;
                so.mount = a.kv_mount;
                so.prefix = a.prefix;
        } else {
                struct kube_config *kc = NULL;
                struct kube_error ke = {};
                struct kube_load_options lo = {};
                r = kube_config_load(&lo, &kc, &ke);
                if (r >= 0)
                        r = kube_client_new(&kc, NULL, &kube);
                kube_config_free(kc);
                if (r < 0)
                        return log_error_errno(r, "no Kubernetes client: %s", ke.message), 1;
                log_warning("%s", credstore_weakened_warning());
                so.kube = kube;
                so.namespace_ = a.kube_ns;
        }
        if (strcmp(cmd, "ready") == 0 && i == argc) {
                printf("ready\n");
                kube_client_free(kube);
                return 0;
        }

        _cleanup_credstore_ struct credstore *store = NULL;
        r = credstore_open(&so, &store);
        if (r < 0) {
                kube_client_free(kube);
                return log_error_errno(r, "bad store options: %m"), 2;
        }
        struct credstore_error e = {};
        int rc = 0;
        if (strcmp(cmd, "read") == 0 && i + 1 == argc) {
                _cleanup_credstore_record_ struct credstore_record *rec = NULL;
                r = credstore_read(store, argv[i], &rec, &e);
                if (r < 0)
                        rc = fail("read", argv[i], &e);
                else
                        print_record(rec);
        } else if ((strcmp(cmd, "create") == 0 && i + 1 == argc) ||
                   (strcmp(cmd, "update") == 0 && i + 2 == argc)) {
                _cleanup_buf_ struct buf in = BUF_INIT(4u << 20, BUF_SECURE);
                struct credstore_field f[CREDSTORE_MAX_FIELDS];
                struct credstore_version v = {}, expected = {};
                size_t n = 0;
                if (read_fields(&in, f, &n) < 0) {
                        kube_client_free(kube);
                        return usage();
                }
                if (cmd[0] == 'c') {
                        r = credstore_create(store, argv[i], f, n, &v, &e);
                } else {
                        const char *ver = argv[i + 1];
                        char *end = NULL;
                        if (backend == CREDSTORE_VAULT) {
                                errno = 0;
                                long long x = strtoll(ver, &end, 10);
                                if (errno || !end || *end || x < 1) {
                                        kube_client_free(kube);
                                        return usage();
                                }
                                expected.kv = x;
                        } else
                                (void) snprintf(expected.rv, sizeof(expected.rv), "%s", ver);
                        r = credstore_update(store, argv[i], f, n, &expected, &v, &e);
                }
                if (r >= 0) {
                        print_version(cmd[0] == 'c' ? "created version " : "updated version ", &v);
                } else if (r == -EEXIST) {
                        _cleanup_credstore_record_ struct credstore_record *rec = NULL;
                        printf("exists\n");
                        rc = 3;
                        r = credstore_read(store, argv[i], &rec, &e);
                        if (r < 0)
                                rc = fail("read", argv[i], &e);
                        else
                                print_record(rec);
                } else if (r == -ESTALE) {
                        printf("stale\n");
                        rc = fail(cmd, argv[i], &e);
                } else
                        rc = fail(cmd, argv[i], &e);
        } else if (strcmp(cmd, "event") == 0 && i + 2 == argc && kube) {
                struct credstore_object_ref ref = {
                        .api_version = strcmp(argv[i], "Deployment") == 0 ? "apps/v1" : "v1",
                        .kind = argv[i],
                        .name = argv[i + 1],
                };
                r = credstore_post_weakened_event(kube, a.kube_ns, &ref, NULL, &e);
                if (r < 0)
                        rc = fail("event", "-", &e);
                else
                        printf("event posted\n");
        } else
                rc = usage();
        fflush(stdout);
        store = credstore_free(store);
        kube_client_free(kube);
        return rc;
}
