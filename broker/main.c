/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser-broker: the in-cluster gateway between wrappers in broker mode and the vault
 * (docs/protocol-broker.md). It logs in to the vault with its own Kubernetes-auth identity, loads
 * broker-tls, broker-auth and broker-token (re-read every --reload-interval: a rotated record is
 * swapped in without a restart; the key generations are broker/keyring's), and serves TLS on
 * --listen. Decisions are broker/authority's; this file does the I/O (TokenReview, the pod, the
 * vault reads, with --pod-tokens through each session's own token: broker/podtokens), the
 * per-pod rate limit and the audit line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/authority.h"
#include "broker/keyring.h"
#include "broker/podtokens.h"
#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "common/tls/transport.h"
#include "common/vault.h"

#define RATE_SLOTS 1024
/* A request whose keys this replica does not know re-reads the records at most this often. */
#define MISS_REFRESH_MS 2000

struct flags {
        const char *listen, *vault_addr, *vault_ca_file, *vault_role, *vault_mount, *jwt_file;
        const char *prefix, *kubeconfig, *tenant, *pod_token_role;
        bool vault_allow_http, pod_tokens;
        int64_t session_ttl;
        unsigned reload_s, rate_per_s, rate_burst, loops;
};

struct rate_slot {
        char uid[BROKERPROTO_MAX_UID + 1];
        double tokens;
        uint64_t at_ms;
};

struct broker {
        struct flags f;
        pthread_mutex_t lock; /* everything below, and every request */
        struct keyring *keys; /* the session keys, current and previous (broker/keyring.h) */
        struct vault_client *vault;
        /* --pod-tokens: each session's reads go through its own child token (broker/podtokens),
         * set on `reader` for the request. */
        struct podtokens *pods;
        struct podtokens_vault pods_vault;
        struct vault_client *reader;
        struct kube_client *kube;
        struct tls_server *tls;
        char *tls_fingerprint; /* what is served, to see a rotation */
        int64_t versions[3];   /* of broker-tls, broker-auth, broker-token as loaded */
        struct rate_slot rate[RATE_SLOTS];
        struct httpd *httpd;
        volatile sig_atomic_t stopping;
};

static uint64_t now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int64_t now_unix(void) {
        return (int64_t) time(NULL);
}

/* ---- vault ------------------------------------------------------------------------------- */

static int vault_login(struct broker *b) {
        _cleanup_buf_ struct buf jwt = BUF_INIT(BROKERPROTO_MAX_JWT, BUF_SECURE);
        struct vault_error err = {};
        int r = buf_read_file(&jwt, b->f.jwt_file);
        if (r < 0)
                return log_error_errno(r, "Cannot read the service account token %s: %m",
                                       b->f.jwt_file);
        buf_rstrip(&jwt);
        r = vault_login_kubernetes(b->vault, b->f.vault_mount, b->f.vault_role, jwt.data, jwt.len,
                                   NULL, &err);
        if (r < 0)
                return log_error_errno(r, "vault login (auth/%s, role '%s') failed: %s: %m",
                                       b->f.vault_mount, b->f.vault_role, err.message);
        return 0;
}

static int read_record(struct broker *b, const char *name, struct vault_secret **ret) {
        char path[VAULT_PATH_MAX];
        struct vault_kv_path p;
        struct vault_error err = {};
        int r;

        (void) snprintf(path, sizeof(path), "%s/%s", b->f.prefix, name);
        r = vault_kv_resolve(b->vault, path, &p, &err);
        if (r >= 0)
                r = vault_kv_read(b->vault, &p, 0, ret, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot read the record %s: %s: %m", path, err.message);
        return 0;
}

static const struct vault_field *field(const struct vault_secret *s, const char *name) {
        for (size_t i = 0; i < s->n_fields; i++)
                if (strcmp(s->fields[i].name, name) == 0)
                        return &s->fields[i];
        return NULL;
}

static int decode_key(const struct vault_secret *s, const char *name, struct buf *out) {
        const struct vault_field *fl = field(s, name);
        if (!fl)
                return -ENOENT;
        int r = base64_decode(out, fl->value, fl->value_len, false);
        if (r < 0)
                return r;
        return out->len == BROKERPROTO_KEY_SIZE ? 0 : -EBADMSG;
}

/* Loads (or re-loads) the three records; swaps in what changed (a new version of a record).
 * The session keys go to the keyring (broker/keyring.h: the previous generation kept or wiped
 * by its rules), the server pair to the TLS server (new handshakes get it, open connections
 * keep theirs). On any error what is in service stays. Called under b->lock. */
static int load_records(struct broker *b) {
        struct vault_secret *tlsr = NULL, *authr = NULL, *tokr = NULL;
        _cleanup_buf_ struct buf auth = BUF_INIT(64, BUF_SECURE), inst = BUF_INIT(64, BUF_SECURE);
        int r;

        keyring_loaded(b->keys, now_ms());
        keyring_tick(b->keys, now_unix()); /* an ended overlap's keys wiped */
        r = read_record(b, "broker-tls", &tlsr);
        if (r == -EACCES || r == -EPERM) { /* the token expired: log in again, once */
                if (vault_login(b) < 0)
                        return r;
                r = read_record(b, "broker-tls", &tlsr);
        }
        if (r >= 0)
                r = read_record(b, "broker-auth", &authr);
        if (r >= 0)
                r = read_record(b, "broker-token", &tokr);
        if (r < 0)
                goto out;
        if (keyring_current(b->keys) && tlsr->version == b->versions[0] &&
            authr->version == b->versions[1] && tokr->version == b->versions[2]) {
                r = 0; /* no new version: nothing to derive or swap */
                goto out;
        }
        if ((r = decode_key(authr, "key", &auth)) < 0 ||
            (r = decode_key(tokr, "token", &inst)) < 0) {
                log_error_errno(r,
                                "broker-auth/key or broker-token/token is not 32 bytes of base64");
                goto out;
        }
        const struct vault_field *crt = field(tlsr, "server.crt"), *key = field(tlsr, "server.key");
        if (!crt || !key) {
                r = log_error_errno(-ENOENT, "broker-tls lacks server.crt or server.key");
                goto out;
        }
        bool first = !keyring_current(b->keys);
        r = keyring_update(b->keys, auth.data, auth.len, inst.data, inst.len, now_unix(),
                           b->f.session_ttl);
        if (r < 0) {
                log_error_errno(r, "Cannot derive the session keys: %m");
                goto out;
        }
        if (r == KEYRING_NEW_TOKEN)
                log_notice("broker-token rotated (version %" PRId64 "): new session keys; "
                           "sessions issued before stay valid for at most %" PRId64 " s",
                           tokr->version, b->f.session_ttl);
        else if (r == KEYRING_NEW_AUTH && !first) {
                log_notice("broker-auth rotated (version %" PRId64 "): new session keys and "
                           "annotation key; every session issued before ends, pods admitted "
                           "before must be admitted again",
                           authr->version);
                if (b->pods) /* their sessions ended */
                        log_info("revoked %zu per-session token(s)", podtokens_revoke_all(b->pods));
        }
        if (!b->tls) {
                struct tls_server_options to = {.cert_pem = crt->value,
                                                .cert_len = crt->value_len,
                                                .key_pem = key->value,
                                                .key_len = key->value_len,
                                                /* The session CA rotates: the client
                                                 * certificate is verified by the keyring. */
                                                .client_auth = TLS_CLIENT_AUTH_REQUEST};
                r = tls_server_new(&to, &b->tls);
                if (r < 0) {
                        log_error_errno(r, "Invalid broker-tls server pair: %m");
                        goto out;
                }
                b->tls_fingerprint = strdup(crt->value);
        } else if (!b->tls_fingerprint || strcmp(b->tls_fingerprint, crt->value) != 0) {
                r = tls_server_set_cert_pem(b->tls, crt->value, crt->value_len, key->value,
                                            key->value_len);
                if (r < 0) {
                        log_error_errno(r, "Rotated broker-tls pair refused, keeping the old: %m");
                        goto out;
                }
                free(b->tls_fingerprint);
                b->tls_fingerprint = strdup(crt->value);
                log_notice("broker-tls rotated (version %" PRId64 "): serving generation %d",
                           tlsr->version, r);
        }
        b->versions[0] = tlsr->version;
        b->versions[1] = authr->version;
        b->versions[2] = tokr->version;
        r = 0;
out:
        vault_secret_free(tlsr);
        vault_secret_free(authr);
        vault_secret_free(tokr);
        return r;
}

/* A key miss (-EKEYREJECTED: keys this replica may not have loaded yet, e.g. another replica
 * read a rotated record first): true when the records were re-read just now, so that the
 * caller asks once more. Rate-limited, so forged tokens cannot make the broker hammer the
 * vault. */
static bool refresh_on_miss(struct broker *b, int r) {
        if (r != -EKEYREJECTED || !keyring_refresh_due(b->keys, now_ms(), MISS_REFRESH_MS))
                return false;
        int64_t v[3];
        memcpy(v, b->versions, sizeof(v));
        return load_records(b) >= 0 && memcmp(v, b->versions, sizeof(v)) != 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

struct audit {
        const char *ns, *pod, *sa;
        char paths[512];
        char reason[AUTHORITY_REASON_MAX];
};

static int answer(struct httpd_response *resp, int status, const char *error) {
        resp->status = status;
        resp->content_type = "application/json";
        buf_reset(&resp->body);
        if (error) {
                (void) buf_append_str(&resp->body, "{\"error\":");
                (void) json_append_quoted(&resp->body, error);
                (void) buf_append_str(&resp->body, "}");
        }
        return 0;
}

static int status_of(int r) {
        switch (r) {
        case -EACCES:
                return 401;
        case -EPERM:
        case -EKEYREJECTED: /* authority_check_pod(): the annotation MAC */
                return 403;
        case -E2BIG:
                return 413;
        case -EBADMSG:
        case -EINVAL:
        case -ENOTSUP:
                return 400;
        default:
                return 502;
        }
}

/* A token bucket per pod UID (a fixed table: the least recently used slot is reused). */
static bool rate_allow(struct broker *b, const char *uid) {
        uint64_t t = now_ms();
        struct rate_slot *slot = NULL, *oldest = &b->rate[0];
        for (size_t i = 0; i < RATE_SLOTS; i++) {
                if (strcmp(b->rate[i].uid, uid) == 0) {
                        slot = &b->rate[i];
                        break;
                }
                if (b->rate[i].at_ms < oldest->at_ms)
                        oldest = &b->rate[i];
        }
        if (!slot) {
                slot = oldest;
                (void) snprintf(slot->uid, sizeof(slot->uid), "%s", uid);
                slot->tokens = b->f.rate_burst;
                slot->at_ms = t;
        }
        slot->tokens += (double) (t - slot->at_ms) * b->f.rate_per_s / 1000.0;
        if (slot->tokens > b->f.rate_burst)
                slot->tokens = b->f.rate_burst;
        slot->at_ms = t;
        if (slot->tokens < 1.0)
                return false;
        slot->tokens -= 1.0;
        return true;
}

static int session_reply(struct broker *b, struct brokerproto_session *s, const char *csr,
                         struct httpd_response *resp, struct audit *au) {
        _cleanup_buf_ struct buf cert = BUF_INIT(16384, 0);
        _cleanup_buf_ struct buf token = BUF_INIT(BROKERPROTO_MAX_TOKEN, BUF_SECURE);
        int64_t now = now_unix();
        const struct authority *a = keyring_current(b->keys);
        int r = authority_issue(a, s, csr, strlen(csr), now, b->f.session_ttl, &cert, &token);
        if (r < 0) {
                (void) snprintf(au->reason, sizeof(au->reason), "CSR refused");
                return answer(resp, 400, "CSR refused");
        }
        _cleanup_json_doc_ struct json_doc *d = NULL;
        if ((r = json_doc_new(JSON_SECURE, 256 * 1024, &d)) < 0)
                return r;
        struct json_value *root = json_doc_root(d);
        if ((r = json_add_string(d, root, "certificate", cert.data)) < 0 ||
            (r = json_add_string(d, root, "ca", authority_ca_pem(a))) < 0 ||
            (r = json_add_string(d, root, "token", token.data)) < 0 ||
            (r = json_add_int64(d, root, "expires_at", s->exp)) < 0)
                return r;
        if (b->pods) {
                char id[PODTOKENS_ID_SIZE];
                struct podtokens_grant g;
                podtokens_session_id(token.data, token.len, id);
                r = podtokens_get(b->pods, s, id, now, &g);
                if (r < 0)
                        return snprintf(au->reason, sizeof(au->reason),
                                        "vault: cannot create the session's token: %s",
                                        vault_strerror(r)),
                               answer(resp, 502, "vault: cannot create the session's token");
                answer(resp, 200, NULL);
                (void) snprintf(au->reason, sizeof(au->reason),
                                "session until %" PRId64 ", with its own vault token", s->exp);
                log_info("pod token for a session of %s/%s: policy %s accessor %s", s->ns, s->pod,
                         g.policy, g.accessor);
        } else {
                answer(resp, 200, NULL);
                (void) snprintf(au->reason, sizeof(au->reason), "session until %" PRId64, s->exp);
        }
        return json_print(root, &resp->body);
}

/* authority_check_pod() with the current keys; a MAC under keys not loaded yet re-reads the
 * records once (a pod admitted after a broker-auth rotation this replica has not seen). */
static int check_pod(struct broker *b, const struct authority_caller *c,
                     const struct json_value *pod, struct brokerproto_session *s,
                     struct audit *au) {
        int r = authority_check_pod(keyring_current(b->keys), c, pod, s, au->reason,
                                    sizeof(au->reason));
        if (refresh_on_miss(b, r))
                r = authority_check_pod(keyring_current(b->keys), c, pod, s, au->reason,
                                        sizeof(au->reason));
        return r;
}

static int handle_session(struct broker *b, const struct httpd_request *req,
                          struct httpd_response *resp, struct audit *au) {
        _cleanup_(brokerproto_session_request_done) struct brokerproto_session_request sr = {};
        _cleanup_(brokerproto_session_done) struct brokerproto_session s = {};
        _cleanup_buf_ struct buf body = BUF_INIT(64 * 1024, BUF_SECURE);
        _cleanup_json_doc_ struct json_doc *review = NULL, *pod = NULL;
        struct kube_error kerr = {};
        struct authority_caller c = {};
        char path[1024];
        int r;

        r = brokerproto_session_request_parse(req->body, req->body_len, false, &sr);
        if (r < 0)
                return snprintf(au->reason, sizeof(au->reason), "malformed request"),
                       answer(resp, status_of(r), "malformed session request");
        if ((r = authority_review_request(sr.jwt, &body)) < 0)
                return r;
        r = kube_create(b->kube, "/apis/authentication.k8s.io/v1/tokenreviews", &body, &review,
                        &kerr);
        if (r < 0)
                return snprintf(au->reason, sizeof(au->reason), "TokenReview failed: %.100s",
                                kerr.message),
                       answer(resp, 502, "TokenReview failed");
        r = authority_caller_from_review(json_doc_root(review), &c, au->reason, sizeof(au->reason));
        if (r < 0)
                return answer(resp, 401, au->reason);
        au->ns = arena_strdup(req->arena, c.ns);
        au->pod = arena_strdup(req->arena, c.pod);
        au->sa = arena_strdup(req->arena, c.sa);
        if (!rate_allow(b, c.uid))
                return snprintf(au->reason, sizeof(au->reason), "rate limited"),
                       answer(resp, 429, "rate limited");
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", c.ns, c.pod);
        r = kube_get(b->kube, path, &pod, &kerr);
        if (r < 0)
                return snprintf(au->reason, sizeof(au->reason), "pod lookup failed: %.100s",
                                kerr.message),
                       answer(resp, r == -ENOENT ? 401 : 502, "pod lookup failed");
        r = check_pod(b, &c, json_doc_root(pod), &s, au);
        if (r < 0)
                return answer(resp, status_of(r), au->reason);
        return session_reply(b, &s, sr.csr, resp, au);
}

static int peer_session(struct broker *b, const struct httpd_request *req,
                        struct brokerproto_session *s, struct audit *au) {
        _cleanup_tls_cert_ struct tls_cert peer = {};
        const struct tls_cert *p = NULL;
        const char *authz = httpd_request_header(req, "Authorization");
        if (req->tls && tls_conn_peer_cert(req->tls, &peer) == 0)
                p = &peer;
        int r = keyring_authenticate(b->keys, p, authz, now_unix(), s, au->reason,
                                     sizeof(au->reason));
        if (refresh_on_miss(b, r))
                r = keyring_authenticate(b->keys, p, authz, now_unix(), s, au->reason,
                                         sizeof(au->reason));
        if (r == 0) {
                au->ns = arena_strdup(req->arena, s->ns);
                au->pod = arena_strdup(req->arena, s->pod);
                au->sa = arena_strdup(req->arena, s->sa);
        }
        return r;
}

static int read_secret(struct vault_client *vc, const char *path, struct json_doc *d,
                       struct json_value *into, bool versions) {
        struct vault_kv_path p;
        struct vault_error err = {};
        struct vault_secret *sec = NULL;
        struct json_value *entry, *data, *meta;
        int r = vault_kv_resolve(vc, path, &p, &err);
        if (r >= 0)
                r = vault_kv_read(vc, &p, 0, &sec, &err);
        if (r < 0)
                return r;
        if (versions) {
                r = json_add_int64(d, into, path, sec->version);
                vault_secret_free(sec);
                return r;
        }
        if ((r = json_add_object(d, into, path, &entry)) < 0 ||
            (r = json_add_object(d, entry, "data", &data)) < 0)
                goto out;
        for (size_t i = 0; i < sec->n_fields && r >= 0; i++) {
                const struct vault_field *fl = &sec->fields[i];
                if (fl->type == VAULT_VALUE_STRING)
                        r = json_add_stringn(d, data, fl->name, fl->value, fl->value_len);
                else {
                        _cleanup_json_doc_ struct json_doc *v = NULL;
                        r = json_parse(fl->value, fl->value_len, JSON_SECURE, NULL, &v);
                        if (r >= 0)
                                r = json_add_copy(d, data, fl->name, json_doc_root(v));
                }
        }
        if (r >= 0 && (r = json_add_object(d, entry, "metadata", &meta)) >= 0)
                r = json_add_int64(d, meta, "version", sec->version);
out:
        vault_secret_free(sec);
        return r;
}

static int handle_paths(struct broker *b, const struct httpd_request *req,
                        struct httpd_response *resp, struct audit *au, bool versions) {
        _cleanup_(brokerproto_session_done) struct brokerproto_session s = {};
        _cleanup_(brokerproto_paths_request_done) struct brokerproto_paths_request pr = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *obj;
        int r = peer_session(b, req, &s, au);
        if (r < 0)
                return answer(resp, 401, au->reason);
        if (!rate_allow(b, s.uid))
                return snprintf(au->reason, sizeof(au->reason), "rate limited"),
                       answer(resp, 429, "rate limited");
        r = brokerproto_paths_request_parse(req->body, req->body_len, &pr);
        if (r < 0)
                return snprintf(au->reason, sizeof(au->reason), "malformed request"),
                       answer(resp, status_of(r), "malformed request");
        size_t used = 0;
        for (size_t i = 0; i < pr.n_paths; i++) {
                int n = snprintf(au->paths + used, sizeof(au->paths) - used, "%s%s", i ? "," : "",
                                 pr.paths[i]);
                if (n > 0 && (size_t) n < sizeof(au->paths) - used)
                        used += (size_t) n;
        }
        for (size_t i = 0; i < pr.n_paths; i++)
                if (!brokerproto_session_allows(&s, pr.paths[i]))
                        return snprintf(au->reason, sizeof(au->reason),
                                        "path '%s' not in the session", pr.paths[i]),
                               answer(resp, 403, au->reason);
        if ((r = json_doc_new(JSON_SECURE, BROKERPROTO_MAX_RESPONSE, &d)) < 0)
                return r;
        if ((r = json_add_object(d, json_doc_root(d), versions ? "versions" : "secrets", &obj)) < 0)
                return r;
        struct vault_client *v = b->vault;
        if (b->pods) { /* the session's own token, minted here when another replica issued it */
                const char *token = brokerproto_bearer(httpd_request_header(req, "Authorization"));
                char id[PODTOKENS_ID_SIZE];
                struct podtokens_grant g;
                podtokens_session_id(token, strlen(token), id);
                r = podtokens_get(b->pods, &s, id, now_unix(), &g);
                if (r >= 0)
                        r = vault_set_token(b->reader, g.token, strlen(g.token));
                if (r < 0)
                        return snprintf(au->reason, sizeof(au->reason),
                                        "vault: no token for the session: %s", vault_strerror(r)),
                               answer(resp, 502, "vault: no token for the session");
                if (g.minted)
                        log_info("pod token for a session of %s/%s: policy %s accessor %s", s.ns,
                                 s.pod, g.policy, g.accessor);
                v = b->reader;
        }
        size_t failed = pr.n_paths;
        for (size_t i = 0; i < pr.n_paths && failed == pr.n_paths; i++)
                if ((r = read_secret(v, pr.paths[i], d, obj, versions)) < 0)
                        failed = i;
        if (b->pods)
                vault_clear_token(b->reader);
        if (failed < pr.n_paths)
                return snprintf(au->reason, sizeof(au->reason), "vault read of '%s' failed",
                                pr.paths[failed]),
                       answer(resp, r == -ENOENT ? 404 : 502, au->reason);
        answer(resp, 200, NULL);
        (void) snprintf(au->reason, sizeof(au->reason), "%zu path(s)", pr.n_paths);
        return json_print(json_doc_root(d), &resp->body);
}

static int handle_renew(struct broker *b, const struct httpd_request *req,
                        struct httpd_response *resp, struct audit *au) {
        _cleanup_(brokerproto_session_done) struct brokerproto_session s = {};
        _cleanup_(brokerproto_session_request_done) struct brokerproto_session_request sr = {};
        _cleanup_json_doc_ struct json_doc *pod = NULL;
        struct kube_error kerr = {};
        char path[1024];
        int r = peer_session(b, req, &s, au);
        if (r < 0)
                return answer(resp, 401, au->reason);
        r = brokerproto_session_request_parse(req->body, req->body_len, true, &sr);
        if (r < 0)
                return answer(resp, status_of(r), "malformed renew request");
        /* The pod must still be there, the same one, with the same admitted annotations. */
        struct authority_caller c = {};
        (void) snprintf(c.ns, sizeof(c.ns), "%s", s.ns);
        (void) snprintf(c.sa, sizeof(c.sa), "%s", s.sa);
        (void) snprintf(c.pod, sizeof(c.pod), "%s", s.pod);
        (void) snprintf(c.uid, sizeof(c.uid), "%s", s.uid);
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", c.ns, c.pod);
        r = kube_get(b->kube, path, &pod, &kerr);
        if (r < 0)
                return answer(resp, r == -ENOENT ? 401 : 502, "pod lookup failed");
        brokerproto_session_done(&s);
        r = check_pod(b, &c, json_doc_root(pod), &s, au);
        if (r < 0)
                return answer(resp, status_of(r), au->reason);
        r = session_reply(b, &s, sr.csr, resp, au);
        if (r >= 0 && resp->status == 200 && b->pods) { /* the old session is replaced */
                const char *old = brokerproto_bearer(httpd_request_header(req, "Authorization"));
                char id[PODTOKENS_ID_SIZE];
                podtokens_session_id(old, strlen(old), id);
                (void) podtokens_end(b->pods, id);
        }
        return r;
}

static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        struct broker *b = userdata;
        struct audit au = {.ns = "-", .pod = "-", .sa = "-", .paths = "-"};
        int r;

        if (strcmp(req->path, "/healthz") == 0)
                return answer(resp, 200, NULL), buf_append_str(&resp->body, "{}");
        if (strcmp(req->method, "POST") != 0)
                return answer(resp, 405, "POST only");
        (void) pthread_mutex_lock(&b->lock);
        if (strcmp(req->path, BROKERPROTO_PATH_SESSION) == 0)
                r = handle_session(b, req, resp, &au);
        else if (strcmp(req->path, BROKERPROTO_PATH_RENEW) == 0)
                r = handle_renew(b, req, resp, &au);
        else if (strcmp(req->path, BROKERPROTO_PATH_SECRETS) == 0)
                r = handle_paths(b, req, resp, &au, false);
        else if (strcmp(req->path, BROKERPROTO_PATH_VERSIONS) == 0)
                r = handle_paths(b, req, resp, &au, true);
        else
                r = answer(resp, 404, "no such endpoint");
        (void) pthread_mutex_unlock(&b->lock);
        if (r < 0) {
                (void) snprintf(au.reason, sizeof(au.reason), "internal error");
                answer(resp, 500, "internal error");
        }
        log_info("audit remote=%s method=%s path=%s ns=%s pod=%s sa=%s paths=%s status=%d "
                 "reason=\"%s\"",
                 req->remote, req->method, req->path, au.ns ? au.ns : "-", au.pod ? au.pod : "-",
                 au.sa ? au.sa : "-", au.paths, resp->status, au.reason);
        return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

/* Expired sessions' tokens revoked, their policies deleted (also a dead broker's). */
static int sweep_pod_tokens(struct broker *b) {
        size_t revoked = 0, deleted = 0;
        int r = podtokens_sweep(b->pods, now_unix(), &revoked, &deleted);
        if (r < 0)
                return log_warning_errno(r, "Cannot list the per-session policies: %s",
                                         vault_strerror(r));
        if (revoked || deleted)
                log_info("expired sessions: %zu token(s) revoked, %zu policy(ies) deleted", revoked,
                         deleted);
        return 0;
}

static void *reload_main(void *userdata) {
        struct broker *b = userdata;
        while (!b->stopping) {
                for (unsigned i = 0; i < b->f.reload_s * 10 && !b->stopping; i++) {
                        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
                        (void) nanosleep(&ts, NULL);
                }
                if (b->stopping)
                        break;
                (void) pthread_mutex_lock(&b->lock);
                (void) load_records(b); /* logged; the current material stays in service */
                if (b->pods)
                        (void) sweep_pod_tokens(b);
                (void) pthread_mutex_unlock(&b->lock);
        }
        return NULL;
}

static void *loop_main(void *userdata) {
        (void) httpd_run(userdata);
        return NULL;
}

static void usage(FILE *out) {
        fputs("Usage: cloudtaser-broker --vault-addr URL [options]\n"
              "  --listen ADDR            TLS listen address (default :8443)\n"
              "  --vault-addr URL         the vault (VAULT_ADDR)\n"
              "  --vault-ca-file FILE     the vault's CA (VAULT_CACERT)\n"
              "  --vault-allow-http       accept an http:// vault address (tests)\n"
              "  --vault-role ROLE        Kubernetes-auth role (default cloudtaser-broker)\n"
              "  --vault-auth-mount PATH  Kubernetes-auth mount (default kubernetes)\n"
              "  --vault-jwt-file FILE    the broker's own service account token\n"
              "  --records-prefix PATH    where broker-tls/-auth/-token live (default\n"
              "                           secret/cloudtaser/system)\n"
              "  --kubeconfig FILE        outside a cluster (default: in-cluster)\n"
              "  --tenant-prefix TEMPLATE namespace confinement (default "
              "secret/data/{namespace}/)\n"
              "  --session-ttl SECONDS    session and client certificate lifetime (default 900)\n"
              "  --reload-interval S      re-read the records every S seconds (default 60)\n"
              "  --rate N --burst M       requests per second and burst per pod (default 20/40)\n"
              "  --loops N                event loops (threads; default 1)\n"
              "  --pod-tokens             read each session's secrets with a child token\n"
              "                           whose policy names only its paths (off by default)\n"
              "  --pod-token-role ROLE    the token role of those tokens (default\n"
              "                           cloudtaser-broker-pod)\n"
              "  --version                print the version\n",
              out);
}

static int parse_uint(const char *s, unsigned max, unsigned *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || !end || *end || end == s || v == 0 || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_flags(int argc, char **argv, struct flags *f) {
        enum {
                LISTEN = 256,
                VADDR,
                VCA,
                VHTTP,
                VROLE,
                VMOUNT,
                JWT,
                PREFIX,
                KUBECONFIG,
                TENANT,
                TTL,
                RELOAD,
                RATE,
                BURST,
                LOOPS,
                POD_TOKENS,
                POD_TOKEN_ROLE,
                HELP
        };
        static const struct option opts[] = {
                {"listen", required_argument, NULL, LISTEN},
                {"vault-addr", required_argument, NULL, VADDR},
                {"vault-ca-file", required_argument, NULL, VCA},
                {"vault-allow-http", no_argument, NULL, VHTTP},
                {"vault-role", required_argument, NULL, VROLE},
                {"vault-auth-mount", required_argument, NULL, VMOUNT},
                {"vault-jwt-file", required_argument, NULL, JWT},
                {"records-prefix", required_argument, NULL, PREFIX},
                {"kubeconfig", required_argument, NULL, KUBECONFIG},
                {"tenant-prefix", required_argument, NULL, TENANT},
                {"session-ttl", required_argument, NULL, TTL},
                {"reload-interval", required_argument, NULL, RELOAD},
                {"rate", required_argument, NULL, RATE},
                {"burst", required_argument, NULL, BURST},
                {"loops", required_argument, NULL, LOOPS},
                {"pod-tokens", no_argument, NULL, POD_TOKENS},
                {"pod-token-role", required_argument, NULL, POD_TOKEN_ROLE},
                {"help", no_argument, NULL, HELP},
                {},
        };
        unsigned ttl = BROKERPROTO_SESSION_TTL_DEFAULT;
        int c;
        *f = (struct flags){.listen = ":8443",
                            .vault_addr = getenv("VAULT_ADDR"),
                            .vault_ca_file = getenv("VAULT_CACERT"),
                            .vault_role = "cloudtaser-broker",
                            .vault_mount = "kubernetes",
                            .jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token",
                            .prefix = "secret/cloudtaser/system",
                            .reload_s = 60,
                            .rate_per_s = 20,
                            .rate_burst = 40,
                            .loops = 1};
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case LISTEN:
                        f->listen = optarg;
                        break;
                case VADDR:
                        f->vault_addr = optarg;
                        break;
                case VCA:
                        f->vault_ca_file = optarg;
                        break;
                case VHTTP:
                        f->vault_allow_http = true;
                        break;
                case VROLE:
                        f->vault_role = optarg;
                        break;
                case VMOUNT:
                        f->vault_mount = optarg;
                        break;
                case JWT:
                        f->jwt_file = optarg;
                        break;
                case PREFIX:
                        f->prefix = optarg;
                        break;
                case KUBECONFIG:
                        f->kubeconfig = optarg;
                        break;
                case TENANT:
                        f->tenant = optarg;
                        break;
                case TTL:
                        r = parse_uint(optarg, BROKERPROTO_SESSION_TTL_MAX, &ttl);
                        break;
                case RELOAD:
                        r = parse_uint(optarg, 86400, &f->reload_s);
                        break;
                case RATE:
                        r = parse_uint(optarg, 100000, &f->rate_per_s);
                        break;
                case BURST:
                        r = parse_uint(optarg, 100000, &f->rate_burst);
                        break;
                case LOOPS:
                        r = parse_uint(optarg, 64, &f->loops);
                        break;
                case POD_TOKENS:
                        f->pod_tokens = true;
                        break;
                case POD_TOKEN_ROLE:
                        f->pod_token_role = optarg;
                        break;
                case HELP:
                        usage(stdout);
                        exit(EX_OK);
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return log_error_errno(r, "Invalid value for --%s: '%s'",
                                               opts[c - LISTEN].name, optarg);
        }
        f->session_ttl = ttl;
        if (optind < argc || !f->vault_addr || !*f->vault_addr)
                return log_error_errno(-EINVAL, "--vault-addr (or VAULT_ADDR) is required");
        return 0;
}

int main(int argc, char **argv) {
        static struct broker b = {.lock = PTHREAD_MUTEX_INITIALIZER};
        struct kube_config *kc = NULL;
        struct kube_error kerr = {};
        int r;

        log_setup("cloudtaser-broker", LOG_FORMAT_TEXT, LOG_INFO);
        (void) secmem_harden_process();
        (void) atexit(secmem_wipe_all);
        if (argc == 2 && strcmp(argv[1], "--version") == 0)
                return printf("cloudtaser-broker %s\n", CLOUDTASER_VERSION), EX_OK;
        if (parse_flags(argc, argv, &b.f) < 0)
                return usage(stderr), EX_USAGE;

        sigset_t mask;
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        struct vault_options vo = {.addr = b.f.vault_addr,
                                   .allow_http = b.f.vault_allow_http,
                                   .ca_file = b.f.vault_ca_file,
                                   .user_agent = "cloudtaser-broker/" CLOUDTASER_VERSION};
        r = keyring_new(b.f.tenant, &b.keys);
        if (r < 0)
                return log_error_errno(r, "Invalid --tenant-prefix: %m"), EX_USAGE;
        r = vault_client_new(&vo, &b.vault);
        if (r < 0)
                return log_error_errno(r, "Invalid vault options: %m"), EX_CONFIG;
        if (b.f.kubeconfig)
                r = kube_config_load(&(struct kube_load_options){.paths = b.f.kubeconfig}, &kc,
                                     &kerr);
        else
                r = kube_config_incluster(NULL, &kc, &kerr);
        if (r < 0)
                return log_error_errno(r, "Cannot configure the Kubernetes client: %s: %m",
                                       kerr.message),
                       EX_CONFIG;
        r = kube_client_new(&kc, NULL, &b.kube);
        if (r < 0)
                return log_error_errno(r, "Cannot create the Kubernetes client: %m"), EX_CONFIG;
        if (b.f.pod_tokens) {
                struct podtokens_ops ops;
                r = vault_client_new(&vo, &b.reader);
                if (r >= 0) {
                        b.pods_vault =
                                (struct podtokens_vault){.admin = b.vault, .reader = b.reader};
                        podtokens_vault_ops(&b.pods_vault, &ops);
                        r = podtokens_new(&ops, b.f.pod_token_role, &b.pods);
                }
                if (r < 0)
                        return log_error_errno(r, "Invalid --pod-token-role: %m"), EX_USAGE;
        }

        /* Vault may come later: retry with backoff, not ready meanwhile. */
        for (unsigned delay = 1;; delay = delay < 30 ? delay * 2 : 30) {
                r = vault_login(&b);
                if (r >= 0)
                        r = load_records(&b);
                if (r >= 0 && b.pods) /* left-overs of a broker that died: swept before serving */
                        r = sweep_pod_tokens(&b);
                if (r >= 0)
                        break;
                log_warning("not ready: retrying in %u s", delay);
                struct timespec ts = {.tv_sec = delay};
                siginfo_t si;
                if (sigtimedwait(&mask, &si, &ts) > 0)
                        return EX_OK;
        }
        struct httpd_options ho = {.address = b.f.listen,
                                   .tls = b.tls,
                                   .handler = handler,
                                   .userdata = &b,
                                   .limits = {.max_body = BROKERPROTO_MAX_BODY,
                                              .max_response_body = BROKERPROTO_MAX_RESPONSE},
                                   .max_connections = 512};
        r = httpd_new(&ho, &b.httpd);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s: %m", b.f.listen), EXIT_FAILURE;
        pthread_t threads[66];
        size_t nt = 0;
        for (unsigned i = 0; i < b.f.loops; i++)
                if (pthread_create(&threads[nt], NULL, loop_main, b.httpd) == 0)
                        nt++;
        if (pthread_create(&threads[nt], NULL, reload_main, &b) == 0)
                nt++;
        log_info("serving on %s (port %d), installation %s, tenant prefix %s, sessions %" PRId64
                 " s, reads with %s",
                 b.f.listen, httpd_port(b.httpd), "-",
                 b.f.tenant ? b.f.tenant : AUTHORITY_TENANT_DEFAULT, b.f.session_ttl,
                 b.pods ? "per-session child tokens" : "the broker's own token");
        int sig = 0;
        (void) sigwait(&mask, &sig);
        log_info("received signal %d: stopping", sig);
        b.stopping = 1;
        httpd_stop(b.httpd);
        for (size_t i = 0; i < nt; i++)
                (void) pthread_join(threads[i], NULL);
        httpd_free(b.httpd);
        if (b.pods)
                log_info("stopping: %zu per-session token(s) revoked",
                         podtokens_revoke_all(b.pods));
        podtokens_free(b.pods);
        vault_client_free(b.reader);
        tls_server_free(b.tls);
        keyring_free(b.keys);
        free(b.tls_fingerprint);
        vault_client_free(b.vault);
        kube_client_free(b.kube);
        return EX_OK;
}
