# The metrics file with real parts (docs/metrics.md): node_exporter, promtool.
#
## make metrics-test       a fixing node's metrics file through a real node_exporter (exact series), promtool check metrics, atomic replacement under a polling reader, idle rewrites, unwritable directories; promtool test rules on the alerts (make test)

MONITORING := monitoring

.PHONY: metrics-test

metrics-test: $(call bin,raida_node)
	python3 $(NODE_DIR)/test_metrics.py --node $(call bin,raida_node)
	promtool check rules $(MONITORING)/raida_healing_alerts.yml
	promtool test rules $(MONITORING)/raida_healing_alerts_test.yml
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["panels"], "no panels"' $(MONITORING)/raida_healing_dashboard.json

TEST_TARGETS += metrics-test
