/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/connect: `cloudtaser target connect` (docs/cli.md#target-connect): makes the vault's
 * Kubernetes auth method accept this cluster's service-account tokens. In the cluster: a
 * dedicated reviewer service account bound to system:auth-delegator (it may call TokenReview,
 * nothing else); from the TokenRequest API, a token of it; in the vault: auth/<mount>/config
 * with the API server's address and CA and that token.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/source.h"
#include "common/buf.h"
#include "common/exit-status.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault-sys.h"

#define REVIEWER_NAME "cloudtaser-token-reviewer"
#define REVIEWER_TTL_DEFAULT (365 * 86400)
#define REVIEWER_TTL_MAX (365 * 86400)

static int kube_fail(int r, const struct kube_error *e, const char *what, const char *name) {
        log_error_errno(r, "%s '%s': %s%s%s", what, name, source_message(e->message, r),
                        e->reason[0] ? " " : "", e->reason);
        return r;
}

/* GET path; when it is not there, POST body (JSON text) to create_path. 1 created, 0 there. */
static int ensure_object(struct kube_client *k, const char *path, const char *create_path,
                         const char *json, const char *what) {
        _cleanup_buf_ struct buf body = BUF_INIT(8192, 0);
        struct kube_error e = {};
        int r = kube_get(k, path, NULL, &e);
        if (r >= 0) {
                log_info("%s is there", what);
                return 0;
        }
        if (r != -ENOENT)
                return kube_fail(r, &e, "Failed to read", what);
        r = buf_append_str(&body, json);
        if (r < 0)
                return r;
        e = (struct kube_error){};
        r = kube_create(k, create_path, &body, NULL, &e);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return kube_fail(r, &e, "Failed to create", what);
        printf("created %s\n", what);
        return 1;
}

/* The binding must give system:auth-delegator to our reviewer; anything else is refused. */
static int check_binding(struct kube_client *k, const char *path, const char *ns, const char *sa) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct kube_error e = {};
        const char *s = NULL;
        int r = kube_get(k, path, &d, &e);
        if (r < 0)
                return kube_fail(r, &e, "Failed to read the ClusterRoleBinding", sa);
        const struct json_value *root = json_doc_root(d);
        bool subject = false;
        JSON_FOREACH(x, json_get(root, "subjects")) {
                const char *kind, *name, *sns;
                if (json_get_string(x, "kind", &kind) >= 0 && strcmp(kind, "ServiceAccount") == 0 &&
                    json_get_string(x, "name", &name) >= 0 && strcmp(name, sa) == 0 &&
                    json_get_string(x, "namespace", &sns) >= 0 && strcmp(sns, ns) == 0)
                        subject = true;
        }
        if (json_get_string(json_get(root, "roleRef"), "name", &s) < 0 ||
            strcmp(s, "system:auth-delegator") != 0 || !subject)
                return log_error_errno(-EEXIST,
                                       "The ClusterRoleBinding %s exists but does not bind "
                                       "system:auth-delegator to %s/%s: fix or delete it",
                                       sa, ns, sa);
        return 0;
}

