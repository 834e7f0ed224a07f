/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/json: grammar, limits, getters, builders, printing, secure memory, arena
 * documents. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "tests/tap.h"

#if defined(CLOUDTASER_ASAN)
#include <sanitizer/allocator_interface.h>
#endif

int main(void);

static const unsigned modes[] = {0, JSON_SECURE};
#define MODE(f) ((f) &JSON_SECURE ? "secure" : "heap")

/* --- helpers ---------------------------------------------------------------------------------- */

static int parse_str(const char *s, unsigned flags, const struct json_limits *l,
                     struct json_doc **ret) {
        return json_parse(s, strlen(s), flags, l, ret);
}

/* Prints v compactly into a fresh non-secure buffer; returns a malloc'd copy (NULL on error). */
static char *print_dup(const struct json_value *v) {
        _cleanup_buf_ struct buf b = BUF_INIT(1u << 24, 0);
        if (json_print(v, &b) < 0)
                return NULL;
        return strdup(buf_cstr(&b));
}

/* A string of n copies of c followed by tail, malloc'd. */
static char *repeat(const char *head, char c, size_t n, const char *tail) {
        size_t hl = strlen(head), tl = strlen(tail);
        char *s = malloc(hl + n + tl + 1);
        if (!s)
                abort();
        memcpy(s, head, hl);
        memset(s + hl, c, n);
        memcpy(s + hl + n, tail, tl + 1);
        return s;
}

/* depth levels of nested arrays around a 1: "[[[1]]]". */
static char *nested(unsigned depth, char open, char close) {
        char *s = malloc(2 * depth + 2);
        if (!s)
                abort();
        memset(s, open, depth);
        s[depth] = '1';
        memset(s + depth + 1, close, depth);
        s[2 * depth + 1] = '\0';
        return s;
}

/* --- grammar ---------------------------------------------------------------------------------- */

struct parse_case {
        const char *name;
        const char *in;
        size_t len; /* 0: strlen(in) */
        int want;
};

static const struct parse_case parse_cases[] = {
        {"empty object", "{}", 0, 0},
        {"empty array", "[]", 0, 0},
        {"scalar string root", "\"x\"", 0, 0},
        {"scalar number root", "0", 0, 0},
        {"negative zero", "-0", 0, 0},
        {"exponent", "-1.5e+3", 0, 0},
        {"upper exponent", "2E-2", 0, 0},
        {"true", "true", 0, 0},
        {"false", "false", 0, 0},
        {"null", "null", 0, 0},
        {"surrounding whitespace", " \t\r\n{\"a\" : [ 1 , 2 ] }\n\t ", 0, 0},
        {"nested", "{\"a\":{\"b\":[{\"c\":null}]}}", 0, 0},
        {"escapes", "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", 0, 0},
        {"unicode escape", "\"\\u00e9\\u20AC\"", 0, 0},
        {"surrogate pair", "\"\\ud83d\\ude00\"", 0, 0},
        {"raw utf-8", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 0, 0},
        {"escaped backslash before u0000", "\"\\\\u0000\"", 0, 0},
        {"duplicate keys", "{\"a\":1,\"a\":2}", 0, 0},
        {"brackets inside strings", "{\"[\":\"]]]}}}\"}", 0, 0},
        {"empty input", "", 0, -EBADMSG},
        {"only whitespace", "  \n ", 0, -EBADMSG},
        {"unclosed object", "{", 0, -EBADMSG},
        {"stray close", "}", 0, -EBADMSG},
        {"mismatched brackets", "[}", 0, -EBADMSG},
        {"mismatched braces", "{]", 0, -EBADMSG},
        {"mismatched nested", "[{]}", 0, -EBADMSG},
        {"trailing comma array", "[1,]", 0, -EBADMSG},
        {"trailing comma object", "{\"a\":1,}", 0, -EBADMSG},
        {"missing value", "{\"a\"}", 0, -EBADMSG},
        {"missing colon", "{\"a\" 1}", 0, -EBADMSG},
        {"missing comma", "[1 2]", 0, -EBADMSG},
        {"non-string key", "{1:2}", 0, -EBADMSG},
        {"single quotes", "['a']", 0, -EBADMSG},
        {"leading zero", "01", 0, -EBADMSG},
        {"leading zero negative", "-01", 0, -EBADMSG},
        {"trailing dot", "1.", 0, -EBADMSG},
        {"leading dot", ".5", 0, -EBADMSG},
        {"minus dot", "-.5", 0, -EBADMSG},
        {"plus sign", "+1", 0, -EBADMSG},
        {"bare minus", "-", 0, -EBADMSG},
        {"empty exponent", "1e", 0, -EBADMSG},
        {"exponent sign only", "1e+", 0, -EBADMSG},
        {"hex number", "0x10", 0, -EBADMSG},
        {"NaN", "NaN", 0, -EBADMSG},
        {"Infinity", "-Infinity", 0, -EBADMSG},
        {"overflowing number", "1e999", 0, -EBADMSG},
        {"overflowing negative number", "[-1e999]", 0, -EBADMSG},
        {"truncated literal", "tru", 0, -EBADMSG},
        {"literal with suffix", "nullx", 0, -EBADMSG},
        {"capitalised literal", "True", 0, -EBADMSG},
        {"unterminated string", "\"abc", 0, -EBADMSG},
        {"unterminated escape", "\"abc\\", 0, -EBADMSG},
        {"bad escape", "\"\\x\"", 0, -EBADMSG},
        {"short unicode escape", "\"\\u12\"", 0, -EBADMSG},
        {"non-hex unicode escape", "\"\\u12g4\"", 0, -EBADMSG},
        {"lone high surrogate", "\"\\ud800\"", 0, -EBADMSG},
        {"lone low surrogate", "\"\\udc00\"", 0, -EBADMSG},
        {"high surrogate then non-surrogate", "\"\\ud800\\u0041\"", 0, -EBADMSG},
        {"escaped NUL", "\"\\u0000\"", 0, -EBADMSG},
        {"escaped NUL inside", "{\"k\":\"a\\u0000b\"}", 0, -EBADMSG},
        {"escaped NUL in key", "{\"\\u0000\":1}", 0, -EBADMSG},
        {"raw NUL in string", "\"a\0b\"", 5, -EBADMSG},
        {"raw NUL after value", "{}\0", 3, -EBADMSG},
        {"raw NUL before value", "\0{}", 3, -EBADMSG},
        {"raw newline in string", "\"a\nb\"", 0, -EBADMSG},
        {"raw tab in string", "\"a\tb\"", 0, -EBADMSG},
        {"raw control char in string", "\"a\x01\"", 0, -EBADMSG},
        {"control char as whitespace", "\x01{}", 0, -EBADMSG},
        {"form feed as whitespace", "\f{}", 0, -EBADMSG},
        {"vertical tab after value", "{}\v", 0, -EBADMSG},
        {"invalid utf-8 byte", "\"\xff\"", 0, -EBADMSG},
        {"truncated utf-8", "\"\xc3\"", 0, -EBADMSG},
        {"overlong utf-8", "\"\xc0\xaf\"", 0, -EBADMSG},
        {"overlong 3-byte utf-8", "\"\xe0\x80\xaf\"", 0, -EBADMSG},
        {"utf-8 encoded surrogate", "\"\xed\xa0\x80\"", 0, -EBADMSG},
        {"utf-8 beyond U+10FFFF", "\"\xf4\x90\x80\x80\"", 0, -EBADMSG},
        {"byte order mark", "\xef\xbb\xbf{}", 0, -EBADMSG},
        {"trailing garbage", "{} x", 0, -EBADMSG},
        {"two documents", "{}{}", 0, -EBADMSG},
        {"two scalars", "1 2", 0, -EBADMSG},
        {"trailing comma after root", "{},", 0, -EBADMSG},
};

