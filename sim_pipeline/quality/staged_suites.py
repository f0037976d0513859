"""The suites over provider data: ``<staged table>.table`` (the staged rows about to be written,
from the provider contract and the table declarations) and ``<staged table>.drops`` (one row per
landing file of a run, from the ingest ledger), with the quarantine allowance a file is held to."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd

from sim_pipeline.identity.normalise import AGE_BANDS
from sim_pipeline.identity.record_keys import RECORD_KEY_TOKEN
from sim_pipeline.identity.tokens import BLOOM_BITS, TOKEN_HEX
from sim_pipeline.quality.expectations import Expectation, Suite, expect
from sim_pipeline.sources.base import SourceTable

# A file may quarantine up to this share of its rows (or MIN_ALLOWANCE rows, whichever is
# larger: a 7-row register file with one bad date is not a broken extract).
QUARANTINE_SHARE = 0.02
MIN_ALLOWANCE = 5
EARLIEST_DATE = "1900-01-01"


def _month_end(month: str) -> str:
    return (pd.Period(month, "M").end_time.normalize()).strftime("%Y-%m-%d")


def _contract_rules(table: SourceTable) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """(required columns, code lists, regex formats) of the contract's columns."""
    schema = table.contract.to_schema()
    required, codes, formats = [], {}, {}
    for name, col in schema.columns.items():
        if not col.nullable:
            required.append(name)
        for check in col.checks:
            if check.name == "isin":
                codes[name] = [str(v) for v in check.statistics["allowed_values"]]
            elif check.name == "str_matches":
                formats[name] = str(check.statistics["pattern"])
    return required, codes, formats


def staged_table_suite(
    table: SourceTable, documented_columns: list[str], months: list[str], expected_rows: int
) -> Suite:
    """The suite for a staged table's rows of ``months`` (``expected_rows`` from the ledger:
    rows read minus rows quarantined)."""
    kept = table.staged_columns
    required, codes, formats = _contract_rules(table)
    ex: list[Expectation] = [
        expect(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents: no raw identifier column "
            "(name, NHS number, date of birth, postcode, address) and nothing undocumented.",
            column_set=documented_columns,
            exact_match=True,
        ),
        expect(
            "ExpectTableRowCountToEqual",
            "row_count",
            "Rows equal the ledger's rows read minus rows quarantined for these months: "
            "no row lost or invented between the landing file and the warehouse.",
            value=int(expected_rows),
        ),
        expect(
            "ExpectCompoundColumnsToBeUnique",
            "uniqueness",
            f"The provider's record key ({table.record_ref}) is unique within each provider "
            "and month.",
            column_list=["source", "month", "record_ref"],
        ),
        expect(
            "ExpectColumnValuesToBeInSet",
            "code_list",
            "Every row comes from a provider that sends this table.",
            value_set=list(table.providers),
            column="source",
        ),
        expect(
            "ExpectColumnValuesToBeInSet",
            "range",
            "Every row belongs to a month of this run.",
            value_set=list(months),
            column="month",
        ),
    ]
    for c in ["record_ref", "source_file", "line_number", "key_id"] + [
        c for c in required if c in kept
    ]:
        ex.append(
            expect(
                "ExpectColumnValuesToNotBeNull",
                "completeness",
                "Required by the contract or by provenance: never empty.",
                column=c,
            )
        )
    for c, allowed in codes.items():
        if c in kept:
            ex.append(
                expect(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "Only codes from the national code list (sources/codes.py).",
                    column=c,
                    value_set=allowed,
                )
            )
    for c in ["record_ref", *table.key_columns]:
        ex.append(
            expect(
                "ExpectColumnValuesToMatchRegex",
                "format",
                "Provider record keys arrive as keyed tokens (32 hex characters): no key as the "
                "provider sent it.",
                column=c,
                regex=RECORD_KEY_TOKEN,
            )
        )
    for c, pattern in formats.items():
        skip = {*table.key_columns, *table.date_columns, *table.datetime_columns}
        if c in kept and c not in skip:
            ex.append(
                expect(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    "Values have the contract's format.",
                    column=c,
                    regex=pattern,
                )
            )
    last = _month_end(max(months)) if months else "2100-01-01"
    for c in [*table.date_columns, *table.datetime_columns]:
        if c in kept:
            ex.append(
                expect(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    f"Dates between {EARLIEST_DATE} and the end of the month after the run's "
                    "last month (an extract cannot describe the future).",
                    column=c,
                    min_value=datetime.fromisoformat(EARLIEST_DATE),
                    max_value=datetime.fromisoformat(_month_end(str(pd.Period(last[:7], "M") + 1))),
                )
            )
    for c in table.int_columns:
        if c in kept:
            ex.append(
                expect(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    "Whole numbers, never negative.",
                    column=c,
                    min_value=0,
                    max_value=None,
                )
            )
    if table.identifiers.raw_columns() or table.identifiers.sex:
        ex += [
            expect(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Normalised sex: M, F or U.",
                column="person_sex",
                value_set=["M", "F", "U"],
            ),
            expect(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Age bands used in every published table.",
                column="age_band",
                value_set=[label for _, _, label in AGE_BANDS],
            ),
            expect(
                "ExpectColumnValuesToMatchRegex",
                "format",
                "Postcode district only (outward code): never a full postcode.",
                column="postcode_district",
                regex=r"^[A-Z]{1,2}[0-9][A-Z0-9]?$",
            ),
        ]
        for c in (
            "nhs_number_token",
            "birth_date_token",
            "postcode_unit_token",
        ):
            ex.append(
                expect(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    f"A keyed token ({TOKEN_HEX} hex characters), never a raw value.",
                    column=c,
                    regex=f"^[0-9a-f]{{{TOKEN_HEX}}}$",
                )
            )
        for c in ("given_name_bf", "family_name_bf"):
            ex.append(
                expect(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    f"A keyed {BLOOM_BITS}-bit Bloom filter (hex), never a raw name.",
                    column=c,
                    regex=f"^[0-9a-f]{{{BLOOM_BITS // 4}}}$",
                )
            )
    return Suite(f"{table.asset_name}.table", table.asset_name, tuple(ex))


