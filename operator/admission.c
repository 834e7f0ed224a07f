/* SPDX-License-Identifier: Apache-2.0 */
/* operator/admission: see admission.h and docs/operator.md. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/base64.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "operator/admission.h"
#include "operator/annotations.h"
#include "operator/jsonpatch.h"
#include "operator/podspec.h"

#define MAX_WARNINGS 8
#define WARNING_MAX 200
#define MESSAGE_MAX 1024
#define NAME_MAX_SHOWN 80
#define PATCH_MAX_BYTES (16u * 1024u * 1024u)
#define UID_MAX 128
#define IMAGE_MAX 1024

/* One image lookup per distinct image in a review. */
struct lookup_entry {
        const char *image;
        int r;
        struct registry_image_config cfg;
        char err[512]; /* a registry error with its fix (cloud registries name three) */
};

struct review {
        const struct admission_config *c;
        struct arena *arena; /* the review's documents */
        const char *ns;
        char pod[2 * NAME_MAX_SHOWN + 16]; /* "ns/name" or "ns/generateName*" for messages */

        struct annotations ann;
        char vault_addr[ANNOTATION_ADDRESS_MAX + 8]; /* canonical (annotation or default) */
        char *ca_pem_escaped;                        /* the operator's CA PEM, '$' doubled */
        const struct json_value *spec;
        const struct json_value *containers;
        const struct json_value *init_containers;
        size_t n_containers;

        const char *pull_secrets[ADMISSION_MAX_PULL_SECRETS];
        size_t n_pull_secrets;
        struct lookup_entry *lookups;
        size_t n_lookups, n_fetched; /* entries / lookups really made */
        uint64_t start_ms;           /* the config's clock when the review began */
        size_t command_annotation_uses;
        int ipc_lock; /* -1 not decided yet, 0 not added (Pod Security), 1 added */

        struct jsonpatch patch;
        struct modes_pod m; /* broker and sealed token mode (operator/modes.h) */
        struct error_report merr;

        bool denied;
        int code;
        char message[MESSAGE_MAX];
        char warnings[MAX_WARNINGS][WARNING_MAX];
        size_t n_warnings;
};

/* Copies s into out for a message: at most max bytes, control characters and DEL as '?'. */
static void sanitize(char *out, size_t outlen, const char *s, size_t max) {
        size_t i = 0;

        if (outlen == 0)
                return;
        for (; s && s[i] && i < max && i + 1 < outlen; i++)
                out[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        out[i] = '\0';
        if (s && s[i] && i + 4 < outlen && i == max) {
                memcpy(out + i, "...", 4);
        }
}

static int deny(struct review *r, int code, const char *fmt, ...) _printf_(3, 4);
static int deny(struct review *r, int code, const char *fmt, ...) {
        va_list ap;
        int n;

        if (r->denied) /* the first reason wins */
                return -EPERM;
        r->denied = true;
        r->code = code;
        n = snprintf(r->message, sizeof(r->message), "pod %s: ", r->pod);
        if (n < 0 || (size_t) n >= sizeof(r->message))
                n = 0;
        va_start(ap, fmt);
        (void) vsnprintf(r->message + n, sizeof(r->message) - (size_t) n, fmt, ap);
        va_end(ap);
        /* Everything above was sanitized; the format strings hold no control characters. */
        return -EPERM;
}

static void warn(struct review *r, const char *fmt, ...) _printf_(2, 3);
static void warn(struct review *r, const char *fmt, ...) {
        va_list ap;

        if (r->n_warnings >= MAX_WARNINGS)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(r->warnings[r->n_warnings], WARNING_MAX, fmt, ap);
        va_end(ap);
        r->n_warnings++;
}

/* A denial from operator/modes (-EPERM), or its error. */
static int modes_denied(struct review *r, int k) {
        return k == -EPERM ? deny(r, r->merr.status, "%s", r->merr.message) : k;
}

/* --- JSON helpers --------------------------------------------------------------------------- */

/* --- pod-level changes --------------------------------------------------------------------------
 */

static int ensure_injected_annotation(struct review *r, const struct json_value *annotations) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const char *v;
        int k;

        if (json_get_string(annotations, ANNOTATION_INJECTED, &v) == 0 && strcmp(v, "true") == 0)
                return 0;
        if ((k = buf_append_str(&p, "/metadata/annotations")) < 0 ||
            (k = jsonpatch_path_push(&p, ANNOTATION_INJECTED)) < 0)
                return k;
        return jsonpatch_op_string(&r->patch,
                                   json_get(annotations, ANNOTATION_INJECTED) ? JSONPATCH_REPLACE
                                                                              : JSONPATCH_ADD,
                                   buf_cstr(&p), "true");
}

static int ensure_volume(struct review *r) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        _cleanup_json_doc_ struct json_doc *want = NULL;
        const struct json_value *vols = json_get(r->spec, "volumes");
        struct json_value *op, *a;
        int k;

        if (podspec_absent(vols)) {
                if ((k = jsonpatch_op(&r->patch, JSONPATCH_ADD, "/spec/volumes", &op)) < 0 ||
                    (k = json_add_array(r->patch.doc, op, "value", &a)) < 0 ||
                    (k = json_add_object(r->patch.doc, a, NULL, &a)) < 0)
                        return k;
                return podspec_build_volume(r->patch.doc, a);
        }
        if (json_type(vols) != JSON_ARRAY)
                return deny(r, 400, "spec.volumes is not an array");
        ssize_t i = podspec_find_named(vols, INJECTION_VOLUME);
        if (i < 0) {
                if ((k = podspec_pathf(&p, "/spec/volumes/%zu", json_count(vols))) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &a)) < 0)
                        return k;
                return podspec_build_volume(r->patch.doc, a);
        }
        const struct json_value *have = json_array_at(vols, (size_t) i);
        const char *medium;
        /* Ours if it is an in-memory emptyDir and nothing else; anything else is the user's
         * volume under our name: refuse rather than replace it or mount it into /cloudtaser. */
        if (json_count(have) != 2 ||
            json_get_string(json_get(have, "emptyDir"), "medium", &medium) != 0 ||
            strcmp(medium, "Memory") != 0)
                return deny(r, 400,
                            "the pod already has a volume named %s that is not an in-memory "
                            "emptyDir: the operator needs that name for the wrapper; rename the "
                            "volume",
                            INJECTION_VOLUME);
        if ((k = podspec_desired_value(podspec_build_volume_fn, NULL, &want)) < 0)
                return k;
        if (podspec_json_equal(have, json_doc_root(want)))
                return 0;
        if ((k = podspec_pathf(&p, "/spec/volumes/%zd", i)) < 0)
                return k;
        return jsonpatch_op_copy(&r->patch, JSONPATCH_REPLACE, buf_cstr(&p), json_doc_root(want));
}

static int ensure_init_container(struct review *r) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        _cleanup_json_doc_ struct json_doc *want = NULL;
        const struct json_value *inits = r->init_containers;
        struct json_value *op, *a;
        int k;

        if (podspec_find_named(r->containers, INJECTION_INIT_CONTAINER) >= 0)
                return deny(r, 400,
                            "an app container is named %s, the name of the operator's init "
                            "container; rename it",
                            INJECTION_INIT_CONTAINER);
        if (podspec_absent(inits)) {
                if ((k = jsonpatch_op(&r->patch, JSONPATCH_ADD, "/spec/initContainers", &op)) < 0 ||
                    (k = json_add_array(r->patch.doc, op, "value", &a)) < 0 ||
                    (k = json_add_object(r->patch.doc, a, NULL, &a)) < 0)
                        return k;
                return podspec_build_init_container(r->patch.doc, a, r->c->init_image);
        }
        ssize_t i = podspec_find_named(inits, INJECTION_INIT_CONTAINER);
        if (i < 0) {
                /* First, so that the wrapper is in place before any other init container runs
                 * (one of them may be wrapped in a later version). */
                if ((k = jsonpatch_op(&r->patch, JSONPATCH_ADD, "/spec/initContainers/0", &op)) <
                            0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &a)) < 0)
                        return k;
                return podspec_build_init_container(r->patch.doc, a, r->c->init_image);
        }
        /* Already there (a second pass, or a pod copied from an injected one): make each field we
         * set what it must be, leave the rest (defaults the API server added) alone. Another
         * webhook may have put its own init container before ours: the position is kept. */
        const struct json_value *have = json_array_at(inits, (size_t) i);
        if (json_type(have) != JSON_OBJECT)
                return deny(r, 400, "spec.initContainers[%zd] is not an object", i);
        if ((k = podspec_desired_value(podspec_build_init_fn, r->c->init_image, &want)) < 0)
                return k;
        JSON_FOREACH(field, json_doc_root(want)) {
                const char *key = json_key(field);
                const struct json_value *cur = json_get(have, key);
                if (podspec_json_equal(cur, field))
                        continue;
                if ((k = podspec_pathf(&p, "/spec/initContainers/%zd/%s", i, key)) < 0 ||
                    (k = jsonpatch_op_copy(&r->patch, cur ? JSONPATCH_REPLACE : JSONPATCH_ADD,
                                           buf_cstr(&p), field)) < 0)
                        return k;
        }
        return 0;
}

