/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/webhookconfig against the stand-in kube-apiserver: the caBundle of
 * every webhook set with one strategic merge patch, other fields and webhooks' other settings
 * kept, no patch when it is current, a missing configuration named. The same patch is made on
 * the real API server by tests/e2e/test-real-operator-credentials.sh. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/kube.h"
#include "operator/webhookconfig.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

#define MWC "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"

static struct standin *si;

static struct kube_client *client(void) {
        struct kube_client *k = NULL;
        return standin_kube_client(si, &k) < 0 ? NULL : k;
}

static const char *hook_field(struct json_doc *d, size_t i, const char *path) {
        const struct json_value *hooks = NULL, *v;
        const char *s = NULL;
        if (json_get_array(json_doc_root(d), "webhooks", &hooks) < 0)
                return NULL;
        v = json_get_path(json_array_at(hooks, i), path);
        return v && json_string(v, &s) >= 0 ? s : NULL;
}

int main(void) {
        static const char ca1[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        static const char ca2[] = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        _cleanup_buf_ struct buf b1 = BUF_INIT(4096, 0), b2 = BUF_INIT(4096, 0),
                                 obj = BUF_INIT(8192, 0);
        struct kube_error e = {};
        struct json_doc *d = NULL;
        bool changed = true;

        (void) base64_encode(&b1, ca1, strlen(ca1));
        (void) base64_encode(&b2, ca2, strlen(ca2));

        /* The decision alone. */
        /* "@" stands for the bundle. */
        static const char *const docs[][2] = {
                {"{\"webhooks\":[{\"name\":\"a\",\"clientConfig\":{\"caBundle\":\"@\"}}]}", "1"},
                {"{\"webhooks\":[{\"name\":\"a\",\"clientConfig\":{\"caBundle\":\"@\"}},"
                 "{\"name\":\"b\",\"clientConfig\":{}}]}",
                 "0"},
                {"{\"webhooks\":[{\"name\":\"a\",\"clientConfig\":{\"caBundle\":\"eA==\"}}]}", "0"},
                {"{\"webhooks\":[]}", "-"},
                {"{}", "-"},
                {"{\"webhooks\":[{\"clientConfig\":{}}]}", "-"},
        };
        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
                char text[1024];
                struct json_doc *j = NULL;
                const char *at = strchr(docs[i][0], '@');
                if (at)
                        (void) snprintf(text, sizeof(text), "%.*s%s%s", (int) (at - docs[i][0]),
                                        docs[i][0], buf_cstr(&b1), at + 1);
                else
                        (void) snprintf(text, sizeof(text), "%s", docs[i][0]);
                int r = json_parse(text, strlen(text), 0, NULL, &j);
                int got = r < 0 ? r : webhookconfig_bundle_current(json_doc_root(j), buf_cstr(&b1));
                int want = docs[i][1][0] == '-' ? -EBADMSG : docs[i][1][0] - '0';
                is_int(got, want, "bundle_current case %zu", i);
                json_doc_free(j);
        }

        int r = standin_start_kube(NULL, &si);
        if (!ok(r == 0, "the stand-in kube-apiserver starts (%d)", r))
                return tap_done();
        struct kube_client *k = client();
        ok(k != NULL, "client");

        is_int(webhookconfig_set_ca_bundle(k, "missing", ca1, strlen(ca1), &changed, &e), -ENOENT,
               "a missing configuration: -ENOENT");
        ok(e.code == 404, "with the API server's 404");

        (void) buf_printf(
                &obj,
                "{\"apiVersion\":\"admissionregistration.k8s.io/v1\","
                "\"kind\":\"MutatingWebhookConfiguration\",\"metadata\":{\"name\":\"ct\"},"
                "\"webhooks\":[{\"name\":\"inject.cloudtaser.io\",\"admissionReviewVersions\":"
                "[\"v1\"],\"sideEffects\":\"None\",\"timeoutSeconds\":7,"
                "\"clientConfig\":{\"service\":{\"name\":\"svc\",\"namespace\":\"ns\",\"path\":"
                "\"/mutate-v1-pod\"}}},"
                "{\"name\":\"second.cloudtaser.io\",\"admissionReviewVersions\":[\"v1\"],"
                "\"sideEffects\":\"None\",\"clientConfig\":{\"url\":\"https://x.example/m\","
                "\"caBundle\":\"%s\"}}]}",
                buf_cstr(&b2));
        is_int(kube_create(k, MWC, &obj, NULL, &e), 0, "configuration created: %s", e.message);

        is_int(webhookconfig_set_ca_bundle(k, "ct", ca1, strlen(ca1), &changed, &e), 0,
               "caBundle set");
        ok(changed, "a patch was sent");
        is_int(kube_get(k, MWC "/ct", &d, &e), 0, "read back");
        is_str(hook_field(d, 0, "clientConfig.caBundle"), buf_cstr(&b1), "first webhook's bundle");
        is_str(hook_field(d, 1, "clientConfig.caBundle"), buf_cstr(&b1), "second webhook's bundle");
        is_str(hook_field(d, 0, "clientConfig.service.path"), "/mutate-v1-pod", "its service kept");
        is_str(hook_field(d, 1, "clientConfig.url"), "https://x.example/m", "the other's url kept");
        is_str(hook_field(d, 1, "name"), "second.cloudtaser.io", "order and names kept");
        json_doc_free(d);
        d = NULL;

        changed = true;
        is_int(webhookconfig_set_ca_bundle(k, "ct", ca1, strlen(ca1), &changed, &e), 0,
               "set again");
        ok(!changed, "no patch when the bundle is current");

        is_int(webhookconfig_set_ca_bundle(k, "ct", ca2, strlen(ca2), &changed, &e), 0,
               "a new bundle");
        ok(changed, "patched");
        is_int(kube_get(k, MWC "/ct", &d, &e), 0, "read back");
        is_str(hook_field(d, 0, "clientConfig.caBundle"), buf_cstr(&b2), "the new bundle");
        json_doc_free(d);

        is_int(webhookconfig_set_ca_bundle(k, "Not_Valid", ca1, strlen(ca1), NULL, &e), -EINVAL,
               "an invalid name refused");
        is_int(webhookconfig_set_ca_bundle(k, "ct", ca1, 0, NULL, &e), -EINVAL,
               "an empty bundle refused");

        kube_client_free(k);
        standin_stop(si);
        return tap_done();
}
