"""The audit trail: per run and stage, what code ran on which data under which key and costs.

Every asset appends one row per run to the warehouse table `audit_trail` in the same
transaction as its own write (so the record and the data land together), or on its own when a
blocking check stopped the write. A row never holds the key, only its fingerprint.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from sim_pipeline.quality.tables import AuditTrail
from sim_pipeline.warehouse.model import columns

AUDIT_COLUMNS = columns(AuditTrail)
CODE_VERSION_ENV = "SIM_CODE_VERSION"


@cache
def code_version() -> str:
    """The git commit the code runs from (``+dirty`` when tracked files differ from it), else
    ``SIM_CODE_VERSION`` (set it in a deployment built without .git), else the package version."""
    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=10,
            )
            suffix = "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
            return commit.stdout.strip() + suffix
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"sim_pipeline {version('sim_pipeline')} (no git)"
    except PackageNotFoundError:
        return "unknown"


def audit_row(
    *,
    run_id: str,
    stage: str,
    months: list[str],
    key_fingerprint: str | None,
    rows_in: int | None,
    rows_out: int | None,
    rows_rejected: int | None = 0,
    unit_cost_version: str | None = None,
    status: str = "written",
    note: str | None = None,
) -> pd.DataFrame:
    """One `audit_trail` row. ``months`` are the partitions written (empty: the whole table)."""
    span = "" if not months else months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    return pd.DataFrame(
        [
            {
                "run_id": run_id,
                "stage": stage,
                "months": span or "all",
                "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "status": status,
                "code_version": code_version(),
                "key_fingerprint": key_fingerprint,
                "unit_cost_version": unit_cost_version,
                "rows_in": rows_in,
                "rows_out": rows_out,
                "rows_rejected": rows_rejected,
                "note": note,
            }
        ],
        columns=AUDIT_COLUMNS,
    ).astype({"rows_in": "Int64", "rows_out": "Int64", "rows_rejected": "Int64"})
