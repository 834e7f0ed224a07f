/* SPDX-License-Identifier: Apache-2.0 */
/* operator/keeper: see keeper.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/injection.h"
#include "common/kube.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/sha256.h"
#include "common/vault.h"
#include "operator/credentials.h"
#include "operator/credstore.h"
#include "operator/keeper.h"
#include "operator/leader.h"
#include "operator/material.h"
#include "operator/memstore.h"
#include "operator/vaultsession.h"

#define MAX_NAME 254
#define MAX_HOSTS MATERIAL_MAX_HOSTS

enum backend { BACKEND_VAULT, BACKEND_KUBERNETES, BACKEND_EPHEMERAL };

struct keeper {
        const struct operator_flags *f;
        enum backend backend;
        char ns[MAX_NAME], identity[LEADER_IDENTITY_MAX + 1];
        char hosts_copy[1024];
        const char *hosts[MAX_HOSTS];
        size_t n_hosts;
        char broker_hosts_copy[1024]; /* --broker-host */
        const char *broker_hosts[MAX_HOSTS];
        size_t n_broker_hosts;
        struct kube_client *kube;
        struct signer *signer;
        struct vaultsession *session;
        struct credstore *store;
        struct leader *leader;
        struct credentials *cred;
        struct credstore_error last; /* the store's last failure (for the log line) */

        struct memstore *mem; /* the ephemeral backend: records in this process only */

        atomic_bool fatal;    /* the rotation cannot go on (keeper_failed()) */
        pthread_mutex_t lock; /* the fields below */
        pthread_cond_t cond;
        bool stop, kick, started;
        pthread_t thread;
        char why[512];
        char bundle_sha[65];
        char broker_address[INJECTION_ADDRESS_MAX + 1];
};

static void set_why(struct keeper *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct keeper *k, const char *fmt, ...) {
        va_list ap;
        (void) pthread_mutex_lock(&k->lock);
        va_start(ap, fmt);
        (void) vsnprintf(k->why, sizeof(k->why), fmt, ap);
        va_end(ap);
        (void) pthread_mutex_unlock(&k->lock);
}

/* ---- the store adapters ------------------------------------------------------------------- */

static int fields_of(const struct credentials_record *r, struct credstore_field *out) {
        for (size_t i = 0; i < r->n; i++)
                out[i] = (struct credstore_field){.name = r->f[i].name,
                                                  .value = r->f[i].value.data ? r->f[i].value.data
                                                                              : "",
                                                  .value_len = r->f[i].value.len};
        return (int) r->n;
}

static void version_from(struct credentials_version *dst, const struct credstore_version *src) {
        dst->n = src->kv;
        (void) snprintf(dst->tag, sizeof(dst->tag), "%s", src->rv);
}

static void version_to(struct credstore_version *dst, const struct credentials_version *src) {
        *dst = (struct credstore_version){.kv = src->n};
        (void) snprintf(dst->rv, sizeof(dst->rv), "%s", src->tag);
}

static int store_read(void *ud, const char *name, struct credentials_record *ret) {
        struct keeper *k = ud;
        struct credstore_record *rec = NULL;
        int r = credstore_read(k->store, name, &rec, &k->last);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rec->n_fields && r >= 0; i++)
                r = credentials_record_set(ret, rec->fields[i].name, rec->fields[i].value,
                                           rec->fields[i].value_len);
        if (r >= 0)
                version_from(&ret->version, &rec->version);
        credstore_record_free(rec);
        return r < 0 ? r : 0;
}

static int store_create(void *ud, const char *name, const struct credentials_record *rec) {
        struct keeper *k = ud;
        struct credstore_field f[CREDENTIALS_MAX_FIELDS];
        int n = fields_of(rec, f);
        return credstore_create(k->store, name, f, (size_t) n, NULL, &k->last);
}

static int store_update(void *ud, const char *name, const struct credentials_record *rec,
                        const struct credentials_version *version) {
        struct keeper *k = ud;
        struct credstore_field f[CREDENTIALS_MAX_FIELDS];
        struct credstore_version v;
        int n = fields_of(rec, f);
        version_to(&v, version);
        return credstore_update(k->store, name, f, (size_t) n, &v, NULL, &k->last);
}

