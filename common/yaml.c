/* SPDX-License-Identifier: Apache-2.0 */
/* yaml: see yaml.h. The only module that includes libyaml. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/yaml.h"

#define DOC_MAX_BYTES (16u * 1024u * 1024u)

struct yaml_map {
        struct yaml_node_info *nodes;
        size_t n, cap;
};

struct reader {
        yaml_parser_t parser;
        struct json_doc *doc;
        struct yaml_map *map; /* NULL when positions are not wanted */
        struct yaml_error *err;
        unsigned max_depth;
        size_t max_nodes, nodes;
};

static struct yaml_mark mark_of(const yaml_mark_t *m) {
        return (struct yaml_mark){.offset = m->index,
                                  .line = (unsigned) MIN(m->line + 1, (size_t) UINT32_MAX),
                                  .column = (unsigned) MIN(m->column + 1, (size_t) UINT32_MAX)};
}

/* Records the first failure: r, at mark m (NULL: unknown), with a printf message. */
static int fail(struct reader *rd, int r, const yaml_mark_t *m, const char *fmt, ...)
        _printf_(4, 5);
static int fail(struct reader *rd, int r, const yaml_mark_t *m, const char *fmt, ...) {
        if (!rd->err || rd->err->message[0])
                return r;
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(rd->err->message, sizeof(rd->err->message), fmt, ap);
        va_end(ap);
        for (char *c = rd->err->message; *c; c++)
                if (*c < 0x20 || *c > 0x7e)
                        *c = '?';
        if (m) {
                struct yaml_mark k = mark_of(m);
                rd->err->line = k.line;
                rd->err->column = k.column;
        }
        if (!rd->err->message[0])
                (void) snprintf(rd->err->message, sizeof(rd->err->message), "invalid");
        return r;
}

static int next_event(struct reader *rd, yaml_event_t *ev) {
        if (!yaml_parser_parse(&rd->parser, ev)) {
                if (rd->parser.error == YAML_MEMORY_ERROR)
                        return fail(rd, -ENOMEM, NULL, "out of memory");
                const char *problem = rd->parser.problem ? rd->parser.problem : "malformed YAML";
                if (rd->parser.context)
                        return fail(rd, -EBADMSG, &rd->parser.problem_mark, "%s %s",
                                    rd->parser.problem ? problem : "malformed YAML",
                                    rd->parser.context);
                return fail(rd, -EBADMSG, &rd->parser.problem_mark, "%s", problem);
        }
        return 0;
}

static int record(struct reader *rd, const struct json_value *v, const yaml_event_t *start,
                  const yaml_mark_t *end, const yaml_mark_t *key, enum yaml_style style) {
        struct yaml_map *m = rd->map;
        if (!m)
                return 0;
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                struct yaml_node_info *p = reallocarray(m->nodes, cap, sizeof(*p));
                if (!p)
                        return fail(rd, -ENOMEM, NULL, "out of memory");
                m->nodes = p;
                m->cap = cap;
        }
        m->nodes[m->n++] = (struct yaml_node_info){
                .value = v,
                .start = mark_of(&start->start_mark),
                .end = mark_of(end),
                .key = mark_of(key ? key : &start->start_mark),
                .style = style,
        };
        return 0;
}

static bool tag_ok(const yaml_char_t *tag, const char *want) {
        if (!tag)
                return true;
        const char *t = (const char *) tag;
        return strncmp(t, "tag:yaml.org,2002:", 18) == 0 && strcmp(t + 18, want) == 0;
}

static bool is_one_of(const char *s, size_t n, const char *const *words) {
        for (; *words; words++)
                if (strlen(*words) == n && memcmp(s, *words, n) == 0)
                        return true;
        return false;
}

/* A plain decimal integer, [-+]?[0-9]+ without a leading zero (but "0"), within 2^53. */
static bool plain_int(const char *s, size_t n, int64_t *ret) {
        size_t i = 0;
        bool neg = false;
        if (n > 0 && (s[0] == '-' || s[0] == '+'))
                neg = s[i++] == '-';
        if (i == n || (s[i] == '0' && n - i > 1))
                return false;
        int64_t v = 0;
        for (; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
                if (v > (INT64_C(1) << 53) - 1)
                        return false;
        }
        *ret = neg ? -v : v;
        return true;
}

