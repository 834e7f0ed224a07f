/* SPDX-License-Identifier: Apache-2.0 */
/* operator/webhookconfig: see webhookconfig.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/webhookconfig.h"

#define MAX_PATH 512
#define MAX_PATCH (2u * 1024u * 1024u)

int webhookconfig_bundle_current(const struct json_value *config, const char *b64) {
        const struct json_value *hooks = NULL;
        if (!config || json_get_array(config, "webhooks", &hooks) < 0 || json_count(hooks) == 0)
                return -EBADMSG;
        for (const struct json_value *h = json_first_child(hooks); h; h = json_next(h)) {
                const char *name = NULL, *have = NULL;
                if (json_get_string(h, "name", &name) < 0 || !*name)
                        return -EBADMSG;
                const struct json_value *cc = json_get(h, "clientConfig");
                if (!cc || json_get_string(cc, "caBundle", &have) < 0 || strcmp(have, b64) != 0)
                        return 0;
        }
        return 1;
}

int webhookconfig_set_ca_bundle(struct kube_client *k, const char *name, const char *ca_pem,
                                size_t ca_len, bool *ret_changed, struct kube_error *err) {
        _cleanup_buf_ struct buf b64 = BUF_INIT(MAX_PATCH, 0), patch = BUF_INIT(MAX_PATCH, 0);
        struct json_doc *doc = NULL;
        char path[MAX_PATH];
        int r;

        if (!k || !name || !kube_name_valid(name) || !ca_pem || ca_len == 0)
                return -EINVAL;
        if ((size_t) snprintf(
                    path, sizeof(path),
                    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/%s",
                    name) >= sizeof(path))
                return -EINVAL;
        r = base64_encode(&b64, ca_pem, ca_len);
        if (r < 0)
                return r;
        r = kube_get(k, path, &doc, err);
        if (r < 0)
                return r;
        const struct json_value *root = json_doc_root(doc);
        r = webhookconfig_bundle_current(root, buf_cstr(&b64));
        if (r != 0) {
                json_doc_free(doc);
                if (r > 0 && ret_changed)
                        *ret_changed = false;
                return r > 0 ? 0 : r;
        }
        /* {"webhooks":[{"name":N,"clientConfig":{"caBundle":B}},...]}: the strategic merge key of
         * webhooks is their name, so no other field and no other webhook is touched. */
        const struct json_value *hooks = NULL;
        (void) json_get_array(root, "webhooks", &hooks);
        r = buf_append_str(&patch, "{\"webhooks\":[");
        bool first = true;
        for (const struct json_value *h = json_first_child(hooks); h && r >= 0; h = json_next(h)) {
                const char *hn = NULL;
                (void) json_get_string(h, "name", &hn);
                if ((r = buf_append_str(&patch, first ? "{\"name\":" : ",{\"name\":")) < 0 ||
                    (r = json_append_quoted(&patch, hn)) < 0 ||
                    (r = buf_append_str(&patch, ",\"clientConfig\":{\"caBundle\":")) < 0 ||
                    (r = json_append_quoted(&patch, buf_cstr(&b64))) < 0)
                        break;
                r = buf_append_str(&patch, "}}");
                first = false;
        }
        if (r >= 0)
                r = buf_append_str(&patch, "]}");
        json_doc_free(doc);
        if (r < 0)
                return r;
        r = kube_patch(k, path, KUBE_PATCH_STRATEGIC, &patch, NULL, err);
        if (r < 0)
                return r;
        if (ret_changed)
                *ret_changed = true;
        return 0;
}
