"""Staging in several processes (`defs.orchestrate`, `defs.forked`): how the tables are shared
out, what is held back when a staged table does not finish, and the forked worker itself (its
progress relay, its masked errors, its death and its cancellation).

That the tables come out the same as one run's: `test_end_to_end.py::
test_second_run_gives_identical_tables` (a two-process backfill, then one run). That a staged
table failing holds its downstream back in the command's share:
`test_damaged_extracts.py::test_an_identifier_in_a_record_key_blocks_the_run_before_anything_
is_written`; that the gate judges every share's checks: the damaged-drops fixture there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from sim_pipeline.defs.orchestrate import (
    INGEST_WORKERS_ENV,
    _interrupted,
    _LoggedRun,
    _observed,
    _unfinished,
    default_ingest_workers,
    staged_groups,
)
from sim_pipeline.landing.layout import Landing
from sim_pipeline.sources import SOURCE_TABLES

NAMES = sorted(t.asset_name for t in SOURCE_TABLES)


def _sizes(landing: Path) -> dict[str, int]:
    lay = Landing(landing)
    return {t.asset_name: sum(p.stat().st_size for p in lay.csv_files(t)) for t in SOURCE_TABLES}


@pytest.mark.parametrize("n", [1, 2, 3, 20])
def test_the_staged_tables_are_shared_out_by_landing_bytes(small_synth, n):
    landing = small_synth[0]
    groups = staged_groups(landing, n)
    assert len(groups) == min(n, len(NAMES))
    assert sorted(name for g in groups for name in g) == NAMES  # each table exactly once
    assert all(groups)
    size = _sizes(landing)
    totals = [sum(size[name] for name in g) for g in groups]
    assert totals == sorted(totals)  # the lightest first: the command's own share
    # largest first, each to the lightest share: no share is heavier than another by more
    # than the largest table
    assert totals[-1] - totals[0] <= max(size.values())
    if n == 2:  # and the two largest tables go to different processes
        largest = sorted(size, key=size.get, reverse=True)[:2]
        assert all(sum(name in g for name in largest) == 1 for g in groups)


def test_a_landing_without_drops_still_gives_no_empty_share(tmp_path):
    groups = staged_groups(tmp_path, 3)
    assert [len(g) for g in groups] == [4, 3, 3]
    assert sorted(name for g in groups for name in g) == NAMES


def test_the_default_is_two_processes_on_two_cores(monkeypatch):
    monkeypatch.delenv(INGEST_WORKERS_ENV, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_ingest_workers() == 2
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert default_ingest_workers() == 1
    monkeypatch.setenv(INGEST_WORKERS_ENV, "1")
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_ingest_workers() == 1
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(INGEST_WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=INGEST_WORKERS_ENV):
            default_ingest_workers()


def _event(kind: str, step: str, **check) -> SimpleNamespace:
    data = None
    if check:
        data = SimpleNamespace(
            passed=check["passed"],
            blocking=check["blocking"],
            asset_key=dg.AssetKey(step),
        )
    return SimpleNamespace(event_type_value=kind, step_key=step, event_specific_data=data)


def test_a_staged_table_that_did_not_finish_in_any_share_holds_its_downstream():
    """What one run would not have let downstream steps read: a step that failed or never
    ran (its share's worker died), or whose blocking check failed; a warning does not."""
    worker = SimpleNamespace(
        all_events=[
            _event("STEP_SUCCESS", "staged_ecds"),
            _event("STEP_FAILURE", "staged_mhs001mpi"),
            _event("STEP_SUCCESS", "staged_police_cad_incidents"),
            _event(
                "ASSET_CHECK_EVALUATION",
                "staged_police_cad_incidents",
                passed=False,
                blocking=True,
            ),
        ]
    )
    own = SimpleNamespace(
        all_events=[
            _event("STEP_SUCCESS", "staged_las"),
            _event("ASSET_CHECK_EVALUATION", "staged_las", passed=False, blocking=False),
        ]
    )
    names = ["staged_ecds", "staged_mhs001mpi", "staged_police_cad_incidents", "staged_las"]
    names.append("staged_programme_register")  # in a share whose worker died: no events
    assert _unfinished([own, worker], names) == {
        dg.AssetKey("staged_mhs001mpi"),
        dg.AssetKey("staged_police_cad_incidents"),
        dg.AssetKey("staged_programme_register"),
    }


def _failure(kind: str, error: str) -> SimpleNamespace:
    return SimpleNamespace(
        event_type_value=kind,
        event_specific_data=SimpleNamespace(error=SimpleNamespace(cls_name=error)),
    )


def test_an_interrupted_share_is_told_from_a_failed_one():
    """Ctrl-C in a share stops the command before the rest of the graph (`_interrupted`): the
    interrupt shows on the step's failure or on the run's, which Dagster stores as
    PIPELINE_FAILURE; a failure of the step's own is not an interrupt."""
    step = dg.DagsterEventType.STEP_FAILURE.value
    run = dg.DagsterEventType.RUN_FAILURE.value
    assert run == "PIPELINE_FAILURE"
    interrupt = "DagsterExecutionInterruptedError"
    assert _interrupted(SimpleNamespace(all_events=[_failure(step, interrupt)]))
    assert _interrupted(SimpleNamespace(all_events=[_failure(run, interrupt)]))
    assert not _interrupted(SimpleNamespace(all_events=[_failure(step, "DagsterError")]))
    assert not _interrupted(SimpleNamespace(all_events=[_failure(run, "DagsterError")]))


def test_a_share_run_read_back_holds_what_the_command_reads_and_no_materialisation():
    """A run another process executed, read back from the instance (`_LoggedRun.of`): its step
    successes and check evaluations, which `_unfinished` and the summary read, but not the
    partitions' materialisations (hundreds a staged share)."""

    @dg.asset(
        partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c"]),
        check_specs=[dg.AssetCheckSpec("fine", asset="parted")],
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def parted():
        yield dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [parted],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "a",
                "dagster/asset_partition_range_end": "c",
            },
        )
        assert len(instance.get_materialized_partitions(dg.AssetKey("parted"))) == 3
        read = _LoggedRun.of(instance, result.run_id, result.success)
    kinds = sorted(e.event_type_value for e in read.all_events)
    assert kinds == ["ASSET_CHECK_EVALUATION", "STEP_SUCCESS"], kinds
    assert not _unfinished([read], ["parted"])