static void test_grammar(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t i = 0; i < ELEMENTSOF(parse_cases); i++) {
                        const struct parse_case *c = &parse_cases[i];
                        struct json_doc *d = NULL;
                        size_t len = c->len ? c->len : strlen(c->in);
                        int r = json_parse(c->in, len, modes[m], NULL, &d);
                        is_int(r, c->want, "parse %s (%s)", c->name, MODE(modes[m]));
                        ok((r == 0) == (d != NULL), "parse %s sets ret only on success", c->name);
                        json_doc_free(d);
                }
}

/* The input need not be NUL-terminated: only n bytes are read. */
static void test_length_bounded(void) {
        char in[] = {'[', '1', ',', '2', ']', 'X', 'Y'};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        is_int(json_parse(in, 5, 0, NULL, &d), 0, "parses the first n bytes only");
        is_int(json_count(json_doc_root(d)), 2, "two elements");
        struct json_doc *d2 = NULL;
        is_int(json_parse(in, 6, 0, NULL, &d2), -EBADMSG, "one more byte is trailing garbage");
        is_int(json_parse(in, 4, 0, NULL, &d2), -EBADMSG, "one fewer byte is truncated");
        ok(!d2, "ret untouched on failure");
}

static void test_bad_arguments(void) {
        struct json_doc *d = NULL;
        struct json_limits deep = {.max_depth = JSON_MAX_DEPTH_LIMIT + 1};
        struct json_limits big = {.max_input = JSON_MAX_INPUT_LIMIT + 1};

        is_int(json_parse(NULL, 2, 0, NULL, &d), -EINVAL, "NULL input with a length");
        is_int(json_parse(NULL, 0, 0, NULL, &d), -EBADMSG, "NULL empty input is malformed");
        is_int(json_parse("{}", 2, 0, NULL, NULL), -EINVAL, "NULL ret");
        is_int(json_parse("{}", 2, 0x80, NULL, &d), -EINVAL, "unknown flag");
        is_int(json_parse("{}", 2, 0, &deep, &d), -EINVAL, "max_depth above the hard limit");
        is_int(json_parse("{}", 2, 0, &big, &d), -EINVAL, "max_input above the hard limit");
        is_int(json_doc_new(0x80, 0, &d), -EINVAL, "json_doc_new unknown flag");
        is_int(json_doc_new(0, 0, NULL), -EINVAL, "json_doc_new NULL ret");
        ok(!d, "no document produced");
        ok(json_doc_free(NULL) == NULL, "json_doc_free(NULL)");
        ok(json_doc_root(NULL) == NULL, "json_doc_root(NULL)");
}

/* --- limits ----------------------------------------------------------------------------------- */

static void test_depth_limit(void) {
        struct {
                unsigned limit; /* 0: default */
                unsigned depth;
                char open, close;
                int want;
        } cases[] = {
                {0, JSON_MAX_DEPTH_DEFAULT, '[', ']', 0},
                {0, JSON_MAX_DEPTH_DEFAULT + 1, '[', ']', -ELOOP},
                {3, 3, '[', ']', 0},
                {3, 4, '[', ']', -ELOOP},
                {1, 1, '[', ']', 0},
                {1, 2, '[', ']', -ELOOP},
                {JSON_MAX_DEPTH_LIMIT, JSON_MAX_DEPTH_LIMIT, '[', ']', 0},
                {JSON_MAX_DEPTH_LIMIT, JSON_MAX_DEPTH_LIMIT + 1, '[', ']', -ELOOP},
                /* deeper than max_depth and unclosed: the depth is reported first */
                {2, 3, '[', ' ', -ELOOP},
        };
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        struct json_limits l = {.max_depth = cases[i].limit};
                        _cleanup_free_ char *s =
                                nested(cases[i].depth, cases[i].open, cases[i].close);
                        struct json_doc *d = NULL;
                        is_int(parse_str(s, modes[m], &l, &d), cases[i].want,
                               "depth %u with max_depth %u (%s)", cases[i].depth, cases[i].limit,
                               MODE(modes[m]));
                        json_doc_free(d);
                }

        /* objects count like arrays, and brackets inside strings do not count */
        struct json_limits two = {.max_depth = 2};
        struct {
                const char *in;
                int want;
        } objs[] = {
                {"{\"a\":{\"b\":1}}", 0},      {"{\"a\":{\"b\":{}}}", -ELOOP},
                {"{\"a\":[\"[[[[{{{{\"]}", 0}, {"{\"a\":[\"\\\"[[[[\"]}", 0},
                {"[{\"x\":[]}]", -ELOOP},
        };
        for (size_t i = 0; i < ELEMENTSOF(objs); i++) {
                struct json_doc *d = NULL;
                is_int(parse_str(objs[i].in, 0, &two, &d), objs[i].want, "max_depth 2: %s",
                       objs[i].in);
                json_doc_free(d);
        }
}

static void test_input_limit(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                struct json_limits l = {.max_input = 100};
                /* "[" + 98 spaces + "]" = 100 bytes */
                _cleanup_free_ char *exact = repeat("[", ' ', 98, "]");
                _cleanup_free_ char *over = repeat("[", ' ', 99, "]");
                struct json_doc *d = NULL;
                is_int(parse_str(exact, modes[m], &l, &d), 0, "exactly max_input bytes (%s)",
                       MODE(modes[m]));
                d = json_doc_free(d);
                is_int(parse_str(over, modes[m], &l, &d), -E2BIG, "max_input + 1 bytes (%s)",
                       MODE(modes[m]));
        }
        /* the default */
        _cleanup_free_ char *exact = repeat("\"", 'a', JSON_MAX_INPUT_DEFAULT - 2, "\"");
        _cleanup_free_ char *over = repeat("\"", 'a', JSON_MAX_INPUT_DEFAULT - 1, "\"");
        struct json_doc *d = NULL;
        is_int(parse_str(exact, JSON_SECURE, NULL, &d), 0, "default max_input exactly");
        is_int(json_string_len(json_doc_root(d)), JSON_MAX_INPUT_DEFAULT - 2, "1 MiB string");
        d = json_doc_free(d);
        is_int(parse_str(over, 0, NULL, &d), -E2BIG, "default max_input + 1");
}

static void test_node_limit(void) {
        struct {
                const char *in;
                size_t nodes;
        } cases[] = {
                {"1", 1},
                {"[]", 1},
                {"[1,2,3]", 4},
                {"[[],[]]", 3},
                {"[ [ ] , { } ]", 3},
                {"{\"a\":[],\"b\":{}}", 3},
                {"{\"a\":{\"b\":{\"c\":[1,[2,3]]}}}", 8},
                {"[\"a,b,c\",\",\"]", 3},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_limits exact = {.max_nodes = cases[i].nodes};
                struct json_limits under = {.max_nodes = cases[i].nodes - 1};
                struct json_doc *d = NULL;
                is_int(parse_str(cases[i].in, 0, &exact, &d), 0, "%zu nodes allowed: %s",
                       cases[i].nodes, cases[i].in);
                d = json_doc_free(d);
                if (cases[i].nodes > 1)
                        is_int(parse_str(cases[i].in, JSON_SECURE, &under, &d), -E2BIG,
                               "%zu nodes over max_nodes %zu: %s", cases[i].nodes,
                               cases[i].nodes - 1, cases[i].in);
                json_doc_free(d);
        }
        /* the default: an array of JSON_MAX_NODES_DEFAULT - 1 zeros is exactly the limit */
        size_t k = JSON_MAX_NODES_DEFAULT - 1;
        char *s = malloc(2 * k + 2);
        if (!s)
                abort();
        s[0] = '[';
        for (size_t i = 0; i < k; i++) {
                s[1 + 2 * i] = '0';
                s[2 + 2 * i] = ',';
        }
        s[2 * k] = ']';
        s[2 * k + 1] = '\0';
        struct json_doc *d = NULL;
        is_int(parse_str(s, JSON_SECURE, NULL, &d), 0, "default max_nodes exactly");
        is_int(json_count(json_doc_root(d)), k, "all elements present");
        d = json_doc_free(d);
        s[2 * k] = ',';
        _cleanup_free_ char *over = malloc(2 * k + 4);
        if (!over)
                abort();
        memcpy(over, s, 2 * k + 1);
        memcpy(over + 2 * k + 1, "0]", 3);
        is_int(parse_str(over, 0, NULL, &d), -E2BIG, "default max_nodes + 1");
        free(s);
}

