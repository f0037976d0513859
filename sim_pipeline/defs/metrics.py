"""Metric assets: events, cohort, person-month metrics and costs, unit costs, the headline.
Wiring only: the logic is in `sim_pipeline.measures`."""

from pathlib import Path

import dagster as dg
import pandas as pd

from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION
from sim_pipeline.defs.common import (
    DATA_ENGINEERING,
    MONTHLY,
    column_schema,
    figure_metadata,
    markdown_table,
    month_of,
    record_audit,
    refuse_write,
    warehouse_kind,
)
from sim_pipeline.defs.gx import (
    DATA_DOCS_METADATA,
    GX_KINDS,
    gx_check_result,
    gx_check_spec,
    run_suite,
)
from sim_pipeline.defs.linkage import linkage_quality, person_index
from sim_pipeline.defs.resources import (
    MetricsResource,
    QualityResource,
    StudyDesignResource,
    WarehouseResource,
)
from sim_pipeline.identity.linkage import BLOOM_COLUMNS, TOKEN_COLUMNS
from sim_pipeline.measures.cohort import build_cohort, cohort_people, months_between
from sim_pipeline.measures.costs import (
    CostError,
    unit_cost_problems,
    unit_cost_table,
    unit_costs_from_table,
)
from sim_pipeline.measures.costs import person_month_costs as cost_person_months
from sim_pipeline.measures.events import STAGED_INPUTS, build_events, monthly_totals
from sim_pipeline.measures.headline import (
    impossible_values,
    programme_headline,
    trajectory,
)
from sim_pipeline.measures.metrics import MEASURES, METRICS
from sim_pipeline.measures.metrics import person_month_metrics as metric_person_months
from sim_pipeline.publish.disclosure import control_count, control_counts
from sim_pipeline.publish.release import headline_preview
from sim_pipeline.quality.expectations import person_month_suite
from sim_pipeline.warehouse.dictionary import sql_types, table_doc
from sim_pipeline.warehouse.store import Warehouse

GROUP = "metrics"
ANALYSTS = "team:analysts"
S136_ONE_SIDE_LIMIT = 0.25  # share of detentions seen by one side only before the check warns
KEY_STATISTICS = [
    "n_allocated",
    "n_engaged",
    "n_people",
    "mean_months",
    "min_months",
    "max_months",
    "pct_with_cost_fall",
    "mean_pct_change_per_person",
    "ratio_of_means_pct_change",
    "mean_baseline_monthly_cost_gbp",
    "mean_programme_monthly_cost_gbp",
    "mean_monthly_change_gbp",
    "total_change_gbp",
    "total_change_gbp_simple",
    "largest_individual_fall_gbp",
]
_S136_BEFORE = "staged_police_s136_return"


def _months(context: dg.AssetExecutionContext) -> list[str]:
    return [month_of(pk) for pk in context.partition_keys]


def _month_before(month: str) -> str:
    return str(pd.Period(month, "M") - 1)


def _staged_deps() -> list[dg.AssetDep]:
    deps = []
    for name in STAGED_INPUTS:
        mapping = (
            # s136: a detention late on a month's last day may start its MHSDS period the next
            # day, so each month also reads the police returns of the month before.
            dg.TimeWindowPartitionMapping(
                start_offset=-1, allow_nonexistent_upstream_partitions=True
            )
            if name == _S136_BEFORE
            else None
        )
        deps.append(dg.AssetDep(name, partition_mapping=mapping))
    return deps


