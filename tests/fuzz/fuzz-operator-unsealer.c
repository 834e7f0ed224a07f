/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: operator/unsealer's reading of untrusted input. First byte 0..127: the bytes are a
 * pod object (anyone who may create pods writes most of it): parsed, checked under a fixed key,
 * and, when the checks pass, made into the pod's policy. Properties: a pod is refused unless its
 * MAC is right; the policy has one "path" block per path (two for KV v2), each naming the pod's
 * path or its metadata, with read only and no glob; the accessor comes back as written. First
 * byte 128..255: the bytes are a wrapped vault answer (vault_decode_wrap_info). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/secmem.h"
#include "common/vault.h"
#include "operator/unsealer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[BROKERPROTO_KEY_SIZE] = "fuzz-annotation-key-32-bytes...";

static size_t count(const char *s, const char *what) {
        size_t n = 0;
        for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
                n++;
        return n;
}

static void pod(const char *body, size_t len) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct unsealer_pod p;
        struct injection_secret *specs = NULL;
        size_t n = 0;
        char reason[UNSEALER_REASON_MAX], acc[VAULT_ACCESSOR_MAX];

        if (json_parse(body, len, 0, NULL, &d) < 0 || unsealer_pod_parse(json_doc_root(d), &p) < 0)
                return;
        if (!p.ns || !p.name || !p.uid || !p.sa || p.port == 0 || p.port > 65535)
                abort();
        if (unsealer_pod_check(&p, KEY, NULL, &specs, &n, reason, sizeof(reason)) < 0)
                return;
        /* Passing means the MAC is ours: only a webhook with KEY could have written it. */
        if (!p.mac || brokerproto_annotation_mac_check(KEY, p.ns, p.sa, p.paths,
                                                       p.env_map ? p.env_map : "", p.mac) < 0)
                abort();
        _cleanup_buf_ struct buf pol = BUF_INIT(1u << 20, 0);
        if (unsealer_policy_text(&p, specs, n, "acc.XYZ", &pol) == 0) {
                const char *t = buf_cstr(&pol);
                size_t blocks = count(t, "\npath \""), kv2 = 0;
                for (size_t i = 0; i < n; i++) {
                        const char *slash = strchr(specs[i].path, '/');
                        kv2 += slash && strncmp(slash, "/data/", 6) == 0;
                }
                if (blocks != n + kv2 || count(t, "capabilities = [\"read\"]") != blocks ||
                    strchr(t, '*') || unsealer_policy_accessor(t, acc, sizeof(acc)) < 0 ||
                    strcmp(acc, "acc.XYZ") != 0)
                        abort();
        }
        injection_secrets_free(specs, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *body = (const char *) data + 1;
        if (data[0] < 128) {
                pod(body, size - 1);
                return 0;
        }
        char *token = NULL, acc[VAULT_ACCESSOR_MAX];
        if (vault_decode_wrap_info(body, size - 1, &token, acc, sizeof(acc)) == 0) {
                if (!token || !token[0] || strlen(token) > VAULT_TOKEN_MAX || !acc[0] ||
                    strlen(acc) >= sizeof(acc))
                        abort();
                secmem_free(token);
        }
        return 0;
}
