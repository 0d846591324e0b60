"""Benchmarks (figures, not timed tests): ``python -m bench``."""
