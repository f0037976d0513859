"""`sim-pipeline bench run`, `bench linkage` and `bench house`: benchmarks that print figures and
write them to a file (the main job timed, linkage accuracy, the code base's shape)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from sim_pipeline.cli.pipeline import generate, has_drops
from sim_pipeline.config import DEMO_ENV, Settings
from sim_pipeline.progress import Progress


def cmd_bench_run(args: argparse.Namespace) -> int:
    """Time the main job from scratch (fresh warehouse and instance) and once more (re-run)."""
    import tempfile

    from sim_pipeline.bench.runs import project_folders
    from sim_pipeline.landing.layout import Landing
    from sim_pipeline.warehouse import table_digests

    settings = Settings.from_env()
    landing = settings.landing_dir
    synth_seconds = None
    if not settings.landing_from_env and not has_drops(landing):
        t0 = time.perf_counter()
        generate(args, landing, settings.truth_dir)
        synth_seconds = round(time.perf_counter() - t0, 2)
    rows_in = sum(max(0, sum(1 for _ in p.open("rb")) - 1) for p in Landing(landing).csv_files())
    results = []
    digests: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, Progress("bench run", total=2, unit="runs") as bar:
        env = dict(
            os.environ,
            SIM_LANDING_DIR=str(landing),
            SIM_WAREHOUSE_URL=f"sqlite:///{tmp}/warehouse.db",
            DAGSTER_HOME=str(Path(tmp) / "dagster_home"),
            SIM_PROJECT_DIR=tmp,
            **project_folders(Path(tmp)),  # from scratch: no earlier run's GX results
        )
        if not settings.key_from_env:
            env[DEMO_ENV] = "1"
        for label in ("from_scratch", "repeat_run"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "sim_pipeline.cli", "run"],
                env=env,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            results.append(
                {
                    "run": label,
                    "exit_code": proc.returncode,
                    "wall_seconds": round(seconds, 2),
                    "cpu_seconds": round(
                        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
                    ),
                    "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
                    "rows_per_second": round(rows_in / seconds),
                }
            )
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
            digests.append(table_digests(env["SIM_WAREHOUSE_URL"]))
            bar.advance(stage=f"{label} {seconds:.0f} s")
    report = {
        "benchmark": "main job (sim-pipeline run) on the landing folder",
        "landing": str(landing),
        "landing_files": len(Landing(landing).csv_files()),
        "landing_rows": rows_in,
        "synth_seconds": synth_seconds,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "results": results,
        "repeat_run_identical_tables": digests[0] == digests[1],
        "warehouse_rows": {t: int(d.split(":")[0]) for t, d in digests[0].items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


def cmd_bench_incremental(args: argparse.Namespace) -> int:
    """A new month incrementally against a full rebuild (`bench.incremental`), on the landing
    folder (the demo, generated when absent)."""
    from sim_pipeline.bench.incremental import bench_incremental

    settings = Settings.from_env()
    if not settings.landing_from_env and not has_drops(settings.landing_dir):
        generate(args, settings.landing_dir, settings.truth_dir)
    with Progress("bench incremental", total=3, unit="runs"):  # advanced per measured run
        report = bench_incremental(settings.landing_dir, args.out, demo=not settings.key_from_env)
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


def cmd_bench_month(args: argparse.Namespace) -> int:
    """A month of England (`bench.month`): national synth, base month, the month incrementally."""
    from sim_pipeline.bench.month import bench_month

    out = args.out or Path(f"data/bench/month_{args.month}.json")
    with Progress("bench month", total=3, unit="stages"):  # synth, base month, the month
        report = bench_month(out, args.month, args.scale, args.base_scale, args.scratch)
    run = report["month_run"]
    print(json.dumps({k: v for k, v in report.items() if k != "synth"}, indent=2))
    print(
        f"month {args.month} at scale {args.scale}: {report['month_landing_rows']:,} rows in "
        f"{run['wall_seconds']:.0f} s, peak {report['month_peak_gib']} GiB, goal met: "
        f"{report['goal_met']}"
    )
    print(f"wrote {out}")
    return 0 if run["exit_code"] == 0 else 1


def cmd_bench_linkage(args: argparse.Namespace) -> int:
    """NHS-number-only vs cleartext anchor vs encoded linkage on synthetic data with truth."""
    from sim_pipeline.bench.linkage import main as bench_linkage

    return bench_linkage(args.people, out=args.out, seed=args.seed, engine=args.engine)


def cmd_bench_house(args: argparse.Namespace) -> int:
    """The code base's shape (modules, table declarations, import time) and table digests."""
    from sim_pipeline.bench.house import house_report, summary_lines

    url = args.warehouse or (None if args.no_digests else Settings.from_env().warehouse_url)
    report = house_report(url, repeats=args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(summary_lines(report)))
    print(f"wrote {args.out}")
    return 0


