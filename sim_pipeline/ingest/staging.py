"""Stage one provider table for a run of months: read every provider's drop, validate, pseudonymise.

Pure functions over files and DataFrames (no Dagster). All readable files of the run are
validated and pseudonymised together (one pandera call, one pass of tokenisation: per-file fixed
costs dominated otherwise), and returned as one `StagedRun`: exactly what the warehouse stores
for the run's months, written in one transaction: pseudonymised rows, quarantine rows (no
identifying values) and one ledger row per file with rows_read = rows_loaded +
rows_quarantined.

A file that cannot be read (`DropFileError`: not UTF-8, missing column, truncated ...) is
rejected as a whole: each of its data lines becomes a quarantine row under the file's rule, its
ledger row says ``file_status = rejected``, and the other files of the month load as usual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim_pipeline.identity import Tokeniser
from sim_pipeline.ingest.rows import raw_record_keys, staged_rows
from sim_pipeline.ingest.tables import IngestLedger, IngestQuarantine
from sim_pipeline.ingest.tokenised import (
    RAW,
    TOKENISED,
    Manifest,
    ParsedTokenised,
    contract_version,
    manifest_path,
    parse_tokenised,
    read_manifest,
    validate_tokenised,
)
from sim_pipeline.landing.layout import Landing
from sim_pipeline.quality.identifier_forms import IdentifierMatcher
from sim_pipeline.quality.identifiers import find_identifier_like_by_group
from sim_pipeline.quality.landing_identifiers import frame_identifiers, own_vocabulary_cached
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.sources.drop_files import (
    DEFAULT_MAX_DROP_BYTES,
    count_data_lines,
    drop_sha256,
    open_drop,
)
from sim_pipeline.sources.reader import DropFileError, RawDrop, data_line_numbers, read_drop
from sim_pipeline.sources.validation import DEFECTS_COLUMN, validate_rows
from sim_pipeline.warehouse.model import columns

LEDGER_COLUMNS = columns(IngestLedger)
QUARANTINE_TABLE_COLUMNS = columns(IngestQuarantine)


STAGED_KEY = ["source", "month", "record_ref"]


@dataclass
class StagedRun:
    """One run's staging of a table over its months: the rows, quarantine and ledger rows to
    write (every month together: they are written in one transaction), and what the checks
    read. One result per run: nothing splits it per month for a caller to join again."""

    months: list[str]  # YYYY-MM, in order
    staged: pd.DataFrame
    quarantine: pd.DataFrame
    ledger: pd.DataFrame
    errors: list[DropFileError] = field(default_factory=list)  # files rejected as a whole
    missing: list[str] = field(default_factory=list)  # expected provider drops not found
    # The run's own raw identifiers, as a matcher (never their values): what the staged rows
    # are checked against before they are written (`find_identifier_like`). Memory only.
    identifiers: IdentifierMatcher | None = field(default=None, repr=False, compare=False)
    # Identifier-like content in the provider's record keys as sent (`find_identifier_like`,
    # checked before they become tokens): a provider keying rows by NHS number breaks its
    # contract even though the token would not leak it. {column: {rule: distinct values}}.
    record_key_findings: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every file of the run was read (none rejected as a whole)."""
        return not self.errors


@dataclass
class _Rejected:
    month: str
    source: str
    label: str
    sha256: str
    lines: list[int]  # data line numbers (all quarantined)
    error: DropFileError
    form: str = RAW  # a rejected drop's manifest is not believed: nothing of it is recorded


def duplicate_record_keys(staged: pd.DataFrame) -> pd.DataFrame:
    """Keys (source, month, record_ref) that occur more than once in staged rows, with
    ``copies``; empty when every key is unique (what the warehouse promises)."""
    if staged.empty:
        return pd.DataFrame(columns=[*STAGED_KEY, "copies"])
    counts = staged.groupby(STAGED_KEY, dropna=False, sort=True).size()
    return counts[counts > 1].rename("copies").reset_index()


