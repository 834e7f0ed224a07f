/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/kube (and common/yaml through it): Status decoding, kubeconfig reading
 * (the kubectl-generated fixture, several files, the refusals), the in-cluster configuration, and
 * GET/CREATE/UPDATE/PATCH against the stand-in kube-apiserver (tests/standin/kube_apiserver.py):
 * resourceVersion conflicts as -ESTALE, a rotated token file re-read, an exec credential plugin
 * run per its expiry, several threads on one client; the watch: its stream parser (events split
 * anywhere, bounded lines, ERROR events decoded, 410 as -ETIME), and kube_watch() against the
 * stand-in (the current state then the changes, a label selector, resuming from a
 * resourceVersion, timeoutSeconds, 410 in the stream and as the answer, a line over the bound,
 * the callback's stop, cancellation). The same contract on the real API server:
 * tests/e2e/test-real-kube-contract.sh. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/kube.h"
#include "common/macro.h"
#include "common/yaml.h"
#include "tests/lib/standin.h"
#include "tests/tap.h"

extern char **environ;

static char fixtures[PATH_MAX], workdir[PATH_MAX];

static int write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        size_t n = strlen(text);
        ssize_t w = write(fd, text, n);
        (void) close(fd);
        return w == (ssize_t) n ? 0 : -EIO;
}

static char *read_text(const char *path) {
        struct buf b = BUF_INIT(1 << 20, 0);
        if (buf_read_file(&b, path) < 0) {
                buf_done(&b);
                return NULL;
        }
        char *s = NULL;
        size_t n;
        if (buf_steal(&b, &s, &n) < 0)
                s = NULL;
        buf_done(&b);
        return s;
}

static void test_status(void) {
        char *notfound = NULL, path[PATH_MAX + 64];
        (void) snprintf(path, sizeof(path), "%s/status-v1-notfound-404.json", fixtures);
        notfound = read_text(path);
        struct kube_error e;
        ok(notfound && kube_status_decode(404, notfound, strlen(notfound), &e) == -ENOENT &&
                   e.code == 404 && strcmp(e.reason, "NotFound") == 0 &&
                   strcmp(e.message, "pods \"grafana\" not found") == 0,
           "the real 404 Status: -ENOENT, reason and message (%s)", notfound ? e.message : "");
        free(notfound);
        static const struct {
                long status;
                const char *body;
                int rc;
                const char *reason, *message;
        } cases[] = {
                {409,
                 "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409,\"message\":\"the "
                 "object "
                 "has been modified\"}",
                 -ESTALE, "Conflict", "the object has been modified"},
                {409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409}", -EEXIST,
                 "AlreadyExists", "the API server sent no Status message"},
                {422, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"message\":\"bad\\nname\"}",
                 -EINVAL, "Invalid", "bad?name"},
                {403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"message\":\"no\"}", -EACCES,
                 "Forbidden", "no"},
                {429, "", -EAGAIN, "", "the API server sent no Status message"},
                {500, "<html>oops</html>", -EPROTO, "", "the API server sent no Status message"},
                {502, "{\"kind\":\"Pod\",\"message\":\"not a status\"}", -EPROTO, "",
                 "the API server sent no Status message"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = kube_status_decode(cases[i].status, cases[i].body, strlen(cases[i].body),
                                           &e);
                ok(r == cases[i].rc && e.code == cases[i].status &&
                           strcmp(e.reason, cases[i].reason) == 0 &&
                           strcmp(e.message, cases[i].message) == 0,
                   "Status %ld case %zu: %d '%s' '%s'", cases[i].status, i, r, e.reason, e.message);
        }
}

static int load(const char *paths, const char *context, bool insecure, struct kube_config **ret,
                struct kube_error *e) {
        struct kube_load_options o = {
                .paths = paths, .context = context, .allow_insecure = insecure};
        return kube_config_load(&o, ret, e);
}

