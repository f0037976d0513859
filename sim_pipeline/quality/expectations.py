"""Great Expectations suites: evidence an auditor can read in Data Docs.

Suites are plain data (`Suite` of `Expectation`s) built from the provider contracts and the
table declarations (`warehouse.model`), so they can be listed, documented and tested without
Great Expectations; `quality.gx_runner` runs them in GX (imported lazily) and keeps their
results (counts only, never a data value) in the GX project, Data Docs and `quality_results`.

Suites:
- ``<staged table>.drops``: one row per landing file of a run (from the ingest ledger): every
  expected provider drop present, every file read, rows_read = loaded + quarantined, and
  quarantined rows within their allowance.
- ``<staged table>.table``: the staged rows about to be written: columns exactly as the data
  dictionary documents (so no raw identifier column), completeness, code lists, formats,
  uniqueness of the record key, date and count ranges, and the row count the ledger implies.
- ``person_month_metrics.table`` / ``person_month_costs.table``: completeness, one row per
  person and month, no negative or impossible counts or costs, one price year and unit-cost
  version, and the row count the asset's inputs imply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from sim_pipeline.identity.normalise import AGE_BANDS
from sim_pipeline.identity.record_keys import RECORD_KEY_TOKEN
from sim_pipeline.identity.tokens import BLOOM_BITS, TOKEN_HEX
from sim_pipeline.quality.tables import QualityResults
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.warehouse.model import WarehouseTable, columns, table_name

DATASOURCE = "sim_pipeline"
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
# A file may quarantine up to this share of its rows (or MIN_ALLOWANCE rows, whichever is
# larger: a 7-row register file with one bad date is not a broken extract).
QUARANTINE_SHARE = 0.02
MIN_ALLOWANCE = 5
EARLIEST_DATE = "1900-01-01"

RESULT_COLUMNS = columns(QualityResults)


@dataclass(frozen=True)
class Expectation:
    """One GX expectation: its GX class name, arguments, our category and the auditor's note."""

    kind: str  # GX 1.x class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: Mapping[str, Any]
    category: str  # completeness | code_list | format | uniqueness | range | row_count | schema
    note: str

    @property
    def columns(self) -> str:
        k = self.kwargs
        if "column" in k:
            return str(k["column"])
        if "column_list" in k:
            return ", ".join(k["column_list"])
        if "column_A" in k:
            return f"{k['column_A']}, {k['column_B']}"
        return ""


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. "staged_ecds.table"
    asset: str  # the Dagster asset / warehouse table it describes
    expectations: tuple[Expectation, ...]

    def __len__(self) -> int:
        return len(self.expectations)


@dataclass
class SuiteOutcome:
    """What one validation found: one row per expectation (RESULT_COLUMNS) and its docs page."""

    suite: Suite
    results: pd.DataFrame
    docs_page: Path | None = None
    seconds: float = 0.0  # validation, storing the result and updating Data Docs
    docs_index: Path | None = None  # the Data Docs site's index page
    success: bool = field(init=False)

    def __post_init__(self) -> None:
        self.success = bool(self.results["success"].all()) if len(self.results) else True

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[~self.results["success"].astype(bool)]

    def failure_lines(self) -> list[str]:
        """One plain sentence per failed expectation (counts only, never values)."""
        out = []
        for r in self.failed.itertuples(index=False):
            where = f" on {r.column_names}" if r.column_names else ""
            if pd.notna(r.unexpected_count):
                detail = f"{int(r.unexpected_count)} of {int(r.element_count)} rows"
            elif isinstance(r.observed_value, str) and r.observed_value:
                detail = f"observed {r.observed_value}"
            else:
                detail = "failed"
            out.append(f"{r.category}: {r.expectation}{where}: {detail} ({r.note})")
        return out


# -- suites -------------------------------------------------------------------------------


