"""Server-side login sessions and atomic throttle counters (auth)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:30:00.000000
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import portfolio.db  # noqa: F401


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_throttles",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_started_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_throttles")),
    )
    op.create_index(op.f("ix_auth_throttles_window_started_at"), "auth_throttles",
                    ["window_started_at"], unique=False)
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=80), nullable=False),
        sa.Column("created_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", portfolio.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_login_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_sessions_token_hash")),
    )
    op.create_index("ix_login_sessions_user_active", "login_sessions",
                    ["user_id", "revoked_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_sessions_user_active", table_name="login_sessions")
    op.drop_table("login_sessions")
    op.drop_index(op.f("ix_auth_throttles_window_started_at"), table_name="auth_throttles")
    op.drop_table("auth_throttles")
