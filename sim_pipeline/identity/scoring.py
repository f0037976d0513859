"""Linkage accuracy against a gold standard (synthetic truth): pairwise and cluster scores.

Pair counts come from contingency tables, never from enumerating pairs, so a person with 500
records costs nothing extra. Every function takes one row per record with the predicted cluster,
the true person and the record's source group.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
import pandas as pd

SOURCE_GROUPS = {
    "slam": "mental_health",
    "oxleas": "mental_health",
    "swlstg": "mental_health",
    "met_police": "police",
    "las": "ambulance",
}


def source_group(sources: pd.Series) -> pd.Series:
    """Provider code to its kind: mental_health, police, ambulance or ae."""
    return sources.map(SOURCE_GROUPS).fillna("ae").astype("string")


def _pairs(n: np.ndarray) -> np.ndarray:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _score(tp: int, predicted: int, true: int) -> dict[str, float | int]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    return {
        "true_pairs": int(true),
        "predicted_pairs": int(predicted),
        "correct_pairs": int(tp),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
    }


def pairwise(df: pd.DataFrame, pred: str = "pred", true: str = "true") -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of ``pred`` clusters against ``true`` people."""
    tp = _pairs(df.groupby([pred, true]).size().to_numpy()).sum()
    p = _pairs(df.groupby(pred).size().to_numpy()).sum()
    t = _pairs(df.groupby(true).size().to_numpy()).sum()
    return _score(int(tp), int(p), int(t))


def pairwise_by_source_pair(
    df: pd.DataFrame, pred: str = "pred", true: str = "true", group: str = "group"
) -> pd.DataFrame:
    """The same scores for pairs whose two records come from each pair of source groups."""
    groups = sorted(df[group].dropna().unique())

    def matrix(keys: list[str]) -> pd.DataFrame:
        return (
            df.groupby([*keys, group])
            .size()
            .unstack(group, fill_value=0)
            .reindex(columns=groups, fill_value=0)
        )

    mats = {"tp": matrix([pred, true]), "p": matrix([pred]), "t": matrix([true])}
    rows = []
    for a, b in combinations_with_replacement(groups, 2):
        vals = {}
        for name, m in mats.items():
            x = m[a].to_numpy(dtype=np.int64)
            y = m[b].to_numpy(dtype=np.int64)
            vals[name] = int(_pairs(x).sum() if a == b else (x * y).sum())
        rows.append({"source_a": a, "source_b": b, **_score(vals["tp"], vals["p"], vals["t"])})
    return pd.DataFrame(rows)


def pairwise_for_people(
    df: pd.DataFrame, people: set[str], pred: str = "pred", true: str = "true"
) -> dict[str, float | int]:
    """Scores over the pairs that touch a record of the given true people (e.g. the cohort).

    Precision: of predicted pairs with at least one of their records, the share that are right.
    Recall: of the true pairs among their records, the share predicted.
    """
    member = df[true].isin(people)
    n = df.groupby(pred).size()
    n_in = member.groupby(df[pred]).sum().reindex(n.index, fill_value=0)
    predicted = int((_pairs(n.to_numpy()) - _pairs((n - n_in).to_numpy())).sum())
    cells = df[member].groupby([pred, true]).size().to_numpy()
    tp = int(_pairs(cells).sum())
    t = int(_pairs(df[member].groupby(true).size().to_numpy()).sum())
    return _score(tp, predicted, t)


def cluster_scores(df: pd.DataFrame, pred: str = "pred", true: str = "true") -> dict[str, float]:
    """Exact-cluster precision (predicted clusters that are exactly one true person's records)
    and recall (true people recovered exactly as one cluster)."""
    cells = df.groupby([pred, true]).size().rename("n").reset_index()
    size_p = df.groupby(pred).size()
    size_t = df.groupby(true).size()
    exact = cells[
        (cells["n"].to_numpy() == size_p.loc[cells[pred]].to_numpy())
        & (cells["n"].to_numpy() == size_t.loc[cells[true]].to_numpy())
    ]
    precision = len(exact) / len(size_p) if len(size_p) else 1.0
    recall = len(exact) / len(size_t) if len(size_t) else 1.0
    return {
        "predicted_clusters": int(len(size_p)),
        "true_people": int(len(size_t)),
        "exact_clusters": int(len(exact)),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
    }