def _rejection_rows(r: _Rejected, table: SourceTable) -> pd.DataFrame:
    """One quarantine row per data line of a rejected file: the file's rule and its message
    (file name and problem, never a value) as the reason."""
    return pd.DataFrame(
        {
            "source": r.source,
            "table_name": table.table,
            "month": r.month,
            "file": r.label,
            "line_number": pd.array(r.lines, dtype="int64"),
            "column_name": pd.array([r.error.column] * len(r.lines), dtype="string"),
            "rule": r.error.rule,
            "reason": str(r.error),
        },
        columns=QUARANTINE_TABLE_COLUMNS,
    )


def _validate(
    rows: pd.DataFrame, table: SourceTable, month_end: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, DropFileError]]:
    """`validate_rows` over every file at once; if a whole column fails (which pandera cannot
    attribute to a file), validate file by file and reject the files that fail that way."""
    try:
        good, quarantine = validate_rows(rows, table, month_end)
        return good, quarantine, {}
    except DropFileError:
        pass
    goods, quarantines, rejected = [], [], {}
    for label, part in rows.groupby("file", sort=True):
        try:
            g, q = validate_rows(part, table, month_end.loc[part.index])
        except DropFileError as exc:
            rejected[str(label)] = DropFileError(
                str(label), exc.problem, "whole_column_contract", exc.column
            )
            continue
        goods.append(g)
        quarantines.append(q)
    good = pd.concat(goods) if goods else rows.iloc[:0]
    quarantine = (
        pd.concat(quarantines, ignore_index=True)
        if quarantines
        else pd.DataFrame(columns=["file", "line_number", "column_name", "rule", "reason"])
    )
    return good, quarantine, rejected


