/* SPDX-License-Identifier: Apache-2.0 */
/* yaml: see yaml.h. The only module that includes libyaml. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/yaml.h"

#define DOC_MAX_BYTES (16u * 1024u * 1024u)

struct reader {
        yaml_parser_t parser;
        struct json_doc *doc;
        unsigned max_depth;
        size_t max_nodes, nodes;
};

static int next_event(struct reader *rd, yaml_event_t *ev) {
        if (!yaml_parser_parse(&rd->parser, ev))
                return rd->parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
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
                return -EBADMSG;
        if (ev->data.scalar.tag && !tag_ok(ev->data.scalar.tag, "str"))
                return -EBADMSG;
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

static int read_node(struct reader *rd, yaml_event_t *ev, struct json_value *parent,
                     const char *key, unsigned depth);

/* The events after a MAPPING-START up to its end, into obj. */
static int read_mapping(struct reader *rd, struct json_value *obj, unsigned depth) {
        for (;;) {
                yaml_event_t kev, vev;
                int r = next_event(rd, &kev);
                if (r < 0)
                        return r;
                if (kev.type == YAML_MAPPING_END_EVENT) {
                        yaml_event_delete(&kev);
                        return 0;
                }
                if (kev.type != YAML_SCALAR_EVENT || kev.data.scalar.anchor ||
                    memchr(kev.data.scalar.value, '\0', kev.data.scalar.length) ||
                    (kev.data.scalar.tag && !tag_ok(kev.data.scalar.tag, "str"))) {
                        yaml_event_delete(&kev);
                        return -EBADMSG; /* complex, anchored or aliased keys */
                }
                const char *k = (const char *) kev.data.scalar.value;
                if (json_get(obj, k)) {
                        yaml_event_delete(&kev);
                        return -EBADMSG; /* duplicate key */
                }
                r = next_event(rd, &vev);
                if (r >= 0)
                        r = read_node(rd, &vev, obj, k, depth);
                yaml_event_delete(&vev);
                yaml_event_delete(&kev);
                if (r < 0)
                        return r;
        }
}

static int read_sequence(struct reader *rd, struct json_value *arr, unsigned depth) {
        for (;;) {
                yaml_event_t ev;
                int r = next_event(rd, &ev);
                if (r < 0)
                        return r;
                if (ev.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&ev);
                        return 0;
                }
                r = read_node(rd, &ev, arr, NULL, depth);
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
        }
}

/* ev: the node's first event (owned by the caller). */
static int read_node(struct reader *rd, yaml_event_t *ev, struct json_value *parent,
                     const char *key, unsigned depth) {
        struct json_value *c = NULL;
        int r;

        if (++rd->nodes > rd->max_nodes)
                return -E2BIG;
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                if (ev->data.scalar.anchor)
                        return -EBADMSG;
                return add_scalar(rd, parent, key, ev);
        case YAML_SEQUENCE_START_EVENT:
                if (ev->data.sequence_start.anchor || !tag_ok(ev->data.sequence_start.tag, "seq"))
                        return -EBADMSG;
                if (depth + 1 > rd->max_depth)
                        return -ELOOP;
                r = json_add_array(rd->doc, parent, key, &c);
                return r < 0 ? r : read_sequence(rd, c, depth + 1);
        case YAML_MAPPING_START_EVENT:
                if (ev->data.mapping_start.anchor || !tag_ok(ev->data.mapping_start.tag, "map"))
                        return -EBADMSG;
                if (depth + 1 > rd->max_depth)
                        return -ELOOP;
                r = json_add_object(rd->doc, parent, key, &c);
                return r < 0 ? r : read_mapping(rd, c, depth + 1);
        default:
                return -EBADMSG; /* aliases, and anything out of place */
        }
}

static int expect(struct reader *rd, yaml_event_type_t type) {
        yaml_event_t ev;
        int r = next_event(rd, &ev);
        if (r < 0)
                return r;
        r = ev.type == type ? 0 : -EBADMSG;
        yaml_event_delete(&ev);
        return r;
}

int yaml_parse(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
               struct json_doc **ret) {
        struct json_limits lim = limits ? *limits : (struct json_limits){};
        struct reader rd = {};
        yaml_event_t ev;
        int r;

        if (!s || !ret)
                return -EINVAL;
        lim.max_input = lim.max_input ?: YAML_MAX_INPUT_DEFAULT;
        rd.max_depth = lim.max_depth ?: YAML_MAX_DEPTH_DEFAULT;
        rd.max_nodes = lim.max_nodes ?: YAML_MAX_NODES_DEFAULT;
        if (n > lim.max_input)
                return -E2BIG;
        if (memchr(s, '\0', n))
                return -EBADMSG;
        r = json_doc_new(flags, DOC_MAX_BYTES, &rd.doc);
        if (r < 0)
                return r;
        if (!yaml_parser_initialize(&rd.parser)) {
                json_doc_free(rd.doc);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&rd.parser, (const unsigned char *) s, n);
        r = expect(&rd, YAML_STREAM_START_EVENT);
        if (r >= 0)
                r = expect(&rd, YAML_DOCUMENT_START_EVENT);
        if (r >= 0)
                r = next_event(&rd, &ev);
        if (r >= 0) {
                /* The root: a mapping, filled into the document's root object. */
                if (ev.type != YAML_MAPPING_START_EVENT || ev.data.mapping_start.anchor ||
                    !tag_ok(ev.data.mapping_start.tag, "map"))
                        r = -EBADMSG;
                else
                        r = read_mapping(&rd, json_doc_root(rd.doc), 1);
                yaml_event_delete(&ev);
        }
        if (r >= 0)
                r = expect(&rd, YAML_DOCUMENT_END_EVENT);
        if (r >= 0)
                r = expect(&rd, YAML_STREAM_END_EVENT); /* one document only */
        yaml_parser_delete(&rd.parser);
        if (r < 0) {
                json_doc_free(rd.doc);
                return r;
        }
        *ret = rd.doc;
        return 0;
}
