/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/credstore: names and options, then both backends behind the one
 * header against the stand-ins (the vault one through a real operator/vaultsession; the kube
 * one through common/kube), including the faults the real servers cannot be made to produce on
 * demand (a Conflict between the read and the write, an AlreadyExists race). The same contracts
 * on the real OpenBao and API server: tests/e2e/test-real-credstore.sh. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/credstore.h"
#include "tests/lib/standin.h"
#include "tests/lib/testfile.h"
#include "tests/tap.h"

#define CANARY "canary-7f3a9c1e55d0"

static bool err_clean(const struct credstore_error *e) {
        return !strstr(e->message, CANARY) && !strstr(e->path, CANARY) &&
               !strstr(e->reason, CANARY);
}

#define F(n, v) \
        { .name = (n), .value = (v), .value_len = sizeof(v) - 1 }

static const struct credstore_field webhook[] = {
        F("tls.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        F("tls.key", "-----BEGIN PRIVATE KEY-----\n" CANARY "\n-----END PRIVATE KEY-----\n"),
        F("ca.crt", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"),
        F("ca.key", "-----BEGIN PRIVATE KEY-----\nca-" CANARY "\n-----END PRIVATE KEY-----\n"),
};

static bool same_fields(const struct credstore_record *r, const struct credstore_field *f,
                        size_t n) {
        if (!r || r->n_fields != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                const struct credstore_field *g = credstore_record_get(r, f[i].name);
                if (!g || g->value_len != f[i].value_len ||
                    memcmp(g->value, f[i].value, f[i].value_len) != 0 ||
                    g->value[g->value_len] != '\0')
                        return false;
        }
        for (size_t i = 1; i < r->n_fields; i++)
                if (strcmp(r->fields[i - 1].name, r->fields[i].name) >= 0)
                        return false;
        return true;
}

/* ---- without a server ---- */

static void test_names(void) {
        enum credstore_backend b = CREDSTORE_KUBERNETES;
        ok(credstore_backend_from_string("vault", &b) == 0 && b == CREDSTORE_VAULT,
           "\"vault\" is the vault backend");
        ok(credstore_backend_from_string("kubernetes", &b) == 0 && b == CREDSTORE_KUBERNETES,
           "\"kubernetes\" is the fallback");
        is_int(credstore_backend_from_string("etcd", &b), -EINVAL, "anything else is -EINVAL");
        is_int(credstore_backend_from_string(NULL, &b), -EINVAL, "NULL is -EINVAL");
        is_str(credstore_backend_to_string(CREDSTORE_KUBERNETES), "kubernetes", "to string");
        ok(strstr(credstore_weakened_warning(), "security model is weakened") &&
                   strstr(credstore_weakened_warning(), CREDSTORE_DEFAULT_SECRET),
           "the start-up warning says what and where");

        struct credstore *s = NULL;
        struct credstore_options o = {.backend = CREDSTORE_VAULT};
        is_int(credstore_open(&o, &s), -EINVAL, "vault backend without a session: -EINVAL");
        o = (struct credstore_options){.backend = CREDSTORE_KUBERNETES, .namespace_ = "x"};
        is_int(credstore_open(&o, &s), -EINVAL, "kubernetes backend without a client: -EINVAL");
        o = (struct credstore_options){.backend = (enum credstore_backend) 7};
        is_int(credstore_open(&o, &s), -EINVAL, "an unknown backend: -EINVAL");

        struct credstore_version a = {.kv = 3}, c = {.kv = 3}, d = {.kv = 4};
        ok(credstore_version_equal(&a, &c) && !credstore_version_equal(&a, &d), "versions compare");
}

/* ---- vault ---- */

static const char vault_config[] =
        "{\"mounts\":[{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}},"
        "{\"path\":\"kv\",\"type\":\"kv\",\"options\":{\"version\":\"1\"}}],"
        "\"auth\":[{\"path\":\"kubernetes\",\"type\":\"kubernetes\",\"roles\":{"
        "\"cloudtaser-operator\":{\"bound_service_account_names\":[\"cloudtaser-operator\"],"
        "\"bound_service_account_namespaces\":[\"cloudtaser-system\"],"
        "\"token_policies\":[\"cloudtaser-operator\"],\"token_ttl\":600}}}],"
        "\"policies\":{\"cloudtaser-operator\":\"path \\\"secret/data/cloudtaser/system/*\\\" { "
        "capabilities = [\\\"create\\\", \\\"read\\\", \\\"update\\\"] }\\npath "
        "\\\"secret/metadata/cloudtaser/system/*\\\" { capabilities = [\\\"read\\\"] }\\npath "
        "\\\"kv/cloudtaser/*\\\" { capabilities = [\\\"read\\\"] }\\n\"},"
        "\"secrets\":[{\"path\":\"secret/cloudtaser/system/enrollment\",\"versions\":[{\"a\":"
        "\"b\"}],\"deleted\":[1]},"
        "{\"path\":\"secret/cloudtaser/system/typed\",\"versions\":[{\"n\":42}]}]}";

/* The session's clock: real time plus what the test adds (its sleeps stay the default). */
static _Atomic uint64_t clock_offset_ms;

static uint64_t offset_now(void *u) {
        struct timespec ts;
        (void) u;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u + clock_offset_ms;
}

struct venv {
        struct standin *s;
        char jwt_path[512];
        struct vault_options vo;
        struct vaultsession *session;
};

static struct credstore *vault_store(struct venv *v, const char *mount, const char *prefix) {
        struct credstore_options o = {.backend = CREDSTORE_VAULT,
                                      .session = v->session,
                                      .mount = mount,
                                      .prefix = prefix};
        struct credstore *s = NULL;
        return credstore_open(&o, &s) < 0 ? NULL : s;
}

struct racer {
        struct credstore *store;
        const char *value;
        int r;
        struct credstore_error e;
};

static void *race(void *p) {
        struct racer *x = p;
        struct credstore_field f = {.name = "token", .value = x->value, .value_len = 12};
        x->r = credstore_create(x->store, "broker-token", &f, 1, NULL, &x->e);
        return NULL;
}

static void test_vault(struct venv *v) {
        _cleanup_credstore_ struct credstore *s = vault_store(v, NULL, NULL);
        _cleanup_credstore_record_ struct credstore_record *rec = NULL;
        struct credstore_error e = {};
        struct credstore_version v1 = {}, v2 = {};
        char loc[256];
        int r;

        ok(s != NULL && credstore_backend(s) == CREDSTORE_VAULT, "a vault store (defaults)");
        if (!s)
                return;
        is_str(credstore_location(s, "webhook-tls", loc, sizeof(loc)),
               "secret/data/cloudtaser/system/webhook-tls", "the record's location");

        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == -ENOENT && e.error == -ENOENT && e.status == 404 &&
                   strcmp(e.path, "secret/data/cloudtaser/system/webhook-tls") == 0 && !rec,
           "an absent record is -ENOENT, with status and path (%d %ld %s)", r, e.status, e.path);

        r = credstore_create(s, "webhook-tls", webhook, ELEMENTSOF(webhook), &v1, &e);
        ok(r == 0 && v1.kv == 1 && e.error == 0, "create (cas=0): version 1 (%d %s)", r, e.message);
        r = credstore_create(s, "webhook-tls", webhook, 2, &v2, &e);
        ok(r == -EEXIST && strstr(e.message, "exists already") && e.status == 400 && err_clean(&e),
           "create again: -EEXIST (%d %s)", r, e.message);
        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == 0 && same_fields(rec, webhook, ELEMENTSOF(webhook)) && rec->version.kv == 1 &&
                   secmem_size(rec->storage_) > 0,
           "read: the four fields, sorted, in secmem, version 1");
        ok(rec && credstore_record_get(rec, "nope") == NULL, "a missing field is NULL");

        struct credstore_field upd[] = {F("tls.crt", "new-cert"), F("tls.key", "new-" CANARY)};
        r = rec ? credstore_update(s, "webhook-tls", upd, 2, &rec->version, &v2, &e) : -1;
        ok(r == 0 && v2.kv == 2, "update at version 1: version 2");
        r = credstore_update(s, "webhook-tls", upd, 2, &v1, NULL, &e);
        ok(r == -ESTALE && e.status == 400 && strstr(e.message, "check-and-set") && err_clean(&e),
           "update at the stale version 1: -ESTALE (%s)", e.message);
        rec = credstore_record_free(rec);
        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == 0 && same_fields(rec, upd, 2) && credstore_version_equal(&rec->version, &v2),
           "read: the update, version 2");
        struct credstore_version nine = {.kv = 9};
        is_int(credstore_update(s, "broker-auth", upd, 1, &nine, NULL, &e), -ESTALE,
               "update of an absent record: -ESTALE");

        /* A record whose latest version was deleted reads as absent and may be created. */
        rec = credstore_record_free(rec);
        is_int(credstore_read(s, "enrollment", &rec, &e), -ENOENT, "a deleted record: -ENOENT");
        struct credstore_field en[] = {F("token", "x")};
        r = credstore_create(s, "enrollment", en, 1, &v1, &e);
        ok(r == 0 && v1.kv == 2, "and create writes over it (version %lld, %s)", (long long) v1.kv,
           e.message);
        is_int(credstore_read(s, "typed", &rec, &e), -EBADMSG,
               "a record with a non-string field: -EBADMSG");

        /* Two sessions (two clients) create the same record at once: one wins. */
        struct vaultsession *s2 = NULL;
        struct vaultsession_options so = {.vault = &v->vo, .jwt_path = v->jwt_path};
        struct credstore *st2 = NULL;
        r = vaultsession_new(&so, &s2);
        if (r >= 0)
                r = vaultsession_start(s2);
        if (r >= 0)
                r = vaultsession_wait_ready(s2, 60000);
        struct credstore_options o2 = {.backend = CREDSTORE_VAULT, .session = s2};
        if (r >= 0)
                r = credstore_open(&o2, &st2);
        ok(r >= 0, "a second session and store");
        if (r >= 0) {
                struct racer a = {.store = s, .value = "AAAAAAAAAAAA"};
                struct racer b = {.store = st2, .value = "BBBBBBBBBBBB"};
                pthread_t ta, tb;
                (void) pthread_create(&ta, NULL, race, &a);
                (void) pthread_create(&tb, NULL, race, &b);
                (void) pthread_join(ta, NULL);
                (void) pthread_join(tb, NULL);
                ok((a.r == 0 && b.r == -EEXIST) || (a.r == -EEXIST && b.r == 0),
                   "two concurrent creates: exactly one wins (%d, %d)", a.r, b.r);
                rec = credstore_record_free(rec);
                r = credstore_read(st2, "broker-token", &rec, &e);
                const struct credstore_field *t = rec ? credstore_record_get(rec, "token") : NULL;
                ok(r == 0 && t && strcmp(t->value, a.r == 0 ? a.value : b.value) == 0,
                   "the loser reads the winner's value");
        }
        credstore_free(st2);
        vaultsession_free(s2);

        /* Bad names and values never reach vault. */
        static const char *const bad_records[] = {"",
                                                  "a.b",
                                                  "../x",
                                                  "a/b",
                                                  "x y",
                                                  ("0123456789012345678901234567890123456789012345"
                                                   "678901234567890123")};
        for (size_t i = 0; i < ELEMENTSOF(bad_records); i++)
                is_int(credstore_create(s, bad_records[i], en, 1, NULL, &e), -EINVAL,
                       "record name '%s' is -EINVAL", bad_records[i]);
        struct credstore_field badf[] = {F("a/b", "x")};
        is_int(credstore_create(s, "x", badf, 1, NULL, &e), -EINVAL, "field 'a/b': -EINVAL");
        struct credstore_field nul[] = {{.name = "k", .value = "a\0" CANARY, .value_len = 21}};
        r = credstore_create(s, "x", nul, 1, NULL, &e);
        ok(r == -EINVAL && err_clean(&e), "a value with a NUL: -EINVAL, not in the error (%s)",
           e.message);
        struct credstore_field dup[] = {F("k", "1"), F("k", "2")};
        is_int(credstore_create(s, "x", dup, 2, NULL, &e), -EINVAL, "a field twice: -EINVAL");
        is_int(credstore_create(s, "x", dup, 0, NULL, &e), -EINVAL, "no field: -EINVAL");

        /* A KV v1 mount is refused; a prefix outside the policy is -EACCES. */
        _cleanup_credstore_ struct credstore *v1s = vault_store(v, "kv", "cloudtaser/system");
        r = v1s ? credstore_read(v1s, "webhook-tls", &rec, &e) : -1;
        ok(r == -EMEDIUMTYPE && strstr(e.message, "not KV version 2"),
           "a KV v1 mount: -EMEDIUMTYPE (%s)", e.message);
        /* A 403 asks the session to log in again (the token may have been revoked). */
        _cleanup_credstore_ struct credstore *other = vault_store(v, NULL, "elsewhere/system");
        struct vaultsession_status st;
        vaultsession_status(v->session, &st);
        uint64_t logins = st.logins;
        clock_offset_ms += VAULTSESSION_RELOGIN_MIN_INTERVAL_MS;
        r = other ? credstore_read(other, "webhook-tls", &rec, &e) : -1;
        ok(r == -EACCES && e.status == 403 && strstr(e.path, "secret/data/elsewhere/system"),
           "outside the policy: -EACCES with status and path (%d %s)", r, e.path);
        for (int i = 0; i < 3000 && st.logins == logins; i++) {
                (void) usleep(10000);
                vaultsession_status(v->session, &st);
        }
        ok(st.logins == logins + 1 && st.ready, "and the session logged in again (%llu logins)",
           (unsigned long long) st.logins);
        r = other ? credstore_read(other, "webhook-tls", &rec, &e) : -1;
        ok(r == -EACCES && !vaultsession_relogin(v->session),
           "a second 403 right after asks no other login (the session's rate limit is taken)");
}

