/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for wrapper/child's memfd publication: the header, and a reader following the
 * seqlock protocol of docs/wrapper.md while another thread publishes thousands of new sets. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "tests/tap.h"
#include "wrapper/child.h"

#define UPDATES 2000

/* A set with one record BLOB=<n times c>. */
static int make_set(struct secret_set *s, char c, size_t n) {
        *s = (struct secret_set){};
        buf_init(&s->records, SECRETS_MAX_BYTES, BUF_SECURE);
        int r = buf_append(&s->records, "BLOB=", 5);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = buf_append_byte(&s->records, (uint8_t) c);
        if (r >= 0)
                r = buf_append_byte(&s->records, 0);
        s->n = 1;
        return r;
}

struct reader {
        const char *map;
        size_t size;
        volatile bool stop;
        unsigned long snapshots, torn, retries;
};

/* A snapshot is whole when it is one of the two sets: "BLOB=" and 40000 'a' or 60000 'b'. */
static bool whole(const char *rec, size_t len) {
        if (len < 6 || memcmp(rec, "BLOB=", 5) != 0 || rec[len - 1] != '\0')
                return false;
        size_t n = len - 6;
        char c = rec[5];
        if (!((c == 'a' && n == 40000) || (c == 'b' && n == 60000)))
                return false;
        for (size_t i = 0; i < n; i++)
                if (rec[5 + i] != c)
                        return false;
        return true;
}

static void *read_loop(void *userdata) {
        struct reader *rd = userdata;
        const uint64_t *gen = (const uint64_t *) (const void *) (rd->map + 8);
        const uint64_t *len = (const uint64_t *) (const void *) (rd->map + 16);
        char *copy = malloc(rd->size);
        if (!copy)
                return NULL;
        while (!rd->stop) {
                uint64_t g = __atomic_load_n(gen, __ATOMIC_ACQUIRE);
                uint64_t n = __atomic_load_n(len, __ATOMIC_RELAXED);
                if ((g & 1) || n > rd->size - CHILD_MEMFD_HEADER) {
                        rd->retries++;
                        continue;
                }
                memcpy(copy, rd->map + CHILD_MEMFD_HEADER, n);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (__atomic_load_n(gen, __ATOMIC_RELAXED) != g) {
                        rd->retries++;
                        continue;
                }
                rd->snapshots++;
                if (!whole(copy, n))
                        rd->torn++;
        }
        free(copy);
        return NULL;
}

static void test_publication(void) {
        struct secret_set a, b;
        int fd = -1;
        bool is_secret = false;
        struct stat st;

        ok(make_set(&a, 'a', 40000) >= 0 && make_set(&b, 'b', 60000) >= 0, "two sets built");
        is_int(child_memfd_create(&a, true, &fd, &is_secret), 0, "memfd created (%s)",
               is_secret ? "memfd_secret" : "memfd");
        if (fd < 0 || fstat(fd, &st) < 0) {
                ok(false, "memfd usable");
                return;
        }
        char *map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        ok(map != MAP_FAILED, "reader maps the memfd");
        if (map == MAP_FAILED)
                return;
        uint64_t g0, n0;
        memcpy(&g0, map + 8, 8);
        memcpy(&n0, map + 16, 8);
        ok(memcmp(map, CHILD_MEMFD_MAGIC, 8) == 0 && g0 == 2 && n0 == a.records.len &&
                   memcmp(map + CHILD_MEMFD_HEADER, a.records.data, a.records.len) == 0,
           "header: magic, generation 2, the records' length, then the records");

        struct reader rd = {.map = map, .size = (size_t) st.st_size};
        pthread_t t;
        ok(pthread_create(&t, NULL, read_loop, &rd) == 0, "reader thread started");
        int failures = 0;
        for (int i = 0; i < UPDATES; i++)
                if (child_memfd_update(fd, is_secret, i % 2 ? &a : &b) < 0)
                        failures++;
        rd.stop = true;
        (void) pthread_join(t, NULL);
        uint64_t g1;
        memcpy(&g1, map + 8, 8);
        ok(failures == 0 && g1 == g0 + 2 * UPDATES, "%d updates, each two generations later",
           UPDATES);
        ok(rd.snapshots > 0 && rd.torn == 0,
           "a protocol reader took %lu snapshots during them, none torn (%lu copies retried)",
           rd.snapshots, rd.retries);

        /* Shrinking leaves no trace of the longer value after the records. */
        ok(child_memfd_update(fd, is_secret, &a) == 0, "back to the short set");
        bool clean = true;
        for (size_t i = CHILD_MEMFD_HEADER + a.records.len; i < (size_t) st.st_size; i++)
                clean = clean && map[i] == 0;
        ok(clean, "zeros after the records");

        struct secret_set huge;
        ok(make_set(&huge, 'c', (size_t) st.st_size) >= 0 &&
                   child_memfd_update(fd, is_secret, &huge) == -E2BIG,
           "a set larger than the file: -E2BIG");
        memcpy(&g1, map + 8, 8);
        ok(!(g1 & 1), "a refused update leaves the generation even");
        secret_set_done(&huge);
        (void) munmap(map, (size_t) st.st_size);
        (void) close(fd);
        secret_set_done(&a);
        secret_set_done(&b);
}

int main(void) {
        test_publication();
        return tap_done();
}
