/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-cli-discover-pb: cli/discover-pb on arbitrary bytes as an API server's protobuf answer
 * (what anyone allowed to edit a workload wrote is in it). Properties: the answer is 0 or one of
 * the documented errors, with nothing returned on error; a decoded list is an object whose
 * "items" (when present) is an array of objects and whose "metadata.continue" (when present) is
 * a string; it prints as JSON that parses back; discover_scan() takes every item of it, for each
 * kind, with one of its documented answers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/discover-pb.h"
#include "cli/discover.h"
#include "cli/plan.h"
#include "common/buf.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
        do {                                                                               \
                if (!(cond)) {                                                             \
                        fprintf(stderr, "fuzz-cli-discover-pb: %s:%d: check failed: %s\n", \
                                __FILE__, __LINE__, #cond);                                \
                        abort();                                                           \
                }                                                                          \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 262144)
                return 0;
        for (int k = 0; k < _PLAN_KIND_MAX; k++) {
                struct json_doc *d = NULL;
                int r = discover_pb_list(data, size, (enum plan_kind) k, &d);
                CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
                if (r < 0) {
                        CHECK(d == NULL);
                        continue;
                }
                const struct json_value *root = json_doc_root(d), *items = json_get(root, "items");
                CHECK(json_type(root) == JSON_OBJECT);
                CHECK(!items || json_type(items) == JSON_ARRAY);
                const struct json_value *cont = json_get_path(root, "metadata.continue");
                CHECK(!cont || json_type(cont) == JSON_STRING);
                struct buf out = BUF_INIT(64u * 1024u * 1024u, 0);
                struct json_doc *back = NULL;
                CHECK(json_print(root, &out) == 0);
                const struct json_limits lim = {
                        .max_input = out.len + 1, .max_depth = 64, .max_nodes = out.len + 1};
                CHECK(json_parse(buf_cstr(&out), out.len, 0, &lim, &back) == 0);
                json_doc_free(back);
                buf_done(&out);
                struct discover_config c = {.cluster = "c"};
                JSON_FOREACH(item, items) {
                        CHECK(json_type(item) == JSON_OBJECT);
                        struct plan_workload w;
                        bool injected;
                        r = discover_scan(item, (enum plan_kind) k, "ns", &c, &w, &injected);
                        CHECK(r == 0 || r == 1 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                        if (r == 1)
                                plan_workload_done(&w);
                }
                json_doc_free(d);
        }
        return 0;
}
