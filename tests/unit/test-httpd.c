/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for common/httpd and the server side of common/tls: the parser layer (table-driven,
 * whole and byte by byte), listen addresses, then real servers on 127.0.0.1:0 in threads,
 * exercised with the curl CLI, `openssl s_client`, raw sockets and common/http: TLS 1.2/1.3,
 * ALPN, verification against a test CA made with common/tls, keep-alive and pipelining, 100-
 * continue, chunked bodies, limits (400/413/414/431), slowloris and idle timeouts while others are
 * served, many connections, the connection cap, certificate swap (old connections keep the old
 * certificate, s_client sees the new serial), mTLS, handler errors, graceful stop, counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/httpd.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "tests/tap.h"

extern char **environ;

static char tmpdir[] = "/tmp/test-httpd-XXXXXX";

static uint64_t mono_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void path_in_tmp(char *out, size_t n, const char *name) {
        (void) snprintf(out, n, "%s/%s", tmpdir, name);
}

static int write_file(const char *name, const void *data, size_t len) {
        char p[256];
        path_in_tmp(p, sizeof(p), name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < len;) {
                ssize_t w = write(fd, (const char *) data + off, len - off);
                if (w <= 0) {
                        (void) close(fd);
                        return -EIO;
                }
                off += (size_t) w;
        }
        (void) close(fd);
        return 0;
}

/* Reads a file of the temp dir (malloc'd, NUL-terminated). */
static char *read_tmp(const char *name) {
        char p[256];
        path_in_tmp(p, sizeof(p), name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        _cleanup_buf_ struct buf b = BUF_INIT(8u << 20, 0);
        char chunk[4096];
        ssize_t n;
        char *s = NULL;
        size_t len;
        if (fd < 0)
                return NULL;
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
                if (buf_append(&b, chunk, (size_t) n) < 0)
                        break;
        (void) close(fd);
        if (buf_steal(&b, &s, &len) < 0)
                return NULL;
        return s;
}

/* Runs argv with stdin from the temp file `in` (or /dev/null) and stdout+stderr into the temp
 * file `out`; kills it after timeout_ms. Returns the exit status, or -errno / -ETIMEDOUT. */
static int run(char *const argv[], const char *in, const char *out, unsigned timeout_ms) {
        char inp[256] = "/dev/null", outp[256];
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status, r;
        uint64_t t0 = mono_ms();

        if (in)
                path_in_tmp(inp, sizeof(inp), in);
        path_in_tmp(outp, sizeof(outp), out);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, inp, O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r < 0)
                return r;
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                if (mono_ms() - t0 > timeout_ms) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        return -ETIMEDOUT;
                }
                (void) usleep(10000);
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;
}

/* ---- certificates ------------------------------------------------------------------------ */

struct pki {
        char ca_path[256], client_cert_path[256], client_key_path[256];
        struct buf ca_pem;
        struct buf leaf_pem[2], key_pem[2]; /* two serving pairs; keys BUF_SECURE */
        char serial[2][64];
};

static int issue(const struct tls_key *ca_key, const struct tls_cert *ca, const char *cn,
                 unsigned usage, struct buf *ret_cert_pem, struct buf *ret_key_pem,
                 char *ret_serial) {
        _cleanup_tls_key_ struct tls_key *k = NULL;
        _cleanup_tls_cert_ struct tls_cert leaf = {0};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {0};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        static const char *const dns[] = {"localhost"};
        static const char *const ips[] = {"127.0.0.1", "::1"};
        int64_t now = time(NULL);
        struct tls_cert_params p = {.common_name = cn,
                                    .not_before = now - 60,
                                    .not_after = now + 86400,
                                    .usage = usage,
                                    .san = {.dns = dns, .n_dns = 1, .ip = ips, .n_ip = 2}};
        int r;

        r = tls_key_generate(&k);
        if (r >= 0)
                r = tls_key_public_der(k, &spki);
        if (r >= 0)
                r = tls_cert_issue(ca_key, ca, (const uint8_t *) spki.data, spki.len, &p, &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, ret_cert_pem);
        if (r >= 0)
                r = tls_key_export_pem(k, ret_key_pem);
        if (r >= 0)
                r = tls_cert_inspect(&leaf, &info);
        if (r >= 0)
                (void) snprintf(ret_serial, 64, "%s", info.serial_hex);
        return r;
}

static int pki_make(struct pki *p) {
        _cleanup_tls_key_ struct tls_key *ca_key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {0};
        _cleanup_buf_ struct buf ccert = BUF_INIT(1u << 16, 0),
                                 ckey = BUF_INIT(1u << 16, BUF_SECURE);
        char cserial[64];
        int64_t now = time(NULL);
        struct tls_cert_params cp = {.common_name = "httpd test CA",
                                     .not_before = now - 3600,
                                     .not_after = now + 86400,
                                     .path_len = -1};
        int r;

        p->ca_pem = BUF_INIT(1u << 16, 0);
        for (int i = 0; i < 2; i++) {
                p->leaf_pem[i] = BUF_INIT(1u << 16, 0);
                p->key_pem[i] = BUF_INIT(1u << 16, BUF_SECURE);
        }
        r = tls_key_generate(&ca_key);
        if (r >= 0)
                r = tls_cert_create_ca(ca_key, &cp, &ca);
        if (r >= 0)
                r = tls_cert_encode_pem(&ca, &p->ca_pem);
        for (int i = 0; r >= 0 && i < 2; i++)
                r = issue(ca_key, &ca, "localhost", TLS_USAGE_SERVER, &p->leaf_pem[i],
                          &p->key_pem[i], p->serial[i]);
        if (r >= 0)
                r = issue(ca_key, &ca, "test-client", TLS_USAGE_CLIENT, &ccert, &ckey, cserial);
        if (r >= 0)
                r = write_file("ca.pem", p->ca_pem.data, p->ca_pem.len);
        if (r >= 0)
                r = write_file("client.pem", ccert.data, ccert.len);
        if (r >= 0)
                r = write_file("client.key", ckey.data, ckey.len);
        path_in_tmp(p->ca_path, sizeof(p->ca_path), "ca.pem");
        path_in_tmp(p->client_cert_path, sizeof(p->client_cert_path), "client.pem");
        path_in_tmp(p->client_key_path, sizeof(p->client_key_path), "client.key");
        return r;
}

/* ---- the handler ------------------------------------------------------------------------- */

/* Requests parked by /defer?ms=N&id=I (the deadline and the test's id), for the test to
 * complete from its own thread. */
#define MAX_PARKED 64
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct httpd_deferred *parked[MAX_PARKED];
static int handler_defer_result;

static int handle_defer(const struct httpd_request *req, struct httpd_response *resp) {
        unsigned ms = 0, id = 0;
        struct httpd_deferred *d;
        if (sscanf(req->query, "ms=%u&id=%u", &ms, &id) != 2 || id >= MAX_PARKED)
                return httpd_response_set(resp, 400, NULL, "bad query\n");
        /* The fallback: what the client gets when the completion is late. */
        int r = httpd_response_set(resp, 503, NULL, "");
        if (r >= 0)
                r = buf_printf(&resp->body, "fallback id=%u\n", id);
        if (r >= 0)
                r = httpd_response_add_header(resp, "X-Fallback", "yes");
        if (r >= 0)
                r = httpd_defer(resp, ms, &d);
        if (r < 0)
                return r;
        handler_defer_result = httpd_defer(resp, ms, &(struct httpd_deferred *){NULL});
        (void) pthread_mutex_lock(&parked_lock);
        parked[id] = d;
        (void) pthread_mutex_unlock(&parked_lock);
        return 0;
}

/* Waits (20 s) for the handler to park request id; takes its handle. */
static struct httpd_deferred *parked_take(unsigned id) {
        uint64_t t0 = mono_ms();
        for (;;) {
                (void) pthread_mutex_lock(&parked_lock);
                struct httpd_deferred *d = parked[id];
                parked[id] = NULL;
                (void) pthread_mutex_unlock(&parked_lock);
                if (d || mono_ms() - t0 > 20000)
                        return d;
                (void) usleep(2000);
        }
}

static int handler_bad_header_result = 1;
static size_t arena_chunks;

