/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of operator/unsealer's decisions, without I/O: reading a pod (names, IP, phase,
 * deletion, the unseal port from CLOUDTASER_UNSEAL_LISTEN), the checks before a token is made
 * (token auth, the annotation MAC over namespace/service account/paths/env-map, namespace
 * confinement), the per-pod policy (exactly the pod's paths, their KV v2 metadata, the accessor
 * comment) and reading the accessor back.
 * The loop (unsealer_tick, and the thread with its watch) against the stand-in kube-apiserver,
 * the stand-in vault and a pod endpoint of our own (common/httpd over TLS, answering as an
 * unsealed wrapper does): a pod with this installation's label but another MAC is refused before
 * its endpoint is asked anything, so it is never adopted, and its token is not revoked when it
 * goes; another installation's pod (its label value) is never listed, while this one's beside it
 * is adopted; an unsealer of one namespace leaves the others alone; a new term sweeps only this
 * installation's left-over policies; the thread, relisting every 10 minutes, gets a 410 on its
 * first watch, lists again, and adopts a new pod and cleans up a deleted one from the watch.
 * The loop runs end to end on the real cluster and OpenBao in tests/e2e/test-real-sealed.sh and
 * test-real-sealed-operator.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/httpd.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/tls/cert.h"
#include "common/tls/transport.h"
#include "common/vault-sys.h"
#include "common/vault.h"
#include "operator/unsealer.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

static const uint8_t AUTH[32] = "0123456789abcdef0123456789abcdef";

