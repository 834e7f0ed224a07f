#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mkcerts.sh DIR: a throw-away test PKI for the stand-in servers (openssl CLI, ECDSA P-256).
#   DIR/ca.pem, DIR/ca-key.pem             test CA (10 days)
#   DIR/server.pem, DIR/server-key.pem     server cert, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   DIR/client.pem, DIR/client-key.pem     client cert (CN=cloudtaser-test-client, clientAuth)
# Keys are mode 0600. Never use these anywhere but in tests.
set -euo pipefail
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
ssl() { openssl "$@" 2>/dev/null; }
key() { ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key ca-key.pem
ssl req -x509 -new -key ca-key.pem -sha256 -days 10 -subj "/CN=cloudtaser test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

sign() { # name subject extfile-lines
    local name=$1 subj=$2 ext=$3
    key "$name-key.pem"
    ssl req -new -key "$name-key.pem" -subj "$subj" -out "$name.csr"
    printf '%s\n' "$ext" > "$name.ext"
    ssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 -days 10 \
        -extfile "$name.ext" -out "$name.pem"
    rm -f "$name.csr" "$name.ext"
}
sign server "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
sign client "/CN=cloudtaser-test-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 0644 ca.pem server.pem client.pem
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
