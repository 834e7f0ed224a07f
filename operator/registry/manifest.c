/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/manifest.c: platforms, manifests, indexes and image configs (decoding only, no
 * network).
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/injection.h"
#include "common/json.h"
#include "common/sha256.h"
#include "common/strv.h"
#include "operator/registry/internal.h"

static void lower_copy(char *dst, size_t sz, const char *s, size_t n) {
        size_t i;
        for (i = 0; i < n && i + 1 < sz; i++)
                dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char) (s[i] - 'A' + 'a') : s[i];
        dst[i] = '\0';
}

static int platform_normalize3(const char *os, const char *arch, const char *variant,
                               struct registry_platform *ret) {
        struct registry_platform p = {};
        size_t alen, vlen;

        if (!os || !arch || !os[0] || !arch[0] || strlen(os) >= sizeof(p.os))
                return -EINVAL;
        const char *slash = strchr(arch, '/');
        alen = slash ? (size_t) (slash - arch) : strlen(arch);
        if (slash) {
                if (variant && variant[0])
                        return -EINVAL;
                variant = slash + 1;
        }
        vlen = variant ? strlen(variant) : 0;
        if (alen == 0 || alen >= sizeof(p.arch) || vlen + 1 >= sizeof(p.variant))
                return -EINVAL;
        lower_copy(p.os, sizeof(p.os), os, strlen(os));
        lower_copy(p.arch, sizeof(p.arch), arch, alen);
        if (vlen > 0) {
                /* "8" is "v8" */
                if (variant[0] >= '0' && variant[0] <= '9') {
                        p.variant[0] = 'v';
                        lower_copy(p.variant + 1, sizeof(p.variant) - 1, variant, vlen);
                } else
                        lower_copy(p.variant, sizeof(p.variant), variant, vlen);
        }
        if (strcmp(p.os, "macos") == 0)
                memcpy(p.os, "darwin", sizeof("darwin"));
        if (strcmp(p.arch, "i386") == 0)
                memcpy(p.arch, "386", sizeof("386"));
        else if (strcmp(p.arch, "x86_64") == 0 || strcmp(p.arch, "x86-64") == 0 ||
                 strcmp(p.arch, "amd64") == 0) {
                memcpy(p.arch, "amd64", sizeof("amd64"));
                if (strcmp(p.variant, "v1") == 0)
                        p.variant[0] = '\0';
        } else if (strcmp(p.arch, "aarch64") == 0 || strcmp(p.arch, "arm64") == 0) {
                memcpy(p.arch, "arm64", sizeof("arm64"));
                if (!p.variant[0])
                        memcpy(p.variant, "v8", sizeof("v8"));
        } else if (strcmp(p.arch, "armhf") == 0) {
                memcpy(p.arch, "arm", sizeof("arm"));
                memcpy(p.variant, "v7", sizeof("v7"));
        } else if (strcmp(p.arch, "armel") == 0) {
                memcpy(p.arch, "arm", sizeof("arm"));
                memcpy(p.variant, "v6", sizeof("v6"));
        } else if (strcmp(p.arch, "arm") == 0 && !p.variant[0])
                memcpy(p.variant, "v7", sizeof("v7"));
        *ret = p;
        return 0;
}

int registry_platform_normalize(const char *os, const char *arch, struct registry_platform *ret) {
        return platform_normalize3(os, arch, NULL, ret);
}

/* 0 no match; higher is better. */
static int platform_score(const struct registry_platform *want,
                          const struct registry_platform *have) {
        if (strcmp(want->os, have->os) != 0 || strcmp(want->arch, have->arch) != 0)
                return 0;
        if (strcmp(want->variant, have->variant) == 0)
                return 100;
        /* 32-bit arm runs older variants: v8 > v7 > v6 > v5 (containerd's platform vector). */
        if (strcmp(want->arch, "arm") == 0 && want->variant[0] == 'v' && have->variant[0] == 'v' &&
            !want->variant[2] && !have->variant[2] && have->variant[1] >= '5' &&
            have->variant[1] < want->variant[1])
                return 50 + (have->variant[1] - '0');
        return 0;
}