/* ---- the signer adapter -------------------------------------------------------------------- */

static int sig_load(void *ud, const char *cert, size_t cert_len, const char *key, size_t key_len) {
        struct keeper *k = ud;
        _cleanup_buf_ struct buf kb = BUF_INIT(SIGNER_MAX_FIELD, BUF_SECURE),
                                 first = BUF_INIT(SIGNER_MAX_FIELD, 0);
        /* The issuing CA is the bundle's first certificate (the others are older CAs). */
        int r = material_bundle_first(cert, cert_len, &first);
        if (r < 0 || (r = buf_append(&kb, key, key_len)) < 0)
                return r;
        return signer_load_ca(k->signer, &kb, first.data, first.len);
}

static int sig_issue(void *ud, const uint8_t *spki, size_t spki_len,
                     const struct tls_cert_params *p, struct tls_cert *ret) {
        struct keeper *k = ud;
        struct signer_leaf l = {.common_name = p->common_name,
                                .san = p->san,
                                .not_before = p->not_before - (int64_t) p->backdate,
                                .not_after = p->not_after,
                                .usage = p->usage};
        return signer_issue(k->signer, spki, spki_len, &l, ret);
}

/* ---- leader election ----------------------------------------------------------------------- */

static bool may_write(void *ud) {
        struct keeper *k = ud;
        return !k->leader || leader_is_leader(k->leader);
}

static void kick(struct keeper *k) {
        (void) pthread_mutex_lock(&k->lock);
        k->kick = true;
        (void) pthread_cond_signal(&k->cond);
        (void) pthread_mutex_unlock(&k->lock);
}

static void on_started(void *ud) {
        struct keeper *k = ud;
        log_info("leader election: this replica leads (%s)", k->identity);
        kick(k);
}

static void on_stopped(void *ud) {
        struct keeper *k = ud;
        log_info("leader election: this replica no longer leads (%s)", k->identity);
}

static void on_new_leader(const char *identity, void *ud) {
        struct keeper *k = ud;
        if (strcmp(identity, k->identity) != 0)
                log_info("leader election: the leader is %s", identity);
}

/* ---- the manager's log --------------------------------------------------------------------- */

static void cred_log(void *ud, enum credentials_log_level l, int error, const char *msg) {
        (void) ud;
        if (l == CREDENTIALS_LOG_ERROR)
                log_error_errno(error ? error : -EIO, "%s", msg);
        else if (l == CREDENTIALS_LOG_WARNING)
                log_warning("%s", msg);
        else
                log_info("%s", msg);
}

/* ---- set-up -------------------------------------------------------------------------------- */

static void namespace_of(const struct operator_flags *f, char *out, size_t n) {
        const char *e = getenv("POD_NAMESPACE");
        _cleanup_buf_ struct buf b = BUF_INIT(256, 0);
        if (f->namespace_ && *f->namespace_) {
                (void) snprintf(out, n, "%s", f->namespace_);
        } else if (e && *e) {
                (void) snprintf(out, n, "%s", e);
        } else if (buf_read_file(&b, KUBE_SA_DIR "/namespace") >= 0 && b.len > 0) {
                buf_rstrip(&b);
                (void) snprintf(out, n, "%s", buf_cstr(&b));
        } else
                (void) snprintf(out, n, "cloudtaser-system");
}

/* A flag's comma list of DNS names and IPs (certificate SANs), split in copy; hosts[] point into
 * it. NULL list: none. -EINVAL after saying why. */
static int host_list(const char *flag, const char *list, char *copy, size_t size,
                     const char *hosts[MAX_HOSTS], size_t *ret_n) {
        size_t n = 0;
        if (!list)
                return 0;
        if ((size_t) snprintf(copy, size, "%s", list) >= size)
                return log_error("%s is too long", flag), -EINVAL;
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
                if (n >= MAX_HOSTS)
                        return log_error("%s names more than %d hosts", flag, MAX_HOSTS), -EINVAL;
                if (!material_host_valid(t))
                        return log_error("%s: '%s' is neither a DNS name nor an IP address", flag,
                                         t),
                               -EINVAL;
                hosts[n++] = t;
        }
        *ret_n = n;
        return 0;
}

