/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/credentials: first install, two replicas racing, a standby waiting for
 * the leader, leaf rotation served without a restart, standbys following, the two-step CA
 * rotation, conflicts, broken records, the annotation key and broker CA kept for the admission
 * (and following a new broker-auth), and that no log line carries key material. The store is
 * in memory with check-and-set; the clock is injected. The same flows run on the real OpenBao
 * and API server in tests/e2e/test-real-operator-credentials.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/macro.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "operator/credentials.h"
#include "operator/material.h"
#include "operator/memstore.h"
#include "tests/tap.h"

#define T0 1790000000LL
#define DAY 86400LL

/* ---- the in-memory store (operator/memstore), with faults ------------------------------------ */

struct mem_store {
        struct memstore *m;
        int fail; /* every call fails with this when set */
        unsigned creates, updates;
        /* Called once before the next create (a replica racing us). */
        void (*before_create)(void *);
        void *before_create_ud;
        bool stale_next_update; /* the next update finds another version */
};

static struct credentials_record *mem_find(struct mem_store *m, const char *name) {
        return memstore_find(m->m, name);
}

static int mem_read(void *ud, const char *name, struct credentials_record *ret) {
        struct mem_store *m = ud;
        if (m->fail)
                return m->fail;
        return memstore_ops(m->m).read(m->m, name, ret);
}

static int mem_create(void *ud, const char *name, const struct credentials_record *rec) {
        struct mem_store *m = ud;
        if (m->fail)
                return m->fail;
        if (m->before_create) {
                void (*f)(void *) = m->before_create;
                m->before_create = NULL;
                f(m->before_create_ud);
        }
        int r = memstore_ops(m->m).create(m->m, name, rec);
        if (r == 0)
                m->creates++;
        return r;
}

static int mem_update(void *ud, const char *name, const struct credentials_record *rec,
                      const struct credentials_version *version) {
        struct mem_store *m = ud;
        if (m->fail)
                return m->fail;
        struct credentials_record *r = mem_find(m, name);
        if (r && m->stale_next_update) {
                m->stale_next_update = false;
                r->version.n++; /* someone else wrote */
                return -ESTALE;
        }
        int k = memstore_ops(m->m).update(m->m, name, rec, version);
        if (k == 0)
                m->updates++;
        return k;
}

static void mem_done(struct mem_store *m) {
        memstore_free(m->m);
}

/* ---- an in-process signer, a clock, a log sink -------------------------------------------- */

struct env {
        struct material_local_issuer *li;
        unsigned loads;
        int64_t now;
        bool writer;
        char log[16384];
        size_t log_len;
};

static int sig_load(void *ud, const char *cert, size_t cl, const char *key, size_t kl) {
        struct env *e = ud;
        struct material_local_issuer *n = NULL;
        int r = material_local_issuer_new(cert, cl, key, kl, &n);
        if (r < 0)
                return r;
        material_local_issuer_free(e->li);
        e->li = n;
        e->loads++;
        return 0;
}

static int sig_issue(void *ud, const uint8_t *spki, size_t len, const struct tls_cert_params *p,
                     struct tls_cert *ret) {
        struct env *e = ud;
        if (!e->li)
                return -ENOKEY;
        struct material_issuer is = material_local_issuer(e->li);
        return is.issue(is.userdata, spki, len, p, ret);
}

static int64_t clock_now(void *ud) {
        return ((struct env *) ud)->now;
}
static bool writer(void *ud) {
        return ((struct env *) ud)->writer;
}
static void log_sink(void *ud, enum credentials_log_level l, int error, const char *msg) {
        struct env *e = ud;
        int n = snprintf(e->log + e->log_len, sizeof(e->log) - e->log_len, "%s\n", msg);
        if (n > 0 && (size_t) n < sizeof(e->log) - e->log_len)
                e->log_len += (size_t) n;
}

