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

This module owns the plain-data types (`Expectation`, `Suite`, `SuiteOutcome`) and the settings
GX runs them with; the suites over provider data are built in `quality.staged_suites`, those a
table declaration implies in `quality.model_suites`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim_pipeline.quality.tables import QualityResults
from sim_pipeline.warehouse.model import columns

DATASOURCE = "sim_pipeline"
# BASIC: the counts (elements, unexpected, their share) and no value (a partial list of none).
# SUMMARY would add each failing row's index and a query to find them, which GX computes for
# every column expectation by filtering the whole frame, then drops (a third of a validation's
# time; the kept results are the same: 590 compared on the demo's staged tables, 38 failing).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}

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


def expect(kind: str, category: str, note: str, **kwargs: Any) -> Expectation:
    """One expectation of a suite: GX's ``kind`` with its arguments, the auditor's category and
    a note saying why it holds (`staged_suites`, `model_suites`)."""
    return Expectation(kind, kwargs, category, note)
