/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of operator/modes through operator/admission: broker mode (the projected token
 * volume and its read-only mounts, CLOUDTASER_BROKER_ADDRESS and CLOUDTASER_BROKER_CA_PEM, no
 * VAULT_ADDR, the annotation MAC) and the sealed token mode (CLOUDTASER_UNSEAL_CA_PEM, the
 * cloudtaser.io/sealed label, the readiness probe), each applied to the pod with the API
 * server's patch semantics (tests/lib/jsonpatch-apply.c), read back with the injection
 * contract's reader, and reviewed again (no patch: idempotent); and every denial: a
 * vault-address in broker mode, the operator lacking the CA or the annotation key, unsealing
 * off, two sealed containers, the unseal port taken, the label set by the pod author, the
 * variables of these modes set by the pod, the broker token mounted where it must not be. The
 * MAC is checked against brokerproto_annotation_mac() under a key the test derives itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/brokerproto.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/admission.h"
#include "tests/lib/jsonpatch-apply.h"
#include "tests/tap.h"

#define INIT_IMAGE "ghcr.io/cloudtaser/cloudtaser-wrapper:1.0"
#define BROKER_ADDR "https://cloudtaser-broker.cloudtaser-system.svc:8443"
#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBbroker\n-----END CERTIFICATE-----\n"
#define PATHS "secret/data/team/db"
#define BROKER_ANN                                                                          \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-auth-method\":\"broker\"," \
        "\"cloudtaser.io/secret-paths\":\"" PATHS "\""
#define TOKEN_ANN                                                                          \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-auth-method\":\"token\"," \
        "\"cloudtaser.io/secret-paths\":\"" PATHS "\""
#define KUBE_ANN                                                                  \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"app\"," \
        "\"cloudtaser.io/secret-paths\":\"" PATHS "\""
#define APP "{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"
#define SIDE "{\"name\":\"side\",\"image\":\"nginx\",\"command\":[\"/y\"]}"
#define TOKEN_ENV                                                                             \
        "\"env\":[{\"name\":\"VAULT_TOKEN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"t\"," \
        "\"key\":\"t\"}}}]"

/* --- the operator's credentials, faked ----------------------------------------------------------
 */

static uint8_t test_key[BROKERPROTO_KEY_SIZE];
static bool have_key = true, have_ca = true, have_installation = true;
#define INSTALLATION "593d1d91fc1324ac"
static unsigned mac_calls;

static int fake_mac(void *ud, const char *ns, const char *sa, const char *paths,
                    const char *env_map, char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        (void) ud;
        mac_calls++;
        if (!have_key)
                return -ENODATA;
        return brokerproto_annotation_mac(test_key, ns, sa, paths, env_map, ret);
}

static int fake_installation(void *ud, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        (void) ud;
        if (!have_installation)
                return -ENODATA;
        memcpy(ret, INSTALLATION, sizeof(INSTALLATION));
        return 0;
}

static int fake_ca(void *ud, struct buf *ret) {
        (void) ud;
        return have_ca ? buf_append_str(ret, CA_PEM) : -ENODATA;
}

static struct admission_config cfg = {
        .init_image = INIT_IMAGE,
        .default_vault_address = "https://vault.example:8200",
        .modes = {.broker_address = BROKER_ADDR,
                  .unseal_pods = true,
                  .keys = {.annotation_mac = fake_mac,
                           .broker_ca = fake_ca,
                           .installation = fake_installation}},
};

/* --- reviews -------------------------------------------------------------------------------------
 */

struct result {
        struct json_doc *doc;
        bool allowed;
        int64_t code;
        const char *message;
        char *patch; /* decoded, NULL when none */
        char *pod;   /* the patched pod's text */
        struct json_doc *pod_doc;
        const struct json_value *p; /* its root */
        struct buf raw;
};

static void result_done(struct result *r) {
        json_doc_free(r->doc);
        json_doc_free(r->pod_doc);
        free(r->patch);
        free(r->pod);
        buf_done(&r->raw);
        *r = (struct result){};
}

