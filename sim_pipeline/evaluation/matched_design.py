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

This module owns the design's settings, its windows and population names, and ``itt_rows``:
the risk set, the prognostic score's fit, the matching and, per window, the estimates and the
diagnostics. The score's inputs and its Poisson model (iteratively reweighted least squares,
plain numpy) are ``prognostic_score``'s; the bias correction, the analytic variance and the
estimate rows ``design_estimates``'; the diagnostics' definitions, the E-values and their plain
words ``design_diagnostics``'. ``comparison.evaluate`` calls ``itt_rows`` with its panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sim_pipeline.evaluation.design_diagnostics import (
    EVENT_STUDY_FIRST,
    NEGATIVE_CONTROL,
    NEGATIVE_CONTROL_POPULATION,
    PLACEBO_POPULATION,
    PLACEBO_SHIFT,
    PLACEBO_WINDOW,
    sensitivity,
)
from sim_pipeline.evaluation.design_estimates import (
    RATIO_CORRECTED,
    MatchedSets,
    corrected_counterfactual,
    estimate_rows,
)
from sim_pipeline.evaluation.prognostic_score import (
    RISE,
    history_features,
    poisson_fit,
    poisson_predict,
    runup,
    window_mean,
)

WINDOWS: tuple[tuple[int, int], ...] = ((0, 11), (0, 23))
MIN_PRIOR_CONTACTS = 1


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
    x_pool = history_features(pan, crisis_cum, strata_num, pool_p, pool_m)
    x_t = history_features(pan, crisis_cum, strata_num, t_person, alloc_m)
    scale_x = x_pool.std(axis=0)
    scale_x = np.where(scale_x > 0, scale_x, 1.0)
    centre = x_pool.mean(axis=0)
    xs_pool, xs_t = (x_pool - centre) / scale_x, (x_t - centre) / scale_x

    # ---- prognostic score: Poisson model of months 0-11 mean cost, comparisons only
    # fitted on people never allocated: their outcomes are untreated in every world, so the
    # score (and the matching) depends on nothing a member's programme could change
    fits = (pool_m + w1 <= n_m - 1) & (alloc_of[pool_p] == np.iinfo(np.int64).max)
    y_fit = window_mean(cum[cost], pool_p[fits], pool_m[fits] + w0, pool_m[fits] + w1,
                        death[pool_p[fits]])  # fmt: skip
    beta = poisson_fit(xs_pool[fits], y_fit)
    score_pool = np.log(poisson_predict(beta, xs_pool))
    score_t = np.log(poisson_predict(beta, xs_t))
    t_fit = alloc_m + w1 <= n_m - 1
    y_t0 = window_mean(cum[cost], t_person[t_fit], alloc_m[t_fit] + w0, alloc_m[t_fit] + w1,
                       death[t_person[t_fit]])  # fmt: skip
    # calibration of the prognostic model among members (1: it predicts them as well as it
    # predicts comparisons; above 1: members use more than comparisons with their history)
    prognostic_ratio = float(y_t0.mean() / np.exp(score_t[t_fit]).mean()) if t_fit.any() else np.nan
    # the same among comparisons at a peak like the members' (run-up over long-run level in the
    # members' range): tells model misfit at peaks from selection on what the data do not show
    rise_pool = runup(pan, pool_p, pool_m) - x_pool[:, 12 + 3 + 2]
    rise_t = runup(pan, t_person, alloc_m) - x_t[:, 12 + 3 + 2]
    peak = fits & (rise_pool >= np.quantile(rise_t, 0.25))
    peak_ratio = (
        float(
            window_mean(cum[cost], pool_p[peak], pool_m[peak] + w0, pool_m[peak] + w1,
                        death[pool_p[peak]]).mean()
            / np.exp(score_pool[peak]).mean()
        )
        if peak.any()
        else np.nan
    )  # fmt: skip
    r_pool, r_t = runup(pan, pool_p, pool_m), runup(pan, t_person, alloc_m)
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
        sets = MatchedSets(cand_rows, has, used, t_rows, share, n_c, cand_person)

        def counterfactual(
            y_pool: np.ndarray, ratio: bool, sets: MatchedSets = sets, pool_ok=pool_ok
        ):
            return corrected_counterfactual(sets, y_pool, z_pool, z_t, pool_ok, ratio)

        def add_rows(o, y1, y0, val, base, pops, sets: MatchedSets = sets):
            rows.extend(estimate_rows(sets, analysis, o, y1, y0, val, base, pops))

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
                y_pool = window_mean(cum[j], pool_p, pool_m + a, pool_m + b, death[pool_p])
                y_t = window_mean(cum[j], t_person, alloc_m + a, alloc_m + b, death[t_person])
                base = window_mean(cum[j], tp, alloc_m[t_rows] - 12, alloc_m[t_rows] - 1,
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
            y_pool = window_mean(cum[j], pool_p, pool_m + f_, pool_m + l_, death[pool_p])
            y_t = window_mean(cum[j], tp, alloc_m[t_rows] + f_, alloc_m[t_rows] + l_, death[tp])
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
