/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls/transport.h: TLS on the wire. The two hooks http.c installs on curl's TLS context (client
 * contexts: trust anchors, client certificates) and a TLS server (swappable certificate,
 * non-blocking connections for an epoll loop; used by httpd.c). Keys and certificates are in
 * common/tls/cert.h; the conventions (errors, secrets) stated there apply here too. See
 * docs/tls.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tls/cert.h"

/* ---- TLS contexts (curl's CURLOPT_SSL_CTX_FUNCTION; ctx is a WOLFSSL_CTX *) --------------- */

/* A fresh client WOLFSSL_CTX (TLS 1.2+), for callers that drive wolfSSL through this module and
 * for tests of the two functions below. Free with tls_ctx_free() (accepts NULL). -ENOMEM. */
int tls_client_ctx_new(void **ret);
void tls_ctx_free(void *ctx);

/* Adds every certificate of a PEM bundle (at most TLS_MAX_CA_CERTS blocks) as a trust anchor;
 * blocks that are not certificates or do not parse are skipped. Like openssl's CAfile, a
 * certificate without CA:TRUE is accepted as an anchor (pinning a self-signed server
 * certificate). Returns the number added (>= 1); -EBADMSG when none could be added or the armour
 * is broken, -E2BIG. */
int tls_ctx_load_ca_pem(void *ctx, const char *pem, size_t len);

/* Installs a certificate chain (leaf first) and its private key. The key must match the leaf:
 * -EBADMSG otherwise (and the context's key is then left untouched). */
int tls_ctx_use_client_cert_pem(void *ctx, const char *cert_pem, size_t cert_len,
                                const char *key_pem, size_t key_len);

/*
 * A server reached by an IP address (https://198.18.0.1:8443, https://[fd00::1]:8443) must name
 * that address in an iPAddress subjectAltName (RFC 6125 section 6.2.1 / RFC 2818 section 3.1):
 * the address compared as bytes, never as text against a DNS name or the subject's CN. wolfSSL's
 * own host check (what curl's wolfSSL backend asks for) compares the text of the address with
 * every SAN of any type and, without SANs, with the CN, so a DNS SAN "198.18.0.1" or "*.0.0.1"
 * passes, and it writes IPv6 SANs in a form ("0000:...:0001") no IPv6 URL host matches.
 *
 * tls_ip_parse() reads an address literal (IPv4 dotted quad, IPv6 text, with or without the URL's
 * brackets, no zone): 0, or -EINVAL when host is not one (a DNS name: nothing to do here).
 * tls_ctx_verify_ip() installs, on a client context, the verify callback that decides the name
 * check for the peer's leaf by that rule alone: a chain error stays an error, and the leaf is
 * accepted only when one of its iPAddress SANs is *ip (wolfSSL's mismatch for such a host is
 * overridden then, its match refused otherwise). The build reports every leaf to the callback
 * (WOLFSSL_ALWAYS_VERIFY_CB: a compile-time check in client.c). ip is borrowed: it must stay
 * valid for every handshake made with ctx. -EINVAL.
 */
struct tls_ip {
        int family; /* AF_INET or AF_INET6 */
        uint8_t addr[16];
};
int tls_ip_parse(const char *host, struct tls_ip *ret);
int tls_ctx_verify_ip(void *ctx, const struct tls_ip *ip);

/* ---- TLS server (operator webhook, broker) ------------------------------------------------ */

/*
 * A server context: a certificate chain + private key that can be swapped while serving, TLS 1.2
 * and 1.3 only, forward-secret AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305, and the
 * TLS 1.3 suites), ALPN "http/1.1" (a client offering other protocols only still gets a
 * handshake without ALPN), no session tickets or cache (every connection does a full handshake),
 * and optionally client-certificate verification (mTLS) against a CA bundle.
 *
 * Swapping: tls_server_set_cert_pem() builds a complete new wolfSSL context and then replaces the
 * current one under a mutex. Connections created afterwards use the new certificate; connections
 * created before keep a reference to the old context (wolfSSL reference-counts it) and keep
 * working until they are freed. tls_server_generation() counts the installed pairs.
 *
 * Secrets: the PEM key is decoded into secmem (struct tls_key), re-encoded as DER into secmem and
 * handed to wolfSSL. Known limit: wolfSSL keeps its own copy of the key DER in its context (on
 * the ordinary heap, wiped by wolfSSL when the context is freed); see docs/tls.md.
 *
 * Thread-safety: a struct tls_server may be shared by any number of threads (tls_conn_new() and
 * tls_server_set_cert_pem() may race). A struct tls_conn is used by one thread at a time.
 */
struct tls_server;
struct tls_conn;

enum tls_client_auth {
        TLS_CLIENT_AUTH_NONE = 0, /* no certificate request */
        TLS_CLIENT_AUTH_OPTIONAL, /* request one; a presented certificate must verify */
        TLS_CLIENT_AUTH_REQUIRE,  /* a verified client certificate is required (mTLS) */
        /* Request one and keep a presented one unverified for the application
         * (tls_conn_peer_cert(), then tls_verify_certs() against anchors it may change at any
         * time, as the broker does with its rotating session CA). The handshake still proves
         * that the client holds the certificate's private key (CertificateVerify); no
         * client_ca_pem. A client without a certificate gets the handshake too. */
        TLS_CLIENT_AUTH_REQUEST,
};

