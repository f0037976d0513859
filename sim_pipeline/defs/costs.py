"""The cost assets: `unit_costs` (the reference files, read once per run, at one price year)
and `person_month_costs`, which takes the applied costs from the `unit_costs` table. Wiring
only: the logic is `sim_pipeline.measures.costs`."""

import dagster as dg

from sim_pipeline.defs.checks import Check, Write, refuse, write_or_refuse
from sim_pipeline.defs.common import ANALYSTS, table_asset, table_metadata
from sim_pipeline.defs.gx import gx_check, gx_check_result, run_suite
from sim_pipeline.defs.metrics import person_month_metrics
from sim_pipeline.defs.observations import REFERENCE_KEYS
from sim_pipeline.defs.reads import (
    applied_unit_costs,
    read_table,
    run_months,
)
from sim_pipeline.defs.resources import (
    MetricsResource,
    QualityResource,
    StudyDesignResource,
    WarehouseResource,
)
from sim_pipeline.measures.costs import (
    CostError,
    unit_cost_problems,
    unit_cost_table,
)
from sim_pipeline.measures.costs import person_month_costs as cost_person_months
from sim_pipeline.measures.tables import COST_COLUMNS, PersonMonthCosts
from sim_pipeline.quality.model_suites import person_month_suite

GROUP = "metrics"
UNIT_COSTS_VALID = Check(
    "unit_costs_valid",
    "Every metric is priced exactly once, every cost and inflation factor is a positive number, "
    "and every cost names its source, its own price year and the unit-cost version (an "
    "unsourced assumption is allowed only when marked sourced = false, and is then flagged on "
    "every costed row). Checked before writing: on failure the previous table stays and no "
    "cost is computed.",
    blocking=True,
)
COSTS_ADD_UP = Check(
    "costs_add_up",
    "Every total equals the sum of its five costs to the penny, one price year throughout, and "
    "one row per metrics row. Checked before writing. (No empty or negative cost and one row "
    "per person and month are the table's declared rules: gx_table reports them and the write "
    "refuses on them.)",
    blocking=True,
)
GX_COSTS = gx_check(
    "gx_table",
    "person_month_costs.table: the documented columns, no empty or negative cost, one row per "
    "person and month and exactly one per person_month_metrics row, one price year and one "
    "unit-cost version.",
    before_write=True,
)


@dg.asset(
    **table_asset(
        "unit_costs",
        owners=[ANALYSTS],
        group_name=GROUP,
        deps=REFERENCE_KEYS,
        kinds=("python", "csv"),
    ),
    description=(
        "The unit costs applied, from versioned reference data (data/reference/unit_costs.csv): "
        "one per metric with its source and price year, inflated to one price year through the "
        "price index table (data/reference/price_index.csv, replaceable). The run refuses to mix "
        "price years without an index, and flags costs that have no source."
    ),
    check_specs=[UNIT_COSTS_VALID.spec("unit_costs")],
)
def unit_costs(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    metrics: MetricsResource,
    study: StudyDesignResource,
):
    try:
        costs = metrics.unit_costs(study)
    except CostError as exc:
        # the reference files themselves are unusable (mixed price years, no index, an
        # unparseable cost): the check records why, and nothing is written
        unusable = UNIT_COSTS_VALID.result(False, description=str(exc))
        message = f"unit_costs: {exc}; nothing written"
        yield from refuse(warehouse.get(), context, [unusable], message, rows_in=None)
    table = unit_cost_table(costs)
    problems = unit_cost_problems(table)
    valid = UNIT_COSTS_VALID.result(
        not problems,
        description="; ".join(problems) or None,
        metadata={
            "metrics_priced": int(table["metric"].nunique()),
            "unsourced": int((~table["sourced"].astype(bool)).sum()),
        },
    )
    written = yield from write_or_refuse(
        warehouse.get(),
        context,
        [Write("unit_costs", table)],
        [valid],
        rows_in=len(costs.table),
        refusal=f"unit_costs: {len(problems)} problem(s); nothing written",
        unit_cost_version=costs.version,
        note="rows_in: unit costs of the version in use",
    )
    shown = table[
        ["metric", "unit_cost_gbp", "source_price_year", "unit_cost_at_price_year", "source"]
    ]
    yield dg.MaterializeResult(
        data_version=written.data_version("unit_costs"),
        check_results=[valid],
        metadata={
            "dagster/row_count": len(table),
            **written.metadata,
            "price_year": costs.price_year,
            "unit_cost_version": costs.version,
            "cost_flags": costs.flag_text or "none",
            "unit_costs": table_metadata(shown),
        },
    )


