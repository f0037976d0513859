"""The evaluation on hand-built panels: matching rules, naive and DiD by hand, deaths, bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.evaluation.comparison import EvaluationSettings, evaluate, evaluate_all
from sim_pipeline.evaluation.matching import EligibilityRule
from sim_pipeline.measures.cohort import cohort_windows
from sim_pipeline.measures.metrics import METRICS

MONTHS = [str(p) for p in pd.period_range("2016-01", "2019-12", freq="M")]
ALLOC = "2018-06"
SETTINGS = EvaluationSettings(bootstrap=200, controls_per_person=1, seed=7, design=None)


def _series(base: float, follow: float, index: str, s136_each_quarter: bool = True) -> dict:
    """Monthly total cost: ``base`` before the index month's run-up, a peak of 3x base in the
    three months before it, ``follow`` from the index month on; s136 every third month so the
    eligibility rule (2+ in 12 months) is met."""
    i = MONTHS.index(index)
    cost = [base] * len(MONTHS)
    for k in range(i - 3, i):
        cost[k] = 3 * base
    for k in range(i, len(MONTHS)):
        cost[k] = follow
    s136 = [1 if (s136_each_quarter and k % 3 == 0) else 0 for k in range(len(MONTHS))]
    return {"total_cost": cost, "s136_detentions": s136}


def _panel(people: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for key, series in people.items():
        for k, m in enumerate(MONTHS):
            row = {"person_key": key, "month": m, **dict.fromkeys(METRICS, 0)}
            row.update({c: v[k] for c, v in series.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _cohort(members: dict[str, tuple[str, bool]]) -> pd.DataFrame:
    """members: key -> (allocation month, engaged); programme runs from allocation to the end."""
    keys = list(members)
    alloc = pd.to_datetime([f"{members[k][0]}-10" for k in keys])
    engaged = [members[k][1] for k in keys]
    engage = pd.Series([a if e else pd.NaT for a, e in zip(alloc, engaged, strict=True)])
    win = cohort_windows(
        pd.Series(alloc), engage, pd.Series([pd.NaT] * len(keys)), MONTHS[0], MONTHS[-1]
    )
    return pd.DataFrame(
        {
            "person_key": keys,
            "allocation_date": alloc.date,
            "itt": True,
            "per_protocol": engaged,
        }
    ).join(win)


def _people(sexes: dict[str, str], deaths: dict[str, str] | None = None) -> pd.DataFrame:
    rows = [
        {"person_key": k, "month": MONTHS[0], "sex": s, "age_band": "25-34"}
        for k, s in sexes.items()
    ]
    rows += [{"person_key": k, "death_month": m} for k, m in (deaths or {}).items()]
    return pd.DataFrame(rows)


def _row(ev, population="itt", outcome="total_cost", method="difference_in_differences"):
    e = ev.estimates
    r = e[(e["population"] == population) & (e["outcome"] == outcome) & (e["method"] == method)]
    assert len(r) == 1, r
    return r.iloc[0]


def test_naive_and_difference_in_differences_by_hand():
    # member: baseline 100 a month (+ the run-up at 300), follow-up 60; comparison: same
    # history at the same month, follow-up 80. Baseline = 12 months: 9 x 100 + 3 x 300 = 150.
    panel = _panel({"T": _series(100, 60, ALLOC), "C": _series(100, 80, ALLOC)})
    ev = evaluate(
        panel, _cohort({"T": (ALLOC, True)}), _people({"T": "F", "C": "F"}), MONTHS, SETTINGS
    )
    naive = _row(ev, method="naive_before_after")
    assert naive["estimate"] == pytest.approx(60 / 150 - 1)
    did = _row(ev)
    # dT = 60 - 150 = -90, dC = 80 - 150 = -70; counterfactual 150 - 70 = 80; (-90 + 70) / 80
    assert did["estimate"] == pytest.approx(-20 / 80)
    assert did["rtm_share"] == pytest.approx(70 / 90)
    assert (did["n_people"], did["n_comparison"]) == (1, 1)
    assert ev.matches["pseudo_index_month"].tolist() == [ALLOC]


def test_matching_is_exact_on_sex_and_never_uses_an_allocated_person():
    panel = _panel(
        {
            "T": _series(100, 60, ALLOC),
            "T2": _series(100, 60, ALLOC),  # allocated too: never a comparison
            "M": _series(100, 80, ALLOC),  # a man with the same history
            "F": _series(100, 90, ALLOC),
        }
    )
    co = _cohort({"T": (ALLOC, True), "T2": (ALLOC, True)})
    ev = evaluate(panel, co, _people({"T": "F", "T2": "M", "M": "M", "F": "F"}), MONTHS, SETTINGS)
    pairs = dict(zip(ev.matches["person_key"], ev.matches["comparison_person_key"], strict=True))
    assert pairs == {"T": "F", "T2": "M"}
    assert not set(ev.matches["comparison_person_key"]) & {"T", "T2"}


def test_comparisons_must_meet_the_rule_and_fit_in_the_data():
    panel = _panel(
        {
            "T": _series(100, 60, ALLOC),
            "T2": _series(100, 60, "2019-09"),  # a man allocated late: widens the period
            "NO_RULE": {**_series(100, 80, ALLOC), "s136_detentions": [0] * len(MONTHS)},
            "LATE": _series(100, 80, "2019-09"),  # history most like T's only in 2019-09
        }
    )
    # T is followed to the end of the data (19 months from 2018-06); indexed in 2019-09, LATE
    # could be followed for 4 months only, so it may stand in for T only at an earlier month
    co = _cohort({"T": (ALLOC, True), "T2": ("2019-09", True)})
    sexes = {"T": "F", "T2": "M", "NO_RULE": "F", "LATE": "F"}
    ev = evaluate(
        panel, co, _people(sexes), MONTHS,
        EvaluationSettings(bootstrap=50, max_month_gap=24, caliper=100.0, design=None),
    )  # fmt: skip
    assert "NO_RULE" not in set(ev.matches["comparison_person_key"])
    late = ev.matches[ev.matches["comparison_person_key"] == "LATE"]
    assert late["pseudo_index_month"].tolist() == [ALLOC]


def test_caliper_leaves_a_member_unmatched_and_out_of_the_did():
    panel = _panel({"T": _series(100, 60, ALLOC), "FAR": _series(5000, 80, ALLOC)})
    ev = evaluate(
        panel, _cohort({"T": (ALLOC, True)}), _people({"T": "F", "FAR": "F"}), MONTHS, SETTINGS
    )
    assert ev.matches.empty
    e = ev.estimates
    assert e[(e["method"] == "difference_in_differences")].empty
    assert ev.diagnostics["programme_people_matched"] == 0


def test_deaths_are_a_risk_difference_and_end_follow_up():
    panel = _panel(
        {
            "T": _series(100, 60, ALLOC),
            "T2": _series(100, 60, ALLOC),
            "C": _series(100, 80, ALLOC),
            "C2": _series(100, 80, ALLOC),
        }
    )
    co = _cohort({"T": (ALLOC, True), "T2": (ALLOC, True)})
    # T dies in 2018-09: 1 of 2 members; no comparison dies
    people = _people(dict.fromkeys(["T", "T2", "C", "C2"], "F"), deaths={"T": "2018-09"})
    ev = evaluate(panel, co, people, MONTHS, SETTINGS)
    assert _row(ev, outcome="deaths")["estimate"] == pytest.approx(0.5)
    assert _row(ev, outcome="deaths", method="naive_before_after")["estimate"] == pytest.approx(0.5)
    # T's follow-up ends with the death month: costs after it (none here) are not averaged in
    naive = _row(ev, method="naive_before_after")
    assert naive["treated_followup"] == pytest.approx(60)


def _bootstrap_panel(copies: int = 1) -> tuple[tuple, dict[int, tuple[float, float, list]]]:
    """12 members (every third never engaged), each with two comparisons of the same history
    and their own follow-up level; ``copies`` > 1 repeats every matched set that many times.
    Returns the ``evaluate`` arguments and, per set i, (base, member follow-up, [comparison
    follow-ups]) to derive the expected figures by hand."""
    rng = np.random.default_rng(3)
    people, members, truth = {}, {}, {}
    for i in range(12):
        base = float(rng.integers(80, 120))
        follow = base * rng.uniform(0.4, 0.8)
        comparisons = [base * rng.uniform(0.5, 1.0) for _ in range(2)]
        truth[i] = (base, follow, comparisons)
        for r in range(copies):
            tail = f"_{r}" if copies > 1 else ""
            people[f"T{i}{tail}"] = _series(base, follow, ALLOC)
            members[f"T{i}{tail}"] = (ALLOC, i % 3 != 0)
            for j in range(2):
                people[f"C{i}_{j}{tail}"] = _series(base, comparisons[j], ALLOC)
    args = (_panel(people), _cohort(members), _people(dict.fromkeys(people, "F")), MONTHS)
    return args, truth


def _did_by_hand(tb, tf, cb, cf):
    """(dT - dC) / (T_base + dC) over matched sets (last axis), written out here."""
    dt = tf.mean(axis=-1) - tb.mean(axis=-1)
    dc = cf.mean(axis=-1) - cb.mean(axis=-1)
    return (dt - dc) / (tb.mean(axis=-1) + dc)


def _set_values(truth, population):
    """Per matched set: member baseline and follow-up, comparison set means. Baseline = the 12
    months before allocation: 9 at ``base`` and the 3-month run-up at 3 x base = 1.5 x base;
    follow-up: the constant follow-up level; each member's comparisons share its history."""
    sets = [i for i in truth if population == "itt" or i % 3 != 0]
    tb = np.array([1.5 * truth[i][0] for i in sets])
    tf = np.array([truth[i][1] for i in sets])
    cf = np.array([np.mean(truth[i][2]) for i in sets])
    return tb, tf, tb.copy(), cf


