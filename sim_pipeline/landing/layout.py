"""The landing folder's layout, owned here: ``<landing>/<source>/<YYYY-MM>/<table>.csv``.

`Landing` is the one object that knows where a provider's drop of a table for a month lives,
its label (the path relative to the landing folder, as the ledger, the quarantine and the
coverage tables name it), which drops the contracts expect, which are present, which files no
contract expects, and each present drop's content hash as staging will see it. Staging, the
ledger reconciliation, drop coverage, the landing sensor, the privacy scan and the CLI read the
folder through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim_pipeline.sources import SOURCE_TABLES, SourceTable
from sim_pipeline.sources.drop_files import drop_sha256

INVENTORY_COLUMNS = ["file", "source", "table_name", "month", "landing_sha256"]


@dataclass(frozen=True)
class Drop:
    """One provider's file of one table for one month (present or not)."""

    source: str
    month: str  # YYYY-MM
    table: SourceTable
    label: str  # <source>/<month>/<file>: the path relative to the landing folder
    path: Path

    def present(self) -> bool:
        """The drop is there (a dangling link counts: staging rejects it with its rule)."""
        return (self.path.exists() or self.path.is_symlink()) and not self.path.is_dir()


@dataclass(frozen=True)
class Landing:
    """The landing folder."""

    root: Path

    @staticmethod
    def label(source: str, month: str, table: SourceTable) -> str:
        return f"{source}/{month}/{table.file_name()}"

    @staticmethod
    def parse(label: str) -> tuple[str, str, str]:
        """(source, month, file name) of a label."""
        source, month, file_name = label.split("/")
        return source, month, file_name

    def drop(self, source: str, month: str, table: SourceTable) -> Drop:
        label = self.label(source, month, table)
        return Drop(source, month, table, label, self.root / label)

    def expected(
        self, months: Iterable[str], tables: Iterable[SourceTable] = SOURCE_TABLES
    ) -> Iterator[Drop]:
        """Every drop the contracts expect: each table x each provider that sends it x each
        month, table by table."""
        months = list(months)
        for table in tables:
            for source in table.providers:
                for month in months:
                    yield self.drop(source, month, table)

    def present(
        self, months: Iterable[str], tables: Iterable[SourceTable] = SOURCE_TABLES
    ) -> list[Drop]:
        """The expected drops that are in the folder."""
        return [d for d in self.expected(months, tables) if d.present()]

    def sha256(self, drop: Drop) -> str:
        """The drop's content hash as staging sees it (`drop_sha256`: a FIFO or a link out of
        the landing folder is never opened)."""
        return drop_sha256(drop.path, self.root)

    def inventory(self, months: Iterable[str]) -> pd.DataFrame:
        """Every present drop of ``months`` with its content hash (INVENTORY_COLUMNS)."""
        rows = [
            (d.label, d.source, d.table.table, d.month, self.sha256(d))
            for d in self.present(months)
        ]
        return pd.DataFrame(rows, columns=INVENTORY_COLUMNS)

    def csv_files(self, table: SourceTable | None = None) -> list[Path]:
        """Every CSV under ``<source>/<month>/`` (or every file of ``table``), sorted."""
        pattern = f"*/*/{table.file_name()}" if table is not None else "*/*/*.csv"
        return sorted(self.root.glob(pattern))

    def unexpected(self, months: Iterable[str]) -> list[tuple[str, str, str, Path]]:
        """CSV files under ``<source>/<month>/`` of ``months`` that no contract expects
        (nobody ingests them): (source, month, label, path)."""
        months = list(months)
        expected = {d.label for d in self.expected(months)}
        out = []
        for path in self.csv_files():
            rel = path.relative_to(self.root)
            if rel.parts[1] in months and rel.as_posix() not in expected:
                out.append((rel.parts[0], rel.parts[1], rel.as_posix(), path))
        return out

    def months(self) -> list[str]:
        """Every month folder present under any provider, sorted."""
        return sorted({p.name for p in self.root.glob("*/*") if p.is_dir()})

    def has_drops(self) -> bool:
        return any(self.root.glob("*/*/*.csv"))
