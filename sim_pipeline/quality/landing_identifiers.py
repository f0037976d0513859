"""Collecting the identifiers of a landing: every NHS number, name, date of birth and full
postcode in the landing files (this module reads raw landing data, like ingest, and reports
only counts), in the forms `quality.identifier_forms` matches."""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from sim_pipeline.landing.layout import Landing
from sim_pipeline.quality.identifier_forms import (
    DATA_PERIOD_START,
    DOB_COMPACT,
    KINDS,
    MIN_NAME,
    MIN_PAIR,
    MIN_PAIR_PART,
    NAME_PAIRS,
    NAME_PART_RE,
    POSTCODE_SHAPE,
    WORD_RE,
    _ascii_digits,
    _compact_forms,
)
from sim_pipeline.sources import SOURCE_TABLES

# ----------------------------------------------------------------------------- collection


def landing_identifiers(landing: Path, own_vocabulary: set[str]) -> dict[str, set[str]]:
    """{kind: values} for every NHS number, name, date of birth and full postcode in landing.

    Keys: "nhs" (ten digits), "name" (single names as written and upper case, and multi-part
    names joined: "OBrien"), "dob" (ISO dates), "postcode" (upper case, with and without the
    space), and the derived "name_pair" (each record's given and family name, lower case,
    "given family") and "dob_compact" (eight-digit forms of the dates of birth).

    Left out, because they cannot be told apart from legitimate content: names shorter than
    four letters, names that are also words the project itself writes (descriptions, column
    names) or values of the landing files' non-identifying columns (a family name "Sutton" is
    also a borough, "White" an ethnicity), dates of birth inside the data period (they collide
    with event dates) and eight-digit date forms that are values of non-identifying columns.
    """
    return frame_identifiers(_table_batches(landing), own_vocabulary)


IDENTIFIER_BATCH_ROWS = 200_000  # landing rows of one table collected from at once


def _table_batches(landing: Path) -> Iterator[tuple[Any, pd.DataFrame]]:
    """Each table's landing files read and joined into frames of about
    IDENTIFIER_BATCH_ROWS rows: the same values as file by file (a column a file lacks is
    missing in its rows), in a few hundred pandas calls rather than one per column and file
    (8.7 s -> 3.3 s on the tests' 800-person landing, 1,690 files; identical identifiers)."""
    for table in SOURCE_TABLES:
        batch: list[pd.DataFrame] = []
        rows = 0
        for path in Landing(landing).csv_files(table):
            frame = _read_any(path)
            if frame.empty:  # nothing to collect (and pandas warns on empty pieces)
                continue
            batch.append(frame)
            rows += len(frame)
            if rows >= IDENTIFIER_BATCH_ROWS:
                yield table, pd.concat(batch, ignore_index=True)
                batch, rows = [], 0
        if batch:
            yield table, pd.concat(batch, ignore_index=True)


_NHS_SEPARATORS = re.compile(r"[\s.-]")
_POSTCODE_SEPARATORS = re.compile(r"[\s-]")


