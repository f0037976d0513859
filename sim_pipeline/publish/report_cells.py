"""How the report shows released cells: the labels of its populations and methods, a cell as a
number, as display text ('*' kept, '' as an en dash), as a signed percentage, a share, an effect
on its scale (relative change or risk difference) or an interval; a released row looked up by
its values; and the plain values the page's templates draw (`Table`, `Figure`). Nothing here
writes HTML: the templates do, with Jinja2's autoescaping (`publish.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from sim_pipeline.publish.disclosure import SUPPRESSED

REPORT_POPULATIONS = ("per_protocol", "itt")
POPULATION_LABEL = {"itt": "intention to treat", "per_protocol": "per-protocol"}
METHOD_LABEL = {
    "naive_before_after": "naive before/after",
    "difference_in_differences": "difference-in-differences",
}


def num(cell: object) -> float | None:
    """A released cell as a number (None for '', '*' or text)."""
    try:
        return float(str(cell))
    except ValueError:
        return None


def shown(cell: object) -> str:
    """A released cell for display: '*' and '' kept as such ('' shown as an en dash)."""
    text = "" if cell is None else str(cell)
    return text if text else "\u2013"


def pct(cell: object, dp: int = 1) -> str:
    """A released relative change (-0.300) as a signed percentage (-30.0%)."""
    text = "" if cell is None else str(cell)
    v = num(text)
    if v is None:
        return text or "\u2013"
    return f"{100 * v:+.{dp}f}%"


def share(cell: object) -> str:
    """A released share (0.650) as a percentage (65%)."""
    v = num(cell)
    return f"{100 * v:.0f}%" if v is not None else shown(cell)


def effect(cell: object, scale: str) -> str:
    """An estimate on its scale: relative change as %, risk difference as percentage points."""
    if scale == "risk_difference":
        v = num(cell)
        return f"{100 * v:+.2f} pp" if v is not None else shown(cell)
    return pct(cell)


def interval(low: object, high: object, scale: str) -> str:
    if str(low) == SUPPRESSED or str(high) == SUPPRESSED:
        return SUPPRESSED
    if num(low) is None or num(high) is None:
        return "\u2013"
    return f"{effect(low, scale)} to {effect(high, scale)}"


@dataclass(frozen=True)
class Cell:
    """One table cell: its display text and its CSS classes ('num' right-aligns)."""

    text: str
    classes: str = ""


@dataclass(frozen=True)
class Table:
    """A table as the templates draw it: header texts and rows of cells (no rows: the page
    says none were released)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()


@dataclass(frozen=True)
class Figure:
    """A chart inlined as a PNG data URI with its alternative text, or, when there is nothing
    to draw, the note said instead."""

    src: str = ""
    alt: str = ""
    note: str = ""


@dataclass
class Section:
    """A heading with an optional introduction and the table under it."""

    heading: str
    table: Table
    intro: str = ""
    subsections: list[Section] = field(default_factory=list)


def table(df: pd.DataFrame, headers: Sequence[str], numeric: Sequence[str] = ()) -> Table:
    """``df`` (already display text) as a `Table` with ``headers``; ``numeric`` columns are
    right-aligned. A cell may carry a class via a (text, class) tuple."""
    rows = []
    for values in df.itertuples(index=False):
        cells = []
        for col, value in zip(df.columns, values, strict=True):
            text, cls = value if isinstance(value, tuple) else (value, "")
            classes = " ".join(c for c in ("num" if col in numeric else "", cls) if c)
            cells.append(Cell("" if text is None else str(text), classes))
        rows.append(tuple(cells))
    return Table(tuple(headers), tuple(rows))


def row(df: pd.DataFrame | None, **where: str) -> dict[str, str] | None:
    if df is None or df.empty:
        return None
    mask = pd.Series(True, index=df.index)
    for col, value in where.items():
        mask &= df[col] == value
    hit = df[mask]
    return None if hit.empty else {k: str(v) for k, v in hit.iloc[0].items()}
