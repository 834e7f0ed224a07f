/* SPDX-License-Identifier: Apache-2.0 */
#include "init/digest.h"

#ifndef CLOUDTASER_WRAPPER_SHA256
#error "CLOUDTASER_WRAPPER_SHA256 must be defined (init/init.mk computes it from the wrapper)"
#endif

const char init_wrapper_sha256[] = CLOUDTASER_WRAPPER_SHA256;

_Static_assert(sizeof(CLOUDTASER_WRAPPER_SHA256) == 65, "the wrapper digest must be 64 hex digits");
