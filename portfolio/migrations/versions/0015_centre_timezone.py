"""Each centre's time zone: the times people read are shown in it (empty means the
installation's DEFAULT_TIMEZONE, Europe/London unless set). Times are still stored in UTC.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('centres', sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('centres') as batch_op:
        batch_op.drop_column('timezone')
