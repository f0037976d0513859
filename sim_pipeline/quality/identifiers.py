"""Scan a frame for values that look like direct identifiers (run before anything is written).

Returns counts per column and rule, never the values themselves.
"""

from __future__ import annotations

import re

import pandas as pd

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.sources.base import POSTCODE_RE

# Column names that alone show a raw identifier slipped through (e.g. NHSNumber, Postcode,
# PersonBirthDate, AddressPostcode, Person_Birth_Date), but not NHSNumberStatus or our tokens.
IDENTIFIER_NAME = re.compile(
    r"(nhs_?number|given_?name|family_?name|surname|forename|birth_?date|date_?of_?birth|dob"
    r"|post_?code(_usual_address)?|address)$",
    re.IGNORECASE,
)
SAFE_SUFFIXES = ("_token", "_bf")
SAFE_COLUMNS = {"postcode_district", "record_ref", "Generated_Record_ID", "source_file"}


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def find_identifier_like(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{column: {rule: distinct values}} for identifier-shaped content; empty when clean."""
    found: dict[str, dict[str, int]] = {}
    for col in df.columns:
        if col.endswith(SAFE_SUFFIXES) or col in SAFE_COLUMNS or col.endswith("_SNOMED_CT"):
            continue
        if IDENTIFIER_NAME.search(col):
            found.setdefault(col, {})["identifier_column_name"] = int(df[col].notna().sum())
            continue
        s = df[col]
        if not _is_text(s):
            continue
        # distinct values only: codes and dates repeat, so this is far cheaper than every cell
        s = pd.Series(s.dropna().astype("string").unique(), dtype="string")
        if s.empty:
            continue
        compact = s.str.replace(r"[\s-]", "", regex=True)
        nhs = int(
            is_valid_nhs_number(compact.where(compact.str.fullmatch(r"\d{10}"))).fillna(False).sum()
        )
        if nhs:
            found.setdefault(col, {})["nhs_number_shaped"] = nhs
        pc = int(s.str.upper().str.fullmatch(POSTCODE_RE).fillna(False).sum())
        if pc:
            found.setdefault(col, {})["full_postcode_shaped"] = pc
    return found
