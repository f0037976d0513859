"""Great Expectations suites: evidence an auditor can read in Data Docs.

Suites are plain data (`Suite` of `Expectation`s) built from the provider contracts and the data
dictionary, so they can be listed, documented and tested without Great Expectations. `validate`
imports GX lazily (the import costs seconds and the Dagster code location must load without it),
runs a suite over a DataFrame in the project's GX file context under ``<quality dir>/gx``,
stores the validation result and updates the Data Docs site.

Privacy by construction: results are kept at ``SUMMARY`` level with no unexpected values
(``partial_unexpected_count = 0``), so neither the stored results, the Data Docs pages nor the
warehouse table `quality_results` ever hold a data value, only counts. Observed values are
kept only for table-level expectations (row counts, column sets).

Suites:
- ``<staged table>.drops``: one row per landing file of a run (from the ingest ledger): every
  expected provider drop present, every file read, rows_read = loaded + quarantined, and
  quarantined rows within their allowance.
- ``<staged table>.table``: the staged rows about to be written: columns exactly as the data
  dictionary documents (so no raw identifier column), completeness, code lists, formats,
  uniqueness of the record key, date and count ranges, and the row count the ledger implies.
- ``person_month_metrics.table`` / ``person_month_costs.table``: completeness, one row per
  person and month, no negative or impossible counts or costs, one price year and unit-cost
  version, and the row count the asset's inputs imply.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from sim_pipeline.identity.normalise import AGE_BANDS
from sim_pipeline.identity.record_keys import RECORD_KEY_TOKEN
from sim_pipeline.identity.tokens import BLOOM_BITS, TOKEN_HEX
from sim_pipeline.quality.redact import masked
from sim_pipeline.quality.tables import QualityResults
from sim_pipeline.sources.base import SourceTable
from sim_pipeline.warehouse.model import WarehouseTable, columns, table_name

DATASOURCE = "sim_pipeline"
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
# A file may quarantine up to this share of its rows (or MIN_ALLOWANCE rows, whichever is
# larger: a 7-row register file with one bad date is not a broken extract).
QUARANTINE_SHARE = 0.02
MIN_ALLOWANCE = 5
EARLIEST_DATE = "1900-01-01"

RESULT_COLUMNS = columns(QualityResults)


@dataclass(frozen=True)
class Expectation:
    """One GX expectation: its GX class name, arguments, our category and the auditor's note."""

    kind: str  # GX 1.x class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: Mapping[str, Any]
    category: str  # completeness | code_list | format | uniqueness | range | row_count | schema
    note: str

    @property
    def columns(self) -> str:
        k = self.kwargs
        if "column" in k:
            return str(k["column"])
        if "column_list" in k:
            return ", ".join(k["column_list"])
        if "column_A" in k:
            return f"{k['column_A']}, {k['column_B']}"
        return ""


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. "staged_ecds.table"
    asset: str  # the Dagster asset / warehouse table it describes
    expectations: tuple[Expectation, ...]

    def __len__(self) -> int:
        return len(self.expectations)


@dataclass
class SuiteOutcome:
    """What one validation found: one row per expectation (RESULT_COLUMNS) and its docs page."""

    suite: Suite
    results: pd.DataFrame
    docs_page: Path | None = None
    seconds: float = 0.0  # validation, storing the result and updating Data Docs
    success: bool = field(init=False)

    def __post_init__(self) -> None:
        self.success = bool(self.results["success"].all()) if len(self.results) else True

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[~self.results["success"].astype(bool)]

    def failure_lines(self) -> list[str]:
        """One plain sentence per failed expectation (counts only, never values)."""
        out = []
        for r in self.failed.itertuples(index=False):
            where = f" on {r.column_names}" if r.column_names else ""
            if pd.notna(r.unexpected_count):
                detail = f"{int(r.unexpected_count)} of {int(r.element_count)} rows"
            elif isinstance(r.observed_value, str) and r.observed_value:
                detail = f"observed {r.observed_value}"
            else:
                detail = "failed"
            out.append(f"{r.category}: {r.expectation}{where}: {detail} ({r.note})")
        return out


# -- suites -------------------------------------------------------------------------------


