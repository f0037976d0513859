"""Building blocks for provider contracts: every raw column is read as text and checked here.

Each provider module declares a pandera ``DataFrameModel`` whose checks carry stable names
(``date_format``, ``nhs_number_check_digit`` ...). Those names are the quarantine rule codes an
auditor sees, so they never change meaning.
"""

from __future__ import annotations

import re

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


# Verhoeff's dihedral-group tables (SNOMED CT identifiers end in a Verhoeff check digit).
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
SNOMED_RE = r"^[1-9][0-9]{5,17}$"
SNOMED_LIST_MAX = 20  # codes in one Der_EC_Diagnosis_All cell


def verhoeff_ok(code: str) -> bool:
    """True when the digit string ends in a correct Verhoeff check digit."""
    c = 0
    for i, d in enumerate(reversed(code)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(d) - 48]]
    return c == 0


def _snomed_code_ok(code: str) -> bool:
    # a SNOMED CT identifier: 6-18 ASCII digits, no leading zero, Verhoeff check digit, and a
    # partition identifier (the second and third digits from the right) of a concept, 00 or 10
    return (
        re.fullmatch(SNOMED_RE, code) is not None
        and verhoeff_ok(code)
        and code[-3:-1] in ("00", "10")
    )


def snomed_ok(s: pd.Series) -> pd.Series:
    """SNOMED CT concept identifiers (NA passes: nullability is the field's own rule). Checked
    once per distinct value: a column holds few."""
    verdict = {v: _snomed_code_ok(v) for v in s.dropna().unique()}
    return s.map(verdict).fillna(True).astype(bool)


def snomed_list_ok(s: pd.Series) -> pd.Series:
    """Comma-separated SNOMED CT concept identifiers (at most `SNOMED_LIST_MAX`), as NCDR's
    derived ``Der_EC_Diagnosis_All`` holds them; nothing else."""

    def ok(v: str) -> bool:
        codes = v.split(",")
        return 0 < len(codes) <= SNOMED_LIST_MAX and all(_snomed_code_ok(c) for c in codes)

    verdict = {v: ok(v) for v in s.dropna().unique()}
    return s.map(verdict).fillna(True).astype(bool)


# A personal name: letters of any script, single spaces, hyphens, apostrophes, full stops; no
# digit, no other sign, at most 60 characters.
NAME_RE = r"^(?=.{1,60}$)[^\W\d_]+(?:(?:[ '’.-]|\. )[^\W\d_]+)*\.?$"


def names_ok(s: pd.Series) -> pd.Series:
    verdict = {v: re.fullmatch(NAME_RE, v) is not None for v in s.dropna().unique()}
    return s.map(verdict).fillna(True).astype(bool)


def whole_number_ok(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(r"[0-9]{1,6}").fillna(False).astype(bool)


DATE_ERROR = "not a real calendar date in YYYY-MM-DD form"
DATETIME_ERROR = "not a real date-time in YYYY-MM-DD HH:MM[:SS] form"
TIME_ERROR = "not a time of day in HH:MM[:SS] form"
NHS_ERROR = "NHS number is not 10 digits with a valid modulus-11 check digit"
POSTCODE_ERROR = "postcode does not match the UK postcode pattern"
NUMBER_ERROR = "not a whole number >= 0"
NAME_ERROR = "not a personal name (letters, spaces, hyphens, apostrophes; at most 60)"
SNOMED_ERROR = "not a SNOMED CT concept identifier (6-18 digits with a valid Verhoeff check digit)"
SNOMED_LIST_ERROR = "not a comma-separated list of SNOMED CT concept identifiers"
