/* SPDX-License-Identifier: Apache-2.0 */
/* operator/signer: the CA key in its own process. The contract is in operator/signer.h; the
 * design and the threat it answers in docs/operator.md ("CA signer"). */
#include "operator/signer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/macro.h"
#include "common/sandbox.h"
#include "common/secmem.h"

#define SIGNER_FD 3 /* the child's end of the socket, after the fd clean-up */

/* ---- wire format -------------------------------------------------------------------------- */

static uint16_t get_u16(const uint8_t *p) {
        return (uint16_t) ((unsigned) p[0] << 8 | p[1]);
}

static void put_be(uint8_t *p, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

static int put_field(struct buf *b, unsigned tag, const void *p, size_t n) {
        uint8_t h[4];
        int r;
        if (n > SIGNER_MAX_FIELD)
                return -E2BIG;
        put_be(h, tag, 2);
        put_be(h + 2, n, 2);
        if ((r = buf_append(b, h, sizeof(h))) < 0 || (n && (r = buf_append(b, p, n)) < 0))
                return r;
        return 0;
}

static int put_text(struct buf *b, unsigned tag, const char *s, size_t max) {
        size_t n = strnlen(s, max + 1);
        if (n > max)
                return -E2BIG;
        return put_field(b, tag, s, n);
}

static int put_i64(struct buf *b, unsigned tag, int64_t v) {
        uint8_t p[8];
        put_be(p, (uint64_t) v, 8);
        return put_field(b, tag, p, sizeof(p));
}

/* The fields of a request, as the encoder takes them (borrowed). */
struct request_fields {
        enum signer_op op;
        const uint8_t *spki, *csr, *key, *ca;
        size_t spki_len, csr_len, key_len, ca_len;
        const char *cn;
        const char *const *dns, *const *ip, *const *uri;
        size_t n_dns, n_ip, n_uri;
        bool has_times, has_usage;
        int64_t not_before, not_after;
        unsigned usage;
};

static int encode_fields(const struct request_fields *f, struct buf *out) {
        /* Encoded in a local buffer bounded by SIGNER_MAX_MSG (secure like out), then appended. */
        _cleanup_buf_ struct buf b = BUF_INIT(SIGNER_MAX_MSG, out->flags & BUF_SECURE);
        uint8_t h[4];
        int r;

        if (f->op < SIGNER_OP_ISSUE || f->op > SIGNER_OP_LOAD_CA)
                return -EINVAL;
        if (f->n_dns > SIGNER_MAX_SANS || f->n_ip > SIGNER_MAX_SANS || f->n_uri > SIGNER_MAX_SANS)
                return -E2BIG;
        put_be(h, f->op, 2);
        put_be(h + 2, 0, 2);
        r = buf_append(&b, h, sizeof(h));
        if (r >= 0 && f->spki)
                r = put_field(&b, SIGNER_TAG_SPKI, f->spki, f->spki_len);
        if (r >= 0 && f->csr)
                r = put_field(&b, SIGNER_TAG_CSR, f->csr, f->csr_len);
        if (r >= 0 && f->cn)
                r = put_text(&b, SIGNER_TAG_CN, f->cn, SIGNER_MAX_CN);
        for (size_t i = 0; r >= 0 && i < f->n_dns; i++)
                r = put_text(&b, SIGNER_TAG_DNS, f->dns[i], TLS_MAX_NAME);
        for (size_t i = 0; r >= 0 && i < f->n_ip; i++)
                r = put_text(&b, SIGNER_TAG_IP, f->ip[i], SIGNER_MAX_IP_TEXT);
        for (size_t i = 0; r >= 0 && i < f->n_uri; i++)
                r = put_text(&b, SIGNER_TAG_URI, f->uri[i], TLS_MAX_URI);
        if (r >= 0 && f->has_times)
                r = put_i64(&b, SIGNER_TAG_NOT_BEFORE, f->not_before);
        if (r >= 0 && f->has_times)
                r = put_i64(&b, SIGNER_TAG_NOT_AFTER, f->not_after);
        if (r >= 0 && f->has_usage) {
                if (f->usage > 0xff)
                        return -EINVAL;
                uint8_t u = (uint8_t) f->usage;
                r = put_field(&b, SIGNER_TAG_USAGE, &u, 1);
        }
        if (r >= 0 && f->key)
                r = put_field(&b, SIGNER_TAG_KEY, f->key, f->key_len);
        if (r >= 0 && f->ca)
                r = put_field(&b, SIGNER_TAG_CA, f->ca, f->ca_len);
        if (r < 0)
                return r;
        return buf_append(out, b.data, b.len);
}

int signer_request_encode(const struct signer_request *req, struct buf *out) {
        const char *dns[SIGNER_MAX_SANS], *ip[SIGNER_MAX_SANS], *uri[SIGNER_MAX_SANS];

        if (!req || !out || req->n_dns > SIGNER_MAX_SANS || req->n_ip > SIGNER_MAX_SANS ||
            req->n_uri > SIGNER_MAX_SANS)
                return -EINVAL;
        for (size_t i = 0; i < req->n_dns; i++)
                dns[i] = req->dns[i];
        for (size_t i = 0; i < req->n_ip; i++)
                ip[i] = req->ip[i];
        for (size_t i = 0; i < req->n_uri; i++)
                uri[i] = req->uri[i];
        if (req->has_not_before != req->has_not_after)
                return -EINVAL;
        struct request_fields f = {
                .op = req->op,
                .spki = req->spki,
                .csr = req->csr,
                .key = req->key,
                .ca = req->ca,
                .spki_len = req->spki_len,
                .csr_len = req->csr_len,
                .key_len = req->key_len,
                .ca_len = req->ca_len,
                .cn = req->has_cn ? req->cn : NULL,
                .dns = dns,
                .ip = ip,
                .uri = uri,
                .n_dns = req->n_dns,
                .n_ip = req->n_ip,
                .n_uri = req->n_uri,
                .has_times = req->has_not_before,
                .has_usage = req->has_usage,
                .not_before = req->not_before,
                .not_after = req->not_after,
                .usage = req->usage,
        };
        return encode_fields(&f, out);
}

/* Copies a text field: no NUL inside, at most max bytes. */
static int get_text(const uint8_t *v, size_t n, char *dst, size_t max) {
        if (n > max)
                return -E2BIG;
        if (n == 0 || memchr(v, '\0', n))
                return -EPROTO;
        memcpy(dst, v, n);
        dst[n] = '\0';
        return 0;
}

/* Which tags each operation takes (bit n = tag n), and which it requires. */
#define BIT(t) (1u << (t))
#define LEAF_TAGS                                                                              \
        (BIT(SIGNER_TAG_CN) | BIT(SIGNER_TAG_DNS) | BIT(SIGNER_TAG_IP) | BIT(SIGNER_TAG_URI) | \
         BIT(SIGNER_TAG_NOT_BEFORE) | BIT(SIGNER_TAG_NOT_AFTER) | BIT(SIGNER_TAG_USAGE))
#define LEAF_REQUIRED                                                                  \
        (BIT(SIGNER_TAG_CN) | BIT(SIGNER_TAG_NOT_BEFORE) | BIT(SIGNER_TAG_NOT_AFTER) | \
         BIT(SIGNER_TAG_USAGE))

/* Per operation: the tags it takes and those it requires. */
static const struct {
        unsigned allowed, required;
} op_tags[] = {
        [SIGNER_OP_ISSUE] = {LEAF_TAGS | BIT(SIGNER_TAG_SPKI),
                             LEAF_REQUIRED | BIT(SIGNER_TAG_SPKI)},
        [SIGNER_OP_ISSUE_CSR] = {LEAF_TAGS | BIT(SIGNER_TAG_CSR),
                                 LEAF_REQUIRED | BIT(SIGNER_TAG_CSR)},
        [SIGNER_OP_PUBLIC] = {0, 0},
        [SIGNER_OP_LOAD_CA] = {BIT(SIGNER_TAG_KEY) | BIT(SIGNER_TAG_CA),
                               BIT(SIGNER_TAG_KEY) | BIT(SIGNER_TAG_CA)},
};

/* A binary field: a non-empty view into the message. */
static int get_bytes(const uint8_t *v, size_t n, const uint8_t **ret, size_t *ret_len) {
        if (n == 0)
                return -EPROTO;
        *ret = v;
        *ret_len = n;
        return 0;
}

static int decode_field(struct signer_request *q, unsigned tag, const uint8_t *v, size_t n) {
        switch (tag) {
        case SIGNER_TAG_SPKI:
                return get_bytes(v, n, &q->spki, &q->spki_len);
        case SIGNER_TAG_CSR:
                return get_bytes(v, n, &q->csr, &q->csr_len);
        case SIGNER_TAG_KEY:
                return get_bytes(v, n, &q->key, &q->key_len);
        case SIGNER_TAG_CA:
                return get_bytes(v, n, &q->ca, &q->ca_len);
        case SIGNER_TAG_CN:
                q->has_cn = true;
                return get_text(v, n, q->cn, SIGNER_MAX_CN);
        case SIGNER_TAG_DNS:
                if (q->n_dns == SIGNER_MAX_SANS)
                        return -E2BIG;
                return get_text(v, n, q->dns[q->n_dns++], TLS_MAX_NAME);
        case SIGNER_TAG_IP:
                if (q->n_ip == SIGNER_MAX_SANS)
                        return -E2BIG;
                return get_text(v, n, q->ip[q->n_ip++], SIGNER_MAX_IP_TEXT);
        case SIGNER_TAG_URI:
                if (q->n_uri == SIGNER_MAX_SANS)
                        return -E2BIG;
                return get_text(v, n, q->uri[q->n_uri++], TLS_MAX_URI);
        case SIGNER_TAG_NOT_BEFORE:
        case SIGNER_TAG_NOT_AFTER:
                if (n != 8)
                        return -EPROTO;
                if (tag == SIGNER_TAG_NOT_BEFORE) {
                        q->has_not_before = true;
                        q->not_before = (int64_t) get_be(v, 8);
                } else {
                        q->has_not_after = true;
                        q->not_after = (int64_t) get_be(v, 8);
                }
                return 0;
        case SIGNER_TAG_USAGE:
                if (n != 1)
                        return -EPROTO;
                q->has_usage = true;
                q->usage = v[0];
                return 0;
        }
        return -EPROTO;
}

int signer_request_decode(const uint8_t *msg, size_t len, struct signer_request *ret) {
        unsigned seen = 0;
        int r;

        if (!msg || !ret)
                return -EINVAL;
        if (len > SIGNER_MAX_MSG)
                return -E2BIG;
        if (len < 4 || get_u16(msg + 2) != 0)
                return -EPROTO;
        unsigned op = get_u16(msg);
        if (op < SIGNER_OP_ISSUE || op > SIGNER_OP_LOAD_CA)
                return -EPROTO;

        struct signer_request *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->op = (enum signer_op) op;
        unsigned allowed = op_tags[q->op].allowed;
        size_t pos = 4;
        r = 0;
        while (r >= 0 && pos < len) {
                if (len - pos < 4) {
                        r = -EPROTO;
                        break;
                }
                unsigned tag = get_u16(msg + pos);
                size_t n = get_u16(msg + pos + 2);
                pos += 4;
                if (n > len - pos)
                        r = -EPROTO;
                else if (n > SIGNER_MAX_FIELD)
                        r = -E2BIG;
                else if (tag >= 32 || !(allowed & BIT(tag)))
                        r = -EPROTO;
                else if ((seen & BIT(tag)) && tag != SIGNER_TAG_DNS && tag != SIGNER_TAG_IP &&
                         tag != SIGNER_TAG_URI)
                        r = -EPROTO;
                else
                        r = decode_field(q, tag, msg + pos, n);
                if (r >= 0) {
                        seen |= BIT(tag);
                        pos += n;
                }
        }
        if (r >= 0 && (seen & op_tags[q->op].required) != op_tags[q->op].required)
                r = -EPROTO;
        if (r >= 0)
                *ret = *q;
        explicit_bzero(q, sizeof(*q));
        free(q);
        return r < 0 ? r : 0;
}

int signer_response_encode(int status, const uint8_t *cert, size_t cert_len, struct buf *out) {
        _cleanup_buf_ struct buf b = BUF_INIT(SIGNER_MAX_MSG, 0);
        uint8_t h[4];
        int r;

        if (!out || status > 0 || status < -4095 || (status < 0 && cert))
                return -EINVAL;
        put_be(h, (uint32_t) status, 4);
        r = buf_append(&b, h, sizeof(h));
        if (r >= 0 && cert)
                r = put_field(&b, SIGNER_TAG_CERT, cert, cert_len);
        if (r < 0)
                return r;
        return buf_append(out, b.data, b.len);
}

int signer_response_decode(const uint8_t *msg, size_t len, int *ret_status,
                           const uint8_t **ret_cert, size_t *ret_cert_len) {
        const uint8_t *cert = NULL;
        size_t cert_len = 0;

        if (!msg || !ret_status || !ret_cert || !ret_cert_len)
                return -EINVAL;
        if (len > SIGNER_MAX_MSG)
                return -E2BIG;
        if (len < 4)
                return -EPROTO;
        int32_t status = (int32_t) (uint32_t) get_be(msg, 4);
        if (status > 0 || status < -4095)
                return -EPROTO;
        size_t pos = 4;
        if (pos < len) {
                if (status != 0 || len - pos < 4 || get_u16(msg + pos) != SIGNER_TAG_CERT)
                        return -EPROTO;
                cert_len = get_u16(msg + pos + 2);
                pos += 4;
                if (cert_len == 0 || cert_len > len - pos)
                        return -EPROTO;
                if (cert_len > SIGNER_MAX_FIELD)
                        return -E2BIG;
                cert = msg + pos;
                pos += cert_len;
                if (pos != len)
                        return -EPROTO;
        }
        *ret_status = status;
        *ret_cert = cert;
        *ret_cert_len = cert_len;
        return 0;
}

/* ---- the child's side: the CA and its limits ------------------------------------------------ */

struct signer_core {
        struct tls_key *key;
        struct tls_cert ca;
        int64_t ca_not_before, ca_not_after;
};

int signer_core_new(struct signer_core **ret) {
        if (!ret)
                return -EINVAL;
        struct signer_core *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

struct signer_core *signer_core_free(struct signer_core *c) {
        if (!c)
                return NULL;
        tls_key_free(c->key);
        tls_cert_done(&c->ca);
        free(c);
        return NULL;
}

static int core_load_ca(struct signer_core *c, const struct signer_request *q) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        int r;

        r = tls_key_import_pem((const char *) q->key, q->key_len, &key);
        if (r < 0)
                return r;
        r = tls_cert_decode_pem((const char *) q->ca, q->ca_len, &ca);
        if (r < 0)
                return r;
        r = tls_cert_inspect(&ca, &info);
        if (r < 0)
                return r;
        /* Only a CA that may sign certificates; a leaf handed over as a CA is refused. */
        if (!info.is_ca || (info.has_key_usage && !(info.key_usage & TLS_KU_KEY_CERT_SIGN)))
                return -EINVAL;
        r = tls_key_matches_cert(key, ca.der, ca.len);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        tls_key_free(c->key);
        tls_cert_done(&c->ca);
        c->key = TAKE_PTR(key);
        c->ca = ca;
        ca = (struct tls_cert){};
        c->ca_not_before = info.not_before;
        c->ca_not_after = info.not_after;
        return 0;
}

static bool text_printable(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* The CA's limits on a leaf (see signer.h), and the clamped validity. */
static int core_leaf_params(const struct signer_core *c, const struct signer_request *q,
                            const char **dns, const char **ip, const char **uri,
                            struct tls_cert_params *ret) {
        if (!text_printable(q->cn))
                return -EINVAL;
        if (q->n_dns + q->n_ip + q->n_uri == 0)
                return -EINVAL;
        for (size_t i = 0; i < q->n_dns; i++) {
                if (strchr(q->dns[i], '*'))
                        return -EINVAL;
                dns[i] = q->dns[i];
        }
        for (size_t i = 0; i < q->n_ip; i++)
                ip[i] = q->ip[i];
        for (size_t i = 0; i < q->n_uri; i++)
                uri[i] = q->uri[i];
        if (q->usage == 0 || (q->usage & ~(unsigned) (TLS_USAGE_SERVER | TLS_USAGE_CLIENT)))
                return -EINVAL;

        int64_t nb = MAX(q->not_before, c->ca_not_before);
        int64_t na = MIN(q->not_after, c->ca_not_after);
        if (nb > INT64_MAX - SIGNER_MAX_LIFETIME)
                return -ERANGE;
        na = MIN(na, nb + SIGNER_MAX_LIFETIME);
        if (nb < 0 || na <= nb)
                return -ERANGE;
        *ret = (struct tls_cert_params){
                .common_name = q->cn,
                .san = {.dns = dns,
                        .n_dns = q->n_dns,
                        .ip = ip,
                        .n_ip = q->n_ip,
                        .uri = uri,
                        .n_uri = q->n_uri},
                .not_before = nb,
                .not_after = na,
                .usage = q->usage,
                .path_len = -1,
        };
        return 0;
}

static int core_issue(const struct signer_core *c, const struct signer_request *q,
                      struct tls_cert *ret) {
        const char *dns[SIGNER_MAX_SANS], *ip[SIGNER_MAX_SANS], *uri[SIGNER_MAX_SANS];
        _cleanup_tls_csr_info_ struct tls_csr_info csr = {};
        struct tls_cert_params p;
        const uint8_t *spki = q->spki;
        size_t spki_len = q->spki_len;
        int r;

        if (!c->key)
                return -ENOKEY;
        r = core_leaf_params(c, q, dns, ip, uri, &p);
        if (r < 0)
                return r;
        if (q->op == SIGNER_OP_ISSUE_CSR) {
                r = tls_csr_parse_pem((const char *) q->csr, q->csr_len, &csr);
                if (r < 0)
                        return r;
                spki = csr.spki;
                spki_len = csr.spki_len;
        }
        return tls_cert_issue(c->key, &c->ca, spki, spki_len, &p, ret);
}

int signer_core_handle(struct signer_core *c, const uint8_t *msg, size_t len, struct buf *resp) {
        _cleanup_tls_cert_ struct tls_cert cert = {};
        struct signer_request *q = NULL;
        const struct tls_cert *answer = NULL;
        int r;

        if (!c || !resp)
                return -EINVAL;
        q = malloc(sizeof(*q));
        if (!q)
                return signer_response_encode(-ENOMEM, NULL, 0, resp);
        r = signer_request_decode(msg, len, q);
        if (r >= 0) {
                switch (q->op) {
                case SIGNER_OP_ISSUE:
                case SIGNER_OP_ISSUE_CSR:
                        r = core_issue(c, q, &cert);
                        answer = &cert;
                        break;
                case SIGNER_OP_PUBLIC:
                        r = c->key ? 0 : -ENOKEY;
                        answer = &c->ca;
                        break;
                case SIGNER_OP_LOAD_CA:
                        r = core_load_ca(c, q);
                        break;
                }
        }
        explicit_bzero(q, sizeof(*q));
        free(q);
        if (r < 0)
                return signer_response_encode(r < -4095 ? -EIO : r, NULL, 0, resp);
        r = signer_response_encode(0, answer ? answer->der : NULL, answer ? answer->len : 0, resp);
        /* A certificate too large for one response (many long URIs): an answer all the same, so
         * that the child never leaves because of what it was asked. */
        if (r == -E2BIG)
                r = signer_response_encode(-E2BIG, NULL, 0, resp);
        return r;
}

/* ---- the child process ---------------------------------------------------------------------- */

static int send_all(int fd, const void *p, size_t n) {
        for (;;) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w >= 0)
                        return (size_t) w == n ? 0 : -EPROTO;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* One datagram into buf (max bytes): its length, -E2BIG when it was longer (the rest is gone,
 * the socket is still in sync), 0 on EOF, -errno. */
static ssize_t recv_msg(int fd, void *buf, size_t max) {
        for (;;) {
                /* MSG_TRUNC on a SOCK_SEQPACKET unix socket returns the datagram's real length
                 * (Linux 3.4), so an oversized message is detected, not silently cut. */
                ssize_t n = recv(fd, buf, max, MSG_TRUNC);
                if (n >= 0)
                        return (size_t) n > max ? -E2BIG : n;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* Leaves the child with every fd but 2 (stderr) and SIGNER_FD closed, 0 and 1 on /dev/null. */
static int child_fds(int sock) {
        if (sock != SIGNER_FD) {
                /* dup3 replaces whatever fd 3 was atomically; the copy is close-on-exec too. */
                if (dup3(sock, SIGNER_FD, O_CLOEXEC) < 0)
                        return negative_errno();
                (void) close(sock);
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (null < 0)
                return negative_errno();
        for (int fd = 0; fd <= 1; fd++)
                if (null != fd && dup2(null, fd) < 0)
                        return negative_errno();
        if (null > 2 && null != SIGNER_FD)
                (void) close(null);
        /* close_range(2) (Linux 5.9); without it, every fd up to the hard limit. */
        if (syscall(SYS_close_range, SIGNER_FD + 1, ~0u, 0) < 0) {
                struct rlimit rl;
                if (errno != ENOSYS || getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return negative_errno();
                for (rlim_t fd = SIGNER_FD + 1; fd < MIN(rl.rlim_max, (rlim_t) 1 << 20); fd++)
                        (void) close((int) fd);
        }
        return 0;
}

/* The parent's signal dispositions and mask are not the child's: default actions, nothing
 * blocked, and the signals a terminal or a process-group kill would send ignored (the signer
 * lives exactly as long as its parent: EOF or PR_SET_PDEATHSIG end it). */
static int child_signals(void) {
        sigset_t none;
        for (int sig = 1; sig < NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                bool ignore = sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT ||
                              sig == SIGPIPE;
                /* Real-time signals the C library reserves for itself fail with EINVAL. */
                (void) signal(sig, ignore ? SIG_IGN : SIG_DFL);
        }
        sigemptyset(&none);
        return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? negative_errno() : 0;
}

static int child_harden(pid_t parent, unsigned flags) {
        int r;

        r = child_signals();
        if (r < 0)
                return r;

        /* SIGKILL when the parent (the thread that forked: the main thread, see signer.h) dies.
         * If it died before this prctl, we have been reparented already: leave. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return negative_errno();
        if (getppid() != parent)
                return -ESRCH;
        r = secmem_harden_process();
        if (r < 0)
                return r;
        /* Every capability: the signer signs with a key it holds in memory and needs none. */
        r = caps_drop_except(NULL, 0, CAPS_DROP_BOUNDING);
        if (r < 0)
                return r;
        r = sandbox_no_new_privs();
        if (r < 0)
                return r;
        /* Landlock: the only file it may open is wolfCrypt's seed source, read-only. A kernel
         * without Landlock leaves the seccomp rule (opens read-only) as the bound. */
        static const char *const readable[] = {"/dev/urandom"};
        r = sandbox_restrict_files(readable, ELEMENTSOF(readable));
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        if (flags & SIGNER_NO_SANDBOX)
                return 0;
        r = sandbox_apply_signer_filter(
                (flags & SIGNER_KILL_ON_VIOLATION) ? SANDBOX_KILL_ON_VIOLATION : 0);
        /* A kernel without seccomp filters: the other steps still hold (documented). */
        return r == -EOPNOTSUPP ? 0 : r;
}

_noreturn_ static void child_main(int sock, pid_t parent, unsigned flags) {
        _cleanup_buf_ struct buf resp = BUF_INIT(SIGNER_MAX_MSG, 0);
        struct signer_core *core = NULL;
        uint8_t *in = NULL;
        int r;

        r = child_fds(sock);
        /* Everything the loop needs is allocated before the filter: the receive buffer (secure:
         * LOAD_CA carries the key) and the core. */
        if (r >= 0)
                r = secmem_alloc(SIGNER_MAX_MSG, (void **) &in);
        if (r >= 0)
                r = signer_core_new(&core);
        if (r >= 0)
                r = child_harden(parent, flags);
        if (signer_response_encode(r < 0 ? r : 0, NULL, 0, &resp) < 0 ||
            send_all(SIGNER_FD, resp.data, resp.len) < 0 || r < 0)
                _exit(1);

        for (;;) {
                buf_reset(&resp);
                ssize_t n = recv_msg(SIGNER_FD, in, SIGNER_MAX_MSG);
                /* EOF: the parent closed its end (signer_free) or died. A zero-length datagram
                 * reads the same; the parent never sends one. */
                if (n == 0)
                        break;
                if (n == -E2BIG)
                        r = signer_response_encode(-E2BIG, NULL, 0, &resp);
                else if (n < 0)
                        break;
                else {
                        r = signer_core_handle(core, in, (size_t) n, &resp);
                        explicit_bzero(in, (size_t) n);
                }
                if (r < 0 || send_all(SIGNER_FD, resp.data, resp.len) < 0)
                        break;
        }
        /* _exit, not exit: the parent's atexit handlers (and its secmem regions, absent here)
         * must not run in this process. The key's pages are wiped by the kernel with the
         * process; wipe ours anyway. */
        signer_core_free(core);
        secmem_free(in);
        buf_done(&resp);
        _exit(0);
}

/* ---- the parent's side ---------------------------------------------------------------------- */

struct signer {
        int fd;
        pid_t pid;
        pthread_mutex_t lock;
};

pid_t signer_pid(const struct signer *s) {
        return s ? s->pid : -1;
}

static void unlockp(pthread_mutex_t **m) {
        if (*m)
                pthread_mutex_unlock(*m);
}

/* One request and its response, under the lock. *ret gets the CERT field (when want_cert). */
static int transact(struct signer *s, const struct buf *req, bool want_cert, struct tls_cert *ret) {
        _cleanup_free_ uint8_t *in = NULL;
        const uint8_t *cert;
        size_t cert_len;
        int status, r;

        if (!s || s->fd < 0)
                return -EINVAL;
        in = malloc(SIGNER_MAX_MSG);
        if (!in)
                return -ENOMEM;
        ssize_t n;
        {
                __attribute__((cleanup(unlockp))) pthread_mutex_t *held = &s->lock;
                pthread_mutex_lock(held);
                r = send_all(s->fd, req->data, req->len);
                if (r < 0)
                        return r == -ECONNRESET ? -EPIPE : r;
                n = recv_msg(s->fd, in, SIGNER_MAX_MSG);
        }
        if (n == 0 || n == -ECONNRESET)
                return -EPIPE;
        if (n < 0)
                return (int) n;
        r = signer_response_decode(in, (size_t) n, &status, &cert, &cert_len);
        if (r < 0)
                return r;
        if (status < 0)
                return status;
        if (!want_cert)
                return 0;
        if (!cert)
                return -EPROTO;
        uint8_t *der = malloc(cert_len);
        if (!der)
                return -ENOMEM;
        memcpy(der, cert, cert_len);
        *ret = (struct tls_cert){.der = der, .len = cert_len};
        return 0;
}

int signer_load_ca(struct signer *s, struct buf *key_pem, const char *cert_pem, size_t cert_len) {
        _cleanup_buf_ struct buf req = BUF_INIT(SIGNER_MAX_MSG, BUF_SECURE);
        int r;

        if (!s || !key_pem || !(key_pem->flags & BUF_SECURE) || !key_pem->data || !cert_pem ||
            cert_len == 0)
                r = -EINVAL;
        else {
                struct request_fields f = {
                        .op = SIGNER_OP_LOAD_CA,
                        .key = (const uint8_t *) key_pem->data,
                        .key_len = key_pem->len,
                        .ca = (const uint8_t *) cert_pem,
                        .ca_len = cert_len,
                };
                r = encode_fields(&f, &req);
                if (r >= 0)
                        r = transact(s, &req, false, NULL);
        }
        /* The key leaves the parent: its PEM is wiped whatever happened (req is wiped by
         * its cleanup, the socket's kernel buffer is freed once the child has read it). */
        if (key_pem && (key_pem->flags & BUF_SECURE))
                buf_done(key_pem);
        return r;
}

static int issue(struct signer *s, enum signer_op op, const uint8_t *p, size_t n,
                 const struct signer_leaf *leaf, struct tls_cert *ret) {
        _cleanup_buf_ struct buf req = BUF_INIT(SIGNER_MAX_MSG, 0);
        int r;

        if (!s || !p || n == 0 || !leaf || !leaf->common_name || !ret)
                return -EINVAL;
        if ((leaf->san.n_dns && !leaf->san.dns) || (leaf->san.n_ip && !leaf->san.ip) ||
            (leaf->san.n_uri && !leaf->san.uri))
                return -EINVAL;
        for (size_t i = 0; i < leaf->san.n_dns && i <= SIGNER_MAX_SANS; i++)
                if (!leaf->san.dns[i])
                        return -EINVAL;
        for (size_t i = 0; i < leaf->san.n_ip && i <= SIGNER_MAX_SANS; i++)
                if (!leaf->san.ip[i])
                        return -EINVAL;
        for (size_t i = 0; i < leaf->san.n_uri && i <= SIGNER_MAX_SANS; i++)
                if (!leaf->san.uri[i])
                        return -EINVAL;
        struct request_fields f = {
                .op = op,
                .spki = op == SIGNER_OP_ISSUE ? p : NULL,
                .spki_len = op == SIGNER_OP_ISSUE ? n : 0,
                .csr = op == SIGNER_OP_ISSUE_CSR ? p : NULL,
                .csr_len = op == SIGNER_OP_ISSUE_CSR ? n : 0,
                .cn = leaf->common_name,
                .dns = leaf->san.dns,
                .ip = leaf->san.ip,
                .uri = leaf->san.uri,
                .n_dns = leaf->san.n_dns,
                .n_ip = leaf->san.n_ip,
                .n_uri = leaf->san.n_uri,
                .has_times = true,
                .has_usage = true,
                .not_before = leaf->not_before,
                .not_after = leaf->not_after,
                .usage = leaf->usage,
        };
        r = encode_fields(&f, &req);
        if (r < 0)
                return r;
        return transact(s, &req, true, ret);
}

int signer_issue(struct signer *s, const uint8_t *spki, size_t spki_len,
                 const struct signer_leaf *leaf, struct tls_cert *ret) {
        return issue(s, SIGNER_OP_ISSUE, spki, spki_len, leaf, ret);
}

int signer_issue_csr(struct signer *s, const char *csr_pem, size_t csr_len,
                     const struct signer_leaf *leaf, struct tls_cert *ret) {
        return issue(s, SIGNER_OP_ISSUE_CSR, (const uint8_t *) csr_pem, csr_len, leaf, ret);
}

int signer_raw(struct signer *s, const uint8_t *msg, size_t len) {
        struct buf req = {.data = (char *) msg, .len = len};
        if (!msg)
                return -EINVAL;
        return transact(s, &req, false, NULL);
}

int signer_ca_cert(struct signer *s, struct tls_cert *ret) {
        _cleanup_buf_ struct buf req = BUF_INIT(SIGNER_MAX_MSG, 0);
        struct request_fields f = {.op = SIGNER_OP_PUBLIC};
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = encode_fields(&f, &req);
        if (r < 0)
                return r;
        return transact(s, &req, true, ret);
}

struct signer *signer_free(struct signer *s) {
        if (!s)
                return NULL;
        s->fd = safe_close(s->fd);
        if (s->pid > 0) {
                /* EOF makes the child leave at once; reap it (ECHILD when someone else did). */
                while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

static void buf_wipep(struct buf **b) {
        if (*b && ((*b)->flags & BUF_SECURE))
                buf_done(*b);
}

int signer_start(struct buf *key_pem, const char *cert_pem, size_t cert_len, unsigned flags,
                 struct signer **ret) {
        _unused_ __attribute__((cleanup(buf_wipep))) struct buf *wipe = key_pem;
        _cleanup_signer_ struct signer *s = NULL;
        int sv[2], r;

        if (!ret || (flags & ~(unsigned) (SIGNER_KILL_ON_VIOLATION | SIGNER_NO_SANDBOX)) ||
            (key_pem && (!(key_pem->flags & BUF_SECURE) || !cert_pem)))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        r = pthread_mutex_init(&s->lock, NULL);
        if (r != 0) {
                free(TAKE_PTR(s));
                return -r;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                r = negative_errno();
                (void) close(sv[0]);
                (void) close(sv[1]);
                return r;
        }
        if (pid == 0) {
                (void) close(sv[0]);
                child_main(sv[1], parent, flags);
        }
        (void) close(sv[1]);
        s->fd = sv[0];
        s->pid = pid;

        /* The child's first datagram says whether it hardened itself. */
        uint8_t hello[16];
        const uint8_t *cert;
        size_t n_cert;
        int status;
        ssize_t n = recv_msg(s->fd, hello, sizeof(hello));
        if (n <= 0)
                return n == 0 || n == -ECONNRESET ? -EPIPE : (int) n;
        r = signer_response_decode(hello, (size_t) n, &status, &cert, &n_cert);
        if (r < 0)
                return r;
        if (status < 0)
                return status;
        if (key_pem) {
                r = signer_load_ca(s, key_pem, cert_pem, cert_len);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}
