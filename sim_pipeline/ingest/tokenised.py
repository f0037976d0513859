"""Tokenised drops: identifiers tokenised at the provider, only encodings travel.

Police forces and trusts are often not allowed to share identifiable data with each other. The
lawful pattern is that each provider encodes its own extract with a key shared among the linkage
partners, and only the encodings travel. `tokenise_file` is that step (``sim-pipeline
tokenise``): it reads a provider's raw extract under the same contract as ingest, a chunk of
lines at a time (`sources.reader.iter_drop`: memory bounded by the chunk, plus about 150
bytes a row to find repeated rows and record keys across chunks), validates each chunk as ingest does
(`sources.validation.validate_rows`) and makes each row what a staged table holds
(`ingest.staging.staged_rows`: coarsened dates, tokens, hardened Bloom filters, record keys as
keyed tokens). It writes:

- the tokenised drop: one line per data line of the extract, in order. A loaded line carries
  its staged values; a quarantined line carries only its line number and, in ``quarantine``,
  the rules it broke as JSON ``[[column, rule, reason], ...]`` (fixed texts, never a value);
- beside it ``<drop>.manifest.json`` (`MANIFEST_SUFFIX`): the format and contract version, the
  key's fingerprint (its id, never the key), the row counts and the drop's SHA-256.

Nothing is written if a chunk holds identifier-like content where none may be (an NHS number in
free text, a record key that is a date of birth: `find_identifier_like`, as ingest checks, but
against the identifiers of the chunk's own rows where ingest uses every row of its run) or
fails a whole column of the contract: the provider is told the file, the column and the rule.

At the landing (`read_tokenised`), a drop with a manifest beside it is read as tokenised: the
manifest must match the drop's place, content and the contract version; the rows are checked
again against everything that can be checked without identifiers (every kept column's contract
checks and the date ranges, every token and encoding's form, the quarantine entries' rules and
texts); identifiers cannot be checked again, which is why the provider runs the same code. With
the same key, a landing of tokenised drops stages exactly the rows of the raw landing, so
linkage, metrics and the headline are the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc

from sim_pipeline.identity import Tokeniser
from sim_pipeline.identity.normalise import AGE_BANDS
from sim_pipeline.identity.pseudonymise import IDENTITY_COLUMNS
from sim_pipeline.identity.tokens import BLOOM_BITS, TOKEN_HEX
from sim_pipeline.ingest.rows import coarsened, raw_record_keys, staged_rows
from sim_pipeline.quality.identifier_forms import IdentifierMatcher
from sim_pipeline.quality.identifiers import find_identifier_like
from sim_pipeline.quality.landing_identifiers import frame_identifiers, own_vocabulary_cached
from sim_pipeline.sources.base import IdentifierColumns, SourceTable
from sim_pipeline.sources.reader import (
    LINE_RULES,
    QUARANTINE_COLUMNS,
    DropFileError,
    iter_drop,
    read_drop,
)
from sim_pipeline.sources.validation import (
    BUILTIN_REASONS,
    DATE_RANGE_REASON,
    DEFECTS_COLUMN,
    check_names,
    typed,
    validate_rows,
)

FORMAT = "sim-pipeline tokenised drop"
SCHEME = 1
MANIFEST_SUFFIX = ".manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024
KEY_FINGERPRINT_SCHEME = (
    "the key's id from its key text (sim-pipeline keygen; independent of the secret), or for "
    "the public demo key HMAC-SHA256(key, 'sim-pipeline/key-fingerprint')[:12]"
)
LINE, QUARANTINE = "line_number", "quarantine"
DEFAULT_CHUNK_LINES = 100_000
RAW, TOKENISED = "raw", "tokenised"
# Rules of a tokenised drop's lines the pipeline adds (its own checks); never change meaning.
TOKENISED_RULES = {
    "token_format": "a token, encoding or derived identity field does not have its form",
    "quarantine_entry": "the line's quarantine entry is not a known rule with its fixed text, "
    "or the line carries values besides it",
    "line_number_invalid": "the line's number in the provider's extract is not a whole "
    "number of at most nine digits from 2, or not after the line before it",
    "identifier_defects_invalid": "identifier_defects is not a list of the table's identifier "
    "columns with their rules",
}
_FIELD_COUNT = re.compile(r"line has [0-9]{1,3} fields, header has [0-9]{1,3}")
LINE_RE = r"[0-9]{1,9}"
# the manifest's fields ingest records, in their only forms (never echoed otherwise)
CONTRACT_VERSION_RE = re.compile(r"[0-9a-f]{12}")
KEY_FINGERPRINT_RE = re.compile(r"[0-9a-f]{12,16}")
_DUPLICATE_REASONS = {
    "duplicate_row": "exact repeat of an earlier row in the same file",
}


class TokeniseRefused(Exception):
    """The extract cannot be tokenised as it is: the message names the file, the column(s) and
    the rule, never a value. Nothing was written."""


def has_identity(table: SourceTable) -> bool:
    """The table carries identity columns once staged (`pseudonymise` adds them)."""
    return bool(table.identifiers.raw_columns()) or table.identifiers.sex is not None


def kept_columns(table: SourceTable) -> list[str]:
    """Contract columns a staged row keeps as values or as key tokens."""
    return table.staged_columns


def tokenised_columns(table: SourceTable) -> list[str]:
    """A tokenised drop's header: the extract's line number, the quarantine entry, the record
    key token, the kept columns, then the identity columns (tokens, encodings, derived)."""
    identity = list(IDENTITY_COLUMNS) if has_identity(table) else []
    return [LINE, QUARANTINE, "record_ref", *kept_columns(table), *identity]


def contract_version(table: SourceTable, form: str = TOKENISED) -> str:
    """A short hash of what a drop of ``table`` in ``form`` holds: its columns and, for the
    tokenised form, the token and encoding scheme. Drops of one provider must agree on it."""
    columns = tokenised_columns(table) if form == TOKENISED else table.columns
    text = f"{FORMAT}|{SCHEME}|{form}|{table.table}|{','.join(columns)}"
    if form == TOKENISED:
        text += f"|token_hex={TOKEN_HEX}|bloom_bits={BLOOM_BITS}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------- the written form


def _as_text(frame: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """Staged rows as the drop's text: dates as YYYY-MM-DD, date-times as YYYY-MM-DDTHH:MM:SS
    (both pass the contract's formats), whole numbers without decimals, missing as empty."""
    out = pd.DataFrame(index=frame.index)
    for c in frame.columns:
        s = frame[c]
        if c in table.date_columns:
            text = pd.to_datetime(s).dt.strftime("%Y-%m-%d")
        elif c in table.datetime_columns:
            text = pd.to_datetime(s).dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            text = s.astype("string")
        out[c] = text.astype("string").fillna("")
    return out


def _may_need_quotes(a: arrow.Array) -> bool:
    """Whether a string array's data buffer holds a quote or a comma anywhere (a superset of
    its values: the exact test per value follows only when it does)."""
    data = a.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool((raw == ord('"')).any() or (raw == ord(",")).any())


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Rows of text as CSV lines in UTF-8 (a field with a comma or a quote quoted, its quotes
    doubled; no field holds a line break), as `read_drop` reads them back. Built column-wise
    in Arrow's compute kernels and read out of the joined column's one buffer: no Python work
    per row, and the bytes are written and hashed as they are (no text encoded twice)."""
    if frame.empty:
        return b""

    def text(v: str) -> arrow.Scalar:
        return arrow.scalar(v, arrow.large_string())

    cols = []
    for c in frame.columns:
        s = frame[c]
        a = arrow.array(s if isinstance(s.dtype, pd.StringDtype) else s.astype("string"))
        if isinstance(a, arrow.ChunkedArray):  # one buffer per column: the kernels run once
            a = a.combine_chunks()
        a = pc.fill_null(a.cast(arrow.large_string()), text(""))
        if _may_need_quotes(a):  # most columns (tokens, codes, dates) hold neither
            quote = pc.or_(pc.match_substring(a, '"'), pc.match_substring(a, ","))
            doubled = pc.replace_substring(a, '"', '""')
            a = pc.if_else(
                quote, pc.binary_join_element_wise(text('"'), doubled, text('"'), text("")), a
            )
        cols.append(a)
    # the fields joined by commas, a newline after each line; the text is the joined column's
    # one data buffer between its first and last offsets
    lines = pc.binary_join_element_wise(*cols, text(","))
    lines = pc.binary_join_element_wise(lines, text("\n"), text(""))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    start, end = int(offsets[0]), int(offsets[len(lines)])
    return lines.buffers()[2].slice(start, end - start).to_pybytes()


def _quarantine_entries(quarantine: pd.DataFrame) -> pd.Series:
    """Quarantine rows (line_number, column_name, rule, reason) as one JSON entry per line."""
    if quarantine.empty:
        return pd.Series(dtype="string")
    q = quarantine.sort_values(
        ["line_number", "rule", "column_name"], na_position="first", kind="stable"
    )
    entries: dict[int, list[list[object]]] = {}
    for line, column, rule, reason in q[QUARANTINE_COLUMNS].itertuples(index=False):
        column = None if pd.isna(column) else str(column)
        entries.setdefault(int(line), []).append([column, str(rule), str(reason)])
    return pd.Series(
        {line: json.dumps(e, separators=(",", ":")) for line, e in entries.items()},
        dtype="string",
    )


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


@dataclass
class _Seen:
    """Hashes of the rows and record keys (with their file) of the chunks already read, so that
    repeats are judged over the whole file as ingest judges them: a row that repeats an earlier
    one is ``duplicate_row``; else a row whose record key repeats an earlier row's is
    ``duplicate_record_ref``. About 150 bytes a row (two sets of 64-bit hashes)."""

    rows: set[int] = field(default_factory=set)
    keys: set[int] = field(default_factory=set)

    def repeats(self, data: pd.DataFrame, record_ref: str) -> tuple[np.ndarray, np.ndarray]:
        """(repeated row, repeated key) masks of ``data`` (contract columns and ``file``, in
        file order) against the earlier chunks and earlier rows of this one; then remember
        this chunk's."""
        row_h = _row_hashes(data)
        key_h = _row_hashes(data[["file", record_ref]])
        row_before = np.fromiter((h in self.rows for h in row_h.tolist()), bool, len(row_h))
        key_before = np.fromiter((h in self.keys for h in key_h.tolist()), bool, len(key_h))
        dup_row = row_before | pd.Series(row_h).duplicated(keep="first").to_numpy()
        dup_key = key_before | pd.Series(key_h).duplicated(keep="first").to_numpy()
        self.rows.update(row_h.tolist())
        self.keys.update(key_h.tolist())
        return dup_row, dup_key & ~dup_row


@dataclass
class TokeniseResult:
    """What `tokenise_file` wrote."""

    drop: Path
    manifest: Path
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    identifiers_nulled: int
    sha256: str
    contract_version: str
    key_fingerprint: str


def _refuse_findings(labels: list[str], found: dict[str, dict[str, int]]) -> None:
    if found:
        detail = "; ".join(f"{c}: {', '.join(sorted(r))}" for c, r in sorted(found.items()))
        raise TokeniseRefused(
            f"{', '.join(labels)}: identifier-like content where none may travel ({detail}); "
            "nothing was written. Remove it from the extract and tokenise again."
        )


def _findings(good: pd.DataFrame, staged: pd.DataFrame, table: SourceTable) -> dict:
    """What ingest checks before writing: the record keys as sent, then the staged values,
    against generic identifier shapes and the rows' own identifiers."""
    matcher = IdentifierMatcher(frame_identifiers([(table, good)], own_vocabulary_cached()))
    keys = ["record_ref", *table.key_columns]
    found = find_identifier_like(raw_record_keys(good, table), matcher, keys)
    for col, rules in find_identifier_like(staged, matcher, token_columns=keys).items():
        found.setdefault(col, {}).update(rules)
    return found


def tokenise_rows(
    rows: pd.DataFrame,
    bad_shape: pd.DataFrame,
    table: SourceTable,
    tokeniser: Tokeniser,
    seen: _Seen | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records of one or more files of ``table`` (text, with ``file``, ``line_number``,
    ``month`` and ``source``) and their bad-shape lines (``file``, ``line_number``, ...) as the
    drops' lines (with ``file``, sorted by file and line), and per file (loaded, quarantined,
    identifiers nulled). ``seen`` carries repeats across chunks of one file."""
    rows = rows.reset_index(drop=True)
    month_end = pd.to_datetime(rows["month"] + "-01") + pd.offsets.MonthEnd(0)
    labels = sorted({*rows["file"].unique().tolist(), *bad_shape["file"].unique().tolist()})
    try:
        good, quarantine = validate_rows(rows, table, month_end.set_axis(rows.index))
    except DropFileError as exc:
        raise TokeniseRefused(
            f"{', '.join(labels)}: {exc.problem} (rule {exc.rule}); nothing was written"
        ) from None
    if seen is not None:  # repeats judged over the file so far, not the chunk alone
        dup_row, dup_key = seen.repeats(rows[[*table.columns, "file"]], table.record_ref)
        repeat_rules = quarantine["rule"].isin(["duplicate_row", "duplicate_record_ref"])
        quarantine = quarantine[~repeat_rules]
        extra = []
        for mask, rule, reason in (
            (dup_row, "duplicate_row", _DUPLICATE_REASONS["duplicate_row"]),
            (
                dup_key,
                "duplicate_record_ref",
                f"{table.record_ref} repeats an earlier row in the file",
            ),
        ):
            if mask.any():
                extra.append(
                    rows.loc[mask, ["file", "line_number"]].assign(
                        column_name=table.record_ref, rule=rule, reason=reason
                    )
                )
        if extra:
            quarantine = pd.concat([quarantine, *extra], ignore_index=True)
            gone = pd.concat(extra)[["file", "line_number"]]
            drop = pd.MultiIndex.from_frame(good[["file", "line_number"]]).isin(
                pd.MultiIndex.from_frame(gone)
            )
            good = good[~drop]
        quarantine = quarantine.sort_values(
            ["file", "line_number", "rule", "column_name"], na_position="first", ignore_index=True
        )
    sources = rows.loc[good.index, "source"].reset_index(drop=True)
    staged = staged_rows(good, table, tokeniser, sources)
    found = _findings(good, staged, table)
    if found and len(labels) > 1:  # name the file(s): each alone
        labels = [
            f
            for f in labels
            if _findings(good[good["file"] == f], staged[(good["file"] == f).to_numpy()], table)
        ]
    _refuse_findings(labels, found)

    body = _as_text(staged.drop(columns=LINE), table)
    # text columns throughout (Arrow strings), so the drop's bytes are joined without
    # converting Python objects (`csv_bytes`)
    body.insert(0, QUARANTINE, pd.Series("", index=body.index, dtype="string"))
    body.insert(0, LINE, staged[LINE].astype("int64").astype("string").to_numpy())
    body.insert(0, "file", good["file"].to_numpy())
    body["_line"] = staged[LINE].to_numpy()
    q_all = pd.concat(
        [x for x in (quarantine[["file", *QUARANTINE_COLUMNS]], bad_shape) if len(x)]
        or [quarantine[["file", *QUARANTINE_COLUMNS]]],
        ignore_index=True,
    )
    held_parts = []
    for label, q in q_all.groupby("file", sort=True):
        entries = _quarantine_entries(q)
        held = pd.DataFrame(
            "", index=range(len(entries)), columns=body.columns[:-1], dtype="string"
        )
        held["file"] = label
        held[LINE] = entries.index.astype(str)
        held[QUARANTINE] = entries.to_numpy()
        held["_line"] = entries.index.to_numpy()
        held_parts.append(held)
    out = pd.concat([body, *held_parts], ignore_index=True).sort_values(
        ["file", "_line"], kind="stable"
    )
    defects = (
        staged[DEFECTS_COLUMN].str.count(":").fillna(0).astype("int64")
        if DEFECTS_COLUMN in staged
        else pd.Series(0, index=staged.index)
    )
    counts = (
        pd.DataFrame(
            {
                "loaded": body.groupby("file").size(),
                "quarantined": pd.Series(
                    {h["file"].iloc[0]: len(h) for h in held_parts}, dtype="int64"
                ),
                "nulled": defects.groupby(good["file"].to_numpy()).sum(),
            }
        )
        .reindex(labels)
        .fillna(0)
        .astype("int64")
    )
    return out.drop(columns="_line")[["file", *tokenised_columns(table)]], counts


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def manifest_path(drop: Path) -> Path:
    return drop.with_name(drop.name + MANIFEST_SUFFIX)


def _check_target(table: SourceTable, source: str, month: str) -> None:
    if source not in table.providers:
        raise TokeniseRefused(
            f"{source} does not send {table.table} (its providers: {', '.join(table.providers)})"
        )
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
        raise TokeniseRefused(f"month {month!r} is not YYYY-MM")


def _finish(
    tmp: Path,
    out: Path,
    sha: str,
    table: SourceTable,
    source: str,
    month: str,
    tokeniser: Tokeniser,
    counts: tuple[int, int, int, int],
) -> TokeniseResult:
    """The manifest written, then the drop moved into place beside it."""
    read, loaded, quarantined, nulled = counts
    version = contract_version(table)
    body = {
        "format": FORMAT,
        "scheme": SCHEME,
        "source": source,
        "table": table.table,
        "month": month,
        "contract_version": version,
        "key_fingerprint": tokeniser.key_id,
        "key_fingerprint_scheme": KEY_FINGERPRINT_SCHEME,
        "demo_key": tokeniser.demo,
        "rows": {
            "read": read,
            "loaded": loaded,
            "quarantined": quarantined,
            "identifiers_nulled": nulled,
        },
        "drop": {"name": out.name, "sha256": sha, "bytes": tmp.stat().st_size},
    }
    manifest = manifest_path(out)
    _write_atomic(manifest, json.dumps(body, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return TokeniseResult(out, manifest, *counts, sha, version, tokeniser.key_id)


def tokenise_file(
    raw: Path,
    out: Path,
    table: SourceTable,
    source: str,
    month: str,
    tokeniser: Tokeniser,
    chunk_lines: int = DEFAULT_CHUNK_LINES,
    on_chunk: Callable[[int], None] | None = None,
) -> TokeniseResult:
    """Tokenise the raw extract ``raw`` of ``table`` from ``source`` for ``month`` into the
    drop ``out`` and its manifest (`manifest_path`). Streams: a chunk of ``chunk_lines`` lines
    at a time. The drop is written beside ``out`` and moved into place after its manifest, so a
    landing never holds a tokenised drop without its manifest; on any refusal nothing is left.
    ``on_chunk`` is told the lines read so far."""
    _check_target(table, source, month)
    label = raw.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    digest = hashlib.sha256()
    seen = _Seen()
    loaded = quarantined = nulled = read = 0
    header = (",".join(tokenised_columns(table)) + "\n").encode()
    try:
        with tmp.open("wb") as fh:
            fh.write(header)
            digest.update(header)
            for chunk in iter_drop(raw, table, label, chunk_lines):
                rows = chunk.frame.assign(
                    file=label, line_number=chunk.frame.index.to_numpy(), month=month, source=source
                )
                lines, counts = tokenise_rows(
                    rows, chunk.bad_shape.assign(file=label), table, tokeniser, seen
                )
                data = csv_bytes(lines.drop(columns="file"))
                fh.write(data)
                digest.update(data)
                loaded += int(counts["loaded"].sum())
                quarantined += int(counts["quarantined"].sum())
                nulled += int(counts["nulled"].sum())
                read += chunk.rows_read
                if on_chunk is not None:
                    on_chunk(read)
    except DropFileError as exc:
        tmp.unlink(missing_ok=True)
        raise TokeniseRefused(f"{exc} (rule {exc.rule}); nothing was written") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    counts = (read, loaded, quarantined, nulled)
    return _finish(tmp, out, digest.hexdigest(), table, source, month, tokeniser, counts)


def tokenise_files(
    jobs: list[tuple[Path, Path, str, str]], table: SourceTable, tokeniser: Tokeniser
) -> list[TokeniseResult]:
    """Small extracts of one table (``(raw, out, source, month)`` each) tokenised together:
    read whole, validated, staged and checked in one pass (a pass has fixed costs of about a
    quarter of a second), then each written as its own drop and manifest, byte for byte what
    `tokenise_file` writes for it. For many small files (the demo, tests); a provider's
    extract of any size goes through `tokenise_file`, which streams."""
    if not jobs:
        return []
    frames, bad, read = [], [], {}
    for raw, _, source, month in jobs:
        _check_target(table, source, month)
        label = str(raw)
        try:
            d = read_drop(raw, table, label)
        except DropFileError as exc:
            raise TokeniseRefused(f"{exc} (rule {exc.rule}); nothing was written") from None
        frames.append(
            d.frame.assign(
                file=label, line_number=d.frame.index.to_numpy(), month=month, source=source
            )
        )
        bad.append(d.bad_shape.assign(file=label))
        read[label] = d.rows_read
    rows = pd.concat(frames, ignore_index=True)
    bad_shape = pd.concat(bad, ignore_index=True)
    lines, counts = tokenise_rows(rows, bad_shape, table, tokeniser)
    header = ",".join(tokenised_columns(table)) + "\n"
    by_file = dict(tuple(lines.groupby("file", sort=False)))
    results = []
    for raw, out, source, month in jobs:
        label = str(raw)
        part = by_file.get(label)
        data = header.encode() + (csv_bytes(part.drop(columns="file")) if part is not None else b"")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        c = counts.loc[label] if label in counts.index else pd.Series(0, index=counts.columns)
        n = (read[label], int(c["loaded"]), int(c["quarantined"]), int(c["nulled"]))
        sha = hashlib.sha256(data).hexdigest()
        results.append(_finish(tmp, out, sha, table, source, month, tokeniser, n))
    return results


# -------------------------------------------------------------------------------- at the landing


class _SchemaContract:
    """A pandera schema where ingest's validation expects a contract model."""

    __module__ = __name__
    __name__ = "TokenisedContract"

    def __init__(self, schema: pa.DataFrameSchema) -> None:
        self._schema = schema

    def to_schema(self) -> pa.DataFrameSchema:
        return self._schema

    def validate(self, frame: pd.DataFrame, lazy: bool = True) -> pd.DataFrame:
        return self._schema.validate(frame, lazy=lazy)


def _form_check(pattern: str, what: str) -> pa.Check:
    rx = re.compile(pattern)
    return pa.Check(
        lambda s: s.str.fullmatch(rx).fillna(False).astype(bool),
        name="token_format",
        error=f"{TOKENISED_RULES['token_format']} ({what})",
    )


TOKEN_RE = rf"[0-9a-f]{{{TOKEN_HEX}}}"
BLOOM_RE = rf"[0-9a-f]{{{BLOOM_BITS // 4}}}"
DISTRICT_RE = r"[A-Z]{1,2}[0-9][A-Z0-9]?"


def _identity_check(column: str, table: SourceTable) -> pa.Check:
    if column.endswith("_token"):
        return _form_check(TOKEN_RE, "a keyed token: 32 hex digits")
    if column.endswith("_bf"):
        return _form_check(BLOOM_RE, "a name encoding: 256 hex digits")
    if column == "postcode_district":
        return _form_check(DISTRICT_RE, "a postcode district")
    if column == "person_sex":
        return _form_check("M|F|U", "M, F or U")
    if column == "age_band":
        return _form_check("|".join(re.escape(b[2]) for b in AGE_BANDS), "an age band")
    raw = "|".join(re.escape(c) for c in table.identifiers.raw_columns()) or "(?!)"
    entry = rf"(?:{raw}):[a-z_0-9]+"
    return _form_check(rf"{entry}(?:,{entry})*", "identifier column:rule, comma-separated")


def tokenised_table(table: SourceTable) -> SourceTable:
    """``table``'s tokenised form as a contract ingest's validation can apply: every kept
    column with its contract checks (cross-column rules were applied by the provider), the
    record key and key columns as tokens, the identity columns by their forms."""
    raw_schema = table.contract.to_schema()
    cols: dict[str, pa.Column] = {
        "record_ref": pa.Column(
            str, nullable=False, checks=[_form_check(TOKEN_RE, "a keyed token: 32 hex digits")]
        )
    }
    keys = set(table.key_columns)
    for c in kept_columns(table):
        if c in keys:
            cols[c] = pa.Column(
                str,
                nullable=raw_schema.columns[c].nullable,
                checks=[_form_check(TOKEN_RE, "a keyed token: 32 hex digits")],
            )
        else:
            cols[c] = raw_schema.columns[c]
    if has_identity(table):
        for c in IDENTITY_COLUMNS:
            if c != DEFECTS_COLUMN:  # carried apart: validation adds its own column of it
                cols[c] = pa.Column(str, nullable=True, checks=[_identity_check(c, table)])
    schema = pa.DataFrameSchema(cols, strict=False, coerce=False)
    return SourceTable(
        asset_name=table.asset_name,
        table=table.table,
        providers=table.providers,
        contract=_SchemaContract(schema),  # type: ignore[arg-type]
        record_ref="record_ref",
        identifiers=IdentifierColumns(event_date=table.identifiers.event_date),
    )


def known_reasons(table: SourceTable) -> dict[str, set[str]]:
    """Every rule a provider's quarantine entry may name, with its fixed reason text(s)."""
    out: dict[str, set[str]] = {}
    for rule, reason in check_names(table).values():
        out.setdefault(rule, set()).add(reason)
    for rule, reason in BUILTIN_REASONS.items():
        out.setdefault(rule, set()).add(reason)
    out.setdefault("date_out_of_range", set()).add(DATE_RANGE_REASON)
    out.setdefault("duplicate_row", set()).add(_DUPLICATE_REASONS["duplicate_row"])
    out.setdefault("duplicate_record_ref", set()).add(
        f"{table.record_ref} repeats an earlier row in the file"
    )
    for rule, reason in LINE_RULES.items():
        if rule != "field_count":
            out.setdefault(rule, set()).add(reason)
    return out


def defect_labels(table: SourceTable) -> set[str]:
    """Every ``column:rule`` an identifier defect of ``table`` can be named by (the
    identifier columns with the contract rules that can null them)."""
    rules = set(known_reasons(table))
    return {f"{c}:{r}" for c in table.identifiers.raw_columns() for r in rules}


@dataclass
class Manifest:
    """A tokenised drop's manifest, as read (unchecked)."""

    body: dict[str, object]

    @property
    def key_fingerprint(self) -> str:
        return str(self.body.get("key_fingerprint", ""))

    @property
    def contract_version(self) -> str:
        return str(self.body.get("contract_version", ""))

    @property
    def demo_key(self) -> bool:
        return self.body.get("demo_key") is True


def read_manifest(path: Path, label: str) -> Manifest:
    """The manifest beside a drop; `DropFileError` (``manifest_invalid``) when it is not a
    small JSON object."""
    try:
        data = path.read_bytes()[: MAX_MANIFEST_BYTES + 1]
        if len(data) > MAX_MANIFEST_BYTES:
            raise ValueError("too large")
        body = json.loads(data.decode("utf-8"))
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        raise DropFileError(
            label, f"its manifest cannot be read ({type(exc).__name__})", "manifest_invalid"
        ) from None
    return Manifest(body)


def check_manifest(
    manifest: Manifest, table: SourceTable, source: str, month: str, sha256: str, label: str
) -> None:
    """`DropFileError` unless the manifest is of this format, place and content, under the
    contract version ingest reads."""
    b = manifest.body
    forms = {
        "contract_version": CONTRACT_VERSION_RE,
        "key_fingerprint": KEY_FINGERPRINT_RE,
    }
    bad_form = sorted(k for k, rx in forms.items() if not rx.fullmatch(str(b.get(k, ""))))
    if bad_form or not isinstance(b.get("demo_key", False), bool):
        raise DropFileError(  # the manifest's text is never repeated: it is the sender's
            label,
            f"its manifest's {', '.join(bad_form) or 'demo_key'} is not in its form",
            "manifest_invalid",
        )
    expected = {"format": FORMAT, "scheme": SCHEME, "source": source, "table": table.table}
    expected["month"] = month
    wrong = sorted(k for k, v in expected.items() if b.get(k) != v)
    drop = b.get("drop") if isinstance(b.get("drop"), dict) else {}
    if drop.get("sha256") != sha256:  # type: ignore[union-attr]
        wrong.append("drop.sha256")
    if wrong:
        raise DropFileError(
            label,
            f"its manifest does not match the drop ({', '.join(wrong)})",
            "manifest_mismatch",
        )
    if manifest.contract_version != contract_version(table):
        raise DropFileError(
            label,
            f"tokenised under another contract version than ingest reads "
            f"({contract_version(table)}): tokenise the extract again with this version",
            "contract_version",
        )


@dataclass
class TokenisedDrop:
    """A tokenised drop as read at the landing: its staged rows (without source, month,
    source_file, key_id), quarantine rows, the data lines read and its manifest."""

    staged: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    sha256: str
    manifest: Manifest
    rows_quarantined: int  # lines, each once whatever rules it broke


def _entry_rows(
    text: pd.Series, lines: pd.Series, table: SourceTable
) -> tuple[pd.DataFrame, pd.Series]:
    """The provider's quarantine entries as quarantine rows (``file`` added by the caller),
    and which lines' entries were not acceptable: not a JSON list of [column, rule, reason],
    a rule ingest does not know or not with its fixed text, a column not in the contract, or
    no valid line number of the extract (``lines``: whole numbers, or None)."""
    known = known_reasons(table)
    rows: list[tuple[int, object, str, str]] = []
    bad = pd.Series(False, index=text.index)
    for i, raw, line in zip(text.index, text.to_list(), lines.to_list(), strict=True):
        parsed = []
        try:
            entries = json.loads(raw)
            ok = isinstance(entries, list) and bool(entries) and line is not None
            for e in entries if ok else []:
                column, rule, reason = e
                fits = reason in known.get(rule, ()) or (
                    rule == "field_count" and bool(_FIELD_COUNT.fullmatch(str(reason)))
                )
                if not fits or not (column is None or column in table.columns):
                    ok = False
                    break
                parsed.append((int(line), column, rule, reason))
        except (ValueError, TypeError):
            ok = False
        if ok:
            rows += parsed
        else:
            bad[i] = True
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS), bad


