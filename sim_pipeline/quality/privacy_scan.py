"""Proof for auditors that no direct identifier is stored past ingest.

Collects every NHS number, name, date of birth and full postcode from the landing files (this
module reads raw landing data, like ingest, and reports only counts and file names), then scans
what the pipeline persisted: files (a SQLite warehouse and Dagster's SQLite storage row by row,
every other file under DAGSTER_HOME as text, the Great Expectations project) with ``scan``, and
every table of a database reachable by SQLAlchemy (a PostgreSQL warehouse, Dagster's PostgreSQL
run, event-log and schedule storage named in the instance's dagster.yaml) with ``scan_database``.
Hits name the place (file or table) and the kind of identifier, never a value: nothing here
prints an identifier.

Forms found, for identifiers taken from the landing files:

- NHS numbers: ten digits as written, or in 3-3-4 groups with spaces or hyphens
  ("943 476 5919", "943-476-5919"), also inside text and glued to letters or underscores
  ("nhs9434765919", "ref_9434765919_x"); never ten digits inside a longer digit run.
- Dates of birth: year first (1985-03-12, 1985/3/12, 1985.03.12), day first and month first
  (12/03/1985, 12-03-1985, 12.03.1985, 12 03 1985, 4/11/1971; 03/12/1985 is read both ways),
  with a month name in any case (12 Mar 1985, 12-MAR-1985, 12th March, 1985, March 12, 1985)
  and as eight digits (19850312, 12031985, 03121985, 19850312T000000). The eight-digit forms
  count only as a number of their own (not glued to a letter or digit, not the fraction or whole
  part of a decimal, not the first group of a UUID): eight-digit runs occur by chance in hex
  tokens, Bloom filters and keys, and with the demo's ~6,000 dates of birth about two in ten
  thousand read as one (test_privacy_scan.py::test_eight_digit_runs_in_hex_tokens_are_not_dates).
  On a real run (10,000-person landing, six months) storage held 29,499 distinct eight-digit
  runs, 27 of them an eight-digit form of some date of birth: all provider record keys
  ("CC-01011981"), which the exclusion of landing values below removes.
- Postcodes: any case, with a space, a hyphen or nothing between the halves, inside text and
  after "_" (not glued to another letter or digit: "SE154QTX" is a different string).
- Names, in any case (lower, upper, title, mixed):
  * a single name as a whole word: a run of letters, digits and "_" that is just the name
    ("Arun", "arun", "ARUN's", "name=arun");
  * one record's given and family name together, in either order, joined directly or by up to
    three characters that are not letters, digits or a line break ("johnsmith", "JohnSmith",
    "john.smith", "john_smith", "smith,john", "SMITH JOHN", "Smith, John"), also inside a
    longer camelCase or snake_case identifier ("reportJohnSmith", "arun_smith_2019").
  A single name glued into a longer identifier-like token ("Arun_start_end", "patientArun",
  "arunsmithson") is deliberately still not a hit, although "_" and camelCase split words for
  the pair rule: the software that writes storage (Dagster, Great Expectations, this project)
  writes many snake_case and camelCase identifiers made of English words, place names and
  surnames that are also words ("Hall", "Ward", "Price", "Long", "Cross"), so a single name
  inside one is far more often our own text than a leak, and a false alarm on our own generated
  text makes the proof useless. A name leaks as a value (a whole word) or with the record's other
  name, and both are found. For the same reason a name that is a lower-case word of that
  software's own text (``software_vocabulary``: "will", "page", "mark", "grace") is not looked
  for in all lower case; "Will", "WILL", "wILL" and "will.sutton" still are. Nor is a name
  made of the letters a-f only ("Abda"): lower-case hex text (UUIDs, hashes, tokens) holds
  such words by chance ("7e3cb780-30f8-401d-abda-29a5ef069d52").

Left out at collection, as before, because they cannot be told apart from legitimate content:
names shorter than four letters, names that are words the project itself writes or values of the
landing files' non-identifying columns (a family name "Sutton" is also a borough), dates of birth
inside the data period (they collide with event dates), and eight-digit date forms that are values
of non-identifying landing columns (record keys, SNOMED CT codes). The pair rule has no vocabulary
exclusion (the two names of one record together are a leak even when each is a word).

Not looked for: two-digit years (12/03/85), postcodes glued to letters ("addrSE154QT"), landing
postcodes that are not postcode-shaped (typos such as "SW179NFX"), names with letters outside
A-Z, and deleted rows still on free pages of a SQLite file (rows are read through SQLite).

Speed: a text is scanned as its distinct values (databases) or distinct lines (files), with a
few regular-expression passes each and set lookups of normalised forms, so the cost does not
grow with the number of identifiers (no search per identifier).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib.util
import re
import sqlite3
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd

from sim_pipeline.landing.layout import Landing
from sim_pipeline.sources import SOURCE_TABLES

KINDS = ("nhs", "dob", "postcode", "name")
# Keys of landing_identifiers() besides KINDS: derived forms the scan looks up.
NAME_PAIRS = "name_pair"  # "given family" (lower case, one space) of one record
DOB_COMPACT = "dob_compact"  # eight-digit forms (YYYYMMDD, DDMMYYYY, MMDDYYYY) of the DOBs

# Dates of birth on or after this are inside the data period and collide with event dates.
DATA_PERIOD_START = (2015, 1, 1)
MIN_NAME = 4  # letters of a single name to look for
MIN_PAIR_PART = 2  # letters of each half of a given+family pair
MIN_PAIR = 5  # letters of a given+family pair together

# Ten digits of any script, in any grouping by single spaces, hyphens or full stops, not part
# of a longer digit run ("9434765919", "943 476 5919", "94 34 76 59 19", "٩٤٣٤٧٦٥٩١٩").
NHS_RE = re.compile(r"(?<!\d)(?<!\d[ .-])\d(?:[ .-]?\d){9}(?![ .-]?\d)")
YMD_RE = re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
DMY_RE = re.compile(r"(?<!\d)(\d{1,2})([-/. ])(\d{1,2})\2(\d{4})(?!\d)")
# A number of its own: not glued to a letter or digit (but "19850312T120000", ISO basic date and
# time, is read), not part of a decimal, not a UUID's first group (a hex token's eight-digit runs
# are not dates).
COMPACT_DATE_RE = re.compile(
    r"(?<![0-9A-Za-z])(?<!\d[.,])\d{8}(?![0-9A-SU-Za-z]|T(?!\d))(?![.,]\d)(?!-[0-9A-Fa-f]{4}-)"
)
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
MONTH_ABBR = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i + 1 for i, m in enumerate(MONTH_ABBR)}
# On lower-cased text: "12 mar 1985", "12-mar-1985", "12th march, 1985", "12march1985".
DAY_MONTH_RE = re.compile(
    r"(?<![0-9a-z])(\d{1,2})(?:st|nd|rd|th)?[ ./-]?" + _MONTH + r"\.?,?[ ./-]?(\d{4})(?!\d)"
)
# "march 12, 1985", "mar 12 1985".
MONTH_DAY_RE = re.compile(
    r"(?<![a-z])" + _MONTH + r"\.?[ -]?(\d{1,2})(?:st|nd|rd|th)?,?[ -]?(\d{4})(?!\d)"
)
# On upper-cased text.
POSTCODE_RE = re.compile(r"(?<![A-Z0-9])([A-Z]{1,2}[0-9][A-Z0-9]?)[ -]?([0-9][A-Z]{2})(?![A-Z0-9])")
POSTCODE_SHAPE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
WORD_RE = re.compile(r"[A-Za-z0-9_]+")  # whole tokens: "Arun" must not match "Arun_start"
# camelCase-aware words: "JohnSmith" -> John, Smith; "JOHNSmith" -> JOHN, Smith; "john" -> john.
CAMEL_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
NAME_PART_RE = re.compile(r"[A-Za-z]+")
HEX_WORD_RE = re.compile(r"[a-f]+")
PAIR_SEP = r"[^0-9A-Za-z\n]{0,3}"

CHUNK_CHARS = 8_000_000  # distinct text scanned at once; files are read in blocks of this size
DB_BATCH_ROWS = 20_000


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
            digits = _ascii_digits(re.sub(r"[\s.-]", "", v))
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
            pc = re.sub(r"[\s-]", "", v.upper())
            if POSTCODE_SHAPE.match(pc):
                found["postcode"] |= {pc[:-3] + " " + pc[-3:], pc}
    for g, f in name_fields:
        g_parts, f_parts = NAME_PART_RE.findall(g), NAME_PART_RE.findall(f)
        for w in (*_name_forms(g_parts), *_name_forms(f_parts)):
            if len(w) >= MIN_NAME:
                found["name"] |= {w, w.upper()}
        found[NAME_PAIRS] |= _pairs(g_parts, f_parts)
    found["name"] = {n for n in found["name"] if n.lower() not in vocabulary}
    found[DOB_COMPACT] = _compact_forms(found["dob"]) - other_values
    return found


def _ascii_digits(text: str) -> str:
    """Digits of any script as ASCII digits ("٩٤٣" -> "943"); other characters unchanged."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def _name_forms(parts: list[str]) -> list[str]:
    """A name field's words and, for a multi-part name, the words joined ("O'Brien" -> OBrien)."""
    return [*parts, "".join(parts)] if len(parts) > 1 else list(parts)


