/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: operator/signer's wire format and the child's handling of a request, without the
 * process. The input is one message, read three ways:
 *   - as a request: a decoded request is within the limits (names NUL-free and bounded, at most
 *     SIGNER_MAX_SANS of each, the operation's required fields present), and encoding it again
 *     gives a message of the same length that decodes to the same request;
 *   - as a response: a decoded response re-encodes to exactly the input;
 *   - handled by a signer core holding a test CA (as the child would): the answer is always a
 *     well-formed response; an issued certificate is a leaf (never CA:TRUE, no pathLen) that
 *     chains to the CA, inside the CA's validity and SIGNER_MAX_LIFETIME, with at most
 *     SIGNER_MAX_SANS names of each type and no wildcard: whatever a compromised parent sends. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/tls/cert.h"
#include "operator/signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
        if (!cond)
                abort();
}

static bool same_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
        return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* n NUL-terminated strings laid out every `stride` bytes (the request's name arrays). */
static bool same_texts(const char *a, const char *b, size_t n, size_t stride) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(a + i * stride, b + i * stride) != 0)
                        return false;
        return true;
}

static bool same_request(const struct signer_request *a, const struct signer_request *b) {
        if (a->op != b->op || a->has_cn != b->has_cn || strcmp(a->cn, b->cn) != 0 ||
            a->n_dns != b->n_dns || a->n_ip != b->n_ip || a->n_uri != b->n_uri ||
            a->has_not_before != b->has_not_before || a->has_not_after != b->has_not_after ||
            a->not_before != b->not_before || a->not_after != b->not_after ||
            a->has_usage != b->has_usage || a->usage != b->usage)
                return false;
        return same_texts(a->dns[0], b->dns[0], a->n_dns, sizeof(a->dns[0])) &&
               same_texts(a->ip[0], b->ip[0], a->n_ip, sizeof(a->ip[0])) &&
               same_texts(a->uri[0], b->uri[0], a->n_uri, sizeof(a->uri[0])) &&
               same_bytes(a->spki, a->spki_len, b->spki, b->spki_len) &&
               same_bytes(a->csr, a->csr_len, b->csr, b->csr_len) &&
               same_bytes(a->key, a->key_len, b->key, b->key_len) &&
               same_bytes(a->ca, a->ca_len, b->ca, b->ca_len);
}

static void as_request(const uint8_t *data, size_t size) {
        static struct signer_request q, again;
        _cleanup_buf_ struct buf out = BUF_INIT(SIGNER_MAX_MSG, BUF_SECURE);

        if (signer_request_decode(data, size, &q) < 0)
                return;
        check(q.n_dns <= SIGNER_MAX_SANS && q.n_ip <= SIGNER_MAX_SANS &&
              q.n_uri <= SIGNER_MAX_SANS);
        check(strlen(q.cn) <= SIGNER_MAX_CN && (!q.has_cn || q.cn[0]));
        for (size_t i = 0; i < q.n_dns; i++)
                check(q.dns[i][0] && strlen(q.dns[i]) <= TLS_MAX_NAME);
        for (size_t i = 0; i < q.n_ip; i++)
                check(q.ip[i][0] && strlen(q.ip[i]) <= SIGNER_MAX_IP_TEXT);
        if (q.op == SIGNER_OP_ISSUE || q.op == SIGNER_OP_ISSUE_CSR)
                check(q.has_cn && q.has_not_before && q.has_not_after && q.has_usage &&
                      (q.op == SIGNER_OP_ISSUE ? q.spki_len > 0 : q.csr_len > 0));
        if (q.op == SIGNER_OP_LOAD_CA)
                check(q.key_len > 0 && q.ca_len > 0);
        /* Pointers into the input stay inside it. */
        check(!q.spki || (q.spki >= data && q.spki + q.spki_len <= data + size));
        check(!q.ca || (q.ca >= data && q.ca + q.ca_len <= data + size));
        check(signer_request_encode(&q, &out) == 0);
        check(out.len == size);
        check(signer_request_decode((const uint8_t *) out.data, out.len, &again) == 0);
        check(same_request(&q, &again));
}

