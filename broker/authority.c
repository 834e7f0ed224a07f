/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/authority.h"
#include "common/hmac.h"
#include "common/injection.h"
#include "common/macro.h"
#include "common/sha256.h"

#define CA_NOT_BEFORE 1577836800 /* 2020-01-01: fixed, so every replica's CA is the same name */
#define CA_NOT_AFTER 4102444800  /* 2100-01-01 */

struct authority {
        struct brokerproto_keys *keys;
        struct tls_key *ca_key;
        struct tls_cert ca;
        char *ca_pem;
        char tenant[BROKERPROTO_MAX_PATH];
};

_printf_(3, 4) static int why(char *reason, size_t size, const char *fmt, ...) {
        if (reason && size) {
                va_list ap;
                va_start(ap, fmt);
                (void) vsnprintf(reason, size, fmt, ap);
                va_end(ap);
        }
        return 0;
}

int authority_new(const void *auth, size_t auth_len, const void *install, size_t install_len,
                  const char *tenant, struct authority **ret) {
        _cleanup_free_ struct authority *a = NULL;
        _cleanup_buf_ struct buf pem = BUF_INIT(16384, 0);
        int r;

        if (!ret)
                return -EINVAL;
        tenant = tenant ? tenant : AUTHORITY_TENANT_DEFAULT;
        if (!*tenant || strlen(tenant) >= BROKERPROTO_MAX_PATH / 2)
                return -EINVAL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        memcpy(a->tenant, tenant, strlen(tenant) + 1);
        r = brokerproto_keys_new(auth, auth_len, install, install_len, &a->keys);
        if (r < 0)
                return r;
        r = -EINVAL;
        for (unsigned counter = 0; counter < 16 && r == -EINVAL; counter++) {
                uint8_t seed[BROKERPROTO_KEY_SIZE];
                brokerproto_session_ca_seed(a->keys, (uint8_t) counter, seed);
                r = tls_key_from_p256_scalar(seed, &a->ca_key);
                explicit_bzero(seed, sizeof(seed));
        }
        if (r < 0)
                goto fail;
        r = tls_cert_create_ca(a->ca_key,
                               &(struct tls_cert_params){.common_name = AUTHORITY_CA_CN,
                                                         .organization = "cloudtaser",
                                                         .not_before = CA_NOT_BEFORE,
                                                         .not_after = CA_NOT_AFTER,
                                                         .path_len = 0},
                               &a->ca);
        if (r < 0)
                goto fail;
        r = tls_cert_encode_pem(&a->ca, &pem);
        if (r < 0)
                goto fail;
        r = buf_steal(&pem, &a->ca_pem, NULL);
        if (r < 0)
                goto fail;
        *ret = TAKE_PTR(a);
        return 0;
fail:
        tls_cert_done(&a->ca);
        tls_key_free(a->ca_key);
        brokerproto_keys_free(a->keys);
        return r;
}

struct authority *authority_free(struct authority *a) {
        if (!a)
                return NULL;
        tls_cert_done(&a->ca);
        tls_key_free(a->ca_key);
        brokerproto_keys_free(a->keys);
        free(a->ca_pem);
        free(a);
        return NULL;
}

const char *authority_ca_pem(const struct authority *a) {
        return a->ca_pem;
}

int authority_review_request(const char *jwt, struct buf *out) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *spec, *aud;
        int r;

        if (!jwt || !out || !(out->flags & BUF_SECURE))
                return -EINVAL;
        r = json_doc_new(JSON_SECURE, 64 * 1024, &d);
        if (r < 0)
                return r;
        struct json_value *root = json_doc_root(d);
        if ((r = json_add_string(d, root, "apiVersion", "authentication.k8s.io/v1")) < 0 ||
            (r = json_add_string(d, root, "kind", "TokenReview")) < 0 ||
            (r = json_add_object(d, root, "spec", &spec)) < 0 ||
            (r = json_add_string(d, spec, "token", jwt)) < 0 ||
            (r = json_add_array(d, spec, "audiences", &aud)) < 0 ||
            (r = json_add_string(d, aud, NULL, BROKERPROTO_AUDIENCE)) < 0)
                return r;
        return json_print(root, out);
}

static int copy_field(char *dst, size_t size, const char *s) {
        if (!s || !*s || strlen(s) >= size)
                return -EACCES;
        memcpy(dst, s, strlen(s) + 1);
        return 0;
}

static const char *first_extra(const struct json_value *user, const char *key) {
        const struct json_value *extra = json_get(user, "extra"), *arr = json_get(extra, key);
        const char *s = NULL;
        if (json_count(arr) != 1 || json_string(json_array_at(arr, 0), &s) < 0)
                return NULL;
        return s;
}

