import pandas as pd
import pytest

from sim_pipeline.warehouse import Warehouse, redact_url


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    yield w
    w.dispose()


def _rows(month, n, tag):
    return pd.DataFrame({"month": [month] * n, "v": [f"{tag}{i}" for i in range(n)]})


def test_replace_partition_is_idempotent_and_leaves_other_partitions(wh):
    for _ in range(2):
        with wh.transaction() as tx:
            tx.replace("t", _rows("2019-01", 3, "a"), {"month": ["2019-01"]})
            tx.replace("t", _rows("2019-02", 2, "b"), {"month": ["2019-02"]})
    assert wh.count("t") == 5
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "c"), {"month": ["2019-01"]})
    got = wh.read("t").sort_values("v")
    assert got["v"].tolist() == ["b0", "b1", "c0"]


def test_failed_transaction_keeps_previous_contents(wh):
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 3, "a"), {"month": ["2019-01"]})
    with pytest.raises(RuntimeError), wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "z"), {"month": ["2019-01"]})
        raise RuntimeError("killed mid-write")
    assert sorted(wh.read("t")["v"]) == ["a0", "a1", "a2"]


def test_schema_drift_is_a_clear_error(wh):
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "a"), {"month": ["2019-01"]})
    with pytest.raises(RuntimeError, match="lacks column"), wh.transaction() as tx:
        tx.replace("t", _rows("2019-02", 1, "a").assign(extra=1), {"month": ["2019-02"]})


def test_read_missing_table_is_empty(wh):
    assert wh.read("nope").empty and wh.count("nope") == 0


def test_redact_url_hides_password():
    assert "s3cret" not in redact_url("postgresql+psycopg://u:s3cret@127.0.0.1:5432/db")


def test_sqlite_insert_stores_exactly_what_pandas_to_sql_stores(tmp_path, monkeypatch):
    """The SQLite fast insert path against pandas' own `to_sql` (SQLAlchemy's per-row path)
    on every column type the warehouse holds, nulls included: the same stored values, the
    same column types; in chunks of three rows, so that a chunk's edge is crossed."""
    import datetime as dt
    import sqlite3

    import numpy as np
    import sqlalchemy as sa

    df = pd.DataFrame(
        {
            "month": ["2019-01", "2019-01", "2019-02", None],
            "ts": pd.to_datetime(
                ["2019-01-03 10:11:12.5", None, "2019-02-01 00:00:00.0", "2020-01-01 00:00:00.0"]
            ),
            "d": [dt.date(2019, 1, 1), None, dt.date(2019, 2, 2), dt.date(2019, 3, 3)],
            "b": [True, False, None, True],
            "bb": [True, False, False, True],
            "i": [1, 2, 3, 4],
            "ni": pd.array([1, None, 3, 4], dtype="Int64"),
            "f": [1.5, np.nan, 3.0, 4.25],
            "s": ["a", None, "c'\"", "é"],
        }
    )
    dtype = {"d": sa.Date()}
    from sim_pipeline.warehouse import store

    monkeypatch.setattr(store, "_SQLITE_CHUNK", 3)
    fast = Warehouse(f"sqlite:///{tmp_path / 'fast.db'}")
    with fast.transaction() as tx:
        assert tx.replace_all("t", df, dtype) == len(df)
        assert tx.replace_all("t", df, dtype) == len(df)  # into the existing table too
    fast.dispose()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pandas.db'}")
    with engine.begin() as conn:
        df.to_sql("t", conn, index=False, dtype=dtype)
    engine.dispose()

    def raw(name: str) -> tuple[list, list]:
        con = sqlite3.connect(tmp_path / name)
        try:
            cols = con.execute("PRAGMA table_info(t)").fetchall()
            return cols, con.execute("SELECT * FROM t").fetchall()
        finally:
            con.close()

    got, want = raw("fast.db"), raw("pandas.db")
    assert got == want
    assert want[1][0][1] == "2019-01-03 10:11:12.500000"  # SQLAlchemy's stored datetime text


