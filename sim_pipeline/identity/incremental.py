"""Incremental linkage: new records against the people already linked, with the saved model.

A full relink (`identity.linkage.link_encoded`) trains the model and scores every candidate
pair of every record ever seen. When a month's drops arrive, only the new records need a
person: `link_new_records` keeps the existing person index as known structure and scores

- the new profiles against the profiles already linked (Splink's ``predict_between``), and
- the new profiles among themselves (``predict_within``),

with the model the last full relink trained and saved (`linkage_model`), term frequencies
taken over every profile as a full run takes them. The pairs go through the same clustering
as a full run (`identity.clustering.cluster_rows`) with each known person as one component, so a
new record joins a person, founds one, or bridges two (a merge that `assign_person_keys`
records). Splits only come from a full relink: an incremental run never breaks a known person.
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

from sim_pipeline.identity.clustering import cluster_rows
from sim_pipeline.identity.linkage import (
    LinkageOptions,
    LinkResult,
    check_encodings,
    empty_pairs,
    profiles,
    score_columns,
)

RECORD_KEY = ["source", "table_name", "record_ref"]


def known_rows(rows: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each row's previous person key and match probability (NA for a record the index lacks).
    ``rows``: linkage rows (record key first); ``previous``: the person index."""
    prev = previous[[*RECORD_KEY, "person_key", "match_probability"]].astype(
        {c: "string" for c in [*RECORD_KEY, "person_key"]}
    )
    keyed = rows[RECORD_KEY].astype("string").merge(prev, on=RECORD_KEY, how="left")
    keyed.index = rows.index
    return keyed


def _tf_columns(model: dict[str, Any]) -> list[str]:
    return sorted(
        {
            lvl["tf_adjustment_column"]
            for comp in model.get("comparisons", [])
            for lvl in comp.get("comparison_levels", [])
            if lvl.get("tf_adjustment_column")
        }
    )


# Splink's prediction columns `score_columns` reads (the rest, gamma and Bayes-factor columns of
# every comparison, stay in DuckDB).
_SCORED = (
    "match_weight",
    "match_probability",
    "mw_birth_date",
    "mw_nhs_number",
    "mw_given_name",
    "mw_family_name",
)
# DuckDB's memory for scoring a month (beyond it, DuckDB spills to a temporary folder): a
# national month's blocking gives about 110 million candidate pairs (`sim-pipeline bench month`).
DUCKDB_MEMORY_LIMIT = "4GB"


def _scored_pairs(con: Any, tables: list[str]) -> pd.DataFrame:
    """The pairs of Splink's prediction ``tables`` with the columns scoring needs, in one
    orientation (left < right, as a full run's dedupe gives them), sorted by left and right."""
    present = set(con.execute(f"SELECT * FROM {tables[0]} LIMIT 0").df().columns)
    wanted = "".join(f', "{c}"' for c in _SCORED if c in present)
    union = " UNION ALL ".join(
        "SELECT least(profile_id_l, profile_id_r) AS profile_id_l, "
        f"greatest(profile_id_l, profile_id_r) AS profile_id_r{wanted} FROM {t}"
        for t in tables
    )
    return con.execute(f"{union} ORDER BY profile_id_l, profile_id_r").df()


