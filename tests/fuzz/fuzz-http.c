/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: common/http's URL origin parser (http_url_origin), which judges the Location of
 * a redirect from the network before a request and its token may follow it. Properties: the
 * result is a normalised "scheme://host:port" (lower case, explicit port in 1..65535), parsing
 * it again gives itself, and nothing is written on failure. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char url[4096], o[HTTP_ORIGIN_MAX], again[HTTP_ORIGIN_MAX];
        if (size >= sizeof(url))
                return 0;
        memcpy(url, data, size);
        url[size] = '\0';

        memset(o, 'x', sizeof(o));
        if (http_url_origin(url, o, sizeof(o)) < 0) {
                for (size_t i = 0; i < sizeof(o); i++)
                        if (o[i] != 'x')
                                abort(); /* written although it failed */
                return 0;
        }
        size_t n = strnlen(o, sizeof(o));
        if (n >= sizeof(o))
                abort();
        if (strncmp(o, "https://", 8) != 0 && strncmp(o, "http://", 7) != 0)
                abort();
        for (size_t i = 0; i < n; i++)
                if ((o[i] >= 'A' && o[i] <= 'Z') || (unsigned char) o[i] <= 0x20 ||
                    (unsigned char) o[i] >= 0x7f || o[i] == '@' || (o[i] == '/' && i > 7))
                        abort();
        const char *colon = strrchr(o, ':');
        char *end = NULL;
        errno = 0;
        unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
        if (!colon || errno || !end || *end || port == 0 || port > 65535)
                abort();
        if (http_url_origin(o, again, sizeof(again)) < 0 || strcmp(o, again) != 0)
                abort(); /* normalising is idempotent */
        return 0;
}
