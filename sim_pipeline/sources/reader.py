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
import re
import stat
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


def _split_lines(text: str) -> list[str]:
    """Physical lines (CRLF, CR or LF); a final line break does not start an empty line."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _fields(line: str) -> list[str]:
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
    lines = _split_lines(text)
    try:
        header = [h.strip() for h in _fields(lines[0])]
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
            row = _fields(line)
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
    lines = _split_lines(text)
    return [n for n, line in enumerate(lines, start=1) if n > 1 and line != ""]


# Largest drop read (SIM_MAX_DROP_BYTES): a month of one provider's table at national volume is
# well under 1 GiB; a bigger file is a wrong export, not data.
DEFAULT_MAX_DROP_BYTES = 2 * 1024**3


def count_data_lines(path: Path, chunk_bytes: int = 1 << 20) -> list[int]:
    """`data_line_numbers` of a file read 1 MiB at a time (for a file over the size cap):
    the numbers of the non-empty physical lines after the first, in bounded memory."""
    numbers: list[int] = []
    number, content, carry = 1, False, b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            data = carry + chunk
            if chunk and data.endswith(b"\r"):
                data, carry = data[:-1], b"\r"  # a CRLF may straddle two reads
            else:
                carry = b""
            parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for part in parts[:-1]:  # each ends a line
                if (content or part) and number > 1:
                    numbers.append(number)
                number, content = number + 1, False
            content = content or bool(parts[-1])
            if not chunk:
                break
    if content and number > 1:
        numbers.append(number)
    return numbers


def check_drop_path(path: Path, landing_dir: Path, label: str, max_bytes: int | None) -> Path:
    """The file behind a drop path when staging may read it: a regular file inside the landing
    folder (a link may point only inside it), within ``max_bytes``. Otherwise `DropFileError`
    (nothing is opened, so a FIFO cannot hang the run)."""
    real = path.resolve()
    if path.is_symlink() and not real.is_relative_to(landing_dir.resolve()):
        raise DropFileError(
            label, "is a link to a file outside the landing folder; not read", "outside_landing"
        )
    mode = real.stat().st_mode
    if not stat.S_ISREG(mode):
        raise DropFileError(
            label, "is not a regular file (a FIFO, device or folder); not read", "not_regular_file"
        )
    size = real.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DropFileError(
            label,
            f"is {size} bytes, over the cap of {max_bytes} (SIM_MAX_DROP_BYTES); not read",
            "file_too_large",
        )
    return real


def open_drop(path: Path, landing_dir: Path, label: str, max_bytes: int) -> bytes:
    """The bytes of a drop `check_drop_path` allows."""
    return check_drop_path(path, landing_dir, label, max_bytes).read_bytes()


def drop_sha256(path: Path, landing_dir: Path, max_bytes: int | None = None) -> str:
    """SHA-256 of a drop as staging sees it (read in 1 MiB pieces, so any size), or
    ``not-read:<rule>`` for a path staging will not open (a FIFO or device, a link out of the
    landing folder): what the ledger's ``file_sha256`` holds, so the landing reconciles against
    it. An over-size file is hashed (staging hashes it too) unless ``max_bytes`` is given."""
    try:
        check_drop_path(path, landing_dir, path.name, max_bytes=max_bytes)
    except DropFileError as exc:
        return f"not-read:{exc.rule}"
    except OSError:
        return "not-read:not_regular_file"
    digest = hashlib.sha256()
    with path.resolve().open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_BUILTIN_RULES = {"not_nullable": "required", "str_matches": "format", "isin": "code_list"}
_BUILTIN_REASONS = {
    "required": "required field is empty",
    "format": "value does not have the required format",
    "code_list": "value is not in the code list",
}


def _rule_name(check: str) -> str:
    head = check.split("(", 1)[0]
    return _BUILTIN_RULES.get(head, head)


DEFECTS_COLUMN = "identifier_defects"
EARLIEST_DATE = pd.Timestamp("1900-01-01")
DATE_RANGE_REASON = (
    "date before 1900, or later than the drop's month allows (a birth, death or the event "
    "itself after the month's end; any other date after the end of the next month)"
)


def _date_range_failures(
    frame: pd.DataFrame, table: SourceTable, month_end: pd.Series | None
) -> pd.DataFrame:
    """(row, column) of dates that are real but implausible: before 1900; a birth, death or
    the event after the end of the drop's month; any other date (a closing time, a discharge)
    after the end of the month after it, the bound the GX suite holds the whole batch to. Such
    a row is quarantined (or its birth date nulled) rather than failing the batch."""
    ident = table.identifiers
    strict = {c for c in (ident.birth_date, ident.event_date) if c}
    strict |= {c for c in table.columns if c.endswith("DeathDate")}
    cols = dict.fromkeys([*table.date_columns, *table.datetime_columns, *sorted(strict)])
    found = []
    for c in cols:
        if c not in frame.columns:
            continue
        text = frame[c].astype("string")
        when = pd.to_datetime(
            text.str.slice(0, 10).where(text.str.fullmatch(r"[0-9]{4}-.*").fillna(False)),
            format="%Y-%m-%d",
            errors="coerce",
        )
        bad = when < EARLIEST_DATE
        if month_end is not None:
            bound = month_end if c in strict else month_end + pd.offsets.MonthEnd(1)
            bad |= when > bound
        bad = bad.fillna(False).astype(bool)
        if bad.any():
            found.append(pd.DataFrame({"row": frame.index[bad.to_numpy()], "column_name": c}))
    if not found:
        return pd.DataFrame(columns=["row", "column_name"])
    return pd.concat(found, ignore_index=True)


def validate_rows(
    frame: pd.DataFrame, table: SourceTable, month_end: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the pandera contract and the record-key rules to rows of one or more files.

    ``frame`` holds the contract columns plus ``file`` and ``line_number`` (where each row came
    from) on a unique index; ``month_end`` (same index) is the last day of each row's drop month,
    for the date-range rule. Validating many files at once costs one pandera call instead of
    one per file.

    An identifier field that breaks its rule (an invalid NHS number, a malformed postcode or
    name, an impossible birth date) degrades the identifier, not the event: the value becomes
    null, the row is kept and `DEFECTS_COLUMN` names the field and rule (never the value). Any
    other broken rule quarantines the row. Returns (good rows with `DEFECTS_COLUMN`,
    quarantine rows with file, line_number, column_name, rule, reason).
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
    ranged = _date_range_failures(frame, table, month_end)
    if len(ranged):
        problems.append(ranged.assign(rule="date_out_of_range", reason=DATE_RANGE_REASON))
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
    good = frame.copy()
    good[DEFECTS_COLUMN] = pd.Series(pd.NA, index=frame.index, dtype="string")
    found = (
        pd.concat(problems, ignore_index=True).drop_duplicates()
        if problems
        else pd.DataFrame(columns=["row", "column_name", "rule", "reason"])
    )
    identifier = found["column_name"].isin(table.identifiers.raw_columns())
    defects = found[identifier]
    found = found[~identifier]
    if len(defects):
        # null the failing identifier values (rows that are quarantined anyway are dropped below)
        for column, rows in defects.groupby("column_name")["row"]:
            good.loc[rows.unique(), column] = pd.NA
        labels = (defects["column_name"].astype(str) + ":" + defects["rule"].astype(str)).groupby(
            defects["row"].to_numpy()
        )
        good.loc[labels.groups.keys(), DEFECTS_COLUMN] = labels.agg(
            lambda v: ",".join(sorted(set(v)))
        )
    if len(found):
        rows = frame.loc[found["row"].to_numpy(), ["file", "line_number"]].reset_index(drop=True)
        quarantine = pd.concat([rows, found.drop(columns="row").reset_index(drop=True)], axis=1)
        quarantine = quarantine.sort_values(
            ["file", "line_number", "rule", "column_name"], na_position="first", ignore_index=True
        )
        good = good.drop(index=found["row"].unique())
    else:
        quarantine = pd.DataFrame(columns=["file", *QUARANTINE_COLUMNS])
    return good, quarantine


def validate_drop(
    frame: pd.DataFrame, table: SourceTable, label: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`validate_rows` for a single file read by `read_drop` (index = line number)."""
    rows = frame.assign(file=label, line_number=frame.index.to_numpy()).reset_index(drop=True)
    good, quarantine = validate_rows(rows, table)
    good = good.set_index("line_number")[[*table.columns, DEFECTS_COLUMN]]
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