def _read(wh: Warehouse, table: str, where: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """A warehouse table, or an empty frame with its documented columns if nothing is there yet
    (an empty cohort writes no table)."""
    df = wh.read(table, where)
    if len(df.columns):
        return df
    dtypes = {"text": "string", "integer": "int64", "real": "float64", "boolean": "bool"}
    return pd.DataFrame(
        {c.name: pd.Series(dtype=dtypes.get(c.type, "object")) for c in table_doc(table).columns}
    )


def _unencoded(table: str) -> list[str]:
    """A staged table's columns but its tokens and name filters (events count, never match:
    the encodings are most of a staged row's bytes)."""
    return [c for c in sql_types(table) if c not in {*TOKEN_COLUMNS, *BLOOM_COLUMNS}]


def _data_months(wh: Warehouse) -> list[str]:
    """Months with any ingested drop (the ingest ledger), oldest first."""
    ledger = wh.read("ingest_ledger", columns=["month"])
    return sorted(ledger["month"].dropna().astype(str).unique()) if len(ledger) else []


@dg.asset(
    description=(
        "Every countable event with its person: A&E attendances (provider duplicates and "
        "repeats of one person at one site and arrival time removed), ambulance resources "
        "despatched, mental-health bed days by the MHS24 rule (each ward stay's days inside "
        "the month), police deployments where officers attended, and s136 detentions counted "
        "once although the police return and MHSDS (LegalStatusCode 20) both record them; "
        "and the harm measures: A&E self-harm presentations, arrests, charges, s136 detentions "
        "taken to a police station, community care contacts attended and missed. "
        "Partitioned by reporting month."
    ),
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[*_staged_deps(), person_index, linkage_quality],
    group_name=GROUP,
    owners=[DATA_ENGINEERING],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "pandas", warehouse_kind()},
    metadata={"dagster/column_schema": column_schema("events"), "dagster/table_name": "events"},
    check_specs=[
        dg.AssetCheckSpec(
            "events_valid",
            asset="events",
            blocking=True,
            description="Every event has a person key, a date and a positive quantity, and no "
            "ward stay has more bed days in a month than the month has days. Checked before "
            "writing: a failure writes nothing and stops the metrics.",
        ),
        dg.AssetCheckSpec(
            "s136_seen_by_one_side_only",
            asset="events",
            blocking=False,
            description="How many s136 detentions only the police return, or only MHSDS, "
            f"recorded. Warns when more than {S136_ONE_SIDE_LIMIT:.0%} are one-sided: the two "
            "sides should describe the same detentions.",
        ),
        dg.AssetCheckSpec(
            "events_in_reporting_month",
            asset="events",
            blocking=False,
            description="Events dated outside the month of the drop that reported them "
            "(late or early records). They count in their reporting month; this warns so an "
            "analyst can judge whether that matters.",
        ),
    ],
)
def events(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    wh = warehouse.get()
    months = _months(context)
    staged = {
        name: wh.read(name, {"month": months}, columns=_unencoded(name)) for name in STAGED_INPUTS
    }
    before = wh.read(
        _S136_BEFORE, {"month": [_month_before(months[0])]}, columns=_unencoded(_S136_BEFORE)
    )
    index = wh.read("person_index")
    ev, stats = build_events(staged, index, months, before)

    days_in_month = pd.to_datetime(ev["month"] + "-01").dt.days_in_month
    too_many = (ev["metric"] == "mh_bed_days") & (ev["quantity"] > days_in_month)
    bad = int(
        (ev["quantity"] <= 0).sum()
        + too_many.sum()
        + ev["person_key"].isna().sum()
        + ev["event_date"].isna().sum()
    )
    rows_in = int(sum(stats.rows_in.values()))
    if bad or stats.unindexed:
        message = (
            f"events for {months[0]}..{months[-1]}: {bad} invalid events and "
            f"{stats.unindexed} staged records missing from the person index; nothing written"
        )
        invalid = dg.AssetCheckResult(check_name="events_valid", passed=False, description=message)
        yield from refuse_write(wh, context, [invalid], message, rows_in=rows_in)
    with wh.transaction() as tx:
        tx.replace("events", ev, {"month": months}, sql_types("events"))
        provenance = record_audit(
            tx,
            context,
            rows_in=rows_in,
            rows_out=len(ev),
            note="rows_in: staged rows read; rows_out: events",
        )

    sides = stats.s136_sides
    detentions = sum(sides.values())  # each detention once: both sides, or one only
    one_sided = sides.get("police_only", 0) + sides.get("mhsds_only", 0)
    share = one_sided / detentions if detentions else 0.0
    totals = monthly_totals(ev)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(ev),
            **provenance,
            "months": f"{months[0]}..{months[-1]}",
            "quantity_by_metric": dg.MetadataValue.json(
                {m: int(totals[m].sum()) if m in totals else 0 for m in MEASURES}
            ),
            "monthly_totals_latest_12": markdown_table(
                control_counts(totals.tail(12), list(MEASURES))
            ),
            "removed_by_rule": dg.MetadataValue.json(stats.removed),
            "s136_sides": dg.MetadataValue.json(sides),
            "rows_in": dg.MetadataValue.json(stats.rows_in),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="events_valid", passed=True, metadata={"events_checked": len(ev)}
            ),
            dg.AssetCheckResult(
                check_name="s136_seen_by_one_side_only",
                passed=share <= S136_ONE_SIDE_LIMIT,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "detentions": detentions,
                    "seen_by_both": sides.get("seen_by_both", 0),
                    "police_only": sides.get("police_only", 0),
                    "mhsds_only": sides.get("mhsds_only", 0),
                    "one_sided_share": round(share, 4),
                    "limit": S136_ONE_SIDE_LIMIT,
                },
            ),
            dg.AssetCheckResult(
                check_name="events_in_reporting_month",
                passed=stats.outside_month == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"events_dated_outside_reporting_month": stats.outside_month},
            ),
        ],
    )


