"""The evaluation against the generator's truth: one small seed, with and without a known effect.

The generator is run twice with the same seed, with no effect (``true_effect`` 1.0) and with
a 30% fall in every crisis contact while engaged (0.7); the same seed gives the same people,
histories, allocations and every event outside engagement, so the two runs differ only by the
effect. The evaluation (`sim_pipeline.measures.evaluation.evaluate`, what the `evaluation`
asset runs) is applied to each run's truth (`sim_pipeline.experiments.coverage.truth_inputs`:
no linkage error). The target is the *realised* effect: the members' mean follow-up cost with
the effect over the same without it, computed here from the two truth panels (partial first and
last months and stays that began before engagement dilute the 0.7 multiplier to about -0.15
(ITT) and -0.21 (per-protocol) in cost).

Monte Carlo context. README "Measured" (``python -m sim_pipeline.experiments.coverage``, seeds
1-20, 2,000 + 600 + 108 people) reports coverage of the realised effect by the 95% DiD interval
of 95% (ITT) and 85% (per-protocol) at 0.7, and of zero with no effect 90% / 85%. At this
test's size (300 general + 600 comparison + 108 members, 1,000 replicates), over seeds 101-130
(measured before this seed was fixed; about 20 s a seed):

                                              ITT                       per-protocol
  interval covers the realised effect (0.7)   28/30                     28/30
  interval covers zero (no effect)            26/30                     26/30
  interval at 0.7 excludes zero               15/30                     18/30
  naive further from realised than the DiD    18/30                     23/30
  mean realised / DiD / naive at 0.7          -0.150 / -0.175 / -0.245  -0.213 / -0.239 / -0.330
  mean DiD / naive without an effect          -0.032 / -0.113           -0.035 / -0.149

So one interval misses in about one seed in ten, and all four asserted here hold together in
24 of the 30 seeds. Seed 101 was fixed by a rule set beforehand (the first of the range), not
by its result; it covers in both populations and both runs
(ITT: realised -0.147, DiD -0.004 [-0.170, +0.217]; per-protocol: realised -0.226, DiD -0.127
[-0.289, +0.102]; no effect: +0.160 [-0.029, +0.412] and +0.119 [-0.075, +0.376]). A failure
here after a change to the evaluation or the generator means: rerun the coverage experiment
before believing the intervals, not pick another seed.

Not asserted, because it does not hold at this size: that the interval at 0.7 excludes zero
(the realised effect is about -0.15 / -0.21 and the interval's half-width about 0.17 / 0.18,
so it excludes zero in half to three fifths of the seeds; seed 101 does not), and that the
naive estimate is further from the realised effect than the DiD (see the table; on seed 101
it holds for per-protocol only).
"""

from __future__ import annotations

import pandas as pd
import pytest

from sim_pipeline.config import REFERENCE_DIR
from sim_pipeline.experiments.coverage import truth_inputs
from sim_pipeline.measures.costs import load_unit_costs
from sim_pipeline.measures.evaluation import EvaluationSettings, evaluate
from sim_pipeline.synthetic import generate

SEED, PEOPLE, COMPARISON_PEOPLE, EFFECT = 101, 300, 600, 0.7
POPULATIONS = ("itt", "per_protocol")


def _realised(panel: pd.DataFrame, cohort: pd.DataFrame, members: pd.Series) -> float:
    """Mean over ``members`` of their mean monthly total cost over the programme window
    (first to last programme month, absent months are zero), from the truth panel."""
    w = panel.merge(cohort[["person_key", "programme_first_month", "programme_last_month"]])
    inside = w[
        (w["month"] >= w["programme_first_month"]) & (w["month"] <= w["programme_last_month"])
    ]
    months = cohort.set_index("person_key")["programme_months"]
    per_person = (
        inside.groupby("person_key")["total_cost"].sum().reindex(months.index, fill_value=0)
    )
    return float((per_person / months.clip(lower=1)).loc[members].mean())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    unit_costs = load_unit_costs(
        REFERENCE_DIR / "unit_costs.csv", "2018/19", REFERENCE_DIR / "price_index.csv"
    )
    root = tmp_path_factory.mktemp("evaluation_truth")
    out = {}
    for effect in (1.0, EFFECT):
        landing, truth = root / f"landing_{effect}", root / f"truth_{effect}"
        generate(
            landing, truth, seed=SEED, people=PEOPLE, comparison_people=COMPARISON_PEOPLE,
            true_effect=effect,
        )  # fmt: skip
        panel, cohort, people, months = truth_inputs(truth, unit_costs)
        ev = evaluate(panel, cohort, people, months, EvaluationSettings(bootstrap=1000, seed=SEED))
        out[effect] = {"panel": panel, "cohort": cohort, "ev": ev}
    return out


