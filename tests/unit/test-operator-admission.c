/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of operator/admission: table-driven over pod shapes. Every injected pod is checked by
 * applying the returned patch (tests/lib/jsonpatch-apply.c, the API server's patch semantics:
 * an add under a missing parent fails) and inspecting the result: the argv Kubernetes will run
 * (command ++ args) must be ["/cloudtaser/wrapper", "--"] ++ the original argv, the wrapper's
 * environment, the volume, the mounts, IPC_LOCK, the init container; the environment and argv
 * of every wrapped container must be accepted by the wrapper's own configuration reader
 * (tests/lib/wrapper-env.c over wrapper/config.c); then the patched pod is reviewed again and
 * must come back with no patch (idempotence).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/base64.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/admission.h"
#include "operator/annotations.h"
#include "tests/lib/jsonpatch-apply.h"
#include "tests/lib/wrapper-env.h"
#include "tests/tap.h"

#define BASE_ANN                                                                  \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"app\"," \
        "\"cloudtaser.io/secret-paths\":\"secret/data/app/db\""
#define FULL_ANN                                                                         \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"app\","        \
        "\"cloudtaser.io/secret-paths\":\"secret/data/app/db,secret/data/app/api\","     \
        "\"cloudtaser.io/vault-auth-path\":\"auth/k8s-prod\",\"cloudtaser.io/env-map\":" \
        "\"password=PGPASSWORD;api_key=API_KEY\",\"cloudtaser.io/vault-skip-verify\":"   \
        "\"false\",\"cloudtaser.io/delivery\":\"memfd\",\"cloudtaser.io/rotation\":"     \
        "\"signal:HUP\""
#define NGINX_ORIG "[\"/docker-entrypoint.sh\",\"nginx\",\"-g\",\"daemon off;\"]"
#define ONE(c) "{\"containers\":[" c "]}"
#define INIT_IMAGE "ghcr.io/cloudtaser/cloudtaser-wrapper:1.0"

/* --- a fake registry -------------------------------------------------------------------------- */

struct fake_image {
        const char *image;
        const char *entrypoint[4];
        const char *cmd[4];
        int error; /* a lookup failure */
};

static const struct fake_image images[] = {
        {"nginx", {"/docker-entrypoint.sh"}, {"nginx", "-g", "daemon off;"}, 0},
        {"busybox", {NULL}, {"sh"}, 0},
        {"jmalloc/echo-server", {"/bin/echo-server"}, {NULL}, 0},
        {"scratch-app", {NULL}, {NULL}, 0},
        {"shell", {NULL}, {"sh", "-c", "echo $$ $(HOME) $"}, 0},
        {"private.example/app:1", {NULL}, {NULL}, -EACCES},
};

static unsigned lookups;
static char last_ns[64], last_secrets[256];

static char **strv_dup(const char *const *v) {
        size_t n = 0;
        while (n < 4 && v[n])
                n++;
        char **r = calloc(n + 1, sizeof(char *));
        if (!r)
                abort();
        for (size_t i = 0; i < n; i++)
                if (!(r[i] = strdup(v[i])))
                        abort();
        return r;
}

static int fake_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                       size_t n_names, struct registry_image_config *ret, char *err,
                       size_t errlen) {
        lookups++;
        (void) snprintf(last_ns, sizeof(last_ns), "%s", ns);
        last_secrets[0] = '\0';
        for (size_t i = 0; i < n_names; i++) {
                size_t l = strlen(last_secrets);
                (void) snprintf(last_secrets + l, sizeof(last_secrets) - l, "%s%s", i ? "," : "",
                                names[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(images); i++) {
                if (strcmp(images[i].image, image) != 0)
                        continue;
                if (images[i].error) {
                        (void) snprintf(err, errlen, "registry private.example: 401 unauthorized");
                        return images[i].error;
                }
                struct registry_image_config c = {};
                c.entrypoint = strv_dup(images[i].entrypoint);
                c.cmd = strv_dup(images[i].cmd);
                while (c.entrypoint[c.n_entrypoint])
                        c.n_entrypoint++;
                while (c.cmd[c.n_cmd])
                        c.n_cmd++;
                *ret = c;
                return 0;
        }
        (void) snprintf(err, errlen, "manifest unknown");
        return -ENOENT;
}

/* --- reviews ---------------------------------------------------------------------------------- */

static const char *const allowed_addrs[] = {"https://vault.example:8200",
                                            "https://vault-2.example"};
static struct admission_config cfg = {
        .init_image = INIT_IMAGE,
        .default_vault_address = "https://vault.example:8200",
        .default_auth_path = NULL,
        .lookup = fake_lookup,
};

struct result {
        int rc;
        const char *outcome;
        struct json_doc *doc; /* the response */
        const struct json_value *resp;
        bool allowed;
        int64_t code;
        const char *message;
        char *patch; /* decoded, NULL when none */
        struct buf raw;
};

static void result_done(struct result *r) {
        json_doc_free(r->doc);
        free(r->patch);
        buf_done(&r->raw);
        *r = (struct result){};
}

static char *review_text(const char *api_version, const char *uid, const char *kind,
                         const char *operation, const char *object, bool dry_run) {
        struct buf b = BUF_INIT(4u * 1024 * 1024, 0);
        if (buf_printf(&b,
                       "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"%s\",\"request\":{\"uid\":"
                       "\"%s\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"%s\"},"
                       "\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"
                       "\"namespace\":\"team\",\"operation\":\"%s\",\"userInfo\":{\"username\":"
                       "\"system:serviceaccount:kube-system:replicaset-controller\"},\"object\":%"
                       "s,\"oldObject\":null,\"dryRun\":%s}}",
                       api_version, uid, kind, operation, object, dry_run ? "true" : "false") < 0)
                abort();
        char *s;
        size_t n;
        if (buf_steal(&b, &s, &n) < 0)
                abort();
        return s;
}

static char *pod_text(const char *annotations, const char *spec) {
        struct buf b = BUF_INIT(4u * 1024 * 1024, 0);
        if (buf_printf(&b,
                       "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
                       "\"namespace\":\"team\",\"annotations\":{%s}},\"spec\":%s}",
                       annotations, spec) < 0)
                abort();
        char *s;
        size_t n;
        if (buf_steal(&b, &s, &n) < 0)
                abort();
        return s;
}

static void run_text(const struct admission_config *c, const char *body, size_t len,
                     struct result *ret) {
        struct result r = {.raw = BUF_INIT(32u * 1024 * 1024, 0)};
        r.rc = admission_review(c, body, len, &r.raw, &r.outcome);
        if (r.rc == 0) {
                const struct json_value *st;
                const char *p64;
                if (json_parse(r.raw.data, r.raw.len, 0, NULL, &r.doc) < 0)
                        abort(); /* reported by the caller through r.doc == NULL */
                r.resp = json_get(json_doc_root(r.doc), "response");
                (void) json_get_bool(r.resp, "allowed", &r.allowed);
                if (json_get_object(r.resp, "status", &st) == 0) {
                        (void) json_get_int64(st, "code", &r.code);
                        (void) json_get_string(st, "message", &r.message);
                }
                if (json_get_string(r.resp, "patch", &p64) == 0) {
                        struct buf d = BUF_INIT(16u * 1024 * 1024, 0);
                        size_t n;
                        if (base64_decode(&d, p64, strlen(p64), false) < 0 ||
                            buf_steal(&d, &r.patch, &n) < 0)
                                abort();
                }
        }
        *ret = r;
}

static void run_pod(const struct admission_config *c, const char *pod, bool dry_run,
                    struct result *ret) {
        char *body = review_text("admission.k8s.io/v1", "uid-1", "Pod", "CREATE", pod, dry_run);
        run_text(c, body, strlen(body), ret);
        free(body);
}

/* Applies r's patch to pod: the patched pod's text (caller frees), NULL when it fails. */
static char *apply(const char *pod, const struct result *r, int *ret_err) {
        struct buf out = BUF_INIT(32u * 1024 * 1024, 0);
        char *s;
        size_t n;
        int k = test_jsonpatch_apply(pod, strlen(pod), r->patch ? r->patch : "[]",
                                     r->patch ? strlen(r->patch) : 2, &out);
        if (ret_err)
                *ret_err = k;
        if (k < 0 || buf_steal(&out, &s, &n) < 0) {
                buf_done(&out);
                return NULL;
        }
        return s;
}

/* --- checks of an injected pod ------------------------------------------------------------------
 */

static size_t count_named(const struct json_value *arr, const char *name) {
        size_t n = 0;
        const char *s;
        JSON_FOREACH(e, arr)
        if (json_get_string(e, "name", &s) == 0 && strcmp(s, name) == 0)
                n++;
        return n;
}

static const struct json_value *named(const struct json_value *arr, const char *name) {
        const char *s;
        JSON_FOREACH(e, arr)
        if (json_get_string(e, "name", &s) == 0 && strcmp(s, name) == 0)
                return e;
        return NULL;
}

static const char *env_value(const struct json_value *ctr, const char *name) {
        const char *v = NULL;
        (void) json_get_string(named(json_get(ctr, "env"), name), "value", &v);
        return v;
}

/* command ++ args as a JSON array text. */
static void argv_of(const struct json_value *ctr, struct buf *out) {
        bool first = true;
        (void) buf_append_byte(out, '[');
        const char *keys[] = {"command", "args"};
        for (size_t k = 0; k < 2; k++)
                JSON_FOREACH(e, json_get(ctr, keys[k])) {
                        const char *s = "?";
                        (void) json_string(e, &s);
                        if (!first)
                                (void) buf_append_byte(out, ',');
                        (void) json_append_quoted(out, s);
                        first = false;
                }
        (void) buf_append_byte(out, ']');
}

static bool same_json(const char *a, const char *b) {
        _cleanup_json_doc_ struct json_doc *x = NULL, *y = NULL;
        _cleanup_buf_ struct buf pa = BUF_INIT(1 << 20, 0), pb = BUF_INIT(1 << 20, 0);
        if (!a || !b || json_parse(a, strlen(a), 0, NULL, &x) < 0 ||
            json_parse(b, strlen(b), 0, NULL, &y) < 0)
                return false;
        (void) json_print(json_doc_root(x), &pa);
        (void) json_print(json_doc_root(y), &pb);
        return strcmp(buf_cstr(&pa), buf_cstr(&pb)) == 0;
}

/* The container as it must be when wrapped with original argv orig (JSON text). */
static void check_wrapped(const char *t, const struct json_value *ctr, const char *orig,
                          const char *vault_addr) {
        _cleanup_buf_ struct buf got = BUF_INIT(1 << 20, 0), want = BUF_INIT(1 << 20, 0);
        const char *name = "?";
        (void) json_get_string(ctr, "name", &name);

        argv_of(ctr, &got);
        (void) buf_printf(&want, "[\"/cloudtaser/wrapper\",\"--\"%s%.*s]",
                          strcmp(orig, "[]") ? "," : "", (int) strlen(orig) - 2, orig + 1);
        ok(same_json(buf_cstr(&got), buf_cstr(&want)), "%s: %s runs the wrapper then %s", t, name,
           orig);
        if (!same_json(buf_cstr(&got), buf_cstr(&want)))
                diag("  argv %s", buf_cstr(&got));
        ok(same_json(env_value(ctr, "CLOUDTASER_ORIGINAL_CMD"), orig),
           "%s: %s CLOUDTASER_ORIGINAL_CMD is the original argv", t, name);
        is_str(env_value(ctr, "VAULT_ADDR"), vault_addr, "%s: %s VAULT_ADDR", t, name);
        static const char *const ours[] = {"VAULT_ADDR", "VAULT_AUTH_METHOD",
                                           "CLOUDTASER_SECRET_PATHS", "CLOUDTASER_ORIGINAL_CMD"};
        /* Each present, and every entry of that name (a user's duplicates too) has the
         * operator's value and nothing else. */
        bool once = true;
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                const char *first = env_value(ctr, ours[i]), *v;
                size_t seen = 0;
                JSON_FOREACH(e, json_get(ctr, "env")) {
                        if (json_get_string(e, "name", &v) < 0 || strcmp(v, ours[i]) != 0)
                                continue;
                        seen++;
                        once = once && json_count(e) == 2 && json_get_string(e, "value", &v) == 0 &&
                               first && strcmp(v, first) == 0;
                }
                once = once && seen >= 1;
        }
        ok(once, "%s: %s has each wrapper variable, with the operator's value", t, name);
        const struct json_value *m = named(json_get(ctr, "volumeMounts"), "cloudtaser-bin");
        const char *mp = NULL;
        bool ro = false;
        (void) json_get_string(m, "mountPath", &mp);
        (void) json_get_bool(m, "readOnly", &ro);
        ok(count_named(json_get(ctr, "volumeMounts"), "cloudtaser-bin") == 1 && mp &&
                   strcmp(mp, "/cloudtaser") == 0 && ro,
           "%s: %s mounts cloudtaser-bin read-only at /cloudtaser, once", t, name);
        size_t ipc = 0;
        JSON_FOREACH(cap, json_get_path(ctr, "securityContext.capabilities.add")) {
                const char *s;
                if (json_string(cap, &s) == 0 && strcmp(s, "IPC_LOCK") == 0)
                        ipc++;
        }
        is_int(ipc, 1, "%s: %s has IPC_LOCK added once", t, name);
}

/* The property: what the webhook admitted, the wrapper accepts. */
static void check_wrapper_accepts(const char *t, const struct json_value *pod) {
        char reason[512] = "";
        size_t n = 0;
        int k = test_wrapper_accepts_pod(pod, &n, reason, sizeof(reason));
        ok(k == 0 && n > 0, "%s: the wrapper accepts the environment of its %zu container(s)", t,
           n);
        if (k < 0)
                diag("  wrapper refuses: %s", reason);
}

static void check_pod_level(const char *t, const struct json_value *pod) {
        const struct json_value *spec = json_get(pod, "spec");
        const struct json_value *vol = named(json_get(spec, "volumes"), "cloudtaser-bin");
        const char *medium = NULL, *size = NULL, *s = NULL;
        (void) json_get_string(json_get(vol, "emptyDir"), "medium", &medium);
        (void) json_get_string(json_get(vol, "emptyDir"), "sizeLimit", &size);
        ok(count_named(json_get(spec, "volumes"), "cloudtaser-bin") == 1 && medium &&
                   strcmp(medium, "Memory") == 0 && size && strcmp(size, "8Mi") == 0,
           "%s: one in-memory emptyDir cloudtaser-bin with a size limit", t);
        const struct json_value *init = named(json_get(spec, "initContainers"), "cloudtaser-init");
        is_int(count_named(json_get(spec, "initContainers"), "cloudtaser-init"), 1,
               "%s: one cloudtaser-init", t);
        (void) json_get_string(init, "image", &s);
        is_str(s, INIT_IMAGE, "%s: init image from the configuration", t);
        const struct json_value *sc = json_get(init, "securityContext");
        bool nonroot = false, rofs = false, esc = true;
        int64_t uid = 0;
        const char *seccomp = NULL, *drop = NULL;
        (void) json_get_bool(sc, "runAsNonRoot", &nonroot);
        (void) json_get_bool(sc, "readOnlyRootFilesystem", &rofs);
        (void) json_get_bool(sc, "allowPrivilegeEscalation", &esc);
        (void) json_get_int64(sc, "runAsUser", &uid);
        (void) json_get_string(json_get(sc, "seccompProfile"), "type", &seccomp);
        (void) json_string(json_array_at(json_get_path(sc, "capabilities.drop"), 0), &drop);
        ok(nonroot && rofs && !esc && uid == 65532 && seccomp &&
                   strcmp(seccomp, "RuntimeDefault") == 0 && drop && strcmp(drop, "ALL") == 0,
           "%s: init container security context is restrictive", t);
        ok(json_get_path(init, "resources.requests") && json_get_path(init, "resources.limits"),
           "%s: init container has requests and limits", t);
        ok(json_get(json_get_path(pod, "metadata.annotations"), "cloudtaser.io/injected"),
           "%s: pod annotated cloudtaser.io/injected", t);
}

/* Every op is add or replace with a path starting with '/'. */
static void check_patch_shape(const char *t, const char *patch) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        bool good = patch && json_parse(patch, strlen(patch), 0, NULL, &d) == 0 &&
                    json_type(json_doc_root(d)) == JSON_ARRAY;
        if (good)
                JSON_FOREACH(op, json_doc_root(d)) {
                        const char *o = "", *p = "";
                        (void) json_get_string(op, "op", &o);
                        (void) json_get_string(op, "path", &p);
                        good = good && (strcmp(o, "add") == 0 || strcmp(o, "replace") == 0) &&
                               p[0] == '/' && json_get(op, "value");
                }
        ok(good, "%s: the patch is an array of add/replace ops with absolute paths", t);
}

