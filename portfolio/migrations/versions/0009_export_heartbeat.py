"""Export job heartbeats (jobs never hang)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:30:00.000000
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import portfolio.db  # noqa: F401


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("heartbeat_at", portfolio.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("started_at", portfolio.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_column("started_at")
        batch.drop_column("heartbeat_at")
