/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cli/plan, the migration plan file: a plan built in memory round-trips through
 * its text and through a file (strings YAML would misread included); a reviewer's layout (flow
 * style, quotes, numbers as names) reads as expected; every validation error names its line,
 * column and field; a status update rewrites only the status (and reason) bytes, comments and
 * order kept byte for byte, in block and flow style, and falls back to a fresh plan where it must;
 * a file that changed under the caller is -ESTALE; and a writer killed with SIGKILL at many
 * instants always leaves a plan that parses. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/plan.h"
#include "common/buf.h"
#include "common/macro.h"
#include "tests/tap.h"

static char workdir[PATH_MAX];

static struct plan *sample(size_t n_workloads) {
        struct plan *p = calloc(1, sizeof(*p));
        p->name = strdup("shop-migration");
        p->cluster = strdup("prod-eu");
        p->created_at = strdup("2026-12-03T11:00:00Z");
        p->created_by = strdup("alice@example.com");
        p->n_tenants = 2;
        p->tenants = calloc(2, sizeof(*p->tenants));
        p->tenants[0].name = strdup("shop");
        p->tenants[0].namespace_ = strdup("shop");
        p->tenants[0].n_workloads = n_workloads;
        p->tenants[0].workloads = calloc(n_workloads, sizeof(struct plan_workload));
        for (size_t i = 0; i < n_workloads; i++) {
                struct plan_workload *w = &p->tenants[0].workloads[i];
                char name[32];
                (void) snprintf(name, sizeof(name), i == 1 ? "%zu" : "api-%zu", i);
                w->kind = (enum plan_kind)(i % 3);
                w->name = strdup(i == 2 ? "true" : name); /* names YAML would misread */
                w->replicas = (int64_t) i;
                w->status = PLAN_PENDING;
                if (i == 0) {
                        w->note = strdup("mounts Secret 'tls' at /etc/tls: read env instead");
                        w->reason = strdup("a \"quoted\" reason: with \\ and ü");
                }
                w->n_secrets = i == 3 ? 0 : 2;
                w->secrets = calloc(2, sizeof(*w->secrets));
                for (size_t s = 0; s < w->n_secrets; s++) {
                        struct plan_secret *x = &w->secrets[s];
                        x->source =
                                strdup(s ? "envFrom:db (prefix DB_)" : "secretKeyRef:db/password");
                        x->vault_path = strdup("secret/data/prod-eu/shop/db");
                        x->n_fields = s ? 0 : 3;
                        x->fields = calloc(3, sizeof(*x->fields));
                        for (size_t f = 0; f < x->n_fields; f++) {
                                static const char *const keys[] = {"password", "123", "null"};
                                static const char *const envs[] = {"DB_PASSWORD", "on", "A B"};
                                x->fields[f].field = strdup(keys[f]);
                                x->fields[f].env = strdup(envs[f]);
                        }
                }
        }
        p->tenants[1].name = strdup("empty team");
        p->tenants[1].namespace_ = strdup("empty");
        return p;
}

static int write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        size_t n = strlen(text);
        size_t w = fwrite(text, 1, n, f);
        return fclose(f) == 0 && w == n ? 0 : -EIO;
}

static char *read_text(const char *path) {
        struct buf b = BUF_INIT(PLAN_MAX_BYTES, 0);
        char *s = NULL;
        size_t n;
        if (buf_read_file(&b, path) < 0 || buf_steal(&b, &s, &n) < 0)
                s = NULL;
        buf_done(&b);
        return s;
}