/* The memory bound of a parse is computed from the input; shapes that need the most memory per
 * input byte must still parse in both modes. */
static void test_parse_memory(void) {
        _cleanup_free_ char *long_number = repeat("[1", '0', 4000, "e-3999]");
        char *shapes[5] = {NULL};
        size_t k = 0;

        shapes[k++] = TAKE_PTR(long_number);
        /* ["","",...], [{},{},...], {"":0,"":0,...}, [-0.5e1,...] */
        static const char *const units[] = {"\"\"", "{}", "\"\":0", "-0.5e1"};
        for (size_t u = 0; u < ELEMENTSOF(units); u++) {
                size_t ul = strlen(units[u]), count = 3000;
                char *s = malloc(count * (ul + 1) + 3);
                if (!s)
                        abort();
                bool obj = u == 2;
                size_t p = 0;
                s[p++] = obj ? '{' : '[';
                for (size_t i = 0; i < count; i++) {
                        if (i > 0)
                                s[p++] = ',';
                        memcpy(s + p, units[u], ul);
                        p += ul;
                }
                s[p++] = obj ? '}' : ']';
                s[p] = '\0';
                shapes[k++] = s;
        }
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t i = 0; i < k; i++) {
                        _cleanup_json_doc_ struct json_doc *d = NULL;
                        is_int(parse_str(shapes[i], modes[m], NULL, &d), 0,
                               "dense shape %zu parses within its bound (%s)", i, MODE(modes[m]));
                }
        for (size_t i = 0; i < k; i++)
                free(shapes[i]);
}

/* --- reading ---------------------------------------------------------------------------------- */

static const char getter_doc[] =
        "{\"s\":\"str\",\"empty\":\"\",\"i\":42,\"neg\":-7,\"f\":1.5,\"e\":1e3,"
        "\"maxsafe\":9007199254740991,\"minsafe\":-9007199254740991,\"p53\":9007199254740992,"
        "\"m53\":-9007199254740992,\"huge\":1e300,\"t\":true,\"fa\":false,\"n\":null,"
        "\"o\":{\"x\":1,\"deeper\":{\"y\":\"z\"}},\"a\":[1,\"two\",null],\"dup\":1,\"dup\":2,"
        "\"a.b\":\"dotted\",\"\":\"empty key\",\"esc\":\"\\u00e9\\n\"}";

enum getter { G_STRING, G_INT64, G_BOOL, G_OBJECT, G_ARRAY };

struct getter_case {
        enum getter g;
        const char *key;
        int want;
        int64_t ival; /* G_INT64, G_BOOL */
        const char *sval;
};

static const struct getter_case getter_cases[] = {
        {G_STRING, "s", 0, 0, "str"},
        {G_STRING, "empty", 0, 0, ""},
        {G_STRING, "esc", 0, 0, "\xc3\xa9\n"},
        {G_STRING, "", 0, 0, "empty key"},
        {G_STRING, "a.b", 0, 0, "dotted"},
        {G_STRING, "missing", -ENOENT, 0, NULL},
        {G_STRING, "n", -ENOENT, 0, NULL},
        {G_STRING, "i", -EBADMSG, 0, NULL},
        {G_STRING, "t", -EBADMSG, 0, NULL},
        {G_STRING, "o", -EBADMSG, 0, NULL},
        {G_STRING, "S", -ENOENT, 0, NULL},
        {G_INT64, "i", 0, 42, NULL},
        {G_INT64, "neg", 0, -7, NULL},
        {G_INT64, "e", 0, 1000, NULL},
        {G_INT64, "maxsafe", 0, 9007199254740991LL, NULL},
        {G_INT64, "minsafe", 0, -9007199254740991LL, NULL},
        {G_INT64, "p53", -EBADMSG, 0, NULL},
        {G_INT64, "m53", -EBADMSG, 0, NULL},
        {G_INT64, "huge", -EBADMSG, 0, NULL},
        {G_INT64, "f", -EBADMSG, 0, NULL},
        {G_INT64, "s", -EBADMSG, 0, NULL},
        {G_INT64, "n", -ENOENT, 0, NULL},
        {G_INT64, "missing", -ENOENT, 0, NULL},
        {G_INT64, "dup", 0, 1, NULL},
        {G_BOOL, "t", 0, 1, NULL},
        {G_BOOL, "fa", 0, 0, NULL},
        {G_BOOL, "i", -EBADMSG, 0, NULL},
        {G_BOOL, "s", -EBADMSG, 0, NULL},
        {G_BOOL, "n", -ENOENT, 0, NULL},
        {G_BOOL, "missing", -ENOENT, 0, NULL},
        {G_OBJECT, "o", 0, 0, NULL},
        {G_OBJECT, "a", -EBADMSG, 0, NULL},
        {G_OBJECT, "s", -EBADMSG, 0, NULL},
        {G_OBJECT, "n", -ENOENT, 0, NULL},
        {G_OBJECT, "missing", -ENOENT, 0, NULL},
        {G_ARRAY, "a", 0, 0, NULL},
        {G_ARRAY, "o", -EBADMSG, 0, NULL},
        {G_ARRAY, "n", -ENOENT, 0, NULL},
        {G_ARRAY, "missing", -ENOENT, 0, NULL},
};

static void test_getters(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                if (!ok(parse_str(getter_doc, modes[m], NULL, &d) == 0, "getter document (%s)",
                        MODE(modes[m])))
                        return;
                const struct json_value *root = json_doc_root(d);
                for (size_t i = 0; i < ELEMENTSOF(getter_cases); i++) {
                        const struct getter_case *c = &getter_cases[i];
                        const char *s = "untouched";
                        int64_t x = -12345;
                        bool b = true;
                        const struct json_value *v = (const void *) &b;
                        int r = -1;
                        switch (c->g) {
                        case G_STRING:
                                r = json_get_string(root, c->key, &s);
                                break;
                        case G_INT64:
                                r = json_get_int64(root, c->key, &x);
                                break;
                        case G_BOOL:
                                b = !c->ival;
                                r = json_get_bool(root, c->key, &b);
                                break;
                        case G_OBJECT:
                                r = json_get_object(root, c->key, &v);
                                break;
                        case G_ARRAY:
                                r = json_get_array(root, c->key, &v);
                                break;
                        }
                        is_int(r, c->want, "getter %d on '%s' (%s)", c->g, c->key, MODE(modes[m]));
                        switch (c->g) {
                        case G_STRING:
                                is_str(s, r == 0 ? c->sval : "untouched", "  string value");
                                break;
                        case G_INT64:
                                ok(x == (r == 0 ? c->ival : -12345), "  int64 value %lld",
                                   (long long) x);
                                break;
                        case G_BOOL:
                                ok(b == (r == 0 ? (bool) c->ival : !c->ival), "  bool value");
                                break;
                        case G_OBJECT:
                        case G_ARRAY:
                                ok(r == 0 ? json_type(v) ==
                                                    (c->g == G_OBJECT ? JSON_OBJECT : JSON_ARRAY)
                                          : v == (const void *) &b,
                                   "  container value");
                                break;
                        }
                }

                /* value-level getters */
                const struct json_value *n = json_get(root, "n"), *f = json_get(root, "f");
                double x = 0;
                const char *s = NULL;
                int64_t i = 0;
                bool b;
                ok(n && json_type(n) == JSON_NULL, "json_get returns a null member");
                is_int(json_string(n, &s), -EBADMSG, "json_string on null");
                is_int(json_int64(n, &i), -EBADMSG, "json_int64 on null");
                is_int(json_bool(n, &b), -EBADMSG, "json_bool on null");
                is_int(json_double(n, &x), -EBADMSG, "json_double on null");
                is_int(json_string(NULL, &s), -ENOENT, "json_string on NULL");
                is_int(json_int64(NULL, &i), -ENOENT, "json_int64 on NULL");
                is_int(json_double(f, &x), 0, "json_double");
                ok(x == 1.5, "json_double value");
                is_int(json_double(json_get(root, "i"), &x), 0, "json_double on an integer");
                ok(x == 42.0, "json_double integer value");
                is_int(json_get_string(NULL, "s", &s), -ENOENT, "typed getter on NULL object");
                is_int(json_get_string(json_get(root, "a"), "s", &s), -ENOENT,
                       "typed getter on an array");
                is_int(json_get_string(root, NULL, &s), -EINVAL, "typed getter NULL key");
                ok(json_get(root, NULL) == NULL, "json_get NULL key");
                ok(json_get(json_get(root, "s"), "s") == NULL, "json_get on a string");
                is_int(json_string_len(json_get(root, "esc")), 3, "json_string_len");
                is_int(json_string_len(json_get(root, "i")), 0, "json_string_len non-string");
                is_int(json_string_len(NULL), 0, "json_string_len NULL");

                /* types */
                struct {
                        const char *key;
                        enum json_type t;
                        const char *name;
                } types[] = {
                        {"n", JSON_NULL, "null"},     {"fa", JSON_FALSE, "false"},
                        {"t", JSON_TRUE, "true"},     {"i", JSON_NUMBER, "number"},
                        {"s", JSON_STRING, "string"}, {"a", JSON_ARRAY, "array"},
                        {"o", JSON_OBJECT, "object"}, {"missing", JSON_INVALID, "invalid"},
                };
                for (size_t k = 0; k < ELEMENTSOF(types); k++) {
                        is_int(json_type(json_get(root, types[k].key)), types[k].t, "type of %s",
                               types[k].key);
                        is_str(json_type_to_string(types[k].t), types[k].name, "name of type %d",
                               types[k].t);
                }
                is_str(json_type_to_string((enum json_type) 99), "invalid", "unknown type name");
        }
}

