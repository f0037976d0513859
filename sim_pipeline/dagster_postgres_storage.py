"""Dagster's PostgreSQL storage with its connections kept open (the production instance in
deploy/dagster.yaml names `SimPostgresStorage`).

dagster-postgres builds its engines with SQLAlchemy's ``NullPool``: every statement opens a new
connection to the server (a TCP connection, a server process forked for it, authentication, with
SCRAM-SHA-256 thousands of key-derivation rounds on both sides) and closes it again, once per
event a run stores. Dagster's web server switches its own storages to a pool that keeps one
connection open (``optimize_for_webserver``); a run, the daemon and the command line never
did. On this machine a one-month run on the test synthetic set, with the deploy example's
password login, took 34.8 s and 32.4 s with a new connection per statement, 18.7 s and 18.6 s
with them kept open (`sim_pipeline_tests/test_postgres.py` runs that configuration).

The storages here are dagster-postgres's own (same tables, same SQL), with the engine Dagster's
web server would use: a pool of one connection kept open, up to `POOL_OVERFLOW` more while
threads write at once, each checked before use (``pool_pre_ping``: a connection the server or a
proxy dropped is replaced, not failed on) and recycled after `POOL_RECYCLE_SECONDS`. The
server's and the role's settings (a DBA's ``statement_timeout``) are left as they are.

A forked child (the command forks its observation and staging workers) must not use its
parent's open connections: after a fork the child drops the pools it inherited without closing
the parent's sockets (``Engine.dispose(close=False)``) and opens its own.

This module imports dagster-postgres (about 0.3 s), so it is a module of its own: a SQLite
instance (`sim_pipeline.dagster_instance`) never loads it.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

# The web server's defaults (dagster-webserver --db-pool-max-overflow, --db-pool-recycle):
POOL_OVERFLOW = 20  # connections beyond the one kept open, while threads write at once
POOL_RECYCLE_SECONDS = 3600  # a connection older than this is replaced at its next use

# Storages whose pools a forked child must drop (weakly held: a closed instance is forgotten).
_KEPT_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


def keep_open(storage: Any) -> None:
    """Give a dagster-postgres storage (run, event log or schedule) an engine that keeps its
    connection open, in place of its new-connection-per-statement engine."""
    kwargs: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_size": 1,
        "max_overflow": POOL_OVERFLOW,
        "pool_recycle": POOL_RECYCLE_SECONDS,
        "pool_pre_ping": True,
    }
    options = storage._engine.url.query.get("options")
    if options:  # libpq options from the URL's params, as dagster-postgres passes them
        kwargs["connect_args"] = {"options": options}
    before = storage._engine
    storage._engine = create_pg_engine(storage.postgres_url, storage._token_provider, **kwargs)
    before.dispose()
    _KEPT_OPEN.add(storage)


def _after_fork_in_child() -> None:
    for storage in list(_KEPT_OPEN):
        storage._engine.dispose(close=False)  # the parent's sockets stay open for the parent


os.register_at_fork(after_in_child=_after_fork_in_child)


def _from_config(config_value: Any) -> dict[str, Any]:
    """A storage's arguments from its ``postgres_db``/``postgres_url`` config, as
    dagster-postgres reads them."""
    return {
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
    }


class _KeptOpen:
    """A dagster-postgres storage whose engine keeps its connection open (`keep_open`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep_open(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls(inst_data=inst_data, **_from_config(config_value))


class KeptOpenPostgresRunStorage(_KeptOpen, PostgresRunStorage):
    """dagster-postgres's run storage, its connection kept open."""


class KeptOpenPostgresEventLogStorage(_KeptOpen, PostgresEventLogStorage):
    """dagster-postgres's event log storage, its connection kept open."""


class KeptOpenPostgresScheduleStorage(_KeptOpen, PostgresScheduleStorage):
    """dagster-postgres's schedule storage, its connection kept open."""


class SimPostgresStorage(DagsterPostgresStorage):
    """Runs, event log and schedules in one PostgreSQL database, as ``storage: postgres:``
    configures them, through the kept-open storages above. Configured under ``storage:
    custom:`` with the same ``postgres_db`` mapping (deploy/dagster.yaml)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        kw = {
            "should_autocreate_tables": should_autocreate_tables,
            "token_provider": token_provider,
        }
        self._run_storage = KeptOpenPostgresRunStorage(postgres_url, **kw)
        self._event_log_storage = KeptOpenPostgresEventLogStorage(postgres_url, **kw)
        self._schedule_storage = KeptOpenPostgresScheduleStorage(postgres_url, **kw)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> SimPostgresStorage:
        return cls(inst_data=inst_data, **_from_config(config_value))
