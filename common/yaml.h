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
