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
        /* The contract's variables as common/injection's reader gives them (strings borrowed
         * from the environment, the secrets owned). */
        struct injection_settings env;
        bool sealed; /* sealed token mode: token auth without VAULT_TOKEN */

        char **argv; /* the command, NULL-terminated (strings borrowed or owned, see argv_owned) */
        size_t argc;
        bool argv_owned;
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
