/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry/cloud.c: registry credentials from the operator's own cloud identity, for the
 * registries whose kubelets pull through a credential provider instead of imagePullSecrets:
 * ECR (IRSA: STS AssumeRoleWithWebIdentity, then ECR GetAuthorizationToken signed with SigV4),
 * GCP Artifact Registry and GCR (the metadata server's access token, as on GKE with workload
 * identity), ACR (Azure workload identity: an AAD token from the federated token, exchanged at
 * the registry's /oauth2/exchange for an ACR refresh token). Results are cached per registry
 * until shortly before they expire. Every value from these exchanges is in secmem; error texts
 * name endpoints, HTTP statuses and the services' error codes (charset-checked), never a value.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "operator/registry/internal.h"

/* The variables the providers' own SDKs read, in the order of enum cloud_env_var. */
static const struct {
        const char *name;
        bool secret;
} cloud_vars[_CLOUD_ENV_MAX] = {
        [CLOUD_AWS_ROLE_ARN] = {"AWS_ROLE_ARN", false},
        [CLOUD_AWS_WEB_IDENTITY_TOKEN_FILE] = {"AWS_WEB_IDENTITY_TOKEN_FILE", false},
        [CLOUD_AWS_ROLE_SESSION_NAME] = {"AWS_ROLE_SESSION_NAME", false},
        [CLOUD_AWS_REGION] = {"AWS_REGION", false},
        [CLOUD_AWS_DEFAULT_REGION] = {"AWS_DEFAULT_REGION", false},
        [CLOUD_AWS_STS_REGIONAL_ENDPOINTS] = {"AWS_STS_REGIONAL_ENDPOINTS", false},
        [CLOUD_AWS_ENDPOINT_URL] = {"AWS_ENDPOINT_URL", false},
        [CLOUD_AWS_ENDPOINT_URL_STS] = {"AWS_ENDPOINT_URL_STS", false},
        [CLOUD_AWS_ENDPOINT_URL_ECR] = {"AWS_ENDPOINT_URL_ECR", false},
        [CLOUD_AWS_ACCESS_KEY_ID] = {"AWS_ACCESS_KEY_ID", false},
        [CLOUD_AWS_SECRET_ACCESS_KEY] = {"AWS_SECRET_ACCESS_KEY", true},
        [CLOUD_AWS_SESSION_TOKEN] = {"AWS_SESSION_TOKEN", true},
        [CLOUD_GCE_METADATA_HOST] = {"GCE_METADATA_HOST", false},
        [CLOUD_AZURE_CLIENT_ID] = {"AZURE_CLIENT_ID", false},
        [CLOUD_AZURE_TENANT_ID] = {"AZURE_TENANT_ID", false},
        [CLOUD_AZURE_FEDERATED_TOKEN_FILE] = {"AZURE_FEDERATED_TOKEN_FILE", false},
        [CLOUD_AZURE_AUTHORITY_HOST] = {"AZURE_AUTHORITY_HOST", false},
};

#define CLOUD_VALUE_MAX 2048     /* one variable's value (a session token fits) */
#define IDENTITY_TOKEN_MAX 16384 /* a projected service account token file */
#define AWS_KEY_MAX 256
#define NULL_GUID "00000000-0000-0000-0000-000000000000"

extern char **environ;

void registry_cloud_env_done(struct registry_client *r) {
        for (size_t i = 0; i < _CLOUD_ENV_MAX; i++) {
                if (cloud_vars[i].secret)
                        secmem_free(r->cloud_env[i]);
                else
                        free(r->cloud_env[i]);
                r->cloud_env[i] = NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache); i++) {
                secmem_free(r->cloud_cache[i].user_pass);
                r->cloud_cache[i] = (struct cloud_cache_entry){};
        }
}

int registry_cloud_env_load(struct registry_client *r, const char *const *env) {
        const char *const *e = env ? env : (const char *const *) environ;
        for (; e && *e; e++)
                for (size_t i = 0; i < _CLOUD_ENV_MAX; i++) {
                        size_t n = strlen(cloud_vars[i].name);
                        if (strncmp(*e, cloud_vars[i].name, n) != 0 || (*e)[n] != '=')
                                continue;
                        const char *v = *e + n + 1;
                        if (!v[0] || strlen(v) > CLOUD_VALUE_MAX)
                                break; /* empty means unset, as for the SDKs; over-long: unusable */
                        char *copy = NULL;
                        int q = cloud_vars[i].secret ? secmem_strndup(v, strlen(v), &copy)
                                                     : ((copy = strdup(v)) ? 0 : -ENOMEM);
                        if (q < 0)
                                return q;
                        if (cloud_vars[i].secret)
                                secmem_free(r->cloud_env[i]);
                        else
                                free(r->cloud_env[i]);
                        r->cloud_env[i] = copy;
                        break;
                }
        return 0;
}

static const char *var(const struct registry_client *r, enum cloud_env_var v) {
        return r->cloud_env[v];
}

/* --- which provider --------------------------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix) {
        size_t m = strlen(suffix);
        return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

static bool label_chars(const char *s, size_t n) {
        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
                        return false;
        return true;
}

static const char *const ecr_suffixes[] = {
        "amazonaws.com", "amazonaws.com.cn", "on.aws",         "on.amazonwebservices.com.cn",
        "sc2s.sgov.gov", "c2s.ic.gov",       "cloud.adc-e.uk", "csp.hci.ic.gov",
};

/* The kubelet's ECR provider pattern:
 * ^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(<suffix>)$ */
