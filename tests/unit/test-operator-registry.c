/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for operator/registry's pure parts: image references (the normalisation Kubernetes
 * and containerd apply), WWW-Authenticate challenges, the kubelet's dockerconfigjson matching,
 * manifest and index decoding with platform selection (on a real Docker Hub manifest list), config
 * decoding, the cache (TTL on the hook clock, LRU) and the lookup's cache path and error texts.
 * The network behaviour is tested end to end against a real docker-registry
 * (tests/e2e/test-registry.sh). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/injection.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/registry.h"
#include "operator/registry/internal.h"
#include "tests/tap.h"

#define D64(c)                                                                                    \
        c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
                c c c c c c c c c c c c c c c c c c c
#define DIGEST_A "sha256:" D64("a")
#define DIGEST_B "sha256:" D64("b")

static void test_references(void) {
        static const struct {
                const char *in;
                int rc;
                const char *domain, *host, *path, *tag, *digest;
        } cases[] = {
                {"nginx", 0, "docker.io", "registry-1.docker.io", "library/nginx", "latest", ""},
                {"nginx:1.25", 0, "docker.io", "registry-1.docker.io", "library/nginx", "1.25", ""},
                {"library/nginx", 0, "docker.io", "registry-1.docker.io", "library/nginx", "latest",
                 ""},
                {"docker.io/nginx", 0, "docker.io", "registry-1.docker.io", "library/nginx",
                 "latest", ""},
                {"index.docker.io/nginx", 0, "docker.io", "registry-1.docker.io", "library/nginx",
                 "latest", ""},
                {"docker.io/library/nginx@" DIGEST_A, 0, "docker.io", "registry-1.docker.io",
                 "library/nginx", "", DIGEST_A},
                {"bitnami/redis:7.2", 0, "docker.io", "registry-1.docker.io", "bitnami/redis",
                 "7.2", ""},
                {"localhost:5000/team/app:v1", 0, "localhost:5000", "localhost:5000", "team/app",
                 "v1", ""},
                {"localhost/app", 0, "localhost", "localhost", "app", "latest", ""},
                {"127.0.0.1:5000/x/y", 0, "127.0.0.1:5000", "127.0.0.1:5000", "x/y", "latest", ""},
                {"[::1]:5000/x:y", 0, "[::1]:5000", "[::1]:5000", "x", "y", ""},
                {"gcr.io/proj/img:tag@" DIGEST_B, 0, "gcr.io", "gcr.io", "proj/img", "tag",
                 DIGEST_B},
                {"registry.example.com:443/a/b/c", 0, "registry.example.com:443",
                 "registry.example.com:443", "a/b/c", "latest", ""},
                {"Registry.Example.com/a", 0, "Registry.Example.com", "Registry.Example.com", "a",
                 "latest", ""},
                {"Foo/bar", 0, "Foo", "Foo", "bar", "latest", ""}, /* upper case: a registry */
                {"a.b/c__d/e-f/g.h_i---j", 0, "a.b", "a.b", "c__d/e-f/g.h_i---j", "latest", ""},
                {"ghcr.io/org/app:v1.2.3-rc_1", 0, "ghcr.io", "ghcr.io", "org/app", "v1.2.3-rc_1",
                 ""},
                {.in = "", .rc = -EINVAL},
                {.in = "NGINX", .rc = -EINVAL},
                {.in = "nginx:", .rc = -EINVAL},
                {.in = "nginx:-x", .rc = -EINVAL},
                {.in = "nginx:a:b", .rc = -EINVAL},
                {.in = "nginx@sha256:abc", .rc = -EINVAL},
                {.in = "nginx@sha256:" D64("A"), .rc = -EINVAL},
                {.in = "nginx@sha512:" D64("a") D64("a"), .rc = -EPROTONOSUPPORT},
                {.in = "nginx@:" D64("a"), .rc = -EINVAL},
                {.in = "a//b", .rc = -EINVAL},
                {.in = "-a", .rc = -EINVAL},
                {.in = "a_", .rc = -EINVAL},
                {.in = "a___b", .rc = -EINVAL},
                {.in = "a b", .rc = -EINVAL},
                {.in = "a/B", .rc = -EINVAL},
                {.in = "localhost:abc/x", .rc = -EINVAL},
                {.in = "reg-.io/x", .rc = -EINVAL},
                {.in = "localhost:5000/", .rc = -EINVAL},
                {.in = D64("a"), .rc = -EINVAL},
                {.in = "nginx\n", .rc = -EINVAL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct registry_ref ref;
                const char *why = NULL;
                int r = registry_parse_reference(cases[i].in, &ref, &why);
                if (cases[i].rc < 0) {
                        ok(r == cases[i].rc && why && why[0], "reference %zu \"%.*s\" refused (%s)",
                           i, (int) strcspn(cases[i].in, "\n"), cases[i].in, why ? why : "-");
                        continue;
                }
                ok(r == 0 && strcmp(ref.domain, cases[i].domain) == 0 &&
                           strcmp(ref.host, cases[i].host) == 0 &&
                           strcmp(ref.path, cases[i].path) == 0 &&
                           strcmp(ref.tag, cases[i].tag) == 0 &&
                           strcmp(ref.digest, cases[i].digest) == 0,
                   "reference \"%s\" -> %s %s %s :%s @%s", cases[i].in, r == 0 ? ref.domain : "?",
                   r == 0 ? ref.host : "?", r == 0 ? ref.path : "?", r == 0 ? ref.tag : "?",
                   r == 0 ? ref.digest : "?");
        }
        /* Without a slash, "localhost:5000" is a name and a tag, as in distribution. */
        struct registry_ref ref;
        ok(registry_parse_reference("localhost:5000", &ref, NULL) == 0 &&
                   strcmp(ref.path, "library/localhost") == 0 && strcmp(ref.tag, "5000") == 0,
           "\"localhost:5000\" (no slash) is Docker Hub's library/localhost, tag 5000");

        /* length limits: the name (domain/path) at most 255, the tag at most 128 */
        char name[300], tag[200];
        memset(name, 'a', sizeof(name));
        memcpy(name, "r.io/", 5);
        name[255] = '\0';
        ok(registry_parse_reference(name, &ref, NULL) == 0, "a 255-character name is accepted");
        name[255] = 'a';
        name[256] = '\0';
        is_int(registry_parse_reference(name, &ref, NULL), -EINVAL,
               "a 256-character name is refused");
        memset(tag, 'b', sizeof(tag));
        memcpy(tag, "x:", 2);
        tag[2 + 128] = '\0';
        ok(registry_parse_reference(tag, &ref, NULL) == 0 && strlen(ref.tag) == 128,
           "a 128-character tag is accepted");
        tag[2 + 128] = 'b';
        tag[2 + 129] = '\0';
        is_int(registry_parse_reference(tag, &ref, NULL), -EINVAL,
               "a 129-character tag is refused");
        /* library/ counts towards the limit for official images */
        char off[300];
        memset(off, 'a', sizeof(off));
        off[255 - 10 - 8] = '\0'; /* "docker.io/" + "library/" + 237 = 255 */
        ok(registry_parse_reference(off, &ref, NULL) == 0 && strlen(ref.path) == 245,
           "an official name of exactly 255 characters with docker.io/library/");
        off[255 - 10 - 8] = 'a';
        off[255 - 10 - 8 + 1] = '\0';
        is_int(registry_parse_reference(off, &ref, NULL), -EINVAL, "and one more is refused");
}

static void test_challenges(void) {
        static const struct {
                const char *in;
                int rc;
                enum registry_auth_scheme scheme;
                const char *realm, *service, *scope;
        } cases[] = {
                /* Docker Hub (docs.docker.com/registry/spec/auth/token) */
                {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                 "scope=\"repository:library/nginx:pull\"",
                 0, REGISTRY_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
                 "repository:library/nginx:pull"},
                /* GHCR */
                {"Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:"
                 "user/image:pull\"",
                 0, REGISTRY_AUTH_BEARER, "https://ghcr.io/token", "ghcr.io",
                 "repository:user/image:pull"},
                /* docker-registry with htpasswd */
                {"Basic realm=\"cloudtaser-test\"", 0, REGISTRY_AUTH_BASIC, "cloudtaser-test", "",
                 ""},
                /* ECR */
                {"Basic realm=\"https://1.dkr.ecr.eu-west-1.amazonaws.com/\",service=\"ecr."
                 "amazonaws.com\"",
                 0, REGISTRY_AUTH_BASIC, "https://1.dkr.ecr.eu-west-1.amazonaws.com/",
                 "ecr.amazonaws.com", ""},
                {"Basic realm=\"x\", Bearer realm=\"https://a/t\",service=\"s\"", 0,
                 REGISTRY_AUTH_BEARER, "https://a/t", "s", ""},
                {"bearer REALM=\"https://a/t\" , Service = \"s\"", 0, REGISTRY_AUTH_BEARER,
                 "https://a/t", "s", ""},
                {"Bearer realm=\"a\\\"b\\\\c\"", 0, REGISTRY_AUTH_BEARER, "a\"b\\c", "", ""},
                {"Negotiate abc==, Basic realm=\"r\"", 0, REGISTRY_AUTH_BASIC, "r", "", ""},
                {"Digest realm=\"d\", nonce=\"n\", Basic realm=\"r\"", 0, REGISTRY_AUTH_BASIC, "r",
                 "", ""},
                {"Basic realm=token-form", 0, REGISTRY_AUTH_BASIC, "token-form", "", ""},
                {"Bearer realm=\"https://a/t\",error=\"insufficient_scope\"", 0,
                 REGISTRY_AUTH_BEARER, "https://a/t", "", ""},
                {"Basic", 0, REGISTRY_AUTH_BASIC, "", "", ""},
                {.in = "Negotiate", .rc = -EPROTONOSUPPORT},
                {.in = "", .rc = -EPROTONOSUPPORT},
                {.in = "Bearer service=\"s\"", .rc = -EINVAL},
                {.in = "Bearer realm=\"https://a/t", .rc = -EBADMSG},
                {.in = "realm=\"x\"", .rc = -EBADMSG},
                {.in = "Bearer realm=https://a/t", .rc = -EBADMSG},
                {.in = "Bearer realm=\"a\x01\"", .rc = -EBADMSG},
                {.in = "Bearer realm=\"x\" ; y", .rc = -EBADMSG},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct registry_challenge ch;
                int r = registry_parse_challenge(cases[i].in, &ch);
                if (cases[i].rc < 0) {
                        is_int(r, cases[i].rc, "challenge %zu refused", i);
                        continue;
                }
                ok(r == 0 && ch.scheme == cases[i].scheme &&
                           strcmp(ch.realm, cases[i].realm) == 0 &&
                           strcmp(ch.service, cases[i].service) == 0 &&
                           strcmp(ch.scope, cases[i].scope) == 0,
                   "challenge %zu: scheme %d realm '%s' service '%s' scope '%s'", i,
                   r == 0 ? (int) ch.scheme : -1, r == 0 ? ch.realm : "", r == 0 ? ch.service : "",
                   r == 0 ? ch.scope : "");
        }
        char big[3000];
        memcpy(big, "Bearer realm=\"", 14);
        memset(big + 14, 'x', 2100);
        memcpy(big + 14 + 2100, "\"", 2);
        struct registry_challenge ch;
        is_int(registry_parse_challenge(big, &ch), -E2BIG, "a realm over 2047 bytes is -E2BIG");

        /* What ECR and others send: several WWW-Authenticate fields (common/http joins them with
         * ", "), the one that applies not the last, over 255 bytes, with a long scope. */
        char scope[1500], list[4096];
        size_t o = 0;
        for (int i = 0; o + 40 < sizeof(scope) - 40; i++)
                o += (size_t) snprintf(scope + o, sizeof(scope) - o,
                                       "%srepository:team/app%02d:pull", i ? " " : "", i);
        (void) snprintf(list, sizeof(list),
                        "Negotiate, Bearer realm=\"https://auth.example/token\",service=\"reg\","
                        "scope=\"%s\", Basic realm=\"https://reg.example/\"",
                        scope);
        ok(registry_parse_challenge(list, &ch) == 0 && ch.scheme == REGISTRY_AUTH_BEARER &&
                   strcmp(ch.realm, "https://auth.example/token") == 0 &&
                   strcmp(ch.scope, scope) == 0,
           "the Bearer challenge among three, with a %zu-byte scope, is taken whole",
           strlen(scope));
        (void) snprintf(list, sizeof(list),
                        "Basic realm=\"https://reg.example/\", Bearer realm=\"https://a/t\","
                        "service=\"%0300d\"",
                        0);
        ok(registry_parse_challenge(list, &ch) == 0 && ch.scheme == REGISTRY_AUTH_BEARER &&
                   strlen(ch.service) == 300,
           "Bearer after Basic is preferred; a 300-byte service is kept");
        o = 0;
        for (int i = 0; i < REGISTRY_MAX_CHALLENGES; i++)
                o += (size_t) snprintf(list + o, sizeof(list) - o, "%sDigest realm=\"d%d\"",
                                       i ? ", " : "", i);
        (void) snprintf(list + o, sizeof(list) - o, ", Basic realm=\"r\"");
        is_int(registry_parse_challenge(list, &ch), -E2BIG,
               "more than REGISTRY_MAX_CHALLENGES challenges are -E2BIG");
}

static char *b64(const char *s) {
        static char out[8][256];
        static unsigned i;
        struct buf b = BUF_INIT(255, 0);
        char *o = out[i++ % 8];
        if (base64_encode(&b, s, strlen(s)) < 0)
                abort();
        memcpy(o, b.data, b.len + 1);
        buf_done(&b);
        return o;
}

static void test_credentials(void) {
        char c1[512], c2[2048], legacy[256];
        (void) snprintf(c1, sizeof(c1),
                        "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"%s\"}}}",
                        b64("hubuser:hubpass"));
        (void) snprintf(c2, sizeof(c2),
                        "{\"auths\":{"
                        "\"localhost:5000\":{\"username\":\"u\",\"password\":\"p:w\"},"
                        "\"quay.io/org\":{\"auth\":\"%s\"},"
                        "\"quay.io\":{\"auth\":\"%s\",\"username\":\"ignored\"},"
                        "\"*.gcr.io\":{\"auth\":\"%s\"},"
                        "\"http://myreg:8080/v2/\":{\"auth\":\"%s\"},"
                        "\"bad.example\":{\"auth\":\"!!notbase64\"},"
                        "\"nocolon.example\":{\"auth\":\"%s\"},"
                        "\"empty.example\":{}"
                        "}}",
                        b64("orguser:x"), b64("quayuser:y"), b64("g:z"), b64("m:n"),
                        b64("nocolon"));
        (void) snprintf(legacy, sizeof(legacy), "{\"legacy.example:5000\":{\"auth\":\"%s\"}}",
                        b64("old:format"));
        const char *configs[] = {"not json", c1, c2, legacy};

        static const struct {
                const char *image;
                const char *want[3]; /* user:pass in order */
                const char *key0;
        } cases[] = {
                {"nginx", {"hubuser:hubpass"}, "index.docker.io"},
                {"docker.io/foo/bar", {"hubuser:hubpass"}, "index.docker.io"},
                {"localhost:5000/team/app", {"u:p:w"}, "localhost:5000"},
                {"localhost:5001/team/app", {NULL}, NULL},
                {"quay.io/org/app", {"orguser:x", "quayuser:y"}, "quay.io/org"},
                {"quay.io/other/app", {"quayuser:y"}, "quay.io"},
                {"eu.gcr.io/p/i", {"g:z"}, "*.gcr.io"},
                {"gcr.io/p/i", {NULL}, NULL},
                {"a.eu.gcr.io/p/i", {NULL}, NULL},
                {"myreg:8080/x", {"m:n"}, "myreg:8080"},
                {"legacy.example:5000/x", {"old:format"}, "legacy.example:5000"},
                {"bad.example/x", {NULL}, NULL},
                {"empty.example/x", {NULL}, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct registry_ref ref;
                struct registry_credentials cr;
                if (registry_parse_reference(cases[i].image, &ref, NULL) < 0 ||
                    registry_match_credentials(configs, ELEMENTSOF(configs), &ref, &cr) < 0) {
                        ok(false, "credentials for %s", cases[i].image);
                        continue;
                }
                size_t want_n = 0;
                bool same = true;
                while (want_n < 3 && cases[i].want[want_n])
                        want_n++;
                same = cr.n == want_n;
                for (size_t j = 0; same && j < want_n; j++)
                        same = strcmp(cr.c[j].user_pass, cases[i].want[j]) == 0 &&
                               secmem_size(cr.c[j].user_pass) > 0;
                if (same && want_n)
                        same = strcmp(cr.c[0].key, cases[i].key0) == 0;
                ok(same, "credentials for %s: %zu (first key %s)", cases[i].image, cr.n,
                   cr.n ? cr.c[0].key : "-");
                ok(cr.skipped == 3, "skipped: the non-JSON config, bad base64, no colon (%zu)",
                   cr.skipped);
                registry_credentials_done(&cr);
        }

        /* A "docker.io" key matches by URL; index.docker.io is only the fallback. */
        char c3[512];
        (void) snprintf(c3, sizeof(c3),
                        "{\"auths\":{\"index.docker.io\":{\"auth\":\"%s\"},\"docker.io\":{"
                        "\"auth\":\"%s\"}}}",
                        b64("fallback:1"), b64("direct:2"));
        const char *cfg3[] = {c3};
        struct registry_ref ref;
        struct registry_credentials cr;
        ok(registry_parse_reference("nginx", &ref, NULL) == 0 &&
                   registry_match_credentials(cfg3, 1, &ref, &cr) == 0 && cr.n == 1 &&
                   strcmp(cr.c[0].user_pass, "direct:2") == 0,
           "a docker.io key wins over the index.docker.io fallback");
        registry_credentials_done(&cr);
        ok(registry_match_credentials(NULL, 0, &ref, &cr) == 0 && cr.n == 0,
           "no configs: no credentials");

        static const struct {
                const char *glob, *target;
                bool match;
        } globs[] = {
                {"*.gcr.io", "eu.gcr.io/x", true},
                {"*.gcr.io", "gcr.io/x", false},
                {"*.*.io", "a.b.io", true},
                {"r?g.io", "reg.io/a", true},
                {"r[a-f]g.io", "reg.io", true},
                {"r[^a-f]g.io", "reg.io", false},
                {"reg.io:5000", "reg.io/x", false},
                {"reg.io", "reg.io:5000/x", false},
                {"reg.io/team", "reg.io/team/app", true},
                {"reg.io/team", "reg.io/teamx/app", true}, /* a plain prefix, as the kubelet */
                {"reg.io/team/app", "reg.io/team", false},
                {"REG.io", "reg.io", false},
                {"r*", "registry.io", false},
                {"*", "localhost/x", true},
                {"[::1]:5000", "[::1]:5000/x", true},
        };
        for (size_t i = 0; i < ELEMENTSOF(globs); i++)
                is_int(registry_url_glob_match(globs[i].glob, globs[i].target), globs[i].match,
                       "glob %s vs %s", globs[i].glob, globs[i].target);
}

/* A real Docker Hub manifest list: library/ubuntu:latest as served by registry-1.docker.io
 * (quoted in github.com/gforghetti/docker-registry-api-bash-functions, README.md). */
static const char ubuntu_list[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",\n"
        "  \"manifests\": [\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:e7def0d56013d50204d73bb588d99e0baa7d69ea1bc1157549b898eb67287612\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"amd64\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:5b5f606437e81499737fae5e4419fe331362ea306adac1823a7eeb33f60913f2\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"arm\",\n"
        "        \"os\": \"linux\",\n"
        "        \"variant\": \"v7\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:1356a2700f74c312bff5edad20290e212123102a56545d2f1086e6313d0fe38e\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"arm64\",\n"
        "        \"os\": \"linux\",\n"
        "        \"variant\": \"v8\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:23aaa037c5d628464967fc7586a717c020cda939bccb0bf79a367356d4fbf4cd\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"386\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:f81270f3dd7a73154db578102a0e4afa98b34f3aa009a6f4c9770874a4b34523\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"ppc64le\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"size\": 1357,\n"
        "      \"digest\": "
        "\"sha256:f13c8e57117a2b1373d511c0b014899ad7401142057964fce9df6c6d224fd989\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"s390x\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    }\n"
        "  ]\n"
        "}\n";

/* The same source: library/mysql:5.7's Docker v2 manifest (layers shortened to two). */
static const char mysql_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+"
        "json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"size\":6869,\"digest\":\"sha256:"
        "66bc0f66b7af6ba3ea96582685d3afcd6dff93c2f8999da0ffadd67b280db548\"},\"layers\":[{"
        "\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":22496975,"
        "\"digest\":\"sha256:683abbb4ea60e108164f1d351e7bcf13daf45941137d800086447874df05f48e\"},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":1747,"
        "\"digest\":\"sha256:0550d17aeefaf608f887e92fa2ccb50b43e4f7b65d354d61c97217aa4a4cab80\"}"
        "]}";

/* library/redis's config from the same source (the fields we read, and the noise around). */
static const char redis_config[] =
        "{\"architecture\":\"amd64\",\"config\":{\"Hostname\":\"\",\"User\":\"\",\"ExposedPorts\":"
        "{\"6379/tcp\":{}},\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/"
        "sbin:/bin\",\"GOSU_VERSION=1.10\",\"REDIS_VERSION=4.0.10\"],\"Cmd\":[\"redis-server\"],"
        "\"ArgsEscaped\":true,\"Image\":\"sha256:"
        "d84b18dfd4e7c0574c1feba2bd8efd51a90dd7706f16f33b0bbdcc15b78d589b\",\"Volumes\":{\"/"
        "data\":{}},\"WorkingDir\":\"/data\",\"Entrypoint\":[\"docker-entrypoint.sh\"],"
        "\"OnBuild\":[],\"Labels\":null},\"container_config\":{\"Cmd\":[\"/bin/sh\",\"-c\",\"#"
        "(nop) \",\"CMD [\\\"redis-server\\\"]\"],\"Entrypoint\":[\"docker-entrypoint.sh\"]},"
        "\"created\":\"2018-06-27T01:18:26.908214534Z\",\"docker_version\":\"17.06.2-ce\","
        "\"os\":\"linux\"}";

static void test_manifests(void) {
        static const struct {
                const char *os, *arch, *digest;
        } plats[] = {
                {"linux", "amd64",
                 "sha256:e7def0d56013d50204d73bb588d99e0baa7d69ea1bc1157549b898eb67287612"},
                {"linux", "x86_64",
                 "sha256:e7def0d56013d50204d73bb588d99e0baa7d69ea1bc1157549b898eb67287612"},
                {"linux", "arm64",
                 "sha256:1356a2700f74c312bff5edad20290e212123102a56545d2f1086e6313d0fe38e"},
                {"linux", "aarch64",
                 "sha256:1356a2700f74c312bff5edad20290e212123102a56545d2f1086e6313d0fe38e"},
                {"linux", "arm64/v8",
                 "sha256:1356a2700f74c312bff5edad20290e212123102a56545d2f1086e6313d0fe38e"},
                {"linux", "arm",
                 "sha256:5b5f606437e81499737fae5e4419fe331362ea306adac1823a7eeb33f60913f2"},
                {"linux", "arm/v8", /* a 32-bit v8 runs v7 */
                 "sha256:5b5f606437e81499737fae5e4419fe331362ea306adac1823a7eeb33f60913f2"},
                {"linux", "armhf",
                 "sha256:5b5f606437e81499737fae5e4419fe331362ea306adac1823a7eeb33f60913f2"},
                {"linux", "i386",
                 "sha256:23aaa037c5d628464967fc7586a717c020cda939bccb0bf79a367356d4fbf4cd"},
                {"Linux", "S390X",
                 "sha256:f13c8e57117a2b1373d511c0b014899ad7401142057964fce9df6c6d224fd989"},
                {"linux", "arm/v6", NULL},
                {"linux", "armel", NULL},
                {"linux", "riscv64", NULL},
                {"windows", "amd64", NULL},
                {"linux", "arm64/v9", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(plats); i++) {
                struct registry_platform p;
                struct registry_descriptor d;
                enum registry_manifest_kind k;
                char avail[512];
                const char *why = NULL;
                int r = registry_platform_normalize(plats[i].os, plats[i].arch, &p);
                if (r == 0)
                        r = registry_decode_manifest(ubuntu_list, strlen(ubuntu_list),
                                                     "application/vnd.docker.distribution."
                                                     "manifest.list.v2+json",
                                                     &p, &k, &d, avail, sizeof(avail), &why);
                if (plats[i].digest)
                        ok(r == 0 && k == REGISTRY_MANIFEST_INDEX &&
                                   strcmp(d.digest, plats[i].digest) == 0 && d.size == 1357 &&
                                   strcmp(d.media_type, "application/vnd.docker.distribution."
                                                        "manifest.v2+json") == 0,
                           "ubuntu list, %s/%s -> %.19s", plats[i].os, plats[i].arch,
                           r == 0 ? d.digest : "error");
                else
                        ok(r == -ENOENT &&
                                   strcmp(avail, "linux/amd64, linux/arm/v7, linux/arm64/v8, "
                                                 "linux/386, linux/ppc64le, linux/s390x") == 0,
                           "ubuntu list, %s/%s: none, available '%s'", plats[i].os, plats[i].arch,
                           avail);
        }

        struct registry_platform amd64, arm64;
        struct registry_descriptor d;
        enum registry_manifest_kind k;
        const char *why = NULL;
        (void) registry_platform_normalize("linux", "amd64", &amd64);
        (void) registry_platform_normalize("linux", "arm64", &arm64);
        ok(registry_decode_manifest(ubuntu_list, strlen(ubuntu_list), "", &amd64, &k, &d, NULL, 0,
                                    &why) == 0 &&
                   k == REGISTRY_MANIFEST_INDEX,
           "without a Content-Type, the body's mediaType tells an index");

        ok(registry_decode_manifest(mysql_manifest, strlen(mysql_manifest),
                                    "application/vnd.docker.distribution.manifest.v2+json", &amd64,
                                    &k, &d, NULL, 0, &why) == 0 &&
                   k == REGISTRY_MANIFEST_IMAGE &&
                   strcmp(d.digest, "sha256:66bc0f66b7af6ba3ea96582685d3afcd6dff93c2f8999da0ffadd6"
                                    "7b280db548") == 0 &&
                   d.size == 6869,
           "Docker v2 manifest: its config descriptor");
        is_int(registry_decode_manifest(mysql_manifest, strlen(mysql_manifest),
                                        "application/vnd.oci.image.index.v1+json", &amd64, &k, &d,
                                        NULL, 0, &why),
               -EBADMSG, "a manifest served as an index is refused");

        /* A BuildKit OCI index: platforms plus attestation manifests (unknown/unknown), an
         * artifact entry, and one entry without a platform. */
        char oci[2048];
        (void) snprintf(
                oci, sizeof(oci),
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                "\"manifests\":["
                "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
                "\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
                "\"size\":11,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"},"
                "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}},"
                "{\"mediaType\":\"application/vnd.cncf.helm.chart\",\"digest\":\"%s\",\"size\":1,"
                "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}"
                "]}",
                DIGEST_A, DIGEST_B, DIGEST_B);
        char avail[128];
        ok(registry_decode_manifest(oci, strlen(oci), "application/vnd.oci.image.index.v1+json",
                                    &arm64, &k, &d, NULL, 0, &why) == 0 &&
                   strcmp(d.digest, DIGEST_A) == 0 && d.size == 10,
           "OCI index: arm64 without a variant is arm64/v8");
        ok(registry_decode_manifest(oci, strlen(oci), NULL, &amd64, &k, &d, avail, sizeof(avail),
                                    &why) == -ENOENT &&
                   strcmp(avail, "linux/arm64/v8") == 0,
           "attestations and artifacts are never chosen nor listed ('%s')", avail);
        char noplat[512];
        (void) snprintf(noplat, sizeof(noplat),
                        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci."
                        "image.manifest.v1+json\",\"digest\":\"%s\",\"size\":3}]}",
                        DIGEST_B);
        ok(registry_decode_manifest(noplat, strlen(noplat), "application/json", &amd64, &k, &d,
                                    NULL, 0, &why) == 0 &&
                   k == REGISTRY_MANIFEST_INDEX && strcmp(d.digest, DIGEST_B) == 0,
           "an entry without a platform is taken when nothing matches better (shape: index)");

        static const struct {
                const char *body, *ct;
                int rc;
        } bad[] = {
                {"{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", "", -EPROTONOSUPPORT},
                {"{}", "application/vnd.docker.distribution.manifest.v1+prettyjws",
                 -EPROTONOSUPPORT},
                {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+"
                 "json\",\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
                 "\"digest\":\"" DIGEST_A "\",\"size\":1},\"layers\":[]}",
                 "application/vnd.oci.image.manifest.v1+json", -EMEDIUMTYPE},
                {"{\"schemaVersion\":2,\"mediaType\":\"application/x-other\"}", "", -EMEDIUMTYPE},
                {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:12\"}}", "", -EBADMSG},
                {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DIGEST_A "\",\"size\":-1}}", "",
                 -EBADMSG},
                {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DIGEST_A "\",\"size\":\"1\"}}",
                 "", -EBADMSG},
                {"{\"schemaVersion\":2}", "", -EBADMSG},
                {"{\"schemaVersion\":3,\"config\":{}}", "", -EBADMSG},
                {"{\"schemaVersion\":2,\"manifests\":{}}", "", -EBADMSG},
                {"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"x\"}]}", "", -EBADMSG},
                {"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" DIGEST_A
                 "\",\"platform\":\"linux\"}]}",
                 "", -EBADMSG},
                {"{\"schemaVersion\":2,\"manifests\":[]}", "", -ENOENT},
                {"[]", "", -EBADMSG},
                {"not json", "", -EBADMSG},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                why = NULL;
                int r = registry_decode_manifest(bad[i].body, strlen(bad[i].body), bad[i].ct,
                                                 &amd64, &k, &d, NULL, 0, &why);
                ok(r == bad[i].rc && why, "bad manifest %zu: %d (%s)", i, r, why ? why : "-");
        }
}

static void test_configs(void) {
        struct registry_image_config c = {};
        ok(registry_decode_config(redis_config, strlen(redis_config), &c) == 0 &&
                   c.n_entrypoint == 1 && strcmp(c.entrypoint[0], "docker-entrypoint.sh") == 0 &&
                   !c.entrypoint[1] && c.n_cmd == 1 && strcmp(c.cmd[0], "redis-server") == 0 &&
                   !c.cmd[1],
           "redis config: Entrypoint and Cmd (not container_config's)");
        struct registry_image_config copy;
        ok(registry_image_config_copy(&c, &copy) == 0 && copy.entrypoint != c.entrypoint &&
                   strcmp(copy.cmd[0], "redis-server") == 0,
           "deep copy");
        registry_image_config_done(&copy);
        registry_image_config_done(&c);
        registry_image_config_done(&c);
        ok(!c.entrypoint && !c.cmd, "done twice is safe");

        static const struct {
                const char *body;
                int rc;
                size_t ne, nc;
        } cases[] = {
                {"{\"config\":{\"Entrypoint\":null,\"Cmd\":[\"a\",\"b c\"]}}", 0, 0, 2},
                {"{\"config\":{}}", 0, 0, 0},
                {"{}", 0, 0, 0},
                {"{\"config\":null}", 0, 0, 0},
                {"{\"config\":{\"Entrypoint\":[]}}", 0, 0, 0},
                {.body = "{\"config\":{\"Entrypoint\":\"/bin/sh\"}}", .rc = -EBADMSG},
                {.body = "{\"config\":{\"Cmd\":[1]}}", .rc = -EBADMSG},
                {.body = "{\"config\":{\"Cmd\":[null]}}", .rc = -EBADMSG},
                {.body = "{\"config\":[]}", .rc = -EBADMSG},
                {.body = "[]", .rc = -EBADMSG},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = registry_decode_config(cases[i].body, strlen(cases[i].body), &c);
                if (cases[i].rc)
                        is_int(r, cases[i].rc, "config %zu refused", i);
                else
                        ok(r == 0 && c.n_entrypoint == cases[i].ne && c.n_cmd == cases[i].nc &&
                                   c.entrypoint && !c.entrypoint[c.n_entrypoint] && c.cmd &&
                                   !c.cmd[c.n_cmd],
                           "config %zu: %zu/%zu, NULL-terminated arrays", i, c.n_entrypoint,
                           c.n_cmd);
                if (r == 0)
                        registry_image_config_done(&c);
        }
        /* more than REGISTRY_MAX_ARGS elements */
        struct buf b = BUF_INIT(1 << 20, 0);
        (void) buf_append_str(&b, "{\"config\":{\"Cmd\":[");
        for (int i = 0; i <= REGISTRY_MAX_ARGS; i++)
                (void) buf_append_str(&b, i ? ",\"x\"" : "\"x\"");
        (void) buf_append_str(&b, "]}}");
        is_int(registry_decode_config(b.data, b.len, &c), -E2BIG, "4097 arguments: -E2BIG");
        buf_done(&b);

        /* Entrypoint and Cmd together: at most INJECTION_MAX_LIST bytes of strings (each counted
         * with its terminator), what the wrapper's CLOUDTASER_ORIGINAL_CMD can hold. */
        static const struct {
                size_t entry, cmd; /* lengths of one Entrypoint and one Cmd string */
                int rc;
        } sizes[] = {
                {INJECTION_MAX_LIST / 2 - 1, INJECTION_MAX_LIST / 2 - 1, 0},
                {INJECTION_MAX_LIST / 2 - 1, INJECTION_MAX_LIST / 2, -E2BIG},
                {INJECTION_MAX_LIST, 0, -E2BIG},
                {0, INJECTION_MAX_LIST + 10, -E2BIG},
                {40000, 30000, -E2BIG},
        };
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                struct buf big = BUF_INIT(1 << 20, 0);
                (void) buf_append_str(&big, "{\"config\":{\"Entrypoint\":[\"");
                for (size_t j = 0; j < sizes[i].entry; j++)
                        (void) buf_append_byte(&big, 'e');
                (void) buf_append_str(&big, "\"],\"Cmd\":[\"");
                for (size_t j = 0; j < sizes[i].cmd; j++)
                        (void) buf_append_byte(&big, 'c');
                (void) buf_append_str(&big, "\"]}}");
                int r = registry_decode_config(big.data, big.len, &c);
                is_int(r, sizes[i].rc, "Entrypoint %zu + Cmd %zu bytes", sizes[i].entry,
                       sizes[i].cmd);
                if (r == 0)
                        registry_image_config_done(&c);
                buf_done(&big);
        }

        char dg[80];
        registry_digest("", 0, dg);
        is_str(dg, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "digest of nothing");
}

static uint64_t fake_now;
static uint64_t fake_clock(void *u) {
        (void) u;
        return fake_now;
}

static struct registry_image_config make_cfg(const char *ep) {
        static char *store[8][2];
        static unsigned n;
        char **e = store[n++ % 8];
        e[0] = (char *) ep;
        e[1] = NULL;
        return (struct registry_image_config){.entrypoint = e, .n_entrypoint = 1};
}

static void test_cache(void) {
        struct registry_client *r = NULL;
        struct registry_options o = {.tag_ttl_s = 10,
                                     .cache_entries = 3,
                                     .timeout_ms = 2000,
                                     .hooks = {.now_usec = fake_clock}};
        struct registry_image_config c = {};
        fake_now = 1000000;
        if (registry_client_new(&o, &r) < 0) {
                ok(false, "client");
                return;
        }
        struct registry_image_config t = make_cfg("/tag"), g = make_cfg("/digest");
        ok(registry_cache_put(r, "tag", true, &t) == 0 &&
                   registry_cache_put(r, "dig", false, &g) == 0,
           "put a tag and a digest entry");
        fake_now += 9999999;
        ok(registry_cache_get(r, "tag", &c) == 0 && strcmp(c.entrypoint[0], "/tag") == 0,
           "the tag entry is there just before its TTL");
        registry_image_config_done(&c);
        fake_now += 1;
        is_int(registry_cache_get(r, "tag", &c), -ENOENT, "and gone at the TTL");
        fake_now += 1000000000000ull;
        ok(registry_cache_get(r, "dig", &c) == 0 && strcmp(c.entrypoint[0], "/digest") == 0,
           "the digest entry has no TTL");
        registry_image_config_done(&c);

        /* LRU: three slots; "dig" was used last, so the next insertions evict others first. */
        struct registry_image_config x = make_cfg("/x");
        (void) registry_cache_put(r, "a", false, &x);
        (void) registry_cache_put(r, "b", false, &x);
        ok(registry_cache_get(r, "dig", &c) == 0, "dig still cached");
        registry_image_config_done(&c);
        (void) registry_cache_put(r, "c", false, &x); /* evicts "a", the least recently used */
        ok(registry_cache_get(r, "a", &c) == -ENOENT && registry_cache_get(r, "dig", &c) == 0,
           "the least recently used entry is evicted");
        registry_image_config_done(&c);
        ok(registry_cache_get(r, "b", &c) == 0, "b stays");
        registry_image_config_done(&c);
        struct registry_image_config y = make_cfg("/y");
        (void) registry_cache_put(r, "b", false, &y);
        ok(registry_cache_get(r, "b", &c) == 0 && strcmp(c.entrypoint[0], "/y") == 0,
           "a put replaces the entry of the same key");
        registry_image_config_done(&c);
        registry_client_free(r);

        /* The byte budget (16 MiB of strings): entries of ~60 KiB, far fewer than the entry
         * count allows; the least recently used go first. */
        o = (struct registry_options){.cache_entries = 1000, .hooks = {.now_usec = fake_clock}};
        if (registry_client_new(&o, &r) < 0) {
                ok(false, "client");
                return;
        }
        char *big = malloc(60000);
        if (!big) {
                ok(false, "malloc");
                registry_client_free(r);
                return;
        }
        memset(big, 'x', 59999);
        big[59999] = '\0';
        struct registry_image_config bc = make_cfg(big);
        bool all_put = true;
        for (int i = 0; i < 400; i++) {
                char key[32];
                (void) snprintf(key, sizeof(key), "big%d", i);
                all_put = all_put && registry_cache_put(r, key, false, &bc) == 0;
                if (i == 1) { /* keep big0 recently used */
                        all_put = all_put && registry_cache_get(r, "big0", &c) == 0;
                        registry_image_config_done(&c);
                }
        }
        ok(all_put, "400 entries of 60 KB put");
        is_int(registry_cache_get(r, "big1", &c), -ENOENT,
               "over the byte budget, the least recently used entry is evicted");
        is_int(registry_cache_get(r, "big100", &c), -ENOENT, "as are the others beyond 16 MiB");
        ok(registry_cache_get(r, "big399", &c) == 0 && strlen(c.entrypoint[0]) == 59999,
           "the newest entry is cached");
        registry_image_config_done(&c);
        free(big);
        registry_client_free(r);

        /* The lookup's cache path: keys by reference, platform and credential scope. */
        o = (struct registry_options){.timeout_ms = 1500, .hooks = {.now_usec = fake_clock}};
        if (registry_client_new(&o, &r) < 0) {
                ok(false, "client");
                return;
        }
        char err[512];
        struct registry_image_config hub = make_cfg("/hub");
        memcpy(hub.digest, DIGEST_A, sizeof(DIGEST_A));
        (void) registry_cache_put(r, "docker.io/library/nginx:latest|linux/amd64|-", true, &hub);
        ok(registry_lookup(r, "nginx", "linux", "x86_64", NULL, 0, &c, err, sizeof(err)) == 0 &&
                   strcmp(c.entrypoint[0], "/hub") == 0 && strcmp(c.digest, DIGEST_A) == 0,
           "a lookup of \"nginx\" on x86_64 is served from the cache");
        registry_image_config_done(&c);
        (void) registry_cache_put(r, "localhost:1/x@" DIGEST_B "|linux/arm64/v8|-", false, &hub);
        ok(registry_lookup(r, "localhost:1/x:v9@" DIGEST_B, "linux", "arm64", NULL, 0, &c, err,
                           sizeof(err)) == 0,
           "a digest reference is served by digest (its tag ignored)");
        registry_image_config_done(&c);
        /* Scoped to a credential we do not hold: not served; the lookup goes to the (closed)
         * port, and says so. */
        (void) registry_cache_put(
                r, "localhost:1/y:latest|linux/amd64|0123456789abcdef0123456789abcdef", true, &hub);
        memset(&c, 0, sizeof(c));
        int q = registry_lookup(r, "localhost:1/y", "linux", "amd64", NULL, 0, &c, err,
                                sizeof(err));
        ok(q < 0 && !c.entrypoint && strstr(err, "localhost:1") &&
                   strstr(err, "set the container's command or the cloudtaser.io/command "
                               "annotation") &&
                   !strchr(err, '\n'),
           "an entry cached under another credential is not served (%s)", err);
        q = registry_lookup(r, "Not A Reference", "linux", "amd64", NULL, 0, &c, err, sizeof(err));
        ok(q == -EINVAL && strstr(err, "invalid image reference \"Not A Reference\""),
           "an invalid reference: %s", err);
        q = registry_lookup(r, "nginx", "linux", "", NULL, 0, &c, err, sizeof(err));
        ok(q == -EINVAL && strstr(err, "platform"), "an empty architecture: %s", err);
        struct registry_stats st;
        registry_get_stats(r, &st);
        ok(st.lookups == 5 && st.cache_hits == 2 && st.errors == 3,
           "stats: %llu lookups, %llu hits, %llu errors", (unsigned long long) st.lookups,
           (unsigned long long) st.cache_hits, (unsigned long long) st.errors);
        /* The cache-only pass (the webhook's loop) with the pod's pull secrets (issue 11, item
         * 12): a result read with a credential answers for a pod that gives that credential, at
         * once, and for no other (another password, the same password for another registry,
         * none at all). */
        struct registry_ref pref;
        char scope[33], key[512], alice[256], bob[256], elsewhere[256];
        (void) registry_parse_reference("localhost:1/priv", &pref, NULL);
        registry_credential_scope(r, &pref, "alice:s3cret", scope);
        (void) snprintf(key, sizeof(key), "localhost:1/priv:latest|linux/amd64|%s", scope);
        struct registry_image_config priv = make_cfg("/private");
        (void) registry_cache_put(r, key, true, &priv);
        (void) snprintf(alice, sizeof(alice), "{\"auths\":{\"localhost:1\":{\"auth\":\"%s\"}}}",
                        b64("alice:s3cret"));
        (void) snprintf(bob, sizeof(bob), "{\"auths\":{\"localhost:1\":{\"auth\":\"%s\"}}}",
                        b64("alice:guess"));
        (void) snprintf(elsewhere, sizeof(elsewhere),
                        "{\"auths\":{\"localhost:2\":{\"auth\":\"%s\"}}}", b64("alice:s3cret"));
        const char *with_alice[] = {bob, alice}, *without[] = {bob, elsewhere};
        memset(&c, 0, sizeof(c));
        ok(registry_lookup_cached(r, "localhost:1/priv", "linux", "amd64", with_alice, 2, &c, err,
                                  sizeof(err)) == 0 &&
                   c.entrypoint && strcmp(c.entrypoint[0], "/private") == 0,
           "the cache-only pass serves a result read with a credential the pod's secrets hold");
        registry_image_config_done(&c);
        is_int(registry_lookup_cached(r, "localhost:1/priv", "linux", "amd64", without, 2, &c, err,
                                      sizeof(err)),
               -EWOULDBLOCK,
               "but not with another password, nor the same one for another registry");
        is_int(registry_lookup_cached(r, "localhost:1/priv", "linux", "amd64", NULL, 0, &c, err,
                                      sizeof(err)),
               -EWOULDBLOCK, "nor without any pull secret");
        const char *garbage[] = {"not json", "{\"auths\":7}"};
        is_int(registry_lookup_cached(r, "localhost:1/priv", "linux", "amd64", garbage, 2, &c, err,
                                      sizeof(err)),
               -EWOULDBLOCK, "nor with unreadable ones");
        registry_client_free(r);

        struct registry_options bad = {.cache_entries = 2000000};
        is_int(registry_client_new(&bad, &r), -EINVAL, "an absurd cache size is refused");
        struct registry_options noca = {.ca_file = "/nonexistent/ca.pem"};
        ok(registry_client_new(&noca, &r) < 0, "a missing CA file is an error");

        /* The insecure list names registries exactly (host[:port] of the reference). */
        static const char *const bad_hosts[][1] = {{""}, {"a b"}, {"https://reg"}, {"reg/x"}};
        for (size_t i = 0; i < ELEMENTSOF(bad_hosts); i++) {
                struct registry_options bo = {.insecure = bad_hosts[i], .n_insecure = 1};
                is_int(registry_client_new(&bo, &r), -EINVAL, "insecure entry '%s' is refused",
                       bad_hosts[i][0]);
        }
        static const char *const hosts[] = {"Reg.Local:5000", "localhost", "[::1]:5000"};
        struct registry_options io = {.insecure = hosts, .n_insecure = ELEMENTSOF(hosts)};
        r = NULL;
        is_int(registry_client_new(&io, &r), 0, "a client with three insecure registries");
        static const struct {
                const char *image;
                bool insecure;
        } named[] = {
                {"reg.local:5000/app", true},   {"REG.local:5000/team/app:v1", true},
                {"reg.local/app", false},       {"reg.local:5001/app", false},
                {"localhost/app", true},        {"localhost:5000/app", false},
                {"[::1]:5000/app", true},       {"nginx", false},
                {"docker.io/library/x", false},
        };
        for (size_t i = 0; r && i < ELEMENTSOF(named); i++) {
                struct registry_ref ref;
                ok(registry_parse_reference(named[i].image, &ref, NULL) == 0 &&
                           registry_is_insecure(r, &ref) == named[i].insecure,
                   "%s is %snamed insecure", named[i].image, named[i].insecure ? "" : "not ");
        }
        registry_client_free(r);
}

/* --- cloud credential providers (cloud.c): the pure parts ----------------------------------- */

static void test_cloud_match(void) {
        static const struct {
                const char *host;
                enum registry_cloud_kind kind;
                const char *region; /* ECR */
                bool fips;
        } t[] = {
                {"123456789012.dkr.ecr.us-east-1.amazonaws.com", REGISTRY_CLOUD_ECR, "us-east-1",
                 false},
                {"123456789012.dkr.ecr.us-east-1.amazonaws.com:5000", REGISTRY_CLOUD_ECR,
                 "us-east-1", false},
                {"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", REGISTRY_CLOUD_ECR,
                 "cn-north-1", false},
                {"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", REGISTRY_CLOUD_ECR,
                 "us-gov-west-1", true},
                {"123456789012.dkr-ecr.eu-west-1.on.aws", REGISTRY_CLOUD_ECR, "eu-west-1", false},
                {"123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM", REGISTRY_CLOUD_ECR, "us-east-1",
                 false},
                {"123456789012.dkr.ecr.Test_Region-1.amazonaws.com", REGISTRY_CLOUD_ECR,
                 "test_region-1", false},
                {"12345678901.dkr.ecr.us-east-1.amazonaws.com", REGISTRY_CLOUD_NONE, NULL, false},
                {"1234567890123.dkr.ecr.us-east-1.amazonaws.com", REGISTRY_CLOUD_NONE, NULL, false},
                {"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", REGISTRY_CLOUD_NONE,
                 NULL, false},
                {"123456789012.dkr.ecr..amazonaws.com", REGISTRY_CLOUD_NONE, NULL, false},
                {"public.ecr.aws", REGISTRY_CLOUD_NONE, NULL, false},
                {"gcr.io", REGISTRY_CLOUD_GCP, NULL, false},
                {"eu.gcr.io", REGISTRY_CLOUD_GCP, NULL, false},
                {"us-docker.pkg.dev", REGISTRY_CLOUD_GCP, NULL, false},
                {"europe-west4-docker.pkg.dev:443", REGISTRY_CLOUD_GCP, NULL, false},
                {"-docker.pkg.dev", REGISTRY_CLOUD_NONE, NULL, false},
                {"notgcr.io", REGISTRY_CLOUD_NONE, NULL, false},
                {"gcr.io.evil.example", REGISTRY_CLOUD_NONE, NULL, false},
                {"myregistry.azurecr.io", REGISTRY_CLOUD_ACR, NULL, false},
                {"myregistry.azurecr.cn", REGISTRY_CLOUD_ACR, NULL, false},
                {"myregistry.azurecr.us", REGISTRY_CLOUD_ACR, NULL, false},
                {".azurecr.io", REGISTRY_CLOUD_NONE, NULL, false},
                {"a.b.azurecr.io", REGISTRY_CLOUD_NONE, NULL, false},
                {"registry-1.docker.io", REGISTRY_CLOUD_NONE, NULL, false},
                {"localhost:5000", REGISTRY_CLOUD_NONE, NULL, false},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct registry_cloud_target tg = {};
                enum registry_cloud_kind k = registry_cloud_match(t[i].host, &tg);
                bool good = k == t[i].kind;
                if (good && k == REGISTRY_CLOUD_ECR)
                        good = strcmp(tg.region, t[i].region) == 0 && tg.fips == t[i].fips &&
                               strcmp(tg.account, "123456789012") == 0;
                if (good && k != REGISTRY_CLOUD_NONE)
                        good = strchr(tg.name, ':') == NULL;
                ok(good, "cloud provider of %s: %d", t[i].host, (int) k);
        }
        struct registry_cloud_target tg;
        ok(registry_cloud_match("x.azurecr.cn", &tg) == REGISTRY_CLOUD_ACR &&
                   strcmp(tg.authority, "https://login.chinacloudapi.cn") == 0 &&
                   strcmp(tg.scope, "https://management.chinacloudapi.cn/.default") == 0,
           "an azurecr.cn registry authenticates with the China cloud's AAD and ARM scope");
        ok(registry_cloud_hint(REGISTRY_CLOUD_NONE) == NULL &&
                   strstr(registry_cloud_hint(REGISTRY_CLOUD_ECR), "IRSA") &&
                   strstr(registry_cloud_hint(REGISTRY_CLOUD_GCP), "workload identity") &&
                   strstr(registry_cloud_hint(REGISTRY_CLOUD_ACR), "AZURE_FEDERATED_TOKEN_FILE"),
           "each provider's denial names what to set");
}

static void test_cloud_endpoints(void) {
        static const struct {
                const char *host;
                const char *env[4];
                const char *sts, *ecr; /* NULL: -EINVAL */
        } t[] = {
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {NULL},
                 "https://sts.eu-west-1.amazonaws.com",
                 "https://api.ecr.eu-west-1.amazonaws.com"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_REGION=us-west-2", NULL},
                 "https://sts.us-west-2.amazonaws.com",
                 "https://api.ecr.eu-west-1.amazonaws.com"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_DEFAULT_REGION=ap-south-1", NULL},
                 "https://sts.ap-south-1.amazonaws.com",
                 "https://api.ecr.eu-west-1.amazonaws.com"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_STS_REGIONAL_ENDPOINTS=legacy", NULL},
                 "https://sts.amazonaws.com",
                 "https://api.ecr.eu-west-1.amazonaws.com"},
                {"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                 {"AWS_STS_REGIONAL_ENDPOINTS=legacy", NULL},
                 "https://sts.cn-north-1.amazonaws.com.cn",
                 "https://api.ecr.cn-north-1.amazonaws.com.cn"},
                {"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                 {NULL},
                 "https://sts-fips.us-gov-west-1.amazonaws.com",
                 "https://ecr-fips.us-gov-west-1.amazonaws.com"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_ENDPOINT_URL=https://localstack:4566", NULL},
                 "https://localstack:4566",
                 "https://localstack:4566"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_ENDPOINT_URL=https://all:1", "AWS_ENDPOINT_URL_STS=https://sts.test:2",
                  "AWS_ENDPOINT_URL_ECR=https://ecr.test:3", NULL},
                 "https://sts.test:2",
                 "https://ecr.test:3"},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_ENDPOINT_URL_STS=http://sts.test", NULL},
                 NULL,
                 NULL},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_ENDPOINT_URL_ECR=https://user@ecr.test", NULL},
                 NULL,
                 NULL},
                {"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                 {"AWS_REGION=us/east", NULL},
                 NULL,
                 NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct registry_client *r = NULL;
                struct registry_options o = {.env = t[i].env};
                struct registry_cloud_target tg;
                char sts[512] = "", ecr[512] = "";
                if (registry_client_new(&o, &r) < 0 ||
                    registry_cloud_match(t[i].host, &tg) != REGISTRY_CLOUD_ECR) {
                        ok(false, "client / match");
                        registry_client_free(r);
                        continue;
                }
                int q = registry_cloud_endpoints(r, &tg, sts, sizeof(sts), ecr, sizeof(ecr));
                if (t[i].sts)
                        ok(q == 0 && strcmp(sts, t[i].sts) == 0 && strcmp(ecr, t[i].ecr) == 0,
                           "endpoints of %s with %s: %s, %s", t[i].host,
                           t[i].env[0] ? t[i].env[0] : "no variables", sts, ecr);
                else
                        is_int(q, -EINVAL, "%s is refused", t[i].env[0]);
                registry_client_free(r);
        }
}

