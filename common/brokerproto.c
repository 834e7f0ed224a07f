/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/hmac.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault.h"

#define INFO_SESSION "cloudtaser/broker/session/v1"
#define INFO_SESSION_CA "cloudtaser/broker/session-ca/v1"
#define INFO_ANNOTATION "cloudtaser/broker/annotation/v1"
#define INFO_INSTALLATION "cloudtaser/broker/installation/v1"
#define MAX_PAYLOAD (BROKERPROTO_MAX_TOKEN / 4 * 3)

static void hex(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n) {
        if (strlen(s) != 2 * n)
                return -EBADMSG;
        for (size_t i = 0; i < 2 * n; i++) {
                char c = s[i];
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (v < 0)
                        return -EBADMSG;
                if (i % 2 == 0)
                        out[i / 2] = (uint8_t) (v << 4);
                else
                        out[i / 2] |= (uint8_t) v;
        }
        return 0;
}

int brokerproto_installation_id(const void *install, size_t install_len,
                                char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        uint8_t id[HMAC_SHA256_SIZE];
        if (!install || !ret || install_len != BROKERPROTO_KEY_SIZE)
                return -EINVAL;
        hmac_sha256(install, install_len, INFO_INSTALLATION, strlen(INFO_INSTALLATION), id);
        hex(id, 8, ret);
        explicit_bzero(id, sizeof(id));
        return 0;
}

int brokerproto_keys_new(const void *auth, size_t auth_len, const void *install, size_t install_len,
                         struct brokerproto_keys **ret) {
        struct brokerproto_keys *k = NULL;
        int r;

        if (!auth || !install || !ret || auth_len != BROKERPROTO_KEY_SIZE ||
            install_len != BROKERPROTO_KEY_SIZE)
                return -EINVAL;
        r = secmem_alloc(sizeof(*k), (void **) &k);
        if (r < 0)
                return r;
        memcpy(k->auth, auth, BROKERPROTO_KEY_SIZE);
        memcpy(k->install, install, BROKERPROTO_KEY_SIZE);
        r = hkdf_sha256(auth, auth_len, install, install_len, INFO_SESSION, strlen(INFO_SESSION),
                        k->session_mac, sizeof(k->session_mac));
        if (r >= 0)
                r = brokerproto_annotation_key(auth, auth_len, k->annotation);
        if (r < 0) {
                secmem_free(k);
                return r;
        }
        (void) brokerproto_installation_id(install, install_len, k->installation);
        *ret = k;
        return 0;
}

struct brokerproto_keys *brokerproto_keys_free(struct brokerproto_keys *k) {
        secmem_free(k);
        return NULL;
}

void brokerproto_session_ca_seed(const struct brokerproto_keys *k, uint8_t counter,
                                 uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        uint8_t info[sizeof(INFO_SESSION_CA)];
        memcpy(info, INFO_SESSION_CA, sizeof(INFO_SESSION_CA) - 1);
        info[sizeof(info) - 1] = counter;
        (void) hkdf_sha256(k->auth, sizeof(k->auth), k->install, sizeof(k->install), info,
                           sizeof(info), ret, BROKERPROTO_KEY_SIZE);
}

int brokerproto_annotation_key(const void *auth, size_t auth_len,
                               uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        if (!auth || !ret || auth_len != BROKERPROTO_KEY_SIZE)
                return -EINVAL;
        return hkdf_sha256(auth, auth_len, NULL, 0, INFO_ANNOTATION, strlen(INFO_ANNOTATION), ret,
                           BROKERPROTO_KEY_SIZE);
}

static void annotation_mac_raw(const uint8_t key[BROKERPROTO_KEY_SIZE], const char *ns,
                               const char *sa, const char *paths, const char *env_map,
                               uint8_t mac[HMAC_SHA256_SIZE]) {
        struct hmac_sha256_ctx c;
        hmac_sha256_init(&c, key, BROKERPROTO_KEY_SIZE);
        /* Each string with its NUL: no two different tuples give the same bytes. */
        hmac_sha256_update(&c, INFO_ANNOTATION, sizeof(INFO_ANNOTATION));
        hmac_sha256_update(&c, ns, strlen(ns) + 1);
        hmac_sha256_update(&c, sa, strlen(sa) + 1);
        hmac_sha256_update(&c, paths, strlen(paths) + 1);
        hmac_sha256_update(&c, env_map, strlen(env_map));
        hmac_sha256_final(&c, mac);
}

