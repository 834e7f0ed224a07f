/* SPDX-License-Identifier: Apache-2.0 */
/* operator/modes: see modes.h and docs/operator.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/injection.h"
#include "common/kube.h"
#include "common/macro.h"
#include "operator/modes.h"
#include "operator/podspec.h"

int modes_default_broker_address(const char *service, const char *namespace_, char *out, size_t n) {
        if (!service || !namespace_ || !kube_name_valid(service) || !kube_name_valid(namespace_))
                return -EINVAL;
        int w = snprintf(out, n, "https://%s.%s.svc:%d", service, namespace_, MODES_BROKER_PORT);
        return w < 0 || (size_t) w >= n ? -E2BIG : 0;
}

int modes_env_escape(const char *s, char **ret) {
        size_t n = 0;
        for (const char *p = s; *p; p++)
                n += *p == '$' ? 2 : 1;
        char *o = malloc(n + 1), *q = o;
        if (!o)
                return -ENOMEM;
        for (const char *p = s; *p; p++) {
                *q++ = *p;
                if (*p == '$')
                        *q++ = '$';
        }
        *q = '\0';
        *ret = o;
        return 0;
}

/* The CA and the MAC; m->missing names the first that the operator does not have. */
static int material_load(struct modes_pod *m) {
        const struct modes_keys *k = &m->c->keys;
        _cleanup_buf_ struct buf ca = BUF_INIT(INJECTION_CA_PEM_MAX, 0);
        int r;

        if (!k->broker_ca || !k->annotation_mac) {
                m->missing = "broker credentials (it serves a --tls-cert-file certificate and "
                             "keeps no credential store)";
                return 0;
        }
        r = k->broker_ca(k->userdata, &ca);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || ca.len == 0) {
                m->missing = "the CA of its broker-tls record";
                return 0;
        }
        r = k->annotation_mac(k->userdata, m->ns, m->sa, m->paths, m->env_map, m->mac);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                m->mac[0] = '\0';
                m->missing = "the annotation key (its broker-auth record)";
                return 0;
        }
        if (m->kind == MODES_TOKEN) {
                r = k->installation ? k->installation(k->userdata, m->installation) : -ENODATA;
                if (r < 0) {
                        m->installation[0] = '\0';
                        m->missing = "the installation id (its broker-token record)";
                        return 0;
                }
        }
        return modes_env_escape(buf_cstr(&ca), &m->ca_pem);
}

int modes_pod_begin(struct modes_pod *m, const struct modes_config *c, const struct annotations *a,
                    const char *ns, const struct json_value *object, struct error_report *err) {
        const char *auth = a->value[INJECTION_ROW_AUTH_METHOD], *sa = NULL;
        enum injection_auth_method method = INJECTION_AUTH_KUBERNETES;

        *m = (struct modes_pod){.c = c};
        if (auth && injection_auth_method_from_string(auth, &method) < 0)
                return 0; /* the contract's reader says why */
        m->kind = method == INJECTION_AUTH_BROKER  ? MODES_BROKER
                  : method == INJECTION_AUTH_TOKEN ? MODES_TOKEN
                                                   : MODES_OTHER;
        if (m->kind == MODES_OTHER)
                return 0;
        if (json_get_string(json_get(object, "spec"), "serviceAccountName", &sa) < 0 || !sa[0])
                sa = "default";
        m->ns = ns;
        m->sa = sa;
        m->paths = a->secret_paths ? a->secret_paths : "";
        m->env_map = a->value[INJECTION_ROW_ENV_MAP] ? a->value[INJECTION_ROW_ENV_MAP] : "";
        if (m->kind == MODES_BROKER) {
                if (a->vault_address)
                        return error_report_set(
                                err, -EPERM, 400,
                                "cloudtaser.io/vault-address is not used in broker mode: the "
                                "broker reads the secrets from the vault it is configured "
                                "with; remove the annotation");
                if (!c->broker_address)
                        return 0; /* the contract: CLOUDTASER_BROKER_ADDRESS is required */
        } else if (!c->unseal_pods)
                return 0;
        int r = material_load(m);
        if (r < 0)
                return r;
        if (m->kind == MODES_BROKER && m->missing)
                return error_report_set(
                        err, -EPERM, 500,
                        "cloudtaser.io/vault-auth-method is broker, but the operator has not "
                        "loaded %s yet; retry once it has (see the operator's log and "
                        "/readyz)",
                        m->missing);
        return 0;
}

bool modes_no_vault_address(const struct modes_pod *m) {
        return m->kind == MODES_BROKER;
}

