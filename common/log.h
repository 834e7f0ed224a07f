/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: the programs' logging (common/ modules never log; programs log once, at the boundary).
 *
 * One event = one line on stderr, written with a single write(2) so lines from several processes
 * sharing the stream never interleave (lines are capped at LOG_LINE_MAX bytes, longer messages
 * are cut and end with "..."). Two formats:
 *   text:  2026-11-26T10:15:00.123Z cloudtaser-wrapper[42]: warning: message key=value key="a b"
 *   json:  {"time":"2026-11-26T10:15:00.123Z","level":"warning","program":"cloudtaser-wrapper",
 *           "pid":42,"msg":"message","key":"value"}
 * Control characters in messages and values are escaped (no log injection through a vault error
 * text or an annotation). Levels: error < warning < notice < info < debug; events above the
 * configured maximum are dropped.
 *
 * Never pass a secret value, a token or a private key: log names and lengths. errno-style
 * helpers: log_error_errno(r, "Failed to read '%s': %m", path) sets errno from r for %m and
 * returns -|r| (so `return log_error_errno(r, ...)` propagates the error).
 *
 * Thread-safe (the configuration is set once, before threads start).
 */
#pragma once

#include <stdarg.h>

#define LOG_LINE_MAX 4096

enum log_level {
        LOG_ERR = 0,
        LOG_WARNING,
        LOG_NOTICE,
        LOG_INFO,
        LOG_DEBUG,
};

enum log_format {
        LOG_FORMAT_TEXT = 0,
        LOG_FORMAT_JSON,
};

/* Sets the program name (copied, at most 64 bytes), format and maximum level. Defaults: "?",
 * text, info. The fd defaults to 2 (tests may redirect it). */
void log_setup(const char *program, enum log_format format, enum log_level max_level);
void log_set_fd(int fd);

/* "error" | "warning" (or "warn") | "notice" | "info" | "debug" -> 0 or -EINVAL. */
int log_level_from_string(const char *s, enum log_level *ret);
const char *log_level_to_string(enum log_level l);
/* "text" | "json" -> 0 or -EINVAL. */
int log_format_from_string(const char *s, enum log_format *ret);

/* Logs one event. `error` (a -errno or errno, or 0) feeds %m. Extra fields: `fields` is a
 * NULL-terminated list of key, value string pairs (may be NULL); keys are [a-z0-9_] words.
 * Returns -|error| (or 0 when error is 0), never fails. */
int log_event(enum log_level level, int error, const char *const *fields, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int log_eventv(enum log_level level, int error, const char *const *fields, const char *fmt,
               va_list ap) __attribute__((format(printf, 4, 0)));

#define log_error(...) log_event(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_event(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_notice(...) log_event(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_info(...) log_event(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...) log_event(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_error_errno(r, ...) log_event(LOG_ERR, (r), NULL, __VA_ARGS__)
#define log_warning_errno(r, ...) log_event(LOG_WARNING, (r), NULL, __VA_ARGS__)
#define log_info_errno(r, ...) log_event(LOG_INFO, (r), NULL, __VA_ARGS__)
#define log_debug_errno(r, ...) log_event(LOG_DEBUG, (r), NULL, __VA_ARGS__)