def test_an_observer_that_ran_no_run_reads_back_as_a_failed_observation():
    """The sources' observer process died or raised before its run existed: the observation
    counts as failed (the command's summary says so, with the masked reason), never as passed."""
    from sim_pipeline.defs.forked import WorkerResult

    with dg.instance_for_test() as instance:
        died = _observed(
            instance, WorkerResult(None, False, "the worker process ended with code 9")
        )
        unknown = _observed(instance, WorkerResult("not-a-run", True))
    assert not died.success and died.error == "the worker process ended with code 9"
    assert not died.all_events
    assert not unknown.success


_WORKER_SCRIPT = """
import os, sys, time
from sim_pipeline.defs.forked import ForkedRun, can_fork
from sim_pipeline.progress import Progress
import io

assert can_fork()
case = sys.argv[1]

def run():
    if case == "raises":
        raise RuntimeError("conversion failed for '9434765919' in row 12345")
    if case == "dies":
        os._exit(3)
    from sim_pipeline.progress import current
    current().advance(stage="staged_a", rows=10)
    current().advance(stage="staged_b", rows=5)
    return "run-1", True

stream = io.StringIO()
if case == "at_once":  # runs unstarted; forking it started no thread, so another can follow
    first = ForkedRun(run, at_once=True)
    assert can_fork()
    second = ForkedRun(run)
    result = first.wait()  # its progress and result read from the pipe here
    print("result", result.run_id, result.success, result.error)
    print("second alive", second._process.is_alive())
    second.cancel()
    sys.exit(0)
worker = ForkedRun(run, warm=lambda: None)
if case == "cancel":
    worker.cancel()  # never started: stopped while it waits
    print("alive", worker._process.is_alive(), "code", worker._process.exitcode)
    sys.exit(0)
with Progress("t", total=2, unit="steps", stream=stream, live=False, min_interval=0) as p:
    worker.start(p)
    result = worker.wait()
print("result", result.run_id, result.success, result.error)
print("done", p.done, "rows", p.rows)
"""


def _worker(case: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WORKER_SCRIPT), case],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr  # a traceback would go to stderr


def test_a_forked_worker_relays_its_progress_and_result():
    out = _worker("ok")
    assert "result run-1 True None" in out
    assert "done 2 rows 15" in out


def test_a_worker_that_raises_reports_the_error_masked():
    out = _worker("raises")
    assert "result None False RuntimeError: conversion failed for <value>" in out, out
    assert "9434765919" not in out and "12345" not in out and "Traceback" not in out


def test_a_worker_that_dies_reports_its_exit_code():
    out = _worker("dies")
    assert "result None False the worker process ended with code 3" in out


def test_a_worker_forked_to_run_at_once_runs_without_start_and_lets_another_fork():
    """The sources' observer: forked to run at once, before the staging worker is forked
    (`orchestrate.materialise_all`); the second fork is still safe (no thread), and the first's
    result is read when waited for."""
    out = _worker("at_once")
    assert "result run-1 True None" in out, out
    assert "second alive True" in out, out


def test_a_worker_never_started_is_stopped_by_cancel():
    out = _worker("cancel")
    assert "alive False code -15" in out