/* Keys that are prefixes of each other: a member matches only its whole key. */
static void test_key_prefixes(void) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const char *v = NULL;
        if (!ok(parse_str("{\"abc\":1,\"a\":2,\"ab\":\"x\",\"\":3}", 0, NULL, &d) == 0,
                "prefix keys parse"))
                return;
        const struct json_value *root = json_doc_root(d);
        ok(json_get_string(root, "ab", &v) == 0 && strcmp(v, "x") == 0,
           "\"ab\" is not \"abc\" or \"a\"");
        int64_t i = 0;
        ok(json_get_int64(root, "a", &i) == 0 && i == 2, "\"a\" is not \"abc\"");
        ok(json_get_int64(root, "", &i) == 0 && i == 3, "the empty key is its own");
        ok(json_get(root, "abcd") == NULL && json_get(root, "b") == NULL,
           "longer and other keys: none");
        ok(json_get_path(root, "ab.c") == NULL && json_get_path(root, "a") != NULL,
           "paths use whole segments");
}

static void test_get_path(void) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        if (!ok(parse_str(getter_doc, 0, NULL, &d) == 0, "path document"))
                return;
        const struct json_value *root = json_doc_root(d);
        const char *s = NULL;
        int64_t x = 0;

        ok(json_get_path(root, "o.deeper") == json_get(json_get(root, "o"), "deeper"),
           "o.deeper is the nested object");
        is_int(json_get_string(json_get_path(root, "o.deeper"), "y", &s), 0, "o.deeper.y");
        is_str(s, "z", "o.deeper.y value");
        is_int(json_int64(json_get_path(root, "o.x"), &x), 0, "o.x");
        is_int(x, 1, "o.x value");
        ok(json_get_path(root, "s") == json_get(root, "s"), "single segment");
        ok(json_get_path(root, "o.missing") == NULL, "missing last segment");
        ok(json_get_path(root, "missing.x") == NULL, "missing first segment");
        ok(json_get_path(root, "s.x") == NULL, "through a string");
        ok(json_get_path(root, "a.0") == NULL, "through an array");
        ok(json_get_path(root, "a.b") == NULL, "dotted key is not reachable by path");
        ok(json_get_path(root, "o.") == NULL, "trailing dot (empty key in o)");
        ok(json_get_path(root, "") == json_get(root, ""), "empty path is the empty key");
        ok(json_get_path(root, NULL) == NULL, "NULL path");
        ok(json_get_path(NULL, "o") == NULL, "NULL value");

        /* a real Vault KV v2 read response */
        static const char kv2[] =
                "{\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
                "\"data\":{\"data\":{\"foo\":\"bar\"},\"metadata\":{\"created_time\":"
                "\"2018-03-22T02:24:06.945319214Z\",\"custom_metadata\":{\"owner\":\"jdoe\","
                "\"mission_critical\":\"false\"},\"deletion_time\":\"\",\"destroyed\":false,"
                "\"version\":2}},\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
        _cleanup_json_doc_ struct json_doc *v = NULL;
        bool b = true;
        is_int(parse_str(kv2, JSON_SECURE, NULL, &v), 0, "kv2 read response");
        is_int(json_get_string(json_get_path(json_doc_root(v), "data.data"), "foo", &s), 0,
               "data.data.foo");
        is_str(s, "bar", "data.data.foo value");
        is_int(json_get_int64(json_get_path(json_doc_root(v), "data.metadata"), "version", &x), 0,
               "data.metadata.version");
        is_int(x, 2, "version value");
        is_int(json_get_bool(json_get_path(json_doc_root(v), "data.metadata"), "destroyed", &b), 0,
               "destroyed");
        ok(!b, "destroyed is false");
        is_int(json_get_object(json_doc_root(v), "auth", NULL), -ENOENT, "auth is null");
}

static void test_iteration(void) {
        static const char in[] = "{\"z\":1,\"a\":2,\"m\":3,\"a\":4,\"arr\":[10,20,30]}";
        static const char *const keys[] = {"z", "a", "m", "a", "arr"};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        if (!ok(parse_str(in, 0, NULL, &d) == 0, "iteration document"))
                return;
        const struct json_value *root = json_doc_root(d);
        size_t i = 0;
        int64_t x = 0;

        is_int(json_count(root), 5, "five members");
        JSON_FOREACH(c, root) {
                ok(i < ELEMENTSOF(keys), "member %zu exists", i);
                if (i < ELEMENTSOF(keys))
                        is_str(json_key(c), keys[i], "member %zu in document order", i);
                i++;
        }
        is_int(i, 5, "iterated five members");
        is_int(json_get_int64(root, "a", &x), 0, "duplicate key a");
        is_int(x, 2, "the first duplicate wins");

        const struct json_value *arr = json_get(root, "arr");
        is_int(json_count(arr), 3, "array count");
        i = 0;
        JSON_FOREACH(c, arr) {
                ok(json_key(c) == NULL, "array element has no key");
                is_int(json_int64(c, &x), 0, "element %zu", i);
                is_int(x, 10 * (int64_t) (i + 1), "element %zu value", i);
                ok(json_array_at(arr, i) == c, "json_array_at(%zu)", i);
                i++;
        }
        ok(json_array_at(arr, 3) == NULL, "json_array_at past the end");
        ok(json_array_at(arr, SIZE_MAX) == NULL, "json_array_at(SIZE_MAX)");
        ok(json_array_at(root, 0) == NULL, "json_array_at on an object");
        is_int(json_count(json_get(root, "z")), 0, "count of a scalar");
        ok(json_first_child(json_get(root, "z")) == NULL, "no children of a scalar");
        ok(json_first_child(NULL) == NULL && json_next(NULL) == NULL && json_key(NULL) == NULL,
           "NULL-safe iteration");
        ok(json_key(root) == NULL, "root has no key");
}

