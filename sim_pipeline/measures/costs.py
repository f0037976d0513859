"""Versioned unit costs, price-year inflation and person-month costs.

Pure functions over files and DataFrames (no Dagster). Reference data live in two CSV files:

* ``unit_costs.csv`` (``version,metric,item,unit_cost_gbp,price_year,source,sourced,note``): every
  cost carries its source and price year; exactly one row per metric per version prices that
  metric, rows with an empty metric are kept for reference only. ``sourced=false`` marks a
  user-supplied assumption (no published cost), flagged in every output that uses it.
* ``price_index.csv`` (``price_year,index_value,source,verified``): the index used to bring every
  cost to one target price year (factor = index[target] / index[cost year]). Costs from different
  price years are never mixed without it.

Bad reference data raise `CostError` naming the file, the data row and the rule broken.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.measures.tables import COST_COLUMNS, PersonMonthCosts
from sim_pipeline.warehouse.model import columns

UNIT_COST_COLUMNS: tuple[str, ...] = (
    "version",
    "metric",
    "item",
    "unit_cost_gbp",
    "price_year",
    "source",
    "sourced",
    "note",
)
PRICE_INDEX_COLUMNS: tuple[str, ...] = ("price_year", "index_value", "source", "verified")
# the unit costs as read, without version and note, and what the price year makes of them
TABLE_COLUMNS: tuple[str, ...] = (
    *UNIT_COST_COLUMNS[1:7],
    "unit_cost_at_price_year",
    "inflation_factor",
)
OUTPUT_COLUMNS = tuple(columns(PersonMonthCosts))
PRICE_INDEX_UNVERIFIED = "price_index_unverified"
UNSOURCED_PREFIX = "unsourced_assumption:"

_PRICE_YEAR = re.compile(r"^([0-9]{4})/([0-9]{2})$")
_BOOLEANS = {"true": True, "false": False}


class CostError(ValueError):
    """Unit-cost or price-index reference data are unusable (message: file, row, rule)."""


@dataclass(frozen=True)
class UnitCosts:
    """The unit cost of each metric, brought to one target price year.

    ``table`` has one row per metric (in `METRICS` order): the original ``unit_cost_gbp`` and
    ``price_year``, ``source``, ``sourced``, the ``inflation_factor`` and the
    ``unit_cost_at_price_year`` (pennies). ``index_source``/``index_verified`` describe the index
    rows used; no index is used (None/False) when every cost already is in the target year.
    """

    table: pd.DataFrame
    version: str
    price_year: str
    index_source: str | None
    index_verified: bool
    flags: tuple[str, ...]

    @property
    def flag_text(self) -> str:
        """The flags as one ``;``-separated string ("" when there are none)."""
        return ";".join(self.flags)

    @property
    def unit_cost(self) -> dict[str, float]:
        """metric -> unit cost at the target price year."""
        return dict(zip(self.table["metric"], self.table["unit_cost_at_price_year"], strict=True))


def round_pennies(value: float) -> float:
    """``value`` rounded half up to 2 decimal places (via Decimal, so 0.125 -> 0.13)."""
    return float(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _fail(path: Path, row: int | None, rule: str) -> CostError:
    where = f"{path}: data row {row} (file line {row + 1})" if row is not None else f"{path}"
    return CostError(f"{where}: {rule}")


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read ``path`` as text (no NA guessing), whitespace stripped, with data row numbers."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _fail(path, None, f"cannot read CSV ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise _fail(path, None, f"missing column(s) {', '.join(missing)}")
    frame = frame.apply(lambda col: col.str.strip())
    frame["_row"] = range(1, len(frame) + 1)
    return frame


def _check_price_year(path: Path, row: int, column: str, text: str) -> None:
    match = _PRICE_YEAR.match(text)
    if not text:
        raise _fail(path, row, f"{column} is empty (every value needs a price year)")
    if match is None or (int(match.group(1)) + 1) % 100 != int(match.group(2)):
        raise _fail(path, row, f"{column} {text!r} is not a financial year like 2018/19")


def _number(path: Path, row: int, column: str, text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(path, row, f"{column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _fail(path, row, f"{column} {text!r} is not a finite number")
    if value < 0 or (positive and value == 0):
        raise _fail(path, row, f"{column} {text!r} must be {'> 0' if positive else '>= 0'}")
    return value


def _boolean(path: Path, row: int, column: str, text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise _fail(path, row, f"{column} {text!r} must be true or false") from None


def _version_key(path: Path, row: int, version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise _fail(path, row, f"version {version!r} is not dotted integers like 2026.1") from None


def _check_cost_row(path: Path, rec: dict[str, str | int]) -> None:
    """Apply every per-row rule of unit_costs.csv to one record."""
    row = int(rec["_row"])
    _version_key(path, row, str(rec["version"]))
    if rec["metric"] and rec["metric"] not in METRICS:
        raise _fail(path, row, f"metric {rec['metric']!r} is not one of {', '.join(METRICS)}")
    _number(path, row, "unit_cost_gbp", str(rec["unit_cost_gbp"]))
    _check_price_year(path, row, "price_year", str(rec["price_year"]))
    if not rec["source"]:
        raise _fail(path, row, "source is empty (every cost must carry its source)")
    _boolean(path, row, "sourced", str(rec["sourced"]))


def _read_unit_costs(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, UNIT_COST_COLUMNS)
    if frame.empty:
        raise _fail(path, None, "no unit-cost rows")
    for rec in frame.to_dict("records"):
        _check_cost_row(path, rec)
    return frame


def _choose_version(path: Path, frame: pd.DataFrame, version: str | None) -> str:
    versions = {
        v: _version_key(path, r, v) for v, r in zip(frame["version"], frame["_row"], strict=True)
    }
    if version is None:
        return max(versions, key=versions.__getitem__)
    if version not in versions:
        raise _fail(path, None, f"version {version!r} not found (have {', '.join(versions)})")
    return version


def _metric_rows(path: Path, frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """The one row pricing each metric in ``version``, in `METRICS` order."""
    chosen = frame[(frame["version"] == version) & (frame["metric"] != "")]
    for metric in METRICS:
        rows = chosen.loc[chosen["metric"] == metric, "_row"].tolist()
        if len(rows) > 1:
            rule = f"metric {metric!r} has {len(rows)} rows in version {version} (rows {rows}); one allowed"
            raise _fail(path, rows[1], rule)
        if not rows:
            raise _fail(path, None, f"metric {metric!r} has no row in version {version}")
    return chosen.set_index("metric").loc[list(METRICS)].reset_index()


def _read_index(path: Path) -> dict[str, tuple[float, str, bool]]:
    """price_year -> (index_value, source, verified)."""
    frame = _read_csv(path, PRICE_INDEX_COLUMNS)
    index: dict[str, tuple[float, str, bool]] = {}
    for rec in frame.to_dict("records"):
        row, year = int(rec["_row"]), str(rec["price_year"])
        _check_price_year(path, row, "price_year", year)
        if year in index:
            raise _fail(path, row, f"price_year {year} appears twice")
        value = _number(path, row, "index_value", str(rec["index_value"]), positive=True)
        if not rec["source"]:
            raise _fail(path, row, "source is empty (the index must carry its source)")
        index[year] = (value, str(rec["source"]), _boolean(path, row, "verified", rec["verified"]))
    return index


def _mixing_message(rows: pd.DataFrame, price_year: str) -> str:
    other = rows[rows["price_year"] != price_year]
    listed = "; ".join(
        f"{m} in {y}" for m, y in zip(other["metric"], other["price_year"], strict=True)
    )
    return (
        f"target price year is {price_year} but {listed}: mixing price years needs an index "
        "table (price_index.csv); refusing to mix"
    )


def _factors(
    rows: pd.DataFrame, price_year: str, index_path: Path | None
) -> tuple[list[float], str | None, bool]:
    """Inflation factor per row, the used index rows' source(s), whether all are verified."""
    years = set(rows["price_year"])
    if years == {price_year}:
        return [1.0] * len(rows), None, False
    if index_path is None or not Path(index_path).exists():
        where = f" (no file at {index_path})" if index_path is not None else ""
        raise CostError(_mixing_message(rows, price_year) + where)
    index = _read_index(Path(index_path))
    used = sorted(years | {price_year})
    for year in used:
        if year not in index:
            raise _fail(Path(index_path), None, f"price year {year} is needed but not in the index")
    target = index[price_year][0]
    factors = [target / index[year][0] for year in rows["price_year"]]
    sources = "; ".join(dict.fromkeys(index[y][1] for y in used))
    return factors, sources, all(index[y][2] for y in used)