static void test_kubeconfig(void) {
        char fx[PATH_MAX + 64], a[PATH_MAX + 16], b[PATH_MAX + 16], list[4 * PATH_MAX];
        struct kube_config *c = NULL;
        struct kube_error e = {};
        int r;

        (void) snprintf(fx, sizeof(fx), "%s/kubeconfig-kubectl-generated.yaml", fixtures);
        r = load(fx, NULL, false, &c, &e);
        ok(r == -ENOENT && strstr(e.message, "fake-cert-file") == NULL &&
                   strstr(e.message, "fake-ca-file"),
           "current-context dev-frontend: its CA file is missing, and the error says so (%s)",
           e.message);
        r = load(fx, "embedded-token", false, &c, &e);
        ok(r == 0 && strcmp(kube_config_server(c), "https://127.0.0.1:6443") == 0 &&
                   strcmp(kube_config_namespace(c), "default") == 0 &&
                   strcmp(kube_config_context(c), "embedded-token") == 0,
           "context embedded-token: server, default namespace (%d %s)", r, r ? e.message : "");
        c = kube_config_free(c);
        r = load(fx, "embedded-cert", false, &c, &e);
        ok(r == 0, "context embedded-cert: client certificate and key data (%d %s)", r,
           r ? e.message : "");
        c = kube_config_free(c);
        r = load(fx, "embedded-exec", false, &c, &e);
        ok(r == 0 && strcmp(kube_config_namespace(c), "secrets") == 0,
           "context embedded-exec: the exec plugin, namespace secrets (%d %s)", r,
           r ? e.message : "");
        c = kube_config_free(c);
        r = load(fx, "exp-test", false, &c, &e);
        ok(r == -EPERM && strstr(e.message, "insecure-skip-tls-verify"),
           "insecure-skip-tls-verify is refused unless allowed (%s)", e.message);
        r = load(fx, "exp-test", true, &c, &e);
        ok(r == -EPROTONOSUPPORT && strstr(e.message, "basic auth"),
           "allowed, the context's basic-auth user is refused (%s)", e.message);
        r = load(fx, "nope", false, &c, &e);
        ok(r == -ENOENT && strstr(e.message, "nope"), "an unknown context (%s)", e.message);

        /* Several files, as $KUBECONFIG: the first that names an entry wins, missing ones are
         * skipped, relative paths are relative to their file. */
        (void) snprintf(a, sizeof(a), "%s/a.yaml", workdir);
        (void) snprintf(b, sizeof(b), "%s/b.yaml", workdir);
        (void) write_text(a,
                          "clusters:\n- name: c\n  cluster: {server: 'https://first', "
                          "certificate-authority: ca.pem}\n",
                          0600);
        (void) write_text(b,
                          "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                          "clusters:\n- name: c\n  cluster:\n    server: https://second\n"
                          "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: "
                          "team}\n"
                          "users:\n- name: u\n  user:\n    tokenFile: tok\n",
                          0600);
        (void) snprintf(list, sizeof(list), "%s/ca.pem", workdir);
        (void) write_text(list, "-----BEGIN CERTIFICATE-----\n", 0644);
        (void) snprintf(list, sizeof(list), "%s/missing.yaml:%s:%s", workdir, a, b);
        r = load(list, NULL, false, &c, &e);
        ok(r == 0 && strcmp(kube_config_server(c), "https://first") == 0 &&
                   strcmp(kube_config_namespace(c), "team") == 0,
           "KUBECONFIG of three files: the first cluster named c wins (%d %s)", r,
           r ? e.message : "");
        c = kube_config_free(c);

        static const struct {
                const char *yaml;
                int rc;
        } bad[] = {
                {"current-context: x\n- a\n", -EBADMSG},
                {"a: &x 1\nb: *x\n", -EBADMSG},
                {"a: 1\na: 2\n", -EBADMSG},
                {"- a\n- b\n", -EBADMSG},
                {"a: 1\n---\nb: 2\n", -EBADMSG},
                {"a: !!binary aGk=\n", -EBADMSG},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct json_doc *d = NULL;
                r = yaml_parse(bad[i].yaml, strlen(bad[i].yaml), 0, NULL, &d);
                is_int(r, bad[i].rc, "yaml refused: case %zu", i);
                json_doc_free(d);
        }
        {
                const char *y = "s: '0123'\nn: 42\nf: 1.5\nt: true\nq: \"true\"\nz: ~\ne:\n"
                                "l: [a, {b: c}]\nh: 0x10\n";
                struct json_doc *d = NULL;
                _cleanup_buf_ struct buf out = BUF_INIT(4096, 0);
                r = yaml_parse(y, strlen(y), 0, NULL, &d);
                if (r >= 0)
                        r = json_print(json_doc_root(d), &out);
                is_str(r >= 0 ? buf_cstr(&out) : "",
                       "{\"s\":\"0123\",\"n\":42,\"f\":\"1.5\",\"t\":true,\"q\":\"true\","
                       "\"z\":null,\"e\":null,\"l\":[\"a\",{\"b\":\"c\"}],\"h\":\"0x10\"}",
                       "yaml scalars: core-schema booleans, nulls, integers; the rest strings");
                json_doc_free(d);
        }
        {
                char deep[400];
                size_t o = 0;
                for (int i = 0; i < 100; i++)
                        deep[o++] = '[';
                for (int i = 0; i < 100; i++)
                        deep[o++] = ']';
                deep[o] = '\0';
                char doc[420];
                (void) snprintf(doc, sizeof(doc), "a: %s\n", deep);
                struct json_doc *d = NULL;
                is_int(yaml_parse(doc, strlen(doc), 0, NULL, &d), -ELOOP,
                       "yaml nested deeper than the limit is -ELOOP");
                json_doc_free(d);
        }
}

