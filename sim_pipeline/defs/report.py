"""The evaluation_report asset: the disclosure-controlled release (CSV tables, README) and the
HTML report in the published folder, replaced only after its disclosure scan passes. Wiring
only: the logic is in `sim_pipeline.publish.release` and `sim_pipeline.publish.report`."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION
from sim_pipeline.defs.checks import Check, refuse
from sim_pipeline.defs.common import ANALYSTS, record_audit, table_metadata
from sim_pipeline.defs.costs import unit_costs
from sim_pipeline.defs.headline import programme_headline_asset
from sim_pipeline.defs.linkage_quality import linkage_quality
from sim_pipeline.defs.resources import (
    EvaluationResource,
    WarehouseResource,
)

GROUP = "evaluation"
DISCLOSURE_SAFE = Check(
    "published_disclosure_safe",
    "The auditor's scan of data/published/: no count column holds a value from 1 to 7 or a "
    "count not rounded to 5, and no column looks like a person identifier. A failure is "
    "reported with file, row and column.",
    blocking=True,
)


@dg.asset(
    description=(
        "The publication: disclosure-controlled tables (HES/ECDS rule: counts 1-7 shown as *, "
        "other counts rounded to 5, statistics on 1-7 people suppressed, no individual-level "
        "row) as CSV under data/published/, and the HTML evaluation report: naive headline "
        "beside the difference-in-differences estimate, cohort vs comparison trajectories, "
        "harms, balance, sensitivity, linkage quality and unit costs with sources and price "
        "year. `sim-pipeline report` rebuilds the same files from the warehouse."
    ),
    deps=[
        "evaluation_estimates",
        "evaluation_balance",
        "evaluation_trajectory",
        programme_headline_asset,
        linkage_quality,
        unit_costs,
    ],
    group_name=GROUP,
    owners=[ANALYSTS],
    automation_condition=DOWNSTREAM_AUTOMATION,
    # files in the published folder (the release and the report), not a warehouse table
    kinds={"python", "html", "csv"},
    check_specs=[DISCLOSURE_SAFE.spec("evaluation_report")],
)
def evaluation_report(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    evaluation: EvaluationResource,
):
    from sim_pipeline.publish.release_catalogue import RELEASE_INPUTS
    from sim_pipeline.publish.release_files import scan_release
    from sim_pipeline.publish.report import write_report

    wh = warehouse.get()
    tables = {t: wh.read(t) for t in RELEASE_INPUTS}
    out = Path(evaluation.published_dir)
    if tables["evaluation_estimates"].empty:
        findings = scan_release(out) if out.exists() and any(out.glob("*.csv")) else []
        yield dg.MaterializeResult(
            metadata={"note": "no evaluation estimates yet: nothing published"},
            check_results=[
                DISCLOSURE_SAFE.result(
                    not findings, metadata={"findings": "\n".join(findings[:20]) or "none"}
                )
            ],
        )
        return
    # build next to the release, scan, and only then replace it: an unsafe release never
    # overwrites the published one
    staging = out.parent / f".{out.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    html, files = write_report(tables, staging)
    findings = scan_release(staging)
    if findings:
        unsafe = DISCLOSURE_SAFE.result(False, metadata={"findings": "\n".join(findings[:20])})
        yield from refuse(
            wh,
            context,
            [unsafe],
            f"the release failed the disclosure scan ({len(findings)} findings); "
            f"{out} left as it was, candidate in {staging}",
            rows_in=sum(len(t) for t in tables.values()),
            note=f"disclosure scan: {len(findings)} findings; release not replaced",
        )
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # the folder holds only the release (write_release's contract)
        if old.is_file():
            old.unlink()
    for f in staging.iterdir():
        f.replace(out / f.name)
    staging.rmdir()
    html, files = out / html.name, [out / f.name for f in files]
    provenance = record_audit(
        wh,
        context,
        rows_in=sum(len(t) for t in tables.values()),
        rows_out=len(files),
        note="rows_in: rows of the tables the release reads; rows_out: files published",
    )
    yield dg.MaterializeResult(
        metadata={
            **provenance,
            "report": dg.MetadataValue.path(str(html)),
            "published_dir": dg.MetadataValue.path(str(out)),
            "files": table_metadata(pd.DataFrame({"file": [p.name for p in files]})),
            "dagster/row_count": len(files),
        },
        check_results=[
            DISCLOSURE_SAFE.result(
                not findings,
                metadata={
                    "files_scanned": len(files),
                    "findings": "\n".join(findings[:20]) or "none",
                },
            )
        ],
    )
