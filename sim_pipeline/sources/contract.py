"""Building blocks for provider contracts: every raw column is read as text and checked here.

Each provider module declares a pandera ``DataFrameModel`` whose checks carry stable names
(``date_format``, ``nhs_number_check_digit`` ...). Those names are the quarantine rule codes an
auditor sees, so they never change meaning.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.sources.base import DATE_RE, DATETIME_RE, POSTCODE_RE, TIME_RE

Text = Series[str]


class RawContract(pa.DataFrameModel):
    """Base for all raw provider contracts: text columns, extra columns tolerated."""

    class Config:
        strict = False
        coerce = False


def dates_ok(s: pd.Series) -> pd.Series:
    shaped = s.str.fullmatch(DATE_RE).fillna(False).astype(bool)
    parsed = pd.to_datetime(s.where(shaped), format="%Y-%m-%d", errors="coerce").notna()
    return shaped & parsed


def datetimes_ok(s: pd.Series) -> pd.Series:
    shaped = s.str.fullmatch(DATETIME_RE).fillna(False).astype(bool)
    head = s.where(shaped).str.replace("T", " ").str.slice(0, 16)
    parsed = pd.to_datetime(head, format="%Y-%m-%d %H:%M", errors="coerce").notna()
    return shaped & parsed


def times_ok(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(TIME_RE).fillna(False).astype(bool)


def nhs_ok(s: pd.Series) -> pd.Series:
    return is_valid_nhs_number(s).fillna(False).astype(bool)


def postcode_ok(s: pd.Series) -> pd.Series:
    return s.str.upper().str.strip().str.fullmatch(POSTCODE_RE).fillna(False).astype(bool)


def whole_number_ok(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(r"\d{1,6}").fillna(False).astype(bool)


DATE_ERROR = "not a real calendar date in YYYY-MM-DD form"
DATETIME_ERROR = "not a real date-time in YYYY-MM-DD HH:MM[:SS] form"
TIME_ERROR = "not a time of day in HH:MM[:SS] form"
NHS_ERROR = "NHS number is not 10 digits with a valid modulus-11 check digit"
POSTCODE_ERROR = "postcode does not match the UK postcode pattern"
NUMBER_ERROR = "not a whole number >= 0"