/* --- building and printing -------------------------------------------------------------------- */

static void test_build_roundtrip(void) {
        static const char want[] =
                "{\"s\":\"v\\\"q\\\\\\n\\u0001\xc3\xa9\",\"part\":\"abc\",\"i\":-42,"
                "\"max\":9007199254740991,\"t\":true,\"f\":false,\"n\":null,"
                "\"o\":{\"inner\":[1,\"x\",null,{},[]]},\"empty\":\"\"}";

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                struct json_value *o = NULL, *arr = NULL, *sub = NULL;
                if (!ok(json_doc_new(modes[m], 0, &d) == 0, "json_doc_new (%s)", MODE(modes[m])))
                        return;
                struct json_value *root = json_doc_root(d);
                ok(json_type(root) == JSON_OBJECT && json_count(root) == 0, "root is {}");
                is_int(json_add_string(d, root, "s", "v\"q\\\n\x01\xc3\xa9"), 0, "add_string");
                is_int(json_add_stringn(d, root, "part", "abcdef", 3), 0, "add_stringn");
                is_int(json_add_int64(d, root, "i", -42), 0, "add_int64");
                is_int(json_add_int64(d, root, "max", 9007199254740991LL), 0, "add max safe");
                is_int(json_add_bool(d, root, "t", true), 0, "add_bool true");
                is_int(json_add_bool(d, root, "f", false), 0, "add_bool false");
                is_int(json_add_null(d, root, "n"), 0, "add_null");
                is_int(json_add_object(d, root, "o", &o), 0, "add_object");
                is_int(json_add_array(d, o, "inner", &arr), 0, "add_array");
                is_int(json_add_int64(d, arr, NULL, 1), 0, "append int");
                is_int(json_add_string(d, arr, NULL, "x"), 0, "append string");
                is_int(json_add_null(d, arr, NULL), 0, "append null");
                is_int(json_add_object(d, arr, NULL, &sub), 0, "append object");
                is_int(json_add_array(d, arr, NULL, NULL), 0, "append array, ret NULL");
                is_int(json_add_stringn(d, root, "empty", NULL, 0), 0, "add_stringn empty");
                ok(json_type(sub) == JSON_OBJECT, "object returned");

                _cleanup_free_ char *p1 = print_dup(root);
                is_str(p1, want, "printed text (%s)", MODE(modes[m]));

                _cleanup_json_doc_ struct json_doc *d2 = NULL;
                is_int(parse_str(p1 ? p1 : "", modes[m], NULL, &d2), 0, "printed text parses");
                const char *s = NULL;
                int64_t x = 0;
                bool b = false;
                const struct json_value *r2 = json_doc_root(d2);
                is_int(json_get_string(r2, "s", &s), 0, "round trip string");
                is_str(s, "v\"q\\\n\x01\xc3\xa9", "round trip string value");
                is_int(json_get_string(r2, "part", &s), 0, "round trip stringn");
                is_str(s, "abc", "round trip stringn value");
                is_int(json_get_int64(r2, "i", &x), 0, "round trip int");
                is_int(x, -42, "round trip int value");
                is_int(json_get_int64(r2, "max", &x), 0, "round trip max");
                ok(x == 9007199254740991LL, "round trip max value");
                is_int(json_get_bool(r2, "t", &b), 0, "round trip bool");
                ok(b, "round trip bool value");
                ok(json_type(json_get(r2, "n")) == JSON_NULL, "round trip null");
                is_int(json_count(json_get_path(r2, "o.inner")), 5, "round trip array");
                _cleanup_free_ char *p2 = print_dup(r2);
                is_str(p2, p1, "print(parse(print)) is the same text");

                /* a copy of a value from another document, into an object and an array */
                is_int(json_add_copy(d, root, "copy", json_get(r2, "o")), 0, "add_copy member");
                is_int(json_add_copy(d, arr, NULL, json_get(r2, "s")), 0, "add_copy element");
                is_int(json_add_copy(d, root, "self", root), 0, "add_copy of the root itself");
                _cleanup_free_ char *c1 = print_dup(json_get(root, "copy"));
                is_str(c1, "{\"inner\":[1,\"x\",null,{},[]]}", "copied object");
                const struct json_value *last = json_array_at(arr, 5);
                ok(last && json_key(last) == NULL, "copied element has no key");
                is_str(json_get(root, "self") ? json_key(json_get(root, "self")) : NULL, "self",
                       "copied member has its new key");
                is_int(json_count(json_get(root, "self")), 10, "self copy holds 10 members");
                json_doc_free(TAKE_PTR(d2));
                _cleanup_free_ char *c2 = print_dup(json_get(root, "copy"));
                is_str(c2, c1, "copy outlives its source document");
        }
}

static void test_build_errors(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_json_doc_ struct json_doc *d = NULL, *other = NULL;
                struct json_value *arr = NULL;
                if (!ok(json_doc_new(modes[m], 0, &d) == 0 &&
                                json_doc_new(modes[m], 0, &other) == 0,
                        "documents (%s)", MODE(modes[m])))
                        return;
                struct json_value *root = json_doc_root(d);
                is_int(json_add_array(d, root, "arr", &arr), 0, "array");
                is_int(json_add_null(d, arr, "key"), -EINVAL, "key given for an array");
                is_int(json_add_null(d, root, NULL), -EINVAL, "key missing for an object");
                is_int(json_add_int64(d, arr, NULL, 1), 0, "element");
                struct json_value *scalar = (struct json_value *) json_array_at(arr, 0);
                is_int(json_add_null(d, scalar, NULL), -EINVAL, "parent is a scalar");
                is_int(json_add_null(other, root, "x"), -EINVAL, "parent from another document");
                is_int(json_add_null(NULL, root, "x"), -EINVAL, "NULL document");
                is_int(json_add_null(d, NULL, "x"), -EINVAL, "NULL parent");
                is_int(json_add_string(d, root, "x", NULL), -EINVAL, "NULL string");
                is_int(json_add_stringn(d, root, "x", NULL, 2), -EINVAL, "NULL stringn");
                is_int(json_add_stringn(d, root, "x", "a\0b", 3), -EINVAL, "NUL in stringn");
                is_int(json_add_string(d, root, "x", "\xff"), -EINVAL, "invalid UTF-8 value");
                is_int(json_add_string(d, root, "\xc0\xaf", "x"), -EINVAL, "invalid UTF-8 key");
                is_int(json_add_int64(d, root, "x", 9007199254740992LL), -ERANGE, "2^53");
                is_int(json_add_int64(d, root, "x", -9007199254740992LL), -ERANGE, "-2^53");
                is_int(json_add_int64(d, root, "x", INT64_MAX), -ERANGE, "INT64_MAX");
                is_int(json_add_copy(d, root, "x", NULL), -EINVAL, "copy of NULL");
                is_int(json_count(root), 1, "failed additions left nothing behind");
                _cleanup_free_ char *p = print_dup(root);
                is_str(p, "{\"arr\":[1]}", "document unchanged by failures");
        }
}

