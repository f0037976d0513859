"""The project's Dagster instance (`sim_pipeline.dagster_instance`): Dagster's SQLite storage
with event-log connections kept open, writing files any Dagster process reads as before."""

from __future__ import annotations

import os
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


@dg.asset(
    partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c", "d"]),
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("fine", asset="parted")],
)
def parted():
    yield dg.MaterializeResult(
        metadata={"rows": 4}, check_results=[dg.AssetCheckResult(passed=True)]
    )


_RANGE = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "d"}


def _index_rows(storage: KeptOpenSqliteEventLogStorage) -> dict[str, list]:
    """What the cross-run index holds, without ids, times and run ids: events by kind and
    partition, asset rows, event tags, check executions."""
    with storage.index_connection() as conn:
        sql = conn.exec_driver_sql
        return {
            "events": sorted(
                sql("SELECT dagster_event_type, asset_key, partition FROM event_logs").fetchall(),
                key=str,
            ),
            "assets": sorted(sql("SELECT asset_key FROM asset_keys").fetchall()),
            # (a data version's value is the run's own)
            "tags": sorted(sql("SELECT asset_key, key FROM asset_event_tags").fetchall()),
            "checks": sorted(
                sql(
                    "SELECT asset_key, check_name, partition, execution_status "
                    "FROM asset_check_executions"
                ).fetchall(),
                key=str,
            ),
        }


def _run_rows(storage: KeptOpenSqliteEventLogStorage, run_id: str) -> list:
    with storage.run_connection(run_id) as conn:
        rows = conn.exec_driver_sql(
            "SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs"
        ).fetchall()
    return sorted(rows, key=str)


def test_a_batch_of_events_is_stored_as_one_by_one_in_one_transaction(tmp_path, monkeypatch):
    """Dagster sends a partition range's materialisations (and a run's planned events) as one
    batch; this storage writes them in one transaction per database with one checkpoint of
    the run's file. The stored rows are those of the same run stored event by event; a batch
    that fails keeps nothing and raises (Dagster then stores its events one by one)."""
    from sim_pipeline.dagster_instance import EVENT_BATCH_ENV

    stored: dict[str, tuple] = {}
    for label, size in (("alone", "0"), ("batched", "1000")):
        monkeypatch.setenv(EVENT_BATCH_ENV, size)
        home = ensure_dagster_home(tmp_path / label)
        batches: list[int] = []
        own = KeptOpenSqliteEventLogStorage.store_event_batch
        monkeypatch.setattr(
            KeptOpenSqliteEventLogStorage,
            "store_event_batch",
            lambda self, events, own=own, batches=batches: (
                batches.append(len(events)) or own(self, events)
            ),
        )
        with dg.DagsterInstance.from_config(str(home)) as inst:
            result = dg.materialize([parted], instance=inst, tags=_RANGE)
            assert result.success
            assert inst.get_materialized_partitions(dg.AssetKey("parted")) == set("abcd")
            storage = inst.event_log_storage
            stored[label] = (_run_rows(storage, result.run_id), _index_rows(storage))
            entries = list(inst.all_logs(result.run_id))
        if size == "0":
            assert not batches
        else:  # the four materialisations as one batch (and the run's planned events)
            assert 4 in batches and max(batches) >= 4, batches
    assert stored["batched"] == stored["alone"]
    assert len([r for r in stored["alone"][0] if r[0] == "ASSET_MATERIALIZATION"]) == 4

    # a batch failing part-way keeps nothing of it
    home = ensure_dagster_home(tmp_path / "failing")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        storage = inst.event_log_storage
        dagster_own = KeptOpenSqliteEventLogStorage.store_event
        calls = []

        def third_fails(self, event):
            calls.append(event)
            if len(calls) == 3:
                raise OSError("disk full")
            return dagster_own(self, event)

        monkeypatch.setattr(KeptOpenSqliteEventLogStorage, "store_event", third_fails)
        try:
            storage.store_event_batch(entries)
        except OSError:
            pass
        else:
            raise AssertionError("the failing batch did not raise")
        monkeypatch.setattr(KeptOpenSqliteEventLogStorage, "store_event", dagster_own)
        assert _run_rows(storage, entries[0].run_id) == []
        assert _index_rows(storage) == {"events": [], "assets": [], "tags": [], "checks": []}
        # and the storage still writes: the batch again, whole
        storage.store_event_batch(entries)
        assert _run_rows(storage, entries[0].run_id) == stored["alone"][0]


def test_the_storage_turns_batches_on_unless_told_otherwise(tmp_path, monkeypatch):
    """Dagster batches only with DAGSTER_EVENT_BATCH_SIZE set: the project's storage sets it
    when it is unset, and keeps a value already set (0 turns batching off)."""
    from sim_pipeline.dagster_instance import EVENT_BATCH_ENV, EVENT_BATCH_SIZE

    monkeypatch.delenv(EVENT_BATCH_ENV, raising=False)
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "a"))) as inst:
        assert isinstance(inst.event_log_storage, KeptOpenSqliteEventLogStorage)
        assert os.environ[EVENT_BATCH_ENV] == str(EVENT_BATCH_SIZE)
    monkeypatch.setenv(EVENT_BATCH_ENV, "0")
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "b"))):
        assert os.environ[EVENT_BATCH_ENV] == "0"
