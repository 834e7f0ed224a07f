/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the wrapper's decoders of the broker's answers (wrapper/broker.h; untrusted: they
 * come from the network). The first byte picks: 0 an error answer (the second byte picks the
 * status), 1 a secrets answer, each path's entry then decoded as the wrapper does. Properties:
 * an error always maps to one errno of the documented table, with a printable, NUL-terminated
 * message; a decoded secret has its fields sorted by name, each value value_len bytes followed
 * by a NUL, and a non-negative version. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/brokerproto.h"
#include "wrapper/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(long status, const char *s, size_t n) {
        struct broker_error e;
        memset(&e, 0x5a, sizeof(e));
        int r = broker_decode_error(status, s, n, "/v1/secrets", &e);
        if (r != -EINVAL && r != -EKEYREJECTED && r != -EACCES && r != -ENOENT && r != -E2BIG &&
            r != -EBUSY && r != -EIO && r != -EPROTO)
                abort();
        if (e.error != r || e.status != status || !memchr(e.message, 0, sizeof(e.message)))
                abort();
        for (const char *p = e.message; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        abort();
}

static void check_secret(const struct vault_secret *s) {
        if (s->version < 0)
                abort();
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct vault_field *f = &s->fields[i];
                if (f->value[f->value_len] != 0)
                        abort();
                if (i > 0 && strcmp(s->fields[i - 1].name, f->name) > 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const long statuses[] = {400, 401, 403, 404, 413, 429, 500, 502, 503, 302, 418};
        if (size < 2)
                return 0;
        const char *s = (const char *) data + 2;
        size_t n = size - 2;
        if (data[0] % 2 == 0) {
                check_error(statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))], s, n);
                return 0;
        }
        struct brokerproto_secrets_response resp = {};
        if (brokerproto_secrets_response_parse(s, n, false, &resp) < 0)
                return 0;
        JSON_FOREACH(e, resp.secrets) {
                struct vault_secret *sec = NULL;
                if (broker_decode_secret(e, &sec) == 0) {
                        check_secret(sec);
                        vault_secret_free(sec);
                }
        }
        brokerproto_secrets_response_done(&resp);
        return 0;
}
