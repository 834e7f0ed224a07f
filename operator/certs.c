/* SPDX-License-Identifier: Apache-2.0 */
/* operator/certs: see certs.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/tls/cert.h"
#include "operator/certs.h"

int certs_generate_serving(const char *hosts, struct buf *cert_pem, struct buf *key_pem,
                           struct buf *ca_pem) {
        struct tls_key *ca_key = NULL, *key = NULL;
        struct tls_cert ca = {}, leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        const char *dns[16], *ip[16];
        char copy[1024];
        size_t n_dns = 0, n_ip = 0;
        int r;

        (void) snprintf(copy, sizeof(copy), "%s", hosts);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
                bool is_ip = strspn(t, "0123456789.:abcdefABCDEF") == strlen(t) && strpbrk(t, ".:");
                if (is_ip && n_ip < ELEMENTSOF(ip))
                        ip[n_ip++] = t;
                else if (!is_ip && n_dns < ELEMENTSOF(dns))
                        dns[n_dns++] = t;
        }
        int64_t now = (int64_t) time(NULL);
        struct tls_cert_params cap = {.common_name = "cloudtaser-operator CA",
                                      .not_before = now,
                                      .not_after = now + 365 * 86400,
                                      .backdate = 300,
                                      .path_len = 0};
        struct tls_cert_params lp = {.common_name = n_dns ? dns[0] : "cloudtaser-operator",
                                     .san = {.dns = dns, .n_dns = n_dns, .ip = ip, .n_ip = n_ip},
                                     .not_before = now,
                                     .not_after = now + 90 * 86400,
                                     .backdate = 300,
                                     .usage = TLS_USAGE_SERVER,
                                     .path_len = -1};
        r = tls_key_generate(&ca_key);
        if (r >= 0)
                r = tls_cert_create_ca(ca_key, &cap, &ca);
        if (r >= 0)
                r = tls_key_generate(&key);
        if (r >= 0)
                r = tls_key_public_der(key, &spki);
        if (r >= 0)
                r = tls_cert_issue(ca_key, &ca, (const uint8_t *) spki.data, spki.len, &lp, &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, cert_pem);
        if (r >= 0)
                r = tls_key_export_pem(key, key_pem);
        if (r >= 0)
                r = tls_cert_encode_pem(&ca, ca_pem);
        tls_cert_done(&ca);
        tls_cert_done(&leaf);
        tls_key_free(ca_key); /* the CA key is not kept: a new CA comes with every start */
        tls_key_free(key);
        return r;
}

int certs_write_file_atomic(const char *path, const char *data, size_t len) {
        char tmp[4096];
        if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd =
                open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        for (size_t off = 0; off < len;) {
                ssize_t w = write(fd, data + off, len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return negative_errno();
                off += (size_t) w;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                return negative_errno();
        return 0;
}
