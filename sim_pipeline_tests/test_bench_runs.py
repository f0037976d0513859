"""The benchmarks' run helpers (`sim_pipeline.bench.runs`): the run ids a command printed, and
where its time went from its Dagster runs."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from sim_pipeline.bench.incremental import _where
from sim_pipeline.bench.runs import printed_run_ids, span_union, step_timings

A = "6bf60dd9-6054-4e73-a985-e1ea603a7909"
B = "acf09960-a4cd-4d15-b1f8-22d81cc527e9"


def test_the_run_ids_of_one_run_and_of_several():
    """The command prints ``(run ID)`` for one run and ``(runs ID, ID)`` for several (staging
    shares, an incremental month's phases); both are read, and a summary without ids gives
    none."""
    assert printed_run_ids(f"x\nsim-pipeline run SUCCEEDED (run {A})\n  landing: x") == [A]
    assert printed_run_ids(f"sim-pipeline run FAILED (runs {A}, {B})\n") == [A, B]
    assert printed_run_ids("sim-pipeline run FAILED: no partition between") == []


def test_the_union_of_overlapping_spans():
    assert span_union([(0.0, 10.0), (5.0, 12.0), (20.0, 25.0)]) == pytest.approx(17.0)
    assert span_union([(3.0, 4.0), (0.0, 10.0)]) == pytest.approx(10.0)
    assert span_union([]) == 0.0


@dg.asset
def first_step() -> int:
    return 1


@dg.asset
def second_step(first_step: int) -> int:
    return first_step + 1


def test_step_timings_read_each_runs_span_and_sum_each_step_over_the_runs(tmp_path, monkeypatch):
    """Two runs in a Dagster instance on disk: both runs' seconds, their union, and each step
    summed over them; `_where` splits a command's wall time into outside the runs and its
    steps by phase."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ids = []
    with dg.DagsterInstance.get() as instance:
        for _ in range(2):
            ids.append(dg.materialize([first_step, second_step], instance=instance).run_id)
    monkeypatch.setenv("DAGSTER_HOME", "/elsewhere")  # restored after the call
    timings = step_timings(Path(home), ids)
    assert os.environ["DAGSTER_HOME"] == "/elsewhere"
    assert [r["run_id"] for r in timings["runs"]] == ids
    run_seconds = [r["seconds"] for r in timings["runs"]]
    assert all(s is not None and s > 0 for s in run_seconds)
    assert 0 < timings["in_runs_seconds"] <= sum(run_seconds) + 0.01
    steps = {s["step"]: s["seconds"] for s in timings["steps"]}
    assert set(steps) == {"first_step", "second_step"}
    assert sum(steps.values()) <= timings["in_runs_seconds"] + 0.01
    where = _where(timings["in_runs_seconds"] + 5.0, timings)
    assert where["outside_runs_seconds"] == pytest.approx(5.0, abs=0.01)
    assert where["phase_step_seconds"]["downstream"] == pytest.approx(sum(steps.values()), 0.01)
    assert where["phase_step_seconds"]["ingest"] == where["phase_step_seconds"]["linkage"] == 0
