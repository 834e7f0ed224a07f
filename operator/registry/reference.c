/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/reference.c: image references (distribution/reference's grammar, Docker Hub's
 * naming).
 */

#include "operator/registry/internal.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
bool registry_domain_valid(const char *s, size_t n) {
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
int registry_digest_check(const char *s, size_t n) {
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
                if (!registry_domain_valid(s, dlen))
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
                r = registry_digest_check(at + 1, glen);
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