@dg.asset(
    description=(
        "The programme cohort: the programme register (latest snapshot per RegisterId) joined "
        "to person keys, with allocation, engagement and discharge dates, the baseline window "
        "(default the 12 months before the allocation month), the programme period (engagement "
        "to discharge or the end of data; never-engaged people from allocation), exposure "
        "months, and intention-to-treat / per-protocol membership. Register rows whose person "
        "has no other record are kept and flagged, not dropped."
    ),
    deps=["staged_programme_register", person_index],
    group_name=GROUP,
    owners=[DATA_ENGINEERING],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "pandas", warehouse_kind()},
    metadata={"dagster/column_schema": column_schema("cohort"), "dagster/table_name": "cohort"},
    check_specs=[
        dg.AssetCheckSpec(
            "cohort_windows_valid",
            asset="cohort",
            blocking=True,
            description="Every cohort member has a person key, windows of zero or more months "
            "(zero when the programme lies outside the months of data) and dates in order "
            "(allocation before engagement and discharge). Checked before writing.",
        ),
        dg.AssetCheckSpec(
            "register_rows_linked",
            asset="cohort",
            blocking=False,
            description="Register rows whose person has no record in any other source (trust, "
            "police, ambulance or A&E). They stay in the cohort with zero activity, which "
            "would understate baseline use: warns when any exist (which ones: cohort.linked "
            "in the warehouse; metadata holds counts only).",
        ),
        dg.AssetCheckSpec(
            "one_register_row_per_person",
            asset="cohort",
            blocking=False,
            description="Two register rows that link to one person (allocated twice, or a "
            "linkage merge). The person counts once, from the first allocation: warns.",
        ),
    ],
)
def cohort(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    study: StudyDesignResource,
):
    wh = warehouse.get()
    months = _data_months(wh)
    if not months:
        raise dg.Failure("no ingested months: materialise the staged tables first")
    register = wh.read("staged_programme_register")
    index = wh.read("person_index")
    co = build_cohort(register, index, months[0], months[-1], study.baseline_months)
    invalid = (
        co["person_key"].isna()
        | (co["programme_months"] < 0)
        | (co["baseline_months"] < 0)
        | (pd.to_datetime(co["engagement_date"]) < pd.to_datetime(co["allocation_date"]))
        | (pd.to_datetime(co["discharge_date"]) < pd.to_datetime(co["allocation_date"]))
    )
    if invalid.any():
        message = (
            f"cohort: {int(invalid.sum())} register entries with impossible windows; "
            "nothing written (query the staged register for engagement or discharge dates "
            "before allocation)"
        )
        windows = dg.AssetCheckResult(
            check_name="cohort_windows_valid", passed=False, description=message
        )
        yield from refuse_write(wh, context, [windows], message, rows_in=len(register))
    with wh.transaction() as tx:
        tx.replace_all("cohort", co, dtype=sql_types("cohort"))
        provenance = record_audit(
            tx,
            context,
            rows_in=len(register),
            rows_out=len(co),
            note="rows_in: staged register rows (every snapshot); rows_out: register entries",
        )
    unlinked = co[~co["linked"]]
    repeated = co[co.duplicated("person_key", keep=False)]
    summary = pd.DataFrame(
        {
            "population": ["itt", "per_protocol"],
            "people": [int(co["itt"].sum()), int(co["per_protocol"].sum())],
            "mean_programme_months": [
                round(co["programme_months"].mean(), 2),
                round(co.loc[co["per_protocol"], "programme_months"].mean(), 2),
            ],
        }
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(co),
            **provenance,
            "data_months": f"{months[0]}..{months[-1]}",
            "baseline_months": study.baseline_months,
            "populations": markdown_table(summary),
            "by_discharge_reason": dg.MetadataValue.json(
                {
                    k: control_count(v)
                    for k, v in co["discharge_reason"].fillna("on programme").value_counts().items()
                }
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="cohort_windows_valid", passed=True, metadata={"entries": len(co)}
            ),
            dg.AssetCheckResult(
                check_name="register_rows_linked",
                passed=unlinked.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "register_rows": len(co),
                    "unlinked": len(unlinked),
                },
            ),
            dg.AssetCheckResult(
                check_name="one_register_row_per_person",
                passed=repeated.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rows_sharing_a_person": len(repeated)},
            ),
        ],
    )


