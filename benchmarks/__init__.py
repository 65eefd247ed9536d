"""Benchmark scripts: run them on a quiet machine (see each module's docstring for the command)."""