/* --- one wrapped container
 * ------------------------------------------------------------------------ */

struct env_var {
        const char *name, *value;
        size_t name_len; /* strlen(name): the contract's reader looks each name up often */
};

static uint64_t monotonic_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static uint64_t review_clock_ms(const struct admission_config *c) {
        return c->clock_ms ? c->clock_ms(c->clock_userdata) : monotonic_ms();
}

static int lookup_image(struct review *r, const char *image, struct lookup_entry **ret) {
        for (size_t i = 0; i < r->n_lookups; i++)
                if (strcmp(r->lookups[i].image, image) == 0) {
                        *ret = &r->lookups[i];
                        return 0;
                }
        struct lookup_entry *e = &r->lookups[r->n_lookups++]; /* sized for every container */
        *e = (struct lookup_entry){.image = image};
        unsigned budget = r->c->lookup_budget_ms ? r->c->lookup_budget_ms : 6000;
        unsigned max = r->c->max_lookups ? r->c->max_lookups : 16;
        if (r->n_fetched >= max) {
                e->r = -E2BIG;
                (void) snprintf(e->err, sizeof(e->err),
                                "more than %u distinct images of this pod need a lookup", max);
        } else if (review_clock_ms(r->c) - r->start_ms >= budget) {
                e->r = -ETIMEDOUT;
                (void) snprintf(e->err, sizeof(e->err),
                                "the pod's entrypoint lookups took longer than %u ms in all",
                                budget);
        } else if (!r->c->lookup) {
                e->r = -ENOTSUP;
                (void) snprintf(e->err, sizeof(e->err),
                                "the operator has no registry access configured");
        } else {
                r->n_fetched++;
                e->r = r->c->lookup(r->c->lookup_userdata, r->ns, image, r->pull_secrets,
                                    r->n_pull_secrets, &e->cfg, e->err, sizeof(e->err));
                if (e->r >= 0 && (!e->cfg.entrypoint || !e->cfg.cmd)) {
                        registry_image_config_done(&e->cfg);
                        e->r = -EBADMSG;
                        (void) snprintf(e->err, sizeof(e->err),
                                        "the registry lookup returned no image configuration");
                }
                if (e->r >= 0)
                        e->r = 0;
                else if (e->r == -ENOMEM)
                        return e->r;
        }
        *ret = e;
        return 0;
}

/* The original entrypoint and arguments of container ctr (index i), following Kubernetes (and
 * the container runtime: containerd's and CRI-O's merge of the container with the image config):
 * - command set (non-empty): entrypoint = command, arguments = args (the image's CMD ignored);
 * - else the image's ENTRYPOINT, and args when set (non-empty), else the image's CMD.
 * cloudtaser.io/command stands for the image's ENTRYPOINT and CMD when set (no lookup). */
static int effective_command(struct review *r, size_t i, const struct json_value *ctr,
                             const char *name, struct podspec_strv *ret_entry,
                             struct podspec_strv *ret_args) {
        const struct json_value *cmd = json_get(ctr, "command"), *args = json_get(ctr, "args");
        struct podspec_strv entry = {}, a = {};
        int k;

        if (!podspec_absent(args) && podspec_strv_from_json(args, &a) < 0)
                return deny(r, 400, "container %s: args is not an array of strings", name);
        if (!podspec_absent(cmd) && json_count(cmd) > 0) {
                k = podspec_strv_from_json(cmd, &entry);
                if (k < 0) {
                        podspec_strv_done(&a);
                        return k == -ENOMEM ? k
                                            : deny(r, 400,
                                                   "container %s: command is not an array of "
                                                   "strings",
                                                   name);
                }
        } else if (!podspec_absent(cmd) && json_type(cmd) != JSON_ARRAY) {
                podspec_strv_done(&a);
                return deny(r, 400, "container %s: command is not an array of strings", name);
        } else if (r->ann.command) {
                r->command_annotation_uses++;
                k = podspec_strv_from_c_escaped(r->ann.command, r->ann.n_command, &entry);
                if (k < 0) {
                        podspec_strv_done(&a);
                        return k;
                }
        } else {
                const char *image;
                struct lookup_entry *e;
                char shown[NAME_MAX_SHOWN + 4], why[520];

                if (json_get_string(ctr, "image", &image) < 0 || !image[0] ||
                    strlen(image) > IMAGE_MAX) {
                        podspec_strv_done(&a);
                        return deny(r, 400, "container %s has no command and no valid image", name);
                }
                k = lookup_image(r, image, &e);
                if (k < 0) {
                        podspec_strv_done(&a);
                        return k;
                }
                if (e->r < 0) {
                        podspec_strv_done(&a);
                        sanitize(shown, sizeof(shown), image, NAME_MAX_SHOWN);
                        sanitize(why, sizeof(why), e->err[0] ? e->err : strerror(-e->r), 500);
                        return deny(r, 400,
                                    "container %s has no command and the entrypoint of image %s "
                                    "could not be read from its registry (%s); set the "
                                    "container's command, or the annotation "
                                    "cloudtaser.io/command to the image's entrypoint as a JSON "
                                    "array",
                                    name, shown, why);
                }
                k = podspec_strv_from_c_escaped(e->cfg.entrypoint, e->cfg.n_entrypoint, &entry);
                if (k >= 0 && a.n == 0) {
                        podspec_strv_done(&a);
                        k = podspec_strv_from_c_escaped(e->cfg.cmd, e->cfg.n_cmd, &a);
                }
                if (k < 0) {
                        podspec_strv_done(&entry);
                        podspec_strv_done(&a);
                        return k;
                }
        }
        (void) i;
        if (entry.n + a.n == 0 || (entry.n > 0 && !entry.v[0][0]) || (entry.n == 0 && !a.v[0][0])) {
                podspec_strv_done(&entry);
                podspec_strv_done(&a);
                return deny(r, 400,
                            "container %s: the image has no ENTRYPOINT or CMD and the container "
                            "no command; set the container's command, or the annotation "
                            "cloudtaser.io/command",
                            name);
        }
        *ret_entry = entry;
        *ret_args = a;
        return 0;
}

/* CLOUDTASER_ORIGINAL_CMD: entrypoint and arguments as one JSON array. */
static int original_cmd(const struct podspec_strv *entry, const struct podspec_strv *args,
                        struct buf *out) {
        int k = buf_append_byte(out, '[');
        for (size_t i = 0; k >= 0 && i < entry->n + args->n; i++) {
                if (i > 0)
                        k = buf_append_byte(out, ',');
                if (k >= 0)
                        k = json_append_quoted(out,
                                               i < entry->n ? entry->v[i] : args->v[i - entry->n]);
        }
        if (k >= 0)
                k = buf_append_byte(out, ']');
        return k;
}

static bool env_entry_is(const struct json_value *e, const char *value) {
        const char *v;
        if (json_type(e) != JSON_OBJECT)
                return false;
        /* The API server stores an empty value as no value at all: {"name": N}. */
        if (!value[0] && json_count(e) == 1)
                return true;
        return json_count(e) == 2 && json_get_string(e, "value", &v) == 0 && strcmp(v, value) == 0;
}

/* Wrapper variables a pod may set itself are the contract's INJECTION_SET_POD rows (the token
 * for the token auth method, the log settings). Every other CLOUDTASER_* / VAULT_* variable could
 * redirect the wrapper (VAULT_CACERT, CLOUDTASER_SA_TOKEN_PATH...): only the operator writes
 * them. */
static bool pod_may_set(const char *n) {
        const struct injection_variable *v = injection_variable_by_name(n);
        return v && v->setter == INJECTION_SET_POD;
}

