/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/vault's pure decoders, fed with the real payloads in tests/fixtures/vault
 * (copied from the official docs and sources, see SOURCES.md there) and hostile variants. The
 * client's network behaviour is tested end to end against the stand-in vault (tests/e2e). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

static char *fixture(const char *name, size_t *ret_len) {
        const char *top = getenv("CLOUDTASER_TOP");
        char path[1024];
        (void) snprintf(path, sizeof(path), "%s/tests/fixtures/vault/%s", top ? top : ".", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                diag("cannot open fixture %s", path);
                return NULL;
        }
        static char data[1 << 16];
        ssize_t n = read(fd, data, sizeof(data) - 1);
        close(fd);
        if (n < 0)
                return NULL;
        data[n] = '\0';
        *ret_len = (size_t) n;
        return data;
}

static void test_errors(void) {
        static const struct {
                long status;
                const char *body;
                int error;
                const char *message;
        } cases[] = {
                {404, "{\"errors\":[]}", -ENOENT, "not found"},
                {403, "{\"errors\":[\"permission denied\"]}", -EACCES, "permission denied"},
                {403,
                 "{\"errors\":[\"2 errors occurred:\\n\\t* permission denied\\n\\t* invalid "
                 "token\\n\\n\"]}",
                 -EACCES, "2 errors occurred:  * permission denied  * invalid token  "},
                {503, "{\"errors\":[\"Vault is sealed\"]}", -EAGAIN, "Vault is sealed"},
                {429, "{\"errors\":[\"rate limit quota exceeded\"]}", -EBUSY,
                 "rate limit quota exceeded"},
                {500, "{\"errors\":[\"internal error\"]}", -EIO, "internal error"},
                {400,
                 "{\"errors\":[\"check-and-set parameter did not match the current version\"]}",
                 -ESTALE, "check-and-set parameter did not match the current version"},
                {400, "{\"errors\":[\"invalid role name \\\"x\\\"\"]}", -EINVAL,
                 "invalid role name \"x\""},
                {400, "{\"errors\":[\"a\",\"b\"]}", -EINVAL, "a; b"},
                {405, "{\"errors\":[]}", -EOPNOTSUPP, ""},
                {413, "", -E2BIG, ""},
                {502, "<html>bad gateway</html>", -EIO,
                 "unexpected non-JSON error body (24 bytes)"},
                {404,
                 "{\"data\":{\"data\":null,\"metadata\":{\"deletion_time\":\"2018-03-22T02:24:"
                 "06Z\",\"destroyed\":false,\"version\":3}},\"errors\":[]}",
                 -ENOENT, "version 3 was deleted at 2018-03-22T02:24:06Z"},
                {404,
                 "{\"data\":{\"data\":null,\"metadata\":{\"deletion_time\":\"\",\"destroyed\":true,"
                 "\"version\":2}}}",
                 -ENOENT, "version 2 was destroyed"},
                {403, "{\"errors\":[\"x\\u0001y\"]}", -EACCES, "x?y"},
                {418, "{\"errors\":42}", -EPROTO, ""},
                {412, "{\"errors\":[\"required index state not present\"]}", -EAGAIN,
                 "required index state not present"},
                {307, "", -EREMOTE, ""},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct vault_error e = {};
                vault_decode_error(cases[i].status, cases[i].body, strlen(cases[i].body),
                                   "secret/data/app", &e);
                ok(e.error == cases[i].error && e.status == cases[i].status &&
                           strcmp(e.message, cases[i].message) == 0 &&
                           strcmp(e.path, "secret/data/app") == 0,
                   "error %ld case %zu -> %d '%s'", cases[i].status, i, e.error, e.message);
        }
        size_t n;
        char *f = fixture("error-invalid-token-vault.json", &n);
        struct vault_error e = {};
        vault_decode_error(403, f, f ? n : 0, "auth/token/lookup-self", &e);
        ok(e.error == -EACCES && strstr(e.message, "invalid token"), "fixture: invalid token");
        char huge[8192];
        memset(huge, 'x', sizeof(huge));
        memcpy(huge, "{\"errors\":[\"", 12);
        memcpy(huge + sizeof(huge) - 3, "\"]}", 3);
        vault_decode_error(500, huge, sizeof(huge), "p", &e);
        ok(e.error == -EIO && strlen(e.message) < VAULT_ERROR_TEXT_MAX,
           "a huge error text is cut to the message buffer");
}

