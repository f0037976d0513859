"""Materialise the whole graph on the configured instance.

All monthly partitions of the ingest assets run as one single-run backfill (a partition range),
then the unpartitioned summaries. Runs are recorded in the instance under DAGSTER_HOME, so the
web UI shows them.

On a machine with two cores or more the staged tables are split in two groups of about equal
landing bytes, staged at the same time by the command and by a forked worker (`defs.forked`),
each group as its own run; then the rest of the graph runs in the command's process, as one run,
without whatever lies downstream of a staged table whose step failed (what Dagster skips in one
run). The gate that holds linkage back (`ingest_summary:ingest_accepted`) reads the staged
tables' latest check results from the instance, so it judges every group. ``ingest_workers``
N stages in N processes; 1 (``--ingest-workers 1``, ``SIM_INGEST_WORKERS=1``) keeps the whole
graph in one run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from sim_pipeline.config import Settings, load_tokeniser
from sim_pipeline.defs.forked import ForkedRun, WorkerResult, can_fork
from sim_pipeline.progress import Progress
from sim_pipeline.warehouse import Warehouse, redact_url


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    checks_passed: int
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    key_label: str = ""
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)

    def render(
        self, settings: Settings, seconds: float, peak_mib: float, worker_mib: float = 0.0
    ) -> str:
        lines = [
            f"sim-pipeline run {'SUCCEEDED' if self.success else 'FAILED'} "
            f"({'runs' if ',' in self.run_id else 'run'} {self.run_id})",
            f"  landing:    {settings.landing_dir}",
            f"  warehouse:  {redact_url(settings.warehouse_url)}",
            f"  dagster:    {settings.dagster_home}",
            f"  key:        {self.key_label}",
        ]
        if len(self.ledger):
            tot = self.ledger[["rows_read", "rows_loaded", "rows_quarantined"]].sum()
            lines.append(
                f"  ingest:     {len(self.ledger)} files, {int(tot.rows_read)} rows read, "
                f"{int(tot.rows_loaded)} loaded, {int(tot.rows_quarantined)} quarantined"
            )
            by = self.ledger.groupby("source")[
                ["rows_read", "rows_loaded", "rows_quarantined"]
            ].sum()
            for src, r in by.iterrows():
                lines.append(
                    f"    {src:<11} read {int(r.rows_read):>7}  loaded {int(r.rows_loaded):>7}  "
                    f"quarantined {int(r.rows_quarantined):>5}"
                )
        lines.append(
            f"  checks:     {self.checks_passed} passed, {len(self.checks_failed)} failed, "
            f"{len(self.checks_warned)} warnings"
        )
        lines += [f"    FAILED {c}" for c in self.checks_failed]
        lines += [f"    WARN   {c}" for c in self.checks_warned]
        lines += [f"  error: {f}" for f in self.failures]
        lines += _headline_lines(self.headline)
        lines += _estimate_lines(self.estimates)
        worker = f" (its largest child process: {worker_mib:.0f} MiB)" if worker_mib else ""
        lines.append(f"  wall time {seconds:.1f}s, peak memory {peak_mib:.0f} MiB{worker}")
        return "\n".join(lines)


HEADLINE_SHOWN = [
    ("n_people", "people", "{:.0f}"),
    ("mean_months", "mean months on programme", "{:.1f}"),
    ("pct_with_cost_fall", "% whose monthly cost fell", "{:.1f}"),
    ("mean_pct_change_per_person", "mean of per-person % change", "{:+.1f}"),
    ("ratio_of_means_pct_change", "% change of mean monthly cost", "{:+.1f}"),
    ("mean_monthly_change_gbp", "mean monthly change (GBP)", "{:+,.2f}"),
    ("total_change_gbp", "total change (GBP)", "{:+,.2f}"),
]


def _headline_lines(headline: pd.DataFrame) -> list[str]:
    """The naive headline, itt beside per-protocol, with its price year and a caution."""
    if headline.empty:
        return []
    wide = headline.pivot(index="statistic", columns="population", values="value")
    year = headline["price_year"].iloc[0]
    version = headline["unit_cost_version"].iloc[0]
    lines = [
        f"  headline (naive before/after; prices {year}, unit costs v{version}):",
        f"    {'':<32}{'itt':>16}{'per-protocol':>16}",
    ]
    for stat, label, fmt in HEADLINE_SHOWN:
        if stat in wide.index:
            row = wide.loc[stat]
            cells = [fmt.format(row.get(p)) for p in ("itt", "per_protocol")]
            lines.append(f"    {label:<32}{cells[0]:>16}{cells[1]:>16}")
    lines.append(
        "    not an effect estimate: people were selected at their peak (regression to the mean)"
    )
    return lines


def _estimate_lines(estimates: pd.DataFrame) -> list[str]:
    """Total cost: the naive change beside the difference-in-differences, with 95% CIs."""
    if estimates.empty:
        return []
    e = estimates[(estimates["analysis"] == "primary") & (estimates["outcome"] == "total_cost")]
    lines = [
        "  evaluation (change in mean monthly cost; 95% CI, person-level bootstrap):",
        f"    {'':<32}{'itt':>22}{'per-protocol':>22}",
    ]
    for method, label in (
        ("naive_before_after", "naive before/after"),
        ("difference_in_differences", "vs matched comparison (DiD)"),
    ):
        cells = []
        for pop in ("itt", "per_protocol"):
            r = e[(e["population"] == pop) & (e["method"] == method)]
            if r.empty:
                cells.append("n/a")
                continue
            r = r.iloc[0]
            if any(v is None or pd.isna(v) for v in (r.estimate, r.ci_low, r.ci_high)):
                cells.append("n/a (too few people)")  # e.g. a one-month backfill
                continue
            cells.append(f"{r.estimate:+.1%} [{r.ci_low:+.0%}, {r.ci_high:+.0%}]")
        lines.append(f"    {label:<32}{cells[0]:>22}{cells[1]:>22}")
    lines += design_lines(estimates[estimates["analysis"] == "primary"])
    lines.append("    published tables and report: sim-pipeline report (data/published/)")
    return lines


def design_lines(primary: pd.DataFrame) -> list[str]:
    """The primary design's ITT and CACE per window, then its diagnostics and sensitivity, in
    plain words (``primary``: the primary analysis's estimates, every outcome)."""
    from sim_pipeline.evaluation import matched_design as md
    from sim_pipeline.evaluation.design_diagnostics import diagnostic_lines
    from sim_pipeline.evaluation.design_estimates import METHOD

    e = primary[primary["outcome"] == "total_cost"]
    lines = [
        "  primary estimate (matched at the same month on a prognostic score, bias-corrected):"
    ]
    for w in md.WINDOWS:
        for pop, what in (
            (md.itt_population(w), "ITT, all allocated"),
            (md.cace_population(w), "CACE, those who engaged"),
        ):
            r = e[(e["population"] == pop) & (e["method"] == METHOD)]
            label = f"months {w[0]}-{w[1]}, {what}"
            if r.empty or any(pd.isna(v) for v in r.iloc[0][["estimate", "ci_low", "ci_high"]]):
                lines.append(f"    {label:<44}n/a (too few people with the window in the data)")
                continue
            r = r.iloc[0]
            if r.ci_low <= 0 <= r.ci_high:
                words = "no detectable effect"
            else:
                words = "a fall" if r.estimate < 0 else "a rise"
            lines.append(
                f"    {label:<44}{r.estimate:+.1%} [{r.ci_low:+.1%}, {r.ci_high:+.1%}]: {words}"
                f" (the interval runs from {r.ci_low:+.0%} to {r.ci_high:+.0%}; "
                f"{int(r.n_people)} people)"
            )
    diagnostics = diagnostic_lines(primary)
    lines += ["  diagnostics of the primary estimate:"] + [f"    {x}" for x in diagnostics]
    return lines


def all_assets_job() -> dg.JobDefinition:
    """The whole-graph job, reconstructable by other processes (multiprocess executor)."""
    from sim_pipeline.definitions import load_definitions

    return load_definitions().resolve_job_def("sim_pipeline_all")


INGEST_WORKERS_ENV = "SIM_INGEST_WORKERS"


def default_ingest_workers() -> int:
    """Processes that stage tables (``SIM_INGEST_WORKERS``, else 2 on two cores or more)."""
    raw = os.environ.get(INGEST_WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{INGEST_WORKERS_ENV} must be a whole number >= 1")
        return int(raw)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def materialise_all(
    settings: Settings,
    log_level: str = "WARNING",
    first_month: str | None = None,
    last_month: str | None = None,
    processes: int = 1,
    linkage: str = "full",
    ingest_workers: int | None = None,
) -> RunOutcome:
    """The whole graph over a month range (default: every partition).

    A range is a backfill: its ingest partitions run as one single-run backfill and the
    unpartitioned downstream assets are brought up to date after them. ``ingest_workers`` N
    (default 2 on two cores): the staged tables in N processes, then the rest
    (`_parallel_ingest_runs`); 1: one run. ``linkage`` "incremental" links only the records
    the person index lacks (`defs.linkage`), in two runs (`_incremental_runs`).
    """
    from sim_pipeline.definitions import load_definitions
    from sim_pipeline.defs.common import monthly_partitions

    defs = load_definitions(settings)
    keys = monthly_partitions(settings).get_partition_keys()
    all_keys = list(keys)
    wanted = [k for k in keys if (first_month or "") <= k[:7] <= (last_month or "9999")]
    if not wanted:
        raise ValueError(f"no monthly partition between {first_month} and {last_month}")
    keys = wanted
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level.upper()}}}}
    run_config["ops"] = {"person_index": {"config": {"mode": linkage}}}
    command = uuid.uuid4().hex
    split = None
    one_process = processes == 1  # the paths that can share staging
    workers = 1
    if one_process:
        workers = default_ingest_workers() if ingest_workers is None else ingest_workers
    if workers < 1:
        raise ValueError("--ingest-workers must be a whole number >= 1")
    # the landing drops and reference files observed first, so each staged table and the unit
    # costs record the versions they read (the UI's staleness starts from them)
    observe = _observe_sources(defs, run_config, command)
    observer = None
    if workers > 1 and can_fork():
        # forked before the instance or any database is opened in this process: the observer
        # at once (it runs while this process imports Great Expectations), then the workers
        observer = ForkedRun(_in_own_instance(observe), at_once=True)
        try:
            split = _fork_ingest_workers(settings, defs, keys, run_config, workers, command)
        except BaseException:
            observer.cancel()
            raise
    # the observer's run ended before this process opens the instance: two processes never
    # create a new instance's databases at once
    done = _wait_for(observer) if observer else None
    # closed when the command has read its runs' events: its SQLite databases are then
    # whole files (the program leaves without the interpreter's shutdown: `cli.pipeline.leave_now`)
    with dg.DagsterInstance.get() as instance:
        observed = _observed(instance, done) if done else observe(instance)
        pending = None
        failures: list[str] = []
        if linkage == "incremental":
            if processes > 1:
                raise ValueError("--linkage incremental runs in one process (--processes 1)")
            results, pending = _incremental_runs(
                settings, defs, instance, keys, all_keys, run_config, command, failures, split
            )
        elif split is not None:
            results = _parallel_ingest_runs(
                defs, instance, keys, run_config, split, failures, command
            )
        else:
            results = [_execute(defs, instance, keys, run_config, processes, command)]
        passed, failed, warned = 0, [], []
        if not observed.success:
            failures.insert(
                0,
                "observe_sources: the landing drops or reference files could not be read"
                + (f" (the observing process failed: {observed.error})" if observed.error else ""),
            )
        for event in (e for r in results for e in r.all_events):
            if event.event_type_value == "ASSET_CHECK_EVALUATION":
                ev = event.event_specific_data
                name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
                if ev.description and not ev.passed:
                    name += f" ({ev.description})"  # e.g. the rejected file and its problem
                if ev.passed:
                    passed += 1
                elif ev.severity == dg.AssetCheckSeverity.WARN:
                    warned.append(name)
                else:
                    failed.append(name)
            elif event.event_type_value == "STEP_FAILURE":
                err = event.event_specific_data.error  # type: ignore[union-attr]
                failures.append(f"{event.step_key}: {err.message.strip() if err else 'failed'}")
        if pending:
            first, last = pending.split(" to ")
            failures.append(
                f"the months {pending} still need their events, metrics and costs brought up to "
                f"date: once the failure is fixed, run `sim-pipeline backfill --from {first} --to "
                f"{last}` (a full relink of that range)"
            )
    tok = load_tokeniser()
    wh = Warehouse(settings.warehouse_url)
    try:
        ledger = wh.read("ingest_ledger", {"month": [k[:7] for k in keys]})
        headline = wh.read("programme_headline")
        estimates = wh.read("evaluation_estimates")
    finally:
        wh.dispose()
    label = f"{'DEMO key (public; synthetic data only)' if tok.demo else 'project key'} fingerprint {tok.key_id}"
    return RunOutcome(
        success=observed.success and all(r.success for r in results) and not failures,
        run_id=", ".join(r.run_id for r in results),
        checks_passed=passed,
        checks_failed=failed,
        checks_warned=warned,
        failures=failures,
        ledger=ledger,
        key_label=label,
        headline=headline,
        estimates=estimates,
    )


