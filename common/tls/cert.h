/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls/cert.h: keys, certificate signing requests, certificates and chain verification (the part
 * of the TLS module the operator's certificate manager and the broker need). The transport
 * (curl's client hooks, the TLS server and its connections) is in common/tls/transport.h. The
 * TLS module (the common/tls/ folder) is the only module that includes wolfSSL.
 *
 * What wolfSSL does here: key generation and ECDSA/RSA signatures (wolfCrypt), key DER
 * encoding/decoding, structural parsing of every certificate and CSR (wc_ParseCert, used as a gate
 * before our own stricter reader), CSR self-signature checks, chain verification (a CertManager on
 * a private WOLFSSL_CTX), SHA-1/SHA-256 and the DRBG. What this module does itself: the PEM
 * armour (strict RFC 7468, bounded), and the DER encoding of the to-be-signed parts of
 * certificates and CSRs (TBSCertificate, CertificationRequestInfo), because the wolfSSL build
 * has no WOLFSSL_ALT_NAMES (no SANs through its Cert API) and cannot take exact validity times or
 * critical flags; wolfSSL then signs those bytes (wc_SignCert_ex). See docs/tls.md.
 *
 * Conventions: functions return 0 (or a count) on success and -errno on failure; out-parameters
 * are written only on success. Errors carry no text, so no key byte can ever reach an error
 * message. Common errors:
 *   -EINVAL   bad arguments (NULL, empty, out of range, a non-secure buffer for a private key)
 *   -EBADMSG  malformed input: bad PEM armour, bad base64, wrong label, DER that does not parse,
 *             a CSR whose self-signature is wrong, a key that does not match its certificate
 *   -E2BIG    input over a limit below (size, count, name length); output buffer over its max
 *   -ENOTSUP  valid but unsupported input (encrypted private keys, unknown key algorithms)
 *   -ENOMEM, -EIO (unexpected wolfSSL failure)
 *
 * Secrets: a struct tls_key lives entirely in secmem (the wolfCrypt key struct with its private
 * scalar is inside the secure allocation) and is wiped by tls_key_free(). Private key PEM/DER is
 * only ever produced into, or decoded through, BUF_SECURE buffers. Known limit: wolfCrypt keeps
 * short-lived copies of private values on the stack while signing/decoding (not wiped by us).
 *
 * Thread-safety: all functions are safe to call from several threads on different objects; a
 * struct tls_key may be used for signing by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Limits on untrusted input. */
#define TLS_MAX_PEM (1024u * 1024u) /* one PEM text (a bundle included) */
#define TLS_MAX_DER (64u * 1024u)   /* one decoded certificate, CSR or key */
#define TLS_MAX_BUNDLE_CERTS 64     /* certificates in one bundle / chain */
#define TLS_MAX_CA_CERTS 512        /* trust anchors in one CA bundle */
#define TLS_MAX_PEM_LABEL 64        /* "-----BEGIN <label>-----" */
#define TLS_MAX_SANS 64             /* per type (DNS, IP, URI) in one certificate or CSR */
#define TLS_MAX_NAME 255            /* a CN, O or DNS name (bytes) */
#define TLS_MAX_URI 1024            /* a URI SAN */
#define TLS_MAX_SERIAL 20           /* serial number octets (RFC 5280) */

enum tls_key_type {
        TLS_KEY_NONE = 0,
        TLS_KEY_EC_P256,
        TLS_KEY_EC_P384,
        TLS_KEY_RSA,
        TLS_KEY_OTHER, /* any other algorithm or curve (inspection only) */
};

/* Returns "none", "ec-p256", "ec-p384", "rsa", "other". */
const char *tls_key_type_to_string(enum tls_key_type t);

/* ---- private keys ---------------------------------------------------------------------- */

struct tls_key; /* opaque; entirely in secmem */

/* Generates an ECDSA P-256 key. *ret is owned by the caller (tls_key_free). -ENOMEM, -EIO. */
int tls_key_generate(struct tls_key **ret);

/* An ECDSA P-256 key from a 32-byte big-endian private scalar (the public point computed): for
 * keys derived deterministically (the broker's session CA, docs/protocol-broker.md). -EINVAL when
 * the scalar is 0 or not below the group order (derive the next candidate), -ENOMEM, -EIO. */
int tls_key_from_p256_scalar(const uint8_t scalar[32], struct tls_key **ret);

/* Wipes and frees. Accepts NULL. Returns NULL. */
struct tls_key *tls_key_free(struct tls_key *k);

enum tls_key_type tls_key_get_type(const struct tls_key *k);

/*
 * Imports a private key from PEM: "EC PRIVATE KEY" (SEC1), "RSA PRIVATE KEY" (PKCS#1) or
 * "PRIVATE KEY" (unencrypted PKCS#8 holding an EC P-256/P-384 or RSA key). "EC PARAMETERS" blocks
 * (openssl ecparam -genkey) are skipped; exactly one key block must be present. Base64 is decoded
 * into secmem. -EBADMSG malformed, wrong label, two keys or no key; -ENOTSUP encrypted keys
 * ("ENCRYPTED PRIVATE KEY", "Proc-Type:" headers) or other curves; -E2BIG over TLS_MAX_PEM.
 */
int tls_key_import_pem(const char *pem, size_t len, struct tls_key **ret);

/* Appends the private key as PEM: "EC PRIVATE KEY" (SEC1, read by `openssl pkey`) for EC keys,
 * "RSA PRIVATE KEY" for RSA. `out` must be BUF_SECURE (-EINVAL otherwise); on error it is left
 * as it was. */
int tls_key_export_pem(const struct tls_key *k, struct buf *out);

/* Appends the public key as SubjectPublicKeyInfo DER / "PUBLIC KEY" PEM. */
int tls_key_public_der(const struct tls_key *k, struct buf *out);
int tls_key_public_pem(const struct tls_key *k, struct buf *out);

/* Decodes one "PUBLIC KEY" PEM into canonical SubjectPublicKeyInfo DER (appended to out), after
 * checking the key (EC point on its curve, RSA >= 2048 bits). -EBADMSG, -ENOTSUP. */
int tls_public_key_pem_to_der(const char *pem, size_t len, struct buf *out);

/* 1 when the certificate's (DER) public key is k's public key, 0 when not, -EBADMSG when the
 * certificate does not parse. */
int tls_key_matches_cert(const struct tls_key *k, const uint8_t *der, size_t len);

/* ---- names ----------------------------------------------------------------------------- */

/* Subject alternative names given to the generators (borrowed, NUL-terminated). DNS names:
 * 1..253 bytes of [A-Za-z0-9-.*_]; IPs: IPv4 dotted quad or IPv6 text (inet_pton); URIs:
 * 1..TLS_MAX_URI printable ASCII containing ':'. At most TLS_MAX_SANS of each (-E2BIG). */
struct tls_san {
        const char *const *dns;
        size_t n_dns;
        const char *const *ip;
        size_t n_ip;
        const char *const *uri;
        size_t n_uri;
};

/* Names read from a certificate or CSR. Heap strings, owned by the enclosing info struct. IPs
 * are in inet_ntop text form. Other GeneralName types (e-mail, directory names...) are counted
 * in n_other. */
struct tls_names {
        char **dns;
        size_t n_dns;
        char **ip;
        size_t n_ip;
        char **uri;
        size_t n_uri;
        size_t n_other;
};

/* ---- CSRs ------------------------------------------------------------------------------ */

/* Creates a PKCS#10 CSR (PEM "CERTIFICATE REQUEST", appended to out) signed by k, with subject
 * CN (required, 1..64 bytes, no control characters) and O (optional, NULL for none), and a
 * subjectAltName extension request when san has entries (san may be NULL). -EINVAL, -E2BIG. */
int tls_csr_create(const struct tls_key *k, const char *cn, const char *org,
                   const struct tls_san *san, struct buf *out);

struct tls_csr_info {
        char *subject_cn; /* "" when absent */
        char *subject_o;  /* "" when absent */
        struct tls_names san;
        enum tls_key_type key_type;
        uint8_t *spki; /* SubjectPublicKeyInfo DER (heap), for tls_cert_issue() */
        size_t spki_len;
};

/* Parses one "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") PEM and verifies its
 * self-signature. Only the SAN extension of the extension request is read; other requested
 * extensions are ignored (the signer decides them). -EBADMSG for malformed input or a wrong
 * signature, -ENOTSUP for unsupported key types. *ret is released with tls_csr_info_done(). */
int tls_csr_parse_pem(const char *pem, size_t len, struct tls_csr_info *ret);
void tls_csr_info_done(struct tls_csr_info *i);

/* ---- certificates ---------------------------------------------------------------------- */

/* A DER certificate (heap, owned). Release with tls_cert_done(). */
struct tls_cert {
        uint8_t *der;
        size_t len;
};

void tls_cert_done(struct tls_cert *c);
/* Releases n certificates and the array itself. Accepts NULL. */
void tls_cert_array_free(struct tls_cert *certs, size_t n);

/* Decodes exactly one "CERTIFICATE" PEM block (text around it is ignored; a second block is
 * -EBADMSG). The DER must parse as a certificate. */
int tls_cert_decode_pem(const char *pem, size_t len, struct tls_cert *ret);

/* Decodes every block of a bundle (a chain); all must be "CERTIFICATE" and parse (-EBADMSG
 * otherwise), at least one, at most TLS_MAX_BUNDLE_CERTS (-E2BIG).
 * *ret_certs: tls_cert_array_free(). */
int tls_cert_decode_bundle(const char *pem, size_t len, struct tls_cert **ret_certs, size_t *ret_n);

/* Appends the certificate as PEM (64-column base64, '\n' line ends). */
int tls_cert_encode_pem(const struct tls_cert *c, struct buf *out);

enum {
        TLS_USAGE_SERVER = 1u << 0, /* extendedKeyUsage serverAuth */
        TLS_USAGE_CLIENT = 1u << 1, /* extendedKeyUsage clientAuth */
};

/* keyUsage bits as reported by tls_cert_info.key_usage. */
enum {
        TLS_KU_DIGITAL_SIGNATURE = 1u << 0,
        TLS_KU_KEY_ENCIPHERMENT = 1u << 2,
        TLS_KU_KEY_CERT_SIGN = 1u << 5,
        TLS_KU_CRL_SIGN = 1u << 6,
};

struct tls_cert_params {
        const char *common_name;  /* required, 1..64 bytes, no control characters */
        const char *organization; /* optional */
        struct tls_san san;       /* leaf SANs (ignored for CAs when empty) */
        int64_t not_before;       /* unix seconds, >= 0 */
        int64_t not_after;        /* unix seconds, > not_before, <= 9999-12-31 */
        uint32_t backdate;        /* seconds subtracted from not_before (clock skew) */
        unsigned usage;           /* leaves: TLS_USAGE_* (at least one); CAs: ignored */
        bool key_encipherment;    /* leaves: keyUsage keyEncipherment too (RSA key exchange) */
        int path_len;             /* CAs: pathLenConstraint when >= 0, none when < 0 */
};

/*
 * Self-signed CA: basicConstraints CA:TRUE critical (pathLen as asked), keyUsage keyCertSign +
 * cRLSign critical, SKI and AKI (= SKI), random positive 128-bit serial, ecdsa-with-SHA256 (or
 * SHA384 for P-384, sha256WithRSAEncryption for RSA). -EINVAL for bad params.
 */
int tls_cert_create_ca(const struct tls_key *key, const struct tls_cert_params *p,
                       struct tls_cert *ret);

/*
 * Leaf certificate for the public key `spki` (SubjectPublicKeyInfo DER, e.g. tls_csr_info.spki
 * or tls_public_key_pem_to_der()), signed by ca_key and issued by ca (its subject is copied
 * byte for byte as the issuer). Extensions: basicConstraints CA:FALSE critical, keyUsage
 * digitalSignature (+ keyEncipherment) critical, extendedKeyUsage per p->usage, SANs, SKI, and
 * AKI (= the CA's SKI, when the CA has one). -EINVAL when ca_key does not match ca, ca is not a
 * CA, or params are bad; -EBADMSG when spki or ca does not parse; -ENOTSUP for unsupported keys.
 */
int tls_cert_issue(const struct tls_key *ca_key, const struct tls_cert *ca, const uint8_t *spki,
                   size_t spki_len, const struct tls_cert_params *p, struct tls_cert *ret);

struct tls_cert_info {
        char *subject_cn; /* "" when absent (heap) */
        char *subject_o;  /* "" when absent (heap) */
        char *issuer_cn;  /* "" when absent (heap) */
        struct tls_names san;
        int64_t not_before, not_after; /* unix seconds */
        bool is_ca;
        int path_len;       /* -1 when absent */
        bool has_key_usage; /* keyUsage extension present */
        unsigned key_usage; /* TLS_KU_* bits */
        bool has_ext_key_usage;
        unsigned ext_key_usage; /* TLS_USAGE_* bits (other purposes are not reported) */
        bool self_issued;       /* issuer name == subject name */
        char serial_hex[2 * (TLS_MAX_SERIAL + 1) + 1]; /* lower-case, as encoded, no sign byte */
        uint8_t sha256[32];                            /* of the DER */
        char sha256_hex[65];
        enum tls_key_type key_type;
};

/* Inspects one DER certificate. *ret: tls_cert_info_done(). -EBADMSG when wolfSSL or our reader
 * rejects it (non-DER lengths, duplicate extensions, bad times, names with control characters);
 * -E2BIG for names or SAN counts over the limits. */
int tls_cert_inspect(const struct tls_cert *c, struct tls_cert_info *ret);
void tls_cert_info_done(struct tls_cert_info *i);

/* Seconds until not_after (negative when expired). */
int64_t tls_cert_seconds_left(const struct tls_cert_info *i, int64_t now);

/* True when less than `percent` (0..100) of the lifetime is left at `now`, or when `now` is
 * outside [not_before, not_after]. */
bool tls_cert_needs_renewal(const struct tls_cert_info *i, int64_t now, unsigned percent);

/* ---- verification ---------------------------------------------------------------------- */

/*
 * Verifies chain[0] (the leaf), with chain[1..n-1] as untrusted intermediates in any order (only
 * those with CA:TRUE, and keyCertSign when they have a keyUsage, can issue; pathLen enforced),
 * against the trust anchors, at unix time `at` (signatures and CA constraints by wolfSSL's
 * CertManager; validity of every certificate used, anchors included, checked against `at`).
 * usage: 0, or TLS_USAGE_* bits the leaf must allow (extendedKeyUsage, when it has one).
 * Returns 0 trusted; -EKEYEXPIRED when a certificate is expired or not yet valid at `at` but
 * the chain is otherwise trusted; -EPERM untrusted (unknown issuer, bad signature, intermediate
 * that is not a CA, wrong usage, unknown critical extension); -EBADMSG malformed input; -E2BIG.
 */
int tls_verify_certs(const struct tls_cert *anchors, size_t n_anchors, const struct tls_cert *chain,
                     size_t n_chain, int64_t at, unsigned usage);

/* The same with PEM inputs: a CA bundle (at most TLS_MAX_CA_CERTS) and a chain (leaf first, at
 * most TLS_MAX_BUNDLE_CERTS). */
int tls_verify_pem(const char *ca_pem, size_t ca_len, const char *chain_pem, size_t chain_len,
                   int64_t at, unsigned usage);

/* Cleanup helpers. */
static inline void tls_key_freep(struct tls_key **k) {
        tls_key_free(*k);
}
#define _cleanup_tls_key_ __attribute__((cleanup(tls_key_freep)))
static inline void tls_cert_donep(struct tls_cert *c) {
        tls_cert_done(c);
}
#define _cleanup_tls_cert_ __attribute__((cleanup(tls_cert_donep)))
static inline void tls_cert_info_donep(struct tls_cert_info *i) {
        tls_cert_info_done(i);
}
#define _cleanup_tls_cert_info_ __attribute__((cleanup(tls_cert_info_donep)))
static inline void tls_csr_info_donep(struct tls_csr_info *i) {
        tls_csr_info_done(i);
}
#define _cleanup_tls_csr_info_ __attribute__((cleanup(tls_csr_info_donep)))
