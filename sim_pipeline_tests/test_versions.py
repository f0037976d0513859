"""Versions and staleness: code versions from the source an asset runs, data versions, the
landing drops and reference files as observed sources, and what automation requests after a
change (issue 20 item 1)."""

from __future__ import annotations

import os
import shutil
from unittest import mock

import dagster as dg
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from sim_pipeline.config import REFERENCE_DIR, Settings
from sim_pipeline.definitions import load_definitions
from sim_pipeline.defs.resources import MetricsResource
from sim_pipeline.defs.versions import (
    ROOT,
    asset_modules,
    defining_module,
    imported_modules,
    module_closure,
    source_version,
)
from sim_pipeline.landing.watch import drop_versions, file_version
from sim_pipeline.sources import BY_ASSET
from sim_pipeline_tests.conftest import PROJECT_KEY, copy_project, project_env

defs = load_definitions()


def test_every_materialisable_asset_has_a_code_version_and_every_source_is_observable():
    graph = defs.resolve_asset_graph()
    materialisable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    missing = [k.to_user_string() for k in materialisable if not graph.get(k).code_version]
    assert not missing
    sources = [k for k in graph.get_all_asset_keys() if graph.get(k).is_observable]
    names = {k.to_user_string() for k in sources}
    assert {"landing_ecds", "landing_mhs001mpi", "reference_unit_costs"} <= names
    assert len(names) == 12  # ten provider tables and two reference files
    # every staged table reads its own landing source, unit costs read both reference files
    assert graph.get(dg.AssetKey("staged_ecds")).parent_keys == {dg.AssetKey("landing_ecds")}
    assert {"reference_unit_costs", "reference_price_index"} <= {
        k.to_user_string() for k in graph.get(dg.AssetKey("unit_costs")).parent_keys
    }
    # observed every 15 minutes once an operator starts the schedule (off by default)
    schedule = defs.resolve_schedule_def("observe_sources_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "observe_sources"


def test_imports_are_read_from_the_source_including_submodules_named_in_from_imports():
    src = (
        "import os\nfrom sim_pipeline.defs.common import (\n    ANALYSTS,\n    table_asset,\n)\n"
        "from sim_pipeline.identity import linkage, not_a_module\nimport sim_pipeline.config\n"
    )
    assert imported_modules(src) == {
        "sim_pipeline.defs.common",
        "sim_pipeline.identity",
        "sim_pipeline.identity.linkage",
        "sim_pipeline.config",
    }


def test_a_module_edit_changes_the_code_version_of_the_assets_that_import_it_only(tmp_path):
    """On a copy of the package: an edit to the incremental linkage module changes
    `person_index`'s code version and leaves `unit_costs`' as it was."""
    root = tmp_path / "sim_pipeline"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    graph = defs.resolve_asset_graph()
    stop = asset_modules(graph.assets_defs)
    linkage_mod = "sim_pipeline.defs.linkage"
    costs_mod = "sim_pipeline.defs.costs"
    edited = "sim_pipeline.identity.incremental"
    assert edited in module_closure(linkage_mod, root, stop)
    assert edited not in module_closure(costs_mod, root, stop)
    before = {
        m: source_version(module_closure(m, root, stop), root) for m in (linkage_mod, costs_mod)
    }
    path = root / "identity" / "incremental.py"
    path.write_text(path.read_text() + "\n# a change\n")
    from sim_pipeline.defs import versions

    versions._file_hash.cache_clear()
    versions._imports.cache_clear()
    after = {
        m: source_version(module_closure(m, root, stop), root) for m in (linkage_mod, costs_mod)
    }
    assert after[linkage_mod] != before[linkage_mod]
    assert after[costs_mod] == before[costs_mod]
    # the report's templates are declared data files of publish.report: an edit to its style
    # sheet changes the report asset's code version, and not the linkage's
    report_mod = "sim_pipeline.defs.report"
    assert "sim_pipeline.publish.report" in module_closure(report_mod, root, stop)
    old = {
        m: source_version(module_closure(m, root, stop), root) for m in (report_mod, linkage_mod)
    }
    css = root / "publish" / "templates" / "report.css"
    css.write_text(css.read_text() + "\n/* a change */\n")
    versions._file_hash.cache_clear()
    new = {
        m: source_version(module_closure(m, root, stop), root) for m in (report_mod, linkage_mod)
    }
    assert new[report_mod] != old[report_mod] and new[linkage_mod] == old[linkage_mod]
    # the loaded definitions use exactly this scheme
    person_index = graph.get(dg.AssetKey("person_index")).assets_def
    assert defining_module(person_index) == linkage_mod
    assert graph.get(dg.AssetKey("person_index")).code_version == source_version(
        module_closure(linkage_mod, stop=stop)
    )


def test_drop_versions_change_with_content_not_with_touches(tmp_path):
    land = tmp_path / "landing"
    for source, month, body in [
        ("ae_rjz", "2019-01", "a\n1\n"),
        ("ae_rjz", "2019-02", "a\n2\n"),
        ("ae_rj1", "2019-02", "a\n3\n"),
    ]:
        (land / source / month).mkdir(parents=True, exist_ok=True)
        (land / source / month / "ecds.csv").write_text(body)
    (land / "ae_rjz" / "2019-01" / "MHS001MPI.csv").write_text("x\n")  # another table
    (land / "ae_rjz" / "2019-02" / "notes.csv").write_text("x\n")  # no contract's
    months = ["2019-01", "2019-02", "2019-03"]
    ecds = BY_ASSET["staged_ecds"]
    v1 = drop_versions(land, ecds, months)
    assert set(v1) == {"2019-01", "2019-02"}  # no drop in 2019-03: no version
    # touched, or rewritten with the same bytes: the same versions
    p = land / "ae_rjz" / "2019-01" / "ecds.csv"
    os.utime(p, ns=(1, 1))
    p.write_text("a\n1\n")
    assert drop_versions(land, ecds, months) == v1
    # a corrected file: only its month changes
    p.write_text("a\n1\n4\n")
    v2 = drop_versions(land, ecds, months)
    assert v2["2019-01"] != v1["2019-01"] and v2["2019-02"] == v1["2019-02"]
    # one provider's file removed: that month changes
    (land / "ae_rj1" / "2019-02" / "ecds.csv").unlink()
    assert drop_versions(land, ecds, months)["2019-02"] != v1["2019-02"]
    assert file_version(land / "nope.csv") is None


def _requested(result, key: str) -> set[str | None]:
    for r in result.results:
        if r.key == dg.AssetKey(key):
            subset = r.true_subset
            if subset.is_partitioned:
                return set(subset.expensively_compute_partition_keys())
            return {None} if subset.size else set()
    return set()


def _status(instance, definitions, key: str, partition: str | None = None) -> StaleStatus:
    """The stale status the web UI shows for ``key`` (Dagster's own resolver)."""
    graph = definitions.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance, graph, view)
    return resolver.get_status(dg.AssetKey(key), partition)


