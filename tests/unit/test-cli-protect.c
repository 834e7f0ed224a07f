/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cli/protect: the JSON patch of a workload, table-driven over pod templates
 * (env secretKeyRef entries removed only where the plan maps them, envFrom with and without a
 * prefix, init containers, volumes left alone, a template without labels or annotations), applied
 * with an RFC 6902 applier of the apiserver's semantics; the annotations' exact text, read back by
 * the webhook's own parsers (common/injection); the tests that make a concurrently edited
 * workload's patch fail; the rollback patch; and the rollout judgement. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plan.h"
#include "cli/protect.h"
#include "common/buf.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "tests/lib/jsonpatch-apply.h"
#include "tests/tap.h"

static const char plan_text[] =
        "apiVersion: cloudtaser.io/v1\n"
        "kind: MigrationPlan\n"
        "metadata: {name: t, cluster: c, createdAt: '2026-01-01T00:00:00Z', createdBy: t}\n"
        "tenants:\n"
        "- name: shop\n"
        "  namespace: shop\n"
        "  workloads:\n"
        "  - kind: Deployment\n" /* 0: one secretKeyRef */
        "    name: web\n"
        "    replicas: 1\n"
        "    status: pending\n"
        "    secrets:\n"
        "    - source: secretKeyRef:db\n"
        "      vaultPath: secret/data/c/shop/db\n"
        "      fields: {password: DB_PASSWORD, user: DB_USER}\n"
        "  - kind: Deployment\n" /* 1: envFrom, prefixed envFrom, init container */
        "    name: api\n"
        "    replicas: 2\n"
        "    status: pending\n"
        "    secrets:\n"
        "    - source: envFrom:api\n"
        "      vaultPath: secret/data/c/shop/api\n"
        "      fields: {token: token}\n"
        "    - source: envFrom:tls:prefix=TLS_\n"
        "      vaultPath: secret/data/c/shop/tls\n"
        "      fields: {}\n"
        "    - source: secretKeyRef:db\n"
        "      vaultPath: secret/data/c/shop/db\n"
        "      fields: {password: INIT_PW}\n"
        "  - kind: StatefulSet\n" /* 2: a volume, kept */
        "    name: files\n"
        "    replicas: 1\n"
        "    status: pending\n"
        "    secrets:\n"
        "    - source: volume:certs:/etc/certs\n"
        "      vaultPath: secret/data/c/shop/certs\n"
        "      fields: {tls.crt: TLS_CRT}\n";

#define OBJ(meta, podspec)                                                                 \
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"shop\",\"resourceVersion\":\"42\"," \
        "\"generation\":3},\"spec\":{\"replicas\":1,\"template\":{" meta "\"spec\":" podspec "}}}"

