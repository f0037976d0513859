"""The report's charts: the released points the trajectory charts draw (`trajectory_points`:
suppressed or empty cells are gaps), the trajectory, forest and event-study charts drawn with the
report figures of `publish.charts`, each a `Figure` inlined as a PNG data URI with its
alternative text. Only released values are drawn; matplotlib is imported when a chart is drawn,
never at import."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import pandas as pd

from sim_pipeline.evaluation import matched_design as md
from sim_pipeline.evaluation.design_diagnostics import COUNTERFACTUAL_GROUP
from sim_pipeline.publish import charts
from sim_pipeline.publish.release_catalogue import HARM_OUTCOMES, PRIMARY, USE_OUTCOMES
from sim_pipeline.publish.report_cells import (
    METHOD_LABEL,
    POPULATION_LABEL,
    REPORT_POPULATIONS,
    Figure,
    num,
)


def _png(fig, alt: str) -> Figure:  # fig: matplotlib Figure
    """The figure as an inline PNG (base64 data URI, no timestamp or software metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode()
    return Figure(src=f"data:image/png;base64,{data}", alt=alt)


def trajectory_points(release: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The points the trajectory chart draws: primary analysis, released means only (a
    suppressed or empty cell is not drawn)."""
    t = release.get("evaluation_trajectory.csv")
    columns = ["population", "group", "months_from_index", "mean_total_cost"]
    if t is None or t.empty or "mean_total_cost" not in t.columns:
        return pd.DataFrame(columns=columns)
    t = t[t["analysis"] == PRIMARY]
    out = pd.DataFrame(
        {
            "population": t["population"],
            "group": t["group"],
            "months_from_index": [int(v) for v in t["months_from_index"]],
            "mean_total_cost": [num(v) for v in t["mean_total_cost"]],
        }
    )
    return out.dropna(subset=["mean_total_cost"]).reset_index(drop=True)


def trajectory_chart(release: Mapping[str, pd.DataFrame], price_year: str) -> Figure:
    pts = trajectory_points(release)
    populations = [p for p in REPORT_POPULATIONS if p in set(pts["population"])]
    if not populations:
        return Figure(note="No trajectory released.")
    labels = {p: POPULATION_LABEL.get(p, p) for p in populations}
    return _png(
        charts.bracket_trajectory_figure(pts, labels, price_year),
        "Mean monthly cost per person of programme members and matched comparison people, "
        "by month from the index date",
    )


def forest_chart(est: pd.DataFrame) -> Figure:
    """DiD estimates with 95% CIs (relative change) per outcome and population, naive changes
    as crosses; suppressed estimates are not drawn."""
    d = est[(est["analysis"] == PRIMARY) & (est["scale"] == "relative_change")]
    outcomes = [o for o in (*USE_OUTCOMES, *HARM_OUTCOMES) if o in set(d["outcome"])]
    if not outcomes:
        return Figure(note="No estimates released.")
    numbers = d.assign(**{c: [num(v) for v in d[c]] for c in ("estimate", "ci_low", "ci_high")})
    labels = {
        (population, method): f"{POPULATION_LABEL[population]}: {METHOD_LABEL[method]}"
        for population in ("per_protocol", "itt")
        for method in ("difference_in_differences", "naive_before_after")
    }
    return _png(
        charts.forest_figure(numbers, outcomes, labels),
        "Difference-in-differences estimates with 95% confidence intervals per outcome, "
        "naive before/after changes as crosses",
    )


def event_study_chart(release: Mapping[str, pd.DataFrame], price_year: str) -> Figure:
    """Members against their matched, bias-corrected counterfactual by month from allocation;
    months before allocation are the pre-period placebo."""
    pts = trajectory_points(release)
    pops = [md.itt_population(w) for w in reversed(md.WINDOWS)]
    pops = [p for p in pops if p in set(pts["population"])][:1]
    if not pops:
        return Figure(note="No event study released.")
    return _png(
        charts.event_study_figure(pts, pops[0], COUNTERFACTUAL_GROUP, price_year),
        "Event study: members against their matched, bias-corrected counterfactual by month "
        "from allocation",
    )
