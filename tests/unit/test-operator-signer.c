/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for operator/signer: the CA key in its own process. Every signer here runs with
 * SIGNER_KILL_ON_VIOLATION, so a syscall missing from its allow-list kills it (SIGSYS) and the
 * next request fails with -EPIPE.
 *   - a leaf issued for a public key verifies with tls_verify and `openssl verify`, with the
 *     SANs, usage and validity asked for, and is never a CA;
 *   - validity is clamped to the CA's own and to SIGNER_MAX_LIFETIME; an empty window is -ERANGE;
 *   - ISSUE_CSR takes the CSR's key only (names from the request), refuses a bad self-signature;
 *   - malformed, oversized and over-limit requests (raw datagrams, as a compromised parent would
 *     send them) get an error and the signer survives;
 *   - LOAD_CA swaps the CA; a leaf or a mismatched key is refused and the old CA stays;
 *   - the child is hardened: Seccomp 2, NoNewPrivs 1, no capabilities, core size 0, fds 0-3;
 *   - the child dies with its parent (a forked sub-parent), and leaves on signer_free();
 *   - after the handover the key PEM buffer is wiped and the key's text is nowhere in the
 *     parent's readable memory (scanned through /proc/self/mem, with a positive control);
 *   - several threads issue at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "operator/signer.h"
#include "tests/tap.h"

#define DAY 86400LL
#define FLAGS SIGNER_KILL_ON_VIOLATION

static char workdir[] = "/tmp/ct-signer.XXXXXX";
static int64_t now;

struct ca {
        struct buf key_pem; /* BUF_SECURE */
        struct buf cert_pem;
        struct tls_cert cert;
        int64_t not_before, not_after;
};

static int make_ca(struct ca *ca, const char *cn, int64_t nb, int64_t na) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        struct tls_cert_params p = {
                .common_name = cn, .not_before = nb, .not_after = na, .path_len = 0};
        int r;

        ca->key_pem = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        ca->cert_pem = BUF_INIT(TLS_MAX_PEM, 0);
        ca->not_before = nb;
        ca->not_after = na;
        if ((r = tls_key_generate(&k)) < 0 || (r = tls_cert_create_ca(k, &p, &ca->cert)) < 0 ||
            (r = tls_key_export_pem(k, &ca->key_pem)) < 0 ||
            (r = tls_cert_encode_pem(&ca->cert, &ca->cert_pem)) < 0)
                return r;
        return 0;
}

static void ca_done(struct ca *ca) {
        buf_done(&ca->key_pem);
        buf_done(&ca->cert_pem);
        tls_cert_done(&ca->cert);
}

/* A fresh key pair's SPKI DER (the key itself is dropped: the CA signs public keys). */
static int make_spki(struct buf *out) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        int r = tls_key_generate(&k);
        return r < 0 ? r : tls_key_public_der(k, out);
}

static const char *const leaf_dns[] = {"webhook", "webhook.cloudtaser-system.svc"};
static const char *const leaf_ip[] = {"10.0.0.7"};

static struct signer_leaf leaf(int64_t nb, int64_t na, unsigned usage) {
        return (struct signer_leaf){
                .common_name = "webhook",
                .san = {.dns = leaf_dns, .n_dns = 2, .ip = leaf_ip, .n_ip = 1},
                .not_before = nb,
                .not_after = na,
                .usage = usage,
        };
}

static int write_file(const char *name, const void *p, size_t n) {
        char path[256];
        (void) snprintf(path, sizeof(path), "%s/%s", workdir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return write(fd, p, n) == (ssize_t) n ? 0 : -EIO;
}

/* `openssl verify -CAfile ca.pem -purpose P leaf.pem` in workdir: its exit status. */
static int openssl_verify(const char *purpose) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir(workdir) < 0)
                        _exit(127);
                execlp("openssl", "openssl", "verify", "-x509_strict", "-CAfile", "ca.pem",
                       "-purpose", purpose, "leaf.pem", (char *) NULL);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool has_name(char **v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

/* A "Key:\tvalue" line of /proc/<pid>/<file>, as text. */
static bool proc_field(pid_t pid, const char *file, const char *key, char *out, size_t outlen) {
        char path[64], text[8192];
        (void) snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, text, sizeof(text) - 1);
        if (n <= 0)
                return false;
        text[n] = '\0';
        size_t klen = strlen(key);
        for (char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, klen) != 0)
                        continue;
                p += klen;
                p += strspn(p, ":\t ");
                size_t l = strcspn(p, "\n");
                (void) snprintf(out, outlen, "%.*s", (int) l, p);
                return true;
        }
        return false;
}

