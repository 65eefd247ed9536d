"""Benchmark scripts: ``python -m benchmarks.<name> --help``. Figures go to benchmarks/results/."""
