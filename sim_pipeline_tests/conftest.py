"""Shared test infrastructure: clean environments, the CLI, and projects built once per session.

The suite runs on pytest-xdist (``-n auto`` in pyproject). Expensive projects (a synthetic
landing, a CLI run of the whole pipeline) are built once per test session whichever worker asks
first, under a file lock in the session's shared temporary folder; the other workers wait for it
and then read the same folder. Tests only read a shared project: a test that changes anything
copies what it changes into its own ``tmp_path`` first (`copy_project`, `link_landing`).

Every project lives in its own folder with its own landing folder (hard links to the shared
synthetic files), so the folders the pipeline derives from the landing folder's parent (quality,
reports, published) are never shared between two projects.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from filelock import FileLock

from sim_pipeline.ingest.tokenised import MANIFEST_SUFFIX as TOKENISED_MANIFEST
from sim_pipeline.landing.manifest import MANIFEST_NAME

BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The session's synthetic set: small enough for a whole run in about a minute, large enough for
# a cohort, matching and an evaluation (programme members are always 108).
SYNTH = {"seed": 7, "people": 800, "comparison_people": 120}
# Projects that stop here have a cohort, costs and an evaluation (allocations start 2018-01)
# with 42 of the 65 months: the checks, web UI and PostgreSQL tests share one such run.
JUNE_2019 = "2019-06"


# Fixtures that run the whole pipeline, a server or a browser: a test using one is slow.
SLOW_FIXTURES = {
    "june_run",
    "june_project",
    "keyed_backfill",
    "damaged_runs",
    "pg",
    "webserver",
    "bench",
}


# Tests that run on one xdist worker, as one unit, so that the module-scoped fixtures they share
# (a PostgreSQL server and the runs on it, a web server and a browser, a damaged landing and its
# runs, generator runs, a benchmark) are built once: a module's tests, or only those named (the
# others of that module are units of their own). Every other test is a unit of its own.
PINNED: dict[str, frozenset[str] | None] = {
    "test_postgres.py": frozenset(  # the tests on the `reference` runs
        {
            "test_whole_pipeline_on_postgres_matches_sqlite",
            "test_rerun_on_postgres_is_idempotent",
            "test_run_killed_mid_write_leaves_tables_consistent",
            "test_no_landing_identifier_in_the_postgres_warehouse_or_dagster_storage",
            "test_two_partitions_materialised_concurrently",
        }
    ),
    "test_damaged_extracts.py": None,
    # the end-to-end tests read `june_run` on one worker, the snapshot taken once
    "test_end_to_end.py": None,
    "test_web_ui.py": None,
    "test_bench_linkage.py": None,
    "test_synthetic.py": None,
    "test_expectations.py": None,
    "test_evaluation_truth.py": None,
    "test_privacy_scan.py": None,
    "test_linkage_spark.py": None,  # one local Spark session for the module
}
# The order of the queue: the longest units start at once, a shared project is built by the
# first unit to need it while the other worker is busy elsewhere (test_postgres builds
# `june_project`, which the end-to-end tests, the web UI and checks read later), and the tests
# that only read a project come after its builder (test_linkage reads `june_run`). Modules not
# named keep their place between the two lists.
FIRST = (
    "test_postgres.py",
    "test_damaged_extracts.py",
    "test_adversarial.py",
    "test_end_to_end.py",
    "test_web_ui.py",
    "test_checks_fail.py",
)
LAST = ("test_linkage.py", "test_incremental_linkage.py")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


@pytest.hookimpl(tryfirst=True)  # before pytest-random-order, which may then shuffle
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(FIRST)}
    rank |= {name: len(FIRST) + 1 + i for i, name in enumerate(LAST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(FIRST)))  # stable


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Load scheduling in collection order with the `PINNED` tests kept together.

    (pytest-xdist's own ``--dist loadgroup`` does not group under pytest 9: it rewrites a node
    id attribute pytest 9 no longer reads.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class PinnedModules(LoadScopeScheduling):
        def __init__(self, config: pytest.Config, log=None) -> None:
            super().__init__(config, log)
            config.option.loadscopereorder = False  # keep the order set above

        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            if module not in PINNED:
                return nodeid
            names = PINNED[module]
            test = nodeid.split("::")[-1].split("[", 1)[0]
            return nodeid.split("::", 1)[0] if names is None or test in names else nodeid

    return PinnedModules(config, log)


# ----------------------------------------------------------------------------- environments


@pytest.fixture(scope="session", autouse=True)
def _subprocess_bytecode() -> Iterable[None]:
    """Let the many pipeline subprocesses use (and keep) compiled bytecode.

    Third-party packages are byte-compiled when uv installs them (``compile-bytecode`` in
    pyproject); where PYTHONDONTWRITEBYTECODE is set, each subprocess would still compile
    ``sim_pipeline`` again. (A PYTHONPYCACHEPREFIX would make Python ignore the installed
    bytecode and compile Dagster and Great Expectations once more.)
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        yield


