"""The ingest stage's warehouse tables, each declared once (`warehouse.model`): the ingest
ledger and quarantine, and one staged table per provider table.

A staged table's columns follow from its provider table (`sources.SourceTable`): the columns
ingest adds, the contract's columns it keeps (record keys as keyed tokens, times of day
dropped), the identity tokens when the table identifies people, and the row's provenance."""

from __future__ import annotations

from functools import cache
from typing import Any

from sim_pipeline.identity.pseudonymise import IDENTITY_COLUMNS
from sim_pipeline.sources import SOURCE_TABLES, SourceTable
from sim_pipeline.sources.fields import FIELD_DESCRIPTIONS
from sim_pipeline.warehouse.model import (
    Boolean,
    Integer,
    Text,
    WarehouseTable,
    col,
    make_table,
)


class _LandingFileRows(WarehouseTable):
    # the columns ledger and quarantine rows begin with: which landing file they account for
    source: Text = col("Provider folder")
    table_name: Text = col("Provider table (file stem)")
    month: Text = col("Month YYYY-MM")
    file: Text = col("Landing file, relative to the landing folder")


class IngestLedger(_LandingFileRows):
    """Row accounting per landing file"""

    file_sha256: Text = col("SHA-256 of the file as read")
    file_status: Text = col(
        "loaded (the file was read; bad rows quarantined one by one) or rejected (the "
        "file could not be read: every data row quarantined under rejection_rule)"
    )
    rejection_rule: Text = col(
        "Why a rejected file was rejected: file_empty, file_encoding, file_unparseable, "
        "missing_column, duplicate_column, file_truncated, whole_column_contract, "
        "not_regular_file, outside_landing, file_too_large, and for a tokenised drop "
        "manifest_invalid, manifest_mismatch, contract_version (blank when loaded)"
    )
    rows_read: Integer = col(
        "Non-empty physical lines after the header (one record per line; a file never "
        "opened counts 0)"
    )
    rows_loaded: Integer = col("Rows written to the staged table")
    rows_quarantined: Integer = col(
        "Rows written to ingest_quarantine (rows_read = loaded + quarantined)"
    )
    identifiers_nulled: Integer = col(
        "Identifier values (NHS number, name, birth date, postcode) that broke their rule"
        " and were nulled in loaded rows: the rows were kept (see identifier_defects)"
    )
    key_id: Text = col(
        "Fingerprint of the pseudonymisation key (of a tokenised drop: the key its provider "
        "used, from its manifest)"
    )
    demo_key: Boolean = col("True when the public demo key was used (synthetic data only)")
    drop_form: Text = col(
        "raw (identifiers sent, pseudonymised at ingest) or tokenised (tokenised by the "
        "provider with `sim-pipeline tokenise`; a manifest beside it)"
    )
    contract_version: Text = col(
        "Version of the contract the drop was read under: a hash of its form's columns (and "
        "for a tokenised drop the token scheme), from its manifest; a provider's drops agree"
    )

    class Config:
        name = "ingest_ledger"
        metadata = {"grain": "one row per landing file read"}


class IngestQuarantine(_LandingFileRows):
    """Rows rejected by a contract rule, with the rule and reason (never the rejected values)"""

    line_number: Integer = col("Line of the rejected row in the file")
    column_name: Text = col(
        "Column that broke the rule (blank for row-level rules; for a rejected file the "
        "missing or failing column(s), comma-separated)"
    )
    rule: Text = col(
        "Contract rule code (e.g. date_format, nhs_number_check_digit, duplicate_row), or"
        " for every row of a rejected file the file's rule (e.g. file_encoding, "
        "missing_column)"
    )
    reason: Text = col(
        "Fixed description of the rule (for a rejected file: the file and the problem); "
        "never the rejected value"
    )

    class Config:
        name = "ingest_quarantine"
        metadata = {"grain": "one row per rejected row and rule"}


