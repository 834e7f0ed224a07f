/* SPDX-License-Identifier: Apache-2.0 */
/* httpd: see httpd.h for the contract and docs/httpd.md. Requests are parsed by
 * common/httpd-parser (the only user of http-parser) into the request's arena (common/arena). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/httpd-parser.h"
#include "common/httpd.h"
#include "common/macro.h"
#include "common/tls/transport.h"

#define READ_CHUNK (16u * 1024u) /* one read from a socket (and one TLS record) */
#define LINGER_MS 2000u          /* discarding input after a final response */
#define LINGER_MAX_BYTES (1024u * 1024u)
#define ACCEPT_BATCH 64u /* connections accepted per wake-up, for fairness */
#define MAX_EVENTS 64

/* ---- status, headers ------------------------------------------------------------------- */

const char *httpd_status_reason(int status) {
        static const struct {
                int code;
                const char *text;
        } reasons[] = {
                {100, "Continue"},
                {200, "OK"},
                {201, "Created"},
                {202, "Accepted"},
                {204, "No Content"},
                {301, "Moved Permanently"},
                {302, "Found"},
                {304, "Not Modified"},
                {307, "Temporary Redirect"},
                {308, "Permanent Redirect"},
                {400, "Bad Request"},
                {401, "Unauthorized"},
                {403, "Forbidden"},
                {404, "Not Found"},
                {405, "Method Not Allowed"},
                {406, "Not Acceptable"},
                {408, "Request Timeout"},
                {409, "Conflict"},
                {410, "Gone"},
                {411, "Length Required"},
                {412, "Precondition Failed"},
                {413, "Content Too Large"},
                {414, "URI Too Long"},
                {415, "Unsupported Media Type"},
                {417, "Expectation Failed"},
                {422, "Unprocessable Content"},
                {429, "Too Many Requests"},
                {431, "Request Header Fields Too Large"},
                {500, "Internal Server Error"},
                {501, "Not Implemented"},
                {502, "Bad Gateway"},
                {503, "Service Unavailable"},
                {504, "Gateway Timeout"},
                {505, "HTTP Version Not Supported"},
        };
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
                if (reasons[i].code == status)
                        return reasons[i].text;
        return "Unknown";
}

int httpd_response_add_header(struct httpd_response *resp, const char *name, const char *value) {
        static const char *const reserved[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                               "Date", "Content-Type"};
        char *n, *v;

        if (!resp || !httpd_token_valid(name) || !value ||
            !httpd_field_value_valid(value, strlen(value)))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcasecmp(name, reserved[i]) == 0)
                        return -EINVAL;
        if (resp->n_headers >= HTTPD_MAX_RESPONSE_HEADERS)
                return -E2BIG;
        n = arena_strdup(resp->arena, name);
        v = arena_strdup(resp->arena, value);
        if (!n || !v)
                return -ENOMEM;
        resp->headers[resp->n_headers++] = (struct httpd_header){.name = n, .value = v};
        return 0;
}

int httpd_response_set(struct httpd_response *resp, int status, const char *content_type,
                       const char *body) {
        if (!resp)
                return -EINVAL;
        resp->status = status;
        resp->content_type = content_type;
        buf_reset(&resp->body);
        return body ? buf_append_str(&resp->body, body) : 0;
}

/* ---- addresses ------------------------------------------------------------------------- */

int httpd_parse_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct sockaddr_storage ss = {0};
        char host[64];
        const char *colon, *port_s;
        size_t hl;
        unsigned long port;
        char *end;

        if (!s || !ret || !ret_len)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hl = (size_t) (close - s - 1);
                if (hl == 0 || hl >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, hl);
                host[hl] = '\0';
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t) (colon - s);
                if (hl >= sizeof(host) || memchr(s, ':', hl))
                        return -EINVAL; /* bare IPv6 needs brackets */
                memcpy(host, s, hl);
                host[hl] = '\0';
                port_s = colon + 1;
        }
        if (*port_s < '0' || *port_s > '9' || strlen(port_s) > 5)
                return -EINVAL;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno != 0 || *end != '\0' || port > 65535)
                return -EINVAL;
        if (host[0] == '\0' || strcmp(host, "*") == 0) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                a->sin6_family = AF_INET6;
                a->sin6_addr = in6addr_any;
                a->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
        } else if (s[0] == '[') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                if (strcmp(host, "localhost") == 0)
                        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
        }
        *ret = ss;
        return 0;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t n) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *) ss;
                (void) inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
                (void) snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) ss;
                (void) inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
                (void) snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
        } else
                (void) snprintf(out, n, "unknown");
}

/* ---- server ---------------------------------------------------------------------------- */

/* One client address in the admission table (IPv4 as v4-mapped IPv6). */
struct conn;

struct client {
        uint8_t addr[16];
        unsigned established, handshaking; /* both 0: the entry is unused */
        struct conn *hs_first, *hs_last;   /* its connections in handshake, oldest first */
};

enum slot { SLOT_NONE, SLOT_HANDSHAKE, SLOT_ESTABLISHED };

struct httpd {
        struct httpd_options o;
        int listen_fd;
        int stop_fd; /* eventfd, level-triggered in every loop: written once by httpd_stop() */
        int port;
        /* Admission (all loops): slot counts and the per-address table, under `lock`. The table
         * has at least twice as many entries as connections can be open (an entry per open
         * client address), so linear probing always finds a free one. */
        pthread_mutex_t lock;
        /* Deferred responses: httpd_deferred.conn, the loops' done lists and their wake_fd
         * writes (see struct httpd_deferred). */
        pthread_mutex_t defer_lock;
        struct client *clients;
        size_t n_clients; /* a power of two */
        _Atomic uint64_t established, handshaking;
        struct {
                _Atomic uint64_t accepted, rejected, rejected_per_client, handshake_failures,
                        handshake_timeouts, handshakes_evicted, timeouts, requests, client_errors,
                        handler_errors, bytes_in, bytes_out, deferred, deferred_active,
                        deferred_timeouts, deferred_cancelled;
                _Atomic uint64_t responses[6];
        } st;
};

