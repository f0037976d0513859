"""Data-quality helpers shared by asset checks (plain functions, no Dagster)."""
