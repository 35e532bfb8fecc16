"""exports and export jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 00:32:46.105599
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('public_id', sa.String(length=43), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_exports_created_by_id_users')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_exports_enrolment_id_enrolments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exports')),
    sa.UniqueConstraint('public_id', name=op.f('uq_exports_public_id'))
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exports_enrolment_id'), ['enrolment_id'], unique=False)

    op.create_table('export_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=300), nullable=False),
    sa.Column('export_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_export_jobs_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['export_id'], ['exports.id'], name=op.f('fk_export_jobs_export_id_exports')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_export_jobs_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_jobs'))
    )
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_jobs_enrolment_id'), ['enrolment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_jobs_enrolment_id'))

    op.drop_table('export_jobs')
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exports_enrolment_id'))

    op.drop_table('exports')