def clean_env(**extra: str) -> dict[str, str]:
    """The test process environment without any SIM_* / DAGSTER_HOME setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_") and k != "DAGSTER_HOME"}
    env.update(extra)
    return env


def project_env(landing: Path, root: Path, **extra: str) -> dict[str, str]:
    """A clean environment for one project under ``root``: its own SQLite warehouse, Dagster
    instance and quality folder, the given landing folder, demo mode unless a key is passed in
    ``extra``. Pass a landing folder of the project's own (`link_landing`): reports and
    published files go beside it."""
    base = {
        "SIM_LANDING_DIR": str(landing),
        "SIM_WAREHOUSE_URL": f"sqlite:///{root / 'warehouse.db'}",
        "DAGSTER_HOME": str(root / "dagster_home"),
        "SIM_PROJECT_DIR": str(root),
        "SIM_QUALITY_DIR": str(landing.parent / "quality"),
    }
    if "SIM_PSEUDONYMISATION_KEY" not in extra:
        base["SIM_DEMO_MODE"] = "1"
    # One process stages, as one run, unless a test asks for the default of two cores
    # (``SIM_INGEST_WORKERS="2"``: `june_project`, `keyed_backfill`, the damaged drops, the
    # PostgreSQL reference): the suite's two pytest workers already keep both cores busy, so
    # a second staging process in every other run would only add its run's overhead.
    base["SIM_INGEST_WORKERS"] = "1"
    return clean_env(**{**base, **extra})


def cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    """The installed ``sim-pipeline`` command in a subprocess, as a user runs it."""
    return subprocess.run(
        [str(BIN / "sim-pipeline"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_ids(stdout: str) -> list[str]:
    """The Dagster run ids a `sim-pipeline run` or `backfill` printed: ``(run ID)`` for one
    run, ``(runs ID, ID, ...)`` when the staged tables ran in several processes."""
    import re

    m = re.search(r"sim-pipeline run \w+ \(runs? ([0-9a-f, -]+)\)", stdout)
    assert m, stdout[-3000:]
    ids = [i.strip() for i in m.group(1).split(",")]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids), ids
    return ids


def command_runs(instance: Any, job: str = "sim_pipeline_all") -> list[Any]:
    """The runs of ``job`` that the latest command launched (its `COMMAND_TAG`), oldest
    first: one, or a run per staged share and one for the rest of the graph."""
    import dagster as dg

    from sim_pipeline.defs.orchestrate import COMMAND_TAG

    command = instance.get_runs(limit=1)[0].tags[COMMAND_TAG]
    runs = instance.get_runs(filters=dg.RunsFilter(tags={COMMAND_TAG: command}))
    return [r for r in reversed(runs) if r.job_name == job]


def command_events(instance: Any, event_type: Any) -> list[Any]:
    """Every event of ``event_type`` in the latest command's graph runs (`command_runs`)."""
    return [
        r.event_log_entry.dagster_event
        for run in command_runs(instance)
        for r in instance.get_records_for_run(run.run_id, of_type=event_type).records
    ]


# ----------------------------------------------------------------------------- folders


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def link_landing(
    src: Path, dest: Path, months: Callable[[str], bool] | None = None, copy: bool = False
) -> Path:
    """A landing folder of a project's own at ``dest``: hard links to ``src``'s drops (their
    modification times, the drops' arrival times, come along), optionally only the months
    ``months`` accepts. A test that edits files in place passes ``copy=True``; with links,
    change a file by replacing it."""
    put = shutil.copy2 if copy else _link_or_copy
    drops = [*src.glob("*/*/*.csv"), *src.glob(f"*/*/*.csv{TOKENISED_MANIFEST}")]
    for path in sorted(drops):  # a tokenised drop comes with its manifest
        if months is None or months(path.parent.name):
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            put(str(path), str(target))
    if (src / MANIFEST_NAME).is_file():  # the generator's manifest: demo mode stays allowed
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / MANIFEST_NAME, dest / MANIFEST_NAME)
    return dest


