"""`sim-pipeline bench incremental`: what a new month costs, incrementally and by a full rebuild.

On a landing folder (default: the demo), three runs of the real CLI in a scratch folder:

1. **base**: a full run on every month but the last (``SIM_LAST_MONTH`` = the month before):
   the warehouse a deployment holds before the month's drops arrive;
2. **incremental**: on a copy of that warehouse and Dagster instance, the last month's drops
   added and ``backfill --from M --to M --linkage incremental`` (ingest the month, link its
   records against the saved person index and model, recompute that month's events, metrics
   and costs and what reads them, and any earlier month it touched);
3. **full rebuild**: a full run on every month from scratch.

Reports wall and CPU seconds and peak memory of each (each command's own, `bench.runs`), where
each command's time went (outside its Dagster runs, its steps by phase: ingest, linkage,
downstream; `_where`), the incremental run as a share of the full rebuild, and how the two
person indexes agree (pairwise precision and recall of the incremental clusters against the
full relink's, known keys kept).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from sim_pipeline.bench.runs import landing_without, project_folders, run_cli, step_timings
from sim_pipeline.identity import scoring


def _months(landing: Path) -> list[str]:
    from sim_pipeline.landing.layout import Landing

    return sorted({p.parent.name for p in Landing(landing).csv_files()})


def _run(args: list[str], env: dict[str, str]) -> dict:
    """`bench.runs.run_cli`, raising when the command fails (every figure needs all three),
    with where its time went (`_where`)."""
    figures = run_cli(args, env)
    if figures["exit_code"] != 0:
        print(figures["tail"], file=sys.stderr)
        raise RuntimeError(f"{figures['command']} exited {figures['exit_code']}")
    if figures["run_id"]:
        timings = step_timings(Path(env["DAGSTER_HOME"]), figures["run_id"].split(", "))
        figures["where"] = _where(figures["wall_seconds"], timings)
    return figures


# The graph's steps by what they do (anything else: "downstream").
_PHASES = {
    "ingest": ("landing_", "reference_", "staged_", "drop_coverage", "ingest_", "unit_costs"),
    "linkage": ("person_index", "cohort"),
}


def _where(wall: float, timings: dict) -> dict:
    """A command's wall time split: outside its Dagster runs (start-up, between runs, the
    summary), and its steps' seconds by phase (ingest, linkage, downstream; steps of
    parallel staging runs overlap, so the phases can sum to more than the runs' span), with
    every step's seconds."""
    phases = {"ingest": 0.0, "linkage": 0.0, "downstream": 0.0}
    for s in timings["steps"]:
        phase = next(
            (p for p, names in _PHASES.items() if s["step"].startswith(names)), "downstream"
        )
        phases[phase] += s["seconds"]
    return {
        "outside_runs_seconds": round(wall - timings["in_runs_seconds"], 2),
        "in_runs_seconds": timings["in_runs_seconds"],
        "runs": timings["runs"],
        "phase_step_seconds": {k: round(v, 2) for k, v in phases.items()},
        "steps": timings["steps"],
    }


def _index(url: str) -> pd.DataFrame:
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    try:
        return wh.read("person_index")
    finally:
        wh.dispose()


def bench_incremental(landing: Path, out: Path, demo: bool) -> dict:
    months = _months(landing)
    if len(months) < 2:
        raise ValueError(f"{landing} holds fewer than two months of drops")
    last, before_last = months[-1], months[-2]
    report: dict = {
        "benchmark": "a new month: incremental run against a full rebuild (sim-pipeline CLI)",
        "landing": str(landing),
        "new_month": last,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base_landing = root / "base_landing"
        landing_without(landing, base_landing, last)

        def env(project: Path, landing_dir: Path, last_month: str) -> dict[str, str]:
            project.mkdir(parents=True, exist_ok=True)
            e = dict(
                os.environ,
                SIM_LANDING_DIR=str(landing_dir),
                SIM_WAREHOUSE_URL=f"sqlite:///{project}/warehouse.db",
                DAGSTER_HOME=str(project / "dagster_home"),
                SIM_PROJECT_DIR=str(project),
                SIM_LAST_MONTH=last_month,
                **project_folders(project),
            )
            if demo:
                e["SIM_DEMO_MODE"] = "1"
            return e

        base = root / "base"
        report["base_full_run"] = _run(["run"], env(base, base_landing, before_last))
        inc = root / "incremental"
        shutil.copytree(base, inc)
        inc_env = env(inc, landing, last)
        args = ["backfill", "--from", last, "--to", last, "--linkage", "incremental"]
        report["incremental_run"] = _run(args, inc_env)
        full = root / "full"
        full_env = env(full, landing, last)
        report["full_rebuild"] = _run(["run"], full_env)
        base_index = _index(env(base, base_landing, before_last)["SIM_WAREHOUSE_URL"])
        inc_index = _index(inc_env["SIM_WAREHOUSE_URL"])
        full_index = _index(full_env["SIM_WAREHOUSE_URL"])
    key = ["source", "table_name", "record_ref"]
    both = inc_index.merge(full_index, on=key, suffixes=("", "_full"))
    agree = scoring.pairwise(both.rename(columns={"person_key": "pred", "person_key_full": "true"}))
    kept = base_index.merge(inc_index, on=key, suffixes=("_base", "_inc"))
    share = report["incremental_run"]["wall_seconds"] / report["full_rebuild"]["wall_seconds"]
    report |= {
        "incremental_share_of_full_rebuild": round(share, 3),
        "records_before": len(base_index),
        "records_after": len(inc_index),
        "new_records": len(inc_index) - len(base_index),
        "known_records_keeping_their_key": round(
            float((kept["person_key_base"] == kept["person_key_inc"]).mean()), 5
        ),
        "incremental_vs_full_relink_pairwise": {k: round(v, 5) for k, v in agree.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
