/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml: YAML documents read into common/json documents (the only module that includes libyaml),
 * for kubeconfig files. Untrusted input: bounded, no anchors, no aliases.
 *
 * One document whose root is a mapping. Mappings become objects (keys must be scalars and
 * unique), sequences arrays. Scalars, by YAML 1.2's core schema where it matters for the files we
 * read: a plain (unquoted) true/True/TRUE and false/False/FALSE are booleans, a plain null, Null,
 * NULL, ~ or empty scalar is null, a plain decimal integer that fits in +-(2^53 - 1) is a number;
 * everything else, and every quoted or block scalar, is a string (so "0123", 1.5 and 0x10 stay
 * the text they are). The only tags accepted are !!str (a string), !!map and !!seq.
 *
 * yaml_parse_map() also says where each node is in the text (for error messages that name a line
 * and column, and for editing a file in place: the plan file's status update) and, on failure,
 * where and why the text was refused.
 */
#pragma once

#include <stddef.h>

#include "common/json.h"

#define YAML_MAX_INPUT_DEFAULT (1024u * 1024u)
#define YAML_MAX_DEPTH_DEFAULT 64u
#define YAML_MAX_NODES_DEFAULT 100000u

/* Parses n bytes at s. limits (NULL for the defaults) bounds the input, the nesting and the
 * number of nodes; flags: JSON_SECURE keeps the document in secmem (a kubeconfig holds tokens and
 * keys). Returns 0 and *ret (caller owns: json_doc_free()), or -EBADMSG (malformed YAML, several
 * documents, a root that is not a mapping, a non-scalar or duplicate key, an anchor, alias or
 * unsupported tag, a NUL byte), -E2BIG (over max_input or max_nodes), -ELOOP (deeper than
 * max_depth), -EINVAL, -ENOMEM. */
int yaml_parse(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
               struct json_doc **ret);

/* A place in the input: offset in bytes from its start; line and column 1-based (the column
 * counts characters from the start of the line, as libyaml does). */
struct yaml_mark {
        size_t offset;
        unsigned line, column;
};

enum yaml_style {
        YAML_STYLE_PLAIN,   /* a plain scalar */
        YAML_STYLE_QUOTED,  /* a single- or double-quoted scalar */
        YAML_STYLE_LITERAL, /* a block scalar, | or > */
        YAML_STYLE_BLOCK,   /* a block mapping or sequence */
        YAML_STYLE_FLOW,    /* a flow mapping or sequence, {...} or [...] */
};

/* Where one node is: its text is [start.offset, end.offset) (a quoted scalar with its quotes, a
 * collection from its first to its last byte); key: where the key of a mapping member starts
 * (for any other node, start). */
struct yaml_node_info {
        const struct json_value *value;
        struct yaml_mark start, end, key;
        enum yaml_style style;
};

/* Why a text was refused: the position of the problem (0 when not known) and one line of
 * printable ASCII ("did not find expected key", "duplicate key 'a'"). */
struct yaml_error {
        unsigned line, column;
        char message[160];
};

struct yaml_map; /* the positions of one parsed document's nodes */

/* yaml_parse(), plus: *ret_map (optional, caller owns: yaml_map_free()) gives the position of
 * every value of *ret (the root object included); err (optional) is filled on failure. Same
 * return values. */
int yaml_parse_map(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
                   struct json_doc **ret, struct yaml_map **ret_map, struct yaml_error *err);

/* The position of v (a value of the document m was parsed with), or NULL. O(log n). */
const struct yaml_node_info *yaml_map_find(const struct yaml_map *m, const struct json_value *v);

/* Frees. Accepts NULL. Returns NULL. */
struct yaml_map *yaml_map_free(struct yaml_map *m);

static inline void yaml_map_freep(struct yaml_map **m) {
        yaml_map_free(*m);
}
#define _cleanup_yaml_map_ __attribute__((cleanup(yaml_map_freep)))