def _e(kind: str, category: str, note: str, **kwargs: Any) -> Expectation:
    return Expectation(kind, kwargs, category, note)


def _month_end(month: str) -> str:
    return (pd.Period(month, "M").end_time.normalize()).strftime("%Y-%m-%d")


def _contract_rules(table: SourceTable) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """(required columns, code lists, regex formats) of the contract's columns."""
    schema = table.contract.to_schema()
    required, codes, formats = [], {}, {}
    for name, col in schema.columns.items():
        if not col.nullable:
            required.append(name)
        for check in col.checks:
            if check.name == "isin":
                codes[name] = [str(v) for v in check.statistics["allowed_values"]]
            elif check.name == "str_matches":
                formats[name] = str(check.statistics["pattern"])
    return required, codes, formats


def staged_table_suite(
    table: SourceTable, documented_columns: list[str], months: list[str], expected_rows: int
) -> Suite:
    """The suite for a staged table's rows of ``months`` (``expected_rows`` from the ledger:
    rows read minus rows quarantined)."""
    kept = table.staged_columns
    required, codes, formats = _contract_rules(table)
    ex: list[Expectation] = [
        _e(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents: no raw identifier column "
            "(name, NHS number, date of birth, postcode, address) and nothing undocumented.",
            column_set=documented_columns,
            exact_match=True,
        ),
        _e(
            "ExpectTableRowCountToEqual",
            "row_count",
            "Rows equal the ledger's rows read minus rows quarantined for these months: "
            "no row lost or invented between the landing file and the warehouse.",
            value=int(expected_rows),
        ),
        _e(
            "ExpectCompoundColumnsToBeUnique",
            "uniqueness",
            f"The provider's record key ({table.record_ref}) is unique within each provider "
            "and month.",
            column_list=["source", "month", "record_ref"],
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "code_list",
            "Every row comes from a provider that sends this table.",
            value_set=list(table.providers),
            column="source",
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "range",
            "Every row belongs to a month of this run.",
            value_set=list(months),
            column="month",
        ),
    ]
    for c in ["record_ref", "source_file", "line_number", "key_id"] + [
        c for c in required if c in kept
    ]:
        ex.append(
            _e(
                "ExpectColumnValuesToNotBeNull",
                "completeness",
                "Required by the contract or by provenance: never empty.",
                column=c,
            )
        )
    for c, allowed in codes.items():
        if c in kept:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "Only codes from the national code list (sources/codes.py).",
                    column=c,
                    value_set=allowed,
                )
            )
    for c in ["record_ref", *table.key_columns]:
        ex.append(
            _e(
                "ExpectColumnValuesToMatchRegex",
                "format",
                "Provider record keys arrive as keyed tokens (32 hex characters): no key as the "
                "provider sent it.",
                column=c,
                regex=RECORD_KEY_TOKEN,
            )
        )
    for c, pattern in formats.items():
        skip = {*table.key_columns, *table.date_columns, *table.datetime_columns}
        if c in kept and c not in skip:
            ex.append(
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    "Values have the contract's format.",
                    column=c,
                    regex=pattern,
                )
            )
    last = _month_end(max(months)) if months else "2100-01-01"
    for c in [*table.date_columns, *table.datetime_columns]:
        if c in kept:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    f"Dates between {EARLIEST_DATE} and the end of the month after the run's "
                    "last month (an extract cannot describe the future).",
                    column=c,
                    min_value=datetime.fromisoformat(EARLIEST_DATE),
                    max_value=datetime.fromisoformat(_month_end(str(pd.Period(last[:7], "M") + 1))),
                )
            )
    for c in table.int_columns:
        if c in kept:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    "Whole numbers, never negative.",
                    column=c,
                    min_value=0,
                    max_value=None,
                )
            )
    if table.identifiers.raw_columns() or table.identifiers.sex:
        ex += [
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Normalised sex: M, F or U.",
                column="person_sex",
                value_set=["M", "F", "U"],
            ),
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "Age bands used in every published table.",
                column="age_band",
                value_set=[label for _, _, label in AGE_BANDS],
            ),
            _e(
                "ExpectColumnValuesToMatchRegex",
                "format",
                "Postcode district only (outward code): never a full postcode.",
                column="postcode_district",
                regex=r"^[A-Z]{1,2}[0-9][A-Z0-9]?$",
            ),
        ]
        for c in (
            "nhs_number_token",
            "birth_date_token",
            "postcode_unit_token",
        ):
            ex.append(
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    f"A keyed token ({TOKEN_HEX} hex characters), never a raw value.",
                    column=c,
                    regex=f"^[0-9a-f]{{{TOKEN_HEX}}}$",
                )
            )
        for c in ("given_name_bf", "family_name_bf"):
            ex.append(
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    f"A keyed {BLOOM_BITS}-bit Bloom filter (hex), never a raw name.",
                    column=c,
                    regex=f"^[0-9a-f]{{{BLOOM_BITS // 4}}}$",
                )
            )
    return Suite(f"{table.asset_name}.table", table.asset_name, tuple(ex))


