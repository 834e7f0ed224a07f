/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloudtaser: the plan-file workflow between vault and clusters (docs/cli.md). This file finds
 * the command from the first one or two words and runs it (cli/commands.h); `help` and --help
 * print the table's text.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/exit-status.h"
#include "common/log.h"

static void usage(FILE *f) {
        fprintf(f, "usage: cloudtaser <command> [flags]   (cloudtaser help <command> for its "
                   "flags)\n\n"
                   "commands:\n");
        for (size_t i = 0; i < cli_n_commands; i++) {
                const struct cli_command *c = &cli_commands[i];
                char name[64];
                (void) snprintf(name, sizeof(name), "%s%s%s", c->group ? c->group : "",
                                c->group ? " " : "", c->name);
                fprintf(f, "  %-24s %s\n", name, c->summary);
        }
        fprintf(f, "  %-24s %s\n", "help [command]", "this text, or a command's flags");
}

/* The command named by argv[0] (and argv[1] for a group); *used: how many words it took. */
static const struct cli_command *find(int argc, char **argv, int *used) {
        for (size_t i = 0; i < cli_n_commands; i++) {
                const struct cli_command *c = &cli_commands[i];
                if (!c->group && argc >= 1 && strcmp(argv[0], c->name) == 0) {
                        *used = 1;
                        return c;
                }
                if (c->group && argc >= 2 && strcmp(argv[0], c->group) == 0 &&
                    strcmp(argv[1], c->name) == 0) {
                        *used = 2;
                        return c;
                }
        }
        return NULL;
}

static bool wants_help(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        return false;
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
                        return true;
        }
        return false;
}

int main(int argc, char **argv) {
        log_setup("cloudtaser", LOG_FORMAT_TEXT, LOG_INFO);
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EX_USAGE : EX_OK;
        }
        if (strcmp(argv[1], "--version") == 0)
                return cli_version(1, argv + 1);
        if (strcmp(argv[1], "help") == 0) {
                int used = 0;
                const struct cli_command *c = argc > 2 ? find(argc - 2, argv + 2, &used) : NULL;
                if (argc == 2) {
                        usage(stdout);
                        return EX_OK;
                }
                if (!c) {
                        fprintf(stderr, "cloudtaser: no command '%s'\n", argv[2]);
                        return EX_USAGE;
                }
                cli_command_usage(c);
                return EX_OK;
        }
        int used = 0;
        const struct cli_command *c = find(argc - 1, argv + 1, &used);
        if (!c) {
                fprintf(stderr, "cloudtaser: no command '%s'\n\n", argv[1]);
                usage(stderr);
                return EX_USAGE;
        }
        if (wants_help(argc - 1 - used, argv + 1 + used)) {
                cli_command_usage(c);
                return EX_OK;
        }
        /* The command gets its own words as argv[0] (kept as given). */
        return c->run(argc - used, argv + used);
}
