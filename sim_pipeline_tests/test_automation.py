"""Landing sensor, monthly schedule, backfill and downstream automation produce the right requests."""

import datetime as dt
import os
import shutil
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from sim_pipeline.definitions import load_definitions
from sim_pipeline.defs.automation import landing_sensor
from sim_pipeline.defs.resources import LandingResource
from sim_pipeline.landing.watch import changed_drops, decode_cursor, encode_cursor, scan_landing
from sim_pipeline.warehouse import Warehouse
from sim_pipeline_tests.conftest import (
    OTHER_KEY,
    PROJECT_KEY,
    cli,
    command_events,
    copy_project,
    project_env,
)
from sim_pipeline_tests.samples import GOOD, write_drop

defs = load_definitions()


MONTHS = ["2019-01", "2019-02"]


@pytest.fixture
def landing(tmp_path):
    root = tmp_path / "landing"
    for m in MONTHS:
        write_drop(root, "staged_ecds", m, [GOOD["staged_ecds"]], source="ae_rjz")
        write_drop(root, "staged_police_cad_incidents", m, [GOOD["staged_police_cad_incidents"]])
    return root


def _tick(landing, cursor=None):
    # the landing folder comes from the environment only (no resource config can redirect it)
    with mock.patch.dict(os.environ, {"SIM_LANDING_DIR": str(landing)}):
        ctx = dg.build_sensor_context(cursor=cursor, resources={"landing": LandingResource()})
        result = landing_sensor(ctx)
    return result.run_requests, result.cursor


def test_scan_rehashes_only_changed_files_and_ignores_touches(landing):
    first = scan_landing(landing, MONTHS)
    assert len(first) == 4
    path = landing / "ae_rjz" / "2019-01" / "ecds.csv"
    os.utime(path, ns=(1, 1))  # touched, same content
    second = scan_landing(landing, MONTHS, first)
    assert changed_drops(first, second) == {}
    path.write_text(
        path.read_text()
        + path.read_text().splitlines()[1].replace("100000000001", "100000000002")
        + "\n"
    )
    third = scan_landing(landing, MONTHS, second)
    assert changed_drops(second, third) == {"2019-01": {"staged_ecds": ["ae_rjz/2019-01/ecds.csv"]}}
    assert decode_cursor(encode_cursor(third)) == third


def test_sensor_requests_new_drops_once_and_then_only_changes(landing):
    requests, cursor = _tick(landing)
    got = {
        (r.partition_key, tuple(k.to_user_string() for k in r.asset_selection)) for r in requests
    }
    assert got == {
        ("2019-01-01", ("staged_ecds", "staged_police_cad_incidents")),
        ("2019-02-01", ("staged_ecds", "staged_police_cad_incidents")),
    }
    assert len({r.run_key for r in requests}) == 2
    # nothing changed: no request, however often it ticks
    again, cursor2 = _tick(landing, cursor)
    assert again == [] and decode_cursor(cursor2) == decode_cursor(cursor)
    # a resubmitted ECDS drop for 2019-02 and a new month of police data
    write_drop(
        landing,
        "staged_ecds",
        "2019-02",
        [GOOD["staged_ecds"], dict(GOOD["staged_ecds"], Generated_Record_ID="100000000009")],
        source="ae_rjz",
    )
    write_drop(
        landing, "staged_police_cad_incidents", "2019-03", [GOOD["staged_police_cad_incidents"]]
    )
    changed, _ = _tick(landing, cursor2)
    got = {(r.partition_key, tuple(k.to_user_string() for k in r.asset_selection)) for r in changed}
    assert got == {
        ("2019-02-01", ("staged_ecds",)),
        ("2019-03-01", ("staged_police_cad_incidents",)),
    }
    # files outside the partitions or not a known table never trigger
    (landing / "ae_rjz" / "2030-01").mkdir()
    shutil.copy(
        landing / "ae_rjz" / "2019-01" / "ecds.csv", landing / "ae_rjz" / "2030-01" / "ecds.csv"
    )
    (landing / "ae_rjz" / "2019-01" / "notes.csv").write_text("x\n")
    assert _tick(landing, _tick(landing, cursor2)[1])[0] == []


def test_monthly_schedule_ingests_the_month_that_just_closed():
    schedule = defs.resolve_schedule_def("monthly_ingest_schedule")
    assert schedule.cron_schedule == "0 6 20 * *" and schedule.execution_timezone == "Europe/London"
    when = dt.datetime(2019, 3, 20, 6, 0, tzinfo=ZoneInfo("Europe/London"))
    with dg.build_schedule_context(scheduled_execution_time=when) as ctx:
        data = schedule.evaluate_tick(ctx)
    assert [r.partition_key for r in data.run_requests] == ["2019-02-01"]
    assert data.run_requests[0].job_name in (None, "ingest_monthly")


def _upstream_materialised(instance, failing_check: str | None = None):
    """What an ingest run records: a materialisation plus every check's evaluation."""
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if not key.to_user_string().startswith("staged_"):
            continue
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition="2019-01-01"))
        for ck in graph.asset_check_keys:
            if ck.asset_key == key:
                failed = f"{key.to_user_string()}:{ck.name}" == failing_check
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(asset_key=key, check_name=ck.name, passed=not failed)
                )


