"""Alembic environment: the connection comes from `warehouse.migrate` (no alembic.ini, no URL
in a file), and the revisions run in its transaction."""

from __future__ import annotations

from alembic import context

from sim_pipeline.warehouse.store import SCHEMA_VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, version_table=SCHEMA_VERSION_TABLE, transaction_per_migration=False
)
with context.begin_transaction():
    context.run_migrations()
