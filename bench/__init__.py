"""Benchmarks: run with `make bench` (never collected by pytest, which only looks in tests/)."""