static void test_auth(void) {
        size_t n;
        char *f = fixture("auth-kubernetes-login-response.json", &n);
        struct vault_auth a;
        char *token = NULL;
        ok(f && vault_decode_auth(f, n, &a, &token) == 0, "fixture: kubernetes login decodes");
        is_str(token, "62b858f9-529c-6b26-e0b8-0457b6aacdb4", "client_token extracted");
        ok(token && secmem_size(token) > 0, "token is in secmem");
        secmem_free(token);
        is_int(a.lease_duration, 2764800, "lease_duration");
        ok(a.renewable, "renewable");
        is_str(a.accessor, "afa306d0-be3d-c8d2-b0d7-2676e1c0d9b4", "accessor");
        is_str(a.policies, "default", "policies");

        f = fixture("auth-token-create-response.json", &n);
        ok(f && vault_decode_auth(f, n, &a, NULL) == 0 && a.n_policies == 3,
           "fixture: token create");

        static const char *bad[] = {
                "{}",
                "{\"auth\":null}",
                "{\"auth\":{}}",
                "{\"auth\":{\"client_token\":\"\"}}",
                "{\"auth\":{\"client_token\":42}}",
                "{\"auth\":{\"client_token\":\"a b\"}}",
                "{\"auth\":{\"client_token\":\"t\",\"lease_duration\":\"x\"}}",
                "{\"auth\":{\"client_token\":\"t\",\"lease_duration\":-5}}",
                "{\"auth\":{\"client_token\":\"t\",\"renewable\":\"yes\"}}",
                "not json",
                "{\"auth\":{\"client_token\":\"t\"}} trailing",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(vault_decode_auth(bad[i], strlen(bad[i]), &a, &token), -EBADMSG,
                       "bad auth body %zu is -EBADMSG", i);
        const char *minimal = "{\"auth\":{\"client_token\":\"hvs.x\"}}";
        ok(vault_decode_auth(minimal, strlen(minimal), &a, NULL) == 0 && a.lease_duration == 0,
           "an auth block with only a token is accepted (missing keys tolerated)");
}

static void test_kv(void) {
        size_t n;
        struct vault_secret *s = NULL;
        char *f = fixture("kv2-read-response.json", &n);
        ok(f && vault_decode_kv(f, n, VAULT_KV_V2, &s) == 0, "fixture: kv2 read decodes");
        if (s) {
                is_int((long long) s->n_fields, 1, "one field");
                is_str(s->fields[0].name, "foo", "field name");
                is_str(s->fields[0].value, "bar", "field value");
                is_int(s->version, 2, "version");
                is_str(s->created_time, "2018-03-22T02:24:06.945319214Z", "created_time");
                ok(secmem_size(s->storage_) > 0, "values are in secmem");
        }
        s = vault_secret_free(s);

        f = fixture("kv1-read-response.json", &n);
        ok(f && vault_decode_kv(f, n, VAULT_KV_V1, &s) == 0, "fixture: kv1 read decodes");
        if (s) {
                is_int((long long) s->n_fields, 2, "two fields");
                ok(vault_secret_get(s, "foo") &&
                           strcmp(vault_secret_get(s, "foo")->value, "bar") == 0,
                   "lookup by name");
                ok(vault_secret_get(s, "ttl") != NULL, "kv1 keeps every key of data");
                ok(vault_secret_get(s, "nope") == NULL, "missing name is NULL");
                is_int(s->version, 0, "v1 has no version");
        }
        s = vault_secret_free(s);

        const char *typed =
                "{\"data\":{\"data\":{\"z\":\"last\",\"n\":42,\"b\":true,\"o\":{\"k\":[1,2]},"
                "\"nul\":null,\"e\":\"\",\"u\":\"\\u00e9\"},\"metadata\":{\"version\":7}}}";
        ok(vault_decode_kv(typed, strlen(typed), VAULT_KV_V2, &s) == 0, "typed values decode");
        if (s) {
                is_str(s->fields[0].name, "b", "fields are sorted by name");
                const struct vault_field *x = vault_secret_get(s, "n");
                ok(x && x->type == VAULT_VALUE_JSON && strcmp(x->value, "42") == 0 &&
                           x->value_len == 2,
                   "a number becomes JSON text");
                x = vault_secret_get(s, "o");
                ok(x && strcmp(x->value, "{\"k\":[1,2]}") == 0, "an object becomes compact JSON");
                x = vault_secret_get(s, "nul");
                ok(x && strcmp(x->value, "null") == 0 && x->type == VAULT_VALUE_JSON,
                   "null is JSON null");
                x = vault_secret_get(s, "e");
                ok(x && x->value_len == 0 && x->type == VAULT_VALUE_STRING, "empty string kept");
                x = vault_secret_get(s, "u");
                ok(x && strcmp(x->value, "\xc3\xa9") == 0, "unicode escapes decode to UTF-8");
                is_int(s->version, 7, "version 7");
        }
        s = vault_secret_free(s);

        const char *deleted =
                "{\"data\":{\"data\":null,\"metadata\":{\"version\":3,\"deletion_time\":\"x\"}}}";
        is_int(vault_decode_kv(deleted, strlen(deleted), VAULT_KV_V2, &s), -ENOENT,
               "v2 data null is -ENOENT");
        static const char *bad[] = {
                "{}",
                "{\"data\":null}",
                "{\"data\":[]}",
                "{\"data\":{\"data\":\"x\"}}",
                "{\"data\":{\"data\":{},\"metadata\":{\"version\":\"2\"}}}",
                "{\"data\":{\"data\":{},\"metadata\":{\"version\":-1}}}",
                "[",
                "",
                "{\"data\":{\"data\":{\"\\u0000\":\"a\"}}}", /* a NUL in a field name */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(vault_decode_kv(bad[i], strlen(bad[i]), VAULT_KV_V2, &s), -EBADMSG,
                       "bad kv body %zu is -EBADMSG", i);

        /* A NUL in a value is delivered with it: the caller decides (docs/protocol-vault.md). */
        const char *nul = "{\"data\":{\"data\":{\"a\":\"x\\u0000y\",\"b\":\"ok\"}}}";
        if (vault_decode_kv(nul, strlen(nul), VAULT_KV_V2, &s) == 0) {
                const struct vault_field *a = vault_secret_get(s, "a"),
                                         *b = vault_secret_get(s, "b");
                ok(a && a->value_len == 3 && memcmp(a->value, "x\0y", 4) == 0 && b &&
                           b->value_len == 2,
                   "a value with \\u0000 keeps its 3 bytes; the other field is intact");
        } else
                ok(false, "a value with \\u0000 decodes");
        s = vault_secret_free(s);

        /* Field count limit. */
        _cleanup_buf_ struct buf big = BUF_INIT(1 << 20, 0);
        (void) buf_append_str(&big, "{\"data\":{");
        for (int i = 0; i <= VAULT_MAX_FIELDS; i++)
                (void) buf_printf(&big, "%s\"k%d\":\"v\"", i ? "," : "", i);
        (void) buf_append_str(&big, "}}");
        is_int(vault_decode_kv(big.data, big.len, VAULT_KV_V1, &s), -E2BIG,
               "more than VAULT_MAX_FIELDS fields is -E2BIG");
}

static void test_mount(void) {
        struct vault_kv_path p;
        const char *v2 =
                "{\"data\":{\"path\":\"secret/\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}}}";
        ok(vault_decode_mount(v2, strlen(v2), "secret/app/db", &p) == 0, "v2 mount decodes");
        ok(p.version == VAULT_KV_V2 && strcmp(p.mount, "secret/") == 0 &&
                   strcmp(p.relative, "app/db") == 0 &&
                   strcmp(p.data_path, "secret/data/app/db") == 0 &&
                   strcmp(p.metadata_path, "secret/metadata/app/db") == 0,
           "v2 paths split: %s %s", p.data_path, p.metadata_path);
        ok(vault_decode_mount(v2, strlen(v2), "secret/data/app/db", &p) == 0 &&
                   strcmp(p.data_path, "secret/data/app/db") == 0 &&
                   strcmp(p.relative, "app/db") == 0,
           "a v2 data path given as is resolves to the same secret");
        const char *nested = "{\"data\":{\"path\":\"team/kv/"
                             "\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}}}";
        ok(vault_decode_mount(nested, strlen(nested), "team/kv/app", &p) == 0 &&
                   strcmp(p.data_path, "team/kv/data/app") == 0,
           "a mount with a slash in its path");
        const char *v1 = "{\"data\":{\"path\":\"kv/\",\"type\":\"kv\",\"options\":null}}";
        ok(vault_decode_mount(v1, strlen(v1), "kv/app", &p) == 0 && p.version == VAULT_KV_V1 &&
                   strcmp(p.data_path, "kv/app") == 0 && p.metadata_path[0] == '\0',
           "options null is v1");
        const char *v1b =
                "{\"data\":{\"path\":\"kv/\",\"type\":\"kv\",\"options\":{\"version\":\"1\"}}}";
        ok(vault_decode_mount(v1b, strlen(v1b), "kv/app", &p) == 0 && p.version == VAULT_KV_V1,
           "version \"1\" is v1");
        size_t n;
        char *f = fixture("sys-internal-ui-mounts-path-response-data.json", &n);
        /* The fixture is the data object only: wrap it in the envelope. */
        _cleanup_buf_ struct buf env = BUF_INIT(1 << 16, 0);
        (void) buf_printf(&env, "{\"data\":%.*s}", (int) (f ? n : 0), f ? f : "");
        ok(f && vault_decode_mount(env.data, env.len, "cubbyhole/x", &p) == 0 &&
                   p.version == VAULT_KV_V1,
           "fixture: cubbyhole mount is key/value v1");
        const char *pki = "{\"data\":{\"path\":\"pki/\",\"type\":\"pki\",\"options\":null}}";
        is_int(vault_decode_mount(pki, strlen(pki), "pki/issue/x", &p), -EMEDIUMTYPE,
               "a non-KV mount is -EMEDIUMTYPE");
        is_int(vault_decode_mount(v2, strlen(v2), "other/app", &p), -EBADMSG,
               "a mount not containing the path is -EBADMSG");
        is_int(vault_decode_mount(v2, strlen(v2), "secret/", &p), -EINVAL,
               "the mount itself is not a secret");
        is_int(vault_decode_mount(v2, strlen(v2), "secret/data/", &p), -EINVAL,
               "secret/data/ alone is not a secret");
        is_int(vault_decode_mount(v2, strlen(v2), "secret/../x", &p), -EINVAL, "dot-dot rejected");
        is_int(vault_decode_mount(v2, strlen(v2), "secret/a b", &p), -EINVAL, "space rejected");
        const char *nopath = "{\"data\":{\"type\":\"kv\"}}";
        is_int(vault_decode_mount(nopath, strlen(nopath), "secret/a", &p), -EBADMSG, "no path");
}

static void test_strerror(void) {
        ok(vault_error_is_transient(-EAGAIN) && vault_error_is_transient(-ECONNREFUSED) &&
                   vault_error_is_transient(-EBUSY) && vault_error_is_transient(-EIO),
           "sealed, refused, rate-limited and 5xx are transient");
        ok(!vault_error_is_transient(-EACCES) && !vault_error_is_transient(-ENOENT) &&
                   !vault_error_is_transient(-EPROTO) && !vault_error_is_transient(-EBADMSG),
           "denied, missing, TLS and malformed are not");
        is_str(vault_strerror(-EACCES), "permission denied", "strerror EACCES");
}

/* The client against the stand-in vault: login, KV v2 writes with check-and-set, metadata,
 * versions, namespaces, token self-service. */
static const char client_config[] =
        "{\"mounts\":[{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}},"
        "{\"path\":\"kv\",\"type\":\"kv\",\"options\":{\"version\":\"1\"}},"
        "{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"},\"namespace\":\"team-"
        "a\"}],"
        "\"auth\":[{\"path\":\"kubernetes\",\"type\":\"kubernetes\",\"roles\":{\"app\":{"
        "\"bound_service_account_names\":[\"app\"],\"bound_service_account_namespaces\":[\"prod\"],"
        "\"token_policies\":[\"rw\"],\"token_ttl\":600,\"token_max_ttl\":1200}}}],"
        "\"policies\":{\"rw\":\"path \\\"secret/data/app/*\\\" { capabilities = [\\\"create\\\", "
        "\\\"read\\\", \\\"update\\\"] }\\npath \\\"secret/metadata/app/*\\\" { capabilities = "
        "[\\\"read\\\"] }\\n\"},"
        "\"secrets\":[{\"path\":\"secret/"
        "x\",\"namespace\":\"team-a\",\"data\":{\"in\":\"team-a\"}},"
        "{\"path\":\"secret/x\",\"data\":{\"in\":\"root\"}}]}";

static struct vault_client *new_client(struct standin *s, const char *ns) {
        struct vault_client *c = NULL;
        struct vault_options o = {.addr = s->addr, .ca_file = s->ca_path, .namespace_ = ns};
        return vault_client_new(&o, &c) < 0 ? NULL : c;
}

static void test_client(void) {
        struct standin *s = NULL;
        struct vault_error e;
        int r = standin_start(client_config, &s);
        if (r < 0) {
                ok(false, "stand-in vault starts (%d)", r);
                return;
        }
        _cleanup_vault_client_ struct vault_client *c = new_client(s, NULL);
        ok(c != NULL, "client");
        ok(!vault_has_token(c), "no token before login");

        char *jwt = NULL, *wrong = NULL;
        (void) standin_make_jwt(s, "prod", "app", NULL, 600, &jwt);
        (void) standin_make_jwt(s, "dev", "app", NULL, 600, &wrong);
        struct vault_auth a = {};
        r = vault_login_kubernetes(c, "kubernetes", "app", wrong ? wrong : "x",
                                   wrong ? strlen(wrong) : 1, &a, &e);
        ok(r == -EACCES && e.status == 403 && strcmp(e.path, "auth/kubernetes/login") == 0,
           "a service account from another namespace is refused (%d %ld '%s')", r, e.status,
           e.message);
        r = vault_login_kubernetes(c, "auth/kubernetes/", "app", jwt ? jwt : "x",
                                   jwt ? strlen(jwt) : 1, &a, &e);
        ok(r == 0 && vault_has_token(c) && a.lease_duration == 600 && a.renewable,
           "login (mount given as auth/kubernetes/): lease %lld", (long long) a.lease_duration);
        ok(strstr(a.policies, "rw") != NULL, "policies [%s]", a.policies);
        free(jwt);
        free(wrong);

        struct vault_kv_path p;
        r = vault_kv_resolve(c, "secret/app/cfg", &p, &e);
        ok(r == 0 && p.version == VAULT_KV_V2, "resolve (%d '%s')", r, e.message);
        struct vault_field f1[] = {{.name = "password", .value = "s3cr3t", .value_len = 6},
                                   {.name = "user", .value = "app", .value_len = 3}};
        int64_t v = -1;
        r = vault_kv_write(c, &p, f1, 2, 0, &v, &e);
        ok(r == 0 && v == 1, "write with cas=0 creates version 1 (%d, %lld)", r, (long long) v);
        r = vault_kv_write(c, &p, f1, 2, 0, &v, &e);
        ok(r == -ESTALE && e.status == 400 && strstr(e.message, "check-and-set"),
           "cas=0 on an existing secret is -ESTALE (%d '%s')", r, e.message);
        f1[0].value = "rotated";
        f1[0].value_len = 7;
        r = vault_kv_write(c, &p, f1, 2, 1, &v, &e);
        ok(r == 0 && v == 2, "write with cas=1 creates version 2");
        r = vault_kv_write(c, &p, f1, 1, -1, &v, &e);
        ok(r == 0 && v == 3, "write without cas creates version 3");

        struct vault_kv_metadata m;
        r = vault_kv_metadata(c, &p, &m, &e);
        ok(r == 0 && m.current_version == 3 && !m.current_deleted, "metadata: current version 3");

        _cleanup_vault_secret_ struct vault_secret *sec = NULL;
        r = vault_kv_read(c, &p, 2, &sec, &e);
        ok(r == 0 && sec->version == 2 && sec->n_fields == 2 &&
                   strcmp(vault_secret_get(sec, "password")->value, "rotated") == 0,
           "read version 2");
        sec = vault_secret_free(sec);
        r = vault_kv_read(c, &p, 0, &sec, &e);
        ok(r == 0 && sec->version == 3 && sec->n_fields == 1, "read latest (version 3, one field)");
        sec = vault_secret_free(sec);
        r = vault_kv_read(c, &p, 9, &sec, &e);
        ok(r == -ENOENT && e.status == 404, "a version that does not exist is -ENOENT");

        struct vault_kv_path other;
        r = vault_kv_resolve(c, "secret/x", &other, &e);
        if (r >= 0)
                r = vault_kv_read(c, &other, 0, &sec, &e);
        ok(r == -EACCES && e.status == 403, "outside the policy: -EACCES (%d)", r);

        struct vault_kv_path v1 = {.version = VAULT_KV_V1};
        (void) snprintf(v1.data_path, sizeof(v1.data_path), "kv/app");
        is_int(vault_kv_write(c, &v1, f1, 1, 0, NULL, &e), -EINVAL, "cas on KV v1 is -EINVAL");
        is_int(vault_kv_metadata(c, &v1, &m, &e), -EOPNOTSUPP, "metadata of KV v1 is -EOPNOTSUPP");

        struct vault_token_info t;
        r = vault_token_lookup_self(c, &t, &e);
        ok(r == 0 && t.ttl > 0 && t.ttl <= 600 && strcmp(t.path, "auth/kubernetes/login") == 0,
           "lookup-self: ttl %lld path %s", (long long) t.ttl, t.path);
        is_int(standin_control(s, "POST", "/_standin/clock", "{\"advance_seconds\":300}", NULL,
                               NULL),
               0, "clock +300 s");
        r = vault_token_renew_self(c, 600, &a, &e);
        ok(r == 0 && a.lease_duration > 0 && a.lease_duration <= 600, "renew-self: lease %lld",
           (long long) a.lease_duration);
        is_int(standin_control(s, "POST", "/_standin/clock", "{\"advance_seconds\":2000}", NULL,
                               NULL),
               0, "clock +2000 s (past the max TTL)");
        r = vault_token_lookup_self(c, &t, &e);
        ok(r == -EACCES && strstr(e.message, "permission denied"), "an expired token is -EACCES");
        r = vault_token_revoke_self(c, &e);
        ok(r == 0 && !vault_has_token(c), "revoking an already expired token counts as done");
        r = vault_kv_read(c, &p, 0, &sec, &e);
        is_int(r, -ENOKEY, "no token: -ENOKEY without a request");

        /* Namespaces: the same path names another secret in team-a. */
        _cleanup_vault_client_ struct vault_client *root = new_client(s, NULL);
        _cleanup_vault_client_ struct vault_client *ns = new_client(s, "team-a");
        ok(root && ns && vault_set_token(root, s->root_token, strlen(s->root_token)) == 0 &&
                   vault_set_token(ns, s->root_token, strlen(s->root_token)) == 0,
           "root-token clients, one with X-Vault-Namespace");
        const struct vault_field *in;
        r = root ? vault_kv_resolve(root, "secret/x", &other, &e) : -EINVAL;
        if (r >= 0)
                r = vault_kv_read(root, &other, 0, &sec, &e);
        in = r >= 0 ? vault_secret_get(sec, "in") : NULL;
        ok(in && strcmp(in->value, "root") == 0, "root namespace secret");
        sec = vault_secret_free(sec);
        r = ns ? vault_kv_resolve(ns, "secret/x", &other, &e) : -EINVAL;
        if (r >= 0)
                r = vault_kv_read(ns, &other, 0, &sec, &e);
        in = r >= 0 ? vault_secret_get(sec, "in") : NULL;
        ok(in && strcmp(in->value, "team-a") == 0, "team-a namespace secret (%d '%s')", r,
           e.message);
        sec = vault_secret_free(sec);

        is_int(vault_set_token(root, "bad token", 9), -EINVAL, "a token with a space is refused");
        is_int(vault_set_token(root, "", 0), -EINVAL, "an empty token is refused");
        struct vault_options bad = {.addr = s->addr, .ca_file = s->ca_path, .namespace_ = "a b"};
        struct vault_client *x = NULL;
        is_int(vault_client_new(&bad, &x), -EINVAL, "a namespace with a space is refused");
        standin_stop(s);
}

/* --- what HA clusters answer (412, 403 after a login, 307) and namespaces ------------------ */

/* A clock that only moves when the client sleeps: the retry bounds are checked in client time,
 * independent of the machine's speed. */
struct fake_clock {
        uint64_t now, slept;
        unsigned sleeps;
};

static uint64_t fake_now(void *userdata) {
        return ((struct fake_clock *) userdata)->now;
}

static void fake_sleep(void *userdata, uint64_t usec) {
        struct fake_clock *f = userdata;
        f->now += usec;
        f->slept += usec;
        f->sleeps++;
}

static const char ha_config[] =
        "{\"namespaces\":[\"team-a\"],"
        "\"mounts\":[{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}},"
        "{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"},\"namespace\":"
        "\"team-a\"}],"
        "\"auth\":[{\"path\":\"kubernetes\",\"type\":\"kubernetes\",\"roles\":{\"app\":{"
        "\"bound_service_account_names\":[\"app\"],\"bound_service_account_namespaces\":[\"prod\"],"
        "\"token_policies\":[\"rd\"],\"token_ttl\":600}}},"
        "{\"path\":\"kubernetes\",\"namespace\":\"team-a\",\"type\":\"kubernetes\",\"roles\":{"
        "\"app\":{\"bound_service_account_names\":[\"app\"],\"bound_service_account_namespaces\":"
        "[\"prod\"],\"token_policies\":[\"ns-rd\"],\"token_ttl\":600}}}],"
        "\"policies\":{\"rd\":\"path \\\"secret/data/app/*\\\" { capabilities = [\\\"read\\\"] "
        "}\"},"
        "\"namespace_policies\":{\"team-a\":{\"ns-rd\":\"path \\\"secret/data/app/*\\\" { "
        "capabilities = [\\\"read\\\"] }\"}},"
        "\"secrets\":[{\"path\":\"secret/app/db\",\"data\":{\"in\":\"root\"}},"
        "{\"path\":\"secret/app/db\",\"namespace\":\"team-a\",\"data\":{\"in\":\"team-a\"}}]}";

