"""The five contact metrics and the harm measures per person per month (definitions:
reference/metrics-costs-evaluation.md and measures/events.py)."""

from __future__ import annotations

import pandas as pd

# The five contact metrics, with what each counts (the data dictionary's descriptions).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "ae_attendances": "A&E attendances (ECDS, duplicates removed)",
    "ambulance_resources": "Ambulance resources despatched",
    "mh_bed_days": "Mental-health bed days (MHS24 rule)",
    "police_deployments": "Police incidents where officers attended",
    "s136_detentions": "s136 detentions, each counted once whichever side recorded it",
}
# Balancing / harm measures: counted per person-month like the metrics, never costed.
HARM_DESCRIPTIONS: dict[str, str] = {
    "ae_self_harm": "A&E attendances coded as self-harm (harm measure)",
    "arrests": "Arrests: CAD outcome ARREST or CHARGED, s136 ArrestedForOffence Y (harm)",
    "charges": "Arrests ending in a charge: CAD outcome CHARGED (harm measure)",
    "s136_police_station": "s136 detentions taken first to a police station (harm measure)",
    "community_contacts": "Community mental-health care contacts attended (MHS201)",
    "community_dna": "Community care contacts not attended: disengagement (harm measure)",
}
METRICS: tuple[str, ...] = tuple(METRIC_DESCRIPTIONS)
HARM_MEASURES: tuple[str, ...] = tuple(HARM_DESCRIPTIONS)
MEASURES: tuple[str, ...] = (
    "ae_self_harm",
    "arrests",
    "charges",
    "s136_police_station",
    "community_contacts",
    "community_dna",
)
MEASURES: tuple[str, ...] = METRICS + HARM_MEASURES


def person_month_metrics(
    events: pd.DataFrame, person_keys: list[str] | pd.Series, months: list[str]
) -> pd.DataFrame:
    """Metric quantities per person and month from ``events``: every person in ``person_keys``
    (the cohort) for every month in ``months``, zeros included, plus every other person in the
    months they had an event (their zero months are left out: an absent row means zero). The
    other people keep the table complete when the cohort grows (a new member's baseline is
    already there) and are the pool comparison cohorts are drawn from."""
    from sim_pipeline.measures.tables import PersonMonthMetrics
    from sim_pipeline.warehouse.model import columns

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
        columns(PersonMonthMetrics)
    ]