static int ensure_env(struct review *r, size_t ci, const char *name, const struct json_value *ctr,
                      const struct env_var *vars, size_t n_vars) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const struct json_value *env = json_get(ctr, "env");
        struct json_value *op, *a, *o;
        size_t appended = 0, count;
        int k;

        JSON_FOREACH(e, json_type(env) == JSON_ARRAY ? env : NULL) {
                const char *n;
                bool ours = false;
                if (json_get_string(e, "name", &n) < 0 || !injection_is_wrapper_variable(n) ||
                    pod_may_set(n))
                        continue;
                /* Ours: a variable we write with a value (replaced in place), or our own empty
                 * placeholder of one we write empty (an injected pod reviewed again). */
                for (size_t i = 0; i < n_vars && !ours; i++)
                        ours = strcmp(n, vars[i].name) == 0 &&
                               (vars[i].value[0] || env_entry_is(e, ""));
                if (!ours) {
                        char shown[NAME_MAX_SHOWN + 4];
                        sanitize(shown, sizeof(shown), n, NAME_MAX_SHOWN);
                        return deny(r, 400,
                                    "container %s sets %s, a variable of the cloudtaser wrapper "
                                    "that only the operator may set; remove it from the "
                                    "container's env",
                                    name, shown);
                }
        }

        if (podspec_absent(env)) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/env", ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_array(r->patch.doc, op, "value", &a)) < 0)
                        return k;
                for (size_t i = 0; i < n_vars; i++)
                        if ((k = json_add_object(r->patch.doc, a, NULL, &o)) < 0 ||
                            (k = podspec_build_env(r->patch.doc, o, vars[i].name, vars[i].value)) <
                                    0)
                                return k;
                return 0;
        }
        if (json_type(env) != JSON_ARRAY)
                return deny(r, 400, "container %s: env is not an array", name);
        count = json_count(env);
        for (size_t i = 0; i < n_vars; i++) {
                size_t j = 0;
                bool found = false;
                /* Every entry of that name (Kubernetes lets the last of duplicates win). */
                JSON_FOREACH(e, env) {
                        const char *n;
                        if (json_get_string(e, "name", &n) == 0 && strcmp(n, vars[i].name) == 0) {
                                found = true;
                                if (!env_entry_is(e, vars[i].value)) {
                                        if (vars[i].name !=
                                            injection_variables[INJECTION_ROW_ORIGINAL_CMD].name)
                                                warn(r,
                                                     "container %s: env %s replaced by the "
                                                     "operator's value",
                                                     name, vars[i].name);
                                        if ((k = podspec_pathf(&p, "/spec/containers/%zu/env/%zu",
                                                               ci, j)) < 0 ||
                                            (k = jsonpatch_op(&r->patch, JSONPATCH_REPLACE,
                                                              buf_cstr(&p), &op)) < 0 ||
                                            (k = json_add_object(r->patch.doc, op, "value", &o)) <
                                                    0 ||
                                            (k = podspec_build_env(r->patch.doc, o, vars[i].name,
                                                                   vars[i].value)) < 0)
                                                return k;
                                }
                        }
                        j++;
                }
                if (found)
                        continue;
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/env/%zu", ci, count + appended)) <
                            0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &o)) < 0 ||
                    (k = podspec_build_env(r->patch.doc, o, vars[i].name, vars[i].value)) < 0)
                        return k;
                appended++;
        }
        return 0;
}

/* A mountPath as the kubelet resolves it: repeated '/' and "." segments collapsed, no trailing
 * '/'. -EINVAL for a ".." segment (refused rather than resolved), -E2BIG when out is too small. */
static int normalize_mount_path(const char *path, char *out, size_t outlen) {
        size_t o = 0;

        if (outlen < 2)
                return -E2BIG;
        for (const char *s = path; *s;) {
                size_t n;
                while (*s == '/')
                        s++;
                n = strcspn(s, "/");
                if (n == 0)
                        break;
                if (n == 1 && s[0] == '.') {
                        s += n;
                        continue;
                }
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return -EINVAL;
                if (o + 1 + n + 1 > outlen)
                        return -E2BIG;
                out[o++] = '/';
                memcpy(out + o, s, n);
                o += n;
                s += n;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = '\0';
        return 0;
}

/* 1 when path (normalised) is /cloudtaser or under it, 0 when not, -EINVAL when it cannot be
 * told (a ".." segment, or too long). */
static int is_under_mount_path(const char *path) {
        char norm[4096];
        size_t n = strlen(INJECTION_MOUNT_PATH);

        if (normalize_mount_path(path, norm, sizeof(norm)) < 0)
                return -EINVAL;
        return strncmp(norm, INJECTION_MOUNT_PATH, n) == 0 && (norm[n] == '\0' || norm[n] == '/');
}

/* Whether a container (of any kind) mounts the wrapper's volume. */
static bool mounts_bin_volume(const struct json_value *ctr) {
        const char *vol;
        JSON_FOREACH(m, json_type(json_get(ctr, "volumeMounts")) == JSON_ARRAY
                                ? json_get(ctr, "volumeMounts")
                                : NULL) {
                if (json_get_string(m, "name", &vol) == 0 && strcmp(vol, INJECTION_VOLUME) == 0)
                        return true;
        }
        return false;
}

/* The wrapper's volume is mounted only where the mutation mounts it: read-only at /cloudtaser in
 * wrapped containers, and in cloudtaser-init. Any other mount could overwrite the wrapper before
 * the workload starts, or swap it afterwards. */
static int check_bin_mounts(struct review *r, const bool *wrap) {
        static const char *const lists[] = {"initContainers", "ephemeralContainers"};
        size_t ci = 0;
        const char *n;
        char shown[NAME_MAX_SHOWN + 4];

        JSON_FOREACH(ctr, r->containers) {
                if (!wrap[ci] && mounts_bin_volume(ctr)) {
                        (void) json_get_string(ctr, "name", &n);
                        sanitize(shown, sizeof(shown), n, NAME_MAX_SHOWN);
                        return deny(r, 400,
                                    "container %s mounts the volume %s, which holds the "
                                    "wrapper and is mounted by the operator only; remove that "
                                    "mount",
                                    shown, INJECTION_VOLUME);
                }
                ci++;
        }
        for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                const struct json_value *arr = json_get(r->spec, lists[l]);
                if (!podspec_absent(arr) && json_type(arr) != JSON_ARRAY)
                        return deny(r, 400, "spec.%s is not an array", lists[l]);
                JSON_FOREACH(ctr, arr) {
                        n = NULL;
                        (void) json_get_string(ctr, "name", &n);
                        if (l == 0 && n && strcmp(n, INJECTION_INIT_CONTAINER) == 0)
                                continue; /* ours: made what it must be by the patch */
                        if (!mounts_bin_volume(ctr))
                                continue;
                        sanitize(shown, sizeof(shown), n ? n : "(no name)", NAME_MAX_SHOWN);
                        return deny(r, 400,
                                    "%s container %s mounts the volume %s, which holds the "
                                    "wrapper and is mounted by the operator only; remove that "
                                    "mount",
                                    l == 0 ? "init" : "ephemeral", shown, INJECTION_VOLUME);
                }
        }
        return 0;
}

/* An UPDATE of pods/ephemeralcontainers (kubectl debug): an ephemeral container may not mount the
 * wrapper's volume, read-write it could replace the wrapper that the app container runs at its
 * next restart. Ephemeral containers already in the pod were checked when they were added. */
static int check_ephemeral_mounts(struct review *r, const struct json_value *object) {
        const struct json_value *arr = json_get(json_get(object, "spec"), "ephemeralContainers");
        char shown[NAME_MAX_SHOWN + 4];
        const char *n;

        if (!podspec_absent(arr) && json_type(arr) != JSON_ARRAY)
                return deny(r, 400, "spec.ephemeralContainers is not an array");
        JSON_FOREACH(ctr, arr) {
                if (!mounts_bin_volume(ctr))
                        continue;
                n = NULL;
                (void) json_get_string(ctr, "name", &n);
                sanitize(shown, sizeof(shown), n ? n : "(no name)", NAME_MAX_SHOWN);
                return deny(r, 403,
                            "ephemeral container %s mounts the volume %s, which holds the "
                            "wrapper: ephemeral containers (kubectl debug) may not mount it",
                            shown, INJECTION_VOLUME);
        }
        return 0;
}

