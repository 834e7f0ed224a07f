/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls/wolf.h: wolfSSL for the files of the TLS module (and nobody else: lint enforces it).
 * Include it after every other header: wolfSSL's wolfmath.h defines MIN/MAX only when they are
 * not defined.
 *
 * ABI: wolfSSL's configure detects __uint128_t into its private config.h (HAVE___UINT128_T),
 * which the library is compiled with, but the installed options.h does not carry it. Without it
 * the headers pick 32-bit big-number digits while the library uses 64-bit ones, and ecc_key /
 * RsaKey / sp_int come out smaller than the library writes (an overflow of every key struct we
 * allocate). Define it the way configure found it; tls_init() also checks the sizes at run time
 * (abi_check) so a mismatch fails with -EIO instead of corrupting memory.
 */
#pragma once

#if defined(__SIZEOF_INT128__) && !defined(HAVE___UINT128_T)
#define HAVE___UINT128_T 1
#endif
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "common/tls/internal.h"

/* A private key: the wolfCrypt key struct (with its private scalar) inside one secmem
 * allocation. */
struct tls_key {
        enum tls_key_type type;
        union {
                ecc_key ecc;
                RsaKey rsa;
        } u;
};

/* Initialises wolfSSL once (and checks the ABI); every entry point that uses it calls this
 * first. 0 or -EIO. (init.c) */
int tls_init(void);

/* The start of every entry point that takes PEM: tls_check_pem_input() (bounds, -E2BIG,
 * -EINVAL), then tls_init(). (init.c) */
int tls_pem_input_begin(const char *pem, size_t len);

/* wolfSSL's own certificate parser as a gate (cert.c): wc_ParseCert's result (0 when the bytes
 * satisfy it), -E2BIG, -ENOMEM. */
int tls_wolf_parse(const uint8_t *der, size_t len, int type, int verify, void *cm);

/* wolfCrypt takes non-const key pointers even for read-only operations (key.c). */
void *tls_key_ptr(const struct tls_key *k);
int tls_key_wc_type(const struct tls_key *k);

/* verify.c */
void tls_wolf_ctx_freep(WOLFSSL_CTX **c);

/* Installs a chain and its key on a context (client.c; the server uses it too). */
int tls_ctx_install(WOLFSSL_CTX *ctx, const struct tls_cert *certs, size_t n,
                    const struct tls_key *key);