static const struct patch_case {
        const char *what;
        size_t workload;
        const char *obj;
        size_t removed;
        const char *annotations; /* the template's annotations after the patch */
        const char *labels;
        const char *containers; /* spec.template.spec.containers after */
        const char *init;       /* initContainers after, or NULL when none */
        const char *volumes;    /* volumes after, or NULL */
} patch_cases[] = {
        {"secretKeyRef entries mapped in the plan are removed, the others kept", 0,
         OBJ("\"metadata\":{\"labels\":{\"app\":\"web\"},\"annotations\":{\"a\":\"b\"}},",
             "{\"containers\":[{\"name\":\"app\",\"env\":["
             "{\"name\":\"PLAIN\",\"value\":\"v\"},"
             "{\"name\":\"DB_PASSWORD\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":"
             "\"password\"}}},"
             "{\"name\":\"OTHER\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"other\",\"key\":"
             "\"password\"}}},"
             "{\"name\":\"DB_USER\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":"
             "\"user\"}}},"
             "{\"name\":\"WRONG\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":"
             "\"password\"}}}]}]}"),
         2,
         "{\"a\":\"b\",\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-address\":"
         "\"https://bao.example:8200\",\"cloudtaser.io/vault-role\":\"cloudtaser-tenant-shop\","
         "\"cloudtaser.io/secret-paths\":\"secret/data/c/shop/db\",\"cloudtaser.io/env-map\":"
         "\"password=DB_PASSWORD,user=DB_USER\"}",
         "{\"app\":\"web\",\"cloudtaser.io/inject\":\"true\"}",
         "[{\"name\":\"app\",\"env\":[{\"name\":\"PLAIN\",\"value\":\"v\"},"
         "{\"name\":\"OTHER\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"other\",\"key\":"
         "\"password\"}}},"
         "{\"name\":\"WRONG\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":"
         "\"password\"}}}]}]",
         NULL, NULL},
        {"envFrom (with the prefix the plan names), init containers; no labels or annotations "
         "before",
         1,
         OBJ("\"metadata\":{},",
             "{\"initContainers\":[{\"name\":\"migrate\",\"env\":[{\"name\":\"INIT_PW\","
             "\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":\"password\"}}}],"
             "\"envFrom\":[{\"secretRef\":{\"name\":\"api\"}}]}],"
             "\"containers\":[{\"name\":\"a\",\"envFrom\":[{\"configMapRef\":{\"name\":\"cm\"}},"
             "{\"secretRef\":{\"name\":\"api\"}},{\"prefix\":\"TLS_\",\"secretRef\":{\"name\":"
             "\"tls\"}},{\"prefix\":\"X_\",\"secretRef\":{\"name\":\"tls\"}}]},"
             "{\"name\":\"b\",\"envFrom\":[{\"secretRef\":{\"name\":\"tls\"}}]}]}"),
         4,
         "{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-address\":"
         "\"https://bao.example:8200\",\"cloudtaser.io/vault-role\":\"cloudtaser-tenant-shop\","
         "\"cloudtaser.io/secret-paths\":\"secret/data/c/shop/api,secret/data/c/shop/tls,"
         "secret/data/c/shop/db\",\"cloudtaser.io/env-map\":\"token=token;;password=INIT_PW\"}",
         "{\"cloudtaser.io/inject\":\"true\"}",
         "[{\"name\":\"a\",\"envFrom\":[{\"configMapRef\":{\"name\":\"cm\"}},"
         "{\"prefix\":\"X_\",\"secretRef\":{\"name\":\"tls\"}}]},"
         "{\"name\":\"b\",\"envFrom\":[{\"secretRef\":{\"name\":\"tls\"}}]}]",
         "[{\"name\":\"migrate\",\"env\":[],\"envFrom\":[]}]", NULL},
        {"a secret volume is left alone; no template metadata at all before", 2,
         OBJ("", "{\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"name\":\"certs\","
                 "\"mountPath\":\"/etc/certs\"}]}],\"volumes\":[{\"name\":\"certs\",\"secret\":"
                 "{\"secretName\":\"certs\"}}]}"),
         0,
         "{\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-address\":"
         "\"https://bao.example:8200\",\"cloudtaser.io/vault-role\":\"cloudtaser-tenant-shop\","
         "\"cloudtaser.io/secret-paths\":\"secret/data/c/shop/certs\",\"cloudtaser.io/env-map\":"
         "\"tls.crt=TLS_CRT\"}",
         "{\"cloudtaser.io/inject\":\"true\"}",
         "[{\"name\":\"a\",\"volumeMounts\":[{\"name\":\"certs\",\"mountPath\":\"/etc/certs\"}]}]",
         NULL, "[{\"name\":\"certs\",\"secret\":{\"secretName\":\"certs\"}}]"},
};

static char *print_at(const struct json_value *root, const char *path) {
        const struct json_value *v = json_get_path(root, path);
        struct buf b = BUF_INIT(1 << 20, 0);
        char *s = NULL;
        size_t n;
        if (!v)
                return NULL;
        if (json_print(v, &b) < 0 || buf_steal(&b, &s, &n) < 0)
                buf_done(&b);
        return s;
}