def _read_sql_agrees(url: str, tables: list[str], chunked: set[str] | None = None) -> int:
    """Each table read by the SQLite fast path (`store.read_frame`, `read_frames`) and by
    `pandas.read_sql`: whole, filtered by a month list (and by one that matches nothing), and
    (the tables in ``chunked``, default all) in chunks of 1,000 rows; the same frames, values
    and column types. Returns the rows compared."""
    import sqlalchemy as sa

    from sim_pipeline.warehouse.store import read_frame, read_frames

    wh = Warehouse(url)
    rows = 0
    try:
        for name in tables:
            tbl = sa.Table(name, sa.MetaData(), autoload_with=wh.engine)
            stmts = [sa.select(tbl)]
            if "month" in tbl.c:
                for months in (["2019-01", "2019-03"], ["1900-01"]):  # the second: no rows
                    stmts.append(sa.select(tbl).where(tbl.c["month"].in_(months)))
            with wh.engine.connect() as conn:
                for stmt in stmts:
                    want, got = pd.read_sql(stmt, conn), read_frame(conn, stmt)
                    pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
                    assert list(got.dtypes) == list(want.dtypes), name
                    rows += len(want)
                if chunked is not None and name not in chunked:
                    continue
                want = list(pd.read_sql(stmts[0], conn, chunksize=1000))
                got = list(read_frames(conn, stmts[0], 1000))
            assert len(got) == len(want), name
            for g, w in zip(got, want, strict=True):
                pd.testing.assert_frame_equal(g, w, check_exact=True, obj=name)
    finally:
        wh.dispose()
    return rows


def test_sqlite_read_gives_what_pandas_read_sql_gives(tmp_path):
    """Every column type the warehouse stores, nulls included (dates, timestamps, booleans,
    integers with and without nulls, floats, text), and a read that finds no rows."""
    import datetime as dt

    import numpy as np
    import sqlalchemy as sa

    df = pd.DataFrame(
        {
            "month": ["2019-01", "2019-01", "2019-02", None, "2019-03"],
            "ts": pd.to_datetime(
                [
                    "2019-01-03 10:11:12.5",
                    None,
                    "2019-02-01 00:00:00.0",
                    "2020-01-01 00:00:00.0",
                    None,
                ]
            ),
            "d": [dt.date(2019, 1, 1), None, dt.date(2019, 2, 2), dt.date(2019, 3, 3), None],
            "b": [True, False, None, True, None],
            "bb": [True, False, False, True, True],
            "i": [1, 2, 3, 4, 5],
            "ni": pd.array([1, None, 3, 4, None], dtype="Int64"),
            "f": [1.5, np.nan, 3.0, 4.25, -0.0],
            "s": ["a", None, "c'\"", "é", ""],
        }
    )
    url = f"sqlite:///{tmp_path / 'w.db'}"
    wh = Warehouse(url)
    with wh.transaction() as tx:
        tx.replace_all("t", df, {"d": sa.Date()})
        tx.replace_all("big", pd.concat([df] * 700, ignore_index=True), {"d": sa.Date()})
    wh.dispose()
    assert _read_sql_agrees(url, ["t", "big"]) == 5 + 3 + 3500 + 2100


@pytest.mark.slow
def test_sqlite_read_gives_what_pandas_read_sql_gives_on_every_table_of_a_run(june_run):
    """Every table of the session's whole-pipeline run (conftest `june_run`)."""
    url = june_run["env"]["SIM_WAREHOUSE_URL"]
    wh = Warehouse(url)
    try:
        tables = wh.tables()
    finally:
        wh.dispose()
    assert len(tables) > 30
    # in chunks (as `read_text` reads): two tables here, every column type in the test above
    assert _read_sql_agrees(url, tables, chunked={"staged_ecds", "events"}) > 100_000


