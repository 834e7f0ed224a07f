/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/kube: the few Kubernetes API reads the webhook needs, over common/http: a pod's
 * image pull secrets (and its service account's), to authenticate entrypoint lookups. In-cluster
 * configuration as client-go's InClusterConfig: KUBERNETES_SERVICE_HOST/PORT, the service account
 * token (re-read on every request: kubelet rotates it) and CA under
 * /var/run/secrets/kubernetes.io/serviceaccount/. Credentials stay in secmem; nothing logs.
 */
#pragma once

#include <stddef.h>

#include "common/buf.h"
#include "common/http.h"

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_options {
        const char *server;     /* "https://10.0.0.1:443" */
        const char *ca_file;    /* the apiserver's CA bundle */
        const char *token_file; /* bearer token, re-read per request */
        unsigned timeout_ms;    /* per call, default 3000 */
        struct http_hooks hooks;
};

/* Fills o from the environment as InClusterConfig does (strings point into static storage or the
 * environment). -ENOENT with err when not in a cluster. */
int kube_options_incluster(struct kube_options *o, char *err, size_t errlen);

struct kube_client;
int kube_client_new(const struct kube_options *o, struct kube_client **ret);
struct kube_client *kube_client_free(struct kube_client *k);

/* The ".dockerconfigjson" of a kubernetes.io/dockerconfigjson Secret (a legacy
 * kubernetes.io/dockercfg is converted to the {"auths":{...}} form), base64-decoded, appended to
 * out (give a BUF_SECURE buffer). -ENOENT (no such secret), -EACCES (RBAC), -EMEDIUMTYPE (another
 * type), -EBADMSG, transport errors; err says which. */
int kube_get_pull_secret(struct kube_client *k, const char *namespace_, const char *name,
                         struct buf *out, char *err, size_t errlen);

/* The imagePullSecrets names of a service account. *ret_names is a NULL-terminated array owned by
 * the caller (free each, then the array). */
int kube_get_sa_pull_secrets(struct kube_client *k, const char *namespace_, const char *sa,
                             char ***ret_names, size_t *ret_n, char *err, size_t errlen);

/* Whether a string is a valid DNS-1123 subdomain (namespace, secret and service account names). */
bool kube_name_valid(const char *s);
