/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the vault-side commands (cli/source*.c, cli/connect.c) against the stand-in
 * vault: what a real OpenBao cannot be made to do on demand (a 500 on sys/unseal, a 403 on
 * sys/mounts, a kv v1 at secret/), the refusals that must happen before any request (keys to a
 * pipe, to a file without --force), the diff, and that the token given with --token leaves argv.
 * The same behaviours on the real OpenBao: tests/e2e/test-real-cli-source.sh.
 *
 * The plan is read by cli/plan.c from a file written here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/plan.h"
#include "cli/source-plan.h"
#include "cli/source.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/vault-sys.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

/* --- the plan ---------------------------------------------------------------------------- */

/* Tenant shop: web (pending) and worker (migrated) map db and api; old is skipped. */
static const char plan_text[] =
        "apiVersion: cloudtaser.io/v1\n"
        "kind: MigrationPlan\n"
        "metadata: {name: p, cluster: c1, createdAt: \"2026-12-03T00:00:00Z\", createdBy: test}\n"
        "tenants:\n"
        "- name: Shop team\n"
        "  namespace: shop\n"
        "  workloads:\n"
        "  - kind: Deployment\n"
        "    name: web\n"
        "    serviceAccount: web-sa\n"
        "    replicas: 2\n"
        "    status: pending\n"
        "    secrets:\n"
        "    - {source: \"secretKeyRef:db/password\", vaultPath: secret/data/c1/shop/db,\n"
        "       fields: {password: PGPASSWORD, user: PGUSER}}\n"
        "    - {source: \"secretKeyRef:api/key\", vaultPath: secret/data/c1/shop/api,\n"
        "       fields: {key: API_KEY}}\n"
        "  - kind: Deployment\n"
        "    name: worker\n"
        "    replicas: 1\n"
        "    status: migrated\n"
        "    secrets:\n"
        "    - {source: \"secretKeyRef:db/password\", vaultPath: secret/data/c1/shop/db,\n"
        "       fields: {password: PGPASSWORD}}\n"
        "  - kind: Deployment\n"
        "    name: old\n"
        "    serviceAccount: old-sa\n"
        "    replicas: 1\n"
        "    status: skipped\n"
        "    secrets:\n"
        "    - {source: \"secretKeyRef:old/x\", vaultPath: secret/data/c1/shop/old,\n"
        "       fields: {x: X}}\n";
static char plan_path[256];

