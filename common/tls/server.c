/* SPDX-License-Identifier: Apache-2.0 */
/* tls/server.c: the TLS server and its non-blocking connections. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/macro.h"
#include "common/tls/internal.h"
#include "common/tls/transport.h"
#include "common/tls/wolf.h"

/* ---- TLS server ---------------------------------------------------------------------------- */

/* Forward-secret AEAD suites only; wolfSSL names. */
static const char server_ciphers[] =
        "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static char server_alpn[] = "http/1.1";

struct tls_server {
        pthread_mutex_t lock; /* guards ctx and generation */
        WOLFSSL_CTX *ctx;     /* current context; connections hold their own reference */
        uint64_t generation;
        enum tls_client_auth client_auth;
        char *client_ca_pem; /* kept to build the next context on a swap */
        size_t client_ca_len;
};

struct tls_conn {
        WOLFSSL *ssl;
        int fd;
        unsigned want;
        uint64_t generation;
        uint64_t bytes_in, bytes_out;
        char alpn[32];
};

/* wolfSSL I/O callbacks: recv()/send() on the connection's socket, MSG_NOSIGNAL so a peer that
 * went away is an error and not a SIGPIPE. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        struct tls_conn *c = ctx;
        ssize_t n = recv(c->fd, buf, (size_t) sz, 0);
        if (n > 0) {
                c->bytes_in += (uint64_t) n;
                return (int) n;
        }
        if (n == 0)
                return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WOLFSSL_CBIO_ERR_WANT_READ;
        if (errno == EINTR)
                return WOLFSSL_CBIO_ERR_ISR;
        if (errno == ECONNRESET)
                return WOLFSSL_CBIO_ERR_CONN_RST;
        return WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        struct tls_conn *c = ctx;
        ssize_t n = send(c->fd, buf, (size_t) sz, MSG_NOSIGNAL);
        if (n >= 0) {
                c->bytes_out += (uint64_t) n;
                return (int) n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WOLFSSL_CBIO_ERR_WANT_WRITE;
        if (errno == EINTR)
                return WOLFSSL_CBIO_ERR_ISR;
        if (errno == ECONNRESET)
                return WOLFSSL_CBIO_ERR_CONN_RST;
        if (errno == EPIPE)
                return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        return WOLFSSL_CBIO_ERR_GENERAL;
}

/* TLS_CLIENT_AUTH_REQUEST: a presented chain is accepted whatever its issuer (the application
 * verifies it). wolfSSL calls this only for a chain that failed its own checks; returning 1
 * overrides that failure alone: the peer's key is still decoded and its CertificateVerify
 * signature over the handshake still checked, so the client must hold the certificate's key. */
static int accept_any_chain(int preverify, WOLFSSL_X509_STORE_CTX *store) {
        (void) preverify;
        (void) store;
        return 1;
}

/* A complete server context for one certificate pair (nothing shared with the previous one). */
static int server_ctx_build(const struct tls_server *s, const char *cert_pem, size_t cert_len,
                            const char *key_pem, size_t key_len, WOLFSSL_CTX **ret) {
        _cleanup_(tls_key_freep) struct tls_key *key = NULL;
        _cleanup_(tls_wolf_ctx_freep) WOLFSSL_CTX *ctx = NULL;
        struct tls_cert *certs = NULL;
        struct cert_view v;
        size_t n = 0;
        int r;

        if (!cert_pem || !key_pem || cert_len == 0 || key_len == 0)
                return -EINVAL;
        r = tls_init();
        if (r < 0)
                return r;
        r = tls_key_import_pem(key_pem, key_len, &key);
        if (r < 0)
                return r;
        r = tls_decode_certs(cert_pem, cert_len, TLS_MAX_BUNDLE_CERTS, &certs, &n);
        if (r < 0)
                return r == -ETOOMANYREFS ? -E2BIG : r;
        r = tls_inspect_der(certs[0].der, certs[0].len, NULL, &v);
        if (r == 0)
                r = tls_key_matches_spki(key, v.spki);
        if (r == 0)
                r = -EBADMSG;
        if (r > 0) {
                ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
                r = ctx ? 0 : -ENOMEM;
        }
        if (r == 0 && wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
                r = -EIO;
        if (r == 0 && wolfSSL_CTX_set_cipher_list(ctx, server_ciphers) != WOLFSSL_SUCCESS)
                r = -EIO;
        if (r == 0)
                r = tls_ctx_install(ctx, certs, n, key);
        tls_cert_array_free(certs, n);
        if (r < 0)
                return r;
        /* Every connection does a full handshake: no server-side session cache (and the build has
         * no session tickets), so a resumed session can never outlive a certificate swap. */
        (void) wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
        if (s->client_auth == TLS_CLIENT_AUTH_REQUEST)
                wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, accept_any_chain);
        else if (s->client_auth != TLS_CLIENT_AUTH_NONE) {
                r = tls_ctx_load_ca_pem(ctx, s->client_ca_pem, s->client_ca_len);
                if (r < 0)
                        return r;
                wolfSSL_CTX_set_verify(ctx,
                                       WOLFSSL_VERIFY_PEER |
                                               (s->client_auth == TLS_CLIENT_AUTH_REQUIRE
                                                        ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                        : 0),
                                       NULL);
        } else
                wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        wolfSSL_CTX_SetIORecv(ctx, io_recv);
        wolfSSL_CTX_SetIOSend(ctx, io_send);
        *ret = TAKE_PTR(ctx);
        return 0;
}

