/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/webhookconfig: the operator's MutatingWebhookConfiguration (default name
 * cloudtaser-operator-webhook) as the operator keeps it: the caBundle of each of its webhooks is
 * the operator's CA bundle (during a CA rotation the new and the old CA), patched at start and
 * whenever the bundle changes (docs/operator.md, "Certificates").
 *
 * Only the leader writes (operator/credentials decides). Needs get and patch on that one object
 * (RBAC resourceNames).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/kube.h"

/* Sets clientConfig.caBundle of every webhook of the MutatingWebhookConfiguration `name` to the
 * base64 of ca_pem, with one strategic merge patch keyed by the webhooks' names, and only when a
 * webhook's bundle differs. *ret_changed (may be NULL): whether a patch was sent. -ENOENT (no
 * such configuration: err names it), -EBADMSG (an object without webhooks, a webhook without a
 * name), kube_get()/kube_patch()'s errors. */
int webhookconfig_set_ca_bundle(struct kube_client *k, const char *name, const char *ca_pem,
                                size_t ca_len, bool *ret_changed, struct kube_error *err);

/* Whether every webhook of the configuration's JSON (a MutatingWebhookConfiguration object)
 * carries caBundle == b64; the decision webhookconfig_set_ca_bundle() makes, exposed for tests.
 * 1 yes, 0 no, -EBADMSG. */
struct json_value;
int webhookconfig_bundle_current(const struct json_value *config, const char *b64);
