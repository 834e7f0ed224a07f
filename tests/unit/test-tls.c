/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for common/tls, cross-checked with the openssl CLI: everything we generate must be
 * accepted by openssl (verify, x509 -text, req -verify, pkey), and everything openssl generates
 * must import and inspect correctly through our API. Work files live in a mkdtemp directory
 * that is removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "tests/tap.h"

static char workdir[] = "/tmp/test-tls-XXXXXX";
static int64_t now;

/* ---- helpers ----------------------------------------------------------------------------- */

static int write_file(const char *name, const void *p, size_t n) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", workdir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < n;) {
                ssize_t w = write(fd, (const char *) p + off, n - off);
                if (w < 0)
                        return -errno;
                off += (size_t) w;
        }
        return 0;
}

static int write_buf(const char *name, const struct buf *b) {
        return write_file(name, b->data, b->len);
}

static int read_fd(int fd, struct buf *out) {
        char chunk[4096];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                int r = buf_append(out, chunk, (size_t) n);
                if (r < 0)
                        return r;
        }
}

static int read_file(const char *name, struct buf *out) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", workdir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_fd(fd, out);
}

/* Runs `openssl argv...` in the work directory; stdout+stderr go to out (may be NULL). Returns
 * the exit status, or -errno. */
static int openssl(struct buf *out, const char *const *argv) {
        const char *args[64] = {"openssl"};
        size_t n = 1;
        int fds[2];

        for (; argv[n - 1] && n < ELEMENTSOF(args) - 1; n++)
                args[n] = argv[n - 1];
        args[n] = NULL;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0 || chdir(workdir) < 0)
                        _exit(127);
                execvp("openssl", (char *const *) args);
                _exit(127);
        }
        close(fds[1]);
        _cleanup_buf_ struct buf sink = BUF_INIT(1u << 20, 0);
        int r = read_fd(fds[0], out ? out : &sink);
        close(fds[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
#define OPENSSL(out, ...) openssl((out), (const char *const[]){__VA_ARGS__, NULL})

static bool contains(const struct buf *b, const char *s) {
        return b->data && strstr(b->data, s) != NULL;
}

static void rm_workdir(void) {
        DIR *d = opendir(workdir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(workdir);
}

static const struct tls_cert_params *ca_params(const char *cn, int64_t nb, int64_t na) {
        static struct tls_cert_params p;
        p = (struct tls_cert_params){.common_name = cn,
                                     .organization = "cloudtaser",
                                     .not_before = nb,
                                     .not_after = na,
                                     .path_len = 0};
        return &p;
}

static int make_ca(const char *cn, struct tls_key **ret_key, struct tls_cert *ret_cert) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        int r = tls_key_generate(&k);
        if (r < 0)
                return r;
        r = tls_cert_create_ca(k, ca_params(cn, now - 3600, now + 30 * 86400), ret_cert);
        if (r < 0)
                return r;
        *ret_key = TAKE_PTR(k);
        return 0;
}

static int key_spki(const struct tls_key *k, struct buf *out) {
        return tls_key_public_der(k, out);
}

static int issue(const struct tls_key *ca_key, const struct tls_cert *ca, const struct tls_key *k,
                 const char *cn, int64_t nb, int64_t na, unsigned usage, struct tls_cert *ret) {
        _cleanup_buf_ struct buf spki = BUF_INIT(1u << 16, 0);
        int r = key_spki(k, &spki);
        if (r < 0)
                return r;
        struct tls_cert_params p = {
                .common_name = cn, .not_before = nb, .not_after = na, .usage = usage};
        return tls_cert_issue(ca_key, ca, (const uint8_t *) spki.data, spki.len, &p, ret);
}

static int cert_pem_file(const char *name, const struct tls_cert *c) {
        _cleanup_buf_ struct buf pem = BUF_INIT(1u << 20, 0);
        int r = tls_cert_encode_pem(c, &pem);
        return r < 0 ? r : write_buf(name, &pem);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_keys(void) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL, *k2 = NULL;
        _cleanup_buf_ struct buf pem = BUF_INIT(1u << 16, BUF_SECURE);
        _cleanup_buf_ struct buf plain = BUF_INIT(1u << 16, 0);
        _cleanup_buf_ struct buf pub = BUF_INIT(1u << 16, 0);
        _cleanup_buf_ struct buf pub2 = BUF_INIT(1u << 16, 0);
        _cleanup_buf_ struct buf out = BUF_INIT(1u << 20, 0);
        struct secmem_report before, after;

        secmem_report(&before);
        is_int(tls_key_generate(&k), 0, "generate a P-256 key");
        is_int(tls_key_get_type(k), TLS_KEY_EC_P256, "key type is ec-p256");
        secmem_report(&after);
        ok(after.regions > before.regions, "the key lives in secmem");

        is_int(tls_key_export_pem(k, &plain), -EINVAL, "export into a non-secure buffer refused");
        is_int((long long) plain.len, 0, "and nothing was written");
        is_int(tls_key_export_pem(k, &pem), 0, "export into a BUF_SECURE buffer");
        ok(pem.flags & BUF_SECURE, "the private key PEM buffer is BUF_SECURE");
        ok(contains(&pem, "-----BEGIN EC PRIVATE KEY-----\n"), "SEC1 EC PRIVATE KEY label");
        ok(write_buf("key.pem", &pem) == 0, "key written for openssl");
        is_int(OPENSSL(&out, "pkey", "-in", "key.pem", "-noout", "-check"), 0,
               "openssl pkey reads and checks our private key");
        buf_reset(&out);
        is_int(OPENSSL(&out, "pkey", "-in", "key.pem", "-pubout"), 0, "openssl derives the pubkey");
        is_int(tls_key_public_pem(k, &pub), 0, "our public key PEM");
        is_str(buf_cstr(&out), buf_cstr(&pub), "openssl's public key equals ours");

        is_int(tls_key_import_pem(pem.data, pem.len, &k2), 0, "re-import our own export");
        is_int(tls_key_public_pem(k2, &pub2), 0, "public key of the re-imported key");
        is_str(buf_cstr(&pub2), buf_cstr(&pub), "round trip keeps the key");

        _cleanup_buf_ struct buf der = BUF_INIT(1u << 16, 0);
        is_int(tls_public_key_pem_to_der(pub.data, pub.len, &der), 0, "PUBLIC KEY PEM to DER");
        _cleanup_buf_ struct buf der2 = BUF_INIT(1u << 16, 0);
        is_int(tls_key_public_der(k, &der2), 0, "public DER");
        ok(der.len == der2.len && memcmp(der.data, der2.data, der.len) == 0,
           "decoded PUBLIC KEY equals the key's SPKI");
        is_int(tls_public_key_pem_to_der(pem.data, pem.len, &der), -EBADMSG,
               "a private key is not a PUBLIC KEY");
        tls_key_free(NULL);
}

/* ---- CA, CSR, leaf, checked by openssl --------------------------------------------------- */

static struct tls_key *ca_key, *ca2_key;
static struct tls_cert ca_cert, ca2_cert;

static void test_ca(void) {
        _cleanup_buf_ struct buf out = BUF_INIT(1u << 20, 0);
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};

        is_int(make_ca("cloudtaser test CA", &ca_key, &ca_cert), 0, "create a self-signed CA");
        is_int(make_ca("other CA", &ca2_key, &ca2_cert), 0, "create a second CA");
        ok(cert_pem_file("ca.pem", &ca_cert) == 0 && cert_pem_file("ca2.pem", &ca2_cert) == 0,
           "CA PEMs written");
        is_int(OPENSSL(&out, "x509", "-in", "ca.pem", "-noout", "-text"), 0, "openssl x509 -text");
        ok(contains(&out, "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"),
           "basicConstraints CA:TRUE, pathlen:0, critical");
        ok(contains(&out, "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
           "keyUsage keyCertSign+cRLSign, critical");
        ok(contains(&out, "X509v3 Subject Key Identifier"), "SKI present");
        ok(contains(&out, "X509v3 Authority Key Identifier"), "AKI present");
        ok(contains(&out, "Subject: O = cloudtaser, CN = cloudtaser test CA"), "subject O and CN");
        ok(contains(&out, "ecdsa-with-SHA256"), "signed with ecdsa-with-SHA256");
        buf_reset(&out);
        is_int(OPENSSL(&out, "verify", "-CAfile", "ca.pem", "ca.pem"), 0,
               "openssl verifies the self-signed CA against itself");

        is_int(tls_cert_inspect(&ca_cert, &info), 0, "inspect the CA");
        ok(info.is_ca && info.path_len == 0 && info.self_issued, "is_ca, pathlen 0, self-issued");
        is_int(info.key_usage, TLS_KU_KEY_CERT_SIGN | TLS_KU_CRL_SIGN, "key usage bits");
        is_str(info.subject_cn, "cloudtaser test CA", "subject CN");
        is_str(info.issuer_cn, "cloudtaser test CA", "issuer CN");
        is_int(info.not_before, now - 3600, "notBefore as asked");
        is_int(info.not_after, now + 30 * 86400, "notAfter as asked");
        ok(strlen(info.serial_hex) == 32 && info.serial_hex[0] != '\0', "128-bit serial");
        is_int(tls_key_matches_cert(ca_key, ca_cert.der, ca_cert.len), 1, "CA key matches CA");
        is_int(tls_key_matches_cert(ca2_key, ca_cert.der, ca_cert.len), 0,
               "other key does not match");

        /* The serial and fingerprint as openssl sees them. */
        buf_reset(&out);
        is_int(OPENSSL(&out, "x509", "-in", "ca.pem", "-noout", "-serial", "-fingerprint",
                       "-sha256"),
               0, "openssl prints serial and fingerprint");
        char want[200], fp[100];
        size_t o = 0;
        for (size_t i = 0; info.sha256_hex[i]; i++) {
                if (i && i % 2 == 0)
                        fp[o++] = ':';
                fp[o++] = (char) (info.sha256_hex[i] >= 'a' ? info.sha256_hex[i] - 32
                                                            : info.sha256_hex[i]);
        }
        fp[o] = '\0';
        (void) snprintf(want, sizeof(want), "Fingerprint=%s", fp);
        ok(contains(&out, want), "SHA-256 fingerprint matches openssl's");
        char serial_up[64];
        for (o = 0; info.serial_hex[o]; o++)
                serial_up[o] = (char) (info.serial_hex[o] >= 'a' ? info.serial_hex[o] - 32
                                                                 : info.serial_hex[o]);
        serial_up[o] = '\0';
        (void) snprintf(want, sizeof(want), "serial=%s\n", serial_up);
        ok(contains(&out, want), "serial matches openssl's");
}

static void test_csr_and_leaf(void) {
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        _cleanup_buf_ struct buf csr = BUF_INIT(1u << 16, 0);
        _cleanup_buf_ struct buf out = BUF_INIT(1u << 20, 0);
        _cleanup_buf_ struct buf keypem = BUF_INIT(1u << 16, BUF_SECURE);
        _cleanup_tls_csr_info_ struct tls_csr_info ci = {};
        _cleanup_tls_cert_ struct tls_cert leaf = {}, other = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        const char *dns[] = {"broker.cloudtaser.svc", "localhost"};
        const char *ips[] = {"127.0.0.1", "::1"};
        const char *uris[] = {"spiffe://cloudtaser/broker"};
        struct tls_san san = {dns, 2, ips, 2, uris, 1};

        is_int(tls_key_generate(&k), 0, "leaf key");
        is_int(tls_csr_create(k, "broker", "cloudtaser", &san, &csr), 0, "create a CSR");
        ok(write_buf("leaf.csr", &csr) == 0, "CSR written");
        is_int(OPENSSL(&out, "req", "-in", "leaf.csr", "-noout", "-verify", "-text"), 0,
               "openssl req -verify accepts our CSR");
        ok(contains(&out, "verify OK") || contains(&out, "verify ok"), "openssl says verify OK");
        ok(contains(&out, "DNS:broker.cloudtaser.svc, DNS:localhost, IP Address:127.0.0.1, IP "
                          "Address:0:0:0:0:0:0:0:1, URI:spiffe://cloudtaser/broker"),
           "CSR carries the requested SANs");
        ok(contains(&out, "Subject: O = cloudtaser, CN = broker"), "CSR subject");

        is_int(tls_csr_parse_pem(csr.data, csr.len, &ci), 0, "parse and verify our CSR");
        is_str(ci.subject_cn, "broker", "CSR CN");
        is_str(ci.subject_o, "cloudtaser", "CSR O");
        ok(ci.san.n_dns == 2 && strcmp(ci.san.dns[0], "broker.cloudtaser.svc") == 0 &&
                   strcmp(ci.san.dns[1], "localhost") == 0,
           "CSR DNS SANs");
        ok(ci.san.n_ip == 2 && strcmp(ci.san.ip[0], "127.0.0.1") == 0 &&
                   strcmp(ci.san.ip[1], "::1") == 0,
           "CSR IP SANs");
        ok(ci.san.n_uri == 1 && strcmp(ci.san.uri[0], "spiffe://cloudtaser/broker") == 0,
           "CSR URI SAN");
        is_int(ci.key_type, TLS_KEY_EC_P256, "CSR key type");

        /* The operator's path: CSR in, certificate out, with the CSR's names. */
        struct tls_san from_csr = {(const char *const *) ci.san.dns, ci.san.n_dns,
                                   (const char *const *) ci.san.ip,  ci.san.n_ip,
                                   (const char *const *) ci.san.uri, ci.san.n_uri};
        struct tls_cert_params p = {.common_name = ci.subject_cn,
                                    .san = from_csr,
                                    .not_before = now,
                                    .not_after = now + 7 * 86400,
                                    .backdate = 300,
                                    .usage = TLS_USAGE_SERVER | TLS_USAGE_CLIENT,
                                    .key_encipherment = true};
        is_int(tls_cert_issue(ca_key, &ca_cert, ci.spki, ci.spki_len, &p, &leaf), 0,
               "issue a leaf from the CSR");
        ok(cert_pem_file("leaf.pem", &leaf) == 0, "leaf written");
        buf_reset(&out);
        is_int(OPENSSL(&out, "verify", "-CAfile", "ca.pem", "leaf.pem"), 0,
               "openssl verify -CAfile ca.pem leaf.pem: OK");
        buf_reset(&out);
        is_int(OPENSSL(&out, "verify", "-CAfile", "ca2.pem", "leaf.pem"), 2,
               "openssl verify against the other CA fails");
        buf_reset(&out);
        is_int(OPENSSL(&out, "x509", "-in", "leaf.pem", "-noout", "-text"), 0, "leaf -text");
        ok(contains(&out, "DNS:broker.cloudtaser.svc, DNS:localhost, IP Address:127.0.0.1, IP "
                          "Address:0:0:0:0:0:0:0:1, URI:spiffe://cloudtaser/broker"),
           "leaf SANs as asked");
        ok(contains(&out, "TLS Web Server Authentication, TLS Web Client Authentication"),
           "EKU serverAuth + clientAuth");
        ok(contains(&out, "X509v3 Key Usage: critical\n                Digital Signature, Key "
                          "Encipherment"),
           "keyUsage digitalSignature + keyEncipherment, critical");
        ok(contains(&out, "X509v3 Basic Constraints: critical\n                CA:FALSE"),
           "basicConstraints CA:FALSE");
        ok(contains(&out, "Issuer: O = cloudtaser, CN = cloudtaser test CA"), "issuer name");
        ok(contains(&out, "Subject: CN = broker"), "subject CN");

        is_int(tls_cert_inspect(&leaf, &info), 0, "inspect the leaf");
        is_int(info.not_before, now - 300, "notBefore backdated by 300 s");
        is_int(info.not_after, now + 7 * 86400, "notAfter as asked");
        ok(!info.is_ca && !info.self_issued, "leaf is not a CA");
        is_int(info.ext_key_usage, TLS_USAGE_SERVER | TLS_USAGE_CLIENT, "EKU bits");
        is_int(info.key_usage, TLS_KU_DIGITAL_SIGNATURE | TLS_KU_KEY_ENCIPHERMENT, "KU bits");
        is_str(info.issuer_cn, "cloudtaser test CA", "issuer CN");
        ok(info.san.n_dns == 2 && info.san.n_ip == 2 && info.san.n_uri == 1, "SAN counts");
        is_int(tls_key_matches_cert(k, leaf.der, leaf.len), 1, "leaf key matches leaf");

        /* Exported key read by openssl matches the certificate's public key. */
        _cleanup_buf_ struct buf a = BUF_INIT(1u << 16, 0), b = BUF_INIT(1u << 16, 0);
        ok(tls_key_export_pem(k, &keypem) == 0 && write_buf("leaf.key", &keypem) == 0,
           "leaf key exported");
        ok(OPENSSL(&a, "pkey", "-in", "leaf.key", "-pubout") == 0 &&
                   OPENSSL(&b, "x509", "-in", "leaf.pem", "-noout", "-pubkey") == 0,
           "openssl extracts both public keys");
        is_str(buf_cstr(&a), buf_cstr(&b), "exported key matches the certificate (openssl)");

        /* Our own verifier. */
        _cleanup_buf_ struct buf capem = BUF_INIT(1u << 20, 0), ca2pem = BUF_INIT(1u << 20, 0),
                                 leafpem = BUF_INIT(1u << 20, 0), both = BUF_INIT(1u << 20, 0);
        ok(tls_cert_encode_pem(&ca_cert, &capem) == 0 &&
                   tls_cert_encode_pem(&ca2_cert, &ca2pem) == 0 &&
                   tls_cert_encode_pem(&leaf, &leafpem) == 0,
           "PEMs");
        is_int(tls_verify_pem(capem.data, capem.len, leafpem.data, leafpem.len, now, 0), 0,
               "tls_verify: leaf trusted by its CA");
        is_int(tls_verify_pem(ca2pem.data, ca2pem.len, leafpem.data, leafpem.len, now, 0), -EPERM,
               "tls_verify: untrusted by the other CA");
        ok(buf_append(&both, ca2pem.data, ca2pem.len) == 0 &&
                   buf_append(&both, capem.data, capem.len) == 0,
           "bundle of both CAs");
        is_int(tls_verify_pem(both.data, both.len, leafpem.data, leafpem.len, now,
                              TLS_USAGE_SERVER),
               0, "tls_verify: trusted through a bundle, serverAuth");
        is_int(tls_verify_pem(capem.data, capem.len, leafpem.data, leafpem.len, now + 8 * 86400, 0),
               -EKEYEXPIRED, "tls_verify: expired one day after notAfter");
        is_int(tls_verify_pem(capem.data, capem.len, leafpem.data, leafpem.len, now - 3000, 0),
               -EKEYEXPIRED, "tls_verify: not yet valid before notBefore");
        is_int(tls_verify_pem(capem.data, capem.len, capem.data, capem.len, now, 0), 0,
               "tls_verify: a root verifies against itself");

        /* A leaf signed by the other CA, and a server-only leaf. */
        is_int(issue(ca2_key, &ca2_cert, k, "x", now, now + 86400, TLS_USAGE_SERVER, &other), 0,
               "issue from the other CA");
        ok(cert_pem_file("other.pem", &other) == 0, "written");
        buf_reset(&out);
        ok(OPENSSL(&out, "verify", "-CAfile", "ca.pem", "other.pem") != 0,
           "openssl: a leaf of the other CA is not trusted by ca.pem");
        is_int(tls_verify_certs(&ca_cert, 1, &other, 1, now, 0), -EPERM,
               "tls_verify: leaf of the other CA untrusted");
        is_int(tls_verify_certs(&ca2_cert, 1, &other, 1, now, TLS_USAGE_CLIENT), -EPERM,
               "tls_verify: serverAuth-only leaf refused for clientAuth");
        is_int(tls_verify_certs(&ca2_cert, 1, &other, 1, now, TLS_USAGE_SERVER), 0,
               "tls_verify: and accepted for serverAuth");

        /* A CA that expired: the leaf it signed is -EKEYEXPIRED, not -EPERM. */
        _cleanup_tls_cert_ struct tls_cert old_ca = {}, old_leaf = {};
        ok(tls_cert_create_ca(ca_key,
                              ca_params("cloudtaser test CA", now - 10 * 86400, now - 86400),
                              &old_ca) == 0,
           "an expired CA with the same key");
        is_int(issue(ca_key, &old_ca, k, "y", now - 5 * 86400, now + 86400, TLS_USAGE_CLIENT,
                     &old_leaf),
               0, "leaf issued by it");
        is_int(tls_verify_certs(&old_ca, 1, &old_leaf, 1, now, 0), -EKEYEXPIRED,
               "tls_verify: expired anchor gives -EKEYEXPIRED");
        is_int(tls_verify_certs(&old_ca, 1, &old_leaf, 1, now - 2 * 86400, 0), 0,
               "tls_verify: valid at a time when the anchor was valid");

        /* Issuing errors. */
        is_int(issue(ca2_key, &ca_cert, k, "z", now, now + 60, TLS_USAGE_SERVER, &other), -EINVAL,
               "CA key that does not match the CA cert: -EINVAL");
        is_int(issue(ca_key, &leaf, k, "z", now, now + 60, TLS_USAGE_SERVER, &other), -EINVAL,
               "a leaf cannot issue: -EINVAL");
        is_int(issue(ca_key, &ca_cert, k, "z", now, now, TLS_USAGE_SERVER, &other), -EINVAL,
               "notAfter == notBefore: -EINVAL");
        is_int(issue(ca_key, &ca_cert, k, "z", now, now + 60, 0, &other), -EINVAL,
               "leaf without usage: -EINVAL");
        is_int(issue(ca_key, &ca_cert, k, "", now, now + 60, TLS_USAGE_SERVER, &other), -EINVAL,
               "empty CN: -EINVAL");
        const char *bad_dns[] = {"bad name"};
        const char *bad_ip[] = {"300.1.1.1"};
        struct tls_san s1 = {.dns = bad_dns, .n_dns = 1}, s2 = {.ip = bad_ip, .n_ip = 1};
        _cleanup_buf_ struct buf junk = BUF_INIT(1u << 16, 0);
        is_int(tls_csr_create(k, "x", NULL, &s1, &junk), -EINVAL, "DNS SAN with a space: -EINVAL");
        is_int(tls_csr_create(k, "x", NULL, &s2, &junk), -EINVAL, "bad IP SAN: -EINVAL");
        const char *many[TLS_MAX_SANS + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "a.example";
        struct tls_san s3 = {.dns = many, .n_dns = ELEMENTSOF(many)};
        is_int(tls_csr_create(k, "x", NULL, &s3, &junk), -E2BIG, "65 DNS SANs: -E2BIG");
        is_int((long long) junk.len, 0, "nothing written on errors");

        /* Validity encoding: UTCTime before 2050, GeneralizedTime after, exact seconds. */
        _cleanup_tls_cert_ struct tls_cert dated = {};
        _cleanup_tls_cert_info_ struct tls_cert_info di = {};
        is_int(issue(ca_key, &ca_cert, k, "dated", 1700000000, 2524608001, TLS_USAGE_SERVER,
                     &dated),
               0, "leaf with fixed validity");
        ok(cert_pem_file("dated.pem", &dated) == 0, "written");
        buf_reset(&out);
        is_int(OPENSSL(&out, "x509", "-in", "dated.pem", "-noout", "-startdate", "-enddate"), 0,
               "openssl reads the dates");
        ok(contains(&out, "notBefore=Nov 14 22:13:20 2023 GMT"), "notBefore (UTCTime)");
        ok(contains(&out, "notAfter=Jan  1 00:00:01 2050 GMT"), "notAfter (GeneralizedTime)");
        is_int(tls_cert_inspect(&dated, &di), 0, "inspect");
        ok(di.not_before == 1700000000 && di.not_after == 2524608001, "dates read back exactly");
}

/* ---- openssl-made material through our API ------------------------------------------------ */

static void test_openssl_material(void) {
        _cleanup_buf_ struct buf out = BUF_INIT(1u << 20, 0);
        /* openssl stamps notBefore with its own clock, a little after `now`. */
        int64_t later = (int64_t) time(NULL) + 120;
        static const char int_ext[] = "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                      "keyUsage=critical,keyCertSign,cRLSign\n"
                                      "subjectKeyIdentifier=hash\n"
                                      "authorityKeyIdentifier=keyid\n";
        static const char leaf_ext[] =
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:leaf.example,IP:10.0.0.1,URI:https://x.example/\n";
        int r = 0;

        r |= write_file("int.ext", int_ext, strlen(int_ext));
        r |= write_file("leaf.ext", leaf_ext, strlen(leaf_ext));
        r |= OPENSSL(&out, "ecparam", "-name", "prime256v1", "-genkey", "-out", "root.key");
        r |= OPENSSL(&out, "req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=ossl-root",
                     "-days", "30", "-out", "root.pem", "-addext",
                     "basicConstraints=critical,CA:TRUE", "-addext",
                     "keyUsage=critical,keyCertSign,cRLSign");
        r |= OPENSSL(&out, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", "int.key");
        r |= OPENSSL(&out, "req", "-new", "-key", "int.key", "-subj", "/CN=ossl-int", "-out",
                     "int.csr");
        r |= OPENSSL(&out, "x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey",
                     "root.key", "-set_serial", "2", "-days", "20", "-extfile", "int.ext", "-out",
                     "int.pem");
        r |= OPENSSL(&out, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", "rsa.key");
        r |= OPENSSL(&out, "rsa", "-in", "rsa.key", "-traditional", "-out", "rsa-trad.key");
        r |= OPENSSL(&out, "req", "-new", "-key", "rsa.key", "-subj", "/O=acme/CN=ossl-leaf",
                     "-addext", "subjectAltName=DNS:leaf.example,IP:10.0.0.1", "-out", "rsa.csr");
        r |= OPENSSL(&out, "x509", "-req", "-in", "rsa.csr", "-CA", "int.pem", "-CAkey", "int.key",
                     "-set_serial", "0x0123456789", "-days", "10", "-extfile", "leaf.ext", "-out",
                     "ossl-leaf.pem");
        r |= OPENSSL(&out, "x509", "-req", "-in", "int.csr", "-CA", "ossl-leaf.pem", "-CAkey",
                     "rsa.key", "-set_serial", "7", "-days", "5", "-out", "child.pem");
        r |= OPENSSL(&out, "pkcs8", "-topk8", "-in", "int.key", "-passout", "pass:x", "-out",
                     "enc.key");
        if (!ok(r == 0, "openssl generated a root, an intermediate, RSA and EC keys, CSR, leaf")) {
                diag("%s", buf_cstr(&out));
                return;
        }

        struct {
                const char *file;
                int want;
                enum tls_key_type type;
                const char *cert; /* the matching certificate, or NULL */
        } keys[] = {
                {"root.key", 0, TLS_KEY_EC_P256, "root.pem"}, /* EC PARAMETERS + EC PRIVATE KEY */
                {"int.key", 0, TLS_KEY_EC_P256, "int.pem"},   /* PKCS#8 EC */
                {"rsa.key", 0, TLS_KEY_RSA, "ossl-leaf.pem"}, /* PKCS#8 RSA */
                {"rsa-trad.key", 0, TLS_KEY_RSA, "ossl-leaf.pem"}, /* PKCS#1 */
                {"enc.key", -ENOTSUP, TLS_KEY_NONE, NULL},         /* encrypted PKCS#8 */
                {"root.pem", -EBADMSG, TLS_KEY_NONE, NULL},        /* a certificate is not a key */
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_buf_ struct buf pem = BUF_INIT(1u << 20, 0), cpem = BUF_INIT(1u << 20, 0);
                _cleanup_(tls_key_freep) struct tls_key *k = NULL;
                _cleanup_tls_cert_ struct tls_cert c = {};
                (void) read_file(keys[i].file, &pem);
                is_int(tls_key_import_pem(pem.data, pem.len, &k), keys[i].want, "import %s",
                       keys[i].file);
                if (keys[i].want < 0)
                        continue;
                is_int(tls_key_get_type(k), keys[i].type, "%s: type %s", keys[i].file,
                       tls_key_type_to_string(keys[i].type));
                ok(read_file(keys[i].cert, &cpem) == 0 &&
                           tls_cert_decode_pem(cpem.data, cpem.len, &c) == 0,
                   "%s decodes", keys[i].cert);
                is_int(tls_key_matches_cert(k, c.der, c.len), 1, "%s matches %s", keys[i].file,
                       keys[i].cert);
        }

        _cleanup_buf_ struct buf rpem = BUF_INIT(1u << 20, 0), ipem = BUF_INIT(1u << 20, 0),
                                 lpem = BUF_INIT(1u << 20, 0), csr = BUF_INIT(1u << 20, 0),
                                 chain = BUF_INIT(1u << 20, 0);
        ok(read_file("root.pem", &rpem) == 0 && read_file("int.pem", &ipem) == 0 &&
                   read_file("ossl-leaf.pem", &lpem) == 0 && read_file("rsa.csr", &csr) == 0,
           "read openssl's PEMs");

        _cleanup_tls_cert_ struct tls_cert lc = {};
        _cleanup_tls_cert_info_ struct tls_cert_info li = {};
        ok(tls_cert_decode_pem(lpem.data, lpem.len, &lc) == 0 && tls_cert_inspect(&lc, &li) == 0,
           "inspect openssl's leaf");
        is_str(li.subject_cn, "ossl-leaf", "subject CN");
        is_str(li.subject_o, "acme", "subject O");
        is_str(li.issuer_cn, "ossl-int", "issuer CN");
        is_str(li.serial_hex, "0123456789", "serial");
        is_int(li.key_type, TLS_KEY_RSA, "RSA key");
        is_int(li.ext_key_usage, TLS_USAGE_SERVER, "EKU serverAuth");
        is_int(li.key_usage, TLS_KU_DIGITAL_SIGNATURE | TLS_KU_KEY_ENCIPHERMENT, "KU");
        ok(li.san.n_dns == 1 && strcmp(li.san.dns[0], "leaf.example") == 0 && li.san.n_ip == 1 &&
                   strcmp(li.san.ip[0], "10.0.0.1") == 0 && li.san.n_uri == 1 &&
                   strcmp(li.san.uri[0], "https://x.example/") == 0,
           "SANs");
        ok(li.not_after - li.not_before == 10 * 86400, "10 days of validity");
        ok(!li.is_ca, "not a CA");

        _cleanup_tls_csr_info_ struct tls_csr_info ci = {};
        is_int(tls_csr_parse_pem(csr.data, csr.len, &ci), 0, "openssl's RSA CSR parses");
        ok(strcmp(ci.subject_cn, "ossl-leaf") == 0 && strcmp(ci.subject_o, "acme") == 0 &&
                   ci.key_type == TLS_KEY_RSA && ci.san.n_dns == 1 && ci.san.n_ip == 1,
           "its CN, O, key type and SANs");

        /* Chains: leaf + intermediate against the root, in both orders of intermediates. */
        ok(buf_append(&chain, lpem.data, lpem.len) == 0 &&
                   buf_append(&chain, ipem.data, ipem.len) == 0,
           "chain leaf + intermediate");
        is_int(tls_verify_pem(rpem.data, rpem.len, chain.data, chain.len, later, TLS_USAGE_SERVER),
               0, "openssl chain verifies through its intermediate");
        is_int(tls_verify_pem(rpem.data, rpem.len, lpem.data, lpem.len, later, 0), -EPERM,
               "without the intermediate: untrusted");
        is_int(tls_verify_pem(ipem.data, ipem.len, lpem.data, lpem.len, later, 0), 0,
               "intermediate as the anchor: trusted");
        _cleanup_buf_ struct buf child = BUF_INIT(1u << 20, 0);
        ok(read_file("child.pem", &child) == 0 && buf_append(&child, lpem.data, lpem.len) == 0 &&
                   buf_append(&child, ipem.data, ipem.len) == 0,
           "chain child <- leaf (CA:FALSE) <- intermediate");
        is_int(tls_verify_pem(rpem.data, rpem.len, child.data, child.len, later, 0), -EPERM,
               "a CA:FALSE certificate cannot act as an intermediate");
        buf_reset(&out);
        ok(OPENSSL(&out, "verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "-untrusted",
                   "ossl-leaf.pem", "child.pem") != 0,
           "openssl agrees");
        struct tls_cert *certs = NULL;
        size_t n = 0;
        is_int(tls_cert_decode_bundle(chain.data, chain.len, &certs, &n), 0, "decode the chain");
        is_int((long long) n, 2, "two certificates");
        tls_cert_array_free(certs, n);

        /* A leaf we issue from openssl's intermediate (EC, has an SKI) and RSA CSR. */
        _cleanup_(tls_key_freep) struct tls_key *ik = NULL;
        _cleanup_buf_ struct buf ikpem = BUF_INIT(1u << 20, 0);
        _cleanup_tls_cert_ struct tls_cert ic = {}, ours = {};
        ok(read_file("int.key", &ikpem) == 0 &&
                   tls_key_import_pem(ikpem.data, ikpem.len, &ik) == 0 &&
                   tls_cert_decode_pem(ipem.data, ipem.len, &ic) == 0,
           "load openssl's intermediate and key");
        struct tls_cert_params p = {.common_name = "ours",
                                    .not_before = now,
                                    .not_after = now + 86400,
                                    .usage = TLS_USAGE_CLIENT};
        is_int(tls_cert_issue(ik, &ic, ci.spki, ci.spki_len, &p, &ours), 0,
               "issue for an RSA CSR from openssl's intermediate");
        ok(cert_pem_file("ours.pem", &ours) == 0, "written");
        buf_reset(&out);
        is_int(OPENSSL(&out, "verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "ours.pem"),
               0, "openssl verifies our leaf through its intermediate");
        _cleanup_buf_ struct buf opem = BUF_INIT(1u << 20, 0);
        ok(tls_cert_encode_pem(&ours, &opem) == 0 && buf_append(&opem, ipem.data, ipem.len) == 0,
           "our leaf + intermediate");
        is_int(tls_verify_pem(rpem.data, rpem.len, opem.data, opem.len, later, TLS_USAGE_CLIENT), 0,
               "and so do we");

        /* TLS contexts (what http.c installs). */
        void *ctx = NULL;
        _cleanup_buf_ struct buf bundle = BUF_INIT(1u << 20, 0), key = BUF_INIT(1u << 20, 0),
                                 rsakey = BUF_INIT(1u << 20, 0);
        ok(tls_client_ctx_new(&ctx) == 0, "a client context");
        ok(buf_append_str(&bundle, "junk text\n") == 0 &&
                   buf_append(&bundle, rpem.data, rpem.len) == 0 &&
                   buf_append(&bundle, lpem.data, lpem.len) == 0 &&
                   buf_append(&bundle, ipem.data, ipem.len) == 0,
           "bundle: text, root, a leaf (not a CA), intermediate");
        is_int(tls_ctx_load_ca_pem(ctx, bundle.data, bundle.len), 3,
               "three certificates added (a leaf too, like openssl's CAfile)");
        is_int(tls_ctx_load_ca_pem(ctx, "garbage", 7), -EBADMSG, "no certificate: -EBADMSG");
        static const char bad_der[] = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n"
                                      "-----END CERTIFICATE-----\n";
        is_int(tls_ctx_load_ca_pem(ctx, bad_der, strlen(bad_der)), -EBADMSG,
               "only an unparsable certificate: -EBADMSG");
        static const char key_only[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                       "-----END PRIVATE KEY-----\n";
        is_int(tls_ctx_load_ca_pem(ctx, key_only, strlen(key_only)), -EBADMSG,
               "no CERTIFICATE block: -EBADMSG");
        ok(read_file("int.key", &key) == 0 && read_file("rsa.key", &rsakey) == 0, "keys");
        is_int(tls_ctx_use_client_cert_pem(ctx, ipem.data, ipem.len, key.data, key.len), 0,
               "client cert + matching key installed");
        is_int(tls_ctx_use_client_cert_pem(ctx, ipem.data, ipem.len, rsakey.data, rsakey.len),
               -EBADMSG, "mismatched key: -EBADMSG");
        is_int(tls_ctx_use_client_cert_pem(ctx, chain.data, chain.len, rsakey.data, rsakey.len), 0,
               "a chain (leaf + intermediate) with its RSA key");
        is_int(tls_ctx_use_client_cert_pem(ctx, "x", 1, key.data, key.len), -EBADMSG,
               "garbage certificate: -EBADMSG");
        tls_ctx_free(ctx);
}

/* ---- malformed input ----------------------------------------------------------------------- */

static char *truncated(const struct buf *b, size_t n) {
        return strndup(b->data, MIN(n, b->len));
}

static void test_malformed(void) {
        _cleanup_buf_ struct buf cert = BUF_INIT(1u << 20, 0), csr = BUF_INIT(1u << 20, 0),
                                 key = BUF_INIT(1u << 20, BUF_SECURE);
        _cleanup_(tls_key_freep) struct tls_key *k = NULL;
        ok(tls_cert_encode_pem(&ca_cert, &cert) == 0 && tls_key_generate(&k) == 0 &&
                   tls_csr_create(k, "m", NULL, NULL, &csr) == 0 &&
                   tls_key_export_pem(k, &key) == 0,
           "valid inputs to break");

        _cleanup_free_ char *cert_half = truncated(&cert, cert.len / 2);
        _cleanup_free_ char *cert_noend = truncated(&cert, cert.len - 10);
        _cleanup_free_ char *csr_half = truncated(&csr, csr.len / 2);
        _cleanup_free_ char *key_half = truncated(&key, key.len / 2);
        _cleanup_free_ char *badb64 = strdup(cert.data);
        badb64[40] = '!';
        _cleanup_free_ char *wrong_end = strdup(cert.data);
        memcpy(strstr(wrong_end, "-----END ") + 9, "XERTIFICATE", 11);
        _cleanup_free_ char *tampered = strdup(csr.data);
        char *end = strstr(tampered, "-----END");
        char *t = end - 12; /* inside the signature, before the final quad */
        *t = *t == 'A' ? 'B' : 'A';
        _cleanup_free_ char *huge = malloc(TLS_MAX_PEM + 2);
        memset(huge, 'A', TLS_MAX_PEM + 1);
        huge[TLS_MAX_PEM + 1] = '\0';
        static const char bad_padding[] = "-----BEGIN CERTIFICATE-----\nMB=\n"
                                          "-----END CERTIFICATE-----\n";
        static const char noncanon[] = "-----BEGIN CERTIFICATE-----\nMAB=\n"
                                       "-----END CERTIFICATE-----\n";
        static const char inner_garbage[] = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n"
                                            "-----END CERTIFICATE-----\n";
        static const char huge_len[] = "-----BEGIN CERTIFICATE-----\nMIT/////AAAA\n"
                                       "-----END CERTIFICATE-----\n";
        static const char proc_type[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                        "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n"
                                        "-----END EC PRIVATE KEY-----\n";
        static const char empty_body[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";

        enum { CERT, KEY, CSR, PUB };
        struct {
                int api;
                const char *name;
                const char *in;
                size_t len; /* 0: strlen */
                int want;
        } cases[] = {
                {CERT, "empty", "", 0, -EINVAL},
                {CERT, "no PEM at all", "hello", 0, -EBADMSG},
                {CERT, "truncated half way", cert_half, 0, -EBADMSG},
                {CERT, "END line cut", cert_noend, 0, -EBADMSG},
                {CERT, "bad base64 character", badb64, 0, -EBADMSG},
                {CERT, "END label differs", wrong_end, 0, -EBADMSG},
                {CERT, "bad padding", bad_padding, 0, -EBADMSG},
                {CERT, "non-canonical base64 bits", noncanon, 0, -EBADMSG},
                {CERT, "base64 of garbage", inner_garbage, 0, -EBADMSG},
                {CERT, "DER length beyond the data", huge_len, 0, -EBADMSG},
                {CERT, "empty body", empty_body, 0, -EBADMSG},
                {CERT, "a key is not a certificate", key.data, key.len, -EBADMSG},
                {CERT, "a CSR is not a certificate", csr.data, csr.len, -EBADMSG},
                {CERT, "over TLS_MAX_PEM", huge, TLS_MAX_PEM + 1, -E2BIG},
                {KEY, "empty", "", 0, -EINVAL},
                {KEY, "truncated key", key_half, 0, -EBADMSG},
                {KEY, "certificate as key", cert.data, cert.len, -EBADMSG},
                {KEY, "encrypted legacy PEM", proc_type, 0, -ENOTSUP},
                {KEY, "base64 of garbage", inner_garbage, 0, -EBADMSG},
                {KEY, "two keys", NULL, 0, -EBADMSG},
                {CSR, "truncated CSR", csr_half, 0, -EBADMSG},
                {CSR, "tampered signature", tampered, 0, -EBADMSG},
                {CSR, "certificate as CSR", cert.data, cert.len, -EBADMSG},
                {CSR, "garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 0, -EBADMSG},
                {PUB, "certificate as public key", cert.data, cert.len, -EBADMSG},
                {PUB, "garbage", "\x01\x02\x03", 0, -EBADMSG},
        };
        _cleanup_buf_ struct buf two = BUF_INIT(1u << 20, BUF_SECURE);
        (void) buf_append(&two, key.data, key.len);
        (void) buf_append(&two, key.data, key.len);
        cases[19].in = two.data;
        cases[19].len = two.len;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
                int r;
                switch (cases[i].api) {
                case CERT: {
                        struct tls_cert c = {};
                        r = tls_cert_decode_pem(cases[i].in, len, &c);
                        ok(c.der == NULL, "cert: %s: no output", cases[i].name);
                        tls_cert_done(&c);
                        break;
                }
                case KEY: {
                        struct tls_key *kk = NULL;
                        r = tls_key_import_pem(cases[i].in, len, &kk);
                        ok(kk == NULL, "key: %s: no output", cases[i].name);
                        tls_key_free(kk);
                        break;
                }
                case CSR: {
                        struct tls_csr_info ci = {};
                        r = tls_csr_parse_pem(cases[i].in, len, &ci);
                        ok(ci.spki == NULL, "csr: %s: no output", cases[i].name);
                        tls_csr_info_done(&ci);
                        break;
                }
                default: {
                        _cleanup_buf_ struct buf d = BUF_INIT(1u << 16, 0);
                        r = tls_public_key_pem_to_der(cases[i].in, len, &d);
                        ok(d.len == 0, "pub: %s: no output", cases[i].name);
                        break;
                }
                }
                is_int(r, cases[i].want, "%s: %s",
                       cases[i].api == CERT  ? "cert"
                       : cases[i].api == KEY ? "key"
                       : cases[i].api == CSR ? "csr"
                                             : "pub",
                       cases[i].name);
        }

        /* Bundle limits. */
        _cleanup_buf_ struct buf many = BUF_INIT(TLS_MAX_PEM, 0);
        for (size_t i = 0; i <= TLS_MAX_BUNDLE_CERTS; i++)
                (void) buf_append(&many, cert.data, cert.len);
        struct tls_cert *certs = NULL;
        size_t n = 0;
        is_int(tls_cert_decode_bundle(many.data, many.len, &certs, &n), -E2BIG,
               "65 certificates in a chain: -E2BIG");
        is_int(tls_cert_decode_pem(many.data, many.len, &(struct tls_cert){}), -EBADMSG,
               "two certificates where one is expected: -EBADMSG");
        many.len -= cert.len;
        is_int(tls_cert_decode_bundle(many.data, many.len, &certs, &n), 0, "64 are accepted");
        is_int((long long) n, TLS_MAX_BUNDLE_CERTS, "all 64 decoded");
        tls_cert_array_free(certs, n);

        /* Re-encoding gives the same text (64-column lines). */
        _cleanup_tls_cert_ struct tls_cert c = {};
        _cleanup_buf_ struct buf again = BUF_INIT(1u << 20, 0);
        ok(tls_cert_decode_pem(cert.data, cert.len, &c) == 0 &&
                   tls_cert_encode_pem(&c, &again) == 0,
           "decode + encode");
        is_str(buf_cstr(&again), buf_cstr(&cert), "PEM round trip is byte-identical");
}

/* ---- expiry helpers ------------------------------------------------------------------------ */

static void test_expiry(void) {
        struct tls_cert_info i = {.not_before = 1000, .not_after = 1000 + 100 * 86400};
        struct {
                int64_t now;
                unsigned percent;
                bool want;
        } cases[] = {
                {1000, 30, false},
                {1000 + 69 * 86400, 30, false},
                {1000 + 70 * 86400 + 1, 30, true},
                {1000 + 99 * 86400, 0, false},
                {1000 + 100 * 86400, 30, true}, /* at notAfter */
                {999, 30, true},                /* not yet valid */
                {1000 + 50 * 86400, 100, true},
                {1000 + 50 * 86400, 50, false},
                {1000 + 50 * 86400 + 1, 50, true},
        };
        for (size_t k = 0; k < ELEMENTSOF(cases); k++)
                is_int(tls_cert_needs_renewal(&i, cases[k].now, cases[k].percent), cases[k].want,
                       "needs_renewal(now=%lld, %u%%)", (long long) cases[k].now, cases[k].percent);
        is_int(tls_cert_seconds_left(&i, 1000), 100 * 86400, "seconds left at notBefore");
        is_int(tls_cert_seconds_left(&i, 1000 + 101 * 86400), -86400, "negative when expired");
}

int main(void) {
        struct secmem_report before, after;

        now = (int64_t) time(NULL);
        if (!mkdtemp(workdir)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        secmem_report(&before);
        test_keys();
        test_ca();
        test_csr_and_leaf();
        test_openssl_material();
        test_malformed();
        test_expiry();
        tls_key_free(ca_key);
        tls_key_free(ca2_key);
        tls_cert_done(&ca_cert);
        tls_cert_done(&ca2_cert);
        secmem_report(&after);
        is_int((long long) after.regions, (long long) before.regions,
               "every secure region was released");
        rm_workdir();
        ok(access(workdir, F_OK) < 0, "work directory removed");
        return tap_done();
}
