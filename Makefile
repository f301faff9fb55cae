# Every entry point of the catalog platform. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(CURDIR)/$(VENV)/bin
PACKAGES  := $(patsubst %/pyproject.toml,%,$(wildcard service-common/pyproject.toml *-service/pyproject.toml cli/pyproject.toml))
SERVICES  := $(filter %-service,$(PACKAGES))

# The local stack's ports and paths; every one can be overridden from the environment.
export GATEWAY_PORT ?= 5000
export AUTH_PORT    ?= 8001
export INGEST_PORT  ?= 8002
export CATALOG_PORT ?= 8003
export MONGO_PORT   ?= 27017
export REDIS_PORT   ?= 6379
export DATA_DIR     ?= $(CURDIR)/.data
export MONGO_DB     ?= catalog_platform
export AUTH_PRIVATE_KEY_FILE ?= $(DATA_DIR)/keys/jwt-private.pem
export AUTH_UPSTREAM    ?= 127.0.0.1:$(AUTH_PORT)
export INGEST_UPSTREAM  ?= 127.0.0.1:$(INGEST_PORT)
export CATALOG_UPSTREAM ?= 127.0.0.1:$(CATALOG_PORT)
export JWKS_URL     ?= http://127.0.0.1:$(AUTH_PORT)/.well-known/jwks.json
export PATH         := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

# Embedded MongoDB and Redis run only when no MONGO_URL / REDIS_URL is given.
# `ready` prints one line once the gateway's /readyz says every service is ready.
DEV_PROCESSES := auth ingest worker beat catalog gateway ready
DEV_PORTS     := GATEWAY_PORT=$(GATEWAY_PORT) AUTH_PORT=$(AUTH_PORT) INGEST_PORT=$(INGEST_PORT) CATALOG_PORT=$(CATALOG_PORT)
ifeq ($(strip $(MONGO_URL)),)
DEV_PROCESSES := mongo $(DEV_PROCESSES)
DEV_PORTS     += MONGO_PORT=$(MONGO_PORT)
export MONGO_URL := mongodb://127.0.0.1:$(MONGO_PORT)
# The embedded store's files are under DATA_DIR: the stack's services read its free space there.
# Given to `make dev` alone, so that the suites' own stores (in their own folders) are not checked against it.
# scripts/run-mongo writes the store's process id to STORE_PID_FILE: while it lives, the services wait
# for the store to open, however long that takes (`make admin` too, run beside a stack still starting).
STORE_WAIT_ENV := STORE_PID_FILE=$(or $(STORE_PID_FILE),$(DATA_DIR)/mongo.pid)
DEV_ENV := STORE_DISK_PATH=$(or $(STORE_DISK_PATH),$(DATA_DIR)) $(STORE_WAIT_ENV)
endif
ifeq ($(strip $(REDIS_URL)),)
DEV_PROCESSES := redis $(DEV_PROCESSES)
DEV_PORTS     += REDIS_PORT=$(REDIS_PORT)
export REDIS_URL := redis://127.0.0.1:$(REDIS_PORT)/0
endif

# TOOL=DEBIAN_PACKAGE, installed by `make setup` when the tool is missing; the tests also need the second list.
SYSTEM_PACKAGES      := redis-server=redis-server nginx=nginx-light envsubst=gettext-base npm=npm
TEST_SYSTEM_PACKAGES := chromium=chromium docker-compose=docker-compose
# Swagger UI for the gateway's /docs and Chart.js for the dashboard, from the npm registry at setup time (never a CDN at run time).
DOCS_ASSETS     := gateway/web/node_modules/.installed

.PHONY: help setup system-packages test-system-packages dev admin test unit e2e chaos compose-check lint up down keys bench rebuild-read-model

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: system-packages $(VENV)/.installed $(DOCS_ASSETS) ## install what is missing: system packages, the .venv, the docs assets

system-packages:
	@scripts/ensure-system-packages $(SYSTEM_PACKAGES)

test-system-packages:
	@scripts/ensure-system-packages $(TEST_SYSTEM_PACKAGES)

# testkit/ (the suites' servers, fixtures and helpers) is installed here and in no image.
$(VENV)/.installed: $(addsuffix /pyproject.toml,$(PACKAGES)) testkit/pyproject.toml tests-e2e/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e 'service-common[dev]' $(addprefix -e ,$(SERVICES)) -e 'cli[test]' -e testkit -r tests-e2e/requirements.txt
	@touch $@

# --ignore-scripts: a dependency's install script would phone home; the files are all that is needed.
$(DOCS_ASSETS): gateway/web/package.json gateway/web/package-lock.json | system-packages
	npm ci --prefix gateway/web --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(AUTH_PRIVATE_KEY_FILE): | $(VENV)/.installed
	$(BIN)/signing-keygen --development $@

dev: setup $(AUTH_PRIVATE_KEY_FILE) ## run the whole stack in the foreground (gateway on http://127.0.0.1:5000)
	@scripts/check-ports $(DEV_PORTS)
	@mkdir -p $(DATA_DIR)
	@echo "Starting $(DEV_PROCESSES); gateway on http://127.0.0.1:$(GATEWAY_PORT) (Ctrl-C stops everything)"
	exec env $(DEV_ENV) CATALOG_READ_MODEL_DIR=$(or $(CATALOG_READ_MODEL_DIR),$(DATA_DIR)/read-model) \
	  $(BIN)/honcho -f Procfile start $(DEV_PROCESSES)

