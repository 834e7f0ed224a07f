/* SPDX-License-Identifier: Apache-2.0 */
/* cli/commands: the command table (see commands.h). Add a row here for each command. */
#include <stdio.h>
#include <sysexits.h>

#include "cli/commands.h"
#include "common/macro.h"

const struct cli_command cli_commands[] = {
        {NULL, "version", "print the version", "", cli_version},
};
const size_t cli_n_commands = ELEMENTSOF(cli_commands);

void cli_command_usage(const struct cli_command *c) {
        printf("usage: cloudtaser %s%s%s [flags]\n  %s\n%s%s", c->group ? c->group : "",
               c->group ? " " : "", c->name, c->summary, c->usage[0] ? "flags:\n" : "", c->usage);
}

int cli_version(int argc, char **argv) {
        if (argc > 1) {
                fprintf(stderr, "cloudtaser version: unexpected argument '%s'\n", argv[1]);
                return EX_USAGE;
        }
        printf("cloudtaser %s\n", CLOUDTASER_VERSION);
        return EX_OK;
}