static void as_response(const uint8_t *data, size_t size) {
        _cleanup_buf_ struct buf out = BUF_INIT(SIGNER_MAX_MSG, 0);
        const uint8_t *cert;
        size_t n;
        int status;

        if (signer_response_decode(data, size, &status, &cert, &n) < 0)
                return;
        check(status <= 0 && status >= -4095 && (status == 0 || !cert));
        check(signer_response_encode(status, cert, n, &out) == 0);
        check(same_bytes((const uint8_t *) out.data, out.len, data, size));
}

/* The test CA, made once: its PEMs and its validity. */
static struct buf ca_key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE), ca_pem = BUF_INIT(TLS_MAX_PEM, 0);
static struct tls_cert ca_cert;
static const int64_t ca_not_before = 1700000000, ca_not_after = 1700000000 + 3650 * 86400LL;

static void make_ca(void) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        struct tls_cert_params p = {.common_name = "fuzz CA",
                                    .not_before = ca_not_before,
                                    .not_after = ca_not_after,
                                    .path_len = 0};
        check(tls_key_generate(&k) == 0 && tls_cert_create_ca(k, &p, &ca_cert) == 0 &&
              tls_key_export_pem(k, &ca_key) == 0 && tls_cert_encode_pem(&ca_cert, &ca_pem) == 0);
}

static void check_leaf(const uint8_t *der, size_t n) {
        struct tls_cert c = {.der = (uint8_t *) der, .len = n};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};

        check(tls_cert_inspect(&c, &info) == 0);
        check(!info.is_ca && info.path_len == -1);
        check(!(info.key_usage & (TLS_KU_KEY_CERT_SIGN | TLS_KU_CRL_SIGN)));
        check(info.not_before >= ca_not_before && info.not_after <= ca_not_after);
        check(info.not_after > info.not_before &&
              info.not_after - info.not_before <= SIGNER_MAX_LIFETIME);
        check(info.san.n_dns <= SIGNER_MAX_SANS && info.san.n_ip <= SIGNER_MAX_SANS &&
              info.san.n_uri <= SIGNER_MAX_SANS && info.san.n_other == 0);
        check(info.san.n_dns + info.san.n_ip + info.san.n_uri > 0);
        for (size_t i = 0; i < info.san.n_dns; i++)
                check(!strchr(info.san.dns[i], '*'));
        check(tls_verify_certs(&ca_cert, 1, &c, 1, info.not_before, 0) == 0);
}

static void handled(const uint8_t *data, size_t size) {
        _cleanup_signer_core_ struct signer_core *core = NULL;
        _cleanup_buf_ struct buf load = BUF_INIT(SIGNER_MAX_MSG, BUF_SECURE);
        _cleanup_buf_ struct buf resp = BUF_INIT(SIGNER_MAX_MSG, 0);
        static struct signer_request q;
        const uint8_t *cert;
        size_t n;
        int status;

        if (!ca_cert.der)
                make_ca();
        check(signer_core_new(&core) == 0);
        q = (struct signer_request){.op = SIGNER_OP_LOAD_CA,
                                    .key = (const uint8_t *) ca_key.data,
                                    .key_len = ca_key.len,
                                    .ca = (const uint8_t *) ca_pem.data,
                                    .ca_len = ca_pem.len};
        check(signer_request_encode(&q, &load) == 0);
        check(signer_core_handle(core, (const uint8_t *) load.data, load.len, &resp) == 0);
        check(signer_response_decode((const uint8_t *) resp.data, resp.len, &status, &cert, &n) ==
                      0 &&
              status == 0);
        buf_reset(&resp);

        check(signer_core_handle(core, data, size, &resp) == 0);
        check(signer_response_decode((const uint8_t *) resp.data, resp.len, &status, &cert, &n) ==
              0);
        bool decoded = signer_request_decode(data, size, &q) == 0;
        check(decoded || status < 0);
        if (status < 0 || !decoded)
                return;
        if (q.op == SIGNER_OP_ISSUE || q.op == SIGNER_OP_ISSUE_CSR) {
                check(cert != NULL);
                check_leaf(cert, n);
        } else if (q.op == SIGNER_OP_PUBLIC)
                check(same_bytes(cert, n, ca_cert.der, ca_cert.len));
        else
                check(cert == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 2 * SIGNER_MAX_MSG)
                return 0;
        as_request(data, size);
        as_response(data, size);
        handled(data, size);
        return 0;
}
