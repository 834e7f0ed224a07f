/* SPDX-License-Identifier: Apache-2.0 */
/* cli/discover: `cloudtaser target discover` (see discover.h). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/discover-pb.h"
#include "cli/discover.h"
#include "cli/plan.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/strv.h"

static const char *const skipped_namespaces[] = {"kube-system", "kube-public", "kube-node-lease",
                                                 NULL};

bool discover_namespace_skipped(const char *ns) {
        for (const char *const *s = skipped_namespaces; *s; s++)
                if (strcmp(ns, *s) == 0)
                        return true;
        return false;
}

int discover_vault_path(const char *t, const char *cluster, const char *ns, const char *secret,
                        char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(PLAN_MAX_STRING, 0);
        static const char *const names[] = {"<cluster>", "<namespace>", "<secret>"};
        const char *values[] = {cluster, ns, secret};
        int r = 0;

        if (!t)
                t = DISCOVER_PATH_TEMPLATE;
        while (*t && r >= 0) {
                bool done = false;
                for (size_t i = 0; i < ELEMENTSOF(names) && !done; i++)
                        if (strncmp(t, names[i], strlen(names[i])) == 0) {
                                r = buf_append_str(&b, values[i] ? values[i] : "");
                                t += strlen(names[i]);
                                done = true;
                        }
                if (!done)
                        r = buf_append_byte(&b, (uint8_t) *t++);
        }
        if (r < 0)
                return r == -E2BIG ? -EINVAL : r;
        if (!plan_vault_path_valid(buf_cstr(&b)))
                return -EINVAL;
        char *d = strdup(buf_cstr(&b));
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

/* --- building a workload's entries ---------------------------------------------------------- */

struct scan {
        const struct discover_config *c;
        const char *ns;
        struct plan_workload *w;
        struct buf notes;
};

static int add_note(struct scan *s, const char *fmt, ...) _printf_(2, 3);
static int add_note(struct scan *s, const char *fmt, ...) {
        va_list ap;
        int r = s->notes.len ? buf_append_str(&s->notes, "; ") : 0;
        va_start(ap, fmt);
        if (r >= 0)
                r = buf_vprintf(&s->notes, fmt, ap);
        va_end(ap);
        return r == -E2BIG ? 0 : r; /* a note cut short is still a note */
}

static struct plan_secret *find_entry(struct scan *s, const char *source, const char *field,
                                      const char *env) {
        for (size_t i = 0; i < s->w->n_secrets; i++) {
                struct plan_secret *x = &s->w->secrets[i];
                if (strcmp(x->source, source) != 0)
                        continue;
                bool clash = false;
                for (size_t f = 0; field && f < x->n_fields && !clash; f++)
                        clash = strcmp(x->fields[f].field, field) == 0 &&
                                strcmp(x->fields[f].env, env) != 0;
                if (!clash)
                        return x;
        }
        return NULL;
}

/* Text from the cluster (an annotation, a mount path) as a plan string: control characters as
 * '?', at most max bytes (cut at a character boundary). */
static void printable(char *t, size_t max) {
        size_t n = strlen(t);
        if (n > max) {
                n = max;
                while (n > 0 && ((unsigned char) t[n] & 0xc0) == 0x80)
                        n--;
                t[n] = '\0';
        }
        for (; *t; t++)
                if ((unsigned char) *t < 0x20 || *t == 0x7f)
                        *t = '?';
}

/* The entry for source (created with vault_path when new) that can take field -> env. *ret is
 * NULL (and a note says why) when vault_path cannot be a plan's: another injector's path with a
 * glob or policy syntax in it is not carried over. */
