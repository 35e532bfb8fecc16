"""Notifications and each person's email frequency

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:00:00.000000
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import portfolio.db  # noqa: F401


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=True),
        sa.Column("learner_id", sa.Integer(), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("emailed_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"],
                                name=op.f("fk_notifications_recipient_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolments.id"],
                                name=op.f("fk_notifications_enrolment_id_enrolments")),
        sa.ForeignKeyConstraint(["learner_id"], ["users.id"],
                                name=op.f("fk_notifications_learner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_recipient_read", "notifications",
                    ["recipient_id", "read_at"], unique=False)
    op.create_index("ix_notifications_unsent", "notifications",
                    ["emailed_at", "recipient_id"], unique=False)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_notifications", sa.String(length=10),
                                   server_default="daily", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_notifications")
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    op.drop_index("ix_notifications_recipient_read", table_name="notifications")
    op.drop_table("notifications")
