# The vault/OpenBao policy of cloudtaser-operator (docs/install.md#vault): its own credentials
# (webhook-tls, broker-tls, broker-auth, broker-token, enrollment), KV v2 under the mount `secret`
# and the prefix cloudtaser/system (the operator's --secret-mount and --secret-prefix; change the
# paths here with them). Nothing else: no pod's secret is readable with this policy.
#   bao policy write cloudtaser-operator deploy/openbao/cloudtaser-operator.hcl
path "secret/data/cloudtaser/system/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "secret/metadata/cloudtaser/system/*" {
  capabilities = ["create", "read", "update", "delete"]
}