static void test_round_trip(void) {
        _cleanup_plan_ struct plan *p = sample(5), *back = NULL, *loaded = NULL;
        _cleanup_buf_ struct buf a = BUF_INIT(1 << 20, 0), b = BUF_INIT(1 << 20, 0);
        struct plan_error e;
        char path[PATH_MAX + 16];

        is_int(plan_format(p, &a), 0, "a plan formats");
        int r = plan_parse(a.data, a.len, &back, &e);
        if (!is_int(r, 0, "and parses back"))
                diag("%u:%u: %s\n%s", e.line, e.column, e.message, buf_cstr(&a));
        ok(plan_equal(p, back), "as the same plan (names '1' and 'true', fields 'null' -> 'on')");
        is_int(plan_format(back, &b), 0, "formats again");
        ok(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "to the same text");
        ok(strstr(buf_cstr(&a), "apiVersion: cloudtaser.io/v1\nkind: MigrationPlan\n") &&
                   strstr(buf_cstr(&a), "\n# ") && strstr(buf_cstr(&a), "    name: \"1\"\n") &&
                   strstr(buf_cstr(&a), "    name: \"true\"\n") &&
                   strstr(buf_cstr(&a), "        \"123\": \"on\"\n") &&
                   strstr(buf_cstr(&a), "  workloads: []\n"),
           "commented YAML; strings a YAML reader would misread are quoted");
        if (getenv("SHOW"))
                diag("%s", buf_cstr(&a));

        (void) snprintf(path, sizeof(path), "%s/plan.yaml", workdir);
        is_int(plan_save(p, path), 0, "saved to a file");
        is_int(plan_load(path, &loaded, &e), 0, "loaded back");
        ok(plan_equal(p, loaded), "the same plan");

        /* What plan_parse would refuse is never written. */
        free(p->tenants[0].workloads[0].secrets[0].vault_path);
        p->tenants[0].workloads[0].secrets[0].vault_path = strdup("secret/data/*");
        size_t before = a.len;
        is_int(plan_format(p, &a), -EINVAL, "a vault path with a glob is not formatted");
        is_int(a.len, before, "and nothing is appended");
        free(p->tenants[0].workloads[0].secrets[0].vault_path);
        p->tenants[0].workloads[0].secrets[0].vault_path = strdup("secret/data/ok");
        free(p->tenants[0].name);
        p->tenants[0].name = strdup("tab\there");
        is_int(plan_save(p, path), -EINVAL, "a control character is not saved");
        _cleanup_plan_ struct plan *still = NULL;
        ok(plan_load(path, &still, &e) == 0 && plan_equal(still, loaded),
           "and the file is left as it was");
}

static void test_reviewer_layout(void) {
        static const char text[] = "# reviewed: SEC-42\n"
                                   "kind: MigrationPlan\n"
                                   "apiVersion: \"cloudtaser.io/v1\"\n"
                                   "metadata: {name: p, cluster: 42}\n"
                                   "tenants:\n"
                                   "- {name: t, namespace: team, workloads: [\n"
                                   "    {kind: DaemonSet, name: 007, status: 'skipped',\n"
                                   "     reason: ~, note: '', secrets: [{source: s, vaultPath: "
                                   "kv/x, fields: {a.b: TRUE}}]}]}\n";
        _cleanup_plan_ struct plan *p = NULL;
        struct plan_error e;
        int r = plan_parse(text, strlen(text), &p, &e);
        if (!is_int(r, 0, "a reviewer's layout parses (flow style, reordered, quoted)"))
                diag("%u:%u: %s", e.line, e.column, e.message);
        if (r < 0)
                return;
        const struct plan_workload *w = &p->tenants[0].workloads[0];
        ok(strcmp(p->cluster, "42") == 0 && strcmp(w->name, "007") == 0 &&
                   w->kind == PLAN_DAEMONSET && w->status == PLAN_SKIPPED && w->replicas == 0 &&
                   !w->reason && !w->note && strcmp(w->secrets[0].fields[0].field, "a.b") == 0 &&
                   strcmp(w->secrets[0].fields[0].env, "TRUE") == 0,
           "numbers and booleans read as the text written; empty reason and note are none");
}

static const char BASE[] = "apiVersion: cloudtaser.io/v1\n"           /* 1 */
                           "kind: MigrationPlan\n"                    /* 2 */
                           "metadata:\n"                              /* 3 */
                           "  name: p\n"                              /* 4 */
                           "  cluster: c\n"                           /* 5 */
                           "tenants:\n"                               /* 6 */
                           "- name: shop\n"                           /* 7 */
                           "  namespace: shop\n"                      /* 8 */
                           "  workloads:\n"                           /* 9 */
                           "  - kind: Deployment\n"                   /* 10 */
                           "    name: api\n"                          /* 11 */
                           "    replicas: 1\n"                        /* 12 */
                           "    status: pending\n"                    /* 13 */
                           "    secrets:\n"                           /* 14 */
                           "    - source: secretKeyRef:db/password\n" /* 15 */
                           "      vaultPath: secret/data/c/shop/db\n" /* 16 */
                           "      fields:\n"                          /* 17 */
                           "        password: DB_PASSWORD\n";         /* 18 */

