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

This module owns the settings (``EvaluationSettings``), one analysis end to end (``evaluate``:
the comparison cohort, the estimates, and the output frames it assembles: estimates, balance,
trajectory with the primary design's event study, matches) and the primary analysis with its
sensitivity analyses (``evaluate_all``). The parts live beside it: ``panel`` (the dense
person-month panel), ``demographics`` (the strata), ``matching`` (the eligibility rule, the
candidates, the matching and the match table), ``did_estimates`` (the naive, DiD and death rows
and their bootstrap intervals), ``balance``, ``trajectory`` and the primary design
(``matched_design``). Everything here is plain functions over DataFrames;
``defs/evaluation.py`` wires them into Dagster and ``evaluation/validation.py`` runs them on the
generator's truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sim_pipeline.evaluation import matched_design
from sim_pipeline.evaluation.balance import balance
from sim_pipeline.evaluation.demographics import demographics, strata, strata_numeric
from sim_pipeline.evaluation.design_diagnostics import COUNTERFACTUAL_GROUP, NEGATIVE_CONTROL
from sim_pipeline.evaluation.did_estimates import (
    death_rows,
    did_row,
    naive_row,
    person_values,
    set_means,
)
from sim_pipeline.evaluation.matching import (
    CRISIS_METRICS,
    EligibilityRule,
    candidates,
    match_table,
    meets,
    nearest_matches,
)
from sim_pipeline.evaluation.panel import Panel, month_index
from sim_pipeline.evaluation.tables import (
    EvaluationBalance,
    EvaluationEstimates,
    EvaluationTrajectory,
)
from sim_pipeline.evaluation.trajectory import trajectory
from sim_pipeline.measures.cohort import cohort_people
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.warehouse.model import columns

BRACKET_POPULATIONS = ("itt", "per_protocol")

ESTIMATE_COLUMNS = [
    c for c in columns(EvaluationEstimates) if c not in ("price_year", "unit_cost_version")
]
BALANCE_COLUMNS = columns(EvaluationBalance)
TRAJECTORY_COLUMNS = columns(EvaluationTrajectory)


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


@dataclass(frozen=True)
class Prepared:
    """What every analysis of one panel reads and none changes: the outcomes, the cohort's
    people, every person's key, the panel's arrays and the demographics."""

    outcomes: list[str]
    treated: pd.DataFrame
    keys: list[str]
    panel: Panel
    demographics: dict


def prepare(
    panel: pd.DataFrame,
    cohort: pd.DataFrame,
    people: pd.DataFrame,
    months: Sequence[str],
    outcomes: Sequence[str] | None = None,
) -> Prepared:
    """The panel's arrays and the demographics `evaluate` reads (independent of the analysis's
    settings): built once for all the analyses of `evaluate_all`."""
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
    return Prepared(outcomes, treated, keys, pan, demographics(people, keys, months))


def evaluate(
    panel: pd.DataFrame,
    cohort: pd.DataFrame,
    people: pd.DataFrame,
    months: Sequence[str],
    settings: EvaluationSettings | None = None,
    *,
    analysis: str = "primary",
    outcomes: Sequence[str] | None = None,
    prepared: Prepared | None = None,
) -> Evaluation:
    """Match, estimate and diagnose one analysis (``prepared``: `prepare`'s result for the same
    panel, cohort, people, months and outcomes, shared by the analyses of `evaluate_all`).

    ``panel``: person_key, month, ``total_cost``, the five metrics and any other outcome columns
    (absent person-months are zeros). ``cohort``: the ``cohort`` table (person_key,
    allocation_date, programme_first_month, programme_last_month, itt, per_protocol).
    ``people``: person_key, sex, and either ``age_band`` by ``month`` (one row per person-month
    with a record) or nothing more; optional ``death_month`` per person. ``months``: the data's
    months in order.
    """
    s = settings or EvaluationSettings()
    months = sorted(months)
    data = prepared or prepare(panel, cohort, people, months, outcomes)
    outcomes, treated, keys, pan, demo = (
        data.outcomes, data.treated, data.keys, data.panel, data.demographics
    )  # fmt: skip
    death = demo["death"]

    t_person = np.array([pan.kidx[k] for k in treated["person_key"]], dtype=np.int64)
    alloc_m = month_index(months, pd.to_datetime(treated["allocation_date"]).dt.strftime("%Y-%m"))
    pf = month_index(months, treated["programme_first_month"])
    pl = month_index(months, treated["programme_last_month"])
    cost = pan.col("total_cost")

    # ---- candidates: (person, month) meeting the rule, never allocated, alive, full history
    allocated = np.zeros(len(keys), bool)
    allocated[t_person] = True
    cand_p, cand_m = candidates(pan, s.rule, s.min_history_months, alloc_m, allocated, death)

    # ---- greedy nearest-neighbour matching, hardest first, each comparison person once
    # (exactly on the sex and age-band stratum)
    t_str = strata(demo, t_person, alloc_m)
    c_str = strata(demo, cand_p, cand_m)
    matches = nearest_matches(
        pan, s, treated["person_key"].to_numpy(), t_person, alloc_m, pl, t_str, cand_p, cand_m,
        c_str,
    )  # fmt: skip

    # ---- per person windows and values
    b = s.baseline_months
    start_off = pf - alloc_m
    end_off = pl - alloc_m
    mt = matches["t"].to_numpy(dtype=int)
    c_person = matches["c_person"].to_numpy(dtype=int)
    c_idx = matches["c_month"].to_numpy(dtype=int)

    t_vals, t_valid, t_dead = person_values(
        pan, outcomes, death, b, t_person, alloc_m, start_off, end_off
    )
    c_vals, c_valid, c_dead = person_values(
        pan, outcomes, death, b, c_person, c_idx, start_off[mt], end_off[mt]
    )
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
            mt_v[in_set], s.history_windows,
        )  # fmt: skip

    # ---- the primary design: ITT and CACE on fixed windows, matched at the same calendar month
    # on a prognostic score, bias-corrected (``matched_design``)
    design = None
    if s.design is not None:
        crisis = [pan.col(m) for m in CRISIS_METRICS]
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
    estimates = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    diagnostics: dict[str, float | int | str] = {
        "eligibility_rule": s.rule.describe(),
        "baseline_months": b,
        "programme_people": len(treated),
        "programme_people_meeting_rule": int(meets(pan, s.rule, t_person, alloc_m).sum()),
        "programme_people_matched": int(len(np.unique(mt))),
        "comparison_people_eligible": int(len(np.unique(cand_p))),
        "comparison_people_matched": int(len(np.unique(c_person))),
        "mean_comparisons_per_member": round(len(mt) / max(len(np.unique(mt)), 1), 3),
        "bootstrap_replicates": s.bootstrap,
        **(design.diagnostics if design is not None else {}),
    }
    matched = match_table(
        analysis, months, treated["person_key"], keys, alloc_m, t_str, matches,
        design.matches if design is not None else None,
    )  # fmt: skip
    return Evaluation(
        estimates=estimates,
        balance=pd.DataFrame(bal_rows, columns=BALANCE_COLUMNS),
        trajectory=pd.DataFrame(traj_rows, columns=TRAJECTORY_COLUMNS),
        matches=matched,
        diagnostics=diagnostics,
    )


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
    data = prepare(panel, cohort, people, months)
    parts = [
        evaluate(panel, cohort, people, months, rs, analysis=name, prepared=data)
        for name, rs in runs.items()
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
