/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json: our own JSON parser, tree and printer (no third-party code). Parses untrusted JSON under
 * explicit limits, reads it through typed getters, and builds documents to send.
 *
 * A `struct json_doc` owns every node of one document. Two kinds:
 *   - JSON_SECURE: every byte of the tree (values, keys, strings, the temporary copy of a long
 *     number) lives in a secmem arena owned by the document (locked, guarded, not dumpable);
 *     freeing the document wipes and unmaps the arena. Nothing of it touches the heap; printed
 *     text goes straight into the caller's buffer (see json_print). Use it for anything that may
 *     hold a secret or a token (vault responses, request bodies carrying a JWT or a secret
 *     value).
 *   - otherwise ordinary heap memory, still wiped (explicit_bzero) when released.
 * Memory of a document is bounded (-E2BIG beyond): by max_bytes for a built document, by what its
 * input can need for a parsed one. Every tree is at most JSON_MAX_DEPTH_LIMIT deep, parsed or
 * built, which bounds the recursion of every function here.
 *
 * Parsing is strict RFC 8259, in one pass that builds the tree as it reads: input at most
 * limits.max_input bytes; nesting at most limits.max_depth; at most limits.max_nodes values; no
 * "\u0000" escape (unless JSON_ALLOW_NUL, in string values) and no raw NUL anywhere (C strings
 * cannot carry them: -EBADMSG rather than silent truncation); no raw control character inside
 * strings; strings are valid UTF-8 (no overlongs, no encoded surrogates; escaped surrogates must
 * pair); numbers follow the RFC grammar exactly ("01", "1.", "-.5" are refused) and fit a double
 * (1e999 is -EBADMSG); whitespace is only space, tab, CR, LF; no byte order mark; nothing but
 * whitespace after the value. Duplicate object keys are kept; getters return the FIRST one (Go's
 * encoding/json keeps the last: documents that rely on duplicates are ambiguous and are not
 * produced by Vault). Which error an input with several faults gets is that of the first one in
 * reading order (the depth and value limits included).
 *
 * Values (`const struct json_value *`) are borrowed from their document and valid until it is
 * freed. Getters never allocate. Documents are not thread-safe; distinct documents may be used
 * from distinct threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define JSON_MAX_INPUT_DEFAULT (1024u * 1024u) /* bytes of JSON text */
#define JSON_MAX_DEPTH_DEFAULT 64u             /* nesting of arrays/objects */
#define JSON_MAX_NODES_DEFAULT 100000u         /* values in one document */
#define JSON_MAX_INPUT_LIMIT (64u * 1024u * 1024u)
#define JSON_MAX_DEPTH_LIMIT 512u

enum {
        JSON_SECURE = 1u << 0, /* document memory in secmem */
        /* json_parse(): "\u0000" allowed in string values (never in keys). Such a string holds
         * its NUL bytes; json_string() gives it as a C string that stops at the first one, and
         * json_string_len() gives its whole length, NULs included. For a caller that decides
         * itself what a NUL means (a vault secret: only the fields it uses). */
        JSON_ALLOW_NUL = 1u << 1,
};

/* Limits for json_parse(); a zero field takes the default. */
struct json_limits {
        size_t max_input;
        unsigned max_depth;
        size_t max_nodes;
};