int tls_server_new(const struct tls_server_options *o, struct tls_server **ret) {
        struct tls_server *s;
        int r;

        if (!o || !ret)
                return -EINVAL;
        if (o->client_auth != TLS_CLIENT_AUTH_NONE && o->client_auth != TLS_CLIENT_AUTH_OPTIONAL &&
            o->client_auth != TLS_CLIENT_AUTH_REQUIRE && o->client_auth != TLS_CLIENT_AUTH_REQUEST)
                return -EINVAL;
        bool with_ca = o->client_auth == TLS_CLIENT_AUTH_OPTIONAL ||
                       o->client_auth == TLS_CLIENT_AUTH_REQUIRE;
        if (with_ca && (!o->client_ca_pem || o->client_ca_len == 0))
                return -EINVAL;
        if (o->client_ca_len > TLS_MAX_PEM)
                return -E2BIG;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->client_auth = o->client_auth;
        if (with_ca) {
                s->client_ca_pem = malloc(o->client_ca_len);
                if (!s->client_ca_pem) {
                        free(s);
                        return -ENOMEM;
                }
                memcpy(s->client_ca_pem, o->client_ca_pem, o->client_ca_len);
                s->client_ca_len = o->client_ca_len;
        }
        r = server_ctx_build(s, o->cert_pem, o->cert_len, o->key_pem, o->key_len, &s->ctx);
        if (r == 0 && pthread_mutex_init(&s->lock, NULL) != 0) {
                wolfSSL_CTX_free(s->ctx);
                r = -ENOMEM;
        }
        if (r < 0) {
                free(s->client_ca_pem);
                free(s);
                return r;
        }
        s->generation = 1;
        *ret = s;
        return 0;
}

struct tls_server *tls_server_free(struct tls_server *s) {
        if (!s)
                return NULL;
        if (s->ctx)
                wolfSSL_CTX_free(s->ctx); /* drops our reference; connections keep theirs */
        (void) pthread_mutex_destroy(&s->lock);
        free(s->client_ca_pem);
        free(s);
        return NULL;
}

int tls_server_set_cert_pem(struct tls_server *s, const char *cert_pem, size_t cert_len,
                            const char *key_pem, size_t key_len) {
        WOLFSSL_CTX *ctx = NULL, *old;
        uint64_t gen;
        int r;

        if (!s)
                return -EINVAL;
        r = server_ctx_build(s, cert_pem, cert_len, key_pem, key_len, &ctx);
        if (r < 0)
                return r;
        (void) pthread_mutex_lock(&s->lock);
        old = s->ctx;
        s->ctx = ctx;
        gen = ++s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        wolfSSL_CTX_free(old);
        return (int) MIN(gen, (uint64_t) INT32_MAX);
}

uint64_t tls_server_generation(struct tls_server *s) {
        uint64_t g;
        if (!s)
                return 0;
        (void) pthread_mutex_lock(&s->lock);
        g = s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        return g;
}

