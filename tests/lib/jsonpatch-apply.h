/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonpatch-apply.h: an RFC 6902 JSON patch applier for tests (the operator's patches, the
 * stand-in apiserver), with the semantics of gopkg.in/evanphx/json-patch.v4 that kube-apiserver
 * uses for admission patches:
 *   - "add" needs an existing parent (adding "/metadata/annotations/x" to a pod without
 *     annotations fails); on an existing object member it replaces the value; on an array it
 *     inserts before the index, which may be the length, or "-" to append;
 *   - "replace", "remove" and "test" need an existing target;
 *   - paths are RFC 6901 pointers ("~1" is '/', "~0" is '~'); array indices are decimal without
 *     leading zeros.
 * "move" and "copy", and operations on the whole document (path ""), are not supported. The
 * document's root must be an object. Objects are compared regardless of member order in "test".
 */
#pragma once

#include <stddef.h>

#include "common/buf.h"

/* Applies patch to doc (both JSON texts) and appends the result's compact JSON text to out.
 * Returns 0; -EBADMSG for a malformed document, patch, operation or pointer; -ENOENT for a
 * missing target or parent; -ERANGE for an array index out of range; -ECANCELED for a failed
 * "test"; -ENOTSUP for move/copy or the root; -E2BIG, -ENOMEM. out is unchanged on failure. */
int test_jsonpatch_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
                         struct buf *out);