def load_unit_costs(
    costs_path: Path, price_year: str, index_path: Path | None, version: str | None = None
) -> UnitCosts:
    """Load one version of the unit costs (default: the highest) at ``price_year``.

    Costs not already in ``price_year`` are inflated with ``index_path``; if any needs inflating
    and there is no index file, raise `CostError` rather than mix price years.
    """
    costs_path = Path(costs_path)
    if not _PRICE_YEAR.match(price_year):
        raise CostError(f"target price year {price_year!r} is not a financial year like 2018/19")
    frame = _read_unit_costs(costs_path)
    version = _choose_version(costs_path, frame, version)
    rows = _metric_rows(costs_path, frame, version)
    factors, index_source, index_verified = _factors(rows, price_year, index_path)
    cost = rows["unit_cost_gbp"].astype(float)
    table = pd.DataFrame(
        {
            "metric": rows["metric"],
            "item": rows["item"],
            "unit_cost_gbp": cost,
            "price_year": rows["price_year"],
            "source": rows["source"],
            "sourced": [_BOOLEANS[s.lower()] for s in rows["sourced"]],
            "unit_cost_at_price_year": [
                round_pennies(c * f) for c, f in zip(cost, factors, strict=True)
            ],
            "inflation_factor": factors,
        }
    )
    flags = [
        f"{UNSOURCED_PREFIX}{m}"
        for m, s in zip(table["metric"], table["sourced"], strict=True)
        if not s
    ]
    if index_source is not None and not index_verified:
        flags.append(PRICE_INDEX_UNVERIFIED)
    return UnitCosts(table, version, price_year, index_source, index_verified, tuple(flags))


