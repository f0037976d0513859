"""The difference-in-differences bracket's estimate rows and their bootstrap intervals.

Owns, per population and outcome of ``comparison.evaluate``: each person's baseline and
follow-up monthly means and death in follow-up (``person_values``), the naive before/after row
(the relative change of the members' mean follow-up over their mean baseline: ``naive_row``),
the difference-in-differences row against the matched comparisons (``did_row``), deaths as a
risk (``death_rows``), the comparisons' means per matched set (``set_means``) and the 95%
percentile intervals of the person-level bootstrap over matched sets, failed replicates counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("naive_before_after", "difference_in_differences")
DEATHS = "deaths"
RELATIVE, RISK = "relative_change", "risk_difference"


def person_values(pan, outcomes, death, baseline_months, person, index, s_off, e_off):
    """Baseline and follow-up monthly means per outcome, validity, death in follow-up.
    ``index``: each person's (pseudo-)index month; ``s_off``, ``e_off``: the first and last
    follow-up months relative to it (the member's programme period); the baseline is the
    ``baseline_months`` before the index."""
    n_m = len(pan.months)
    b = baseline_months
    fol_f = index + s_off
    fol_l = np.minimum(np.minimum(index + e_off, n_m - 1), death[person])
    dead_in = (death[person] >= fol_f) & (death[person] <= index + e_off)
    out = {}
    valid = np.ones(len(person), bool)
    for o in outcomes:
        j = pan.col(o)
        bs, bn = pan.window_sum(j, person, index - b, index - 1)
        fs, fn = pan.window_sum(j, person, fol_f, fol_l)
        valid = (bn > 0) & (fn > 0)
        out[o] = (bs / np.maximum(bn, 1), fs / np.maximum(fn, 1))
    return out, valid, dead_in.astype(float)


def set_means(values: np.ndarray, mt: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Mean of comparison values within each matched set, in ``sets`` order."""
    return pd.Series(values).groupby(mt).mean().reindex(sets).to_numpy(dtype=float)


def _ci(values: np.ndarray) -> tuple[float, float, int]:
    """95% percentile interval and the number of replicates that failed (not finite): counted
    and reported in the estimate's ``bootstrap_failed``, never dropped silently."""
    ok = np.isfinite(values)
    failed = int((~ok).sum())
    if not ok.any():
        return float("nan"), float("nan"), failed
    lo, hi = np.percentile(values[ok], [2.5, 97.5])
    return float(lo), float(hi), failed


def naive_row(analysis, pop, outcome, tb, tf, draws) -> list:
    """Relative change of the mean follow-up over the mean baseline (the headline's ratio)."""
    n = len(tb)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = tf.mean() / tb.mean() - 1 if n and tb.mean() > 0 else np.nan
        boot = tf[draws].mean(axis=1) / tb[draws].mean(axis=1) - 1 if n else np.zeros(0)
    lo, hi, failed = _ci(boot)
    tbm = float(tb.mean()) if n else np.nan
    tfm = float(tf.mean()) if n else np.nan
    return [analysis, pop, outcome, METHODS[0], RELATIVE, est, lo, hi, n, 0, tbm, tfm,
            np.nan, np.nan, np.nan, failed]  # fmt: skip


def _did(tb, tf, cb, cf):
    """(relative DiD, rtm share); works on 1-d arrays or on rows of 2-d bootstrap arrays."""
    dt = tf.mean(axis=-1) - tb.mean(axis=-1)
    dc = cf.mean(axis=-1) - cb.mean(axis=-1)
    counterfactual = tb.mean(axis=-1) + dc
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(counterfactual > 0, (dt - dc) / counterfactual, np.nan)
        rtm = np.where(dt != 0, dc / dt, np.nan)
    return est, rtm


def did_row(analysis, pop, outcome, tb, tf, cb, cf, draws, n_comparison) -> list:
    est, rtm = _did(tb, tf, cb, cf)
    boot, _ = _did(tb[draws], tf[draws], cb[draws], cf[draws])
    lo, hi, failed = _ci(boot)
    return [analysis, pop, outcome, METHODS[1], RELATIVE, float(est), lo, hi, len(tb),
            n_comparison, float(tb.mean()), float(tf.mean()), float(cb.mean()),
            float(cf.mean()), float(rtm), failed]  # fmt: skip


def death_rows(analysis, pop, t_dead, naive_set, did_set, c_dead, naive_draws, did_draws, n_c):
    """Deaths during follow-up as a risk: nobody has died before their index month, so the
    naive change is the members' risk and the DiD is the difference from their comparisons."""
    t = t_dead[naive_set]
    lo, hi, failed = _ci(t[naive_draws].mean(axis=1)) if len(t) else (np.nan, np.nan, 0)
    risk = float(t.mean()) if len(t) else np.nan
    rows = [[analysis, pop, DEATHS, METHODS[0], RISK, risk, lo, hi, len(t), 0, 0.0, risk,
             np.nan, np.nan, np.nan, failed]]  # fmt: skip
    if len(did_set):
        t = t_dead[did_set]
        est = float(t.mean() - c_dead.mean())
        lo, hi, failed = _ci(t[did_draws].mean(axis=1) - c_dead[did_draws].mean(axis=1))
        rows.append([analysis, pop, DEATHS, METHODS[1], RISK, est, lo, hi, len(t), n_c, 0.0,
                     float(t.mean()), 0.0, float(c_dead.mean()), np.nan, failed])  # fmt: skip
    return rows
