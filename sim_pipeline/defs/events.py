"""The events asset: every countable event (A&E, ambulance, police, mental-health contacts
and detentions) with its person key, one row per event and month. Wiring only: the logic is
`sim_pipeline.measures.events`."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import DATA_ENGINEERING, table_asset, table_metadata
from sim_pipeline.defs.linkage import person_index
from sim_pipeline.defs.linkage_quality import linkage_quality
from sim_pipeline.defs.reads import (
    S136_BEFORE,
    month_before,
    run_months,
    staged_deps,
)
from sim_pipeline.defs.resources import (
    WarehouseResource,
)
from sim_pipeline.measures.events import (
    STAGED_INPUTS,
    build_events,
    monthly_totals,
    read_columns,
)
from sim_pipeline.measures.metrics import MEASURES
from sim_pipeline.measures.tables import Events
from sim_pipeline.publish.disclosure import control_counts
from sim_pipeline.warehouse.model import violations

GROUP = "metrics"
S136_ONE_SIDE_LIMIT = 0.25  # share of detentions seen by one side only before the check warns
EVENTS_VALID = Check(
    "events_valid",
    "Every event keeps the events table's declared rules (a person key, a date, a positive "
    "quantity), no ward stay has more bed days in a month than the month has days, and every "
    "staged record is in the person index. Checked before writing: a failure writes nothing "
    "and stops the metrics.",
    blocking=True,
)
S136_ONE_SIDED = Check(
    "s136_seen_by_one_side_only",
    "How many s136 detentions only the police return, or only MHSDS, recorded. Warns when "
    f"more than {S136_ONE_SIDE_LIMIT:.0%} are one-sided: the two sides should describe the "
    "same detentions.",
)
IN_REPORTING_MONTH = Check(
    "events_in_reporting_month",
    "Events dated outside the month of the drop that reported them (late or early records). "
    "They count in their reporting month; this warns so an analyst can judge whether that "
    "matters.",
)


@dg.asset(
    **table_asset(
        "events",
        owners=[DATA_ENGINEERING],
        group_name=GROUP,
        deps=[*staged_deps(), person_index, linkage_quality],
        monthly=True,
    ),
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
    check_specs=[c.spec("events") for c in (EVENTS_VALID, S136_ONE_SIDED, IN_REPORTING_MONTH)],
)
def events(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    wh = warehouse.get()
    months = run_months(context)
    staged = {
        name: wh.read(name, {"month": months}, columns=read_columns(name)) for name in STAGED_INPUTS
    }
    before = wh.read(
        S136_BEFORE, {"month": [month_before(months[0])]}, columns=read_columns(S136_BEFORE)
    )
    index = wh.read("person_index")
    ev, stats = build_events(staged, index, months, before)

    days_in_month = pd.to_datetime(ev["month"] + "-01").dt.days_in_month
    too_many = (ev["metric"] == "mh_bed_days") & (ev["quantity"] > days_in_month)
    problems = [str(v) for v in violations(Events, ev)]
    if too_many.any():
        problems.append(f"{int(too_many.sum())} ward stay-months with more bed days than days")
    if stats.unindexed:
        problems.append(f"{stats.unindexed} staged records missing from the person index")
    rows_in = int(sum(stats.rows_in.values()))
    valid = EVENTS_VALID.result(
        not problems,
        description="; ".join([*problems, "nothing written"]) if problems else None,
        metadata={"events_checked": len(ev)},
    )
    written = yield from write_or_refuse(
        wh,
        context,
        [Write("events", ev, {"month": months})],
        [valid],
        rows_in=rows_in,
        refusal=f"events for {months[0]}..{months[-1]}: " + "; ".join(problems),
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
            **written.metadata,
            "months": f"{months[0]}..{months[-1]}",
            "quantity_by_metric": dg.MetadataValue.json(
                {m: int(totals[m].sum()) if m in totals else 0 for m in MEASURES}
            ),
            "monthly_totals_latest_12": table_metadata(
                control_counts(totals.tail(12), list(MEASURES))
            ),
            "removed_by_rule": dg.MetadataValue.json(stats.removed),
            "s136_sides": dg.MetadataValue.json(sides),
            "rows_in": dg.MetadataValue.json(stats.rows_in),
        },
        check_results=[
            valid,
            S136_ONE_SIDED.result(
                share <= S136_ONE_SIDE_LIMIT,
                metadata={
                    "detentions": detentions,
                    "seen_by_both": sides.get("seen_by_both", 0),
                    "police_only": sides.get("police_only", 0),
                    "mhsds_only": sides.get("mhsds_only", 0),
                    "one_sided_share": round(share, 4),
                    "limit": S136_ONE_SIDE_LIMIT,
                },
            ),
            IN_REPORTING_MONTH.result(
                stats.outside_month == 0,
                metadata={"events_dated_outside_reporting_month": stats.outside_month},
            ),
        ],
    )