static void test_not_ready(struct venv *v) {
        struct vaultsession *s = NULL;
        struct vaultsession_options so = {.vault = &v->vo, .jwt_path = "/nonexistent"};
        struct credstore_record *rec = NULL;
        struct credstore_error e = {};
        int r = vaultsession_new(&so, &s);
        struct credstore_options o = {.backend = CREDSTORE_VAULT, .session = s};
        struct credstore *st = NULL;
        if (r >= 0)
                r = credstore_open(&o, &st);
        r = r < 0 ? r : credstore_read(st, "webhook-tls", &rec, &e);
        ok(r == -EAGAIN && strstr(e.message, "the vault session is not ready"),
           "a session not logged in: -EAGAIN (%s)", e.message);
        credstore_free(st);
        vaultsession_free(s);
}

/* ---- kubernetes ---- */

struct kenv {
        struct standin *s;
        struct kube_client *k;
};

static int kcontrol(struct kenv *v, const char *method, const char *path, const char *body) {
        int status = 0;
        int r = standin_control(v->s, method, path, body, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}

static const char *const secret_path =
        "/api/v1/namespaces/cloudtaser-system/secrets/cloudtaser-operator-certs";

static void test_kube(struct kenv *v) {
        struct credstore_options o = {
                .backend = CREDSTORE_KUBERNETES, .kube = v->k, .namespace_ = "cloudtaser-system"};
        _cleanup_credstore_ struct credstore *s = NULL;
        _cleanup_credstore_record_ struct credstore_record *rec = NULL;
        struct credstore_error e = {};
        struct credstore_version c1 = {}, c2 = {}, c3 = {};
        struct kube_error ke = {};
        char loc[256];
        int r;

        is_int(credstore_open(&o, &s), 0, "a kubernetes store");
        if (!s)
                return;
        is_str(credstore_location(s, "webhook-tls", loc, sizeof(loc)),
               "cloudtaser-system/cloudtaser-operator-certs (keys webhook-tls.*)", "location");
        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == -ENOENT && strcmp(e.path, secret_path) == 0,
           "no Secret: the record is -ENOENT (%s)", e.message);
        r = credstore_create(s, "webhook-tls", webhook, ELEMENTSOF(webhook), &c1, &e);
        ok(r == 0 && c1.rv[0] && c1.kv == 0, "create: the Secret is created (rv %s, %s)", c1.rv,
           e.message);
        r = credstore_create(s, "webhook-tls", webhook, 1, NULL, &e);
        ok(r == -EEXIST && strstr(e.message, "exists already") && err_clean(&e),
           "create again: -EEXIST (%s)", e.message);

        struct credstore_field bt[] = {F("token", "dG9rZW4tdG9rZW4tdG9rZW4=")};
        r = credstore_create(s, "broker-token", bt, 1, &c2, &e);
        ok(r == 0 && !credstore_version_equal(&c1, &c2),
           "create a second record in the same Secret (rv %s)", c2.rv);
        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == 0 && same_fields(rec, webhook, ELEMENTSOF(webhook)) &&
                   credstore_version_equal(&rec->version, &c2) && secmem_size(rec->storage_) > 0,
           "the first record is intact; its version is the Secret's (%d %s)", r, e.message);

        /* The Secret as the API server has it. */
        _cleanup_json_doc_ struct json_doc *d = NULL;
        r = kube_get(v->k, secret_path, &d, &ke);
        const struct json_value *data = r >= 0 ? json_get(json_doc_root(d), "data") : NULL;
        const char *enc = NULL, *lab = NULL, *type = NULL;
        _cleanup_buf_ struct buf dec = BUF_INIT(4096, BUF_SECURE);
        if (json_get_string(data, "webhook-tls.tls.key", &enc) >= 0)
                (void) base64_decode(&dec, enc, strlen(enc), false);
        (void) json_get_string(json_get(json_get(json_doc_root(d), "metadata"), "labels"),
                               "app.kubernetes.io/managed-by", &lab);
        (void) json_get_string(json_doc_root(d), "type", &type);
        ok(json_count(data) == 5 && dec.len == webhook[1].value_len &&
                   memcmp(dec.data, webhook[1].value, dec.len) == 0 &&
                   json_get(data, "broker-token.token") && lab &&
                   strcmp(lab, "cloudtaser-operator") == 0 && type && strcmp(type, "Opaque") == 0,
           "one Opaque Secret, keys <record>.<field>, base64 values, labelled managed-by");
        d = json_doc_free(d);
        r = kube_get(v->k, "/api/v1/namespaces/cloudtaser-system/secrets", &d, &ke);
        ok(r == 0 && json_count(json_get(json_doc_root(d), "items")) == 1,
           "and it is the only Secret in the namespace");

        /* Optimistic concurrency on the Secret's resourceVersion. */
        struct credstore_field upd[] = {F("tls.crt", "c2"), F("tls.key", "k2-" CANARY)};
        r = credstore_update(s, "webhook-tls", upd, 2, &c1, NULL, &e);
        ok(r == -ESTALE && strstr(e.message, "resourceVersion") && err_clean(&e),
           "update at an older resourceVersion: -ESTALE (%s)", e.message);
        r = credstore_update(s, "webhook-tls", upd, 2, &c2, &c3, &e);
        ok(r == 0 && !credstore_version_equal(&c2, &c3), "update at the current one (rv %s)",
           c3.rv);
        rec = credstore_record_free(rec);
        r = credstore_read(s, "webhook-tls", &rec, &e);
        ok(r == 0 && same_fields(rec, upd, 2), "the update replaced the record's fields");
        rec = credstore_record_free(rec);
        r = credstore_read(s, "broker-token", &rec, &e);
        ok(r == 0 && same_fields(rec, bt, 1), "and left the other record alone");
        is_int(credstore_update(s, "broker-tls", upd, 1, &c3, NULL, &e), -ESTALE,
               "update of an absent record: -ESTALE");

        /* Faults: a Conflict between our read and our write. */
        char fault[512];
        (void) snprintf(fault, sizeof(fault),
                        "{\"match\":\"%s\",\"method\":\"PUT\",\"status\":409,\"count\":1}",
                        secret_path);
        is_int(kcontrol(v, "POST", "/_standin/fault", fault), 0, "stand-in: one 409 Conflict");
        struct credstore_field ba[] = {F("key", "YWJj")};
        r = credstore_create(s, "broker-auth", ba, 1, NULL, &e);
        ok(r == 0, "create meets a Conflict (another record written): read again, written (%s)",
           e.message);
        rec = credstore_record_free(rec);
        r = credstore_read(s, "broker-auth", &rec, &e);
        struct credstore_version cur = rec ? rec->version : c3;
        is_int(kcontrol(v, "POST", "/_standin/fault", fault), 0, "stand-in: one 409 Conflict");
        r = credstore_update(s, "broker-auth", ba, 1, &cur, NULL, &e);
        ok(r == -ESTALE && e.status == 409 && strcmp(e.reason, "Conflict") == 0,
           "update meets a Conflict: -ESTALE, 409 Conflict (%s)", e.message);
        (void) kcontrol(v, "DELETE", "/_standin/fault", NULL);

        /* The Secret deleted after a read: an update is -ESTALE. */
        (void) kcontrol(v, "DELETE",
                        "/_standin/objects?resource=secrets&namespace=cloudtaser-system&name="
                        "cloudtaser-operator-certs",
                        NULL);
        is_int(credstore_update(s, "broker-auth", ba, 1, &cur, NULL, &e), -ESTALE,
               "update after the Secret was deleted: -ESTALE");
        /* A create that races with another replica's creation of the Secret. */
        static const char already[] =
                "{\"match\":\"/api/v1/namespaces/cloudtaser-system/secrets\",\"method\":\"POST\","
                "\"status\":409,\"count\":%d,\"body\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                "\"status\":\"Failure\",\"message\":\"secrets \\\"cloudtaser-operator-certs\\\" "
                "already exists\",\"reason\":\"AlreadyExists\",\"code\":409}}";
        (void) snprintf(fault, sizeof(fault), already, 1);
        is_int(kcontrol(v, "POST", "/_standin/fault", fault), 0,
               "stand-in: one 409 AlreadyExists on POST");
        r = credstore_create(s, "broker-auth", ba, 1, NULL, &e);
        ok(r == 0, "a create that meets AlreadyExists looks again and writes (%s)", e.message);
        (void) kcontrol(v, "DELETE",
                        "/_standin/objects?resource=secrets&namespace=cloudtaser-system&name="
                        "cloudtaser-operator-certs",
                        NULL);
        (void) snprintf(fault, sizeof(fault), already, -1);
        is_int(kcontrol(v, "POST", "/_standin/fault", fault), 0,
               "stand-in: POST is always AlreadyExists");
        r = credstore_create(s, "broker-auth", ba, 1, NULL, &e);
        ok(r == -EAGAIN && strstr(e.message, "kept changing"),
           "a create that never settles is bounded: -EAGAIN (%s)", e.message);
        (void) kcontrol(v, "DELETE", "/_standin/fault", NULL);

        /* A Secret written by someone else, with a value that is not base64. */
        (void) kcontrol(v, "POST", "/_standin/objects",
                        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                        "\"cloudtaser-operator-certs\",\"namespace\":\"cloudtaser-system\"},"
                        "\"data\":{\"broker-auth.key\":\"***\"}}");
        r = credstore_read(s, "broker-auth", &rec, &e);
        ok(r == -EBADMSG && strstr(e.message, "base64"), "a value that is not base64: -EBADMSG");
}

