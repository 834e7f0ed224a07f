/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of operator/annotations' value parsers and operator/jsonpatch's building and path
 * escaping, and of the test helper that applies patches with the API server's semantics (which
 * test-operator-admission relies on to prove "never add under a missing parent"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/strv.h"
#include "operator/annotations.h"
#include "operator/jsonpatch.h"
#include "tests/lib/jsonpatch-apply.h"
#include "tests/tap.h"

static void test_addresses(void) {
        static const struct {
                const char *in, *canon; /* canon NULL: refused */
        } t[] = {
                {"https://vault.example:8200", "https://vault.example:8200"},
                {"HTTPS://Vault.EXAMPLE:8200/", "https://vault.example:8200"},
                {"https://vault.example:443", "https://vault.example"},
                {"http://vault.example:80//", "http://vault.example"},
                {"http://127.0.0.1:8200", "http://127.0.0.1:8200"},
                {"https://[fd00::1]:8200/prefix/", "https://[fd00::1]:8200/prefix"},
                {"https://vault.example/Path", "https://vault.example/Path"},
                {"vault.example:8200", NULL},
                {"ftp://vault.example", NULL},
                {"https://", NULL},
                {"https://user:pw@vault.example", NULL},
                {"https://user@vault.example", NULL},
                {"https://vault.example:0", NULL},
                {"https://vault.example:65536", NULL},
                {"https://vault.example:8200?x=1", NULL},
                {"https://vault.example#f", NULL},
                {"https://vault.example/a b", NULL},
                {"https://-vault.example", NULL},
                {"https://[fd00::1", NULL},
                {"https://vault\n.example", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char out[600] = "", err[256] = "";
                int r = annotation_vault_address_canon(t[i].in, out, sizeof(out), err, sizeof(err));
                if (t[i].canon)
                        ok(r == 0 && strcmp(out, t[i].canon) == 0, "address #%zu -> %s (%s)", i,
                           t[i].canon, out);
                else
                        ok(r == -EINVAL && strstr(err, "cloudtaser.io/vault-address") &&
                                   !strchr(err, '\n'),
                           "address #%zu refused: %s", i, err);
        }
        char big[700];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big, "https://", 8);
        char out[600], err[256];
        is_int(annotation_vault_address_canon(big, out, sizeof(out), err, sizeof(err)), -EINVAL,
               "an address over the limit is refused");
        is_int(annotation_vault_address_canon("https://vault.example:8200", out, 8, NULL, 0),
               -E2BIG, "an output buffer too small: -E2BIG");
}

