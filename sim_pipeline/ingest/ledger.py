"""Whole-landing accounting: every landing file must appear in the ledger with balanced rows."""

from __future__ import annotations

import pandas as pd


def reconcile(inventory: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per landing file (`Landing.inventory`): status accounted / not_ingested /
    changed_since_ingest."""
    led = (
        ledger[["file", "file_sha256", "rows_read", "rows_loaded", "rows_quarantined"]]
        if len(ledger)
        else pd.DataFrame(
            columns=["file", "file_sha256", "rows_read", "rows_loaded", "rows_quarantined"]
        )
    )
    merged = inventory.merge(led, on="file", how="left")
    status = pd.Series("accounted", index=merged.index)
    status[merged["file_sha256"].isna()] = "not_ingested"
    status[merged["file_sha256"].notna() & (merged["file_sha256"] != merged["landing_sha256"])] = (
        "changed_since_ingest"
    )
    merged["status"] = status
    return merged


def summarise(ledger: pd.DataFrame, quarantine: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows per source and table, quarantined rows per table and rule)."""
    cols = ["rows_read", "rows_loaded", "rows_quarantined"]
    by_source = (
        ledger.groupby(["source", "table_name"])[cols].sum().reset_index()
        if len(ledger)
        else pd.DataFrame(columns=["source", "table_name", *cols])
    )
    by_rule = (
        quarantine.groupby(["table_name", "rule"]).size().rename("rows").reset_index()
        if len(quarantine)
        else pd.DataFrame(columns=["table_name", "rule", "rows"])
    )
    return by_source, by_rule
