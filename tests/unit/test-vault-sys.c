/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/vault-sys against the stand-in vault: sys/seal-status, sys/init (its
 * argument checks before any request, the keys and token it returns), sys/unseal, the mount
 * tables, ACL policies, sys/capabilities-self (root, a limited token, an answer without
 * capabilities), the capability names; and what the sealed mode's unsealer uses: policy list and
 * delete, a child token through a token role (orphan, allowed_policies_glob) with response
 * wrapping, its unwrap (single use), revoke by accessor. The same calls run on the real OpenBao
 * through tests/e2e/test-real-cli-source.sh and tests/e2e/test-real-sealed.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/strv.h"
#include "common/vault-sys.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

static struct standin *s;

static struct vault_client *client(const char *token) {
        struct vault_client *c = NULL;
        struct vault_options o = {.addr = s->addr, .ca_file = s->ca_path, .deadline_ms = 10000};
        if (vault_client_new(&o, &c) < 0)
                return NULL;
        if (token)
                (void) vault_set_token(c, token, strlen(token));
        return c;
}

/* Whether the stand-in counted a request whose "METHOD /v1/path" starts with what. */
static int seen(const char *what) {
        char *body = NULL;
        int st = 0;
        if (standin_control(s, "GET", "/_standin/stats", NULL, &st, &body) < 0 || !body)
                return -1;
        int r = strstr(body, what) != NULL;
        free(body);
        return r;
}

static void test_init(void) {
        _cleanup_vault_client_ struct vault_client *c = client(NULL);
        _cleanup_vault_init_keys_ struct vault_init_keys *k = NULL;
        struct vault_seal_status st = {};
        struct vault_error e;

        is_int(vault_sys_seal_status(c, &st, &e), 0, "seal-status");
        ok(!st.initialized && st.sealed, "  uninitialised, sealed");
        is_int(vault_sys_init(c, 3, 4, &k, &e), -EINVAL, "init: threshold above shares");
        is_int(vault_sys_init(c, 0, 0, &k, &e), -EINVAL, "init: no shares");
        is_int(seen("PUT /v1/sys/seal-status"), 0,
               "  (the stats name requests by method and path)");
        is_int(seen("PUT /v1/sys/init"), 0, "  neither reached the vault");
        ok(vault_sys_init(c, 2, 1, &k, &e) == -EINVAL && strstr(e.message, "threshold"),
           "init: threshold 1 of 2 is refused by the vault, with its text");
        is_int(vault_sys_init(c, 3, 2, &k, &e), 0, "init 3 shares, threshold 2");
        ok(k && k->n_keys == 3 && k->keys[0][0] && k->root_token && k->root_token[0],
           "  3 keys and a root token");
        ok(k && secmem_size(k->root_token) > 0 && secmem_size(k->keys[2]) > 0, "  in secmem");
        _cleanup_vault_init_keys_ struct vault_init_keys *again = NULL;
        ok(vault_sys_init(c, 1, 1, &again, &e) == -EINVAL && strstr(e.message, "already"),
           "init again: -EINVAL, the server's text");
        is_int(vault_sys_unseal(c, k->keys[0], &st, &e), 0, "unseal with key 1");
        ok(st.sealed && st.progress == 1 && st.threshold == 2, "  still sealed, progress 1 of 2");
        is_int(vault_sys_unseal(c, k->keys[2], &st, &e), 0, "unseal with key 3");
        ok(!st.sealed, "  unsealed");
        is_int(vault_sys_unseal(c, "", &st, &e), -EINVAL, "unseal with no key: -EINVAL");
}

static void test_mounts_policies(void) {
        _cleanup_vault_client_ struct vault_client *c = client(s->root_token);
        _cleanup_free_ char *text = NULL;
        struct vault_mount_info m = {};
        struct vault_error e;

        is_int(vault_sys_mount_get(c, false, "secret", &m, &e), 0, "mount secret/");
        ok(strcmp(m.type, "kv") == 0 && strcmp(m.kv_version, "2") == 0, "  kv v2");
        is_int(vault_sys_mount_get(c, true, "kubernetes/", &m, &e), 0, "auth kubernetes/");
        is_str(m.type, "kubernetes", "  its type");
        is_int(vault_sys_mount_get(c, false, "nope", &m, &e), -ENOENT, "no such mount: -ENOENT");
        is_int(vault_sys_mount_get(c, false, "", &m, &e), -EINVAL, "an empty mount: -EINVAL");
        is_int(vault_sys_mount_enable(c, false, "kv2b", "kv", "2", &e), 0, "enable kv v2 at kv2b/");
        ok(vault_sys_mount_get(c, false, "kv2b", &m, &e) == 0 && strcmp(m.kv_version, "2") == 0,
           "  there, v2");
        is_int(vault_sys_mount_enable(c, true, "k8s2", "kubernetes", NULL, &e), 0,
               "enable kubernetes auth at k8s2/");

        is_int(vault_sys_policy_read(c, "p1", &text, &e), -ENOENT, "no policy p1: -ENOENT");
        is_int(vault_sys_policy_write(c, "p1",
                                      "path \"secret/data/a\" {\n  capabilities = "
                                      "[\"read\"]\n}\n",
                                      &e),
               0, "write policy p1");
        is_int(vault_sys_policy_read(c, "p1", &text, &e), 0, "read it back");
        is_str(text, "path \"secret/data/a\" {\n  capabilities = [\"read\"]\n}\n",
               "  the same text");
        is_int(vault_sys_policy_write(c, "a/b", "x", &e), -EINVAL, "a policy name with '/'");
}

