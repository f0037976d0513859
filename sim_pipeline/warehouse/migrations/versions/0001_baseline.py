"""Baseline: the warehouse as the pipeline made it before migrations existed.

Tables are created by the stage that first writes them (from their declaration since
0002), so the baseline changes nothing: it marks where an existing warehouse starts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