/* text with the first occurrence of from replaced by to (NULL when it does not occur). */
static char *subst(const char *text, const char *from, const char *to) {
        const char *at = strstr(text, from);
        char *s = NULL;
        if (!at || asprintf(&s, "%.*s%s%s", (int) (at - text), text, to, at + strlen(from)) < 0)
                return NULL;
        return s;
}

static void test_errors(void) {
        static const struct {
                const char *from, *to;
                int rc;
                unsigned line, column;
                const char *message;
        } cases[] = {
                {"kind: Deployment", "kind: Deploy", -EBADMSG, 10, 11,
                 "tenants[0].workloads[0].kind: 'Deploy' is not Deployment, StatefulSet or "
                 "DaemonSet"},
                {"kind: Deployment", "kind: 5", -EBADMSG, 10, 11,
                 "tenants[0].workloads[0].kind: '5' is not Deployment, StatefulSet or DaemonSet"},
                {"io/v1", "io/v2", -EBADMSG, 1, 13,
                 "apiVersion: 'cloudtaser.io/v2' is not cloudtaser.io/v1"},
                {"kind: MigrationPlan", "kind: Plan", -EBADMSG, 2, 7,
                 "kind: 'Plan' is not MigrationPlan"},
                {"apiVersion: cloudtaser.io/v1\n", "", -EBADMSG, 1, 1,
                 "apiVersion: is missing (in the mapping here)"},
                {"status: pending", "status: done", -EBADMSG, 13, 13,
                 "tenants[0].workloads[0].status: 'done' is not pending, migrated, skipped or "
                 "failed"},
                {"replicas: 1", "replicas: -1", -EBADMSG, 12, 15,
                 "tenants[0].workloads[0].replicas: is not a number of replicas (0 to "
                 "2147483647)"},
                {"replicas: 1", "replicas: many", -EBADMSG, 12, 15,
                 "tenants[0].workloads[0].replicas: is not a number of replicas (0 to "
                 "2147483647)"},
                {"replicas: 1\n", "replicas: 1\n    color: red\n", -EBADMSG, 13, 5,
                 "tenants[0].workloads[0].color: unknown field"},
                {"    name: api\n", "", -EBADMSG, 10, 5,
                 "tenants[0].workloads[0].name: is missing (in the mapping here)"},
                {"    name: api\n", "    name: API\n", -EBADMSG, 11, 11,
                 "tenants[0].workloads[0].name: 'API' is not a valid name"},
                {"    name: api\n", "    name: [api]\n", -EBADMSG, 11, 11,
                 "tenants[0].workloads[0].name: is a sequence, not a string"},
                {"    name: api\n", "    name: ''\n", -EBADMSG, 11, 11,
                 "tenants[0].workloads[0].name: is empty"},
                {"secret/data/c/shop/db", "secret/data/*", -EBADMSG, 16, 18,
                 "tenants[0].workloads[0].secrets[0].vaultPath: 'secret/data/*' is not a vault "
                 "path (plain segments, no glob or policy syntax)"},
                {"secret/data/c/shop/db", "secret/../sys/policy", -EBADMSG, 16, 18,
                 "tenants[0].workloads[0].secrets[0].vaultPath: 'secret/../sys/policy' is not a "
                 "vault path (plain segments, no glob or policy syntax)"},
                {"secret/data/c/shop/db", "/secret/x", -EBADMSG, 16, 18,
                 "tenants[0].workloads[0].secrets[0].vaultPath: '/secret/x' is not a vault path "
                 "(plain segments, no glob or policy syntax)"},
                {"      vaultPath: secret/data/c/shop/db\n", "", -EBADMSG, 15, 7,
                 "tenants[0].workloads[0].secrets[0].vaultPath: is missing (in the mapping "
                 "here)"},
                {"password: DB", "pass word: DB", -EBADMSG, 18, 9,
                 "tenants[0].workloads[0].secrets[0].fields.pass word: 'pass word' is not a "
                 "Secret key ([-._a-zA-Z0-9]+)"},
                {"DB_PASSWORD", "\"A=B\"", -EBADMSG, 18, 19,
                 "tenants[0].workloads[0].secrets[0].fields.password: 'A=B' is not a variable "
                 "name (it has '=')"},
                {"      fields:\n        password: DB_PASSWORD\n", "      fields: [a]\n", -EBADMSG,
                 17, 15,
                 "tenants[0].workloads[0].secrets[0].fields: is not a mapping of field: VARIABLE"},
                {"    secrets:\n", "    secrets: {}\n    x:\n", -EBADMSG, 15, 5,
                 "tenants[0].workloads[0].x: unknown field"},
                {"  namespace: shop", "  namespace: Shop_", -EBADMSG, 8, 14,
                 "tenants[0].namespace: 'Shop_' is not a valid namespace name"},
                {"  name: p\n", "  name: \"a\\tb\"\n", -EBADMSG, 4, 9,
                 "metadata.name: holds a control character or invalid UTF-8 (limit 4096 bytes)"},
                {"  cluster: c\n", "  cluster: c\n  createdAt: yesterday\n", -EBADMSG, 6, 14,
                 "metadata.createdAt: 'yesterday' is not an RFC 3339 time (2026-12-03T11:00:00Z)"},
                {"metadata:\n  name: p\n  cluster: c\n", "metadata: p\n", -EBADMSG, 3, 11,
                 "metadata: is not a mapping"},
                {"tenants:\n- name", "tenants: {}\nx:\n- name", -EBADMSG, 7, 1, "x: unknown field"},
                {"- name: shop\n", "- shop\n- name: shop\n", -EBADMSG, 7, 3,
                 "tenants[0]: is not a mapping"},
                {"DB_PASSWORD\n", "DB_PASSWORD\n- name: x\n  namespace: shop\n  workloads: []\n",
                 -EBADMSG, 19, 3, "tenants[1]: namespace 'shop' is already tenants[0]"},
                {"DB_PASSWORD\n",
                 "DB_PASSWORD\n  - kind: Deployment\n    name: api\n    status: failed\n", -EBADMSG,
                 19, 5, "tenants[0].workloads[1]: Deployment 'api' is already in this tenant"},
                {"status: pending", "status: [pending", -EBADMSG, 14, 12,
                 "did not find expected ',' or ']' while parsing a flow sequence"},
                {"    name: api\n", "    name: api\n    name: web\n", -EBADMSG, 12, 5,
                 "duplicate key 'name'"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = subst(BASE, cases[i].from, cases[i].to);
                _cleanup_plan_ struct plan *p = NULL;
                struct plan_error e;
                if (!ok(text != NULL, "case %zu: the substitution applies", i))
                        continue;
                int r = plan_parse(text, strlen(text), &p, &e);
                is_int(r, cases[i].rc, "case %zu: refused", i);
                ok(p == NULL, "case %zu: nothing returned", i);
                ok(e.line == cases[i].line && e.column == cases[i].column &&
                           strcmp(e.message, cases[i].message) == 0,
                   "case %zu: %u:%u: %s", i, cases[i].line, cases[i].column, cases[i].message);
                if (e.line != cases[i].line || e.column != cases[i].column ||
                    strcmp(e.message, cases[i].message) != 0)
                        diag("  got %u:%u: %s", e.line, e.column, e.message);
        }
        _cleanup_plan_ struct plan *p = NULL;
        struct plan_error e;
        is_int(plan_parse(BASE, strlen(BASE), &p, &e), 0, "the base of the cases is valid");
        is_int(plan_load("/nonexistent/plan.yaml", &p, &e), -ENOENT, "a missing file: -ENOENT");
}

static const char REVIEWED[] = "# reviewed by security, ticket SEC-42\n"
                               "apiVersion: cloudtaser.io/v1\n"
                               "kind: MigrationPlan\n"
                               "metadata: {name: p, cluster: c}   # flow style here\n"
                               "tenants:\n"
                               "- name: shop   # the shop team\n"
                               "  namespace: shop\n"
                               "  workloads:\n"
                               "  # the API first\n"
                               "  - kind: Deployment\n"
                               "    name: api\n"
                               "    status: 'pending'   # was reviewed\n"
                               "    secrets: []\n"
                               "  - {kind: StatefulSet, name: db, status: pending}\n"
                               "  - status: failed\n"
                               "    reason: \"image pull\"\n"
                               "    kind: DaemonSet\n"
                               "    name: agent\n"
                               "  - kind: Deployment\n"
                               "    name: last\n"
                               "    status: pending";

/* REVIEWED with one substitution applied. */
static char *reviewed(const char *from, const char *to) {
        return subst(REVIEWED, from, to);
}

static void expect_edit(const char *text, size_t workload, enum plan_status st, const char *reason,
                        const char *want, const char *what) {
        _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0);
        struct plan_error e;
        int r = plan_set_status_text(text, strlen(text), 0, workload, st, reason, &out, &e);
        if (!is_int(r, 0, "%s: edited", what))
                diag("%u:%u: %s", e.line, e.column, e.message);
        if (!ok(want && strcmp(buf_cstr(&out), want) == 0, "%s: every other byte kept", what))
                diag("got:\n%s\nwant:\n%s", buf_cstr(&out), want ? want : "(null)");
        _cleanup_plan_ struct plan *p = NULL;
        ok(plan_parse(out.data, out.len, &p, &e) == 0 &&
                   p->tenants[0].workloads[workload].status == st,
           "%s: the status reads back", what);
}

