"""Invitations: a password link can be an invitation (a first password, sent by an admin, who
is recorded) as well as a reset.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 08:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("password_resets") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=10), nullable=False,
                                   server_default="reset"))
        batch.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_password_resets_created_by_id_users"), "users",
                                 ["created_by_id"], ["id"], ondelete="SET NULL")
        batch.create_check_constraint(op.f("ck_password_resets_purpose_known"),
                                      "purpose IN ('reset', 'invite')")


def downgrade() -> None:
    if op.get_bind().exec_driver_sql(
            "SELECT count(*) FROM password_resets WHERE purpose = 'invite'").scalar():
        raise RuntimeError("Invitations exist; they cannot be kept in the older schema.")
    with op.batch_alter_table("password_resets") as batch:
        batch.drop_constraint(op.f("ck_password_resets_purpose_known"), type_="check")
        batch.drop_constraint(op.f("fk_password_resets_created_by_id_users"),
                              type_="foreignkey")
        batch.drop_column("created_by_id")
        batch.drop_column("purpose")
