/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/unseal: see unseal.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "wrapper/unseal.h"

#define UNSEAL_NAME_MAX 64u
#define UNSEAL_STACK_SIZE (8u * 1024u * 1024u) /* wolfSSL's handshake, libcurl in accept */

enum state {
        STATE_SEALED,
        STATE_UNSEALING,
        STATE_UNSEALED,
};

struct unseal {
        struct unseal_options o;
        char client_name[UNSEAL_NAME_MAX + 1];
        struct tls_cert *anchors;
        size_t n_anchors;
        struct tls_server *tls;
        struct httpd *httpd;
        int event_fd;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        enum state state;
        bool ready;
};

/* A P-256 key in secmem and a self-signed certificate for it: a throw-away CA certificate made
 * with the key, then a serverAuth leaf for the same key issued by it (same name), so the leaf is
 * self-issued and verifies with its own key. The PEM key goes into a BUF_SECURE buffer only for
 * tls_server_new(), which copies it. */
static int server_pair(struct buf *cert_pem, struct buf *key_pem) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {}, leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        int64_t now = (int64_t) time(NULL);
        int r;

        r = tls_key_generate(&key);
        if (r < 0)
                return r;
        struct tls_cert_params p = {
                .common_name = UNSEAL_CERT_CN,
                .not_before = now,
                .not_after = now + 10 * 365 * 86400,
                .backdate = 3600,
                .usage = TLS_USAGE_SERVER,
                .path_len = -1,
        };
        r = tls_cert_create_ca(key, &p, &ca);
        if (r >= 0)
                r = tls_key_public_der(key, &spki);
        if (r >= 0)
                r = tls_cert_issue(key, &ca, (const uint8_t *) spki.data, spki.len, &p, &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, cert_pem);
        if (r >= 0)
                r = tls_key_export_pem(key, key_pem);
        return r;
}

static void answer(struct httpd_response *resp, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void answer(struct httpd_response *resp, int status, const char *fmt, ...) {
        va_list ap;
        resp->status = status;
        resp->content_type = "application/json";
        va_start(ap, fmt);
        (void) buf_vprintf(&resp->body, fmt, ap);
        va_end(ap);
        (void) buf_append_str(&resp->body, "\n");
}

/* An error answer: {"error": "<reason>"} (the reason is ours or the accept callback's, with no
 * quote or control character in it). */
static void refuse(struct httpd_response *resp, int status, const char *reason) {
        char clean[UNSEAL_REASON_MAX];
        size_t o = 0;
        for (const char *s = reason; *s && o + 1 < sizeof(clean); s++)
                clean[o++] = (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '?';
        clean[o] = '\0';
        answer(resp, status, "{\"error\": \"%s\"}", clean);
}

static bool names_match(const struct tls_cert_info *info, const char *name) {
        if (strcmp(info->subject_cn, name) == 0)
                return true;
        for (size_t i = 0; i < info->san.n_dns; i++)
                if (strcmp(info->san.dns[i], name) == 0)
                        return true;
        return false;
}

/* Who may unseal: 0, or the HTTP status of the refusal with its reason. */
static int check_client(struct unseal *u, const struct httpd_request *req, const char **reason) {
        _cleanup_tls_cert_ struct tls_cert peer = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};

        if (!req->tls || tls_conn_peer_cert(req->tls, &peer) < 0) {
                *reason = "a client certificate is required";
                return 401;
        }
        /* The TLS layer verified the chain against the CA; again here, now with the usage. */
        if (tls_cert_inspect(&peer, &info) < 0) {
                *reason = "the client certificate does not parse";
                return 403;
        }
        if (!info.has_ext_key_usage || !(info.ext_key_usage & TLS_USAGE_CLIENT) ||
            tls_verify_certs(u->anchors, u->n_anchors, &peer, 1, (int64_t) time(NULL),
                             TLS_USAGE_CLIENT) < 0) {
                *reason = "the client certificate is not valid for client authentication";
                return 403;
        }
        if (!names_match(&info, u->client_name)) {
                *reason = "the client certificate is not the operator's";
                return 403;
        }
        return 0;
}

int unseal_parse_body(const char *body, size_t len, char **ret_token, bool *ret_wrapped,
                      const char **reason) {
        static const struct json_limits limits = {
                .max_input = UNSEAL_MAX_BODY, .max_depth = 4, .max_nodes = 64};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const char *token;
        bool wrapped = false;
        int r;

        if (json_parse(body, len, JSON_SECURE, &limits, &d) < 0 ||
            json_type(json_doc_root(d)) != JSON_OBJECT) {
                *reason = "the body must be a JSON object {\"token\": \"...\"}";
                return 400;
        }
        if (json_get_string(json_doc_root(d), "token", &token) < 0) {
                *reason = "the body has no string member \"token\"";
                return 400;
        }
        size_t n = strlen(token);
        if (n == 0 || n > UNSEAL_TOKEN_MAX) {
                *reason = "the token is empty or too long";
                return 400;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) token[i] <= 0x20 || (unsigned char) token[i] >= 0x7f) {
                        *reason = "the token has characters a vault token cannot have";
                        return 400;
                }
        r = json_get_bool(json_doc_root(d), "wrapped", &wrapped);
        if (r < 0 && r != -ENOENT) {
                *reason = "\"wrapped\" must be true or false";
                return 400;
        }
        if (secmem_strndup(token, n, ret_token) < 0) {
                *reason = "out of memory";
                return 503;
        }
        *ret_wrapped = wrapped;
        return 0;
}

