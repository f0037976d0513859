"""Fault injection: a warehouse write that fails on a row holding an NHS number leaves that
number in no exception, log line, event-log entry, GX result, Data Docs page or table, on SQLite
and on PostgreSQL (issue 16, item 7).

The staged A&E asset runs in process on a real Dagster instance (its storage on SQLite files,
or on PostgreSQL) with a real warehouse. After every check has passed, the rows on their way
into the warehouse are altered (`Transaction.replace` wrapped) so that the database itself
rejects them, with the planted value in the row, in the parameters and, for PostgreSQL's type
errors, in the server's own message:

- ``unsupported_type``: a cell the driver cannot adapt (both engines);
- ``nul_byte``: a NUL byte in text (PostgreSQL refuses it);
- ``integer_syntax``: text in an integer column (PostgreSQL quotes the value in its error).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster._serdes import serialize_value

from sim_pipeline.config import ensure_dagster_home
from sim_pipeline.defs.ingest import STAGED_ASSETS
from sim_pipeline.defs.resources import build_resources
from sim_pipeline.quality.privacy_scan import files_under, scan, scan_database
from sim_pipeline.warehouse import store
from sim_pipeline_tests.conftest import clean_env, link_landing

PLANTED = "9434765919"  # a valid NHS number
MONTH = "2019-03"
STAGED_ECDS = next(a for a in STAGED_ASSETS if a.key.to_user_string() == "staged_ecds")
TEXT_COLUMN, INT_COLUMN = "Der_Provider_Site_Code", "EC_Departure_Time_Since_Arrival"


def _inject(df: pd.DataFrame, fault: str) -> pd.DataFrame:
    df = df.copy()
    if fault == "unsupported_type":
        df[TEXT_COLUMN] = df[TEXT_COLUMN].astype(object)
        df.at[0, TEXT_COLUMN] = {"nhs": PLANTED}
    elif fault == "nul_byte":
        df.at[0, TEXT_COLUMN] = f"{PLANTED}\x00"
    elif fault == "integer_syntax":
        df[INT_COLUMN] = df[INT_COLUMN].astype(object)
        df.at[0, INT_COLUMN] = f"{PLANTED}x"
    return df


def _run(small_synth, root: Path, monkeypatch, fault: str, url: str, dagster_yaml: str | None):
    landing = link_landing(small_synth[0], root / "landing", lambda m: m == MONTH)
    home = root / "dagster_home"
    if dagster_yaml:
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(dagster_yaml)
    ensure_dagster_home(home)
    env = clean_env(
        SIM_LANDING_DIR=str(landing),
        SIM_DEMO_MODE="1",
        SIM_WAREHOUSE_URL=url,
        DAGSTER_HOME=str(home),
        SIM_PROJECT_DIR=str(root),
        SIM_QUALITY_DIR=str(root / "quality"),
        SIM_REPORTS_DIR=str(root / "reports"),
        SIM_PUBLISHED_DIR=str(root / "published"),
    )
    for k in [k for k in os.environ if k.startswith("SIM_")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    real = store.Transaction.replace

    def faulty(self, table, df, where, dtype=None):
        return real(self, table, _inject(df, fault) if table == "staged_ecds" else df, where, dtype)

    monkeypatch.setattr(store.Transaction, "replace", faulty)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize(
            [STAGED_ECDS],
            resources=build_resources(),
            partition_key=f"{MONTH}-01",
            instance=instance,
            raise_on_error=False,
        )
        records = instance.get_records_for_run(result.run_id, limit=100_000).records
        logged = [serialize_value(r.event_log_entry) for r in records]
    finally:
        instance.dispose()
    return result, logged, home


def _assert_no_value_anywhere(result, logged, home, root, url, capfd, caplog, storage_url=None):
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not result.success and failures  # the fault fired
    texts = [*logged, *(serialize_value(e) for e in result.all_events)]
    out, err = capfd.readouterr()
    texts += [out, err, caplog.text]
    for text in texts:
        assert PLANTED not in text and "943 476 5919" not in text
    # nothing written: the transaction rolled back, and no table holds the value
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            names = sa.inspect(con).get_table_names()
            if "staged_ecds" in names:
                assert con.execute(sa.text('select count(*) from "staged_ecds"')).scalar() == 0
    finally:
        engine.dispose()
    ids = {"nhs": {PLANTED}}
    files = files_under(home, root / "quality", root / "reports", root / "published")
    if url.startswith("sqlite"):
        files.append(Path(url.removeprefix("sqlite:///")))
    assert scan(files, ids) == {}
    for path in files:  # and as a plain substring, whatever the scanner's rules
        assert PLANTED.encode() not in path.read_bytes(), path
    for db in [u for u in (storage_url, None if url.startswith("sqlite") else url) if u]:
        assert scan_database(db, ids) == {}
    # the fault fired where it was planted: the database refused the write
    error = failures[0].step_failure_data.error  # the step's error and its causes, as stored
    assert "warehouse statement failed" in error.to_string()


@pytest.mark.slow
def test_a_failed_warehouse_write_on_sqlite_leaks_no_value(
    small_synth, tmp_path, monkeypatch, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    result, logged, home = _run(small_synth, tmp_path, monkeypatch, "unsupported_type", url, None)
    _assert_no_value_anywhere(result, logged, home, tmp_path, url, capfd, caplog)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["unsupported_type", "nul_byte", "integer_syntax"])
def test_a_failed_warehouse_write_on_postgres_leaks_no_value(
    fault, pg, small_synth, tmp_path, monkeypatch, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    url = pg.create_database(f"wh_fault_{fault}")
    storage = f"dg_fault_{fault}"
    pg.create_database(storage)
    result, logged, home = _run(
        small_synth, tmp_path, monkeypatch, fault, url, pg.dagster_yaml(storage)
    )
    _assert_no_value_anywhere(
        result, logged, home, tmp_path, url, capfd, caplog, storage_url=pg.url(storage)
    )
