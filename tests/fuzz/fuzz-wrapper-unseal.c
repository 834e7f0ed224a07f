/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: wrapper/unseal's body parser (POST /v1/unseal, bytes from the pod network that
 * passed the client-certificate check). Properties: an accepted body gives a token of 1..4096
 * bytes of printable ASCII without spaces; a refused one gives a 4xx/5xx status and a reason. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/secmem.h"
#include "wrapper/unseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *token = NULL;
        bool wrapped = true;
        const char *reason = NULL;
        int st = unseal_parse_body((const char *) data, size, &token, &wrapped, &reason);
        if (st == 0) {
                size_t n = token ? strlen(token) : 0;
                if (n == 0 || n > UNSEAL_TOKEN_MAX || size > UNSEAL_MAX_BODY)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) token[i] <= 0x20 || (unsigned char) token[i] >= 0x7f)
                                abort();
                secmem_free(token);
        } else if (st < 400 || st > 599 || !reason || !reason[0] || token)
                abort();
        return 0;
}