static int add_scalar(struct reader *rd, struct json_value *parent, const char *key,
                      const yaml_event_t *ev) {
        static const char *const trues[] = {"true", "True", "TRUE", NULL};
        static const char *const falses[] = {"false", "False", "FALSE", NULL};
        static const char *const nulls[] = {"null", "Null", "NULL", "~", "", NULL};
        const char *v = (const char *) ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        bool plain =
                ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        int64_t x;

        if (memchr(v, '\0', n))
                return fail(rd, -EBADMSG, &ev->start_mark, "NUL character in a scalar");
        if (ev->data.scalar.tag && !tag_ok(ev->data.scalar.tag, "str"))
                return fail(rd, -EBADMSG, &ev->start_mark, "unsupported tag");
        if (ev->data.scalar.tag)
                plain = false; /* !!str */
        if (plain && is_one_of(v, n, trues))
                return json_add_bool(rd->doc, parent, key, true);
        if (plain && is_one_of(v, n, falses))
                return json_add_bool(rd->doc, parent, key, false);
        if (plain && is_one_of(v, n, nulls))
                return json_add_null(rd->doc, parent, key);
        if (plain && plain_int(v, n, &x))
                return json_add_int64(rd->doc, parent, key, x);
        return json_add_stringn(rd->doc, parent, key, v, n);
}

/* The child just appended to parent (whose previous last child was prev). */
static const struct json_value *appended(struct json_value *parent, const struct json_value *prev) {
        return prev ? json_next(prev) : json_first_child(parent);
}

static int read_node(struct reader *rd, yaml_event_t *ev, struct json_value *parent,
                     const char *key, const yaml_mark_t *key_mark, const struct json_value *prev,
                     unsigned depth);

/* The events after a MAPPING-START up to its end, into obj; *ret_end: the end's mark. */
static int read_mapping(struct reader *rd, struct json_value *obj, unsigned depth,
                        yaml_mark_t *ret_end) {
        const struct json_value *prev = NULL;
        for (;;) {
                yaml_event_t kev, vev;
                int r = next_event(rd, &kev);
                if (r < 0)
                        return r;
                if (kev.type == YAML_MAPPING_END_EVENT) {
                        *ret_end = kev.end_mark;
                        yaml_event_delete(&kev);
                        return 0;
                }
                if (kev.type != YAML_SCALAR_EVENT || kev.data.scalar.anchor ||
                    memchr(kev.data.scalar.value, '\0', kev.data.scalar.length) ||
                    (kev.data.scalar.tag && !tag_ok(kev.data.scalar.tag, "str"))) {
                        r = fail(rd, -EBADMSG, &kev.start_mark,
                                 "a key must be a plain scalar (no anchor, alias, tag or NUL)");
                        yaml_event_delete(&kev);
                        return r;
                }
                const char *k = (const char *) kev.data.scalar.value;
                if (json_get(obj, k)) {
                        r = fail(rd, -EBADMSG, &kev.start_mark, "duplicate key '%.64s'", k);
                        yaml_event_delete(&kev);
                        return r;
                }
                r = next_event(rd, &vev);
                if (r >= 0) {
                        r = read_node(rd, &vev, obj, k, &kev.start_mark, prev, depth);
                        yaml_event_delete(&vev);
                }
                yaml_event_delete(&kev);
                if (r < 0)
                        return r;
                prev = appended(obj, prev);
        }
}

static int read_sequence(struct reader *rd, struct json_value *arr, unsigned depth,
                         yaml_mark_t *ret_end) {
        const struct json_value *prev = NULL;
        for (;;) {
                yaml_event_t ev;
                int r = next_event(rd, &ev);
                if (r < 0)
                        return r;
                if (ev.type == YAML_SEQUENCE_END_EVENT) {
                        *ret_end = ev.end_mark;
                        yaml_event_delete(&ev);
                        return 0;
                }
                r = read_node(rd, &ev, arr, NULL, NULL, prev, depth);
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
                prev = appended(arr, prev);
        }
}

