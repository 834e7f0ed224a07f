/* SPDX-License-Identifier: Apache-2.0 */
/* log: see log.h for the contract. The only module in common/ that writes to stderr. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"

static char program[65] = "?";
static enum log_format format = LOG_FORMAT_TEXT;
static enum log_level max_level = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_setup(const char *prog, enum log_format f, enum log_level max) {
        if (prog) {
                const char *slash = strrchr(prog, '/');
                (void) snprintf(program, sizeof(program), "%s", slash ? slash + 1 : prog);
        }
        format = f;
        max_level = max;
}

void log_set_fd(int fd) {
        log_fd = fd;
}

int log_level_from_string(const char *s, enum log_level *ret) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0) {
                        *ret = (enum log_level) i;
                        return 0;
                }
        if (strcasecmp(s, "warn") == 0) {
                *ret = LOG_WARNING;
                return 0;
        }
        return -EINVAL;
}

const char *log_level_to_string(enum log_level l) {
        return (unsigned) l < ELEMENTSOF(level_names) ? level_names[l] : "?";
}

int log_format_from_string(const char *s, enum log_format *ret) {
        if (s && strcasecmp(s, "text") == 0)
                *ret = LOG_FORMAT_TEXT;
        else if (s && strcasecmp(s, "json") == 0)
                *ret = LOG_FORMAT_JSON;
        else
                return -EINVAL;
        return 0;
}

/* A fixed line buffer that silently stops at its end (the line is then marked as cut). */
struct line {
        char b[LOG_LINE_MAX];
        size_t n;
        bool cut;
};

static void put(struct line *l, const char *s, size_t n) {
        size_t room = sizeof(l->b) - 5 - l->n; /* keep space for "...\n" and NUL */
        if (n > room) {
                n = room;
                l->cut = true;
        }
        memcpy(l->b + l->n, s, n);
        l->n += n;
}

static void puts_(struct line *l, const char *s) {
        put(l, s, strlen(s));
}

/* Appends s escaped: JSON string escapes in json mode; in text mode, control characters as
 * \n, \t, \xNN and (when quote) the value quoted if it has spaces, quotes or '='. */
static void put_escaped(struct line *l, const char *s, bool json, bool quote) {
        static const char hex[] = "0123456789abcdef";
        bool q = json || (quote && (!*s || strpbrk(s, " \"=\\") != NULL));
        if (q)
                put(l, "\"", 1);
        for (; *s && !l->cut; s++) {
                unsigned char ch = (unsigned char) *s;
                char e[7];
                if (ch == '\n')
                        put(l, "\\n", 2);
                else if (ch == '\t')
                        put(l, "\\t", 2);
                else if (ch == '\r')
                        put(l, "\\r", 2);
                else if ((ch == '"' || ch == '\\') && q)
                        put(l, (const char[]){'\\', (char) ch}, 2);
                else if (ch < 0x20 || ch == 0x7f) {
                        if (json) {
                                memcpy(e, "\\u00", 4);
                                e[4] = hex[ch >> 4];
                                e[5] = hex[ch & 15];
                                put(l, e, 6);
                        } else {
                                e[0] = '\\';
                                e[1] = 'x';
                                e[2] = hex[ch >> 4];
                                e[3] = hex[ch & 15];
                                put(l, e, 4);
                        }
                } else
                        put(l, (const char *) &ch, 1);
        }
        if (q)
                put(l, "\"", 1);
}

static void put_time(struct line *l) {
        struct timespec ts;
        struct tm tm;
        char t[40];
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
        (void) snprintf(t + n, sizeof(t) - n, ".%03ldZ", ts.tv_nsec / 1000000);
        puts_(l, t);
}

int log_eventv(enum log_level level, int error, const char *const *fields, const char *fmt,
               va_list ap) {
        int saved = errno;
        int ret = error < 0 ? error : -error;
        char msg[LOG_LINE_MAX];
        struct line l = {.n = 0};
        char pid[24];

        if (level > max_level)
                return ret;
        /* %m refers to `error` when one is given (the systemd convention). */
        errno = error ? (error < 0 ? -error : error) : saved;
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        errno = saved;
        (void) snprintf(pid, sizeof(pid), "%ld", (long) getpid());

        bool json = format == LOG_FORMAT_JSON;
        if (json) {
                puts_(&l, "{\"time\":\"");
                put_time(&l);
                puts_(&l, "\",\"level\":\"");
                puts_(&l, log_level_to_string(level));
                puts_(&l, "\",\"program\":");
                put_escaped(&l, program, true, true);
                puts_(&l, ",\"pid\":");
                puts_(&l, pid);
                puts_(&l, ",\"msg\":");
                put_escaped(&l, msg, true, true);
                for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
                        puts_(&l, ",");
                        put_escaped(&l, fields[i], true, true);
                        puts_(&l, ":");
                        put_escaped(&l, fields[i + 1], true, true);
                }
                if (l.cut) {
                        /* Keep the line valid JSON: restart with the message cut short. */
                        l.n = 0;
                        l.cut = false;
                        puts_(&l, "{\"level\":\"");
                        puts_(&l, log_level_to_string(level));
                        puts_(&l, "\",\"program\":");
                        put_escaped(&l, program, true, true);
                        puts_(&l, ",\"truncated\":true,\"msg\":");
                        msg[LOG_LINE_MAX / 2] = '\0';
                        put_escaped(&l, msg, true, true);
                }
                puts_(&l, "}");
        } else {
                put_time(&l);
                puts_(&l, " ");
                put_escaped(&l, program, false, false);
                puts_(&l, "[");
                puts_(&l, pid);
                puts_(&l, "]: ");
                if (level != LOG_INFO) {
                        puts_(&l, log_level_to_string(level));
                        puts_(&l, ": ");
                }
                put_escaped(&l, msg, false, false);
                for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
                        puts_(&l, " ");
                        put_escaped(&l, fields[i], false, false);
                        puts_(&l, "=");
                        put_escaped(&l, fields[i + 1], false, true);
                }
        }
        if (l.cut)
                memcpy(l.b + l.n, "...", 3), l.n += 3;
        l.b[l.n++] = '\n';

        for (size_t off = 0; off < l.n;) {
                ssize_t w = write(log_fd, l.b + off, l.n - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break;
                off += (size_t) w;
        }
        explicit_bzero(msg, sizeof(msg));
        errno = saved;
        return ret;
}

int log_event(enum log_level level, int error, const char *const *fields, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_eventv(level, error, fields, fmt, ap);
        va_end(ap);
        return r;
}
