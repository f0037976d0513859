"""Whole-landing accounting: every landing file must appear in the ledger with balanced rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.sources.reader import drop_sha256


def landing_inventory(landing_dir: Path, months: list[str]) -> pd.DataFrame:
    """Every expected-table CSV under the landing folder for the given months, with its hash."""
    rows = []
    for table in SOURCE_TABLES:
        for source in table.providers:
            for month in months:
                path = landing_dir / source / month / table.file_name()
                if path.exists() or path.is_symlink():
                    rows.append(
                        {
                            "file": f"{source}/{month}/{table.file_name()}",
                            "source": source,
                            "table_name": table.table,
                            "month": month,
                            "landing_sha256": drop_sha256(path, landing_dir),
                        }
                    )
    return pd.DataFrame(rows, columns=["file", "source", "table_name", "month", "landing_sha256"])


def reconcile(inventory: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per landing file: status accounted / not_ingested / changed_since_ingest."""
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
