/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/podtokens.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "common/sha256.h"
#include "common/strv.h"
#include "common/vault-sys.h"

struct entry {
        char id[PODTOKENS_ID_SIZE];
        char policy[PODTOKENS_POLICY_MAX];
        char accessor[VAULT_ACCESSOR_MAX];
        char *token; /* secmem */
        int64_t exp;
};

struct podtokens {
        struct podtokens_ops ops;
        char role[128];
        struct entry *e;
        size_t n;
};

/* ---- the vault ---------------------------------------------------------------------------- */

static int v_policy_write(void *u, const char *name, const char *text) {
        struct podtokens_vault *vp = u;
        return vault_sys_policy_write(vp->admin, name, text, NULL);
}

static int v_policy_delete(void *u, const char *name) {
        struct podtokens_vault *vp = u;
        return vault_sys_policy_delete(vp->admin, name, NULL);
}

static int v_policy_list(void *u, const char *prefix, char ***ret_names, size_t *ret_n) {
        struct podtokens_vault *vp = u;
        return vault_sys_policy_list(vp->admin, prefix, ret_names, ret_n, NULL);
}

static int v_token_create(void *u, const char *role, const struct vault_child_token *t,
                          char **ret_token, char *ret_accessor, size_t accessor_size) {
        struct podtokens_vault *vp = u;
        struct vault_auth a;
        char *token = NULL;
        int r = vault_token_create(vp->admin, role, t, &token, &a, NULL);
        if (r < 0)
                return r;
        if (!a.accessor[0] || strlen(a.accessor) >= accessor_size) {
                secmem_free(token);
                return -EBADMSG;
        }
        memcpy(ret_accessor, a.accessor, strlen(a.accessor) + 1);
        *ret_token = token;
        return 0;
}

static int v_token_revoke(void *u, const char *token) {
        struct podtokens_vault *vp = u;
        int r = vault_set_token(vp->reader, token, strlen(token));
        if (r >= 0)
                r = vault_token_revoke_self(vp->reader, NULL); /* an expired one counts as done */
        vault_clear_token(vp->reader);
        return r;
}

void podtokens_vault_ops(struct podtokens_vault *v, struct podtokens_ops *ret) {
        *ret = (struct podtokens_ops){.userdata = v,
                                      .policy_write = v_policy_write,
                                      .policy_delete = v_policy_delete,
                                      .policy_list = v_policy_list,
                                      .token_create = v_token_create,
                                      .token_revoke = v_token_revoke};
}

/* ---- names and texts ---------------------------------------------------------------------- */

void podtokens_session_id(const char *token, size_t len, char ret[PODTOKENS_ID_SIZE]) {
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_buffer(token, len, d);
        for (size_t i = 0; i < (PODTOKENS_ID_SIZE - 1) / 2; i++)
                (void) snprintf(ret + 2 * i, 3, "%02x", d[i]);
}

void podtokens_policy_name(int64_t exp, const char *id, char ret[PODTOKENS_POLICY_MAX]) {
        (void) snprintf(ret, PODTOKENS_POLICY_MAX, "%s%" PRId64 "-%s", PODTOKENS_POLICY_PREFIX, exp,
                        id);
}

int podtokens_policy_expiry(const char *name, int64_t *ret) {
        static const size_t plen = sizeof(PODTOKENS_POLICY_PREFIX) - 1;
        int64_t v = 0;
        const char *s;

        if (!name || strncmp(name, PODTOKENS_POLICY_PREFIX, plen) != 0)
                return -EINVAL;
        s = name + plen;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (INT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (*s - '0');
        }
        if (*s != '-' || strlen(s + 1) != PODTOKENS_ID_SIZE - 1 ||
            strspn(s + 1, "0123456789abcdef") != PODTOKENS_ID_SIZE - 1)
                return -EINVAL;
        *ret = v;
        return 0;
}

int podtokens_policy_text(const struct brokerproto_session *s, struct buf *out) {
        char who[BROKERPROTO_MAX_NAME * 2 + BROKERPROTO_MAX_UID + 64], until[48];
        if (!s || !s->ns || !s->pod || !s->uid || !out)
                return -EINVAL;
        (void) snprintf(who, sizeof(who), "cloudtaser broker: session of pod %s/%s uid %s", s->ns,
                        s->pod, s->uid);
        (void) snprintf(until, sizeof(until), "expires: %" PRId64, s->exp);
        const char *const comments[] = {who, until};
        return vault_sys_policy_read_paths(comments, ELEMENTSOF(comments),
                                           (const char *const *) s->paths, s->n_paths, false, out);
}

/* ---- the table ---------------------------------------------------------------------------- */

int podtokens_new(const struct podtokens_ops *ops, const char *role, struct podtokens **ret) {
        struct podtokens *p;
        role = role ? role : PODTOKENS_ROLE_DEFAULT;
        if (!ops || !ret || !ops->policy_write || !ops->policy_delete || !ops->policy_list ||
            !ops->token_create || !ops->token_revoke || !*role || strlen(role) >= 128)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->ops = *ops;
        memcpy(p->role, role, strlen(role) + 1);
        *ret = p;
        return 0;
}