static void test_event(struct kenv *v) {
        struct credstore_error e = {};
        struct credstore_object_ref pod = {.api_version = "v1",
                                           .kind = "Pod",
                                           .name = "cloudtaser-operator-abc12",
                                           .uid = "6b1f6c52-1111-4222-8333-944455556666"};
        int r = credstore_post_weakened_event(v->k, "cloudtaser-system", &pod, NULL, &e);
        is_int(r, 0, "the Event is created (%s)", e.message);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct kube_error ke;
        r = kube_get(v->k, "/api/v1/namespaces/cloudtaser-system/events", &d, &ke);
        const struct json_value *it =
                r >= 0 ? json_array_at(json_get(json_doc_root(d), "items"), 0) : NULL;
        const char *type = NULL, *reason = NULL, *msg = NULL, *kind = NULL, *name = NULL;
        (void) json_get_string(it, "type", &type);
        (void) json_get_string(it, "reason", &reason);
        (void) json_get_string(it, "message", &msg);
        (void) json_get_string(json_get(it, "involvedObject"), "kind", &kind);
        (void) json_get_string(json_get(it, "involvedObject"), "name", &name);
        ok(json_count(json_get(json_doc_root(d), "items")) == 1 && type &&
                   strcmp(type, "Warning") == 0 && reason &&
                   strcmp(reason, "WeakenedSecurityModel") == 0 && msg &&
                   strstr(msg, "security model is weakened") && kind && strcmp(kind, "Pod") == 0 &&
                   name && strcmp(name, pod.name) == 0,
           "one Warning WeakenedSecurityModel about the pod");
        struct credstore_object_ref bad = {.api_version = "v1", .kind = "Pod", .name = "A_B"};
        is_int(credstore_post_weakened_event(v->k, "cloudtaser-system", &bad, NULL, &e), -EINVAL,
               "an invalid object name: -EINVAL");
}