@pytest.mark.slow
def test_automation_requests_only_changed_partitions_and_recosts_a_new_unit_cost_file(
    keyed_backfill, tmp_path
):
    """On a copy of the backfilled project (2019-01..02):

    1. a new month's ingest and linkage: automation asks for that month of `events` (and of
       the other monthly assets), not every month;
    2. a replaced unit-cost file, once observed: `unit_costs` shows as stale and automation
       asks for it; once it ran, with new content, every costed month is stale and requested
       (Dagster marks an asset stale by its direct inputs' versions: the costs follow once
       `unit_costs` holds the new figures)."""
    root = copy_project(keyed_backfill["root"], tmp_path / "project")
    env = project_env(root / "landing", root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY)
    ref = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, ref)
    metrics = MetricsResource(
        unit_costs_path=str(ref / "unit_costs.csv"),
        price_index_path=str(ref / "price_index.csv"),
    )
    with (
        mock.patch.dict(os.environ, env),
        dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance,
    ):
        here = load_definitions(Settings.from_env(), resources={"metrics": metrics})
        job = here.resolve_job_def("sim_pipeline_all")
        observe = here.resolve_job_def("observe_sources")

        def run(keys: list[str], partition: str | None = None) -> None:
            selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors()
            r = job.execute_in_process(
                instance=instance,
                partition_key=partition,
                asset_selection=list(selection.resolve(here.resolve_asset_graph())),
                raise_on_error=False,
            )
            assert r.success, [e.message for e in r.all_events if e.is_failure]

        assert observe.execute_in_process(instance=instance).success
        run(["unit_costs"])  # now with the observed file's version as its input
        assert _status(instance, here, "unit_costs") == StaleStatus.FRESH
        cursor = dg.evaluate_automation_conditions(defs=here, instance=instance).cursor

        # 1. a new month
        staged = [k.to_user_string() for k in here.resolve_asset_graph().get_all_asset_keys()]
        staged = sorted(k for k in staged if k.startswith("staged_"))
        run([*staged, "person_index"], "2019-03-01")
        tick = dg.evaluate_automation_conditions(defs=here, instance=instance, cursor=cursor)
        assert _requested(tick, "events") == {"2019-03-01"}
        assert _requested(tick, "staged_ecds") == set()  # ingest is the sensor's

        # 2. a new unit-cost file
        path = ref / "unit_costs.csv"
        lines = path.read_text().splitlines()
        assert ",192,2018/19," in lines[1]
        lines[1] = lines[1].replace(",192,2018/19,", ",200,2018/19,")  # A&E repriced
        path.write_text("\n".join(lines) + "\n")
        assert observe.execute_in_process(instance=instance).success
        assert _status(instance, here, "unit_costs") == StaleStatus.STALE
        tick = dg.evaluate_automation_conditions(defs=here, instance=instance, cursor=tick.cursor)
        assert _requested(tick, "unit_costs") == {None}
        run(["unit_costs"])
        assert _status(instance, here, "unit_costs") == StaleStatus.FRESH
        # its new content is a new data version: every costed month is stale now
        for month in ("2019-01-01", "2019-02-01"):
            assert _status(instance, here, "person_month_costs", month) == StaleStatus.STALE
        tick = dg.evaluate_automation_conditions(defs=here, instance=instance, cursor=tick.cursor)
        assert {"2019-01-01", "2019-02-01"} <= _requested(tick, "person_month_costs")


