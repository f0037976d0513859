"""Ingest assets: one monthly-partitioned asset per provider table (wiring only).

A run stages every month of its range together: read every provider's drop, validate with the
pandera contract, pseudonymise, then scan the result for identifier-like values and duplicate
record keys, and run the Great Expectations suite of the table over the rows about to be
written. A clean run replaces its months in one transaction (staged rows, quarantine rows
and ledger rows together). A file that cannot be read is rejected as a whole (its rows
quarantined under the file's rule) while the other files load. The checks judged on what was
written (`files_readable`, `provider_drops_present`, `ledger_balances`, `contract_violation_rate`
and `gx_drops`, the run's files) fail with ERROR severity but do not stop the step: the summaries
(`ingest_summary`, `drop_coverage`) still run and show what failed, and `ingest_summary`'s
blocking check `ingest_accepted` holds linkage and every later asset back (GATED_CHECKS). The
identifier scan, `duplicate_keys` and `gx_table` run before the write and block: on a failure
nothing of the run is written and the step fails.
"""

import dataclasses

import dagster as dg
import pandas as pd

from sim_pipeline.defs.automation import INGEST_FRESHNESS, MONTHLY_TAG
from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import (
    DATA_ENGINEERING,
    MONTHLY,
    definition_metadata,
    key_metadata,
    month_of,
    table_metadata,
)
from sim_pipeline.defs.gx import (
    GX_KINDS,
    gx_check,
    gx_check_result,
    run_suite,
)
from sim_pipeline.defs.observations import landing_key
from sim_pipeline.defs.resources import (
    LandingResource,
    PseudonymisationKeyResource,
    QualityResource,
    WarehouseResource,
)
from sim_pipeline.ingest.staging import duplicate_record_keys, stage_run
from sim_pipeline.ingest.tables import staged_model
from sim_pipeline.ingest.tokenised import drop_inconsistencies
from sim_pipeline.quality.identifiers import find_identifier_like
from sim_pipeline.quality.staged_suites import drops_frame, drops_suite, staged_table_suite
from sim_pipeline.sources import SOURCE_TABLES, SourceTable
from sim_pipeline.sources.reader import FILE_RULES
from sim_pipeline.warehouse.model import columns

MAX_VIOLATION_RATE = 0.02  # share of rows quarantined across a run before downstream is blocked
# Judged on what the step wrote: ERROR severity, not blocking the step itself, so the summaries
# run; `ingest_summary:ingest_accepted` (blocking) holds linkage back while any of them fails.
GATED_CHECKS = (
    "files_readable",
    "provider_drops_present",
    "ledger_balances",
    "contract_violation_rate",
    "gx_drops",
)
GATE = (
    "ingest_summary's ingest_accepted check then holds linkage and every later asset back "
    "(downstream assets wait); the ingest summaries still run and show it."
)
ROWS = ["rows_read", "rows_loaded", "rows_quarantined"]