static int ensure_mount(struct review *r, size_t ci, const char *name,
                        const struct json_value *ctr) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        _cleanup_json_doc_ struct json_doc *want = NULL;
        const struct json_value *mounts = json_get(ctr, "volumeMounts");
        struct json_value *op, *a;
        ssize_t ours = -1, i = 0;
        int k;

        if (podspec_absent(mounts)) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/volumeMounts", ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_array(r->patch.doc, op, "value", &a)) < 0 ||
                    (k = json_add_object(r->patch.doc, a, NULL, &a)) < 0)
                        return k;
                return podspec_build_mount(r->patch.doc, a);
        }
        if (json_type(mounts) != JSON_ARRAY)
                return deny(r, 400, "container %s: volumeMounts is not an array", name);
        JSON_FOREACH(m, mounts) {
                const char *vol, *path;
                int under;
                if (json_get_string(m, "name", &vol) == 0 && strcmp(vol, INJECTION_VOLUME) == 0) {
                        /* The first is made ours (replaced below); a second one is not. */
                        if (ours >= 0)
                                return deny(r, 400,
                                            "container %s mounts the volume %s twice; the "
                                            "operator mounts it once, read-only at %s: remove "
                                            "the other mounts",
                                            name, INJECTION_VOLUME, INJECTION_MOUNT_PATH);
                        ours = i;
                } else if (json_get_string(m, "mountPath", &path) == 0 &&
                           (under = is_under_mount_path(path)) != 0)
                        return under < 0 ? deny(r, 400,
                                                "container %s has a mountPath with a \"..\" "
                                                "segment (or too long); write it without",
                                                name)
                                         : deny(r, 400,
                                                "container %s already mounts another volume at "
                                                "%s, where the operator mounts the wrapper; move "
                                                "that mount",
                                                name, INJECTION_MOUNT_PATH);
                i++;
        }
        if (ours < 0) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/volumeMounts/%zd", ci, i)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &a)) < 0)
                        return k;
                return podspec_build_mount(r->patch.doc, a);
        }
        if ((k = podspec_desired_value(podspec_build_mount_fn, NULL, &want)) < 0)
                return k;
        if (podspec_json_equal(json_array_at(mounts, (size_t) ours), json_doc_root(want)))
                return 0;
        if ((k = podspec_pathf(&p, "/spec/containers/%zu/volumeMounts/%zd", ci, ours)) < 0)
                return k;
        return jsonpatch_op_copy(&r->patch, JSONPATCH_REPLACE, buf_cstr(&p), json_doc_root(want));
}

static bool is_ipc_lock(const struct json_value *v) {
        const char *s;
        return json_string(v, &s) == 0 &&
               (strcmp(s, "IPC_LOCK") == 0 || strcmp(s, "CAP_IPC_LOCK") == 0);
}

/* Whether the namespace's Pod Security level lets a container add IPC_LOCK (decided once per
 * review): only privileged does; an unknown level is taken as one that does not, as adding it
 * there could make the pod fail the API server's PodSecurity check after our admission. */
static bool ipc_lock_allowed(struct review *r) {
        enum admission_pod_security level = ADMISSION_PSS_PRIVILEGED;
        int k;

        if (r->ipc_lock >= 0)
                return r->ipc_lock;
        r->ipc_lock = 1;
        if (!r->c->pod_security)
                return true;
        k = r->c->pod_security(r->c->pod_security_userdata, r->ns ? r->ns : "", &level);
        if (k < 0) {
                r->ipc_lock = 0;
                warn(r,
                     "the Pod Security level of namespace %s could not be read: IPC_LOCK not "
                     "added, the wrapper locks secrets within RLIMIT_MEMLOCK",
                     r->ns ? r->ns : "?");
        } else if (level != ADMISSION_PSS_PRIVILEGED) {
                r->ipc_lock = 0;
                warn(r,
                     "namespace %s enforces Pod Security %s, which refuses IPC_LOCK: not added, "
                     "the wrapper keeps secrets in memfd_secret or locked memory within "
                     "RLIMIT_MEMLOCK",
                     r->ns ? r->ns : "?",
                     level == ADMISSION_PSS_BASELINE ? "baseline" : "restricted");
        }
        return r->ipc_lock;
}

/* IPC_LOCK in securityContext.capabilities.add, creating each missing level; the rest of the
 * user's security context is kept. Not where Pod Security forbids it (ipc_lock_allowed). */
static int ensure_ipc_lock(struct review *r, size_t ci, const char *name,
                           const struct json_value *ctr) {
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        const struct json_value *sc = json_get(ctr, "securityContext"), *caps, *add, *drop;
        struct json_value *op, *o;
        int k;

        if (!ipc_lock_allowed(r))
                return 0;

        if (podspec_absent(sc)) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/securityContext", ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &o)) < 0 ||
                    (k = json_add_object(r->patch.doc, o, "capabilities", &o)) < 0 ||
                    (k = json_add_array(r->patch.doc, o, "add", &o)) < 0)
                        return k;
                return json_add_string(r->patch.doc, o, NULL, "IPC_LOCK");
        }
        if (json_type(sc) != JSON_OBJECT)
                return deny(r, 400, "container %s: securityContext is not an object", name);
        caps = json_get(sc, "capabilities");
        if (podspec_absent(caps)) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/securityContext/capabilities",
                                       ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_object(r->patch.doc, op, "value", &o)) < 0 ||
                    (k = json_add_array(r->patch.doc, o, "add", &o)) < 0)
                        return k;
                return json_add_string(r->patch.doc, o, NULL, "IPC_LOCK");
        }
        if (json_type(caps) != JSON_OBJECT)
                return deny(r, 400, "container %s: securityContext.capabilities is not an object",
                            name);
        drop = json_get(caps, "drop");
        if (!podspec_absent(drop) && json_type(drop) != JSON_ARRAY)
                return deny(r, 400,
                            "container %s: securityContext.capabilities.drop is not an array",
                            name);
        JSON_FOREACH(d, drop)
        if (is_ipc_lock(d))
                warn(r,
                     "container %s drops IPC_LOCK: the wrapper locks secrets only within "
                     "RLIMIT_MEMLOCK",
                     name);
        add = json_get(caps, "add");
        if (podspec_absent(add)) {
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/securityContext/capabilities/add",
                                       ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, JSONPATCH_ADD, buf_cstr(&p), &op)) < 0 ||
                    (k = json_add_array(r->patch.doc, op, "value", &o)) < 0)
                        return k;
                return json_add_string(r->patch.doc, o, NULL, "IPC_LOCK");
        }
        if (json_type(add) != JSON_ARRAY)
                return deny(r, 400,
                            "container %s: securityContext.capabilities.add is not an array", name);
        JSON_FOREACH(e, add)
        if (is_ipc_lock(e))
                return 0;
        if ((k = podspec_pathf(&p, "/spec/containers/%zu/securityContext/capabilities/add/%zu", ci,
                               json_count(add))) < 0)
                return k;
        return jsonpatch_op_string(&r->patch, JSONPATCH_ADD, buf_cstr(&p), "IPC_LOCK");
}

/* The value the operator writes for contract row i, NULL for none. */
static const char *row_value(const struct review *r, size_t i, const char *original) {
        const char *a = r->ann.value[i];

        switch (i) {
        case INJECTION_ROW_VAULT_ADDR:
                return r->vault_addr; /* canonical, from the annotation or the default */
        case INJECTION_ROW_AUTH_METHOD:
                return a ? a : injection_auth_method_to_string(INJECTION_AUTH_KUBERNETES);
        case INJECTION_ROW_AUTH_MOUNT_PATH:
                return a ? a
                         : (r->c->default_auth_path && r->c->default_auth_path[0]
                                    ? r->c->default_auth_path
                                    : NULL);
        case INJECTION_ROW_SKIP_VERIFY:
                return a ? a : "false"; /* always written, so that the pod cannot set it */
        case INJECTION_ROW_CA_PEM:
                return r->ca_pem_escaped && r->ca_pem_escaped[0] ? r->ca_pem_escaped : NULL;
        case INJECTION_ROW_PEER_ADDRS:
                /* The nodes of the operator's own vault, for pods that use that vault. */
                return r->c->default_vault_peer_addrs && r->c->default_vault_peer_addrs[0] &&
                                       r->c->default_vault_address &&
                                       strcmp(r->vault_addr, r->c->default_vault_address) == 0
                               ? r->c->default_vault_peer_addrs
                               : NULL;
        case INJECTION_ROW_ORIGINAL_CMD:
                return original;
        case INJECTION_ROW_BROKER_ADDR:
        case INJECTION_ROW_BROKER_CA_PEM:
        case INJECTION_ROW_UNSEAL_CA_PEM:
                return modes_row_value(&r->m, i);
        default:
                return injection_variables[i].setter == INJECTION_SET_OPERATOR ? a : NULL;
        }
}

