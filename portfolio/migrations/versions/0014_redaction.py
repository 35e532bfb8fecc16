"""Redacted versions and where an original is held.

A version whose personal data was masked names the version it was made from (`redacted_from`);
that original is then `assessor_only`: kept, and shown to the learner's assessor alone. A
version may instead say where the original is held at work (`original_held_at`), when the
learner replaced it with a descriptor.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('evidence_versions', sa.Column(
        'assessor_only', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('evidence_versions', sa.Column('redacted_from', sa.Integer(), nullable=True))
    op.add_column('evidence_versions', sa.Column(
        'original_held_at', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evidence_versions') as batch_op:
        batch_op.drop_column('original_held_at')
        batch_op.drop_column('redacted_from')
        batch_op.drop_column('assessor_only')
