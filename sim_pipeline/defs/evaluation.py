"""The evaluation assets: the primary matched design, the comparison cohort and its
difference-in-differences, balance, trajectory and matches (one multi_asset, a table each).
Wiring only: the logic is in `sim_pipeline.evaluation`."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.cohort import cohort
from sim_pipeline.defs.common import ANALYSTS, figure_metadata, table_metadata, table_spec
from sim_pipeline.defs.costs import person_month_costs, unit_costs
from sim_pipeline.defs.metrics import person_month_metrics
from sim_pipeline.defs.reads import data_months, read_table
from sim_pipeline.defs.resources import (
    MetricsResource,
    StudyDesignResource,
    WarehouseResource,
)
from sim_pipeline.publish.charts import matched_trajectory_figure
from sim_pipeline.publish.disclosure import control_count, controlled_rate

GROUP = "evaluation"
MATCHES = "evaluation_matches"
OUTPUTS = ("evaluation_estimates", "evaluation_balance", "evaluation_trajectory", MATCHES)
SMD_LIMIT = 0.1  # |standardised difference| after matching above this is imbalance
MATCHED_SHARE_LIMIT = 0.9  # share of programme members with a comparison before warning


def _share(k: object, n: object) -> str:
    """A share for metadata, from the disclosure-controlled counts (`controlled_rate`)."""
    rate = controlled_rate(k, n)
    return "*" if rate is None else f"{rate:.3f}"


_INPUTS = [person_month_metrics, person_month_costs, cohort, dg.AssetKey("person_dimension")]
ESTIMATES_COMPLETE = Check(
    "estimates_complete",
    "Every population and outcome of the primary analysis has a naive estimate and, where any "
    "member was matched, a difference-in-differences estimate; in every analysis each "
    "difference-in-differences interval holds its estimate (ci_low <= estimate <= ci_high), "
    "and no estimate is infinite. Checked before writing: a failure writes nothing and the "
    "report is not rebuilt.",
    blocking=True,
)
MEMBERS_MATCHED = Check(
    "members_matched",
    f"At least {MATCHED_SHARE_LIMIT:.0%} of the programme members who met the eligibility rule "
    "at allocation found a comparison within the caliper; members without one are left out of "
    "the difference-in-differences bracket (not of the naive estimate or the primary design), "
    "which may bias it. Members allocated without meeting the rule are counted in "
    "meeting_rule.",
)
DESIGN_DIAGNOSTICS = Check(
    "design_diagnostics",
    "The primary design's diagnostics hold no change: the placebo in time (the whole design "
    "with every index a year before allocation, estimated on months -12..-4, when no programme "
    "existed) and the negative-control outcome (community contacts in the 12 months before "
    "allocation, which the programme cannot have moved and the matching does not use). An "
    "interval that excludes 0 means the comparison is not alike: do not rely on the estimate. "
    "Metadata: each diagnostic and the E-values (the strength of an unmeasured confounder that "
    "would explain the estimate away).",
)
COMPARISON_BALANCED = Check(
    "comparison_balanced",
    f"After matching, every covariate of the primary analysis has |standardised mean "
    f"difference| below {SMD_LIMIT} (the usual threshold for adequate balance). Imbalance "
    "means the comparison cohort differs from the members in prior use, so the "
    "difference-in-differences may be biased.",
)
TRAJECTORY_VALID = Check(
    "trajectory_valid",
    "The trajectory shows each analysis, population, group and month from index once, every "
    "mean cost is a non-negative number over at least one person, and every month lies within "
    "48 months of the index. Checked before writing, with estimates_complete: a failure writes "
    "none of the evaluation tables.",
    blocking=True,
)
CHECK_ASSETS = {
    ESTIMATES_COMPLETE: "evaluation_estimates",
    MEMBERS_MATCHED: "evaluation_estimates",
    DESIGN_DIAGNOSTICS: "evaluation_estimates",
    COMPARISON_BALANCED: "evaluation_balance",
    TRAJECTORY_VALID: "evaluation_trajectory",
}


def _table_spec(name: str, description: str, deps: list) -> dg.AssetSpec:
    """An evaluation table: its group, owner, kinds and documented columns."""
    return table_spec(
        name,
        description,
        deps=deps,
        group_name=GROUP,
        owners=[ANALYSTS],
    )


@dg.multi_asset(
    specs=[
        _table_spec(
            "evaluation_estimates",
            "The headline beside what survives a fair comparison. For intention-to-treat "
            "and per-protocol populations and every outcome (total cost, the five contact "
            "metrics, harm measures, deaths): the naive before/after change and the "
            "difference-in-differences against a comparison cohort of people who met the "
            "same eligibility rule but were never allocated, matched at a pseudo-index "
            "month exactly on sex and age band and closely on prior use and trajectory; "
            "95% intervals from a person-level (matched-set) bootstrap (the primary "
            "matched design's: analytic); the share of the "
            "naive change that the comparison cohort shows too (regression to the mean); "
            "sensitivity to the baseline window and the eligibility threshold.",
            [*_INPUTS, unit_costs],
        ),
        _table_spec(
            "evaluation_balance",
            "Balance diagnostics of the comparison cohort: standardised mean "
            "differences of every matching covariate and baseline metric rate, programme "
            "members against the whole eligible pool (before) and the matched comparisons "
            "(after).",
            _INPUTS,
        ),
        _table_spec(
            "evaluation_trajectory",
            "Mean monthly cost of matched programme members and their comparisons "
            "by month from the index date (allocation / pseudo-index), -12 to +24.",
            _INPUTS,
        ),
        _table_spec(
            MATCHES,
            "Who was matched to whom in each analysis: programme member, comparison person "
            "(person keys only) and the month the comparison stands in for allocation, with the "
            "exact-match stratum and the distance. Internal: never published; kept so an "
            "auditor can see a matched set behind the estimates.",
            _INPUTS,
        ),
    ],
    check_specs=[
        ESTIMATES_COMPLETE.spec("evaluation_estimates"),
        MEMBERS_MATCHED.spec("evaluation_estimates"),
        DESIGN_DIAGNOSTICS.spec("evaluation_estimates"),
        COMPARISON_BALANCED.spec("evaluation_balance"),
        TRAJECTORY_VALID.spec("evaluation_trajectory"),
    ],
    can_subset=False,
)
def evaluation(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    metrics: MetricsResource,
    study: StudyDesignResource,
):
    from sim_pipeline.evaluation.comparison import BRACKET_POPULATIONS, evaluate_all
    from sim_pipeline.evaluation.panel import evaluation_panel
    from sim_pipeline.evaluation.trajectory import trajectory_problems

    wh = warehouse.get()
    months = data_months(wh)
    co = read_table(wh, "cohort")
    pm = read_table(wh, "person_month_metrics")
    pc = read_table(wh, "person_month_costs")
    if co.empty or pc.empty or not months:
        # months before the programme started: nothing to evaluate yet, nothing written
        note = "no programme members or costs in the data yet: nothing to evaluate"
        for key in OUTPUTS:
            yield dg.MaterializeResult(
                asset_key=key, metadata={"dagster/row_count": 0, "note": note}
            )
        for check, key in CHECK_ASSETS.items():
            yield check.result(True, asset=key, metadata={"note": note})
        return
    years = sorted(pc["price_year"].dropna().unique())
    versions = sorted(pc["unit_cost_version"].dropna().unique())
    if len(years) != 1 or len(versions) != 1:
        raise dg.Failure(f"person_month_costs mixes price years {years} / versions {versions}")
    people = wh.read("person_dimension")
    if people.empty:  # a warehouse linked before the dimension existed: never match blind
        raise dg.Failure(
            "person_dimension is empty while the cohort is not: materialise person_index "
            "(it writes person_dimension) before the evaluation"
        )
    panel = evaluation_panel(pm, pc)
    ev = evaluate_all(
        panel,
        co,
        people,
        months,
        study.evaluation_settings(),
        sensitivity=study.sensitivity,
    )
    est = ev.estimates.assign(price_year=years[0], unit_cost_version=versions[0])

    primary = est[est["analysis"] == "primary"]
    outcomes = sorted(primary["outcome"].unique())
    # a population none of whose members could be matched has no DiD (members_matched warns)
    matched_pops = set(primary.loc[primary["method"] == "difference_in_differences", "population"])
    missing = [
        f"{p}/{o}/{m}"
        for p in BRACKET_POPULATIONS
        for o in outcomes
        for m in ("naive_before_after", "difference_in_differences")
        if (m == "naive_before_after" or p in matched_pops)
        and primary[
            (primary["population"] == p) & (primary["outcome"] == o) & (primary["method"] == m)
        ].empty
    ]
    did = est[est["method"] == "difference_in_differences"].dropna(subset=["estimate"])
    tol = 1e-9
    outside = did[
        (did["ci_low"] > did["estimate"] + tol) | (did["ci_high"] < did["estimate"] - tol)
    ]
    infinite = est[np.isinf(est[["estimate", "ci_low", "ci_high"]].to_numpy(float)).any(axis=1)]
    complete = not missing and outside.empty and infinite.empty
    complete_meta = {
        "missing": ", ".join(missing[:20]) or "none",
        "intervals_not_holding_estimate": len(outside),
        "infinite_values": len(infinite),
    }
    bad_trajectory = trajectory_problems(ev.trajectory)
    checks = [
        ESTIMATES_COMPLETE.result(complete, asset="evaluation_estimates", metadata=complete_meta),
        TRAJECTORY_VALID.result(
            not bad_trajectory,
            asset="evaluation_trajectory",
            description="; ".join(bad_trajectory) or None,
            metadata={"rows": len(ev.trajectory)},
        ),
    ]
    rows_in = len(pc) + len(co)
    written = yield from write_or_refuse(
        wh,
        context,
        [
            Write("evaluation_estimates", est),
            Write("evaluation_balance", ev.balance),
            Write("evaluation_trajectory", ev.trajectory),
            Write(MATCHES, ev.matches),
        ],
        checks,
        rows_in=rows_in,
        rows_out=len(est) + len(ev.balance) + len(ev.trajectory) + len(ev.matches),
        refusal="evaluation estimates or trajectory incomplete or inconsistent: nothing written",
        unit_cost_version=versions[0],
        note="rows_in: person_month_costs and cohort rows; rows_out: estimates, balance, "
        "trajectory and match rows",
        stage="evaluation",
        failure_metadata=complete_meta,
    )

    d = ev.diagnostics
    # the DiD bracket's pool is drawn by the eligibility rule: judged on the members meeting it
    matched_share = d["programme_people_matched"] / max(int(d["programme_people_meeting_rule"]), 1)
    side_by_side = _side_by_side(primary)
    bal = ev.balance[ev.balance["analysis"] == "primary"]
    worst = float(bal["smd_after"].abs().max()) if len(bal) else float("nan")
    diag = {k: v for k, v in d.items() if ":" not in k}
    yield dg.MaterializeResult(
        asset_key="evaluation_estimates",
        data_version=written.data_version("evaluation_estimates"),
        metadata={
            "dagster/row_count": len(est),
            **written.metadata,
            "total_cost_naive_vs_did": table_metadata(side_by_side),
            "estimates_primary": table_metadata(_estimate_table(primary)),
            "design": table_metadata(
                pd.DataFrame(  # counts of people in their own column, controlled
                    {
                        "item": list(diag),
                        "people": [v if "people" in k else None for k, v in diag.items()],
                        "value": ["" if "people" in k else str(v) for k, v in diag.items()],
                    }
                )
            ),
            "price_year": years[0],
            "unit_cost_version": versions[0],
        },
    )
    yield checks[0]
    yield MEMBERS_MATCHED.result(
        matched_share >= MATCHED_SHARE_LIMIT,
        asset="evaluation_estimates",
        metadata={
            "programme_members": control_count(d["programme_people"]),
            # the difference-in-differences bracket matches only members who met the
            # eligibility rule at allocation (the rule its comparison pool is drawn by)
            "meeting_rule": control_count(d["programme_people_meeting_rule"]),
            "matched": control_count(d["programme_people_matched"]),
            # from the rounded counts (the exact share would give the counts back)
            "matched_share": _share(
                d["programme_people_matched"], d["programme_people_meeting_rule"]
            ),
        },
    )
    from sim_pipeline.evaluation.design_diagnostics import (
        DIAGNOSTIC_POPULATIONS,
        diagnostic_lines,
        failed_diagnostics,
    )
    from sim_pipeline.evaluation.design_estimates import METHOD

    failed = failed_diagnostics(primary)
    diag_rows = primary[
        primary["population"].isin(DIAGNOSTIC_POPULATIONS) & (primary["method"] == METHOD)
    ]
    yield DESIGN_DIAGNOSTICS.result(
        not failed,
        asset="evaluation_estimates",
        description="; ".join(failed) or None,
        metadata={
            "in_plain_words": dg.MetadataValue.md(
                "\n".join(f"- {x}" for x in diagnostic_lines(primary))
            ),
            "diagnostics": table_metadata(
                diag_rows[["population", "outcome", "estimate", "ci_low", "ci_high"]].round(3)
            ),
            **{k: v for k, v in d.items() if k.endswith(("e_value", "e_value_interval"))},
        },
    )
    yield dg.MaterializeResult(
        asset_key="evaluation_balance",
        data_version=written.data_version("evaluation_balance"),
        metadata={
            "dagster/row_count": len(ev.balance),
            "balance_primary": table_metadata(
                bal.drop(
                    columns=["analysis", "n_treated", "n_comparison_before", "n_comparison_after"]
                ).round(3)
            ),
        },
    )
    yield COMPARISON_BALANCED.result(
        np.isfinite(worst) and worst < SMD_LIMIT,
        asset="evaluation_balance",
        metadata={
            "max_abs_smd_after": round(worst, 3),
            "covariates_over_limit": ", ".join(
                sorted(set(bal.loc[bal["smd_after"].abs() >= SMD_LIMIT, "covariate"]))
            )
            or "none",
        },
    )
    traj = ev.trajectory[ev.trajectory["analysis"] == "primary"]
    yield dg.MaterializeResult(
        asset_key="evaluation_trajectory",
        data_version=written.data_version("evaluation_trajectory"),
        metadata={
            "dagster/row_count": len(ev.trajectory),
            "trajectory": figure_metadata(
                matched_trajectory_figure(traj, years[0]),
                Path(metrics.reports_dir) / "evaluation_trajectory.png",
                "trajectory",
            ),
        },
    )
    yield checks[1]
    yield dg.MaterializeResult(
        asset_key=MATCHES,
        data_version=written.data_version(MATCHES),
        metadata={
            "dagster/row_count": len(ev.matches),
            # matched pairs per analysis, controlled as counts of people are (pairs ~ people)
            "pairs_by_analysis": table_metadata(
                ev.matches.groupby("analysis").size().rename("pairs").reset_index()
            ),
        },
    )


def _side_by_side(primary: pd.DataFrame) -> pd.DataFrame:
    t = primary[primary["outcome"] == "total_cost"]
    rows = []
    for _, r in t.iterrows():
        ci = "" if pd.isna(r["ci_low"]) else f"{r['ci_low']:+.1%} to {r['ci_high']:+.1%}"
        rows.append(
            {
                "population": r["population"],
                "method": r["method"],
                "change in mean monthly cost": f"{r['estimate']:+.1%}",
                "95% CI": ci,
                "people": int(r["n_people"]),
                "comparison people": int(r["n_comparison"]),
            }
        )
    return pd.DataFrame(rows)


def _estimate_table(primary: pd.DataFrame) -> pd.DataFrame:
    cols = ["population", "outcome", "method", "scale", "estimate", "ci_low", "ci_high"]
    return primary[[*cols, "n_people", "rtm_share"]].round(3)