int authority_caller_from_review(const struct json_value *review, struct authority_caller *ret,
                                 char *reason, size_t reason_size) {
        const struct json_value *status = json_get(review, "status"), *aud, *user;
        struct authority_caller c = {};
        const char *username, *pod, *uid;
        bool authenticated = false, audience = false;
        static const char sa_prefix[] = "system:serviceaccount:";

        if (json_get_bool(status, "authenticated", &authenticated) < 0 || !authenticated)
                return why(reason, reason_size, "token not authenticated"), -EACCES;
        if (json_get_array(status, "audiences", &aud) == 0)
                JSON_FOREACH(e, aud) {
                        const char *s;
                        if (json_string(e, &s) == 0 && strcmp(s, BROKERPROTO_AUDIENCE) == 0)
                                audience = true;
                }
        if (!audience)
                return why(reason, reason_size, "token audience is not %s", BROKERPROTO_AUDIENCE),
                       -EACCES;
        if (json_get_object(status, "user", &user) < 0 ||
            json_get_string(user, "username", &username) < 0 ||
            strncmp(username, sa_prefix, sizeof(sa_prefix) - 1) != 0)
                return why(reason, reason_size, "not a service account token"), -EACCES;
        username += sizeof(sa_prefix) - 1;
        const char *colon = strchr(username, ':');
        if (!colon || (size_t) (colon - username) > BROKERPROTO_MAX_NAME || colon == username)
                return why(reason, reason_size, "malformed service account name"), -EACCES;
        memcpy(c.ns, username, (size_t) (colon - username));
        pod = first_extra(user, "authentication.kubernetes.io/pod-name");
        uid = first_extra(user, "authentication.kubernetes.io/pod-uid");
        if (copy_field(c.sa, sizeof(c.sa), colon + 1) < 0 || !pod || !uid ||
            copy_field(c.pod, sizeof(c.pod), pod) < 0 || copy_field(c.uid, sizeof(c.uid), uid) < 0)
                return why(reason, reason_size, "token not bound to a pod"), -EACCES;
        *ret = c;
        return 0;
}

static const char *annotation(const struct json_value *annotations, int row) {
        const char *s = NULL;
        (void) json_get_string(annotations, injection_variables[row].annotation, &s);
        return s;
}

int authority_check_pod(const struct authority *a, const struct authority_caller *caller,
                        const struct json_value *pod, struct brokerproto_session *session,
                        char *reason, size_t reason_size) {
        const struct json_value *meta = json_get(pod, "metadata"), *ann;
        const char *name, *uid, *ns, *sa = "default", *method, *paths, *env_map, *mac;
        struct injection_secret *specs = NULL;
        struct injection_error ierr = {};
        size_t n = 0;
        char prefix[BROKERPROTO_MAX_PATH];
        int r;

        if (json_get_string(meta, "name", &name) < 0 || json_get_string(meta, "uid", &uid) < 0 ||
            json_get_string(meta, "namespace", &ns) < 0)
                return why(reason, reason_size, "malformed pod object"), -EBADMSG;
        (void) json_get_string(json_get(pod, "spec"), "serviceAccountName", &sa);
        if (strcmp(name, caller->pod) != 0 || strcmp(uid, caller->uid) != 0 ||
            strcmp(ns, caller->ns) != 0 || strcmp(sa, caller->sa) != 0)
                return why(reason, reason_size, "pod does not match the token"), -EACCES;
        ann = json_get(meta, "annotations");
        method = annotation(ann, INJECTION_ROW_AUTH_METHOD);
        if (!method || strcmp(method, "broker") != 0)
                return why(reason, reason_size, "pod not annotated for broker mode"), -EPERM;
        paths = annotation(ann, INJECTION_ROW_SECRET_PATHS);
        env_map = annotation(ann, INJECTION_ROW_ENV_MAP);
        if (json_get_string(ann, BROKERPROTO_ANNOTATION_MAC, &mac) < 0 || !paths ||
            brokerproto_annotation_mac_check(a->keys->annotation, ns, sa, paths,
                                             env_map ? env_map : "", mac) < 0)
                return why(reason, reason_size, "annotation MAC mismatch"), -EKEYREJECTED;
        r = injection_parse_secret_paths(paths, &specs, &n, &ierr);
        if (r < 0)
                return why(reason, reason_size, "malformed secret paths"), -EPERM;
        /* Namespace confinement (common/brokerproto: the operator's unsealer applies the same). */
        r = brokerproto_tenant_prefix(a->tenant, ns, prefix, sizeof(prefix));
        if (r < 0) {
                injection_secrets_free(specs, n);
                return why(reason, reason_size, "namespace prefix too long"), -EPERM;
        }
        struct brokerproto_session s = {};
        s.paths = calloc(n, sizeof(char *));
        r = s.paths ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (brokerproto_path_confined(prefix, specs[i].path) < 0) {
                        why(reason, reason_size, "path '%s' outside the namespace prefix '%s'",
                            specs[i].path, prefix);
                        r = -EPERM;
                } else if (!(s.paths[s.n_paths] = strdup(specs[i].path)))
                        r = -ENOMEM;
                else
                        s.n_paths++;
        }
        injection_secrets_free(specs, n);
        if (r == 0 && (!(s.ns = strdup(ns)) || !(s.pod = strdup(name)) || !(s.uid = strdup(uid)) ||
                       !(s.sa = strdup(sa))))
                r = -ENOMEM;
        if (r < 0) {
                brokerproto_session_done(&s);
                return r;
        }
        *session = s;
        return 0;
}