# USERNAME must come from the command line: many shells already export one, the login name.
# Both reach the command through the environment, so no quote in an address can break the shell line.
admin: export USERNAME := $(USERNAME)
admin: export EMAIL := $(EMAIL)
admin: | $(VENV)/.installed ## create an admin, or promote a user, in the dev store: make admin USERNAME=... EMAIL=... (asks for the password)
	@if [ "$(origin USERNAME)" != "command line" ] || [ -z "$(USERNAME)" ] || [ -z "$(EMAIL)" ]; then \
	  echo "usage: make admin USERNAME=<username> EMAIL=<e-mail>" >&2; exit 2; fi
	env $(STORE_WAIT_ENV) $(BIN)/auth-admin create-admin --username "$$USERNAME" --email "$$EMAIL" $(if $(PROMOTE_EXISTING),--promote-existing)

# The suites `make test` runs, longest first: with TEST_JOBS lanes, make starts the next one in whichever
# lane is free, so the lanes end about together. Each suite's output is printed whole once it ends.
TEST_SUITES  := ingest-service chaos tests-e2e catalog-service cli auth-service service-common compose
TEST_JOBS    ?= 2
PYTEST_FLAGS ?= -q -p no:cacheprovider
TEST_RESULTS := $(CURDIR)/.test-results
# Tests that hold a service to a latency its users are promised (a 503 within 5 s, a query budget):
# `make test` runs them after the lanes, alone, so that they time the service and not another suite.
# The chaos suite's (under tests-e2e/chaos) are run there too, by its own command.
BUDGET_SUITES := catalog-service ingest-service
SUITE_COMMAND = cd $(1) && $(BIN)/pytest $(PYTEST_FLAGS) $(if $(BUDGETS_LATER),$(if $(filter $(1),$(BUDGET_SUITES)),-m 'not latency_budget'))
SUITE_COMMAND_tests-e2e := cd tests-e2e && $(BIN)/pytest $(PYTEST_FLAGS) --ignore=chaos
SUITE_COMMAND_chaos     = cd tests-e2e && $(BIN)/pytest $(PYTEST_FLAGS) chaos $(if $(BUDGETS_LATER),-m 'not latency_budget')
SUITE_COMMAND_compose   := $(BIN)/pytest $(PYTEST_FLAGS) tests-e2e/compose_check.py
SUITE_COMMAND_latency-budgets := $(foreach suite,$(BUDGET_SUITES),(cd $(suite) && $(BIN)/pytest $(PYTEST_FLAGS) -m latency_budget) &&) \
  (cd tests-e2e && $(BIN)/pytest $(PYTEST_FLAGS) chaos -m latency_budget)

test: setup test-system-packages ## run every service's tests, the e2e and fault-injection suites and the compose check
	@rm -rf $(TEST_RESULTS) && mkdir -p $(TEST_RESULTS)
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory -k -j$(TEST_JOBS) --output-sync=target BUDGETS_LATER=1 $(addprefix suite-,$(TEST_SUITES)); \
	$(MAKE) --no-print-directory suite-latency-budgets; \
	failed=$$(for suite in $(TEST_SUITES) latency-budgets; do grep -qs '^passed' $(TEST_RESULTS)/$$suite || printf '%s ' $$suite; done); \
	echo "=== $(words $(TEST_SUITES)) suites in $$(( $$(date +%s) - started )) s, $(TEST_JOBS) at a time"; \
	if [ -n "$$failed" ]; then echo "FAILED: $$failed"; exit 1; fi; echo "All suites passed."

# One suite, its result (and time) in $(TEST_RESULTS)/<suite>; `make suite-ingest-service` runs it alone.
suite-%: | $(VENV)/.installed
	@mkdir -p $(TEST_RESULTS); started=$$(date +%s); echo "=== $*"; \
	if ( $(or $(SUITE_COMMAND_$*),$(call SUITE_COMMAND,$*)) ); then result=passed; else result=FAILED; fi; \
	echo "$$result in $$(( $$(date +%s) - started )) s" | tee $(TEST_RESULTS)/$*; \
	echo "=== $* $$result"; [ $$result = passed ]

unit: setup ## run only the services' own suites
	@$(MAKE) --no-print-directory -k -j$(TEST_JOBS) --output-sync=target $(addprefix suite-,$(PACKAGES))

e2e: setup test-system-packages ## run the end-to-end suite through the gateway (starts its own stack on free ports)
	$(SUITE_COMMAND_tests-e2e)

chaos: setup test-system-packages ## run the fault-injection suite
	$(SUITE_COMMAND_chaos)

compose-check: setup test-system-packages ## validate compose.yaml and check it matches the local stack
	$(SUITE_COMMAND_compose)

lint: setup ## ruff over every package: the checks, and the formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

rebuild-read-model: ## drop make dev's read model (stop the stack first): the catalog rebuilds it from MongoDB when it starts
	rm -f $(or $(CATALOG_READ_MODEL_DIR),$(DATA_DIR)/read-model)/catalog-*.duckdb $(or $(CATALOG_READ_MODEL_DIR),$(DATA_DIR)/read-model)/catalog-*.duckdb.wal

keys: setup ## generate the signing key compose uses (secrets/jwt-private.pem)
	$(BIN)/signing-keygen secrets/jwt-private.pem

up: keys ## docker compose up (needs a Docker engine)
	docker compose up --build -d

down: ## docker compose down
	docker compose down

bench: setup ## run the benchmarks and print their ratios
	@for script in bench/*.py; do echo "=== $$script"; $(BIN)/python $$script || exit 1; done