def test_bootstrap_interval_holds_the_estimate_and_is_reproducible():
    args, truth = _bootstrap_panel()
    s = EvaluationSettings(bootstrap=300, controls_per_person=2, seed=11, design=None)
    a, b = evaluate(*args, s), evaluate(*args, s)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    for pop in ("itt", "per_protocol"):
        r = _row(a, population=pop)
        assert r["ci_low"] < r["estimate"] < r["ci_high"]
    assert _row(a, population="per_protocol")["n_people"] == 8
    # every member is matched to the two comparisons that share its history (distance 0; bases
    # 83 and 86 occur twice, and such ties go by person key, so T1 still gets C1_0 and C1_1)
    pairs = a.matches.groupby("person_key")["comparison_person_key"].apply(set).to_dict()
    assert pairs == {f"T{i}": {f"C{i}_0", f"C{i}_1"} for i in range(12)}
    # the estimate by hand from the generated levels, not from the code under test
    for pop in ("itt", "per_protocol"):
        r = _row(a, population=pop)
        tb, tf, cb, cf = _set_values(truth, pop)
        assert r["estimate"] == pytest.approx(_did_by_hand(tb, tf, cb, cf), rel=1e-12), pop
        assert (r["treated_baseline"], r["treated_followup"]) == pytest.approx(
            (tb.mean(), tf.mean()), rel=1e-12
        )
        assert r["comparison_followup"] == pytest.approx(cf.mean(), rel=1e-12)
        assert (r["n_people"], r["n_comparison"]) == (len(tb), 2 * len(tb))
    # another bootstrap seed: the same estimate, a different interval
    c = evaluate(
        *args, EvaluationSettings(bootstrap=300, controls_per_person=2, seed=12, design=None)
    )
    for pop in ("itt", "per_protocol"):
        ra, rc = _row(a, population=pop), _row(c, population=pop)
        assert rc["estimate"] == ra["estimate"]
        assert (rc["ci_low"], rc["ci_high"]) != (ra["ci_low"], ra["ci_high"])


