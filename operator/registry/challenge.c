/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/challenge.c: WWW-Authenticate challenges (RFC 7235).
 */

#include "common/http.h"
#include "operator/registry/internal.h"

/* What common/http keeps of a response's WWW-Authenticate fields. */
#define CHALLENGE_LIST_MAX (HTTP_MAX_CHALLENGE_FIELDS * (HTTP_MAX_CHALLENGE + 2))
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
        char name[64], value[HTTP_MAX_CHALLENGE + 1];
        unsigned n_challenges = 0;
        bool started = false;
        const char *p = header;
        int r;

        if (!header || !ret)
                return -EINVAL;
        if (strnlen(header, CHALLENGE_LIST_MAX + 1) > CHALLENGE_LIST_MAX)
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
                if (++n_challenges > REGISTRY_MAX_CHALLENGES)
                        return -E2BIG;
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
