"""Drop `rate_events`: the witness pages' rate limit is counted by the shared throttle counters
(in Redis when it is configured, otherwise `auth_throttles`), atomically and without a row per
hit.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 10:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_rate_events_key_at', table_name='rate_events')
    op.drop_table('rate_events')


def downgrade() -> None:
    op.create_table(
        'rate_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_events')),
    )
    op.create_index('ix_rate_events_key_at', 'rate_events', ['key', 'at'])