_CHECK_TEXT = {
    "files_readable": (
        False,
        "Passes when every landing file of this run could be read as a whole: UTF-8 text, a "
        "parseable CSV header holding every contract column, not cut short, no whole column "
        "failing the contract. Fails when any file was rejected: that file is not loaded, every "
        "one of its data lines is in ingest_quarantine under the file's rule ("
        + ", ".join(FILE_RULES)
        + ") and its ingest_ledger row has file_status = rejected; the other files of the month "
        "are loaded. The metadata lists each rejected file with its rule and row count. "
        "Until a corrected file is dropped and the month re-run, " + GATE,
    ),
    "provider_drops_present": (
        False,
        "Passes when every provider that sends this table delivered a drop for every month in "
        "this run. Fails when a drop is missing (the metadata lists the missing files): a missing "
        "provider month would undercount every downstream monthly figure; the drops that did "
        "arrive are loaded. " + GATE,
    ),
    "duplicate_keys": (
        True,
        "Scanned before writing. Passes when no (source, month, record_ref) appears twice in "
        "the staged output of this run, so a provider's record counts once per month (repeats "
        "inside a file are already quarantined as duplicate_row / duplicate_record_ref). Fails "
        "on any repeated key: then nothing of the run is written and the step fails; the "
        "metadata counts the repeated keys per source and month.",
    ),
    "ledger_balances": (
        False,
        "Passes when, for every file read in this run, rows_read = rows_loaded + "
        "rows_quarantined and the rows written to the staged table equal rows_loaded. Fails "
        "when rows were lost or counted twice. " + GATE,
    ),
    "contract_violation_rate": (
        False,
        f"Passes when at most {MAX_VIOLATION_RATE:.0%} of the rows read in this run were "
        "quarantined or had an identifier nulled (rows of a rejected file count as "
        "quarantined). Fails above that: the extract is suspect; the good rows are written "
        "(an identifier that broke its rule nulled, see identifier_defects), the bad ones are "
        "in ingest_quarantine with their rule. " + GATE,
    ),
    "provider_drops_consistent": (
        True,
        "Scanned before writing. Passes when every drop tokenised by its provider (`sim-pipeline "
        "tokenise`, a manifest beside it) was made under the pipeline's key, and each "
        "provider's tokenised drops in this run agree on one key fingerprint and one contract "
        "version. Fails otherwise: tokens made under another key link to nothing and would "
        "split people silently; then nothing of the run is written and the step fails; the "
        "metadata names the files, providers, fingerprints and versions (never a key). Raw "
        "and tokenised drops may sit side by side: with one key they stage the same rows.",
    ),
    "no_direct_identifiers": (
        True,
        "Scanned before writing, every column, inside its text. Passes when no column of the "
        "staged output is named like an identifier, no token or Bloom-filter column holds "
        "anything but its hex form, no text holds an NHS number (any grouping or digit "
        "script), a full postcode or a forename-surname pair (any case), and no text holds "
        "any form of the identifiers of the rows being staged. Fails on any hit: then "
        "nothing of the run is written and the step fails; the metadata names the columns and "
        "rules, never the values.",
    ),
}
CHECKS = {
    name: Check(name, text, blocking=blocking, gated=name in GATED_CHECKS)
    for name, (blocking, text) in _CHECK_TEXT.items()
}
GX_TABLE = gx_check(
    "gx_table",
    "{table}.table over the rows about to be written: exactly the columns the data dictionary "
    "documents (so no raw identifier column), the row count the ledger implies (rows read "
    "minus rows quarantined), the record key unique per provider and month, required and "
    "provenance fields complete, codes in their national code lists, formats, dates between "
    "1900 and the end of the month after the run, no negative count, tokens and Bloom filters "
    "shaped as keyed hashes, postcode districts only.",
    before_write=True,
)
GX_DROPS = gx_check(
    "gx_drops",
    "{table}.drops over this run's landing files: one file per provider and month, each file "
    "accounted once, no file rejected as a whole, rows_read = rows_loaded + rows_quarantined "
    "for every file, and rows quarantined per file within 2% of its rows (at least 5 "
    "allowed).",
    blocking=False,
    gated=True,
    when=GATE,
)