const char *modes_row_value(const struct modes_pod *m, size_t row) {
        switch (row) {
        case INJECTION_ROW_BROKER_ADDR:
                return m->kind == MODES_BROKER ? m->c->broker_address : NULL;
        case INJECTION_ROW_BROKER_CA_PEM:
                return m->kind == MODES_BROKER ? m->ca_pem : NULL;
        case INJECTION_ROW_UNSEAL_CA_PEM:
                return m->kind == MODES_TOKEN && m->sealed ? m->ca_pem : NULL;
        default:
                return NULL;
        }
}

int modes_container_begin(struct modes_pod *m, const char *name, bool token_delivered,
                          struct error_report *err) {
        m->sealed = false;
        if (m->kind != MODES_TOKEN || token_delivered)
                return 0;
        if (!m->c->unseal_pods)
                return error_report_set(
                        err, -EPERM, 400,
                        "container %s: cloudtaser.io/vault-auth-method is token, but nothing "
                        "delivers the token: VAULT_TOKEN is required for token auth, and this "
                        "operator does not unseal pods (--unseal-pods=false); set VAULT_TOKEN "
                        "in the container's env from a Secret (valueFrom.secretKeyRef)",
                        name);
        if (m->missing)
                return error_report_set(
                        err, -EPERM, 500,
                        "container %s would start sealed (token auth without VAULT_TOKEN), "
                        "but the operator has not loaded %s yet; retry once it has (see the "
                        "operator's log and /readyz), or set VAULT_TOKEN from a Secret",
                        name, m->missing);
        if (m->n_sealed > 0)
                return error_report_set(
                        err, -EPERM, 400,
                        "container %s would start sealed like another container of the pod, "
                        "and a pod has one unseal port (%d): give all but one of them "
                        "VAULT_TOKEN from a Secret, or wrap one (cloudtaser.io/containers)",
                        name, INJECTION_UNSEAL_PORT);
        m->sealed = true;
        m->n_sealed++;
        return 0;
}

/* --- the objects ------------------------------------------------------------------------------ */

static int build_volume(struct json_doc *d, struct json_value *o, const void *arg) {
        struct json_value *pr, *src, *tok;
        int r;
        (void) arg;
        if ((r = json_add_string(d, o, "name", INJECTION_BROKER_TOKEN_VOLUME)) < 0 ||
            (r = json_add_object(d, o, "projected", &pr)) < 0 ||
            (r = json_add_int64(d, pr, "defaultMode", 0644)) < 0 || /* the API server's default */
            (r = json_add_array(d, pr, "sources", &src)) < 0 ||
            (r = json_add_object(d, src, NULL, &src)) < 0 ||
            (r = json_add_object(d, src, "serviceAccountToken", &tok)) < 0 ||
            (r = json_add_string(d, tok, "audience", BROKERPROTO_AUDIENCE)) < 0 ||
            (r = json_add_int64(d, tok, "expirationSeconds", INJECTION_BROKER_TOKEN_EXPIRY)) < 0 ||
            (r = json_add_string(d, tok, "path", "token")) < 0)
                return r;
        return 0;
}

static int build_mount(struct json_doc *d, struct json_value *o, const void *arg) {
        int r;
        (void) arg;
        if ((r = json_add_string(d, o, "name", INJECTION_BROKER_TOKEN_VOLUME)) < 0 ||
            (r = json_add_string(d, o, "mountPath", INJECTION_BROKER_TOKEN_DIR)) < 0 ||
            (r = json_add_bool(d, o, "readOnly", true)) < 0)
                return r;
        return 0;
}

static int build_probe(struct json_doc *d, struct json_value *o, const void *arg) {
        struct json_value *g;
        int r;
        (void) arg;
        if ((r = json_add_object(d, o, "httpGet", &g)) < 0 ||
            (r = json_add_string(d, g, "path", MODES_READY_PATH)) < 0 ||
            (r = json_add_int64(d, g, "port", INJECTION_UNSEAL_PORT)) < 0 ||
            (r = json_add_string(d, g, "scheme", "HTTPS")) < 0)
                return r;
        return 0;
}

/* Adds (at path) or replaces (at path_have) the object fn builds, unless have equals it. */
static int ensure_object(struct jsonpatch *p, podspec_build_fn fn, const struct json_value *have,
                         const char *path) {
        _cleanup_json_doc_ struct json_doc *want = NULL;
        int r = podspec_desired_value(fn, NULL, &want);
        if (r < 0)
                return r;
        if (have && podspec_json_equal(have, json_doc_root(want)))
                return 0;
        return jsonpatch_op_copy(p, have ? JSONPATCH_REPLACE : JSONPATCH_ADD, path,
                                 json_doc_root(want));
}

static bool same_dir(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        while (na > 1 && a[na - 1] == '/')
                na--;
        while (nb > 1 && b[nb - 1] == '/')
                nb--;
        return na == nb && memcmp(a, b, na) == 0;
}

