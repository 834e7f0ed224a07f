/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for wrapper/broker and the broker half of wrapper/secrets: the pure decoders, and
 * the client against an in-process stand-in broker (common/httpd over TLS, certificates from
 * common/tls) for what the real broker cannot be made to do on demand: a scripted 401, 403,
 * 404 or 502 at a chosen request, a certificate for another key, a clock that disagrees. The
 * real broker is tests/e2e/test-real-wrapper-broker.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/brokerproto.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "tests/tap.h"
#include "wrapper/broker.h"
#include "wrapper/config.h"
#include "wrapper/secrets.h"

/* ---- pure decoders ----------------------------------------------------------------------- */

static void test_decode_error(void) {
        static const struct {
                long status;
                int want;
        } table[] = {
                {400, -EINVAL}, {401, -EKEYREJECTED}, {403, -EACCES}, {404, -ENOENT},
                {413, -E2BIG},  {429, -EBUSY},        {502, -EIO},    {503, -EIO},
                {418, -EPROTO}, {302, -EPROTO},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct broker_error e = {};
                const char body[] = "{\"error\":\"path 'secret/data/a' not in the session\"}";
                is_int(broker_decode_error(table[i].status, body, sizeof(body) - 1, "/v1/secrets",
                                           &e),
                       table[i].want, "status %ld", table[i].status);
                ok(e.status == table[i].status && e.error == table[i].want &&
                           strcmp(e.message, "path 'secret/data/a' not in the session") == 0 &&
                           strcmp(e.path, "/v1/secrets") == 0,
                   "status %ld: the broker's text, the status and the API path kept",
                   table[i].status);
        }
        struct broker_error e = {};
        (void) broker_decode_error(502, "<html>bad gateway</html>", 24, "/v1/session", &e);
        is_str(e.message, "status 502", "a body that is not the broker's: not quoted");
        const char ctl[] = "{\"error\":\"a\\nb\\u0001c\"}";
        (void) broker_decode_error(403, ctl, sizeof(ctl) - 1, "/v1/secrets", &e);
        is_str(e.message, "a?b?c", "control characters of the broker's text replaced");
        ok(broker_error_is_transient(-EIO) && broker_error_is_transient(-EBUSY) &&
                   broker_error_is_transient(-ECONNREFUSED) &&
                   broker_error_is_transient(-ETIMEDOUT) && !broker_error_is_transient(-EACCES) &&
                   !broker_error_is_transient(-EKEYREJECTED) &&
                   !broker_error_is_transient(-ENOENT) && !broker_error_is_transient(-EPROTO),
           "transient: 5xx, 429, connection errors; not refusals, missing, TLS");
}

static void test_decode_secret(void) {
        const char body[] = "{\"secrets\":{\"secret/data/a/db\":{\"data\":{\"password\":\"pw\","
                            "\"n\":42,\"o\":{\"k\":[1,true]}},\"metadata\":{\"version\":7}},"
                            "\"secret/data/a/v1\":{\"data\":{\"k\":\"v\"}}}}";
        struct brokerproto_secrets_response s = {};
        is_int(brokerproto_secrets_response_parse(body, sizeof(body) - 1, false, &s), 0,
               "a secrets answer parses");
        struct vault_secret *sec = NULL;
        is_int(broker_decode_secret(json_get(s.secrets, "secret/data/a/db"), &sec), 0,
               "an entry decodes");
        const struct vault_field *f = sec ? vault_secret_get(sec, "password") : NULL;
        ok(sec && sec->version == 7 && sec->n_fields == 3 && f && f->type == VAULT_VALUE_STRING &&
                   strcmp(f->value, "pw") == 0,
           "a string field and the version");
        f = sec ? vault_secret_get(sec, "o") : NULL;
        ok(f && f->type == VAULT_VALUE_JSON && strcmp(f->value, "{\"k\":[1,true]}") == 0,
           "a JSON field as compact JSON text, as from a direct vault read");
        sec = vault_secret_free(sec);
        ok(broker_decode_secret(json_get(s.secrets, "secret/data/a/v1"), &sec) == 0 && sec &&
                   sec->version == 0,
           "no metadata (KV v1 through the broker): version 0");
        sec = vault_secret_free(sec);
        is_int(broker_decode_secret(json_get(s.secrets, "secret/data/none"), &sec), -EBADMSG,
               "a path missing from the answer: -EBADMSG");
        brokerproto_secrets_response_done(&s);
}

