"""Warehouse access: one module writes tables (idempotent partition replace)."""

from sim_pipeline.warehouse.store import (
    Transaction,
    Warehouse,
    frame_digest,
    redact_url,
    table_digests,
)

__all__ = ["Transaction", "Warehouse", "frame_digest", "redact_url", "table_digests"]
