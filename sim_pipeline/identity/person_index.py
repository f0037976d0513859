"""The person index: one stable `person_key` per staged record, and an auditable key history.

Pure functions over DataFrames (the Dagster asset in `defs/linkage.py` only wires them):

- `linkage_rows` gathers every staged row's encodings and its deterministic group labels;
- `index_records` collapses linked rows to one row per record (source, table_name, record_ref);
- `assign_person_keys` gives each cluster a key, keeping the keys of people already known, and
  lists the merges and splits against the previous index.

A record is identified by (source, table_name, record_ref): MHSDS tables resend the same record
every month, and one record is one row of the index however often it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sim_pipeline.identity.linkage import ENCODING_COLUMNS, LinkResult
from sim_pipeline.identity.tables import PersonIndex, PersonKeyChanges
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.warehouse.model import columns

RECORD_KEY = ["source", "table_name", "record_ref"]
INDEX_COLUMNS = columns(PersonIndex)
CHANGE_COLUMNS = columns(PersonKeyChanges)
# Descriptive columns kept beside the encodings for the linkage-quality report.
DESCRIPTIVE_COLUMNS = ["month", "age_band", "person_sex", "postcode_district", "borough"]
KEY_PREFIX = "P"
KEY_DIGITS = 8


def linkage_rows(staged: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to link (record key, encodings, descriptive fields) and their group labels.

    ``staged`` maps staged asset names to their tables (any subset of the sources). Tables
    without identifier columns contribute rows with null encodings: they join their person only
    through group labels (e.g. a ward stay through its hospital spell's LocalPatientId).
    """
    frames, group_frames = [], []
    for table in SOURCE_TABLES:
        df = staged.get(table.asset_name)
        if df is None or df.empty:
            continue
        out = pd.DataFrame(
            {
                "source": df["source"].astype("string"),
                "table_name": table.table,
                "record_ref": df["record_ref"].astype("string"),
            }
        )
        for col in [*ENCODING_COLUMNS, *DESCRIPTIVE_COLUMNS]:
            src = "Borough" if col == "borough" else col
            # typed even when absent, so the concatenation stays Arrow-backed text (about 40
            # bytes a token, not a Python object each: 3.4 million rows in a national month)
            out[col] = (
                df[src].astype("string")
                if src in df.columns
                else pd.Series(pd.NA, index=out.index, dtype="string")
            )
        groups = pd.DataFrame(index=df.index)
        groups["record"] = out["source"] + "|" + table.table + "|" + out["record_ref"]
        for column, namespace in table.person_links:
            groups[namespace] = (out["source"] + "|" + df[column].astype("string")).astype("string")
        frames.append(out)
        group_frames.append(groups)
    if not frames:
        empty = pd.DataFrame(columns=[*RECORD_KEY, *ENCODING_COLUMNS, *DESCRIPTIVE_COLUMNS])
        return empty, pd.DataFrame(columns=["record"])
    rows = pd.concat(frames, ignore_index=True)
    groups = pd.concat(group_frames, ignore_index=True)
    # A canonical row order: the warehouse returns rows in any order (PostgreSQL does), and
    # profile numbering, sampling and so the trained model must not depend on it.
    order = canonical_order(rows)
    return rows.take(order).reset_index(drop=True), groups.take(order).reset_index(drop=True)


def canonical_order(frame: pd.DataFrame) -> np.ndarray:
    """Row positions of ``frame`` sorted by every column in turn, missing values last, ties in
    their order: ``frame.sort_values(list(frame.columns), kind="stable", na_position="last")``.
    Text columns held by Arrow (linkage rows: tokens, Bloom filters, codes) are sorted by
    Arrow's stable sort, which orders text by code point as Python does (a sixth of the time
    on the demo's 372,523 rows: 1.2 s -> 0.2 s); any other frame by pandas."""
    arrow_text = [isinstance(t, pd.StringDtype) and t.storage == "pyarrow" for t in frame.dtypes]
    if not len(frame.columns) or not all(arrow_text):
        by = list(frame.columns)
        ordered = frame.reset_index(drop=True).sort_values(by, kind="stable", na_position="last")
        return ordered.index.to_numpy()
    names = [f"c{i}" for i in range(len(frame.columns))]
    table = pa.table(
        {n: frame[c].array.__arrow_array__() for n, c in zip(names, frame.columns, strict=True)}
    )
    keys = [(n, "ascending", "at_end") for n in names]
    return pc.sort_indices(table, options=pc.SortOptions(sort_keys=keys)).to_numpy()


def with_person_keys(
    records: pd.DataFrame,
    index: pd.DataFrame,
    *,
    table_name: str | None = None,
    how: str = "left",
) -> pd.DataFrame:
    """``records`` with each record's ``person_key`` from the person index: the one join from a
    record (source, table_name, record_ref) to its person. With ``table_name`` every record is
    of that table and ``records`` need no table_name column. Keys are compared as text; ``how``
    as in `DataFrame.merge` (left: a record the index lacks gets NA)."""
    on = ["source", "record_ref"] if table_name is not None else list(RECORD_KEY)
    keys = index[[*RECORD_KEY, "person_key"]].astype("string")
    if table_name is not None:
        keys = keys.loc[keys["table_name"] == table_name, ["source", "record_ref", "person_key"]]
    return records.astype({c: "string" for c in on}).merge(keys, on=on, how=how)


