"""Benchmarks and fault drills (issue 7): ``python -m bench.run_bench``, ``python -m bench.drill``."""
