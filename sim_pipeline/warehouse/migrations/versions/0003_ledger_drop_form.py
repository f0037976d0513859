"""The ingest ledger says each file's form and contract version (tokenised drops).

``drop_form`` (raw or tokenised) and ``contract_version`` are added to ``ingest_ledger``. Rows
written before were raw drops: their form is set to ``raw``; their contract version is left
blank (it was not recorded).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "ingest_ledger"


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table(TABLE):
        return  # created from its declaration when first written
    op.add_column(TABLE, sa.Column("drop_form", sa.Text()))
    op.add_column(TABLE, sa.Column("contract_version", sa.Text()))
    op.execute(sa.text(f"UPDATE {TABLE} SET drop_form = 'raw'"))


def downgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table(TABLE):
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("contract_version")
        batch.drop_column("drop_form")
