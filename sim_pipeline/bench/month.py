"""`sim-pipeline bench month`: a month of England, ingested, linked incrementally and measured.

In a scratch folder, with the real CLI (as `bench.incremental` does):

1. **synth**: `generate_national` writes the national month M at ``scale`` and the month before
   at ``base_scale`` from the same people (frequent users recur), with header-only drops for
   every earlier month (drop coverage expects every month);
2. **base**: ``backfill --from M-1 --to M-1`` (a full relink: the person index and the saved
   model) on the landing without M's drops, ``SIM_LAST_MONTH`` = M-1;
3. **month** (timed, the figure the issue asks for): M's drops added and ``backfill --from M
   --to M --linkage incremental``: ingest, link the new records against the index with the saved
   model, recompute M's events, metrics and costs and what reads them.

Reports wall and CPU seconds and peak RSS of each (children's ``ru_maxrss``: the largest
process), and for the month run each Dagster step's seconds (``get_run_step_stats``) with the
rows it handled (ledger rows read per staged table, new person-index records, M's events,
metrics and cost rows) and rows per second. Goal (issue 19 item 3): at most 15 minutes and
16 GB on 2 cores.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from sim_pipeline.bench.runs import landing_without, measure, run_cli, step_timings
from sim_pipeline.synthetic.timeline import MONTH_LABELS

GOAL_SECONDS = 15 * 60
GOAL_GIB = 16.0


def _synth(out: Path, truth: Path, month: str, scale: float, base_scale: float) -> dict:
    """The generator in a child process (its own peak memory)."""
    code = (
        "import json;from sim_pipeline.synthetic.national import generate_national;"
        f"s=generate_national({str(out)!r},{str(truth)!r},month={month!r},scale={scale!r},"
        f"previous_scale={base_scale!r});print(json.dumps(s))"
    )
    figures, stdout, stderr = measure([sys.executable, "-c", code])
    if figures["exit_code"]:
        raise RuntimeError(f"national synth failed: {stderr[-3000:]}")
    return {**figures, "summary": json.loads(stdout.strip().splitlines()[-1])}


def _step_rows(url: str, month: str) -> dict[str, int]:
    """Rows each step handled in the month run, from the warehouse."""
    from sim_pipeline.sources import SOURCE_TABLES
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    try:
        ledger = wh.read("ingest_ledger", {"month": [month]})
        rows: dict[str, int] = {}
        by_table = ledger.groupby("table_name")["rows_read"].sum()
        for t in SOURCE_TABLES:
            rows[t.asset_name] = int(by_table.get(t.table, 0))
        rows["person_index"] = int(by_table.sum())  # the month's new records, linked
        for table in ("events", "person_month_metrics", "person_month_costs"):
            rows[table] = len(wh.read(table, {"month": [month]}, columns=["month"]))
    finally:
        wh.dispose()
    return rows


def _stages(steps: list[dict], rows: dict[str, int]) -> list[dict]:
    """Steps (`step_timings`, summed over the runs) with their rows and rows per second."""
    out = []
    for step, sec in ((s["step"], s["seconds"]) for s in steps):
        n = rows.get(step)
        out.append(
            {
                "step": step,
                "seconds": round(sec, 2),
                "rows": n,
                "rows_per_second": round(n / sec) if n is not None and sec > 0 else None,
            }
        )
    return out


def bench_month(out: Path, month: str, scale: float, base_scale: float, keep: Path | None) -> dict:
    if month not in MONTH_LABELS[1:]:
        raise ValueError(f"month must be in {MONTH_LABELS[1]}..{MONTH_LABELS[-1]}")
    before = MONTH_LABELS[MONTH_LABELS.index(month) - 1]
    report: dict = {
        "benchmark": "a month of England: national synth, then backfill --linkage incremental",
        "month": month,
        "scale": scale,
        "base_month": before,
        "base_scale": base_scale,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "goal": {"wall_seconds": GOAL_SECONDS, "peak_gib": GOAL_GIB},
    }
    if keep is not None:  # a folder the user names need not exist yet
        keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        root = Path(tmp)
        landing, truth = root / "landing", root / "truth"
        report["synth"] = _synth(landing, truth, month, scale, base_scale)
        base_landing = root / "base_landing"
        landing_without(landing, base_landing, month)
        project = root / "project"
        project.mkdir()
        env = dict(
            os.environ,
            SIM_WAREHOUSE_URL=f"sqlite:///{project}/warehouse.db",
            DAGSTER_HOME=str(project / "dagster_home"),
            SIM_PROJECT_DIR=str(project),
            SIM_DEMO_MODE="1",
        )
        base_env = dict(env, SIM_LANDING_DIR=str(base_landing), SIM_LAST_MONTH=before)
        report["base_run"] = run_cli(["backfill", "--from", before, "--to", before], base_env)
        if report["base_run"]["exit_code"] != 0:
            raise RuntimeError(f"base run failed:\n{report['base_run']['tail']}")
        month_env = dict(env, SIM_LANDING_DIR=str(landing), SIM_LAST_MONTH=month)
        args = ["backfill", "--from", month, "--to", month, "--linkage", "incremental"]
        run = run_cli(args, month_env)
        report["month_run"] = run
        if run["run_id"]:
            rows = _step_rows(env["SIM_WAREHOUSE_URL"], month)
            timings = step_timings(project / "dagster_home", run["run_id"].split(", "))
            report["month_rows"] = rows
            report["month_stages"] = _stages(timings["steps"], rows)
            report["month_runs"] = timings["runs"]
            report["month_in_runs_seconds"] = timings["in_runs_seconds"]
    rows_in = sum(report["synth"]["summary"]["rows_by_month_and_table"][month].values())
    run = report["month_run"]
    report["month_landing_rows"] = rows_in
    report["month_rows_per_second"] = round(rows_in / run["wall_seconds"])
    report["month_peak_gib"] = round(run["peak_rss_mib"] / 1024, 2)
    report["goal_met"] = (
        run["exit_code"] == 0
        and run["wall_seconds"] <= GOAL_SECONDS
        and run["peak_rss_mib"] / 1024 <= GOAL_GIB
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
