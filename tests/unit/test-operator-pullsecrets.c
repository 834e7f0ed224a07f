/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for operator/pullsecrets: an entry is found only by its namespace and name (the
 * same name in another namespace, or another name, finds nothing), a put replaces, a drop
 * forgets, the TTL on an injected clock, the size limit (an over-size read drops what was
 * kept), the least recently used replaced when full, and the bounds of the options.
 */
#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/macro.h"
#include "operator/pullsecrets.h"
#include "tests/tap.h"

static uint64_t fake_now = 1000000;
static uint64_t fake_clock(void *u) {
        (void) u;
        return fake_now;
}

/* The kept contents of ns/name as a string in out ("" and the error when none). */
static int get(struct pullsecrets *p, const char *ns, const char *name, char *out, size_t n) {
        _cleanup_buf_ struct buf b = BUF_INIT(1u << 20, BUF_SECURE);
        int r = pullsecrets_get(p, ns, name, &b);
        out[0] = '\0';
        if (r == 0 && b.len > 0 && b.len <= n && b.data[b.len - 1] == '\0')
                memcpy(out, b.data, b.len);
        else if (r == 0)
                return -EBADMSG; /* not one NUL-terminated copy */
        return r;
}

int main(void) {
        struct pullsecrets *p = NULL;
        char out[256];

        is_int(pullsecrets_new(
                       &(struct pullsecrets_options){.max_entries = PULLSECRETS_MAX_ENTRIES + 1},
                       &p),
               -EINVAL, "more entries than the bound: -EINVAL");
        if (!ok(pullsecrets_new(&(struct pullsecrets_options){.ttl_s = 10,
                                                              .max_entries = 3,
                                                              .now_usec = fake_clock},
                                &p) == 0,
                "a cache of 3 entries, a 10 s TTL on the test's clock"))
                return tap_done();

        is_int(pullsecrets_put(p, "team-a", "regcred", "{\"a\":1}", 7), 0, "team-a/regcred kept");
        ok(get(p, "team-a", "regcred", out, sizeof(out)) == 0 && strcmp(out, "{\"a\":1}") == 0,
           "and read back, NUL-terminated (%s)", out);
        is_int(get(p, "team-b", "regcred", out, sizeof(out)), -ENOENT,
               "the same name in another namespace finds nothing");
        is_int(get(p, "team-a", "other", out, sizeof(out)), -ENOENT,
               "another name in the namespace finds nothing");
        is_int(get(p, "team-a", "regcre", out, sizeof(out)), -ENOENT, "nor a prefix of the name");
        is_int(get(p, "team", "a/regcred", out, sizeof(out)), -ENOENT,
               "nor the pair split elsewhere");

        is_int(pullsecrets_put(p, "team-a", "regcred", "{\"a\":2}", 7), 0, "a second read");
        ok(get(p, "team-a", "regcred", out, sizeof(out)) == 0 && strcmp(out, "{\"a\":2}") == 0 &&
                   pullsecrets_count(p) == 1,
           "replaces the first (one entry)");
        pullsecrets_drop(p, "team-a", "regcred");
        is_int(get(p, "team-a", "regcred", out, sizeof(out)), -ENOENT, "a drop forgets it");

        /* The TTL, from the read. */
        (void) pullsecrets_put(p, "team-a", "regcred", "{\"a\":3}", 7);
        fake_now += 9999999;
        is_int(get(p, "team-a", "regcred", out, sizeof(out)), 0, "kept just before the TTL");
        fake_now += 1;
        is_int(get(p, "team-a", "regcred", out, sizeof(out)), -ENOENT, "gone at the TTL");
        is_int((int) pullsecrets_count(p), 0, "and wiped");

        /* The size limit: over it, not kept, and what was kept goes. */
        static char big[PULLSECRETS_MAX_BYTES + 1];
        memset(big, 'x', sizeof(big));
        (void) pullsecrets_put(p, "team-a", "regcred", "{\"a\":4}", 7);
        is_int(pullsecrets_put(p, "team-a", "regcred", big, sizeof(big)), -E2BIG,
               "a secret over PULLSECRETS_MAX_BYTES is refused");
        is_int(get(p, "team-a", "regcred", out, sizeof(out)), -ENOENT,
               "and the older contents of the name are dropped");
        is_int(pullsecrets_put(p, "team-a", "exact", big, sizeof(big) - 1), 0,
               "one of exactly PULLSECRETS_MAX_BYTES is kept");
        pullsecrets_drop(p, "team-a", "exact");

        /* Full: the least recently used is replaced. */
        (void) pullsecrets_put(p, "n1", "s", "1", 1);
        (void) pullsecrets_put(p, "n2", "s", "2", 1);
        (void) pullsecrets_put(p, "n3", "s", "3", 1);
        (void) get(p, "n1", "s", out, sizeof(out)); /* n2 is now the least recently used */
        (void) pullsecrets_put(p, "n4", "s", "4", 1);
        ok(get(p, "n2", "s", out, sizeof(out)) == -ENOENT &&
                   get(p, "n1", "s", out, sizeof(out)) == 0 &&
                   get(p, "n3", "s", out, sizeof(out)) == 0 &&
                   get(p, "n4", "s", out, sizeof(out)) == 0 && strcmp(out, "4") == 0,
           "full, the least recently used entry is replaced");

        /* What cannot be a namespace and a name. */
        char longname[PULLSECRETS_NAME_MAX + 2];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        ok(pullsecrets_put(p, "", "s", "x", 1) == -EINVAL &&
                   pullsecrets_put(p, "n", "", "x", 1) == -EINVAL &&
                   pullsecrets_put(p, "n", longname, "x", 1) == -EINVAL &&
                   pullsecrets_put(p, NULL, "s", "x", 1) == -EINVAL,
           "empty, missing and over-long names are refused");
        is_int(get(p, "n1", "", out, sizeof(out)), -ENOENT, "an empty name finds nothing");
        is_int(pullsecrets_get(NULL, "n1", "s", NULL), -ENOENT, "nor does a NULL cache");
        p = pullsecrets_free(p);
        ok(!p && !pullsecrets_free(NULL), "freed; NULL accepted");
        return tap_done();
}
