"""The notifications list and a learner's audit history page by keyset (newest first):
indexes on notifications (recipient_id, id) and audit_events (learner_id, seq).

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
    op.create_index("ix_audit_events_learner_seq", "audit_events", ["learner_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_learner_seq", table_name="audit_events")
    op.drop_index("ix_notifications_recipient_id", table_name="notifications")
