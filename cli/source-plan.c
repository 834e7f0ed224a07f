/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/source-plan: `cloudtaser source apply-plan` and `cloudtaser source verify-plan`
 * (docs/cli.md#source-commands). Per tenant (namespace) of a plan: the ACL policy and the
 * Kubernetes auth role named SOURCE_TENANT_PREFIX<namespace>; the policy grants read on exactly
 * the plan's paths (KV v2: the data path, and the metadata path the wrapper polls for rotation,
 * wrapper/secrets.c), the role binds the tenant's service accounts in that namespace only.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/plan.h"
#include "cli/source-plan.h"
#include "cli/source.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault-sys.h"

#define PROBE "cloudtaser-verify-probe"

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Sorts v and drops duplicates; returns the new count. */
static size_t uniq(const char **v, size_t n) {
        size_t o = 0;
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_str);
        for (size_t i = 0; i < n; i++)
                if (o == 0 || strcmp(v[o - 1], v[i]) != 0)
                        v[o++] = v[i];
        return o;
}

/* Appends s to the growing array *v (n used, *cap allocated). */
static int push(const char ***v, size_t *n, size_t *cap, const char *s) {
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                const char **m = realloc(*v, c * sizeof(**v));
                if (!m)
                        return -ENOMEM;
                *v = m;
                *cap = c;
        }
        (*v)[(*n)++] = s;
        return 0;
}

static bool counts(const struct plan_workload *w) {
        return w->status != PLAN_SKIPPED;
}

int source_tenant_paths(const struct plan_tenant *t, const char ***ret, size_t *ret_n) {
        size_t n = 0, cap = 0;
        const char **v = NULL;
        for (size_t i = 0; i < t->n_workloads; i++) {
                const struct plan_workload *w = &t->workloads[i];
                if (!counts(w))
                        continue;
                for (size_t j = 0; j < w->n_secrets; j++) {
                        if (!vault_path_valid(w->secrets[j].vault_path)) {
                                free(v);
                                return -EINVAL;
                        }
                        if (push(&v, &n, &cap, w->secrets[j].vault_path) < 0) {
                                free(v);
                                return -ENOMEM;
                        }
                }
        }
        *ret_n = uniq(v, n);
        *ret = v;
        return 0;
}

int source_tenant_service_accounts(const struct plan_tenant *t, const char ***ret, size_t *ret_n) {
        size_t n = 0;
        const char **v = calloc(t->n_workloads + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_workloads; i++) {
                const struct plan_workload *w = &t->workloads[i];
                const char *sa = w->service_account ? w->service_account : "default";
                if (!counts(w))
                        continue;
                if (!kube_name_valid(sa)) {
                        free(v);
                        return -EINVAL;
                }
                v[n++] = sa;
        }
        *ret_n = uniq(v, n);
        *ret = v;
        return 0;
}

int source_tenant_name(const struct plan_tenant *t, char *dst, size_t n) {
        if (!t->namespace_ || !kube_name_valid(t->namespace_))
                return -EINVAL;
        int w = snprintf(dst, n, SOURCE_TENANT_PREFIX "%s", t->namespace_);
        return w < 0 || (size_t) w >= n ? -E2BIG : 0;
}

/* Printable ASCII only (a comment line in the policy). */
static int append_sanitized(struct buf *out, const char *s) {
        int r = 0;
        for (; s && *s && r >= 0; s++)
                r = buf_append_byte(out, *s >= 0x20 && *s < 0x7f ? (uint8_t) *s : '?');
        return r;
}

static int append_rule(struct buf *out, const char *path) {
        return buf_printf(out, "path \"%s\" {\n  capabilities = [\"read\"]\n}\n", path);
}