int tls_conn_new(struct tls_server *s, int fd, struct tls_conn **ret) {
        struct tls_conn *c;

        if (!s || fd < 0 || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = fd;
        /* wolfSSL_new() takes a reference on the context under the lock, so a concurrent swap
         * cannot free it underneath us; the connection keeps that context for its lifetime. */
        (void) pthread_mutex_lock(&s->lock);
        c->ssl = wolfSSL_new(s->ctx);
        c->generation = s->generation;
        (void) pthread_mutex_unlock(&s->lock);
        if (!c->ssl) {
                free(c);
                return -ENOMEM;
        }
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
        if (wolfSSL_UseALPN(c->ssl, server_alpn, sizeof(server_alpn) - 1,
                            WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
                wolfSSL_free(c->ssl);
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

struct tls_conn *tls_conn_free(struct tls_conn *c) {
        if (!c)
                return NULL;
        wolfSSL_free(c->ssl);
        free(c);
        return NULL;
}

/* Maps the result of a wolfSSL I/O call (<= 0) to -EAGAIN (+ want bits), 0 for close_notify,
 * -ECONNRESET, -EPROTO. */
static int conn_error(struct tls_conn *c, int ret) {
        int e = wolfSSL_get_error(c->ssl, ret);
        c->want = 0;
        switch (e) {
        case WOLFSSL_ERROR_WANT_READ:
                c->want = TLS_WANT_READ;
                return -EAGAIN;
        case WOLFSSL_ERROR_WANT_WRITE:
                c->want = TLS_WANT_WRITE;
                return -EAGAIN;
        case WOLFSSL_ERROR_ZERO_RETURN:
                return 0;
        case SOCKET_PEER_CLOSED_E:
        case SOCKET_ERROR_E:
                return -ECONNRESET;
        case MEMORY_E:
                return -ENOMEM;
        default:
                return -EPROTO;
        }
}

int tls_conn_handshake(struct tls_conn *c) {
        int ret, r;

        if (!c)
                return -EINVAL;
        if (wolfSSL_is_init_finished(c->ssl))
                return 0;
        ret = wolfSSL_accept(c->ssl);
        if (ret == WOLFSSL_SUCCESS) {
                char *name = NULL;
                unsigned short len = 0;
                c->want = 0;
                if (wolfSSL_ALPN_GetProtocol(c->ssl, &name, &len) == WOLFSSL_SUCCESS && name &&
                    len < sizeof(c->alpn)) {
                        memcpy(c->alpn, name, len);
                        c->alpn[len] = '\0';
                }
                return 0;
        }
        r = conn_error(c, ret);
        return r == 0 ? -ECONNRESET : r;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t n) {
        int ret, r;

        if (!c || !buf || n == 0)
                return -EINVAL;
        r = tls_conn_handshake(c);
        if (r < 0)
                return r;
        ret = wolfSSL_read(c->ssl, buf, (int) MIN(n, (size_t) INT32_MAX));
        if (ret > 0) {
                c->want = 0;
                return ret;
        }
        return conn_error(c, ret);
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t n) {
        int ret, r;

        if (!c || !buf || n == 0)
                return -EINVAL;
        r = tls_conn_handshake(c);
        if (r < 0)
                return r;
        ret = wolfSSL_write(c->ssl, buf, (int) MIN(n, (size_t) 16384));
        if (ret > 0) {
                c->want = 0;
                return ret;
        }
        r = conn_error(c, ret);
        return r == 0 ? -ECONNRESET : r;
}

int tls_conn_shutdown(struct tls_conn *c) {
        int ret, r;

        if (!c)
                return -EINVAL;
        if (!wolfSSL_is_init_finished(c->ssl))
                return 0; /* nothing to close cleanly */
        ret = wolfSSL_shutdown(c->ssl);
        if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
                return 0;
        r = conn_error(c, ret);
        if (r == -EAGAIN)
                return r;
        return r == 0 ? 0 : (r == -EPROTO ? -EIO : r);
}

unsigned tls_conn_want(const struct tls_conn *c) {
        return c ? c->want : 0;
}

const char *tls_conn_version(struct tls_conn *c) {
        const char *v;
        if (!c || !wolfSSL_is_init_finished(c->ssl))
                return "";
        v = wolfSSL_get_version(c->ssl);
        return v ? v : "";
}

const char *tls_conn_alpn(struct tls_conn *c) {
        return c ? c->alpn : "";
}

uint64_t tls_conn_generation(const struct tls_conn *c) {
        return c ? c->generation : 0;
}

void tls_conn_bytes(const struct tls_conn *c, uint64_t *ret_in, uint64_t *ret_out) {
        if (ret_in)
                *ret_in = c ? c->bytes_in : 0;
        if (ret_out)
                *ret_out = c ? c->bytes_out : 0;
}

int tls_conn_peer_cert(struct tls_conn *c, struct tls_cert *ret) {
        WOLFSSL_X509 *x;
        const unsigned char *der;
        int len;
        uint8_t *copy;

        if (!c || !ret)
                return -EINVAL;
        if (!wolfSSL_is_init_finished(c->ssl))
                return -ENOENT;
        x = wolfSSL_get_peer_certificate(c->ssl);
        if (!x)
                return -ENOENT;
        der = wolfSSL_X509_get_der(x, &len);
        if (!der || len <= 0) {
                wolfSSL_X509_free(x);
                return -EIO;
        }
        copy = malloc((size_t) len);
        if (!copy) {
                wolfSSL_X509_free(x);
                return -ENOMEM;
        }
        memcpy(copy, der, (size_t) len);
        wolfSSL_X509_free(x);
        *ret = (struct tls_cert){.der = copy, .len = (size_t) len};
        return 0;
}