static void forget(struct podtokens *p, size_t i) {
        secmem_free(p->e[i].token);
        p->e[i] = p->e[--p->n];
}

struct podtokens *podtokens_free(struct podtokens *p) {
        if (!p)
                return NULL;
        while (p->n)
                forget(p, 0);
        free(p->e);
        free(p);
        return NULL;
}

static void entry_revoke(struct podtokens *p, size_t i) {
        (void) p->ops.token_revoke(p->ops.userdata, p->e[i].token); /* else it expires */
        forget(p, i);
}

static struct entry *find(struct podtokens *p, const char *id) {
        for (size_t i = 0; i < p->n; i++)
                if (strcmp(p->e[i].id, id) == 0)
                        return &p->e[i];
        return NULL;
}

static int make_room(struct podtokens *p) {
        if (p->n < PODTOKENS_MAX) {
                if (p->n % 64 == 0) {
                        struct entry *m = realloc(p->e, (p->n + 64) * sizeof(*m));
                        if (!m)
                                return -ENOMEM;
                        p->e = m;
                }
                return 0;
        }
        size_t first = 0;
        for (size_t i = 1; i < p->n; i++)
                if (p->e[i].exp < p->e[first].exp)
                        first = i;
        entry_revoke(p, first);
        return 0;
}

int podtokens_get(struct podtokens *p, const struct brokerproto_session *s, const char *id,
                  int64_t now, struct podtokens_grant *ret) {
        _cleanup_buf_ struct buf text = BUF_INIT(VAULT_SYS_MAX_POLICY, 0);
        struct podtokens_grant g = {};
        struct entry e = {};
        char display[96];
        int r;

        if (!p || !s || !id || strlen(id) != PODTOKENS_ID_SIZE - 1 || !ret)
                return -EINVAL;
        if (now >= s->exp)
                return -EKEYEXPIRED;
        struct entry *held = find(p, id);
        if (held) {
                g.token = held->token;
                memcpy(g.policy, held->policy, sizeof(g.policy));
                memcpy(g.accessor, held->accessor, sizeof(g.accessor));
                *ret = g;
                return 0;
        }
        memcpy(e.id, id, PODTOKENS_ID_SIZE);
        e.exp = s->exp;
        podtokens_policy_name(s->exp, id, e.policy);
        if ((r = podtokens_policy_text(s, &text)) < 0 ||
            (r = p->ops.policy_write(p->ops.userdata, e.policy, buf_cstr(&text))) < 0)
                return r;
        (void) snprintf(display, sizeof(display), "broker-%s-%s", s->ns, s->pod);
        const char *meta[][2] = {
                {"pod_namespace", s->ns}, {"pod_name", s->pod}, {"pod_uid", s->uid}};
        struct vault_child_token t = {.policy = e.policy,
                                      .ttl_s = s->exp - now,
                                      .display_name = display,
                                      .meta = meta,
                                      .n_meta = ELEMENTSOF(meta)};
        r = p->ops.token_create(p->ops.userdata, p->role, &t, &e.token, e.accessor,
                                sizeof(e.accessor));
        if (r < 0)
                return r;
        r = make_room(p);
        if (r < 0) {
                (void) p->ops.token_revoke(p->ops.userdata, e.token);
                secmem_free(e.token);
                return r;
        }
        p->e[p->n++] = e;
        g.token = e.token;
        g.minted = true;
        memcpy(g.policy, e.policy, sizeof(g.policy));
        memcpy(g.accessor, e.accessor, sizeof(g.accessor));
        *ret = g;
        return 0;
}

int podtokens_end(struct podtokens *p, const char *id) {
        struct entry *e = p && id ? find(p, id) : NULL;
        if (!e)
                return 0;
        entry_revoke(p, (size_t) (e - p->e));
        return 1;
}

int podtokens_sweep(struct podtokens *p, int64_t now, size_t *ret_revoked, size_t *ret_deleted) {
        char **names = NULL;
        size_t n = 0, revoked = 0, deleted = 0;
        int r;

        if (!p)
                return -EINVAL;
        for (size_t i = 0; i < p->n;)
                if (now >= p->e[i].exp) {
                        entry_revoke(p, i);
                        revoked++;
                } else
                        i++;
        r = p->ops.policy_list(p->ops.userdata, PODTOKENS_POLICY_PREFIX, &names, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                int64_t exp;
                if (podtokens_policy_expiry(names[i], &exp) < 0 || now < exp + PODTOKENS_GRACE)
                        continue;
                if (p->ops.policy_delete(p->ops.userdata, names[i]) >= 0)
                        deleted++;
        }
        if (r >= 0)
                strv_free(names);
        if (ret_revoked)
                *ret_revoked = revoked;
        if (ret_deleted)
                *ret_deleted = deleted;
        return r < 0 ? r : 0;
}

size_t podtokens_revoke_all(struct podtokens *p) {
        size_t n = 0;
        while (p && p->n) {
                entry_revoke(p, p->n - 1);
                n++;
        }
        return n;
}

size_t podtokens_count(const struct podtokens *p) {
        return p ? p->n : 0;
}
