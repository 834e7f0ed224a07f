/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/signer: the operator's CA private key in its own small process (conventions, rule 6;
 * the design of OpenBSD acme-client's keyproc, relayd's ca.c and h2o's neverbleed). The
 * network-facing operator (webhook, rotation thread, later the broker) never holds the CA key
 * after handing it over: it asks the signer for leaf certificates. See docs/operator.md,
 * "CA signer", and the threat model in docs/architecture.md.
 *
 * Process: signer_start() forks a child connected by a SOCK_SEQPACKET socketpair (O_CLOEXEC; one
 * datagram per request and per response). The child, before it reads anything:
 *   - moves its end of the socket to fd 3, points 0 and 1 at /dev/null and closes every other
 *     fd (2 stays, for sanitizer reports; the child never writes to it otherwise);
 *   - PR_SET_PDEATHSIG SIGKILL (and leaves at once when the parent is already gone); it also
 *     leaves on EOF of the socket (signer_free(), or the parent's death);
 *   - secmem_harden_process(): PR_SET_DUMPABLE 0, RLIMIT_CORE 0;
 *   - drops every capability (common/caps, bounding set included where CAP_SETPCAP allows);
 *   - PR_SET_NO_NEW_PRIVS, then the signer's seccomp allow-list (common/sandbox:
 *     sandbox_apply_signer_filter(): I/O on the socket, secure memory, getrandom, exit).
 * It keeps the CA key (struct tls_key, in secmem) and the CA certificate, and answers requests
 * one at a time until EOF. It never logs (stdout is /dev/null) and leaves with _exit(): the
 * parent's atexit handlers and its secmem regions (MADV_DONTFORK, absent in the child) are not
 * touched.
 *
 * MUST be called while the process is single-threaded (before the operator starts its servers,
 * its vault client or any thread): fork() copies only the calling thread, and a lock held by
 * another thread (malloc's, secmem's) would stay locked forever in the child. PR_SET_PDEATHSIG
 * fires when the THREAD that forked exits, so call it from the main thread, which lives as long
 * as the process. Call it early, before reading any secret: the child gets a copy of the
 * parent's ordinary memory as it is at the fork (secmem pages are MADV_DONTFORK and stay behind).
 * The child resets its signal dispositions and mask (SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE
 * ignored: it ends with its parent, not with a process-group signal).
 *
 * The CA's limits are enforced by the CHILD, so that a compromised parent can obtain only
 * leaves of this CA, never a CA certificate, and never a leaf outside these bounds:
 *   - every certificate is a leaf (basicConstraints CA:FALSE critical, no pathLen; tls_cert_issue
 *     cannot produce anything else, and the wire has no field that could ask for it);
 *   - validity is CLAMPED (not refused): not_before is raised to the CA's not_before, not_after
 *     is lowered to the CA's not_after and to not_before + SIGNER_MAX_LIFETIME. A request whose
 *     window is empty after clamping (entirely outside the CA's) is refused with -ERANGE. The
 *     caller reads the validity it got from the certificate (tls_cert_inspect);
 *   - at most SIGNER_MAX_SANS DNS names, SIGNER_MAX_SANS IP addresses, SIGNER_MAX_SANS URIs;
 *     at least one SAN; DNS names checked by common/tls (RFC 1123 characters) and, here, never a
 *     wildcard ('*'); a common name of 1..64 printable bytes; usage server, client or both.
 *
 * Errors (-errno, also what travels over the wire from the child):
 *   -EINVAL   bad arguments, or a request the CA's limits refuse (a name, a wildcard, a usage);
 *   -ERANGE   the validity window is empty after clamping;
 *   -E2BIG    a field or the whole message over its limit;
 *   -EPROTO   a malformed message (unknown operation or field, truncated TLV, duplicate field);
 *   -ENOKEY   no CA loaded yet;
 *   -EBADMSG  a public key, CSR, key or certificate that does not parse (or a CSR whose
 *             self-signature is wrong), or a CA key that does not match its certificate;
 *   -EPIPE    the signer process is gone (it is not restarted: the operator treats it as fatal);
 *   -ENOMEM, -EIO, -errno of common/tls.
 *
 * Thread-safety: every function on a struct signer may be called from several threads at once;
 * a mutex covers one request and its response. signer_free() must not race with the others.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/tls/cert.h"

/* Limits, checked by both ends (the parent before sending, the child again on receipt). */
#define SIGNER_MAX_MSG (16u * 1024u)        /* one request or response datagram */
#define SIGNER_MAX_FIELD (12u * 1024u)      /* one field (a CA key or certificate PEM, a CSR) */
#define SIGNER_MAX_SANS 16                  /* per type: DNS, IP, URI */
#define SIGNER_MAX_LIFETIME (398 * 86400LL) /* a leaf's longest validity, seconds */
#define SIGNER_MAX_CN 64                    /* common name, bytes */

/* Flags for signer_start(). */
enum {
        SIGNER_KILL_ON_VIOLATION = 1u << 0, /* tests: the child dies with SIGSYS on a call outside
                                             * its allow-list (else the call fails with EPERM) */
        SIGNER_NO_SANDBOX = 1u << 1,        /* tests: no seccomp filter (everything else is done) */
};

struct signer; /* opaque; the parent's handle */

/* What a leaf asks for (borrowed strings). san.uri may be used too. */
struct signer_leaf {
        const char *common_name; /* 1..SIGNER_MAX_CN printable bytes */
        struct tls_san san;      /* at least one name; at most SIGNER_MAX_SANS of each type */
        int64_t not_before;      /* unix seconds; clamped by the child (see above) */
        int64_t not_after;
        unsigned usage; /* TLS_USAGE_SERVER and/or TLS_USAGE_CLIENT */
};

/*
 * Forks the signer (see above: single-threaded callers only). When key_pem is not NULL it is the
 * CA's private key PEM (a BUF_SECURE buffer, -EINVAL otherwise) and cert_pem its certificate:
 * they are handed over as by signer_load_ca(), and key_pem is wiped and emptied (buf_done) on
 * every return, success or not. key_pem NULL starts a signer without a CA (requests get -ENOKEY
 * until signer_load_ca()): the operator reads its CA from vault after it has started threads.
 * *ret: signer_free(). -EINVAL, -errno of socketpair/fork, or the child's answer to the CA.
 */
int signer_start(struct buf *key_pem, const char *cert_pem, size_t cert_len, unsigned flags,
                 struct signer **ret);

/* Closes the socket (the child sees EOF and leaves), reaps the child. Accepts NULL. Returns
 * NULL. */
struct signer *signer_free(struct signer *s);

/* The child's pid (for tests and for the operator's log line). */
pid_t signer_pid(const struct signer *s);

/* Replaces the CA (a rotation): key_pem (BUF_SECURE, wiped and emptied on every return) and its
 * certificate PEM. The child checks that the certificate is a CA that may sign certificates and
 * that the key is its key; on any error the previous CA stays. */
int signer_load_ca(struct signer *s, struct buf *key_pem, const char *cert_pem, size_t cert_len);

/* A leaf for the public key spki (SubjectPublicKeyInfo DER), signed by the CA. *ret: DER,
 * tls_cert_done(). */
int signer_issue(struct signer *s, const uint8_t *spki, size_t spki_len,
                 const struct signer_leaf *leaf, struct tls_cert *ret);

/* The same for the public key of a CSR (PEM "CERTIFICATE REQUEST", at most SIGNER_MAX_FIELD
 * bytes), whose self-signature the child verifies (proof of possession). The names, usage and
 * validity are the ones in leaf, never the CSR's. */
int signer_issue_csr(struct signer *s, const char *csr_pem, size_t csr_len,
                     const struct signer_leaf *leaf, struct tls_cert *ret);

/* The current CA certificate (DER). -ENOKEY when none is loaded. */
int signer_ca_cert(struct signer *s, struct tls_cert *ret);

/* Sends msg as it is (no check on this side) and returns the status the child answers (0 or
 * -errno), or -errno of the transport. For tests: it is what a compromised parent can do. */
int signer_raw(struct signer *s, const uint8_t *msg, size_t len);

/* ---- the wire format (exposed for the fuzz target and the tests) -----------------------------
 *
 * One datagram per message, at most SIGNER_MAX_MSG bytes.
 *   request:  u16 op, u16 flags (0), then fields;
 *   response: i32 status (0 or -errno), then fields (none unless status is 0);
 *   field:    u16 tag, u16 length, length bytes.  (all integers big-endian)
 * Every field may appear once, except DNS, IP and URI (at most SIGNER_MAX_SANS each). A field
 * an operation does not take, an unknown tag, a truncated field or trailing bytes: -EPROTO.
 * Text fields hold no NUL byte and are copied NUL-terminated. Times are i64, usage one byte.
 *   ISSUE:     SPKI, CN, DNS*, IP*, URI*, NOT_BEFORE, NOT_AFTER, USAGE     -> CERT
 *   ISSUE_CSR: CSR, CN, DNS*, IP*, URI*, NOT_BEFORE, NOT_AFTER, USAGE      -> CERT
 *   PUBLIC:    (nothing)                                                   -> CERT (the CA's)
 *   LOAD_CA:   KEY (PEM), CA (certificate PEM)                             -> (nothing)
 */
enum signer_op {
        SIGNER_OP_ISSUE = 1,
        SIGNER_OP_ISSUE_CSR = 2,
        SIGNER_OP_PUBLIC = 3,
        SIGNER_OP_LOAD_CA = 4,
};

enum signer_tag {
        SIGNER_TAG_SPKI = 1,
        SIGNER_TAG_CSR = 2,
        SIGNER_TAG_CN = 3,
        SIGNER_TAG_DNS = 4,
        SIGNER_TAG_IP = 5,
        SIGNER_TAG_URI = 6,
        SIGNER_TAG_NOT_BEFORE = 7,
        SIGNER_TAG_NOT_AFTER = 8,
        SIGNER_TAG_USAGE = 9,
        SIGNER_TAG_KEY = 10,
        SIGNER_TAG_CA = 11,
        SIGNER_TAG_CERT = 12,
};

#define SIGNER_MAX_IP_TEXT 45 /* INET6_ADDRSTRLEN - 1 */

/* A decoded request. Binary fields point into the message (valid while it is); text fields are
 * copied here, NUL-terminated. */
struct signer_request {
        enum signer_op op;
        const uint8_t *spki, *csr, *key, *ca;
        size_t spki_len, csr_len, key_len, ca_len;
        char cn[SIGNER_MAX_CN + 1];
        char dns[SIGNER_MAX_SANS][TLS_MAX_NAME + 1];
        char ip[SIGNER_MAX_SANS][SIGNER_MAX_IP_TEXT + 1];
        char uri[SIGNER_MAX_SANS][TLS_MAX_URI + 1];
        size_t n_dns, n_ip, n_uri;
        bool has_cn, has_not_before, has_not_after, has_usage;
        int64_t not_before, not_after;
        unsigned usage;
};

/* Decodes one request; checks the framing, the limits and that the operation has its required
 * fields (ISSUE: SPKI, CN, both times, USAGE; ISSUE_CSR: CSR instead of SPKI; LOAD_CA: KEY and
 * CA). Semantic checks (names, validity, the keys) are the child's. -EPROTO, -E2BIG. */
int signer_request_decode(const uint8_t *msg, size_t len, struct signer_request *ret);

/* Encodes a request (the inverse of decode; fields in tag order). out should be BUF_SECURE for
 * LOAD_CA. -E2BIG over SIGNER_MAX_MSG or a field limit, -EINVAL for a text field with a NUL. */
int signer_request_encode(const struct signer_request *req, struct buf *out);

/* Decodes a response: *ret_status is its status; on status 0, *ret_cert / *ret_cert_len point to
 * the CERT field in msg (NULL / 0 when absent). -EPROTO, -E2BIG. A status that is not 0 or a
 * negative errno (-1..-4095) is -EPROTO. */
int signer_response_decode(const uint8_t *msg, size_t len, int *ret_status,
                           const uint8_t **ret_cert, size_t *ret_cert_len);

/* Encodes a response (cert may be NULL). */
int signer_response_encode(int status, const uint8_t *cert, size_t cert_len, struct buf *out);

/* The child's side without the process: the CA state and the handling of one request, exposed
 * for the fuzz target and the tests (the child runs exactly this). */
struct signer_core;
int signer_core_new(struct signer_core **ret);
struct signer_core *signer_core_free(struct signer_core *c);
/* Handles one request message and appends the response message to resp (never fails to answer
 * unless resp cannot be appended to: -ENOMEM, -E2BIG). */
int signer_core_handle(struct signer_core *c, const uint8_t *msg, size_t len, struct buf *resp);

static inline void signer_freep(struct signer **s) {
        signer_free(*s);
}
#define _cleanup_signer_ __attribute__((cleanup(signer_freep)))
static inline void signer_core_freep(struct signer_core **c) {
        signer_core_free(*c);
}
#define _cleanup_signer_core_ __attribute__((cleanup(signer_core_freep)))
