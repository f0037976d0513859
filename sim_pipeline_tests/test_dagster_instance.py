"""The project's Dagster instance (`sim_pipeline.dagster_instance`): Dagster's SQLite storage
with event-log connections kept open, writing files any Dagster process reads as before."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import dagster as dg

from sim_pipeline.config import ensure_dagster_home
from sim_pipeline.dagster_instance import KeptOpenSqliteEventLogStorage, SimInstance


@dg.asset
def tiny() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset_check(asset=tiny)
def tiny_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _materialise(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([tiny, tiny_rows], instance=instance)
    assert result.success
    return result.run_id


def test_the_home_dagster_writes_uses_the_kept_open_event_log(tmp_path):
    home = ensure_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert isinstance(inst, SimInstance)
        assert isinstance(inst.event_log_storage, KeptOpenSqliteEventLogStorage)
        assert not inst.telemetry_enabled
        run_id = _materialise(inst)
        assert inst.get_run_by_id(run_id).is_success
    # the same files as Dagster's default storage: a plain instance reads the run, its events,
    # the asset's materialisation and the check's evaluation
    plain = tmp_path / "plain"
    shutil.copytree(home, plain)
    (plain / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(plain)) as inst:
        assert type(inst.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert inst.get_run_by_id(run_id).is_success
        kinds = {e.dagster_event.event_type_value for e in inst.all_logs(run_id)}
        assert {"ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "PIPELINE_SUCCESS"} <= kinds
        event = inst.get_latest_materialization_event(dg.AssetKey("tiny"))
        assert event is not None and event.run_id == run_id
        check = inst.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("tiny"), "tiny_rows")]
        )
        assert len(check) == 1


def test_a_table_found_in_the_index_is_not_asked_about_again(tmp_path, monkeypatch):
    """Dagster asks whether the index has a table before each asset event's tags; a table
    found is remembered (no new engine per event), a table not found is asked about again and
    found once it exists, and a wiped storage asks again."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    home = ensure_dagster_home(tmp_path / "home")
    asked: list[str] = []
    dagster_own = SqliteEventLogStorage.has_table
    monkeypatch.setattr(
        SqliteEventLogStorage,
        "has_table",
        lambda self, name: asked.append(name) or dagster_own(self, name),
    )
    with dg.DagsterInstance.from_config(str(home)) as inst:
        storage = inst.event_log_storage
        for _ in range(3):
            _materialise(inst)
        assert asked and len(asked) == len(set(asked)), asked  # each table asked about once
        assert storage.has_table("asset_event_tags")
        assert not storage.has_table("sim_not_yet") and not storage.has_table("sim_not_yet")
        with storage.index_connection() as conn:
            conn.exec_driver_sql("CREATE TABLE sim_not_yet (x INTEGER)")
        assert storage.has_table("sim_not_yet")
        assert asked.count("sim_not_yet") == 3
        storage.wipe()
        storage.has_table("asset_event_tags")
        assert asked.count("asset_event_tags") == 2


def test_each_write_reaches_the_run_file_that_the_web_ui_watches(tmp_path):
    """The web UI learns of a run's new events from changes to the run's own database file;
    with the connection kept open the write-ahead log is checkpointed after each write."""
    home = ensure_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        run_id = _materialise(inst)
        storage = inst.event_log_storage
        path = storage.path_for_shard(run_id)
        with storage.run_connection(run_id) as conn:
            before = conn.exec_driver_sql("SELECT COUNT(*) FROM event_logs").scalar()
        inst.report_engine_event("one more event", inst.get_run_by_id(run_id))
        # the file itself holds every event: a copy of it alone, without the write-ahead log
        copy = tmp_path / "copy.db"
        shutil.copy(path, copy)
        with sqlite3.connect(copy) as raw:
            (after,) = raw.execute("SELECT COUNT(*) FROM event_logs").fetchone()
        assert after == before + 1


def test_the_repository_dagster_yaml_names_the_same_instance(tmp_path):
    home = tmp_path / "repo_yaml"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert isinstance(inst, SimInstance)
        assert isinstance(inst.event_log_storage, KeptOpenSqliteEventLogStorage)
