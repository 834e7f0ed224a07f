/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cli/discover's scan of one workload, table-driven over JSON workloads: every
 * shape of Secret use (secretKeyRef, envFrom with and without a prefix, secret volumes with and
 * without items, projected sources, init containers), a Secret whose keys cannot be read
 * (forbidden, missing), the same Secret in several containers, a key mapped to two variables,
 * other injectors (Vault Agent annotations and template, Bank-Vaults env values and
 * vault-env-from-path), a workload already injected, one with nothing to migrate; and the vault
 * path template. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/discover.h"
#include "cli/plan.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/strv.h"
#include "tests/tap.h"

static unsigned key_reads;

static int fake_keys(void *userdata, const char *ns, const char *name, char ***ret) {
        key_reads++;
        if (strcmp(name, "forbidden") == 0)
                return -EACCES;
        if (strcmp(name, "missing") == 0)
                return -ENOENT;
        _cleanup_strv_free_ char **k = NULL;
        size_t n = 0;
        if (strv_extend(&k, &n, 2, strcmp(ns, "other") == 0 ? "other-key" : "password") < 0 ||
            strv_extend(&k, &n, 2, "tls.crt") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(k);
        return 0;
}

/* "source => path {field=ENV,...}" per entry, then "note: ..." */
static char *render(const struct plan_workload *w) {
        struct buf b = BUF_INIT(1 << 16, 0);
        char *s = NULL;
        size_t n;
        (void) buf_printf(&b, "%s %s replicas=%lld\n", plan_kind_to_string(w->kind), w->name,
                          (long long) w->replicas);
        for (size_t i = 0; i < w->n_secrets; i++) {
                const struct plan_secret *x = &w->secrets[i];
                (void) buf_printf(&b, "%s => %s {", x->source, x->vault_path);
                for (size_t f = 0; f < x->n_fields; f++)
                        (void) buf_printf(&b, "%s%s=%s", f ? "," : "", x->fields[f].field,
                                          x->fields[f].env);
                (void) buf_append_str(&b, "}\n");
        }
        if (w->note)
                (void) buf_printf(&b, "note: %s\n", w->note);
        (void) buf_steal(&b, &s, &n);
        return s;
}

#define WL(spec) "{\"metadata\":{\"name\":\"app\",\"namespace\":\"shop\"},\"spec\":" spec "}"
#define TMPL(ann, podspec)                                                    \
        WL("{\"replicas\":3,\"template\":{\"metadata\":{\"annotations\":" ann \
           "},\"spec\":" podspec "}}")
#define POD(podspec) TMPL("{}", podspec)

static const struct {
        const char *name, *json;
        int rc;
        const char *want; /* NULL: nothing */
} cases[] = {
        {"secretKeyRef in a container and an init container, same Secret: one entry",
         POD("{\"initContainers\":[{\"name\":\"i\",\"env\":[{\"name\":\"DB_USER\",\"valueFrom\":{"
             "\"secretKeyRef\":{\"name\":\"db\",\"key\":\"user\"}}}]}],"
             "\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"PLAIN\",\"value\":\"x\"},"
             "{\"name\":\"DB_PASSWORD\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\","
             "\"key\":\"password\"}}},{\"name\":\"DB_USER\",\"valueFrom\":{\"secretKeyRef\":{"
             "\"name\":\"db\",\"key\":\"user\"}}}]}]}"),
         1,
         "Deployment app replicas=3\n"
         "secretKeyRef:db => secret/data/prod/shop/db {user=DB_USER,password=DB_PASSWORD}\n"},
        {"a key mapped to two variables: a second entry",
         POD("{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"A\",\"valueFrom\":{"
             "\"secretKeyRef\":{\"name\":\"db\",\"key\":\"k\"}}}]},{\"name\":\"b\",\"env\":[{"
             "\"name\":\"B\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":\"k\"}}}]}]"
             "}"),
         1,
         "Deployment app replicas=3\nsecretKeyRef:db => secret/data/prod/shop/db {k=A}\n"
         "secretKeyRef:db => secret/data/prod/shop/db {k=B}\n"},
        {"envFrom with a prefix: every key name of the Secret",
         POD("{\"containers\":[{\"name\":\"c\",\"envFrom\":[{\"prefix\":\"DB_\",\"secretRef\":{"
             "\"name\":\"db\"}},{\"configMapRef\":{\"name\":\"cm\"}}]}]}"),
         1,
         "Deployment app replicas=3\n"
         "envFrom:db:prefix=DB_ => secret/data/prod/shop/db {password=DB_password,"
         "tls.crt=DB_tls.crt}\n"},
        {"envFrom of a Secret that may not be read: listed with a note",
         POD("{\"containers\":[{\"name\":\"c\",\"envFrom\":[{\"secretRef\":{\"name\":"
             "\"forbidden\"}}]}]}"),
         1,
         "Deployment app replicas=3\nenvFrom:forbidden => secret/data/prod/shop/forbidden {}\n"
         "note: envFrom Secret 'forbidden': its key names could not be read (forbidden); fill "
         "in its fields\n"},
        {"envFrom of a missing Secret",
         POD("{\"containers\":[{\"name\":\"c\",\"envFrom\":[{\"secretRef\":{\"name\":"
             "\"missing\",\"optional\":true}}]}]}"),
         1,
         "Deployment app replicas=3\nenvFrom:missing => secret/data/prod/shop/missing {}\n"
         "note: envFrom Secret 'missing': no such Secret; fill in its fields\n"},
        {"secret volume with items: the mount path, a note",
         POD("{\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"tls\","
             "\"mountPath\":\"/etc/tls\"}]}],\"volumes\":[{\"name\":\"tls\",\"secret\":{"
             "\"secretName\":\"tls\",\"items\":[{\"key\":\"tls.key\",\"path\":\"k\"}]}},"
             "{\"name\":\"e\",\"emptyDir\":{}}]}"),
         1,
         "Deployment app replicas=3\nvolume:tls:/etc/tls => secret/data/prod/shop/tls "
         "{tls.key=TLS_KEY}\n"
         "note: Secret 'tls' is mounted as files at /etc/tls: the workload must read the "
         "environment or the memfd instead\n"},
        {"secret volume without items, mounted by an init container: every key",
         POD("{\"initContainers\":[{\"name\":\"i\",\"volumeMounts\":[{\"name\":\"v\","
             "\"mountPath\":\"/s\"}]}],\"containers\":[{\"name\":\"c\"}],\"volumes\":[{\"name\":"
             "\"v\",\"secret\":{\"secretName\":\"creds\"}}]}"),
         1,
         "Deployment app replicas=3\nvolume:creds:/s => secret/data/prod/shop/creds "
         "{password=PASSWORD,tls.crt=TLS_CRT}\n"
         "note: Secret 'creds' is mounted as files at /s: the workload must read the "
         "environment or the memfd instead\n"},
        {"projected secret sources (and a configMap one ignored)",
         POD("{\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"p\",\"mountPath\":"
             "\"/p\"}]}],\"volumes\":[{\"name\":\"p\",\"projected\":{\"sources\":[{\"secret\":{"
             "\"name\":\"a\",\"items\":[{\"key\":\"1st\",\"path\":\"x\"}]}},{\"configMap\":{"
             "\"name\":\"cm\"}},{\"secret\":{\"name\":\"forbidden\"}}]}}]}"),
         1,
         "Deployment app replicas=3\nprojected:a:/p => secret/data/prod/shop/a {1st=_1ST}\n"
         "projected:forbidden:/p => secret/data/prod/shop/forbidden {}\n"
         "note: Secret 'a' is mounted as files at /p: the workload must read the environment "
         "or the memfd instead; Secret 'forbidden' is mounted as files at /p: the workload "
         "must read the environment or the memfd instead; projected Secret 'forbidden': its "
         "key names could not be read (forbidden); fill in its fields\n"},
        {"Vault Agent Injector: its paths kept, the template's fields",
         TMPL("{\"vault.hashicorp.com/agent-inject\":\"true\",\"vault.hashicorp.com/role\":"
              "\"web\",\"vault.hashicorp.com/agent-inject-secret-db\":\"secret/data/web/db\","
              "\"vault.hashicorp.com/agent-inject-template-db\":\"{{- with secret "
              "\\\"secret/data/web/db\\\" -}}{{ .Data.data.username }}:{{ .Data.data.password "
              "}}{{- end }}\",\"vault.hashicorp.com/agent-inject-secret-cfg\":\"/kv/cfg\"}",
              "{\"containers\":[{\"name\":\"c\"}]}"),
         1,
         "Deployment app replicas=3\nvault-agent:db => secret/data/web/db "
         "{username=USERNAME,password=PASSWORD}\nvault-agent:cfg => kv/cfg {}\n"
         "note: annotated for the Vault Agent Injector (role 'web'): its vault paths are kept; "
         "the workload must read the environment instead of /vault/secrets\n"},
        {"Bank-Vaults env values and vault-env-from-path",
         TMPL("{\"vault.security.banzaicloud.io/vault-role\":\"api\","
              "\"vault.security.banzaicloud.io/vault-env-from-path\":\"secret/data/a, "
              "secret/data/b\"}",
              "{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"AWS_SECRET_ACCESS_KEY\","
              "\"value\":\"vault:secret/data/accounts/aws#AWS_SECRET_ACCESS_KEY\"},{\"name\":"
              "\"V\",\"value\":\"vault:secret/data/accounts/aws#id#2\"},{\"name\":\"D\","
              "\"value\":\">>vault:database/creds/r#password\"}]}]}"),
         1,
         "Deployment app replicas=3\nbank-vaults:secret/data/accounts/aws => "
         "secret/data/accounts/aws {AWS_SECRET_ACCESS_KEY=AWS_SECRET_ACCESS_KEY,id=V}\n"
         "bank-vaults:secret/data/a => secret/data/a {}\n"
         "bank-vaults:secret/data/b => secret/data/b {}\n"
         "note: D is a Bank-Vaults dynamic secret (>>vault:): not migrated; Bank-Vaults "
         "vault-env-from-path secret/data/a: every key of it; fill in the fields; Bank-Vaults "
         "vault-env-from-path secret/data/b: every key of it; fill in the fields; annotated "
         "for Bank-Vaults (role 'api'): its vault paths are kept\n"},
        {"other injectors' paths a plan cannot hold are not carried over; control characters",
         TMPL("{\"vault.hashicorp.com/agent-inject-secret-x\":\"secret/*\","
              "\"vault.hashicorp.com/role\":\"a\\nb\"}",
              "{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"K\",\"value\":"
              "\"vault:secret/data/a b#f\"},{\"name\":\"B\",\"valueFrom\":{\"secretKeyRef\":{"
              "\"name\":\"db\",\"key\":\"k\"}}}]}]}"),
         1,
         "Deployment app replicas=3\nsecretKeyRef:db => secret/data/prod/shop/db {k=B}\n"
         "note: vault path 'secret/data/a b' is not usable as it is (a glob, an empty segment or "
         "policy syntax): not listed; vault path 'secret/*' is not usable as it is (a glob, an "
         "empty segment or policy syntax): not listed; annotated for the Vault Agent Injector "
         "(role 'a?b'): its vault paths are kept; the workload must read the environment instead "
         "of /vault/secrets\n"},
        {"a mount path with a control character",
         POD("{\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"v\","
             "\"mountPath\":\"/a\\tb\"}]}],\"volumes\":[{\"name\":\"v\",\"secret\":{"
             "\"secretName\":\"s\",\"items\":[{\"key\":\"k\",\"path\":\"k\"}]}}]}"),
         1,
         "Deployment app replicas=3\nvolume:s:/a?b => secret/data/prod/shop/s {k=K}\n"
         "note: Secret 's' is mounted as files at /a?b: the workload must read the environment "
         "or the memfd instead\n"},
        {"already injected by cloudtaser: skipped",
         TMPL("{\"cloudtaser.io/inject\":\"true\"}",
              "{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"A\",\"valueFrom\":{"
              "\"secretKeyRef\":{\"name\":\"db\",\"key\":\"k\"}}}]}]}"),
         0, NULL},
        {"no Secret use: nothing",
         POD("{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"A\",\"value\":\"b\"},{"
             "\"name\":\"B\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cm\",\"key\":"
             "\"k\"}}}]}],\"volumes\":[{\"name\":\"x\",\"configMap\":{\"name\":\"cm\"}}]}"),
         0, NULL},
        {"not a workload", "{\"metadata\":{\"name\":\"x\"}}", -EINVAL, NULL},
        {"an empty pod spec", WL("{\"template\":{\"spec\":{}}}") "", 0, NULL},
};

static void test_scan(void) {
        struct discover_config c = {.cluster = "prod", .secret_keys = fake_keys};
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_doc *d = NULL;
                struct plan_workload w = {};
                bool injected = false;
                int r = json_parse(cases[i].json, strlen(cases[i].json), 0, NULL, &d);
                if (!is_int(r, 0, "%s: the JSON parses", cases[i].name))
                        continue;
                r = discover_scan(json_doc_root(d), PLAN_DEPLOYMENT, "shop", &c, &w, &injected);
                is_int(r, cases[i].rc, "%s: result", cases[i].name);
                if (r > 0) {
                        char *got = render(&w);
                        is_str(got, cases[i].want, "%s: entries", cases[i].name);
                        free(got);
                        plan_workload_done(&w);
                }
                if (strstr(cases[i].name, "already injected"))
                        ok(injected, "%s: said so", cases[i].name);
                json_doc_free(d);
        }

        /* What it finds makes a plan that formats and parses (the plan's own rules hold). */
        const char *all = cases[7].json; /* projected sources: three entries */
        struct json_doc *d = NULL;
        struct plan_workload w = {};
        (void) json_parse(all, strlen(all), 0, NULL, &d);
        is_int(discover_scan(json_doc_root(d), PLAN_STATEFULSET, "shop", &c, &w, NULL), 1,
               "a StatefulSet scanned");
        struct plan_tenant t = {.name = (char *) "shop",
                                .namespace_ = (char *) "shop",
                                .workloads = &w,
                                .n_workloads = 1};
        struct plan p = {
                .name = (char *) "p", .cluster = (char *) "prod", .tenants = &t, .n_tenants = 1};
        _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0);
        is_int(plan_format(&p, &out), 0, "its entries make a valid plan");
        plan_workload_done(&w);
        json_doc_free(d);

        /* A DaemonSet has no replicas. */
        const char *ds = POD("{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"A\","
                             "\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":\"k\"}}}]"
                             "}]}");
        (void) json_parse(ds, strlen(ds), 0, NULL, &d);
        is_int(discover_scan(json_doc_root(d), PLAN_DAEMONSET, "shop", &c, &w, NULL), 1,
               "a DaemonSet scanned");
        is_int(w.replicas, 0, "with replicas 0");
        ok(w.service_account == NULL, "no serviceAccountName: none recorded (the default one)");
        plan_workload_done(&w);
        json_doc_free(d);

        /* The pod's service account, for the tenant's role (source apply-plan). */
        const char *sa = POD("{\"serviceAccountName\":\"billing\",\"containers\":[{\"name\":"
                             "\"c\",\"env\":[{\"name\":\"A\",\"valueFrom\":{\"secretKeyRef\":"
                             "{\"name\":\"db\",\"key\":\"k\"}}}]}]}");
        (void) json_parse(sa, strlen(sa), 0, NULL, &d);
        is_int(discover_scan(json_doc_root(d), PLAN_DEPLOYMENT, "shop", &c, &w, NULL), 1,
               "a Deployment with a service account scanned");
        is_str(w.service_account, "billing", "its serviceAccountName recorded");
        plan_workload_done(&w);
        json_doc_free(d);
}

