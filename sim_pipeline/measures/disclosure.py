"""Disclosure control (reference: NHS Digital HES/ECDS rule since September 2018): counts of 1-7
are shown as ``*``, every other count is rounded to the nearest 5, and a statistic based on 1-7
people is shown as ``*``. Used for every aggregate shown outside the warehouse (asset metadata
previews now, published tables later)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

SMALL_MAX = 7
ROUND_TO = 5
SUPPRESSED = "*"


def control_count(value: float | int | None) -> str:
    """One count under the rule: '' for missing, '0', '*' for 1-7, else rounded to 5."""
    if value is None or pd.isna(value):
        return ""
    v = int(round(float(value)))
    if v < 0:
        raise ValueError("a count cannot be negative")
    if v == 0:
        return "0"
    if v <= SMALL_MAX:
        return SUPPRESSED
    return str(int(ROUND_TO * round(v / ROUND_TO)))


def control_counts(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with ``columns`` (counts) replaced by their disclosure-controlled text."""
    out = df.copy()
    for c in columns:
        out[c] = [control_count(v) for v in out[c]]
    return out