def recorded_deaths(deaths: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    """Every recorded date of death with its person: person_key, death_date (a timestamp) and
    death_month (YYYY-MM). ``deaths``: records (source, table_name, record_ref) with
    ``death_date`` (MHSDS MPI's PersDeathDate). The one derivation of a person's death month:
    linkage quality (activity after death, two dates of death) and the evaluation (no cost or
    comparison after death) both read it."""
    d = with_person_keys(deaths.dropna(subset=["death_date"]), index, how="inner")
    when = pd.to_datetime(d["death_date"])
    return pd.DataFrame(
        {
            "person_key": d["person_key"].to_numpy(),
            "death_date": when.to_numpy(),
            "death_month": when.dt.strftime("%Y-%m").to_numpy(),
        }
    )


def index_records(rows: pd.DataFrame, result: LinkResult) -> pd.DataFrame:
    """One row per record: its cluster and best match probability (rows of a record agree)."""
    df = rows[RECORD_KEY].copy()
    df["cluster"] = result.clusters["cluster"].to_numpy()
    df["match_probability"] = result.clusters["match_probability"].to_numpy()
    out = df.groupby(RECORD_KEY, sort=True, as_index=False).agg(
        cluster=("cluster", "first"), match_probability=("match_probability", "max")
    )
    return out


def format_key(n: int) -> str:
    return f"{KEY_PREFIX}{n:0{KEY_DIGITS}d}"


def _key_number(keys: pd.Series) -> pd.Series:
    return pd.to_numeric(keys.str.removeprefix(KEY_PREFIX), errors="coerce")


def assign_person_keys(
    records: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    recorded_at: str | None = None,
    history: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each cluster a person key, reusing the previous index's keys where people persist.

    A cluster keeps the previous key held by most of its records, provided it also holds most of
    that key's records (greedy on counts, ties broken by key then cluster: deterministic). Other
    clusters get new keys numbered after the highest key ever issued, in record order. Returns
    the index (INDEX_COLUMNS) and the changes: records moving from one key to another, labelled
    ``split`` when the old key lives on elsewhere and ``merge`` when it no longer exists.
    ``history`` (earlier changes) makes sure a retired key is never issued again.
    """
    recs = records.sort_values(RECORD_KEY).reset_index(drop=True)
    if previous is not None and not previous.empty:
        prev = previous[[*RECORD_KEY, "person_key"]].rename(columns={"person_key": "old_key"})
        recs = recs.merge(prev, on=RECORD_KEY, how="left")
    else:
        recs["old_key"] = pd.Series(pd.NA, index=recs.index, dtype="string")
    issued = [pd.Series([format_key(0)], dtype="string")]
    if previous is not None:
        issued.append(previous["person_key"].astype("string"))
    if history is not None:
        issued += [history[c].astype("string") for c in ("from_person_key", "to_person_key")]
    highest = int(_key_number(pd.concat(issued, ignore_index=True)).max())

    known = recs.dropna(subset=["old_key"])
    counts = (
        known.groupby(["cluster", "old_key"]).size().rename("n").reset_index()
        if len(known)
        else pd.DataFrame(columns=["cluster", "old_key", "n"])
    )
    counts = counts.sort_values(["n", "old_key", "cluster"], ascending=[False, True, True])
    key_of: dict[int, str] = {}
    used: set[str] = set()
    for cluster, old_key in zip(
        counts["cluster"].tolist(), counts["old_key"].tolist(), strict=False
    ):
        if cluster in key_of or old_key in used:
            continue
        key_of[cluster] = old_key
        used.add(old_key)
    # New clusters in order of their first record (recs is sorted by record key).
    first_record = recs.groupby("cluster", sort=False).head(1)
    next_number = highest
    for cluster in first_record["cluster"].tolist():
        if cluster not in key_of:
            next_number += 1
            key_of[cluster] = format_key(next_number)
    recs["person_key"] = recs["cluster"].map(key_of).astype("string")

    moved = recs.dropna(subset=["old_key"])
    moved = moved[moved["old_key"] != moved["person_key"]]
    changes = moved.groupby(["old_key", "person_key"]).size().rename("records_moved").reset_index()
    changes = changes.rename(columns={"old_key": "from_person_key", "person_key": "to_person_key"})
    changes.insert(0, "change", np.where(changes["from_person_key"].isin(used), "split", "merge"))
    changes["recorded_at"] = recorded_at
    changes["run_id"] = None
    index = recs[INDEX_COLUMNS].copy()
    # Rounded: the last bits of a float sum can differ between DuckDB thread schedules.
    index["match_probability"] = index["match_probability"].astype("float64").round(6)
    return index, changes[CHANGE_COLUMNS].reset_index(drop=True)
