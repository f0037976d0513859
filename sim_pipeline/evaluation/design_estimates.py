"""The primary design's estimates from its matched sets (``matched_design``).

Owns one window's matched sets (``MatchedSets``); the bias correction that moves each matched
comparison's outcome to its member's covariates (Abadie and Imbens 2011): by the prognostic
score's ratio for the outcome the score models, else by a least-squares outcome regression over
the matched comparisons (``corrected_counterfactual``); the analytic variance conditional on the
covariates (after Abadie and Imbens 2006: ``analytic_variance``); and the estimate rows, ITT and
CACE on the relative scale, deaths as a risk difference, each with its 95% interval
(``estimate_rows``, method ``METHOD``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHOD = "matched_bias_corrected"
LOCAL_CORRECTION = True
LOCAL_COLUMNS = 3  # intercept, log prognostic score, run-up
# outcomes the prognostic score models (their follow-up after the index): corrected by the
# score's own ratio (the log-link model's correction) rather than by the linear regression
RATIO_CORRECTED = ("total_cost",)
Z95 = 1.959964  # the normal 97.5% point


@dataclass
class MatchedSets:
    """One window's matched sets: each member's k nearest risk-set rows (padded with -1), the
    comparison person of each, each comparison row's use and the members' engagement."""

    cand_rows: np.ndarray  # (members, k) risk-set rows, -1 where fewer than k exist
    has: np.ndarray  # cand_rows >= 0
    used: np.ndarray  # (risk-set rows,) times each row is matched
    t_rows: np.ndarray  # the members (positions among the design's members)
    share: np.ndarray  # engaged (0/1) per member
    n_c: int  # distinct comparison people matched
    cand_person: np.ndarray  # (members, k) comparison person of each match, -1 for padding


def corrected_counterfactual(sets: MatchedSets, y_pool, z_pool, z_t, pool_ok, ratio: bool):
    """Each member's counterfactual and the matched outcomes it averages (members x k, zero
    where padded), moved to the member's covariates: by the prognostic score's ratio
    (``ratio``: each match's outcome times the member's predicted mean over the match's, the
    correction of the log-link model) or by the linear outcome regression."""
    rows = np.maximum(sets.cand_rows, 0)  # padding (-1) points at row 0, masked by ``has``
    if ratio:
        # z[:, 1] is the log prognostic score. A linear correction in the log score, fitted on
        # matches that sit below the members' extreme run-up, under-corrects a convex (log-link)
        # mean: on the tuning seeds it added +0.004 to the 12-month ITT bias where no correction
        # at all did not, and the ratio took about 0.01 off it (paired, SE 0.001)
        moved = y_pool[rows] * np.exp(z_t[sets.t_rows, 1][:, None] - z_pool[rows, 1])
    else:
        if LOCAL_CORRECTION:
            # the regression on the matched comparisons only (weighted by use): local to the
            # peaks members are matched at, where a fit over the whole risk set is poor
            sel = sets.used > 0
            zl = z_pool[:, :LOCAL_COLUMNS]
            sw = np.sqrt(sets.used[sel])
            coef, *_ = np.linalg.lstsq(zl[sel] * sw[:, None], y_pool[sel] * sw, rcond=None)
            fit_pool, fit_t = zl @ coef, z_t[:, :LOCAL_COLUMNS] @ coef
        else:
            coef, *_ = np.linalg.lstsq(z_pool[pool_ok], y_pool[pool_ok], rcond=None)
            fit_pool, fit_t = z_pool @ coef, z_t @ coef
        moved = (y_pool - fit_pool)[rows] + fit_t[sets.t_rows][:, None]
    val = np.where(sets.has, moved, 0.0)
    return val.sum(axis=1) / np.maximum(sets.has.sum(axis=1), 1), val


def analytic_variance(sets: MatchedSets, val: np.ndarray, y1: np.ndarray | None = None) -> float:
    """Variance of the members' mean outcome against their mean counterfactual, conditional on
    the covariates (after Abadie and Imbens 2006, their conditional variance).

    Two parts. The members': for the realised effect on these members their untreated noise
    counts (their treated outcomes are what they are; their counterfactual is unknown),
    estimated at each member's covariates by the spread of their matched, corrected outcomes
    (k - 1 in the denominator; mismatch left in a set only widens it); for the conditional
    average effect at their covariates their treated noise counts, estimated (``y1`` given)
    by the spread of each member's outcome minus their counterfactual, less the part the
    counterfactual's own noise adds. The larger is taken, so the interval serves both readings:
    with an effect that lowers use the first is usually the larger; for a rare outcome the
    matched sets seldom show (deaths) the second is. Then the matched comparisons' noise, each
    comparison PERSON weighted by every matched set they sit in (one person matched at nearby
    months counts as fully correlated: their windows overlap). ``val``: the matched outcomes
    ``corrected_counterfactual`` averages; ``y1``: the members' outcomes (None: the untreated noise
    alone, the realised effect's variance)."""
    has = sets.has
    n_k = np.maximum(has.sum(axis=1), 1)
    y0 = val.sum(axis=1) / n_k
    s2 = (np.where(has, val - y0[:, None], 0.0) ** 2).sum(axis=1) / np.maximum(n_k - 1, 1)
    n1 = len(y0)
    members = float(s2.sum()) / n1**2
    if y1 is not None:
        r = y1 - y0
        treated = (float(((r - r.mean()) ** 2).sum()) - float((s2 / n_k).sum())) / n1**2
        members = max(members, treated)
    # comparison person p: sum over its matches x, y of a_x a_y s_x s_y with a = 1 / (N1 n_k),
    # taken as (sum a)(sum a s^2) (arithmetic for geometric mean: exact when the s are equal)
    a = np.where(has, 1.0 / (n1 * n_k[:, None]), 0.0)
    _, person = np.unique(sets.cand_person[has], return_inverse=True)
    a_sum = np.bincount(person, weights=a[has])
    a_s2 = np.bincount(person, weights=(a * s2[:, None])[has])
    return members + float((a_sum * a_s2).sum())


