"""Read a provider drop and split it into contract-clean rows and quarantined rows.

Row-level problems (a bad date, an invalid NHS number, a repeated record) quarantine that row
with the rule and a fixed reason text; file-level problems (not UTF-8, empty, missing columns,
truncated, a whole column failing the contract) raise `DropFileError` naming the file, with a
stable rule code (`FILE_RULES`). Staging then rejects the file as a whole: every data line of it
is quarantined under that rule (`data_line_numbers` finds the lines). Identifying values never
reach a message.

This module owns the rule codes (`FILE_RULES`, `LINE_RULES`), `DropFileError` and reading a
drop's text into records (`read_drop`, `data_line_numbers`); the contract and record-key rules
are applied in `sources.validation`, and which drop paths may be opened is decided in
`sources.drop_files`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from sim_pipeline.sources.base import SourceTable

QUARANTINE_COLUMNS = ["line_number", "column_name", "rule", "reason"]

# Rule codes of a whole-file rejection (the quarantine `rule` of every line of the file and the
# ledger's `rejection_rule`). They never change meaning.
FILE_RULES = {
    "file_empty": "the file is empty (not even a header row)",
    "file_encoding": "the file is not valid UTF-8 text",
    "file_unparseable": "the header or a row cannot be parsed as CSV",
    "missing_column": "a column the contract requires is absent from the header",
    "file_truncated": "the last line is incomplete and has no newline (the export was cut short)",
    "whole_column_contract": "a whole column fails the contract (not individual rows)",
    "duplicate_column": "a column is named more than once in the header",
    "not_regular_file": "the drop path is not a regular file (a FIFO, device or folder)",
    "outside_landing": "the drop path is a link to a file outside the landing folder",
    "file_too_large": "the file is larger than the configured cap (SIM_MAX_DROP_BYTES)",
    # a tokenised drop (`ingest.tokenised`): its manifest beside it
    "manifest_invalid": "a tokenised drop's manifest cannot be read as a small JSON object",
    "manifest_mismatch": "a tokenised drop's manifest is for another drop, place or content",
    "contract_version": "a tokenised drop was made under a contract version ingest does not read",
}


class DropFileError(Exception):
    """A landing file that cannot be read at all. The message names the file and the problem,
    never a value; ``rule`` is its `FILE_RULES` code and ``column`` the column(s) concerned."""

    def __init__(
        self, file: str, problem: str, rule: str = "file_unparseable", column: str | None = None
    ) -> None:
        if rule not in FILE_RULES:
            raise ValueError(f"unknown file rule {rule!r}")
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem
        self.rule = rule
        self.column = column


@dataclass
class RawDrop:
    frame: pd.DataFrame  # all data rows as text; index = line number in the file
    rows_read: int
    sha256: str
    bad_shape: pd.DataFrame  # lines that are not one well-formed record (quarantine rows)


# Line-level rules: a physical line that is not one well-formed record is quarantined under one
# of these (the ledger's rows_quarantined counts it). They never change meaning.
LINE_RULES = {
    "field_count": "the line does not have as many fields as the header",
    "unbalanced_quote": "a quoted field is not closed on its own line (a stray quote, or a "
    "record spread over several lines): the line is not read as a record",
    "control_character": "the line holds a control character (NUL, escape ...)",
}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# C0 controls other than tab, and DEL: never part of a provider's text
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def split_lines(text: str) -> list[str]:
    """Physical lines (CRLF, CR or LF); a final line break does not start an empty line."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def csv_fields(line: str) -> list[str]:
    """The fields of one physical line; `csv.Error` when a quote is left open on it."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=True))


def _bad_line(number: int, rule: str, reason: str) -> dict[str, object]:
    return {"line_number": number, "column_name": None, "rule": rule, "reason": reason}


def check_header(line: str, expected: list[str], label: str) -> list[str]:
    """The header row's column names, or `DropFileError` when it cannot be parsed, holds a
    control character, repeats a name or lacks an ``expected`` column (only expected names are
    repeated back: any other header text is the provider's and could itself be a value)."""
    try:
        header = [h.strip() for h in csv_fields(line)]
    except csv.Error as exc:
        raise DropFileError(label, f"header row cannot be parsed ({type(exc).__name__})") from None
    if _CONTROL.search(line):
        raise DropFileError(label, "header row holds a control character")
    repeated = {h for h in header if header.count(h) > 1}
    if repeated:
        named = sorted(repeated & set(expected))
        others = len(repeated) - len(named)
        parts = [*named, *([f"{others} column name(s) not in the contract"] if others else [])]
        raise DropFileError(
            label,
            f"column(s) named more than once in the header: {', '.join(parts)}",
            "duplicate_column",
            ", ".join(named) or None,
        )
    missing = [c for c in expected if c not in header]
    if missing:
        raise DropFileError(
            label,
            f"missing required column(s): {', '.join(missing)}",
            "missing_column",
            ", ".join(missing),
        )
    return header


@dataclass
class _Lines:
    """Data lines parsed one record per physical line: the records' fields and line numbers,
    the lines quarantined by a `LINE_RULES` rule, and whether the last line was a record."""

    rows: list[list[str | None]]
    numbers: list[int]
    bad: list[dict[str, object]]
    last_ok: bool


def parse_lines(lines: list[str], first_number: int, width: int) -> _Lines:
    """Records of ``lines`` (numbered from ``first_number``): a line that is not one
    well-formed record of ``width`` fields is quarantined under its `LINE_RULES` rule; a blank
    line is not a data line."""
    return _parse_numbered(enumerate(lines, start=first_number), width)


def _parse_numbered(numbered: Iterable[tuple[int, str]], width: int) -> _Lines:
    """`parse_lines` of (line number, line) pairs, in order."""
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    bad: list[dict[str, object]] = []
    last_ok = True
    for number, line in numbered:
        if line == "":
            continue  # a blank line is not a data line
        last_ok = False
        if _CONTROL.search(line):
            bad.append(_bad_line(number, "control_character", LINE_RULES["control_character"]))
            continue
        try:
            row = csv_fields(line)
        except csv.Error:
            bad.append(_bad_line(number, "unbalanced_quote", LINE_RULES["unbalanced_quote"]))
            continue
        if len(row) != width:
            bad.append(
                _bad_line(number, "field_count", f"line has {len(row)} fields, header has {width}")
            )
            continue
        last_ok = True
        rows.append([v.strip() or None for v in row])  # an empty field is missing
        numbers.append(number)
    return _Lines(rows, numbers, bad, last_ok)


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str"


@dataclass
class _Records:
    """Data lines read as records: the contract columns as text, indexed by line number, the
    count of data lines, the lines quarantined by a `LINE_RULES` rule, and whether the last
    data line was a record."""

    frame: pd.DataFrame
    rows_read: int
    bad: list[dict[str, object]]
    last_ok: bool


def read_records(
    lines: list[str], first_number: int, header: list[str], columns: list[str]
) -> _Records:
    """`parse_lines` of ``lines`` with its records' ``columns`` as a text frame (index: line
    number), the same records, quarantine and frame, read in bulk where a line is plain.

    A plain line (ASCII, no quote, no control character, as many commas as the header has)
    is split by Arrow's kernels: its fields are the text between commas, stripped of spaces
    and tabs (the only whitespace such a line can hold, so Python's ``strip`` would remove the
    same), an empty field missing. Every other line (quoted fields, another script, a control
    character, the wrong number of fields, blank) is read one at a time by `parse_lines`' own
    code, which also gives the quarantine's reasons. Per line, building Python lists and a
    frame from them was most of the read (the demo's 372,201 rows: 6 s).
    """
    width = len(header)
    text = pa.array(lines, type=pa.large_string())
    fields = pc.split_pattern(text, ",")
    blank = pc.equal(text, "")
    plain = pc.and_(
        pc.and_(pc.string_is_ascii(text), pc.invert(pc.match_substring(text, '"'))),
        pc.and_(
            pc.and_(pc.invert(pc.match_substring_regex(text, _CONTROL.pattern)), pc.invert(blank)),
            pc.equal(pc.list_value_length(fields), width),
        ),
    )
    plain_np = plain.to_numpy(zero_copy_only=False)
    blank = blank.to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(~plain_np & ~blank)
    slow = _parse_numbered(((first_number + int(i), lines[i]) for i in rest), width)
    fast_numbers = first_number + np.flatnonzero(plain_np)
    values = pc.list_flatten(fields.filter(plain))
    values = pc.ascii_trim_whitespace(values)
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()), values)
    # the wanted columns one after another, in one take: field j of record r is r * width + j
    n = len(fast_numbers)
    where = [header.index(c) for c in columns]
    picked = values.take(
        pa.array((np.asarray(where)[:, None] + width * np.arange(n)[None, :]).ravel())
    )
    numbers = fast_numbers
    order = None
    if slow.rows:  # the records read one at a time go in among the others by line number
        numbers = np.concatenate([fast_numbers, np.asarray(slow.numbers, dtype=np.int64)])
        order = pa.array(np.argsort(numbers, kind="stable"))
        numbers = numbers[order.to_numpy()]
        slow_columns = list(zip(*slow.rows, strict=True))
    data = {}
    for k, c in enumerate(columns):
        col = picked.slice(k * n, n)
        if order is not None:
            slow_col = pa.array(slow_columns[where[k]], type=pa.large_string())
            col = pa.concat_arrays([col, slow_col]).take(order)
        data[c] = ArrowStringArray(col, dtype=_TEXT)
    # no records: an empty index of no type, as a frame built from empty lists has
    index = pd.Index(numbers if len(numbers) else [], name="line_number")
    frame = pd.DataFrame(data, index=index, columns=columns)
    last = np.flatnonzero(~blank)
    last_ok = True if not len(last) else bool(plain_np[last[-1]]) or slow.last_ok
    return _Records(frame, len(numbers) + len(slow.bad), slow.bad, last_ok)


