/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/injection: the injection contract, the one table both sides read. The operator's webhook
 * (operator/) turns cloudtaser.io/ annotations into VAULT_* / CLOUDTASER_* variables of the pod;
 * the wrapper (wrapper/) reads them back. Each variable has one row: its name, the annotation that
 * sets it, who may set it, its parser (which is its validator) and its limit. The wrapper reads
 * its environment with injection_settings_parse(); the operator validates the annotations and the
 * environment it writes with the same function, so that a pod the webhook admits is a pod whose
 * wrapper accepts its configuration (docs/wrapper.md, docs/operator.md).
 *
 * Pure: no I/O, no logging. Errors are -EINVAL with a struct injection_error that names the row
 * and says why in one printable line, never quoting a value (the env map quotes at most 64
 * printable bytes of a variable name); -ENOMEM.
 *
 * Limits (the values are untrusted: they come from pod annotations): every value at most its
 * row's `max` bytes; INJECTION_MAX_PATHS secret paths, each at most VAULT_PATH_MAX-1 bytes and a
 * valid vault path (vault_path_valid()); INJECTION_MAX_MAPPINGS field=ENV pairs in all; variable
 * names at most INJECTION_MAX_NAME bytes; a command of at most INJECTION_MAX_ARGS arguments.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define INJECTION_MAX_PATHS 64
#define INJECTION_MAX_MAPPINGS 512
#define INJECTION_MAX_NAME 128
#define INJECTION_MAX_LIST 65536 /* a list value: paths, env map, command */
#define INJECTION_MAX_ARGS 4096
#define INJECTION_ADDRESS_MAX 512u    /* VAULT_ADDR */
#define INJECTION_ROLE_MAX 128u       /* VAULT_AUTH_ROLE */
#define INJECTION_AUTH_PATH_MAX 256u  /* VAULT_AUTH_MOUNT_PATH */
#define INJECTION_SIGNAL_MAX 16u      /* the NAME of CLOUDTASER_ROTATION=signal:NAME */
#define INJECTION_CA_PEM_MAX 262144u  /* CLOUDTASER_VAULT_CA_PEM */
#define INJECTION_FILE_PATH_MAX 4096u /* VAULT_CACERT, CLOUDTASER_SA_TOKEN_PATH */
#define INJECTION_REASON_MAX 256
#define INJECTION_MAX_PEER_ADDRS \
        8 /* CLOUDTASER_VAULT_PEER_ADDRESSES entries (VAULT_MAX_PEER_ADDRS) */
#define INJECTION_PEER_ADDRS_MAX 4096u /* its bytes */
#define INJECTION_LISTEN_MAX 64u       /* CLOUDTASER_UNSEAL_LISTEN */

/* Broker mode (cloudtaser.io/vault-auth-method: broker; docs/protocol-broker.md): the webhook
 * mounts a projected service account token of audience "cloudtaser-broker" (BROKERPROTO_AUDIENCE)
 * here, and gives the wrapper the broker's address and CA in CLOUDTASER_BROKER_ADDRESS and
 * CLOUDTASER_BROKER_CA_PEM. */
#define INJECTION_BROKER_TOKEN_VOLUME "cloudtaser-broker-token"
#define INJECTION_BROKER_TOKEN_DIR "/var/run/secrets/cloudtaser.io/broker"
#define INJECTION_BROKER_TOKEN_PATH INJECTION_BROKER_TOKEN_DIR "/token"
#define INJECTION_BROKER_TOKEN_EXPIRY 600 /* seconds: the least the API server allows */

/* Sealed token mode (cloudtaser.io/vault-auth-method: token with no VAULT_TOKEN in the pod; the
 * interface of CloudTaser's token mode): the wrapper starts sealed and listens on
 * INJECTION_UNSEAL_PORT (TLS): GET /v1/status answers {"sealed": true|false} to anyone;
 * POST /v1/unseal {"token": "..."} is accepted only over mutual TLS from a client certificate
 * that CLOUDTASER_UNSEAL_CA_PEM verifies, with extended key usage clientAuth and the name
 * INJECTION_UNSEAL_CLIENT_NAME (the operator's client certificate of the broker-tls record). */
#define INJECTION_UNSEAL_PORT 8199
#define INJECTION_UNSEAL_CLIENT_NAME "cloudtaser-operator"

