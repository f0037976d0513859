"""Scan a frame for values that look like direct identifiers (run before anything is written).

Returns counts per column and rule, never the values themselves.
"""

from __future__ import annotations

import pandas as pd

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.sources.base import POSTCODE_RE

# Columns whose names alone show a raw identifier slipped through.
IDENTIFIER_NAME_PARTS = (
    "nhsnumber",
    "nhs_number",
    "givenname",
    "familyname",
    "birthdate",
    "birth_date",
    "postcode",
    "address",
)
SAFE_SUFFIXES = ("_token", "_bf")
SAFE_COLUMNS = {"postcode_district", "record_ref", "Generated_Record_ID", "source_file"}


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def find_identifier_like(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{column: {rule: count}} for identifier-shaped content; empty when clean."""
    found: dict[str, dict[str, int]] = {}
    for col in df.columns:
        if col.endswith(SAFE_SUFFIXES) or col in SAFE_COLUMNS or col.endswith("_SNOMED_CT"):
            continue
        lowered = col.lower()
        if any(part in lowered for part in IDENTIFIER_NAME_PARTS):
            found.setdefault(col, {})["identifier_column_name"] = int(df[col].notna().sum())
            continue
        s = df[col]
        if not _is_text(s):
            continue
        s = s.dropna().astype("string")
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
