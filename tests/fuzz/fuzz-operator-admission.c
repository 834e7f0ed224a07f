/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: operator/admission with an untrusted AdmissionReview body. Properties:
 *   - the result is 0 (a response), -EBADMSG or -E2BIG, and the outcome is one of the four;
 *   - a response parses as JSON, is an AdmissionReview of the request's apiVersion, echoes
 *     request.uid, and says allowed true or false;
 *   - a denial has a status code 400/403/500, a non-empty printable message, and no patch;
 *   - a patch comes with patchType JSONPatch, is base64 of a JSON array of add/replace ops with
 *     paths starting with '/', and applies to request.object with the API server's semantics
 *     (no add under a missing parent);
 *   - every wrapped container of the patched object has an environment and argv that the
 *     wrapper's own configuration reader accepts (tests/lib/wrapper-env.c over
 *     wrapper/config.c): what the webhook admits, the wrapper can serve (broker mode and the
 *     sealed token mode included);
 *   - broker and sealed pods carry cloudtaser.io/broker-mac, the MAC of their namespace,
 *     service account, secret-paths and env-map under the (fake) annotation key; a pod has the
 *     cloudtaser.io/sealed label (the installation id) exactly when one of its containers starts
 *     sealed;
 *   - reviewing the patched object again is allowed with no patch (idempotence).
 * The image lookup is a deterministic fake: images containing "fail" fail with a message holding
 * control characters; others get ENTRYPOINT ["/e"] (for images of odd length) and CMD [image]
 * (the image string may hold '$', which must come back doubled in the spec). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/admission.h"
#include "tests/lib/jsonpatch-apply.h"
#include "tests/lib/wrapper-env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char **one(const char *s) {
        char **v = calloc(2, sizeof(char *));
        if (!v || !(v[0] = strdup(s)))
                abort();
        return v;
}

static int fake_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                       size_t n_names, struct registry_image_config *ret, char *err,
                       size_t errlen) {
        if (!ns || !image || n_names > ADMISSION_MAX_PULL_SECRETS)
                abort();
        if (strstr(image, "fail")) {
                (void) snprintf(err, errlen, "registry said \x1b[31mno\n");
                return -ENOENT;
        }
        struct registry_image_config c = {};
        if (strlen(image) % 2) {
                c.entrypoint = one("/e");
                c.n_entrypoint = 1;
        } else
                c.entrypoint = calloc(1, sizeof(char *));
        c.cmd = one(image);
        c.n_cmd = 1;
        if (!c.entrypoint)
                abort();
        *ret = c;
        return 0;
}

static void check(bool cond) {
        if (!cond)
                abort();
}

static const uint8_t fake_key[BROKERPROTO_KEY_SIZE] = {7, 1, 2, 3};

static int fake_mac(void *ud, const char *ns, const char *sa, const char *paths,
                    const char *env_map, char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        (void) ud;
        return brokerproto_annotation_mac(fake_key, ns, sa, paths, env_map, ret);
}

#define FAKE_INSTALLATION "0123456789abcdef"
static int fake_installation(void *ud, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        (void) ud;
        memcpy(ret, FAKE_INSTALLATION, sizeof(FAKE_INSTALLATION));
        return 0;
}

static int fake_ca(void *ud, struct buf *ret) {
        (void) ud;
        return buf_append_str(ret, "-----BEGIN CERTIFICATE-----\nMIIBbroker\n"
                                   "-----END CERTIFICATE-----\n");
}

static const char *const allowed[] = {"https://vault.example:8200", "http://127.0.0.1:8200"};
static const struct admission_config cfg = {
        .init_image = "cloudtaser-wrapper:test",
        .default_vault_address = "https://vault.example:8200",
        .default_vault_ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        .allowed_vault_addresses = allowed,
        .n_allowed = 2,
        .lookup = fake_lookup,
        .modes = {.broker_address = "https://cloudtaser-broker.cloudtaser-system.svc:8443",
                  .unseal_pods = true,
                  .keys = {.annotation_mac = fake_mac,
                           .broker_ca = fake_ca,
                           .installation = fake_installation}},
};

