/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "common/error-report.h"

int error_report_setv(struct error_report *e, int cause, int status, const char *fmt, va_list ap) {
        if (!e)
                return cause;
        e->cause = cause;
        e->status = status;
        if (vsnprintf(e->message, sizeof(e->message), fmt, ap) < 0)
                e->message[0] = '\0';
        for (char *p = e->message; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        return cause;
}

int error_report_set(struct error_report *e, int cause, int status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = error_report_setv(e, cause, status, fmt, ap);
        va_end(ap);
        return r;
}
