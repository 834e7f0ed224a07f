/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/material: the CA and leaves the operator makes, checked with our
 * verifier and with `openssl verify` / `openssl x509`, the Service names, the renewal rule. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "operator/material.h"
#include "tests/tap.h"

#define NOW 1790000000LL /* 2026-09-21 */

static int write_file(const char *dir, const char *name, const struct buf *b, char *path,
                      size_t n) {
        (void) snprintf(path, n, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        size_t w = fwrite(b->data, 1, b->len, f);
        return fclose(f) == 0 && w == b->len ? 0 : -EIO;
}

/* Runs argv with stdout and stderr into out (first line kept), returns its exit status. */
static int run(char *const argv[], char *out, size_t n) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                (void) dup2(p[1], 1);
                (void) dup2(p[1], 2);
                execvp(argv[0], argv);
                _exit(127);
        }
        (void) close(p[1]);
        size_t len = 0;
        for (;;) {
                char sink[512];
                ssize_t k = read(p[0], sink, sizeof(sink));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                size_t take = MIN((size_t) k, n - 1 - len);
                memcpy(out + len, sink, take);
                len += take;
        }
        out[len] = '\0';
        (void) close(p[0]);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool has_openssl(void) {
        char out[256];
        char *argv[] = {"openssl", "version", NULL};
        return run(argv, out, sizeof(out)) == 0;
}

static int failing_issue(void *userdata, const uint8_t *spki, size_t spki_len,
                         const struct tls_cert_params *p, struct tls_cert *ret) {
        return -EIO;
}

/* An issuer that signs a leaf for another key than it was asked for. */
static int wrong_key_issue(void *userdata, const uint8_t *spki, size_t spki_len,
                           const struct tls_cert_params *p, struct tls_cert *ret) {
        struct material_local_issuer *l = userdata;
        struct tls_key *other = NULL;
        _cleanup_buf_ struct buf der = BUF_INIT(TLS_MAX_DER, 0);
        int r = tls_key_generate(&other);
        if (r >= 0)
                r = tls_key_public_der(other, &der);
        tls_key_free(other);
        if (r < 0)
                return r;
        struct material_issuer real = material_local_issuer(l);
        return real.issue(real.userdata, (const uint8_t *) der.data, der.len, p, ret);
}