int keeper_new(const struct operator_flags *f, struct kube_client *kube, struct signer *signer,
               const char *identity, struct keeper **ret) {
        int r;

        if (!f || !signer || !identity || !ret)
                return -EINVAL;
        struct keeper *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->f = f;
        k->kube = kube;
        k->signer = signer;
        (void) pthread_mutex_init(&k->lock, NULL);
        pthread_condattr_t ca;
        (void) pthread_condattr_init(&ca);
        (void) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        (void) pthread_cond_init(&k->cond, &ca);
        (void) pthread_condattr_destroy(&ca);
        (void) snprintf(k->identity, sizeof(k->identity), "%s", identity);
        namespace_of(f, k->ns, sizeof(k->ns));
        if (!kube_name_valid(k->ns)) {
                log_error("the operator's namespace '%s' is not a valid name", k->ns);
                goto invalid;
        }
        k->backend = strcmp(f->secret_backend, "kubernetes") == 0  ? BACKEND_KUBERNETES
                     : strcmp(f->secret_backend, "ephemeral") == 0 ? BACKEND_EPHEMERAL
                                                                   : BACKEND_VAULT;
        if (host_list("--webhook-host", f->webhook_hosts, k->hosts_copy, sizeof(k->hosts_copy),
                      k->hosts, &k->n_hosts) < 0 ||
            host_list("--broker-host", f->broker_hosts, k->broker_hosts_copy,
                      sizeof(k->broker_hosts_copy), k->broker_hosts, &k->n_broker_hosts) < 0)
                goto invalid;
        if ((k->backend == BACKEND_KUBERNETES || f->leader_elect) && !kube) {
                log_error("--secret-backend=kubernetes and --leader-elect need the Kubernetes "
                          "API: run the operator in a cluster, or give --kubeconfig");
                goto invalid;
        }
        bool keep_bundle = kube && !(f->webhook_config_name && !*f->webhook_config_name);
        if (!kube)
                log_notice("no Kubernetes API: the caBundle of the MutatingWebhookConfiguration "
                           "is not kept (publish --ca-bundle-out yourself)");

        struct credentials_options co = {
                .signer = {.load_ca = sig_load, .issue = sig_issue, .userdata = k},
                .service = f->service_name,
                .namespace_ = k->ns,
                .broker_service = f->broker_service,
                .extra_hosts = k->hosts,
                .n_extra_hosts = k->n_hosts,
                .broker_extra_hosts = k->broker_hosts,
                .n_broker_extra_hosts = k->n_broker_hosts,
                .renew_before_s = (int64_t) (f->cert_renew_before_ms / 1000u),
                .kube = keep_bundle ? kube : NULL,
                .webhook_config = f->webhook_config_name,
                .keep_client_pair = f->unseal_pods,
                .may_write = may_write,
                .log = cred_log,
                .userdata = k,
        };
        if (k->backend == BACKEND_EPHEMERAL) {
                r = memstore_new(&k->mem);
                if (r < 0)
                        goto fail;
                co.store = memstore_ops(k->mem);
                log_warning("--secret-backend=ephemeral: a new CA at every start, held by this "
                            "process only (tests and development; replicas will not agree)");
        } else {
                struct credstore_options so = {.mount = f->secret_mount,
                                               .prefix = f->secret_prefix,
                                               .kube = kube,
                                               .namespace_ = k->ns};
                if (k->backend == BACKEND_VAULT) {
                        struct vault_options vo = {.addr = f->vault_address,
                                                   .allow_http = f->allow_plain_http_vault,
                                                   .ca_file = f->vault_ca_file,
                                                   .namespace_ = f->vault_namespace,
                                                   .peer_addrs = f->vault_peer_addrs,
                                                   .user_agent = "cloudtaser-operator"};
                        char probe[512];
                        (void) snprintf(probe, sizeof(probe), "%s/%s",
                                        f->secret_mount ? f->secret_mount : CREDSTORE_DEFAULT_MOUNT,
                                        f->secret_prefix ? f->secret_prefix
                                                         : CREDSTORE_DEFAULT_PREFIX);
                        struct vaultsession_options vso = {.vault = &vo,
                                                           .jwt_path = f->vault_jwt_file,
                                                           .role = f->vault_role,
                                                           .mount = f->vault_auth_mount,
                                                           .probe_path = probe,
                                                           .sa_namespace = k->ns};
                        if (!f->vault_address) {
                                log_error("--secret-backend=vault needs --vault-address (or "
                                          "--secret-backend=kubernetes without a vault)");
                                goto invalid;
                        }
                        r = vaultsession_new(&vso, &k->session);
                        if (r < 0) {
                                log_error_errno(r, "the operator's vault session: %m");
                                goto fail;
                        }
                        so.backend = CREDSTORE_VAULT;
                        so.session = k->session;
                } else
                        so.backend = CREDSTORE_KUBERNETES;
                r = credstore_open(&so, &k->store);
                if (r < 0) {
                        log_error_errno(r, "the operator's credential store: %m");
                        goto fail;
                }
                co.store = (struct credentials_store){store_read, store_create, store_update, k};
                if (k->backend == BACKEND_KUBERNETES) {
                        const char *pod = getenv("POD_NAME");
                        struct credstore_object_ref ref = {
                                .api_version = pod && *pod ? "v1" : "apps/v1",
                                .kind = pod && *pod ? "Pod" : "Deployment",
                                .name = pod && *pod ? pod : "cloudtaser-operator",
                                .namespace_ = k->ns};
                        struct credstore_error e = {};
                        log_warning("%s", credstore_weakened_warning());
                        r = credstore_post_weakened_event(kube, k->ns, &ref, k->identity, &e);
                        if (r < 0)
                                log_warning_errno(r, "could not post the Event saying so: %s",
                                                  e.message);
                }
        }
        r = credentials_new(&co, &k->cred);
        if (r < 0) {
                log_error_errno(r, "the credentials manager (check --service-name, --namespace, "
                                   "--webhook-host): %m");
                goto fail;
        }
        if (k->session && (r = vaultsession_start(k->session)) < 0) {
                log_error_errno(r, "cannot start the vault session: %m");
                goto fail;
        }
        if (f->leader_elect) {
                struct leader_options lo = {
                        .namespace_ = f->lease_namespace ? f->lease_namespace : k->ns,
                        .name = f->lease_name,
                        .identity = k->identity,
                        .lease_duration_ms = (unsigned) f->lease_duration_ms,
                        .renew_deadline_ms = (unsigned) f->renew_deadline_ms,
                        .retry_period_ms = (unsigned) f->retry_period_ms,
                        .callbacks = {.on_started_leading = on_started,
                                      .on_stopped_leading = on_stopped,
                                      .on_new_leader = on_new_leader,
                                      .userdata = k},
                };
                r = leader_start(kube, &lo, &k->leader);
                if (r < 0) {
                        log_error_errno(r, "cannot start the leader election: %m");
                        goto fail;
                }
                log_info("leader election: Lease %s/%s as %s", lo.namespace_,
                         lo.name ? lo.name : LEADER_DEFAULT_NAME, k->identity);
        }
        *ret = k;
        return 0;
invalid:
        r = -EINVAL;
fail:
        keeper_free(k);
        return r;
}