def _pairs(given: list[str], family: list[str]) -> set[str]:
    out = set()
    for g in _name_forms(given):
        for f in _name_forms(family):
            if min(len(g), len(f)) >= MIN_PAIR_PART and len(g) + len(f) >= MIN_PAIR:
                out.add(f"{g.lower()} {f.lower()}")
    return out


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


def _compact_forms(dobs: Iterable[str]) -> set[str]:
    """The eight-digit forms (YYYYMMDD, DDMMYYYY, MMDDYYYY) of ISO dates."""
    out = set()
    for d in dobs:
        y, m, dd = d[:4], d[5:7], d[8:10]
        out |= {y + m + dd, dd + m + y, m + dd + y}
    return out


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
    from sim_pipeline.sources.reader import _fields, _split_lines

    def fields(line: str) -> list[str]:
        try:
            return _fields(line)
        except csv.Error:
            return line.split(",")

    lines = _split_lines(text)
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


# ----------------------------------------------------------------------------- matching


def _date_key(y: str, m: str, d: str) -> str:
    return y + m.zfill(2) + d.zfill(2)


# Packages whose own text Dagster and Great Expectations write into storage: Dagster's messages,
# event and snapshot structure, GX's Data Docs templates, and our code's descriptions and log
# messages (Dagster snapshots asset descriptions). Left out of our package: modules whose words
# are data, not text we write (embedded name lists, the synthetic generator, this module's
# examples of identifier forms).
SOFTWARE_PACKAGES = (
    "dagster",
    "dagster_shared",
    "dagster_pipes",
    "dagster_postgres",
    "great_expectations",
    "sim_pipeline",
)
SOFTWARE_LEFT_OUT = {
    ("sim_pipeline", "synthetic"),
    ("sim_pipeline", "quality", "identifiers.py"),
    ("sim_pipeline", "quality", "privacy_scan.py"),
}
_SOFTWARE_SUFFIXES = {".py", ".j2", ".jinja", ".html", ".css", ".js", ".json", ".yaml", ".yml"}
_LOWER_WORD_RE = re.compile(r"(?<![A-Za-z0-9_])[a-z]{4,}(?![A-Za-z0-9_])")


