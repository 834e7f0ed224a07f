/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/memstore: the check-and-set rules every credentials store follows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "operator/credentials.h"
#include "operator/memstore.h"
#include "tests/tap.h"

int main(void) {
        struct memstore *m = NULL;
        struct credentials_record a = {}, b = {}, got = {};

        is_int(memstore_new(&m), 0, "new");
        struct credentials_store s = memstore_ops(m);
        is_int(credentials_record_set(&a, "key", "one", 3), 0, "record a");
        is_int(credentials_record_set(&b, "key", "two", 3), 0, "record b");

        is_int(s.read(s.userdata, "x", &got), -ENOENT, "absent: -ENOENT");
        is_int(s.update(s.userdata, "x", &a, &(struct credentials_version){.n = 1}), -ENOENT,
               "update of an absent record: -ENOENT");
        is_int(s.create(s.userdata, "x", &a), 0, "create");
        is_int(s.create(s.userdata, "x", &b), -EEXIST, "a second create: -EEXIST (cas=0)");
        is_int(s.read(s.userdata, "x", &got), 0, "read");
        ok(got.version.n == 1 && credentials_record_get(&got, "key") &&
                   strcmp(credentials_record_get(&got, "key")->data, "one") == 0,
           "version 1, the first writer's value");
        struct credentials_version v1 = got.version;
        credentials_record_done(&got);
        is_int(s.update(s.userdata, "x", &b, &v1), 0, "update at the version read");
        is_int(s.update(s.userdata, "x", &a, &v1), -ESTALE, "update at a stale version: -ESTALE");
        is_int(s.read(s.userdata, "x", &got), 0, "read again");
        ok(got.version.n == 2 && strcmp(credentials_record_get(&got, "key")->data, "two") == 0,
           "version 2, the update's value");
        credentials_record_done(&got);

        char name[16];
        int r = 0;
        for (int i = 1; i < MEMSTORE_MAX_RECORDS && r == 0; i++) {
                (void) snprintf(name, sizeof(name), "r%d", i);
                r = s.create(s.userdata, name, &a);
        }
        is_int(r, 0, "up to %d records", MEMSTORE_MAX_RECORDS);
        is_int(s.create(s.userdata, "one-more", &a), -ENOSPC, "one more: -ENOSPC");
        is_int((int) memstore_count(m), MEMSTORE_MAX_RECORDS, "count");
        ok(memstore_find(m, "x") && !memstore_find(m, "nope"), "find");

        credentials_record_done(&a);
        credentials_record_done(&b);
        memstore_free(m);
        return tap_done();
}
