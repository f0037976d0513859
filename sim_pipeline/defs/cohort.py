"""The cohort asset: programme members with their person keys, allocation, engagement and
discharge, baseline and programme windows. Wiring only: the logic is
`sim_pipeline.measures.cohort`."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.common import (
    DATA_ENGINEERING,
    markdown_table,
    record_audit,
    refuse_write,
    table_asset,
)
from sim_pipeline.defs.linkage import person_index
from sim_pipeline.defs.reads import (
    data_months,
)
from sim_pipeline.defs.resources import (
    StudyDesignResource,
    WarehouseResource,
)
from sim_pipeline.measures.cohort import build_cohort
from sim_pipeline.publish.disclosure import control_count
from sim_pipeline.warehouse.dictionary import sql_types

GROUP = "metrics"


@dg.asset(
    **table_asset(
        "cohort",
        owners=[DATA_ENGINEERING],
        group_name=GROUP,
        deps=["staged_programme_register", person_index],
    ),
    description=(
        "The programme cohort: the programme register (latest snapshot per RegisterId) joined "
        "to person keys, with allocation, engagement and discharge dates, the baseline window "
        "(default the 12 months before the allocation month), the programme period (engagement "
        "to discharge or the end of data; never-engaged people from allocation), exposure "
        "months, and intention-to-treat / per-protocol membership. Register rows whose person "
        "has no other record are kept and flagged, not dropped."
    ),
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
    months = data_months(wh)
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
