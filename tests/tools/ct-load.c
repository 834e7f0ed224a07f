/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-load: an open-loop HTTPS load generator for the benchmarks: POSTs a body at a fixed rate
 * over keep-alive connections (one per thread, through common/http) and prints the latency
 * distribution. Open loop: each request has a scheduled start time and its latency is measured
 * from that time, so a slow server shows up as latency instead of a silently lower rate
 * (coordinated omission).
 *
 *   ct-load --url https://127.0.0.1:9443/mutate-v1-pod --ca ca.pem --body review.json \
 *           --rate 1000 --seconds 10 --threads 4
 *
 * --cert F --key F: a client certificate (mutual TLS, the broker's reads); --header 'N: V': one
 * extra request header (the broker's session token).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/macro.h"

struct job {
        const char *base, *path, *ca;
        const struct buf *body, *cert, *key;
        const struct http_header *header; /* NULL for none */
        double interval_usec;             /* between this thread's requests */
        uint64_t start, end;              /* usec, CLOCK_MONOTONIC */
        uint64_t *lat;                    /* latencies, usec */
        size_t n, cap;
        uint64_t errors, non200;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void *worker(void *arg) {
        struct job *j = arg;
        struct http_client *c = NULL;
        struct http_options o = {.base_url = j->base,
                                 .ca_file = j->ca,
                                 .max_attempts = 1,
                                 .request_timeout_ms = 5000,
                                 .deadline_ms = 5000,
                                 .max_body = 4u * 1024u * 1024u};
        if (j->cert->len) {
                o.client_cert_pem = j->cert->data;
                o.client_cert_pem_len = j->cert->len;
                o.client_key_pem = j->key->data;
                o.client_key_pem_len = j->key->len;
        }
        if (j->header) {
                o.headers = j->header;
                o.n_headers = 1;
        }
        if (http_client_new(&o, &c) < 0) {
                j->errors++;
                return NULL;
        }
        for (uint64_t k = 0;; k++) {
                uint64_t due = j->start + (uint64_t) ((double) k * j->interval_usec);
                if (due >= j->end)
                        break;
                uint64_t t = now_usec();
                if (t < due) {
                        struct timespec ts = {.tv_sec = (time_t) ((due - t) / 1000000u),
                                              .tv_nsec = (long) ((due - t) % 1000000u) * 1000};
                        (void) nanosleep(&ts, NULL);
                }
                struct http_request req = {.method = HTTP_POST, .path = j->path, .body = j->body};
                struct http_response resp = {};
                struct http_result res;
                int r = http_request(c, &req, &resp, &res);
                uint64_t done = now_usec();
                if (r < 0)
                        j->errors++;
                else if (resp.status != 200)
                        j->non200++;
                http_response_done(&resp);
                if (j->n < j->cap)
                        j->lat[j->n++] = done - due;
        }
        http_client_free(c);
        return NULL;
}

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        const char *url = NULL, *ca = NULL, *body_file = NULL, *cert_file = NULL, *key_file = NULL,
                   *header = NULL;
        double rate = 1000, seconds = 5;
        long threads = 4;
        for (int i = 1; i + 1 < argc; i += 2) {
                const char *v = argv[i + 1];
                char *end = NULL;
                if (strcmp(argv[i], "--url") == 0)
                        url = v;
                else if (strcmp(argv[i], "--ca") == 0)
                        ca = v;
                else if (strcmp(argv[i], "--body") == 0)
                        body_file = v;
                else if (strcmp(argv[i], "--cert") == 0)
                        cert_file = v;
                else if (strcmp(argv[i], "--key") == 0)
                        key_file = v;
                else if (strcmp(argv[i], "--header") == 0)
                        header = v;
                else if (strcmp(argv[i], "--rate") == 0) {
                        errno = 0;
                        rate = strtod(v, &end);
                } else if (strcmp(argv[i], "--seconds") == 0) {
                        errno = 0;
                        seconds = strtod(v, &end);
                } else if (strcmp(argv[i], "--threads") == 0) {
                        errno = 0;
                        threads = strtol(v, &end, 10);
                        if (threads < 1 || threads > 64)
                                errno = ERANGE;
                } else
                        return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
                if (end && (errno || *end))
                        return fprintf(stderr, "bad value for %s\n", argv[i]), 2;
        }
        if (argc == 2 && strcmp(argv[1], "--version") == 0)
                return printf("ct-load %s\n", CLOUDTASER_VERSION), 0;
        if (!url || !body_file || rate <= 0 || seconds <= 0)
                return fprintf(stderr, "usage: ct-load --url URL [--ca F] --body F [--rate R] "
                                       "[--seconds S] [--threads N] [--cert F --key F] "
                                       "[--header 'N: V']\n"),
                       2;

        /* Split the URL into base and path. */
        const char *slash = strchr(url + strlen("https://"), '/');
        char base[512];
        (void) snprintf(base, sizeof(base), "%.*s",
                        (int) (slash ? slash - url : (long) strlen(url)), url);
        const char *path = slash ? slash : "/";

        _cleanup_buf_ struct buf body = BUF_INIT(8u * 1024u * 1024u, 0);
        _cleanup_close_ int fd = open(body_file, O_RDONLY | O_CLOEXEC);
        char chunk[65536];
        ssize_t n;
        if (fd < 0)
                return perror(body_file), 2;
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
                if (buf_append(&body, chunk, (size_t) n) < 0)
                        return 2;

        _cleanup_buf_ struct buf cert = BUF_INIT(1024u * 1024u, 0);
        _cleanup_buf_ struct buf key = BUF_INIT(64u * 1024u, BUF_SECURE);
        if ((cert_file && buf_read_file(&cert, cert_file) < 0) ||
            (key_file && buf_read_file(&key, key_file) < 0) || (!cert_file != !key_file))
                return fprintf(stderr, "--cert and --key go together and must be readable\n"), 2;
        char hname[128] = "";
        struct http_header hdr = {};
        if (header) {
                const char *colon = strchr(header, ':');
                if (!colon || colon == header || (size_t) (colon - header) >= sizeof(hname))
                        return fprintf(stderr, "--header wants 'Name: value'\n"), 2;
                (void) snprintf(hname, sizeof(hname), "%.*s", (int) (colon - header), header);
                hdr = (struct http_header){
                        .name = hname, .value = colon + 1 + strspn(colon + 1, " "), .secret = true};
        }

        struct job jobs[64];
        pthread_t tids[64];
        uint64_t start = now_usec() + 200000, end = start + (uint64_t) (seconds * 1e6);
        size_t cap = (size_t) (rate * seconds / (double) threads) + 16;
        for (long t = 0; t < threads; t++) {
                jobs[t] = (struct job){.base = base,
                                       .path = path,
                                       .ca = ca,
                                       .body = &body,
                                       .cert = &cert,
                                       .key = &key,
                                       .header = header ? &hdr : NULL,
                                       .interval_usec = 1e6 * (double) threads / rate,
                                       .start = start + (uint64_t) (t * 1e6 / rate),
                                       .end = end,
                                       .lat = calloc(cap, sizeof(uint64_t)),
                                       .cap = cap};
                if (!jobs[t].lat || pthread_create(&tids[t], NULL, worker, &jobs[t]) != 0)
                        return 1;
        }
        size_t total = 0;
        uint64_t errors = 0, non200 = 0;
        for (long t = 0; t < threads; t++) {
                (void) pthread_join(tids[t], NULL);
                total += jobs[t].n;
                errors += jobs[t].errors;
                non200 += jobs[t].non200;
        }
        uint64_t *all = calloc(total ? total : 1, sizeof(uint64_t));
        size_t k = 0;
        for (long t = 0; t < threads; t++) {
                memcpy(all + k, jobs[t].lat, jobs[t].n * sizeof(uint64_t));
                k += jobs[t].n;
                free(jobs[t].lat);
        }
        qsort(all, total, sizeof(uint64_t), cmp);
        double elapsed = (double) (now_usec() - start) / 1e6;
#define PCT(p) (total ? (double) all[MIN(total - 1, (size_t) ((double) total * (p)))] / 1000.0 : 0)
        printf("requests %zu in %.2f s (%.0f/s offered, %.0f/s done), errors %" PRIu64
               ", non-200 %" PRIu64 "\n",
               total, elapsed, rate, (double) total / elapsed, errors, non200);
        printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", PCT(0.50),
               PCT(0.90), PCT(0.99), PCT(0.999), total ? (double) all[total - 1] / 1000.0 : 0);
        free(all);
        return errors ? 1 : 0;
}