@functools.lru_cache(maxsize=1)
def software_vocabulary() -> frozenset[str]:
    """Lower-case words (four letters or more) in the source and templates of the software that
    writes storage (SOFTWARE_PACKAGES): "will", "word" (CSS word-break), "page", "mark", "long".

    A landing name that is such a word ("Will", "Page") is not looked for in all lower case (our
    software writes it so everywhere); as written, in capitals or mixed case, and with the
    record's other name, it still is.
    """
    words: set[str] = set()
    for package in SOFTWARE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in Path(root).rglob("*"):
                rel = (package, *path.relative_to(root).parts)
                if any(rel[: len(p)] == p for p in SOFTWARE_LEFT_OUT):
                    continue
                if path.suffix in _SOFTWARE_SUFFIXES and path.is_file():
                    words |= set(_LOWER_WORD_RE.findall(path.read_text(errors="replace")))
    return frozenset(words)


class IdentifierMatcher:
    """Which kinds of landing identifier a text holds, in any of the forms in the module doc.

    Built once from landing_identifiers() (hand-built dicts may leave out the derived keys),
    then applied to any number of texts. Returns kinds only, never a value. Names that are
    words of ``lower_case_words`` (default: software_vocabulary()) are not looked for in all
    lower case.
    """

    def __init__(
        self,
        identifiers: Mapping[str, Iterable[str]],
        lower_case_words: Iterable[str] | None = None,
    ) -> None:
        self.nhs = frozenset(identifiers.get("nhs", ()))
        dobs = set(identifiers.get("dob", ()))
        self.dob_keys = frozenset(d.replace("-", "") for d in dobs)
        compact = identifiers.get(DOB_COMPACT)
        self.dob_compact = frozenset(_compact_forms(dobs) if compact is None else compact)
        self.postcodes = frozenset(p.replace(" ", "") for p in identifiers.get("postcode", ()))
        names = {n.lower() for n in identifiers.get("name", ())}
        words = software_vocabulary() if lower_case_words is None else set(lower_case_words)
        # a name of hex letters only ("Abda", "Bede") stands by chance in lower-case hex text
        # (UUIDs, hashes, tokens): like a software word, it is not looked for in lower case
        words = set(words) | {n for n in names if HEX_WORD_RE.fullmatch(n)}
        self.names_any_case = frozenset(names - words)
        self.names_not_lower = frozenset(names & words)
        partners: dict[str, set[str]] = {}
        joined: set[str] = set()
        for pair in identifiers.get(NAME_PAIRS, ()):
            g, f = pair.lower().split(" ")
            partners.setdefault(g, set()).add(f)
            partners.setdefault(f, set()).add(g)
            joined |= {g + f, f + g}
        self.partners = partners
        self.joined = frozenset(joined)

    def kinds(self, text: str, skip: Iterable[str] = ()) -> set[str]:
        """The kinds (of KINDS) found in ``text``, leaving out those in ``skip``."""
        skip = set(skip)
        found: set[str] = set()
        if "nhs" not in skip and self.nhs and self._has_nhs(text):
            found.add("nhs")
        if "dob" not in skip and self.dob_keys and self._has_dob(text):
            found.add("dob")
        if "postcode" not in skip and self.postcodes and self._has_postcode(text):
            found.add("postcode")
        has_names = self.names_any_case or self.names_not_lower or self.partners
        if "name" not in skip and has_names and self._has_name(text):
            found.add("name")
        return found

    def _has_nhs(self, text: str) -> bool:
        found = set(NHS_RE.findall(text))
        return not self.nhs.isdisjoint(_ascii_digits(re.sub(r"[ .-]", "", m)) for m in found)

    def _has_dob(self, text: str) -> bool:
        keys = self.dob_keys
        if not keys.isdisjoint(_date_key(y, m, d) for y, _, m, d in set(YMD_RE.findall(text))):
            return True
        for a, _, b, y in set(DMY_RE.findall(text)):
            if _date_key(y, b, a) in keys or _date_key(y, a, b) in keys:  # day or month first
                return True
        if not self.dob_compact.isdisjoint(COMPACT_DATE_RE.findall(text)):
            return True
        lower = text.lower()
        for d, mon, y in set(DAY_MONTH_RE.findall(lower)):
            if _date_key(y, str(MONTHS[mon[:3]]), d) in keys:
                return True
        for mon, d, y in set(MONTH_DAY_RE.findall(lower)):
            if _date_key(y, str(MONTHS[mon[:3]]), d) in keys:
                return True
        return False

    def _has_postcode(self, text: str) -> bool:
        found = set(POSTCODE_RE.findall(text.upper()))
        return not self.postcodes.isdisjoint(a + b for a, b in found)

    def _has_name(self, text: str) -> bool:
        tokens = set(WORD_RE.findall(text))  # distinct whole tokens, as written
        joined = "\n".join(tokens)
        lowered = set(joined.lower().split("\n"))
        if not self.names_any_case.isdisjoint(lowered):
            return True
        if self.names_not_lower and not self.names_not_lower.isdisjoint(
            t.lower()
            for t in tokens - lowered  # tokens not all lower case
        ):
            return True
        if not self.partners:
            return False
        words = set("\n".join(set(CAMEL_WORD_RE.findall(joined))).lower().split("\n"))
        if not self.joined.isdisjoint(words):
            return True
        present = words & self.partners.keys()
        pairs = {(a, b) for a in present for b in self.partners[a] & present}
        return bool(pairs) and _pair_adjacent(text, pairs)