static enum yaml_style scalar_style(yaml_scalar_style_t s) {
        switch (s) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
                return YAML_STYLE_QUOTED;
        case YAML_LITERAL_SCALAR_STYLE:
        case YAML_FOLDED_SCALAR_STYLE:
                return YAML_STYLE_LITERAL;
        default:
                return YAML_STYLE_PLAIN;
        }
}

/* ev: the node's first event (owned by the caller). The new value is parent's child after
 * prev; its position is recorded in rd->map. */
static int read_node(struct reader *rd, yaml_event_t *ev, struct json_value *parent,
                     const char *key, const yaml_mark_t *key_mark, const struct json_value *prev,
                     unsigned depth) {
        struct json_value *c = NULL;
        yaml_mark_t end;
        bool flow;
        int r;

        if (++rd->nodes > rd->max_nodes)
                return fail(rd, -E2BIG, &ev->start_mark, "more than %zu nodes", rd->max_nodes);
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                if (ev->data.scalar.anchor)
                        return fail(rd, -EBADMSG, &ev->start_mark, "anchors are not accepted");
                r = add_scalar(rd, parent, key, ev);
                if (r < 0)
                        return fail(rd, r, &ev->start_mark, "scalar not accepted");
                return record(rd, appended(parent, prev), ev, &ev->end_mark, key_mark,
                              scalar_style(ev->data.scalar.style));
        case YAML_SEQUENCE_START_EVENT:
                if (ev->data.sequence_start.anchor || !tag_ok(ev->data.sequence_start.tag, "seq"))
                        return fail(rd, -EBADMSG, &ev->start_mark,
                                    "anchors and tags other than !!seq are not accepted");
                if (depth + 1 > rd->max_depth)
                        return fail(rd, -ELOOP, &ev->start_mark, "nested deeper than %u",
                                    rd->max_depth);
                flow = ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
                r = json_add_array(rd->doc, parent, key, &c);
                if (r < 0)
                        return fail(rd, r, &ev->start_mark, "sequence not accepted");
                r = read_sequence(rd, c, depth + 1, &end);
                break;
        case YAML_MAPPING_START_EVENT:
                if (ev->data.mapping_start.anchor || !tag_ok(ev->data.mapping_start.tag, "map"))
                        return fail(rd, -EBADMSG, &ev->start_mark,
                                    "anchors and tags other than !!map are not accepted");
                if (depth + 1 > rd->max_depth)
                        return fail(rd, -ELOOP, &ev->start_mark, "nested deeper than %u",
                                    rd->max_depth);
                flow = ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
                r = json_add_object(rd->doc, parent, key, &c);
                if (r < 0)
                        return fail(rd, r, &ev->start_mark, "mapping not accepted");
                r = read_mapping(rd, c, depth + 1, &end);
                break;
        case YAML_ALIAS_EVENT:
                return fail(rd, -EBADMSG, &ev->start_mark, "aliases are not accepted");
        default:
                return fail(rd, -EBADMSG, &ev->start_mark, "unexpected event");
        }
        if (r < 0)
                return r;
        return record(rd, c, ev, &end, key_mark, flow ? YAML_STYLE_FLOW : YAML_STYLE_BLOCK);
}

static int expect(struct reader *rd, yaml_event_type_t type, const char *what) {
        yaml_event_t ev;
        int r = next_event(rd, &ev);
        if (r < 0)
                return r;
        r = ev.type == type ? 0 : fail(rd, -EBADMSG, &ev.start_mark, "%s", what);
        yaml_event_delete(&ev);
        return r;
}

static int cmp_node(const void *a, const void *b) {
        uintptr_t x = (uintptr_t) ((const struct yaml_node_info *) a)->value,
                  y = (uintptr_t) ((const struct yaml_node_info *) b)->value;
        return x < y ? -1 : x > y;
}

