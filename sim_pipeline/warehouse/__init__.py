"""Warehouse access: one module writes tables (idempotent partition replace)."""

from sim_pipeline.warehouse.store import Transaction, Warehouse, redact_url, table_digests

__all__ = ["Transaction", "Warehouse", "redact_url", "table_digests"]