/* ---- scanning our own memory for the key's text --------------------------------------------- */

/* Whether the bytes of needle (stored XOR 0x5a, so that the needle itself is not a match) occur
 * in any readable private or anonymous mapping of this process. Read through /proc/self/mem, so
 * that guard pages and sanitizer redzones are no obstacle (unreadable ranges are skipped). */
static int memory_contains(const uint8_t *xored, size_t n) {
        FILE *maps = fopen("/proc/self/maps", "re");
        if (!maps)
                return -errno;
        int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
        if (mem < 0) {
                fclose(maps);
                return -errno;
        }
        static uint8_t chunk[1 << 16];
        char line[512];
        int found = 0;
        while (!found && fgets(line, sizeof(line), maps)) {
                unsigned long lo, hi;
                char perms[8];
                if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
                    perms[1] != 'w' || strstr(line, "[vvar]"))
                        continue;
                /* Mappings over 256 MiB are the sanitizer's shadow and reserved allocator
                 * space (NORESERVE, mostly untouched); our heap, stacks and data are smaller. */
                if (hi - lo > (256ul << 20))
                        continue;
                for (unsigned long at = lo; !found && at < hi;) {
                        size_t want = MIN(sizeof(chunk), hi - at);
                        ssize_t got = pread(mem, chunk, want, (off_t) at);
                        if (got <= (ssize_t) n) {
                                at += want;
                                continue;
                        }
                        const uint8_t first = xored[0] ^ 0x5a;
                        for (size_t i = 0; i + n <= (size_t) got && !found; i++) {
                                const uint8_t *hit =
                                        memchr(chunk + i, first, (size_t) got - n + 1 - i);
                                if (!hit)
                                        break;
                                i = (size_t) (hit - chunk);
                                size_t j = 0;
                                while (j < n && (chunk[i + j] ^ 0x5a) == xored[j])
                                        j++;
                                /* A match inside our own chunk buffer is a copy of a copy. */
                                uintptr_t a = (uintptr_t) at + i, c = (uintptr_t) chunk;
                                if (j == n && (a + n <= c || a >= c + sizeof(chunk)))
                                        found = 1;
                        }
                        /* Overlap so that a match across two chunks is seen. */
                        at += (size_t) got - n + 1;
                }
        }
        close(mem);
        fclose(maps);
        return found;
}

/* The middle base64 line of a PEM, XORed with 0x5a. */
static size_t key_needle(const struct buf *pem, uint8_t *out, size_t max) {
        const char *p = strchr(pem->data, '\n');
        if (!p)
                return 0;
        p = strchr(p + 1, '\n'); /* the second base64 line: pure private-key material */
        if (!p)
                return 0;
        p++;
        size_t n = MIN(strcspn(p, "\n"), max);
        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) p[i] ^ 0x5a;
        return n;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_issue(struct signer *s, const struct ca *ca) {
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        _cleanup_buf_ struct buf pem = BUF_INIT(TLS_MAX_PEM, 0);
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        struct signer_leaf l = leaf(now - 60, now + 30 * DAY, TLS_USAGE_SERVER);

        ok(make_spki(&spki) == 0, "a public key to certify");
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), 0,
               "ISSUE: a leaf for the public key");
        is_int(tls_verify_certs(&ca->cert, 1, &cert, 1, now, TLS_USAGE_SERVER), 0,
               "tls_verify: the leaf chains to the CA for serverAuth");
        is_int(tls_verify_certs(&ca->cert, 1, &cert, 1, now, TLS_USAGE_CLIENT), -EPERM,
               "tls_verify: not for clientAuth (usage server only)");
        is_int(tls_cert_inspect(&cert, &info), 0, "the leaf inspects");
        ok(!info.is_ca && info.path_len == -1, "the leaf is not a CA, no pathLen");
        ok(info.has_key_usage && !(info.key_usage & TLS_KU_KEY_CERT_SIGN),
           "keyUsage without keyCertSign");
        ok(info.has_ext_key_usage && info.ext_key_usage == TLS_USAGE_SERVER, "EKU serverAuth");
        is_str(info.subject_cn, "webhook", "subject CN");
        is_str(info.issuer_cn, "cloudtaser test CA", "issuer is the CA");
        ok(info.san.n_dns == 2 && has_name(info.san.dns, info.san.n_dns, leaf_dns[0]) &&
                   has_name(info.san.dns, info.san.n_dns, leaf_dns[1]),
           "both DNS SANs");
        ok(info.san.n_ip == 1 && strcmp(info.san.ip[0], "10.0.0.7") == 0, "the IP SAN");
        is_int(info.not_before, now - 60, "not_before as asked (within the CA)");
        is_int(info.not_after, now + 30 * DAY, "not_after as asked (within the CA)");

        ok(tls_cert_encode_pem(&cert, &pem) == 0 &&
                   write_file("leaf.pem", pem.data, pem.len) == 0 &&
                   write_file("ca.pem", ca->cert_pem.data, ca->cert_pem.len) == 0,
           "leaf and CA written for openssl");
        is_int(openssl_verify("sslserver"), 0,
               "openssl verify -purpose sslserver accepts the leaf");
        is_int(openssl_verify("sslclient") != 0, 1, "openssl verify -purpose sslclient refuses it");

        /* Both usages. */
        tls_cert_done(&cert);
        l.usage = TLS_USAGE_SERVER | TLS_USAGE_CLIENT;
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), 0,
               "ISSUE with usage both");
        ok(tls_verify_certs(&ca->cert, 1, &cert, 1, now, TLS_USAGE_SERVER) == 0 &&
                   tls_verify_certs(&ca->cert, 1, &cert, 1, now, TLS_USAGE_CLIENT) == 0,
           "usage both: serverAuth and clientAuth");

        /* The CA certificate. */
        _cleanup_tls_cert_ struct tls_cert pub = {};
        is_int(signer_ca_cert(s, &pub), 0, "PUBLIC: the CA certificate");
        ok(pub.len == ca->cert.len && memcmp(pub.der, ca->cert.der, pub.len) == 0,
           "PUBLIC returns the CA's DER");
}