static char *pod_text(const char *meta_extra, const char *annotations, const char *spec) {
        struct buf b = BUF_INIT(1 << 20, 0);
        char *s;
        if (buf_printf(&b,
                       "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
                       "\"namespace\":\"team\"%s,\"annotations\":{%s}},\"spec\":%s}",
                       meta_extra, annotations, spec) < 0 ||
            buf_steal(&b, &s, &(size_t){0}) < 0)
                abort();
        return s;
}

static void review(const struct admission_config *c, const char *pod, struct result *ret) {
        struct buf body = BUF_INIT(1 << 21, 0);
        struct result r = {.raw = BUF_INIT(1 << 22, 0)};
        const struct json_value *resp, *st;
        const char *p64;

        if (buf_printf(&body,
                       "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\","
                       "\"request\":{\"uid\":\"u1\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                       "\"kind\":\"Pod\"},\"namespace\":\"team\",\"operation\":\"CREATE\","
                       "\"object\":%s}}",
                       pod) < 0 ||
            admission_review(c, body.data, body.len, &r.raw, NULL) < 0 ||
            json_parse(r.raw.data, r.raw.len, 0, NULL, &r.doc) < 0)
                abort();
        buf_done(&body);
        resp = json_get(json_doc_root(r.doc), "response");
        (void) json_get_bool(resp, "allowed", &r.allowed);
        if (json_get_object(resp, "status", &st) == 0) {
                (void) json_get_int64(st, "code", &r.code);
                (void) json_get_string(st, "message", &r.message);
        }
        if (json_get_string(resp, "patch", &p64) == 0) {
                struct buf d = BUF_INIT(1 << 22, 0);
                if (base64_decode(&d, p64, strlen(p64), false) < 0 ||
                    buf_steal(&d, &r.patch, &(size_t){0}) < 0)
                        abort();
        }
        struct buf out = BUF_INIT(1 << 22, 0);
        if (r.allowed &&
            test_jsonpatch_apply(pod, strlen(pod), r.patch ? r.patch : "[]",
                                 r.patch ? strlen(r.patch) : 2, &out) == 0 &&
            buf_steal(&out, &r.pod, &(size_t){0}) == 0 &&
            json_parse(r.pod, strlen(r.pod), 0, NULL, &r.pod_doc) == 0)
                r.p = json_doc_root(r.pod_doc);
        buf_done(&out);
        *ret = r;
}

static const struct json_value *named(const struct json_value *arr, const char *name) {
        const char *s;
        JSON_FOREACH(e, arr)
        if (json_get_string(e, "name", &s) == 0 && strcmp(s, name) == 0)
                return e;
        return NULL;
}

static const struct json_value *container(const struct json_value *pod, const char *name) {
        return named(json_get_path(pod, "spec.containers"), name);
}

/* An env entry's value: "" for an entry without one, NULL when there is no entry. */
static const char *env_value(const struct json_value *ctr, const char *name) {
        const struct json_value *e = named(json_get(ctr, "env"), name);
        const char *v = NULL;
        if (!e)
                return NULL;
        return json_get_string(e, "value", &v) == 0 ? v : "";
}

static const char *ann(const struct json_value *pod, const char *key) {
        const char *v = NULL;
        (void) json_get_string(json_get_path(pod, "metadata.annotations"), key, &v);
        return v;
}

static const char *label(const struct json_value *pod, const char *key) {
        const char *v = NULL;
        (void) json_get_string(json_get_path(pod, "metadata.labels"), key, &v);
        return v;
}

/* The contract's reader over a container's env (a VAULT_TOKEN from a Secret reads as given). */
static const char *ctr_getenv(const char *name, void *ud) {
        const struct json_value *e = named(json_get(ud, "env"), name);
        const char *v = NULL;
        if (e && json_get(e, "valueFrom"))
                return "(from a Secret)";
        return e && json_get_string(e, "value", &v) == 0 ? v : NULL;
}

