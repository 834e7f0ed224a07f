/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/secrets: see secrets.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error-report.h"
#include "common/exit-status.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "wrapper/secrets.h"

/* Exit code for a vault failure. */
static int exit_code_for(int r) {
        switch (r) {
        case -EACCES:
                return EX_NOPERM;
        case -ENOENT:
                return EX_DATAERR;
        case -EINVAL:
        case -EMEDIUMTYPE:
        case -EOPNOTSUPP:
                return EX_USAGE;
        default:
                return EX_UNAVAILABLE;
        }
}

int secrets_login(struct vault_client *c, const struct wrapper_config *cfg, struct vault_auth *ret,
                  struct error_report *err) {
        _cleanup_buf_ struct buf jwt = BUF_INIT(VAULT_JWT_MAX, BUF_SECURE);
        struct vault_error e = {};
        int r;

        r = buf_read_file(&jwt, cfg->env.sa_token_path);
        buf_rstrip(&jwt);
        if (r >= 0 && jwt.len == 0)
                r = -ENODATA;
        if (r < 0)
                return error_report_set(
                        err, r, EX_NOPERM, "cannot read the service account token %s: %s",
                        cfg->env.sa_token_path, r == -ENODATA ? "empty file" : strerror(-r));
        r = vault_login_kubernetes(c, cfg->env.auth_mount, cfg->env.role, jwt.data, jwt.len, ret,
                                   &e);
        if (r < 0) {
                int code = r == -EINVAL ? EX_NOPERM : exit_code_for(r);
                return error_report_set(
                        err, r, code, "login at %s as role '%s' failed: %s (status %ld, %s)",
                        e.path, cfg->env.role, e.message[0] ? e.message : vault_strerror(r),
                        e.status, vault_strerror(r));
        }
        return 0;
}

/* The kernel's limit for ONE string of a new program's environment (MAX_ARG_STRLEN, 32 pages,
 * the terminating NUL included): execve(2) fails with E2BIG beyond it, whatever the total. */
#define ENV_STRING_MAX (32u * 4096u)

/* Appends NAME=VALUE\0, refusing a name already present, and with env delivery a record the
 * kernel would refuse at execve: found here, before anything is started or stopped. */
static int add_record(struct secret_set *s, const char *name, const char *value, size_t len,
                      const char *path, const char *field, bool for_env, struct error_report *err) {
        size_t nl = strlen(name);
        int r;

        if (for_env && nl + 1 + len + 1 > ENV_STRING_MAX)
                return error_report_set(
                        err, -E2BIG, EX_DATAERR,
                        "field '%s' of %s is %zu bytes, over the kernel's limit of 128 KiB "
                        "for one environment variable (%s): use CLOUDTASER_DELIVERY=memfd",
                        field, path, len, name);

        if (memchr(value, '\0', len))
                return error_report_set(
                        err, -EINVAL, EX_DATAERR,
                        "field '%s' of %s holds a NUL byte: cannot go into an environment "
                        "variable or a memfd record",
                        field, path);
        for (size_t off = 0; off < s->records.len;) {
                const char *rec = s->records.data + off;
                if (strncmp(rec, name, nl) == 0 && rec[nl] == '=')
                        return error_report_set(
                                err, -EEXIST, EX_USAGE,
                                "two secrets map to the variable %s (the second is field '%s' "
                                "of %s)",
                                name, field, path);
                off += strlen(rec) + 1;
        }
        r = buf_append(&s->records, name, nl);
        if (r >= 0)
                r = buf_append_byte(&s->records, '=');
        if (r >= 0)
                r = buf_append(&s->records, value, len);
        if (r >= 0)
                r = buf_append_byte(&s->records, 0);
        if (r < 0)
                return error_report_set(err, r, EX_USAGE, "secrets exceed %u bytes",
                                        SECRETS_MAX_BYTES);
        s->n++;
        return 0;
}

