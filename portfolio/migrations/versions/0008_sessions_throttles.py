"""Server-side login sessions and atomic throttle counters (auth)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:30:00.000000
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import portfolio.db  # noqa: F401


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
