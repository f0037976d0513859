"""Quality assets: the whole-landing ingest ledger an auditor reads first, and the gate that
holds linkage back while a staged table's ingest checks fail."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION
from sim_pipeline.defs.common import (
    DATA_QUALITY,
    MONTHLY,
    key_metadata,
    markdown_table,
    month_of,
    record_audit,
)
from sim_pipeline.defs.ingest import GATED_CHECKS, STAGED_ASSETS
from sim_pipeline.defs.resources import (
    LandingResource,
    WarehouseResource,
)
from sim_pipeline.ingest.ledger import landing_inventory, reconcile, summarise


@dg.asset(
    description=(
        "Accounting for every landing file across all months: rows read, loaded and quarantined "
        "per source and table, quarantined rows by rule, and whether every file in the landing "
        "folder has been ingested in its current version. It runs after every ingest, also "
        "when a staged table's checks failed (a missing or rejected drop), and its check "
        "ingest_accepted then holds linkage and everything after it back."
    ),
    deps=[a.key for a in STAGED_ASSETS],
    group_name="quality",
    owners=[DATA_QUALITY],
    automation_condition=DOWNSTREAM_AUTOMATION,
    # a report over the ingest_ledger table (written by the staged assets), not a table
    kinds={"python", "pandas"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_landing_file_accounted",
            asset="ingest_summary",
            blocking=False,
            description="Every CSV in the landing folder has a ledger row for its current contents "
            "(same SHA-256). Warns on files never ingested (for example months outside a "
            "backfill's range) or changed since ingest (a resubmission waiting for a run).",
        ),
        dg.AssetCheckSpec(
            "single_pseudonymisation_key",
            asset="ingest_summary",
            blocking=True,
            description="Every ledger row (so every staged month) was tokenised under the same "
            "key fingerprint. Mixed keys mean tokens cannot be compared: after a key rotation "
            "every month must be re-ingested before linkage runs.",
        ),
        dg.AssetCheckSpec(
            "ledger_balances",
            asset="ingest_summary",
            blocking=True,
            description="For every ledger row: rows_read = rows_loaded + rows_quarantined.",
        ),
        dg.AssetCheckSpec(
            "ingest_accepted",
            asset="ingest_summary",
            blocking=True,
            description="Passes when the latest evaluation of every staged table's checks on "
            "what its ingest wrote (" + ", ".join(GATED_CHECKS) + ") passed. Fails when any "
            "failed (a rejected file, a missing provider drop, an unbalanced ledger, too many "
            "rows quarantined, the drops suite): each failing table and check is listed, and "
            "linkage and every later asset wait until a corrected drop is ingested. Those "
            "checks do not stop their own step, so this summary and drop_coverage still run "
            "and show what failed.",
        ),
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
    months = [month_of(k) for k in MONTHLY.get_partition_keys()]
    recon = reconcile(landing_inventory(landing.path, months), ledger)
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
            "rows_by_source_and_table": markdown_table(by_source, counts_of="records"),
            "quarantined_by_rule": markdown_table(by_rule, counts_of="records"),
            "warehouse": warehouse.display_url,
            **key_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="every_landing_file_accounted",
                passed=status.get("accounted", 0) == len(recon),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "files_by_status": dg.MetadataValue.json(status),
                    "files_needing_attention": markdown_table(problems, counts_of="records"),
                },
            ),
            dg.AssetCheckResult(
                check_name="single_pseudonymisation_key",
                passed=len(key_ids) <= 1,
                metadata={"key_fingerprints": dg.MetadataValue.json(key_ids)},
            ),
            dg.AssetCheckResult(
                check_name="ledger_balances",
                passed=unbalanced == 0,
                metadata={"ledger_rows": len(ledger), "unbalanced_rows": unbalanced},
            ),
            dg.AssetCheckResult(
                check_name="ingest_accepted",
                passed=failing.empty,
                description=None
                if failing.empty
                else f"{len(failing)} staged check(s) failing: "
                + ", ".join(f"{r.asset}:{r.check}" for r in failing.head(10).itertuples()),
                metadata={
                    "failing_checks": len(failing),
                    "checks": markdown_table(failing, counts_of="records"),
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
