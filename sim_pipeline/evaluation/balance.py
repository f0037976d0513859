"""Balance of the difference-in-differences bracket: standardised mean differences.

Owns the balance rows of ``comparison.evaluate`` (``balance``): the matching covariates and the
baseline metric rates of the programme members against the whole eligible pool (before
matching) and against their matched comparisons (after), with the pooled-SD standardised
difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.evaluation.matching import matching_features
from sim_pipeline.measures.metrics import METRICS


def _smd(t: np.ndarray, c: np.ndarray, wc: np.ndarray | None = None) -> tuple[float, float]:
    """(comparison mean, standardised difference) with the pooled unweighted SD."""
    if len(t) == 0 or len(c) == 0:
        return float("nan"), float("nan")
    wc = np.ones(len(c)) if wc is None else wc
    mc = float(np.average(c, weights=wc))
    sd = np.sqrt(
        (np.var(t, ddof=1 if len(t) > 1 else 0) + np.var(c, ddof=1 if len(c) > 1 else 0)) / 2
    )
    return mc, float((t.mean() - mc) / sd) if sd > 0 else 0.0


def balance(
    analysis, pop, pan, t_person, t_index, tm_person, tm_index, cand_p, cand_m, c_person,
    c_index, mt, history_windows,
):  # fmt: skip
    """SMDs of the matching covariates and baseline metric rates: before (every member against
    the eligible pool, each person at the first month they met the rule) and after (the matched
    members against their comparisons, each matched set weighted as one member)."""
    first = pd.DataFrame({"p": cand_p, "m": cand_m}).sort_values(["p", "m"]).drop_duplicates("p")
    pool_p, pool_m = first["p"].to_numpy(), first["m"].to_numpy()
    weights = 1 / pd.Series(mt).map(pd.Series(mt).value_counts()).to_numpy(dtype=float)

    def covariates(person, index):
        f = np.expm1(matching_features(pan, history_windows, person, index))
        out = {}
        for j, (first, last) in enumerate(history_windows):
            out[f"mean_monthly_cost_months_{first}_to_{last}"] = f[:, 2 * j]
            out[f"crisis_contacts_per_month_{first}_to_{last}"] = f[:, 2 * j + 1]
        for metric in METRICS:
            s, n = pan.window_sum(pan.col(metric), person, index - 12, index - 1)
            out[f"{metric}_per_month_baseline"] = s / np.maximum(n, 1)
        return out

    tc = covariates(t_person, t_index)
    tmc = covariates(tm_person, tm_index)
    bc = covariates(pool_p, pool_m)
    ac = covariates(c_person, c_index)
    rows = []
    for name, t in tc.items():
        mb, sb = _smd(t, bc[name])
        ma, sa = _smd(tmc[name], ac[name], weights) if len(c_person) else (np.nan, np.nan)
        rows.append(
            [analysis, pop, name, float(t.mean()) if len(t) else np.nan, mb, sb, ma, sa,
             int(len(t)), int(len(pool_p)), int(len(np.unique(c_person)))]
        )  # fmt: skip
    return rows