/* C_PARKED: the request waits for httpd_deferred_complete() (or its deadline). */
enum conn_state { C_HANDSHAKE, C_READ, C_WRITE, C_LINGER, C_PARKED };

struct loop;

struct conn {
        struct loop *loop;
        int fd;
        struct tls_conn *tls;
        enum conn_state state;
        struct httpd_parser *parser;
        /* Admission: the slot held and the list of handshakes of the client (both under
         * httpd.lock; another loop may take the slot away: evict_one()). */
        enum slot slot;
        uint8_t addr[16]; /* client address, the admission key */
        struct conn *hs_prev, *hs_next;
        _Atomic bool evicted;
        struct buf in;  /* bytes read and not yet consumed by the parser */
        struct buf out; /* the response being written */
        size_t out_off;
        bool interim;     /* out holds "100 Continue" */
        bool close_after; /* close once out is written */
        bool in_request;  /* bytes of an unanswered request have arrived */
        bool http10;      /* the current request is HTTP/1.0 */
        uint32_t events;  /* registered epoll events */
        uint64_t accepted, last_read, req_start, idle_since, last_write, linger_start;
        uint64_t deadline;
        size_t heap_idx;
        unsigned requests;
        size_t linger_bytes;
        uint64_t tls_in, tls_out; /* bytes already added to the counters */
        char remote[INET6_ADDRSTRLEN + 16];
        struct httpd_response resp;
        struct httpd_deferred *parked; /* while C_PARKED (and during the handler call) */
        uint64_t park_deadline;
        bool head; /* the parked request is a HEAD */
};

/*
 * A parked request. Two references: the connection's (dropped when it is answered, times out or
 * goes) and the completer's (dropped by httpd_deferred_complete() / _drop(), or, once the
 * answer is on the loop's done list, by the loop that takes it off). `conn` is cleared, under
 * httpd.defer_lock, before the connection is freed or answered, so a completer that finds it
 * set under the lock may use its loop (a loop frees all its connections before it ends).
 */
struct httpd_deferred {
        _Atomic unsigned refs;
        _Atomic bool cancelled;
        struct httpd *h;
        struct conn *conn;           /* under defer_lock */
        struct httpd_deferred *next; /* on the loop's done list, under defer_lock */
        bool fallback;               /* dropped: answer with the fallback */
        int status;
        const char *content_type;
        struct buf body;
};

struct loop {
        struct httpd *h;
        int epfd;
        struct conn **heap; /* min-heap on deadline: every connection is in it */
        size_t n, cap;
        bool stopping;
        uint64_t stop_deadline;
        time_t date_sec;
        char date[40];
        int wake_fd;                 /* eventfd: a completion is on `done` */
        struct httpd_deferred *done; /* completed, not yet delivered (under defer_lock) */
};

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void count(_Atomic uint64_t *c, uint64_t n) {
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* -- admission: connection slots, per client address -- */

static void client_key(const struct sockaddr_storage *ss, uint8_t key[16]) {
        memset(key, 0, 16);
        if (ss->ss_family == AF_INET) {
                key[10] = key[11] = 0xff;
                memcpy(key + 12, &((const struct sockaddr_in *) ss)->sin_addr, 4);
        } else if (ss->ss_family == AF_INET6)
                memcpy(key, &((const struct sockaddr_in6 *) ss)->sin6_addr, 16);
}

static size_t client_hash(const uint8_t key[16], size_t n) {
        uint64_t x = 1469598103934665603u; /* FNV-1a */
        for (size_t i = 0; i < 16; i++)
                x = (x ^ key[i]) * 1099511628211u;
        return (size_t) (x ^ (x >> 29)) & (n - 1);
}

static bool client_unused(const struct client *e) {
        return e->established == 0 && e->handshaking == 0;
}

/* The entry for key: the existing one, or the unused one where it would go. */
static struct client *client_find(struct httpd *h, const uint8_t key[16]) {
        size_t i = client_hash(key, h->n_clients);
        for (;;) {
                struct client *e = &h->clients[i];
                if (client_unused(e) || memcmp(e->addr, key, 16) == 0)
                        return e;
                i = (i + 1) & (h->n_clients - 1);
        }
}

/* Removes an unused entry, moving later entries of its probe run back (no tombstones). */
static void client_remove(struct httpd *h, struct client *e) {
        size_t mask = h->n_clients - 1, i = (size_t) (e - h->clients), j = i;
        for (;;) {
                j = (j + 1) & mask;
                struct client *x = &h->clients[j];
                if (client_unused(x))
                        break;
                size_t home = client_hash(x->addr, h->n_clients);
                /* x may fill the hole at i when i lies on its probe path from home to j. */
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        h->clients[i] = *x;
                        *x = (struct client){0};
                        i = j;
                }
        }
        h->clients[i] = (struct client){0};
}

/* Takes c off its client's list of handshakes and gives its slot back (lock held). */
static void slot_drop(struct httpd *h, struct client *e, struct conn *c) {
        if (c->slot == SLOT_HANDSHAKE) {
                if (c->hs_prev)
                        c->hs_prev->hs_next = c->hs_next;
                else
                        e->hs_first = c->hs_next;
                if (c->hs_next)
                        c->hs_next->hs_prev = c->hs_prev;
                else
                        e->hs_last = c->hs_prev;
                c->hs_prev = c->hs_next = NULL;
                e->handshaking--;
                atomic_fetch_sub(&h->handshaking, 1);
        } else if (c->slot == SLOT_ESTABLISHED) {
                e->established--;
                atomic_fetch_sub(&h->established, 1);
        }
        c->slot = SLOT_NONE;
}

/* (lock held) */
static void slot_take(struct httpd *h, struct client *e, struct conn *c, enum slot slot) {
        memcpy(e->addr, c->addr, 16);
        c->slot = slot;
        if (slot == SLOT_HANDSHAKE) {
                c->hs_prev = e->hs_last;
                c->hs_next = NULL;
                if (e->hs_last)
                        e->hs_last->hs_next = c;
                else
                        e->hs_first = c;
                e->hs_last = c;
                e->handshaking++;
                atomic_fetch_add(&h->handshaking, 1);
        } else {
                e->established++;
                atomic_fetch_add(&h->established, 1);
        }
}

