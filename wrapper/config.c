/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/config: see config.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error-report.h"
#include "common/exit-status.h"
#include "common/injection.h"
#include "common/strv.h"
#include "wrapper/config.h"

/* The contract's error as the wrapper's report: the variable and the reason (-EINVAL), or
 * "out of memory". */
static int fail(struct error_report *err, int r, const struct injection_error *e) {
        char reason[CONFIG_REASON_MAX] = "out of memory";
        if (r == -EINVAL)
                (void) injection_error_format(e, false, reason, sizeof(reason));
        return error_report_set(err, r, EX_USAGE, "%s", reason);
}

int config_parse(injection_getenv_fn getenv_fn, void *userdata, int argc, char *const *argv,
                 struct wrapper_config *ret, struct error_report *err) {
        struct injection_settings s;
        struct injection_error e = {};
        char **cmd = NULL;
        size_t n_cmd = 0;
        bool owned = false;
        int r;

        r = injection_settings_parse(getenv_fn, userdata, &s, &e);
        if (r < 0)
                return fail(err, r, &e);

        /* The command: after "--", else the arguments, else CLOUDTASER_ORIGINAL_CMD. */
        int first = 1;
        if (argc > 1 && strcmp(argv[1], "--") == 0)
                first = 2;
        if (argc > first) {
                if ((size_t) (argc - first) > CONFIG_MAX_ARGS) {
                        injection_settings_done(&s);
                        return error_report_set(err, -EINVAL, EX_USAGE, "more than %d arguments",
                                                CONFIG_MAX_ARGS);
                }
                cmd = (char **) argv + first;
                n_cmd = (size_t) (argc - first);
        } else if (s.original_cmd) {
                r = injection_parse_command(s.original_cmd, &cmd, &n_cmd, &e);
                if (r < 0) {
                        injection_settings_done(&s);
                        return fail(err, r, &e);
                }
                owned = true;
        } else {
                injection_settings_done(&s);
                return error_report_set(err, -EINVAL, EX_USAGE,
                                        "no command: give it after '--' or in "
                                        "CLOUDTASER_ORIGINAL_CMD");
        }

        *ret = (struct wrapper_config){
                .env = s,
                .sealed = injection_settings_sealed(&s),
                .argv = cmd,
                .argc = n_cmd,
                .argv_owned = owned,
        };
        return 0;
}

void config_done(struct wrapper_config *c) {
        if (!c)
                return;
        injection_settings_done(&c->env);
        if (c->argv_owned)
                (void) strv_free(c->argv);
        *c = (struct wrapper_config){};
}
