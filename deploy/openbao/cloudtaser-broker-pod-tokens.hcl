# The vault/OpenBao policy of cloudtaser-broker --pod-tokens (docs/protocol-broker.md "Per-pod
# tokens"): for each session the broker writes the policy cloudtaser-broker-pod-<expiry>-<id>
# (read on exactly the session's paths), creates a child token with it through the token role
# cloudtaser-broker-pod (orphan, only cloudtaser-broker-pod-* policies, never beyond 1 h:
# deploy/openbao/cloudtaser-broker-pod-token-role.json) and reads the session's secrets with it.
# It revokes the token with the token itself (revoke-self, in the token's default policy), so no
# revoke-accessor here, and deletes expired sessions' policies. Add it to the broker's role and,
# with it, remove the tenants' read from cloudtaser-broker.hcl (the broker reads nothing with its
# own token then):
#   bao write auth/token/roles/cloudtaser-broker-pod @deploy/openbao/cloudtaser-broker-pod-token-role.json
#   bao policy write cloudtaser-broker-pod-tokens deploy/openbao/cloudtaser-broker-pod-tokens.hcl
#   bao write auth/kubernetes/role/cloudtaser-broker token_policies=cloudtaser-broker,cloudtaser-broker-pod-tokens
# Note: whoever holds this policy can write a cloudtaser-broker-pod-* policy granting anything and
# get a token with it: like the tenants' read it replaces, it is as powerful as the paths such a
# policy could name (docs/architecture.md). What it adds is that the broker's own reads are
# scoped per session: a mistake in the broker's checks cannot read another pod's path.
path "sys/policies/acl/cloudtaser-broker-pod-*" {
  capabilities = ["create", "update", "delete"]
}

# The sweep of expired sessions' policies (their expiry is in the name).
path "sys/policies/acl" {
  capabilities = ["list"]
}

path "auth/token/create/cloudtaser-broker-pod" {
  capabilities = ["update"]
}