static bool match_ecr(const char *h, size_t n, struct registry_cloud_target *t) {
        size_t i = 0;
        while (i < n && i < 12 && h[i] >= '0' && h[i] <= '9')
                i++;
        if (i != 12 || n < 13 || h[12] != '.')
                return false;
        const char *p = h + 13, *end = h + n;
        if ((size_t) (end - p) < 8 || strncasecmp(p, "dkr", 3) != 0 ||
            (p[3] != '.' && p[3] != '-') || strncasecmp(p + 4, "ecr", 3) != 0)
                return false;
        p += 7;
        bool fips = false;
        if ((size_t) (end - p) >= 5 && strncasecmp(p, "-fips", 5) == 0) {
                fips = true;
                p += 5;
        }
        if (p >= end || *p != '.')
                return false;
        p++;
        const char *dot = memchr(p, '.', (size_t) (end - p));
        if (!dot || !label_chars(p, (size_t) (dot - p)) || !is_alnum(p[0]))
                return false;
        size_t rl = (size_t) (dot - p);
        const char *suffix = dot + 1;
        size_t sl = (size_t) (end - suffix);
        for (size_t k = 0; k < ELEMENTSOF(ecr_suffixes); k++)
                if (strlen(ecr_suffixes[k]) == sl &&
                    strncasecmp(suffix, ecr_suffixes[k], sl) == 0) {
                        if (rl >= sizeof(t->region))
                                return false;
                        *t = (struct registry_cloud_target){.kind = REGISTRY_CLOUD_ECR,
                                                            .fips = fips};
                        for (size_t j = 0; j < rl; j++)
                                t->region[j] =
                                        p[j] >= 'A' && p[j] <= 'Z' ? (char) (p[j] | 0x20) : p[j];
                        t->region[rl] = '\0';
                        t->suffix = ecr_suffixes[k];
                        memcpy(t->account, h, 12);
                        t->account[12] = '\0';
                        return true;
                }
        return false;
}

static const struct {
        const char *suffix, *authority, *scope;
} acr_clouds[] = {
        {".azurecr.io", "https://login.microsoftonline.com",
         "https://management.azure.com/.default"},
        {".azurecr.cn", "https://login.chinacloudapi.cn",
         "https://management.chinacloudapi.cn/.default"},
        {".azurecr.us", "https://login.microsoftonline.us",
         "https://management.usgovcloudapi.net/.default"},
        {".azurecr.de", "https://login.microsoftonline.de",
         "https://management.microsoftazure.de/.default"},
};

enum registry_cloud_kind registry_cloud_match(const char *host, struct registry_cloud_target *ret) {
        struct registry_cloud_target t = {};
        if (!host)
                return REGISTRY_CLOUD_NONE;
        size_t n = strcspn(host, ":/"); /* the port is not part of the name */
        if (n == 0 || n > REGISTRY_NAME_MAX)
                return REGISTRY_CLOUD_NONE;
        if (match_ecr(host, n, &t)) {
        } else if ((n == 6 && strncasecmp(host, "gcr.io", 6) == 0) ||
                   (ends_with(host, n, ".gcr.io") && n > 7) ||
                   (ends_with(host, n, "-docker.pkg.dev") && n > 15 && label_chars(host, n - 15)) ||
                   (n == 26 && strncasecmp(host, "container.cloud.google.com", 26) == 0)) {
                t.kind = REGISTRY_CLOUD_GCP;
        } else {
                for (size_t k = 0; k < ELEMENTSOF(acr_clouds); k++) {
                        size_t sl = strlen(acr_clouds[k].suffix);
                        if (ends_with(host, n, acr_clouds[k].suffix) && label_chars(host, n - sl)) {
                                t.kind = REGISTRY_CLOUD_ACR;
                                t.authority = acr_clouds[k].authority;
                                t.scope = acr_clouds[k].scope;
                                break;
                        }
                }
        }
        if (t.kind != REGISTRY_CLOUD_NONE && ret) {
                memcpy(t.name, host, n);
                t.name[n] = '\0';
                *ret = t;
        }
        return t.kind;
}

const char *registry_cloud_hint(enum registry_cloud_kind k) {
        switch (k) {
        case REGISTRY_CLOUD_ECR:
                return "give the operator an IRSA role (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) "
                       "allowed to pull from";
        case REGISTRY_CLOUD_GCP:
                return "give the operator a GKE workload identity allowed to read";
        case REGISTRY_CLOUD_ACR:
                return "give the operator an Azure workload identity (AZURE_CLIENT_ID, "
                       "AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE) with AcrPull on";
        default:
                return NULL;
        }
}

/* Whether s is "https://host[:port]" with an optional path, no query, no user info. */
static bool https_endpoint_valid(const char *s) {
        char origin[HTTP_ORIGIN_MAX];
        return s && strncmp(s, "https://", 8) == 0 && !strpbrk(s, "?# \t") &&
               http_url_origin(s, origin, sizeof(origin)) >= 0;
}