static void test_validity(struct signer *s, const struct ca *ca) {
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        const struct {
                const char *name;
                int64_t nb, na, want_nb, want_na;
                int want;
        } cases[] = {
                {"after the CA's not_after: clamped to it", ca->not_after - 10 * DAY,
                 ca->not_after + 400 * DAY, ca->not_after - 10 * DAY, ca->not_after, 0},
                {"before the CA's not_before: raised to it", ca->not_before - 100 * DAY,
                 ca->not_before + DAY, ca->not_before, ca->not_before + DAY, 0},
                {"longer than SIGNER_MAX_LIFETIME: shortened", now, now + 5 * 365 * DAY, now,
                 now + SIGNER_MAX_LIFETIME, 0},
                {"entirely after the CA: refused", ca->not_after + DAY, ca->not_after + 2 * DAY, 0,
                 0, -ERANGE},
                {"entirely before the CA: refused", ca->not_before - 3 * DAY,
                 ca->not_before - 2 * DAY, 0, 0, -ERANGE},
                {"not_after before not_before: refused", now + DAY, now, 0, 0, -ERANGE},
                {"extreme values: refused, no overflow", INT64_MAX - 5, INT64_MAX, 0, 0, -ERANGE},
        };

        ok(make_spki(&spki) == 0, "a public key");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_tls_cert_ struct tls_cert cert = {};
                _cleanup_tls_cert_info_ struct tls_cert_info info = {};
                struct signer_leaf l = leaf(cases[i].nb, cases[i].na, TLS_USAGE_CLIENT);
                int r = signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert);
                if (!is_int(r, cases[i].want, "validity %s", cases[i].name) || r < 0)
                        continue;
                ok(tls_cert_inspect(&cert, &info) == 0 && info.not_before == cases[i].want_nb &&
                           info.not_after == cases[i].want_na,
                   "validity %s: [%lld, %lld]", cases[i].name, (long long) info.not_before,
                   (long long) info.not_after);
                ok(info.not_after <= ca->not_after && info.not_before >= ca->not_before,
                   "validity %s: within the CA's", cases[i].name);
        }
}

