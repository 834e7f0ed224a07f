/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-cli-protect: cli/protect on an arbitrary workload object (JSON from the API server, which
 * holds what anyone allowed to edit the workload wrote). Properties: the rollout judgement gives
 * one of its three answers with a summary; the patch is built or refused with a documented error
 * (a reason for -EINVAL, nothing written); a built patch is a JSON array of operations, each with
 * an "op" of add, remove, test or replace and a "path" starting with '/', that begins with the
 * test of the object's resourceVersion, and each remove follows a test of the same path; the
 * rollback from the object's record (cluster data too) is built or refused as documented, and a
 * built one tests the record's generation first, touches nothing outside /spec/template/ and
 * ends with the removal of the record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plan.h"
#include "cli/protect.h"
#include "common/buf.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "fuzz-cli-protect: %s:%d: check failed: %s\n", __FILE__, \
                                __LINE__, #cond);                                                \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_doc *d = NULL;
        if (size > 65536 || json_parse((const char *) data, size, 0, NULL, &d) < 0)
                return 0;
        const struct json_value *obj = json_doc_root(d);

        char summary[256];
        for (int k = 0; k < _PLAN_KIND_MAX; k++) {
                enum protect_rollout j =
                        protect_rollout_judge((enum plan_kind) k, obj, summary, sizeof(summary));
                CHECK(j == PROTECT_ROLLOUT_PROGRESSING || j == PROTECT_ROLLOUT_DONE ||
                      j == PROTECT_ROLLOUT_FAILED);
                CHECK(summary[0] != '\0');
        }
        (void) protect_already_patched(obj);

        struct plan_field f1 = {.field = (char *) "password", .env = (char *) "PGPASSWORD"};
        struct plan_field f2 = {.field = (char *) "token", .env = (char *) "TOKEN"};
        struct plan_secret s[] = {
                {.source = (char *) "secretKeyRef:db",
                 .vault_path = (char *) "secret/data/c/ns/db",
                 .fields = &f1,
                 .n_fields = 1},
                {.source = (char *) "envFrom:api", .vault_path = (char *) "secret/data/c/ns/api"},
                {.source = (char *) "envFrom:api:prefix=X_",
                 .vault_path = (char *) "secret/data/c/ns/api",
                 .fields = &f2,
                 .n_fields = 1},
        };
        struct plan_workload w = {.kind = PLAN_DEPLOYMENT,
                                  .name = (char *) "w",
                                  .replicas = 1,
                                  .secrets = s,
                                  .n_secrets = 3};
        struct protect_settings st = {.vault_address = "https://v:8200", .vault_role = "r"};
        struct buf out = BUF_INIT(16u * 1024u * 1024u, 0);
        char reason[256] = "";
        size_t removed = 12345;
        int r = protect_build_patch(obj, &w, &st, &out, &removed, reason, sizeof(reason));
        CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
        if (r < 0) {
                CHECK(out.len == 0 && removed == 12345);
                CHECK(r != -EINVAL || reason[0] != '\0');
        } else {
                struct json_doc *p = NULL;
                CHECK(json_parse(buf_cstr(&out), out.len, 0, NULL, &p) == 0);
                const struct json_value *ops = json_doc_root(p);
                CHECK(json_type(ops) == JSON_ARRAY && json_count(ops) >= 1);
                const char *prev_op = NULL, *prev_path = NULL;
                size_t i = 0, removes = 0;
                JSON_FOREACH(o, ops) {
                        const char *op = NULL, *path = NULL;
                        CHECK(json_get_string(o, "op", &op) == 0);
                        CHECK(json_get_string(o, "path", &path) == 0 && path[0] == '/');
                        CHECK(strcmp(op, "add") == 0 || strcmp(op, "remove") == 0 ||
                              strcmp(op, "test") == 0 || strcmp(op, "replace") == 0);
                        if (i == 0)
                                CHECK(strcmp(op, "test") == 0 &&
                                      strcmp(path, "/metadata/resourceVersion") == 0);
                        if (strcmp(op, "remove") == 0 &&
                            strncmp(path, "/spec/template/spec/", 20) == 0) {
                                CHECK(prev_op && strcmp(prev_op, "test") == 0 &&
                                      strcmp(prev_path, path) == 0);
                                removes++;
                        }
                        prev_op = op;
                        prev_path = path;
                        i++;
                }
                CHECK(removes == removed);
                json_doc_free(p);
        }
        buf_done(&out);

        struct buf back = BUF_INIT(16u * 1024u * 1024u, 0);
        reason[0] = '\0';
        r = protect_build_rollback(obj, &back, reason, sizeof(reason));
        CHECK(r == 0 || r == -ENOENT || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
        if (r < 0) {
                CHECK(back.len == 0);
                CHECK(r != -EINVAL || reason[0] != '\0');
        } else {
                struct json_doc *p = NULL;
                CHECK(json_parse(buf_cstr(&back), back.len, 0, NULL, &p) == 0);
                const struct json_value *ops = json_doc_root(p);
                size_t n = json_count(ops), i = 0;
                CHECK(json_type(ops) == JSON_ARRAY && n >= 2);
                JSON_FOREACH(o, ops) {
                        const char *op = NULL, *path = NULL;
                        CHECK(json_get_string(o, "op", &op) == 0);
                        CHECK(json_get_string(o, "path", &path) == 0);
                        if (i == 0)
                                CHECK(strcmp(op, "test") == 0 &&
                                      strcmp(path, "/metadata/generation") == 0);
                        else if (i == n - 1)
                                CHECK(strcmp(op, "remove") == 0 &&
                                      strcmp(path, "/metadata/annotations/"
                                                   "cloudtaser.io~1protect-rollback") == 0);
                        else
                                CHECK(strncmp(path, "/spec/template/", 15) == 0 &&
                                      strcmp(op, "test") != 0);
                        i++;
                }
                json_doc_free(p);
        }
        buf_done(&back);
        json_doc_free(d);
        return 0;
}