def test_bootstrap_interval_agrees_with_an_independent_matched_set_bootstrap():
    """The interval against a bootstrap written here: resample the matched sets (a member with
    its comparisons) with replacement, DiD per replicate, 2.5th and 97.5th percentiles.
    Tolerance 6% of the interval width at 4,000 replicates (20,000 here): over 50 bootstrap
    seeds the largest difference measured was 3.3% of the width, the mean 1.3%; a 90% interval
    instead of 95% would move each end by about 8%."""
    args, truth = _bootstrap_panel()
    ev = evaluate(
        *args, EvaluationSettings(bootstrap=4000, controls_per_person=2, seed=11, design=None)
    )
    for pop in ("itt", "per_protocol"):
        tb, tf, cb, cf = _set_values(truth, pop)
        draws = np.random.default_rng(2024).integers(0, len(tb), (20_000, len(tb)))
        boot = _did_by_hand(tb[draws], tf[draws], cb[draws], cf[draws])
        low, high = np.percentile(boot, [2.5, 97.5])
        r = _row(ev, population=pop)
        tolerance = 0.06 * (high - low)
        assert r["ci_low"] == pytest.approx(low, abs=tolerance), pop
        assert r["ci_high"] == pytest.approx(high, abs=tolerance), pop
        print(f"{pop}: {r['ci_low']:.4f} to {r['ci_high']:.4f}, by hand {low:.4f} to {high:.4f}")


