/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/keeper: the operator's own credentials at run time (docs/operator.md,
 * "Credentials"): it puts together, from the flags,
 *   - the store: vault (the operator's own Kubernetes-auth session, operator/vaultsession, and
 *     KV v2 under --secret-mount/--secret-prefix, operator/credstore), kubernetes (one Secret,
 *     with a warning at every start and an Event), or ephemeral (in this process only: a new CA
 *     at every start, for tests and development, said at start);
 *   - the CA signer process (operator/signer), started by the caller before any thread;
 *   - leader election (operator/leader) with --leader-elect: only the leader writes;
 *   - the credentials manager (operator/credentials) and its rotation thread, which runs
 *     credentials_tick() every --cert-check-interval, at once when this replica becomes the
 *     leader, and writes --ca-bundle-out when the bundle changes.
 * It logs (one line per event; never a value).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/kube.h"
#include "common/tls/transport.h"
#include "operator/flags.h"
#include "operator/modes.h"
#include "operator/signer.h"
#include "operator/unsealer.h"

struct keeper;

/* kube: the operator's API client (borrowed; NULL only with the ephemeral backend and without
 * leader election). signer: started by the caller (borrowed). identity: this replica's (the
 * Lease holder name). Starts the vault session thread and the election; -EINVAL (a flag that
 * does not fit), -errno. */
int keeper_new(const struct operator_flags *f, struct kube_client *kube, struct signer *signer,
               const char *identity, struct keeper **ret);

/* Tries until the webhook's certificate is loaded: each failed attempt is one log line with its
 * cause, then wait(userdata, ms) (backoff 1 s doubling to 30 s); a wait returning < 0 (a signal:
 * the operator is stopping) ends it with that value. */
int keeper_bootstrap(struct keeper *k, int (*wait)(void *userdata, unsigned ms), void *userdata);

/* Starts the rotation thread; new webhook pairs go to s. */
int keeper_start(struct keeper *k, struct tls_server *s);

/* Copies of the webhook pair and the CA bundle (see credentials.h). */
int keeper_webhook_pair(struct keeper *k, struct buf *ret_cert, struct buf *ret_key);
int keeper_ca_bundle(struct keeper *k, struct buf *ret);

/* The admission's broker and sealed token modes (operator/modes.h): --broker-address (default
 * https://<--broker-service-name>.<the operator's namespace>.svc:8443), --unseal-pods, and the
 * credentials' annotation MAC, broker-tls CA and installation id (credentials_annotation_mac(),
 * credentials_broker_ca(), credentials_installation()). *ret borrows k. -EINVAL (--broker-address
 * not an https:// URL). */
int keeper_modes_config(struct keeper *k, struct modes_config *ret);
/* What the sealed mode's unsealer (operator/unsealer) borrows: the leader, the annotation key,
 * the installation id, broker-tls's client pair (kept with --unseal-pods), the operator's vault
 * session. -EOPNOTSUPP without a vault backend (the unsealer mints tokens in vault). */
int keeper_unsealer_deps(struct keeper *k, struct unsealer_deps *ret);

/* Whether the operator must stop with an error (the CA signer died: it sent SIGTERM to the
 * process after logging why). */
bool keeper_failed(struct keeper *k);

/* Why the operator is not ready ("" when nothing is wrong): for /readyz. */
void keeper_why(struct keeper *k, char *buf, size_t n);

/* Stops the rotation thread, releases the Lease when leading, ends the vault session. Accepts
 * NULL. Returns NULL. */
struct keeper *keeper_free(struct keeper *k);