int brokerproto_annotation_mac(const uint8_t key[BROKERPROTO_KEY_SIZE], const char *ns,
                               const char *sa, const char *paths, const char *env_map,
                               char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        uint8_t mac[HMAC_SHA256_SIZE];
        if (!key || !ns || !sa || !paths || !env_map || !ret)
                return -EINVAL;
        annotation_mac_raw(key, ns, sa, paths, env_map, mac);
        memcpy(ret, BROKERPROTO_ANNOTATION_MAC_PREFIX, 3);
        hex(mac, sizeof(mac), ret + 3);
        return 0;
}

int brokerproto_annotation_mac_check(const uint8_t key[BROKERPROTO_KEY_SIZE], const char *ns,
                                     const char *sa, const char *paths, const char *env_map,
                                     const char *value) {
        char want[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        if (!value || brokerproto_annotation_mac(key, ns, sa, paths, env_map, want) < 0 ||
            strlen(value) != BROKERPROTO_ANNOTATION_MAC_LEN)
                return -EPERM;
        return hmac_equal(want, value, BROKERPROTO_ANNOTATION_MAC_LEN) ? 0 : -EPERM;
}

/* ---- session tokens ---------------------------------------------------------------------- */

void brokerproto_session_done(struct brokerproto_session *s) {
        if (!s)
                return;
        free(s->ns);
        free(s->pod);
        free(s->uid);
        free(s->sa);
        for (size_t i = 0; i < s->n_paths; i++)
                free(s->paths[i]);
        free(s->paths);
        *s = (struct brokerproto_session){};
}

bool brokerproto_session_allows(const struct brokerproto_session *s, const char *path) {
        if (!s || !path)
                return false;
        for (size_t i = 0; i < s->n_paths; i++)
                if (strcmp(s->paths[i], path) == 0)
                        return true;
        return false;
}

static bool name_ok(const char *s, size_t max) {
        if (!s || !*s || strlen(s) > max)
                return false;
        for (const char *c = s; *c; c++)
                if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f)
                        return false;
        return true;
}

static bool path_ok(const char *p) {
        return p && *p && strlen(p) < BROKERPROTO_MAX_PATH && vault_path_valid(p);
}

static int session_check(const struct brokerproto_session *s) {
        if (!name_ok(s->ns, BROKERPROTO_MAX_NAME) || !name_ok(s->pod, BROKERPROTO_MAX_NAME) ||
            !name_ok(s->sa, BROKERPROTO_MAX_NAME) || !name_ok(s->uid, BROKERPROTO_MAX_UID))
                return -EINVAL;
        if (s->n_paths == 0 || s->n_paths > BROKERPROTO_MAX_PATHS || !s->paths)
                return -EINVAL;
        for (size_t i = 0; i < s->n_paths; i++)
                if (!path_ok(s->paths[i]))
                        return -EINVAL;
        if (s->iat < 0 || s->exp <= s->iat || s->exp - s->iat > BROKERPROTO_SESSION_TTL_MAX)
                return -EINVAL;
        return 0;
}

static void token_mac(const struct brokerproto_keys *k, const char *signed_part, size_t n,
                      uint8_t mac[HMAC_SHA256_SIZE]) {
        hmac_sha256(k->session_mac, sizeof(k->session_mac), signed_part, n, mac);
}

