"""Quality assets: the whole-landing ingest ledger an auditor reads first, and the gate that
holds linkage back while a staged table's ingest checks fail."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION
from sim_pipeline.defs.checks import Check
from sim_pipeline.defs.common import (
    DATA_QUALITY,
    key_metadata,
    record_audit,
    study_months,
    table_metadata,
)
from sim_pipeline.defs.ingest import GATED_CHECKS, STAGED_ASSETS
from sim_pipeline.defs.ledger import LEDGER_ASSETS
from sim_pipeline.defs.resources import (
    LandingResource,
    WarehouseResource,
)
from sim_pipeline.ingest.ledger import reconcile, summarise
from sim_pipeline.landing.layout import Landing

FILES_ACCOUNTED = Check(
    "every_landing_file_accounted",
    "Every CSV in the landing folder has a ledger row for its current contents (same SHA-256). "
    "Warns on files never ingested (for example months outside a backfill's range) or changed "
    "since ingest (a resubmission waiting for a run).",
)
SINGLE_KEY = Check(
    "single_pseudonymisation_key",
    "Every ledger row (so every staged month) was tokenised under the same key fingerprint. "
    "Mixed keys mean tokens cannot be compared: after a key rotation every month must be "
    "re-ingested before linkage runs.",
    blocking=True,
)
LEDGER_BALANCES = Check(
    "ledger_balances",
    "For every ledger row: rows_read = rows_loaded + rows_quarantined.",
    blocking=True,
)
INGEST_ACCEPTED = Check(
    "ingest_accepted",
    "Passes when the latest evaluation of every staged table's checks on what its ingest wrote "
    "(" + ", ".join(GATED_CHECKS) + ") passed. Fails when any failed (a rejected file, a "
    "missing provider drop, an unbalanced ledger, too many rows quarantined, the drops suite): "
    "each failing table and check is listed, and linkage and every later asset wait until a "
    "corrected drop is ingested. Those checks do not stop their own step, so this summary and "
    "drop_coverage still run and show what failed.",
    blocking=True,
)


@dg.asset(
    description=(
        "Accounting for every landing file across all months: rows read, loaded and quarantined "
        "per source and table, quarantined rows by rule, and whether every file in the landing "
        "folder has been ingested in its current version. It runs after every ingest, also "
        "when a staged table's checks failed (a missing or rejected drop), and its check "
        "ingest_accepted then holds linkage and everything after it back."
    ),
    # reads the ledger and quarantine, and the staged tables' latest check results
    deps=[*(a.key for a in STAGED_ASSETS), *(a.key for a in LEDGER_ASSETS)],
    group_name="quality",
    owners=[DATA_QUALITY],
    automation_condition=DOWNSTREAM_AUTOMATION,
    # a report over the ingest_ledger and ingest_quarantine tables, not a table
    kinds={"python", "pandas"},
    check_specs=[
        c.spec("ingest_summary")
        for c in (FILES_ACCOUNTED, SINGLE_KEY, LEDGER_BALANCES, INGEST_ACCEPTED)
    ],
)
def ingest_summary(
    context: dg.AssetExecutionContext,
    landing: LandingResource,
    warehouse: WarehouseResource,
):
    wh = warehouse.get()
    ledger = wh.read("ingest_ledger")
    quarantine = wh.read("ingest_quarantine")
    months = study_months()
    recon = reconcile(Landing(landing.path).inventory(months), ledger)
    by_source, by_rule = summarise(ledger, quarantine)
    status = recon["status"].value_counts().to_dict()
    unbalanced = (
        int((ledger["rows_read"] != ledger["rows_loaded"] + ledger["rows_quarantined"]).sum())
        if len(ledger)
        else 0
    )
    problems = recon[recon["status"] != "accounted"][["file", "status"]].head(50)
    key_ids = (
        {str(k): int(n) for k, n in ledger["key_id"].value_counts().items()} if len(ledger) else {}
    )
    totals = by_source[["rows_read", "rows_loaded", "rows_quarantined"]].sum()
    failing = failing_ingest_checks(context.instance)
    provenance = record_audit(
        wh,
        context,
        rows_in=len(recon),
        rows_out=int(status.get("accounted", 0)),
        rows_rejected=len(recon) - int(status.get("accounted", 0)),
        note="rows_in: landing files; rows_out: files accounted for in the ledger; "
        "rows_rejected: files not ingested or changed since",
    )
    yield dg.MaterializeResult(
        metadata={
            **provenance,
            "dagster/row_count": len(ledger),
            "landing_files": len(recon),
            "rows_read": int(totals.get("rows_read", 0)),
            "rows_loaded": int(totals.get("rows_loaded", 0)),
            "rows_quarantined": int(totals.get("rows_quarantined", 0)),
            "rows_by_source_and_table": table_metadata(by_source, counts_of="records"),
            "quarantined_by_rule": table_metadata(by_rule, counts_of="records"),
            "warehouse": warehouse.display_url,
            **key_metadata(),
        },
        check_results=[
            FILES_ACCOUNTED.result(
                status.get("accounted", 0) == len(recon),
                metadata={
                    "files_by_status": dg.MetadataValue.json(status),
                    "files_needing_attention": table_metadata(problems, counts_of="records"),
                },
            ),
            SINGLE_KEY.result(
                len(key_ids) <= 1, metadata={"key_fingerprints": dg.MetadataValue.json(key_ids)}
            ),
            LEDGER_BALANCES.result(
                unbalanced == 0,
                metadata={"ledger_rows": len(ledger), "unbalanced_rows": unbalanced},
            ),
            INGEST_ACCEPTED.result(
                failing.empty,
                description=None
                if failing.empty
                else f"{len(failing)} staged check(s) failing: "
                + ", ".join(f"{r.asset}:{r.check}" for r in failing.head(10).itertuples()),
                metadata={
                    "failing_checks": len(failing),
                    "checks": table_metadata(failing, counts_of="records"),
                },
            ),
        ],
    )
    context.log.info(f"ingest_summary: {len(recon)} landing files, status {status}")


def failing_ingest_checks(instance: dg.DagsterInstance) -> pd.DataFrame:
    """The staged tables' gated checks whose latest evaluation failed (asset, check, run)."""
    keys = [dg.AssetCheckKey(a.key, name) for a in STAGED_ASSETS for name in GATED_CHECKS]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    rows = [
        {"asset": k.asset_key.to_user_string(), "check": k.name, "run": r.run_id[:8]}
        for k, r in sorted(latest.items(), key=lambda kv: kv[0].to_user_string())
        if r.status.value == "FAILED"
    ]
    return pd.DataFrame(rows, columns=["asset", "check", "run"])
