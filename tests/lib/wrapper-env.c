/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper-env: see wrapper-env.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/injection.h"
#include "common/macro.h"
#include "common/strv.h"
#include "tests/lib/wrapper-env.h"
#include "wrapper/config.h"

#define MAX_VARS 4096

struct kv {
        char *name, *value; /* value NULL: not known here (valueFrom, or a reference to one) */
};

struct env {
        struct kv v[MAX_VARS];
        size_t n;
};

static const char stand_in_token[] = "stand-in-token";
static char unknown_value[] = "";

/* The entry named [name, name+len) defined last, or NULL. */
static const struct kv *env_find(const struct env *e, const char *name, size_t len) {
        const struct kv *found = NULL;
        for (size_t i = 0; i < e->n; i++) /* the last of duplicates wins */
                if (strlen(e->v[i].name) == len && memcmp(e->v[i].name, name, len) == 0)
                        found = &e->v[i];
        return found;
}

/* The wrapper's getenv(): a value not known here is the stand-in token for VAULT_TOKEN and
 * unset otherwise. */
static const char *lookup(const char *name, void *userdata) {
        const struct kv *v = env_find(userdata, name, strlen(name));
        if (v && v->value == unknown_value)
                return strcmp(name, "VAULT_TOKEN") == 0 ? stand_in_token : NULL;
        return v ? v->value : NULL;
}

/* Kubernetes' $(VAR) expansion over the variables defined so far; unknown_value when it
 * depends on one not known here. */
static char *expand(const struct env *e, const char *s) {
        struct buf b = BUF_INIT(1u << 24, 0);
        char *out;
        size_t n;
        int k = 0;
        bool unknown = false;

        for (const char *p = s; *p && k >= 0;) {
                if (p[0] == '$' && p[1] == '$') {
                        k = buf_append_byte(&b, '$');
                        p += 2;
                } else if (p[0] == '$' && p[1] == '(' && strchr(p + 2, ')')) {
                        const char *end = strchr(p + 2, ')');
                        const struct kv *v = env_find(e, p + 2, (size_t) (end - p - 2));
                        if (v && v->value == unknown_value)
                                unknown = true;
                        else
                                k = v ? buf_append_str(&b, v->value)
                                      : buf_append(&b, p, (size_t) (end - p + 1));
                        p = end + 1;
                } else
                        k = buf_append_byte(&b, *p++);
        }
        if (unknown) {
                buf_done(&b);
                return unknown_value;
        }
        if (k < 0 || buf_steal(&b, &out, &n) < 0) {
                buf_done(&b);
                return NULL;
        }
        return out;
}

static void env_done(struct env *e) {
        for (size_t i = 0; i < e->n; i++) {
                free(e->v[i].name);
                if (e->v[i].value != unknown_value)
                        free(e->v[i].value);
        }
        e->n = 0;
}

static int env_add(struct env *e, const char *name, char *value) {
        if (!value)
                return -ENOMEM;
        if (e->n >= MAX_VARS) {
                if (value != unknown_value)
                        free(value);
                return -E2BIG;
        }
        e->v[e->n] = (struct kv){strdup(name), value};
        if (!e->v[e->n].name) {
                if (value != unknown_value)
                        free(value);
                return -ENOMEM;
        }
        e->n++;
        return 0;
}

static int check_container(const struct json_value *ctr, struct env *e, char *reason,
                           size_t reason_len) {
        const char *n, *v, *name = "?";
        char **argv = NULL;
        size_t argc = 0;
        int k = 0;

        (void) json_get_string(ctr, "name", &name);
        JSON_FOREACH(x, json_get(ctr, "env")) {
                if (json_get_string(x, "name", &n) < 0)
                        continue;
                if (json_get_string(x, "value", &v) == 0)
                        k = env_add(e, n, expand(e, v));
                else if (json_get(x, "valueFrom"))
                        k = env_add(e, n, unknown_value);
                else
                        k = env_add(e, n, strdup("")); /* no value: the empty string */
                if (k < 0)
                        return k;
        }
        if (!env_find(e, "VAULT_TOKEN", 11) && json_count(json_get(ctr, "envFrom")) > 0 &&
            (k = env_add(e, "VAULT_TOKEN", unknown_value)) < 0)
                return k; /* a Secret or ConfigMap may hold it */

        const char *keys[] = {"command", "args"};
        size_t total = json_count(json_get(ctr, "command")) + json_count(json_get(ctr, "args"));
        argv = calloc(total + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                JSON_FOREACH(a, json_get(ctr, keys[i])) {
                        const char *s = "";
                        (void) json_string(a, &s);
                        char *x = expand(e, s);
                        if (x == unknown_value) /* the wrapper gets some argument */
                                x = strdup("(from a secret)");
                        if (!(argv[argc++] = x)) {
                                (void) strv_free(argv);
                                return -ENOMEM;
                        }
                }

        struct wrapper_config cfg;
        struct error_report err = {};
        k = config_parse(lookup, e, (int) argc, argv, &cfg, &err);
        if (k == 0)
                config_done(&cfg);
        else if (k == -EINVAL)
                (void) snprintf(reason, reason_len, "container %s: %s", name, err.message);
        (void) strv_free(argv);
        return k;
}

int test_wrapper_accepts_pod(const struct json_value *pod, size_t *ret_wrapped, char *reason,
                             size_t reason_len) {
        size_t wrapped = 0;
        int k = 0;

        JSON_FOREACH(ctr, json_get_path(pod, "spec.containers")) {
                const char *c0;
                if (json_string(json_first_child(json_get(ctr, "command")), &c0) < 0 ||
                    strcmp(c0, INJECTION_WRAPPER_PATH) != 0)
                        continue;
                struct env *e = calloc(1, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                k = check_container(ctr, e, reason, reason_len);
                env_done(e);
                free(e);
                if (k < 0)
                        return k;
                wrapped++;
        }
        if (ret_wrapped)
                *ret_wrapped = wrapped;
        return 0;
}
