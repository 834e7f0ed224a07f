/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/modes: the mutation's part for the two auth methods that need the operator's own
 * credentials (docs/operator.md "Broker mode and sealed token mode", docs/protocol-broker.md):
 *
 *   broker        cloudtaser.io/vault-auth-method: broker. The pod gets a projected service
 *                 account token volume (INJECTION_BROKER_TOKEN_VOLUME: audience
 *                 BROKERPROTO_AUDIENCE, INJECTION_BROKER_TOKEN_EXPIRY seconds, file `token`)
 *                 mounted read-only at INJECTION_BROKER_TOKEN_DIR in each wrapped container, and
 *                 CLOUDTASER_BROKER_ADDRESS and CLOUDTASER_BROKER_CA_PEM (the broker-tls CA) in
 *                 their environment. No VAULT_ADDR: cloudtaser.io/vault-address is refused.
 *   sealed token  cloudtaser.io/vault-auth-method: token and a wrapped container to which the
 *                 pod delivers no VAULT_TOKEN: with unsealing on (--unseal-pods) the container
 *                 gets CLOUDTASER_UNSEAL_CA_PEM (the broker-tls CA, which verifies the operator's
 *                 client certificate) and, when it has none, a readinessProbe on
 *                 https://:INJECTION_UNSEAL_PORT/v1/ready; the pod gets the label
 *                 MODES_SEALED_LABEL: <the installation id> (brokerproto_installation_id() of
 *                 broker-token): the unsealer of this installation selects exactly that value,
 *                 so the sealed pods of two installations in one cluster are never mixed up. With
 * unsealing off such a container is denied. One sealed container per pod (they would share the
 * port). In both, the pod gets the annotation BROKERPROTO_ANNOTATION_MAC: the MAC of its namespace,
 * service account, secret-paths and env-map annotations under the annotation key; a value the
 * pod author set is replaced. The key and the CA come from the operator's credentials through
 * struct modes_keys (operator/credentials keeps them); a pod that needs one the operator has not
 * loaded is denied, naming what is missing.
 *
 * Used by operator/admission for one review (struct modes_pod), single-threaded; the keys'
 * callbacks may be called from several reviews at once. Denials are -EPERM with the HTTP code
 * (400, 403, 500) as the status and one printable sentence in a struct error_report
 * (common/error-report.h; no secret in it: names and paths only);
 * -ENOMEM, -E2BIG (the patch's bound).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/brokerproto.h"
#include "common/buf.h"
#include "common/error-report.h"
#include "common/json.h"
#include "operator/annotations.h"
#include "operator/jsonpatch.h"

#define MODES_SEALED_LABEL "cloudtaser.io/sealed"
#define MODES_READY_PATH "/v1/ready" /* the wrapper answers 200 unsealed, 503 sealed */
#define MODES_BROKER_PORT 8443

/* What the operator's credentials lend the mutation. annotation_mac: brokerproto_annotation_mac()
 * under the annotation key (the key stays with the credentials). broker_ca: appends the public
 * CA bundle (PEM) of broker-tls. installation: the installation id of broker-token (the sealed
 * label's value; only token mode asks for it). Each -ENODATA when the record has not been read
 * yet. NULL callbacks: the operator keeps no credentials (it serves a --tls-cert-file). */
struct modes_keys {
        int (*annotation_mac)(void *userdata, const char *ns, const char *sa, const char *paths,
                              const char *env_map, char ret[BROKERPROTO_ANNOTATION_MAC_LEN + 1]);
        int (*broker_ca)(void *userdata, struct buf *ret);
        int (*installation)(void *userdata, char ret[BROKERPROTO_INSTALLATION_SIZE]);
        void *userdata;
};

struct modes_config {
        /* CLOUDTASER_BROKER_ADDRESS (--broker-address); NULL: no broker known, broker pods are
         * denied by the contract (CLOUDTASER_BROKER_ADDRESS is required). */
        const char *broker_address;
        bool unseal_pods; /* --unseal-pods: the operator delivers tokens to sealed pods */
        struct modes_keys keys;
};

/* "https://SERVICE.NAMESPACE.svc:8443" into out: the default of --broker-address. -EINVAL for
 * names that are not DNS labels, -E2BIG when out is too small. */
int modes_default_broker_address(const char *service, const char *namespace_, char *out, size_t n);

enum modes_kind { MODES_OTHER = 0, MODES_BROKER, MODES_TOKEN };

/* One review's state. Zero it, then modes_pod_begin(); release with modes_pod_done(). */
struct modes_pod {
        const struct modes_config *c;
        enum modes_kind kind;
        const char *ns, *sa;         /* borrowed from the review's document */
        const char *paths, *env_map; /* the annotations as admitted (env_map "" when absent) */
        char *ca_pem;                /* the broker-tls CA, '$' doubled (an env value); owned */
        char mac[BROKERPROTO_ANNOTATION_MAC_LEN + 1];     /* "" when not computed */
        char installation[BROKERPROTO_INSTALLATION_SIZE]; /* token mode: the label's value */
        const char *missing; /* what the operator lacks for these, NULL when nothing */
        bool sealed;         /* the container being wrapped starts sealed */
        size_t n_sealed;     /* sealed containers so far */
};

/* The pod level, before anything is written: the auth method, the service account
 * (spec.serviceAccountName or "default"), the broker's material for broker mode (denied when
 * missing) or, with unsealing on, for token mode (denied later, if a container is sealed).
 * Denies cloudtaser.io/vault-address in broker mode. */
int modes_pod_begin(struct modes_pod *m, const struct modes_config *c, const struct annotations *a,
                    const char *ns, const struct json_value *object, struct error_report *err);
/* Whether VAULT_ADDR is left out (broker mode). */
bool modes_no_vault_address(const struct modes_pod *m);
/* The value of a contract row these modes own (CLOUDTASER_BROKER_ADDRESS,
 * CLOUDTASER_BROKER_CA_PEM, CLOUDTASER_UNSEAL_CA_PEM) for the container being wrapped, NULL
 * for none (written empty). */
const char *modes_row_value(const struct modes_pod *m, size_t row);
/* A wrapped container (its name for messages), before its environment is built:
 * token_delivered says whether the pod gives it a non-empty VAULT_TOKEN (a literal, valueFrom
 * or envFrom). Decides whether it starts sealed; denies when it would and cannot be. */
int modes_container_begin(struct modes_pod *m, const char *name, bool token_delivered,
                          struct error_report *err);
/* Its patch, after the operator's own (so that its volumeMounts exists): the broker token mount,
 * the readiness probe. */
int modes_container_patch(struct modes_pod *m, struct jsonpatch *p, size_t ci,
                          const struct json_value *ctr, const char *name, struct error_report *err);
/* The pod's patch, after every container (spec.volumes exists by then: the operator's volume
 * was added first): the broker token volume, the label, the MAC annotation. wrap[i] tells
 * whether spec.containers[i] is wrapped (only those may mount the broker token volume). */
int modes_pod_patch(struct modes_pod *m, struct jsonpatch *p, const struct json_value *object,
                    const bool *wrap, struct error_report *err);
void modes_pod_done(struct modes_pod *m);

/* An UPDATE of pods/ephemeralcontainers (kubectl debug): an ephemeral container may not mount the
 * broker token volume (with it, anyone may open the pod's broker session). 0 or -EPERM (403). */
int modes_check_ephemeral(const struct json_value *object, struct error_report *err);

/* A copy of s with every '$' doubled (Kubernetes expands "$$" to "$" in env values). *ret:
 * free(). -ENOMEM. */
int modes_env_escape(const char *s, char **ret);
