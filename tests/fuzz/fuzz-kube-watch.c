/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the stream parser of a Kubernetes watch (common/kube.h kube_watch_parser_*;
 * untrusted: the API server's body, or whoever answers in its place). The first byte picks how the
 * rest is cut into pieces (1..16 bytes, or whole) and the line bound (small or the default).
 * Properties: the events and the outcome do not depend on how the stream is cut (a whole feed and
 * a piecewise one agree); every event has a known type, an object, and a resourceVersion of
 * 1..KUBE_RV_MAX-1 bytes of [A-Za-z0-9._-]; a failed parser stays failed with the same error; an
 * error is one of the documented ones. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
        uint64_t hash; /* over the events' types and resourceVersions */
        unsigned n;
};

static int on_event(void *userdata, const struct kube_event *ev) {
        struct trace *t = userdata;
        size_t n = strlen(ev->resource_version);
        if (ev->type > KUBE_EVENT_BOOKMARK || !ev->object || json_type(ev->object) != JSON_OBJECT ||
            n == 0 || n >= KUBE_RV_MAX ||
            strspn(ev->resource_version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789._-") != n)
                abort();
        t->hash = t->hash * 1099511628211u + (uint64_t) ev->type + 1;
        for (size_t i = 0; i < n; i++)
                t->hash = t->hash * 1099511628211u + (uint8_t) ev->resource_version[i];
        t->n++;
        return 0;
}

static int run(const uint8_t *s, size_t n, size_t piece, size_t max_line, struct trace *t) {
        struct kube_watch_parser *p = NULL;
        if (kube_watch_parser_new(max_line, on_event, t, &p) < 0)
                abort();
        int r = 0;
        for (size_t i = 0; r == 0 && i < n; i += piece)
                r = kube_watch_parser_feed(p, s + i, piece < n - i ? piece : n - i, NULL);
        if (r < 0 && kube_watch_parser_feed(p, "\n", 1, NULL) != r)
                abort(); /* the error sticks */
        kube_watch_parser_free(p);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t piece = (size_t) (data[0] & 15) + 1;
        size_t max_line = data[0] & 16 ? 512 : 0;
        struct trace whole = {}, pieces = {};
        int a = run(data + 1, size - 1, size, max_line, &whole);
        int b = run(data + 1, size - 1, piece, max_line, &pieces);
        if (a != b || whole.n != pieces.n || whole.hash != pieces.hash)
                abort();
        if (a != 0 && a != -EBADMSG && a != -E2BIG && a != -ENOMEM && a != -EACCES &&
            a != -ENOENT && a != -ESTALE && a != -EEXIST && a != -ETIME && a != -EINVAL &&
            a != -EAGAIN && a != -EPROTO)
                abort();
        return 0;
}
