"""`link()`: the public face of linkage for auditors and other code.

Takes cleartext identifiers, encodes them with exactly the code ingest uses (`pseudonymise`),
links the encodings with the pipeline's engine and returns only record ids, person keys and
match probabilities. Identifiers never leave this function: not in the result, the log or an
exception (errors name columns and counts, never values).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pandas as pd

from sim_pipeline.identity.linkage import LinkageOptions, link_encoded
from sim_pipeline.identity.pseudonymise import pseudonymise
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.sources.base import IdentifierColumns

INPUT_COLUMNS = [
    "record_id",
    "source",
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "postcode",
]
LINK_IDS = IdentifierColumns(
    nhs_number="nhs_number",
    given_name="given_name",
    family_name="family_name",
    birth_date="birth_date",
    postcode="postcode",
    sex="sex",
)


def link(records: pd.DataFrame, key: bytes, **options: Any) -> pd.DataFrame:
    """Link records about people and return ``record_id, person_key, match_probability``.

    ``records`` has columns ``record_id, source, nhs_number, given_name, family_name,
    birth_date, sex, postcode``; any identifier may be null or absent. ``birth_date`` is ISO
    ``YYYY-MM-DD`` or ``YYYYMMDD`` text (anything else counts as missing); names in any script
    are folded to A-Z (names with no Latin letters count as missing); postcodes that are not UK
    postcodes count as missing. ``key`` is the pseudonymisation key (at least 32 bytes).
    ``options`` are `LinkageOptions` fields, e.g. ``threshold=0.99``.

    ``person_key`` is ``P`` + a number, numbered by first appearance in ``records``; it is local
    to this call (the pipeline's stable keys live in the `person_index` table).
    ``match_probability`` is the probability of the strongest link joining the record to its
    person: 1.0 for exact duplicates, empty for a record that links to nothing.
    With fewer than `LinkageOptions.min_profiles_to_train` distinct records the model is not
    trained and its documented default parameters are used.
    """
    if not isinstance(records, pd.DataFrame):
        raise TypeError("records must be a pandas DataFrame")
    if "record_id" not in records.columns:
        raise ValueError("records must have a record_id column")
    if records["record_id"].isna().any() or records["record_id"].duplicated().any():
        raise ValueError("record_id must be present and unique on every row")
    known = {f.name for f in fields(LinkageOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown linkage options: {', '.join(unknown)}")
    df = records.reset_index(drop=True).copy()
    for col in INPUT_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    df = df[INPUT_COLUMNS].astype({c: "string" for c in INPUT_COLUMNS[1:]})
    encoded = pseudonymise(df.drop(columns=["record_id"]), LINK_IDS, Tokeniser(key))
    result = link_encoded(encoded, None, LinkageOptions(**options))
    return pd.DataFrame(
        {
            "record_id": records["record_id"].to_numpy(),
            "person_key": ("P" + (result.clusters["cluster"] + 1).astype("string")).to_numpy(),
            "match_probability": result.clusters["match_probability"].to_numpy(dtype=float),
        }
    )