/* --- against the stand-in ------------------------------------------------------------------- */

struct env {
        struct standin *s;
        char kubeconfig[PATH_MAX + 32];
        char token_file[PATH_MAX + 32];
};

static struct kube_client *client_for(struct env *v, const char *context) {
        struct kube_config *c = NULL;
        struct kube_client *k = NULL;
        struct kube_error e = {};
        int r = load(v->kubeconfig, context, false, &c, &e);
        if (r >= 0)
                r = kube_client_new(&c, NULL, &k);
        if (r < 0)
                diag("client for %s: %d %s", context ? context : "(current)", r, e.message);
        kube_config_free(c);
        return k;
}

struct thread_arg {
        struct kube_client *k;
        int failures;
};

static void *hammer(void *p) {
        struct thread_arg *a = p;
        for (int i = 0; i < 10; i++) {
                struct json_doc *d = NULL;
                struct kube_error e;
                if (kube_get(a->k, "/api/v1/namespaces/default", &d, &e) < 0)
                        a->failures++;
                json_doc_free(d);
        }
        return NULL;
}

static void test_api(struct env *v) {
        struct kube_client *k = client_for(v, NULL);
        struct kube_error e = {};
        struct json_doc *d = NULL;
        int r;

        ok(k != NULL, "a client from a kubeconfig (tokenFile, certificate-authority)");
        if (!k)
                return;
        const char *s = NULL;
        r = kube_get(k, "/api/v1/namespaces/default", &d, &e);
        ok(r == 0 && json_get_string(json_get(json_doc_root(d), "metadata"), "name", &s) == 0 &&
                   strcmp(s, "default") == 0,
           "GET a namespace (%d %s)", r, e.message);
        d = json_doc_free(d);
        r = kube_get(k, "/api/v1/namespaces/default/secrets/none", &d, &e);
        ok(r == -ENOENT && e.code == 404 && strcmp(e.reason, "NotFound") == 0 &&
                   strstr(e.message, "\"none\" not found"),
           "GET of a missing secret: -ENOENT, 404 NotFound, the message (%s)", e.message);

        /* CREATE a pull secret; read it as the operator does. */
        _cleanup_buf_ struct buf body = BUF_INIT(4096, 0);
        (void) buf_append_str(
                &body,
                "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"pull\"},"
                "\"type\":\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":"
                "\"eyJhdXRocyI6e319\"}}");
        r = kube_create(k, "/api/v1/namespaces/default/secrets", &body, &d, &e);
        const char *rv0 = NULL;
        char rv[64] = "";
        if (r == 0 &&
            json_get_string(json_get(json_doc_root(d), "metadata"), "resourceVersion", &rv0) == 0)
                (void) snprintf(rv, sizeof(rv), "%s", rv0);
        ok(r == 0 && rv[0], "CREATE a secret (%d %s), resourceVersion %s", r, e.message, rv);
        d = json_doc_free(d);
        r = kube_create(k, "/api/v1/namespaces/default/secrets", &body, NULL, &e);
        ok(r == -EEXIST && e.code == 409 && strcmp(e.reason, "AlreadyExists") == 0,
           "CREATE it again: -EEXIST, AlreadyExists (%s)", e.message);
        _cleanup_buf_ struct buf pull = BUF_INIT(4096, BUF_SECURE);
        r = kube_get_pull_secret(k, "default", "pull", &pull, &e);
        is_str(r == 0 ? buf_cstr(&pull) : e.message, "{\"auths\":{}}",
               "the pull secret's .dockerconfigjson, decoded");

        /* UPDATE with the current resourceVersion, then with the stale one: -ESTALE. */
        buf_reset(&body);
        (void) buf_printf(&body,
                          "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                          "\"pull\",\"resourceVersion\":\"%s\",\"labels\":{\"v\":\"2\"}},\"type\":"
                          "\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":"
                          "\"eyJhdXRocyI6e319\"}}",
                          rv);
        r = kube_update(k, "/api/v1/namespaces/default/secrets/pull", &body, NULL, &e);
        ok(r == 0, "UPDATE with the current resourceVersion (%d %s)", r, e.message);
        r = kube_update(k, "/api/v1/namespaces/default/secrets/pull", &body, NULL, &e);
        ok(r == -ESTALE && e.code == 409 && strcmp(e.reason, "Conflict") == 0,
           "UPDATE with the stale resourceVersion: -ESTALE, Conflict (%s)", e.message);

        /* PATCH, the three kinds. */
        static const struct {
                enum kube_patch_type t;
                const char *patch, *label, *want;
        } patches[] = {
                {KUBE_PATCH_MERGE, "{\"metadata\":{\"labels\":{\"m\":\"1\"}}}", "m", "1"},
                {KUBE_PATCH_STRATEGIC, "{\"metadata\":{\"labels\":{\"s\":\"2\"}}}", "s", "2"},
                {KUBE_PATCH_JSON,
                 "[{\"op\":\"add\",\"path\":\"/metadata/labels/j\",\"value\":\"3\"}]", "j", "3"},
        };
        for (size_t i = 0; i < ELEMENTSOF(patches); i++) {
                buf_reset(&body);
                (void) buf_append_str(&body, patches[i].patch);
                const char *got = NULL;
                r = kube_patch(k, "/api/v1/namespaces/default/secrets/pull", patches[i].t, &body,
                               &d, &e);
                ok(r == 0 &&
                           json_get_string(json_get_path(json_doc_root(d), "metadata.labels"),
                                           patches[i].label, &got) == 0 &&
                           strcmp(got, patches[i].want) == 0,
                   "PATCH kind %d sets label %s (%d %s)", (int) patches[i].t, patches[i].label, r,
                   e.message);
                d = json_doc_free(d);
        }
        buf_reset(&body);
        (void) buf_printf(&body, "{\"metadata\":{\"resourceVersion\":\"%s\"}}", rv);
        r = kube_patch(k, "/api/v1/namespaces/default/secrets/pull", KUBE_PATCH_MERGE, &body, NULL,
                       &e);
        ok(r == -ESTALE, "a PATCH carrying a stale resourceVersion is -ESTALE (%d %s)", r,
           e.message);

        /* The token file is re-read per request (the kubelet rotates it in place). */
        _cleanup_free_ char *token = read_text(v->token_file);
        (void) write_text(v->token_file, "rotated-but-wrong\n", 0600);
        r = kube_get(k, "/api/v1/namespaces/default", NULL, &e);
        ok(r == -EACCES && e.code == 401, "a token file replaced by a wrong token: 401 (%s)",
           e.message);
        (void) write_text(v->token_file, token ? token : "", 0600);
        r = kube_get(k, "/api/v1/namespaces/default", NULL, &e);
        ok(r == 0, "restored, the next request passes (%d %s)", r, e.message);

        /* Several threads on one client. */
        pthread_t t[6];
        struct thread_arg args[6];
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                args[i] = (struct thread_arg){.k = k};
                (void) pthread_create(&t[i], NULL, hammer, &args[i]);
        }
        int failures = 0;
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                (void) pthread_join(t[i], NULL);
                failures += args[i].failures;
        }
        is_int(failures, 0, "6 threads x 10 GETs on one client all succeed");
        kube_client_free(k);
}

