/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/unseal: the sealed token mode's server (docs/wrapper.md, "Sealed token mode";
 * common/injection.h). A wrapper with VAULT_AUTH_METHOD=token and no VAULT_TOKEN starts sealed and
 * serves, over TLS on CLOUDTASER_UNSEAL_LISTEN (default ":8199"), on a thread of its own:
 *
 *   GET  /v1/status  200 {"sealed": true|false}, to anyone (CloudTaser's interface).
 *   GET  /v1/ready   200 {"ready": true} once unsealed and the workload started (unseal_set_ready),
 *                    503 {"ready": false, "sealed": ...} before: the pod's readinessProbe.
 *   POST /v1/unseal  {"token": "...", "wrapped": false}: only over mutual TLS with a client
 *                    certificate that the CA bundle verifies (at the TLS layer, and again here with
 *                    the extended key usage clientAuth required) whose subject CN or a DNS SAN is
 *                    the client name (the operator's). Answers: 401 without a client certificate;
 *                    403 a certificate that is not the operator's (name, usage); 409 already
 *                    unsealed or an unseal under way; 413 a body over UNSEAL_MAX_BODY; 400 a body
 *                    that is not {"token": "<printable>", "wrapped": <bool>}; otherwise what the
 *                    accept callback says (200 {"sealed": false} when it took the token). A
 *                    refusal changes nothing: the wrapper stays sealed and may be unsealed later.
 *
 * The server certificate is self-signed, from a P-256 key generated at start in secure memory:
 * nobody can verify it, so it protects the token against passive eavesdropping only; the
 * operator sends a response-wrapped token, so a token taken by an active impostor is detected
 * (docs/threat-model.md). A client certificate is optional at the TLS layer (status and ready
 * are for anyone); one that is presented must verify, or the handshake fails.
 *
 * Threads: unseal_start() runs the HTTP loop (common/httpd) on a new thread, which calls
 * thread_init first (the wrapper drops that thread's capabilities there) and the accept callback
 * for an authorised unseal (one at a time: a second gets 409 while the first runs). The other
 * functions may be called from any thread. Nothing here logs but through log_*() one line per
 * unseal attempt (outcome and the client's address; never the token).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define UNSEAL_MAX_BODY 8192u  /* bytes of an unseal request body */
#define UNSEAL_TOKEN_MAX 4096u /* bytes of its token (VAULT_TOKEN_MAX) */
#define UNSEAL_REASON_MAX 160u /* the accept callback's reason, sent in the error answer */
#define UNSEAL_CERT_CN "cloudtaser-wrapper"

/* The accept callback: the token (NUL-terminated, len bytes, in secure memory, wiped after the
 * call returns: copy it if it must stay) and whether it is a response-wrapping token. Returns 0
 * when the wrapper took it (it is unsealed from then on), or the HTTP status of the refusal
 * (400..599) with a reason (no secret) in reason. */
typedef int (*unseal_accept_fn)(void *userdata, const char *token, size_t len, bool wrapped,
                                char *reason, size_t reason_size);

struct unseal_options {
        const char *listen;        /* "host:port" as common/httpd takes it: ":8199" */
        const char *client_ca_pem; /* CLOUDTASER_UNSEAL_CA_PEM (required) */
        size_t client_ca_len;
        const char *client_name; /* INJECTION_UNSEAL_CLIENT_NAME */
        unseal_accept_fn accept;
        void (*thread_init)(void *userdata); /* optional, first thing on the server's thread */
        void *userdata;
        unsigned request_timeout_ms; /* 0: 10 s for a whole request (handshake included) */
};

struct unseal;

/* Generates the key and the certificate, builds the TLS context and binds the listening socket.
 * -EINVAL (options, address, a CA bundle without a certificate: -EBADMSG), -EADDRINUSE, -ENOMEM,
 * -EIO. *ret: unseal_free(). */
int unseal_new(const struct unseal_options *o, struct unseal **ret);
/* Starts the server's thread. 0 or -errno. */
int unseal_start(struct unseal *u);
/* The bound port (the listen address may say port 0). */
int unseal_port(const struct unseal *u);
/* An eventfd that becomes readable when the wrapper was unsealed (level: it stays readable). */
int unseal_fd(const struct unseal *u);
/* Whether the wrapper is still sealed (an unseal under way counts as sealed). */
bool unseal_sealed(struct unseal *u);
/* The workload started: /v1/ready answers 200 from now on. */
void unseal_set_ready(struct unseal *u);
/* Stops the server (requests in flight get up to 1 s), joins its thread, wipes the key and frees.
 * Must not be called while the accept callback may be inside a call that does not return (the
 * caller leaves with _exit() then). Accepts NULL. Returns NULL. */
struct unseal *unseal_free(struct unseal *u);

/* The unseal body parser (untrusted bytes; fuzzed): {"token": "<1..UNSEAL_TOKEN_MAX bytes of
 * printable ASCII, no space>", "wrapped": <bool, optional, default false>}, other members ignored,
 * at most UNSEAL_MAX_BODY bytes and 4 levels. Returns 0 with the token in *ret_token (secmem,
 * secmem_free()) and the flag, or the HTTP status of the refusal (400; 503 out of memory) with a
 * static reason. */
int unseal_parse_body(const char *body, size_t len, char **ret_token, bool *ret_wrapped,
                      const char **reason);