static int contract_of(const struct json_value *ctr, struct injection_settings *ret) {
        struct injection_error e = {};
        return injection_settings_parse(ctr_getenv, (void *) ctr, ret, &e);
}

static void want_mac(const char *sa, const char *paths, const char *env_map, char *out) {
        if (brokerproto_annotation_mac(test_key, "team", sa, paths, env_map, out) < 0)
                abort();
}

/* The patched pod reviewed again: allowed, no patch. */
static void check_idempotent(const char *t, const struct result *r) {
        struct result again = {};
        if (!r->pod) {
                ok(false, "%s: reviewed again (no patched pod)", t);
                return;
        }
        review(&cfg, r->pod, &again);
        ok(again.allowed && !again.patch, "%s: reviewed again, no patch", t);
        if (again.patch || !again.allowed)
                diag("  %s", again.patch ? again.patch : again.message);
        result_done(&again);
}

static void check_denied(const char *t, const char *pod, int64_t code, const char *want) {
        struct result r = {};
        review(&cfg, pod, &r);
        ok(!r.allowed && r.code == code && r.message && strstr(r.message, want),
           "%s: denied %lld (%s)", t, (long long) r.code, r.message ? r.message : "allowed");
        result_done(&r);
}

/* --- broker mode
 * ---------------------------------------------------------------------------------- */