def test_bootstrap_interval_narrows_with_root_n():
    """Every matched set four times over: the same estimate, the interval about half as wide
    (1/sqrt(4)); measured 0.56 (itt) and 0.52 (per-protocol), accepted 0.40-0.65."""
    s = EvaluationSettings(bootstrap=2000, controls_per_person=2, seed=11, design=None)
    (args1, _), (args4, _) = _bootstrap_panel(), _bootstrap_panel(copies=4)
    one, four = evaluate(*args1, s), evaluate(*args4, s)
    for pop in ("itt", "per_protocol"):
        r1, r4 = _row(one, population=pop), _row(four, population=pop)
        assert r4["n_people"] == 4 * r1["n_people"]
        assert r4["estimate"] == pytest.approx(r1["estimate"], rel=1e-12)
        ratio = (r4["ci_high"] - r4["ci_low"]) / (r1["ci_high"] - r1["ci_low"])
        assert 0.40 <= ratio <= 0.65, (pop, ratio)


def test_bootstrap_interval_collapses_without_variation():
    """Identical matched sets: every replicate gives the estimate, so the interval is the point
    (-20 / 80 as in the hand-worked example above)."""
    people = {f"T{i}": _series(100, 60, ALLOC) for i in range(6)}
    people |= {f"C{i}": _series(100, 80, ALLOC) for i in range(6)}
    members = {f"T{i}": (ALLOC, True) for i in range(6)}
    ev = evaluate(
        _panel(people), _cohort(members), _people(dict.fromkeys(people, "F")), MONTHS,
        EvaluationSettings(bootstrap=200, controls_per_person=1, seed=5, design=None),
    )  # fmt: skip
    for method, expected in (("difference_in_differences", -20 / 80), ("naive_before_after", -0.6)):
        r = _row(ev, method=method)
        assert r["estimate"] == pytest.approx(expected, rel=1e-12), method
        assert r["ci_low"] == pytest.approx(expected, rel=1e-12), method
        assert r["ci_high"] == pytest.approx(expected, rel=1e-12), method