def _landing_observations(instance, table: str) -> dict[str, int]:
    """{partition: observations recorded} of ``table``'s landing source."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(f"landing_{table}")), limit=10_000
    ).records
    out: dict[str, int] = {}
    for r in records:
        out[r.partition_key] = out.get(r.partition_key, 0) + 1
    return out


@pytest.mark.slow
def test_an_unchanged_month_is_not_observed_again_and_a_changed_one_is(keyed_backfill, tmp_path):
    """Observing the landing again records a new observation only for a month whose drops
    changed (`defs.observations.only_changed`): after the backfill's own observation, an
    unchanged landing adds none; one drop edited adds one, for its month and table, with the
    new data version, and the other tables none."""
    root = copy_project(keyed_backfill["root"], tmp_path / "project")
    env = project_env(root / "landing", root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY)
    with (
        mock.patch.dict(os.environ, env),
        dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance,
    ):
        here = load_definitions(Settings.from_env())
        observe = here.resolve_job_def("observe_sources")
        before = _landing_observations(instance, "ecds")
        assert before and set(before.values()) == {1}  # the backfill's run observed each once
        assert observe.execute_in_process(instance=instance).success
        assert _landing_observations(instance, "ecds") == before  # nothing new
        others = {
            t: _landing_observations(instance, t) for t in ("mhs001mpi", "police_s136_return")
        }

        drop = root / "landing" / "ae_rjz" / "2019-02" / "ecds.csv"
        assert drop.is_file(), drop
        text = drop.read_text()
        drop.unlink()  # a hard link to the session's landing: replaced, not written through
        drop.write_text(text + text.splitlines()[-1] + "\n")
        assert observe.execute_in_process(instance=instance).success
        after = _landing_observations(instance, "ecds")
        assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)} == {
            "2019-02-01": 1
        }
        assert {t: _landing_observations(instance, t) for t in others} == others
        version = instance.get_latest_data_version_record(
            dg.AssetKey("landing_ecds"), is_source=True, partition_key="2019-02-01"
        )
        months = drop_versions(root / "landing", BY_ASSET["staged_ecds"], ["2019-02"])
        assert version.asset_observation.data_version == months["2019-02"]
        # what the change is for downstream: that month of the staged table is stale, not others
        assert _status(instance, here, "staged_ecds", "2019-02-01") == StaleStatus.STALE
        assert _status(instance, here, "staged_ecds", "2019-01-01") == StaleStatus.FRESH