int registry_cloud_endpoints(const struct registry_client *r, const struct registry_cloud_target *t,
                             char *sts, size_t stslen, char *ecr, size_t ecrlen) {
        const char *region = var(r, CLOUD_AWS_REGION) ?: var(r, CLOUD_AWS_DEFAULT_REGION);
        const char *o;
        int n;

        if (!region)
                region = t->region;
        if (!label_chars(region, strlen(region)))
                return -EINVAL;
        o = var(r, CLOUD_AWS_ENDPOINT_URL_STS) ?: var(r, CLOUD_AWS_ENDPOINT_URL);
        if (o)
                n = https_endpoint_valid(o) ? snprintf(sts, stslen, "%s", o) : -1;
        else if (var(r, CLOUD_AWS_STS_REGIONAL_ENDPOINTS) &&
                 strcmp(var(r, CLOUD_AWS_STS_REGIONAL_ENDPOINTS), "legacy") == 0 &&
                 strcmp(t->suffix, "amazonaws.com") == 0 && !t->fips)
                n = snprintf(sts, stslen, "https://sts.amazonaws.com");
        else
                n = snprintf(sts, stslen, "https://sts%s.%s.%s", t->fips ? "-fips" : "", region,
                             t->suffix);
        if (n < 0 || (size_t) n >= stslen)
                return -EINVAL;
        o = var(r, CLOUD_AWS_ENDPOINT_URL_ECR) ?: var(r, CLOUD_AWS_ENDPOINT_URL);
        if (o)
                n = https_endpoint_valid(o) ? snprintf(ecr, ecrlen, "%s", o) : -1;
        else if (t->fips)
                n = snprintf(ecr, ecrlen, "https://ecr-fips.%s.%s", t->region, t->suffix);
        else
                n = snprintf(ecr, ecrlen, "https://api.ecr.%s.%s", t->region, t->suffix);
        if (n < 0 || (size_t) n >= ecrlen)
                return -EINVAL;
        return 0;
}

/* --- parsers of the answers ------------------------------------------------------------------ */

void registry_aws_keys_done(struct registry_aws_keys *k) {
        if (!k)
                return;
        secmem_free(k->key_id);
        secmem_free(k->secret);
        secmem_free(k->session_token);
        *k = (struct registry_aws_keys){};
}

/* Printable ASCII without spaces: what a key, token or password may be. */
static bool token_chars(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

/* Copies an error code (e.g. "InvalidIdentityToken", "invalid_client") if it is one: letters,
 * digits and "._-", at most 64 bytes; else "". */
static void copy_code(const char *s, size_t n, char *code, size_t codelen) {
        if (!code || codelen == 0)
                return;
        code[0] = '\0';
        if (!s || n == 0 || n > 64 || n >= codelen)
                return;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && !strchr("._-", s[i]))
                        return;
        memcpy(code, s, n);
        code[n] = '\0';
}

/* The text of the first <name>...</name> in p[0..n) (no attributes on it). Nested markup is
 * allowed only when container is set. */
static int xml_element(const char *p, size_t n, const char *name, bool container, const char **ret,
                       size_t *ret_n) {
        char open[64], close[64];
        (void) snprintf(open, sizeof(open), "<%s>", name);
        (void) snprintf(close, sizeof(close), "</%s>", name);
        const char *b = memmem(p, n, open, strlen(open));
        if (!b)
                return -ENOENT;
        b += strlen(open);
        const char *e = memmem(b, n - (size_t) (b - p), close, strlen(close));
        if (!e)
                return -EBADMSG;
        if (!container && memchr(b, '<', (size_t) (e - b)))
                return -EBADMSG;
        *ret = b;
        *ret_n = (size_t) (e - b);
        return 0;
}

/* XML character data into a secure string: the five predefined entities and &#N; / &#xN; for
 * printable ASCII; anything else refused. At most max bytes. */