static void test_csr(struct signer *s, const struct ca *ca) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        _cleanup_buf_ struct buf csr = BUF_INIT(TLS_MAX_PEM, 0);
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        static const char *const asked[] = {"evil.example.com"};
        static const char *const uri[] = {"spiffe://cluster.local/ns/team-a/pod/web-0"};
        struct tls_san csr_san = {.dns = asked, .n_dns = 1};
        struct signer_leaf l = {
                .common_name = "web-0",
                .san = {.uri = uri, .n_uri = 1},
                .not_before = now,
                .not_after = now + DAY,
                .usage = TLS_USAGE_CLIENT,
        };

        ok(tls_key_generate(&k) == 0 && tls_csr_create(k, "admin", NULL, &csr_san, &csr) == 0,
           "a CSR asking for CN admin and evil.example.com");
        is_int(signer_issue_csr(s, csr.data, csr.len, &l, &cert), 0, "ISSUE_CSR: a client leaf");
        is_int(tls_key_matches_cert(k, cert.der, cert.len), 1, "the leaf is for the CSR's key");
        ok(tls_cert_inspect(&cert, &info) == 0 && strcmp(info.subject_cn, "web-0") == 0 &&
                   info.san.n_dns == 0 && info.san.n_uri == 1 &&
                   strcmp(info.san.uri[0], uri[0]) == 0,
           "names are the request's, not the CSR's");
        is_int(tls_verify_certs(&ca->cert, 1, &cert, 1, now + 60, TLS_USAGE_CLIENT), 0,
               "the client leaf verifies");

        /* A CSR whose self-signature does not match: one byte of its base64 changed. */
        char *mid = csr.data + csr.len / 2;
        *mid = *mid == 'A' ? 'B' : 'A';
        _cleanup_tls_cert_ struct tls_cert bad = {};
        is_int(signer_issue_csr(s, csr.data, csr.len, &l, &bad), -EBADMSG,
               "ISSUE_CSR: a tampered CSR is refused");
        is_int(signer_issue_csr(s, "junk", 4, &l, &bad), -EBADMSG, "ISSUE_CSR: junk is refused");
}

/* A raw ISSUE message with the given extra TLVs appended. */
static size_t raw_issue(uint8_t *m, size_t max, const struct buf *spki, const char *dns,
                        const uint8_t *extra, size_t n_extra) {
        _cleanup_buf_ struct buf b = BUF_INIT(SIGNER_MAX_MSG * 2, 0);
        struct signer_request *q = calloc(1, sizeof(*q));
        if (!q)
                return 0;
        q->op = SIGNER_OP_ISSUE;
        q->spki = (const uint8_t *) spki->data;
        q->spki_len = spki->len;
        q->has_cn = true;
        (void) snprintf(q->cn, sizeof(q->cn), "x");
        q->n_dns = 1;
        (void) snprintf(q->dns[0], sizeof(q->dns[0]), "%s", dns);
        q->has_not_before = q->has_not_after = q->has_usage = true;
        q->not_before = now;
        q->not_after = now + DAY;
        q->usage = TLS_USAGE_SERVER;
        int r = signer_request_encode(q, &b);
        free(q);
        if (r < 0 || b.len + n_extra > max)
                return 0;
        memcpy(m, b.data, b.len);
        if (n_extra)
                memcpy(m + b.len, extra, n_extra);
        return b.len + n_extra;
}