int main(void) {
        char names_buf[MATERIAL_SERVICE_NAMES][254];
        const char *names[MATERIAL_SERVICE_NAMES];
        char dir[] = "/tmp/ct-material.XXXXXX";
        char out[2048];

        /* Service names. */
        is_int(material_service_names("cloudtaser-operator-webhook", "cloudtaser-system", names_buf,
                                      names),
               0, "service names");
        is_str(names[0], "cloudtaser-operator-webhook", "name 0");
        is_str(names[1], "cloudtaser-operator-webhook.cloudtaser-system", "name 1");
        is_str(names[2], "cloudtaser-operator-webhook.cloudtaser-system.svc", "name 2");
        is_str(names[3], "cloudtaser-operator-webhook.cloudtaser-system.svc.cluster.local",
               "name 3");
        static const char *const bad[][2] = {
                {"", "ns"},
                {"svc", ""},
                {"Svc", "ns"},
                {"svc", "ns.x"},
                {"-svc", "ns"},
                {"svc", "ns-"},
                {"svc_1", "ns"},
                {"a123456789012345678901234567890123456789012345678901234567890123", "ns"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(material_service_names(bad[i][0], bad[i][1], names_buf, names), -EINVAL,
                       "service names refused: '%s' '%s'", bad[i][0], bad[i][1]);

        /* CA. */
        _cleanup_buf_ struct buf ca = BUF_INIT(TLS_MAX_PEM, 0),
                                 ca_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE),
                                 plain = BUF_INIT(TLS_MAX_PEM, 0);
        is_int(material_ca_generate("cloudtaser-operator CA", NOW, &ca, &plain), -EINVAL,
               "CA key only into a secure buffer");
        is_int((int) plain.len, 0, "nothing written to the plain buffer");
        is_int(material_ca_generate("cloudtaser-operator CA", NOW, &ca, &ca_key), 0, "CA");
        int64_t nb = 0, na = 0;
        is_int(material_cert_validity(ca.data, ca.len, &nb, &na), 0, "CA validity read");
        is_int((int) (nb == NOW - MATERIAL_BACKDATE_S), 1, "CA not before: now - 5 min");
        is_int((int) (na == NOW + MATERIAL_CA_LIFETIME_S), 1, "CA for ten years");

        struct material_local_issuer *li = NULL;
        is_int(material_local_issuer_new(ca.data, ca.len, ca_key.data, ca_key.len, &li), 0,
               "issuer over the CA");
        struct material_issuer issuer = material_local_issuer(li);

        /* A CA and a key that do not match. */
        _cleanup_buf_ struct buf ca2 = BUF_INIT(TLS_MAX_PEM, 0),
                                 ca2_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        is_int(material_ca_generate("other CA", NOW, &ca2, &ca2_key), 0, "second CA");
        struct material_local_issuer *bad_li = NULL;
        is_int(material_local_issuer_new(ca.data, ca.len, ca2_key.data, ca2_key.len, &bad_li),
               -EPERM, "issuer refused when the key is not the CA's");

        /* Webhook leaf. */
        _cleanup_buf_ struct buf leaf = BUF_INIT(TLS_MAX_PEM, 0),
                                 leaf_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        const char *ip[] = {"127.0.0.1"};
        struct tls_san san = {.dns = names, .n_dns = MATERIAL_SERVICE_NAMES, .ip = ip, .n_ip = 1};
        is_int(material_leaf_generate(&issuer, names[2], &san, TLS_USAGE_SERVER, NOW,
                                      MATERIAL_LEAF_LIFETIME_S, NOW + MATERIAL_CA_LIFETIME_S, &leaf,
                                      &leaf_key),
               0, "webhook leaf");
        is_int(material_cert_validity(leaf.data, leaf.len, &nb, &na), 0, "leaf validity");
        is_int((int) (na == NOW + MATERIAL_LEAF_LIFETIME_S), 1, "leaf for one year");
        is_int(material_check_leaf(ca.data, ca.len, leaf.data, leaf.len, leaf_key.data,
                                   leaf_key.len, NOW, TLS_USAGE_SERVER),
               0, "leaf checks against its CA and key");
        is_int(material_check_leaf(ca.data, ca.len, leaf.data, leaf.len, leaf_key.data,
                                   leaf_key.len, NOW, TLS_USAGE_CLIENT),
               -EPERM, "a server leaf is not a client certificate");
        is_int(material_check_leaf(ca2.data, ca2.len, leaf.data, leaf.len, leaf_key.data,
                                   leaf_key.len, NOW, TLS_USAGE_SERVER),
               -EPERM, "leaf refused against another CA");
        is_int(material_check_leaf(ca.data, ca.len, leaf.data, leaf.len, ca_key.data, ca_key.len,
                                   NOW, TLS_USAGE_SERVER),
               -EPERM, "leaf refused with another key");
        is_int(material_check_leaf(ca.data, ca.len, leaf.data, leaf.len, leaf_key.data,
                                   leaf_key.len, NOW + MATERIAL_LEAF_LIFETIME_S + 1,
                                   TLS_USAGE_SERVER),
               -EKEYEXPIRED, "leaf expired after a year");
        is_int(material_leaf_covers(leaf.data, leaf.len, names, MATERIAL_SERVICE_NAMES), 1,
               "leaf covers the Service names");
        const char *other_names[] = {"other-service.cloudtaser-system.svc"};
        is_int(material_leaf_covers(leaf.data, leaf.len, other_names, 1), 0,
               "leaf does not cover another Service");
        is_int(material_leaf_covers(leaf.data, leaf.len, ip, 1), 1, "leaf covers its IP");
        const char *service_and_ip[MATERIAL_SERVICE_NAMES + 1];
        for (size_t i = 0; i < MATERIAL_SERVICE_NAMES; i++)
                service_and_ip[i] = names[i];
        service_and_ip[MATERIAL_SERVICE_NAMES] = ip[0];
        is_int(material_leaf_names_exactly(leaf.data, leaf.len, service_and_ip,
                                           MATERIAL_SERVICE_NAMES + 1),
               1, "leaf names exactly the Service names and its IP");
        is_int(material_leaf_names_exactly(leaf.data, leaf.len, names, MATERIAL_SERVICE_NAMES), 0,
               "  not exactly the Service names alone (the IP is one more)");
        is_int(material_leaf_names_exactly(leaf.data, leaf.len, ip, 1), 0,
               "  nor the IP alone (covered, but the Service names are more)");

        /* What may be a SAN: an address, or a DNS name. */
        static const char *const hosts_ok[] = {"broker.example", "10.0.0.1", "fd00::1",
                                               "*.example.com",  "a_b.c-d",  "localhost"};
        static const char *const hosts_bad[] = {
                "",
                "a..b",
                ".a",
                "a.",
                "bad host",
                "*",
                "a*.b",
                "x/y",
                "a@b",
                "*.",
                "a1234567890123456789012345678901234567890123456789012345678901234.b"};
        for (size_t i = 0; i < ELEMENTSOF(hosts_ok); i++)
                ok(material_host_valid(hosts_ok[i]), "host '%s' may be a SAN", hosts_ok[i]);
        for (size_t i = 0; i < ELEMENTSOF(hosts_bad); i++)
                ok(!material_host_valid(hosts_bad[i]), "host '%s' may not", hosts_bad[i]);

        /* A leaf never outlives its CA. */
        _cleanup_buf_ struct buf late = BUF_INIT(TLS_MAX_PEM, 0),
                                 late_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        int64_t ca_end = NOW + MATERIAL_CA_LIFETIME_S;
        is_int(material_leaf_generate(&issuer, "late", &san, TLS_USAGE_SERVER, ca_end - 86400,
                                      MATERIAL_LEAF_LIFETIME_S, ca_end, &late, &late_key),
               0, "leaf near the CA's end");
        is_int(material_cert_validity(late.data, late.len, &nb, &na), 0, "late validity");
        is_int((int) (na == ca_end), 1, "clamped to the CA's not after");
        buf_reset(&late);
        buf_reset(&late_key);
        is_int(material_leaf_generate(&issuer, "late", &san, TLS_USAGE_SERVER, ca_end + 1,
                                      MATERIAL_LEAF_LIFETIME_S, ca_end, &late, &late_key),
               -EKEYEXPIRED, "no leaf from an expired CA");

        /* Failures leave the output buffers alone. */
        struct material_issuer failing = {.issue = failing_issue};
        is_int(material_leaf_generate(&failing, "x", &san, TLS_USAGE_SERVER, NOW, 86400, ca_end,
                                      &late, &late_key),
               -EIO, "issuer failure returned");
        struct material_issuer wrong = {.issue = wrong_key_issue, .userdata = li};
        is_int(material_leaf_generate(&wrong, "x", &san, TLS_USAGE_SERVER, NOW, 86400, ca_end,
                                      &late, &late_key),
               -EPROTO, "a certificate for another key is refused");
        is_int((int) (late.len + late_key.len), 0, "outputs untouched on failure");

        /* Client leaf (the broker's client certificate). */
        _cleanup_buf_ struct buf client = BUF_INIT(TLS_MAX_PEM, 0),
                                 client_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        const char *cn_names[] = {"cloudtaser-operator"};
        struct tls_san csan = {.dns = cn_names, .n_dns = 1};
        is_int(material_leaf_generate(&issuer, "cloudtaser-operator", &csan, TLS_USAGE_CLIENT, NOW,
                                      MATERIAL_LEAF_LIFETIME_S, ca_end, &client, &client_key),
               0, "client leaf");
        is_int(material_check_leaf(ca.data, ca.len, client.data, client.len, client_key.data,
                                   client_key.len, NOW, TLS_USAGE_CLIENT),
               0, "client leaf checks");

        /* Random tokens. */
        _cleanup_buf_ struct buf t1 = BUF_INIT(1024, BUF_SECURE), t2 = BUF_INIT(1024, BUF_SECURE),
                                 tp = BUF_INIT(1024, 0);
        is_int(material_random_base64(MATERIAL_RANDOM_BYTES, &tp), -EINVAL,
               "random only into secure buffers");
        is_int(material_random_base64(MATERIAL_RANDOM_BYTES, &t1), 0, "random 1");
        is_int(material_random_base64(MATERIAL_RANDOM_BYTES, &t2), 0, "random 2");
        is_int((int) t1.len, 44, "32 bytes in base64");
        ok(strcmp(buf_cstr(&t1), buf_cstr(&t2)) != 0, "two tokens differ");

        /* Renewal rule. */
        is_int(material_renewal_due(NOW + 31 * 86400, NOW, 30 * 86400), 0, "31 days left: keep");
        is_int(material_renewal_due(NOW + 29 * 86400, NOW, 30 * 86400), 1, "29 days left: renew");
        is_int(material_renewal_due(NOW - 1, NOW, 30 * 86400), 1, "expired: renew");

        /* openssl agrees (the real time is used: these certificates are valid from NOW, in the
         * past of today's clock, for a year, so they are checked at NOW). */
        if (!has_openssl() || !mkdtemp(dir)) {
                skip(4, "no openssl");
        } else {
                char ca_path[512], leaf_path[512];
                is_int(write_file(dir, "ca.pem", &ca, ca_path, sizeof(ca_path)), 0, "ca written");
                is_int(write_file(dir, "leaf.pem", &leaf, leaf_path, sizeof(leaf_path)), 0,
                       "leaf written");
                char at[32];
                (void) snprintf(at, sizeof(at), "%lld", (long long) NOW);
                char *verify[] = {"openssl",   "verify",  "-attime", at,        "-purpose",
                                  "sslserver", "-CAfile", ca_path,   leaf_path, NULL};
                is_int(run(verify, out, sizeof(out)), 0, "openssl verify: %s", out);
                char *x509[] = {"openssl", "x509",           "-in", leaf_path, "-noout",
                                "-ext",    "subjectAltName", NULL};
                (void) run(x509, out, sizeof(out));
                ok(strstr(out, "DNS:cloudtaser-operator-webhook.cloudtaser-system.svc.cluster."
                               "local") != NULL &&
                           strstr(out, "IP Address:127.0.0.1") != NULL,
                   "openssl sees the SANs");
                (void) unlink(ca_path);
                (void) unlink(leaf_path);
                (void) rmdir(dir);
        }

        material_local_issuer_free(li);
        return tap_done();
}
