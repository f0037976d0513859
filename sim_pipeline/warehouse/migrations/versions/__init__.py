"""Alembic revisions of the warehouse schema, oldest first (`warehouse.migrate`)."""