static int entry(struct scan *s, const char *source, const char *vault_path, const char *field,
                 const char *env, struct plan_secret **ret) {
        struct plan_secret *x = find_entry(s, source, field, env);
        if (!x && !plan_vault_path_valid(vault_path)) {
                _cleanup_free_ char *p = strndup(vault_path, 200);
                if (!p)
                        return -ENOMEM;
                printable(p, 200);
                *ret = NULL;
                return add_note(s,
                                "vault path '%s' is not usable as it is (a glob, an empty "
                                "segment or policy syntax): not listed",
                                p);
        }
        if (!x) {
                if (s->w->n_secrets >= PLAN_MAX_SECRETS)
                        return -E2BIG;
                struct plan_secret *n =
                        reallocarray(s->w->secrets, s->w->n_secrets + 1, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                s->w->secrets = n;
                x = &n[s->w->n_secrets];
                *x = (struct plan_secret){.source = strdup(source),
                                          .vault_path = strdup(vault_path)};
                s->w->n_secrets++;
                if (!x->source || !x->vault_path)
                        return -ENOMEM;
                printable(x->source, 1024);
        }
        *ret = x;
        return 0;
}

static int add_field(struct plan_secret *x, const char *field, const char *env) {
        for (size_t f = 0; f < x->n_fields; f++)
                if (strcmp(x->fields[f].field, field) == 0)
                        return 0; /* the same mapping again (another container) */
        if (x->n_fields >= PLAN_MAX_FIELDS)
                return -E2BIG;
        struct plan_field *n = reallocarray(x->fields, x->n_fields + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        x->fields = n;
        n[x->n_fields] = (struct plan_field){.field = strdup(field), .env = strdup(env)};
        x->n_fields++;
        return n[x->n_fields - 1].field && n[x->n_fields - 1].env ? 0 : -ENOMEM;
}

static int map_field(struct scan *s, const char *source, const char *vault_path, const char *field,
                     const char *env) {
        struct plan_secret *x;
        bool env_ok = *env && strlen(env) <= 253 && !strchr(env, '=');
        for (const char *c = env; env_ok && *c; c++)
                env_ok = (unsigned char) *c >= 0x20 && *c != 0x7f;
        if (!env_ok)
                return add_note(s,
                                "field '%s' goes to a variable whose name a plan cannot hold: "
                                "not listed",
                                field);
        int r = entry(s, source, vault_path, field, env, &x);
        return r < 0 || !x ? r : add_field(x, field, env);
}

static bool secret_key_ok(const char *k) {
        return *k && strlen(k) <= 253 &&
               strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
                       strlen(k);
}

/* A variable name for a key read from a file: upper case, [A-Z0-9_], not starting with a digit
 * ("tls.crt" -> TLS_CRT). */
static void key_to_env(const char *key, char *out, size_t size) {
        size_t o = 0;
        if (key[0] >= '0' && key[0] <= '9' && o + 1 < size)
                out[o++] = '_';
        for (const char *k = key; *k && o + 1 < size; k++) {
                char c = *k;
                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        c = '_';
                out[o++] = c;
        }
        out[o] = '\0';
}

static int secret_path(struct scan *s, const char *secret, char **ret) {
        return discover_vault_path(s->c->path_template, s->c->cluster, s->ns, secret, ret);
}

/* The key names of a Secret, or NULL (with a note saying why) when they cannot be read. */
static int secret_keys(struct scan *s, const char *secret, const char *what, char ***ret) {
        int r = s->c->secret_keys ? s->c->secret_keys(s->c->userdata, s->ns, secret, ret)
                                  : -ENODATA;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = NULL;
                return add_note(s, "%s Secret '%s': %s; fill in its fields", what, secret,
                                r == -EACCES   ? "its key names could not be read (forbidden)"
                                : r == -ENOENT ? "no such Secret"
                                               : "its key names are not known");
        }
        return 0;
}

static int scan_env(struct scan *s, const struct json_value *container) {
        const struct json_value *env = json_get(container, "env");
        int r = 0;
        JSON_FOREACH(e, env) {
                const char *name = NULL, *secret = NULL, *key = NULL, *value = NULL;
                if (json_get_string(e, "name", &name) < 0)
                        continue;
                const struct json_value *ref = json_get_path(e, "valueFrom.secretKeyRef");
                if (ref && json_get_string(ref, "name", &secret) == 0 &&
                    json_get_string(ref, "key", &key) == 0 && kube_name_valid(secret) &&
                    secret_key_ok(key)) {
                        _cleanup_free_ char *source = NULL, *path = NULL;
                        if (asprintf(&source, "secretKeyRef:%s", secret) < 0)
                                return -ENOMEM;
                        r = secret_path(s, secret, &path);
                        if (r >= 0)
                                r = map_field(s, source, path, key, name);
                } else if (json_get_string(e, "value", &value) == 0 &&
                           strncmp(value, "vault:", 6) == 0) {
                        /* Bank-Vaults: vault:<path>#<field>[#<version>] */
                        _cleanup_free_ char *path = NULL, *source = NULL;
                        const char *hash = strchr(value + 6, '#');
                        if (!hash) {
                                r = add_note(s, "Bank-Vaults reference of %s has no #field", name);
                                continue;
                        }
                        path = strndup(value + 6, (size_t) (hash - value - 6));
                        const char *f = hash + 1, *end = strchr(f, '#');
                        _cleanup_free_ char *field =
                                end ? strndup(f, (size_t) (end - f)) : strdup(f);
                        if (!path || !field)
                                return -ENOMEM;
                        while (path[0] == '/')
                                memmove(path, path + 1, strlen(path));
                        if (asprintf(&source, "bank-vaults:%s", path) < 0)
                                return -ENOMEM;
                        if (secret_key_ok(field))
                                r = map_field(s, source, path, field, name);
                        else
                                r = add_note(s, "Bank-Vaults field of %s is not a key name", name);
                } else if (value && strncmp(value, ">>vault:", 8) == 0)
                        r = add_note(s,
                                     "%s is a Bank-Vaults dynamic secret (>>vault:): not "
                                     "migrated",
                                     name);
                if (r < 0)
                        return r;
        }
        return r;
}

static int scan_env_from(struct scan *s, const struct json_value *container) {
        const struct json_value *from = json_get(container, "envFrom");
        int r = 0;
        JSON_FOREACH(e, from) {
                const char *secret = NULL, *prefix = "";
                const struct json_value *ref = json_get(e, "secretRef");
                if (!ref || json_get_string(ref, "name", &secret) < 0 || !kube_name_valid(secret))
                        continue;
                (void) json_get_string(e, "prefix", &prefix);
                _cleanup_free_ char *source = NULL, *path = NULL;
                _cleanup_strv_free_ char **keys = NULL;
                if ((*prefix ? asprintf(&source, "envFrom:%s:prefix=%s", secret, prefix)
                             : asprintf(&source, "envFrom:%s", secret)) < 0)
                        return -ENOMEM;
                r = secret_path(s, secret, &path);
                if (r >= 0)
                        r = secret_keys(s, secret, "envFrom", &keys);
                if (r >= 0 && !keys) {
                        struct plan_secret *x;
                        r = entry(s, source, path, NULL, NULL, &x);
                }
                for (size_t i = 0; r >= 0 && keys && keys[i]; i++) {
                        _cleanup_free_ char *env = NULL;
                        if (!secret_key_ok(keys[i]))
                                continue;
                        if (asprintf(&env, "%s%s", prefix, keys[i]) < 0)
                                return -ENOMEM;
                        if (!strchr(env, '='))
                                r = map_field(s, source, path, keys[i], env);
                }
                if (r < 0)
                        return r;
        }
        return r;
}

/* Where volume `name` is mounted (the first container that mounts it), or NULL. */
static const char *mount_path(const struct json_value *spec, const char *name) {
        static const char *const lists[] = {"initContainers", "containers"};
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                JSON_FOREACH(c, json_get(spec, lists[l])) {
                        JSON_FOREACH(m, json_get(c, "volumeMounts")) {
                                const char *n = NULL, *p = NULL;
                                if (json_get_string(m, "name", &n) == 0 && strcmp(n, name) == 0 &&
                                    json_get_string(m, "mountPath", &p) == 0)
                                        return p;
                        }
                }
        return NULL;
}

/* One Secret as files: a secret volume (what = "volume") or a projected source. */
static int scan_secret_files(struct scan *s, const char *what, const char *secret,
                             const struct json_value *items, const char *mount) {
        _cleanup_free_ char *source = NULL, *path = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        char env[256];
        int r;

        if (!kube_name_valid(secret))
                return 0;
        if (asprintf(&source, "%s:%s:%s", what, secret, mount ? mount : "(not mounted)") < 0)
                return -ENOMEM;
        r = secret_path(s, secret, &path);
        if (r >= 0)
                r = add_note(s,
                             "Secret '%s' is mounted as files at %s: the workload must read "
                             "the environment or the memfd instead",
                             secret, mount ? mount : "(not mounted)");
        if (r >= 0 && json_count(items) == 0)
                r = secret_keys(s, secret, what, &keys);
        if (r < 0)
                return r;
        if (json_count(items) == 0 && !keys) {
                struct plan_secret *x;
                return entry(s, source, path, NULL, NULL, &x);
        }
        JSON_FOREACH(it, items) {
                const char *key = NULL;
                if (json_get_string(it, "key", &key) < 0 || !secret_key_ok(key))
                        continue;
                key_to_env(key, env, sizeof(env));
                r = map_field(s, source, path, key, env);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; keys && keys[i]; i++) {
                if (!secret_key_ok(keys[i]))
                        continue;
                key_to_env(keys[i], env, sizeof(env));
                r = map_field(s, source, path, keys[i], env);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int scan_volumes(struct scan *s, const struct json_value *spec) {
        int r = 0;
        JSON_FOREACH(v, json_get(spec, "volumes")) {
                const char *vname = NULL, *secret = NULL;
                if (json_get_string(v, "name", &vname) < 0)
                        continue;
                const char *mount = mount_path(spec, vname);
                const struct json_value *sv = json_get(v, "secret");
                if (sv && json_get_string(sv, "secretName", &secret) == 0)
                        r = scan_secret_files(s, "volume", secret, json_get(sv, "items"), mount);
                JSON_FOREACH(src, json_get_path(v, "projected.sources")) {
                        const struct json_value *ps = json_get(src, "secret");
                        if (r >= 0 && ps && json_get_string(ps, "name", &secret) == 0)
                                r = scan_secret_files(s, "projected", secret, json_get(ps, "items"),
                                                      mount);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The fields a Vault Agent template reads: {{ .Data.data.<field> }} (KV v2) or .Data.<field>. */
static int template_fields(struct scan *s, const char *source, const char *path, const char *tmpl) {
        char env[256];
        for (const char *p = tmpl; p && (p = strstr(p, ".Data."));) {
                p += 6;
                if (strncmp(p, "data.", 5) == 0)
                        p += 5;
                size_t n = strspn(
                        p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
                if (n == 0 || n > 200 || strncmp(p, "data", n) == 0)
                        continue;
                char field[256];
                memcpy(field, p, n);
                field[n] = '\0';
                key_to_env(field, env, sizeof(env));
                int r = map_field(s, source, path, field, env);
                if (r < 0)
                        return r;
                p += n;
        }
        return 0;
}

static int scan_annotations(struct scan *s, const struct json_value *ann) {
        static const char agent[] = "vault.hashicorp.com/",
                          secret_prefix[] = "vault.hashicorp.com/agent-inject-secret-",
                          banzai[] = "vault.security.banzaicloud.io/";
        const char *role = NULL;
        bool vault_agent = false, bank_vaults = false;
        int r = 0;

        JSON_FOREACH(a, ann) {
                const char *k = json_key(a), *v = NULL;
                if (json_string(a, &v) < 0)
                        continue;
                if (strncmp(k, agent, strlen(agent)) == 0)
                        vault_agent = true;
                if (strncmp(k, banzai, strlen(banzai)) == 0)
                        bank_vaults = true;
                if (strncmp(k, secret_prefix, strlen(secret_prefix)) == 0) {
                        const char *name = k + strlen(secret_prefix);
                        _cleanup_free_ char *source = NULL, *tk = NULL, *path = strdup(v);
                        const char *tmpl = NULL;
                        if (!path || asprintf(&source, "vault-agent:%s", name) < 0 ||
                            asprintf(&tk, "vault.hashicorp.com/agent-inject-template-%s", name) < 0)
                                return -ENOMEM;
                        while (path[0] == '/')
                                memmove(path, path + 1, strlen(path));
                        struct plan_secret *x;
                        r = entry(s, source, path, NULL, NULL, &x);
                        if (r >= 0 && x && json_get_string(ann, tk, &tmpl) == 0)
                                r = template_fields(s, source, path, tmpl);
                } else if (strcmp(k, "vault.security.banzaicloud.io/vault-env-from-path") == 0) {
                        _cleanup_free_ char *paths = strdup(v);
                        if (!paths)
                                return -ENOMEM;
                        for (char *p = paths, *next; r >= 0 && p && *p; p = next) {
                                next = strchr(p, ',');
                                if (next)
                                        *next++ = '\0';
                                while (*p == ' ' || *p == '/')
                                        p++;
                                _cleanup_free_ char *source = NULL;
                                if (!*p)
                                        continue;
                                if (asprintf(&source, "bank-vaults:%s", p) < 0)
                                        return -ENOMEM;
                                struct plan_secret *x;
                                r = entry(s, source, p, NULL, NULL, &x);
                                if (r >= 0 && x)
                                        r = add_note(s,
                                                     "Bank-Vaults vault-env-from-path %s: "
                                                     "every key of it; fill in the fields",
                                                     p);
                        }
                }
                if (r < 0)
                        return r;
        }
        if (vault_agent) {
                (void) json_get_string(ann, "vault.hashicorp.com/role", &role);
                r = add_note(s,
                             "annotated for the Vault Agent Injector (role '%s'): its vault paths "
                             "are kept; the workload must read the environment instead of "
                             "/vault/secrets",
                             role ? role : "?");
        }
        if (r >= 0 && bank_vaults) {
                role = NULL;
                (void) json_get_string(ann, "vault.security.banzaicloud.io/vault-role", &role);
                r = add_note(s, "annotated for Bank-Vaults (role '%s'): its vault paths are kept",
                             role ? role : "?");
        }
        return r;
}

int discover_scan(const struct json_value *obj, enum plan_kind kind, const char *ns,
                  const struct discover_config *c, struct plan_workload *ret,
                  bool *skipped_injected) {
        const char *name = NULL, *inject = NULL;
        const struct json_value *tmpl = json_get_path(obj, "spec.template"),
                                *spec = json_get(tmpl, "spec"),
                                *ann = json_get_path(tmpl, "metadata.annotations");
        struct plan_workload w = {.kind = kind, .status = PLAN_PENDING};
        struct scan s = {.c = c, .ns = ns, .w = &w, .notes = BUF_INIT(PLAN_MAX_STRING, 0)};
        static const char *const lists[] = {"initContainers", "containers"};
        int64_t replicas = 0;
        int r = 0;

        if (skipped_injected)
                *skipped_injected = false;
        if (!c || !ns || !ret || json_get_string(json_get(obj, "metadata"), "name", &name) < 0 ||
            !kube_name_valid(name) || json_type(spec) != JSON_OBJECT)
                return -EINVAL;
        if (json_get_string(ann, "cloudtaser.io/inject", &inject) == 0 &&
            strcmp(inject, "true") == 0) {
                if (skipped_injected)
                        *skipped_injected = true;
                return 0;
        }
        if (kind != PLAN_DAEMONSET &&
            json_get_int64(json_get(obj, "spec"), "replicas", &replicas) == 0 && replicas >= 0)
                w.replicas = replicas;
        for (size_t l = 0; l < ELEMENTSOF(lists) && r >= 0; l++)
                JSON_FOREACH(ct, json_get(spec, lists[l])) {
                        r = scan_env(&s, ct);
                        if (r >= 0)
                                r = scan_env_from(&s, ct);
                        if (r < 0)
                                break;
                }
        if (r >= 0)
                r = scan_volumes(&s, spec);
        if (r >= 0)
                r = scan_annotations(&s, ann);
        if (r >= 0 && s.notes.len && !(w.note = strdup(buf_cstr(&s.notes))))
                r = -ENOMEM;
        if (w.note)
                printable(w.note, PLAN_MAX_STRING); /* names and paths the cluster gave */
        if (r >= 0 && w.n_secrets && !(w.name = strdup(name)))
                r = -ENOMEM;
        /* The pod's service account: `source apply-plan` binds the tenant's role to it. */
        const char *sa = NULL;
        if (r >= 0 && w.n_secrets && json_get_string(spec, "serviceAccountName", &sa) == 0 &&
            kube_name_valid(sa) && !(w.service_account = strdup(sa)))
                r = -ENOMEM;
        buf_done(&s.notes);
        if (r < 0 || !w.n_secrets) {
                plan_workload_done(&w);
                return r < 0 ? r : 0;
        }
        *ret = w;
        return 1;
}

/* --- the command ------------------------------------------------------------------------------ */

struct key_cache_entry {
        char *ns, *name;
        char **keys; /* NULL with r < 0 */
        int r;
        bool done; /* false while a thread reads it: the others wait (each Secret read once) */
};

/* One list: a kind in a namespace, or in every namespace (ns NULL). Its workloads are kept in
 * listing order, merged into the plan in job order once every job is done, so the plan is the
 * same whichever thread listed what, and whenever. */
struct found {
        char *ns;
        struct plan_workload w;
};
struct list_job {
        enum plan_kind kind;
        const char *ns;
        struct found *found;
        size_t n_found;
        int r;
        struct kube_error e;
};

struct discover_run {
        struct kube_client *k;
        const struct discover_config *c;
        pthread_mutex_t lock; /* everything below */
        pthread_cond_t cache_done;
        struct key_cache_entry *cache;
        size_t n_cache;
        bool progress;
        bool protobuf; /* ask for workload lists in protobuf (--api-encoding) */
        unsigned page_size;
        size_t scanned, found, injected, secret_reads;
        struct list_job *jobs;
        size_t n_jobs, next_job;
        bool failed; /* a job failed: the others stop */
};

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The cached answer of entry i (d->lock held): a copy of its key names, or its error. */
static int cached_keys(struct discover_run *d, size_t i, char ***ret) {
        if (d->cache[i].r < 0)
                return d->cache[i].r;
        return strv_copy(d->cache[i].keys, STRV_ALL, ret);
}

/* A Secret's key NAMES from the API server. The answer holds its values too: it stays in secure
 * memory (kube_get's documents are), only the names are copied out, and freeing it wipes it.
 * Each Secret is read once per run: a thread asking for one another thread is reading waits for
 * its answer. */
static int api_secret_keys(void *userdata, const char *ns, const char *name, char ***ret) {
        struct discover_run *d = userdata;
        int r;
        pthread_mutex_lock(&d->lock);
        for (size_t i = 0; i < d->n_cache; i++)
                if (strcmp(d->cache[i].ns, ns) == 0 && strcmp(d->cache[i].name, name) == 0) {
                        while (!d->cache[i].done)
                                pthread_cond_wait(&d->cache_done, &d->lock);
                        r = cached_keys(d, i, ret);
                        pthread_mutex_unlock(&d->lock);
                        return r;
                }
        struct key_cache_entry *c = reallocarray(d->cache, d->n_cache + 1, sizeof(*c));
        char *cns = strdup(ns), *cname = strdup(name);
        if (!c || !cns || !cname) {
                if (c)
                        d->cache = c;
                pthread_mutex_unlock(&d->lock);
                free(cns);
                free(cname);
                return -ENOMEM;
        }
        d->cache = c;
        size_t idx = d->n_cache++;
        c[idx] = (struct key_cache_entry){.ns = cns, .name = cname};
        d->secret_reads++;
        pthread_mutex_unlock(&d->lock);

        char path[512];
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        char **keys = NULL;
        struct kube_error e;
        (void) snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
        r = kube_get(d->k, path, &doc, &e);
        if (r >= 0) {
                const struct json_value *data = json_get(json_doc_root(doc), "data");
                size_t n = 0;
                r = strv_new(&keys);
                JSON_FOREACH(v, data) {
                        if (r >= 0)
                                r = strv_extend(&keys, &n, json_count(data), json_key(v));
                }
                if (r >= 0)
                        qsort(keys, n, sizeof(*keys), cmp_str);
                else
                        keys = strv_free(keys);
        }
        pthread_mutex_lock(&d->lock);
        d->cache[idx].keys = keys;
        d->cache[idx].r = r;
        d->cache[idx].done = true;
        pthread_cond_broadcast(&d->cache_done);
        r = cached_keys(d, idx, ret);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static struct plan_tenant *tenant_for(struct plan *p, const char *ns) {
        for (size_t i = p->n_tenants; i > 0; i--)
                if (strcmp(p->tenants[i - 1].namespace_, ns) == 0)
                        return &p->tenants[i - 1];
        if (p->n_tenants >= PLAN_MAX_TENANTS)
                return NULL;
        struct plan_tenant *t = reallocarray(p->tenants, p->n_tenants + 1, sizeof(*t));
        if (!t)
                return NULL;
        p->tenants = t;
        t = &t[p->n_tenants];
        *t = (struct plan_tenant){.name = strdup(ns), .namespace_ = strdup(ns)};
        if (!t->name || !t->namespace_) {
                free(t->name);
                free(t->namespace_);
                return NULL;
        }
        p->n_tenants++;
        return t;
}

static const char *const resources[_PLAN_KIND_MAX] = {
        [PLAN_DEPLOYMENT] = "deployments",
        [PLAN_STATEFULSET] = "statefulsets",
        [PLAN_DAEMONSET] = "daemonsets",
};

/* The continue token of a list answer, URL-encoded (it is base64, with '=' and '+'), or NULL in
 * *ret at the last page. */
static int next_page(const struct json_value *root, char **ret) {
        const char *next = NULL;
        int r = 0;
        *ret = NULL;
        if (json_get_string(json_get(root, "metadata"), "continue", &next) < 0 || !*next)
                return 0;
        _cleanup_buf_ struct buf b = BUF_INIT(2048, 0);
        for (const char *q = next; *q && r >= 0; q++)
                r = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                                    (*q >= '0' && *q <= '9') || strchr("-_.~", *q)
                            ? buf_append_byte(&b, (uint8_t) *q)
                            : buf_printf(&b, "%%%02X", (unsigned char) *q);
        if (r < 0)
                return r;
        *ret = strdup(buf_cstr(&b));
        return *ret ? 0 : -ENOMEM;
}

/* One page of a list: path is the collection ("/apis/apps/v1/namespaces/ns/deployments"). A
 * workload list (kind >= 0) is asked for in protobuf, which the API server encodes several times
 * faster than JSON; a page that does not come as protobuf or that cli/discover-pb refuses is
 * asked for again in JSON (whose errors are the ones reported: a Status in protobuf is not
 * decoded). The continue token is the same in either encoding. */
static int get_page(struct discover_run *d, int kind, const char *collection, const char *cont,
                    struct json_doc **ret, struct kube_error *e) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s?limit=%u%s%s", collection, d->page_size,
                         cont ? "&continue=" : "", cont ? cont : "");
        if (n < 0 || (size_t) n >= sizeof(path))
                return -E2BIG;
        if (kind >= 0 && d->protobuf) {
                /* Workload lists may hold secrets (literal env values): secure memory. */
                _cleanup_buf_ struct buf raw = BUF_INIT(KUBE_MAX_BODY, BUF_SECURE);
                int r = kube_get_raw(d->k, path, "application/vnd.kubernetes.protobuf", &raw, e);
                if (r >= 0)
                        r = discover_pb_list(raw.data, raw.len, (enum plan_kind) kind, ret);
                if (r >= 0 || r == -ENOMEM)
                        return r;
                *e = (struct kube_error){};
        }
        return kube_get(d->k, path, ret, e);
}

static int job_add(struct list_job *j, const char *ns, struct plan_workload *w) {
        if (j->n_found >= (size_t) PLAN_MAX_WORKLOADS * 100u) /* memory; the plan's own limits */
                return -E2BIG;                                /* apply at the merge */
        struct found *f = reallocarray(j->found, j->n_found + 1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        j->found = f;
        f[j->n_found] = (struct found){.ns = strdup(ns), .w = *w};
        if (!f[j->n_found].ns)
                return -ENOMEM; /* w is the caller's to free */
        j->n_found++;
        *w = (struct plan_workload){};
        return 0;
}

/* The next page, fetched on its own thread while this one scans the page before it. */
struct fetch {
        struct discover_run *d;
        int kind;
        const char *collection;
        char *cont;
        struct json_doc *doc;
        struct kube_error e;
        int r;
};

static void *fetch_main(void *userdata) {
        struct fetch *f = userdata;
        f->r = get_page(f->d, f->kind, f->collection, f->cont, &f->doc, &f->e);
        return NULL;
}

static int scan_page(struct discover_run *d, struct list_job *j, const struct json_value *root) {
        size_t scanned = 0, found = 0, injected = 0;
        int r = 0;
        JSON_FOREACH(item, json_get(root, "items")) {
                const char *ins = NULL;
                struct plan_workload w;
                bool inj;
                if (json_get_string(json_get(item, "metadata"), "namespace", &ins) < 0 ||
                    discover_namespace_skipped(ins) || !kube_name_valid(ins))
                        continue;
                scanned++;
                r = discover_scan(item, j->kind, ins, d->c, &w, &inj);
                if (r == -EINVAL) {
                        r = 0;
                        continue; /* not a workload we can read */
                }
                if (r < 0)
                        break;
                injected += inj;
                if (r == 0)
                        continue;
                r = job_add(j, ins, &w);
                if (r < 0) {
                        plan_workload_done(&w);
                        break;
                }
                found++;
        }
        pthread_mutex_lock(&d->lock);
        d->scanned += scanned;
        d->found += found;
        d->injected += injected;
        if (d->progress)
                fprintf(stderr, "\rdiscover: %zu workloads scanned, %zu to migrate   ", d->scanned,
                        d->found);
        if (d->failed && r >= 0)
                r = -ECANCELED; /* another list failed: its error is the one reported */
        pthread_mutex_unlock(&d->lock);
        return r < 0 ? r : 0;
}

/* Lists job's kind in its namespace (or every one) page by page and scans each workload; the
 * next page is asked for as soon as this one's continue token is known. */
static int list_job(struct discover_run *d, struct list_job *j) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        char collection[512];
        int n = j->ns ? snprintf(collection, sizeof(collection), "/apis/apps/v1/namespaces/%s/%s",
                                 j->ns, resources[j->kind])
                      : snprintf(collection, sizeof(collection), "/apis/apps/v1/%s",
                                 resources[j->kind]);
        if (n < 0 || (size_t) n >= sizeof(collection))
                return -E2BIG;
        int r = get_page(d, (int) j->kind, collection, NULL, &doc, &j->e);
        while (r >= 0) {
                struct fetch f = {.d = d, .kind = (int) j->kind, .collection = collection};
                pthread_t t;
                bool started = false;
                r = next_page(json_doc_root(doc), &f.cont);
                if (r < 0)
                        break;
                if (f.cont) {
                        started = pthread_create(&t, NULL, fetch_main, &f) == 0;
                        if (!started) /* no thread: the page after this one */
                                fetch_main(&f);
                }
                r = scan_page(d, j, json_doc_root(doc));
                if (started)
                        (void) pthread_join(t, NULL);
                bool more = f.cont != NULL;
                doc = json_doc_free(doc);
                free(f.cont);
                if (r >= 0 && more && f.r < 0) {
                        j->e = f.e;
                        r = f.r;
                }
                doc = f.doc;
                if (r < 0 || !more)
                        break;
        }
        return r == -ECANCELED ? 0 : r;
}

static void *worker(void *userdata) {
        struct discover_run *d = userdata;
        for (;;) {
                pthread_mutex_lock(&d->lock);
                struct list_job *j =
                        d->failed || d->next_job >= d->n_jobs ? NULL : &d->jobs[d->next_job++];
                pthread_mutex_unlock(&d->lock);
                if (!j)
                        return NULL;
                j->r = list_job(d, j);
                if (j->r < 0) {
                        pthread_mutex_lock(&d->lock);
                        d->failed = true;
                        pthread_mutex_unlock(&d->lock);
                }
        }
}

/* Runs the jobs on up to KUBE_MAX_CONNECTIONS threads (the client's connections), this one
 * included. A thread that cannot be started leaves its share to the others. */
static void run_jobs(struct discover_run *d) {
        pthread_t t[KUBE_MAX_CONNECTIONS - 1];
        size_t n = 0;
        while (n < ELEMENTSOF(t) && n + 1 < d->n_jobs &&
               pthread_create(&t[n], NULL, worker, d) == 0)
                n++;
        (void) worker(d);
        for (size_t i = 0; i < n; i++)
                (void) pthread_join(t[i], NULL);
}

static int cmp_tenant(const void *a, const void *b) {
        return strcmp(((const struct plan_tenant *) a)->namespace_,
                      ((const struct plan_tenant *) b)->namespace_);
}

static int exit_for(int r) {
        switch (r) {
        case -EACCES:
        case -EPERM:
                return EX_NOPERM;
        case -ENOENT:
        case -EBADMSG:
        case -EPROTONOSUPPORT:
                return EX_CONFIG;
        case -ENOMEM:
                return EX_OSERR;
        default:
                return EX_UNAVAILABLE;
        }
}

static char *created_by(void) {
        char host[256] = "", *s = NULL;
        const char *user = getenv("USER");
        struct passwd pw, *res = NULL;
        char pwbuf[1024];
        if (!user && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
                user = pw.pw_name;
        (void) gethostname(host, sizeof(host) - 1);
        if (asprintf(&s, "cloudtaser discover (%s@%s)", user ? user : "?", host) < 0)
                return NULL;
        /* The plan's strings are printable: anything else becomes '?'. */
        for (char *c = s; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                        *c = '?';
        return s;
}

static char *now_rfc3339(void) {
        time_t t = time(NULL);
        struct tm tm;
        char b[32];
        if (!gmtime_r(&t, &tm) || strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return strdup(b);
}

static int summary_json(const struct plan *p, const struct discover_run *d, const char *output) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_buf_ struct buf out = BUF_INIT(PLAN_MAX_BYTES, 0);
        struct json_value *root, *tenants, *t;
        size_t secrets = 0, notes = 0;
        int r = json_doc_new(0, PLAN_MAX_BYTES, &doc);
        if (r < 0)
                return r;
        root = json_doc_root(doc);
        r = json_add_string(doc, root, "cluster", p->cluster);
        if (r >= 0 && output)
                r = json_add_string(doc, root, "plan", output);
        if (r >= 0)
                r = json_add_int64(doc, root, "scanned", (int64_t) d->scanned);
        if (r >= 0)
                r = json_add_int64(doc, root, "alreadyInjected", (int64_t) d->injected);
        if (r >= 0)
                r = json_add_array(doc, root, "tenants", &tenants);
        for (size_t i = 0; r >= 0 && i < p->n_tenants; i++) {
                const struct plan_tenant *tn = &p->tenants[i];
                size_t s = 0, n = 0;
                for (size_t w = 0; w < tn->n_workloads; w++) {
                        s += tn->workloads[w].n_secrets;
                        n += tn->workloads[w].note != NULL;
                }
                secrets += s;
                notes += n;
                r = json_add_object(doc, tenants, NULL, &t);
                if (r >= 0)
                        r = json_add_string(doc, t, "namespace", tn->namespace_);
                if (r >= 0)
                        r = json_add_int64(doc, t, "workloads", (int64_t) tn->n_workloads);
                if (r >= 0)
                        r = json_add_int64(doc, t, "secrets", (int64_t) s);
                if (r >= 0)
                        r = json_add_int64(doc, t, "withNotes", (int64_t) n);
        }
        if (r >= 0)
                r = json_add_int64(doc, root, "workloads", (int64_t) d->found);
        if (r >= 0)
                r = json_add_int64(doc, root, "secrets", (int64_t) secrets);
        if (r >= 0)
                r = json_add_int64(doc, root, "withNotes", (int64_t) notes);
        if (r >= 0)
                r = json_print(root, &out);
        if (r >= 0)
                r = buf_append_byte(&out, '\n');
        if (r >= 0 && fwrite(out.data, 1, out.len, stdout) != out.len)
                r = -EIO;
        return r;
}

int cli_target_discover(int argc, char **argv) {
        static const struct option opts[] = {
                {"kubeconfig", required_argument, NULL, 'k'},
                {"context", required_argument, NULL, 'c'},
                {"namespace", required_argument, NULL, 'n'},
                {"all-namespaces", no_argument, NULL, 'A'},
                {"cluster", required_argument, NULL, 'C'},
                {"path-template", required_argument, NULL, 'p'},
                {"output", required_argument, NULL, 'o'},
                {"summary", required_argument, NULL, 's'},
                {"quiet", no_argument, NULL, 'q'},
                {"page-size", required_argument, NULL, 'P'},
                {"api-encoding", required_argument, NULL, 'E'},
                {},
        };
        const char *kubeconfig = NULL, *context = NULL, *ns = NULL, *cluster = NULL, *tmpl = NULL,
                   *output = NULL, *summary = NULL;
        bool all = false, quiet = false, protobuf = true;
        unsigned long page = DISCOVER_PAGE_LIMIT;
        char *end;
        int o, r;

        /* common/kube keeps every answer in secure memory. Here that is megabytes of workload
         * lists (and a few Secrets, of which only the key names are used): with memfd_secret
         * each page faulted in is removed from the kernel's direct map, a TLB shootdown on every
         * CPU (the API server's too) that doubled discover's CPU time over 5,000 workloads.
         * Locked anonymous pages (mlock: never swapped, not dumped, guarded, wiped) are what
         * this command uses instead. Before any allocation, so that it takes effect. */
        (void) secmem_init(SECMEM_NO_MEMFD_SECRET);
        optind = 1;
        opterr = 0;
        while ((o = getopt_long(argc, argv, "+n:Ao:q", opts, NULL)) >= 0) {
                switch (o) {
                case 'k':
                        kubeconfig = optarg;
                        break;
                case 'c':
                        context = optarg;
                        break;
                case 'n':
                        ns = optarg;
                        break;
                case 'A':
                        all = true;
                        break;
                case 'C':
                        cluster = optarg;
                        break;
                case 'p':
                        tmpl = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 's':
                        summary = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'P':
                        errno = 0;
                        page = strtoul(optarg, &end, 10);
                        if (errno || *end || page < 1 || page > 5000) {
                                fprintf(stderr, "cloudtaser target discover: --page-size is 1 "
                                                "to 5000\n");
                                return EX_USAGE;
                        }
                        break;
                case 'E':
                        if (strcmp(optarg, "protobuf") != 0 && strcmp(optarg, "json") != 0) {
                                fprintf(stderr, "cloudtaser target discover: --api-encoding is "
                                                "protobuf or json\n");
                                return EX_USAGE;
                        }
                        protobuf = strcmp(optarg, "protobuf") == 0;
                        break;
                default:
                        return cli_flag_error("target discover", argv);
                }
        }
        if (cli_no_arguments("target discover", argc, argv) != EX_OK)
                return EX_USAGE;
        if (ns && all) {
                fprintf(stderr, "cloudtaser target discover: -n and --all-namespaces exclude "
                                "each other\n");
                return EX_USAGE;
        }
        if (ns && !kube_name_valid(ns)) {
                fprintf(stderr, "cloudtaser target discover: '%s' is not a namespace name\n", ns);
                return EX_USAGE;
        }
        /* -o json is the summary (CloudTaser's spelling); a file called json is -o ./json. */
        if (output && strcmp(output, "json") == 0) {
                output = NULL;
                summary = "json";
        }
        if (summary && strcmp(summary, "json") != 0 && strcmp(summary, "text") != 0) {
                fprintf(stderr, "cloudtaser target discover: --summary is text or json\n");
                return EX_USAGE;
        }
        if (output && strcmp(output, "-") == 0 && summary) {
                fprintf(stderr, "cloudtaser target discover: -o - and a summary both want "
                                "stdout\n");
                return EX_USAGE;
        }
        if (!output && !summary)
                output = "-";
        if (tmpl) {
                _cleanup_free_ char *probe = NULL;
                if (discover_vault_path(tmpl, "c", "ns", "s", &probe) < 0) {
                        fprintf(stderr,
                                "cloudtaser target discover: --path-template '%s' does not "
                                "give a valid vault path\n",
                                tmpl);
                        return EX_USAGE;
                }
        }

        struct kube_load_options lo = {.paths = kubeconfig, .context = context};
        struct kube_config *kc = NULL;
        struct kube_error e = {};
        r = kube_config_load(&lo, &kc, &e);
        if (r < 0) {
                log_error_errno(r, "Failed to read the kubeconfig: %s (%m)", e.message);
                return EX_CONFIG;
        }
        _cleanup_free_ char *cluster_name =
                strdup(cluster                    ? cluster
                       : *kube_config_context(kc) ? kube_config_context(kc)
                                                  : "cluster");
        _cleanup_free_ char *default_ns = strdup(kube_config_namespace(kc));
        struct discover_run d = {.progress = !quiet && isatty(STDERR_FILENO),
                                 .page_size = (unsigned) page,
                                 .protobuf = protobuf,
                                 .lock = PTHREAD_MUTEX_INITIALIZER,
                                 .cache_done = PTHREAD_COND_INITIALIZER};
        if (!cluster_name || !default_ns) {
                kube_config_free(kc);
                return EX_OSERR;
        }
        r = kube_client_new(&kc, NULL, &d.k);
        kube_config_free(kc);
        if (r < 0) {
                log_error_errno(r, "Failed to create the Kubernetes client: %m");
                return EX_SOFTWARE;
        }
        if (!ns && !all)
                ns = default_ns;

        _cleanup_plan_ struct plan *p = calloc(1, sizeof(*p));
        struct discover_config c = {.cluster = cluster_name,
                                    .path_template = tmpl,
                                    .secret_keys = api_secret_keys,
                                    .userdata = &d};
        d.c = &c;
        int ret = EX_OK;
        if (!p) {
                ret = EX_OSERR;
                goto out;
        }
        /* The three lists run side by side, each on its own connection, its pages one after
         * the other (the continue token of one asks for the next: one consistent snapshot, in
         * which every workload is listed exactly once). */
        d.jobs = calloc(_PLAN_KIND_MAX, sizeof(*d.jobs));
        if (!d.jobs) {
                ret = EX_OSERR;
                goto out;
        }
        for (unsigned k = 0; k < _PLAN_KIND_MAX; k++)
                d.jobs[d.n_jobs++] =
                        (struct list_job){.kind = (enum plan_kind) k, .ns = all ? NULL : ns};
        run_jobs(&d);
        for (size_t i = 0; i < d.n_jobs; i++) {
                struct list_job *j = &d.jobs[i];
                if (j->r >= 0)
                        continue;
                if (d.progress)
                        fputc('\n', stderr);
                log_error_errno(j->r, "Failed to list %s%s%s: %s (%m)", resources[j->kind],
                                j->ns ? " in namespace " : "", j->ns ? j->ns : "", j->e.message);
                ret = exit_for(j->r);
                goto out;
        }
        for (size_t i = 0; i < d.n_jobs; i++) {
                struct list_job *j = &d.jobs[i];
                for (size_t f = 0; f < j->n_found; f++) {
                        struct plan_tenant *t = tenant_for(p, j->found[f].ns);
                        struct plan_workload *nw =
                                t && t->n_workloads < PLAN_MAX_WORKLOADS
                                        ? reallocarray(t->workloads, t->n_workloads + 1,
                                                       sizeof(*nw))
                                        : NULL;
                        if (!nw) {
                                log_error_errno(t ? -ENOMEM : -E2BIG,
                                                "Failed to build the plan: %m");
                                ret = t ? EX_OSERR : EX_DATAERR;
                                goto out;
                        }
                        t->workloads = nw;
                        nw[t->n_workloads++] = j->found[f].w;
                        j->found[f].w = (struct plan_workload){};
                }
        }
        if (d.progress)
                fputc('\n', stderr);
        if (p->n_tenants > 1)
                qsort(p->tenants, p->n_tenants, sizeof(*p->tenants), cmp_tenant);
        p->cluster = strdup(cluster_name);
        if (asprintf(&p->name, "%s-migration", cluster_name) < 0)
                p->name = NULL;
        p->created_at = now_rfc3339();
        p->created_by = created_by();
        if (!p->cluster || !p->name || !p->created_at || !p->created_by) {
                ret = EX_OSERR;
                goto out;
        }
        if (output && strcmp(output, "-") == 0) {
                _cleanup_buf_ struct buf out = BUF_INIT(PLAN_MAX_BYTES, 0);
                r = plan_format(p, &out);
                if (r >= 0 && fwrite(out.data, 1, out.len, stdout) != out.len)
                        r = -EIO;
        } else if (output)
                r = plan_save(p, output);
        else
                r = 0;
        if (r < 0) {
                log_error_errno(r, "Failed to write the plan%s%s: %m", output ? " to " : "",
                                output ? output : "");
                ret = r == -EINVAL ? EX_DATAERR : EX_CANTCREAT;
                goto out;
        }
        if (summary && strcmp(summary, "json") == 0)
                r = summary_json(p, &d, output);
        else if (output && strcmp(output, "-") != 0)
                printf("wrote %s: %zu workloads to migrate in %zu namespaces (%zu scanned, %zu "
                       "already injected)\n",
                       output, d.found, p->n_tenants, d.scanned, d.injected);
        if (r < 0)
                ret = EX_IOERR;
out:
        for (size_t i = 0; i < d.n_jobs; i++) {
                for (size_t f = 0; f < d.jobs[i].n_found; f++) {
                        free(d.jobs[i].found[f].ns);
                        plan_workload_done(&d.jobs[i].found[f].w);
                }
                free(d.jobs[i].found);
        }
        free(d.jobs);
        pthread_cond_destroy(&d.cache_done);
        pthread_mutex_destroy(&d.lock);
        for (size_t i = 0; i < d.n_cache; i++) {
                free(d.cache[i].ns);
                free(d.cache[i].name);
                (void) strv_free(d.cache[i].keys);
        }
        free(d.cache);
        kube_client_free(d.k);
        return ret;
}
