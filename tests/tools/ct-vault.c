/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-vault: drives common/vault end to end, for the demo and the end-to-end tests. Configured
 * like the wrapper (VAULT_ADDR, VAULT_CACERT / CLOUDTASER_VAULT_CA_PEM, VAULT_SKIP_VERIFY,
 * VAULT_NAMESPACE, VAULT_AUTH_METHOD, VAULT_AUTH_ROLE, VAULT_AUTH_MOUNT_PATH, VAULT_TOKEN,
 * CLOUDTASER_SA_TOKEN_PATH), and runs the steps given as arguments, in order, in one process:
 *
 *   login              log in (kubernetes: role + service account JWT; token: VAULT_TOKEN)
 *   lookup             token lookup-self
 *   renew              token renew-self
 *   resolve:PATH       KV version detection of PATH
 *   read:PATH[@V]      read a secret (version V of a KV v2 secret); prints field names and
 *                      value lengths, never values
 *   metadata:PATH      KV v2 metadata
 *   revoke             token revoke-self
 *   expect-fail:STEP   run STEP and succeed only if it fails (prints why)
 *
 * Exit status: 0 when every step did what was asked, 1 otherwise (the failing step is logged).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/vault.h"

#define DEFAULT_SA_TOKEN_PATH "/var/run/secrets/kubernetes.io/serviceaccount/token"

