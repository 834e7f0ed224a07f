/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: operator/annotations. Input: a JSON object of annotations (as in a pod's
 * metadata.annotations), else the raw bytes fed to each value parser. Properties: a failure has a
 * one-line, printable reason; an accepted set has inject
 * true with secret-paths, every container name a DNS-1123 label and no duplicate, a command of
 * 1..ANNOTATION_COMMAND_MAX_ARGS strings (the first non-empty) NULL-terminated; a canonical vault
 * address is canonical (canonicalising it again gives itself) and within bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/strv.h"
#include "operator/annotations.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
        if (!cond)
                abort();
}

static void check_reason(const char *err) {
        check(err[0] != '\0');
        for (const char *c = err; *c; c++)
                check((unsigned char) *c >= 0x20 && *c != 0x7f);
}

static void check_names(char **v, size_t n) {
        check(n >= 1 && n <= ANNOTATION_MAX_CONTAINERS && v[n] == NULL);
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(v[i]);
                check(len >= 1 && len <= ANNOTATION_CONTAINER_NAME_MAX);
                check(strspn(v[i], "abcdefghijklmnopqrstuvwxyz0123456789-") == len);
                check(v[i][0] != '-' && v[i][len - 1] != '-');
                for (size_t j = 0; j < i; j++)
                        check(strcmp(v[i], v[j]) != 0);
        }
}

static void check_command(char **v, size_t n) {
        check(n >= 1 && n <= ANNOTATION_COMMAND_MAX_ARGS && v[n] == NULL && v[0][0]);
        for (size_t i = 0; i < n; i++)
                check(v[i] && strlen(v[i]) <= ANNOTATION_COMMAND_ARG_MAX);
}

static void values(const char *s) {
        char err[512] = "", canon[ANNOTATION_ADDRESS_MAX + 16], again[ANNOTATION_ADDRESS_MAX + 16];
        char **v = NULL;
        size_t n = 0;

        if (annotation_parse_command(s, &v, &n, err, sizeof(err)) == 0) {
                check_command(v, n);
                (void) strv_free(v);
        } else
                check_reason(err);
        err[0] = '\0';
        if (annotation_parse_containers(s, &v, &n, err, sizeof(err)) == 0) {
                check_names(v, n);
                (void) strv_free(v);
        } else
                check_reason(err);
        err[0] = '\0';
        if (annotation_vault_address_canon(s, canon, sizeof(canon), err, sizeof(err)) == 0) {
                check(strlen(canon) <= strlen(s));
                check(annotation_vault_address_canon(canon, again, sizeof(again), NULL, 0) == 0);
                check(strcmp(canon, again) == 0);
                check(strncmp(canon, "https://", 8) == 0 || strncmp(canon, "http://", 7) == 0);
                check(!strpbrk(canon, "@?# \t\r\n"));
        } else
                check_reason(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_doc_ struct json_doc *d = NULL;
        char err[512] = "";

        if (json_parse((const char *) data, size, 0, NULL, &d) == 0) {
                struct annotations a;
                if (annotations_parse(json_doc_root(d), &a, err, sizeof(err)) == 0) {
                        if (a.inject) {
                                check(a.secret_paths && a.secret_paths[0]);
                                if (a.containers)
                                        check_names(a.containers, a.n_containers);
                                if (a.command)
                                        check_command(a.command, a.n_command);
                                for (size_t i = 0; i < MIN(a.n_unknown, ANNOTATION_MAX_UNKNOWN);
                                     i++)
                                        check(strncmp(a.unknown[i], ANNOTATION_PREFIX,
                                                      strlen(ANNOTATION_PREFIX)) == 0);
                        } else
                                check(!a.containers && !a.command && !a.secret_paths);
                } else {
                        check_reason(err);
                        check(!a.containers && !a.command);
                }
                annotations_done(&a);
                /* Each string value through the value parsers too. */
                JSON_FOREACH(m, json_doc_root(d)) {
                        const char *s;
                        if (json_string(m, &s) == 0)
                                values(s);
                }
                return 0;
        }
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        values(s);
        free(s);
        return 0;
}