def cmd_bench_pseudonymise(args: argparse.Namespace) -> int:
    """Identifier records per second through the privacy boundary, on one core."""
    from dataclasses import asdict

    from sim_pipeline.bench.pseudonymise import run

    results = run(args.records, seed=args.seed, repeats=args.repeats)
    best = min(results, key=lambda r: r.seconds)
    report = {
        "benchmark": "pseudonymise() on synthetic identifier records, one core, fresh tokeniser",
        "records": args.records,
        "seed": args.seed,
        "python": sys.version.split()[0],
        "best_seconds": best.seconds,
        "best_records_per_second": best.records_per_second,
        "runs": [asdict(r) for r in results],
    }
    out = args.out or Path(f"data/bench/pseudonymise_{args.records}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r.records:,} records in {r.seconds:.2f} s: {r.records_per_second:,} records/s")
    print(f"output digest {best.digest}")
    print(f"wrote {out}")
    return 0


def cmd_bench_warehouse(args: argparse.Namespace) -> int:
    """Rows per second loaded into SQLite and (given a URL) PostgreSQL."""
    from sim_pipeline.bench.warehouse import run

    results = run(args.rows, args.postgres, repeats=args.repeats)
    report = {
        "benchmark": "warehouse bulk load (replace_all) of staged-like rows",
        "python": sys.version.split()[0],
        "results": results,
    }
    out = args.out or Path(f"data/bench/warehouse_{args.rows}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(
            f"{r['warehouse']}: {r['rows']:,} rows x {r['columns']} columns in "
            f"{r['best_seconds']} s, {r['rows_per_second']:,} rows/s"
        )
    if not args.postgres:
        print("(no --postgres URL: SQLite only)")
    print(f"wrote {out}")
    return 0


def cmd_bench_tokenise(args: argparse.Namespace) -> int:
    """Records per second through `sim-pipeline tokenise` on one core, and peak memory, each
    size in a fresh process (so the high-water mark is that size's)."""
    import subprocess
    import tempfile

    from sim_pipeline.bench.tokenise import raw_extract

    sizes = sorted(set(args.records))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_tokenise_") as tmp:
        for n in sizes:
            raw = raw_extract(n, Path(tmp) / f"raw_{n}.csv", seed=args.seed)
            code = (
                "import json, sys; from dataclasses import asdict; from pathlib import Path; "
                "from sim_pipeline.bench.tokenise import run; "
                "print(json.dumps(asdict(run(Path(sys.argv[1]), Path(sys.argv[2]), "
                "int(sys.argv[3])))))"
            )
            out = Path(tmp) / "las" / "2021-05" / f"out_{n}.csv"
            r = subprocess.run(
                [sys.executable, "-c", code, str(raw), str(out), str(args.chunk_lines)],
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode != 0:
                print(r.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"{result['records']:,} records in {result['seconds']:.1f} s wall, "
                f"{result['cpu_seconds']:.1f} s CPU: {result['records_per_second']:,} records/s "
                f"({result['records_per_cpu_second']:,} per CPU second), peak "
                f"{result['peak_rss_mib']:,.0f} MiB; drop sha256 {result['drop_sha256']}"
            )
            raw.unlink()
    report = {
        "benchmark": "sim-pipeline tokenise on an ambulance month (every contract column), "
        "one core, fresh process per size",
        "goal_records_per_second": 100_000,
        "seed": args.seed,
        "python": sys.version.split()[0],
        "results": results,
    }
    path = args.out or Path(f"data/bench/tokenise_{sizes[-1]}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