def estimate_rows(sets: MatchedSets, analysis, o, y1, y0, val, base, pops) -> list[list]:
    """ESTIMATE_COLUMNS rows (ITT, and CACE when ``pops[1]``) of one outcome: relative change
    (interval on the log scale of the ratio) or a risk difference for deaths, with the analytic
    95% interval; the CACE is the ITT and its interval over the share engaged."""
    share = float(sets.share.mean())
    sd = float(np.sqrt(analytic_variance(sets, val, y1)))
    m1, m0 = float(y1.mean()), float(y0.mean())
    if o == "deaths":
        scale = "risk_difference"
        est = m1 - m0
        lo, hi = est - Z95 * sd, est + Z95 * sd
    else:
        scale = "relative_change"
        if m0 > 0:
            est = m1 / m0 - 1
            # log(m1 / m0) errs by the counterfactual's relative error, sd / m0
            lo, hi = (1 + est) * np.exp(-Z95 * sd / m0) - 1, (1 + est) * np.exp(Z95 * sd / m0) - 1
        else:  # no counterfactual use: no relative change to speak of
            est = lo = hi = np.nan
    out = []
    for pop_name, div in ((pops[0], 1.0), (pops[1], share)):
        if not pop_name:
            continue
        if div > 0:
            e, lo_, hi_ = est / div, lo / div, hi / div
        else:  # nobody engaged: no CACE
            e = lo_ = hi_ = np.nan
        # an analytic interval has no replicates to fail: bootstrap_failed is 0
        out.append([
            analysis, pop_name, o, METHOD, scale, e, float(lo_), float(hi_), len(sets.t_rows),
            sets.n_c, float(base.mean()), m1, np.nan, m0, np.nan, 0,
        ])  # fmt: skip
    return out
