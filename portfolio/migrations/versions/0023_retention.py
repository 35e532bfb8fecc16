"""Retention: per-centre periods for learner work, a legal hold per enrolment, and when work
was removed (enrolments, evidence versions and stored files).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 16:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def _when() -> portfolio.db.UTCDateTime:
    return portfolio.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("work_keep_months", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("work_until_eqa", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("finished_at", _when(), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("hold_at", _when(), nullable=True))
        batch.add_column(sa.Column("hold_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("work_removed_at", _when(), nullable=True))
        batch.create_foreign_key(op.f("fk_enrolments_hold_by_id_users"), "users",
                                 ["hold_by_id"], ["id"])
    with op.batch_alter_table("evidence_versions") as batch:
        batch.add_column(sa.Column("removed_at", _when(), nullable=True))
    with op.batch_alter_table("stored_files") as batch:
        batch.add_column(sa.Column("removed_at", _when(), nullable=True))
    # Enrolments that had already ended start their retention clock now: the day they ended was
    # not recorded, and starting it early could remove work too soon.
    op.execute(sa.text("UPDATE enrolments SET finished_at = CURRENT_TIMESTAMP "
                       "WHERE status IN ('completed', 'withdrawn')"))


def downgrade() -> None:
    with op.batch_alter_table("stored_files") as batch:
        batch.drop_column("removed_at")
    with op.batch_alter_table("evidence_versions") as batch:
        batch.drop_column("removed_at")
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_constraint(op.f("fk_enrolments_hold_by_id_users"), type_="foreignkey")
        batch.drop_column("work_removed_at")
        batch.drop_column("hold_by_id")
        batch.drop_column("hold_at")
        batch.drop_column("hold_reason")
        batch.drop_column("finished_at")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("work_until_eqa")
        batch.drop_column("work_keep_months")
