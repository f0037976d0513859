"""Ingest assets: one monthly-partitioned asset per provider table (wiring only).

Each partition: read every provider's drop, validate with the pandera contract, pseudonymise,
scan for identifier-shaped values, then replace the month in one transaction (staged rows,
quarantine rows and ledger rows together). Checks are evaluated before the write; a file that
cannot be read fails its month and names the file, while the other months are still written.
"""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.common import (
    DATA_ENGINEERING,
    MONTHLY,
    column_schema,
    key_metadata,
    markdown_table,
    month_of,
    warehouse_kind,
)
from sim_pipeline.defs.resources import (
    LandingResource,
    PseudonymisationKeyResource,
    WarehouseResource,
)
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.quality.identifiers import find_identifier_like
from sim_pipeline.sources import SOURCE_TABLES, SourceTable
from sim_pipeline.staging import StagedMonth, stage_months
from sim_pipeline.warehouse.dictionary import sql_types

LEDGER_TYPES = sql_types("ingest_ledger")
QUARANTINE_TYPES = sql_types("ingest_quarantine")
MAX_VIOLATION_RATE = 0.02  # share of rows quarantined across a run before downstream is blocked

CHECKS = {
    "ledger_balances": (
        True,
        "Every file read in this run: rows_read = rows_loaded + rows_quarantined, and the rows "
        "written to the staged table equal rows_loaded. A failure means rows were lost.",
    ),
    "contract_violation_rate": (
        True,
        f"Share of rows quarantined by the contract is at most {MAX_VIOLATION_RATE:.0%} of rows "
        "read in this run. Above that the extract is suspect and downstream assets wait.",
    ),
    "no_direct_identifiers": (
        True,
        "Scanned before writing: no column of the staged output is named like or holds values "
        "shaped like an NHS number or a full postcode. On a hit no month of the run is written.",
    ),
    "provider_drops_present": (
        False,
        "Every provider that sends this table delivered a drop for every month in this run.",
    ),
}


def _month_metadata(sm: StagedMonth, tokeniser: Tokeniser) -> dict[str, object]:
    by_rule = sm.quarantine["rule"].value_counts().to_dict() if len(sm.quarantine) else {}
    return {
        "dagster/row_count": len(sm.staged),
        "rows_read": int(sm.ledger["rows_read"].sum()),
        "rows_quarantined": int(sm.ledger["rows_quarantined"].sum()),
        "files": len(sm.ledger),
        "quarantined_by_rule": dg.MetadataValue.json(by_rule),
        **key_metadata(tokeniser),
    }