@dataclass
class ParsedTokenised:
    """A tokenised drop after its own checks (manifest, lines, entries), before its rows'
    contract checks, which `validate_tokenised` makes for many drops at once."""

    label: str
    month: str
    rows: pd.DataFrame  # the lines to validate: the form's columns, file, line_number
    defects: pd.Series | None  # their identifier_defects (checked), aligned with rows
    quarantine: list[pd.DataFrame]  # rows quarantined so far (file, line_number, ...)
    quarantined: int  # lines quarantined so far
    rows_read: int
    sha256: str
    manifest: Manifest


def parse_tokenised(
    path: Path,
    table: SourceTable,
    source: str,
    month: str,
    label: str,
    data: bytes,
    manifest: Manifest,
) -> ParsedTokenised:
    """A tokenised drop of ``table`` from ``source`` for ``month`` (its bytes ``data``): the
    manifest checked (`check_manifest`), each line's number, the provider's quarantine entries
    (`_entry_rows`) and identifier defects checked; what is left to validate against the
    tokenised form. A line the landing's own rules quarantine (`TOKENISED_RULES`) is
    quarantined at the drop's own line number, every other at the extract's."""
    sha = hashlib.sha256(data).hexdigest()
    check_manifest(manifest, table, source, month, sha, label)
    drop = read_drop(path, table, label, data, columns=tokenised_columns(table))
    frame = drop.frame
    # the extract's line numbers: digits only, from 2, each after the one before
    text = frame[LINE].astype("string")
    shaped = text.str.fullmatch(LINE_RE).fillna(False).astype(bool)
    number = pd.to_numeric(text.where(shaped), errors="coerce").astype("Int64")
    before = number.where(shaped).astype("Float64").cummax().ffill().shift(1).fillna(1)
    valid = shaped & (number >= 2).fillna(False) & (number > before).fillna(False)
    lines = number.where(valid)
    held = frame[QUARANTINE].notna()
    quarantines = [drop.bad_shape.assign(file=label)]

    def own(mask: pd.Series, rule: str) -> None:
        if mask.any():
            quarantines.append(
                pd.DataFrame(
                    {
                        "file": label,
                        "line_number": frame.index[mask.to_numpy()].to_numpy(dtype="int64"),
                        "column_name": None,
                        "rule": rule,
                        "reason": TOKENISED_RULES[rule],
                    }
                )
            )

    held_lines = [None if pd.isna(v) else int(v) for v in lines[held].tolist()]
    entries, bad_entries = _entry_rows(
        frame.loc[held, QUARANTINE], pd.Series(held_lines, index=lines[held].index), table
    )
    # a quarantined line carries nothing but its number and entry
    values = frame.drop(columns=[LINE, QUARANTINE]).notna().any(axis=1)
    bad_entries = (bad_entries | values[held]).reindex(frame.index, fill_value=False)
    own(held & bad_entries, "quarantine_entry")
    accepted = set(lines[held & ~bad_entries].astype("int64").tolist())
    if len(entries):
        quarantines.append(entries[entries["line_number"].isin(accepted)].assign(file=label))
    bad_line = ~held & ~valid
    own(bad_line, "line_number_invalid")
    # identifier_defects: only the table's identifier columns with their rules, as validation
    # writes them (sorted, comma-joined), never free text
    bad_defects = pd.Series(False, index=frame.index)
    if DEFECTS_COLUMN in frame.columns:
        d = frame[DEFECTS_COLUMN]
        allowed = defect_labels(table)
        bad_defects = d.notna() & ~d.map(
            lambda v: (
                isinstance(v, str)
                and (parts := v.split(",")) == sorted(set(parts))
                and set(parts) <= allowed
            )
        ).astype(bool)
        bad_defects &= ~held & ~bad_line
        own(bad_defects, "identifier_defects_invalid")
    rest = frame[~held & ~bad_line & ~bad_defects]
    form = tokenised_table(table)
    defects = (
        rest[DEFECTS_COLUMN].reset_index(drop=True) if DEFECTS_COLUMN in rest.columns else None
    )
    rows = rest[form.columns].assign(
        file=label, line_number=lines[rest.index].astype("int64").to_numpy()
    )
    quarantined = int(held.sum() + bad_line.sum() + bad_defects.sum()) + len(drop.bad_shape)
    return ParsedTokenised(
        label,
        month,
        rows.reset_index(drop=True),
        defects,
        quarantines,
        quarantined,
        drop.rows_read,
        sha,
        manifest,
    )


