/* SPDX-License-Identifier: Apache-2.0 */
/* cli/commands: the command table (see commands.h). Add a row here for each command. */
#include <getopt.h>
#include <stdio.h>

#include "cli/commands.h"
#include "cli/source.h"
#include "common/exit-status.h"
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
         "  --page-size N          objects per list request (default 250)\n"
         "  --api-encoding E       how workload lists are asked for: protobuf (the default:\n"
         "                         the API server encodes it fastest) or json\n",
         cli_target_discover},
        {"target", "protect",
         "migrate the plan's pending workloads: annotate their pod templates, drop their Secret "
         "references, wait for the rollout, record the status in the plan",
         "  --plan FILE            the migration plan (its statuses are updated in place)\n"
         "  --interactive          show each workload's mapping and ask [y/N/q] on the terminal\n"
         "  --yes                  migrate every pending workload without asking\n"
         "  --vault-address URL    the cloudtaser.io/vault-address annotation (default: the "
         "operator's)\n"
         "  --vault-role ROLE      the vault role (default: the tenant's, " SOURCE_TENANT_PREFIX
         "<namespace>)\n"
         "  --kubeconfig F         the cluster (else KUBECONFIG, ~/.kube/config)\n"
         "  --context C            a kubeconfig context (else current-context)\n"
         "  --timeout D            how long a rollout may take (default 5m)\n",
         cli_target_protect},
        {NULL, "completion", "print a shell completion script (bash or zsh)",
         "  bash|zsh               the shell: eval \"$(cloudtaser completion bash)\", or save "
         "the zsh one as _cloudtaser in $fpath\n",
         cli_completion},
        {NULL, "man", "print the manual page (roff: cloudtaser man | man -l -)", "", cli_man},
        {"source", "install",
         "initialise and unseal a vault; print its unseal keys and root token once, on the "
         "terminal",
         "  --key-shares N        Shamir key shares (default 5)\n"
         "  --key-threshold M     keys needed to unseal (default 3)\n"
         "  --force-output-to-non-terminal  print the keys although stdout is not a terminal\n"
         "  --output-file F --force         write them to a new file F (mode 0600) "
         "instead\n" SOURCE_VAULT_USAGE,
         cli_source_install},
        {"source", "configure",
         "enable KV v2 at secret/ and the Kubernetes auth method, write the operator's policy "
         "and role (idempotent)",
         "  --dry-run             print what would change, change nothing\n"
         "  --auth-mount M        the Kubernetes auth method's path (default kubernetes)\n"
         "  --audience A          the audience the role requires (default " SOURCE_DEFAULT_AUDIENCE
         ")\n" SOURCE_VAULT_USAGE,
         cli_source_configure},
        {"source", "apply-plan",
         "create or update each tenant's read-only policy and Kubernetes auth role from a plan "
         "(idempotent)",
         "  PLAN                  the plan file\n"
         "  --dry-run             print a diff of what would change, change nothing\n"
         "  --auth-mount M        the Kubernetes auth method's path (default kubernetes)\n"
         "  --audience A          the audience the roles require (default " SOURCE_DEFAULT_AUDIENCE
         ")\n" SOURCE_VAULT_USAGE,
         cli_source_apply_plan},
        {"source", "verify-plan",
         "check that every plan path holds its fields and, --as-workload, that each role reads "
         "exactly the plan's paths",
         "  PLAN                  the plan file\n"
         "  -o, --output FORMAT   table (default) or json\n"
         "  --as-workload         log in as each tenant's service accounts (TokenRequest) and "
         "prove their access\n"
         "  --kubeconfig F        the cluster, for --as-workload (else KUBECONFIG, "
         "~/.kube/config)\n"
         "  --context C           a kubeconfig context\n"
         "  --auth-mount M        the Kubernetes auth method's path (default kubernetes)\n"
         "  --audience A          the audience of the tokens asked for "
         "(default " SOURCE_DEFAULT_AUDIENCE ")\n" SOURCE_VAULT_USAGE,
         cli_source_verify_plan},
        {"target", "connect",
         "make the vault's Kubernetes auth method accept this cluster's service-account tokens "
         "(idempotent)",
         "  --kubeconfig F        the cluster (else KUBECONFIG, ~/.kube/config)\n"
         "  --context C           a kubeconfig context (else current-context)\n"
         "  --auth-mount M        the Kubernetes auth method's path (default kubernetes)\n"
         "  --reviewer-ttl S      the reviewer token's lifetime in seconds (default one "
         "year)\n"
         "  --reviewer-namespace NS  the reviewer's namespace (default cloudtaser-system)\n"
         "  --reviewer NAME       the reviewer service account and its ClusterRoleBinding "
         "(default cloudtaser-token-reviewer)\n" SOURCE_VAULT_USAGE,
         cli_target_connect},
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

int cli_flag_error(const char *command, char **argv) {
        fprintf(stderr, "cloudtaser %s: %s '%s' (see --help)\n", command,
                optopt ? "bad or incomplete flag" : "unknown flag", argv[optind - 1]);
        return EX_USAGE;
}

int cli_no_arguments(const char *command, int argc, char **argv) {
        if (optind >= argc)
                return EX_OK;
        fprintf(stderr, "cloudtaser %s: unexpected argument '%s'\n", command, argv[optind]);
        return EX_USAGE;
}