/* --- the table -----------------------------------------------------------------------------------
 */

struct kase {
        const char *name;
        const char *annotations; /* members of metadata.annotations */
        const char *spec;
        int code;               /* 0: allowed */
        const char *message;    /* a substring of the denial, or of a warning when allowed */
        const char *orig[3];    /* per container: the original argv (JSON), NULL = not wrapped */
        int lookups;            /* expected registry lookups, -1: do not check */
        const char *first_init; /* expected name of initContainers[0] */
        void (*extra)(const char *t, const struct json_value *pod);
};

static void extra_keeps_sidecar(const char *t, const struct json_value *pod) {
        const struct json_value *side = json_array_at(json_get_path(pod, "spec.containers"), 1);
        ok(!json_get(side, "env") && !json_get(side, "volumeMounts") &&
                   !json_get(side, "securityContext"),
           "%s: the container not selected is untouched", t);
}

static void extra_user_env(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        is_int(count_named(json_get(c, "env"), "VAULT_ADDR"), 2,
               "%s: duplicate VAULT_ADDR entries both replaced in place", t);
        const struct json_value *e0 = json_array_at(json_get(c, "env"), 0);
        const char *v = NULL;
        (void) json_get_string(e0, "value", &v);
        ok(v && strcmp(v, "https://vault.example:8200") == 0 && !json_get(e0, "valueFrom"),
           "%s: the first VAULT_ADDR (valueFrom) replaced by the operator's value", t);
        is_str(env_value(c, "KEEP_ME"), "1", "%s: the user's other variables stay", t);
}

static void extra_security_context(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        int64_t uid = 0;
        const char *first = NULL;
        (void) json_get_int64(json_get(c, "securityContext"), "runAsUser", &uid);
        (void) json_string(json_array_at(json_get_path(c, "securityContext.capabilities.add"), 0),
                           &first);
        is_int(uid, 1000, "%s: the user's runAsUser is kept", t);
        is_str(first, "NET_BIND_SERVICE", "%s: the user's added capability is kept first", t);
}

static void extra_init_first(const char *t, const struct json_value *pod) {
        const char *n = NULL;
        (void) json_get_string(json_array_at(json_get_path(pod, "spec.initContainers"), 1), "name",
                               &n);
        is_str(n, "migrate", "%s: the user's init container comes after ours", t);
}

static void extra_volumes_alike(const char *t, const struct json_value *pod) {
        const struct json_value *v = json_get_path(pod, "spec.volumes");
        is_int(json_count(v), 3, "%s: ours added next to the alike-named volumes", t);
        ok(json_get(named(v, "cloudtaser-bin-cache"), "hostPath") &&
                   json_get(named(v, "cloudtaser"), "configMap"),
           "%s: the alike-named volumes are unchanged", t);
}

static void extra_env_full(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        is_str(env_value(c, "VAULT_AUTH_METHOD"), "kubernetes", "%s: auth method", t);
        is_str(env_value(c, "VAULT_AUTH_ROLE"), "app", "%s: role", t);
        is_str(env_value(c, "VAULT_AUTH_MOUNT_PATH"), "auth/k8s-prod", "%s: auth path", t);
        is_str(env_value(c, "CLOUDTASER_SECRET_PATHS"), "secret/data/app/db,secret/data/app/api",
               "%s: secret paths", t);
        is_str(env_value(c, "CLOUDTASER_ENV_MAP"), "password=PGPASSWORD;api_key=API_KEY",
               "%s: env map", t);
        is_str(env_value(c, "VAULT_SKIP_VERIFY"), "false", "%s: skip verify", t);
        is_str(env_value(c, "CLOUDTASER_DELIVERY"), "memfd", "%s: delivery", t);
        is_str(env_value(c, "CLOUDTASER_ROTATION"), "signal:HUP", "%s: rotation", t);
        ok(!json_get(named(json_get(c, "env"), "VAULT_TOKEN"), "value"), "%s: no token in the spec",
           t);
}

static void extra_skip_verify_false(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        is_str(env_value(c, "VAULT_SKIP_VERIFY"), "false",
               "%s: VAULT_SKIP_VERIFY written as false without the annotation", t);
}

static void extra_token_kept(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        ok(json_get_path(named(json_get(c, "env"), "VAULT_TOKEN"), "valueFrom.secretKeyRef") &&
                   env_value(c, "CLOUDTASER_LOG_LEVEL") &&
                   strcmp(env_value(c, "CLOUDTASER_LOG_LEVEL"), "debug") == 0,
           "%s: VAULT_TOKEN and CLOUDTASER_LOG_LEVEL kept", t);
}

static void extra_namespace(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        is_str(env_value(c, "VAULT_NAMESPACE"), "admin/team-a",
               "%s: VAULT_NAMESPACE from cloudtaser.io/vault-namespace", t);
        is_int(count_named(json_get(c, "env"), "VAULT_NAMESPACE"), 1, "%s: written once", t);
}

static void extra_token_method(const char *t, const struct json_value *pod) {
        const struct json_value *c = json_array_at(json_get_path(pod, "spec.containers"), 0);
        is_str(env_value(c, "VAULT_AUTH_METHOD"), "token", "%s: token auth", t);
        const char *role = env_value(c, "VAULT_AUTH_ROLE");
        ok(role && !role[0], "%s: no role needed (written empty, so that envFrom cannot set it)",
           t);
}

#define TOKEN_ANN                                                                          \
        "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-auth-method\":\"token\"," \
        "\"cloudtaser.io/secret-paths\":\"secret/data/app/db\""