static void test_set_status(void) {
        _cleanup_free_ char *a =
                reviewed("'pending'   # was reviewed",
                         "failed   # was reviewed\n    reason: \"rollout timed out\"");
        expect_edit(REVIEWED, 0, PLAN_FAILED, "rollout timed out", a,
                    "block: status replaced, reason line inserted after it, indented alike");
        _cleanup_free_ char *b = reviewed("'pending'", "migrated");
        expect_edit(a, 0, PLAN_MIGRATED, NULL, b, "block: the reason line removed again");
        _cleanup_free_ char *c = reviewed("name: db, status: pending}",
                                          "name: db, status: failed, reason: \"x y\"}");
        expect_edit(REVIEWED, 1, PLAN_FAILED, "x y", c, "flow: reason added in the mapping");
        _cleanup_free_ char *d =
                reviewed("name: db, status: pending}", "name: db, status: pending, reason: \"\"}");
        expect_edit(c, 1, PLAN_PENDING, NULL, d, "flow: the reason emptied");
        _cleanup_free_ char *f = reviewed("  - status: failed\n    reason: \"image pull\"\n",
                                          "  - status: migrated\n");
        expect_edit(REVIEWED, 2, PLAN_MIGRATED, NULL, f, "first key of an item: reason removed");
        _cleanup_free_ char *g = reviewed("  - status: failed\n    reason: \"image pull\"\n",
                                          "  - status: skipped\n    reason: ok\n");
        expect_edit(REVIEWED, 2, PLAN_SKIPPED, "ok", g, "an existing reason replaced");
        _cleanup_free_ char *h = reviewed("name: last\n    status: pending",
                                          "name: last\n    status: failed\n    reason: \"no "
                                          "newline at the end\"");
        expect_edit(REVIEWED, 3, PLAN_FAILED, "no newline at the end", h,
                    "the last line without a newline");
        _cleanup_free_ char *r1 =
                reviewed("  - status: failed\n    reason: \"image pull\"\n",
                         "  - status: failed\n    reason: \"image pull\"  # why\n");
        _cleanup_free_ char *r2 = reviewed("  - status: failed\n    reason: \"image pull\"\n",
                                           "  - status: pending\n");
        expect_edit(r1, 2, PLAN_PENDING, NULL, r2, "a reason line with its comment removed");

        /* An empty "reason:" (null) followed by a comment line. */
        static const char empty[] = "apiVersion: cloudtaser.io/v1\nkind: MigrationPlan\n"
                                    "metadata: {name: p, cluster: c}\ntenants:\n- name: a\n"
                                    "  namespace: a\n  workloads:\n  - kind: Deployment\n"
                                    "    name: x\n    status: failed\n    reason:\n"
                                    "    # keep me\n    secrets: []\n";
        _cleanup_free_ char *e1 =
                subst(empty, "    status: failed\n    reason:\n", "    status: migrated\n");
        expect_edit(empty, 0, PLAN_MIGRATED, NULL, e1, "an empty reason: its line removed");
        _cleanup_free_ char *e2 = subst(empty, "    status: failed\n    reason:\n",
                                        "    status: failed\n    reason: \"boom now\"\n");
        expect_edit(empty, 0, PLAN_FAILED, "boom now", e2, "an empty reason: filled in");

        /* A layout that cannot be edited in place: the plan anew, still only that change. */
        _cleanup_free_ char *blk =
                reviewed("status: 'pending'   # was reviewed", "status: |-\n      pending");
        _cleanup_buf_ struct buf out = BUF_INIT(1 << 20, 0);
        _cleanup_plan_ struct plan *before = NULL, *after = NULL;
        struct plan_error e;
        is_int(plan_set_status_text(blk, strlen(blk), 0, 0, PLAN_MIGRATED, NULL, &out, &e), 0,
               "a block-scalar status: rewritten");
        ok(plan_parse(blk, strlen(blk), &before, &e) == 0 &&
                   plan_parse(out.data, out.len, &after, &e) == 0 &&
                   after->tenants[0].workloads[0].status == PLAN_MIGRATED,
           "as a plan with the new status");
        if (before && after) {
                before->tenants[0].workloads[0].status = PLAN_MIGRATED;
                ok(plan_equal(before, after), "and nothing else changed");
        }
        is_int(plan_set_status_text(REVIEWED, strlen(REVIEWED), 0, 9, PLAN_MIGRATED, NULL, &out,
                                    &e),
               -ERANGE, "no such workload: -ERANGE");
        buf_reset(&out);
        is_int(plan_set_status_text(REVIEWED, strlen(REVIEWED), 0, 0, PLAN_FAILED,
                                    "exit 1:\nstack\ttrace", &out, &e),
               0, "a reason over several lines is taken");
        ok(strstr(buf_cstr(&out), "    reason: \"exit 1: stack trace\"\n") != NULL,
           "on one line, its control characters as spaces");
        char big[PLAN_MAX_STRING + 10];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        big[PLAN_MAX_STRING - 1] = (char) 0xc3; /* a 2-byte character across the cut */
        big[PLAN_MAX_STRING] = (char) 0xa9;
        _cleanup_plan_ struct plan *cut = NULL;
        buf_reset(&out);
        ok(plan_set_status_text(REVIEWED, strlen(REVIEWED), 0, 0, PLAN_FAILED, big, &out, &e) ==
                           0 &&
                   plan_parse(out.data, out.len, &cut, &e) == 0 &&
                   strlen(cut->tenants[0].workloads[0].reason) == PLAN_MAX_STRING - 1,
           "a reason over the limit is cut, at a character boundary");
        is_int(plan_set_status_text(REVIEWED, strlen(REVIEWED), 0, 0, PLAN_FAILED, "bad \xff", &out,
                                    &e),
               -EINVAL, "a reason that is not UTF-8: -EINVAL");
        is_int(plan_set_status_text("a: [", 4, 0, 0, PLAN_MIGRATED, NULL, &out, &e), -EBADMSG,
               "not a plan: -EBADMSG");
}