/* A replica; broker_hosts: --broker-host. */
static struct credentials *replica_with(struct mem_store *m, struct env *e,
                                        const char *const *broker_hosts, size_t n_broker_hosts) {
        struct credentials *c = NULL;
        static const char *const extra[] = {"127.0.0.1", "localhost"};
        struct credentials_options o = {
                .store = {.read = mem_read,
                          .create = mem_create,
                          .update = mem_update,
                          .userdata = m},
                .signer = {.load_ca = sig_load, .issue = sig_issue, .userdata = e},
                .extra_hosts = extra,
                .n_extra_hosts = 2,
                .broker_extra_hosts = broker_hosts,
                .n_broker_extra_hosts = n_broker_hosts,
                .may_write = writer,
                .now = clock_now,
                .log = log_sink,
                .userdata = e,
        };
        if (credentials_new(&o, &c) < 0)
                return NULL;
        return c;
}

static struct credentials *replica(struct mem_store *m, struct env *e) {
        return replica_with(m, e, NULL, 0);
}

static void pem_of(struct credentials *c, const char *what, struct buf *out) {
        _cleanup_buf_ struct buf key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        buf_reset(out);
        if (strcmp(what, "ca") == 0)
                (void) credentials_ca_bundle(c, out);
        else
                (void) credentials_webhook_pair(c, out, &key);
}

static size_t count_certs(const struct buf *b) {
        size_t n = 0;
        for (const char *p = strstr(buf_cstr(b), "BEGIN CERTIFICATE"); p;
             p = strstr(p + 1, "BEGIN CERTIFICATE"))
                n++;
        return n;
}

struct race {
        struct mem_store *m;
        struct env *e;
        int result;
        struct credentials *c;
};
static void race_other(void *ud) {
        struct race *r = ud;
        r->c = replica(r->m, r->e);
        r->result = r->c ? credentials_bootstrap(r->c) : -ENOMEM;
}

/* The MAC the broker computes from the stored broker-auth record (brokerproto, independently of
 * what credentials keeps). */