static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        (void) userdata;
        if (strcmp(req->path, "/defer") == 0)
                return handle_defer(req, resp);
        if (strcmp(req->path, "/echo") == 0) {
                const char *x = httpd_request_header(req, "x-test");
                resp->content_type = "text/plain";
                return buf_printf(&resp->body, "method=%s path=%s query=%s x-test=%s body=%.*s",
                                  req->method, req->path, req->query, x ? x : "-",
                                  (int) req->body_len, req->body) < 0
                               ? -ENOMEM
                               : 0;
        }
        if (strcmp(req->path, "/tls") == 0)
                return buf_printf(&resp->body, "version=%s alpn=%s gen=%llu", req->tls_version,
                                  req->alpn, (unsigned long long) req->tls_generation) < 0
                               ? -ENOMEM
                               : 0;
        if (strcmp(req->path, "/close") == 0) {
                resp->close = true;
                return httpd_response_set(resp, 200, NULL, "bye\n");
        }
        if (strcmp(req->path, "/fail") == 0)
                return -EIO;
        if (strcmp(req->path, "/nocontent") == 0) {
                resp->status = 204;
                return 0;
        }
        if (strcmp(req->path, "/big") == 0) {
                for (int i = 0; i < 300; i++)
                        if (buf_printf(&resp->body, "%01023d\n", i) < 0)
                                return -ENOMEM;
                return 0;
        }
        if (strcmp(req->path, "/hdr") == 0) {
                handler_bad_header_result =
                        httpd_response_add_header(resp, "Content-Length", "5") == -EINVAL &&
                        httpd_response_add_header(resp, "X-Bad", "a\r\nb: c") == -EINVAL &&
                        httpd_response_add_header(resp, "Bad Name", "v") == -EINVAL;
                return httpd_response_add_header(resp, "X-Served-By", "httpd");
        }
        if (strcmp(req->path, "/arena") == 0) {
                arena_chunks = 0;
                while (arena_alloc(req->arena, 1024) && arena_chunks < 100000)
                        arena_chunks++;
                return httpd_response_set(resp, 200, NULL, "ok");
        }
        if (strcmp(req->path, "/mtls") == 0) {
                _cleanup_tls_cert_ struct tls_cert c = {0};
                _cleanup_tls_cert_info_ struct tls_cert_info i = {0};
                if (!req->tls || tls_conn_peer_cert(req->tls, &c) < 0 ||
                    tls_cert_inspect(&c, &i) < 0)
                        return httpd_response_set(resp, 403, NULL, "no client certificate\n");
                return buf_printf(&resp->body, "cn=%s", i.subject_cn) < 0 ? -ENOMEM : 0;
        }
        return httpd_response_set(resp, 404, NULL, "not found\n");
}

/* ---- servers in threads ------------------------------------------------------------------ */

struct srv {
        struct httpd *h;
        pthread_t t[2];
        int loops;
        int rc[2];
        int port;
        char url[64];
};

struct loop_arg {
        struct srv *s;
        int i;
};
static struct loop_arg loop_args[16][2];
static int n_servers;

static void *loop_main(void *p) {
        struct loop_arg *a = p;
        a->s->rc[a->i] = httpd_run(a->s->h);
        return NULL;
}

static int srv_start(struct srv *s, struct httpd_options *o, int loops) {
        int r;
        memset(s, 0, sizeof(*s));
        o->address = "127.0.0.1:0";
        o->handler = handler;
        r = httpd_new(o, &s->h);
        if (r < 0)
                return r;
        s->port = httpd_port(s->h);
        (void) snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", o->tls ? "https" : "http",
                        s->port);
        s->loops = loops;
        for (int i = 0; i < loops; i++) {
                struct loop_arg *a = &loop_args[n_servers][i];
                *a = (struct loop_arg){.s = s, .i = i};
                if (pthread_create(&s->t[i], NULL, loop_main, a) != 0)
                        return -EAGAIN;
        }
        n_servers++;
        return 0;
}

/* Graceful stop; returns the milliseconds it took, or -1 if a loop failed. */
static long srv_stop(struct srv *s) {
        uint64_t t0 = mono_ms();
        bool good = true;
        httpd_stop(s->h);
        for (int i = 0; i < s->loops; i++) {
                (void) pthread_join(s->t[i], NULL);
                good = good && s->rc[i] == 0;
        }
        s->h = httpd_free(s->h);
        return good ? (long) (mono_ms() - t0) : -1;
}

/* ---- raw sockets ------------------------------------------------------------------------- */

static int tcp_connect(int port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        return fd;
}

/* A connection from another loopback address (127.0.0.x): another client, as the server sees
 * it. */
static int tcp_connect_from(const char *src, int port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        struct sockaddr_in b = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
                return -errno;
        if (inet_pton(AF_INET, src, &b.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *) &b, sizeof(b)) < 0 ||
            connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        return fd;
}

/* Waits (generously: 20 s) until the server's counters satisfy cond. */
static bool stats_wait(struct httpd *h, bool (*cond)(const struct httpd_stats *, const void *),
                       const void *arg, struct httpd_stats *ret) {
        uint64_t t0 = mono_ms();
        for (;;) {
                httpd_get_stats(h, ret);
                if (cond(ret, arg))
                        return true;
                if (mono_ms() - t0 > 20000)
                        return false;
                (void) usleep(5000);
        }
}

/* The server counts a failed handshake after it sent its alert, so the client may see the end
 * first: wait for the counter. */
static bool handshake_failures_over(const struct httpd_stats *st, const void *arg) {
        return st->tls_handshake_failures >
               ((const struct httpd_stats *) arg)->tls_handshake_failures;
}

static bool send_all(int fd, const char *s, size_t n);
static bool send_str(int fd, const char *s) {
        return send_all(fd, s, strlen(s));
}

static bool send_all(int fd, const char *s, size_t n) {
        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
                if (w <= 0)
                        return false;
                s += w;
                n -= (size_t) w;
        }
        return true;
}

/* Reads until EOF, `until` appears (when not NULL), or timeout. *ret_eof tells whether the peer
 * closed. Result in a static-sized buffer owned by the caller. */
static size_t recv_until(int fd, char *out, size_t max, const char *until, unsigned timeout_ms,
                         bool *ret_eof) {
        size_t got = 0;
        uint64_t t0 = mono_ms();
        *ret_eof = false;
        out[0] = '\0';
        while (got < max - 1) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                uint64_t el = mono_ms() - t0;
                if (until && strstr(out, until))
                        break;
                if (el >= timeout_ms || poll(&pfd, 1, (int) (timeout_ms - el)) <= 0)
                        break;
                ssize_t n = recv(fd, out + got, max - 1 - got, 0);
                if (n <= 0) {
                        *ret_eof = true;
                        break;
                }
                got += (size_t) n;
                out[got] = '\0';
        }
        return got;
}

/* One raw exchange on a new connection: sends req, reads until EOF (or timeout). */
static bool raw_exchange(int port, const char *req, char *out, size_t max, bool *ret_eof) {
        int fd = tcp_connect(port);
        if (fd < 0)
                return false;
        bool good = send_all(fd, req, strlen(req));
        (void) recv_until(fd, out, max, NULL, 3000, ret_eof);
        (void) close(fd);
        return good;
}

/* ---- pure tests ------------------------------------------------------------------------ */

