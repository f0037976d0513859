"""The programme review's headline figures, recomputed the way it (most likely) computed them.

Everything here is a naive before/after comparison of people selected at their peak: it is shown
beside the comparison-cohort estimate (evaluation), never alone. Per person, over whole months:

* baseline monthly cost = total cost in the baseline months / baseline months;
* programme monthly cost = total cost in the programme months / programme months;
* change = programme - baseline (negative = a fall); pct change = change / baseline (people with
  no baseline cost have no percentage and are counted in ``n_zero_baseline``).

Statistics per population (itt = all allocated, per_protocol = engaged, and each restricted to
people with more than 6 programme months: ``itt_over_6_months``, ``per_protocol_over_6_months``):
n_allocated, n_engaged, n_people, n_zero_baseline, mean/min/max_months, person_months,
pct_with_cost_fall, mean_pct_change_per_person (mean of per-person %), ratio_of_means_pct_change
(% change of the mean monthly cost), mean_monthly_change_gbp, total_change_gbp (sum over people
of their monthly change x their own months), total_change_gbp_simple (mean monthly change x total
person-months), largest_individual_fall_gbp, mean baseline/programme monthly cost, and per metric
the baseline and programme rate per person-month (pooled: events / person-months) and cost per
person-month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.measures.cohort import cohort_people
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.measures.tables import ProgrammeHeadline
from sim_pipeline.warehouse.model import columns

HEADLINE_COLUMNS = columns(ProgrammeHeadline)
HEADLINE_POPULATIONS = ("itt", "per_protocol", "itt_over_6_months", "per_protocol_over_6_months")
LONG_STAY_MONTHS = 6


def _window_sums(
    values: pd.DataFrame, people: pd.DataFrame, first: str, last: str, columns: list[str]
) -> pd.DataFrame:
    """Per person, the sum of ``columns`` over months in [first, last] (YYYY-MM columns)."""
    w = values.merge(people[["person_key", first, last]], on="person_key")
    inside = (w["month"] >= w[first]) & (w["month"] <= w[last])
    sums = w[inside].groupby("person_key")[columns].sum()
    return sums.reindex(people["person_key"]).fillna(0)


def person_changes(
    costs: pd.DataFrame, metrics: pd.DataFrame, cohort: pd.DataFrame
) -> pd.DataFrame:
    """One row per cohort person: months, baseline and programme totals (cost and per metric)."""
    people = cohort_people(cohort).reset_index(drop=True)
    cost_cols = ["total_cost", *[f"cost_{m}" for m in METRICS]]
    c = costs[["person_key", "month", *cost_cols]]
    m = metrics[["person_key", "month", *METRICS]]
    base = pd.concat(
        [
            _window_sums(c, people, "baseline_first_month", "baseline_last_month", cost_cols),
            _window_sums(m, people, "baseline_first_month", "baseline_last_month", list(METRICS)),
        ],
        axis=1,
    ).add_prefix("baseline_")
    prog = pd.concat(
        [
            _window_sums(c, people, "programme_first_month", "programme_last_month", cost_cols),
            _window_sums(m, people, "programme_first_month", "programme_last_month", list(METRICS)),
        ],
        axis=1,
    ).add_prefix("programme_")
    out = people[
        ["person_key", "itt", "per_protocol", "baseline_months", "programme_months"]
    ].set_index("person_key")
    out = out.join(base).join(prog).reset_index()
    out["itt"] = out["itt"].astype(bool)
    out["per_protocol"] = out["per_protocol"].astype(bool)
    bm = out["baseline_months"].where(out["baseline_months"] > 0)
    pm = out["programme_months"].where(out["programme_months"] > 0)
    out["baseline_monthly_cost"] = out["baseline_total_cost"] / bm
    out["programme_monthly_cost"] = out["programme_total_cost"] / pm
    out["monthly_change"] = out["programme_monthly_cost"] - out["baseline_monthly_cost"]
    base_cost = out["baseline_monthly_cost"].where(out["baseline_monthly_cost"] > 0)
    out["pct_change"] = 100 * out["monthly_change"] / base_cost
    return out


def _stats(d: pd.DataFrame, n_allocated: int, n_engaged: int) -> dict[str, float]:
    months = d["programme_months"].astype(float)
    valid = d["monthly_change"].notna()
    dv = d[valid]
    person_months = float(dv["programme_months"].sum())
    mean_change = float(dv["monthly_change"].mean()) if len(dv) else np.nan
    mean_base = float(dv["baseline_monthly_cost"].mean()) if len(dv) else np.nan
    mean_prog = float(dv["programme_monthly_cost"].mean()) if len(dv) else np.nan
    out: dict[str, float] = {
        "n_allocated": n_allocated,
        "n_engaged": n_engaged,
        "n_people": len(d),
        "n_with_change": len(dv),
        "n_zero_baseline": int((dv["baseline_monthly_cost"] == 0).sum()),
        "mean_months": float(months.mean()) if len(d) else np.nan,
        "min_months": float(months.min()) if len(d) else np.nan,
        "max_months": float(months.max()) if len(d) else np.nan,
        "person_months": person_months,
        "pct_with_cost_fall": 100 * float((dv["monthly_change"] < 0).mean()) if len(dv) else np.nan,
        "mean_pct_change_per_person": float(dv["pct_change"].mean()),
        "ratio_of_means_pct_change": 100 * (mean_prog / mean_base - 1) if mean_base else np.nan,
        "mean_baseline_monthly_cost_gbp": mean_base,
        "mean_programme_monthly_cost_gbp": mean_prog,
        "mean_monthly_change_gbp": mean_change,
        "total_change_gbp": float((dv["monthly_change"] * dv["programme_months"]).sum()),
        "total_change_gbp_simple": mean_change * person_months,
        "largest_individual_fall_gbp": float(-dv["monthly_change"].min()) if len(dv) else np.nan,
    }
    base_pm = float(dv["baseline_months"].sum())
    for metric in METRICS:
        for side, pm in (("baseline", base_pm), ("programme", person_months)):
            out[f"{side}_rate_{metric}"] = (
                float(dv[f"{side}_{metric}"].sum()) / pm if pm else np.nan
            )
            out[f"{side}_cost_per_month_{metric}"] = (
                float(dv[f"{side}_cost_{metric}"].sum()) / pm if pm else np.nan
            )
    return out


def programme_headline(
    costs: pd.DataFrame,
    metrics: pd.DataFrame,
    cohort: pd.DataFrame,
    price_year: str,
    unit_cost_version: str,
) -> pd.DataFrame:
    """The headline in long form: population, statistic, value, price_year, unit_cost_version."""
    changes = person_changes(costs, metrics, cohort)
    n_allocated = len(changes)
    n_engaged = int(changes["per_protocol"].sum())
    long_stay = changes["programme_months"] > LONG_STAY_MONTHS
    groups = {
        "itt": changes,
        "per_protocol": changes[changes["per_protocol"]],
        "itt_over_6_months": changes[long_stay],
        "per_protocol_over_6_months": changes[changes["per_protocol"] & long_stay],
    }
    rows = []
    for population, d in groups.items():
        for statistic, value in _stats(d, n_allocated, n_engaged).items():
            rows.append((population, statistic, float(value)))
    out = pd.DataFrame(rows, columns=["population", "statistic", "value"])
    out["price_year"] = price_year
    out["unit_cost_version"] = unit_cost_version
    return out[HEADLINE_COLUMNS]


def headline_table(headline: pd.DataFrame, statistics: list[str] | None = None) -> pd.DataFrame:
    """Wide, rounded view for people (statistics as rows, populations as columns)."""
    wide = headline.pivot(index="statistic", columns="population", values="value")
    wide = wide.reindex(columns=[p for p in HEADLINE_POPULATIONS if p in wide.columns])
    if statistics:
        wide = wide.reindex(statistics)
    return wide.round(2).reset_index()


MIN_PEOPLE = 8  # statistics on fewer people are not shown (disclosure rule: 1-7 suppressed)


def trajectory(
    costs: pd.DataFrame, cohort: pd.DataFrame, before: int = 12, after: int = 24
) -> pd.DataFrame:
    """Mean monthly cost per person by month relative to allocation (0 = the allocation month),
    for ITT and per-protocol: the picture behind the headline (selection at a peak, then a
    fall). Months with fewer than `MIN_PEOPLE` people observed have no mean."""
    people = cohort_people(cohort)[["person_key", "allocation_date", "per_protocol"]]
    alloc = pd.to_datetime(people["allocation_date"]).dt.to_period("M")
    people = people.assign(alloc=alloc)
    c = costs[["person_key", "month", "total_cost"]].merge(people, on="person_key")
    c["relative_month"] = [
        (pd.Period(m, "M") - a).n for m, a in zip(c["month"], c["alloc"], strict=True)
    ]
    c = c[(c["relative_month"] >= -before) & (c["relative_month"] <= after)]
    rows = []
    for population, d in (("itt", c), ("per_protocol", c[c["per_protocol"].astype(bool)])):
        # absent person-months are zeros: average over the cohort members with data that month
        g = d.groupby("relative_month").agg(
            people=("person_key", "nunique"), total=("total_cost", "sum")
        )
        for month, r in g.iterrows():
            mean = r["total"] / r["people"] if r["people"] >= MIN_PEOPLE else float("nan")
            rows.append((population, int(month), int(r["people"]), mean))
    return pd.DataFrame(rows, columns=["population", "relative_month", "people", "mean_cost"])


# The statistics an analyst reads first, in the order the asset's preview and the report show
# them (each shows a selection: `defs.headline`, `publish.report`).
KEY_STATISTICS = (
    "n_allocated",
    "n_engaged",
    "n_people",
    "mean_months",
    "min_months",
    "max_months",
    "person_months",
    "pct_with_cost_fall",
    "mean_pct_change_per_person",
    "ratio_of_means_pct_change",
    "mean_baseline_monthly_cost_gbp",
    "mean_programme_monthly_cost_gbp",
    "mean_monthly_change_gbp",
    "total_change_gbp",
    "total_change_gbp_simple",
    "largest_individual_fall_gbp",
)
_NON_NEGATIVE_PREFIXES = ("n_", "baseline_rate_", "programme_rate_", "baseline_cost_per_month_")
_NON_NEGATIVE = {
    "person_months",
    "min_months",
    "max_months",
    "mean_months",
    "mean_baseline_monthly_cost_gbp",
    "mean_programme_monthly_cost_gbp",
    "largest_individual_fall_gbp",
}


def impossible_values(head: pd.DataFrame) -> list[str]:
    """Headline statistics no correct computation can produce (one line per problem, naming the
    population and statistic): negative counts, rates or costs, shares outside 0-100%, falls
    of more than 100%, more engaged or analysed people than allocated, a missing value where
    the population is not empty."""
    problems: list[str] = []
    for population, rows in head.groupby("population", sort=True):
        v = rows.set_index("statistic")["value"].astype(float)
        # no one, or no one whose change can be measured yet (a backfill whose months hold no
        # member's programme window, e.g. members engaged after its last month)
        empty = v.get("n_people", 0) == 0 or v.get("n_with_change", 1) == 0
        for stat, value in v.items():
            s = str(stat)
            if pd.isna(value):
                if not empty:
                    problems.append(f"{population}.{s} is missing")
                continue
            non_negative = (
                s.startswith(_NON_NEGATIVE_PREFIXES)
                or s.startswith("programme_cost_per_month_")
                or s in _NON_NEGATIVE
            )
            if non_negative and value < 0:
                problems.append(f"{population}.{s} is negative")
            if s.startswith("n_") and value != round(value):
                problems.append(f"{population}.{s} is not a whole number")
            if s == "pct_with_cost_fall" and not 0 <= value <= 100:
                problems.append(f"{population}.{s} is outside 0-100%")
            if s in ("ratio_of_means_pct_change", "mean_pct_change_per_person") and value < -100:
                problems.append(f"{population}.{s} is a fall of more than 100%")
        allocated = v.get("n_allocated")
        for s in ("n_engaged", "n_people"):
            if allocated is not None and v.get(s, 0) > allocated:
                problems.append(f"{population}.{s} exceeds n_allocated")
        if v.get("min_months", 0) > v.get("max_months", float("inf")):
            problems.append(f"{population}.min_months exceeds max_months")
    return problems
