"""The one module that writes warehouse tables (SQLAlchemy; SQLite by default, PostgreSQL in prod).

Writes are idempotent: a partition (rows matching a key, e.g. one month of one table) is deleted
and re-inserted inside one transaction, so a re-run replaces rather than appends and a failed run
leaves the previous contents in place.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sim_pipeline.quality.redact import masked

# Alembic's record of the schema revision (warehouse/migrate.py): bookkeeping, not data.
SCHEMA_VERSION_TABLE = "alembic_version"


def redact_url(url: str) -> str:
    """The URL with any password hidden (safe for logs and metadata)."""
    return sa.make_url(url).render_as_string(hide_password=True)


class WarehouseError(RuntimeError):
    """A warehouse statement failed; the message holds no data value."""

    @classmethod
    def of(cls, exc: sa.exc.DBAPIError) -> WarehouseError:
        return cls.of_driver(exc.orig, type(exc).__name__)

    @classmethod
    def of_driver(cls, orig: BaseException | None, kind: str = "error") -> WarehouseError:
        """From the database driver's own error (a COPY raises psycopg's, unwrapped)."""
        lines = str(orig).strip().splitlines() if orig is not None else []
        first = masked(lines[0])[:300] if lines else "no message"
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        kind = type(orig).__name__ if orig is not None else kind
        return cls(
            f"warehouse statement failed: {kind}{f' (SQLSTATE {state})' if state else ''}: {first}"
        )


@dataclass
class Transaction:
    conn: Connection
    warehouse: Warehouse

    def replace(
        self,
        table: str,
        df: pd.DataFrame,
        where: Mapping[str, Sequence[object]],
        dtype: Mapping[str, sa.types.TypeEngine] | None = None,
    ) -> int:
        """Delete rows matching ``where`` (column -> allowed values, ANDed), then insert ``df``."""
        tbl = self.warehouse._reflect(table, self.conn)
        if tbl is not None:
            cond = sa.and_(*[tbl.c[col].in_(list(vals)) for col, vals in where.items()])
            self.conn.execute(tbl.delete().where(cond))
        return self._insert(table, df, tbl, dtype)

    def replace_all(
        self, table: str, df: pd.DataFrame, dtype: Mapping[str, sa.types.TypeEngine] | None = None
    ) -> int:
        """Replace the whole table's rows with ``df``."""
        tbl = self.warehouse._reflect(table, self.conn)
        if tbl is not None:
            self.conn.execute(tbl.delete())
        return self._insert(table, df, tbl, dtype)

    def _insert(
        self,
        table: str,
        df: pd.DataFrame,
        tbl: sa.Table | None,
        dtype: Mapping[str, sa.types.TypeEngine] | None,
    ) -> int:
        from sim_pipeline.warehouse.dictionary import is_declared, sql_types

        if dtype is None and is_declared(table):
            dtype = {c: t for c, t in sql_types(table).items() if c in df.columns}
        created = self._create(table) if tbl is None else None
        known = tbl if tbl is not None else created
        if known is not None and len(df.columns):
            unknown = [c for c in df.columns if c not in known.c]
            if unknown:
                raise RuntimeError(
                    f"warehouse table {table} lacks column(s) {unknown}: the schema changed; "
                    "bring the warehouse up to date with `sim-pipeline warehouse upgrade` "
                    "(Alembic migrations)"
                )
        if len(df) == 0:
            return 0
        load = _BULK_LOAD.get((self.conn.dialect.name, self.conn.dialect.driver))
        if load is None:
            df.to_sql(table, self.conn, if_exists="append", index=False, dtype=dict(dtype or {}))
        else:
            # what `to_sql` does, but the loader takes pandas' prepared columns as they are
            # (a `to_sql` method gets them as row tuples and had to turn them back)
            from pandas.io.sql import SQLDatabase

            pd_table = SQLDatabase(self.conn).prep_table(
                df, table, if_exists="append", index=False, dtype=dict(dtype or {})
            )
            keys, columns = pd_table.insert_data()
            if keys:  # rows without columns: nothing to load
                load(pd_table.table, self.conn, keys, columns)
        if tbl is None:
            self.warehouse._tables.pop(table, None)  # created just now: reflect next time
        return len(df)

    def _create(self, table: str) -> sa.Table | None:
        """Create a declared table from its declaration (`warehouse.model.sa_table`: types,
        and the descriptions as table and column comments). An undeclared table is left to
        the first insert."""
        from sim_pipeline.warehouse.dictionary import is_declared, model
        from sim_pipeline.warehouse.model import sa_table

        if not is_declared(table):
            return None
        created = sa_table(model(table))
        if self.conn.dialect.name == "sqlite":
            # Two processes staging at once (`defs.forked`) may both have found a table they
            # share (the ledger) missing; the second's CREATE then finds it made (PostgreSQL:
            # the advisory lock in `_reflect`).
            self.conn.execute(sa.schema.CreateTable(created, if_not_exists=True))
            for index in created.indexes:
                self.conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
        else:
            created.create(self.conn)
        return created


