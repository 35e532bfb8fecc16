# `make run`  : set everything up, migrate, load units, seed the demo centre, serve on :5000.
# `make test` : set everything up (Python packages, Chromium, PostgreSQL) and run the whole suite
#               on SQLite and again on a PostgreSQL server the suite starts itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# Re-install when pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
TEST_STAMP := $(VENV)/.installed-test-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test test-sqlite test-postgres bench lint install install-test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-[0-9a-f]* && touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-test-* && touch $@ $(STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

system-deps:
	scripts/ensure-system-deps test

run: install
	scripts/ensure-system-deps
	PORTFOLIO_ENV=development $(BIN)/portfolio db upgrade
	PORTFOLIO_ENV=development $(BIN)/portfolio criteria load
	PORTFOLIO_ENV=development $(BIN)/portfolio demo
	PORTFOLIO_ENV=development $(BIN)/portfolio keys init --if-missing
	PORTFOLIO_ENV=development $(BIN)/portfolio serve --host 127.0.0.1 --port $(PORT)

test: install-test system-deps
	$(BIN)/ruff check portfolio tests
	$(BIN)/pytest -q -p no:cacheprovider --db=sqlite
	$(BIN)/pytest -q -p no:cacheprovider --db=postgresql

test-sqlite: install-test system-deps
	$(BIN)/pytest -q --db=sqlite

test-postgres: install-test system-deps
	$(BIN)/pytest -q --db=postgresql

# `make bench`: seed 2,000 learners x 40 evidence items into a fresh SQLite file, time the coverage
# page and API, count their queries; results in bench-results/coverage.json. Extra options go in
# BENCH_ARGS, e.g. `make bench BENCH_ARGS="--learners 200 --explain"`.
bench: install-test
	$(BIN)/python -m bench.coverage_bench --db sqlite $(BENCH_ARGS)

.PHONY: bench-postgres
bench-postgres: install-test system-deps
	$(BIN)/python -m bench.coverage_bench --db postgresql $(BENCH_ARGS)

lint: install-test
	$(BIN)/ruff check portfolio tests
	$(BIN)/ruff format --check portfolio tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