/* The cause of a failed attempt, for one log line. */
static void explain(struct keeper *k, int r, char *buf, size_t n) {
        if (r == -EAGAIN)
                (void) snprintf(buf, n, "waiting for the leader to create the credentials");
        else if (k->last.error == r && k->last.path[0]) {
                int w = snprintf(buf, n, "%s: %s (%s)", k->last.path, k->last.reason, strerror(-r));
                if (w > 0 && (size_t) w < n && k->last.message[0])
                        (void) snprintf(buf + w, n - (size_t) w, ": %.400s", k->last.message);
        } else
                (void) snprintf(buf, n, "%s", strerror(-r));
}

/* The CA bundle file (public), replaced whole: a reader sees the old or the new one. */
static int write_file_atomic(const char *path, const char *data, size_t len) {
        char tmp[4096];
        if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd =
                open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        for (size_t off = 0; off < len;) {
                ssize_t w = write(fd, data + off, len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return negative_errno();
                off += (size_t) w;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                return negative_errno();
        return 0;
}

static int write_bundle(struct keeper *k) {
        _cleanup_buf_ struct buf ca = BUF_INIT(TLS_MAX_PEM, 0);
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[65];
        if (!k->f->ca_bundle_out || credentials_ca_bundle(k->cred, &ca) < 0)
                return 0;
        sha256_buffer(ca.data, ca.len, d);
        sha256_to_hex(d, hex);
        if (strcmp(hex, k->bundle_sha) == 0)
                return 0;
        int r = write_file_atomic(k->f->ca_bundle_out, ca.data, ca.len);
        if (r < 0)
                return log_error_errno(r, "cannot write --ca-bundle-out %s: %m",
                                       k->f->ca_bundle_out);
        memcpy(k->bundle_sha, hex, sizeof(hex));
        return 0;
}

int keeper_bootstrap(struct keeper *k, int (*wait)(void *userdata, unsigned ms), void *userdata) {
        unsigned backoff = 1000;
        for (;;) {
                int r;
                if (k->session && !vaultsession_ready(k->session)) {
                        struct vaultsession_status st;
                        vaultsession_status(k->session, &st);
                        set_why(k, "not logged in to vault yet%s%s", st.last_cause[0] ? ": " : "",
                                st.last_cause);
                        r = wait(userdata, 500); /* the session logs its own attempts */
                        if (r < 0)
                                return r;
                        continue;
                }
                k->last = (struct credstore_error){};
                r = credentials_bootstrap(k->cred);
                if (r >= 0) {
                        set_why(k, "%s", "");
                        return write_bundle(k);
                }
                char cause[1024];
                explain(k, r, cause, sizeof(cause));
                set_why(k, "credentials not loaded: %s", cause);
                if (r == -EAGAIN)
                        log_info("credentials: %s", cause);
                else
                        log_warning("credentials not loaded (retrying in %u s): %s", backoff / 1000,
                                    cause);
                r = wait(userdata, r == -EAGAIN ? 1000 : backoff);
                if (r < 0)
                        return r;
                if (backoff < 30000)
                        backoff = MIN(backoff * 2, 30000u);
        }
}

static void *rotation_main(void *arg) {
        struct keeper *k = arg;
        (void) pthread_mutex_lock(&k->lock);
        while (!k->stop) {
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t ms = k->f->cert_check_interval_ms;
                ts.tv_sec += (time_t) (ms / 1000);
                ts.tv_nsec += (long) (ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                while (!k->stop && !k->kick)
                        if (pthread_cond_timedwait(&k->cond, &k->lock, &ts) == ETIMEDOUT)
                                break;
                if (k->stop)
                        break;
                k->kick = false;
                (void) pthread_mutex_unlock(&k->lock);
                k->last = (struct credstore_error){};
                int r = credentials_tick(k->cred);
                if (r == -EPIPE) {
                        /* The signer is gone (it is never restarted: a new one would need the
                         * key again): stop, so the kubelet starts a whole new operator. */
                        log_error("the CA signer process died: stopping");
                        atomic_store(&k->fatal, true);
                        (void) kill(getpid(), SIGTERM);
                } else if (r < 0 && r != -EAGAIN) {
                        char cause[1024];
                        explain(k, r, cause, sizeof(cause));
                        log_warning("certificate check: %s (serving the last good certificate)",
                                    cause);
                }
                (void) write_bundle(k);
                (void) pthread_mutex_lock(&k->lock);
        }
        (void) pthread_mutex_unlock(&k->lock);
        return NULL;
}

int keeper_start(struct keeper *k, struct tls_server *s) {
        credentials_set_server(k->cred, s);
        int r = pthread_create(&k->thread, NULL, rotation_main, k);
        if (r != 0)
                return -r;
        k->started = true;
        return 0;
}

int keeper_webhook_pair(struct keeper *k, struct buf *ret_cert, struct buf *ret_key) {
        return credentials_webhook_pair(k->cred, ret_cert, ret_key);
}

int keeper_ca_bundle(struct keeper *k, struct buf *ret) {
        return credentials_ca_bundle(k->cred, ret);
}

static int modes_mac(void *ud, const char *ns, const char *sa, const char *paths,
                     const char *env_map, char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]) {
        struct keeper *k = ud;
        return credentials_annotation_mac(k->cred, ns, sa, paths, env_map, ret);
}

static int modes_ca(void *ud, struct buf *ret) {
        struct keeper *k = ud;
        return credentials_broker_ca(k->cred, ret);
}

static int modes_installation(void *ud, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        struct keeper *k = ud;
        return credentials_installation(k->cred, ret);
}

int keeper_modes_config(struct keeper *k, struct modes_config *ret) {
        const char *addr = k->f->broker_address;
        if (!addr) {
                int r = modes_default_broker_address(
                        k->f->broker_service ? k->f->broker_service : "cloudtaser-broker", k->ns,
                        k->broker_address, sizeof(k->broker_address));
                if (r < 0)
                        return log_error_errno(r, "the default --broker-address from "
                                                  "--broker-service-name and the namespace: %m");
                addr = k->broker_address;
        }
        *ret = (struct modes_config){
                .broker_address = addr,
                .unseal_pods = k->f->unseal_pods,
                .keys = {.annotation_mac = modes_mac,
                         .broker_ca = modes_ca,
                         .installation = modes_installation,
                         .userdata = k},
        };
        return 0;
}

static int unseal_key(void *ud, uint8_t ret[BROKERPROTO_KEY_SIZE]) {
        struct keeper *k = ud;
        return credentials_annotation_key(k->cred, ret);
}

static int unseal_pair(void *ud, struct buf *ret_cert, struct buf *ret_key) {
        struct keeper *k = ud;
        return credentials_client_pair(k->cred, ret_cert, ret_key);
}

static int unseal_borrow(void *ud, struct vault_client **ret) {
        struct keeper *k = ud;
        return vaultsession_borrow(k->session, ret);
}

static void unseal_return(void *ud) {
        struct keeper *k = ud;
        vaultsession_return(k->session);
}

static int unseal_installation(void *ud, char ret[BROKERPROTO_INSTALLATION_SIZE]) {
        struct keeper *k = ud;
        return credentials_installation(k->cred, ret);
}

int keeper_unsealer_deps(struct keeper *k, struct unsealer_deps *ret) {
        if (!k || !ret)
                return -EINVAL;
        if (!k->session)
                return -EOPNOTSUPP;
        *ret = (struct unsealer_deps){.is_leader = may_write,
                                      .annotation_key = unseal_key,
                                      .installation = unseal_installation,
                                      .client_pair = unseal_pair,
                                      .vault_borrow = unseal_borrow,
                                      .vault_return = unseal_return,
                                      .userdata = k};
        return 0;
}

bool keeper_failed(struct keeper *k) {
        return k && atomic_load(&k->fatal);
}

void keeper_why(struct keeper *k, char *buf, size_t n) {
        (void) pthread_mutex_lock(&k->lock);
        (void) snprintf(buf, n, "%s", k->why);
        (void) pthread_mutex_unlock(&k->lock);
}

struct keeper *keeper_free(struct keeper *k) {
        if (!k)
                return NULL;
        if (k->started) {
                (void) pthread_mutex_lock(&k->lock);
                k->stop = true;
                (void) pthread_cond_signal(&k->cond);
                (void) pthread_mutex_unlock(&k->lock);
                (void) pthread_join(k->thread, NULL);
        }
        if (k->leader) {
                (void) leader_stop(k->leader);
                leader_free(k->leader);
        }
        credentials_free(k->cred);
        credstore_free(k->store);
        vaultsession_free(k->session);
        memstore_free(k->mem);
        (void) pthread_cond_destroy(&k->cond);
        (void) pthread_mutex_destroy(&k->lock);
        free(k);
        return NULL;
}
