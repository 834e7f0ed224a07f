/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/config: the wrapper's configuration, read from its environment through the injection
 * contract (common/injection.h, docs/wrapper.md) and from its own argv. Pure: no I/O, no logging;
 * errors come back as -EINVAL with a `struct error_report` (common/error-report.h; status
 * EX_USAGE) whose one-line message names the variable and never a value.
 *
 * Limits: those of common/injection.h; the command (after "--", or the arguments) at most
 * CONFIG_MAX_ARGS arguments.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error-report.h"
#include "common/injection.h"
#include "common/log.h"

#define CONFIG_MAX_PATHS INJECTION_MAX_PATHS
#define CONFIG_MAX_NAME INJECTION_MAX_NAME
#define CONFIG_MAX_ARGS INJECTION_MAX_ARGS
#define CONFIG_REASON_MAX INJECTION_REASON_MAX

/* The wrapper's short names for the contract's values. */
#define AUTH_KUBERNETES INJECTION_AUTH_KUBERNETES
#define AUTH_TOKEN INJECTION_AUTH_TOKEN
#define AUTH_BROKER INJECTION_AUTH_BROKER
#define DELIVERY_ENV INJECTION_DELIVERY_ENV
#define DELIVERY_MEMFD INJECTION_DELIVERY_MEMFD
#define DELIVERY_BOTH INJECTION_DELIVERY_BOTH
#define ROTATION_NONE INJECTION_ROTATION_NONE
#define ROTATION_RESTART INJECTION_ROTATION_RESTART
#define ROTATION_SIGNAL INJECTION_ROTATION_SIGNAL

struct wrapper_config {
        const char *vault_addr;
        enum injection_auth_method auth;
        const char *role;
        const char *auth_mount;        /* default "auth/kubernetes" */
        const char *ca_file;           /* VAULT_CACERT */
        const char *ca_pem;            /* CLOUDTASER_VAULT_CA_PEM */
        bool skip_verify;              /* VAULT_SKIP_VERIFY */
        const char *namespace_;        /* VAULT_NAMESPACE */
        const char *peer_addrs;        /* CLOUDTASER_VAULT_PEER_ADDRESSES */
        const char *sa_token_path;     /* CLOUDTASER_SA_TOKEN_PATH */
        bool has_token;                /* VAULT_TOKEN set (its value is taken by the caller) */
        const char *broker_addr;       /* CLOUDTASER_BROKER_ADDRESS (broker mode; no VAULT_ADDR) */
        const char *broker_ca_pem;     /* CLOUDTASER_BROKER_CA_PEM */
        const char *broker_token_path; /* CLOUDTASER_BROKER_TOKEN_PATH */
        bool sealed;                   /* sealed token mode: token auth without VAULT_TOKEN */
        const char *unseal_ca_pem;     /* CLOUDTASER_UNSEAL_CA_PEM (sealed) */
        const char *unseal_listen;     /* CLOUDTASER_UNSEAL_LISTEN, default ":8199" */

        struct injection_secret *secrets; /* CLOUDTASER_SECRET_PATHS + CLOUDTASER_ENV_MAP */
        size_t n_secrets;

        char **argv; /* the command, NULL-terminated (strings borrowed or owned, see argv_owned) */
        size_t argc;
        bool argv_owned;

        enum injection_delivery delivery;
        uint64_t startup_timeout_ms; /* default 60 s */
        enum log_format log_format;
        enum log_level log_level;
        enum injection_rotation rotation;
        int rotation_signal;           /* for ROTATION_SIGNAL */
        uint64_t rotation_interval_ms; /* default 60 s */
        uint64_t rotation_grace_ms;    /* SIGTERM -> SIGKILL on restart, default 10 s */
};

/* Parses the configuration from `getenv_fn` (getenv, or a test's lookup) with
 * injection_settings_parse(), and the command: after "--" in the wrapper's own argv, else its
 * arguments, else CLOUDTASER_ORIGINAL_CMD. Strings from the environment are borrowed (they must
 * outlive the config); everything parsed is owned by *ret. -EINVAL with err's message on a
 * configuration error, -ENOMEM ("out of memory"). */
int config_parse(injection_getenv_fn getenv_fn, void *userdata, int argc, char *const *argv,
                 struct wrapper_config *ret, struct error_report *err);
void config_done(struct wrapper_config *c);

/* The contract's helpers under the names the wrapper's code uses. */
static inline const char *config_signal_name(int sig) {
        return injection_signal_name(sig);
}
static inline bool config_is_wrapper_variable(const char *name_or_entry) {
        return injection_is_wrapper_variable(name_or_entry);
}
static inline int config_field_to_env(const char *field, char *buf, size_t size) {
        return injection_field_to_env(field, buf, size);
}