def build_staged_asset(table: SourceTable) -> dg.AssetsDefinition:
    key = dg.AssetKey(table.asset_name)

    @dg.asset(
        name=table.asset_name,
        description=(
            f"{table.description}\n\nPseudonymised at ingest: direct identifiers are replaced by "
            f"keyed tokens. Providers: {', '.join(table.providers)}. Landing file: "
            f"`<source>/<YYYY-MM>/{table.file_name()}`. Record key: `{table.record_ref}`."
        ),
        partitions_def=MONTHLY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingest",
        owners=[DATA_ENGINEERING],
        # One writer at a time per staged table: two runs replacing the same month at once
        # could otherwise both insert (the instance sets each pool's limit; see dagster.yaml).
        pool=f"warehouse_write_{table.asset_name}",
        kinds={"python", "pandas", warehouse_kind()},
        tags={"stage": "ingest"},
        metadata={
            "dagster/column_schema": column_schema(table.asset_name),
            "dagster/table_name": table.asset_name,
            "contract": f"{table.contract.__module__}.{table.contract.__name__}",
        },
        check_specs=[
            dg.AssetCheckSpec(name, asset=key, blocking=blocking, description=desc)
            for name, (blocking, desc) in CHECKS.items()
        ],
    )
    def _staged(
        context: dg.AssetExecutionContext,
        landing: LandingResource,
        warehouse: WarehouseResource,
        pseudonymisation: PseudonymisationKeyResource,
    ):
        tokeniser = pseudonymisation.tokeniser()
        wh = warehouse.get()
        dtype = sql_types(table.asset_name)
        failures: list[str] = []
        leaks: dict[str, dict[str, dict[str, int]]] = {}
        missing: list[str] = []
        written = 0
        staged_months = stage_months(
            landing.path, table, [month_of(pk) for pk in context.partition_keys], tokeniser
        )
        # One scan over everything staged in this run; a hit blocks every month of the run
        # (it means the boundary is broken, not that one month's data is odd).
        found = find_identifier_like(pd.concat([sm.staged for sm in staged_months]))
        good: list[tuple[str, StagedMonth]] = []
        for pk, sm in zip(context.partition_keys, staged_months, strict=True):
            missing += sm.missing
            if not sm.ok:
                failures += [str(e) for e in sm.errors]
            elif found:
                leaks[sm.month] = found
            else:
                good.append((pk, sm))
        # Every good month of the run is replaced in ONE transaction (staged rows, quarantine
        # and ledger together): all or nothing, and far fewer round trips than month by month.
        months = [sm.month for _, sm in good]
        ledger = (
            pd.concat([sm.ledger for _, sm in good], ignore_index=True)
            if good
            else pd.DataFrame(columns=["source", "rows_read", "rows_loaded", "rows_quarantined"])
        )
        if good:
            with wh.transaction() as tx:
                written = tx.replace(
                    table.asset_name,
                    pd.concat([sm.staged for _, sm in good], ignore_index=True),
                    {"month": months},
                    dtype,
                )
                tx.replace(
                    "ingest_quarantine",
                    pd.concat([sm.quarantine for _, sm in good], ignore_index=True),
                    {"table_name": [table.table], "month": months},
                    QUARANTINE_TYPES,
                )
                tx.replace(
                    "ingest_ledger",
                    ledger,
                    {"table_name": [table.table], "month": months},
                    LEDGER_TYPES,
                )
        partial = bool(failures or leaks)
        if partial:
            # The step will fail: record the months that were written, one event each, so the
            # UI shows them materialised and only the bad months missing.
            for pk, sm in good:
                yield dg.AssetMaterialization(
                    asset_key=key, partition=pk, metadata=_month_metadata(sm, tokeniser)
                )
        read = int(ledger["rows_read"].sum())
        loaded = int(ledger["rows_loaded"].sum())
        quarantined = int(ledger["rows_quarantined"].sum())
        unbalanced = int(
            (ledger["rows_read"] != ledger["rows_loaded"] + ledger["rows_quarantined"]).sum()
        )
        rate = quarantined / read if read else 0.0
        per_source = (
            ledger.groupby("source")[["rows_read", "rows_loaded", "rows_quarantined"]]
            .sum()
            .reset_index()
            if len(ledger)
            else ledger
        )
        yield dg.AssetCheckResult(
            check_name="ledger_balances",
            passed=unbalanced == 0 and written == loaded,
            metadata={
                "files": len(ledger),
                "files_unbalanced": unbalanced,
                "rows_loaded": loaded,
                "rows_written": written,
            },
        )
        yield dg.AssetCheckResult(
            check_name="contract_violation_rate",
            passed=rate <= MAX_VIOLATION_RATE,
            metadata={
                "rows_read": read,
                "rows_quarantined": quarantined,
                "violation_rate": round(rate, 5),
                "limit": MAX_VIOLATION_RATE,
            },
        )
        yield dg.AssetCheckResult(
            check_name="no_direct_identifiers",
            passed=not leaks,
            metadata={"months_blocked": dg.MetadataValue.json(leaks)},
        )
        yield dg.AssetCheckResult(
            check_name="provider_drops_present",
            passed=not missing,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "missing_drops": len(missing),
                "first_missing": dg.MetadataValue.json(missing[:20]),
            },
        )
        if not partial:
            # One result for the whole range: Dagster records it for every partition. The
            # per-month table lets an analyst find their month's figures.
            per_month = (
                ledger.groupby("month")[["rows_read", "rows_loaded", "rows_quarantined"]]
                .sum()
                .reset_index()
            )
            yield dg.MaterializeResult(
                metadata={
                    "dagster/row_count": written,
                    "months_in_run": len(good),
                    "rows_read": read,
                    "rows_quarantined": quarantined,
                    "rows_by_month": markdown_table(per_month),
                    "rows_by_source": markdown_table(per_source),
                    **key_metadata(tokeniser),
                }
            )
        context.log.info(
            f"{table.asset_name}: {len(context.partition_keys)} month(s), {read} rows read, "
            f"{loaded} loaded, {quarantined} quarantined"
        )
        if len(per_source):
            context.log.info("per source:\n" + per_source.to_string(index=False))
        if leaks:
            raise dg.Failure(
                description=f"{table.asset_name}: identifier-shaped values found; months not "
                f"written: {sorted(leaks)} (columns and rules in the check metadata)"
            )
        if failures:
            raise dg.Failure(
                description=f"{table.asset_name}: {len(failures)} landing file(s) could not be read; "
                "their months were not written:\n" + "\n".join(failures),
                metadata={
                    "unreadable_files": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures))
                },
            )

    return _staged


STAGED_ASSETS = [build_staged_asset(t) for t in SOURCE_TABLES]