def drops_frame(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows of a run with the derived columns the drops suite reads."""
    out = ledger.copy()
    for c in ("rows_read", "rows_loaded", "rows_quarantined"):
        out[c] = pd.to_numeric(out[c]).astype("int64")
    if "file_status" not in out.columns:
        out["file_status"] = "loaded"
    out["rows_accounted"] = out["rows_loaded"] + out["rows_quarantined"]
    out["quarantine_allowance"] = [
        max(math.ceil(QUARANTINE_SHARE * n), MIN_ALLOWANCE) for n in out["rows_read"]
    ]
    return out


def drops_suite(table: SourceTable, months: list[str]) -> Suite:
    """The suite over one run's landing files of ``table`` (see `drops_frame`)."""
    expected = len(table.providers) * len(months)
    ex = (
        _e(
            "ExpectTableRowCountToEqual",
            "row_count",
            f"One file per provider and month: {len(table.providers)} provider(s) x "
            f"{len(months)} month(s). Fewer means a provider month is missing.",
            value=expected,
        ),
        _e(
            "ExpectColumnValuesToBeUnique",
            "uniqueness",
            "Each landing file is accounted for once.",
            column="file",
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "completeness",
            "Every file could be read: a file rejected whole (wrong encoding, missing column, "
            "truncated) has every row quarantined and fails here.",
            column="file_status",
            value_set=["loaded"],
        ),
        _e(
            "ExpectColumnPairValuesToBeEqual",
            "row_count",
            "rows_read = rows_loaded + rows_quarantined for every file: nothing lost.",
            column_A="rows_read",
            column_B="rows_accounted",
        ),
        _e(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            "range",
            f"Rows quarantined per file at most {QUARANTINE_SHARE:.0%} of its rows (at least "
            f"{MIN_ALLOWANCE} allowed): more means a damaged extract.",
            column_A="quarantine_allowance",
            column_B="rows_quarantined",
            or_equal=True,
        ),
    )
    return Suite(f"{table.asset_name}.drops", table.asset_name, ex)


def model_expectations(model: type[WarehouseTable]) -> list[Expectation]:
    """The expectations a table's declaration implies (`warehouse.model`): its columns exactly,
    its unique grain, and per column never empty, the declared range, code list and format.
    The same rules `warehouse.model.violations` checks before a write: declared once."""
    schema = model.to_schema()
    ex = [
        _e(
            "ExpectTableColumnsToMatchSet",
            "schema",
            "Columns exactly as the data dictionary documents.",
            column_set=list(schema.columns),
            exact_match=True,
        )
    ]
    if schema.unique:
        ex.append(
            _e(
                "ExpectCompoundColumnsToBeUnique",
                "uniqueness",
                "One row per " + " and ".join(schema.unique) + ".",
                column_list=list(schema.unique),
            )
        )
    for name, column in schema.columns.items():
        if not column.nullable:
            ex.append(
                _e("ExpectColumnValuesToNotBeNull", "completeness", "Never empty.", column=name)
            )
        stats = {check.name: check.statistics for check in column.checks}
        low = stats.get("greater_than_or_equal_to", {}).get("min_value")
        high = stats.get("less_than_or_equal_to", {}).get("max_value")
        if low is not None or high is not None:
            note = f"At least {low}" if high is None else f"From {low} to {high}"
            ex.append(
                _e(
                    "ExpectColumnValuesToBeBetween",
                    "range",
                    note + ".",
                    column=name,
                    min_value=low,
                    max_value=high,
                )
            )
        if "isin" in stats:
            ex.append(
                _e(
                    "ExpectColumnValuesToBeInSet",
                    "code_list",
                    "A declared code.",
                    column=name,
                    value_set=list(stats["isin"]["allowed_values"]),
                )
            )
        if "str_matches" in stats:
            ex.append(
                _e(
                    "ExpectColumnValuesToMatchRegex",
                    "format",
                    "The declared format.",
                    column=name,
                    regex=stats["str_matches"]["pattern"],
                )
            )
    return ex


def person_month_suite(
    model: type[WarehouseTable],
    months: list[str],
    min_rows: int,
    max_rows: int | None = None,
    price_year: str | None = None,
    unit_cost_version: str | None = None,
) -> Suite:
    """The suite for ``person_month_metrics`` or ``person_month_costs`` rows of ``months``:
    the declaration's rules (`model_expectations`) and this run's (row count, months, one
    price year and unit-cost version)."""
    ex: list[Expectation] = [
        *model_expectations(model),
        _e(
            "ExpectTableRowCountToBeBetween",
            "row_count",
            "At least one row per cohort member and month (zeros included)"
            + ("; exactly one per person_month_metrics row." if max_rows is not None else "."),
            min_value=int(min_rows),
            max_value=None if max_rows is None else int(max_rows),
        ),
        _e(
            "ExpectColumnValuesToBeInSet",
            "range",
            "Every row belongs to a month of this run.",
            column="month",
            value_set=list(months),
        ),
    ]
    if price_year is not None:
        ex.append(
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One price year throughout.",
                column="price_year",
                value_set=[price_year],
            )
        )
    if unit_cost_version is not None:
        ex.append(
            _e(
                "ExpectColumnValuesToBeInSet",
                "code_list",
                "One unit-cost version throughout.",
                column="unit_cost_version",
                value_set=[unit_cost_version],
            )
        )
    table = table_name(model)
    return Suite(f"{table}.table", table, tuple(ex))