/* ---- the stand-in broker ----------------------------------------------------------------- */

struct pki {
        struct tls_key *ca_key, *session_ca_key, *other_key;
        struct tls_cert ca, session_ca;
        struct buf ca_pem, session_ca_pem, server_pem, server_key_pem;
};

struct stand {
        pthread_mutex_t lock;
        struct pki *pki;
        int sessions, renewals, data_calls;
        char last_jwt[128];
        char token[32];
        int script[8]; /* statuses for the next /v1/secrets and /v1/versions calls (0: serve) */
        size_t n_script;
        int session_status; /* answer /v1/session with this (0: serve) */
        bool wrong_key;     /* sign certificates for another key */
        int64_t ttl, expires_skew;
        int64_t version;
        bool saw_cert;
};

static struct stand st;

static int reply(struct httpd_response *resp, int status, const char *error) {
        resp->status = status;
        resp->content_type = "application/json";
        if (error) {
                (void) buf_append_str(&resp->body, "{\"error\":");
                (void) json_append_quoted(&resp->body, error);
                (void) buf_append_str(&resp->body, "}");
        }
        return 0;
}

static bool authorised(const struct httpd_request *req) {
        _cleanup_tls_cert_ struct tls_cert peer = {};
        const char *bearer = brokerproto_bearer(httpd_request_header(req, "Authorization"));
        st.saw_cert = req->tls && tls_conn_peer_cert(req->tls, &peer) == 0;
        return st.saw_cert && bearer && strcmp(bearer, st.token) == 0;
}

static int issue(const struct httpd_request *req, struct httpd_response *resp, bool renew) {
        _cleanup_(brokerproto_session_request_done) struct brokerproto_session_request sr = {};
        _cleanup_tls_csr_info_ struct tls_csr_info csr = {};
        _cleanup_tls_cert_ struct tls_cert cert = {};
        _cleanup_buf_ struct buf pem = BUF_INIT(65536, 0), spki = BUF_INIT(4096, 0);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        int64_t now = time(NULL);

        if (brokerproto_session_request_parse(req->body, req->body_len, renew, &sr) < 0 ||
            tls_csr_parse_pem(sr.csr, strlen(sr.csr), &csr) < 0)
                return reply(resp, 400, "malformed session request");
        if (!renew)
                (void) snprintf(st.last_jwt, sizeof(st.last_jwt), "%s", sr.jwt);
        const uint8_t *key = csr.spki;
        size_t key_len = csr.spki_len;
        if (st.wrong_key) {
                (void) tls_key_public_der(st.pki->other_key, &spki);
                key = (const uint8_t *) spki.data;
                key_len = spki.len;
        }
        struct tls_cert_params p = {.common_name = "pod",
                                    .not_before = now - 60,
                                    .not_after = now + st.ttl,
                                    .usage = TLS_USAGE_CLIENT};
        if (tls_cert_issue(st.pki->session_ca_key, &st.pki->session_ca, key, key_len, &p, &cert) <
                    0 ||
            tls_cert_encode_pem(&cert, &pem) < 0)
                return reply(resp, 500, "cannot sign");
        (void) snprintf(st.token, sizeof(st.token), "tok-%d", st.sessions + st.renewals + 1);
        if (renew)
                st.renewals++;
        else
                st.sessions++;
        (void) json_doc_new(0, 1 << 20, &d);
        struct json_value *root = json_doc_root(d);
        (void) json_add_string(d, root, "certificate", pem.data);
        (void) json_add_string(d, root, "ca", st.pki->session_ca_pem.data);
        (void) json_add_string(d, root, "token", st.token);
        (void) json_add_int64(d, root, "expires_at", now + st.ttl + st.expires_skew);
        reply(resp, 200, NULL);
        return json_print(root, &resp->body);
}

