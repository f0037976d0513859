"""`sim-pipeline privacy-scan`, `quality` and `report`: the commands over what runs left behind
(stores scanned for landing identifiers, the Great Expectations results and Data Docs, the
disclosure-controlled release)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from sim_pipeline.config import Settings
from sim_pipeline.progress import Progress


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
    with Progress("privacy-scan", total=len(files), unit="files"):
        hits |= scan(files, ids)
    print(f"scanned {len(files)} files under {', '.join(str(r) for r in roots)}")
    for where, kinds in sorted(hits.items()):
        print(f"  IDENTIFIER FOUND in {where}: {', '.join(kinds)}")
    print(f"{len(hits)} places hold a landing identifier ({time.perf_counter() - started:.1f}s)")
    return 1 if hits else 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Rebuild the Great Expectations Data Docs site and summarise the latest results."""
    from sim_pipeline.quality.gx_docs import gx_root
    from sim_pipeline.quality.gx_runner import build_docs
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
