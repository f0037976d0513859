"""The cohort asset: programme members with their person keys, allocation, engagement and
discharge, baseline and programme windows. Wiring only: the logic is
`sim_pipeline.measures.cohort`."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import DATA_ENGINEERING, table_asset, table_metadata
from sim_pipeline.defs.linkage import person_index
from sim_pipeline.defs.reads import (
    data_months,
)
from sim_pipeline.defs.resources import (
    StudyDesignResource,
    WarehouseResource,
)
from sim_pipeline.measures.cohort import build_cohort
from sim_pipeline.measures.tables import Cohort
from sim_pipeline.publish.disclosure import control_count
from sim_pipeline.warehouse.model import violations

GROUP = "metrics"
WINDOWS_VALID = Check(
    "cohort_windows_valid",
    "Every cohort member keeps the cohort table's declared rules (a person key, windows of zero "
    "or more months: zero when the programme lies outside the months of data) and has dates in "
    "order (allocation before engagement and discharge). Checked before writing.",
    blocking=True,
)
ROWS_LINKED = Check(
    "register_rows_linked",
    "Register rows whose person has no record in any other source (trust, police, ambulance or "
    "A&E). They stay in the cohort with zero activity, which would understate baseline use: "
    "warns when any exist (which ones: cohort.linked in the warehouse; metadata holds counts "
    "only).",
)
ONE_ROW_PER_PERSON = Check(
    "one_register_row_per_person",
    "Two register rows that link to one person (allocated twice, or a linkage merge). The "
    "person counts once, from the first allocation: warns.",
)


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
    check_specs=[c.spec("cohort") for c in (WINDOWS_VALID, ROWS_LINKED, ONE_ROW_PER_PERSON)],
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
    disordered = (pd.to_datetime(co["engagement_date"]) < pd.to_datetime(co["allocation_date"])) | (
        pd.to_datetime(co["discharge_date"]) < pd.to_datetime(co["allocation_date"])
    )
    problems = [str(v) for v in violations(Cohort, co)]
    if disordered.any():
        problems.append(
            f"{int(disordered.sum())} register entries with impossible windows (query the "
            "staged register for engagement or discharge dates before allocation)"
        )
    windows = WINDOWS_VALID.result(
        not problems, description="; ".join(problems) or None, metadata={"entries": len(co)}
    )
    written = yield from write_or_refuse(
        wh,
        context,
        [Write("cohort", co)],
        [windows],
        rows_in=len(register),
        refusal="cohort: " + "; ".join(problems),
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
        data_version=written.data_version("cohort"),
        metadata={
            "dagster/row_count": len(co),
            **written.metadata,
            "data_months": f"{months[0]}..{months[-1]}",
            "baseline_months": study.baseline_months,
            "populations": table_metadata(summary),
            "by_discharge_reason": dg.MetadataValue.json(
                {
                    k: control_count(v)
                    for k, v in co["discharge_reason"].fillna("on programme").value_counts().items()
                }
            ),
        },
        check_results=[
            windows,
            ROWS_LINKED.result(
                unlinked.empty, metadata={"register_rows": len(co), "unlinked": len(unlinked)}
            ),
            ONE_ROW_PER_PERSON.result(
                repeated.empty, metadata={"rows_sharing_a_person": len(repeated)}
            ),
        ],
    )
