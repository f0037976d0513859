"""Read a provider drop and split it into contract-clean rows and quarantined rows.

Row-level problems (a bad date, an invalid NHS number, a repeated record) quarantine that row
with the rule and a fixed reason text; file-level problems (not UTF-8, empty, missing columns,
truncated, a whole column failing the contract) raise `DropFileError` naming the file, with a
stable rule code (`FILE_RULES`). Staging then rejects the file as a whole: every data line of it
is quarantined under that rule (`data_line_numbers` finds the lines). Identifying values never
reach a message.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.errors

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
    bad_shape: pd.DataFrame  # rows with the wrong number of fields (quarantine rows)


def read_drop(path: Path, table: SourceTable, label: str) -> RawDrop:
    """Read one CSV drop as text. ``label`` is the file name used in messages (relative path).

    Only the contract's columns are kept: a column a provider adds is dropped here, so an
    unexpected identifier column can never pass the ingest boundary.
    """
    data = path.read_bytes()
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
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise DropFileError(label, f"header row cannot be parsed ({type(exc).__name__})") from None
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
    lines: list[int] = []
    bad: list[dict[str, object]] = []
    last_len = width
    try:
        for row in reader:
            if not row:
                continue
            last_len = len(row)
            if len(row) != width:
                bad.append(
                    {
                        "line_number": reader.line_num,
                        "column_name": None,
                        "rule": "field_count",
                        "reason": f"row has {len(row)} fields, header has {width}",
                    }
                )
                continue
            rows.append([v.strip() for v in row])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DropFileError(
            label, f"CSV cannot be parsed near line {reader.line_num}: {exc}"
        ) from None
    if not text.endswith(("\n", "\r")) and last_len != width:
        raise DropFileError(
            label,
            f"file is truncated: last line {reader.line_num} is incomplete and has no newline",
            "file_truncated",
        )
    frame = pd.DataFrame(
        rows, columns=header, index=pd.Index(lines, name="line_number"), dtype="str"
    )
    frame = frame.replace("", pd.NA)
    return RawDrop(
        frame=frame[table.columns],
        rows_read=len(rows) + len(bad),
        sha256=hashlib.sha256(data).hexdigest(),
        bad_shape=pd.DataFrame(bad, columns=QUARANTINE_COLUMNS),
    )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def data_line_numbers(data: bytes) -> list[int]:
    """Line numbers of the data lines of a file being rejected as a whole (header = line 1).

    Used only to count and locate the rows to quarantine: no value is kept. Text that is not
    UTF-8 is decoded as latin-1 (every byte is a character, so any file can be counted). The
    file could not be read, so its CSV records cannot be trusted (an unclosed quote would
    swallow the rest of the file): every non-empty physical line after the first is counted.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if not text.strip():
        return []
    lines = _LINE_BREAK.split(text)
    return [n for n, line in enumerate(lines, start=1) if n > 1 and line != ""]


_BUILTIN_RULES = {"not_nullable": "required", "str_matches": "format", "isin": "code_list"}
_BUILTIN_REASONS = {
    "required": "required field is empty",
    "format": "value does not have the required format",
    "code_list": "value is not in the code list",
}


def _rule_name(check: str) -> str:
    head = check.split("(", 1)[0]
    return _BUILTIN_RULES.get(head, head)


