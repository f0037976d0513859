"""Linkage quality as released: link rates and shares computed from the rounded counts
(linkage_quality.csv and the linkage asset's previews) and the implausible-link counts per rule
(linkage_implausible.csv, `implausible`)."""

from __future__ import annotations

import pandas as pd

from sim_pipeline.publish.disclosure import SUPPRESSED, control_count, controlled_rate
from sim_pipeline.publish.release_cells import fmt, sort, text


def controlled_shares(
    df: pd.DataFrame, counts: str, by: str | list[str], share: str = "share", dp: int = 3
) -> pd.DataFrame:
    """``df`` with ``share`` (``counts`` over its ``by`` group's total) recomputed from the
    rounded counts (`controlled_rate`), so the share gives back no exact count."""
    out = df.copy()
    totals = out.groupby(by)[counts].transform("sum")
    out[share] = [
        fmt(r, dp) if (r := controlled_rate(k, n)) is not None else SUPPRESSED
        for k, n in zip(out[counts], totals, strict=True)
    ]
    return out


def controlled_link_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Controlled link rates (3 dp) computed from the rounded counts (`controlled_rate`); a rate
    is suppressed when records, linked or unlinked is 1-7 (the rate would give the suppressed
    count back)."""
    rows = []
    for r in df.to_dict("records"):
        records, linked = r["records"], r["linked"]
        rate = controlled_rate(linked, records)
        out = {
            "dimension": text(r["dimension"]),
            "value": text(r["value"]),
            "source_group": text(r["source_group"]),
            "records": control_count(records),
            "linked": control_count(linked),
            # from the rounded counts: 3 decimals of linked / records would give them back
            "link_rate": fmt(rate, 3)
            if rate is not None
            else (SUPPRESSED if fmt(r.get("link_rate"), 3) else ""),
        }
        out["note"] = (
            "* = 1-7 records, linked or unlinked records: suppressed"
            if SUPPRESSED in out.values()
            else ""
        )
        rows.append(out)
    res = pd.DataFrame(
        rows,
        columns=["dimension", "value", "source_group", "records", "linked", "link_rate", "note"],
    )
    dims = ("overall", "age_band", "person_sex", "borough")
    return sort(res, [("dimension", dims), ("value", None), ("source_group", None)])


def implausible(df: pd.DataFrame) -> pd.DataFrame:
    """Controlled implausible-link counts per rule."""
    res = pd.DataFrame(
        {
            "rule": [text(v) for v in df["rule"]],
            "description": [text(v) for v in df["description"]]
            if "description" in df.columns
            else "",
            "persons": [control_count(v) for v in df["persons"]],
        }
    )
    res["note"] = ["* = 1-7 people, suppressed" if v == SUPPRESSED else "" for v in res["persons"]]
    return sort(res, [("rule", None)])
