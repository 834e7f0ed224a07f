/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: operator/registry's parsers of untrusted input. The first byte picks one:
 *   0: image references (pod specs), 1: WWW-Authenticate challenges (registries),
 *   2: manifests and indexes (registries; the second byte picks the Content-Type and platform),
 *   3: image configs (registries), 4: dockerconfigjson matching (pull secrets),
 *   5: STS AssumeRoleWithWebIdentity answers (XML), 6: ECR GetAuthorizationToken answers,
 *   7: OAuth token answers (metadata server, AAD, ACR exchange; the second byte picks the
 *   field), 8: registry hosts to cloud providers, 9: ISO 8601 times.
 * Properties checked, not only "no crash": an accepted reference re-parses to itself from its
 * canonical form and respects the name limits; an accepted challenge has a known scheme and a
 * Bearer realm; a chosen descriptor has a sha256 digest and a platform-compatible choice; decoded
 * configs are NULL-terminated with counts within limits; credentials are "user:pass" in secmem;
 * cloud keys and tokens are in secmem, printable without spaces, within their limits, error codes
 * plain identifiers; a matched cloud host has a portless name its kind's rules accept again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secmem.h"
#include "operator/registry.h"
#include "operator/registry/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *cstr(const uint8_t *p, size_t n) {
        char *s = malloc(n + 1);
        if (!s)
                abort();
        memcpy(s, p, n);
        s[n] = '\0';
        return s;
}