# -- running suites in Great Expectations ---------------------------------------------------


def gx_root(quality_dir: Path) -> Path:
    return Path(quality_dir) / "gx"


def docs_index(quality_dir: Path) -> Path:
    """The Data Docs site's front page."""
    return gx_root(quality_dir) / "uncommitted" / "data_docs" / "local_site" / "index.html"


# Data Docs as GX writes them load scripts, styles and a logo from public CDNs and a cloud
# bucket (whose address carries the data context's id): opening a page would tell those hosts
# that someone reads this project's quality results, and a page must read the same on a machine
# with no network. Every page is rewritten without them: external <script>, <link> and <img>
# elements are removed, external links lose their address, and a small inline stylesheet keeps
# the tables readable. The content (suites, results, counts) is plain HTML and unchanged.
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']https?://[^>]*>\s*</script>", re.I | re.S
)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']https?://[^>]*>", re.I | re.S)
_EXTERNAL_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']https?://[^>]*>", re.I | re.S)
_EXTERNAL_ATTR = re.compile(r"""\b(href|action|src)\s*=\s*(["'])https?://[^"']*\2""", re.I)
_ANY_URL = re.compile(r"https?://[^\s\"'<>)]+", re.I)
SELF_CONTAINED_MARK = "<!-- sim_pipeline: self-contained page, no external resources -->"
_PAGE_STYLE = (
    "<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;"
    "vertical-align:top}.hide,.d-none,.modal{display:none}</style>"
)


def self_contained_html(html: str) -> str:
    """A Data Docs page without any external resource or address (idempotent)."""
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    html = _EXTERNAL_IMG.sub("", html)
    html = _EXTERNAL_ATTR.sub(lambda m: f'{m.group(1)}="#"', html)
    html = _ANY_URL.sub("(external address removed)", html)
    if SELF_CONTAINED_MARK not in html:
        html = html.replace("<head>", "<head>" + SELF_CONTAINED_MARK + _PAGE_STYLE, 1)
    return html