static void test_build_depth(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                if (!ok(json_doc_new(modes[m], 1u << 20, &d) == 0, "deep document (%s)",
                        MODE(modes[m])))
                        return;
                struct json_value *v = json_doc_root(d);
                unsigned nest = 1;
                int r = 0;
                while (r == 0) {
                        struct json_value *child = NULL;
                        r = json_add_array(d, v, json_type(v) == JSON_OBJECT ? "k" : NULL, &child);
                        if (r == 0) {
                                v = child;
                                nest++;
                        }
                }
                is_int(r, -ELOOP, "nesting past JSON_MAX_DEPTH_LIMIT");
                is_int(nest, JSON_MAX_DEPTH_LIMIT, "exactly JSON_MAX_DEPTH_LIMIT levels built");
                is_int(json_add_int64(d, v, NULL, 7), 0, "a scalar still fits at the bottom");
                is_int(json_add_object(d, v, NULL, NULL), -ELOOP, "an object does not");
                is_int(json_add_copy(d, v, NULL, json_array_at(v, 0)), 0, "copy of a scalar");

                /* the whole thing prints and parses back with the hard depth limit */
                _cleanup_free_ char *p = print_dup(json_doc_root(d));
                struct json_limits l = {.max_depth = JSON_MAX_DEPTH_LIMIT};
                _cleanup_json_doc_ struct json_doc *back = NULL;
                is_int(parse_str(p ? p : "", modes[m], &l, &back), 0, "deep document parses");

                /* copying a 2-deep value below the root would exceed the limit */
                _cleanup_json_doc_ struct json_doc *d2 = NULL;
                is_int(json_doc_new(modes[m], 1u << 20, &d2), 0, "second document");
                is_int(json_add_copy(d2, json_doc_root(d2), "k", json_doc_root(back)), -ELOOP,
                       "copy of a %u-deep value below a root", JSON_MAX_DEPTH_LIMIT);
                is_int(json_add_copy(d2, json_doc_root(d2), "k",
                                     json_get(json_doc_root(back), "k")),
                       0, "copy of a %u-deep value fits", JSON_MAX_DEPTH_LIMIT - 1);
        }
}

static void test_memory_bound(void) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                struct json_doc *tiny = NULL;
                char value[101];
                memset(value, 'v', 100);
                value[100] = '\0';

                is_int(json_doc_new(modes[m], 16, &tiny), -E2BIG,
                       "16 bytes cannot hold a root (%s)", MODE(modes[m]));
                ok(!tiny, "no document");
                if (!ok(json_doc_new(modes[m], 8192, &d) == 0, "8 KiB document (%s)",
                        MODE(modes[m])))
                        return;
                struct json_value *root = json_doc_root(d);
                int r = 0;
                size_t added = 0;
                while (r == 0 && added < 1000) {
                        r = json_add_string(d, root, "key", value);
                        if (r == 0)
                                added++;
                }
                is_int(r, -E2BIG, "filling the document ends in -E2BIG (%s)", MODE(modes[m]));
                ok(added >= 20 && added < 8192 / 100, "%zu strings of 100 bytes fit in 8 KiB",
                   added);
                is_int(json_count(root), added, "the failed addition left nothing behind");
                is_int(json_add_string(d, root, "k", ""), -E2BIG, "still full");

                /* the document is intact: print and parse back */
                _cleanup_buf_ struct buf b = BUF_INIT(1u << 20, BUF_SECURE);
                is_int(json_print(root, &b), 0, "full document prints");
                _cleanup_json_doc_ struct json_doc *back = NULL;
                is_int(json_parse(b.data, b.len, modes[m], NULL, &back), 0, "and parses");
                is_int(json_count(json_doc_root(back)), added, "with every member");

                /* a bounded copy fails cleanly too */
                _cleanup_json_doc_ struct json_doc *small = NULL;
                is_int(json_doc_new(modes[m], 2048, &small), 0, "2 KiB document");
                is_int(json_add_copy(small, json_doc_root(small), "c", root), -E2BIG,
                       "copy larger than the bound");
                is_int(json_count(json_doc_root(small)), 0, "nothing added");
        }
}

struct number_case {
        const char *in;
        const char *out;
};

static const struct number_case number_cases[] = {
        {"0", "0"},
        {"-0", "0"},
        {"1.0", "1"},
        {"1e3", "1000"},
        {"-2.50", "-2.5"},
        {"0.1", "0.1"},
        {"1.5e-7", "1.5e-07"},
        {"123456789012", "123456789012"},
        {"9007199254740993", "9007199254740992"},
        {"1e300", "1e+300"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"3.141592653589793", "3.141592653589793"},
        {"1e-400", "0"},
};

static void test_print_numbers(void) {
        for (size_t i = 0; i < ELEMENTSOF(number_cases); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                is_int(parse_str(number_cases[i].in, 0, NULL, &d), 0, "parse %s",
                       number_cases[i].in);
                _cleanup_free_ char *p = print_dup(json_doc_root(d));
                is_str(p, number_cases[i].out, "print %s", number_cases[i].in);
        }
}

static void test_print_bounds(void) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        is_int(parse_str(" { \"a\" : [ 1, 2 ] } ", JSON_SECURE, NULL, &d), 0, "small document");
        const struct json_value *root = json_doc_root(d);
        static const char compact[] = "{\"a\":[1,2]}";
        size_t n = strlen(compact);

        _cleanup_buf_ struct buf exact = BUF_INIT(n, BUF_SECURE);
        is_int(json_print(root, &exact), 0, "fits exactly");
        is_str(buf_cstr(&exact), compact, "compact text");

        _cleanup_buf_ struct buf small = BUF_INIT(n + 3, 0);
        is_int(buf_append_str(&small, "xyz"), 0, "prefix");
        is_int(json_print(root, &small), 0, "appends after existing content");
        is_str(buf_cstr(&small), "xyz{\"a\":[1,2]}", "appended");
        is_int(json_print(root, &small), -E2BIG, "no room left");
        is_int(small.len, n + 3, "length unchanged");
        is_str(buf_cstr(&small), "xyz{\"a\":[1,2]}", "content unchanged");
        is_int(json_print(json_get(root, "a"), &exact), -E2BIG, "full buffer");

        _cleanup_buf_ struct buf sub = BUF_INIT(64, 0);
        is_int(json_print(json_array_at(json_get(root, "a"), 1), &sub), 0, "print a sub-value");
        is_str(buf_cstr(&sub), "2", "sub-value text");
        is_int(json_print(NULL, &sub), -EINVAL, "print NULL");
        is_int(json_print(root, NULL), -EINVAL, "print into NULL");
}

static void test_quoting(void) {
        static const char *const ctl[32] = {
                NULL,      "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006",
                "\\u0007", "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",
                "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
                "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b",
                "\\u001c", "\\u001d", "\\u001e", "\\u001f",
        };
        for (unsigned c = 1; c < 32; c++) {
                _cleanup_buf_ struct buf b = BUF_INIT(64, 0);
                char in[4] = {'a', (char) c, 'z', 0};
                char want[16];
                (void) snprintf(want, sizeof(want), "\"a%sz\"", ctl[c]);
                is_int(json_append_quoted(&b, in), 0, "quote control 0x%02x", c);
                is_str(buf_cstr(&b), want, "quoted control 0x%02x", c);

                /* and it parses back to the same byte */
                _cleanup_json_doc_ struct json_doc *d = NULL;
                const char *s = NULL;
                is_int(json_parse(b.data, b.len, 0, NULL, &d), 0, "quoted 0x%02x parses", c);
                is_int(json_string(json_doc_root(d), &s), 0, "as a string");
                is_str(s, in, "to the same bytes");
        }
        struct {
                const char *in, *out;
        } cases[] = {
                {"", "\"\""},
                {"\"", "\"\\\"\""},
                {"\\", "\"\\\\\""},
                {"/", "\"/\""},
                {"\x7f", "\"\x7f\""},
                {"\xc3\xa9\xf0\x9f\x98\x80", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
                {"say \"hi\"\n", "\"say \\\"hi\\\"\\n\""},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_buf_ struct buf b = BUF_INIT(64, 0);
                is_int(json_append_quoted(&b, cases[i].in), 0, "quote case %zu", i);
                is_str(buf_cstr(&b), cases[i].out, "quoted case %zu", i);
        }
        _cleanup_buf_ struct buf b = BUF_INIT(4, 0);
        is_int(json_append_quoted(&b, "ab"), 0, "\"ab\" fits in 4");
        is_int(json_append_quoted(&b, ""), -E2BIG, "\"\" does not fit after it");
        is_str(buf_cstr(&b), "\"ab\"", "unchanged");
        _cleanup_buf_ struct buf c = BUF_INIT(3, 0);
        is_int(json_append_quoted(&c, "\n"), -E2BIG, "escape grows past the maximum");
        is_int(c.len, 0, "nothing appended");
        is_int(json_append_quoted(&c, NULL), -EINVAL, "NULL string");
        is_int(json_append_quoted(NULL, "x"), -EINVAL, "NULL buffer");

        /* json_append_string(): what json_print() writes for the same string value. */
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_buf_ struct buf q = BUF_INIT(64, 0), p = BUF_INIT(64, 0);
                _cleanup_json_doc_ struct json_doc *d = NULL;
                struct json_value *arr;
                ok(json_append_string(&q, cases[i].in) == 0 && json_doc_new(0, 0, &d) == 0 &&
                           json_add_array(d, json_doc_root(d), "a", &arr) == 0 &&
                           json_add_string(d, arr, NULL, cases[i].in) == 0 &&
                           json_print(arr, &p) == 0 && p.len == q.len + 2 &&
                           memcmp(p.data + 1, q.data, q.len) == 0,
                   "append_string case %zu is what json_print writes", i);
        }
        _cleanup_buf_ struct buf u = BUF_INIT(64, 0);
        (void) buf_append_str(&u, "x");
        is_int(json_append_string(&u, "a\xc3"), -EINVAL, "append_string: a cut UTF-8 sequence");
        is_int(json_append_string(&u, "\xff"), -EINVAL, "append_string: a byte never in UTF-8");
        is_str(buf_cstr(&u), "x", "and the buffer is unchanged");
        _cleanup_buf_ struct buf t = BUF_INIT(3, 0);
        is_int(json_append_string(&t, "ab"), -E2BIG, "append_string: over the maximum");
        is_int(t.len, 0, "nothing appended");
        is_int(json_append_string(NULL, "x"), -EINVAL, "append_string: NULL buffer");
}

