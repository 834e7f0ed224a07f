/* SPDX-License-Identifier: Apache-2.0 */
/*
 * digest: the SHA-256 of the stripped wrapper binary this cloudtaser-init was built with, as 64
 * lower-case hex digits. init/init.mk computes it from build/musl/bin/cloudtaser-wrapper and
 * compiles init/digest.c with -DCLOUDTASER_WRAPPER_SHA256="<hex>", so an init binary can only
 * install the exact wrapper it was released with.
 */
#pragma once

extern const char init_wrapper_sha256[];
