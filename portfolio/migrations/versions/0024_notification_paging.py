"""The notifications list pages by keyset (newest first): an index on (recipient_id, id).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 16:40:00.000000
"""
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifications_recipient_id", "notifications", ["recipient_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_recipient_id", table_name="notifications")