def copy_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a SQLite database that others may be reading (SQLite's backup: no
    -wal / -shm files to chase while they come and go)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _copy_file(src: str, dst: str) -> None:
    if src.endswith(".db"):
        copy_sqlite(Path(src), Path(dst))
    else:
        shutil.copy2(src, dst)


def copy_project(src: Path, dest: Path, landing_copy: bool = False) -> Path:
    """A private copy of a shared project (warehouse, Dagster instance, quality, published,
    reports; the landing folder linked, or copied with ``landing_copy``)."""
    for entry in src.iterdir():
        if entry.name == "landing":
            link_landing(entry, dest / "landing", copy=landing_copy)
        elif entry.is_dir():  # SQLite files (Dagster's storage) by backup, the rest as files
            shutil.copytree(
                entry,
                dest / entry.name,
                copy_function=_copy_file,
                ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm", "*.db-journal"),
            )
        elif entry.name == "warehouse.db":
            copy_sqlite(entry, dest / entry.name)
    return dest


def _shared_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder all xdist workers of this session share (the session's own
    basetemp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]
) -> Any:
    """``build(folder)``'s result, computed once per test session across xdist workers.

    The first worker to ask builds under a file lock and leaves the (pickled) result beside the
    folder; the others wait on the lock and load it. A build that raised leaves nothing, so the
    next asker builds again and sees the same error.
    """
    base = _shared_base(tmp_path_factory)
    root, done = base / name, base / f"{name}.result"
    with FileLock(str(base / f"{name}.lock")):
        if done.exists():
            return pickle.loads(done.read_bytes())
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        result = build(root)
        done.write_bytes(pickle.dumps(result))
        return result


# ----------------------------------------------------------------------------- shared projects


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory) -> tuple[Path, Path]:
    """The session's synthetic landing + truth (`SYNTH`), generated once. Read only: run the
    pipeline on a `link_landing` copy of it."""

    def build(root: Path) -> tuple[Path, Path]:
        # through the CLI, as a user makes it; its progress lines are kept for test_progress
        landing, truth = root / "landing", root / "truth"
        args = [f"--{k.replace('_', '-')}={v}" for k, v in SYNTH.items()]
        env = project_env(landing, root)
        r = cli("synth", "--out", str(landing), "--truth", str(truth), *args, env=env, cwd=root)
        assert r.returncode == 0, r.stdout + r.stderr
        (root / "synth.stderr").write_text(r.stderr)
        return landing, truth

    return shared(tmp_path_factory, "synth", build)


