# Local stack and checks for dcr-platform (no Docker): see deploy/scripts/*.sh.
#
#   make up      venv, PostgreSQL, Kafka, Prometheus, Alertmanager + the development mail sink
#                (.state/mail/), the four services, the public API (:8005), the front desk and the simulator
#                (SIM=0 leaves it off); prints the URLs. KAFKA_NODES=3: a 3-node Kafka cluster
#                (brokers :9092,:9192,:9292; replication factor 3, min.insync.replicas=2)
#   make down    stop, in reverse order, only what these scripts started
#   make test    venv, PostgreSQL, Kafka, promtool, amtool check-config, Chromium, then pytest
#                (PYTEST_ARGS="-k foo -x")
#   make test-faults  fault-injection and hostile-input suite incl. heavy variants (~5 min)
#   make test-dates   the clock-sensitive tests (marker clock) as if now were each awkward date
#                (Sundays, DST days, 31 Dec, 29 Feb, a payday; 00:30 and 23:30 Copenhagen);
#                DCR_TODAY=2028-02-29T23:30 for one instant (see tests/clock.py)
#   make bench   benchmarks (projection catch-up, ingest, freshness, scale) -> bench/results/
#   make bench-kafka  single node vs secured 3-node cluster in one run (publish and HTTP ingest
#                p99 at 200/s, catch-up): the cluster on its own ports (BENCH_CLUSTER_PORTS)
#                beside the single node, stopped afterwards -> bench/results/issue16/kafka_security.json
#   make lint    ruff check, ruff format --check, mypy
#   make mutation  mutation testing of the pure cores (~1 h 45 min; MODULE=path.py for one file,
#                measured on the shared machine: suppression 71 min, domain 6-13 min,
#                alerting 8-12 min, envelope 9 min, auth 3-5 min, the others 2-5 min each)
#                -> docs/mutation-report.md; not part of make test
#   make mutation-open  re-run the mutants the last run left open against the current tests
#   make status  what is running
#   make logs    last lines of every log in .state/logs (LINES=100 for more)
#   make rebuild stop the projection, rebuild its read models from the topics, start it again
#   make report  the evidence report from the read models (REPORT_ARGS="--scope district:vesterbro
#                --period quarter --variant internal --format html"; see dcr report --help)
#   make retention  apply the retention schedule now (docs/retention.md; the projection also
#                runs it on its own every hour)
#   make erase   right to erasure for one client code, read from a prompt (never argv):
#                FACILITY=room for pseudonym_scope facility (docs/retention.md)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SCRIPTS := deploy/scripts
PY := .venv/bin/python
PYTEST_ARGS ?=
# make up SIM=0: start the platform without the facility simulator
SIM ?= 1
LINES ?= 30
REPORT_ARGS ?=
# make up KAFKA_NODES=3: the 3-node KRaft cluster (deploy/scripts/kafka.sh) instead of one node
KAFKA_NODES ?= 1
export KAFKA_NODES
ifeq ($(KAFKA_NODES),3)
export DCR_KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292
export DCR_KAFKA_REPLICATION_FACTOR ?= 3
# the cluster is secured (docs/kafka-cluster.md): TLS unless KAFKA_CLIENT_PROTOCOL=SASL_PLAINTEXT;
# each service gets its own identity from deploy/scripts/services.sh
export KAFKA_CLIENT_PROTOCOL ?= SASL_SSL
export DCR_KAFKA_SECURITY_PROTOCOL ?= $(KAFKA_CLIENT_PROTOCOL)
export DCR_KAFKA_CA_FILE ?= $(CURDIR)/.state/auth/kafka/tls/ca.pem
endif

.PHONY: help venv up down test test-faults test-dates lint status logs rebuild bench bench-kafka report retention mutation mutation-open erase

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

venv:
	@$(SCRIPTS)/venv.sh

up: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	@$(SCRIPTS)/prometheus.sh start
	@$(SCRIPTS)/alertmanager.sh start
	@$(SCRIPTS)/services.sh start
	@if [[ "$(SIM)" != 0 ]]; then $(SCRIPTS)/simulator.sh start; \
		else echo "simulator off (SIM=0)"; fi
	@echo
	@echo "dcr-platform is up:"
	@echo "  intake      http://127.0.0.1:8001/docs"
	@echo "  supply      http://127.0.0.1:8002/docs"
	@echo "  incident    http://127.0.0.1:8003/docs"
	@echo "  projection  http://127.0.0.1:8004/docs  (bearer token: .state/auth/dev-tokens.yaml)"
	@echo "  public      http://127.0.0.1:8005/docs  (released public figures, no token)"
	@echo "  front desk  http://127.0.0.1:8006  (staff logins: .state/auth/dev-staff.yaml)"
	@echo "  prometheus  http://127.0.0.1:9090"
	@echo "  alertmanager http://127.0.0.1:9093"
	@echo "  mail sink   smtp://127.0.0.1:1025, every message in .state/mail/*.eml"
	@echo "  kafka       $${DCR_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092} ($(KAFKA_NODES) node(s))"
	@echo "  postgres    postgresql://dcr:dcr@127.0.0.1:5432/dcr"
	@echo "  logs        .state/logs/*.log (make logs), postgres: /var/log/postgresql/"
	@echo "  stop with   make down"

