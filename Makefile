# Two commands on a fresh machine, each installing what it needs:
#   make dev    the example app on the embedded in-memory store (API + worker, one process)
#   make test   every check and every test (installs redis-server and the Kubernetes test bed)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
APP ?= examples.reports:app
PYTEST_ARGS ?=

.PHONY: dev test lint typecheck imports unit bench redis-server k8s-testbed clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/asyncendpoints dev $(APP)

redis-server:
	@command -v redis-server >/dev/null || scripts/install-redis-server

k8s-testbed:
	@scripts/k8s-testbed >/dev/null

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) redis-server k8s-testbed lint typecheck imports
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP) redis-server
	$(BIN)/pytest -m "not k8s and not slow" $(PYTEST_ARGS)

# The peers pin an older redis-py (arq), so they get a virtualenv of their own.
BENCH_VENV ?= .venv-bench
bench: redis-server
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -e '.[dev,bench]'
	$(BENCH_VENV)/bin/python -m benchmarks.run
	@command -v wrk >/dev/null || scripts/install-debian-package wrk || true
	$(BENCH_VENV)/bin/python benchmarks/http_submit.py
	$(BENCH_VENV)/bin/python -m benchmarks.chaos

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