/* The pod layout the operator's mutation builds and the wrapper and init container rely on. */
#define INJECTION_ANNOTATION_PREFIX "cloudtaser.io/"
#define INJECTION_VOLUME "cloudtaser-bin"  /* in-memory emptyDir holding the wrapper */
#define INJECTION_VOLUME_SIZE "8Mi"        /* its sizeLimit */
#define INJECTION_MOUNT_PATH "/cloudtaser" /* where wrapped containers mount it, read-only */
#define INJECTION_WRAPPER_PATH "/cloudtaser/wrapper" /* the wrapped containers' command[0] */
#define INJECTION_INIT_CONTAINER "cloudtaser-init"   /* the init container's name */
#define INJECTION_INIT_COMMAND "/cloudtaser-init"    /* its command */

enum injection_auth_method {
        INJECTION_AUTH_KUBERNETES = 0,
        INJECTION_AUTH_TOKEN,
        INJECTION_AUTH_BROKER, /* through cloudtaser-broker (docs/protocol-broker.md) */
        _INJECTION_AUTH_MAX,
};

enum injection_delivery {
        INJECTION_DELIVERY_ENV = 0,
        INJECTION_DELIVERY_MEMFD,
        INJECTION_DELIVERY_BOTH,
        _INJECTION_DELIVERY_MAX,
};

enum injection_rotation {
        INJECTION_ROTATION_NONE = 0,
        INJECTION_ROTATION_RESTART,
        INJECTION_ROTATION_SIGNAL, /* "signal:NAME" */
        _INJECTION_ROTATION_MAX,
};

/* The string forms ("kubernetes", "memfd", "signal"): static strings, NULL out of range. The
 * parsers return -EINVAL for anything but the exact lower-case forms. */
const char *injection_auth_method_to_string(enum injection_auth_method m);
int injection_auth_method_from_string(const char *s, enum injection_auth_method *ret);
const char *injection_delivery_to_string(enum injection_delivery d);
int injection_delivery_from_string(const char *s, enum injection_delivery *ret);
const char *injection_rotation_to_string(enum injection_rotation r);
/* "none", "restart" or "signal:NAME" (NAME as injection_parse_signal(), not KILL or STOP, at
 * most INJECTION_SIGNAL_MAX bytes); *ret_signal is 0 unless signal. -EINVAL otherwise. */
int injection_rotation_from_string(const char *s, enum injection_rotation *ret, int *ret_signal);

/* Who may set a variable. */
enum injection_setter {
        INJECTION_SET_OPERATOR = 0, /* only the webhook writes it; a pod setting it is denied */
        INJECTION_SET_POD,          /* the pod's own env may set it (the token, the log settings) */
        INJECTION_SET_NEVER,        /* neither: for running the wrapper outside Kubernetes */
};

struct injection_variable;

/* A failure: the row it concerns (NULL when none) and the rest of the sentence after the
 * subject, with its separator (" must be env, memfd or both", ": entry #2 is empty"). Print it
 * with injection_error_format(). */
struct injection_error {
        const struct injection_variable *variable;
        char reason[INJECTION_REASON_MAX];
};

struct injection_mapping {
        char *field; /* the secret's field name */
        char *env;   /* the child's variable */
};

struct injection_secret {
        char *path;                     /* as given (CLOUDTASER_SECRET_PATHS), trimmed */
        struct injection_mapping *maps; /* explicit field=ENV pairs, NULL when all_fields */
        size_t n_maps;
        bool all_fields; /* no group: every field, upper-cased */
};

/* The wrapper's configuration as its environment gives it. Strings are borrowed from the
 * environment lookup (they must outlive the settings); secrets are owned. */
