/* SPDX-License-Identifier: Apache-2.0 */
/* vault-sys: see vault-sys.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/strv.h"
#include "common/vault-sys.h"

static void fail(struct vault_error *err, int r, const char *path, const char *message) {
        if (!err)
                return;
        *err = (struct vault_error){.error = r};
        (void) snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
        (void) snprintf(err->message, sizeof(err->message), "%s", message);
}

static int decode_seal_status(const struct json_value *o, struct vault_seal_status *ret) {
        struct vault_seal_status s = {};
        if (json_get_bool(o, "sealed", &s.sealed) < 0)
                return -EBADMSG;
        (void) json_get_bool(o, "initialized", &s.initialized);
        (void) json_get_int64(o, "n", &s.shares);
        (void) json_get_int64(o, "t", &s.threshold);
        (void) json_get_int64(o, "progress", &s.progress);
        if (ret)
                *ret = s;
        return 0;
}

int vault_sys_seal_status(struct vault_client *c, struct vault_seal_status *ret,
                          struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int r = vault_request_json(c, HTTP_GET, "sys/seal-status", NULL, false, &d, err);
        if (r < 0)
                return r;
        if (!d || decode_seal_status(json_doc_root(d), ret) < 0) {
                fail(err, -EBADMSG, "sys/seal-status", "malformed seal status");
                return -EBADMSG;
        }
        return 0;
}

struct vault_init_keys *vault_init_keys_free(struct vault_init_keys *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n_keys; i++)
                secmem_free(k->keys[i]);
        free(k->keys);
        secmem_free(k->root_token);
        free(k);
        return NULL;
}

int vault_sys_init(struct vault_client *c, unsigned shares, unsigned threshold,
                   struct vault_init_keys **ret, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(256, 0);
        _cleanup_vault_init_keys_ struct vault_init_keys *k = NULL;
        const struct json_value *keys;
        const char *s;
        int r;

        if (!ret || shares < 1 || threshold < 1 || threshold > shares ||
            shares > VAULT_SYS_MAX_SHARES) {
                fail(err, -EINVAL, "sys/init", "invalid key shares or threshold");
                return -EINVAL;
        }
        r = buf_printf(&body, "{\"secret_shares\":%u,\"secret_threshold\":%u}", shares, threshold);
        if (r < 0)
                return r;
        r = vault_request_json(c, HTTP_PUT, "sys/init", &body, false, &d, err);
        if (r < 0)
                return r;
        const struct json_value *root = d ? json_doc_root(d) : NULL;
        if ((json_get_array(root, "keys_base64", &keys) < 0 &&
             json_get_array(root, "keys", &keys) < 0) ||
            json_count(keys) != shares || json_get_string(root, "root_token", &s) < 0 || !s[0]) {
                fail(err, -EBADMSG, "sys/init", "the answer lacks the keys or the root token");
                return -EBADMSG;
        }
        k = calloc(1, sizeof(*k));
        if (!k || !(k->keys = calloc(shares, sizeof(char *))))
                return -ENOMEM;
        r = secmem_strndup(s, VAULT_TOKEN_MAX, &k->root_token);
        if (r < 0)
                return r;
        JSON_FOREACH(e, keys) {
                if (json_string(e, &s) < 0 || !s[0]) {
                        fail(err, -EBADMSG, "sys/init", "an unseal key is not a string");
                        return -EBADMSG;
                }
                r = secmem_strndup(s, 1024, &k->keys[k->n_keys]);
                if (r < 0)
                        return r;
                k->n_keys++;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

int vault_sys_unseal(struct vault_client *c, const char *key, struct vault_seal_status *ret,
                     struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL, *req = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(8192, BUF_SECURE);
        int r;

        if (!key || !key[0]) {
                fail(err, -EINVAL, "sys/unseal", "no key");
                return -EINVAL;
        }
        r = json_doc_new(JSON_SECURE, 16384, &req);
        if (r >= 0)
                r = json_add_string(req, json_doc_root(req), "key", key);
        if (r >= 0)
                r = json_print(json_doc_root(req), &body);
        if (r < 0)
                return r;
        r = vault_request_json(c, HTTP_PUT, "sys/unseal", &body, false, &d, err);
        if (r < 0)
                return r;
        if (!d || decode_seal_status(json_doc_root(d), ret) < 0) {
                fail(err, -EBADMSG, "sys/unseal", "malformed seal status");
                return -EBADMSG;
        }
        return 0;
}

/* "secret" -> "secret/" into dst. */
static int mount_key(const char *path, char *dst, size_t n) {
        size_t l = path ? strlen(path) : 0;
        while (l > 0 && path[l - 1] == '/')
                l--;
        if (l == 0 || l + 2 > n)
                return -EINVAL;
        (void) snprintf(dst, n, "%.*s/", (int) l, path);
        return vault_path_valid(dst) ? 0 : -EINVAL;
}