def validate_tokenised(parsed: list[ParsedTokenised], table: SourceTable) -> list[TokenisedDrop]:
    """The parsed drops' rows validated against the tokenised form (`tokenised_table`) in one
    pass (a pass has fixed costs of about a twentieth of a second; a backfill reads hundreds
    of drops), then each drop's staged rows and quarantine, as `read_tokenised` gives them."""
    if not parsed:
        return []
    form = tokenised_table(table)
    rows = pd.concat([p.rows for p in parsed], ignore_index=True)
    ends = {p.label: pd.Timestamp(f"{p.month}-01") + pd.offsets.MonthEnd(0) for p in parsed}
    month_end = pd.Series(rows["file"].map(ends).to_numpy(), index=rows.index)
    good, quarantine = validate_rows(rows, form, month_end)
    staged_all = coarsened(typed(good[form.columns], table), table)
    tokens = {"record_ref", *table.key_columns, *IDENTITY_COLUMNS}
    for c in [c for c in staged_all.columns if c in tokens]:
        staged_all[c] = staged_all[c].astype("string")
    has_defects = parsed[0].defects is not None
    if has_defects:
        defects = pd.concat([p.defects for p in parsed], ignore_index=True)
        staged_all[DEFECTS_COLUMN] = defects.loc[good.index].astype("string")
        identity = list(IDENTITY_COLUMNS)
        staged_all = staged_all[[c for c in staged_all.columns if c not in identity] + identity]
    staged_all[LINE] = good["line_number"].astype("int64")
    out = []
    for p in parsed:
        mine = (good["file"] == p.label).to_numpy()
        staged = staged_all[mine].reset_index(drop=True)
        found = [q for q in (*p.quarantine, quarantine[quarantine["file"] == p.label]) if len(q)]
        q = (
            pd.concat(found, ignore_index=True)[["file", *QUARANTINE_COLUMNS]]
            if found
            else pd.DataFrame(columns=["file", *QUARANTINE_COLUMNS])
        )
        # as ingest's own quarantine rows hold it: text, or None for a row-level rule
        q["column_name"] = q["column_name"].astype(object).where(q["column_name"].notna(), None)
        # every line read is loaded or quarantined, counted here (line numbers of two kinds,
        # the extract's and the drop's own, may coincide in the quarantine rows)
        quarantined = p.quarantined + len(p.rows) - len(staged)
        out.append(TokenisedDrop(staged, q, p.rows_read, p.sha256, p.manifest, quarantined))
    return out


