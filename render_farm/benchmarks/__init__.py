"""Benchmarks behind `foley bench model` and `foley bench episode` (bench/gpu_bench.py runs both)."""