@dg.asset(
    description=(
        "The five contact metrics (A&E attendances, ambulance resources, mental-health bed "
        "days, police deployments, s136 detentions) for every cohort member and every month, "
        "zeros included, and for every other person in the months they had any event (an "
        "absent row means zero; comparison cohorts are drawn from them). Partitioned by month."
    ),
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[events, cohort],
    group_name=GROUP,
    owners=[ANALYSTS],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "pandas", warehouse_kind(), *GX_KINDS},
    metadata={
        "dagster/column_schema": column_schema("person_month_metrics"),
        "dagster/table_name": "person_month_metrics",
        **DATA_DOCS_METADATA,
    },
    check_specs=[
        dg.AssetCheckSpec(
            "one_row_per_person_month",
            asset="person_month_metrics",
            blocking=True,
            description="Exactly one row for every cohort member and month (zeros included), "
            "no person-month twice, no negative or missing count, and every event of the month "
            "counted. Checked before writing.",
        ),
        gx_check_spec(
            "person_month_metrics",
            "gx_table",
            "person_month_metrics.table: the columns the data dictionary documents, no empty "
            "value, one row per person and month, every month in the run, no negative count "
            "and no impossible one (bed days above 31, any count above 1000).",
            before_write=True,
        ),
    ],
)
def person_month_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, quality: QualityResource
):
    wh = warehouse.get()
    months = _months(context)
    people = cohort_people(_read(wh, "cohort"))["person_key"]
    ev = _read(wh, "events", {"month": months})
    pm = metric_person_months(ev, people, months)
    counted = int(pm[list(MEASURES)].to_numpy().sum())
    in_cohort = pm["person_key"].isin(set(people))
    expected_rows = len(set(people)) * len(months)
    problems = []
    if int(in_cohort.sum()) != expected_rows or pm.duplicated(["person_key", "month"]).any():
        problems.append(f"{int(in_cohort.sum())} cohort rows for {expected_rows} person-months")
    if (pm[list(MEASURES)] < 0).to_numpy().any() or pm[list(MEASURES)].isna().to_numpy().any():
        problems.append("negative or missing counts")
    if counted != int(ev["quantity"].sum()):
        problems.append(f"{counted} counted of {int(ev['quantity'].sum())} event quantities")
    suite = person_month_suite(
        "person_month_metrics", list(sql_types("person_month_metrics")), months, expected_rows
    )
    gx_result = gx_check_result("gx_table", run_suite(context, quality, wh, suite, pm, months))
    shape = dg.AssetCheckResult(
        check_name="one_row_per_person_month",
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={
            "cohort_rows": int(in_cohort.sum()),
            "cohort_people": len(set(people)),
            "months": len(months),
            "event_quantity_counted": counted,
        },
    )
    if problems or not gx_result.passed:
        message = (
            "person_month_metrics: "
            + "; ".join(problems or ["Great Expectations suite failed (see gx_table)"])
            + "; nothing written"
        )
        yield from refuse_write(wh, context, [shape, gx_result], message, rows_in=len(ev))
    with wh.transaction() as tx:
        tx.replace("person_month_metrics", pm, {"month": months}, sql_types("person_month_metrics"))
        provenance = record_audit(
            tx, context, rows_in=len(ev), rows_out=len(pm), note="rows_in: events of the months"
        )
    totals = pm[in_cohort].groupby("month")[list(MEASURES)].sum().reset_index()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pm),
            **provenance,
            "cohort_people": len(set(people)),
            "other_people_with_activity": int(pm.loc[~in_cohort, "person_key"].nunique()),
            "cohort_totals_by_month_latest_12": markdown_table(
                control_counts(totals.tail(12), list(MEASURES))
            ),
        },
        check_results=[shape, gx_result],
    )


