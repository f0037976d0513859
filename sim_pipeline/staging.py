"""Stage one provider table for one month: read every provider's drop, validate, pseudonymise.

Pure functions over files and DataFrames (no Dagster). The result holds exactly what the
warehouse will store for that month: pseudonymised rows, quarantine rows (no identifying values)
and one ledger row per file with rows_read = rows_loaded + rows_quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim_pipeline.identity import Tokeniser, pseudonymise
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.sources.reader import DropFileError, read_drop, typed, validate_drop

LEDGER_COLUMNS = [
    "source",
    "table_name",
    "month",
    "file",
    "file_sha256",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "key_id",
    "demo_key",
]
QUARANTINE_TABLE_COLUMNS = [
    "source",
    "table_name",
    "month",
    "file",
    "line_number",
    "column_name",
    "rule",
    "reason",
]


@dataclass
class StagedMonth:
    month: str  # YYYY-MM
    staged: pd.DataFrame
    quarantine: pd.DataFrame
    ledger: pd.DataFrame
    errors: list[DropFileError] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # expected provider drops not found

    @property
    def ok(self) -> bool:
        return not self.errors


def drop_path(landing_dir: Path, source: str, month: str, table: SourceTable) -> Path:
    return landing_dir / source / month / table.file_name()


def stage_month(
    landing_dir: Path, table: SourceTable, month: str, tokeniser: Tokeniser
) -> StagedMonth:
    """Stage every provider's drop of ``table`` for ``month`` (YYYY-MM)."""
    staged_parts: list[pd.DataFrame] = []
    quarantine_parts: list[pd.DataFrame] = []
    ledger_rows: list[dict[str, object]] = []
    errors: list[DropFileError] = []
    missing: list[str] = []
    for source in table.providers:
        path = drop_path(landing_dir, source, month, table)
        label = f"{source}/{month}/{table.file_name()}"
        if not path.exists():
            missing.append(label)
            continue
        try:
            raw = read_drop(path, table, label)
            good, quarantine = validate_drop(raw.frame, table, label)
        except DropFileError as exc:
            errors.append(exc)
            continue
        quarantine = pd.concat(
            [q for q in (raw.bad_shape, quarantine) if len(q)] or [quarantine], ignore_index=True
        )
        n_quarantined = int(quarantine["line_number"].nunique())
        if len(good):
            clean = pseudonymise(typed(good, table), table.identifiers, tokeniser)
            clean.insert(0, "record_ref", good[table.record_ref].astype("string"))
            clean.insert(0, "month", month)
            clean.insert(0, "source", source)
            clean["source_file"] = label
            clean["line_number"] = good.index.to_numpy(dtype="int64")
            clean["key_id"] = tokeniser.key_id
            staged_parts.append(clean.reset_index(drop=True))
        if len(quarantine):
            q = quarantine.copy()
            q.insert(0, "file", label)
            q.insert(0, "month", month)
            q.insert(0, "table_name", table.table)
            q.insert(0, "source", source)
            quarantine_parts.append(q[QUARANTINE_TABLE_COLUMNS])
        ledger_rows.append(
            {
                "source": source,
                "table_name": table.table,
                "month": month,
                "file": label,
                "file_sha256": raw.sha256,
                "rows_read": raw.rows_read,
                "rows_loaded": len(good),
                "rows_quarantined": n_quarantined,
                "key_id": tokeniser.key_id,
                "demo_key": tokeniser.demo,
            }
        )
    staged = pd.concat(staged_parts, ignore_index=True) if staged_parts else pd.DataFrame()
    quarantine = (
        pd.concat(quarantine_parts, ignore_index=True)
        if quarantine_parts
        else pd.DataFrame(columns=QUARANTINE_TABLE_COLUMNS)
    )
    ledger = pd.DataFrame(ledger_rows, columns=LEDGER_COLUMNS)
    return StagedMonth(month, staged, quarantine, ledger, errors, missing)
