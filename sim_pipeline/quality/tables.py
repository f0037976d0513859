"""The quality stage's warehouse tables, each declared once (`warehouse.model`): drop coverage
and the landing file versions, the audit trail and the Great Expectations results."""

from __future__ import annotations

from sim_pipeline.warehouse.model import (
    Boolean,
    Integer,
    Real,
    Text,
    WarehouseTable,
    col,
    shared_col,
)

drop_source_col = shared_col("Provider folder")


drop_table_name_col = shared_col("Provider table (file stem)")


drop_month_col = shared_col("Month YYYY-MM the drop is for")


class DropCoverage(WarehouseTable):
    """Coverage and timeliness of provider drops: expected, received, late, missing, resubmitted,
    and volume anomalies (quality/coverage.py; the deadline and volume rule are configurable
    assumptions).
    """

    source: Text = drop_source_col()
    table_name: Text = drop_table_name_col()
    month: Text = drop_month_col()
    file: Text = col("Landing file, relative to the landing folder")
    expected: Boolean = col("A contract expects this drop (false: an unexpected file)")
    received: Boolean = col(
        "The file is in the landing folder or the ingest ledger has ingested it"
    )
    arrived_at: Text = col(
        "Arrival (UTC, ISO 8601): modification time of the first version seen of the "
        "landing file; empty when not received or unknown"
    )
    due_at: Text = col(
        "Deadline (UTC, ISO 8601); default 00:00 Europe/London on day 20 of the month after"
    )
    late: Boolean = col("Arrived after due_at (empty when not received)")
    days_late: Real = col("Days after due_at it arrived (0 when on time)")
    versions: Integer = col("Distinct contents (SHA-256) seen of the file")
    resubmitted: Boolean = col("More than one version seen")
    current_version_ingested: Boolean = col("The ingest ledger holds the file's current contents")
    rows_read: Integer = col("Data rows read at ingest (ingest_ledger)")
    trailing_median_rows: Real = col(
        "Median rows_read of the previous 6 received months of the provider table (needs 3)"
    )
    volume_ratio: Real = col(
        "rows_read / trailing_median_rows, where judged (median at least 30 rows)"
    )
    volume_anomaly: Text = col("low (ratio < 0.5), high (> 2), empty otherwise")
    status: Text = col(
        "received (on time), late, missing (not received, past due), not_yet_due, unexpected"
    )

    class Config:
        name = "drop_coverage"
        metadata = {
            "grain": (
                "one row per expected drop (source, table_name, month), plus one per landing "
                "file no contract expects"
            )
        }


class LandingFileVersions(WarehouseTable):
    """Every distinct version (content) of every landing file ever seen, from the landing folder
    and the ingest ledger; appended by drop_coverage, never rewritten.
    """

    file: Text = col("Landing file, relative to the landing folder")
    source: Text = drop_source_col()
    table_name: Text = drop_table_name_col()
    month: Text = drop_month_col()
    file_sha256: Text = col("SHA-256 of the version's contents")
    first_seen_at: Text = col("When drop_coverage first recorded it (UTC, ISO 8601)")
    modified_at: Text = col(
        "The landing file's modification time when first seen (UTC, ISO 8601); empty for "
        "a version known only from the ledger"
    )
    rows: Integer = col("Data rows read at ingest of this version, when known")

    class Config:
        name = "landing_file_versions"
        metadata = {"grain": "one row per landing file and SHA-256"}


class AuditTrail(WarehouseTable):
    """Per run and stage: the code version, the pseudonymisation key fingerprint (never the key),
    the unit-cost version and the rows in and out. Written in the same transaction as the
    stage's own output, or alone when a blocking check stopped the write. Appended run after
    run: an auditor can trace any table back to the run and commit that made it.
    """

    run_id: Text = col("Dagster run id")
    stage: Text = col("Asset that wrote (or refused to write) its output")
    months: Text = col("Partitions written: YYYY-MM, YYYY-MM..YYYY-MM, or all")
    recorded_at: Text = col("When (UTC, ISO 8601)")
    status: Text = col("written, or not_written when a check stopped the write before it happened")
    code_version: Text = col(
        "Git commit of the code (+dirty when tracked files differ), or SIM_CODE_VERSION"
    )
    key_fingerprint: Text = col("Fingerprint of the pseudonymisation key in use")
    unit_cost_version: Text = col("Unit-cost version used (costed stages only)")
    rows_in: Integer = col("Rows the stage read (landing rows for ingest)")
    rows_out: Integer = col("Rows the stage wrote to its table(s)")
    rows_rejected: Integer = col("Rows set aside with a reason (quarantine for ingest)")
    note: Text = col("What rows_in and rows_out count, where that is not obvious")

    class Config:
        name = "audit_trail"
        metadata = {"grain": "one row per Dagster run and stage (asset)"}


class QualityResults(WarehouseTable):
    """Great Expectations results: every expectation of every suite run as a Dagster asset check
    (staged tables, their landing files, person-month tables), with counts only (never a data
    value) and the Data Docs page that shows it.
    """

    suite: Text = col("Suite name: <table>.table (its rows) or <table>.drops (its files)")
    asset: Text = col("Dagster asset / warehouse table the suite describes")
    batch: Text = col("Months validated: YYYY-MM or YYYY-MM..YYYY-MM")
    run_id: Text = col("Dagster run that validated the batch")
    validated_at: Text = col("When (UTC, ISO 8601)")
    expectation: Text = col("Great Expectations expectation type")
    column_names: Text = col("Column(s) the expectation reads (blank: whole table)")
    category: Text = col("schema, row_count, completeness, code_list, format, uniqueness or range")
    success: Boolean = col("The expectation held")
    element_count: Integer = col("Rows examined (column expectations)")
    unexpected_count: Integer = col("Rows that broke the expectation")
    unexpected_percent: Real = col("Share of rows that broke it (%)")
    observed_value: Text = col(
        "Table-level observation only (row count, missing/unexpected columns) or the "
        "error raised; never a column's values"
    )
    note: Text = col("What the expectation means, for an auditor")
    data_docs_page: Text = col("Data Docs page of this validation (local file)")

    class Config:
        name = "quality_results"
        metadata = {
            "grain": (
                "one row per expectation per suite and batch (the latest validation of that batch)"
            )
        }