static void test_broker(void) {
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        struct result r = {};
        char *pod = pod_text("",
                             BROKER_ANN ",\"cloudtaser.io/containers\":\"app\","
                                        "\"cloudtaser.io/broker-mac\":\"v1:forged\"",
                             "{\"serviceAccountName\":\"app\",\"containers\":[" APP "," SIDE "]}");
        review(&cfg, pod, &r);
        ok(r.allowed && r.p, "broker: admitted");
        if (!r.p) {
                diag("  %s", r.message ? r.message : "(patch not applied)");
                goto out;
        }
        const struct json_value *vol = named(json_get_path(r.p, "spec.volumes"),
                                             INJECTION_BROKER_TOKEN_VOLUME),
                                *tok = json_get_path(json_array_at(json_get_path(vol, "projected."
                                                                                      "sources"),
                                                                   0),
                                                     "serviceAccountToken");
        const char *aud = NULL, *path = NULL;
        int64_t exp = 0;
        (void) json_get_string(tok, "audience", &aud);
        (void) json_get_string(tok, "path", &path);
        (void) json_get_int64(tok, "expirationSeconds", &exp);
        ok(aud && strcmp(aud, BROKERPROTO_AUDIENCE) == 0 && path && strcmp(path, "token") == 0 &&
                   exp == INJECTION_BROKER_TOKEN_EXPIRY &&
                   json_count(json_get_path(vol, "projected.sources")) == 1,
           "broker: a projected token volume, audience %s, %d s, file token", BROKERPROTO_AUDIENCE,
           INJECTION_BROKER_TOKEN_EXPIRY);
        ok(named(json_get_path(r.p, "spec.volumes"), "cloudtaser-bin") != NULL,
           "broker: beside the wrapper's volume");

        const struct json_value *app = container(r.p, "app"), *side = container(r.p, "side");
        const struct json_value *m =
                named(json_get(app, "volumeMounts"), INJECTION_BROKER_TOKEN_VOLUME);
        const char *mp = NULL;
        bool ro = false;
        (void) json_get_string(m, "mountPath", &mp);
        (void) json_get_bool(m, "readOnly", &ro);
        ok(mp && strcmp(mp, INJECTION_BROKER_TOKEN_DIR) == 0 && ro,
           "broker: the wrapped container mounts it read-only at %s", INJECTION_BROKER_TOKEN_DIR);
        ok(!named(json_get(side, "volumeMounts"), INJECTION_BROKER_TOKEN_VOLUME) &&
                   !json_get(side, "env"),
           "broker: the container not wrapped gets neither the mount nor the env");
        is_str(env_value(app, "CLOUDTASER_BROKER_ADDRESS"), BROKER_ADDR, "broker: the address");
        is_str(env_value(app, "CLOUDTASER_BROKER_CA_PEM"), CA_PEM, "broker: the broker-tls CA");
        is_str(env_value(app, "VAULT_ADDR"), "", "broker: VAULT_ADDR written empty (unset)");
        is_str(env_value(app, "CLOUDTASER_BROKER_TOKEN_PATH"), "",
               "broker: CLOUDTASER_BROKER_TOKEN_PATH written empty (envFrom cannot set it)");
        is_str(env_value(app, "CLOUDTASER_UNSEAL_CA_PEM"), "", "broker: no unseal CA");
        struct injection_settings s;
        ok(contract_of(app, &s) == 0 && s.auth == INJECTION_AUTH_BROKER && !s.vault_addr &&
                   strcmp(s.broker_token_path, INJECTION_BROKER_TOKEN_PATH) == 0,
           "broker: the contract's reader accepts the env, token at %s",
           INJECTION_BROKER_TOKEN_PATH);
        injection_settings_done(&s);

        want_mac("app", PATHS, "", mac);
        is_str(ann(r.p, BROKERPROTO_ANNOTATION_MAC), mac,
               "broker: the pod author's broker-mac is replaced by the MAC of ns, sa, paths");
        ok(!label(r.p, "cloudtaser.io/sealed"), "broker: no sealed label");
        check_idempotent("broker", &r);
out:
        result_done(&r);
        free(pod);

        /* Default service account, an env map, volumeMounts already there, labels present. */
        pod = pod_text(",\"labels\":{\"app\":\"web\"}",
                       BROKER_ANN ",\"cloudtaser.io/env-map\":\"password=PGPASSWORD\"",
                       "{\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}],\"containers\":[{"
                       "\"name\":\"app\",\"command\":[\"/x\"],\"volumeMounts\":[{\"name\":"
                       "\"data\",\"mountPath\":\"/data\"}]}]}");
        review(&cfg, pod, &r);
        want_mac("default", PATHS, "password=PGPASSWORD", mac);
        ok(r.p && strcmp(ann(r.p, BROKERPROTO_ANNOTATION_MAC), mac) == 0,
           "broker: the MAC names the default service account and the env map");
        ok(r.p &&
                   named(json_get(container(r.p, "app"), "volumeMounts"),
                         INJECTION_BROKER_TOKEN_VOLUME) &&
                   named(json_get(container(r.p, "app"), "volumeMounts"), "data"),
           "broker: the token mount is added beside the container's own");
        check_idempotent("broker, existing mounts", &r);
        result_done(&r);
        free(pod);

        /* The pod author's volume under our name is replaced by ours. */
        pod = pod_text("", BROKER_ANN,
                       "{\"volumes\":[{\"name\":\"" INJECTION_BROKER_TOKEN_VOLUME
                       "\",\"emptyDir\":{}}],\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        vol = r.p ? named(json_get_path(r.p, "spec.volumes"), INJECTION_BROKER_TOKEN_VOLUME) : NULL;
        ok(vol && json_get(vol, "projected") && !json_get(vol, "emptyDir"),
           "broker: a volume of the pod under the token volume's name is replaced");
        check_idempotent("broker, replaced volume", &r);
        result_done(&r);
        free(pod);

        /* Another webhook or defaulting reorders our objects: still no patch. */
        pod = pod_text("", BROKER_ANN, "{\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        if (r.pod) {
                static const char reorder[] =
                        "[{\"op\":\"replace\",\"path\":\"/spec/volumes/"
                        "1\",\"value\":{\"projected\":"
                        "{\"sources\":[{\"serviceAccountToken\":{\"path\":\"token\","
                        "\"expirationSeconds\":600,\"audience\":\"cloudtaser-broker\"}}],"
                        "\"defaultMode\":420},\"name\":\"cloudtaser-broker-token\"}}]";
                struct buf out = BUF_INIT(1 << 22, 0);
                struct result again = {};
                ok(test_jsonpatch_apply(r.pod, strlen(r.pod), reorder, strlen(reorder), &out) == 0,
                   "broker: members reordered");
                review(&cfg, buf_cstr(&out), &again);
                ok(again.allowed && !again.patch, "broker: reordered, still no patch");
                result_done(&again);
                buf_done(&out);
        }
        result_done(&r);
        free(pod);
}

static void test_broker_denied(void) {
        char *pod;
        pod = pod_text("", BROKER_ANN ",\"cloudtaser.io/vault-address\":\"https://vault.example\"",
                       "{\"containers\":[" APP "]}");
        check_denied("broker with a vault address", pod, 400,
                     "cloudtaser.io/vault-address is not used in broker mode");
        free(pod);

        pod = pod_text("", BROKER_ANN, "{\"containers\":[" APP "]}");
        have_ca = false;
        check_denied("broker, the operator without the broker CA", pod, 500,
                     "has not loaded the CA of its broker-tls record");
        have_ca = true;
        have_key = false;
        check_denied("broker, the operator without the annotation key", pod, 500,
                     "has not loaded the annotation key (its broker-auth record)");
        have_key = true;
        struct admission_config nokeys = cfg;
        nokeys.modes.keys = (struct modes_keys){};
        struct result r = {};
        review(&nokeys, pod, &r);
        ok(!r.allowed && r.code == 500 && r.message && strstr(r.message, "--tls-cert-file"),
           "broker, an operator without a credential store: denied, saying why (%s)", r.message);
        result_done(&r);
        struct admission_config noaddr = cfg;
        noaddr.modes.broker_address = NULL;
        review(&noaddr, pod, &r);
        ok(!r.allowed && r.message &&
                   strstr(r.message, "CLOUDTASER_BROKER_ADDRESS is required for broker auth"),
           "broker, no broker address: the contract's denial (%s)", r.message);
        result_done(&r);
        free(pod);

        /* The pod may not set the modes' variables: denied, or (those the operator writes a
         * value to) replaced by the operator's value, every entry of that name. */
        static const char *const vars[] = {"CLOUDTASER_BROKER_ADDRESS", "CLOUDTASER_BROKER_CA_PEM",
                                           "CLOUDTASER_BROKER_TOKEN_PATH",
                                           "CLOUDTASER_UNSEAL_CA_PEM", "CLOUDTASER_UNSEAL_LISTEN"};
        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                char spec[512];
                (void) snprintf(spec, sizeof(spec),
                                "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"],"
                                "\"env\":[{\"name\":\"%s\",\"value\":\"/tmp/mine\"},{\"name\":"
                                "\"%s\",\"value\":\"/tmp/mine\"}]}]}",
                                vars[i], vars[i]);
                pod = pod_text("", BROKER_ANN, spec);
                review(&cfg, pod, &r);
                bool mine = false;
                JSON_FOREACH(e, r.p ? json_get(container(r.p, "app"), "env") : NULL) {
                        const char *n, *v;
                        mine = mine ||
                               (json_get_string(e, "name", &n) == 0 && strcmp(n, vars[i]) == 0 &&
                                json_get_string(e, "value", &v) == 0 && strstr(v, "/tmp/mine"));
                }
                ok(r.allowed ? r.p && !mine
                             : r.message && strstr(r.message, "only the operator may set"),
                   "the pod sets %s: %s", vars[i], r.allowed ? "replaced" : r.message);
                result_done(&r);
                free(pod);
        }

        pod = pod_text("", BROKER_ANN ",\"cloudtaser.io/containers\":\"app\"",
                       "{\"containers\":[" APP ",{\"name\":\"side\",\"command\":[\"/y\"],"
                       "\"volumeMounts\":[{\"name\":\"" INJECTION_BROKER_TOKEN_VOLUME
                       "\",\"mountPath\":\"/t\"}]}]}");
        check_denied("a container not wrapped mounts the broker token", pod, 400,
                     "side (not wrapped) mounts the volume cloudtaser-broker-token");
        free(pod);
        pod = pod_text("", BROKER_ANN,
                       "{\"initContainers\":[{\"name\":\"i\",\"command\":[\"/i\"],"
                       "\"volumeMounts\":[{\"name\":\"" INJECTION_BROKER_TOKEN_VOLUME
                       "\",\"mountPath\":\"/t\"}]}],\"containers\":[" APP "]}");
        check_denied("an init container mounts the broker token", pod, 400,
                     "i (not wrapped) mounts the volume");
        free(pod);
        pod = pod_text(
                "", BROKER_ANN,
                "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"],"
                "\"volumeMounts\":[{\"name\":\"d\",\"mountPath\":\"" INJECTION_BROKER_TOKEN_DIR
                "/\"}]}]}");
        check_denied("another volume at the token's directory", pod, 400,
                     "already mounts another volume at " INJECTION_BROKER_TOKEN_DIR);
        free(pod);
        pod = pod_text("", BROKER_ANN,
                       "{\"hostAliases\":[{\"ip\":\"10.0.0.9\",\"hostnames\":[\"cloudtaser-broker."
                       "cloudtaser-system.svc\"]}],\"containers\":[" APP "]}");
        check_denied("hostAliases maps the broker's host", pod, 403, "spec.hostAliases maps");
        free(pod);
}

