"""The pipeline on a real PostgreSQL server: warehouse and Dagster's own storage.

One throwaway server per module (sim_pipeline_tests/postgres.py); every test gets its own
databases on it. Outside CI a machine without PostgreSQL skips these tests with the reason; in CI
(CI=true) that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from sim_pipeline.quality.landing_identifiers import landing_identifiers, own_vocabulary
from sim_pipeline.quality.privacy_scan import dagster_storage_urls, scan_database
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.warehouse import Warehouse, frame_digest, table_digests
from sim_pipeline.warehouse.dictionary import (
    RUN_LOG_TABLES,
    RUN_SPECIFIC_COLUMNS,
    all_tables,
    sql_types,
)
from sim_pipeline_tests.conftest import (
    BIN,
    JUNE_2019,
    OTHER_KEY,
    cli,
    link_landing,
    project_env,
    run_ids,
)
from sim_pipeline_tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]
# Last month of the SQLite-vs-PostgreSQL reference runs: the session's SQLite project
# (`june_project`, 42 of the demo's 65 months, so every table has rows: the programme register
# starts in 2018-01) is the SQLite side. Tests that need only a few months stop at
# SHORT_LAST_MONTH.
REFERENCE_LAST_MONTH = JUNE_2019
SHORT_LAST_MONTH = "2016-06"
# The repeat after the killed run: the last two months again (`sim-pipeline backfill`), which
# re-ingests those months and recomputes their partitions and every unpartitioned table from
# all months (person index, cohort, evaluation ...): every write path a whole run takes, at a
# third of its cost. (A job repeated on SQLite: test_end_to_end.)
RERUN_FIRST_MONTH = "2019-05"
# stages whose input and output are every month whatever months a run materialises
# (ingest_summary is unpartitioned too, but its output counts the materialised months' files)
UNPARTITIONED_STAGES = {
    "unit_costs",
    "person_index",
    "linkage_quality",
    "cohort",
    "evaluation",
    "programme_headline",
    "evaluation_report",
}
RUN_TIMEOUT = 900  # a 42-month run takes 1-2 min alone; generous for a loaded machine


# ----------------------------------------------------------------------------- helpers


def _pg_home(pg: PostgresServer, root: Path, db: str) -> Path:
    """A DAGSTER_HOME whose instance storage is database ``db`` on the test server."""
    pg.create_database(db)
    home = root / f"home_{db}"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(pg.dagster_yaml(db))
    return home


def _env(src: Path, url: str, home: Path, root: Path, last: str, **extra: str) -> dict[str, str]:
    """A project under ``root`` on the drops of ``src`` up to ``last`` (linked into its own
    landing folder), with warehouse ``url`` and Dagster instance ``home``."""
    landing = link_landing(src, root / "landing", lambda m: m <= last)
    return project_env(
        landing, root, SIM_WAREHOUSE_URL=url, DAGSTER_HOME=str(home), SIM_LAST_MONTH=last, **extra
    )


def _start_cli(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """`sim-pipeline run` in its own process group, output to ``log``."""
    out = log.open("w")
    try:
        return subprocess.Popen(
            [str(BIN / "sim-pipeline"), "run"],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()


def _finish(proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        pytest.fail(f"run did not finish in {timeout}s:\n{log.read_text()[-4000:]}")
    return code, log.read_text()


def _assert_same_tables(got: dict[str, str], want: dict[str, str], what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: different tables"
    diff = {t: (got[t], want[t]) for t in want if got[t] != want[t]}
    assert not diff, f"{what}: tables differ (got, want): {diff}"


# Columns that record when a run did something: two warehouses built by two runs differ there by
# design (each run records when it first saw a landing file version), so the SQLite and
# PostgreSQL warehouses are compared without them. A repeated run keeps them (compared whole).
RUN_TIME_COLUMNS = {"landing_file_versions": ["first_seen_at"]}
# The columns that say which bytes were read: a drop tokenised by its provider differs there
# from the same drop sent raw (and nowhere else).
TOKENISED_FILE_COLUMNS = {
    "ingest_ledger": ["file_sha256", "drop_form", "contract_version"],
    "landing_file_versions": ["file_sha256", "first_seen_at"],
}


def _engine_digests(url: str) -> dict[str, str]:
    """`table_digests`, with the tables of RUN_TIME_COLUMNS digested without those columns."""
    digests = table_digests(url)
    wh = Warehouse(url)
    try:
        for table, cols in RUN_TIME_COLUMNS.items():
            if table in digests:
                digests[table] = frame_digest(wh.read(table).drop(columns=cols))
    finally:
        wh.dispose()
    return digests


def _months(last: str) -> list[str]:
    return [p.strftime("%Y-%m") for p in pd.period_range("2016-01", last, freq="M")]


def _wait_for(predicate, timeout: float, what: str, procs=()):  # -> truthy value
    """Poll ``predicate`` until it returns something truthy; fail early if a process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc, log in procs:
            if proc.poll() is not None:
                pytest.fail(
                    f"process exited ({proc.returncode}) while waiting for {what}:\n"
                    f"{Path(log).read_text()[-4000:]}"
                )
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _lock_waiters(pg: PostgresServer, db: str, table: str) -> list[int]:
    """Backends (of other sessions) waiting for a lock on ``table`` in database ``db``."""
    with pg.connect(db) as con:
        rows = con.execute(
            """
            SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE NOT l.granted AND c.relname = %s AND l.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def _waiting_backends(pg: PostgresServer, db: str) -> list[tuple[int, str]]:
    with pg.connect(db) as con:
        return con.execute(
            "SELECT pid, wait_event FROM pg_stat_activity WHERE datname = %s "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            (db,),
        ).fetchall()


def _backends_alive(pg: PostgresServer, pids: list[int]) -> list[int]:
    with pg.connect() as con:
        rows = con.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchall()
    return [r[0] for r in rows]


# ----------------------------------------------------------------------------- the reference


@pytest.fixture(scope="module")
def reference(pg, june_project, tokenised_synth, tmp_path_factory):
    """The whole pipeline through the CLI on PostgreSQL (warehouse AND Dagster instance) on the
    drops of the session's SQLite project (`june_project`, the same CLI run on SQLite), with
    the police's and the ambulance service's tokenised by them (`tokenised_synth`: `synth
    --tokenise police,ambulance`; health raw), so the comparison with SQLite is also raw
    against tokenised drops. The same run once more, after a killed run, is
    `killed_then_rerun`."""
    root = tmp_path_factory.mktemp("pg_reference")
    sqlite_url = june_project["env"]["SIM_WAREHOUSE_URL"]
    pg_url = pg.create_database("wh_ref")
    home = _pg_home(pg, root, "dagster_ref")
    pg_env = _env(
        tokenised_synth[0], pg_url, home, root, REFERENCE_LAST_MONTH, SIM_INGEST_WORKERS="2"
    )
    t0 = time.perf_counter()
    first = cli("run", env=pg_env, cwd=root, timeout=RUN_TIMEOUT)
    first_seconds = time.perf_counter() - t0
    pg_first = table_digests(pg_url)
    pg_first_engine = _engine_digests(pg_url)
    return {
        "root": root,
        "home": home,
        "landing": Path(pg_env["SIM_LANDING_DIR"]),
        "raw_landing": june_project["landing"],  # the same drops, every one raw
        "pg_env": pg_env,
        "pg_url": pg_url,
        "sqlite": (june_project["run"].returncode, june_project["run"].stdout),
        "pg_first": (first.returncode, first.stdout + first.stderr),
        "sqlite_digests": _engine_digests(sqlite_url),
        "sqlite_url": sqlite_url,
        "pg_first_engine_digests": pg_first_engine,
        "pg_first_digests": pg_first,
        "seconds": round(first_seconds, 1),
    }


def test_whole_pipeline_on_postgres_matches_sqlite(pg, reference):
    code, out = reference["sqlite"]
    assert code == 0, out[-4000:]
    code, out = reference["pg_first"]
    assert code == 0, out[-4000:]
    assert "SUCCEEDED" in out and "0 failed" in out
    assert "postgresql+psycopg://" in out  # the summary names the PostgreSQL warehouse
    ids = run_ids(out)  # the staged tables in two processes, a run each; then the rest
    assert len(ids) == 3

    # the runs are recorded in the PostgreSQL instance storage, and nowhere else
    home = reference["home"]
    months = _months(REFERENCE_LAST_MONTH)
    with dg.DagsterInstance.from_config(str(home)) as inst:
        # dagster-postgres's storages, their connections kept open (`dagster_postgres_storage`)
        assert type(inst.run_storage).__name__ == "KeptOpenPostgresRunStorage"
        assert type(inst.event_log_storage).__name__ == "KeptOpenPostgresEventLogStorage"
        assert type(inst.schedule_storage).__name__ == "KeptOpenPostgresScheduleStorage"
        assert not inst.telemetry_enabled
        for run_id in ids:
            run = inst.get_run_by_id(run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for table in SOURCE_TABLES:
            done = inst.get_materialized_partitions(dg.AssetKey(table.asset_name))
            assert done == {f"{m}-01" for m in months}, table.asset_name
        assert inst.get_latest_materialization_event(dg.AssetKey("ingest_summary")) is not None
    with pg.connect("dagster_ref") as con:
        statuses = con.execute("SELECT status FROM runs WHERE run_id = ANY(%s)", (ids,)).fetchall()
        n_materialisations = con.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = ANY(%s) "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (ids,),
        ).fetchone()[0]
    assert statuses == [("SUCCESS",)] * 3
    # one per monthly asset (ingest tables, events, person_month_metrics, person_month_costs)
    # and month, plus one per unpartitioned asset Dagster runs: every table of a multi_asset is
    # its own (person_index's seven, linkage_quality's report and two tables, the four evaluation
    # tables, drop_coverage's two), ingest_summary, cohort, unit_costs, programme_headline,
    # evaluation_report: 21; plus ingest_ledger and ingest_quarantine, which every staged step
    # reports once (a single-run backfill: one step per staged table)
    from sim_pipeline.definitions import load_definitions

    defs = load_definitions()

    graph = defs.resolve_asset_graph()
    unpartitioned = [k for k in graph.get_all_asset_keys() if not graph.get(k).is_partitioned]
    run_by_dagster = [k for k in unpartitioned if graph.get(k).is_materializable]
    assert len(run_by_dagster) == 21
    assert n_materialisations == (len(SOURCE_TABLES) + 3) * len(months) + len(
        run_by_dagster
    ) + 2 * len(SOURCE_TABLES)
    assert not [p for p in home.rglob("*.db")], "Dagster wrote SQLite storage under DAGSTER_HOME"

    # same warehouse, table by table, as the same run on SQLite
    want = reference["sqlite_digests"]
    # every documented table except person_key_changes (written only when keys move) and the
    # run log (audit_trail: compared below, run by run)
    assert set(want) == {d.name for d in all_tables()} - {"person_key_changes", *RUN_LOG_TABLES}
    assert all(int(d.split(":")[0]) > 0 for d in want.values())
    # ... the police and ambulance drops tokenised by their providers on PostgreSQL, raw on
    # SQLite: the file tables name each file's hash and form; everything else is the same
    got, want = dict(reference["pg_first_engine_digests"]), dict(want)
    for table in TOKENISED_FILE_COLUMNS:
        got[table] = want[table] = "compared below"
    _assert_same_tables(got, want, "PostgreSQL (police, ambulance tokenised) vs SQLite (raw)")
    files = []
    for url in (reference["sqlite_url"], reference["pg_url"]):
        wh = Warehouse(url)
        try:
            files.append({t: wh.read(t) for t in TOKENISED_FILE_COLUMNS})
        finally:
            wh.dispose()
    for table, cols in TOKENISED_FILE_COLUMNS.items():
        a, b = (f[table].drop(columns=cols) for f in files)
        key = [c for c in ("file", "month") if c in a]
        a, b = (x.sort_values(key, ignore_index=True) for x in (a, b))
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=table)
    ledger = files[1]["ingest_ledger"]
    forms = ledger.groupby("source")["drop_form"].agg(set).to_dict()
    assert forms["met_police"] == forms["las"] == {"tokenised"}
    assert forms["slam"] == forms["ae_rjz"] == {"raw"}
    # the run log: the same stages with the same row counts, under the PostgreSQL run's id
    cols = ["stage", "months", "status", "key_fingerprint", "rows_in", "rows_out", "rows_rejected"]
    logs = []
    for url in (reference["sqlite_url"], reference["pg_url"]):
        wh = Warehouse(url)
        try:
            logs.append(wh.read("audit_trail"))
        finally:
            wh.dispose()
    sqlite_log, pg_log = logs[0], logs[1][logs[1]["run_id"].isin(ids)]
    sqlite_ids = run_ids(reference["sqlite"][1])
    assert len(pg_log) > len(SOURCE_TABLES) and set(sqlite_log["run_id"]) == set(sqlite_ids)
    pd.testing.assert_frame_equal(
        *(log[cols].sort_values("stage").reset_index(drop=True) for log in (sqlite_log, pg_log)),
        check_dtype=False,
    )
    print(f"\nreference run on PostgreSQL: {reference['seconds']}s")


def test_rerun_on_postgres_is_idempotent(reference, killed_then_rerun):
    """The last two months materialised again (after a killed run with another key) leave
    every table as the first run left it, and the run log records the repeat's stages with the
    first run's counts."""
    code, out = killed_then_rerun["again"]
    assert code == 0, out[-4000:]
    assert "SUCCEEDED" in out and "0 failed" in out
    first_ids, again_ids = run_ids(reference["pg_first"][1]), run_ids(out)
    assert not set(again_ids) & set(first_ids)
    # quality_results keeps a result per suite and batch: the repeat's batch (the two months)
    # joins the first run's (every month), whose rows stay as they were
    got = dict(killed_then_rerun["again_digests"])
    wh = Warehouse(reference["pg_url"])
    try:
        results = wh.read("quality_results")
        audit = wh.read("audit_trail")
        ledger = wh.read("ingest_ledger")
    finally:
        wh.dispose()
    first = audit[audit["run_id"].isin(first_ids)].set_index("stage")
    again = audit[audit["run_id"].isin(again_ids)].set_index("stage")
    (first_batch,) = set(first["months"])  # a batch is labelled with its months, as the log is
    two_months = f"{RERUN_FIRST_MONTH}..{REFERENCE_LAST_MONTH}"
    assert set(results["batch"]) == {first_batch, two_months}
    repeat = results[results["batch"] == two_months]
    assert repeat["success"].astype(bool).all() and set(repeat["run_id"]) <= set(again_ids)
    kept = results[results["batch"] == first_batch]
    got["quality_results"] = frame_digest(
        kept.drop(columns=[c for c in RUN_SPECIFIC_COLUMNS if c in kept.columns])
    )
    _assert_same_tables(got, reference["pg_first_digests"], "repeat vs first run")
    # the run log grew by one row per stage of the repeat: the unpartitioned stages with the
    # first run's counts, the ingest stages with the ledger's counts for the two months. Of the
    # killed run (another key) only refusals: the police's and the ambulance service's drops
    # are tokenised under the demo key, so those steps refused before writing
    # (provider_drops_consistent) and logged it; nothing it wrote was committed
    killed = audit[~audit["run_id"].isin([*first_ids, *again_ids])]
    assert set(killed["status"]) <= {"not_written"}, killed[["stage", "status"]]
    assert set(killed["stage"]) <= {
        "staged_police_cad_incidents", "staged_police_s136_return", "staged_ambulance_incidents"
    }, killed[["stage", "status"]]  # fmt: skip
    audit = audit[audit["run_id"].isin([*first_ids, *again_ids])]
    assert set(again.index) == set(first.index)
    assert set(again["months"]) == {two_months}
    assert set(again["status"]) == {"written"}
    same = ["code_version", "key_fingerprint", "rows_in", "rows_out"]
    stages = sorted(UNPARTITIONED_STAGES)
    pd.testing.assert_frame_equal(first.loc[stages, same], again.loc[stages, same])
    months = ledger[ledger["month"] >= RERUN_FIRST_MONTH]
    for table in SOURCE_TABLES:
        led = months[months["table_name"] == table.table]
        row = again.loc[table.asset_name]
        assert (row["rows_in"], row["rows_out"]) == (
            led["rows_read"].sum(),
            led["rows_loaded"].sum(),
        ), table.asset_name


def test_no_landing_identifier_in_the_postgres_warehouse_or_dagster_storage(pg, reference):
    """The auditor's privacy scan over a PostgreSQL project: every warehouse table and every
    table of Dagster's run, event and schedule storage on the server (plus the quality
    folder), through `sim-pipeline privacy-scan` and through the scanner itself."""
    ids = landing_identifiers(reference["raw_landing"], own_vocabulary())  # every provider's
    assert min(len(v) for v in ids.values()) > 20  # the scan has something to look for
    storage = dagster_storage_urls(reference["home"])
    assert len(storage) == 1 and "dagster_ref" in storage[0]
    assert scan_database(reference["pg_url"], ids) == {}
    assert scan_database(storage[0], ids) == {}
    # and the command reads those databases: an NHS number planted in an event log row is
    # found there and nowhere else (the command's clean verdict on the same scan is tested on
    # SQLite: test_end_to_end.py::test_privacy_scan_command_reports_clean)
    nhs = sorted(ids["nhs"])[0]
    with pg.connect("dagster_ref") as con:
        con.execute(
            "UPDATE event_logs SET event = event || %s WHERE id = (SELECT min(id) FROM event_logs)",
            (f" {nhs[:3]} {nhs[3:6]} {nhs[6:]}",),
        )
    try:
        assert scan_database(storage[0], ids) == {"table event_logs": ["nhs"]}
        r = cli("privacy-scan", env=reference["pg_env"], cwd=reference["root"], timeout=RUN_TIMEOUT)
        assert r.returncode == 1 and nhs not in r.stdout + r.stderr, r.stdout + r.stderr
        found = re.findall(r"IDENTIFIER FOUND in (.+): (.+)", r.stdout)
        assert found == [("dagster storage: table event_logs", "nhs")], r.stdout
        assert "1 places hold a landing identifier" in r.stdout
        assert "scanned every table of the warehouse database" in r.stdout
    finally:
        with pg.connect("dagster_ref") as con:
            con.execute(
                "UPDATE event_logs SET event = left(event, length(event) - 13) "
                "WHERE id = (SELECT min(id) FROM event_logs)"
            )
    assert scan_database(storage[0], ids) == {}


# ----------------------------------------------------------------------------- concurrency

PARTITION_RUN = """
import sys

import dagster as dg

from sim_pipeline.defs.ingest import STAGED_ASSETS
from sim_pipeline.defs.resources import build_resources

with dg.DagsterInstance.get() as instance:
    result = dg.materialize(
        STAGED_ASSETS,
        partition_key=sys.argv[1],
        resources=build_resources(),
        instance=instance,
        raise_on_error=False,
        tags={"launched_by": "test_postgres"},
    )
print("run", result.run_id, "success" if result.success else "FAILED")
sys.exit(0 if result.success else 1)
"""


def test_two_partitions_materialised_concurrently(pg, small_synth, reference, tmp_path):
    """Two processes write different months of the same ingest assets into one fresh warehouse.

    A barrier makes them overlap for certain: the test holds an exclusive lock on the (empty)
    ledger table, so the first process stops inside its first write transaction (after creating
    and filling the first staged table) and the second one reaches the same table while that
    creation is still uncommitted: the moment two fresh runs race to create a table.
    """
    url = pg.create_database("wh_concurrent")
    home = _pg_home(pg, tmp_path, "dagster_concurrent")
    env = _env(small_synth[0], url, home, tmp_path, SHORT_LAST_MONTH)
    with dg.DagsterInstance.from_config(str(home)):
        pass  # create the instance's tables before two processes share it
    engine = sa.create_engine(url)
    ledger_types = sql_types("ingest_ledger")
    pd.DataFrame(columns=list(ledger_types)).to_sql(
        "ingest_ledger", engine, index=False, dtype=ledger_types
    )
    engine.dispose()
    months = ["2016-02", "2016-05"]
    lock = pg.connect("wh_concurrent", autocommit=False)
    procs = []
    try:
        lock.execute("LOCK TABLE ingest_ledger IN ACCESS EXCLUSIVE MODE")
        for m in months:
            log = tmp_path / f"{m}.log"
            with log.open("w") as out:
                procs.append(
                    (
                        subprocess.Popen(
                            [sys.executable, "-c", PARTITION_RUN, f"{m}-01"],
                            env=env,
                            cwd=tmp_path,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        ),
                        log,
                    )
                )
        waiting = _wait_for(
            lambda: (w := _waiting_backends(pg, "wh_concurrent")) and len(w) >= 2 and w,
            120,
            "both processes to be inside a write transaction",
            procs,
        )
    finally:
        lock.rollback()
        lock.close()
    results = [_finish(p, log) for p, log in procs]
    for (code, out), m in zip(results, months, strict=True):
        assert code == 0, f"partition {m} failed while another ran:\n{out[-4000:]}"
    assert len(waiting) >= 2

    wh = Warehouse(url)
    try:
        ledger = wh.read("ingest_ledger")
        assert sorted(ledger["month"].unique()) == months
        assert (ledger.rows_read == ledger.rows_loaded + ledger.rows_quarantined).all()
        ref = Warehouse(reference["pg_url"])
        try:
            for table in [t.asset_name for t in SOURCE_TABLES] + ["ingest_ledger"]:
                got = wh.read(table)
                keys = (
                    ["source", "month", "record_ref"]
                    if table.startswith("staged_")
                    else ["source", "table_name", "month", "file"]
                )
                dupes = got[got.duplicated(keys, keep=False)]
                assert dupes.empty, f"{table}: duplicate {keys}:\n{dupes[keys].head()}"
                # exactly the rows the whole-range reference run holds for these months
                want = ref.read(table, {"month": months})
                if want.empty:  # e.g. no programme register rows in these months
                    assert got.empty, table
                    continue
                # (the reference reads the police and ambulance drops tokenised, these raw: the
                # ledger's file columns differ by design, every other value is the same)
                cols = [c for c in want.columns if c not in TOKENISED_FILE_COLUMNS.get(table, [])]
                assert sorted(got["month"].unique()) == months, table
                pd.testing.assert_frame_equal(
                    got[cols].sort_values(cols).reset_index(drop=True),
                    want[cols].sort_values(cols).reset_index(drop=True),
                    obj=table,
                )
                if table.startswith("staged_"):
                    loaded = ledger.loc[
                        ledger.table_name
                        == next(t.table for t in SOURCE_TABLES if t.asset_name == table),
                        "rows_loaded",
                    ].sum()
                    assert len(got) == loaded, table
        finally:
            ref.dispose()
    finally:
        wh.dispose()


# ----------------------------------------------------------------------------- crash safety


@pytest.fixture(scope="module")
def killed_then_rerun(pg, reference):
    """On the reference project: ``kill -9`` of a run blocked inside its write transaction,
    the tables just after, then its last two months once more
    (`test_rerun_on_postgres_is_idempotent`).

    The killed run uses a different pseudonymisation key, so had any of its writes been
    committed, the staged tables (tokens) and the ledger (key fingerprint) would differ.
    """
    root, env = reference["root"], reference["pg_env"]
    other_key = {k: v for k, v in env.items() if k != "SIM_DEMO_MODE"}
    other_key["SIM_PSEUDONYMISATION_KEY"] = OTHER_KEY
    lock = pg.connect("wh_ref", autocommit=False)
    log = root / "killed.log"
    proc = None
    try:
        lock.execute("LOCK TABLE ingest_ledger IN ACCESS EXCLUSIVE MODE")
        proc = _start_cli(other_key, root, log)
        blocked = _wait_for(
            lambda: _lock_waiters(pg, "wh_ref", "ingest_ledger"),
            120,
            "the re-run to wait on the ingest_ledger lock",
            [(proc, log)],
        )
        # it is inside its write transaction and has already written staged rows
        with pg.connect("wh_ref") as con:
            written = {
                r[0]
                for r in con.execute(
                    "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = %s AND l.granted AND l.mode = 'RowExclusiveLock'",
                    (blocked[0],),
                ).fetchall()
            }
            xid = con.execute(
                "SELECT backend_xid FROM pg_stat_activity WHERE pid = %s", (blocked[0],)
            ).fetchone()[0]
        os.killpg(proc.pid, signal.SIGKILL)
        killed = proc.wait(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        lock.rollback()
        lock.close()
    # the server notices the dead client and ends its backend (rolling back its transaction)
    _wait_for(lambda: not _backends_alive(pg, blocked), 60, "the killed run's backend to end")
    after_kill = table_digests(reference["pg_url"])
    again = cli(
        "backfill", "--from", RERUN_FIRST_MONTH, "--to", REFERENCE_LAST_MONTH,
        env=env, cwd=root, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    return {
        "blocked": blocked,
        "written": written,
        "xid": xid,
        "killed": killed,
        "after_kill_digests": after_kill,
        "again": (again.returncode, again.stdout + again.stderr),
        "again_digests": table_digests(reference["pg_url"]),
    }


def test_run_killed_mid_write_leaves_tables_consistent(reference, killed_then_rerun):
    """kill -9 of a run blocked inside its write transaction: nothing of it is committed."""
    k = killed_then_rerun
    assert len(k["blocked"]) == 1, k["blocked"]
    assert any(t.startswith("staged_") for t in k["written"]), k["written"]
    assert k["xid"] is not None
    assert k["killed"] == -signal.SIGKILL
    assert "ingest_ledger" in k["after_kill_digests"]
    _assert_same_tables(
        k["after_kill_digests"], reference["pg_first_digests"], "after the killed run"
    )


# ----------------------------------------------------------------------------- deploy example


def test_deploy_example_instance_config_runs(pg, small_synth, tmp_path):
    """deploy/dagster.yaml, credentials from the environment, against the test server."""
    example = REPO / "deploy" / "dagster.yaml"
    config = yaml.safe_load(example.read_text())
    storage = config["storage"]["custom"]
    assert (storage["module"], storage["class"]) == (
        "sim_pipeline.dagster_postgres_storage",
        "SimPostgresStorage",
    )
    db_config = storage["config"]["postgres_db"]
    for field in ("username", "password", "hostname", "port", "db_name"):
        assert set(db_config[field]) == {"env"}, f"{field} must come from the environment"
    assert config["telemetry"] == {"enabled": False}

    user, password = "sim_deploy", "pa:ss w/rd@'%"  # characters a URL must quote
    pg.create_database("dagster_deploy")
    pg.add_password_user(user, password, "dagster_deploy")
    with pytest.raises(Exception, match="password authentication failed"):
        pg.connect_as(user, "wrong", "dagster_deploy").close()  # the password is really checked
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(example, home / "dagster.yaml")
    env = _env(
        small_synth[0],
        pg.create_database("wh_deploy"),
        home,
        tmp_path,
        "2016-01",  # one month: the instance config is under test, not the data
        DAGSTER_PG_USERNAME=user,
        DAGSTER_PG_PASSWORD=password,
        DAGSTER_PG_HOST=pg.host,
        DAGSTER_PG_PORT=str(pg.port),
        DAGSTER_PG_DB="dagster_deploy",
    )
    r = cli("run", env=env, cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = run_ids(r.stdout)
    with pg.connect("dagster_deploy") as con:
        statuses = con.execute("SELECT status FROM runs WHERE run_id = ANY(%s)", (ids,)).fetchall()
        assert statuses == [("SUCCESS",)] * len(ids)
        owner = con.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'runs'").fetchone()
    assert owner == (user,)  # created through the credentials from the environment

    old = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_PG_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})
    try:
        with dg.DagsterInstance.from_config(str(home)) as inst:
            assert not inst.telemetry_enabled
            assert type(inst.run_coordinator).__name__ == "QueuedRunCoordinator"
            conc = inst.get_concurrency_config()
            runs = config["concurrency"]["runs"]
            assert conc.run_queue_config.max_concurrent_runs == runs["max_concurrent_runs"]
            assert conc.run_queue_config.tag_concurrency_limits == runs["tag_concurrency_limits"]
            assert (
                conc.pool_config.default_pool_limit
                == config["concurrency"]["pools"]["default_limit"]
            )
            assert inst.run_monitoring_enabled
            for run_id in ids:
                assert inst.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ----------------------------------------------------------------------------- instance storage


def _backend(storage) -> int:
    """The server process behind the connection ``storage`` uses for its next statement."""
    with storage._engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def test_the_instance_keeps_its_connections_open_and_a_forked_child_opens_its_own(pg, tmp_path):
    """The test server's instance, configured as deploy/dagster.yaml configures it
    (`SimPostgresStorage`): runs, event log and schedules each reuse one open connection, where
    dagster-postgres's own storage opens a new one per statement (a new server process each
    time); a process forked from it gets connections of its own and leaves the parent's open;
    a process started from the instance's reference loads the same storages."""
    from dagster_postgres import PostgresEventLogStorage

    home = _pg_home(pg, tmp_path, "dagster_kept_open")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        storages = [inst.run_storage, inst.event_log_storage, inst.schedule_storage]
        for storage in storages:
            assert _backend(storage) == _backend(storage), type(storage).__name__
        own = PostgresEventLogStorage(inst.event_log_storage.postgres_url)
        try:
            assert _backend(own) != _backend(own)  # what the kept-open storages replace
        finally:
            own.dispose()

        events = inst.event_log_storage
        parent = _backend(events)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own connection, then out without running any cleanup
            try:
                os.write(write, str(_backend(events)).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child = int(os.read(read, 64))
        os.close(read)
        assert child != parent
        assert _backend(events) == parent  # the parent's connection is still open and usable

    with dg.DagsterInstance.from_ref(inst.get_ref()) as started:  # a run worker's instance
        for storage in (started.run_storage, started.event_log_storage, started.schedule_storage):
            assert _backend(storage) == _backend(storage), type(storage).__name__