static int xml_text(const char *s, size_t n, size_t max, char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(max + 1, BUF_SECURE);
        static const struct {
                const char *ent;
                char c;
        } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        int r = 0;
        /* Leading and trailing white space is formatting. */
        while (n > 0 && strchr(" \t\r\n", s[0]))
                s++, n--;
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                n--;
        for (size_t i = 0; i < n && r >= 0;) {
                if (s[i] != '&') {
                        r = buf_append_byte(&b, (uint8_t) s[i++]);
                        continue;
                }
                bool done = false;
                for (size_t k = 0; k < ELEMENTSOF(ents) && !done; k++) {
                        size_t el = strlen(ents[k].ent);
                        if (n - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
                                r = buf_append_byte(&b, (uint8_t) ents[k].c);
                                i += el;
                                done = true;
                        }
                }
                if (done)
                        continue;
                if (n - i < 4 || s[i + 1] != '#')
                        return -EBADMSG;
                size_t j = i + 2;
                bool hex = s[j] == 'x';
                unsigned v = 0, digits = 0;
                if (hex)
                        j++;
                for (; j < n && s[j] != ';' && digits < 6; j++, digits++) {
                        char c = s[j];
                        unsigned d = c >= '0' && c <= '9'          ? (unsigned) (c - '0')
                                     : hex && c >= 'a' && c <= 'f' ? (unsigned) (c - 'a' + 10)
                                     : hex && c >= 'A' && c <= 'F' ? (unsigned) (c - 'A' + 10)
                                                                   : 99;
                        if (d == 99)
                                return -EBADMSG;
                        v = v * (hex ? 16 : 10) + d;
                }
                if (j >= n || s[j] != ';' || digits == 0 || v < 0x20 || v >= 0x7f)
                        return -EBADMSG;
                r = buf_append_byte(&b, (uint8_t) v);
                i = j + 1;
        }
        if (r < 0)
                return r == -E2BIG ? -E2BIG : r;
        if (b.len > max)
                return -E2BIG;
        return secmem_strndup(b.data ? b.data : "", b.len, ret);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned) (y - era * 400);
        const unsigned doy = (153 * (m + (m > 2 ? (unsigned) -3 : 9)) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

int registry_parse_iso8601(const char *s, size_t n, int64_t *ret) {
        /* YYYY-MM-DDTHH:MM:SS[.fraction]Z */
        unsigned v[6] = {};
        static const size_t pos[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
        static const char seps[] = "--T::";
        if (n < 20)
                return -EBADMSG;
        for (size_t k = 0; k < 6; k++) {
                for (size_t i = 0; i < len[k]; i++) {
                        char c = s[pos[k] + i];
                        if (c < '0' || c > '9')
                                return -EBADMSG;
                        v[k] = v[k] * 10 + (unsigned) (c - '0');
                }
                if (k < 5 && s[pos[k] + len[k]] != seps[k])
                        return -EBADMSG;
        }
        size_t i = 19;
        if (s[i] == '.') {
                i++;
                size_t f = i;
                while (i < n && s[i] >= '0' && s[i] <= '9' && i - f < 9)
                        i++;
                if (i == f)
                        return -EBADMSG;
        }
        if (i + 1 != n || s[i] != 'Z')
                return -EBADMSG;
        if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
                return -EBADMSG;
        *ret = days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
        return 0;
}

int registry_sts_parse(const char *body, size_t n, struct registry_aws_keys *ret,
                       int64_t *ret_expires_unix, char *code, size_t codelen) {
        _cleanup_(registry_aws_keys_done) struct registry_aws_keys k = {};
        const char *p, *v;
        size_t pn, vn;
        int64_t exp;
        int r;

        if (code && codelen)
                code[0] = '\0';
        if (!body || n > TOKEN_BODY_MAX || memchr(body, '\0', n))
                return -EBADMSG;
        if (memmem(body, n, "<ErrorResponse", 14)) {
                if (xml_element(body, n, "Code", false, &v, &vn) == 0)
                        copy_code(v, vn, code, codelen);
                return -EACCES;
        }
        r = xml_element(body, n, "AssumeRoleWithWebIdentityResult", true, &p, &pn);
        if (r >= 0)
                r = xml_element(p, pn, "Credentials", true, &p, &pn);
        if (r < 0)
                return -EBADMSG;
        static const struct {
                const char *name;
                size_t max;
        } f[] = {{"AccessKeyId", AWS_KEY_MAX},
                 {"SecretAccessKey", AWS_KEY_MAX},
                 {"SessionToken", TOKEN_MAX}};
        char **dst[] = {&k.key_id, &k.secret, &k.session_token};
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                r = xml_element(p, pn, f[i].name, false, &v, &vn);
                if (r < 0)
                        return -EBADMSG;
                r = xml_text(v, vn, f[i].max, dst[i]);
                if (r < 0)
                        return r;
                if (!token_chars(*dst[i], strlen(*dst[i])))
                        return -EBADMSG;
        }
        if (strchr(k.key_id, ':'))
                return -EBADMSG;
        if (xml_element(p, pn, "Expiration", false, &v, &vn) < 0)
                return -EBADMSG;
        while (vn > 0 && strchr(" \t\r\n", *v))
                v++, vn--;
        while (vn > 0 && strchr(" \t\r\n", v[vn - 1]))
                vn--;
        if (registry_parse_iso8601(v, vn, &exp) < 0)
                return -EBADMSG;
        *ret = k;
        k = (struct registry_aws_keys){};
        *ret_expires_unix = exp;
        return 0;
}

static int parse_json(const char *body, size_t n, struct json_doc **ret) {
        const struct json_limits lim = {.max_input = TOKEN_BODY_MAX, .max_depth = 8};
        if (!body || n > TOKEN_BODY_MAX)
                return -EBADMSG;
        return json_parse(body, n, JSON_SECURE, &lim, ret) < 0 ? -EBADMSG : 0;
}

int registry_ecr_parse(const char *body, size_t n, char **ret_user_pass,
                       int64_t *ret_expires_unix) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        _cleanup_buf_ struct buf up = BUF_INIT(REGISTRY_CREDENTIAL_MAX, BUF_SECURE);
        const struct json_value *data = NULL, *e;
        const char *tok = NULL;
        double exp = 0;
        int r;

        r = parse_json(body, n, &doc);
        if (r < 0)
                return r;
        if (json_get_array(json_doc_root(doc), "authorizationData", &data) < 0 ||
            !(e = json_array_at(data, 0)) || json_get_string(e, "authorizationToken", &tok) < 0 ||
            !tok[0] || json_double(json_get(e, "expiresAt"), &exp) < 0)
                return -EBADMSG;
        r = base64_decode(&up, tok, strlen(tok), false);
        if (r < 0)
                return r == -E2BIG ? -E2BIG : -EBADMSG;
        const char *colon = memchr(up.data, ':', up.len);
        if (!colon || colon == up.data || (size_t) (colon - up.data) + 1 >= up.len ||
            !token_chars(up.data, up.len))
                return -EBADMSG;
        if (!(exp > 0 && exp < 1e12))
                return -EBADMSG;
        r = secmem_strndup(up.data, up.len, ret_user_pass);
        if (r < 0)
                return r;
        *ret_expires_unix = (int64_t) exp;
        return 0;
}

