/* SPDX-License-Identifier: Apache-2.0 */
/*
 * standin.h: run the stand-in Vault (tests/standin/vault.py) from a C test.
 *
 *   struct standin *s = NULL;
 *   r = standin_start(NULL, &s);                 // default config, or a JSON config text
 *   ... talk TLS to s->addr with s->ca_path, token s->root_token ...
 *   r = standin_control(s, "POST", "/_standin/clock", "{\"advance_seconds\":60}", &st, &body);
 *   r = standin_make_jwt(s, "default", "app", "vault", 600, &jwt);
 *   standin_stop(s);                             // SIGTERM, bounded wait, SIGKILL; frees s
 *
 * The script is found through $CLOUDTASER_TOP/tests/standin/vault.py, else by walking up from the
 * test executable's directory. Each stand-in gets a private temp dir (test CA and server/client
 * certificates from tests/standin/mkcerts.sh, config, ready file, audit log) that standin_stop()
 * removes. The stand-in listens on 127.0.0.1 with a kernel-chosen port (TLS) and has a plain-HTTP
 * control listener on another 127.0.0.1 port used only for /_standin/ requests.
 *
 * All functions return 0 or -errno; out-parameters are written only on success. Problems are
 * reported on stderr with a "standin:" prefix (this is test code: it may print).
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct standin {
        pid_t pid;
        char *dir;              /* private temp dir, removed by standin_stop() */
        char *addr;             /* "https://127.0.0.1:PORT" */
        char *control_addr;     /* "http://127.0.0.1:PORT" */
        unsigned control_port;  /* port of control_addr */
        char *ca_path;          /* test CA (PEM) that signed the server certificate */
        char *client_cert_path; /* client certificate (PEM) signed by the same CA, for mTLS */
        char *client_key_path;  /* its ECDSA P-256 key */
        char *audit_path;       /* the stand-in's audit log (one JSON line per request/response) */
        char *root_token;       /* root token of the stand-in (random per run) */
};

/* standin_start_kube(): the same for the stand-in kube-apiserver (tests/standin/kube_apiserver.py,
 * tests/standin/README-kube.md): addr, control_addr, ca_path and audit_path as above; with a NULL
 * config, one user "admin" (group system:masters) whose bearer token is root_token. */
int standin_start_kube(const char *config_json, struct standin **ret);

/* A common/kube client of the stand-in kube-apiserver s as its admin (the root token, written to
 * a token file in s's folder). *ret: kube_client_free(). */
struct kube_client;
int standin_kube_client(const struct standin *s, struct kube_client **ret);

/* Bounds used by the helper. */
#define STANDIN_READY_TIMEOUT_MS 60000 /* wait for the ready file */
#define STANDIN_STOP_TIMEOUT_MS 5000   /* SIGTERM -> SIGKILL */
#define STANDIN_CONTROL_MAX (1U << 20) /* largest control reply accepted */

/* Starts a stand-in. config_json: the JSON configuration text (see tests/standin/README.md) or
 * NULL for the default (kv v2 at "secret", kv v1 at "kv", kubernetes auth at "kubernetes" with
 * no roles). Returns -ENOENT if vault.py cannot be found, -ETIMEDOUT if it does not become ready,
 * -ECHILD if it exits early. On success *ret owns a struct freed by standin_stop(). */
int standin_start(const char *config_json, struct standin **ret);

/* One control request (plain HTTP/1.1 over a socket). body may be NULL. On success *ret_status
 * is the HTTP status and *ret_body a NUL-terminated malloc'd reply body (caller frees); either
 * out-parameter may be NULL. -E2BIG if the reply exceeds STANDIN_CONTROL_MAX, -EPROTO if it is
 * not HTTP. */
int standin_control(const struct standin *s, const char *method, const char *path, const char *body,
                    int *ret_status, char **ret_body);

/* A service-account JWT (projected-token claims, HS256 with the stand-in's cluster key) that the
 * stand-in's kubernetes auth accepts. audience NULL = the apiserver default audience; ttl_seconds
 * <= 0 = 3600. namespace/service_account must not contain '"' or '\\' (-EINVAL). *ret_jwt is
 * malloc'd; the caller frees it. */
int standin_make_jwt(const struct standin *s, const char *namespace, const char *service_account,
                     const char *audience, long ttl_seconds, char **ret_jwt);

/* Finds a string value "key": "..." in a flat JSON text written by the stand-in (no escapes in
 * the value). *ret is malloc'd. -ENOENT if absent. Exposed for tests that read control replies. */
int standin_json_str(const char *json, const char *key, char **ret);

/* Stops the stand-in (SIGTERM, up to STANDIN_STOP_TIMEOUT_MS, then SIGKILL), removes its temp dir
 * and frees s. Accepts NULL. */
void standin_stop(struct standin *s);
