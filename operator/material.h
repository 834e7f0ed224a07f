/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/material: the operator's own credentials, generated and checked (docs/operator.md,
 * "Credentials"). No I/O but the kernel's random numbers: where the records are kept is
 * operator/credstore, when they are made and rotated operator/credentials.
 *
 * The records (names and fields are the stored contract; values PEM text or base64):
 *   webhook-tls   tls.crt, tls.key (the webhook's leaf), ca.crt, ca.key (the installation's CA)
 *   broker-tls    server.crt, server.key, client.crt, client.key, ca.crt
 *   broker-auth   key      32 random bytes: the broker's session-token MAC key
 *   broker-token  token    32 random bytes: the installation's identity
 * One CA (ECDSA P-256, ten years) signs every leaf (ECDSA P-256, one year). The CA certificate
 * may be a bundle during a CA rotation: the new CA first, then the old one, until every leaf is
 * signed by the new one.
 *
 * Leaves are signed through a struct material_issuer: the CA signer process in the operator
 * (operator/signer), an in-process CA in tests. Private keys are produced only into BUF_SECURE
 * buffers; a function that fails leaves its output buffers as they were.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/tls/cert.h"

#define MATERIAL_CA_LIFETIME_S (3650 * 86400LL)  /* ten years */
#define MATERIAL_LEAF_LIFETIME_S (365 * 86400LL) /* one year */
#define MATERIAL_BACKDATE_S 300u                 /* not_before 5 minutes early: clock skew */
#define MATERIAL_RANDOM_BYTES 32u                /* broker-auth key, broker-token */
#define MATERIAL_MAX_HOSTS 16u                   /* extra SANs of the webhook's leaf */

/* Record names and fields. */
#define MATERIAL_WEBHOOK_TLS "webhook-tls"
#define MATERIAL_BROKER_TLS "broker-tls"
#define MATERIAL_BROKER_AUTH "broker-auth"
#define MATERIAL_BROKER_TOKEN "broker-token"
#define MATERIAL_ENROLLMENT "enrollment"

/* Signs a leaf for the public key spki (SubjectPublicKeyInfo DER) with the parameters p. */
struct material_issuer {
        int (*issue)(void *userdata, const uint8_t *spki, size_t spki_len,
                     const struct tls_cert_params *p, struct tls_cert *ret);
        void *userdata;
};

/* The DNS names of a Service, as the API server and in-cluster clients name it: <service>,
 * <service>.<namespace>, <service>.<namespace>.svc, <service>.<namespace>.svc.cluster.local,
 * written into out (n entries of at most 253 bytes) and pointed to by names[0..3]. -EINVAL when
 * a name is not a DNS label or the result is over 253 bytes. */
#define MATERIAL_SERVICE_NAMES 4
int material_service_names(const char *service, const char *namespace_,
                           char out[MATERIAL_SERVICE_NAMES][254],
                           const char *names[MATERIAL_SERVICE_NAMES]);

/* A new CA: key (PEM, BUF_SECURE out) and certificate (PEM), valid from now - backdate for
 * MATERIAL_CA_LIFETIME_S. common_name: e.g. "cloudtaser-operator CA". */
int material_ca_generate(const char *common_name, int64_t now, struct buf *ret_cert_pem,
                         struct buf *ret_key_pem);

/* An in-process issuer over a CA key and certificate (PEM; the bundle's first certificate is the
 * issuing one). For the tests and for material_ca_generate()'s first leaves. *ret: free with
 * material_local_issuer_free(). */
struct material_local_issuer;
int material_local_issuer_new(const char *ca_cert_pem, size_t cert_len, const char *ca_key_pem,
                              size_t key_len, struct material_local_issuer **ret);
struct material_local_issuer *material_local_issuer_free(struct material_local_issuer *l);
struct material_issuer material_local_issuer(struct material_local_issuer *l);

/* A new key pair and a leaf certificate for it: common name cn, SANs san (DNS and IP), usage
 * TLS_USAGE_SERVER and/or TLS_USAGE_CLIENT, valid from now - backdate for lifetime_s, but never
 * beyond ca_not_after. Appends the certificate (PEM) and the key (PEM, BUF_SECURE out). */
int material_leaf_generate(const struct material_issuer *issuer, const char *cn,
                           const struct tls_san *san, unsigned usage, int64_t now,
                           int64_t lifetime_s, int64_t ca_not_after, struct buf *ret_cert_pem,
                           struct buf *ret_key_pem);

/* n random bytes (the kernel's getrandom), base64, appended to ret (BUF_SECURE). */
int material_random_base64(size_t n, struct buf *ret);

/* The validity of the first certificate of a PEM text (a bundle's first). -EBADMSG. */
int material_cert_validity(const char *pem, size_t len, int64_t *ret_not_before,
                           int64_t *ret_not_after);

/* Whether a certificate valid until not_after must be replaced at now: less than renew_before
 * seconds left (or expired). */
bool material_renewal_due(int64_t not_after, int64_t now, int64_t renew_before);

/* Checks a webhook-tls or broker-tls pair: cert_pem's first certificate is for key_pem's key,
 * chains to one of the ca_pem bundle's certificates, and is valid at now, with the usage given.
 * 0, -EBADMSG (malformed), -EPERM (not this CA, or not this key), -EKEYEXPIRED. */
int material_check_leaf(const char *ca_pem, size_t ca_len, const char *cert_pem, size_t cert_len,
                        const char *key_pem, size_t key_len, int64_t now, unsigned usage);

/* Whether the leaf's DNS SANs include every name of names (so a changed Service name gets a new
 * certificate). 1 yes, 0 no, -EBADMSG. */
int material_leaf_covers(const char *cert_pem, size_t len, const char *const *names, size_t n);

/* Whether the leaf's DNS and IP SANs are exactly the set names (DNS names compared without
 * case, addresses as bytes; duplicates in names count once), so that a name taken away also gets
 * a new certificate. 1 yes, 0 no, -EBADMSG. */
int material_leaf_names_exactly(const char *cert_pem, size_t len, const char *const *names,
                                size_t n);

/* Whether h may be a SAN of our leaves: an IPv4 or IPv6 address literal, or a DNS name (1..253
 * bytes of dot-separated labels of [A-Za-z0-9-_], a leading "*." allowed). */
bool material_host_valid(const char *h);

/* Appends the first certificate of a PEM bundle (PEM) to ret. -EBADMSG. */
int material_bundle_first(const char *pem, size_t len, struct buf *ret);

/* Appends (PEM) every certificate of a bundle that is still valid at now. -EBADMSG. */
int material_bundle_append_valid(const char *pem, size_t len, int64_t now, struct buf *ret);