def test_sensitivity_analyses_change_what_they_say():
    panel = _panel({"T": _series(100, 60, ALLOC), "C": _series(100, 80, ALLOC)})
    ev = evaluate_all(
        panel, _cohort({"T": (ALLOC, True)}), _people({"T": "F", "C": "F"}), MONTHS, SETTINGS
    )
    naive = ev.estimates[
        (ev.estimates["method"] == "naive_before_after")
        & (ev.estimates["outcome"] == "total_cost")
        & (ev.estimates["population"] == "itt")
    ].set_index("analysis")["estimate"]
    # 6-month baseline: 3 x 100 + 3 x 300 = 200; 18 months: 15 x 100 + 900 = 2400 / 18
    assert naive["baseline_6_months"] == pytest.approx(60 / 200 - 1)
    assert naive["baseline_18_months"] == pytest.approx(60 / (2400 / 18) - 1)
    assert set(ev.estimates["analysis"]) == {
        "primary", "baseline_6_months", "baseline_18_months", "threshold_lower",
        "threshold_higher",
    }  # fmt: skip


def test_every_analysis_reads_one_shared_preparation_with_the_same_result():
    """`evaluate_all` builds the panel's arrays and the demographics once for its five
    analyses (`prepare`): each analysis gives what it gives on its own."""
    from dataclasses import replace

    from sim_pipeline.evaluation.comparison import prepare

    panel = _panel({"T": _series(100, 60, ALLOC), "C": _series(100, 80, ALLOC)})
    cohort, people = _cohort({"T": (ALLOC, True)}), _people({"T": "F", "C": "F"})
    shared = evaluate_all(panel, cohort, people, MONTHS, SETTINGS)
    data = prepare(panel, cohort, people, MONTHS)
    for name, settings in (
        ("primary", SETTINGS),
        ("baseline_6_months", replace(SETTINGS, design=None, baseline_months=6)),
    ):
        alone = evaluate(panel, cohort, people, MONTHS, settings, analysis=name)
        ours = shared.estimates[shared.estimates["analysis"] == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, alone.estimates)
        again = evaluate(panel, cohort, people, MONTHS, settings, analysis=name, prepared=data)
        pd.testing.assert_frame_equal(again.estimates, alone.estimates)
    assert data.panel.values.sum() == panel["total_cost"].sum() + sum(
        panel[c].sum() for c in data.panel.columns if c != "total_cost"
    )  # the preparation was not changed by the analyses that read it


def test_eligibility_rule_parsing_and_scaling():
    rule = EligibilityRule.parse("s136_detentions>=2, ae_attendances>=12")
    assert dict(rule.min_counts) == {"s136_detentions": 2, "ae_attendances": 12}
    assert dict(rule.scaled(1.25).min_counts) == {"s136_detentions": 2, "ae_attendances": 15}
    with pytest.raises(ValueError, match="metric>=count"):
        EligibilityRule.parse("s136_detentions=2")
    with pytest.raises(ValueError, match="eligibility rule needs metrics"):
        EligibilityRule.parse("bananas>=2")


def test_design_diagnostics_in_plain_words_from_warehouse_rows():
    """A failed placebo is named and the estimate flagged; a diagnostic read back as NULL (too
    little history) is 'not computed', not an error; the E-value of +10% is 1.43 by hand
    (1.1 + sqrt(1.1 x 0.1))."""
    from sim_pipeline.evaluation import design_diagnostics as dd
    from sim_pipeline.evaluation import design_estimates as de

    rows = pd.DataFrame(
        {
            "analysis": ["primary"] * 3,
            "population": [
                "itt_months_0_11",
                dd.PLACEBO_POPULATION,
                dd.NEGATIVE_CONTROL_POPULATION,
            ],
            "outcome": ["total_cost", "total_cost", "community_contacts"],
            "method": [de.METHOD] * 3,
            "scale": ["relative_change"] * 3,
            "estimate": [0.1, 0.3, None],
            "ci_low": [-0.1, 0.1, None],
            "ci_high": [0.3, 0.5, None],
        },
        dtype=object,
    )
    assert dd.failed_diagnostics(rows) == [
        "primary: placebo in time (index a year early, months -12..-4) +30.0% [+10.0%, +50.0%]"
    ]
    lines = dd.diagnostic_lines(rows)
    assert lines[0].endswith("FAILED: the comparison is not alike")
    assert lines[1].endswith("not computed (too little history in the data)")
    assert "risk ratio of 1.43 each" in lines[2] and "already holds no change" in lines[2]
    assert lines[-1] == "diagnostics failed: do not rely on this estimate"
    assert dd.e_value(1.1) == pytest.approx(1.1 + (1.1 * 0.1) ** 0.5)
    assert dd.e_value(1 / 1.1) == pytest.approx(dd.e_value(1.1)) and dd.e_value(1.0) == 1.0