int brokerproto_token_issue(const struct brokerproto_keys *k, const struct brokerproto_session *s,
                            struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf payload = BUF_INIT(MAX_PAYLOAD, 0);
        _cleanup_buf_ struct buf tok = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
        struct json_value *root, *paths;
        uint8_t mac[HMAC_SHA256_SIZE];
        char keyhex[2 * BROKERPROTO_KEY_SIZE + 1];
        int r;

        if (!k || !s || !out || !(out->flags & BUF_SECURE))
                return -EINVAL;
        r = session_check(s);
        if (r < 0)
                return r;
        r = json_doc_new(0, 256 * 1024, &d);
        if (r < 0)
                return r;
        root = json_doc_root(d);
        hex(s->cert_sha256, sizeof(s->cert_sha256), keyhex);
        if ((r = json_add_int64(d, root, "v", 1)) < 0 ||
            (r = json_add_string(d, root, "inst", k->installation)) < 0 ||
            (r = json_add_string(d, root, "ns", s->ns)) < 0 ||
            (r = json_add_string(d, root, "pod", s->pod)) < 0 ||
            (r = json_add_string(d, root, "uid", s->uid)) < 0 ||
            (r = json_add_string(d, root, "sa", s->sa)) < 0 ||
            (r = json_add_array(d, root, "paths", &paths)) < 0)
                return r;
        for (size_t i = 0; i < s->n_paths; i++)
                if ((r = json_add_string(d, paths, NULL, s->paths[i])) < 0)
                        return r;
        if ((r = json_add_int64(d, root, "iat", s->iat)) < 0 ||
            (r = json_add_int64(d, root, "exp", s->exp)) < 0 ||
            (r = json_add_string(d, root, "crt", keyhex)) < 0 ||
            (r = json_print(root, &payload)) < 0)
                return r;
        if ((r = buf_append_str(&tok, BROKERPROTO_TOKEN_PREFIX)) < 0 ||
            (r = base64_encode(&tok, payload.data, payload.len)) < 0)
                return r;
        token_mac(k, tok.data, tok.len, mac);
        if ((r = buf_append_byte(&tok, '.')) < 0 || (r = base64_encode(&tok, mac, sizeof(mac))) < 0)
                return r;
        return buf_append(out, tok.data, tok.len);
}

