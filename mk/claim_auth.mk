# Authenticated claims on a node network (docs/tickets.md, "Authenticated claims").
#
## make claim-auth-test    keyed, unkeyed and legacy nodes in a network namespace of their own: NAT, `authenticated`, bad tags, rotation, a refused key file, a mixed network (make test)

.PHONY: claim-auth-test

claim-auth-test: $(call bin,raida_node)
	python3 $(NODE_DIR)/test_claim_auth.py --node $(call bin,raida_node)

TEST_TARGETS += claim-auth-test