/* What the webhook does with the annotations: the wrapper's reader over them. */
static const char *ann_getenv(const char *name, void *userdata) {
        const struct json_value *ann = userdata;
        const struct injection_variable *row = injection_variable_by_name(name);
        const char *v = NULL;
        if (row && row->annotation && json_get_string(ann, row->annotation, &v) == 0)
                return v;
        return NULL;
}

static void test_patches(const struct plan *p) {
        const struct protect_settings s = {.vault_address = "https://bao.example:8200",
                                           .vault_role = "cloudtaser-tenant-shop"};
        for (size_t i = 0; i < ELEMENTSOF(patch_cases); i++) {
                const struct patch_case *c = &patch_cases[i];
                const struct plan_workload *w = &p->tenants[0].workloads[c->workload];
                _cleanup_json_doc_ struct json_doc *obj = NULL, *res = NULL;
                _cleanup_buf_ struct buf patch = BUF_INIT(1 << 20, 0);
                _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0);
                char reason[256] = "";
                size_t removed = 99;
                int r = json_parse(c->obj, strlen(c->obj), 0, NULL, &obj);
                if (!ok(r == 0, "%s: the object parses", c->what))
                        continue;
                r = protect_build_patch(json_doc_root(obj), w, &s, &patch, &removed, reason,
                                        sizeof(reason));
                if (!ok(r == 0, "%s: the patch is built (%d %s)", c->what, r, reason))
                        continue;
                is_int((long long) removed, (long long) c->removed, "%s: references removed",
                       c->what);
                r = test_jsonpatch_apply(c->obj, strlen(c->obj), buf_cstr(&patch), patch.len, &out);
                if (!ok(r == 0, "%s: the patch applies (%d): %s", c->what, r, buf_cstr(&patch)))
                        continue;
                r = json_parse(buf_cstr(&out), out.len, 0, NULL, &res);
                ok(r == 0, "%s: the result parses", c->what);
                const struct json_value *root = json_doc_root(res);
                _cleanup_free_ char *ann = print_at(root, "spec.template.metadata.annotations");
                _cleanup_free_ char *lab = print_at(root, "spec.template.metadata.labels");
                _cleanup_free_ char *cs = print_at(root, "spec.template.spec.containers");
                _cleanup_free_ char *ics = print_at(root, "spec.template.spec.initContainers");
                _cleanup_free_ char *vols = print_at(root, "spec.template.spec.volumes");
                is_str(ann, c->annotations, "%s: annotations", c->what);
                is_str(lab, c->labels, "%s: labels", c->what);
                is_str(cs, c->containers, "%s: containers", c->what);
                ok(c->init ? ics && strcmp(ics, c->init) == 0 : !ics, "%s: init containers %s",
                   c->what, ics ? ics : "(none)");
                ok(c->volumes ? vols && strcmp(vols, c->volumes) == 0 : !vols, "%s: volumes %s",
                   c->what, vols ? vols : "(none)");

                /* The webhook's parser takes them, and maps what the plan maps. */
                struct injection_settings st;
                struct injection_error e = {};
                const struct json_value *a =
                        json_get_path(root, "spec.template.metadata.annotations");
                r = injection_settings_parse(ann_getenv, (void *) a, &st, &e);
                char msg[512];
                if (ok(r == 0, "%s: injection_settings_parse accepts the annotations (%s)", c->what,
                       r ? injection_error_format(&e, true, msg, sizeof(msg)) : "")) {
                        size_t want = 0;
                        for (size_t k = 0; k < w->n_secrets; k++) {
                                bool seen = false;
                                for (size_t j = 0; j < k; j++)
                                        seen = seen || strcmp(w->secrets[j].vault_path,
                                                              w->secrets[k].vault_path) == 0;
                                want += !seen;
                        }
                        is_int((long long) st.n_secrets, (long long) want, "%s: paths", c->what);
                        for (size_t k = 0; k < w->n_secrets && k < st.n_secrets; k++) {
                                const struct plan_secret *x = &w->secrets[k];
                                const struct injection_secret *y = &st.secrets[k];
                                is_str(y->path, x->vault_path, "%s: path %zu", c->what, k);
                                ok(y->all_fields == (x->n_fields == 0),
                                   "%s: path %zu all fields iff the plan lists none", c->what, k);
                                for (size_t f = 0; f < x->n_fields && f < y->n_maps; f++) {
                                        is_str(y->maps[f].field, x->fields[f].field, "%s: field",
                                               c->what);
                                        is_str(y->maps[f].env, x->fields[f].env, "%s: env",
                                               c->what);
                                }
                        }
                        injection_settings_done(&st);
                }

                /* The record it writes on the workload undoes exactly what it did: the API
                 * server gives the patched workload the next generation, and the rollback built
                 * from the record puts the pod template back as it was, record removed. */
                const char *rec = NULL;
                ok(json_get_string(json_get_path(root, "metadata.annotations"),
                                   PROTECT_ROLLBACK_ANNOTATION, &rec) == 0,
                   "%s: the rollback record is on the workload", c->what);
                ok(!rec || !strstr(rec, "PLAIN"),
                   "%s: the record holds only what the patch changed (no other env entry)",
                   c->what);
                _cleanup_free_ char *bumped = strdup(buf_cstr(&out));
                char *g = strstr(bumped, "\"generation\":3");
                if (g)
                        g[13] = '4';
                _cleanup_json_doc_ struct json_doc *after = NULL, *back = NULL, *orig = NULL;
                _cleanup_buf_ struct buf rb = BUF_INIT(1 << 20, 0);
                _cleanup_buf_ struct buf restored = BUF_INIT(1 << 20, 0);
                char why[256] = "";
                ok(json_parse(bumped, strlen(bumped), 0, NULL, &after) == 0 &&
                           protect_build_rollback(json_doc_root(after), &rb, why, sizeof(why)) == 0,
                   "%s: the rollback is built from the record (%s)", c->what, why);
                r = test_jsonpatch_apply(bumped, strlen(bumped), buf_cstr(&rb), rb.len, &restored);
                is_int(r, 0, "%s: the rollback applies at the generation the patch gave", c->what);
                if (r == 0 && json_parse(buf_cstr(&restored), restored.len, 0, NULL, &back) == 0 &&
                    json_parse(c->obj, strlen(c->obj), 0, NULL, &orig) == 0) {
                        _cleanup_free_ char *t0 = print_at(json_doc_root(orig), "spec.template");
                        _cleanup_free_ char *t1 = print_at(json_doc_root(back), "spec.template");
                        is_str(t1, t0, "%s: rolled back: the pod template as it was read", c->what);
                        ok(!json_get(json_get_path(json_doc_root(back), "metadata.annotations"),
                                     PROTECT_ROLLBACK_ANNOTATION),
                           "%s: rolled back: the record removed", c->what);
                }
                _cleanup_buf_ struct buf stale = BUF_INIT(1 << 20, 0);
                is_int(test_jsonpatch_apply(buf_cstr(&out), out.len, buf_cstr(&rb), rb.len, &stale),
                       -ECANCELED, "%s: the rollback refuses another generation", c->what);

                /* A concurrent edit: another resourceVersion, or an entry it would remove
                 * changed in place, makes the apiserver refuse the whole patch. */
                _cleanup_buf_ struct buf out2 = BUF_INIT(1 << 20, 0);
                _cleanup_free_ char *moved = strdup(c->obj);
                char *rv = strstr(moved, "\"42\"");
                rv[1] = '7';
                r = test_jsonpatch_apply(moved, strlen(moved), buf_cstr(&patch), patch.len, &out2);
                is_int(r, -ECANCELED, "%s: a changed resourceVersion fails the patch", c->what);
        }
}