static void test_malformed(struct signer *s) {
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        static uint8_t m[SIGNER_MAX_MSG * 2];
        pid_t pid = signer_pid(s);
        size_t n;

        ok(make_spki(&spki) == 0, "a public key");
        n = raw_issue(m, sizeof(m), &spki, "ok.example", NULL, 0);
        is_int(signer_raw(s, m, n), 0, "raw: a well-formed ISSUE is accepted");

        /* A basicConstraints / CA request has no field: an unknown tag is a protocol error. */
        static const uint8_t ca_flag[] = {0, 13, 0, 1, 1};
        n = raw_issue(m, sizeof(m), &spki, "ok.example", ca_flag, sizeof(ca_flag));
        is_int(signer_raw(s, m, n), -EPROTO, "raw: a 'CA' field (unknown tag) is refused");
        static const uint8_t trunc[] = {0, SIGNER_TAG_DNS, 0, 200, 'a'};
        n = raw_issue(m, sizeof(m), &spki, "ok.example", trunc, sizeof(trunc));
        is_int(signer_raw(s, m, n), -EPROTO, "raw: a truncated field is refused");
        static const uint8_t dup_cn[] = {0, SIGNER_TAG_CN, 0, 1, 'y'};
        n = raw_issue(m, sizeof(m), &spki, "ok.example", dup_cn, sizeof(dup_cn));
        is_int(signer_raw(s, m, n), -EPROTO, "raw: a second CN is refused");
        static const uint8_t key_in_issue[] = {0, SIGNER_TAG_KEY, 0, 1, 'k'};
        n = raw_issue(m, sizeof(m), &spki, "ok.example", key_in_issue, sizeof(key_in_issue));
        is_int(signer_raw(s, m, n), -EPROTO, "raw: a field the operation does not take");
        n = raw_issue(m, sizeof(m), &spki, "*.example", NULL, 0);
        is_int(signer_raw(s, m, n), -EINVAL, "raw: a wildcard DNS name is refused");
        n = raw_issue(m, sizeof(m), &spki, "bad name", NULL, 0);
        is_int(signer_raw(s, m, n), -EINVAL, "raw: a DNS name with a space is refused");
        static const uint8_t nul_dns[] = {0, SIGNER_TAG_DNS, 0, 3, 'a', 0, 'b'};
        n = raw_issue(m, sizeof(m), &spki, "ok.example", nul_dns, sizeof(nul_dns));
        is_int(signer_raw(s, m, n), -EPROTO, "raw: a NUL inside a name is refused");
        static const uint8_t ops[][4] = {{0, 0, 0, 0}, {0, 9, 0, 0}, {0, 3, 0, 1}};
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                is_int(signer_raw(s, ops[i], 4), -EPROTO, "raw: bad header %zu is refused", i);
        is_int(signer_raw(s, (const uint8_t *) "\x00\x01\x00", 3), -EPROTO,
               "raw: a 3-byte message is refused");
        static const uint8_t no_spki[] = {0, SIGNER_OP_ISSUE, 0, 0};
        is_int(signer_raw(s, no_spki, sizeof(no_spki)), -EPROTO,
               "raw: ISSUE without its required fields");
        /* Seventeen DNS names. */
        uint8_t more[17 * 8];
        for (size_t i = 0; i < 16; i++)
                memcpy(more + 8 * i, (const uint8_t[]){0, SIGNER_TAG_DNS, 0, 4, 'a', '.', 'b', 'c'},
                       8);
        n = raw_issue(m, sizeof(m), &spki, "ok.example", more, 16 * 8);
        is_int(signer_raw(s, m, n), -E2BIG, "raw: 17 DNS names are over the limit");
        /* Sixteen long URIs: the request fits, the certificate would not fit in a response. */
        static uint8_t uris[16 * 904];
        for (size_t i = 0; i < 16; i++) {
                uint8_t *u = uris + 904 * i;
                memcpy(u, (const uint8_t[]){0, SIGNER_TAG_URI, 900 >> 8, 900 & 0xff}, 4);
                memset(u + 4, 'a', 900);
                memcpy(u + 4, "urn:", 4);
                u[4 + 899] = (uint8_t) ('a' + i);
        }
        n = raw_issue(m, sizeof(m), &spki, "ok.example", uris, sizeof(uris));
        ok(n > 0 && n <= SIGNER_MAX_MSG, "a request of %zu bytes with 16 URIs of 900 bytes", n);
        is_int(signer_raw(s, m, n), -E2BIG, "raw: a certificate too large to answer: -E2BIG");
        /* Garbage SPKI. */
        _cleanup_buf_ struct buf junk = BUF_INIT(64, 0);
        ok(buf_append_str(&junk, "not a public key") == 0, "junk");
        n = raw_issue(m, sizeof(m), &junk, "ok.example", NULL, 0);
        is_int(signer_raw(s, m, n), -EBADMSG, "raw: a public key that does not parse");
        /* Oversized: over SIGNER_MAX_MSG in one datagram. */
        memset(m, 0, sizeof(m));
        m[1] = SIGNER_OP_PUBLIC;
        is_int(signer_raw(s, m, SIGNER_MAX_MSG + 1), -E2BIG, "raw: an oversized datagram: -E2BIG");
        /* Over-limit through the API: the parent refuses before sending. */
        const char *many[SIGNER_MAX_SANS + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "a.example";
        struct signer_leaf l = leaf(now, now + DAY, TLS_USAGE_SERVER);
        l.san.dns = many;
        l.san.n_dns = ELEMENTSOF(many);
        _cleanup_tls_cert_ struct tls_cert cert = {};
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), -E2BIG,
               "API: too many DNS names");
        l = leaf(now, now + DAY, 4);
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), -EINVAL,
               "API: an unknown usage bit");
        l = leaf(now, now + DAY, TLS_USAGE_SERVER);
        l.san.n_dns = l.san.n_ip = 0;
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), -EINVAL,
               "API: a leaf without any SAN");

        /* Still the same child, still answering. */
        is_int(signer_pid(s), pid, "the signer is the same process");
        ok(kill(pid, 0) == 0, "the signer is alive");
        l = leaf(now, now + DAY, TLS_USAGE_SERVER);
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), 0,
               "the signer still issues after the bad requests");
}