static void test_capabilities(void) {
        _cleanup_vault_client_ struct vault_client *root = client(s->root_token);
        char buf[128];
        unsigned caps = 0;
        struct vault_error e;

        is_int(vault_sys_capabilities_self(root, "secret/data/a", &caps, &e), 0,
               "capabilities-self as root");
        is_str(vault_caps_to_string(caps, buf, sizeof(buf)), "root", "  root");

        /* A token with p1 only: read on its path, nothing beside it. */
        _cleanup_vault_client_ struct vault_client *lim = NULL;
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(256, 0);
        const char *tok;
        (void) buf_append_str(&body, "{\"policies\": [\"p1\"], \"ttl\": \"10m\"}");
        if (vault_logical_write(root, "auth/token/create", &body, &d, &e) >= 0 && d &&
            json_get_string(json_get(json_doc_root(d), "auth"), "client_token", &tok) >= 0)
                lim = client(tok);
        ok(lim != NULL, "a token with policy p1");
        is_int(vault_sys_capabilities_self(lim, "secret/data/a", &caps, &e), 0, "  on its path");
        is_str(vault_caps_to_string(caps, buf, sizeof(buf)), "read", "  read");
        is_int(vault_sys_capabilities_self(lim, "secret/data/b", &caps, &e), 0, "  beside it");
        is_str(vault_caps_to_string(caps, buf, sizeof(buf)), "deny", "  deny");
        is_int(vault_sys_capabilities_self(lim, "bad//path", &caps, &e), -EINVAL,
               "an invalid path: -EINVAL");

        (void) standin_control(s, "POST", "/_standin/fault",
                               "{\"match\": \"sys/capabilities-self\", \"kind\": \"status\", "
                               "\"status\": 200, \"body\": {\"data\": {}}}",
                               NULL, NULL);
        is_int(vault_sys_capabilities_self(lim, "secret/data/a", &caps, &e), -EBADMSG,
               "an answer without capabilities: -EBADMSG");

        is_int(vault_cap_from_string("update"), VAULT_CAP_UPDATE, "cap names: update");
        is_int(vault_cap_from_string("fly"), 0, "  an unknown one is 0");
        is_str(vault_caps_to_string(VAULT_CAP_READ | VAULT_CAP_LIST | VAULT_CAP_OTHER, buf,
                                    sizeof(buf)),
               "read,list,other", "  read,list,other");
}

/* The unsealer's calls: a per-pod policy, a wrapped child token of a token role, unwrap once,
 * revoke by accessor, the policy listed and deleted. */
