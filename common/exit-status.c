/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>

#include "common/exit-status.h"

#define W EXIT_PROGRAM_WRAPPER
#define I EXIT_PROGRAM_INIT
#define O EXIT_PROGRAM_OPERATOR
#define B EXIT_PROGRAM_BROKER
#define C EXIT_PROGRAM_CLI

const struct exit_status_row exit_status_table[] = {
        {EX_OK, "EX_OK", "success", I | O | B | C},
        {EXIT_FAILURE, "EXIT_FAILURE", "a run-time failure", O | B},
        {EXIT_INVALIDARGUMENT, "EXIT_INVALIDARGUMENT", "usage or configuration", O},
        {EX_USAGE, "EX_USAGE", "the command was used incorrectly (a flag, an argument, a variable)",
         W | I | B | C},
        {EX_DATAERR, "EX_DATAERR", "the input data was incorrect (missing or invalid)", W | I | C},
        {EX_NOINPUT, "EX_NOINPUT", "an input file did not exist or was not readable", I | C},
        {EX_UNAVAILABLE, "EX_UNAVAILABLE", "a service is unavailable", W | C},
        {EX_SOFTWARE, "EX_SOFTWARE", "an internal software error", W | I | C},
        {EX_OSERR, "EX_OSERR", "an operating system error (out of memory)", C},
        {EX_CANTCREAT, "EX_CANTCREAT", "an output file cannot be created", I | C},
        {EX_IOERR, "EX_IOERR", "an error doing I/O on a file", I | C},
        {EX_PROTOCOL, "EX_PROTOCOL", "the remote system answered something not understood", C},
        {EX_NOPERM, "EX_NOPERM", "permission denied", W | I | C},
        {EX_CONFIG, "EX_CONFIG", "a configuration error", B | C},
        {EXIT_CANNOT_EXECUTE, "EXIT_CANNOT_EXECUTE", "the command could not be executed", W},
        {EXIT_NOT_FOUND, "EXIT_NOT_FOUND", "the command was not found", W},
        {EXIT_SIGNAL_BASE, "EXIT_SIGNAL", "128 + N: terminating signal N", W},
        {},
};

#undef W
#undef I
#undef O
#undef B
#undef C

const struct exit_status_row *exit_status_lookup(int status) {
        if (status > EXIT_SIGNAL_BASE && status <= 255)
                status = EXIT_SIGNAL_BASE;
        for (const struct exit_status_row *r = exit_status_table; r->name; r++)
                if (r->status == status)
                        return r;
        return NULL;
}

const char *exit_status_name(int status) {
        const struct exit_status_row *r = exit_status_lookup(status);
        return r ? r->name : NULL;
}

bool exit_status_used_by(int status, unsigned program) {
        const struct exit_status_row *r = exit_status_lookup(status);
        return r && (r->programs & program);
}