# Every warehouse engine this process made and still holds (`dispose_all`).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def dispose_all() -> None:
    """Close the connections of every warehouse engine this process still holds (a resource's
    cached warehouse, say): each SQLite database is then closed, its write-ahead log folded
    into the file and removed. The engines stay usable; they reconnect when next used."""
    for engine in list(_ENGINES):
        engine.dispose()


class Warehouse:
    def __init__(self, url: str) -> None:
        self.url = url
        # hide_parameters: a failed statement never carries row values into an exception,
        # a log line or the Dagster event log
        self.engine: Engine = sa.create_engine(url, hide_parameters=True)
        _ENGINES.add(self.engine)
        self._tables: dict[str, sa.Table] = {}
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction. A database error leaves as `WarehouseError` with the database's
        first message line masked (`redact.masked`): the server can quote a row's value."""
        try:
            with self.engine.begin() as conn:
                yield Transaction(conn, self)
        except (sa.exc.DBAPIError, pd.errors.DatabaseError) as exc:
            self._tables.clear()  # a rolled-back CREATE TABLE must not stay cached
            # pandas wraps a failed insert in its own error, quoting the statement and cause
            cause = exc if isinstance(exc, sa.exc.DBAPIError) else exc.__cause__
            if not isinstance(cause, sa.exc.DBAPIError):
                raise WarehouseError("warehouse statement failed (message withheld)") from None
            raise WarehouseError.of(cause) from None
        except BaseException:
            self._tables.clear()
            raise

    def _reflect(self, table: str, conn: Connection) -> sa.Table | None:
        """The table's reflected definition (cached), or None if it does not exist yet."""
        if table not in self._tables:
            if not sa.inspect(conn).has_table(table):
                if conn.dialect.name != "postgresql":
                    return None
                # Another run may be creating this table in a transaction not yet committed
                # (parallel partitions on a fresh warehouse); creating it as well would fail on
                # PostgreSQL's catalog unique index. Serialise creation of a table name with a
                # transaction-scoped advisory lock, then look again.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _table_lock_key(table)}
                )
                if not sa.inspect(conn).has_table(table):
                    return None
            self._tables[table] = sa.Table(table, sa.MetaData(), autoload_with=conn)
        return self._tables[table]

    def has_table(self, table: str) -> bool:
        return sa.inspect(self.engine).has_table(table)

    def tables(self) -> list[str]:
        """The warehouse's tables: not the migration tool's own record of the schema revision
        (`SCHEMA_VERSION_TABLE`, read with `warehouse.migrate.current`)."""
        names = sa.inspect(self.engine).get_table_names()
        return sorted(t for t in names if t != SCHEMA_VERSION_TABLE)

    def read(
        self,
        table: str,
        where: Mapping[str, Sequence[object]] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The table (optionally filtered, optionally only the named columns that exist); an
        empty frame if it does not exist yet."""
        if not self.has_table(table):
            return pd.DataFrame()
        tbl = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        cols = [tbl.c[c] for c in columns if c in tbl.c] if columns is not None else [tbl]
        stmt = sa.select(*cols)
        if where:
            stmt = stmt.where(sa.and_(*[tbl.c[c].in_(list(v)) for c, v in where.items()]))
        with self.engine.connect() as conn:
            return read_frame(conn, stmt)

    def read_text(
        self, table: str, columns: Sequence[str], chunk_rows: int = 200_000
    ) -> pd.DataFrame:
        """The named columns that exist of ``table``, every one as text ("string": Arrow-backed,
        about 40 bytes a 32-character token); read in chunks, so a large table never exists
        whole as Python objects (a national month's staged ECDS: 2.2 million rows). An empty
        frame if the table does not exist yet."""
        if not self.has_table(table):
            return pd.DataFrame()
        tbl = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        cols = [tbl.c[c] for c in columns if c in tbl.c]
        names = [c.name for c in cols]
        with self.engine.connect() as conn:
            chunks = [
                chunk.astype("string")
                for chunk in read_frames(conn, sa.select(*cols), chunk_rows=chunk_rows)
            ]
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return pd.DataFrame({c: pd.Series(dtype="string") for c in names})
        return pd.concat(chunks, ignore_index=True)

    def count(self, table: str) -> int:
        if not self.has_table(table):
            return 0
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def table_digests(url: str) -> dict[str, str]:
    """{table: "rows:sha256"} over every table's rows in sorted order, leaving out the run log
    and the columns that record which run wrote a row (`RUN_SPECIFIC_COLUMNS`).

    Independent of row order and of the database engine (values are compared as text after
    reading through pandas), so SQLite and PostgreSQL results can be compared table by table.
    """
    from sim_pipeline.warehouse.dictionary import RUN_LOG_TABLES, RUN_SPECIFIC_COLUMNS

    wh = Warehouse(url)
    try:
        out = {}
        for table in wh.tables():
            if table in RUN_LOG_TABLES:
                continue
            df = wh.read(table)
            out[table] = frame_digest(
                df.drop(columns=[c for c in RUN_SPECIFIC_COLUMNS if c in df.columns])
            )
        return out
    finally:
        wh.dispose()


def content_version(df: pd.DataFrame, leave_out: Sequence[str] = ()) -> str:
    """A fast digest of a frame's content, whatever its row order (20 hex characters): each
    row's 64-bit hash (`pandas.util.hash_pandas_object`), sorted, with the column names. The
    data version an asset reports for the table it wrote; ``leave_out``: columns that record
    which run wrote a row."""
    import numpy as np

    df = df.drop(columns=[c for c in leave_out if c in df.columns])
    rows = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())
    h = hashlib.sha256("\0".join(map(str, df.columns)).encode() + b"\0" + rows.tobytes())
    return h.hexdigest()[:20]


def frame_digest(df: pd.DataFrame) -> str:
    """A frame's digest, "rows:sha256" of its rows in sorted order with values as text (the
    form `table_digests` gives each table)."""
    df = df.sort_values(list(df.columns)).reset_index(drop=True)
    return f"{len(df)}:{hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()}"


# SQLite read fast path. `pandas.read_sql` fetches through SQLAlchemy, which builds a `Row` per
# row and runs each column's result processor row by row; here the statement is executed as
# before (the same SQL and parameters), the rows are fetched from the driver's cursor as plain
# tuples, each column's own result processor (SQLite's DATE and DATETIME parsers) is applied a
# column at a time, and the frame is built by the same pandas functions `read_sql` ends in
# (`_convert_arrays_to_dataframe`'s steps, `_parse_date_columns`): the same frame, column types
# included (every table of a run compared, `test_warehouse.py`), in less time: on the demo's
# warehouse, this machine otherwise idle, events (313,528 rows) 1.42 s -> 0.75 s, person_index
# (337,997) 0.87 s -> 0.47 s, staged_ecds (79,814) 1.56 s -> 1.28 s. Other drivers read through
# `pandas.read_sql`.
def read_frame(conn: Connection, stmt: sa.sql.Select) -> pd.DataFrame:
    """``pandas.read_sql(stmt, conn)``, fetched faster on SQLite."""
    frames = read_frames(conn, stmt, None)
    try:
        return next(frames)
    finally:
        frames.close()  # the statement's cursor closed now, not when collected


def read_frames(
    conn: Connection, stmt: sa.sql.Select, chunk_rows: int | None
) -> Iterator[pd.DataFrame]:
    """``pandas.read_sql(stmt, conn, chunksize=chunk_rows)`` (one frame when None; at least
    one, empty, when there are no rows), fetched faster on SQLite."""
    if (conn.dialect.name, conn.dialect.driver) != ("sqlite", "pysqlite"):
        if chunk_rows is None:
            yield pd.read_sql(stmt, conn)
        else:
            yield from pd.read_sql(stmt, conn, chunksize=chunk_rows)
        return
    from pandas.io import sql as pd_sql

    result = conn.execute(stmt)
    try:
        columns = list(result.keys())
        processors = [
            (i, proc)
            for i, col in enumerate(stmt.selected_columns)
            if (proc := col.type._cached_result_processor(conn.dialect, None)) is not None
        ]
        cursor = result.cursor
        first = True
        while True:
            rows = cursor.fetchall() if chunk_rows is None else cursor.fetchmany(chunk_rows)
            if not rows:
                if first:
                    yield pd_sql._wrap_result([], columns)
                return
            first = False
            yield _frame_of(rows, columns, processors, pd_sql)
            if chunk_rows is None:
                return
    finally:
        result.close()


def _frame_of(rows: list, columns: list[str], processors: list, pd_sql) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """What ``pandas.io.sql._wrap_result(rows, columns)`` gives for the rows SQLAlchemy would
    have processed: its steps, with each processor applied to its column."""
    from pandas._libs import lib
    from pandas.core.internals.construction import convert_object_array

    content = lib.to_object_array_tuples(rows)
    for i, proc in processors:
        content[:, i] = [proc(v) for v in content[:, i]]
    arrays = convert_object_array(
        list(content.T), dtype=None, coerce_float=True, dtype_backend="numpy"
    )
    frame = pd.DataFrame._from_arrays(
        arrays, columns=columns, index=range(content.shape[0]), verify_integrity=False
    )
    return pd_sql._parse_date_columns(frame, None)


# Bulk loads. Each takes the table pandas prepared for the frame and its columns as pandas'
# `insert_data` makes them for any insert (datetimes as Python datetimes, missing values as
# None), applies each column's own bind processor (so the stored values equal `to_sql`'s), and
# hands the rows to the driver in one go: no SQLAlchemy parameter dict per row.
#
# SQLite: ``executemany`` of plain tuples, `_SQLITE_CHUNK` rows at a time (events, 313,528
# rows: 2.4 s through `to_sql`'s INSERT, 1.4 s as a `to_sql` method that had to turn pandas'
# row tuples back into columns, less again from the columns).
_SQLITE_CHUNK = 100_000


def _bound_columns(
    tbl: sa.Table, conn: Connection, keys: list[str], columns: Sequence[Sequence[object]]
) -> list[Sequence[object]]:
    """Each of ``columns`` (named by ``keys``) through its column's bind processor."""
    out: list[Sequence[object]] = []
    for name, values in zip(keys, columns, strict=True):
        proc = tbl.c[name].type._cached_bind_processor(conn.dialect)
        out.append([proc(v) for v in values] if proc is not None else values)
    return out


def _sqlite_insert(
    tbl: sa.Table, conn: Connection, keys: list[str], columns: Sequence[Sequence[object]]
) -> int:
    """The rows (at least one, with at least one column) through ``executemany``, a chunk at
    a time."""
    compiled = tbl.insert().compile(dialect=conn.dialect, column_keys=keys)
    order = [keys.index(name) for name in compiled.positiontup]
    bound = _bound_columns(tbl, conn, keys, columns)
    bound = [bound[i] for i in order]
    n = len(bound[0])
    for start in range(0, n, _SQLITE_CHUNK):
        rows = list(zip(*(c[start : start + _SQLITE_CHUNK] for c in bound), strict=True))
        conn.exec_driver_sql(str(compiled), rows)
    return n


# PostgreSQL bulk load: COPY ... FROM STDIN on the transaction's own connection (psycopg 3), one
# COPY per write. A COPY inside the write transaction is rolled back with it.
def _postgres_copy(
    tbl: sa.Table, conn: Connection, keys: list[str], columns: Sequence[Sequence[object]]
) -> int:
    """The rows (at least one, with at least one column) through ``COPY`` (psycopg 3's copy
    protocol)."""
    bound = _bound_columns(tbl, conn, keys, columns)
    preparer = conn.dialect.identifier_preparer
    target = preparer.format_table(tbl)
    names = ", ".join(preparer.quote(k) for k in keys)
    import psycopg

    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in zip(*bound, strict=True):
                copy.write_row(row)
    except psycopg.Error as exc:  # not wrapped by SQLAlchemy: mask it here, keep no chain
        raise WarehouseError.of_driver(exc) from None
    finally:
        cursor.close()
    return len(bound[0])


# (dialect, driver) -> bulk load; any other driver keeps SQLAlchemy's batched INSERT
_BULK_LOAD = {("sqlite", "pysqlite"): _sqlite_insert, ("postgresql", "psycopg"): _postgres_copy}


def _table_lock_key(table: str) -> int:
    """A stable signed 64-bit advisory-lock key for creating ``table``."""
    digest = hashlib.sha256(f"sim_pipeline.warehouse.create:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# How long a write waits for another connection's write to finish (SQLite has one writer at a
# time). Two processes stage at once (`defs.forked`), and one table's write is one transaction:
# a national month's ECDS (2.2 million rows) held the lock past the 30 s this once was, and the
# other process's next write failed with "database is locked" (`bench month --scale 1.0`).
SQLITE_BUSY_TIMEOUT_MS = 15 * 60 * 1000


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()