struct tls_server_options {
        const char *cert_pem; /* chain, leaf first (at most TLS_MAX_BUNDLE_CERTS) */
        size_t cert_len;
        const char *key_pem; /* private key for the leaf; see tls_key_import_pem() */
        size_t key_len;
        enum tls_client_auth client_auth;
        const char *client_ca_pem; /* trust anchors for client certificates (required with
                                    * TLS_CLIENT_AUTH_OPTIONAL and _REQUIRE, unused otherwise) */
        size_t client_ca_len;
};

/*
 * Creates a server context. The options' strings are copied (the key into secmem and then
 * wolfSSL); the caller may wipe them afterwards. -EINVAL missing fields or client_auth without a
 * CA; -EBADMSG a certificate or key that does not parse, a key that does not match the leaf, a CA
 * bundle without any certificate; -ENOTSUP encrypted/unsupported keys; -E2BIG; -ENOMEM; -EIO.
 * *ret: tls_server_free().
 */
int tls_server_new(const struct tls_server_options *o, struct tls_server **ret);

/* Frees the server context. Live connections keep the wolfSSL context they were created with
 * (they hold a reference); free them too, before or after. Accepts NULL. Returns NULL. */
struct tls_server *tls_server_free(struct tls_server *s);

/*
 * Swaps in a new certificate chain + key (same checks as tls_server_new(); the client-auth
 * settings stay as they were). On error the current pair stays in service. Returns the new
 * generation (>= 2: the pair given to tls_server_new() is generation 1).
 */
int tls_server_set_cert_pem(struct tls_server *s, const char *cert_pem, size_t cert_len,
                            const char *key_pem, size_t key_len);

/* Number of certificate pairs installed so far (1 after tls_server_new()). */
uint64_t tls_server_generation(struct tls_server *s);

/* What a non-blocking operation is waiting for (tls_conn_want()). */
enum {
        TLS_WANT_READ = 1u << 0,
        TLS_WANT_WRITE = 1u << 1,
};

/*
 * Wraps a connected, non-blocking stream socket (accept4(..., SOCK_NONBLOCK)) in a server-side TLS
 * connection using the current certificate. The fd stays owned by the caller (close it after
 * tls_conn_free()). I/O uses recv()/send() with MSG_NOSIGNAL (no SIGPIPE). -ENOMEM, -EINVAL.
 * *ret: tls_conn_free().
 */
int tls_conn_new(struct tls_server *s, int fd, struct tls_conn **ret);

/* Frees the connection (does not send close_notify: call tls_conn_shutdown() first for a clean
 * close). Accepts NULL. Returns NULL. */
struct tls_conn *tls_conn_free(struct tls_conn *c);

/*
 * Drives the handshake. 0 when complete; -EAGAIN when it must be called again once the socket is
 * ready as tls_conn_want() says; -ECONNRESET when the peer closed or reset the connection;
 * -EPROTO for a handshake failure (protocol error, no shared version/cipher, a client certificate
 * that is missing or does not verify); -EIO for any other failure.
 */
int tls_conn_handshake(struct tls_conn *c);

/*
 * Reads decrypted bytes (drives the handshake first if needed). Returns the count (> 0), 0 when
 * the peer sent close_notify, -EAGAIN (see tls_conn_want()), -ECONNRESET (peer closed the TCP
 * connection without close_notify, or reset), -EPROTO, -EIO. Decrypted bytes may be buffered
 * inside: with epoll, keep reading until -EAGAIN.
 */
int tls_conn_read(struct tls_conn *c, void *buf, size_t n);

/*
 * Writes up to n bytes (at most 16 KiB per call are taken). Returns the count taken (> 0),
 * -EAGAIN (see tls_conn_want(); call again with the SAME buffer and length, as TLS requires),
 * -ECONNRESET, -EPROTO, -EIO.
 */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t n);

/* Sends close_notify (without waiting for the peer's). 0 when sent, -EAGAIN (call again),
 * -ECONNRESET / -EIO when the connection is already gone (nothing more to do). */
int tls_conn_shutdown(struct tls_conn *c);

/* TLS_WANT_* bits for the last -EAGAIN. */
unsigned tls_conn_want(const struct tls_conn *c);

/* After the handshake: "TLSv1.2" / "TLSv1.3" (static strings), "" before. */
const char *tls_conn_version(struct tls_conn *c);

/* After the handshake: the negotiated ALPN protocol ("http/1.1") or "" when none. The string is
 * owned by the connection. */
const char *tls_conn_alpn(struct tls_conn *c);

/* The generation of the certificate pair this connection serves (tls_server_generation() when it
 * was created). */
uint64_t tls_conn_generation(const struct tls_conn *c);

/* Raw bytes received/sent on the socket (TLS records included). */
void tls_conn_bytes(const struct tls_conn *c, uint64_t *ret_in, uint64_t *ret_out);

/* After the handshake with client auth: the client's verified leaf certificate (DER copy,
 * tls_cert_done()). -ENOENT when the client presented none. */
int tls_conn_peer_cert(struct tls_conn *c, struct tls_cert *ret);

/* Cleanup helpers. */
static inline void tls_server_freep(struct tls_server **s) {
        tls_server_free(*s);
}
#define _cleanup_tls_server_ __attribute__((cleanup(tls_server_freep)))
static inline void tls_conn_freep(struct tls_conn **c) {
        tls_conn_free(*c);
}
#define _cleanup_tls_conn_ __attribute__((cleanup(tls_conn_freep)))
