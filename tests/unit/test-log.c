/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/log: formats, levels, escaping, truncation, %m. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "tests/tap.h"

static int pipefd[2] = {-1, -1};

/* Reads what the logger wrote since the last call. */
static const char *captured(void) {
        static char out[LOG_LINE_MAX * 2];
        ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
        out[n > 0 ? n : 0] = '\0';
        return out;
}

static void test_text(void) {
        log_setup("/usr/bin/cloudtaser-test", LOG_FORMAT_TEXT, LOG_INFO);
        log_info("hello %s", "world");
        const char *o = captured();
        ok(strstr(o, " cloudtaser-test[") && strstr(o, "]: hello world\n"),
           "text line has program, pid and message");
        ok(o[4] == '-' && o[10] == 'T' && strstr(o, "Z "),
           "text line starts with an RFC 3339 UTC time");

        log_debug("not shown");
        is_str(captured(), "", "debug is dropped at level info");

        log_warning("careful");
        ok(strstr(captured(), "]: warning: careful\n") != NULL, "warning carries its level");

        log_info("line1\nline2\tx\x01y");
        o = captured();
        ok(strstr(o, "line1\\nline2\\tx\\x01y\n") != NULL, "control characters are escaped");
        ok(strchr(o, '\n') == o + strlen(o) - 1, "exactly one newline per event");

        const char *fields[] = {"path", "secret/data/app", "reason", "a b=\"c\"", NULL};
        log_event(LOG_NOTICE, 0, fields, "read");
        o = captured();
        ok(strstr(o, "notice: read path=secret/data/app reason=\"a b=\\\"c\\\"\"\n") != NULL,
           "fields are key=value, quoted when needed");

        int r = log_error_errno(-ENOENT, "open '%s': %m", "/x");
        is_int(r, -ENOENT, "log_error_errno returns the negative errno");
        ok(strstr(captured(), "error: open '/x': No such file or directory") != NULL,
           "%%m uses the given error");
        is_int(log_error_errno(EACCES, "x"), -EACCES, "positive errno is negated");
        (void) captured();
}

static void test_json(void) {
        log_setup("ct", LOG_FORMAT_JSON, LOG_DEBUG);
        const char *fields[] = {"mechanism", "mlock", NULL};
        log_event(LOG_INFO, 0, fields, "quote \" backslash \\ ctl \x02");
        const char *o = captured();
        ok(strncmp(o, "{\"time\":\"", 9) == 0, "json line starts with time");
        ok(strstr(o, "\"level\":\"info\",\"program\":\"ct\",\"pid\":") != NULL,
           "json level/program/pid");
        ok(strstr(o, "\"msg\":\"quote \\\" backslash \\\\ ctl \\u0002\"") != NULL, "json escapes");
        ok(strstr(o, ",\"mechanism\":\"mlock\"}\n") != NULL, "json extra field");
        log_debug("dbg");
        ok(strstr(captured(), "\"level\":\"debug\"") != NULL, "debug shown at level debug");

        char big[LOG_LINE_MAX * 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        log_info("%s", big);
        o = captured();
        size_t n = strlen(o);
        ok(n <= LOG_LINE_MAX + 1 && o[n - 1] == '\n', "an oversized event is cut to one line (%zu)",
           n);
        ok(strstr(o, "\"truncated\":true") != NULL && o[n - 2] == '}',
           "a cut json line stays valid json and says so");
}

static void test_parse(void) {
        enum log_level l;
        enum log_format f;
        ok(log_level_from_string("debug", &l) == 0 && l == LOG_DEBUG, "parse debug");
        ok(log_level_from_string("WARN", &l) == 0 && l == LOG_WARNING, "parse WARN");
        is_int(log_level_from_string("loud", &l), -EINVAL, "unknown level");
        ok(log_format_from_string("json", &f) == 0 && f == LOG_FORMAT_JSON, "parse json");
        is_int(log_format_from_string("xml", &f), -EINVAL, "unknown format");
        is_str(log_level_to_string(LOG_ERR), "error", "level name");
}

int main(void) {
        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
                return 1;
        log_set_fd(pipefd[1]);
        test_text();
        test_json();
        test_parse();
        return tap_done();
}