static void test_exec(struct env *v) {
        char plugin[PATH_MAX + 32], runs[PATH_MAX + 32];
        (void) snprintf(plugin, sizeof(plugin), "%s/plugin.sh", v->s->dir);
        (void) snprintf(runs, sizeof(runs), "%s/runs", v->s->dir);
        /* The plugin counts its runs, checks its environment, and prints a v1 ExecCredential
         * whose expiry is taken from the file "expiry". */
        char script[3 * PATH_MAX + 1024];
        (void) snprintf(script, sizeof(script),
                        "#!/bin/sh\n"
                        "[ \"$FOO\" = bar ] || exit 3\n"
                        "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 4 ;; esac\n"
                        "[ \"$1\" = get-token ] || exit 5\n"
                        "echo run >> '%s'\n"
                        "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
                        "\"ExecCredential\",\"status\":{\"token\":\"%s\",\"expirationTimestamp\":"
                        "\"%%s\"}}' "
                        "\"$(cat '%s/expiry')\"\n",
                        runs, v->s->root_token, v->s->dir);
        (void) write_text(plugin, script, 0700);
        char expiry[PATH_MAX + 32];
        (void) snprintf(expiry, sizeof(expiry), "%s/expiry", v->s->dir);

        (void) write_text(expiry, "2018-03-05T17:30:20-08:00", 0600); /* the fixture's: past */
        struct kube_client *k = client_for(v, "exec");
        ok(k != NULL, "a client with an exec credential plugin");
        if (!k)
                return;
        struct kube_error e = {};
        int r1 = kube_get(k, "/api/v1/namespaces/default", NULL, &e);
        int r2 = kube_get(k, "/api/v1/namespaces/default", NULL, &e);
        _cleanup_free_ char *count = read_text(runs);
        ok(r1 == 0 && r2 == 0 && count && strcmp(count, "run\nrun\n") == 0,
           "an expired token: the plugin runs for each request (%d %d, %s)", r1, r2, e.message);
        kube_client_free(k);

        (void) unlink(runs);
        (void) write_text(expiry, "2999-01-01T00:00:00Z", 0600);
        k = client_for(v, "exec");
        r1 = k ? kube_get(k, "/api/v1/namespaces/default", NULL, &e) : -1;
        r2 = k ? kube_get(k, "/api/v1/namespaces/default", NULL, &e) : -1;
        free(count);
        count = read_text(runs);
        ok(r1 == 0 && r2 == 0 && count && strcmp(count, "run\n") == 0,
           "an unexpired token is reused: one run for two requests (%d %d)", r1, r2);
        kube_client_free(k);

        k = client_for(v, "exec-bad");
        r1 = k ? kube_get(k, "/api/v1/namespaces/default", NULL, &e) : -1;
        ok(r1 == -EACCES && strstr(e.message, "exit status 3"),
           "a plugin without its environment fails, and the error says how (%s)", e.message);
        kube_client_free(k);
}

