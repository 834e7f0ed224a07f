/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/yaml's positions (yaml_parse_map): each node's byte range, line, column,
 * key position and style; and the line, column and message of every kind of refusal. (The
 * scalar typing and the refusals themselves are tested with the kubeconfig reader, test-kube.) */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/yaml.h"
#include "tests/tap.h"

static const char TEXT[] = "# a comment\n"
                           "a: 1\n"
                           "b:\n"
                           "  c: 'x y'   # trailing\n"
                           "  d: [1, \"two\"]\n"
                           "  e: |\n"
                           "    block\n"
                           "list:\n"
                           "- k: v\n"
                           "  m: true\n";

static void expect_node(const struct yaml_map *m, const struct json_value *v, const char *what,
                        const char *text, unsigned line, unsigned col, unsigned key_col,
                        enum yaml_style style) {
        const struct yaml_node_info *i = yaml_map_find(m, v);
        if (!ok(i != NULL, "%s: has a position", what))
                return;
        is_int(i->start.line, line, "%s: line", what);
        is_int(i->start.column, col, "%s: column", what);
        is_int(i->key.column, key_col, "%s: key column", what);
        is_int(i->style, style, "%s: style", what);
        if (text) {
                size_t n = i->end.offset - i->start.offset;
                ok(n == strlen(text) && memcmp(TEXT + i->start.offset, text, n) == 0,
                   "%s: byte range is '%s' (got '%.*s')", what, text, (int) n,
                   TEXT + i->start.offset);
        }
}

static void test_positions(void) {
        struct json_doc *d = NULL;
        struct yaml_map *m = NULL;
        struct yaml_error e;
        int r = yaml_parse_map(TEXT, strlen(TEXT), 0, NULL, &d, &m, &e);
        if (!is_int(r, 0, "parses with positions")) {
                diag("%u:%u: %s", e.line, e.column, e.message);
                return;
        }
        const struct json_value *root = json_doc_root(d), *b = json_get(root, "b");
        expect_node(m, root, "root", NULL, 2, 1, 1, YAML_STYLE_BLOCK);
        expect_node(m, json_get(root, "a"), "a", "1", 2, 4, 1, YAML_STYLE_PLAIN);
        expect_node(m, b, "b", NULL, 4, 3, 1, YAML_STYLE_BLOCK);
        expect_node(m, json_get(b, "c"), "b.c", "'x y'", 4, 6, 3, YAML_STYLE_QUOTED);
        expect_node(m, json_get(b, "d"), "b.d", "[1, \"two\"]", 5, 6, 3, YAML_STYLE_FLOW);
        expect_node(m, json_array_at(json_get(b, "d"), 1), "b.d[1]", "\"two\"", 5, 10, 10,
                    YAML_STYLE_QUOTED);
        expect_node(m, json_get(b, "e"), "b.e", NULL, 6, 6, 3, YAML_STYLE_LITERAL);
        const struct json_value *item = json_array_at(json_get(root, "list"), 0);
        expect_node(m, item, "list[0]", NULL, 9, 3, 3, YAML_STYLE_BLOCK);
        expect_node(m, json_get(item, "m"), "list[0].m", "true", 10, 6, 3, YAML_STYLE_PLAIN);
        ok(yaml_map_find(m, NULL) == NULL, "no position for NULL");
        yaml_map_free(m);
        json_doc_free(d);

        /* Without a map: the same document, and yaml_parse is the same function. */
        r = yaml_parse_map(TEXT, strlen(TEXT), JSON_SECURE, NULL, &d, NULL, NULL);
        is_int(r, 0, "parses without positions, in secure memory");
        json_doc_free(d);
}

static void test_errors(void) {
        static const struct {
                const char *yaml;
                int rc;
                unsigned line, column;
                const char *message; /* a substring */
        } cases[] = {
                {"a: 1\nb: [1,\n", -EBADMSG, 3, 1, "while parsing a flow node"},
                {"a: 1\n  b: 2\n", -EBADMSG, 2, 4, "mapping values are not allowed"},
                {"a: 1\na: 2\n", -EBADMSG, 2, 1, "duplicate key 'a'"},
                {"a: &x 1\n", -EBADMSG, 1, 4, "anchors"},
                {"a: [1]\nb: *x\n", -EBADMSG, 2, 4, "alias"},
                {"a: !!binary aGk=\n", -EBADMSG, 1, 4, "unsupported tag"},
                {"- a\n", -EBADMSG, 1, 1, "not a mapping"},
                {"a: 1\n---\nb: 2\n", -EBADMSG, 2, 1, "more than one document"},
                {"a: b\0c\n", -EBADMSG, 1, 5, "NUL byte"},
                {"a: {b: {c: {d: 1}}}\n", -ELOOP, 1, 12, "nested deeper than 3"},
                {"[1]: 2\n", -EBADMSG, 1, 1, "a key must be a plain scalar"},
        };
        const struct json_limits lim = {.max_depth = 3};
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_doc *d = NULL;
                struct yaml_map *m = NULL;
                struct yaml_error e;
                size_t n = strlen(cases[i].yaml);
                if (strstr(cases[i].message, "NUL"))
                        n = 7;
                int r = yaml_parse_map(cases[i].yaml, n, 0, &lim, &d, &m, &e);
                is_int(r, cases[i].rc, "case %zu: refused", i);
                ok(d == NULL && m == NULL, "case %zu: nothing returned", i);
                ok(e.line == cases[i].line && e.column == cases[i].column &&
                           strstr(e.message, cases[i].message),
                   "case %zu: at %u:%u '%s' (got %u:%u '%s')", i, cases[i].line, cases[i].column,
                   cases[i].message, e.line, e.column, e.message);
        }
        struct yaml_error e;
        struct json_doc *d = NULL;
        const struct json_limits small = {.max_input = 4};
        is_int(yaml_parse_map("a: 12345\n", 9, 0, &small, &d, NULL, &e), -E2BIG,
               "over max_input is -E2BIG");
        ok(strstr(e.message, "more than 4 bytes") != NULL, "and says so (%s)", e.message);
}

int main(void) {
        test_positions();
        test_errors();
        return tap_done();
}
