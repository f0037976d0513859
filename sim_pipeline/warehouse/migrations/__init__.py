"""Alembic migrations of the warehouse schema (run by `sim_pipeline.warehouse.migrate`)."""
