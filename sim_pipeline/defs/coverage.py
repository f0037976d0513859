"""Quality asset: coverage and timeliness of provider drops (wiring only; the logic is in
`sim_pipeline.quality.coverage`)."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import (
    DATA_QUALITY,
    study_months,
    table_metadata,
    table_spec,
)
from sim_pipeline.defs.ingest import STAGED_ASSETS
from sim_pipeline.defs.resources import LandingResource, WarehouseResource
from sim_pipeline.quality.coverage import (
    LEDGER_READ_COLUMNS,
    DueRule,
    VolumeRule,
    build_coverage,
    coverage_matrix,
    landing_drops,
    last_month_with_data,
    late_drops,
    missing_drops,
    provider_summary,
    record_versions,
    unexpected_files,
    unprocessed_resubmissions,
    utc_text,
    volume_anomalies,
)

TABLE = "drop_coverage"
VERSIONS = "landing_file_versions"
LISTED = 50  # rows of a finding shown in check metadata
FINDING_COLUMNS = ["file", "status", "arrived_at", "due_at", "days_late", "versions"]
DROPS_COMPLETE = Check(
    "drops_complete",
    "Passes when every drop the contracts expect (each provider table, each month) has been "
    "received, up to the last month for which any drop has arrived. Fails when a drop is past "
    "its deadline and absent from both the landing folder and the ingest ledger: metrics for "
    "that provider and month would silently count nothing. The failing drops are listed.",
    blocking=True,
)
DROPS_ON_TIME = Check(
    "drops_on_time",
    "Passes when every received drop arrived (its first version's file modification time) by "
    "its deadline. Warns with the list of late drops and how many days late each was; a late "
    "drop may have missed the scheduled monthly ingest.",
)
NO_VOLUME_ANOMALIES = Check(
    "no_volume_anomalies",
    "Passes when no drop's row count is below half or above twice the median of the same "
    "provider table's previous six received months (judged once there are three prior months "
    "and the median is at least 30 rows). Warns with the list: a truncated or duplicated "
    "extract looks like this.",
)
NO_UNPROCESSED_RESUBMISSION = Check(
    "no_unprocessed_resubmission",
    "Passes when every resubmitted drop (a file whose contents changed after it was first "
    "seen) has been ingested in its current version. Warns with the list of files whose latest "
    "version is still waiting for ingest: the warehouse holds the superseded version.",
)


class CoverageConfig(dg.Config):
    """The deadline and the volume rule; the defaults are the rules' own (`quality/coverage.py`
    states them and their assumptions)."""

    due_day: int = DueRule.day
    due_hour: int = DueRule.hour
    due_months_after: int = DueRule.months_after
    due_timezone: str = DueRule.timezone
    volume_window: int = VolumeRule.window
    volume_min_history: int = VolumeRule.min_history
    volume_low: float = VolumeRule.low
    volume_high: float = VolumeRule.high
    volume_min_median_rows: float = VolumeRule.min_median_rows
    matrix_months: int = 12

    def due_rule(self) -> DueRule:
        return DueRule(self.due_day, self.due_hour, self.due_months_after, self.due_timezone)

    def volume_rule(self) -> VolumeRule:
        return VolumeRule(
            self.volume_window,
            self.volume_min_history,
            self.volume_low,
            self.volume_high,
            self.volume_min_median_rows,
        )


def _listing(df: pd.DataFrame, columns: list[str]) -> dg.MetadataValue:
    return table_metadata(df[columns].head(LISTED), counts_of="records")


_COVERAGE_DESCRIPTION = (
    "Which provider drops arrived, when, and whether anything is wrong with them: one row "
    "per expected drop (every provider table x each month), with its arrival time (the "
    "landing file's modification time, UTC), its deadline, whether it was late or is "
    "missing, how many different versions of the file have been seen (a resubmission), "
    "whether the current version has been ingested, and its row count against the median "
    "of the provider's previous six months (a volume anomaly). Files that no contract "
    "expects are listed too. The deadline is an assumption (default: 00:00 Europe/London "
    "on the 20th of the month after, before the monthly ingest schedule runs) and can be "
    "changed in the run config, like the volume rule. Every version of every landing "
    "file is kept in `landing_file_versions`. The materialisation shows a provider x month "
    "matrix of the latest months, a summary per provider table over all months and the "
    "list of findings."
)


@dg.multi_asset(
    name=TABLE,
    specs=[
        table_spec(
            TABLE,
            _COVERAGE_DESCRIPTION,
            deps=[*(a.key for a in STAGED_ASSETS), dg.AssetKey("ingest_ledger")],
            group_name="quality",
            owners=[DATA_QUALITY],
        ),
        table_spec(
            VERSIONS,
            "Every distinct version (contents) of every landing file ever seen, from the "
            "landing folder and the ingest ledger: its SHA-256, when drop_coverage first "
            "recorded it and the file's modification time then. Appended, never rewritten: a "
            "file whose contents change gets a new row (a resubmission).",
            deps=[*(a.key for a in STAGED_ASSETS), dg.AssetKey("ingest_ledger")],
            group_name="quality",
            owners=[DATA_QUALITY],
        ),
    ],
    # landing_file_versions is read, extended and written back: one writer at a time
    pool="warehouse_write_drop_coverage",
    can_subset=False,
    check_specs=[
        c.spec(TABLE)
        for c in (DROPS_COMPLETE, DROPS_ON_TIME, NO_VOLUME_ANOMALIES, NO_UNPROCESSED_RESUBMISSION)
    ],
)
def drop_coverage(
    context: dg.AssetExecutionContext,
    config: CoverageConfig,
    landing: LandingResource,
    warehouse: WarehouseResource,
):
    due, volume = config.due_rule(), config.volume_rule()
    months = study_months()
    wh = warehouse.get()
    now = pd.Timestamp.now(tz="UTC")
    ledger = wh.read("ingest_ledger", columns=LEDGER_READ_COLUMNS)
    drops = landing_drops(landing.path, months)
    versions, added = record_versions(wh.read(VERSIONS), drops, ledger, utc_text(now))
    unexpected = unexpected_files(landing.path, months)
    cov = build_coverage(months, drops, ledger, versions, now, due, volume, unexpected)
    # judged after writing: the auditor's tables always show the drops, whatever they find
    written = yield from write_or_refuse(
        wh,
        context,
        [Write(TABLE, cov), Write(VERSIONS, versions)],
        rows_in=len(drops) + len(ledger),
        note="rows_in: landing drops and ledger rows; rows_out: expected and unexpected drops",
        stage=TABLE,
    )

    missing, late = missing_drops(cov), late_drops(cov)
    anomalies, unprocessed = volume_anomalies(cov), unprocessed_resubmissions(cov)
    expected = cov[cov["expected"]]
    by_status = {str(k): int(v) for k, v in cov["status"].value_counts().sort_index().items()}
    findings = cov[
        cov["status"].isin(["late", "missing", "unexpected"])
        | cov["resubmitted"]
        | cov["volume_anomaly"].notna()
    ]
    volume_cols = ["file", "rows_read", "trailing_median_rows", "volume_ratio", "volume_anomaly"]
    yield dg.MaterializeResult(
        asset_key=VERSIONS,
        data_version=written.data_version(VERSIONS),
        metadata={"dagster/row_count": len(versions), "versions_new_in_this_run": added},
    )
    yield dg.MaterializeResult(
        asset_key=TABLE,
        data_version=written.data_version(TABLE),
        metadata={
            "dagster/row_count": len(cov),
            **written.metadata,
            "drops_by_status": dg.MetadataValue.json(by_status),
            "drops_expected": len(expected),
            "drops_received": int(expected["received"].sum()),
            "drops_late": len(late),
            "drops_missing": int((cov["status"] == "missing").sum()),
            "drops_resubmitted": int(cov["resubmitted"].sum()),
            "volume_anomalies": len(anomalies),
            "unexpected_files": int((~cov["expected"]).sum()),
            "last_month_with_data": last_month_with_data(cov) or "none",
            "due_rule": due.describe(),
            "volume_rule": volume.describe(),
            "as_of": utc_text(now),
            f"matrix_latest_{config.matrix_months}_months": table_metadata(
                coverage_matrix(cov, config.matrix_months), counts_of="records"
            ),
            "by_provider_table": table_metadata(provider_summary(cov), counts_of="records"),
            "findings": table_metadata(
                findings[
                    [
                        "file",
                        "status",
                        "days_late",
                        "versions",
                        "rows_read",
                        "trailing_median_rows",
                        "volume_anomaly",
                    ]
                ].head(200),
                counts_of="records",
            ),
            "file_versions_recorded": len(versions),
            "file_versions_new_in_this_run": added,
            "warehouse": warehouse.display_url,
        },
        check_results=[
            DROPS_COMPLETE.result(
                missing.empty,
                metadata={
                    "missing_drops": len(missing),
                    "checked_up_to": last_month_with_data(cov) or "none",
                    "missing": _listing(missing, FINDING_COLUMNS),
                },
            ),
            DROPS_ON_TIME.result(
                late.empty,
                metadata={
                    "late_drops": len(late),
                    "due_rule": due.describe(),
                    "late": _listing(late, FINDING_COLUMNS),
                },
            ),
            NO_VOLUME_ANOMALIES.result(
                anomalies.empty,
                metadata={
                    "anomalies": len(anomalies),
                    "volume_rule": volume.describe(),
                    "drops": _listing(anomalies, volume_cols),
                },
            ),
            NO_UNPROCESSED_RESUBMISSION.result(
                unprocessed.empty,
                metadata={
                    "unprocessed_resubmissions": len(unprocessed),
                    "files": _listing(unprocessed, FINDING_COLUMNS),
                },
            ),
        ],
    )
    context.log.info(
        f"drop_coverage: {len(expected)} expected drops, status {by_status}, "
        f"{len(anomalies)} volume anomalies, {added} new file versions"
    )
