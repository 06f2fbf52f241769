# Two commands for a fresh machine: `make run` (the service, embedded defaults, demo data)
# and `make test` (the test suite). Both create the virtualenv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck imports bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Intervene needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## the service on http://127.0.0.1:8000 (SQLite under ./.intervene, demo incidents)
	$(BIN)/intervene dev

test: $(STAMP)  ## the tests, on SQLite and (when reachable) PostgreSQL
	$(BIN)/pytest

check: lint typecheck imports  ## what CI checks besides the tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)  ## the package layers, [tool.importlinter] in pyproject.toml
	$(BIN)/lint-imports

bench: $(STAMP)  ## the benchmarks (see bench/README.md); incidents_api and checks_sweep need PostgreSQL
	$(BIN)/python bench/incidents_api.py
	$(BIN)/python bench/playbook_latency.py
	$(BIN)/python bench/checks_sweep.py

clean:
	rm -rf $(VENV) .intervene .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
