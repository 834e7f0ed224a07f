/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error-report: the one shape of "why it failed" a program logs (crun's libcrun_error_t, without
 * the allocation): the -errno cause, the status the program answers with, and one line of text.
 *
 * Fixed size, never allocates, caller-owned (usually on the stack). Filled by the function that
 * failed, through error_report_set(), and logged once by the program at its boundary: common/
 * never logs, so a module of common/ or of a program fills one and returns the cause.
 *
 * The message never holds a secret: it names paths, fields, variables and lengths, never a
 * value; error_report_set() replaces control characters (a newline could forge a second log
 * line) with '?' and truncates to ERROR_REPORT_MESSAGE_MAX - 1 bytes.
 */
#pragma once

#include <stdarg.h>

#include "common/macro.h"

#define ERROR_REPORT_MESSAGE_MAX 512

struct error_report {
        int cause;  /* the -errno the call returned; 0 when nothing failed */
        int status; /* what the program answers with: an exit status (common/exit-status.h) or an
                     * HTTP status, as the function's header says; 0 when none */
        char message[ERROR_REPORT_MESSAGE_MAX]; /* one line, printable, never a secret; "" */
};

/* Fills *e when e is not NULL: cause, status and the formatted message. Returns cause, so that a
 * failing function ends with `return error_report_set(err, -ENOENT, EX_DATAERR, "...", ...);`.
 * Never pass a secret as an argument. */
int error_report_set(struct error_report *e, int cause, int status, const char *fmt, ...)
        _printf_(4, 5);
int error_report_setv(struct error_report *e, int cause, int status, const char *fmt, va_list ap)
        _printf_(4, 0);