int source_tenant_policy(struct vault_client *c, const struct plan_tenant *t, struct buf *out) {
        _cleanup_free_ const char **paths = NULL;
        size_t n = 0;
        struct vault_error e;
        int r;

        r = source_tenant_paths(t, &paths, &n);
        if (r < 0)
                return log_error_errno(r, "Tenant '%s': a vault path that is not valid", t->name);
        r = buf_append_str(out, "# Managed by cloudtaser source apply-plan: tenant ");
        if (r >= 0)
                r = append_sanitized(out, t->name);
        if (r >= 0)
                r = buf_printf(out,
                               ", namespace %s.\n# Read only, exactly the plan's paths "
                               "(KV v2: data, and metadata for rotation).\n",
                               t->namespace_);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct vault_kv_path kp;
                r = vault_kv_resolve(c, paths[i], &kp, &e);
                if (r < 0) {
                        (void) source_vault_fail(r, &e, "Failed to find the mount of a plan path");
                        return r;
                }
                r = append_rule(out, kp.data_path);
                if (r >= 0 && kp.version == VAULT_KV_V2)
                        r = append_rule(out, kp.metadata_path);
        }
        return r < 0 ? log_error_errno(r, "Failed to build the policy of '%s': %m", t->name) : 0;
}

int source_apply_plan(struct vault_client *c, const struct plan *p,
                      const struct source_plan_options *o) {
        int changes = 0, r;

        for (size_t i = 0; i < p->n_tenants; i++) {
                const struct plan_tenant *t = &p->tenants[i];
                _cleanup_buf_ struct buf policy = BUF_INIT(VAULT_SYS_MAX_POLICY, 0);
                _cleanup_free_ const char **sas = NULL, **paths = NULL;
                size_t n_sas = 0, n_paths = 0;
                char name[256];

                r = source_tenant_name(t, name, sizeof(name));
                if (r < 0)
                        return log_error_errno(r, "Tenant '%s': invalid namespace '%s'", t->name,
                                               t->namespace_ ? t->namespace_ : "");
                r = source_tenant_paths(t, &paths, &n_paths);
                if (r >= 0)
                        r = source_tenant_service_accounts(t, &sas, &n_sas);
                if (r < 0)
                        return log_error_errno(r,
                                               "Tenant '%s': an invalid vault path or service "
                                               "account name",
                                               t->name);
                if (n_paths == 0 || n_sas == 0) {
                        log_info("Tenant '%s': no workload to migrate, nothing to do", t->name);
                        continue;
                }
                r = source_tenant_policy(c, t, &policy);
                if (r < 0)
                        return r;
                r = source_policy_apply(c, name, buf_cstr(&policy), o->dry_run);
                if (r < 0)
                        return r;
                changes += r;
                struct source_role role = {
                        .service_accounts = sas,
                        .n_service_accounts = n_sas,
                        .namespace_ = t->namespace_,
                        .audience = o->audience,
                        .policy = name,
                };
                r = source_role_apply(c, o->auth_mount, name, &role, o->dry_run);
                if (r < 0)
                        return r;
                changes += r;
        }
        return changes;
}

/* --- verify ------------------------------------------------------------------------------- */

static const char *const check_status_names[] = {
        [SOURCE_CHECK_OK] = "ok",
        [SOURCE_CHECK_MISSING_FIELD] = "missing field",
        [SOURCE_CHECK_MISSING_PATH] = "missing secret",
        [SOURCE_CHECK_DENIED] = "denied",
        [SOURCE_CHECK_TOO_MUCH] = "grants too much",
        [SOURCE_CHECK_ERROR] = "error",
};

const char *source_check_status_to_string(enum source_check_status s) {
        return s < ELEMENTSOF(check_status_names) ? check_status_names[s] : "?";
}

struct source_report *source_report_free(struct source_report *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_checks; i++) {
                free(r->checks[i].path);
                free(r->checks[i].detail);
        }
        free(r->checks);
        free(r);
        return NULL;
}

