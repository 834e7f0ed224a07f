/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/certs: the webhook's serving certificate when none is given: a CA and a leaf generated
 * in memory at start (the CA's key is not kept), and the CA bundle written for the
 * MutatingWebhookConfiguration's caBundle. Certificate rotation will live here.
 */
#pragma once

#include <stddef.h>

#include "common/buf.h"

/* A CA (one year) and a serving certificate (90 days) for hosts, a comma list of DNS names and
 * IP addresses (at most 16 of each; the first name is the common name). PEMs appended to
 * cert_pem, key_pem (give a BUF_SECURE buffer) and ca_pem. -errno of common/tls. */
int certs_generate_serving(const char *hosts, struct buf *cert_pem, struct buf *key_pem,
                           struct buf *ca_pem);

/* Writes data to path through path.tmp, fsync and rename (mode 0644, no symlink followed).
 * -ENAMETOOLONG, -errno. */
int certs_write_file_atomic(const char *path, const char *data, size_t len);