struct ha {
        struct standin *s;
        char *jwt;
        char *addr2; /* the second listener ("the active node") */
        unsigned port2;
        struct fake_clock clock;
};

static struct vault_client *ha_client(struct ha *h, const char *ns, const char *peers) {
        struct vault_client *c = NULL;
        struct vault_options o = {
                .addr = h->s->addr,
                .ca_file = h->s->ca_path,
                .namespace_ = ns,
                .peer_addrs = peers,
                .hooks = {.now_usec = fake_now, .sleep_usec = fake_sleep, .userdata = &h->clock},
        };
        return vault_client_new(&o, &c) < 0 ? NULL : c;
}

static int ha_control(struct ha *h, const char *method, const char *path, const char *body) {
        int status = 0;
        int r = standin_control(h->s, method, path, body, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}

static int login(struct ha *h, struct vault_client *c, struct vault_error *e) {
        return vault_login_kubernetes(c, "kubernetes", "app", h->jwt, strlen(h->jwt), NULL, e);
}

static size_t count_str(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void clear_requests(struct ha *h) {
        (void) ha_control(h, "DELETE", "/_standin/requests", NULL);
}

/* The stand-in's log of requests since the last call (and clears it). */
static char *take_requests(struct ha *h) {
        char *body = NULL;
        int status = 0;
        if (standin_control(h->s, "GET", "/_standin/requests", NULL, &status, &body) < 0)
                return NULL;
        (void) ha_control(h, "DELETE", "/_standin/requests", NULL);
        return body;
}

static int resolve_read(struct vault_client *c, const char *want, struct vault_error *e) {
        _cleanup_vault_secret_ struct vault_secret *sec = NULL;
        struct vault_kv_path p;
        int r = vault_kv_resolve(c, "secret/app/db", &p, e);
        if (r >= 0)
                r = vault_kv_read(c, &p, 0, &sec, e);
        if (r >= 0) {
                const struct vault_field *f = vault_secret_get(sec, "in");
                r = f && strcmp(f->value, want) == 0 ? 0 : -EBADMSG;
        }
        return r;
}

/* Sets a stand-in HA knob, logs in (the knob arms the new token) and resolves secret/app/db. */
static int knob_login_resolve(struct ha *h, struct vault_client *c, const char *knob,
                              struct vault_error *e) {
        struct vault_kv_path p;
        int r = ha_control(h, "POST", "/_standin/ha", knob);
        if (r >= 0)
                r = c ? login(h, c, e) : -EINVAL;
        return r < 0 ? r : vault_kv_resolve(c, "secret/app/db", &p, e);
}

static void test_412(struct ha *h) {
        struct vault_error e = {};
        _cleanup_vault_client_ struct vault_client *c = ha_client(h, NULL, NULL);
        struct vault_kv_path p;
        int r;

        r = knob_login_resolve(h, c, "{\"index_412\":3}", &e);
        ok(r == 0 && e.attempts == 4,
           "412 x 3 then 200: the mount lookup succeeds (%d, %u attempts)", r, e.attempts);
        ok(resolve_read(c, "root", &e) == 0 && e.attempts == 1, "later requests go straight");

        uint64_t t0 = h->clock.now;
        r = knob_login_resolve(h, c, "{\"index_412\":-1}", &e);
        ok(r == -EAGAIN && e.status == 412 && e.attempts == 1 + VAULT_RETRY_412_MAX &&
                   strstr(e.message, "required index state not present"),
           "a lasting 412 ends after %u retries as -EAGAIN, Vault's text kept (%d, %u, '%s')",
           VAULT_RETRY_412_MAX, r, e.attempts, e.message);
        ok(h->clock.now - t0 >= (uint64_t) VAULT_RETRY_412_MAX * VAULT_RETRY_MIN_MS * 1000u,
           "with a backoff between the tries (%llu us)", (unsigned long long) (h->clock.now - t0));
        ok(vault_error_is_transient(r), "a lasting 412 is transient (the caller may log in again)");

        /* The caller's deadline bounds the retries. It bounds the real requests too (each gets
         * what is left of it), so on a loaded machine the last request may run out of time
         * itself: the call then ends with -ETIMEDOUT instead of the 412's -EAGAIN. Either way it
         * ends early, inside the deadline (in client time). */
        (void) vault_client_set_limits(c, 0, 120, 0);
        t0 = h->clock.now;
        r = vault_kv_resolve(c, "secret/app/db", &p, &e);
        ok((r == -EAGAIN || r == -ETIMEDOUT) && e.attempts >= 1 &&
                   e.attempts < 1 + VAULT_RETRY_412_MAX && h->clock.now - t0 <= 120000u,
           "a 120 ms deadline stops the 412 retries early (%d, %u attempts, %llu us)", r,
           e.attempts, (unsigned long long) (h->clock.now - t0));
        is_int(ha_control(h, "POST", "/_standin/ha", "{\"reset\":true}"), 0, "stand-in: reset");
}

static void test_403_after_login(struct ha *h) {
        struct vault_error e = {};
        _cleanup_vault_client_ struct vault_client *c = ha_client(h, NULL, NULL);
        struct vault_kv_path p;
        int r;

        r = knob_login_resolve(h, c, "{\"mount_403\":2}", &e);
        ok(r == 0 && e.attempts == 3, "403 x 2 just after the login, then 200 (%d, %u attempts)", r,
           e.attempts);

        uint64_t t0 = h->clock.now;
        r = knob_login_resolve(h, c, "{\"mount_403\":-1}", &e);
        ok(r == -EACCES && e.status == 403 && e.attempts >= 2 &&
                   e.attempts <= 1 + VAULT_RETRY_403_MAX,
           "a lasting 403 is still -EACCES after a few tries (%d, %u attempts)", r, e.attempts);
        ok(h->clock.now - t0 < (uint64_t) (VAULT_FRESH_LOGIN_MS + 5000) * 1000u,
           "and ends soon after the login window (%llu us)",
           (unsigned long long) (h->clock.now - t0));

        is_int(ha_control(h, "POST", "/_standin/ha", "{\"mount_403\":1}"), 0,
               "stand-in: one 403 after each login");
        r = login(h, c, &e);
        h->clock.now += (uint64_t) (VAULT_FRESH_LOGIN_MS + 1) * 1000u;
        r = r < 0 ? r : vault_kv_resolve(c, "secret/app/db", &p, &e);
        ok(r == -EACCES && e.attempts == 1,
           "past the login window a 403 is final at once (%d, %u attempts)", r, e.attempts);
        is_int(ha_control(h, "POST", "/_standin/ha", "{\"reset\":true}"), 0, "stand-in: reset");

        /* A token given from outside gets no grace. */
        _cleanup_vault_client_ struct vault_client *ext = ha_client(h, NULL, NULL);
        r = ext ? vault_set_token(ext, h->s->root_token, strlen(h->s->root_token)) : -EINVAL;
        is_int(ha_control(h, "POST", "/_standin/fault",
                          "{\"match\":\"sys/internal/ui/mounts/\",\"status\":403,\"count\":1}"),
               0, "stand-in: one 403 on the mount lookup");
        r = r < 0 ? r : vault_kv_resolve(ext, "secret/app/db", &p, &e);
        ok(r == -EACCES && e.attempts == 1,
           "a token set from outside: the 403 is final at once (%d, %u attempts)", r, e.attempts);
        (void) ha_control(h, "DELETE", "/_standin/fault", NULL);

        /* revoke-self just after a login: a 403 means "already gone", not "not there yet". */
        r = login(h, c, &e);
        is_int(ha_control(h, "POST", "/_standin/fault",
                          "{\"match\":\"auth/token/revoke-self\",\"status\":403,\"count\":1}"),
               0, "stand-in: one 403 on revoke-self");
        clear_requests(h);
        r = r < 0 ? r : vault_token_revoke_self(c, &e);
        char *log = take_requests(h);
        ok(r == 0 && !vault_has_token(c) && log &&
                   count_str(log, "\"path\": \"/v1/auth/token/revoke-self\"") == 1,
           "revoke-self right after a login takes the 403 as done, without retrying (%d)", r);
        free(log);
        (void) ha_control(h, "DELETE", "/_standin/fault", NULL);
}

static void test_redirect(struct ha *h) {
        struct vault_error e = {};
        char body[512], peers[160];
        char *log = NULL;
        int r;

        /* c: no peers; pc: the second listener is a peer; lc: a peer named by another name. */
        (void) snprintf(peers, sizeof(peers), "https://vault-1.invalid:8200, https://127.0.0.1:%u/",
                        h->port2);
        _cleanup_vault_client_ struct vault_client *c = ha_client(h, NULL, NULL);
        _cleanup_vault_client_ struct vault_client *pc = ha_client(h, NULL, peers);
        (void) snprintf(peers, sizeof(peers), "https://LOCALHOST:%u", h->port2);
        _cleanup_vault_client_ struct vault_client *lc = ha_client(h, NULL, peers);
        ok(c && pc && lc, "clients without and with peer addresses");
        if (!c || !pc || !lc)
                return;

        clear_requests(h);
        is_int(ha_control(h, "POST", "/_standin/ha", "{\"redirect\":{\"to\":0,\"count\":1}}"), 0,
               "stand-in: one 307 to VAULT_ADDR itself");
        is_int(login(h, c, &e), 0, "login through a 307 to VAULT_ADDR (%s)", e.message);
        log = take_requests(h);
        ok(log &&
                   count_str(log, "\"listener\": 0, \"method\": \"POST\", \"path\": "
                                  "\"/v1/auth/kubernetes/login\", \"status\": 307") == 1 &&
                   count_str(log, "\"listener\": 0, \"method\": \"POST\", \"path\": "
                                  "\"/v1/auth/kubernetes/login\", \"status\": 200") == 1,
           "307, then the same POST with its body at the Location");
        free(log);

        is_int(ha_control(h, "POST", "/_standin/ha", "{\"redirect\":{\"to\":1,\"count\":2}}"), 0,
               "stand-in: the next 2 requests on the first listener answer 307 to the second");
        is_int(login(h, pc, &e), 0, "login through a 307 to a peer address (%s)", e.message);
        is_int(resolve_read(pc, "root", &e), 0,
               "the mount lookup through a 307, then the read directly (%s)", e.message);
        log = take_requests(h);
        ok(log && count_str(log, "\"listener\": 1, \"method\": \"POST\", \"path\": "
                                 "\"/v1/auth/kubernetes/login\", \"status\": 200") == 1,
           "the login was served by the second listener");
        ok(log && count_str(log, "\"listener\": 1, \"method\": \"GET\", \"path\": "
                                 "\"/v1/sys/internal/ui/mounts/secret/app/db\", \"status\": 200, "
                                 "\"namespace\": null, \"token\": true") == 1,
           "the token went along to the vault's own address");
        free(log);

        is_int(ha_control(h, "POST", "/_standin/ha", "{\"redirect\":{\"to\":1,\"count\":1}}"), 0,
               "stand-in: one 307 to the second listener");
        r = vault_set_token(c, h->s->root_token, strlen(h->s->root_token));
        r = r < 0 ? r : resolve_read(c, "root", &e);
        ok(r == -EREMOTE && e.status == 307 &&
                   strstr(e.message, "not followed: not the address in VAULT_ADDR"),
           "without peer addresses, a 307 elsewhere is -EREMOTE (%d '%s')", r, e.message);
        log = take_requests(h);
        ok(log && count_str(log, "\"listener\": 1") == 0, "and nothing was sent there");
        free(log);
        ok(strstr(vault_strerror(-EREMOTE), "TLS") == NULL &&
                   strstr(vault_strerror(-EREMOTE), "redirect"),
           "a redirect is not reported as a TLS error ('%s')", vault_strerror(-EREMOTE));

        /* Another host name for the same port is another origin. */
        (void) snprintf(body, sizeof(body),
                        "{\"redirect\":{\"to\":\"https://localhost:%u\",\"count\":1}}", h->port2);
        is_int(ha_control(h, "POST", "/_standin/ha", body), 0,
               "stand-in: 307 to https://localhost:<port 2>");
        r = resolve_read(pc, "root", &e);
        ok(r == -EREMOTE && strstr(e.message, "https://localhost:") &&
                   strstr(e.message, "not VAULT_ADDR nor one of the peer addresses"),
           "a host name that is no peer is refused (%d '%s')", r, e.message);
        is_int(login(h, lc, &e), 0, "login");
        is_int(ha_control(h, "POST", "/_standin/ha", body), 0, "stand-in: the same 307 again");
        is_int(resolve_read(lc, "root", &e), 0,
               "followed by the client that has it as a peer (host name verified: %s)", e.message);
        clear_requests(h);

        static const struct {
                const char *knob, *why;
        } refused[] = {
                {"{\"redirect\":{\"to\":1,\"count\":2,\"on\":[0,1]}}", "only one redirect"},
                {"{\"redirect\":{\"to\":1,\"status\":302}}", "only 307 and 308"},
                {"{\"redirect\":{\"to\":\"http://127.0.0.1:%u\"}}", "change the scheme"},
                {"{\"redirect\":{\"to\":\"https://user@127.0.0.1:%u\"}}", "not an http(s) URL"},
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                /* The knobs name the second listener's port (or ignore it). */
                char port[16];
                (void) snprintf(port, sizeof(port), "%u", h->port2);
                const char *pct = strstr(refused[i].knob, "%u");
                if (pct)
                        (void) snprintf(body, sizeof(body), "%.*s%s%s",
                                        (int) (pct - refused[i].knob), refused[i].knob, port,
                                        pct + 2);
                else
                        (void) snprintf(body, sizeof(body), "%s", refused[i].knob);
                (void) ha_control(h, "POST", "/_standin/ha", body);
                r = resolve_read(pc, "root", &e);
                ok(r == -EREMOTE && strstr(e.message, refused[i].why), "refused: %s (%d '%s')",
                   refused[i].why, r, e.message);
                (void) ha_control(h, "POST", "/_standin/ha", "{\"reset\":true}");
        }
        is_int(resolve_read(pc, "root", &e), 0, "the client still works afterwards");
}

static void test_namespace_requests(struct ha *h) {
        struct vault_error e = {};
        _cleanup_vault_client_ struct vault_client *c = ha_client(h, "team-a", NULL);
        _cleanup_vault_client_ struct vault_client *root = ha_client(h, NULL, NULL);
        _cleanup_free_ char *log = NULL;
        struct vault_token_info t;
        struct vault_auth a;
        int r;

        clear_requests(h);
        r = c ? login(h, c, &e) : -EINVAL;
        is_int(r, 0, "login inside namespace team-a (%s)", e.message);
        is_int(resolve_read(c, "team-a", &e), 0, "mount lookup and read inside team-a (%s)",
               e.message);
        r = vault_token_lookup_self(c, &t, &e);
        ok(r == 0 && strstr(t.policies, "ns-rd"), "lookup-self inside team-a: policies [%s]",
           t.policies);
        is_int(vault_token_renew_self(c, 0, &a, &e), 0, "renew-self inside team-a");
        log = take_requests(h);
        static const char *const paths[] = {
                "\"POST\", \"path\": \"/v1/auth/kubernetes/login\", \"status\": 200",
                "\"GET\", \"path\": \"/v1/sys/internal/ui/mounts/secret/app/db\", \"status\": 200",
                "\"GET\", \"path\": \"/v1/secret/data/app/db\", \"status\": 200",
                "\"GET\", \"path\": \"/v1/auth/token/lookup-self\", \"status\": 200",
                "\"POST\", \"path\": \"/v1/auth/token/renew-self\", \"status\": 200",
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                char want[256];
                (void) snprintf(want, sizeof(want), "%s, \"namespace\": \"team-a\"", paths[i]);
                ok(log && count_str(log, want) == 1, "carries X-Vault-Namespace: %s", paths[i]);
        }
        ok(log && count_str(log, "\"listener\"") == ELEMENTSOF(paths) &&
                   count_str(log, "\"namespace\": \"team-a\"") == ELEMENTSOF(paths),
           "every request carried it");

        r = root ? login(h, root, &e) : -EINVAL;
        is_int(r, 0, "login in the root namespace with the same service account");
        is_int(resolve_read(root, "root", &e), 0, "reads the root namespace's secret");
        r = vault_token_lookup_self(root, &t, &e);
        ok(r == 0 && strstr(t.policies, "rd") && !strstr(t.policies, "ns-rd"),
           "with the root namespace's policies [%s]", t.policies);
}

static void test_ha(void) {
        struct ha h = {.clock = {.now = 1000000}};
        char *body = NULL;
        int status = 0;

        int r = standin_start(ha_config, &h.s);
        if (r < 0) {
                ok(false, "stand-in vault starts (%d)", r);
                return;
        }
        (void) standin_make_jwt(h.s, "prod", "app", NULL, 3600, &h.jwt);
        r = standin_control(h.s, "POST", "/_standin/listener", "{}", &status, &body);
        if (r >= 0 && status == 200)
                r = standin_json_str(body, "addr", &h.addr2);
        const char *colon = h.addr2 ? strrchr(h.addr2, ':') : NULL;
        errno = 0;
        unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
        h.port2 = errno == 0 && port < 65536 ? (unsigned) port : 0;
        free(body);
        ok(h.jwt && h.port2 > 0, "a service account token and a second listener (%s)",
           h.addr2 ? h.addr2 : "none");
        if (h.jwt && h.port2) {
                test_412(&h);
                test_403_after_login(&h);
                test_redirect(&h);
                test_namespace_requests(&h);
        }
        free(h.jwt);
        free(h.addr2);
        standin_stop(h.s);
}

int main(void) {
        test_errors();
        test_auth();
        test_kv();
        test_mount();
        test_strerror();
        test_client();
        test_ha();
        return tap_done();
}