@dg.asset(
    description=(
        "The unit costs applied, from versioned reference data (data/reference/unit_costs.csv): "
        "one per metric with its source and price year, inflated to one price year through the "
        "price index table (data/reference/price_index.csv, replaceable). The run refuses to mix "
        "price years without an index, and flags costs that have no source."
    ),
    group_name=GROUP,
    owners=[ANALYSTS],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "csv", warehouse_kind()},
    metadata={
        "dagster/column_schema": column_schema("unit_costs"),
        "dagster/table_name": "unit_costs",
    },
    check_specs=[
        dg.AssetCheckSpec(
            "unit_costs_valid",
            asset="unit_costs",
            blocking=True,
            description="Every metric is priced exactly once, every cost and inflation factor "
            "is a positive number, and every cost names its source, its own price year and "
            "the unit-cost version (an unsourced assumption is allowed only when marked "
            "sourced = false, and is then flagged on every costed row). Checked before "
            "writing: on failure the previous table stays and no cost is computed.",
        ),
    ],
)
def unit_costs(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, metrics: MetricsResource
):
    try:
        costs = metrics.unit_costs()
    except CostError as exc:
        # the reference files themselves are unusable (mixed price years, no index, an
        # unparseable cost): the check records why, and nothing is written
        unusable = dg.AssetCheckResult(
            check_name="unit_costs_valid", passed=False, description=str(exc)
        )
        message = f"unit_costs: {exc}; nothing written"
        yield from refuse_write(warehouse.get(), context, [unusable], message, rows_in=None)
    table = unit_cost_table(costs)
    problems = unit_cost_problems(table)
    valid = dg.AssetCheckResult(
        check_name="unit_costs_valid",
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={
            "metrics_priced": int(table["metric"].nunique()),
            "unsourced": int((~table["sourced"].astype(bool)).sum()),
        },
    )
    if problems:
        yield from refuse_write(
            warehouse.get(),
            context,
            [valid],
            f"unit_costs: {len(problems)} problem(s); nothing written",
            rows_in=len(costs.table),
            unit_cost_version=costs.version,
        )
    with warehouse.get().transaction() as tx:
        tx.replace_all("unit_costs", table, dtype=sql_types("unit_costs"))
        provenance = record_audit(
            tx,
            context,
            rows_in=len(costs.table),
            rows_out=len(table),
            unit_cost_version=costs.version,
            note="rows_in: unit costs of the version in use",
        )
    shown = table[
        ["metric", "unit_cost_gbp", "source_price_year", "unit_cost_at_price_year", "source"]
    ]
    yield dg.MaterializeResult(
        check_results=[valid],
        metadata={
            "dagster/row_count": len(table),
            **provenance,
            "price_year": costs.price_year,
            "unit_cost_version": costs.version,
            "cost_flags": costs.flag_text or "none",
            "unit_costs": markdown_table(shown),
        },
    )


def _applied_unit_costs(wh: Warehouse):  # -> sim_pipeline.measures.costs.UnitCosts
    """The costs the `unit_costs` asset applied, read from its table (not the reference file)."""
    try:
        return unit_costs_from_table(wh.read("unit_costs"))
    except CostError as exc:
        raise dg.Failure(description=str(exc)) from None


