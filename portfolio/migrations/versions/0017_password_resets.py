"""Password reset links: single-use, expiring, stored as a SHA-256 only.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 08:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_password_resets_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index("ix_password_resets_user_open", "password_resets",
                    ["user_id", "used_at", "revoked_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_password_resets_user_open", table_name="password_resets")
    op.drop_table("password_resets")
