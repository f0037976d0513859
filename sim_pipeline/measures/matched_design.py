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
  (log cost over months -3..-1, half weight) and the rise in crisis contacts (log contacts of
  months -3..-1 over months -27..-4: what referral near a peak selects on), standardised, with
  replacement.
* **Bias correction** (Abadie and Imbens 2011): each comparison's outcome is moved by an outcome
  regression from the comparison's covariates to the member's: least squares of the outcome on
  the log score and the run-up over the matched comparisons (weighted by use), per outcome and
  window; local to the peaks members are matched at (a fit over the whole risk set, mostly
  people at their usual level, corrected less well on the tuning seeds). Doubly robust in the
  sense that a good match or a good regression is enough.
* **Inference**: a bootstrap that resamples members and comparison people (each with all their
  person-months) and re-runs the matching in every replicate; the prognostic and outcome
  regressions are held fixed. Replicates whose estimate is not finite are counted and reported
  (``bootstrap_failed``), never dropped silently.

Plain numpy (the Poisson fit is iteratively reweighted least squares); ``evaluation.evaluate``
calls ``itt_rows`` with its panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WINDOWS: tuple[tuple[int, int], ...] = ((0, 11), (0, 23))
METHOD = "matched_bias_corrected"
HISTORY = 12
LEVEL = (-48, -13)
RUNUP = (-3, -1)
MIN_PRIOR_CONTACTS = 1
# candidates kept per member, nearest first: a bootstrap replicate draws each comparison person
# with probability 0.63, so the first 60 hold 5 drawn people in all but ~1e-17 of replicates
NEAREST_KEPT = 60
RISE = (19, 20)  # feature columns: log crisis contacts months -3..-1 and -27..-4
LOCAL_CORRECTION = True
LOCAL_COLUMNS = 3  # intercept, log prognostic score, run-up


def itt_population(window: tuple[int, int]) -> str:
    return f"itt_months_{window[0]}_{window[1]}"


def cace_population(window: tuple[int, int]) -> str:
    return f"cace_months_{window[0]}_{window[1]}"


@dataclass(frozen=True)
class DesignSettings:
    controls: int = 5
    runup_weight: float = 0.5  # weight of the run-up distance beside the prognostic score
    rise_weight: float = 1.0  # weight of the rise in crisis contacts
    bootstrap: int = 500
    seed: int = 20180101