/*
 * The handshake pool is full and a client under its share wants a slot: the client holding the
 * most handshakes over its share loses its oldest one. The victim may live on another loop: it
 * loses its slot here, and shutdown() wakes its loop, which then frees it (a connection leaves
 * the lists, under the lock, before its fd is closed, so the fd is still its own). Returns false
 * when nobody is over the share. (lock held)
 */
static bool evict_one(struct httpd *h) {
        struct client *worst = NULL;
        for (size_t i = 0; i < h->n_clients; i++) {
                struct client *e = &h->clients[i];
                if (e->handshaking > h->o.max_handshakes_per_client &&
                    (!worst || e->handshaking > worst->handshaking))
                        worst = e;
        }
        if (!worst || !worst->hs_first)
                return false;
        struct conn *v = worst->hs_first;
        slot_drop(h, worst, v); /* worst keeps >= share >= 1 handshakes: its entry stays */
        atomic_store(&v->evicted, true);
        (void) shutdown(v->fd, SHUT_RDWR);
        count(&h->st.handshakes_evicted, 1);
        return true;
}

/* Gives a new connection its first slot (a handshake slot with TLS, else an established one):
 * 0, -EBUSY when the server is full, -EUSERS when c's client is over its limit. */
static int conn_admit(struct conn *c, enum slot slot) {
        struct httpd *h = c->loop->h;
        int r = 0;

        (void) pthread_mutex_lock(&h->lock);
        struct client *e = client_find(h, c->addr);
        if (slot == SLOT_HANDSHAKE) {
                if (atomic_load(&h->handshaking) < h->o.max_handshakes)
                        r = 0; /* room: a burst from one client is fine */
                else if (e->handshaking >= h->o.max_handshakes_per_client)
                        r = -EUSERS;
                else if (!evict_one(h))
                        r = -EBUSY;
        } else if (atomic_load(&h->established) >= h->o.max_connections)
                r = -EBUSY;
        else if (e->established >= h->o.max_connections_per_client)
                r = -EUSERS;
        if (r == 0)
                slot_take(h, e, c, slot);
        (void) pthread_mutex_unlock(&h->lock);
        return r;
}

static void conn_release(struct conn *c) {
        struct httpd *h = c->loop->h;
        (void) pthread_mutex_lock(&h->lock);
        if (c->slot != SLOT_NONE) {
                struct client *e = client_find(h, c->addr);
                slot_drop(h, e, c);
                if (client_unused(e))
                        client_remove(h, e);
        }
        (void) pthread_mutex_unlock(&h->lock);
}

/* After the handshake: trades c's handshake slot for an established one. 0; -ECONNRESET when c
 * was evicted meanwhile; -EBUSY / -EUSERS over the established limits (c then holds no slot). */
static int conn_promote(struct conn *c) {
        struct httpd *h = c->loop->h;
        int r = 0;

        (void) pthread_mutex_lock(&h->lock);
        struct client *e = client_find(h, c->addr);
        if (c->slot != SLOT_HANDSHAKE)
                r = -ECONNRESET;
        else if (atomic_load(&h->established) >= h->o.max_connections)
                r = -EBUSY;
        else if (e->established >= h->o.max_connections_per_client)
                r = -EUSERS;
        if (c->slot == SLOT_HANDSHAKE)
                slot_drop(h, e, c);
        if (r == 0)
                slot_take(h, e, c, SLOT_ESTABLISHED);
        else if (client_unused(e))
                client_remove(h, e);
        (void) pthread_mutex_unlock(&h->lock);
        return r;
}

static void count_rejected(struct httpd *h, int r) {
        count(&h->st.rejected, 1);
        if (r == -EUSERS)
                count(&h->st.rejected_per_client, 1);
}

/* -- the deadline heap -- */

static void heap_swap(struct loop *l, size_t a, size_t b) {
        struct conn *t = l->heap[a];
        l->heap[a] = l->heap[b];
        l->heap[b] = t;
        l->heap[a]->heap_idx = a;
        l->heap[b]->heap_idx = b;
}

static void heap_fix(struct loop *l, size_t i) {
        while (i > 0 && l->heap[(i - 1) / 2]->deadline > l->heap[i]->deadline) {
                heap_swap(l, i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
        for (;;) {
                size_t s = i, a = 2 * i + 1, b = 2 * i + 2;
                if (a < l->n && l->heap[a]->deadline < l->heap[s]->deadline)
                        s = a;
                if (b < l->n && l->heap[b]->deadline < l->heap[s]->deadline)
                        s = b;
                if (s == i)
                        return;
                heap_swap(l, i, s);
                i = s;
        }
}

static int heap_add(struct loop *l, struct conn *c) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                struct conn **h = realloc(l->heap, cap * sizeof(*h));
                if (!h)
                        return -ENOMEM;
                l->heap = h;
                l->cap = cap;
        }
        c->heap_idx = l->n;
        l->heap[l->n++] = c;
        heap_fix(l, c->heap_idx);
        return 0;
}

static void heap_remove(struct loop *l, struct conn *c) {
        size_t i = c->heap_idx;
        if (i >= l->n || l->heap[i] != c)
                return;
        heap_swap(l, i, l->n - 1);
        l->n--;
        if (i < l->n)
                heap_fix(l, i);
}

static uint64_t ms(uint32_t v) {
        return (uint64_t) v * 1000u;
}

static void conn_set_deadline(struct conn *c) {
        const struct httpd_options *o = &c->loop->h->o;
        uint64_t d;

        switch (c->state) {
        case C_HANDSHAKE:
                d = MIN(c->accepted + ms(MIN(o->request_timeout_ms, o->handshake_timeout_ms)),
                        c->last_read + ms(o->read_timeout_ms));
                break;
        case C_READ:
                if (c->in_request || c->requests == 0) {
                        uint64_t start = c->in_request ? c->req_start : c->accepted;
                        d = MIN(start + ms(o->request_timeout_ms),
                                c->last_read + ms(o->read_timeout_ms));
                } else
                        d = c->idle_since + ms(o->idle_timeout_ms);
                break;
        case C_WRITE:
                d = c->last_write + ms(o->write_timeout_ms);
                break;
        case C_PARKED:
                d = c->park_deadline;
                break;
        default:
                d = c->linger_start + ms(LINGER_MS);
                break;
        }
        if (c->loop->stopping)
                d = MIN(d, c->loop->stop_deadline);
        if (d != c->deadline) {
                c->deadline = d;
                heap_fix(c->loop, c->heap_idx);
        }
}

