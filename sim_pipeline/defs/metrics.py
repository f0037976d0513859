"""The person-month metrics asset: each cohort member's counts per month. Wiring only: the logic
is `sim_pipeline.measures.metrics`."""

import dagster as dg

from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.cohort import cohort
from sim_pipeline.defs.common import ANALYSTS, table_asset, table_metadata
from sim_pipeline.defs.events import events
from sim_pipeline.defs.gx import (
    gx_check,
    gx_check_result,
    run_suite,
)
from sim_pipeline.defs.reads import (
    read_table,
    run_months,
)
from sim_pipeline.defs.resources import (
    QualityResource,
    WarehouseResource,
)
from sim_pipeline.measures.cohort import cohort_people
from sim_pipeline.measures.metrics import MEASURES
from sim_pipeline.measures.metrics import person_month_metrics as metric_person_months
from sim_pipeline.measures.tables import PersonMonthMetrics
from sim_pipeline.publish.disclosure import control_counts
from sim_pipeline.quality.model_suites import person_month_suite

GROUP = "metrics"
ASSET = "person_month_metrics"
ONE_ROW_PER_PERSON_MONTH = Check(
    "one_row_per_person_month",
    "Exactly one row for every cohort member and month (zeros included) and every event of "
    "the month counted. Checked before writing. (The table's own rules, one row per person "
    "and month and no empty, negative or impossible count, are its declaration's: gx_table "
    "reports them and the write refuses on them.)",
    blocking=True,
)
GX_TABLE = gx_check(
    "gx_table",
    "person_month_metrics.table: the columns the data dictionary documents, no empty "
    "value, one row per person and month, every month in the run, no negative count "
    "and no impossible one (bed days above 31, any count above 1000).",
    before_write=True,
)


@dg.asset(
    **table_asset(
        ASSET,
        owners=[ANALYSTS],
        group_name=GROUP,
        deps=[events, cohort],
        monthly=True,
        gx=True,
    ),
    description=(
        "The five contact metrics (A&E attendances, ambulance resources, mental-health bed "
        "days, police deployments, s136 detentions) for every cohort member and every month, "
        "zeros included, and for every other person in the months they had any event (an "
        "absent row means zero; comparison cohorts are drawn from them). Partitioned by month."
    ),
    check_specs=[ONE_ROW_PER_PERSON_MONTH.spec(ASSET), GX_TABLE.spec(ASSET)],
)
def person_month_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, quality: QualityResource
):
    wh = warehouse.get()
    months = run_months(context)
    people = cohort_people(read_table(wh, "cohort"))["person_key"]
    ev = read_table(wh, "events", {"month": months})
    pm = metric_person_months(ev, people, months)
    counted = int(pm[list(MEASURES)].to_numpy().sum())
    in_cohort = pm["person_key"].isin(set(people))
    expected_rows = len(set(people)) * len(months)
    problems = []
    if int(in_cohort.sum()) != expected_rows:
        problems.append(f"{int(in_cohort.sum())} cohort rows for {expected_rows} person-months")
    if counted != int(ev["quantity"].sum()):
        problems.append(f"{counted} counted of {int(ev['quantity'].sum())} event quantities")
    suite = person_month_suite(PersonMonthMetrics, months, expected_rows)
    checks = [
        ONE_ROW_PER_PERSON_MONTH.result(
            not problems,
            description="; ".join(problems) or None,
            metadata={
                "cohort_rows": int(in_cohort.sum()),
                "cohort_people": len(set(people)),
                "months": len(months),
                "event_quantity_counted": counted,
            },
        ),
        gx_check_result(GX_TABLE, run_suite(context, quality, wh, suite, pm, months)),
    ]
    written = yield from write_or_refuse(
        wh,
        context,
        [Write(ASSET, pm, {"month": months})],
        checks,
        rows_in=len(ev),
        note="rows_in: events of the months",
    )
    totals = pm[in_cohort].groupby("month")[list(MEASURES)].sum().reset_index()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pm),
            **written.metadata,
            "cohort_people": len(set(people)),
            "other_people_with_activity": int(pm.loc[~in_cohort, "person_key"].nunique()),
            "cohort_totals_by_month_latest_12": table_metadata(
                control_counts(totals.tail(12), list(MEASURES))
            ),
        },
        check_results=checks,
    )