static void test_set_status_file(void) {
        char path[PATH_MAX + 16];
        _cleanup_plan_ struct plan *p = NULL;
        struct plan_error e;
        (void) snprintf(path, sizeof(path), "%s/reviewed.yaml", workdir);
        (void) write_text(path, REVIEWED);
        is_int(plan_load(path, &p, &e), 0, "the reviewed plan loads");
        is_int(plan_set_status(p, path, 0, 2, PLAN_MIGRATED, NULL), 0, "status set in the file");
        _cleanup_free_ char *want = reviewed("  - status: failed\n    reason: \"image pull\"\n",
                                             "  - status: migrated\n");
        _cleanup_free_ char *got = read_text(path);
        ok(got && want && strcmp(got, want) == 0, "the file changed only there");
        ok(p->tenants[0].workloads[2].status == PLAN_MIGRATED && !p->tenants[0].workloads[2].reason,
           "and the plan in memory too");
        is_int(plan_set_status(p, path, 0, 1, PLAN_FAILED, "two\nlines"), 0,
               "a reason over two lines set");
        is_str(p->tenants[0].workloads[1].reason, "two lines", "in memory as it is in the file");

        /* A reviewer swapped two workloads since: the index no longer names the same one. */
        _cleanup_free_ char *swapped =
                reviewed("  - kind: Deployment\n    name: api\n", "  - kind: Deployment\n    name: "
                                                                  "api2\n");
        (void) write_text(path, swapped);
        is_int(plan_set_status(p, path, 0, 0, PLAN_FAILED, "x"), -ESTALE,
               "a file that changed under the caller: -ESTALE");
        _cleanup_free_ char *unchanged = read_text(path);
        ok(unchanged && strcmp(unchanged, swapped) == 0, "and it is left alone");
        ok(p->tenants[0].workloads[0].status == PLAN_PENDING, "the plan in memory too");
}

