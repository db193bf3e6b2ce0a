"""Benchmark scripts: each runs as `python benchmarks/NAME.py` or `python -m benchmarks.NAME` and prints a
table; what they share is in benchmarks/common.py."""
