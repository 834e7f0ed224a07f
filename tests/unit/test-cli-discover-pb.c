/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cli/discover-pb: lists the real kube-apiserver served in both encodings
 * (tests/fixtures/cli/pb/<kind>.pb and .json: a Deployment with every shape of Secret use, init
 * containers, Vault Agent annotations, Bank-Vaults values and literal values; a StatefulSet; a
 * DaemonSet with Bank-Vaults annotations) give the same plan workloads through discover_scan();
 * the literal values are not copied; malformed input of each kind is refused, never a partial
 * tree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/discover-pb.h"
#include "cli/discover.h"
#include "cli/plan.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "tests/tap.h"

static char fixtures[4096];

static int read_fixture(const char *name, struct buf *b) {
        char path[4200];
        (void) snprintf(path, sizeof(path), "%s/%s", fixtures, name);
        return buf_read_file(b, path);
}

/* The workloads discover finds in a list, formatted as a plan (the same text for the same
 * findings). */
static char *scan_all(const struct json_value *root, enum plan_kind k) {
        struct discover_config c = {.cluster = "c"};
        struct plan p = {.name = (char *) "t", .cluster = (char *) "c"};
        struct plan_tenant t = {.name = (char *) "pbfix", .namespace_ = (char *) "pbfix"};
        struct plan_workload ws[8];
        size_t n = 0;
        JSON_FOREACH(item, json_get(root, "items")) {
                if (n < ELEMENTSOF(ws) && discover_scan(item, k, "pbfix", &c, &ws[n], NULL) == 1)
                        n++;
        }
        t.workloads = ws;
        t.n_workloads = n;
        p.tenants = &t;
        p.n_tenants = 1;
        struct buf out = BUF_INIT(1 << 20, 0);
        char *s = NULL;
        size_t len;
        if (plan_format(&p, &out) < 0 || buf_steal(&out, &s, &len) < 0)
                buf_done(&out);
        for (size_t i = 0; i < n; i++)
                plan_workload_done(&ws[i]);
        return s;
}

static void test_same_as_json(void) {
        static const struct {
                const char *name;
                enum plan_kind kind;
                size_t workloads;
        } lists[] = {
                {"deployments", PLAN_DEPLOYMENT, 1},
                {"statefulsets", PLAN_STATEFULSET, 1},
                {"daemonsets", PLAN_DAEMONSET, 1},
        };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                _cleanup_buf_ struct buf pb = BUF_INIT(1 << 20, 0), js = BUF_INIT(1 << 20, 0);
                _cleanup_buf_ struct buf printed = BUF_INIT(1 << 20, 0);
                _cleanup_json_doc_ struct json_doc *a = NULL, *b = NULL;
                char n1[64], n2[64];
                (void) snprintf(n1, sizeof(n1), "%s.pb", lists[i].name);
                (void) snprintf(n2, sizeof(n2), "%s.json", lists[i].name);
                if (!ok(read_fixture(n1, &pb) >= 0 && read_fixture(n2, &js) >= 0,
                        "%s: the fixtures are there", lists[i].name))
                        continue;
                int r = discover_pb_list(pb.data, pb.len, lists[i].kind, &a);
                is_int(r, 0, "%s: the protobuf list decodes", lists[i].name);
                ok(json_parse(js.data, js.len, 0, NULL, &b) == 0, "%s: the JSON list parses",
                   lists[i].name);
                if (r < 0 || !b)
                        continue;
                is_int((long long) json_count(json_get(json_doc_root(a), "items")),
                       (long long) lists[i].workloads, "%s: its items", lists[i].name);
                _cleanup_free_ char *pa = scan_all(json_doc_root(a), lists[i].kind);
                _cleanup_free_ char *pj = scan_all(json_doc_root(b), lists[i].kind);
                ok(pa && pj && strstr(pa, "    secrets:"), "%s: both give a plan with secrets",
                   lists[i].name);
                is_str(pa, pj, "%s: the same plan from protobuf as from JSON", lists[i].name);
                ok(json_print(json_doc_root(a), &printed) == 0 &&
                           !strstr(buf_cstr(&printed), "literal-value-not-copied") &&
                           !strstr(buf_cstr(&printed), "managedFields"),
                   "%s: no literal env value, nothing discover does not read", lists[i].name);
                _cleanup_json_doc_ struct json_doc *x = NULL;
                is_int(discover_pb_list(pb.data, pb.len,
                                        lists[i].kind == PLAN_DEPLOYMENT ? PLAN_DAEMONSET
                                                                         : PLAN_DEPLOYMENT,
                                        &x),
                       -EBADMSG, "%s: refused as a list of another kind", lists[i].name);
        }
}