enum json_type {
        JSON_INVALID = 0,
        JSON_NULL,
        JSON_FALSE,
        JSON_TRUE,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_doc;
struct json_value; /* opaque, borrowed from a document */

/* Parses n bytes at s (need not be NUL-terminated). Returns 0 and *ret (caller owns,
 * json_doc_free()) or: -EBADMSG malformed / trailing garbage / NUL in a string; -E2BIG over
 * max_input, max_nodes or the memory bound; -ELOOP deeper than max_depth; -EINVAL bad arguments;
 * -ENOMEM. limits may be NULL for the defaults. */
int json_parse(const char *s, size_t n, unsigned flags, const struct json_limits *limits,
               struct json_doc **ret);

/* The same with the document's memory (the document itself and every value) taken from arena a
 * (common/arena.h) while its budget lasts, then from the heap: for a server's per-request
 * documents, which then cost neither malloc() nor free(). The bounds are those of json_parse()
 * / json_doc_new(). The document must be freed (json_doc_free(), which is then cheap) before the
 * arena is reset, and is wiped only as the arena is (ARENA_WIPE). a NULL: as json_parse() /
 * json_doc_new(). -EINVAL with JSON_SECURE (an arena is ordinary memory). */
struct arena;
int json_parse_arena(struct arena *a, const char *s, size_t n, unsigned flags,
                     const struct json_limits *limits, struct json_doc **ret);
int json_doc_new_arena(struct arena *a, unsigned flags, size_t max_bytes, struct json_doc **ret);

/* Creates an empty document for building, whose root is an empty object (json_doc_root()).
 * max_bytes bounds its memory (0: 1 MiB), allocation headers included (about 100 bytes per
 * value plus its strings); -E2BIG if even the root does not fit, -EINVAL, -ENOMEM. */
int json_doc_new(unsigned flags, size_t max_bytes, struct json_doc **ret);

/* Frees (and wipes) a document and all its values. Accepts NULL. Returns NULL. */
struct json_doc *json_doc_free(struct json_doc *d);

/* The root value. Never NULL for a live document. Mutable for building. */
struct json_value *json_doc_root(struct json_doc *d);

/* --- reading ------------------------------------------------------------------------------ */

/* Type of v; JSON_INVALID for NULL. */
enum json_type json_type(const struct json_value *v);
/* "invalid", "null", "false", "true", "number", "string", "array", "object". */
const char *json_type_to_string(enum json_type t);

/* Object member by key (first match, exact, case-sensitive), or NULL when v is not an object or
 * has no such key. A member whose value is JSON null IS returned (type JSON_NULL). */
const struct json_value *json_get(const struct json_value *v, const char *key);

/* Follows a dot-separated path of object keys ("data.data"); NULL if any step is missing. Keys
 * containing '.' cannot be reached this way (use json_get). */
const struct json_value *json_get_path(const struct json_value *v, const char *path);

/* Typed getters on an object member. 0 on success, -ENOENT when the key is missing OR null (or
 * obj is NULL or not an object), -EBADMSG when present with another type (or, for integers, not
 * an integer in range), -EINVAL for a NULL key. Out parameters are written only on success (and
 * may be NULL to test only). Returned strings are borrowed (NUL-terminated). */
int json_get_string(const struct json_value *obj, const char *key, const char **ret);
int json_get_int64(const struct json_value *obj, const char *key, int64_t *ret);
int json_get_bool(const struct json_value *obj, const char *key, bool *ret);
int json_get_object(const struct json_value *obj, const char *key, const struct json_value **ret);
int json_get_array(const struct json_value *obj, const char *key, const struct json_value **ret);

/* The same on a value itself: -EBADMSG if it has another type (JSON_NULL included), -ENOENT
 * for a NULL v (so json_string(json_get(o, "k"), &s) reads like the member getters).
 * json_int64: integral and |x| < 2^53 (from 2^53 on, the double cannot tell which integer the
 * text held: 9007199254740993 parses as 9007199254740992, so both are refused). */
int json_string(const struct json_value *v, const char **ret);
int json_int64(const struct json_value *v, int64_t *ret);
int json_double(const struct json_value *v, double *ret);
int json_bool(const struct json_value *v, bool *ret);

/* Length in bytes of a string value (strlen), 0 for non-strings. */
size_t json_string_len(const struct json_value *v);

/* Arrays and objects: number of elements/members (0 for scalars), and iteration in document
 * order: json_first_child() then json_next() until NULL. json_key() is the member's key when the
 * value is a member of an object, else NULL. */
size_t json_count(const struct json_value *v);
const struct json_value *json_first_child(const struct json_value *v);
const struct json_value *json_next(const struct json_value *v);
const char *json_key(const struct json_value *v);
const struct json_value *json_array_at(const struct json_value *v, size_t i); /* NULL if out */

#define JSON_FOREACH(child, parent)                                            \
        for (const struct json_value *child = json_first_child(parent); child; \
             child = json_next(child))

/* --- building ----------------------------------------------------------------------------- */
/* Each adds a member to object `obj` (key copied) or, with key == NULL, appends to array `obj`.
 * Values are copied into the document's memory (secure documents keep them in secmem).
 * -EINVAL when obj is not an object/array of d (a container of another document is refused),
 * when a key is given for an array / missing for an object, or when a key or string is not valid
 * UTF-8 (what is built always parses back); -ERANGE for an integer beyond +-(2^53 - 1) (a
 * double would round it); -ELOOP when the result would nest deeper than JSON_MAX_DEPTH_LIMIT;
 * -E2BIG past the document's memory bound (the document is left as it was), -ENOMEM. The *_ret
 * variants return the new container (borrowed; ret may be NULL) so it can be filled. A key that
 * already exists is added again (callers avoid it). */
int json_add_string(struct json_doc *d, struct json_value *obj, const char *key, const char *s);
int json_add_stringn(struct json_doc *d, struct json_value *obj, const char *key, const char *s,
                     size_t n); /* the first n bytes of s; -EINVAL if they hold a NUL */
int json_add_int64(struct json_doc *d, struct json_value *obj, const char *key, int64_t x);
int json_add_bool(struct json_doc *d, struct json_value *obj, const char *key, bool b);
int json_add_null(struct json_doc *d, struct json_value *obj, const char *key);
int json_add_object(struct json_doc *d, struct json_value *obj, const char *key,
                    struct json_value **ret);
int json_add_array(struct json_doc *d, struct json_value *obj, const char *key,
                   struct json_value **ret);
/* Deep copy of v (from any document) into d. */
int json_add_copy(struct json_doc *d, struct json_value *obj, const char *key,
                  const struct json_value *v);

/* --- output ------------------------------------------------------------------------------- */

/* Appends the compact serialisation of v to out (which should be BUF_SECURE when v may hold a
 * secret: a non-secure out is allowed, and is the caller's choice). The text is measured and
 * then written straight into out's storage: no other copy of it is ever made. Integers print
 * without a fraction, other numbers with the fewest digits (up to 17) that read back as the same
 * double, so print(parse(print(x))) == print(x). Strings are escaped as by json_append_quoted().
 * -E2BIG when out's max is exceeded (out unchanged), -EINVAL for NULL arguments, -ENOMEM. */
int json_print(const struct json_value *v, struct buf *out);

/* Appends s as a JSON string literal to out: '"' and '\' escaped, \b \f \n \r \t, other
 * control characters as \u00XX, every other byte (UTF-8 or not) as is. For log lines and small
 * hand-built bodies. -E2BIG (out unchanged), -EINVAL for NULL arguments, -ENOMEM. */
int json_append_quoted(struct buf *out, const char *s);

/* Appends s as the JSON string literal json_print() writes for it, for a response written
 * member by member: -EINVAL when s is not valid UTF-8 (json_add_string() refuses it too, so the
 * text always parses back), -E2BIG (out unchanged), -ENOMEM. */
int json_append_string(struct buf *out, const char *s);

static inline void json_doc_freep(struct json_doc **d) {
        json_doc_free(*d);
}
#define _cleanup_json_doc_ __attribute__((cleanup(json_doc_freep)))