@dataclass
class _Split:
    """The staged tables split between processes: the command's share and each worker's."""

    own: list[str]
    workers: list[tuple[ForkedRun, list[str], str]]  # the worker, its tables, its run's id


def _observe_sources(
    defs: dg.Definitions, run_config: dict, command: str
) -> Callable[[dg.DagsterInstance], _LoggedRun]:
    """The observation run of the landing drops and reference files, on a given instance."""

    def observe(instance: dg.DagsterInstance) -> _LoggedRun:
        result = defs.resolve_job_def("observe_sources").execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={"launched_by": "sim-pipeline run", COMMAND_TAG: command},
            run_config={"loggers": run_config["loggers"]},
        )
        return _LoggedRun(result.run_id, result.success, list(result.all_events))

    return observe


def _in_own_instance(
    job: Callable[[dg.DagsterInstance], _LoggedRun],
) -> Callable[[], tuple[str, bool]]:
    """``job`` as a forked worker runs it: on an instance of its own (`defs.forked`)."""

    def run() -> tuple[str, bool]:
        instance = dg.DagsterInstance.get()
        try:
            result = job(instance)
            return result.run_id, result.success
        finally:
            instance.dispose()

    return run


def _wait_for(worker: ForkedRun) -> WorkerResult:
    """``worker``'s result once it has ended; interrupted, it is stopped."""
    try:
        return worker.wait()
    except BaseException:
        worker.cancel()
        raise