/* The reviewer's namespace, service account and ClusterRoleBinding (named as the account). */
static int reviewer_objects(struct kube_client *k, const char *ns, const char *sa) {
        char ns_path[320], sa_list[320], sa_path[400], crb_path[320], json[1536], what[320];
        int r;

        (void) snprintf(ns_path, sizeof(ns_path), "/api/v1/namespaces/%s", ns);
        (void) snprintf(sa_list, sizeof(sa_list), "/api/v1/namespaces/%s/serviceaccounts", ns);
        (void) snprintf(sa_path, sizeof(sa_path), "%s/%s", sa_list, sa);
        (void) snprintf(crb_path, sizeof(crb_path),
                        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/%s", sa);
        (void) snprintf(json, sizeof(json),
                        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
                        "\"%s\"}}",
                        ns);
        (void) snprintf(what, sizeof(what), "namespace %s", ns);
        r = ensure_object(k, ns_path, "/api/v1/namespaces", json, what);
        if (r < 0)
                return r;
        (void) snprintf(json, sizeof(json),
                        "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{"
                        "\"name\":\"%s\",\"labels\":{\"app.kubernetes.io/managed-by\":"
                        "\"cloudtaser\"}}}",
                        sa);
        (void) snprintf(what, sizeof(what), "service account %s/%s", ns, sa);
        r = ensure_object(k, sa_path, sa_list, json, what);
        if (r < 0)
                return r;
        (void) snprintf(json, sizeof(json),
                        "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":"
                        "\"ClusterRoleBinding\",\"metadata\":{\"name\":\"%s\",\"labels\":{"
                        "\"app.kubernetes.io/managed-by\":\"cloudtaser\"}},\"roleRef\":{"
                        "\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
                        "\"name\":\"system:auth-delegator\"},\"subjects\":[{\"kind\":"
                        "\"ServiceAccount\",\"name\":\"%s\",\"namespace\":\"%s\"}]}",
                        sa, sa, ns);
        (void) snprintf(what, sizeof(what), "ClusterRoleBinding %s (system:auth-delegator)", sa);
        r = ensure_object(k, crb_path, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                          json, what);
        if (r >= 0)
                r = check_binding(k, crb_path, ns, sa);
        return r;
}

/* POST auth/<mount>/config; the JWT travels in secure memory only. */
static int write_config(struct vault_client *c, const char *mount, const char *host, const char *ca,
                        size_t ca_len, const char *jwt, size_t jwt_len) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        _cleanup_buf_ struct buf body = BUF_INIT(4u << 20, BUF_SECURE);
        char path[VAULT_PATH_MAX];
        struct vault_error e;
        int r;

        int w = snprintf(path, sizeof(path), "auth/%s/config", mount);
        if (w < 0 || (size_t) w >= sizeof(path) || !vault_path_valid(path))
                return log_error_errno(-EINVAL, "Invalid auth mount '%s'", mount);
        r = json_doc_new(JSON_SECURE, 8u << 20, &d);
        if (r >= 0)
                r = json_add_string(d, json_doc_root(d), "kubernetes_host", host);
        if (r >= 0 && ca)
                r = json_add_stringn(d, json_doc_root(d), "kubernetes_ca_cert", ca, ca_len);
        if (r >= 0)
                r = json_add_stringn(d, json_doc_root(d), "token_reviewer_jwt", jwt, jwt_len);
        /* The vault does not run in this cluster: never fall back to a local token. */
        if (r >= 0)
                r = json_add_bool(d, json_doc_root(d), "disable_local_ca_jwt", true);
        if (r >= 0)
                r = json_print(json_doc_root(d), &body);
        if (r < 0)
                return log_error_errno(r, "Failed to build the auth config: %m");
        r = vault_logical_write(c, path, &body, NULL, &e);
        if (r < 0) {
                (void) source_vault_fail(r, &e, "Failed to write the Kubernetes auth config");
                return r;
        }
        return 0;
}

enum {
        OPT_KUBECONFIG = SOURCE_OPT_FIRST_FREE,
        OPT_CONTEXT,
        OPT_MOUNT,
        OPT_TTL,
        OPT_REVIEWER_NS,
        OPT_REVIEWER,
};

struct connect_args {
        struct kube_load_options lo;
        const char *mount, *reviewer_ns, *reviewer;
        int64_t ttl;
};

static int connect_flag(int opt, char *arg, void *userdata) {
        struct connect_args *a = userdata;
        char *end;
        switch (opt) {
        case OPT_KUBECONFIG:
                a->lo.paths = arg;
                return 0;
        case OPT_CONTEXT:
                a->lo.context = arg;
                return 0;
        case OPT_MOUNT:
                a->mount = arg;
                return 0;
        case OPT_REVIEWER_NS:
        case OPT_REVIEWER:
                if (!kube_name_valid(arg) || strlen(arg) > 63)
                        return log_error_errno(-EINVAL, "'%s' is not a valid name", arg);
                *(opt == OPT_REVIEWER ? &a->reviewer : &a->reviewer_ns) = arg;
                return 0;
        case OPT_TTL:
                errno = 0;
                long long x = strtoll(arg, &end, 10);
                if (errno || end == arg || *end || x < 600 || x > REVIEWER_TTL_MAX)
                        return log_error_errno(-EINVAL, "--reviewer-ttl: seconds, 600..%d",
                                               REVIEWER_TTL_MAX);
                a->ttl = x;
                return 0;
        default:
                return log_error_errno(-EINVAL, "Unknown flag");
        }
}

