/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broker/authority: the broker's decisions, without any I/O (docs/protocol-broker.md). It holds
 * the keys derived from broker-auth/broker-token and the session CA (derived key, self-signed
 * certificate), and answers:
 *   - from a TokenReview answer: who is calling (namespace, service account, pod name and UID),
 *     with the audience checked;
 *   - from the pod object: whether it is admitted for broker mode (annotation, annotation MAC,
 *     namespace confinement), and which paths its session may read;
 *   - a session: the pod's client certificate (signed from its CSR) and its session token;
 *   - for every later request: whether the client certificate and the token belong together
 *     and are valid now.
 * Errors map to the HTTP answers: -EACCES is 401, -EPERM is 403, -EBADMSG 400. -EKEYREJECTED
 * says "not under these keys" (a 401 from authority_authenticate(), a 403 from
 * authority_check_pod()): what keys this replica has not loaded yet would also give, so the
 * caller may re-read the records and ask again (broker/keyring.h). A reason for the audit line
 * (no secret in it) is written to `reason` when given.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/tls/cert.h"

#define AUTHORITY_REASON_MAX 160
#define AUTHORITY_TENANT_DEFAULT BROKERPROTO_TENANT_DEFAULT
#define AUTHORITY_CA_CN "cloudtaser-broker session CA"

struct authority;

/* Takes the two records' bytes (each BROKERPROTO_KEY_SIZE), derives the keys and the session CA.
 * tenant: the namespace-confinement prefix template ("{namespace}" replaced), NULL for
 * AUTHORITY_TENANT_DEFAULT. -EINVAL, -ENOMEM, -EIO. */
int authority_new(const void *auth, size_t auth_len, const void *install, size_t install_len,
                  const char *tenant, struct authority **ret);
struct authority *authority_free(struct authority *a);

/* The session CA certificate (PEM), to verify client certificates with (tls_server's client CA). */
const char *authority_ca_pem(const struct authority *a);

/* Who called, from a TokenReview (authentication.k8s.io/v1) response. */
struct authority_caller {
        char ns[BROKERPROTO_MAX_NAME + 1];
        char sa[BROKERPROTO_MAX_NAME + 1];
        char pod[BROKERPROTO_MAX_NAME + 1];
        char uid[BROKERPROTO_MAX_UID + 1];
};
/* -EACCES when not authenticated, the audience cloudtaser-broker is not in status.audiences,
 * the user is not a service account, or no pod is bound to the token (extra pod-name/pod-uid). */
int authority_caller_from_review(const struct json_value *review, struct authority_caller *ret,
                                 char *reason, size_t reason_size);

/* The body of the TokenReview to create for a JWT (BUF_SECURE: it holds the JWT). */
int authority_review_request(const char *jwt, struct buf *out);

/* Checks the pod (a v1 Pod object as the API server returns it) against the caller and the
 * admission annotations, and fills session->{ns,pod,uid,sa,paths} (heap; the caller owns the
 * session: brokerproto_session_done()). -EACCES when the pod is not the caller's (name, UID,
 * namespace, service account); -EPERM when not annotated for broker mode or a path is outside
 * the namespace's prefix; -EKEYREJECTED (403) when the annotation MAC does not match (edited
 * annotations, or a MAC under an annotation key this authority does not hold); -EBADMSG for a
 * malformed pod. */
int authority_check_pod(const struct authority *a, const struct authority_caller *caller,
                        const struct json_value *pod, struct brokerproto_session *session,
                        char *reason, size_t reason_size);

/* Signs the CSR into the pod's client certificate (validity now-60 s .. now+ttl, clientAuth, URI
 * SAN spiffe://cloudtaser/ns/<ns>/pod/<name>/uid/<uid>), sets session->iat/exp/cert_sha256 and
 * appends the certificate PEM to cert_pem and the token to token (BUF_SECURE). ttl 1..
 * BROKERPROTO_SESSION_TTL_MAX. -EBADMSG for a bad CSR, -ENOTSUP for a key that is not EC. */
int authority_issue(const struct authority *a, struct brokerproto_session *session,
                    const char *csr_pem, size_t csr_len, int64_t now, int64_t ttl,
                    struct buf *cert_pem, struct buf *token);

/* A later request: the client certificate the TLS layer received (NULL when none; it need not
 * have verified it: TLS_CLIENT_AUTH_REQUEST), and the Authorization header value. Errors are all
 * 401: -EKEYREJECTED for a certificate that is not from this session CA or a token whose MAC is
 * not under these keys (forged, or another installation's, or another key generation's);
 * -EACCES without a certificate, with an expired one, with a missing/malformed/expired token, or
 * a token issued with another certificate. *ret: brokerproto_session_done(). */
int authority_authenticate(const struct authority *a, const struct tls_cert *peer,
                           const char *authorization, int64_t now, struct brokerproto_session *ret,
                           char *reason, size_t reason_size);
