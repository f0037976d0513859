"""The cells and row order of every released table: a number as fixed-decimal text ('' when
missing, never '-0'), a statistic suppressed when a base count is 1-7, any value as text, notes
joined, rows sorted in a fixed published order, and the check that an input has the columns a
table needs. Every released value passes here, so the same input gives byte-identical files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from sim_pipeline.publish.disclosure import SMALL_MAX, SUPPRESSED


def small(n: object) -> bool:
    """A base count of 1-7 (so anything computed from it is suppressed)."""
    if n is None or pd.isna(n):
        return False
    return 1 <= int(round(float(n))) <= SMALL_MAX


def fmt(value: object, dp: int) -> str:
    """A number to ``dp`` decimals ('' if missing, never '-0')."""
    if value is None or pd.isna(value):
        return ""
    text = f"{float(value):.{dp}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def stat(value: object, dp: int, *bases: object) -> str:
    """A statistic: '' if missing, ``*`` if any base count is 1-7, else to ``dp`` decimals."""
    text = fmt(value, dp)
    return SUPPRESSED if text and any(small(b) for b in bases) else text


NUMERIC: tuple[str, ...] = ("<numeric>",)  # sort key marker: order a column by number


def _order(values: Sequence[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}


def sort(df: pd.DataFrame, keys: Sequence[tuple[str, Sequence[str] | None]]) -> pd.DataFrame:
    """Rows in a fixed order: each key column by its known order (unknown values after, by
    text), by number when the order is `NUMERIC`, or by text when no order is given."""
    if df.empty:
        return df.reset_index(drop=True)
    tmp = df.copy()
    sort_cols = []
    for i, (col, order) in enumerate(keys):
        if order is NUMERIC:
            tmp[f"__k{i}"] = pd.to_numeric(tmp[col])
            sort_cols.append(f"__k{i}")
            continue
        known = _order(order or ())
        tmp[f"__k{i}a"] = [known.get(str(v), len(known)) for v in tmp[col]]
        tmp[f"__k{i}b"] = tmp[col].astype(str)
        sort_cols += [f"__k{i}a", f"__k{i}b"]
    tmp = tmp.sort_values(sort_cols, kind="mergesort")
    return tmp[list(df.columns)].reset_index(drop=True)


def text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def require(name: str, df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}")


def join_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