def _pair_adjacent(text: str, pairs: set[tuple[str, str]]) -> bool:
    """Whether some (a, b) of ``pairs`` stands in ``text`` as two words, ``a`` then ``b``, apart
    by at most three characters that are not letters, digits or a line break. Word edges: not a
    letter beside it, or a camelCase boundary (lower case then upper case)."""
    alternatives = "|".join(re.escape(a) + PAIR_SEP + re.escape(b) for a, b in sorted(pairs))
    n = len(text)
    for m in re.finditer(f"(?:{alternatives})", text, re.IGNORECASE):
        s, e = m.span()
        left = s == 0 or not _letter(text[s - 1]) or (text[s].isupper() and text[s - 1].islower())
        right = e == n or not _letter(text[e]) or (text[e].isupper() and text[e - 1].islower())
        if left and right:
            return True
    return False


def _letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


# ----------------------------------------------------------------------------- reading
# Texts are scanned as their distinct values (database) or distinct lines (files), each on a
# line of its own: storage repeats the same dates, codes and log lines many times over, and an
# identifier form never spans two values or lines (the pair rule does not cross a line break).


def _value_text(v: object) -> str:
    """A database value as text; bytes are inflated when zlib-compressed (Dagster stores
    snapshots so), then decoded."""
    if isinstance(v, memoryview):
        v = v.tobytes()
    if isinstance(v, bytes | bytearray):
        data = bytes(v)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        return data.decode("utf-8", "replace")
    return "" if v is None else str(v)


