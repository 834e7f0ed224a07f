/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-unsealer: runs operator/unsealer on its own, for tests/e2e/test-real-sealed.sh, with what
 * the operator wires in (operator/keeper's broker-auth and broker-tls, its vault session) given
 * as files:
 *
 *   ct-unsealer --kube-server URL --kube-ca-file F --kube-token-file F
 *               --vault-address URL --vault-ca-file F --vault-token-file F
 *               --broker-auth-hex-file F --broker-token-hex-file F
 *               --client-cert F --client-key F
 *               [--namespace NS] [--tenant-prefix TEMPLATE] [--token-role ROLE]
 *               [--interval-ms MS]
 *
 * broker-auth and broker-token are each 64 lower-case hex digits in their file: the annotation
 * key and the installation id (the sealed label's value it selects) are derived from them as the
 * operator derives them.
 *
 *   ct-unsealer --version
 *
 * It runs until SIGTERM or SIGINT, as the leader (no election), and prints its log on stderr.
 * Exit status: 0 stopped, 1 failed to start, 2 bad usage.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault.h"
#include "operator/unsealer.h"

struct deps {
        uint8_t auth[BROKERPROTO_KEY_SIZE];
        char installation[BROKERPROTO_INSTALLATION_SIZE];
        const char *cert_file, *key_file;
        struct vault_client *vault;
        pthread_mutex_t lock;
};

static int read_file(const char *path, struct buf *out) {
        FILE *f = fopen(path, "re");
        char chunk[4096];
        size_t n;
        int r = 0;
        if (!f)
                return negative_errno();
        while (r >= 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                r = buf_append(out, chunk, n);
        explicit_bzero(chunk, sizeof(chunk));
        (void) fclose(f);
        return r;
}

static int annotation_key(void *userdata, uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        struct deps *d = userdata;
        return brokerproto_annotation_key(d->auth, sizeof(d->auth), ret);
}

static int installation(void *userdata, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        struct deps *d = userdata;
        memcpy(ret, d->installation, BROKERPROTO_INSTALLATION_SIZE);
        return 0;
}

static int client_pair(void *userdata, struct buf *ret_cert, struct buf *ret_key) {
        struct deps *d = userdata;
        int r = read_file(d->cert_file, ret_cert);
        return r < 0 ? r : read_file(d->key_file, ret_key);
}

static int vault_borrow(void *userdata, struct vault_client **ret) {
        struct deps *d = userdata;
        pthread_mutex_lock(&d->lock);
        *ret = d->vault;
        return 0;
}

static void vault_return(void *userdata) {
        struct deps *d = userdata;
        pthread_mutex_unlock(&d->lock);
}

static int hex_nibble(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 64 lower-case hex digits from path into ret (BROKERPROTO_KEY_SIZE bytes). */
static int read_hex_key(const char *path, uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        _cleanup_buf_ struct buf hex = BUF_INIT(4096, BUF_SECURE);
        int r = read_file(path, &hex);
        if (r < 0 || hex.len < 2 * BROKERPROTO_KEY_SIZE)
                return log_error("cannot read 64 hex digits from %s", path), -EBADMSG;
        for (size_t i = 0; i < BROKERPROTO_KEY_SIZE; i++) {
                int hi = hex_nibble(hex.data[2 * i]), lo = hex_nibble(hex.data[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return log_error("%s: not lower-case hex", path), -EBADMSG;
                ret[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *kube_server = NULL, *kube_ca = NULL, *kube_token = NULL, *vault_addr = NULL,
                   *vault_ca = NULL, *vault_token = NULL, *auth_hex = NULL, *tenant = NULL,
                   *role = NULL, *token_hex = NULL, *ns = NULL;
        unsigned interval = 500;
        struct deps d = {.lock = PTHREAD_MUTEX_INITIALIZER};
        sigset_t mask;
        int r, sig;

        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("ct-unsealer %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        log_setup("ct-unsealer", LOG_FORMAT_TEXT, LOG_INFO);
        for (int i = 1; i + 1 < argc; i += 2) {
                const char *f = argv[i], *v = argv[i + 1];
                if (strcmp(f, "--kube-server") == 0)
                        kube_server = v;
                else if (strcmp(f, "--kube-ca-file") == 0)
                        kube_ca = v;
                else if (strcmp(f, "--kube-token-file") == 0)
                        kube_token = v;
                else if (strcmp(f, "--vault-address") == 0)
                        vault_addr = v;
                else if (strcmp(f, "--vault-ca-file") == 0)
                        vault_ca = v;
                else if (strcmp(f, "--vault-token-file") == 0)
                        vault_token = v;
                else if (strcmp(f, "--broker-auth-hex-file") == 0)
                        auth_hex = v;
                else if (strcmp(f, "--broker-token-hex-file") == 0)
                        token_hex = v;
                else if (strcmp(f, "--namespace") == 0)
                        ns = v;
                else if (strcmp(f, "--client-cert") == 0)
                        d.cert_file = v;
                else if (strcmp(f, "--client-key") == 0)
                        d.key_file = v;
                else if (strcmp(f, "--tenant-prefix") == 0)
                        tenant = v;
                else if (strcmp(f, "--token-role") == 0)
                        role = v;
                else if (strcmp(f, "--interval-ms") == 0) {
                        char *end;
                        errno = 0;
                        unsigned long x = strtoul(v, &end, 10);
                        if (errno || *end || x == 0 || x > 60000)
                                return fprintf(stderr, "bad --interval-ms\n"), 2;
                        interval = (unsigned) x;
                } else
                        return fprintf(stderr, "unknown flag %s (see the source)\n", f), 2;
        }
        if (!kube_server || !kube_ca || !kube_token || !vault_addr || !vault_ca || !vault_token ||
            !auth_hex || !token_hex || !d.cert_file || !d.key_file)
                return fprintf(stderr, "missing flags (see the source)\n"), 2;

        /* SIGTERM/SIGINT are waited for; SIGPIPE (a pod that closes the connection) is not ours */
        (void) signal(SIGPIPE, SIG_IGN);
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &mask, NULL);

        _cleanup_buf_ struct buf tok = BUF_INIT(8192, BUF_SECURE);
        uint8_t install[BROKERPROTO_KEY_SIZE];
        if (read_hex_key(auth_hex, d.auth) < 0 || read_hex_key(token_hex, install) < 0)
                return 1;
        (void) brokerproto_installation_id(install, sizeof(install), d.installation);
        explicit_bzero(install, sizeof(install));
        struct vault_options vo = {.addr = vault_addr, .ca_file = vault_ca, .deadline_ms = 10000};
        r = vault_client_new(&vo, &d.vault);
        if (r >= 0)
                r = read_file(vault_token, &tok);
        if (r >= 0)
                buf_rstrip(&tok);
        if (r >= 0)
                r = vault_set_token(d.vault, tok.data, tok.len);
        if (r < 0)
                return log_error_errno(r, "vault client: %m"), 1;

        struct kube_config *kc = NULL;
        struct kube_client *kube = NULL;
        struct kube_error ke = {};
        r = kube_config_new(kube_server, kube_ca, kube_token, &kc, &ke);
        if (r >= 0)
                r = kube_client_new(&kc, NULL, &kube);
        if (r < 0)
                return log_error("kube client: %s", ke.message), 1;

        struct unsealer *u = NULL;
        struct unsealer_options o = {
                .kube = kube,
                .namespace_ = ns,
                .deps = {.annotation_key = annotation_key,
                         .installation = installation,
                         .client_pair = client_pair,
                         .vault_borrow = vault_borrow,
                         .vault_return = vault_return,
                         .userdata = &d},
                .tenant = tenant,
                .token_role = role,
                .interval_ms = interval,
        };
        r = unsealer_new(&o, &u);
        if (r >= 0)
                r = unsealer_start(u);
        if (r < 0)
                return log_error_errno(r, "unsealer: %m"), 1;
        log_info("running (installation %s, %s, interval %u ms)", d.installation,
                 ns ? ns : "all namespaces", interval);
        (void) sigwait(&mask, &sig);
        log_info("SIG%s: stopping", sig == SIGTERM ? "TERM" : "INT");
        unsealer_free(u);
        kube_client_free(kube);
        vault_client_free(d.vault);
        explicit_bzero(d.auth, sizeof(d.auth));
        return 0;
}
