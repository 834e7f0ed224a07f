/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/registry: reads an image's ENTRYPOINT and CMD from its registry (OCI distribution API:
 * the manifest or index, the manifest for the node's platform, then the config blob), for the
 * webhook to wrap a container that has no `command`.
 *
 * Authentication: anonymous, bearer tokens (the WWW-Authenticate challenge flow), basic
 * credentials from kubernetes.io/dockerconfigjson secrets. Docker Hub's naming ("nginx" is
 * docker.io/library/nginx). Results are cached by manifest digest, and by tag for tag_ttl_s.
 * Every lookup is bounded by timeout_ms. Concurrent lookups of the same reference, platform and
 * credentials are coalesced: one asks the registry, the others wait for its result (at most
 * 64 in flight; beyond, each asks on its own). Credentials stay in secmem; nothing here logs.
 *
 * Cloud registries (EKS, GKE and AKS pull through the kubelet's credential providers, not pull
 * secrets): when a registry still answers 401 after the pull secrets' credentials (or without
 * any), and its host is one of a provider's, the OPERATOR's own identity is asked for a
 * credential, once per lookup:
 *   ECR "<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]": static keys (AWS_ACCESS_KEY_ID,
 *     AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else IRSA (AWS_ROLE_ARN,
 *     AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_SESSION_NAME): STS AssumeRoleWithWebIdentity (regional
 *     endpoint, AWS_STS_REGIONAL_ENDPOINTS=legacy for the global one), then ECR
 *     GetAuthorizationToken signed with SigV4: basic "AWS:<password>";
 *   GCP "gcr.io", "*.gcr.io", "*-docker.pkg.dev": the metadata server's access token
 *     (GCE_METADATA_HOST, plain HTTP as the server speaks; GKE workload identity serves it):
 *     basic "oauth2accesstoken:<token>";
 *   ACR "*.azurecr.io|cn|us|de": Azure workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID,
 *     AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST): an AAD token for the ARM scope, exchanged
 *     at https://<registry>/oauth2/exchange for a refresh token: basic
 *     "00000000-0000-0000-0000-000000000000:<refresh token>" for the registry's token flow.
 * Endpoints move only through the SDKs' own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL_ECR, GCE_METADATA_HOST, AZURE_AUTHORITY_HOST), https only (but the metadata
 * server), verified with the same trust anchors as the registries (ca_file). A credential is
 * cached per registry until REGISTRY_CLOUD_MARGIN_S (5 min) before it expires, on the hooks'
 * clock; a refused one is dropped. Where none applies the lookup's error says what to set.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"

/* What a lookup returns. The arrays are NULL-terminated (entrypoint[n_entrypoint] == NULL), each
 * may be empty (n == 0, the array holding only the NULL); arrays and strings are malloc()ed and
 * owned by the struct: release with registry_image_config_done(). */
struct registry_image_config {
        char **entrypoint;
        size_t n_entrypoint; /* NULL-terminated arrays, owned */
        char **cmd;
        size_t n_cmd;
        char digest[80]; /* "sha256:..." of the manifest used */
};

struct registry_options {
        const char *ca_file; /* extra CA bundle for registries (tests), NULL = system bundle */
        /* Registries that may be reached over plain HTTP, "host[:port]" as image references name
         * them ("registry.local:5000"; without a port only the default one), compared without
         * regard to case. Such a registry is still tried over TLS first; plain HTTP is used only
         * when it does not speak TLS at all (http_probe_plain_http(): its peer answered plain
         * HTTP), never after a failed certificate verification, and only for the registry itself
         * (redirect targets and token endpoints of a TLS registry stay https). Any other
         * registry is TLS only. At most REGISTRY_MAX_INSECURE entries, copied. */
        const char *const *insecure;
        size_t n_insecure;
        unsigned timeout_ms;     /* overall bound for one lookup, default 5000 */
        unsigned tag_ttl_s;      /* cache TTL for tag references, default 300 */
        size_t cache_entries;    /* default 1024 */
        struct http_hooks hooks; /* clock for the cache TTL and the cloud credentials' expiry */
        /* "NAME=value" strings the cloud providers' variables are read from, NULL-terminated;
         * NULL: the process environment. Read once, by registry_client_new(). */
        const char *const *env;
};

struct registry_client;

#define REGISTRY_MAX_INSECURE 64

/* A client with its cache. Zero fields of o take the defaults. -EINVAL (also for an insecure
 * entry that is not a registry host[:port], or too many), -ENOMEM. */
int registry_client_new(const struct registry_options *o, struct registry_client **ret);
/* Frees the client and its cache. Accepts NULL. Returns NULL. */
struct registry_client *registry_client_free(struct registry_client *r);

/* image: any reference Kubernetes accepts ("nginx", "nginx:1.25",
 * "docker.io/library/nginx@sha256:...", "localhost:5000/team/app:v1"). os/arch: the node platform
 * ("linux", "amd64"). dockerconfigjsons: contents of kubernetes.io/dockerconfigjson secrets
 * (".dockerconfigjson" value, already base64-decoded) to take credentials from. err: one line
 * saying why and how to fix it. */
int registry_lookup(struct registry_client *r, const char *image, const char *os, const char *arch,
                    const char *const *dockerconfigjsons, size_t n_configs,
                    struct registry_image_config *ret, char *err, size_t errlen);

/* The same lookup from the cache only, without any network I/O (the webhook's event loop asks
 * this first): 0 and *ret when a result is cached that registry_lookup() with the same
 * dockerconfigjsons would take from its cache (read without credentials, with one of the
 * credentials of these dockerconfigjsons that applies to the image, or, for a cloud registry,
 * with the operator's own identity); -EWOULDBLOCK when registry_lookup() is needed; -EINVAL
 * with err for an invalid reference or platform, as registry_lookup(). A result read with a
 * credential is found only by a caller that gives that credential: the caller passes only the
 * pull secrets of the pod under review (operator/pullsecrets.h). */
int registry_lookup_cached(struct registry_client *r, const char *image, const char *os,
                           const char *arch, const char *const *dockerconfigjsons, size_t n_configs,
                           struct registry_image_config *ret, char *err, size_t errlen);

/* Frees the arrays and strings of c and zeroes it. Accepts a zeroed struct; safe to call twice. */
void registry_image_config_done(struct registry_image_config *c);

struct registry_stats {
        uint64_t lookups, cache_hits, errors;
        uint64_t coalesced; /* lookups that waited for the same one in flight instead of asking */
        uint64_t cloud_credentials; /* credentials obtained from the operator's cloud identity */
};

/* A snapshot of the counters (for the operator's metrics). */
void registry_get_stats(const struct registry_client *r, struct registry_stats *ret);