/* --- secure memory ---------------------------------------------------------------------------- */

static void test_secure_memory(void) {
        static const char in[] = "{\"auth\":{\"client_token\":\"hvs.CANARY-SECRET-0123456789\"}}";
        struct secmem_report before, during, after;

        secmem_report(&before);
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                is_int(parse_str(in, JSON_SECURE, NULL, &d), 0, "secure parse");
                secmem_report(&during);
                ok(during.regions > before.regions,
                   "secure document holds secmem regions (%zu > %zu)", during.regions,
                   before.regions);
                if (during.mechanism != SECMEM_NONE)
                        ok(during.bytes_locked > before.bytes_locked, "and locked bytes");
                else
                        skip(1, "secmem cannot lock memory here");
        }
        secmem_report(&after);
        is_int(after.regions, before.regions, "regions released by json_doc_free");
        is_int(after.bytes_locked, before.bytes_locked, "locked bytes released");

        /* a building document too, and growth adds regions */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                is_int(json_doc_new(JSON_SECURE, 0, &d), 0, "secure building document");
                secmem_report(&during);
                ok(during.regions > before.regions, "root lives in secmem");
                char value[512];
                memset(value, 'x', sizeof(value) - 1);
                value[sizeof(value) - 1] = '\0';
                for (int i = 0; i < 64; i++)
                        (void) json_add_string(d, json_doc_root(d), "k", value);
                is_int(json_count(json_doc_root(d)), 64, "64 members of 512 bytes");
                struct secmem_report grown;
                secmem_report(&grown);
                ok(grown.regions > during.regions, "growth takes more regions");
        }
        secmem_report(&after);
        is_int(after.regions, before.regions, "all released");

        /* an ordinary document takes no secmem */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                is_int(parse_str(in, 0, NULL, &d), 0, "heap parse");
                secmem_report(&during);
                is_int(during.regions, before.regions, "heap document holds no secmem");
        }

        /* printing a secure document into a non-secure buffer is allowed: the caller's choice */
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf plain = BUF_INIT(4096, 0);
        is_int(parse_str(in, JSON_SECURE, NULL, &d), 0, "secure parse");
        is_int(json_print(json_doc_root(d), &plain), 0, "print into a non-secure buffer");
        ok(strstr(buf_cstr(&plain), "CANARY-SECRET") != NULL, "the text is there");
}

#if defined(CLOUDTASER_ASAN)
/* Every heap block allocated while recording, so a test can look for a canary in all of them. */
#define MAX_BLOCKS 4096
static struct {
        const volatile void *p;
        size_t n;
} blocks[MAX_BLOCKS];
static size_t n_blocks;
static bool recording, overflowed;

static void on_malloc(const volatile void *p, size_t n) {
        if (!recording)
                return;
        if (n_blocks == MAX_BLOCKS) {
                overflowed = true;
                return;
        }
        blocks[n_blocks].p = p;
        blocks[n_blocks].n = n;
        n_blocks++;
}

static void on_free(const volatile void *p) {
        for (size_t i = 0; i < n_blocks; i++)
                if (blocks[i].p == p)
                        blocks[i].p = NULL;
}

static size_t live_blocks_with(const char *needle) {
        size_t found = 0, nl = strlen(needle);
        for (size_t i = 0; i < n_blocks; i++)
                if (blocks[i].p && memmem((const void *) blocks[i].p, blocks[i].n, needle, nl))
                        found++;
        return found;
}

/* Parses, reads and prints a document holding a canary, then counts heap blocks allocated on
 * the way that still hold the canary (before the document is freed). */
static size_t canary_heap_copies(unsigned flags, unsigned buf_flags) {
        static const char in[] = "{\"data\":{\"data\":{\"password\":\"C4NARY-\\u0041-V4LUE\"}}}";
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_json_doc_ struct json_doc *built = NULL;
        _cleanup_buf_ struct buf out = BUF_INIT(4096, buf_flags);
        const char *s = NULL;
        size_t found;

        n_blocks = 0;
        overflowed = false;
        recording = true;
        if (parse_str(in, flags, NULL, &d) < 0 ||
            json_get_string(json_get_path(json_doc_root(d), "data.data"), "password", &s) < 0 ||
            json_print(json_doc_root(d), &out) < 0 || json_doc_new(flags, 0, &built) < 0 ||
            json_add_string(built, json_doc_root(built), "secret", s) < 0 ||
            json_add_copy(built, json_doc_root(built), "copy", json_doc_root(d)) < 0 ||
            json_print(json_doc_root(built), &out) < 0) {
                recording = false;
                return SIZE_MAX;
        }
        recording = false;
        found = live_blocks_with("C4NARY-A-V4LUE");
        return overflowed ? SIZE_MAX : found;
}

static void test_no_heap_copies(void) {
        if (!ok(__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0,
                "malloc hooks installed"))
                return;
        is_int(canary_heap_copies(JSON_SECURE, BUF_SECURE), 0,
               "secure document and secure output: no heap block holds the canary");
        /* the control: the same path with ordinary memory does leave it in heap blocks, so the
         * check above can see a copy when there is one */
        ok(canary_heap_copies(0, 0) >= 3, "ordinary document: the canary is in heap blocks");
        size_t secure_doc_plain_out = canary_heap_copies(JSON_SECURE, 0);
        ok(secure_doc_plain_out >= 1 && secure_doc_plain_out != SIZE_MAX,
           "secure document printed to a non-secure buffer: only that buffer (%zu)",
           secure_doc_plain_out);
}
#else
static void test_no_heap_copies(void) {
        skip(3, "heap block tracking needs the ASan build");
}
#endif

/* --- arena documents ------------------------------------------------------------------------- */

static const char arena_in[] = "{\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-1\","
                               "\"object\":{\"spec\":{\"containers\":[{\"name\":\"app\","
                               "\"command\":[\"/app\",\"--serve\"],\"port\":8080,\"x\":1.5}]}}}}";

/* Parses arena_in into a, builds a document copying part of it and adding values, prints both;
 * 0 and the printed text in out, or a negative errno. */