def _observed(instance: dg.DagsterInstance, done: WorkerResult) -> _LoggedRun:
    """The observer's run read back; a failed run if its process left none."""
    if done.run_id is None or instance.get_run_by_id(done.run_id) is None:
        return _LoggedRun(done.run_id or "", False, [], done.error)
    return _LoggedRun.of(instance, done.run_id, done.success)


def staged_groups(landing_dir: Path, n: int) -> list[list[str]]:
    """The staged assets in ``n`` groups of about equal landing bytes (largest table first,
    each to the lightest group; no empty group), the lightest first (the command's own)."""
    from sim_pipeline.landing.layout import Landing
    from sim_pipeline.sources import SOURCE_TABLES

    landing = Landing(landing_dir)
    size = {
        t.asset_name: sum(p.stat().st_size for p in landing.csv_files(t)) for t in SOURCE_TABLES
    }
    groups: list[list[str]] = [[] for _ in range(max(1, min(n, len(size))))]
    totals = [0] * len(groups)
    for name in sorted(size, key=lambda n: (-size[n], n)):
        # the lightest group; of equals, the one with fewest tables (no drops: round robin)
        i = min(range(len(groups)), key=lambda j: (totals[j], len(groups[j]), j))
        groups[i].append(name)
        totals[i] += size[name]
    order = sorted(range(len(groups)), key=lambda i: (totals[i], i))
    return [sorted(groups[i]) for i in order]


