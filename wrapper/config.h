/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/config: the wrapper's configuration, read from its environment and argv (the interface
 * of docs/wrapper.md, CloudTaser's names). Pure: no I/O, no logging; errors come back as -EINVAL
 * with a one-line reason in `struct config_error` that names the variable and never a value.
 *
 * Limits (untrusted: the values come from pod annotations through the webhook):
 *   CONFIG_MAX_PATHS secret paths, CONFIG_MAX_MAPPINGS field=ENV pairs in all, each path at most
 *   VAULT_PATH_MAX-1 bytes, each variable name at most CONFIG_MAX_NAME bytes, each list variable
 *   at most CONFIG_MAX_LIST bytes, the command at most CONFIG_MAX_ARGS arguments.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define CONFIG_MAX_PATHS 64
#define CONFIG_MAX_MAPPINGS 512
#define CONFIG_MAX_NAME 128
#define CONFIG_MAX_LIST 65536
#define CONFIG_MAX_ARGS 4096
#define CONFIG_REASON_MAX 256

enum auth_method {
        AUTH_KUBERNETES = 0,
        AUTH_TOKEN,
        AUTH_BROKER,
};

enum delivery {
        DELIVERY_ENV = 0,
        DELIVERY_MEMFD,
        DELIVERY_BOTH,
};

enum rotation {
        ROTATION_NONE = 0,
        ROTATION_RESTART,
        ROTATION_SIGNAL,
};

struct mapping {
        char *field; /* the secret's field name */
        char *env;   /* the child's variable */
};

struct secret_spec {
        char *path;           /* as given (CLOUDTASER_SECRET_PATHS) */
        struct mapping *maps; /* explicit field=ENV pairs, NULL when all_fields */
        size_t n_maps;
        bool all_fields; /* no group: every field, upper-cased */
};

struct config_error {
        char reason[CONFIG_REASON_MAX];
};

struct wrapper_config {
        const char *vault_addr;
        enum auth_method auth;
        const char *role;
        const char *auth_mount;    /* default "auth/kubernetes" */
        const char *ca_file;       /* VAULT_CACERT */
        const char *ca_pem;        /* CLOUDTASER_VAULT_CA_PEM */
        bool skip_verify;          /* VAULT_SKIP_VERIFY */
        const char *namespace_;    /* VAULT_NAMESPACE */
        const char *sa_token_path; /* CLOUDTASER_SA_TOKEN_PATH */
        bool has_token;            /* VAULT_TOKEN set (its value is taken by the caller) */

        struct secret_spec *secrets; /* CLOUDTASER_SECRET_PATHS + CLOUDTASER_ENV_MAP */
        size_t n_secrets;

        char **argv; /* the command, NULL-terminated (strings borrowed or owned, see argv_owned) */
        size_t argc;
        bool argv_owned;

        enum delivery delivery;
        uint64_t startup_timeout_ms; /* default 60 s */
        enum log_format log_format;
        enum log_level log_level;
        enum rotation rotation;
        int rotation_signal;           /* for ROTATION_SIGNAL */
        uint64_t rotation_interval_ms; /* default 60 s */
        uint64_t rotation_grace_ms;    /* SIGTERM -> SIGKILL on restart, default 10 s */
};

/* Parses the configuration from `getenv_fn` (getenv, or a test's lookup) and the wrapper's own
 * argv. Strings from the environment are borrowed (they must outlive the config); everything
 * parsed is owned by *ret. -EINVAL with err->reason on a configuration error, -ENOMEM. */
int config_parse(const char *(*getenv_fn)(const char *name, void *userdata), void *userdata,
                 int argc, char *const *argv, struct wrapper_config *ret, struct config_error *err);
void config_done(struct wrapper_config *c);

/* The pieces, exposed for tests and fuzzing. */
int config_parse_paths(const char *s, struct secret_spec **ret, size_t *ret_n,
                       struct config_error *err);
int config_parse_env_map(const char *s, struct secret_spec *specs, size_t n_specs,
                         struct config_error *err);
int config_parse_duration_ms(const char *s, uint64_t *ret);
int config_parse_command(const char *s, char ***ret_argv, size_t *ret_argc,
                         struct config_error *err);
int config_parse_signal(const char *name, int *ret);
const char *config_signal_name(int sig);

/* The environment name an unmapped field gets: upper-cased, anything but [A-Z0-9_] turned to
 * '_', a leading digit prefixed with '_'. -EINVAL for an empty field, -E2BIG over size. */
int config_field_to_env(const char *field, char *buf, size_t size);

/* Whether a variable is the wrapper's own (CLOUDTASER_* or VAULT_*): never passed to the child. */
bool config_is_wrapper_variable(const char *name_or_entry);

/* A valid environment variable name: [A-Za-z_][A-Za-z0-9_]*, at most CONFIG_MAX_NAME bytes. */
bool config_env_name_valid(const char *s, size_t n);
