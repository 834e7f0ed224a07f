/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-cli-plan: plan_parse() (cli/plan, the migration plan file a reviewer edits) on arbitrary
 * bytes. Properties: only the documented errors come back, each with a message; an accepted plan
 * formats, and parse -> format -> parse is the identity (and format is a fixed point); and
 * plan_set_status_text() on an accepted plan, for a workload and status chosen by the input's
 * first byte, yields text that parses as the same plan with only that status and reason changed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plan.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
        do {                                                                                  \
                if (!(cond)) {                                                                \
                        fprintf(stderr, "fuzz-cli-plan: %s:%d: check failed: %s\n", __FILE__, \
                                __LINE__, #cond);                                             \
                        abort();                                                              \
                }                                                                             \
        } while (0)

static void check_set_status(const char *text, size_t size, const struct plan *p, uint8_t pick) {
        size_t t = pick % (p->n_tenants ? p->n_tenants : 1);
        if (t >= p->n_tenants || !p->tenants[t].n_workloads)
                return;
        size_t w = (pick >> 2) % p->tenants[t].n_workloads;
        enum plan_status st = (enum plan_status)(pick % _PLAN_STATUS_MAX);
        const char *reason = pick & 0x40 ? NULL : pick & 0x80 ? "a \"reason\": x" : "timeout";
        struct buf out = BUF_INIT(PLAN_MAX_BYTES * 2, 0);
        struct plan *after = NULL, *want = NULL;
        struct plan_error e;

        CHECK(plan_set_status_text(text, size, t, w, st, reason, &out, &e) == 0);
        CHECK(plan_parse(out.data, out.len, &after, &e) == 0);
        CHECK(plan_parse(text, size, &want, &e) == 0);
        struct plan_workload *ww = &want->tenants[t].workloads[w];
        ww->status = st;
        free(ww->reason);
        ww->reason = reason ? strdup(reason) : NULL;
        CHECK(plan_equal(after, want));
        plan_free(after);
        plan_free(want);
        buf_done(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct plan *p = NULL, *back = NULL;
        struct plan_error e;
        const char *text = (const char *) data;
        int r = plan_parse(text, size, &p, &e);

        CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
        if (r < 0) {
                CHECK(e.message[0] != '\0');
                return 0;
        }
        struct buf a = BUF_INIT(PLAN_MAX_BYTES * 2, 0), b = BUF_INIT(PLAN_MAX_BYTES * 2, 0);
        CHECK(plan_format(p, &a) == 0);
        CHECK(plan_parse(a.data, a.len, &back, &e) == 0);
        CHECK(plan_equal(p, back));
        CHECK(plan_format(back, &b) == 0);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        check_set_status(text, size, p, size ? data[0] : 0);
        buf_done(&a);
        buf_done(&b);
        plan_free(back);
        plan_free(p);
        return 0;
}