def _fork_ingest_workers(
    settings: Settings,
    defs: dg.Definitions,
    keys: list[str],
    run_config: dict,
    n: int,
    command: str,
) -> _Split | None:
    """Fork the workers that will stage all but the first of ``n`` groups (`defs.forked`);
    None when the tables make a single group."""
    own, *others = staged_groups(settings.landing_dir, n)
    if not others:
        return None
    tags = _range_tags(keys, command)

    def runner(names: list[str], run_id: str):
        def stage(instance: dg.DagsterInstance) -> _LoggedRun:
            selection = [dg.AssetKey(n) for n in names]
            result = _execute_job(defs, instance, tags, run_config, 1, selection, run_id)
            return _LoggedRun(result.run_id, result.success, [])

        return _in_own_instance(stage)

    # imported once, before the fork, for both processes (it starts no thread); so are the
    # vocabularies every staging process's identifier check reads (0.6 s a process)
    from sim_pipeline.quality.gx_runner import import_gx
    from sim_pipeline.quality.identifier_forms import software_vocabulary
    from sim_pipeline.quality.landing_identifiers import own_vocabulary_cached

    import_gx()
    software_vocabulary()
    own_vocabulary_cached()
    if not can_fork():
        return None
    # the run ids are the command's: a worker that dies leaves a run the command can close
    ids = [str(uuid.uuid4()) for _ in others]
    workers = [
        (ForkedRun(runner(names, run_id)), names, run_id)
        for names, run_id in zip(others, ids, strict=True)
    ]
    return _Split(own, workers)


