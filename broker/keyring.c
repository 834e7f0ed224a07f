/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/keyring.h"
#include "common/hmac.h"
#include "common/macro.h"
#include "common/sha256.h"

struct keyring {
        char tenant[BROKERPROTO_MAX_PATH];
        bool has_tenant;
        struct authority *cur, *prev;
        int64_t prev_until; /* unix seconds: prev authenticates while now < prev_until */
        uint8_t auth_digest[SHA256_DIGEST_SIZE], install_digest[SHA256_DIGEST_SIZE];
        uint64_t refreshed_ms;
        bool refreshed;
};

int keyring_new(const char *tenant, struct keyring **ret) {
        struct keyring *k;
        if (!ret || (tenant && strlen(tenant) >= BROKERPROTO_MAX_PATH))
                return -EINVAL;
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        if (tenant) {
                memcpy(k->tenant, tenant, strlen(tenant) + 1);
                k->has_tenant = true;
        }
        *ret = k;
        return 0;
}

struct keyring *keyring_free(struct keyring *k) {
        if (!k)
                return NULL;
        authority_free(k->cur);
        authority_free(k->prev);
        free(k);
        return NULL;
}

static void drop_previous(struct keyring *k) {
        k->prev = authority_free(k->prev);
        k->prev_until = 0;
}

int keyring_update(struct keyring *k, const void *auth, size_t auth_len, const void *install,
                   size_t install_len, int64_t now, int64_t overlap_s) {
        uint8_t ad[SHA256_DIGEST_SIZE], id[SHA256_DIGEST_SIZE];
        struct authority *a = NULL;
        int r;

        if (!k || !auth || !install || overlap_s < 0)
                return -EINVAL;
        keyring_tick(k, now);
        sha256_buffer(auth, auth_len, ad);
        sha256_buffer(install, install_len, id);
        bool same_auth = k->cur && hmac_equal(ad, k->auth_digest, sizeof(ad)),
             same_install = k->cur && hmac_equal(id, k->install_digest, sizeof(id));
        if (same_auth && same_install)
                return KEYRING_SAME;
        r = authority_new(auth, auth_len, install, install_len, k->has_tenant ? k->tenant : NULL,
                          &a);
        if (r < 0)
                return r;
        drop_previous(k);
        if (same_auth) {
                k->prev = k->cur;
                k->prev_until = now + overlap_s;
        } else
                authority_free(k->cur);
        k->cur = a;
        memcpy(k->auth_digest, ad, sizeof(ad));
        memcpy(k->install_digest, id, sizeof(id));
        return same_auth ? KEYRING_NEW_TOKEN : KEYRING_NEW_AUTH;
}

void keyring_tick(struct keyring *k, int64_t now) {
        if (k && k->prev && now >= k->prev_until)
                drop_previous(k);
}

const struct authority *keyring_current(const struct keyring *k) {
        return k ? k->cur : NULL;
}

bool keyring_has_previous(const struct keyring *k, int64_t now) {
        return k && k->prev && now < k->prev_until;
}

int keyring_authenticate(const struct keyring *k, const struct tls_cert *peer,
                         const char *authorization, int64_t now, struct brokerproto_session *ret,
                         char *reason, size_t reason_size) {
        if (!k || !k->cur || !ret)
                return -EINVAL;
        int r = authority_authenticate(k->cur, peer, authorization, now, ret, reason, reason_size);
        if (r != -EKEYREJECTED || !keyring_has_previous(k, now))
                return r;
        /* The previous generation. When it rejects the keys too, the current one's reason
         * stands; when it knows them, its own verdict (and reason) is the answer. */
        char why[AUTHORITY_REASON_MAX] = "";
        int p = authority_authenticate(k->prev, peer, authorization, now, ret, why, sizeof(why));
        if (p != -EKEYREJECTED && reason && reason_size)
                (void) snprintf(reason, reason_size, "%s", why);
        return p == -EKEYREJECTED ? r : p;
}

bool keyring_refresh_due(struct keyring *k, uint64_t now_ms, uint64_t min_ms) {
        if (!k)
                return false;
        if (k->refreshed && now_ms - k->refreshed_ms < min_ms)
                return false;
        keyring_loaded(k, now_ms);
        return true;
}

void keyring_loaded(struct keyring *k, uint64_t now_ms) {
        if (!k)
                return;
        k->refreshed = true;
        k->refreshed_ms = now_ms;
}