/* The wrapper's environment: the contract's rows in table order (CLOUDTASER_ORIGINAL_CMD, the
 * last row, last). */
static size_t wrapper_env(const struct review *r, const char *original, struct env_var *vars) {
        size_t n = 0;

        for (size_t i = 0; i < INJECTION_N_VARIABLES; i++) {
                const char *v = row_value(r, i, original);
                /* A variable the pod may not set is written even when it has no value (empty is
                 * unset to the wrapper): an explicit env entry wins over envFrom, so a ConfigMap
                 * or Secret the pod author owns, or an envFrom prefix, cannot set it. */
                if (!v && injection_variables[i].setter != INJECTION_SET_POD)
                        v = "";
                if (v)
                        vars[n++] = (struct env_var){injection_variables[i].name, v,
                                                     strlen(injection_variables[i].name)};
        }
        return n;
}

/* The environment the wrapper of one container will see, for the contract's reader: what the
 * operator writes, and for the variables a pod may set, the container's own entries, expanded as
 * Kubernetes does ("$$" is "$", "$(NAME)" the value of an earlier NAME, else verbatim). A value
 * the operator cannot know (valueFrom, or a reference to one) is not checked, except that for
 * VAULT_TOKEN it, or an envFrom, counts as delivering a token. ctr NULL: the pod as a whole,
 * before the containers are looked at; the token is then assumed delivered (checked per
 * container). */
#define EXPAND_MAX_REFS 16 /* $(VAR) references followed for one value, nested ones included */
#define EXPAND_MAX_DEPTH 4

struct env_view {
        const struct env_var *vars;
        size_t n_vars;
        const struct json_value *ctr;
        struct buf scratch;      /* the expanded value last returned */
        const char *too_complex; /* a variable whose value could not be expanded within bounds */
};

static const char delivered[] = "(delivered by the pod)";

static const char *operator_value(const struct env_view *e, const char *name, size_t len) {
        for (size_t i = 0; i < e->n_vars; i++)
                if (e->vars[i].name_len == len && memcmp(e->vars[i].name, name, len) == 0)
                        return e->vars[i].value;
        return NULL;
}

static int expand(const struct env_view *e, size_t at, const char *value, struct buf *out,
                  unsigned depth, unsigned *refs);

/* Appends the value of the last entry named [name, name+len) among the container's first `upto`
 * env entries, expanded. 0, 1 when not known here (valueFrom), 2 when there is none, -E2BIG. */
static int earlier_value(const struct env_view *e, size_t upto, const char *name, size_t len,
                         struct buf *out, unsigned depth, unsigned *refs) {
        const struct json_value *env = json_get(e->ctr, "env"), *found = NULL;
        size_t i = 0, at = 0;
        const char *n, *v;

        JSON_FOREACH(x, env) {
                if (i >= upto)
                        break;
                if (json_get_string(x, "name", &n) == 0 && strlen(n) == len &&
                    memcmp(n, name, len) == 0) {
                        found = x;
                        at = i;
                }
                i++;
        }
        if (!found)
                return 2;
        if ((v = operator_value(e, name, len))) /* every entry of our names is replaced */
                return expand(e, at, v, out, depth + 1, refs);
        if (json_get_string(found, "value", &v) == 0)
                return expand(e, at, v, out, depth + 1, refs);
        return json_get(found, "valueFrom") ? 1 : 0; /* no value: the empty string */
}

static int expand(const struct env_view *e, size_t at, const char *value, struct buf *out,
                  unsigned depth, unsigned *refs) {
        int k = 0, unknown = 0;

        if (depth > EXPAND_MAX_DEPTH)
                return -E2BIG;
        for (const char *p = value; *p && k >= 0;) {
                const char *end;
                if (p[0] == '$' && p[1] == '$') {
                        k = buf_append_byte(out, '$');
                        p += 2;
                } else if (p[0] == '$' && p[1] == '(' && (end = strchr(p + 2, ')'))) {
                        if (++*refs > EXPAND_MAX_REFS)
                                return -E2BIG;
                        k = earlier_value(e, at, p + 2, (size_t) (end - p - 2), out, depth, refs);
                        if (k == 1)
                                unknown = 1;
                        else if (k == 2)
                                k = buf_append(out, p, (size_t) (end - p + 1));
                        p = end + 1;
                } else
                        k = buf_append_byte(out, *p++);
        }
        return k < 0 ? k : unknown;
}

static const char *env_view_lookup(const char *name, void *userdata) {
        struct env_view *e = userdata;
        const char *v, *n;
        const struct json_value *last = NULL;
        size_t i = 0, at = 0;
        unsigned refs = 0;
        int k;

        if ((v = operator_value(e, name, strlen(name))))
                return v;
        if (!pod_may_set(name))
                return NULL;
        bool token = strcmp(name, injection_variables[INJECTION_ROW_TOKEN].name) == 0;
        if (!e->ctr)
                return token ? delivered : NULL;
        JSON_FOREACH(x, json_get(e->ctr, "env")) {
                if (json_get_string(x, "name", &n) == 0 && strcmp(n, name) == 0) {
                        last = x; /* the last of duplicates wins, as in Kubernetes */
                        at = i;
                }
                i++;
        }
        if (!last)
                return token && json_count(json_get(e->ctr, "envFrom")) > 0 ? delivered : NULL;
        if (json_get_string(last, "value", &v) < 0)
                return json_get(last, "valueFrom") ? (token ? delivered : NULL) : "";
        if (!strchr(v, '$'))
                return v;
        buf_reset(&e->scratch);
        k = expand(e, at, v, &e->scratch, 0, &refs);
        if (k < 0) {
                e->too_complex = name;
                return NULL;
        }
        if (k == 1)
                return token ? delivered : NULL;
        return buf_cstr(&e->scratch);
}

/* Runs the environment through the contract's reader, as the wrapper will; a refusal is a denial
 * naming the annotation that set the value (or the variable, when no annotation did). */
static int check_contract(struct review *r, const struct env_var *vars, size_t n_vars,
                          const struct json_value *ctr, const char *ctr_name,
                          struct injection_settings *ret) {
        struct env_view view = {.vars = vars,
                                .n_vars = n_vars,
                                .ctr = ctr,
                                .scratch = BUF_INIT(INJECTION_MAX_LIST + 1, 0)};
        struct injection_settings s;
        struct injection_error e = {};
        char text[INJECTION_REASON_MAX + 64];
        int k;

        k = injection_settings_parse(env_view_lookup, &view, &s, &e);
        buf_done(&view.scratch);
        if (k == -ENOMEM)
                return k;
        if (view.too_complex) {
                if (k == 0)
                        injection_settings_done(&s);
                return deny(r, 400,
                            "container %s: the value of %s has more $(VAR) references than the "
                            "operator follows (%u), or expands past %u bytes",
                            ctr_name, view.too_complex, EXPAND_MAX_REFS, INJECTION_MAX_LIST);
        }
        if (k < 0) {
                (void) injection_error_format(&e, true, text, sizeof(text));
                if (!ctr)
                        return deny(r, 400, "%s", text);
                if (e.variable == &injection_variables[INJECTION_ROW_AUTH_METHOD] &&
                    !env_view_lookup(injection_variables[INJECTION_ROW_TOKEN].name, &view))
                        return deny(r, 400,
                                    "container %s: %s; set VAULT_TOKEN in the container's env "
                                    "from a Secret (valueFrom.secretKeyRef)",
                                    ctr_name, text);
                return deny(r, 400, "container %s: %s", ctr_name, text);
        }
        if (ret)
                *ret = s;
        else
                injection_settings_done(&s);
        return 0;
}

/* Whether the pod gives the container a non-empty VAULT_TOKEN (or may: valueFrom, envFrom). */
static bool token_delivered(const struct json_value *ctr) {
        struct env_view view = {.ctr = ctr, .scratch = BUF_INIT(INJECTION_MAX_LIST + 1, 0)};
        const char *v = env_view_lookup(injection_variables[INJECTION_ROW_TOKEN].name, &view);
        bool given = v && *v;
        buf_done(&view.scratch);
        return given;
}

static bool is_wrapped(const struct json_value *cmd) {
        const char *c0;
        return json_type(cmd) == JSON_ARRAY && json_string(json_first_child(cmd), &c0) == 0 &&
               strcmp(c0, INJECTION_WRAPPER_PATH) == 0;
}

