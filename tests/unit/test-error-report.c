/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/error-report: the fields, the returned cause, truncation, control
 * characters replaced, a NULL report. */
#include <errno.h>
#include <string.h>

#include "common/error-report.h"
#include "common/exit-status.h"
#include "tests/tap.h"

int main(void) {
        struct error_report e = {};
        is_int(error_report_set(&e, -ENOENT, EX_DATAERR, "field '%s' is not in %s", "password",
                                "secret/data/db"),
               -ENOENT, "returns the cause");
        is_int(e.cause, -ENOENT, "the cause");
        is_int(e.status, EX_DATAERR, "the status");
        is_str(e.message, "field 'password' is not in secret/data/db", "the message");

        is_int(error_report_set(&e, -EPERM, 403, "%s", "a\nforged: line\tand\x7f"), -EPERM,
               "returns the cause");
        is_str(e.message, "a?forged: line?and?", "control characters become '?'");
        is_int(e.status, 403, "an HTTP status");

        char long_name[2 * ERROR_REPORT_MESSAGE_MAX];
        memset(long_name, 'x', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        (void) error_report_set(&e, -E2BIG, EX_USAGE, "name %s", long_name);
        is_int(strlen(e.message), ERROR_REPORT_MESSAGE_MAX - 1, "truncated to the size");
        ok(strncmp(e.message, "name xxx", 8) == 0, "from its start");

        is_int(error_report_set(NULL, -EIO, EX_UNAVAILABLE, "no report"), -EIO,
               "a NULL report: the cause still returned");
        ok(e.cause == -E2BIG && strncmp(e.message, "name xxx", 8) == 0,
           "and no other report is written");
        return tap_done();
}