static int incluster_child(void) {
        struct kube_config *c = NULL;
        struct kube_client *k = NULL;
        struct kube_error e = {};
        int r = kube_config_incluster(getenv("TEST_KUBE_SA_DIR"), &c, &e);
        if (r < 0 || strcmp(kube_config_namespace(c), "team") != 0)
                return fprintf(stderr, "incluster: %d %s\n", r, e.message), 1;
        r = kube_client_new(&c, NULL, &k);
        if (r >= 0)
                r = kube_get(k, "/api/v1/namespaces/default", NULL, &e);
        kube_client_free(k);
        kube_config_free(c);
        if (r < 0)
                return fprintf(stderr, "incluster GET: %d %s\n", r, e.message), 2;
        return 0;
}

static void test_incluster(struct env *v, const char *self) {
        char dir[PATH_MAX + 32], p[PATH_MAX + 64];
        struct kube_config *c = NULL;
        struct kube_error e = {};
        (void) snprintf(dir, sizeof(dir), "%s/sa", v->s->dir);
        (void) mkdir(dir, 0700);
        (void) snprintf(p, sizeof(p), "%s/token", dir);
        (void) write_text(p, v->s->root_token, 0600);
        (void) snprintf(p, sizeof(p), "%s/namespace", dir);
        (void) write_text(p, "team", 0600);
        _cleanup_free_ char *ca = read_text(v->s->ca_path);
        (void) snprintf(p, sizeof(p), "%s/ca.crt", dir);
        (void) write_text(p, ca ? ca : "", 0600);

        if (!getenv("KUBERNETES_SERVICE_HOST"))
                ok(kube_config_incluster(dir, &c, &e) == -ENOENT &&
                           strstr(e.message, "KUBERNETES_SERVICE_HOST"),
                   "outside a cluster: -ENOENT (%s)", e.message);

        /* In a child with the in-cluster environment (this test never changes its own). */
        const char *port = strrchr(v->s->addr, ':') + 1;
        char host_env[64], port_env[64], dir_env[PATH_MAX + 64];
        (void) snprintf(host_env, sizeof(host_env), "KUBERNETES_SERVICE_HOST=127.0.0.1");
        (void) snprintf(port_env, sizeof(port_env), "KUBERNETES_SERVICE_PORT=%s", port);
        (void) snprintf(dir_env, sizeof(dir_env), "TEST_KUBE_SA_DIR=%s", dir);
        char *envp[] = {host_env, port_env, dir_env, (char *) "TEST_KUBE_INCLUSTER=1", NULL};
        char *argv[] = {(char *) self, NULL};
        pid_t pid;
        int status = -1;
        if (posix_spawn(&pid, self, NULL, NULL, argv, envp) == 0)
                (void) waitpid(pid, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "in-cluster: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt and namespace of the "
           "service account directory; a GET with them (status 0x%x)",
           (unsigned) status);
}

/* --- watches ---------------------------------------------------------------------------------- */

struct seen {
        unsigned n;
        char log[4096]; /* "ADDED name rv; ..." */
        char rv[KUBE_RV_MAX];
        int stop_after; /* return -EPIPE at event number stop_after (0: never) */
        pthread_mutex_t *lock;
};

