"""The `sim-pipeline` command: synth, run, backfill, dictionary, privacy-scan, bench, ui.

Heavy imports (Dagster, the definitions) happen inside the commands, after the environment has
been settled, because the code location reads its settings at import time.
"""

# this module owns the parser (every command's options) and main; the commands live in the
# modules beside it. Its docstring is the --help description: keep the two the same.

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim_pipeline.cli.bench import (
    cmd_bench_house,
    cmd_bench_incremental,
    cmd_bench_linkage,
    cmd_bench_month,
    cmd_bench_pseudonymise,
    cmd_bench_run,
    cmd_bench_tokenise,
    cmd_bench_warehouse,
)
from sim_pipeline.cli.outputs import cmd_privacy_scan, cmd_quality, cmd_report
from sim_pipeline.cli.pipeline import DEMO_PEOPLE, DEMO_SEED, cmd_run, cmd_synth, cmd_ui
from sim_pipeline.cli.project import cmd_dictionary, cmd_keygen, cmd_warehouse
from sim_pipeline.cli.tokenise import cmd_tokenise


def _synth_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    if required:
        p.add_argument("--out", type=Path, required=True, help="landing folder to write")
        p.add_argument("--truth", type=Path, required=True, help="ground-truth folder (separate)")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--people", type=int, default=DEMO_PEOPLE, help="general population size")
    p.add_argument(
        "--comparison-people", type=int, default=600, help="high-intensity users never allocated"
    )
    p.add_argument(
        "--true-effect",
        type=float,
        default=1.0,
        help="true multiplicative effect of the programme on use while engaged",
    )
    p.add_argument(
        "--tokenise",
        metavar="PROVIDERS",
        help="write these providers' drops tokenised, as `sim-pipeline tokenise` would (comma-"
        "separated: a provider such as met_police, a kind: police, ambulance, ae, "
        "mental_health, or all); key: SIM_PSEUDONYMISATION_KEY(_FILE) if set, else the demo key",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    """Options shared by run and backfill."""
    p.add_argument("--log-level", default="WARNING", help="Dagster console log level")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run steps in this many processes (Dagster multiprocess executor)",
    )
    p.add_argument(
        "--ingest-workers",
        type=int,
        default=None,
        metavar="N",
        help="stage the tables in this many processes at once (default: SIM_INGEST_WORKERS, "
        "else 2 on a machine with two cores or more); 1 runs the whole graph as one run",
    )
    p.add_argument(
        "--linkage",
        choices=["full", "incremental"],
        default="full",
        help="full: relink every record and retrain the model (the periodic relink); "
        "incremental: link only records the person index lacks, with the saved model "
        "(a new month: use with backfill --from M --to M)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sim-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write synthetic landing drops plus ground truth")
    _synth_args(p, required=True)
    p.add_argument(
        "--national-month",
        metavar="YYYY-MM",
        default=None,
        help="instead of the demo: one month of England at national volume (about 3.3 million "
        "rows at --scale 1.0; sim_pipeline.synthetic.national)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="national month: share of volume")
    p.add_argument(
        "--previous-scale",
        type=float,
        default=0.0,
        help="national month: also the month before at this scale, from the same people",
    )
    p.set_defaults(func=cmd_synth)
    p = sub.add_parser("run", help="materialise the whole asset graph and print a summary")
    _synth_args(p, required=False)
    _run_args(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "backfill",
        help="materialise a month range (ingest partitions as one run, then downstream assets)",
    )
    p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM")
    _run_args(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("dictionary", help="write (or --check) docs/data_dictionary.md")
    p.add_argument("--out", type=Path, default=Path("docs/data_dictionary.md"))
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=cmd_dictionary)
    p = sub.add_parser("warehouse", help="bring the warehouse schema up to date (Alembic)")
    p.add_argument("action", choices=["upgrade", "current"])
    p.add_argument("--warehouse", help="warehouse URL (default: SIM_WAREHOUSE_URL or the demo)")
    p.set_defaults(func=cmd_warehouse)
    p = sub.add_parser("privacy-scan", help="prove no landing identifier is stored past ingest")
    p.set_defaults(func=cmd_privacy_scan)
    p = sub.add_parser(
        "quality",
        help="rebuild the Great Expectations Data Docs site and print where it is",
    )
    p.add_argument(
        "--serve",
        type=int,
        nargs="?",
        const=8765,
        default=None,
        metavar="PORT",
        help="also serve the site on 127.0.0.1 (default port 8765)",
    )
    p.set_defaults(func=cmd_quality)
    bench = sub.add_parser("bench", help="benchmarks that print figures and write them to a file")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    p = bench_sub.add_parser("run", help="wall time and peak memory of the main job")
    p.add_argument("--out", type=Path, default=Path("data/bench/main_job.json"))
    p.set_defaults(func=cmd_bench_run)
    p = bench_sub.add_parser(
        "incremental",
        help="a new month: incremental run (ingest, link against the index, recompute what "
        "changed) against a full rebuild",
    )
    p.add_argument("--out", type=Path, default=Path("data/bench/incremental_month.json"))
    p.set_defaults(func=cmd_bench_incremental)
    p = bench_sub.add_parser(
        "month",
        help="a month of England: national synth, a base month, then the month ingested and "
        "linked incrementally; wall, CPU, peak memory and rows/s per stage",
    )
    p.add_argument("--month", default="2021-05", metavar="YYYY-MM")
    p.add_argument("--scale", type=float, default=1.0, help="the month's share of national volume")
    p.add_argument(
        "--base-scale", type=float, default=0.05, help="the month before (the base deployment)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="JSON (default data/bench/month_<M>.json)"
    )
    p.add_argument("--scratch", type=Path, default=None, help="folder for the scratch copy")
    p.set_defaults(func=cmd_bench_month)
    p = bench_sub.add_parser(
        "linkage",
        help="linkage accuracy, time and memory: NHS-number only vs cleartext vs encoded",
    )
    p.add_argument("--people", type=int, default=DEMO_PEOPLE, help="general population size")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument(
        "--out", type=Path, default=None, help="JSON report (default data/bench/linkage_<N>.json)"
    )
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark", "both"),
        default="duckdb",
        help="where the encoded method runs: DuckDB, Spark (local[*], or SIM_SPARK_URL) or both "
        "side by side (Spark needs Java and the uv group spark)",
    )
    p.set_defaults(func=cmd_bench_linkage)
    p = bench_sub.add_parser(
        "pseudonymise",
        help="identifier records per second through the privacy boundary, on one core",
    )
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--out", type=Path, default=None, help="JSON (default data/bench/pseudonymise_<N>.json)"
    )
    p.set_defaults(func=cmd_bench_pseudonymise)
    p = bench_sub.add_parser(
        "tokenise",
        help="records per second through sim-pipeline tokenise on one core, and peak memory",
    )
    p.add_argument(
        "--records", type=int, nargs="+", default=[200_000, 1_000_000], help="extract sizes"
    )
    p.add_argument("--chunk-lines", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20180101)
    p.add_argument("--out", type=Path, default=None, help="JSON report")
    p.set_defaults(func=cmd_bench_tokenise)
    p = bench_sub.add_parser(
        "warehouse", help="rows per second loaded into SQLite and PostgreSQL (COPY)"
    )
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument(
        "--postgres",
        default=None,
        help="a scratch PostgreSQL database URL to load too (table bench_rows, dropped after)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--out", type=Path, default=None, help="JSON (default data/bench/warehouse_<N>.json)"
    )
    p.set_defaults(func=cmd_bench_warehouse)
    p = bench_sub.add_parser(
        "house",
        help="the code base's shape (modules and sizes, where each table is named, import "
        "time) and every warehouse table's digest: the redesign's before/after figures",
    )
    p.add_argument("--out", type=Path, default=Path("data/bench/house.json"))
    p.add_argument("--warehouse", default=None, help="warehouse URL (default SIM_WAREHOUSE_URL)")
    p.add_argument("--no-digests", action="store_true", help="leave out the table digests")
    p.add_argument("--repeats", type=int, default=3, help="fresh imports timed (0: none)")
    p.set_defaults(func=cmd_bench_house)
    p = sub.add_parser(
        "report",
        help="write the disclosure-controlled tables and the HTML evaluation report",
    )
    p.add_argument("--out", type=Path, default=Path("data/published"), help="output folder")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser(
        "keygen",
        help="make a new project key (32 random bytes) into a file only you can read",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="key file to create (mode 0600; never overwritten); point "
        "SIM_PSEUDONYMISATION_KEY_FILE at it",
    )
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser(
        "tokenise",
        help="a provider's raw extract to a tokenised drop and manifest (key from "
        "SIM_PSEUDONYMISATION_KEY or _FILE, never an argument)",
    )
    p.add_argument("--source", required=True, help="the provider's folder name, e.g. met_police")
    p.add_argument(
        "--table", required=True, help="the provider table (file stem), e.g. cad_incidents"
    )
    p.add_argument("--in", dest="raw", type=Path, required=True, help="the raw extract (CSV)")
    p.add_argument(
        "--out", type=Path, required=True, help="the tokenised drop to write (its manifest beside)"
    )
    p.add_argument(
        "--month",
        help="the drop's month YYYY-MM (default: --out's folder in the landing layout)",
    )
    p.set_defaults(func=cmd_tokenise)
    p = sub.add_parser("ui", help="start the Dagster web UI on this project's instance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


def entry() -> None:
    """The `sim-pipeline` program (the console script and ``python -m sim_pipeline.cli``):
    `main`, then out; after a run or backfill through `pipeline.leave_now`."""
    from sim_pipeline.cli import pipeline

    code = main()
    if pipeline.LEAVE_NOW:
        pipeline.leave_now(code)
    sys.exit(code)