static void test_paths(void) {
        char *p = NULL;
        is_int(discover_vault_path(NULL, "prod", "shop", "db", &p), 0, "the default template");
        is_str(p, "secret/data/prod/shop/db", "secret/data/<cluster>/<namespace>/<secret>");
        free(p);
        p = NULL;
        is_int(discover_vault_path("kv/data/k8s-<cluster>/<namespace>-<secret>/v", "c", "n", "s",
                                   &p),
               0, "a custom template");
        is_str(p, "kv/data/k8s-c/n-s/v", "each placeholder replaced");
        free(p);
        p = NULL;
        is_int(discover_vault_path("secret/data/*/<secret>", "c", "n", "s", &p), -EINVAL,
               "a template with a glob is refused");
        is_int(discover_vault_path("secret/<cluster>/<secret>", "", "n", "s", &p), -EINVAL,
               "an empty segment is refused");
        ok(p == NULL, "nothing returned");
        ok(discover_namespace_skipped("kube-system") && discover_namespace_skipped("kube-public") &&
                   discover_namespace_skipped("kube-node-lease") &&
                   !discover_namespace_skipped("default"),
           "the system namespaces are skipped, others not");
}

int main(void) {
        test_scan();
        ok(key_reads > 0, "key names were asked for");
        test_paths();
        return tap_done();
}
