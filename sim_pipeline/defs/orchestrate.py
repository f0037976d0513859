"""Materialise the whole graph in one Dagster run on the configured instance.

All monthly partitions of the ingest assets run as one single-run backfill (a partition range),
then the unpartitioned summaries. Runs are recorded in the instance under DAGSTER_HOME, so the
web UI shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from sim_pipeline.config import Settings, load_tokeniser
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

    def render(self, settings: Settings, seconds: float, peak_mib: float) -> str:
        lines = [
            f"sim-pipeline run {'SUCCEEDED' if self.success else 'FAILED'} (run {self.run_id})",
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
        lines.append(f"  wall time {seconds:.1f}s, peak memory {peak_mib:.0f} MiB")
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


def materialise_all(
    settings: Settings,
    log_level: str = "WARNING",
    first_month: str | None = None,
    last_month: str | None = None,
    processes: int = 1,
    linkage: str = "full",
) -> RunOutcome:
    """One run of the whole graph over a month range (default: every partition).

    A range is a backfill: its ingest partitions run as one single-run backfill and the
    unpartitioned downstream assets are brought up to date in the same run. ``linkage``
    "incremental" links only the records the person index lacks (`defs.linkage`), in two runs
    (`_incremental_runs`).
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
    instance = dg.DagsterInstance.get()
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level.upper()}}}}
    run_config["ops"] = {"person_index": {"config": {"mode": linkage}}}
    # the landing drops and reference files observed first, so each staged table and the unit
    # costs record the versions they read (the UI's staleness starts from them)
    observed = defs.resolve_job_def("observe_sources").execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={"launched_by": "sim-pipeline run"},
        run_config={"loggers": run_config["loggers"]},
    )
    pending = None
    if linkage == "incremental":
        if processes > 1:
            raise ValueError("--linkage incremental runs in one process (--processes 1)")
        results, pending = _incremental_runs(settings, defs, instance, keys, all_keys, run_config)
    else:
        results = [_execute(defs, instance, keys, run_config, processes)]
    passed, failed, warned, failures = 0, [], [], []
    if not observed.success:
        failures.append("observe_sources: the landing drops or reference files could not be read")
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
        success=observed.success and all(r.success for r in results),
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


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    run_config: dict,
    processes: int,
    selection: list[dg.AssetKey] | None = None,
):
    """One run of the whole-graph job (or ``selection`` of it) over the partition range."""
    tags = {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
        "launched_by": "sim-pipeline run",
    }
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
    )


def _incremental_runs(
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    all_keys: list[str],
    run_config: dict,
) -> tuple[list, str | None]:
    """A new month with incremental linkage, as two runs. First the month's ingest, the
    person index (incremental) and the cohort; then everything after them over the month and
    every other month that linkage touched (`months_touched`), as one range, so each
    downstream asset runs once. Returns the runs and, when the second failed, the range it had
    to bring up to date (the person index already holds the month, so a repeat of the command
    would find nothing new and could not tell)."""
    graph = defs.resolve_asset_graph()
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    from sim_pipeline.defs.linkage import person_index

    first = dg.AssetSelection.assets(*person_index.keys, "cohort").upstream().resolve(graph)
    first = {k for k in first if k in materializable}
    cohort_before = _cohort_people(settings.warehouse_url)
    result = _execute(defs, instance, keys, run_config, 1, sorted(first))
    if not result.success:
        return [result], None
    study = [k[:7] for k in all_keys]
    touched = months_touched(settings.warehouse_url, result.run_id, cohort_before, study)
    wanted = {k[:7] for k in keys} | set(touched)
    inside = [k for k in all_keys if k[:7] in wanted]
    months = [k for k in all_keys if inside[0] <= k <= inside[-1]]  # one contiguous range
    second = sorted(materializable - first)
    after = _execute(defs, instance, months, {**run_config, "ops": {}}, 1, second)
    pending = None if after.success else f"{months[0][:7]} to {months[-1][:7]}"
    return [result, after], pending


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