static void test_addresses(void) {
        static const struct {
                const char *s;
                int family; /* 0: invalid */
                int port;
        } cases[] = {
                {":8081", AF_INET6, 8081},
                {"127.0.0.1:0", AF_INET, 0},
                {"[::1]:9443", AF_INET6, 9443},
                {"localhost:8080", AF_INET, 8080},
                {"0.0.0.0:65535", AF_INET, 65535},
                {"*:80", AF_INET6, 80},
                {"127.0.0.1:65536", 0, 0},
                {"127.0.0.1", 0, 0},
                {"::1:80", 0, 0},
                {"[::1]80", 0, 0},
                {"example.com:80", 0, 0},
                {"1.2.3.4:-1", 0, 0},
                {"1.2.3.4:+80", 0, 0},
                {"1.2.3.4:80x", 0, 0},
                {"", 0, 0},
                {"[]:80", 0, 0},
                {"1.2.3.4:", 0, 0},
                {"[::1]:000080", 0, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct sockaddr_storage ss;
                socklen_t sl;
                int r = httpd_parse_address(cases[i].s, &ss, &sl);
                if (!cases[i].family) {
                        is_int(r, -EINVAL, "address '%s' rejected", cases[i].s);
                        continue;
                }
                int port = ss.ss_family == AF_INET
                                   ? ntohs(((struct sockaddr_in *) &ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
                ok(r == 0 && ss.ss_family == cases[i].family && port == cases[i].port,
                   "address '%s' parsed", cases[i].s);
        }
}

struct pcase {
        const char *name;
        const char *in;
        int result; /* HTTPD_PARSE_REQUEST or the error status */
        const char *method, *path, *query, *body;
        size_t n_headers;
};

static const struct pcase pcases[] = {
        {"simple GET", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n", HTTPD_PARSE_REQUEST, "GET",
         "/a/b", "x=1&y=2", "", 1},
        {"POST with body", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
         HTTPD_PARSE_REQUEST, "POST", "/echo", "", "hello", 2},
        {"chunked body",
         "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
         "0\r\nX-Trailer: t\r\n\r\n",
         HTTPD_PARSE_REQUEST, "POST", "/c", "", "abcde", 2},
        {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", HTTPD_PARSE_REQUEST, "GET", "/", "", "",
         0},
        {"empty header value", "GET / HTTP/1.1\r\nHost: h\r\nX-E:\r\nX-F:  v  \r\n\r\n",
         HTTPD_PARSE_REQUEST, "GET", "/", "", "", 3},
        {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, NULL, NULL, NULL, NULL, 0},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, NULL, NULL, NULL,
         NULL, 0},
        {"unknown method", "FROB / HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL, NULL, NULL, NULL, 0},
        {"garbage", "\x01\x02\x03 nonsense\r\n\r\n", 400, NULL, NULL, NULL, NULL, 0},
        {"space in header name", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n", 400, NULL,
         NULL, NULL, NULL, 0},
        {"CL and TE",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         400, NULL, NULL, NULL, NULL, 0},
        {"two Content-Length",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\nab",
         400, NULL, NULL, NULL, NULL, 0},
        {"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         400, NULL, NULL, NULL, NULL, 0},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, NULL, NULL, NULL, NULL, 0},
        {"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405, NULL, NULL, NULL, NULL, 0},
        {"Expect other",
         "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n"
         "a",
         417, NULL, NULL, NULL, NULL, 0},
        {"body over the limit (Content-Length)",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n", 413, NULL, NULL, NULL, NULL,
         0},
        {"body over the limit (chunked)",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123\r\n1\r\nx\r\n0\r\n\r\n",
         413, NULL, NULL, NULL, NULL, 0},
        {"NUL in the target", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL, NULL, NULL, NULL,
         0},
};

/* Limits for the parser table: small, so each limit is easy to cross. */
static const struct httpd_limits small_limits = {
        .max_request_line = 64, .max_header_bytes = 128, .max_headers = 4, .max_body = 64};

/* Feeds `in` in pieces of `step` bytes (0: all at once), handling 100-continue. */
static int parse_all(const char *in, size_t len, size_t step, struct httpd_parser *p) {
        size_t off = 0;
        while (off < len) {
                size_t n = step ? MIN(step, len - off) : len - off, used = 0;
                int r = httpd_parser_feed(p, in + off, n, &used);
                if (r < 0 || used > n)
                        return -EIO;
                off += used;
                if (r == HTTPD_PARSE_REQUEST || r == HTTPD_PARSE_ERROR)
                        return r;
                if (r == HTTPD_PARSE_MORE && used != n)
                        return -EIO;
        }
        return HTTPD_PARSE_MORE;
}

static void test_parser_table(void) {
        for (size_t i = 0; i < ELEMENTSOF(pcases); i++) {
                const struct pcase *c = &pcases[i];
                size_t len = strlen(c->in);
                if (strcmp(c->name, "NUL in the target") == 0)
                        len = sizeof("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n") - 1;
                for (size_t step = 0; step <= 1; step++) {
                        _cleanup_httpd_parser_ struct httpd_parser *p = NULL;
                        const char *msg = NULL;
                        if (httpd_parser_new(&small_limits, &p) < 0) {
                                ok(false, "parser_new");
                                continue;
                        }
                        int r = parse_all(c->in, len, step, p);
                        if (c->result != HTTPD_PARSE_REQUEST) {
                                ok(r == HTTPD_PARSE_ERROR &&
                                           httpd_parser_error(p, &msg) == c->result,
                                   "%s (%s): %d", c->name, step ? "byte by byte" : "whole",
                                   c->result);
                                ok(httpd_parser_request(p) == NULL && msg && *msg,
                                   "%s: no request, a message ('%s')", c->name, msg ? msg : "");
                                continue;
                        }
                        const struct httpd_request *q = httpd_parser_request(p);
                        ok(r == HTTPD_PARSE_REQUEST && q && strcmp(q->method, c->method) == 0 &&
                                   strcmp(q->path, c->path) == 0 &&
                                   strcmp(q->query, c->query) == 0 &&
                                   q->body_len == strlen(c->body) &&
                                   memcmp(q->body, c->body, q->body_len) == 0 &&
                                   q->n_headers == c->n_headers,
                           "%s (%s)", c->name, step ? "byte by byte" : "whole");
                }
        }
        /* header details */
        _cleanup_httpd_parser_ struct httpd_parser *p = NULL;
        const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nX-E:\r\nX-F:  v  \r\n\r\n";
        (void) httpd_parser_new(NULL, &p);
        (void) parse_all(in, sizeof(in) - 1, 0, p);
        const struct httpd_request *q = httpd_parser_request(p);
        ok(q && strcmp(httpd_request_header(q, "x-f"), "v") == 0 &&
                   strcmp(httpd_request_header(q, "X-E"), "") == 0 &&
                   httpd_request_header(q, "X-G") == NULL && q->keep_alive,
           "header lookup is case-insensitive, values trimmed, keep-alive by default");
}

static void test_parser_limits(void) {
        static const struct {
                const char *name;
                int status;
        } cases[] = {{"target", 414}, {"headers", 431}, {"count", 431}, {"padding", 431}};
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_httpd_parser_ struct httpd_parser *p = NULL;
                _cleanup_buf_ struct buf b = BUF_INIT(1u << 16, 0);
                const char *msg = NULL;
                (void) httpd_parser_new(&small_limits, &p);
                if (i == 0)
                        (void) buf_printf(&b, "GET /%065d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
                else if (i == 1)
                        (void) buf_printf(&b, "GET / HTTP/1.1\r\nHost: h\r\nX: %0129d\r\n\r\n", 0);
                else if (i == 2)
                        (void) buf_printf(&b, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: "
                                              "1\r\nD: 1\r\n\r\n");
                else
                        (void) buf_printf(&b, "GET / HTTP/1.1\r\nHost: h\r\nX:%*s1\r\n\r\n", 300,
                                          "");
                int r = parse_all(b.data, b.len, 0, p);
                ok(r == HTTPD_PARSE_ERROR && httpd_parser_error(p, &msg) == cases[i].status,
                   "over the %s limit: %d (%s)", cases[i].name, cases[i].status, msg ? msg : "");
        }
        struct httpd_limits bad = {.max_body = HTTPD_LIMIT_MAX_BODY + 1};
        struct httpd_parser *p = NULL;
        is_int(httpd_parser_new(&bad, &p), -EINVAL, "limits over the bounds are refused");
}

static void test_parser_pipeline(void) {
        _cleanup_httpd_parser_ struct httpd_parser *p = NULL;
        const char in[] = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                          "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
                          "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        size_t off = 0, used = 0;
        const char *want[] = {"/one", "/two", "/three"};
        (void) httpd_parser_new(NULL, &p);
        for (int i = 0; i < 3; i++) {
                int r = httpd_parser_feed(p, in + off, sizeof(in) - 1 - off, &used);
                const struct httpd_request *q = httpd_parser_request(p);
                off += used;
                ok(r == HTTPD_PARSE_REQUEST && q && strcmp(q->path, want[i]) == 0,
                   "pipelined request %d is %s", i + 1, want[i]);
                if (i == 0) {
                        size_t u2 = 99;
                        ok(httpd_parser_feed(p, in + off, 1, &u2) == HTTPD_PARSE_REQUEST && u2 == 0,
                           "nothing consumed while a request is pending");
                }
                if (i == 2)
                        ok(q && !q->keep_alive, "Connection: close seen");
                httpd_parser_next(p);
        }
        ok(off == sizeof(in) - 1, "every byte consumed");
        /* 100-continue */
        _cleanup_httpd_parser_ struct httpd_parser *c = NULL;
        const char ex[] = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                          "Content-Length: 3\r\n\r\nabc";
        (void) httpd_parser_new(NULL, &c);
        int r = httpd_parser_feed(c, ex, sizeof(ex) - 1, &used);
        ok(r == HTTPD_PARSE_CONTINUE && used == sizeof(ex) - 1 - 4,
           "Expect: 100-continue stops after the head");
        r = httpd_parser_feed(c, ex + used, sizeof(ex) - 1 - used, &used);
        ok(r == HTTPD_PARSE_REQUEST && httpd_parser_request(c)->body_len == 3,
           "then the body completes the request");
}

/* ---- servers ----------------------------------------------------------------------------- */

static struct pki pki;

static struct tls_server *new_tls(int pair, enum tls_client_auth auth) {
        struct tls_server *s = NULL;
        struct tls_server_options o = {.cert_pem = pki.leaf_pem[pair].data,
                                       .cert_len = pki.leaf_pem[pair].len,
                                       .key_pem = pki.key_pem[pair].data,
                                       .key_len = pki.key_pem[pair].len,
                                       .client_auth = auth,
                                       .client_ca_pem = pki.ca_pem.data,
                                       .client_ca_len = pki.ca_pem.len};
        return tls_server_new(&o, &s) < 0 ? NULL : s;
}

static void test_tls_server_api(void) {
        struct tls_server *s = NULL;
        struct tls_server_options o = {.cert_pem = pki.leaf_pem[0].data,
                                       .cert_len = pki.leaf_pem[0].len,
                                       .key_pem = pki.key_pem[1].data,
                                       .key_len = pki.key_pem[1].len};
        is_int(tls_server_new(&o, &s), -EBADMSG, "a key that is not the leaf's is refused");
        o.key_pem = pki.key_pem[0].data;
        o.key_len = pki.key_pem[0].len;
        o.client_auth = TLS_CLIENT_AUTH_REQUIRE;
        is_int(tls_server_new(&o, &s), -EINVAL, "client auth without a CA is refused");
        o.client_auth = TLS_CLIENT_AUTH_NONE;
        ok(tls_server_new(&o, &s) == 0 && tls_server_generation(s) == 1, "server context");
        is_int(tls_server_set_cert_pem(s, pki.leaf_pem[1].data, pki.leaf_pem[1].len,
                                       pki.key_pem[0].data, pki.key_pem[0].len),
               -EBADMSG, "a mismatched swap is refused");
        ok(tls_server_generation(s) == 1, "and the generation is unchanged");
        is_int(tls_server_set_cert_pem(s, "x", 1, "y", 1), -EBADMSG, "garbage swap refused");
        s = tls_server_free(s);
}

static char *curl_out(char **argv, int *ret_rc) {
        *ret_rc = run(argv, NULL, "curl.out", 20000);
        return read_tmp("curl.out");
}

/* GET url with curl over TLS (the test CA), with the client pair cert/key when cert is given. */
static char *curl_client(const char *url, const char *cert, const char *key, int *ret_rc) {
        char *with[] = {"curl",        "-sS",   "--cacert",   pki.ca_path,  "--cert",
                        (char *) cert, "--key", (char *) key, (char *) url, NULL};
        char *without[] = {"curl", "-sS", "--cacert", pki.ca_path, (char *) url, NULL};
        return curl_out(cert ? with : without, ret_rc);
}

static void test_tls(void) {
        struct srv s;
        struct tls_server *tls = new_tls(0, TLS_CLIENT_AUTH_NONE);
        /* The handshake deadline is tested on its own (test_handshake_flood); here 40 clients
         * handshake at once with one loop of an ASan build, which on a loaded machine can take
         * longer than the 3 s default. */
        struct httpd_options o = {
                .tls = tls, .limits = {.max_body = 64 * 1024}, .handshake_timeout_ms = 60000};
        struct httpd_stats st0, st1;
        char url[128], url2[128], url3[128], connect[64];
        int rc;

        if (!ok(tls && srv_start(&s, &o, 1) == 0, "TLS server on %s", tls ? "127.0.0.1:0" : "-"))
                return;
        (void) snprintf(connect, sizeof(connect), "127.0.0.1:%d", s.port);
        for (int v = 2; v <= 3; v++) {
                char ver[16], max[8];
                (void) snprintf(ver, sizeof(ver), "--tlsv1.%d", v);
                (void) snprintf(max, sizeof(max), "1.%d", v);
                (void) snprintf(url, sizeof(url), "%s/tls", s.url);
                char *argv[] = {"curl",      "-sS", "--cacert", pki.ca_path, ver,
                                "--tls-max", max,   url,        NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                char want[64];
                (void) snprintf(want, sizeof(want), "version=TLSv1.%d alpn=http/1.1 gen=1", v);
                ok(rc == 0 && out && strcmp(out, want) == 0, "curl TLS 1.%d: '%s'", v,
                   out ? out : "");
        }
        for (int v = 2; v <= 3; v++) {
                char flag[16];
                (void) snprintf(flag, sizeof(flag), "-tls1_%d", v);
                char *argv[] = {"openssl",  "s_client",    "-connect",  connect,
                                "-CAfile",  pki.ca_path,   flag,        "-alpn",
                                "http/1.1", "-servername", "localhost", "-verify_return_error",
                                NULL};
                rc = run(argv, NULL, "sclient.out", 20000);
                _cleanup_free_ char *out = read_tmp("sclient.out");
                char proto[32];
                (void) snprintf(proto, sizeof(proto), "TLSv1.%d", v);
                ok(rc == 0 && out && strstr(out, "Verify return code: 0 (ok)") &&
                           strstr(out, "ALPN protocol: http/1.1") && strstr(out, proto),
                   "openssl s_client TLS 1.%d: verified against the test CA, ALPN http/1.1", v);
        }
        httpd_get_stats(s.h, &st0);
        {
                char *argv[] = {"openssl",
                                "s_client",
                                "-connect",
                                connect,
                                "-tls1_1",
                                "-cipher",
                                "DEFAULT:@SECLEVEL=0",
                                NULL};
                rc = run(argv, NULL, "sclient.out", 20000);
                (void) stats_wait(s.h, handshake_failures_over, &st0, &st1);
                ok(rc != 0 && st1.tls_handshake_failures > st0.tls_handshake_failures,
                   "TLS 1.1 refused and counted as a handshake failure");
        }
        /* keep-alive: three requests, one connection */
        httpd_get_stats(s.h, &st0);
        (void) snprintf(url, sizeof(url), "%s/echo?a=1", s.url);
        (void) snprintf(url2, sizeof(url2), "%s/echo?a=2", s.url);
        (void) snprintf(url3, sizeof(url3), "%s/hdr", s.url);
        {
                char *argv[] = {
                        "curl", "-sS", "--cacert", pki.ca_path, "-w", " [%{num_connects}]\n",
                        "-i",   url,   url2,       url3,        NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                httpd_get_stats(s.h, &st1);
                ok(rc == 0 && out && strstr(out, "query=a=1") && strstr(out, "query=a=2") &&
                           strstr(out, "[1]") && strstr(out, "[0]") &&
                           strstr(out, "X-Served-By: httpd") && strstr(out, "Content-Length: ") &&
                           strstr(out, "Date: "),
                   "keep-alive: three requests over TLS");
                ok(st1.connections_accepted - st0.connections_accepted == 1 &&
                           st1.requests - st0.requests == 3,
                   "one connection, three requests (%llu, %llu)",
                   (unsigned long long) (st1.connections_accepted - st0.connections_accepted),
                   (unsigned long long) (st1.requests - st0.requests));
                ok(handler_bad_header_result == 1,
                   "response headers: reserved names, CR LF and bad names refused");
        }
        /* POST body, oversized body, huge headers */
        {
                (void) snprintf(url, sizeof(url), "%s/echo", s.url);
                char *argv[] = {"curl",        "-sS",           "--cacert", pki.ca_path, "-H",
                                "X-Test: yes", "--data-binary", "payload",  url,         NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                ok(rc == 0 && out &&
                           strcmp(out, "method=POST path=/echo query= x-test=yes body=payload") ==
                                   0,
                   "POST echoed: '%s'", out ? out : "");
        }
        {
                _cleanup_free_ char *big = malloc(100 * 1024);
                memset(big, 'b', 100 * 1024);
                (void) write_file("big.bin", big, 100 * 1024);
                char at[300];
                (void) snprintf(at, sizeof(at), "@%s/big.bin", tmpdir);
                char *argv[] = {"curl",         "-sS",           "--cacert", pki.ca_path, "-w",
                                "%{http_code}", "--data-binary", at,         url,         NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                ok(rc == 0 && out && strstr(out, "413 Content Too Large: request body too large") &&
                           strstr(out, "\n413"),
                   "a 100 KiB body over a 64 KiB limit: 413 with a clear message");
        }
        {
                _cleanup_buf_ struct buf h = BUF_INIT(64 * 1024, 0);
                (void) buf_printf(&h, "X-Huge: %020000d", 7);
                char *argv[] = {"curl",     "-sS",
                                "--cacert", pki.ca_path,
                                "-w",       "%{http_code}",
                                "-H",       (char *) buf_cstr(&h),
                                url,        NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                ok(rc == 0 && out && strstr(out, "\n431"), "20 KB of header: 431");
        }
        {
                (void) snprintf(url, sizeof(url), "%s/big", s.url);
                (void) snprintf(url2, sizeof(url2), "%s/fail", s.url);
                char *argv[] = {"curl", "-sS",       "--cacert",  pki.ca_path,
                                "-o",   "/dev/null", "-w",        "%{http_code} %{size_download}\n",
                                url,    "-o",        "/dev/null", url2,
                                NULL};
                httpd_get_stats(s.h, &st0);
                _cleanup_free_ char *out = curl_out(argv, &rc);
                httpd_get_stats(s.h, &st1);
                ok(rc == 0 && out && strstr(out, "200 307200") && strstr(out, "500 "),
                   "300 KiB response, then a handler error as 500");
                ok(st1.handler_errors == st0.handler_errors + 1 &&
                           st1.responses[5] == st0.responses[5] + 1 &&
                           st1.bytes_out > st0.bytes_out + 307200,
                   "counted: handler error, 5xx, bytes out");
        }
        /* many TLS clients in parallel, two loops would be the next server; here one loop */
        {
                char *argv[160];
                int n = 0;
                argv[n++] = "curl";
                argv[n++] = "-sS";
                argv[n++] = "-Z";
                argv[n++] = "--parallel-max";
                argv[n++] = "40";
                argv[n++] = "--cacert";
                argv[n++] = pki.ca_path;
                argv[n++] = "-w";
                argv[n++] = "%{http_code}\n";
                (void) snprintf(url, sizeof(url), "%s/echo", s.url);
                for (int i = 0; i < 40; i++) {
                        argv[n++] = "-o";
                        argv[n++] = "/dev/null";
                        argv[n++] = url;
                }
                argv[n] = NULL;
                _cleanup_free_ char *out = curl_out(argv, &rc);
                int oks = 0;
                for (const char *p = out; p && (p = strstr(p, "200\n")); p += 4)
                        oks++;
                ok(rc == 0 && oks == 40, "40 parallel TLS clients served (%d)", oks);
        }
        ok(srv_stop(&s) >= 0, "TLS server stopped");
        tls = tls_server_free(tls);
}

static void test_swap(void) {
        struct srv s;
        struct tls_server *tls = new_tls(0, TLS_CLIENT_AUTH_NONE);
        struct httpd_options o = {.tls = tls};
        char connect[64], serial[2][128];
        struct http_client *a = NULL, *b = NULL;
        struct http_response resp = {0};
        struct http_result res = {0};
        struct http_request req = {.method = HTTP_GET, .path = "/tls"};
        int rc;

        if (!ok(tls && srv_start(&s, &o, 2) == 0, "TLS server with two loops"))
                return;
        (void) snprintf(connect, sizeof(connect), "127.0.0.1:%d", s.port);
        for (int i = 0; i < 2; i++)
                (void) snprintf(serial[i], sizeof(serial[i]), "serial=%s", pki.serial[i]);

        struct http_options ho = {.base_url = s.url,
                                  .ca_pem = pki.ca_pem.data,
                                  .ca_pem_len = pki.ca_pem.len,
                                  .max_attempts = 1};
        ok(http_client_new(&ho, &a) == 0 && http_request(a, &req, &resp, &res) == 0 &&
                   resp.status == 200 && strstr(buf_cstr(&resp.body), "gen=1"),
           "client A (common/http) on generation 1");
        http_response_done(&resp);

        char *sc[] = {"openssl", "s_client", "-connect", connect, "-CAfile", pki.ca_path, NULL};
        char *x509[] = {"openssl", "x509", "-noout", "-serial", NULL};
        rc = run(sc, NULL, "sclient.out", 20000);
        int rc2 = run(x509, "sclient.out", "serial.out", 20000);
        _cleanup_free_ char *s1 = read_tmp("serial.out");
        ok(rc == 0 && rc2 == 0 && s1 && strcasestr(s1, serial[0]),
           "s_client sees the first certificate (%s)", pki.serial[0]);

        rc = tls_server_set_cert_pem(tls, pki.leaf_pem[1].data, pki.leaf_pem[1].len,
                                     pki.key_pem[1].data, pki.key_pem[1].len);
        is_int(rc, 2, "certificate swapped: generation 2");

        ok(http_request(a, &req, &resp, &res) == 0 && resp.status == 200 &&
                   strstr(buf_cstr(&resp.body), "gen=1") && res.connects == 0,
           "client A keeps its connection and its certificate (connects=%u)", res.connects);
        http_response_done(&resp);

        rc = run(sc, NULL, "sclient.out", 20000);
        rc2 = run(x509, "sclient.out", "serial.out", 20000);
        _cleanup_free_ char *s2 = read_tmp("serial.out");
        ok(rc == 0 && rc2 == 0 && s2 && strcasestr(s2, serial[1]),
           "s_client now sees the new certificate (%s)", pki.serial[1]);

        ok(http_client_new(&ho, &b) == 0 && http_request(b, &req, &resp, &res) == 0 &&
                   resp.status == 200 && strstr(buf_cstr(&resp.body), "gen=2"),
           "a new client is served generation 2");
        http_response_done(&resp);
        a = http_client_free(a);
        b = http_client_free(b);
        ok(srv_stop(&s) >= 0, "stopped");
        tls = tls_server_free(tls);
}

static void test_mtls(void) {
        struct srv s;
        struct tls_server *tls = new_tls(0, TLS_CLIENT_AUTH_REQUIRE);
        struct httpd_options o = {.tls = tls};
        struct httpd_stats st0, st1;
        char url[128];
        int rc;

        if (!ok(tls && srv_start(&s, &o, 1) == 0, "mTLS server"))
                return;
        (void) snprintf(url, sizeof(url), "%s/mtls", s.url);
        httpd_get_stats(s.h, &st0);
        {
                free(curl_client(url, NULL, NULL, &rc));
                (void) stats_wait(s.h, handshake_failures_over, &st0, &st1);
                ok(rc != 0 && st1.tls_handshake_failures > st0.tls_handshake_failures &&
                           st1.requests == st0.requests,
                   "no client certificate: handshake refused");
        }
        {
                _cleanup_free_ char *out =
                        curl_client(url, pki.client_cert_path, pki.client_key_path, &rc);
                ok(rc == 0 && out && strcmp(out, "cn=test-client") == 0,
                   "client certificate verified and visible to the handler ('%s')", out ? out : "");
        }
        ok(srv_stop(&s) >= 0, "stopped");
        tls = tls_server_free(tls);
}

/* TLS_CLIENT_AUTH_REQUEST: the handshake completes with or without a certificate, and with one
 * from a CA the server does not know; the handler gets it (the broker verifies it itself). */
static void test_mtls_request(void) {
        _cleanup_tls_key_ struct tls_key *other_key = NULL;
        _cleanup_tls_cert_ struct tls_cert other = {0};
        _cleanup_buf_ struct buf cert = BUF_INIT(1u << 16, 0), key = BUF_INIT(1u << 16, BUF_SECURE);
        struct tls_server *tls = NULL;
        struct srv s;
        char url[128], serial[64], cert_path[256], key_path[256];
        int64_t now = time(NULL);
        int rc;

        struct tls_server_options to = {.cert_pem = pki.leaf_pem[0].data,
                                        .cert_len = pki.leaf_pem[0].len,
                                        .key_pem = pki.key_pem[0].data,
                                        .key_len = pki.key_pem[0].len,
                                        .client_auth = TLS_CLIENT_AUTH_REQUEST};
        ok(tls_key_generate(&other_key) == 0 &&
                   tls_cert_create_ca(other_key,
                                      &(struct tls_cert_params){.common_name = "unknown CA",
                                                                .not_before = now - 60,
                                                                .not_after = now + 3600,
                                                                .path_len = -1},
                                      &other) == 0 &&
                   issue(other_key, &other, "stranger", TLS_USAGE_CLIENT, &cert, &key, serial) ==
                           0 &&
                   write_file("stranger.pem", cert.data, cert.len) == 0 &&
                   write_file("stranger.key", key.data, key.len) == 0,
           "a client certificate from a CA the server does not know");
        path_in_tmp(cert_path, sizeof(cert_path), "stranger.pem");
        path_in_tmp(key_path, sizeof(key_path), "stranger.key");
        if (!ok(tls_server_new(&to, &tls) == 0 &&
                        srv_start(&s, &(struct httpd_options){.tls = tls}, 1) == 0,
                "server requesting (not verifying) client certificates, no CA given"))
                return;
        (void) snprintf(url, sizeof(url), "%s/mtls", s.url);
        {
                _cleanup_free_ char *out = curl_client(url, cert_path, key_path, &rc);
                ok(rc == 0 && out && strcmp(out, "cn=stranger") == 0,
                   "an unknown CA's certificate reaches the handler ('%s')", out ? out : "");
        }
        {
                _cleanup_free_ char *out =
                        curl_client(url, pki.client_cert_path, pki.client_key_path, &rc);
                ok(rc == 0 && out && strcmp(out, "cn=test-client") == 0,
                   "so does a known one ('%s')", out ? out : "");
        }
        {
                _cleanup_free_ char *out = curl_client(url, NULL, NULL, &rc);
                ok(rc == 0 && out && strstr(out, "no client certificate"),
                   "no certificate: the handshake completes, the handler sees none");
        }
        ok(srv_stop(&s) >= 0, "stopped");
        tls = tls_server_free(tls);
}

static void test_plain(void) {
        struct srv s;
        struct httpd_options o = {.limits = {.max_body = 4096, .max_arena = 64 * 1024},
                                  .read_timeout_ms = 1500,
                                  .request_timeout_ms = 3000,
                                  .idle_timeout_ms = 2000,
                                  .max_connections = 400,
                                  .max_connections_per_client = 400};
        struct httpd_stats st0, st1;
        char out[65536];
        bool eof;

        if (!ok(srv_start(&s, &o, 1) == 0, "plain HTTP server"))
                return;
        ok(raw_exchange(s.port, "GARBAGE / HTTP/1.1\r\nHost: h\r\n\r\n", out, sizeof(out), &eof) &&
                   strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0 &&
                   strstr(out, "Connection: close") && eof,
           "malformed request: 400, connection closed");
        {
                _cleanup_buf_ struct buf b = BUF_INIT(1u << 16, 0);
                (void) buf_printf(&b, "GET /%09000d HTTP/1.1\r\nHost: h\r\n\r\n", 1);
                ok(raw_exchange(s.port, buf_cstr(&b), out, sizeof(out), &eof) &&
                           strncmp(out, "HTTP/1.1 414 ", 13) == 0 && eof,
                   "9 KB request-target: 414");
        }
        ok(raw_exchange(s.port,
                        "GET /echo?p=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                        "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                        "GET /close HTTP/1.1\r\nHost: h\r\n\r\n",
                        out, sizeof(out), &eof) &&
                   strstr(out, "query=p=1") && strstr(out, "body=xyz") &&
                   strstr(out, "query=p=1") < strstr(out, "body=xyz") && strstr(out, "bye") && eof,
           "three pipelined requests answered in order, closed after /close");
        ok(raw_exchange(s.port, "GET /echo HTTP/1.0\r\n\r\n", out, sizeof(out), &eof) &&
                   strncmp(out, "HTTP/1.1 200 OK", 15) == 0 && strstr(out, "Connection: close") &&
                   eof,
           "HTTP/1.0 without keep-alive: answered and closed");
        ok(raw_exchange(s.port,
                        "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                        "Connection: close\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
                        out, sizeof(out), &eof) &&
                   strstr(out, "body=abcdefg") && strstr(out, "Content-Length: "),
           "chunked request body de-chunked");
        ok(raw_exchange(s.port, "HEAD /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", out,
                        sizeof(out), &eof) &&
                   strstr(out, "Content-Length: 307200\r\n") &&
                   strlen(strstr(out, "\r\n\r\n")) == 4,
           "HEAD: Content-Length of the body, no body");
        ok(raw_exchange(s.port, "GET /nocontent HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                        out, sizeof(out), &eof) &&
                   strncmp(out, "HTTP/1.1 204 No Content", 23) == 0 &&
                   !strstr(out, "Content-Length"),
           "204 without Content-Length");
        ok(raw_exchange(s.port, "GET /arena HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", out,
                        sizeof(out), &eof) &&
                   arena_chunks >= 60 && arena_chunks <= 64,
           "the per-request arena stops at its budget (%zu KiB of 64)", arena_chunks);
        /* 100-continue on a live connection */
        {
                int fd = tcp_connect(s.port);
                bool good =
                        fd >= 0 &&
                        send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                                     "Content-Length: 4\r\n\r\n") &&
                        recv_until(fd, out, sizeof(out), "\r\n\r\n", 2000, &eof) > 0 &&
                        strcmp(out, "HTTP/1.1 100 Continue\r\n\r\n") == 0;
                good = good && send_all(fd, "data", 4) &&
                       recv_until(fd, out, sizeof(out), "body=data", 2000, &eof) > 0 &&
                       strstr(out, "HTTP/1.1 200 OK");
                ok(good, "Expect: 100-continue answered, then the request");
                if (fd >= 0)
                        (void) close(fd);
        }
        /* slowloris: one byte per second, while others are served */
        {
                const char *req = "GET /echo HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n";
                int fd = tcp_connect(s.port);
                uint64_t t0 = mono_ms(), dropped_at = 0;
                unsigned served_during = 0, failed = 0;
                httpd_get_stats(s.h, &st0);
                for (size_t i = 0; fd >= 0 && i < strlen(req) && !dropped_at; i++) {
                        if (!send_all(fd, req + i, 1)) {
                                dropped_at = mono_ms();
                                break;
                        }
                        char other[4096];
                        bool e2;
                        struct httpd_stats sx;
                        if (!raw_exchange(s.port,
                                          "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: "
                                          "close\r\n\r\n",
                                          other, sizeof(other), &e2) ||
                            strncmp(other, "HTTP/1.1 200", 12) != 0)
                                failed++;
                        else {
                                /* Answered while the slow request was still pending (nothing
                                 * timed out yet): the loop does not wait for the slow client. */
                                httpd_get_stats(s.h, &sx);
                                if (sx.timeouts == st0.timeouts)
                                        served_during++;
                        }
                        if (recv_until(fd, out, sizeof(out), NULL, 1000, &eof) == 0 && eof)
                                dropped_at = mono_ms();
                }
                httpd_get_stats(s.h, &st1);
                uint64_t el = dropped_at ? dropped_at - t0 : 0;
                /* Never before the 3 s request timeout; the upper bound only says it was dropped
                 * at all (without the timeout the 55 bytes take 55 s), so a slow machine passes. */
                ok(dropped_at && el >= 2500 && el <= 30000,
                   "slowloris dropped at the 3 s request timeout (%llu ms)",
                   (unsigned long long) el);
                ok(failed == 0 && served_during >= 1,
                   "other clients served meanwhile (%u while it was pending, %u failed)",
                   served_during, failed);
                ok(st1.timeouts > st0.timeouts, "timeout counted");
                if (fd >= 0)
                        (void) close(fd);
        }
        /* idle keep-alive connection closed at the idle timeout: on a server of its own whose
         * other timeouts are a minute, so that a close within the 30 s wait is the idle timer's
         * whatever the machine's speed (and never before its 2 s) */
        {
                struct srv si;
                struct httpd_options io = {.read_timeout_ms = 60000,
                                           .request_timeout_ms = 60000,
                                           .idle_timeout_ms = 2000};
                if (ok(srv_start(&si, &io, 1) == 0, "server with a 2 s idle timeout")) {
                        int fd = tcp_connect(si.port);
                        uint64_t t0 = mono_ms();
                        bool good = fd >= 0 &&
                                    send_str(fd, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n") &&
                                    recv_until(fd, out, sizeof(out), "body=", 10000, &eof) > 0;
                        (void) recv_until(fd, out, sizeof(out), NULL, 30000, &eof);
                        uint64_t el = mono_ms() - t0;
                        ok(good && eof && el >= 1800,
                           "idle keep-alive connection closed after 2 s (%llu ms)",
                           (unsigned long long) el);
                        if (fd >= 0)
                                (void) close(fd);
                        (void) srv_stop(&si);
                }
        }
        /* many concurrent connections */
        {
                enum { N = 300 };
                static int fds[N];
                int served = 0;
                for (int i = 0; i < N; i++)
                        fds[i] = tcp_connect(s.port);
                for (int i = 0; i < N; i++)
                        if (fds[i] >= 0)
                                (void) send_str(fds[i],
                                                "GET /echo?many HTTP/1.1\r\nHost: h\r\n\r\n");
                for (int i = 0; i < N; i++) {
                        if (fds[i] < 0)
                                continue;
                        if (recv_until(fds[i], out, sizeof(out), "query=many", 5000, &eof) > 0 &&
                            strstr(out, "query=many"))
                                served++;
                        (void) close(fds[i]);
                }
                ok(served == N, "%d concurrent connections all served (%d)", N, served);
        }
        ok(srv_stop(&s) >= 0, "plain server stopped");
}

/* Waits (up to 30 s) until the server's counters satisfy cond: an event, not a guess at how long
 * the server takes. Returns whether they did. */
static bool wait_stats(struct httpd *h, bool (*cond)(const struct httpd_stats *, uint64_t),
                       uint64_t arg) {
        uint64_t t0 = mono_ms();
        for (;;) {
                struct httpd_stats st;
                httpd_get_stats(h, &st);
                if (cond(&st, arg))
                        return true;
                if (mono_ms() - t0 > 30000)
                        return false;
                (void) usleep(5000);
        }
}
static bool active_is(const struct httpd_stats *st, uint64_t n) {
        return st->connections_active == n;
}
static bool bytes_in_at_least(const struct httpd_stats *st, uint64_t n) {
        return st->bytes_in >= n;
}

static void test_cap_and_stop(void) {
        struct srv s;
        /* stop_timeout 5 s: "closed at once" is checked against it with seconds to spare */
        struct httpd_options o = {.max_connections = 3, .stop_timeout_ms = 5000};
        struct httpd_stats st;
        char out[8192];
        bool eof;
        int fds[3];

        if (!ok(srv_start(&s, &o, 1) == 0, "server with max_connections 3"))
                return;
        for (int i = 0; i < 3; i++)
                fds[i] = tcp_connect(s.port);
        ok(wait_stats(s.h, active_is, 3), "the server holds the three connections");
        int extra = tcp_connect(s.port);
        (void) recv_until(extra, out, sizeof(out), NULL, 10000, &eof);
        httpd_get_stats(s.h, &st);
        ok(extra >= 0 && eof && st.connections_rejected == 1 && st.connections_active == 3,
           "the 4th connection is closed at once (rejected %llu, active %llu)",
           (unsigned long long) st.connections_rejected,
           (unsigned long long) st.connections_active);
        (void) close(extra);

        /* graceful stop: fds[0] idle, fds[1] mid-request (head sent, body pending) */
        const char *head = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab";
        httpd_get_stats(s.h, &st);
        (void) send_str(fds[1], head);
        ok(wait_stats(s.h, bytes_in_at_least, st.bytes_in + strlen(head)),
           "the server has read the head of the request in flight");
        uint64_t t0 = mono_ms();
        httpd_stop(s.h);
        (void) recv_until(fds[0], out, sizeof(out), NULL, 10000, &eof);
        ok(eof && mono_ms() - t0 < 4000,
           "stop: the idle connection is closed at once (%llu ms, before the 5 s stop timeout)",
           (unsigned long long) (mono_ms() - t0));
        (void) send_all(fds[1], "cd", 2);
        (void) recv_until(fds[1], out, sizeof(out), NULL, 10000, &eof);
        ok(strstr(out, "body=abcd") && strstr(out, "Connection: close") && eof,
           "stop: the request in flight is answered with Connection: close");
        long took = srv_stop(&s); /* joins: fds[2] (never sent anything) ends at the deadline */
        /* It ends: without the stop timeout fds[2] would hold the loop for ever. */
        ok(took >= 0 && mono_ms() - t0 < 30000, "stop completes within the stop_timeout (%llu ms)",
           (unsigned long long) (mono_ms() - t0));
        for (int i = 0; i < 3; i++)
                if (fds[i] >= 0)
                        (void) close(fds[i]);
}

/* ---- connection admission (issue 11, item 12) -------------------------------------------- */

struct want_counts {
        uint64_t handshaking, rejected_per_client, handshake_timeouts, active;
};

static bool counts_reached(const struct httpd_stats *st, const void *arg) {
        const struct want_counts *w = arg;
        return st->connections_handshaking == w->handshaking &&
               st->connections_rejected_per_client >= w->rejected_per_client &&
               st->handshake_timeouts >= w->handshake_timeouts &&
               (w->active == UINT64_MAX || st->connections_active == w->active);
}

static bool still_open(int fd) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        return fd >= 0 && poll(&pfd, 1, 0) == 0;
}

/* One client holding many TCP connections without a TLS handshake does not keep a real TLS client
 * from being served: the idle ones take handshake slots (4 for that address), never the
 * established ones. Before, every accepted connection took one of max_connections at once, and
 * 40 idle connections locked out everybody else. */
static void test_handshake_flood(void) {
        enum { FLOOD = 40 };
        struct srv s;
        struct tls_server *tls = new_tls(0, TLS_CLIENT_AUTH_NONE);
        struct httpd_options o = {.tls = tls,
                                  .max_connections = 16,
                                  .max_handshakes = 8,
                                  .max_handshakes_per_client = 4,
                                  .handshake_timeout_ms = 600000, /* the flood stays */
                                  .read_timeout_ms = 600000,
                                  .request_timeout_ms = 600000};
        struct httpd_stats st;
        int fds[FLOOD], rc;
        char url[128];

        if (!ok(tls && srv_start(&s, &o, 2) == 0,
                "TLS server, two loops: 16 connections, 8 handshakes"))
                return;
        for (int i = 0; i < FLOOD; i++)
                fds[i] = tcp_connect_from("127.0.0.2", s.port);
        struct want_counts w = {.handshaking = 8, .rejected_per_client = FLOOD - 8, .active = 8};
        ok(stats_wait(s.h, counts_reached, &w, &st),
           "%d idle connections from 127.0.0.2: 8 hold the handshake pool, %llu rejected", FLOOD,
           (unsigned long long) st.connections_rejected_per_client);
        (void) snprintf(url, sizeof(url), "%s/tls", s.url);
        for (int i = 0; i < 3; i++) {
                char *argv[] = {"curl", "-sS", "--cacert", pki.ca_path, url, NULL};
                _cleanup_free_ char *out = curl_out(argv, &rc);
                ok(rc == 0 && out && strstr(out, "gen=1"), "a TLS client is served meanwhile (%d)",
                   i + 1);
        }
        int open_n = 0;
        for (int i = 0; i < FLOOD; i++)
                open_n += still_open(fds[i]);
        httpd_get_stats(s.h, &st);
        ok(st.handshakes_evicted >= 1 && st.handshakes_evicted <= 3 &&
                   open_n == 8 - (int) st.handshakes_evicted && st.handshake_timeouts == 0,
           "the flood's oldest handshakes made room (%llu evicted), the rest is still open (%d; "
           "no deadline helped)",
           (unsigned long long) st.handshakes_evicted, open_n);
        for (int i = 0; i < FLOOD; i++)
                if (fds[i] >= 0)
                        (void) close(fds[i]);
        ok(srv_stop(&s) >= 0, "stopped");
        tls = tls_server_free(tls);
}

/* A connection that never completes its handshake is closed at handshake_timeout_ms, also when
 * it sends a few bytes (which keep the read timeout from firing). */
static void test_handshake_deadline(void) {
        struct srv s;
        struct tls_server *tls = new_tls(0, TLS_CLIENT_AUTH_NONE);
        struct httpd_options o = {.tls = tls,
                                  .handshake_timeout_ms = 200,
                                  .read_timeout_ms = 600000,
                                  .request_timeout_ms = 600000};
        struct httpd_stats st;
        char out[256], url[128];
        bool eof[2] = {false, false};
        int rc;

        if (!ok(tls && srv_start(&s, &o, 1) == 0, "TLS server with a 200 ms handshake deadline"))
                return;
        int silent = tcp_connect(s.port), partial = tcp_connect(s.port);
        (void) send_all(partial, "\x16\x03\x01\x02\x00\x01", 6); /* a ClientHello begins */
        (void) recv_until(silent, out, sizeof(out), NULL, 20000, &eof[0]);
        (void) recv_until(partial, out, sizeof(out), NULL, 20000, &eof[1]);
        struct want_counts w = {.handshake_timeouts = 2, .active = 0};
        ok(silent >= 0 && partial >= 0 && eof[0] && eof[1] &&
                   stats_wait(s.h, counts_reached, &w, &st),
           "a silent and a stalled handshake are closed at the deadline (handshake timeouts %llu)",
           (unsigned long long) st.handshake_timeouts);
        (void) snprintf(url, sizeof(url), "%s/tls", s.url);
        char *argv[] = {"curl", "-sS", "--cacert", pki.ca_path, url, NULL};
        _cleanup_free_ char *body = curl_out(argv, &rc);
        ok(rc == 0 && body && strstr(body, "gen=1"), "a handshake in time is served");
        if (silent >= 0)
                (void) close(silent);
        if (partial >= 0)
                (void) close(partial);
        ok(srv_stop(&s) >= 0, "stopped");
        tls = tls_server_free(tls);
}

/* Established connections per client address: explicit, and the default (3/4 of
 * max_connections), so one address never holds every slot. */
static void test_per_client_cap(void) {
        for (int pass = 0; pass < 2; pass++) {
                struct srv s;
                struct httpd_options o = {.max_connections = pass == 0 ? 8 : 4,
                                          .max_connections_per_client = pass == 0 ? 2 : 0};
                unsigned allowed = pass == 0 ? 2 : 3, total = o.max_connections;
                struct httpd_stats st;
                char out[4096];
                bool eof;
                int fds[8];

                if (!ok(srv_start(&s, &o, 1) == 0, "plain server: %u connections, %s per client",
                        total, pass == 0 ? "2" : "default"))
                        return;
                for (unsigned i = 0; i < total; i++)
                        fds[i] = tcp_connect_from("127.0.0.2", s.port);
                struct want_counts w = {.rejected_per_client = total - allowed, .active = allowed};
                ok(stats_wait(s.h, counts_reached, &w, &st),
                   "%u connections from 127.0.0.2: %u kept, %llu rejected", total, allowed,
                   (unsigned long long) st.connections_rejected_per_client);
                ok(raw_exchange(s.port, "GET /close HTTP/1.1\r\nHost: h\r\n\r\n", out, sizeof(out),
                                &eof) &&
                           strncmp(out, "HTTP/1.1 200", 12) == 0,
                   "another client is served");
                for (unsigned i = 0; i < total; i++)
                        if (fds[i] >= 0)
                                (void) close(fds[i]);
                ok(srv_stop(&s) >= 0, "stopped");
        }
}

/* ---- deferred responses (issue 11, item 12: lookups off the event loop) -------------------- */

static bool deferred_counts(const struct httpd_stats *st, const void *arg) {
        const uint64_t *w = arg; /* active, timeouts, cancelled (UINT64_MAX: any) */
        return st->deferred_active == w[0] &&
               (w[1] == UINT64_MAX || st->deferred_timeouts == w[1]) &&
               (w[2] == UINT64_MAX || st->deferred_cancelled == w[2]);
}

static bool wait_deferred(struct httpd *h, uint64_t active, uint64_t timeouts, uint64_t cancelled) {
        struct httpd_stats st;
        uint64_t w[3] = {active, timeouts, cancelled};
        return stats_wait(h, deferred_counts, w, &st);
}

struct completer_arg {
        int first, step, n;
        int failures;
};

/* Completes parked requests first, first+step, ... from its own thread, newest first. */
static void *completer_main(void *p) {
        struct completer_arg *a = p;
        for (int k = a->n - 1; k >= 0; k--) {
                int id = a->first + k * a->step;
                struct httpd_deferred *d = parked_take((unsigned) id);
                char body[32];
                int n = snprintf(body, sizeof(body), "answer id=%d\n", id);
                if (!d || httpd_deferred_complete(d, 200, "text/plain", body, (size_t) n) != 0)
                        a->failures++;
        }
        return NULL;
}

static void test_deferred(void) {
        struct srv s;
        struct httpd_options o = {.stop_timeout_ms = 500};
        char out[8192];
        bool eof;

        if (!ok(srv_start(&s, &o, 2) == 0, "plain server, two loops, for deferred responses"))
                return;

        /* 1. Answered after the handler returned; the loop serves others meanwhile; the
         * connection goes on (keep-alive) once answered. */
        int fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=60000&id=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        struct httpd_deferred *d = parked_take(1);
        ok(d && wait_deferred(s.h, 1, 0, 0) && handler_defer_result == -EINVAL,
           "the handler parks the request (a second httpd_defer() is refused)");
        ok(raw_exchange(s.port, "GET /close HTTP/1.1\r\nHost: h\r\n\r\n", out, sizeof(out), &eof) &&
                   strncmp(out, "HTTP/1.1 200", 12) == 0,
           "another request is answered while one is parked");
        (void) recv_until(fd, out, sizeof(out), NULL, 200, &eof);
        ok(out[0] == '\0' && !eof, "the parked request has no answer yet");
        ok(!httpd_deferred_cancelled(d) &&
                   httpd_deferred_complete(d, 201, "application/json", "{\"a\":1}", 7) == 0,
           "completed from another thread");
        (void) recv_until(fd, out, sizeof(out), "{\"a\":1}", 20000, &eof);
        ok(strncmp(out, "HTTP/1.1 201 Created\r\n", 22) == 0 &&
                   strstr(out, "Content-Type: application/json\r\n") &&
                   strstr(out, "Content-Length: 7\r\n") && !strstr(out, "X-Fallback") &&
                   strstr(out, "\r\n\r\n{\"a\":1}"),
           "the completion is the answer (status, type, body; not the fallback's header)");
        (void) send_str(fd, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
        (void) recv_until(fd, out, sizeof(out), "body=", 20000, &eof);
        ok(strstr(out, "path=/echo") != NULL && wait_deferred(s.h, 0, 0, 0),
           "the connection serves its next request");
        (void) close(fd);

        /* 2. Pipelined: the next request waits for the parked one, answers stay in order. */
        fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=60000&id=2 HTTP/1.1\r\nHost: h\r\n\r\n"
                            "GET /echo?after HTTP/1.1\r\nHost: h\r\n\r\n");
        d = parked_take(2);
        (void) recv_until(fd, out, sizeof(out), NULL, 200, &eof);
        ok(d && out[0] == '\0', "pipelined: nothing is answered while the first is parked");
        ok(d && httpd_deferred_complete(d, 200, NULL, "first\n", 6) == 0, "completed");
        (void) recv_until(fd, out, sizeof(out), "query=after", 20000, &eof);
        char *first = strstr(out, "first\n"), *second = strstr(out, "query=after");
        ok(first && second && first < second, "pipelined: answered in order");
        (void) close(fd);

        /* 3. The deadline: the fallback, with its header; the late completion finds it gone. */
        fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=200&id=3 HTTP/1.1\r\nHost: h\r\n\r\n");
        d = parked_take(3);
        (void) recv_until(fd, out, sizeof(out), "fallback id=3\n", 20000, &eof);
        ok(d && strncmp(out, "HTTP/1.1 503", 12) == 0 && strstr(out, "X-Fallback: yes\r\n") &&
                   strstr(out, "fallback id=3\n") && wait_deferred(s.h, 0, 1, 0),
           "past its deadline the request gets the fallback (deferred_timeouts 1)");
        ok(d && httpd_deferred_cancelled(d) &&
                   httpd_deferred_complete(d, 200, NULL, "LATE", 4) == -ECANCELED,
           "the late completion: cancelled, -ECANCELED, nothing sent");
        (void) send_str(fd, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
        (void) recv_until(fd, out, sizeof(out), "body=", 20000, &eof);
        ok(strstr(out, "path=/echo") != NULL && !strstr(out, "LATE"),
           "the connection goes on after the fallback, and the late answer never appears");
        (void) close(fd);

        /* 4. The client goes: cancelled at once, the completer learns it. */
        fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=60000&id=4 HTTP/1.1\r\nHost: h\r\n\r\n");
        d = parked_take(4);
        (void) close(fd);
        ok(d && wait_deferred(s.h, 0, 1, 1) && httpd_deferred_cancelled(d),
           "a client that closes its parked request cancels it (deferred_cancelled 1)");
        httpd_deferred_drop(d); /* the completer lets go of a gone request: no crash, no leak */

        /* 5. Drop: the fallback at once. */
        fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=60000&id=5 HTTP/1.1\r\nHost: h\r\n\r\n");
        d = parked_take(5);
        httpd_deferred_drop(d);
        (void) recv_until(fd, out, sizeof(out), "fallback id=5\n", 20000, &eof);
        ok(d && strstr(out, "fallback id=5\n") && wait_deferred(s.h, 0, 1, 1),
           "httpd_deferred_drop(): the fallback is sent now (no timeout counted)");
        (void) close(fd);

        /* 6. Many parked over both loops, completed out of order from two threads: each
         * connection gets its own answer. */
        enum { MANY = 40 };
        int fds[MANY];
        for (int i = 0; i < MANY; i++) {
                char req[128];
                fds[i] = tcp_connect(s.port);
                (void) snprintf(req, sizeof(req),
                                "GET /defer?ms=60000&id=%d HTTP/1.1\r\nHost: h\r\n\r\n", 10 + i);
                (void) send_str(fds[i], req);
        }
        ok(wait_deferred(s.h, MANY, 1, 1), "%d requests parked at once", MANY);
        struct completer_arg ca[2] = {{.first = 10, .step = 2, .n = MANY / 2},
                                      {.first = 11, .step = 2, .n = MANY / 2}};
        pthread_t ct[2];
        for (int i = 0; i < 2; i++)
                (void) pthread_create(&ct[i], NULL, completer_main, &ca[i]);
        for (int i = 0; i < 2; i++)
                (void) pthread_join(ct[i], NULL);
        int right = 0;
        for (int i = 0; i < MANY; i++) {
                char want[32];
                (void) snprintf(want, sizeof(want), "answer id=%d\n", 10 + i);
                (void) recv_until(fds[i], out, sizeof(out), want, 20000, &eof);
                right += strstr(out, want) != NULL && strncmp(out, "HTTP/1.1 200", 12) == 0;
                (void) close(fds[i]);
        }
        ok(ca[0].failures + ca[1].failures == 0 && right == MANY,
           "each of the %d got its own answer (%d right)", MANY, right);

        /* 7. Stop: a parked request is answered with its fallback and Connection: close. */
        fd = tcp_connect(s.port);
        (void) send_str(fd, "GET /defer?ms=60000&id=6 HTTP/1.1\r\nHost: h\r\n\r\n");
        d = parked_take(6);
        ok(d != NULL && wait_deferred(s.h, 1, 1, UINT64_MAX), "parked before the stop");
        httpd_stop(s.h);
        (void) recv_until(fd, out, sizeof(out), NULL, 30000, &eof);
        ok(strstr(out, "fallback id=6\n") && strstr(out, "Connection: close\r\n") && eof,
           "stop: the parked request gets its fallback with Connection: close");
        ok(httpd_deferred_cancelled(d) &&
                   httpd_deferred_complete(d, 200, NULL, "x", 1) == -ECANCELED,
           "completing after the stop answered it: -ECANCELED");
        ok(srv_stop(&s) >= 0, "stopped");
        (void) close(fd);
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_addresses();
        test_parser_table();
        test_parser_limits();
        test_parser_pipeline();
        if (ok(pki_make(&pki) == 0, "test CA and certificates generated with common/tls")) {
                test_tls_server_api();
                test_tls();
                test_swap();
                test_mtls();
                test_mtls_request();
                test_handshake_flood();
                test_handshake_deadline();
        }
        test_per_client_cap();
        test_plain();
        test_cap_and_stop();
        test_deferred();

        const char *names[] = {"ca.pem",      "client.pem", "client.key", "curl.out",
                               "sclient.out", "serial.out", "big.bin"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char p[256];
                path_in_tmp(p, sizeof(p), names[i]);
                (void) unlink(p);
        }
        (void) rmdir(tmpdir);
        buf_done(&pki.ca_pem);
        for (int i = 0; i < 2; i++) {
                buf_done(&pki.leaf_pem[i]);
                buf_done(&pki.key_pem[i]);
        }
        return tap_done();
}