def _sets(cand: np.ndarray, person: np.ndarray | None = None, share=None):
    """``design_estimates.MatchedSets`` for members 0..n-1 with candidate rows ``cand`` (-1
    padding); ``person``: each row's comparison person (default: the row itself)."""
    from sim_pipeline.evaluation import design_estimates as de

    has = cand >= 0
    person = np.arange(cand.max() + 1) if person is None else person
    used = np.bincount(cand[has], minlength=len(person)).astype(float)
    share = np.ones(len(cand)) if share is None else share
    n_c = len(np.unique(person[cand[has]]))
    return de.MatchedSets(
        cand, has, used, np.arange(len(cand)), share, n_c, np.where(has, person[cand], -1)
    )


def test_total_cost_is_moved_by_the_scores_ratio_and_others_by_the_regression():
    """The bias correction by hand. Two members, k = 2 matches each. Outcomes that are exactly
    the log-link mean exp(score) are recovered without error by the ratio correction (each
    match's outcome x exp(member's score - the match's)); the linear correction in the log
    score, fitted on matches below the members, under-shoots that convex mean, as the design's
    notes say."""
    from sim_pipeline.evaluation import design_estimates as de

    score_pool = np.array([1.0, 1.2, 0.8, 1.5, 1.7, 0.0])
    runup = np.array([0.1, 0.2, 0.0, 0.3, 0.4, 0.0])
    z_pool = np.column_stack([np.ones(6), score_pool, runup])
    z_t = np.column_stack([np.ones(2), [1.6, 2.2], [0.2, 0.5]])
    sets = _sets(np.array([[1, 0], [4, 3]]), np.arange(6))
    y_pool = np.exp(score_pool)
    y0, val = de.corrected_counterfactual(sets, y_pool, z_pool, z_t, np.ones(6, bool), True)
    assert y0 == pytest.approx(np.exp([1.6, 2.2]))  # exact: every match moved to the member
    assert val == pytest.approx(np.exp([[1.6, 1.6], [2.2, 2.2]]))
    # by hand for member 0: matches 1 and 0, (e^1.2 x e^0.4 + e^1.0 x e^0.6) / 2
    y_by_hand = (y_pool[1] * np.exp(1.6 - 1.2) + y_pool[0] * np.exp(1.6 - 1.0)) / 2
    assert y0[0] == pytest.approx(y_by_hand)
    linear, _ = de.corrected_counterfactual(sets, y_pool, z_pool, z_t, np.ones(6, bool), False)
    assert (linear < y0 - 1e-6).all()  # the linear correction falls short of the convex mean
    # a padded slot (a member with one match only) averages over the match it has
    short = _sets(np.array([[1, -1], [4, 3]]), np.arange(6))
    y0_short, _ = de.corrected_counterfactual(short, y_pool, z_pool, z_t, np.ones(6, bool), True)
    assert y0_short[0] == pytest.approx(np.exp(1.6))


