"""The release on disk: writing its files atomically with their README, and the auditor's scan
of the published folder (no count from 1 to 7 or not rounded to 5, no identifier-like column).
The tables themselves are built in `publish.release`."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from sim_pipeline.publish.disclosure import (
    ROUND_TO,
    SMALL_MAX,
    SUPPRESSED,
    check_identifiers,
    is_count_column,
    is_count_statistic,
    is_identifier_column,
)
from sim_pipeline.publish.release_catalogue import (
    CAVEATS,
    README_NAME,
    RELEASE_FILES,
    WITHHELD_STATISTICS,
)
from sim_pipeline.publish.release_costs import explain_flag


def write_text_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` through a temporary file in the same folder and a rename (readers see the
    old file or the new one, never half of one)."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n", na_rep="")


def release_readme(release: Mapping[str, pd.DataFrame]) -> str:
    """README.txt of the release: the files and their columns, the disclosure rule, what was
    withheld and the caveats."""
    price_year = unit_cost_version = ""
    flags: list[str] = []
    costs = release.get("unit_costs.csv")
    if costs is not None and not costs.empty:
        price_year = ";".join(sorted({v for v in costs["price_year"] if v}))
        unit_cost_version = ";".join(sorted({v for v in costs["unit_cost_version"] if v}))
        flags = sorted({f for v in costs["cost_flags"] for f in str(v).split(";") if f})
    lines = [
        "SIM evaluation: published tables",
        "================================",
        "",
        "Aggregate tables only: no row describes one person and no person key, register id or",
        "other identifier appears. Every value is text: '*' = suppressed, empty = not applicable.",
        "",
        f"Costs: GBP at price year {price_year or 'not stated'}, unit costs version "
        f"{unit_cost_version or 'not stated'}.",
        "",
        "Disclosure control (NHS Digital HES/ECDS rule, September 2018)",
        "--------------------------------------------------------------",
        f"* Counts of 1-{SMALL_MAX} are shown as '{SUPPRESSED}'; every other count is rounded to "
        f"the nearest {ROUND_TO} (0 stays 0).",
        f"* Means, estimates, confidence limits, rates, percentages and SMDs based on 1-{SMALL_MAX}"
        f" people are shown as '{SUPPRESSED}'.",
        f"* Link rates are also suppressed when the linked or unlinked records number 1-{SMALL_MAX},",
        f"  and risks (deaths) when 1-{SMALL_MAX} people had the event (rate x n gives the count).",
        "* Withheld (individual-level values, never released):",
        *[f"    - {k}: {v}" for k, v in WITHHELD_STATISTICS.items()],
        "",
        "Files",
        "-----",
    ]
    for name in sorted(release):
        df = release[name]
        lines += [
            f"{name} ({len(df)} rows): {RELEASE_FILES.get(name, '')}",
            f"    columns: {', '.join(map(str, df.columns))}",
        ]
    missing = [n for n in RELEASE_FILES if n not in release]
    for name in missing:
        lines.append(f"{name}: not produced (its warehouse table is missing or empty)")
    lines += ["", "Caveats", "-------", *[f"* {c}" for c in CAVEATS]]
    lines += [f"* Cost caveat ({f}): {explain_flag(f)}." for f in flags]
    return "\n".join(lines) + "\n"


def write_release(release: Mapping[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Write each table as ``out_dir/<name>`` and ``README.txt`` (atomically, byte-identical for
    the same release), remove ``*.csv`` files in ``out_dir`` that are not in the release, and
    return the paths written (CSVs in name order, then the README)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in release.items():
        if not name.endswith(".csv") or Path(name).name != name:
            raise ValueError(f"release file name {name!r} must be a plain *.csv name")
        check_identifiers(name, df)
    written = []
    for name in sorted(release):
        path = out_dir / name
        write_text_atomic(path, _csv_text(release[name]))
        written.append(path)
    for stale in sorted(out_dir.glob("*.csv")):
        if stale.name not in release:
            stale.unlink()
    readme = out_dir / README_NAME
    write_text_atomic(readme, release_readme(release))
    return [*written, readme]


def _count_problem(cell: str) -> str | None:
    """Why a count cell breaks the rule (None if it is '', '*', 0 or a multiple of 5 above 7)."""
    text = cell.strip()
    if text in ("", SUPPRESSED):
        return None
    try:
        value = float(text)
    except ValueError:
        return "is not a number or '*'"
    if value != int(value):
        return "is not a whole number"
    v = int(value)
    if v < 0:
        return "is negative"
    if 1 <= v <= SMALL_MAX:
        return f"is a count of 1-{SMALL_MAX} (must be shown as '{SUPPRESSED}')"
    if v % ROUND_TO:
        return f"is not rounded to a multiple of {ROUND_TO}"
    return None


def scan_release(out_dir: Path) -> list[str]:
    """The auditor's scan of every ``*.csv`` in ``out_dir``; [] means clean.

    Count cells are decided by name (`is_count_column`: n, n_*, *_n, count(s), *_count, records,
    linked, persons, people, person_months, *pairs) and, in long-form tables with a
    ``statistic`` column, the ``value`` cell of a count statistic (n_*, person_months). Each
    must be empty, ``*``, 0 or a multiple of 5 above 7. A column whose name looks like an
    identifier (`is_identifier_column`) is a finding too. Findings name file, row (1 = first
    data row) and column.
    """
    out_dir = Path(out_dir)
    files = sorted(out_dir.glob("*.csv")) if out_dir.is_dir() else []
    if not files:
        return [f"{out_dir}: no release files found"]
    findings: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            for col in header:
                if is_identifier_column(col):
                    findings.append(
                        f"{path.name}: column {col!r} looks like an individual identifier"
                    )
            counts = [c for c in header if is_count_column(c)]
            long_form = "statistic" in header and "value" in header
            for i, row in enumerate(reader, start=1):
                cells = [(c, row.get(c) or "") for c in counts]
                if long_form and is_count_statistic(row.get("statistic") or ""):
                    cells.append(("value", row.get("value") or ""))
                for col, cell in cells:
                    problem = _count_problem(cell)
                    if problem:
                        findings.append(f"{path.name} row {i} column {col!r}: {cell!r} {problem}")
    return findings
