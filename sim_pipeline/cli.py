"""The `sim-pipeline` command: synth, run, backfill, dictionary, privacy-scan, bench, ui.

Heavy imports (Dagster, the definitions) happen inside the commands, after the environment has
been settled, because the code location reads its settings at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from sim_pipeline.config import (
    DEMO_ENV,
    KEY_ENV,
    ConfigError,
    Settings,
    demo_mode_allowed,
    demo_refusal,
    ensure_dagster_home,
)

DEMO_SEED = 20180101
DEMO_PEOPLE = 10_000


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


def _generate(args: argparse.Namespace, out: Path, truth: Path):  # -> SynthSummary
    """The synthetic generator with the synth options of ``args`` (defaults: the demo)."""
    from sim_pipeline.synthetic import generate

    return generate(
        out,
        truth,
        seed=getattr(args, "seed", DEMO_SEED),
        people=getattr(args, "people", DEMO_PEOPLE),
        true_effect=getattr(args, "true_effect", 1.0),
        comparison_people=getattr(args, "comparison_people", 600),
    )


def cmd_synth(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    summary = _generate(args, args.out, args.truth)
    print(
        f"wrote {summary.files_written} files to {args.out} and truth to {args.truth} "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    print(json.dumps(summary.as_dict(), indent=2, default=str))
    return 0


def _settle_environment(args: argparse.Namespace) -> Settings:
    """Decide landing data, key mode and Dagster home before Dagster is imported (`run`,
    `backfill`, `ui`). Without a key, demo mode only on the synthetic landing: the default
    landing folder (generated here when empty) or ``SIM_LANDING_DIR`` with ``SIM_DEMO_MODE=1``,
    in both cases holding only drops `sim-pipeline synth` wrote (its manifest)."""
    settings = Settings.from_env()
    if settings.landing_from_env:
        if not settings.landing_dir.is_dir():
            raise ConfigError(f"SIM_LANDING_DIR={settings.landing_dir} is not a folder")
        if not settings.key_from_env and not demo_mode_allowed():
            raise ConfigError(
                f"{KEY_ENV} is not set. Real landing data needs the project key; set "
                f"{DEMO_ENV}=1 only for synthetic data."
            )
    elif not _has_drops(settings.landing_dir):
        print(f"no landing data: generating the synthetic demo into {settings.landing_dir}")
        _generate(args, settings.landing_dir, settings.truth_dir)
    if not settings.key_from_env:
        refusal = demo_refusal(settings.landing_dir)
        if refusal:
            raise ConfigError(f"no project key: {refusal}.")
        os.environ[DEMO_ENV] = "1"
    os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(settings.dagster_home))
    return settings


def _has_drops(landing: Path) -> bool:
    from sim_pipeline.landing.layout import Landing

    return Landing(landing).has_drops()


def cmd_run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        settings = _settle_environment(args)
    except ConfigError as exc:
        print(f"sim-pipeline run: {exc}", file=sys.stderr)
        return 2
    from sim_pipeline.defs.orchestrate import materialise_all
    from sim_pipeline.warehouse.migrate import upgrade

    upgrade(settings.warehouse_url)  # schema changes as migrations, before any write
    try:
        outcome = materialise_all(
            settings,
            log_level=args.log_level,
            first_month=getattr(args, "first", None),
            last_month=getattr(args, "last", None),
            processes=args.processes,
        )
    except ValueError as exc:
        print(f"sim-pipeline: {exc}", file=sys.stderr)
        return 2
    print(outcome.render(settings, time.perf_counter() - t0, _peak_rss_mib()))
    return 0 if outcome.success else 1


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_warehouse(args: argparse.Namespace) -> int:
    """Migrations of the warehouse schema: upgrade to the newest, or say where it stands."""
    from sim_pipeline.warehouse import migrate, redact_url

    url = args.warehouse or Settings.from_env().warehouse_url
    if args.action == "upgrade":
        before = migrate.current(url)
        after = migrate.upgrade(url)
        print(f"{redact_url(url)}: {before or 'no revision'} -> {after}")
    else:
        print(
            f"{redact_url(url)}: at {migrate.current(url) or 'no revision'}, head {migrate.head()}"
        )
    drift = migrate.drift(url)
    for table, diff in sorted(drift.items()):
        print(
            f"  {table}: differs from its declaration: missing {diff['missing']}, "
            f"undeclared {diff['undeclared']} (needs a migration)"
        )
    return 1 if drift else 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    from sim_pipeline.warehouse.dictionary import render_markdown

    text = render_markdown()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `sim-pipeline dictionary`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """A new project key into a new file readable by its owner only; the key is never printed
    (a terminal's scrollback and a CI log are not key stores)."""
    from sim_pipeline.identity.keys import generate_key, parse_key

    key = generate_key()
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"sim-pipeline keygen: {args.out} exists; not overwritten", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sim-pipeline keygen: cannot create {args.out} ({exc.strerror})", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    _, key_id = parse_key(key)
    print(
        f"wrote a new project key to {args.out} (mode 0600), key id {key_id}. Use it with "
        f"SIM_PSEUDONYMISATION_KEY_FILE={args.out}; share it only with the linkage partners "
        "(README: Keys)."
    )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """dagster dev on this project's instance (same runs as `sim-pipeline run`); demo mode
    only on the synthetic landing, as for `run`."""
    try:
        _settle_environment(args)
    except ConfigError as exc:
        print(f"sim-pipeline ui: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        "workspace.yaml",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    return subprocess.call(cmd, env=env)


def cmd_privacy_scan(args: argparse.Namespace) -> int:
    """Scan the warehouse and the Dagster instance for the landing files' identifiers.

    Files: the SQLite warehouse, everything under DAGSTER_HOME (and the storage, artifact and
    compute-log folders its dagster.yaml puts elsewhere) and the Great Expectations project.
    Databases, every table: a server warehouse and the instance's PostgreSQL storage. Prints
    places and kinds, never a value; 1 if anything holds an identifier, 2 if a database cannot
    be read.
    """
    import sqlalchemy as sa

    from sim_pipeline.quality.landing_identifiers import landing_identifiers, own_vocabulary
    from sim_pipeline.quality.privacy_scan import (
        dagster_storage_dirs,
        dagster_storage_urls,
        files_under,
        generated_quality_files,
        scan,
        scan_database,
    )
    from sim_pipeline.warehouse.store import redact_url

    started = time.perf_counter()
    settings = Settings.from_env()
    ids = landing_identifiers(settings.landing_dir, own_vocabulary())
    print(
        "identifiers collected from landing: " + ", ".join(f"{len(v)} {k}" for k, v in ids.items())
    )
    url = settings.warehouse_url
    roots = [settings.dagster_home, *dagster_storage_dirs(settings.dagster_home)]
    databases: list[tuple[str, str]] = []
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        roots += [p for p in db.parent.glob(db.name + "*")]
    else:
        databases.append(("warehouse", url))

    def same_database(a: str, b: str) -> bool:
        ua, ub = sa.make_url(a), sa.make_url(b)
        return ua.set(drivername=ua.get_backend_name()) == ub.set(drivername=ub.get_backend_name())

    for storage_url in dagster_storage_urls(settings.dagster_home):
        if not any(same_database(storage_url, u) for _, u in databases):
            databases.append(("dagster storage", storage_url))
    hits: dict[str, list[str]] = {}
    for label, db_url in databases:
        try:
            hits |= scan_database(db_url, ids, label=label)
        except sa.exc.SQLAlchemyError as exc:
            print(
                f"cannot read the {label} database {redact_url(db_url)}: {type(exc).__name__}",
                file=sys.stderr,
            )
            return 2
        print(f"scanned every table of the {label} database {redact_url(db_url)}")
    # the Dagster instance, and the Great Expectations project (suites, results, Data Docs)
    qdir = settings.quality_dir
    files = files_under(*roots) + generated_quality_files(qdir)
    roots.append(qdir)
    hits |= scan(files, ids)
    print(f"scanned {len(files)} files under {', '.join(str(r) for r in roots)}")
    for where, kinds in sorted(hits.items()):
        print(f"  IDENTIFIER FOUND in {where}: {', '.join(kinds)}")
    print(f"{len(hits)} places hold a landing identifier ({time.perf_counter() - started:.1f}s)")
    return 1 if hits else 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Rebuild the Great Expectations Data Docs site and summarise the latest results."""
    from sim_pipeline.quality.gx_runner import build_docs, gx_root
    from sim_pipeline.warehouse import Warehouse

    settings = Settings.from_env()
    qdir = settings.quality_dir
    if not (gx_root(qdir) / "great_expectations.yml").exists():
        print(f"no Great Expectations results under {qdir}: run `sim-pipeline run` first")
        return 1
    index = build_docs(qdir)
    wh = Warehouse(settings.warehouse_url)
    try:
        results = wh.read("quality_results")
    finally:
        wh.dispose()
    if len(results):
        results["success"] = results["success"].astype(bool)
        latest = results.sort_values("validated_at").groupby("suite").tail(1)[["suite", "batch"]]
        latest = results.merge(latest, on=["suite", "batch"])
        by_suite = latest.groupby("suite").agg(
            batch=("batch", "first"),
            expectations=("success", "size"),
            failed=("success", lambda s: int((~s).sum())),
        )
        print(
            f"{len(by_suite)} suites, {int(by_suite['expectations'].sum())} expectations in "
            f"their latest batches; {int((by_suite['failed'] > 0).sum())} suites failing"
        )
        for suite, row in by_suite.iterrows():
            status = "ok" if row.failed == 0 else f"FAILED {row.failed}"
            print(f"  {suite:<42} {row.batch:<18} {row.expectations:>3} expectations  {status}")
    print(f"Data Docs: {index}")
    if args.serve is not None:
        import functools
        import http.server

        handler = functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(index.parent)
        )
        with http.server.ThreadingHTTPServer(("127.0.0.1", args.serve), handler) as server:
            print(
                f"serving Data Docs on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)"
            )
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    return 0


def cmd_bench_run(args: argparse.Namespace) -> int:
    """Time the main job from scratch (fresh warehouse and instance) and once more (re-run)."""
    import tempfile

    from sim_pipeline.landing.layout import Landing
    from sim_pipeline.warehouse import table_digests

    settings = Settings.from_env()
    landing = settings.landing_dir
    synth_seconds = None
    if not settings.landing_from_env and not _has_drops(landing):
        t0 = time.perf_counter()
        _generate(args, landing, settings.truth_dir)
        synth_seconds = round(time.perf_counter() - t0, 2)
    rows_in = sum(max(0, sum(1 for _ in p.open("rb")) - 1) for p in Landing(landing).csv_files())
    results = []
    digests: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            SIM_LANDING_DIR=str(landing),
            SIM_WAREHOUSE_URL=f"sqlite:///{tmp}/warehouse.db",
            DAGSTER_HOME=str(Path(tmp) / "dagster_home"),
            SIM_PROJECT_DIR=tmp,
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


def cmd_bench_linkage(args: argparse.Namespace) -> int:
    """NHS-number-only vs cleartext anchor vs encoded linkage on synthetic data with truth."""
    from sim_pipeline.bench.linkage import main as bench_linkage

    return bench_linkage(args.people, out=args.out, seed=args.seed)


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


def cmd_report(args: argparse.Namespace) -> int:
    """Write the disclosure-controlled release and the HTML report, then scan the release."""
    from sim_pipeline.publish.release_catalogue import RELEASE_INPUTS
    from sim_pipeline.publish.release_files import scan_release
    from sim_pipeline.publish.report import write_report
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(Settings.from_env().warehouse_url)
    try:
        tables = {t: wh.read(t) for t in RELEASE_INPUTS}
    finally:
        wh.dispose()
    if tables["evaluation_estimates"].empty:
        print(
            "sim-pipeline report: the warehouse has no evaluation_estimates: "
            "run `sim-pipeline run` first",
            file=sys.stderr,
        )
        return 2
    try:
        html, files = write_report(tables, args.out)
    except ValueError as exc:
        print(f"sim-pipeline report: nothing published: {exc}", file=sys.stderr)
        return 2
    for path in [*files, html]:
        print(f"wrote {path}")
    findings = scan_release(args.out)
    for finding in findings:
        print(f"  DISCLOSURE PROBLEM: {finding}", file=sys.stderr)
    if findings:
        print(f"disclosure scan: {len(findings)} problem(s): do not publish {args.out}")
        return 1
    print(f"disclosure scan: clean ({len(files) - 1} tables)")
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    """Options shared by run and backfill."""
    p.add_argument("--log-level", default="WARNING", help="Dagster console log level")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run steps in this many processes (Dagster multiprocess executor)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sim-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write synthetic landing drops plus ground truth")
    _synth_args(p, required=True)
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
        "linkage",
        help="linkage accuracy, time and memory: NHS-number only vs cleartext vs encoded",
    )
    p.add_argument("--people", type=int, default=DEMO_PEOPLE, help="general population size")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument(
        "--out", type=Path, default=None, help="JSON report (default data/bench/linkage_<N>.json)"
    )
    p.set_defaults(func=cmd_bench_linkage)
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
    p = sub.add_parser("ui", help="start the Dagster web UI on this project's instance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