#define MOUNT_AT(path)                                                                       \
        ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"volumeMounts\":[{" \
            "\"name\":\"data\",\"mountPath\":\"" path "\"}]}")
#define ENV_SET(var)                                                                         \
        ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{\"name\":" \
            "\"" var "\",\"value\":\"/tmp/x\"}]}")
#define DENIED(name, ann, spec, msg) \
        { name, ann, spec, 400, msg, {0}, -1, NULL, NULL }

static const struct kase cases[] = {
        DENIED("a mount at //cloudtaser/wrapper", BASE_ANN, MOUNT_AT("//cloudtaser/wrapper"),
               "already mounts another volume at /cloudtaser"),
        DENIED("a mount at /./cloudtaser", BASE_ANN, MOUNT_AT("/./cloudtaser"),
               "already mounts another volume at /cloudtaser"),
        DENIED("a mount at /cloudtaser/./wrapper/", BASE_ANN, MOUNT_AT("/cloudtaser/./wrapper/"),
               "already mounts another volume at /cloudtaser"),
        DENIED("a mount with ..", BASE_ANN, MOUNT_AT("/data/../cloudtaser"), "\"..\" segment"),
        DENIED("a mount with .. elsewhere", BASE_ANN, MOUNT_AT("/srv/.."), "\"..\" segment"),
        DENIED("cloudtaser-bin mounted twice in a wrapped container", BASE_ANN,
               ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],"
                   "\"volumeMounts\":[{\"name\":\"cloudtaser-bin\",\"mountPath\":\"/cloudtaser\","
                   "\"readOnly\":true},{\"name\":\"cloudtaser-bin\",\"mountPath\":\"/w\"}]}"),
               "mounts the volume cloudtaser-bin twice"),
        DENIED("cloudtaser-bin mounted by a container not wrapped",
               BASE_ANN ",\"cloudtaser.io/containers\":\"app\"",
               "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\"},{\"name\":\"side\","
               "\"image\":\"busybox\",\"volumeMounts\":[{\"name\":\"cloudtaser-bin\","
               "\"mountPath\":\"/tools\"}]}]}",
               "container side mounts the volume cloudtaser-bin"),
        DENIED("cloudtaser-bin mounted by another init container", BASE_ANN,
               "{\"initContainers\":[{\"name\":\"migrate\",\"image\":\"busybox\","
               "\"volumeMounts\":[{\"name\":\"cloudtaser-bin\",\"mountPath\":\"/out\"}]}],"
               "\"containers\":[{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}]}",
               "init container migrate mounts the volume cloudtaser-bin"),
        DENIED("cloudtaser-bin mounted by an ephemeral container", BASE_ANN,
               "{\"ephemeralContainers\":[{\"name\":\"dbg\",\"image\":\"busybox\","
               "\"volumeMounts\":[{\"name\":\"cloudtaser-bin\",\"mountPath\":\"/cloudtaser\"}]}"
               "],\"containers\":[{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]"
               "}]}",
               "ephemeral container dbg mounts the volume cloudtaser-bin"),
        DENIED("the pod sets VAULT_CACERT", BASE_ANN, ENV_SET("VAULT_CACERT"), "sets VAULT_CACERT"),
        DENIED("the pod sets VAULT_NAMESPACE", BASE_ANN, ENV_SET("VAULT_NAMESPACE"),
               "sets VAULT_NAMESPACE"),
        DENIED("the pod sets CLOUDTASER_SA_TOKEN_PATH", BASE_ANN,
               ENV_SET("CLOUDTASER_SA_TOKEN_PATH"), "sets CLOUDTASER_SA_TOKEN_PATH"),
        DENIED("the pod sets CLOUDTASER_VAULT_CA_PEM (the operator has no CA)", BASE_ANN,
               ENV_SET("CLOUDTASER_VAULT_CA_PEM"), "sets CLOUDTASER_VAULT_CA_PEM"),
        DENIED("the pod sets CLOUDTASER_DELIVERY without the annotation", BASE_ANN,
               ENV_SET("CLOUDTASER_DELIVERY"), "sets CLOUDTASER_DELIVERY"),
        {"VAULT_SKIP_VERIFY set by the pod is replaced by false",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{\"name\":"
             "\"VAULT_SKIP_VERIFY\",\"value\":\"true\"}]}"),
         0,
         "env VAULT_SKIP_VERIFY replaced",
         {"[\"/x\"]"},
         0,
         NULL,
         extra_skip_verify_false},
        {"VAULT_TOKEN and the log level may come from the pod",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{\"name\":"
             "\"VAULT_TOKEN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"t\",\"key\":\"t\"}}},"
             "{\"name\":\"CLOUDTASER_LOG_LEVEL\",\"value\":\"debug\"}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_token_kept},
        {"no command: image ENTRYPOINT + CMD",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\"}"),
         0,
         NULL,
         {NGINX_ORIG},
         1,
         "cloudtaser-init",
         NULL},
        {"command only: image CMD ignored",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/app\",\"serve\"]}"),
         0,
         NULL,
         {"[\"/app\",\"serve\"]"},
         0,
         NULL,
         NULL},
        {"args only: image ENTRYPOINT + args",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"args\":[\"--port\",\"9\"]}"),
         0,
         NULL,
         {"[\"/docker-entrypoint.sh\",\"--port\",\"9\"]"},
         1,
         NULL,
         NULL},
        {"command and args",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/bin/sh\",\"-c\"],\"args\":["
             "\"echo hi\"]}"),
         0,
         NULL,
         {"[\"/bin/sh\",\"-c\",\"echo hi\"]"},
         0,
         NULL,
         NULL},
        {"image with CMD only",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"busybox\"}"),
         0,
         NULL,
         {"[\"sh\"]"},
         1,
         NULL,
         NULL},
        {"args with an image without ENTRYPOINT",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"busybox\",\"args\":[\"echo\",\"x\"]}"),
         0,
         NULL,
         {"[\"echo\",\"x\"]"},
         1,
         NULL,
         NULL},
        {"empty command and args arrays count as unset",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[],\"args\":[]}"),
         0,
         NULL,
         {NGINX_ORIG},
         1,
         NULL,
         NULL},
        {"'$' from the image doubled: Kubernetes expands $(VAR) and $$ in the spec",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"shell\"}"),
         0,
         NULL,
         {"[\"sh\",\"-c\",\"echo $$$$ $$(HOME) $$\"]"},
         1,
         NULL,
         NULL},
        {"ENTRYPOINT without CMD",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"jmalloc/echo-server\"}"),
         0,
         NULL,
         {"[\"/bin/echo-server\"]"},
         1,
         NULL,
         NULL},
        {"several containers, one image looked up once",
         BASE_ANN,
         "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\"},{\"name\":\"side\",\"image\":"
         "\"busybox\",\"command\":[\"sleep\",\"1d\"]},{\"name\":\"app2\",\"image\":\"nginx\","
         "\"args\":[\"x\"]}]}",
         0,
         NULL,
         {NGINX_ORIG, "[\"sleep\",\"1d\"]", "[\"/docker-entrypoint.sh\",\"x\"]"},
         1,
         NULL,
         NULL},
        {"containers selection",
         BASE_ANN ",\"cloudtaser.io/containers\":\" app \"",
         "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\"},{\"name\":\"side\",\"image\":"
         "\"private.example/app:1\"}]}",
         0,
         NULL,
         {NGINX_ORIG, NULL},
         1,
         NULL,
         extra_keeps_sidecar},
        {"containers selection of an unknown name",
         BASE_ANN ",\"cloudtaser.io/containers\":\"app,db\"",
         ONE("{\"name\":\"app\",\"image\":\"nginx\"}"),
         400,
         "cloudtaser.io/containers names db, but the pod has no container of that name",
         {0},
         -1,
         NULL,
         NULL},
        {"containers selection of an init container",
         BASE_ANN ",\"cloudtaser.io/containers\":\"migrate\"",
         "{\"initContainers\":[{\"name\":\"migrate\",\"image\":\"busybox\"}],\"containers\":[{"
         "\"name\":\"app\",\"image\":\"nginx\"}]}",
         400,
         "an init container",
         {0},
         -1,
         NULL,
         NULL},
        {"init containers already present",
         BASE_ANN,
         "{\"initContainers\":[{\"name\":\"migrate\",\"image\":\"busybox\"}],\"containers\":[{"
         "\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}]}",
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         "cloudtaser-init",
         extra_init_first},
        {"volumes named alike",
         BASE_ANN,
         "{\"volumes\":[{\"name\":\"cloudtaser-bin-cache\",\"hostPath\":{\"path\":\"/x\"}},{"
         "\"name\":\"cloudtaser\",\"configMap\":{\"name\":\"c\"}}],\"containers\":[{\"name\":"
         "\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"volumeMounts\":[{\"name\":"
         "\"cloudtaser\",\"mountPath\":\"/etc/cloudtaser\"}]}]}",
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_volumes_alike},
        {"a volume of our name that is not ours",
         BASE_ANN,
         "{\"volumes\":[{\"name\":\"cloudtaser-bin\",\"hostPath\":{\"path\":\"/usr/bin\"}}],"
         "\"containers\":[{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}]}",
         400,
         "already has a volume named cloudtaser-bin",
         {0},
         -1,
         NULL,
         NULL},
        {"an in-memory volume of our name is made ours",
         BASE_ANN,
         "{\"volumes\":[{\"name\":\"cloudtaser-bin\",\"emptyDir\":{\"medium\":\"Memory\","
         "\"sizeLimit\":\"1Gi\"}}],\"containers\":[{\"name\":\"app\",\"image\":\"nginx\","
         "\"command\":[\"/x\"]}]}",
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"another volume mounted at /cloudtaser",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"volumeMounts\":[{"
             "\"name\":\"data\",\"mountPath\":\"/cloudtaser/wrapper\"}]}"),
         400,
         "already mounts another volume at /cloudtaser",
         {0},
         -1,
         NULL,
         NULL},
        {"an app container named cloudtaser-init",
         BASE_ANN,
         ONE("{\"name\":\"cloudtaser-init\",\"image\":\"nginx\",\"command\":[\"/x\"]}"),
         400,
         "an app container is named cloudtaser-init",
         {0},
         -1,
         NULL,
         NULL},
        {"user variables of the same names are replaced, not duplicated",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{\"name\":"
             "\"VAULT_ADDR\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"c\",\"key\":\"k\"}}},"
             "{\"name\":\"KEEP_ME\",\"value\":\"1\"},{\"name\":\"VAULT_ADDR\",\"value\":\"https:/"
             "/evil.example\"}]}"),
         0,
         "env VAULT_ADDR replaced",
         {"[\"/x\"]"},
         0,
         NULL,
         extra_user_env},
        {"security context kept, IPC_LOCK appended",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"securityContext\":{"
             "\"runAsUser\":1000,\"capabilities\":{\"add\":[\"NET_BIND_SERVICE\"],\"drop\":["
             "\"ALL\"]}}}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_security_context},
        {"security context without capabilities",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"securityContext\":{"
             "\"runAsNonRoot\":true}}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"capabilities without add",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"securityContext\":{"
             "\"capabilities\":{\"drop\":[\"IPC_LOCK\"]}}}"),
         0,
         "drops IPC_LOCK",
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"IPC_LOCK already there is not duplicated",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"securityContext\":{"
             "\"capabilities\":{\"add\":[\"IPC_LOCK\"]}}}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"every wrapper variable from annotations",
         FULL_ANN,
         "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}]}",
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"cloudtaser.io/command replaces the lookup",
         BASE_ANN ",\"cloudtaser.io/command\":\"[\\\"/srv/app\\\",\\\"--flag=$x\\\"]\"",
         ONE("{\"name\":\"app\",\"image\":\"private.example/app:1\",\"args\":[\"run\"]}"),
         0,
         NULL,
         {"[\"/srv/app\",\"--flag=$$x\",\"run\"]"},
         0,
         NULL,
         NULL},
        {"cloudtaser.io/command unused",
         BASE_ANN ",\"cloudtaser.io/command\":\"[\\\"/srv\\\"]\"",
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"),
         0,
         "cloudtaser.io/command is not used",
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"lookup failure",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"private.example/app:1\"}"),
         400,
         "401 unauthorized); set the container's command, or the annotation cloudtaser.io/command",
         {0},
         1,
         NULL,
         NULL},
        {"image with neither ENTRYPOINT nor CMD",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"image\":\"scratch-app\"}"),
         400,
         "no ENTRYPOINT or CMD",
         {0},
         1,
         NULL,
         NULL},
        {"no image and no command",
         BASE_ANN,
         ONE("{\"name\":\"app\"}"),
         400,
         "no command and no valid image",
         {0},
         0,
         NULL,
         NULL},
        /* hostile and malformed annotations */
        {"inject not a boolean",
         "\"cloudtaser.io/inject\":\"yes\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/inject must be",
         {0},
         -1,
         NULL,
         NULL},
        {"inject of the wrong type",
         "\"cloudtaser.io/inject\":true",
         ONE("{\"name\":\"a\"}"),
         400,
         "not a string",
         {0},
         -1,
         NULL,
         NULL},
        {"annotation given twice",
         BASE_ANN ",\"cloudtaser.io/vault-role\":\"other\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "given twice",
         {0},
         -1,
         NULL,
         NULL},
        {"secret-paths missing",
         "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"a\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/secret-paths is required",
         {0},
         -1,
         NULL,
         NULL},
        {"role missing for kubernetes auth",
         "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/secret-paths\":\"secret/x\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "vault-role is required",
         {0},
         -1,
         NULL,
         NULL},
        {"secret-paths given twice",
         BASE_ANN ",\"cloudtaser.io/secret-paths\":\"secret/x\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "given twice",
         {0},
         -1,
         NULL,
         NULL},
        {"secret path with ..",
         "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"a\","
         "\"cloudtaser.io/secret-paths\":\"secret/../sys\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/secret-paths: ",
         {0},
         -1,
         NULL,
         NULL},
        {"env-map the wrapper refuses",
         BASE_ANN ",\"cloudtaser.io/env-map\":\"pw=VAULT_TOKEN\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/env-map: ",
         {0},
         -1,
         NULL,
         NULL},
        {"vault address with control characters",
         BASE_ANN ",\"cloudtaser.io/vault-address\":\"https://vault\\n.example\\u0007\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/vault-address must be a URL",
         {0},
         -1,
         NULL,
         NULL},
        {"vault address with user info",
         BASE_ANN ",\"cloudtaser.io/vault-address\":\"https://user:pw@vault.example\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "the port must be",
         {0},
         -1,
         NULL,
         NULL},
        {"vault address outside the allow-list",
         BASE_ANN ",\"cloudtaser.io/vault-address\":\"https://evil.example:8200\"",
         ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
         403,
         "vault address https://evil.example:8200 is not in the operator's allow-list",
         {0},
         -1,
         NULL,
         NULL},
        {"vault address in the allow-list, written differently",
         BASE_ANN ",\"cloudtaser.io/vault-address\":\"HTTPS://Vault-2.Example:443/\"",
         ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"the allow-list compares the scheme too",
         BASE_ANN ",\"cloudtaser.io/vault-address\":\"http://vault.example:8200\"",
         ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
         403,
         "not in the operator's allow-list",
         {0},
         -1,
         NULL,
         NULL},
        {"command annotation not JSON",
         BASE_ANN ",\"cloudtaser.io/command\":\"/bin/app --x\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "must be a JSON array of strings",
         {0},
         -1,
         NULL,
         NULL},
        {"command annotation with a number",
         BASE_ANN ",\"cloudtaser.io/command\":\"[\\\"/a\\\",1]\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "argument 2 is not a string",
         {0},
         -1,
         NULL,
         NULL},
        {"containers annotation with an invalid name",
         BASE_ANN ",\"cloudtaser.io/containers\":\"App\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "entry #1 is not a container name",
         {0},
         -1,
         NULL,
         NULL},
        {"rotation by SIGKILL",
         BASE_ANN ",\"cloudtaser.io/rotation\":\"signal:KILL\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "cloudtaser.io/rotation must be",
         {0},
         -1,
         NULL,
         NULL},
        {"unknown auth method",
         BASE_ANN ",\"cloudtaser.io/vault-auth-method\":\"ldap\"",
         ONE("{\"name\":\"a\"}"),
         400,
         "vault-auth-method must be",
         {0},
         -1,
         NULL,
         NULL},
        {"unknown annotation warns",
         BASE_ANN ",\"cloudtaser.io/vault-rol\":\"x\"",
         ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
         0,
         "unknown annotation cloudtaser.io/vault-rol",
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"skip-verify warns",
         BASE_ANN ",\"cloudtaser.io/vault-skip-verify\":\"true\"",
         ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
         0,
         "TLS certificate is not verified",
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        /* malformed pods */
        {"no spec", BASE_ANN, "null", 400, "spec is missing", {0}, -1, NULL, NULL},
        {"no containers",
         BASE_ANN,
         "{\"containers\":[]}",
         400,
         "spec.containers is missing",
         {0},
         -1,
         NULL,
         NULL},
        {"env of the wrong type",
         BASE_ANN,
         ONE("{\"name\":\"a\",\"command\":[\"/x\"],\"env\":{\"A\":\"1\"}}"),
         400,
         "env is not an array",
         {0},
         -1,
         NULL,
         NULL},
        {"command of the wrong type",
         BASE_ANN,
         ONE("{\"name\":\"a\",\"command\":\"/x\"}"),
         400,
         "command is not an array of strings",
         {0},
         -1,
         NULL,
         NULL},
        /* Values the wrapper cannot serve are denied at admission, naming the annotation
         * (they used to be admitted, and the wrapper then exited 64). */
        DENIED("auth method broker without a broker the operator knows",
               BASE_ANN ",\"cloudtaser.io/vault-auth-method\":\"broker\"",
               ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"),
               "CLOUDTASER_BROKER_ADDRESS is required for broker auth"),
        DENIED("token auth with nothing that delivers a token", TOKEN_ANN,
               ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"),
               "container app: cloudtaser.io/vault-auth-method is token, but nothing delivers "
               "the token"),
        DENIED("token auth with an empty literal token", TOKEN_ANN,
               ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{"
                   "\"name\":\"VAULT_TOKEN\",\"value\":\"\"}]}"),
               "VAULT_TOKEN is required for token auth"),
        DENIED("token auth: the second container has no token", TOKEN_ANN,
               "{\"containers\":[{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":"
               "\"VAULT_TOKEN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"t\",\"key\":"
               "\"t\"}}}]},{\"name\":\"side\",\"command\":[\"/y\"]}]}",
               "container side: cloudtaser.io/vault-auth-method is token"),
        {"token auth with the token from a Secret",
         TOKEN_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{\"name\":"
             "\"VAULT_TOKEN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"t\",\"key\":\"t\"}}}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_token_method},
        {"token auth with an envFrom that may hold the token",
         TOKEN_ANN,
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"envFrom\":[{"
             "\"secretRef\":{\"name\":\"vault-token\"}}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_token_method},
        DENIED("a secret path with a . segment",
               "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"a\","
               "\"cloudtaser.io/secret-paths\":\"secret/./web\"",
               ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
               "cloudtaser.io/secret-paths: path #1 has a segment not allowed in a vault path"),
        DENIED("a secret path with an empty segment",
               "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"a\","
               "\"cloudtaser.io/secret-paths\":\"secret/data/a,secret//data/web\"",
               ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
               "cloudtaser.io/secret-paths: path #2 has a segment not allowed in a vault path"),
        DENIED("a secret path that is only a dot",
               "\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":\"a\","
               "\"cloudtaser.io/secret-paths\":\".\"",
               ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"),
               "cloudtaser.io/secret-paths: path #1 has a segment not allowed"),
        DENIED("a log level the wrapper refuses, set by the pod", BASE_ANN,
               ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":"
                   "\"CLOUDTASER_LOG_LEVEL\",\"value\":\"loud\"}]}"),
               "container app: CLOUDTASER_LOG_LEVEL must be error, warning"),
        /* The pod's own values are read as the kubelet expands them ($$, $(VAR)). */
        {"a log level from an earlier variable",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":\"LVL\",\"value\":"
             "\"debug\"},{\"name\":\"CLOUDTASER_LOG_LEVEL\",\"value\":\"$(LVL)\"}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        {"a log level from a Secret, through a reference (not known: not checked)",
         BASE_ANN,
         ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":\"LVL\","
             "\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}},{\"name\":"
             "\"CLOUDTASER_LOG_LEVEL\",\"value\":\"$(LVL)\"}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         NULL},
        DENIED("a log format referring to an undefined variable (kept verbatim)", BASE_ANN,
               ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":"
                   "\"CLOUDTASER_LOG_FORMAT\",\"value\":\"$(FMT)\"},{\"name\":\"FMT\","
                   "\"value\":\"json\"}]}"),
               "container app: CLOUDTASER_LOG_FORMAT must be text or json"),
        DENIED("a token that expands to nothing", TOKEN_ANN,
               ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":\"T\","
                   "\"value\":\"\"},{\"name\":\"VAULT_TOKEN\",\"value\":\"$(T)\"}]}"),
               "VAULT_TOKEN is required for token auth"),
        {"a token through a reference to a Secret",
         TOKEN_ANN,
         ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":\"T\",\"valueFrom\":"
             "{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}},{\"name\":\"VAULT_TOKEN\","
             "\"value\":\"$(T)\"}]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_token_method},
        DENIED("a value with more references than the operator follows", BASE_ANN,
               ONE("{\"name\":\"app\",\"command\":[\"/x\"],\"env\":[{\"name\":\"A\","
                   "\"value\":\"i\"},{\"name\":\"CLOUDTASER_LOG_LEVEL\",\"value\":"
                   "\"$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)$(A)\"}]}"),
               "more $(VAR) references than the operator follows"),
        /* cloudtaser.io/vault-namespace (Vault Enterprise, HCP Vault, OpenBao namespaces). */
        {"vault namespace from the annotation",
         BASE_ANN ",\"cloudtaser.io/vault-namespace\":\"admin/team-a\"",
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"),
         0,
         NULL,
         {"[\"/x\"]"},
         0,
         NULL,
         extra_namespace},
        {"vault namespace from the annotation replaces the pod's own",
         BASE_ANN ",\"cloudtaser.io/vault-namespace\":\"admin/team-a\"",
         ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"],\"env\":[{"
             "\"name\":\"VAULT_NAMESPACE\",\"value\":\"other\"}]}"),
         0,
         "env VAULT_NAMESPACE replaced",
         {"[\"/x\"]"},
         0,
         NULL,
         extra_namespace},
        DENIED("vault namespace with a .. segment",
               BASE_ANN ",\"cloudtaser.io/vault-namespace\":\"admin/../root\"",
               ONE("{\"name\":\"app\",\"command\":[\"/x\"]}"),
               "cloudtaser.io/vault-namespace must be a vault namespace"),
        DENIED("vault namespace with a space",
               BASE_ANN ",\"cloudtaser.io/vault-namespace\":\"a b\"",
               ONE("{\"name\":\"app\",\"command\":[\"/x\"]}"),
               "cloudtaser.io/vault-namespace must be a vault namespace"),
        {"args with a number",
         BASE_ANN,
         ONE("{\"name\":\"a\",\"command\":[\"/x\"],\"args\":[1]}"),
         400,
         "args is not an array of strings",
         {0},
         -1,
         NULL,
         NULL},
};

static void run_case(const struct kase *k) {
        struct result r = {}, again = {};
        char *pod = pod_text(k->annotations, k->spec), *patched = NULL;
        _cleanup_json_doc_ struct json_doc *pd = NULL;
        int err = 0;

        lookups = 0;
        run_pod(&cfg, pod, false, &r);
        if (!ok(r.rc == 0 && r.doc, "%s: a response (rc %d)", k->name, r.rc))
                goto out;
        if (k->code) {
                ok(!r.allowed, "%s: denied", k->name);
                is_int(r.code, k->code, "%s: status code", k->name);
                ok(r.message && strstr(r.message, k->message), "%s: message says '%s'", k->name,
                   k->message);
                if (r.message && !strstr(r.message, k->message))
                        diag("  message: %s", r.message);
                bool clean = true;
                for (const char *c = r.message; c && *c; c++)
                        clean = clean && (unsigned char) *c >= 0x20 && *c != 0x7f;
                ok(clean && !r.patch, "%s: printable message, no patch", k->name);
                is_str(r.outcome, "denied", "%s: outcome", k->name);
                goto out;
        }
        if (!ok(r.allowed && r.patch, "%s: allowed with a patch", k->name)) {
                if (r.message)
                        diag("  denied: %s", r.message);
                goto out;
        }
        is_str(r.outcome, "injected", "%s: outcome", k->name);
        if (k->lookups >= 0)
                is_int(lookups, k->lookups, "%s: registry lookups", k->name);
        if (k->message) {
                bool found = false;
                JSON_FOREACH(w, json_get(r.resp, "warnings")) {
                        const char *s;
                        found = found || (json_string(w, &s) == 0 && strstr(s, k->message));
                }
                ok(found, "%s: a warning says '%s'", k->name, k->message);
        }
        check_patch_shape(k->name, r.patch);
        patched = apply(pod, &r, &err);
        if (!ok(patched, "%s: the patch applies (%d)", k->name, err)) {
                diag("  patch: %s", r.patch);
                goto out;
        }
        if (json_parse(patched, strlen(patched), 0, NULL, &pd) < 0)
                abort();
        const struct json_value *p = json_doc_root(pd);
        check_pod_level(k->name, p);
        check_wrapper_accepts(k->name, p);
        size_t i = 0;
        JSON_FOREACH(ctr, json_get_path(p, "spec.containers")) {
                if (i < ELEMENTSOF(k->orig) && k->orig[i])
                        check_wrapped(k->name, ctr, k->orig[i],
                                      strstr(k->annotations, "Vault-2")
                                              ? "https://vault-2.example"
                                              : "https://vault.example:8200");
                i++;
        }
        if (k->first_init) {
                const char *n = NULL;
                (void) json_get_string(json_array_at(json_get_path(p, "spec.initContainers"), 0),
                                       "name", &n);
                is_str(n, k->first_init, "%s: initContainers[0]", k->name);
        }
        if (k->extra)
                k->extra(k->name, p);

        /* Idempotence: the patched pod reviewed again changes nothing. */
        lookups = 0;
        run_pod(&cfg, patched, false, &again);
        ok(again.rc == 0 && again.allowed && !again.patch && lookups == 0,
           "%s: reviewing the injected pod again changes nothing", k->name);
        if (again.patch)
                diag("  second patch: %s", again.patch);
        is_str(again.outcome, "skipped", "%s: second outcome", k->name);
out:
        result_done(&r);
        result_done(&again);
        free(pod);
        free(patched);
}

/* --- other tests
 * ---------------------------------------------------------------------------------- */

static void test_full_env(void) {
        struct admission_config c = cfg;
        c.default_auth_path = "auth/default";
        c.default_vault_ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        struct result r = {};
        char *pod = pod_text(FULL_ANN,
                             ONE("{\"name\":\"app\",\"image\":\"nginx\",\"command\":[\"/x\"]}"));
        run_pod(&c, pod, false, &r);
        char *patched = apply(pod, &r, NULL);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        if (!ok(patched && json_parse(patched, strlen(patched), 0, NULL, &d) == 0,
                "full env: injected"))
                goto out;
        extra_env_full("full env", json_doc_root(d));
        check_wrapper_accepts("full env", json_doc_root(d));
        const struct json_value *ctr =
                json_array_at(json_get_path(json_doc_root(d), "spec.containers"), 0);
        is_str(env_value(ctr, "CLOUDTASER_VAULT_CA_PEM"), c.default_vault_ca_pem,
               "full env: the operator's CA inline");
        /* The default auth path applies when the pod has none. */
        free(patched);
        free(pod);
        result_done(&r);
        pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"));
        run_pod(&c, pod, false, &r);
        patched = apply(pod, &r, NULL);
        json_doc_free(d);
        d = NULL;
        if (patched && json_parse(patched, strlen(patched), 0, NULL, &d) == 0)
                is_str(env_value(
                               json_array_at(json_get_path(json_doc_root(d), "spec.containers"), 0),
                               "VAULT_AUTH_MOUNT_PATH"),
                       "auth/default", "default auth path from the operator");
        else
                ok(false, "default auth path: injected");
out:
        free(pod);
        free(patched);
        result_done(&r);
}

/* --vault-peer-addresses reaches the wrappers of pods that use the operator's own vault, and
 * only those: the nodes of another vault are not these. */
static void test_peer_addrs(void) {
        struct admission_config c = cfg;
        c.default_vault_peer_addrs = "https://vault-0.example:8200,https://vault-1.example:8200";
        static const struct {
                const char *ann;
                bool peers;
        } t[] = {
                {BASE_ANN, true},
                {BASE_ANN ",\"cloudtaser.io/vault-address\":\"https://vault.example:8200\"", true},
                {BASE_ANN ",\"cloudtaser.io/vault-address\":\"https://vault.other:8200\"", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct admission_config ci = c;
                const char *allowed[] = {"https://vault.example:8200", "https://vault.other:8200"};
                ci.allowed_vault_addresses = allowed;
                ci.n_allowed = ELEMENTSOF(allowed);
                struct result r = {};
                char *pod = pod_text(t[i].ann, ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"));
                run_pod(&ci, pod, false, &r);
                char *patched = apply(pod, &r, NULL);
                _cleanup_json_doc_ struct json_doc *d = NULL;
                if (ok(patched && json_parse(patched, strlen(patched), 0, NULL, &d) == 0,
                       "peers #%zu: injected", i)) {
                        const char *v = env_value(
                                json_array_at(json_get_path(json_doc_root(d), "spec.containers"),
                                              0),
                                "CLOUDTASER_VAULT_PEER_ADDRESSES");
                        if (t[i].peers)
                                is_str(v, c.default_vault_peer_addrs,
                                       "peers #%zu: the operator's vault's nodes are written", i);
                        else
                                ok(v && !v[0],
                                   "peers #%zu: not for a pod of another vault (written empty)", i);
                        check_wrapper_accepts("peers", json_doc_root(d));
                }
                free(patched);
                free(pod);
                result_done(&r);
        }
}

/* Pod Security: IPC_LOCK only where the namespace's level allows an added capability. */
static int fake_pss_result;
static enum admission_pod_security fake_pss_level;
static int fake_pss_calls;
static int fake_pss(void *userdata, const char *ns, enum admission_pod_security *ret) {
        fake_pss_calls++;
        if (fake_pss_result < 0)
                return fake_pss_result;
        *ret = fake_pss_level;
        return 0;
}

static void test_pod_security(void) {
        static const struct {
                int result;
                enum admission_pod_security level;
                bool ipc_lock;
                const char *warning; /* substring, NULL: none */
                const char *what;
        } t[] = {
                {0, ADMISSION_PSS_PRIVILEGED, true, NULL, "privileged"},
                {0, ADMISSION_PSS_BASELINE, false, "enforces Pod Security baseline", "baseline"},
                {0, ADMISSION_PSS_RESTRICTED, false, "enforces Pod Security restricted",
                 "restricted"},
                {-EIO, 0, false, "could not be read", "unknown"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct admission_config c = cfg;
                c.pod_security = fake_pss;
                fake_pss_result = t[i].result;
                fake_pss_level = t[i].level;
                fake_pss_calls = 0;
                struct result r = {};
                char *pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"command\":[\"/x\"]},"
                                                   "{\"name\":\"b\",\"command\":[\"/y\"]}"));
                run_pod(&c, pod, false, &r);
                char *patched = apply(pod, &r, NULL);
                _cleanup_json_doc_ struct json_doc *d = NULL;
                if (ok(patched && json_parse(patched, strlen(patched), 0, NULL, &d) == 0,
                       "pod security %s: injected", t[i].what)) {
                        size_t ipc = 0;
                        for (size_t ci = 0; ci < 2; ci++)
                                JSON_FOREACH(cap,
                                             json_get_path(
                                                     json_array_at(json_get_path(json_doc_root(d),
                                                                                 "spec.containers"),
                                                                   ci),
                                                     "securityContext.capabilities.add")) {
                                        const char *v;
                                        if (json_string(cap, &v) == 0 && strcmp(v, "IPC_LOCK") == 0)
                                                ipc++;
                                }
                        is_int(ipc, t[i].ipc_lock ? 2 : 0, "pod security %s: IPC_LOCK %s",
                               t[i].what, t[i].ipc_lock ? "added to both" : "added to neither");
                }
                bool warned = false;
                size_t n_warn = 0;
                JSON_FOREACH(w, json_get(r.resp, "warnings")) {
                        const char *v;
                        n_warn++;
                        if (t[i].warning && json_string(w, &v) == 0 && strstr(v, t[i].warning))
                                warned = true;
                }
                ok(t[i].warning ? warned && n_warn == 1 : n_warn == 0, "pod security %s: %s",
                   t[i].what, t[i].warning ? "one warning saying why" : "no warning");
                is_int(fake_pss_calls, 1, "pod security %s: the level is read once per review",
                       t[i].what);
                free(patched);
                free(pod);
                result_done(&r);
        }
}

/* Plain http:// vault addresses only behind --allow-plain-http-vault (issue 11, item 11). */
static void test_plain_http(void) {
        for (int allow = 0; allow <= 1; allow++) {
                struct admission_config c = cfg;
                const char *allowed[] = {"http://vault.example:8200"};
                c.allowed_vault_addresses = allowed;
                c.n_allowed = 1;
                c.allow_plain_http = allow;
                struct result r = {};
                char *pod = pod_text(BASE_ANN ",\"cloudtaser.io/vault-address\":"
                                              "\"http://vault.example:8200\"",
                                     ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"));
                run_pod(&c, pod, false, &r);
                if (allow)
                        ok(r.rc == 0 && r.allowed && r.patch,
                           "plain http, allowed by the flag: injected");
                else
                        ok(r.rc == 0 && !r.allowed && r.code == 403 && r.message &&
                                   strstr(r.message, "--allow-plain-http-vault"),
                           "plain http without the flag: denied, naming the flag (%s)",
                           r.message ? r.message : "");
                free(pod);
                result_done(&r);
        }
}

/* kubectl debug: an UPDATE of pods/ephemeralcontainers may not mount the wrapper's volume. */
static void test_ephemeral(void) {
        static const struct {
                const char *mounts;
                bool allowed;
                const char *what;
        } t[] = {
                {"[]", true, "an ephemeral container without mounts is admitted"},
                {"[{\"name\":\"cloudtaser-bin\",\"mountPath\":\"/x\"}]", false,
                 "an ephemeral container mounting cloudtaser-bin is denied"},
                {"[{\"name\":\"other\",\"mountPath\":\"/x\"}]", true,
                 "an ephemeral container mounting another volume is admitted"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct buf b = BUF_INIT(64 * 1024, 0);
                if (buf_printf(
                            &b,
                            "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\","
                            "\"request\":{\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":"
                            "\"v1\",\"kind\":\"Pod\"},\"subResource\":\"ephemeralcontainers\","
                            "\"namespace\":\"team\",\"operation\":\"UPDATE\",\"object\":{"
                            "\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                            "\"web\",\"namespace\":\"team\"},\"spec\":{\"containers\":[{"
                            "\"name\":\"a\",\"image\":\"x\"}],\"ephemeralContainers\":[{"
                            "\"name\":\"debugger\",\"image\":\"busybox\",\"volumeMounts\":%s}]}}}}",
                            t[i].mounts) < 0)
                        abort();
                struct result r = {};
                run_text(&cfg, b.data, b.len, &r);
                if (t[i].allowed)
                        ok(r.rc == 0 && r.allowed && !r.patch, "%s", t[i].what);
                else
                        ok(r.rc == 0 && !r.allowed && r.code == 403 && r.message &&
                                   strstr(r.message, "ephemeral container debugger"),
                           "%s (%s)", t[i].what, r.message ? r.message : "");
                result_done(&r);
                buf_done(&b);
        }
}

/* Issue 11, item 10: fields of the pod spec that could redirect the wrapper. */
static void test_redirects(void) {
        static const struct {
                const char *aliases;
                bool allowed;
                const char *what;
        } t[] = {
                {"[{\"ip\":\"10.9.9.9\",\"hostnames\":[\"other.example\"]}]", true,
                 "a host alias of another name is admitted"},
                {"[{\"ip\":\"10.9.9.9\",\"hostnames\":[\"x\",\"Vault.Example\"]}]", false,
                 "a host alias of the vault's host (any case) is denied"},
                {"[{\"ip\":\"10.9.9.9\",\"hostnames\":[\"vault-1.example\"]}]", false,
                 "a host alias of a peer of the vault is denied"},
        };
        struct admission_config c = cfg;
        c.default_vault_peer_addrs = "https://vault-1.example:8200";
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct buf spec = BUF_INIT(64 * 1024, 0);
                if (buf_printf(&spec,
                               "{\"hostAliases\":%s,\"containers\":[{\"name\":\"a\","
                               "\"command\":[\"/x\"]}]}",
                               t[i].aliases) < 0)
                        abort();
                struct result r = {};
                char *pod = pod_text(BASE_ANN, buf_cstr(&spec));
                run_pod(&c, pod, false, &r);
                if (t[i].allowed)
                        ok(r.rc == 0 && r.allowed && r.patch, "%s", t[i].what);
                else
                        ok(r.rc == 0 && !r.allowed && r.code == 403 && r.message &&
                                   strstr(r.message, "spec.hostAliases maps"),
                           "%s (%s)", t[i].what, r.message ? r.message : "");
                free(pod);
                result_done(&r);
                buf_done(&spec);
        }

        /* envFrom (a ConfigMap the author owns, or a prefix) cannot set what only the operator
         * may: every such variable is an explicit env entry, which wins over envFrom. */
        struct result r = {};
        char *pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"command\":[\"/x\"],\"envFrom\":["
                                           "{\"configMapRef\":{\"name\":\"mine\"}},"
                                           "{\"prefix\":\"VAULT_\",\"configMapRef\":{\"name\":"
                                           "\"mine\"}}]}"));
        run_pod(&c, pod, false, &r);
        char *patched = apply(pod, &r, NULL);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        if (ok(patched && json_parse(patched, strlen(patched), 0, NULL, &d) == 0,
               "envFrom: injected")) {
                const struct json_value *ctr =
                        json_array_at(json_get_path(json_doc_root(d), "spec.containers"), 0);
                bool all = true;
                for (size_t i = 0; i < INJECTION_N_VARIABLES; i++) {
                        const struct injection_variable *v = &injection_variables[i];
                        if (v->setter != INJECTION_SET_POD && !env_value(ctr, v->name)) {
                                diag("%s is not an explicit env entry", v->name);
                                all = false;
                        }
                }
                ok(all, "envFrom: every variable the pod may not set is an explicit env entry");
                is_str(env_value(ctr, "VAULT_CACERT"), "", "envFrom: VAULT_CACERT written empty");
                check_wrapper_accepts("envFrom", json_doc_root(d));
        }
        free(patched);
        free(pod);
        result_done(&r);

        /* The API server stores those empty entries as {"name": N} (no value): the injected pod
         * reviewed again is still ours, with no patch. */
        struct result r2 = {};
        char *stored = pod_text(BASE_ANN ",\"cloudtaser.io/injected\":\"true\"",
                                ONE("{\"name\":\"a\",\"command\":[\"/x\"],\"env\":[{\"name\":"
                                    "\"VAULT_AUTH_MOUNT_PATH\"},{\"name\":\"VAULT_CACERT\"}]}"));
        run_pod(&c, stored, false, &r2);
        ok(r2.rc == 0 && r2.allowed, "env entries without a value, as stored, are not pod-set (%s)",
           r2.message ? r2.message : "allowed");
        free(stored);
        result_done(&r2);
}

static void test_reinvocation(void) {
        struct result r = {}, again = {};
        char *pod = pod_text(BASE_ANN, ONE("{\"name\":\"app\",\"image\":\"nginx\"}"));
        char *patched = NULL, *changed = NULL;
        struct buf out = BUF_INIT(1 << 22, 0);

        run_pod(&cfg, pod, false, &r);
        patched = apply(pod, &r, NULL);
        if (!ok(patched, "reinvocation: injected"))
                goto out;
        /* What the API server and another webhook do between two passes: defaults added to our
         * init container, its fields in another order, another init container put first. */
        static const char extra[] =
                "[{\"op\":\"add\",\"path\":\"/spec/initContainers/0/terminationMessagePath\","
                "\"value\":\"/dev/termination-log\"},{\"op\":\"add\",\"path\":\"/spec/"
                "initContainers/0/imagePullPolicy\",\"value\":\"IfNotPresent\"},{\"op\":"
                "\"replace\",\"path\":\"/spec/initContainers/0/securityContext\",\"value\":{"
                "\"seccompProfile\":{\"type\":\"RuntimeDefault\"},\"capabilities\":{\"drop\":["
                "\"ALL\"]},\"privileged\":false,\"runAsUser\":65532,\"runAsGroup\":65532,"
                "\"runAsNonRoot\":true,\"readOnlyRootFilesystem\":true,"
                "\"allowPrivilegeEscalation\":false}},{\"op\":\"add\",\"path\":\"/spec/"
                "initContainers/0\",\"value\":{\"name\":\"istio-init\",\"image\":\"istio\"}}]";
        if (test_jsonpatch_apply(patched, strlen(patched), extra, strlen(extra), &out) < 0 ||
            buf_steal(&out, &changed, &(size_t){0}) < 0) {
                ok(false, "reinvocation: defaults applied");
                goto out;
        }
        run_pod(&cfg, changed, false, &again);
        ok(again.rc == 0 && again.allowed && !again.patch,
           "reinvocation after defaulting and another webhook: no patch");
        result_done(&again);

        /* An older operator's init image is updated in place, nothing else. */
        static const char old[] = "[{\"op\":\"replace\",\"path\":\"/spec/initContainers/1/image\","
                                  "\"value\":\"old:0.9\"}]";
        char *older = NULL;
        if (test_jsonpatch_apply(changed, strlen(changed), old, strlen(old), &out) < 0 ||
            buf_steal(&out, &older, &(size_t){0}) < 0) {
                ok(false, "reinvocation: old image set");
                goto out;
        }
        run_pod(&cfg, older, false, &again);
        ok(again.patch && same_json(again.patch,
                                    "[{\"op\":\"replace\",\"path\":\"/spec/"
                                    "initContainers/1/image\",\"value\":\"" INIT_IMAGE "\"}]"),
           "an old init image is replaced, in place");
        free(older);
out:
        buf_done(&out);
        result_done(&r);
        result_done(&again);
        free(pod);
        free(patched);
        free(changed);
}

/* A pod at the container limit is injected (the limit does not count cloudtaser-init), and its
 * reinvocation, which has our init container on top, is not denied for it; one more container
 * than the limit is denied. */
static void test_container_limit(void) {
        for (unsigned extra = 0; extra <= 1; extra++) {
                struct buf spec = BUF_INIT(1 << 20, 0);
                struct result r = {}, again = {};
                char *pod, *patched = NULL;
                (void) buf_append_str(&spec, "{\"initContainers\":[");
                for (unsigned i = 0; i + 1 < ADMISSION_MAX_CONTAINERS + extra; i++)
                        (void) buf_printf(&spec, "%s{\"name\":\"i%u\",\"image\":\"busybox\"}",
                                          i ? "," : "", i);
                (void) buf_append_str(&spec, "],\"containers\":[{\"name\":\"app\",\"image\":"
                                             "\"nginx\",\"command\":[\"/x\"]}]}");
                pod = pod_text(BASE_ANN, buf_cstr(&spec));
                run_pod(&cfg, pod, false, &r);
                if (extra) {
                        ok(r.rc == 0 && !r.allowed && r.message &&
                                   strstr(r.message, "more than 256 containers"),
                           "container limit + 1: denied (%s)", r.message ? r.message : "");
                        goto next;
                }
                if (!ok(r.rc == 0 && r.allowed && r.patch, "container limit: injected"))
                        goto next;
                patched = apply(pod, &r, NULL);
                if (!ok(patched, "container limit: the patch applies"))
                        goto next;
                run_pod(&cfg, patched, false, &again);
                ok(again.rc == 0 && again.allowed && !again.patch,
                   "container limit: the injected pod's reinvocation is allowed, no patch (%s)",
                   again.message ? again.message : "");
                is_str(again.outcome, "skipped", "container limit: second outcome");
        next:
                result_done(&r);
                result_done(&again);
                free(pod);
                free(patched);
                buf_done(&spec);
        }
}

static void test_pass_through(void) {
        struct result r = {};
        char *pod;
        const char *uid;

        /* No opt-in: allowed, no patch, no lookup. */
        const char *anns[] = {
                "", "\"cloudtaser.io/inject\":\"false\",\"cloudtaser.io/command\":\"junk\"",
                "\"other.io/inject\":\"true\""};
        for (size_t i = 0; i < ELEMENTSOF(anns); i++) {
                lookups = 0;
                pod = pod_text(anns[i], ONE("{\"name\":\"a\",\"image\":\"nginx\"}"));
                run_pod(&cfg, pod, false, &r);
                ok(r.rc == 0 && r.allowed && !r.patch && !json_get(r.resp, "patchType") &&
                           lookups == 0,
                   "no opt-in #%zu: allowed unchanged", i);
                is_str(r.outcome, "skipped", "no opt-in #%zu: outcome", i);
                free(pod);
                result_done(&r);
        }
        /* A pod without annotations at all. */
        char *body = review_text("admission.k8s.io/v1", "u", "Pod", "CREATE",
                                 "{\"metadata\":{\"generateName\":\"web-\"},\"spec\":{"
                                 "\"containers\":[{\"name\":\"a\"}]}}",
                                 false);
        run_text(&cfg, body, strlen(body), &r);
        ok(r.rc == 0 && r.allowed && !r.patch, "no annotations: allowed unchanged");
        free(body);
        result_done(&r);

        /* Other kinds and operations pass through. */
        pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"image\":\"nginx\"}"));
        body = review_text("admission.k8s.io/v1", "u-2", "Deployment", "CREATE", pod, false);
        run_text(&cfg, body, strlen(body), &r);
        ok(r.rc == 0 && r.allowed && !r.patch && json_count(json_get(r.resp, "warnings")) == 1,
           "a Deployment: allowed unchanged with a warning");
        is_str(r.outcome, "skipped", "a Deployment: outcome");
        free(body);
        result_done(&r);
        const char *ops[] = {"UPDATE", "DELETE", "CONNECT"};
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                body = review_text("admission.k8s.io/v1", "u-3", "Pod", ops[i], pod, false);
                run_text(&cfg, body, strlen(body), &r);
                ok(r.rc == 0 && r.allowed && !r.patch, "%s: allowed unchanged", ops[i]);
                free(body);
                result_done(&r);
        }

        /* v1beta1 is answered in v1beta1, uid echoed. */
        body = review_text("admission.k8s.io/v1beta1", "abc-123", "Pod", "CREATE", pod, false);
        run_text(&cfg, body, strlen(body), &r);
        const char *av = NULL;
        (void) json_get_string(json_doc_root(r.doc), "apiVersion", &av);
        (void) json_get_string(r.resp, "uid", &uid);
        ok(r.rc == 0 && av && strcmp(av, "admission.k8s.io/v1beta1") == 0 && uid &&
                   strcmp(uid, "abc-123") == 0 && r.patch,
           "v1beta1: apiVersion and uid echoed");
        free(body);
        result_done(&r);

        /* dryRun: the same answer. */
        struct result dry = {};
        run_pod(&cfg, pod, false, &r);
        run_pod(&cfg, pod, true, &dry);
        ok(r.patch && dry.patch && strcmp(r.patch, dry.patch) == 0 && dry.allowed,
           "dryRun: the same patch (the webhook has no side effects)");
        const char *kind = NULL, *pt = NULL;
        (void) json_get_string(json_doc_root(r.doc), "kind", &kind);
        (void) json_get_string(r.resp, "patchType", &pt);
        ok(kind && strcmp(kind, "AdmissionReview") == 0 && pt && strcmp(pt, "JSONPatch") == 0,
           "response kind AdmissionReview, patchType JSONPatch");
        result_done(&r);
        result_done(&dry);
        free(pod);
}