def _row(ev, population: str, method: str = "difference_in_differences") -> pd.Series:
    e = ev.estimates
    r = e[
        (e["population"] == population) & (e["outcome"] == "total_cost") & (e["method"] == method)
    ]
    assert len(r) == 1, r
    return r.iloc[0]


def _realised_effects(runs) -> dict[str, float]:
    out = {}
    for pop in POPULATIONS:
        cohort = runs[EFFECT]["cohort"]
        members = cohort.loc[cohort[pop].astype(bool), "person_key"]
        with_effect = _realised(runs[EFFECT]["panel"], cohort, members)
        without = _realised(runs[1.0]["panel"], runs[1.0]["cohort"], members)
        out[pop] = with_effect / without - 1
    return out


def test_the_two_runs_differ_only_by_the_effect(runs):
    a, b = runs[1.0], runs[EFFECT]
    pd.testing.assert_frame_equal(a["cohort"], b["cohort"])
    # matching looks only at history before the index: the same matched sets in both runs
    pd.testing.assert_frame_equal(a["ev"].matches, b["ev"].matches)
    for pop in POPULATIONS:
        ra, rb = _row(a["ev"], pop), _row(b["ev"], pop)
        for col in ("n_people", "n_comparison", "treated_baseline", "comparison_baseline"):
            assert ra[col] == rb[col], (pop, col)
        assert ra["comparison_followup"] == rb["comparison_followup"], pop
        assert rb["treated_followup"] < ra["treated_followup"], pop


def test_did_interval_covers_the_realised_effect(runs):
    realised = _realised_effects(runs)
    for pop in POPULATIONS:
        did, naive = (
            _row(runs[EFFECT]["ev"], pop),
            _row(runs[EFFECT]["ev"], pop, "naive_before_after"),
        )
        print(
            f"seed {SEED}, effect {EFFECT}, {pop}: realised {realised[pop]:+.3f}; DiD "
            f"{did['estimate']:+.3f} [{did['ci_low']:+.3f}, {did['ci_high']:+.3f}] "
            f"({did['n_people']} matched); naive {naive['estimate']:+.3f}"
        )
        # the generator applied the effect: a fall, diluted from the nominal -0.30
        assert -0.30 < realised[pop] < -0.05, (pop, realised[pop])
        assert did["ci_low"] <= realised[pop] <= did["ci_high"], (pop, realised[pop], did)


def test_did_moves_with_the_effect_one_for_one(runs):
    """Same matched sets and the same comparison data in both runs, so by the DiD's formula
    (1 + DiD with effect) / (1 + DiD without) = the members' follow-up with / without effect;
    that ratio is the realised effect (follow-up here ends at death, hence the tolerance)."""
    realised = _realised_effects(runs)
    for pop in POPULATIONS:
        d0, d1 = _row(runs[1.0]["ev"], pop), _row(runs[EFFECT]["ev"], pop)
        shift = (1 + d1["estimate"]) / (1 + d0["estimate"]) - 1
        followup = d1["treated_followup"] / d0["treated_followup"] - 1
        assert shift == pytest.approx(followup, rel=1e-9), pop
        assert shift == pytest.approx(realised[pop], abs=0.02), (pop, shift, realised[pop])


def test_without_an_effect_the_interval_covers_zero(runs):
    for pop in POPULATIONS:
        did, naive = _row(runs[1.0]["ev"], pop), _row(runs[1.0]["ev"], pop, "naive_before_after")
        print(
            f"seed {SEED}, no effect, {pop}: DiD {did['estimate']:+.3f} "
            f"[{did['ci_low']:+.3f}, {did['ci_high']:+.3f}]; naive {naive['estimate']:+.3f}"
        )
        assert did["ci_low"] <= 0 <= did["ci_high"], (pop, did)