int registry_oauth_parse(const char *body, size_t n, const char *field, char **ret_token,
                         int64_t *ret_expires_in, char *code, size_t codelen) {
        _cleanup_json_doc_ struct json_doc *doc = NULL;
        const char *tok = NULL, *err = NULL;
        int64_t in = 0;
        int r;

        if (code && codelen)
                code[0] = '\0';
        r = parse_json(body, n, &doc);
        if (r < 0)
                return r;
        const struct json_value *root = json_doc_root(doc);
        if (json_get_string(root, "error", &err) == 0) {
                copy_code(err, strlen(err), code, codelen);
                return -EACCES;
        }
        if (json_get_string(root, field, &tok) < 0 || strlen(tok) > TOKEN_MAX ||
            !token_chars(tok, strlen(tok)))
                return -EBADMSG;
        if (ret_expires_in) {
                /* expires_in is a number, but some endpoints send it as a string */
                const char *s = NULL;
                if (json_get_int64(root, "expires_in", &in) < 0) {
                        if (json_get_string(root, "expires_in", &s) < 0)
                                in = 0;
                        else {
                                char *end;
                                errno = 0;
                                long long x = strtoll(s, &end, 10);
                                in = errno || *end || end == s ? 0 : x;
                        }
                }
                if (in < 0 || in > 366 * 86400)
                        return -EBADMSG;
        }
        r = secmem_strndup(tok, strlen(tok), ret_token);
        if (r < 0)
                return r;
        if (ret_expires_in)
                *ret_expires_in = in;
        return 0;
}

/* --- the exchanges ---------------------------------------------------------------------------- */

struct call {
        const char *base; /* "https://host[:port][/prefix]", or "http://" for the metadata server */
        enum http_method method;
        const char *path;
        const struct buf *body;
        const char *content_type;
        const struct http_header *headers;
        size_t n_headers;
        const char *sigv4;
        const struct registry_aws_keys *keys;
};

static int call(struct registry_session *s, const struct call *c, struct http_response *ret,
                struct http_result *res) {
        _cleanup_http_client_ struct http_client *h = NULL;
        unsigned left = registry_session_left_ms(s);
        bool plain = strncmp(c->base, "http://", 7) == 0;
        int r;

        *res = (struct http_result){};
        if (left == 0)
                return -ETIMEDOUT;
        struct http_options ho = {
                .base_url = c->base,
                .allow_http = plain,
                .ca_pem = plain ? NULL : s->r->ca_pem,
                .ca_pem_len = plain ? 0 : s->r->ca_pem_len,
                .connect_timeout_ms = MIN(left, HTTP_CONNECT_TIMEOUT_MS_DEFAULT),
                .request_timeout_ms = left,
                .deadline_ms = left,
                .max_body = TOKEN_BODY_MAX,
                .max_attempts = 3,
                .user_agent = USER_AGENT,
        };
        r = http_client_new(&ho, &h);
        if (r < 0)
                return r;
        struct http_request rq = {
                .method = c->method,
                .path = c->path,
                .body = c->body,
                .content_type = c->content_type,
                .headers = c->headers,
                .n_headers = c->n_headers,
                .aws_sigv4 = c->sigv4,
                .aws_access_key_id = c->keys ? c->keys->key_id : NULL,
                .aws_secret_access_key = c->keys ? c->keys->secret : NULL,
        };
        return http_request(h, &rq, ret, res);
}

static const char *kind_name(enum registry_cloud_kind k) {
        return k == REGISTRY_CLOUD_ECR ? "AWS" : k == REGISTRY_CLOUD_GCP ? "GCP" : "Azure";
}

/* The error of one exchange, into s->cloud_err. */
static int exchange_error(struct registry_session *s, const char *what, const char *endpoint, int r,
                          long status, const char *code) {
        if (r < 0)
                registry_set_err(s->cloud_err, sizeof(s->cloud_err), "%s at %.80s: %s", what,
                                 endpoint, registry_errno_text(r));
        else
                registry_set_err(s->cloud_err, sizeof(s->cloud_err), "%s at %.80s: HTTP %ld%s%s",
                                 what, endpoint, status, code && code[0] ? " " : "",
                                 code ? code : "");
        return r < 0 ? r : status == 401 || status == 403 || status == 400 ? -EACCES : -EPROTO;
}

static int read_token_file(const char *path, char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(IDENTITY_TOKEN_MAX, BUF_SECURE);
        int r = buf_read_file(&b, path);
        if (r < 0)
                return r;
        buf_rstrip(&b);
        if (b.len == 0 || !token_chars(b.data, b.len))
                return -EBADMSG;
        return secmem_strndup(b.data, b.len, ret);
}

static int form_add(struct buf *b, const char *name, const char *value) {
        int r = b->len ? buf_append_byte(b, '&') : 0;
        if (r >= 0)
                r = buf_append_str(b, name);
        if (r >= 0)
                r = buf_append_byte(b, '=');
        if (r >= 0)
                r = http_append_escaped(b, value, false);
        return r;
}

#define FORM_CT "application/x-www-form-urlencoded"