static void test_malformed(void) {
        struct result r = {};
        const char *bad[] = {
                "",
                "not json",
                "[]",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\"}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/"
                "v1\",\"request\":{}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":5}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v2\",\"request\":{"
                "\"uid\":\"x\"}}",
                "{\"kind\":\"Pod\",\"apiVersion\":\"admission.k8s.io/"
                "v1\",\"request\":{\"uid\":\"x\"}"
                "}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"a\\nb\"}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\"}} trailing",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                run_text(&cfg, bad[i], strlen(bad[i]), &r);
                is_int(r.rc, -EBADMSG, "not an AdmissionReview #%zu: -EBADMSG", i);
                is_str(r.outcome, "error", "not an AdmissionReview #%zu: outcome error", i);
                ok(r.raw.len == 0, "not an AdmissionReview #%zu: nothing written", i);
                result_done(&r);
        }
        /* An AdmissionReview we cannot act on: allowed false with a message. */
        const char *cannot[] = {
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\"}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\",\"namespace\":\"n\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                "\"kind\":\"Pod\"},\"operation\":\"CREATE\"}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
                "\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"annotations\":{\"cloudtaser."
                "io/inject\":\"true\"}}}}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\",\"namespace\":\"n\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                "\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{\"metadata\":7}}}",
                "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
                "\"uid\":\"x\",\"namespace\":\"n\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                "\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{\"metadata\":{"
                "\"annotations\":[]}}}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(cannot); i++) {
                run_text(&cfg, cannot[i], strlen(cannot[i]), &r);
                const char *uid = NULL;
                (void) json_get_string(r.resp, "uid", &uid);
                ok(r.rc == 0 && !r.allowed && r.code == 400 && r.message && uid &&
                           strcmp(uid, "x") == 0,
                   "cannot act on #%zu: allowed false, 400, uid echoed", i);
                if (r.message)
                        diag("  %s", r.message);
                result_done(&r);
        }
        /* Too big, and an output buffer too small. */
        char *big = malloc(ADMISSION_MAX_BODY + 2);
        if (!big)
                abort();
        memset(big, ' ', ADMISSION_MAX_BODY + 1);
        big[ADMISSION_MAX_BODY + 1] = '\0';
        run_text(&cfg, big, ADMISSION_MAX_BODY + 1, &r);
        is_int(r.rc, -E2BIG, "a body over the limit: -E2BIG");
        result_done(&r);
        free(big);
        char *pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"image\":\"nginx\"}"));
        char *body = review_text("admission.k8s.io/v1", "u", "Pod", "CREATE", pod, false);
        struct buf small = BUF_INIT(64, 0);
        is_int(admission_review(&cfg, body, strlen(body), &small, NULL), -E2BIG,
               "an output buffer too small: -E2BIG");
        is_int(small.len, 0, "an output buffer too small: left empty");
        buf_done(&small);
        free(pod);
        free(body);
}