/* A writer killed with SIGKILL at many instants: the file always parses, whole. */
static void test_crash(void) {
        char path[PATH_MAX + 16];
        _cleanup_plan_ struct plan *p = sample(40);
        /* In memory when the machine has it: a SIGKILL tests what rename() guarantees, not the
         * disk, and a disk's fsync would make this take minutes. */
        (void) snprintf(path, sizeof(path), "%s/crash.yaml",
                        access("/dev/shm", W_OK) == 0 ? "/dev/shm" : workdir);
        if (!is_int(plan_save(p, path), 0, "a plan of 40 workloads saved"))
                return;
        unsigned bad = 0, rounds = 80, changed = 0;
        for (unsigned k = 0; k < rounds; k++) {
                int fds[2];
                if (pipe2(fds, O_CLOEXEC) < 0)
                        break;
                pid_t pid = fork();
                if (pid == 0) {
                        (void) alarm(60);
                        for (size_t i = k;; i++)
                                if (plan_set_status(p, path, 0, i % 40, (enum plan_status)(i % 4),
                                                    i % 2 ? "killed mid-way" : NULL) == 0)
                                        (void) write(fds[1], "w", 1);
                }
                (void) close(fds[1]);
                /* After 1 to 3 completed writes (whatever the machine's speed), then 0 to 3 ms
                 * later: before, during and between the steps of the next write. */
                char c;
                for (unsigned w = 0; w < k % 3 + 1; w++)
                        (void) read(fds[0], &c, 1);
                (void) close(fds[0]);
                struct timespec ts = {.tv_nsec = (long) ((k * 7919u) % 3000u) * 1000L};
                (void) nanosleep(&ts, NULL);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                _cleanup_plan_ struct plan *q = NULL;
                struct plan_error e;
                if (plan_load(path, &q, &e) < 0 || q->n_tenants != 2 ||
                    q->tenants[0].n_workloads != 40) {
                        bad++;
                        diag("round %u: %u:%u: %s", k, e.line, e.column, e.message);
                } else if (!plan_equal(p, q))
                        changed++;
        }
        (void) unlink(path);
        is_int(bad, 0, "after %u kills at different instants the plan always parses whole", rounds);
        ok(changed > 0, "and the writer did change it (%u of %u rounds)", changed, rounds);
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        (void) snprintf(workdir, sizeof(workdir), "%s/test-cli-plan.XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(workdir))
                return 1;
        test_round_trip();
        test_reviewer_layout();
        test_errors();
        test_set_status();
        test_set_status_file();
        test_crash();
        char cmd[PATH_MAX + 16];
        (void) snprintf(cmd, sizeof(cmd), "%s", workdir);
        /* rm -r of our own temporary directory, without a shell */
        pid_t pid = fork();
        if (pid == 0) {
                execlp("rm", "rm", "-rf", cmd, (char *) NULL);
                _exit(127);
        }
        (void) waitpid(pid, NULL, 0);
        return tap_done();
}