def validate_rows(frame: pd.DataFrame, table: SourceTable) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the pandera contract and the record-key rules to rows of one or more files.

    ``frame`` holds the contract columns plus ``file`` and ``line_number`` (where each row came
    from) on a unique index. Validating many files at once costs one pandera call instead of one
    per file. Returns (good rows, quarantine rows with file, line_number, column_name, rule, reason).
    """
    problems: list[pd.DataFrame] = []
    data = frame[table.columns]
    if len(frame):
        try:
            table.contract.validate(data, lazy=True)
        except pandera.errors.SchemaErrors as err:
            fc = err.failure_cases
            row_level = fc[fc["index"].notna()]
            file_level = fc[fc["index"].isna()]
            if len(file_level):
                checks = sorted(
                    {
                        f"{c}:{k}"
                        for c, k in zip(file_level["column"], file_level["check"], strict=True)
                    }
                )
                files = ", ".join(sorted(frame["file"].unique()))
                columns = ", ".join(sorted({str(c) for c in file_level["column"]}))
                raise DropFileError(
                    files,
                    f"contract fails for whole columns: {'; '.join(checks)}",
                    "whole_column_contract",
                    columns,
                ) from None
            named = _check_names(table)
            reported = row_level["check"].astype(str)
            rules = [named[c][0] if c in named else _rule_name(c) for c in reported]
            problems.append(
                pd.DataFrame(
                    {
                        "row": row_level["index"].to_numpy(),
                        "column_name": row_level["column"].astype("string").to_numpy(),
                        "rule": rules,
                        "reason": [
                            named[c][1] if c in named else _BUILTIN_REASONS.get(r, "rule failed")
                            for c, r in zip(reported, rules, strict=True)
                        ],
                    }
                )
            )
    keyed = data.assign(file=frame["file"])
    dup_row = keyed.duplicated(keep="first")
    dup_key = keyed.duplicated(subset=["file", table.record_ref], keep="first") & ~dup_row
    for mask, rule, reason in (
        (dup_row, "duplicate_row", "exact repeat of an earlier row in the same file"),
        (dup_key, "duplicate_record_ref", f"{table.record_ref} repeats an earlier row in the file"),
    ):
        if mask.any():
            problems.append(
                pd.DataFrame(
                    {
                        "row": frame.index[mask.to_numpy()].to_numpy(),
                        "column_name": table.record_ref,
                        "rule": rule,
                        "reason": reason,
                    }
                )
            )
    if problems:
        found = pd.concat(problems, ignore_index=True).drop_duplicates()
        rows = frame.loc[found["row"].to_numpy(), ["file", "line_number"]].reset_index(drop=True)
        quarantine = pd.concat([rows, found.drop(columns="row").reset_index(drop=True)], axis=1)
        quarantine = quarantine.sort_values(
            ["file", "line_number", "rule", "column_name"], na_position="first", ignore_index=True
        )
        good = frame.drop(index=found["row"].unique())
    else:
        quarantine = pd.DataFrame(columns=["file", *QUARANTINE_COLUMNS])
        good = frame
    return good, quarantine


def validate_drop(
    frame: pd.DataFrame, table: SourceTable, label: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`validate_rows` for a single file read by `read_drop` (index = line number)."""
    rows = frame.assign(file=label, line_number=frame.index.to_numpy()).reset_index(drop=True)
    good, quarantine = validate_rows(rows, table)
    good = good.set_index("line_number")[table.columns]
    return good, quarantine.drop(columns="file")


def _check_names(table: SourceTable) -> dict[str, tuple[str, str]]:
    """What pandera reports for a failing check (its name, or its error text when one is set)
    -> (rule code, fixed reason). The reason is the contract's own text, never a data value."""
    schema = table.contract.to_schema()
    checks = list(schema.checks)
    for column in schema.columns.values():
        checks += list(column.checks)
    out: dict[str, tuple[str, str]] = {}
    for check in checks:
        if check.name in _BUILTIN_RULES:
            rule = _BUILTIN_RULES[check.name]
            out[str(check)] = out[check.name] = (rule, _BUILTIN_REASONS[rule])
        elif check.name and check.error:
            out[check.error] = (check.name, check.error)
            out[check.name] = (check.name, check.error)
    return out


def typed(frame: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """Convert validated text columns to dates, date-times and integers."""
    out = frame.copy()
    for c in table.date_columns:
        out[c] = pd.to_datetime(out[c], format="%Y-%m-%d", errors="coerce")
    for c in table.datetime_columns:
        out[c] = pd.to_datetime(out[c].str.replace("T", " "), format="mixed", errors="coerce")
    for c in table.int_columns:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    return out
