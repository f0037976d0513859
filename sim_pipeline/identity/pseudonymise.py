"""The privacy boundary: raw identifier columns in, keyed tokens and encodings out.

`pseudonymise` is the only function that reads names, NHS numbers, dates of birth and postcodes.
It returns a frame with those columns removed and replaced by the encodings linkage needs, plus
non-identifying derived fields (sex, age band at the event, postcode district).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from sim_pipeline.identity.distinct import per_distinct_frame
from sim_pipeline.identity.nhs_number import normalise_nhs_number
from sim_pipeline.identity.normalise import (
    age_at,
    age_band,
    normalise_name,
    normalise_sex,
    parse_birth_date,
    postcode_parts,
)
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.sources.base import IdentifierColumns

# Columns every identity-bearing staged table carries (null where the provider lacks the field).
IDENTITY_COLUMNS: dict[str, str] = {
    "nhs_number_token": "HMAC token of the 10-digit NHS number (valid check digit only)",
    "given_name_bf": "Keyed 1024-bit encoding of the normalised given name: field-salted Bloom "
    "filter of bigrams, length-normalised, then a keyed XOR diffusion layer (hex; compared by "
    "Hamming similarity; equal encodings = equal names)",
    "family_name_bf": "Keyed 1024-bit encoding of the normalised family name: field-salted "
    "Bloom filter of bigrams, length-normalised, then a keyed XOR diffusion layer (hex; compared "
    "by Hamming similarity; equal encodings = equal names)",
    "birth_date_token": "HMAC token of the full date of birth",
    "birth_date_swap_token": "HMAC token of the date of birth with day and month swapped (day<=12)",
    "birth_year_month_token": "HMAC token of year and month of birth",
    "birth_month_day_token": "HMAC token of month and day of birth (survives a wrong year)",
    "postcode_unit_token": "HMAC token of the full postcode",
    "postcode_sector_token": "HMAC token of the postcode sector (outward + first inward digit)",
    "postcode_district_token": "HMAC token of the postcode district (outward code)",
    "postcode_district": "Postcode district (outward code), non-identifying area",
    "person_sex": "M, F or U (normalised from the provider's sex or gender code)",
    "age_band": "Age band at the event (from date of birth, else the provider's age field)",
    "identifier_defects": "Identifier fields that broke their rule and were nulled, as "
    "column:rule, comma-separated (never the value); blank when none. The row is kept and "
    "linked on the rest",
}


BIRTH_TOKENS = tuple(c for c in IDENTITY_COLUMNS if c.startswith("birth_"))


def _empty_tokens(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NA, index=index, dtype="string")


def _birth_date_tokens(raw: pd.Series, tok: Callable[[pd.Series, str], pd.Series]) -> pd.DataFrame:
    """For distinct raw dates of birth: the parsed date and its four tokens (full date, day and
    month swapped where the day could be a month, year-month, month-day)."""
    dob = pd.to_datetime(parse_birth_date(raw))
    iso = dob.dt.strftime("%Y-%m-%d").astype("string")
    swapped = (
        dob.dt.strftime("%Y-").astype("string")
        + dob.dt.strftime("%d").astype("string")
        + "-"
        + dob.dt.strftime("%m").astype("string")
    ).where(dob.dt.day <= 12)
    return pd.DataFrame(
        {
            "birth_date": dob,
            "birth_date_token": tok(iso, "dob"),
            "birth_date_swap_token": tok(swapped, "dob"),  # same domain: a swap matches the truth
            "birth_year_month_token": tok(dob.dt.strftime("%Y-%m").astype("string"), "dob_ym"),
            "birth_month_day_token": tok(dob.dt.strftime("%m-%d").astype("string"), "dob_md"),
        }
    )


def pseudonymise(df: pd.DataFrame, ids: IdentifierColumns, tokeniser: Tokeniser) -> pd.DataFrame:
    """Replace the identifier columns named in ``ids`` by tokens; drop every raw identifier.

    Tables without identifier columns pass through unchanged. The input frame is not modified.
    """
    raw_cols = ids.raw_columns()
    if not raw_cols and ids.sex is None:
        return df.copy()
    out = df.drop(columns=[c for c in raw_cols if c in df.columns])
    idx = df.index
    tok = tokeniser.tokens

    def col(name: str | None) -> pd.Series | None:
        return df[name] if name and name in df.columns else None

    nhs = col(ids.nhs_number)
    out["nhs_number_token"] = (
        tok(normalise_nhs_number(nhs), "nhs") if nhs is not None else _empty_tokens(idx)
    )
    for part, source in (("given", ids.given_name), ("family", ids.family_name)):
        names = col(source)
        # No exact-name token: the encoding is deterministic under the key, so equal encodings
        # serve for exact matching and blocking (docs/encoding-attacks.md).
        if names is None:
            out[f"{part}_name_bf"] = _empty_tokens(idx)
        else:
            out[f"{part}_name_bf"] = tokeniser.bloom_filters(normalise_name(names), f"{part}_name")

    # dates of birth and postcodes: each distinct value parsed and tokenised once
    dob_raw = col(ids.birth_date)
    if dob_raw is not None:
        birth = per_distinct_frame(dob_raw, lambda raw: _birth_date_tokens(raw, tok))
        dob = birth.pop("birth_date")
        for name in birth.columns:
            out[name] = birth[name]
    else:
        dob = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns]")
        for name in BIRTH_TOKENS:
            out[name] = _empty_tokens(idx)

    pc = col(ids.postcode)
    if pc is not None:
        parts = postcode_parts(pc)
        out["postcode_unit_token"] = tok(parts["unit"], "pc_unit")
        out["postcode_sector_token"] = tok(parts["sector"], "pc_sector")
        out["postcode_district_token"] = tok(parts["district"], "pc_district")
        out["postcode_district"] = parts["district"].astype("string")
    else:
        for name in ("postcode_unit_token", "postcode_sector_token", "postcode_district_token"):
            out[name] = _empty_tokens(idx)
        out["postcode_district"] = _empty_tokens(idx)

    sex = col(ids.sex)
    out["person_sex"] = (
        normalise_sex(sex) if sex is not None else pd.Series("U", index=idx, dtype="string")
    )

    ages = pd.Series(pd.NA, index=idx, dtype="Int64")
    event = col(ids.event_date)
    if event is not None:
        ages = age_at(dob, pd.to_datetime(event, errors="coerce"))
    provider_age = col(ids.age)
    if provider_age is not None:
        ages = ages.fillna(pd.to_numeric(provider_age, errors="coerce").astype("Int64"))
    out["age_band"] = age_band(ages)
    out["identifier_defects"] = pd.Series(pd.NA, index=idx, dtype="string")  # set by staging
    kept = [c for c in out.columns if c not in IDENTITY_COLUMNS]
    return out[kept + list(IDENTITY_COLUMNS)]
