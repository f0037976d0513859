"""The evaluation's released tables: evaluation_estimates.csv, evaluation_sensitivity.csv and
harms.csv (`estimates`: levels, estimates and intervals suppressed on 1-7 treated or comparison
people, deaths risks from rounded counts, each row's notes), evaluation_balance.csv (`balance`)
and evaluation_trajectory.csv (`trajectory`)."""

from __future__ import annotations

import pandas as pd

from sim_pipeline.evaluation import comparison as evaluation
from sim_pipeline.evaluation import design_diagnostics
from sim_pipeline.publish.disclosure import SUPPRESSED, control_count
from sim_pipeline.publish.release_catalogue import (
    ANALYSES,
    GROUPS,
    HARM_OUTCOMES,
    METHODS,
    NAIVE_NOTE,
    RELEASE_POPULATIONS,
    SUPPRESSED_NOTE,
    USE_OUTCOMES,
)
from sim_pipeline.publish.release_cells import NUMERIC, fmt, join_notes, small, sort, stat, text

DIAGNOSTIC_NOTE = (
    "a diagnostic of the primary design, not an effect: its interval should hold 0 (placebo in "
    "time: index a year before allocation, months -12..-4; negative control: community contacts "
    "in the year before allocation)"
)
HARM_NOTES = {
    "ae_self_harm": "A&E attendances for self-harm: a rise may signal harm",
    "arrests": "arrests: a rise may signal criminalisation of a health need",
    "charges": "criminal charges: a rise may signal criminalisation of a health need",
    "s136_police_station": "s136 detentions held at a police station rather than a health-based "
    "place of safety",
    "community_contacts": "community mental-health contacts: a fall may signal withheld care",
    "community_dna": "missed community appointments (did not attend)",
    "deaths": "deaths: a risk difference (share of people), not a relative change",
}
DID_NOTE = (
    "difference-in-differences against matched comparison people; 95% CI from a person-level "
    "(matched-set) bootstrap"
)


# released columns: the warehouse table's, then the cost basis and a note
_RELEASE_EXTRA = ["price_year", "unit_cost_version", "note"]
ESTIMATE_COLUMNS = [*evaluation.ESTIMATE_COLUMNS, *_RELEASE_EXTRA]


def _people_with_event_small(risk: object, n: object) -> bool:
    """True when ``risk`` (a share of ``n`` people, e.g. who died) x ``n`` is 1-7 people."""
    if risk is None or n is None or pd.isna(risk) or pd.isna(n):
        return False
    return small(float(risk) * float(n))


def _round5_risk(risk: object, n: object) -> float | None:
    """A risk recomputed from its count and denominator each rounded to 5 (so the published
    risk cannot be multiplied back into an exact count)."""
    if risk is None or n is None or pd.isna(risk) or pd.isna(n) or not float(n):
        return None
    count = round(float(risk) * float(n))
    denom = 5 * round(float(n) / 5)
    return (5 * round(count / 5)) / denom if denom else None


def _risk_from_rounded_counts(out: dict, r: dict, n_t: object, n_c: object) -> None:
    """Deaths rows: follow-up risks and their difference from rounded counts (3 dp), the
    interval to 2 dp only."""
    t = _round5_risk(r.get("treated_followup"), n_t)
    c = _round5_risk(r.get("comparison_followup"), n_c)
    if t is not None:
        out["treated_followup"] = fmt(t, 3)
    if c is not None and out["comparison_followup"] != SUPPRESSED:
        out["comparison_followup"] = fmt(c, 3)
    if out["estimate"] == SUPPRESSED:
        return
    if r.get("method") == "difference_in_differences" and t is not None and c is not None:
        out["estimate"] = fmt(t - c, 3)
    elif t is not None and r.get("method") == "naive_before_after":
        out["estimate"] = fmt(t, 3)
    else:  # a model-adjusted difference (the primary design): to 2 dp, like its interval
        out["estimate"] = fmt(r.get("estimate"), 2)
    for col in ("ci_low", "ci_high"):
        if out[col] not in ("", SUPPRESSED):
            out[col] = fmt(r.get(col), 2)