static void test_hardening(struct signer *s) {
        pid_t pid = signer_pid(s);
        char v[128];
        static const char *const zero_caps[] = {"CapInh", "CapPrm", "CapEff", "CapAmb"};

        ok(proc_field(pid, "status", "Seccomp", v, sizeof(v)) && strcmp(v, "2") == 0,
           "child: Seccomp: 2 (got %s)", v);
        ok(proc_field(pid, "status", "NoNewPrivs", v, sizeof(v)) && strcmp(v, "1") == 0,
           "child: NoNewPrivs: 1");
        for (size_t i = 0; i < ELEMENTSOF(zero_caps); i++)
                ok(proc_field(pid, "status", zero_caps[i], v, sizeof(v)) &&
                           strspn(v, "0") == strlen(v),
                   "child: %s is empty (%s)", zero_caps[i], v);
        if (geteuid() == 0)
                ok(proc_field(pid, "status", "CapBnd", v, sizeof(v)) && strspn(v, "0") == strlen(v),
                   "child (root): bounding set empty (%s)", v);
        else
                skip(1, "not root: the bounding set is only dropped with CAP_SETPCAP");
        ok(proc_field(pid, "limits", "Max core file size", v, sizeof(v)) &&
                   strncmp(v, "0                    0", 22) == 0,
           "child: core file size 0 (%s)", v);

        /* The child's fds: 0, 1, 2 and its socket (3), nothing else of ours. */
        char path[64];
        (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        DIR *d = opendir(path);
        if (!d) {
                skip(1, "cannot list the child's fds");
                return;
        }
        unsigned n = 0, bad = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                n++;
                if (strlen(de->d_name) != 1 || de->d_name[0] > '3')
                        bad++;
        }
        closedir(d);
        ok(bad == 0 && n == 4, "child: exactly fds 0-3 open (%u, %u unexpected)", n, bad);
        char want[32];
        (void) snprintf(want, sizeof(want), "%d", (int) getpid());
        ok(proc_field(pid, "status", "PPid", v, sizeof(v)) && strcmp(v, want) == 0,
           "child: its parent is this process");
}

static void test_load_ca(struct signer *s, struct ca *ca1) {
        struct ca ca2 = {}, ca3 = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_tls_cert_ struct tls_cert pub = {};
        struct signer_leaf l = leaf(now, now + DAY, TLS_USAGE_SERVER);

        ok(make_spki(&spki) == 0, "a public key");
        ok(make_ca(&ca2, "cloudtaser test CA 2", now - DAY, now + 365 * DAY) == 0, "a second CA");
        ok(make_ca(&ca3, "cloudtaser test CA 3", now - DAY, now + 365 * DAY) == 0, "a third CA");

        /* A key that is not the certificate's: refused, the old CA stays. */
        is_int(signer_load_ca(s, &ca3.key_pem, ca2.cert_pem.data, ca2.cert_pem.len), -EBADMSG,
               "LOAD_CA: a key that does not match the certificate is refused");
        ok(ca3.key_pem.data == NULL && ca3.key_pem.len == 0, "the refused key's PEM is wiped too");
        ok(signer_ca_cert(s, &pub) == 0 && pub.len == ca1->cert.len &&
                   memcmp(pub.der, ca1->cert.der, pub.len) == 0,
           "after a refused LOAD_CA the first CA stays");
        tls_cert_done(&pub);

        /* A leaf offered as the CA: refused. */
        ok(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert) == 0, "a leaf");
        _cleanup_buf_ struct buf leaf_pem = BUF_INIT(TLS_MAX_PEM, 0);
        _cleanup_buf_ struct buf leaf_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        _cleanup_tls_key_ struct tls_key *lk = NULL;
        ok(tls_key_generate(&lk) == 0 && tls_key_export_pem(lk, &leaf_key) == 0 &&
                   tls_cert_encode_pem(&cert, &leaf_pem) == 0,
           "a leaf's PEM");
        is_int(signer_load_ca(s, &leaf_key, leaf_pem.data, leaf_pem.len), -EINVAL,
               "LOAD_CA: a leaf certificate cannot become the CA");
        tls_cert_done(&cert);

        is_int(signer_load_ca(s, &ca2.key_pem, ca2.cert_pem.data, ca2.cert_pem.len), 0,
               "LOAD_CA: the second CA");
        ok(ca2.key_pem.data == NULL && ca2.key_pem.len == 0, "its key PEM is wiped");
        ok(signer_ca_cert(s, &pub) == 0 && pub.len == ca2.cert.len &&
                   memcmp(pub.der, ca2.cert.der, pub.len) == 0,
           "PUBLIC now returns the second CA");
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), 0,
               "a leaf from the second CA");
        is_int(tls_verify_certs(&ca2.cert, 1, &cert, 1, now + 60, TLS_USAGE_SERVER), 0,
               "it verifies with the second CA");
        is_int(tls_verify_certs(&ca1->cert, 1, &cert, 1, now + 60, TLS_USAGE_SERVER), -EPERM,
               "and not with the first");
        ca_done(&ca2);
        ca_done(&ca3);
}