@dg.asset(
    description=(
        "Cost per cohort member and month: each metric's count times its unit cost at one price "
        "year, their total, the price year and unit-cost version, and any caveat the costs "
        "carry (an unsourced assumption such as the police deployment cost is flagged on every "
        "row that uses it). Partitioned by month."
    ),
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[person_month_metrics, unit_costs],
    group_name=GROUP,
    owners=[ANALYSTS],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "pandas", warehouse_kind(), *GX_KINDS},
    metadata={
        "dagster/column_schema": column_schema("person_month_costs"),
        "dagster/table_name": "person_month_costs",
        **DATA_DOCS_METADATA,
    },
    check_specs=[
        dg.AssetCheckSpec(
            "costs_add_up",
            asset="person_month_costs",
            blocking=True,
            description="No negative cost, every total equals the sum of its five costs to the "
            "penny, one price year throughout, and one row per metrics row. Checked before "
            "writing.",
        ),
        gx_check_spec(
            "person_month_costs",
            "gx_table",
            "person_month_costs.table: the documented columns, no empty or negative cost, one "
            "row per person and month and exactly one per person_month_metrics row, one price "
            "year and one unit-cost version.",
            before_write=True,
        ),
    ],
)
def person_month_costs(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    quality: QualityResource,
):
    wh = warehouse.get()
    months = _months(context)
    costs = _applied_unit_costs(wh)
    pm = _read(wh, "person_month_metrics", {"month": months})
    pm = pm.sort_values(["month", "person_key"], kind="stable").reset_index(drop=True)
    try:
        pc = cost_person_months(pm, costs)
    except ValueError as exc:
        # counts no costing can take (negative, missing, not whole): recorded, nothing written
        uncostable = dg.AssetCheckResult(
            check_name="costs_add_up", passed=False, description=str(exc)
        )
        yield from refuse_write(
            wh,
            context,
            [uncostable],
            f"person_month_costs: {exc}; nothing written",
            rows_in=len(pm),
            unit_cost_version=costs.version,
        )
    cost_cols = [f"cost_{m}" for m in METRICS]
    pence = (pc[cost_cols] * 100).round().astype("int64").sum(axis=1)
    problems = []
    if len(pc) != len(pm):
        problems.append(f"{len(pc)} cost rows for {len(pm)} metric rows")
    if (pc[[*cost_cols, "total_cost"]] < 0).to_numpy().any():
        problems.append("negative costs")
    if ((pc["total_cost"] * 100).round().astype("int64") != pence).any():
        problems.append("totals that are not the sum of their parts")
    if pc["price_year"].nunique() > 1:
        problems.append("more than one price year")
    suite = person_month_suite(
        "person_month_costs",
        list(sql_types("person_month_costs")),
        months,
        min_rows=len(pm),
        max_rows=len(pm),
        price_year=costs.price_year,
        unit_cost_version=costs.version,
    )
    gx_result = gx_check_result("gx_table", run_suite(context, quality, wh, suite, pc, months))
    add_up = dg.AssetCheckResult(
        check_name="costs_add_up",
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={"rows": len(pc)},
    )
    if problems or not gx_result.passed:
        message = (
            "person_month_costs: "
            + "; ".join(problems or ["Great Expectations suite failed (see gx_table)"])
            + "; nothing written"
        )
        yield from refuse_write(
            wh,
            context,
            [add_up, gx_result],
            message,
            rows_in=len(pm),
            unit_cost_version=costs.version,
        )
    with wh.transaction() as tx:
        tx.replace("person_month_costs", pc, {"month": months}, sql_types("person_month_costs"))
        provenance = record_audit(
            tx,
            context,
            rows_in=len(pm),
            rows_out=len(pc),
            unit_cost_version=costs.version,
            note="rows_in: person_month_metrics rows of the months",
        )
    by_month = pc.groupby("month")["total_cost"].sum().round(2).reset_index().tail(12)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pc),
            **provenance,
            "price_year": costs.price_year,
            "unit_cost_version": costs.version,
            "cost_flags": costs.flag_text or "none",
            "total_cost_gbp": round(float(pc["total_cost"].sum()), 2),
            "cohort_cost_by_month_latest_12": markdown_table(by_month),
        },
        check_results=[add_up, gx_result],
    )