int vault_sys_mount_get(struct vault_client *c, bool auth, const char *path,
                        struct vault_mount_info *ret, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char key[VAULT_PATH_MAX];
        const char *table = auth ? "sys/auth" : "sys/mounts", *s;
        int r;

        if (mount_key(path, key, sizeof(key)) < 0) {
                fail(err, -EINVAL, table, "invalid mount path");
                return -EINVAL;
        }
        r = vault_logical_read(c, table, &d, err);
        if (r < 0)
                return r;
        const struct json_value *root = d ? json_doc_root(d) : NULL;
        /* Vault answers the table both at the top level and under "data": prefer "data". */
        const struct json_value *data = json_get(root, "data");
        const struct json_value *m = json_get(json_type(data) == JSON_OBJECT ? data : root, key);
        if (!m) {
                fail(err, -ENOENT, table, "no such mount");
                return -ENOENT;
        }
        if (json_get_string(m, "type", &s) < 0) {
                fail(err, -EBADMSG, table, "a mount without a type");
                return -EBADMSG;
        }
        struct vault_mount_info info = {};
        (void) snprintf(info.type, sizeof(info.type), "%s", s);
        if (json_get_string(json_get(m, "options"), "version", &s) >= 0)
                (void) snprintf(info.kv_version, sizeof(info.kv_version), "%s", s);
        if (json_get_string(m, "accessor", &s) >= 0)
                (void) snprintf(info.accessor, sizeof(info.accessor), "%s", s);
        if (ret)
                *ret = info;
        return 0;
}

int vault_sys_mount_enable(struct vault_client *c, bool auth, const char *path, const char *type,
                           const char *kv_version, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *req = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(4096, 0);
        char key[VAULT_PATH_MAX], api[VAULT_PATH_MAX + 16];
        struct json_value *opts;
        int r;

        if (mount_key(path, key, sizeof(key)) < 0 || !type || !type[0]) {
                fail(err, -EINVAL, path, "invalid mount path or type");
                return -EINVAL;
        }
        key[strlen(key) - 1] = '\0';
        (void) snprintf(api, sizeof(api), "%s/%s", auth ? "sys/auth" : "sys/mounts", key);
        r = json_doc_new(0, 8192, &req);
        if (r >= 0)
                r = json_add_string(req, json_doc_root(req), "type", type);
        if (r >= 0 && kv_version) {
                r = json_add_object(req, json_doc_root(req), "options", &opts);
                if (r >= 0)
                        r = json_add_string(req, opts, "version", kv_version);
        }
        if (r >= 0)
                r = json_print(json_doc_root(req), &body);
        if (r < 0)
                return r;
        return vault_request_json(c, HTTP_POST, api, &body, true, NULL, err);
}

static int policy_api(const char *name, char *dst, size_t n, struct vault_error *err) {
        int w = name && name[0] && !strchr(name, '/')
                        ? snprintf(dst, n, "sys/policies/acl/%s", name)
                        : -1;
        if (w < 0 || (size_t) w >= n || !vault_path_valid(dst)) {
                fail(err, -EINVAL, "sys/policies/acl", "invalid policy name");
                return -EINVAL;
        }
        return 0;
}