static int ensure_token_mount(struct jsonpatch *p, size_t ci, const struct json_value *ctr,
                              const char *name, struct error_report *err) {
        _cleanup_buf_ struct buf path = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const struct json_value *mounts = json_get(ctr, "volumeMounts"), *ours = NULL;
        size_t i = 0, at = 0;
        int r;

        /* The operator's own mount was patched in first: the array exists by now. */
        if (podspec_absent(mounts)) {
                if ((r = podspec_pathf(&path, "/spec/containers/%zu/volumeMounts/-", ci)) < 0)
                        return r;
                return ensure_object(p, build_mount, NULL, buf_cstr(&path));
        }
        if (json_type(mounts) != JSON_ARRAY)
                return error_report_set(err, -EPERM, 400,
                                        "container %s: volumeMounts is not an array", name);
        JSON_FOREACH(mt, mounts) {
                const char *vol, *mp;
                if (json_get_string(mt, "name", &vol) == 0 &&
                    strcmp(vol, INJECTION_BROKER_TOKEN_VOLUME) == 0) {
                        if (ours)
                                return error_report_set(
                                        err, -EPERM, 400,
                                        "container %s mounts the volume %s twice; the "
                                        "operator mounts it once, read-only at %s: remove the "
                                        "other mounts",
                                        name, INJECTION_BROKER_TOKEN_VOLUME,
                                        INJECTION_BROKER_TOKEN_DIR);
                        ours = mt;
                        at = i;
                } else if (json_get_string(mt, "mountPath", &mp) == 0 &&
                           same_dir(mp, INJECTION_BROKER_TOKEN_DIR))
                        return error_report_set(
                                err, -EPERM, 400,
                                "container %s already mounts another volume at %s, where the "
                                "operator mounts the broker token; move that mount",
                                name, INJECTION_BROKER_TOKEN_DIR);
                i++;
        }
        if ((r = ours ? podspec_pathf(&path, "/spec/containers/%zu/volumeMounts/%zu", ci, at)
                      : podspec_pathf(&path, "/spec/containers/%zu/volumeMounts/-", ci)) < 0)
                return r;
        return ensure_object(p, build_mount, ours, buf_cstr(&path));
}

int modes_container_patch(struct modes_pod *m, struct jsonpatch *p, size_t ci,
                          const struct json_value *ctr, const char *name,
                          struct error_report *err) {
        _cleanup_buf_ struct buf path = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        int r;

        if (m->kind == MODES_BROKER)
                return ensure_token_mount(p, ci, ctr, name, err);
        if (!m->sealed || !podspec_absent(json_get(ctr, "readinessProbe")))
                return 0; /* the container's own probe is kept */
        if ((r = podspec_pathf(&path, "/spec/containers/%zu/readinessProbe", ci)) < 0)
                return r;
        return ensure_object(p, build_probe, NULL, buf_cstr(&path));
}

/* Only wrapped containers mount the broker token: with it, anyone may open the pod's session.
 * lists[from..] of spec are looked at. */
static const char *const lists[] = {"containers", "initContainers", "ephemeralContainers"};
static int check_token_mounts(const struct json_value *spec, const bool *wrap, size_t from,
                              int code, struct error_report *err) {
        for (size_t l = from; l < ELEMENTSOF(lists); l++) {
                size_t i = 0;
                JSON_FOREACH(ctr, json_type(json_get(spec, lists[l])) == JSON_ARRAY
                                          ? json_get(spec, lists[l])
                                          : NULL) {
                        bool wrapped = l == 0 && wrap && wrap[i];
                        i++;
                        if (wrapped)
                                continue;
                        JSON_FOREACH(mt, json_type(json_get(ctr, "volumeMounts")) == JSON_ARRAY
                                                 ? json_get(ctr, "volumeMounts")
                                                 : NULL) {
                                const char *vol, *n = "(no name)";
                                if (json_get_string(mt, "name", &vol) < 0 ||
                                    strcmp(vol, INJECTION_BROKER_TOKEN_VOLUME) != 0)
                                        continue;
                                (void) json_get_string(ctr, "name", &n);
                                return error_report_set(
                                        err, -EPERM, code,
                                        "%.80s (not wrapped) mounts the volume %s, the "
                                        "broker token that only wrapped containers get; "
                                        "remove that mount",
                                        n, INJECTION_BROKER_TOKEN_VOLUME);
                        }
                }
        }
        return 0;
}