def estimates(df: pd.DataFrame, cost_note: str, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled rows of evaluation_estimates: relative changes and shares to 3 dp, GBP
    levels to whole pounds, other levels (per person-month) to 3 dp; deaths risks recomputed
    from counts rounded to 5 (3 dp) and their intervals to 2 dp.
    Treated levels are suppressed on 1-7 treated people, comparison levels on 1-7 comparison
    people, the estimate, CI and rtm_share on either. On the risk scale (deaths) the same holds
    for 1-7 people with the event (risk x n would give that count back). A missing price year
    or unit-cost version is taken from ``basis``."""
    method_note = {"naive_before_after": NAIVE_NOTE, "difference_in_differences": DID_NOTE}
    rows = []
    for r in df.to_dict("records"):
        n_t = r.get("n_people")
        n_c = r.get("n_comparison", 0)
        risk = r.get("scale") == "risk_difference"
        small_t = small(n_t) or (risk and _people_with_event_small(r.get("treated_followup"), n_t))
        small_c = small(n_c) or (
            risk and _people_with_event_small(r.get("comparison_followup"), n_c)
        )
        edp = 4 if risk else 3
        ldp = 0 if r["outcome"] == "total_cost" else (4 if risk else 3)

        def stat(col: str, dp: int, suppress: bool, r: dict = r) -> str:
            text = fmt(r.get(col), dp)
            return SUPPRESSED if text and suppress else text

        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "outcome": text(r["outcome"]),
            "method": text(r["method"]),
            "scale": text(r.get("scale")),
            "estimate": stat("estimate", edp, small_t or small_c),
            "ci_low": stat("ci_low", edp, small_t or small_c),
            "ci_high": stat("ci_high", edp, small_t or small_c),
            "n_people": control_count(n_t),
            "n_comparison": control_count(n_c),
            "treated_baseline": stat("treated_baseline", ldp, small_t),
            "treated_followup": stat("treated_followup", ldp, small_t),
            "comparison_baseline": stat("comparison_baseline", ldp, small_c),
            "comparison_followup": stat("comparison_followup", ldp, small_c),
            "rtm_share": stat("rtm_share", 3, small_t or small_c),
            # replicates, not people: a count the reader needs to judge the interval
            "bootstrap_failed": fmt(r.get("bootstrap_failed"), 0),
            "price_year": text(r.get("price_year")) or basis[0],
            "unit_cost_version": text(r.get("unit_cost_version")) or basis[1],
        }
        if risk and out["treated_followup"] != SUPPRESSED:
            # the follow-up risks from rounded counts even when the estimate is suppressed
            # (a 4-decimal risk over a published count would give the exact count back)
            _risk_from_rounded_counts(out, r, n_t, n_c)
        diagnostic = out["population"] in design_diagnostics.DIAGNOSTIC_POPULATIONS
        out["note"] = join_notes(
            method_note.get(out["method"], ""),
            DIAGNOSTIC_NOTE if diagnostic else "",
            "" if diagnostic else HARM_NOTES.get(out["outcome"], ""),
            cost_note if out["outcome"] == "total_cost" else "",
            SUPPRESSED_NOTE + (" or 1-7 people with the event" if risk else "")
            if SUPPRESSED in out.values()
            else "",
        )
        rows.append(out)
    res = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    return sort(
        res,
        [
            ("analysis", ANALYSES),
            ("population", RELEASE_POPULATIONS),
            ("outcome", USE_OUTCOMES + HARM_OUTCOMES),
            ("method", METHODS),
        ],
    )


BALANCE_COLUMNS = [*evaluation.BALANCE_COLUMNS, *_RELEASE_EXTRA]


def balance(df: pd.DataFrame, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled balance rows: means to 3 dp (cost covariates to whole pounds), SMDs to 3 dp."""
    rows = []
    for r in df.to_dict("records"):
        nt, nb, na = r.get("n_treated"), r.get("n_comparison_before"), r.get("n_comparison_after")
        dp = 0 if "cost" in str(r["covariate"]) else 3
        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "covariate": text(r["covariate"]),
            "treated_mean": stat(r.get("treated_mean"), dp, nt),
            "comparison_mean_before": stat(r.get("comparison_mean_before"), dp, nb),
            "smd_before": stat(r.get("smd_before"), 3, nt, nb),
            "comparison_mean_after": stat(r.get("comparison_mean_after"), dp, na),
            "smd_after": stat(r.get("smd_after"), 3, nt, na),
            "n_treated": control_count(nt),
            "n_comparison_before": control_count(nb),
            "n_comparison_after": control_count(na),
            "price_year": basis[0],
            "unit_cost_version": basis[1],
        }
        out["note"] = SUPPRESSED_NOTE if SUPPRESSED in out.values() else ""
        rows.append(out)
    res = pd.DataFrame(rows, columns=BALANCE_COLUMNS)
    return sort(
        res, [("analysis", ANALYSES), ("population", RELEASE_POPULATIONS), ("covariate", None)]
    )


def trajectory(df: pd.DataFrame, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled month cells: n_people controlled, means suppressed when n_people is 1-7
    (mean_total_cost to whole pounds, other means to 3 dp)."""
    means = ["mean_total_cost"] if "mean_total_cost" in df.columns else []
    means += sorted(c for c in df.columns if c.startswith("mean_") and c != "mean_total_cost")
    columns = ["analysis", "population", "group", "months_from_index", "n_people", *means]
    rows = []
    for r in df.to_dict("records"):
        n = r.get("n_people")
        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "group": text(r["group"]),
            "months_from_index": str(int(r["months_from_index"])),
            "n_people": control_count(n),
        }
        for m in means:
            out[m] = stat(r.get(m), 0 if m == "mean_total_cost" else 3, n)
        out["price_year"], out["unit_cost_version"] = basis
        out["note"] = SUPPRESSED_NOTE if small(n) else ""
        rows.append(out)
    res = pd.DataFrame(rows, columns=[*columns, "price_year", "unit_cost_version", "note"])
    return sort(
        res,
        [
            ("analysis", ANALYSES),
            ("population", RELEASE_POPULATIONS),
            ("group", GROUPS),
            ("months_from_index", NUMERIC),
        ],
    )