#define STS_OK_HEAD                                                                                \
        "<AssumeRoleWithWebIdentityResponse "                                                      \
        "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"                                   \
        "  <AssumeRoleWithWebIdentityResult>\n"                                                    \
        "    "                                                                                     \
        "<SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n" \
        "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"               \
        "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n"                                \
        "    <Credentials>\n"
#define STS_OK_TAIL                                                                \
        "    </Credentials>\n"                                                     \
        "  </AssumeRoleWithWebIdentityResult>\n"                                   \
        "  <ResponseMetadata><RequestId>ad4156e9</RequestId></ResponseMetadata>\n" \
        "</AssumeRoleWithWebIdentityResponse>\n"

static void test_cloud_sts(void) {
        static const struct {
                const char *body;
                int want;
                const char *secret, *code;
        } t[] = {
                {STS_OK_HEAD "      <SessionToken>FwoGZX&amp;IvYXdz</SessionToken>\n"
                             "      <SecretAccessKey>wJalr/K7MDENG+bPxRfiCY</SecretAccessKey>\n"
                             "      <Expiration>2026-12-03T13:00:00Z</Expiration>\n"
                             "      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>\n" STS_OK_TAIL,
                 0, "wJalr/K7MDENG+bPxRfiCY", ""},
                {STS_OK_HEAD
                 "<SessionToken>t</SessionToken><SecretAccessKey>s&#x41;&#66;</SecretAccessKey>"
                 "<Expiration>2026-12-03T13:00:00.123Z</Expiration><AccessKeyId>A</"
                 "AccessKeyId>" STS_OK_TAIL,
                 0, "sAB", ""},
                {"<ErrorResponse "
                 "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender"
                 "</Type><Code>InvalidIdentityToken</Code><Message>No OpenIDConnect "
                 "provider</Message>"
                 "</Error><RequestId>x</RequestId></ErrorResponse>",
                 -EACCES, NULL, "InvalidIdentityToken"},
                {"<ErrorResponse><Error><Code>Bad Code!</Code></Error></ErrorResponse>", -EACCES,
                 NULL, ""},
                {STS_OK_HEAD "<SecretAccessKey>s</SecretAccessKey><Expiration>2026-12-03T13:00:00Z"
                             "</Expiration><AccessKeyId>A</AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""}, /* no session token */
                {STS_OK_HEAD
                 "<SessionToken>t</SessionToken><SecretAccessKey><b>s</b></SecretAccessKey>"
                 "<Expiration>2026-12-03T13:00:00Z</Expiration><AccessKeyId>A</"
                 "AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""}, /* markup in a value */
                {STS_OK_HEAD
                 "<SessionToken>t</SessionToken><SecretAccessKey>s&bogus;</SecretAccessKey>"
                 "<Expiration>2026-12-03T13:00:00Z</Expiration><AccessKeyId>A</"
                 "AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""}, /* an unknown entity */
                {STS_OK_HEAD "<SessionToken>t</SessionToken><SecretAccessKey>s p</SecretAccessKey>"
                             "<Expiration>2026-12-03T13:00:00Z</Expiration><AccessKeyId>A</"
                             "AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""}, /* a space inside a key */
                {STS_OK_HEAD
                 "<SessionToken>t</SessionToken><SecretAccessKey>s</SecretAccessKey>"
                 "<Expiration>tomorrow</Expiration><AccessKeyId>A</AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""},
                {STS_OK_HEAD "<SessionToken>t</SessionToken><SecretAccessKey>s</SecretAccessKey>"
                             "<Expiration>2026-12-03T13:00:00Z</Expiration><AccessKeyId>A:B</"
                             "AccessKeyId>" STS_OK_TAIL,
                 -EBADMSG, NULL, ""}, /* curl joins id:secret */
                {"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                 "<SessionToken>t</SessionToken>",
                 -EBADMSG, NULL, ""}, /* truncated */
                {"", -EBADMSG, NULL, ""},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct registry_aws_keys k = {};
                int64_t exp = 0;
                char code[80] = "x";
                int q = registry_sts_parse(t[i].body, strlen(t[i].body), &k, &exp, code,
                                           sizeof(code));
                if (t[i].want == 0)
                        ok(q == 0 && strcmp(k.secret, t[i].secret) == 0 && k.session_token &&
                                   k.key_id && exp == 1796302800,
                           "STS answer %zu: the keys and the expiry (%lld)", i, (long long) exp);
                else
                        ok(q == t[i].want && strcmp(code, t[i].code) == 0 && !k.secret,
                           "STS answer %zu refused with %d (code \"%s\")", i, q, code);
                registry_aws_keys_done(&k);
        }
        _cleanup_buf_ struct buf big = BUF_INIT(TOKEN_BODY_MAX + 2, 0);
        (void) buf_append_str(&big, STS_OK_HEAD "<SessionToken>");
        while (big.len < TOKEN_MAX + 1000)
                (void) buf_append_byte(&big, 'x');
        (void) buf_append_str(
                &big, "</SessionToken><SecretAccessKey>s</SecretAccessKey><Expiration>"
                      "2026-12-03T13:00:00Z</Expiration><AccessKeyId>A</AccessKeyId>" STS_OK_TAIL);
        struct registry_aws_keys k = {};
        int64_t exp;
        is_int(registry_sts_parse(big.data, big.len, &k, &exp, NULL, 0), -E2BIG,
               "a session token over TOKEN_MAX is refused");

        static const struct {
                const char *s;
                int64_t want; /* -1: refused */
        } d[] = {
                {"1970-01-01T00:00:00Z", 0},          {"2000-02-29T12:34:56Z", 951827696},
                {"2026-12-03T13:00:00Z", 1796302800}, {"2026-12-03T13:00:00.5Z", 1796302800},
                {"2026-12-03 13:00:00Z", -1},         {"2026-13-03T13:00:00Z", -1},
                {"2026-12-03T13:00:00", -1},          {"2026-12-03T13:00:00+01:00", -1},
        };
        for (size_t i = 0; i < ELEMENTSOF(d); i++) {
                int64_t v = -1;
                int q = registry_parse_iso8601(d[i].s, strlen(d[i].s), &v);
                ok(d[i].want < 0 ? q == -EBADMSG : q == 0 && v == d[i].want, "ISO 8601 %s: %lld",
                   d[i].s, (long long) v);
        }
}

static void test_cloud_tokens(void) {
        char *up = NULL;
        int64_t exp = 0, in = 0;
        char code[80];
        /* base64("AWS:pass-word") */
        const char *ecr =
                "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3Mtd29yZA==\","
                "\"expiresAt\":1.7963028E9,\"proxyEndpoint\":\"https://x\"}]}";
        ok(registry_ecr_parse(ecr, strlen(ecr), &up, &exp) == 0 &&
                   strcmp(up, "AWS:pass-word") == 0 && exp == 1796302800,
           "ECR: the token decodes to AWS:<password>, expiresAt in seconds");
        secmem_free(up);
        up = NULL;
        static const char *const bad_ecr[] = {
                "{\"authorizationData\":[]}",
                "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3M=\"}]}", /* no
                                                                                          expiry
                                                                                        */
                "{\"authorizationData\":[{\"authorizationToken\":\"!!!\",\"expiresAt\":1}]"
                "}",
                "{\"authorizationData\":[{\"authorizationToken\":\"QVdT\",\"expiresAt\":1}]"
                "}", /* "AWS" */
                "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOg==\","
                "\"expiresAt\":1}]}", /* "AWS:" */
                "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOmEgYg==\","
                "\"expiresAt\":1}]}", /* space */
                "not json",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_ecr); i++)
                ok(registry_ecr_parse(bad_ecr[i], strlen(bad_ecr[i]), &up, &exp) < 0 && !up,
                   "ECR answer refused: %s", bad_ecr[i]);

        const char *gce =
                "{\"access_token\":\"ya29.c.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
        ok(registry_oauth_parse(gce, strlen(gce), "access_token", &up, &in, code, sizeof(code)) ==
                           0 &&
                   strcmp(up, "ya29.c.abc") == 0 && in == 3599,
           "metadata server token and expires_in");
        secmem_free(up);
        up = NULL;
        const char *aad =
                "{\"token_type\":\"Bearer\",\"expires_in\":\"3599\",\"access_token\":\"eyJ0\"}";
        ok(registry_oauth_parse(aad, strlen(aad), "access_token", &up, &in, code, sizeof(code)) ==
                           0 &&
                   in == 3599,
           "expires_in as a string (AAD v1 style) is read");
        secmem_free(up);
        up = NULL;
        const char *err =
                "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS700211: x\"}";
        ok(registry_oauth_parse(err, strlen(err), "access_token", &up, &in, code, sizeof(code)) ==
                           -EACCES &&
                   strcmp(code, "invalid_client") == 0 && !up,
           "an OAuth error is -EACCES with its code, never its description");
        const char *rt = "{\"refresh_token\":\"eyJhbGciOi.x.y\"}";
        ok(registry_oauth_parse(rt, strlen(rt), "refresh_token", &up, NULL, NULL, 0) == 0 &&
                   strcmp(up, "eyJhbGciOi.x.y") == 0,
           "ACR exchange: the refresh token");
        secmem_free(up);
        up = NULL;
        static const char *const bad[] = {
                "{\"access_token\":\"a b\",\"expires_in\":1}",
                "{\"access_token\":\"\",\"expires_in\":1}",
                "{\"access_token\":7}",
                "{\"access_token\":\"a\",\"expires_in\":-5}",
                "{\"access_token\":\"a\",\"expires_in\":99999999999}",
                "[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ok(registry_oauth_parse(bad[i], strlen(bad[i]), "access_token", &up, &in, code,
                                        sizeof(code)) == -EBADMSG &&
                           !up,
                   "token answer refused: %s", bad[i]);

        /* Lifetimes: used until 5 minutes before the expiry, or half of a short one. */
        is_int((long long) registry_cloud_lifetime_usec(1000 + 3600, 1000), 3300000000ll,
               "1 h: used for 55 min");
        is_int((long long) registry_cloud_lifetime_usec(1000 + 43200, 1000), 42900000000ll,
               "12 h (ECR): 11 h 55 min");
        is_int((long long) registry_cloud_lifetime_usec(1000 + 400, 1000), 200000000ll,
               "400 s: half");
        is_int((long long) registry_cloud_lifetime_usec(1000, 1000), 0, "expired: not cached");
        is_int((long long) registry_cloud_lifetime_usec(INT64_MAX, 1000),
               (long long) (86400ull * 366 - 300) * 1000000ll, "static keys: capped at a year");

        /* The variables are read from registry_options.env: only the known ones, empty = unset. */
        const char *env[] = {"AWS_ROLE_ARN=arn:aws:iam::1:role/r", "AWS_REGIONX=no",
                             "AWS_REGION=", "AZURE_TENANT_ID=t", NULL};
        struct registry_client *r = NULL;
        struct registry_options o = {.env = env};
        ok(registry_client_new(&o, &r) == 0 && r->cloud_env[CLOUD_AWS_ROLE_ARN] &&
                   strcmp(r->cloud_env[CLOUD_AWS_ROLE_ARN], "arn:aws:iam::1:role/r") == 0 &&
                   !r->cloud_env[CLOUD_AWS_REGION] && r->cloud_env[CLOUD_AZURE_TENANT_ID] &&
                   !r->cloud_env[CLOUD_GCE_METADATA_HOST],
           "the providers' variables come from registry_options.env");
        registry_client_free(r);
}

/* --- coalescing and the cache-only probe (issue 11, item 12) ------------------------------- */

static uint64_t mono_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

struct looker {
        struct registry_client *r;
        const char *image;
        int q;
        char err[512];
};

static void *looker_main(void *arg) {
        struct looker *l = arg;
        struct registry_image_config c = {};
        l->q = registry_lookup(l->r, l->image, "linux", "amd64", NULL, 0, &c, l->err,
                               sizeof(l->err));
        registry_image_config_done(&c);
        return NULL;
}

/* Waits (30 s) for a connection on the listener; its fd or -1. */
static int accept_within(int lfd, unsigned ms) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, (int) ms) <= 0)
                return -1;
        return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void test_coalescing(void) {
        enum { N = 6 };
        struct registry_client *r = NULL;
        /* A registry that accepts and never answers; the test ends the lookup by closing. The
         * bound is long: nothing here depends on the machine's speed. */
        struct registry_options o = {.timeout_ms = 60000};
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        struct looker l[N];
        pthread_t t[N];
        char image[64], err[512];
        struct registry_image_config c = {};
        struct registry_stats st;

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (!ok(lfd >= 0 && bind(lfd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
                        listen(lfd, 16) == 0 &&
                        getsockname(lfd, (struct sockaddr *) &a, &al) == 0 &&
                        registry_client_new(&o, &r) == 0,
                "a silent registry and a client")) {
                if (lfd >= 0)
                        (void) close(lfd);
                return;
        }
        (void) snprintf(image, sizeof(image), "127.0.0.1:%u/slow/app:v1", ntohs(a.sin_port));

        is_int(registry_lookup_cached(r, image, "linux", "amd64", NULL, 0, &c, err, sizeof(err)),
               -EWOULDBLOCK, "the cache-only probe of an image never looked up: -EWOULDBLOCK");
        is_int(registry_lookup_cached(r, "Not A Reference", "linux", "amd64", NULL, 0, &c, err,
                                      sizeof(err)),
               -EINVAL, "the probe of an invalid reference: -EINVAL at once");
        struct registry_image_config hub = make_cfg("/cached");
        (void) registry_cache_put(r, "docker.io/library/busybox:latest|linux/amd64|-", true, &hub);
        ok(registry_lookup_cached(r, "busybox", "linux", "amd64", NULL, 0, &c, err, sizeof(err)) ==
                           0 &&
                   strcmp(c.entrypoint[0], "/cached") == 0,
           "the probe serves an anonymous cached result");
        registry_image_config_done(&c);

        for (int i = 0; i < N; i++)
                l[i] = (struct looker){.r = r, .image = image};
        (void) pthread_create(&t[0], NULL, looker_main, &l[0]);
        int leader = accept_within(lfd, 30000);
        ok(leader >= 0, "the first lookup connects to the registry");
        for (int i = 1; i < N; i++)
                (void) pthread_create(&t[i], NULL, looker_main, &l[i]);
        uint64_t t0 = mono_ms();
        do {
                registry_get_stats(r, &st);
                if (st.coalesced >= N - 1)
                        break;
                (void) usleep(5000);
        } while (mono_ms() - t0 < 30000);
        ok(st.coalesced == N - 1, "%d more lookups of the same image wait for it (coalesced %llu)",
           N - 1, (unsigned long long) st.coalesced);
        int extra = accept_within(lfd, 0);
        ok(extra < 0, "and none of them connects to the registry");
        if (leader >= 0)
                (void) close(leader); /* the registry goes: the lookup fails */
        for (int i = 0; i < N; i++)
                (void) pthread_join(t[i], NULL);
        bool same = true;
        for (int i = 1; i < N; i++)
                same = same && l[i].q == l[0].q && strcmp(l[i].err, l[0].err) == 0;
        ok(l[0].q < 0 && l[0].err[0] && same, "all got the leader's error: %s", l[0].err);
        extra = accept_within(lfd, 0);
        ok(extra < 0, "still one connection in all");
        if (extra >= 0)
                (void) close(extra);

        /* The flight is gone with its result: the next lookup asks the registry again. */
        struct looker again = {.r = r, .image = image};
        pthread_t ta;
        (void) pthread_create(&ta, NULL, looker_main, &again);
        int second = accept_within(lfd, 30000);
        ok(second >= 0, "a later lookup is not served a finished flight's result");
        if (second >= 0)
                (void) close(second);
        (void) pthread_join(ta, NULL);
        registry_client_free(r);
        (void) close(lfd);
}

int main(void) {
        test_references();
        test_challenges();
        test_credentials();
        test_manifests();
        test_configs();
        test_cache();
        test_cloud_match();
        test_cloud_endpoints();
        test_cloud_sts();
        test_cloud_tokens();
        test_coalescing();
        return tap_done();
}
