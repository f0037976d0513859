"""The primary design's diagnostics and their sensitivity analysis (``matched_design``).

Owns what tells a reader whether the design's comparison is alike: the definitions of the
diagnostics ``matched_design.itt_rows`` estimates (the event study from a year before
allocation, the placebo in time with every index a year early, the negative-control outcome:
community contacts in the year before allocation) and their population names; the E-values of
the total-cost ITT estimates (VanderWeele and Ding 2017: ``e_value``, ``sensitivity``); and
their reading in plain words for the run summary, the check and the report
(``failed_diagnostics``, ``diagnostic_lines``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim_pipeline.evaluation.design_estimates import METHOD

# diagnostics (``itt_rows(diagnose=True)``, ``diagnostic_lines``)
EVENT_STUDY_FIRST = -12  # months from allocation shown before it (the pre-period placebo)
PLACEBO_SHIFT = 12  # the placebo-in-time index: this many months before allocation ...
PLACEBO_WINDOW = (0, 8)  # ... and its window: months -12..-4, before the run-up (-3..-1)
PLACEBO_POPULATION = "placebo_in_time_months_m12_m4"
NEGATIVE_CONTROL = ("community_contacts", (-12, -1))  # outcome, months before allocation
NEGATIVE_CONTROL_POPULATION = "negative_control_months_m12_m1"
DIAGNOSTIC_POPULATIONS = (PLACEBO_POPULATION, NEGATIVE_CONTROL_POPULATION)
COUNTERFACTUAL_GROUP = "counterfactual"  # the event study's bias-corrected matched comparison


def _finite(value: object) -> bool:
    """A finite number (a NULL read back from the warehouse, None or NaN is not)."""
    try:
        return bool(np.isfinite(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def e_value(ratio: float) -> float:
    """VanderWeele and Ding's (2017) E-value of a ratio: the strength (risk ratio, with both
    the programme and the outcome) an unmeasured confounder would need, beyond what is matched
    on, to explain the ratio away; 1 at no effect. For a cost or rate ratio it is an
    approximation (their rare-outcome / rate-ratio reading)."""
    if not np.isfinite(ratio) or ratio <= 0:
        return float("nan")
    r = 1 / ratio if ratio < 1 else ratio
    return float(r + np.sqrt(r * (r - 1)))


def sensitivity(rows: Sequence[Sequence]) -> dict[str, float]:
    """E-values of the total-cost ITT estimates and of their interval's end nearest to no
    change (1 when the interval holds no change); ``rows`` in ESTIMATE_COLUMNS order."""
    out: dict[str, float] = {}
    for r in rows:
        pop, outcome, method, est, lo, hi = r[1], r[2], r[3], r[5], r[6], r[7]
        if outcome != "total_cost" or method != METHOD or not pop.startswith("itt_months_"):
            continue
        if not all(_finite(v) for v in (est, lo, hi)):  # too few people, or suppressed
            continue
        near = 0.0 if lo <= 0 <= hi else (lo if lo > 0 else hi)
        out[f"{pop}:e_value"] = round(e_value(1 + est), 3)
        out[f"{pop}:e_value_interval"] = round(e_value(1 + near), 3)
    return out


DIAGNOSTIC_WORDS = {
    PLACEBO_POPULATION: "placebo in time (index a year early, months -12..-4)",
    NEGATIVE_CONTROL_POPULATION: "negative control (community contacts in the year before)",
}


def failed_diagnostics(estimates) -> list[str]:
    """The design's diagnostics whose interval excludes no change (placebo in time, negative
    control), in plain words; ``estimates``: the evaluation_estimates table (any analyses)."""
    out = []
    for pop, what in DIAGNOSTIC_WORDS.items():
        r = estimates[(estimates["population"] == pop) & (estimates["method"] == METHOD)]
        for x in r.itertuples():
            if _finite(x.ci_low) and _finite(x.ci_high) and not x.ci_low <= 0 <= x.ci_high:
                out.append(
                    f"{x.analysis}: {what} {x.estimate:+.1%} [{x.ci_low:+.1%}, {x.ci_high:+.1%}]"
                )
    return out


def diagnostic_lines(estimates) -> list[str]:
    """The primary analysis's diagnostics and sensitivity in plain words (run summary, report):
    each diagnostic's estimate and whether it held no change, then the E-values."""
    e = estimates[(estimates["analysis"] == "primary") & (estimates["method"] == METHOD)]
    lines = []
    for pop, what in DIAGNOSTIC_WORDS.items():
        r = e[e["population"] == pop]
        if r.empty or not (_finite(r.iloc[0]["ci_low"]) and _finite(r.iloc[0]["ci_high"])):
            lines.append(f"{what}: not computed (too little history in the data)")
            continue
        x = r.iloc[0]
        held = x.ci_low <= 0 <= x.ci_high
        lines.append(
            f"{what}: {x.estimate:+.1%} [{x.ci_low:+.1%}, {x.ci_high:+.1%}]: "
            + ("passed (holds no change)" if held else "FAILED: the comparison is not alike")
        )
    cols = ["analysis", "population", "outcome", "method", "scale", "estimate", "ci_low", "ci_high"]
    e_values = sensitivity(e[cols].itertuples(index=False))
    for key, value in e_values.items():
        pop, kind = key.split(":")
        if kind != "e_value":
            continue
        interval = e_values[f"{pop}:e_value_interval"]
        lines.append(
            f"sensitivity, {pop}: an unmeasured confounder tied to both allocation and cost by a "
            f"risk ratio of {value:.2f} each, beyond the history matched on, would explain the "
            f"estimate away"
            + (
                f"; one of {interval:.2f} would move the interval to hold no change"
                if interval > 1
                else " (its interval already holds no change)"
            )
        )
    if failed_diagnostics(e):
        lines.append("diagnostics failed: do not rely on this estimate")
    return lines