static void test_child_tokens(void) {
        _cleanup_vault_client_ struct vault_client *root = client(s->root_token);
        _cleanup_vault_client_ struct vault_client *pod = client(NULL);
        _cleanup_vault_client_ struct vault_client *thief = client(NULL);
        _cleanup_buf_ struct buf body = BUF_INIT(512, 0);
        _cleanup_secmem_ char *wrapping = NULL;
        struct vault_token_info ti = {};
        struct vault_auth a = {};
        struct vault_error e;
        char acc[VAULT_ACCESSOR_MAX], **names = NULL;
        size_t n = 0;
        unsigned caps = 0;

        (void) buf_append_str(&body, "{\"orphan\": true, \"allowed_policies_glob\": "
                                     "[\"cloudtaser-pod-*\"], \"renewable\": true}");
        is_int(vault_logical_write(root, "auth/token/roles/cloudtaser-pod", &body, NULL, &e), 0,
               "token role cloudtaser-pod");
        is_int(vault_sys_policy_write(root, "cloudtaser-pod-u1",
                                      "path \"secret/data/ns1/a\" {\n  capabilities = "
                                      "[\"read\"]\n}\n",
                                      &e),
               0, "policy cloudtaser-pod-u1");
        is_int(vault_sys_policy_write(root, "other", "path \"x\" { capabilities = [\"read\"] }",
                                      &e),
               0, "and another policy");
        is_int(vault_sys_policy_list(root, "cloudtaser-pod-", &names, &n, &e), 0, "policy list");
        ok(n == 1 && strcmp(names[0], "cloudtaser-pod-u1") == 0, "  the prefix keeps only ours");
        (void) strv_free(names);

        struct vault_child_token bad = {.policy = "other"};
        ok(vault_token_create_wrapped(root, "cloudtaser-pod", &bad, 60, &wrapping, acc, sizeof(acc),
                                      &e) < 0 &&
                   !wrapping,
           "a policy the role does not allow: refused");
        struct vault_child_token t = {
                .policy = "cloudtaser-pod-u1", .ttl_s = 3600, .display_name = "pod-ns1-a"};
        is_int(vault_token_create_wrapped(root, "cloudtaser-pod", &t, 60, &wrapping, acc,
                                          sizeof(acc), &e),
               0, "wrapped child token through the role");
        ok(wrapping && wrapping[0] && acc[0], "  a wrapping token and the child's accessor");
        is_int(vault_token_create_wrapped(root, "cloudtaser/pod", &t, 60, &wrapping, acc,
                                          sizeof(acc), &e),
               -EINVAL, "a role name with '/': -EINVAL");
        if (!wrapping)
                return;
        is_int(vault_unwrap_token(pod, wrapping, strlen(wrapping), &a, &e), 0, "unwrapped");
        ok(vault_has_token(pod) && strcmp(a.accessor, acc) == 0,
           "  the client has the child token, its accessor is the one wrap_info named");
        is_int(vault_token_lookup_self(pod, &ti, &e), 0, "  lookup-self with it");
        ok(strstr(ti.policies, "cloudtaser-pod-u1") != NULL, "  its policy");
        is_int(vault_sys_capabilities_self(pod, "secret/data/ns1/b", &caps, &e), 0,
               "  capabilities beside its path");
        is_int(caps, VAULT_CAP_DENY, "  deny");
        ok(vault_unwrap_token(thief, wrapping, strlen(wrapping), NULL, &e) < 0 &&
                   !vault_has_token(thief),
           "a second unwrap of the same wrapping token fails (single use)");
        is_int(vault_unwrap_token(thief, "bad token", 9, NULL, &e), -EINVAL,
               "a wrapping token with a space: -EINVAL, no request");

        is_int(vault_token_revoke_accessor(root, acc, &e), 0, "revoke by accessor");
        ok(vault_token_lookup_self(pod, &ti, &e) == -EACCES, "  the child token is gone");
        is_int(vault_token_revoke_accessor(root, acc, &e), -ENOENT, "  again: -ENOENT");
        is_int(vault_token_revoke_accessor(root, "a\"b", &e), -EINVAL, "a bad accessor: -EINVAL");
        is_int(vault_sys_policy_delete(root, "cloudtaser-pod-u1", &e), 0, "policy deleted");
        _cleanup_free_ char *text = NULL;
        is_int(vault_sys_policy_read(root, "cloudtaser-pod-u1", &text, &e), -ENOENT, "  gone");
        is_int(vault_sys_policy_delete(root, "cloudtaser-pod-u1", &e), 0,
               "  deleting it again succeeds");

        /* Unwrapped, for a caller that uses the token itself (the broker). */
        {
                _cleanup_secmem_ char *tok = NULL;
                _cleanup_vault_client_ struct vault_client *user = client(NULL);
                (void) vault_sys_policy_write(root, "cloudtaser-pod-u2",
                                              "path \"secret/data/ns1/b\" {\n  capabilities = "
                                              "[\"read\"]\n}\n",
                                              &e);
                struct vault_child_token t2 = {.policy = "cloudtaser-pod-u2", .ttl_s = 600};
                is_int(vault_token_create(root, "cloudtaser-pod", &t2, &tok, &a, &e), 0,
                       "child token through the role, not wrapped");
                ok(tok && tok[0] && a.accessor[0] && strstr(a.policies, "cloudtaser-pod-u2"),
                   "  the token, its accessor and policy");
                ok(tok && vault_set_token(user, tok, strlen(tok)) == 0 &&
                           vault_sys_capabilities_self(user, "secret/data/ns1/b", &caps, &e) == 0 &&
                           caps == VAULT_CAP_READ,
                   "  it reads its path");
                ok(vault_sys_capabilities_self(user, "secret/data/ns1/a", &caps, &e) == 0 &&
                           caps == VAULT_CAP_DENY,
                   "  and nothing else");
                _cleanup_secmem_ char *none = NULL;
                ok(vault_token_create(root, "cloudtaser-pod", &bad, &none, NULL, &e) < 0 && !none,
                   "  a policy the role does not allow: refused");
                is_int(vault_token_revoke_accessor(root, a.accessor, &e), 0, "  revoked");
                (void) vault_sys_policy_delete(root, "cloudtaser-pod-u2", &e);
        }

        static const char no_acc[] = "{\"wrap_info\": {\"token\": \"s.x\"}}";
        ok(vault_decode_wrap_info(no_acc, strlen(no_acc), NULL, acc, sizeof(acc)) == -EBADMSG,
           "decode: wrap_info without wrapped_accessor when one is asked for: -EBADMSG");
        ok(vault_decode_wrap_info("{\"data\": {}}", 12, NULL, NULL, 0) == -EBADMSG,
           "decode: no wrap_info: -EBADMSG");
}

