"""Running the real CLI (or any command) in a child process for the benchmarks, and the scratch
landings they run on: `bench.incremental` and `bench.month` measure with the same pieces.

`measure` reports a command's own wall time, CPU and peak RSS: a wrapper process reads its
children's usage, so each command is measured alone (a parent's ``RUSAGE_CHILDREN`` peak is the
largest of every child it ever waited for).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sim_pipeline.config import OUTPUT_FOLDERS, output_folder_env
from sim_pipeline.progress import current


def landing_without(src: Path, dest: Path, month: str) -> None:
    """``dest``: every file of ``src`` except the drops of ``month``, hard-linked where the
    file system allows (staging never follows a symbolic link out of the landing folder)."""
    for path in src.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(src)
        if month in rel.parts:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest / rel)
        except OSError:
            shutil.copy2(path, dest / rel)


def project_folders(project: Path) -> dict[str, str]:
    """Environment that keeps a benchmark project's outputs (the GX project and Data Docs,
    reports, published tables) inside ``project``: by default they lie beside the landing
    folder, which a benchmark's projects may share with each other and with the user's runs
    (a GX project that already holds other runs' results makes each validation slower)."""
    return {output_folder_env(name): str(project / name) for name in OUTPUT_FOLDERS}


# runs the command and reports its own children's peak RSS and CPU (see the module docstring)
_WRAP = (
    "import json,resource,subprocess,sys;p=subprocess.run(sys.argv[1:]);"
    "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
    "sys.stderr.write('\\nRUSAGE '+json.dumps([r.ru_maxrss,r.ru_utime+r.ru_stime])+'\\n');"
    "sys.exit(p.returncode)"
)


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[dict, str, str]:
    """Run ``argv``; its figures (exit code, wall and CPU seconds, peak RSS), stdout, stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAP, *argv], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if (progress := current()) is not None:  # the benchmark's stages, one per command
        cli = "sim_pipeline.cli" in argv
        progress.advance(stage=" ".join(["sim-pipeline", *argv[3:6]]) if cli else "the generator")
    found = re.findall(r"RUSAGE (\[.*\])", proc.stderr)
    maxrss, cpu = json.loads(found[-1]) if found else (0, 0.0)
    figures = {
        "exit_code": proc.returncode,
        "wall_seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(maxrss / 1024, 1),
    }
    return figures, proc.stdout, proc.stderr


_RUN_IDS = re.compile(r"sim-pipeline run \w+ \(runs? ([0-9a-f-]{36}(?:, [0-9a-f-]{36})*)\)")


def printed_run_ids(stdout: str) -> list[str]:
    """The Dagster run ids a `sim-pipeline run` or `backfill` printed: ``(run ID)`` for one
    run, ``(runs ID, ID, ...)`` for several (staging shares, an incremental month's phases)."""
    found = _RUN_IDS.search(stdout)
    return found.group(1).split(", ") if found else []


def run_cli(args: list[str], env: dict[str, str]) -> dict:
    """``sim-pipeline ARGS`` measured: the figures, the command, its Dagster run ids (joined by
    ", ") and, when it failed, the tail of its output."""
    figures, stdout, stderr = measure([sys.executable, "-m", "sim_pipeline.cli", *args], env)
    return {
        "command": "sim-pipeline " + " ".join(args),
        **figures,
        "run_id": ", ".join(printed_run_ids(stdout)) or None,
        "tail": (stdout[-3000:] + stderr[-3000:]) if figures["exit_code"] else "",
    }


def span_union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) ``spans``."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return covered


def step_timings(dagster_home: Path, run_ids: list[str]) -> dict:
    """Where a command's time went, from its Dagster runs (in the instance at
    ``dagster_home``): each run's seconds, ``in_runs_seconds`` (the union of the runs' spans:
    runs in parallel processes overlap) and each step's seconds summed over the runs, largest
    first. The command's wall time less ``in_runs_seconds`` is its start-up, the time between
    its runs and its summary."""
    import dagster as dg

    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
            stats = [s for r in run_ids for s in instance.get_run_step_stats(r)]
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old
    covered = span_union(
        [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]
    )
    seconds: dict[str, float] = {}
    for s in stats:
        if s.start_time is not None and s.end_time is not None:
            seconds[s.step_key] = seconds.get(s.step_key, 0.0) + s.end_time - s.start_time
    by_start = sorted(records, key=lambda r: r.start_time or 0.0)
    return {
        "runs": [
            {
                "run_id": r.dagster_run.run_id,
                "seconds": round(r.end_time - r.start_time, 2)
                if r.start_time and r.end_time
                else None,
            }
            for r in by_start
        ],
        "in_runs_seconds": round(covered, 2),
        "steps": [
            {"step": k, "seconds": round(v, 2)}
            for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])
        ],
    }