static void conn_account(struct conn *c) {
        struct httpd *h = c->loop->h;
        if (c->tls) {
                uint64_t in, out;
                tls_conn_bytes(c->tls, &in, &out);
                count(&h->st.bytes_in, in - c->tls_in);
                count(&h->st.bytes_out, out - c->tls_out);
                c->tls_in = in;
                c->tls_out = out;
        }
}

static void deferred_unref(struct httpd_deferred *d) {
        if (atomic_fetch_sub(&d->refs, 1) != 1)
                return;
        buf_done(&d->body);
        free(d);
}

/* The connection's side lets go of its parked request (answered, timed out, gone). After this
 * no completer reaches c. */
static void conn_unpark(struct conn *c, bool cancelled) {
        struct httpd_deferred *d = c->parked;
        struct httpd *h = c->loop->h;

        if (!d)
                return;
        (void) pthread_mutex_lock(&h->defer_lock);
        d->conn = NULL;
        (void) pthread_mutex_unlock(&h->defer_lock);
        if (cancelled)
                atomic_store(&d->cancelled, true);
        c->parked = NULL;
        if (c->state == C_PARKED)
                atomic_fetch_sub(&h->st.deferred_active, 1);
        deferred_unref(d);
}

static void conn_free(struct conn *c) {
        struct loop *l = c->loop;
        conn_unpark(c, true);
        conn_release(c); /* first: off the lists before the fd closes (see evict_one()) */
        conn_account(c);
        heap_remove(l, c);
        if (c->fd >= 0)
                (void) epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        tls_conn_free(c->tls);
        c->fd = safe_close(c->fd);
        httpd_parser_free(c->parser);
        buf_done(&c->in);
        buf_done(&c->out);
        buf_done(&c->resp.body);
        free(c);
}

static int conn_want(struct conn *c, uint32_t events) {
        struct epoll_event ev = {.events = events, .data.ptr = c};
        if (events == c->events)
                return 0;
        if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -errno;
        c->events = events;
        return 0;
}

/* epoll interest after -EAGAIN: from the TLS layer, or what the plain socket was doing. */
static int conn_want_after_eagain(struct conn *c, uint32_t plain) {
        if (c->tls) {
                unsigned w = tls_conn_want(c->tls);
                return conn_want(c, (w & TLS_WANT_WRITE ? EPOLLOUT : 0) |
                                            (w & TLS_WANT_READ || !w ? EPOLLIN : 0));
        }
        return conn_want(c, plain);
}