static void test_names_in_messages(void) {
        struct result r = {};
        /* A controller's pod: no name yet, generateName in the message; namespace and pull
         * secrets given to the lookup. */
        char *body = review_text(
                "admission.k8s.io/v1", "u", "Pod", "CREATE",
                "{\"metadata\":{\"generateName\":\"web-7d4f8-\",\"annotations\":{" BASE_ANN
                "}},\"spec\":{\"imagePullSecrets\":[{\"name\":\"regcred\"},{\"name\":\"other\"}],"
                "\"containers\":[{\"name\":\"app\",\"image\":\"private.example/app:1\"}]}}",
                false);
        run_text(&cfg, body, strlen(body), &r);
        ok(r.rc == 0 && !r.allowed && r.message && strstr(r.message, "pod team/web-7d4f8-*:"),
           "no name: the message names the pod by generateName");
        is_str(last_ns, "team", "the lookup gets the namespace");
        is_str(last_secrets, "regcred,other", "the lookup gets the image pull secrets");
        free(body);
        result_done(&r);

        /* Hostile names are shown sanitized and bounded. */
        char huge[5000];
        memset(huge, 'n', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = '\0';
        struct buf b = BUF_INIT(1 << 20, 0);
        (void) buf_printf(&b,
                          "{\"metadata\":{\"name\":\"a\\u001b[31mb%s\",\"annotations\":{" BASE_ANN
                          ",\"cloudtaser.io/vault-address\":\"%s\"}},\"spec\":{\"containers\":[{"
                          "\"name\":\"a\"}]}}",
                          huge, huge);
        body = review_text("admission.k8s.io/v1", "u", "Pod", "CREATE", buf_cstr(&b), false);
        run_text(&cfg, body, strlen(body), &r);
        bool clean = r.message != NULL;
        for (const char *c = r.message; c && *c; c++)
                clean = clean && (unsigned char) *c >= 0x20;
        ok(r.rc == 0 && !r.allowed && clean && strlen(r.message) < 1024 &&
                   strstr(r.message, "a?[31mbnnn"),
           "hostile name and address: a bounded, printable message");
        buf_done(&b);
        free(body);
        result_done(&r);

        /* No vault address anywhere. */
        struct admission_config c = cfg;
        c.default_vault_address = NULL;
        char *pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"command\":[\"/x\"]}"));
        run_pod(&c, pod, false, &r);
        ok(r.rc == 0 && !r.allowed && r.message &&
                   strstr(r.message, "set the annotation cloudtaser.io/vault-address"),
           "no vault address: denied, saying how to fix it");
        result_done(&r);
        /* No lookup configured. */
        c = cfg;
        c.lookup = NULL;
        free(pod);
        pod = pod_text(BASE_ANN, ONE("{\"name\":\"a\",\"image\":\"nginx\"}"));
        run_pod(&c, pod, false, &r);
        ok(r.rc == 0 && !r.allowed && r.message && strstr(r.message, "no registry access"),
           "no lookup: denied");
        result_done(&r);
        free(pod);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        struct buf b = BUF_INIT(1 << 22, 0);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (buf_append(&b, chunk, n) < 0)
                        break;
        fclose(f);
        char *s;
        if (buf_steal(&b, &s, &n) < 0)
                return NULL;
        return s;
}