def decode_drop(data: bytes, label: str) -> str:
    """A drop's bytes as text: `DropFileError` when empty or not UTF-8 (a BOM is dropped)."""
    if not data.strip():
        raise DropFileError(label, "file is empty (no header row)", "file_empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DropFileError(
            label,
            f"not valid UTF-8 (first bad byte at offset {exc.start}); re-export as UTF-8",
            "file_encoding",
        ) from None


def read_drop(
    path: Path,
    table: SourceTable,
    label: str,
    data: bytes | None = None,
    columns: list[str] | None = None,
) -> RawDrop:
    """Read one CSV drop as text. ``label`` is the file name used in messages (relative path).

    One record per physical line: every non-empty line after the header is read on its own, so
    a stray quote can never swallow the lines after it. A line that is not one well-formed
    record (a quote left open, the wrong number of fields, a control character) is quarantined
    under its `LINE_RULES` rule, and ``rows_read`` counts every data line, so the ledger proves
    lines = loaded + quarantined.

    Only the contract's columns (or ``columns``: a tokenised drop's) are kept: a column a
    provider adds is dropped here, so an unexpected identifier column can never pass the
    ingest boundary.
    """
    data = path.read_bytes() if data is None else data
    columns = table.columns if columns is None else columns
    text = decode_drop(data, label)
    lines = split_lines(text)
    if not lines:  # a byte-order mark alone
        raise DropFileError(label, "header row cannot be parsed (IndexError)")
    header = check_header(lines[0], columns, label)
    read = read_records(lines[1:], 2, header, columns)
    if not text.endswith(("\n", "\r")) and not read.last_ok:
        raise DropFileError(
            label,
            f"file is truncated: last line {len(lines)} is incomplete and has no newline",
            "file_truncated",
        )
    return RawDrop(
        frame=read.frame,
        rows_read=read.rows_read,
        sha256=hashlib.sha256(data).hexdigest(),
        bad_shape=pd.DataFrame(read.bad, columns=QUARANTINE_COLUMNS),
    )