int cli_target_connect(int argc, char **argv) {
        static const struct option opts[] = {
                SOURCE_VAULT_LONGOPTS,
                {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
                {"context", required_argument, NULL, OPT_CONTEXT},
                {"auth-mount", required_argument, NULL, OPT_MOUNT},
                {"reviewer-ttl", required_argument, NULL, OPT_TTL},
                {"reviewer-namespace", required_argument, NULL, OPT_REVIEWER_NS},
                {"reviewer", required_argument, NULL, OPT_REVIEWER},
                {},
        };
        _cleanup_(source_vault_done) struct source_vault v = {};
        _cleanup_vault_client_ struct vault_client *c = NULL;
        _cleanup_(kube_config_freep) struct kube_config *cfg = NULL;
        _cleanup_(kube_client_freep) struct kube_client *k = NULL;
        _cleanup_free_ char *host = NULL, *ca = NULL;
        _cleanup_secmem_ char *jwt = NULL;
        struct connect_args a = {.mount = SOURCE_DEFAULT_AUTH_MOUNT,
                                 .reviewer_ns = SOURCE_SYSTEM_NAMESPACE,
                                 .reviewer = REVIEWER_NAME,
                                 .ttl = REVIEWER_TTL_DEFAULT};
        struct kube_error ke = {};
        struct vault_mount_info mi;
        struct vault_error e;
        size_t ca_len = 0, jwt_len = 0;
        int r;

        if (source_parse_flags(argc, argv, opts, &v, connect_flag, &a, 0, NULL) < 0)
                return EX_USAGE;
        const char *mount = a.mount;
        int64_t ttl = a.ttl;
        struct kube_load_options lo = a.lo;
        if (source_vault_open(&v, true, &c) < 0)
                return EX_USAGE;

        r = kube_config_load(&lo, &cfg, &ke);
        if (r < 0)
                return log_error_errno(r, "Failed to load the kubeconfig: %s",
                                       source_message(ke.message, r)),
                       EX_CONFIG;
        host = strdup(kube_config_server(cfg));
        const char *cap = kube_config_ca(cfg, &ca_len);
        if (cap) {
                ca = strndup(cap, ca_len);
                ca_len = ca ? strlen(ca) : 0;
        }
        if (!host || (cap && !ca))
                return log_error_errno(-ENOMEM, "Out of memory"), EX_OSERR;
        if (!cap)
                log_warning("The kubeconfig names no CA for %s: the vault will verify the API "
                            "server with its system CAs",
                            host);
        r = kube_client_new(&cfg, NULL, &k);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Kubernetes client: %m"), EX_CONFIG;

        r = reviewer_objects(k, a.reviewer_ns, a.reviewer);
        if (r < 0)
                return source_exit_status(r);
        r = kube_token_request(k, a.reviewer_ns, a.reviewer, NULL, ttl, &jwt, &jwt_len, &ke);
        if (r < 0)
                return kube_fail(r, &ke, "Failed to get a token (TokenRequest) for", a.reviewer),
                       source_exit_status(r);

        r = vault_sys_mount_get(c, true, mount, &mi, &e);
        if (r == -ENOENT) {
                r = vault_sys_mount_enable(c, true, mount, "kubernetes", NULL, &e);
                if (r >= 0)
                        printf("enabled auth method %s/ (kubernetes)\n", mount);
        } else if (r >= 0 && strcmp(mi.type, "kubernetes") != 0)
                return log_error("The auth method at %s/ is %s, not kubernetes", mount, mi.type),
                       EX_CONFIG;
        if (r < 0)
                return source_vault_fail(r, &e, "Failed to enable the Kubernetes auth method");
        r = write_config(c, mount, host, ca, ca_len, jwt, jwt_len);
        if (r < 0)
                return source_exit_status(r);
        printf("configured auth/%s/config: kubernetes_host %s, %s, reviewer token of %s/%s "
               "(%" PRId64 " s)\n",
               mount, host, ca ? "its CA" : "system CAs", a.reviewer_ns, a.reviewer, ttl);
        log_notice("The reviewer token expires in %" PRId64 " days (or earlier, if the API server "
                   "caps it): run target connect again before then",
                   ttl / 86400);
        return EX_OK;
}