def drops_frame(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows of a run with the derived columns the drops suite reads."""
    out = ledger.copy()
    for c in ("rows_read", "rows_loaded", "rows_quarantined"):
        out[c] = pd.to_numeric(out[c]).astype("int64")
    if "file_status" not in out.columns:
        out["file_status"] = "loaded"
    out["rows_accounted"] = out["rows_loaded"] + out["rows_quarantined"]
    out["quarantine_allowance"] = [
        max(math.ceil(QUARANTINE_SHARE * n), MIN_ALLOWANCE) for n in out["rows_read"]
    ]
    return out


def drops_suite(table: SourceTable, months: list[str]) -> Suite:
    """The suite over one run's landing files of ``table`` (see `drops_frame`)."""
    expected = len(table.providers) * len(months)
    ex = (
        expect(
            "ExpectTableRowCountToEqual",
            "row_count",
            f"One file per provider and month: {len(table.providers)} provider(s) x "
            f"{len(months)} month(s). Fewer means a provider month is missing.",
            value=expected,
        ),
        expect(
            "ExpectColumnValuesToBeUnique",
            "uniqueness",
            "Each landing file is accounted for once.",
            column="file",
        ),
        expect(
            "ExpectColumnValuesToBeInSet",
            "completeness",
            "Every file could be read: a file rejected whole (wrong encoding, missing column, "
            "truncated) has every row quarantined and fails here.",
            column="file_status",
            value_set=["loaded"],
        ),
        expect(
            "ExpectColumnPairValuesToBeEqual",
            "row_count",
            "rows_read = rows_loaded + rows_quarantined for every file: nothing lost.",
            column_A="rows_read",
            column_B="rows_accounted",
        ),
        expect(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            "range",
            f"Rows quarantined per file at most {QUARANTINE_SHARE:.0%} of its rows (at least "
            f"{MIN_ALLOWANCE} allowed): more means a damaged extract.",
            column_A="quarantine_allowance",
            column_B="rows_quarantined",
            or_equal=True,
        ),
    )
    return Suite(f"{table.asset_name}.drops", table.asset_name, ex)
