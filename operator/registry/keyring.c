/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/keyring.c: credentials from dockerconfigjson pull secrets, matched as the
 * kubelet's keyring does.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base64.h"
#include "common/json.h"
#include "common/secmem.h"
#include "operator/registry/internal.h"

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
