"""The project's Dagster instance: Dagster's own SQLite storage, with event-log connections kept
open.

Dagster's ``SqliteEventLogStorage`` builds a new SQLAlchemy engine and opens a new SQLite
connection for every write (each event, and again for the cross-run index when the event is
an asset or check event), so each event paid for a connection, a synced commit and, on
closing the database's last connection, a checkpoint of its write-ahead log: about 7 ms an event
on this project's disk, a fifth of the demo run (2,188 events). `KeptOpenSqliteEventLogStorage`
writes the same files with the same schema (any Dagster process, the web UI included, reads
them as before) through one engine per database, whose connection stays open:

- the write-ahead log is synced when it is checkpointed, not at every commit
  (``synchronous=NORMAL``, SQLite's recommended setting for WAL mode: a commit survives the
  process crashing; only a power cut can lose the last commits, never corrupt the file);
- after each write to a run's database its log is checkpointed (passive), so the file changes
  as before and the web UI, which watches that file for a run's new events, sees them at once;
- the events Dagster sends as one batch (a run's planned events, the materialisations of a
  partition range: 66 per staged table in the demo's run) are written in one transaction per
  database, with one checkpoint (`store_event_batch`; Dagster batches when
  ``DAGSTER_EVENT_BATCH_SIZE`` is set, which this storage sets unless it is set already).

`SimInstance` is named by ``instance_class`` in the instance's dagster.yaml (``config.
DAGSTER_YAML`` and the repository's ``dagster.yaml``); it changes only the default storage (no
``storage:`` in the file). An instance whose dagster.yaml names its own storage (PostgreSQL in
deploy/) uses that storage as written.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import dagster as dg
import sqlalchemy as db
import yaml
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import QueuePool

# Databases kept open per process (a run's own and the index while a run executes; the web UI
# reads many runs, so the least recently used beyond this are closed).
MAX_OPEN_DATABASES = 8


# Events Dagster holds back to store as one batch (`KeptOpenSqliteEventLogStorage.
# store_event_batch`): a run's planned events and a partition range's materialisations are each
# sent as one, up to this many at a time.
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    mode = dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() == "wal":  # Dagster creates its databases in WAL mode
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one engine per database, its connection kept open."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        self._batch: dict[str, db.engine.Connection] | None = None
        # Dagster sends batches to `store_event_batch` only when this is set (0 or unset: every
        # event alone); a value already set, 0 included, is kept
        os.environ.setdefault(EVENT_BATCH_ENV, str(EVENT_BATCH_SIZE))
        super().__init__(base_dir, inst_data=inst_data)
        # re-entrant: a batch holds it while each of its events' writes takes it again
        self._db_lock = threading.RLock()  # type: ignore[assignment]

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of events (Dagster sends as one, with `EVENT_BATCH_SIZE` set: a run's planned
        events, a partition range's materialisations) in one transaction per database, each
        event written as `store_event` writes it alone: one commit and one checkpoint of the
        run's file for the batch, where each event was a commit and a checkpoint (the demo's
        staged shares: 650 partition materialisations). Other threads wait for the batch.

        Nothing of a batch that fails is kept, and the error is raised, so Dagster stores its
        events one by one instead. The databases commit one after the other (the run's
        first), as Dagster's own writes of one event do."""
        with self._db_lock:
            self._batch = {}
            try:
                for event in events:
                    self.store_event(event)
            except BaseException:
                batch, self._batch = self._batch, None
                for conn in batch.values():
                    with suppress(Exception):
                        conn.rollback()
                    conn.close()
                raise
            batch, self._batch = self._batch, None
            shards = sorted(batch, key=lambda shard: shard == INDEX_SHARD_NAME)
            try:
                for shard in shards:
                    batch[shard].commit()
                    if shard != INDEX_SHARD_NAME:
                        self._show(shard, batch[shard])
            finally:
                for conn in batch.values():
                    conn.close()

    def _show(self, shard: str, conn: db.engine.Connection) -> None:
        """The run's file changes now, as when each connection closed: a passive checkpoint
        copies what no reader holds back, and the file's time is set in any case (a reader's
        snapshot can leave the checkpoint nothing to copy), so the web UI's watcher always sees
        the new events."""
        conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
        with suppress(OSError):
            os.utime(self.path_for_shard(shard))

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before writing each asset event's tags whether the index has a table,
        and answers with a new engine and connection every time (1.7 s of the demo run's
        2,000-odd asset events). A table found is remembered: tables are added by a
        migration, never dropped while a process writes (`wipe` forgets them); a table not
        found is asked about again."""
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> KeptOpenSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=2,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        db.event.listen(engine, "connect", _on_connect)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN_DATABASES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:  # ty: ignore[invalid-method-override]
        with self._db_lock:
            if self._batch is not None:  # inside `store_event_batch`: its open transaction
                conn = self._batch.get(shard)
                if conn is None:
                    conn = self._batch[shard] = self._engine(shard).connect()
                    conn.begin()
                yield conn
                return
            engine = self._engine(shard)
            with engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                changes = raw.total_changes  # type: ignore[union-attr]
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and raw.total_changes != changes:  # type: ignore[union-attr]
                    self._show(shard, conn)

    def wipe(self) -> None:
        self._close_all()
        self._tables_present.clear()
        super().wipe()

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()


class SimSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (same folders) with `KeptOpenSqliteEventLogStorage`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = KeptOpenSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData, config_value: Any
    ) -> SimSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


class SimInstance(dg.DagsterInstance):
    """A Dagster instance whose default storage is `SimSqliteStorage`."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> dict[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, SimSqliteStorage.__name__, yaml.dump({"base_dir": base_dir})
        )
        defaults["event_log_storage"] = ConfigurableClassData(
            __name__,
            KeptOpenSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(base_dir)}),
        )
        return defaults