static int wrap_container(struct review *r, size_t ci, const struct json_value *ctr) {
        static const char *const prefix[] = {INJECTION_WRAPPER_PATH, "--"};
        _cleanup_buf_ struct buf p = BUF_INIT(JSONPATCH_PATH_MAX, 0);
        _cleanup_buf_ struct buf orig = BUF_INIT(INJECTION_MAX_LIST, 0);
        const struct json_value *cmd = json_get(ctr, "command"), *args = json_get(ctr, "args");
        struct podspec_strv entry = {}, a = {};
        struct env_var vars[INJECTION_N_VARIABLES];
        char name[NAME_MAX_SHOWN + 4];
        const char *n;
        struct json_value *op;
        int k;

        (void) json_get_string(ctr, "name", &n);
        sanitize(name, sizeof(name), n, NAME_MAX_SHOWN);

        if (is_wrapped(cmd)) {
                /* Already wrapped (a second pass): the original command is what follows
                 * "--", the arguments stay. */
                k = podspec_strv_from_json(cmd, &entry);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        return deny(r, 400, "container %s: command is not an array of strings",
                                    name);
                size_t skip = entry.n > 1 && strcmp(entry.v[1], "--") == 0 ? 2 : 1;
                memmove(entry.v, entry.v + skip, (entry.n - skip + 1) * sizeof(char *));
                entry.n -= skip;
                if (!podspec_absent(args) && (k = podspec_strv_from_json(args, &a)) < 0) {
                        podspec_strv_done(&entry);
                        return k == -ENOMEM ? k
                                            : deny(r, 400,
                                                   "container %s: args is not an array of strings",
                                                   name);
                }
        } else {
                k = effective_command(r, ci, ctr, name, &entry, &a);
                if (k < 0)
                        return k;
                if ((k = podspec_pathf(&p, "/spec/containers/%zu/command", ci)) < 0 ||
                    (k = jsonpatch_op(&r->patch, cmd ? JSONPATCH_REPLACE : JSONPATCH_ADD,
                                      buf_cstr(&p), &op)) < 0 ||
                    (k = podspec_add_strv(r->patch.doc, op, "value", prefix, ELEMENTSOF(prefix),
                                          &entry)) < 0)
                        goto finish;
                if (args ? !podspec_strv_equal_json(&a, args) && !(a.n == 0 && podspec_absent(args))
                         : a.n > 0) {
                        if ((k = podspec_pathf(&p, "/spec/containers/%zu/args", ci)) < 0 ||
                            (k = jsonpatch_op(&r->patch, args ? JSONPATCH_REPLACE : JSONPATCH_ADD,
                                              buf_cstr(&p), &op)) < 0 ||
                            (k = podspec_add_strv(r->patch.doc, op, "value", NULL, 0, &a)) < 0)
                                goto finish;
                }
        }
        if (entry.n + a.n == 0) {
                k = deny(r, 400,
                         "container %s runs %s with no command after it; set the original "
                         "command after \"--\"",
                         name, INJECTION_WRAPPER_PATH);
                goto finish;
        }
        k = original_cmd(&entry, &a, &orig);
        if (k == -E2BIG)
                k = deny(r, 400, "container %s: the command is longer than %d bytes", name,
                         INJECTION_MAX_LIST);
        if (k < 0)
                goto finish;

        if ((k = modes_container_begin(&r->m, name, token_delivered(ctr), &r->merr)) < 0) {
                k = modes_denied(r, k);
                goto finish;
        }
        size_t n_vars = wrapper_env(r, buf_cstr(&orig), vars);
        if ((k = ensure_env(r, ci, name, ctr, vars, n_vars)) < 0 ||
            (k = check_contract(r, vars, n_vars, ctr, name, NULL)) < 0 ||
            (k = ensure_mount(r, ci, name, ctr)) < 0 || (k = ensure_ipc_lock(r, ci, name, ctr)) < 0)
                goto finish;
        if ((k = modes_container_patch(&r->m, &r->patch, ci, ctr, name, &r->merr)) < 0) {
                k = modes_denied(r, k);
                goto finish;
        }

        /* Not ours to change, but worth saying: a literal token is stored in etcd. */
        JSON_FOREACH(e, json_get(ctr, "env")) {
                const char *en;
                if (json_get_string(e, "name", &en) == 0 &&
                    strcmp(en, injection_variables[INJECTION_ROW_TOKEN].name) == 0 &&
                    json_get(e, "value"))
                        warn(r,
                             "container %s has VAULT_TOKEN as a literal value (stored in etcd); "
                             "use valueFrom.secretKeyRef",
                             name);
        }
        k = 0;
finish:
        podspec_strv_done(&entry);
        podspec_strv_done(&a);
        return k;
}

/* --- the review ----------------------------------------------------------------------------------
 */

static void describe_pod(struct review *r, const struct json_value *request,
                         const struct json_value *meta) {
        const char *name = NULL, *gen = NULL;
        char ns[NAME_MAX_SHOWN + 4], shown[NAME_MAX_SHOWN + 4];

        sanitize(ns, sizeof(ns), r->ns ? r->ns : "?", NAME_MAX_SHOWN);
        if ((json_get_string(request, "name", &name) == 0 && name[0]) ||
            (json_get_string(meta, "name", &name) == 0 && name[0])) {
                sanitize(shown, sizeof(shown), name, NAME_MAX_SHOWN);
                (void) snprintf(r->pod, sizeof(r->pod), "%s/%s", ns, shown);
        } else if (json_get_string(meta, "generateName", &gen) == 0 && gen[0]) {
                /* Pods made by controllers have no name yet: the API server generates it after
                 * the admission chain. */
                sanitize(shown, sizeof(shown), gen, NAME_MAX_SHOWN);
                (void) snprintf(r->pod, sizeof(r->pod), "%s/%s*", ns, shown);
        } else
                (void) snprintf(r->pod, sizeof(r->pod), "%s/(no name)", ns);
}

static bool address_allowed(const struct admission_config *c, const char *canon) {
        char other[ANNOTATION_ADDRESS_MAX + 8];

        if (c->n_allowed == 0)
                return true;
        for (size_t i = 0; i < c->n_allowed; i++)
                if (c->allowed_vault_addresses[i] &&
                    annotation_vault_address_canon(c->allowed_vault_addresses[i], other,
                                                   sizeof(other), NULL, 0) == 0 &&
                    strcmp(other, canon) == 0)
                        return true;
        return false;
}

static int check_vault_address(struct review *r) {
        char canon[ANNOTATION_ADDRESS_MAX + 8], err[256];
        const char *addr = r->ann.vault_address;

        if (!addr) {
                addr = r->c->default_vault_address;
                if (!addr || !addr[0])
                        return deny(r, 400,
                                    "no vault address: set the annotation "
                                    "cloudtaser.io/vault-address (the operator has no "
                                    "--vault-address default)");
                if (annotation_vault_address_canon(addr, canon, sizeof(canon), err, sizeof(err)) <
                    0)
                        return deny(r, 500, "the operator's --vault-address is not valid");
        } else if (annotation_vault_address_canon(addr, canon, sizeof(canon), err, sizeof(err)) < 0)
                return deny(r, 400, "%s", err);
        if (!address_allowed(r->c, canon)) {
                char shown[ANNOTATION_ADDRESS_MAX + 8];
                sanitize(shown, sizeof(shown), canon, 200);
                return deny(r, 403,
                            "vault address %s is not in the operator's allow-list of vault "
                            "addresses; use an allowed address (ask the cluster administrator)",
                            shown);
        }
        /* The canonical form goes into VAULT_ADDR: the wrapper compares the scheme
         * case-sensitively, and the allow-list was checked on this form. */
        if (strlen(canon) >= sizeof(r->vault_addr))
                return deny(r, 400, "cloudtaser.io/vault-address is too long");
        memcpy(r->vault_addr, canon, strlen(canon) + 1);
        if (strncmp(canon, "http://", 7) == 0) {
                if (!r->c->allow_plain_http)
                        return deny(r, 403,
                                    "vault address %.100s is plain http, over which the "
                                    "service-account token and the secrets would travel "
                                    "unencrypted; use https (the operator admits http only "
                                    "with --allow-plain-http-vault)",
                                    canon);
                warn(r, "vault address %.100s is plain http: the vault token travels unencrypted",
                     canon);
        }
        return 0;
}

/* spec.hostAliases writes the pod's /etc/hosts: mapping the vault's host (or a peer's) to an
 * address of the pod author's choosing would send the service-account token there, whatever
 * the allow-list says. */
