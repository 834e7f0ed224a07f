/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/annotations: the injection contract's pod annotations (the cloudtaser.io/ keys, see
 * docs/operator.md), parsed from untrusted input under explicit limits. Pure: no I/O, no logging.
 *
 * Every failure is -EINVAL with one printable line in err naming the annotation and why; it
 * does not echo the value (a hostile value may be huge or hold control characters), except the
 * wrapper's reasons for secret-paths/env-map, which quote a bounded part of it; -ENOMEM.
 *
 * The annotations that set a wrapper variable are the rows of the injection contract
 * (common/injection.h, each row's `annotation`): their values are checked with the row's own
 * parser, the one the wrapper reads its environment with, so that a pod admitted is a pod whose
 * wrapper accepts its configuration. The others (inject, containers, command, injected) are the
 * operator's own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/injection.h"
#include "common/json.h"

#define ANNOTATION_PREFIX INJECTION_ANNOTATION_PREFIX

/* Limits on the values (bytes); a contract row's value is also held to its row's `max`. */
#define ANNOTATION_VALUE_MAX 65536u                  /* any cloudtaser.io/ value */
#define ANNOTATION_ADDRESS_MAX INJECTION_ADDRESS_MAX /* cloudtaser.io/vault-address */
#define ANNOTATION_MAX_CONTAINERS 64u                /* names in cloudtaser.io/containers */
#define ANNOTATION_CONTAINER_NAME_MAX 63             /* a DNS-1123 label, as Kubernetes requires */
#define ANNOTATION_COMMAND_MAX_ARGS 256u             /* elements of cloudtaser.io/command */
#define ANNOTATION_COMMAND_ARG_MAX 4096u             /* bytes of one element */
#define ANNOTATION_MAX_UNKNOWN 8u /* unknown cloudtaser.io/ keys remembered for warnings */

/* The annotation the operator writes on an injected pod (ignored when read). */
#define ANNOTATION_INJECTED "cloudtaser.io/injected"

struct annotations {
        bool inject; /* cloudtaser.io/inject is "true" */

        /* The other fields are filled only when inject is true. Strings are borrowed from the
         * annotations object (valid while its document lives) and NULL when absent. */

        /* By contract row (index into injection_variables): the value of the row's
         * annotation, valid for its parser; NULL when absent or empty. */
        const char *value[INJECTION_N_VARIABLES];
        const char *vault_address; /* the value of VAULT_ADDR's row: a valid URL, see
                                      annotation_vault_address_canon(), not canonical yet */
        const char *secret_paths;  /* the value of CLOUDTASER_SECRET_PATHS's row (required) */

        /* cloudtaser.io/containers: the names to wrap (DNS-1123 labels, no duplicates), owned;
         * NULL when absent (every app container is wrapped). */
        char **containers;
        size_t n_containers;

        /* cloudtaser.io/command: the entrypoint for containers without `command`, owned,
         * NULL-terminated; NULL when absent. */
        char **command;
        size_t n_command;

        /* cloudtaser.io/ keys that are not part of the contract (borrowed), for warnings. */
        const char *unknown[ANNOTATION_MAX_UNKNOWN];
        size_t n_unknown; /* how many were seen (may exceed ANNOTATION_MAX_UNKNOWN) */
};

/* Parses a pod's metadata.annotations (an object of strings; NULL or JSON null: no annotations).
 * Only cloudtaser.io/ keys are looked at. inject absent or "false": *ret has inject false and
 * nothing else is checked. inject anything but "true"/"false", a cloudtaser.io/ key given twice
 * or with a non-string value, a value over its limit or one its contract row refuses
 * (injection_settings_read()), a '$' in secret-paths or env-map, secret-paths missing, an
 * env-map without secret-paths: -EINVAL with err. The rules between rows that depend on the
 * operator's defaults and the container (a role for kubernetes auth, a token for token auth) are
 * checked by admission over the environment it writes. The caller releases *ret with
 * annotations_done() (also after a failure: *ret is then empty). */
int annotations_parse(const struct json_value *annotations, struct annotations *ret, char *err,
                      size_t errlen);
void annotations_done(struct annotations *a);

/* The pieces, for tests and fuzzing. Each -EINVAL with err, -ENOMEM; out-parameters written
 * only on success. */

/* A JSON array of 1..ANNOTATION_COMMAND_MAX_ARGS strings, the first non-empty; no control
 * character but tab and newline. *ret_argv is a common/strv vector, owned (strv_free()). */
int annotation_parse_command(const char *s, char ***ret_argv, size_t *ret_n, char *err,
                             size_t errlen);

/* A comma-separated list of container names (spaces around names ignored), at least one, at most
 * ANNOTATION_MAX_CONTAINERS, each a DNS-1123 label; duplicates are dropped. *ret_names is a
 * common/strv vector, owned (strv_free()). */
int annotation_parse_containers(const char *s, char ***ret_names, size_t *ret_n, char *err,
                                size_t errlen);

/* A vault address "https://host[:port][/path]" (or http://), host a DNS name, an IPv4 address or
 * a bracketed IPv6 address, no user info, query or fragment, at most ANNOTATION_ADDRESS_MAX
 * bytes. Writes the canonical form used to compare with the allow-list: scheme and host in lower
 * case, the scheme's default port and trailing slashes dropped. -EINVAL (with err), -E2BIG when
 * out is too small. */
int annotation_vault_address_canon(const char *s, char *out, size_t outlen, char *err,
                                   size_t errlen);