static const char *str_at(const struct json_value *obj, const char *key) {
        const char *v = NULL;
        (void) json_get_string(obj, key, &v);
        return v;
}

/* The properties of the modes on a patched pod (see the top). */
static void check_modes(const struct json_value *pod, const char *ns) {
        const struct json_value *meta = json_get(pod, "metadata"),
                                *ann = json_get(meta, "annotations");
        const char *method = str_at(ann, "cloudtaser.io/vault-auth-method");
        bool sealed_ctr = false;
        JSON_FOREACH(c, json_get_path(pod, "spec.containers")) {
                JSON_FOREACH(e, json_get(c, "env")) {
                        const char *n = str_at(e, "name"), *v = str_at(e, "value");
                        sealed_ctr = sealed_ctr ||
                                     (n && strcmp(n, "CLOUDTASER_UNSEAL_CA_PEM") == 0 && v && v[0]);
                }
        }
        const char *label = str_at(json_get(meta, "labels"), "cloudtaser.io/sealed");
        check(!!label == sealed_ctr && (!label || strcmp(label, FAKE_INSTALLATION) == 0));
        bool broker = method && strcmp(method, "broker") == 0;
        if (!broker && !sealed_ctr)
                return;
        const char *sa = str_at(json_get(pod, "spec"), "serviceAccountName"),
                   *paths = str_at(ann, "cloudtaser.io/secret-paths"),
                   *map = str_at(ann, "cloudtaser.io/env-map"),
                   *mac = str_at(ann, BROKERPROTO_ANNOTATION_MAC);
        char want[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        check(paths && mac);
        check(brokerproto_annotation_mac(fake_key, ns, sa && sa[0] ? sa : "default", paths,
                                         map ? map : "", want) == 0);
        check(strcmp(mac, want) == 0);
}

/* Runs one review; returns its result and, when a response, the parsed response and the
 * decoded patch (NULL when none). */
static int review(const char *body, size_t len, struct json_doc **ret_resp, char **ret_patch) {
        struct buf out = BUF_INIT(64u * 1024 * 1024, 0);
        const char *outcome = NULL;
        int r = admission_review(&cfg, body, len, &out, &outcome);

        check(outcome && (strcmp(outcome, "injected") == 0 || strcmp(outcome, "skipped") == 0 ||
                          strcmp(outcome, "denied") == 0 || strcmp(outcome, "error") == 0));
        if (r < 0) {
                check(r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
                check(strcmp(outcome, "error") == 0);
                buf_done(&out);
                return r;
        }
        struct json_doc *d = NULL;
        check(json_parse(out.data, out.len, 0, NULL, &d) == 0);
        buf_done(&out);
        const struct json_value *resp = json_get(json_doc_root(d), "response"), *st;
        const char *s, *p64;
        bool allowed_;
        check(json_get_string(json_doc_root(d), "kind", &s) == 0 &&
              strcmp(s, "AdmissionReview") == 0);
        check(json_get_bool(resp, "allowed", &allowed_) == 0);
        check(json_count(json_get(resp, "warnings")) <= 8);
        char *patch = NULL;
        if (!allowed_) {
                int64_t code;
                check(strcmp(outcome, "denied") == 0);
                check(json_get_object(resp, "status", &st) == 0);
                check(json_get_int64(st, "code", &code) == 0 &&
                      (code == 400 || code == 403 || code == 500));
                check(json_get_string(st, "message", &s) == 0 && s[0]);
                for (; *s; s++)
                        check((unsigned char) *s >= 0x20 && *s != 0x7f);
                check(!json_get(resp, "patch") && !json_get(resp, "patchType"));
        } else if (json_get_string(resp, "patch", &p64) == 0) {
                struct buf dec = BUF_INIT(64u * 1024 * 1024, 0);
                size_t n;
                check(strcmp(outcome, "injected") == 0);
                check(json_get_string(resp, "patchType", &s) == 0 && strcmp(s, "JSONPatch") == 0);
                check(base64_decode(&dec, p64, strlen(p64), false) == 0);
                check(buf_steal(&dec, &patch, &n) == 0);
                _cleanup_json_doc_ struct json_doc *pd = NULL;
                check(json_parse(patch, n, 0, NULL, &pd) == 0);
                check(json_type(json_doc_root(pd)) == JSON_ARRAY && json_count(json_doc_root(pd)));
                JSON_FOREACH(op, json_doc_root(pd)) {
                        check(json_get_string(op, "op", &s) == 0 &&
                              (strcmp(s, "add") == 0 || strcmp(s, "replace") == 0));
                        check(json_get_string(op, "path", &s) == 0 && s[0] == '/');
                        check(json_get(op, "value") != NULL);
                }
        } else
                check(!json_get(resp, "patchType") && strcmp(outcome, "injected") != 0);
        *ret_resp = d;
        *ret_patch = patch;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_doc_ struct json_doc *req = NULL, *resp = NULL, *resp2 = NULL;
        char *patch = NULL, *patch2 = NULL;
        const char *s, *uid;

        if (review((const char *) data, size, &resp, &patch) < 0)
                return 0;
        /* A response means the body was an AdmissionReview with a uid: the echo is exact. */
        check(json_parse((const char *) data, size, 0, NULL, &req) == 0);
        const struct json_value *rq = json_get(json_doc_root(req), "request");
        check(json_get_string(rq, "uid", &uid) == 0);
        check(json_get_string(json_get(json_doc_root(resp), "response"), "uid", &s) == 0 &&
              strcmp(s, uid) == 0);
        check(json_get_string(json_doc_root(req), "apiVersion", &uid) == 0 &&
              json_get_string(json_doc_root(resp), "apiVersion", &s) == 0 && strcmp(s, uid) == 0);
        if (!patch)
                return 0;

        /* The patch applies to the object, and the patched object needs no other patch. */
        struct buf obj = BUF_INIT(64u * 1024 * 1024, 0), patched = BUF_INIT(64u * 1024 * 1024, 0),
                   again = BUF_INIT(64u * 1024 * 1024, 0), op = BUF_INIT(64u * 1024 * 1024, 0);
        check(json_print(json_get(rq, "object"), &obj) == 0);
        int r = test_jsonpatch_apply(obj.data, obj.len, patch, strlen(patch), &patched);
        if (r < 0)
                fprintf(stderr, "patch does not apply (%d): %s\n", r, patch);
        check(r == 0);
        {
                _cleanup_json_doc_ struct json_doc *pd = NULL;
                char reason[512] = "";
                check(json_parse(patched.data, patched.len, 0, NULL, &pd) == 0);
                int k = test_wrapper_accepts_pod(json_doc_root(pd), NULL, reason, sizeof(reason));
                if (k < 0)
                        fprintf(stderr, "the wrapper refuses what was admitted: %s\n", reason);
                check(k == 0);
                const char *ns = str_at(rq, "namespace");
                if (!ns || !ns[0])
                        ns = str_at(json_get_path(rq, "object.metadata"), "namespace");
                check(ns != NULL);
                check_modes(json_doc_root(pd), ns);
        }
        check(buf_printf(&op, "[{\"op\":\"replace\",\"path\":\"/request/object\",\"value\":%s}]",
                         buf_cstr(&patched)) == 0);
        check(test_jsonpatch_apply((const char *) data, size, op.data, op.len, &again) == 0);
        check(review(again.data, again.len, &resp2, &patch2) == 0);
        bool ok2;
        check(json_get_bool(json_get(json_doc_root(resp2), "response"), "allowed", &ok2) == 0 &&
              ok2);
        if (patch2)
                fprintf(stderr, "second patch: %s\n", patch2);
        check(!patch2);
        buf_done(&obj);
        buf_done(&patched);
        buf_done(&again);
        buf_done(&op);
        free(patch);
        return 0;
}