def stage_run(
    landing_dir: Path,
    table: SourceTable,
    months: list[str],
    tokeniser: Tokeniser,
    max_bytes: int = DEFAULT_MAX_DROP_BYTES,
) -> StagedRun:
    """Stage every provider's drop of ``table`` for the months (YYYY-MM) of one run.

    Only regular files inside the landing folder, up to ``max_bytes``, are read (`open_drop`);
    any other drop path is rejected as a whole without being opened (a FIFO would hang)."""
    drops: list[tuple[str, str, str, RawDrop]] = []  # (month, source, label, drop)
    parsed: list[tuple[str, str, str, ParsedTokenised]] = []  # tokenised at the provider
    rejected: list[_Rejected] = []
    missing: dict[str, list[str]] = {m: [] for m in months}
    for month in months:
        for source in table.providers:
            drop = Landing(landing_dir).drop(source, month, table)
            path, label = drop.path, drop.label
            if not path.exists() and not path.is_symlink():
                missing[month].append(label)
                continue
            data = None
            manifest: Manifest | None = None
            form = TOKENISED if manifest_path(path).exists() else RAW
            try:
                data = open_drop(path, landing_dir, label, max_bytes)
                if form == TOKENISED:
                    manifest = read_manifest(manifest_path(path), label)
                    read = parse_tokenised(path, table, source, month, label, data, manifest)
                    parsed.append((month, source, label, read))
                else:
                    drops.append((month, source, label, read_drop(path, table, label, data)))
            except (DropFileError, OSError) as exc:
                if not isinstance(exc, DropFileError):  # unreadable, or a dangling link
                    exc = DropFileError(
                        label, f"cannot be read ({type(exc).__name__})", "not_regular_file"
                    )
                if data is not None:
                    digest, lines = hashlib.sha256(data).hexdigest(), data_line_numbers(data)
                elif exc.rule == "file_too_large":  # hashed and counted 1 MiB at a time
                    digest = drop_sha256(path, landing_dir, max_bytes=None)
                    lines = count_data_lines(path.resolve())
                else:  # never opened: nothing to count; the hash the landing inventory gives
                    digest, lines = f"not-read:{exc.rule}", []
                rejected.append(_Rejected(month, source, label, digest, lines, exc, form))

    # the tokenised drops' rows validated together (`ingest.tokenised`)
    checked = validate_tokenised([t for _, _, _, t in parsed], table)
    tokenised = [(m, s, label, t) for (m, s, label, _), t in zip(parsed, checked, strict=True)]
    frames = [
        d.frame.assign(file=label, line_number=d.frame.index.to_numpy()).reset_index(drop=True)
        for _, _, label, d in drops
        if len(d.frame)
    ]
    rows = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*table.columns, "file", "line_number"], dtype="str")
    )
    month_of = {label: month for month, _, label, _ in drops}
    month_end = (
        pd.to_datetime(rows["file"].map(month_of), format="%Y-%m") + pd.offsets.MonthEnd(0)
    ).set_axis(rows.index)
    good, quarantine, whole_column = _validate(rows, table, month_end)
    if whole_column:
        # rejected after reading: every line of the file (bad-shape lines too) is quarantined
        for month, source, label, d in drops:
            if label in whole_column:
                lines = sorted({*d.frame.index.tolist(), *d.bad_shape["line_number"].tolist()})
                rejected.append(
                    _Rejected(month, source, label, d.sha256, lines, whole_column[label])
                )
        drops = [d for d in drops if d[2] not in whole_column]
    shape_q = [d.bad_shape.assign(file=label) for _, _, label, d in drops if len(d.bad_shape)]
    if shape_q:
        quarantine = pd.concat([quarantine, *shape_q], ignore_index=True)
    label_info = pd.DataFrame(
        [(label, month, source) for month, source, label, _ in drops],
        columns=["file", "month", "source"],
    )

    matcher = IdentifierMatcher(frame_identifiers([(table, good)], own_vocabulary_cached()))
    file_col = good["file"].astype("string")
    info = label_info.set_index("file").loc[file_col.to_numpy()]
    key_columns = ["record_ref", *table.key_columns]
    raw_keys = raw_record_keys(good, table).assign(month=info["month"].to_numpy())
    staged = staged_rows(good, table, tokeniser, pd.Series(info["source"].to_numpy()))
    staged.insert(0, "month", info["month"].to_numpy())
    staged.insert(0, "source", info["source"].to_numpy())
    staged.insert(len(staged.columns) - 1, "source_file", file_col.to_numpy())
    staged["key_id"] = tokeniser.key_id
    if tokenised:
        # rows the providers staged (`ingest.tokenised`): the same columns, their key's id
        parts = [staged]
        for month, source, label, t in tokenised:
            rows = t.staged.copy()
            rows.insert(0, "month", month)
            rows.insert(0, "source", source)
            rows.insert(len(rows.columns) - 1, "source_file", label)
            rows["key_id"] = t.manifest.key_fingerprint
            parts.append(rows[list(staged.columns)])
        # (an empty part would turn its columns' types to object)
        staged = pd.concat([x for x in parts if len(x)] or [staged], ignore_index=True)
        rank = {s: i for i, s in enumerate(table.providers)}
        order = staged["source"].map(rank).astype("int64")
        staged = staged.iloc[
            pd.DataFrame({"m": staged["month"], "r": order})
            .sort_values(["m", "r"], kind="stable")
            .index
        ].reset_index(drop=True)

    tok_q = [t.quarantine for _, _, _, t in tokenised if len(t.quarantine)]
    if tok_q:
        parts = [x for x in (quarantine, *tok_q) if len(x)]
        quarantine = pd.concat(parts, ignore_index=True)
        quarantine["line_number"] = quarantine["line_number"].astype("int64")
    label_info = pd.concat(
        [
            label_info,
            pd.DataFrame(
                [(label, month, source) for month, source, label, _ in tokenised],
                columns=["file", "month", "source"],
            ),
        ],
        ignore_index=True,
    )
    quarantine = quarantine.merge(label_info, on="file", how="left")
    quarantine["table_name"] = table.table
    quarantine = quarantine[QUARANTINE_TABLE_COLUMNS]
    if rejected:
        quarantine = pd.concat(
            [quarantine, *(_rejection_rows(r, table) for r in rejected if r.lines)],
            ignore_index=True,
        )
    q_rows = quarantine.groupby("file")["line_number"].nunique()
    loaded = staged.groupby("source_file").size()
    nulled = (
        good[DEFECTS_COLUMN].str.count(":").groupby(good["file"].to_numpy()).sum()
        if DEFECTS_COLUMN in good.columns and len(good)
        else pd.Series(dtype="int64")
    )

    common = {"table_name": table.table, "key_id": tokeniser.key_id, "demo_key": tokeniser.demo}
    raw_form = {"drop_form": RAW, "contract_version": contract_version(table, RAW)}
    tok_nulled = {
        label: int(t.staged[DEFECTS_COLUMN].str.count(":").sum())
        if DEFECTS_COLUMN in t.staged.columns
        else 0
        for _, _, label, t in tokenised
    }

    def tokenised_form(m: Manifest | None) -> dict[str, object]:
        if m is None:  # rejected: its manifest is not believed, nothing of it recorded
            return {"drop_form": TOKENISED, "contract_version": None, "key_id": None}
        # checked forms (`check_manifest`); the demo flag is the pipeline's when the keys agree
        same_key = m.key_fingerprint == tokeniser.key_id
        return {
            "drop_form": TOKENISED,
            "contract_version": m.contract_version,
            "key_id": m.key_fingerprint,
            "demo_key": tokeniser.demo if same_key else m.demo_key,
        }

    ledger = pd.DataFrame(
        [
            {
                **common,
                "source": source,
                "month": month,
                "file": label,
                "file_sha256": d.sha256,
                "file_status": "loaded",
                "rejection_rule": None,
                "rows_read": d.rows_read,
                "rows_loaded": int(loaded.get(label, 0)),
                "rows_quarantined": int(q_rows.get(label, 0)),
                "identifiers_nulled": int(nulled.get(label, 0)),
                **raw_form,
            }
            for month, source, label, d in drops
        ]
        + [
            {
                **common,
                "source": source,
                "month": month,
                "file": label,
                "file_sha256": t.sha256,
                "file_status": "loaded",
                "rejection_rule": None,
                "rows_read": t.rows_read,
                "rows_loaded": len(t.staged),
                "rows_quarantined": t.rows_quarantined,
                "identifiers_nulled": tok_nulled[label],
                **tokenised_form(t.manifest),
            }
            for month, source, label, t in tokenised
        ]
        + [
            {
                **common,
                "source": r.source,
                "month": r.month,
                "file": r.label,
                "file_sha256": r.sha256,
                "file_status": "rejected",
                "rejection_rule": r.error.rule,
                "rows_read": len(r.lines),
                "rows_loaded": 0,
                "rows_quarantined": len(r.lines),
                "identifiers_nulled": 0,
                **(raw_form if r.form == RAW else tokenised_form(None)),
            }
            for r in rejected
        ],
        columns=LEDGER_COLUMNS,
    )
    ledger = ledger.sort_values(["month", "file"], ignore_index=True)
    quarantine = quarantine.sort_values(
        ["month", "file", "line_number", "rule", "column_name"],
        na_position="first",
        ignore_index=True,
    )
    # provider record keys as sent, per month (one pass when clean), summed over the run
    by_month = find_identifier_like_by_group(
        raw_keys[key_columns], raw_keys["month"], months, matcher, record_keys=key_columns
    )
    key_findings: dict[str, dict[str, int]] = {}
    for found in by_month.values():
        for col, rules in found.items():
            for rule, n in rules.items():
                key_findings.setdefault(col, {})[rule] = key_findings.get(col, {}).get(rule, 0) + n
    return StagedRun(
        months=list(months),
        staged=staged.sort_values("month", kind="stable", ignore_index=True),
        quarantine=quarantine,
        ledger=ledger,
        errors=[r.error for r in sorted(rejected, key=lambda r: (r.month, r.error.file))],
        missing=[label for m in months for label in missing[m]],
        identifiers=matcher,
        record_key_findings=key_findings,
    )


def stage_month(
    landing_dir: Path,
    table: SourceTable,
    month: str,
    tokeniser: Tokeniser,
    max_bytes: int = DEFAULT_MAX_DROP_BYTES,
) -> StagedRun:
    """Stage every provider's drop of ``table`` for one month (YYYY-MM)."""
    return stage_run(landing_dir, table, [month], tokeniser, max_bytes)
