# Local stack and checks for dcr-platform (no Docker): see deploy/scripts/*.sh.
#
#   make up      venv, PostgreSQL, Kafka, Prometheus, the four services and the simulator
#                (SIM=0 leaves it off); prints the URLs
#   make down    stop, in reverse order, only what these scripts started
#   make test    venv, PostgreSQL, Kafka, promtool, then pytest (PYTEST_ARGS="-k foo -x")
#   make test-faults  fault-injection and hostile-input suite incl. heavy variants (~5 min)
#   make bench   benchmarks (projection catch-up, ingest, freshness, scale) -> bench/results/
#   make lint    ruff check, ruff format --check, mypy
#   make mutation  mutation testing of the pure cores (~26 min; MODULE=path.py for one file)
#                -> docs/mutation-report.md; not part of make test
#   make status  what is running
#   make logs    last lines of every log in .state/logs (LINES=100 for more)
#   make rebuild stop the projection, rebuild its read models from the topics, start it again

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SCRIPTS := deploy/scripts
PY := .venv/bin/python
PYTEST_ARGS ?=
# make up SIM=0: start the platform without the facility simulator
SIM ?= 1
LINES ?= 30

.PHONY: help venv up down test test-faults lint status logs rebuild bench mutation

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

venv:
	@$(SCRIPTS)/venv.sh

up: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	@$(SCRIPTS)/prometheus.sh start
	@$(SCRIPTS)/services.sh start
	@if [[ "$(SIM)" != 0 ]]; then $(SCRIPTS)/simulator.sh start; \
		else echo "simulator off (SIM=0)"; fi
	@echo
	@echo "dcr-platform is up:"
	@echo "  intake      http://127.0.0.1:8001/docs"
	@echo "  supply      http://127.0.0.1:8002/docs"
	@echo "  incident    http://127.0.0.1:8003/docs"
	@echo "  projection  http://127.0.0.1:8004/docs"
	@echo "  prometheus  http://127.0.0.1:9090"
	@echo "  kafka       127.0.0.1:9092"
	@echo "  postgres    postgresql://dcr:dcr@127.0.0.1:5432/dcr"
	@echo "  logs        .state/logs/*.log (make logs), postgres: /var/log/postgresql/"
	@echo "  stop with   make down"

down:
	@if [[ -x $(SCRIPTS)/simulator.sh ]]; then $(SCRIPTS)/simulator.sh stop; fi
	@$(SCRIPTS)/services.sh stop
	@$(SCRIPTS)/prometheus.sh stop
	@$(SCRIPTS)/kafka.sh stop
	@$(SCRIPTS)/postgres.sh stop

test: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh install
	@$(SCRIPTS)/kafka.sh start
	@$(SCRIPTS)/prometheus.sh install
	@rc=0; $(PY) -m pytest -m "not heavy" $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: FAILED: pytest collected no tests" >&2; fi; \
	exit $$rc

test-faults: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh install
	@$(SCRIPTS)/kafka.sh start
	DCR_FUZZ_EXAMPLES=$${DCR_FUZZ_EXAMPLES:-150} $(PY) -m pytest tests/faults -rP $(PYTEST_ARGS)

bench: venv
	@$(SCRIPTS)/postgres.sh start
	@$(SCRIPTS)/kafka.sh start
	$(PY) -m bench $(BENCH_ARGS)

# one file: make mutation MODULE=services/projection/suppression.py
mutation: venv
	@tests/mutation/run.sh $(MODULE)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

status:
	@$(SCRIPTS)/postgres.sh status
	@$(SCRIPTS)/kafka.sh status
	@$(SCRIPTS)/prometheus.sh status
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