struct thread_arg {
        struct signer *s;
        const struct ca *ca;
        const struct buf *spki;
        int failures;
};

static void *issuer_thread(void *p) {
        struct thread_arg *a = p;
        for (int i = 0; i < 8; i++) {
                _cleanup_tls_cert_ struct tls_cert cert = {};
                struct signer_leaf l = leaf(now, now + DAY, TLS_USAGE_SERVER);
                if (signer_issue(a->s, (const uint8_t *) a->spki->data, a->spki->len, &l, &cert) <
                            0 ||
                    tls_verify_certs(&a->ca->cert, 1, &cert, 1, now + 1, TLS_USAGE_SERVER) < 0)
                        a->failures++;
        }
        return NULL;
}

static void test_threads(struct signer *s, const struct ca *ca) {
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        pthread_t t[4];
        struct thread_arg a[4];
        int failures = 0;

        ok(make_spki(&spki) == 0, "a public key");
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                a[i] = (struct thread_arg){.s = s, .ca = ca, .spki = &spki};
                if (pthread_create(&t[i], NULL, issuer_thread, &a[i]) != 0)
                        a[i].failures = 100;
        }
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                if (a[i].failures != 100)
                        pthread_join(t[i], NULL);
                failures += a[i].failures;
        }
        is_int(failures, 0, "4 threads x 8 leaves at once: every one issued and valid");
}

/* The signer dies with its parent: a sub-parent starts one, reports its pid and dies. This
 * process is the subreaper, so the orphaned signer becomes our child and its end is observed
 * with waitpid (an event, bounded by an alarm as a generous deadline). */
#define DEADLINE_SECONDS 60

static void on_alarm(int sig) {
        (void) sig;
}