down:
	@if [[ -x $(SCRIPTS)/simulator.sh ]]; then $(SCRIPTS)/simulator.sh stop; fi
	@$(SCRIPTS)/services.sh stop
	@$(SCRIPTS)/alertmanager.sh stop
	@$(SCRIPTS)/prometheus.sh stop
	@$(SCRIPTS)/kafka.sh stop
	@$(SCRIPTS)/postgres.sh stop

test: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh install
	@$(SCRIPTS)/kafka.sh start
	@$(SCRIPTS)/prometheus.sh install
	@$(SCRIPTS)/report.sh install
	@$(SCRIPTS)/browser.sh install
	@$(SCRIPTS)/alertmanager.sh check
	@rc=0; $(PY) -m pytest -m "not heavy" $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: FAILED: pytest collected no tests" >&2; fi; \
	exit $$rc

test-faults: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh install
	@$(SCRIPTS)/kafka.sh start
	DCR_FUZZ_EXAMPLES=$${DCR_FUZZ_EXAMPLES:-150} $(PY) -m pytest tests/faults -rP $(PYTEST_ARGS)

test-dates: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh install
	@$(SCRIPTS)/kafka.sh start
	DCR_TODAY=$${DCR_TODAY:-awkward} $(PY) -m pytest -m clock $(PYTEST_ARGS)

bench: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	$(PY) -m bench $(BENCH_ARGS)

# The bench's cluster: never 9092 (the single node keeps running beside it).
BENCH_CLUSTER_PORTS ?= 9192 9292 9392
BENCH_CLUSTER_CONTROLLER_PORTS ?= 19193 19293 19393
BENCH_CLUSTER := KAFKA_NODES=3 KAFKA_CLUSTER_PORTS="$(BENCH_CLUSTER_PORTS)" \
	KAFKA_CLUSTER_CONTROLLER_PORTS="$(BENCH_CLUSTER_CONTROLLER_PORTS)"

bench-kafka: venv
	@$(SCRIPTS)/postgres.sh start
	@KAFKA_NODES=1 $(SCRIPTS)/kafka.sh start
	@$(BENCH_CLUSTER) $(SCRIPTS)/kafka.sh start
	@rc=0; $(PY) -m bench.kafka_security --single 127.0.0.1:9092 \
		--cluster "$$(printf '127.0.0.1:%s,' $(BENCH_CLUSTER_PORTS) | sed 's/,$$//')" \
		$(BENCH_ARGS) || rc=$$?; \
	$(BENCH_CLUSTER) $(SCRIPTS)/kafka.sh stop; exit $$rc

# one file: make mutation MODULE=services/projection/suppression.py
mutation: venv
	@tests/mutation/run.sh $(MODULE)

mutation-open: venv
	@tests/mutation/run.sh --open $(MODULE)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

status:
	@$(SCRIPTS)/postgres.sh status
	@$(SCRIPTS)/kafka.sh status
	@$(SCRIPTS)/prometheus.sh status
	@$(SCRIPTS)/alertmanager.sh status
	@$(SCRIPTS)/services.sh status
	@if [[ -x $(SCRIPTS)/simulator.sh ]]; then $(SCRIPTS)/simulator.sh status; fi

logs:
	@shopt -s nullglob; for f in .state/logs/*.log; do \
		echo "===== $$f ====="; tail -n $(LINES) "$$f"; echo; done

rebuild: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	@$(SCRIPTS)/services.sh stop-one projection
	@$(PY) -m services.projection.rebuild
	@$(SCRIPTS)/services.sh start

report: venv
	@$(SCRIPTS)/postgres.sh start
	@.venv/bin/dcr report $(REPORT_ARGS)
retention: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	@$(PY) -m services.projection.retention

erase: venv
	@$(SCRIPTS)/postgres.sh start
	@set -a; eval "$$($(SCRIPTS)/services.sh env)"; set +a; \
		$(PY) -m services.projection.erase $(if $(FACILITY),--facility $(FACILITY))