def _rejected_files(ledger: pd.DataFrame) -> pd.DataFrame:
    cols = ["file", "rejection_rule", "rows_quarantined"]
    if ledger.empty or "file_status" not in ledger:
        return pd.DataFrame(columns=cols)
    return ledger.loc[ledger["file_status"] == "rejected", cols].reset_index(drop=True)


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
        deps=[landing_key(table)],
        group_name="ingest",
        owners=[DATA_ENGINEERING],
        # One writer at a time per staged table: two runs replacing the same month at once
        # could otherwise both insert (the instance sets each pool's limit; see dagster.yaml).
        pool=f"warehouse_write_{table.asset_name}",
        kinds={"python", "pandas", *GX_KINDS},
        tags={"stage": "ingest", **MONTHLY_TAG},
        freshness_policy=INGEST_FRESHNESS,
        metadata={
            **definition_metadata(table.asset_name),
            "contract": f"{table.contract.__module__}.{table.contract.__name__}",
        },
        check_specs=[
            *(c.spec(key) for c in CHECKS.values()),
            *(
                dataclasses.replace(
                    c, description=c.description.format(table=table.asset_name)
                ).spec(key)
                for c in (GX_TABLE, GX_DROPS)
            ),
        ],
    )
    def _staged(
        context: dg.AssetExecutionContext,
        landing: LandingResource,
        warehouse: WarehouseResource,
        pseudonymisation: PseudonymisationKeyResource,
        quality: QualityResource,
    ):
        tokeniser = pseudonymisation.tokeniser()
        wh = warehouse.get()
        months = [month_of(pk) for pk in context.partition_keys]
        run = stage_run(landing.path, table, months, tokeniser, landing.max_drop_bytes)
        staged, quarantine, ledger = run.staged, run.quarantine, run.ledger
        missing, rejections = run.missing, run.errors
        # Validated BEFORE writing (a failing blocking check does not stop its own asset's
        # write): identifier-like values mean the privacy boundary is broken, a repeated key
        # that rows would be counted twice. Either blocks every month of the run.
        # record keys: tokens in the staged rows; as sent, checked by staging
        found = find_identifier_like(
            staged, run.identifiers, token_columns=["record_ref", *table.key_columns]
        )
        for col, rules in run.record_key_findings.items():
            for rule, n in rules.items():
                found.setdefault(col, {})[rule] = found.get(col, {}).get(rule, 0) + n
        dupes = duplicate_record_keys(staged)
        inconsistent = drop_inconsistencies(ledger, tokeniser.key_id)
        # Great Expectations: the rows about to be written (blocks the write) and the run's
        # files (blocks downstream); results go to quality_results and Data Docs either way
        expected_rows = int((ledger["rows_read"] - ledger["rows_quarantined"]).sum())
        gx_table = gx_check_result(
            GX_TABLE,
            run_suite(
                context,
                quality,
                wh,
                staged_table_suite(table, columns(staged_model(table)), months, expected_rows),
                staged,
                months,
            ),
        )
        gx_drops = gx_check_result(
            GX_DROPS,
            run_suite(
                context, quality, wh, drops_suite(table, months), drops_frame(ledger), months
            ),
        )
        read, loaded, quarantined = (int(ledger[c].sum()) for c in ROWS)
        unbalanced = int(
            (ledger["rows_read"] != ledger["rows_loaded"] + ledger["rows_quarantined"]).sum()
        )
        # an identifier nulled at the door keeps its row but is still a broken rule
        defective = (
            int(staged["identifier_defects"].notna().sum()) if "identifier_defects" in staged else 0
        )
        rate = (quarantined + defective) / read if read else 0.0
        per_source = ledger.groupby("source")[ROWS].sum().reset_index()
        rejected = _rejected_files(ledger)
        for e in rejections:
            # names the file and the problem, never a value
            context.log.error(f"{table.asset_name}: rejected {e} (rule {e.rule})")
        dup_summary = (
            dupes.groupby(["source", "month"])
            .agg(keys=("copies", "size"), rows=("copies", "sum"))
            .reset_index()
        )
        # before writing: identifier-like values (the privacy boundary is broken), a repeated
        # key (rows counted twice), the rows' GX suite: any blocks every month of the run
        before_write = [
            CHECKS["no_direct_identifiers"].result(
                not found,
                description=None
                if not found
                else f"identifier-like content in column(s) {', '.join(sorted(found))}; "
                "nothing written",
                metadata={"columns_and_rules": dg.MetadataValue.json(found)},
            ),
            CHECKS["duplicate_keys"].result(
                dupes.empty,
                description=None
                if dupes.empty
                else f"{len(dupes)} (source, month, record_ref) key(s) repeated; nothing written",
                metadata={
                    "repeated_keys": len(dupes),
                    "by_source_and_month": table_metadata(
                        dup_summary.head(50), counts_of="records"
                    ),
                },
            ),
            CHECKS["provider_drops_consistent"].result(
                not inconsistent,
                description=None
                if not inconsistent
                else f"{len(inconsistent)} problem(s): "
                + "; ".join(inconsistent[:5])
                + "; nothing written",
                metadata={
                    "problems": dg.MetadataValue.json(inconsistent[:50]),
                    "drops_by_form": dg.MetadataValue.json(
                        {str(k): int(v) for k, v in ledger["drop_form"].value_counts().items()}
                    ),
                },
            ),
            gx_table,
        ]
        blocked = any(not c.passed for c in before_write)
        # judged on what was written (gated: they hold ingest_summary's gate, not this step)
        after_write = [
            CHECKS["files_readable"].result(
                rejected.empty,
                description=None
                if rejected.empty
                else f"{len(rejected)} file(s) rejected as a whole: "
                + "; ".join(str(e) for e in rejections[:10]),
                metadata={
                    "files": len(ledger),
                    "files_rejected": len(rejected),
                    "rows_quarantined_in_rejected_files": int(rejected["rows_quarantined"].sum()),
                    "rejected_files": table_metadata(rejected.head(50), counts_of="records"),
                },
            ),
            CHECKS["provider_drops_present"].result(
                not missing,
                description=None
                if not missing
                else f"{len(missing)} expected drop(s) missing: "
                + ", ".join(missing[:5])
                + (" ..." if len(missing) > 5 else ""),
                metadata={
                    "missing_drops": len(missing),
                    "first_missing": dg.MetadataValue.json(missing[:20]),
                },
            ),
            CHECKS["contract_violation_rate"].result(
                rate <= MAX_VIOLATION_RATE,
                description=None
                if rate <= MAX_VIOLATION_RATE
                else f"{rate:.1%} of rows quarantined or with an identifier nulled (limit "
                f"{MAX_VIOLATION_RATE:.0%}): {quarantined} + {defective} of {read}",
                metadata={
                    "rows_read": read,
                    "rows_quarantined": quarantined,
                    "rows_with_identifier_defects": defective,
                    "violation_rate": round(rate, 5),
                    "limit": MAX_VIOLATION_RATE,
                },
            ),
            gx_drops,
        ]

        def ledger_balances(written: int) -> dg.AssetCheckResult:
            # when the run is blocked nothing is written, so only the accounting is checked
            balanced = unbalanced == 0 and (blocked or written == loaded)
            return CHECKS["ledger_balances"].result(
                balanced,
                description=None
                if balanced
                else f"{unbalanced} unbalanced file(s); {written} rows written, {loaded} loaded",
                metadata={
                    "files": len(ledger),
                    "files_unbalanced": unbalanced,
                    "rows_loaded": loaded,
                    "rows_written": written,
                    "written": not blocked,
                },
            )

        context.log.info(
            f"{table.asset_name}: {len(months)} month(s), {len(ledger)} file(s) "
            f"({len(rejected)} rejected), {read} rows read, {loaded} loaded, "
            f"{quarantined} quarantined"
        )
        if len(per_source):
            context.log.info("per source:\n" + per_source.to_string(index=False))
        problems = []
        if found:
            problems.append(f"identifier-like values in column(s) {sorted(found)}")
        if not dupes.empty:
            problems.append(f"{len(dupes)} repeated (source, month, record_ref) key(s)")
        if inconsistent:
            problems.append("drops tokenised under another key or contract version")
        if not gx_table.passed:
            problems.append("the Great Expectations suite failed (see gx_table)")
        # Every month of the run is replaced in ONE transaction (staged rows, quarantine and
        # ledger together, rejected files included): all or nothing.
        where = {"table_name": [table.table], "month": months}
        written = yield from write_or_refuse(
            wh,
            context,
            [
                Write(table.asset_name, staged, {"month": months}),
                Write("ingest_quarantine", quarantine, where),
                Write("ingest_ledger", ledger, where),
            ],
            [*before_write, *after_write, ledger_balances(0)],
            rows_in=read,
            rows_rejected=quarantined,
            refusal=f"{table.asset_name}: {'; '.join(problems)}; nothing of the run was written "
            f"(months {months[0]} to {months[-1]}; details in the check metadata)",
            note=f"files: {len(ledger)} read, {len(rejections)} rejected as a whole",
        )
        rows_written = written.rows[table.asset_name]
        yield from [*before_write, *after_write, ledger_balances(rows_written)]
        # the ledger and quarantine rows went in with the staged rows: their assets record it
        for name, rows in (("ingest_ledger", ledger), ("ingest_quarantine", quarantine)):
            yield dg.AssetMaterialization(
                asset_key=name,
                description=f"{table.asset_name} wrote its rows for {months[0]} to {months[-1]}",
                metadata={
                    "dagster/row_count": wh.count(name),
                    "written_by": table.asset_name,
                    "months_in_run": len(months),
                    "rows_this_run": len(rows),
                },
            )
        # One result for the whole range: Dagster records it for every partition (650 copies in
        # the demo's run, each serialised twice), so the per-month figures an analyst looks
        # their month up in are compact: {"columns": ROWS, "months": {month: [figures]}}
        # (1.6 KB for the demo's 66 months; as a table, 9 KB)
        per_month = {
            "columns": ROWS,
            "months": {
                str(month): [int(v) for v in row]
                for month, row in ledger.groupby("month")[ROWS].sum().iterrows()
            },
        }
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows_written,
                "months_in_run": len(months),
                "files": len(ledger),
                "files_rejected": len(rejected),
                "rows_read": read,
                "rows_quarantined": quarantined,
                "rows_by_month": dg.MetadataValue.json(per_month),
                "rows_by_source": table_metadata(per_source, counts_of="records"),
                **key_metadata(tokeniser),
                **written.metadata,
            }
        )

    return _staged


STAGED_ASSETS = [build_staged_asset(t) for t in SOURCE_TABLES]