static void test_parent_death(void) {
        int p[2];
        pid_t signer_child = -1;

        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 || pipe2(p, O_CLOEXEC) < 0) {
                ok(false, "subreaper and pipe: %s", strerror(errno));
                return;
        }
        fflush(stdout);
        pid_t sub = fork();
        if (sub == 0) {
                close(p[0]);
                /* A CA of its own: our secure pages are MADV_DONTFORK, absent in a child. */
                struct ca own = {};
                struct signer *s = NULL;
                if (make_ca(&own, "sub-parent CA", now - DAY, now + DAY) < 0 ||
                    signer_start(&own.key_pem, own.cert_pem.data, own.cert_pem.len, FLAGS, &s) < 0)
                        _exit(1);
                /* A holder process keeps a copy of the parent's end of the socket open, so the
                 * signer never sees EOF: only PR_SET_PDEATHSIG can end it. */
                pid_t ids[2] = {signer_pid(s), fork()};
                if (ids[1] == 0) {
                        for (;;)
                                pause();
                }
                (void) !write(p[1], ids, sizeof(ids));
                _exit(0); /* without signer_free() */
        }
        close(p[1]);
        pid_t ids[2] = {-1, -1};
        ok(read(p[0], ids, sizeof(ids)) == sizeof(ids) && ids[0] > 0 && ids[1] > 0,
           "the sub-parent started a signer (and a holder of its socket)");
        signer_child = ids[0];
        close(p[0]);
        int st = 0;
        ok(waitpid(sub, &st, 0) == sub && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "the sub-parent exited");
        if (signer_child <= 0)
                return;
        /* A generous deadline: SIGALRM interrupts the wait (no SA_RESTART), which then fails. */
        struct sigaction sa = {.sa_handler = on_alarm}, old;
        (void) sigaction(SIGALRM, &sa, &old);
        alarm(DEADLINE_SECONDS);
        pid_t w = waitpid(signer_child, &st, 0);
        alarm(0);
        (void) sigaction(SIGALRM, &old, NULL);
        if (w < 0)
                (void) kill(signer_child, SIGKILL), (void) waitpid(signer_child, NULL, 0);
        ok(w == signer_child, "the orphaned signer ended");
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
           "killed by SIGKILL (PR_SET_PDEATHSIG) (status 0x%x)", (unsigned) st);
        if (ids[1] > 0) {
                (void) kill(ids[1], SIGKILL);
                while (waitpid(ids[1], NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        (void) prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

static void test_no_ca(void) {
        _cleanup_signer_ struct signer *s = NULL;
        _cleanup_buf_ struct buf spki = BUF_INIT(TLS_MAX_DER, 0);
        _cleanup_tls_cert_ struct tls_cert cert = {};
        struct signer_leaf l = leaf(now, now + DAY, TLS_USAGE_SERVER);
        struct buf plain = BUF_INIT(64, 0);

        is_int(signer_start(&plain, "x", 1, FLAGS, &s), -EINVAL,
               "signer_start refuses a key PEM outside secure memory");
        is_int(signer_start(NULL, NULL, 0, FLAGS, &s), 0, "a signer without a CA");
        ok(make_spki(&spki) == 0, "a public key");
        is_int(signer_issue(s, (const uint8_t *) spki.data, spki.len, &l, &cert), -ENOKEY,
               "ISSUE without a CA: -ENOKEY");
        is_int(signer_ca_cert(s, &cert), -ENOKEY, "PUBLIC without a CA: -ENOKEY");
        pid_t pid = signer_pid(s);
        s = signer_free(s);
        ok(kill(pid, 0) < 0 && errno == ESRCH, "signer_free: the child left and was reaped");
}

int main(void) {
        struct ca ca = {};
        _cleanup_signer_ struct signer *s = NULL;
        struct secmem_report rep;
        uint8_t needle[64];
        size_t n_needle;

        now = (int64_t) time(NULL);
        if (!mkdtemp(workdir)) {
                ok(false, "mkdtemp: %s", strerror(errno));
                return tap_done();
        }
        ok(make_ca(&ca, "cloudtaser test CA", now - 10 * DAY, now + 3650 * DAY) == 0,
           "a CA (ten years)");

        /* Handover: the PEM the parent held is wiped, and its text is nowhere in our memory. */
        struct buf key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        ok(buf_append(&key, ca.key_pem.data, ca.key_pem.len) == 0, "the key PEM to hand over");
        n_needle = key_needle(&ca.key_pem, needle, sizeof(needle));
        ok(n_needle >= 32, "a line of the key's base64 to look for (%zu bytes)", n_needle);
        /* Positive control: a plain heap copy of the line is found by the scan. */
        char *copy = malloc(n_needle);
        for (size_t i = 0; copy && i < n_needle; i++)
                copy[i] = (char) (needle[i] ^ 0x5a);
        is_int(memory_contains(needle, n_needle), 1, "the memory scan finds a heap copy");
        if (copy)
                explicit_bzero(copy, n_needle);
        free(copy);
        /* The test's own copy (ca.key_pem) is needed for the sub-parent test; wipe it for the
         * scan and keep the original in a local that is wiped right after (still secmem). */
        secmem_report(&rep);
        size_t regions = rep.regions;
        is_int(signer_start(&key, ca.cert_pem.data, ca.cert_pem.len, FLAGS, &s), 0,
               "signer_start with the CA");
        ok(key.data == NULL && key.len == 0, "the handed-over key PEM buffer is wiped and empty");
        secmem_report(&rep);
        is_int(rep.regions, regions - 1, "its secure region is released (no other copy kept)");
        /* Scan while only the test's own ca.key_pem holds the text: move it out of the way. */
        struct buf keep = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        bool stashed = true;
        for (size_t i = 0; i < ca.key_pem.len; i++)
                stashed &= buf_append_byte(&keep, (uint8_t) (ca.key_pem.data[i] ^ 0x5a)) == 0;
        buf_done(&ca.key_pem);
        ok(stashed, "the test's reference copy stashed (XORed)");
        is_int(memory_contains(needle, n_needle), 0,
               "the key's text is nowhere in the parent's readable memory after the handover");
        ca.key_pem = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        for (size_t i = 0; i < keep.len; i++)
                (void) buf_append_byte(&ca.key_pem, (uint8_t) (keep.data[i] ^ 0x5a));
        buf_done(&keep);

        if (s) {
                test_hardening(s);
                test_issue(s, &ca);
                test_validity(s, &ca);
                test_csr(s, &ca);
                test_malformed(s);
                test_threads(s, &ca);
                test_load_ca(s, &ca);
                ok(kill(signer_pid(s), 0) == 0, "the signer survived every test (no SIGSYS)");
        }
        test_no_ca();
        test_parent_death();

        s = signer_free(s);
        ca_done(&ca);
        char path[256];
        (void) snprintf(path, sizeof(path), "%s/leaf.pem", workdir);
        (void) unlink(path);
        (void) snprintf(path, sizeof(path), "%s/ca.pem", workdir);
        (void) unlink(path);
        (void) rmdir(workdir);
        return tap_done();
}