/* --- sealed token mode
 * ---------------------------------------------------------------------------- */

static void test_sealed(void) {
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];
        struct result r = {};
        char *pod = pod_text("", TOKEN_ANN,
                             "{\"serviceAccountName\":\"app\",\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        ok(r.allowed && r.p, "sealed: admitted");
        if (!r.p) {
                diag("  %s", r.message ? r.message : "(patch not applied)");
                goto out;
        }
        const struct json_value *app = container(r.p, "app");
        is_str(env_value(app, "CLOUDTASER_UNSEAL_CA_PEM"), CA_PEM, "sealed: the unseal CA");
        is_str(env_value(app, "CLOUDTASER_BROKER_CA_PEM"), "", "sealed: no broker CA");
        is_str(label(r.p, "cloudtaser.io/sealed"), INSTALLATION,
               "sealed: the label, the installation id (labels added)");
        const struct json_value *g = json_get_path(app, "readinessProbe.httpGet");
        const char *path = NULL, *scheme = NULL;
        int64_t port = 0;
        (void) json_get_string(g, "path", &path);
        (void) json_get_string(g, "scheme", &scheme);
        (void) json_get_int64(g, "port", &port);
        ok(path && strcmp(path, "/v1/ready") == 0 && scheme && strcmp(scheme, "HTTPS") == 0 &&
                   port == INJECTION_UNSEAL_PORT,
           "sealed: readinessProbe httpGet https :%d/v1/ready", INJECTION_UNSEAL_PORT);
        want_mac("app", PATHS, "", mac);
        is_str(ann(r.p, BROKERPROTO_ANNOTATION_MAC), mac, "sealed: the annotation MAC");
        struct injection_settings s;
        ok(contract_of(app, &s) == 0 && injection_settings_sealed(&s),
           "sealed: the contract's reader accepts it, sealed");
        injection_settings_done(&s);
        check_idempotent("sealed", &r);
out:
        result_done(&r);
        free(pod);

        /* A container's own readiness probe is kept; labels present get ours beside. */
        pod = pod_text(",\"labels\":{\"app\":\"web\",\"cloudtaser.io/inject\":\"true\"}", TOKEN_ANN,
                       "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"],"
                       "\"readinessProbe\":{\"tcpSocket\":{\"port\":80}}}]}");
        review(&cfg, pod, &r);
        ok(r.p && json_get_path(container(r.p, "app"), "readinessProbe.tcpSocket") &&
                   !json_get_path(container(r.p, "app"), "readinessProbe.httpGet"),
           "sealed: the container's own readiness probe is kept");
        ok(r.p && label(r.p, "cloudtaser.io/sealed") && label(r.p, "app") &&
                   strcmp(label(r.p, "cloudtaser.io/sealed"), INSTALLATION) == 0,
           "sealed: the label beside the pod's own");
        check_idempotent("sealed, own probe", &r);
        result_done(&r);
        free(pod);

        /* One container with a token, one sealed: only the sealed one changes. */
        pod = pod_text("", TOKEN_ANN,
                       "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"]," TOKEN_ENV
                       "}," SIDE "]}");
        review(&cfg, pod, &r);
        ok(r.p && !json_get(container(r.p, "app"), "readinessProbe") &&
                   strcmp(env_value(container(r.p, "app"), "CLOUDTASER_UNSEAL_CA_PEM"), "") == 0 &&
                   json_get(container(r.p, "side"), "readinessProbe") &&
                   strcmp(env_value(container(r.p, "side"), "CLOUDTASER_UNSEAL_CA_PEM"), CA_PEM) ==
                           0,
           "sealed: only the container without a token is sealed");
        check_idempotent("sealed, mixed", &r);
        result_done(&r);
        free(pod);

        /* Token mode with the token delivered: nothing of the sealed mode. */
        pod = pod_text("", TOKEN_ANN,
                       "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"]," TOKEN_ENV "}]}");
        review(&cfg, pod, &r);
        ok(r.p && !label(r.p, "cloudtaser.io/sealed") && !ann(r.p, BROKERPROTO_ANNOTATION_MAC) &&
                   !json_get(container(r.p, "app"), "readinessProbe"),
           "token with VAULT_TOKEN: no label, no MAC, no probe");
        result_done(&r);
        free(pod);

        /* Kubernetes auth: no MAC either, and the annotation key is not asked for. */
        mac_calls = 0;
        pod = pod_text("", KUBE_ANN, "{\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        ok(r.p && !ann(r.p, BROKERPROTO_ANNOTATION_MAC) && mac_calls == 0,
           "kubernetes auth: no MAC, the key not used");
        result_done(&r);
        free(pod);
}

