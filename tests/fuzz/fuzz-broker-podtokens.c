/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what broker/podtokens reads from the vault and writes to it. First byte % 3:
 *   0: the rest is a policy name from the vault's LIST (podtokens_policy_expiry()): accepted
 *      only when it is exactly the name podtokens_policy_name() makes of its expiry and id;
 *   1: the rest is a policy text (vault_sys_policy_comment(), key "expires"): a value found is
 *      non-empty, one line, and stands in the text after "# expires: " at a line's start;
 *   2: the rest is paths, one per line (vault_sys_policy_read_paths()): accepted, the policy has
 *      exactly one read-only block per path and no glob; refused, the buffer is as it was. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/podtokens.h"
#include "common/buf.h"
#include "common/vault-sys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *s, const char *what) {
        size_t n = 0;
        for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
                n++;
        return n;
}

static void name(const char *s) {
        char again[PODTOKENS_POLICY_MAX];
        int64_t exp;
        if (podtokens_policy_expiry(s, &exp) < 0)
                return;
        const char *id = strrchr(s, '-') + 1;
        podtokens_policy_name(exp, id, again);
        if (exp < 0 || strcmp(again, s) != 0)
                abort();
}

static void comment(const char *s) {
        char v[64], pat[80];
        if (vault_sys_policy_comment(s, "expires", v, sizeof(v)) < 0)
                return;
        if (!v[0] || strchr(v, '\n') || strlen(v) >= sizeof(v))
                abort();
        (void) snprintf(pat, sizeof(pat), "# expires: %s", v);
        const char *at = strstr(s, pat);
        while (at && at != s && at[-1] != '\n')
                at = strstr(at + 1, pat);
        if (!at)
                abort();
}

static void paths(char *s) {
        _cleanup_buf_ struct buf out = BUF_INIT(VAULT_SYS_MAX_POLICY, 0);
        const char *p[BROKERPROTO_MAX_PATHS];
        size_t n = 0;
        for (char *line = s, *next; line && n < BROKERPROTO_MAX_PATHS; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                p[n++] = line;
        }
        (void) buf_append_str(&out, "kept");
        if (vault_sys_policy_read_paths(NULL, 0, p, n, false, &out) < 0) {
                if (strcmp(buf_cstr(&out), "kept") != 0)
                        abort();
                return;
        }
        const char *text = buf_cstr(&out) + 4;
        if (count(text, "path \"") != n || count(text, "capabilities = [\"read\"]") != n ||
            count(text, "capabilities") != n || strpbrk(text, "*+"))
                abort();
        for (size_t i = 0; i < n; i++) {
                char block[BROKERPROTO_MAX_PATH + 16];
                (void) snprintf(block, sizeof(block), "path \"%s\" {", p[i]);
                if (!strstr(text, block))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 64 * 1024)
                return 0;
        char *s = malloc(size);
        if (!s)
                return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0'; /* names and texts are C strings: the first NUL ends them */
        switch (data[0] % 3) {
        case 0:
                name(s);
                break;
        case 1:
                comment(s);
                break;
        default:
                paths(s);
                break;
        }
        free(s);
        return 0;
}