static void test_fixture(void) {
        const char *top = getenv("CLOUDTASER_TOP");
        char path[4096];
        struct result r = {};
        (void) snprintf(path, sizeof(path),
                        "%s/tests/fixtures/k8s/admissionreview-v1-pod-create-request.json",
                        top ? top : ".");
        char *body = read_file(path);
        if (!ok(body, "fixture: read the real AdmissionReview")) {
                return;
        }
        run_text(&cfg, body, strlen(body), &r);
        const char *uid = NULL;
        (void) json_get_string(r.resp, "uid", &uid);
        ok(r.rc == 0 && r.allowed && !r.patch && uid &&
                   strcmp(uid, "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4") == 0,
           "fixture without opt-in: allowed unchanged, uid echoed");
        result_done(&r);

        /* Opt the same pod in (annotations added the way kubectl would have sent them). */
        static const char optin[] =
                "[{\"op\":\"add\",\"path\":\"/request/object/metadata/annotations/"
                "cloudtaser.io~1inject\",\"value\":\"true\"},{\"op\":\"add\",\"path\":\"/request/"
                "object/metadata/annotations/cloudtaser.io~1vault-role\",\"value\":\"echo\"},{"
                "\"op\":\"add\",\"path\":\"/request/object/metadata/annotations/"
                "cloudtaser.io~1secret-paths\",\"value\":\"secret/data/echo\"}]";
        struct buf out = BUF_INIT(1 << 22, 0);
        if (!ok(test_jsonpatch_apply(body, strlen(body), optin, strlen(optin), &out) == 0,
                "fixture: opted in")) {
                free(body);
                return;
        }
        lookups = 0;
        run_text(&cfg, out.data, out.len, &r);
        ok(r.rc == 0 && r.allowed && r.patch, "fixture opted in: injected");
        is_int(lookups, 1, "fixture: the image's entrypoint looked up");
        is_str(last_ns, "colin-coder", "fixture: in the request's namespace");
        /* Apply to the object, as the API server does. */
        _cleanup_json_doc_ struct json_doc *rd = NULL;
        _cleanup_buf_ struct buf obj = BUF_INIT(1 << 22, 0);
        if (json_parse(out.data, out.len, 0, NULL, &rd) < 0 ||
            json_print(json_get_path(json_doc_root(rd), "request.object"), &obj) < 0)
                abort();
        char *patched = apply(obj.data, &r, NULL);
        _cleanup_json_doc_ struct json_doc *pd = NULL;
        if (ok(patched && json_parse(patched, strlen(patched), 0, NULL, &pd) == 0,
               "fixture: the patch applies to the object")) {
                const struct json_value *p = json_doc_root(pd);
                check_pod_level("fixture", p);
                check_wrapper_accepts("fixture", p);
                const struct json_value *ctr =
                        json_array_at(json_get_path(p, "spec.containers"), 0);
                check_wrapped("fixture", ctr, "[\"/bin/echo-server\"]",
                              "https://vault.example:8200");
                const char *first = NULL, *m0 = NULL;
                (void) json_get_string(json_array_at(json_get_path(p, "spec.volumes"), 0), "name",
                                       &first);
                (void) json_get_string(json_array_at(json_get(ctr, "volumeMounts"), 0), "name",
                                       &m0);
                ok(first && strcmp(first, "default-token-rxbqq") == 0 && m0 &&
                           strcmp(m0, "default-token-rxbqq") == 0 &&
                           json_count(json_get(ctr, "ports")) == 1,
                   "fixture: the pod's own volume, mount and ports are kept");
        }
        free(patched);
        buf_done(&out);
        result_done(&r);
        free(body);
}