def read_tokenised(
    path: Path,
    table: SourceTable,
    source: str,
    month: str,
    label: str,
    data: bytes,
    manifest: Manifest,
) -> TokenisedDrop:
    """One tokenised drop read at the landing: `parse_tokenised` then `validate_tokenised`."""
    parsed = parse_tokenised(path, table, source, month, label, data, manifest)
    return validate_tokenised([parsed], table)[0]


def drop_inconsistencies(ledger: pd.DataFrame, key_id: str) -> list[str]:
    """What is wrong with a run's drops taken together (empty when nothing): a tokenised drop
    made under another key than the pipeline's (its tokens would link to nothing), or one
    provider's tokenised drops under more than one key or contract version. Names files,
    providers, fingerprints and versions, never a value."""
    if ledger.empty or "drop_form" not in ledger:
        return []
    tok = ledger[ledger["drop_form"] == TOKENISED]
    problems = [
        f"{r.file}: tokenised under key {r.key_id}, the pipeline's is {key_id}"
        for r in tok.itertuples()
        if pd.notna(r.key_id) and r.key_id != key_id
    ]
    for source, drops in tok.groupby("source", sort=True):
        for column, what in (("key_id", "keys"), ("contract_version", "contract versions")):
            values = sorted(str(v) for v in drops[column].dropna().unique())
            if len(values) > 1:
                problems.append(
                    f"{source}: tokenised drops under {len(values)} {what} ({', '.join(values)})"
                )
    return problems


