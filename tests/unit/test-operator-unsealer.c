/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of operator/unsealer's decisions, without I/O: reading a pod (names, IP, phase,
 * deletion, the unseal port from CLOUDTASER_UNSEAL_LISTEN), the checks before a token is made
 * (token auth, the annotation MAC over namespace/service account/paths/env-map, namespace
 * confinement), the per-pod policy (exactly the pod's paths, their KV v2 metadata, the accessor
 * comment) and reading the accessor back. The loop itself (list, vault, the pod's endpoint) runs
 * end to end on the real cluster and OpenBao in tests/e2e/test-real-sealed.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/unsealer.h"
#include "tests/tap.h"

static const uint8_t AUTH[32] = "0123456789abcdef0123456789abcdef";

static char *pod_json(char *buf, size_t n, const char *ns, const char *paths, const char *mac,
                      const char *extra_meta, const char *env) {
        (void) snprintf(buf, n,
                        "{\"metadata\": {\"name\": \"web-1\", \"namespace\": \"%s\", \"uid\": "
                        "\"0f0e-11aa\", %s \"annotations\": {\"cloudtaser.io/vault-auth-method\": "
                        "\"token\", \"cloudtaser.io/secret-paths\": \"%s\", "
                        "\"cloudtaser.io/env-map\": \"password=PGPASSWORD\", "
                        "\"cloudtaser.io/broker-mac\": \"%s\"}}, \"spec\": "
                        "{\"serviceAccountName\": \"app\", \"containers\": [{\"name\": \"app\", "
                        "\"env\": [%s]}]}, \"status\": {\"phase\": \"Running\", \"podIP\": "
                        "\"10.1.2.3\"}}",
                        ns, extra_meta, paths, mac, env);
        return buf;
}

int main(void) {
        uint8_t key[BROKERPROTO_KEY_SIZE];
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1], other_mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        char j[4096], reason[UNSEALER_REASON_MAX];
        struct unsealer_pod p;
        struct injection_secret *specs = NULL;
        size_t n = 0;

        is_int(brokerproto_annotation_key(AUTH, 32, key), 0, "annotation key");
        (void) brokerproto_annotation_mac(key, "shop", "app", "secret/data/shop/db",
                                          "password=PGPASSWORD", mac);
        (void) brokerproto_annotation_mac(key, "shop", "app", "secret/data/shop/db,secret/data/x/y",
                                          "password=PGPASSWORD", other_mac);

        /* Reading the pod. */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac, "", "");
                is_int(json_parse(j, strlen(j), 0, NULL, &d), 0, "pod JSON");
                is_int(unsealer_pod_parse(json_doc_root(d), &p), 0, "pod parsed");
                ok(strcmp(p.ns, "shop") == 0 && strcmp(p.name, "web-1") == 0 &&
                           strcmp(p.uid, "0f0e-11aa") == 0 && strcmp(p.sa, "app") == 0,
                   "  namespace, name, uid, service account");
                ok(p.running && !p.deleting && p.ip && strcmp(p.ip, "10.1.2.3") == 0,
                   "  running, not deleting, its IP");
                is_int(p.port, INJECTION_UNSEAL_PORT, "  port 8199 by default");
                is_int(unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)), 0,
                       "checks pass: token auth, MAC, confined");
                ok(n == 1 && strcmp(specs[0].path, "secret/data/shop/db") == 0, "  its path");

                _cleanup_buf_ struct buf pol = BUF_INIT(65536, 0);
                is_int(unsealer_policy_text(&p, specs, n, NULL, &pol), 0, "policy text");
                ok(strstr(buf_cstr(&pol), "path \"secret/data/shop/db\" {\n  capabilities = "
                                          "[\"read\"]\n}") != NULL,
                   "  read on the data path");
                ok(strstr(buf_cstr(&pol), "path \"secret/metadata/shop/db\" {\n  capabilities = "
                                          "[\"read\"]\n}") != NULL,
                   "  read on its metadata");
                ok(!strchr(buf_cstr(&pol), '*') && !strstr(buf_cstr(&pol), "list") &&
                           !strstr(buf_cstr(&pol), "update"),
                   "  no glob, no other capability");
                char acc[VAULT_ACCESSOR_MAX];
                is_int(unsealer_policy_accessor(buf_cstr(&pol), acc, sizeof(acc)), -ENOENT,
                       "  no accessor yet");
                buf_reset(&pol);
                is_int(unsealer_policy_text(&p, specs, n, "AbC123xyz", &pol), 0,
                       "policy text with the accessor");
                is_int(unsealer_policy_accessor(buf_cstr(&pol), acc, sizeof(acc)), 0,
                       "  read back");
                is_str(acc, "AbC123xyz", "  the same accessor");
                injection_secrets_free(specs, n);
                specs = NULL;
        }
        /* A KV v1 path has no metadata line. */
        {
                struct injection_secret v1 = {.path = "kv/shop/db", .all_fields = true};
                struct unsealer_pod q = {.ns = "shop", .name = "a", .uid = "u"};
                _cleanup_buf_ struct buf pol = BUF_INIT(4096, 0);
                is_int(unsealer_policy_text(&q, &v1, 1, NULL, &pol), 0, "KV v1 policy");
                ok(strstr(buf_cstr(&pol), "\"kv/shop/db\"") && !strstr(buf_cstr(&pol), "metadata"),
                   "  the path alone");
        }
        /* The port from the container's CLOUDTASER_UNSEAL_LISTEN; deletion. */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac,
                         "\"deletionTimestamp\": \"2026-01-01T00:00:00Z\",",
                         "{\"name\": \"CLOUDTASER_UNSEAL_LISTEN\", \"value\": \":19199\"}");
                ok(json_parse(j, strlen(j), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0,
                   "pod with a listen address and a deletion timestamp");
                ok(p.port == 19199 && p.deleting, "  port 19199, deleting");
        }
        /* Refusals. */
        static const struct {
                const char *ns, *paths, *mac, *why;
        } refused[] = {
                {"shop", "secret/data/shop/db,secret/data/x/y", NULL, "outside the namespace"},
                {"shop", "secret/data/shop/other", NULL, "MAC"},
                {"shop", "secret/data/shop/db", "v1:00", "MAC"},
                {"other", "secret/data/shop/db", NULL, "MAC"},
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                const char *m = refused[i].mac ? refused[i].mac : i == 0 ? other_mac : mac;
                pod_json(j, sizeof(j), refused[i].ns, refused[i].paths, m, "", "");
                reason[0] = '\0';
                ok(json_parse(j, strlen(j), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0 &&
                           unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)) ==
                                   -EPERM &&
                           strstr(reason, refused[i].why),
                   "refused %zu: %s", i, reason);
        }
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac, "", "");
                (void) json_parse(j, strlen(j), 0, NULL, &d);
                (void) unsealer_pod_parse(json_doc_root(d), &p);
                p.method = "kubernetes";
                ok(unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)) ==
                                   -EPERM &&
                           strstr(reason, "token auth"),
                   "not token auth: refused");
                p.method = "token";
                ok(unsealer_pod_check(&p, key, "kv/data/tenants/{namespace}/", &specs, &n, reason,
                                      sizeof(reason)) == -EPERM &&
                           strstr(reason, "kv/data/tenants/shop/"),
                   "another tenant template: the same path is outside it");
                uint8_t k2[BROKERPROTO_KEY_SIZE];
                memcpy(k2, key, sizeof(k2));
                k2[0] ^= 1;
                ok(unsealer_pod_check(&p, k2, NULL, &specs, &n, reason, sizeof(reason)) == -EPERM,
                   "another installation's key: refused");
        }
        /* Malformed pods. */
        static const char *const bad[] = {
                "{}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\"}}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\", \"uid\": \"x/../y\"}}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"B_\", \"uid\": \"u\"}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                ok(json_parse(bad[i], strlen(bad[i]), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == -EBADMSG,
                   "malformed pod %zu: -EBADMSG", i);
        }
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                static const char pending[] =
                        "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\", \"uid\": \"u\"}, "
                        "\"status\": {\"phase\": \"Pending\", \"podIP\": \"1.2.3.4; rm\"}}";
                ok(json_parse(pending, strlen(pending), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0 && !p.running && !p.ip,
                   "a pending pod with a garbage IP: not running, no IP");
        }
        return tap_done();
}