/* admission_review_arena(): the same response bytes as admission_review() whatever the arena's
 * budget (memory beyond it comes from the heap), and an arena reused request after request. */
static void test_arena(void) {
        char *pod = pod_text("\"cloudtaser.io/inject\":\"true\",\"cloudtaser.io/vault-role\":"
                             "\"app\",\"cloudtaser.io/secret-paths\":\"secret/data/app\"",
                             "{\"containers\":[{\"name\":\"app\",\"image\":\"app:1\","
                             "\"command\":[\"/app\"]},{\"name\":\"side\",\"image\":\"nginx\"}]}");
        char *body = review_text("admission.k8s.io/v1", "uid-1", "Pod", "CREATE", pod, false);
        _cleanup_buf_ struct buf want = BUF_INIT(1 << 22, 0), got = BUF_INIT(1 << 22, 0);
        const char *o1 = NULL, *o2 = NULL;
        struct arena a;

        is_int(admission_review(&cfg, body, strlen(body), &want, &o1), 0, "heap review");
        is_str(o1, "injected", "heap review injects");
        static const size_t budgets[] = {0, 100, 4096, 20000, 1u << 20};
        arena_init(&a, 0, ARENA_WIPE);
        for (size_t i = 0; i < ELEMENTSOF(budgets); i++)
                for (int round = 0; round < 2; round++) {
                        arena_set_budget(&a, budgets[i]);
                        buf_reset(&got);
                        int k = admission_review_arena(&cfg, &a, body, strlen(body), &got, &o2);
                        ok(k == 0 && strcmp(buf_cstr(&got), buf_cstr(&want)) == 0 && o2 &&
                                   strcmp(o2, o1) == 0,
                           "arena budget %zu, round %d: the same response", budgets[i], round);
                        if (budgets[i] == 1u << 20)
                                ok(arena_used(&a) > strlen(body),
                                   "the review's documents are in the arena (%zu bytes)",
                                   arena_used(&a));
                        arena_reset(&a);
                }
        arena_done(&a);
        free(body);
        free(pod);
}

