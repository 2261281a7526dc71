"""Measurement: metrics, baselines, the transfer benchmark, generated data and the performance
benchmarks."""