static bool digest_ok(const char *d) {
        if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
                return false;
        for (const char *p = d + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static void fuzz_reference(const char *s) {
        struct registry_ref ref, again;
        const char *why = NULL;
        char canon[1024];
        if (registry_parse_reference(s, &ref, &why) < 0) {
                if (!why || !why[0])
                        abort(); /* every refusal says why */
                return;
        }
        if (strlen(ref.domain) + 1 + strlen(ref.path) > REGISTRY_NAME_MAX || !ref.path[0] ||
            (!ref.tag[0] && !ref.digest[0]) || (ref.digest[0] && !digest_ok(ref.digest)))
                abort();
        /* The canonical form parses to the same reference. */
        (void) snprintf(canon, sizeof(canon), "%s/%s%s%s%s%s", ref.domain, ref.path,
                        ref.tag[0] ? ":" : "", ref.tag, ref.digest[0] ? "@" : "", ref.digest);
        if (registry_parse_reference(canon, &again, NULL) < 0 ||
            memcmp(&ref, &again, sizeof(ref)) != 0)
                abort();
}

static void fuzz_challenge(const char *s) {
        struct registry_challenge ch;
        if (registry_parse_challenge(s, &ch) < 0)
                return;
        if (ch.scheme != REGISTRY_AUTH_BASIC && ch.scheme != REGISTRY_AUTH_BEARER)
                abort();
        if (ch.scheme == REGISTRY_AUTH_BEARER && !ch.realm[0])
                abort();
        if (strnlen(ch.realm, sizeof(ch.realm)) >= sizeof(ch.realm) ||
            strnlen(ch.scope, sizeof(ch.scope)) >= sizeof(ch.scope))
                abort();
}

static void fuzz_manifest(uint8_t sel, const char *body, size_t len) {
        static const char *const cts[] = {
                "",
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
                "application/json",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                NULL,
        };
        static const char *const plats[][2] = {
                {"linux", "amd64"}, {"linux", "arm64"}, {"linux", "arm/v6"}, {"windows", "amd64"}};
        struct registry_platform p;
        struct registry_descriptor d;
        enum registry_manifest_kind k;
        char avail[256];
        const char *why = NULL;
        if (registry_platform_normalize(plats[(sel >> 3) % 4][0], plats[(sel >> 3) % 4][1], &p) < 0)
                abort();
        int r = registry_decode_manifest(body, len, cts[sel % 8], &p, &k, &d, avail, sizeof(avail),
                                         &why);
        if (r < 0) {
                if (!why)
                        abort();
                if (strnlen(avail, sizeof(avail)) >= sizeof(avail))
                        abort();
                return;
        }
        if ((k != REGISTRY_MANIFEST_IMAGE && k != REGISTRY_MANIFEST_INDEX) ||
            !digest_ok(d.digest) || d.size < -1)
                abort();
}

static void fuzz_config(const char *body, size_t len) {
        struct registry_image_config c;
        if (registry_decode_config(body, len, &c) < 0)
                return;
        if (!c.entrypoint || !c.cmd || c.entrypoint[c.n_entrypoint] || c.cmd[c.n_cmd] ||
            c.n_entrypoint > REGISTRY_MAX_ARGS || c.n_cmd > REGISTRY_MAX_ARGS)
                abort();
        for (size_t i = 0; i < c.n_entrypoint; i++)
                if (!c.entrypoint[i])
                        abort();
        registry_image_config_done(&c);
}

static void fuzz_credentials(const char *config) {
        static const char *const images[] = {"nginx", "localhost:5000/a/b", "quay.io/org/app",
                                             "eu.gcr.io/p/i"};
        const char *configs[] = {config};
        for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
                struct registry_ref ref;
                struct registry_credentials cr;
                if (registry_parse_reference(images[i], &ref, NULL) < 0)
                        abort();
                if (registry_match_credentials(configs, 1, &ref, &cr) < 0)
                        continue;
                if (cr.n > REGISTRY_MAX_CREDENTIALS)
                        abort();
                for (size_t j = 0; j < cr.n; j++)
                        if (!cr.c[j].user_pass || !strchr(cr.c[j].user_pass, ':') ||
                            secmem_size(cr.c[j].user_pass) == 0 || !cr.c[j].key[0])
                                abort();
                registry_credentials_done(&cr);
        }
}

static bool printable_token(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max || secmem_size(s) == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

static bool code_ok(const char *c) {
        for (; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || strchr("._-", *c)))
                        return false;
        return true;
}

static void fuzz_sts(const char *body, size_t len) {
        struct registry_aws_keys k = {};
        int64_t exp;
        char code[80];
        int r = registry_sts_parse(body, len, &k, &exp, code, sizeof(code));
        if (r < 0) {
                if (k.key_id || k.secret || !code_ok(code) || strlen(code) > 64)
                        abort();
                return;
        }
        if (!printable_token(k.key_id, 256) || strchr(k.key_id, ':') ||
            !printable_token(k.secret, 256) || !printable_token(k.session_token, TOKEN_MAX))
                abort();
        registry_aws_keys_done(&k);
}

static void fuzz_ecr(const char *body, size_t len) {
        char *up = NULL;
        int64_t exp;
        if (registry_ecr_parse(body, len, &up, &exp) < 0) {
                if (up)
                        abort();
                return;
        }
        const char *colon = strchr(up, ':');
        if (!printable_token(up, REGISTRY_CREDENTIAL_MAX) || !colon || colon == up || !colon[1] ||
            exp <= 0)
                abort();
        secmem_free(up);
}

static void fuzz_oauth(uint8_t sel, const char *body, size_t len) {
        static const char *const fields[] = {"access_token", "refresh_token", "token"};
        char *tok = NULL, code[80];
        int64_t in = -1;
        int r = registry_oauth_parse(body, len, fields[sel % 3], &tok, (sel & 4) ? NULL : &in, code,
                                     sizeof(code));
        if (r < 0) {
                if (tok || !code_ok(code))
                        abort();
                return;
        }
        if (!printable_token(tok, TOKEN_MAX) || (!(sel & 4) && (in < 0 || in > 366 * 86400)))
                abort();
        secmem_free(tok);
}

static void fuzz_cloud_host(const char *s) {
        struct registry_cloud_target t;
        enum registry_cloud_kind k = registry_cloud_match(s, &t);
        if (k == REGISTRY_CLOUD_NONE)
                return;
        if (k > REGISTRY_CLOUD_ACR || !t.name[0] || strchr(t.name, ':') ||
            registry_cloud_match(t.name, NULL) != k || !registry_cloud_hint(k))
                abort();
        if (k == REGISTRY_CLOUD_ECR && (strlen(t.account) != 12 || !t.region[0] || !t.suffix))
                abort();
        if (k == REGISTRY_CLOUD_ACR && (!t.authority || strncmp(t.authority, "https://", 8) != 0))
                abort();
}

static void fuzz_iso8601(const char *s, size_t len) {
        int64_t v;
        if (registry_parse_iso8601(s, len, &v) == 0 && (v < -62167219200LL || v > 253402300800LL))
                abort(); /* years 0000..9999 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2 || size > 256 * 1024)
                return 0;
        uint8_t which = data[0], sel = data[1];
        char *s = cstr(data + 2, size - 2);
        switch (which % 10) {
        case 0:
                fuzz_reference(s);
                break;
        case 1:
                fuzz_challenge(s);
                break;
        case 2:
                fuzz_manifest(sel, s, size - 2);
                break;
        case 3:
                fuzz_config(s, size - 2);
                break;
        case 4:
                fuzz_credentials(s);
                break;
        case 5:
                fuzz_sts(s, size - 2);
                break;
        case 6:
                fuzz_ecr(s, size - 2);
                break;
        case 7:
                fuzz_oauth(sel, s, size - 2);
                break;
        case 8:
                fuzz_cloud_host(s);
                break;
        case 9:
                fuzz_iso8601(s, size - 2);
                break;
        }
        free(s);
        return 0;
}