static int write_plan(void) {
        char dir[] = "/tmp/ct-cli-source-plan-XXXXXX";
        if (!mkdtemp(dir))
                return -errno;
        (void) snprintf(plan_path, sizeof(plan_path), "%s/plan.yaml", dir);
        int fd = open(plan_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t w = write(fd, plan_text, sizeof(plan_text) - 1);
        close(fd);
        return w == (ssize_t) sizeof(plan_text) - 1 ? 0 : -EIO;
}

static void remove_plan(void) {
        (void) unlink(plan_path);
        char *slash = strrchr(plan_path, '/');
        if (slash) {
                *slash = '\0';
                (void) rmdir(plan_path);
        }
}

/* --- running a command with its output captured ------------------------------------------ */

static struct standin *vault;
static char out[1 << 20];

/* Runs the command (with the stand-in's address, CA and root token) with stdout and stderr
 * into `out`; returns its exit status. */
static int run(int (*cmd)(int, char **), const char *const *args) {
        char *argv[64];
        char path[] = "/tmp/ct-cli-source-XXXXXX";
        size_t n = 0;
        for (; args[n] && n < ELEMENTSOF(argv) - 8; n++)
                argv[n] = strdup(args[n]);
        const char *common[] = {"--openbao-addr", vault->addr, "--ca-cert",
                                vault->ca_path,   "--token",   vault->root_token};
        for (size_t i = 0; i < ELEMENTSOF(common); i++)
                argv[n++] = strdup(common[i]);
        argv[n] = NULL;
        int fd = mkstemp(path);
        if (fd < 0)
                return -1;
        (void) unlink(path);
        fflush(stdout);
        int o1 = fcntl(1, F_DUPFD_CLOEXEC, 3), o2 = fcntl(2, F_DUPFD_CLOEXEC, 3);
        (void) dup2(fd, 1);
        (void) dup2(fd, 2);
        int status = cmd((int) n, argv);
        fflush(stdout);
        (void) dup2(o1, 1);
        (void) dup2(o2, 2);
        close(o1);
        close(o2);
        ssize_t got = pread(fd, out, sizeof(out) - 1, 0);
        out[got > 0 ? got : 0] = '\0';
        close(fd);
        for (size_t i = 0; i < n; i++)
                free(argv[i]);
        return status;
}

static size_t count(const char *hay, const char *needle) {
        size_t c = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                c++;
        return c;
}

static int start(const char *config) {
        standin_stop(vault);
        vault = NULL;
        int r = standin_start(config, &vault);
        if (r < 0)
                return r;
        return 0;
}

static void fault(const char *json) {
        int st = 0;
        (void) standin_control(vault, "POST", "/_standin/fault", json, &st, NULL);
        if (st != 200)
                diag("fault not armed: %d", st);
}

static int seal_status(struct vault_seal_status *ret) {
        _cleanup_vault_client_ struct vault_client *c = NULL;
        struct vault_options o = {.addr = vault->addr, .ca_file = vault->ca_path};
        int r = vault_client_new(&o, &c);
        return r < 0 ? r : vault_sys_seal_status(c, ret, NULL);
}

static void test_install(void) {
        struct vault_seal_status st = {};
        char file[] = "/tmp/ct-cli-keys-XXXXXX";
        int r;

        if (start("{\"seal\": {\"initialized\": false}}") < 0) {
                skip(12, "no stand-in");
                return;
        }
        r = run(cli_source_install, (const char *const[]){"source install", NULL});
        is_int(r, EX_USAGE, "install: stdout is not a terminal: refused");
        ok(strstr(out, "not a terminal") && !strstr(out, "Unseal key"), "  and says why");
        ok(seal_status(&st) >= 0 && !st.initialized, "  before sys/init: the vault is untouched");

        int fd = mkstemp(file);
        close(fd);
        (void) unlink(file);
        r = run(cli_source_install,
                (const char *const[]){"source install", "--output-file", file, NULL});
        is_int(r, EX_USAGE, "install --output-file without --force: refused");
        ok(access(file, F_OK) < 0 && seal_status(&st) >= 0 && !st.initialized,
           "  no file, no sys/init");

        /* The unseal fails after sys/init: the keys must have been shown already. */
        fault("{\"match\": \"sys/unseal\", \"kind\": \"status\", \"status\": 500, \"count\": "
              "-1}");
        r = run(cli_source_install,
                (const char *const[]){"source install", "--force-output-to-non-terminal",
                                      "--key-shares", "3", "--key-threshold", "2", NULL});
        is_int(r, EX_UNAVAILABLE, "install, sys/unseal answers 500: fails");
        (void) standin_control(vault, "DELETE", "/_standin/fault", NULL, NULL, NULL);
        is_int(count(out, "Unseal key "), 3, "  but the 3 keys were printed first");
        is_int(count(out, "Root token: "), 1, "  and the root token, once");
        ok(strstr(out, "HSM") && strstr(out, "Never in a Kubernetes Secret"), "  with the warning");

        r = run(cli_source_install,
                (const char *const[]){"source install", "--force-output-to-non-terminal", NULL});
        is_int(r, EX_CONFIG, "install on an initialised vault: refused");
        ok(!strstr(out, "Unseal key") && !strstr(out, "Root token"), "  and prints no key");

        /* A fresh vault, keys to a file with --force: mode 0600, unsealed. */
        start("{\"seal\": {\"initialized\": false}}");
        r = run(cli_source_install,
                (const char *const[]){"source install", "--output-file", file, "--force",
                                      "--key-shares", "1", "--key-threshold", "1", NULL});
        struct stat sb = {};
        is_int(r, EX_OK, "install --output-file F --force");
        ok(stat(file, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size > 0 &&
                   !strstr(out, "Unseal key"),
           "  the keys are in F (0600), not on stdout");
        ok(seal_status(&st) >= 0 && st.initialized && !st.sealed, "  the vault is unsealed");
        (void) unlink(file);
}

static void test_configure(void) {
        int r;
        if (start(NULL) < 0) {
                skip(9, "no stand-in");
                return;
        }
        r = run(cli_source_configure, (const char *const[]){"source configure", "--dry-run", NULL});
        is_int(r, EX_OK, "configure --dry-run");
        ok(strstr(out, "+++ policy cloudtaser-operator") &&
                   strstr(out, "+bound_service_account_names = [\"cloudtaser-operator\"]"),
           "  shows the policy and role it would write");
        r = run(cli_source_configure, (const char *const[]){"source configure", NULL});
        is_int(r, EX_OK, "configure");
        ok(strstr(out, "created policy cloudtaser-operator") &&
                   strstr(out, "created role auth/kubernetes/role/cloudtaser-operator"),
           "  creates the policy and the role");
        r = run(cli_source_configure, (const char *const[]){"source configure", "--dry-run", NULL});
        ok(r == EX_OK && !strstr(out, "+++") && !strstr(out, "+ "),
           "configure --dry-run again: nothing would change");

        r = run(cli_source_configure,
                (const char *const[]){"source configure", "--audience", "", NULL});
        ok(r == EX_USAGE && strstr(out, "any audience"),
           "configure --audience '': refused (a role without one takes any audience)");
        r = run(cli_source_configure, (const char *const[]){"source configure", "--bogus", NULL});
        is_int(r, EX_USAGE, "configure --bogus: EX_USAGE");

        fault("{\"match\": \"sys/mounts\", \"kind\": \"status\", \"status\": 403, \"body\": "
              "{\"errors\": [\"permission denied\"]}}");
        r = run(cli_source_configure, (const char *const[]){"source configure", NULL});
        is_int(r, EX_NOPERM, "configure, sys/mounts answers 403: EX_NOPERM");
        ok(strstr(out, "permission denied") != NULL, "  and says so");

        start("{\"mounts\": [{\"path\": \"secret\", \"type\": \"kv\", \"options\": {\"version\": "
              "\"1\"}}]}");
        r = run(cli_source_configure, (const char *const[]){"source configure", NULL});
        is_int(r, EX_PROTOCOL, "configure with a KV v1 at secret/: refused");
        ok(strstr(out, "not kv v2") && !strstr(out, "created"), "  and nothing is changed");
}

static void test_token_argv(void) {
        static char canary[] = "s.canary0123456789";
        struct source_vault v = {};
        char arg[sizeof(canary)];
        memcpy(arg, canary, sizeof(canary));
        int r = source_vault_option(&v, SOURCE_OPT_TOKEN, arg);
        ok(r == 1 && v.token && strcmp(v.token, canary) == 0, "--token: kept (in secmem)");
        ok(memchr(arg, 's', sizeof(arg)) == NULL && arg[0] == '\0', "  and wiped from argv");
        source_vault_done(&v);
        ok(v.token == NULL, "  and freed");
}

static void test_diff(void) {
        char buf[4096] = "";
        FILE *f = fmemopen(buf, sizeof(buf), "w");
        is_int(source_diff_print(f, "x", "a\nb\n", "a\nb\n"), 0, "diff of equal texts: 0");
        fflush(f);
        is_str(buf, "", "  prints nothing");
        is_int(source_diff_print(f, "x", "a\nb\nc\n", "a\nB\nc\nd\n"), 1, "diff of changed texts");
        fclose(f);
        is_str(buf, "--- x (vault)\n+++ x (wanted)\n@@ -1,3 +1,4 @@\n a\n+B\n-b\n c\n+d\n",
               "  unified-style, common lines kept");
        f = fmemopen(buf, sizeof(buf), "w");
        is_int(source_diff_print(f, "y", NULL, "n\n"), 1, "diff of a new object");
        fclose(f);
        is_str(buf, "--- y (absent)\n+++ y (wanted)\n@@ -0,0 +1,1 @@\n+n\n", "  all added");
}

static void test_plan(void) {
        _cleanup_vault_client_ struct vault_client *c = NULL;
        _cleanup_free_ char *policy = NULL;
        int r;

        if (start(NULL) < 0) {
                skip(12, "no stand-in");
                return;
        }
        r = run(cli_source_apply_plan,
                (const char *const[]){"source apply-plan", plan_path, "--dry-run", NULL});
        is_int(r, EX_OK, "apply-plan --dry-run");
        ok(strstr(out, "+path \"secret/data/c1/shop/db\" {") &&
                   strstr(out, "+path \"secret/metadata/c1/shop/db\" {") &&
                   strstr(out, "+bound_service_account_names = [\"default\", \"web-sa\"]") &&
                   !strstr(out, "old-sa") && !strstr(out, "c1/shop/old"),
           "  the diff: data and metadata read, the service accounts (serviceAccount, else "
           "default; not the skipped workload's)");
        r = run(cli_source_apply_plan,
                (const char *const[]){"source apply-plan", plan_path, "-o", "json", NULL});
        ok(r == EX_USAGE && strstr(out, "verify-plan"), "apply-plan -o json: refused");
        r = run(cli_source_apply_plan, (const char *const[]){"source apply-plan", NULL});
        is_int(r, EX_USAGE, "apply-plan without a plan: EX_USAGE");
        r = run(cli_source_apply_plan,
                (const char *const[]){"source apply-plan", "/nonexistent/p.yaml", NULL});
        is_int(r, EX_NOINPUT, "apply-plan of a missing file: EX_NOINPUT");
        r = run(cli_source_apply_plan, (const char *const[]){"source apply-plan", plan_path, NULL});
        is_int(r, EX_OK, "apply-plan");
        struct vault_options o = {.addr = vault->addr, .ca_file = vault->ca_path};
        if (vault_client_new(&o, &c) >= 0)
                (void) vault_set_token(c, vault->root_token, strlen(vault->root_token));
        r = vault_sys_policy_read(c, "cloudtaser-tenant-shop", &policy, NULL);
        ok(r >= 0 && count(policy, "capabilities = [\"read\"]") == 4 && !strstr(policy, "create"),
           "  the tenant's policy: 4 read rules, nothing else");
        r = run(cli_source_apply_plan,
                (const char *const[]){"source apply-plan", plan_path, "--dry-run", NULL});
        ok(r == EX_OK && !strstr(out, "+++"), "apply-plan --dry-run again: no diff");

        /* A hand edit is found and undone. */
        (void) vault_sys_policy_write(
                c, "cloudtaser-tenant-shop",
                "path \"secret/data/c1/shop/*\" { capabilities = [\"read\"] }\n", NULL);
        r = run(cli_source_apply_plan,
                (const char *const[]){"source apply-plan", plan_path, "--dry-run", NULL});
        ok(r == EX_OK && strstr(out, "-path \"secret/data/c1/shop/*\""),
           "  a hand-edited policy shows in the diff");
        r = run(cli_source_apply_plan, (const char *const[]){"source apply-plan", plan_path, NULL});
        ok(r == EX_OK && strstr(out, "updated policy cloudtaser-tenant-shop") &&
                   !strstr(out, "created role") && !strstr(out, "updated role"),
           "  and apply rewrites the policy only");

        /* verify: db holds password and user; api lacks its key. The values never show. */
        static const char canary[] = "canary-value-7f3a";
        struct vault_kv_path kp;
        struct vault_field fs[] = {{"password", canary, sizeof(canary) - 1, 0},
                                   {"user", canary, sizeof(canary) - 1, 0}};
        struct vault_field fa[] = {{"other", canary, sizeof(canary) - 1, 0}};
        r = vault_kv_resolve(c, "secret/data/c1/shop/db", &kp, NULL);
        if (r >= 0)
                r = vault_kv_write(c, &kp, fs, 2, -1, NULL, NULL);
        if (r >= 0)
                r = vault_kv_resolve(c, "secret/data/c1/shop/api", &kp, NULL);
        if (r >= 0)
                r = vault_kv_write(c, &kp, fa, 1, -1, NULL, NULL);
        ok(r >= 0, "secrets written");
        r = run(cli_source_verify_plan,
                (const char *const[]){"source verify-plan", plan_path, NULL});
        is_int(r, EX_DATAERR, "verify-plan with a missing field: EX_DATAERR");
        ok(strstr(out, "secret/data/c1/shop/api") && strstr(out, "missing field") &&
                   count(out, " ok\n") == 2,
           "  the table names it; the other two fields are ok");
        ok(!strstr(out, canary), "  no value is printed");
        r = run(cli_source_verify_plan,
                (const char *const[]){"source verify-plan", plan_path, "-o", "json", NULL});
        ok(r == EX_DATAERR && strstr(out, "{\"ok\":false,") &&
                   strstr(out, "\"failed\":[{\"namespace\":\"shop\",\"path\":"
                               "\"secret/data/c1/shop/api\",\"field\":\"key\",\"status\":"
                               "\"missing field\"}]"),
           "  -o json lists what failed");

        fault("{\"match\": \"secret/data/c1/shop/db\", \"kind\": \"status\", \"status\": 500, "
              "\"count\": -1}");
        r = run(cli_source_verify_plan,
                (const char *const[]){"source verify-plan", plan_path, NULL});
        ok(r == EX_UNAVAILABLE && !strstr(out, "All "),
           "verify-plan, the vault answers 500: EX_UNAVAILABLE, not a pass");
}

int main(void) {
        log_setup("test-cli-source", LOG_FORMAT_TEXT, LOG_INFO);
        test_diff();
        test_token_argv();
        test_install();
        test_configure();
        if (write_plan() < 0)
                ok(false, "plan file written");
        else
                test_plan();
        remove_plan();
        standin_stop(vault);
        return tap_done();
}
