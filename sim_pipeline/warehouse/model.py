"""One declaration per warehouse table: a pandera `DataFrameModel`, and what is derived from it.

Every table the pipeline writes is declared once, beside the domain that makes it
(`ingest.tables`, `identity.tables`, `measures.tables`, `evaluation.tables`, `quality.tables`),
as a `WarehouseTable` subclass: one field per column with its type, its description and its
rules (``nullable``, ``ge``, ``le``, ``isin``, ``str_matches``, the table's ``unique`` grain).
From that one class come:

- its columns in order (`columns`), where code used to keep ``*_COLUMNS`` lists;
- the data dictionary (`warehouse.dictionary`) and Dagster's column schema (`defs.common`);
- the SQLAlchemy table with table and column comments (`sa_table`), which creates it in the
  warehouse and which the Alembic migrations (`warehouse.migrations`) bring existing
  PostgreSQL warehouses up to;
- the value rules, checked before a write (`violations`) and as Great Expectations
  expectations (`quality.model_suites.model_expectations`).

Types are the warehouse's six: text, integer, real, date, timestamp, boolean. A column may be
empty unless declared ``nullable=False``: the frames the pipeline writes use pandas' own
dtypes, so a model's rules are checked on values, not on the frame's dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from pandera.engines import pandas_engine
from pandera.typing import Series

Text = Series[str]
Integer = Series[pd.Int64Dtype]
Real = Series[float]
Date = Series[pandas_engine.Date]
Timestamp = Series[pd.Timestamp]
Boolean = Series[pd.BooleanDtype]

_ANNOTATION = {
    "text": Text,
    "integer": Integer,
    "real": Real,
    "date": Date,
    "timestamp": Timestamp,
    "boolean": Boolean,
}
_SQL: dict[str, sa.types.TypeEngine] = {
    "date": sa.Date(),
    "timestamp": sa.DateTime(),
    "integer": sa.BigInteger(),
    "text": sa.Text(),
    "boolean": sa.Boolean(),
    "real": sa.Float(),
}


def col(description: str, *, nullable: bool = True, **rules: Any) -> Any:
    """A column: its description and rules (pandera's ``Field`` arguments). Columns may be
    empty unless ``nullable=False``."""
    return pa.Field(description=description, nullable=nullable, **rules)


def shared_col(description: str, **rules: Any) -> Callable[..., Any]:
    """A column several tables declare alike: call the result in each table (a pandera field
    belongs to one class), with any further rules."""
    return lambda **more: col(description, **{**rules, **more})


class WarehouseTable(pa.DataFrameModel):
    """Base of every warehouse table declaration. ``Config.name`` is the table's name,
    the class docstring what it holds, ``Config.metadata["grain"]`` what one row is, and
    ``Config.unique`` the columns no two rows share."""

    class Config:
        strict = True
        coerce = False


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


def _logical_type(dtype: Any) -> str:
    text = str(dtype)
    if text.startswith(("string", "str", "object")):
        return "text"
    if text.lower().startswith("int"):
        return "integer"
    if text.startswith("float"):
        return "real"
    if text == "date":
        return "date"
    if text.startswith("datetime"):
        return "timestamp"
    if text.startswith(("bool", "boolean")):
        return "boolean"
    raise TypeError(f"no warehouse type for pandera dtype {text}")


def table_name(model: type[WarehouseTable]) -> str:
    return str(model.__config__.name)


def description(model: type[WarehouseTable]) -> str:
    """What the table holds: the declaration's docstring, as one line."""
    return " ".join((model.__doc__ or "").split())


def grain(model: type[WarehouseTable]) -> str:
    return str((model.__config__.metadata or {}).get("grain", ""))


def column_docs(model: type[WarehouseTable]) -> tuple[Column, ...]:
    """The table's columns in order, each with its warehouse type and description."""
    schema = model.to_schema()
    return tuple(
        Column(name, _logical_type(c.dtype), c.description or "")
        for name, c in schema.columns.items()
    )


def columns(model: type[WarehouseTable]) -> list[str]:
    """The table's column names in order (where code kept ``*_COLUMNS`` lists before)."""
    return list(model.to_schema().columns)


def sql_types(model: type[WarehouseTable]) -> dict[str, sa.types.TypeEngine]:
    return {c.name: _SQL[c.type] for c in column_docs(model)}


def sa_table(model: type[WarehouseTable], metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy table, with the table's and every column's description as comments
    (PostgreSQL keeps them: ``\\d+`` and any SQL client show them; SQLite ignores them)."""
    return sa.Table(
        table_name(model),
        metadata if metadata is not None else sa.MetaData(),
        *(
            sa.Column(c.name, _SQL[c.type], comment=c.description or None)
            for c in column_docs(model)
        ),
        comment=description(model) or None,
    )


def make_table(
    name: str,
    doc: str,
    grain_text: str,
    fields: Iterable[tuple[str, str, Any]],
    *,
    unique: list[str] | None = None,
    base: type[WarehouseTable] = WarehouseTable,
) -> type[WarehouseTable]:
    """A declaration whose columns follow from a list (the staged tables from their provider
    contract, the person-month tables from the metric list): ``fields`` are
    (name, warehouse type, ``col(...)``)."""
    fields = list(fields)
    config = type("Config", (), {"name": name, "metadata": {"grain": grain_text}, "unique": unique})
    attrs: dict[str, Any] = {
        "__annotations__": {n: _ANNOTATION[t] for n, t, _ in fields},
        "__doc__": doc,
        "__module__": base.__module__,
        "Config": config,
    }
    attrs |= {n: f for n, _, f in fields}
    cls_name = "".join(p.title() for p in name.split("_"))
    return type(cls_name, (base,), attrs)


# -- checking a frame against its declaration -----------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A rule a frame broke: the column (blank for a table rule), the rule and how many rows.
    Never a value: a violation can reach a log, an exception or the Dagster event log."""

    column: str
    rule: str
    rows: int

    def __str__(self) -> str:
        where = f"column {self.column}" if self.column else "the table"
        return f"{where}: {self.rule} ({self.rows} rows)"


def _value_schema(model: type[WarehouseTable]) -> pa.DataFrameSchema:
    schema = model.to_schema()
    return schema.update_columns({c: {"dtype": None} for c in schema.columns})


def violations(model: type[WarehouseTable], frame: pd.DataFrame) -> list[Violation]:
    """Every rule of the declaration ``frame`` breaks: missing or undeclared columns, empty
    values where the column is required, the column rules and the table's unique grain. Values
    are compared as they are (the frame's dtypes are the writer's business)."""
    declared = columns(model)
    out = [Violation(c, "column_missing", len(frame)) for c in declared if c not in frame]
    out += [Violation(c, "column_not_declared", len(frame)) for c in frame if c not in declared]
    if out or frame.empty:
        return out
    try:
        _value_schema(model).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        table_level = cases["schema_context"] == "DataFrameSchema"
        grain_cols = ",".join(model.__config__.unique or [])
        for rule, group in cases[table_level].groupby("check"):
            out.append(Violation(grain_cols, f"{rule}", int(group["index"].nunique())))
        for (column, rule), group in cases[~table_level].groupby(["column", "check"]):
            out.append(Violation(str(column), str(rule), int(group["index"].nunique())))
    return sorted(out, key=lambda v: (v.column, v.rule))
