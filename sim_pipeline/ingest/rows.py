"""What a staged row is: validated provider rows coarsened (`coarsened`), pseudonymised and
their record keys tokenised (`staged_rows`), and the record keys as sent (`raw_record_keys`,
for the check that they are not identifiers). Ingest stages raw drops with it
(`ingest.staging`) and `sim-pipeline tokenise` makes tokenised drops with it at the provider
(`ingest.tokenised`): one definition, so both give the same rows."""

from __future__ import annotations

import pandas as pd

from sim_pipeline.identity import Tokeniser, pseudonymise
from sim_pipeline.identity.record_keys import tokenise_record_keys
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.sources.validation import DEFECTS_COLUMN, typed


def coarsened(frame: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """No date finer than a metric needs. Dates of death to their month (the 1st): an exact
    death date is an identifier in all but name. Times of day dropped (the day kept, as
    midnight): every metric counts events by day, and a call's or a detention's minute, with
    its place, picks out one person in a public incident log."""
    out = frame.copy()
    for c in [c for c in frame.columns if c.endswith("DeathDate")]:
        out[c] = pd.to_datetime(out[c]).dt.to_period("M").dt.to_timestamp()
    for c in table.datetime_columns:
        out[c] = pd.to_datetime(out[c]).dt.normalize()
    return out


def raw_record_keys(good: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """The provider's record keys as sent (``record_ref`` and the key columns), for the check
    that they are not identifiers (`find_identifier_like`), before they become tokens."""
    keys = good[table.key_columns].astype("string").reset_index(drop=True)
    keys.insert(0, "record_ref", good[table.record_ref].astype("string").to_numpy())
    return keys


def staged_rows(
    good: pd.DataFrame, table: SourceTable, tokeniser: Tokeniser, sources: pd.Series
) -> pd.DataFrame:
    """Validated rows (contract columns, `DEFECTS_COLUMN`, ``line_number``) as a staged table
    holds them, but for where they came from (``source``, ``month``, ``source_file``,
    ``key_id``, added by the caller): ``record_ref``, the kept columns typed and coarsened, the
    identifiers as tokens and encodings (`pseudonymise`), the record keys as keyed tokens of
    the row's provider (``sources``, aligned by position), then ``line_number``. The one
    definition of a staged row: ingest uses it on raw drops, `sim-pipeline tokenise` at the
    provider (`ingest.tokenised`), so both give the same rows."""
    staged = pseudonymise(
        coarsened(typed(good[table.columns].drop(columns=list(table.not_kept)), table), table),
        table.identifiers,
        tokeniser,
    )
    if DEFECTS_COLUMN in staged.columns:
        staged[DEFECTS_COLUMN] = good[DEFECTS_COLUMN].astype("string")
    staged.insert(0, "record_ref", good[table.record_ref].astype("string"))
    staged = staged.reset_index(drop=True)
    staged["line_number"] = good["line_number"].astype("int64").to_numpy()
    # provider record keys as keyed tokens (`identity.record_keys`): joins work, searches don't
    staged.insert(0, "source", sources.astype("string").to_numpy())
    staged = tokenise_record_keys(staged, table.key_columns, tokeniser)
    return staged.drop(columns="source")
