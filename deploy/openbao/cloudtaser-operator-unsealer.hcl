# The vault/OpenBao policy of cloudtaser-operator's unsealer, the sealed token mode
# (docs/operator.md#the-unsealer, docs/install.md#sealed-token-mode): for each sealed pod it
# writes the policy cloudtaser-pod-<installation id>-<pod uid> (read on exactly that pod's
# admitted paths), creates a response-wrapped child token through the token role cloudtaser-pod (orphan, and only
# cloudtaser-pod-* policies: deploy/openbao/cloudtaser-pod-token-role.json), and when the pod is
# gone revokes that token by accessor and deletes the policy. Give it to the operator's role only
# when sealed pods are used (add it to token_policies of cloudtaser-operator-role.json):
#   bao policy write cloudtaser-operator-unsealer deploy/openbao/cloudtaser-operator-unsealer.hcl
# Note: whoever holds this policy can write a cloudtaser-pod-* policy granting anything and get a
# token with it; it is as powerful as the vault paths it could name (docs/threat-model.md).
path "sys/policies/acl/cloudtaser-pod-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# The sweep of left-over policies when the operator becomes the leader.
path "sys/policies/acl" {
  capabilities = ["list"]
}

path "auth/token/create/cloudtaser-pod" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
