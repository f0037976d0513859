"""Provider record keys as keyed tokens: no trust patient id or incident number past the door.

A provider's own keys (a trust's ``LocalPatientId``, a police ``IncidentNumber`` or ``S136Ref``,
an ambulance ``IncidentId``, an ECDS ``Generated_Record_ID``, and every other ``...Id`` /
``...Ref`` column a contract calls a key) let anyone who can search that provider's system find
the row, and from it the person and their ``person_key`` in every other agency's records. At
ingest each becomes an HMAC token under the project key (`Tokeniser.tokens`, domain
``record_key``) of the provider and the value, so:

- joins work as before: equal values from one provider give equal tokens in every table
  (MHSDS tables on ``LocalPatientId``, s136 returns to CAD incidents on ``IncidentNumber``);
- ``record_ref`` stays unique (128-bit tokens) and stable under one key (a resent record keeps
  its reference; months and reruns agree);
- the same value from two providers gives two unrelated tokens, and nothing without the key
  maps a token back to a provider's record (a guess needs the key, not a search).

Truth files from the synthetic generator hold the raw keys; `truth_record_refs` maps them the
same way so a linkage evaluation can join them to staged records.
"""

from __future__ import annotations

import pandas as pd

from sim_pipeline.identity.tokens import TOKEN_HEX, ClearTokeniser, Tokeniser

RECORD_KEY_DOMAIN = "record_key"
RECORD_KEY_TOKEN = rf"^[0-9a-f]{{{TOKEN_HEX}}}$"  # what a staged record key looks like


def record_key_tokens(tokeniser: Tokeniser, sources: pd.Series, values: pd.Series) -> pd.Series:
    """The token of each (provider, key value); NA stays NA. The benchmark's cleartext anchor
    (`ClearTokeniser`) keeps the values as sent."""
    text = values.astype("string")
    if isinstance(tokeniser, ClearTokeniser):
        return text
    joined = sources.astype("string").str.cat(text, sep="\x1f")  # NA where the value is NA
    return tokeniser.tokens(joined, RECORD_KEY_DOMAIN).set_axis(values.index)


def tokenise_record_keys(
    staged: pd.DataFrame, columns: list[str], tokeniser: Tokeniser
) -> pd.DataFrame:
    """``staged`` with each of ``columns`` (and ``record_ref``) replaced by its token, by the
    row's ``source``."""
    out = staged.copy()
    for c in ["record_ref", *columns]:
        if c in out.columns:
            out[c] = record_key_tokens(tokeniser, out["source"], out[c])
    return out


def truth_record_refs(tokeniser: Tokeniser, records: pd.DataFrame) -> pd.DataFrame:
    """A truth table keyed by (source, ..., record_ref) as written by the generator, with
    ``record_ref`` tokenised as ingest does (for joining truth to staged records)."""
    out = records.copy()
    out["record_ref"] = record_key_tokens(tokeniser, out["source"], out["record_ref"])
    return out
