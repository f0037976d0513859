"""Stage one provider table for a run of months: read every provider's drop, validate, pseudonymise.

Pure functions over files and DataFrames (no Dagster). All readable files of the run are
validated and pseudonymised together (one pandera call, one pass of tokenisation: per-file fixed
costs dominated otherwise), then split back into months. Each `StagedMonth` holds exactly what
the warehouse stores for that month: pseudonymised rows, quarantine rows (no identifying values)
and one ledger row per file with rows_read = rows_loaded + rows_quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim_pipeline.identity import Tokeniser, pseudonymise
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.sources.reader import (
    DropFileError,
    RawDrop,
    read_drop,
    typed,
    validate_rows,
)

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


def stage_months(
    landing_dir: Path, table: SourceTable, months: list[str], tokeniser: Tokeniser
) -> list[StagedMonth]:
    """Stage every provider's drop of ``table`` for each month (YYYY-MM), in month order."""
    drops: list[tuple[str, str, str, RawDrop]] = []  # (month, source, label, drop)
    errors: dict[str, list[DropFileError]] = {m: [] for m in months}
    missing: dict[str, list[str]] = {m: [] for m in months}
    for month in months:
        for source in table.providers:
            path = drop_path(landing_dir, source, month, table)
            label = f"{source}/{month}/{table.file_name()}"
            if not path.exists():
                missing[month].append(label)
                continue
            try:
                drops.append((month, source, label, read_drop(path, table, label)))
            except DropFileError as exc:
                errors[month].append(exc)

    frames = [
        d.frame.assign(file=label, line_number=d.frame.index.to_numpy()).reset_index(drop=True)
        for _, _, label, d in drops
        if len(d.frame)
    ]
    rows = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*table.columns, "file", "line_number"], dtype="str")
    )
    good, quarantine = validate_rows(rows, table)
    shape_q = [d.bad_shape.assign(file=label) for _, _, label, d in drops if len(d.bad_shape)]
    if shape_q:
        quarantine = pd.concat([quarantine, *shape_q], ignore_index=True)
    label_info = pd.DataFrame(
        [(label, month, source) for month, source, label, _ in drops],
        columns=["file", "month", "source"],
    )

    staged = pseudonymise(typed(good[table.columns], table), table.identifiers, tokeniser)
    staged.insert(0, "record_ref", good[table.record_ref].astype("string"))
    file_col = good["file"].astype("string")
    info = label_info.set_index("file").loc[file_col.to_numpy()]
    staged.insert(0, "month", info["month"].to_numpy())
    staged.insert(0, "source", info["source"].to_numpy())
    staged["source_file"] = file_col.to_numpy()
    staged["line_number"] = good["line_number"].astype("int64").to_numpy()
    staged["key_id"] = tokeniser.key_id
    staged = staged.reset_index(drop=True)

    quarantine = quarantine.merge(label_info, on="file", how="left")
    quarantine["table_name"] = table.table
    quarantine = quarantine[QUARANTINE_TABLE_COLUMNS]
    q_rows = quarantine.groupby("file")["line_number"].nunique()
    loaded = staged.groupby("source_file").size()

    ledger = pd.DataFrame(
        [
            {
                "source": source,
                "table_name": table.table,
                "month": month,
                "file": label,
                "file_sha256": d.sha256,
                "rows_read": d.rows_read,
                "rows_loaded": int(loaded.get(label, 0)),
                "rows_quarantined": int(q_rows.get(label, 0)),
                "key_id": tokeniser.key_id,
                "demo_key": tokeniser.demo,
            }
            for month, source, label, d in drops
        ],
        columns=LEDGER_COLUMNS,
    )
    out = []
    for month in months:
        out.append(
            StagedMonth(
                month=month,
                staged=staged[staged["month"] == month].reset_index(drop=True),
                quarantine=quarantine[quarantine["month"] == month].reset_index(drop=True),
                ledger=ledger[ledger["month"] == month].reset_index(drop=True),
                errors=errors[month],
                missing=missing[month],
            )
        )
    return out


def stage_month(
    landing_dir: Path, table: SourceTable, month: str, tokeniser: Tokeniser
) -> StagedMonth:
    """Stage every provider's drop of ``table`` for one month (YYYY-MM)."""
    return stage_months(landing_dir, table, [month], tokeniser)[0]