def frame_identifiers(
    frames: Iterable[tuple[Any, pd.DataFrame]], own_vocabulary: set[str]
) -> dict[str, set[str]]:
    """`landing_identifiers` of raw provider frames: (SourceTable, text frame) pairs (ingest
    passes the rows it is staging, to check its own output against them)."""
    found: dict[str, set[str]] = {k: set() for k in (*KINDS, NAME_PAIRS, DOB_COMPACT)}
    vocabulary = set(own_vocabulary)
    other_values: set[str] = set()
    name_fields: set[tuple[str, str]] = set()  # (given, family) of one record
    for table, df in frames:
        ids = table.identifiers
        raw = set(ids.raw_columns())

        def distinct(col: str | None, df: pd.DataFrame = df) -> set[str]:
            return set(df[col].dropna().astype(str).tolist()) if col and col in df else set()

        for col in df.columns:
            if col not in raw and col in table.columns:
                text = "\n".join(distinct(col))
                vocabulary |= set(NAME_PART_RE.findall(text.lower()))
                other_values |= set(re.findall(r"(?<![0-9])[0-9]{8}(?![0-9])", text))
        for v in distinct(ids.nhs_number):
            # ten ASCII digits as sent (the usual form): no separators to remove
            plain = v.isascii() and v.isdigit()
            digits = v if plain else _ascii_digits(_NHS_SEPARATORS.sub("", v))
            if len(digits) == 10 and digits.isascii() and digits.isdigit():
                found["nhs"].add(digits)
        given, family = ids.given_name, ids.family_name
        if given in df or family in df:
            g = df[given].fillna("").astype(str).tolist() if given in df else [""] * len(df)
            f = df[family].fillna("").astype(str).tolist() if family in df else [""] * len(df)
            name_fields |= set(zip(g, f, strict=True))
        for v in distinct(ids.birth_date):
            ymd = _parse_landing_date(v)
            if ymd and ymd < DATA_PERIOD_START:
                found["dob"].add(f"{ymd[0]:04d}-{ymd[1]:02d}-{ymd[2]:02d}")
        for v in distinct(ids.postcode):
            pc = _POSTCODE_SEPARATORS.sub("", v.upper())
            if POSTCODE_SHAPE.match(pc):
                found["postcode"].add(pc[:-3] + " " + pc[-3:])
                found["postcode"].add(pc)
    # per distinct name, not per record: a name's words and forms found once (the same sets
    # as per record, with one regex call per distinct name instead of two per record)
    forms = {
        v: _name_forms(NAME_PART_RE.findall(v)) for v in {x for pair in name_fields for x in pair}
    }
    for words in forms.values():
        found["name"] |= {u for w in words if len(w) >= MIN_NAME for u in (w, w.upper())}
    lower = {v: [(w.lower(), len(w)) for w in ws] for v, ws in forms.items()}
    found[NAME_PAIRS] |= {
        f"{g} {f}"
        for given, family in name_fields
        for g, ng in lower[given]
        for f, nf in lower[family]
        if min(ng, nf) >= MIN_PAIR_PART and ng + nf >= MIN_PAIR
    }
    found["name"] = {n for n in found["name"] if n.lower() not in vocabulary}
    found[DOB_COMPACT] = _compact_forms(found["dob"]) - other_values
    return found


def _name_forms(parts: list[str]) -> list[str]:
    """A name field's words and, for a multi-part name, the words joined ("O'Brien" -> OBrien)."""
    return [*parts, "".join(parts)] if len(parts) > 1 else list(parts)


def _parse_landing_date(v: str) -> tuple[int, int, int] | None:
    """(year, month, day) of an ISO date, or of a day-first one (UK landing files), also with a
    time after it."""
    v = re.split(r"[ T]", v.strip(), maxsplit=1)[0]
    if m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", v):
        ymd = (int(m[1]), int(m[2]), int(m[3]))
    elif m := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", v):
        ymd = (int(m[3]), int(m[2]), int(m[1]))
    else:
        return None
    return ymd if 1 <= ymd[1] <= 12 and 1 <= ymd[2] <= 31 else None


def _read_any(path: Path) -> pd.DataFrame:
    """A landing file as text, also when ingest rejects it: not UTF-8 (read as cp1252, else
    latin-1), a missing column, a bad row. Identifiers in a rejected file must be looked for
    too. A path ingest will not open (a FIFO, a link out of the landing folder) is not opened
    here either: it reads as empty."""
    if (
        not path.is_file()
        or path.is_symlink()
        and not path.resolve().is_relative_to(path.parents[2].resolve())
    ):
        return pd.DataFrame()
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if not text.strip():
        return pd.DataFrame()
    # as ingest reads: one record per physical line (a stray quote cannot hide the lines after
    # it); a line with a quote left open is split at its commas, so its values are still seen
    from sim_pipeline.sources.reader import csv_fields, split_lines

    def fields(line: str) -> list[str]:
        try:
            return csv_fields(line)
        except csv.Error:
            return line.split(",")

    lines = split_lines(text)
    header = [h.strip() for h in fields(lines[0])]
    rows = [f for f in (fields(line) for line in lines[1:] if line) if len(f) == len(header)]
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    return frame.loc[:, ~frame.columns.duplicated()]


@functools.cache
def own_vocabulary_cached() -> frozenset[str]:
    """`own_vocabulary`, computed once per process."""
    return frozenset(own_vocabulary())


def own_vocabulary() -> set[str]:
    """Words the project itself writes into storage (descriptions, column names)."""
    from sim_pipeline.warehouse.dictionary import render_markdown

    return {w.lower() for w in WORD_RE.findall(render_markdown())}