def unit_cost_table(costs: UnitCosts) -> pd.DataFrame:
    """The applied unit costs as the warehouse table `unit_costs` (the data dictionary's
    columns): the one place the costs are written down for every later stage."""
    from sim_pipeline.warehouse.dictionary import table_doc

    t = costs.table.rename(columns={"price_year": "source_price_year"})
    t["price_year"] = costs.price_year
    t["unit_cost_version"] = costs.version
    t["cost_flags"] = costs.flag_text
    return t[[c.name for c in table_doc("unit_costs").columns]]


def unit_costs_from_table(table: pd.DataFrame) -> UnitCosts:
    """The unit costs as the `unit_costs` asset stored them (the inverse of `unit_cost_table`),
    so costing reads the table it depends on, not the reference file again. The table keeps
    no index fields: ``index_source`` is None and its caveat, if any, is in the flags."""
    if table.empty:
        raise CostError("the unit_costs table is empty: materialise unit_costs first")
    for col in ("price_year", "unit_cost_version", "cost_flags"):
        values = table[col].fillna("").astype(str).unique()
        if len(values) != 1:
            raise CostError(f"the unit_costs table holds several values of {col}: {sorted(values)}")
    order = {m: i for i, m in enumerate(METRICS)}
    t = table.sort_values("metric", key=lambda m: m.map(order)).reset_index(drop=True)
    flags = str(t["cost_flags"].fillna("").iloc[0])
    return UnitCosts(
        t.drop(columns=["price_year", "unit_cost_version", "cost_flags"]).rename(
            columns={"source_price_year": "price_year"}
        ),
        str(t["unit_cost_version"].iloc[0]),
        str(t["price_year"].iloc[0]),
        None,
        False,
        tuple(f for f in flags.split(";") if f),
    )


def _counts(metrics: pd.DataFrame, metric: str) -> pd.Series:
    """The metric's counts as int64; whole, non-negative and present, else ValueError."""
    try:
        counts = pd.to_numeric(metrics[metric])
    except (TypeError, ValueError):
        raise ValueError(f"metric column {metric!r} must hold counts") from None
    if counts.isna().any() or ((counts % 1) != 0).any():
        raise ValueError(f"metric column {metric!r} must hold whole counts (no missing values)")
    if (counts < 0).any():
        raise ValueError(f"metric column {metric!r} has negative counts")
    return counts.astype("int64")


def person_month_costs(metrics: pd.DataFrame, costs: UnitCosts) -> pd.DataFrame:
    """Cost each person-month: count x unit cost at the target price year, per metric and total.

    Arithmetic is in integer pence (unit costs are whole pennies), so totals have no float drift.
    Rows keep the input's order and index; every row carries the price year, the unit-cost
    version and the flags (e.g. ``unsourced_assumption:police_deployments``).
    """
    missing = [c for c in ("person_key", "month", *METRICS) if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics frame lacks column(s) {', '.join(missing)}")
    out = pd.DataFrame({"person_key": metrics["person_key"], "month": metrics["month"]})
    total = pd.Series(0, index=metrics.index, dtype="int64")
    for metric, column in zip(METRICS, COST_COLUMNS, strict=True):
        unit_pence = int(Decimal(str(costs.unit_cost[metric])) * 100)
        pence = _counts(metrics, metric) * unit_pence
        out[column] = pence.astype("float64") / 100
        total = total + pence
    out["total_cost"] = total.astype("float64") / 100
    out["price_year"] = pd.Series(costs.price_year, index=out.index, dtype="string")
    out["unit_cost_version"] = pd.Series(costs.version, index=out.index, dtype="string")
    out["cost_flags"] = pd.Series(costs.flag_text, index=out.index, dtype="string")
    return out[list(OUTPUT_COLUMNS)]


def unit_cost_problems(table: pd.DataFrame) -> list[str]:
    """What makes a unit-cost table unusable (one line per problem): a metric priced never or
    twice, a cost that is not a positive number, a missing source or price year, or an
    inflation factor that is not positive. An unsourced assumption is allowed but must say so
    (``sourced`` false) and is flagged on every costed row."""
    problems: list[str] = []
    counts = table["metric"].value_counts()
    for m in METRICS:
        if counts.get(m, 0) != 1:
            problems.append(f"{m} is priced {int(counts.get(m, 0))} times (expected once)")
    for row in table.itertuples(index=False):
        for col in ("unit_cost_gbp", "unit_cost_at_price_year", "inflation_factor"):
            value = pd.to_numeric(getattr(row, col), errors="coerce")
            if pd.isna(value) or not value > 0:
                problems.append(f"{row.metric}: {col} is not a positive number")
        for col in ("source", "source_price_year", "price_year", "unit_cost_version"):
            if pd.isna(getattr(row, col)) or not str(getattr(row, col)).strip():
                problems.append(f"{row.metric}: {col} is missing")
    return problems
