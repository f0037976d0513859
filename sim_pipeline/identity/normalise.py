"""Normalisation of identifiers before they are tokenised (so that equal people give equal tokens)."""

from __future__ import annotations

import unicodedata

import pandas as pd

from sim_pipeline.identity.distinct import per_distinct, per_distinct_frame
from sim_pipeline.sources.base import POSTCODE_RE


def normalise_name(values: pd.Series) -> pd.Series:
    """Upper-case A-Z only: accents folded, punctuation and spaces removed ("O'Neil" -> "ONEIL")."""

    def one(v: str) -> str:
        folded = unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode("ascii")
        return "".join(ch for ch in folded.upper() if "A" <= ch <= "Z")

    out = per_distinct(
        values, lambda uniques: pd.Series([one(u) for u in uniques.tolist()], dtype="string")
    )
    return out.mask(out == "")


def parse_birth_date(values: pd.Series) -> pd.Series:
    """ISO ``YYYY-MM-DD`` or ``YYYYMMDD`` text to datetime64; anything else becomes NaT."""
    s = values.astype("string").str.strip().str.replace("-", "", regex=False)
    return pd.to_datetime(s, format="%Y%m%d", errors="coerce")


def normalise_postcode(values: pd.Series) -> pd.Series:
    """Upper-case, single space before the inward code; non-postcodes become NA.

    NHS pseudo-postcodes (ZZ99 ...: no fixed abode, not known) also become NA: thousands of
    people share them, so as linkage evidence they would join strangers.
    """
    s = values.astype("string").str.upper().str.replace(r"\s+", "", regex=True)
    s = s.str.slice(0, -3) + " " + s.str.slice(-3)
    valid = s.str.fullmatch(POSTCODE_RE).fillna(False).astype(bool) & ~s.str.startswith("ZZ99")
    return s.where(valid)


def postcode_parts(postcodes: pd.Series) -> pd.DataFrame:
    """Unit (full postcode), sector (outward + first inward digit) and district (outward code)."""
    return per_distinct_frame(postcodes, _postcode_parts_of)


def _postcode_parts_of(postcodes: pd.Series) -> pd.DataFrame:
    pc = normalise_postcode(postcodes)  # "OUTWARD INW": one space before the 3-character inward
    outward = pc.str.slice(0, -4)
    sector = outward + " " + pc.str.slice(-3, -2)
    return pd.DataFrame({"unit": pc, "sector": sector, "district": outward}, index=postcodes.index)


SEX_MAP = {"1": "M", "2": "F", "M": "M", "F": "F", "MALE": "M", "FEMALE": "F"}


def normalise_sex(values: pd.Series) -> pd.Series:
    """MHSDS / ECDS codes (1, 2) and police / ambulance letters (M, F) to M, F or U."""
    s = values.astype("string").str.strip().str.upper()
    return s.map(SEX_MAP, na_action="ignore").fillna("U").astype("string")


AGE_BANDS = [
    (0, 17, "0-17"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, 200, "65+"),
]


def age_band(ages: pd.Series) -> pd.Series:
    """Whole years to the age bands used in every published table."""
    a = pd.to_numeric(ages, errors="coerce")
    out = pd.Series(pd.NA, index=ages.index, dtype="string")
    for lo, hi, label in AGE_BANDS:
        out = out.mask((a >= lo) & (a <= hi), label)
    return out


def age_at(birth: pd.Series, at: pd.Series) -> pd.Series:
    """Completed years between two datetime Series (NA where either is missing)."""
    birth = pd.to_datetime(birth, errors="coerce")
    at = pd.to_datetime(at, errors="coerce")
    years = at.dt.year - birth.dt.year
    before_birthday = (at.dt.month < birth.dt.month) | (
        (at.dt.month == birth.dt.month) & (at.dt.day < birth.dt.day)
    )
    return (years - before_birthday.astype("Int64")).astype("Int64")