struct injection_settings {
        const char *vault_addr;
        enum injection_auth_method auth;
        const char *role;
        const char *auth_mount;        /* default "auth/kubernetes" */
        const char *ca_file;           /* VAULT_CACERT */
        const char *ca_pem;            /* CLOUDTASER_VAULT_CA_PEM */
        bool skip_verify;              /* VAULT_SKIP_VERIFY */
        const char *namespace_;        /* VAULT_NAMESPACE */
        const char *peer_addrs;        /* CLOUDTASER_VAULT_PEER_ADDRESSES, unparsed (checked) */
        const char *sa_token_path;     /* CLOUDTASER_SA_TOKEN_PATH */
        bool has_token;                /* VAULT_TOKEN set (its value is never kept here) */
        const char *broker_addr;       /* CLOUDTASER_BROKER_ADDRESS (broker mode) */
        const char *broker_ca_pem;     /* CLOUDTASER_BROKER_CA_PEM */
        const char *broker_token_path; /* CLOUDTASER_BROKER_TOKEN_PATH */
        const char *unseal_ca_pem;     /* CLOUDTASER_UNSEAL_CA_PEM (sealed token mode) */
        const char *unseal_listen;     /* CLOUDTASER_UNSEAL_LISTEN, default ":8199" */

        struct injection_secret *secrets; /* CLOUDTASER_SECRET_PATHS + CLOUDTASER_ENV_MAP */
        size_t n_secrets;
        const char *original_cmd; /* CLOUDTASER_ORIGINAL_CMD, unparsed (injection_parse_command) */

        enum injection_delivery delivery;
        uint64_t startup_timeout_ms; /* default 60 s */
        enum log_format log_format;
        enum log_level log_level;
        enum injection_rotation rotation;
        int rotation_signal;           /* for INJECTION_ROTATION_SIGNAL */
        uint64_t rotation_interval_ms; /* default 60 s */
        uint64_t rotation_grace_ms;    /* SIGTERM -> SIGKILL on restart, default 10 s */
};

/* One row of the contract. parse validates value (non-empty, at most max bytes: the reader checks
 * both first) and stores it into *s; it may rely on the rows before it (the env map on the
 * paths). */
struct injection_variable {
        const char *name;       /* "VAULT_ADDR" */
        const char *annotation; /* "cloudtaser.io/vault-address", NULL when none sets it */
        enum injection_setter setter;
        size_t max; /* bytes of the value */
        int (*parse)(const char *value, struct injection_settings *s, struct injection_error *err);
};

/* The rows, in the order they are read (docs/wrapper.md's table): injection_variables[row]. */
enum injection_row {
        INJECTION_ROW_LOG_FORMAT,
        INJECTION_ROW_LOG_LEVEL,
        INJECTION_ROW_VAULT_ADDR,
        INJECTION_ROW_AUTH_METHOD,
        INJECTION_ROW_AUTH_ROLE,
        INJECTION_ROW_AUTH_MOUNT_PATH,
        INJECTION_ROW_TOKEN,
        INJECTION_ROW_CACERT,
        INJECTION_ROW_CA_PEM,
        INJECTION_ROW_SKIP_VERIFY,
        INJECTION_ROW_NAMESPACE,
        INJECTION_ROW_PEER_ADDRS,
        INJECTION_ROW_SA_TOKEN_PATH,
        INJECTION_ROW_BROKER_ADDR,
        INJECTION_ROW_BROKER_CA_PEM,
        INJECTION_ROW_BROKER_TOKEN_PATH,
        INJECTION_ROW_UNSEAL_CA_PEM,
        INJECTION_ROW_UNSEAL_LISTEN,
        INJECTION_ROW_SECRET_PATHS,
        INJECTION_ROW_ENV_MAP,
        INJECTION_ROW_DELIVERY,
        INJECTION_ROW_STARTUP_TIMEOUT,
        INJECTION_ROW_ROTATION,
        INJECTION_ROW_ROTATION_INTERVAL,
        INJECTION_ROW_ROTATION_GRACE,
        INJECTION_ROW_ORIGINAL_CMD, /* last: the operator writes it last */
        _INJECTION_ROW_MAX,
};
#define INJECTION_N_VARIABLES 26
extern const struct injection_variable injection_variables[INJECTION_N_VARIABLES];

/* The row of a variable name (an exact match), or NULL. */
const struct injection_variable *injection_variable_by_name(const char *name);
/* The row an annotation key ("cloudtaser.io/vault-role") sets, or NULL. */
const struct injection_variable *injection_variable_by_annotation(const char *key);

typedef const char *(*injection_getenv_fn)(const char *name, void *userdata);

