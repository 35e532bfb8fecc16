"""People imports: a CSV of learners and enrolments an admin uploaded, kept until confirmed,
with the progress of its import.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 09:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=True),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("done_rows", sa.Integer(), nullable=False),
        sa.Column("people_created", sa.Integer(), nullable=False),
        sa.Column("people_reused", sa.Integer(), nullable=False),
        sa.Column("enrolments_created", sa.Integer(), nullable=False),
        sa.Column("rows_skipped", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'queued', 'running', 'done', 'failed', "
                           "'discarded', 'expired')",
                           name=op.f("ck_people_imports_status_known")),
        sa.CheckConstraint("mode IS NULL OR mode IN ('all', 'good')",
                           name=op.f("ck_people_imports_mode_known")),
        sa.CheckConstraint("done_rows >= 0 AND done_rows <= total_rows",
                           name=op.f("ck_people_imports_progress_in_range")),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"],
                                name=op.f("fk_people_imports_centre_id_centres")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_people_imports_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people_imports")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_people_imports_token_hash")),
    )
    op.create_index(op.f("ix_people_imports_centre_id"), "people_imports", ["centre_id"],
                    unique=False)
    op.create_index(op.f("ix_people_imports_created_by_id"), "people_imports",
                    ["created_by_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_people_imports_created_by_id"), table_name="people_imports")
    op.drop_index(op.f("ix_people_imports_centre_id"), table_name="people_imports")
    op.drop_table("people_imports")
