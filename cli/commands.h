/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/commands: the commands of `cloudtaser` (docs/cli.md), one entry point per command, each in
 * the file of its group. main.c parses nothing but the command words and dispatches through the
 * table cli_commands[]: its help text, completion scripts and man page are generated from the
 * same table, so they cannot drift from what the program accepts.
 *
 * An entry point gets the arguments after the command words (argv[0] is the command's full name,
 * "target discover") and returns an exit status of common/exit-status.h (EX_OK, EX_USAGE for bad
 * flags, EX_DATAERR for an invalid plan, EX_UNAVAILABLE for a server that refused or is
 * unreachable...). It logs its own errors (common/log) and prints its output on stdout.
 */
#pragma once

#include <stddef.h>

struct cli_command {
        const char *group; /* "target", "source", or NULL for a top-level command */
        const char *name;  /* "discover" */
        const char *summary;
        const char *usage; /* the flags, one per line, "  --flag VALUE  what it does\n" */
        int (*run)(int argc, char **argv);
};

extern const struct cli_command cli_commands[];
extern const size_t cli_n_commands;

/* After getopt_long() returned '?' or ':': says on stderr which flag of `command` was bad or
 * unknown. Returns EX_USAGE. */
int cli_flag_error(const char *command, char **argv);
/* After the flags: EX_OK when no argument is left, else says so on stderr and returns EX_USAGE. */
int cli_no_arguments(const char *command, int argc, char **argv);

/* Prints the usage of one command (its summary and flags) on stdout. */
void cli_command_usage(const struct cli_command *c);

/* Entry points (each file names its own). */
int cli_version(int argc, char **argv);
int cli_target_discover(int argc, char **argv);    /* cli/discover.c */
int cli_completion(int argc, char **argv);         /* cli/help.c */
int cli_man(int argc, char **argv);                /* cli/help.c */
int cli_source_install(int argc, char **argv);     /* source.c */
int cli_source_configure(int argc, char **argv);   /* source.c */
int cli_target_connect(int argc, char **argv);     /* connect.c */
int cli_source_apply_plan(int argc, char **argv);  /* source-plan.c */
int cli_source_verify_plan(int argc, char **argv); /* source-plan.c */
int cli_target_protect(int argc, char **argv);     /* protect.c */
