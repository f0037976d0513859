"""The linkage benchmark's input: the synthetic landing staged with both tokenisers (keyed and
cleartext), and the checks that the two stagings hold the same records and labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

# --------------------------------------------------------------------------------------------
# Input: synthetic landing + truth, staged with both tokenisers
# --------------------------------------------------------------------------------------------


def landing_months(landing: Path) -> list[str]:
    """Every YYYY-MM folder present under any provider of the landing folder, sorted."""
    from sim_pipeline.landing.layout import Landing

    return Landing(landing).months()


def stage_all(
    landing: Path, tokeniser: Any, errors: list[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Every source table staged for every landing month: asset name -> staged rows.

    Files that cannot be read at all are skipped by staging; their messages go to ``errors``.
    """
    from sim_pipeline.ingest.staging import stage_run
    from sim_pipeline.sources import SOURCE_TABLES

    months = landing_months(landing)
    out: dict[str, pd.DataFrame] = {}
    for table in SOURCE_TABLES:
        run = stage_run(landing, table, months, tokeniser)
        if errors is not None:
            errors += [str(e) for e in run.errors]
        if len(run.staged):
            out[table.asset_name] = run.staged
    return out


def clear_refs(enc: dict[str, pd.DataFrame], clear: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(source, record_ref as staged with the key) -> clear_ref (as the generator wrote it)."""
    if set(enc) != set(clear):
        raise RuntimeError("encoded and cleartext staging gave different tables")
    parts = []
    for name in enc:
        e, c = enc[name], clear[name]
        if len(e) != len(c) or not e["source"].reset_index(drop=True).equals(
            c["source"].reset_index(drop=True)
        ):
            raise RuntimeError(f"encoded and cleartext staging of {name} gave different rows")
        parts.append(
            pd.DataFrame(
                {
                    "source": e["source"].to_numpy(),
                    "record_ref": e["record_ref"].to_numpy(),
                    "clear_ref": c["record_ref"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True).drop_duplicates(["source", "record_ref"])


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """The same multiset of rows (order aside)."""
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return False
    cols = list(a.columns)
    sa = a.astype("string").sort_values(cols).reset_index(drop=True)
    sb = b.astype("string").sort_values(cols).reset_index(drop=True)
    return bool(sa.equals(sb))


def same_labels(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Group labels (tokens in one, cleartext in the other) with the same shape, and per column
    the same number of labels and of distinct labels."""
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return False
    return all(
        a[c].notna().sum() == b[c].notna().sum() and a[c].nunique() == b[c].nunique()
        for c in a.columns
    )
