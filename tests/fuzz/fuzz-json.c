/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-json: json_parse() on arbitrary bytes, in both memory modes, with properties checked on
 * every accepted document:
 *   - only the documented errors come back, and both modes agree;
 *   - every getter is consistent with json_type() on every value, iteration agrees with
 *     json_count()/json_array_at()/json_get();
 *   - print -> parse -> print gives the same text (idempotence), a deep copy prints the same;
 *   - json_append_quoted() of the input (up to its first NUL) parses back to the same bytes, or
 *     is rejected exactly when those bytes are not UTF-8;
 *   - JSON_ALLOW_NUL accepts everything the strict parse accepts, with the same string lengths,
 *     and in what only it accepts every string value is NUL-terminated after json_string_len()
 *     bytes, no key holds a NUL, and the lengths never exceed the input;
 *   - the parser accepts exactly what an independent recognizer of json.h's grammar (below,
 *     written apart from json.c: RFC 8259, UTF-8, paired surrogates, no "\u0000" unless
 *     allowed, finite numbers) accepts, within the depth limit; it counts the values too, so a
 *     document within every limit must parse and hold exactly that many.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
        do {                                                                              \
                if (!(cond)) {                                                            \
                        fprintf(stderr, "fuzz-json: %s:%d: check failed: %s\n", __FILE__, \
                                __LINE__, #cond);                                         \
                        abort();                                                          \
                }                                                                         \
        } while (0)

static void check_value(const struct json_value *v);

/* All getters on one value; each must agree with its type. */
static void check_scalar_getters(const struct json_value *v) {
        enum json_type t = json_type(v);
        const char *s = NULL;
        int64_t i = 0;
        double x = 0;
        bool b = false;

        CHECK(t != JSON_INVALID);
        CHECK(strcmp(json_type_to_string(t), "invalid") != 0);
        CHECK((json_string(v, &s) == 0) == (t == JSON_STRING));
        if (t == JSON_STRING)
                CHECK(s && strlen(s) == json_string_len(v));
        else
                CHECK(json_string_len(v) == 0);
        CHECK((json_double(v, &x) == 0) == (t == JSON_NUMBER));
        if (json_int64(v, &i) == 0) {
                CHECK(t == JSON_NUMBER);
                CHECK((double) i == x);
                CHECK(i > -9007199254740992LL && i < 9007199254740992LL);
        } else
                CHECK(json_int64(v, &i) == -EBADMSG);
        CHECK((json_bool(v, &b) == 0) == (t == JSON_TRUE || t == JSON_FALSE));
        if (t == JSON_TRUE || t == JSON_FALSE)
                CHECK(b == (t == JSON_TRUE));
        if (t != JSON_ARRAY && t != JSON_OBJECT) {
                CHECK(json_count(v) == 0);
                CHECK(json_first_child(v) == NULL);
        }
}

/* The typed member getters for one member, against the member's own type. */
static void check_member_getters(const struct json_value *obj, const char *key,
                                 const struct json_value *first) {
        enum json_type t = json_type(first);
        const struct json_value *o = NULL;
        const char *s = NULL;
        int64_t i = 0;
        bool b = false;
        int absent = t == JSON_NULL ? -ENOENT : -EBADMSG;

        CHECK(json_get(obj, key) == first);
        if (!strchr(key, '.'))
                CHECK(json_get_path(obj, key) == first);
        CHECK(json_get_string(obj, key, &s) == (t == JSON_STRING ? 0 : absent));
        CHECK(json_get_bool(obj, key, &b) == (t == JSON_TRUE || t == JSON_FALSE ? 0 : absent));
        CHECK(json_get_object(obj, key, &o) == (t == JSON_OBJECT ? 0 : absent));
        CHECK(json_get_array(obj, key, &o) == (t == JSON_ARRAY ? 0 : absent));
        int r = json_get_int64(obj, key, &i);
        if (t == JSON_NUMBER)
                CHECK(r == 0 || r == -EBADMSG);
        else
                CHECK(r == absent);
}

static void check_value(const struct json_value *v) {
        enum json_type t = json_type(v);
        size_t n = 0;

        check_scalar_getters(v);
        JSON_FOREACH(c, v) {
                if (t == JSON_ARRAY) {
                        CHECK(json_key(c) == NULL);
                        CHECK(json_array_at(v, n) == c);
                } else {
                        const char *key = json_key(c);
                        CHECK(key != NULL);
                        /* json_get returns the first member with this key */
                        const struct json_value *first = NULL;
                        JSON_FOREACH(f, v) {
                                if (strcmp(json_key(f), key) == 0) {
                                        first = f;
                                        break;
                                }
                        }
                        CHECK(first != NULL);
                        check_member_getters(v, key, first);
                }
                check_value(c);
                n++;
        }
        CHECK(json_count(v) == n);
        if (t == JSON_ARRAY)
                CHECK(json_array_at(v, n) == NULL);
        else
                CHECK(json_array_at(v, 0) == NULL);
}

static void print_or_die(const struct json_value *v, struct buf *out) {
        CHECK(json_print(v, out) == 0);
}

static bool utf8_ok(const uint8_t *s, size_t n) {
        /* Reference check, written independently of json.c: decode and re-validate ranges. */
        for (size_t i = 0; i < n;) {
                uint8_t c = s[i];
                uint32_t cp;
                size_t len;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        cp = c & 0x1f;
                        len = 2;
                } else if ((c & 0xf0) == 0xe0) {
                        cp = c & 0x0f;
                        len = 3;
                } else if ((c & 0xf8) == 0xf0) {
                        cp = c & 0x07;
                        len = 4;
                } else
                        return false;
                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

static void check_quoting(const uint8_t *data, size_t size) {
        size_t n = strnlen((const char *) data, size);
        _cleanup_free_ char *s = malloc(n + 1);
        _cleanup_buf_ struct buf q = BUF_INIT(8 * n + 16, 0);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_limits l = {.max_input = JSON_MAX_INPUT_LIMIT};
        const char *back = NULL;

        CHECK(s);
        memcpy(s, data, n);
        s[n] = '\0';
        CHECK(json_append_quoted(&q, s) == 0);
        int r = json_parse(q.data, q.len, 0, &l, &d);
        if (!utf8_ok(data, n)) {
                CHECK(r == -EBADMSG);
                return;
        }
        CHECK(r == 0);
        CHECK(json_string(json_doc_root(d), &back) == 0);
        CHECK(strcmp(back, s) == 0);
}

/* Every string value: terminated after json_string_len() bytes, at least strlen() long (equal
 * when `strict`), shorter than the input; every key a C string shorter than the input. */
static void check_nul_strings(const struct json_value *v, size_t size, bool strict) {
        const char *str;
        if (json_key(v))
                CHECK(strlen(json_key(v)) < size);
        if (json_string(v, &str) == 0) {
                size_t n = json_string_len(v);
                CHECK(n < size && str[n] == '\0' && n >= strlen(str));
                if (strict)
                        CHECK(n == strlen(str));
        }
        for (const struct json_value *c = json_first_child(v); c; c = json_next(c))
                check_nul_strings(c, size, strict);
}

/* --- the reference recognizer: accept/reject, depth and value count, nothing else ---------- */

struct ref {
        const uint8_t *s;
        size_t n, i, values;
        unsigned depth, deepest;
        bool allow_nul;
};

static void ref_ws(struct ref *r) {
        while (r->i < r->n && strchr(" \t\r\n", r->s[r->i]) && r->s[r->i])
                r->i++;
}

static bool ref_hex4(struct ref *r, unsigned *ret) {
        static const char digits[] = "0123456789abcdef";
        unsigned v = 0;
        if (r->n - r->i < 4)
                return false;
        for (int k = 0; k < 4; k++) {
                int c = r->s[r->i + k] >= 'A' && r->s[r->i + k] <= 'F' ? r->s[r->i + k] + 32
                                                                       : r->s[r->i + k];
                const char *at = c ? strchr(digits, c) : NULL;
                if (!at)
                        return false;
                v = v * 16 + (unsigned) (at - digits);
        }
        *ret = v;
        r->i += 4;
        return true;
}

static bool ref_string(struct ref *r, bool key) {
        r->i++; /* the quote */
        size_t start = r->i;
        while (r->i < r->n && r->s[r->i] != '"') {
                uint8_t c = r->s[r->i];
                if (c < 0x20)
                        return false;
                if (c != '\\') {
                        r->i++;
                        continue;
                }
                if (++r->i >= r->n)
                        return false;
                c = r->s[r->i++];
                if (c == 'u') {
                        unsigned u, lo;
                        if (!ref_hex4(r, &u))
                                return false;
                        if (u == 0 && (key || !r->allow_nul))
                                return false;
                        if (u >= 0xdc00 && u <= 0xdfff)
                                return false;
                        if (u >= 0xd800 && u <= 0xdbff) {
                                if (r->n - r->i < 2 || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
                                        return false;
                                r->i += 2;
                                if (!ref_hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
                                        return false;
                        }
                } else if (!c || !strchr("\"\\/bfnrt", c))
                        return false;
        }
        if (r->i >= r->n || !utf8_ok(r->s + start, r->i - start))
                return false;
        r->i++;
        return true;
}

static bool ref_number(struct ref *r) {
        size_t start = r->i;
        if (r->i < r->n && r->s[r->i] == '-')
                r->i++;
        if (r->i < r->n && r->s[r->i] == '0')
                r->i++;
        else if (r->i < r->n && r->s[r->i] >= '1' && r->s[r->i] <= '9')
                while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
                        r->i++;
        else
                return false;
        if (r->i < r->n && r->s[r->i] == '.') {
                size_t d = ++r->i;
                while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
                        r->i++;
                if (r->i == d)
                        return false;
        }
        if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
                r->i++;
                if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
                        r->i++;
                size_t d = r->i;
                while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
                        r->i++;
                if (r->i == d)
                        return false;
        }
        /* The input has no NUL after the number: a copy of exactly its bytes (strndup() may
         * look past them, and ASan's strict string checks say so). */
        _cleanup_free_ char *copy = malloc(r->i - start + 1);
        CHECK(copy);
        memcpy(copy, r->s + start, r->i - start);
        copy[r->i - start] = '\0';
        errno = 0; /* not looked at: finiteness is the test, as json.h says */
        double x = strtod(copy, NULL);
        return x - x == 0; /* finite */
}

static bool ref_value(struct ref *r) {
        ref_ws(r);
        if (r->i >= r->n)
                return false;
        r->values++;
        uint8_t c = r->s[r->i];
        if (c == '"')
                return ref_string(r, false);
        if (c == '[' || c == '{') {
                uint8_t close = c == '[' ? ']' : '}';
                r->depth++;
                r->deepest = r->depth > r->deepest ? r->depth : r->deepest;
                if (r->depth > 600)
                        return false; /* beyond every depth limit: rejected either way */
                r->i++;
                ref_ws(r);
                if (r->i < r->n && r->s[r->i] == close) {
                        r->i++;
                        r->depth--;
                        return true;
                }
                for (;;) {
                        if (close == '}') {
                                ref_ws(r);
                                if (r->i >= r->n || r->s[r->i] != '"' || !ref_string(r, true))
                                        return false;
                                ref_ws(r);
                                if (r->i >= r->n || r->s[r->i++] != ':')
                                        return false;
                        }
                        if (!ref_value(r))
                                return false;
                        ref_ws(r);
                        if (r->i >= r->n)
                                return false;
                        c = r->s[r->i++];
                        if (c == close) {
                                r->depth--;
                                return true;
                        }
                        if (c != ',')
                                return false;
                }
        }
        static const char *const words[] = {"true", "false", "null"};
        for (size_t k = 0; k < ELEMENTSOF(words); k++) {
                size_t len = strlen(words[k]);
                if (r->n - r->i >= len && memcmp(r->s + r->i, words[k], len) == 0) {
                        r->i += len;
                        return true;
                }
        }
        return ref_number(r);
}

/* Whether the reference accepts data; *values and *deepest describe what it read. */
static bool ref_accepts(const uint8_t *data, size_t size, bool allow_nul, size_t *values,
                        unsigned *deepest) {
        struct ref r = {.s = data, .n = size, .allow_nul = allow_nul};
        bool ok = ref_value(&r);
        ref_ws(&r);
        *values = r.values;
        *deepest = r.deepest;
        return ok && r.i == r.n;
}

static size_t count_values(const struct json_value *v) {
        size_t n = 1;
        JSON_FOREACH(c, v)
        n += count_values(c);
        return n;
}

/* The parser against the reference, for one flag set (default limits). */
static void check_against_reference(const uint8_t *data, size_t size, unsigned flags, int r,
                                    const struct json_doc *d) {
        size_t values;
        unsigned deepest;
        bool ok = ref_accepts(data, size, flags & JSON_ALLOW_NUL, &values, &deepest);

        if (!ok) {
                CHECK(r < 0);
                return;
        }
        if (size > JSON_MAX_INPUT_DEFAULT || values > JSON_MAX_NODES_DEFAULT) {
                CHECK(r == -E2BIG || r == -ELOOP || r == 0);
                return;
        }
        if (deepest > JSON_MAX_DEPTH_DEFAULT) {
                CHECK(r == -ELOOP);
                return;
        }
        CHECK(r == 0);
        CHECK(count_values(json_doc_root((struct json_doc *) d)) == values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_doc_ struct json_doc *heap = NULL, *secure = NULL, *again = NULL,
                                           *copy = NULL;
        _cleanup_buf_ struct buf p1 = BUF_INIT(JSON_MAX_INPUT_LIMIT, 0);
        _cleanup_buf_ struct buf p2 = BUF_INIT(JSON_MAX_INPUT_LIMIT, 0);
        _cleanup_buf_ struct buf ps = BUF_INIT(JSON_MAX_INPUT_LIMIT, BUF_SECURE);
        _cleanup_buf_ struct buf pc = BUF_INIT(JSON_MAX_INPUT_LIMIT, 0);
        struct json_limits relaxed = {.max_input = JSON_MAX_INPUT_LIMIT};

        check_quoting(data, size);

        int r = json_parse((const char *) data, size, 0, NULL, &heap);
        int rs = json_parse((const char *) data, size, JSON_SECURE, NULL, &secure);
        CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ELOOP);
        CHECK(r == rs);
        /* Under 2 bytes per value the default max_nodes cannot be reached: -E2BIG would mean the
         * memory bound computed for the parse was too small. */
        if (size < 2 * JSON_MAX_NODES_DEFAULT)
                CHECK(r != -E2BIG);
        CHECK((r == 0) == (heap != NULL) && (rs == 0) == (secure != NULL));

        _cleanup_json_doc_ struct json_doc *nul = NULL;
        int rn = json_parse((const char *) data, size, JSON_SECURE | JSON_ALLOW_NUL, NULL, &nul);
        CHECK(rn == 0 || rn == -EBADMSG || rn == -E2BIG || rn == -ELOOP);
        if (r == 0)
                CHECK(rn == 0);
        if (rn == 0)
                check_nul_strings(json_doc_root(nul), size, r == 0);
        check_against_reference(data, size, 0, r, heap);
        check_against_reference(data, size, JSON_ALLOW_NUL, rn, nul);
        if (r < 0)
                return 0;

        const struct json_value *root = json_doc_root(heap);
        check_value(root);
        check_value(json_doc_root(secure));

        /* idempotence: print, parse the text, print again */
        print_or_die(root, &p1);
        print_or_die(json_doc_root(secure), &ps);
        CHECK(p1.len == ps.len && memcmp(p1.data, ps.data, p1.len) == 0);
        CHECK(json_parse(p1.data, p1.len, JSON_SECURE, &relaxed, &again) == 0);
        print_or_die(json_doc_root(again), &p2);
        CHECK(p1.len == p2.len && memcmp(p1.data, p2.data, p1.len) == 0);
        CHECK(strlen(p1.data) == p1.len); /* no NUL in the text */

        /* a deep copy prints the same */
        CHECK(json_doc_new(0, 64u * 1024u * 1024u, &copy) == 0);
        CHECK(json_add_copy(copy, json_doc_root(copy), "x", json_doc_root(secure)) == 0);
        print_or_die(json_get(json_doc_root(copy), "x"), &pc);
        CHECK(p1.len == pc.len && memcmp(p1.data, pc.data, p1.len) == 0);
        return 0;
}