static int aws_keys(struct registry_session *s, const struct registry_cloud_target *t,
                    const char *sts, struct registry_aws_keys *ret, int64_t *ret_exp) {
        const struct registry_client *r = s->r;
        _cleanup_(registry_aws_keys_done) struct registry_aws_keys k = {};
        int q;

        if (var(r, CLOUD_AWS_ACCESS_KEY_ID) && var(r, CLOUD_AWS_SECRET_ACCESS_KEY)) {
                /* Static keys (the SDKs' first choice): valid until changed. */
                const char *id = var(r, CLOUD_AWS_ACCESS_KEY_ID);
                const char *sec = var(r, CLOUD_AWS_SECRET_ACCESS_KEY);
                const char *tok = var(r, CLOUD_AWS_SESSION_TOKEN);
                if (strlen(id) > AWS_KEY_MAX || strlen(sec) > AWS_KEY_MAX ||
                    !token_chars(id, strlen(id)) || strchr(id, ':') ||
                    !token_chars(sec, strlen(sec)) || (tok && !token_chars(tok, strlen(tok)))) {
                        registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                         "AWS_ACCESS_KEY_ID or its secret is malformed");
                        return -EINVAL;
                }
                q = secmem_strndup(id, strlen(id), &k.key_id);
                if (q >= 0)
                        q = secmem_strndup(sec, strlen(sec), &k.secret);
                if (q >= 0 && tok)
                        q = secmem_strndup(tok, strlen(tok), &k.session_token);
                if (q < 0)
                        return q;
                *ret = k;
                k = (struct registry_aws_keys){};
                *ret_exp = INT64_MAX;
                return 0;
        }
        if (!var(r, CLOUD_AWS_ROLE_ARN) || !var(r, CLOUD_AWS_WEB_IDENTITY_TOKEN_FILE)) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "no AWS identity: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE "
                                 "are not set");
                return -ENOENT;
        }
        _cleanup_secmem_ char *jwt = NULL;
        q = read_token_file(var(r, CLOUD_AWS_WEB_IDENTITY_TOKEN_FILE), &jwt);
        if (q < 0) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "cannot read AWS_WEB_IDENTITY_TOKEN_FILE: %s", strerror(-q));
                return q;
        }
        _cleanup_buf_ struct buf body = BUF_INIT(4 * IDENTITY_TOKEN_MAX, BUF_SECURE);
        const char *session = var(r, CLOUD_AWS_ROLE_SESSION_NAME) ?: "cloudtaser-operator";
        q = form_add(&body, "Action", "AssumeRoleWithWebIdentity");
        if (q >= 0)
                q = form_add(&body, "Version", "2011-06-15");
        if (q >= 0)
                q = form_add(&body, "RoleArn", var(r, CLOUD_AWS_ROLE_ARN));
        if (q >= 0)
                q = form_add(&body, "RoleSessionName", session);
        if (q >= 0)
                q = form_add(&body, "WebIdentityToken", jwt);
        if (q < 0)
                return q;
        _cleanup_http_response_ struct http_response resp = {};
        struct http_result res;
        struct call c = {.base = sts,
                         .method = HTTP_POST,
                         .path = "/",
                         .body = &body,
                         .content_type = FORM_CT};
        char code[80] = "";
        q = call(s, &c, &resp, &res);
        if (q < 0)
                return exchange_error(s, "STS AssumeRoleWithWebIdentity", sts, q, 0, NULL);
        q = registry_sts_parse(resp.body.data ? resp.body.data : "", resp.body.len, &k, ret_exp,
                               code, sizeof(code));
        if (resp.status != 200 || q < 0)
                return exchange_error(s, "STS AssumeRoleWithWebIdentity", sts, 0, resp.status,
                                      q < 0 && resp.status == 200 ? "(malformed answer)" : code);
        (void) t;
        *ret = k;
        k = (struct registry_aws_keys){};
        return 0;
}

static int ecr_credential(struct registry_session *s, const struct registry_cloud_target *t,
                          char **ret, int64_t *ret_exp) {
        _cleanup_(registry_aws_keys_done) struct registry_aws_keys k = {};
        char sts[512], ecr[512], scope[160], code[80] = "";
        int64_t keys_exp = 0, exp = 0;
        int q;

        if (registry_cloud_endpoints(s->r, t, sts, sizeof(sts), ecr, sizeof(ecr)) < 0) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL or "
                                 "AWS_REGION is not usable (https:// endpoints only)");
                return -EINVAL;
        }
        q = aws_keys(s, t, sts, &k, &keys_exp);
        if (q < 0)
                return q;
        /* The region that signs is the registry's: its ECR endpoint is regional. */
        (void) snprintf(scope, sizeof(scope), "aws:amz:%s:ecr", t->region);
        _cleanup_buf_ struct buf body = BUF_INIT(16, 0);
        q = buf_append_str(&body, "{}");
        if (q < 0)
                return q;
        struct http_header h[2] = {
                {.name = "X-Amz-Target",
                 .value = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"},
        };
        size_t nh = 1;
        if (k.session_token)
                h[nh++] = (struct http_header){
                        .name = "X-Amz-Security-Token", .value = k.session_token, .secret = true};
        _cleanup_http_response_ struct http_response resp = {};
        struct http_result res;
        struct call c = {.base = ecr,
                         .method = HTTP_POST,
                         .path = "/",
                         .body = &body,
                         .content_type = "application/x-amz-json-1.1",
                         .headers = h,
                         .n_headers = nh,
                         .sigv4 = scope,
                         .keys = &k};
        q = call(s, &c, &resp, &res);
        if (q < 0)
                return exchange_error(s, "ECR GetAuthorizationToken", ecr, q, 0, NULL);
        if (resp.status != 200) {
                /* {"__type":"com.amazonaws...#AccessDeniedException","message":"..."} */
                _cleanup_json_doc_ struct json_doc *doc = NULL;
                const char *type = NULL;
                if (parse_json(resp.body.data ? resp.body.data : "", resp.body.len, &doc) == 0 &&
                    json_get_string(json_doc_root(doc), "__type", &type) == 0) {
                        const char *hash = strrchr(type, '#');
                        type = hash ? hash + 1 : type;
                        copy_code(type, strlen(type), code, sizeof(code));
                }
                return exchange_error(s, "ECR GetAuthorizationToken", ecr, 0, resp.status, code);
        }
        q = registry_ecr_parse(resp.body.data ? resp.body.data : "", resp.body.len, ret, &exp);
        if (q < 0)
                return exchange_error(s, "ECR GetAuthorizationToken", ecr, 0, resp.status,
                                      "(malformed answer)");
        *ret_exp = MIN(exp, keys_exp);
        return 0;
}