static void test_entry_test_ops(const struct plan *p) {
        /* The entry the patch removes is tested whole: an edit that swaps entries between the
         * read and the patch fails the test instead of removing the wrong one. */
        const char *o = OBJ("\"metadata\":{},",
                            "{\"containers\":[{\"name\":\"app\",\"env\":[{\"name\":\"DB_USER\","
                            "\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":\"user\"}}}"
                            ",{\"name\":\"KEEP\",\"value\":\"1\"}]}]}");
        const char *swapped = OBJ("\"metadata\":{},",
                                  "{\"containers\":[{\"name\":\"app\",\"env\":[{\"name\":\"KEEP\","
                                  "\"value\":\"1\"},{\"name\":\"DB_USER\",\"valueFrom\":{"
                                  "\"secretKeyRef\":{\"name\":\"db\",\"key\":\"user\"}}}]}]}");
        const struct protect_settings s = {.vault_role = "r"};
        _cleanup_json_doc_ struct json_doc *obj = NULL;
        _cleanup_buf_ struct buf patch = BUF_INIT(1 << 20, 0);
        _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0);
        char reason[256];
        size_t removed;
        ok(json_parse(o, strlen(o), 0, NULL, &obj) == 0, "entry test: parses");
        ok(protect_build_patch(json_doc_root(obj), &p->tenants[0].workloads[0], &s, &patch,
                               &removed, reason, sizeof(reason)) == 0,
           "entry test: built");
        ok(strstr(buf_cstr(&patch), "vault-address") == NULL,
           "no --vault-address: no vault-address annotation (the operator's default)");
        is_int(test_jsonpatch_apply(swapped, strlen(swapped), buf_cstr(&patch), patch.len, &out),
               -ECANCELED, "entries swapped after the read: the test of the entry fails");
}