@dataclass
class DesignResult:
    rows: list[list]  # ESTIMATE_COLUMNS rows (with bootstrap_failed)
    matches: list[tuple[int, int, int, float, str]]  # member row, comparison person, month, d, pop
    diagnostics: dict[str, float | int | str]
    realised_sets: dict[str, np.ndarray]  # population -> member rows used


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
) -> DesignResult:
    """Estimates of the ITT and CACE on each window for every outcome (relative scale) and
    deaths (risk difference). ``pan``: the evaluation's dense panel; ``strata_num``: numeric
    (sex, age band) per person and month, shape (people, months, 2)."""
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
    rng = np.random.default_rng(settings.seed)
    k = settings.controls
    # bootstrap multiplicities: members and comparison people resampled with replacement
    n_t = len(t_person)
    b_n = settings.bootstrap
    boot_t = rng.integers(0, n_t, (b_n, n_t))
    uniq = np.unique(pool_p)
    pos = np.searchsorted(uniq, pool_p)
    boot_c = np.stack([np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))
                       for _ in range(b_n)])  # fmt: skip
    for window in WINDOWS:
        a, b = window
        in_win = np.nonzero(alloc_m + b <= n_m - 1)[0]
        pool_ok = pool_m + b <= n_m - 1
        pop_itt, pop_cace = itt_population(window), cace_population(window)
        if len(in_win) == 0:
            continue
        realised[pop_itt] = realised[pop_cace] = member_rows[in_win]
        # matched sets: for each member, the risk-set rows of its month, by distance
        cand: list[np.ndarray] = []
        dist: list[np.ndarray] = []
        for i in in_win:
            rows_i = np.nonzero(pool_ok & (pool_m == alloc_m[i]))[0]
            d = np.sqrt(((score_pool[rows_i] - score_t[i]) / s_sd) ** 2
                        + settings.runup_weight * ((r_pool[rows_i] - r_t[i]) / r_sd) ** 2
                        + settings.rise_weight * ((q_pool[rows_i] - q_t[i]) / q_sd) ** 2)  # fmt: skip
            o = np.lexsort((pool_p[rows_i], d))[:NEAREST_KEPT]
            cand.append(rows_i[o])
            dist.append(d[o])
        for j, i in enumerate(in_win):
            for r, d in zip(cand[j][:k], dist[j][:k], strict=False):
                match_out.append(
                    (int(member_rows[i]), int(pool_p[r]), int(pool_m[r]), float(d), pop_itt)
                )
        # weights over each member's ordered candidates: point estimate and replicates
        w_point = [_take_k(np.ones((1, len(c))), k)[0] for c in cand]
        w_boot = [_take_k(boot_c[:, pos[c]].astype(float), k) for c in cand]
        t_rows = in_win
        share = engaged[t_rows].astype(float)
        # member multiplicities per replicate (members outside the window get weight 0)
        member_w = np.zeros((b_n, len(t_rows)))
        lookup = np.full(n_t, -1)
        lookup[t_rows] = np.arange(len(t_rows))
        for bi in range(b_n):
            sel = lookup[boot_t[bi]]
            sel = sel[sel >= 0]
            member_w[bi] = np.bincount(sel, minlength=len(t_rows))
        share_b = (member_w * share).sum(axis=1) / np.maximum(member_w.sum(axis=1), 1)
        for o in [*outcomes, "deaths"]:
            if o == "deaths":
                y_pool = ((death[pool_p] >= pool_m + a) & (death[pool_p] <= pool_m + b)).astype(
                    float
                )
                y_t = ((death[t_person] >= alloc_m + a) & (death[t_person] <= alloc_m + b)).astype(
                    float
                )
            else:
                j = pan.col(o)
                y_pool = _window_mean(cum[j], pool_p, pool_m + a, pool_m + b, death[pool_p])
                y_t = _window_mean(cum[j], t_person, alloc_m + a, alloc_m + b, death[t_person])
            if LOCAL_CORRECTION:
                # the regression on the matched comparisons only (weighted by use): local to
                # the peaks members are matched at, where a fit over the whole risk set is poor
                used = np.zeros(len(pool_p))
                for jj in range(len(t_rows)):
                    np.add.at(used, cand[jj], w_point[jj])
                sel = used > 0
                zl = z_pool[:, :LOCAL_COLUMNS]
                sw = np.sqrt(used[sel])
                coef, *_ = np.linalg.lstsq(zl[sel] * sw[:, None], y_pool[sel] * sw, rcond=None)
                fit_pool, fit_t = zl @ coef, z_t[:, :LOCAL_COLUMNS] @ coef
            else:
                coef, *_ = np.linalg.lstsq(z_pool[pool_ok], y_pool[pool_ok], rcond=None)
                fit_pool, fit_t = z_pool @ coef, z_t @ coef
            # each member's counterfactual: matched outcomes moved to the member's covariates
            y0 = np.array([
                (w_point[jj] * (y_pool[cand[jj]] - fit_pool[cand[jj]])).sum() / k + fit_t[i]
                for jj, i in enumerate(t_rows)
            ])  # fmt: skip
            y0_b = np.stack([
                (w_boot[jj] * (y_pool[cand[jj]] - fit_pool[cand[jj]])[None, :]).sum(axis=1) / k
                + fit_t[i]
                for jj, i in enumerate(t_rows)
            ], axis=1)  # (replicates, members)  # fmt: skip
            y1 = y_t[t_rows]
            tw = member_w.sum(axis=1)
            m1_b = (member_w * y1).sum(axis=1) / np.maximum(tw, 1)
            m0_b = (member_w * y0_b).sum(axis=1) / np.maximum(tw, 1)
            if o == "deaths":
                base = np.zeros(len(t_rows))  # everyone is alive at allocation
            else:
                tp = t_person[t_rows]
                base = _window_mean(cum[pan.col(o)], tp, alloc_m[t_rows] - 12,
                                    alloc_m[t_rows] - 1, death[tp])  # fmt: skip
            n_c = len({int(pool_p[c]) for cs in cand for c in cs[:k]})
            if o == "deaths":
                est = float(y1.mean() - y0.mean())
                boot = m1_b - m0_b
                scale = "risk_difference"
                cace, cace_b = est / share.mean(), boot / share_b
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    est = float(y1.mean() / y0.mean() - 1) if y0.mean() > 0 else np.nan
                    boot = np.where(m0_b > 0, m1_b / m0_b - 1, np.nan)
                    cace = est / share.mean() if share.mean() > 0 else np.nan
                    cace_b = boot / share_b
                scale = "relative_change"
            for pop_name, e, bt in ((pop_itt, est, boot), (pop_cace, cace, cace_b)):
                ok = np.isfinite(bt)
                lo, hi = np.percentile(bt[ok], [2.5, 97.5]) if ok.any() else (np.nan, np.nan)
                rows.append([
                    analysis, pop_name, o, METHOD, scale, e, float(lo), float(hi), len(t_rows),
                    n_c, float(base.mean()), float(y1.mean()), np.nan, float(y0.mean()), np.nan,
                    int((~ok).sum()),
                ])  # fmt: skip
        diagnostics[f"{pop_itt}:members"] = int(len(t_rows))
        diagnostics[f"{pop_itt}:share_engaged"] = round(float(share.mean()), 4)
    return DesignResult(rows, match_out, diagnostics, realised)


def _take_k(w: np.ndarray, k: int) -> np.ndarray:
    """Weights of the first ``k`` units along each row of multiplicities ``w`` (the k nearest,
    a resampled person counting as many times as drawn; the last one partly)."""
    before = np.cumsum(w, axis=1) - w
    return np.clip(np.minimum(w, k - before), 0, None)
