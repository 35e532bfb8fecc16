"""Comments on evidence, and who has seen them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:00:00.000000
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import portfolio.db  # noqa: F401


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body_md", sa.Text(), nullable=False),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"],
                                name=op.f("fk_evidence_comments_evidence_id_evidence")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"],
                                name=op.f("fk_evidence_comments_author_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_comments")),
        sa.UniqueConstraint("nonce", name=op.f("uq_evidence_comments_nonce")),
    )
    op.create_index("ix_evidence_comments_evidence_created", "evidence_comments",
                    ["evidence_id", "created_at"], unique=False)
    op.create_table(
        "comment_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_comment_reads_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"],
                                name=op.f("fk_comment_reads_evidence_id_evidence"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "evidence_id", name=op.f("pk_comment_reads")),
    )


def downgrade() -> None:
    op.drop_table("comment_reads")
    op.drop_index("ix_evidence_comments_evidence_created", table_name="evidence_comments")
    op.drop_table("evidence_comments")