static bool env_true(const char *name) {
        const char *v = getenv(name);
        return v &&
               (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

static int log_vault_error(const char *step, int r, const struct vault_error *e) {
        const char *fields[] = {"path",   e->path[0] ? e->path : "-", "status", NULL,
                                "reason", vault_strerror(r),          NULL};
        char status[16];
        (void) snprintf(status, sizeof(status), "%ld", e->status);
        fields[3] = status;
        return log_event(LOG_ERR, r, fields, "%s failed: %s", step,
                         e->message[0] ? e->message : vault_strerror(r));
}

static int step_login(struct vault_client *c) {
        const char *method = getenv("VAULT_AUTH_METHOD");
        struct vault_error e = {};
        struct vault_auth a = {};
        int r;

        if (!method || !method[0] || strcmp(method, "kubernetes") == 0) {
                const char *role = getenv("VAULT_AUTH_ROLE");
                const char *mount = getenv("VAULT_AUTH_MOUNT_PATH");
                const char *jwt_path = getenv("CLOUDTASER_SA_TOKEN_PATH");
                _cleanup_buf_ struct buf jwt = BUF_INIT(VAULT_JWT_MAX, BUF_SECURE);
                if (!role || !role[0])
                        return log_error_errno(-EINVAL,
                                               "VAULT_AUTH_ROLE is required for kubernetes auth");
                if (!mount || !mount[0])
                        mount = "auth/kubernetes";
                if (!jwt_path || !jwt_path[0])
                        jwt_path = DEFAULT_SA_TOKEN_PATH;
                r = buf_read_file(&jwt, jwt_path);
                buf_rstrip(&jwt);
                if (r < 0)
                        return log_error_errno(
                                r, "Failed to read the service account token '%s': %m", jwt_path);
                r = vault_login_kubernetes(c, mount, role, jwt.data, jwt.len, &a, &e);
                if (r < 0)
                        return log_vault_error("login", r, &e);
                printf("login: kubernetes auth at %s as role '%s': token lease %" PRId64
                       "s, renewable %s, policies [%s], accessor %s\n",
                       mount, role, a.lease_duration, a.renewable ? "yes" : "no", a.policies,
                       a.accessor);
        } else if (strcmp(method, "token") == 0) {
                const char *t = getenv("VAULT_TOKEN");
                if (!t || !t[0])
                        return log_error_errno(-EINVAL, "VAULT_TOKEN is required for token auth");
                r = vault_set_token(c, t, strlen(t));
                if (r < 0)
                        return log_error_errno(r, "VAULT_TOKEN is not a valid token");
                printf("login: using the token from VAULT_TOKEN (%zu bytes)\n", strlen(t));
        } else
                return log_error_errno(-EINVAL, "Unknown VAULT_AUTH_METHOD '%s'", method);
        return 0;
}

static int run_step(struct vault_client *c, const char *step) {
        struct vault_error e = {};
        int r;

        if (strcmp(step, "login") == 0)
                return step_login(c);
        if (strcmp(step, "lookup") == 0) {
                struct vault_token_info t;
                r = vault_token_lookup_self(c, &t, &e);
                if (r < 0)
                        return log_vault_error("lookup-self", r, &e);
                printf("lookup-self: ttl %" PRId64 "s of %" PRId64
                       "s, renewable %s, type %s, path %s, policies [%s]\n",
                       t.ttl, t.creation_ttl, t.renewable ? "yes" : "no", t.type, t.path,
                       t.policies);
                return 0;
        }
        if (strcmp(step, "renew") == 0) {
                struct vault_auth a;
                r = vault_token_renew_self(c, 0, &a, &e);
                if (r < 0)
                        return log_vault_error("renew-self", r, &e);
                printf("renew-self: new lease %" PRId64 "s\n", a.lease_duration);
                return 0;
        }
        if (strcmp(step, "revoke") == 0) {
                r = vault_token_revoke_self(c, &e);
                if (r < 0)
                        return log_vault_error("revoke-self", r, &e);
                printf("revoke-self: token revoked\n");
                return 0;
        }
        if (strncmp(step, "resolve:", 8) == 0 || strncmp(step, "read:", 5) == 0 ||
            strncmp(step, "metadata:", 9) == 0) {
                const char *colon = strchr(step, ':');
                char path[VAULT_PATH_MAX];
                int64_t version = 0;
                (void) snprintf(path, sizeof(path), "%s", colon + 1);
                char *at = strchr(path, '@');
                if (at) {
                        char *end;
                        *at = '\0';
                        errno = 0;
                        version = strtoll(at + 1, &end, 10);
                        if (errno || *end || version <= 0)
                                return log_error_errno(-EINVAL, "Bad version in '%s'", step);
                }
                struct vault_kv_path p;
                r = vault_kv_resolve(c, path, &p, &e);
                if (r < 0)
                        return log_vault_error("resolve", r, &e);
                if (step[0] == 'r' && step[2] == 's') {
                        printf("resolve %s: KV v%d, mount %s, data path %s%s%s\n", path, p.version,
                               p.mount, p.data_path, p.metadata_path[0] ? ", metadata path " : "",
                               p.metadata_path);
                        return 0;
                }
                if (step[0] == 'm') {
                        struct vault_kv_metadata m;
                        r = vault_kv_metadata(c, &p, &m, &e);
                        if (r < 0)
                                return log_vault_error("metadata", r, &e);
                        printf("metadata %s: current version %" PRId64 ", oldest %" PRId64
                               ", updated %s%s\n",
                               path, m.current_version, m.oldest_version, m.updated_time,
                               m.current_deleted ? " (current version deleted)" : "");
                        return 0;
                }
                _cleanup_vault_secret_ struct vault_secret *s = NULL;
                r = vault_kv_read(c, &p, version, &s, &e);
                if (r < 0)
                        return log_vault_error("read", r, &e);
                printf("read %s (KV v%d", path, p.version);
                if (p.version == VAULT_KV_V2)
                        printf(", version %" PRId64, s->version);
                printf("): %zu field%s:", s->n_fields, s->n_fields == 1 ? "" : "s");
                for (size_t i = 0; i < s->n_fields; i++)
                        printf(" %s (%zu bytes%s)", s->fields[i].name, s->fields[i].value_len,
                               s->fields[i].type == VAULT_VALUE_JSON ? ", JSON" : "");
                printf("\n");
                return 0;
        }
        if (strncmp(step, "expect-fail:", 12) == 0) {
                r = run_step(c, step + 12);
                if (r >= 0) {
                        log_error("Step '%s' succeeded but was expected to fail", step + 12);
                        return -EPROTO;
                }
                printf("%s: failed as expected (%s)\n", step + 12, vault_strerror(r));
                return 0;
        }
        return log_error_errno(-EINVAL, "Unknown step '%s'", step);
}

int main(int argc, char **argv) {
        _cleanup_vault_client_ struct vault_client *c = NULL;
        enum log_format fmt = LOG_FORMAT_TEXT;
        int r;

        (void) log_format_from_string(getenv("CLOUDTASER_LOG_FORMAT"), &fmt);
        log_setup(argv[0], fmt, LOG_INFO);
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("ct-vault %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        if (argc < 2 || strcmp(argv[1], "--help") == 0) {
                fprintf(argc < 2 ? stderr : stdout,
                        "usage: %s STEP...   (login lookup renew revoke resolve:PATH read:PATH[@V] "
                        "metadata:PATH expect-fail:STEP)\n",
                        argv[0]);
                return argc < 2 ? 1 : 0;
        }
        (void) setvbuf(stdout, NULL, _IOLBF, 0);
        (void) atexit(secmem_wipe_all);
        r = secmem_harden_process();
        if (r < 0)
                log_warning_errno(r, "Could not fully harden the process: %m");

        const char *addr = getenv("VAULT_ADDR");
        if (!addr || !addr[0])
                return log_error("VAULT_ADDR is required"), 1;
        struct vault_options o = {
                .addr = addr,
                .ca_file = getenv("VAULT_CACERT"),
                .ca_pem = getenv("CLOUDTASER_VAULT_CA_PEM"),
                .insecure_skip_verify = env_true("VAULT_SKIP_VERIFY"),
                .namespace_ = getenv("VAULT_NAMESPACE"),
                .deadline_ms = 20000,
        };
        if (o.ca_file && !o.ca_file[0])
                o.ca_file = NULL;
        if (o.ca_pem && !o.ca_pem[0])
                o.ca_pem = NULL;
        if (o.ca_pem)
                o.ca_pem_len = strlen(o.ca_pem);
        if (o.insecure_skip_verify)
                log_warning("VAULT_SKIP_VERIFY is set: the vault server's TLS certificate is NOT "
                            "verified");
        r = vault_client_new(&o, &c);
        if (r < 0)
                return log_error_errno(r,
                                       "Invalid vault client configuration (VAULT_ADDR, CA): %m"),
                       1;

        struct secmem_report rep;
        secmem_report(&rep);
        printf("memory protection: %s, dumpable %s, core limit %s\n",
               secmem_mechanism_to_string(rep.mechanism), rep.dumpable_off ? "off" : "ON",
               rep.core_limit_zero ? "0" : "not 0");
        for (int i = 1; i < argc; i++) {
                r = run_step(c, argv[i]);
                if (r < 0)
                        return 1;
        }
        return 0;
}
