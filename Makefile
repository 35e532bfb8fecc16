# `make run`  : set everything up, migrate, load units, seed the demo centre, serve on :5000.
# `make test` : set everything up (Python packages, Chromium, PostgreSQL) and run the whole suite
#               on SQLite and, at the same time, on a PostgreSQL server the suite starts itself.
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
	PORTFOLIO_ENV=development PORTFOLIO_PUBLIC_URL=$${PORTFOLIO_PUBLIC_URL:-http://127.0.0.1:$(PORT)} \
		$(BIN)/portfolio serve --host 127.0.0.1 --port $(PORT)

# `make cluster`: the several-machines topology as local processes on loopback ports: PostgreSQL,
# Redis and SeaweedFS (S3) shared by two gunicorn instances and one worker, nginx in front, with
# the demo data (tests/cluster.py; CLUSTER_ARGS="--instances 3" for more). Ctrl-C stops it all.
.PHONY: cluster
cluster: install-test
	scripts/ensure-system-deps cluster
	$(BIN)/python -m tests.cluster $(CLUSTER_ARGS)

test: install-test system-deps
	$(BIN)/ruff check portfolio tests
	$(BIN)/mypy
	scripts/test-both-databases $(BIN)/pytest

test-sqlite: install-test system-deps
	$(BIN)/pytest -q --db=sqlite

test-postgres: install-test system-deps
	$(BIN)/pytest -q --db=postgresql

# `make bench`: (1) seed 2,000 learners x 40 evidence items into a fresh SQLite file, time the
# coverage page and API, count their queries (bench-results/coverage.json; extra options in
# BENCH_ARGS, e.g. BENCH_ARGS="--learners 200 --explain"); (2) export a 200-item portfolio with
# photos as a signed PDF, side by side with a naive single-pass render: time and peak memory of
# the full export, of a re-export after one change, PDF size and `portfolio verify` time
# (bench-results/export.json; options in EXPORT_BENCH_ARGS, e.g. "--items 50").
bench: install-test system-deps
	$(BIN)/python -m bench.coverage_bench --db sqlite $(BENCH_ARGS)
	$(BIN)/python -m bench.export_bench $(EXPORT_BENCH_ARGS)

# `make bench-cluster`: the cluster of `make cluster` on PostgreSQL, seeded with a centre; wrk
# loads the coverage page, the caseload and the API through nginx with two instances and then
# one, in alternating rounds, beside a bare one-query Flask page behind the same nginx; prints
# req/s, p95 and the ratios (bench-results/cluster.json; options in CLUSTER_BENCH_ARGS).
.PHONY: bench-cluster
bench-cluster: install-test
	scripts/ensure-system-deps bench
	$(BIN)/python -m bench.cluster_bench $(CLUSTER_BENCH_ARGS)

.PHONY: bench-export
bench-export: install-test system-deps
	$(BIN)/python -m bench.export_bench $(EXPORT_BENCH_ARGS)

# `make bench-pages`: seed 2,000 learners (BENCH_PAGES_ARGS="--learners 10000" for more) into a
# private PostgreSQL server, serve the app with gunicorn (2 sync workers), and load every main
# page of every role and the API with wrk at 16 connections, side by side with a bare Flask page
# and a bare one-query page; prints req/s, p50/p95/p99 and each page's ratio to the one-query
# page (bench-results/pages.json).
.PHONY: bench-pages
bench-pages: install-test
	scripts/ensure-system-deps bench
	$(BIN)/python -m bench.pages_bench $(BENCH_PAGES_ARGS)

# `make bench-upload`: 160 camera-sized photos posted from 16 clients at once to gunicorn
# (2 workers x 8 threads) on SQLite and files on disk; prints uploads/s, an upload's p50/p95,
# failures, missing print copies and each worker's peak memory (bench-results/upload.json).
.PHONY: bench-upload
bench-upload: install-test system-deps
	$(BIN)/python -m bench.upload_bench $(BENCH_UPLOAD_ARGS)

.PHONY: bench-postgres
bench-postgres: install-test system-deps
	$(BIN)/python -m bench.coverage_bench --db postgresql $(BENCH_ARGS)

lint: install-test
	$(BIN)/ruff check portfolio tests
	$(BIN)/ruff format --check portfolio tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