int vault_sys_policy_read(struct vault_client *c, const char *name, char **ret,
                          struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char api[VAULT_PATH_MAX];
        const char *s;
        int r;

        r = policy_api(name, api, sizeof(api), err);
        if (r < 0)
                return r;
        r = vault_logical_read(c, api, &d, err);
        if (r < 0)
                return r;
        const struct json_value *root = d ? json_doc_root(d) : NULL;
        const struct json_value *data = json_get(root, "data");
        if (json_get_string(data, "policy", &s) < 0 && json_get_string(root, "policy", &s) < 0) {
                fail(err, -EBADMSG, api, "the answer has no policy text");
                return -EBADMSG;
        }
        if (strlen(s) > VAULT_SYS_MAX_POLICY) {
                fail(err, -E2BIG, api, "policy too large");
                return -E2BIG;
        }
        char *t = strdup(s);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

int vault_sys_policy_write(struct vault_client *c, const char *name, const char *text,
                           struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *req = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_SYS_MAX_POLICY * 2, 0);
        char api[VAULT_PATH_MAX];
        int r;

        r = policy_api(name, api, sizeof(api), err);
        if (r < 0)
                return r;
        if (!text || strlen(text) > VAULT_SYS_MAX_POLICY) {
                fail(err, -E2BIG, api, "policy too large");
                return -E2BIG;
        }
        r = json_doc_new(0, VAULT_SYS_MAX_POLICY * 2 + 4096, &req);
        if (r >= 0)
                r = json_add_string(req, json_doc_root(req), "policy", text);
        if (r >= 0)
                r = json_print(json_doc_root(req), &body);
        if (r < 0)
                return r;
        return vault_request_json(c, HTTP_PUT, api, &body, true, NULL, err);
}

int vault_sys_policy_delete(struct vault_client *c, const char *name, struct vault_error *err) {
        char api[VAULT_PATH_MAX];
        int r = policy_api(name, api, sizeof(api), err);
        if (r < 0)
                return r;
        return vault_request_json(c, HTTP_DELETE, api, NULL, true, NULL, err);
}

int vault_sys_policy_read_paths(const char *const *comments, size_t n_comments,
                                const char *const *paths, size_t n, bool kv_metadata,
                                struct buf *out) {
        size_t len0;
        int r = 0;

        if ((!comments && n_comments) || (!paths && n) || !out)
                return -EINVAL;
        len0 = out->len;
        for (size_t i = 0; r >= 0 && i < n_comments; i++)
                r = strchr(comments[i], '\n') ? -EINVAL : buf_printf(out, "# %s\n", comments[i]);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *path = paths[i], *slash = strchr(path, '/');
                if (!vault_path_valid(path) || strpbrk(path, "\"*+\\\n"))
                        r = -EINVAL; /* never a glob, never a way out of the quotes */
                else
                        r = buf_printf(out, "path \"%s\" {\n  capabilities = [\"read\"]\n}\n",
                                       path);
                /* KV v2 (<mount>/data/<key>): the metadata too, for version polling. */
                if (r >= 0 && kv_metadata && slash && strncmp(slash, "/data/", 6) == 0)
                        r = buf_printf(out,
                                       "path \"%.*s/metadata/%s\" {\n  capabilities = "
                                       "[\"read\"]\n}\n",
                                       (int) (slash - path), path, slash + 6);
        }
        if (r < 0) {
                buf_truncate(out, len0);
                return r;
        }
        return 0;
}

int vault_sys_policy_comment(const char *text, const char *key, char *ret, size_t size) {
        size_t klen;
        if (!text || !key || !ret || !size || !*key || strchr(key, '\n'))
                return -EINVAL;
        klen = strlen(key);
        for (const char *line = text; line && *line;) {
                const char *next = strchr(line, '\n');
                if (strncmp(line, "# ", 2) == 0 && strncmp(line + 2, key, klen) == 0 &&
                    strncmp(line + 2 + klen, ": ", 2) == 0) {
                        const char *v = line + 2 + klen + 2;
                        size_t n = next ? (size_t) (next - v) : strlen(v);
                        if (n == 0 || n >= size)
                                return -ENOENT;
                        memcpy(ret, v, n);
                        ret[n] = '\0';
                        return 0;
                }
                line = next ? next + 1 : NULL;
        }
        return -ENOENT;
}