@dg.asset(
    **table_asset(
        "person_month_costs",
        owners=[ANALYSTS],
        group_name=GROUP,
        deps=[person_month_metrics, unit_costs],
        monthly=True,
        gx=True,
    ),
    description=(
        "Cost per cohort member and month: each metric's count times its unit cost at one price "
        "year, their total, the price year and unit-cost version, and any caveat the costs "
        "carry (an unsourced assumption such as the police deployment cost is flagged on every "
        "row that uses it). Partitioned by month."
    ),
    check_specs=[COSTS_ADD_UP.spec("person_month_costs"), GX_COSTS.spec("person_month_costs")],
)
def person_month_costs(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    quality: QualityResource,
):
    wh = warehouse.get()
    months = run_months(context)
    costs = applied_unit_costs(wh)
    pm = read_table(wh, "person_month_metrics", {"month": months})
    pm = pm.sort_values(["month", "person_key"], kind="stable").reset_index(drop=True)
    try:
        pc = cost_person_months(pm, costs)
    except ValueError as exc:
        # counts no costing can take (negative, missing, not whole): recorded, nothing written
        uncostable = COSTS_ADD_UP.result(False, description=str(exc))
        yield from refuse(
            wh,
            context,
            [uncostable],
            f"person_month_costs: {exc}; nothing written",
            rows_in=len(pm),
            unit_cost_version=costs.version,
        )
    pence = (pc[list(COST_COLUMNS)] * 100).round().astype("int64").sum(axis=1)
    problems = []
    if len(pc) != len(pm):
        problems.append(f"{len(pc)} cost rows for {len(pm)} metric rows")
    if ((pc["total_cost"] * 100).round().astype("int64") != pence).any():
        problems.append("totals that are not the sum of their parts")
    if pc["price_year"].nunique() > 1:
        problems.append("more than one price year")
    suite = person_month_suite(
        PersonMonthCosts,
        months,
        min_rows=len(pm),
        max_rows=len(pm),
        price_year=costs.price_year,
        unit_cost_version=costs.version,
    )
    checks = [
        COSTS_ADD_UP.result(
            not problems, description="; ".join(problems) or None, metadata={"rows": len(pc)}
        ),
        gx_check_result(GX_COSTS, run_suite(context, quality, wh, suite, pc, months)),
    ]
    written = yield from write_or_refuse(
        wh,
        context,
        [Write("person_month_costs", pc, {"month": months})],
        checks,
        rows_in=len(pm),
        refusal="person_month_costs: "
        + "; ".join(problems or ["Great Expectations suite failed (see gx_table)"]),
        unit_cost_version=costs.version,
        note="rows_in: person_month_metrics rows of the months",
    )
    by_month = pc.groupby("month")["total_cost"].sum().round(2).reset_index().tail(12)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pc),
            **written.metadata,
            "price_year": costs.price_year,
            "unit_cost_version": costs.version,
            "cost_flags": costs.flag_text or "none",
            "total_cost_gbp": round(float(pc["total_cost"].sum()), 2),
            "cohort_cost_by_month_latest_12": table_metadata(by_month),
        },
        check_results=checks,
    )
