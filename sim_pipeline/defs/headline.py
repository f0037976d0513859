"""The programme headline asset (the review's naive before/after, with its caution) and its
cost-trajectory chart. Wiring only: the logic is `sim_pipeline.measures.headline`."""

from pathlib import Path

import dagster as dg

from sim_pipeline.defs.automation import HEADLINE_FRESHNESS
from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.cohort import cohort
from sim_pipeline.defs.common import ANALYSTS, figure_metadata, table_asset, table_metadata
from sim_pipeline.defs.costs import person_month_costs
from sim_pipeline.defs.metrics import person_month_metrics
from sim_pipeline.defs.reads import (
    applied_unit_costs,
    read_table,
)
from sim_pipeline.defs.resources import (
    MetricsResource,
    WarehouseResource,
)
from sim_pipeline.measures.cohort import cohort_people, months_between
from sim_pipeline.measures.headline import (
    KEY_STATISTICS,
    impossible_values,
    programme_headline,
    trajectory,
)
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.publish.charts import cohort_trajectory_figure
from sim_pipeline.publish.release_headline import headline_preview

GROUP = "metrics"
# the asset's preview: the key statistics but the person-months (the report shows those)
PREVIEW_STATISTICS = [s for s in KEY_STATISTICS if s != "person_months"]
COVERS_COHORT = Check(
    "headline_covers_cohort",
    "The headline counts every cohort member (n_allocated) and every engaged member "
    "(n_engaged), and every month of every member's baseline and programme windows has been "
    "costed (a month missing from person_month_costs would silently count as zero use).",
)
VALUES_POSSIBLE = Check(
    "headline_values_possible",
    "No headline figure is impossible: no negative count, rate or cost, no share outside "
    "0-100%, no fall of more than 100%, no more engaged or analysed people than allocated, no "
    "missing figure for a non-empty population. Checked before writing: on failure the "
    "previous headline stays and nothing downstream (evaluation, publication) runs.",
    blocking=True,
)


@dg.asset(
    **table_asset(
        "programme_headline",
        owners=[ANALYSTS],
        group_name=GROUP,
        deps=[person_month_costs, person_month_metrics, cohort],
    ),
    freshness_policy=HEADLINE_FRESHNESS,
    name="programme_headline",
    description=(
        "The programme review's headline figures recomputed from person_month_costs and "
        "cohort, for intention-to-treat and per-protocol populations and for people more than "
        "6 months on the programme: numbers allocated and engaged, months on the programme, "
        "the share whose monthly cost fell, the mean per-person % change beside the ratio of "
        "means, the monthly and total change (both ways the review may have totalled it), the "
        "largest individual fall, and per-metric rates per person-month. A naive before/after "
        "comparison of people selected at their peak: it is not an effect estimate and must be "
        "read beside the comparison-cohort evaluation."
    ),
    check_specs=[
        COVERS_COHORT.spec("programme_headline"),
        VALUES_POSSIBLE.spec("programme_headline"),
    ],
)
def programme_headline_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, metrics: MetricsResource
):
    wh = warehouse.get()
    co = read_table(wh, "cohort")
    pc = read_table(wh, "person_month_costs")
    pm = read_table(wh, "person_month_metrics")
    # price year, version and caveats of the costs actually used (the resource's only if none)
    if len(pc):
        years, versions, flags = (
            sorted(pc[c].fillna("").unique())
            for c in ("price_year", "unit_cost_version", "cost_flags")
        )
    else:
        costs = applied_unit_costs(wh)
        years, versions, flags = [costs.price_year], [costs.version], [costs.flag_text]
    if len(years) > 1 or len(versions) > 1:
        raise dg.Failure(
            f"person_month_costs mixes price years {years} or unit-cost versions {versions}: "
            "rematerialise every month of person_month_costs; nothing written"
        )
    head = programme_headline(pc, pm, co, years[0], versions[0])
    impossible = impossible_values(head)
    possible = VALUES_POSSIBLE.result(
        not impossible,
        description="; ".join(impossible[:20]) or None,
        metadata={"statistics_checked": len(head), "impossible": len(impossible)},
    )
    written = yield from write_or_refuse(
        wh,
        context,
        [Write("programme_headline", head)],
        [possible],
        rows_in=len(pc),
        refusal=f"programme_headline: {len(impossible)} impossible figures; nothing written",
        unit_cost_version=versions[0],
        note="rows_in: person_month_costs rows; rows_out: headline statistics",
    )
    traj = trajectory(pc, co)
    chart = figure_metadata(
        cohort_trajectory_figure(traj, years[0]),
        Path(metrics.reports_dir) / "cost_trajectory.png",
        "cost trajectory",
    )
    people = cohort_people(co)
    itt = head[head["population"] == "itt"].set_index("statistic")["value"]
    needed: set[str] = set()
    for a, b in (
        ("baseline_first_month", "baseline_last_month"),
        ("programme_first_month", "programme_last_month"),
    ):
        for first, last in zip(people[a], people[b], strict=True):
            needed.update(months_between(str(first), str(last)))
    uncosted = sorted(needed - set(pc["month"]))
    yield dg.MaterializeResult(
        data_version=written.data_version("programme_headline"),
        metadata={
            "dagster/row_count": len(head),
            **written.metadata,
            "price_year": years[0],
            "unit_cost_version": versions[0],
            "cost_flags": ";".join(f for f in flags if f) or "none",
            "headline": table_metadata(headline_preview(head, PREVIEW_STATISTICS)),
            "per_metric_rates": table_metadata(
                headline_preview(
                    head,
                    [f"{s}_rate_{m}" for m in METRICS for s in ("baseline", "programme")],
                )
            ),
            "cost_trajectory": chart,
            "caution": "Naive before/after of people selected at their peak (regression to "
            "the mean): read beside the comparison-cohort estimate.",
        },
        check_results=[
            COVERS_COHORT.result(
                itt.get("n_allocated") == len(people)
                and itt.get("n_engaged") == int(people["per_protocol"].sum())
                and not uncosted,
                metadata={
                    "cohort_people": len(people),
                    "months_in_windows": len(needed),
                    "months_without_costs": ", ".join(uncosted[:24]) or "none",
                },
            ),
            possible,
        ],
    )
