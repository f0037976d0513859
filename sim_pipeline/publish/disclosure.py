"""Disclosure control (reference: NHS Digital HES/ECDS rule since September 2018): counts of 1-7
are shown as ``*``, every other count is rounded to the nearest 5, and a statistic based on 1-7
people is shown as ``*``. Used for every aggregate shown outside the warehouse (asset metadata
previews now, published tables later). It also says which released columns and statistics are
counts (`is_count_column`, `is_count_statistic`) and which columns are person-level
identifiers, never published (`is_identifier_column`, `check_identifiers`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import pandas as pd

SMALL_MAX = 7
ROUND_TO = 5
SUPPRESSED = "*"
_COUNT_COLUMN = re.compile(
    r"^(n|n_.+|.+_n|count|counts|.+_count|records|linked|persons|people|person_months|.*pairs)$",
    re.IGNORECASE,
)

_IDENTIFIER = re.compile(
    r"person_?key|register_?id|person_?id|patient_?id|nhs_?number|record_?ref|token"
    r"|pseudonym|incident_?number|date_?of_?birth|birth_?date|postcode",
    re.IGNORECASE,
)

_FIGURE_TEXT = r"[+-]?[0-9][0-9.,]*%?( to [+-]?[0-9][0-9.,]*%?)?"


def is_count_column(name: str) -> bool:
    """True for a count column by name: n, n_*, *_n, count(s), *_count, records, linked,
    persons, people, person_months, *pairs."""
    return bool(_COUNT_COLUMN.match(str(name)))


def is_count_statistic(statistic: str) -> bool:
    """True for a long-form (headline) statistic that is a count: n_* or person_months."""
    return str(statistic).startswith("n_") or statistic == "person_months"


def is_identifier_column(name: str) -> bool:
    """True for a column name that looks like a person-level identifier (person_key,
    register_id, NHS number, tokens, record references, dates of birth, postcodes)."""
    return bool(_IDENTIFIER.search(str(name)))


def check_identifiers(name: str, df: pd.DataFrame) -> None:
    bad = [c for c in df.columns if is_identifier_column(c)]
    if bad:
        raise ValueError(
            f"{name} has identifier column(s) {bad}: individual-level data is never published"
        )


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


def chart_counts(values: Sequence[object]) -> list[float]:
    """Counts as a chart may draw them: rounded to 5, NaN (no bar, no point) for 1-7 and for
    missing, so a chart gives back no more than `control_count`'s text."""
    out = []
    for v in values:
        text = control_count(v)  # type: ignore[arg-type]
        out.append(float(text) if text not in ("", SUPPRESSED) else float("nan"))
    return out


def chart_rates(numerators: Sequence[object], denominators: Sequence[object]) -> list[float]:
    """Rates as a chart may draw them: `controlled_rate` of each pair (from the rounded
    counts), NaN where it is suppressed or undefined."""
    out = []
    for k, n in zip(numerators, denominators, strict=True):
        rate = controlled_rate(k, n)
        out.append(float("nan") if rate is None else rate)
    return out


def preview_table(
    df: pd.DataFrame, counts_of: Literal["people", "records"] = "people"
) -> pd.DataFrame:
    """A table as an asset's metadata preview shows it. Every preview passes here.

    ``counts_of="people"`` (the default: cohorts, metrics, costs, estimates, linkage): every
    count column (by name, `is_count_column`, or holding whole numbers) is controlled as a
    published count is (`control_count`), and every other number on a row whose count is 1-7
    is suppressed (a statistic on 1-7 people). ``counts_of="records"``: the ingest ledger's and
    the quality checks' counts of landing rows and files, which auditors reconcile line by line
    and which describe files, not people, stay exact; the caller says so at the call.
    """
    if counts_of == "records" or df.empty:
        return df
    out = df.copy()
    whole = [
        c
        for c in out.columns
        if pd.api.types.is_integer_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c])
    ]
    counts = [c for c in out.columns if c in whole or is_count_column(c)]
    numbers = [
        c
        for c in out.columns
        if c not in counts
        and pd.api.types.is_numeric_dtype(out[c])
        and not pd.api.types.is_bool_dtype(out[c])
    ]
    small = pd.Series(False, index=out.index)
    for c in counts:
        values = pd.to_numeric(out[c], errors="coerce")
        small |= values.between(1, SMALL_MAX)
        out[c] = [
            v if pd.isna(n) else control_count(n) for v, n in zip(out[c], values, strict=True)
        ]
    for c in numbers:
        out[c] = out[c].astype(object).where(~small, SUPPRESSED)
    for c in [c for c in out.columns if c not in counts and c not in numbers]:
        text = out[c].astype("string")  # figures written as text ("+12.2%", "-5% to +3%")
        figure = text.str.fullmatch(_FIGURE_TEXT).fillna(False).astype(bool)
        out[c] = out[c].astype(object).where(~(small & figure), SUPPRESSED)
    return out
