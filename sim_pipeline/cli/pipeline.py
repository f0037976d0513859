"""`sim-pipeline synth`, `run`, `backfill` and `ui`: the synthetic demo (its seed and size, the
generator with the synth options), and settling the landing data, key mode and Dagster home
before Dagster is imported."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

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


def generate(args: argparse.Namespace, out: Path, truth: Path):  # -> SynthSummary
    """The synthetic generator with the synth options of ``args`` (defaults: the demo)."""
    from sim_pipeline.synthetic import generate

    return generate(
        out,
        truth,
        seed=getattr(args, "seed", DEMO_SEED),
        people=getattr(args, "people", DEMO_PEOPLE),
        true_effect=getattr(args, "true_effect", 1.0),
        comparison_people=getattr(args, "comparison_people", 600),
        **_tokenised(getattr(args, "tokenise", None)),
    )


def _tokenised(names: str | None) -> dict[str, object]:
    """``--tokenise``: the providers whose drops are written tokenised, and the key (the
    partners' key when set, else the public demo key: the data are synthetic)."""
    if not names:
        return {}
    from sim_pipeline.cli.tokenise import partners_tokeniser
    from sim_pipeline.ingest.tokenised import providers_named

    return {"tokenised": tuple(providers_named(names)), "tokeniser": partners_tokeniser(True)}


def cmd_synth(args: argparse.Namespace) -> int:
    from sim_pipeline.progress import Progress
    from sim_pipeline.sources import SOURCE_TABLES

    with Progress("synth", total=len(SOURCE_TABLES), unit="tables"):  # advanced per table
        return _synth(args)


def _synth(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if getattr(args, "national_month", None):
        from sim_pipeline.synthetic.national import generate_national

        summary = generate_national(
            args.out,
            args.truth,
            month=args.national_month,
            scale=args.scale,
            previous_scale=args.previous_scale,
            seed=args.seed,
        )
        print(
            f"wrote the national month {args.national_month} to {args.out} and truth to "
            f"{args.truth} in {time.perf_counter() - t0:.1f}s, peak memory "
            f"{_peak_rss_mib():.0f} MiB"
        )
        print(json.dumps(summary, indent=2))
        return 0
    summary = generate(args, args.out, args.truth)
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
    elif not has_drops(settings.landing_dir):
        print(f"no landing data: generating the synthetic demo into {settings.landing_dir}")
        generate(args, settings.landing_dir, settings.truth_dir)
    if not settings.key_from_env:
        refusal = demo_refusal(settings.landing_dir)
        if refusal:
            raise ConfigError(f"no project key: {refusal}.")
        os.environ[DEMO_ENV] = "1"
    os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(settings.dagster_home))
    return settings


def has_drops(landing: Path) -> bool:
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
    from sim_pipeline.quality.gx_docs import gx_root
    from sim_pipeline.quality.gx_runner import INDEX_AFTER_RUN_ENV, build_docs_index
    from sim_pipeline.warehouse.migrate import upgrade

    upgrade(settings.warehouse_url)  # schema changes as migrations, before any write
    # each validation writes its own Data Docs pages; the site's index is rebuilt once, after
    os.environ[INDEX_AFTER_RUN_ENV] = "1"
    try:
        outcome = materialise_all(
            settings,
            log_level=args.log_level,
            first_month=getattr(args, "first", None),
            last_month=getattr(args, "last", None),
            processes=args.processes,
            linkage=args.linkage,
            ingest_workers=getattr(args, "ingest_workers", None),
        )
    except ValueError as exc:
        print(f"sim-pipeline: {exc}", file=sys.stderr)
        return 2
    finally:
        os.environ.pop(INDEX_AFTER_RUN_ENV, None)
    if gx_root(settings.quality_dir).is_dir():
        build_docs_index(settings.quality_dir)
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # a staging worker
    print(outcome.render(settings, time.perf_counter() - t0, _peak_rss_mib(), worker))
    global LEAVE_NOW
    LEAVE_NOW = True
    return 0 if outcome.success else 1


# Set by a run or backfill that got as far as its summary: the program (`cli.entry`) then
# leaves through `leave_now`, not through the interpreter's shutdown.
LEAVE_NOW = False


def leave_now(code: int) -> NoReturn:
    """End the program after a run as the interpreter's exit begins (any thread that is not a
    daemon waited for, then the exit handlers: logging's flush, temporary folders,
    multiprocessing's), with the warehouse's connections closed first (each SQLite database
    whole in its file, its write-ahead log folded in; `materialise_all` closed the Dagster
    instance), the output flushed, then ``os._exit``. Skipped: the rest of the interpreter's
    shutdown, whose last garbage collection over the 1 GB or so a run leaves took about 2 s of
    each command, and whose module teardown makes DuckDB's bindings report the objects they
    still hold as leaks. Falls back to the usual exit if this Python has no
    ``atexit._run_exitfuncs``."""
    import threading

    from sim_pipeline.warehouse.store import dispose_all

    dispose_all()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:
        sys.exit(code)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    run_exit_handlers()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