/* No other container of a sealed pod may claim the wrapper's unseal port. */
static int check_unseal_port(const struct json_value *spec, struct error_report *err) {
        JSON_FOREACH(ctr, json_type(json_get(spec, "containers")) == JSON_ARRAY
                                  ? json_get(spec, "containers")
                                  : NULL) {
                JSON_FOREACH(port, json_type(json_get(ctr, "ports")) == JSON_ARRAY
                                           ? json_get(ctr, "ports")
                                           : NULL) {
                        int64_t n;
                        const char *name = "(no name)";
                        if (json_get_int64(port, "containerPort", &n) < 0 ||
                            n != INJECTION_UNSEAL_PORT)
                                continue;
                        (void) json_get_string(ctr, "name", &name);
                        return error_report_set(
                                err, -EPERM, 400,
                                "container %.80s declares port %d, where the sealed "
                                "wrapper waits for its token; use another port",
                                name, INJECTION_UNSEAL_PORT);
                }
        }
        return 0;
}

static int ensure_volume(struct jsonpatch *p, const struct json_value *spec) {
        _cleanup_buf_ struct buf path = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const struct json_value *vols = json_get(spec, "volumes");
        ssize_t i = json_type(vols) == JSON_ARRAY
                            ? podspec_find_named(vols, INJECTION_BROKER_TOKEN_VOLUME)
                            : -1;
        int r = i >= 0 ? podspec_pathf(&path, "/spec/volumes/%zd", i)
                       : podspec_pathf(&path, "/spec/volumes/-");
        if (r < 0)
                return r;
        /* A volume of the pod author under that name is replaced: only ours may be mounted at
         * INJECTION_BROKER_TOKEN_DIR, and only by wrapped containers. */
        return ensure_object(p, build_volume, i >= 0 ? json_array_at(vols, (size_t) i) : NULL,
                             buf_cstr(&path));
}

/* metadata.<map>[key] = value. */
static int ensure_meta(struct jsonpatch *p, const struct json_value *meta, const char *map,
                       const char *key, const char *value) {
        _cleanup_buf_ struct buf path = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const struct json_value *obj = json_get(meta, map);
        const char *have;
        struct json_value *op, *o;
        int r;

        if ((r = podspec_pathf(&path, "/metadata/%s", map)) < 0)
                return r;
        if (podspec_absent(obj)) {
                if ((r = jsonpatch_op(p, JSONPATCH_ADD, buf_cstr(&path), &op)) < 0 ||
                    (r = json_add_object(p->doc, op, "value", &o)) < 0)
                        return r;
                return json_add_string(p->doc, o, key, value);
        }
        if (json_get_string(obj, key, &have) == 0 && strcmp(have, value) == 0)
                return 0;
        if ((r = jsonpatch_path_push(&path, key)) < 0)
                return r;
        return jsonpatch_op_string(p, json_get(obj, key) ? JSONPATCH_REPLACE : JSONPATCH_ADD,
                                   buf_cstr(&path), value);
}

int modes_pod_patch(struct modes_pod *m, struct jsonpatch *p, const struct json_value *object,
                    const bool *wrap, struct error_report *err) {
        const struct json_value *meta = json_get(object, "metadata"),
                                *spec = json_get(object, "spec");
        const char *label;
        int r;

        if (m->n_sealed == 0 &&
            json_get_string(json_get(meta, "labels"), MODES_SEALED_LABEL, &label) == 0)
                return error_report_set(
                        err, -EPERM, 403,
                        "the label %s is set by the operator only, on pods that start sealed "
                        "and wait for the operator's token; remove it",
                        MODES_SEALED_LABEL);
        if (m->kind == MODES_BROKER) {
                if ((r = check_token_mounts(spec, wrap, 0, 400, err)) < 0 ||
                    (r = ensure_volume(p, spec)) < 0)
                        return r;
        } else if (m->n_sealed > 0) {
                if (!m->installation[0]) /* container_begin denies before */
                        return error_report_set(err, -EPERM, 500,
                                                "the operator has no installation id for this pod");
                if ((r = check_unseal_port(spec, err)) < 0 ||
                    (r = ensure_meta(p, meta, "labels", MODES_SEALED_LABEL, m->installation)) < 0)
                        return r;
        } else
                return 0;
        if (!m->mac[0]) /* begin and container_begin deny before: never an empty MAC */
                return error_report_set(err, -EPERM, 500,
                                        "the operator has no annotation MAC for this pod");
        /* The MAC of what was admitted; a value the pod author wrote is replaced. */
        return ensure_meta(p, meta, "annotations", BROKERPROTO_ANNOTATION_MAC, m->mac);
}

int modes_check_ephemeral(const struct json_value *object, struct error_report *err) {
        return check_token_mounts(json_get(object, "spec"), NULL, 2, 403, err);
}

void modes_pod_done(struct modes_pod *m) {
        if (!m)
                return;
        free(m->ca_pem);
        *m = (struct modes_pod){};
}