static char *pod_json(char *buf, size_t n, const char *ns, const char *paths, const char *mac,
                      const char *extra_meta, const char *env) {
        (void) snprintf(buf, n,
                        "{\"metadata\": {\"name\": \"web-1\", \"namespace\": \"%s\", \"uid\": "
                        "\"0f0e-11aa\", %s \"annotations\": {\"cloudtaser.io/vault-auth-method\": "
                        "\"token\", \"cloudtaser.io/secret-paths\": \"%s\", "
                        "\"cloudtaser.io/env-map\": \"password=PGPASSWORD\", "
                        "\"cloudtaser.io/broker-mac\": \"%s\"}}, \"spec\": "
                        "{\"serviceAccountName\": \"app\", \"containers\": [{\"name\": \"app\", "
                        "\"env\": [%s]}]}, \"status\": {\"phase\": \"Running\", \"podIP\": "
                        "\"10.1.2.3\"}}",
                        ns, extra_meta, paths, mac, env);
        return buf;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* The pod endpoint: an unsealed wrapper (GET /v1/status {"sealed": false}, POST /v1/unseal 409). */
static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned ep_requests;

static int ep_handler(void *userdata, const struct httpd_request *req,
                      struct httpd_response *resp) {
        (void) userdata;
        pthread_mutex_lock(&ep_lock);
        ep_requests++;
        pthread_mutex_unlock(&ep_lock);
        if (strcmp(req->path, "/v1/status") == 0)
                return httpd_response_set(resp, 200, "application/json", "{\"sealed\": false}\n");
        return httpd_response_set(resp, 409, "application/json", "{\"error\": \"unsealed\"}\n");
}

static unsigned ep_count(void) {
        pthread_mutex_lock(&ep_lock);
        unsigned n = ep_requests;
        pthread_mutex_unlock(&ep_lock);
        return n;
}

static void *ep_main(void *h) {
        (void) httpd_run(h);
        return NULL;
}

/* A self-issued pair (as the wrapper makes), usable as server and as client certificate. */
static int make_pair(struct buf *cert_pem, struct buf *key_pem) {
        _cleanup_tls_key_ struct tls_key *key = NULL;
        _cleanup_tls_cert_ struct tls_cert ca = {}, leaf = {};
        _cleanup_buf_ struct buf spki = BUF_INIT(4096, 0);
        int64_t now = (int64_t) time(NULL);
        struct tls_cert_params p = {.common_name = "test-unsealer",
                                    .not_before = now,
                                    .not_after = now + 86400,
                                    .backdate = 3600,
                                    .usage = TLS_USAGE_SERVER | TLS_USAGE_CLIENT,
                                    .path_len = -1};
        int r = tls_key_generate(&key);
        if (r >= 0)
                r = tls_cert_create_ca(key, &p, &ca);
        if (r >= 0)
                r = tls_key_public_der(key, &spki);
        if (r >= 0)
                r = tls_cert_issue(key, &ca, (const uint8_t *) spki.data, spki.len, &p, &leaf);
        if (r >= 0)
                r = tls_cert_encode_pem(&leaf, cert_pem);
        if (r >= 0)
                r = tls_key_export_pem(key, key_pem);
        return r;
}

struct loop_deps {
        uint8_t key[BROKERPROTO_KEY_SIZE];
        char installation[BROKERPROTO_INSTALLATION_SIZE];
        struct buf *cert, *ckey;
        struct vault_client *vault;
};

static int ld_key(void *userdata, uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        memcpy(ret, ((struct loop_deps *) userdata)->key, BROKERPROTO_KEY_SIZE);
        return 0;
}

static int ld_installation(void *userdata, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        memcpy(ret, ((struct loop_deps *) userdata)->installation, BROKERPROTO_INSTALLATION_SIZE);
        return 0;
}

static int ld_pair(void *userdata, struct buf *ret_cert, struct buf *ret_key) {
        struct loop_deps *d = userdata;
        int r = buf_append(ret_cert, d->cert->data, d->cert->len);
        return r < 0 ? r : buf_append(ret_key, d->ckey->data, d->ckey->len);
}

static int ld_borrow(void *userdata, struct vault_client **ret) {
        *ret = ((struct loop_deps *) userdata)->vault;
        return 0;
}

static void ld_return(void *userdata) {
        (void) userdata;
}

/* Stores a sealed pod (Running, IP 127.0.0.1, its endpoint on port) in the stand-in; its uid
 * into ret_uid. */
static int seed_pod(const struct standin *k, const char *ns, const char *name, const char *label,
                    const char *mac, int port, char *ret_uid, size_t n) {
        char obj[4096];
        _cleanup_free_ char *body = NULL, *uid = NULL;
        int status = 0;
        (void) snprintf(
                obj, sizeof(obj),
                "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"%s\", "
                "\"namespace\": \"%s\", \"labels\": {\"" UNSEALER_LABEL "\": \"%s\"}, "
                "\"annotations\": {\"cloudtaser.io/vault-auth-method\": \"token\", "
                "\"cloudtaser.io/secret-paths\": \"secret/data/%s/db\", "
                "\"cloudtaser.io/env-map\": \"password=PGPASSWORD\", "
                "\"cloudtaser.io/broker-mac\": \"%s\"}}, \"spec\": {\"serviceAccountName\": "
                "\"app\", \"containers\": [{\"name\": \"app\", \"image\": \"x\", \"env\": "
                "[{\"name\": \"CLOUDTASER_UNSEAL_LISTEN\", \"value\": \":%d\"}]}]}, "
                "\"status\": {\"phase\": \"Running\", \"podIP\": \"127.0.0.1\"}}",
                name, ns, label, ns, mac, port);
        int r = standin_control(k, "POST", "/_standin/objects", obj, &status, &body);
        if (r < 0 || status != 200)
                return r < 0 ? r : -EPROTO;
        /* The stand-in answers with the object stored: its metadata.uid. */
        r = standin_json_str(body, "uid", &uid);
        if (r < 0)
                return r;
        (void) snprintf(ret_uid, n, "%s", uid);
        return 0;
}

static int delete_pod(const struct standin *k, const char *ns, const char *name) {
        char path[256];
        int status = 0;
        (void) snprintf(path, sizeof(path), "/_standin/objects?resource=pods&namespace=%s&name=%s",
                        ns, name);
        int r = standin_control(k, "DELETE", path, NULL, &status, NULL);
        return r < 0 ? r : status == 200 ? 0 : -EPROTO;
}

/* Whether the token of accessor acc is alive at the vault. */
static bool token_alive(struct vault_client *v, const char *acc) {
        _cleanup_buf_ struct buf body = BUF_INIT(512, 0);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        (void) buf_printf(&body, "{\"accessor\": \"%s\"}", acc);
        return vault_logical_write(v, "auth/token/lookup-accessor", &body, &d, NULL) >= 0;
}

static bool policy_exists(struct vault_client *v, const char *name) {
        _cleanup_free_ char *text = NULL;
        return vault_sys_policy_read(v, name, &text, NULL) == 0;
}

/* A token through the role, recorded in policy `name` as the unsealer records it: ret_acc. */
static int token_with_policy(struct vault_client *v, const char *name, char *ret_acc, size_t n) {
        _cleanup_buf_ struct buf text = BUF_INIT(4096, 0);
        _cleanup_secmem_ char *wrapping = NULL;
        struct vault_child_token t = {.policy = name};
        int r = vault_token_create_wrapped(v, UNSEALER_ROLE_DEFAULT, &t, 60, &wrapping, ret_acc, n,
                                           NULL);
        if (r >= 0)
                r = buf_printf(&text,
                               "# cloudtaser unsealer: pod of %s\n# accessor: %s\npath "
                               "\"secret/data/x/db\" {\n  capabilities = [\"read\"]\n}\n",
                               name, ret_acc);
        return r < 0 ? r : vault_sys_policy_write(v, name, buf_cstr(&text), NULL);
}

#define INST_MINE "1111222233334444"
#define INST_OTHER "5555666677778888"

struct loop {
        struct standin *k, *vs;
        struct kube_client *kc;
        struct vault_client *v;
        struct loop_deps d;
        int port;
};

static struct unsealer *loop_unsealer(struct loop *l, const char *ns) {
        struct unsealer *u = NULL;
        struct unsealer_options o = {.kube = l->kc,
                                     .namespace_ = ns,
                                     .deps = {.annotation_key = ld_key,
                                              .installation = ld_installation,
                                              .client_pair = ld_pair,
                                              .vault_borrow = ld_borrow,
                                              .vault_return = ld_return,
                                              .userdata = &l->d},
                                     .request_timeout_ms = 10000};
        return unsealer_new(&o, &u) == 0 ? u : NULL;
}

static void loop_cases(struct loop *l, const uint8_t key[BROKERPROTO_KEY_SIZE]) {
        struct unsealer *u = NULL;
        struct unsealer_stats st = {};
        char mine[BROKERPROTO_ANNOTATION_MAC_LEN + 1], forged[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        char other[BROKERPROTO_ANNOTATION_MAC_LEN + 1],
                elsewhere[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        char uid[128] = "", forged_pol[160], other_pol[160], forged_acc[VAULT_ACCESSOR_MAX] = "",
             other_acc[VAULT_ACCESSOR_MAX] = "", left_acc[VAULT_ACCESSOR_MAX] = "";
        uint8_t other_key[BROKERPROTO_KEY_SIZE];
        _cleanup_buf_ struct buf role = BUF_INIT(512, 0);

        memcpy(other_key, key, sizeof(other_key));
        other_key[5] ^= 0x40;
        (void) brokerproto_annotation_mac(key, "default", "app", "secret/data/default/db",
                                          "password=PGPASSWORD", mine);
        (void) brokerproto_annotation_mac(key, "kube-public", "app", "secret/data/kube-public/db",
                                          "password=PGPASSWORD", elsewhere);
        (void) brokerproto_annotation_mac(other_key, "default", "app", "secret/data/default/db",
                                          "password=PGPASSWORD", other);
        memcpy(forged, other, sizeof(forged));
        (void) buf_printf(&role, "{\"allowed_policies_glob\": \"" UNSEALER_POLICY_PREFIX
                                 "*\", \"orphan\": true}");
        ok(vault_logical_write(l->v, "auth/token/roles/" UNSEALER_ROLE_DEFAULT, &role, NULL,
                               NULL) >= 0,
           "loop: the token role");

        /* Another installation's sealed pod, unsealed by its unsealer: its label value, its MAC,
         * its policy (its prefix) and token. */
        ok(seed_pod(l->k, "default", "theirs", INST_OTHER, other, l->port, uid, sizeof(uid)) == 0,
           "loop: another installation's sealed pod, unsealed (uid %s)", uid);
        (void) snprintf(other_pol, sizeof(other_pol), UNSEALER_POLICY_PREFIX INST_OTHER "-%s", uid);
        ok(token_with_policy(l->v, other_pol, other_acc, sizeof(other_acc)) == 0 &&
                   token_alive(l->v, other_acc),
           "  its token and policy %s", other_pol);
        /* A pod with this installation's label but a MAC that is not this installation's (the
         * label written outside the webhook's review, or another's MAC copied), unsealed by
         * somebody: the policy under this installation's name is what cleaning up would revoke. */
        ok(seed_pod(l->k, "default", "forged", INST_MINE, forged, l->port, uid, sizeof(uid)) == 0,
           "loop: a pod with this installation's label and a MAC that is not its, unsealed");
        (void) snprintf(forged_pol, sizeof(forged_pol), UNSEALER_POLICY_PREFIX INST_MINE "-%s",
                        uid);
        ok(token_with_policy(l->v, forged_pol, forged_acc, sizeof(forged_acc)) == 0,
           "  a token and a policy %s for it", forged_pol);
        /* This installation's pod in another namespace than the unsealer's. */
        ok(seed_pod(l->k, "kube-public", "elsewhere", INST_MINE, elsewhere, l->port, uid,
                    sizeof(uid)) == 0,
           "loop: this installation's pod in another namespace (kube-public)");

        if (!ok((u = loop_unsealer(l, "default")) != NULL,
                "loop: an unsealer of namespace default"))
                return;
        is_int(unsealer_tick(u), 0, "loop: a pass");
        unsealer_get_stats(u, &st);
        ok(st.refused == 1 && st.adopted == 0 && st.unsealed == 0 && st.failures == 0,
           "  the pod with the wrong MAC refused, nothing adopted (refused %llu adopted %llu "
           "failures %llu)",
           (unsigned long long) st.refused, (unsigned long long) st.adopted,
           (unsigned long long) st.failures);
        is_int(ep_count(), 0,
               "  no endpoint asked: the refused pod's, nor the other installation's");
        ok(delete_pod(l->k, "default", "forged") == 0 && unsealer_tick(u) == 0,
           "loop: the pod with the wrong MAC deleted, a pass");
        unsealer_get_stats(u, &st);
        ok(st.cleaned == 0 && policy_exists(l->v, forged_pol) && token_alive(l->v, forged_acc),
           "  gone: its token and policy left alone (cleaned %llu)",
           (unsigned long long) st.cleaned);

        /* This installation's pod beside the other's: only it is adopted. */
        ok(seed_pod(l->k, "default", "mine", INST_MINE, mine, l->port, uid, sizeof(uid)) == 0,
           "loop: this installation's pod beside the other's, unsealed already");
        is_int(unsealer_tick(u), 0, "loop: a pass");
        unsealer_get_stats(u, &st);
        ok(st.adopted == 1 && st.refused == 1 && ep_count() == 1,
           "  it alone is adopted, after one status request (adopted %llu, requests %u)",
           (unsigned long long) st.adopted, ep_count());
        u = unsealer_free(u);

        /* A new term sweeps this installation's left-overs only: the policy of the deleted
         * forged pod and one of no pod at all go; the other installation's stays, also once its
         * pod is gone. */
        char left_pol[160] = UNSEALER_POLICY_PREFIX INST_MINE "-0000-dead";
        ok(token_with_policy(l->v, left_pol, left_acc, sizeof(left_acc)) == 0 &&
                   delete_pod(l->k, "default", "theirs") == 0,
           "loop: a left-over policy of this installation; the other's pod deleted");
        if (!ok((u = loop_unsealer(l, NULL)) != NULL, "loop: a new unsealer, all namespaces"))
                return;
        is_int(unsealer_tick(u), 0, "loop: its first pass (the sweep)");
        unsealer_get_stats(u, &st);
        ok(st.swept == 2 && !policy_exists(l->v, left_pol) && !token_alive(l->v, left_acc) &&
                   !policy_exists(l->v, forged_pol) && !token_alive(l->v, forged_acc),
           "  this installation's left-overs swept, tokens revoked (swept %llu)",
           (unsigned long long) st.swept);
        ok(policy_exists(l->v, other_pol) && token_alive(l->v, other_acc),
           "  the other installation's policy and token untouched");
        ok(st.adopted == 2 && ep_count() == 3,
           "  all namespaces: this installation's pods in default and kube-public adopted "
           "(adopted %llu, requests %u)",
           (unsigned long long) st.adopted, ep_count());
        u = unsealer_free(u);
}

/* Waits (generously: the thread's pace is not ours) until want(stats) holds. */
static bool wait_stats(struct unsealer *u, bool (*want)(const struct unsealer_stats *),
                       struct unsealer_stats *ret) {
        for (int i = 0; i < 6000; i++) {
                unsealer_get_stats(u, ret);
                if (want(ret))
                        return true;
                (void) usleep(10000);
        }
        return false;
}

static bool adopted_1(const struct unsealer_stats *st) {
        return st->adopted >= 1;
}
static bool adopted_2(const struct unsealer_stats *st) {
        return st->adopted >= 2;
}
static bool cleaned_1(const struct unsealer_stats *st) {
        return st->cleaned >= 1;
}

/* The thread: a list, then the watch. With a relist interval of 10 minutes, what happens in the
 * test's minute is the watch's doing. The first watch request is answered 410 (a fault): the
 * unsealer lists again and watches on. */
static void loop_watch(struct loop *l) {
        struct unsealer *u = NULL;
        struct unsealer_stats st = {};
        char uid[128], mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        _cleanup_free_ char *faults = NULL;
        int status = 0;

        (void) brokerproto_annotation_mac(l->d.key, "default", "app", "secret/data/default/db",
                                          "password=PGPASSWORD", mac);
        ok(standin_control(l->k, "POST", "/_standin/fault",
                           "{\"regex\":\"^/api/v1/namespaces/default/pods\\\\?.*watch=1\","
                           "\"status\":410,\"count\":1}",
                           &status, NULL) == 0 &&
                   status == 200,
           "watch loop: the first watch will be answered 410");
        struct unsealer_options o = {.kube = l->kc,
                                     .namespace_ = "default",
                                     .interval_ms = 600000,
                                     .deps = {.annotation_key = ld_key,
                                              .installation = ld_installation,
                                              .client_pair = ld_pair,
                                              .vault_borrow = ld_borrow,
                                              .vault_return = ld_return,
                                              .userdata = &l->d},
                                     .request_timeout_ms = 10000};
        unsigned before = ep_count();
        if (!ok(unsealer_new(&o, &u) == 0 && unsealer_start(u) == 0,
                "watch loop: an unsealer thread, relisting every 10 minutes"))
                return;
        ok(wait_stats(u, adopted_1, &st) && st.adopted == 1,
           "  its list adopts the pod there (adopted %llu)", (unsigned long long) st.adopted);
        bool consumed = false;
        for (int i = 0; i < 6000 && !consumed; i++) {
                free(faults);
                faults = NULL;
                /* The fault used up, and the next watch under way (the stand-in counts the
                 * watches it streams: the 410 was not one). */
                consumed = standin_control(l->k, "GET", "/_standin/fault", NULL, &status,
                                           &faults) == 0 &&
                           strstr(faults, "\"faults\": []");
                free(faults);
                faults = NULL;
                consumed = consumed &&
                           standin_control(l->k, "GET", "/_standin/stats", NULL, &status,
                                           &faults) == 0 &&
                           strstr(faults, "\"watches\": 1");
                if (!consumed)
                        (void) usleep(10000);
        }
        ok(consumed, "  its first watch got the 410; it listed again and watches");
        ok(seed_pod(l->k, "default", "late", INST_MINE, mac, l->port, uid, sizeof(uid)) == 0,
           "watch loop: a new pod of this installation, unsealed already");
        ok(wait_stats(u, adopted_2, &st) && st.adopted == 2 && ep_count() == before + 2,
           "  adopted from the watch (listed again after the 410, watching on), long before any "
           "relist (adopted %llu)",
           (unsigned long long) st.adopted);
        ok(delete_pod(l->k, "default", "late") == 0 && wait_stats(u, cleaned_1, &st) &&
                   st.cleaned == 1,
           "  deleted: cleaned up from the watch's DELETED event (cleaned %llu)",
           (unsigned long long) st.cleaned);
        u = unsealer_free(u);
        ok(true, "watch loop: the thread stops (its watch cancelled)");
}

static void test_loop(const uint8_t key[BROKERPROTO_KEY_SIZE]) {
        struct loop l = {};
        _cleanup_tls_server_ struct tls_server *tls = NULL;
        _cleanup_buf_ struct buf cert = BUF_INIT(65536, 0), ckey = BUF_INIT(65536, BUF_SECURE);
        struct httpd *ep = NULL;
        pthread_t ep_thread;

        if (!ok(standin_start_kube(NULL, &l.k) == 0 && standin_start(NULL, &l.vs) == 0 &&
                        standin_kube_client(l.k, &l.kc) == 0,
                "loop: the stand-in kube-apiserver and vault"))
                goto out;
        struct vault_options vo = {
                .addr = l.vs->addr, .ca_file = l.vs->ca_path, .deadline_ms = 10000};
        if (!ok(vault_client_new(&vo, &l.v) == 0 &&
                        vault_set_token(l.v, l.vs->root_token, strlen(l.vs->root_token)) == 0,
                "loop: a vault client"))
                goto out;
        if (!ok(make_pair(&cert, &ckey) == 0, "loop: a certificate pair"))
                goto out;
        struct tls_server_options to = {.cert_pem = cert.data,
                                        .cert_len = cert.len,
                                        .key_pem = ckey.data,
                                        .key_len = ckey.len,
                                        .client_auth = TLS_CLIENT_AUTH_NONE};
        struct httpd_options ho = {.address = "127.0.0.1:0", .handler = ep_handler};
        if (!ok(tls_server_new(&to, &tls) == 0 && (ho.tls = tls, httpd_new(&ho, &ep) == 0) &&
                        pthread_create(&ep_thread, NULL, ep_main, ep) == 0,
                "loop: an unsealed pod endpoint"))
                goto out;
        l.port = httpd_port(ep);
        l.d = (struct loop_deps){.cert = &cert, .ckey = &ckey, .vault = l.v};
        memcpy(l.d.key, key, sizeof(l.d.key));
        memcpy(l.d.installation, INST_MINE, sizeof(INST_MINE));
        loop_cases(&l, key);
        loop_watch(&l);
out:
        if (ep) {
                httpd_stop(ep);
                (void) pthread_join(ep_thread, NULL);
                ep = httpd_free(ep);
        }
        standin_stop(l.vs);
        l.v = vault_client_free(l.v);
        l.kc = kube_client_free(l.kc);
        standin_stop(l.k);
}

int main(void) {
        uint8_t key[BROKERPROTO_KEY_SIZE];
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1], other_mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        char j[4096], reason[UNSEALER_REASON_MAX];
        struct unsealer_pod p;
        struct injection_secret *specs = NULL;
        size_t n = 0;

        is_int(brokerproto_annotation_key(AUTH, 32, key), 0, "annotation key");
        (void) brokerproto_annotation_mac(key, "shop", "app", "secret/data/shop/db",
                                          "password=PGPASSWORD", mac);
        (void) brokerproto_annotation_mac(key, "shop", "app", "secret/data/shop/db,secret/data/x/y",
                                          "password=PGPASSWORD", other_mac);

        /* Reading the pod. */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac, "", "");
                is_int(json_parse(j, strlen(j), 0, NULL, &d), 0, "pod JSON");
                is_int(unsealer_pod_parse(json_doc_root(d), &p), 0, "pod parsed");
                ok(strcmp(p.ns, "shop") == 0 && strcmp(p.name, "web-1") == 0 &&
                           strcmp(p.uid, "0f0e-11aa") == 0 && strcmp(p.sa, "app") == 0,
                   "  namespace, name, uid, service account");
                ok(p.running && !p.deleting && p.ip && strcmp(p.ip, "10.1.2.3") == 0,
                   "  running, not deleting, its IP");
                is_int(p.port, INJECTION_UNSEAL_PORT, "  port 8199 by default");
                is_int(unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)), 0,
                       "checks pass: token auth, MAC, confined");
                ok(n == 1 && strcmp(specs[0].path, "secret/data/shop/db") == 0, "  its path");

                _cleanup_buf_ struct buf pol = BUF_INIT(65536, 0);
                is_int(unsealer_policy_text(&p, specs, n, NULL, &pol), 0, "policy text");
                ok(strstr(buf_cstr(&pol), "path \"secret/data/shop/db\" {\n  capabilities = "
                                          "[\"read\"]\n}") != NULL,
                   "  read on the data path");
                ok(strstr(buf_cstr(&pol), "path \"secret/metadata/shop/db\" {\n  capabilities = "
                                          "[\"read\"]\n}") != NULL,
                   "  read on its metadata");
                ok(!strchr(buf_cstr(&pol), '*') && !strstr(buf_cstr(&pol), "list") &&
                           !strstr(buf_cstr(&pol), "update"),
                   "  no glob, no other capability");
                char acc[VAULT_ACCESSOR_MAX];
                is_int(unsealer_policy_accessor(buf_cstr(&pol), acc, sizeof(acc)), -ENOENT,
                       "  no accessor yet");
                buf_reset(&pol);
                is_int(unsealer_policy_text(&p, specs, n, "AbC123xyz", &pol), 0,
                       "policy text with the accessor");
                is_int(unsealer_policy_accessor(buf_cstr(&pol), acc, sizeof(acc)), 0,
                       "  read back");
                is_str(acc, "AbC123xyz", "  the same accessor");
                injection_secrets_free(specs, n);
                specs = NULL;
        }
        /* A KV v1 path has no metadata line. */
        {
                struct injection_secret v1 = {.path = "kv/shop/db", .all_fields = true};
                struct unsealer_pod q = {.ns = "shop", .name = "a", .uid = "u"};
                _cleanup_buf_ struct buf pol = BUF_INIT(4096, 0);
                is_int(unsealer_policy_text(&q, &v1, 1, NULL, &pol), 0, "KV v1 policy");
                ok(strstr(buf_cstr(&pol), "\"kv/shop/db\"") && !strstr(buf_cstr(&pol), "metadata"),
                   "  the path alone");
        }
        /* The port from the container's CLOUDTASER_UNSEAL_LISTEN; deletion. */
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac,
                         "\"deletionTimestamp\": \"2026-01-01T00:00:00Z\",",
                         "{\"name\": \"CLOUDTASER_UNSEAL_LISTEN\", \"value\": \":19199\"}");
                ok(json_parse(j, strlen(j), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0,
                   "pod with a listen address and a deletion timestamp");
                ok(p.port == 19199 && p.deleting, "  port 19199, deleting");
        }
        /* Refusals. */
        static const struct {
                const char *ns, *paths, *mac, *why;
        } refused[] = {
                {"shop", "secret/data/shop/db,secret/data/x/y", NULL, "outside the namespace"},
                {"shop", "secret/data/shop/other", NULL, "MAC"},
                {"shop", "secret/data/shop/db", "v1:00", "MAC"},
                {"other", "secret/data/shop/db", NULL, "MAC"},
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                const char *m = refused[i].mac ? refused[i].mac : i == 0 ? other_mac : mac;
                pod_json(j, sizeof(j), refused[i].ns, refused[i].paths, m, "", "");
                reason[0] = '\0';
                ok(json_parse(j, strlen(j), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0 &&
                           unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)) ==
                                   -EPERM &&
                           strstr(reason, refused[i].why),
                   "refused %zu: %s", i, reason);
        }
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                pod_json(j, sizeof(j), "shop", "secret/data/shop/db", mac, "", "");
                (void) json_parse(j, strlen(j), 0, NULL, &d);
                (void) unsealer_pod_parse(json_doc_root(d), &p);
                p.method = "kubernetes";
                ok(unsealer_pod_check(&p, key, NULL, &specs, &n, reason, sizeof(reason)) ==
                                   -EPERM &&
                           strstr(reason, "token auth"),
                   "not token auth: refused");
                p.method = "token";
                ok(unsealer_pod_check(&p, key, "kv/data/tenants/{namespace}/", &specs, &n, reason,
                                      sizeof(reason)) == -EPERM &&
                           strstr(reason, "kv/data/tenants/shop/"),
                   "another tenant template: the same path is outside it");
                uint8_t k2[BROKERPROTO_KEY_SIZE];
                memcpy(k2, key, sizeof(k2));
                k2[0] ^= 1;
                ok(unsealer_pod_check(&p, k2, NULL, &specs, &n, reason, sizeof(reason)) == -EPERM,
                   "another installation's key: refused");
        }
        /* Malformed pods. */
        static const char *const bad[] = {
                "{}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\"}}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\", \"uid\": \"x/../y\"}}",
                "{\"metadata\": {\"name\": \"a\", \"namespace\": \"B_\", \"uid\": \"u\"}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                ok(json_parse(bad[i], strlen(bad[i]), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == -EBADMSG,
                   "malformed pod %zu: -EBADMSG", i);
        }
        {
                _cleanup_json_doc_ struct json_doc *d = NULL;
                static const char pending[] =
                        "{\"metadata\": {\"name\": \"a\", \"namespace\": \"b\", \"uid\": \"u\"}, "
                        "\"status\": {\"phase\": \"Pending\", \"podIP\": \"1.2.3.4; rm\"}}";
                ok(json_parse(pending, strlen(pending), 0, NULL, &d) == 0 &&
                           unsealer_pod_parse(json_doc_root(d), &p) == 0 && !p.running && !p.ip,
                   "a pending pod with a garbage IP: not running, no IP");
        }
        test_loop(key);
        return tap_done();
}