static int serve_paths(const struct httpd_request *req, struct httpd_response *resp,
                       bool versions) {
        _cleanup_(brokerproto_paths_request_done) struct brokerproto_paths_request pr = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct json_value *obj, *entry, *data, *meta;
        char v[64];

        st.data_calls++;
        if (st.n_script > 0) {
                int status = st.script[0];
                memmove(st.script, st.script + 1, sizeof(st.script) - sizeof(st.script[0]));
                st.n_script--;
                if (status) {
                        (void) snprintf(v, sizeof(v), "scripted %d", status);
                        return reply(resp, status, v);
                }
        }
        if (!authorised(req))
                return reply(resp, 401, "no valid session");
        if (brokerproto_paths_request_parse(req->body, req->body_len, &pr) < 0)
                return reply(resp, 400, "malformed request");
        (void) json_doc_new(0, 1 << 20, &d);
        (void) json_add_object(d, json_doc_root(d), versions ? "versions" : "secrets", &obj);
        for (size_t i = 0; i < pr.n_paths; i++) {
                if (versions) {
                        (void) json_add_int64(d, obj, pr.paths[i], st.version);
                        continue;
                }
                (void) snprintf(v, sizeof(v), "pw-%s-%" PRId64, strrchr(pr.paths[i], '/') + 1,
                                st.version);
                (void) json_add_object(d, obj, pr.paths[i], &entry);
                (void) json_add_object(d, entry, "data", &data);
                (void) json_add_string(d, data, "password", v);
                (void) json_add_object(d, entry, "metadata", &meta);
                (void) json_add_int64(d, meta, "version", st.version);
        }
        reply(resp, 200, NULL);
        return json_print(json_doc_root(d), &resp->body);
}

static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp) {
        int r;
        (void) userdata;
        pthread_mutex_lock(&st.lock);
        if (strcmp(req->path, BROKERPROTO_PATH_SESSION) == 0)
                r = st.session_status ? reply(resp, st.session_status, "pod not annotated")
                                      : issue(req, resp, false);
        else if (strcmp(req->path, BROKERPROTO_PATH_RENEW) == 0)
                r = authorised(req) ? issue(req, resp, true) : reply(resp, 401, "no valid session");
        else if (strcmp(req->path, BROKERPROTO_PATH_SECRETS) == 0)
                r = serve_paths(req, resp, false);
        else if (strcmp(req->path, BROKERPROTO_PATH_VERSIONS) == 0)
                r = serve_paths(req, resp, true);
        else
                r = reply(resp, 404, "no such endpoint");
        pthread_mutex_unlock(&st.lock);
        return r;
}

static int make_ca(const char *cn, struct tls_key **key, struct tls_cert *ca, struct buf *pem) {
        int64_t now = time(NULL);
        struct tls_cert_params p = {
                .common_name = cn, .not_before = now - 3600, .not_after = now + 86400};
        int r = tls_key_generate(key);
        if (r >= 0)
                r = tls_cert_create_ca(*key, &p, ca);
        if (r >= 0)
                r = tls_cert_encode_pem(ca, pem);
        return r;
}

static int make_pki(struct pki *k) {
        _cleanup_tls_key_ struct tls_key *server = NULL;
        _cleanup_tls_cert_ struct tls_cert leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        const char *ip[] = {"127.0.0.1"};
        int64_t now = time(NULL);
        struct tls_cert_params p = {.common_name = "cloudtaser-broker",
                                    .san = {.ip = ip, .n_ip = 1},
                                    .not_before = now - 60,
                                    .not_after = now + 86400,
                                    .usage = TLS_USAGE_SERVER};
        buf_init(&k->ca_pem, 65536, 0);
        buf_init(&k->session_ca_pem, 65536, 0);
        buf_init(&k->server_pem, 65536, 0);
        buf_init(&k->server_key_pem, 65536, BUF_SECURE);
        int r = make_ca("test broker-tls CA", &k->ca_key, &k->ca, &k->ca_pem);
        if (r >= 0)
                r = make_ca("cloudtaser-broker session CA", &k->session_ca_key, &k->session_ca,
                            &k->session_ca_pem);
        if (r >= 0)
                r = tls_key_generate(&k->other_key);
        if (r >= 0)
                r = tls_key_generate(&server);
        if (r >= 0)
                r = tls_key_public_der(server, &spki);
        if (r >= 0)
                r = tls_cert_issue(k->ca_key, &k->ca, (const uint8_t *) spki.data, spki.len, &p,
                                   &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, &k->server_pem);
        if (r >= 0)
                r = tls_key_export_pem(server, &k->server_key_pem);
        return r;
}

static struct httpd *srv;
static pthread_t srv_thread;
static char addr[64];
static char jwt_path[] = "/tmp/ct-test-broker-jwt.XXXXXX";