static int arena_round(struct arena *a, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL, *b = NULL;
        struct json_value *ops;
        int r;

        buf_reset(out);
        if ((r = json_parse_arena(a, arena_in, strlen(arena_in), 0, NULL, &d)) < 0 ||
            (r = json_doc_new_arena(a, 0, 0, &b)) < 0 ||
            (r = json_add_array(b, json_doc_root(b), "ops", &ops)) < 0 ||
            (r = json_add_copy(b, ops, NULL,
                               json_get_path(json_doc_root(d), "request.object.spec"))) < 0 ||
            (r = json_add_string(b, ops, NULL, "added")) < 0 ||
            (r = json_add_int64(b, ops, NULL, 42)) < 0 ||
            (r = json_print(json_doc_root(d), out)) < 0 ||
            (r = json_print(json_doc_root(b), out)) < 0)
                return r;
        return 0;
}

static void test_arena_documents(void) {
        _cleanup_buf_ struct buf want = BUF_INIT(4096, 0), got = BUF_INIT(4096, 0);
        struct arena a;

        is_int(arena_round(NULL, &want), 0, "a NULL arena: the heap, as json_parse()");
        ok(strncmp(buf_cstr(&want), arena_in, strlen(arena_in)) == 0, "the heap round prints back");

        arena_init(&a, 1u << 20, ARENA_WIPE);
        is_int(arena_round(&a, &got), 0, "parse and build in an arena");
        is_str(buf_cstr(&got), buf_cstr(&want), "the same text as on the heap");
        ok(arena_used(&a) > strlen(arena_in),
           "the documents' memory came from the arena (%zu bytes)", arena_used(&a));
        arena_reset(&a);

        /* Budgets that run out at every point of the round: the rest goes to the heap, the result
         * is the same, and freeing the documents frees those heap blocks (ASan's leak check). */
        bool same = true;
        for (size_t budget = 0; budget < 6000; budget += 97) {
                arena_set_budget(&a, budget);
                same = same && arena_round(&a, &got) == 0 &&
                       strcmp(buf_cstr(&got), buf_cstr(&want)) == 0;
                arena_reset(&a);
        }
        ok(same, "an arena whose budget runs out anywhere: the same text (heap for the rest)");
        arena_set_budget(&a, 1u << 20);

        struct json_doc *d = NULL;
        is_int(json_parse_arena(&a, "{}", 2, JSON_SECURE, NULL, &d), -EINVAL,
               "a secure parse in an arena is refused");
        is_int(json_doc_new_arena(&a, JSON_SECURE, 0, &d), -EINVAL,
               "a secure document in an arena is refused");
        ok(d == NULL, "and nothing returned");

        /* The document's bound holds in an arena too. */
        _cleanup_json_doc_ struct json_doc *small = NULL;
        is_int(json_doc_new_arena(&a, 0, 1024, &small), 0, "a 1 KiB document in an arena");
        int r = 0;
        for (int i = 0; i < 100 && r == 0; i++)
                r = json_add_string(small, json_doc_root(small), "k", "0123456789abcdef");
        is_int(r, -E2BIG, "fills up at its bound, not at the arena's");
        small = json_doc_free(small);
        arena_done(&a);
}

#if defined(CLOUDTASER_ASAN)
static void test_arena_no_heap(void) {
        _cleanup_buf_ struct buf out = BUF_INIT(4096, 0);
        struct arena a;

        arena_init(&a, 1u << 20, 0);
        (void) buf_reserve(&out, 2048);
        (void) arena_round(&a, &out); /* the arena makes its blocks */
        arena_reset(&a);
        n_blocks = 0;
        overflowed = false;
        recording = true;
        int r = arena_round(&a, &out);
        recording = false;
        is_int(r, 0, "a second round in the same arena");
        is_int((int) n_blocks, 0, "made no heap allocation at all");
        arena_done(&a);
}
#else
static void test_arena_no_heap(void) {
        skip(2, "heap block tracking needs the ASan build");
}
#endif

/* --- threads ---------------------------------------------------------------------------------- */

static void *thread_main(void *arg) {
        unsigned flags = (unsigned) (uintptr_t) arg;
        static const char in[] = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}";
        for (int i = 0; i < 200; i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL, *b = NULL;
                if (parse_str(in, flags, NULL, &d) < 0 || json_doc_new(flags, 0, &b) < 0 ||
                    json_add_copy(b, json_doc_root(b), "x", json_doc_root(d)) < 0 ||
                    json_add_int64(b, json_doc_root(b), "i", i) < 0)
                        return (void *) 1;
                _cleanup_buf_ struct buf out = BUF_INIT(1024, flags ? BUF_SECURE : 0);
                char want[128];
                (void) snprintf(want, sizeof(want), "{\"x\":%s,\"i\":%d}", in, i);
                if (json_print(json_doc_root(b), &out) < 0 || strcmp(buf_cstr(&out), want) != 0)
                        return (void *) 1;
        }
        return NULL;
}

static void test_threads(void) {
        pthread_t t[4];
        bool started[4] = {false};
        int bad = 0;
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                started[i] = pthread_create(&t[i], NULL, thread_main,
                                            (void *) (uintptr_t) (i % 2 ? JSON_SECURE : 0)) == 0;
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                void *res = (void *) 1;
                if (started[i])
                        (void) pthread_join(t[i], &res);
                if (res)
                        bad++;
        }
        is_int(bad, 0, "four threads parse, build and print their own documents");
}

/* JSON_ALLOW_NUL: "\u0000" in values keeps its bytes and its length; never in keys. */
static void test_allow_nul(void) {
        static const struct {
                const char *text;
                int want;
                size_t len;
                const char *bytes;
        } cases[] = {
                {"{\"k\":\"a\\u0000b\"}", 0, 3, "a\0b"},
                {"{\"k\":\"\\u0000\"}", 0, 1, "\0"},
                {"{\"k\":\"\\u0000\\u0000x\\n\"}", 0, 4, "\0\0x\n"},
                {"{\"k\":\"\\\\u0000\"}", 0, 6, "\\u0000"}, /* an escaped backslash */
                {"{\"k\":\"plain\"}", 0, 5, "plain"},
                {"{\"\\u0000\":\"v\"}", -EBADMSG, 0, NULL},
                {"{\"a\\u0000b\":\"v\"}", -EBADMSG, 0, NULL},
        };
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        _cleanup_json_doc_ struct json_doc *d = NULL;
                        int r = parse_str(cases[i].text, modes[m] | JSON_ALLOW_NUL, NULL, &d);
                        if (cases[i].want < 0) {
                                is_int(r, cases[i].want, "%s: allow-nul: %s refused",
                                       MODE(modes[m]), cases[i].text);
                                continue;
                        }
                        const struct json_value *k = json_get(json_doc_root(d), "k");
                        const char *v = NULL;
                        ok(r == 0 && json_string(k, &v) == 0 &&
                                   json_string_len(k) == cases[i].len &&
                                   memcmp(v, cases[i].bytes, cases[i].len) == 0 &&
                                   v[cases[i].len] == '\0',
                           "%s: allow-nul: %s keeps %zu bytes", MODE(modes[m]), cases[i].text,
                           cases[i].len);
                }
        _cleanup_json_doc_ struct json_doc *d = NULL;
        is_int(parse_str("{\"k\":\"a\\u0000b\"}", 0, NULL, &d), -EBADMSG,
               "without JSON_ALLOW_NUL the same text is refused");
}

int main(void) {
        test_grammar();
        test_allow_nul();
        test_length_bounded();
        test_bad_arguments();
        test_depth_limit();
        test_input_limit();
        test_node_limit();
        test_parse_memory();
        test_getters();
        test_key_prefixes();
        test_get_path();
        test_iteration();
        test_build_roundtrip();
        test_build_errors();
        test_build_depth();
        test_memory_bound();
        test_print_numbers();
        test_print_bounds();
        test_quoting();
        test_secure_memory();
        test_no_heap_copies();
        test_arena_documents();
        test_arena_no_heap();
        test_threads();
        return tap_done();
}