def make_docs_self_contained(quality_dir: Path) -> int:
    """Rewrite the Data Docs pages written since the last call (`self_contained_html`); the
    number of pages rewritten. Callers hold `_locked`."""
    site = docs_index(quality_dir).parent
    if not site.is_dir():
        return 0
    stamp = site / ".sim_self_contained"
    since = stamp.stat().st_mtime_ns if stamp.exists() else -1
    started = time.time_ns()
    rewritten = 0
    for page in site.rglob("*.html"):
        if page.stat().st_mtime_ns < since:
            continue
        html = page.read_text(encoding="utf-8")
        clean = self_contained_html(html)
        if clean != html:
            page.write_text(clean, encoding="utf-8")
            rewritten += 1
    stamp.touch()
    os.utime(stamp, ns=(started, started))  # pages written during this call are seen next time
    return rewritten


@contextmanager
def _locked(quality_dir: Path) -> Iterator[None]:
    """One GX writer at a time per project (steps may run in parallel processes)."""
    Path(quality_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(quality_dir) / ".gx.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _gx():
    """Import Great Expectations quietly, without analytics."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
    logging.captureWarnings(False)  # GX turns this on at import
    for name in ("great_expectations", "great_expectations.core", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _share_compiled_templates()
    return gx


def _share_compiled_templates() -> None:
    """Data Docs: compile GX's page templates once per process, not once per page.

    GX builds a new Jinja environment for every page it renders, so each validation's Data Docs
    update compiled the same templates again (about 0.5 s of every validation, a quarter of a
    short run). Every such environment is given one in-memory bytecode cache; the pages are
    unchanged. Left alone if GX's view class changes shape.
    """
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import BytecodeCache

    if getattr(DefaultJinjaView, "_sim_shared_templates", False):
        return

    class _InMemory(BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket) -> None:
            self.store[bucket.key] = bucket.bytecode_to_string()

    cache = _InMemory()
    init = DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        env = getattr(self, "env", None)
        if env is not None:
            env.bytecode_cache = cache

    DefaultJinjaView.__init__ = __init__
    DefaultJinjaView._sim_shared_templates = True


# One loaded GX file context per quality folder in this process, kept while its project file is
# as this process last left it: loading a context costs about 0.2 s, a twentieth of a short run
# (one per validation). Another process that changes the project file (a step of the
# multiprocess executor adding a data asset) makes the next call here load the context again, so
# no stale context ever writes over another process's change. Callers hold `_locked`.
_CONTEXTS: dict[str, tuple[tuple[int, int, int], Any]] = {}


def _config_stamp(quality_dir: Path) -> tuple[int, int, int] | None:
    try:
        st = (gx_root(quality_dir) / "great_expectations.yml").stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _context(quality_dir: Path):
    key = str(Path(quality_dir).resolve())
    stamp = _config_stamp(quality_dir)
    cached = _CONTEXTS.get(key)
    if cached is not None and stamp is not None and cached[0] == stamp:
        return cached[1]
    gx = _gx()
    ctx = gx.get_context(mode="file", project_root_dir=str(quality_dir))
    if stamp is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.variables.analytics_enabled = False
        ctx.variables.save()
    _remember(quality_dir, ctx)
    return ctx


def _remember(quality_dir: Path, ctx) -> None:
    """Record the project file as this process leaves it (call after changing the context)."""
    stamp = _config_stamp(quality_dir)
    key = str(Path(quality_dir).resolve())
    if stamp is None:
        _CONTEXTS.pop(key, None)
    else:
        _CONTEXTS[key] = (stamp, ctx)


def _batch_definition(ctx, asset_name: str):
    try:
        ds = ctx.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        ds = ctx.data_sources.add_pandas(DATASOURCE)
    try:
        asset = ds.get_asset(asset_name)
    except (LookupError, ValueError):
        asset = ds.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition("run_batch")
    except (KeyError, ValueError):
        return asset.add_batch_definition_whole_dataframe("run_batch")


def _gx_suite(gx, suite: Suite):
    import great_expectations.expectations as gxe

    # all expectations at construction: add_expectation() on a suite the store already holds
    # writes the whole suite to the store once per expectation
    return gx.ExpectationSuite(
        name=suite.name,
        expectations=[
            getattr(gxe, e.kind)(**dict(e.kwargs), notes=e.note, meta={"sim_index": i})
            for i, e in enumerate(suite.expectations)
        ],
    )


def _masked(message: str, names: set[str]) -> str:
    """An error message without data (`sim_pipeline.quality.redact.masked`): a conversion error can
    quote the value it could not convert."""
    return masked(message, names)


def _observed(
    kind: str, result: Mapping[str, Any], exception: str | None, names: set[str]
) -> str | None:
    """What to keep of GX's observation: table-level facts only (row counts, the columns that
    are missing or unexpected), or the error an expectation raised, masked. Column-level
    observed values could be data and are never kept."""
    if exception:
        return "error: " + _masked(exception.strip().splitlines()[-1], names)[:300]
    if not kind.startswith("ExpectTable"):
        return None
    mismatched = (result.get("details") or {}).get("mismatched")
    value = mismatched if mismatched else result.get("observed_value")
    return None if value is None else json.dumps(value, default=str)


class ValidationRunError(RuntimeError):
    """A suite could not run; the message is masked (`redact.masked`) and chains nothing."""


# Result keys that can hold a column's values (kept out of GX's stored results and Data Docs).
_VALUE_KEYS = (
    "observed_value",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "details",
)


def mask_suite_result(suite_result: Any, names: set[str]) -> Any:
    """A GX suite validation result with no data in it, changed in place before GX stores it
    (its JSON result files and the Data Docs pages rendered from them): an expectation's error
    message masked (`redact.masked`) and its traceback withheld (a traceback ends with the
    message, and a frame can quote a value); column-level observations and unexpected values
    dropped (table-level facts, row counts and missing columns, stay)."""
    for r in suite_result.results:
        info = r.exception_info or {}
        entries = [info] if "raised_exception" in info else list(info.values())
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("exception_message"):
                entry["exception_message"] = masked(str(entry["exception_message"]), names)[:300]
            if entry.get("exception_traceback"):
                entry["exception_traceback"] = "traceback withheld: it can quote data values"
        kind = getattr(r.expectation_config, "type", "") or ""
        if r.result and not kind.startswith("expect_table"):
            for key in _VALUE_KEYS:
                r.result.pop(key, None)
    return suite_result


class _MaskingStore:
    """The context's validation results store, masking each result before it is written."""

    def __init__(self, store: Any, names: set[str]) -> None:
        self._store, self._names = store, names

    def store_validation_results(self, suite_validation_result: Any, **kwargs: Any) -> Any:
        mask_suite_result(suite_validation_result, self._names)
        return self._store.store_validation_results(
            suite_validation_result=suite_validation_result, **kwargs
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextmanager
def _masking(names: set[str]) -> Iterator[None]:
    """While a suite runs, every result GX stores goes through `mask_suite_result` first
    (validation definitions reach the store through this one property)."""
    from great_expectations.core.validation_definition import ValidationDefinition

    original = ValidationDefinition._validation_results_store

    def masking_store(self: Any) -> _MaskingStore:
        return _MaskingStore(original.fget(self), names)  # type: ignore[union-attr]

    ValidationDefinition._validation_results_store = property(masking_store)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ValidationDefinition._validation_results_store = original  # type: ignore[method-assign]


def _exception(r: Any) -> str | None:
    info = getattr(r, "exception_info", None) or {}
    # GX reports either one {raised_exception, exception_message} or one per metric
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "raised an exception")
    return None