int main(void) {
        test_names();

        struct venv v = {};
        char *jwt = NULL;
        int r = standin_start(vault_config, &v.s);
        if (r < 0) {
                ok(false, "stand-in vault starts (%d)", r);
                return tap_done();
        }
        (void) snprintf(v.jwt_path, sizeof(v.jwt_path), "%s/sa-token", v.s->dir);
        r = standin_make_jwt(v.s, "cloudtaser-system", "cloudtaser-operator", NULL, 3600, &jwt);
        if (r >= 0)
                r = test_write_text(v.jwt_path, jwt, 0600);
        free(jwt);
        v.vo = (struct vault_options){.addr = v.s->addr, .ca_file = v.s->ca_path};
        struct vaultsession_options so = {.vault = &v.vo,
                                          .jwt_path = v.jwt_path,
                                          .probe_path = "secret/cloudtaser/system",
                                          .clock = {.now_ms = offset_now}};
        if (r >= 0)
                r = vaultsession_new(&so, &v.session);
        if (r >= 0)
                r = vaultsession_start(v.session);
        if (r >= 0)
                r = vaultsession_wait_ready(v.session, 60000);
        ok(r >= 0, "the operator's vault session is ready (%d)", r);
        if (r >= 0) {
                test_vault(&v);
                test_not_ready(&v);
        }
        vaultsession_free(v.session);
        standin_stop(v.s);

        struct kenv k = {};
        r = standin_start_kube("{\"namespaces\":[\"default\",\"cloudtaser-system\"],\"users\":{"
                               "\"admin\":{\"token\":\"admin-token-1234\",\"groups\":[\"system:"
                               "masters\"]}}}",
                               &k.s);
        if (r < 0) {
                ok(false, "stand-in kube-apiserver starts (%d)", r);
                return tap_done();
        }
        char tok[512];
        struct kube_config *c = NULL;
        struct kube_error ke = {};
        (void) snprintf(tok, sizeof(tok), "%s/admin-token", k.s->dir);
        r = test_write_text(tok, "admin-token-1234", 0600);
        if (r >= 0)
                r = kube_config_new(k.s->addr, k.s->ca_path, tok, &c, &ke);
        if (r >= 0)
                r = kube_client_new(&c, NULL, &k.k);
        kube_config_free(c);
        ok(r >= 0, "a kube client (%s)", ke.message);
        if (r >= 0) {
                test_kube(&k);
                test_event(&k);
        }
        kube_client_free(k.k);
        standin_stop(k.s);
        return tap_done();
}