static bool same_host(const char *url, const char *name) {
        const char *h = strstr(url, "://");
        size_t n;

        if (!h || !name)
                return false;
        h += 3;
        if (*h == '[')
                return false; /* an IP literal: /etc/hosts does not apply */
        n = strcspn(h, ":/");
        return strlen(name) == n && strncasecmp(h, name, n) == 0;
}

static int check_host_aliases(struct review *r) {
        const struct json_value *aliases = json_get(r->spec, "hostAliases");
        const char *peers = row_value(r, INJECTION_ROW_PEER_ADDRS, NULL);
        char shown[NAME_MAX_SHOWN + 4];

        if (!podspec_absent(aliases) && json_type(aliases) != JSON_ARRAY)
                return deny(r, 400, "spec.hostAliases is not an array");
        JSON_FOREACH(alias, aliases) {
                JSON_FOREACH(h, json_get(alias, "hostnames")) {
                        const char *name = NULL;
                        bool hit;
                        if (json_string(h, &name) < 0)
                                continue;
                        hit = same_host(r->vault_addr, name) ||
                              (modes_no_vault_address(&r->m) &&
                               same_host(r->c->modes.broker_address, name));
                        for (const char *p = peers; !hit && p && *p;) {
                                char one[INJECTION_ADDRESS_MAX];
                                size_t len;
                                p += strspn(p, ", \t\n");
                                len = strcspn(p, ", \t\n");
                                if (len && len < sizeof(one)) {
                                        memcpy(one, p, len);
                                        one[len] = '\0';
                                        hit = same_host(one, name);
                                }
                                p += len;
                        }
                        if (!hit)
                                continue;
                        sanitize(shown, sizeof(shown), name, NAME_MAX_SHOWN);
                        return deny(
                                r, 403,
                                "spec.hostAliases maps %s, a host of the vault: the pod may not "
                                "choose where the vault's name points; remove that alias",
                                shown);
                }
        }
        return 0;
}

/* What to do with a pod CREATE: fills r->patch or denies. */
static int mutate(struct review *r, const struct json_value *object, bool *ret_injected) {
        char err[512];
        const struct json_value *meta, *ps;
        bool *wrap = NULL;
        int k;

        meta = json_get(object, "metadata");
        if (!podspec_absent(meta) && json_type(meta) != JSON_OBJECT)
                return deny(r, 400, "metadata is not an object");
        k = annotations_parse(json_get(meta, "annotations"), &r->ann, err, sizeof(err));
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return deny(r, 400, "%s", err);
        if (!r->ann.inject) {
                *ret_injected = false;
                return 0;
        }
        for (size_t i = 0; i < MIN(r->ann.n_unknown, (size_t) ANNOTATION_MAX_UNKNOWN); i++) {
                char shown[NAME_MAX_SHOWN + 4];
                sanitize(shown, sizeof(shown), r->ann.unknown[i], NAME_MAX_SHOWN);
                warn(r, "unknown annotation %s ignored", shown);
        }
        if ((k = modes_pod_begin(&r->m, &r->c->modes, &r->ann, r->ns, object, &r->merr)) < 0)
                return modes_denied(r, k);
        if (!modes_no_vault_address(&r->m) && (k = check_vault_address(r)) < 0)
                return k;
        /* The pod's part of the contract now (a role for kubernetes auth, an auth method this
         * version has), each container's part with its environment below. */
        struct env_var vars[INJECTION_N_VARIABLES];
        struct injection_settings settings;
        if ((k = check_contract(r, vars, wrapper_env(r, NULL, vars), NULL, NULL, &settings)) < 0)
                return k;
        bool skip_verify = settings.skip_verify;
        injection_settings_done(&settings);
        if (skip_verify)
                warn(r, "cloudtaser.io/vault-skip-verify is true: vault's TLS certificate is not "
                        "verified");
        if (!r->c->init_image || !r->c->init_image[0])
                return deny(r, 500, "the operator has no --init-image");

        r->spec = json_get(object, "spec");
        if (json_type(r->spec) != JSON_OBJECT)
                return deny(r, 400, "spec is missing or not an object");
        if ((k = check_host_aliases(r)) < 0)
                return k;
        r->containers = json_get(r->spec, "containers");
        if (json_type(r->containers) != JSON_ARRAY || json_count(r->containers) == 0)
                return deny(r, 400, "spec.containers is missing or empty");
        r->init_containers = json_get(r->spec, "initContainers");
        if (!podspec_absent(r->init_containers) && json_type(r->init_containers) != JSON_ARRAY)
                return deny(r, 400, "spec.initContainers is not an array");
        r->n_containers = json_count(r->containers);
        /* Our own init container is not counted: a pod at the limit is injected, and its
         * reinvocation, which has it, is not denied for it. */
        size_t n_inits = json_count(r->init_containers);
        if (n_inits > 0 && podspec_find_named(r->init_containers, INJECTION_INIT_CONTAINER) >= 0)
                n_inits--;
        if (r->n_containers + n_inits > ADMISSION_MAX_CONTAINERS)
                return deny(r, 400, "the pod has more than %u containers",
                            ADMISSION_MAX_CONTAINERS);
        JSON_FOREACH(ctr, r->containers) {
                const char *n;
                if (json_get_string(ctr, "name", &n) < 0 || !n[0])
                        return deny(r, 400, "a container has no name");
        }

        ps = json_get(r->spec, "imagePullSecrets");
        JSON_FOREACH(s, ps) {
                const char *n;
                if (json_get_string(s, "name", &n) == 0 && n[0] &&
                    r->n_pull_secrets < ADMISSION_MAX_PULL_SECRETS)
                        r->pull_secrets[r->n_pull_secrets++] = n;
        }

        /* Which containers: all app containers, or those named by cloudtaser.io/containers. */
        wrap = calloc(r->n_containers, sizeof(bool));
        r->lookups = calloc(r->n_containers, sizeof(struct lookup_entry));
        if (!wrap || !r->lookups) {
                free(wrap);
                return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_containers; i++)
                wrap[i] = !r->ann.containers;
        for (size_t i = 0; i < r->ann.n_containers; i++) {
                ssize_t at = podspec_find_named(r->containers, r->ann.containers[i]);
                if (at >= 0) {
                        wrap[at] = true;
                        continue;
                }
                free(wrap);
                if (!podspec_absent(r->init_containers) &&
                    podspec_find_named(r->init_containers, r->ann.containers[i]) >= 0)
                        return deny(r, 400,
                                    "cloudtaser.io/containers names %s, an init container: only "
                                    "app containers are wrapped",
                                    r->ann.containers[i]);
                return deny(r, 400,
                            "cloudtaser.io/containers names %s, but the pod has no container of "
                            "that name",
                            r->ann.containers[i]);
        }

        if ((k = check_bin_mounts(r, wrap)) < 0)
                goto finish;
        if (r->c->default_vault_ca_pem && strchr(r->c->default_vault_ca_pem, '$')) {
                /* Kubernetes turns "$$" into "$" in env values. */
                size_t len = strlen(r->c->default_vault_ca_pem), o = 0;
                r->ca_pem_escaped = malloc(2 * len + 1);
                if (!r->ca_pem_escaped) {
                        k = -ENOMEM;
                        goto finish;
                }
                for (const char *c = r->c->default_vault_ca_pem; *c; c++) {
                        r->ca_pem_escaped[o++] = *c;
                        if (*c == '$')
                                r->ca_pem_escaped[o++] = '$';
                }
                r->ca_pem_escaped[o] = '\0';
        } else if (r->c->default_vault_ca_pem &&
                   !(r->ca_pem_escaped = strdup(r->c->default_vault_ca_pem))) {
                k = -ENOMEM;
                goto finish;
        }

        /* Pod level first (their paths do not move the containers' indices), then each
         * container. The annotation set already exists: inject is in it. */
        if ((k = ensure_injected_annotation(r, json_get(meta, "annotations"))) < 0 ||
            (k = ensure_volume(r)) < 0 || (k = ensure_init_container(r)) < 0)
                goto finish;
        size_t ci = 0;
        JSON_FOREACH(ctr, r->containers) {
                if (wrap[ci] && (k = wrap_container(r, ci, ctr)) < 0)
                        goto finish;
                ci++;
        }
        if ((k = modes_pod_patch(&r->m, &r->patch, object, wrap, &r->merr)) < 0) {
                k = modes_denied(r, k);
                goto finish;
        }
        if (r->ann.command && r->command_annotation_uses == 0)
                warn(r, "cloudtaser.io/command is not used: every wrapped container has a command");
        else if (r->command_annotation_uses > 1)
                warn(r, "cloudtaser.io/command applies to %zu containers without a command",
                     r->command_annotation_uses);
        *ret_injected = true;
        k = 0;
finish:
        free(wrap);
        return k;
}