static void *loop_main(void *p) {
        (void) httpd_run(p);
        return NULL;
}

static void write_jwt(const char *s) {
        int fd = open(jwt_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        (void) !write(fd, s, strlen(s));
        (void) close(fd);
}

static void reset(int64_t ttl) {
        pthread_mutex_lock(&st.lock);
        st.sessions = st.renewals = st.data_calls = 0;
        st.n_script = 0;
        st.session_status = 0;
        st.wrong_key = false;
        st.ttl = ttl;
        st.expires_skew = 0;
        st.version = 3;
        st.token[0] = 0;
        pthread_mutex_unlock(&st.lock);
}

static void script(const int *statuses, size_t n) {
        pthread_mutex_lock(&st.lock);
        memcpy(st.script, statuses, n * sizeof(*statuses));
        st.n_script = n;
        pthread_mutex_unlock(&st.lock);
}

static int64_t clock_offset;
static int64_t test_now(void *userdata) {
        (void) userdata;
        return (int64_t) time(NULL) + clock_offset;
}

static struct broker_client *new_client_at(struct pki *k, const char *at, unsigned attempts) {
        struct broker_client *c = NULL;
        struct broker_options o = {.addr = at,
                                   .ca_pem = k->ca_pem.data,
                                   .token_path = jwt_path,
                                   .deadline_ms = 20000,
                                   .max_attempts = attempts,
                                   .now_unix = test_now};
        return broker_client_new(&o, &c) < 0 ? NULL : c;
}

static struct broker_client *new_client(struct pki *k) {
        return new_client_at(k, addr, 2);
}

static void test_session_and_reads(struct pki *k) {
        const char *paths[] = {"secret/data/a/db", "secret/data/a/api"};
        struct vault_secret *secs[2] = {};
        struct broker_error e = {};
        int64_t versions[2] = {};

        reset(900);
        write_jwt("jwt-one\n");
        _cleanup_broker_client_ struct broker_client *c = new_client(k);
        ok(c && !broker_has_session(c) && broker_session_lifetime(c) == 0,
           "a client starts without a session (nothing contacted)");
        is_int(broker_read(c, paths, 2, secs, &e), 0, "a read opens the session, then reads");
        ok(st.sessions == 1 && strcmp(st.last_jwt, "jwt-one") == 0,
           "one session, the JWT from the file (final newline stripped)");
        ok(st.saw_cert, "the read came with the session's client certificate");
        ok(secs[0] && secs[1] && secs[0]->version == 3 &&
                   strcmp(vault_secret_get(secs[0], "password")->value, "pw-db-3") == 0 &&
                   strcmp(vault_secret_get(secs[1], "password")->value, "pw-api-3") == 0,
           "each path's secret, in the order asked, with its version");
        for (size_t i = 0; i < 2; i++)
                secs[i] = vault_secret_free(secs[i]);
        int64_t life = broker_session_lifetime(c);
        ok(broker_has_session(c) && life >= 895 && life <= 900, "session lifetime %lld s",
           (long long) life);

        is_int(broker_versions(c, paths, 2, versions, &e), 0, "versions");
        ok(versions[0] == 3 && versions[1] == 3 && st.sessions == 1,
           "versions under the same session");

        /* A 401 (the session expired, the keys rotated): one new session, the JWT re-read. */
        write_jwt("jwt-two");
        script((int[]){401}, 1);
        is_int(broker_read(c, paths, 1, secs, &e), 0, "a 401 opens a new session and asks again");
        ok(st.sessions == 2 && strcmp(st.last_jwt, "jwt-two") == 0,
           "the second session sent the token file's new content");
        secs[0] = vault_secret_free(secs[0]);

        /* Two 401s in a row: given up, after exactly one new session. */
        script((int[]){401, 401}, 2);
        int calls = st.data_calls;
        is_int(broker_read(c, paths, 1, secs, &e), -EKEYREJECTED, "401 again: -EKEYREJECTED");
        ok(st.sessions == 3 && st.data_calls == calls + 2, "one new session, no third request");
        ok(e.status == 401 && strcmp(e.path, BROKERPROTO_PATH_SECRETS) == 0, "the error says so");

        /* 403: never retried, no new session. */
        script((int[]){403}, 1);
        calls = st.data_calls;
        int sessions = st.sessions;
        is_int(broker_read(c, paths, 1, secs, &e), -EACCES, "403: -EACCES");
        ok(st.data_calls == calls + 1 && st.sessions == sessions, "403: one request, no session");
        is_str(e.message, "scripted 403", "the broker's reason kept");

        /* 404, 502 (common/http retries 5xx within its attempts: 2 here). */
        script((int[]){404}, 1);
        is_int(broker_read(c, paths, 1, secs, &e), -ENOENT, "404: -ENOENT");
        script((int[]){502, 502}, 2);
        calls = st.data_calls;
        is_int(broker_read(c, paths, 1, secs, &e), -EIO, "502 twice: -EIO");
        ok(st.data_calls == calls + 2 && broker_error_is_transient(e.error),
           "502: retried by the HTTP layer, then transient for the caller");
        script((int[]){502}, 1);
        is_int(broker_read(c, paths, 1, secs, &e), 0, "502 once: the retry succeeds");
        secs[0] = vault_secret_free(secs[0]);

        /* Renewal: a new certificate and token; a 401 on renewal opens a new session. */
        char before[32];
        (void) snprintf(before, sizeof(before), "%s", st.token);
        is_int(broker_session_renew(c, &e), 0, "renewal");
        ok(st.renewals == 1 && strcmp(before, st.token) != 0, "a new token from the renewal");
        is_int(broker_read(c, paths, 1, secs, &e), 0, "reads go on with the renewed session");
        secs[0] = vault_secret_free(secs[0]);
        pthread_mutex_lock(&st.lock);
        (void) snprintf(st.token, sizeof(st.token), "revoked");
        pthread_mutex_unlock(&st.lock);
        sessions = st.sessions;
        is_int(broker_session_renew(c, &e), 0, "a renewal refused with 401: a new session");
        ok(st.sessions == sessions + 1, "one new session");

        broker_session_close(c);
        ok(!broker_has_session(c), "closed");
}

static void test_session_failures(struct pki *k) {
        const char *paths[] = {"secret/data/a/db"};
        struct vault_secret *secs[1] = {};
        struct broker_error e = {};

        reset(900);
        write_jwt("");
        _cleanup_broker_client_ struct broker_client *c = new_client(k);
        is_int(broker_read(c, paths, 1, secs, &e), -ENODATA, "an empty token file: -ENODATA");
        is_str(e.path, "token file", "named as the token file");
        ok(st.sessions == 0, "nothing sent");

        write_jwt("jwt");
        pthread_mutex_lock(&st.lock);
        st.session_status = 403;
        pthread_mutex_unlock(&st.lock);
        is_int(broker_session_open(c, &e), -EACCES, "session refused with 403: -EACCES");
        ok(strcmp(e.path, BROKERPROTO_PATH_SESSION) == 0 &&
                   strcmp(e.message, "pod not annotated") == 0,
           "the session's refusal names the endpoint and the broker's reason");
        pthread_mutex_lock(&st.lock);
        st.session_status = 401;
        pthread_mutex_unlock(&st.lock);
        is_int(broker_read(c, paths, 1, secs, &e), -EKEYREJECTED,
               "the JWT refused (401 at the session): -EKEYREJECTED, no loop");

        reset(900);
        pthread_mutex_lock(&st.lock);
        st.wrong_key = true;
        pthread_mutex_unlock(&st.lock);
        is_int(broker_session_open(c, &e), -EBADMSG, "a certificate for another key: refused");
        ok(!broker_has_session(c), "no session kept");

        /* The broker's clock far ahead: the lifetime falls back to the certificate's span. */
        reset(600);
        pthread_mutex_lock(&st.lock);
        st.expires_skew = 100000;
        pthread_mutex_unlock(&st.lock);
        is_int(broker_session_open(c, &e), 0, "a session with a skewed expires_at");
        is_int(broker_session_lifetime(c), 660, "lifetime from the certificate (600 s + 60 back)");
        reset(600);
        clock_offset = 200;
        is_int(broker_session_open(c, &e), 0, "our clock 200 s ahead");
        ok(broker_session_lifetime(c) >= 395 && broker_session_lifetime(c) <= 400,
           "lifetime as the broker counts it (%lld)", (long long) broker_session_lifetime(c));
        clock_offset = 0;

        /* A broker whose certificate another CA signed: a TLS failure, not worth a retry. */
        struct broker_client *other = NULL;
        struct broker_options oo = {.addr = addr,
                                    .ca_pem = k->session_ca_pem.data,
                                    .token_path = jwt_path,
                                    .max_attempts = 2};
        ok(broker_client_new(&oo, &other) == 0 && broker_session_open(other, &e) == -EPROTO &&
                   !broker_error_is_transient(e.error),
           "a broker the CA does not verify: -EPROTO, not transient (exit 69 at once)");
        other = broker_client_free(other);

        struct broker_client *bad = NULL;
        is_int(broker_client_new(&(struct broker_options){.addr = addr, .token_path = jwt_path},
                                 &bad),
               -EINVAL, "no CA: -EINVAL");
        is_int(broker_client_new(&(struct broker_options){.addr = "http://x",
                                                          .ca_pem = k->ca_pem.data,
                                                          .token_path = jwt_path},
                                 &bad),
               -EINVAL, "plain http: -EINVAL");
}

/* ---- wrapper/secrets in broker mode ------------------------------------------------------ */

struct env {
        const char *const *kv;
};
static const char *lookup(const char *name, void *userdata) {
        const struct env *e = userdata;
        for (size_t i = 0; e->kv[i]; i += 2)
                if (strcmp(e->kv[i], name) == 0)
                        return e->kv[i + 1];
        return NULL;
}

static void test_secrets(struct pki *k) {
        const char *const kv[] = {"VAULT_AUTH_METHOD",
                                  "broker",
                                  "CLOUDTASER_BROKER_ADDRESS",
                                  addr,
                                  "CLOUDTASER_BROKER_CA_PEM",
                                  k->ca_pem.data,
                                  "CLOUDTASER_BROKER_TOKEN_PATH",
                                  jwt_path,
                                  "CLOUDTASER_SECRET_PATHS",
                                  "secret/data/a/db,secret/data/a/api",
                                  "CLOUDTASER_ENV_MAP",
                                  "password=DB_PASSWORD;password=API_KEY",
                                  NULL};
        char *argv[] = {"w", "--", "/bin/true", NULL};
        struct wrapper_config cfg;
        struct error_report cerr = {};
        struct env env = {kv};
        struct error_report fe = {};
        struct secret_set set = {};

        is_int(config_parse(lookup, &env, 3, argv, &cfg, &cerr), 0, "broker mode configures: %s",
               cerr.message);
        ok(cfg.env.auth == AUTH_BROKER && !cfg.env.vault_addr &&
                   strcmp(cfg.env.broker_addr, addr) == 0 &&
                   strcmp(cfg.env.broker_token_path, jwt_path) == 0,
           "broker address, CA and token path; no vault address");
        reset(900);
        write_jwt("jwt");
        _cleanup_broker_client_ struct broker_client *c = new_client(k);
        is_int(secrets_fetch_broker(c, &cfg, &set, &fe), 0, "fetch through the broker: %s",
               fe.message);
        ok(set.n == 2 && strcmp(secret_set_get(&set, "DB_PASSWORD"), "DB_PASSWORD=pw-db-3") == 0 &&
                   strcmp(secret_set_get(&set, "API_KEY"), "API_KEY=pw-api-3") == 0 &&
                   set.versions[0] == 3 && set.path_records[1] == 1,
           "mapped by the same code as a vault read (env map per path)");
        is_int(secrets_changed_broker(c, &cfg, &set, &fe), 0, "same versions: unchanged");
        pthread_mutex_lock(&st.lock);
        st.version = 4;
        pthread_mutex_unlock(&st.lock);
        is_int(secrets_changed_broker(c, &cfg, &set, &fe), 1, "a new version: changed");

        script((int[]){403}, 1);
        struct secret_set s2 = {};
        ok(secrets_fetch_broker(c, &cfg, &s2, &fe) == -EACCES && fe.status == 77 &&
                   !broker_error_is_transient(fe.cause) &&
                   strstr(fe.message, "secret/data/a/db,secret/data/a/api") &&
                   strstr(fe.message, "scripted 403") && strstr(fe.message, "status 403"),
           "403: exit 77, not transient, the paths and the broker's reason named (%s)", fe.message);
        secret_set_done(&s2);
        script((int[]){502, 502}, 2);
        ok(secrets_fetch_broker(c, &cfg, &s2, &fe) == -EIO && fe.status == 69 &&
                   broker_error_is_transient(fe.cause),
           "502: exit 69 and transient (retried until the start-up timeout)");
        secret_set_done(&s2);
        script((int[]){404}, 1);
        ok(secrets_fetch_broker(c, &cfg, &s2, &fe) == -ENOENT && fe.status == 65, "404: exit 65");
        secret_set_done(&s2);
        pthread_mutex_lock(&st.lock);
        st.session_status = 401;
        pthread_mutex_unlock(&st.lock);
        broker_session_close(c);
        ok(secrets_fetch_broker(c, &cfg, &s2, &fe) == -EKEYREJECTED && fe.status == 77 &&
                   !broker_error_is_transient(fe.cause) &&
                   strstr(fe.message, "refused the session") && !strstr(fe.message, "jwt"),
           "the session refused: exit 77, no JWT in the message (%s)", fe.message);
        secret_set_done(&s2);

        /* A broker that does not answer (a bound port nobody listens on: connection refused)
         * refused nothing: the message says the session could not be opened, with no status. */
        int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t slen = sizeof(sin);
        char dead[64];
        ok(sfd >= 0 && bind(sfd, (struct sockaddr *) &sin, sizeof(sin)) == 0 &&
                   getsockname(sfd, (struct sockaddr *) &sin, &slen) == 0,
           "a bound port without a listener");
        (void) snprintf(dead, sizeof(dead), "https://127.0.0.1:%d", ntohs(sin.sin_port));
        struct broker_client *dc = new_client_at(k, dead, 1);
        ok(dc != NULL, "a client for the silent port");
        int dr = dc ? secrets_fetch_broker(dc, &cfg, &s2, &fe) : 0;
        ok(dr < 0 && fe.status == 69 && broker_error_is_transient(fe.cause) &&
                   strstr(fe.message, "cannot open a session with the broker") &&
                   !strstr(fe.message, "refused the session") && !strstr(fe.message, "status 0"),
           "no answer: exit 69, transient, 'cannot open a session', no 'status 0' (%s)",
           fe.message);
        secret_set_done(&s2);
        broker_client_free(dc);
        if (sfd >= 0)
                (void) close(sfd);
        secret_set_done(&set);
        config_done(&cfg);
}

int main(void) {
        static struct pki k;
        _cleanup_tls_server_ struct tls_server *tls = NULL;

        test_decode_error();
        test_decode_secret();

        pthread_mutex_init(&st.lock, NULL);
        st.pki = &k;
        int fd = mkstemp(jwt_path);
        if (fd >= 0)
                (void) close(fd);
        if (!ok(make_pki(&k) == 0, "stand-in PKI"))
                return tap_done();
        struct tls_server_options to = {.cert_pem = k.server_pem.data,
                                        .cert_len = k.server_pem.len,
                                        .key_pem = k.server_key_pem.data,
                                        .key_len = k.server_key_pem.len,
                                        .client_auth = TLS_CLIENT_AUTH_OPTIONAL,
                                        .client_ca_pem = k.session_ca_pem.data,
                                        .client_ca_len = k.session_ca_pem.len};
        struct httpd_options ho = {.address = "127.0.0.1:0", .handler = handler};
        if (!ok(tls_server_new(&to, &tls) == 0, "stand-in TLS server"))
                return tap_done();
        ho.tls = tls;
        if (!ok(httpd_new(&ho, &srv) == 0 && pthread_create(&srv_thread, NULL, loop_main, srv) == 0,
                "stand-in broker listening"))
                return tap_done();
        (void) snprintf(addr, sizeof(addr), "https://127.0.0.1:%d", httpd_port(srv));

        test_session_and_reads(&k);
        test_session_failures(&k);
        test_secrets(&k);

        httpd_stop(srv);
        (void) pthread_join(srv_thread, NULL);
        srv = httpd_free(srv);
        (void) unlink(jwt_path);
        tls_key_free(k.ca_key);
        tls_key_free(k.session_ca_key);
        tls_key_free(k.other_key);
        tls_cert_done(&k.ca);
        tls_cert_done(&k.session_ca);
        buf_done(&k.ca_pem);
        buf_done(&k.session_ca_pem);
        buf_done(&k.server_pem);
        buf_done(&k.server_key_pem);
        return tap_done();
}