int authority_issue(const struct authority *a, struct brokerproto_session *session,
                    const char *csr_pem, size_t csr_len, int64_t now, int64_t ttl,
                    struct buf *cert_pem, struct buf *token) {
        _cleanup_tls_csr_info_ struct tls_csr_info csr = {};
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_tls_cert_info_ struct tls_cert_info info = {};
        char uri[TLS_MAX_URI], cn[65];
        int r;

        if (!a || !session || !csr_pem || !cert_pem || !token || ttl <= 0 ||
            ttl > BROKERPROTO_SESSION_TTL_MAX || now < 0)
                return -EINVAL;
        r = tls_csr_parse_pem(csr_pem, csr_len, &csr);
        if (r < 0)
                return r;
        if (csr.key_type != TLS_KEY_EC_P256 && csr.key_type != TLS_KEY_EC_P384)
                return -ENOTSUP;
        (void) snprintf(uri, sizeof(uri), "spiffe://cloudtaser/ns/%s/pod/%s/uid/%s", session->ns,
                        session->pod, session->uid);
        (void) snprintf(cn, sizeof(cn), "%s", session->pod);
        const char *uris[] = {uri};
        r = tls_cert_issue(a->ca_key, &a->ca, csr.spki, csr.spki_len,
                           &(struct tls_cert_params){.common_name = cn,
                                                     .organization = session->ns,
                                                     .san = {.uri = uris, .n_uri = 1},
                                                     .not_before = now,
                                                     .not_after = now + ttl,
                                                     .backdate = 60,
                                                     .usage = TLS_USAGE_CLIENT,
                                                     .path_len = -1},
                           &cert);
        if (r < 0)
                return r;
        r = tls_cert_inspect(&cert, &info);
        if (r < 0)
                return r;
        session->iat = now;
        session->exp = now + ttl;
        memcpy(session->cert_sha256, info.sha256, sizeof(session->cert_sha256));
        size_t cert_len0 = cert_pem->len;
        r = tls_cert_encode_pem(&cert, cert_pem);
        if (r < 0)
                return r;
        r = brokerproto_token_issue(a->keys, session, token);
        if (r < 0) {
                buf_truncate(cert_pem, cert_len0);
                return r;
        }
        return 0;
}

int authority_authenticate(const struct authority *a, const struct tls_cert *peer,
                           const char *authorization, int64_t now, struct brokerproto_session *ret,
                           char *reason, size_t reason_size) {
        struct brokerproto_session s = {};
        uint8_t digest[SHA256_DIGEST_SIZE];
        const char *token;
        int r;

        if (!peer || !peer->der)
                return why(reason, reason_size, "no client certificate"), -EACCES;
        r = tls_verify_certs(&a->ca, 1, peer, 1, now, TLS_USAGE_CLIENT);
        if (r == -EKEYEXPIRED)
                return why(reason, reason_size, "client certificate expired"), -EACCES;
        if (r < 0)
                return why(reason, reason_size, "client certificate not from the session CA"),
                       -EKEYREJECTED;
        token = brokerproto_bearer(authorization);
        if (!token)
                return why(reason, reason_size, "no session token"), -EACCES;
        r = brokerproto_token_verify(a->keys, token, strlen(token), now, &s);
        if (r < 0)
                return why(reason, reason_size, "session token %s",
                           r == -EKEYEXPIRED ? "expired"
                           : r == -EPERM     ? "forged or of another installation"
                                             : "malformed"),
                       r == -EPERM ? -EKEYREJECTED : -EACCES;
        sha256_buffer(peer->der, peer->len, digest);
        if (!hmac_equal(digest, s.cert_sha256, sizeof(digest))) {
                brokerproto_session_done(&s);
                return why(reason, reason_size, "session token issued with another certificate"),
                       -EACCES;
        }
        *ret = s;
        return 0;
}
