"""Running Great Expectations suites (`quality.expectations` builds them): validation, the
project's file context, privacy-by-construction result masking, and the Data Docs site.

`validate` imports GX lazily (the import costs seconds and the Dagster code location must load
without it), runs a suite over a DataFrame in the project's GX file context under
``<quality dir>/gx``, stores the validation result and updates the Data Docs site. Results are
kept at ``BASIC`` level with no unexpected values, so neither the stored results, the Data
Docs pages nor the warehouse table `quality_results` ever hold a data value, only counts.

This module owns running a suite (`validate`) and rebuilding the site (`build_docs`): the lazy
GX import, the project's file context and its lock, and the rows kept in `quality_results`.
Where the site lies and its self-contained pages are in `quality.gx_docs`; the masking of
what GX stores is in `quality.gx_masking`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from sim_pipeline.quality.expectations import (
    DATASOURCE,
    RESULT_COLUMNS,
    RESULT_FORMAT,
    Suite,
    SuiteOutcome,
)
from sim_pipeline.quality.gx_docs import docs_index, gx_root, make_docs_self_contained
from sim_pipeline.quality.gx_masking import masking
from sim_pipeline.quality.redact import masked

# Set (by `sim-pipeline run`, which then calls `build_docs_index` once) for a run whose caller
# rebuilds the Data Docs index after the run: each validation then writes only its own pages.
# Unset (a run launched from the web UI, a test), each validation updates the index too, as
# GX's UpdateDataDocsAction does. (The index reads every stored validation result: 0.4 s a
# validation on the demo, growing with the results kept.)
INDEX_AFTER_RUN_ENV = "SIM_DATA_DOCS_INDEX_AFTER_RUN"
_NO_PAGE = "sim_pipeline.index_only"


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


# Libraries GX imports at its own import only for expectations we never use: scipy.stats for
# the distributional expectations, 0.6-0.7 s of GX's 2.6 s import (`from scipy import stats`).
# Unless already imported, each is put in place as a lazy module (`importlib.util.LazyLoader`)
# that executes on its first attribute access, so anything that does use it gets it whole.
# (Not altair, for one such expectation's charts: GX imports it as ``import altair as alt``,
# and Python 3.11's import reads the module's ``__spec__``, which loads a lazy module at once.)
LAZY_FOR_GX = ("scipy.stats",)


def _lazy_module(name: str) -> None:
    """``name`` in ``sys.modules`` as a module that executes on first use (nothing if it is
    imported already or not installed)."""
    import importlib.util

    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)  # imports the parent package (scipy: light)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _gx():
    """Import Great Expectations quietly, without analytics."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # With the optional `spark` group installed, GX imports pyspark and pyspark.ml at its own
    # import (0.4 s) for Spark data sources; it validates pandas frames here only. Unless
    # something imported pyspark already, GX is shown it as absent while it imports (it falls
    # back as when pyspark is not installed); pyspark imports as usual afterwards (Splink on
    # Spark, `identity.linkage`).
    hide_spark = "pyspark" not in sys.modules
    if hide_spark:
        sys.modules["pyspark"] = None  # type: ignore[assignment]
    if "great_expectations" not in sys.modules:
        for name in LAZY_FOR_GX:
            _lazy_module(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
    finally:
        if hide_spark and sys.modules.get("pyspark", 0) is None:
            del sys.modules["pyspark"]
    logging.captureWarnings(False)  # GX turns this on at import
    for name in ("great_expectations", "great_expectations.core", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _share_compiled_templates()
    _render_named_pages_only()
    _compare_expectations_once()
    _read_config_variables_once()
    return gx


def import_gx() -> None:
    """Import Great Expectations now (a process about to validate: `defs.forked`'s worker)."""
    _gx()


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


def _render_named_pages_only() -> None:
    """Data Docs: a build for named resources looks up those resources, not every stored key.

    Asked to render the pages of given resources (a validation result and its suite, as each
    validation and GX's UpdateDataDocsAction do), GX's section builder still lists every key of
    its store and parses each (a path, a run name, a run time through dateutil) only to skip
    all but the named ones, so every validation cost more the more results the project kept:
    about 0.15 s of each of a one-month ingest's 20 validations with 638 results kept. The
    builder is given the named keys its store holds instead: the same pages, in no particular
    order (each is its own file). Left alone when the section keeps only the latest results
    (``validation_results_limit``), in cloud mode, or if GX's builder changes shape.
    """
    from great_expectations.render.renderer.site_builder import DefaultSiteSectionBuilder

    if getattr(DefaultSiteSectionBuilder, "_sim_named_pages_only", False):
        return
    build = DefaultSiteSectionBuilder.build

    def named_only(self, resource_identifiers=None) -> None:
        store = getattr(self, "source_store", None)
        key_class = getattr(store, "key_class", None)
        if (
            not resource_identifiers
            or getattr(self, "validation_results_limit", None)
            or getattr(self, "cloud_mode", True)
            or key_class is None
        ):
            return build(self, resource_identifiers)
        held = [k for k in resource_identifiers if isinstance(k, key_class) and store.has_key(k)]
        store.list_keys = lambda: held  # shadows the class's method for this build only
        try:
            return build(self, resource_identifiers)
        finally:
            del store.list_keys

    DefaultSiteSectionBuilder.build = named_only
    DefaultSiteSectionBuilder._sim_every_key_build = build  # GX's own (the tests compare)
    DefaultSiteSectionBuilder._sim_named_pages_only = True


def _compare_expectations_once() -> None:
    """Updating a stored suite: each expectation's comparable form computed once, not once per
    comparison.

    To keep the ids of unchanged expectations, GX's ``SuiteFactory.add_or_update`` looks each
    new expectation up in the stored suite's list, and every comparison rebuilds both sides'
    normalised dictionaries (pydantic ``dict()``): n squared of them for a suite of n, about
    0.07 s of each staged table's validation (30-40 expectations). During the update each
    expectation's dictionary is made once and reused; the comparisons, and so the ids kept and
    the suite stored, are GX's own. (GX compares nothing else during the update; the loop sets
    the id only of a new expectation it has finished comparing.) Left alone if GX's classes
    change shape.
    """
    from great_expectations.core.factory.suite_factory import SuiteFactory
    from great_expectations.expectations.expectation import Expectation

    if getattr(SuiteFactory, "_sim_compare_once", False):
        return
    update = SuiteFactory.add_or_update
    equal = Expectation.__eq__
    if not hasattr(Expectation, "_to_normalized_self_dict"):
        return

    def add_or_update(self, suite):  # type: ignore[no-untyped-def]
        forms: dict[int, tuple[object, dict]] = {}  # id(expectation) -> (it, its form)

        def form(e: Expectation) -> dict:
            held = forms.get(id(e))
            if held is None or held[0] is not e:
                held = forms[id(e)] = (e, e._to_normalized_self_dict())
            return held[1]

        def __eq__(a, b) -> bool:  # as GX's: another kind of object is never equal
            return isinstance(b, Expectation) and form(a) == form(b)

        Expectation.__eq__ = __eq__  # type: ignore[method-assign,assignment]
        try:
            return update(self, suite)
        finally:
            Expectation.__eq__ = equal  # type: ignore[method-assign]

    SuiteFactory.add_or_update = add_or_update  # type: ignore[method-assign]
    SuiteFactory._sim_gx_add_or_update = update  # GX's own (the tests compare)
    SuiteFactory._sim_compare_once = True


def _read_config_variables_once() -> None:
    """The project's ``config_variables.yml`` parsed once while it and the environment stay as
    they were, not at every read of a context setting.

    GX substitutes variables into its project settings at every read of one (a store's name,
    the progress bars), and each substitution read and parsed the variables file again:
    several YAML parses of each validation, about 0.07 s of it. The values are kept with the
    file's identity, size and modification time and the environment they were substituted
    from; a change to either parses it again. Each caller gets its own copy. Left alone if
    GX's provider changes shape.
    """
    import copy

    from great_expectations.core import config_provider

    provider = getattr(config_provider, "_ConfigurationVariablesConfigurationProvider", None)
    if provider is None or getattr(provider, "_sim_read_once", False):
        return
    get_values = provider.get_values
    kept: dict[tuple, dict] = {}

    def read_once(self) -> dict:  # type: ignore[no-untyped-def]
        path = getattr(self, "_config_variables_file_path", None)
        root = getattr(self, "_root_directory", None)
        stamp = None
        if isinstance(path, str) and "$" not in path:  # a path not itself substituted
            full = os.path.join(root or os.curdir, path) if not os.path.isabs(path) else path
            try:
                st = os.stat(full)
                stamp = (full, st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None  # GX's own read decides (a missing file is no variables)
        if stamp is None:
            return get_values(self)
        key = (stamp, tuple(sorted(os.environ.items())))
        if key not in kept:
            kept.clear()  # one file per project: the latest reading only
            kept[key] = get_values(self)
        return copy.deepcopy(kept[key])

    provider.get_values = read_once
    provider._sim_gx_get_values = get_values  # GX's own (the tests compare)
    provider._sim_read_once = True


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
    with _locked(quality_dir), masking(names):
        ctx = _context(quality_dir)
        # Stored once, through the checkpoint: adding it adds its validation definition, which
        # adds its suite. (Adding the suite and the definition first as well stored the suite
        # three times and the definition twice per validation, each update of a stored suite
        # comparing every expectation with every stored one: 0.1 s of a small suite's 0.55 s.)
        vd = gx.ValidationDefinition(
            data=_batch_definition(ctx, suite.name), suite=_gx_suite(gx, suite), name=suite.name
        )
        index_now = not os.environ.get(INDEX_AFTER_RUN_ENV)
        checkpoint = ctx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[vd],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")]
                if index_now
                else [],
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
        if not index_now:  # this validation's pages, as the action writes them, but no index
            from great_expectations.data_context.types.resource_identifiers import (
                ExpectationSuiteIdentifier,
            )

            ctx.build_data_docs(
                resource_identifiers=[identifier, ExpectationSuiteIdentifier(name=suite.name)],
                build_index=False,
            )
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
    return SuiteOutcome(
        suite, results, page, round(time.perf_counter() - started, 2), docs_index(quality_dir)
    )


def build_docs_index(quality_dir: Path) -> Path:
    """Rebuild the Data Docs site's index page (every stored suite and validation listed) and
    no other page; its path."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    with _locked(quality_dir):
        ctx = _context(quality_dir)
        # resource identifiers that name no stored resource: no page is rendered again (an
        # empty list would render every page)
        ctx.build_data_docs(resource_identifiers=[ExpectationSuiteIdentifier(name=_NO_PAGE)])
        _remember(quality_dir, ctx)
        make_docs_self_contained(quality_dir)
    return docs_index(quality_dir)


def build_docs(quality_dir: Path) -> Path:
    """Rebuild the whole Data Docs site from the stored suites and results; its index page."""
    with _locked(quality_dir):
        ctx = _context(quality_dir)
        ctx.build_data_docs()
        _remember(quality_dir, ctx)
        make_docs_self_contained(quality_dir)
    return docs_index(quality_dir)