@dataclass
class _LoggedRun:
    """A run executed by another process, read back from the instance (what `materialise_all`
    reads of an in-process result)."""

    run_id: str
    success: bool
    all_events: list[dg.DagsterEvent]
    error: str | None = None  # the process ran no run: why (masked, `defs.forked`)

    @classmethod
    def of(cls, instance: dg.DagsterInstance, run_id: str, success: bool) -> _LoggedRun:
        """Only the kinds of event the command reads (`materialise_all`, `_unfinished`,
        `_interrupted`): not a staged share's hundreds of partition materialisations."""
        records = instance.all_logs(run_id, of_type=_READ_BACK)
        return cls(run_id, success, [e.dagster_event for e in records if e.dagster_event])


_FAILURES = {dg.DagsterEventType.STEP_FAILURE.value, dg.DagsterEventType.RUN_FAILURE.value}
_READ_BACK = {
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
}


def _unfinished(results: list, names: list[str]) -> set[dg.AssetKey]:
    """Of the assets ``names``, those whose step did not succeed in ``results`` or whose
    blocking check failed: what one run would not have let downstream steps read."""
    done: set[str] = set()
    blocked: set[str] = set()
    for event in (e for r in results for e in r.all_events):
        if event.event_type_value == "STEP_SUCCESS":
            done.add(event.step_key or "")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed and ev.blocking:
                blocked.add(ev.asset_key.to_user_string())
    return {dg.AssetKey(n) for n in names if n not in done or n in blocked}


def _interrupted(result) -> bool:  # type: ignore[no-untyped-def]
    """The run was stopped by an interrupt (Ctrl-C, SIGTERM), not by a failure of its own."""
    for event in result.all_events:
        # (a run's failure is stored as "PIPELINE_FAILURE": compared by the type's value)
        if event.event_type_value in _FAILURES:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None and "Interrupt" in (error.cls_name or ""):
                return True
    return False