def test_postgres_copy_stores_exactly_what_an_insert_stores(pg, monkeypatch):
    """The PostgreSQL bulk load (COPY) against pandas' own `to_sql` INSERT on every column type
    the warehouse holds, with nulls and text COPY must escape (tabs, newlines, backslashes,
    quotes, commas, the text \\N): the same stored values, the same column types; and a COPY
    inside a failed transaction is rolled back with it."""
    import datetime as dt

    import numpy as np
    import sqlalchemy as sa

    from sim_pipeline.warehouse import store

    df = pd.DataFrame(
        {
            "month": ["2019-01", "2019-01", "2019-02", None, "2019-03"],
            "ts": pd.to_datetime(
                [
                    "2019-01-03 10:11:12.5",
                    None,
                    "2019-02-01 00:00:00.0",
                    "2020-01-01 00:00:00.0",
                    "2021-06-30 23:59:59.0",
                ]
            ),
            "d": [dt.date(2019, 1, 1), None, dt.date(2019, 2, 2), dt.date(2019, 3, 3), None],
            "b": [True, False, None, True, False],
            "i": [1, 2, 3, 4, -5],
            "ni": pd.array([1, None, 3, 4, None], dtype="Int64"),
            "f": [1.5, np.nan, 3.0, 4.25, 1e-17],
            "s": ["a\tb", None, "c'\"\\,", "é\nline", "\\N"],
        }
    )
    dtype = {"d": sa.Date()}
    copy_url, insert_url = pg.create_database("copy_path"), pg.create_database("insert_path")
    used = []
    real = store._postgres_copy

    def spy(*args):
        used.append(1)
        return real(*args)

    monkeypatch.setitem(store._BULK_LOAD, ("postgresql", "psycopg"), spy)
    wh = Warehouse(copy_url)
    with wh.transaction() as tx:
        assert tx.replace_all("t", df, dtype) == len(df)
        assert tx.replace_all("t", df, dtype) == len(df)  # into the existing table too
    with pytest.raises(RuntimeError), wh.transaction() as tx:
        tx.replace_all("t", df.iloc[:2], dtype)
        raise RuntimeError("fails after the COPY")
    wh.dispose()
    assert len(used) == 3
    engine = sa.create_engine(insert_url)
    with engine.begin() as conn:
        df.to_sql("t", conn, index=False, dtype=dtype)
    engine.dispose()

    def raw(db: str) -> tuple[list, list]:
        with pg.connect(db) as con:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 't' ORDER BY ordinal_position"
            ).fetchall()
            return cols, con.execute("SELECT * FROM t ORDER BY i").fetchall()

    got, want = raw("copy_path"), raw("insert_path")
    assert got == want
    assert len(got[1]) == len(df)  # the failed transaction's COPY left nothing


def test_bench_warehouse_prints_and_writes_rows_per_second(tmp_path):
    from sim_pipeline_tests.conftest import clean_env, cli

    out = tmp_path / "w.json"
    r = cli(
        "bench", "warehouse", "--rows", "500", "--repeats", "1", "--out", str(out),
        env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "rows/s" in r.stdout and "SQLite only" in r.stdout
    import json

    (sqlite,) = json.loads(out.read_text())["results"]
    assert sqlite["rows"] == 500 and sqlite["rows_per_second"] > 0


@pytest.mark.parametrize("timeout_ms, waits", [(None, True), (200, False)])
def test_a_write_waits_for_another_processs_write(tmp_path, monkeypatch, timeout_ms, waits):
    """SQLite has one writer: a write that meets another connection's open write transaction
    waits for it (`store.SQLITE_BUSY_TIMEOUT_MS`; two processes stage at once, and a national
    table's write holds the lock for a minute or more) and then goes in; given less time than
    the other write takes, it fails as a masked `WarehouseError`, nothing written."""
    import sqlite3
    import threading
    import time

    from sim_pipeline.warehouse import store

    if timeout_ms is not None:
        monkeypatch.setattr(store, "SQLITE_BUSY_TIMEOUT_MS", timeout_ms)
    path = tmp_path / "w.db"
    wh = Warehouse(f"sqlite:///{path}")
    with wh.transaction() as tx:
        tx.replace_all("t", pd.DataFrame({"v": [1]}))
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the other process's write, still open
    other.execute("INSERT INTO t (v) VALUES (2)")
    release = threading.Timer(1.5, other.commit)
    release.start()
    t0 = time.perf_counter()
    try:
        if waits:
            with wh.transaction() as tx:
                tx.replace_all("t", pd.DataFrame({"v": [3]}))
            assert time.perf_counter() - t0 >= 1.0  # it waited for the other write
            assert wh.read("t")["v"].tolist() == [3]
        else:
            locked = pytest.raises(store.WarehouseError, match="database is locked")
            with locked, wh.transaction() as tx:
                tx.replace_all("t", pd.DataFrame({"v": [3]}))
            release.join()
            assert sorted(wh.read("t")["v"].tolist()) == [1, 2]
    finally:
        release.join()
        other.close()
        wh.dispose()
