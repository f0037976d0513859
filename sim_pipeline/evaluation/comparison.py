"""Honest evaluation: a matched comparison cohort and difference-in-differences.

The programme review compared people's use before and after allocation, and people are allocated
at their peak, so their use falls anyway (regression to the mean). Here every naive before/after
figure stands beside a difference-in-differences (DiD) estimate against a comparison cohort drawn
by the same rule at the same point:

* **Eligibility rule** (``EligibilityRule``): trailing ``window_months`` counts of contact metrics,
  any of them at or above its threshold (default: 2+ s136 detentions, 12+ A&E attendances or 12+
  police deployments in the 12 months before).
* **Pseudo-index date** (risk-set matching, Li, Propert and Rosenbaum 2001): a person never
  allocated may serve as a comparison at any month of the allocation period in which they meet
  the rule, with a full 12-month history, alive and not allocated; each person is used once, at
  their best-matching month. The month plays the part of the allocation month.
* **Matching**: exactly on sex and age band at the index month; closely (nearest neighbours in
  standardised Euclidean distance, within ``caliper``) on log mean monthly cost and log crisis
  contacts (A&E, ambulance, police, s136) per month in months -48..-4 (the person's usual level,
  cut at the start of the data) and -3..-1 (the run-up to the index: prior trajectory); index
  months at most ``max_month_gap`` apart, and the comparison's follow-up must fit in the data as
  the member's does. Up to ``controls_per_person`` comparison people per programme member,
  greedily, members with the highest run-up first (the hardest to match), each comparison
  person used once.
* **Windows**: the programme member's baseline is the ``baseline_months`` before allocation and
  follow-up their programme period (``cohort``); each comparison person gets the same windows
  relative to their pseudo-index month. Months after death, or past the data, are not counted.
* **Estimates** per population (itt, per_protocol) and outcome, on per-person mean monthly values
  averaged over people (the headline's "ratio of means"):
  ``naive = T_follow / T_base - 1``; ``did = (dT - dC) / (T_base + dC)`` where ``dT``, ``dC`` are
  the mean changes of the programme members and their matched comparisons (each matched set
  weighted as one programme member), i.e. the change relative to the counterfactual follow-up
  level. ``rtm_share = dC / dT``: the share of the naive change the comparison group shows too.
  Deaths are a risk difference over follow-up (nobody has died before their index month).
* **Confidence intervals**: for the naive and difference-in-differences rows, 95% percentile
  intervals from a person-level bootstrap that resamples matched sets (a programme member with
  their comparisons), ``bootstrap`` replicates, seeded; the primary design's rows carry its
  analytic interval (``design_estimates.analytic_variance``).
* **Balance**: standardised mean differences of the matching covariates and baseline metric rates,
  against the whole eligible pool (each person at the first month they met the rule) and against
  the matched comparisons.

Everything here is plain functions over DataFrames; ``defs/evaluation.py`` wires them into
Dagster and ``evaluation/validation.py`` runs them on the generator's truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sim_pipeline.evaluation import matched_design
from sim_pipeline.evaluation.balance import balance
from sim_pipeline.evaluation.demographics import demographics, strata, strata_numeric
from sim_pipeline.evaluation.design_diagnostics import COUNTERFACTUAL_GROUP, NEGATIVE_CONTROL
from sim_pipeline.evaluation.did_estimates import death_rows, did_row, naive_row, set_means
from sim_pipeline.evaluation.panel import Panel, month_index
from sim_pipeline.evaluation.tables import (
    EvaluationBalance,
    EvaluationEstimates,
    EvaluationMatches,
    EvaluationTrajectory,
)
from sim_pipeline.evaluation.trajectory import trajectory
from sim_pipeline.measures.cohort import cohort_people
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.warehouse.model import columns

BRACKET_POPULATIONS = ("itt", "per_protocol")
# Contacts that make up "crisis use" in the matching distance (bed days enter through cost).
CRISIS_METRICS = ("ae_attendances", "ambulance_resources", "police_deployments", "s136_detentions")

ESTIMATE_COLUMNS = [
    c for c in columns(EvaluationEstimates) if c not in ("price_year", "unit_cost_version")
]
BALANCE_COLUMNS = columns(EvaluationBalance)
TRAJECTORY_COLUMNS = columns(EvaluationTrajectory)
MATCH_COLUMNS = columns(EvaluationMatches)


@dataclass(frozen=True)
class EligibilityRule:
    """Met in a month when any trailing count reaches its threshold."""

    min_counts: Mapping[str, int] = field(
        default_factory=lambda: {
            "s136_detentions": 2,
            "ae_attendances": 12,
            "police_deployments": 12,
        }
    )
    window_months: int = 12

    def __post_init__(self) -> None:
        unknown = set(self.min_counts) - set(METRICS)
        if unknown or not self.min_counts:
            raise ValueError(f"eligibility rule needs metrics from {METRICS}; got {unknown}")
        if any(v < 1 for v in self.min_counts.values()) or self.window_months < 1:
            raise ValueError("eligibility thresholds and window must be at least 1")

    @classmethod
    def parse(cls, text: str, window_months: int = 12) -> EligibilityRule:
        """``"s136_detentions>=2, ae_attendances>=12"`` (any of)."""
        counts = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition(">=")
            if not value:
                raise ValueError(f"eligibility rule part {part!r} is not metric>=count")
            counts[name.strip()] = int(value)
        return cls(counts, window_months)

    def scaled(self, factor: float) -> EligibilityRule:
        return replace(
            self, min_counts={k: max(1, round(v * factor)) for k, v in self.min_counts.items()}
        )

    def describe(self) -> str:
        parts = [f"{k} >= {v}" for k, v in self.min_counts.items()]
        return f"any of ({', '.join(parts)}) in the {self.window_months} months before"


@dataclass(frozen=True)
class EvaluationSettings:
    rule: EligibilityRule = field(default_factory=EligibilityRule)
    baseline_months: int = 12
    controls_per_person: int = 3
    caliper: float = 1.5  # Euclidean distance over the standardised covariates
    # history windows (months relative to the index; cut at the start of the data) matched on:
    # the person's usual level, then the run-up to the index
    history_windows: tuple[tuple[int, int], ...] = ((-48, -4), (-3, -1))
    min_history_months: int = 24
    max_month_gap: int = 12
    bootstrap: int = 1000
    seed: int = 20180101
    # the primary design (None: the difference-in-differences bracket only)
    design: matched_design.DesignSettings | None = field(
        default_factory=matched_design.DesignSettings
    )


@dataclass
class Evaluation:
    estimates: pd.DataFrame
    balance: pd.DataFrame
    trajectory: pd.DataFrame
    matches: pd.DataFrame
    diagnostics: dict[str, float | int | str]


def evaluate(
    panel: pd.DataFrame,
    cohort: pd.DataFrame,
    people: pd.DataFrame,
    months: Sequence[str],
    settings: EvaluationSettings | None = None,
    *,
    analysis: str = "primary",
    outcomes: Sequence[str] | None = None,
) -> Evaluation:
    """Match, estimate and diagnose one analysis.

    ``panel``: person_key, month, ``total_cost``, the five metrics and any other outcome columns
    (absent person-months are zeros). ``cohort``: the ``cohort`` table (person_key,
    allocation_date, programme_first_month, programme_last_month, itt, per_protocol).
    ``people``: person_key, sex, and either ``age_band`` by ``month`` (one row per person-month
    with a record) or nothing more; optional ``death_month`` per person. ``months``: the data's
    months in order.
    """
    s = settings or EvaluationSettings()
    months = sorted(months)
    if "total_cost" not in panel.columns:
        raise ValueError("panel needs a total_cost column")
    outcomes = list(outcomes or [c for c in panel.columns if c not in ("person_key", "month")])
    treated = cohort_people(cohort).reset_index(drop=True)
    keys = sorted(set(panel["person_key"]) | set(treated["person_key"]))
    # (the design's negative-control outcome rides along when the panel has it)
    extra = [c for c in (NEGATIVE_CONTROL[0],) if c in panel.columns]
    needed = list(dict.fromkeys(["total_cost", *METRICS, *outcomes, *extra]))
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise ValueError(f"panel lacks column(s) {', '.join(missing)}")
    pan = Panel(panel[["person_key", "month", *needed]], keys, months)
    n_m = len(months)
    demo = demographics(people, keys, months)
    death = demo["death"]

    t_person = np.array([pan.kidx[k] for k in treated["person_key"]], dtype=np.int64)
    alloc_m = month_index(months, pd.to_datetime(treated["allocation_date"]).dt.strftime("%Y-%m"))
    pf = month_index(months, treated["programme_first_month"])
    pl = month_index(months, treated["programme_last_month"])

    # ---- candidates: (person, month) meeting the rule, never allocated, alive, full history
    cost = pan.col("total_cost")
    hist = s.min_history_months
    lo, hi = int(alloc_m.min()), int(alloc_m.max())
    allocated = np.zeros(len(keys), bool)
    allocated[t_person] = True
    cand_months = np.arange(max(lo, hist), min(hi, n_m - 1) + 1)
    rule_cols = {k: pan.col(k) for k in s.rule.min_counts}
    cp, cm = [], []
    everyone = np.arange(len(keys))
    for m in cand_months:
        meets = _meets(pan, rule_cols, s.rule, everyone, np.full(len(keys), m))
        ok = meets & ~allocated & (death >= m)  # alive at the start of the month
        idx = np.nonzero(ok)[0]
        cp.append(idx)
        cm.append(np.full(len(idx), m))
    cand_p = np.concatenate(cp) if cp else np.zeros(0, np.int64)
    cand_m = np.concatenate(cm) if cm else np.zeros(0, np.int64)

    crisis = [pan.col(m) for m in CRISIS_METRICS]

    def features(person: np.ndarray, month: np.ndarray) -> np.ndarray:
        """log(1 + mean per month) of cost and of crisis contacts in each history window."""
        out = []
        for first, last in s.history_windows:
            c, n = pan.window_sum(cost, person, month + first, month + last)
            k = sum(pan.window_sum(j, person, month + first, month + last)[0] for j in crisis)
            out += [np.log1p(c / np.maximum(n, 1)), np.log1p(k / np.maximum(n, 1))]
        return np.column_stack(out)

    t_feat = features(t_person, alloc_m)
    c_feat = features(cand_p, cand_m)
    # standardise by the spread over members and candidates together (a handful of near-alike
    # members alone would make any difference look huge)
    scale = np.vstack([t_feat, c_feat]).std(axis=0) if len(c_feat) else np.ones(t_feat.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    t_str = strata(demo, t_person, alloc_m)
    c_str = strata(demo, cand_p, cand_m)

    # ---- greedy nearest-neighbour matching, hardest first, each comparison person once
    used = np.zeros(len(keys), bool)
    match_rows = []
    order = np.lexsort((treated["person_key"].to_numpy(), -t_feat[:, -2]))
    by_stratum: dict[str, np.ndarray] = {}
    for st in np.unique(c_str):
        by_stratum[st] = np.nonzero(c_str == st)[0]
    for i in order:
        pool = by_stratum.get(t_str[i])
        if pool is None:
            continue
        # the comparison's follow-up must fit in the data as the member's does, else it would
        # only contribute the months nearest its peak
        fits = cand_m[pool] + (pl[i] - alloc_m[i]) <= n_m - 1
        near = np.abs(cand_m[pool] - alloc_m[i]) <= s.max_month_gap
        pool = pool[~used[cand_p[pool]] & near & fits]
        if not len(pool):
            continue
        d = np.sqrt((((c_feat[pool] - t_feat[i]) / scale) ** 2).sum(axis=1))
        keep = d <= s.caliper
        pool, d = pool[keep], d[keep]
        o = np.lexsort((cand_m[pool], cand_p[pool], d))
        chosen: list[int] = []
        seen: set[int] = set()
        for c in pool[o]:
            if cand_p[c] in seen:
                continue
            seen.add(int(cand_p[c]))
            chosen.append(int(c))
            if len(chosen) == s.controls_per_person:
                break
        for c in chosen:
            used[cand_p[c]] = True
            match_rows.append((i, int(cand_p[c]), int(cand_m[c]), float(d[pool == c][0])))

    matches = pd.DataFrame(match_rows, columns=["t", "c_person", "c_month", "distance"])
    first_m = pd.Period(months[0], "M")

    def label(m: np.ndarray | int) -> list[str] | str:
        if np.ndim(m) == 0:
            return str(first_m + int(m))
        return [str(first_m + int(x)) for x in m]

    match_table = pd.DataFrame(
        {
            "analysis": analysis,
            "person_key": treated["person_key"].to_numpy()[matches["t"].to_numpy(dtype=int)],
            "comparison_person_key": [keys[p] for p in matches["c_person"]],
            "index_month": label(alloc_m[matches["t"].to_numpy(dtype=int)]),
            "pseudo_index_month": label(matches["c_month"].to_numpy()),
            "stratum": t_str[matches["t"].to_numpy(dtype=int)],
            "distance": matches["distance"].round(6),
        },
        columns=MATCH_COLUMNS,
    )

    # ---- per person windows and values
    b = s.baseline_months
    start_off = pf - alloc_m
    end_off = pl - alloc_m
    mt = matches["t"].to_numpy(dtype=int)
    c_person = matches["c_person"].to_numpy(dtype=int)
    c_idx = matches["c_month"].to_numpy(dtype=int)

    def person_values(person, index, s_off, e_off):
        """Baseline and follow-up monthly means per outcome, validity, death in follow-up."""
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

    t_vals, t_valid, t_dead = person_values(t_person, alloc_m, start_off, end_off)
    c_vals, c_valid, c_dead = person_values(c_person, c_idx, start_off[mt], end_off[mt])
    # a comparison person whose windows fall outside the data does not count in their set
    mt_v, c_person_v, c_idx_v = mt[c_valid], c_person[c_valid], c_idx[c_valid]

    rng = np.random.default_rng(s.seed)
    rows, traj_rows, bal_rows = [], [], []
    for pop in BRACKET_POPULATIONS:
        members = np.nonzero(treated[pop].astype(bool).to_numpy())[0]
        naive_set = members[t_valid[members]]
        did_set = naive_set[np.isin(naive_set, mt_v)]
        naive_draws = rng.integers(0, max(len(naive_set), 1), (s.bootstrap, len(naive_set)))
        did_draws = rng.integers(0, max(len(did_set), 1), (s.bootstrap, len(did_set)))
        for o in outcomes:
            tb, tf = t_vals[o]
            cb, cf = c_vals[o]
            rows.append(naive_row(analysis, pop, o, tb[naive_set], tf[naive_set], naive_draws))
            if len(did_set):
                rows.append(
                    did_row(
                        analysis, pop, o, tb[did_set], tf[did_set],
                        set_means(cb[c_valid], mt_v, did_set),
                        set_means(cf[c_valid], mt_v, did_set),
                        did_draws, int(np.isin(mt_v, did_set).sum()),
                    )
                )  # fmt: skip
        rows += death_rows(
            analysis, pop, t_dead, naive_set, did_set,
            set_means(c_dead[c_valid], mt_v, did_set), naive_draws, did_draws,
            int(np.isin(mt_v, did_set).sum()),
        )  # fmt: skip
        in_set = np.isin(mt_v, did_set)
        traj_rows += trajectory(
            analysis, pop, pan, cost, t_person[did_set], alloc_m[did_set], death,
            c_person_v[in_set], c_idx_v[in_set],
        )  # fmt: skip
        bal_rows += balance(
            analysis, pop, pan, t_person[members], alloc_m[members], t_person[did_set],
            alloc_m[did_set], cand_p, cand_m, c_person_v[in_set], c_idx_v[in_set],
            mt_v[in_set], features, s.history_windows,
        )  # fmt: skip

    # ---- the primary design: ITT and CACE on fixed windows, matched at the same calendar month
    # on a prognostic score, bias-corrected (``matched_design``)
    design = None
    if s.design is not None:
        design = matched_design.itt_rows(
            pan, death, strata_numeric(demo), t_person, alloc_m,
            treated["per_protocol"].astype(bool).to_numpy(), allocated, outcomes,
            crisis, s.design, analysis,
        )  # fmt: skip
        rows += design.rows
        # the event study: members against their bias-corrected matched counterfactual, month
        # by month from a year before allocation (the pre-period is a placebo)
        for pop, rel, n, m1, m0 in design.event_study:
            traj_rows.append([analysis, pop, "programme", rel, n, m1])
            traj_rows.append([analysis, pop, COUNTERFACTUAL_GROUP, rel, n, m0])
        match_table = pd.concat(
            [
                match_table,
                pd.DataFrame(
                    {
                        "analysis": analysis,
                        "person_key": [treated["person_key"].iloc[i] for i, *_ in design.matches],
                        "comparison_person_key": [keys[p] for _, p, *_ in design.matches],
                        "index_month": [label(alloc_m[i]) for i, *_ in design.matches],
                        "pseudo_index_month": [label(m) for _, _, m, *_ in design.matches],
                        "stratum": design_stratum(design.matches),
                        "distance": [round(d, 6) for *_, d, _ in design.matches],
                    },
                    columns=MATCH_COLUMNS,
                ),
            ],
            ignore_index=True,
        )
    estimates = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    diagnostics: dict[str, float | int | str] = {
        "eligibility_rule": s.rule.describe(),
        "baseline_months": b,
        "programme_people": len(treated),
        "programme_people_meeting_rule": int(
            _meets(pan, rule_cols, s.rule, t_person, alloc_m).sum()
        ),
        "programme_people_matched": int(len(np.unique(mt))),
        "comparison_people_eligible": int(len(np.unique(cand_p))),
        "comparison_people_matched": int(len(np.unique(c_person))),
        "mean_comparisons_per_member": round(len(mt) / max(len(np.unique(mt)), 1), 3),
        "bootstrap_replicates": s.bootstrap,
        **(design.diagnostics if design is not None else {}),
    }
    return Evaluation(
        estimates=estimates,
        balance=pd.DataFrame(bal_rows, columns=BALANCE_COLUMNS),
        trajectory=pd.DataFrame(traj_rows, columns=TRAJECTORY_COLUMNS),
        matches=match_table,
        diagnostics=diagnostics,
    )


def design_stratum(matches) -> list[str]:
    """The matched-design rows' stratum column: the window's population they serve."""
    return [f"design:{pop}" for *_, pop in matches]


def _meets(pan: Panel, rule_cols, rule: EligibilityRule, person, month) -> np.ndarray:
    out = np.zeros(len(person), bool)
    month = np.clip(month, 0, pan.cum.shape[2] - 1)  # an index before the data: what is there
    for k, j in rule_cols.items():
        trailing = (
            pan.cum[j, person, month]
            - pan.cum[j, person, np.maximum(0, month - rule.window_months)]
        )
        out |= trailing >= rule.min_counts[k]
    return out


def evaluate_all(
    panel: pd.DataFrame,
    cohort: pd.DataFrame,
    people: pd.DataFrame,
    months: Sequence[str],
    settings: EvaluationSettings | None = None,
    *,
    sensitivity: bool = True,
) -> Evaluation:
    """The primary analysis and, with ``sensitivity``, the same with a 6- and 18-month baseline
    and with every eligibility threshold a quarter lower and a quarter higher. The sensitivity
    analyses re-run the difference-in-differences bracket only: the primary design uses neither
    the baseline window nor the eligibility rule, so it would repeat the primary's figures."""
    s = settings or EvaluationSettings()
    runs = {"primary": s}
    if sensitivity:
        bracket = replace(s, design=None)
        runs |= {
            "baseline_6_months": replace(bracket, baseline_months=6),
            "baseline_18_months": replace(bracket, baseline_months=18),
            "threshold_lower": replace(bracket, rule=s.rule.scaled(0.75)),
            "threshold_higher": replace(bracket, rule=s.rule.scaled(1.25)),
        }
    parts = [
        evaluate(panel, cohort, people, months, rs, analysis=name) for name, rs in runs.items()
    ]
    diagnostics = {
        f"{name}:{k}" if name != "primary" else k: v
        for name, part in zip(runs, parts, strict=True)
        for k, v in part.diagnostics.items()
    }
    return Evaluation(
        estimates=pd.concat([p.estimates for p in parts], ignore_index=True),
        balance=pd.concat([p.balance for p in parts], ignore_index=True),
        trajectory=pd.concat([p.trajectory for p in parts], ignore_index=True),
        matches=pd.concat([p.matches for p in parts], ignore_index=True),
        diagnostics=diagnostics,
    )