int vault_sys_policy_list(struct vault_client *c, const char *prefix, char ***ret_names,
                          size_t *ret_n, struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *keys;
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0;
        int r;

        if (!ret_names || !ret_n)
                return -EINVAL;
        r = vault_request_json(c, HTTP_LIST, "sys/policies/acl", NULL, true, &d, err);
        if (r < 0)
                return r;
        if (!d || json_get_array(json_get(json_doc_root(d), "data"), "keys", &keys) < 0) {
                fail(err, -EBADMSG, "sys/policies/acl", "the answer has no keys");
                return -EBADMSG;
        }
        JSON_FOREACH(e, keys) {
                const char *s;
                if (json_string(e, &s) < 0) {
                        r = -EBADMSG;
                        break;
                }
                if (prefix && strncmp(s, prefix, strlen(prefix)) != 0)
                        continue;
                r = strv_extend(&names, &n, VAULT_SYS_MAX_POLICIES, s);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                fail(err, r, "sys/policies/acl", "cannot read the policy list");
                return r;
        }
        *ret_names = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

static const char *const cap_names[] = {"deny",  "read",   "list", "create", "update",
                                        "patch", "delete", "sudo", "root"};

unsigned vault_cap_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(cap_names); i++)
                if (strcmp(s, cap_names[i]) == 0)
                        return 1u << i;
        return 0;
}

char *vault_caps_to_string(unsigned caps, char *dst, size_t n) {
        size_t o = 0;
        if (n == 0)
                return dst;
        dst[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(cap_names) + 1; i++) {
                const char *name = i < ELEMENTSOF(cap_names) ? cap_names[i] : "other";
                if (!(caps & (1u << i)))
                        continue;
                int w = snprintf(dst + o, n - o, "%s%s", o ? "," : "", name);
                if (w < 0 || (size_t) w >= n - o)
                        break;
                o += (size_t) w;
        }
        if (!dst[0])
                (void) snprintf(dst, n, "deny");
        return dst;
}

int vault_sys_capabilities_self(struct vault_client *c, const char *path, unsigned *ret,
                                struct vault_error *err) {
        _cleanup_json_doc_ struct json_doc *req = NULL, *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_PATH_MAX * 2 + 64, 0);
        struct json_value *paths;
        const struct json_value *caps;
        unsigned bits = 0;
        int r;

        if (!vault_path_valid(path) || !ret) {
                fail(err, -EINVAL, "sys/capabilities-self", "invalid path");
                return -EINVAL;
        }
        r = json_doc_new(0, 16384, &req);
        if (r >= 0)
                r = json_add_array(req, json_doc_root(req), "paths", &paths);
        if (r >= 0)
                r = json_add_string(req, paths, NULL, path);
        if (r >= 0)
                r = json_print(json_doc_root(req), &body);
        if (r < 0)
                return r;
        r = vault_request_json(c, HTTP_POST, "sys/capabilities-self", &body, true, &d, err);
        if (r < 0)
                return r;
        /* The answer names the path ("<path>": [...]) and, for older servers, "capabilities";
         * both at the top level and under "data". */
        const struct json_value *root = d ? json_doc_root(d) : NULL, *data = json_get(root, "data");
        if (json_get_array(data, path, &caps) < 0 && json_get_array(root, path, &caps) < 0 &&
            json_get_array(data, "capabilities", &caps) < 0 &&
            json_get_array(root, "capabilities", &caps) < 0) {
                fail(err, -EBADMSG, "sys/capabilities-self", "the answer has no capabilities");
                return -EBADMSG;
        }
        JSON_FOREACH(e, caps) {
                const char *s;
                if (json_string(e, &s) < 0) {
                        fail(err, -EBADMSG, "sys/capabilities-self",
                             "a capability is not a string");
                        return -EBADMSG;
                }
                unsigned b = vault_cap_from_string(s);
                bits |= b ? b : VAULT_CAP_OTHER;
        }
        *ret = bits;
        return 0;
}