static void test_policy_text(void) {
        _cleanup_buf_ struct buf b = BUF_INIT(VAULT_SYS_MAX_POLICY, 0);
        static const char *const comments[] = {"cloudtaser broker: pod ns1/a uid u1",
                                               "expires: 1764760900"};
        static const char *const paths[] = {"secret/data/ns1/a", "kv1/ns1/b"};
        char v[64];

        is_int(vault_sys_policy_read_paths(comments, 2, paths, 2, false, &b), 0, "policy text");
        is_str(buf_cstr(&b),
               "# cloudtaser broker: pod ns1/a uid u1\n# expires: 1764760900\n"
               "path \"secret/data/ns1/a\" {\n  capabilities = [\"read\"]\n}\n"
               "path \"kv1/ns1/b\" {\n  capabilities = [\"read\"]\n}\n",
               "  read on exactly the paths, the comments first");
        buf_reset(&b);
        is_int(vault_sys_policy_read_paths(NULL, 0, paths, 1, true, &b), 0, "with kv_metadata");
        is_str(buf_cstr(&b),
               "path \"secret/data/ns1/a\" {\n  capabilities = [\"read\"]\n}\n"
               "path \"secret/metadata/ns1/a\" {\n  capabilities = [\"read\"]\n}\n",
               "  a KV v2 path's metadata too");
        static const char *const globs[][1] = {{"secret/data/ns1/*"},
                                               {"secret/data/+/a"},
                                               {"secret/data/a\"b"},
                                               {"secret/data/../x"}};
        for (size_t i = 0; i < ELEMENTSOF(globs); i++) {
                buf_reset(&b);
                (void) buf_append_str(&b, "kept");
                ok(vault_sys_policy_read_paths(NULL, 0, globs[i], 1, false, &b) == -EINVAL &&
                           strcmp(buf_cstr(&b), "kept") == 0,
                   "'%s' refused, the buffer as it was", globs[i][0]);
        }
        static const char *const bad_comment[] = {"a\npath \"x\" {}"};
        is_int(vault_sys_policy_read_paths(bad_comment, 1, paths, 1, false, &b), -EINVAL,
               "a comment with a newline refused");
        buf_reset(&b);
        (void) vault_sys_policy_read_paths(comments, 2, paths, 1, false, &b);
        ok(vault_sys_policy_comment(buf_cstr(&b), "expires", v, sizeof(v)) == 0 &&
                   strcmp(v, "1764760900") == 0,
           "the comment read back");
        is_int(vault_sys_policy_comment(buf_cstr(&b), "accessor", v, sizeof(v)), -ENOENT,
               "  a key that is not there: -ENOENT");
        is_int(vault_sys_policy_comment(buf_cstr(&b), "expires", v, 4), -ENOENT,
               "  one that does not fit: -ENOENT");
        is_int(vault_sys_policy_comment("path \"x\" {} # expires: 1", "expires", v, sizeof(v)),
               -ENOENT, "  only at the start of a line");
}

int main(void) {
        if (standin_start("{\"seal\": {\"initialized\": false}}", &s) < 0) {
                skip(1, "no stand-in");
                return tap_done();
        }
        test_init();
        standin_stop(s);
        if (standin_start(NULL, &s) < 0) {
                ok(false, "stand-in restarted");
                return tap_done();
        }
        test_mounts_policies();
        test_capabilities();
        test_child_tokens();
        test_policy_text();
        standin_stop(s);
        return tap_done();
}