def providers_named(names: str | list[str]) -> list[str]:
    """Provider folders from names: a provider (``met_police``), a kind of provider
    (``police``, ``ambulance``, ``ae``, ``mental_health``) or ``all``. `ValueError` naming an
    unknown one."""
    from sim_pipeline.identity.scoring import source_group
    from sim_pipeline.sources import SOURCE_TABLES

    everyone = sorted({s for t in SOURCE_TABLES for s in t.providers})
    groups = dict(zip(everyone, source_group(pd.Series(everyone)).tolist(), strict=True))
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    out: set[str] = set()
    for name in [n for n in wanted if n]:
        hits = everyone if name == "all" else [s for s in everyone if name in (s, groups[s])]
        if not hits:
            raise ValueError(
                f"unknown provider {name!r}: a provider ({', '.join(everyone)}), a kind "
                "(police, ambulance, ae, mental_health) or all"
            )
        out |= set(hits)
    return sorted(out)


def tokenise_landing(
    landing: Path, sources: list[str], tokeniser: Tokeniser, months: list[str] | None = None
) -> list[TokeniseResult]:
    """Every drop of ``sources`` under ``landing`` (of ``months``, default all) tokenised in
    place, as each provider would before sending it (the synthetic demo's tokenised mode, and
    the tests'), a table at a time (`tokenise_files`). Each file's modification time (its
    arrival) is kept."""
    from sim_pipeline.landing.layout import Landing
    from sim_pipeline.sources import SOURCE_TABLES

    land = Landing(landing)
    months = land.months() if months is None else months
    results = []
    for table in SOURCE_TABLES:
        drops = [
            d
            for d in land.present(months, [table])
            if d.source in sources and not manifest_path(d.path).exists()
        ]
        moved = []
        try:
            for d in drops:
                raw = d.path.with_name(f".{d.path.name}.raw")
                os.replace(d.path, raw)
                moved.append((d, raw, raw.stat()))
            results += tokenise_files(
                [(raw, d.path, d.source, d.month) for d, raw, _ in moved], table, tokeniser
            )
        except BaseException:
            for d, raw, _ in moved:  # as it was: the raw drop back, no manifest beside it
                if raw.exists():
                    manifest_path(d.path).unlink(missing_ok=True)
                    os.replace(raw, d.path)
            raise
        for d, raw, stat in moved:
            raw.unlink()
            os.utime(d.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return results
