"""The report's primary-estimate section: the matched design's released rows as numbers (a
suppressed cell is NaN), ITT and CACE per window in plain words, its diagnostics (a failed one
said plainly) and the event-study chart, as plain values (`Design`) for the page's template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_pipeline.evaluation import matched_design as md
from sim_pipeline.evaluation.design_diagnostics import diagnostic_lines, failed_diagnostics
from sim_pipeline.evaluation.design_estimates import METHOD
from sim_pipeline.publish.release_catalogue import PRIMARY
from sim_pipeline.publish.report_cells import Figure, Table, num, table
from sim_pipeline.publish.report_charts import event_study_chart


@dataclass(frozen=True)
class Design:
    """The primary estimate as the page says it: in words, per window and estimand, the
    diagnostics (and those that failed) and the event-study chart."""

    words: str
    table: Table
    diagnostics: tuple[str, ...]
    failed: tuple[str, ...]
    chart: Figure


def _released_design(release: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The primary design's released rows as numbers (a suppressed cell is NaN)."""
    est = release.get("evaluation_estimates.csv")
    cols = ["analysis", "population", "outcome", "method", "scale", "estimate", "ci_low", "ci_high"]
    if est is None or est.empty:
        return pd.DataFrame(columns=[*cols, "n_people"])
    d = est[(est["analysis"] == PRIMARY) & (est["method"] == METHOD)].copy()
    for c in ("estimate", "ci_low", "ci_high"):
        d[c] = [np.nan if num(v) is None else num(v) for v in d[c]]
    return d[[*cols, "n_people"]].reset_index(drop=True)


def design_section(release: Mapping[str, pd.DataFrame], price_year: str) -> Design:
    """The primary estimate: ITT and CACE per window in plain words, the diagnostics (a failed
    one is said plainly), the E-values and the event-study chart."""
    d = _released_design(release)
    cost = d[d["outcome"] == "total_cost"]
    rows, words = [], []
    for w in md.WINDOWS:
        for pop, what in (
            (md.itt_population(w), "ITT: everyone allocated"),
            (md.cace_population(w), "CACE: those who engaged"),
        ):
            r = cost[cost["population"] == pop]
            if r.empty:
                continue
            x = r.iloc[0]
            if not np.isfinite(x.estimate) or not np.isfinite(x.ci_low):
                meaning = "not estimable here (too few people, or suppressed)"
                est, ci = "", ""
            else:
                est, ci = f"{x.estimate:+.1%}", f"{x.ci_low:+.1%} to {x.ci_high:+.1%}"
                if x.ci_low <= 0 <= x.ci_high:
                    meaning = (
                        f"no detectable effect: the interval runs from {x.ci_low:+.0%} to "
                        f"{x.ci_high:+.0%}"
                    )
                else:
                    meaning = "a fall" if x.estimate < 0 else "a rise"
            rows.append([f"months {w[0]}-{w[1]}", what, est, ci, x.n_people, meaning])
            if pop == md.itt_population(md.WINDOWS[0]):
                words.append(f"Over the 12 months from allocation: {est or 'n/a'}, {meaning}.")
    frame = pd.DataFrame(
        rows, columns=["window", "estimand", "change", "95% CI", "people", "in plain words"]
    )
    return Design(
        words=" ".join(words) or "No primary estimate released.",
        table=table(frame, list(frame.columns), numeric=["change", "people"]),
        diagnostics=tuple(diagnostic_lines(d)),
        failed=tuple(failed_diagnostics(d)),
        chart=event_study_chart(release, price_year),
    )