def _abandon(instance: dg.DagsterInstance, run_id: str, message: str) -> None:
    """A worker's run its process left unfinished (killed, crashed): recorded as failed and its
    write slots freed, so the next run of those tables does not wait on it for ever."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return
    instance.report_run_failed(run, message)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def _parallel_ingest_runs(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    run_config: dict,
    split: _Split,
    failures: list[str],
    command: str,
    within: set[dg.AssetKey] | None = None,
) -> list:
    """The staged tables in several processes at once (this one and the forked workers), each
    share its own run; then, in this process, one run of the rest of the graph (or of
    ``within``) less what lies downstream of a staged table that did not finish. Interrupted
    (Ctrl-C), the rest is not run, as one run would stop."""
    graph = defs.resolve_asset_graph()
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    if within is not None:
        materializable &= within
    names = [*split.own, *(n for _, group, _ in split.workers for n in group)]
    job = defs.resolve_job_def("sim_pipeline_all")
    steps = len((job.get_subset(asset_selection=within) if within else job).graph.nodes)
    label = f"run {keys[0][:7]} to {keys[-1][:7]}" if len(keys) > 1 else f"run {keys[0][:7]}"
    tags = _range_tags(keys, command)
    try:
        with Progress(label, total=steps, unit="steps") as progress:
            for worker, _, _ in split.workers:
                worker.start(progress)
            own = [dg.AssetKey(n) for n in split.own]
            results: list = [_execute_job(defs, instance, tags, run_config, 1, own)]
            interrupted = _interrupted(results[0])
            for worker, group, run_id in split.workers:
                try:
                    done = worker.wait()
                except KeyboardInterrupt:
                    interrupted = True
                    worker.cancel()
                    done = worker.result or WorkerResult(None, False, "interrupted")
                if done.run_id is None:
                    _abandon(instance, run_id, f"the staging worker stopped: {done.error}")
                    failures.append(
                        f"staging {', '.join(group)} in another process (run {run_id}) "
                        f"failed: {done.error}"
                    )
                if instance.get_run_by_id(run_id) is not None:
                    results.append(_LoggedRun.of(instance, run_id, done.success))
                    interrupted = interrupted or _interrupted(results[-1])
            if interrupted:
                failures.append("interrupted: the rest of the graph was not run")
                return results
            held = dg.AssetSelection.assets(*_unfinished(results, names)).downstream()
            rest = sorted(materializable - {dg.AssetKey(n) for n in names} - held.resolve(graph))
            if rest:
                results.append(_execute_job(defs, instance, tags, run_config, 1, rest))
            return results
    finally:
        for worker, _, run_id in split.workers:
            if worker.cancel():
                _abandon(instance, run_id, "the command stopped before its staging worker")


# Every run one command launches carries the command's id: the UI's runs list filters on it
# (the sources' observation, each staged share, the rest of the graph).
COMMAND_TAG = "sim_pipeline/command"


def _range_tags(keys: list[str], command: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
        "launched_by": "sim-pipeline run",
        COMMAND_TAG: command,
    }


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    run_config: dict,
    processes: int,
    command: str,
    selection: list[dg.AssetKey] | None = None,
):
    """One run of the whole-graph job (or ``selection`` of it) over the partition range."""
    tags = _range_tags(keys, command)
    job = defs.resolve_job_def("sim_pipeline_all")
    steps = len((job.get_subset(asset_selection=set(selection)) if selection else job).graph.nodes)
    label = f"run {keys[0][:7]} to {keys[-1][:7]}" if len(keys) > 1 else f"run {keys[0][:7]}"
    if processes > 1:  # the steps (and their hooks) run in other processes: nothing to count
        return _execute_job(defs, instance, tags, run_config, processes, selection)
    with Progress(label, total=steps, unit="steps"):  # advanced by each step (`defs.hooks`)
        return _execute_job(defs, instance, tags, run_config, processes, selection)


def _execute_job(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
    run_config: dict,
    processes: int,
    selection: list[dg.AssetKey] | None,
    run_id: str | None = None,
):
    if processes > 1:
        # One process per step, as Dagster's Kubernetes executor runs one pod per step.
        config = {
            **run_config,
            "execution": {"config": {"multiprocess": {"max_concurrent": processes}}},
        }
        return dg.execute_job(
            dg.reconstructable(all_assets_job),
            instance=instance,
            tags=tags,
            raise_on_error=False,
            run_config=config,
            asset_selection=selection,
        )
    return defs.resolve_job_def("sim_pipeline_all").execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
        asset_selection=selection,
        run_id=run_id,
    )


def _incremental_runs(
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    all_keys: list[str],
    run_config: dict,
    command: str,
    failures: list[str],
    split: _Split | None = None,
) -> tuple[list, str | None]:
    """A new month with incremental linkage, in two phases. First the month's ingest, the
    person index (incremental) and the cohort: one run, or with ``split`` the staged tables
    shared between processes as a full run shares them (`_parallel_ingest_runs`) and then one
    run of the rest. Then everything after them over the month and every other month that
    linkage touched (`months_touched`), as one range, so each downstream asset runs once.
    Nothing after the first phase runs unless the person index was linked. Returns the runs
    and, when the second failed, the range it had to bring up to date (the person index
    already holds the month, so a repeat of the command would find nothing new and could not
    tell)."""
    graph = defs.resolve_asset_graph()
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    from sim_pipeline.defs.linkage import person_index

    first = dg.AssetSelection.assets(*person_index.keys, "cohort").upstream().resolve(graph)
    first = {k for k in first if k in materializable}
    cohort_before = _cohort_people(settings.warehouse_url)
    if split is None:
        firsts = [_execute(defs, instance, keys, run_config, 1, command, sorted(first))]
    else:
        firsts = _parallel_ingest_runs(
            defs, instance, keys, run_config, split, failures, command, within=first
        )
    linked = not _unfinished(firsts, ["person_index"])
    if not all(r.success for r in firsts) or not linked or failures:
        return firsts, None
    result = firsts[-1]  # the run that linked
    study = [k[:7] for k in all_keys]
    touched = months_touched(settings.warehouse_url, result.run_id, cohort_before, study)
    wanted = {k[:7] for k in keys} | set(touched)
    inside = [k for k in all_keys if k[:7] in wanted]
    months = [k for k in all_keys if inside[0] <= k <= inside[-1]]  # one contiguous range
    second = sorted(materializable - first)
    after = _execute(defs, instance, months, {**run_config, "ops": {}}, 1, command, second)
    pending = None if after.success else f"{months[0][:7]} to {months[-1][:7]}"
    return [*firsts, after], pending


def _cohort_people(url: str) -> set[str]:
    wh = Warehouse(url)
    try:
        return set(wh.read("cohort", columns=["person_key"]).get("person_key", []))
    finally:
        wh.dispose()


def months_touched(
    url: str, run_id: str, cohort_before: set[str], study_months: list[str]
) -> list[str]:
    """Months whose events, metrics or costs an incremental linkage run ``run_id`` made stale:
    the months with records of the people its merges joined (their events carry the retired
    key), and every month of the study when the cohort changed (a cohort member has a metrics
    row for every month, zeros included; a merge of two members changes it too). ``url``: the
    warehouse."""
    wh = Warehouse(url)
    try:
        changes = wh.read("person_key_changes", {"run_id": [run_id]})
        months: set[str] = set()
        if len(changes):
            people = sorted(set(changes["to_person_key"]) | set(changes["from_person_key"]))
            dim = wh.read("person_dimension", {"person_key": people}, columns=["month"])
            months |= set(dim.get("month", []))
    finally:
        wh.dispose()
    if _cohort_people(url) != cohort_before:
        months |= set(study_months)
    return sorted(m for m in months if m in set(study_months))
