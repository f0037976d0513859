"""The review's naive headline as released: headline.csv in long form (counts controlled,
statistics of a population with 1-7 people suppressed, the individual-level statistics withheld)
and the same values wide, as the headline asset's preview shows them."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sim_pipeline.publish.disclosure import (
    SUPPRESSED,
    control_count,
    controlled_rate,
    is_count_statistic,
)
from sim_pipeline.publish.release_catalogue import (
    NAIVE_NOTE,
    RELEASE_POPULATIONS,
    SUPPRESSED_NOTE,
    WITHHELD_STATISTICS,
)
from sim_pipeline.publish.release_cells import fmt, join_notes, sort, stat, text


def _headline_dp(statistic: str) -> int:
    """Decimals of a headline statistic: GBP 0, percentages and months 1, rates 3."""
    if "_gbp" in statistic:
        return 0
    if "pct" in statistic or "months" in statistic:
        return 1
    if "cost" in statistic:
        return 0
    return 3


def controlled_headline(df: pd.DataFrame, cost_note: str) -> pd.DataFrame:
    """The naive headline in long form, flagged as naive; counts controlled, statistics of a
    population with 1-7 people (n_with_change, else n_people) suppressed, withheld statistics
    dropped. GBP to whole pounds, percentages and months to 1 dp, rates to 3 dp."""
    bases: dict[str, object] = {}
    for population, d in df.groupby("population"):
        s = d.set_index("statistic")["value"]
        bases[str(population)] = s.get("n_with_change", s.get("n_people"))
    rows = []
    for r in df.to_dict("records"):
        statistic = str(r["statistic"])
        if statistic in WITHHELD_STATISTICS:
            continue
        population = str(r["population"])
        if is_count_statistic(statistic):
            value = control_count(r["value"])
        elif statistic == "pct_with_cost_fall":
            # from the rounded counts (people with a fall, of n_with_change): to one decimal,
            # the exact share gave n back
            n = bases.get(population)
            k = None if n is None or pd.isna(r["value"]) else float(r["value"]) / 100 * float(n)
            rate = controlled_rate(k, n, 100)
            value = fmt(rate, 1) if rate is not None else (SUPPRESSED if k is not None else "")
        else:
            value = stat(r["value"], _headline_dp(statistic), bases.get(population))
        notes = [NAIVE_NOTE]
        if "gbp" in statistic or "cost" in statistic:
            notes.append(cost_note)
        if value == SUPPRESSED and not is_count_statistic(statistic):
            notes.append(SUPPRESSED_NOTE)
        rows.append(
            {
                "population": population,
                "statistic": statistic,
                "value": value,
                "method": "naive_before_after",
                "price_year": text(r.get("price_year")),
                "unit_cost_version": text(r.get("unit_cost_version")),
                "note": join_notes(*notes),
            }
        )
    columns = ["population", "statistic", "value", "method", "price_year", "unit_cost_version"]
    res = pd.DataFrame(rows, columns=[*columns, "note"])
    return sort(res, [("population", RELEASE_POPULATIONS), ("statistic", None)])


def headline_preview(head: pd.DataFrame, statistics: Sequence[str]) -> pd.DataFrame:
    """The headline as an asset preview shows it: the published (controlled) values, wide
    (statistics as rows, populations as columns)."""
    ctl = controlled_headline(head, "")
    wide = ctl.pivot(index="statistic", columns="population", values="value")
    wide = wide.reindex(columns=[p for p in RELEASE_POPULATIONS if p in wide.columns])
    return wide.reindex([s for s in statistics if s in wide.index]).reset_index()
