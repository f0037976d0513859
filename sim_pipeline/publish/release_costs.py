"""The release's costs: the one cost basis (price year, unit-cost version) of every cost in it
(`cost_basis`), the cost flags the unit costs carry (`flags`) and each in words (`explain_flag`),
and unit_costs.csv (`unit_costs`: the unit costs applied, their sources and price years)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sim_pipeline.publish.release_catalogue import USE_OUTCOMES
from sim_pipeline.publish.release_cells import fmt, join_notes, sort, text


def cost_basis(tables: Mapping[str, pd.DataFrame]) -> tuple[str, str]:
    """The one (price_year, unit_cost_version) of every cost in ``tables``; ValueError if the
    tables mix price years or versions ('' when no table says)."""
    found: dict[str, set[str]] = {"price_year": set(), "unit_cost_version": set()}
    for name in ("evaluation_estimates", "programme_headline", "unit_costs"):
        df = tables.get(name)
        if df is None or df.empty:
            continue
        if name == "evaluation_estimates" and "outcome" in df.columns:
            df = df[df["outcome"] == "total_cost"]
        for col, seen in found.items():
            if col in df.columns:
                seen.update(text(v) for v in df[col] if text(v))
    for col, seen in found.items():
        if len(seen) > 1:
            raise ValueError(
                f"the tables mix {col} values {sorted(seen)}: rebuild them from one set of unit "
                "costs before publishing"
            )
    return (
        next(iter(found["price_year"]), ""),
        next(iter(found["unit_cost_version"]), ""),
    )


FLAG_TEXT = {
    "price_index_unverified": "the price index used to inflate costs to one price year is "
    "indicative, not verified against the published index",
}


def explain_flag(flag: str) -> str:
    """A cost flag (``unsourced_assumption:<metric>``, ``price_index_unverified``) in words."""
    if flag.startswith("unsourced_assumption:"):
        metric = flag.split(":", 1)[1]
        return f"the unit cost of {metric} is a user-supplied assumption with no published source"
    return FLAG_TEXT.get(flag, flag)


def flags(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every distinct cost flag carried by the unit costs (sorted)."""
    df = tables.get("unit_costs")
    if df is None or df.empty or "cost_flags" not in df.columns:
        return []
    return sorted({f for v in df["cost_flags"] for f in text(v).split(";") if f})


def unit_costs(df: pd.DataFrame) -> pd.DataFrame:
    """The unit costs applied, as published reference values (not counts: no control)."""
    rows = []
    for r in df.to_dict("records"):
        sourced = str(r.get("sourced")).lower() in {"true", "1"}
        flags = [f for f in text(r.get("cost_flags")).split(";") if f]
        factor = r.get("inflation_factor")
        notes = []
        if not sourced:
            notes.append("ASSUMPTION: no published cost found; user-supplied")
        if "price_index_unverified" in flags and not pd.isna(factor) and float(factor) != 1:
            notes.append("inflated with an unverified price index")
        rows.append(
            {
                "metric": text(r["metric"]),
                "item": text(r.get("item")),
                "unit_cost_gbp": fmt(r.get("unit_cost_gbp"), 2),
                "source_price_year": text(r.get("source_price_year")),
                "source": text(r.get("source")),
                "sourced": "true" if sourced else "false",
                "inflation_factor": fmt(factor, 4),
                "unit_cost_at_price_year": fmt(r.get("unit_cost_at_price_year"), 2),
                "price_year": text(r.get("price_year")),
                "unit_cost_version": text(r.get("unit_cost_version")),
                "cost_flags": ";".join(flags),
                "note": join_notes(*notes),
            }
        )
    columns = [
        "metric",
        "item",
        "unit_cost_gbp",
        "source_price_year",
        "source",
        "sourced",
        "inflation_factor",
        "unit_cost_at_price_year",
        "price_year",
        "unit_cost_version",
        "cost_flags",
        "note",
    ]
    return sort(pd.DataFrame(rows, columns=columns), [("metric", USE_OUTCOMES)])