static int join_user_pass(const char *user, const char *pass, char **ret) {
        _cleanup_buf_ struct buf b = BUF_INIT(REGISTRY_CREDENTIAL_MAX, BUF_SECURE);
        int r = buf_append_str(&b, user);
        if (r >= 0)
                r = buf_append_byte(&b, ':');
        if (r >= 0)
                r = buf_append_str(&b, pass);
        if (r < 0)
                return r;
        return secmem_strndup(b.data, b.len, ret);
}

static int gcp_credential(struct registry_session *s, char **ret, int64_t *ret_exp) {
        const char *host = var(s->r, CLOUD_GCE_METADATA_HOST) ?: "metadata.google.internal";
        char base[320], code[80] = "";
        _cleanup_secmem_ char *token = NULL;
        int64_t in = 0;
        int q;

        /* host[:port] only: the metadata server speaks plain HTTP on a link-local address. */
        if (strlen(host) > 255 ||
            strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789.-:[]") != strlen(host)) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "GCE_METADATA_HOST is not a host[:port]");
                return -EINVAL;
        }
        (void) snprintf(base, sizeof(base), "http://%s", host);
        const struct http_header h[] = {{.name = "Metadata-Flavor", .value = "Google"}};
        _cleanup_http_response_ struct http_response resp = {};
        struct http_result res;
        struct call c = {.base = base,
                         .method = HTTP_GET,
                         .path = "/computeMetadata/v1/instance/service-accounts/default/token",
                         .headers = h,
                         .n_headers = 1};
        q = call(s, &c, &resp, &res);
        if (q < 0)
                return exchange_error(s, "the GCE metadata server", base, q, 0, NULL);
        if (resp.status != 200)
                return exchange_error(s, "the GCE metadata server", base, 0, resp.status, NULL);
        q = registry_oauth_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                                 "access_token", &token, &in, code, sizeof(code));
        if (q < 0)
                return exchange_error(s, "the GCE metadata server", base, 0, resp.status,
                                      code[0] ? code : "(malformed answer)");
        q = join_user_pass("oauth2accesstoken", token, ret);
        if (q < 0)
                return q;
        *ret_exp = (int64_t) time(NULL) + in;
        return 0;
}

static int acr_credential(struct registry_session *s, const struct registry_cloud_target *t,
                          char **ret, int64_t *ret_exp) {
        const struct registry_client *r = s->r;
        const char *client = var(r, CLOUD_AZURE_CLIENT_ID), *tenant = var(r, CLOUD_AZURE_TENANT_ID);
        const char *file = var(r, CLOUD_AZURE_FEDERATED_TOKEN_FILE);
        const char *authority = var(r, CLOUD_AZURE_AUTHORITY_HOST) ?: t->authority;
        _cleanup_secmem_ char *assertion = NULL, *aad = NULL, *refresh = NULL;
        char path[256], code[80] = "", registry[REGISTRY_NAME_MAX + 16];
        int64_t in = 0;
        int q;

        if (!client || !tenant || !file) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "no Azure workload identity: AZURE_CLIENT_ID, AZURE_TENANT_ID "
                                 "and AZURE_FEDERATED_TOKEN_FILE are not all set");
                return -ENOENT;
        }
        if (!https_endpoint_valid(authority) || strlen(tenant) > 128 ||
            strspn(tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                    strlen(tenant)) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "AZURE_AUTHORITY_HOST (https:// only) or AZURE_TENANT_ID is not "
                                 "usable");
                return -EINVAL;
        }
        q = read_token_file(file, &assertion);
        if (q < 0) {
                registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                 "cannot read AZURE_FEDERATED_TOKEN_FILE: %s", strerror(-q));
                return q;
        }
        /* 1. The federated token for an AAD access token (client credentials, JWT assertion). */
        {
                _cleanup_buf_ struct buf body = BUF_INIT(4 * IDENTITY_TOKEN_MAX, BUF_SECURE);
                q = form_add(&body, "client_id", client);
                if (q >= 0)
                        q = form_add(&body, "grant_type", "client_credentials");
                if (q >= 0)
                        q = form_add(&body, "scope", t->scope);
                if (q >= 0)
                        q = form_add(&body, "client_assertion_type",
                                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
                if (q >= 0)
                        q = form_add(&body, "client_assertion", assertion);
                if (q < 0)
                        return q;
                (void) snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant);
                _cleanup_http_response_ struct http_response resp = {};
                struct http_result res;
                struct call c = {.base = authority,
                                 .method = HTTP_POST,
                                 .path = path,
                                 .body = &body,
                                 .content_type = FORM_CT};
                q = call(s, &c, &resp, &res);
                if (q < 0)
                        return exchange_error(s, "the AAD token endpoint", authority, q, 0, NULL);
                q = registry_oauth_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                                         "access_token", &aad, &in, code, sizeof(code));
                if (resp.status != 200 || q < 0)
                        return exchange_error(s, "the AAD token endpoint", authority, 0,
                                              resp.status, code[0] ? code : "(malformed answer)");
        }
        /* 2. The AAD token for an ACR refresh token, at the registry itself. */
        {
                _cleanup_buf_ struct buf body = BUF_INIT(4 * TOKEN_MAX, BUF_SECURE);
                q = form_add(&body, "grant_type", "access_token");
                if (q >= 0)
                        q = form_add(&body, "service", t->name);
                if (q >= 0)
                        q = form_add(&body, "tenant", tenant);
                if (q >= 0)
                        q = form_add(&body, "access_token", aad);
                if (q < 0)
                        return q;
                (void) snprintf(registry, sizeof(registry), "https://%s", s->ref->host);
                _cleanup_http_response_ struct http_response resp = {};
                struct http_result res;
                struct call c = {.base = registry,
                                 .method = HTTP_POST,
                                 .path = "/oauth2/exchange",
                                 .body = &body,
                                 .content_type = FORM_CT};
                q = call(s, &c, &resp, &res);
                if (q < 0)
                        return exchange_error(s, "ACR oauth2/exchange", registry, q, 0, NULL);
                code[0] = '\0';
                q = registry_oauth_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                                         "refresh_token", &refresh, NULL, code, sizeof(code));
                if (resp.status != 200 || q < 0)
                        return exchange_error(s, "ACR oauth2/exchange", registry, 0, resp.status,
                                              code[0] ? code : "(malformed answer)");
        }
        q = join_user_pass(NULL_GUID, refresh, ret);
        if (q < 0)
                return q;
        /* The refresh token outlives the AAD token (3 hours against about one); renewing with
         * the AAD token keeps both fresh. */
        *ret_exp = (int64_t) time(NULL) + in;
        return 0;
}

