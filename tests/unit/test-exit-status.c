/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for common/exit-status: the table itself (ordered, unique, the <sysexits.h> values),
 * and that each program's contract page lists exactly its program's statuses under the table's
 * names ("## Exit codes" in docs/wrapper.md, init.md, operator-reference.md, cli.md,
 * protocol-broker.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/exit-status.h"
#include "common/macro.h"
#include "tests/tap.h"

static void test_table(void) {
        int last = -1;
        size_t n = 0;
        bool ordered = true, named = true;
        for (const struct exit_status_row *r = exit_status_table; r->name; r++, n++) {
                ordered = ordered && r->status > last;
                named = named && r->meaning && *r->meaning && r->programs != 0;
                last = r->status;
        }
        ok(n >= 17, "the table has its %zu rows", n);
        ok(ordered, "ordered by status, each status once");
        ok(named, "every row has a meaning and a program");
        is_int(EX_USAGE, 64, "EX_USAGE is 64");
        is_int(EX_CONFIG, 78, "EX_CONFIG is 78");
        is_int(EXIT_SIGNAL(SIGTERM), 143, "EXIT_SIGNAL(SIGTERM) is 143");
        is_str(exit_status_name(EX_NOPERM), "EX_NOPERM", "77 is EX_NOPERM");
        is_str(exit_status_name(EXIT_NOT_FOUND), "EXIT_NOT_FOUND", "127 is EXIT_NOT_FOUND");
        is_str(exit_status_name(143), "EXIT_SIGNAL", "143 is a signal's");
        is_str(exit_status_name(255), "EXIT_SIGNAL", "255 is a signal's");
        ok(!exit_status_name(3), "3 is no program's");
        ok(!exit_status_name(256), "256 is no status");
        ok(!exit_status_name(-EINVAL), "an -errno is no status");
        ok(exit_status_used_by(EX_UNAVAILABLE, EXIT_PROGRAM_WRAPPER), "the wrapper exits 69");
        ok(!exit_status_used_by(EX_UNAVAILABLE, EXIT_PROGRAM_INIT), "init never exits 69");
        ok(!exit_status_used_by(EXIT_INVALIDARGUMENT, EXIT_PROGRAM_CLI), "the CLI never exits 2");
}

/* The cells of one markdown table row ("| a | b |"), trimmed, at most n. */
static size_t cells(char *line, char **cell, size_t n) {
        size_t k = 0;
        char *p = strchr(line, '|');
        while (p && k < n) {
                char *start = p + 1, *end = strchr(start, '|');
                if (!end)
                        break;
                *end = '\0';
                while (*start == ' ')
                        start++;
                for (char *e = end; e > start && e[-1] == ' ';)
                        *--e = '\0';
                cell[k++] = start;
                p = end;
        }
        return k;
}

/* "`EX_USAGE`" or "`EXIT_CANNOT_EXECUTE` / `EXIT_NOT_FOUND`": the i-th backticked name. */
static bool nth_name(const char *cell, size_t i, char *out, size_t n) {
        const char *p = cell;
        for (size_t k = 0;; k++) {
                const char *a = strchr(p, '`'), *b = a ? strchr(a + 1, '`') : NULL;
                if (!b)
                        return false;
                if (k == i) {
                        if ((size_t) (b - a - 1) >= n)
                                return false;
                        memcpy(out, a + 1, (size_t) (b - a - 1));
                        out[b - a - 1] = '\0';
                        return true;
                }
                p = b + 1;
        }
}

static void test_page(const char *page, unsigned program) {
        const char *top = getenv("CLOUDTASER_TOP");
        char path[4096];
        (void) snprintf(path, sizeof(path), "%s/docs/%s", top ? top : ".", page);
        _cleanup_buf_ struct buf text = BUF_INIT(1u << 20, 0);
        if (!ok(buf_read_file(&text, path) == 0, "%s: read", page))
                return;

        bool listed[256] = {}, in_section = false, in_table = false, names_ok = true;
        size_t rows = 0;
        for (char *save = NULL, *line = strtok_r(text.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#') {
                        if (in_table)
                                break;
                        in_section = strstr(line, "Exit codes") != NULL;
                        continue;
                }
                if (!in_section)
                        continue;
                if (line[0] != '|') {
                        if (in_table)
                                break;
                        continue;
                }
                in_table = true;
                char *cell[4];
                if (cells(line, cell, ELEMENTSOF(cell)) < 3 || strcmp(cell[0], "code") == 0 ||
                    cell[0][0] == '-' || strcmp(cell[0], "otherwise") == 0)
                        continue;
                /* "64", "126 / 127", "128+N" */
                size_t i = 0;
                for (char *p = cell[0]; *p; i++) {
                        char *end;
                        errno = 0;
                        long code = strtol(p, &end, 10);
                        if (errno || end == p || code < 0 || code > 255) {
                                ok(false, "%s: '%s' is a status", page, cell[0]);
                                return;
                        }
                        listed[code] = true;
                        char name[64];
                        if (!nth_name(cell[1], i, name, sizeof(name)) ||
                            !exit_status_name((int) code) ||
                            strcmp(name, exit_status_name((int) code)) != 0) {
                                diag("%s: %ld is named '%s', the table says %s", page, code,
                                     cell[1], exit_status_name((int) code) ?: "(none)");
                                names_ok = false;
                        }
                        p = end + strspn(end, " /+N");
                }
                rows++;
        }
        ok(rows > 0, "%s: has an exit-code table (%zu rows)", page, rows);
        ok(names_ok, "%s: every status under the table's name", page);
        bool same = true;
        for (int s = 0; s < 256; s++) {
                bool want = exit_status_used_by(s, program) && exit_status_lookup(s)->status == s;
                if (listed[s] != want) {
                        diag("%s: status %d is %s the page but %s the table's rows for it", page, s,
                             listed[s] ? "on" : "not on", want ? "in" : "not in");
                        same = false;
                }
        }
        ok(same, "%s: lists exactly its program's statuses", page);
}

int main(void) {
        test_table();
        test_page("wrapper.md", EXIT_PROGRAM_WRAPPER);
        test_page("init.md", EXIT_PROGRAM_INIT);
        test_page("operator-reference.md", EXIT_PROGRAM_OPERATOR);
        test_page("protocol-broker.md", EXIT_PROGRAM_BROKER);
        test_page("cli.md", EXIT_PROGRAM_CLI);
        return tap_done();
}