_NS_RANGE = (pd.Timestamp.min.as_unit("us"), pd.Timestamp.max.as_unit("us"))


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame GX validates: datetime columns in nanoseconds where every value fits.

    GX compares a datetime column with its bounds in one vectorised step only for
    ``datetime64[ns]``; pandas reads and parses to microseconds, on which GX calls a Python
    function per value (a third of a large table's validation). The values are the same
    instants, so every expectation's result is unchanged (590 results compared on the demo's
    staged tables, planted failures included); a column with a value outside the nanosecond
    range (before 1677 or after 2262) is left as it is.
    """
    out = None
    for c in frame.columns:
        s = frame[c]
        if not (pd.api.types.is_datetime64_dtype(s.dtype) and str(s.dtype) != "datetime64[ns]"):
            continue
        lo, hi = s.min(), s.max()
        if pd.notna(lo) and (lo < _NS_RANGE[0] or hi > _NS_RANGE[1]):
            continue
        out = frame.copy(deep=False) if out is None else out
        out[c] = s.astype("datetime64[ns]")
    return frame if out is None else out


def validate(
    suite: Suite, frame: pd.DataFrame, quality_dir: Path, batch: str, run_id: str
) -> SuiteOutcome:
    """Run ``suite`` over ``frame`` (one batch), store the result and update Data Docs."""
    started = time.perf_counter()
    gx = _gx()
    validated_at = datetime.now(UTC).replace(microsecond=0)
    names = {str(c) for c in frame.columns} | {
        c.strip() for e in suite.expectations for c in e.columns.split(",") if c.strip()
    }
    with _locked(quality_dir), _masking(names):
        ctx = _context(quality_dir)
        # Stored once, through the checkpoint: adding it adds its validation definition, which
        # adds its suite. (Adding the suite and the definition first as well stored the suite
        # three times and the definition twice per validation, each update of a stored suite
        # comparing every expectation with every stored one: 0.1 s of a small suite's 0.55 s.)
        vd = gx.ValidationDefinition(
            data=_batch_definition(ctx, suite.name), suite=_gx_suite(gx, suite), name=suite.name
        )
        checkpoint = ctx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[vd],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format=RESULT_FORMAT,
            )
        )
        from great_expectations.core.run_identifier import RunIdentifier

        try:
            result = checkpoint.run(
                batch_parameters={"dataframe": _for_gx(frame)},
                run_id=RunIdentifier(run_name=f"{batch}_{run_id[:8]}", run_time=validated_at),
            )
        except Exception as exc:  # an error outside any one expectation: masked, no chain
            first = (str(exc).strip().splitlines() or ["no message"])[0]
            raise ValidationRunError(
                f"{suite.name}: Great Expectations failed ({type(exc).__name__}: "
                f"{masked(first, names)[:300]})"
            ) from None
        (identifier, vr), *_ = result.run_results.items()
        page = None
        for site in ctx.get_docs_sites_urls(resource_identifier=identifier):
            url = site.get("site_url") or ""
            if url.startswith("file://"):
                page = Path(unquote(url.removeprefix("file://")))
        _remember(quality_dir, ctx)
        make_docs_self_contained(quality_dir)
    rows = []
    for r in vr.results:
        cfg = r.expectation_config
        spec = suite.expectations[int((cfg.meta or {})["sim_index"])]
        res = dict(r.result or {})
        rows.append(
            {
                "suite": suite.name,
                "asset": suite.asset,
                "batch": batch,
                "run_id": run_id,
                "validated_at": validated_at.isoformat(),
                "expectation": cfg.type,
                "column_names": spec.columns,
                "category": spec.category,
                "success": bool(r.success),
                "element_count": res.get("element_count"),
                "unexpected_count": res.get("unexpected_count"),
                "unexpected_percent": res.get("unexpected_percent"),
                "observed_value": _observed(spec.kind, res, _exception(r), names),
                "note": spec.note,
                "data_docs_page": str(page) if page else None,
                "_order": int(cfg.meta["sim_index"]),
            }
        )
    results = (
        pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "_order"])
        .sort_values("_order")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    for c in ("element_count", "unexpected_count"):
        results[c] = pd.to_numeric(results[c]).astype("Int64")
    results["unexpected_percent"] = pd.to_numeric(results["unexpected_percent"]).astype("float64")
    return SuiteOutcome(suite, results, page, round(time.perf_counter() - started, 2))


def build_docs(quality_dir: Path) -> Path:
    """Rebuild the whole Data Docs site from the stored suites and results; its index page."""
    with _locked(quality_dir):
        ctx = _context(quality_dir)
        ctx.build_data_docs()
        _remember(quality_dir, ctx)
        make_docs_self_contained(quality_dir)
    return docs_index(quality_dir)