def test_analytic_variance_by_hand():
    """Two members, k = 2. Member 0 matched to persons 10 and 11 (outcomes 1 and 3, spread
    s^2 = 2), member 1 to persons 11 and 12 (outcomes 2 and 6, s^2 = 8). Members' part:
    (2 + 8) / 2^2; comparisons' part, a = 1 / (N1 k) = 1/4 for every match: persons 10 and 12
    (1/4)^2 s^2 each, person 11 (in both sets) (1/4 + 1/4) (2/4 + 8/4). A person reused
    counts with the sum of its weights, not as two independent draws."""
    from sim_pipeline.evaluation import design_estimates as de

    person = np.array([10, 11, 12])
    sets = _sets(np.array([[0, 1], [1, 2]]), person)
    val = np.array([[1.0, 3.0], [2.0, 6.0]])
    members = (2 + 8) / 4
    comparisons = 2 / 16 + 8 / 16 + (1 / 2) * (2 / 4 + 8 / 4)
    assert de.analytic_variance(sets, val) == pytest.approx(members + comparisons)
    # the same outcomes from three distinct people: person 11's matches no longer add up
    apart = _sets(np.array([[0, 1], [2, 3]]), np.array([10, 11, 12, 13]))
    assert de.analytic_variance(apart, val) == pytest.approx(members + (2 + 2 + 8 + 8) / 16)
    # members' outcomes close to their counterfactual: their counterfactual noise is the larger
    y1 = np.array([2.0, 4.0])  # y1 - y0 = [0, 0]: treated part (0 - (2/2 + 8/2)) / 4 < members
    assert de.analytic_variance(sets, val, y1) == pytest.approx(members + comparisons)
    # a rare outcome (deaths) the matched sets never show: the members' own spread counts
    none = np.zeros((2, 2))
    assert de.analytic_variance(sets, none) == 0.0
    # one member of two died: (y1 - y0) = [1, 0], spread 0.5, over N1^2 = 4
    assert de.analytic_variance(sets, none, np.array([1.0, 0.0])) == pytest.approx(0.125)


def test_analytic_variance_matches_the_spread_of_the_error_by_simulation():
    """Against truth: 400 replications of a world where 150 members are each matched to k = 5
    of 600 comparison people with the same covariate (20 strata, so people are reused across
    sets), outcomes mean mu(x) with a spread that grows with mu. The error of the members'
    mean counterfactual (their own untreated outcomes, which the realised effect uses) has a
    variance the analytic formula must match, on average, within 10%; the same formula without
    the reuse of comparison people (each match independent) falls short."""
    from sim_pipeline.evaluation import design_estimates as de

    rng = np.random.default_rng(17)
    n1, n_c, k, strata = 150, 600, 5, 20
    x_t, x_c = rng.integers(0, strata, n1), rng.integers(0, strata, n_c)
    mu = np.linspace(50, 400, strata)
    cand = np.stack([rng.choice(np.nonzero(x_c == x)[0], k, replace=False) for x in x_t])
    sets = _sets(cand, np.arange(n_c))
    naive = _sets(np.arange(n1 * k).reshape(n1, k))  # every match its own person
    errors, variances, naive_var = [], [], []
    for _ in range(400):
        y_c = rng.gamma(2.0, mu[x_c] / 2.0)  # sd = mu / sqrt(2)
        y_cf = rng.gamma(2.0, mu[x_t] / 2.0)  # the members' own untreated outcomes
        val = y_c[cand]
        errors.append(val.mean() - y_cf.mean())
        variances.append(de.analytic_variance(sets, val))
        naive_var.append(de.analytic_variance(naive, val))
    empirical, analytic = np.var(errors, ddof=1), np.mean(variances)
    print(f"error variance {empirical:.1f}, analytic {analytic:.1f}, without reuse "
          f"{np.mean(naive_var):.1f}")  # fmt: skip
    # 400 replications: the empirical variance's own relative SE is about 7%
    assert analytic == pytest.approx(empirical, rel=0.15)
    assert np.mean(naive_var) < 0.95 * analytic
