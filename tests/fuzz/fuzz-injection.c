/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the injection contract's list parsers (common/injection.h; untrusted: pod
 * annotations become these variables). Input: "<paths>\n<env map>\n<command>\n<duration>".
 * Properties: every accepted path list is within limits and each path a valid vault path
 * (vault_path_valid(): no empty, "." or ".." segment), every mapped name is a valid variable name,
 * not the wrapper's own, and no name is mapped twice; an accepted command has
 * 1..INJECTION_MAX_ARGS non-NULL arguments; a refusal names its row with a printable reason. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/injection.h"
#include "common/strv.h"
#include "common/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *take_line(const uint8_t **p, const uint8_t *end) {
        const uint8_t *nl = memchr(*p, '\n', (size_t) (end - *p));
        size_t n = nl ? (size_t) (nl - *p) : (size_t) (end - *p);
        char *s = malloc(n + 1);
        if (!s)
                abort();
        memcpy(s, *p, n);
        s[n] = '\0';
        *p = nl ? nl + 1 : end;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        char *paths = take_line(&p, end), *map = take_line(&p, end), *cmd = take_line(&p, end),
             *dur = take_line(&p, end);
        struct injection_secret *specs = NULL;
        size_t n = 0;
        struct injection_error err = {};
        char text[INJECTION_REASON_MAX + 64];

        int r = injection_parse_secret_paths(paths, &specs, &n, &err);
        if (r == -EINVAL) {
                (void) injection_error_format(&err, true, text, sizeof(text));
                if (!err.variable || strcmp(err.variable->name, "CLOUDTASER_SECRET_PATHS") != 0)
                        abort();
                for (const char *c = text; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                abort();
        } else if (r == 0) {
                if (n == 0 || n > INJECTION_MAX_PATHS)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (!specs[i].path[0] || strstr(specs[i].path, "..") ||
                            !vault_path_valid(specs[i].path) || !specs[i].all_fields)
                                abort();
                if (injection_parse_env_map(map, specs, n, &err) == 0)
                        for (size_t i = 0; i < n; i++)
                                for (size_t j = 0; j < specs[i].n_maps; j++) {
                                        const char *e = specs[i].maps[j].env;
                                        if (!injection_env_name_valid(e, strlen(e)) ||
                                            injection_is_wrapper_variable(e) ||
                                            !specs[i].maps[j].field[0])
                                                abort();
                                        for (size_t k = i; k < n; k++)
                                                for (size_t l = (k == i ? j + 1 : 0);
                                                     l < specs[k].n_maps; l++)
                                                        if (strcmp(e, specs[k].maps[l].env) == 0)
                                                                abort();
                                }
                injection_secrets_free(specs, n);
        }
        char **argv = NULL;
        size_t argc = 0;
        if (injection_parse_command(cmd, &argv, &argc, &err) == 0) {
                if (argc == 0 || argc > INJECTION_MAX_ARGS || argv[argc] != NULL)
                        abort();
                for (size_t i = 0; i < argc; i++)
                        if (!argv[i])
                                abort();
                (void) strv_free(argv);
        }
        uint64_t ms;
        (void) injection_parse_duration_ms(dur, &ms);
        char name[INJECTION_MAX_NAME + 2];
        if (injection_field_to_env(map, name, sizeof(name)) == 0 &&
            !injection_env_name_valid(name, strlen(name)))
                abort();
        free(paths);
        free(map);
        free(cmd);
        free(dur);
        return 0;
}