static void test_sealed_denied(void) {
        char *pod = pod_text("", TOKEN_ANN, "{\"containers\":[" APP "]}");
        struct admission_config off = cfg;
        off.modes.unseal_pods = false;
        struct result r = {};
        review(&off, pod, &r);
        ok(!r.allowed && r.code == 400 && r.message &&
                   strstr(r.message, "container app: cloudtaser.io/vault-auth-method is token, but "
                                     "nothing delivers the token") &&
                   strstr(r.message, "--unseal-pods=false") &&
                   strstr(r.message, "valueFrom.secretKeyRef"),
           "unsealing off: no way to receive a token, denied (%s)", r.message);
        result_done(&r);
        have_ca = false;
        check_denied("sealed, the operator without the CA", pod, 500,
                     "container app would start sealed");
        have_ca = true;
        have_key = false;
        check_denied("sealed, the operator without the annotation key", pod, 500,
                     "the annotation key (its broker-auth record)");
        have_key = true;
        have_installation = false;
        check_denied("sealed, the operator without the installation id", pod, 500,
                     "the installation id (its broker-token record)");
        have_installation = true;
        free(pod);

        pod = pod_text("", TOKEN_ANN, "{\"containers\":[" APP "," SIDE "]}");
        check_denied("two sealed containers", pod, 400, "a pod has one unseal port (8199)");
        free(pod);
        pod = pod_text("", TOKEN_ANN ",\"cloudtaser.io/containers\":\"app\"",
                       "{\"containers\":[" APP ",{\"name\":\"side\",\"command\":[\"/y\"],"
                       "\"ports\":[{\"containerPort\":8199}]}]}");
        check_denied("another container on the unseal port", pod, 400,
                     "container side declares port 8199");
        free(pod);
        pod = pod_text(",\"labels\":{\"cloudtaser.io/sealed\":\"true\"}", KUBE_ANN,
                       "{\"containers\":[" APP "]}");
        check_denied("the sealed label on a pod that is not sealed", pod, 403,
                     "the label cloudtaser.io/sealed is set by the operator only");
        free(pod);
        pod = pod_text(",\"labels\":{\"cloudtaser.io/sealed\":\"no\"}", TOKEN_ANN,
                       "{\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        ok(r.p && strcmp(label(r.p, "cloudtaser.io/sealed"), INSTALLATION) == 0,
           "sealed: a label value of the pod author is replaced");
        result_done(&r);
        free(pod);
        /* Another installation's value, written by the pod author: replaced by this one's (the
         * other installation's unsealer never selects the pod). */
        pod = pod_text(",\"labels\":{\"cloudtaser.io/sealed\":\"00aa00aa00aa00aa\"}", TOKEN_ANN,
                       "{\"containers\":[" APP "]}");
        review(&cfg, pod, &r);
        ok(r.p && strcmp(label(r.p, "cloudtaser.io/sealed"), INSTALLATION) == 0,
           "sealed: another installation's label value is replaced by this one's");
        result_done(&r);
        free(pod);
}

