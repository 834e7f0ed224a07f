/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for broker/podtokens with a recording stand-in for the vault calls and an injected
 * clock: the session id; the policy's name (the expiry in it) and text (read on exactly the
 * session's paths); minting once per session (policy, then a token of that one policy through
 * the role, TTL = the session's time left), the token held for later reads; none for an ended
 * session; revoke on renewal, at expiry and at shutdown; the sweep deletes exactly the
 * policies expired more than the grace ago (ours only); a failed creation leaves no token; a
 * full table revokes the session that expires first. The vault side (a real OpenBao: the
 * token's capabilities, the reads) is tests/e2e/test-real-broker-podtokens.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/podtokens.h"
#include "common/macro.h"
#include "common/secmem.h"
#include "tests/tap.h"

#define NOW 1764760000

/* ---- the stand-in ---- */
#define MAX_POL 16
static struct {
        char policies[MAX_POL][PODTOKENS_POLICY_MAX + 16];
        char texts[MAX_POL][1024];
        size_t n_pol;
        unsigned writes, creates, revokes, deletes;
        char last_role[64], last_policy[PODTOKENS_POLICY_MAX];
        int64_t last_ttl;
        char revoked[8][64];
        int fail_create;
        unsigned serial;
} v;

static int f_write(void *u, const char *name, const char *text) {
        (void) u;
        v.writes++;
        for (size_t i = 0; i < v.n_pol; i++)
                if (strcmp(v.policies[i], name) == 0)
                        return snprintf(v.texts[i], sizeof(v.texts[i]), "%s", text), 0;
        if (v.n_pol == MAX_POL)
                return -ENOSPC;
        (void) snprintf(v.policies[v.n_pol], sizeof(v.policies[0]), "%s", name);
        (void) snprintf(v.texts[v.n_pol++], sizeof(v.texts[0]), "%s", text);
        return 0;
}

static int f_delete(void *u, const char *name) {
        (void) u;
        v.deletes++;
        for (size_t i = 0; i < v.n_pol; i++)
                if (strcmp(v.policies[i], name) == 0) {
                        memmove(v.policies[i], v.policies[i + 1],
                                (v.n_pol - i - 1) * sizeof(v.policies[0]));
                        memmove(v.texts[i], v.texts[i + 1], (v.n_pol - i - 1) * sizeof(v.texts[0]));
                        v.n_pol--;
                        break;
                }
        return 0;
}

static int f_list(void *u, const char *prefix, char ***ret_names, size_t *ret_n) {
        (void) u;
        char **names = calloc(MAX_POL, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; i < v.n_pol; i++)
                if (strncmp(v.policies[i], prefix, strlen(prefix)) == 0)
                        names[n++] = strdup(v.policies[i]);
        *ret_names = names;
        *ret_n = n;
        return 0;
}

static int f_create(void *u, const char *role, const struct vault_child_token *t, char **ret_token,
                    char *ret_accessor, size_t size) {
        (void) u;
        char tok[32];
        v.creates++;
        if (v.fail_create)
                return -EIO;
        (void) snprintf(v.last_role, sizeof(v.last_role), "%s", role);
        (void) snprintf(v.last_policy, sizeof(v.last_policy), "%s", t->policy);
        v.last_ttl = t->ttl_s;
        (void) snprintf(tok, sizeof(tok), "s.token%u", ++v.serial);
        (void) snprintf(ret_accessor, size, "acc%u", v.serial);
        return secmem_strndup(tok, strlen(tok), ret_token);
}

static int f_revoke(void *u, const char *token) {
        (void) u;
        (void) snprintf(v.revoked[v.revokes++ % 8], sizeof(v.revoked[0]), "%s", token);
        return 0;
}

static const struct podtokens_ops ops = {.policy_write = f_write,
                                         .policy_delete = f_delete,
                                         .policy_list = f_list,
                                         .token_create = f_create,
                                         .token_revoke = f_revoke};

static char *paths1[] = {"secret/data/team-a/db", "secret/data/team-a/api"};
static struct brokerproto_session session(int64_t exp) {
        return (struct brokerproto_session){.ns = "team-a",
                                            .pod = "app-1",
                                            .uid = "uid-1",
                                            .sa = "app",
                                            .paths = paths1,
                                            .n_paths = 2,
                                            .iat = NOW,
                                            .exp = exp};
}

int main(void) {
        struct podtokens *p = NULL;
        struct podtokens_grant g = {};
        char id1[PODTOKENS_ID_SIZE], id2[PODTOKENS_ID_SIZE], name[PODTOKENS_POLICY_MAX];
        int64_t exp = 0;

        /* Names. */
        podtokens_session_id("ctbs1.a.b", 9, id1);
        podtokens_session_id("ctbs1.a.c", 9, id2);
        ok(strlen(id1) == 32 && strspn(id1, "0123456789abcdef") == 32 && strcmp(id1, id2) != 0,
           "session ids: 32 hex digits, one per token (%s)", id1);
        podtokens_policy_name(NOW + 900, id1, name);
        ok(strncmp(name, "cloudtaser-broker-pod-1764760900-", 33) == 0 &&
                   strcmp(name + 33, id1) == 0,
           "policy name: prefix, expiry, id (%s)", name);
        ok(podtokens_policy_expiry(name, &exp) == 0 && exp == NOW + 900, "its expiry read back");
        static const char *const not_ours[] = {
                "cloudtaser-pod-uid-1",
                "cloudtaser-broker-pod-",
                "cloudtaser-broker-pod-x-0123",
                "cloudtaser-broker-pod-12-0123",
                ("cloudtaser-broker-pod-99999999999999999999-"
                 "0123456789abcdef0123456789abcdef"),
                "cloudtaser-broker-pod-12-0123456789ABCDEF0123456789abcdef"};
        for (size_t i = 0; i < ELEMENTSOF(not_ours); i++)
                ok(podtokens_policy_expiry(not_ours[i], &exp) == -EINVAL, "not ours: '%s'",
                   not_ours[i]);
        {
                _cleanup_buf_ struct buf t = BUF_INIT(4096, 0);
                struct brokerproto_session s = session(NOW + 900);
                is_int(podtokens_policy_text(&s, &t), 0, "policy text");
                is_str(buf_cstr(&t),
                       "# cloudtaser broker: session of pod team-a/app-1 uid uid-1\n"
                       "# expires: 1764760900\n"
                       "path \"secret/data/team-a/db\" {\n  capabilities = [\"read\"]\n}\n"
                       "path \"secret/data/team-a/api\" {\n  capabilities = [\"read\"]\n}\n",
                       "  read on exactly the session's paths, nothing else");
        }

        /* Minting. */
        is_int(podtokens_new(&ops, NULL, &p), 0, "table");
        struct brokerproto_session s1 = session(NOW + 900);
        is_int(podtokens_get(p, &s1, id1, NOW + 100, &g), 0, "a session's token");
        podtokens_policy_name(NOW + 900, id1, name);
        ok(g.minted && strcmp(g.token, "s.token1") == 0 && strcmp(g.policy, name) == 0 &&
                   strcmp(g.accessor, "acc1") == 0,
           "  minted: token, policy, accessor");
        ok(v.writes == 1 && v.n_pol == 1 && strcmp(v.policies[0], name) == 0 &&
                   strstr(v.texts[0], "path \"secret/data/team-a/db\"") &&
                   strstr(v.texts[0], "path \"secret/data/team-a/api\""),
           "  its policy written first");
        ok(v.creates == 1 && strcmp(v.last_role, PODTOKENS_ROLE_DEFAULT) == 0 &&
                   strcmp(v.last_policy, name) == 0 && v.last_ttl == 800,
           "  a token of that one policy through the role, TTL the session's 800 s left");
        is_int(podtokens_get(p, &s1, id1, NOW + 200, &g), 0, "again");
        ok(!g.minted && strcmp(g.token, "s.token1") == 0 && v.creates == 1 && v.writes == 1,
           "  the token held: no vault call");
        is_int(podtokens_get(p, &s1, id1, NOW + 900, &g), -EKEYEXPIRED,
               "none for a session that has ended");
        is_int(podtokens_get(p, &s1, "short", NOW, &g), -EINVAL, "a malformed id: -EINVAL");

        /* Renewal: the old session's token revoked, the policy kept for other replicas. */
        struct brokerproto_session s2 = session(NOW + 1500);
        is_int(podtokens_get(p, &s2, id2, NOW + 600, &g), 0, "the renewed session's token");
        ok(g.minted && strcmp(g.token, "s.token2") == 0 && podtokens_count(p) == 2, "  minted");
        is_int(podtokens_end(p, id1), 1, "the old session ended");
        ok(v.revokes == 1 && strcmp(v.revoked[0], "s.token1") == 0 && podtokens_count(p) == 1,
           "  its token revoked (with itself)");
        ok(v.n_pol == 2, "  its policy stays until it expires");
        is_int(podtokens_end(p, id1), 0, "  ending it again: nothing held");

        /* The sweep. */
        (void) f_write(NULL, "cloudtaser-broker-pod-1764759000-0123456789abcdef0123456789abcdef",
                       "left over by a dead broker");
        (void) f_write(NULL, "cloudtaser-pod-uid-9", "the unsealer's");
        (void) f_write(NULL, "cloudtaser-broker-pod-manual", "someone's");
        size_t rv = 0, dl = 0;
        is_int(podtokens_sweep(p, NOW + 900 + PODTOKENS_GRACE - 1, &rv, &dl), 0, "sweep");
        ok(rv == 0 && dl == 1 && v.n_pol == 5 - 1,
           "  only the dead broker's expired policy goes; session 1's is within the grace");
        is_int(podtokens_sweep(p, NOW + 900 + PODTOKENS_GRACE, &rv, &dl), 0,
               "sweep after the grace");
        ok(rv == 0 && dl == 1 && v.n_pol == 3, "  session 1's policy deleted");
        is_int(podtokens_sweep(p, NOW + 1500, &rv, &dl), 0, "sweep at session 2's expiry");
        ok(rv == 1 && podtokens_count(p) == 0 && strcmp(v.revoked[1], "s.token2") == 0 && dl == 0,
           "  its token revoked, its policy kept for the grace");
        (void) podtokens_sweep(p, NOW + 1500 + PODTOKENS_GRACE, &rv, &dl);
        ok(dl == 1 && v.n_pol == 2 && strncmp(v.policies[0], "cloudtaser-pod-", 15) == 0,
           "  then deleted; the names not ours are left");

        /* A failed creation holds nothing. */
        v.fail_create = 1;
        is_int(podtokens_get(p, &s2, id2, NOW + 700, &g), -EIO, "token creation fails");
        ok(podtokens_count(p) == 0, "  nothing held");
        v.fail_create = 0;

        /* A full table: the session expiring first is revoked. */
        unsigned rev0 = v.revokes;
        for (int i = 0; i < PODTOKENS_MAX; i++) {
                char tok[32], id[PODTOKENS_ID_SIZE];
                struct brokerproto_session s = session(NOW + 1000 + (i == 7 ? 0 : 100 + i));
                (void) snprintf(tok, sizeof(tok), "t%d", i);
                podtokens_session_id(tok, strlen(tok), id);
                v.n_pol = 0; /* the stand-in keeps few policies */
                if (podtokens_get(p, &s, id, NOW, &g) < 0)
                        break;
        }
        is_int((int) podtokens_count(p), PODTOKENS_MAX, "a full table");
        struct brokerproto_session s3 = session(NOW + 3000);
        v.n_pol = 0;
        is_int(podtokens_get(p, &s3, id1, NOW, &g), 0, "one more session");
        char seventh[32];
        (void) snprintf(seventh, sizeof(seventh), "s.token%u", 3 + 7);
        ok(podtokens_count(p) == PODTOKENS_MAX && v.revokes == rev0 + 1 &&
                   strcmp(v.revoked[rev0 % 8], seventh) == 0,
           "  the session that expires first was revoked (%s)", v.revoked[rev0 % 8]);
        is_int((int) podtokens_revoke_all(p), PODTOKENS_MAX, "shutdown: every token revoked");
        ok(podtokens_count(p) == 0 && v.revokes == rev0 + 1 + PODTOKENS_MAX, "  none held");
        podtokens_free(p);
        return tap_done();
}