def _e(kind: str, category: str, note: str, **kwargs: Any) -> Expectation:
    return Expectation(kind, kwargs, category, note)


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
        _e(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents: no raw identifier column "
            "(name, NHS number, date of birth, postcode, address) and nothing undocumented.",
            column_set=documented_columns,
            exact_match=True,
        ),
        _e(
            "ExpectTableRowCountToEqual",
            "row_count",
            "Rows equal the ledger's rows read minus rows quarantined for these months: "
            "no row lost or invented between the landing file and the warehouse.",
            value=int(expected_rows),
        ),
        _e(
            "ExpectCompoundColumnsToBeUnique",
            "uniqueness",
            f"The provider's record key ({table.record_ref}) is unique within each provider "
            "and month.",
            column_list=["source", "month", "record_ref"],
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "code_list",
            "Every row comes from a provider that sends this table.",
            value_set=list(table.providers),
            column="source",
        ),
        _e(
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
            _e(
                "ExpectColumnValuesToNotBeNull",
                "completeness",
                "Required by the contract or by provenance: never empty.",
                column=c,
            )
        )
    for c, allowed in codes.items():
        if c in kept:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "Only codes from the national code list (sources/codes.py).",
                    column=c,
                    value_set=allowed,
                )
            )
    for c in ["record_ref", *table.key_columns]:
        ex.append(
            _e(
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
                _e(
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
                _e(
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
                _e(
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
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Normalised sex: M, F or U.",
                column="person_sex",
                value_set=["M", "F", "U"],
            ),
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Age bands used in every published table.",
                column="age_band",
                value_set=[label for _, _, label in AGE_BANDS],
            ),
            _e(
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
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    f"A keyed token ({TOKEN_HEX} hex characters), never a raw value.",
                    column=c,
                    regex=f"^[0-9a-f]{{{TOKEN_HEX}}}$",
                )
            )
        for c in ("given_name_bf", "family_name_bf"):
            ex.append(
                _e(
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
        _e(
            "ExpectTableRowCountToEqual",
            "row_count",
            f"One file per provider and month: {len(table.providers)} provider(s) x "
            f"{len(months)} month(s). Fewer means a provider month is missing.",
            value=expected,
        ),
        _e(
            "ExpectColumnValuesToBeUnique",
            "uniqueness",
            "Each landing file is accounted for once.",
            column="file",
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "completeness",
            "Every file could be read: a file rejected whole (wrong encoding, missing column, "
            "truncated) has every row quarantined and fails here.",
            column="file_status",
            value_set=["loaded"],
        ),
        _e(
            "ExpectColumnPairValuesToBeEqual",
            "row_count",
            "rows_read = rows_loaded + rows_quarantined for every file: nothing lost.",
            column_A="rows_read",
            column_B="rows_accounted",
        ),
        _e(
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


def model_expectations(model: type[WarehouseTable]) -> list[Expectation]:
    """The expectations a table's declaration implies (`warehouse.model`): its columns exactly,
    its unique grain, and per column never empty, the declared range, code list and format.
    The same rules `warehouse.model.violations` checks before a write: declared once."""
    schema = model.to_schema()
    ex = [
        _e(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents.",
            column_set=list(schema.columns),
            exact_match=True,
        )
    ]
    if schema.unique:
        ex.append(
            _e(
                "ExpectCompoundColumnsToBeUnique",
                "uniqueness",
                "One row per " + " and ".join(schema.unique) + ".",
                column_list=list(schema.unique),
            )
        )
    for name, column in schema.columns.items():
        if not column.nullable:
            ex.append(
                _e("ExpectColumnValuesToNotBeNull", "completeness", "Never empty.", column=name)
            )
        stats = {check.name: check.statistics for check in column.checks}
        low = stats.get("greater_than_or_equal_to", {}).get("min_value")
        high = stats.get("less_than_or_equal_to", {}).get("max_value")
        if low is not None or high is not None:
            note = f"At least {low}" if high is None else f"From {low} to {high}"
            ex.append(
                _e(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    note + ".",
                    column=name,
                    min_value=low,
                    max_value=high,
                )
            )
        if "isin" in stats:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "A declared code.",
                    column=name,
                    value_set=list(stats["isin"]["allowed_values"]),
                )
            )
        if "str_matches" in stats:
            ex.append(
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    "The declared format.",
                    column=name,
                    regex=stats["str_matches"]["pattern"],
                )
            )
    return ex


def person_month_suite(
    model: type[WarehouseTable],
    months: list[str],
    min_rows: int,
    max_rows: int | None = None,
    price_year: str | None = None,
    unit_cost_version: str | None = None,
) -> Suite:
    """The suite for ``person_month_metrics`` or ``person_month_costs`` rows of ``months``:
    the declaration's rules (`model_expectations`) and this run's (row count, months, one
    price year and unit-cost version)."""
    ex: list[Expectation] = [
        *model_expectations(model),
        _e(
            "ExpectTableRowCountToBeBetween",
            "row_count",
            "At least one row per cohort member and month (zeros included)"
            + ("; exactly one per person_month_metrics row." if max_rows is not None else "."),
            min_value=int(min_rows),
            max_value=None if max_rows is None else int(max_rows),
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "range",
            "Every row belongs to a month of this run.",
            column="month",
            value_set=list(months),
        ),
    ]
    if price_year is not None:
        ex.append(
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One price year throughout.",
                column="price_year",
                value_set=[price_year],
            )
        )
    if unit_cost_version is not None:
        ex.append(
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One unit-cost version throughout.",
                column="unit_cost_version",
                value_set=[unit_cost_version],
            )
        )
    table = table_name(model)
    return Suite(f"{table}.table", table, tuple(ex))