/* --- the cache -------------------------------------------------------------------------------- */

uint64_t registry_cloud_lifetime_usec(int64_t expires_unix, int64_t now_unix) {
        if (expires_unix <= now_unix)
                return 0;
        uint64_t life = (uint64_t) (expires_unix - now_unix);
        if (life > 86400u * 366)
                life = 86400u * 366;
        /* Renewed when REGISTRY_CLOUD_MARGIN_S are left, or half the lifetime when shorter. */
        uint64_t margin = life >= 2 * REGISTRY_CLOUD_MARGIN_S ? REGISTRY_CLOUD_MARGIN_S : life / 2;
        return (life - margin) * 1000000u;
}

static int cache_get(struct registry_client *r, const char *host, char **ret) {
        int q = -ENOENT;
        pthread_mutex_lock(&r->lock);
        uint64_t now = registry_hook_now(r);
        for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache); i++) {
                struct cloud_cache_entry *e = &r->cloud_cache[i];
                if (!e->user_pass || strcasecmp(e->host, host) != 0)
                        continue;
                if (now >= e->expires_usec) {
                        secmem_free(e->user_pass);
                        *e = (struct cloud_cache_entry){};
                        break;
                }
                q = secmem_strndup(e->user_pass, strlen(e->user_pass), ret);
                break;
        }
        pthread_mutex_unlock(&r->lock);
        return q;
}

static void cache_put(struct registry_client *r, const char *host, const char *user_pass,
                      uint64_t life_usec) {
        char *copy = NULL;
        if (life_usec == 0 || secmem_strndup(user_pass, strlen(user_pass), &copy) < 0)
                return;
        pthread_mutex_lock(&r->lock);
        uint64_t now = registry_hook_now(r);
        struct cloud_cache_entry *slot = NULL;
        for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache) && !slot; i++)
                if (r->cloud_cache[i].user_pass && strcasecmp(r->cloud_cache[i].host, host) == 0)
                        slot = &r->cloud_cache[i];
        for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache) && !slot; i++)
                if (!r->cloud_cache[i].user_pass || now >= r->cloud_cache[i].expires_usec)
                        slot = &r->cloud_cache[i];
        if (!slot) /* all live: the one expiring first goes */
                for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache); i++)
                        if (!slot || r->cloud_cache[i].expires_usec < slot->expires_usec)
                                slot = &r->cloud_cache[i];
        secmem_free(slot->user_pass);
        (void) snprintf(slot->host, sizeof(slot->host), "%s", host);
        slot->user_pass = copy;
        slot->expires_usec = now + life_usec;
        r->stats.cloud_credentials++;
        pthread_mutex_unlock(&r->lock);
}

void registry_cloud_forget(struct registry_client *r, const char *host) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < ELEMENTSOF(r->cloud_cache); i++)
                if (r->cloud_cache[i].user_pass && strcasecmp(r->cloud_cache[i].host, host) == 0) {
                        secmem_free(r->cloud_cache[i].user_pass);
                        r->cloud_cache[i] = (struct cloud_cache_entry){};
                }
        pthread_mutex_unlock(&r->lock);
}

int registry_cloud_credential(struct registry_session *s, char **ret) {
        struct registry_cloud_target t;
        _cleanup_secmem_ char *up = NULL;
        int64_t exp = 0;
        int q;

        s->cloud_err[0] = '\0';
        if (registry_cloud_match(s->ref->host, &t) == REGISTRY_CLOUD_NONE)
                return -ENOENT;
        if (cache_get(s->r, s->ref->host, ret) == 0)
                return 0;
        switch (t.kind) {
        case REGISTRY_CLOUD_ECR:
                q = ecr_credential(s, &t, &up, &exp);
                break;
        case REGISTRY_CLOUD_GCP:
                q = gcp_credential(s, &up, &exp);
                break;
        default:
                q = acr_credential(s, &t, &up, &exp);
                break;
        }
        if (q < 0) {
                if (!s->cloud_err[0])
                        registry_set_err(s->cloud_err, sizeof(s->cloud_err),
                                         "no %s registry credential: %s", kind_name(t.kind),
                                         strerror(-q));
                return q;
        }
        cache_put(s->r, s->ref->host, up, registry_cloud_lifetime_usec(exp, (int64_t) time(NULL)));
        *ret = TAKE_PTR(up);
        return 0;
}