static void test_refused(const struct plan *p) {
        static const struct {
                const char *what, *obj, *addr, *role, *reason;
        } cases[] = {
                {"no pod template", "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{}}", NULL,
                 "r", "no pod template"},
                {"no resourceVersion", OBJ("", "{\"containers\":[]}"), NULL, "r", NULL},
                {"a role the wrapper refuses", OBJ("", "{\"containers\":[]}"), NULL, "bad role!",
                 "cloudtaser.io/vault-role"},
                {"an address the wrapper refuses", OBJ("", "{\"containers\":[]}"), "ftp://x", "r",
                 "cloudtaser.io/vault-address"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_doc_ struct json_doc *obj = NULL;
                _cleanup_buf_ struct buf patch = BUF_INIT(1 << 20, 0);
                char reason[256] = "";
                size_t removed = 7;
                const char *text = cases[i].obj;
                _cleanup_free_ char *t = strdup(text);
                if (i == 1) {
                        char *rv = strstr(t, "\"resourceVersion\":\"42\",");
                        memmove(rv, rv + 23, strlen(rv + 23) + 1);
                }
                ok(json_parse(t, strlen(t), 0, NULL, &obj) == 0, "%s: parses", cases[i].what);
                struct protect_settings s = {.vault_address = cases[i].addr,
                                             .vault_role = cases[i].role};
                int r = protect_build_patch(json_doc_root(obj), &p->tenants[0].workloads[0], &s,
                                            &patch, &removed, reason, sizeof(reason));
                is_int(r, -EINVAL, "%s: refused", cases[i].what);
                ok(!cases[i].reason || strstr(reason, cases[i].reason), "%s: reason '%s'",
                   cases[i].what, reason);
                is_int((long long) patch.len, 0, "%s: nothing written", cases[i].what);
                is_int((long long) removed, 7, "%s: out-parameter untouched", cases[i].what);
        }
}

static void test_annotations_refused(void) {
        /* A field the env map cannot carry: ',' would split the group. */
        struct plan_field f = {.field = (char *) "a", .env = (char *) "B,C"};
        struct plan_secret x = {.source = (char *) "secretKeyRef:s",
                                .vault_path = (char *) "secret/data/s",
                                .fields = &f,
                                .n_fields = 1};
        struct plan_workload w = {.name = (char *) "w", .secrets = &x, .n_secrets = 1};
        char *paths = NULL, *map = NULL, reason[256] = "";
        is_int(protect_annotations(&w, &paths, &map, reason, sizeof(reason)), -EINVAL,
               "a variable with ',' is refused");
        ok(!paths && !map, "nothing returned");
        f.env = (char *) "VAULT_TOKEN";
        is_int(protect_annotations(&w, &paths, &map, reason, sizeof(reason)), -EINVAL,
               "a wrapper variable is refused by the webhook's parser");
        ok(strstr(reason, "cloudtaser.io/env-map") != NULL, "the reason names env-map: %s", reason);
        w.n_secrets = 0;
        is_int(protect_annotations(&w, &paths, &map, reason, sizeof(reason)), -EINVAL,
               "no secret: refused");
}

#define REC_OBJ(gen, rec)                                                                  \
        "{\"metadata\":{\"generation\":" #gen ",\"annotations\":{\"cloudtaser.io/protect-" \
        "rollback\":\"" rec "\"}},\"spec\":{\"template\":{\"metadata\":{\"labels\":{"      \
        "\"cloudtaser.io/inject\":\"true\"}},\"spec\":{\"containers\":[{\"name\":\"b\"}]}}}}"

static void test_rollback(void) {
        /* A record as protect writes it, read back from the workload by a later run. */
        const char *tmpl = "{\"metadata\":{},\"spec\":{\"containers\":[{\"name\":\"a\"}]}}";
        const char *now = REC_OBJ(
                4, "{\\\"generation\\\":4,\\\"ops\\\":[{\\\"op\\\":\\\"replace\\\",\\\"path\\\":"
                   "\\\"/spec/template/spec/containers/0/name\\\",\\\"value\\\":\\\"a\\\"},{"
                   "\\\"op\\\":\\\"remove\\\",\\\"path\\\":\\\"/spec/template/metadata/"
                   "labels\\\"}]}");
        const char *later = REC_OBJ(5, "{\\\"generation\\\":4,\\\"ops\\\":[]}");
        _cleanup_json_doc_ struct json_doc *o = NULL, *res = NULL;
        _cleanup_buf_ struct buf patch = BUF_INIT(1 << 20, 0);
        _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0), out2 = BUF_INIT(1 << 20, 0);
        char reason[256] = "";
        ok(json_parse(now, strlen(now), 0, NULL, &o) == 0, "rollback: object parses");
        ok(protect_build_rollback(json_doc_root(o), &patch, reason, sizeof(reason)) == 0,
           "rollback: built from the record (%s)", reason);
        ok(test_jsonpatch_apply(now, strlen(now), buf_cstr(&patch), patch.len, &out) == 0,
           "rollback: applies at the generation it was made for");
        ok(json_parse(buf_cstr(&out), out.len, 0, NULL, &res) == 0, "rollback: result parses");
        _cleanup_free_ char *got = print_at(json_doc_root(res), "spec.template");
        is_str(got, tmpl, "rollback: the template as it was read");
        ok(!json_get(json_get_path(json_doc_root(res), "metadata.annotations"),
                     PROTECT_ROLLBACK_ANNOTATION),
           "rollback: the record is removed with it");
        is_int(test_jsonpatch_apply(later, strlen(later), buf_cstr(&patch), patch.len, &out2),
               -ECANCELED, "rollback: a spec changed since (another generation) is not touched");

        static const struct {
                const char *what, *obj;
                int want;
        } refused[] = {
                {"no record", "{\"metadata\":{\"generation\":4},\"spec\":{}}", -ENOENT},
                {"not JSON", REC_OBJ(4, "{gen"), -EINVAL},
                {"no generation", REC_OBJ(4, "{\\\"ops\\\":[]}"), -EINVAL},
                {"an operation other than add, remove, replace",
                 REC_OBJ(4, "{\\\"generation\\\":4,\\\"ops\\\":[{\\\"op\\\":\\\"move\\\","
                            "\\\"from\\\":\\\"/spec/template/a\\\",\\\"path\\\":\\\"/spec/"
                            "template/b\\\"}]}"),
                 -EINVAL},
                {"a path outside the pod template",
                 REC_OBJ(4, "{\\\"generation\\\":4,\\\"ops\\\":[{\\\"op\\\":\\\"remove\\\","
                            "\\\"path\\\":\\\"/metadata/finalizers\\\"}]}"),
                 -EINVAL},
                {"an add without a value",
                 REC_OBJ(4, "{\\\"generation\\\":4,\\\"ops\\\":[{\\\"op\\\":\\\"add\\\","
                            "\\\"path\\\":\\\"/spec/template/x\\\"}]}"),
                 -EINVAL},
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                _cleanup_buf_ struct buf b = BUF_INIT(1 << 20, 0);
                reason[0] = '\0';
                ok(json_parse(refused[i].obj, strlen(refused[i].obj), 0, NULL, &d) == 0,
                   "rollback %s: parses", refused[i].what);
                is_int(protect_build_rollback(json_doc_root(d), &b, reason, sizeof(reason)),
                       refused[i].want, "rollback %s: refused", refused[i].what);
                ok(b.len == 0 && (refused[i].want != -EINVAL || reason[0]),
                   "rollback %s: nothing written, a reason (%s)", refused[i].what, reason);
        }
}