static void mac_from_store(struct mem_store *m, const char *ns, const char *sa, const char *paths,
                           char out[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        const struct buf *v = credentials_record_get(mem_find(m, MATERIAL_BROKER_AUTH), "key");
        _cleanup_buf_ struct buf raw = BUF_INIT(64, BUF_SECURE);
        struct brokerproto_keys *k = NULL;
        uint8_t inst[BROKERPROTO_KEY_SIZE] = {1};
        out[0] = '\0';
        if (!v || base64_decode(&raw, v->data, v->len, false) < 0 ||
            brokerproto_keys_new(raw.data, raw.len, inst, sizeof(inst), &k) < 0)
                return;
        (void) brokerproto_annotation_mac(k->annotation, ns, sa, paths, "", out);
        brokerproto_keys_free(k);
}

/* The admission's material: the annotation MAC under broker-auth's key, the broker-tls CA;
 * nothing before a bootstrap; a new broker-auth version gives a new MAC at the next tick. */
static void test_modes_material(void) {
        struct mem_store m = {};
        (void) memstore_new(&m.m);
        struct env e = {.now = T0, .writer = true};
        struct credentials *c = replica(&m, &e);
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1] = "", want[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        _cleanup_buf_ struct buf ca = BUF_INIT(TLS_MAX_PEM, 0);

        is_int(credentials_annotation_mac(c, "team", "app", "secret/data/team/db", NULL, mac),
               -ENODATA, "no annotation MAC before the bootstrap");
        is_int(credentials_broker_ca(c, &ca), -ENODATA, "no broker CA before the bootstrap");
        char inst[BROKERPROTO_INSTALLATION_SIZE] = "", want_inst[BROKERPROTO_INSTALLATION_SIZE];
        is_int(credentials_installation(c, inst), -ENODATA,
               "no installation id before the bootstrap");
        is_int(credentials_bootstrap(c), 0, "bootstrap");
        {
                const struct buf *tok =
                        credentials_record_get(mem_find(&m, MATERIAL_BROKER_TOKEN), "token");
                _cleanup_buf_ struct buf raw = BUF_INIT(128, BUF_SECURE);
                ok(tok && base64_decode(&raw, tok->data, tok->len, false) == 0 &&
                           brokerproto_installation_id(raw.data, raw.len, want_inst) == 0 &&
                           credentials_installation(c, inst) == 0 && strcmp(inst, want_inst) == 0,
                   "the installation id: the broker's, of the stored broker-token (%s)", inst);
        }
        is_int(credentials_annotation_mac(c, "team", "app", "secret/data/team/db", NULL, mac), 0,
               "the annotation MAC");
        mac_from_store(&m, "team", "app", "secret/data/team/db", want);
        ok(want[0] && strcmp(mac, want) == 0, "it is the broker's MAC of the stored broker-auth");
        is_int(credentials_broker_ca(c, &ca), 0, "the broker CA");
        const struct buf *stored_ca =
                credentials_record_get(mem_find(&m, MATERIAL_BROKER_TLS), "ca.crt");
        ok(stored_ca && ca.len == stored_ca->len && memcmp(ca.data, stored_ca->data, ca.len) == 0,
           "it is broker-tls's ca.crt");

        /* broker-auth rotated (a new version in the store): the next tick follows. */
        struct credentials_record *auth = mem_find(&m, MATERIAL_BROKER_AUTH);
        _cleanup_buf_ struct buf fresh = BUF_INIT(256, BUF_SECURE);
        (void) material_random_base64(MATERIAL_RANDOM_BYTES, &fresh);
        is_int(credentials_record_set(auth, "key", fresh.data, fresh.len), 0,
               "broker-auth rotated");
        char before[sizeof(mac)];
        memcpy(before, mac, sizeof(mac));
        is_int(credentials_tick(c), 0, "tick");
        is_int(credentials_annotation_mac(c, "team", "app", "secret/data/team/db", NULL, mac), 0,
               "the MAC after the rotation");
        mac_from_store(&m, "team", "app", "secret/data/team/db", want);
        ok(strcmp(mac, before) != 0 && strcmp(mac, want) == 0, "it follows the new broker-auth");

        /* A broken broker-auth (not 32 bytes) keeps the last good key and says so. */
        is_int(credentials_record_set(auth, "key", "AAAA", 4), 0, "broker-auth broken");
        ok(credentials_tick(c) == -EBADMSG && strstr(e.log, "broker-auth"), "the tick says so");
        is_int(credentials_annotation_mac(c, "team", "app", "secret/data/team/db", NULL, before), 0,
               "the last good key stays");
        ok(strcmp(mac, before) == 0, "same MAC as before");
        credentials_free(c);
        material_local_issuer_free(e.li);
        mem_done(&m);
}

/* --broker-host: broker-tls's server certificate names the broker Service and exactly these
 * hosts, and is issued again when the set changes (taken away too), not when it stays. */
static int broker_names(struct mem_store *m, const char *const *extra, size_t n) {
        const char *names[MATERIAL_SERVICE_NAMES + 4] = {
                "cloudtaser-broker", "cloudtaser-broker.cloudtaser-system",
                "cloudtaser-broker.cloudtaser-system.svc",
                "cloudtaser-broker.cloudtaser-system.svc.cluster.local"};
        for (size_t i = 0; i < n; i++)
                names[MATERIAL_SERVICE_NAMES + i] = extra[i];
        const struct buf *sc =
                credentials_record_get(mem_find(m, MATERIAL_BROKER_TLS), "server.crt");
        return sc ? material_leaf_names_exactly(sc->data, sc->len, names,
                                                MATERIAL_SERVICE_NAMES + n)
                  : -ENOENT;
}

static void test_broker_hosts(void) {
        struct mem_store m = {};
        (void) memstore_new(&m.m);
        struct env e = {.now = T0, .writer = true};
        static const char *const two[] = {"198.18.7.1", "broker.example"}, *one[] = {"198.18.7.1"},
                                 *bad[] = {"not a name"}, *v6[] = {"fd00::7"},
                                 *v6_other_form[] = {"FD00:0:0::7"};
        struct credentials *c = replica_with(&m, &e, bad, 1);
        ok(c == NULL, "--broker-host 'not a name' refused");
        c = replica_with(&m, &e, two, 2);
        is_int(c ? credentials_bootstrap(c) : -1, 0, "bootstrap with two broker hosts");
        credentials_free(c);
        is_int(broker_names(&m, two, 2), 1,
               "broker-tls's server certificate: the Service's four names, the IP and the name");
        is_int(broker_names(&m, one, 1), 0, "  (not a set without one of them)");
        int64_t v = mem_find(&m, MATERIAL_BROKER_TLS)->version.n;

        c = replica_with(&m, &e, two, 2);
        is_int(c ? credentials_tick(c) : -1, 0, "the same set again");
        credentials_free(c);
        is_int((int) (mem_find(&m, MATERIAL_BROKER_TLS)->version.n - v), 0, "  nothing issued");

        c = replica_with(&m, &e, one, 1);
        is_int(c ? credentials_tick(c) : -1, 0, "a name taken away");
        credentials_free(c);
        ok(mem_find(&m, MATERIAL_BROKER_TLS)->version.n > v && broker_names(&m, one, 1) == 1,
           "  issued again, naming exactly the new set");
        ok(strstr(e.log, "renewed " MATERIAL_BROKER_TLS) != NULL, "  one line for it");
        v = mem_find(&m, MATERIAL_BROKER_TLS)->version.n;

        c = replica_with(&m, &e, v6, 1);
        is_int(c ? credentials_tick(c) : -1, 0, "an IPv6 address instead");
        credentials_free(c);
        ok(mem_find(&m, MATERIAL_BROKER_TLS)->version.n > v && broker_names(&m, v6, 1) == 1,
           "  issued again");
        v = mem_find(&m, MATERIAL_BROKER_TLS)->version.n;
        c = replica_with(&m, &e, v6_other_form, 1);
        is_int(c ? credentials_tick(c) : -1, 0, "the same address written another way");
        credentials_free(c);
        is_int((int) (mem_find(&m, MATERIAL_BROKER_TLS)->version.n - v), 0,
               "  nothing issued (addresses compared as bytes)");

        c = replica_with(&m, &e, NULL, 0);
        is_int(c ? credentials_tick(c) : -1, 0, "no --broker-host any more");
        credentials_free(c);
        ok(mem_find(&m, MATERIAL_BROKER_TLS)->version.n > v && broker_names(&m, NULL, 0) == 1,
           "  issued again for the Service's names alone");
        mem_done(&m);
        material_local_issuer_free(e.li);
}

int main(void) {
        struct mem_store m = {};
        (void) memstore_new(&m.m);
        struct env ea = {.now = T0, .writer = true}, eb = {.now = T0, .writer = true};
        _cleanup_buf_ struct buf a1 = BUF_INIT(TLS_MAX_PEM, 0), b1 = BUF_INIT(TLS_MAX_PEM, 0),
                                 ca1 = BUF_INIT(TLS_MAX_PEM, 0), ca2 = BUF_INIT(TLS_MAX_PEM, 0);

        /* Options refused. */
        struct credentials *bad = NULL;
        struct credentials_options none = {};
        is_int(credentials_new(&none, &bad), -EINVAL, "no store, no signer: refused");
        struct credentials_options badname = {
                .store = {mem_read, mem_create, mem_update, &m},
                .signer = {sig_load, sig_issue, &ea},
                .service = "Not_A_Name",
        };
        is_int(credentials_new(&badname, &bad), -EINVAL, "invalid Service name refused");
        test_broker_hosts();

        /* First install, with a replica racing us to the create. */
        struct credentials *a = replica(&m, &ea);
        ok(a != NULL, "replica A");
        struct race race = {.m = &m, .e = &eb};
        m.before_create = race_other;
        m.before_create_ud = &race;
        is_int(credentials_bootstrap(a), 0, "A bootstraps on an empty store");
        is_int(race.result, 0, "B, which won the create, bootstrapped too");
        ok(strstr(ea.log, "created by another replica") != NULL, "A was told it lost");
        ok(mem_find(&m, MATERIAL_WEBHOOK_TLS) && mem_find(&m, MATERIAL_BROKER_TLS) &&
                   mem_find(&m, MATERIAL_BROKER_AUTH) && mem_find(&m, MATERIAL_BROKER_TOKEN),
           "every record written");
        pem_of(a, "leaf", &a1);
        pem_of(race.c, "leaf", &b1);
        ok(a1.len > 0 && a1.len == b1.len && memcmp(a1.data, b1.data, a1.len) == 0,
           "both replicas serve the same certificate");
        pem_of(a, "ca", &ca1);
        pem_of(race.c, "ca", &ca2);
        ok(ca1.len > 0 && ca1.len == ca2.len && memcmp(ca1.data, ca2.data, ca1.len) == 0,
           "and the same CA");
        is_int((int) credentials_webhook_version(a), 1, "version 1");
        is_int((int) (credentials_webhook_not_after(a) == T0 + MATERIAL_LEAF_LIFETIME_S), 1,
               "leaf for a year");
        credentials_free(race.c);

        /* What was written. */
        const struct credentials_record *w = mem_find(&m, MATERIAL_WEBHOOK_TLS);
        ok(credentials_record_get(w, "tls.crt") && credentials_record_get(w, "tls.key") &&
                   credentials_record_get(w, "ca.crt") && credentials_record_get(w, "ca.key"),
           "webhook-tls has tls.crt, tls.key, ca.crt, ca.key");
        const struct credentials_record *bt = mem_find(&m, MATERIAL_BROKER_TLS);
        const struct buf *sc = credentials_record_get(bt, "server.crt"),
                         *sk = credentials_record_get(bt, "server.key"),
                         *cc = credentials_record_get(bt, "client.crt"),
                         *ck = credentials_record_get(bt, "client.key");
        ok(sc && sk && cc && ck && credentials_record_get(bt, "ca.crt"),
           "broker-tls has server.*, client.*, ca.crt");
        is_int(sc ? material_check_leaf(ca1.data, ca1.len, sc->data, sc->len, sk->data, sk->len, T0,
                                        TLS_USAGE_SERVER)
                  : -1,
               0, "broker server certificate from the CA");
        is_int(cc ? material_check_leaf(ca1.data, ca1.len, cc->data, cc->len, ck->data, ck->len, T0,
                                        TLS_USAGE_CLIENT)
                  : -1,
               0, "operator client certificate from the CA");
        const char *broker_name[] = {"cloudtaser-broker.cloudtaser-system.svc"};
        is_int(sc ? material_leaf_covers(sc->data, sc->len, broker_name, 1) : -1, 1,
               "broker certificate names the broker Service");
        const struct buf *auth = credentials_record_get(mem_find(&m, MATERIAL_BROKER_AUTH), "key"),
                         *tok = credentials_record_get(mem_find(&m, MATERIAL_BROKER_TOKEN),
                                                       "token");
        ok(auth && auth->len == 44 && tok && tok->len == 44 &&
                   memcmp(auth->data, tok->data, 44) != 0,
           "broker-auth and broker-token: 32 random bytes each, different");
        const char *names[] = {"cloudtaser-operator-webhook",
                               "cloudtaser-operator-webhook.cloudtaser-system",
                               "cloudtaser-operator-webhook.cloudtaser-system.svc",
                               "cloudtaser-operator-webhook.cloudtaser-system.svc.cluster.local",
                               "127.0.0.1",
                               "localhost"};
        is_int(material_leaf_covers(a1.data, a1.len, names, ELEMENTSOF(names)), 1,
               "webhook leaf names the Service and the extra hosts");

        /* A later start reads, writes nothing. */
        unsigned creates = m.creates, updates = m.updates;
        struct env ec = {.now = T0 + DAY, .writer = true};
        struct credentials *c2 = replica(&m, &ec);
        is_int(credentials_bootstrap(c2), 0, "a restart bootstraps");
        is_int((int) (m.creates - creates + m.updates - updates), 0, "and writes nothing");
        pem_of(c2, "ca", &ca2);
        ok(ca1.len == ca2.len && memcmp(ca1.data, ca2.data, ca1.len) == 0, "same CA after restart");
        credentials_free(c2);

        /* A standby on an empty store waits; it loads what the leader wrote. */
        struct mem_store m2 = {};
        (void) memstore_new(&m2.m);
        struct env es = {.now = T0, .writer = false}, el = {.now = T0, .writer = true};
        struct credentials *standby = replica(&m2, &es), *leader = replica(&m2, &el);
        is_int(credentials_bootstrap(standby), -EAGAIN, "standby: nothing to load yet");
        is_int((int) memstore_count(m2.m), 0, "standby wrote nothing");
        is_int(credentials_bootstrap(leader), 0, "leader bootstraps");
        is_int(credentials_bootstrap(standby), 0, "standby loads the leader's records");

        /* Leaf rotation, served without a restart. */
        _cleanup_buf_ struct buf cert = BUF_INIT(TLS_MAX_PEM, 0),
                                 key = BUF_INIT(TLS_MAX_PEM, BUF_SECURE);
        struct tls_server *srv = NULL;
        is_int(credentials_webhook_pair(leader, &cert, &key), 0, "pair copied");
        struct tls_server_options to = {.cert_pem = cert.data,
                                        .cert_len = cert.len,
                                        .key_pem = key.data,
                                        .key_len = key.len};
        is_int(tls_server_new(&to, &srv), 0, "a TLS server on the pair");
        credentials_set_server(leader, srv);
        is_int(credentials_tick(leader), 0, "tick, nothing due");
        is_int((int) tls_server_generation(srv), 1, "nothing swapped");
        el.now = es.now = T0 + MATERIAL_LEAF_LIFETIME_S - 29 * DAY;
        is_int(credentials_tick(standby), 0, "standby tick: due but not its job");
        is_int((int) credentials_webhook_version(standby), 1, "standby did not write");
        is_int(credentials_tick(leader), 0, "leader tick: 29 days left");
        is_int((int) credentials_webhook_version(leader), 2, "version 2 written");
        is_int((int) tls_server_generation(srv), 2, "new certificate swapped into the server");
        is_int((int) (credentials_webhook_not_after(leader) == el.now + MATERIAL_LEAF_LIFETIME_S),
               1, "the new leaf for a year");
        _cleanup_buf_ struct buf l2 = BUF_INIT(TLS_MAX_PEM, 0), c_before = BUF_INIT(TLS_MAX_PEM, 0),
                                 c_after = BUF_INIT(TLS_MAX_PEM, 0);
        pem_of(leader, "ca", &c_after);
        is_int(credentials_tick(standby), 0, "standby tick");
        is_int((int) credentials_webhook_version(standby), 2, "standby follows to version 2");
        pem_of(standby, "leaf", &l2);
        pem_of(leader, "leaf", &cert);
        ok(l2.len == cert.len && memcmp(l2.data, cert.data, l2.len) == 0,
           "standby serves the leader's new certificate");
        is_int(credentials_tick(leader), 0, "leader tick again");
        is_int((int) credentials_webhook_version(leader), 2, "no second rotation");

        /* A conflict: someone else wrote between our read and our update. */
        el.now += MATERIAL_LEAF_LIFETIME_S - 20 * DAY;
        m2.stale_next_update = true;
        is_int(credentials_tick(leader), 0, "conflict: re-read and retried");
        ok(strstr(el.log, "changed under us") != NULL, "the conflict is said");
        is_int((int) credentials_webhook_version(leader), 4, "written after the other writer");

        /* CA rotation in two steps. */
        pem_of(leader, "ca", &c_before);
        int64_t ca_end = 0;
        is_int(material_cert_validity(c_before.data, c_before.len, NULL, &ca_end), 0, "CA end");
        el.now = ca_end - MATERIAL_LEAF_LIFETIME_S - 40 * DAY;
        is_int(credentials_tick(leader), 0, "years later: the expired leaf is renewed first");
        pem_of(leader, "ca", &c_after);
        is_int((int) count_certs(&c_after), 1, "with the same CA");
        el.now = ca_end - MATERIAL_LEAF_LIFETIME_S - 30 * DAY + 1;
        is_int(credentials_tick(leader), 0, "CA rotation, step one");
        pem_of(leader, "ca", &c_after);
        is_int((int) count_certs(&c_after), 2, "the bundle holds the new and the old CA");
        ok(strstr(c_after.data, c_before.data) != NULL, "the old CA stays in the bundle");
        ok(strncmp(c_after.data, c_before.data, 64) != 0 || c_after.len > c_before.len,
           "the new CA comes first");
        pem_of(leader, "leaf", &cert);
        _cleanup_buf_ struct buf first = BUF_INIT(TLS_MAX_PEM, 0);
        is_int(material_bundle_first(c_after.data, c_after.len, &first), 0, "first of bundle");
        is_int(tls_verify_pem(c_before.data, c_before.len, cert.data, cert.len, el.now,
                              TLS_USAGE_SERVER),
               0, "the leaf is still the old CA's during step one");
        is_int(credentials_tick(leader), 0, "CA rotation, step two");
        pem_of(leader, "leaf", &cert);
        is_int(tls_verify_pem(first.data, first.len, cert.data, cert.len, el.now, TLS_USAGE_SERVER),
               0, "the leaf is the new CA's now");
        is_int(credentials_tick(leader), 0, "no further change");

        /* An unusable record (the key lost) is replaced by the writer. */
        struct credentials_record *stored = mem_find(&m2, MATERIAL_WEBHOOK_TLS);
        struct credentials_version v = stored->version;
        credentials_record_done(stored);
        is_int(credentials_record_set(stored, "tls.crt", "x", 1), 0, "record broken");
        stored->version = v;
        is_int(credentials_tick(leader), 0, "tick on a broken record");
        ok(strstr(el.log, "unusable") != NULL, "the replacement is said");
        es.now = el.now;
        is_int(credentials_tick(standby), 0, "standby loads the replacement");

        /* Store failures: nothing loaded, the error returned. */
        struct mem_store m3 = {.fail = -EIO};
        (void) memstore_new(&m3.m);
        struct env ef = {.now = T0, .writer = true};
        struct credentials *f = replica(&m3, &ef);
        is_int(credentials_bootstrap(f), -EIO, "store down: the error");
        _cleanup_buf_ struct buf none_ca = BUF_INIT(TLS_MAX_PEM, 0);
        is_int(credentials_ca_bundle(f, &none_ca), -ENODATA, "nothing served");
        m3.fail = 0;
        is_int(credentials_bootstrap(f), 0, "store back: bootstrapped");

        /* No key material in any log line. */
        const char *logs[] = {ea.log, eb.log, es.log, el.log, ef.log};
        bool clean = true;
        for (size_t i = 0; i < ELEMENTSOF(logs); i++)
                clean = clean && !strstr(logs[i], "PRIVATE") && !strstr(logs[i], "BEGIN");
        ok(clean, "no PEM in the log lines");
        if (tap_failed)
                diag("leader log:\n%s", el.log);

        tls_server_free(srv);
        credentials_free(a);
        credentials_free(standby);
        credentials_free(leader);
        credentials_free(f);
        material_local_issuer_free(ea.li);
        material_local_issuer_free(eb.li);
        material_local_issuer_free(ec.li);
        material_local_issuer_free(es.li);
        material_local_issuer_free(el.li);
        material_local_issuer_free(ef.li);
        mem_done(&m);
        mem_done(&m2);
        mem_done(&m3);
        test_modes_material();
        return tap_done();
}