def iter_drop(
    path: Path, table: SourceTable, label: str, chunk_lines: int = 100_000
) -> Iterator[RawDrop]:
    """`read_drop` a chunk of physical lines at a time, so memory is bounded by the chunk
    whatever the file's size: the same records, line numbers and line quarantine, the same
    file-level errors (raised when met: the header's at once, a truncated last line at the
    end). Each chunk's ``rows_read`` counts its own data lines; ``sha256`` is left empty (the
    caller hashes what it writes)."""
    with path.open("rb") as raw:
        bom = raw.read(3) == b"\xef\xbb\xbf"  # as read_drop: a BOM alone is not empty
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        number = 0
        try:
            header_line = text.readline()
            number = 1
            if not header_line.strip(" \t\n\r\x0b\x0c") and not bom:
                if not any(line.strip(" \t\n\r\x0b\x0c") for line in text):
                    raise DropFileError(label, "file is empty (no header row)", "file_empty")
                text.seek(0)
                header_line = text.readline()
            if header_line == "":  # a byte-order mark alone
                raise DropFileError(label, "header row cannot be parsed (IndexError)")
            header = check_header(header_line.rstrip("\r\n"), table.columns, label)
            chunk: list[str] = []
            first = 2
            last = header_line
            for line in text:
                number += 1
                last = line
                chunk.append(line.rstrip("\r\n"))
                if len(chunk) >= chunk_lines:
                    yield _chunk(chunk, first, header, table)
                    first, chunk = number + 1, []
        except UnicodeDecodeError:
            raise DropFileError(
                label,
                f"not valid UTF-8 (at or after line {number + 1}); re-export as UTF-8",
                "file_encoding",
            ) from None
        # a last line with no line break that is not one record: the export was cut short
        cut = number > 1 and not last.endswith(("\n", "\r"))
        if cut and not parse_lines([last], number, len(header)).last_ok:
            raise DropFileError(
                label,
                f"file is truncated: last line {number} is incomplete and has no newline",
                "file_truncated",
            )
        if chunk:
            yield _chunk(chunk, first, header, table)


def _chunk(lines: list[str], first: int, header: list[str], table: SourceTable) -> RawDrop:
    read = read_records(lines, first, header, table.columns)
    return RawDrop(
        frame=read.frame,
        rows_read=read.rows_read,
        sha256="",
        bad_shape=pd.DataFrame(read.bad, columns=QUARANTINE_COLUMNS),
    )


def data_line_numbers(data: bytes) -> list[int]:
    """Line numbers of the data lines of a file being rejected as a whole (header = line 1).

    Used only to count and locate the rows to quarantine: no value is kept. Text that is not
    UTF-8 is decoded as latin-1 (every byte is a character, so any file can be counted). Every
    non-empty physical line after the first is a data line, as `read_drop` counts them.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if not text.strip():
        return []
    lines = split_lines(text)
    return [n for n, line in enumerate(lines, start=1) if n > 1 and line != ""]