/* kubectl debug: an ephemeral container may not mount the broker token. */
static void test_ephemeral(void) {
        static const char *const bodies[] = {
                "\"name\":\"dbg\",\"image\":\"busybox\",\"volumeMounts\":[{\"name\":"
                "\"" INJECTION_BROKER_TOKEN_VOLUME "\",\"mountPath\":\"/t\"}]",
                "\"name\":\"dbg\",\"image\":\"busybox\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                struct buf b = BUF_INIT(1 << 16, 0), out = BUF_INIT(1 << 20, 0);
                struct json_doc *d = NULL;
                bool allowed = true;
                const char *msg = NULL;
                if (buf_printf(&b,
                               "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/"
                               "v1\",\"request\":{\"uid\":\"u\",\"kind\":{\"group\":\"\","
                               "\"version\":\"v1\",\"kind\":\"Pod\"},\"subResource\":"
                               "\"ephemeralcontainers\",\"namespace\":\"team\",\"operation\":"
                               "\"UPDATE\",\"object\":{\"metadata\":{\"name\":\"web\"},"
                               "\"spec\":{\"containers\":[" APP
                               "],\"ephemeralContainers\":[{%s}]}}}}",
                               bodies[i]) < 0 ||
                    admission_review(&cfg, b.data, b.len, &out, NULL) < 0 ||
                    json_parse(out.data, out.len, 0, NULL, &d) < 0)
                        abort();
                const struct json_value *resp = json_get(json_doc_root(d), "response");
                (void) json_get_bool(resp, "allowed", &allowed);
                (void) json_get_string(json_get(resp, "status"), "message", &msg);
                if (i == 0)
                        ok(!allowed && msg && strstr(msg, "dbg (not wrapped) mounts the volume"),
                           "an ephemeral container mounting the broker token is denied (%s)", msg);
                else
                        ok(allowed, "an ephemeral container without it is allowed");
                json_doc_free(d);
                buf_done(&b);
                buf_done(&out);
        }
}

static void test_default_address(void) {
        char out[128];
        ok(modes_default_broker_address("cloudtaser-broker", "ops", out, sizeof(out)) == 0 &&
                   strcmp(out, "https://cloudtaser-broker.ops.svc:8443") == 0,
           "default broker address: %s", out);
        is_int(modes_default_broker_address("Bad_Name", "ops", out, sizeof(out)), -EINVAL,
               "a service name that is not a DNS label is refused");
        is_int(modes_default_broker_address("cloudtaser-broker", "ops", out, 10), -E2BIG,
               "too small a buffer: -E2BIG");
        char *esc = NULL;
        ok(modes_env_escape("a$b$$", &esc) == 0 && strcmp(esc, "a$$b$$$$") == 0,
           "'$' doubled for env values");
        free(esc);
}

int main(void) {
        for (size_t i = 0; i < sizeof(test_key); i++)
                test_key[i] = (uint8_t) (i * 7 + 1);
        test_broker();
        test_broker_denied();
        test_sealed();
        test_sealed_denied();
        test_ephemeral();
        test_default_address();
        return tap_done();
}