static int map_secret(struct secret_set *s, const struct injection_secret *spec,
                      const struct vault_secret *sec, bool for_env, struct error_report *err) {
        int r;
        if (spec->all_fields) {
                for (size_t i = 0; i < sec->n_fields; i++) {
                        char name[CONFIG_MAX_NAME + 2];
                        const struct vault_field *f = &sec->fields[i];
                        r = config_field_to_env(f->name, name, sizeof(name));
                        if (r < 0)
                                return error_report_set(
                                        err, -EINVAL, EX_USAGE,
                                        "field of %s cannot be turned into a variable name "
                                        "(empty or too long)",
                                        spec->path);
                        if (config_is_wrapper_variable(name))
                                return error_report_set(
                                        err, -EINVAL, EX_USAGE,
                                        "field '%s' of %s would become %s, which is reserved "
                                        "for the wrapper",
                                        f->name, spec->path, name);
                        r = add_record(s, name, f->value, f->value_len, spec->path, f->name,
                                       for_env, err);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        for (size_t i = 0; i < spec->n_maps; i++) {
                const struct vault_field *f = vault_secret_get(sec, spec->maps[i].field);
                if (!f)
                        return error_report_set(err, -ENOENT, EX_DATAERR,
                                                "field '%s' is not in %s (mapped to %s)",
                                                spec->maps[i].field, spec->path, spec->maps[i].env);
                r = add_record(s, spec->maps[i].env, f->value, f->value_len, spec->path, f->name,
                               for_env, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_one(struct vault_client *c, const struct injection_secret *spec,
                    struct vault_kv_path *p, struct vault_secret **ret, struct error_report *err) {
        struct vault_error e = {};
        int r;

        if (p->version == VAULT_KV_UNKNOWN) {
                r = vault_kv_resolve(c, spec->path, p, &e);
                if (r < 0)
                        return error_report_set(
                                err, r, exit_code_for(r), "cannot resolve %s: %s (status %ld)",
                                spec->path, e.message[0] ? e.message : vault_strerror(r), e.status);
        }
        r = vault_kv_read(c, p, 0, ret, &e);
        if (r < 0) {
                p->version = VAULT_KV_UNKNOWN; /* resolve again next time */
                return error_report_set(err, r, exit_code_for(r), "cannot read %s: %s (status %ld)",
                                        spec->path, e.message[0] ? e.message : vault_strerror(r),
                                        e.status);
        }
        return 0;
}

/* Starts a fetch into s: empty records; n unresolved paths unless s already has n (a retry). */
static int set_begin(struct secret_set *s, size_t n, bool keep_paths, struct error_report *err) {
        buf_init(&s->records, SECRETS_MAX_BYTES, BUF_SECURE);
        s->n = 0;
        if (keep_paths && s->paths && s->n_paths == n)
                return 0;
        free(s->paths);
        s->n_paths = 0;
        s->paths = calloc(MAX(n, (size_t) 1), sizeof(*s->paths));
        if (!s->paths)
                return error_report_set(err, -ENOMEM, EX_UNAVAILABLE, "out of memory for %zu paths",
                                        n);
        s->n_paths = n;
        return 0;
}

int secrets_fetch(struct vault_client *c, const struct wrapper_config *cfg, struct secret_set *ret,
                  struct vault_auth *ret_login, struct error_report *err) {
        struct vault_auth login = {};
        bool logged_in = false;
        int r = set_begin(ret, cfg->env.n_secrets, true, err);
        if (r < 0)
                return r;
        if (!vault_has_token(c)) {
                if (cfg->env.auth != AUTH_KUBERNETES)
                        return error_report_set(err, -ENOKEY, EX_NOPERM, "no vault token");
                r = secrets_login(c, cfg, &login, err);
                if (r < 0)
                        return r;
                logged_in = true;
        }
        /* One kept-alive connection carries every request, one after the other (one TLS
         * handshake in all), and a mount already resolved is not asked about again. */
        for (size_t i = 0; i < cfg->env.n_secrets; i++) {
                _cleanup_vault_secret_ struct vault_secret *sec = NULL;
                for (size_t j = 0; j < i && ret->paths[i].version == VAULT_KV_UNKNOWN; j++)
                        if (ret->paths[j].version != VAULT_KV_UNKNOWN &&
                            vault_kv_path_from_mount(&ret->paths[j], cfg->env.secrets[i].path,
                                                     &ret->paths[i]) < 0)
                                ret->paths[i].version = VAULT_KV_UNKNOWN;
                r = read_one(c, &cfg->env.secrets[i], &ret->paths[i], &sec, err);
                if (r < 0)
                        return r;
                ret->versions[i] = sec->version;
                size_t before = ret->n;
                r = map_secret(ret, &cfg->env.secrets[i], sec, cfg->env.delivery != DELIVERY_MEMFD,
                               err);
                if (r < 0)
                        return r;
                ret->path_records[i] = ret->n - before;
        }
        if (logged_in && ret_login)
                *ret_login = login;
        return logged_in ? 1 : 0;
}

/* Whether a fresh read `sec` of path i maps to other records than `s` holds for it. Both ways:
 * every new record is among the old ones, and there are as many (a field deleted from the
 * secret leaves one old record without a new one). */
static bool records_changed(const struct wrapper_config *cfg, size_t i,
                            const struct vault_secret *sec, const struct secret_set *s) {
        struct secret_set tmp = {.n_paths = 0};
        struct error_report ignore;
        buf_init(&tmp.records, SECRETS_MAX_BYTES, BUF_SECURE);
        int r = map_secret(&tmp, &cfg->env.secrets[i], sec, false, &ignore);
        bool changed = r < 0 || tmp.n != s->path_records[i];
        for (size_t off = 0; !changed && off < tmp.records.len;) {
                const char *rec = tmp.records.data + off;
                const char *eq = strchr(rec, '=');
                char name[CONFIG_MAX_NAME + 2];
                (void) snprintf(name, sizeof(name), "%.*s", (int) (eq - rec), rec);
                const char *old = secret_set_get(s, name);
                if (!old || strcmp(old, rec) != 0)
                        changed = true;
                off += strlen(rec) + 1;
        }
        buf_done(&tmp.records);
        return changed;
}

int secrets_changed(struct vault_client *c, const struct wrapper_config *cfg,
                    const struct secret_set *s, struct error_report *err) {
        struct vault_error e = {};
        int r;

        for (size_t i = 0; i < cfg->env.n_secrets && i < s->n_paths; i++) {
                const struct vault_kv_path *p = &s->paths[i];
                if (p->version == VAULT_KV_V2) {
                        struct vault_kv_metadata m;
                        r = vault_kv_metadata(c, p, &m, &e);
                        if (r == -EACCES) {
                                /* No read access to metadata: compare by reading the data. */
                                _cleanup_vault_secret_ struct vault_secret *sec = NULL;
                                r = vault_kv_read(c, p, 0, &sec, &e);
                                if (r >= 0 && sec->version != s->versions[i])
                                        return 1;
                        } else if (r >= 0 &&
                                   (m.current_version != s->versions[i] || m.current_deleted))
                                return 1;
                        if (r < 0)
                                return error_report_set(
                                        err, r, exit_code_for(r),
                                        "cannot check %s: %s (status %ld)",
                                        cfg->env.secrets[i].path,
                                        e.message[0] ? e.message : vault_strerror(r), e.status);
                        continue;
                }
                /* KV v1 has no versions: read and compare the mapped records. */
                _cleanup_vault_secret_ struct vault_secret *sec = NULL;
                r = vault_kv_read(c, p, 0, &sec, &e);
                if (r < 0)
                        return error_report_set(
                                err, r, exit_code_for(r), "cannot check %s: %s (status %ld)",
                                cfg->env.secrets[i].path,
                                e.message[0] ? e.message : vault_strerror(r), e.status);
                if (records_changed(cfg, i, sec, s))
                        return 1;
        }
        return 0;
}

const char *secret_set_get(const struct secret_set *s, const char *name) {
        size_t nl = strlen(name);
        for (size_t off = 0; off < s->records.len;) {
                const char *rec = s->records.data + off;
                if (strncmp(rec, name, nl) == 0 && rec[nl] == '=')
                        return rec;
                off += strlen(rec) + 1;
        }
        return NULL;
}

void secret_set_clear(struct secret_set *s) {
        if (!s)
                return;
        buf_done(&s->records);
        s->n = 0;
}

void secret_set_done(struct secret_set *s) {
        if (!s)
                return;
        secret_set_clear(s);
        free(s->paths);
        s->paths = NULL;
        s->n_paths = 0;
}

/* ---- broker mode: the same mapping, the values from cloudtaser-broker ---- */

static int broker_exit_code(int r, const struct broker_error *e) {
        if (strcmp(e->path, "token file") == 0)
                return EX_NOPERM;
        switch (r) {
        case -EACCES:
        case -EKEYREJECTED:
                return EX_NOPERM;
        case -ENOENT:
                return EX_DATAERR;
        case -EINVAL:
        case -E2BIG:
                return EX_USAGE;
        default:
                return EX_UNAVAILABLE;
        }
}

/* The one line for a broker failure: what was asked, the broker's reason, the status. */
static int broker_fail(struct error_report *err, int r, const struct broker_error *e,
                       const char *what, const struct wrapper_config *cfg) {
        char paths[256] = "";
        size_t o = 0;
        for (size_t i = 0; i < cfg->env.n_secrets; i++) {
                int w = snprintf(paths + o, sizeof(paths) - o, "%s%s", i ? "," : "",
                                 cfg->env.secrets[i].path);
                if (w < 0 || (size_t) w >= sizeof(paths) - o)
                        break;
                o += (size_t) w;
        }
        const char *reason = e->message[0] ? e->message : strerror(-r);
        if (strcmp(e->path, "token file") == 0)
                r = error_report_set(err, r, EX_NOPERM, "cannot read the broker token %s: %s",
                                     cfg->env.broker_token_path, reason);
        else if ((strcmp(e->path, BROKERPROTO_PATH_SESSION) == 0 ||
                  strcmp(e->path, BROKERPROTO_PATH_RENEW) == 0) &&
                 e->status == 0) /* no answer: the connection or TLS failed, nothing refused */
                r = error_report_set(err, r, broker_exit_code(r, e),
                                     "cannot open a session with the broker at %s: %s",
                                     cfg->env.broker_addr, reason);
        else if (strcmp(e->path, BROKERPROTO_PATH_SESSION) == 0 ||
                 strcmp(e->path, BROKERPROTO_PATH_RENEW) == 0)
                r = error_report_set(err, r, broker_exit_code(r, e),
                                     "the broker at %s refused the session: %s (status %ld)",
                                     cfg->env.broker_addr, reason, e->status);
        else if (e->status == 0)
                r = error_report_set(err, r, broker_exit_code(r, e),
                                     "%s %s through the broker: %s (no answer)", what, paths,
                                     reason);
        else
                r = error_report_set(err, r, broker_exit_code(r, e),
                                     "%s %s through the broker: %s (status %ld)", what, paths,
                                     reason, e->status);
        return r;
}

static void config_paths(const struct wrapper_config *cfg, const char **ret) {
        for (size_t i = 0; i < cfg->env.n_secrets; i++)
                ret[i] = cfg->env.secrets[i].path;
}

int secrets_fetch_broker(struct broker_client *b, const struct wrapper_config *cfg,
                         struct secret_set *ret, struct error_report *err) {
        struct vault_secret *secs[CONFIG_MAX_PATHS] = {};
        const char *paths[CONFIG_MAX_PATHS];
        struct broker_error e = {};
        int r;

        r = set_begin(ret, cfg->env.n_secrets, false, err);
        if (r < 0)
                return r;
        config_paths(cfg, paths);
        /* Every path in one request: one session, one mutual-TLS connection. */
        r = broker_read(b, paths, cfg->env.n_secrets, secs, &e);
        if (r < 0)
                return broker_fail(err, r, &e, "cannot read", cfg);
        for (size_t i = 0; i < cfg->env.n_secrets && r >= 0; i++) {
                ret->versions[i] = secs[i]->version;
                ret->paths[i].version = secs[i]->version > 0 ? VAULT_KV_V2 : VAULT_KV_V1;
                size_t before = ret->n;
                r = map_secret(ret, &cfg->env.secrets[i], secs[i],
                               cfg->env.delivery != DELIVERY_MEMFD, err);
                ret->path_records[i] = ret->n - before;
        }
        for (size_t i = 0; i < cfg->env.n_secrets; i++)
                vault_secret_free(secs[i]);
        return r;
}

int secrets_changed_broker(struct broker_client *b, const struct wrapper_config *cfg,
                           const struct secret_set *s, struct error_report *err) {
        const char *paths[CONFIG_MAX_PATHS];
        int64_t versions[CONFIG_MAX_PATHS];
        struct broker_error e = {};
        bool v1 = false;
        int r;

        if (s->n_paths != cfg->env.n_secrets)
                return 1;
        config_paths(cfg, paths);
        r = broker_versions(b, paths, cfg->env.n_secrets, versions, &e);
        if (r < 0)
                return broker_fail(err, r, &e, "cannot check", cfg);
        for (size_t i = 0; i < cfg->env.n_secrets; i++) {
                if (versions[i] != s->versions[i])
                        return 1;
                v1 = v1 || versions[i] == 0;
        }
        if (!v1)
                return 0;
        /* KV v1 has no versions: read and compare the mapped records. */
        struct vault_secret *secs[CONFIG_MAX_PATHS] = {};
        r = broker_read(b, paths, cfg->env.n_secrets, secs, &e);
        if (r < 0)
                return broker_fail(err, r, &e, "cannot check", cfg);
        bool changed = false;
        for (size_t i = 0; i < cfg->env.n_secrets; i++) {
                if (!changed && versions[i] == 0)
                        changed = records_changed(cfg, i, secs[i], s);
                vault_secret_free(secs[i]);
        }
        return changed;
}
