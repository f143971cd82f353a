# The front door. `make help` lists the targets; `make test` is what CI runs (.ci/run).
# Local services are real: Apache Kafka 4.1 (KRaft, jars from Maven Central) and Redis,
# managed by worker/devservices.py (stdlib only, runs before the venv exists).

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON      ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
DEVSERVICES := python3 -m worker.devservices
PYTEST_ARGS ?=

.PHONY: help venv deps services up down status env test test-unit test-eval test-integration lint fmt run clean distclean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_ -]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

PIP := $(PY) -m pip -q --disable-pip-version-check

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pip older than 23.3 (what python3.11's venv brings) does not match extras by their
	@# normalised name (PEP 685) and warns "lxml does not provide the extra 'html_clean'"
	@# for justext's lxml[html_clean]; lxml_html_clean itself is pinned in pyproject.toml
	@$(PIP) install 'pip>=23.3'
	@echo "installing the project and its dependencies into $(VENV) (quiet; errors show) ..."
	@$(PIP) install -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv (python3.11) + install '.[dev]' (again only when pyproject.toml changes)

deps: ## Install redis-server and kcat (apt-get, when missing) and fetch the Kafka jars (once)
	$(DEVSERVICES) deps

services up: ## Start Kafka (127.0.0.1:9092) + Redis (127.0.0.1:6379) in .services/ (reuses running ones)
	$(DEVSERVICES) up

down: ## Stop the services started by `make up` (data in .services/ is kept)
	$(DEVSERVICES) down

status: ## Show whether the local services run and answer
	$(DEVSERVICES) status

env: ## Print WORKER_* variables for the running services: eval "$(make -s env)"
	@$(DEVSERVICES) env

test: venv deps ## Everything from nothing, then all tests (the fixtures start their own Kafka + Redis)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## Unit tests only: no services, fast
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-eval: venv ## The tagger's evaluation: cross-validated floors, the model file rebuilt (~5 min, no services)
	$(PY) -m pytest tests/eval $(PYTEST_ARGS)

test-integration: venv deps ## Integration tests only (real Kafka + Redis, started by the fixtures)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: venv ## ruff (lint + format check) and mypy on worker/
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy worker/

fmt: venv ## Apply ruff's formatter and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

run: venv up ## Local demo: services up, then the worker (`python -m worker run-local`)
	set -a && eval "$$($(DEVSERVICES) env)" && set +a && exec $(PY) -m worker run-local

clean: ## Stop local services, delete their state (.services/) and caches; keeps .venv and .kafka
	-$(DEVSERVICES) down
	rm -rf .services .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## clean + delete .venv and the Kafka jars (.kafka/)
	rm -rf $(VENV) .kafka *.egg-info
