"""Proof for auditors that no direct identifier is stored past ingest.

Collects every NHS number, name, date of birth and full postcode from the landing files (this
module reads raw landing data, like ingest, and reports only counts and file names), then scans
what the pipeline persisted: the warehouse (the SQLite file's bytes, or every table's text for a
server database) and everything under DAGSTER_HOME (run and event storage, compute logs).
"""

from __future__ import annotations

import contextlib
import io
import re
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sim_pipeline.sources import SOURCE_TABLES

NHS_RE = re.compile(r"(?<!\d)\d{10}(?!\d)")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")
WORD_RE = re.compile(r"[A-Za-z0-9_]+")  # whole tokens: "Arun" must not match "Arun_start"
NAME_PART_RE = re.compile(r"[A-Za-z]+")


def landing_identifiers(landing: Path, own_vocabulary: set[str]) -> dict[str, set[str]]:
    """{kind: values} for every NHS number, name, date of birth and full postcode in landing.

    Left out, because they cannot be told apart from legitimate content: names shorter than
    four letters, names that are also words the project itself writes (descriptions, column
    names) or values of the landing files' non-identifying columns (a family name "Sutton" is
    also a borough, "White" an ethnicity), and dates of birth inside the data period (they
    collide with event dates).
    """
    found: dict[str, set[str]] = {"nhs": set(), "name": set(), "dob": set(), "postcode": set()}
    vocabulary = set(own_vocabulary)
    for table in SOURCE_TABLES:
        ids = table.identifiers
        raw = set(ids.raw_columns())
        for path in sorted(landing.glob(f"*/*/{table.file_name()}")):
            df = _read_any(path)
            for col in df.columns:
                if col not in raw:
                    for v in df[col].unique():
                        vocabulary |= {w.lower() for w in NAME_PART_RE.findall(v)}
            if ids.nhs_number in df:
                found["nhs"] |= {v.replace(" ", "") for v in df[ids.nhs_number] if v}
            for col in (ids.given_name, ids.family_name):
                if col in df:
                    for v in df[col]:
                        for w in NAME_PART_RE.findall(v):
                            if len(w) >= 4:
                                found["name"] |= {w, w.upper()}
            if ids.birth_date in df:
                found["dob"] |= {v for v in df[ids.birth_date] if v and v < "2015-01-01"}
            if ids.postcode in df:
                for v in df[ids.postcode]:
                    if v:
                        pc = v.upper().replace(" ", "")
                        found["postcode"] |= {pc[:-3] + " " + pc[-3:], pc}
    found["name"] = {n for n in found["name"] if n.lower() not in vocabulary}
    return found


def _read_any(path: Path) -> pd.DataFrame:
    """A landing file as text, also when ingest rejects it: not UTF-8 (read as cp1252, else
    latin-1), a missing column, a bad row. Identifiers in a rejected file must be looked for
    too."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if not text.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="skip")


def _sqlite_text(path: Path) -> str:
    """Every value of every table of a SQLite file as text (zlib-compressed blobs inflated).

    Opening through sqlite3 also reads pages still in the -wal file.
    """
    parts: list[str] = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                for v in row:
                    if isinstance(v, bytes):
                        with contextlib.suppress(zlib.error):
                            v = zlib.decompress(v)
                        v = v.decode("utf-8", "replace")
                    parts.append(str(v))
    finally:
        con.close()
    return "\n".join(parts)


def _text_of(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return _sqlite_text(path)
    return data.decode("latin-1")


def scan(paths: Iterable[Path], identifiers: dict[str, set[str]]) -> dict[str, list[str]]:
    """{file: [kind, ...]} for persisted files holding any identifier (never the values).

    SQLite databases are read row by row (their -wal/-shm companions are covered by that and
    skipped); any other file is read as text.
    """
    hits: dict[str, list[str]] = {}
    for path in paths:
        if path.name.endswith(("-wal", "-shm")) and path.with_name(path.name[:-4]).exists():
            continue
        text = _text_of(path)
        kinds = []
        if set(NHS_RE.findall(text)) & identifiers["nhs"]:
            kinds.append("nhs")
        if set(DATE_RE.findall(text)) & identifiers["dob"]:
            kinds.append("dob")
        if set(POSTCODE_RE.findall(text.upper())) & identifiers["postcode"]:
            kinds.append("postcode")
        if set(WORD_RE.findall(text)) & identifiers["name"]:
            kinds.append("name")
        if kinds:
            hits[str(path)] = kinds
    return hits


def own_vocabulary() -> set[str]:
    """Words the project itself writes into storage (descriptions, column names)."""
    from sim_pipeline.warehouse.dictionary import render_markdown

    return {w.lower() for w in WORD_RE.findall(render_markdown())}


def scan_warehouse_tables(
    url: str, identifiers: dict[str, set[str]], workdir: Path
) -> dict[str, list[str]]:
    """Dump every warehouse table as text and scan it (for server databases)."""
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    hits: dict[str, list[str]] = {}
    try:
        for table in wh.tables():
            dump = workdir / f"{table}.txt"
            wh.read(table).to_csv(dump, index=False)
            for kinds in scan([dump], identifiers).values():
                hits[f"table {table}"] = kinds
            dump.unlink()
    finally:
        wh.dispose()
    return hits


def files_under(*roots: Path) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.exists():
            out += [p for p in sorted(root.rglob("*")) if p.is_file()]
    return out


def generated_quality_files(quality_dir: Path) -> list[Path]:
    """The files the Great Expectations project writes from our data (suites, validation
    results, Data Docs pages), without the fonts, scripts and stylesheets GX ships as its own
    static assets (binary font files match short names by chance)."""
    return [
        p
        for p in files_under(Path(quality_dir))
        if "static" not in p.relative_to(quality_dir).parts
    ]
