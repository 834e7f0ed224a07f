/* SPDX-License-Identifier: Apache-2.0 */
/* tls/init.c: wolfSSL initialisation and the ABI check. See common/tls/cert.h,
 * common/tls/transport.h and docs/tls.md. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/tls/internal.h"
#include "common/tls/wolf.h"

/* ---- library init ------------------------------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -EIO;

/* The library initialises exactly sizeof(struct) bytes of its own view of a key struct: place a
 * key in a larger buffer filled with a pattern and check that nothing past our sizeof changed. */
static bool abi_check(void) {
        enum { SLACK = 512 };
        size_t n = MAX(sizeof(RsaKey), sizeof(ecc_key)) + SLACK;
        uint8_t *p = malloc(n);
        bool good = true;

        if (!p)
                return false;
        memset(p, 0xa5, n);
        if (wc_InitRsaKey_ex((RsaKey *) p, NULL, INVALID_DEVID) != 0)
                good = false;
        else
                (void) wc_FreeRsaKey((RsaKey *) p);
        for (size_t i = sizeof(RsaKey); good && i < n; i++)
                good = p[i] == 0xa5;
        memset(p, 0xa5, n);
        if (good && wc_ecc_init_ex((ecc_key *) p, NULL, INVALID_DEVID) != 0)
                good = false;
        else if (good)
                (void) wc_ecc_free((ecc_key *) p);
        for (size_t i = sizeof(ecc_key); good && i < n; i++)
                good = p[i] == 0xa5;
        free(p);
        return good;
}

static void do_init(void) {
        if (wolfSSL_Init() != WOLFSSL_SUCCESS || !abi_check())
                init_result = -EIO;
        else
                init_result = 0;
}

int tls_init(void) {
        (void) pthread_once(&init_once, do_init);
        return init_result;
}

int tls_pem_input_begin(const char *pem, size_t len) {
        int r = tls_check_pem_input(pem, len);
        return r < 0 ? r : tls_init();
}