@dg.asset(
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
    name="programme_headline",
    deps=[person_month_costs, person_month_metrics, cohort],
    group_name=GROUP,
    owners=[ANALYSTS],
    automation_condition=DOWNSTREAM_AUTOMATION,
    kinds={"python", "pandas", warehouse_kind()},
    metadata={
        "dagster/column_schema": column_schema("programme_headline"),
        "dagster/table_name": "programme_headline",
    },
    check_specs=[
        dg.AssetCheckSpec(
            "headline_covers_cohort",
            asset="programme_headline",
            blocking=False,
            description="The headline counts every cohort member (n_allocated) and every "
            "engaged member (n_engaged), and every month of every member's baseline and "
            "programme windows has been costed (a month missing from person_month_costs would "
            "silently count as zero use).",
        ),
        dg.AssetCheckSpec(
            "headline_values_possible",
            asset="programme_headline",
            blocking=True,
            description="No headline figure is impossible: no negative count, rate or cost, "
            "no share outside 0-100%, no fall of more than 100%, no more engaged or analysed "
            "people than allocated, no missing figure for a non-empty population. Checked "
            "before writing: on failure the previous headline stays and nothing downstream "
            "(evaluation, publication) runs.",
        ),
    ],
)
def programme_headline_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, metrics: MetricsResource
):
    wh = warehouse.get()
    co = _read(wh, "cohort")
    pc = _read(wh, "person_month_costs")
    pm = _read(wh, "person_month_metrics")
    # price year, version and caveats of the costs actually used (the resource's only if none)
    if len(pc):
        years, versions, flags = (
            sorted(pc[c].fillna("").unique())
            for c in ("price_year", "unit_cost_version", "cost_flags")
        )
    else:
        costs = _applied_unit_costs(wh)
        years, versions, flags = [costs.price_year], [costs.version], [costs.flag_text]
    if len(years) > 1 or len(versions) > 1:
        raise dg.Failure(
            f"person_month_costs mixes price years {years} or unit-cost versions {versions}: "
            "rematerialise every month of person_month_costs; nothing written"
        )
    head = programme_headline(pc, pm, co, years[0], versions[0])
    impossible = impossible_values(head)
    possible = dg.AssetCheckResult(
        check_name="headline_values_possible",
        passed=not impossible,
        description="; ".join(impossible[:20]) or None,
        metadata={"statistics_checked": len(head), "impossible": len(impossible)},
    )
    if impossible:
        yield from refuse_write(
            wh,
            context,
            [possible],
            f"programme_headline: {len(impossible)} impossible figures; nothing written",
            rows_in=len(pc),
            unit_cost_version=versions[0],
        )
    with wh.transaction() as tx:
        tx.replace_all("programme_headline", head, dtype=sql_types("programme_headline"))
        provenance = record_audit(
            tx,
            context,
            rows_in=len(pc),
            rows_out=len(head),
            unit_cost_version=versions[0],
            note="rows_in: person_month_costs rows; rows_out: headline statistics",
        )
    traj = trajectory(pc, co)
    chart = _trajectory_chart(traj, years[0], Path(metrics.reports_dir) / "cost_trajectory.png")
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
        metadata={
            "dagster/row_count": len(head),
            **provenance,
            "price_year": years[0],
            "unit_cost_version": versions[0],
            "cost_flags": ";".join(f for f in flags if f) or "none",
            "headline": markdown_table(headline_preview(head, KEY_STATISTICS)),
            "per_metric_rates": markdown_table(
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
            dg.AssetCheckResult(
                check_name="headline_covers_cohort",
                passed=bool(
                    itt.get("n_allocated") == len(people)
                    and itt.get("n_engaged") == int(people["per_protocol"].sum())
                    and not uncosted
                ),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "cohort_people": len(people),
                    "months_in_windows": len(needed),
                    "months_without_costs": ", ".join(uncosted[:24]) or "none",
                },
            ),
            possible,
        ],
    )


def _trajectory_chart(traj: pd.DataFrame, price_year: str, path: Path) -> dg.MetadataValue:
    """Mean monthly cost per person around allocation, ITT and per-protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for population, colour in (("itt", "#005eb8"), ("per_protocol", "#ed8b00")):
        d = traj[traj["population"] == population]
        ax.plot(d["relative_month"], d["mean_cost"], marker=".", label=population, color=colour)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("months from allocation (0 = allocation month)")
    ax.set_ylabel(f"mean cost per person-month (GBP, {price_year})")
    ax.set_title("Programme cohort: monthly cost around allocation (no comparison group)")
    ax.legend()
    fig.tight_layout()
    return figure_metadata(fig, path, "cost trajectory")


METRIC_ASSETS = [
    events,
    cohort,
    person_month_metrics,
    unit_costs,
    person_month_costs,
    programme_headline_asset,
]