static void unseal_request(struct unseal *u, const struct httpd_request *req,
                           struct httpd_response *resp) {
        _cleanup_secmem_ char *token = NULL;
        char why[UNSEAL_REASON_MAX] = "";
        const char *reason = NULL;
        bool wrapped = false;
        int status;

        status = check_client(u, req, &reason);
        if (status == 0) {
                pthread_mutex_lock(&u->lock);
                if (u->state != STATE_SEALED) {
                        reason = u->state == STATE_UNSEALED ? "already unsealed"
                                                            : "an unseal is under way";
                        status = 409;
                }
                pthread_mutex_unlock(&u->lock);
        }
        if (status == 0)
                status = unseal_parse_body(req->body, req->body_len, &token, &wrapped, &reason);
        if (status == 0) {
                pthread_mutex_lock(&u->lock);
                if (u->state != STATE_SEALED) { /* another request got here first */
                        reason = "an unseal is under way";
                        status = 409;
                } else
                        u->state = STATE_UNSEALING;
                pthread_mutex_unlock(&u->lock);
        }
        if (status == 0) {
                /* The lock is not held across the call: status and ready stay answered. */
                status =
                        u->o.accept(u->o.userdata, token, strlen(token), wrapped, why, sizeof(why));
                if (status != 0 && (status < 400 || status > 599))
                        status = 500;
                reason = why[0] ? why : "refused";
                pthread_mutex_lock(&u->lock);
                u->state = status == 0 ? STATE_UNSEALED : STATE_SEALED;
                pthread_mutex_unlock(&u->lock);
        }
        if (status != 0) {
                log_warning("unseal from %s refused (%d): %s", req->remote, status, reason);
                refuse(resp, status, reason);
                return;
        }
        uint64_t one = 1;
        (void) !write(u->event_fd, &one, sizeof(one));
        log_notice("unsealed by %s (%s token)", req->remote, wrapped ? "a wrapped" : "a");
        answer(resp, 200, "{\"sealed\": false}");
}

static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        struct unseal *u = userdata;
        bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

        if (strcmp(req->path, "/v1/status") == 0 && get) {
                answer(resp, 200, "{\"sealed\": %s}", unseal_sealed(u) ? "true" : "false");
                return 0;
        }
        if (strcmp(req->path, "/v1/ready") == 0 && get) {
                pthread_mutex_lock(&u->lock);
                bool sealed = u->state != STATE_UNSEALED, ready = !sealed && u->ready;
                pthread_mutex_unlock(&u->lock);
                if (ready)
                        answer(resp, 200, "{\"ready\": true}");
                else
                        answer(resp, 503, "{\"ready\": false, \"sealed\": %s}",
                               sealed ? "true" : "false");
                return 0;
        }
        if (strcmp(req->path, "/v1/unseal") == 0 && strcmp(req->method, "POST") == 0) {
                unseal_request(u, req, resp);
                return 0;
        }
        if (strcmp(req->path, "/v1/status") == 0 || strcmp(req->path, "/v1/ready") == 0 ||
            strcmp(req->path, "/v1/unseal") == 0) {
                (void) httpd_response_add_header(
                        resp, "Allow", strcmp(req->path, "/v1/unseal") == 0 ? "POST" : "GET");
                refuse(resp, 405, "method not allowed");
                return 0;
        }
        refuse(resp, 404, "not found");
        return 0;
}

