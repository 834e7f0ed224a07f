/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-yaml: yaml_parse() (common/yaml, the kubeconfig reader) on arbitrary bytes, with tight
 * limits. Properties: only the documented errors come back; an accepted document has an object
 * root, prints as JSON that parses back and prints the same; and the same input parses the same
 * way in secure memory; with positions (yaml_parse_map), the same result, every value has a
 * position inside the input whose range holds its children's, and a refusal says why.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
        do {                                                                              \
                if (!(cond)) {                                                            \
                        fprintf(stderr, "fuzz-yaml: %s:%d: check failed: %s\n", __FILE__, \
                                __LINE__, #cond);                                         \
                        abort();                                                          \
                }                                                                         \
        } while (0)

/* Every value under v has a position within [lo, hi) of the input. */
static void check_positions(const struct yaml_map *m, const struct json_value *v, size_t lo,
                            size_t hi) {
        const struct yaml_node_info *i = yaml_map_find(m, v);
        CHECK(i != NULL);
        CHECK(i->start.offset <= i->end.offset);
        CHECK(i->start.offset >= lo && i->end.offset <= hi);
        CHECK(i->start.line >= 1 && i->start.column >= 1);
        JSON_FOREACH(c, v) {
                check_positions(m, c, i->start.offset, i->end.offset);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct json_limits lim = {.max_input = 64 * 1024, .max_depth = 16, .max_nodes = 2000};
        struct json_doc *d = NULL, *s = NULL, *back = NULL;
        int r = yaml_parse((const char *) data, size, 0, &lim, &d);
        int rs = yaml_parse((const char *) data, size, JSON_SECURE, &lim, &s);

        CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ELOOP || r == -EINVAL);
        CHECK(r == rs);
        {
                struct json_doc *pd = NULL;
                struct yaml_map *m = NULL;
                struct yaml_error e;
                int rp = yaml_parse_map((const char *) data, size, 0, &lim, &pd, &m, &e);
                CHECK(rp == r);
                if (rp == 0)
                        check_positions(m, json_doc_root(pd), 0, size);
                else
                        CHECK(e.message[0] != '\0');
                yaml_map_free(m);
                json_doc_free(pd);
        }
        if (r == 0) {
                struct buf a = BUF_INIT(1u << 22, 0), b = BUF_INIT(1u << 22, 0),
                           c = BUF_INIT(1u << 22, 0);
                CHECK(json_type(json_doc_root(d)) == JSON_OBJECT);
                CHECK(json_print(json_doc_root(d), &a) == 0);
                CHECK(json_print(json_doc_root(s), &c) == 0);
                CHECK(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
                CHECK(json_parse(a.data, a.len, 0, NULL, &back) == 0);
                CHECK(json_print(json_doc_root(back), &b) == 0);
                CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
                buf_done(&a);
                buf_done(&b);
                buf_done(&c);
        }
        json_doc_free(back);
        json_doc_free(d);
        json_doc_free(s);
        return 0;
}