static bool uid_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > UID_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f || *s == '"' ||
                    *s == '\\')
                        return false;
        return true;
}

static const char *status_reason(int code) {
        return code == 403 ? "Forbidden" : code == 500 ? "InternalError" : "BadRequest";
}

/* Writes the AdmissionReview response straight into out, member by member in the order a
 * client reads them, the patch base64-encoded in place: no document of the response and no
 * copy of the patch. On failure out is as it was. */
static int respond(struct review *r, const char *api_version, const char *uid, bool allowed,
                   struct buf *out) {
        _cleanup_buf_ struct buf text = BUF_INIT(PATCH_MAX_BYTES, 0);
        size_t start = out->len;
        int k;

        if ((k = buf_append_str(out, "{\"apiVersion\":")) < 0 ||
            (k = json_append_string(out, api_version)) < 0 ||
            (k = buf_append_str(out, ",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":")) < 0 ||
            (k = json_append_string(out, uid)) < 0 ||
            (k = buf_append_str(out, allowed ? ",\"allowed\":true" : ",\"allowed\":false")) < 0)
                goto fail;
        if (!allowed) {
                if ((k = buf_append_str(out, ",\"status\":{\"status\":\"Failure\",\"message\":")) <
                            0 ||
                    (k = json_append_string(out, r->message)) < 0 ||
                    (k = buf_append_str(out, ",\"reason\":")) < 0 ||
                    (k = json_append_string(out, status_reason(r->code))) < 0 ||
                    (k = buf_printf(out, ",\"code\":%d}", r->code)) < 0)
                        goto fail;
        } else if (r->patch.n_ops > 0) {
                if ((k = jsonpatch_print(&r->patch, &text)) < 0 ||
                    (k = buf_append_str(out, ",\"patchType\":\"JSONPatch\",\"patch\":\"")) < 0 ||
                    (k = base64_encode(out, text.data, text.len)) < 0 ||
                    (k = buf_append_byte(out, '"')) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < r->n_warnings; i++)
                if ((k = buf_append_str(out, i == 0 ? ",\"warnings\":[" : ",")) < 0 ||
                    (k = json_append_string(out, r->warnings[i])) < 0)
                        goto fail;
        if ((k = buf_append_str(out, r->n_warnings > 0 ? "]}}" : "}}")) < 0)
                goto fail;
        return 0;
fail:
        buf_truncate(out, start);
        return k;
}

int admission_review_arena(const struct admission_config *c, struct arena *arena, const char *body,
                           size_t len, struct buf *out, const char **ret_outcome) {
        static const struct json_limits limits = {
                .max_input = ADMISSION_MAX_BODY,
                .max_depth = 64,
                .max_nodes = 500000,
        };
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_value *root, *req, *kind, *object;
        const char *api_version, *s, *uid, *op, *sub;
        const char *outcome = "error";
        struct review *r = NULL;
        bool r_in_arena, injected = false, dry_run = false;
        int k;

        if (ret_outcome)
                *ret_outcome = outcome;
        if (!c || !body || !out)
                return -EINVAL;
        if (len > ADMISSION_MAX_BODY)
                return -E2BIG;
        k = json_parse_arena(arena, body, len, 0, &limits, &doc);
        if (k == -ENOMEM || k == -E2BIG)
                return k;
        if (k < 0)
                return -EBADMSG;
        root = json_doc_root(doc);
        if (json_get_string(root, "kind", &s) < 0 || strcmp(s, "AdmissionReview") != 0 ||
            json_get_string(root, "apiVersion", &api_version) < 0 ||
            (strcmp(api_version, "admission.k8s.io/v1") != 0 &&
             strcmp(api_version, "admission.k8s.io/v1beta1") != 0) ||
            json_get_object(root, "request", &req) < 0 || json_get_string(req, "uid", &uid) < 0 ||
            !uid_valid(uid))
                return -EBADMSG;

        r = arena_alloc(arena, sizeof(*r));
        r_in_arena = r;
        if (r)
                *r = (struct review){0};
        else if (!(r = calloc(1, sizeof(*r))))
                return -ENOMEM;
        r->c = c;
        r->arena = arena;
        r->start_ms = review_clock_ms(c);
        r->ipc_lock = -1;
        k = jsonpatch_init(&r->patch, arena, PATCH_MAX_BYTES);
        if (k < 0)
                goto finish;
        object = json_get(req, "object");
        if (json_get_string(req, "namespace", &r->ns) < 0 || !r->ns[0])
                (void) json_get_string(json_get(object, "metadata"), "namespace", &r->ns);
        describe_pod(r, req, json_get(object, "metadata"));
        /* dryRun: this webhook has no side effects (sideEffects: None): a dry run is answered
         * exactly as a real request; the registry lookup only reads. */
        (void) json_get_bool(req, "dryRun", &dry_run);

        kind = json_get(req, "kind");
        if (json_type(kind) != JSON_OBJECT || json_get_string(kind, "kind", &s) < 0)
                (void) deny(r, 400, "request.kind is missing");
        else if (strcmp(s, "Pod") != 0 || (json_get_string(kind, "group", &s) == 0 && s[0])) {
                char shown[NAME_MAX_SHOWN + 4];
                (void) json_get_string(kind, "kind", &s);
                sanitize(shown, sizeof(shown), s, NAME_MAX_SHOWN);
                warn(r, "cloudtaser-operator mutates pods only: %s passed through unchanged",
                     shown);
                outcome = "skipped";
        } else if (json_get_string(req, "subResource", &sub) == 0 && sub[0]) {
                if (strcmp(sub, "ephemeralcontainers") == 0 && json_type(object) == JSON_OBJECT &&
                    check_ephemeral_mounts(r, object) == 0)
                        (void) modes_denied(r, modes_check_ephemeral(object, &r->merr));
                outcome = "skipped"; /* pods/status, other subresources: nothing to inject */
        } else if (json_get_string(req, "operation", &op) < 0)
                (void) deny(r, 400, "request.operation is missing");
        else if (strcmp(op, "CREATE") != 0)
                outcome = "skipped"; /* a pod's containers cannot change after creation */
        else if (json_type(object) != JSON_OBJECT)
                (void) deny(r, 400, "request.object is missing or not an object");
        else if (!r->ns || !r->ns[0])
                (void) deny(r, 400, "request.namespace is missing");
        else {
                k = mutate(r, object, &injected);
                if (k == -ENOMEM)
                        goto finish;
                if (k == -E2BIG) {
                        /* Never a bare error: with failurePolicy Ignore, an error admits the pod
                         * unwrapped. */
                        r->denied = false;
                        (void) deny(r, 400,
                                    "the patch for this pod would be too large: more than %u "
                                    "operations or %u bytes; wrap fewer containers "
                                    "(cloudtaser.io/containers) or give them a command",
                                    JSONPATCH_MAX_OPS, PATCH_MAX_BYTES);
                }
                outcome = r->denied                        ? "denied"
                          : injected && r->patch.n_ops > 0 ? "injected"
                                                           : "skipped";
        }
        if (r->denied)
                outcome = "denied";

        k = respond(r, api_version, uid, !r->denied, out);
        if (k == -E2BIG && !r->denied) {
                /* The patch does not fit the response: a small denial instead. */
                (void) deny(r, 400,
                            "the patch for this pod would be too large: the admission response "
                            "would exceed %zu bytes; wrap fewer containers "
                            "(cloudtaser.io/containers) or give them a command",
                            out->max);
                outcome = "denied";
                k = respond(r, api_version, uid, false, out);
        }
        if (k < 0)
                goto finish;
        if (ret_outcome)
                *ret_outcome = outcome;
        k = 0;
finish:
        for (size_t i = 0; r && i < r->n_lookups; i++)
                registry_image_config_done(&r->lookups[i].cfg);
        if (r) {
                free(r->lookups);
                free(r->ca_pem_escaped);
                annotations_done(&r->ann);
                modes_pod_done(&r->m);
                jsonpatch_done(&r->patch);
                if (!r_in_arena)
                        free(r);
        }
        return k;
}

int admission_review(const struct admission_config *c, const char *body, size_t len,
                     struct buf *out, const char **ret_outcome) {
        struct arena a;

        arena_init(&a, ADMISSION_ARENA_MAX, ARENA_WIPE);
        int k = admission_review_arena(c, &a, body, len, out, ret_outcome);
        arena_done(&a);
        return k;
}