/* Low-level I/O: >0 bytes, 0 EOF, -EAGAIN, -errno. */
static int conn_read(struct conn *c, void *p, size_t n) {
        if (c->tls)
                return tls_conn_read(c->tls, p, n);
        ssize_t r = recv(c->fd, p, n, 0);
        if (r >= 0) {
                count(&c->loop->h->st.bytes_in, (uint64_t) r);
                return (int) r;
        }
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static int conn_write(struct conn *c, const void *p, size_t n) {
        if (c->tls)
                return tls_conn_write(c->tls, p, n);
        ssize_t r = send(c->fd, p, MIN(n, (size_t) 1u << 20), MSG_NOSIGNAL);
        if (r >= 0) {
                count(&c->loop->h->st.bytes_out, (uint64_t) r);
                return (int) r;
        }
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static const char *loop_date(struct loop *l) {
        time_t t = time(NULL);
        if (t != l->date_sec) {
                struct tm tm;
                l->date_sec = t;
                if (!gmtime_r(&t, &tm) ||
                    strftime(l->date, sizeof(l->date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
                        l->date[0] = '\0';
        }
        return l->date;
}

/* Serialises a response into c->out. */
static int conn_queue_response(struct conn *c, int status, const char *content_type,
                               const struct buf *body, const struct httpd_header *headers,
                               size_t n_headers, bool head_only) {
        struct httpd *h = c->loop->h;
        bool no_body = status == 204 || status == 304;
        size_t blen = no_body ? 0 : body->len;
        int r;

        buf_reset(&c->out);
        c->out_off = 0;
        r = buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                       httpd_status_reason(status), loop_date(c->loop));
        if (r >= 0 && !no_body) {
                if (!content_type && blen > 0)
                        content_type = "text/plain; charset=utf-8";
                if (content_type)
                        r = buf_printf(&c->out, "Content-Type: %s\r\n", content_type);
                if (r >= 0)
                        r = buf_printf(&c->out, "Content-Length: %zu\r\n", blen);
        }
        for (size_t i = 0; r >= 0 && i < n_headers; i++)
                r = buf_printf(&c->out, "%s: %s\r\n", headers[i].name, headers[i].value);
        if (r >= 0)
                r = buf_append_str(&c->out, c->close_after ? "Connection: close\r\n\r\n"
                                            : c->http10    ? "Connection: keep-alive\r\n\r\n"
                                                           : "\r\n");
        if (r >= 0 && blen > 0 && !head_only)
                r = buf_append(&c->out, body->data, blen);
        if (r < 0)
                return r;
        count(&h->st.responses[status / 100], 1);
        return 0;
}

static void conn_queue_error(struct conn *c, int status, const char *message) {
        _cleanup_buf_ struct buf body = BUF_INIT(512, 0);
        c->close_after = true;
        (void) buf_printf(&body, "%d %s: %s\n", status, httpd_status_reason(status), message);
        if (conn_queue_response(c, status, "text/plain; charset=utf-8", &body, NULL, 0, false) < 0)
                buf_truncate(&c->out, 0);
        c->state = C_WRITE;
        c->last_write = now_usec();
}

static bool content_type_valid(const char *s) {
        return s && *s && strlen(s) <= 256 && httpd_field_value_valid(s, strlen(s));
}

/* Runs the handler on the pending request and queues its response. */
static void conn_dispatch(struct conn *c) {
        struct loop *l = c->loop;
        struct httpd *h = l->h;
        struct httpd_request req = *httpd_parser_request(c->parser);
        struct httpd_response *resp = &c->resp;
        bool head = strcmp(req.method, "HEAD") == 0;
        int r;

        c->http10 = req.version_minor == 0;
        req.start_usec = c->req_start;
        req.remote = c->remote;
        if (c->tls) {
                req.tls_version = tls_conn_version(c->tls);
                req.alpn = tls_conn_alpn(c->tls);
                req.tls_generation = tls_conn_generation(c->tls);
                req.tls = c->tls;
        }
        resp->status = 200;
        resp->content_type = NULL;
        buf_reset(&resp->body);
        resp->close = false;
        resp->arena = req.arena;
        resp->n_headers = 0;
        count(&h->st.requests, 1);
        c->requests++;

        resp->owner = c;
        r = h->o.handler(h->o.userdata, &req, resp);
        resp->owner = NULL;
        if (r >= 0 && (resp->status < 200 || resp->status > 599))
                r = -EINVAL;
        if (r >= 0 && resp->content_type && !content_type_valid(resp->content_type))
                r = -EINVAL;
        c->close_after = !req.keep_alive || resp->close || l->stopping ||
                         c->requests >= h->o.max_requests_per_conn;
        if (c->parked && r >= 0) {
                /* Parked: nothing is read until the answer, only the client's going away is
                 * watched (EPOLLRDHUP: a half-close counts, as EOF does while reading). */
                c->head = head;
                c->state = C_PARKED;
                count(&h->st.deferred, 1);
                count(&h->st.deferred_active, 1);
                if (conn_want(c, EPOLLRDHUP) < 0)
                        c->park_deadline = 0; /* cannot watch it: answer with the fallback */
                return;
        }
        conn_unpark(c, true); /* the handler failed after parking: its completer finds it gone */
        if (r >= 0)
                r = conn_queue_response(c, resp->status, resp->content_type, &resp->body,
                                        resp->headers, resp->n_headers, head);
        if (r < 0) {
                _cleanup_buf_ struct buf body = BUF_INIT(64, 0);
                count(&h->st.handler_errors, 1);
                (void) buf_append_str(&body, "500 Internal Server Error\n");
                if (conn_queue_response(c, 500, NULL, &body, NULL, 0, head) < 0)
                        buf_truncate(&c->out, 0);
        }
        if (resp->body.cap > 256u * 1024u)
                buf_done(&resp->body);
        c->state = C_WRITE;
        c->last_write = now_usec();
}

static bool conn_process(struct conn *c);

/* Sends the parked request's fallback (the response its handler left). */
static void conn_send_fallback(struct conn *c) {
        struct httpd_response *resp = &c->resp;
        c->close_after = c->close_after || c->loop->stopping;
        if (conn_queue_response(c, resp->status, resp->content_type, &resp->body, resp->headers,
                                resp->n_headers, c->head) < 0)
                buf_truncate(&c->out, 0);
        c->state = C_WRITE;
        c->last_write = now_usec();
}

int httpd_defer(struct httpd_response *resp, uint32_t deadline_ms, struct httpd_deferred **ret) {
        struct conn *c = resp ? resp->owner : NULL;
        struct httpd_deferred *d;

        if (!c || c->parked || !ret)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        atomic_init(&d->refs, 2);
        atomic_init(&d->cancelled, false);
        d->h = c->loop->h;
        d->conn = c; /* published to the completer by whatever hands it the handle */
        d->body = BUF_INIT(c->loop->h->o.limits.max_response_body, 0);
        c->parked = d;
        c->park_deadline = c->req_start + ms(deadline_ms);
        *ret = d;
        return 0;
}

/* Puts d on its connection's loop's done list and wakes the loop; false when the request is
 * gone (the completer's reference is then still to drop). */
static bool deferred_post(struct httpd_deferred *d, bool fallback) {
        struct httpd *h = d->h;
        struct conn *c;
        uint64_t one = 1;

        (void) pthread_mutex_lock(&h->defer_lock);
        c = d->conn;
        if (c) {
                d->fallback = fallback;
                d->next = c->loop->done;
                c->loop->done = d;
                (void) !write(c->loop->wake_fd, &one, sizeof(one));
        }
        (void) pthread_mutex_unlock(&h->defer_lock);
        return c != NULL;
}

int httpd_deferred_complete(struct httpd_deferred *d, int status, const char *content_type,
                            const void *body, size_t len) {
        int r = 0;

        if (!d)
                return -EINVAL;
        if (status < 200 || status > 599 || (content_type && !content_type_valid(content_type)) ||
            (len > 0 && !body))
                r = -EINVAL;
        if (r >= 0 && atomic_load(&d->cancelled))
                r = -ECANCELED; /* nobody waits: do not copy */
        buf_reset(&d->body);
        if (r >= 0 && len > 0)
                r = buf_append(&d->body, body, len);
        d->status = status;
        d->content_type = content_type;
        if (r < 0 && r != -ECANCELED) {
                buf_reset(&d->body);
                (void) buf_append_str(&d->body, "500 Internal Server Error\n");
                d->status = 500;
                d->content_type = NULL;
        }
        if (!deferred_post(d, false)) {
                deferred_unref(d);
                return -ECANCELED;
        }
        return r == -ECANCELED ? 0 : r;
}

void httpd_deferred_drop(struct httpd_deferred *d) {
        if (d && !deferred_post(d, true))
                deferred_unref(d);
}

bool httpd_deferred_cancelled(const struct httpd_deferred *d) {
        return !d || atomic_load(&((struct httpd_deferred *) d)->cancelled);
}

/* The loop's wake-up: answers the parked requests whose completion arrived. */
static void loop_deliver(struct loop *l) {
        struct httpd *h = l->h;
        struct httpd_deferred *list, *rev = NULL;
        uint64_t v;

        (void) !read(l->wake_fd, &v, sizeof(v));
        (void) pthread_mutex_lock(&h->defer_lock);
        list = l->done;
        l->done = NULL;
        (void) pthread_mutex_unlock(&h->defer_lock);
        while (list) { /* oldest first */
                struct httpd_deferred *n = list->next;
                list->next = rev;
                rev = list;
                list = n;
        }
        while (rev) {
                struct httpd_deferred *d = rev;
                struct conn *c;
                rev = d->next;
                (void) pthread_mutex_lock(&h->defer_lock);
                c = d->conn; /* NULL: timed out or gone after the completion was posted */
                (void) pthread_mutex_unlock(&h->defer_lock);
                if (c && c->parked == d) {
                        conn_unpark(c, false); /* the connection's reference */
                        if (d->fallback)
                                conn_send_fallback(c);
                        else {
                                c->close_after = c->close_after || l->stopping;
                                if (conn_queue_response(c, d->status, d->content_type, &d->body,
                                                        NULL, 0, c->head) < 0)
                                        buf_truncate(&c->out, 0);
                                c->state = C_WRITE;
                                c->last_write = now_usec();
                        }
                        (void) conn_process(c);
                }
                deferred_unref(d); /* the completer's, carried by the list */
        }
}

static void conn_start_close(struct conn *c) {
        if (c->tls)
                (void) tls_conn_shutdown(c->tls); /* best effort close_notify */
        (void) shutdown(c->fd, SHUT_WR);
        c->state = C_LINGER;
        c->linger_start = now_usec();
        (void) conn_want(c, EPOLLIN);
}

/* Feeds buffered input to the parser; returns true when the state changed to C_WRITE. */
static bool conn_feed(struct conn *c) {
        struct httpd *h = c->loop->h;
        const char *msg = "";
        size_t used = 0;
        int r, status;

        if (c->in.len == 0)
                return false;
        r = httpd_parser_feed(c->parser, c->in.data, c->in.len, &used);
        buf_consume(&c->in, used);
        switch (r) {
        case HTTPD_PARSE_CONTINUE: {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                buf_reset(&c->out);
                c->out_off = 0;
                (void) buf_append(&c->out, cont, sizeof(cont) - 1);
                count(&h->st.responses[1], 1);
                c->interim = true;
                c->state = C_WRITE;
                c->last_write = now_usec();
                return true;
        }
        case HTTPD_PARSE_REQUEST:
                conn_dispatch(c);
                return true;
        case HTTPD_PARSE_ERROR:
                status = httpd_parser_error(c->parser, &msg);
                count(&h->st.client_errors, 1);
                conn_queue_error(c, status ? status : 400, msg);
                return true;
        default:
                return false;
        }
}

/* Drives a connection as far as it goes without blocking. Returns false when it was freed. */
static bool conn_process(struct conn *c) {
        struct loop *l = c->loop;
        struct httpd *h = l->h;
        int r;

        for (;;) {
                switch (c->state) {
                case C_HANDSHAKE:
                        r = tls_conn_handshake(c->tls);
                        if (r == -EAGAIN) {
                                if (conn_want_after_eagain(c, EPOLLIN) < 0)
                                        goto drop;
                                goto out;
                        }
                        if (r < 0) {
                                if (!atomic_load(&c->evicted))
                                        count(&h->st.handshake_failures, 1);
                                goto drop;
                        }
                        r = conn_promote(c);
                        if (r < 0) {
                                if (r != -ECONNRESET)
                                        count_rejected(h, r);
                                goto drop; /* evicted, or no established slot for it */
                        }
                        c->state = C_READ;
                        c->last_read = now_usec();
                        break;
                case C_READ:
                        if (conn_feed(c))
                                break;
                        if (l->stopping && !c->in_request)
                                goto close;
                        if (buf_reserve(&c->in, READ_CHUNK) < 0)
                                goto drop;
                        r = conn_read(c, c->in.data + c->in.len, READ_CHUNK);
                        if (r == -EAGAIN) {
                                if (conn_want_after_eagain(c, EPOLLIN) < 0)
                                        goto drop;
                                goto out;
                        }
                        if (r <= 0)
                                goto drop; /* EOF, reset or TLS error: nothing to answer */
                        buf_commit(&c->in, (size_t) r);
                        c->last_read = now_usec();
                        if (!c->in_request) {
                                c->in_request = true;
                                c->req_start = c->last_read;
                        }
                        break;
                case C_WRITE:
                        if (c->out_off < c->out.len) {
                                r = conn_write(c, c->out.data + c->out_off,
                                               c->out.len - c->out_off);
                                if (r == -EAGAIN) {
                                        if (conn_want_after_eagain(c, EPOLLOUT) < 0)
                                                goto drop;
                                        goto out;
                                }
                                if (r <= 0)
                                        goto drop;
                                c->out_off += (size_t) r;
                                c->last_write = now_usec();
                                break;
                        }
                        if (c->interim) {
                                c->interim = false;
                                c->state = C_READ;
                                break;
                        }
                        if (c->close_after)
                                goto close;
                        httpd_parser_next(c->parser);
                        buf_reset(&c->out);
                        c->state = C_READ;
                        c->idle_since = now_usec();
                        c->in_request = c->in.len > 0; /* a pipelined request is waiting */
                        c->req_start = c->idle_since;
                        c->last_read = c->idle_since;
                        break;
                case C_PARKED:
                        goto out; /* until the completion, the deadline or the client's EOF */
                case C_LINGER: {
                        char sink[4096];
                        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
                        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                goto out;
                        if (n <= 0)
                                goto drop;
                        c->linger_bytes += (size_t) n;
                        if (c->linger_bytes > LINGER_MAX_BYTES)
                                goto drop;
                        break;
                }
                }
        }
close:
        conn_account(c);
        conn_start_close(c);
        /* fall through to out: the linger state waits for EOF or its deadline */
out:
        conn_account(c);
        conn_set_deadline(c);
        return true;
drop:
        conn_free(c);
        return false;
}

static void loop_accept(struct loop *l) {
        struct httpd *h = l->h;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                int fd = accept4(h->listen_fd, (struct sockaddr *) &ss, &sl,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                enum slot slot = h->o.tls ? SLOT_HANDSHAKE : SLOT_ESTABLISHED;
                struct conn *c;
                int r;

                if (fd < 0)
                        return; /* EAGAIN (another loop took it), or a transient error */
                c = calloc(1, sizeof(*c));
                if (!c) {
                        (void) close(fd);
                        continue;
                }
                c->loop = l;
                c->fd = fd;
                client_key(&ss, c->addr);
                r = conn_admit(c, slot);
                if (r < 0) {
                        count_rejected(h, r);
                        (void) close(fd);
                        free(c);
                        continue;
                }
                count(&h->st.accepted, 1);
                c->accepted = c->last_read = now_usec();
                buf_init(&c->in, 2 * READ_CHUNK, 0);
                buf_init(&c->out, h->o.limits.max_response_body + 4096u, 0);
                buf_init(&c->resp.body, h->o.limits.max_response_body, 0);
                format_peer(&ss, c->remote, sizeof(c->remote));
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
                c->state = h->o.tls ? C_HANDSHAKE : C_READ;
                c->deadline = UINT64_MAX;
                c->events = EPOLLIN;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                if (httpd_parser_new(&h->o.limits, &c->parser) < 0 ||
                    (h->o.tls && tls_conn_new(h->o.tls, fd, &c->tls) < 0) || heap_add(l, c) < 0) {
                        conn_free(c);
                        continue;
                }
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        conn_free(c);
                        continue;
                }
                (void) conn_process(c);
        }
}

static void loop_expire(struct loop *l, uint64_t now) {
        while (l->n > 0 && l->heap[0]->deadline <= now) {
                struct conn *c = l->heap[0];
                if (c->state == C_PARKED) {
                        /* The completion is late: the fallback the handler left. */
                        count(&l->h->st.deferred_timeouts, 1);
                        conn_unpark(c, true);
                        conn_send_fallback(c);
                        (void) conn_process(c);
                        continue;
                }
                if (c->state != C_LINGER)
                        count(&l->h->st.timeouts, 1);
                if (c->state == C_HANDSHAKE)
                        count(&l->h->st.handshake_timeouts, 1);
                conn_free(c);
        }
}

static void loop_begin_stop(struct loop *l) {
        struct httpd *h = l->h;
        l->stopping = true;
        l->stop_deadline = now_usec() + ms(h->o.stop_timeout_ms);
        (void) epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->listen_fd, NULL);
        /* Idle connections close now; the others finish their request (with Connection: close).
         * Walk a snapshot: conn_process() may free and reorder the heap. */
        size_t n = l->n;
        struct conn **all;
        if (n == 0)
                return;
        all = malloc(n * sizeof(*all));
        if (!all) {
                while (l->n > 0)
                        conn_free(l->heap[0]);
                return;
        }
        memcpy(all, l->heap, n * sizeof(*all));
        for (size_t i = 0; i < n; i++) {
                struct conn *c = all[i];
                if (c->state == C_READ && !c->in_request) {
                        /* Nothing unread to drain: close_notify and close, no lingering. */
                        if (c->tls)
                                (void) tls_conn_shutdown(c->tls);
                        conn_free(c);
                        continue;
                }
                if (c->state == C_PARKED)
                        c->close_after = true;
                conn_set_deadline(c);
        }
        free(all);
}

int httpd_run(struct httpd *h) {
        struct loop l = {.h = h, .wake_fd = -EBADF};
        struct epoll_event ev;
        int r = 0;

        if (!h)
                return -EINVAL;
        l.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l.epfd < 0)
                return -errno;
        l.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l.wake_fd < 0) {
                r = -errno;
                goto done;
        }
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l.wake_fd};
        if (epoll_ctl(l.epfd, EPOLL_CTL_ADD, l.wake_fd, &ev) < 0) {
                r = -errno;
                goto done;
        }
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &h->listen_fd};
        if (epoll_ctl(l.epfd, EPOLL_CTL_ADD, h->listen_fd, &ev) < 0) {
                r = -errno;
                goto done;
        }
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &h->stop_fd};
        if (epoll_ctl(l.epfd, EPOLL_CTL_ADD, h->stop_fd, &ev) < 0) {
                r = -errno;
                goto done;
        }
        for (;;) {
                struct epoll_event events[MAX_EVENTS];
                uint64_t now = now_usec();
                int timeout = -1, n;

                loop_expire(&l, now);
                if (l.stopping && l.n == 0)
                        break;
                if (l.n > 0) {
                        uint64_t wait = (l.heap[0]->deadline - now + 999u) / 1000u;
                        timeout = (int) MIN(wait, (uint64_t) 60000);
                }
                n = epoll_wait(l.epfd, events, MAX_EVENTS, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < n; i++) {
                        void *p = events[i].data.ptr;
                        if (p == &h->listen_fd) {
                                if (!l.stopping)
                                        loop_accept(&l);
                        } else if (p == &h->stop_fd) {
                                if (!l.stopping) {
                                        loop_begin_stop(&l);
                                        (void) epoll_ctl(l.epfd, EPOLL_CTL_DEL, h->stop_fd, NULL);
                                }
                        } else if (p == &l.wake_fd)
                                loop_deliver(&l);
                        else if (((struct conn *) p)->state == C_PARKED) {
                                if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                                        count(&h->st.deferred_cancelled, 1);
                                        conn_free(p);
                                }
                        } else
                                (void) conn_process(p);
                }
        }