@pytest.mark.parametrize(
    "failing_check",
    [
        None,
        "staged_ecds:ledger_balances",
        "staged_ecds:provider_drops_present",
        "staged_ecds:files_readable",
    ],
)
def test_the_summary_runs_whatever_the_staged_checks_say(failing_check):
    """ingest_summary is requested once upstream changed, also when a staged check failed (a
    missing provider drop or a rejected file): the auditor's summary must show it, not go
    stale. Those checks do not block; the summary's own gate does (next test)."""
    summary = dg.AssetKey("ingest_summary")
    sel = dg.AssetSelection.assets(summary)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, asset_selection=sel, instance=instance)
        _upstream_materialised(instance, failing_check)
        result = dg.evaluate_automation_conditions(
            defs=defs, asset_selection=sel, instance=instance, cursor=first.cursor
        )
        assert result.get_num_requested(summary) == 1


@pytest.mark.parametrize("gate_passed, requested", [(True, 1), (False, 0)])
def test_linkage_waits_for_the_ingest_gate(gate_passed, requested):
    """person_index is requested after a new ingest summary only when its blocking check
    ingest_accepted passed."""
    index, summary = dg.AssetKey("person_index"), dg.AssetKey("ingest_summary")
    sel = dg.AssetSelection.assets(index)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, asset_selection=sel, instance=instance)
        _upstream_materialised(instance)
        instance.report_runless_asset_event(dg.AssetMaterialization(summary))
        graph = defs.resolve_asset_graph()
        for ck in graph.asset_check_keys:
            if ck.asset_key == summary:
                passed = gate_passed or ck.name != "ingest_accepted"
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(asset_key=summary, check_name=ck.name, passed=passed)
                )
        result = dg.evaluate_automation_conditions(
            defs=defs, asset_selection=sel, instance=instance, cursor=first.cursor
        )
        assert result.get_num_requested(index) == requested


def _backfill(env: dict[str, str], root: Path, first: str, last: str):
    return cli("backfill", "--from", first, "--to", last, env=env, cwd=root)


@pytest.mark.slow
def test_backfill_of_a_month_range_brings_downstream_up_to_date(keyed_backfill, tmp_path):
    """(conftest `keyed_backfill`: `backfill --from 2019-01 --to 2019-02` on a fresh project,
    project key, every month's drops in landing.)"""
    root, env, r = keyed_backfill["root"], keyed_backfill["env"], keyed_backfill["run"]
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as inst:
        for key in ("staged_ecds", "staged_mhs502_ward_stay"):
            assert inst.get_materialized_partitions(dg.AssetKey(key)) == {
                "2019-01-01",
                "2019-02-01",
            }
        summary = inst.get_latest_materialization_event(dg.AssetKey("ingest_summary"))
        ecds = inst.get_latest_materialization_event(dg.AssetKey("staged_ecds"))
        assert summary is not None and summary.timestamp > ecds.timestamp
    wh = Warehouse(env["SIM_WAREHOUSE_URL"])
    assert set(wh.read("ingest_ledger")["month"]) == {"2019-01", "2019-02"}
    wh.dispose()
    # the summary is honest about the months not yet ingested
    assert "WARN   ingest_summary:every_landing_file_accounted" in r.stdout
    # a month range outside the partitions is refused before anything runs (on a copy)
    mine = copy_project(root, tmp_path / "project")
    bad = _backfill(_keyed_env(mine), mine, "2030-01", "2030-02")
    assert bad.returncode == 2 and "no monthly partition" in bad.stderr


def _keyed_env(root: Path) -> dict[str, str]:
    """The environment of a private copy of `keyed_backfill` (its project key)."""
    return project_env(root / "landing", root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY)


PARTITIONED = ("staged_ecds", "events", "person_month_metrics", "person_month_costs")


@pytest.mark.slow
def test_one_new_month_touches_only_its_partitions(keyed_backfill, tmp_path):
    """A new month re-runs that month's partitions and the small unpartitioned assets; earlier
    months' rows stay as they were."""
    root = copy_project(keyed_backfill["root"], tmp_path / "project")
    env = _keyed_env(root)
    wh = Warehouse(env["SIM_WAREHOUSE_URL"])
    before = {t: wh.read(t) for t in PARTITIONED[1:]}
    r = _backfill(env, root, "2019-03", "2019-03")
    assert r.returncode == 0, r.stdout + r.stderr
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as inst:
        touched: dict[str, set[str | None]] = {}
        for event in command_events(inst, dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = event.event_specific_data.materialization
            touched.setdefault(mat.asset_key.to_user_string(), set()).add(mat.partition)
    for name in PARTITIONED:
        assert touched[name] == {"2019-03-01"}, name
    for name in ("person_index", "cohort", "programme_headline"):
        assert touched[name] == {None}, name
    for name, old in before.items():
        new = wh.read(name)
        kept = new[new["month"] < "2019-03"]
        cols = list(old.columns)
        pd.testing.assert_frame_equal(
            kept.sort_values(cols).reset_index(drop=True),
            old.sort_values(cols).reset_index(drop=True),
            obj=name,
        )
        assert set(new["month"]) == {"2019-01", "2019-02", "2019-03"}, name
    wh.dispose()


@pytest.mark.slow
def test_mixed_pseudonymisation_keys_block_downstream(keyed_backfill, tmp_path):
    """Rotating the key and re-ingesting only some months leaves mixed tokens: flagged, blocking."""
    root = copy_project(keyed_backfill["root"], tmp_path / "project")
    env = project_env(root / "landing", root, SIM_PSEUDONYMISATION_KEY=OTHER_KEY)
    r = _backfill(env, root, "2019-02", "2019-02")
    assert r.returncode == 1
    assert "FAILED ingest_summary:single_pseudonymisation_key" in r.stdout
    # re-ingesting every month under the new key clears it
    r = _backfill(env, root, "2019-01", "2019-02")
    assert r.returncode == 0 and "single_pseudonymisation_key" not in r.stdout