struct yaml_map *yaml_map_free(struct yaml_map *m) {
        if (m) {
                free(m->nodes);
                free(m);
        }
        return NULL;
}

const struct yaml_node_info *yaml_map_find(const struct yaml_map *m, const struct json_value *v) {
        if (!m || !v)
                return NULL;
        struct yaml_node_info key = {.value = v};
        return bsearch(&key, m->nodes, m->n, sizeof(*m->nodes), cmp_node);
}

int yaml_parse_map(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
                   struct json_doc **ret, struct yaml_map **ret_map, struct yaml_error *err) {
        struct json_limits lim = limits ? *limits : (struct json_limits){};
        _cleanup_(yaml_map_freep) struct yaml_map *map = NULL;
        struct reader rd = {.err = err};
        yaml_event_t ev;
        yaml_mark_t end;
        int r;

        if (err)
                *err = (struct yaml_error){};
        if (!s || !ret)
                return fail(&rd, -EINVAL, NULL, "invalid arguments");
        lim.max_input = lim.max_input ?: YAML_MAX_INPUT_DEFAULT;
        rd.max_depth = lim.max_depth ?: YAML_MAX_DEPTH_DEFAULT;
        rd.max_nodes = lim.max_nodes ?: YAML_MAX_NODES_DEFAULT;
        if (n > lim.max_input)
                return fail(&rd, -E2BIG, NULL, "more than %zu bytes", lim.max_input);
        const char *nul = memchr(s, '\0', n);
        if (nul) {
                unsigned line = 1, col = 1;
                for (const char *c = s; c < nul; c++, col++)
                        if (*c == '\n')
                                line++, col = 0;
                r = fail(&rd, -EBADMSG, NULL, "NUL byte in the text");
                if (err)
                        err->line = line, err->column = col;
                return r;
        }
        if (ret_map) {
                map = calloc(1, sizeof(*map));
                if (!map)
                        return -ENOMEM;
                rd.map = map;
        }
        r = json_doc_new(flags, DOC_MAX_BYTES, &rd.doc);
        if (r < 0)
                return fail(&rd, r, NULL, "cannot create the document");
        if (!yaml_parser_initialize(&rd.parser)) {
                json_doc_free(rd.doc);
                return fail(&rd, -ENOMEM, NULL, "out of memory");
        }
        yaml_parser_set_input_string(&rd.parser, (const unsigned char *) s, n);
        r = expect(&rd, YAML_STREAM_START_EVENT, "not a YAML stream");
        if (r >= 0)
                r = expect(&rd, YAML_DOCUMENT_START_EVENT, "no document");
        if (r >= 0)
                r = next_event(&rd, &ev);
        if (r >= 0) {
                /* The root: a mapping, filled into the document's root object. */
                if (ev.type != YAML_MAPPING_START_EVENT || ev.data.mapping_start.anchor ||
                    !tag_ok(ev.data.mapping_start.tag, "map"))
                        r = fail(&rd, -EBADMSG, &ev.start_mark, "the document is not a mapping");
                else
                        r = read_mapping(&rd, json_doc_root(rd.doc), 1, &end);
                if (r >= 0)
                        r = record(&rd, json_doc_root(rd.doc), &ev, &end, NULL,
                                   ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                                           ? YAML_STYLE_FLOW
                                           : YAML_STYLE_BLOCK);
                yaml_event_delete(&ev);
        }
        if (r >= 0)
                r = expect(&rd, YAML_DOCUMENT_END_EVENT, "more than one document");
        if (r >= 0)
                r = expect(&rd, YAML_STREAM_END_EVENT, "more than one document");
        yaml_parser_delete(&rd.parser);
        if (r < 0) {
                json_doc_free(rd.doc);
                return r;
        }
        if (map && map->n > 1)
                qsort(map->nodes, map->n, sizeof(*map->nodes), cmp_node);
        *ret = rd.doc;
        if (ret_map)
                *ret_map = TAKE_PTR(map);
        return 0;
}

int yaml_parse(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
               struct json_doc **ret) {
        return yaml_parse_map(s, n, flags, limits, ret, NULL, NULL);
}