done:
        while (l.n > 0)
                conn_free(l.heap[0]);
        /* No connection left, so no completer can post any more: what was posted goes. */
        (void) pthread_mutex_lock(&h->defer_lock);
        struct httpd_deferred *left = l.done;
        l.done = NULL;
        (void) pthread_mutex_unlock(&h->defer_lock);
        while (left) {
                struct httpd_deferred *n = left->next;
                deferred_unref(left);
                left = n;
        }
        free(l.heap);
        l.wake_fd = safe_close(l.wake_fd);
        (void) close(l.epfd);
        return r;
}

void httpd_stop(struct httpd *h) {
        uint64_t one = 1;
        if (h && h->stop_fd >= 0)
                (void) !write(h->stop_fd, &one, sizeof(one));
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t sl, int backlog, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int one = 1, zero = 0;

        fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (ss->ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) ss)->sin6_addr))
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, (const struct sockaddr *) ss, sl) < 0)
                return -errno;
        if (listen(fd, backlog) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int httpd_new(const struct httpd_options *o, struct httpd **ret) {
        struct sockaddr_storage ss;
        socklen_t sl;
        struct httpd *h;
        int r;

        if (!o || !ret || !o->handler)
                return -EINVAL;
        r = httpd_parse_address(o->address, &ss, &sl);
        if (r < 0)
                return r;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->o = *o;
        h->o.address = NULL; /* not kept: the caller's string */
        h->listen_fd = h->stop_fd = -EBADF;
        if (httpd_limits_normalize(&h->o.limits) < 0) {
                free(h);
                return -EINVAL;
        }
#define DEFAULT(f, v)                 \
        do {                          \
                if (!h->o.f)          \
                        h->o.f = (v); \
        } while (0)
        DEFAULT(max_connections, 256u);
        DEFAULT(max_handshakes, 64u);
        DEFAULT(max_connections_per_client,
                MAX(h->o.max_connections - h->o.max_connections / 4, 1u));
        DEFAULT(max_handshakes_per_client, MAX(h->o.max_handshakes / 4, 1u));
        DEFAULT(handshake_timeout_ms, 3000u);
        DEFAULT(max_requests_per_conn, 1000u);
        DEFAULT(read_timeout_ms, 10000u);
        DEFAULT(request_timeout_ms, 30000u);
        DEFAULT(idle_timeout_ms, 60000u);
        DEFAULT(write_timeout_ms, 10000u);
        DEFAULT(stop_timeout_ms, 5000u);
        DEFAULT(backlog, 512);
#undef DEFAULT
        h->o.max_connections_per_client =
                MIN(h->o.max_connections_per_client, h->o.max_connections);
        h->o.max_handshakes_per_client = MIN(h->o.max_handshakes_per_client, h->o.max_handshakes);
        if (pthread_mutex_init(&h->lock, NULL) != 0) {
                free(h);
                return -ENOMEM;
        }
        if (pthread_mutex_init(&h->defer_lock, NULL) != 0) {
                (void) pthread_mutex_destroy(&h->lock);
                free(h);
                return -ENOMEM;
        }
        h->n_clients = 16;
        while (h->n_clients < 2 * ((size_t) h->o.max_connections + h->o.max_handshakes))
                h->n_clients *= 2;
        h->clients = calloc(h->n_clients, sizeof(*h->clients));
        if (!h->clients) {
                httpd_free(h);
                return -ENOMEM;
        }
        r = listen_on(&ss, sl, h->o.backlog, &h->listen_fd);
        if (r == -EAFNOSUPPORT && ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *) &ss)->sin6_addr)) {
                /* ":port" on a host without IPv6: the IPv4 wildcard. */
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = ((struct sockaddr_in6 *) &ss)->sin6_port,
                                        .sin_addr.s_addr = htonl(INADDR_ANY)};
                memset(&ss, 0, sizeof(ss));
                memcpy(&ss, &a, sizeof(a));
                r = listen_on(&ss, sizeof(a), h->o.backlog, &h->listen_fd);
        }
        if (r >= 0) {
                h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (h->stop_fd < 0)
                        r = -errno;
        }
        if (r >= 0) {
                sl = sizeof(ss);
                if (getsockname(h->listen_fd, (struct sockaddr *) &ss, &sl) < 0)
                        r = -errno;
                else
                        h->port = ntohs(ss.ss_family == AF_INET
                                                ? ((struct sockaddr_in *) &ss)->sin_port
                                                : ((struct sockaddr_in6 *) &ss)->sin6_port);
        }
        if (r < 0) {
                httpd_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

struct httpd *httpd_free(struct httpd *h) {
        if (!h)
                return NULL;
        h->listen_fd = safe_close(h->listen_fd);
        h->stop_fd = safe_close(h->stop_fd);
        free(h->clients);
        (void) pthread_mutex_destroy(&h->lock);
        (void) pthread_mutex_destroy(&h->defer_lock);
        free(h);
        return NULL;
}

int httpd_port(const struct httpd *h) {
        return h ? h->port : -EINVAL;
}

void httpd_get_stats(const struct httpd *h, struct httpd_stats *ret) {
        struct httpd *m = (struct httpd *) h;
        if (!h || !ret)
                return;
        *ret = (struct httpd_stats){
                .connections_accepted = atomic_load(&m->st.accepted),
                .connections_rejected = atomic_load(&m->st.rejected),
                .connections_rejected_per_client = atomic_load(&m->st.rejected_per_client),
                .connections_active = atomic_load(&m->established) + atomic_load(&m->handshaking),
                .connections_handshaking = atomic_load(&m->handshaking),
                .handshake_timeouts = atomic_load(&m->st.handshake_timeouts),
                .handshakes_evicted = atomic_load(&m->st.handshakes_evicted),
                .tls_handshake_failures = atomic_load(&m->st.handshake_failures),
                .timeouts = atomic_load(&m->st.timeouts),
                .requests = atomic_load(&m->st.requests),
                .client_errors = atomic_load(&m->st.client_errors),
                .handler_errors = atomic_load(&m->st.handler_errors),
                .bytes_in = atomic_load(&m->st.bytes_in),
                .bytes_out = atomic_load(&m->st.bytes_out),
                .deferred = atomic_load(&m->st.deferred),
                .deferred_active = atomic_load(&m->st.deferred_active),
                .deferred_timeouts = atomic_load(&m->st.deferred_timeouts),
                .deferred_cancelled = atomic_load(&m->st.deferred_cancelled),
        };
        for (size_t i = 0; i < ELEMENTSOF(ret->responses); i++)
                ret->responses[i] = atomic_load(&m->st.responses[i]);
}