static int add_check(struct source_report *rep, enum source_check_kind kind, const char *ns,
                     const char *subject, const char *path, const char *detail,
                     enum source_check_status st) {
        if (rep->n_checks == rep->cap) {
                size_t cap = rep->cap ? rep->cap * 2 : 64;
                struct source_check *m = realloc(rep->checks, cap * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                rep->checks = m;
                rep->cap = cap;
        }
        struct source_check *x = &rep->checks[rep->n_checks];
        *x = (struct source_check){.kind = kind, .ns = ns, .subject = subject, .status = st};
        x->path = strdup(path);
        x->detail = strdup(detail ? detail : "");
        if (!x->path || !x->detail) {
                free(x->path);
                free(x->detail);
                return -ENOMEM;
        }
        rep->n_checks++;
        if (st != SOURCE_CHECK_OK)
                rep->n_failed++;
        return 0;
}

/* The fields the tenant maps from path. */
static int tenant_fields(const struct plan_tenant *t, const char *path, const char ***ret,
                         size_t *ret_n) {
        size_t n = 0, cap = 0;
        const char **v = NULL;
        for (size_t i = 0; i < t->n_workloads; i++) {
                const struct plan_workload *w = &t->workloads[i];
                if (!counts(w))
                        continue;
                for (size_t j = 0; j < w->n_secrets; j++) {
                        const struct plan_secret *s = &w->secrets[j];
                        if (strcmp(s->vault_path, path) != 0)
                                continue;
                        for (size_t k = 0; k < s->n_fields; k++) {
                                if (push(&v, &n, &cap, s->fields[k].field) < 0) {
                                        free(v);
                                        return -ENOMEM;
                                }
                        }
                }
        }
        *ret_n = uniq(v, n);
        *ret = v;
        return 0;
}

/* Every mapped field of every path exists (names only: values are wiped unseen). */
static int verify_fields(struct vault_client *c, const struct plan_tenant *t,
                         struct source_report *rep) {
        _cleanup_free_ const char **paths = NULL;
        size_t n = 0;
        int r = source_tenant_paths(t, &paths, &n);
        if (r < 0)
                return log_error_errno(r, "Tenant '%s': an invalid vault path", t->name);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ const char **fields = NULL;
                _cleanup_vault_secret_ struct vault_secret *s = NULL;
                struct vault_kv_path kp;
                struct vault_error e;
                size_t nf = 0;

                r = tenant_fields(t, paths[i], &fields, &nf);
                if (r < 0)
                        return r;
                r = vault_kv_resolve(c, paths[i], &kp, &e);
                if (r >= 0)
                        r = vault_kv_read(c, &kp, 0, &s, &e);
                if (r == -ENOENT) {
                        for (size_t k = 0; k < nf; k++) {
                                r = add_check(rep, SOURCE_CHECK_FIELD, t->namespace_, fields[k],
                                              paths[i], e.message, SOURCE_CHECK_MISSING_PATH);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (r < 0) {
                        (void) source_vault_fail(r, &e, "Failed to read a plan path");
                        return r;
                }
                for (size_t k = 0; k < nf; k++) {
                        r = add_check(rep, SOURCE_CHECK_FIELD, t->namespace_, fields[k], paths[i],
                                      NULL,
                                      vault_secret_get(s, fields[k]) ? SOURCE_CHECK_OK
                                                                     : SOURCE_CHECK_MISSING_FIELD);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static bool is_plan_path(const struct vault_kv_path *plan, size_t n, const char *p) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(plan[i].data_path, p) == 0 || strcmp(plan[i].metadata_path, p) == 0)
                        return true;
        return false;
}

/* One capabilities-self check: `want` exactly (0: nothing at all). */
static int check_caps(struct vault_client *wc, struct source_report *rep, const char *ns,
                      const char *sa, const char *path, unsigned want) {
        struct vault_error e;
        unsigned caps = 0;
        char got[128], detail[192];
        enum source_check_status st;
        int r = vault_sys_capabilities_self(wc, path, &caps, &e);
        if (r < 0) {
                (void) source_vault_fail(r, &e, "Failed to read the capabilities of the role");
                return add_check(rep, SOURCE_CHECK_ACCESS, ns, sa, path, e.message,
                                 SOURCE_CHECK_ERROR);
        }
        caps &= ~(unsigned) VAULT_CAP_DENY;
        if ((caps & ~want) != 0)
                st = SOURCE_CHECK_TOO_MUCH;
        else if ((caps & want) != want)
                st = SOURCE_CHECK_DENIED;
        else
                st = SOURCE_CHECK_OK;
        (void) snprintf(detail, sizeof(detail), "%s (expected %s)",
                        vault_caps_to_string(caps, got, sizeof(got)), want ? "read" : "none");
        return add_check(rep, SOURCE_CHECK_ACCESS, ns, sa, path, detail, st);
}

/* The places just outside a plan path that a too-broad policy would cover. */
static int probe_paths(const struct vault_kv_path *kp, char (*out)[VAULT_PATH_MAX], size_t *n) {
        const char *rel = kp->relative, *slash = strrchr(rel, '/');
        int dir = slash ? (int) (slash - rel) : 0;
        const char *bases[2] = {kp->data_path, kp->metadata_path};
        char prefix[2][VAULT_PATH_MAX];
        size_t o = 0;

        if (kp->version == VAULT_KV_V2) {
                (void) snprintf(prefix[0], sizeof(prefix[0]), "%sdata/", kp->mount);
                (void) snprintf(prefix[1], sizeof(prefix[1]), "%smetadata/", kp->mount);
        } else
                (void) snprintf(prefix[0], sizeof(prefix[0]), "%s", kp->mount);
        for (size_t b = 0; b < (kp->version == VAULT_KV_V2 ? 2u : 1u); b++) {
                (void) snprintf(out[o++], VAULT_PATH_MAX, "%.300s-" PROBE, bases[b]);
                (void) snprintf(out[o++], VAULT_PATH_MAX, "%.300s/" PROBE, bases[b]);
                (void) snprintf(out[o++], VAULT_PATH_MAX, "%.200s" PROBE, prefix[b]);
                if (dir > 0) {
                        (void) snprintf(out[o++], VAULT_PATH_MAX, "%.200s%.*s", prefix[b], dir,
                                        rel);
                        (void) snprintf(out[o++], VAULT_PATH_MAX, "%.200s%.*s/" PROBE, prefix[b],
                                        dir, rel);
                }
        }
        *n = o;
        return 0;
}

static int verify_access(const struct source_plan_options *o, struct kube_client *k,
                         struct vault_client *admin, const struct plan_tenant *t,
                         struct source_report *rep) {
        _cleanup_free_ const char **paths = NULL, **sas = NULL;
        _cleanup_free_ struct vault_kv_path *kps = NULL;
        size_t n = 0, n_sas = 0;
        char role[256];
        int r;

        r = source_tenant_name(t, role, sizeof(role));
        if (r >= 0)
                r = source_tenant_paths(t, &paths, &n);
        if (r >= 0)
                r = source_tenant_service_accounts(t, &sas, &n_sas);
        if (r < 0)
                return log_error_errno(r, "Tenant '%s': invalid names in the plan", t->name);
        if (n == 0)
                return 0;
        kps = calloc(n, sizeof(*kps));
        if (!kps)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct vault_error e;
                r = vault_kv_resolve(admin, paths[i], &kps[i], &e);
                if (r < 0) {
                        (void) source_vault_fail(r, &e, "Failed to find the mount of a plan path");
                        return r;
                }
        }
        for (size_t s = 0; s < n_sas; s++) {
                _cleanup_vault_client_ struct vault_client *wc = NULL;
                _cleanup_secmem_ char *jwt = NULL;
                struct kube_error ke = {};
                struct vault_error e;
                size_t jwt_len = 0;

                r = kube_token_request(k, t->namespace_, sas[s], o->audience, 600, &jwt, &jwt_len,
                                       &ke);
                if (r < 0) {
                        log_error_errno(r, "Failed to get a token of %s/%s: %s", t->namespace_,
                                        sas[s], source_message(ke.message, r));
                        r = add_check(rep, SOURCE_CHECK_ACCESS, t->namespace_, sas[s], role,
                                      "no service-account token", SOURCE_CHECK_ERROR);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = o->open_client(o->userdata, &wc);
                if (r < 0)
                        return r;
                r = vault_login_kubernetes(wc, o->auth_mount, role, jwt, jwt_len, NULL, &e);
                if (r < 0) {
                        (void) source_vault_fail(r, &e, "Failed to log in as the tenant's role");
                        r = add_check(rep, SOURCE_CHECK_ACCESS, t->namespace_, sas[s], role,
                                      "login refused", SOURCE_CHECK_DENIED);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t i = 0; i < n; i++) {
                        char probes[10][VAULT_PATH_MAX];
                        size_t np = 0;
                        r = check_caps(wc, rep, t->namespace_, sas[s], kps[i].data_path,
                                       VAULT_CAP_READ);
                        if (r >= 0 && kps[i].version == VAULT_KV_V2)
                                r = check_caps(wc, rep, t->namespace_, sas[s], kps[i].metadata_path,
                                               VAULT_CAP_READ);
                        if (r >= 0)
                                r = probe_paths(&kps[i], probes, &np);
                        for (size_t q = 0; r >= 0 && q < np; q++)
                                if (vault_path_valid(probes[q]) && !is_plan_path(kps, n, probes[q]))
                                        r = check_caps(wc, rep, t->namespace_, sas[s], probes[q],
                                                       0);
                        if (r < 0)
                                return r;
                }
                (void) vault_token_revoke_self(wc, NULL);
        }
        return 0;
}

int source_verify_plan(struct vault_client *c, struct kube_client *k, const struct plan *p,
                       const struct source_plan_options *o, struct source_report **ret) {
        _cleanup_(source_report_freep) struct source_report *rep = calloc(1, sizeof(*rep));
        int r;
        if (!rep)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_tenants; i++) {
                if (!p->tenants[i].namespace_ || !kube_name_valid(p->tenants[i].namespace_))
                        return log_error_errno(-EINVAL, "Tenant '%s': invalid namespace",
                                               p->tenants[i].name);
                r = verify_fields(c, &p->tenants[i], rep);
                if (r >= 0 && k)
                        r = verify_access(o, k, c, &p->tenants[i], rep);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(rep);
        return 0;
}

int source_report_print(const struct source_report *rep, bool json, FILE *f) {
        if (!json) {
                bool fields = false, access = false;
                for (size_t i = 0; i < rep->n_checks; i++) {
                        const struct source_check *x = &rep->checks[i];
                        if (x->kind == SOURCE_CHECK_FIELD && !fields) {
                                fprintf(f, "%-24s %-48s %-24s %s\n", "NAMESPACE", "PATH", "FIELD",
                                        "STATUS");
                                fields = true;
                        }
                        if (x->kind == SOURCE_CHECK_ACCESS && !access) {
                                fprintf(f, "\n%-24s %-24s %-56s %-16s %s\n", "NAMESPACE",
                                        "SERVICE-ACCOUNT", "PATH", "STATUS", "CAPABILITIES");
                                access = true;
                        }
                        if (x->kind == SOURCE_CHECK_FIELD)
                                fprintf(f, "%-24s %-48s %-24s %s\n", x->ns, x->path, x->subject,
                                        source_check_status_to_string(x->status));
                        else
                                fprintf(f, "%-24s %-24s %-56s %-16s %s\n", x->ns, x->subject,
                                        x->path, source_check_status_to_string(x->status),
                                        x->detail);
                }
                return 0;
        }
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf out = BUF_INIT(64u << 20, 0);
        struct json_value *fields, *access, *missing;
        int r = json_doc_new(0, 256u << 20, &d);
        if (r >= 0)
                r = json_add_bool(d, json_doc_root(d), "ok", rep->n_failed == 0);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "fields", &fields);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "access", &access);
        if (r >= 0)
                r = json_add_array(d, json_doc_root(d), "failed", &missing);
        for (size_t i = 0; r >= 0 && i < rep->n_checks; i++) {
                const struct source_check *x = &rep->checks[i];
                struct json_value *o;
                bool field = x->kind == SOURCE_CHECK_FIELD;
                r = json_add_object(d, field ? fields : access, NULL, &o);
                if (r >= 0)
                        r = json_add_string(d, o, "namespace", x->ns);
                if (r >= 0)
                        r = json_add_string(d, o, "path", x->path);
                if (r >= 0)
                        r = json_add_string(d, o, field ? "field" : "serviceAccount", x->subject);
                if (r >= 0)
                        r = json_add_string(d, o, "status",
                                            source_check_status_to_string(x->status));
                if (r >= 0 && !field)
                        r = json_add_string(d, o, "capabilities", x->detail);
                if (r >= 0 && x->status != SOURCE_CHECK_OK)
                        r = json_add_copy(d, missing, NULL, o);
        }
        if (r >= 0)
                r = json_print(json_doc_root(d), &out);
        if (r >= 0)
                fprintf(f, "%s\n", buf_cstr(&out));
        return r;
}

/* --- the commands ------------------------------------------------------------------------- */

enum {
        OPT_DRY = SOURCE_OPT_FIRST_FREE,
        OPT_MOUNT,
        OPT_AUDIENCE,
        OPT_AS_WORKLOAD,
        OPT_KUBECONFIG,
        OPT_CONTEXT,
        OPT_OUTPUT,
};

struct plan_args {
        struct source_vault v;
        struct source_plan_options o;
        struct kube_load_options lo;
        bool as_workload, json;
        const char *plan;
};

static void plan_args_done(struct plan_args *a) {
        source_vault_done(&a->v);
}

static void plan_release(struct plan **p) {
        plan_free(*p);
}

static int open_client(void *userdata, struct vault_client **ret) {
        struct plan_args *a = userdata;
        return source_vault_open(&a->v, false, ret);
}

struct plan_flag_ctx {
        struct plan_args *a;
        bool verify;
};

static int plan_flag(int opt, char *arg, void *userdata) {
        struct plan_flag_ctx *x = userdata;
        struct plan_args *a = x->a;
        bool verify_only = false, apply_only = false;
        switch (opt) {
        case OPT_DRY:
                a->o.dry_run = true;
                apply_only = true;
                break;
        case OPT_MOUNT:
                a->o.auth_mount = arg;
                break;
        case OPT_AUDIENCE:
                a->o.audience = arg;
                break;
        case OPT_AS_WORKLOAD:
                a->as_workload = verify_only = true;
                break;
        case OPT_KUBECONFIG:
                a->lo.paths = arg;
                verify_only = true;
                break;
        case OPT_CONTEXT:
                a->lo.context = arg;
                verify_only = true;
                break;
        case 'o':
        case OPT_OUTPUT:
                if (strcmp(arg, "json") != 0 && strcmp(arg, "table") != 0)
                        return log_error_errno(-EINVAL, "-o: json or table");
                a->json = strcmp(arg, "json") == 0;
                verify_only = true;
                break;
        default:
                return log_error_errno(-EINVAL, "Unknown flag");
        }
        if ((verify_only && !x->verify) || (apply_only && x->verify))
                return log_error_errno(-EINVAL, "A flag of source %s given to source %s",
                                       x->verify ? "apply-plan" : "verify-plan",
                                       x->verify ? "verify-plan" : "apply-plan");
        return 0;
}

static int parse_plan_args(int argc, char **argv, bool verify, struct plan_args *a) {
        static const struct option opts[] = {
                SOURCE_VAULT_LONGOPTS,
                {"dry-run", no_argument, NULL, OPT_DRY},
                {"auth-mount", required_argument, NULL, OPT_MOUNT},
                {"audience", required_argument, NULL, OPT_AUDIENCE},
                {"as-workload", no_argument, NULL, OPT_AS_WORKLOAD},
                {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
                {"context", required_argument, NULL, OPT_CONTEXT},
                {"output", required_argument, NULL, OPT_OUTPUT},
                {},
        };
        struct plan_flag_ctx x = {.a = a, .verify = verify};
        char **args;

        a->o.auth_mount = SOURCE_DEFAULT_AUTH_MOUNT;
        a->o.audience = SOURCE_DEFAULT_AUDIENCE;
        a->o.open_client = open_client;
        a->o.userdata = a;
        if (source_parse_flags(argc, argv, opts, &a->v, plan_flag, &x, 1, &args) < 0)
                return -EINVAL;
        if (!a->o.audience[0])
                return log_error_errno(-EINVAL, "--audience must not be empty: a role without "
                                                "one accepts tokens issued for any audience");
        a->plan = args[0];
        return 0;
}

static int load(const char *path, struct plan **ret) {
        struct plan_error pe = {};
        int r = plan_load(path, ret, &pe);
        if (r < 0) {
                if (pe.line)
                        log_error_errno(r, "%s:%u:%u: %s", path, pe.line, pe.column, pe.message);
                else
                        log_error_errno(r, "Failed to read the plan '%s': %s", path,
                                        source_message(pe.message, r));
                return r == -EBADMSG || r == -E2BIG ? EX_DATAERR : EX_NOINPUT;
        }
        return 0;
}

int cli_source_apply_plan(int argc, char **argv) {
        _cleanup_(plan_args_done) struct plan_args a = {};
        _cleanup_vault_client_ struct vault_client *c = NULL;
        _cleanup_(plan_release) struct plan *p = NULL;
        int r;

        if (parse_plan_args(argc, argv, false, &a) < 0)
                return EX_USAGE;
        r = load(a.plan, &p);
        if (r > 0)
                return r;
        if (source_vault_open(&a.v, true, &c) < 0)
                return EX_USAGE;
        r = source_apply_plan(c, p, &a.o);
        if (r < 0)
                return source_exit_status(r);
        log_info("%d change%s%s", r, r == 1 ? "" : "s",
                 a.o.dry_run ? " would be made (dry run)" : "");
        return EX_OK;
}

int cli_source_verify_plan(int argc, char **argv) {
        _cleanup_(plan_args_done) struct plan_args a = {};
        _cleanup_vault_client_ struct vault_client *c = NULL;
        _cleanup_(kube_client_freep) struct kube_client *k = NULL;
        _cleanup_(source_report_freep) struct source_report *rep = NULL;
        _cleanup_(plan_release) struct plan *p = NULL;
        int r;

        if (parse_plan_args(argc, argv, true, &a) < 0)
                return EX_USAGE;
        r = load(a.plan, &p);
        if (r > 0)
                return r;
        if (source_vault_open(&a.v, true, &c) < 0)
                return EX_USAGE;
        if (a.as_workload) {
                _cleanup_(kube_config_freep) struct kube_config *cfg = NULL;
                struct kube_error ke = {};
                r = kube_config_load(&a.lo, &cfg, &ke);
                if (r >= 0)
                        r = kube_client_new(&cfg, NULL, &k);
                if (r < 0)
                        return log_error_errno(r, "--as-workload needs the cluster: %s",
                                               source_message(ke.message, r)),
                               EX_CONFIG;
        }
        r = source_verify_plan(c, k, p, &a.o, &rep);
        if (r < 0)
                return source_exit_status(r);
        r = source_report_print(rep, a.json, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to print the report: %m"), EX_SOFTWARE;
        for (size_t i = 0; i < rep->n_checks; i++) {
                const struct source_check *x = &rep->checks[i];
                if (x->status != SOURCE_CHECK_OK)
                        log_error("%s: %s %s %s%s%s", source_check_status_to_string(x->status),
                                  x->ns, x->path, x->subject, x->detail[0] ? " " : "", x->detail);
        }
        if (rep->n_failed > 0)
                return log_error("%zu of %zu checks failed", rep->n_failed, rep->n_checks),
                       EX_DATAERR;
        log_info("All %zu checks passed", rep->n_checks);
        return EX_OK;
}