@pytest.fixture(scope="session")
def tokenised_synth(tmp_path_factory) -> tuple[Path, Path]:
    """The session's synthetic landing (`SYNTH`) as `sim-pipeline synth --tokenise
    police,ambulance` writes it: the police's and the ambulance service's drops tokenised by
    them (demo key), health raw; every other byte as `small_synth`'s. Read only."""

    def build(root: Path) -> tuple[Path, Path]:
        landing, truth = root / "landing", root / "truth"
        args = [f"--{k.replace('_', '-')}={v}" for k, v in SYNTH.items()]
        env = project_env(landing, root)
        r = cli(
            "synth", "--out", str(landing), "--truth", str(truth), *args,
            "--tokenise", "police,ambulance", env=env, cwd=root,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return landing, truth

    return shared(tmp_path_factory, "tokenised_synth", build)


@pytest.fixture(scope="module")
def pg():
    """A throwaway PostgreSQL server for one module (`sim_pipeline_tests.postgres`). Without
    PostgreSQL binaries the test skips with the reason; in CI (``CI=true``) it fails."""
    from sim_pipeline_tests.postgres import PostgresServer, PostgresUnavailable, check_available

    try:
        check_available()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI (CI=true) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available on this machine: {exc}")
    with PostgresServer.start() as server:
        yield server


def run_project(
    src: Path, root: Path, months: Callable[[str], bool] | None = None, **extra: str
) -> dict[str, Any]:
    """Link ``src``'s drops into ``root/landing`` and run ``sim-pipeline run`` there once."""
    landing = link_landing(src, root / "landing", months)
    env = project_env(landing, root, **extra)
    r = cli("run", env=env, cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"root": root, "landing": landing, "env": env, "run": r}


@pytest.fixture(scope="session")
def june_project(small_synth, tmp_path_factory) -> dict[str, Any]:
    """The whole pipeline through the real CLI on the session's drops up to `JUNE_2019`
    (``SIM_LAST_MONTH`` too): ``landing/``, ``warehouse.db``, ``quality/``, ``published/``,
    ``reports/``, ``dagster_home/``. Shared read only (checks, web UI, PostgreSQL)."""
    src, _ = small_synth
    return shared(
        tmp_path_factory,
        "june_project",
        lambda root: run_project(
            src, root, lambda m: m <= JUNE_2019, SIM_LAST_MONTH=JUNE_2019, SIM_INGEST_WORKERS="2"
        ),
    )


def snapshot(url: str) -> dict[str, pd.DataFrame]:
    """Every warehouse table, rows sorted by every column (comparable across runs)."""
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    try:
        out = {}
        for t in wh.tables():
            df = wh.read(t)
            out[t] = df.sort_values(list(df.columns)).reset_index(drop=True)
        return out
    finally:
        wh.dispose()


@pytest.fixture(scope="session")
def june_run(june_project, small_synth, tmp_path_factory) -> dict[str, Any]:
    """`june_project` with what the end-to-end tests read beside it: every warehouse table
    (`snapshot`, taken once per session) and the generator's truth. (One CLI run serves the
    end-to-end, checks, web UI and PostgreSQL tests. That a repeat changes nothing is proven on
    copies of smaller projects: `test_end_to_end.py::test_second_run_gives_identical_tables`,
    `test_postgres.py::test_rerun_on_postgres_is_idempotent`.)"""
    snap = shared(
        tmp_path_factory,
        "june_snapshot",
        lambda root: snapshot(june_project["env"]["SIM_WAREHOUSE_URL"]),
    )
    return {**june_project, "truth": small_synth[1], "snap": snap}


@pytest.fixture(scope="session")
def staged_small(june_run):
    """The staged tables exactly as ingest wrote them in the session's whole-pipeline run
    (conftest `june_run`: the session's synthetic drops to 2019-06, 42 months, demo key)."""
    from sim_pipeline.sources import SOURCE_TABLES

    staged = {t.asset_name: june_run["snap"][t.asset_name] for t in SOURCE_TABLES}
    months = sorted(staged["staged_ambulance_incidents"]["month"].unique())
    return staged, june_run["truth"], months


def truth_by_record(truth: Path) -> pd.DataFrame:
    """The generator's truth keyed as staged records are (record keys tokenised under the demo
    key the session's run used)."""
    t = pd.read_csv(truth / "records.csv", dtype=str).drop_duplicates(
        ["source", "table", "record_ref"]
    )
    from sim_pipeline.identity.record_keys import truth_record_refs
    from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser

    t = truth_record_refs(Tokeniser(DEMO_KEY, demo=True), t)
    return t.rename(columns={"table": "table_name", "true_person_id": "true"})


# Project keys of the tests' own (made by `sim-pipeline keygen`; synthetic data only, never the
# demo key). Fixed strings: every pytest-xdist worker must use the same key.
PROJECT_KEY = "simkey1.05278d0d516dfd04.zI0Dab9skgNO7iS6GoGh3DtOC5tjM1OuyLpPxiK-7Is"
OTHER_KEY = "simkey1.b5dc579330633564.f6IBXFeyNKiGwMKp60TURHtgi2w08Ut0nNnQevtsoGw"


@pytest.fixture(scope="session")
def keyed_backfill(small_synth, tmp_path_factory) -> dict[str, Any]:
    """A fresh project on a project key (`PROJECT_KEY` in SIM_PSEUDONYMISATION_KEY: not demo
    mode) after `sim-pipeline backfill --from 2019-01 --to 2019-02`; every month of the
    session's drops in its landing folder. Built once per session, read only."""

    def build(root: Path) -> dict[str, Any]:
        landing = link_landing(small_synth[0], root / "landing")
        env = project_env(
            landing, root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY, SIM_INGEST_WORKERS="2"
        )
        r = cli("backfill", "--from", "2019-01", "--to", "2019-02", env=env, cwd=root)
        assert r.returncode == 0, r.stdout + r.stderr
        return {"root": root, "env": env, "run": r}

    return shared(tmp_path_factory, "keyed_backfill", build)