/* A patch or response too large is a denial (400), never a bare error: with failurePolicy
 * Ignore an error would admit the pod unwrapped. */
static void test_too_large(void) {
        struct buf spec = BUF_INIT(4u * 1024 * 1024, 0);
        struct result r = {};

        /* 5000 user entries named VAULT_ADDR: one replace operation each, over JSONPATCH_MAX_OPS.
         */
        (void) buf_append_str(&spec, "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\","
                                     "\"command\":[\"/x\"],\"env\":[");
        for (int i = 0; i < 5000; i++)
                (void) buf_printf(&spec, "%s{\"name\":\"VAULT_ADDR\",\"value\":\"v%d\"}",
                                  i ? "," : "", i);
        (void) buf_append_str(&spec, "]}]}");
        char *pod = pod_text(BASE_ANN, buf_cstr(&spec));
        run_pod(&cfg, pod, false, &r);
        ok(r.rc == 0 && r.doc && !r.allowed && r.code == 400 && r.message &&
                   strstr(r.message, "the patch for this pod would be too large") && !r.patch,
           "a patch over JSONPATCH_MAX_OPS: denied with 400 (rc %d, %s)", r.rc,
           r.message ? r.message : "-");
        is_str(r.outcome, "denied", "its outcome");
        result_done(&r);
        free(pod);
        buf_done(&spec);

        /* A response over the caller's buffer: a small denial instead. */
        pod = pod_text(BASE_ANN, ONE("{\"name\":\"app\",\"image\":\"nginx\"}"));
        char *body = review_text("admission.k8s.io/v1", "uid-1", "Pod", "CREATE", pod, false);
        struct buf small = BUF_INIT(1200, 0);
        const char *outcome = NULL;
        int k = admission_review(&cfg, body, strlen(body), &small, &outcome);
        _cleanup_json_doc_ struct json_doc *d = NULL;
        const struct json_value *resp = NULL;
        const char *msg = NULL;
        bool allowed = true;
        int64_t code = 0;
        if (k == 0 && json_parse(small.data, small.len, 0, NULL, &d) == 0) {
                resp = json_get(json_doc_root(d), "response");
                (void) json_get_bool(resp, "allowed", &allowed);
                (void) json_get_int64(json_get(resp, "status"), "code", &code);
                (void) json_get_string(json_get(resp, "status"), "message", &msg);
        }
        ok(k == 0 && resp && !allowed && code == 400 && msg && strstr(msg, "too large") &&
                   !json_get(resp, "patch"),
           "a response over the buffer: denied with 400 (rc %d, %s)", k, msg ? msg : "-");
        is_str(outcome, "denied", "its outcome");
        buf_done(&small);
        free(body);
        free(pod);
}

/* The review's clock in the budget tests: it moves only when slow_lookup says so, so the test
 * never depends on how fast the machine runs the review. */
static uint64_t fake_now_ms = 1000000;
static uint64_t fake_clock_ms(void *userdata) {
        return fake_now_ms;
}

/* A registry whose lookups each take 3 s of the fake clock. */
static int slow_lookup(void *userdata, const char *ns, const char *image, const char *const *names,
                       size_t n_names, struct registry_image_config *ret, char *err,
                       size_t errlen) {
        fake_now_ms += 3000;
        return fake_lookup(userdata, ns, image, names, n_names, ret, err, errlen);
}

/* The bounds on one review's lookups: distinct images and total time. */
static void test_lookup_bounds(void) {
        struct admission_config c = cfg;
        struct result r = {};
        const char *three = "{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},"
                            "{\"name\":\"b\",\"image\":\"busybox\"},"
                            "{\"name\":\"c\",\"image\":\"jmalloc/echo-server\"}]}";
        char *pod = pod_text(BASE_ANN, three);

        c.max_lookups = 2;
        unsigned before = lookups;
        run_pod(&c, pod, false, &r);
        ok(r.rc == 0 && !r.allowed && r.message && strstr(r.message, "more than 2 distinct images"),
           "a third distinct image over max_lookups 2 denies the pod (%s)",
           r.message ? r.message : "-");
        is_int(lookups - before, 2, "and only two lookups were made");
        result_done(&r);

        c = cfg;
        c.max_lookups = 16;
        run_pod(&c, pod, false, &r);
        ok(r.rc == 0 && r.allowed && r.patch, "the same pod passes within the bounds");
        result_done(&r);

        /* A registry that takes 3 s per lookup on the fake clock, which moves only inside the
         * lookups: lookups start at 0, 3 and 6 s, and the budget is spent once reached. */
        static const struct {
                unsigned budget_ms, lookups;
                const char *denial; /* NULL: allowed */
        } budgets[] = {
                {5000, 2, "took longer than 5000 ms"}, /* the third, at 6 s, finds it spent */
                {6000, 2, "took longer than 6000 ms"}, /* reached exactly at 6 s: spent */
                {9001, 3, NULL},                       /* all three start inside it */
        };
        for (size_t i = 0; i < ELEMENTSOF(budgets); i++) {
                c = cfg;
                c.lookup_budget_ms = budgets[i].budget_ms;
                c.lookup = slow_lookup;
                c.clock_ms = fake_clock_ms;
                before = lookups;
                run_pod(&c, pod, false, &r);
                if (budgets[i].denial)
                        ok(r.rc == 0 && !r.allowed && r.message &&
                                   strstr(r.message, budgets[i].denial) &&
                                   lookups - before == budgets[i].lookups,
                           "a spent lookup budget denies the pod (budget %u ms: %u lookups, %s)",
                           budgets[i].budget_ms, lookups - before, r.message ? r.message : "-");
                else
                        ok(r.rc == 0 && r.allowed && r.patch &&
                                   lookups - before == budgets[i].lookups,
                           "a slow registry within the budget passes the pod (budget %u ms: %u "
                           "lookups)",
                           budgets[i].budget_ms, lookups - before);
                result_done(&r);
        }
        free(pod);
}

int main(void) {
        cfg.allowed_vault_addresses = allowed_addrs;
        cfg.n_allowed = ELEMENTSOF(allowed_addrs);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                run_case(&cases[i]);
        test_full_env();
        test_peer_addrs();
        test_pod_security();
        test_plain_http();
        test_ephemeral();
        test_redirects();
        test_reinvocation();
        test_container_limit();
        test_pass_through();
        test_malformed();
        test_names_in_messages();
        test_fixture();
        test_arena();
        test_too_large();
        test_lookup_bounds();
        return tap_done();
}