STAGED_ADDED: tuple[tuple[str, str, str], ...] = (
    ("source", "text", "Provider folder the row came from (e.g. slam, met_police, ae_rjz)"),
    ("month", "text", "Partition month YYYY-MM (the drop it arrived in)"),
    (
        "record_ref",
        "text",
        "Keyed token of the provider's record key (the table's key column): unique per record, "
        "the same for a resent record and on every run under one project key",
    ),
)
STAGED_TRAILING: tuple[tuple[str, str, str], ...] = (
    ("source_file", "text", "Landing file, relative to the landing folder"),
    ("line_number", "integer", "Line of the row in its landing file"),
    ("key_id", "text", "Fingerprint of the pseudonymisation key that made the tokens"),
)
KEY_TOKEN_NOTE = (
    " - kept as a keyed token of provider and value (joins within the provider work; the value "
    "sent is not kept: it would let anyone who can search the provider's system find the row)"
)
DAY_NOTE = " - kept to the day (time of day dropped: every metric counts events by day)"
KEPT_TIMES = {
    "Arrival_Time": " - kept: A&E de-duplication matches one person's attendances by site, "
    "date and arrival time",
}


def _staged_type(table: SourceTable, column: str) -> str:
    if column in table.date_columns:
        return "date"
    if column in table.datetime_columns:
        return "timestamp"
    if column in table.int_columns:
        return "integer"
    return "text"


def _staged_description(table: SourceTable, column: str) -> str:
    """The column's meaning and what staging keeps of it, and why (per column)."""
    text = FIELD_DESCRIPTIONS.get(column, column)
    if column in table.key_columns:
        return text + KEY_TOKEN_NOTE
    if column in table.datetime_columns:
        return text + DAY_NOTE
    return text + KEPT_TIMES.get(column, "")


@cache
def staged_model(table: SourceTable) -> type[WarehouseTable]:
    """The staged table's declaration, from its provider table."""
    fields: list[tuple[str, str, Any]] = [(n, t, col(d)) for n, t, d in STAGED_ADDED]
    fields += [
        (c, _staged_type(table, c), col(_staged_description(table, c)))
        for c in table.staged_columns
    ]
    if table.identifiers.raw_columns() or table.identifiers.sex:
        fields += [(n, "text", col(d)) for n, d in IDENTITY_COLUMNS.items()]
    fields += [(n, t, col(d)) for n, t, d in STAGED_TRAILING]
    return make_table(
        table.asset_name,
        table.description,
        "one row per contract-clean landing row; partitioned by month",
        fields,
    )


def staged_models() -> list[type[WarehouseTable]]:
    return [staged_model(t) for t in SOURCE_TABLES]


def landing_lineage(table: SourceTable) -> dict[str, list[str]]:
    """Which landing columns each staged column is made from: a kept column from itself (a
    record key as its keyed token), ``record_ref`` from the record key, each identity token or
    encoding from the raw identifier it replaces (the privacy boundary), the age band from the
    birth date and event date (or the provider's age). Columns staging adds (source, month,
    provenance) have none."""
    ids = table.identifiers
    out: dict[str, list[str]] = {c: [c] for c in table.staged_columns}
    out["record_ref"] = [table.record_ref]
    if not (ids.raw_columns() or ids.sex):
        return out
    birth = [ids.birth_date] if ids.birth_date else []
    postcode = [ids.postcode] if ids.postcode else []
    made_from = {
        "nhs_number_token": [ids.nhs_number] if ids.nhs_number else [],
        "given_name_bf": [ids.given_name] if ids.given_name else [],
        "family_name_bf": [ids.family_name] if ids.family_name else [],
        "birth_date_token": birth,
        "birth_date_swap_token": birth,
        "birth_year_month_token": birth,
        "birth_month_day_token": birth,
        "postcode_unit_token": postcode,
        "postcode_sector_token": postcode,
        "postcode_district_token": postcode,
        "postcode_district": postcode,
        "person_sex": [ids.sex] if ids.sex else [],
        "age_band": [c for c in (ids.birth_date, ids.event_date, ids.age) if c],
        "identifier_defects": [
            c for c in (ids.nhs_number, ids.given_name, ids.family_name, *birth, *postcode) if c
        ],
    }
    out.update({k: v for k, v in made_from.items() if v})
    return out