static int on_ev(void *userdata, const struct kube_event *ev) {
        static const char *const t[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
        struct seen *s = userdata;
        const char *name = "";
        (void) json_get_string(json_get(ev->object, "metadata"), "name", &name);
        if (s->lock)
                pthread_mutex_lock(s->lock);
        s->n++;
        size_t o = strlen(s->log);
        (void) snprintf(s->log + o, sizeof(s->log) - o, "%s %s; ", t[ev->type], name);
        (void) snprintf(s->rv, sizeof(s->rv), "%s", ev->resource_version);
        int r = s->stop_after && (int) s->n == s->stop_after ? -EPIPE : 0;
        if (s->lock)
                pthread_mutex_unlock(s->lock);
        return r;
}

static void test_watch_parser(void) {
        static const char stream[] =
                "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
                "\"resourceVersion\":\"10\"}}}\n"
                "\r\n\n"
                "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                "\"resourceVersion\":\"11\"}}}\r\n"
                "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":"
                "{\"resourceVersion\":\"12\"}}}\n"
                "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\","
                "\"resourceVersion\":\"13\"}}}\n";
        size_t n = strlen(stream);
        /* The same events whatever the pieces: whole, byte by byte, in threes. */
        static const size_t steps[] = {0, 1, 3, 17};
        for (size_t k = 0; k < ELEMENTSOF(steps); k++) {
                struct kube_watch_parser *p = NULL;
                struct seen s = {};
                int r = kube_watch_parser_new(0, on_ev, &s, &p);
                size_t step = steps[k] ? steps[k] : n;
                for (size_t i = 0; r == 0 && i < n; i += step)
                        r = kube_watch_parser_feed(p, stream + i, MIN(step, n - i), NULL);
                ok(r == 0 && s.n == 4 &&
                           strcmp(s.log, "ADDED a; MODIFIED a; BOOKMARK ; DELETED a; ") == 0 &&
                           strcmp(s.rv, "13") == 0 && kube_watch_parser_pending(p) == 0,
                   "watch parser, pieces of %zu: the four events, resourceVersion 13 (%s)", step,
                   s.log);
                kube_watch_parser_free(p);
        }
        static const struct {
                const char *in;
                int want;
                const char *what;
        } bad[] = {
                {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                 "\"status\":\"Failure\",\"message\":\"too old resource version: 1 (5)\","
                 "\"reason\":\"Expired\",\"code\":410}}\n",
                 -ETIME, "an ERROR event with a 410 Status: -ETIME"},
                {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":403,"
                 "\"reason\":\"Forbidden\",\"message\":\"no\"}}\n",
                 -EACCES, "an ERROR event with a 403 Status: -EACCES"},
                {"{\"type\":\"ADDED\"}\n", -EBADMSG, "no object"},
                {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}\n", -EBADMSG,
                 "no resourceVersion"},
                {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1 2\"}}}\n",
                 -EBADMSG, "a resourceVersion with a space"},
                {"{\"type\":\"SYNC\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n",
                 -EBADMSG, "an unknown type"},
                {"{\"type\":\"ADDED\",\"object\":[]}\n", -EBADMSG, "an object that is an array"},
                {"not json\n", -EBADMSG, "not JSON"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct kube_watch_parser *p = NULL;
                struct seen s = {};
                struct kube_error e = {};
                (void) kube_watch_parser_new(0, on_ev, &s, &p);
                int r = kube_watch_parser_feed(p, bad[i].in, strlen(bad[i].in), &e);
                int again = kube_watch_parser_feed(p, stream, n, NULL);
                ok(r == bad[i].want && again == r && s.n == 0,
                   "watch parser: %s, and the error sticks (%d %d: %s)", bad[i].what, r, again,
                   e.message);
                kube_watch_parser_free(p);
        }
        {
                struct kube_watch_parser *p = NULL;
                struct seen s = {};
                struct kube_error e = {};
                (void) kube_watch_parser_new(64, on_ev, &s, &p);
                char big[100];
                memset(big, 'x', sizeof(big));
                int r = kube_watch_parser_feed(p, big, 40, NULL);
                ok(r == 0 && kube_watch_parser_pending(p) == 40, "an incomplete line is pending");
                r = kube_watch_parser_feed(p, big, 40, &e);
                ok(r == -E2BIG && strstr(e.message, "over 64 bytes"),
                   "a line over the bound: -E2BIG before it ends (%s)", e.message);
                kube_watch_parser_free(p);
        }
        {
                struct kube_watch_parser *p = NULL;
                struct seen s = {.stop_after = 1};
                (void) kube_watch_parser_new(0, on_ev, &s, &p);
                ok(kube_watch_parser_feed(p, stream, n, NULL) == -EPIPE && s.n == 1,
                   "the callback's error stops the parser at that event");
                kube_watch_parser_free(p);
        }
}

static int seed(struct env *v, const char *name, const char *label) {
        char obj[1024];
        int st = 0;
        (void) snprintf(obj, sizeof(obj),
                        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
                        "\"namespace\":\"default\",\"labels\":{\"w\":\"%s\"}},\"spec\":"
                        "{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
                        name, label);
        int r = standin_control(v->s, "POST", "/_standin/objects", obj, &st, NULL);
        return r < 0 ? r : st == 200 ? 0 : -EPROTO;
}

static int unseed(struct env *v, const char *name) {
        char path[256];
        int st = 0;
        (void) snprintf(path, sizeof(path),
                        "/_standin/objects?resource=pods&namespace=default&name=%s", name);
        int r = standin_control(v->s, "DELETE", path, NULL, &st, NULL);
        return r < 0 ? r : st == 200 ? 0 : -EPROTO;
}

struct watcher {
        struct kube_client *k;
        struct kube_watch_options o;
        struct seen s;
        pthread_mutex_t lock;
        bool cancel;
        int r;
        char path[256];
};

static bool w_cancelled(void *userdata) {
        struct watcher *w = userdata;
        pthread_mutex_lock(&w->lock);
        bool c = w->cancel;
        pthread_mutex_unlock(&w->lock);
        return c;
}

static int w_event(void *userdata, const struct kube_event *ev) {
        return on_ev(&((struct watcher *) userdata)->s, ev);
}

static void *w_main(void *userdata) {
        struct watcher *w = userdata;
        struct kube_error e = {};
        w->r = kube_watch(w->k, w->path, &w->o, &e);
        return NULL;
}

/* Waits (generously) until the watcher has seen n events. */
static bool w_wait(struct watcher *w, unsigned n) {
        for (int i = 0; i < 3000; i++) {
                pthread_mutex_lock(&w->lock);
                bool done = w->s.n >= n;
                pthread_mutex_unlock(&w->lock);
                if (done)
                        return true;
                (void) usleep(10000);
        }
        return false;
}

static void test_watch(struct env *v) {
        _cleanup_(kube_client_freep) struct kube_client *k = NULL;
        _cleanup_json_doc_ struct json_doc *list = NULL;
        struct kube_error e = {};
        const char *rv = NULL;
        char list_rv[KUBE_RV_MAX] = "";

        if (!ok(standin_kube_client(v->s, &k) == 0 && seed(v, "w1", "yes") == 0 &&
                        seed(v, "other", "no") == 0,
                "watch: a client, two pods (one labelled w=yes)"))
                return;
        /* The current state first, then the changes; the label selector applies. */
        struct watcher w = {.k = k, .lock = PTHREAD_MUTEX_INITIALIZER};
        w.s.lock = &w.lock;
        w.o = (struct kube_watch_options){
                .timeout_s = 60, .on_event = w_event, .cancelled = w_cancelled, .userdata = &w};
        (void) snprintf(w.path, sizeof(w.path),
                        "/api/v1/namespaces/default/pods?labelSelector=w%%3Dyes");
        pthread_t t;
        if (!ok(pthread_create(&t, NULL, w_main, &w) == 0, "watch: started"))
                return;
        ok(w_wait(&w, 1), "  the labelled pod, as ADDED");
        ok(seed(v, "w2", "yes") == 0 && seed(v, "other2", "no") == 0 && unseed(v, "w1") == 0 &&
                   w_wait(&w, 3),
           "  a new labelled pod and a deletion, as they happen");
        pthread_mutex_lock(&w.lock);
        w.cancel = true;
        pthread_mutex_unlock(&w.lock);
        (void) pthread_join(t, NULL);
        ok(w.r == -ECANCELED && strcmp(w.s.log, "ADDED w1; ADDED w2; DELETED w1; ") == 0,
           "  cancelled: -ECANCELED; only the labelled pods (%d: %s)", w.r, w.s.log);

        /* Resuming from a list's resourceVersion: only what came after it. */
        ok(kube_get(k, "/api/v1/namespaces/default/pods?labelSelector=w%3Dyes", &list, &e) == 0 &&
                   json_get_string(json_get(json_doc_root(list), "metadata"), "resourceVersion",
                                   &rv) == 0,
           "watch: a list and its resourceVersion");
        (void) snprintf(list_rv, sizeof(list_rv), "%s", rv ? rv : "");
        (void) seed(v, "w3", "yes");
        struct seen s = {};
        struct kube_watch_options o = {
                .resource_version = list_rv, .timeout_s = 1, .on_event = on_ev, .userdata = &s};
        int r = kube_watch(k, "/api/v1/namespaces/default/pods?labelSelector=w%3Dyes", &o, &e);
        ok(r == 0 && strcmp(s.log, "ADDED w3; ") == 0,
           "  from it, only the later pod; the server's timeoutSeconds ends it: 0 (%d %s)", r,
           s.log);

        /* 410: in the stream (a resourceVersion the server cannot serve), as the answer. */
        s = (struct seen){};
        o.resource_version = "x";
        r = kube_watch(k, "/api/v1/pods", &o, &e);
        ok(r == -ETIME && e.code == 410 && s.n == 0,
           "watch: an ERROR event with 410 in the stream: -ETIME (%s)", e.message);
        int st = 0;
        ok(standin_control(v->s, "POST", "/_standin/fault",
                           "{\"match\":\"/api/v1/namespaces/default/pods\",\"status\":410,"
                           "\"count\":1}",
                           &st, NULL) == 0 &&
                   st == 200,
           "watch: a fault, 410 for the next request");
        o.resource_version = list_rv;
        r = kube_watch(k, "/api/v1/namespaces/default/pods", &o, &e);
        ok(r == -ETIME && e.code == 410, "  410 as the answer: -ETIME (%s)", e.message);
        (void) standin_control(v->s, "DELETE", "/_standin/fault", NULL, &st, NULL);

        /* The bound: a pod's event over max_event. */
        s = (struct seen){};
        o = (struct kube_watch_options){
                .timeout_s = 5, .max_event = 256, .on_event = on_ev, .userdata = &s};
        r = kube_watch(k, "/api/v1/namespaces/default/pods?labelSelector=w%3Dyes", &o, &e);
        ok(r == -E2BIG && s.n == 0, "watch: an event over 256 bytes: -E2BIG (%s)", e.message);
        /* The callback stops it. */
        s = (struct seen){.stop_after = 1};
        o = (struct kube_watch_options){.timeout_s = 5, .on_event = on_ev, .userdata = &s};
        r = kube_watch(k, "/api/v1/namespaces/default/pods", &o, &e);
        ok(r == -EPIPE && s.n == 1, "watch: the callback's error ends it and is returned");
        /* Refusals. */
        o.resource_version = "1 2";
        ok(kube_watch(k, "/api/v1/pods", &o, &e) == -EINVAL, "watch: a bad resourceVersion");
        o.resource_version = NULL;
        o.timeout_s = KUBE_WATCH_TIMEOUT_S_MAX + 1;
        ok(kube_watch(k, "/api/v1/pods", &o, &e) == -EINVAL, "watch: a timeout over the bound");
        o.timeout_s = 5;
        ok(kube_watch(k, "/api/v1/namespaces/nope/widgets", &o, &e) == -ENOENT,
           "watch: an unknown resource: -ENOENT (the answer's Status)");
        (void) unseed(v, "w2");
        (void) unseed(v, "w3");
        (void) unseed(v, "other");
        (void) unseed(v, "other2");
}

int main(int argc, char **argv) {
        struct env v = {};
        const char *top = getenv("CLOUDTASER_TOP");
        (void) argc;

        if (getenv("TEST_KUBE_INCLUSTER"))
                return incluster_child();
        (void) snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/k8s", top ? top : ".");
        test_status();
        test_watch_parser();

        int r = standin_start_kube(NULL, &v.s);
        if (r < 0) {
                ok(false, "the stand-in kube-apiserver starts (%d)", r);
                return tap_done();
        }
        (void) snprintf(workdir, sizeof(workdir), "%s", v.s->dir);
        test_kubeconfig();

        (void) snprintf(v.token_file, sizeof(v.token_file), "%s/kube-token", v.s->dir);
        (void) write_text(v.token_file, v.s->root_token, 0600);
        (void) snprintf(v.kubeconfig, sizeof(v.kubeconfig), "%s/kubeconfig", v.s->dir);
        char kc[8192];
        (void) snprintf(kc, sizeof(kc),
                        "apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
                        "clusters:\n- name: standin\n  cluster:\n    server: %s\n"
                        "    certificate-authority: %s\n"
                        "contexts:\n- name: standin\n  context: {cluster: standin, user: admin}\n"
                        "- name: exec\n  context: {cluster: standin, user: exec}\n"
                        "- name: exec-bad\n  context: {cluster: standin, user: exec-bad}\n"
                        "users:\n- name: admin\n  user: {tokenFile: kube-token}\n"
                        "- name: exec\n  user:\n    exec:\n"
                        "      apiVersion: client.authentication.k8s.io/v1\n"
                        "      command: ./plugin.sh\n      args: [get-token]\n"
                        "      env: [{name: FOO, value: bar}]\n"
                        "- name: exec-bad\n  user:\n    exec:\n"
                        "      apiVersion: client.authentication.k8s.io/v1\n"
                        "      command: ./plugin.sh\n      args: [get-token]\n",
                        v.s->addr, v.s->ca_path);
        (void) write_text(v.kubeconfig, kc, 0600);

        test_api(&v);
        test_exec(&v);
        test_watch(&v);
        test_incluster(&v, argv[0]);
        standin_stop(v.s);
        return tap_done();
}
