"""Validating rows read from drops: the pandera contract, the date-range rule and the
record-key rules split them into good rows (a broken identifier nulled and named in
`DEFECTS_COLUMN`) and quarantine rows with a rule code and a fixed reason; then typing the
validated text columns."""

from __future__ import annotations

import pandas as pd
import pandera.errors

from sim_pipeline.sources.base import SourceTable
from sim_pipeline.sources.reader import QUARANTINE_COLUMNS, DropFileError

_BUILTIN_RULES = {"not_nullable": "required", "str_matches": "format", "isin": "code_list"}
BUILTIN_REASONS = {
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
            named = check_names(table)
            reported = row_level["check"].astype(str)
            rules = [named[c][0] if c in named else _rule_name(c) for c in reported]
            problems.append(
                pd.DataFrame(
                    {
                        "row": row_level["index"].to_numpy(),
                        "column_name": row_level["column"].astype("string").to_numpy(),
                        "rule": rules,
                        "reason": [
                            named[c][1] if c in named else BUILTIN_REASONS.get(r, "rule failed")
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


def check_names(table: SourceTable) -> dict[str, tuple[str, str]]:
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
            out[str(check)] = out[check.name] = (rule, BUILTIN_REASONS[rule])
        elif check.name and check.error:
            out[check.error] = (check.name, check.error)
            out[check.name] = (check.name, check.error)
    return out


def typed(frame: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """Convert validated text columns to dates, date-times and integers (those ``frame`` has:
    a tokenised drop holds no raw identifier column)."""
    out = frame.copy()
    for c in [c for c in table.date_columns if c in out]:
        out[c] = pd.to_datetime(out[c], format="%Y-%m-%d", errors="coerce")
    for c in [c for c in table.datetime_columns if c in out]:
        out[c] = pd.to_datetime(out[c].str.replace("T", " "), format="mixed", errors="coerce")
    for c in [c for c in table.int_columns if c in out]:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    return out
