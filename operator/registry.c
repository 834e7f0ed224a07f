/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry: ENTRYPOINT and CMD of an image, read from its registry (OCI distribution
 * API). See registry.h for the contract and registry-internal.h for the pure parts.
 *
 * One lookup: GET /v2/<name>/manifests/<tag|digest> (index or manifest), for an index the
 * platform's manifest by digest, then GET /v2/<name>/blobs/<config digest>. Every body is
 * bounded, every digest verified (a registry cannot substitute content for a digest reference,
 * and the config must be the one the manifest names). Authentication follows the registry's 401
 * challenge: Bearer (token endpoint, anonymous or with the pull secret's basic credentials) or
 * Basic (the pull secret's credentials). Redirects (blob storage behind a CDN) are followed by
 * hand, never carrying the Authorization header to another origin.
 *
 * Time: one deadline per lookup. common/http bounds each request by its client's deadline, so
 * each request gets a client created with the time left (no keep-alive between the three or four
 * requests of a cache miss; a per-request deadline in common/http would allow one client).
 *
 * Cache: results by manifest digest (no expiry) and by tag (tag_ttl_s), per platform, and per
 * credential: a result obtained with a pull secret's credential is only served to lookups holding
 * the same credential (keyed by an HMAC-like SHA-256 of it under a per-process random salt), so a
 * namespace without the secret cannot read a private image's entrypoint through the cache.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/injection.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "operator/registry-internal.h"
#include "operator/registry.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_TAG_TTL_S 300u
#define DEFAULT_CACHE_ENTRIES 1024u
#define MAX_CACHE_ENTRIES 1000000u
/* The cache's byte budget: the strings (keys, Entrypoint and Cmd) of all entries together. An
 * entry holds at most INJECTION_MAX_LIST bytes of strings (registry_decode_config refuses more). */
#define CACHE_MAX_BYTES (16u * 1024u * 1024u)
#define MAX_REDIRECTS 4
#define MAX_INDEX_DEPTH 2 /* an index may name an index, once */
#define TOKEN_BODY_MAX (256u * 1024)
#define TOKEN_MAX 12288 /* fits one header line with "Authorization: Bearer " */
#define FIX_HINT "set the container's command or the cloudtaser.io/command annotation"
#define USER_AGENT "cloudtaser-operator"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define ACCEPT_MANIFESTS \
        MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

static const char *const ca_bundle_paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, our images */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
        "/etc/ssl/ca-bundle.pem",             /* openSUSE */
        "/etc/ssl/cert.pem",                  /* Alpine, BSDs */
};

struct cache_entry {
        char *key;             /* NULL: free slot */
        uint64_t expires_usec; /* 0: never */
        uint64_t last_used;
        size_t bytes; /* counted in the client's cache_bytes */
        struct registry_image_config cfg;
};

struct registry_client {
        bool allow_http;
        unsigned timeout_ms;
        unsigned tag_ttl_s;
        char *ca_pem; /* system bundle + the extra CA file (public data) */
        size_t ca_pem_len;
        struct http_hooks hooks;
        uint8_t salt[32]; /* keys the credential scopes of cache entries */

        pthread_mutex_t lock; /* cache and stats */
        struct cache_entry *cache;
        size_t n_cache;
        size_t cache_bytes; /* sum of the entries' bytes, at most CACHE_MAX_BYTES */
        uint64_t tick;
        struct registry_stats stats;
};

/* --- small helpers -------------------------------------------------------------------------- */

static uint64_t mono_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t hook_now(const struct registry_client *r) {
        return r->hooks.now_usec ? r->hooks.now_usec(r->hooks.userdata) : mono_usec();
}

/* Copies s into dst[size]; -E2BIG (dst untouched) when it does not fit. */
static int copy_str(char *dst, size_t size, const char *s, size_t n) {
        if (n >= size)
                return -E2BIG;
        memcpy(dst, s, n);
        dst[n] = '\0';
        return 0;
}

/* err: one printable line. Whatever the arguments held, control bytes become '?'. */
_printf_(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;
        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (char *p = err; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c) {
        return is_alnum(c) || c == '_';
}

static bool is_hex_lower(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* --- references ----------------------------------------------------------------------------- */

/* pathComponent: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t n) {
        size_t i = 0;
        if (n == 0 || !is_lower_alnum(s[0]))
                return false;
        while (i < n) {
                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == n)
                        return true;
                size_t sep = i;
                if (s[i] == '.')
                        i++;
                else if (s[i] == '_')
                        i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
                else if (s[i] == '-')
                        while (i < n && s[i] == '-')
                                i++;
                if (i == sep || i == n || !is_lower_alnum(s[i]))
                        return false;
        }
        return true;
}

/* domain: (label(.label)* | "[" ipv6 "]") (":" port)? with label [a-zA-Z0-9]([a-zA-Z0-9-]*
 * [a-zA-Z0-9])? */
static bool domain_valid(const char *s, size_t n) {
        size_t i = 0;
        if (n == 0)
                return false;
        if (s[0] == '[') {
                i = 1;
                while (i < n && (is_hex_lower(s[i]) || (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':'))
                        i++;
                if (i == 1 || i >= n || s[i] != ']')
                        return false;
                i++;
        } else {
                for (;;) {
                        size_t start = i;
                        while (i < n && (is_alnum(s[i]) || s[i] == '-'))
                                i++;
                        if (i == start || s[start] == '-' || s[i - 1] == '-')
                                return false;
                        if (i < n && s[i] == '.') {
                                i++;
                                continue;
                        }
                        break;
                }
        }
        if (i < n && s[i] == ':') {
                size_t start = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == start || i - start > 5)
                        return false;
        }
        return i == n;
}

/* tag: [\w][\w.-]{0,127} */
static bool tag_valid(const char *s, size_t n) {
        if (n == 0 || n > REGISTRY_TAG_MAX || !is_word(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

/* digest: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}; we support sha256
 * (64 lower-case hex digits, as go-digest requires). 0, -EINVAL, -EPROTONOSUPPORT. */
static int digest_check(const char *s, size_t n) {
        const char *colon = memchr(s, ':', n);
        if (!colon || colon == s)
                return -EINVAL;
        size_t alg = (size_t) (colon - s), hex = n - alg - 1;
        bool need_letter = true;
        for (size_t i = 0; i < alg; i++) {
                char c = s[i];
                if (need_letter) {
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                                return -EINVAL;
                        need_letter = false;
                } else if (c == '-' || c == '_' || c == '+' || c == '.')
                        need_letter = true;
                else if (!is_alnum(c))
                        return -EINVAL;
        }
        if (need_letter || hex < 32)
                return -EINVAL;
        for (size_t i = alg + 1; i < n; i++)
                if (!is_hex_lower(s[i]) && !(s[i] >= 'A' && s[i] <= 'F'))
                        return -EINVAL;
        if (alg != 6 || memcmp(s, "sha256", 6) != 0)
                return -EPROTONOSUPPORT;
        if (hex != 64)
                return -EINVAL;
        for (size_t i = alg + 1; i < n; i++)
                if (!is_hex_lower(s[i]))
                        return -EINVAL;
        return 0;
}

int registry_parse_reference(const char *s, struct registry_ref *ret, const char **ret_why) {
        struct registry_ref ref = {};
        const char *why = NULL;
        int r;

#define FAIL(code, text)      \
        do {                  \
                why = (text); \
                r = (code);   \
                goto fail;    \
        } while (0)

        if (!s || !ret)
                return -EINVAL;
        size_t n = strnlen(s, 1024);
        if (n == 0)
                FAIL(-EINVAL, "empty image reference");
        if (n >= 1024)
                FAIL(-EINVAL, "image reference too long");
        if (n == 64) {
                bool hex = true;
                for (size_t i = 0; i < n && hex; i++)
                        hex = is_hex_lower(s[i]);
                if (hex)
                        FAIL(-EINVAL, "a 64-digit hexadecimal string is not a repository name");
        }

        /* splitDockerDomain: the first component is a registry when it has '.' or ':', is
         * "localhost", or has upper-case letters. */
        const char *slash = memchr(s, '/', n);
        const char *rest = s;
        size_t dlen = 0;
        if (slash) {
                size_t first = (size_t) (slash - s);
                bool domain = first == 9 && memcmp(s, "localhost", 9) == 0;
                for (size_t i = 0; i < first && !domain; i++)
                        domain = s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z');
                if (domain) {
                        dlen = first;
                        rest = slash + 1;
                }
        }
        if (dlen == 0 || (dlen == 15 && memcmp(s, "index.docker.io", 15) == 0))
                memcpy(ref.domain, "docker.io", sizeof("docker.io"));
        else {
                if (!domain_valid(s, dlen))
                        FAIL(-EINVAL, "invalid registry host name");
                if (copy_str(ref.domain, sizeof(ref.domain), s, dlen) < 0)
                        FAIL(-EINVAL, "registry host name too long");
        }
        size_t rlen = n - (size_t) (rest - s);

        /* name[:tag][@digest] */
        const char *at = memchr(rest, '@', rlen);
        size_t ntlen = at ? (size_t) (at - rest) : rlen;
        if (at) {
                size_t glen = rlen - ntlen - 1;
                r = digest_check(at + 1, glen);
                if (r == -EPROTONOSUPPORT)
                        FAIL(r, "unsupported digest algorithm (only sha256)");
                if (r < 0)
                        FAIL(r, "invalid digest");
                (void) copy_str(ref.digest, sizeof(ref.digest), at + 1, glen);
        }
        const char *lastslash = NULL;
        for (size_t i = 0; i < ntlen; i++)
                if (rest[i] == '/')
                        lastslash = rest + i;
        const char *colon = memchr(lastslash ? lastslash : rest, ':',
                                   ntlen - (size_t) ((lastslash ? lastslash : rest) - rest));
        size_t plen = colon ? (size_t) (colon - rest) : ntlen;
        if (colon) {
                size_t tlen = ntlen - plen - 1;
                if (!tag_valid(colon + 1, tlen))
                        FAIL(-EINVAL, "invalid tag");
                (void) copy_str(ref.tag, sizeof(ref.tag), colon + 1, tlen);
        }
        for (size_t i = 0; i < plen; i++)
                if (rest[i] >= 'A' && rest[i] <= 'Z')
                        FAIL(-EINVAL, "repository name must be lowercase");

        /* Docker Hub's official images live under library/. */
        bool official = strcmp(ref.domain, "docker.io") == 0 && !memchr(rest, '/', plen);
        size_t total = strlen(ref.domain) + 1 + (official ? 8 : 0) + plen;
        if (plen == 0)
                FAIL(-EINVAL, "missing repository name");
        if (total > REGISTRY_NAME_MAX)
                FAIL(-EINVAL, "repository name longer than 255 characters");
        for (size_t i = 0, start = 0; i <= plen; i++)
                if (i == plen || rest[i] == '/') {
                        if (!path_component_valid(rest + start, i - start))
                                FAIL(-EINVAL, "invalid repository name");
                        start = i + 1;
                }
        (void) snprintf(ref.path, sizeof(ref.path), "%s%.*s", official ? "library/" : "",
                        (int) plen, rest);

        if (!ref.tag[0] && !ref.digest[0])
                memcpy(ref.tag, "latest", sizeof("latest"));
        if (strcmp(ref.domain, "docker.io") == 0)
                memcpy(ref.host, "registry-1.docker.io", sizeof("registry-1.docker.io"));
        else
                memcpy(ref.host, ref.domain, sizeof(ref.host));
        *ret = ref;
        return 0;
fail:
        if (ret_why)
                *ret_why = why;
        return r;
#undef FAIL
}

/* --- WWW-Authenticate ------------------------------------------------------------------------ */

static bool is_tchar(char c) {
        return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* Reads a token or a quoted-string at *pp into out (unescaped). */
static int read_value(const char **pp, char *out, size_t outsz) {
        const char *p = *pp;
        size_t o = 0;
        if (*p == '"') {
                for (p++;; p++) {
                        char c = *p;
                        if (c == '\0')
                                return -EBADMSG;
                        if (c == '"')
                                break;
                        if (c == '\\') {
                                c = *++p;
                                if (c == '\0')
                                        return -EBADMSG;
                        }
                        if ((unsigned char) c < 0x20 && c != '\t')
                                return -EBADMSG;
                        if (o + 1 >= outsz)
                                return -E2BIG;
                        out[o++] = c;
                }
                p++;
        } else {
                while (is_tchar(*p) || *p == '/') { /* token68 characters too */
                        if (o + 1 >= outsz)
                                return -E2BIG;
                        out[o++] = *p++;
                }
                while (*p == '=') /* token68 padding */
                        p++;
        }
        out[o] = '\0';
        *pp = p;
        return 0;
}

int registry_parse_challenge(const char *header, struct registry_challenge *ret) {
        struct registry_challenge cur = {}, best = {};
        char name[64], value[1024];
        bool started = false;
        const char *p = header;
        int r;

        if (!header || !ret)
                return -EINVAL;
        if (strnlen(header, 8193) > 8192)
                return -E2BIG;
        /* Grammar (RFC 7235): challenges separated by ',', each "scheme [params]", params
         * "name = value" separated by ','. A token not followed by '=' starts a new challenge. */
        for (;;) {
                p = skip_ows(p);
                while (*p == ',' || *p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0')
                        break;
                size_t n = 0;
                while (is_tchar(p[n]))
                        n++;
                if (n == 0 || n >= sizeof(name))
                        return -EBADMSG;
                memcpy(name, p, n);
                name[n] = '\0';
                p = skip_ows(p + n);
                if (*p == '=') {
                        if (!started)
                                return -EBADMSG; /* a parameter before any scheme */
                        p = skip_ows(p + 1);
                        r = read_value(&p, value, sizeof(value));
                        if (r < 0)
                                return r;
                        char *dst = NULL;
                        size_t dstsz = 0;
                        if (strcasecmp(name, "realm") == 0)
                                dst = cur.realm, dstsz = sizeof(cur.realm);
                        else if (strcasecmp(name, "service") == 0)
                                dst = cur.service, dstsz = sizeof(cur.service);
                        else if (strcasecmp(name, "scope") == 0)
                                dst = cur.scope, dstsz = sizeof(cur.scope);
                        if (dst && cur.scheme != 0) {
                                r = copy_str(dst, dstsz, value, strlen(value));
                                if (r < 0)
                                        return r;
                        }
                        p = skip_ows(p);
                        if (*p != ',' && *p != '\0' && !is_tchar(*p))
                                return -EBADMSG;
                        continue;
                }
                /* A new challenge: keep the previous one if it is the best so far. */
                if (cur.scheme == REGISTRY_AUTH_BEARER && best.scheme != REGISTRY_AUTH_BEARER)
                        best = cur;
                else if (cur.scheme == REGISTRY_AUTH_BASIC && best.scheme == 0)
                        best = cur;
                cur = (struct registry_challenge){};
                started = true;
                if (strcasecmp(name, "bearer") == 0)
                        cur.scheme = REGISTRY_AUTH_BEARER;
                else if (strcasecmp(name, "basic") == 0)
                        cur.scheme = REGISTRY_AUTH_BASIC;
                else
                        cur.scheme = 0; /* unknown: its parameters are read and dropped */
                /* token68 form ("Negotiate abc=="): one value, no '=' after a name */
        }
        if (cur.scheme == REGISTRY_AUTH_BEARER && best.scheme != REGISTRY_AUTH_BEARER)
                best = cur;
        else if (cur.scheme == REGISTRY_AUTH_BASIC && best.scheme == 0)
                best = cur;
        if (best.scheme == 0)
                return -EPROTONOSUPPORT;
        if (best.scheme == REGISTRY_AUTH_BEARER && !best.realm[0])
                return -EINVAL;
        *ret = best;
        return 0;
}

/* --- credentials (the kubelet's keyring) ----------------------------------------------------- */

/* Go's filepath.Match for one host label (no separators inside): '*', '?', '[...]' with ranges
 * and '^' negation, '\' escapes. Iterative, O(len(pattern) * len(name)). */
static bool class_match(const char **pp, char c, bool *ret_ok) {
        const char *p = *pp + 1;
        bool neg = false, match = false;
        if (*p == '^') {
                neg = true;
                p++;
        }
        bool first = true;
        while (first || *p != ']') {
                first = false;
                char lo = *p, hi;
                if (lo == '\0')
                        return false; /* malformed */
                if (lo == '\\') {
                        lo = *++p;
                        if (lo == '\0')
                                return false;
                }
                p++;
                hi = lo;
                if (*p == '-' && p[1] != ']') {
                        hi = *++p;
                        if (hi == '\\')
                                hi = *++p;
                        if (hi == '\0')
                                return false;
                        p++;
                }
                if (lo <= c && c <= hi)
                        match = true;
        }
        *pp = p + 1;
        *ret_ok = match != neg;
        return true;
}

static bool glob_label_match(const char *pat, size_t plen, const char *name, size_t nlen) {
        _cleanup_free_ char *pz = strndup(pat, plen);
        const char *p, *star_p = NULL;
        size_t i = 0, star_i = 0;
        if (!pz)
                return false;
        p = pz;
        for (;;) {
                if (*p == '*') {
                        while (*p == '*')
                                p++;
                        star_p = p;
                        star_i = i;
                        continue;
                }
                if (*p == '\0' && i == nlen)
                        return true;
                if (*p != '\0' && i < nlen) {
                        const char *q = p;
                        bool ok = false;
                        if (*q == '?') {
                                ok = true;
                                q++;
                        } else if (*q == '[') {
                                if (!class_match(&q, name[i], &ok))
                                        return false;
                        } else {
                                char c = *q;
                                if (c == '\\' && q[1])
                                        c = *++q;
                                ok = c == name[i];
                                q++;
                        }
                        if (ok) {
                                p = q;
                                i++;
                                continue;
                        }
                }
                if (!star_p || star_i >= nlen)
                        return false;
                p = star_p;
                i = ++star_i;
        }
}

/* Splits "host[:port][/path]" into host, port and path ("" when absent). */
static void split_schemeless(const char *s, const char **host, size_t *hlen, const char **port,
                             size_t *portlen, const char **path) {
        size_t n = strcspn(s, "/");
        *path = s + n;
        *host = s;
        *port = s + n;
        *portlen = 0;
        const char *colon = NULL;
        if (s[0] == '[') {
                /* net.SplitHostPort: "[::1]:5000" is host "::1", port "5000" */
                const char *close = memchr(s, ']', n);
                if (close) {
                        *host = s + 1;
                        *hlen = (size_t) (close - s - 1);
                        if (close + 1 < s + n && close[1] == ':') {
                                *port = close + 2;
                                *portlen = n - (size_t) (close + 2 - s);
                        }
                        return;
                }
        } else {
                colon = memchr(s, ':', n);
        }
        if (colon) {
                *hlen = (size_t) (colon - s);
                *port = colon + 1;
                *portlen = n - *hlen - 1;
        } else
                *hlen = n;
}

bool registry_url_glob_match(const char *glob, const char *target) {
        const char *gh, *gp, *gpath, *th, *tp, *tpath;
        size_t ghl, gpl, thl, tpl;
        if (!glob || !target)
                return false;
        split_schemeless(glob, &gh, &ghl, &gp, &gpl, &gpath);
        split_schemeless(target, &th, &thl, &tp, &tpl, &tpath);
        if (gpl != tpl || memcmp(gp, tp, gpl) != 0)
                return false;
        if (strncmp(tpath, gpath, strlen(gpath)) != 0)
                return false;
        /* same number of labels, each label matching as a glob */
        size_t gi = 0, ti = 0;
        for (;;) {
                size_t ge = gi, te = ti;
                while (ge < ghl && gh[ge] != '.')
                        ge++;
                while (te < thl && th[te] != '.')
                        te++;
                if (!glob_label_match(gh + gi, ge - gi, th + ti, te - ti))
                        return false;
                bool gend = ge >= ghl, tend = te >= thl;
                if (gend || tend)
                        return gend && tend;
                gi = ge + 1;
                ti = te + 1;
        }
}

/* kubelet's BasicDockerKeyring.Add key: scheme dropped, "/v1/..." and "/v2/..." mean the path
 * after them, a path of "" or "/" means the host alone. -EINVAL for keys it could not parse. */
static int normalize_config_key(const char *key, char *out, size_t outsz) {
        const char *s = key;
        if (strncmp(s, "https://", 8) == 0)
                s += 8;
        else if (strncmp(s, "http://", 7) == 0)
                s += 7;
        size_t n = strcspn(s, "?#");
        size_t hn = strcspn(s, "/");
        if (hn > n)
                hn = n;
        if (hn == 0 || memchr(s, '@', hn))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return -EINVAL;
        const char *path = s + hn;
        size_t plen = n - hn;
        if (plen >= 4 && (strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/v2/", 4) == 0)) {
                path += 3;
                plen -= 3;
        }
        if (plen == 1 && path[0] == '/')
                plen = 0;
        if (hn + plen >= outsz)
                return -E2BIG;
        memcpy(out, s, hn);
        memcpy(out + hn, path, plen);
        out[hn + plen] = '\0';
        return 0;
}

struct keyed_cred {
        char key[REGISTRY_NAME_MAX + 1];
        char *user_pass; /* secmem */
};

static int entry_credential(const struct json_value *entry, char **ret) {
        _cleanup_buf_ struct buf up = BUF_INIT(REGISTRY_CREDENTIAL_MAX, BUF_SECURE);
        const char *auth = NULL, *user = NULL, *pass = NULL;
        int r;

        if (json_type(entry) != JSON_OBJECT)
                return -EBADMSG;
        (void) json_get_string(entry, "auth", &auth);
        if (auth && auth[0]) {
                r = base64_decode(&up, auth, strlen(auth), false);
                if (r < 0)
                        return r;
                if (!memchr(up.data, ':', up.len) || memchr(up.data, '\0', up.len))
                        return -EBADMSG;
        } else {
                if (json_get_string(entry, "username", &user) < 0)
                        user = "";
                if (json_get_string(entry, "password", &pass) < 0)
                        pass = "";
                if (!user[0] && !pass[0])
                        return -ENOENT;
                if (strchr(user, ':'))
                        return -EBADMSG;
                r = buf_append_str(&up, user);
                if (r >= 0)
                        r = buf_append_byte(&up, ':');
                if (r >= 0)
                        r = buf_append_str(&up, pass);
                if (r < 0)
                        return r;
        }
        if (up.len < 2) /* ":" alone */
                return -ENOENT;
        return secmem_strndup(up.data, up.len, ret);
}

static int keyed_cmp_desc(const void *a, const void *b) {
        const struct keyed_cred *x = a, *y = b;
        return -strcmp(x->key, y->key);
}

void registry_credentials_done(struct registry_credentials *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++)
                secmem_free(c->c[i].user_pass);
        *c = (struct registry_credentials){};
}

#define MAX_KEYED 256

int registry_match_credentials(const char *const *configs, size_t n_configs,
                               const struct registry_ref *ref, struct registry_credentials *ret) {
        _cleanup_free_ struct keyed_cred *all = NULL;
        struct registry_credentials out = {};
        size_t n_all = 0;
        char image[2 * REGISTRY_NAME_MAX + 2];
        int r = 0;

        if (!ref || !ret || (n_configs > 0 && !configs))
                return -EINVAL;
        all = calloc(MAX_KEYED, sizeof(*all));
        if (!all)
                return -ENOMEM;
        (void) snprintf(image, sizeof(image), "%s/%s", ref->domain, ref->path);

        const struct json_limits lim = {.max_input = REGISTRY_DOCKERCONFIG_MAX, .max_depth = 16};
        for (size_t i = 0; i < n_configs && r >= 0; i++) {
                _cleanup_json_doc_ struct json_doc *doc = NULL;
                if (!configs[i] ||
                    json_parse(configs[i], strlen(configs[i]), JSON_SECURE, &lim, &doc) < 0) {
                        out.skipped++;
                        continue;
                }
                const struct json_value *root = json_doc_root(doc), *auths = NULL;
                if (json_get_object(root, "auths", &auths) < 0)
                        auths = root; /* the legacy .dockercfg form: the map itself */
                if (json_type(auths) != JSON_OBJECT) {
                        out.skipped++;
                        continue;
                }
                JSON_FOREACH(e, auths) {
                        struct keyed_cred kc = {};
                        if (json_type(e) != JSON_OBJECT)
                                continue; /* "credsStore" and the like in the legacy form */
                        if (normalize_config_key(json_key(e), kc.key, sizeof(kc.key)) < 0) {
                                out.skipped++;
                                continue;
                        }
                        int q = entry_credential(e, &kc.user_pass);
                        if (q == -ENOMEM) {
                                r = q;
                                break;
                        }
                        if (q < 0) {
                                if (q != -ENOENT)
                                        out.skipped++;
                                continue;
                        }
                        if (n_all >= MAX_KEYED) {
                                secmem_free(kc.user_pass);
                                out.skipped++;
                                continue;
                        }
                        all[n_all++] = kc;
                }
        }
        if (r >= 0) {
                /* Stable reverse order of keys: more specific paths first, then entries with the
                 * same key in the order given. qsort is not stable, so index ties. */
                for (size_t i = 1; i < n_all; i++)
                        for (size_t j = i; j > 0 && keyed_cmp_desc(&all[j - 1], &all[j]) > 0; j--) {
                                struct keyed_cred t = all[j];
                                all[j] = all[j - 1];
                                all[j - 1] = t;
                        }
                for (size_t i = 0; i < n_all && out.n < REGISTRY_MAX_CREDENTIALS; i++)
                        if (registry_url_glob_match(all[i].key, image)) {
                                memcpy(out.c[out.n].key, all[i].key, sizeof(all[i].key));
                                out.c[out.n++].user_pass = TAKE_PTR(all[i].user_pass);
                        }
                if (out.n == 0 && strcmp(ref->domain, "docker.io") == 0)
                        for (size_t i = 0; i < n_all && out.n < REGISTRY_MAX_CREDENTIALS; i++)
                                if (strcmp(all[i].key, "index.docker.io") == 0) {
                                        memcpy(out.c[out.n].key, all[i].key, sizeof(all[i].key));
                                        out.c[out.n++].user_pass = TAKE_PTR(all[i].user_pass);
                                }
        }
        for (size_t i = 0; i < n_all; i++)
                secmem_free(all[i].user_pass);
        if (r < 0) {
                registry_credentials_done(&out);
                return r;
        }
        *ret = out;
        return 0;
}

/* --- platforms ------------------------------------------------------------------------------ */

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
        if (digest_check(digest, strlen(digest)) < 0)
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

static char **strv_free(char **v) {
        if (v)
                for (char **p = v; *p; p++)
                        free(*p);
        free(v);
        return NULL;
}

/* Reads one string array; *total counts the bytes of all strings read so far (Entrypoint and
 * Cmd together): more than INJECTION_MAX_LIST is -E2BIG, as the wrapper could not take the command
 * in CLOUDTASER_ORIGINAL_CMD anyway. */
static int read_strv(const struct json_value *config, const char *key, size_t *total, char ***ret,
                     size_t *ret_n) {
        const struct json_value *arr = json_get(config, key);
        size_t n = 0;
        char **v;

        if (arr && json_type(arr) != JSON_NULL) {
                if (json_type(arr) != JSON_ARRAY)
                        return -EBADMSG;
                n = json_count(arr);
                if (n > REGISTRY_MAX_ARGS)
                        return -E2BIG;
        }
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        size_t i = 0;
        if (n > 0)
                JSON_FOREACH(e, arr) {
                        const char *s;
                        if (json_string(e, &s) < 0) {
                                strv_free(v);
                                return -EBADMSG;
                        }
                        *total += strlen(s) + 1;
                        if (*total > INJECTION_MAX_LIST) {
                                strv_free(v);
                                return -E2BIG;
                        }
                        v[i] = strdup(s);
                        if (!v[i]) {
                                strv_free(v);
                                return -ENOMEM;
                        }
                        i++;
                }
        *ret = v;
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
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        *c = (struct registry_image_config){};
}

static int strv_copy(char *const *src, size_t n, char ***ret) {
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(src[i]);
                if (!v[i]) {
                        strv_free(v);
                        return -ENOMEM;
                }
        }
        *ret = v;
        return 0;
}

int registry_image_config_copy(const struct registry_image_config *src,
                               struct registry_image_config *ret) {
        struct registry_image_config c = {.n_entrypoint = src->n_entrypoint, .n_cmd = src->n_cmd};
        static char *const empty[1] = {NULL};
        int r = strv_copy(src->entrypoint ? src->entrypoint : empty,
                          src->entrypoint ? src->n_entrypoint : 0, &c.entrypoint);
        if (r < 0)
                return r;
        r = strv_copy(src->cmd ? src->cmd : empty, src->cmd ? src->n_cmd : 0, &c.cmd);
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

/* --- cache ---------------------------------------------------------------------------------- */

static size_t strv_bytes(char *const *v, size_t n) {
        size_t b = 0;
        for (size_t i = 0; v && i < n; i++)
                b += strlen(v[i]) + 1;
        return b;
}

static void cache_entry_clear(struct registry_client *r, struct cache_entry *e) {
        r->cache_bytes -= e->bytes;
        free(e->key);
        registry_image_config_done(&e->cfg);
        *e = (struct cache_entry){};
}

int registry_cache_get(struct registry_client *r, const char *key,
                       struct registry_image_config *ret) {
        int q = -ENOENT;
        pthread_mutex_lock(&r->lock);
        uint64_t now = hook_now(r);
        for (size_t i = 0; i < r->n_cache; i++) {
                struct cache_entry *e = &r->cache[i];
                if (!e->key || strcmp(e->key, key) != 0)
                        continue;
                if (e->expires_usec && now >= e->expires_usec) {
                        cache_entry_clear(r, e);
                        break;
                }
                q = registry_image_config_copy(&e->cfg, ret);
                if (q == 0)
                        e->last_used = ++r->tick;
                break;
        }
        pthread_mutex_unlock(&r->lock);
        return q;
}

int registry_cache_put(struct registry_client *r, const char *key, bool ttl,
                       const struct registry_image_config *c) {
        struct registry_image_config copy;
        _cleanup_free_ char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        size_t bytes = strlen(key) + 1 + strv_bytes(c->entrypoint, c->n_entrypoint) +
                       strv_bytes(c->cmd, c->n_cmd);
        if (bytes > CACHE_MAX_BYTES / 4)
                return -E2BIG; /* not cached: registry_decode_config never makes one this big */
        int q = registry_image_config_copy(c, &copy);
        if (q < 0)
                return q;

        pthread_mutex_lock(&r->lock);
        uint64_t now = hook_now(r);
        struct cache_entry *slot = NULL;
        for (size_t i = 0; i < r->n_cache && !slot; i++)
                if (r->cache[i].key && strcmp(r->cache[i].key, key) == 0)
                        slot = &r->cache[i];
        for (size_t i = 0; i < r->n_cache && !slot; i++)
                if (!r->cache[i].key)
                        slot = &r->cache[i];
        if (!slot) {
                /* expired entries first, then the least recently used */
                for (size_t i = 0; i < r->n_cache; i++) {
                        struct cache_entry *e = &r->cache[i];
                        if (e->expires_usec && now >= e->expires_usec) {
                                slot = e;
                                break;
                        }
                        if (!slot || e->last_used < slot->last_used)
                                slot = e;
                }
        }
        cache_entry_clear(r, slot);
        /* The byte budget: the least recently used others go until the new entry fits. */
        while (r->cache_bytes + bytes > CACHE_MAX_BYTES) {
                struct cache_entry *lru = NULL;
                for (size_t i = 0; i < r->n_cache; i++)
                        if (r->cache[i].key && (!lru || r->cache[i].last_used < lru->last_used))
                                lru = &r->cache[i];
                if (!lru)
                        break;
                cache_entry_clear(r, lru);
        }
        slot->key = TAKE_PTR(k);
        slot->bytes = bytes;
        r->cache_bytes += bytes;
        slot->cfg = copy;
        slot->expires_usec = ttl ? now + (uint64_t) r->tag_ttl_s * 1000000u : 0;
        if (ttl && slot->expires_usec == 0)
                slot->expires_usec = 1;
        slot->last_used = ++r->tick;
        pthread_mutex_unlock(&r->lock);
        return 0;
}

/* --- client --------------------------------------------------------------------------------- */

static void fclosep_(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

static int read_whole_file(const char *path, struct buf *out) {
        _cleanup_(fclosep_) FILE *f = NULL;
        char chunk[8192];
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        for (;;) {
                size_t n = fread(chunk, 1, sizeof(chunk), f);
                if (n > 0) {
                        int r = buf_append(out, chunk, n);
                        if (r < 0)
                                return r;
                }
                if (n < sizeof(chunk)) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        return buf_append_byte(out, '\n');
}

int registry_client_new(const struct registry_options *o, struct registry_client **ret) {
        _cleanup_buf_ struct buf ca = BUF_INIT(16u * 1024 * 1024, 0);
        struct registry_client *r;
        int q;

        if (!o || !ret)
                return -EINVAL;
        if (o->cache_entries > MAX_CACHE_ENTRIES)
                return -EINVAL;
        /* The system bundle (the first that exists), plus the extra file. */
        for (size_t i = 0; i < ELEMENTSOF(ca_bundle_paths); i++) {
                q = read_whole_file(ca_bundle_paths[i], &ca);
                if (q == 0)
                        break;
                if (q != -ENOENT)
                        return q;
        }
        if (o->ca_file) {
                q = read_whole_file(o->ca_file, &ca);
                if (q < 0)
                        return q;
        }
        if (ca.len == 0)
                return -ENOENT; /* no trust anchors at all */

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->allow_http = o->allow_http;
        r->timeout_ms = o->timeout_ms ?: DEFAULT_TIMEOUT_MS;
        r->tag_ttl_s = o->tag_ttl_s ?: DEFAULT_TAG_TTL_S;
        r->n_cache = o->cache_entries ?: DEFAULT_CACHE_ENTRIES;
        r->hooks = o->hooks;
        r->cache = calloc(r->n_cache, sizeof(*r->cache));
        q = r->cache ? buf_steal(&ca, &r->ca_pem, &r->ca_pem_len) : -ENOMEM;
        if (q >= 0 && getrandom(r->salt, sizeof(r->salt), 0) != (ssize_t) sizeof(r->salt))
                q = -EIO;
        if (q >= 0 && pthread_mutex_init(&r->lock, NULL) != 0)
                q = -ENOMEM;
        if (q < 0) {
                free(r->cache);
                free(r->ca_pem);
                free(r);
                return q;
        }
        *ret = r;
        return 0;
}

struct registry_client *registry_client_free(struct registry_client *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_cache; i++)
                cache_entry_clear(r, &r->cache[i]);
        free(r->cache);
        free(r->ca_pem);
        explicit_bzero(r->salt, sizeof(r->salt));
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

void registry_get_stats(const struct registry_client *r, struct registry_stats *ret) {
        struct registry_client *m = (struct registry_client *) r; /* the lock is not state */
        if (!r || !ret)
                return;
        pthread_mutex_lock(&m->lock);
        *ret = r->stats;
        pthread_mutex_unlock(&m->lock);
}

/* --- one lookup ----------------------------------------------------------------------------- */

struct session {
        struct registry_client *r;
        const struct registry_ref *ref;
        const struct registry_credentials *creds;
        uint64_t deadline;                 /* CLOCK_MONOTONIC usec */
        char base[REGISTRY_NAME_MAX + 16]; /* "https://host[:port]" of the registry */
        bool tried_http;                   /* the plain-HTTP fallback was taken */
        char *auth;                        /* secmem: "Bearer ..." / "Basic ...", NULL = none */
        size_t next_cred;                  /* next credential to try */
        bool anonymous_token;              /* auth holds a token obtained without credentials */
        int cred_used;                     /* index of the credential auth came from, -1 none */
        char *err;
        size_t errlen;
};

static unsigned remaining_ms(const struct session *s) {
        uint64_t now = mono_usec();
        return now >= s->deadline ? 0 : (unsigned) MAX((s->deadline - now) / 1000u, 1u);
}

static void session_set_auth(struct session *s, char *auth) {
        secmem_free(s->auth);
        s->auth = auth;
}

/* Splits an absolute URL into its origin ("https://host[:port]"), path and query. */
static int split_url(const char *url, char *origin, size_t osz, char *path, size_t psz, char *query,
                     size_t qsz) {
        size_t n = strcspn(url, "#");
        const char *p;
        if (strncmp(url, "https://", 8) == 0)
                p = url + 8;
        else if (strncmp(url, "http://", 7) == 0)
                p = url + 7;
        else
                return -EINVAL;
        size_t hn = strcspn(p, "/?#");
        if (hn == 0 || memchr(p, '@', hn))
                return -EINVAL; /* no user info in URLs we follow */
        if (copy_str(origin, osz, url, (size_t) (p - url) + hn) < 0)
                return -E2BIG;
        const char *rest = p + hn, *end = url + n;
        size_t pl = strcspn(rest, "?#");
        if (rest + pl > end)
                pl = (size_t) (end - rest);
        if (pl == 0) {
                if (psz < 2)
                        return -E2BIG;
                memcpy(path, "/", 2);
        } else if (copy_str(path, psz, rest, pl) < 0)
                return -E2BIG;
        query[0] = '\0';
        if (rest[pl] == '?' &&
            copy_str(query, qsz, rest + pl + 1, (size_t) (end - rest - pl - 1)) < 0)
                return -E2BIG;
        return 0;
}

/* One GET, following redirects by hand. The Authorization header goes only to the origin it was
 * meant for. */
static int http_get(struct session *s, const char *origin0, const char *path0, const char *query0,
                    const char *accept, const char *auth, size_t max_body,
                    struct http_response *ret, struct http_result *res) {
        char origin[1024], path[2048], query[4096];
        const char *auth_origin = origin0;
        int r;

        if (copy_str(origin, sizeof(origin), origin0, strlen(origin0)) < 0 ||
            copy_str(path, sizeof(path), path0, strlen(path0)) < 0 ||
            copy_str(query, sizeof(query), query0 ? query0 : "", query0 ? strlen(query0) : 0) < 0)
                return -E2BIG;
        for (int hop = 0;; hop++) {
                _cleanup_http_client_ struct http_client *c = NULL;
                struct http_header h[2];
                size_t nh = 0;
                unsigned left = remaining_ms(s);

                if (left == 0) {
                        *res = (struct http_result){.error = -ETIMEDOUT};
                        return -ETIMEDOUT;
                }
                struct http_options ho = {
                        .base_url = origin,
                        .allow_http = s->r->allow_http,
                        .ca_pem = s->r->ca_pem,
                        .ca_pem_len = s->r->ca_pem_len,
                        .connect_timeout_ms = MIN(left, HTTP_CONNECT_TIMEOUT_MS_DEFAULT),
                        .request_timeout_ms = left,
                        .deadline_ms = left,
                        .max_body = max_body,
                        .max_attempts = 3,
                        .user_agent = USER_AGENT,
                };
                if (strncmp(origin, "http://", 7) == 0)
                        ho.ca_pem = NULL, ho.ca_pem_len = 0;
                r = http_client_new(&ho, &c);
                if (r < 0) {
                        *res = (struct http_result){.error = r};
                        return r;
                }
                if (accept)
                        h[nh++] = (struct http_header){.name = "Accept", .value = accept};
                if (auth && strcmp(origin, auth_origin) == 0)
                        h[nh++] = (struct http_header){
                                .name = "Authorization", .value = auth, .secret = true};
                struct http_request rq = {
                        .method = HTTP_GET,
                        .path = path,
                        .query = query[0] ? query : NULL,
                        .headers = h,
                        .n_headers = nh,
                };
                struct http_response resp = {};
                r = http_request(c, &rq, &resp, res);
                if (r < 0)
                        return r;
                bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                                resp.status == 307 || resp.status == 308;
                if (!redirect) {
                        *ret = resp;
                        return 0;
                }
                char loc[sizeof(resp.location)];
                memcpy(loc, resp.location, sizeof(loc));
                http_response_done(&resp);
                if (hop >= MAX_REDIRECTS || !loc[0] || strlen(loc) + 1 >= sizeof(loc))
                        return -ELOOP; /* too many, none, or truncated by common/http */
                if (loc[0] == '/' && loc[1] != '/') {
                        size_t pl = strcspn(loc, "?#");
                        if (copy_str(path, sizeof(path), loc, pl) < 0)
                                return -E2BIG;
                        query[0] = '\0';
                        if (loc[pl] == '?' && copy_str(query, sizeof(query), loc + pl + 1,
                                                       strcspn(loc + pl + 1, "#")) < 0)
                                return -E2BIG;
                } else {
                        r = split_url(loc, origin, sizeof(origin), path, sizeof(path), query,
                                      sizeof(query));
                        if (r < 0)
                                return -ELOOP;
                }
        }
}

static const char *errno_text(int r) {
        switch (r) {
        case -ETIMEDOUT:
                return "timed out";
        case -ECONNREFUSED:
                return "connection refused";
        case -EHOSTUNREACH:
                return "host name not resolved";
        case -ECONNRESET:
                return "connection reset";
        case -EPROTO:
                return "TLS handshake or certificate verification failed";
        case -EBADMSG:
                return "malformed HTTP response";
        case -E2BIG:
                return "response too large";
        case -ELOOP:
                return "too many or unusable redirects";
        case -ENOMEM:
                return "out of memory";
        default:
                return "request failed";
        }
}

static int transport_error(struct session *s, int r, const char *what,
                           const struct http_result *res) {
        if (r == -ETIMEDOUT)
                set_err(s->err, s->errlen,
                        "registry %s did not answer within %u ms while reading %s of %s/%s: %s "
                        "(or check that the registry is reachable from the operator)",
                        s->ref->host, s->r->timeout_ms, what, s->ref->domain, s->ref->path,
                        FIX_HINT);
        else if (r == -EPROTO)
                set_err(s->err, s->errlen,
                        "TLS with registry %s failed (%s%s%s): trust its CA or %s", s->ref->host,
                        errno_text(r), res->error_text[0] ? ": " : "", res->error_text, FIX_HINT);
        else
                set_err(s->err, s->errlen, "cannot read %s of %s/%s from registry %s (%s%s%s): %s",
                        what, s->ref->domain, s->ref->path, s->ref->host, errno_text(r),
                        res->error_text[0] ? ": " : "", res->error_text, FIX_HINT);
        return r;
}

/* The first error of a registry error body ({"errors":[{"code":..,"message":..}]}), printable. */
static void registry_error_code(const struct buf *body, char *out, size_t outsz) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const struct json_limits lim = {.max_input = 64 * 1024, .max_depth = 8};
        const struct json_value *errs = NULL;
        const char *code = NULL;
        out[0] = '\0';
        if (body->len == 0 || json_parse(body->data, body->len, 0, &lim, &doc) < 0)
                return;
        if (json_get_array(json_doc_root(doc), "errors", &errs) < 0)
                return;
        if (json_get_string(json_array_at(errs, 0), "code", &code) == 0)
                (void) snprintf(out, outsz, " %.60s", code);
}

static int status_error(struct session *s, const char *what, const struct http_response *resp) {
        char code[64];
        registry_error_code(&resp->body, code, sizeof(code));
        if (resp->status == 404)
                set_err(s->err, s->errlen,
                        "%s of %s/%s not found on registry %s (HTTP 404%s): check the image name "
                        "and tag, or %s",
                        what, s->ref->domain, s->ref->path, s->ref->host, code, FIX_HINT);
        else if (resp->status == 403)
                set_err(s->err, s->errlen,
                        "registry %s denied access to %s/%s (HTTP 403%s): give the pull secret's "
                        "account access, or %s",
                        s->ref->host, s->ref->domain, s->ref->path, code, FIX_HINT);
        else if (resp->status == 429)
                set_err(s->err, s->errlen,
                        "registry %s rate-limited the lookup of %s/%s (HTTP 429%s): add an "
                        "imagePullSecret (authenticated pulls get higher limits), or %s",
                        s->ref->host, s->ref->domain, s->ref->path, code, FIX_HINT);
        else
                set_err(s->err, s->errlen, "registry %s answered HTTP %ld%s for %s of %s/%s: %s",
                        s->ref->host, resp->status, code, what, s->ref->domain, s->ref->path,
                        FIX_HINT);
        return resp->status == 404 ? -ENOENT : resp->status == 403 ? -EACCES : -EPROTO;
}

static int need_credentials_error(struct session *s) {
        if (s->creds->n == 0)
                set_err(s->err, s->errlen,
                        "registry %s requires credentials for %s/%s: add an imagePullSecret for "
                        "%s or %s",
                        s->ref->host, s->ref->domain, s->ref->path, s->ref->domain, FIX_HINT);
        else
                set_err(s->err, s->errlen,
                        "registry %s refused the credentials of the imagePullSecrets for %s/%s "
                        "(%zu tried): fix the pull secret or %s",
                        s->ref->host, s->ref->domain, s->ref->path, s->creds->n, FIX_HINT);
        return -EACCES;
}

/* "Basic base64(user:pass)" in secmem. */
static int basic_header(const char *user_pass, char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(2 * REGISTRY_CREDENTIAL_MAX, BUF_SECURE);
        int r = buf_append_str(&b, "Basic ");
        if (r >= 0)
                r = base64_encode(&b, user_pass, strlen(user_pass));
        if (r < 0)
                return r;
        return secmem_strndup(b.data, b.len, ret);
}

/* GET realm?service=..&scope=.. (with the credential's basic auth if any): "Bearer <token>".
 * -EACCES when the token endpoint refused. */
static int fetch_token(struct session *s, const struct registry_challenge *ch,
                       const char *user_pass, char **ret) {
        char origin[1024], path[2048], query[4096];
        _cleanup_buf_ struct buf q = BUF_INIT(sizeof(query), 0);
        _cleanup_secmem_ char *basic = NULL;
        _cleanup_http_response_ struct http_response resp = {};
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_buf_ struct buf hdr = BUF_INIT(TOKEN_MAX + 16, BUF_SECURE);
        struct http_result res = {};
        const char *token = NULL;
        char scope[600];
        int r;

        if (split_url(ch->realm, origin, sizeof(origin), path, sizeof(path), query, sizeof(query)) <
                    0 ||
            (strncmp(origin, "http://", 7) == 0 && !s->r->allow_http)) {
                set_err(s->err, s->errlen,
                        "registry %s names a token endpoint that is not an https URL: %s",
                        s->ref->host, FIX_HINT);
                return -EPROTO;
        }
        if (ch->scope[0])
                (void) snprintf(scope, sizeof(scope), "%s", ch->scope);
        else
                (void) snprintf(scope, sizeof(scope), "repository:%s:pull", s->ref->path);
        r = buf_append_str(&q, query);
        if (r >= 0 && ch->service[0]) {
                r = buf_append_str(&q, q.len ? "&service=" : "service=");
                if (r >= 0)
                        r = http_append_escaped(&q, ch->service, false);
        }
        if (r >= 0)
                r = buf_append_str(&q, q.len ? "&scope=" : "scope=");
        if (r >= 0)
                r = http_append_escaped(&q, scope, false);
        if (r < 0)
                return transport_error(s, r, "the token", &res);
        if (user_pass) {
                r = basic_header(user_pass, &basic);
                if (r < 0)
                        return r;
        }
        r = http_get(s, origin, path, buf_cstr(&q), "application/json", basic, TOKEN_BODY_MAX,
                     &resp, &res);
        if (r < 0)
                return transport_error(s, r, "a token", &res);
        if (resp.status == 401 || resp.status == 403)
                return -EACCES;
        if (resp.status != 200) {
                set_err(s->err, s->errlen,
                        "the token endpoint of registry %s answered HTTP %ld: %s", s->ref->host,
                        resp.status, FIX_HINT);
                return -EPROTO;
        }
        const struct json_limits lim = {.max_input = TOKEN_BODY_MAX, .max_depth = 8};
        r = json_parse(resp.body.data ? resp.body.data : "", resp.body.len, JSON_SECURE, &lim,
                       &doc);
        if (r >= 0 && json_get_string(json_doc_root(doc), "token", &token) < 0)
                (void) json_get_string(json_doc_root(doc), "access_token", &token);
        bool valid = r >= 0 && token && token[0] && strlen(token) <= TOKEN_MAX;
        for (const char *t = token; valid && *t; t++)
                valid = (unsigned char) *t > 0x20 && (unsigned char) *t < 0x7f;
        if (!valid) {
                set_err(s->err, s->errlen,
                        "the token endpoint of registry %s sent no usable token: %s", s->ref->host,
                        FIX_HINT);
                return -EPROTO;
        }
        r = buf_append_str(&hdr, "Bearer ");
        if (r >= 0)
                r = buf_append_str(&hdr, token);
        if (r < 0)
                return r;
        return secmem_strndup(hdr.data, hdr.len, ret);
}

/* After a 401: the next way to authenticate, or the error. */
static int authenticate(struct session *s, const struct http_response *resp) {
        struct registry_challenge ch;
        int r = registry_parse_challenge(resp->www_authenticate, &ch);
        if (r < 0) {
                if (s->auth || s->creds->n > 0)
                        return need_credentials_error(s);
                set_err(s->err, s->errlen,
                        "registry %s answered 401 without a usable WWW-Authenticate challenge "
                        "for %s/%s: %s",
                        s->ref->host, s->ref->domain, s->ref->path, FIX_HINT);
                return -EACCES;
        }
        if (s->creds->n == 0) {
                /* Anonymous: one bearer token, without credentials. */
                if (ch.scheme != REGISTRY_AUTH_BEARER || s->anonymous_token)
                        return need_credentials_error(s);
                char *auth = NULL;
                r = fetch_token(s, &ch, NULL, &auth);
                if (r == -EACCES)
                        return need_credentials_error(s);
                if (r < 0)
                        return r;
                session_set_auth(s, auth);
                s->anonymous_token = true;
                return 0;
        }
        while (s->next_cred < s->creds->n) {
                size_t i = s->next_cred++;
                char *auth = NULL;
                if (ch.scheme == REGISTRY_AUTH_BASIC)
                        r = basic_header(s->creds->c[i].user_pass, &auth);
                else
                        r = fetch_token(s, &ch, s->creds->c[i].user_pass, &auth);
                if (r == -EACCES)
                        continue; /* the token endpoint refused this credential */
                if (r < 0)
                        return r;
                session_set_auth(s, auth);
                s->cred_used = (int) i;
                return 0;
        }
        return need_credentials_error(s);
}

/* GET on the registry, authenticating as challenged. *ret: a 200 response. */
static int registry_get(struct session *s, const char *path, const char *accept, size_t max_body,
                        const char *what, struct http_response *ret) {
        for (unsigned round = 0; round < 2 * REGISTRY_MAX_CREDENTIALS + 4; round++) {
                struct http_response resp = {};
                struct http_result res = {};
                int r = http_get(s, s->base, path, NULL, accept, s->auth, max_body, &resp, &res);
                if (r < 0 && s->r->allow_http && !s->tried_http && round == 0 &&
                    (r == -EPROTO || r == -ECONNRESET)) {
                        /* containerd's HTTP fallback, only when plain HTTP is allowed: the
                         * registry did not speak TLS. */
                        s->tried_http = true;
                        (void) snprintf(s->base, sizeof(s->base), "http://%s", s->ref->host);
                        r = http_get(s, s->base, path, NULL, accept, s->auth, max_body, &resp,
                                     &res);
                }
                if (r < 0)
                        return transport_error(s, r, what, &res);
                if (resp.status == 200) {
                        *ret = resp;
                        return 0;
                }
                if (resp.status == 401) {
                        r = authenticate(s, &resp);
                        http_response_done(&resp);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = status_error(s, what, &resp);
                http_response_done(&resp);
                return r;
        }
        return need_credentials_error(s);
}

static int fetch_verified(struct session *s, const char *kind, const char *ref_or_digest,
                          const char *want_digest, int64_t want_size, size_t max_body,
                          const char *accept, struct http_response *ret, char digest[80]) {
        char path[2 * REGISTRY_NAME_MAX + 128];
        (void) snprintf(path, sizeof(path), "/v2/%s/%s/%s", s->ref->path, kind, ref_or_digest);
        const char *what = strcmp(kind, "blobs") == 0 ? "the image config" : "the manifest";
        struct http_response resp = {};
        int r = registry_get(s, path, accept, max_body, what, &resp);
        if (r < 0)
                return r;
        registry_digest(resp.body.data ? resp.body.data : "", resp.body.len, digest);
        if ((want_digest && strcmp(digest, want_digest) != 0) ||
            (want_size >= 0 && (uint64_t) want_size != resp.body.len)) {
                http_response_done(&resp);
                set_err(s->err, s->errlen,
                        "registry %s sent %s of %s/%s whose digest or size does not match %s: %s",
                        s->ref->host, what, s->ref->domain, s->ref->path, want_digest, FIX_HINT);
                return -EBADMSG;
        }
        *ret = resp;
        return 0;
}

static void platform_string(const struct registry_platform *p, char *out, size_t sz) {
        (void) snprintf(out, sz, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

/* Fetches and decodes; ret->digest is the manifest the config came from. *top_digest: the
 * digest the reference resolved to. */
static int resolve(struct session *s, const struct registry_platform *plat,
                   struct registry_image_config *ret, char top_digest[80]) {
        char digest[80], want[80] = "", pstr[80];
        const char *ref = s->ref->digest[0] ? s->ref->digest : s->ref->tag;
        int64_t want_size = -1;
        int r;

        platform_string(plat, pstr, sizeof(pstr));
        if (s->ref->digest[0])
                memcpy(want, s->ref->digest, sizeof(want));
        for (int depth = 0;; depth++) {
                _cleanup_http_response_ struct http_response resp = {};
                struct registry_descriptor d;
                enum registry_manifest_kind kind;
                char available[512] = "";
                const char *why = NULL;

                r = fetch_verified(s, "manifests", ref, want[0] ? want : NULL, want_size,
                                   REGISTRY_MANIFEST_MAX, ACCEPT_MANIFESTS, &resp, digest);
                if (r < 0)
                        return r;
                if (depth == 0)
                        memcpy(top_digest, digest, 80);
                r = registry_decode_manifest(resp.body.data ? resp.body.data : "", resp.body.len,
                                             resp.content_type, plat, &kind, &d, available,
                                             sizeof(available), &why);
                if (r == -ENOENT) {
                        set_err(s->err, s->errlen,
                                "image %s/%s has no manifest for the platform %s (it has: %s): "
                                "%s",
                                s->ref->domain, s->ref->path, pstr,
                                available[0] ? available : "none", FIX_HINT);
                        return r;
                }
                if (r < 0) {
                        set_err(s->err, s->errlen,
                                "cannot use the manifest of %s/%s from %s: %s: %s", s->ref->domain,
                                s->ref->path, s->ref->host, why ? why : "malformed", FIX_HINT);
                        return r;
                }
                if (kind == REGISTRY_MANIFEST_IMAGE) {
                        _cleanup_http_response_ struct http_response cresp = {};
                        char cdigest[80];
                        r = fetch_verified(s, "blobs", d.digest, d.digest, d.size,
                                           REGISTRY_CONFIG_MAX, NULL, &cresp, cdigest);
                        if (r < 0)
                                return r;
                        r = registry_decode_config(cresp.body.data ? cresp.body.data : "",
                                                   cresp.body.len, ret);
                        if (r < 0) {
                                set_err(s->err, s->errlen,
                                        "the image config of %s/%s is malformed (%s): %s",
                                        s->ref->domain, s->ref->path,
                                        r == -E2BIG ? "its Entrypoint and Cmd have more than "
                                                      "4096 arguments or 64 KiB of text, more "
                                                      "than the wrapper takes"
                                                    : "invalid",
                                        FIX_HINT);
                                return r;
                        }
                        memcpy(ret->digest, digest, sizeof(ret->digest));
                        return 0;
                }
                if (depth >= MAX_INDEX_DEPTH) {
                        set_err(s->err, s->errlen, "image %s/%s nests indexes too deeply: %s",
                                s->ref->domain, s->ref->path, FIX_HINT);
                        return -ELOOP;
                }
                memcpy(want, d.digest, sizeof(want));
                want_size = d.size;
                ref = want;
        }
}

/* Cache keys: "<domain>/<path>{:tag|@digest}|<platform>|<scope>", scope "-" for results read
 * without credentials, else 32 hex digits of SHA-256(salt, host, user:pass). */
static void credential_scope(const struct registry_client *r, const struct registry_ref *ref,
                             const char *user_pass, char out[33]) {
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        sha256_init(&c);
        sha256_update(&c, r->salt, sizeof(r->salt));
        sha256_update(&c, ref->host, strlen(ref->host) + 1);
        sha256_update(&c, user_pass, strlen(user_pass));
        sha256_final(&c, d);
        sha256_to_hex(d, hex);
        explicit_bzero(d, sizeof(d));
        memcpy(out, hex, 32);
        out[32] = '\0';
}

static void cache_key(const struct registry_ref *ref, bool by_digest, const char *digest,
                      const char *pstr, const char *scope, char *out, size_t sz) {
        (void) snprintf(out, sz, "%s/%s%s%s|%s|%s", ref->domain, ref->path, by_digest ? "@" : ":",
                        by_digest ? digest : ref->tag, pstr, scope);
}

static int do_lookup(struct registry_client *r, const char *image, const char *os, const char *arch,
                     const char *const *configs, size_t n_configs,
                     struct registry_image_config *ret, char *err, size_t errlen, bool *ret_hit) {
        _cleanup_(registry_credentials_done) struct registry_credentials creds = {};
        struct registry_image_config cfg = {};
        struct registry_ref ref;
        struct registry_platform plat;
        char pstr[80], key[1024], top_digest[80] = "", scopes[1 + REGISTRY_MAX_CREDENTIALS][33];
        const char *why = NULL;
        int q;

        q = registry_parse_reference(image, &ref, &why);
        if (q < 0) {
                set_err(err, errlen, "invalid image reference \"%.200s\": %s: fix the image",
                        image ? image : "", why ? why : "invalid");
                return q;
        }
        q = registry_platform_normalize(os, arch, &plat);
        if (q < 0) {
                set_err(err, errlen, "invalid node platform \"%.32s/%.32s\"", os ? os : "",
                        arch ? arch : "");
                return q;
        }
        platform_string(&plat, pstr, sizeof(pstr));
        q = registry_match_credentials(configs, n_configs, &ref, &creds);
        if (q < 0) {
                set_err(err, errlen, "cannot read the imagePullSecrets: %s", strerror(-q));
                return q;
        }

        /* The cache: results read anonymously, then those read with one of our credentials. */
        memcpy(scopes[0], "-", 2);
        for (size_t i = 0; i < creds.n; i++)
                credential_scope(r, &ref, creds.c[i].user_pass, scopes[1 + i]);
        for (size_t i = 0; i <= creds.n; i++) {
                cache_key(&ref, ref.digest[0], ref.digest, pstr, scopes[i], key, sizeof(key));
                if (registry_cache_get(r, key, ret) == 0) {
                        *ret_hit = true;
                        return 0;
                }
        }

        struct session s = {
                .r = r,
                .ref = &ref,
                .creds = &creds,
                .deadline = mono_usec() + (uint64_t) r->timeout_ms * 1000u,
                .cred_used = -1,
                .err = err,
                .errlen = errlen,
        };
        (void) snprintf(s.base, sizeof(s.base), "https://%s", ref.host);
        q = resolve(&s, &plat, &cfg, top_digest);
        session_set_auth(&s, NULL);
        if (q < 0) {
                registry_image_config_done(&cfg);
                return q;
        }
        const char *scope = s.cred_used >= 0 ? scopes[1 + s.cred_used] : scopes[0];
        cache_key(&ref, true, top_digest, pstr, scope, key, sizeof(key));
        (void) registry_cache_put(r, key, false, &cfg); /* a full cache only costs a lookup */
        if (!ref.digest[0]) {
                cache_key(&ref, false, NULL, pstr, scope, key, sizeof(key));
                (void) registry_cache_put(r, key, true, &cfg);
        }
        *ret = cfg;
        return 0;
}

int registry_lookup(struct registry_client *r, const char *image, const char *os, const char *arch,
                    const char *const *dockerconfigjsons, size_t n_configs,
                    struct registry_image_config *ret, char *err, size_t errlen) {
        bool hit = false;
        int q;

        if (err && errlen)
                err[0] = '\0';
        if (!r || !image || !ret) {
                set_err(err, errlen, "registry lookup: invalid arguments");
                return -EINVAL;
        }
        q = do_lookup(r, image, os, arch, dockerconfigjsons, n_configs, ret, err, errlen, &hit);
        pthread_mutex_lock(&r->lock);
        r->stats.lookups++;
        if (hit)
                r->stats.cache_hits++;
        if (q < 0)
                r->stats.errors++;
        pthread_mutex_unlock(&r->lock);
        return q;
}
