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
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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


def read_drop(path: Path, table: SourceTable, label: str, data: bytes | None = None) -> RawDrop:
    """Read one CSV drop as text. ``label`` is the file name used in messages (relative path).

    One record per physical line: every non-empty line after the header is read on its own, so
    a stray quote can never swallow the lines after it. A line that is not one well-formed
    record (a quote left open, the wrong number of fields, a control character) is quarantined
    under its `LINE_RULES` rule, and ``rows_read`` counts every data line, so the ledger proves
    lines = loaded + quarantined.

    Only the contract's columns are kept: a column a provider adds is dropped here, so an
    unexpected identifier column can never pass the ingest boundary.
    """
    data = path.read_bytes() if data is None else data
    if not data.strip():
        raise DropFileError(label, "file is empty (no header row)", "file_empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DropFileError(
            label,
            f"not valid UTF-8 (first bad byte at offset {exc.start}); re-export as UTF-8",
            "file_encoding",
        ) from None
    lines = split_lines(text)
    try:
        header = [h.strip() for h in csv_fields(lines[0])]
    except (IndexError, csv.Error) as exc:
        raise DropFileError(label, f"header row cannot be parsed ({type(exc).__name__})") from None
    if _CONTROL.search(lines[0]):
        raise DropFileError(label, "header row holds a control character")
    repeated = {h for h in header if header.count(h) > 1}
    if repeated:
        # Only contract column names are repeated back: any other header text is the
        # provider's and could itself be a value (an NHS number pasted into the header row).
        named = sorted(repeated & set(table.columns))
        others = len(repeated) - len(named)
        parts = [*named, *([f"{others} column name(s) not in the contract"] if others else [])]
        raise DropFileError(
            label,
            f"column(s) named more than once in the header: {', '.join(parts)}",
            "duplicate_column",
            ", ".join(named) or None,
        )
    missing = [c for c in table.columns if c not in header]
    if missing:
        raise DropFileError(
            label,
            f"missing required column(s): {', '.join(missing)}",
            "missing_column",
            ", ".join(missing),
        )
    width = len(header)
    rows: list[list[str]] = []
    numbers: list[int] = []
    bad: list[dict[str, object]] = []
    last_ok = True
    for number, line in enumerate(lines[1:], start=2):
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
    if not text.endswith(("\n", "\r")) and not last_ok:
        raise DropFileError(
            label,
            f"file is truncated: last line {len(lines)} is incomplete and has no newline",
            "file_truncated",
        )
    # built a column at a time, contract columns only (a column per row list and a frame-wide
    # replace cost most of the read)
    values = list(zip(*rows, strict=True)) if rows else [()] * width
    frame = pd.DataFrame(
        {c: values[header.index(c)] for c in table.columns},
        index=pd.Index(numbers, name="line_number"),
        columns=table.columns,
        dtype="str",
    )
    return RawDrop(
        frame=frame,
        rows_read=len(rows) + len(bad),
        sha256=hashlib.sha256(data).hexdigest(),
        bad_shape=pd.DataFrame(bad, columns=QUARANTINE_COLUMNS),
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
