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


def controlled_rate(numerator: object, denominator: object, scale: float = 1.0) -> float | None:
    """A rate (times ``scale``: 100 for a percentage) computed from the disclosure-controlled
    counts, so it reveals nothing the published counts do not: counts that differ within
    their rounding band give the same rate. None when it must be suppressed (the numerator or
    the denominator is 1-7, or the rounded counts differ by 1-7) or is undefined."""
    if numerator is None or denominator is None or pd.isna(numerator) or pd.isna(denominator):
        return None
    k, n = int(round(float(numerator))), int(round(float(denominator)))
    if n <= 0 or any(1 <= v <= SMALL_MAX for v in (k, n)):
        return None
    rk, rn = (ROUND_TO * round(v / ROUND_TO) for v in (k, n))
    # the complement (unlinked, no fall) judged on the rounded counts too, so that counts in
    # the same rounding band are suppressed alike
    if not rn or 1 <= rn - rk <= SMALL_MAX:
        return None
    return scale * rk / rn
