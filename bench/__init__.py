"""Benchmarks: figures measured side by side in one run, printed as a table
and written to bench/results.json."""