static void test_malformed(void) {
        _cleanup_buf_ struct buf pb = BUF_INIT(1 << 20, 0);
        if (!ok(read_fixture("deployments.pb", &pb) >= 0, "malformed: the fixture"))
                return;
        /* Every proper prefix of a list is refused or decodes (a cut between two fields of the
         * outer messages is a valid, shorter message): never a crash, and never an error other
         * than -EBADMSG. */
        size_t refused = 0, wrong = 0;
        for (size_t n = 0; n < pb.len; n++) {
                struct json_doc *d = NULL;
                int r = discover_pb_list(pb.data, n, PLAN_DEPLOYMENT, &d);
                refused += r < 0;
                wrong += !(r == 0 || r == -EBADMSG) || (r < 0) != (d == NULL);
                json_doc_free(d);
        }
        ok(wrong == 0 && refused > pb.len / 2,
           "malformed: every cut list refused with -EBADMSG and nothing returned, or decoded "
           "(%zu of %zu refused, %zu wrong)",
           refused, pb.len, wrong);

#define B(s) s, sizeof(s) - 1
#define KIND               \
        "\x0a\x10\x12\x0e" \
        "DeploymentList" /* runtime.Unknown's typeMeta {kind: DeploymentList} */
        static const struct {
                const char *what;
                const char *bytes;
                size_t len;
        } bad[] = {
                {"no magic", B("k9s\0" KIND "\x12\x00")},
                {"a truncated varint", B("k8s\0" KIND "\x12\x80")},
                {"a length past the end", B("k8s\0" KIND "\x12\x05\x12\x03")},
                {"no kind", B("k8s\0\x12\x00")},
                {"raw twice", B("k8s\0" KIND "\x12\x00\x12\x00")},
                {"a message field with a varint wire type", B("k8s\0" KIND "\x12\x02\x10\x01")},
                {"a content encoding", B("k8s\0" KIND "\x12\x00\x1a\x04gzip")},
                {"a NUL in a string",
                 B("k8s\0" KIND "\x12\x09\x12\x07\x0a\x05\x0a\x03\x61\x00\x62")},
                {"a name given twice",
                 B("k8s\0" KIND "\x12\x0a\x12\x08\x0a\x06\x0a\x01\x61\x0a\x01\x62")},
                {"a group wire type", B("k8s\0" KIND "\x12\x01\x0b")},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct json_doc *d = NULL;
                is_int(discover_pb_list(bad[i].bytes, bad[i].len, PLAN_DEPLOYMENT, &d), -EBADMSG,
                       "malformed: %s", bad[i].what);
                ok(!d, "malformed: %s: nothing returned", bad[i].what);
        }
        /* The smallest valid list: no items. */
        struct json_doc *d = NULL;
        is_int(discover_pb_list(B("k8s\0" KIND "\x12\x00"), PLAN_DEPLOYMENT, &d), 0,
               "an empty list decodes");
        ok(d && json_count(json_get(json_doc_root(d), "items")) == 0, "with no items");
        json_doc_free(d);
}

int main(void) {
        const char *top = getenv("CLOUDTASER_TOP");
        (void) snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/cli/pb", top ? top : ".");
        test_same_as_json();
        test_malformed();
        return tap_done();
}