def score_new_profiles(
    table: pd.DataFrame, is_new: np.ndarray, model: dict[str, Any], options: LinkageOptions
) -> pd.DataFrame:
    """Scored pairs (`score_columns`) between new profiles and known ones, and among the new,
    with ``model`` (Splink's saved JSON). ``table``: every profile; ``is_new``: a flag per
    profile. Pairs of two known profiles are never formed."""
    if not is_new.any() or len(table) < 2:
        return empty_pairs()
    import duckdb
    from splink import DuckDBAPI, Linker

    spill = tempfile.TemporaryDirectory(prefix="sim-linkage-")
    con = duckdb.connect()
    try:
        if options.threads:
            con.execute(f"SET threads = {int(options.threads)}")
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = '{spill.name}'")
        # One copy of the profiles (the frame, scanned in place); the new and the known are
        # views of it, not copies (profile ids are the table's positions).
        con.register("profiles_frame", table)
        con.register("new_ids", pd.DataFrame({"profile_id": np.flatnonzero(is_new)}))
        for name, op in (("new_profiles", "IN"), ("known_profiles", "NOT IN")):
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM profiles_frame "
                f"WHERE profile_id {op} (SELECT profile_id FROM new_ids)"
            )
        api = DuckDBAPI(connection=con)
        every = api.register("profiles_frame", dataset_display_name="profiles")
        linker = Linker(every, model, log_level=logging.WARNING)
        for column in _tf_columns(model):  # as a full run: frequencies over every profile
            linker.table_management.compute_tf_table(column)
        new = api.register("new_profiles", dataset_display_name="new")
        predictions = [
            linker.inference.predict_within(
                new, threshold_match_probability=options.predict_floor, warning_mode="never"
            )
        ]
        if not is_new.all():
            known = api.register("known_profiles", dataset_display_name="known")
            predictions.append(
                linker.inference.predict_between(
                    new,
                    known,
                    threshold_match_probability=options.predict_floor,
                    warning_mode="never",
                )
            )
        pairs = _scored_pairs(con, [p.physical_name for p in predictions])
    finally:
        con.close()
        spill.cleanup()
    if pairs.empty:
        return empty_pairs()
    # (left, right) is unique (the new among themselves, or new with known): sorted in SQL
    return score_columns(pairs, table).reset_index(drop=True)


def link_new_records(
    rows: pd.DataFrame,
    groups: pd.DataFrame,
    previous: pd.DataFrame,
    model: dict[str, Any],
    options: LinkageOptions | None = None,
) -> tuple[LinkResult, np.ndarray]:
    """Cluster every linkage row, linking only the rows the person index lacks.

    ``rows``/``groups``: `identity.person_index.linkage_rows` over every staged record;
    ``previous``: the person index; ``model``: the saved model of the last full relink.
    Returns the clusters as `link_encoded` does (for `index_records` and
    `assign_person_keys`) and a flag per row: new this run. A known record keeps its match
    probability unless a new link to it is stronger.
    """
    options = options or LinkageOptions()
    if not model:
        raise ValueError("incremental linkage needs the saved model of a full relink")
    if model.get("sql_dialect", "duckdb") != "duckdb":  # its comparisons are that dialect's SQL
        raise ValueError(
            "incremental linkage runs on DuckDB (a month's records fit one machine); the saved "
            f"model's SQL is {model.get('sql_dialect')}'s: run the full relink on DuckDB or "
            "keep relinking in full on Spark"
        )
    check_encodings(rows)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    keyed = known_rows(rows, previous)
    is_new_row = keyed["person_key"].isna().to_numpy()
    table, profile_of_row = profiles(rows)
    has = profile_of_row >= 0
    known_profile = np.zeros(len(table), dtype=bool)
    known_profile[profile_of_row[has & ~is_new_row]] = True
    timings["profiles_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = score_new_profiles(table, ~known_profile, model, options)
    timings["predict_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Known people: a number per known row (-1 for a new row), held together by the clustering.
    person = pd.factorize(keyed["person_key"])[0]
    cluster, prob, counts = cluster_rows(
        rows, table, profile_of_row, pairs, groups, options, known=person
    )
    previous_prob = keyed["match_probability"].astype("float64").to_numpy()
    prob = np.where(is_new_row, prob, np.fmax(previous_prob, np.nan_to_num(prob, nan=-1.0)))
    prob = np.where(prob < 0, np.nan, prob)
    sizes = np.bincount(cluster) if len(cluster) else np.empty(0, dtype=np.int64)
    prob = np.where(sizes[cluster] == 1, np.nan, prob) if len(cluster) else prob
    timings["cluster_s"] = time.perf_counter() - t0
    counts = {
        **counts,
        "new_rows": int(is_new_row.sum()),
        "new_profiles": int((~known_profile).sum()),
    }
    clusters = pd.DataFrame(
        {"cluster": cluster.astype("int64"), "match_probability": prob}, index=rows.index
    )
    return LinkResult(clusters, pairs, pd.DataFrame(), timings, counts, False, model), is_new_row