int unseal_new(const struct unseal_options *o, struct unseal **ret) {
        _cleanup_buf_ struct buf cert = BUF_INIT(16384, 0), key = BUF_INIT(16384, BUF_SECURE);
        struct unseal *u;
        int r;

        if (!o || !o->listen || !o->client_ca_pem || o->client_ca_len == 0 || !o->client_name ||
            !o->client_name[0] || strlen(o->client_name) > UNSEAL_NAME_MAX || !o->accept || !ret)
                return -EINVAL;
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->o = *o;
        memcpy(u->client_name, o->client_name, strlen(o->client_name) + 1);
        u->o.client_name = u->client_name;
        u->o.client_ca_pem = NULL; /* not kept: the anchors are decoded below */
        u->event_fd = -1;
        r = pthread_mutex_init(&u->lock, NULL);
        if (r != 0) {
                free(u);
                return -r;
        }
        r = tls_cert_decode_bundle(o->client_ca_pem, o->client_ca_len, &u->anchors, &u->n_anchors);
        if (r >= 0)
                r = server_pair(&cert, &key);
        if (r >= 0) {
                struct tls_server_options to = {
                        .cert_pem = buf_cstr(&cert),
                        .cert_len = cert.len,
                        .key_pem = buf_cstr(&key),
                        .key_len = key.len,
                        .client_auth = TLS_CLIENT_AUTH_OPTIONAL,
                        .client_ca_pem = o->client_ca_pem,
                        .client_ca_len = o->client_ca_len,
                };
                r = tls_server_new(&to, &u->tls);
        }
        if (r >= 0) {
                unsigned t = o->request_timeout_ms ? o->request_timeout_ms : 10000;
                struct httpd_options ho = {
                        .address = o->listen,
                        .tls = u->tls,
                        .handler = handler,
                        .userdata = u,
                        .limits = {.max_body = UNSEAL_MAX_BODY,
                                   .max_request_line = 1024,
                                   .max_header_bytes = 8192,
                                   .max_headers = 32,
                                   .max_response_body = 4096,
                                   .max_arena = 64 * 1024},
                        .max_connections = 16,
                        .max_handshakes = 16,
                        .max_connections_per_client = 8,
                        .max_handshakes_per_client = 4,
                        .handshake_timeout_ms = MIN(t, 5000u),
                        .read_timeout_ms = MIN(t, 5000u),
                        .request_timeout_ms = t,
                        .idle_timeout_ms = 30000,
                        .write_timeout_ms = 5000,
                        .stop_timeout_ms = 1000,
                        .max_requests_per_conn = 100,
                        .backlog = 16,
                };
                r = httpd_new(&ho, &u->httpd);
        }
        if (r >= 0) {
                u->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (u->event_fd < 0)
                        r = negative_errno();
        }
        if (r < 0) {
                unseal_free(u);
                return r;
        }
        *ret = u;
        return 0;
}

static void *server_main(void *userdata) {
        struct unseal *u = userdata;
        if (u->o.thread_init)
                u->o.thread_init(u->o.userdata);
        (void) httpd_run(u->httpd);
        return NULL;
}

int unseal_start(struct unseal *u) {
        pthread_attr_t attr;
        int r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        r = pthread_attr_setstacksize(&attr, UNSEAL_STACK_SIZE);
        if (r == 0)
                r = pthread_create(&u->thread, &attr, server_main, u);
        (void) pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        u->thread_started = true;
        return 0;
}

int unseal_port(const struct unseal *u) {
        return httpd_port(u->httpd);
}

int unseal_fd(const struct unseal *u) {
        return u->event_fd;
}

bool unseal_sealed(struct unseal *u) {
        pthread_mutex_lock(&u->lock);
        bool sealed = u->state != STATE_UNSEALED;
        pthread_mutex_unlock(&u->lock);
        return sealed;
}

void unseal_set_ready(struct unseal *u) {
        pthread_mutex_lock(&u->lock);
        u->ready = true;
        pthread_mutex_unlock(&u->lock);
}

struct unseal *unseal_free(struct unseal *u) {
        if (!u)
                return NULL;
        if (u->thread_started) {
                httpd_stop(u->httpd);
                (void) pthread_join(u->thread, NULL);
        }
        httpd_free(u->httpd);
        tls_server_free(u->tls);
        tls_cert_array_free(u->anchors, u->n_anchors);
        if (u->event_fd >= 0)
                (void) close(u->event_fd);
        (void) pthread_mutex_destroy(&u->lock);
        free(u);
        return NULL;
}
