"""The primary design's prognostic score and what it is built from (``matched_design``).

Owns what the design knows of a person at a month: the history features the score is fitted on
(log cost in each of the 12 months before, the recent crisis contacts, the long-run level, the
rise in crisis contacts, sex, age band and calendar time: ``history_features``), the run-up
(``runup``), the mean of a value over a window counting months alive only (``window_mean``),
and the log-link Poisson model itself, fitted by iteratively reweighted least squares
(``poisson_fit``, ``poisson_predict``). Plain numpy over the evaluation's dense panel
(``evaluation.panel.Panel``).
"""

from __future__ import annotations

import numpy as np

HISTORY = 12
LEVEL = (-48, -13)
RUNUP = (-3, -1)
RISE = (19, 20)  # feature columns: log crisis contacts months -3..-1 and -27..-4


def poisson_fit(x: np.ndarray, y: np.ndarray, iters: int = 30, ridge: float = 1e-6):
    """Coefficients of a log-link Poisson regression (with intercept) by IRLS."""
    xa = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(xa.shape[1])
    beta[0] = np.log(max(float(y.mean()), 1e-9))
    for _ in range(iters):
        eta = np.clip(xa @ beta, -30, 30)
        mu = np.exp(eta)
        z = eta + (y - mu) / mu
        xtw = xa.T * mu
        new = np.linalg.solve(xtw @ xa + ridge * np.eye(xa.shape[1]), xtw @ z)
        if np.max(np.abs(new - beta)) < 1e-8:
            beta = new
            break
        beta = new
    return beta


def poisson_predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.exp(np.clip(beta[0] + x @ beta[1:], -30, 30))


def window_mean(cum_j, person, first, last, death):
    """Mean monthly value over months first..last, counting months up to death only."""
    n_m = cum_j.shape[1] - 1
    e = np.minimum(np.minimum(last, death), n_m - 1) + 1
    f = np.clip(first, 0, n_m)
    e = np.maximum(e, f)
    n = e - f
    return (cum_j[person, e] - cum_j[person, f]) / np.maximum(n, 1)


def history_features(pan, crisis_cum: np.ndarray, strata_num: np.ndarray, person, month):
    """The prognostic model's covariates of each (person, index month): one row each.
    ``crisis_cum``: cumulative crisis contacts per person and month (as ``pan.cum``);
    ``strata_num``: numeric (sex, age band) per person and month."""
    n_m = len(pan.months)
    cost = pan.col("total_cost")
    cum = pan.cum
    cols = []
    for k in range(1, HISTORY + 1):
        m = month - k
        ok = m >= 0
        v = np.where(ok, pan.values[cost, person, np.clip(m, 0, n_m - 1)], 0.0)
        cols.append(np.log1p(v))
    for k in range(1, 4):
        m = np.clip(month - k, 0, n_m - 1)
        cols.append(np.log1p(crisis_cum[person, m + 1] - crisis_cum[person, m]))
    for first, last in ((-12, -4), LEVEL):
        f = np.clip(month + first, 0, n_m)
        e = np.clip(month + last + 1, 0, n_m)
        n = np.maximum(e - f, 1)
        cols.append(np.log1p((cum[cost, person, e] - cum[cost, person, f]) / n))
        cols.append(np.log1p((crisis_cum[person, e] - crisis_cum[person, f]) / n))
    # the run-up in crisis contacts against the usual level (the months -27..-4): referral
    # near a peak is driven by such a rise
    for first, last in ((-3, -1), (-27, -4)):
        f = np.clip(month + first, 0, n_m)
        e = np.clip(month + last + 1, 0, n_m)
        cols.append(
            np.log1p((crisis_cum[person, e] - crisis_cum[person, f]) / np.maximum(e - f, 1))
        )
    st = strata_num[person, np.clip(month, 0, n_m - 1)]
    cols += [st[:, 0], st[:, 1], (month - 36) / 12.0]
    return np.column_stack(cols)


def runup(pan, person, month):
    """log(1 + mean monthly total cost) over the run-up (months -3..-1) to each index month."""
    n_m = len(pan.months)
    cost = pan.col("total_cost")
    cum = pan.cum
    f = np.clip(month + RUNUP[0], 0, n_m)
    e = np.clip(month + RUNUP[1] + 1, 0, n_m)
    return np.log1p((cum[cost, person, e] - cum[cost, person, f]) / np.maximum(e - f, 1))
