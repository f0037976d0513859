"""Benchmarks and measurements of the project itself (``sim-pipeline bench ...``)."""