static void test_containers(void) {
        static const struct {
                const char *in;
                size_t n; /* 0: refused */
                const char *joined;
        } t[] = {
                {"app", 1, "app"},
                {" app , side ", 2, "app|side"},
                {"app,app,side,", 2, "app|side"},
                {"a-1,b", 2, "a-1|b"},
                {"", 0, NULL},
                {",", 0, NULL},
                {"app,,side", 0, NULL},
                {"App", 0, NULL},
                {"-app", 0, NULL},
                {"app-", 0, NULL},
                {"app_x", 0, NULL},
                {"a\nb", 0, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char **v = NULL, err[256] = "", joined[256] = "";
                size_t n = 0;
                int r = annotation_parse_containers(t[i].in, &v, &n, err, sizeof(err));
                if (t[i].n) {
                        for (size_t j = 0; r == 0 && j < n; j++) {
                                size_t l = strlen(joined);
                                (void) snprintf(joined + l, sizeof(joined) - l, "%s%s",
                                                j ? "|" : "", v[j]);
                        }
                        ok(r == 0 && n == t[i].n && v[n] == NULL &&
                                   strcmp(joined, t[i].joined) == 0,
                           "containers #%zu: %s", i, joined);
                        (void) strv_free(v);
                } else
                        ok(r == -EINVAL && strstr(err, "cloudtaser.io/containers"),
                           "containers #%zu refused: %s", i, err);
        }
        struct buf many = BUF_INIT(1 << 16, 0);
        for (unsigned i = 0; i <= ANNOTATION_MAX_CONTAINERS; i++)
                (void) buf_printf(&many, "%sc%u", i ? "," : "", i);
        char **v = NULL, err[256] = "";
        size_t n = 0;
        ok(annotation_parse_containers(buf_cstr(&many), &v, &n, err, sizeof(err)) == -EINVAL &&
                   strstr(err, "more than"),
           "too many container names refused");
        buf_done(&many);
}

static void test_command(void) {
        static const struct {
                const char *in;
                size_t n; /* 0: refused */
        } t[] = {
                {"[\"/app\"]", 1},
                {"[\"/bin/sh\",\"-c\",\"echo $HOME\\n\",\"\"]", 4},
                {"[]", 0},
                {"[\"\"]", 0},
                {"[\"/a\",1]", 0},
                {"[[\"/a\"]]", 0},
                {"\"/a\"", 0},
                {"/a b", 0},
                {"[\"/a\"] x", 0},
                {"[\"/a\\u0001\"]", 0},
                {"[\"/a\\u0000\"]", 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char **v = NULL, err[256] = "";
                size_t n = 0;
                int r = annotation_parse_command(t[i].in, &v, &n, err, sizeof(err));
                if (t[i].n) {
                        ok(r == 0 && n == t[i].n && v[n] == NULL, "command #%zu: %zu arguments", i,
                           n);
                        (void) strv_free(v);
                } else
                        ok(r == -EINVAL && strstr(err, "cloudtaser.io/command"),
                           "command #%zu refused: %s", i, err);
        }
        struct buf many = BUF_INIT(1 << 20, 0);
        (void) buf_append_str(&many, "[\"/a\"");
        for (unsigned i = 0; i < ANNOTATION_COMMAND_MAX_ARGS; i++)
                (void) buf_append_str(&many, ",\"x\"");
        (void) buf_append_str(&many, "]");
        char **v = NULL, err[256] = "";
        size_t n = 0;
        ok(annotation_parse_command(buf_cstr(&many), &v, &n, err, sizeof(err)) == -EINVAL &&
                   strstr(err, "too long"),
           "too many arguments refused: %s", err);
        buf_done(&many);
}

static void test_patch_building(void) {
        struct jsonpatch p = {};
        struct buf path = BUF_INIT(256, 0), out = BUF_INIT(1 << 16, 0);
        struct json_value *op;

        ok(jsonpatch_init(&p, NULL, 0) == 0, "patch: init");
        (void) buf_append_str(&path, "/metadata/annotations");
        ok(jsonpatch_path_push(&path, "cloudtaser.io/a~b") == 0 &&
                   strcmp(buf_cstr(&path), "/metadata/annotations/cloudtaser.io~1a~0b") == 0,
           "path segments escaped as RFC 6901 says: %s", buf_cstr(&path));
        struct buf tiny = BUF_INIT(6, 0);
        (void) buf_append_str(&tiny, "/ab");
        ok(jsonpatch_path_push(&tiny, "x/y") == -E2BIG && strcmp(buf_cstr(&tiny), "/ab") == 0,
           "a path over its buffer: -E2BIG, unchanged");
        buf_done(&tiny);
        ok(jsonpatch_op_string(&p, JSONPATCH_ADD, buf_cstr(&path), "v") == 0 &&
                   jsonpatch_op(&p, JSONPATCH_REPLACE, "/spec/x", &op) == 0 &&
                   json_add_int64(p.doc, op, "value", 3) == 0 &&
                   jsonpatch_op_string(&p, JSONPATCH_TEST, "/spec/x", "3") == 0,
           "patch: three operations");
        is_int(jsonpatch_op_string(&p, JSONPATCH_ADD, "spec", "x"), -EINVAL,
               "a path not starting with '/' is refused");
        ok(jsonpatch_print(&p, &out) == 0 &&
                   strcmp(buf_cstr(&out),
                          "[{\"op\":\"add\",\"path\":\"/metadata/annotations/cloudtaser.io~1a~0b\","
                          "\"value\":\"v\"},{\"op\":\"replace\",\"path\":\"/spec/x\",\"value\":3},{"
                          "\"op\":\"test\",\"path\":\"/spec/x\",\"value\":\"3\"}]") == 0,
           "patch text: %s", buf_cstr(&out));
        jsonpatch_done(&p);
        jsonpatch_done(&p);
        buf_done(&path);
        buf_done(&out);
}

static void test_applier(void) {
        static const char doc[] = "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"a\":[1,2]}}";
        static const struct {
                const char *patch, *want; /* want NULL: fails with err */
                int err;
        } t[] = {
                {"[{\"op\":\"add\",\"path\":\"/metadata/annotations/x\",\"value\":\"1\"}]", NULL,
                 -ENOENT},
                {"[{\"op\":\"add\",\"path\":\"/metadata/"
                 "annotations\",\"value\":{}},{\"op\":\"add\","
                 "\"path\":\"/metadata/annotations/a~1b\",\"value\":\"1\"}]",
                 "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"a/"
                 "b\":\"1\"}},\"spec\":{\"a\":[1,"
                 "2]}}",
                 0},
                {"[{\"op\":\"add\",\"path\":\"/spec/a/0\",\"value\":0},{\"op\":\"add\",\"path\":"
                 "\"/spec/a/-\",\"value\":3},{\"op\":\"add\",\"path\":\"/spec/a/4\",\"value\":4}]",
                 "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"a\":[0,1,2,3,4]}}", 0},
                {"[{\"op\":\"add\",\"path\":\"/spec/a/3\",\"value\":0}]", NULL, -ERANGE},
                {"[{\"op\":\"replace\",\"path\":\"/spec/a/2\",\"value\":0}]", NULL, -ERANGE},
                {"[{\"op\":\"add\",\"path\":\"/spec/a/01\",\"value\":0}]", NULL, -EBADMSG},
                {"[{\"op\":\"replace\",\"path\":\"/spec/b\",\"value\":0}]", NULL, -ENOENT},
                {"[{\"op\":\"replace\",\"path\":\"/spec/a/1\",\"value\":{\"x\":[]}},{\"op\":"
                 "\"remove\",\"path\":\"/metadata/name\"}]",
                 "{\"metadata\":{},\"spec\":{\"a\":[1,{\"x\":[]}]}}", 0},
                {"[{\"op\":\"test\",\"path\":\"/spec/a\",\"value\":[1,2]}]", doc, 0},
                {"[{\"op\":\"test\",\"path\":\"/spec\",\"value\":{\"a\":[2,1]}}]", NULL,
                 -ECANCELED},
                {"[{\"op\":\"add\",\"path\":\"/spec/a/0/x\",\"value\":1}]", NULL, -ENOENT},
                {"[{\"op\":\"move\",\"from\":\"/spec\",\"path\":\"/x\"}]", NULL, -ENOTSUP},
                {"[{\"op\":\"add\",\"path\":\"/x~2\",\"value\":1}]", NULL, -EBADMSG},
                {"{}", NULL, -EBADMSG},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct buf out = BUF_INIT(1 << 16, 0);
                int r = test_jsonpatch_apply(doc, strlen(doc), t[i].patch, strlen(t[i].patch),
                                             &out);
                if (t[i].want)
                        ok(r == 0 && strcmp(buf_cstr(&out), t[i].want) == 0, "applier #%zu: %s", i,
                           buf_cstr(&out));
                else
                        ok(r == t[i].err && out.len == 0, "applier #%zu fails with %d (got %d)", i,
                           t[i].err, r);
                buf_done(&out);
        }
}

/* annotations_parse: a pod that does not opt in is not looked at; '$' refused where Kubernetes
 * would expand it. */
static void test_parse(void) {
        static char huge[ANNOTATION_VALUE_MAX + 100];
        memset(huge, 'a', sizeof(huge) - 1);
        static const struct {
                const char *json; /* "%s": the huge value */
                int rc;
                bool inject;
                const char *err;
        } t[] = {
                {"{}", 0, false, NULL},
                {"{\"cloudtaser.io/vault-role\":\"%s\"}", 0, false, NULL},
                {"{\"cloudtaser.io/inject\":\"false\",\"cloudtaser.io/secret-paths\":\"%s\"}", 0,
                 false, NULL},
                {"{\"cloudtaser.io/inject\":\"false\",\"cloudtaser.io/delivery\":1}", 0, false,
                 NULL},
                {"{\"cloudtaser.io/delivery\":\"x\",\"cloudtaser.io/delivery\":\"y\"}", 0, false,
                 NULL},
                {"{\"cloudtaser.io/inject\":\"false\",\"cloudtaser.io/vault-address\":\"ftp://x\"}",
                 0, false, NULL},
                {"{\"cloudtaser.io/inject\":\"yes\"}", -EINVAL, false, "cloudtaser.io/inject"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/inject\":\"false\"}", -EINVAL,
                 false, "given twice"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"%s\"}", -EINVAL,
                 false, "longer than"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"secret/data/a\"}",
                 0, true, NULL},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"secret/data/$(HOME)\"}",
                 -EINVAL, false, "secret-paths must not contain '$'"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"secret/data/a$$b\"}",
                 -EINVAL, false, "secret-paths must not contain '$'"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"secret/data/a\",\"cloudtaser.io/env-map\":"
                 "\"pw=$(PGPASSWORD)\"}",
                 -EINVAL, false, "env-map must not contain '$'"},
                /* An empty value is no value (the wrapper reads an empty variable as unset). */
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"\"}",
                 -EINVAL, false, "cloudtaser.io/secret-paths is required"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"a\",\"cloudtaser.io/delivery\":\"\"}",
                 0, true, NULL},
                /* Each contract row's annotation through the row's parser. */
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"a\",\"cloudtaser.io/vault-auth-method\":"
                 "\"broker\"}",
                 0, true, NULL},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"a\",\"cloudtaser.io/vault-auth-method\":"
                 "\"Broker\"}",
                 -EINVAL, false, "cloudtaser.io/vault-auth-method must be"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"secret//x\"}",
                 -EINVAL, false, "cloudtaser.io/secret-paths: path #1 has a segment"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"a\",\"cloudtaser.io/vault-namespace\":"
                 "\"team-a\"}",
                 0, true, NULL},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r\","
                 "\"cloudtaser.io/secret-paths\":\"a\",\"cloudtaser.io/vault-namespace\":"
                 "\"../x\"}",
                 -EINVAL, false, "cloudtaser.io/vault-namespace must be"},
                {"{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"r r\","
                 "\"cloudtaser.io/secret-paths\":\"a\"}",
                 -EINVAL, false, "cloudtaser.io/vault-role must be 1 to 128"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                size_t n = strlen(t[i].json) + sizeof(huge);
                char *text = malloc(n), err[512] = "";
                struct json_doc *d = NULL;
                struct annotations a;
                if (!text)
                        abort();
                const char *at = strstr(t[i].json, "%s");
                if (at)
                        (void) snprintf(text, n, "%.*s%s%s", (int) (at - t[i].json), t[i].json,
                                        huge, at + 2);
                else
                        (void) snprintf(text, n, "%s", t[i].json);
                if (json_parse(text, strlen(text), 0, NULL, &d) < 0) {
                        ok(false, "parse #%zu: JSON", i);
                        free(text);
                        continue;
                }
                int r = annotations_parse(json_doc_root(d), &a, err, sizeof(err));
                ok(r == t[i].rc && a.inject == t[i].inject && (!t[i].err || strstr(err, t[i].err)),
                   "annotations #%zu: %d, inject %d (%s)", i, r, a.inject, err);
                annotations_done(&a);
                json_doc_free(d);
                free(text);
        }
}

int main(void) {
        test_parse();
        test_addresses();
        test_containers();
        test_command();
        test_patch_building();
        test_applier();
        return tap_done();
}
