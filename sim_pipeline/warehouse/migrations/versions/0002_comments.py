"""Table and column comments from the table declarations.

Tables created before the declarations existed (by pandas, without comments) get the
description of the table and of every column as PostgreSQL comments, as tables created
since have. Only comments change: no column, type or row is touched.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from sim_pipeline.warehouse.migrate import sync_comments

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sync_comments(op.get_bind())


def downgrade() -> None:
    sync_comments(op.get_bind(), clear=True)