def _distinct_blocks(items: Iterable[str]) -> Iterator[str]:
    """The items joined by line breaks into blocks of about CHUNK_CHARS of distinct items (an
    item repeated in a later block is scanned again there: memory stays bounded by a block)."""
    seen: set[str] = set()
    block: list[str] = []
    size = 0
    for item in items:
        if item in seen:
            continue
        seen.add(item)
        block.append(item)
        size += len(item) + 1
        if size >= CHUNK_CHARS:
            yield "\n".join(block)
            seen, block, size = set(), [], 0
    if block:
        yield "\n".join(block)


def _row_values(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    for row in rows:
        for v in row:
            yield _value_text(v)


def _sqlite_texts(path: Path) -> Iterator[str]:
    """Every value of every table of a SQLite file as text (zlib-compressed blobs inflated).

    Opening through sqlite3 also reads pages still in the -wal file.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            yield from _distinct_blocks(_row_values(con.execute(f"select * from {quoted}")))
    finally:
        con.close()


def _file_lines(path: Path) -> Iterator[str]:
    """A file's lines (latin-1, so every byte is a character), read in blocks."""
    with path.open("rb") as fh:
        rest = ""
        while block := fh.read(CHUNK_CHARS):
            lines = (rest + block.decode("latin-1")).split("\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def _file_texts(path: Path) -> Iterator[str]:
    """A file's distinct lines in blocks; a SQLite database's distinct values."""
    with path.open("rb") as fh:
        is_sqlite = fh.read(16) == b"SQLite format 3\x00"
    if is_sqlite:
        yield from _sqlite_texts(path)
    else:
        yield from _distinct_blocks(_file_lines(path))


def _sqlite_text(path: Path) -> str:
    """Every value of every table of a SQLite file as text, one per line (blobs inflated)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        parts: list[str] = []
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            parts += _row_values(con.execute(f"select * from {quoted}"))
    finally:
        con.close()
    return "\n".join(parts)


def _text_of(path: Path) -> str:
    """A file's whole text as the scan reads it: a SQLite database's values, else latin-1."""
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return _sqlite_text(path)
    return data.decode("latin-1")


def _kinds_of(texts: Iterable[str], matcher: IdentifierMatcher) -> list[str]:
    found: set[str] = set()
    for text in texts:
        found |= matcher.kinds(text, skip=found)
        if len(found) == len(KINDS):
            break
    return [k for k in KINDS if k in found]


# ----------------------------------------------------------------------------- scanning


def scan(paths: Iterable[Path], identifiers: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """{file: [kind, ...]} for persisted files holding any identifier (never the values).

    SQLite databases are read row by row (their -wal/-shm companions are covered by that and
    skipped); any other file is read as text.
    """
    matcher = IdentifierMatcher(identifiers)
    hits: dict[str, list[str]] = {}
    for path in paths:
        if path.name.endswith(("-wal", "-shm")) and path.with_name(path.name[:-4]).exists():
            continue
        kinds = _kinds_of(_file_texts(path), matcher)
        if kinds:
            hits[str(path)] = kinds
    return hits


def scan_database(
    url: str, identifiers: Mapping[str, set[str]], *, label: str | None = None
) -> dict[str, list[str]]:
    """{"table <name>": [kind, ...]} for every table of any SQLAlchemy database holding an
    identifier (PostgreSQL: every schema but the system ones, as "table <schema>.<name>" outside
    the default schema). Every column of every row is read as text, bytes inflated when
    zlib-compressed. With ``label`` the keys read "<label>: table <name>". Never the values.
    """
    import sqlalchemy as sa

    matcher = IdentifierMatcher(identifiers)
    hits: dict[str, list[str]] = {}
    engine = sa.create_engine(url, hide_parameters=True)
    try:
        inspector = sa.inspect(engine)
        default = inspector.default_schema_name
        schemas = [
            s
            for s in inspector.get_schema_names()
            if s != "information_schema" and not s.startswith("pg_")
        ]
        quote_id = engine.dialect.identifier_preparer.quote
        for schema in schemas:
            for table in sorted(inspector.get_table_names(schema=schema)):
                name = table if schema == default else f"{schema}.{table}"
                qualified = (
                    quote_id(table)
                    if schema == default
                    else f"{quote_id(schema)}.{quote_id(table)}"
                )
                with engine.connect() as conn:
                    result = conn.execution_options(
                        stream_results=True, yield_per=DB_BATCH_ROWS
                    ).execute(sa.text(f"SELECT * FROM {qualified}"))
                    kinds = _kinds_of(_distinct_blocks(_row_values(result)), matcher)
                    result.close()
                if kinds:
                    hits[f"{label}: table {name}" if label else f"table {name}"] = kinds
    finally:
        engine.dispose()
    return hits


def scan_warehouse_tables(
    url: str, identifiers: Mapping[str, set[str]], workdir: Path | None = None
) -> dict[str, list[str]]:
    """Every warehouse table of a server database, scanned (scan_database; ``workdir`` is no
    longer used and kept for callers)."""
    return scan_database(url, identifiers)


def _instance_config(dagster_home: Path) -> Mapping[str, Any]:
    import yaml

    path = Path(dagster_home) / "dagster.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else None
    return config if isinstance(config, Mapping) else {}


def dagster_storage_urls(dagster_home: Path) -> list[str]:
    """SQLAlchemy URLs of the PostgreSQL databases the instance in ``dagster_home`` stores runs,
    event logs and schedules in (its dagster.yaml: ``storage: postgres:`` or the separate
    ``run_storage`` / ``event_log_storage`` / ``schedule_storage`` of dagster-postgres;
    ``postgres_url`` or ``postgres_db``), with ``env:`` values read from the environment. Empty
    for the default SQLite (file) storage."""
    config = _instance_config(dagster_home)
    configs: list[Mapping[str, Any]] = []
    storage = config.get("storage") or {}
    if isinstance(storage, Mapping) and isinstance(storage.get("postgres"), Mapping):
        configs.append(storage["postgres"])
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        part = config.get(key) or {}
        if isinstance(part, Mapping) and "postgres" in str(part.get("module", "")):
            configs.append(part.get("config") or {})
    urls: list[str] = []
    for c in configs:
        url = _pg_url(c)
        if url and url not in urls:
            urls.append(url)
    return urls


def dagster_storage_dirs(dagster_home: Path) -> list[Path]:
    """Folders outside ``dagster_home`` that its dagster.yaml points storage at (every
    ``base_dir``: SQLite storage, local artifacts, compute logs), ``env:`` values resolved."""
    home = Path(dagster_home).resolve()
    dirs: list[Path] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k == "base_dir" and _env_value(v):
                    d = Path(str(_env_value(v))).resolve()
                    if d != home and home not in d.parents and d not in dirs:
                        dirs.append(d)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(_instance_config(dagster_home))
    return dirs


def _env_value(v: Any) -> Any:
    import os

    if isinstance(v, Mapping) and set(v) == {"env"}:
        return os.environ.get(str(v["env"]), "")
    return v


def _pg_url(config: Mapping[str, Any]) -> str | None:
    """As dagster_postgres.utils.pg_url_from_config, with ``env:`` values resolved (and "/" in
    a user name or password escaped)."""
    if config.get("postgres_url"):
        return str(_env_value(config["postgres_url"]))
    db = config.get("postgres_db")
    if not isinstance(db, Mapping):
        return None
    v = {k: _env_value(x) for k, x in db.items()}
    userinfo = quote(str(v.get("username", "")), safe="")
    if v.get("password"):
        userinfo += ":" + quote(str(v["password"]), safe="")
    scheme = v.get("scheme") or "postgresql"
    url = f"{scheme}://{userinfo}@{v.get('hostname', '')}:{v.get('port') or 5432}/{v.get('db_name', '')}"
    if v.get("params"):
        url += "?" + urlencode(dict(v["params"]), quote_via=quote)
    return url


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
