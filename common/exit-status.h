/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exit-status: the one table of the statuses cloudtaser's programs exit with (the systemd
 * exit-status.h idea). The names are <sysexits.h>'s (EX_USAGE 64 ... EX_CONFIG 78), plus the
 * LSB/shell ones no header names: EXIT_FAILURE 1, EXIT_INVALIDARGUMENT 2 (the operator),
 * EXIT_CANNOT_EXECUTE 126 and EXIT_NOT_FOUND 127 (the wrapper's exec), and 128 + N for a
 * terminating signal N (EXIT_SIGNAL(SIGTERM) is 143).
 *
 * Each row says which programs exit with it (EXIT_PROGRAM_*): every program's contract page has an
 * "Exit codes" table, and tests/unit/test-exit-status.c checks that each page lists exactly the
 * statuses of its program's rows, under the row's name. The meaning here is the generic one; the
 * page says when its program uses it.
 *
 * An exit status is never carried through the -errno channel of common/ (a function of common/
 * returns -errno; a program maps it to one of these at its boundary).
 */
#pragma once

#include <stdbool.h>
#include <stdlib.h>   /* EXIT_SUCCESS, EXIT_FAILURE */
#include <sysexits.h> /* EX_OK, EX_USAGE ... EX_CONFIG */

#define EXIT_INVALIDARGUMENT 2  /* LSB: invalid or excess arguments (the operator's usage) */
#define EXIT_CANNOT_EXECUTE 126 /* the command exists but could not be executed (shells' 126) */
#define EXIT_NOT_FOUND 127      /* the command was not found (shells' 127) */
#define EXIT_SIGNAL_BASE 128
#define EXIT_SIGNAL(sig) (EXIT_SIGNAL_BASE + (sig)) /* killed by, or stopping on, signal sig */

enum exit_program {
        EXIT_PROGRAM_WRAPPER = 1u << 0,  /* cloudtaser-wrapper (its broker client included) */
        EXIT_PROGRAM_INIT = 1u << 1,     /* cloudtaser-init */
        EXIT_PROGRAM_OPERATOR = 1u << 2, /* cloudtaser-operator */
        EXIT_PROGRAM_BROKER = 1u << 3,   /* cloudtaser-broker */
        EXIT_PROGRAM_CLI = 1u << 4,      /* cloudtaser (the CLI) */
};

struct exit_status_row {
        int status;          /* 0..255; EXIT_SIGNAL_BASE stands for every 128 + N */
        const char *name;    /* "EX_USAGE", "EXIT_SIGNAL" */
        const char *meaning; /* one line, generic */
        unsigned programs;   /* EXIT_PROGRAM_* that exit with it */
};

/* The table, ordered by status, terminated by a row with name NULL. Static storage. */
extern const struct exit_status_row exit_status_table[];

/* The row of a status (128..255 give the EXIT_SIGNAL row), or NULL for a status no program
 * uses. */
const struct exit_status_row *exit_status_lookup(int status);

/* The row's name, or NULL. */
const char *exit_status_name(int status);

/* Whether `program` (one EXIT_PROGRAM_*) exits with `status`. */
bool exit_status_used_by(int status, unsigned program);