/* --- manifests and configs ------------------------------------------------------------------ */

static bool mt_is_index(const char *mt) {
        return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool mt_is_manifest(const char *mt) {
        return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

static bool mt_is_schema1(const char *mt) {
        return strcmp(mt, MT_DOCKER_V1) == 0 || strcmp(mt, MT_DOCKER_V1_SIGNED) == 0;
}

/* Reads a descriptor: digest (sha256, required), mediaType (optional), size (optional, >= 0). */
static int read_descriptor(const struct json_value *v, struct registry_descriptor *ret) {
        struct registry_descriptor d = {.size = -1};
        const char *digest = NULL, *mt = NULL;
        int64_t size;
        int r;

        if (json_type(v) != JSON_OBJECT)
                return -EBADMSG;
        r = json_get_string(v, "digest", &digest);
        if (r < 0)
                return -EBADMSG;
        if (registry_digest_check(digest, strlen(digest)) < 0)
                return -EBADMSG;
        (void) copy_str(d.digest, sizeof(d.digest), digest, strlen(digest));
        r = json_get_string(v, "mediaType", &mt);
        if (r == -EBADMSG)
                return r;
        if (mt && copy_str(d.media_type, sizeof(d.media_type), mt, strlen(mt)) < 0)
                return -EBADMSG;
        r = json_get_int64(v, "size", &size);
        if (r == -EBADMSG || (r == 0 && size < 0))
                return -EBADMSG;
        if (r == 0)
                d.size = size;
        *ret = d;
        return 0;
}

static void append_available(char *out, size_t outsz, const struct registry_platform *p) {
        if (!out || outsz == 0)
                return;
        size_t o = strlen(out);
        if (o + 1 >= outsz)
                return;
        (void) snprintf(out + o, outsz - o, "%s%s/%s%s%s", o ? ", " : "", p->os, p->arch,
                        p->variant[0] ? "/" : "", p->variant);
}

static int select_from_index(const struct json_value *root, const struct registry_platform *want,
                             struct registry_descriptor *ret, char *available, size_t availlen,
                             const char **why) {
        const struct json_value *list = NULL;
        struct registry_descriptor best = {}, unplatformed = {};
        int best_score = 0;
        bool have_unplatformed = false;

        if (json_get_array(root, "manifests", &list) < 0) {
                *why = "index without a manifests array";
                return -EBADMSG;
        }
        if (available && availlen)
                available[0] = '\0';
        JSON_FOREACH(m, list) {
                struct registry_descriptor d;
                const struct json_value *plat = NULL;
                if (read_descriptor(m, &d) < 0) {
                        *why = "index entry without a valid digest";
                        return -EBADMSG;
                }
                if (d.media_type[0] && !mt_is_manifest(d.media_type) && !mt_is_index(d.media_type))
                        continue; /* an artifact, not an image */
                int q = json_get_object(m, "platform", &plat);
                if (q == -EBADMSG) {
                        *why = "index entry with a malformed platform";
                        return q;
                }
                if (q < 0) {
                        if (!have_unplatformed) {
                                unplatformed = d;
                                have_unplatformed = true;
                        }
                        continue;
                }
                const char *os = NULL, *arch = NULL, *variant = NULL;
                if (json_get_string(plat, "os", &os) < 0 ||
                    json_get_string(plat, "architecture", &arch) < 0 ||
                    json_get_string(plat, "variant", &variant) == -EBADMSG) {
                        *why = "index entry with a malformed platform";
                        return -EBADMSG;
                }
                struct registry_platform hp;
                if (platform_normalize3(os, arch, variant, &hp) < 0)
                        continue;
                if (strcmp(hp.os, "unknown") == 0) /* BuildKit attestations */
                        continue;
                append_available(available, availlen, &hp);
                int s = platform_score(want, &hp);
                if (s > best_score) {
                        best_score = s;
                        best = d;
                }
        }
        if (best_score > 0)
                *ret = best;
        else if (have_unplatformed)
                *ret = unplatformed;
        else {
                *why = "no manifest for the platform";
                return -ENOENT;
        }
        return 0;
}

int registry_decode_manifest(const char *body, size_t len, const char *content_type,
                             const struct registry_platform *p,
                             enum registry_manifest_kind *ret_kind,
                             struct registry_descriptor *ret_desc, char *available, size_t availlen,
                             const char **why) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_limits lim = {.max_input = REGISTRY_MANIFEST_MAX, .max_depth = 32};
        const char *dummy, *body_mt = NULL;
        char ct[128] = "";
        enum registry_manifest_kind kind;
        int64_t schema = 2;
        int r;

        if (!why)
                why = &dummy;
        *why = NULL;
        if (!body || !p || !ret_kind || !ret_desc)
                return -EINVAL;
        if (content_type) {
                size_t n = strcspn(content_type, ";");
                while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
                        n--;
                lower_copy(ct, sizeof(ct), content_type, n);
        }
        if (mt_is_schema1(ct)) {
                *why = "Docker schema 1 manifest (deprecated, not supported)";
                return -EPROTONOSUPPORT;
        }
        r = json_parse(body, len, 0, &lim, &doc);
        if (r < 0) {
                *why = r == -E2BIG ? "manifest too large" : "manifest is not valid JSON";
                return r;
        }
        const struct json_value *root = json_doc_root(doc);
        if (json_type(root) != JSON_OBJECT) {
                *why = "manifest is not a JSON object";
                return -EBADMSG;
        }
        r = json_get_int64(root, "schemaVersion", &schema);
        if (r == -EBADMSG) {
                *why = "malformed schemaVersion";
                return r;
        }
        if (schema == 1) {
                *why = "Docker schema 1 manifest (deprecated, not supported)";
                return -EPROTONOSUPPORT;
        }
        if (schema != 2) {
                *why = "unknown manifest schemaVersion";
                return -EBADMSG;
        }
        if (json_get_string(root, "mediaType", &body_mt) == -EBADMSG) {
                *why = "malformed mediaType";
                return -EBADMSG;
        }
        if (body_mt && mt_is_schema1(body_mt)) {
                *why = "Docker schema 1 manifest (deprecated, not supported)";
                return -EPROTONOSUPPORT;
        }
        /* The type: from the Content-Type when it names one, else the body's mediaType, else
         * the shape. When both name a type they must agree (a manifest served as an index, or
         * the reverse, is refused rather than guessed). */
        bool ct_known = mt_is_index(ct) || mt_is_manifest(ct);
        bool body_known = body_mt && (mt_is_index(body_mt) || mt_is_manifest(body_mt));
        if (body_mt && !body_known) {
                *why = "not a container image manifest (unknown mediaType)";
                return -EMEDIUMTYPE;
        }
        if (ct_known && body_known && mt_is_index(ct) != mt_is_index(body_mt)) {
                *why = "Content-Type and mediaType of the manifest disagree";
                return -EBADMSG;
        }
        if (ct_known)
                kind = mt_is_index(ct) ? REGISTRY_MANIFEST_INDEX : REGISTRY_MANIFEST_IMAGE;
        else if (body_known)
                kind = mt_is_index(body_mt) ? REGISTRY_MANIFEST_INDEX : REGISTRY_MANIFEST_IMAGE;
        else if (json_get(root, "manifests") && !json_get(root, "config"))
                kind = REGISTRY_MANIFEST_INDEX;
        else if (json_get(root, "config") && !json_get(root, "manifests"))
                kind = REGISTRY_MANIFEST_IMAGE;
        else {
                *why = "neither an image manifest nor an index";
                return -EBADMSG;
        }

        struct registry_descriptor d;
        if (kind == REGISTRY_MANIFEST_INDEX) {
                r = select_from_index(root, p, &d, available, availlen, why);
                if (r < 0)
                        return r;
        } else {
                const struct json_value *cfg = NULL;
                if (json_get_object(root, "config", &cfg) < 0 || read_descriptor(cfg, &d) < 0) {
                        *why = "manifest without a valid config descriptor";
                        return -EBADMSG;
                }
                if (d.media_type[0] && strcmp(d.media_type, MT_OCI_CONFIG) != 0 &&
                    strcmp(d.media_type, MT_DOCKER_CONFIG) != 0) {
                        *why = "not a container image (the config has another media type)";
                        return -EMEDIUMTYPE;
                }
        }
        *ret_kind = kind;
        *ret_desc = d;
        return 0;
}

/* Reads one string array; *total counts the bytes of all strings read so far (Entrypoint and
 * Cmd together): more than INJECTION_MAX_LIST is -E2BIG, as the wrapper could not take the command
 * in CLOUDTASER_ORIGINAL_CMD anyway. *ret is always allocated. */
static int read_strv(const struct json_value *config, const char *key, size_t *total, char ***ret,
                     size_t *ret_n) {
        const struct json_value *arr = json_get(config, key);
        _cleanup_strv_free_ char **v = NULL;
        size_t n = 0;
        int r = strv_new(&v);

        if (r < 0)
                return r;
        if (arr && json_type(arr) != JSON_NULL) {
                if (json_type(arr) != JSON_ARRAY)
                        return -EBADMSG;
                if (json_count(arr) > REGISTRY_MAX_ARGS)
                        return -E2BIG;
                JSON_FOREACH(e, arr) {
                        const char *s;
                        if (json_string(e, &s) < 0)
                                return -EBADMSG;
                        *total += strlen(s) + 1;
                        if (*total > INJECTION_MAX_LIST)
                                return -E2BIG;
                        r = strv_extend(&v, &n, REGISTRY_MAX_ARGS, s);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int registry_decode_config(const char *body, size_t len, struct registry_image_config *ret) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_limits lim = {.max_input = REGISTRY_CONFIG_MAX, .max_depth = 64};
        struct registry_image_config c = {};
        const struct json_value *config = NULL;
        size_t total = 0;
        int r;

        if (!body || !ret)
                return -EINVAL;
        r = json_parse(body, len, 0, &lim, &doc);
        if (r < 0)
                return r;
        const struct json_value *root = json_doc_root(doc);
        if (json_type(root) != JSON_OBJECT)
                return -EBADMSG;
        r = json_get_object(root, "config", &config);
        if (r == -EBADMSG)
                return r;
        r = read_strv(config, "Entrypoint", &total, &c.entrypoint, &c.n_entrypoint);
        if (r < 0)
                return r;
        r = read_strv(config, "Cmd", &total, &c.cmd, &c.n_cmd);
        if (r < 0) {
                registry_image_config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

void registry_image_config_done(struct registry_image_config *c) {
        if (!c)
                return;
        (void) strv_free(c->entrypoint);
        (void) strv_free(c->cmd);
        *c = (struct registry_image_config){};
}

int registry_image_config_copy(const struct registry_image_config *src,
                               struct registry_image_config *ret) {
        struct registry_image_config c = {.n_entrypoint = src->n_entrypoint, .n_cmd = src->n_cmd};
        int r = strv_copy(src->entrypoint, src->n_entrypoint, &c.entrypoint);
        if (r < 0)
                return r;
        r = strv_copy(src->cmd, src->n_cmd, &c.cmd);
        if (r < 0) {
                registry_image_config_done(&c);
                return r;
        }
        if (!src->entrypoint)
                c.n_entrypoint = 0;
        if (!src->cmd)
                c.n_cmd = 0;
        memcpy(c.digest, src->digest, sizeof(c.digest));
        c.digest[sizeof(c.digest) - 1] = '\0';
        *ret = c;
        return 0;
}

void registry_digest(const void *p, size_t n, char ret[80]) {
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        sha256_buffer(p, n, d);
        sha256_to_hex(d, hex);
        (void) snprintf(ret, 80, "sha256:%s", hex);
}
