"""The shape of the code base, measured: the figures the redesign (issue 18) is judged by.

``sim-pipeline bench house`` prints and writes (JSON) what a redesign must report before and
after: every module of ``sim_pipeline/`` with its line count, the modules that name each
warehouse table in a string literal (where a table is declared, described or listed), the
time to import the code location (``sim_pipeline.definitions``, in fresh interpreters) and,
given a warehouse, every table's digest (``warehouse.table_digests``: rows and a SHA-256 of
its sorted rows) so that "behaviour unchanged" is a comparison of two files.
"""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]

IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import sim_pipeline.definitions; "
    "print(time.perf_counter() - t)"
)


def module_lines(root: Path = PACKAGE) -> dict[str, int]:
    """{module path relative to the package's parent: line count} for every ``.py`` file."""
    return {
        p.relative_to(root.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted(root.rglob("*.py"))
    }


def string_literals(path: Path) -> set[str]:
    """Every string constant in a module (docstrings and f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def table_mentions(tables: list[str], root: Path = PACKAGE) -> dict[str, list[str]]:
    """{table: modules holding a string literal equal to the table's name} (a declaration, a
    description or a list the name sits in; prose that merely mentions it is not counted)."""
    literals = {
        p.relative_to(root.parent).as_posix(): string_literals(p)
        for p in sorted(root.rglob("*.py"))
    }
    return {t: [m for m, lits in literals.items() if t in lits] for t in tables}


def import_seconds(repeats: int = 3) -> list[float]:
    """Seconds to import ``sim_pipeline.definitions`` in ``repeats`` fresh interpreters."""
    out = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
        )
        out.append(round(float(proc.stdout.strip().splitlines()[-1]), 3))
    return out


def house_report(warehouse_url: str | None, repeats: int = 3) -> dict:
    """The figures as one JSON-able dict (table digests only when ``warehouse_url`` is given)."""
    from sim_pipeline.warehouse.dictionary import all_tables

    lines = module_lines()
    tables = sorted(d.name for d in all_tables())
    mentions = table_mentions(tables)
    report: dict = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "modules": len(lines),
        "lines": sum(lines.values()),
        "modules_over_400_lines": {m: n for m, n in lines.items() if n > 400},
        "module_lines": lines,
        "table_named_in_modules": {t: len(ms) for t, ms in mentions.items()},
        "table_modules": mentions,
        "definitions_import_seconds": import_seconds(repeats) if repeats else [],
    }
    if warehouse_url:
        from sim_pipeline.warehouse import table_digests

        report["warehouse_url"] = warehouse_url.split("@")[-1]  # no credentials in the file
        report["table_digests"] = table_digests(warehouse_url)
    return report


def summary_lines(report: dict) -> list[str]:
    """The report in a few lines for a terminal."""
    imp = report["definitions_import_seconds"]
    named = report["table_named_in_modules"]
    out = [
        f"modules: {report['modules']} ({report['lines']:,} lines); over 400 lines: "
        + ", ".join(f"{m} {n}" for m, n in report["modules_over_400_lines"].items()),
        f"tables named in how many modules: median {statistics.median(named.values()):g}, "
        f"most {max(named.values())} ({max(named, key=named.get)})",
    ]
    if imp:
        out.append(f"import sim_pipeline.definitions: median {statistics.median(imp):.2f} s {imp}")
    if "table_digests" in report:
        out.append(f"table digests: {len(report['table_digests'])} tables")
    return out
