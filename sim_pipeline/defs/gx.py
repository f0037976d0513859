"""Wiring Great Expectations suites into Dagster asset checks (the suites are in
`sim_pipeline.quality.expectations`; GX itself is imported only when a suite runs)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from sim_pipeline.defs.checks import Check
from sim_pipeline.defs.common import table_metadata
from sim_pipeline.defs.resources import QualityResource
from sim_pipeline.quality.expectations import Suite, SuiteOutcome
from sim_pipeline.quality.gx_runner import validate
from sim_pipeline.warehouse.store import Warehouse

# Every asset that runs a suite carries this kind, and with it (`common.apply_settings`) the
# link to the Data Docs site, so an analyst or auditor finds the site from the UI.
GX_KINDS = {"great_expectations"}


def gx_check(
    name: str,
    what: str,
    *,
    blocking: bool = True,
    gated: bool = False,
    before_write: bool = False,
    when: str | None = None,
) -> Check:
    """A check that runs a GX suite: ``what`` lists what the suite expects (a sentence);
    ``when`` what a failure does, if not the default."""
    when = when or (
        "It is validated before writing: on failure nothing is written and downstream assets wait."
        if before_write
        else "On failure downstream assets wait."
    )
    return Check(
        name,
        f"Great Expectations suite. Passes when every expectation holds: {what} "
        "Fails when any does not: each failed expectation is listed with its rule and row "
        "counts (never values); the full result is in Data Docs and in the warehouse table "
        f"quality_results. {when}",
        blocking=blocking,
        gated=gated,
    )


def batch_label(months: list[str]) -> str:
    return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"


def run_suite(
    context: dg.AssetExecutionContext,
    quality: QualityResource,
    wh: Warehouse,
    suite: Suite,
    frame: pd.DataFrame,
    months: list[str],
) -> SuiteOutcome:
    """Validate ``frame`` and keep the result in the warehouse (its own transaction, so a
    failed validation is on record even when the asset then writes nothing)."""
    batch = batch_label(months)
    outcome = validate(suite, frame, quality.path, batch, context.run.run_id)
    with wh.transaction() as tx:
        tx.replace(
            "quality_results",
            outcome.results,
            {"suite": [suite.name], "batch": [batch]},
        )
    if not outcome.success:
        context.log.warning(
            f"{suite.name} ({batch}): {len(outcome.failed)} of {len(suite)} expectations "
            "failed:\n" + "\n".join(outcome.failure_lines())
        )
    return outcome


def gx_check_result(
    check: Check, outcome: SuiteOutcome, asset: str | None = None
) -> dg.AssetCheckResult:
    failed = outcome.failed[
        ["category", "expectation", "column_names", "unexpected_count", "observed_value", "note"]
    ]
    return check.result(
        outcome.success,
        asset=asset,
        description="; ".join(outcome.failure_lines())[:2000] or None,
        metadata={
            "suite": outcome.suite.name,
            "expectations": len(outcome.suite),
            "failed": len(failed),
            "rows_validated": int(outcome.results["element_count"].max())
            if outcome.results["element_count"].notna().any()
            else 0,
            "validation_seconds": outcome.seconds,
            "failed_expectations": table_metadata(failed, counts_of="records"),
            "data_docs_page": dg.MetadataValue.path(str(outcome.docs_page or "")),
            "data_docs": dg.MetadataValue.path(str(outcome.docs_index or "")),
        },
    )
