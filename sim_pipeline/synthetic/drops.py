"""Writing rendered rows as landing drops, and the records each row adds to the truth.

``write_table`` writes every provider x month file of one table under the landing layout
(``sim_pipeline.landing.layout``): a header line, then the rows in ``_sort`` order, header-only
when a month has no rows; fields are quoted only when they contain a comma, quote or newline.
It returns the number of files and the table's rows for ``records.csv`` (source, table, month,
record_ref and the internal person).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.landing.layout import Landing
from sim_pipeline.sources import SourceTable
from sim_pipeline.synthetic.timeline import MONTH_LABELS


def _csv_lines(df: pd.DataFrame, columns: list[str]) -> list[str]:
    """One CSV line per row (fields quoted only when they contain a comma, quote or newline)."""
    cols = []
    for c in columns:
        values = df[c].astype(str).tolist()
        joined = "\x00".join(values)
        if any(ch in joined for ch in ',"\n\r'):
            values = [
                '"' + v.replace('"', '""') + '"' if any(ch in v for ch in ',"\n\r') else v
                for v in values
            ]
        cols.append(values)
    return [",".join(row) for row in zip(*cols, strict=True)] if cols else []


def write_table(
    out: Path, table: SourceTable, df: pd.DataFrame, months: tuple[int, ...] | None = None
) -> tuple[int, list[pd.DataFrame]]:
    """Write every provider x month file of one table (only the files of ``months``, month
    numbers, when given: rows of other months are left out); returns (files, records parts)."""
    columns = table.columns
    if months is not None:
        df = df[df["_month"].isin(months)]
    header = ",".join(columns)
    df = df.sort_values(["_provider", "_month", "_sort"], kind="stable").reset_index(drop=True)
    lines = _csv_lines(df, columns)
    key = df["_provider"].astype(str) + "|" + df["_month"].astype(int).astype(str)
    bounds: dict[str, tuple[int, int]] = {}
    if len(df):
        kv = key.to_numpy()
        change = np.nonzero(np.r_[True, kv[1:] != kv[:-1]])[0]
        ends = np.r_[change[1:], len(kv)]
        bounds = {kv[s]: (s, e) for s, e in zip(change, ends, strict=True)}
    files = 0
    for provider in table.providers:
        for m, label in enumerate(MONTH_LABELS):
            if months is not None and m not in months:
                continue
            s, e = bounds.get(f"{provider}|{m}", (0, 0))
            path = Landing(out).drop(provider, label, table).path
            path.parent.mkdir(parents=True, exist_ok=True)
            body = "".join(line + "\n" for line in lines[s:e])
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(header + "\n" + body)
            files += 1
    unknown = set(df["_provider"]) - set(table.providers)
    if unknown:
        raise ValueError(f"{table.table}: rows for providers that do not send it: {unknown}")
    rec = pd.DataFrame(
        {
            "source": df["_provider"].to_numpy(),
            "table": table.table,
            "month": np.asarray(MONTH_LABELS, dtype=object)[df["_month"].to_numpy(dtype=int)],
            "record_ref": df[table.record_ref].to_numpy(),
            "_person": df["_person"].to_numpy(),
        }
    )
    return files, [rec]
