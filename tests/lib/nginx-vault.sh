# SPDX-License-Identifier: Apache-2.0
# A vault for benchmarks: nginx serving fixed Vault answers over TLS on loopback (a Kubernetes
# login, the KV mount lookup, a KV v2 secret with password and username, token lookup-self and
# renew-self), so that the time measured is the client's and not a stand-in's.
#   . tests/lib/nginx-vault.sh; nginx_vault_start DIR   -> NGINX_VAULT_ADDR, NGINX_VAULT_CA
#   nginx_vault_stop DIR
# Needs nginx, curl, openssl (through tests/standin/mkcerts.sh) and python3.
nginx_vault_start() {
    local dir=$1 top port login mount kv lookup
    top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    bash "$top/tests/standin/mkcerts.sh" "$dir/pki" > /dev/null
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    login='{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,"warnings":null,"auth":{"client_token":"hvs.benchbenchbenchbenchbench","accessor":"a","policies":["default","app"],"token_policies":["default","app"],"metadata":{"role":"app"},"lease_duration":3600,"renewable":true,"entity_id":"","token_type":"service","orphan":true,"mfa_requirement":null,"num_uses":0}}'
    mount='{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":"kv_1","config":{"default_lease_ttl":0,"force_no_cache":false,"max_lease_ttl":0},"description":"","external_entropy_access":false,"local":false,"options":{"version":"2"},"path":"secret/","seal_wrap":false,"type":"kv","uuid":"u"},"wrap_info":null,"warnings":null,"auth":null}'
    kv='{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"password":"bench-password-value","username":"app"},"metadata":{"created_time":"2026-01-01T00:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}},"wrap_info":null,"warnings":null,"auth":null}'
    lookup='{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":"a","creation_time":1,"creation_ttl":3600,"display_name":"k","entity_id":"","expire_time":null,"explicit_max_ttl":0,"id":"hvs.benchbenchbenchbenchbench","meta":null,"num_uses":0,"orphan":true,"path":"auth/kubernetes/login","policies":["default"],"renewable":true,"ttl":3600,"type":"service"},"wrap_info":null,"warnings":null,"auth":null}'
    q() { printf '%s' "$1" | sed "s/'/\\\\'/g"; }
    cat > "$dir/nginx.conf" << CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $dir/pki/server.pem;
        ssl_certificate_key $dir/pki/server-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 10000;
        default_type application/json;
        location = /v1/auth/kubernetes/login { return 200 '$(q "$login")'; }
        location /v1/sys/internal/ui/mounts/ { return 200 '$(q "$mount")'; }
        location /v1/secret/data/ { return 200 '$(q "$kv")'; }
        location = /v1/auth/token/lookup-self { return 200 '$(q "$lookup")'; }
        location = /v1/auth/token/renew-self { return 200 '$(q "$login")'; }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
    for _ in $(seq 50); do
        curl -s --cacert "$dir/pki/ca.pem" "https://127.0.0.1:$port/v1/auth/token/lookup-self" > /dev/null 2>&1 && break
        sleep 0.05
    done
    NGINX_VAULT_ADDR=https://127.0.0.1:$port NGINX_VAULT_CA=$dir/pki/ca.pem
}

nginx_vault_stop() {
    [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2> /dev/null
    return 0
}
