"""The generator's truth for the linkage benchmark: the record key, reading the truth, and
scoring one method's clusters against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

RECORD_KEY = ["source", "table_name", "record_ref"]


def read_truth(truth: Path) -> tuple[pd.DataFrame, set[str], int]:
    """(record key -> true person, the programme people, records with conflicting truth)."""
    recs = pd.read_csv(truth / "records.csv", dtype="string", keep_default_na=False)
    recs = recs.rename(columns={"table": "table_name"})[[*RECORD_KEY, "true_person_id"]]
    recs = recs.drop_duplicates()
    conflicts = int(recs.duplicated(RECORD_KEY).sum())
    recs = recs.drop_duplicates(RECORD_KEY).reset_index(drop=True)
    people = pd.read_csv(truth / "people.csv", dtype="string", keep_default_na=False)
    cohort = set(people.loc[people["group"] == "programme", "true_person_id"].tolist())
    return recs, cohort, conflicts


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def _cohort_exact(df: pd.DataFrame, people: set[str]) -> float:
    """Share of cohort people whose records form exactly one predicted cluster, alone."""
    member = df[df["true"].isin(people)]
    if member.empty:
        return 1.0
    size_p = df.groupby("pred").size()
    per = member.groupby("true").agg(n=("pred", "size"), k=("pred", "nunique"), p=("pred", "first"))
    exact = (per["k"] == 1) & (size_p.loc[per["p"]].to_numpy() == per["n"].to_numpy())
    return float(exact.mean())


def score(records: pd.DataFrame, truth: pd.DataFrame, cohort: set[str]) -> dict[str, Any]:
    """Pairwise (overall, by source pair, cohort) and exact-cluster scores of one method."""
    from sim_pipeline.identity.scoring import (
        cluster_scores,
        pairwise,
        pairwise_by_source_pair,
        pairwise_for_people,
        source_group,
    )

    df = records.merge(truth, on=RECORD_KEY, how="left")
    unmatched = int(df["true_person_id"].isna().sum())
    df = df.dropna(subset=["true_person_id"])
    df = pd.DataFrame(
        {
            "pred": df["cluster"].to_numpy(),
            "true": df["true_person_id"].to_numpy(),
            "group": source_group(df["source"]).to_numpy(),
        }
    )
    cohort_scores = pairwise_for_people(df, cohort)
    cohort_scores["people"] = int(df.loc[df["true"].isin(cohort), "true"].nunique())
    cohort_scores["exact_people_share"] = _cohort_exact(df, cohort)
    return {
        "records_scored": len(df),
        "records_without_truth": unmatched,
        "clusters": int(df["pred"].nunique()),
        "pairwise": pairwise(df),
        "cohort": cohort_scores,
        "cluster": cluster_scores(df),
        "by_source_pair": pairwise_by_source_pair(df).to_dict(orient="records"),
    }
