"""The suites a warehouse table's declaration implies (`warehouse.model`): its expectations
(`model_expectations`) and the ``person_month_metrics.table`` / ``person_month_costs.table``
suites built on them with the run's own rules."""

from __future__ import annotations

from sim_pipeline.quality.expectations import Expectation, Suite, expect
from sim_pipeline.warehouse.model import WarehouseTable, table_name


def model_expectations(model: type[WarehouseTable]) -> list[Expectation]:
    """The expectations a table's declaration implies (`warehouse.model`): its columns exactly,
    its unique grain, and per column never empty, the declared range, code list and format.
    The same rules `warehouse.model.violations` checks before a write: declared once."""
    schema = model.to_schema()
    ex = [
        expect(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents.",
            column_set=list(schema.columns),
            exact_match=True,
        )
    ]
    if schema.unique:
        ex.append(
            expect(
                "ExpectCompoundColumnsToBeUnique",
                "uniqueness",
                "One row per " + " and ".join(schema.unique) + ".",
                column_list=list(schema.unique),
            )
        )
    for name, column in schema.columns.items():
        if not column.nullable:
            ex.append(
                expect("ExpectColumnValuesToNotBeNull", "completeness", "Never empty.", column=name)
            )
        stats = {check.name: check.statistics for check in column.checks}
        low = stats.get("greater_than_or_equal_to", {}).get("min_value")
        high = stats.get("less_than_or_equal_to", {}).get("max_value")
        if low is not None or high is not None:
            note = f"At least {low}" if high is None else f"From {low} to {high}"
            ex.append(
                expect(
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
                expect(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "A declared code.",
                    column=name,
                    value_set=list(stats["isin"]["allowed_values"]),
                )
            )
        if "str_matches" in stats:
            ex.append(
                expect(
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
        expect(
            "ExpectTableRowCountToBeBetween",
            "row_count",
            "At least one row per cohort member and month (zeros included)"
            + ("; exactly one per person_month_metrics row." if max_rows is not None else "."),
            min_value=int(min_rows),
            max_value=None if max_rows is None else int(max_rows),
        ),
        expect(
            "ExpectColumnValuesToBeInSet",
            "range",
            "Every row belongs to a month of this run.",
            column="month",
            value_set=list(months),
        ),
    ]
    if price_year is not None:
        ex.append(
            expect(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One price year throughout.",
                column="price_year",
                value_set=[price_year],
            )
        )
    if unit_cost_version is not None:
        ex.append(
            expect(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One unit-cost version throughout.",
                column="unit_cost_version",
                value_set=[unit_cost_version],
            )
        )
    table = table_name(model)
    return Suite(f"{table}.table", table, tuple(ex))