static int dup_string(const struct json_value *o, const char *key, size_t max, char **ret) {
        const char *s;
        if (json_get_string(o, key, &s) < 0 || !name_ok(s, max))
                return -EBADMSG;
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

int brokerproto_token_verify(const struct brokerproto_keys *k, const char *token, size_t len,
                             int64_t now, struct brokerproto_session *ret) {
        static const size_t plen = sizeof(BROKERPROTO_TOKEN_PREFIX) - 1;
        _cleanup_buf_ struct buf macbuf = BUF_INIT(64, 0);
        _cleanup_buf_ struct buf payload = BUF_INIT(MAX_PAYLOAD, 0);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_(brokerproto_session_done) struct brokerproto_session s = {};
        uint8_t mac[HMAC_SHA256_SIZE];
        const struct json_value *root, *paths;
        const char *dot, *str;
        int64_t v;
        int r;

        if (!k || !token || !ret)
                return -EINVAL;
        if (len > BROKERPROTO_MAX_TOKEN || len < plen ||
            memcmp(token, BROKERPROTO_TOKEN_PREFIX, plen) != 0 || memchr(token, '\0', len))
                return -EBADMSG;
        dot = memchr(token + plen, '.', len - plen);
        if (!dot)
                return -EBADMSG;
        if (base64_decode(&macbuf, dot + 1, (size_t) (token + len - dot - 1), false) < 0 ||
            macbuf.len != sizeof(mac))
                return -EBADMSG;
        token_mac(k, token, (size_t) (dot - token), mac);
        if (!hmac_equal(mac, macbuf.data, sizeof(mac)))
                return -EPERM;
        if (base64_decode(&payload, token + plen, (size_t) (dot - token - (ptrdiff_t) plen),
                          false) < 0)
                return -EBADMSG;
        r = json_parse(payload.data ? payload.data : "", payload.len, 0,
                       &(struct json_limits){.max_input = MAX_PAYLOAD,
                                             .max_depth = 3,
                                             .max_nodes = 16 + BROKERPROTO_MAX_PATHS},
                       &d);
        if (r < 0)
                return -EBADMSG;
        root = json_doc_root(d);
        if (json_get_int64(root, "v", &v) < 0 || v != 1)
                return -EBADMSG;
        if (json_get_string(root, "inst", &str) < 0 ||
            strlen(str) != BROKERPROTO_INSTALLATION_SIZE - 1)
                return -EBADMSG;
        if (!hmac_equal(str, k->installation, BROKERPROTO_INSTALLATION_SIZE - 1))
                return -EPERM;
        memcpy(s.installation, str, BROKERPROTO_INSTALLATION_SIZE);
        if ((r = dup_string(root, "ns", BROKERPROTO_MAX_NAME, &s.ns)) < 0 ||
            (r = dup_string(root, "pod", BROKERPROTO_MAX_NAME, &s.pod)) < 0 ||
            (r = dup_string(root, "uid", BROKERPROTO_MAX_UID, &s.uid)) < 0 ||
            (r = dup_string(root, "sa", BROKERPROTO_MAX_NAME, &s.sa)) < 0)
                return r;
        if (json_get_array(root, "paths", &paths) < 0 || json_count(paths) == 0 ||
            json_count(paths) > BROKERPROTO_MAX_PATHS)
                return -EBADMSG;
        s.paths = calloc(json_count(paths), sizeof(char *));
        if (!s.paths)
                return -ENOMEM;
        JSON_FOREACH(p, paths) {
                if (json_string(p, &str) < 0 || !path_ok(str))
                        return -EBADMSG;
                if (!(s.paths[s.n_paths] = strdup(str)))
                        return -ENOMEM;
                s.n_paths++;
        }
        if (json_get_int64(root, "iat", &s.iat) < 0 || json_get_int64(root, "exp", &s.exp) < 0 ||
            json_get_string(root, "crt", &str) < 0 ||
            unhex(str, s.cert_sha256, sizeof(s.cert_sha256)) < 0)
                return -EBADMSG;
        if (session_check(&s) < 0)
                return -EBADMSG;
        if (now >= s.exp || s.iat > now + BROKERPROTO_CLOCK_SKEW)
                return -EKEYEXPIRED;
        *ret = s;
        s = (struct brokerproto_session){};
        return 0;
}

const char *brokerproto_bearer(const char *value) {
        static const size_t n = sizeof(BROKERPROTO_AUTH_SCHEME) - 1;
        if (!value || strncasecmp(value, BROKERPROTO_AUTH_SCHEME, n) != 0)
                return NULL;
        value += n;
        while (*value == ' ')
                value++;
        return *value ? value : NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Parses an untrusted body that must be one JSON object, into a secure document. */
static int parse_object(const char *body, size_t len, size_t max, unsigned flags,
                        const struct json_limits *limits, struct json_doc **ret) {
        int r;
        if (!body && len)
                return -EINVAL;
        if (len > max)
                return -E2BIG;
        r = json_parse(body ? body : "", len, JSON_SECURE | flags, limits, ret);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (json_type(json_doc_root(*ret)) != JSON_OBJECT) {
                *ret = json_doc_free(*ret);
                return -EBADMSG;
        }
        return 0;
}

static int parse_body(const char *body, size_t len, struct json_doc **ret) {
        return parse_object(body, len, BROKERPROTO_MAX_BODY, 0,
                            &(struct json_limits){.max_input = BROKERPROTO_MAX_BODY,
                                                  .max_depth = 8,
                                                  .max_nodes = 4 * BROKERPROTO_MAX_PATHS + 16},
                            ret);
}

/* Every member of obj is one of the names in allowed (a NULL-terminated list). */
static bool only_members(const struct json_value *obj, const char *const *allowed) {
        JSON_FOREACH(m, obj) {
                bool found = false;
                for (size_t i = 0; allowed[i] && !found; i++)
                        found = strcmp(json_key(m), allowed[i]) == 0;
                if (!found)
                        return false;
        }
        return true;
}

static bool printable(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}

void brokerproto_session_request_done(struct brokerproto_session_request *r) {
        if (!r)
                return;
        json_doc_free(r->doc_);
        *r = (struct brokerproto_session_request){};
}

int brokerproto_session_request_parse(const char *body, size_t len, bool renew,
                                      struct brokerproto_session_request *ret) {
        static const char *const session_keys[] = {"jwt", "csr", NULL};
        static const char *const renew_keys[] = {"csr", NULL};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *root;
        const char *jwt = NULL, *csr;
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_body(body, len, &d);
        if (r < 0)
                return r;
        root = json_doc_root(d);
        if (!only_members(root, renew ? renew_keys : session_keys))
                return -EBADMSG;
        if (!renew && (json_get_string(root, "jwt", &jwt) < 0 || !*jwt ||
                       strlen(jwt) > BROKERPROTO_MAX_JWT || !printable(jwt)))
                return -EBADMSG;
        if (json_get_string(root, "csr", &csr) < 0 || !*csr || strlen(csr) > BROKERPROTO_MAX_CSR)
                return -EBADMSG;
        *ret = (struct brokerproto_session_request){.jwt = jwt, .csr = csr, .doc_ = TAKE_PTR(d)};
        return 0;
}

void brokerproto_paths_request_done(struct brokerproto_paths_request *r) {
        if (!r)
                return;
        json_doc_free(r->doc_);
        *r = (struct brokerproto_paths_request){};
}

int brokerproto_paths_request_parse(const char *body, size_t len,
                                    struct brokerproto_paths_request *ret) {
        static const char *const keys[] = {"paths", NULL};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct brokerproto_paths_request p = {};
        const struct json_value *root, *arr;
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_body(body, len, &d);
        if (r < 0)
                return r;
        root = json_doc_root(d);
        if (!only_members(root, keys) || json_get_array(root, "paths", &arr) < 0 ||
            json_count(arr) == 0 || json_count(arr) > BROKERPROTO_MAX_PATHS)
                return -EBADMSG;
        JSON_FOREACH(e, arr) {
                const char *s;
                if (json_string(e, &s) < 0 || !path_ok(s))
                        return -EBADMSG;
                for (size_t i = 0; i < p.n_paths; i++)
                        if (strcmp(p.paths[i], s) == 0)
                                return -EBADMSG;
                p.paths[p.n_paths++] = s;
        }
        p.doc_ = TAKE_PTR(d);
        *ret = p;
        return 0;
}

/* ---- responses --------------------------------------------------------------------------- */

static int parse_response(const char *body, size_t len, struct json_doc **ret) {
        return parse_object(body, len, BROKERPROTO_MAX_RESPONSE, JSON_ALLOW_NUL,
                            &(struct json_limits){.max_input = BROKERPROTO_MAX_RESPONSE}, ret);
}

void brokerproto_session_response_done(struct brokerproto_session_response *r) {
        if (!r)
                return;
        json_doc_free(r->doc_);
        *r = (struct brokerproto_session_response){};
}

int brokerproto_session_response_parse(const char *body, size_t len,
                                       struct brokerproto_session_response *ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct brokerproto_session_response s = {};
        const struct json_value *root;
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_response(body, len, &d);
        if (r < 0)
                return r;
        root = json_doc_root(d);
        if (json_get_string(root, "certificate", &s.certificate) < 0 ||
            json_get_string(root, "ca", &s.ca) < 0 ||
            json_get_string(root, "token", &s.token) < 0 ||
            json_get_int64(root, "expires_at", &s.expires_at) < 0 || !*s.certificate || !*s.ca ||
            !*s.token || strlen(s.token) > BROKERPROTO_MAX_TOKEN ||
            json_string_len(json_get(root, "token")) != strlen(s.token) ||
            json_string_len(json_get(root, "certificate")) != strlen(s.certificate) ||
            json_string_len(json_get(root, "ca")) != strlen(s.ca))
                return -EBADMSG;
        s.doc_ = TAKE_PTR(d);
        *ret = s;
        return 0;
}

void brokerproto_secrets_response_done(struct brokerproto_secrets_response *r) {
        if (!r)
                return;
        json_doc_free(r->doc_);
        *r = (struct brokerproto_secrets_response){};
}

int brokerproto_secrets_response_parse(const char *body, size_t len, bool versions,
                                       struct brokerproto_secrets_response *ret) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *obj;
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_response(body, len, &d);
        if (r < 0)
                return r;
        if (json_get_object(json_doc_root(d), versions ? "versions" : "secrets", &obj) < 0 ||
            json_count(obj) > BROKERPROTO_MAX_PATHS)
                return -EBADMSG;
        JSON_FOREACH(e, obj) {
                int64_t v;
                const struct json_value *data;
                if (!path_ok(json_key(e)))
                        return -EBADMSG;
                if (versions ? json_int64(e, &v) < 0 || v < 0
                             : json_get_object(e, "data", &data) < 0)
                        return -EBADMSG;
        }
        *ret = (struct brokerproto_secrets_response){.secrets = obj, .doc_ = TAKE_PTR(d)};
        return 0;
}

int brokerproto_tenant_prefix(const char *tenant, const char *ns, char *ret, size_t size) {
        int w;

        tenant = tenant ? tenant : BROKERPROTO_TENANT_DEFAULT;
        if (!*tenant || !ns || !*ns || !ret || size == 0)
                return -EINVAL;
        const char *brace = strstr(tenant, "{namespace}");
        if (brace)
                w = snprintf(ret, size, "%.*s%s%s", (int) (brace - tenant), tenant, ns,
                             brace + strlen("{namespace}"));
        else
                w = snprintf(ret, size, "%s", tenant);
        return w < 0 || (size_t) w >= size ? -E2BIG : 0;
}

int brokerproto_path_confined(const char *prefix, const char *path) {
        if (!prefix || !*prefix || !path)
                return -EPERM;
        return strncmp(path, prefix, strlen(prefix)) == 0 ? 0 : -EPERM;
}
