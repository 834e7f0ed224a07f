/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: common/vault's response decoders (untrusted bytes from the network). The first
 * byte picks the decoder; the rest is the body. Properties checked, not only "no crash". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/secmem.h"
#include "common/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s, size_t max) {
        size_t n = strnlen(s, max);
        if (n >= max)
                abort(); /* not terminated inside its buffer */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        uint8_t sel = data[0];
        const char *body = (const char *) data + 1;
        size_t len = size - 1;

        switch (sel % 4) {
        case 0: {
                struct vault_error e = {};
                vault_decode_error(400 + (sel >> 2), body, len, "secret/data/x", &e);
                check_printable(e.message, sizeof(e.message));
                check_printable(e.path, sizeof(e.path));
                if (e.error >= 0)
                        abort(); /* an error status always maps to a negative errno */
                break;
        }
        case 1: {
                struct vault_auth a;
                char *token = NULL;
                if (vault_decode_auth(body, len, &a, &token) == 0) {
                        if (!token || !token[0] || strlen(token) > VAULT_TOKEN_MAX)
                                abort();
                        for (const char *t = token; *t; t++)
                                if ((unsigned char) *t <= 0x20 || (unsigned char) *t >= 0x7f)
                                        abort();
                        if (a.lease_duration < 0)
                                abort();
                        check_printable(a.accessor, sizeof(a.accessor));
                        check_printable(a.policies, sizeof(a.policies));
                        secmem_free(token);
                }
                break;
        }
        case 2: {
                struct vault_secret *s = NULL;
                enum vault_kv_version v = (sel & 4) ? VAULT_KV_V2 : VAULT_KV_V1;
                if (vault_decode_kv(body, len, v, &s) == 0) {
                        if (s->n_fields > VAULT_MAX_FIELDS || s->version < 0)
                                abort();
                        for (size_t i = 0; i < s->n_fields; i++) {
                                const struct vault_field *f = &s->fields[i];
                                if (i > 0 && strcmp(s->fields[i - 1].name, f->name) > 0)
                                        abort(); /* sorted */
                                if (f->type == VAULT_VALUE_STRING &&
                                    f->value_len != strlen(f->value))
                                        abort();
                                if (f->value[f->value_len] != '\0')
                                        abort();
                                if (vault_secret_get(s, f->name) == NULL)
                                        abort();
                        }
                        vault_secret_free(s);
                }
                break;
        }
        case 3: {
                struct vault_kv_path p;
                if (vault_decode_mount(body, len, "secret/data/app/db", &p) == 0) {
                        if (p.version != VAULT_KV_V1 && p.version != VAULT_KV_V2)
                                abort();
                        size_t ml = strlen(p.mount);
                        if (ml == 0 || p.mount[ml - 1] != '/' ||
                            strncmp(p.data_path, p.mount, ml) != 0)
                                abort();
                }
                break;
        }
        }
        return 0;
}
