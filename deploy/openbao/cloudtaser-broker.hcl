# The vault/OpenBao policy of cloudtaser-broker (docs/protocol-broker.md): read-only on its three
# records, and read on the tenants' secrets it serves (by default the broker reads them with its
# own identity). Keep the second path in step with --tenant-prefix (default
# secret/data/{namespace}/: every namespace's KV v2 subtree). With --pod-tokens the broker reads
# each session's secrets with a child token scoped to that session's paths
# (cloudtaser-broker-pod-tokens.hcl and the token role cloudtaser-broker-pod-token-role.json):
# the tenants' path below can then be removed.
#   bao policy write cloudtaser-broker deploy/openbao/cloudtaser-broker.hcl
#   bao write auth/kubernetes/role/cloudtaser-broker @deploy/openbao/cloudtaser-broker-role.json
path "secret/data/cloudtaser/system/broker-tls" {
  capabilities = ["read"]
}

path "secret/data/cloudtaser/system/broker-auth" {
  capabilities = ["read"]
}

path "secret/data/cloudtaser/system/broker-token" {
  capabilities = ["read"]
}

# Nothing else of the operator's records: webhook-tls holds the installation's CA key, and the
# tenants' rule below ("+/*") would match it. A path with its first wildcard later wins over
# one with it earlier, and the exact paths above win over both.
path "secret/data/cloudtaser/system/*" {
  capabilities = ["deny"]
}

# Tenants' secrets. The records above are under secret/data/cloudtaser/, which is no tenant's
# prefix unless a namespace is named "cloudtaser": do not create one.
path "secret/data/+/*" {
  capabilities = ["read"]
}

path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
