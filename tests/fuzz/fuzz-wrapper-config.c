/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the wrapper's configuration parsers (untrusted: pod annotations become these
 * variables). Input: "<paths>\n<env map>\n<command>\n<duration>". Properties: every accepted path
 * list is within limits and each path non-empty and free of "..", every mapped name is a valid
 * variable name and no name is mapped twice, an accepted command has 1..CONFIG_MAX_ARGS non-NULL
 * arguments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper/config.h"

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
        struct secret_spec *specs = NULL;
        size_t n = 0;
        struct config_error err;

        if (config_parse_paths(paths, &specs, &n, &err) == 0) {
                if (n == 0 || n > CONFIG_MAX_PATHS)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (!specs[i].path[0] || strstr(specs[i].path, "..") ||
                            !specs[i].all_fields)
                                abort();
                if (config_parse_env_map(map, specs, n, &err) == 0)
                        for (size_t i = 0; i < n; i++)
                                for (size_t j = 0; j < specs[i].n_maps; j++) {
                                        const char *e = specs[i].maps[j].env;
                                        if (!config_env_name_valid(e, strlen(e)) ||
                                            !specs[i].maps[j].field[0])
                                                abort();
                                        for (size_t k = i; k < n; k++)
                                                for (size_t l = (k == i ? j + 1 : 0);
                                                     l < specs[k].n_maps; l++)
                                                        if (strcmp(e, specs[k].maps[l].env) == 0)
                                                                abort();
                                }
                for (size_t i = 0; i < n; i++) {
                        free(specs[i].path);
                        for (size_t j = 0; j < specs[i].n_maps; j++) {
                                free(specs[i].maps[j].field);
                                free(specs[i].maps[j].env);
                        }
                        free(specs[i].maps);
                }
                free(specs);
        }
        char **argv = NULL;
        size_t argc = 0;
        if (config_parse_command(cmd, &argv, &argc, &err) == 0) {
                if (argc == 0 || argc > CONFIG_MAX_ARGS || argv[argc] != NULL)
                        abort();
                for (size_t i = 0; i < argc; i++) {
                        if (!argv[i])
                                abort();
                        free(argv[i]);
                }
                free(argv);
        }
        uint64_t ms;
        (void) config_parse_duration_ms(dur, &ms);
        char name[CONFIG_MAX_NAME + 2];
        if (config_field_to_env(map, name, sizeof(name)) == 0 &&
            !config_env_name_valid(name, strlen(name)))
                abort();
        free(paths);
        free(map);
        free(cmd);
        free(dur);
        return 0;
}