static void test_already_patched(void) {
        static const struct {
                const char *obj;
                bool want;
        } cases[] = {
                {"{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{"
                 "\"cloudtaser.io/inject\":\"true\"}}}}}",
                 true},
                {"{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{"
                 "\"cloudtaser.io/inject\":\"false\"}}}}}",
                 false},
                {"{\"spec\":{\"template\":{\"metadata\":{\"labels\":{"
                 "\"cloudtaser.io/inject\":\"true\"}}}}}",
                 false},
                {"{\"spec\":{}}", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                ok(json_parse(cases[i].obj, strlen(cases[i].obj), 0, NULL, &d) == 0 &&
                           protect_already_patched(json_doc_root(d)) == cases[i].want,
                   "already patched #%zu: %s", i, cases[i].want ? "yes" : "no");
        }
}

#define DEP(gen, spec, status) \
        "{\"metadata\":{\"generation\":" #gen "},\"spec\":" spec ",\"status\":" status "}"

static void test_rollout(void) {
        static const struct {
                const char *what;
                enum plan_kind kind;
                const char *obj;
                enum protect_rollout want;
        } cases[] = {
                {"not observed yet", PLAN_DEPLOYMENT,
                 DEP(4, "{\"replicas\":1}",
                     "{\"observedGeneration\":3,\"replicas\":1,\"updatedReplicas\":1,"
                     "\"availableReplicas\":1}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"done", PLAN_DEPLOYMENT,
                 DEP(4, "{\"replicas\":2}",
                     "{\"observedGeneration\":4,\"replicas\":2,\"updatedReplicas\":2,"
                     "\"availableReplicas\":2}"),
                 PROTECT_ROLLOUT_DONE},
                {"an old pod still available beside a new one that is not", PLAN_DEPLOYMENT,
                 DEP(4, "{\"replicas\":1}",
                     "{\"observedGeneration\":4,\"replicas\":2,\"updatedReplicas\":1,"
                     "\"availableReplicas\":1,\"unavailableReplicas\":1}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"new pods not available", PLAN_DEPLOYMENT,
                 DEP(4, "{\"replicas\":2}",
                     "{\"observedGeneration\":4,\"replicas\":2,\"updatedReplicas\":2,"
                     "\"availableReplicas\":1}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"replicas defaults to 1", PLAN_DEPLOYMENT,
                 DEP(2, "{}",
                     "{\"observedGeneration\":2,\"replicas\":1,\"updatedReplicas\":1,"
                     "\"availableReplicas\":1}"),
                 PROTECT_ROLLOUT_DONE},
                {"replicas 0: done once observed", PLAN_DEPLOYMENT,
                 DEP(2, "{\"replicas\":0}", "{\"observedGeneration\":2}"), PROTECT_ROLLOUT_DONE},
                {"replicas 0 not observed", PLAN_DEPLOYMENT,
                 DEP(2, "{\"replicas\":0}", "{\"observedGeneration\":1}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"progress deadline exceeded", PLAN_DEPLOYMENT,
                 DEP(4, "{\"replicas\":1}",
                     "{\"observedGeneration\":4,\"replicas\":2,\"updatedReplicas\":1,"
                     "\"availableReplicas\":1,\"conditions\":[{\"type\":\"Available\","
                     "\"status\":\"True\"},{\"type\":\"Progressing\",\"status\":\"False\","
                     "\"reason\":\"ProgressDeadlineExceeded\"}]}"),
                 PROTECT_ROLLOUT_FAILED},
                {"statefulset done", PLAN_STATEFULSET,
                 DEP(2, "{\"replicas\":3}",
                     "{\"observedGeneration\":2,\"replicas\":3,\"updatedReplicas\":3,"
                     "\"availableReplicas\":3}"),
                 PROTECT_ROLLOUT_DONE},
                {"statefulset rolling", PLAN_STATEFULSET,
                 DEP(2, "{\"replicas\":3}",
                     "{\"observedGeneration\":2,\"replicas\":3,\"updatedReplicas\":2,"
                     "\"availableReplicas\":3}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"daemonset done", PLAN_DAEMONSET,
                 DEP(2, "{}",
                     "{\"observedGeneration\":2,\"desiredNumberScheduled\":2,"
                     "\"currentNumberScheduled\":2,\"updatedNumberScheduled\":2,"
                     "\"numberAvailable\":2,\"numberMisscheduled\":0}"),
                 PROTECT_ROLLOUT_DONE},
                {"daemonset one node not updated", PLAN_DAEMONSET,
                 DEP(2, "{}",
                     "{\"observedGeneration\":2,\"desiredNumberScheduled\":2,"
                     "\"currentNumberScheduled\":2,\"updatedNumberScheduled\":1,"
                     "\"numberAvailable\":2}"),
                 PROTECT_ROLLOUT_PROGRESSING},
                {"daemonset on no node", PLAN_DAEMONSET,
                 DEP(2, "{}", "{\"observedGeneration\":2,\"desiredNumberScheduled\":0}"),
                 PROTECT_ROLLOUT_DONE},
                {"daemonset updated but not available", PLAN_DAEMONSET,
                 DEP(2, "{}",
                     "{\"observedGeneration\":2,\"desiredNumberScheduled\":1,"
                     "\"currentNumberScheduled\":1,\"updatedNumberScheduled\":1,"
                     "\"numberAvailable\":0}"),
                 PROTECT_ROLLOUT_PROGRESSING},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                char summary[256];
                ok(json_parse(cases[i].obj, strlen(cases[i].obj), 0, NULL, &d) == 0,
                   "rollout %s: parses", cases[i].what);
                enum protect_rollout j = protect_rollout_judge(cases[i].kind, json_doc_root(d),
                                                               summary, sizeof(summary));
                is_int(j, cases[i].want, "rollout %s (%s)", cases[i].what, summary);
                ok(summary[0] != '\0', "rollout %s: a summary", cases[i].what);
        }
}

int main(void) {
        _cleanup_plan_ struct plan *p = NULL;
        struct plan_error e = {};
        int r = plan_parse(plan_text, strlen(plan_text), &p, &e);
        if (!ok(r == 0, "the test plan parses (%u:%u %s)", e.line, e.column, e.message))
                return tap_done();
        test_patches(p);
        test_entry_test_ops(p);
        test_refused(p);
        test_annotations_refused();
        test_rollback();
        test_already_patched();
        test_rollout();
        return tap_done();
}
