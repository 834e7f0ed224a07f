/* SPDX-License-Identifier: Apache-2.0 */
/* cli/commands: the command table (see commands.h). Add a row here for each command. */
#include <stdio.h>
#include <sysexits.h>

#include "cli/commands.h"
#include "common/macro.h"

const struct cli_command cli_commands[] = {
        {NULL, "version", "print the version", "", cli_version},
        {"target", "discover",
         "scan a cluster's workloads for Secret use and write a migration plan",
         "  --kubeconfig FILE      kubeconfig file(s), ':'-separated (default $KUBECONFIG, then "
         "~/.kube/config)\n"
         "  --context NAME         kubeconfig context (default: its current-context)\n"
         "  -n, --namespace NS     scan one namespace (default: the context's namespace)\n"
         "  -A, --all-namespaces   scan every namespace but kube-system, kube-public, "
         "kube-node-lease\n"
         "  --cluster NAME         the cluster's name in the plan and the vault paths (default: "
         "the context's name)\n"
         "  --path-template T      vault path of a Secret (default "
         "secret/data/<cluster>/<namespace>/<secret>)\n"
         "  -o, --output FILE      write the plan to FILE ('-': stdout, the default; 'json': "
         "the JSON summary instead)\n"
         "  --summary text|json    print a summary on stdout (json: machine-readable)\n"
         "  -q, --quiet            no progress on stderr (shown only when it is a terminal)\n"
         "  --page-size N          objects per list request (default 250)\n",
         cli_target_discover},
        {NULL, "completion", "print a shell completion script (bash or zsh)",
         "  bash|zsh               the shell: eval \"$(cloudtaser completion bash)\", or save "
         "the zsh one as _cloudtaser in $fpath\n",
         cli_completion},
        {NULL, "man", "print the manual page (roff: cloudtaser man | man -l -)", "", cli_man},
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
