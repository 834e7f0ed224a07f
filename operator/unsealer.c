/* SPDX-License-Identifier: Apache-2.0 */
/* operator/unsealer: see unsealer.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/injection.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/strv.h"
#include "common/vault-sys.h"
#include "operator/unsealer.h"

#define POLICY_NAME_MAX 128
#define POD_BODY_MAX 4096u
#define UNSEALER_LABEL_ESCAPED "cloudtaser.io%2Fsealed" /* UNSEALER_LABEL in a query */

enum pod_state {
        POD_PENDING, /* to be served (next_ms) */
        POD_DONE,    /* unsealed (by us or adopted) */
        POD_REFUSED, /* a check failed: final */
        POD_GAVE_UP, /* max_attempts failures */
};

struct entry {
        char uid[BROKERPROTO_MAX_UID + 1];
        char ns[BROKERPROTO_MAX_NAME + 1], name[BROKERPROTO_MAX_NAME + 1];
        enum pod_state state;
        unsigned attempts;
        uint64_t next_ms;
        char accessor[VAULT_ACCESSOR_MAX]; /* "" when not known here */
        bool seen;                         /* in this pass's list */
};

struct unsealer {
        struct unsealer_options o;
        char tenant[BROKERPROTO_MAX_PATH / 2], role[128];
        char ns[BROKERPROTO_MAX_NAME + 1];                /* "" for all namespaces */
        char installation[BROKERPROTO_INSTALLATION_SIZE]; /* the one in use, "" before the first */
        char rv[KUBE_RV_MAX]; /* the watch resumes from it; "" before a list */
        struct entry *pods;
        size_t n_pods;
        bool leading;  /* the last pass ran as the leader (a new term sweeps first) */
        bool watching; /* a watch was started in this term (logged once) */
        struct {
                _Atomic uint64_t unsealed, adopted, refused, failures, given_up, cleaned, swept;
        } st; /* read by unsealer_get_stats() while the thread runs */
        pthread_t thread;
        bool started, stop;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

static uint64_t now_ms(struct unsealer *u) {
        if (u->o.now_ms)
                return u->o.now_ms(u->o.deps.userdata);
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* ---- the pure parts ---- */

static const char *annotation(const struct json_value *ann, const char *key) {
        const char *s = NULL;
        return json_get_string(ann, key, &s) >= 0 ? s : NULL;
}

/* The port of CLOUDTASER_UNSEAL_LISTEN in the pod's first container that sets it. */
static unsigned pod_port(const struct json_value *spec) {
        const struct json_value *containers = NULL, *env;
        (void) json_get_array(spec, "containers", &containers);
        JSON_FOREACH(c, containers) {
                if (json_get_array(c, "env", &env) < 0)
                        continue;
                JSON_FOREACH(e, env) {
                        const char *name, *value, *colon;
                        if (json_get_string(e, "name", &name) < 0 ||
                            strcmp(name, injection_variables[INJECTION_ROW_UNSEAL_LISTEN].name) !=
                                    0 ||
                            json_get_string(e, "value", &value) < 0 ||
                            !(colon = strrchr(value, ':')))
                                continue;
                        char *end;
                        errno = 0;
                        unsigned long port = strtoul(colon + 1, &end, 10);
                        if (errno == 0 && *end == '\0' && end != colon + 1 && port > 0 &&
                            port < 65536)
                                return (unsigned) port;
                }
        }
        return INJECTION_UNSEAL_PORT;
}

int unsealer_pod_parse(const struct json_value *pod, struct unsealer_pod *ret) {
        const struct json_value *meta = json_get(pod, "metadata"), *ann, *spec, *status;
        struct unsealer_pod p = {.sa = "default"};
        const char *phase = NULL, *del = NULL;

        if (json_get_string(meta, "name", &p.name) < 0 ||
            json_get_string(meta, "namespace", &p.ns) < 0 ||
            json_get_string(meta, "uid", &p.uid) < 0 || !kube_name_valid(p.ns) ||
            strlen(p.name) > BROKERPROTO_MAX_NAME || !p.uid[0] ||
            strlen(p.uid) > BROKERPROTO_MAX_UID)
                return -EBADMSG;
        for (const char *s = p.uid; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
                        return -EBADMSG; /* it names a policy */
        ann = json_get(meta, "annotations");
        p.method = annotation(ann, injection_variables[INJECTION_ROW_AUTH_METHOD].annotation);
        p.paths = annotation(ann, injection_variables[INJECTION_ROW_SECRET_PATHS].annotation);
        p.env_map = annotation(ann, injection_variables[INJECTION_ROW_ENV_MAP].annotation);
        p.mac = annotation(ann, BROKERPROTO_ANNOTATION_MAC);
        p.deleting = json_get_string(meta, "deletionTimestamp", &del) >= 0;
        spec = json_get(pod, "spec");
        (void) json_get_string(spec, "serviceAccountName", &p.sa);
        status = json_get(pod, "status");
        p.running = json_get_string(status, "phase", &phase) >= 0 && strcmp(phase, "Running") == 0;
        if (json_get_string(status, "podIP", &p.ip) < 0 || !p.ip[0] || strlen(p.ip) > 45 ||
            strspn(p.ip, "0123456789abcdefABCDEF.:") != strlen(p.ip))
                p.ip = NULL;
        p.port = pod_port(spec);
        *ret = p;
        return 0;
}

int unsealer_pod_check(const struct unsealer_pod *p, const uint8_t key[BROKERPROTO_KEY_SIZE],
                       const char *tenant, struct injection_secret **ret_specs, size_t *ret_n,
                       char *reason, size_t reason_size) {
        struct injection_secret *specs = NULL;
        struct injection_error ierr = {};
        char prefix[BROKERPROTO_MAX_PATH];
        size_t n = 0;

        if (!p->method || strcmp(p->method, "token") != 0) {
                (void) snprintf(reason, reason_size, "not annotated for token auth");
                return -EPERM;
        }
        if (!p->paths || !p->mac ||
            brokerproto_annotation_mac_check(key, p->ns, p->sa, p->paths,
                                             p->env_map ? p->env_map : "", p->mac) < 0) {
                (void) snprintf(reason, reason_size,
                                "annotation MAC missing or mismatched (annotations edited after "
                                "admission?)");
                return -EPERM;
        }
        if (injection_parse_secret_paths(p->paths, &specs, &n, &ierr) < 0) {
                (void) snprintf(reason, reason_size, "malformed secret paths");
                return -EPERM;
        }
        if (brokerproto_tenant_prefix(tenant, p->ns, prefix, sizeof(prefix)) < 0) {
                injection_secrets_free(specs, n);
                (void) snprintf(reason, reason_size, "namespace prefix too long");
                return -EPERM;
        }
        for (size_t i = 0; i < n; i++)
                if (brokerproto_path_confined(prefix, specs[i].path) < 0) {
                        (void) snprintf(reason, reason_size,
                                        "path '%s' outside the namespace prefix '%s'",
                                        specs[i].path, prefix);
                        injection_secrets_free(specs, n);
                        return -EPERM;
                }
        *ret_specs = specs;
        *ret_n = n;
        return 0;
}

int unsealer_policy_text(const struct unsealer_pod *p, const struct injection_secret *specs,
                         size_t n, const char *accessor, struct buf *out) {
        char head[512], acc[160];
        const char *comments[2] = {head, acc};
        const char *paths[INJECTION_MAX_PATHS];

        if (n > ELEMENTSOF(paths))
                return -E2BIG;
        if ((size_t) snprintf(head, sizeof(head), "cloudtaser unsealer: pod %s/%s uid %s", p->ns,
                              p->name, p->uid) >= sizeof(head) ||
            (accessor &&
             (size_t) snprintf(acc, sizeof(acc), "accessor: %s", accessor) >= sizeof(acc)))
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                paths[i] = specs[i].path;
        /* Read on each path and, for KV v2, its metadata (version polling): never a glob. */
        return vault_sys_policy_read_paths(comments, accessor ? 2 : 1, paths, n, true, out);
}

int unsealer_policy_accessor(const char *text, char *ret, size_t size) {
        return vault_sys_policy_comment(text, "accessor", ret, size) < 0 ? -ENOENT : 0;
}

/* ---- the pod's endpoint ---- */

static int pod_client_new(struct unsealer *u, const struct unsealer_pod *p, const struct buf *cert,
                          const struct buf *key, struct http_client **ret) {
        char url[128];
        bool v6 = strchr(p->ip, ':') != NULL;
        (void) snprintf(url, sizeof(url), "https://%s%s%s:%u", v6 ? "[" : "", p->ip, v6 ? "]" : "",
                        p->port);
        unsigned t = u->o.request_timeout_ms ? u->o.request_timeout_ms : 5000;
        struct http_options ho = {
                .base_url = url,
                /* The wrapper's certificate is self-signed from a key made at its start: there is
                 * nothing to verify it against. The token that crosses is wrapped (unsealer.h). */
                .insecure_skip_verify = true,
                .client_cert_pem = buf_cstr(cert),
                .client_cert_pem_len = cert->len,
                .client_key_pem = buf_cstr(key),
                .client_key_pem_len = key->len,
                .connect_timeout_ms = MIN(t, 3000u),
                .request_timeout_ms = t,
                .deadline_ms = t,
                .max_body = POD_BODY_MAX,
                .max_attempts = 1,
        };
        return http_client_new(&ho, ret);
}

/* GET /v1/status: 1 sealed, 0 unsealed, -errno. */
static int pod_sealed(struct http_client *c, char *why, size_t n) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct http_request req = {.method = HTTP_GET, .path = "/v1/status", .no_retry = true};
        struct http_result res = {};
        bool sealed = true;
        int r = http_request(c, &req, &resp, &res);
        if (r < 0) {
                (void) snprintf(why, n, "status: %.160s",
                                res.error_text[0] ? res.error_text : "no answer");
                return r;
        }
        if (resp.status != 200 || json_parse(resp.body.data, resp.body.len, 0, NULL, &d) < 0 ||
            json_get_bool(json_doc_root(d), "sealed", &sealed) < 0) {
                (void) snprintf(why, n, "status: HTTP %ld, not {\"sealed\": ...}", resp.status);
                return -EPROTO;
        }
        return sealed ? 1 : 0;
}

/* POST /v1/unseal: the HTTP status (200 unsealed), or -errno. */
static long pod_unseal(struct http_client *c, const char *wrapping, char *why, size_t n) {
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_buf_ struct buf body = BUF_INIT(VAULT_TOKEN_MAX + 64, BUF_SECURE);
        struct http_result res = {};
        int r = buf_printf(&body, "{\"token\": \"%s\", \"wrapped\": true}", wrapping);
        if (r < 0)
                return r;
        struct http_request req = {
                .method = HTTP_POST, .path = "/v1/unseal", .body = &body, .no_retry = true};
        r = http_request(c, &req, &resp, &res);
        if (r < 0) {
                (void) snprintf(why, n, "unseal: %.160s",
                                res.error_text[0] ? res.error_text : "no answer");
                return r;
        }
        /* The wrapper's error text ({"error": "..."}) is printable ASCII without quotes. */
        (void) snprintf(why, n, "unseal: HTTP %ld %.*s", resp.status,
                        (int) MIN(resp.body.len, (size_t) 160), buf_cstr(&resp.body));
        why[strcspn(why, "\n")] = '\0';
        return resp.status;
}

/* ---- the vault side ---- */

/* UNSEALER_POLICY_PREFIX<installation>-<uid>; with uid "", the installation's prefix. */
static void policy_name(const struct unsealer *u, const char *uid, char *ret, size_t size) {
        (void) snprintf(ret, size, "%s%s-%s", UNSEALER_POLICY_PREFIX, u->installation, uid);
}

/* Revokes the token (the accessor known, or the one the policy recorded) and deletes the policy.
 * 0, or -errno (retry at the next pass). */
static int cleanup_vault(struct unsealer *u, struct vault_client *v, const char *uid,
                         const char *known_accessor) {
        _cleanup_free_ char *text = NULL;
        char name[POLICY_NAME_MAX], acc[VAULT_ACCESSOR_MAX] = "";
        struct vault_error e = {};
        int r;

        policy_name(u, uid, name, sizeof(name));
        if (known_accessor && known_accessor[0])
                (void) snprintf(acc, sizeof(acc), "%s", known_accessor);
        else {
                r = vault_sys_policy_read(v, name, &text, &e);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0)
                        (void) unsealer_policy_accessor(text, acc, sizeof(acc));
        }
        if (acc[0]) {
                r = vault_token_revoke_accessor(v, acc, &e);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return vault_sys_policy_delete(v, name, &e);
}

/* ---- one pod ---- */

static struct entry *entry_find(struct unsealer *u, const char *uid) {
        for (size_t i = 0; i < u->n_pods; i++)
                if (strcmp(u->pods[i].uid, uid) == 0)
                        return &u->pods[i];
        return NULL;
}

static struct entry *entry_add(struct unsealer *u, const struct unsealer_pod *p) {
        if (u->n_pods >= UNSEALER_MAX_PODS)
                return NULL;
        struct entry *m = realloc(u->pods, (u->n_pods + 1) * sizeof(*m));
        if (!m)
                return NULL;
        u->pods = m;
        struct entry *e = &u->pods[u->n_pods++];
        *e = (struct entry){.state = POD_PENDING};
        (void) snprintf(e->uid, sizeof(e->uid), "%s", p->uid);
        (void) snprintf(e->ns, sizeof(e->ns), "%s", p->ns);
        (void) snprintf(e->name, sizeof(e->name), "%s", p->name);
        return e;
}

static void retry_later(struct unsealer *u, struct entry *e, const char *why) {
        unsigned max = u->o.max_attempts ? u->o.max_attempts : UNSEALER_MAX_ATTEMPTS_DEFAULT;
        e->attempts++;
        u->st.failures++;
        if (e->attempts >= max) {
                e->state = POD_GAVE_UP;
                u->st.given_up++;
                log_error("unsealer: pod %s/%s: %s; gave up after %u attempts", e->ns, e->name, why,
                          e->attempts);
                return;
        }
        uint64_t ms = MIN((uint64_t) 60000, (uint64_t) 1000 << MIN(e->attempts - 1, 6u));
        e->next_ms = now_ms(u) + ms;
        log_warning("unsealer: pod %s/%s: %s; attempt %u, retrying in %" PRIu64 " ms", e->ns,
                    e->name, why, e->attempts, ms);
}

/* Serves one pending pod. The material and the vault client are the pass's. */
static void serve(struct unsealer *u, struct entry *e, const struct unsealer_pod *p,
                  const uint8_t key[BROKERPROTO_KEY_SIZE], const struct buf *cert,
                  const struct buf *ckey, struct vault_client *v) {
        _cleanup_http_client_ struct http_client *c = NULL;
        _cleanup_buf_ struct buf policy = BUF_INIT(VAULT_SYS_MAX_POLICY, 0);
        _cleanup_secmem_ char *wrapping = NULL;
        struct injection_secret *specs = NULL;
        struct vault_error ve = {};
        char why[UNSEALER_REASON_MAX] = "", name[POLICY_NAME_MAX], acc[VAULT_ACCESSOR_MAX];
        size_t n = 0;
        int r;

        /* The admission MAC and the confinement first: a pod this installation did not admit
         * is neither served nor adopted (adopting it would revoke its token when it goes). */
        r = unsealer_pod_check(p, key, u->tenant[0] ? u->tenant : NULL, &specs, &n, why,
                               sizeof(why));
        if (r < 0) {
                e->state = POD_REFUSED;
                u->st.refused++;
                log_warning("unsealer: pod %s/%s refused: %s", p->ns, p->name, why);
                return;
        }
        r = pod_client_new(u, p, cert, ckey, &c);
        if (r >= 0)
                r = pod_sealed(c, why, sizeof(why));
        if (r <= 0)
                injection_secrets_free(specs, n);
        if (r < 0)
                return retry_later(u, e,
                                   why[0] ? why : "cannot set up the client of the pod's endpoint");
        if (r == 0) {
                e->state = POD_DONE;
                u->st.adopted++;
                log_info("unsealer: pod %s/%s is unsealed already: adopted", p->ns, p->name);
                return;
        }
        policy_name(u, p->uid, name, sizeof(name));
        r = unsealer_policy_text(p, specs, n, NULL, &policy);
        if (r >= 0)
                r = vault_sys_policy_write(v, name, buf_cstr(&policy), &ve);
        char dn[96];
        (void) snprintf(dn, sizeof(dn), "pod-%s-%s", p->ns, p->name);
        const char *meta[][2] = {
                {"pod_namespace", p->ns}, {"pod_name", p->name}, {"pod_uid", p->uid}};
        struct vault_child_token t = {
                .policy = name, .display_name = dn, .meta = meta, .n_meta = ELEMENTSOF(meta)};
        if (r >= 0)
                r = vault_token_create_wrapped(v, u->role, &t,
                                               u->o.wrap_ttl_s ? u->o.wrap_ttl_s
                                                               : UNSEALER_WRAP_TTL_DEFAULT,
                                               &wrapping, acc, sizeof(acc), &ve);
        if (r >= 0) {
                /* The accessor goes into the policy: any later leader can revoke the token. */
                buf_reset(&policy);
                r = unsealer_policy_text(p, specs, n, acc, &policy);
                if (r >= 0)
                        r = vault_sys_policy_write(v, name, buf_cstr(&policy), &ve);
                if (r < 0)
                        (void) vault_token_revoke_accessor(v, acc, NULL);
        }
        injection_secrets_free(specs, n);
        if (r < 0) {
                (void) snprintf(why, sizeof(why), "vault: %.120s (%.100s)",
                                ve.message[0] ? ve.message : vault_strerror(r), ve.path);
                return retry_later(u, e, why);
        }
        long st = pod_unseal(c, wrapping, why, sizeof(why));
        if (st == 200) {
                memcpy(e->accessor, acc, sizeof(acc));
                e->state = POD_DONE;
                u->st.unsealed++;
                log_info("unsealer: pod %s/%s unsealed with a wrapped child token (policy %s, "
                         "%zu path%s)",
                         p->ns, p->name, name, n, n == 1 ? "" : "s");
                return;
        }
        /* Not delivered: the token goes (a wrapping token that did reach an impostor is then
         * worth nothing either). */
        (void) vault_token_revoke_accessor(v, acc, NULL);
        if (st == 409) {
                e->state = POD_DONE;
                u->st.adopted++;
                log_info("unsealer: pod %s/%s was unsealed meanwhile: adopted", p->ns, p->name);
                return;
        }
        retry_later(u, e, why);
}

/* ---- the pass ---- */

static int sweep(struct unsealer *u, struct vault_client *v, const struct json_value *items) {
        char **names = NULL, prefix[POLICY_NAME_MAX];
        size_t n = 0;
        struct vault_error e = {};
        policy_name(u, "", prefix, sizeof(prefix));
        int r = vault_sys_policy_list(v, prefix, &names, &n, &e);
        if (r < 0)
                return log_warning_errno(r, "unsealer: cannot list the pods' policies: %s",
                                         e.message[0] ? e.message : vault_strerror(r)),
                       r;
        for (size_t i = 0; i < n; i++) {
                const char *uid = names[i] + strlen(prefix);
                bool alive = false;
                JSON_FOREACH(item, items) {
                        struct unsealer_pod p;
                        if (unsealer_pod_parse(item, &p) >= 0 && !p.deleting &&
                            strcmp(p.uid, uid) == 0)
                                alive = true;
                }
                if (alive)
                        continue;
                r = cleanup_vault(u, v, uid, NULL);
                if (r < 0)
                        log_warning_errno(r, "unsealer: left-over policy %s: cannot clean up: %m",
                                          names[i]);
                else {
                        u->st.swept++;
                        log_info("unsealer: left-over policy %s (no such pod): token revoked, "
                                 "policy deleted",
                                 names[i]);
                }
        }
        (void) strv_free(names);
        return 0;
}

/* The pods of this installation: its label value, in its namespace or all of them. */
static void list_path(const struct unsealer *u, char *ret, size_t size) {
        if (u->ns[0])
                (void) snprintf(ret, size, "/api/v1/namespaces/%s/pods?labelSelector=%s%%3D%s",
                                u->ns, UNSEALER_LABEL_ESCAPED, u->installation);
        else
                (void) snprintf(ret, size, "/api/v1/pods?labelSelector=%s%%3D%s",
                                UNSEALER_LABEL_ESCAPED, u->installation);
}

/* What serving a pod needs: the material and the vault client, borrowed for one pass or one
 * watch event. */
struct lend {
        struct buf cert, ckey;
        uint8_t key[BROKERPROTO_KEY_SIZE];
        struct vault_client *v;
        bool have_material;
};

static int lend_begin(struct unsealer *u, struct lend *l) {
        struct unsealer_deps *d = &u->o.deps;
        *l = (struct lend){.cert = BUF_INIT(65536, 0), .ckey = BUF_INIT(65536, BUF_SECURE)};
        int r = d->vault_borrow(d->userdata, &l->v);
        if (r < 0) {
                buf_done(&l->cert);
                buf_done(&l->ckey);
                return r; /* the vault session is not ready */
        }
        l->have_material = d->annotation_key(d->userdata, l->key) >= 0 &&
                           d->client_pair(d->userdata, &l->cert, &l->ckey) >= 0;
        return 0;
}

static void lend_end(struct unsealer *u, struct lend *l) {
        u->o.deps.vault_return(u->o.deps.userdata);
        explicit_bzero(l->key, sizeof(l->key));
        buf_done(&l->cert);
        buf_done(&l->ckey);
}

/* A listed (or watched) pod of ours: kept track of, and served when it is due. */
static void pod_seen(struct unsealer *u, struct lend *l, const struct unsealer_pod *p,
                     uint64_t now) {
        struct entry *e = entry_find(u, p->uid);
        if (!e && !(e = entry_add(u, p)))
                return; /* over UNSEALER_MAX_PODS: the next passes */
        e->seen = true;
        if (e->state != POD_PENDING || !p->running || !p->ip || now < e->next_ms ||
            !l->have_material)
                return;
        serve(u, e, p, l->key, &l->cert, &l->ckey, l->v);
}

/* A pod gone (deleted, finished, unlabelled): its token revoked, its policy deleted, and its
 * entry dropped. false when the vault cleanup failed (the entry stays: the next pass). */
static bool pod_gone(struct unsealer *u, struct vault_client *v, size_t i) {
        struct entry *e = &u->pods[i];
        int r = e->state == POD_REFUSED ? 0 : cleanup_vault(u, v, e->uid, e->accessor);
        if (r < 0) {
                log_warning_errno(r, "unsealer: pod %s/%s gone, cleanup failed (next pass): %m",
                                  e->ns, e->name);
                return false;
        }
        if (e->state != POD_REFUSED) {
                u->st.cleaned++;
                log_info("unsealer: pod %s/%s gone: token revoked, policy deleted", e->ns, e->name);
        }
        u->pods[i] = u->pods[--u->n_pods];
        return true;
}

/* The leader and the installation, before a pass: 0 to go on, 1 idle (not the leader), -errno. */
static int pass_ready(struct unsealer *u) {
        struct unsealer_deps *d = &u->o.deps;
        char inst[BROKERPROTO_INSTALLATION_SIZE];

        if (d->is_leader && !d->is_leader(d->userdata)) {
                if (u->leading)
                        log_info("unsealer: not the leader any more: idle");
                u->leading = u->watching = false;
                u->n_pods = 0; /* the next term starts from the vault's state */
                u->rv[0] = '\0';
                return 1;
        }
        if (!d->installation || d->installation(d->userdata, inst) < 0)
                return -EAGAIN; /* broker-token not read yet: the next pass */
        if (strlen(inst) != BROKERPROTO_INSTALLATION_SIZE - 1 ||
            strspn(inst, "0123456789abcdef") != BROKERPROTO_INSTALLATION_SIZE - 1)
                return -EINVAL; /* it goes into a query and policy names: hex only */
        if (strcmp(inst, u->installation) != 0) {
                if (u->installation[0])
                        log_warning("unsealer: the installation id changed (%s, was %s): "
                                    "starting over",
                                    inst, u->installation);
                memcpy(u->installation, inst, sizeof(inst));
                u->n_pods = 0;
                u->leading = false;
                u->rv[0] = '\0';
        }
        return 0;
}

int unsealer_tick(struct unsealer *u) {
        _cleanup_json_doc_ struct json_doc *list = NULL;
        struct kube_error ke = {};
        const struct json_value *items = NULL;
        const char *rv = NULL;
        char path[512];
        struct lend l;
        int r;

        r = pass_ready(u);
        if (r != 0)
                return r > 0 ? 0 : r;
        list_path(u, path, sizeof(path));
        r = kube_get(u->o.kube, path, &list, &ke);
        if (r < 0)
                return log_warning("unsealer: cannot list the sealed pods: %s", ke.message), r;
        if (json_get_array(json_doc_root(list), "items", &items) < 0)
                return -EBADMSG;
        r = lend_begin(u, &l);
        if (r < 0)
                return r; /* the vault session is not ready: the next pass */
        if (!u->leading) {
                log_info("unsealer: leading: sweeping left-over pod policies");
                if (sweep(u, l.v, items) >= 0)
                        u->leading = true;
        }
        for (size_t i = 0; i < u->n_pods; i++)
                u->pods[i].seen = false;
        uint64_t now = now_ms(u);
        JSON_FOREACH(item, items) {
                struct unsealer_pod p;
                if (unsealer_pod_parse(item, &p) >= 0 && !p.deleting)
                        pod_seen(u, &l, &p, now);
        }
        for (size_t i = 0; i < u->n_pods;)
                if (u->pods[i].seen || !pod_gone(u, l.v, i))
                        i++;
        bool have_material = l.have_material;
        lend_end(u, &l);
        /* The watch resumes from the list's resourceVersion (no event between them is lost). */
        if (json_get_string(json_get(json_doc_root(list), "metadata"), "resourceVersion", &rv) >=
                    0 &&
            strlen(rv) < sizeof(u->rv))
                (void) snprintf(u->rv, sizeof(u->rv), "%s", rv);
        else
                u->rv[0] = '\0';
        return have_material ? 0 : -EAGAIN;
}

/* ---- the watch ---- */

static int on_event(void *userdata, const struct kube_event *ev) {
        struct unsealer *u = userdata;
        struct unsealer_pod p;
        struct lend l;

        (void) snprintf(u->rv, sizeof(u->rv), "%s", ev->resource_version);
        if (ev->type == KUBE_EVENT_BOOKMARK || unsealer_pod_parse(ev->object, &p) < 0)
                return 0;
        struct entry *e = entry_find(u, p.uid);
        bool gone = ev->type == KUBE_EVENT_DELETED || p.deleting;
        if (gone && !e)
                return 0;
        if (!gone && e && (e->state != POD_PENDING || now_ms(u) < e->next_ms))
                return 0; /* nothing to do for it now (no vault to borrow) */
        if (!gone && (!p.running || !p.ip)) {
                if (!e && (e = entry_add(u, &p)))
                        e->seen = true;
                return 0; /* kept track of; served once it runs */
        }
        if (lend_begin(u, &l) < 0)
                return 0; /* the vault session is not ready: the next relist */
        if (gone)
                (void) pod_gone(u, l.v, (size_t) (e - u->pods));
        else
                pod_seen(u, &l, &p, now_ms(u));
        lend_end(u, &l);
        return 0;
}

/* The watch ends at the next relist, or when the earliest retry is due. */
static unsigned watch_seconds(struct unsealer *u, uint64_t relist_at) {
        uint64_t now = now_ms(u), until = relist_at;
        for (size_t i = 0; i < u->n_pods; i++)
                if (u->pods[i].state == POD_PENDING && u->pods[i].next_ms > now)
                        until = MIN(until, u->pods[i].next_ms);
        uint64_t s = until > now ? (until - now + 999) / 1000 : 1;
        return (unsigned) MAX(MIN(s, (uint64_t) KUBE_WATCH_TIMEOUT_S_MAX), (uint64_t) 1);
}

static bool stopping(struct unsealer *u) {
        pthread_mutex_lock(&u->lock);
        bool stop = u->stop;
        pthread_mutex_unlock(&u->lock);
        return stop;
}

static bool watch_cancelled(void *userdata) {
        struct unsealer *u = userdata;
        struct unsealer_deps *d = &u->o.deps;
        return stopping(u) || (d->is_leader && !d->is_leader(d->userdata));
}

int unsealer_watch(struct unsealer *u, uint64_t relist_at) {
        struct kube_error ke = {};
        char path[512];
        if (!u->leading || !u->rv[0])
                return -ESTALE; /* no list to resume from: relist */
        list_path(u, path, sizeof(path));
        if (!u->watching)
                log_info("unsealer: watching the sealed pods (listed again every %u s)",
                         (u->o.interval_ms ? u->o.interval_ms : UNSEALER_INTERVAL_MS_DEFAULT) /
                                 1000);
        u->watching = true;
        struct kube_watch_options wo = {.resource_version = u->rv,
                                        .timeout_s = watch_seconds(u, relist_at),
                                        .bookmarks = true,
                                        .on_event = on_event,
                                        .cancelled = watch_cancelled,
                                        .userdata = u};
        int r = kube_watch(u->o.kube, path, &wo, &ke);
        if (r == -ETIME) {
                log_info("unsealer: the watch's resourceVersion expired (410): listing again");
                u->rv[0] = '\0';
        } else if (r < 0 && r != -ECANCELED)
                log_warning("unsealer: the watch of the sealed pods ended: %s", ke.message);
        return r;
}

/* ---- the thread ---- */

/* Waits ms or until stopped. false when stopped. */
static bool wait_ms(struct unsealer *u, unsigned ms) {
        struct timespec ts;
        pthread_mutex_lock(&u->lock);
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        while (!u->stop && pthread_cond_timedwait(&u->cond, &u->lock, &ts) == 0)
                ;
        bool go_on = !u->stop;
        pthread_mutex_unlock(&u->lock);
        return go_on;
}

/* A relist (unsealer_tick), then the watch from its resourceVersion until the next relist is
 * due (interval_ms, the safety net), a 410, an error, or a lost leadership. */
static void *loop(void *userdata) {
        struct unsealer *u = userdata;
        unsigned interval = u->o.interval_ms ? u->o.interval_ms : UNSEALER_INTERVAL_MS_DEFAULT;
        while (!stopping(u)) {
                int r = unsealer_tick(u);
                uint64_t relist_at = now_ms(u) + interval;
                if (r < 0 || !u->leading) {
                        /* Idle, or nothing to watch from: the next try in a while. */
                        if (!wait_ms(u, MIN(interval, UNSEALER_RETRY_MS)))
                                break;
                        continue;
                }
                while (!stopping(u) && now_ms(u) < relist_at) {
                        r = unsealer_watch(u, relist_at);
                        if (r == 0)
                                continue; /* the server's timeout: resume */
                        if (r != -ECANCELED && r != -ETIME)
                                (void) wait_ms(u, UNSEALER_RETRY_MS); /* not a busy loop */
                        break;
                }
        }
        return NULL;
}

int unsealer_new(const struct unsealer_options *o, struct unsealer **ret) {
        pthread_condattr_t ca;
        if (!o || !o->kube || !o->deps.annotation_key || !o->deps.installation ||
            !o->deps.client_pair || !o->deps.vault_borrow || !o->deps.vault_return || !ret)
                return -EINVAL;
        const char *role = o->token_role ? o->token_role : UNSEALER_ROLE_DEFAULT;
        if (!role[0] || strlen(role) >= 128 || strchr(role, '/') ||
            (o->tenant && (!o->tenant[0] || strlen(o->tenant) >= BROKERPROTO_MAX_PATH / 2)) ||
            (o->namespace_ && !kube_name_valid(o->namespace_)))
                return -EINVAL;
        struct unsealer *u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->o = *o;
        (void) snprintf(u->role, sizeof(u->role), "%s", role);
        if (o->tenant)
                (void) snprintf(u->tenant, sizeof(u->tenant), "%s", o->tenant);
        if (o->namespace_)
                (void) snprintf(u->ns, sizeof(u->ns), "%s", o->namespace_);
        u->o.tenant = NULL;
        u->o.namespace_ = NULL;
        u->o.token_role = NULL;
        (void) pthread_mutex_init(&u->lock, NULL);
        (void) pthread_condattr_init(&ca);
        (void) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        (void) pthread_cond_init(&u->cond, &ca);
        (void) pthread_condattr_destroy(&ca);
        *ret = u;
        return 0;
}

int unsealer_start(struct unsealer *u) {
        if (u->started)
                return -EALREADY;
        int r = pthread_create(&u->thread, NULL, loop, u);
        if (r != 0)
                return -r;
        u->started = true;
        return 0;
}

void unsealer_get_stats(struct unsealer *u, struct unsealer_stats *ret) {
        *ret = (struct unsealer_stats){.unsealed = u->st.unsealed,
                                       .adopted = u->st.adopted,
                                       .refused = u->st.refused,
                                       .failures = u->st.failures,
                                       .given_up = u->st.given_up,
                                       .cleaned = u->st.cleaned,
                                       .swept = u->st.swept};
}

struct unsealer *unsealer_free(struct unsealer *u) {
        if (!u)
                return NULL;
        if (u->started) {
                pthread_mutex_lock(&u->lock);
                u->stop = true;
                pthread_cond_broadcast(&u->cond);
                pthread_mutex_unlock(&u->lock);
                (void) pthread_join(u->thread, NULL);
        }
        free(u->pods);
        (void) pthread_cond_destroy(&u->cond);
        (void) pthread_mutex_destroy(&u->lock);
        free(u);
        return NULL;
}
