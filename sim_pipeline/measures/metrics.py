"""The five contact metrics and the harm measures per person per month (definitions:
reference/metrics-costs-evaluation.md and measures/events.py)."""

from __future__ import annotations

import pandas as pd

METRICS: tuple[str, ...] = (
    "ae_attendances",
    "ambulance_resources",
    "mh_bed_days",
    "police_deployments",
    "s136_detentions",
)

# Balancing / harm measures: counted per person-month like the metrics, never costed.
HARM_MEASURES: tuple[str, ...] = (
    "ae_self_harm",
    "arrests",
    "charges",
    "s136_police_station",
    "community_contacts",
    "community_dna",
)
MEASURES: tuple[str, ...] = METRICS + HARM_MEASURES
METRIC_COLUMNS = ["person_key", "month", *MEASURES]


def person_month_metrics(
    events: pd.DataFrame, person_keys: list[str] | pd.Series, months: list[str]
) -> pd.DataFrame:
    """Metric quantities per person and month from ``events``: every person in ``person_keys``
    (the cohort) for every month in ``months``, zeros included, plus every other person in the
    months they had an event (their zero months are left out: an absent row means zero). The
    other people keep the table complete when the cohort grows (a new member's baseline is
    already there) and are the pool comparison cohorts are drawn from."""
    keys = sorted(set(pd.Series(person_keys, dtype="string").dropna()))
    grid = pd.MultiIndex.from_product([keys, sorted(months)], names=["person_key", "month"])
    ev = events[events["month"].isin(months)]
    counts = (
        ev.groupby(["person_key", "month", "metric"])["quantity"].sum().unstack("metric")
        if len(ev)
        else pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["person_key", "month"]))
    )
    counts = counts.reindex(columns=list(MEASURES))
    counts = counts.reindex(counts.index.union(grid)).fillna(0).astype("int64")
    out = counts.reset_index()
    out["person_key"] = out["person_key"].astype("string")
    out["month"] = out["month"].astype("string")
    return out.sort_values(["month", "person_key"], kind="stable").reset_index(drop=True)[
        METRIC_COLUMNS
    ]
