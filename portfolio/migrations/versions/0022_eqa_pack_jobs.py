"""EQA pack downloads run as background jobs (`eqa_pack_jobs`), with progress and a kept ZIP.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 13:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.create_table(
        "eqa_pack_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pack_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("export_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'expired')",
                           name=op.f("ck_eqa_pack_jobs_status_known")),
        sa.CheckConstraint("progress >= 0 AND progress <= 100",
                           name=op.f("ck_eqa_pack_jobs_progress_in_range")),
        sa.ForeignKeyConstraint(["pack_id"], ["eqa_packs.id"],
                                name=op.f("fk_eqa_pack_jobs_pack_id_eqa_packs")),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"],
                                name=op.f("fk_eqa_pack_jobs_requested_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eqa_pack_jobs")),
    )
    op.create_index(op.f("ix_eqa_pack_jobs_pack_id"), "eqa_pack_jobs", ["pack_id"],
                    unique=False)
    op.create_index("uq_eqa_pack_jobs_one_active", "eqa_pack_jobs", ["pack_id"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    op.drop_index("uq_eqa_pack_jobs_one_active", table_name="eqa_pack_jobs")
    op.drop_index(op.f("ix_eqa_pack_jobs_pack_id"), table_name="eqa_pack_jobs")
    op.drop_table("eqa_pack_jobs")
