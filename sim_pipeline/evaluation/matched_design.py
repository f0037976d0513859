"""The primary design: risk-set matching on a prognostic score, then regression adjustment.

Programme members are allocated near a peak of their crisis use, so their use falls afterwards
with or without the programme (regression to the mean). The estimate that answers "what did the
programme change" compares each member with people who were not allocated, at the SAME calendar
month, whose history predicts the same future:

* **Estimand**: intention to treat (ITT) from allocation on fixed windows, months 0-11 and 0-23
  after the allocation month (month 0 is the allocation month), on the relative scale: the
  members' mean monthly outcome over the window against the mean their matched comparisons
  predict for them, minus one. A member contributes to a window only when the whole window lies
  inside the data; months after death are not counted (a person's mean is over the months they
  were alive). The complier average causal effect (CACE) is the ITT divided by the share of
  those members who engaged (Bloom 1984; Angrist, Imbens and Rubin 1996): the effect on the
  people who engage, on the scale of all members' counterfactual level, when the programme
  moves nobody who never engages. Deaths in the window are a risk difference.
* **Risk set** (Li, Propert and Rosenbaum 2001): at each member's allocation month, every person
  not yet allocated (never, or later: leaving out those allocated later would select on their
  future peak), alive through that month, with at least one crisis contact in the 12 months
  before and whose window fits in the data. A comparison allocated later keeps their whole
  window: exact without an effect, a little diluted towards no effect with one.
* **Prognostic score** (Hansen 2008): a Poisson regression of the mean monthly total cost over
  months 0-11, fitted on risk-set person-months of people never allocated (their outcomes are
  untreated in every world, so the score depends on nothing the programme changes), over each of the
  12 months before (log cost), the recent crisis contacts (each of the 3 months before, and
  months -12..-4), the long-run level (months -48..-13, cut at the start of the data), sex,
  age band and calendar time.
* **Matching**: the ``controls`` nearest comparisons by the log prognostic score, the run-up
  (log cost over months -3..-1, half weight), the rise in crisis contacts (log contacts of
  months -3..-1 over months -27..-4: what referral near a peak selects on) and the last month's
  cost (log, month -1: the sharpest point of the peak), standardised, with replacement.
* **Bias correction** (Abadie and Imbens 2011): each comparison's outcome is moved from the
  comparison's covariates to the member's. Total cost (the outcome the score models) by the
  score's own ratio: the match's outcome times the member's predicted mean over the match's
  (the correction of a log-link model; a linear one in the log score under-corrects its convex
  mean where members sit above their matches). Every other outcome by an outcome regression:
  least squares of the outcome on the log score and the run-up over the matched comparisons
  (weighted by use), per outcome and window; local to the peaks members are matched at (a fit
  over the whole risk set, mostly people at their usual level, corrected less well on the
  tuning seeds). Doubly robust in the sense that a good match or a good model is enough.
* **Inference**: an analytic variance, conditional on the covariates (after Abadie and Imbens
  2006; ``analytic_variance``): the members' noise (the larger of their untreated noise, from
  the spread of their matched, corrected outcomes, and their treated noise) plus the matched
  comparisons' noise, each comparison person weighted by every matched set they sit in; 95%
  interval on the log scale of the ratio (risk difference for deaths); the CACE's is the ITT's
  over the share engaged. It serves the realised effect on these members (the quantity the
  validation checks) and the conditional average effect alike. A bootstrap re-running the
  matching in every replicate was used before 2026-12-06: its intervals were 10-21% wider than
  the errors' spread and covered 97.5-99.5% with an effect (see the README's validation).

Plain numpy (the Poisson fit is iteratively reweighted least squares); ``evaluation.evaluate``
calls ``itt_rows`` with its panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

WINDOWS: tuple[tuple[int, int], ...] = ((0, 11), (0, 23))
METHOD = "matched_bias_corrected"
HISTORY = 12
LEVEL = (-48, -13)
RUNUP = (-3, -1)
MIN_PRIOR_CONTACTS = 1
RISE = (19, 20)  # feature columns: log crisis contacts months -3..-1 and -27..-4
LOCAL_CORRECTION = True
LOCAL_COLUMNS = 3  # intercept, log prognostic score, run-up
# outcomes the prognostic score models (their follow-up after the index): corrected by the
# score's own ratio (the log-link model's correction) rather than by the linear regression
RATIO_CORRECTED = ("total_cost",)
Z95 = 1.959964  # the normal 97.5% point
# diagnostics (``itt_rows(diagnose=True)``, ``diagnostic_lines``)
EVENT_STUDY_FIRST = -12  # months from allocation shown before it (the pre-period placebo)
PLACEBO_SHIFT = 12  # the placebo-in-time index: this many months before allocation ...
PLACEBO_WINDOW = (0, 8)  # ... and its window: months -12..-4, before the run-up (-3..-1)
PLACEBO_POPULATION = "placebo_in_time_months_m12_m4"
NEGATIVE_CONTROL = ("community_contacts", (-12, -1))  # outcome, months before allocation
NEGATIVE_CONTROL_POPULATION = "negative_control_months_m12_m1"
DIAGNOSTIC_POPULATIONS = (PLACEBO_POPULATION, NEGATIVE_CONTROL_POPULATION)
COUNTERFACTUAL_GROUP = "counterfactual"  # the event study's bias-corrected matched comparison


def itt_population(window: tuple[int, int]) -> str:
    return f"itt_months_{window[0]}_{window[1]}"


def cace_population(window: tuple[int, int]) -> str:
    return f"cace_months_{window[0]}_{window[1]}"


@dataclass(frozen=True)
class DesignSettings:
    controls: int = 5
    runup_weight: float = 0.5  # weight of the run-up distance beside the prognostic score
    rise_weight: float = 1.0  # weight of the rise in crisis contacts
    recent_weight: float = 1.0  # weight of the last month's cost (log, month -1)


@dataclass
class DesignResult:
    rows: list[list]  # ESTIMATE_COLUMNS rows (with bootstrap_failed)
    matches: list[tuple[int, int, int, float, str]]  # member row, comparison person, month, d, pop
    diagnostics: dict[str, float | int | str]
    realised_sets: dict[str, np.ndarray]  # population -> member rows used
    # the event study: (population, months from allocation, members, members' mean total cost,
    # counterfactual mean) per month, members counted while alive and in the data
    event_study: list[tuple[str, int, int, float, float]] = field(default_factory=list)


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


def _window_mean(cum_j, person, first, last, death):
    """Mean monthly value over months first..last, counting months up to death only."""
    n_m = cum_j.shape[1] - 1
    e = np.minimum(np.minimum(last, death), n_m - 1) + 1
    f = np.clip(first, 0, n_m)
    e = np.maximum(e, f)
    n = e - f
    return (cum_j[person, e] - cum_j[person, f]) / np.maximum(n, 1)


def itt_rows(
    pan,
    death: np.ndarray,
    strata_num: np.ndarray,
    t_person: np.ndarray,
    alloc_m: np.ndarray,
    engaged: np.ndarray,
    allocated: np.ndarray,
    outcomes: Sequence[str],
    crisis_cols: Sequence[int],
    settings: DesignSettings,
    analysis: str,
    *,
    windows: Sequence[tuple[int, int]] = WINDOWS,
    names=None,
    diagnose: bool = True,
) -> DesignResult:
    """Estimates of the ITT and CACE on each window for every outcome (relative scale) and
    deaths (risk difference). ``pan``: the evaluation's dense panel; ``strata_num``: numeric
    (sex, age band) per person and month, shape (people, months, 2). ``names``: window ->
    (ITT population, CACE population or None); ``diagnose``: add the diagnostics (the event
    study, the placebo in time, the negative-control outcome and the E-values)."""
    names = names or (lambda w: (itt_population(w), cace_population(w)))
    args = (pan, death, strata_num, t_person, alloc_m, engaged, allocated)
    n_m = len(pan.months)
    cost = pan.col("total_cost")
    cum = pan.cum
    crisis_cum = sum(cum[j] for j in crisis_cols)

    def features(person, month):
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

    def runup(person, month):
        f = np.clip(month + RUNUP[0], 0, n_m)
        e = np.clip(month + RUNUP[1] + 1, 0, n_m)
        return np.log1p((cum[cost, person, e] - cum[cost, person, f]) / np.maximum(e - f, 1))

    # members allocated inside the data only (a backfill of a few months may hold cohort
    # members allocated before its first month: they have no history here to match on)
    # not yet allocated at m: never allocated, or allocated later. Leaving out people allocated
    # later would select on their future (their later peak) and bias the comparison low.
    alloc_of = np.full(len(allocated), np.iinfo(np.int64).max)
    alloc_of[t_person] = alloc_m
    inside = (alloc_m >= 0) & (alloc_m <= n_m - 1)
    if not inside.any():
        return DesignResult([], [], {"design": "no member allocated inside the months here"}, {})
    t_person, alloc_m, engaged = t_person[inside], alloc_m[inside], engaged[inside]
    member_rows = np.nonzero(inside)[0]  # positions in the caller's member order

    # ---- the risk set: every not-yet-allocated person-month in the allocation period
    months = np.arange(int(alloc_m.min()), int(alloc_m.max()) + 1)
    everyone = np.arange(len(allocated))
    rp, rm = [], []
    for m in months:
        prior = crisis_cum[:, m] - crisis_cum[:, max(0, m - 12)]
        ok = (alloc_of > m) & (death > m) & (prior >= MIN_PRIOR_CONTACTS)
        idx = everyone[ok]
        rp.append(idx)
        rm.append(np.full(len(idx), m))
    pool_p = np.concatenate(rp)
    pool_m = np.concatenate(rm)
    w0, w1 = WINDOWS[0]
    if not len(pool_p) or not (pool_m + w1 <= n_m - 1).any():
        # no one to compare with (or no follow-up in the data): no estimate, said so
        return DesignResult(
            [], [], {"design": "no risk set: no comparison person-month to match on"}, {}
        )
    x_pool = features(pool_p, pool_m)
    x_t = features(t_person, alloc_m)
    scale_x = x_pool.std(axis=0)
    scale_x = np.where(scale_x > 0, scale_x, 1.0)
    centre = x_pool.mean(axis=0)
    xs_pool, xs_t = (x_pool - centre) / scale_x, (x_t - centre) / scale_x

    # ---- prognostic score: Poisson model of months 0-11 mean cost, comparisons only
    # fitted on people never allocated: their outcomes are untreated in every world, so the
    # score (and the matching) depends on nothing a member's programme could change
    fits = (pool_m + w1 <= n_m - 1) & (alloc_of[pool_p] == np.iinfo(np.int64).max)
    y_fit = _window_mean(cum[cost], pool_p[fits], pool_m[fits] + w0, pool_m[fits] + w1,
                         death[pool_p[fits]])  # fmt: skip
    beta = poisson_fit(xs_pool[fits], y_fit)
    score_pool = np.log(poisson_predict(beta, xs_pool))
    score_t = np.log(poisson_predict(beta, xs_t))
    t_fit = alloc_m + w1 <= n_m - 1
    y_t0 = _window_mean(cum[cost], t_person[t_fit], alloc_m[t_fit] + w0, alloc_m[t_fit] + w1,
                        death[t_person[t_fit]])  # fmt: skip
    # calibration of the prognostic model among members (1: it predicts them as well as it
    # predicts comparisons; above 1: members use more than comparisons with their history)
    prognostic_ratio = float(y_t0.mean() / np.exp(score_t[t_fit]).mean()) if t_fit.any() else np.nan
    # the same among comparisons at a peak like the members' (run-up over long-run level in the
    # members' range): tells model misfit at peaks from selection on what the data do not show
    rise_pool = runup(pool_p, pool_m) - x_pool[:, 12 + 3 + 2]
    rise_t = runup(t_person, alloc_m) - x_t[:, 12 + 3 + 2]
    peak = fits & (rise_pool >= np.quantile(rise_t, 0.25))
    peak_ratio = (
        float(
            _window_mean(cum[cost], pool_p[peak], pool_m[peak] + w0, pool_m[peak] + w1,
                         death[pool_p[peak]]).mean()
            / np.exp(score_pool[peak]).mean()
        )
        if peak.any()
        else np.nan
    )  # fmt: skip
    r_pool, r_t = runup(pool_p, pool_m), runup(t_person, alloc_m)
    s_sd = max(float(score_pool.std()), 1e-9)
    r_sd = max(float(r_pool.std()), 1e-9)
    # the rise in crisis contacts (months -3..-1 over -27..-4, log scale): what referral near a
    # peak selects on, matched directly so that members and comparisons rose alike
    q_pool = x_pool[:, RISE[0]] - x_pool[:, RISE[1]]
    q_t = x_t[:, RISE[0]] - x_t[:, RISE[1]]
    q_sd = max(float(q_pool.std()), 1e-9)
    # the last month before the index (log cost of month -1, feature column 0): referral near a
    # peak catches people at its sharpest point; without it members' month -1 stood about 10%
    # above their matches' and their months 0-3 above their counterfactual (tuning seeds)
    l_pool, l_t = x_pool[:, 0], x_t[:, 0]
    l_sd = max(float(l_pool.std()), 1e-9)
    # covariates of the outcome regression (bias correction)
    z_pool = np.column_stack([np.ones(len(pool_p)), score_pool, r_pool, xs_pool])
    z_t = np.column_stack([np.ones(len(t_person)), score_t, r_t, xs_t])

    rows: list[list] = []
    match_out: list[tuple[int, int, int, float, str]] = []
    diagnostics: dict[str, float | int | str] = {
        "design": "risk-set matching on a prognostic score, bias-corrected (doubly robust)",
        "risk_set_person_months": int(len(pool_p)),
        "prognostic_model_rows": int(fits.sum()),
        "prognostic_observed_over_predicted_members": round(prognostic_ratio, 4),
        "prognostic_observed_over_predicted_peak_comparisons": round(peak_ratio, 4),
    }
    realised: dict[str, np.ndarray] = {}
    k = settings.controls
    event_study: list[tuple[str, int, int, float, float]] = []
    for window in windows:
        a, b = window
        in_win = np.nonzero(alloc_m + b <= n_m - 1)[0]
        pool_ok = pool_m + b <= n_m - 1
        pop_itt, pop_cace = names(window)
        if len(in_win) == 0:
            continue
        realised[pop_itt] = member_rows[in_win]
        if pop_cace:
            realised[pop_cace] = member_rows[in_win]
        # matched sets: for each member, the risk-set rows of its month, by distance
        cand: list[np.ndarray] = []
        dist: list[np.ndarray] = []
        for i in in_win:
            rows_i = np.nonzero(pool_ok & (pool_m == alloc_m[i]))[0]
            d = np.sqrt(((score_pool[rows_i] - score_t[i]) / s_sd) ** 2
                        + settings.runup_weight * ((r_pool[rows_i] - r_t[i]) / r_sd) ** 2
                        + settings.rise_weight * ((q_pool[rows_i] - q_t[i]) / q_sd) ** 2
                        + settings.recent_weight * ((l_pool[rows_i] - l_t[i]) / l_sd) ** 2)  # fmt: skip
            o = np.lexsort((pool_p[rows_i], d))[:k]
            cand.append(rows_i[o])
            dist.append(d[o])
        for j, i in enumerate(in_win):
            for r, d in zip(cand[j][:k], dist[j][:k], strict=False):
                match_out.append(
                    (int(member_rows[i]), int(pool_p[r]), int(pool_m[r]), float(d), pop_itt)
                )
        t_rows = in_win
        # each member's k nearest risk-set rows (padded with -1 where fewer exist)
        cand_rows = np.full((len(t_rows), k), -1)
        for jj, c in enumerate(cand):
            cand_rows[jj, : len(c)] = c
        has = cand_rows >= 0
        # the outcome regression's weights: each comparison row's use over the matched sets
        used = np.bincount(cand_rows[has], minlength=len(pool_p)).astype(float)
        share = engaged[t_rows].astype(float)
        cand_person = np.where(has, pool_p[np.maximum(cand_rows, 0)], -1)
        n_c = len(np.unique(cand_person[has]))
        sets = _Sets(cand_rows, has, used, t_rows, share, n_c, cand_person)

        def counterfactual(y_pool: np.ndarray, ratio: bool, sets: _Sets = sets, pool_ok=pool_ok):
            return _counterfactual(sets, y_pool, z_pool, z_t, pool_ok, ratio)

        def add_rows(o, y1, y0, val, base, pops, sets: _Sets = sets):
            rows.extend(_estimate_rows(sets, analysis, o, y1, y0, val, base, pops))

        tp = t_person[t_rows]
        for o in [*outcomes, "deaths"]:
            if o == "deaths":
                y_pool = ((death[pool_p] >= pool_m + a) & (death[pool_p] <= pool_m + b)).astype(
                    float
                )
                y_t = ((death[t_person] >= alloc_m + a) & (death[t_person] <= alloc_m + b)).astype(
                    float
                )
                base = np.zeros(len(t_rows))  # everyone is alive at allocation
            else:
                j = pan.col(o)
                y_pool = _window_mean(cum[j], pool_p, pool_m + a, pool_m + b, death[pool_p])
                y_t = _window_mean(cum[j], t_person, alloc_m + a, alloc_m + b, death[t_person])
                base = _window_mean(cum[j], tp, alloc_m[t_rows] - 12, alloc_m[t_rows] - 1,
                                    death[tp])  # fmt: skip
            y0, val = counterfactual(y_pool, o in RATIO_CORRECTED)
            add_rows(o, y_t[t_rows], y0, val, base, (pop_itt, pop_cace))
        diagnostics[f"{pop_itt}:members"] = int(len(t_rows))
        diagnostics[f"{pop_itt}:share_engaged"] = round(float(share.mean()), 4)
        if not diagnose:
            continue
        # ---- the event study: members against their counterfactual month by month, from a
        # year before allocation (a placebo: nothing can have moved those months yet) to the
        # window's end; per member allocated, no cost counted after death on either side
        for rel in range(EVENT_STUDY_FIRST, b + 1):
            mt_ = alloc_m[t_rows] + rel
            inside_t = mt_ >= 0
            if not inside_t.any():
                continue
            mp = np.clip(pool_m + rel, 0, n_m - 1)
            y_pool = np.where(death[pool_p] >= pool_m + rel, pan.values[cost, pool_p, mp], 0.0)
            y1 = np.where(death[tp] >= mt_, pan.values[cost, tp, np.clip(mt_, 0, n_m - 1)], 0.0)
            # follow-up months as the estimate corrects them; months before allocation (matched
            # on, not what the score predicts) by the linear correction
            y0, _ = counterfactual(y_pool, rel >= 0)
            event_study.append((pop_itt, rel, int(inside_t.sum()), float(y1[inside_t].mean()),
                                float(y0[inside_t].mean())))  # fmt: skip
        # ---- the negative-control outcome (first window's matched sets): community care
        # contacts in the 12 months before allocation. The programme cannot have moved them, they
        # are not matched on, and they follow the same underlying need as crisis use: a
        # difference here is confounding the matching left (Lipsitch et al. 2010; Sofer et al.
        # 2016 on the pre-exposure outcome as a negative control)
        nc_outcome, (f_, l_) = NEGATIVE_CONTROL
        if window == windows[0] and nc_outcome in pan.columns:
            j = pan.col(nc_outcome)
            y_pool = _window_mean(cum[j], pool_p, pool_m + f_, pool_m + l_, death[pool_p])
            y_t = _window_mean(cum[j], tp, alloc_m[t_rows] + f_, alloc_m[t_rows] + l_, death[tp])
            y0, val = counterfactual(y_pool, False)
            add_rows(nc_outcome, y_t, y0, val, y_t, (NEGATIVE_CONTROL_POPULATION, None))
            realised[NEGATIVE_CONTROL_POPULATION] = member_rows[in_win]
    if diagnose:
        # ---- the placebo in time: the whole design again with every index a year before the
        # allocation (matched on the history before it), estimated on months -12..-4 (before the
        # run-up allocation reacts to): no programme existed then, so the interval should hold 0
        placebo = itt_rows(
            *args[:4], args[4] - PLACEBO_SHIFT, *args[5:], ["total_cost"], crisis_cols,
            settings, analysis, windows=(PLACEBO_WINDOW,),
            names=lambda w: (PLACEBO_POPULATION, None), diagnose=False,
        )  # fmt: skip
        rows += [r for r in placebo.rows if r[2] == "total_cost"]
        realised.update(placebo.realised_sets)
        diagnostics.update(sensitivity(rows))
    return DesignResult(rows, match_out, diagnostics, realised, event_study)


@dataclass
class _Sets:
    """One window's matched sets: each member's k nearest risk-set rows (padded with -1), the
    comparison person of each, each comparison row's use and the members' engagement."""

    cand_rows: np.ndarray  # (members, k) risk-set rows, -1 where fewer than k exist
    has: np.ndarray  # cand_rows >= 0
    used: np.ndarray  # (risk-set rows,) times each row is matched
    t_rows: np.ndarray  # the members (positions among the design's members)
    share: np.ndarray  # engaged (0/1) per member
    n_c: int  # distinct comparison people matched
    cand_person: np.ndarray  # (members, k) comparison person of each match, -1 for padding


def _counterfactual(sets: _Sets, y_pool, z_pool, z_t, pool_ok, ratio: bool):
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


def analytic_variance(sets: _Sets, val: np.ndarray, y1: np.ndarray | None = None) -> float:
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
    ``_counterfactual`` averages; ``y1``: the members' outcomes (None: the untreated noise
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


def _estimate_rows(sets: _Sets, analysis, o, y1, y0, val, base, pops) -> list[list]:
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