/* Reads every row from getenv_fn (an empty value counts as unset) in table order, then checks
 * the rules between rows: CLOUDTASER_SECRET_PATHS required; VAULT_ADDR required but in broker
 * mode; VAULT_AUTH_ROLE for kubernetes auth; for token auth VAULT_TOKEN or, sealed,
 * CLOUDTASER_UNSEAL_CA_PEM (reported on VAULT_AUTH_METHOD); for broker auth
 * CLOUDTASER_BROKER_ADDRESS and CLOUDTASER_BROKER_CA_PEM; not both VAULT_CACERT and
 * CLOUDTASER_VAULT_CA_PEM. *ret is written only on success and released with
 * injection_settings_done(). -EINVAL with err, -ENOMEM. */
int injection_settings_parse(injection_getenv_fn getenv_fn, void *userdata,
                             struct injection_settings *ret, struct injection_error *err);
/* The first half alone: every value present is valid, nothing is required. For checking a
 * subset (the operator's annotations before it knows the pod's defaults). */
int injection_settings_read(injection_getenv_fn getenv_fn, void *userdata,
                            struct injection_settings *ret, struct injection_error *err);
/* The rules between rows, on settings from injection_settings_read(). */
int injection_settings_check(const struct injection_settings *s, struct injection_error *err);
void injection_settings_done(struct injection_settings *s);

/* Sealed token mode: token auth with no VAULT_TOKEN, waiting for an unseal (see above). */
bool injection_settings_sealed(const struct injection_settings *s);

/* Writes "SUBJECT REASON" into buf (always NUL-terminated, truncated to size): the subject is the
 * row's annotation when by_annotation and it has one, else its variable name. Returns buf. */
char *injection_error_format(const struct injection_error *e, bool by_annotation, char *buf,
                             size_t size);

/* The list parsers. Each -EINVAL with err (naming its row), -ENOMEM; out-parameters written only
 * on success and owned by the caller. */

/* CLOUDTASER_SECRET_PATHS: comma-separated, spaces around entries and leading '/' dropped, each
 * path as vault_path_valid() says (so no empty, "." or ".." segment). Free with
 * injection_secrets_free(). */
int injection_parse_secret_paths(const char *s, struct injection_secret **ret, size_t *ret_n,
                                 struct injection_error *err);
/* CLOUDTASER_ENV_MAP into specs (from injection_parse_secret_paths()): groups separated by ';'
 * in path order, "field=ENV" pairs separated by ','. Names must be valid, not the wrapper's own
 * and not mapped twice. NULL or "": nothing to do. On failure specs may hold some mappings; free
 * them with injection_secrets_free() in any case. */
int injection_parse_env_map(const char *s, struct injection_secret *specs, size_t n_specs,
                            struct injection_error *err);
void injection_secrets_free(struct injection_secret *specs, size_t n);

/* CLOUDTASER_ORIGINAL_CMD: a JSON array of strings, or plain words separated by whitespace (no
 * quoting); 1..INJECTION_MAX_ARGS arguments, the first non-empty. *ret_argv is a common/strv
 * vector of *ret_argc strings (caller-owned: strv_free()). */
int injection_parse_command(const char *s, char ***ret_argv, size_t *ret_argc,
                            struct injection_error *err);

/* A signal by name: "HUP", "SIGHUP", "hup". -EINVAL when unknown. */
int injection_parse_signal(const char *name, int *ret);
/* Its name without "SIG" ("TERM"), "?" when unknown. */
const char *injection_signal_name(int sig);

/* "90" (seconds), "250ms", "60s", "2m", "1h". -EINVAL malformed, -ERANGE too large. */
int injection_parse_duration_ms(const char *s, uint64_t *ret);

/* The environment name an unmapped field gets: upper-cased, anything but [A-Z0-9_] turned to
 * '_', a leading digit prefixed with '_'. -EINVAL for an empty field, -E2BIG over size or over
 * INJECTION_MAX_NAME. */
int injection_field_to_env(const char *field, char *buf, size_t size);

/* Whether a variable (a name, or a NAME=value entry) is the wrapper's own: CLOUDTASER_* or
 * VAULT_*. The wrapper never passes one to the workload; the operator owns them in the pod. */
bool injection_is_wrapper_variable(const char *name_or_entry);

/* A valid environment variable name: [A-Za-z_][A-Za-z0-9_]*, 1..INJECTION_MAX_NAME bytes. */
bool injection_env_name_valid(const char *s, size_t n);
