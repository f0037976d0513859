"""Schema changes to an existing warehouse, as Alembic migrations (never a rebuild).

The revisions live in `warehouse/migrations/versions/`; `upgrade` brings a warehouse to the
newest (``sim-pipeline warehouse upgrade``; `sim-pipeline run` does it before materialising),
`current` says where one stands, and `drift` compares the tables a warehouse holds with their
declarations (`warehouse.model`): a column added to a declaration without a migration shows
there, and writing to that table refuses with a message naming the command.

A new schema change is a new revision file: ``op.add_column(...)``, ``op.alter_column(...)``
(see 0002 for the shape). Revisions run in one transaction on PostgreSQL: a failed migration
leaves the warehouse as it was.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sim_pipeline.warehouse.store import SCHEMA_VERSION_TABLE, Warehouse


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def upgrade(url: str, revision: str = "head") -> str:
    """Apply every migration the warehouse at ``url`` lacks; returns the revision it is at."""
    wh = Warehouse(url)
    try:
        with wh.engine.begin() as conn:
            command.upgrade(_config(conn), revision)
        return current(url) or ""
    finally:
        wh.dispose()


def current(url: str) -> str | None:
    """The warehouse's revision (None before its first upgrade)."""
    wh = Warehouse(url)
    try:
        with wh.engine.connect() as conn:
            migration = MigrationContext.configure(
                conn, opts={"version_table": SCHEMA_VERSION_TABLE}
            )
            return migration.get_current_revision()
    finally:
        wh.dispose()


def drift(url: str) -> dict[str, dict[str, list[str]]]:
    """{table: {"missing": [...], "undeclared": [...]}} for every declared table the warehouse
    holds whose columns differ from its declaration (empty when they agree)."""
    from sim_pipeline.warehouse.dictionary import models
    from sim_pipeline.warehouse.model import columns, table_name

    wh = Warehouse(url)
    try:
        inspector = sa.inspect(wh.engine)
        out: dict[str, dict[str, list[str]]] = {}
        for m in models():
            name = table_name(m)
            if not inspector.has_table(name):
                continue
            held = [c["name"] for c in inspector.get_columns(name)]
            declared = columns(m)
            missing = [c for c in declared if c not in held]
            undeclared = [c for c in held if c not in declared]
            if missing or undeclared:
                out[name] = {"missing": missing, "undeclared": undeclared}
        return out
    finally:
        wh.dispose()


def sync_comments(conn: sa.Connection, *, clear: bool = False) -> int:
    """Set (or with ``clear`` remove) the declared table and column comments on every declared
    table the warehouse holds; returns the tables touched. PostgreSQL only (SQLite keeps no
    comments)."""
    from sim_pipeline.warehouse.dictionary import models
    from sim_pipeline.warehouse.model import sa_table, table_name

    if conn.dialect.name != "postgresql":
        return 0
    inspector = sa.inspect(conn)
    touched = 0
    for m in models():
        name = table_name(m)
        if not inspector.has_table(name):
            continue
        table = sa_table(m)
        held = {c["name"] for c in inspector.get_columns(name)}
        preparer = conn.dialect.identifier_preparer
        quoted = preparer.quote(name)
        comment = None if clear else table.comment
        conn.execute(sa.text(f"COMMENT ON TABLE {quoted} IS {_literal(comment)}"))
        for column in table.columns:
            if column.name in held:
                text = None if clear else column.comment
                conn.execute(
                    sa.text(
                        f"COMMENT ON COLUMN {quoted}.{preparer.quote(column.name)} "
                        f"IS {_literal(text)}"
                    )
                )
        touched += 1
    return touched


def _literal(text: str | None) -> str:
    """A comment as an SQL string literal (descriptions are ours, never data; quoted anyway)."""
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"
